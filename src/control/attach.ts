// tini's mode and --pause answer `status` and `health` only, and only where --control
// PATH asks: without it they create nothing, as tini does, and load none of this. The
// status object's pidone fields are made here for every mode (services mode's operator too).
import { LEVEL, log } from "../log/logger.ts";
import { counters } from "../process/counters.ts";
import { getpid } from "../sys/libc.ts";
import { nativelyReaped } from "../sys/native.ts";
import { VERSION } from "../version.ts";
import { controlHandler } from "./commands.ts";
import { ControlServer } from "./server.ts";
import { timestamp, type ServiceStatus, type Status } from "./status.ts";

/** pidone's start: this module may load only once the main child runs. */
const started = Date.now() - Math.round(performance.now());

/**
 * Listens at --control's PATH, answering `status` and `health` from the mode's state
 * (`stopping`: a stop has begun; `services`: the main child's row, or none); a failure
 * is one warning.
 */
export function attachControl(mode: "tini" | "pause", path: string, stopping: () => boolean, services: () => ServiceStatus[]): ControlServer | null {
  const status = () => pidoneStatus(mode, stopping(), services());
  const server = ControlServer.start(path, controlHandler({ status }), (line) => log.warn(line));
  if (server && log.level >= LEVEL.debug) log.debug(`Control socket at ${path}`);
  return server;
}

/** The status object around `services`: pidone's own fields, the same in every mode. */
export function pidoneStatus(mode: Status["pidone"]["mode"], stopping: boolean, services: ServiceStatus[]): Status {
  const now = Date.now();
  return {
    version: 1,
    pidone: {
      pid: getpid(),
      version: VERSION,
      mode,
      phase: stopping ? "stopping" : "running",
      started_at: timestamp(started),
      uptime_seconds: Math.floor((now - started) / 1000),
      reaped_total: counters.reaped + (nativelyReaped() ?? 0),
      signals_forwarded_total: counters.forwarded,
    },
    services,
  };
}
