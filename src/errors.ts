import { LibcUnavailable, SyscallError, descriptorLimit, errno } from "./sys/libc.ts";

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

// ---------------------------------------------------------------- the limits' words

/**
 * No descriptor could be made: `step` names what needed it; `needed`, when known, the
 * limit that would have done.
 */
export class DescriptorShortage extends Error {
  override name = "DescriptorShortage";
  constructor(
    readonly step: string,
    readonly errno: number,
    readonly needed: number | null = null,
  ) {
    super(descriptorShortage(step, errno, descriptorLimit(), needed));
  }
}

/** Out of descriptors, in words: which limit, its value, and what pidone needs. */
export function descriptorShortage(step: string, code: number, limit: number | null, needed: number | null): string {
  const head = `out of file descriptors (${step})`;
  if (code === errno.ENFILE) return `${head}: the system's file table is full (ENFILE, sysctl fs.file-max)`;
  const limitWords = `the descriptor limit (ulimit -n, RLIMIT_NOFILE)${limit === null ? "" : ` is ${limit}`}`;
  return needed === null ? `${head}: ${limitWords}: raise it` : `${head}: ${limitWords}; pidone needs at least ${needed}`;
}

export function isDescriptorShortage(code: number): boolean {
  return code === errno.EMFILE || code === errno.ENFILE;
}

// What the plain -glibc file needs under RLIMIT_AS before JavaScriptCore can reserve its
// JIT, with the runtime's defaults and with the single file's settings (the stub's
// runtime_settings; README, "The plain -glibc file under limits").
const PLAIN_ADDRESS_SPACE = "2.3 GiB";
const SMALL_JIT_ADDRESS_SPACE = "300 MiB";
const SMALL_JIT_SETTING = "BUN_JSC_jitMemoryReservationSize=4194304 and MIMALLOC_ARENA_RESERVE=0";

/**
 * libc could not be bound. Without the JIT bun:ffi binds nothing: the cause is then
 * almost always an address-space limit (`asLimit`, bytes, null when none) too small for
 * the JIT's reservation.
 */
export function libcFailureLine(tried: readonly { path: string; reason: string }[], jitless: boolean, asLimit: number | null): string {
  // bun:ffi's prefix and dlerror's both repeat the path
  const reason = (t: { path: string; reason: string }) => t.reason.replace(/^Failed to open library "[^"]*": /, "").replace(`${t.path}: `, "");
  const why = tried.map((t) => `${t.path}: ${reason(t)}`).join("; ");
  const head = `cannot load the C library (${why})`;
  if (!jitless) return head;
  if (asLimit === null) return `${head}: the runtime runs without its JIT (BUN_JSC_useJIT?), and bun:ffi needs it`;
  const mib = Math.floor(asLimit / 1048576);
  return `${head}: the address-space limit (ulimit -v, RLIMIT_AS) of ${mib} MiB leaves no room for the runtime's JIT, which bun:ffi needs: raise it (the plain pidone-glibc file needs ${PLAIN_ADDRESS_SPACE}, or ${SMALL_JIT_ADDRESS_SPACE} with ${SMALL_JIT_SETTING} set)`;
}

/**
 * The one line main()'s handler prints for a failure that ends pidone (its exit code is
 * EXIT.FAILURE). `addressSpace` reads RLIMIT_AS, asked only when the JIT is missing.
 */
export function fatalLine(e: unknown, addressSpace: () => number | null): string {
  if (e instanceof StartupError) return e.message;
  if (e instanceof LibcUnavailable) return libcFailureLine(e.tried, e.jitless, e.jitless ? addressSpace() : null);
  if (e instanceof DescriptorShortage) return e.message;
  if (e instanceof SyscallError && isDescriptorShortage(e.errno)) return descriptorShortage(e.syscall, e.errno, descriptorLimit(), null);
  return `pidone failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
}
