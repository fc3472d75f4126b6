// Several services in one container: start them in dependency order, restart them per
// policy, stop them in reverse order inside the grace, and end the container when a
// critical one ends for good. One loop, as in tini's mode:
//
//   running ──a stop signal, a critical service ended for good, nothing left to run──▶ stopping
//   stopping ──every level stopped and no child left, or the grace over──▶ finishing ──▶ exit
//
// moved by its events: a signal, a reaped child, a service that ended for good (or
// became ready: its dependents start), and the grace timer. One service's own states
// are src/services/service.ts's.
import type { RunConfig } from "../cli/options.ts";
import { LOG_LEVELS, buildPlan, check, stopLevels, type ServicePlan, type ServiceSpec, type PlanOptions } from "../config/index.ts";
import { EXIT } from "../errors.ts";
import { log, print, setVerbosity } from "../log/logger.ts";
import { checkServicesLimits } from "../process/limits.ts";
import { keepAlive } from "../process/loop.ts";
import { reapAllRaw, decodeStatus, exitCodeOf, worked, type ExitStatus } from "../process/reap.ts";
import { checkReaping, setUpReaping } from "../process/reaper.ts";
import type { Inheritance } from "../process/startup.ts";
import { launch, type LaunchContext } from "../services/launch.ts";
import { OutputMux } from "../services/output.ts";
import { EVENTS_DEFAULT_VERBOSITY, eventVerbosity } from "../services/events.ts";
import { resolveProbeHosts } from "../services/ready.ts";
import { ServiceRunner, type ServiceHost } from "../services/service.ts";
import { Operator } from "../services/operator.ts";
import { childDefaultSet, listen, planSignals, type SignalPlan } from "../signals/intake.ts";
import { SIG, signalName } from "../signals/table.ts";
import { exit, getpid, isatty, yieldCpu } from "../sys/libc.ts";
import { available as nativeHelper, publishSignalTarget } from "../sys/native.ts";
import { TreeStop } from "../supervisor/stop.ts";
import { controlHandler } from "../control/commands.ts";
import { ControlServer, controlPlace } from "../control/server.ts";
import { serveHttp, type HttpServer } from "../control/http.ts";
import { counters } from "../process/counters.ts";
import { StopDelay } from "../supervisor/stop-delay.ts";
import { Manager, MANAGER_VARIABLES, Notifications } from "../services/notify.ts";

/** At exit, what services already wrote is copied for at least this long (or what is left of the grace). */
const DRAIN_MS = 1000;

function planOptions(cfg: RunConfig, env: ReadonlyMap<string, string>): PlanOptions {
  const opts: PlanOptions = { env: Object.fromEntries(env) };
  if (cfg.graceFrom === "flag") opts.settings = { grace: cfg.graceSeconds };
  if (cfg.graceFrom === "env") opts.defaultSettings = { grace: cfg.graceSeconds };
  if (cfg.http !== null) opts.settings = { ...opts.settings, http: cfg.http === "none" ? null : cfg.http };
  // --log-format, else PIDONE_LOG_FORMAT, wins over the file; --log-timestamps turns them on.
  if (cfg.logFormat) opts.settings = { ...opts.settings, logFormat: cfg.logFormat };
  if (cfg.logTimestamps) opts.settings = { ...opts.settings, timestamps: true };
  if (cfg.stopDelayFrom === "flag") opts.settings = { ...opts.settings, stopDelay: cfg.stopDelaySeconds };
  if (cfg.stopDelayFrom === "env") opts.defaultSettings = { ...opts.defaultSettings, stopDelay: cfg.stopDelaySeconds };
  return opts;
}

/**
 * The level of pidone's own lines, on tini's scale, when one was set: TINI_VERBOSITY,
 * else -v/-q (cli/options.ts), else [settings] log_level; null: each kind's default.
 */
function givenVerbosity(cfg: RunConfig, plan: ServicePlan): number | null {
  if (cfg.verbosityGiven) return cfg.verbosity;
  const level = plan.settings.logLevel;
  return level === null ? null : LOG_LEVELS.indexOf(level);
}

export function runCheck(cfg: RunConfig, env: ReadonlyMap<string, string>): never {
  const r = check(cfg.configFiles, cfg.services, planOptions(cfg, env));
  if (r.warnings.length) print(2, r.warnings.map((w) => `${w}\n`).join(""));
  if (r.ok) {
    print(1, "configuration OK\n");
    return exit(0);
  }
  print(2, r.diagnostics.map((d) => `${d}\n`).join(""));
  return exit(EXIT.CONFIG);
}

export function runServices(
  cfg: RunConfig,
  inherited: Inheritance,
  envp: readonly Uint8Array[],
  env: ReadonlyMap<string, string>,
): void {
  const limits = checkServicesLimits();
  if (limits.fatal) {
    log.fatal(limits.fatal);
    exit(EXIT.FAILURE);
  }
  for (const w of limits.warnings) log.warn(w);
  const built = buildPlan(cfg.configFiles, cfg.services, planOptions(cfg, env));
  if (!built.ok) {
    print(2, built.diagnostics.map((d) => `${d}\n`).join(""));
    exit(EXIT.CONFIG);
  }
  const verbosity = givenVerbosity(cfg, built.plan);
  if (verbosity !== null) setVerbosity(verbosity);
  const needsUser = built.plan.services.find((s) => s.user);
  if (needsUser && !nativeHelper) {
    log.fatal(`service ${needsUser.name}: \`user\` needs the native helper of the single-file pidone, which this build lacks`);
    exit(EXIT.CONFIG);
  }
  setUpReaping(cfg);
  checkReaping();
  new ServicesMode(cfg, built.plan, inherited, envp, env).start();
}

/** Where services mode stands. Every change goes through ServicesMode.enter. */
type Phase =
  /** Services start in dependency order and restart per policy. Ends → stopping: on a
   *  stop signal, when a critical service (or a oneshot) ends for good, or when nothing
   *  is left that could run. */
  | { name: "running" }
  /** The ordered stop: services in reverse dependency order, each within its
   *  stop_timeout and what is left of the grace; then what they left behind gets SIGTERM.
   *  Ends → finishing once every level stopped and no child is left, or the grace is over. */
  | { name: "stopping"; since: number; levelsDone: boolean }
  /** The output services already wrote is copied out, within what is left of the grace
   *  since the stop began; then pidone exits. */
  | { name: "finishing"; since: number };

type Fields = Record<string, string | number | boolean | null>;

class ServicesMode {
  // ---------------------------------------------------------------- the events

  /** The intake, once per delivery; `forwarded`: on_signal already sent it on. */
  readonly signal = (sig: number, forwarded: boolean): void => {
    if (sig === SIG.CHLD) {
      // What a service said before its process exited comes first (MAINPID=, READY=1).
      this.notify?.drain();
      const noneLeft = reapAllRaw(this.reaped);
      // The ends may have given back the descriptors a paused HTTP listener waits for.
      this.http?.recheck();
      if (this.phase.name === "stopping" && this.phase.levelsDone && noneLeft) this.stopped();
      return;
    }
    worked(); // a storm's wakes leave garbage too (src/process/gc.ts)
    // The kernel's wake for a notify socket or readiness pipe (notify.ts): pidone's own.
    if (sig === SIG.IO && this.notify) return this.notify.drain();
    if (this.cfg.stopSignals.has(sig)) return this.stopRequested(`received ${signalName(sig)}`);
    if (forwarded) return;
    const out = this.outputOf(sig);
    if (out === 0) return;
    const taking = this.runners.filter((r) => r.running && this.takes(r, sig));
    for (const r of taking) r.signalGroup(out);
    counters.forwarded += taking.length;
    if (taking.length) yieldCpu();
  };

  /** The reaping loop, once per child: the service (or probe) it belongs to learns of it. */
  readonly reaped = (pid: number, rawStatus: number): void => {
    const owner = this.owners.get(pid);
    if (owner) {
      this.owners.delete(pid);
      // Decoded for owners only: an orphan's status would be garbage, one per orphan.
      owner(decodeStatus(rawStatus));
    } else if (this.cfg.warnOnReap) log.warn(`Reaped zombie process with pid=${pid}`);
  };

  /** A service ended for good (ServiceRunner, through the host): the container's end? */
  private serviceEnded(svc: ServiceRunner, code: number): void {
    if (code !== 0 && this.firstFailure === null) this.firstFailure = code;
    if ((svc.spec.critical || svc.spec.oneshot) && this.phase.name === "running") {
      this.verdict = code;
      return this.beginStop(`${svc.name} ended`);
    }
    this.startWhatCan();
    this.finishIfIdle();
  }

  /** TreeStop: the grace ran out, SIGKILL went out, and the kernel had time to hand back the dead. */
  readonly graceOver = (): void => this.stopped();

  // ---------------------------------------------------------------- the transitions

  /** Every change of phase. */
  private enter(next: Phase): void {
    this.phase = next;
    if (next.name === "finishing") void this.finish(next.since);
  }

  /** A stop signal: stop_delay first (the grace counts from the first signal), then beginStop. */
  private stopRequested(why: string): void {
    const { stopDelay } = this;
    // Told at the first signal, before a stop_delay: the manager stops routing to us then too.
    if (this.phase.name === "running") this.manager?.tell("STOPPING=1");
    if (stopDelay.ms > 0 && !stopDelay.requested && this.phase.name === "running") {
      this.treeStop.trigger(why);
      this.event(null, `${why}: stopping in ${stopDelay.ms / 1000} s (stop_delay)`, { event: "stop-delay", delay: stopDelay.ms / 1000 });
    }
    stopDelay.request(() => this.beginStop(why));
  }

  /** running → stopping: stop the services level by level, then sweep. */
  private beginStop(why: string): void {
    if (this.phase.name !== "running") return;
    const stopping: Phase = { name: "stopping", since: this.stopDelay.requestedAt ?? performance.now(), levelsDone: false };
    this.enter(stopping);
    this.manager?.tell("STOPPING=1");
    this.treeStop.trigger(why);
    this.event(null, `stopping: ${why}`, { event: "stopping" });
    void this.stopLevels(stopping);
  }

  private async stopLevels(stopping: Phase & { name: "stopping" }): Promise<void> {
    const graceMs = this.plan.settings.grace * 1000;
    for (const level of stopLevels(this.plan.services)) {
      await Promise.all(
        level.map((spec) => {
          const r = this.byName.get(spec.name)!;
          const left = graceMs - (performance.now() - stopping.since);
          return r.stop(Math.max(0, Math.min(r.spec.stopTimeout * 1000, left)));
        }),
      );
    }
    stopping.levelsDone = true;
    if (!this.treeStop.sweeping) return this.stopped();
    this.treeStop.sweep();
    if (reapAllRaw(this.reaped)) this.stopped();
  }

  /** stopping → finishing (once: the grace timer, the last reap and the levels may all get here). */
  private stopped(): void {
    if (this.phase.name === "stopping") this.enter({ name: "finishing", since: this.phase.since });
  }

  /** The container's status, the last output copied out, and exit. */
  private async finish(stopSince: number): Promise<void> {
    let code = this.verdict;
    if (code === null) {
      // Stopped on request: clean if every critical service went the way a stop should.
      // A service the operator stopped was not stopped by this stop: how it went is no verdict.
      const bad = this.runners.find((r) => r.spec.critical && !r.held && !r.stoppedCleanly());
      code = bad ? (bad.lastCode ?? 1) : 0;
    }
    this.control?.close();
    this.http?.close();
    this.notify?.close();
    if (this.mux) {
      await this.queue; // each exit event waits at most 100 ms
      // What services already wrote is copied for at least DRAIN_MS, and for whatever is
      // left of the grace: a slow log reader must not cost a batch job its last lines.
      const graceLeft = this.plan.settings.grace * 1000 - (performance.now() - stopSince);
      const { droppedLines } = await this.mux.drain(Math.max(DRAIN_MS, graceLeft));
      if (droppedLines) log.warn(`${droppedLines} lines of service output were lost at exit`);
    }
    exit(code);
  }

  /** Starts every waiting service whose dependencies are all ready (or done). */
  private startWhatCan(): void {
    if (this.phase.name !== "running") return;
    for (const r of this.runners) {
      if (r.state !== "waiting") continue;
      const deps = r.spec.after.map((n) => this.byName.get(n)!);
      if (deps.every((d) => d.state === "ready" || d.state === "done")) r.start();
    }
  }

  /**
   * The inherited NOTIFY_SOCKET hears READY=1 once every service is ready (a oneshot:
   * done; one stopped by the operator does not count): the container is up.
   */
  private tellManagerIfReady(): void {
    if (!this.manager || this.phase.name !== "running") return;
    if (this.runners.every((r) => r.held || r.state === "ready" || r.state === "done")) this.manager.tell("READY=1");
  }

  /** Nothing running and nothing that can start: the container's work is over. */
  private finishIfIdle(): void {
    if (this.phase.name !== "running") return;
    const alive = this.runners.some((r) => {
      // Stopped by the operator: the container waits for its `start`.
      if (r.held) return true;
      if (r.state === "starting" || r.state === "ready" || r.state === "backoff" || r.running) return true;
      if (r.state !== "waiting") return false;
      return r.spec.after.every((n) => ["waiting", "starting", "ready", "backoff", "done"].includes(this.byName.get(n)!.state));
    });
    if (!alive) {
      this.verdict = this.firstFailure ?? 0;
      this.beginStop("no service left to run");
    }
  }

  // ---------------------------------------------------------------- state

  private phase: Phase = { name: "running" };
  /** Set when a critical service ended for good: the container's status. */
  private verdict: number | null = null;
  private firstFailure: number | null = null;
  private readonly runners: ServiceRunner[] = [];
  private readonly byName = new Map<string, ServiceRunner>();
  /** Who learns of each pid's end: a service's process, or a probe's. */
  private readonly owners = new Map<number, (status: ExitStatus) => void>();
  private readonly signalPlan: SignalPlan;
  /** The dispositions every service and probe starts with (the plan never changes). */
  private readonly sigdefault: Uint8Array;
  private readonly treeStop: TreeStop;
  /** stop_delay; `stopDelay.requested`: a stop signal came (a readiness endpoint answers 503 from then). */
  readonly stopDelay: StopDelay;
  /** Made in start(), once the signals are caught: see there. */
  private mux: OutputMux | null = null;
  private readonly color: boolean;
  /** pidone's own events, in the order things happened (see event). */
  private queue: Promise<void> = Promise.resolve();
  private control: ControlServer | null = null;
  private http: HttpServer | null = null;
  /** The operator's actions and the status they see (`pidone --ctl`, `--http`). */
  private readonly operator: Operator;
  /** The level events are shown at (givenVerbosity, else every event). */
  private readonly eventLevel: number;
  /** sd_notify sockets and readiness pipes, when a service has them (services/notify.ts). */
  private readonly notify: Notifications | null;
  /** The NOTIFY_SOCKET pidone inherited: told READY=1 and STOPPING=1, never passed on. */
  private readonly manager: Manager | null;
  /** The environment services and probes start from: pidone's, without its manager's variables. */
  private readonly envp: readonly Uint8Array[];

  constructor(
    private readonly cfg: RunConfig,
    private readonly plan: ServicePlan,
    private readonly inherited: Inheritance,
    envp: readonly Uint8Array[],
    env: ReadonlyMap<string, string>,
  ) {
    this.color = isatty(1) && !env.has("NO_COLOR");
    this.eventLevel = givenVerbosity(cfg, plan) ?? EVENTS_DEFAULT_VERBOSITY;
    const outer = env.get("NOTIFY_SOCKET");
    this.manager = outer ? new Manager(outer) : null;
    const own = MANAGER_VARIABLES.map((n) => `${n}=`);
    this.envp = envp.filter((e) => !own.some((prefix) => Buffer.from(e.subarray(0, prefix.length)).toString("latin1") === prefix));
    this.notify = Notifications.wanted(plan.services) ? new Notifications(this.runners, (s, m, f) => this.event(s, m, f)) : null;
    // The notifications' wake is SIGIO: caught even when our parent left it ignored.
    const ignored = new Set(inherited.ignored);
    if (this.notify) ignored.delete(SIG.IO);
    this.signalPlan = planSignals(ignored, [...cfg.stopSignals]);
    this.sigdefault = childDefaultSet(this.signalPlan);
    this.treeStop = new TreeStop(plan.settings.grace * 1000, this.graceOver);
    this.stopDelay = new StopDelay(plan.settings.stopDelay * 1000);
    const host = this.host();
    for (const spec of plan.services) {
      const r = new ServiceRunner(spec, host);
      this.runners.push(r);
      this.byName.set(spec.name, r);
    }
    this.operator = new Operator({
      runners: this.runners,
      byName: this.byName,
      running: () => this.phase.name === "running",
      stopping: () => this.phase.name !== "running" || this.stopDelay.requested,
      startWhatCan: () => this.startWhatCan(),
      event: (service, message, fields) => this.event(service, message, fields),
    });
  }

  private ctx(output: LaunchContext["output"]): LaunchContext {
    return { envp: this.envp, sigmask: this.inherited.sigmask, sigdefault: this.sigdefault, output };
  }

  /** pidone's own event line: through the multiplexer (prefixed or JSON), else on stderr. */
  private emit(service: string | null, message: string, fields?: Fields): void {
    if (this.mux) return this.mux.event(service, message, fields);
    const time = this.plan.settings.timestamps ? `${new Date().toISOString()} ` : "";
    print(2, `${time}[pidone] ${service ? `${service}: ` : ""}${message}\n`);
  }

  /** Whether the level shows this event (src/services/events.ts). */
  private shows(service: string | null, fields?: Fields): boolean {
    const stopping = service !== null && this.byName.get(service)?.state === "stopping";
    return this.eventLevel >= eventVerbosity(fields, stopping);
  }

  /** Events stay in the order things happened, and "exited" waits (at most 100 ms) for
   *  the last lines the service wrote before it exited, so the log reads in that order. */
  private event(service: string | null, message: string, fields?: Fields): void {
    if (!this.shows(service, fields)) return;
    const mux = this.mux;
    const exited = mux !== null && service !== null && fields?.event === "exited";
    this.queue = this.queue.then(async () => {
      if (exited) await Promise.race([mux.outputEnded(service), Bun.sleep(100)]);
      this.emit(service, message, fields);
    });
  }

  /** What a ServiceRunner may ask of the supervisor. */
  private host(): ServiceHost {
    return {
      spawn: (spec: ServiceSpec) => {
        const runner = this.byName.get(spec.name)!;
        const extras = this.notify ? this.notify.prepare(runner) : null;
        if (extras && !extras.ok) return { ok: false, step: "notify", errno: 0, exec: false, message: extras.message };
        const r = launch(spec.argv, spec, this.ctx(this.mux ? "pipe" : "inherit"), extras ?? undefined);
        extras?.launched(r.ok);
        if (!r.ok) return r;
        if (this.mux && r.stdout !== null && r.stderr !== null) {
          this.mux.attach(spec.name, "stdout", r.stdout);
          this.mux.attach(spec.name, "stderr", r.stderr);
        }
        return { ok: true, pid: r.pid };
      },
      track: (pid, svc) => {
        this.owners.set(pid, (status) => {
          // A main process handed over (MAINPID=): its end is no longer the service's.
          if (svc.pid !== pid) return;
          this.notify?.ended(svc);
          svc.exited(status);
          this.publishTargets();
        });
        this.publishTargets();
      },
      event: (service, message, fields) => this.event(service, message, fields),
      readied: () => {
        this.startWhatCan();
        this.tellManagerIfReady();
      },
      ended: (svc, code) => this.serviceEnded(svc, code),
      runProgram: (argv, executable, as, started) => {
        return new Promise((resolve) => {
          const r = launch(argv, { env: as.env, envFiles: as.envFiles, cwd: as.cwd, user: as.user, executable }, this.ctx("null"));
          if (!r.ok) return resolve(r);
          this.owners.set(r.pid, (s) => resolve(exitCodeOf(s)));
          started?.(r.pid);
        });
      },
    };
  }

  // ---------------------------------------------------------------- signals

  private takes(r: ServiceRunner, sig: number): boolean {
    return r.spec.signals === "all" || r.spec.signals.includes(sig);
  }

  private outputOf(sig: number): number {
    return this.cfg.rewrite.get(sig) ?? sig;
  }

  /**
   * A signal that exactly one running service takes is forwarded by the native handler
   * itself, as in tini's mode: no trip through the event loop, which a flood of service
   * output keeps busy. Republished whenever a service starts or ends.
   */
  private publishTargets(): void {
    if (!nativeHelper) return;
    // One /proc read per running service, not one per signal.
    const running = this.runners.filter((r) => r.running).map((r) => ({ r, target: r.signalTarget() }));
    for (const sig of this.signalPlan.forwarded) {
      if (this.cfg.stopSignals.has(sig) || (this.notify && sig === SIG.IO)) continue;
      const takers = running.filter(({ r }) => this.takes(r, sig));
      publishSignalTarget(sig, (takers.length === 1 && takers[0]!.target) || "queue");
    }
  }

  start(): void {
    const stops = this.cfg.stopSignals;
    // Stop signals start the ordered stop: JavaScript's alone, as is SIGIO with
    // notifications (their wake). The others go straight to the one service that takes
    // them (publishTargets), else to signal().
    const own = (sig: number) => stops.has(sig) || (this.notify !== null && sig === SIG.IO);
    listen(this.signalPlan, this.signal, (sig) => (own(sig) ? "queue" : this.outputOf(sig)), own);
    // The output worker's thread only now: a signal pending since start-up (an early
    // docker stop) may be delivered to that thread, and until the line above it would
    // meet the default action there (fatal, or dropped as PID 1).
    const format = this.plan.settings.logFormat;
    const timestamps = this.plan.settings.timestamps;
    if (format !== "raw") this.mux = new OutputMux({ format, names: this.plan.services.map((s) => s.name), color: this.color, timestamps });
    log.debug(`pidone ${getpid()}: ${this.runners.length} services`);
    this.openControl();
    if (this.plan.settings.http) {
      const served = serveHttp(this.plan.settings.http, () => this.operator.status(), { warn: (line) => log.warn(line) });
      if (!served.ok) {
        log.fatal(served.message);
        exit(EXIT.FAILURE);
      }
      this.http = served.server;
    }
    this.notify?.open();
    keepAlive();
    // Probe host names are resolved before anything starts: see ready.ts.
    void resolveProbeHosts(this.plan.services.flatMap((s) => [s.ready, s.health])).then(() => this.startWhatCan());
  }

  // ---------------------------------------------------------------- the operator

  /** The control socket (src/control/): where --control, PIDONE_CONTROL or [settings] say, else the default. */
  private openControl(): void {
    const place = controlPlace(this.cfg.control, this.plan.settings.control);
    if ("off" in place) {
      if (place.off) this.event(null, place.off, { event: "control-off" });
      return;
    }
    const handler = controlHandler(this.operator);
    this.control = ControlServer.start(place.path, handler, (line) => this.event(null, line, { event: "control-failed" }));
    if (this.control) log.debug(`control socket at ${place.path}`);
  }
}
