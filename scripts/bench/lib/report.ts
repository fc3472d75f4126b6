// From raw series to what people read: per-metric summaries with ratios to tini (or, for
// metric 8, which tini has no part in, to that metric's floor), the markdown tables, and
// the JSON document.
import { ratioOfMedians, summarize, type Ratio, type Summary } from "./stats.ts";
import type { MetricResult, Subject } from "./types.ts";

export const BASELINE = "tini";

export interface SubjectSummary {
  summary: Summary;
  /** Against tini; null when the metric has another baseline or no tini series. */
  ratioToTini: Ratio | null;
  /** Against the metric's own baseline (only when that is not tini). */
  ratioToBaseline?: Ratio | null;
  extra?: Record<string, number>;
}

export interface MetricSummary {
  id: string;
  title: string;
  unit: string;
  better: "lower" | "higher";
  /** The subject the ratios are taken against. */
  baseline: string;
  results: Record<string, SubjectSummary>;
  notes: string[];
}

export function summarizeMetric(m: MetricResult): MetricSummary {
  const baseline = m.baseline ?? BASELINE;
  const base = m.series[baseline];
  const results: MetricSummary["results"] = {};
  for (const [id, xs] of Object.entries(m.series)) {
    const summary = summarize(xs);
    if (!summary) continue;
    const r = base && base.length ? ratioOfMedians(xs, base) : null;
    const ratio = r && Number.isFinite(r.median) ? r : null;
    results[id] =
      baseline === BASELINE
        ? { summary, ratioToTini: ratio, extra: m.extra[id] }
        : { summary, ratioToTini: null, ratioToBaseline: ratio, extra: m.extra[id] };
  }
  return { id: m.id, title: m.title, unit: m.unit, better: m.better, baseline, results, notes: m.notes };
}

/** The ratio to the metric's baseline, whichever that is. */
export const ratioOf = (r: SubjectSummary): Ratio | null => r.ratioToBaseline ?? r.ratioToTini;

/** Three significant figures, in the metric's unit (kB for sizes under 1 MB). */
export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "–";
  if (unit === "zombies/s") return `${(v / 1000).toPrecision(3)}k/s`;
  if (unit === "count") return String(Math.round(v));
  if (unit === "MB/s" && Math.abs(v) >= 1000) return `${(v / 1000).toPrecision(3)} GB/s`;
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
        const ratio = ratioOf(r);
        return ratio && s.id !== m.baseline ? `${v} (${formatRatio(ratio.median)})` : v;
      });
      return `| ${m.title}${m.better === "higher" ? " ↑" : ""} | ${cells.join(" | ")} |`;
    });
  return [head, rule, ...rows].join("\n");
}

export function detailTable(metrics: readonly MetricSummary[], subjects: readonly Subject[]): string {
  const head = "| metric | subject | n | median | 95% CI of median | p90 | p99 | × tini or floor [95% CI] | other |";
  const rule = "|---|---|---:|---:|---:|---:|---:|---:|---|";
  const rows: string[] = [];
  for (const m of metrics) {
    for (const s of subjects) {
      const r = m.results[s.id];
      if (!r) continue;
      const f = (v: number) => formatValue(v, m.unit);
      const sm = r.summary;
      const rt = ratioOf(r);
      const against = m.baseline === BASELINE ? "" : ` ${m.baseline}`;
      const ratio = !rt
        ? "–"
        : rt.ci95[0] === rt.ci95[1]
          ? `${formatRatio(rt.median)}${against}`
          : `${formatRatio(rt.median)}${against} [${formatRatio(rt.ci95[0])}, ${formatRatio(rt.ci95[1])}]`;
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

/**
 * Metric 8's table: its subjects are not inits, and each row has its own floor (cat for
 * throughput, the Bun forwarder for latency under the flood), shown in the first column.
 */
export function floorTable(metrics: readonly MetricSummary[], subjects: readonly Subject[]): string {
  const label = (id: string) => subjects.find((s) => s.id === id)?.label ?? id;
  const shown = metrics.filter((m) => Object.keys(m.results).length);
  const cols = subjects.filter((s) => shown.some((m) => m.results[s.id] && s.id !== m.baseline));
  const head = `| metric 8 (median; × floor) | floor | ${cols.map((s) => s.label).join(" | ")} |`;
  const rule = `|---|---:|${cols.map(() => "---:").join("|")}|`;
  const rows = shown.map((m) => {
    const floor = m.results[m.baseline];
    const floorCell = floor ? `${label(m.baseline)}: ${formatValue(floor.summary.median, m.unit)}` : "–";
    const cells = cols.map((s) => {
      const r = m.results[s.id];
      if (!r || s.id === m.baseline) return "–";
      const ratio = ratioOf(r);
      const v = formatValue(r.summary.median, m.unit);
      return ratio ? `${v} (${formatRatio(ratio.median)})` : v;
    });
    return `| ${m.title}${m.better === "higher" ? " ↑" : ""} | ${floorCell} | ${cells.join(" | ")} |`;
  });
  return [head, rule, ...rows].join("\n");
}
