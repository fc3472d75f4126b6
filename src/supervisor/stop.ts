// The whole-tree stop: a stop that loses nothing. From the trigger (a stop signal, or the
// main program ending) the clock runs for the grace period; what the main program left
// behind gets SIGTERM, and whatever is still there when the grace ends gets SIGKILL,
// each named in a warning. Only PID 1 or a subreaper can see those processes at all.
import { LEVEL, log } from "../log/logger.ts";
import { allOtherProcesses, commandOf, descendantsOf, isZombie, procIsOurs, signalDescendants } from "../process/tree.ts";
import { SIG } from "../signals/table.ts";
import { getpid, isChildSubreaper, kill } from "../sys/libc.ts";

export type Reach = "pid1" | "subreaper" | null;

/** After the final SIGKILL, wait at most this long for the kernel to hand back the dead. */
const AFTER_KILL_MS = 2000;

/** Which processes pidone is responsible for, and so may sweep. */
export function detectReach(): Reach {
  if (getpid() === 1) return "pid1";
  try {
    if (isChildSubreaper() && procIsOurs()) return "subreaper";
  } catch {
    // no prctl answer: behave like tini
  }
  return null;
}

export class TreeStop {
  private started = false;
  private swept = false;
  /** The grace ran out and SIGKILL went out to whatever was left. */
  killed = false;

  constructor(
    private readonly graceMs: number,
    /**
     * Called AFTER_KILL_MS after the final SIGKILL: the mode finishes then even if the
     * kernel has not handed back every dead process yet (one stuck in D state).
     */
    private readonly afterKill: () => void,
    readonly reach: Reach = detectReach(),
  ) {}

  /** Can this stop do anything beyond what tini does? */
  get sweeping(): boolean {
    return this.graceMs > 0 && this.reach !== null;
  }

  get triggered(): boolean {
    return this.started;
  }

  /** Starts the grace clock (once; later triggers do not extend it). */
  trigger(why: string): void {
    if (this.started) return;
    this.started = true;
    if (!this.sweeping) return;
    if (log.level >= LEVEL.info) log.info(`Stopping (${why}): ${this.graceMs / 1000} s until SIGKILL`);
    setTimeout(() => this.killRemaining(), this.graceMs);
  }

  /** SIGTERM to every process left (once). */
  sweep(): void {
    if (!this.sweeping || this.swept) return;
    this.swept = true;
    if (this.reach === "pid1") {
      // kill(-1) reaches every process of the namespace but us, atomically: nothing
      // forked meanwhile escapes, and no pid can be reused under us.
      try {
        kill(-1, SIG.TERM);
        log.debug("Sent SIGTERM to every remaining process");
      } catch {
        // ESRCH: nobody left
      }
    } else {
      const reached = signalDescendants(SIG.TERM);
      if (reached.length) log.debug(`Sent SIGTERM to ${reached.length} remaining processes`);
    }
  }

  private killRemaining(): void {
    this.killed = true;
    const victims = (this.reach === "pid1" ? allOtherProcesses() : descendantsOf(getpid())).filter((p) => !isZombie(p));
    const seconds = this.graceMs / 1000;
    for (const pid of victims) log.warn(`Killing pid ${pid} (${commandOf(pid)}): still running ${seconds} s after the stop began`);
    if (this.reach === "pid1") {
      try {
        kill(-1, SIG.KILL);
      } catch {
        // ESRCH: they went just now
      }
    } else {
      signalDescendants(SIG.KILL);
    }
    setTimeout(this.afterKill, AFTER_KILL_MS);
  }
}
