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
// Each thread's JavaScript heap is its own: Bun.gc collects only the calling thread's.
// The output worker (src/services/output-worker.ts) handles a message or two per service
// start and would otherwise keep them all, so it paces its own collections too. This
// module imports nothing, so that the worker's bundle stays small.

/** Shortest time between two collections. */
const INTERVAL_MS = 1000;
/** And at least this many times the last collection's own duration (its share of the time). */
const COST_FACTOR = 100;

/**
 * A pacer for the calling thread: call the function it returns once per unit of work;
 * it collects when one is due, and tells `onCollect` how long the collection took.
 */
export function pacedCollection(onCollect?: (ms: number) => void): () => void {
  let due = performance.now() + INTERVAL_MS;
  return () => {
    const now = performance.now();
    if (now < due) return;
    Bun.gc(true);
    const end = performance.now();
    onCollect?.(end - now);
    due = end + Math.max(INTERVAL_MS, (end - now) * COST_FACTOR);
  };
}
