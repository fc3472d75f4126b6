// Who adopts orphans: PID 1 always does; otherwise only a registered subreaper.
import { LEVEL, log } from "../log/logger.ts";
import {
  PR_SET_CHILD_SUBREAPER,
  PR_SET_PDEATHSIG,
  SyscallError,
  errno,
  getpid,
  isChildSubreaper,
  prctl,
} from "../sys/libc.ts";
import { StartupError } from "../errors.ts";

/**
 * May the single file's signal handler reap every child itself (native.watchChild)?
 * It keeps the status of one watched child only, so not where pidone needs the others:
 * --wait-all (the first failure of any process decides the exit code), -w and debug
 * logging (each reaped pid is named), and --pidfile (a daemon adopted later could be
 * reaped before it is watched, its exit then lost).
 */
export function mayReapNatively(cfg: { waitAll: boolean; warnOnReap: boolean; pidfile: string | null }): boolean {
  return !cfg.waitAll && !cfg.warnOnReap && !cfg.pidfile && log.level < LEVEL.debug;
}

/**
 * What every mode does first: -p and -s (before any child exists: an orphan must find us
 * registered). tini's warning when orphans would not reach us is checkReaping's, which
 * tini's mode calls once its child runs.
 */
export function setUpReaping(cfg: { pdeathsig: number; subreaper: boolean }): void {
  if (cfg.pdeathsig) setParentDeathSignal(cfg.pdeathsig);
  if (cfg.subreaper) registerSubreaper();
}

export function setParentDeathSignal(sig: number): void {
  try {
    prctl(PR_SET_PDEATHSIG, sig);
  } catch {
    throw new StartupError("Failed to set up parent death signal");
  }
}

export function registerSubreaper(): void {
  try {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    log.trace("Registered as child subreaper");
  } catch (e) {
    if (e instanceof SyscallError && e.errno === errno.EINVAL) {
      throw new StartupError("PR_SET_CHILD_SUBREAPER is unavailable on this platform. Are you using Linux >= 3.4?");
    }
    throw new StartupError(`Failed to register as child subreaper: ${(e as Error).message}`);
  }
}

const REAPER_WARNING =
  "pidone is not running as PID 1 and isn't registered as a child subreaper.\n" +
  "Zombie processes will not be re-parented to pidone, so zombie reaping won't work.\n" +
  "To fix the problem, use the -s option or set the environment variable TINI_SUBREAPER to register pidone as a child subreaper, or run pidone as PID 1.";

export function checkReaping(): void {
  if (getpid() === 1) return;
  try {
    if (isChildSubreaper()) return;
  } catch (e) {
    log.debug(`Failed to read child subreaper attribute: ${(e as Error).message}`);
  }
  log.warn(REAPER_WARNING);
}
