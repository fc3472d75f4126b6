// tini's mode: one main program, its signals forwarded (or rewritten), zombies reaped, its
// exit code returned; then what tini leaves out: the whole-tree stop, and daemons followed
// through --wait-all or --pidfile. One loop: the phase below, moved by four events.
import type { RunConfig } from "../cli/options.ts";
import { LEVEL, log } from "../log/logger.ts";
import { decodeStatus, exitCodeOf, reapAllRaw, worked, type ExitStatus } from "../process/reap.ts";
import { checkReaping, mayReapNatively, setUpReaping } from "../process/reaper.ts";
import { releaseTerminal, spawnProgram } from "../process/spawn.ts";
import type { Inheritance } from "../process/startup.ts";
import { descendantsOf, parentOf, processGroupOf } from "../process/tree.ts";
import { OomWatch, oomKilled } from "../process/oom.ts";
import { keepAlive } from "../process/loop.ts";
import { childDefaultSet, listen, planSignals, type SignalPlan } from "../signals/intake.ts";
import { SIG, signalName } from "../signals/table.ts";
import { SyscallError, errno, exit, getpid, kill, strsignal, yieldCpu } from "../sys/libc.ts";
import { available as nativeAvailable, publishTarget, startOomKills, watchChild, type NativeExit } from "../sys/native.ts";
import { TreeStop } from "../supervisor/stop.ts";
import { StopDelay } from "../supervisor/stop-delay.ts";
import { readPidfile } from "../supervisor/pidfile.ts";
import type { ControlServer } from "../control/server.ts";
import type { ServiceStatus } from "../control/status.ts";

type MainChild = { pid: number; adopted: boolean };

/** Where tini's mode stands. Every change goes through TiniMode.enter. */
type Phase =
  /** The main child runs (spawned, or adopted from --pidfile). Ends when it is reaped:
   *  → draining, → running (--pidfile names its successor), → adopting (it exited 0 and
   *  --pidfile names the daemon it started). */
  | { name: "running"; main: MainChild }
  /** --pidfile: polling the file for the daemon's pid. Ends → running when it names a
   *  child of ours, → draining with code 1 when the timeout passes first. */
  | { name: "adopting"; deadline: number }
  /** No main child. Ends in exit: when no child is left (waitpid's ECHILD), or when the
   *  grace is over. Without --wait-all the rest of the tree got SIGTERM on entry. */
  | { name: "draining" };

export function runSingle(cfg: RunConfig, inherited: Inheritance, envp: readonly Uint8Array[]): void {
  new TiniMode(cfg, inherited).start(envp);
}

class TiniMode {
  // ---------------------------------------------------------------- the four events

  /** The intake, once per delivery; `forwarded`: on_signal already sent it on. */
  readonly signal = (sig: number, forwarded: boolean): void => {
    if (sig === SIG.CHLD) {
      if (log.level >= LEVEL.debug) log.debug("Received SIGCHLD");
      return this.reapAll();
    }
    worked(); // a storm's wakes leave garbage too (src/process/gc.ts)
    if (this.cfg.stopSignals.has(sig)) {
      this.stop.trigger(`received ${signalName(sig)}`);
      // --stop-delay: on_signal leaves stop signals to us (startListening).
      if (!forwarded) return this.delayedStop(sig);
    }
    if (!forwarded) this.forward(sig);
    else if (log.level >= LEVEL.debug) this.logForward(sig, this.outputOf(sig));
  };

  /** The reaping loop, once per child. Hot (a zombie backlog): nothing allocated unless
   *  something is logged or decided. Only the main child's end moves the phase. */
  readonly reaped = (pid: number, raw: number): void => {
    if (log.level >= LEVEL.debug) log.debug(`Reaped child with pid: '${pid}'`);
    if (this.phase.name === "running" && pid === this.phase.main.pid) return this.mainEnded(this.phase.main, decodeStatus(raw));
    if (this.cfg.warnOnReap) log.warn(`Reaped zombie process with pid=${pid}`);
    if (this.cfg.waitAll && raw !== 0 && this.firstFailure === null) this.noteFailure(decodeStatus(raw));
  };

  /** TreeStop: the grace ran out, SIGKILL went out, and the kernel had time to hand back the dead. */
  readonly graceOver = (): void => this.finish("the grace period ended");

  /** --pidfile: another look at the file. */
  readonly pidfileTick = (): void => {
    if (this.phase.name !== "adopting") return;
    const file = this.cfg.pidfile!;
    const r = readPidfile(file);
    if (r.ok && parentOf(r.pid) === getpid()) {
      log.info(`Adopted pid ${r.pid} from ${file} as the main process`);
      return this.enter({ name: "running", main: { pid: r.pid, adopted: true } });
    }
    if (performance.now() < this.phase.deadline) {
      // The daemon writes the file after we learn its parent exited, and the kernel has
      // no event for "a file appeared" short of a watcher of our own: poll, bounded.
      setTimeout(this.pidfileTick, 20);
      return;
    }
    const why = r.ok ? `${file} names pid ${r.pid}, which is not a child of pidone` : r.reason;
    log.fatal(`--pidfile: ${why} (waited ${this.cfg.pidfileTimeoutSeconds} s)`);
    this.exitCode = 1;
    this.enter({ name: "draining" }, "no daemon to adopt");
    this.reapAll();
  };

  /*
   * The life of a forwarded signal. In the single file the kernel runs on_signal
   * (src/native/stub.c) on whichever thread has the signal unblocked. With a main child
   * running, enter() has published its pid (or group) as the target, and startListening
   * the signal's output (outputOf: itself, a rewrite, or 0 to drop): on_signal kill()s the
   * child right there, counts the delivery and, unless the signal is quiet, writes a byte
   * to the self-pipe. Quiet means JavaScript is not involved at all: every signal but the
   * stop signals, below -vv. Otherwise the intake's drain (startIntake, src/sys/native.ts)
   * calls signal(sig, true), which only keeps the books: a stop signal starts the grace
   * clock. With no main child (adopting, draining) the target is "queue", and without the
   * stub Bun's process.on delivers; either way signal(sig, false) forwards with kill(2)
   * itself (forward).
   *
   * The life of a SIGCHLD. on_signal calls reap_children (stub.c), tini's wait4 loop, when
   * native reaping is on (mayReapNatively: no status needed but the main child's); it
   * keeps the main child's status in the watched record. If that end leaves nothing else
   * to do (nativeExit, set in start), the handler exits with the table's code and
   * JavaScript never runs. Otherwise, or without native reaping, the byte wakes the loop:
   * signal(SIGCHLD) → reapAll → reapAllRaw (src/process/reap.ts), which takes the record,
   * then calls waitpid(-1) until nothing is left, and reaped(pid, status) for each.
   */

  // ---------------------------------------------------------------- the transitions

  /**
   * Every change of phase. What the stub's handler does follows the phase: it forwards
   * to the main child's pid (or group) and watches that pid only while one runs; with no
   * main child, signals queue for forward().
   */
  private enter(next: Phase, why = ""): void {
    this.phase = next;
    const main = next.name === "running" ? next.main : null;
    publishTarget(main ? (this.groupWide ? -main.pid : main.pid) : "queue");
    watchChild(main ? main.pid : 0, this.reapNatively, this.nativeExit);
    if (next.name === "adopting") this.pidfileTick();
    if (next.name !== "draining" || this.cfg.waitAll) return;
    // Without --wait-all the main child's end (or a daemon never adopted) is the end of
    // the container: stop what it left behind, inside the grace.
    this.stop.trigger(why);
    if (!this.stop.sweeping) this.finish(why);
    this.stop.sweep();
  }

  /** running → running, adopting or draining: the main child was reaped. */
  private mainEnded(main: MainChild, status: ExitStatus): void {
    if (status.exited) log.info(`Main child exited normally (with status '${status.code}')`);
    else log.info(`Main child exited with signal (with signal '${strsignal(status.signal)}')`);
    // The stop's own SIGKILL (the grace over) is not the OOM killer's.
    if (this.oom.ended(status, this.stop.killed)) log.warn(`Main child was ${oomKilled()}`);
    const { cfg } = this;
    const code = this.remap(exitCodeOf(status));
    if (main.adopted && cfg.pidfile) {
      // A daemon that re-execs itself (binary upgrade) leaves its successor's pid behind.
      const next = readPidfile(cfg.pidfile);
      if (next.ok && next.pid !== main.pid && parentOf(next.pid) === getpid()) {
        log.info(`Following pid ${next.pid} from ${cfg.pidfile}`);
        return this.enter({ name: "running", main: { pid: next.pid, adopted: true } });
      }
    }
    if (cfg.pidfile && !this.stop.triggered && code === 0) {
      const deadline = performance.now() + cfg.pidfileTimeoutSeconds * 1000;
      return this.enter({ name: "adopting", deadline });
    }
    this.exitCode = code;
    if (cfg.waitAll && code !== 0 && this.firstFailure === null) this.noteFailure(status, code);
    this.enter({ name: "draining" }, "main program exited");
  }

  /** Reaps every ended child; draining ends once none is left. */
  private reapAll(): void {
    if (reapAllRaw(this.reaped) && this.phase.name === "draining") {
      this.finish(this.cfg.waitAll ? "no child left" : "child has exited");
    }
  }

  /** The one exit once the child ran (the stub's handler may exit first: see start). */
  private finish(why: string): never {
    log.trace(`Exiting: ${why}`);
    this.control?.close();
    return exit(this.cfg.waitAll ? (this.firstFailure ?? 0) : this.exitCode);
  }

  // ---------------------------------------------------------------- state

  // Set by start() as it spawns the main child: the events come from the event loop,
  // which runs only after that.
  private phase!: Phase;
  private exitCode = 0;
  /** --wait-all: the first failure of any process decides the exit code. */
  private firstFailure: number | null = null;
  private readonly plan: SignalPlan;
  private readonly stop: TreeStop;
  private readonly reapNatively: boolean;
  /** Set once the child runs, where its end leaves nothing to do but exit (see start). */
  private nativeExit: NativeExit | null = null;
  /** -g and --setsid: signals go to the main child's whole process group. */
  private readonly groupWide: boolean;
  /** --control PATH: status and health for the main child. */
  private control: ControlServer | null = null;
  private mainStarted = 0;
  /** --stop-delay; `stopDelay.requested`: a stop signal came (a readiness endpoint answers 503 from then). */
  readonly stopDelay: StopDelay;
  /** OOM kills named: the count the stub read before the runtime started, else one taken at the spawn. */
  private readonly oom = new OomWatch(startOomKills());

  constructor(
    private readonly cfg: RunConfig,
    private readonly inherited: Inheritance,
  ) {
    this.plan = planSignals(new Set(inherited.ignored), [...cfg.stopSignals], cfg.setsid);
    // -p and -s before anything else: TreeStop asks whether we are a subreaper.
    setUpReaping(cfg);
    this.stop = new TreeStop(cfg.graceSeconds * 1000, this.graceOver);
    this.reapNatively = mayReapNatively(cfg);
    this.groupWide = cfg.processGroup || cfg.setsid;
    this.stopDelay = new StopDelay(cfg.stopDelaySeconds * 1000);
  }

  private remap(code: number): number {
    return this.cfg.expectExit.has(code) ? 0 : code;
  }

  /**
   * --wait-all: the first failure's code (`code`: the main child's, after -e) is pidone's,
   * unless it is a stop's own doing once a stop was asked for.
   */
  private noteFailure(s: ExitStatus, code = exitCodeOf(s)): void {
    if (exitCodeOf(s) === 0) return;
    if (this.stop.triggered) {
      const sig = s.exited ? exitCodeOf(s) - 128 : s.signal;
      if (sig === SIG.KILL || sig === SIG.TERM || this.cfg.stopSignals.has(sig)) return;
    }
    this.firstFailure = code;
  }

  // ---------------------------------------------------------------- signals

  /** What goes out for `sig`: a rewrite, SIGSTOP for terminal stops under --setsid, 0 to drop. */
  private readonly outputOf = (sig: number): number => {
    if (this.cfg.setsid && (sig === SIG.TSTP || sig === SIG.TTIN || sig === SIG.TTOU)) return SIG.STOP;
    return this.cfg.rewrite.get(sig) ?? sig;
  };

  private logForward(sig: number, out: number): void {
    if (out === 0) log.debug(`Dropping signal: '${strsignal(sig)}'`);
    else log.debug(`Passing signal: '${strsignal(out)}'`);
  }

  /**
   * A stop signal on_signal did not forward: forwarded now, or once --stop-delay is over
   * (a second one ends the delay). The grace clock already runs.
   */
  private delayedStop(sig: number): void {
    const { stopDelay } = this;
    if (stopDelay.ms > 0 && !stopDelay.requested && log.level >= LEVEL.info) {
      log.info(`Received ${signalName(sig)}: forwarding it in ${stopDelay.ms / 1000} s (--stop-delay)`);
    }
    stopDelay.request(() => this.forward(sig));
  }

  /** JavaScript's forward: without the stub, or when no main child runs. */
  private forward(sig: number): void {
    const out = this.outputOf(sig);
    if (out === 0) {
      if (log.level >= LEVEL.debug) this.logForward(sig, out);
      return;
    }
    if (this.phase.name === "running") {
      if (log.level >= LEVEL.debug) this.logForward(sig, out);
      try {
        kill(this.groupWide ? -this.phase.main.pid : this.phase.main.pid, out);
        yieldCpu();
      } catch (e) {
        if (e instanceof SyscallError && e.errno === errno.ESRCH) log.warn("Child was dead when forwarding signal");
        else log.error(`Unexpected error when forwarding signal: '${(e as Error).message}'`);
      }
    } else if (this.cfg.waitAll || this.phase.name === "adopting") {
      log.debug(`Passing signal: '${strsignal(out)}' to every remaining process group`);
      this.signalAllGroups(out);
    }
  }

  /** Every process group among our descendants, once each (ours excluded). */
  private signalAllGroups(sig: number): void {
    const own = processGroupOf(getpid());
    const groups = new Set<number>();
    for (const pid of descendantsOf(getpid())) {
      const g = processGroupOf(pid);
      if (g !== null && g > 0 && g !== own) groups.add(g);
    }
    for (const g of groups) {
      try {
        kill(-g, sig);
      } catch {
        // that group is gone
      }
    }
  }

  private startListening(): void {
    // With a delay, stop signals are ours to hold: on_signal queues them.
    const held = (sig: number) => this.stopDelay.ms > 0 && this.cfg.stopSignals.has(sig);
    const forwardAs = (sig: number) => (held(sig) ? "queue" : this.outputOf(sig));
    listen(this.plan, this.signal, forwardAs, (sig) => this.cfg.stopSignals.has(sig) || log.level >= LEVEL.debug);
  }

  // ---------------------------------------------------------------- start

  start(envp: readonly Uint8Array[]): void {
    const { cfg, inherited } = this;
    // Before listening: giving up the terminal raises SIGHUP and SIGCONT that must not be forwarded.
    const takeTerminal = cfg.setsid && releaseTerminal();
    // In the single file every signal has been blocked since the stub's first
    // instruction: what arrives meanwhile waits, pending, so the child may start first.
    // Without the stub the runtime's other threads would take a signal at its default
    // action (SIGTERM would end us): listen first.
    if (!nativeAvailable) this.startListening();
    const outcome = spawnProgram(cfg.program, {
      envp,
      sigmask: inherited.sigmask,
      sigdefault: childDefaultSet(this.plan),
      keepFds: inherited.fds,
      newSession: cfg.setsid,
      takeTerminal,
    });
    // tini warns before it spawns; the warning waits until the child runs, off its path,
    // and still comes before any message of ours about it.
    checkReaping();
    if (!outcome.ok) {
      log.fatal(outcome.message);
      exit(this.remap(outcome.code));
    }
    // Without the stub's count, one read now, off the child's path: an OOM kill comes
    // only once the child has faulted in the limit's worth of memory, long after this.
    if (!nativeAvailable) this.oom.started();
    // Where the main child's end leaves nothing to do but exit (no line to log, no
    // daemon to follow: native reaping is on, and below -v), the handler that reaps it
    // exits for us with this table's code; `alone`: only once no child is left, where a
    // sweep would otherwise follow.
    // With --control, pidone's JavaScript must exit itself, to remove the socket.
    if (this.reapNatively && log.level < LEVEL.info && cfg.control === null) {
      const codes = new Uint8Array(256);
      for (let code = 0; code < 256; code++) codes[code] = this.remap(code);
      this.nativeExit = { codes, alone: this.stop.sweeping };
    }
    // The watch is in place before the handler may reap (enter → watchChild), and a main
    // child that ended sooner is found by our own waitpid loop.
    this.enter({ name: "running", main: { pid: outcome.pid, adopted: false } });
    if (nativeAvailable) this.startListening();
    log.info(`Spawned child process '${Buffer.from(cfg.program[0]!).toString()}' with pid '${outcome.pid}'`);
    this.mainStarted = Date.now();
    // --control PATH only: without it tini's mode loads none of the control code.
    const path = cfg.control;
    if (path !== null && path !== "none") {
      void import("../control/attach.ts").then(({ attachControl }) => {
        const stopping = () => this.stop.triggered || this.stopDelay.requested;
        this.control = attachControl("tini", path, stopping, () => [this.mainStatus()]);
      });
    }
    keepAlive();
  }

  /** `--ctl status`: the main child as the one service, healthy while it runs. */
  private mainStatus(): ServiceStatus {
    const now = Date.now();
    const main = this.phase.name === "running" ? this.phase.main : null;
    const name = Buffer.from(this.cfg.program[0]!).toString().split("/").pop()!;
    const ended = this.phase.name === "draining";
    return {
      name,
      state: main ? "running" : this.phase.name === "adopting" ? "starting" : this.exitCode === 0 ? "exited" : "failed",
      critical: true,
      oneshot: false,
      held: false,
      pid: main?.pid ?? null,
      started_at: main ? new Date(this.mainStarted).toISOString() : null,
      uptime_seconds: main ? Math.floor((now - this.mainStarted) / 1000) : null,
      restarts: 0,
      restart_in_seconds: null,
      waiting_for: [],
      last_exit: ended ? { code: this.exitCode, signal: null, description: `exit code ${this.exitCode}`, at: new Date(now).toISOString() } : null,
      readiness: { check: null, ready: main !== null },
      health: null,
      status_text: null,
    };
  }
}
