// tini's job, and what tini leaves out: one main program, signals forwarded (or
// rewritten), zombies reaped, its exit code returned; then the whole-tree stop, daemons
// followed through --wait-all or --pidfile.
//
//   running ──main exits──▶ draining ──no child left / grace over──▶ exit
//      │  └─main exits 0 with --pidfile──▶ adopting ──pid found──▶ running (adopted)
//      └─stop signal: forward it, start the grace clock
import type { RunConfig } from "../cli/options.ts";
import { log } from "../log/logger.ts";
import { decodeStatus, exitCodeOf, reapAll, reapAllRaw, type ExitStatus } from "../process/reap.ts";
import { checkReaping, mayReapNatively, setUpReaping } from "../process/reaper.ts";
import { releaseTerminal, spawnProgram } from "../process/spawn.ts";
import type { Inheritance } from "../process/startup.ts";
import { descendantsOf, parentOf, processGroupOf } from "../process/tree.ts";
import { keepAlive } from "../process/loop.ts";
import { childDefaultSet, listen, planSignals } from "../signals/intake.ts";
import { SIG, signalName } from "../signals/table.ts";
import { SyscallError, errno, exit, getpid, kill, strsignal, yieldCpu } from "../sys/libc.ts";
import { available as nativeAvailable, publishTarget, watchChild, type NativeExit } from "../sys/native.ts";
import { TreeStop } from "../supervisor/stop.ts";
import { readPidfile } from "../supervisor/pidfile.ts";

export function runSingle(cfg: RunConfig, inherited: Inheritance, envp: readonly Uint8Array[]): void {
  const remap = (code: number) => (cfg.expectExit.has(code) ? 0 : code);
  const plan = planSignals(new Set(inherited.ignored), [...cfg.stopSignals], cfg.setsid);

  setUpReaping(cfg);

  const stop = new TreeStop(cfg.graceSeconds * 1000, () => finish("the grace period ended"));

  let main: { pid: number; adopted: boolean } | null = null;
  const reapNatively = mayReapNatively(cfg);
  // When the main child's end leaves nothing to do but exit (no log line, no daemon to
  // follow, and nothing to sweep: no sweep at all, or no child left), the handler that
  // reaps it exits for us, with this table's code, built once the child runs.
  let nativeExit: NativeExit | null = null;
  // The native handler forwards to whatever main is now, without asking JavaScript; it
  // also reaps (tini's loop, in C) once it knows which status to keep for us. Reaping
  // starts here, after spawnProgram: the watch is in place before the handler may reap
  // (a main that ended sooner is found by our own waitpid loop), and spawnProgram's own
  // waitpid(pid) for a failed trampoline never races the handler.
  const setMain = (m: { pid: number; adopted: boolean } | null) => {
    main = m;
    publishTarget(m ? (cfg.processGroup || cfg.setsid ? -m.pid : m.pid) : "queue");
    watchChild(m ? m.pid : 0, reapNatively, nativeExit);
  };
  let phase: "running" | "adopting" | "draining" = "running";
  let exitCode = 0;
  let firstFailure: number | null = null; // --wait-all: the first non-zero status wins

  const finish = (why: string): never => {
    const code = cfg.waitAll ? (firstFailure ?? 0) : exitCode;
    log.trace(`Exiting: ${why}`);
    return exit(code);
  };

  // In a requested stop, dying of the stop itself is not a failure.
  const isFailure = (s: ExitStatus) => {
    const code = exitCodeOf(s);
    if (code === 0) return false;
    if (!stop.triggered) return true;
    const sig = s.exited ? code - 128 : s.signal;
    return !(sig === SIG.KILL || sig === SIG.TERM || cfg.stopSignals.has(sig));
  };

  const mainEnded = (status: ExitStatus) => {
    const code = remap(exitCodeOf(status));
    if (status.exited) log.info(`Main child exited normally (with status '${status.code}')`);
    else log.info(`Main child exited with signal (with signal '${strsignal(status.signal)}')`);

    if (main!.adopted && cfg.pidfile) {
      // A daemon that re-execs itself (binary upgrade) leaves its successor's pid behind.
      const next = readPidfile(cfg.pidfile);
      if (next.ok && next.pid !== main!.pid && parentOf(next.pid) === getpid()) {
        log.info(`Following pid ${next.pid} from ${cfg.pidfile}`);
        setMain({ pid: next.pid, adopted: true });
        return;
      }
    }
    setMain(null);
    if (cfg.pidfile && !stop.triggered && code === 0 && phase === "running") {
      phase = "adopting";
      adoptFromPidfile();
      return;
    }
    exitCode = code;
    if (cfg.waitAll) {
      if (code !== 0 && firstFailure === null && isFailure(status)) firstFailure = code;
      phase = "draining";
      return;
    }
    phase = "draining";
    stop.trigger("main program exited");
    if (!stop.sweeping) finish("child has exited");
    stop.sweep();
  };

  const adoptFromPidfile = () => {
    const file = cfg.pidfile!;
    const deadline = performance.now() + cfg.pidfileTimeoutSeconds * 1000;
    let last = `${file} did not appear`;
    const attempt = () => {
      if (phase !== "adopting") return;
      const r = readPidfile(file);
      if (r.ok) {
        if (parentOf(r.pid) === getpid()) {
          setMain({ pid: r.pid, adopted: true });
          phase = "running";
          log.info(`Adopted pid ${r.pid} from ${file} as the main process`);
          return;
        }
        last = `${file} names pid ${r.pid}, which is not a child of pidone`;
      } else last = r.reason;
      if (performance.now() >= deadline) {
        log.fatal(`--pidfile: ${last} (waited ${cfg.pidfileTimeoutSeconds} s)`);
        exitCode = 1;
        phase = "draining";
        stop.trigger("no daemon to adopt");
        if (!stop.sweeping) finish("no daemon to adopt");
        stop.sweep();
        afterReap(reapAll(onReaped));
        return;
      }
      // Bounded to the adoption window: the daemon writes the file after we learn its
      // parent exited, and the kernel gives no event for "a file appeared" we could
      // wait on without a watcher of our own.
      setTimeout(attempt, 20);
    };
    attempt();
  };

  // Hot path (a zombie backlog): no allocation unless something is logged or decided.
  const onReapedRaw = (pid: number, raw: number) => {
    if (log.level >= 4) log.debug(`Reaped child with pid: '${pid}'`);
    if (main && pid === main.pid) return mainEnded(decodeStatus(raw));
    if (cfg.warnOnReap) log.warn(`Reaped zombie process with pid=${pid}`);
    if (cfg.waitAll && raw !== 0 && firstFailure === null) {
      const status = decodeStatus(raw);
      if (isFailure(status)) firstFailure = exitCodeOf(status);
    }
  };
  const onReaped = (pid: number, status: ExitStatus) => onReapedRaw(pid, status.exited ? status.code << 8 : status.signal);

  const afterReap = (noneLeft: boolean) => {
    if (!noneLeft) return;
    if (phase === "draining") finish(cfg.waitAll ? "no child left" : "child has exited");
  };

  /** Every process group among our descendants, once each (ours excluded). */
  const signalAllGroups = (sig: number) => {
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
  };

  /** What goes out for `sig`: a rewrite, SIGSTOP for terminal stops under --setsid, 0 to drop. */
  const outputOf = (sig: number) => {
    if (cfg.setsid && (sig === SIG.TSTP || sig === SIG.TTIN || sig === SIG.TTOU)) return SIG.STOP;
    return cfg.rewrite.get(sig) ?? sig;
  };

  const forward = (sig: number) => {
    const out = outputOf(sig);
    if (out === 0) {
      if (log.level >= 4) log.debug(`Dropping signal: '${strsignal(sig)}'`);
      return;
    }
    if (main) {
      if (log.level >= 4) log.debug(`Passing signal: '${strsignal(out)}'`);
      try {
        kill(cfg.processGroup || cfg.setsid ? -main.pid : main.pid, out);
        yieldCpu();
      } catch (e) {
        if (e instanceof SyscallError && e.errno === errno.ESRCH) log.warn("Child was dead when forwarding signal");
        else log.error(`Unexpected error when forwarding signal: '${(e as Error).message}'`);
      }
    } else if (cfg.waitAll || phase === "adopting") {
      log.debug(`Passing signal: '${strsignal(out)}' to every remaining process group`);
      signalAllGroups(out);
    }
  };

  // Before listen(): giving up the terminal raises SIGHUP and SIGCONT that must not be forwarded.
  const takeTerminal = cfg.setsid && releaseTerminal();

  const startListening = () =>
    listen(
      plan,
      (sig, forwarded) => {
        if (sig === SIG.CHLD) {
          if (log.level >= 4) log.debug("Received SIGCHLD");
          afterReap(reapAllRaw(onReapedRaw));
          return;
        }
        if (cfg.stopSignals.has(sig)) stop.trigger(`received ${signalName(sig)}`);
        if (!forwarded) return forward(sig);
        if (log.level < 4) return;
        const out = outputOf(sig);
        if (out === 0) log.debug(`Dropping signal: '${strsignal(sig)}'`);
        else log.debug(`Passing signal: '${strsignal(out)}'`);
      },
      outputOf,
      // Stop signals start the grace clock now; a forward alone needs no JavaScript.
      (sig) => cfg.stopSignals.has(sig) || log.level >= 4,
    );
  // In the single file every signal has been blocked since the stub's first instruction:
  // what arrives before listen() waits, pending, so the child may start first and its
  // exec overlap our set-up. Without the stub, the runtime's other threads would take a
  // signal at its default action (SIGTERM would end us): listen first.
  if (!nativeAvailable) startListening();

  const outcome = spawnProgram(cfg.program, {
    envp,
    sigmask: inherited.sigmask,
    sigdefault: childDefaultSet(plan),
    keepFds: inherited.fds,
    newSession: cfg.setsid,
    takeTerminal,
  });
  // tini warns before it spawns; the warning (and consola's set-up for it) waits until
  // the child runs, off its path, and still comes before any message of ours about it.
  checkReaping();
  if (!outcome.ok) {
    log.fatal(outcome.message);
    exit(remap(outcome.code));
  }
  if (reapNatively && log.level < 3) {
    nativeExit = { codes: new Uint8Array(256), alone: stop.sweeping };
    for (let code = 0; code < 256; code++) nativeExit.codes[code] = remap(code);
  }
  setMain({ pid: outcome.pid, adopted: false });
  if (nativeAvailable) startListening();
  log.info(`Spawned child process '${Buffer.from(cfg.program[0]!).toString()}' with pid '${outcome.pid}'`);
  keepAlive();
}
