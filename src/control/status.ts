// What `pidone --ctl status --json` answers and `GET /status` serves: one object, stable
// (README: "status --json"). A field is added, never renamed or retyped; `version` rises
// only if one must change. Made by each mode from its own state; `health` and `/healthz`
// judge it with healthOf, `/readyz` with readinessOf, `/metrics` formats it.

/** A service's state as operators see it (README: "A service's states"). */
export type DisplayState =
  | "waiting" // for its `after` dependencies (waiting_for names them)
  | "starting" // running, its readiness probe not yet passed
  | "running" // running, no readiness probe
  | "ready" // running, its readiness probe passed
  | "unhealthy" // its liveness check failed `retries` times: being stopped, to restart per policy
  | "stopping"
  | "stopped" // by the container's stop, or by the operator (held)
  | "restarting" // in its backoff: restart_in_seconds says when
  | "exited" // ended with status 0 (a oneshot: done), not restarting
  | "failed"; // ended otherwise, not restarting

export interface ExitInfo {
  /** As a shell would report it: the status, or 128 + the signal's number. */
  code: number;
  /** The signal that ended it ("SIGKILL"), or null when it exited. */
  signal: string | null;
  /** One line: "status 3", "signal SIGKILL", or the reason it never started. */
  description: string;
  /** RFC 3339, UTC. */
  at: string;
}

export interface HealthInfo {
  /** The liveness check, as in the config: "http http://127.0.0.1:8080/live", "tcp 127.0.0.1:5432", "exec pg_isready". */
  check: string;
  /** "starting": within start_period, or no check has passed or failed `retries` times yet. */
  status: "starting" | "healthy" | "unhealthy";
  /** Consecutive failures so far. */
  failures: number;
  last: { ok: boolean; detail: string; at: string } | null;
}

export interface ServiceStatus {
  name: string;
  state: DisplayState;
  critical: boolean;
  oneshot: boolean;
  /** Stopped by the operator (`--ctl stop`): not restarted, not a failure, until `start`. */
  held: boolean;
  pid: number | null;
  /** When its current process started (RFC 3339, UTC), and how long ago; null when not running. */
  started_at: string | null;
  uptime_seconds: number | null;
  /** Restarts by its policy since pidone started (an operator's restart is not counted). */
  restarts: number;
  /** In the backoff: seconds until the next start. */
  restart_in_seconds: number | null;
  /** Waiting: the dependencies not yet ready. */
  waiting_for: string[];
  last_exit: ExitInfo | null;
  /**
   * Its readiness probe ("tcp 127.0.0.1:80"), or null; `ready`: it is ready in its current
   * run (its probe passed; without one, it runs; a oneshot: it exited 0).
   */
  readiness: { check: string | null; ready: boolean };
  health: HealthInfo | null;
  /** What the service last reported about itself (sd_notify STATUS=), or null. */
  status_text: string | null;
}

export interface Status {
  version: 1;
  pidone: {
    pid: number;
    version: string;
    mode: "services" | "tini" | "pause";
    /** "stopping" from the first stop signal on. */
    phase: "running" | "stopping";
    started_at: string;
    uptime_seconds: number;
    /** Processes pidone reaped (services, probes, orphans). */
    reaped_total: number;
    /** Signals pidone forwarded to a child or a service. */
    signals_forwarded_total: number;
  };
  services: ServiceStatus[];
}

/** RFC 3339 UTC with milliseconds, from a Date.now() value. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * `--ctl health` and `/healthz`: healthy when every critical service is up (running or
 * ready; a oneshot: exited 0) and no service is unhealthy. Reasons, one line each, when not.
 */
export function healthOf(s: Status): { ok: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (s.pidone.phase === "stopping") reasons.push("pidone is stopping");
  for (const svc of s.services) {
    // A check's last verdict outlives the process it judged: only a running one is unhealthy.
    if (svc.state === "unhealthy" || (svc.pid !== null && svc.health?.status === "unhealthy")) {
      reasons.push(`${svc.name}: unhealthy${svc.health?.last ? ` (${svc.health.last.detail})` : ""}`);
      continue;
    }
    if (!svc.critical) continue;
    if (svc.oneshot ? svc.state === "exited" : svc.state === "running" || svc.state === "ready") continue;
    reasons.push(`${svc.name}: ${describeState(svc)}`);
  }
  return { ok: reasons.length === 0, reasons };
}

/** `/readyz`: every service that has a readiness probe has passed it (and pidone is not stopping). */
export function readinessOf(s: Status): { ok: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (s.pidone.phase === "stopping") reasons.push("pidone is stopping");
  for (const svc of s.services) {
    if (svc.readiness.check !== null && !svc.readiness.ready) reasons.push(`${svc.name}: not ready (${describeState(svc)})`);
  }
  return { ok: reasons.length === 0, reasons };
}

/** "failed (status 3)", "waiting for db", "restarting in 4 s", "stopped by the operator". */
export function describeState(svc: ServiceStatus): string {
  switch (svc.state) {
    case "waiting":
      return svc.waiting_for.length ? `waiting for ${svc.waiting_for.join(", ")}` : "waiting";
    case "restarting":
      return `restarting in ${svc.restart_in_seconds ?? 0} s`;
    case "stopped":
      return svc.held ? "stopped by the operator" : "stopped";
    case "exited":
    case "failed":
      return svc.last_exit ? `${svc.state} (${svc.last_exit.description})` : svc.state;
    default:
      return svc.state;
  }
}
