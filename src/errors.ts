import { errno } from "./sys/libc.ts";

/** pidone's own exit codes; the child's codes pass through untouched. */
export const EXIT = {
  /** usage error, or pidone could not set itself up or keep running (tini's 1) */
  FAILURE: 1,
  /** services mode: a configuration pidone cannot run (and --check's verdict) */
  CONFIG: 2,
  /** the program exists but cannot be executed */
  CANNOT_EXECUTE: 126,
  /** the program was not found */
  NOT_FOUND: 127,
} as const;

/** A failure before the child runs: printed as one fatal line, exit 1. */
export class StartupError extends Error {
  override name = "StartupError";
}

/** Why a program did not start, from the spawn path to whoever reports it. */
export interface SpawnFailure {
  /** The call that failed: "posix_spawnp", the trampoline's "execve", "setresuid", "pipe"... */
  step: string;
  /** Its errno; 0 when what failed was not a system call. */
  errno: number;
  /** False when a step before the program's own exec failed (switching user, the trampoline's arguments). */
  exec: boolean;
  /** The line to log: "exec NAME failed: REASON", or the step's own ("cannot switch to uid N: REASON"). */
  message: string;
}

/**
 * The one table for a program that did not start, in both modes: tini's, whose execvp
 * failing ends its child with 127 for ENOENT, 126 for EACCES and 1 for anything else.
 * A step pidone takes before the exec is its own set-up failing, so 1 whatever errno.
 */
export function exitCodeOfFailure(f: SpawnFailure): number {
  if (!f.exec) return EXIT.FAILURE;
  if (f.errno === errno.ENOENT) return EXIT.NOT_FOUND;
  if (f.errno === errno.EACCES) return EXIT.CANNOT_EXECUTE;
  return EXIT.FAILURE;
}
