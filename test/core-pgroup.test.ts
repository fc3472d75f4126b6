// Process groups: the child leads its own group, and -g / TINI_KILL_PROCESS_GROUP send
// forwarded signals to that whole group, reaching a grandchild (tini's pgroup test).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AS_PID1, PIDONE, cHelper, childrenOf, isRunning, start, waitFor } from "./helpers.ts";
import { countOf, pidoneHostPid, placements } from "./fixtures/core-lib.ts";

setDefaultTimeout(60_000);

const SIGUSR1 = 10;

async function pgidOf(pid: number): Promise<number> {
  const stat = await Bun.file(`/proc/${pid}/stat`).text();
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

describe("the child's process group", () => {
  for (const where of placements(PIDONE)) {
    test(`the child leads a process group of its own, not pidone's, ${where.name}`, async () => {
      const sigcount = await cHelper("core-sigcount");
      const p = start([...where.prefix, ...where.options, "--", sigcount], { stdin: "pipe", env: where.env });
      try {
        await p.waitStdout(/^ready /m);
        const [, pid, pgid] = /^ready pid=(\d+) pgid=(\d+)$/m.exec(p.stdout())!;
        expect(pgid).toBe(pid);
        const pidone = await pidoneHostPid(p, where.pid1);
        const [child] = await childrenOf(pidone);
        expect(await pgidOf(child!)).toBe(child!);
        expect(await pgidOf(pidone)).not.toBe(child);
        p.closeStdin();
        expect(await p.exit()).toBe(0);
      } finally {
        p.proc.kill("SIGKILL");
      }
    });
  }
});

describe("signals to the process group (tini's pgroup test)", () => {
  // The child ignores SIGUSR1 and waits for a grandchild that does not: only a signal to
  // the whole group ends the grandchild, and then the child and pidone.
  const script = 'sleep 1000 & trap "" USR1; echo "grandchild=$!"; wait $!; echo "waited=$?"; exit 0';
  const cases: Array<{ name: string; cmd: string[]; env: Record<string, string>; pid1: boolean }> = [
    { name: "-g", cmd: [PIDONE, "-s", "-g"], env: {}, pid1: false },
    { name: "TINI_KILL_PROCESS_GROUP=1", cmd: [PIDONE, "-s"], env: { TINI_KILL_PROCESS_GROUP: "1" }, pid1: false },
    { name: "TINI_KILL_PROCESS_GROUP= (set but empty)", cmd: [PIDONE, "-s"], env: { TINI_KILL_PROCESS_GROUP: "" }, pid1: false },
    { name: "-g as PID 1", cmd: [...AS_PID1, PIDONE, "-g"], env: {}, pid1: true },
  ];
  for (const c of cases) {
    test(`${c.name}: SIGUSR1 reaches the grandchild, and everything ends`, async () => {
      const p = start([...c.cmd, "--", "sh", "-c", script], { env: c.env });
      try {
        await p.waitStdout(/^grandchild=\d+$/m);
        const pidone = await pidoneHostPid(p, c.pid1);
        // The child must have set its trap before the signal comes: wait for it to sit in wait.
        const child = (await childrenOf(pidone))[0]!;
        const grandchild = await waitFor(async () => (await childrenOf(child))[0] ?? 0, 15_000, "the grandchild");
        await waitFor(async () => (await Bun.file(`/proc/${grandchild}/comm`).text()).trim() === "sleep", 15_000, "sleep to run");
        process.kill(pidone, "SIGUSR1");
        expect(await p.exit()).toBe(0);
        expect(p.stdout()).toContain(`waited=${128 + SIGUSR1}`);
        expect(await isRunning(grandchild)).toBe(false);
      } finally {
        p.proc.kill("SIGKILL");
      }
    });
  }

  test("without -g a forwarded signal reaches the child only, not its group", async () => {
    const sigcount = await cHelper("core-sigcount");
    // The grandchild catches everything and reports; the child ignores USR1 and waits.
    const p = start(
      [PIDONE, "-s", "-vv", "--", "sh", "-c", 'trap "" USR1; exec 3<&0; "$0" <&3 & wait $!', sigcount],
      { stdin: "pipe" },
    );
    try {
      await p.waitStdout(/^ready /m);
      process.kill(p.proc.pid, "SIGUSR1");
      // pidone logs the forward just before it signals.
      await p.waitStdout("Passing signal");
      p.closeStdin();
      expect(await p.exit()).toBe(0);
      expect(countOf(p.stdout(), SIGUSR1)).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});
