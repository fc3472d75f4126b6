// Exit codes, as tini's run_inner_tests.py checks them: -e remaps, 128+N for a child
// killed by signal N, and the child's own code passed through unchanged.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AS_PID1, PIDONE, cHelper, isRunning, killQuietly, mapLimit, run } from "./helpers.ts";

setDefaultTimeout(60_000);

const CODES = Array.from({ length: 256 }, (_, i) => i);
// 512 short runs: enough in flight to finish quickly, few enough for a loaded 2-core box.
const IN_FLIGHT = 6;

describe("exit codes with -e (tini's exit code test)", () => {
  test("-e N remaps exit code N to 0, for each of the 256 codes", async () => {
    const wrong = (
      await mapLimit(CODES, IN_FLIGHT, async (code) => {
        const r = await run([PIDONE, "-s", "-e", String(code), "--", "sh", "-c", `exit ${code}`]);
        return r.code === 0 ? null : `-e ${code}: exited ${r.code} (${r.stderr.trim()})`;
      })
    ).filter(Boolean);
    expect(wrong).toEqual([]);
  }, 180_000);

  test("-e with every other code leaves code N as it is, for each of the 256 codes (no --)", async () => {
    const wrong = (
      await mapLimit(CODES, IN_FLIGHT, async (code) => {
        const others = CODES.filter((c) => c !== code).flatMap((c) => ["-e", String(c)]);
        const r = await run([PIDONE, "-s", ...others, "sh", "-c", `exit ${code}`]);
        return r.code === code ? null : `all but ${code}: exited ${r.code} (${r.stderr.trim()})`;
      })
    ).filter(Boolean);
    expect(wrong).toEqual([]);
  }, 180_000);

  test("attached and long forms: -e3, --expect-exit=3, --expect-exit 3", async () => {
    for (const opts of [["-e3"], ["--expect-exit=3"], ["--expect-exit", "3"], ["-se3"]]) {
      const r = await run([PIDONE, "-s", ...opts, "sh", "-c", "exit 3"]);
      expect({ opts, code: r.code }).toEqual({ opts, code: 0 });
    }
  });

  // Not PID 1 and no -s: nothing to sweep, so in the single file the signal handler that
  // reaps the main child also exits for pidone, through the table pidone built for it.
  test("without -s too (the single file exits from its handler): -e N remaps N to 0 and leaves N+1, for each code", async () => {
    const wrong = (
      await mapLimit(CODES, IN_FLIGHT, async (code) => {
        const next = String((code + 1) % 256);
        const remapped = await run([PIDONE, "-e", next, "-e", String(code), "--", "sh", "-c", `exit ${code}`]);
        const kept = await run([PIDONE, "-e", next, "--", "sh", "-c", `exit ${code}`]);
        if (remapped.code !== 0) return `-e ${code}: exited ${remapped.code} (${remapped.stderr.trim()})`;
        return kept.code === code ? null : `-e ${next} only: exited ${kept.code}, not ${code} (${kept.stderr.trim()})`;
      })
    ).filter(Boolean);
    expect(wrong).toEqual([]);
  }, 180_000);

  test("-e applies to 128+N too: -e 143 turns a child killed by SIGTERM into 0", async () => {
    const killself = await cHelper("core-killself");
    expect((await run([PIDONE, "-s", "-e", "143", "--", killself, "15"])).code).toBe(0);
    expect((await run([PIDONE, "-s", "-e", "142", "--", killself, "15"])).code).toBe(143);
    expect((await run([PIDONE, "-e", "143", "--", killself, "15"])).code).toBe(0);
    expect((await run([PIDONE, "-e", "142", "--", killself, "15"])).code).toBe(143);
    expect((await run([PIDONE, "--", killself, "9"])).code).toBe(137);
    // As PID 1 with nothing else left to stop, the handler exits for pidone too.
    expect((await run([...AS_PID1, PIDONE, "-e", "143", "--", killself, "15"])).code).toBe(0);
    expect((await run([...AS_PID1, PIDONE, "-e", "142", "--", killself, "15"])).code).toBe(143);
  });
});

describe("the child's exit status", () => {
  const SIGNALS: Array<[string, number]> = [
    ["HUP", 1], ["INT", 2], ["QUIT", 3], ["ABRT", 6], ["KILL", 9], ["USR1", 10], ["SEGV", 11],
    ["USR2", 12], ["PIPE", 13], ["TERM", 15], ["SYS", 31], ["RTMIN", 34], ["RTMAX", 64],
  ];

  test("a child killed by signal N makes pidone exit 128+N (not PID 1)", async () => {
    const killself = await cHelper("core-killself");
    const got = await mapLimit(SIGNALS, 4, async ([name, n]) => {
      const r = await run([PIDONE, "-s", "--", killself, String(n)]);
      return [name, r.code] as const;
    });
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(SIGNALS.map(([name, n]) => [name, 128 + n])));
  });

  test("a child killed by signal N makes pidone exit 128+N (as PID 1)", async () => {
    const killself = await cHelper("core-killself");
    const some = SIGNALS.filter(([name]) => ["INT", "KILL", "SEGV", "TERM", "RTMIN"].includes(name));
    const got = await mapLimit(some, 3, async ([name, n]) => {
      const r = await run([...AS_PID1, PIDONE, "--", killself, String(n)]);
      return [name, r.code] as const;
    });
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(some.map(([name, n]) => [name, 128 + n])));
  });

  test("exit codes pass through unchanged, as PID 1 and not", async () => {
    for (const code of [0, 1, 2, 3, 42, 126, 127, 128, 137, 254, 255]) {
      const asChild = await run([PIDONE, "-s", "--", "sh", "-c", `exit ${code}`]);
      const asPid1 = await run([...AS_PID1, PIDONE, "--", "sh", "-c", `exit ${code}`]);
      expect({ code, asChild: asChild.code, asPid1: asPid1.code }).toEqual({ code, asChild: code, asPid1: code });
    }
  });

  test("pidone exits with its child's code while the child's own children still run (not PID 1, no subreaper)", async () => {
    // Not PID 1 and no subreaper: the leftover is not pidone's to stop, and pidone does not
    // wait for it (tini). Its output goes to /dev/null so that reading pidone's ends.
    const r = await run([PIDONE, "--", "sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!; exit 3"], {
      env: { TINI_VERBOSITY: "0" },
    });
    const leftover = Number(r.stdout.trim());
    try {
      expect(r.code).toBe(3);
      expect(leftover).toBeGreaterThan(0);
      expect(await isRunning(leftover)).toBe(true);
    } finally {
      if (leftover > 0) killQuietly(leftover);
    }
  });
});
