// The timed metrics. Each one starts every subject in turn, round after round, with the
// starting subject rotating each round (A B C, B C A, ...), so that load from elsewhere on
// the machine falls on all of them alike. The C helpers hold the clock; this file only
// arranges the command lines and reads their answers.
import { sharedLibraries } from "../../lib/rootfs.ts";
import { capture, mustRun, parseFields, parseSeries } from "./proc.ts";
import { newMetric, type Family, type MetricResult, type Subject, type Tools } from "./types.ts";

const joinCommands = (cmds: string[][]) => cmds.flatMap((c, i) => (i === 0 ? c : [":::", ...c]));
const taking = (subjects: readonly Subject[], f: Family) => subjects.filter((s) => s.families.has(f));

/** 1. Wall time of `INIT /bin/true` (the empty Bun program alone, no init: /bin/true). */
export async function measureStartup(subjects: readonly Subject[], tools: Tools, rounds: number): Promise<MetricResult> {
  const subs = taking(subjects, "startup");
  const cmds = subs.map((s) => (s.standalone ? s.prefix : [...s.prefix, "/bin/true"]));
  const warmup = Math.min(10, Math.max(1, Math.floor(rounds / 30)));
  const out = await mustRun([tools.spawntime, String(rounds), String(warmup), ...joinCommands(cmds)], { timeoutMs: 600_000 });
  const series = parseSeries(out);
  const m = newMetric("startup", "start-up: `INIT /bin/true`", "ms");
  subs.forEach((s, i) => {
    m.series[s.id] = (series.get("t")?.get(i) ?? []).map((ns) => ns / 1e6);
    const fails = series.get("fail")?.get(i)?.[0] ?? 0;
    m.extra[s.id] = { failures: fails };
    if (fails) m.notes.push(`${s.id}: ${fails} runs did not exit 0`);
  });
  m.notes.push(`${rounds} runs each after ${warmup} warm-up rounds; stdio on /dev/null; not PID 1 (tini and pidone print their warning)`);
  return m;
}

/** 2. kill(init, SIGUSR1) -> the child's handler; pinned to one CPU or not. */
export async function measureSignals(
  subjects: readonly Subject[],
  tools: Tools,
  signals: number,
  pinCpu: number | null,
): Promise<MetricResult> {
  const subs = taking(subjects, "signal");
  const cmds = subs.map((s) => [...s.prefix, tools.siglat, "child"]);
  const gapUs = 100;
  const driver = [tools.siglat, "drive", String(signals), String(gapUs), ...joinCommands(cmds)];
  const out = await mustRun(pinCpu === null ? driver : ["taskset", "-c", String(pinCpu), ...driver], { timeoutMs: 600_000 });
  const series = parseSeries(out);
  const m =
    pinCpu === null
      ? newMetric("signal-unpinned", "signal forwarding latency, unpinned", "µs")
      : newMetric("signal-pinned", `signal forwarding latency, pinned to CPU ${pinCpu}`, "µs");
  subs.forEach((s, i) => {
    m.series[s.id] = (series.get("lat")?.get(i) ?? []).map((ns) => ns / 1e3);
    const lost = series.get("lost")?.get(i)?.[0] ?? signals;
    const extra = series.get("extra")?.get(i)?.[0] ?? 0;
    m.extra[s.id] = { sent: signals, lost, duplicated: extra };
    if (lost || extra) m.notes.push(`${s.id}: ${lost} signals lost, ${extra} duplicated`);
  });
  m.notes.push(
    `${signals} SIGUSR1 per subject, one at a time, ${gapUs / 2}-${(gapUs * 3) / 2} µs apart; ` +
      (pinCpu === null ? "scheduler free to use every CPU" : `driver, inits and children all on CPU ${pinCpu} (taskset)`),
  );
  return m;
}

/** 3. The child's last instruction -> waitpid on the init returns. */
export async function measureExit(
  subjects: readonly Subject[],
  tools: Tools,
  rounds: number,
  settleMs: number,
): Promise<MetricResult> {
  const subs = taking(subjects, "exit");
  // A standalone subject plays `exitlat child` itself (the Bun process's own teardown).
  const cmds = subs.map((s) => (s.standalone ? s.prefix : [...s.prefix, tools.exitlat, "child"]));
  const out = await mustRun([tools.exitlat, "drive", String(rounds), String(settleMs), ...joinCommands(cmds)], {
    timeoutMs: 600_000,
  });
  const series = parseSeries(out);
  const m = newMetric("exit", "exit latency: child's `_exit` → init reaped by its parent", "ms");
  subs.forEach((s, i) => {
    m.series[s.id] = (series.get("lat")?.get(i) ?? []).map((ns) => ns / 1e6);
    const fails = series.get("fail")?.get(i)?.[0] ?? 0;
    m.extra[s.id] = { failures: fails };
    if (fails) m.notes.push(`${s.id}: ${fails} runs failed`);
  });
  m.notes.push(`${rounds} runs each; the child exits ${settleMs} ms after it reported ready, so the init is idle`);
  return m;
}

export interface ReapingPlan {
  orphans: number;
  stormRounds: number;
  zombies: number;
  drainRounds: number;
}

/** 4. As PID 1 of a new PID namespace: an orphan storm, and the drain of a zombie backlog. */
export async function measureReaping(
  subjects: readonly Subject[],
  tools: Tools,
  plan: ReapingPlan,
): Promise<MetricResult[]> {
  const subs = taking(subjects, "reaping");
  const storm = newMetric("storm", `reaping as PID 1: ${plan.orphans} double-forked orphans until none is left`, "ms");
  const drain = newMetric("drain", `reaping as PID 1: drain of a ${plan.zombies}-zombie backlog`, "zombies/s", "higher");
  for (const s of subs) {
    storm.series[s.id] = [];
    storm.extra[s.id] = { peakZombies: 0, left: 0, createMs: 0 };
    drain.series[s.id] = [];
    drain.extra[s.id] = { drainMs: 0, left: 0 };
  }
  const timeoutS = 60;
  const rounds = Math.max(plan.stormRounds, plan.drainRounds);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < subs.length; k++) {
      const s = subs[(r + k) % subs.length]!;
      if (r < plan.stormRounds) {
        const cmd = [tools.reapbench, "storm", String(plan.orphans), String(timeoutS), ...s.prefix];
        const res = await capture([...cmd, tools.reapbench, "maker", "storm", String(plan.orphans), String(timeoutS)], {
          timeoutMs: (timeoutS + 30) * 1000,
        });
        const f = parseFields(res.stdout);
        if (typeof f.elapsed_ns === "number") {
          storm.series[s.id]!.push(f.elapsed_ns / 1e6);
          const e = storm.extra[s.id]!;
          e.peakZombies = Math.max(e.peakZombies!, Number(f.peak));
          e.left = Math.max(e.left!, Number(f.left));
          e.createMs = Math.max(e.createMs!, Number(f.create_ns) / 1e6);
        } else storm.notes.push(`${s.id}: storm failed: ${res.stdout.trim()} ${res.stderr.trim().slice(0, 300)}`);
      }
      if (r < plan.drainRounds) {
        const cmd = [tools.reapbench, "backlog", String(plan.zombies), String(timeoutS), ...s.prefix];
        const res = await capture([...cmd, tools.reapbench, "maker", "backlog", String(plan.zombies), String(timeoutS)], {
          timeoutMs: (timeoutS + 30) * 1000,
        });
        const f = parseFields(res.stdout);
        if (typeof f.drain_ns === "number" && f.left === 0) {
          drain.series[s.id]!.push(plan.zombies / (f.drain_ns / 1e9));
          const e = drain.extra[s.id]!;
          e.drainMs = Math.max(e.drainMs!, f.drain_ns / 1e6);
        } else {
          drain.extra[s.id]!.left = Math.max(drain.extra[s.id]!.left!, Number(f.left ?? plan.zombies));
          drain.notes.push(`${s.id}: backlog failed: ${res.stdout.trim()} ${res.stderr.trim().slice(0, 300)}`);
        }
      }
    }
  }
  storm.notes.push(
    `${plan.stormRounds} round(s); time from the first orphan until the init has no child but the maker; ` +
      "peakZombies: most orphans the init held at once (sampled every ms)",
  );
  drain.notes.push(
    `${plan.drainRounds} round(s); init stopped (SIGSTOP), ${plan.zombies} zombies made, SIGCONT, ` +
      "timed until none is left (drainMs: slowest round)",
  );
  return [storm, drain];
}

/** 7. File size of what a container must carry. */
export async function measureSize(subjects: readonly Subject[]): Promise<MetricResult> {
  const { statSync } = await import("node:fs");
  const m = newMetric("size", "file size", "MB");
  for (const s of taking(subjects, "size")) {
    if (!s.bin) continue;
    m.series[s.id] = [statSync(s.bin).size / 1e6];
    m.extra[s.id] = { bytes: statSync(s.bin).size, sharedLibraries: sharedLibraries(s.bin).length };
  }
  m.notes.push("sharedLibraries: what a FROM scratch image must carry besides the file, loader included (ldd; none without PT_INTERP)");
  return m;
}
