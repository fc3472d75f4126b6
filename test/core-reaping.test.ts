// Reaping, as tini's reaping tests check it: 200 orphans adopted and reaped with none
// left, as PID 1 and as a subreaper; -w names each one; the not-PID-1 warning.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { PIDONE, cHelper, run } from "./helpers.ts";
import { placements } from "./fixtures/core-lib.ts";

setDefaultTimeout(60_000);

const ORPHANS = 200;
const WARNING = "zombie reaping won't work";
const REAPED = /Reaped zombie process with pid=(\d+)/g;

function orphanPids(stdout: string): number[] {
  return [...stdout.matchAll(/^orphan (\d+)$/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

describe("reaping orphans", () => {
  for (const where of placements(PIDONE)) {
    test(`reaps ${ORPHANS} orphans ${where.name} with none left, silently without -w`, async () => {
      const orphans = await cHelper("core-orphans");
      const r = await run([...where.prefix, ...where.options, "--", orphans, String(ORPHANS)], { env: where.env, timeoutMs: 60_000 });
      expect(r.stdout).toContain(`orphans=${ORPHANS} reports=${ORPHANS} adopted=${ORPHANS} left=0`);
      expect(r.code).toBe(0);
      expect(r.stderr).not.toContain("Reaped zombie process");
      expect(r.stderr).not.toContain(WARNING);
    }, 90_000);

    test(`-w names each of ${ORPHANS} reaped orphans ${where.name} on stderr`, async () => {
      const orphans = await cHelper("core-orphans");
      const r = await run([...where.prefix, ...where.options, "-w", "--", orphans, String(ORPHANS)], { env: where.env, timeoutMs: 60_000 });
      expect(r.code).toBe(0);
      const reaped = [...r.stderr.matchAll(REAPED)].map((m) => Number(m[1])).sort((a, b) => a - b);
      // Exactly the orphans: not the main child, not the intermediate parents it waited for.
      expect(reaped).toEqual(orphanPids(r.stdout));
      expect(reaped.length).toBe(ORPHANS);
      expect(r.stdout).not.toContain("Reaped zombie process");
    }, 90_000);
  }

  test("TINI_SUBREAPER set to anything (even 0) registers the subreaper", async () => {
    const orphans = await cHelper("core-orphans");
    const r = await run([PIDONE, "--", orphans, "20"], { env: { TINI_SUBREAPER: "0" } });
    expect(r.stdout).toContain("adopted=20 left=0");
    expect(r.code).toBe(0);
  });
});

describe("the not-PID-1 warning (tini's zombie reaping failure test)", () => {
  test("warns with tini's text when neither PID 1 nor a subreaper (TINI_VERBOSITY=1), and orphans escape", async () => {
    const orphans = await cHelper("core-orphans");
    const r = await run([PIDONE, "--", orphans, "10"], { env: { TINI_VERBOSITY: "1" } });
    expect(r.stderr).toContain(WARNING);
    expect(r.stderr).toMatch(/^\[WARN  pidone \(\d+\)\] /);
    expect(r.stderr).toContain("-s option");
    expect(r.stderr).toContain("TINI_SUBREAPER");
    expect(r.stdout).toContain("adopted=0");
    expect(r.code).toBe(1);
  });

  test("warns by default (verbosity 1) and not with TINI_VERBOSITY=0", async () => {
    expect((await run([PIDONE, "true"])).stderr).toContain(WARNING);
    const quiet = await run([PIDONE, "true"], { env: { TINI_VERBOSITY: "0" } });
    expect(quiet.stderr).toBe("");
    expect(quiet.code).toBe(0);
  });

  for (const where of placements(PIDONE)) {
    test(`no warning ${where.name}`, async () => {
      const r = await run([...where.prefix, ...where.options, "true"], { env: { ...where.env, TINI_VERBOSITY: "1" } });
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("");
    });
  }
});
