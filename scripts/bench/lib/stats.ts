// Summary statistics for one series of measurements: median with a distribution-free
// 95% confidence interval (order statistics of the binomial), p90/p99, and a bootstrap
// interval for the ratio of two medians (the "× tini" columns).

export interface Summary {
  n: number;
  median: number;
  /** 95% CI of the median (order statistics); [min, max] when n is too small to do better. */
  ci95: [number, number];
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

export interface Ratio {
  median: number;
  /** 95% bootstrap CI of median(a) / median(b). */
  ci95: [number, number];
}

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);

/** Quantile by linear interpolation between closest ranks (R type 7). */
export function quantile(sortedXs: readonly number[], q: number): number {
  if (sortedXs.length === 0) return NaN;
  const h = (sortedXs.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sortedXs[lo]! + (sortedXs[hi]! - sortedXs[lo]!) * (h - lo);
}

/** Ranks j < k with P(x_(j) <= median <= x_(k)) >= 95%, by the normal approximation. */
function medianCi(s: readonly number[]): [number, number] {
  const n = s.length;
  if (n < 6) return [s[0]!, s[n - 1]!];
  const half = (1.959964 * Math.sqrt(n)) / 2;
  const j = Math.max(1, Math.floor(n / 2 - half));
  const k = Math.min(n, Math.ceil(n / 2 + half + 1));
  return [s[j - 1]!, s[k - 1]!];
}

export function summarize(xs: readonly number[]): Summary | null {
  if (xs.length === 0) return null;
  const s = sorted(xs);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    ci95: medianCi(s),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    min: s[0]!,
    max: s[s.length - 1]!,
  };
}

/** Small deterministic PRNG (mulberry32): the same data gives the same interval. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function resampledMedian(xs: readonly number[], rand: () => number, scratch: Float64Array): number {
  const n = xs.length;
  for (let i = 0; i < n; i++) scratch[i] = xs[Math.floor(rand() * n)]!;
  scratch.sort();
  return n % 2 ? scratch[(n - 1) / 2]! : (scratch[n / 2 - 1]! + scratch[n / 2]!) / 2;
}

/** median(a) / median(b), with a percentile-bootstrap 95% interval. */
export function ratioOfMedians(a: readonly number[], b: readonly number[], reps = 1000): Ratio | null {
  if (a.length === 0 || b.length === 0) return null;
  const ma = quantile(sorted(a), 0.5);
  const mb = quantile(sorted(b), 0.5);
  if (a.length < 6 || b.length < 6) {
    // Too few values to resample: the extremes bound the ratio.
    const sa = sorted(a);
    const sb = sorted(b);
    return { median: ma / mb, ci95: [sa[0]! / sb[sb.length - 1]!, sa[sa.length - 1]! / sb[0]!] };
  }
  const rand = rng(0x5eed);
  const sa = new Float64Array(a.length);
  const sb = new Float64Array(b.length);
  const ratios = new Float64Array(reps);
  for (let r = 0; r < reps; r++) ratios[r] = resampledMedian(a, rand, sa) / resampledMedian(b, rand, sb);
  ratios.sort();
  return { median: ma / mb, ci95: [quantile(Array.from(ratios), 0.025), quantile(Array.from(ratios), 0.975)] };
}
