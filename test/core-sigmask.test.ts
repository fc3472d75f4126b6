// The signal state the child starts with (tini's sigconf test): the mask pidone was
// started with, the signals its parent left ignored, and nothing else — whatever pidone
// and the Bun runtime catch or ignore for themselves is default again in the child.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AS_PID1, PIDONE, cHelper, maskToSignals, run } from "./helpers.ts";
import { SIGRTMAX, SIGRTMIN, SIGSTKFLT } from "./fixtures/core-lib.ts";

setDefaultTimeout(30_000);

const SIG = { INT: 2, ILL: 4, SEGV: 11, PIPE: 13, TERM: 15, TTIN: 21, TTOU: 22, XFSZ: 25 } as const;

interface SignalState {
  blocked: number[];
  ignored: number[];
  caught: number[];
}

function parseStatus(text: string): SignalState {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m").exec(text);
    if (!m) throw new Error(`no ${name} in:\n${text}`);
    return maskToSignals(m[1]!);
  };
  return { blocked: field("SigBlk"), ignored: field("SigIgn"), caught: field("SigCgt") };
}

/** The signal state of `cat /proc/self/status` run as pidone's child (cat installs no handlers). */
async function childSignalState(launcher: string[], pidone: string[]): Promise<SignalState> {
  const r = await run([...launcher, ...pidone, "--", "cat", "/proc/self/status"]);
  expect(r.code).toBe(0);
  return parseStatus(r.stdout);
}

const WAYS = [
  { name: "not PID 1 (-s)", pidone: [PIDONE, "-s"] },
  { name: "as PID 1", pidone: [...AS_PID1, PIDONE] },
];

describe("tini's sigconf test: TTOU, SEGV, INT ignored and TTIN, ILL, TERM blocked by the parent", () => {
  for (const way of WAYS) {
    test(`SigIgn has TTOU, SEGV, INT and SigBlk has TTIN, ILL, TERM in the child, ${way.name}`, async () => {
      const sigconf = await cHelper("core-sigconf");
      const s = await childSignalState([sigconf], way.pidone);
      expect(s.blocked).toEqual(expect.arrayContaining([SIG.TTIN, SIG.ILL, SIG.TERM]));
      expect({ ignored: s.ignored }).toEqual({ ignored: expect.arrayContaining([SIG.TTOU, SIG.SEGV, SIG.INT]) });
    });

    test(`the child's mask is exactly the one pidone was started with, ${way.name}`, async () => {
      const sigconf = await cHelper("core-sigconf");
      const s = await childSignalState([sigconf], way.pidone);
      expect(s.blocked).toEqual([SIG.ILL, SIG.TERM, SIG.TTIN]);
    });

    test(`the child has no handlers and ignores exactly what pidone's parent ignored, ${way.name}`, async () => {
      const sigconf = await cHelper("core-sigconf");
      const s = await childSignalState([sigconf], way.pidone);
      expect(s.caught).toEqual([]);
      expect(s.ignored).toEqual([SIG.INT, SIG.SEGV, SIG.TTOU]);
    });
  }

  test("SIGPIPE and SIGXFSZ (ignored by the Bun runtime) are default in the child", async () => {
    const sigconf = await cHelper("core-sigconf");
    for (const way of WAYS) {
      const s = await childSignalState([sigconf], way.pidone);
      expect({ way: way.name, pipe: s.ignored.includes(SIG.PIPE), xfsz: s.ignored.includes(SIG.XFSZ) }).toEqual({
        way: way.name,
        pipe: false,
        xfsz: false,
      });
    }
  });

  test("SIGTTIN (ignored by pidone itself), SIGSTKFLT and the real-time signals are default in the child", async () => {
    const sigconf = await cHelper("core-sigconf");
    const own = [SIG.TTIN, SIGSTKFLT, ...Array.from({ length: SIGRTMAX - SIGRTMIN + 1 }, (_, i) => SIGRTMIN + i)];
    for (const way of WAYS) {
      const s = await childSignalState([sigconf], way.pidone);
      expect({ way: way.name, ignored: s.ignored.filter((n) => own.includes(n)) }).toEqual({ way: way.name, ignored: [] });
    }
  });
});

describe("a parent that ignores every signal it can", () => {
  // Everything but KILL, STOP, CHLD and glibc's 32/33 is ignored by core-sigconf --ignore-all;
  // the child must keep all of it ignored except PIPE and XFSZ, which pidone cannot tell
  // from the runtime's own SIG_IGN and hands on at their default (by design).
  const expected = Array.from({ length: 64 }, (_, i) => i + 1).filter(
    (n) => ![9, 17, 19, 32, 33, SIG.PIPE, SIG.XFSZ].includes(n),
  );
  for (const way of WAYS) {
    test(`keeps them ignored in the child, including those the runtime handles itself (ILL TRAP ABRT BUS FPE SEGV PWR SYS), ${way.name}`, async () => {
      const sigconf = await cHelper("core-sigconf");
      const r = await run([sigconf, "--ignore-all", ...way.pidone, "--", "cat", "/proc/self/status"]);
      expect(r.code).toBe(0);
      const s = parseStatus(r.stdout);
      const missing = expected.filter((n) => !s.ignored.includes(n));
      const extra = s.ignored.filter((n) => !expected.includes(n));
      expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    });
  }

  test("pidone prints nothing of its own (no runtime message about SIGPWR)", async () => {
    const sigconf = await cHelper("core-sigconf");
    const r = await run([sigconf, "--ignore-all", PIDONE, "-s", "--", "true"]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
  });
});

describe("glibc's internal signals", () => {
  test("signals 32 and 33 (glibc's SIGCANCEL/SIGSETXID) are not ignored in the child, as after tini's fork+exec", async () => {
    // glibc's posix_spawn sets them to SIG_IGN in the child unless they are in the
    // spawn attributes' default set, which sigaddset refuses but the raw set can hold.
    for (const way of WAYS) {
      const s = await childSignalState([], way.pidone);
      expect({ way: way.name, ignored: s.ignored.filter((n) => n === 32 || n === 33) }).toEqual({ way: way.name, ignored: [] });
    }
  });
});

describe("a parent that blocks and ignores nothing", () => {
  test("the child starts with an empty mask, no ignored signals and no handlers", async () => {
    for (const way of WAYS) {
      // Bun.spawn starts us with everything default and unblocked.
      const s = await childSignalState([], way.pidone);
      expect({ way: way.name, ...s }).toEqual({ way: way.name, blocked: [], ignored: [], caught: [] });
    }
  });

  test("TTOU, which pidone ignores for itself, is default in the child", async () => {
    const s = await childSignalState([], [PIDONE, "-s"]);
    expect(s.ignored).not.toContain(SIG.TTOU);
    expect(s.ignored).not.toContain(SIG.TTIN);
  });
});
