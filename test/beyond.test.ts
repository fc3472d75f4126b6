// Issue "Beyond tini": keep-alive, the whole-tree stop, daemons that fork, signal
// rewriting and sessions — each as PID 1 of a real PID namespace, or as a subreaper.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, childrenOf, isRunning, killQuietly, run, start, tempDir, waitFor, pid1Of } from "./helpers.ts";

function script(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe("--pause", () => {
  test("as PID 1 reaps orphans that land on it and exits 0 on SIGTERM", async () => {
    const p = start([...AS_PID1, PIDONE, "--pause", "-w"]);
    const pid1 = await pid1Of(p.proc.pid);
    // Another process joins the namespace (as `docker run --pid=container:` does) and
    // orphans three children, which the kernel hands to PID 1.
    const r = await run(["nsenter", "-t", String(pid1), "-p", "-m", "sh", "-c", "for i in 1 2 3; do (sleep 0.2 &); done"]);
    expect(r.code).toBe(0);
    await p.waitStderr((t) => (t.match(/Reaped zombie process with pid=/g) ?? []).length >= 3);
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
  });

  test("exits 0 on SIGINT too", async () => {
    const p = start([...AS_PID1, PIDONE, "-P"]);
    const pid1 = await pid1Of(p.proc.pid);
    await waitFor(async () => {
      const cgt = (await Bun.file(`/proc/${pid1}/status`).text()).match(/SigCgt:\s*([0-9a-f]+)/)![1]!;
      return (BigInt(`0x${cgt}`) & 2n) !== 0n; // SIGINT caught
    });
    process.kill(pid1, "SIGINT");
    expect(await p.exit()).toBe(0);
  });

  test("started under the name `pause` behaves as --pause", async () => {
    const dir = tempDir();
    const pause = join(dir, "pause");
    symlinkSync(PIDONE, pause);
    const p = start([...AS_PID1, pause]);
    const pid1 = await pid1Of(p.proc.pid);
    await waitFor(async () => {
      const cgt = (await Bun.file(`/proc/${pid1}/status`).text()).match(/SigCgt:\s*([0-9a-f]+)/)![1]!;
      return (BigInt(`0x${cgt}`) & (1n << 14n)) !== 0n; // SIGTERM caught
    });
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
  });

  test("a PROGRAM together with -P is a usage error", async () => {
    const r = await run([PIDONE, "-P", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--pause takes no PROGRAM");
  });
});

describe("the whole-tree stop (--grace)", () => {
  test("after the main program exits, a detached daemon gets SIGTERM and can finish its work", async () => {
    const dir = tempDir();
    const flag = join(dir, "flushed");
    const daemon = script(dir, "daemon", `trap 'echo done > ${flag}; exit 0' TERM; while :; do sleep 0.05; done`);
    // setsid + background: the daemon leaves the main program's group and session.
    const r = await run([...AS_PID1, PIDONE, "--", "sh", "-c", `setsid ${daemon} & sleep 0.3; exit 3`]);
    expect(r.code).toBe(3);
    expect(readFileSync(flag, "utf8")).toBe("done\n");
  });

  test("what ignores SIGTERM is SIGKILLed when the grace ends, each named in a warning", async () => {
    const t0 = performance.now();
    const r = await run([...AS_PID1, PIDONE, "--grace", "1", "--", "sh", "-c", "setsid sh -c 'trap \"\" TERM; exec sleep 100' & sleep 0.3; exit 0"]);
    const elapsed = performance.now() - t0;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\[WARN  pidone \(1\)\] Killing pid \d+ \(sleep 100\)/);
    expect(elapsed).toBeLessThan(8000); // generous: the point is it did not wait for sleep 100
  });

  test("the grace counts from a stop signal, so a main program that ignores SIGTERM is killed in time", async () => {
    const p = start([...AS_PID1, PIDONE, "--grace", "1", "--", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("ready");
    process.kill(pid1, "SIGTERM");
    expect(await p.exit(10_000)).toBe(137);
    expect(p.stderr()).toContain("Killing pid");
  });

  test("--grace 0 leaves leftovers alone (tini's behaviour)", async () => {
    const dir = tempDir();
    const flag = join(dir, "flushed");
    const daemon = script(dir, "daemon", `trap 'echo done > ${flag}; exit 0' TERM; while :; do sleep 0.05; done`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "0", "--", "sh", "-c", `setsid ${daemon} & sleep 0.3; exit 0`]);
    expect(r.code).toBe(0);
    expect(existsSync(flag)).toBe(false); // the kernel SIGKILLed it with the namespace
  });

  test("PIDONE_GRACE sets the default", async () => {
    const r = await run([...AS_PID1, PIDONE, "--", "sh", "-c", "setsid sh -c 'trap \"\" TERM; exec sleep 100' & sleep 0.3"], {
      env: { PIDONE_GRACE: "0.5" },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Killing pid \d+ \(sleep 100\): still running 0.5 s/);
  });

  test("as a subreaper (-s, not PID 1), descendants that outlive the main program get SIGTERM", async () => {
    const dir = tempDir();
    const flag = join(dir, "flushed");
    const daemon = script(dir, "daemon", `trap 'echo done > ${flag}; exit 0' TERM; while :; do sleep 0.05; done`);
    const r = await run([PIDONE, "-s", "--", "sh", "-c", `setsid ${daemon} & sleep 0.3; exit 5`]);
    expect(r.code).toBe(5);
    expect(readFileSync(flag, "utf8")).toBe("done\n");
  });

  test("--stop-signals QUIT: SIGQUIT starts the stop as SIGTERM does", async () => {
    const p = start([...AS_PID1, PIDONE, "--grace", "1", "--stop-signals", "QUIT", "--", "sh", "-c", "trap '' QUIT; echo ready; while :; do sleep 0.05; done"]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("ready");
    process.kill(pid1, "SIGQUIT");
    expect(await p.exit(10_000)).toBe(137);
  });

  test("--stop-signals rejects an unknown signal", async () => {
    const r = await run([PIDONE, "--stop-signals", "TERM,NOPE", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("NOPE");
  });
});

describe("daemons that fork", () => {
  test("--wait-all exits when no child is left, with the first failure's status", async () => {
    const r = await run([...AS_PID1, PIDONE, "--wait-all", "--", "sh", "-c", "(sleep 0.6; exit 0) & (sleep 0.3; exit 3) & exit 0"]);
    expect(r.code).toBe(3);
  });

  test("--wait-all: 0 when everything succeeded, and it waited for the last one", async () => {
    const dir = tempDir();
    const flag = join(dir, "last");
    const t = await run([...AS_PID1, PIDONE, "--wait-all", "--", "sh", "-c", `(setsid sh -c 'sleep 0.5; touch ${flag}' &) ; exit 0`]);
    expect(t.code).toBe(0);
    expect(existsSync(flag)).toBe(true);
  });

  test("--wait-all: signals go to each remaining process group", async () => {
    const dir = tempDir();
    const a = join(dir, "a");
    const b = join(dir, "b");
    const p = start([...AS_PID1, PIDONE, "--wait-all", "--", "sh", "-c",
      `setsid sh -c 'trap "echo a > ${a}; exit 0" USR1; echo ready; while :; do sleep 0.05; done' & setsid sh -c 'trap "echo b > ${b}; exit 0" USR1; echo ready; while :; do sleep 0.05; done' & exit 0`]);
    const pid1 = await pid1Of(p.proc.pid);
    // The main sh reaped, only the two daemons left: a signal sent while sh is a zombie
    // not yet reaped would still go to it, as tini's does.
    await waitFor(async () => {
      const children = await childrenOf(pid1);
      return children.length === 2 && (await Promise.all(children.map(isRunning))).every(Boolean);
    }, 10_000, "the main program reaped and two adopted daemons");
    await p.waitStdout((t) => t.split("ready").length === 3);
    process.kill(pid1, "SIGUSR1");
    expect(await p.exit()).toBe(0);
    expect(readFileSync(a, "utf8")).toBe("a\n");
    expect(readFileSync(b, "utf8")).toBe("b\n");
  });

  test("--pidfile adopts the daemon: signals reach it and its status is pidone's", async () => {
    const dir = tempDir();
    const pidfile = join(dir, "d.pid");
    const daemon = script(dir, "daemon", `( sh -c 'echo $$ > ${pidfile}; trap "exit 7" TERM; while :; do sleep 0.05; done' & )\nexit 0`);
    const p = start([PIDONE, "-v", "--pidfile", pidfile, "--", daemon]);
    await p.waitStdout(/Adopted pid \d+/);
    process.kill(p.proc.pid, "SIGTERM");
    expect(await p.exit()).toBe(7);
  });

  test("--pidfile that never appears is an error (exit 1)", async () => {
    const dir = tempDir();
    const r = await run([PIDONE, "--pidfile", join(dir, "none.pid"), "--pidfile-timeout", "0.5", "--", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("did not appear");
  });

  test("--pidfile holding garbage or a foreign pid is an error (exit 1)", async () => {
    const dir = tempDir();
    const garbage = join(dir, "g.pid");
    writeFileSync(garbage, "not a pid\n");
    const r1 = await run([PIDONE, "--pidfile", garbage, "--pidfile-timeout", "0.3", "--", "true"]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain("holds no pid");
    const foreign = join(dir, "f.pid");
    writeFileSync(foreign, `${process.pid}\n`);
    const r2 = await run([PIDONE, "--pidfile", foreign, "--pidfile-timeout", "0.3", "--", "true"]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain("not a child of pidone");
  });

  test("--pidfile follows a daemon that re-execs into a new pid", async () => {
    const dir = tempDir();
    const pidfile = join(dir, "d.pid");
    // The first daemon starts its successor (which writes its own pid) and exits.
    const daemon = script(
      dir,
      "daemon",
      `( sh -c 'echo $$ > ${pidfile}; trap "sh -c \\"echo \\\\$\\\\$ > ${pidfile}; trap \\\\\\"exit 9\\\\\\" TERM; while :; do sleep 0.05; done\\" & sleep 0.3; exit 0" USR1; while :; do sleep 0.05; done' & )\nexit 0`,
    );
    const p = start([PIDONE, "-v", "--pidfile", pidfile, "--", daemon]);
    await p.waitStdout(/Adopted pid \d+/);
    process.kill(p.proc.pid, "SIGUSR1");
    await p.waitStdout(/Following pid \d+/);
    process.kill(p.proc.pid, "SIGTERM");
    expect(await p.exit()).toBe(9);
  });
});

describe("signal rewriting and sessions", () => {
  const catcher = `trap 'echo got-USR1' USR1; trap 'echo got-QUIT; exit 0' QUIT; trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done`;

  test("-r TERM:QUIT forwards SIGTERM as SIGQUIT", async () => {
    const p = start([PIDONE, "-r", "TERM:QUIT", "--", "sh", "-c", catcher]);
    await p.waitStdout("ready");
    process.kill(p.proc.pid, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect(p.stdout()).toContain("got-QUIT");
    expect(p.stdout()).not.toContain("got-TERM");
  });

  test("--rewrite accepts numbers and any case, and R = 0 drops the signal", async () => {
    const p = start([PIDONE, "--rewrite", "usr1:0", "--rewrite=15:sigquit", "--", "sh", "-c", catcher]);
    await p.waitStdout("ready");
    process.kill(p.proc.pid, "SIGUSR1");
    process.kill(p.proc.pid, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect(p.stdout()).not.toContain("got-USR1");
    expect(p.stdout()).toContain("got-QUIT");
  });

  test("a rewrite never changes pidone's own stop decision: TERM still starts the grace clock", async () => {
    const p = start([...AS_PID1, PIDONE, "--grace", "1", "-r", "TERM:USR1", "--", "sh", "-c", "trap 'echo usr1' USR1; echo ready; while :; do sleep 0.05; done"]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("ready");
    process.kill(pid1, "SIGTERM");
    expect(await p.exit(10_000)).toBe(137);
  });

  test("a bad --rewrite is a usage error", async () => {
    for (const bad of ["TERM", "TERM:", "NOPE:QUIT", "TERM:QUIT:X", "0:TERM"]) {
      const r = await run([PIDONE, "-r", bad, "true"]);
      expect(r.code).toBe(1);
    }
  });

  test("--setsid starts the child in a new session and signals reach its whole group", async () => {
    const dir = tempDir();
    const out = join(dir, "ids");
    const p = start([PIDONE, "--setsid", "--", "sh", "-c",
      `cut -d' ' -f1,6,5 /proc/$$/stat > ${out}; sh -c 'trap "echo grandchild-TERM; exit 0" TERM; echo ready; while :; do sleep 0.05; done' & wait`]);
    await p.waitStdout("ready");
    const [pid, pgid, sid] = readFileSync(out, "utf8").trim().split(/\s+/).map(Number);
    expect(sid).toBe(pid!);
    expect(pgid).toBe(pid!);
    process.kill(p.proc.pid, "SIGTERM");
    await p.waitStdout("grandchild-TERM");
    expect(await p.exit()).toBe(143);
  });

  test("--setsid: SIGTSTP to pidone stops the child's group with SIGSTOP", async () => {
    // The child forks nothing: a shell stopped while it vforks waits in D for its stopped
    // child, never showing T itself (seen once in 40 under load).
    const p = start([PIDONE, "--setsid", "--", "sh", "-c", "echo ready; exec sleep 1000"]);
    await p.waitStdout("ready");
    const child = (await childrenOf(p.proc.pid))[0]!;
    process.kill(p.proc.pid, "SIGTSTP");
    await waitFor(async () => (await Bun.file(`/proc/${child}/stat`).text()).split(") ")[1]!.startsWith("T"), 10_000, "child stopped");
    process.kill(p.proc.pid, "SIGCONT");
    await waitFor(async () => !(await Bun.file(`/proc/${child}/stat`).text()).split(") ")[1]!.startsWith("T"), 10_000, "child continued");
    process.kill(p.proc.pid, "SIGKILL");
    killQuietly(child);
    expect(await isRunning(p.proc.pid)).toBeDefined();
  });
});
