// Running the benchmark's helpers: a clean, fixed environment for every measured program
// (nothing from the caller's shell, no BUN_* variables), a timeout, and captured output.

export const BENCH_ENV: Record<string, string> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C",
};

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export async function capture(
  cmd: string[],
  opts: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<Output> {
  const proc = Bun.spawn(cmd, {
    env: opts.env ?? BENCH_ENV,
    cwd: opts.cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs ?? 120_000);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}

/** Like capture, but a failure (non-zero exit or timeout) throws with the output. */
export async function mustRun(cmd: string[], opts: Parameters<typeof capture>[1] = {}): Promise<string> {
  const r = await capture(cmd, opts);
  if (r.code !== 0 || r.timedOut) {
    const why = r.timedOut ? "timed out" : `exited ${r.code}`;
    throw new Error(`${cmd.join(" ")} ${why}\n${r.stderr.slice(-2000)}${r.stdout.slice(-1000)}`);
  }
  return r.stdout;
}

/** Parses the helpers' "KEY IDX v v v" lines into KEY -> IDX -> values. */
export function parseSeries(text: string): Map<string, Map<number, number[]>> {
  const out = new Map<string, Map<number, number[]>>();
  for (const line of text.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2 || !/^\d+$/.test(parts[1]!)) continue;
    const key = parts[0]!;
    const idx = Number(parts[1]);
    if (!out.has(key)) out.set(key, new Map());
    out.get(key)!.set(idx, parts.slice(2).map(Number));
  }
  return out;
}

/** "storm created=20000 elapsed_ns=..." -> { created: 20000, ... } */
export function parseFields(line: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const m of line.matchAll(/(\w+)=(\S+)/g)) {
    const v = Number(m[2]);
    out[m[1]!] = Number.isFinite(v) ? v : m[2]!;
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
