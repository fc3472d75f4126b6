// OOM kills named. The kernel's OOM killer ends its victim with SIGKILL, which looks
// like any other SIGKILL from the outside; what tells them apart is the container's own
// count of OOM kills (cgroup v2 memory.events, v1 memory.oom_control: the `oom_kill`
// line), read in our own cgroup, where every service and child runs. A SIGKILL end
// after which the count has risen is named an OOM kill; where the files are missing or
// unreadable (cgroup v1 before Linux 4.13 has no such line), nothing is said but the
// plain SIGKILL.
//
// The rule, for processes that share the cgroup: a rise is claimed by the first SIGKILL
// end pidone examines after it (a second victim of the same rise is not named), and a
// SIGKILL pidone sent itself (a stop's, a failed readiness') is never an OOM kill.
import type { ExitStatus } from "./reap.ts";
import { cgroupOf, memoryLimit } from "./limits.ts";
import { SIG, signalName } from "../signals/table.ts";
import { readSmallFile } from "../sys/libc.ts";

// The counter's file, found once: null when this cgroup shows none.
let counterFile: string | null | undefined;

/** The container's OOM-kill count, or null when it cannot be read. */
export function oomKills(): number | null {
  if (counterFile === undefined) {
    const own = cgroupOf("memory");
    counterFile = own ? `${own.parts.join("/")}/${own.version === 2 ? "memory.events" : "memory.oom_control"}` : null;
  }
  if (counterFile === null) return null;
  let bytes: Uint8Array | null;
  try {
    bytes = readSmallFile(counterFile);
  } catch {
    return null; // out of descriptors: say nothing rather than something wrong
  }
  const m = bytes && /^oom_kill (\d+)$/m.exec(Buffer.from(bytes).toString("latin1"));
  return m ? Number(m[1]) : null;
}

/** The highest count a SIGKILL end has already been compared with (see the rule above). */
let claimed = 0;

/** One process's OOM watch: the count at its start, compared at its SIGKILL end. */
export class OomWatch {
  /** `before`: a count taken earlier (the single file's stub takes one before the runtime starts). */
  constructor(private before: number | null = null) {}

  /** The process starts: one read of the count. */
  started(): void {
    this.before = oomKills();
  }

  /**
   * The process ended: was it the OOM killer? Reads the count again only for a SIGKILL
   * end that pidone did not send (`sentKill`).
   */
  ended(status: ExitStatus, sentKill = false): boolean {
    if (status.exited || status.signal !== SIG.KILL || sentKill || this.before === null) return false;
    const after = oomKills();
    if (after === null) return false;
    const rose = after > Math.max(this.before, claimed);
    claimed = Math.max(claimed, after);
    this.before = after;
    return rose;
  }
}

/** "killed by the kernel's OOM killer (memory limit N MiB)": the limit as the cgroup files state it. */
export function oomKilled(): string {
  const limit = memoryLimit();
  return `killed by the kernel's OOM killer (${limit === Infinity ? "no memory limit visible" : `memory limit ${Math.round(limit / 2 ** 20)} MiB`})`;
}

/**
 * How a service's process ended, as its event line and `--ctl status` say it:
 * "exited (status N)", "exited (signal SIGX)", or the OOM killer named.
 */
export function describeExit(status: ExitStatus, oom: boolean): string {
  if (oom) return oomKilled();
  return `exited (${status.exited ? `status ${status.code}` : `signal ${signalName(status.signal)}`})`;
}
