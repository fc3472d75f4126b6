// Issue 13, items 4 and 5 as they reach TypeScript: a libc that cannot be loaded (a low
// RLIMIT_AS leaves the runtime without its JIT, and bun:ffi refuses) and a low
// RLIMIT_NOFILE, on the single file and on the plain -glibc file. Under each limit pidone
// either runs correctly or ends with one line that names the limit: never a runtime
// banner, a stack or source dump, or a line blaming /proc. In services mode a service that
// finds no descriptor fails that start (its restart policy applies) and the rest run on.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PIDONE, ROOT, start, tempDir, waitFor, type Started } from "./helpers.ts";

setDefaultTimeout(120_000);

const PLAIN = join(ROOT, "dist/pidone-glibc");
const FILES = [
  { label: "single file", path: PIDONE },
  ...(existsSync(PLAIN) && PLAIN !== PIDONE ? [{ label: "-glibc file", path: PLAIN }] : []),
];

/** `pidone ARGS` under `ulimit -LETTER VALUE`, through bash (which starts it with 0-2 only). */
function limited(letter: "n" | "v", value: number, file: string, args: string[]): Started {
  return start(["bash", "-c", `ulimit -${letter} ${value} && exec "$@"`, "bash", file, ...args]);
}

/** What the runtime or a stray exception prints, which must never reach a user. */
const NOISE = [/Bun v\d/, /ProcessFdQuotaExceeded/, /oh no/i, /^\s+at /m, /\$bunfs/, /needs \/proc mounted/, /internal error/];

function expectNoNoise(text: string): void {
  for (const n of NOISE) expect(text).not.toMatch(n);
}

/** Ends `p` with SIGTERM if it still runs after `graceMs`: its exit code. */
async function endAfter(p: Started, graceMs: number): Promise<number> {
  const ended = await Promise.race([p.proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
  if (!ended) p.proc.kill("SIGTERM");
  return p.exit(20_000);
}

/** Exit 0, or exit 1 with exactly one line on stderr that names RLIMIT_NOFILE. */
function expectRunsOrOneLine(code: number, p: Started, label: string): void {
  const err = p.stderr();
  expectNoNoise(err + p.stdout());
  if (code === 0) return;
  expect({ label, code }).toEqual({ label, code: 1 });
  expect(err.trimEnd().split("\n")).toHaveLength(1);
  expect(err).toMatch(/RLIMIT_NOFILE/);
}

describe("libc that cannot be loaded: one line naming each path and the cause", () => {
  // 1 GiB: JavaScriptCore cannot reserve its JIT region and runs without it; bun:ffi
  // then binds nothing. The single file's stub may size the reservation itself and run.
  for (const f of FILES) {
    test(`${f.label}: ulimit -v 1048576`, async () => {
      const p = limited("v", 1048576, f.path, ["-s", "--", "true"]);
      const code = await p.exit(20_000);
      expectNoNoise(p.stderr() + p.stdout());
      if (code === 0 && f.path !== PLAIN) return;
      expect(code).toBe(1);
      const lines = p.stderr().trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/cannot load the C library \(libc\.so\.6: .*JIT.*; \/lib\/libc\.musl-\S+: .*; \/lib\/ld-musl-\S+: /);
      expect(lines[0]).toMatch(/address-space limit \(ulimit -v, RLIMIT_AS\) of 1024 MiB/);
      expect(lines[0]).toMatch(/jitMemoryReservationSize/);
    });
  }
});

describe("a low descriptor limit at start-up: runs, or one line naming RLIMIT_NOFILE", () => {
  // Below 5 the plain file never reaches pidone's code (ld.so cannot open libc, then the
  // runtime cannot make its event loop): what it prints there is theirs.
  const lows = (f: { path: string }, from: number, to: number) => {
    const out: number[] = [];
    for (let n = f.path === PLAIN ? Math.max(from, 5) : from; n <= to; n++) out.push(n);
    return out;
  };
  for (const f of FILES) {
    test(`${f.label}: tini's mode`, async () => {
      for (const n of lows(f, 3, 14)) {
        const p = limited("n", n, f.path, ["-s", "--", "true"]);
        expectRunsOrOneLine(await p.exit(20_000), p, `ulimit -n ${n}`);
      }
    });

    test(`${f.label}: --pause, then SIGTERM`, async () => {
      for (const n of lows(f, 3, 14)) {
        const p = limited("n", n, f.path, ["-s", "--pause"]);
        expectRunsOrOneLine(await endAfter(p, 1000), p, `ulimit -n ${n}`);
      }
    });

    test(`${f.label}: services mode, then SIGTERM`, async () => {
      for (const n of lows(f, 3, 30)) {
        const p = limited("n", n, f.path, ["-s", "--service", "a: sleep 100", "--service", "b: sleep 100", "--service", "c: sleep 100"]);
        const code = await endAfter(p, 1000);
        const text = p.stdout() + p.stderr();
        expectNoNoise(text);
        // Whatever ran short said so in its own line, naming the limit.
        for (const line of text.split("\n").filter((l) => /descriptor|open files/i.test(l))) expect(line).toMatch(/RLIMIT_NOFILE/);
        expect([0, 1, 143]).toContain(code);
      }
    });
  }
});

describe("services mode out of descriptors: the start fails, pidone supervises the rest", () => {
  for (const f of FILES) {
    test(`${f.label}: failed starts are retried, the others run, nothing spins, the stop is clean`, async () => {
      const dir = tempDir();
      const config = join(dir, "pidone.toml");
      // Every one with an exec probe: a probe keeps nothing open in pidone and may use
      // the reserve, so it runs at this limit too.
      const probe = `ready = { exec = ["true"] }`;
      const services = [`short = { command = ["sleep", "2"], critical = false, ${probe} }`];
      for (const name of ["b", "c", "d", "e", "f", "g"]) {
        services.push(`${name} = { command = ["sleep", "100"], critical = false, restart = "always", ${probe} }`);
      }
      writeFileSync(config, `[services]\n${services.join("\n")}\n`);
      // The limit pidone names for starting its first service: the others cannot all fit.
      const tooLow = limited("n", 10, f.path, ["-s", "-c", config]);
      expect(await tooLow.exit(20_000)).toBe(1);
      const needed = Number(/needs at least (\d+)/.exec(tooLow.stderr())?.[1]);
      expect(needed).toBeGreaterThan(10);

      const p = limited("n", needed, f.path, ["-s", "-c", config]);
      await p.waitStdout(/(\w+): cannot start sleep: out of file descriptors \(.*RLIMIT_NOFILE/, 30_000);
      await p.waitStdout(/: restarting in/, 30_000);
      const failed = /(\w+): cannot start sleep/.exec(p.stdout())![1]!;
      await p.waitStdout(/\w+: ready/, 30_000);
      // Once `short` ends its pipes are free again: a service that failed gets them.
      await p.waitStdout(
        (out) => out.split("\n").some((l, i, all) => /cannot start/.test(l) && all.slice(i + 1).some((m) => m.includes(`${l.split(":")[0]}: started`))),
        30_000,
      );
      expect(failed).not.toBe("short");
      // Short of descriptors, with restarts pending: no CPU spent beyond the retries.
      const ticks = () => {
        const stat = readFileSync(`/proc/${p.proc.pid}/stat`, "latin1");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return Number(fields[11]) + Number(fields[12]); // utime + stime
      };
      const before = ticks();
      await Bun.sleep(2000);
      expect(ticks() - before).toBeLessThan(50); // under 0.5 s of CPU in 2 s (100 Hz ticks)
      expect(p.proc.exitCode).toBeNull();
      p.proc.kill("SIGTERM");
      await waitFor(() => p.proc.exitCode !== null, 30_000, "pidone to stop");
      expectNoNoise(p.stdout() + p.stderr());
      expect(p.stderr()).toBe("");
    });
  }
});
