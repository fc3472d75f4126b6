// One of pidone's output descriptors (fd 1 or 2) as seen by the multiplexer: formatted
// lines are batched into large buffers and written without ever blocking the event loop.
//
// fd 1/2 are shared with our parent (and maybe others), so O_NONBLOCK is off limits.
// Instead, by what the descriptor is:
//  - a regular file or a character device that is not a terminal (/dev/null): a write
//    never waits for a reader, so whole batches go out in one write(2) each;
//  - a pipe (what docker and containerd give a container): pwritev2(RWF_NOWAIT), a write
//    that takes what fits instead of waiting, of as many whole lines as the pipe has room
//    for (its capacity less what is unread in it, less two pages of slack for partly
//    filled buffers), so a line is not left half-written in a full pipe;
//  - a socket or terminal, or a pipe on a kernel that refuses RWF_NOWAIT for pipes (before
//    Linux 6.x): poll(POLLOUT, 0), then at most PIPE_BUF bytes, which a pipe reporting
//    POLLOUT takes at once (it has a free page), cut after the last whole line that fits.
//    Two system calls per PIPE_BUF instead of one per batch: the fallback.
// Bun offers no "writable" callback for a descriptor we may not make non-blocking, so
// when nothing can be written the sink retries: on the next turns of the event loop first
// (a reader like cat drains a pipe in microseconds), then on a timer from 1 ms, doubling
// up to RETRY_MAX_MS while the reader makes no progress (a stuck reader costs a few
// wake-ups a second, not a busy loop). Once enough is queued the sink reports itself
// `blocked`; the multiplexer then stops reading the services' pipes, so the services
// block in their own writes (backpressure) while our event loop keeps turning.
//
// In the output worker (output-worker.ts) nothing may wait on timers while the thread
// sleeps in poll(2): with `external` retries the sink only records when it wants to be
// flushed again (`retryIn`), and the worker's poll timeout honours it.
import { fstatSync } from "node:fs";
import { errno, getauxval, isatty, pipeFill, pollWritable, takeBackWriteSignal, withWriteSignalsBlocked, writeNoWait, writeSome } from "../sys/libc.ts";

/**
 * Formatted lines are batched in buffers of this size (a line longer than that gets its own).
 * Room for the worst case of one JSON line of MAX_LINE bytes (every byte a \u00XX escape,
 * plus its base64 copy): smaller, each such line would get a buffer of its own, and fresh
 * memory costs a page fault per page.
 */
const BUFFER_BYTES = 512 * 1024;
/** Above this much queued output the services feeding this sink are paused... */
const HIGH_WATER = 1024 * 1024;
/** ...and below this they are read again. */
const LOW_WATER = 256 * 1024;
const PIPE_BUF = 4096;
const ENOSYS = 38;
/** Retries on the next turn of the event loop before falling back to timers. */
const IMMEDIATE_RETRIES = 2;
const RETRY_MAX_MS = 50;

export interface Dropped {
  lines: number;
  bytes: number;
}

type Kind = "direct" | "pipe" | "polled";
function kindOf(fd: number): Kind {
  try {
    const st = fstatSync(fd);
    if (st.isFile()) return "direct";
    if (st.isCharacterDevice()) return isatty(fd) ? "polled" : "direct";
    if (st.isFIFO()) return "pipe";
  } catch {
    // unknown: assume a reader can fall behind
  }
  return "polled";
}

const AT_PAGESZ = 6;
const PAGE = getauxval(AT_PAGESZ) || 4096;

/** Same open file (e.g. 2>&1, or a terminal): the streams must share one ordered queue. */
export function sameFile(a: number, b: number): boolean {
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** Length of the whole lines at the start of buf[from, from+limit); 0 if the first line is longer. */
function wholeLines(buf: Buffer, from: number, limit: number): number {
  const nl = buf.lastIndexOf(10, from + limit - 1);
  return nl >= from ? nl + 1 - from : 0;
}

function countLines(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(10, start); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

export class OutputSink {
  /** Buffer being filled by formatters, up to `len`. */
  buf: Buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  len = 0;
  /** Filled buffers waiting for the descriptor, oldest first; `headAt` bytes of the first are out. */
  private readonly queue: { buf: Buffer; len: number }[] = [];
  private headAt = 0;
  private queued = 0;
  private readonly spare: Buffer[] = [];
  private kind: Kind;
  /** Retries in a row that wrote nothing. */
  private retries = 0;
  private retry: { cancel(): void } | null = null;
  private waiters: (() => void)[] = [];
  /** The descriptor failed for good (no reader, closed): output is counted and dropped. */
  private gone = false;
  /** After drain's deadline: drop instead of queueing. */
  private discarding = false;
  readonly dropped: Dropped = { lines: 0, bytes: 0 };
  written = 0;

  /** When an external retry is due (performance.now() time), or null. */
  private dueAt: number | null = null;

  /** `polled`: never RWF_NOWAIT, as on kernels before 6.x (for tests). `external`: see above. */
  constructor(
    readonly fd: number,
    polled = false,
    private readonly external = false,
  ) {
    this.kind = kindOf(fd);
    if (polled && this.kind === "pipe") this.kind = "polled";
  }

  /** Ensures `n` free bytes after `len` in `buf`. */
  room(n: number): void {
    if (this.buf.length - this.len >= n) return;
    this.seal();
    if (this.buf.length < n) this.buf = Buffer.allocUnsafe(n);
  }

  /** Bytes formatted but not yet written. */
  get pending(): number {
    return this.queued - this.headAt + this.len;
  }

  /** Too much is queued: stop feeding this sink until `writable()` resolves. */
  get blocked(): boolean {
    return this.pending > HIGH_WATER;
  }

  /** Resolves once the queue is back under the low-water mark (or is being dropped). */
  writable(): Promise<void> {
    if (this.pending <= LOW_WATER) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once everything queued is written or dropped. */
  async empty(): Promise<void> {
    while (this.pending > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Writes what can be written now without blocking; schedules a retry for the rest. */
  flush(): void {
    // The worker's thread keeps SIGPIPE and SIGXFSZ blocked (output-worker.ts); on the
    // main thread they are caught, to be forwarded: see withWriteSignalsBlocked.
    if (this.external) takeBackWriteSignal(this.flushNow());
    else withWriteSignalsBlocked(() => this.flushNow());
  }

  /** flush(): -errno when a write failed for good, else 0. */
  private flushNow(): number {
    let failed = 0;
    this.dueAt = null;
    if (this.gone || this.discarding) this.dropAll();
    const before = this.written;
    for (;;) {
      // The buffer being filled joins the queue only once it is next to go: while the
      // output is stuck, small chunks keep filling it instead of each taking a buffer.
      if (this.queue.length === 0) {
        if (this.len === 0) break;
        this.seal();
      }
      const head = this.queue[0]!;
      const n = this.writeSome(head.buf, this.headAt, head.len);
      if (n === 0) break; // would block: retry later
      if (n < 0) {
        this.gone = true;
        failed = n;
        this.dropAll();
        break;
      }
      this.written += n;
      this.headAt += n;
      if (this.headAt === head.len) this.release();
    }
    if (this.written > before) this.retries = 0;
    if (this.pending > 0) this.scheduleRetry();
    if (this.pending <= LOW_WATER) this.wake();
    return failed;
  }

  /** External retries: ms until flush() wants to run again (0: now), or null when nothing waits. */
  retryIn(now: number): number | null {
    return this.dueAt === null ? null : Math.max(0, this.dueAt - now);
  }

  /** From now on nothing more is written: what is queued, and whatever comes later, is dropped. */
  discard(): void {
    this.discarding = true;
    this.retry?.cancel();
    this.retry = null;
    this.dueAt = null;
    this.flush();
  }

  /** Writes some of buf[from, to) (whole lines): the count, 0 if that would block, -errno (or -1) if the descriptor is gone. */
  private writeSome(buf: Buffer, from: number, to: number): number {
    let len = to - from;
    if (this.kind === "pipe") {
      const n = this.writePipe(buf, from, len);
      if (n !== null) return n;
    }
    if (this.kind !== "direct") {
      const state = pollWritable(this.fd);
      if (state === "full") return 0;
      if (state === "gone") return -1;
      if (len > PIPE_BUF) len = wholeLines(buf, from, PIPE_BUF) || PIPE_BUF;
    }
    for (;;) {
      const n = writeSome(this.fd, buf, from, len);
      if (n >= 0) return n;
      // EAGAIN: someone else made the shared description non-blocking; treat as full.
      if (n === -errno.EAGAIN) return 0;
      if (n !== -errno.EINTR) return n;
    }
  }

  /** As writeSome, into a pipe with RWF_NOWAIT; null: do it the polled way instead. */
  private writePipe(buf: Buffer, from: number, len: number): number | null {
    let fill: { capacity: number; unread: number };
    try {
      fill = pipeFill(this.fd);
    } catch {
      this.kind = "polled"; // cannot ask how full it is (a seccomp filter?): poll instead
      return null;
    }
    const most = fill.capacity - 2 * PAGE;
    const room = most - fill.unread;
    if (room < PIPE_BUF) return null; // nearly full: PIPE_BUF at a time, atomically
    if (len > room) {
      const whole = wholeLines(buf, from, room);
      if (whole > 0) len = whole;
      else {
        // The first line does not fit now. One that would fit an emptier pipe waits for
        // it; a longer one goes in pieces (it could never be written whole).
        const lineLen = buf.indexOf(10, from) + 1 - from; // queued output always ends in "\n"
        if (lineLen <= most) return 0;
        len = room;
      }
    }
    for (;;) {
      const n = writeNoWait(this.fd, buf, from, len);
      if (n >= 0) return n;
      if (n === -errno.EAGAIN) return 0;
      if (n === -errno.EINTR) continue;
      if (n === -errno.EOPNOTSUPP || n === -errno.EINVAL || n === -ENOSYS || n === -errno.EPERM) {
        this.kind = "polled"; // an older kernel or a seccomp filter: from now on, poll
        return null;
      }
      return n;
    }
  }

  private seal(): void {
    if (this.len === 0) return;
    this.queue.push({ buf: this.buf, len: this.len });
    this.queued += this.len;
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(BUFFER_BYTES);
    this.len = 0;
  }

  private release(): void {
    const head = this.queue.shift()!;
    this.queued -= head.len;
    this.headAt = 0;
    // Keep one spare: enough to avoid allocating in steady state, little memory when idle.
    if (head.buf.length === BUFFER_BYTES && this.spare.length < 1) this.spare.push(head.buf);
  }

  private dropAll(): void {
    this.seal();
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      this.dropped.bytes += head.len - this.headAt;
      this.dropped.lines += countLines(head.buf, this.headAt, head.len);
      this.release();
    }
  }

  private scheduleRetry(): void {
    if (this.external) {
      const n = this.retries++;
      const delay = n < IMMEDIATE_RETRIES ? 0 : Math.min(2 ** (n - IMMEDIATE_RETRIES), RETRY_MAX_MS);
      this.dueAt = performance.now() + delay;
      return;
    }
    if (this.retry) return;
    const run = () => {
      this.retry = null;
      this.flush();
    };
    const n = this.retries++;
    if (n < IMMEDIATE_RETRIES) {
      const h = setImmediate(run);
      this.retry = { cancel: () => clearImmediate(h) };
    } else {
      const h = setTimeout(run, Math.min(2 ** (n - IMMEDIATE_RETRIES), RETRY_MAX_MS));
      this.retry = { cancel: () => clearTimeout(h) };
    }
  }

  private wake(): void {
    const w = this.waiters;
    if (w.length === 0) return;
    this.waiters = [];
    for (const f of w) f();
  }
}
