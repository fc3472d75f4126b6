// The validated model of services mode: what every source (--service flags, Procfiles,
// TOML files) becomes once it has passed every check. Everything is defaulted, so the
// supervisor never has to know which source a value came from or what the default was.
import type { EnvFileRef } from "./envfile.ts";

export type LogFormat = "prefix" | "json" | "raw";
export const LOG_FORMATS: readonly LogFormat[] = ["prefix", "json", "raw"];

/** pidone's own lines, on tini's verbosity scale: error 0, warn 1, info 2, debug 3, trace 4. */
export type LogLevel = "error" | "warn" | "info" | "debug" | "trace";
export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug", "trace"];

export type RestartPolicy = "never" | "on-failure" | "always";
export const RESTART_POLICIES: readonly RestartPolicy[] = ["never", "on-failure", "always"];

export interface Settings {
  /** Seconds from the stop trigger to the final SIGKILL (as --grace). */
  grace: number;
  logFormat: LogFormat;
  /** Seconds from a stop signal to the ordered stop, inside the grace (as --stop-delay). */
  stopDelay: number;
  /**
   * The control socket's path, "none" (off), or null: not set by the config (then
   * --control, PIDONE_CONTROL or the default decide: src/control/server.ts).
   */
  control: string | null;
  /** The read-only HTTP endpoint (--http, `http`); absent: none. */
  http?: HttpAddress;
  // Environment files and log options (issue #15).
  /** Prefixed lines start with an RFC 3339 UTC time (JSON lines always carry "ts"). */
  timestamps: boolean;
  /** The level of pidone's own lines; null: not set (each mode's default). */
  logLevel: LogLevel | null;
  /** Read at every start of every service, before the service's own env_file. */
  envFiles: EnvFileRef[];
}

/** Where the HTTP endpoint listens: an IP literal (IPv6 without brackets) and a port. */
export interface HttpAddress {
  host: string;
  port: number;
}

/** Who the service runs as, resolved from /etc/passwd and /etc/group. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /**
   * The whole list for setgroups(2), as initgroups(3) would build it: the primary gid
   * first, then every group of /etc/group that lists the user's name. Only the primary
   * gid when the uid has no passwd entry.
   */
  groups: number[];
  /** The passwd name; null for a uid with no passwd entry. */
  name: string | null;
  /** The passwd home directory; "/" for a uid with no passwd entry. */
  home: string;
}

export type ReadyProbe =
  /** Ready once a TCP connect to host:port succeeds. */
  | { kind: "tcp"; host: string; port: number }
  /** Ready once a GET answers with a 2xx status. */
  | { kind: "http"; url: string }
  /** Ready once the file exists. */
  | { kind: "file"; path: string }
  /** Ready once the program exits 0 (run with the service's env, cwd and user). */
  | { kind: "exec"; argv: string[]; executable: string | null }
  /** Ready at sd_notify's READY=1 on the NOTIFY_SOCKET pidone gives it (src/services/notify.ts). */
  | { kind: "notify" }
  /** Ready once a newline arrives on descriptor `fd`, the write end of a pipe (s6's notification fd). */
  | { kind: "fd"; fd: number };

/** A liveness check's probe: as readiness's, without `file`. */
export type HealthProbe = Extract<ReadyProbe, { kind: "tcp" | "http" | "exec" }>;

/** A liveness check (Docker's HEALTHCHECK semantics; README: "Liveness checks"). */
export interface HealthSpec {
  probe: HealthProbe;
  /** Seconds from the process's start to the first check, and from each check's end to the next. */
  interval: number;
  /** Seconds a check may take before it counts as failed. */
  timeout: number;
  /** Consecutive failures that make the service unhealthy (1 or more). */
  retries: number;
  /** Seconds from the process's start during which failures do not count (a success ends it). */
  startPeriod: number;
}

export interface ServiceSpec {
  name: string;
  /** Where it was declared, for messages: "app.toml:12", "Procfile:3", `--service "web: x"`. */
  origin: string;
  /**
   * The program and its arguments. For a shell command (Procfile, --service, shell = true)
   * this is ["/bin/sh", "-c", COMMAND]. Strings, not bytes: config files are UTF-8.
   */
  argv: string[];
  /** argv came from a shell command line (/bin/sh must exist). */
  shell: boolean;
  /**
   * argv[0] resolved against the service's PATH (or cwd, for a relative path with a
   * slash), so the spawner need not search a PATH that is not its own; null when the
   * lookup was switched off (PlanOptions.checkPrograms = false).
   */
  executable: string | null;
  /** Variables set over pidone's own environment (not the whole environment). */
  env: Record<string, string>;
  /**
   * Environment files read at every start, in order ([settings] env_file first, then the
   * service's), each over the one before and under `env` (src/config/envfile.ts).
   */
  envFiles: EnvFileRef[];
  /** Absolute working directory; null: pidone's own. */
  cwd: string | null;
  /** null: run as pidone's own user. */
  user: ResolvedUser | null;
  restart: RestartPolicy;
  /**
   * Seconds before the first restart; each restart in a row doubles it, up to
   * restartDelayMax; a long run (service.ts's BACKOFF_RESET_MS) starts over from restartDelay.
   */
  restartDelay: number;
  restartDelayMax: number;
  /**
   * Restarts allowed within restartWindow seconds before the service has ended for good;
   * Infinity (TOML `inf`): no limit.
   */
  maxRestarts: number;
  restartWindow: number;
  /** Ending for good stops the whole container. */
  critical: boolean;
  /** Must exit 0 before its dependents start; exit 0 is success, not an end. */
  oneshot: boolean;
  /** Names of the services this one starts after (deduplicated, all known, no cycles). */
  after: string[];
  /** null: ready once started (a oneshot: once it exited 0). */
  ready: ReadyProbe | null;
  /** Seconds. */
  readyTimeout: number;
  /** Liveness check; null: none (no timer). */
  health: HealthSpec | null;
  stopSignal: number;
  /** Seconds, capped at run time by what is left of the grace. */
  stopTimeout: number;
  /** Forwarded signals this service receives. */
  signals: "all" | number[];
  /** A forking daemon's pid file (adopted as with --pidfile); null: none. */
  pidfile: string | null;
  /**
   * Seconds within which a ready notify service must send WATCHDOG=1 (given to it as
   * WATCHDOG_USEC), else it is unhealthy; null: no watchdog.
   */
  watchdog: number | null;
}

export interface ServicePlan {
  settings: Settings;
  /** In a stable topological order: by start level, then declaration order. */
  services: ServiceSpec[];
}

/** Defaults of every optional key, in one place for the README and the tests. */
export const DEFAULTS = {
  grace: 5,
  logFormat: "prefix" as LogFormat,
  timestamps: false,
  stopDelay: 0,
  restart: "never" as RestartPolicy,
  restartDelay: 1,
  restartDelayMax: 30,
  maxRestarts: 5,
  restartWindow: 60,
  /**
   * Critical by default: a service that dies silently while the container carries on is
   * the failure services mode exists to prevent (Supervisor #712). Opt out per service.
   */
  critical: true,
  oneshot: false,
  readyTimeout: 30,
  stopSignal: 15,
  stopTimeout: 10,
  readyHost: "127.0.0.1",
  healthInterval: 30,
  healthTimeout: 5,
  healthRetries: 3,
  healthStartPeriod: 0,
} as const;

/** Longest duration accepted, in seconds: setTimeout's limit is 2^31 - 1 ms. */
export const MAX_SECONDS = 2_147_483;
