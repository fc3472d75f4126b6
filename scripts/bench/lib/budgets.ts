// The issue's performance budgets, judged on medians of the same run (a budget is a
// floor to beat, not a target to stop at). `met: null` means not measured in this run.
import { formatValue, type MetricSummary } from "./report.ts";

export interface Budget {
  id: string;
  text: string;
  met: boolean | null;
  detail: string;
}

const PIDONE = "pidone";

export function judgeBudgets(metrics: readonly MetricSummary[], subject = PIDONE, emptyFloor = "bun-empty"): Budget[] {
  const get = (id: string) => metrics.find((m) => m.id === id);
  const med = (m: MetricSummary | undefined, s: string) => m?.results[s]?.summary.median;
  const p99 = (m: MetricSummary | undefined, s: string) => m?.results[s]?.summary.p99;
  const out: Budget[] = [];
  const who = subject;

  {
    const m = get("startup");
    const [p, e, t] = [med(m, who), med(m, emptyFloor), med(m, "none")];
    const ok = p !== undefined && e !== undefined && t !== undefined;
    const limit = ok ? e + t + 1 : NaN;
    out.push({
      id: "startup",
      text: `start-up ≤ empty Bun program built the same way (${emptyFloor}) + bare /bin/true + 1 ms`,
      met: ok ? p <= limit : null,
      detail: ok
        ? `${who} ${formatValue(p, "ms")} vs ${formatValue(e, "ms")} + ${formatValue(t, "ms")} + 1 ms = ${formatValue(limit, "ms")} ` +
          `(over by ${formatValue(p - limit, "ms")}; tini ${formatValue(med(m, "tini") ?? NaN, "ms")})`
        : "not measured",
    });
  }
  {
    const m = get("signal-pinned");
    const [pm, tm, pp, tp] = [med(m, who), med(m, "tini"), p99(m, who), p99(m, "tini")];
    const floor = med(m, "bun-forwarder");
    const handler = med(m, "c-handler");
    const ok = pm !== undefined && tm !== undefined && pp !== undefined && tp !== undefined;
    out.push({
      id: "signal",
      text: "signal latency (1 CPU): median ≤ 1.0× tini and p99 ≤ 1.25× tini",
      met: ok ? pm <= tm && pp <= 1.25 * tp : null,
      detail: ok
        ? `median ${formatValue(pm, "µs")} vs tini ${formatValue(tm, "µs")} (${(pm / tm).toFixed(2)}×); ` +
          `p99 ${formatValue(pp, "µs")} vs tini ${formatValue(tp, "µs")} (${(pp / tp).toFixed(2)}×)` +
          (floor !== undefined
            ? `; JS forwarder floor: median ${formatValue(floor, "µs")} (${(floor / tm).toFixed(2)}×), ` +
              `p99 ${formatValue(p99(m, "bun-forwarder")!, "µs")}`
            : "") +
          (handler !== undefined
            ? `; C forwarder in a signal handler (the design Bun's event loop imposes): median ${formatValue(handler, "µs")} (${(handler / tm).toFixed(2)}×)`
            : "")
        : "not measured",
    });
  }
  {
    const m = get("exit");
    const [p, t, f, own] = [med(m, who), med(m, "tini"), med(m, "bun-forwarder"), med(m, "bun-exit")];
    const ok = p !== undefined && t !== undefined;
    out.push({
      id: "exit",
      text: "exit latency median ≤ 1.5× tini",
      met: ok ? p <= 1.5 * t : null,
      detail: ok
        ? `${formatValue(p, "ms")} vs tini ${formatValue(t, "ms")} (${(p / t).toFixed(2)}×; limit ${formatValue(1.5 * t, "ms")})` +
          (f !== undefined ? `; JS forwarder floor ${formatValue(f, "ms")} (${(f / t).toFixed(2)}×)` : "") +
          (own !== undefined ? `; a Bun program's own _exit ${formatValue(own, "ms")} (${(own / t).toFixed(2)}×)` : "")
        : "not measured",
    });
  }
  {
    const d = get("drain");
    const s = get("storm");
    const [p, t, f] = [med(d, who), med(d, "tini"), med(d, "bun-forwarder")];
    const left = s?.results[who]?.extra?.left;
    const ok = p !== undefined && t !== undefined && left !== undefined;
    out.push({
      id: "reaping",
      text: "zombie backlog drain ≥ 1.0× tini, and no zombie left after the orphan storm",
      met: ok ? p >= t && left === 0 : null,
      detail: ok
        ? `drain ${formatValue(p, "zombies/s")} vs tini ${formatValue(t, "zombies/s")} (${(p / t).toFixed(2)}×)` +
          (f !== undefined ? `; JS floor ${formatValue(f, "zombies/s")}` : "") +
          `; storm: ${left} left, peak ${s?.results[who]?.extra?.peakZombies} zombies`
        : "not measured",
    });
  }
  {
    const [w, c, a, r] = ["idle-wakeups", "idle-cpu", "idle-rssanon", "idle-vmrss"].map((id) => med(get(id), who));
    const ok = w !== undefined && c !== undefined && a !== undefined && r !== undefined;
    // In a container (--docker) the memory is judged as pidone is deployed: its file as
    // Docker's layer extraction wrote it. The host's figure is shown beside it.
    const [da, dr] = [med(get("docker-rssanon"), who), med(get("docker-vmrss"), who)];
    const inDocker = da !== undefined && dr !== undefined;
    const [ja, jr] = inDocker ? [da, dr] : [a, r];
    out.push({
      id: "idle",
      text: "idle 10 s: 0 wake-ups, 0 CPU; RssAnon ≤ 3 MB, VmRSS ≤ 25 MB",
      met: ok ? w === 0 && c === 0 && ja! <= 3 && jr! <= 25 : null,
      detail: ok
        ? `${w} wake-ups, ${formatValue(c, "ms")} CPU, ` +
          (inDocker
            ? `in a container RssAnon ${formatValue(da, "MB")}, VmRSS ${formatValue(dr, "MB")} ` +
              `(on the host, the file as the build just wrote it: RssAnon ${formatValue(a, "MB")}, VmRSS ${formatValue(r, "MB")})`
            : `RssAnon ${formatValue(a, "MB")}, VmRSS ${formatValue(r, "MB")} (the file as the build just wrote it; --docker measures it in a container)`)
        : "not measured",
    });
  }
  {
    const m = get("docker-stop");
    const [p, t] = [med(m, who), med(m, "tini")];
    const ok = p !== undefined && t !== undefined;
    out.push({
      id: "docker-stop",
      text: "`docker stop` ≤ 1.0× tini",
      met: ok ? p <= t : null,
      detail: ok ? `${formatValue(p, "s")} vs tini ${formatValue(t, "s")} (${(p / t).toFixed(2)}×)` : "not measured (run with --docker)",
    });
  }
  out.push(...logBudgets(get, who));
  return out;
}

/**
 * Metric 8. Throughput: prefixed and JSON output (the multiplexer's worker thread, as
 * pidone runs it) ≥ 0.5× cat on both workloads. Under the flood: the median signal latency
 * of pidone's services mode, prefixed and JSON, ≤ 2× the Bun forwarder's under the same flood.
 * Both measure dist/pidone's code (throughput: its multiplexer module; latency: dist/pidone),
 * so they are judged for "pidone" only.
 */
function logBudgets(get: (id: string) => MetricSummary | undefined, who: string): Budget[] {
  const med = (m: MetricSummary | undefined, s: string) => m?.results[s]?.summary.median;
  const elsewhere = who !== PIDONE ? `not measured for ${who}: metric 8 measures dist/pidone's code (see the pidone budgets)` : null;
  const workloads = [get("logs-short"), get("logs-long")];
  const parts: string[] = [];
  let tput: boolean | null = elsewhere ? null : true;
  for (const m of workloads) {
    const cat = med(m, "cat");
    const name = m?.id === "logs-long" ? "long lines" : "short lines";
    if (!m || cat === undefined) {
      tput = null;
      continue;
    }
    const cells = (["pidone-prefix", "pidone-json"] as const).map((id) => {
      const v = med(m, id);
      if (v === undefined) {
        tput = null;
        return `${id.slice(7)} –`;
      }
      if (tput !== null && v < 0.5 * cat) tput = false;
      return `${id.slice(7)} ${formatValue(v, m.unit)} (${(v / cat).toFixed(2)}×)`;
    });
    // Reported, not judged: the same code once the JIT has warmed up (the cold run's floor).
    const warm = (["pidone-prefix-warm", "pidone-json-warm"] as const)
      .map((id) => [id.slice(7, -5), med(m, id)] as const)
      .filter(([, v]) => v !== undefined)
      .map(([what, v]) => `${what} ${(v! / cat).toFixed(2)}×`);
    parts.push(`${name}: ${cells.join(", ")} vs cat ${formatValue(cat, m.unit)}${warm.length ? ` (JIT warm: ${warm.join(", ")})` : ""}`);
  }
  if (workloads.some((m) => !m)) tput = null;
  const fl = get("signal-flood");
  const fw = med(fl, "bun-forwarder");
  let lat: boolean | null = elsewhere || fw === undefined ? null : true;
  const latParts = (["pidone-prefix", "pidone-json"] as const).map((id) => {
    const v = med(fl, id);
    if (v === undefined || fw === undefined) {
      lat = null;
      return `${id.slice(7)} –`;
    }
    if (lat !== null && v > 2 * fw) lat = false;
    return `${id.slice(7)} ${formatValue(v, "µs")} (${(v / fw).toFixed(2)}×, p99 ${formatValue(fl!.results[id]!.summary.p99, "µs")})`;
  });
  const notMeasured = "not measured (run without --no-logs, or with --only logs)";
  return [
    {
      id: "logs",
      text: "prefixed and JSON log throughput ≥ 0.5× cat, on both workloads",
      met: tput,
      detail: elsewhere ?? (parts.length === 2 ? parts.join("; ") : notMeasured),
    },
    {
      id: "signal-flood",
      text: "signal latency under the log flood (median) ≤ 2× the Bun forwarder's under the same flood, prefixed and JSON",
      met: lat,
      detail:
        elsewhere ??
        (fw === undefined
          ? notMeasured
          : `${latParts.join(", ")} vs forwarder ${formatValue(fw, "µs")} (p99 ${formatValue(fl!.results["bun-forwarder"]!.summary.p99, "µs")}; limit ${formatValue(2 * fw, "µs")})`),
    },
  ];
}

export function budgetLines(budgets: readonly Budget[]): string {
  const mark = (b: Budget) => (b.met === null ? "n/a" : b.met ? "MET" : "NOT MET");
  return budgets.map((b) => `- **${mark(b)}** — ${b.text}: ${b.detail}`).join("\n");
}
