// Shared by the integration tests: run dist/pidone for real, as PID 1 in a new PID
// namespace or as a plain child, and wait on conditions with timeouts (never bare sleeps).
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const PIDONE = process.env.PIDONE_BIN ?? join(ROOT, "dist/pidone");

if (!existsSync(PIDONE)) throw new Error(`${PIDONE} is missing: run npm run build first`);

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

/** A minimal, predictable environment plus the given variables (undefined removes). */
export function cleanEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
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

/** Children of a pid, from /proc (needs Linux >= 3.5 with CONFIG_PROC_CHILDREN). */
export async function childrenOf(pid: number): Promise<number[]> {
  try {
    const text = await Bun.file(`/proc/${pid}/task/${pid}/children`).text();
    return text.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
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
