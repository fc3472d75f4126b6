// A program that does not start: one exit code table in both modes, tini's (its execvp
// failing: ENOENT 127, EACCES 126, anything else 1), and a step pidone takes before the
// exec (switching user) failing is 1 too. In services mode the code is the container's
// status when the critical service that failed to start ends it.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, run, tempDir, type RunResult } from "./helpers.ts";
import { NATIVE } from "./fixtures/native-lib.ts";

setDefaultTimeout(60_000);

/** A script that would run, and one that never can (no x bit at all, so not even for root). */
function programs(): { dir: string; runs: string; denied: string } {
  const dir = tempDir("pidone-spawnfail-");
  const runs = join(dir, "runs");
  writeFileSync(runs, "#!/bin/sh\nexit 0\n");
  chmodSync(runs, 0o755);
  const denied = join(dir, "denied");
  writeFileSync(denied, "#!/bin/sh\nexit 0\n");
  chmodSync(denied, 0o644);
  return { dir, runs, denied };
}

/** Both ways pidone runs in tini's mode: a plain child with -s, and PID 1. */
async function bothWays(program: string[]): Promise<{ child: RunResult; pid1: RunResult }> {
  const [child, pid1] = await Promise.all([run([PIDONE, "-s", "--", ...program]), run([...AS_PID1, PIDONE, "--", ...program])]);
  return { child, pid1 };
}

function expectFailure(r: { child: RunResult; pid1: RunResult }, code: number, message: string): void {
  expect({ child: r.child.code, pid1: r.pid1.code }).toEqual({ child: code, pid1: code });
  expect(r.child.stderr).toContain(message);
  expect(r.pid1.stderr).toContain(message);
}

describe("tini's mode: a program that cannot start", () => {
  test("not found: 127", async () => {
    expectFailure(await bothWays(["no-such-program-anywhere"]), 127, "exec no-such-program-anywhere failed: No such file or directory");
    expectFailure(await bothWays(["/nonexistent/program"]), 127, "exec /nonexistent/program failed: No such file or directory");
  });

  test("not executable (no x bit): 126", async () => {
    const { denied } = programs();
    expectFailure(await bothWays([denied]), 126, `exec ${denied} failed: Permission denied`);
  });

  test("any other errno of the exec (a path through a file): 1", async () => {
    expectFailure(await bothWays(["/etc/passwd/x"]), 1, "exec /etc/passwd/x failed: Not a directory");
  });

  // tini's mode switches no user: its trampoline steps cannot fail from outside, so the
  // trampoline's own execve failing is what this mode can show of it.
  test.skipIf(!NATIVE)("through the exec trampoline (LISTEN_PID naming pidone): the same codes and messages", async () => {
    const { denied } = programs();
    const viaTrampoline = (program: string) => run(["bash", "-c", 'exec env LISTEN_PID=$$ "$0" -s -- "$1"', PIDONE, program]);
    const cases: Array<[string, number, string]> = [
      ["no-such-program-anywhere", 127, "No such file or directory"],
      [denied, 126, "Permission denied"],
      ["/etc/passwd/x", 1, "Not a directory"],
    ];
    for (const [program, code, why] of cases) {
      const r = await viaTrampoline(program);
      expect({ program, code: r.code }).toEqual({ program, code });
      expect(r.stderr).toContain(`exec ${program} failed: ${why}`);
    }
  });
});

/**
 * A critical service whose program passes the configuration's check, then a oneshot
 * before it (`prep`) takes it away. The default restart policy ("never") ends the
 * container with the service's code at once.
 */
function servicesToml(dir: string, prep: string[], app: string, user?: string): string {
  const file = join(dir, "services.toml");
  const lines = [
    "[services.prep]",
    `command = ${JSON.stringify(prep)}`,
    "oneshot = true",
    "[services.app]",
    `command = [${JSON.stringify(app)}]`,
    'after = ["prep"]',
  ];
  if (user) lines.push(`user = "${user}"`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

describe("services mode: a critical service that cannot start ends the container with tini's code", () => {
  test("not found: 127", async () => {
    const { dir, runs } = programs();
    const r = await run([...AS_PID1, PIDONE, "-c", servicesToml(dir, ["rm", runs], runs)]);
    expect(r.code).toBe(127);
    expect(r.stdout + r.stderr).toContain(`exec ${runs} failed: No such file or directory`);
  });

  test("not executable (no x bit): 126", async () => {
    const { dir, runs } = programs();
    const r = await run([...AS_PID1, PIDONE, "-c", servicesToml(dir, ["chmod", "a-x", runs], runs)]);
    expect(r.code).toBe(126);
    expect(r.stdout + r.stderr).toContain(`exec ${runs} failed: Permission denied`);
  });

  test("any other errno of the exec (the program replaced by a symbolic link to itself): 1", async () => {
    const { dir, runs } = programs();
    const loop = ["sh", "-c", 'rm "$0" && ln -s "$0" "$0"', runs];
    const r = await run([...AS_PID1, PIDONE, "-c", servicesToml(dir, loop, runs)]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(`exec ${runs} failed: Too many levels of symbolic links`);
  });

  // user = "0:0" switches to root, which always succeeds, but still takes the trampoline.
  test.skipIf(!NATIVE)("through the trampoline (`user`): not found 127, not executable 126", async () => {
    const missing = programs();
    const gone = await run([...AS_PID1, PIDONE, "-c", servicesToml(missing.dir, ["rm", missing.runs], missing.runs, "0:0")]);
    expect(gone.code).toBe(127);
    expect(gone.stdout + gone.stderr).toContain(`exec ${missing.runs} failed: No such file or directory`);
    const locked = programs();
    const denied = await run([...AS_PID1, PIDONE, "-c", servicesToml(locked.dir, ["chmod", "a-x", locked.runs], locked.runs, "0:0")]);
    expect(denied.code).toBe(126);
    expect(denied.stdout + denied.stderr).toContain(`exec ${locked.runs} failed: Permission denied`);
  });

  // Root without the capability the step needs: dropped from the bounding set before exec.
  test.skipIf(!NATIVE)("a failed user switch (a trampoline step before the exec): 1, as PID 1 and not", async () => {
    const cases: Array<[string, string]> = [
      ["-setuid,-setgid", "cannot set supplementary groups 31338: Operation not permitted"],
      ["-setuid", "cannot switch to uid 31337: Operation not permitted"],
    ];
    for (const [drop, message] of cases) {
      const { dir, runs } = programs();
      const toml = servicesToml(dir, ["true"], runs, "31337:31338");
      const setpriv = ["setpriv", `--bounding-set=${drop}`];
      const [child, pid1] = await Promise.all([run([...setpriv, PIDONE, "-s", "-c", toml]), run([...AS_PID1, ...setpriv, PIDONE, "-c", toml])]);
      expect({ drop, child: child.code, pid1: pid1.code }).toEqual({ drop, child: 1, pid1: 1 });
      expect(child.stdout + child.stderr).toContain(message);
      expect(pid1.stdout + pid1.stderr).toContain(message);
    }
  });
});
