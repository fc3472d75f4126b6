// The multiplexer on pidone's main thread, for when its worker cannot start (a build
// without the worker's entry point, or thread: "main"): the same core (output-core.ts)
// fed by Bun's own pipe reader, Bun.file(fd).stream(), from the event loop. Slower than
// the worker's read(2) into a reused buffer (Bun's reader hands out fresh memory per
// chunk) and it competes with signal forwarding for the loop, but it needs no thread and
// no poll loop; apart because it is what the worker replaces, not part of it.
// One thread it may still cost: Bun closes its copy of each pipe on its file-I/O thread
// pool when the stream ends. A pool thread the kernel refuses is not fatal (Bun keeps the
// close queued until a thread can start), so under a full pids limit that copy stays
// open a while; the service's end and its output are not held up.
import { MuxCore, type OutputOptions, type Stream } from "./output-core.ts";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FallbackMux extends MuxCore {
  constructor(opts: OutputOptions) {
    super(opts, false);
  }

  protected async read(s: Stream): Promise<void> {
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
        // One chunk per turn of the event loop: Bun resolves read() at once while it holds
        // data, so a flood would otherwise keep timers and signal handlers waiting.
        // setImmediate, not setTimeout(0), which waits for the timers' next tick.
        await nextTurn();
      }
    } catch {
      // A read error ends the stream like EOF; cancel() after drain's deadline lands here too.
    } finally {
      // Bun reads its own dup of the fd; ours is closed here, once.
      this.end(s);
    }
  }

  protected stopReading(s: Stream): void {
    void s.reader?.cancel().catch(() => {});
  }
}
