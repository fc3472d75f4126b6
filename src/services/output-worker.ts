// The output worker: the service output multiplexer's own thread (see output.ts). It
// sleeps in poll(2) over the services' pipes and a wake-up pipe, reads and formats what
// arrives, writes it out, and turns its event loop once per round so that the main
// thread's messages (attach, event, drain) and the drain's timers get their turn.
import { MuxCore, type FromWorker, type ToWorker } from "./output.ts";

declare const self: Worker;

let core: MuxCore | null = null;
let wakeFd = -1;
let counters: Int32Array<ArrayBufferLike> = new Int32Array(2);
let written: Float64Array<ArrayBufferLike> = new Float64Array(1);
let stopped = false;

const reply = (m: FromWorker) => self.postMessage(m);
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.t) {
    case "init":
      core = new MuxCore(m.opts, "poll");
      wakeFd = m.wakeFd;
      counters = new Int32Array(m.shared, 0, 2);
      written = new Float64Array(m.shared, 8, 1);
      reply({ t: "ready" });
      void run();
      break;
    case "attach":
      void core!.attach(m.service, m.stream, m.fd).then(() => reply({ t: "ended", id: m.id }));
      break;
    case "event":
      core!.eventBytes(m.bytes);
      break;
    case "drain":
      void core!.drain(m.ms).then((d) => {
        written[0] = core!.written;
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
    core!.step(wakeFd, behind ? 0 : -1);
    written[0] = core!.written;
    await nextTurn();
  }
}
