// Collections driven by pidone's own work. The single file's runtime has no
// timer-driven collection (runtime_settings in src/native/stub.c: an idle PID 1 must
// never wake), so only allocation triggers the collector, and those young-generation
// collections leave behind memory that only a full one returns: a busy pidone (a service
// crash-looping, a stream of orphans) would grow for as long as it is busy. Instead, each
// unit of work (a wake to reap) may run a full collection itself, at most once per
// interval measured on the monotonic clock and never more than a small share of the
// time: no timer is armed, so an idle pidone still never wakes, and no thread is needed
// (the collection runs on the calling thread).
//
// Between two full collections, young ones: each wake's intake (the signal stream's read:
// promises, a read request, a chunk) leaves a few hundred bytes of garbage, and the
// runtime would let megabytes of it pile up before collecting on its own. A young
// collection finds only what is new, so it costs little at any rate of wakes.
import { edenGC } from "bun:jsc";
import { LEVEL, log } from "../log/logger.ts";

/** Shortest time between two collections. */
const INTERVAL_MS = 1000;
/** Shortest time between two young collections. */
const YOUNG_INTERVAL_MS = 20;
/** And at least this many times the last collection's own duration (its share of the time). */
const COST_FACTOR = 100;

let due = performance.now() + INTERVAL_MS;
let youngDue = performance.now() + YOUNG_INTERVAL_MS;

/** Called once per unit of work; collects when one is due. */
export function worked(): void {
  const now = performance.now();
  if (now >= due) {
    Bun.gc(true);
    const end = performance.now();
    if (log.level >= LEVEL.trace) log.trace(`Full collection in ${(end - now).toFixed(1)} ms`);
    due = end + Math.max(INTERVAL_MS, (end - now) * COST_FACTOR);
    youngDue = end + YOUNG_INTERVAL_MS;
  } else if (now >= youngDue) {
    edenGC();
    const end = performance.now();
    youngDue = end + Math.max(YOUNG_INTERVAL_MS, (end - now) * COST_FACTOR);
  }
}
