// The native helper's signal half (issue 4, parts 1 and 2): signals blocked from the
// stub's first instruction, so one sent before the runtime is up is acted on rather than
// lost (PID 1) or fatal (not PID 1); and the stub's handler, which catches what
// process.on cannot (STKFLT, every real-time signal) and forwards each delivery once,
// rewrites included. Skipped for the plain executable (PIDONE_BIN=dist/pidone-glibc).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AS_PID1, PIDONE, cHelper, needs, run, start } from "./helpers.ts";
import { SIGRTMAX, SIGRTMIN, SIGSTKFLT, countOf, pidoneHostPid, signalCounts } from "./fixtures/core-lib.ts";
import { NATIVE, SINGLE_FILE } from "./fixtures/native-lib.ts";

setDefaultTimeout(60_000);

const SIGUSR1 = 10;
const SIGUSR2 = 12;
const SIGTERM = 15;
const REALTIME = Array.from({ length: SIGRTMAX - SIGRTMIN + 1 }, (_, i) => SIGRTMIN + i);

needs(NATIVE, SINGLE_FILE)("a SIGTERM sent while the runtime is still starting", () => {
  // Microseconds after the stub's first instruction: in the stub, in ld.so, in the
  // runtime's start-up; the first line of pidone's JavaScript runs tens of ms later.
  for (const delayUs of [0, 1000, 5000]) {
    test(`${delayUs} µs after the first instruction, as PID 1: the child gets it and pidone exits 143`, async () => {
      const early = await cHelper("native-early");
      const r = await run([early, "--pid1", String(delayUs), String(SIGTERM), PIDONE, "--", "sleep", "100"]);
      expect(r.stdout, r.stderr).toStartWith("exited 143 ");
    });

    test(`${delayUs} µs after the first instruction, not PID 1: not fatal; forwarded, and pidone exits 143`, async () => {
      const early = await cHelper("native-early");
      const r = await run([early, String(delayUs), String(SIGTERM), PIDONE, "-s", "--", "sleep", "100"]);
      // "signaled 15" would be pidone itself killed by it.
      expect(r.stdout, r.stderr).toStartWith("exited 143 ");
    });
  }
});

// The single file spawns the child before it installs its signal handlers: a signal the
// child sends pidone the moment it runs lands in that window, pending, and must still
// reach the child (the plain file installs them first, and must behave the same).
describe("a signal the child sends pidone as soon as it runs", () => {
  const child = ["sh", "-c", "kill -TERM $PPID; exec sleep 100"];
  // Exits 143 with no signal of its own: killed by SIGTERM it would show signalCode
  // (unshare re-raises what killed its child).
  const exitsForwarded = async (cmd: string[]) => {
    const p = start(cmd);
    expect(await p.exit(), p.stderr()).toBe(143);
    expect(p.proc.signalCode).toBeNull();
  };
  test("as PID 1: forwarded back to the child, and pidone exits 143", () => exitsForwarded([...AS_PID1, PIDONE, "--", ...child]));
  test("not PID 1: not fatal; forwarded back, and pidone exits 143", () => exitsForwarded([PIDONE, "-s", "--", ...child]));
});

needs(NATIVE, SINGLE_FILE)("signals process.on cannot catch", () => {
  const ways = [
    { name: "as PID 1", prefix: [...AS_PID1, PIDONE], pid1: true },
    { name: "not PID 1 (-s)", prefix: [PIDONE, "-s"], pid1: false },
  ];
  for (const way of ways) {
    test(`STKFLT and every real-time signal (34-64) reach the child exactly once each, ${way.name}`, async () => {
      const sigcount = await cHelper("core-sigcount");
      const p = start([...way.prefix, "--", sigcount], { stdin: "pipe" });
      try {
        await p.waitStdout(/^ready /m);
        const target = await pidoneHostPid(p, way.pid1);
        for (const sig of [SIGSTKFLT, ...REALTIME]) {
          process.kill(target, sig);
          await p.waitStdout((out) => countOf(out, sig) >= 1).catch((e) => {
            throw new Error(`signal ${sig} was not forwarded: ${e.message}`);
          });
        }
        p.closeStdin();
        expect(await p.exit()).toBe(0);
        const want = [SIGSTKFLT, ...REALTIME].map((s): [number, number] => [s, 1]);
        expect([...signalCounts(p.stdout())].sort((a, b) => a[0]! - b[0]!)).toEqual(want);
      } finally {
        p.proc.kill("SIGKILL");
      }
    });
  }

  test("-r rewrites apply in the handler: RTMIN+2 goes out as RTMIN+3, USR1 is dropped, TERM as QUIT", async () => {
    const sigcount = await cHelper("core-sigcount");
    const p = start([PIDONE, "-s", "-r", "RTMIN+2:RTMIN+3", "-r", "USR1:0", "-r", "TERM:QUIT", "--", sigcount], { stdin: "pipe" });
    try {
      await p.waitStdout(/^ready /m);
      process.kill(p.proc.pid, SIGRTMIN + 2);
      await p.waitStdout((out) => countOf(out, SIGRTMIN + 3) === 1);
      process.kill(p.proc.pid, SIGUSR1);
      process.kill(p.proc.pid, SIGTERM);
      await p.waitStdout((out) => countOf(out, 3) === 1);
      // USR2 after USR1: once it is through, USR1 was dealt with (dropped).
      process.kill(p.proc.pid, SIGUSR2);
      await p.waitStdout((out) => countOf(out, SIGUSR2) === 1);
      p.closeStdin();
      expect(await p.exit()).toBe(0);
      expect([...signalCounts(p.stdout())].sort((a, b) => a[0]! - b[0]!)).toEqual([
        [3, 1],
        [SIGUSR2, 1],
        [SIGRTMIN + 3, 1],
      ]);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("-vv still logs each signal the handler forwarded (and one it dropped)", async () => {
    const sigcount = await cHelper("core-sigcount");
    const p = start([PIDONE, "-s", "-vv", "-r", "USR2:0", "--", sigcount], { stdin: "pipe" });
    try {
      await p.waitStdout(/^ready /m);
      process.kill(p.proc.pid, SIGRTMIN + 5);
      await p.waitStdout("Passing signal: 'Real-time signal 5'");
      process.kill(p.proc.pid, SIGUSR2);
      await p.waitStdout("Dropping signal: 'User defined signal 2'");
      p.closeStdin();
      expect(await p.exit()).toBe(0);
      expect(countOf(p.stdout(), SIGRTMIN + 5)).toBe(1);
      expect(countOf(p.stdout(), SIGUSR2)).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});
