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
  | "size";

/** What a subject takes part in (a floor takes part only where it means something). */
export type Family = "startup" | "signal" | "exit" | "reaping" | "idle" | "docker" | "size";

export interface Subject {
  id: string;
  label: string;
  /** The executable whose size is reported; null for "no init". */
  bin: string | null;
  /** Put before the child's command line: the init and its options. */
  prefix: string[];
  /** Runs on its own, without a child (the empty Bun program). */
  standalone?: boolean;
  families: ReadonlySet<Family>;
}

export interface MetricResult {
  id: MetricId;
  title: string;
  unit: string;
  better: "lower" | "higher";
  /** subject id -> measurements, in `unit` */
  series: Record<string, number[]>;
  /** subject id -> named side figures (lost signals, peak zombies, ...) */
  extra: Record<string, Record<string, number>>;
  notes: string[];
}

export function newMetric(id: MetricId, title: string, unit: string, better: "lower" | "higher" = "lower"): MetricResult {
  return { id, title, unit, better, series: {}, extra: {}, notes: [] };
}

export interface Tools {
  spawntime: string;
  siglat: string;
  exitlat: string;
  reapbench: string;
}
