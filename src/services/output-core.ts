// The service output multiplexer's core, whichever thread and reader drive it: it turns
// the chunks read from each service's pipe into whole formatted lines (carrying a line
// split across reads, cutting one longer than MAX_LINE), hands them to the sinks, and at
// exit drains, then counts what it had to drop. It does not read: a subclass does, the
// output worker's poll(2) reader (output-worker.ts) or the main thread's fallback
// (output-fallback.ts), and calls feed() per chunk and end() at EOF. Apart because both
// readers share it line for line, and the main thread's side (output.ts) needs neither.
import { close, setPipeSize } from "../sys/libc.ts";
import {
  JsonFormatter,
  MAX_LINE,
  PrefixFormatter,
  pieceEnd,
  prefixBytes,
  type LineFormatter,
} from "./output-format.ts";
import { OutputSink, sameFile } from "./output-sink.ts";

export interface OutputOptions {
  format: "prefix" | "json"; // raw never reaches us: services inherit pidone's fds then
  /** Every service name, to pad prefixes to one width. */
  names: readonly string[];
  /** Prefix colours (the caller decides: a terminal and no NO_COLOR). */
  color: boolean;
  /** Prefixed lines start with their time, RFC 3339 UTC with milliseconds (JSON lines always have "ts"). */
  timestamps?: boolean;
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

export interface Drained {
  droppedLines: number;
  droppedBytes: number;
}

/** The name in the prefix column of pidone's own events. */
export const EVENT_NAME = "pidone";

export const columnWidth = (names: readonly string[]) => Math.max(EVENT_NAME.length, ...names.map((n) => n.length));

/**
 * Capacity asked for each service pipe. Larger than the default 64 KiB because a flooding
 * service then wakes us (and we it) less often.
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

export interface Stream {
  fd: number;
  service: string;
  format: LineFormatter;
  /** The formatter that stamps each chunk's lines with the time read (JSON, or timestamped prefix), else null. */
  clock: { stamp(ms: number): void } | null;
  sink: OutputSink;
  /** The start of a line whose end has not been read yet. */
  carry: Buffer | null;
  carryLen: number;
  /** The fallback reader's: Bun's pipe reader, cancelled after drain's deadline. */
  reader: { cancel(): Promise<void> } | null;
  /** The poll reader's: resolves `ended` once end() has run. */
  finish: (() => void) | null;
  /** After drain's deadline: count lines instead of writing them. */
  counting: boolean;
  /** While counting: bytes of a line were seen but not its newline yet. */
  openLine: boolean;
  ended: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export abstract class MuxCore {
  protected readonly stdout: OutputSink;
  protected readonly stderr: OutputSink;
  private readonly events: OutputSink;
  /** stdout and stderr, once each (one sink when they are the same file). */
  protected readonly sinks: OutputSink[];
  private readonly width: number;
  private readonly colors = new Map<string, number>();
  protected readonly streams = new Set<Stream>();
  private readonly countedDrop = { lines: 0, bytes: 0 };
  private lastCounted = 0;
  private closed = false;

  /** `externalRetries`: the sinks leave their retries to the reader's loop (see output-sink.ts). */
  constructor(
    private readonly opts: OutputOptions,
    externalRetries: boolean,
  ) {
    const outFd = opts.stdoutFd ?? 1;
    const errFd = opts.stderrFd ?? 2;
    this.stdout = new OutputSink(outFd, opts.polledWrites, externalRetries);
    // One queue when both are the same file (2>&1, a terminal), or lines could interleave mid-line.
    this.stderr = sameFile(outFd, errFd) ? this.stdout : new OutputSink(errFd, opts.polledWrites, externalRetries);
    this.events = opts.format === "json" || opts.eventStream !== "stderr" ? this.stdout : this.stderr;
    this.sinks = this.stderr === this.stdout ? [this.stdout] : [this.stdout, this.stderr];
    this.width = columnWidth(opts.names);
    opts.names.forEach((n, i) => this.colors.set(n, i));
  }

  /** Starts reading `s`; the promise resolves once end(s) has run. */
  protected abstract read(s: Stream): Promise<void>;
  /** Past drain's counting: give up on `s` (end(s) runs, now or once the reader notices). */
  protected abstract stopReading(s: Stream): void;

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
    const format = json ?? new PrefixFormatter(prefixBytes(service, this.width, color), this.opts.timestamps === true);
    const s: Stream = {
      fd,
      service,
      format,
      clock: json ?? (this.opts.timestamps ? (format as PrefixFormatter) : null),
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
    s.ended = this.read(s);
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

  /** At exit: keep copying what services already wrote for up to `ms`, then stop; report what was dropped. */
  async drain(ms: number): Promise<Drained> {
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
      for (const s of this.streams) this.stopReading(s);
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

  /** EOF (or given up): the last line without newline goes out; the pipe is closed. */
  protected end(s: Stream): void {
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

  /** Formats every complete line of `chunk`; keeps an unfinished last line in the carry (a copy: `chunk` may be reused). */
  protected feed(s: Stream, chunk: Uint8Array): void {
    const src = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = src.length;
    s.clock?.stamp(Date.now());
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

  /** Appends src[start, end) to the carry, emitting MAX_LINE pieces whenever it overflows. */
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

  protected count(s: Stream, chunk: Uint8Array): void {
    this.lastCounted = performance.now();
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) this.countedDrop.lines++;
    this.countedDrop.bytes += chunk.length;
    if (chunk.length > 0) s.openLine = chunk[chunk.length - 1] !== 10;
  }
}
