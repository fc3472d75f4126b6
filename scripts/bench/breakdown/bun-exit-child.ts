// A Bun program that plays `exitlat child` itself: ready, wait for the go byte, stamp,
// _exit. Its exit latency is the kernel's teardown of a Bun process, with no signal and
// no JavaScript on the way: the floor under any Bun init's exit latency.
import { dlopen, ptr } from "bun:ffi";

const { symbols: c } = dlopen("libc.so.6", {
  read: { args: ["i32", "ptr", "u64"], returns: "i64" },
  write: { args: ["i32", "ptr", "u64"], returns: "i64" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  _exit: { args: ["i32"], returns: "void" },
});
const ts = new BigInt64Array(2);
const out = new BigInt64Array(1);
c.write(1, ptr(out), 8n);
const go = new Uint8Array(1);
c.read(0, ptr(go), 1n);
c.clock_gettime(1, ptr(ts));
out[0] = ts[0]! * 1_000_000_000n + ts[1]!;
c.write(1, ptr(out), 8n);
c._exit(0);
