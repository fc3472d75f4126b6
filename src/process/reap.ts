// Reaping: every SIGCHLD may stand for many exits (the kernel coalesces them), so
// collect with waitpid(-1, WNOHANG) until nothing is left.
import { waitpidRaw, waitStatus, WNOHANG } from "../sys/libc.ts";
import { takeWatched } from "../sys/native.ts";
import { LEVEL, log } from "../log/logger.ts";
import { counters } from "./counters.ts";
import { pacedCollection } from "./gc.ts";

/** One unit of pidone's work on the main thread: a reap here, a signal in the modes. */
export const worked = pacedCollection((ms) => {
  if (log.level >= LEVEL.trace) log.trace(`Full collection in ${ms.toFixed(1)} ms`);
});

export type ExitStatus = { exited: true; code: number } | { exited: false; signal: number };

export function decodeStatus(status: number): ExitStatus {
  const low = status & 0x7f;
  if (low === 0) return { exited: true, code: (status >> 8) & 0xff };
  return { exited: false, signal: low };
}

/** Shell convention, as tini: the exit code, or 128 + the signal that killed it. */
export function exitCodeOf(s: ExitStatus): number {
  return (s.exited ? s.code : 128 + s.signal) % 256;
}

/**
 * Reaps every child that has already ended, calling `onReaped` for each. Returns true
 * when no child at all is left (ECHILD): nothing running, nothing to reap.
 */
export function reapAll(onReaped: (pid: number, status: ExitStatus) => void): boolean {
  // One decoding callback for every call, not a closure per call: a storm of SIGCHLD
  // wakes would leave one behind each time (garbage that only a collection returns).
  const outer = decodingFor;
  decodingFor = onReaped;
  try {
    return reapAllRaw(decodeEach);
  } finally {
    decodingFor = outer;
  }
}
let decodingFor: ((pid: number, status: ExitStatus) => void) | null = null;
const decodeEach = (pid: number, raw: number): void => decodingFor!(pid, decodeStatus(raw));

/**
 * The same without decoding: a backlog of thousands of zombies should cost one FFI call
 * each and no allocation (decode only the statuses you need).
 *
 * Where the single file's signal handler reaps (native.watchChild), it has taken the
 * zombies already and kept only the watched child's status: that comes first, through
 * the same callback. The loop still runs: it reaps what the handler has not (it may not
 * have run yet for the latest exits), and only its ECHILD tells "no child left".
 */
export function reapAllRaw(onReaped: (pid: number, rawStatus: number) => void): boolean {
  worked();
  takeWatched(onReaped);
  for (;;) {
    const pid = waitpidRaw(-1, WNOHANG);
    if (pid === 0) return false;
    if (pid < 0) return true;
    counters.reaped++;
    onReaped(pid, waitStatus[0]!);
  }
}
