// Reaping: every SIGCHLD may stand for many exits (the kernel coalesces them), so
// collect with waitpid(-1, WNOHANG) until nothing is left.
import { waitpid, WNOHANG } from "../sys/libc.ts";

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

/** Reaps every child that has already ended; calls `onReaped` for each. */
export function reapAll(onReaped: (pid: number, status: ExitStatus) => void): void {
  for (;;) {
    const r = waitpid(-1, WNOHANG);
    if (r === null || r === "none") return;
    onReaped(r.pid, decodeStatus(r.status));
  }
}
