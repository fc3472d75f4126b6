// What pidone inherited, captured before anything else runs. In the single file the
// stub recorded it at its first instruction, before the runtime existed (src/sys/native.ts);
// otherwise it is reconstructed here, before our own code opens descriptors (evaluating
// src/sys/libc.ts opens none).
import * as native from "../sys/native.ts";
import { DescriptorShortage, isDescriptorShortage } from "../errors.ts";
import {
  SIG_BLOCK,
  SyscallError,
  descriptorLimit,
  listDirectory,
  readLink,
  readSmallFile,
  sigprocmask,
  spareDescriptors,
} from "../sys/libc.ts";

export interface Inheritance {
  /** Descriptors above 2 that our parent passed us (the runtime marked them close-on-exec). */
  fds: number[];
  /**
   * Signals our parent left ignored. Without the stub, SigIgn less the two the runtime
   * ignores itself (SIGPIPE, SIGXFSZ): what the parent did with those cannot be told.
   */
  ignored: number[];
  /** The signal mask our parent started us with: the child's. */
  sigmask: Uint8Array;
  /** /proc/self/cmdline, split on NUL: argv byte for byte. */
  argv: Uint8Array[] | null;
}

// Before our first line, Bun 1.4.4 opens exactly one epoll and one eventfd;
// everything else above fd 2 came from our parent.
const RUNTIME_FDS = ["anon_inode:[eventpoll]", "anon_inode:[eventfd]"];
// The single-file release's stub (src/native/stub.c) leaves the C libraries open as
// memfds named "pidone:<soname>" (fds 1000..1003, or the lowest free ones): ours, not inherited.
const STUB_MEMFD = "/memfd:pidone:";

// Without the stub (the plain executable): /proc/self/fd, through libc (node:fs's first
// use costs milliseconds of start-up).
function inheritedFds(): number[] {
  const entries = listDirectory("/proc/self/fd");
  if (!entries) return []; // no /proc: nothing can be told apart, so pass nothing beyond 0-2
  const runtimeSeen = new Set<string>();
  const fds: number[] = [];
  for (const name of entries.map(Number).sort((a, b) => a - b)) {
    if (!(name > 2)) continue;
    const target = readLink(`/proc/self/fd/${name}`);
    if (target === null) continue; // the directory descriptor the listing itself used, gone by now
    if (target.startsWith(STUB_MEMFD)) continue;
    if (RUNTIME_FDS.includes(target) && !runtimeSeen.has(target)) {
      runtimeSeen.add(target);
      continue;
    }
    fds.push(name);
  }
  return fds;
}

function ignoredSignals(): number[] {
  const status = readSmallFile("/proc/self/status"); // throws when out of descriptors
  try {
    const line = Buffer.from(status ?? [])
      .toString("latin1")
      .split("\n")
      .find((l) => l.startsWith("SigIgn:"));
    if (!line) return [];
    const mask = BigInt(`0x${line.slice(7).trim()}`);
    const out: number[] = [];
    // SIGPIPE (13) and SIGXFSZ (25) are ignored by the runtime before we run: the
    // child gets them at their default, whatever our parent had.
    for (let s = 1; s <= 64; s++) if (mask & (1n << BigInt(s - 1)) && s !== 13 && s !== 25) out.push(s);
    return out;
  } catch {
    return [];
  }
}

function cmdline(): Uint8Array[] | null {
  const raw = readSmallFile("/proc/self/cmdline"); // throws when out of descriptors
  if (!raw) return null;
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0) {
      parts.push(new Uint8Array(raw.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start < raw.length) parts.push(new Uint8Array(raw.subarray(start)));
  // Under `bun src/main.ts` (development), argv[0] is bun and argv[1] the script.
  return isCompiled() ? parts : parts.slice(1);
}

function isCompiled(): boolean {
  return (process.argv[1] ?? "").startsWith("/$bunfs/");
}

// ---------------------------------------------------------------- descriptors to come

// What pidone opens once the child runs, and cannot do without: the native signal
// intake's pipe and the reader's copy of it (the single file); the stop's /proc walk and
// the pidfd it signals each leftover process through (tini's mode and --pause); in
// services mode the output worker's wake-up pipe and its own event loop (which its
// thread opens whenever it gets to it), the reserve every launch leaves free (SPARE: the
// stop's, a probe's socket, the worker's loop if it is not there yet), and what the
// first launch takes (two pipes, and the service's own /dev/null in its copy of our
// table). Run short of these later and the runtime either ends the process with its own
// message (a Worker's event loop) or leaves a reader dead (the intake's stream), and
// the stop misses the processes it should have ended gracefully.
const INTAKE_DESCRIPTORS = 3;
const STOP_DESCRIPTORS = 2;
const OUTPUT_DESCRIPTORS = 4;
export const SPARE_DESCRIPTORS = 4;
const LAUNCH_DESCRIPTORS = 5;

/**
 * Makes sure the descriptors the mode opens after start-up can be made, before the
 * child runs: a DescriptorShortage naming the limit that would do, otherwise.
 */
export function checkDescriptors(services: boolean): void {
  const need = ownNeed(services);
  const { made, errno } = spareDescriptors(need);
  if (made >= need) return;
  if (!isDescriptorShortage(errno)) throw new SyscallError("pipe2", errno);
  const limit = descriptorLimit();
  throw new DescriptorShortage("start-up", errno, limit === null ? null : limit + need - made);
}

function ownNeed(services: boolean): number {
  const mode = services ? OUTPUT_DESCRIPTORS + SPARE_DESCRIPTORS + LAUNCH_DESCRIPTORS : STOP_DESCRIPTORS;
  return (native.available ? INTAKE_DESCRIPTORS : 0) + mode;
}

function capture(): Inheritance {
  return {
    fds: native.inheritedFds() ?? inheritedFds(),
    // SIGPIPE and SIGXFSZ are default in the child by design, whatever our parent did,
    // with or without the stub (the plain executable cannot tell, see ignoredSignals).
    ignored: native.originalIgnored()?.filter((s) => s !== 13 && s !== 25) ?? ignoredSignals(),
    // Without the stub nothing has touched this thread's mask yet.
    sigmask: native.originalMask() ?? sigprocmask(SIG_BLOCK, null),
    argv: cmdline(),
  };
}

/**
 * Why the capture failed (no libc, no descriptor left for /proc), or null. It runs as
 * the module loads, outside main()'s handler: main() raises this first thing.
 */
export let inheritanceFailure: unknown = null;
export const inheritance: Inheritance = (() => {
  try {
    return capture();
  } catch (e) {
    // Out of descriptors for a /proc read (one at a time, closed before the intake
    // opens its own): name the limit tini's mode would need.
    const limit = descriptorLimit();
    const short = e instanceof SyscallError && isDescriptorShortage(e.errno);
    inheritanceFailure = short ? new DescriptorShortage(e.syscall, e.errno, limit === null ? null : limit + Math.max(1, ownNeed(false))) : e;
    return { fds: [], ignored: [], sigmask: new Uint8Array(0), argv: null };
  }
})();
