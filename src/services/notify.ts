// Services that say themselves when they are ready: sd_notify (`ready = { notify = true }`)
// and s6's notification descriptor (`ready = { fd = N }`); and pidone saying it in turn to
// the manager that started it (an inherited NOTIFY_SOCKET: Podman's --sdnotify=container).
//
// Nothing here waits on a descriptor. Each socket and readiness pipe is non-blocking and
// owned for SIGIO (libc.ts wakeOnInput): the kernel signals pidone when a datagram or a
// line arrives (or a pipe's writers are gone), services mode's signal handler calls
// drain(), and drain() reads until EAGAIN. Idle, a notify service costs no wake-up.
// SIGIO itself rather than a real-time signal (F_SETSIG): the plain -glibc file's
// process.on catches SIGIO but no real-time signal, and the kernel falls back to SIGIO
// whenever its real-time queue is full anyway.
//
// Who may speak for a service (README: "Readiness protocols"): the socket is in a
// directory only the service's uid (and root) may enter, and each message's sender, as
// the kernel reports it (SCM_CREDENTIALS), must have the service's uid or root's, and a
// pid that is the service's main process or leads to it (its parents, or its process
// group). A sender that has already exited can no longer be placed: its message is
// accepted when its uid is the service's own.
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { LEVEL, log } from "../log/logger.ts";
import { parentOf, processGroupOf } from "../process/tree.ts";
import {
  bindDatagramSocket,
  close,
  dupAtLeast,
  errno,
  geteuid,
  getpid,
  pipe,
  probeUnixSocket,
  readSome,
  receiveDatagram,
  sendDatagram,
  strerror,
  wakeOnInput,
  SyscallError,
  UNIX_PATH_MAX,
  O_CLOEXEC,
  type Datagram,
} from "../sys/libc.ts";
import type { ServiceSpec } from "../config/index.ts";
import type { ServiceRunner } from "./service.ts";

/** Where the services' sockets go, in order: /run, else memory-backed /dev/shm, else /tmp. */
const PARENTS = ["/run", "/dev/shm", "/tmp"];
const DIR_NAME = "pidone-notify";
const SOCKET_NAME = "notify.sock";
/** A run directory left by a pidone that did not exit cleanly, once older than this and silent, is removed. */
const STALE_MS = 60_000;
/** Datagrams read from one socket per wake before yielding to the event loop. */
const BATCH = 256;
/** The inherited NOTIFY_SOCKET and the watchdog variables belong to pidone's own manager. */
export const MANAGER_VARIABLES = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

type Event = (service: string | null, message: string, fields?: Record<string, string | number | boolean | null>) => void;

interface Socket {
  fd: number;
  path: string;
}

/** What the service's start needs: variables, descriptors to pass, or why it cannot start. */
export type Prepared =
  | { ok: true; env: Record<string, string>; passFds: { from: number; to: number }[]; launched(started: boolean): void }
  | { ok: false; message: string };

export class Notifications {
  /** This run's directory (PARENT/pidone-notify/run-XXXXXX), or why there is none. */
  private runDir: string | { why: string } | null = null;
  private readonly sockets = new Map<ServiceRunner, Socket | { why: string }>();
  /** Readiness pipes' read ends, for the current run of each fd service (closed at its end of file). */
  private readonly pipes = new Map<ServiceRunner, number>();
  /** Pipes whose newline came: what follows is read and dropped. */
  private readonly said = new Set<ServiceRunner>();
  private draining = false;

  constructor(
    private readonly runners: readonly ServiceRunner[],
    private readonly event: Event,
  ) {}

  /** True when some service speaks sd_notify or has a notification fd: services mode then keeps SIGIO. */
  static wanted(specs: readonly ServiceSpec[]): boolean {
    return specs.some((s) => s.ready?.kind === "notify" || s.ready?.kind === "fd");
  }

  /** Makes each notify service's socket, before any service starts. A failure is kept: that service's start says it. */
  open(): void {
    for (const r of this.runners) {
      if (r.spec.ready?.kind !== "notify") continue;
      try {
        this.sockets.set(r, this.bind(r.spec));
      } catch (e) {
        this.sockets.set(r, { why: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  /** The variables and descriptors for a start of `r`; call launched() once it is spawned (or not). */
  prepare(r: ServiceRunner): Prepared {
    const ready = r.spec.ready;
    const none = () => {};
    if (ready?.kind === "notify") {
      const s = this.sockets.get(r);
      if (!s || "why" in s) return { ok: false, message: `no NOTIFY_SOCKET: ${s ? s.why : "not made"}` };
      this.discard(r, s.fd);
      const env: Record<string, string> = { NOTIFY_SOCKET: s.path };
      if (r.spec.watchdog !== null) env.WATCHDOG_USEC = String(Math.round(r.spec.watchdog * 1e6));
      return { ok: true, env, passFds: [], launched: none };
    }
    if (ready?.kind === "fd") {
      this.closePipe(r);
      let ends: [number, number];
      try {
        ends = pipe(O_CLOEXEC);
      } catch (e) {
        return { ok: false, message: `no notification pipe: ${e instanceof Error ? e.message : String(e)}` };
      }
      let from: number;
      try {
        wakeOnInput(ends[0]);
        // A copy at ready.fd or above, so that number stays taken in pidone during the
        // spawn: a descriptor the spawn makes itself (the exec trampoline's report pipe)
        // can then never land on ready.fd and be replaced by the child's dup2.
        from = dupAtLeast(ends[1], ready.fd);
      } catch (e) {
        safeClose(ends[0]);
        const why = e instanceof SyscallError && e.errno === errno.EINVAL ? `descriptor ${ready.fd} is not below the descriptor limit (ulimit -n)` : String(e instanceof Error ? e.message : e);
        return { ok: false, message: `no notification pipe: ${why}` };
      } finally {
        safeClose(ends[1]);
      }
      return {
        ok: true,
        env: {},
        passFds: [{ from, to: ready.fd }],
        launched: (started) => {
          // Only the child keeps the write end: end of file means all its copies are closed.
          safeClose(from);
          if (started) this.pipes.set(r, ends[0]);
          else safeClose(ends[0]);
        },
      };
    }
    return { ok: true, env: {}, passFds: [], launched: none };
  }

  /** The run of `r` is over: its readiness pipe goes. */
  ended(r: ServiceRunner): void {
    this.closePipe(r);
  }

  /** Reads every socket and pipe until empty: on SIGIO, and before each reaping (a MAINPID= may precede the parent's exit). */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    let more = false;
    try {
      for (const [r, s] of this.sockets) if (!("why" in s)) more = this.drainSocket(r, s) || more;
      for (const [r, fd] of [...this.pipes]) more = this.drainPipe(r, fd) || more;
    } finally {
      this.draining = false;
    }
    if (more) setImmediate(() => this.drain());
  }

  /** Removes the sockets and this run's directory (pidone is exiting). */
  close(): void {
    for (const s of this.sockets.values()) if (!("why" in s)) safeClose(s.fd);
    for (const fd of this.pipes.values()) safeClose(fd);
    this.sockets.clear();
    this.pipes.clear();
    if (typeof this.runDir === "string") {
      try {
        rmSync(this.runDir, { recursive: true, force: true });
      } catch (e) {
        log.debug(`cannot remove ${this.runDir}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  // ---------------------------------------------------------------- the sockets

  /**
   * RUN/NAME/notify.sock: NAME 0700, the service's uid's (made pidone's while the socket
   * is bound, so that binding needs no capability), the socket 0600, the service's.
   */
  private bind(spec: ServiceSpec): Socket {
    const run = (this.runDir ??= makeRunDirectory());
    if (typeof run !== "string") throw new Error(run.why);
    const dir = join(run, spec.name);
    mkdirSync(dir, { mode: 0o700 });
    const path = join(dir, SOCKET_NAME);
    if (Buffer.byteLength(path) >= UNIX_PATH_MAX) throw new Error(`${path} is longer than a Unix socket path may be`);
    const fd = bindDatagramSocket(path);
    try {
      wakeOnInput(fd);
      chmodSync(path, 0o600);
      if (spec.user && spec.user.uid !== geteuid()) {
        chownSync(path, spec.user.uid, spec.user.gid);
        chownSync(dir, spec.user.uid, spec.user.gid);
      }
    } catch (e) {
      safeClose(fd);
      throw e;
    }
    log.debug(`${spec.name}: NOTIFY_SOCKET at ${path}`);
    return { fd, path };
  }

  /** Drops what an earlier run left queued: its READY=1 is not this run's. */
  private discard(r: ServiceRunner, fd: number): void {
    try {
      for (let i = 0; i < BATCH && receiveDatagram(fd); i++);
    } catch (e) {
      log.debug(`${r.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** True when it stopped at BATCH with datagrams maybe left. */
  private drainSocket(r: ServiceRunner, s: Socket): boolean {
    for (let i = 0; i < BATCH; i++) {
      let d: Datagram | null;
      try {
        d = receiveDatagram(s.fd);
      } catch (e) {
        log.warn(`${r.name}: reading ${s.path}: ${e instanceof Error ? e.message : String(e)}`);
        return false;
      }
      if (!d) return false;
      const refused = d.truncated ? `longer than ${d.data.length} bytes` : refusal(r, d);
      if (refused !== null) {
        if (log.level >= LEVEL.debug) log.debug(`${r.name}: ignored a notification from pid ${d.pid} (uid ${d.uid}): ${refused}`);
        continue;
      }
      this.apply(r, d);
    }
    return true;
  }

  /** One accepted message: sd_notify's KEY=VALUE lines. Unknown keys are ignored, as systemd does. */
  private apply(r: ServiceRunner, d: Datagram): void {
    const text = Buffer.from(d.data).toString("utf8");
    for (const line of text.split("\n")) {
      const eq = line.indexOf("=");
      if (eq <= 0) continue;
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      switch (key) {
        case "READY":
          if (value !== "1") break;
          // After RELOADING=1, READY=1 says the reload is done: status only.
          if (r.state === "starting") r.announceReady();
          else if (log.level >= LEVEL.info) this.event(r.name, "said READY=1", { event: "notify-ready" });
          break;
        case "STATUS":
          r.statusText = value;
          if (log.level >= LEVEL.info) this.event(r.name, `status: ${value}`, { event: "status", status: value });
          break;
        case "MAINPID": {
          const pid = /^[1-9]\d{0,9}$/.test(value) ? Number(value) : NaN;
          if (!Number.isSafeInteger(pid) || pid === r.pid) break;
          const why = inTree(r, pid, false);
          if (why === null) r.adoptMain(pid, "MAINPID");
          else this.event(r.name, `MAINPID=${value} ignored: ${why}`, { event: "notify-refused" });
          break;
        }
        case "WATCHDOG":
          if (value === "1") r.watchdogPing();
          else if (value === "trigger") r.becomeUnhealthy("it said WATCHDOG=trigger");
          break;
        case "STOPPING":
          if (value === "1") this.event(r.name, "said STOPPING=1", { event: "notify-stopping" });
          break;
        case "RELOADING":
          if (value === "1") this.event(r.name, "said RELOADING=1", { event: "notify-reloading" });
          break;
      }
    }
  }

  // ---------------------------------------------------------------- readiness pipes

  /** True when it stopped at BATCH reads with more maybe left. */
  private drainPipe(r: ServiceRunner, fd: number): boolean {
    const buf = pipeBuffer;
    for (let i = 0; i < BATCH; i++) {
      const n = readSome(fd, buf);
      if (n === -errno.EINTR) continue;
      if (n === -errno.EAGAIN) return false;
      if (n < 0) {
        log.warn(`${r.name}: reading its notification descriptor: ${strerror(-n)}`);
        this.closePipe(r);
        return false;
      }
      if (n === 0) {
        const said = this.said.has(r);
        this.closePipe(r);
        if (said) return false;
        const fdNumber = r.spec.ready?.kind === "fd" ? r.spec.ready.fd : "?";
        this.event(r.name, `closed descriptor ${fdNumber} without a newline: it will not become ready`, { event: "notify-closed" });
        return false;
      }
      if (this.said.has(r) || !buf.subarray(0, n).includes(0x0a)) continue;
      // Read on after the newline rather than closed: a later write must not cost the
      // service a SIGPIPE.
      this.said.add(r);
      if (r.state === "starting") r.announceReady();
    }
    return true;
  }

  private closePipe(r: ServiceRunner): void {
    const fd = this.pipes.get(r);
    if (fd === undefined) return;
    this.pipes.delete(r);
    this.said.delete(r);
    safeClose(fd);
  }
}

const pipeBuffer = new Uint8Array(512);

/** Why `d` may not speak for `r`, or null when it may. */
function refusal(r: ServiceRunner, d: Datagram): string | null {
  const own = r.spec.user?.uid ?? geteuid();
  if (d.uid !== own && d.uid !== 0) return `uid ${d.uid} is neither the service's (${own}) nor root's`;
  if (d.pid <= 0) return "its sender is outside pidone's PID namespace";
  const why = inTree(r, d.pid, true);
  if (why === "gone") return d.uid === own ? null : `pid ${d.pid} has exited, and uid ${d.uid} is not the service's (${own})`;
  return why;
}

/**
 * Null when `pid` is the service's main process or one of its descendants: a parent on
 * the way up is the main process, or a process on the way is in the main process's
 * group (a descendant whose parent exited was handed to pidone, but keeps its group).
 * "gone" when `pid` is not there (only asked with `gone`); else why not.
 */
function inTree(r: ServiceRunner, pid: number, gone: boolean): string | null {
  const main = r.pid;
  if (main === null) return "the service is not running";
  const target = r.signalTarget();
  const group = target !== null && target < 0 ? -target : null;
  const self = getpid();
  let p = pid;
  for (let depth = 0; depth < 4096; depth++) {
    if (p === main) return null;
    const pgrp = processGroupOf(p);
    if (pgrp === null) return depth === 0 && gone ? "gone" : `pid ${pid} ${depth === 0 ? "does not exist" : "left while it was looked at"}`;
    if (group !== null && pgrp === group) return null;
    const parent = parentOf(p);
    if (parent === null || parent <= 1 || parent === self) break;
    p = parent;
  }
  return `pid ${pid} is not in the service's process tree`;
}

/**
 * This run's directory: PARENT/pidone-notify/XXXXXX (0711), under the first of PARENTS
 * where pidone can make it. PARENT/pidone-notify must be a directory of pidone's uid.
 */
function makeRunDirectory(): string | { why: string } {
  const reasons: string[] = [];
  for (const parent of PARENTS) {
    const base = join(parent, DIR_NAME);
    try {
      try {
        mkdirSync(base, { mode: 0o711 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const st = lstatSync(base);
      if (!st.isDirectory()) throw new Error(`${base} is not a directory`);
      if (st.uid !== geteuid()) throw new Error(`${base} belongs to uid ${st.uid}, not pidone's ${geteuid()}`);
      if ((st.mode & 0o7777) !== 0o711) chmodSync(base, 0o711);
      removeStale(base);
      const run = mkdtempSync(join(base, "run-"));
      chmodSync(run, 0o711);
      return run;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      reasons.push(code ? `${base}: ${code}` : e instanceof Error ? e.message : String(e));
    }
  }
  return { why: `no directory for it (${reasons.join("; ")})` };
}

/**
 * Removes run directories that a pidone which did not exit cleanly left (/run survives
 * `docker restart`): old, and no socket in them answers. Another live pidone's sockets
 * answer (connecting a stream to a datagram socket: EPROTOTYPE, not ECONNREFUSED).
 */
function removeStale(base: string): void {
  for (const entry of readdirSync(base)) {
    const dir = join(base, entry);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || Date.now() - st.mtimeMs < STALE_MS) continue;
      const live = readdirSync(dir).some((name) => {
        const e = probeUnixSocket(join(dir, name, SOCKET_NAME));
        return e !== errno.ECONNREFUSED && e !== errno.ENOENT;
      });
      if (!live) rmSync(dir, { recursive: true, force: true });
    } catch {
      // another pidone's, changing as we look: left alone
    }
  }
}

function safeClose(fd: number): void {
  try {
    close(fd);
  } catch {
    // already closed
  }
}

// ---------------------------------------------------------------- the watchdog

/**
 * `watchdog = SECONDS`: armed when the service is ready; each WATCHDOG=1 moves the
 * deadline. One timer, which fires at most once per period and only reschedules itself
 * when a ping came meanwhile: the service's pings cost no timer work.
 */
export class Watchdog {
  private last = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ms: number,
    private readonly missed: () => void,
  ) {}

  arm(): void {
    this.last = performance.now();
    this.schedule(this.ms);
  }

  ping(): void {
    this.last = performance.now();
  }

  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timer = null;
      const left = this.last + this.ms - performance.now();
      if (left > 0) return this.schedule(left);
      this.missed();
    }, ms);
  }
}

// ---------------------------------------------------------------- pidone's own manager

/**
 * The NOTIFY_SOCKET pidone inherited (Podman's --sdnotify=container, a systemd unit):
 * READY=1 once every service is ready, STOPPING=1 when the stop begins. Each said once;
 * a failure to send is one warning line.
 */
export class Manager {
  private said = new Set<string>();

  constructor(private readonly address: string) {}

  tell(message: "READY=1" | "STOPPING=1"): void {
    if (this.said.has(message)) return;
    this.said.add(message);
    const e = sendDatagram(this.address, new Uint8Array(Buffer.from(`${message}\n`)));
    if (e !== 0) log.warn(`cannot send ${message} to NOTIFY_SOCKET ${this.address}: ${strerror(e)}`);
    else log.debug(`sent ${message} to NOTIFY_SOCKET ${this.address}`);
  }
}
