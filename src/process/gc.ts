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
//
// Each thread's JavaScript heap is its own: Bun.gc collects only the calling thread's.
// The output worker (src/services/output-worker.ts) handles a message or two per service
// start and would otherwise keep them all, so it paces its own collections too. This
// module imports nothing of pidone's, so that the worker's bundle stays small.
import { edenGC } from "bun:jsc";

/** Shortest time between two full collections. */
const INTERVAL_MS = 1000;
/** Shortest time between two young collections. */
const YOUNG_INTERVAL_MS = 20;
/** And at least this many times the last collection's own duration (its share of the time). */
const COST_FACTOR = 100;

/**
 * A pacer for the calling thread: call the function it returns once per unit of work;
 * it collects when one is due, and tells `onCollect` how long a full collection took.
 */
export function pacedCollection(onCollect?: (ms: number) => void): () => void {
  let due = performance.now() + INTERVAL_MS;
  let youngDue = performance.now() + YOUNG_INTERVAL_MS;
  return () => {
    const now = performance.now();
    if (now >= due) {
      Bun.gc(true);
      const end = performance.now();
      onCollect?.(end - now);
      due = end + Math.max(INTERVAL_MS, (end - now) * COST_FACTOR);
      youngDue = end + YOUNG_INTERVAL_MS;
    } else if (now >= youngDue) {
      edenGC();
      const end = performance.now();
      youngDue = end + Math.max(YOUNG_INTERVAL_MS, (end - now) * COST_FACTOR);
    }
  };
}
