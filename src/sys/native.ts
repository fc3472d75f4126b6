// The single file's native helper (src/native/stub.c) as pidone sees it: the only
// TypeScript that knows the stub. The stub runs before the runtime, so it recorded what
// pidone must hand on (signal mask, ignored signals, environment, descriptors), blocked
// every signal pidone may handle, and left a shared area whose address is in our own
// auxiliary vector entry. Without the stub (dist/pidone-glibc, `bun src/main.ts`) there
// is no such entry: `available` is false and every caller keeps its plain path. The
// layout, the constants and the trampoline's words come from src/native/protocol.ts,
// which the stub is compiled from too.
// A macro: evaluated at bundle time, so the bundle holds the protocol's values, not its tables.
import { runtimeView } from "../native/protocol.ts" with { type: "macro" };
import {
  O_CLOEXEC,
  O_NONBLOCK,
  SA_RESTART,
  SIGSET_BYTES,
  SIG_UNBLOCK,
  exit as exitNow,
  getauxval,
  memoryView,
  pipe,
  setSignalHandler,
  sigprocmask,
  sigset,
  useOriginalEnviron,
  writeAll,
} from "./libc.ts";

// ---------------------------------------------------------------- the shared area
const P = runtimeView();
const { MAGIC, AT_PIDONE, SIZE, AT, FDS_UNKNOWN, ACT_QUEUE, ACT_DROP, ACT_QUIET, NSIG, EXIT_NEVER, EXIT_ALWAYS, EXIT_ALONE } = P;
const SIGCHLD = 17;
// 32-bit word indexes of the fields the hot paths touch (the intake's drain, takeWatched).
const COUNT = AT.count / 4;
const WATCHED_PID = AT.watched_pid / 4;
const WATCHED_STATUS = AT.watched_status / 4;
const REAP = AT.reap / 4;

interface Shared {
  bytes: Uint8Array;
  view: DataView;
  /** Aligned 32-bit loads and stores: what on_signal reads and writes atomically. */
  u32: Uint32Array;
  i32: Int32Array;
}

function locate(): Shared | null {
  const address = getauxval(AT_PIDONE);
  if (!address) return null;
  // The magic and the size first, within the smallest area any version had.
  const head = new Uint8Array(memoryView(address, AT.size + 4));
  const end = head.indexOf(0);
  const magic = Buffer.from(head.subarray(0, end < 0 || end > AT.size ? AT.size : end)).toString("latin1");
  const size = new DataView(head.buffer).getUint32(AT.size, true);
  if (magic !== MAGIC || size !== SIZE) mismatch(magic, size);
  const buffer = memoryView(address, SIZE);
  return { bytes: new Uint8Array(buffer), view: new DataView(buffer), u32: new Uint32Array(buffer), i32: new Int32Array(buffer) };
}

/**
 * A stub from another build: its layout cannot be trusted, and without its helper
 * pidone would run with every signal still blocked by it. One line and exit 1, written
 * here because this runs as the module loads, before main() could catch anything.
 */
function mismatch(magic: string, size: number): never {
  const theirs = /^[\x20-\x7e]+$/.test(magic) ? magic : "an unknown protocol";
  const line =
    theirs === MAGIC
      ? `pidone: the native helper in this file has a ${size}-byte shared area, this pidone needs ${SIZE} bytes of ${MAGIC}: the file was packed from mismatched builds\n`
      : `pidone: the native helper in this file speaks ${theirs}, this pidone needs ${MAGIC}: the file was packed from mismatched builds\n`;
  writeAll(2, Buffer.from(line), 1000);
  exitNow(1);
}

const shared = locate();

/** True in the single file: the stub's handler, records and trampoline are there. */
export const available = shared !== null;

// The runtime started with an environment of the stub's making; the child gets ours.
if (shared) useOriginalEnviron(Number(shared.view.getBigUint64(AT.envp, true)));

function bits(word: bigint): number[] {
  const out: number[] = [];
  for (let s = 1; s <= 64; s++) if (word & (1n << BigInt(s - 1))) out.push(s);
  return out;
}

/** The signal mask at the stub's first instruction (a libc sigset_t), or null. */
export function originalMask(): Uint8Array | null {
  if (!shared) return null;
  const set = new Uint8Array(SIGSET_BYTES);
  set.set(shared.bytes.subarray(AT.mask, AT.mask + 8), 0);
  return set;
}

/** The signals our parent left ignored, SIGPIPE and SIGXFSZ included, or null. */
export function originalIgnored(): number[] | null {
  return shared ? bits(shared.view.getBigUint64(AT.ignored, true)) : null;
}

/** Descriptors above 2 that were open at the first instruction, or null when unknown. */
export function inheritedFds(): number[] | null {
  if (!shared) return null;
  const n = shared.view.getUint32(AT.nfds, true);
  if (n === FDS_UNKNOWN) return null;
  const fds: number[] = [];
  for (let i = 0; i < n; i++) fds.push(shared.i32[AT.fds / 4 + i]!);
  return fds;
}

/**
 * The stub's sample of the runtime's file pages before the runtime started: how many it
 * looked at and how many were in the page cache; null when it did not measure (no stub,
 * or a memory limit far above every need).
 */
export function startResidency(): { pages: number; resident: number } | null {
  if (!shared) return null;
  const pages = shared.view.getUint32(AT.file_pages, true);
  return pages ? { pages, resident: shared.view.getUint32(AT.file_resident, true) } : null;
}

/**
 * The container's OOM-kill count as the stub read it before the runtime started, or
 * null: no stub, or no count to read (src/process/oom.ts).
 */
export function startOomKills(): number | null {
  if (!shared || !shared.view.getUint32(AT.oom_known, true)) return null;
  return shared.view.getUint32(AT.oom_kills, true);
}

// ---------------------------------------------------------------- signal intake

/**
 * What on_signal does with `sig` when there is a target: forward it as signal `as`
 * (a rewrite, or SIGSTOP for --setsid's terminal stops), "drop" it, or "queue" it for
 * JavaScript alone. Every delivery reaches JavaScript either way; a `quiet` one that
 * was forwarded or dropped only when something else wakes the event loop.
 */
export function setForwarding(sig: number, as: number | "queue" | "drop", quiet = false): void {
  if (!shared) return;
  const action = as === "queue" ? ACT_QUEUE : as === "drop" || as === 0 ? ACT_DROP : as;
  shared.bytes[AT.action + sig] = action | (quiet && action !== ACT_QUEUE ? ACT_QUIET : 0);
}

/**
 * Where on_signal forwards: a pid, a negative process group, or "queue" (no main
 * process, or a decision only JavaScript can make). One aligned 32-bit store, which the
 * handler reads atomically on any thread.
 */
export function publishTarget(target: number | "queue"): void {
  if (shared) shared.i32[AT.target / 4] = target === "queue" ? 0 : target;
}

/**
 * A target for `sig` alone, overriding publishTarget's (services mode: the one service
 * that takes `sig`), or "queue" to fall back to it.
 */
export function publishSignalTarget(sig: number, target: number | "queue"): void {
  if (shared) shared.i32[AT.sig_target / 4 + sig] = target === "queue" ? 0 : target;
}

/** onSignal's second argument: true when on_signal already forwarded (or dropped) it. */
export type NativeSignalHandler = (sig: number, forwarded: boolean) => void;

/**
 * Installs on_signal for `signals`, unblocks them on this thread, and calls `onSignal`
 * once per delivery from the event loop. Signals that arrived since the first
 * instruction are delivered by the unblocking itself. SIGCHLD last in a batch: stop
 * decisions come before what the reaping they go with decides.
 */
export function startIntake(signals: readonly number[], onSignal: NativeSignalHandler): void {
  const s = shared;
  if (!s) throw new Error("the native helper is not available");
  const [readEnd, writeEnd] = pipe(O_CLOEXEC | O_NONBLOCK);
  s.i32[AT.pipe / 4] = writeEnd;
  const seen = new Uint32Array(NSIG);
  const counts = s.u32.subarray(COUNT, COUNT + NSIG);
  seen.set(counts);
  const order = [...signals.filter((x) => x !== SIGCHLD), ...signals.filter((x) => x === SIGCHLD)];
  const drain = () => {
    for (const sig of order) {
      // Acquire (Atomics is sequentially consistent): a count seen here comes with
      // everything on_signal wrote before it, such as the watched record (takeWatched).
      const word = Atomics.load(counts, sig);
      const delta = (word - seen[sig]!) >>> 0;
      if (delta === 0) continue;
      seen[sig] = word;
      // deliveries << 16 | forwarded ones, as deltas (exact below 65535 per batch)
      let deliveries = Math.floor(delta / 0x10000);
      const forwarded = delta % 0x10000;
      // The handler reaped for each of them already: one look is as good as thousands
      // (the kernel coalesces SIGCHLD anyway; a storm of orphans sends one per exit).
      if (sig === SIGCHLD && deliveries > 1 && reapingNatively()) deliveries = 1;
      for (let i = 0; i < deliveries; i++) {
        try {
          onSignal(sig, i < forwarded);
        } catch (e) {
          // Reported like any handler's exception; the intake keeps going.
          queueMicrotask(() => {
            throw e;
          });
        }
      }
    }
  };
  const mask = sigset(signals);
  const handler = Number(s.view.getBigUint64(AT.handler, true));
  for (const sig of signals) setSignalHandler(sig, handler, mask, SA_RESTART);
  void (async () => {
    // The bytes only wake us; the counts say what happened.
    for await (const _ of Bun.file(readEnd).stream()) drain();
  })();
  sigprocmask(SIG_UNBLOCK, mask);
}

// ---------------------------------------------------------------- reaping

/**
 * The child whose exit status pidone needs (its main program), or 0 for none; with
 * `reap`, also lets on_signal reap every child itself on SIGCHLD, tini's way, from then
 * on (there is no turning it off: a handler already running on another thread could not
 * be told in time). Only for callers that need no status but this one's: not --wait-all,
 * -w, debug logging, --pidfile or services. Later calls only move the watch.
 *
 * The watch is stored before reaping is enabled, and the caller publishes it right
 * after spawning, before the event loop runs: until then the handler reaps nothing, and
 * a main child that ended meanwhile is left to pidone's own waitpid loop.
 *
 * With `exit` (codes: 256 entries, pidone's exit code for each of tini's codes, the
 * status or 128 + the signal), the handler that reaps `pid` also ends pidone with that
 * code, right away or (`alone`) once no child is left either: only for a caller with
 * nothing else to do at that point. The table and its mode come before the watch, which
 * the handler reads first.
 */
export function watchChild(pid: number, reap: boolean, exit: NativeExit | null = null): void {
  const s = shared;
  if (!s) return;
  if (exit && reap) s.bytes.set(exit.codes.subarray(0, 256), AT.exit_code);
  Atomics.store(s.u32, AT.exit_on_watched / 4, exit && reap ? (exit.alone ? EXIT_ALONE : EXIT_ALWAYS) : EXIT_NEVER);
  Atomics.store(s.i32, AT.watch / 4, pid);
  if (reap) Atomics.store(s.i32, REAP, 1);
}

export interface NativeExit {
  codes: Uint8Array;
  alone: boolean;
}

/** True once on_signal reaps (watchChild with `reap`). */
export function reapingNatively(): boolean {
  return shared !== null && Atomics.load(shared.i32, REAP) !== 0;
}

/**
 * Hands over the watched child's status if on_signal reaped it, once: call it before
 * pidone's own waitpid loop on every SIGCHLD. Returns whether there was one.
 *
 * The handler writes the record at most once per watchChild (it clears the watch as it
 * reaps), and pidone moves the watch only after taking the record, so this read and
 * clear needs no compare-and-swap.
 */
export function takeWatched(onReaped: (pid: number, rawStatus: number) => void): boolean {
  const s = shared;
  if (!s) return false;
  const pid = Atomics.load(s.i32, WATCHED_PID);
  if (pid === 0) return false;
  const status = Atomics.load(s.i32, WATCHED_STATUS);
  Atomics.store(s.i32, WATCHED_PID, 0);
  onReaped(pid, status);
  return true;
}

/** How many children on_signal has reaped (mod 2^32), or null without the stub. */
export function nativelyReaped(): number | null {
  return shared ? Atomics.load(shared.u32, AT.reaped / 4) : null;
}

// ---------------------------------------------------------------- the exec trampoline

/** The packed file itself: its stub recognises the marker and never starts the runtime. */
export const TRAMPOLINE_PATH = "/proc/self/exe";
const WORD = P.WORD;

export interface TrampolineSteps {
  /** setgroups, setresgid, setresuid, in that order. */
  user?: { uid: number; gid: number; groups: readonly number[] } | null;
  /** LISTEN_PID = the child's own pid (and LISTEN_PIDFDID removed). */
  listenPid?: boolean;
  /** TIOCSCTTY on fd 0: the child (a new session) takes the terminal pidone gave up. */
  takeTerminal?: boolean;
  /** Signals to leave ignored in the child, which posix_spawn could only reset to default. */
  ignore?: readonly number[];
}

/** True when posix_spawn alone cannot do what `steps` asks. */
export function needsTrampoline(steps: TrampolineSteps): boolean {
  return !!(steps.user || steps.listenPid || steps.takeTerminal || steps.ignore?.length);
}

/** argv for posix_spawn(TRAMPOLINE_PATH): the stub's options, "--", the program and its argv. */
export function trampolineArgv(
  steps: TrampolineSteps,
  reportFd: number,
  file: Uint8Array,
  search: boolean,
  argv: readonly Uint8Array[],
): Uint8Array[] {
  // The marker goes in argv[1]: binfmt_misc interpreters (qemu-user) replace argv[0].
  const words = ["pidone", P.MARKER, `${WORD.REPORT}${reportFd}`];
  if (search) words.push(WORD.SEARCH);
  if (steps.user) words.push(`${WORD.GROUPS}${steps.user.groups.join(",")}`, `${WORD.GID}${steps.user.gid}`, `${WORD.UID}${steps.user.uid}`);
  if (steps.listenPid) words.push(WORD.LISTEN_PID);
  if (steps.takeTerminal) words.push(WORD.CTTY);
  if (steps.ignore?.length) words.push(`${WORD.IGNORE}${steps.ignore.join(",")}`);
  words.push(WORD.END);
  return [...words.map((w) => new Uint8Array(Buffer.from(w, "latin1"))), file, ...argv];
}

const { STEP_NAMES, STEP_WARNING, RECORD_SIZE } = P;

export interface TrampolineReport {
  /** The system call that failed ("execve", "setresuid", ...). */
  step: string;
  errno: number;
  /** The trampoline carried on (taking the terminal is best effort). */
  warning: boolean;
}

/** The trampoline's reports: RECORD_SIZE-byte records {u32 step, s32 errno}. */
export function parseReports(bytes: Uint8Array): TrampolineReport[] {
  const out: TrampolineReport[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + RECORD_SIZE <= bytes.length; at += RECORD_SIZE) {
    const step = v.getUint32(at, true);
    out.push({ step: STEP_NAMES[step & 0xff] ?? `step ${step}`, errno: v.getInt32(at + 4, true), warning: (step & STEP_WARNING) !== 0 });
  }
  return out;
}
