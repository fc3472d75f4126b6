// Log throughput of the service output multiplexer (issue 7, metric 8), against `cat`.
//
//   bun scripts/bench/log-throughput.ts [--runs N] [--scale F]   prints a table
//   import { measureLogThroughput } from "./log-throughput.ts"    one measurement
//
// Workloads: "short" = two services each writing 1,000,000 short lines at once; "long" =
// one service writing 200 MB in 64 KiB lines. Each service is `cat FILE` writing into its
// own pipe, so the producers cost the same for every subject. Subjects:
//  - "cat":    the floor: the same producers into one pipe, `cat > OUT`;
//  - "bun-read": the runtime's floor: a fresh Bun process reading the producers' pipes
//    with Bun.file(fd).stream() (as the multiplexer does) and discarding the bytes;
//  - "prefix", "json": the producers' pipes read by an OutputMux writing to OUT, run in a
//    fresh Bun process (so its CPU time is the mux's alone, start-up excluded; its output
//    worker's thread included);
//  - "prefix-warm", "json-warm": the same mux, timed on a second pass after an untimed
//    first one, once the JIT has compiled the hot loops (the floor under the cold figure:
//    what one process's JIT warm-up, paid once in its life, takes out of a 2-second burst);
//  - "prefix-main", "json-main": the same with the mux on the main thread (thread: "main",
//    Bun's pipe reader: what runs when the worker cannot start).
// OUT is /dev/null unless given. Wall time runs from the producers' spawn to the last byte out.
//
//   bun scripts/bench/log-throughput.ts --signals [--signal-count N] [--rounds R] [--pidone LABEL=PATH ...]
//
// Signal forwarding latency under that flood (the budget: <= 2x the minimal forwarder's
// latency under the same flood). siglat (c/siglat.c) sends SIGUSR1, one at a time, and
// its child stamps the time its handler ran. Subjects, run one after the other, R rounds:
//  - "forwarder+flood": the Bun forwarder floor running `siglat child`, while the same two
//    producers (`cat` of the short-line files, in a loop) flood /dev/null through `cat`;
//  - "pidone-prefix+flood", "pidone-json+flood": dist/pidone in services mode with three
//    services: the two producers (signals = [], their output multiplexed to /dev/null) and
//    `siglat child`, whose stamps go straight to the driver through /proc/PIDONE/fd/3;
//  - the same without the producers ("quiet"), for reference.
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { close, pipe, setPipeSize } from "../../src/sys/libc.ts";
import { BENCH_ENV, capture, parseSeries } from "./lib/proc.ts";
import { prepare, type Built } from "./lib/prepare.ts";
import { summarize } from "./lib/stats.ts";

export type LogWorkload = "short" | "long";
export type LogSubject = "cat" | "bun-read" | "prefix" | "json" | "prefix-warm" | "json-warm" | "prefix-main" | "json-main";
export const SUBJECTS: readonly LogSubject[] = ["cat", "bun-read", "prefix", "json", "prefix-warm", "json-warm", "prefix-main", "json-main"];

export interface LogThroughputOptions {
  subject: LogSubject;
  workload: LogWorkload;
  /** Shrinks the workload (0.01 for a smoke run); default 1. */
  scale?: number;
  /** Where the output goes; default /dev/null. */
  out?: string;
}

export interface LogThroughputResult {
  subject: LogSubject;
  workload: LogWorkload;
  /** Bytes and lines the services wrote. */
  inputBytes: number;
  lines: number;
  wallMs: number;
  /** CPU time (user + system) of the reader: cat, or the multiplexer's process. */
  cpuMs: number;
  mbPerS: number;
  linesPerS: number;
  cpuMsPerMB: number;
  /** The gaps between ticks of a 1 ms timer during the run: in the multiplexer's process, or for cat in an idle one. */
  loopLagMs?: LoopLag;
}

export interface LoopLag {
  p50: number;
  p99: number;
  max: number;
}

const HERE = new URL(".", import.meta.url).pathname;
const BUN = process.execPath;

/** The services' output, written once per shape into a temporary directory. */
function workloadFiles(workload: LogWorkload, scale: number): { files: string[]; bytes: number; lines: number } {
  const dir = join(tmpdir(), "pidone-log-bench");
  mkdirSync(dir, { recursive: true });
  if (workload === "short") {
    const count = Math.max(1, Math.round(1_000_000 * scale));
    const files = ["a", "b"].map((name) => {
      const file = join(dir, `short-${name}-${count}.log`);
      if (!existsSync(file)) {
        const parts: string[] = [];
        for (let i = 0; i < count; i++) parts.push(`${name} GET /api/items/${i} 200 ${i % 997} ms\n`);
        writeFileSync(file, parts.join(""));
      }
      return file;
    });
    const bytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
    return { files, bytes, lines: 2 * count };
  }
  const total = Math.max(65536, Math.round(200_000_000 * scale));
  const lines = Math.ceil(total / 65536);
  const file = join(dir, `long-${lines}.log`);
  if (!existsSync(file)) {
    const line = Buffer.alloc(65536, "x");
    line[65535] = 10;
    const all = Buffer.allocUnsafe(lines * 65536);
    for (let i = 0; i < lines; i++) line.copy(all, i * 65536);
    writeFileSync(file, all);
  }
  return { files: [file], bytes: lines * 65536, lines };
}

export async function measureLogThroughput(opts: LogThroughputOptions): Promise<LogThroughputResult> {
  const { files, bytes, lines } = workloadFiles(opts.workload, opts.scale ?? 1);
  const out = opts.out ?? "/dev/null";
  if (opts.subject === "cat") {
    const [r, w] = pipe();
    const outFd = openSync(out, "w");
    const lag = sampleLoopLag();
    const t0 = performance.now();
    const cat = Bun.spawn(["cat"], { stdin: r, stdout: outFd });
    const producers = files.map((f) => Bun.spawn(["cat", f], { stdout: w }));
    close(r);
    close(w);
    closeSync(outFd);
    await Promise.all(producers.map((p) => p.exited));
    if ((await cat.exited) !== 0) throw new Error("cat failed");
    const wallMs = performance.now() - t0;
    const usage = cat.resourceUsage()!;
    return { ...result(opts, bytes, lines, wallMs, Number(usage.cpuTime.total) / 1000), loopLagMs: lag.stop() };
  }
  const child = Bun.spawn([BUN, join(HERE, "log-throughput.ts"), "--child", opts.subject, out, ...files], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const text = await new Response(child.stdout).text();
  if ((await child.exited) !== 0) throw new Error(`log-throughput child failed: ${text}`);
  const report = JSON.parse(text) as { wallMs: number; cpuMs: number; lagMs: LoopLag };
  return { ...result(opts, bytes, lines, report.wallMs, report.cpuMs), loopLagMs: report.lagMs };
}

/**
 * Event-loop lag: the gaps between ticks of a 1 ms interval timer. A signal handler waits
 * for the event loop the same way, so under the same flood the gaps of an idle process
 * (the cat floor's parent) against the multiplexer's show what the work adds.
 */
function sampleLoopLag(): { stop(): LoopLag } {
  const gaps: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 1);
  return {
    stop() {
      clearInterval(timer);
      gaps.sort((a, b) => a - b);
      return {
        p50: gaps[Math.floor(gaps.length / 2)] ?? 0,
        p99: gaps[Math.floor(gaps.length * 0.99)] ?? 0,
        max: gaps.at(-1) ?? 0,
      };
    },
  };
}

/** In the child: the producers' pipes through an OutputMux to `out`, or only read ("bun-read"). */
async function runChild(subject: Exclude<LogSubject, "cat">, out: string, files: string[]): Promise<void> {
  const { OutputMux } = await import("../../src/services/output.ts");
  const outFd = openSync(out, "w");
  const names = files.map((_, i) => `svc${i}`);
  const format = subject.startsWith("json") ? "json" : "prefix";
  const thread = subject.endsWith("-main") ? "main" : "worker";
  const mux =
    subject === "bun-read" ? null : new OutputMux({ format, thread, names, color: false, stdoutFd: outFd, stderrFd: outFd });
  // The worker starts on its own thread: measure from when it runs.
  if (mux) await mux.started();
  /** A producer: `cat FILE` writing into a new pipe, whose read end is returned. */
  const produce = (file: string) => {
    const [r, w] = pipe();
    Bun.spawn(["cat", file], { stdout: w });
    close(w);
    return r;
  };
  if (mux && subject.endsWith("-warm")) {
    // The untimed pass: every line of it through the same worker, to its end.
    files.forEach((f, i) => mux.attach(names[i]!, "stdout", produce(f)));
    await Promise.all(names.map((n) => mux.outputEnded(n)));
  }
  const lag = sampleLoopLag();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const reads = files.map(async (f, i) => {
    const r = produce(f);
    if (mux) mux.attach(names[i]!, "stdout", r);
    else {
      setPipeSize(r, 256 * 1024); // as the multiplexer does
      for await (const _ of Bun.file(r).stream());
      close(r);
    }
  });
  await Promise.all(reads);
  const dropped = mux ? await mux.drain(10 * 60_000) : { droppedLines: 0 };
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const lagMs = lag.stop();
  if (dropped.droppedLines) throw new Error(`dropped ${dropped.droppedLines} lines`);
  process.stdout.write(JSON.stringify({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000, lagMs }));
}

function result(
  opts: LogThroughputOptions,
  bytes: number,
  lines: number,
  wallMs: number,
  cpuMs: number,
): LogThroughputResult {
  return {
    subject: opts.subject,
    workload: opts.workload,
    inputBytes: bytes,
    lines,
    wallMs,
    cpuMs,
    mbPerS: bytes / 1e6 / (wallMs / 1000),
    linesPerS: lines / (wallMs / 1000),
    cpuMsPerMB: cpuMs / (bytes / 1e6),
  };
}

export type FloodSubject = "forwarder" | "pidone-prefix" | "pidone-json";
export interface FloodLatencyOptions {
  /** SIGUSR1 per subject and round. */
  signals?: number;
  rounds?: number;
  /** Also measure every subject without the flood. */
  quiet?: boolean;
  /** The pidones to measure, by label; default { pidone: what prepare() finds (dist/pidone) }. */
  pidones?: Record<string, string>;
  /** The producers' files are the "short" workload's at this scale; default 1. */
  scale?: number;
  /** What prepare() made, when the caller has it already (run.ts); default: prepare() here. */
  built?: Built;
  say?: (s: string) => void;
}
export interface FloodLatencyResult {
  subject: FloodSubject;
  /** Which pidone (a key of `pidones`); "" for the forwarder. */
  label: string;
  flood: boolean;
  /** Latencies in µs, every round. */
  latUs: number[];
  lost: number;
  extra: number;
}

/** The producers of the "short" workload, each a shell looping `cat FILE` forever. */
const loopCat = (file: string) => `while :; do cat '${file}'; done`;

function servicesConfig(dir: string, format: "prefix" | "json", flood: boolean, siglat: string, files: string[]): string {
  const lines = ["[settings]", `log_format = "${format}"`, "grace = 2", ""];
  if (flood) {
    files.forEach((f, i) => {
      lines.push(`[services.flood${i}]`, `command = "${loopCat(f)}"`, "shell = true", "signals = []", "");
    });
  }
  lines.push("[services.sig]", `command = "exec '${siglat}' child > \\"$SIGLAT_OUT\\""`, "shell = true", 'signals = ["USR1"]', "");
  const path = join(dir, `services-${format}-${flood ? "flood" : "quiet"}.toml`);
  writeFileSync(path, lines.join("\n"));
  return path;
}

/** Latency of SIGUSR1 through the init to `siglat child`, under the log flood or not. */
export async function measureFloodLatency(opts: FloodLatencyOptions = {}): Promise<FloodLatencyResult[]> {
  const say = opts.say ?? (() => {});
  const signals = opts.signals ?? 400;
  const rounds = opts.rounds ?? 3;
  const built = opts.built ?? (await prepare(say));
  const { files } = workloadFiles("short", opts.scale ?? 1);
  const dir = built.work;
  const pidones = opts.pidones ?? { pidone: built.pidone };
  type Run = { subject: FloodSubject; label: string; flood: boolean };
  const runs: Run[] = [];
  for (const flood of opts.quiet ? [true, false] : [true]) {
    runs.push({ subject: "forwarder", label: "", flood });
    for (const label of Object.keys(pidones)) {
      for (const subject of ["pidone-prefix", "pidone-json"] as const) runs.push({ subject, label, flood });
    }
  }
  const results = runs.map((r) => ({ ...r, latUs: [] as number[], lost: 0, extra: 0 }));
  try {
    await floodRounds();
  } finally {
    // Ours to remove only when we made it (run.ts passes its own and removes it).
    if (!opts.built) rmSync(built.work, { recursive: true, force: true });
  }
  return results;

  async function floodRounds(): Promise<void> {
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < results.length; k++) {
        const res = results[(round + k) % results.length]!;
        let init: string[];
        let producers: { stop(): Promise<void> } | null = null;
        if (res.subject === "forwarder") {
          init = [built.bunForwarder, built.siglat, "child"];
          if (res.flood) producers = floodDevNull(files);
        } else {
          const format = res.subject === "pidone-prefix" ? "prefix" : "json";
          const conf = servicesConfig(dir, format, res.flood, built.siglat, files);
          // The init's stdout and stderr go to /dev/null (as the throughput runs' OUT); fd 3
          // keeps the driver's pipe, which the `sig` service opens through /proc.
          const script = 'exec 3>&1 >/dev/null 2>&1; SIGLAT_OUT=/proc/$$/fd/3 exec "$0" -c "$1"';
          init = ["sh", "-c", script, pidones[res.label]!, conf];
        }
        try {
          const out = await capture([built.siglat, "drive", String(signals), "100", ...init], { timeoutMs: 300_000 });
          if (out.code !== 0) throw new Error(`siglat drive failed (${out.code}): ${out.stderr.slice(-1000)}`);
          const series = parseSeries(out.stdout);
          res.latUs.push(...(series.get("lat")?.get(0) ?? []).map((ns) => ns / 1e3));
          res.lost += series.get("lost")?.get(0)?.[0] ?? signals;
          res.extra += series.get("extra")?.get(0)?.[0] ?? 0;
        } finally {
          await producers?.stop();
        }
      }
    }
  }
}

/** The same producers as pidone's flood services, into one pipe read by `cat > /dev/null`. */
function floodDevNull(files: string[]): { stop(): Promise<void> } {
  const [r, w] = pipe();
  const sink = Bun.spawn(["cat"], { stdin: r, stdout: "ignore", env: BENCH_ENV });
  const producers = files.map((f) => Bun.spawn(["sh", "-c", loopCat(f)], { stdout: w, env: BENCH_ENV }));
  close(r);
  close(w);
  return {
    async stop() {
      for (const p of producers) p.kill("SIGKILL");
      await Promise.all(producers.map((p) => p.exited));
      // The loops' last `cat` may outlive its shell for a moment; cat sees EOF once they end.
      await sink.exited;
    },
  };
}

/** The middle value (upper middle of an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child") {
    await runChild(argv[1] as Exclude<LogSubject, "cat">, argv[2]!, argv.slice(3));
    return;
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: "string", default: "5" },
      scale: { type: "string", default: "1" },
      out: { type: "string" },
      signals: { type: "boolean", default: false },
      "signal-count": { type: "string", default: "400" },
      rounds: { type: "string", default: "3" },
      pidone: { type: "string", multiple: true },
    },
  });
  if (values.signals) {
    const results = await measureFloodLatency({
      signals: Number(values["signal-count"]),
      rounds: Number(values.rounds),
      quiet: true,
      pidones: values.pidone?.length
        ? Object.fromEntries(values.pidone.map((v, i) => (v.includes("=") ? v.split("=", 2) : [`pidone${i}`, v])))
        : undefined,
      say: (s) => process.stderr.write(`[bench] ${s}\n`),
    });
    const floor = results.find((r) => r.subject === "forwarder" && r.flood)!;
    const floorMedian = summarize(floor.latUs)?.median ?? NaN;
    console.log(`| subject | build | flood | n | median µs | p90 µs | p99 µs | max µs | lost | × forwarder+flood (median) |`);
    console.log(`|---|---|---|---|---|---|---|---|---|---|`);
    for (const r of results) {
      const s = summarize(r.latUs);
      if (!s) continue;
      console.log(
        `| ${r.subject} | ${r.label} | ${r.flood ? "yes" : "no"} | ${s.n} | ${s.median.toFixed(0)} | ${s.p90.toFixed(0)} | ${s.p99.toFixed(0)} | ${s.max.toFixed(0)} | ${r.lost} | ${(s.median / floorMedian).toFixed(2)} |`,
      );
    }
    return;
  }
  const runs = Number(values.runs);
  const scale = Number(values.scale);
  console.log(`| workload | subject | MB/s | lines/s | CPU ms/MB | × cat | 1 ms timer gap p50/p99/max |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (const workload of ["short", "long"] as const) {
    const all = Object.fromEntries(SUBJECTS.map((s) => [s, [] as LogThroughputResult[]])) as Record<LogSubject, LogThroughputResult[]>;
    // Interleaved, so load on this shared machine falls on every subject alike.
    for (let i = 0; i < runs; i++) {
      for (const subject of SUBJECTS) {
        all[subject].push(await measureLogThroughput({ subject, workload, scale, out: values.out }));
      }
    }
    const catMBps = median(all.cat.map((r) => r.mbPerS));
    for (const subject of SUBJECTS) {
      const rs = all[subject];
      const mbps = median(rs.map((r) => r.mbPerS));
      const lps = median(rs.map((r) => r.linesPerS));
      const cpu = median(rs.map((r) => r.cpuMsPerMB));
      const lag = rs.map((r) => r.loopLagMs).filter((l) => l !== undefined);
      const gaps = lag.length
        ? `${median(lag.map((l) => l.p50)).toFixed(1)} / ${median(lag.map((l) => l.p99)).toFixed(1)} / ${median(lag.map((l) => l.max)).toFixed(1)} ms`
        : "";
      console.log(
        `| ${workload} | ${subject} | ${mbps.toFixed(0)} | ${(lps / 1e6).toFixed(2)} M | ${cpu.toFixed(2)} | ${(mbps / catMBps).toFixed(2)} | ${gaps} |`,
      );
    }
  }
}

if (import.meta.main) await main();
