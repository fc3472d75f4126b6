// The only module that imports bun:ffi. Everything above it gets typed functions
// that either return a result or throw a SyscallError naming the call and errno (a few,
// on hot paths or where failure is an answer, return -errno, null or a state instead,
// as their doc comments say).
// Large because it is one concern, the FFI boundary, kept whole: every symbol bound,
// the C structures pidone fills (sigset_t, posix_spawn's objects, struct sigaction) and
// every errno check live here, so the rest of pidone never makes a pointer and cannot
// forget to check a call.
import { dlopen, ptr, read, toArrayBuffer, CString, type Pointer } from "bun:ffi";

const symbols = {
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "ptr" },
  strlen: { args: ["ptr"], returns: "u64" },
  getpid: { args: [], returns: "i32" },
  kill: { args: ["i32", "i32"], returns: "i32" },
  sched_yield: { args: [], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  waitpid: { args: ["i32", "ptr", "i32"], returns: "i32" },
  prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
  signal: { args: ["i32", "ptr"], returns: "ptr" },
  pthread_sigmask: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  tcgetpgrp: { args: ["i32"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i64" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  _exit: { args: ["i32"], returns: "void" },
  dlsym: { args: ["ptr", "ptr"], returns: "ptr" },
  posix_spawn: { args: ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  posix_spawnp: { args: ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  posix_spawn_file_actions_init: { args: ["ptr"], returns: "i32" },
  posix_spawn_file_actions_destroy: { args: ["ptr"], returns: "i32" },
  posix_spawn_file_actions_adddup2: { args: ["ptr", "i32", "i32"], returns: "i32" },
  pipe2: { args: ["ptr", "i32"], returns: "i32" },
  posix_spawnattr_init: { args: ["ptr"], returns: "i32" },
  posix_spawnattr_destroy: { args: ["ptr"], returns: "i32" },
  posix_spawnattr_setflags: { args: ["ptr", "i16"], returns: "i32" },
  posix_spawnattr_setpgroup: { args: ["ptr", "i32"], returns: "i32" },
  posix_spawnattr_setsigmask: { args: ["ptr", "ptr"], returns: "i32" },
  posix_spawnattr_setsigdefault: { args: ["ptr", "ptr"], returns: "i32" },
  // the native helper (src/sys/native.ts)
  getauxval: { args: ["u64"], returns: "u64" },
  sigaction: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64" },
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
} as const;

// Bound on first use. bun:ffi's dlopen compiles a trampoline for every symbol it binds,
// on PID 1's start-up path; tini's mode never calls these (services, --setsid, errors do).
const laterSymbols = {
  strsignal: { args: ["i32"], returns: "ptr" },
  syscall: { args: ["i64", "i64", "i64", "i64", "i64"], returns: "i64" },
  isatty: { args: ["i32"], returns: "i32" },
  access: { args: ["ptr", "i32"], returns: "i32" },
  tcsetpgrp: { args: ["i32", "i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "u64"], returns: "i32" },
  dlopen: { args: ["ptr", "i32"], returns: "ptr" },
  posix_spawn_file_actions_addopen: { args: ["ptr", "i32", "ptr", "i32", "u32"], returns: "i32" },
  posix_spawn_file_actions_addclose: { args: ["ptr", "i32"], returns: "i32" },
  posix_spawn_file_actions_addchdir_np: { args: ["ptr", "ptr"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "u64"], returns: "i32" },
  getsid: { args: ["i32"], returns: "i32" },
  sigtimedwait: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  getrlimit: { args: ["i32", "ptr"], returns: "i32" },
  // the plain executable's /proc/self/fd listing (src/process/startup.ts)
  opendir: { args: ["ptr"], returns: "ptr" },
  readdir: { args: ["ptr"], returns: "ptr" },
  closedir: { args: ["ptr"], returns: "i32" },
  readlink: { args: ["ptr", "ptr", "u64"], returns: "i64" },
  // services mode's memory need: how much of our own file is in the page cache (src/process/limits.ts)
  mincore: { args: ["u64", "u64", "ptr"], returns: "i32" },
  // the control socket (src/control/server.ts): who is at the other end, and whether an
  // old socket file still has a listener
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  geteuid: { args: [], returns: "u32" },
  // readiness notifications (src/services/notify.ts): sd_notify's datagram sockets
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
  // the whole syscall(2): pwritev2 takes six arguments
  syscall6: { args: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], returns: "i64" },
} as const;

// glibc only (2.35+); musl has no equivalent, so it is bound on first use, and only
// once dlsym has found it.
const optionalSymbols = {
  posix_spawn_file_actions_addtcsetpgrp_np: { args: ["ptr", "i32"], returns: "i32" },
} as const;

// glibc's soname first (the runtime has it loaded already); musl names its libc after
// the dynamic loader. Those by absolute path: bun:ffi opens a bare name from the current
// directory when a file of that name is there.
const LIBC_NAMES = [
  "libc.so.6",
  `/lib/libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`,
  `/lib/ld-musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`,
];

/**
 * The C library could not be bound: each path tried and why. Raised by the first call
 * into libc instead of at module load, so that main()'s handler reports it as one line
 * (src/errors.ts) rather than the runtime printing the module's source.
 */
export class LibcUnavailable extends Error {
  override name = "LibcUnavailable";
  constructor(readonly tried: readonly { path: string; reason: string }[]) {
    super(`cannot load the C library: ${tried.map((t) => `${t.path}: ${t.reason}`).join("; ")}`);
  }
  /**
   * bun:ffi refuses to bind anything when JavaScriptCore runs without its JIT, which it
   * does when it cannot reserve the JIT's address range (a low RLIMIT_AS).
   */
  get jitless(): boolean {
    return this.tried.some((t) => /requires the JIT/i.test(t.reason));
  }
}

function openLibc() {
  const tried: { path: string; reason: string }[] = [];
  for (const name of LIBC_NAMES) {
    try {
      return { name, lib: dlopen(name, symbols) };
    } catch (e) {
      tried.push({ path: name, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  return new LibcUnavailable(tried);
}

const opened = openLibc();
/** Why libc could not be bound, or null: main() raises it before anything else runs. */
export const libcFailure = opened instanceof LibcUnavailable ? opened : null;
const libcName = opened instanceof LibcUnavailable ? "" : opened.name;
// Without libc every call raises the failure; the bound symbols otherwise, untouched on
// the hot paths.
const c: ReturnType<typeof dlopen<typeof symbols>>["symbols"] =
  opened instanceof LibcUnavailable ? unbound(opened) : opened.lib.symbols;

function unbound(failure: LibcUnavailable): never {
  return new Proxy({}, {
    get() {
      throw failure;
    },
  }) as never;
}

const bindLater = () => {
  if (libcFailure) throw libcFailure;
  const { syscall6, ...rest } = laterSymbols;
  return { ...dlopen(libcName, rest).symbols, syscall6: dlopen(libcName, { syscall: syscall6 }).symbols.syscall };
};
let laterLib: ReturnType<typeof bindLater> | null = null;
const later = () => (laterLib ??= bindLater());

// RTLD_DEFAULT (a null handle, glibc and musl alike): the global scope, where libc is.
export const hasTcsetpgrpFileAction =
  !libcFailure && c.dlsym(null, ptr(cString("posix_spawn_file_actions_addtcsetpgrp_np"))) !== null;
let optionalLib: ReturnType<typeof dlopen<typeof optionalSymbols>>["symbols"] | null = null;
const optional = () => (optionalLib ??= dlopen(libcName, optionalSymbols).symbols);

// ---------------------------------------------------------------- errors

export class SyscallError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
  ) {
    super(`${syscall} failed: ${strerror(errno)}`);
    this.name = "SyscallError";
  }
}

export const errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  EACCES: 13,
  ENOTDIR: 20,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EPIPE: 32,
  EFBIG: 27,
  ENOEXEC: 8,
  ENXIO: 6,
  EOPNOTSUPP: 95,
  ECONNREFUSED: 111,
} as const;

function lastErrno(): number {
  return read.i32(c.__errno_location() as Pointer, 0);
}

export function strerror(code: number): string {
  const p = c.strerror(code);
  return p ? new CString(p as Pointer).toString() : `errno ${code}`;
}

/** The C library's description of a signal, as tini prints it ("Terminated"). */
export function strsignal(sig: number): string {
  const p = later().strsignal(sig);
  return p ? new CString(p as Pointer).toString() : `signal ${sig}`;
}

/** Returns the result of a call that reports failure as -1 + errno, or throws. */
function check(syscall: string, result: number): number {
  if (result === -1) throw new SyscallError(syscall, lastErrno());
  return result;
}

// ---------------------------------------------------------------- C data helpers

// Plain typed arrays, not Buffer.alloc: each of Bun's Buffer functions costs a fraction
// of a millisecond the first time it runs, and these run on the way to the first spawn.

/** NUL-terminated copy of a byte string, kept alive by the caller. */
export function cString(bytes: Uint8Array | string): Uint8Array {
  const b = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  const out = new Uint8Array(b.length + 1);
  out.set(b, 0);
  return out;
}

/**
 * A NULL-terminated char*[] built from byte strings. The returned object owns the
 * backing memory; keep it referenced until the call that uses it returns.
 */
export class CStringArray {
  private readonly storage: Uint8Array;
  readonly pointers: BigUint64Array;
  constructor(items: readonly Uint8Array[]) {
    let total = 0;
    for (const it of items) total += it.length + 1;
    // The pointers below are kept until the call: storage that never moves (see waitStatus).
    this.storage = new Uint8Array(new ArrayBuffer(Math.max(total, 1)));
    this.pointers = new BigUint64Array(items.length + 1);
    const base = BigInt(ptr(this.storage));
    let off = 0;
    for (let i = 0; i < items.length; i++) {
      this.storage.set(items[i]!, off);
      this.pointers[i] = base + BigInt(off);
      off += items[i]!.length + 1;
    }
  }
  get address(): Pointer {
    return ptr(this.pointers);
  }
}

// Linux sigset_t is a bit array of unsigned longs; the kernel uses 64 bits, libc
// reserves 1024. Signal n is bit n-1.
export const SIGSET_BYTES = 128;
export function sigset(signals: Iterable<number>): Uint8Array {
  const set = new Uint8Array(SIGSET_BYTES);
  for (const s of signals) set[(s - 1) >> 3]! |= 1 << ((s - 1) & 7);
  return set;
}

// ---------------------------------------------------------------- process calls

export const getpid = (): number => c.getpid();

/**
 * sched_yield(2) after forwarding a signal: the CPU goes to the process the signal woke
 * (on a busy or single CPU it would otherwise wait for pidone's own bookkeeping; on an
 * idle machine it stays on this CPU instead of waking another). Never fails.
 */
export function yieldCpu(): void {
  c.sched_yield();
}

export function kill(pid: number, sig: number): void {
  check("kill", c.kill(pid, sig));
}

export const O_CLOEXEC = 0o2000000;
/** pipe2(flags): [read end, write end]. */
export function pipe(flags = O_CLOEXEC): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", c.pipe2(ptr(fds), flags));
  return [fds[0]!, fds[1]!];
}

export function close(fd: number): void {
  check("close", c.close(fd));
}

// Raw syscall numbers: glibc 2.36 has wrappers, musl does not; the numbers are the same
// on x86-64 and aarch64 for these two (asm-generic numbering since 5.3).
const SYS_pidfd_send_signal = 424;
const SYS_pidfd_open = 434;

/** A descriptor that names exactly one process, immune to pid reuse (Linux 5.3). */
export function pidfdOpen(pid: number): number {
  return check("pidfd_open", Number(later().syscall(BigInt(SYS_pidfd_open), BigInt(pid), 0n, 0n, 0n)));
}

export function pidfdSendSignal(pidfd: number, sig: number): void {
  check("pidfd_send_signal", Number(later().syscall(BigInt(SYS_pidfd_send_signal), BigInt(pidfd), BigInt(sig), 0n, 0n)));
}

/**
 * The reaper's hot path: waitpid without allocating. Returns the pid reaped, 0 when
 * WNOHANG found nothing, -1 when no child is left (ECHILD); the status is in
 * `waitStatus[0]` until the next call.
 */
// A kept ptr() needs storage that never moves: a small typed array keeps its elements in
// the JS heap until JavaScriptCore moves them into an ArrayBuffer (at the DFG tier-up of
// code that reads it, under a storm of SIGCHLD), after which waitpid would write where
// nobody reads and every status would read as the last one before the move. An explicit
// ArrayBuffer's storage stays put.
export const waitStatus = new Int32Array(new ArrayBuffer(4));
const waitStatusPtr = ptr(waitStatus);
export function waitpidRaw(pid: number, flags: number): number {
  for (;;) {
    const r = c.waitpid(pid, waitStatusPtr, flags);
    if (r >= 0) return r;
    const e = lastErrno();
    if (e === errno.EINTR) continue;
    if (e === errno.ECHILD) return -1;
    throw new SyscallError("waitpid", e);
  }
}

export type WaitResult = { pid: number; status: number } | null;
export const WNOHANG = 1;
/** waitpid(pid, &status, flags); null when WNOHANG found nothing; ECHILD is reported as "none". */
export function waitpid(pid: number, flags: number): WaitResult | "none" {
  const r = waitpidRaw(pid, flags);
  if (r < 0) return "none";
  return r === 0 ? null : { pid: r, status: waitStatus[0]! };
}

export const PR_SET_PDEATHSIG = 1;
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_GET_CHILD_SUBREAPER = 37;
export function prctl(option: number, arg2: number | bigint = 0): void {
  check("prctl", c.prctl(option, BigInt(arg2), 0n, 0n, 0n));
}
export function isChildSubreaper(): boolean {
  const out = new Int32Array(1);
  check("prctl", c.prctl(PR_GET_CHILD_SUBREAPER, BigInt(ptr(out)), 0n, 0n, 0n));
  return out[0] === 1;
}

export function ignoreSignal(sig: number): void {
  // SIG_ERR is (void*)-1; SIG_IGN is (void*)1.
  const prev = c.signal(sig, 1 as unknown as Pointer) as unknown as number | null;
  if (prev === -1 || (typeof prev === "number" && prev === Number(0xffffffffffffffffn))) {
    throw new SyscallError("signal", lastErrno());
  }
}

export const SIG_BLOCK = 0;
export const SIG_UNBLOCK = 1;
export const SIG_SETMASK = 2;
export function sigprocmask(how: number, set: Uint8Array | null): Uint8Array {
  const old = new Uint8Array(SIGSET_BYTES);
  const r = c.pthread_sigmask(how, set ? ptr(set) : null, ptr(old));
  if (r !== 0) throw new SyscallError("pthread_sigmask", r);
  return old;
}

export const isatty = (fd: number): boolean => later().isatty(fd) === 1;

const X_OK = 1;
/** access(path, X_OK) == 0 */
export function isExecutable(path: Uint8Array): boolean {
  const name = cString(path);
  return later().access(ptr(name), X_OK) === 0;
}

export function tcgetpgrp(fd: number): number {
  return check("tcgetpgrp", c.tcgetpgrp(fd));
}
/** tcgetpgrp(3) without the error: -1 when `fd` is no terminal of ours. */
export function tcgetpgrpRaw(fd: number): number {
  return c.tcgetpgrp(fd);
}
export function tcsetpgrp(fd: number, pgrp: number): void {
  check("tcsetpgrp", later().tcsetpgrp(fd, pgrp));
}

const F_SETFD = 2;
const FD_CLOEXEC = 1;
export const O_NONBLOCK = 0o4000;

// ---------------------------------------------------------------- output

const pollBuf = new Int32Array(2); // struct pollfd { int fd; short events; short revents; }
const POLLOUT = 4;
/**
 * Writes without ever blocking for long: a full pipe or terminal is polled for
 * `timeoutMs` and the message dropped after that. Returns false when dropped.
 */
export function writeAll(fd: number, data: Uint8Array, timeoutMs: number): boolean {
  return withWriteSignalsBlocked(() => writeAllNow(fd, data, timeoutMs));
}

function writeAllNow(fd: number, data: Uint8Array, timeoutMs: number): number {
  let off = 0;
  while (off < data.length) {
    pollBuf[0] = fd;
    pollBuf[1] = POLLOUT;
    const ready = c.poll(ptr(pollBuf), 1n, timeoutMs);
    if (ready <= 0) return -1; // timeout, or EINTR: drop rather than stall PID 1
    const revents = (pollBuf[1]! >>> 16) & 0xffff;
    if (revents & ~POLLOUT) return -1; // POLLERR/POLLHUP/POLLNVAL: nobody is reading
    const n = Number(c.write(fd, ptr(data, off), BigInt(data.length - off)));
    if (n < 0) {
      const e = lastErrno();
      if (e === errno.EINTR || e === errno.EAGAIN) continue;
      return -e;
    }
    off += n;
  }
  return 0;
}

const WRITE_SIGNALS = sigset([13, 25]); // SIGPIPE, SIGXFSZ
const noWait = new BigInt64Array(2); // struct timespec { 0, 0 }
/**
 * Runs `write`, which returns -errno of a write(2) that failed (else anything >= 0), with
 * SIGPIPE and SIGXFSZ blocked on this thread; true when it returned >= 0.
 * Why: pidone catches those two to forward them, and the kernel sends them to the thread
 * whose write(2) hit a pipe nobody reads (EPIPE) or RLIMIT_FSIZE (EFBIG): unblocked, our
 * own failed write would reach the child or the services as a signal sent to pidone.
 * Blocked, the one our write raised waits on this thread and is taken back here.
 */
export function withWriteSignalsBlocked(write: () => number): boolean {
  const old = new Uint8Array(SIGSET_BYTES);
  c.pthread_sigmask(SIG_BLOCK, ptr(WRITE_SIGNALS), ptr(old)); // fails only for a bad `how`
  try {
    const r = write();
    takeBackWriteSignal(r);
    return r >= 0;
  } finally {
    c.pthread_sigmask(SIG_SETMASK, ptr(old), null);
  }
}

/**
 * After a write(2) that returned `result` (-errno on failure) on a thread that blocks
 * SIGPIPE and SIGXFSZ: takes back the one an EPIPE or EFBIG raised, which would otherwise
 * stay pending on the thread and be delivered once the thread unblocks it (or, for a
 * worker's thread, when the runtime tears the thread down).
 */
export function takeBackWriteSignal(result: number): void {
  if (result === -errno.EPIPE || result === -errno.EFBIG) later().sigtimedwait(ptr(WRITE_SIGNALS), null, ptr(noWait));
}

export function exit(code: number): never {
  c._exit(code);
  throw new Error("unreachable");
}

/**
 * A whole small file (a /proc entry) through open/read/close: the first use of node:fs
 * costs milliseconds of start-up, which tini's mode does not need to pay. Null when it
 * cannot be read; throws when out of descriptors, which says nothing about the file.
 */
export function readSmallFile(path: string): Uint8Array | null {
  const name = cString(path);
  const fd = c.open(ptr(name), O_CLOEXEC /* | O_RDONLY */, 0);
  if (fd < 0) return outOfDescriptors("open", lastErrno());
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const buf = new Uint8Array(4096);
      const n = Number(c.read(fd, ptr(buf), 4096n));
      if (n < 0) {
        if (lastErrno() === errno.EINTR) continue;
        return null;
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
    }
  } finally {
    c.close(fd);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.length;
  }
  return out;
}

/**
 * The names in a directory, "." and ".." left out; null when it cannot be opened (throws
 * when out of descriptors, as readSmallFile does). Through libc rather than node:fs,
 * whose first use costs milliseconds of start-up.
 */
export function listDirectory(path: string): string[] | null {
  const l = later();
  const dir = l.opendir(ptr(cString(path)));
  if (!dir) return outOfDescriptors("opendir", lastErrno());
  const names: string[] = [];
  try {
    for (let entry = l.readdir(dir); entry; entry = l.readdir(dir)) {
      // struct dirent, 64-bit glibc and musl alike: d_ino, d_off, d_reclen (2), d_type (1), d_name
      const name = new CString(entry as Pointer, 19).toString();
      if (name !== "." && name !== "..") names.push(name);
    }
  } finally {
    l.closedir(dir);
  }
  return names;
}

const ROOT = cString("/");
/**
 * Opens up to `count` descriptors and closes them again: how many could be made, and the
 * errno that stopped it (0 when all were). Pipes, two at a time; the root directory for
 * an odd last one, or the one left when a pipe found only one.
 */
export function spareDescriptors(count: number): { made: number; errno: number } {
  const made: number[] = [];
  const pair = new Int32Array(2);
  let failure = 0;
  while (count - made.length >= 2) {
    if (c.pipe2(ptr(pair), O_CLOEXEC) !== 0) {
      failure = lastErrno();
      break;
    }
    made.push(pair[0]!, pair[1]!);
  }
  if (made.length < count && (failure === 0 || failure === errno.EMFILE)) {
    const fd = c.open(ptr(ROOT), O_CLOEXEC /* | O_RDONLY */, 0);
    if (fd >= 0) made.push(fd);
    else failure = lastErrno();
  }
  for (const fd of made) c.close(fd);
  return { made: made.length, errno: made.length >= count ? 0 : failure };
}

/** Null for a file that cannot be opened; a SyscallError when no descriptor could be made. */
function outOfDescriptors(syscall: string, e: number): null {
  if (e === errno.EMFILE || e === errno.ENFILE) throw new SyscallError(syscall, e);
  return null;
}

const RLIMIT_NOFILE = 7;
const rlimitOut = new BigUint64Array(2); // struct rlimit { rlim_t cur, max; }
/** RLIMIT_NOFILE's soft limit (getrlimit(2) needs no descriptor); null when unlimited or unknown. */
export function descriptorLimit(): number | null {
  if (libcFailure || later().getrlimit(RLIMIT_NOFILE, ptr(rlimitOut)) !== 0) return null;
  return rlimitOut[0]! >= 1n << 62n ? null : Number(rlimitOut[0]!);
}

/** readlink(2) as a UTF-8 string; null when it fails. */
export function readLink(path: string): string | null {
  const buf = new Uint8Array(4096);
  const n = Number(later().readlink(ptr(cString(path)), ptr(buf), BigInt(buf.length)));
  return n < 0 ? null : Buffer.from(buf.buffer, 0, n).toString();
}

// ---------------------------------------------------------------- environ

const RTLD_NOW = 2;
/**
 * Where the environment pidone was started with lives when the runtime was given
 * another one (the single file's stub: src/sys/native.ts); null: libc's `environ`.
 */
let originalEnviron: number | null = null;
export function useOriginalEnviron(address: number): void {
  originalEnviron = address;
}
/** The process environment as libc holds it, byte for byte (process.env is lossy UTF-8). */
export function readEnviron(): Uint8Array[] {
  if (originalEnviron !== null) return readCStringArray(originalEnviron);
  const self = later().dlopen(null, RTLD_NOW);
  if (!self) throw new Error("dlopen(NULL) failed");
  const name = cString("environ");
  const sym = c.dlsym(self, ptr(name));
  if (!sym) throw new Error("dlsym(environ) failed");
  const envp = read.ptr(sym as Pointer, 0) as unknown as number;
  return readCStringArray(envp);
}

/** A NULL-terminated char *[] at `address`, each string copied out byte for byte. */
export function readCStringArray(address: number): Uint8Array[] {
  const envp = address;
  const out: Uint8Array[] = [];
  if (!envp) return out;
  for (let i = 0; ; i++) {
    const entry = read.ptr(envp as unknown as Pointer, i * 8) as unknown as number;
    if (!entry) break;
    const len = Number(c.strlen(entry as unknown as Pointer));
    out.push(new Uint8Array(toArrayBuffer(entry as unknown as Pointer, 0, len).slice(0)));
  }
  return out;
}

// ---------------------------------------------------------------- posix_spawn

export const POSIX_SPAWN_SETPGROUP = 0x02;
export const POSIX_SPAWN_SETSID = 0x80;
export const POSIX_SPAWN_SETSIGDEF = 0x04;
export const POSIX_SPAWN_SETSIGMASK = 0x08;

export interface SpawnRequest {
  /** Path (with '/') or a name searched in PATH when `search` is set. */
  file: Uint8Array;
  search: boolean;
  argv: readonly Uint8Array[];
  envp: readonly Uint8Array[];
  /** Put the child in a new process group (pgid = its pid). */
  newProcessGroup: boolean;
  /** Put the child in a new session (and so a new group); it has no controlling terminal then. */
  newSession?: boolean;
  /** Make the child's group the terminal's foreground group (fd 0) before it runs. */
  foreground: boolean;
  sigmask: Uint8Array;
  sigdefault: Uint8Array;
  /** Descriptors passed to the child: FD_CLOEXEC is cleared on them in the child only. */
  keepFds: readonly number[];
  /** Applied in order after keepFds: redirections and the working directory. */
  actions?: readonly FileAction[];
}

export type FileAction =
  | { kind: "dup2"; from: number; to: number }
  | { kind: "open"; fd: number; path: string; flags: number; mode?: number }
  | { kind: "chdir"; path: string };

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;

// Opaque libc objects: glibc's posix_spawnattr_t is 336 bytes, file_actions 80;
// musl's are smaller. Over-allocate so either libc fits.
const ATTR_BYTES = 1024;
const ACTIONS_BYTES = 1024;

/** posix_spawn(p); returns the child's pid, or throws SyscallError with the exec errno. */
export function spawn(req: SpawnRequest): number {
  const attr = new Uint8Array(ATTR_BYTES);
  const actions = new Uint8Array(ACTIONS_BYTES);
  const rc = (name: string, r: number) => {
    if (r !== 0) throw new SyscallError(name, r);
  };
  rc("posix_spawnattr_init", c.posix_spawnattr_init(ptr(attr)));
  rc("posix_spawn_file_actions_init", c.posix_spawn_file_actions_init(ptr(actions)));
  try {
    let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (req.newSession) {
      flags |= POSIX_SPAWN_SETSID;
    } else if (req.newProcessGroup) {
      flags |= POSIX_SPAWN_SETPGROUP;
      rc("posix_spawnattr_setpgroup", c.posix_spawnattr_setpgroup(ptr(attr), 0));
    }
    rc("posix_spawnattr_setflags", c.posix_spawnattr_setflags(ptr(attr), flags));
    rc("posix_spawnattr_setsigmask", c.posix_spawnattr_setsigmask(ptr(attr), ptr(req.sigmask)));
    // glibc's posix_spawn leaves its two internal signals (32, 33) ignored in the child
    // unless they are in the default set; a program started by tini has them at default.
    const sigdefault = new Uint8Array(req.sigdefault);
    sigdefault[3]! |= 0x80;
    sigdefault[4]! |= 0x01;
    rc("posix_spawnattr_setsigdefault", c.posix_spawnattr_setsigdefault(ptr(attr), ptr(sigdefault)));
    // Descriptors glibc will not name in a file action (at or above RLIMIT_NOFILE: EBADF)
    // are passed by clearing FD_CLOEXEC here for the moment of the spawn instead.
    const clearHere: number[] = [];
    for (const fd of req.keepFds) {
      // dup2(fd, fd) in the child clears FD_CLOEXEC (glibc >= 2.29, musl >= 1.1.24).
      const r = c.posix_spawn_file_actions_adddup2(ptr(actions), fd, fd);
      if (r === errno.EBADF) clearHere.push(fd);
      else rc("posix_spawn_file_actions_adddup2", r);
    }
    const keep: Uint8Array[] = []; // paths must outlive the spawn call
    for (const a of req.actions ?? []) {
      if (a.kind === "dup2") {
        rc("posix_spawn_file_actions_adddup2", c.posix_spawn_file_actions_adddup2(ptr(actions), a.from, a.to));
      } else if (a.kind === "open") {
        const path = cString(a.path);
        keep.push(path);
        rc(
          "posix_spawn_file_actions_addopen",
          later().posix_spawn_file_actions_addopen(ptr(actions), a.fd, ptr(path), a.flags, a.mode ?? 0),
        );
      } else {
        const path = cString(a.path);
        keep.push(path);
        rc("posix_spawn_file_actions_addchdir_np", later().posix_spawn_file_actions_addchdir_np(ptr(actions), ptr(path)));
      }
    }
    if (req.foreground && hasTcsetpgrpFileAction) {
      rc(
        "posix_spawn_file_actions_addtcsetpgrp_np",
        optional().posix_spawn_file_actions_addtcsetpgrp_np(ptr(actions), 0),
      );
    }
    const pidOut = new Int32Array(1);
    const file = cString(req.file);
    const argv = new CStringArray(req.argv);
    const envp = new CStringArray(req.envp);
    const fn = req.search ? c.posix_spawnp : c.posix_spawn;
    for (const fd of clearHere) later().fcntl(fd, F_SETFD, 0n);
    // posix_spawn returns after the child has exec'd (CLONE_VFORK), so the flag can go
    // straight back: no later spawn inherits these by accident.
    const r = fn(ptr(pidOut), ptr(file), ptr(actions), ptr(attr), argv.address, envp.address);
    for (const fd of clearHere) later().fcntl(fd, F_SETFD, BigInt(FD_CLOEXEC));
    keep.length = 0;
    if (r !== 0) throw new SyscallError(req.search ? "posix_spawnp" : "posix_spawn", r);
    return pidOut[0]!;
  } finally {
    c.posix_spawn_file_actions_destroy(ptr(actions));
    c.posix_spawnattr_destroy(ptr(attr));
  }
}

// ---------------------------------------------------------------- service output (non-blocking writes)
// The multiplexer must never block in write(2) on fd 1/2, yet must not set O_NONBLOCK on
// them (the open file description is shared with our parent and others). So: ask poll()
// with a zero timeout, then write only what cannot block.

const writablePoll = new Int32Array(2);
const POLLERR_HUP_NVAL = 0x8 | 0x10 | 0x20;
/** poll(fd, POLLOUT, 0): "ready", "full" (a write would block) or "gone" (error, no reader, bad fd). */
export function pollWritable(fd: number): "ready" | "full" | "gone" {
  writablePoll[0] = fd;
  writablePoll[1] = POLLOUT;
  const r = c.poll(ptr(writablePoll), 1n, 0);
  if (r < 0) return lastErrno() === errno.EINTR ? "full" : "gone";
  if (r === 0) return "full";
  const revents = (writablePoll[1]! >>> 16) & 0xffff;
  if (revents & POLLERR_HUP_NVAL) return "gone";
  return "ready";
}

/** One write(2) of data[offset, offset+length): the count written, or -errno. */
export function writeSome(fd: number, data: Uint8Array, offset: number, length: number): number {
  const n = Number(c.write(fd, ptr(data, offset), BigInt(length)));
  return n < 0 ? -lastErrno() : n;
}

// ---------------------------------------------------------------- the native helper's needs
// Raw memory and calls for src/sys/native.ts, the one module that knows the single
// file's stub; nothing else should need these.

/** getauxval(3): 0 when the auxiliary vector has no entry of that type. */
export function getauxval(type: number): number {
  // Without libc there is nothing the native helper could do: main() reports why.
  if (libcFailure) return 0;
  return Number(c.getauxval(BigInt(type)));
}

/** The bytes at `address` as an ArrayBuffer over that memory (no copy): typed-array stores write through. */
export function memoryView(address: number, length: number): ArrayBuffer {
  return toArrayBuffer(address as unknown as Pointer, 0, length);
}

export const SA_RESTART = 0x10000000;
// glibc's struct sigaction, the same on x86-64 and aarch64: handler, sa_mask (128
// bytes), sa_flags (int), sa_restorer.
const SIGACTION_BYTES = 152;
/** sigaction(sig, { handler at `handler`, sa_mask = mask, flags }): a C function's address. */
export function setSignalHandler(sig: number, handler: number, mask: Uint8Array, flags: number): void {
  const act = new Uint8Array(SIGACTION_BYTES);
  const v = new DataView(act.buffer);
  v.setBigUint64(0, BigInt(handler), true);
  act.set(mask.subarray(0, SIGSET_BYTES), 8);
  v.setInt32(8 + SIGSET_BYTES, flags, true);
  check("sigaction", c.sigaction(sig, ptr(act), null));
}

/** One read(2) into buf: the count (0 at end of file), or -errno. */
export function readSome(fd: number, buf: Uint8Array): number {
  const n = Number(c.read(fd, ptr(buf), BigInt(buf.length)));
  return n < 0 ? -lastErrno() : n;
}

export const POLLIN = 1;
/**
 * poll(2) over `count` entries of `fds`, a struct pollfd array as Int32Array pairs: [fd,
 * events | revents << 16]. Blocks up to timeoutMs (-1: no limit). The count ready, or -errno.
 */
export function pollFds(fds: Int32Array, count: number, timeoutMs: number): number {
  const r = c.poll(ptr(fds), BigInt(count), timeoutMs);
  return r < 0 ? -lastErrno() : r;
}

export const TIOCNOTTY = 0x5422;
export function ioctl(fd: number, request: number, arg = 0): void {
  check("ioctl", later().ioctl(fd, BigInt(request), BigInt(arg)));
}

export function getsid(pid: number): number {
  return check("getsid", later().getsid(pid));
}

const F_SETPIPE_SZ = 1031;
/** fcntl(F_SETPIPE_SZ): the pipe's capacity (rounded up to pages by the kernel); returns the new size. */
export function setPipeSize(fd: number, bytes: number): number {
  return check("fcntl", later().fcntl(fd, F_SETPIPE_SZ, BigInt(bytes)));
}

// pwritev2(RWF_NOWAIT): a write that returns EAGAIN (or a short count) instead of waiting,
// per call, without O_NONBLOCK on the shared open file description. Pipes accept it since
// Linux 6.x, sockets earlier; elsewhere it fails with EOPNOTSUPP and callers fall back to
// pollWritable(). Through the raw syscall: musl has no pwritev2 wrapper. Its offset comes
// in two halves (only the low one counts on 64-bit); -1 means "at the file position".
const SYS_pwritev2 = process.arch === "arm64" ? 287 : 328;
const RWF_NOWAIT = 0x8;
const nowaitIov = new BigUint64Array(2); // struct iovec { void *base; size_t len; }
/** write(2) of data[offset, offset+length) that never waits: the count written, or -errno (-EAGAIN: full). */
export function writeNoWait(fd: number, data: Uint8Array, offset: number, length: number): number {
  nowaitIov[0] = BigInt(ptr(data, offset));
  nowaitIov[1] = BigInt(length);
  const n = Number(later().syscall6(BigInt(SYS_pwritev2), BigInt(fd), BigInt(ptr(nowaitIov)), 1n, -1n, 0n, BigInt(RWF_NOWAIT)));
  return n < 0 ? -lastErrno() : n;
}

const F_GETPIPE_SZ = 1032;
const FIONREAD = 0x541b;
const unreadOut = new Int32Array(1);
/** A pipe's capacity and the bytes in it not yet read (either end; ioctl FIONREAD). */
export function pipeFill(fd: number): { capacity: number; unread: number } {
  const capacity = check("fcntl", later().fcntl(fd, F_GETPIPE_SZ, 0n));
  check("ioctl", later().ioctl(fd, BigInt(FIONREAD), BigInt(ptr(unreadOut))));
  return { capacity, unread: unreadOut[0]! };
}

const mincoreOut = new Uint8Array(new ArrayBuffer(1));
/**
 * mincore(2) on the one page at `address` (page-aligned) of a file mapping: is that page
 * of the file in the page cache? Nothing is faulted in. null when the call fails.
 */
export function pageCached(address: number, pageSize: number): boolean | null {
  if (later().mincore(BigInt(address), BigInt(pageSize), ptr(mincoreOut)) !== 0) return null;
  return (mincoreOut[0]! & 1) === 1;
}

// ---------------------------------------------------------------- Unix sockets

export const geteuid = (): number => later().geteuid();

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
// struct ucred { pid_t pid; uid_t uid; gid_t gid; }: the kernel keeps a pointer to neither.
const ucred = new Int32Array(new ArrayBuffer(12));
const ucredLength = new Uint32Array(new ArrayBuffer(4));
/** The credentials the peer of a connected Unix socket had when it connected (SO_PEERCRED). */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  ucredLength[0] = 12;
  check("getsockopt", later().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptr(ucred), ptr(ucredLength)));
  return { pid: ucred[0]!, uid: ucred[1]! >>> 0, gid: ucred[2]! >>> 0 };
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
/** sun_path's size: a path must fit with its NUL. */
export const UNIX_PATH_MAX = 108;
/** struct sockaddr_un for `address`: a path, or "@name" for the abstract namespace. */
function unixAddress(address: string): { addr: Uint8Array; length: number } | null {
  const abstract = address.startsWith("@");
  const name = Buffer.from(abstract ? address.slice(1) : address);
  if (name.length === 0 || name.length + 1 > UNIX_PATH_MAX) return null;
  const addr = new Uint8Array(new ArrayBuffer(2 + UNIX_PATH_MAX));
  addr[0] = AF_UNIX;
  addr.set(name, abstract ? 3 : 2);
  // An abstract name is exactly its bytes (no NUL); a path ends with one.
  return { addr, length: 2 + name.length + 1 };
}

/**
 * Connects to the Unix stream socket at `path` and hangs up at once: 0 when something
 * listens there, else the errno (ECONNREFUSED: a socket file nobody listens on).
 */
export function probeUnixSocket(path: string): number {
  const a = unixAddress(path);
  if (!a) return errno.EINVAL;
  const fd = later().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return lastErrno();
  const r = later().connect(fd, ptr(a.addr), a.length);
  const e = r === 0 ? 0 : lastErrno();
  c.close(fd);
  return e;
}

// ---------------------------------------------------------------- datagram sockets (sd_notify)
// Bun has no Unix datagram sockets, so sd_notify's are made and read here. They are
// non-blocking and wake pidone through the kernel's SIGIO (wakeOnInput), never a thread.

const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SO_PASSCRED = 16;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const MSG_CMSG_CLOEXEC = 0x40000000;

/**
 * A non-blocking datagram socket bound at `path` that receives its senders'
 * credentials with every message (SO_PASSCRED). Throws SyscallError.
 */
export function bindDatagramSocket(path: string): number {
  const a = unixAddress(path);
  if (!a || path.startsWith("@")) throw new SyscallError("bind", errno.EINVAL);
  const fd = check("socket", later().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  try {
    const one = new Int32Array([1]);
    check("setsockopt", later().setsockopt(fd, SOL_SOCKET, SO_PASSCRED, ptr(one), 4));
    check("bind", later().bind(fd, ptr(a.addr), a.length));
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return fd;
}

const F_GETFL = 3;
const F_SETFL = 4;
const F_SETOWN = 8;
const O_ASYNC = 0o20000;
/**
 * The kernel raises SIGIO in pidone when `fd` (a socket or a pipe's read end) has input
 * or its writers are gone: pidone sleeps in its event loop, no thread waits on the
 * descriptor. Also makes it non-blocking. Throws SyscallError.
 */
export function wakeOnInput(fd: number): void {
  check("fcntl", later().fcntl(fd, F_SETOWN, BigInt(c.getpid())));
  const flags = check("fcntl", later().fcntl(fd, F_GETFL, 0n));
  check("fcntl", later().fcntl(fd, F_SETFL, BigInt(flags | O_ASYNC | O_NONBLOCK)));
}

const F_DUPFD_CLOEXEC = 1030;
/** fcntl(F_DUPFD_CLOEXEC): a copy of `fd` at the lowest free number not below `min`. */
export function dupAtLeast(fd: number, min: number): number {
  return check("fcntl", later().fcntl(fd, F_DUPFD_CLOEXEC, BigInt(min)));
}

/** One datagram: its bytes and who sent it (the kernel's SCM_CREDENTIALS; pid 0 when it named none). */
export interface Datagram {
  data: Uint8Array;
  pid: number;
  uid: number;
  gid: number;
  /** Longer than the buffer: cut, to be ignored. */
  truncated: boolean;
}

// sd_notify's messages fit a page (systemd refuses longer ones). Kept pointers into
// explicit ArrayBuffers: the iovec and msghdr hold them across the call.
const DATAGRAM_MAX = 4096;
const CONTROL_MAX = 4096; // credentials and up to SCM_MAX_FD (253) descriptors
const dgramData = new Uint8Array(new ArrayBuffer(DATAGRAM_MAX));
const dgramControl = new Uint8Array(new ArrayBuffer(CONTROL_MAX));
const dgramIov = new BigUint64Array(new ArrayBuffer(16)); // struct iovec
const dgramHeader = new BigUint64Array(new ArrayBuffer(56)); // struct msghdr
const dgramControlView = new DataView(dgramControl.buffer);

/**
 * recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC) of one datagram; null when none is waiting.
 * Every descriptor the message carries (SCM_RIGHTS) is closed at once: systemd-notify
 * sends one with BARRIER=1 and waits for pidone to close it. Throws SyscallError.
 */
export function receiveDatagram(fd: number): Datagram | null {
  dgramIov[0] = BigInt(ptr(dgramData));
  dgramIov[1] = BigInt(DATAGRAM_MAX);
  dgramHeader.fill(0n);
  dgramHeader[2] = BigInt(ptr(dgramIov)); // msg_iov
  dgramHeader[3] = 1n; // msg_iovlen
  dgramHeader[4] = BigInt(ptr(dgramControl)); // msg_control
  dgramHeader[5] = BigInt(CONTROL_MAX); // msg_controllen
  let n: number;
  for (;;) {
    n = Number(later().recvmsg(fd, ptr(dgramHeader), MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC));
    if (n >= 0) break;
    const e = lastErrno();
    if (e === errno.EINTR) continue;
    if (e === errno.EAGAIN) return null;
    throw new SyscallError("recvmsg", e);
  }
  const out: Datagram = { data: dgramData.slice(0, Math.min(n, DATAGRAM_MAX)), pid: 0, uid: -1, gid: -1, truncated: n > DATAGRAM_MAX };
  // struct cmsghdr { size_t len; int level; int type; data aligned to 8 }
  const controlLength = Number(dgramHeader[5]!);
  for (let at = 0; at + 16 <= controlLength; ) {
    const len = Number(dgramControlView.getBigUint64(at, true));
    if (len < 16 || at + len > controlLength) break;
    const level = dgramControlView.getInt32(at + 8, true);
    const type = dgramControlView.getInt32(at + 12, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = at + 16; p + 4 <= at + len; p += 4) c.close(dgramControlView.getInt32(p, true));
    } else if (level === SOL_SOCKET && type === SCM_CREDENTIALS && len >= 28) {
      out.pid = dgramControlView.getInt32(at + 16, true);
      out.uid = dgramControlView.getUint32(at + 20, true);
      out.gid = dgramControlView.getUint32(at + 24, true);
    }
    at += (len + 7) & ~7;
  }
  return out;
}

/**
 * One datagram to the socket at `address` (a path, or "@name": abstract), from a
 * socket of its own: 0, or the errno.
 */
export function sendDatagram(address: string, data: Uint8Array): number {
  const a = unixAddress(address);
  if (!a) return errno.EINVAL;
  const fd = later().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return lastErrno();
  const body = new Uint8Array(new ArrayBuffer(Math.max(1, data.length)));
  body.set(data);
  const n = Number(later().sendto(fd, ptr(body), BigInt(data.length), MSG_DONTWAIT, ptr(a.addr), a.length));
  const e = n < 0 ? lastErrno() : 0;
  c.close(fd);
  return e;
}
