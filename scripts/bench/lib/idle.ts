// 5. Idle cost: every init runs a sleeping child at the same time; after a settling
// second, /proc is read at the start and the end of the window. Wake-ups are context
// switches (voluntary + involuntary) summed over every thread: a runtime's helper threads
// wake up too, and the leader's counters alone would hide them.
import { readdirSync, readFileSync } from "node:fs";
import { BENCH_ENV, sleep } from "./proc.ts";
import { newMetric, type MetricResult, type Subject } from "./types.ts";

interface Snapshot {
  /** tid -> context switches */
  switches: Map<string, number>;
  /** tid -> ns on CPU (schedstat) */
  cpuNs: Map<string, number>;
  /** utime + stime of the whole process, dead threads included, in clock ticks */
  ticks: number;
}

function statusFields(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

function snapshot(pid: number): Snapshot {
  const switches = new Map<string, number>();
  const cpuNs = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = statusFields(readFileSync(`/proc/${pid}/task/${tid}/status`, "latin1"));
      switches.set(tid, Number(st.get("voluntary_ctxt_switches") ?? 0) + Number(st.get("nonvoluntary_ctxt_switches") ?? 0));
      cpuNs.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ")[0]));
    } catch {
      // the thread ended between readdir and read
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { switches, cpuNs, ticks: Number(fields[11]) + Number(fields[12]) };
}

function delta(a: Map<string, number>, b: Map<string, number>): number {
  let d = 0;
  for (const [tid, v] of b) d += v - (a.get(tid) ?? 0);
  return d;
}

const kB = (s: string | undefined) => Number((s ?? "0").replace(/\s*kB$/, "")) / 1000;

export async function measureIdle(
  subjects: readonly Subject[],
  windowS: number,
  settleMs: number,
  env: Record<string, string> = BENCH_ENV,
): Promise<MetricResult[]> {
  const subs = subjects.filter((s) => s.families.has("idle"));
  const procs = subs.map((s) =>
    Bun.spawn([...s.prefix, "/bin/sleep", "3600"], { env, stdin: "ignore", stdout: "ignore", stderr: "ignore" }),
  );
  const rss = newMetric("idle-vmrss", "idle: VmRSS", "MB");
  const anon = newMetric("idle-rssanon", "idle: RssAnon", "MB");
  const file = newMetric("idle-rssfile", "idle: RssFile", "MB");
  const cpu = newMetric("idle-cpu", `idle: CPU time in ${windowS} s`, "ms");
  const wake = newMetric("idle-wakeups", `idle: wake-ups in ${windowS} s`, "count");
  try {
    await sleep(settleMs);
    const before = procs.map((p) => snapshot(p.pid));
    await sleep(windowS * 1000);
    const after = procs.map((p) => snapshot(p.pid));
    const hz = 100; // USER_HZ on Linux
    subs.forEach((s, i) => {
      const st = statusFields(readFileSync(`/proc/${procs[i]!.pid}/status`, "latin1"));
      rss.series[s.id] = [kB(st.get("VmRSS"))];
      anon.series[s.id] = [kB(st.get("RssAnon"))];
      file.series[s.id] = [kB(st.get("RssFile"))];
      cpu.series[s.id] = [delta(before[i]!.cpuNs, after[i]!.cpuNs) / 1e6];
      cpu.extra[s.id] = { ticksMs: ((after[i]!.ticks - before[i]!.ticks) * 1000) / hz };
      wake.series[s.id] = [delta(before[i]!.switches, after[i]!.switches)];
      wake.extra[s.id] = { threads: after[i]!.switches.size };
    });
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    const deadline = Date.now() + 5000;
    for (const p of procs) {
      const left = deadline - Date.now();
      const done = await Promise.race([p.exited.then(() => true), sleep(Math.max(0, left)).then(() => false)]);
      if (!done) p.kill("SIGKILL");
    }
  }
  rss.notes.push(`all subjects idle at once, each with /bin/sleep as its child; read ${settleMs} ms after start`);
  cpu.notes.push("sum over threads of /proc/PID/task/TID/schedstat (ticksMs: utime+stime, 10 ms resolution)");
  wake.notes.push("voluntary + nonvoluntary context switches summed over /proc/PID/task/*/status");
  return [rss, anon, file, cpu, wake];
}
