// The shapes shared by the measurements, the report and the JSON file.

export type MetricId =
  | "startup"
  | "signal-pinned"
  | "signal-unpinned"
  | "exit"
  | "storm"
  | "drain"
  | "idle-vmrss"
  | "idle-rssanon"
  | "idle-rssfile"
  | "idle-cpu"
  | "idle-wakeups"
  | "docker-stop"
  | "docker-vmrss"
  | "docker-rssanon"
  | "size"
  | "logs-short"
  | "logs-long"
  | "signal-flood"
  | "ctl"
  | "ctl-rss";

/** What a subject takes part in (a floor takes part only where it means something). */
export type Family = "startup" | "signal" | "exit" | "reaping" | "idle" | "docker" | "size" | "logs" | "ctl";

export interface Subject {
  id: string;
  label: string;
  /** The executable whose size is reported; null for "no init". */
  bin: string | null;
  /** Put before the child's command line: the init and its options. */
  prefix: string[];
  /** Runs on its own, without a child (the empty Bun program). */
  standalone?: boolean;
  /** What it is, when it is not an init run with a child (metric 8's subjects). */
  note?: string;
  families: ReadonlySet<Family>;
}

export interface MetricResult {
  id: MetricId;
  title: string;
  unit: string;
  better: "lower" | "higher";
  /**
   * The subject the ratios are taken against: tini unless the metric has no tini (metric 8:
   * cat for throughput, the Bun forwarder for latency under the flood).
   */
  baseline?: string;
  /** subject id -> measurements, in `unit` */
  series: Record<string, number[]>;
  /** subject id -> named side figures (lost signals, peak zombies, ...) */
  extra: Record<string, Record<string, number>>;
  notes: string[];
}

export function newMetric(
  id: MetricId,
  title: string,
  unit: string,
  better: "lower" | "higher" = "lower",
  baseline?: string,
): MetricResult {
  return { id, title, unit, better, ...(baseline ? { baseline } : {}), series: {}, extra: {}, notes: [] };
}

export interface Tools {
  spawntime: string;
  peakrss: string;
  siglat: string;
  exitlat: string;
  reapbench: string;
}
