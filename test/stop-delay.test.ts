// --stop-delay (issue 15): a stop signal reaches the program (tini's mode) or starts the
// ordered stop (services) only once the delay is over; a second stop signal during it
// proceeds at once; a delay not shorter than the grace is refused. The built file, for
// real, as PID 1 of a PID namespace and as a subreaper.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, cHelper, linesOf, run, start, tempDir, waitFor, type Started } from "./helpers.ts";
import { pidoneHostPid, placements } from "./fixtures/core-lib.ts";

setDefaultTimeout(60_000);

const SIGTERM = 15;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function sigtermsIn(stdout: string): number {
  return stdout.match(/^SIG 15$/gm)?.length ?? 0;
}

/** Milliseconds from now until `cond` holds. */
async function msUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now();
  await waitFor(cond, timeoutMs, what);
  return performance.now() - t0;
}

describe("tini's mode", () => {
  for (const where of placements(PIDONE).slice(0, 2)) {
    test(`the child gets SIGTERM only after the delay, ${where.name}`, async () => {
      const sigcount = await cHelper("core-sigcount");
      const p = start([...where.prefix, ...where.options, "--stop-delay", "1.5", "--", sigcount], { stdin: "pipe", env: where.env });
      try {
        await p.waitStdout(/^ready /m);
        const target = await pidoneHostPid(p, where.pid1);
        process.kill(target, SIGTERM);
        const ms = await msUntil(() => sigtermsIn(p.stdout()) === 1, 20_000, "SIGTERM at the child");
        expect(ms).toBeGreaterThanOrEqual(1400);
        p.closeStdin();
        expect(await p.exit()).toBe(0);
        expect(sigtermsIn(p.stdout())).toBe(1);
      } finally {
        p.proc.kill("SIGKILL");
      }
    });
  }

  test("a second SIGTERM during the delay forwards at once", async () => {
    const sigcount = await cHelper("core-sigcount");
    const p = start([...AS_PID1, PIDONE, "--grace", "60", "--stop-delay", "30", "--", sigcount], { stdin: "pipe" });
    try {
      await p.waitStdout(/^ready /m);
      const target = await pidoneHostPid(p, true);
      process.kill(target, SIGTERM);
      await Bun.sleep(500); // the absence of a forward, for that long
      expect(sigtermsIn(p.stdout())).toBe(0);
      process.kill(target, SIGTERM);
      // Far below the 30 s delay, even on a loaded machine. Both go out back to back, and
      // the kernel merges a SIGTERM sent while another is still pending: one or two arrive.
      const ms = await msUntil(() => sigtermsIn(p.stdout()) >= 1, 15_000, "the SIGTERMs at the child");
      expect(ms).toBeLessThan(15_000);
      p.closeStdin();
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("-v says the delay, PIDONE_STOP_DELAY sets it, the grace still counts from the first signal", async () => {
    const p = start([...AS_PID1, PIDONE, "-v", "--grace", "3", "--", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"], {
      env: { PIDONE_STOP_DELAY: "1" },
    });
    try {
      await p.waitStdout(/^ready$/m);
      const target = await pidoneHostPid(p, true);
      const t0 = performance.now();
      process.kill(target, SIGTERM);
      await p.waitStdout("Received SIGTERM: forwarding it in 1 s (--stop-delay)", 10_000);
      // The child ignores SIGTERM: the grace (3 s, the delay inside it) ends in SIGKILL.
      expect(await p.exit(30_000)).toBe(137);
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(2800);
      expect(ms).toBeLessThan(3000 + 1000 + 15_000);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});

describe("services mode", () => {
  const script = "trap 'echo got-term; exit 0' TERM; echo up; while :; do sleep 0.05; done";

  async function started(args: string[]): Promise<{ p: Started; target: number }> {
    const p = start([...AS_PID1, PIDONE, ...args]);
    await p.waitStdout(/^a\s*\| up$/m, 20_000);
    return { p, target: await pidoneHostPid(p, true) };
  }

  test("the ordered stop begins only after stop_delay (TOML), and the event says so", async () => {
    const dir = tempDir("pidone-stopdelay-");
    dirs.push(dir);
    const file = join(dir, "app.toml");
    writeFileSync(file, `[settings]\nstop_delay = 1.5\n[services.a]\ncommand = ${JSON.stringify(script)}\nshell = true\n`);
    const { p, target } = await started(["-c", file]);
    try {
      process.kill(target, SIGTERM);
      await p.waitStdout("pidone | received SIGTERM: stopping in 1.5 s (stop_delay)", 10_000);
      const ms = await msUntil(() => linesOf(p.stdout(), "a").includes("got-term"), 20_000, "the service's SIGTERM");
      // The delay is counted from the signal; the event above came a little after it.
      expect(ms).toBeGreaterThanOrEqual(1000);
      expect(await p.exit(30_000)).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("--stop-delay with --service: a second SIGTERM starts the stop at once", async () => {
    const { p, target } = await started(["--grace", "60", "--stop-delay", "30", "--service", `a: ${script}`]);
    try {
      process.kill(target, SIGTERM);
      await p.waitStdout("stopping in 30 s (stop_delay)", 10_000);
      await Bun.sleep(300);
      expect(linesOf(p.stdout(), "a")).not.toContain("got-term");
      process.kill(target, SIGTERM);
      await msUntil(() => linesOf(p.stdout(), "a").includes("got-term"), 15_000, "the service's SIGTERM");
      expect(await p.exit(30_000)).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});

describe("usage", () => {
  test("a delay not shorter than the grace, or not a number, is a usage error (exit 1)", async () => {
    const equal = await run([PIDONE, "--stop-delay", "5", "true"]);
    expect(equal.code).toBe(1);
    expect(equal.stderr).toContain("--stop-delay (5 s) must be shorter than the grace (5 s): the delay counts inside it");
    const env = await run([PIDONE, "--grace", "2", "true"], { env: { PIDONE_STOP_DELAY: "3" } });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain("PIDONE_STOP_DELAY (3 s) must be shorter than the grace (2 s)");
    const word = await run([PIDONE, "--stop-delay", "soon", "true"]);
    expect(word.code).toBe(1);
    expect(word.stderr).toContain("Not a valid option for --stop-delay: soon");
    const ok = await run([PIDONE, "--stop-delay", "4.5", "--", "sh", "-c", "exit 3"]);
    expect(ok.code).toBe(3);
    const help = await run([PIDONE, "--help"]);
    expect(help.stdout).toContain("--stop-delay=<SECONDS>");
    expect(help.stdout).toContain("PIDONE_STOP_DELAY");
  });

  test("--check: stop_delay against the grace, wherever each was set (exit 2)", async () => {
    const dir = tempDir("pidone-stopdelay-");
    dirs.push(dir);
    const file = join(dir, "app.toml");
    writeFileSync(file, '[settings]\ngrace = 4\nstop_delay = 4\n[services.a]\ncommand = "true"\n');
    const bad = await run([PIDONE, "--check", "-c", file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`${file}:3: settings.stop_delay: stop_delay (4 s) must be shorter than the grace (4 s): the delay counts inside it\n`);
    const flag = await run([PIDONE, "--check", "--stop-delay", "1", "--grace", "1", "--service", "a: true"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("--stop-delay (1 s) must be shorter than the grace (1 s)");
    const fine = await run([PIDONE, "--check", "--stop-delay", "3", "-c", file]);
    expect(fine.code).toBe(0);
  });
});
