// From raw series to what people read: per-metric summaries with ratios to tini, the
// markdown tables, and the JSON document.
import { ratioOfMedians, summarize, type Ratio, type Summary } from "./stats.ts";
import type { MetricResult, Subject } from "./types.ts";

export const BASELINE = "tini";

export interface MetricSummary {
  id: string;
  title: string;
  unit: string;
  better: "lower" | "higher";
  results: Record<string, { summary: Summary; ratioToTini: Ratio | null; extra?: Record<string, number> }>;
  notes: string[];
}

export function summarizeMetric(m: MetricResult): MetricSummary {
  const base = m.series[BASELINE];
  const results: MetricSummary["results"] = {};
  for (const [id, xs] of Object.entries(m.series)) {
    const summary = summarize(xs);
    if (!summary) continue;
    const ratio = base && base.length ? ratioOfMedians(xs, base) : null;
    results[id] = { summary, ratioToTini: ratio && Number.isFinite(ratio.median) ? ratio : null, extra: m.extra[id] };
  }
  return { id: m.id, title: m.title, unit: m.unit, better: m.better, results, notes: m.notes };
}

/** Three significant figures, in the metric's unit (kB for sizes under 1 MB). */
export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "–";
  if (unit === "zombies/s") return `${(v / 1000).toPrecision(3)}k/s`;
  if (unit === "count") return String(Math.round(v));
  if (unit === "MB" && v < 1) return `${(v * 1000).toPrecision(3)} kB`;
  const abs = Math.abs(v);
  const s = abs === 0 ? "0" : abs >= 100 ? v.toFixed(0) : v.toPrecision(3);
  return unit === "count" ? s : `${s} ${unit}`;
}

const formatRatio = (r: number) => (Number.isFinite(r) ? `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×` : "–");

export function summaryTable(metrics: readonly MetricSummary[], subjects: readonly Subject[]): string {
  const cols = subjects.filter((s) => metrics.some((m) => m.results[s.id]));
  const head = `| metric (median; × tini) | ${cols.map((s) => s.label).join(" | ")} |`;
  const rule = `|---|${cols.map(() => "---:").join("|")}|`;
  const rows = metrics
    .filter((m) => Object.keys(m.results).length)
    .map((m) => {
      const cells = cols.map((s) => {
        const r = m.results[s.id];
        if (!r) return "–";
        const v = formatValue(r.summary.median, m.unit);
        return r.ratioToTini && s.id !== BASELINE ? `${v} (${formatRatio(r.ratioToTini.median)})` : v;
      });
      return `| ${m.title}${m.better === "higher" ? " ↑" : ""} | ${cells.join(" | ")} |`;
    });
  return [head, rule, ...rows].join("\n");
}

export function detailTable(metrics: readonly MetricSummary[], subjects: readonly Subject[]): string {
  const head = "| metric | subject | n | median | 95% CI of median | p90 | p99 | × tini [95% CI] | other |";
  const rule = "|---|---|---:|---:|---:|---:|---:|---:|---|";
  const rows: string[] = [];
  for (const m of metrics) {
    for (const s of subjects) {
      const r = m.results[s.id];
      if (!r) continue;
      const f = (v: number) => formatValue(v, m.unit);
      const sm = r.summary;
      const rt = r.ratioToTini;
      const ratio = !rt
        ? "–"
        : rt.ci95[0] === rt.ci95[1]
          ? formatRatio(rt.median)
          : `${formatRatio(rt.median)} [${formatRatio(rt.ci95[0])}, ${formatRatio(rt.ci95[1])}]`;
      const other = Object.entries(r.extra ?? {})
        .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`)
        .join(" ");
      const many = sm.n > 1;
      rows.push(
        `| ${m.id} | ${s.label} | ${sm.n} | ${f(sm.median)} | ${many ? `${f(sm.ci95[0])} – ${f(sm.ci95[1])}` : "–"} | ` +
          `${many ? f(sm.p90) : "–"} | ${many ? f(sm.p99) : "–"} | ${ratio} | ${other} |`,
      );
    }
  }
  return [head, rule, ...rows].join("\n");
}
