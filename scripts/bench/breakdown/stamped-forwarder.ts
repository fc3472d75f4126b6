// The floor forwarder (floors/forwarder.ts) with two CLOCK_MONOTONIC stamps written to
// fd 1 after the child's own: when its SIGCHLD handler starts, and just before _exit.
// `exitlat drive` reports them as stamp0/stamp1, splitting the exit latency into
// signal delivery to JS, reaping, and the kernel tearing the process down.
import { dlopen, ptr } from "bun:ffi";

const { symbols: c } = dlopen("libc.so.6", {
  waitpid: { args: ["i32", "ptr", "i32"], returns: "i32" },
  posix_spawnp: { args: ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  _exit: { args: ["i32"], returns: "void" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i64" },
});

const ts = new BigInt64Array(2);
const stamp = new BigInt64Array(1);
function writeStamp(): void {
  c.clock_gettime(1 /* CLOCK_MONOTONIC */, ptr(ts));
  stamp[0] = ts[0]! * 1_000_000_000n + ts[1]!;
  c.write(1, ptr(stamp), 8n);
}

let child = 0;
const status = new Int32Array(1);
process.on("SIGCHLD", () => {
  writeStamp();
  for (;;) {
    const pid = c.waitpid(-1, ptr(status), 1);
    if (pid <= 0) return;
    if (pid === child) {
      writeStamp();
      c._exit(0);
    }
  }
});

const args = process.argv.slice(2);
const keep = args.map((s) => Buffer.from(`${s}\0`));
const argv = new BigUint64Array(args.length + 1);
keep.forEach((b, i) => (argv[i] = BigInt(ptr(b))));
const envp = new BigUint64Array(1);
const pidOut = new Int32Array(1);
if (c.posix_spawnp(ptr(pidOut), ptr(keep[0]!), null, null, ptr(argv), ptr(envp)) !== 0) c._exit(127);
child = pidOut[0]!;
setInterval(() => {}, 2 ** 31 - 1);
