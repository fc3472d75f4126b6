// The native helper's environment hygiene (issue 4, part 3): the stub starts the runtime
// with its own settings and without the variables meant for the application (BUN_*,
// LD_*, MALLOC_*, MIMALLOC_*, GLIBC_TUNABLES, NODE_OPTIONS), and the child still gets
// the environment pidone was started with, byte for byte. With the GC timer,
// JavaScriptCore's helper threads and mimalloc's scavenger off, an idle pidone never wakes up.
// Skipped for the plain executable (PIDONE_BIN=dist/pidone-glibc).
import { expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, ROOT, needs, pid1Of, run, start, tempDir, waitForChildRunning } from "./helpers.ts";
import { NATIVE, SINGLE_FILE, contextSwitches } from "./fixtures/native-lib.ts";

setDefaultTimeout(60_000);

/** Output as bytes: run() decodes text, which would hide a byte that changed. */
async function runBytes(cmd: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const [out, err] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, stdout: Buffer.from(out), stderr: err };
}

async function preloadLibrary(): Promise<string> {
  const out = join(tempDir("pidone-preload-"), "preload.so");
  const r = await run(["cc", "-O2", "-Wall", "-shared", "-fPIC", "-o", out, join(ROOT, "test/fixtures/native-preload.c")]);
  if (r.code !== 0) throw new Error(`cc native-preload.c failed:\n${r.stderr}`);
  return out;
}

needs(NATIVE, SINGLE_FILE)("variables meant for the application", () => {
  test("BUN_OPTIONS=--cpu-prof reaches the child but not pidone: no profiler waking it, no profile written", async () => {
    const cwd = tempDir("pidone-cpuprof-");
    const p = start([PIDONE, "-s", "--", "sh", "-c", 'echo "BUN_OPTIONS=$BUN_OPTIONS"; exec sleep 1000'], {
      env: { BUN_OPTIONS: "--cpu-prof" },
      cwd,
    });
    try {
      await p.waitStdout("BUN_OPTIONS=--cpu-prof\n");
      await waitForChildRunning(p.proc.pid, "sleep");
      // A sampling profiler would wake pidone about a thousand times a second.
      const before = contextSwitches(p.proc.pid);
      await Bun.sleep(1000);
      expect(contextSwitches(p.proc.pid) - before).toBe(0);
      p.proc.kill("SIGTERM");
      expect(await p.exit()).toBe(143);
      expect(readdirSync(cwd)).toEqual([]);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("BUN_OPTIONS=--revision cannot turn pidone into something else", async () => {
    // The plain executable prints Bun's revision and exits without running the child.
    const r = await run([PIDONE, "-s", "--", "sh", "-c", 'echo "child: $BUN_OPTIONS"'], { env: { BUN_OPTIONS: "--revision" } });
    expect(r).toEqual({ code: 0, stdout: "child: --revision\n", stderr: "" });
  });

  test("an LD_PRELOAD meant for the child is loaded into the child, never into pidone", async () => {
    const lib = await preloadLibrary();
    const log = join(tempDir("pidone-preload-log-"), "loaded");
    const r = await run([PIDONE, "-s", "--", "sh", "-c", 'echo "child: $LD_PRELOAD"'], {
      env: { LD_PRELOAD: lib, PRELOAD_LOG: log },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`child: ${lib}\n`);
    expect(readFileSync(log, "utf8")).toBe("loaded into sh\n");
  });

  test("the child gets the environment byte for byte: hidden variables and invalid UTF-8 included, none of the runtime's settings", async () => {
    const vars = [
      "A=1",
      "BUN_CONFIG_VERBOSE_FETCH=1",
      "BUN_JSC_useJIT=false",
      "LD_LIBRARY_PATH=/nonexistent",
      "LD_BIND_NOW=1",
      "MALLOC_ARENA_MAX=2",
      "MIMALLOC_VERBOSE=1",
      "GLIBC_TUNABLES=glibc.malloc.check=0",
      "NODE_OPTIONS=--max-old-space-size=1",
      "SP=x y",
    ];
    // env -i: nothing but these; RAW holds a byte that is not UTF-8.
    const script = `exec env -i "RAW=$(printf 'a\\377b')" ${vars.map((v) => `'${v}'`).join(" ")} "$0" -s -- cat /proc/self/environ`;
    const r = await runBytes(["bash", "-c", script, PIDONE]);
    expect(r.code, r.stderr).toBe(0);
    // MIMALLOC_VERBOSE would have made the runtime's allocator print to stderr.
    expect(r.stderr).toBe("");
    const expected = Buffer.concat([Buffer.from("RAW=a"), Buffer.from([0xff]), Buffer.from("b\0"), ...vars.map((v) => Buffer.from(`${v}\0`))]);
    expect(r.stdout.toString("hex")).toBe(expected.toString("hex"));
  });

  test("pidone's own settings in the environment (TINI_*, PIDONE_*) still configure it", async () => {
    const r = await run([PIDONE, "--", "sh", "-c", "exit 3"], { env: { TINI_SUBREAPER: "", TINI_VERBOSITY: "2" } });
    expect(r.code).toBe(3);
    expect(r.stderr).not.toContain("isn't registered as a child subreaper");
    expect(r.stdout).toContain("Main child exited normally (with status '3')");
  });
});

needs(NATIVE, SINGLE_FILE)("an idle pidone", () => {
  test("0 wake-ups in 10 s with a sleeping child, as PID 1 (context switches summed over every thread), on one thread", async () => {
    const p = start([...AS_PID1, PIDONE, "--", "sleep", "1000"]);
    try {
      const pid1 = await pid1Of(p.proc.pid, 15_000);
      await waitForChildRunning(pid1, "sleep");
      // A settling second for the start-up's own last steps, then the window.
      await Bun.sleep(1000);
      const before = contextSwitches(pid1);
      await Bun.sleep(10_000);
      const after = contextSwitches(pid1);
      expect(after - before).toBe(0);
      // Ten seconds cannot see a longer timer: mimalloc's scavenger thread woke every
      // 30 s. With it off (the stub's MIMALLOC_SCAVENGER=0) the runtime's own thread is
      // the only one left, asleep in epoll with no timeout.
      const threads = readdirSync(`/proc/${pid1}/task`).map((t) => readFileSync(`/proc/${pid1}/task/${t}/comm`, "latin1").trim());
      expect(threads).toEqual(["pidone"]);
      process.kill(pid1, "SIGTERM");
      expect(await p.exit()).toBe(143);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);
});
