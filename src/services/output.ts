// The service output multiplexer: reads every service's stdout/stderr pipe and writes
// each line, whole, to pidone's stdout/stderr as `NAME | line` or as one JSON object.
//
// Reading: Bun.file(fd).stream() on the pipe's read end. Bun reads a dup of the fd from
// its own epoll loop (preadv2 RWF_NOWAIT) and reads ahead at most ~256 KiB while nobody
// asks for more (measured), so not calling read() is real backpressure: the service
// blocks in write(2) once its pipe is full.
//
// Fairness: every stream has its own read loop that handles one chunk (at most a pipe's
// worth, 256 KiB) and then yields to the event loop, so a flooding service neither
// starves the others nor delays pidone's signal handlers and timers by more than the
// time one chunk takes to format (~0.1-0.5 ms).
//
// Writing: see output-sink.ts (batched, never blocking on fd 1/2, pauses reading when the
// output falls behind).
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
  /** After drain's deadline: count lines instead of writing them. */
  counting: boolean;
  /** While counting: bytes of a line were seen but not its newline yet. */
  openLine: boolean;
  ended: Promise<void>;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class OutputMux {
  private readonly stdout: OutputSink;
  private readonly stderr: OutputSink;
  private readonly events: OutputSink;
  private readonly width: number;
  private readonly colors = new Map<string, number>();
  private readonly streams = new Set<Stream>();
  private readonly countedDrop = { lines: 0, bytes: 0 };
  private lastCounted = 0;
  private closed = false;

  constructor(private readonly opts: OutputOptions) {
    const outFd = opts.stdoutFd ?? 1;
    const errFd = opts.stderrFd ?? 2;
    this.stdout = new OutputSink(outFd, opts.polledWrites);
    // One queue when both are the same file (2>&1, a terminal), or lines could interleave mid-line.
    this.stderr = sameFile(outFd, errFd) ? this.stdout : new OutputSink(errFd, opts.polledWrites);
    this.events = opts.format === "json" || opts.eventStream !== "stderr" ? this.stdout : this.stderr;
    this.width = Math.max(EVENT_NAME.length, ...opts.names.map((n) => n.length));
    opts.names.forEach((n, i) => this.colors.set(n, i));
  }

  /** Read a service's stream from `fd` (a pipe read end, now owned by the mux; closed at EOF). */
  attach(service: string, stream: "stdout" | "stderr", fd: number): void {
    if (this.closed) {
      close(fd);
      return;
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
      counting: false,
      openLine: false,
      ended: Promise.resolve(),
    };
    this.streams.add(s);
    s.ended = this.pump(s);
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
    let text: string;
    if (this.opts.format === "json") {
      const obj: Record<string, unknown> = {
        ts: new Date().toISOString(),
        service: service ?? EVENT_NAME,
        event: fields?.event ?? message,
        message,
      };
      for (const [k, v] of Object.entries(fields ?? {})) if (!(k in obj)) obj[k] = v;
      text = `${JSON.stringify(obj)}\n`;
    } else {
      const label = `${EVENT_NAME.padEnd(this.width)} |`;
      const body = `${service === null ? "" : `${service}: `}${message}`.replace(/[\r\n]+/g, " ");
      text = `${this.opts.color ? `\x1b[1m${label}\x1b[0m` : label} ${body}\n`;
    }
    const sink = this.events;
    const bytes = Buffer.from(text);
    sink.room(bytes.length);
    sink.len += bytes.copy(sink.buf, sink.len);
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
      for (const s of this.streams) void s.reader?.cancel().catch(() => {});
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
      if (s.counting) {
        if (s.openLine) this.countedDrop.lines++; // a last line without newline
      } else if (s.carryLen > 0) {
        this.pieces(s, s.carry!, 0, s.carryLen, true); // a last line without newline
        s.sink.flush();
      }
      s.carryLen = 0;
      s.carry = null;
      this.streams.delete(s);
      // Bun reads its own dup of the fd; ours is closed here, once.
      try {
        close(s.fd);
      } catch {
        // already invalid: nothing to release
      }
    }
  }

  /** Formats every complete line of `chunk`; keeps an unfinished last line in the carry. */
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
