// Shared by the integration tests: run dist/pidone for real, as PID 1 in a new PID
// namespace or as a plain child, and wait on conditions with timeouts (never bare sleeps).
import { describe, test } from "bun:test";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const PIDONE = process.env.PIDONE_BIN ?? join(ROOT, "dist/pidone");

if (!existsSync(PIDONE)) throw new Error(`${PIDONE} is missing: run npm run build first`);

/** CI sets CI (CI=true); anything but empty, "0" or "false" counts. */
export const IN_CI = !["", "0", "false"].includes((process.env.CI ?? "").toLowerCase());
const warned = new Set<string>();

/**
 * `describe` for tests that need something this machine may lack (the single file's
 * stub, Docker). Outside CI they are skipped with one warning; in CI (CI=true, where
 * `npm test` builds the stub and scripts/setup-test-env.sh starts Docker) a skip would
 * pass vacuously, so the block becomes one failing test that names what is missing.
 *   needs(NATIVE, "the single file (dist/pidone with its stub)")("LISTEN_PID", () => { ... });
 */
export function needs(ok: boolean, what: string): (label: string, body: () => void) => void {
  if (ok) return describe;
  if (IN_CI) {
    return (label, _body) =>
      describe(label, () => {
        test(`needs ${what}`, () => {
          throw new Error(`missing: ${what}. Under CI these tests must run, not skip.`);
        });
      });
  }
  if (!warned.has(what)) {
    warned.add(what);
    console.warn(`skipped: tests that need ${what}`);
  }
  return describe.skip;
}

/** unshare's prefix that makes the next program PID 1 of a new PID namespace. */
export const AS_PID1 = ["unshare", "--pid", "--fork", "--mount-proc"];

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  stdin?: "ignore" | "pipe" | "inherit";
  timeoutMs?: number;
}

/** Runs a command to completion and returns its exit code and output. */
export async function run(cmd: string[], opts: RunOptions = {}): Promise<RunResult> {
  const proc = Bun.spawn(cmd, {
    env: opts.env ? cleanEnv(opts.env) : cleanEnv({}),
    cwd: opts.cwd,
    stdin: opts.stdin ?? "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code: proc.signalCode ? 128 + signalNumber(String(proc.signalCode)) : code, stdout, stderr };
}

function signalNumber(name: string): number {
  return require("node:os").constants.signals[name] ?? 0;
}

// Services mode listens on /run/pidone/control.sock by default, and the tests' PID
// namespaces share the host's /run: each test that wants a control socket names its own.
process.env.PIDONE_CONTROL ??= "none";

/** A minimal, predictable environment plus the given variables (undefined removes). */
export function cleanEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", PIDONE_CONTROL: "none" };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Polls `cond` every few ms until it returns truthy or `timeoutMs` passes. */
export async function waitFor<T>(cond: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

export function tempDir(prefix = "pidone-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The children on one thread's list, from /proc (needs Linux >= 3.5 with CONFIG_PROC_CHILDREN); [] once it is gone. */
async function taskChildren(pid: number, tid: number | string): Promise<number[]> {
  try {
    const text = await Bun.file(`/proc/${pid}/task/${tid}/children`).text();
    return text.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Children of a pid: those on its main thread's list (all of a single-threaded process's). */
export function childrenOf(pid: number): Promise<number[]> {
  return taskChildren(pid, pid);
}

/** Children on every thread's list: an orphan goes to any live thread of its reaper. */
export async function childrenOfAllThreads(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const tid of await Array.fromAsync(new Bun.Glob("*").scan({ cwd: `/proc/${pid}/task`, onlyFiles: false }))) {
    out.push(...(await taskChildren(pid, tid)));
  }
  return out;
}

/** All descendants of a pid, depth first. */
export async function descendantsOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const c of await childrenOf(pid)) out.push(c, ...(await descendantsOf(c)));
  return out;
}

/** One field of /proc/PID/status, e.g. "SigBlk". */
export async function statusField(pid: number | "self", field: string): Promise<string | undefined> {
  const text = await Bun.file(`/proc/${pid}/status`).text();
  return text.split("\n").find((l) => l.startsWith(`${field}:`))?.slice(field.length + 1).trim();
}

/** Parses a SigBlk/SigIgn/SigCgt hex mask into signal numbers. */
export function maskToSignals(hex: string): number[] {
  const m = BigInt(`0x${hex}`);
  const out: number[] = [];
  for (let s = 1; s <= 64; s++) if (m & (1n << BigInt(s - 1))) out.push(s);
  return out;
}

/** Compiles a C helper from test/fixtures once per test run; returns its path. */
const compiled = new Map<string, string>();
export async function cHelper(name: string): Promise<string> {
  const hit = compiled.get(name);
  if (hit) return hit;
  const out = join(tempDir("pidone-c-"), name);
  const r = await run(["cc", "-O2", "-Wall", "-o", out, join(ROOT, "test/fixtures", `${name}.c`)]);
  if (r.code !== 0) throw new Error(`cc ${name}.c failed:\n${r.stderr}`);
  compiled.set(name, out);
  return out;
}

// ---------------------------------------------------------------- long-running processes

/** What to wait for in a process's output: a substring, a regular expression or a test. */
export type TextPattern = RegExp | string | ((text: string) => boolean);

export interface Started {
  proc: import("bun").Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  /** Everything read so far from stdout / stderr. */
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout (or stderr) matches; rejects after timeoutMs. */
  waitStdout(pattern: TextPattern, timeoutMs?: number): Promise<void>;
  waitStderr(pattern: TextPattern, timeoutMs?: number): Promise<void>;
  /** Exit code (128+N when killed by signal N); rejects (and SIGKILLs) after timeoutMs. */
  exit(timeoutMs?: number): Promise<number>;
  /** Writes to stdin (when opened with stdin "pipe"). */
  write(data: string | Uint8Array): void;
  closeStdin(): void;
}

/** Starts a command and keeps reading its output, so tests can wait on what it prints. */
export function start(cmd: string[], opts: RunOptions & { stdin?: "ignore" | "pipe" } = {}): Started {
  const proc = Bun.spawn(cmd, {
    env: cleanEnv(opts.env ?? {}),
    cwd: opts.cwd,
    stdin: opts.stdin ?? "ignore",
    stdout: "pipe",
    stderr: "pipe",
  }) as Started["proc"];
  let out = "";
  let err = "";
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) add(dec.decode(chunk, { stream: true }));
  };
  const pumped = Promise.all([pump(proc.stdout, (s) => (out += s)), pump(proc.stderr, (s) => (err += s))]);
  const matches = (text: string, p: TextPattern) =>
    typeof p === "string" ? text.includes(p) : typeof p === "function" ? p(text) : p.test(text);
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    waitStdout: async (p, ms = 15_000) => {
      await waitFor(() => matches(out, p), ms, `stdout to match ${String(p)}; stdout so far: ${JSON.stringify(out)} stderr: ${JSON.stringify(err)}`);
    },
    waitStderr: async (p, ms = 15_000) => {
      await waitFor(() => matches(err, p), ms, `stderr to match ${String(p)}; stderr so far: ${JSON.stringify(err)}`);
    },
    exit: async (ms = 20_000) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        proc.kill("SIGKILL");
      }, ms);
      const code = await proc.exited;
      clearTimeout(timer);
      await pumped;
      if (timedOut) throw new Error(`${cmd.join(" ")} did not exit within ${ms} ms; stdout: ${JSON.stringify(out)} stderr: ${JSON.stringify(err)}`);
      return proc.signalCode ? 128 + signalNumber(String(proc.signalCode)) : code;
    },
    write: (data) => {
      const sink = proc.stdin as unknown as import("bun").FileSink;
      sink.write(data);
      sink.flush();
    },
    closeStdin: () => {
      (proc.stdin as unknown as import("bun").FileSink).end();
    },
  };
}

/** Runs `fn` over `items` with at most `limit` running at once (bounded load on a small machine). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Process state letter from /proc/PID/stat ("R", "S", "Z"...), or null when the pid is gone. */
export async function processState(pid: number): Promise<string | null> {
  try {
    const stat = await Bun.file(`/proc/${pid}/stat`).text();
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) || null;
  } catch {
    return null;
  }
}

/** True while the pid runs (not gone, not a zombie). */
export async function isRunning(pid: number): Promise<boolean> {
  const s = await processState(pid);
  return s !== null && s !== "Z" && s !== "X";
}

/** Kills a pid, ignoring "no such process". */
export function killQuietly(pid: number, sig: NodeJS.Signals | number = "SIGKILL"): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Waits until some child of `pid` runs the program named `comm` (as /proc/PID/comm shows it). */
export async function waitForChildRunning(pid: number, comm: string, timeoutMs = 15_000): Promise<number> {
  return waitFor(async () => {
    for (const c of await childrenOf(pid)) {
      try {
        if ((await Bun.file(`/proc/${c}/comm`).text()).trim() === comm) return c;
      } catch {
        // it ended while we looked
      }
    }
    return 0;
  }, timeoutMs, `a child of ${pid} running ${comm}`);
}

/** The host pid of pidone running as PID 1 under `unshare --fork` (unshare's only child). */
export async function pid1Of(unsharePid: number, timeoutMs = 10_000): Promise<number> {
  return waitFor(async () => (await childrenOf(unsharePid))[0] ?? 0, timeoutMs, "pidone under unshare");
}

/** The lines a service printed, from services mode's prefixed output ("name | line", the name padded). */
export function linesOf(out: string, service: string): string[] {
  const re = new RegExp(`^${service}\\s*\\| (.*)$`);
  return out.split("\n").flatMap((l) => {
    const m = re.exec(l);
    return m ? [m[1]!] : [];
  });
}
