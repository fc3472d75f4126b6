// The service output multiplexer, as pidone's main thread uses it: every service's
// stdout/stderr pipe is read and each line written, whole, to pidone's stdout/stderr as
// `NAME | line` or as one JSON object.
//
// The work runs in a Worker (output-worker.ts): pidone's main thread forwards signals and
// reaps from its event loop, where formatting a flood would delay them. So OutputMux only
// posts what happens (attach a pipe, an event line, drain) and waits for the answers.
// Should the worker fail to start, the same multiplexer runs here instead, reading with
// Bun's pipe reader (output-fallback.ts), with every message posted so far replayed.
//
// The rest, in the order a line takes: output-core.ts (lines from chunks, drain),
// output-format.ts (the line formats), output-sink.ts (batched writes to fd 1/2).
import { O_CLOEXEC, O_NONBLOCK, close, pipe, writeSome } from "../sys/libc.ts";
import { log } from "../log/logger.ts";
import { columnWidth, EVENT_NAME, type Drained, type EventFields, type OutputOptions } from "./output-core.ts";
import { FallbackMux } from "./output-fallback.ts";
import type { FromWorker, ToWorker } from "./output-worker.ts";

export type { Drained, EventFields, OutputOptions } from "./output-core.ts";

/** One of pidone's event lines, as bytes. */
export function formatEvent(
  opts: Pick<OutputOptions, "format" | "color" | "timestamps">,
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
    const time = opts.timestamps ? `${new Date().toISOString()} ` : "";
    text = `${time}${opts.color ? `\x1b[1m${label}\x1b[0m` : label} ${body}\n`;
  }
  return Buffer.from(text);
}

/**
 * Shared with the worker: two Int32 at 0, the messages posted (here) and handled (there);
 * a Float64 at 8, the bytes written so far (there).
 */
const SHARED_BYTES = 16;
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
  private local: FallbackMux | null = null;
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
    // Services mode makes the multiplexer before it starts any service: the worker's is the
    // last thread pidone adds, and the only one. When the kernel refuses it (a pids limit
    // already reached), `new Worker` throws and the main thread takes over below.
    try {
      this.wake = pipe(O_CLOEXEC | O_NONBLOCK);
      // smol: the worker's heap holds little more than a few buffers and the sinks' queues.
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

  /** No worker (it could not start): the fallback on this thread, with everything sent so far. */
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
    this.local = new FallbackMux(this.opts);
  }

  private handleLocally(m: ToWorker): void {
    const core = this.local!;
    if (m.t === "attach") void core.attach(m.service, m.stream, m.fd).then(() => this.ended(m.id));
    else if (m.t === "event") core.eventBytes(m.bytes);
    else if (m.t === "drain") void core.drain(m.ms).then((d) => this.drainedReply?.(d));
  }
}
