// The output worker: the service output multiplexer's own thread, and its reader.
// pidone's main thread forwards signals and reaps from its event loop, and formatting a
// flood there delays every signal by the time a chunk takes; so the main thread only
// posts what happens (output.ts) and this thread does all reading and writing.
//
// It sleeps in poll(2) over the services' pipes and a wake-up pipe, then does one read(2)
// per ready pipe per round into one reused buffer, where Bun's own pipe reader would hand
// out fresh memory per chunk (page faults, a copy). One read per pipe per round is the
// fairness: a flooding service cannot starve the others. A pipe is left out of the poll
// set while its sink is `blocked` (backpressure: the service then blocks in write(2) once
// its pipe is full). Each round ends with a turn of the event loop, so that the main
// thread's messages and the drain's timers get theirs.
//
// This file is the worker's entry point (scripts/build.ts compiles it as its own entry):
// nothing else may import a value from it, or its top level would run there too.
import { errno, POLLIN, pollFds, readSome, SIG_BLOCK, sigprocmask, sigset } from "../sys/libc.ts";
import { pacedCollection } from "../process/gc.ts";
import { SIG } from "../signals/table.ts";
import { MuxCore, type Drained, type OutputOptions, type Stream } from "./output-core.ts";

/** What the main thread tells the worker. */
export type ToWorker =
  | { t: "init"; opts: OutputOptions; wakeFd: number; shared: SharedArrayBuffer }
  | { t: "attach"; id: number; service: string; stream: "stdout" | "stderr"; fd: number }
  | { t: "event"; bytes: Uint8Array }
  | { t: "drain"; ms: number }
  | { t: "stop" };

/** What the worker answers. */
export type FromWorker = { t: "ready" } | { t: "ended"; id: number } | ({ t: "drained" } & Drained);

/** One read(2) per ready pipe per round, of at most this much. */
const READ_BYTES = 256 * 1024;
/** While drain waits on a timer, poll(2) sleeps at most this long. */
const DRAIN_POLL_MS = 5;

class PollMux extends MuxCore {
  /** The reused read buffer and struct pollfd array. */
  private readBuf: Buffer | null = null;
  private pollSet = new Int32Array(0);
  private polled: Stream[] = [];
  private draining = false;

  constructor(opts: OutputOptions) {
    // Nothing may wait on a timer while this thread sleeps in poll(2): the sinks only say
    // when they want to be flushed again, and pollTimeout() honours it.
    super(opts, true);
  }

  /** The stream ends when a round reads its EOF (or drain gives up on it). */
  protected read(s: Stream): Promise<void> {
    return new Promise<void>((resolve) => (s.finish = resolve));
  }

  protected stopReading(s: Stream): void {
    this.end(s);
  }

  override drain(ms: number): Promise<Drained> {
    this.draining = true;
    return super.drain(ms);
  }

  /** How long poll(2) may sleep (-1: until something happens). */
  private pollTimeout(now: number): number {
    let t = -1;
    for (let i = 0; i < this.sinks.length; i++) {
      const due = this.sinks[i]!.retryIn(now);
      if (due !== null) t = t < 0 ? Math.ceil(due) : Math.min(t, Math.ceil(due));
    }
    if (this.draining) t = t < 0 ? DRAIN_POLL_MS : Math.min(t, DRAIN_POLL_MS);
    return t;
  }

  /**
   * One round. Sleeps in poll(2) until a pipe (or `wakeFd`) is readable or a sink's retry
   * is due (never longer than `maxMs` when that is >= 0), then reads each ready pipe once
   * and flushes.
   */
  step(wakeFd: number, maxMs: number): void {
    const polled = this.polled;
    polled.length = 0;
    for (const s of this.streams) if (s.counting || !s.sink.blocked) polled.push(s);
    const n = polled.length + 1;
    if (this.pollSet.length < n * 2) this.pollSet = new Int32Array(n * 4);
    const set = this.pollSet;
    set[0] = wakeFd;
    set[1] = POLLIN;
    for (let i = 0; i < polled.length; i++) {
      set[2 * i + 2] = polled[i]!.fd;
      set[2 * i + 3] = POLLIN;
    }
    let timeout = this.pollTimeout(performance.now());
    if (maxMs >= 0) timeout = timeout < 0 ? maxMs : Math.min(timeout, maxMs);
    const ready = pollFds(set, n, timeout);
    if (ready > 0) {
      // revents is the upper half of each pollfd's second word.
      if (set[1]! >>> 16) {
        const scratch = (this.readBuf ??= Buffer.allocUnsafe(READ_BYTES));
        while (readSome(wakeFd, scratch.subarray(0, 64)) > 0);
      }
      for (let i = 0; i < polled.length; i++) {
        if (!(set[2 * i + 3]! >>> 16)) continue; // POLLIN, POLLHUP or POLLERR: read says which
        this.readOnce(polled[i]!);
      }
    }
    const now = performance.now();
    for (let i = 0; i < this.sinks.length; i++) {
      const sink = this.sinks[i]!;
      const due = sink.retryIn(now);
      if (due !== null && due <= 0) sink.flush();
    }
  }

  private readOnce(s: Stream): void {
    const buf = (this.readBuf ??= Buffer.allocUnsafe(READ_BYTES));
    const n = readSome(s.fd, buf);
    if (n === -errno.EINTR || n === -errno.EAGAIN) return;
    if (n <= 0) return this.end(s); // EOF, or an error that ends the stream like EOF
    const chunk = buf.subarray(0, n);
    if (s.counting) return this.count(s, chunk);
    this.feed(s, chunk);
    s.sink.flush();
  }
}

// ---------------------------------------------------------------- the thread

declare const self: Worker;

let mux: PollMux | null = null;
let wakeFd = -1;
/** The shared counters (see output.ts): messages posted and handled, then bytes written. */
let counters: Int32Array<ArrayBufferLike> = new Int32Array(2);
let written: Float64Array<ArrayBufferLike> = new Float64Array(1);
let stopped = false;

const reply = (m: FromWorker) => self.postMessage(m);
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
/** This thread's heap is not the main thread's: it collects itself (src/process/gc.ts). */
const worked = pacedCollection();

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.t) {
    case "init":
      // The kernel sends SIGPIPE (EPIPE) and SIGXFSZ (EFBIG) to the thread whose write
      // failed, and pidone catches them to forward: unblocked here, a stdout whose
      // reader is gone would signal every service. Blocked, they stay pending on this
      // thread, which never takes signals (the main thread receives those sent to pidone).
      sigprocmask(SIG_BLOCK, sigset([SIG.PIPE, SIG.XFSZ]));
      mux = new PollMux(m.opts);
      wakeFd = m.wakeFd;
      counters = new Int32Array(m.shared, 0, 2);
      written = new Float64Array(m.shared, 8, 1);
      reply({ t: "ready" });
      void run();
      break;
    case "attach":
      void mux!.attach(m.service, m.stream, m.fd).then(() => reply({ t: "ended", id: m.id }));
      break;
    case "event":
      mux!.eventBytes(m.bytes);
      break;
    case "drain":
      void mux!.drain(m.ms).then((d) => {
        written[0] = mux!.written;
        reply({ t: "drained", ...d });
      });
      break;
    case "stop":
      stopped = true;
      break;
  }
  Atomics.add(counters, 1, 1);
};

async function run(): Promise<void> {
  while (!stopped) {
    // Messages posted but not handled yet: do not sleep before the event loop delivers them.
    const behind = Atomics.load(counters, 0) !== Atomics.load(counters, 1);
    mux!.step(wakeFd, behind ? 0 : -1);
    written[0] = mux!.written;
    worked();
    await nextTurn();
  }
}
