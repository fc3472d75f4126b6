// The service output multiplexer: reads every service's stdout/stderr pipe and writes
// each line, whole, to pidone's stdout/stderr as `NAME | line` or as one JSON object.
//
// Where the work runs: in a Worker (output-worker.ts). pidone's main thread forwards
// signals and reaps from its event loop; formatting a flood there (0.1-0.5 ms per 256 KiB
// chunk) delayed every signal by that much (measured: 11-17x the forwarding latency of a
// minimal forwarder under the same flood). The main thread only posts what happens
// (attach a pipe, an event line, drain) and the worker does all reading and writing.
//
// Reading, in the worker: poll(2) over the pipes, then one read(2) of up to 256 KiB per
// ready pipe per round into one reused buffer. Bun's own pipe reader (Bun.file(fd).stream())
// allocates fresh memory per chunk (page faults, a copy): it alone ran at 0.3-0.45x of cat,
// under the budget, where read(2) into a reused buffer runs at 2-4x Bun's speed (measured).
// One read per pipe per round is the fairness: a flooding service cannot starve the others.
// A pipe is left out of the poll set while its sink is `blocked` (backpressure: the service
// blocks in write(2) once its pipe is full).
//
// Without a worker (it failed to start: a build without its entry point), the same core
// runs on the main thread reading with Bun.file(fd).stream(), one chunk per turn of the
// event loop, as before.
//
// Writing: see output-sink.ts (batched, never blocking on fd 1/2).
import { O_CLOEXEC, O_NONBLOCK, POLLIN, close, errno, pipe, pollFds, readSome, setPipeSize, writeSome } from "../sys/libc.ts";
import { log } from "../log/logger.ts";
import {
  JsonFormatter,
  MAX_LINE,
  PrefixFormatter,
  pieceEnd,
  prefixBytes,
  type LineFormatter,
} from "./output-format.ts";
import { OutputSink, sameFile } from "./output-sink.ts";

export type LogFormat = "prefix" | "json" | "raw";

export interface OutputOptions {
  format: "prefix" | "json"; // raw never reaches us: services inherit pidone's fds then
  /** Every service name, to pad prefixes to one width. */
  names: readonly string[];
  /** Prefix colours (the caller decides: a terminal and no NO_COLOR). */
  color: boolean;
  stdoutFd?: number; // default 1
  stderrFd?: number; // default 2
  /** Where pidone's own events go in prefix mode (JSON events always go to stdout). Default stdout, as tini's info lines. */
  eventStream?: "stdout" | "stderr";
  /** Write to pipes the way kernels before 6.x allow (poll, then PIPE_BUF at a time); for tests. */
  polledWrites?: boolean;
  /** Where the work runs: "worker" (default; falls back to "main" when no worker can start) or "main". */
  thread?: "worker" | "main";
}

export type EventFields = Record<string, string | number | boolean | null>;

/** The name in the prefix column of pidone's own events. */
export const EVENT_NAME = "pidone";

/**
 * Capacity asked for each service pipe. Larger than the default 64 KiB because a flooding
 * service then wakes us (and we it) less often: measured 25 % less CPU per MB at 256 KiB.
 */
const PIPE_BYTES = 256 * 1024;

/**
 * After drain's deadline the pipes are still read (not written) to count what is dropped:
 * until EOF, or until no data came for COUNT_QUIET_MS, and never longer than COUNT_MAX_MS.
 */
const COUNT_QUIET_MS = 25;
const COUNT_MAX_MS = 250;
/** Carry: one line's worth plus room to find a character boundary past it. */
const CARRY_BYTES = MAX_LINE + 4;

interface Stream {
  fd: number;
  service: string;
  format: LineFormatter;
  json: JsonFormatter | null;
  sink: OutputSink;
  /** The start of a line whose end has not been read yet. */
  carry: Buffer | null;
  carryLen: number;
  /** Set once reading starts; cancelled after drain's deadline. */
  reader: { cancel(): Promise<void> } | null;
  /** Poll mode: reached EOF (or was cancelled); resolves `ended`. */
  finish: (() => void) | null;
  /** After drain's deadline: count lines instead of writing them. */
  counting: boolean;
  /** While counting: bytes of a line were seen but not its newline yet. */
  openLine: boolean;
  ended: Promise<void>;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One read(2) per ready pipe per round, of at most this much. */
const READ_BYTES = 256 * 1024;
/** While drain waits on a timer, the worker's poll(2) sleeps at most this long. */
const DRAIN_POLL_MS = 5;

/** One of pidone's event lines, as bytes. */
export function formatEvent(
  opts: Pick<OutputOptions, "format" | "color">,
  width: number,
  service: string | null,
  message: string,
  fields?: EventFields,
): Buffer {
  let text: string;
  if (opts.format === "json") {
    const obj: Record<string, unknown> = {
      ts: new Date().toISOString(),
      service: service ?? EVENT_NAME,
      event: fields?.event ?? message,
      message,
    };
    for (const [k, v] of Object.entries(fields ?? {})) if (!(k in obj)) obj[k] = v;
    text = `${JSON.stringify(obj)}\n`;
  } else {
    const label = `${EVENT_NAME.padEnd(width)} |`;
    const body = `${service === null ? "" : `${service}: `}${message}`.replace(/[\r\n]+/g, " ");
    text = `${opts.color ? `\x1b[1m${label}\x1b[0m` : label} ${body}\n`;
  }
  return Buffer.from(text);
}

export const columnWidth = (names: readonly string[]) => Math.max(EVENT_NAME.length, ...names.map((n) => n.length));

/**
 * The multiplexer itself, on whichever thread runs it: "stream" reads with Bun's pipe
 * reader from the event loop; "poll" is driven by step() (the worker's loop).
 */
export class MuxCore {
  private readonly stdout: OutputSink;
  private readonly stderr: OutputSink;
  private readonly events: OutputSink;
  /** stdout and stderr, once each (one sink when they are the same file). */
  private readonly sinks: OutputSink[];
  private readonly width: number;
  private readonly colors = new Map<string, number>();
  private readonly streams = new Set<Stream>();
  private readonly countedDrop = { lines: 0, bytes: 0 };
  private lastCounted = 0;
  private closed = false;

  /** Poll mode: the reused read buffer and struct pollfd array. */
  private readBuf: Buffer | null = null;
  private pollSet = new Int32Array(0);
  private polled: Stream[] = [];
  private draining = false;

  constructor(
    private readonly opts: OutputOptions,
    private readonly mode: "stream" | "poll" = "stream",
  ) {
    const outFd = opts.stdoutFd ?? 1;
    const errFd = opts.stderrFd ?? 2;
    const external = mode === "poll";
    this.stdout = new OutputSink(outFd, opts.polledWrites, external);
    // One queue when both are the same file (2>&1, a terminal), or lines could interleave mid-line.
    this.stderr = sameFile(outFd, errFd) ? this.stdout : new OutputSink(errFd, opts.polledWrites, external);
    this.events = opts.format === "json" || opts.eventStream !== "stderr" ? this.stdout : this.stderr;
    this.sinks = this.stderr === this.stdout ? [this.stdout] : [this.stdout, this.stderr];
    this.width = columnWidth(opts.names);
    opts.names.forEach((n, i) => this.colors.set(n, i));
  }

  /** Read a service's stream from `fd` (a pipe read end, now owned by the mux; closed at EOF). */
  attach(service: string, stream: "stdout" | "stderr", fd: number): Promise<void> {
    if (this.closed) {
      close(fd);
      return Promise.resolve();
    }
    try {
      setPipeSize(fd, PIPE_BYTES);
    } catch {
      // EPERM past the per-user pipe quota, or not a pipe: the default size works too
    }
    const json = this.opts.format === "json" ? new JsonFormatter(service, stream) : null;
    const color = this.opts.color ? (this.colors.get(service) ?? this.colors.size) : null;
    const s: Stream = {
      fd,
      service,
      format: json ?? new PrefixFormatter(prefixBytes(service, this.width, color)),
      json,
      // JSON keeps everything on stdout: the "stream" field says where a line came from.
      sink: stream === "stdout" || json ? this.stdout : this.stderr,
      carry: null,
      carryLen: 0,
      reader: null,
      finish: null,
      counting: false,
      openLine: false,
      ended: Promise.resolve(),
    };
    this.streams.add(s);
    s.ended = this.mode === "poll" ? new Promise<void>((resolve) => (s.finish = resolve)) : this.pump(s);
    return s.ended;
  }

  /** pidone's own event line (see OutputMux.event), already formatted. */
  eventBytes(bytes: Uint8Array): void {
    if (this.closed) return;
    const sink = this.events;
    sink.room(bytes.length);
    sink.buf.set(bytes, sink.len);
    sink.len += bytes.length;
    sink.flush();
  }

  /**
   * Resolves once every stream of `service` attached so far has reached EOF (its last line
   * written or queued). A supervisor can wait on it (briefly: a daemon child may hold the
   * pipe open) before reporting that the service exited, so the report follows its output.
   */
  async outputEnded(service: string): Promise<void> {
    await Promise.all([...this.streams].filter((s) => s.service === service).map((s) => s.ended));
  }

  /** At exit: keep copying what services already wrote for up to `ms`, then stop; report what was dropped. */
  async drain(ms: number): Promise<{ droppedLines: number; droppedBytes: number }> {
    this.draining = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    const finished = (async () => {
      while (this.streams.size > 0) await Promise.all([...this.streams].map((s) => s.ended));
      await Promise.all([this.stdout.empty(), this.stderr.empty()]);
    })();
    await Promise.race([finished, deadline]);
    clearTimeout(timer);
    this.closed = true;

    // Past the deadline nothing more is written. Count what the services had written and
    // we had not: queued output, partial lines held back, and what is still in the pipes
    // (read for a short while longer, as long as writers are still producing it).
    this.stdout.discard();
    this.stderr.discard();
    if (this.streams.size > 0) {
      for (const s of this.streams) this.startCounting(s);
      const capAt = performance.now() + COUNT_MAX_MS;
      const allEnded = Promise.all([...this.streams].map((s) => s.ended));
      while (this.streams.size > 0 && performance.now() < capAt) {
        await Promise.race([allEnded, sleep(COUNT_QUIET_MS)]);
        if (performance.now() - this.lastCounted >= COUNT_QUIET_MS) break;
      }
      for (const s of this.streams) {
        if (s.finish) this.end(s);
        else void s.reader?.cancel().catch(() => {});
      }
      await Promise.all([...this.streams].map((s) => s.ended));
    }
    const dropped = {
      droppedLines: this.stdout.dropped.lines + this.countedDrop.lines,
      droppedBytes: this.stdout.dropped.bytes + this.countedDrop.bytes,
    };
    if (this.stderr !== this.stdout) {
      dropped.droppedLines += this.stderr.dropped.lines;
      dropped.droppedBytes += this.stderr.dropped.bytes;
    }
    return dropped;
  }

  /** Bytes written to pidone's stdout and stderr so far (for benchmarks and tests). */
  get written(): number {
    return this.stdout.written + (this.stderr !== this.stdout ? this.stderr.written : 0);
  }

  private async pump(s: Stream): Promise<void> {
    try {
      const reader = Bun.file(s.fd).stream().getReader();
      s.reader = reader;
      for (;;) {
        if (s.sink.blocked && !s.counting) await s.sink.writable();
        const { value, done } = await reader.read();
        if (done) break;
        if (s.counting) {
          this.count(s, value);
          continue;
        }
        this.feed(s, value);
        s.sink.flush();
        // One chunk per turn of the event loop. Without this, a flood keeps timers and
        // signal handlers waiting for hundreds of ms: Bun resolves read() at once while it
        // holds data (measured). setImmediate, not setTimeout(0), which costs ~1 ms each.
        await nextTurn();
      }
    } catch {
      // A read error ends the stream like EOF; cancel() after drain's deadline lands here too.
    } finally {
      // Bun reads its own dup of the fd; ours is closed here, once.
      this.end(s);
    }
  }

  /** EOF (or given up): the last line without newline goes out; the pipe is closed. */
  private end(s: Stream): void {
    if (!this.streams.has(s)) return;
    if (s.counting) {
      if (s.openLine) this.countedDrop.lines++; // a last line without newline
    } else if (s.carryLen > 0) {
      this.pieces(s, s.carry!, 0, s.carryLen, true); // a last line without newline
      s.sink.flush();
    }
    s.carryLen = 0;
    s.carry = null;
    this.streams.delete(s);
    try {
      close(s.fd);
    } catch {
      // already invalid: nothing to release
    }
    s.finish?.();
  }

  /** Poll mode: how long the worker may sleep in poll(2) (-1: until something happens). */
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
   * Poll mode: one round. Sleeps in poll(2) until a pipe (or `wakeFd`) is readable or a
   * sink's retry is due (never longer than `maxMs` when that is >= 0), then reads each
   * ready pipe once and flushes. Returns true when `wakeFd` was readable (drained here).
   */
  step(wakeFd: number, maxMs: number): boolean {
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
    let woken = false;
    if (ready > 0) {
      if (set[1]! >>> 16) {
        woken = true;
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
    return woken;
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

  /** Formats every complete line of `chunk`; keeps an unfinished last line in the carry (a copy: `chunk` may be reused). */
  private feed(s: Stream, chunk: Uint8Array): void {
    const src = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = src.length;
    s.json?.stamp(Date.now());
    let pos = 0;
    if (s.carryLen > 0) {
      // First finish the line an earlier chunk began.
      const nl = src.indexOf(10);
      this.extendCarry(s, src, 0, nl < 0 ? n : nl);
      if (nl < 0) return;
      this.pieces(s, s.carry!, 0, s.carryLen, true);
      s.carryLen = 0;
      pos = nl + 1;
    }
    while (pos < n) {
      // Whole lines, in blocks of at most MAX_LINE + 1 bytes so that none needs cutting.
      const last = src.lastIndexOf(10, Math.min(n, pos + MAX_LINE + 1) - 1);
      if (last >= pos) {
        s.format.lines(s.sink, src, pos, last + 1);
        pos = last + 1;
        continue;
      }
      // No newline within reach: a line longer than MAX_LINE, or the unfinished end of the chunk.
      const nl = src.indexOf(10, pos);
      if (nl >= 0) {
        this.pieces(s, src, pos, nl, true);
        pos = nl + 1;
      } else {
        this.extendCarry(s, src, pos, n);
        pos = n;
      }
    }
  }

  /** Appends src[start, end) to the carry, emitting 64 KiB pieces whenever it overflows. */
  private extendCarry(s: Stream, src: Buffer, start: number, end: number): void {
    const carry = (s.carry ??= Buffer.allocUnsafe(CARRY_BYTES));
    while (start < end) {
      const take = Math.min(end - start, CARRY_BYTES - s.carryLen);
      src.copy(carry, s.carryLen, start, start + take);
      s.carryLen += take;
      start += take;
      if (s.carryLen === CARRY_BYTES) {
        const rest = this.pieces(s, carry, 0, s.carryLen, false);
        carry.copy(carry, 0, rest, s.carryLen);
        s.carryLen -= rest;
      }
    }
  }

  /**
   * Emits buf[start, end) as one line, cut into pieces of at most MAX_LINE bytes. With
   * `final` false the last piece (at most MAX_LINE) is kept back: returns where it starts.
   */
  private pieces(s: Stream, buf: Buffer, start: number, end: number, final: boolean): number {
    while (end - start > MAX_LINE) {
      const cut = pieceEnd(buf, start);
      s.format.line(s.sink, buf, start, cut, true);
      start = cut;
    }
    if (final) s.format.line(s.sink, buf, start, end, false);
    return final ? end : start;
  }

  /** Past drain's deadline: what is read is only counted as dropped. */
  private startCounting(s: Stream): void {
    this.lastCounted = performance.now();
    s.counting = true;
    s.openLine = s.carryLen > 0;
    this.countedDrop.bytes += s.carryLen;
    s.carryLen = 0;
  }

  private count(s: Stream, chunk: Uint8Array): void {
    this.lastCounted = performance.now();
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) this.countedDrop.lines++;
    this.countedDrop.bytes += chunk.length;
    if (chunk.length > 0) s.openLine = chunk[chunk.length - 1] !== 10;
  }
}

// ---------------------------------------------------------------- the main thread's side

/** What the main thread tells the worker. */
export type ToWorker =
  | { t: "init"; opts: OutputOptions; wakeFd: number; shared: SharedArrayBuffer }
  | { t: "attach"; id: number; service: string; stream: "stdout" | "stderr"; fd: number }
  | { t: "event"; bytes: Uint8Array }
  | { t: "drain"; ms: number }
  | { t: "stop" };

export interface Drained {
  droppedLines: number;
  droppedBytes: number;
}

/** What the worker answers. */
export type FromWorker = { t: "ready" } | { t: "ended"; id: number } | ({ t: "drained" } & Drained);

/** The shared counters: messages posted (main) and handled (worker), then bytes written. */
export const SHARED_BYTES = 16;
const WAKE = new Uint8Array([1]);
/** How long past its deadline drain() waits for the worker's answer. */
const DRAIN_REPLY_SLACK_MS = 1000;

// In the compiled executable the worker is its own entry point of `bun build --compile`
// (scripts/build.ts), stored beside main.ts in the executable's file system; from source
// it is this directory's file. Without that entry the worker fails to load, and the
// multiplexer runs on the main thread instead.
const WORKER_ENTRY = Bun.main.startsWith("/$bunfs/")
  ? "/$bunfs/root/services/output-worker.ts"
  : new URL("./output-worker.ts", import.meta.url).href;

/**
 * The multiplexer as pidone's main thread uses it: everything is posted to the output
 * worker, which owns the pipes from attach() on. See the top of this file.
 */
export class OutputMux {
  private readonly width: number;
  private local: MuxCore | null = null;
  private worker: Worker | null = null;
  private wake: [number, number] | null = null;
  private readonly shared = new SharedArrayBuffer(SHARED_BYTES);
  private readonly counters = new Int32Array(this.shared, 0, 2);
  private readonly writtenBytes = new Float64Array(this.shared, 8, 1);
  /** Until the worker says it runs: every message, to replay on the main thread should it fail. */
  private backlog: ToWorker[] | null = [];
  private readonly ends = new Map<number, { service: string; done: Promise<void>; resolve(): void }>();
  private nextId = 0;
  private drainedReply: ((d: Drained) => void) | null = null;
  private closed = false;

  constructor(private readonly opts: OutputOptions) {
    this.width = columnWidth(opts.names);
    if (opts.thread === "main") {
      this.runLocally();
      return;
    }
    try {
      this.wake = pipe(O_CLOEXEC | O_NONBLOCK);
      // smol: the worker's heap is a few hundred KiB of buffers and the sinks' queues.
      const worker = new Worker(WORKER_ENTRY, { smol: true });
      this.worker = worker;
      worker.addEventListener("message", (e: MessageEvent<FromWorker>) => this.onWorker(e.data));
      worker.addEventListener("error", (e) => this.workerFailed(e));
      this.post({ t: "init", opts, wakeFd: this.wake[0], shared: this.shared });
    } catch {
      this.workerFailed();
    }
  }

  /** Read a service's stream from `fd` (a pipe read end, now owned by the mux; closed at EOF). */
  attach(service: string, stream: "stdout" | "stderr", fd: number): void {
    if (this.closed) {
      close(fd);
      return;
    }
    const id = this.nextId++;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.ends.set(id, { service, done, resolve });
    this.post({ t: "attach", id, service, stream, fd });
  }

  /**
   * pidone's own event. `message` is for people, `fields` for machines (`fields.event`
   * names the event, e.g. "exited"). Prefix: `pidone | web: exited (status 1)`, the
   * message only, on stdout (or stderr, see OutputOptions.eventStream). JSON, on stdout:
   * {"ts", "service": <service or "pidone">, "event": fields.event or the message,
   * "message", ...the other fields}; fields never override ts, service or message.
   */
  event(service: string | null, message: string, fields?: EventFields): void {
    if (this.closed) return;
    this.post({ t: "event", bytes: formatEvent(this.opts, this.width, service, message, fields) });
  }

  /**
   * Resolves once every stream of `service` attached so far has reached EOF (its last line
   * written or queued). A supervisor can wait on it (briefly: a daemon child may hold the
   * pipe open) before reporting that the service exited, so the report follows its output.
   */
  async outputEnded(service: string): Promise<void> {
    await Promise.all([...this.ends.values()].filter((e) => e.service === service).map((e) => e.done));
  }

  /** At exit: keep copying what services already wrote for up to `ms`, then stop; report what was dropped. */
  async drain(ms: number): Promise<Drained> {
    const reply = new Promise<Drained>((resolve) => (this.drainedReply = resolve));
    this.post({ t: "drain", ms });
    // A worker that died after it started never answers: pidone must still exit.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unanswered = new Promise<Drained>((resolve) => {
      timer = setTimeout(() => resolve({ droppedLines: 0, droppedBytes: 0 }), ms + DRAIN_REPLY_SLACK_MS);
    });
    const dropped = await Promise.race([reply, unanswered]);
    clearTimeout(timer);
    this.closed = true;
    if (this.worker) {
      this.post({ t: "stop" });
      const worker = this.worker;
      this.worker = null;
      // Its last round ends at the wake-up; then it is gone, with its end of the wake pipe.
      setTimeout(() => {
        worker.terminate();
        if (this.wake) for (const fd of this.wake) close(fd);
        this.wake = null;
      }, 50).unref?.();
    }
    return dropped;
  }

  /** Bytes written to pidone's stdout and stderr so far (for benchmarks and tests). */
  get written(): number {
    return this.local ? this.local.written : this.writtenBytes[0]!;
  }

  /** Resolves once the worker runs (or the main thread took over); for benchmarks and tests. */
  async started(): Promise<"worker" | "main"> {
    while (this.backlog !== null) await new Promise((resolve) => setTimeout(resolve, 1));
    return this.local ? "main" : "worker";
  }

  private post(m: ToWorker): void {
    if (this.local) return this.handleLocally(m);
    this.backlog?.push(m);
    Atomics.add(this.counters, 0, 1);
    this.worker!.postMessage(m);
    // The worker sleeps in poll(2), not in its event loop: the byte wakes it to read messages.
    writeSome(this.wake![1], WAKE, 0, 1);
  }

  private onWorker(m: FromWorker): void {
    if (m.t === "ready") this.backlog = null;
    else if (m.t === "ended") this.ended(m.id);
    else if (m.t === "drained") this.drainedReply?.({ droppedLines: m.droppedLines, droppedBytes: m.droppedBytes });
  }

  private ended(id: number): void {
    const e = this.ends.get(id);
    if (!e) return;
    this.ends.delete(id);
    e.resolve();
  }

  /** No worker (it could not start): the same core on this thread, with everything sent so far. */
  private workerFailed(e?: ErrorEvent): void {
    if (this.local) return;
    if (this.backlog === null) {
      // It ran and died: what it owned (the pipes, the queues) went with it.
      log.error(`the service output thread failed: ${e?.message ?? "unknown error"}; service output is lost from now on`);
      return;
    }
    const sent = this.backlog;
    this.backlog = null;
    void this.worker?.terminate();
    this.worker = null;
    if (this.wake) for (const fd of this.wake) close(fd);
    this.wake = null;
    this.runLocally();
    for (const m of sent) this.handleLocally(m);
  }

  private runLocally(): void {
    this.backlog = null;
    this.local = new MuxCore(this.opts, "stream");
  }

  private handleLocally(m: ToWorker): void {
    const core = this.local!;
    if (m.t === "attach") void core.attach(m.service, m.stream, m.fd).then(() => this.ended(m.id));
    else if (m.t === "event") core.eventBytes(m.bytes);
    else if (m.t === "drain") void core.drain(m.ms).then((d) => this.drainedReply?.(d));
  }
}
