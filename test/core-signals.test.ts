// Signal forwarding: each signal tini forwards reaches the child exactly once per
// delivery, as PID 1 and not; signals pidone must survive; tini's signals test (the
// child dies of the forwarded signal and pidone exits 128+N).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { PIDONE, cHelper, isRunning, processState, start, waitForChildRunning } from "./helpers.ts";
import {
  FORWARDED,
  SIGRTMAX,
  SIGRTMIN,
  SIGSTKFLT,
  countOf,
  pidoneHostPid,
  placements,
  signalCounts,
} from "./fixtures/core-lib.ts";

setDefaultTimeout(60_000);

const SIGTTIN = 21;
const SIGTTOU = 22;
const SIGUSR1 = 10;
const SIGCHLD = 17;

describe("each forwarded signal arrives exactly once", () => {
  const cases = [
    ...placements(PIDONE),
    { name: "with -g (to the child's process group)", prefix: [PIDONE], options: ["-s", "-g"], env: {}, pid1: false },
  ];
  for (const where of cases) {
    test(`${Object.keys(FORWARDED).join(" ")} ${where.name}; TTIN/TTOU/CHLD sent to pidone do not reach the child`, async () => {
      const sigcount = await cHelper("core-sigcount");
      const p = start([...where.prefix, ...where.options, "--", sigcount], { stdin: "pipe", env: where.env });
      try {
        await p.waitStdout(/^ready /m);
        const target = await pidoneHostPid(p, where.pid1);
        // pidone ignores TTIN/TTOU itself so that it never stops on terminal I/O.
        process.kill(target, SIGTTIN);
        process.kill(target, SIGTTOU);
        // SIGCHLD drives pidone's reaping and is never forwarded.
        process.kill(target, SIGCHLD);
        // INT and TERM go last: they also start pidone's stop (issue 5's grace clock).
        const order = Object.entries(FORWARDED).sort(([a], [b]) => Number(a === "INT" || a === "TERM") - Number(b === "INT" || b === "TERM"));
        for (const [name, sig] of order) {
          process.kill(target, sig);
          await p.waitStdout(new RegExp(`^SIG ${sig}$`, "m")).catch((e) => {
            throw new Error(`SIG${name} (${sig}) was not forwarded: ${e.message}`);
          });
        }
        expect(await processState(target)).not.toBe("T");
        p.closeStdin();
        expect(await p.exit()).toBe(0);
        const expected = new Map(Object.values(FORWARDED).map((s) => [s, 1]));
        expect([...signalCounts(p.stdout())].sort((a, b) => a[0] - b[0])).toEqual(
          [...expected].sort((a, b) => a[0] - b[0]),
        );
      } finally {
        p.proc.kill("SIGKILL");
      }
    }, 60_000);
  }

  test("a signal sent twice, after the first arrived, arrives twice", async () => {
    const sigcount = await cHelper("core-sigcount");
    const p = start([PIDONE, "-s", "--", sigcount], { stdin: "pipe" });
    try {
      await p.waitStdout(/^ready /m);
      for (let i = 1; i <= 3; i++) {
        process.kill(p.proc.pid, "SIGUSR1");
        await p.waitStdout((out) => countOf(out, SIGUSR1) >= i);
      }
      p.closeStdin();
      expect(await p.exit()).toBe(0);
      expect(countOf(p.stdout(), SIGUSR1)).toBe(3);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});

describe("signals pidone survives", () => {
  test("SIGSTKFLT and real-time signals do not kill a pidone that is not PID 1", async () => {
    const sigcount = await cHelper("core-sigcount");
    const p = start([PIDONE, "-s", "--", sigcount], { stdin: "pipe" });
    try {
      await p.waitStdout(/^ready /m);
      for (const sig of [SIGSTKFLT, SIGRTMIN, SIGRTMIN + 1, SIGRTMIN + 15, SIGRTMAX - 1, SIGRTMAX]) process.kill(p.proc.pid, sig);
      // Still alive and still forwarding afterwards.
      process.kill(p.proc.pid, "SIGUSR1");
      await p.waitStdout(/^SIG 10$/m);
      expect(await isRunning(p.proc.pid)).toBe(true);
      p.closeStdin();
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});

describe("tini's signals test: the child dies of the forwarded signal", () => {
  for (const where of placements(PIDONE)) {
    for (const [name, sig] of [["TERM", 15], ["USR1", 10], ["USR2", 12]] as const) {
      test(`SIG${name} to pidone ${where.name} ends a child without a handler: exit ${128 + sig}`, async () => {
        const p = start([...where.prefix, ...where.options, "--", "sh", "-c", "echo started; exec sleep 1000"], { env: where.env });
        try {
          await p.waitStdout("started\n");
          const target = await pidoneHostPid(p, where.pid1);
          // The child execs sleep after printing: wait until it is sleep that runs.
          await waitForChildRunning(target, "sleep");
          process.kill(target, sig);
          expect(await p.exit()).toBe(128 + sig);
        } finally {
          p.proc.kill("SIGKILL");
        }
      });
    }
  }
});
