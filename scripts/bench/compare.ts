// Two builds of pidone side by side, from one interleaved benchmark run:
//   bun scripts/bench/run.ts --single-file OLD/pidone --out DIR   (dist/pidone is the new one)
//   bun scripts/bench/compare.ts DIR/latest.json
// For every metric both ran: each median, the old median's 95 % interval, and a verdict:
// "same" when the new median lies inside the old one's interval, else how much better or
// worse it is; "worse" only beyond 5 %. Exit 1 when any metric is worse.
import { readFileSync } from "node:fs";

type Summary = { median: number; ci95: [number, number] };
type Metric = { id: string; unit: string; better: "lower" | "higher"; results: Record<string, { summary?: Summary }> };

const file = process.argv[2];
if (!file) {
  console.error("usage: bun scripts/bench/compare.ts RESULTS.json [NEW_ID] [OLD_ID]");
  process.exit(2);
}
const [newId, oldId] = [process.argv[3] ?? "pidone", process.argv[4] ?? "pidone-single"];
const doc = JSON.parse(readFileSync(file, "utf8")) as { metrics: Record<string, Metric> };

const rows: string[] = [`| metric | ${newId} | ${oldId} (95 % interval) | verdict |`, "|---|---|---|---|"];
let worse = 0;
for (const m of Object.values(doc.metrics)) {
  const a = m.results[newId]?.summary;
  const b = m.results[oldId]?.summary;
  if (!a || !b) continue;
  // > 1: the new build is worse by that factor, whichever direction is better.
  const ratio = m.better === "lower" ? a.median / b.median : b.median / a.median;
  const inside = a.median >= b.ci95[0] && a.median <= b.ci95[1];
  const verdict = inside ? "same" : ratio <= 1 ? `better (${ratio.toFixed(3)}×)` : ratio <= 1.05 ? `within 5 % (${ratio.toFixed(3)}×)` : `WORSE (${ratio.toFixed(3)}×)`;
  if (verdict.startsWith("WORSE")) worse++;
  const f = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(4));
  rows.push(`| ${m.id} (${m.unit}, ${m.better} is better) | ${f(a.median)} | ${f(b.median)} (${f(b.ci95[0])}–${f(b.ci95[1])}) | ${verdict} |`);
}
console.log(rows.join("\n"));
process.exit(worse ? 1 : 0);
