// tini's job: one child, signals forwarded, zombies reaped, its exit code returned.
import type { RunConfig } from "../cli/options.ts";
import { log } from "../log/logger.ts";
import { exitCodeOf, reapAll } from "../process/reap.ts";
import { spawnProgram } from "../process/spawn.ts";
import { checkReaping, setParentDeathSignal, registerSubreaper } from "../process/reaper.ts";
import { childDefaultSet, listen, planSignals } from "../signals/intake.ts";
import { SIG } from "../signals/table.ts";
import { SyscallError, errno, exit, kill, sigprocmask, SIG_BLOCK, strsignal } from "../sys/libc.ts";
import type { Inheritance } from "../process/startup.ts";
import { keepAlive } from "../process/loop.ts";

export function runSingle(cfg: RunConfig, inherited: Inheritance, envp: readonly Uint8Array[]): void {
  const remap = (code: number) => (cfg.expectExit.has(code) ? 0 : code);
  const originalMask = sigprocmask(SIG_BLOCK, null);
  const plan = planSignals(new Set(inherited.ignored));

  if (cfg.pdeathsig) setParentDeathSignal(cfg.pdeathsig);
  if (cfg.subreaper) registerSubreaper();
  checkReaping();

  let childPid = 0;
  let childExit = -1;

  const onSignal = (sig: number) => {
    if (sig === SIG.CHLD) {
      log.debug("Received SIGCHLD");
      reapAll((pid, status) => {
        log.debug(`Reaped child with pid: '${pid}'`);
        if (pid === childPid) {
          if (status.exited) log.info(`Main child exited normally (with status '${status.code}')`);
          else log.info(`Main child exited with signal (with signal '${strsignal(status.signal)}')`);
          childExit = remap(exitCodeOf(status));
        } else if (cfg.warnOnReap) {
          log.warn(`Reaped zombie process with pid=${pid}`);
        }
      });
      if (childExit !== -1) {
        log.trace("Exiting: child has exited");
        exit(childExit);
      }
      return;
    }
    if (childPid === 0) return;
    log.debug(`Passing signal: '${strsignal(sig)}'`);
    try {
      kill(cfg.processGroup ? -childPid : childPid, sig);
    } catch (e) {
      if (e instanceof SyscallError && e.errno === errno.ESRCH) log.warn("Child was dead when forwarding signal");
      else {
        log.fatal(`Unexpected error when forwarding signal: '${(e as Error).message}'`);
        exit(1);
      }
    }
  };
  listen(plan, onSignal);

  const outcome = spawnProgram(cfg.program, {
    envp,
    sigmask: originalMask,
    sigdefault: childDefaultSet(plan),
    keepFds: inherited.fds,
  });
  if (!outcome.ok) {
    log.fatal(outcome.message);
    exit(remap(outcome.code));
  }
  childPid = outcome.pid;
  log.info(`Spawned child process '${Buffer.from(cfg.program[0]!).toString()}' with pid '${childPid}'`);
  keepAlive();
}
