// One supervised service, as a small state machine (after s6):
//
//   waiting ─deps ready─▶ starting ─probe ok─▶ ready ─exit─▶ backoff ─timer─▶ starting
//                            │                   │    └─no restart left─▶ ended
//                            └─oneshot exit 0────┴──────────────▶ done
//   any running state ─stop()─▶ stopping ─exit─▶ stopped
//   starting, ready ─liveness check failed `retries` times─▶ unhealthy ─exit─▶ as a failure (backoff or ended)
//   the operator: hold() ─▶ (stopping ─▶) stopped, held; release() ─▶ waiting
//
// What operators see (`--ctl status`) is display(): these states with the readiness,
// health and hold folded in (README: "A service's states").
import type { ServiceSpec } from "../config/index.ts";
import { exitCodeOfFailure, type SpawnFailure } from "../errors.ts";
import { exitCodeOf, type ExitStatus } from "../process/reap.ts";
import { OomWatch, describeExit } from "../process/oom.ts";
import { getpid, kill } from "../sys/libc.ts";
import { parentOf, processGroupOf } from "../process/tree.ts";
import { readPidfile } from "../supervisor/pidfile.ts";
import { announced, describeProbe, waitAnnounced, waitReady, type ProbeHooks } from "./ready.ts";
import { HealthMonitor } from "./health.ts";
import { Watchdog } from "./notify.ts";
import { signalName, SIG } from "../signals/table.ts";
import { timestamp, type DisplayState, type ExitInfo } from "../control/status.ts";

export type ServiceState = "waiting" | "starting" | "ready" | "unhealthy" | "backoff" | "done" | "ended" | "stopping" | "stopped";

export interface ServiceHost extends ProbeHooks {
  /** Spawns the service; returns its pid, or why it did not start. */
  spawn(spec: ServiceSpec): { ok: true; pid: number } | ({ ok: false } & SpawnFailure);
  /** Tells the supervisor which pid now belongs to this service (for reaping). */
  track(pid: number, svc: ServiceRunner): void;
  event(service: string, message: string, fields?: Record<string, string | number | boolean | null>): void;
  /** The service became ready (or a oneshot finished): dependents may start. */
  readied(svc: ServiceRunner): void;
  /** The service has ended for good with this exit code. */
  ended(svc: ServiceRunner, code: number): void;
}

/** A run this long resets the backoff to the service's restart_delay. */
const BACKOFF_RESET_MS = 60_000;

export class ServiceRunner {
  state: ServiceState = "waiting";
  pid: number | null = null;
  /** The exit code it ended with (ended/done/stopped), for the container's status. */
  lastCode: number | null = null;
  /** How it last exited, for the stop's verdict. */
  lastStatus: ExitStatus | null = null;
  /** It had to be SIGKILLed during the stop. */
  killed = false;
  /** Stopped by the operator: not restarted, not a failure, until release(). */
  held = false;
  /** Restarts by its policy (an operator's restart is not one). */
  restartCount = 0;
  /** Its current process's start (Date.now()), for uptime; null when not running. */
  startedWall: number | null = null;
  /** How its last process ended, or why it did not start. */
  lastExit: ExitInfo | null = null;
  /** In the backoff: when it starts again (Date.now()). */
  restartAt: number | null = null;
  /** What the service last said about itself (sd_notify STATUS=). */
  statusText: string | null = null;
  /** Its last end was the kernel's OOM killer's (describeExit words it for --ctl status). */
  lastOomKilled = false;
  private readonly oom = new OomWatch();
  private restarts: number[] = [];
  private backoffMs: number;
  private startedAt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopDone: (() => void) | null = null;
  private notReady = false;
  /** Its liveness check; null: none. */
  readonly health: HealthMonitor | null;
  /** While an announced probe (notify, fd) waits: true when the service says it, false when its run ends. */
  private said: ((ok: boolean) => void) | null = null;
  /** Starts so far: which run a readiness wait belongs to. */
  private runs = 0;
  private readonly watchdog: Watchdog | null;

  constructor(
    readonly spec: ServiceSpec,
    private readonly host: ServiceHost,
  ) {
    this.backoffMs = spec.restartDelay * 1000;
    this.health = spec.health && new HealthMonitor(spec.health, host, spec, (detail) => this.becomeUnhealthy(detail));
    const w = spec.watchdog;
    this.watchdog = w === null ? null : new Watchdog(w * 1000, () => this.becomeUnhealthy(`no WATCHDOG=1 within ${w} s`));
  }

  get name(): string {
    return this.spec.name;
  }

  get running(): boolean {
    return this.pid !== null;
  }

  start(): void {
    this.timer = null;
    this.restartAt = null;
    this.killed = false;
    this.oom.started(); // before the spawn: an OOM kill may come at once
    const r = this.host.spawn(this.spec);
    if (!r.ok) {
      this.lastExit = { code: exitCodeOfFailure(r), signal: null, description: r.message, at: timestamp(Date.now()) };
      this.host.event(this.name, r.message);
      // As if it had exited with the code tini's child gives a failed exec: the restart
      // policy and the container's status treat both the same.
      this.afterExit({ exited: true, code: exitCodeOfFailure(r) });
      return;
    }
    this.pid = r.pid;
    this.state = "starting";
    this.startedAt = performance.now();
    this.startedWall = Date.now();
    this.notReady = false;
    this.statusText = null;
    this.host.track(r.pid, this);
    this.host.event(this.name, `started (pid ${r.pid})`, { event: "started", pid: r.pid });
    this.health?.start(); // as Docker: from the process's start; start_period covers a slow one
    if (this.spec.oneshot && !this.spec.ready) return; // ready when it exits 0
    if (!this.spec.ready) return this.becomeReady();
    const pid = r.pid;
    const run = ++this.runs;
    const timeoutMs = this.spec.readyTimeout * 1000;
    // Announced: MAINPID= may hand the run to another pid before READY=1 is taken.
    const byPid = !announced(this.spec.ready);
    const waiting = !byPid
      ? waitAnnounced(new Promise<boolean>((resolve) => (this.said = resolve)), timeoutMs)
      : waitReady(this.spec.ready, timeoutMs, this.host, () => this.pid !== pid || this.state !== "starting", this.spec);
    void waiting.then(
      (ok) => {
        if (this.runs !== run || this.state !== "starting" || (byPid && this.pid !== pid)) return;
        if (ok) return this.becomeReady();
        this.host.event(this.name, `not ready after ${this.spec.readyTimeout} s (${describeProbe(this.spec.ready!)})`, {
          event: "not-ready",
        });
        this.notReady = true;
        this.signalGroup(SIG.KILL);
      },
    );
  }

  private becomeReady(): void {
    this.said = null;
    this.state = this.spec.oneshot ? "done" : "ready";
    if (this.state === "ready") this.watchdog?.arm();
    this.host.event(this.name, this.spec.oneshot ? "done" : "ready", { event: this.state });
    this.host.readied(this);
  }

  /** The kernel reported our process (or adopted daemon) gone. */
  exited(status: ExitStatus): void {
    this.endRun();
    this.pid = null;
    this.startedWall = null;
    this.lastStatus = status;
    const code = exitCodeOf(status);
    this.lastCode = code;
    const how = status.exited ? `status ${status.code}` : `signal ${signalName(status.signal)}`;
    const signal = status.exited ? null : signalName(status.signal);
    this.lastOomKilled = this.oom.ended(status, this.killed || this.notReady);
    const description = describeExit(status, this.lastOomKilled);
    this.lastExit = { code, signal, description: this.lastOomKilled ? description : how, at: timestamp(Date.now()) };
    this.host.event(this.name, description, { event: "exited", code, ...(this.lastOomKilled && { oom: true }) });
    if (this.state === "stopping") {
      this.state = "stopped";
      this.stopDone?.();
      return;
    }
    if (this.state === "unhealthy") {
      if (this.timer) clearTimeout(this.timer); // its SIGKILL
      this.timer = null;
      return this.afterExit(status);
    }
    // A forking daemon: the parent exiting 0 hands over to the pid it wrote down.
    if (this.spec.pidfile && code === 0 && !this.notReady) {
      this.adopt(this.spec.pidfile);
      return;
    }
    this.afterExit(status);
  }

  private adopt(file: string): void {
    const deadline = performance.now() + this.spec.readyTimeout * 1000;
    const attempt = () => {
      if (this.state === "stopping" || this.state === "stopped") return;
      const r = readPidfile(file);
      if (r.ok && parentOf(r.pid) === getpid()) {
        this.pid = r.pid;
        this.startedWall = Date.now();
        this.host.track(r.pid, this);
        this.host.event(this.name, `adopted pid ${r.pid} from ${file}`, { event: "adopted", pid: r.pid });
        if (this.state === "starting" && !this.spec.ready) this.becomeReady();
        return;
      }
      if (performance.now() > deadline) {
        this.host.event(this.name, `no daemon to adopt: ${r.ok ? `${file} names a pid that is not pidone's child` : r.reason}`);
        this.afterExit({ exited: true, code: 1 });
        return;
      }
      setTimeout(attempt, 50);
    };
    attempt();
  }

  private afterExit(status: ExitStatus): void {
    this.health?.stop(); // not at a daemon's handover (adopt): its checks go on
    const code = exitCodeOf(status);
    this.lastCode = code;
    if (this.spec.oneshot && code === 0) return this.becomeReady();
    const failed = code !== 0 || this.notReady || this.state === "unhealthy";
    const policy = this.spec.restart;
    const restart = policy === "always" || (policy === "on-failure" && failed);
    if (restart) {
      const now = performance.now();
      this.restarts = this.restarts.filter((t) => now - t < this.spec.restartWindow * 1000);
      if (this.restarts.length < this.spec.maxRestarts) {
        // Without a limit there is nothing to count, and a crash loop must not grow a list.
        if (this.spec.maxRestarts !== Infinity) this.restarts.push(now);
        this.restartCount++;
        if (now - this.startedAt >= BACKOFF_RESET_MS) this.backoffMs = this.spec.restartDelay * 1000;
        const delay = this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, this.spec.restartDelayMax * 1000);
        this.state = "backoff";
        this.host.event(this.name, `restarting in ${delay / 1000} s`, { event: "restarting", delay: delay / 1000 });
        this.restartAt = Date.now() + delay;
        this.timer = setTimeout(() => this.start(), delay);
        return;
      }
      this.host.event(this.name, `gave up after ${this.spec.maxRestarts} restarts in ${this.spec.restartWindow} s`, { event: "gave-up" });
    }
    this.state = "ended";
    this.host.ended(this, failed && code === 0 ? 1 : code);
  }

  /** Where its signals go: its process group (-pgid), or an adopted daemon's own pid; null when not running. */
  signalTarget(): number | null {
    if (this.pid === null) return null;
    return processGroupOf(this.pid) === this.pid ? -this.pid : this.pid;
  }

  /** Sends `sig` to the service's process group (an adopted daemon: to its own group). */
  signalGroup(sig: number): void {
    const target = this.signalTarget();
    if (target === null) return;
    try {
      kill(target, sig);
    } catch {
      // it is exiting: its SIGCHLD is on the way
    }
  }

  // ---------------------------------------------------------------- what it says (src/services/notify.ts)

  /** sd_notify's READY=1, or a newline on its notification fd, while it starts. */
  announceReady(): void {
    this.said?.(true);
  }

  /** WATCHDOG=1. */
  watchdogPing(): void {
    this.watchdog?.ping();
  }

  /** MAINPID=N, N a descendant (notify.ts checked): N is now the process it lives and dies with. */
  adoptMain(pid: number, how: string): void {
    this.pid = pid;
    this.host.track(pid, this);
    this.host.event(this.name, `main process is now pid ${pid} (${how})`, { event: "adopted", pid });
  }

  /**
   * Its liveness check failed `retries` times, or its watchdog missed: stopped as a stop
   * would (its stop signal, SIGKILL after stop_timeout), and its exit is a failure for the
   * restart policy.
   */
  becomeUnhealthy(detail: string): void {
    if (this.pid === null || (this.state !== "starting" && this.state !== "ready")) return;
    this.state = "unhealthy";
    this.watchdog?.disarm();
    this.host.event(this.name, `unhealthy: ${detail}`, { event: "unhealthy" });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.host.event(this.name, `killed: still running ${this.spec.stopTimeout} s after ${signalName(this.spec.stopSignal)}`, { event: "killed" });
      this.signalGroup(SIG.KILL);
    }, this.spec.stopTimeout * 1000);
    this.signalGroup(this.spec.stopSignal);
  }

  /** Its run is over (exited, or being stopped): nothing it says counts any more. */
  private endRun(): void {
    this.said?.(false);
    this.said = null;
    this.watchdog?.disarm();
  }

  /** Stops it within `ms`: its stop signal, then SIGKILL. Resolves once it is gone. */
  stop(ms: number): Promise<void> {
    this.health?.stop();
    this.endRun();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pid === null) {
      if (this.state !== "done" && this.state !== "ended") this.state = "stopped";
      return Promise.resolve();
    }
    this.state = "stopping";
    this.host.event(this.name, `stopping (${signalName(this.spec.stopSignal)})`, { event: "stopping" });
    return new Promise((resolve) => {
      const killTimer = setTimeout(() => {
        if (this.pid === null) return;
        this.killed = true;
        this.host.event(this.name, `killed: still running ${Math.round(ms) / 1000} s after ${signalName(this.spec.stopSignal)}`, {
          event: "killed",
        });
        this.signalGroup(SIG.KILL);
      }, Math.max(0, ms));
      this.stopDone = () => {
        clearTimeout(killTimer);
        resolve();
      };
      this.signalGroup(this.spec.stopSignal);
    });
  }

  // ---------------------------------------------------------------- the operator

  /**
   * `--ctl stop`: stops it within `ms` (or cancels its backoff) and holds it: its end is
   * neither a failure nor a reason to restart, until release(). Resolves once it is gone.
   */
  hold(ms: number): Promise<void> {
    this.held = true;
    this.restartAt = null;
    return this.stop(ms);
  }

  /** `--ctl start`: back to waiting, to start once its dependencies are ready (the supervisor starts it). */
  release(): void {
    this.held = false;
    this.restartAt = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.state = "waiting";
  }

  /** The state operators see. */
  display(): DisplayState {
    if (this.held && this.pid === null) return "stopped";
    switch (this.state) {
      case "waiting":
      case "starting":
      case "unhealthy":
      case "stopping":
      case "stopped":
        return this.state;
      case "ready":
        return this.spec.ready ? "ready" : "running";
      case "backoff":
        return "restarting";
      case "done":
        return "exited";
      case "ended":
        return this.lastCode === 0 ? "exited" : "failed";
    }
  }

  /** Did it end the way a requested stop should (0, 128+stop signal, killed by it)? */
  stoppedCleanly(): boolean {
    if (this.killed) return false;
    const s = this.lastStatus;
    if (!s) return true; // never ran, or finished earlier
    const sig = this.spec.stopSignal;
    if (s.exited) return s.code === 0 || s.code === 128 + sig;
    return s.signal === sig;
  }
}
