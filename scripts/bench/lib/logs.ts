// 8. Log throughput, and signal latency under the log flood, for run.ts.
//
// The measurements are scripts/bench/log-throughput.ts's (see the top of that file); this
// module runs them in the benchmark's plan and turns them into MetricResults:
//  - "logs-short", "logs-long": MB/s per run, against `cat` of the same bytes (the floor);
//    lines/s, CPU ms per MB and the 1 ms timer's gaps as side figures;
//  - "signal-flood": µs per signal, pidone (services mode, prefixed and JSON output) against
//    the minimal Bun forwarder, each while the same two producers flood.
// tini has no log output, so these metrics take their ratios against their own floor.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  measureFloodLatency,
  measureLogThroughput,
  median,
  SUBJECTS,
  type FloodSubject,
  type LogSubject,
  type LogThroughputResult,
  type LogWorkload,
} from "../log-throughput.ts";
import { ROOT, type Built } from "./prepare.ts";
import { BENCH_ENV, sleep } from "./proc.ts";
import { newMetric, type MetricId, type MetricResult, type Subject } from "./types.ts";

export const LOG_METRICS: ReadonlySet<string> = new Set<MetricId>(["logs-short", "logs-long", "signal-flood"]);

export interface LogsPlan {
  /** Interleaved rounds of every throughput subject, per workload. */
  runs: number;
  /** 1 = the workloads (2 × 1,000,000 lines; 200 MB); smaller for a smoke run. */
  scale: number;
  /** SIGUSR1 per subject and round under the flood, and the rounds. */
  signals: number;
  rounds: number;
}

const CAT = "cat";
const FORWARDER = "bun-forwarder";
const logs = new Set(["logs"] as const);
const subject = (id: string, label: string, note: string, bin: string | null = null): Subject => ({
  id,
  label,
  bin,
  prefix: [],
  families: logs,
  note,
});

/** Metric 8's own subjects (the Bun forwarder, the latency floor, is run.ts's). */
export const LOG_SUBJECTS: readonly Subject[] = [
  subject(CAT, "cat (floor)", "the producers' pipe read by `cat > /dev/null`", "/usr/bin/cat"),
  subject("bun-read", "Bun read only (floor)", "a Bun process reading the pipes with Bun.file(fd).stream(), discarding the bytes"),
  subject("pidone-prefix", "**pidone** prefix", "pidone's output multiplexer, prefixed lines (worker thread)"),
  subject("pidone-json", "**pidone** JSON", "pidone's output multiplexer, JSON lines (worker thread)"),
  subject("pidone-prefix-warm", "pidone prefix, JIT warm", "the same, timed on a second pass once the JIT has compiled the hot loops"),
  subject("pidone-json-warm", "pidone JSON, JIT warm", "the same, JSON lines"),
  subject("pidone-prefix-main", "pidone prefix, main thread", "the multiplexer on the main thread (when the worker cannot start)"),
  subject("pidone-json-main", "pidone JSON, main thread", "the same, JSON lines"),
];

const LOG_ID: Record<LogSubject, string> = {
  cat: CAT,
  "bun-read": "bun-read",
  prefix: "pidone-prefix",
  json: "pidone-json",
  "prefix-warm": "pidone-prefix-warm",
  "json-warm": "pidone-json-warm",
  "prefix-main": "pidone-prefix-main",
  "json-main": "pidone-json-main",
};
const FLOOD_ID: Record<FloodSubject, string> = { forwarder: FORWARDER, "pidone-prefix": "pidone-prefix", "pidone-json": "pidone-json" };

const round2 = (x: number) => Math.round(x * 100) / 100;

async function throughput(workload: LogWorkload, plan: LogsPlan, say: (s: string) => void): Promise<MetricResult> {
  const all = new Map<LogSubject, LogThroughputResult[]>(SUBJECTS.map((s) => [s, []]));
  for (let run = 0; run < plan.runs; run++) {
    // Rotated as the other metrics are, so that load from elsewhere falls on every subject alike.
    for (let k = 0; k < SUBJECTS.length; k++) {
      const s = SUBJECTS[(run + k) % SUBJECTS.length]!;
      all.get(s)!.push(await measureLogThroughput({ subject: s, workload, scale: plan.scale }));
    }
  }
  const first = all.get("cat")![0]!;
  const mb = first.inputBytes / 1e6;
  const title =
    workload === "short"
      ? `log throughput: 2 services × ${(first.lines / 2).toLocaleString("en-US")} short lines (${mb.toPrecision(3)} MB)`
      : `log throughput: 1 service, ${mb.toPrecision(3)} MB in 64 KiB lines`;
  const m = newMetric(workload === "short" ? "logs-short" : "logs-long", title, "MB/s", "higher", CAT);
  const catMBps = median(all.get("cat")!.map((r) => r.mbPerS));
  for (const [s, rs] of all) {
    const id = LOG_ID[s];
    m.series[id] = rs.map((r) => r.mbPerS);
    const gaps = rs.map((r) => r.loopLagMs).filter((l) => l !== undefined);
    m.extra[id] = {
      xCat: round2(median(m.series[id]!) / catMBps),
      "Mlines/s": round2(median(rs.map((r) => r.linesPerS)) / 1e6),
      cpuMsPerMB: round2(median(rs.map((r) => r.cpuMsPerMB))),
      ...(gaps.length ? { timerGapP99Ms: round2(median(gaps.map((g) => g.p99))) } : {}),
    };
  }
  m.notes.push(
    `${plan.runs} run(s) per subject, interleaved; ${first.lines.toLocaleString("en-US")} lines, ${mb.toPrecision(3)} MB ` +
      `written by \`cat FILE\` into ${workload === "short" ? "two pipes" : "one pipe"}, to /dev/null; ` +
      "wall time from the producers' spawn to the last byte out; floor: the same producers into one pipe read by `cat`",
    "pidone-*: src/services/output.ts's OutputMux, the code of pidone's services mode, run by Bun from source in a fresh " +
      "process (start-up excluded); -warm: timed on a second pass through the same mux, the JIT's one-time warm-up set " +
      "apart; -main: the same with the mux on the main thread; bun-read: Bun reading the pipes, " +
      "no mux; cpuMsPerMB: the reader's CPU (user + system) per MB; timerGapP99Ms: p99 gap of a 1 ms timer in the reader",
  );
  say(`${m.id}: cat ${catMBps.toFixed(0)} MB/s, prefix ${median(m.series["pidone-prefix"]!).toFixed(0)} MB/s, json ${median(m.series["pidone-json"]!).toFixed(0)} MB/s`);
  return m;
}

/**
 * Where dist/pidone's services mode runs its output: "worker" when the compiled executable
 * carries output-worker.ts as an entry point (Bun names the Worker's thread "Worker"),
 * "main" when the worker failed to load. The thread count alone differs between the packed
 * and the plain executable (JIT threads), so the thread's name decides.
 */
export async function outputThread(pidone: string, dir: string): Promise<{ thread: "worker" | "main" | "unknown"; threads: number }> {
  const conf = join(dir, "probe-thread.toml");
  writeFileSync(conf, '[services.idle]\ncommand = "sleep 30"\n');
  const proc = Bun.spawn([pidone, "-c", conf], { env: BENCH_ENV, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const names = () => readdirSync(`/proc/${proc.pid}/task`).map((t) => readFileSync(`/proc/${proc.pid}/task/${t}/comm`, "utf8").trim());
  try {
    // The worker starts with the multiplexer, before the service. A build without its entry
    // point starts the thread too, which ends once the module fails to load: only a
    // "Worker" thread still there a second after the service started counts.
    const deadline = performance.now() + 10_000;
    while (performance.now() < deadline && !readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "utf8").trim()) await sleep(20);
    await sleep(1000);
    const seen = names();
    return { thread: seen.includes("Worker") ? "worker" : "main", threads: seen.length };
  } catch {
    return { thread: "unknown", threads: 0 };
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

/** Whether scripts/build.ts compiles the output worker in (the other half of the check). */
export function buildHasWorker(): boolean {
  return readFileSync(join(ROOT, "scripts/build.ts"), "utf8").includes("output-worker");
}

async function floodLatency(built: Built, plan: LogsPlan, say: (s: string) => void): Promise<MetricResult> {
  const probe = await outputThread(built.pidone, built.work);
  const results = await measureFloodLatency({ signals: plan.signals, rounds: plan.rounds, scale: plan.scale, built, say });
  const m = newMetric("signal-flood", "signal latency under the log flood (2 services)", "µs", "lower", FORWARDER);
  for (const r of results) {
    if (!r.flood) continue;
    const id = FLOOD_ID[r.subject];
    m.series[id] = r.latUs;
    m.extra[id] = { sent: plan.signals * plan.rounds, lost: r.lost, duplicated: r.extra };
    if (r.lost || r.extra) m.notes.push(`${id}: ${r.lost} signals lost, ${r.extra} duplicated`);
  }
  const floor = median(m.series[FORWARDER] ?? []);
  for (const id of Object.keys(m.series)) m.extra[id]!.xForwarder = round2(median(m.series[id]!) / floor);
  m.notes.push(
    `${plan.rounds} round(s) × ${plan.signals} SIGUSR1 per subject (siglat, one at a time, 50-150 µs apart) to \`siglat child\`, ` +
      "while two producers loop `cat` of the short-line files: under dist/pidone in services mode (3 services, the producers' " +
      "output multiplexed to /dev/null), or, for the floor, under the Bun forwarder with the producers piped to `cat > /dev/null`",
    `dist/pidone's output ran on ${probe.thread === "worker" ? "its worker thread" : probe.thread === "main" ? "the main thread (no worker in the build)" : "an unknown thread"} ` +
      `(${probe.threads} threads in services mode; scripts/build.ts ${buildHasWorker() ? "lists" : "does not list"} src/services/output-worker.ts)`,
  );
  say(`signal-flood: forwarder ${floor.toFixed(0)} µs, pidone output on ${probe.thread} (${probe.threads} threads)`);
  return m;
}

export async function measureLogs(built: Built, plan: LogsPlan, say: (s: string) => void): Promise<MetricResult[]> {
  return [await throughput("short", plan, say), await throughput("long", plan, say), await floodLatency(built, plan, say)];
}
