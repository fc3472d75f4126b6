// The floor of a JavaScript init: spawn the child with FFI posix_spawnp, forward signals
// from process.on with FFI kill, reap with FFI waitpid on SIGCHLD, exit with the child's
// code. Nothing else (no argv parsing, no logging, no /proc): whatever pidone costs
// beyond this program is pidone's own, below it is Bun's.
import { dlopen, ptr, read } from "bun:ffi";

const { symbols: c } = dlopen("libc.so.6", {
  kill: { args: ["i32", "i32"], returns: "i32" },
  waitpid: { args: ["i32", "ptr", "i32"], returns: "i32" },
  posix_spawnp: { args: ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  _exit: { args: ["i32"], returns: "void" },
  dlsym: { args: ["ptr", "ptr"], returns: "ptr" },
});

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGUSR1: 10, SIGUSR2: 12, SIGALRM: 14, SIGTERM: 15,
  SIGCONT: 18, SIGTSTP: 20, SIGWINCH: 28,
};

function cStrings(items: string[]): { keep: Buffer[]; array: BigUint64Array } {
  const keep = items.map((s) => Buffer.from(`${s}\0`));
  const array = new BigUint64Array(items.length + 1);
  keep.forEach((b, i) => (array[i] = BigInt(ptr(b))));
  return { keep, array };
}

let child = 0;
const status = new Int32Array(1);
process.on("SIGCHLD", () => {
  for (;;) {
    const pid = c.waitpid(-1, ptr(status), 1 /* WNOHANG */);
    if (pid <= 0) return;
    if (pid === child) {
      const s = status[0]!;
      c._exit((s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f));
    }
  }
});
for (const [name, sig] of Object.entries(SIGNALS)) process.on(name as NodeJS.Signals, () => c.kill(child, sig));

// The environment as libc holds it: `environ` (RTLD_DEFAULT is NULL).
const environ = read.ptr(c.dlsym(null, ptr(Buffer.from("environ\0")))!, 0);
const args = process.argv.slice(2);
const argv = cStrings(args);
const pidOut = new Int32Array(1);
const rc = c.posix_spawnp(ptr(pidOut), ptr(argv.keep[0]!), null, null, ptr(argv.array), environ as never);
if (rc !== 0) c._exit(127);
child = pidOut[0]!;
// A referenced handle that never fires keeps the event loop (and the process) alive.
setInterval(() => {}, 2 ** 31 - 1);
