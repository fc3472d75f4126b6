// pidone's own output: tini's verbosity levels, prefixes and streams; the child's stdout
// stays blocking whatever pidone logged; a stuck or closed stdout/stderr never blocks or
// kills pidone.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AS_PID1, PIDONE, cHelper, run } from "./helpers.ts";
import { shq } from "./fixtures/core-lib.ts";

setDefaultTimeout(60_000);

/** Log lines of one level: [LEVEL pidone (PID)] text */
function lines(text: string, level: "INFO " | "DEBUG" | "TRACE" | "WARN " | "FATAL"): string[] {
  return text.split("\n").filter((l) => l.startsWith(`[${level} pidone (`));
}

describe("verbosity", () => {
  test("-v: INFO lines on stdout with tini's prefix and texts, nothing more", async () => {
    const r = await run([PIDONE, "-s", "-v", "--", "true"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const pid = r.stdout.match(/^\[INFO  pidone \((\d+)\)\]/)?.[1];
    expect(Number(pid)).toBeGreaterThan(1);
    expect(r.stdout).toMatch(new RegExp(`^\\[INFO  pidone \\(${pid}\\)\\] Spawned child process 'true' with pid '\\d+'$`, "m"));
    expect(r.stdout).toMatch(new RegExp(`^\\[INFO  pidone \\(${pid}\\)\\] Main child exited normally \\(with status '0'\\)$`, "m"));
    expect(lines(r.stdout, "DEBUG")).toEqual([]);
    expect(lines(r.stdout, "TRACE")).toEqual([]);
  });

  test("-vv adds DEBUG lines (SIGCHLD, the reaped pid, passed signals); -vvv adds TRACE", async () => {
    const vv = await run([PIDONE, "-s", "-vv", "--", "sh", "-c", "trap 'exit 4' USR1; kill -USR1 $PPID; while :; do sleep 0.05; done"]);
    expect(vv.code).toBe(4);
    expect(vv.stdout).toMatch(/^\[DEBUG pidone \(\d+\)\] Received SIGCHLD$/m);
    expect(vv.stdout).toMatch(/^\[DEBUG pidone \(\d+\)\] Reaped child with pid: '\d+'$/m);
    expect(vv.stdout).toMatch(/^\[DEBUG pidone \(\d+\)\] Passing signal: 'User defined signal 1'$/m);
    expect(vv.stdout).toMatch(/^\[INFO  pidone \(\d+\)\] Main child exited normally \(with status '4'\)$/m);
    expect(lines(vv.stdout, "TRACE")).toEqual([]);
    const vvv = await run([PIDONE, "-s", "-vvv", "--", "true"]);
    expect(lines(vvv.stdout, "TRACE").length).toBeGreaterThan(0);
    expect(vvv.stderr).toBe("");
  });

  test("a child killed by a signal is logged with the signal's name", async () => {
    const killself = await cHelper("core-killself");
    const r = await run([PIDONE, "-s", "-v", "--", killself, "15"]);
    expect(r.code).toBe(143);
    expect(r.stdout).toMatch(/^\[INFO  pidone \(\d+\)\] Main child exited with signal \(with signal 'Terminated'\)$/m);
  });

  test("TINI_VERBOSITY sets the level and wins over -v (tini)", async () => {
    const env3 = await run([PIDONE, "-s", "true"], { env: { TINI_VERBOSITY: "3" } });
    expect(lines(env3.stdout, "DEBUG").length).toBeGreaterThan(0);
    expect(lines(env3.stdout, "TRACE")).toEqual([]);
    const env1 = await run([PIDONE, "-s", "-vvv", "true"], { env: { TINI_VERBOSITY: "1" } });
    expect(env1).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("as PID 1 the prefix names pid 1", async () => {
    const r = await run([...AS_PID1, PIDONE, "-v", "--", "true"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\[INFO  pidone \(1\)\] Spawned child process 'true' with pid '\d+'$/m);
  });

  test("warnings and fatal errors go to stderr, the rest to stdout", async () => {
    const warn = await run([PIDONE, "-vvv", "--", "true"]);
    expect(lines(warn.stderr, "WARN ").length).toBeGreaterThan(0);
    expect(lines(warn.stdout, "WARN ")).toEqual([]);
    expect(lines(warn.stderr, "INFO ")).toEqual([]);
    const fatal = await run([PIDONE, "-s", "-vvv", "--", "/nonexistent/program"]);
    expect(lines(fatal.stderr, "FATAL").length).toBe(1);
    expect(lines(fatal.stdout, "FATAL")).toEqual([]);
  });
});

describe("the child's stdout stays blocking", () => {
  test("on inherited pipes: O_NONBLOCK is not set on fds 0-2 of the child, also after pidone logged with -vvv", async () => {
    const fdflags = await cHelper("core-fdflags");
    for (const opts of ["-vvv", "-s -vvv", "-s"]) {
      // Real pipes (Bun.spawn hands out sockets): stdin from printf, stdout+stderr into cat.
      const r = await run(["sh", "-c", `printf x | ${shq(PIDONE)} ${opts} -- "$0" flood 2>&1 | cat`, fdflags]);
      expect(r.code).toBe(0);
      const report = r.stdout.split("\n").filter((l) => /^fd \d nonblock=|^flood done|^write failed/.test(l));
      expect({ opts, report }).toEqual({ opts, report: ["fd 0 nonblock=0", "fd 1 nonblock=0", "fd 2 nonblock=0", "flood done"] });
      if (opts.includes("-vvv")) expect(r.stdout).toContain("[TRACE pidone (");
    }
  });

  test("on inherited sockets too", async () => {
    const fdflags = await cHelper("core-fdflags");
    const r = await run([PIDONE, "-vvv", "--", fdflags, "flood"], { stdin: "pipe" });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("fd 1 nonblock=0\n");
    expect(r.stderr).toContain("fd 2 nonblock=0\n");
    expect(r.stderr).toContain("flood done\n");
  });
});

describe("a stuck or closed stdout/stderr", () => {
  // Stdout and stderr both point at the troublesome target; -vvv -w makes pidone write
  // plenty; the child leaves an orphan (reaped with a -w warning) and exits 7.
  const child = ["sh", "-c", "sh -c 'exit 0' & exit 7"];
  for (const mode of ["full", "closed", "devfull", "none"] as const) {
    const what = {
      full: "a full pipe nobody reads",
      closed: "a pipe whose reader is gone (EPIPE)",
      devfull: "/dev/full (ENOSPC)",
      none: "closed descriptors 1 and 2",
    }[mode];
    test(`with ${what}, pidone still exits promptly with the child's code`, async () => {
      const outputs = await cHelper("core-outputs");
      const r = await run([outputs, mode, PIDONE, "-s", "-vvv", "-w", "--", ...child], { timeoutMs: 90_000 });
      expect(r.stdout).toBe("exit 7\n");
    }, 120_000);
  }

  test("as PID 1 with a full pipe, too", async () => {
    const outputs = await cHelper("core-outputs");
    const r = await run([outputs, "full", ...AS_PID1, PIDONE, "-vvv", "-w", "--", ...child], { timeoutMs: 90_000 });
    expect(r.stdout).toBe("exit 7\n");
  }, 120_000);
});
