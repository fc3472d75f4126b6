// Several services in one container: start them in dependency order, restart them per
// policy, stop them in reverse order inside the grace, and end the container when a
// critical one ends for good.
import type { RunConfig } from "../cli/options.ts";
import { buildPlan, check, stopLevels, type ServicePlan, type ServiceSpec, type PlanOptions } from "../config/index.ts";
import { EXIT, exitCodeOfFailure } from "../errors.ts";
import { LEVEL, log, print } from "../log/logger.ts";
import { keepAlive } from "../process/loop.ts";
import { reapAll, exitCodeOf, type ExitStatus } from "../process/reap.ts";
import { checkReaping, setUpReaping } from "../process/reaper.ts";
import type { Inheritance } from "../process/startup.ts";
import { launch, type LaunchContext } from "../services/launch.ts";
import { OutputMux } from "../services/output.ts";
import { ServiceRunner, type ServiceHost } from "../services/service.ts";
import { childDefaultSet, listen, planSignals } from "../signals/intake.ts";
import { SIG, signalName } from "../signals/table.ts";
import { exit, getpid, isatty, yieldCpu } from "../sys/libc.ts";
import { available as nativeHelper, publishSignalTarget } from "../sys/native.ts";
import { TreeStop } from "../supervisor/stop.ts";

/** At exit, what services already wrote is copied for at most this long. */
const DRAIN_MS = 1000;

function planOptions(cfg: RunConfig, env: ReadonlyMap<string, string>): PlanOptions {
  const opts: PlanOptions = { env: Object.fromEntries(env) };
  if (cfg.graceFrom === "flag") opts.settings = { grace: cfg.graceSeconds };
  if (cfg.graceFrom === "env") opts.defaultSettings = { grace: cfg.graceSeconds };
  return opts;
}

export function runCheck(cfg: RunConfig, env: ReadonlyMap<string, string>): never {
  const r = check(cfg.configFiles, cfg.services, planOptions(cfg, env));
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
  const built = buildPlan(cfg.configFiles, cfg.services, planOptions(cfg, env));
  if (!built.ok) {
    print(2, built.diagnostics.map((d) => `${d}\n`).join(""));
    exit(EXIT.CONFIG);
  }
  const plan: ServicePlan = built.plan;
  const needsUser = plan.services.find((s) => s.user);
  if (needsUser && !nativeHelper) {
    log.fatal(`service ${needsUser.name}: \`user\` needs the native helper of the single-file pidone, which this build lacks`);
    exit(EXIT.CONFIG);
  }
  setUpReaping(cfg);
  checkReaping();

  const format = plan.settings.logFormat;
  const mux =
    format === "raw"
      ? null
      : new OutputMux({
          format,
          names: plan.services.map((s) => s.name),
          color: isatty(1) && !env.has("NO_COLOR"),
        });

  const signalPlan = planSignals(new Set(inherited.ignored), [...cfg.stopSignals]);
  const ctx = (output: LaunchContext["output"]): LaunchContext => ({
    envp,
    sigmask: inherited.sigmask,
    sigdefault: childDefaultSet(signalPlan),
    output,
  });

  const owners = new Map<number, (status: ExitStatus) => void>();
  const runners: ServiceRunner[] = [];
  const byName = new Map<string, ServiceRunner>();
  let stopping = false;
  /** Set when a critical service ended for good: the container's status. */
  let verdict: number | null = null;
  let firstFailure: number | null = null;

  type Fields = Record<string, string | number | boolean | null>;
  const emit = (service: string | null, message: string, fields?: Fields) => {
    if (mux) mux.event(service, message, fields);
    else if (log.level >= LEVEL.warn) print(2, `[pidone] ${service ? `${service}: ` : ""}${message}\n`);
  };
  // Events stay in the order things happened, and "exited" waits (at most 100 ms) for
  // the last lines the service wrote before it exited, so the log reads in that order.
  let queue: Promise<void> = Promise.resolve();
  const event = (service: string | null, message: string, fields?: Fields) => {
    const exited = mux !== null && service !== null && fields?.event === "exited";
    queue = queue.then(async () => {
      if (exited) await Promise.race([mux!.outputEnded(service!), Bun.sleep(100)]);
      emit(service, message, fields);
    });
  };

  const host: ServiceHost = {
    spawn(spec: ServiceSpec) {
      const r = launch(spec.argv, spec, ctx(mux ? "pipe" : "inherit"));
      if (!r.ok) return r;
      if (mux && r.stdout !== null && r.stderr !== null) {
        mux.attach(spec.name, "stdout", r.stdout);
        mux.attach(spec.name, "stderr", r.stderr);
      }
      return { ok: true, pid: r.pid };
    },
    track(pid, svc) {
      owners.set(pid, (status) => {
        svc.exited(status);
        publishTargets();
      });
      publishTargets();
    },
    event,
    readied() {
      startWhatCan();
    },
    ended(svc, code) {
      if (code !== 0 && firstFailure === null) firstFailure = code;
      if ((svc.spec.critical || svc.spec.oneshot) && !stopping) {
        verdict = code;
        beginStop(`${svc.name} ended`);
        return;
      }
      startWhatCan();
      finishIfIdle();
    },
    runProgram(argv, executable, as) {
      return new Promise((resolve) => {
        const r = launch(argv, { env: as.env, cwd: as.cwd, user: as.user, executable }, ctx("null"));
        if (!r.ok) return resolve(exitCodeOfFailure(r));
        owners.set(r.pid, (s) => resolve(exitCodeOf(s)));
      });
    },
  };

  for (const spec of plan.services) {
    const r = new ServiceRunner(spec, host);
    runners.push(r);
    byName.set(spec.name, r);
  }

  /** Starts every waiting service whose dependencies are all ready (or done). */
  function startWhatCan() {
    if (stopping) return;
    for (const r of runners) {
      if (r.state !== "waiting") continue;
      const deps = r.spec.after.map((n) => byName.get(n)!);
      if (deps.every((d) => d.state === "ready" || d.state === "done")) r.start();
    }
  }

  /** Nothing running and nothing that can start: the container's work is over. */
  function finishIfIdle() {
    if (stopping) return;
    const alive = runners.some((r) => {
      if (r.state === "starting" || r.state === "ready" || r.state === "backoff" || r.running) return true;
      if (r.state !== "waiting") return false;
      return r.spec.after.every((n) => ["waiting", "starting", "ready", "backoff", "done"].includes(byName.get(n)!.state));
    });
    if (!alive) {
      verdict = firstFailure ?? 0;
      beginStop("no service left to run");
    }
  }

  const treeStop = new TreeStop(plan.settings.grace * 1000, () => void finish());
  let stopStartedAt = 0;
  let levelsDone = false;

  async function beginStop(why: string) {
    if (stopping) return;
    stopping = true;
    stopStartedAt = performance.now();
    treeStop.trigger(why);
    event(null, `stopping: ${why}`, { event: "stopping" });
    const graceMs = plan.settings.grace * 1000;
    for (const level of stopLevels(plan.services)) {
      await Promise.all(
        level.map((spec) => {
          const r = byName.get(spec.name)!;
          const left = graceMs - (performance.now() - stopStartedAt);
          return r.stop(Math.max(0, Math.min(r.spec.stopTimeout * 1000, left)));
        }),
      );
    }
    levelsDone = true;
    if (!treeStop.sweeping) return void finish();
    treeStop.sweep();
    if (reapAll(onReaped)) void finish();
  }

  let finishing = false;
  async function finish() {
    if (finishing) return;
    finishing = true;
    let code = verdict;
    if (code === null) {
      // Stopped on request: clean if every critical service went the way a stop should.
      const bad = runners.find((r) => r.spec.critical && !r.stoppedCleanly());
      code = bad ? (bad.lastCode ?? 1) : 0;
    }
    if (mux) {
      await queue; // each exit event waits at most 100 ms
      // What services already wrote is copied for at least DRAIN_MS, and for whatever is
      // left of the grace: a slow log reader must not cost a batch job its last lines.
      const graceLeft = stopStartedAt ? plan.settings.grace * 1000 - (performance.now() - stopStartedAt) : 0;
      const { droppedLines } = await mux.drain(Math.max(DRAIN_MS, graceLeft));
      if (droppedLines) log.warn(`${droppedLines} lines of service output were lost at exit`);
    }
    exit(code);
  }

  function onReaped(pid: number, status: ExitStatus) {
    const owner = owners.get(pid);
    if (owner) {
      owners.delete(pid);
      owner(status);
    } else if (cfg.warnOnReap) log.warn(`Reaped zombie process with pid=${pid}`);
  }

  function takes(r: ServiceRunner, sig: number): boolean {
    return r.spec.signals === "all" || r.spec.signals.includes(sig);
  }
  function outputOf(sig: number): number {
    return cfg.rewrite.get(sig) ?? sig;
  }

  /**
   * A signal that exactly one running service takes is forwarded by the native handler
   * itself, as in tini's mode: no trip through the event loop, which a flood of service
   * output keeps busy. Republished whenever a service starts or ends.
   */
  function publishTargets() {
    if (!nativeHelper) return;
    // One /proc read per running service, not one per signal.
    const running = runners.filter((r) => r.running).map((r) => ({ r, target: r.signalTarget() }));
    for (const sig of signalPlan.forwarded) {
      if (cfg.stopSignals.has(sig)) continue;
      const takers = running.filter(({ r }) => takes(r, sig));
      publishSignalTarget(sig, (takers.length === 1 && takers[0]!.target) || "queue");
    }
  }

  listen(
    signalPlan,
    (sig, forwarded) => {
      if (sig === SIG.CHLD) {
        const noneLeft = reapAll(onReaped);
        if (stopping && levelsDone && noneLeft) void finish();
        return;
      }
      if (cfg.stopSignals.has(sig)) {
        void beginStop(`received ${signalName(sig)}`);
        return;
      }
      if (forwarded) return;
      const out = outputOf(sig);
      if (out === 0) return;
      const taking = runners.filter((r) => r.running && takes(r, sig));
      for (const r of taking) r.signalGroup(out);
      if (taking.length) yieldCpu();
    },
    // Stop signals start the ordered stop: JavaScript's alone.
    (sig) => (cfg.stopSignals.has(sig) ? "queue" : outputOf(sig)),
    (sig) => cfg.stopSignals.has(sig),
  );

  log.debug(`pidone ${getpid()}: ${runners.length} services`);
  startWhatCan();
  keepAlive();
}
