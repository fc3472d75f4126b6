// Issue 13, storms: the exit status pidone reads from waitpid stays right once the reaping
// code runs hot. JavaScriptCore optimises that code after a few hundred reaps (orphans, a
// signal storm's SIGCHLDs) and may then move a small typed array's elements; a pointer
// kept from before (waitpid's status word) would make every later status read as the one
// before the move: a child killed by SIGTERM reported as "exited (status 1)" or exit 0.
// The stress script (scripts/stress/threads.ts) found it after minutes of storm; here a
// burst of orphans gets there in a second or two.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { kill, sigset, spawn, waitpidRaw, waitStatus, WNOHANG } from "../src/sys/libc.ts";
import { AS_PID1, PIDONE, pid1Of, run, start, tempDir } from "./helpers.ts";

const ORPHANS = 2000;
/** A shell that leaves ORPHANS short-lived orphans to PID 1, then runs `then`. */
const orphansThen = (then: string) => `i=0; while [ $i -lt ${ORPHANS} ]; do (true &); i=$((i+1)); done; ${then}`;

const enc = (s: string) => new TextEncoder().encode(s);

function spawnSh(script: string): number {
  return spawn({
    file: enc("sh"),
    search: true,
    argv: ["sh", "-c", script].map(enc),
    envp: [enc(`PATH=${process.env.PATH ?? "/usr/bin:/bin"}`)],
    newProcessGroup: false,
    foreground: false,
    sigmask: sigset([]),
    sigdefault: sigset([]),
    keepFds: [],
  });
}

test("waitpid's status reads right after the code reading it was optimised", () => {
  const sleeper = spawnSh("exec sleep 100000");
  // The reaper's shape, waitpidRaw then a read of waitStatus, hot enough to be optimised
  // (the read on every call: a branch never taken is not optimised).
  const look = (pid: number, flags: number) => {
    waitpidRaw(pid, flags);
    return waitStatus[0]!;
  };
  for (let i = 0; i < 200_000; i++) look(sleeper, WNOHANG);
  kill(sleeper, 15);
  expect(look(sleeper, 0) & 0x7f).toBe(15); // killed by SIGTERM
  const exits7 = spawnSh("exit 7");
  expect(look(exits7, 0)).toBe(7 << 8);
});

test(`tini's mode (JavaScript reaping, -w): after ${ORPHANS} orphans, a child killed by SIGTERM gives 143 and exit 7 gives 7`, async () => {
  const [killed, exited] = await Promise.all([
    run([...AS_PID1, PIDONE, "-w", "--", "sh", "-c", orphansThen("kill -TERM $$")], { timeoutMs: 60_000 }),
    run([...AS_PID1, PIDONE, "-w", "--", "sh", "-c", orphansThen("exit 7")], { timeoutMs: 60_000 }),
  ]);
  expect(killed.code, killed.stderr.slice(-2000)).toBe(143);
  expect(exited.code, exited.stderr.slice(-2000)).toBe(7);
}, 90_000);

test(`services mode: after ${ORPHANS} orphans, services stopped by SIGTERM are reported so and pidone exits 0`, async () => {
  const dir = tempDir("pidone-storm-");
  const config = join(dir, "services.toml");
  writeFileSync(
    config,
    `
[services.orphans]
command = ["sh", "-c", "${orphansThen("echo orphans-done; exec sleep 100000")}"]

[services.idle]
command = ["sleep", "100000"]
`,
  );
  const p = start([...AS_PID1, PIDONE, "--config", config]);
  const pid1 = await pid1Of(p.proc.pid);
  await p.waitStdout("orphans-done", 60_000);
  process.kill(pid1, "SIGTERM");
  const code = await p.exit(30_000);
  const out = p.stdout();
  expect(out, out.slice(-3000)).toMatch(/orphans: exited \(signal SIGTERM\)/);
  expect(out, out.slice(-3000)).toMatch(/idle: exited \(signal SIGTERM\)/);
  expect(code).toBe(0);
}, 90_000);
