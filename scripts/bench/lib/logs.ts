// 8. Log throughput — a hook for when services exist (issue 6); `--logs` is refused until then.
//
// TODO(issue 6): once pidone supervises several services with prefixed and JSON output:
//  - two services each writing 1,000,000 short lines, and one writing 200 MB in 64 KiB
//    lines, through pidone's prefixed output and its JSON output, to /dev/null;
//  - report MB/s, lines/s and pidone's CPU time per MB (schedstat over its threads, as
//    idle.ts reads it), against `cat` of the same bytes to /dev/null as the floor;
//  - and measureSignals() run while the flood goes on, for pidone and for the minimal
//    forwarder under the same flood (budget: ≤ 2× the forwarder's latency).
import type { MetricResult, Subject } from "./types.ts";

export const LOGS_AVAILABLE = false;

export async function measureLogThroughput(_subjects: readonly Subject[]): Promise<MetricResult[]> {
  throw new Error("log throughput needs services (issue 6): not implemented yet");
}
