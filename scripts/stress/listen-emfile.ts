// Does Bun's listener spin when accept(2) fails with EMFILE? A fact for the control
// socket (a later issue), not a test of pidone: pidone listens on nothing yet.
//
//   bun scripts/stress/listen-emfile.ts            # prints one line per case
//
// A child Bun process listens on a unix socket, then opens /dev/null until EMFILE; the
// parent connects (the connection waits in the backlog) and reads the child's CPU time
// over two seconds. Cases: "listen" leaves it so; "stop" stops listening once short
// (listener.stop()); "freeN" closes N of the descriptors it holds, as a reserve
// released while short would, to see how many Bun's accept needs.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CHILD = process.argv[2] === "child";
const WINDOW_MS = 2000;

if (CHILD) {
  const [, , , path, mode] = process.argv;
  const { openSync, closeSync } = await import("node:fs");
  let accepted = 0;
  const listener = Bun.listen({
    unix: path!,
    socket: {
      open() {
        accepted++;
      },
      data() {},
      close() {},
    },
  });
  const held: number[] = [];
  try {
    for (;;) held.push(openSync("/dev/null", "r"));
  } catch {
    // EMFILE: every descriptor is taken
  }
  if (mode === "stop") listener.stop();
  if (mode!.startsWith("free")) for (let i = Number(mode!.slice(4)); i > 0; i--) closeSync(held.pop()!);
  process.stdout.write(`ready ${held.length}\n`);
  setInterval(() => process.stdout.write(`accepted ${accepted}\n`), 500);
} else {
  const cpuTicks = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  };
  for (const mode of ["listen", "stop", "free1", "free2", "free4"]) {
    const path = join(tmpdir(), `listen-emfile-${process.pid}-${mode}.sock`);
    const child = Bun.spawn(["bash", "-c", `ulimit -n 64 && exec "$@"`, "bash", process.execPath, import.meta.path, "child", path, mode], {
      stdout: "pipe",
      stderr: "inherit",
    });
    let out = "";
    void (async () => {
      for await (const chunk of child.stdout) out += new TextDecoder().decode(chunk);
    })();
    while (!out.includes("ready")) await Bun.sleep(10);
    const socket = connect(path);
    socket.on("error", () => {});
    await Bun.sleep(200);
    const t0 = cpuTicks(child.pid);
    await Bun.sleep(WINDOW_MS);
    const used = (cpuTicks(child.pid) - t0) * 10;
    socket.destroy();
    child.kill("SIGKILL");
    await child.exited;
    const rest = `${out.split("\n")[0]} descriptors held, ${out.trim().split("\n").at(-1)}`;
    console.log(`${mode}: ${used} ms of CPU in ${WINDOW_MS} ms with a connection pending (${rest})`);
  }
}
