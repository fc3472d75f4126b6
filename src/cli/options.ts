// argv (bytes) + environment → what pidone should do. Pure: no I/O, no exits.
import { parseGrammar } from "./grammar.ts";
import { SIG, parseSignal, pdeathsigByName } from "../signals/table.ts";
import { LOG_FORMATS, MAX_SECONDS, type HttpAddress, type LogFormat } from "../config/types.ts";
import { parseHttpAddress } from "../config/address.ts";

export interface RunConfig {
  kind: "run";
  subreaper: boolean;
  pdeathsig: number;
  verbosity: number;
  warnOnReap: boolean;
  processGroup: boolean;
  /** Exit codes remapped to 0 (-e). */
  expectExit: ReadonlySet<number>;
  /** PROGRAM and its arguments, byte for byte; empty in pause mode. */
  program: Uint8Array[];
  /** -P/--pause, or started under the name `pause`. */
  pause: boolean;
  /** Seconds from the stop trigger to SIGKILL; 0 disables the sweep. */
  graceSeconds: number;
  stopSignals: ReadonlySet<number>;
  waitAll: boolean;
  pidfile: string | null;
  pidfileTimeoutSeconds: number;
  /** Forwarded signal → what is sent instead (0: dropped). */
  rewrite: ReadonlyMap<number, number>;
  setsid: boolean;
  /** Where the grace came from: the flag wins over a config file, which wins over the environment. */
  graceFrom: "default" | "flag" | "env";
  /** --stop-delay: seconds from a stop signal to its forward (or the ordered stop), inside the grace. */
  stopDelaySeconds: number;
  /** Where the delay came from, ranked as the grace's. */
  stopDelayFrom: "default" | "flag" | "env";
  /** Services mode: --service values and -c files (none: single or pause mode). */
  services: string[];
  configFiles: string[];
  /** --check: validate the services and exit. */
  check: boolean;
  /**
   * --control's PATH or "none"; else, in services mode only, PIDONE_CONTROL's; null: not
   * given (services mode then takes [settings] control, else its default).
   */
  control: string | null;
  /** --http: the read-only HTTP endpoint; "none": off, whatever a file says; null: not given. */
  http: HttpAddress | "none" | null;
  // Services mode's log options.
  /** --log-format, else PIDONE_LOG_FORMAT (both over the file's log_format); null: neither. */
  logFormat: LogFormat | null;
  /** --log-timestamps. */
  logTimestamps: boolean;
  /** -v, -q or TINI_VERBOSITY set `verbosity`: it then wins over the file's log_level. */
  verbosityGiven: boolean;
}

export type Decision =
  | RunConfig
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "license" }
  /** Exit 1: `message` (if any) as a fatal line, then the usage on stderr. */
  | { kind: "usage-error"; message?: string; fatal?: string };

/** C's strtol(s, &end, 10) with *end == 0, as tini checks -e. */
export function parseExitCode(s: string): number | null {
  if (s === "") return 0; // strtol("") converts nothing yet leaves *end == 0: tini accepts it
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isInteger(n) && n >= 0 && n <= 255 ? n : null;
}

/** C's atoi, as tini reads TINI_VERBOSITY. */
export function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  if (!m) return 0;
  const n = Number(m[1]);
  return Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, n)) | 0;
}

/** Seconds within setTimeout's range: past it the runtime fires the timer at once, with a warning. */
function seconds(s: string): number | null {
  if (!/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(s)) return null;
  const n = Number(s);
  return Number.isFinite(n) && n <= MAX_SECONDS ? n : null;
}

/** Why a number of seconds was refused, when the reason is its size. */
function tooLong(s: string): string {
  return /^\s*[\d.]+\s*$/.test(s) && Number(s) > MAX_SECONDS ? ` (at most ${MAX_SECONDS} seconds)` : "";
}

/** A control socket's path: absolute (its clients run elsewhere), or "none". */
function controlPath(s: string): boolean {
  return s === "none" || (s.startsWith("/") && s.length > 1);
}

function logFormat(s: string): LogFormat | null {
  return (LOG_FORMATS as readonly string[]).includes(s) ? (s as LogFormat) : null;
}

function basename(bytes: Uint8Array): string {
  const s = Buffer.from(bytes).toString("latin1");
  return s.slice(s.lastIndexOf("/") + 1);
}

export function decide(argv: readonly Uint8Array[], env: ReadonlyMap<string, string>): Decision {
  // Option tokens are ASCII; latin1 keeps every byte of a value without failing.
  const text: string[] = [];
  for (const a of argv) text.push(Buffer.from(a).toString("latin1"));
  const g = parseGrammar(text);
  if (!g.ok) return { kind: "usage-error", message: g.message };

  const cfg: RunConfig = {
    kind: "run",
    subreaper: false,
    pdeathsig: 0,
    verbosity: 1,
    warnOnReap: false,
    processGroup: false,
    expectExit: new Set(),
    program: argv.slice(g.operandIndex).map((a) => a),
    pause: argv[0] !== undefined && basename(argv[0]) === "pause",
    graceSeconds: 5,
    stopSignals: new Set([SIG.TERM, SIG.INT]),
    waitAll: false,
    pidfile: null,
    pidfileTimeoutSeconds: 10,
    rewrite: new Map(),
    setsid: false,
    graceFrom: "default",
    stopDelaySeconds: 0,
    stopDelayFrom: "default",
    services: [],
    configFiles: [],
    check: false,
    control: null,
    http: null,
    logFormat: null,
    logTimestamps: false,
    verbosityGiven: false,
  };
  const rewrite = cfg.rewrite as Map<number, number>;
  let graceGiven = false;
  const expect = cfg.expectExit as Set<number>;
  for (const opt of g.options) {
    switch (opt.name) {
      case "help":
        return { kind: "help" };
      case "version":
        return { kind: "version" };
      case "license":
        return { kind: "license" };
      case "subreaper":
        cfg.subreaper = true;
        break;
      case "verbose":
        cfg.verbosity++;
        cfg.verbosityGiven = true;
        break;
      case "quiet":
        // warn, tini's default: the last of -v and -q wins (-v -q: warn; -q -v: info).
        cfg.verbosity = 1;
        cfg.verbosityGiven = true;
        break;
      case "warn-on-reap":
        cfg.warnOnReap = true;
        break;
      case "process-group":
        cfg.processGroup = true;
        break;
      case "pdeathsig": {
        const sig = pdeathsigByName(opt.value!);
        if (sig === null) return { kind: "usage-error", fatal: `Not a valid option for -p: ${opt.value}` };
        cfg.pdeathsig = sig;
        break;
      }
      case "expect-exit": {
        const code = parseExitCode(opt.value!);
        if (code === null) return { kind: "usage-error", fatal: `Not a valid option for -e: ${opt.value}` };
        expect.add(code);
        break;
      }
      case "pause":
        cfg.pause = true;
        break;
      case "grace": {
        const n = seconds(opt.value!);
        if (n === null) return { kind: "usage-error", fatal: `Not a valid option for --grace: ${opt.value}${tooLong(opt.value!)}` };
        cfg.graceSeconds = n;
        cfg.graceFrom = "flag";
        graceGiven = true;
        break;
      }
      case "stop-delay": {
        const n = seconds(opt.value!);
        if (n === null) return { kind: "usage-error", fatal: `Not a valid option for --stop-delay: ${opt.value}${tooLong(opt.value!)}` };
        cfg.stopDelaySeconds = n;
        cfg.stopDelayFrom = "flag";
        break;
      }
      case "stop-signals": {
        const set = new Set<number>();
        for (const name of opt.value!.split(",")) {
          const sig = parseSignal(name);
          if (sig === null) return { kind: "usage-error", fatal: `Not a valid signal for --stop-signals: ${name}` };
          // Uncatchable: a list of only these would leave nothing but SIGKILL to stop pidone.
          if (sig === SIG.KILL || sig === SIG.STOP) {
            return { kind: "usage-error", fatal: `Not a valid signal for --stop-signals: ${name} (it cannot be caught)` };
          }
          set.add(sig);
        }
        cfg.stopSignals = set;
        break;
      }
      case "wait-all":
        cfg.waitAll = true;
        break;
      case "pidfile":
        if (opt.value === "") return { kind: "usage-error", fatal: "Not a valid option for --pidfile: empty path" };
        cfg.pidfile = opt.value!;
        break;
      case "pidfile-timeout": {
        const n = seconds(opt.value!);
        if (n === null || n <= 0) return { kind: "usage-error", fatal: `Not a valid option for --pidfile-timeout: ${opt.value}${tooLong(opt.value!)}` };
        cfg.pidfileTimeoutSeconds = n;
        break;
      }
      case "rewrite": {
        const parts = opt.value!.split(":");
        const from = parts.length === 2 ? parseSignal(parts[0]!) : null;
        const to = parts.length === 2 ? parseSignal(parts[1]!, true) : null;
        if (from === null || to === null) return { kind: "usage-error", fatal: `Not a valid option for --rewrite: ${opt.value}` };
        rewrite.set(from, to);
        break;
      }
      case "setsid":
        cfg.setsid = true;
        break;
      case "service":
        cfg.services.push(opt.value!);
        break;
      case "config":
        cfg.configFiles.push(opt.value!);
        break;
      case "check":
        cfg.check = true;
        break;
      case "control":
        if (!controlPath(opt.value!)) return { kind: "usage-error", fatal: `Not a valid option for --control: ${opt.value} (an absolute path, or none)` };
        cfg.control = opt.value!;
        break;
      case "http": {
        if (opt.value === "none") {
          cfg.http = "none";
          break;
        }
        const parsed = parseHttpAddress(opt.value!);
        if (!parsed.ok) return { kind: "usage-error", fatal: `Not a valid option for --http: ${parsed.message}` };
        cfg.http = parsed.address;
        break;
      }
      case "log-format": {
        const format = logFormat(opt.value!);
        if (format === null) return { kind: "usage-error", fatal: `Not a valid option for --log-format: ${opt.value} (prefix, json or raw)` };
        cfg.logFormat = format;
        break;
      }
      case "log-timestamps":
        cfg.logTimestamps = true;
        break;
    }
  }

  // tini reads its environment after its flags: TINI_VERBOSITY overrides -v.
  if (env.has("TINI_SUBREAPER")) cfg.subreaper = true;
  if (env.has("TINI_KILL_PROCESS_GROUP")) cfg.processGroup = true;
  const v = env.get("TINI_VERBOSITY");
  if (v !== undefined) {
    cfg.verbosity = atoi(v);
    cfg.verbosityGiven = true;
  }

  if (!graceGiven && env.has("PIDONE_GRACE")) {
    const n = seconds(env.get("PIDONE_GRACE")!);
    if (n === null) return { kind: "usage-error", fatal: `Not a valid value for PIDONE_GRACE: ${env.get("PIDONE_GRACE")}${tooLong(env.get("PIDONE_GRACE")!)}` };
    cfg.graceSeconds = n;
    cfg.graceFrom = "env";
  }

  if (cfg.stopDelayFrom === "default" && env.has("PIDONE_STOP_DELAY")) {
    const raw = env.get("PIDONE_STOP_DELAY")!;
    const n = seconds(raw);
    if (n === null) return { kind: "usage-error", fatal: `Not a valid value for PIDONE_STOP_DELAY: ${raw}${tooLong(raw)}` };
    cfg.stopDelaySeconds = n;
    cfg.stopDelayFrom = "env";
  }

  const servicesMode = cfg.services.length > 0 || cfg.configFiles.length > 0;
  // Services mode compares the delay with the grace once its files are read (src/config/plan.ts).
  if (!servicesMode && cfg.stopDelaySeconds > 0 && cfg.stopDelaySeconds >= cfg.graceSeconds) {
    const from = cfg.stopDelayFrom === "flag" ? "--stop-delay" : "PIDONE_STOP_DELAY";
    return { kind: "usage-error", fatal: `${from} (${cfg.stopDelaySeconds} s) must be shorter than the grace (${cfg.graceSeconds} s): the delay counts inside it` };
  }
  if (cfg.check && !servicesMode) return { kind: "usage-error", fatal: "--check needs -c FILE or --service" };
  if (!servicesMode && (cfg.logFormat || cfg.logTimestamps)) {
    return { kind: "usage-error", fatal: `${cfg.logFormat ? "--log-format" : "--log-timestamps"} needs -c FILE or --service` };
  }
  // Read in services mode only: elsewhere it means nothing, and an image may set it for all.
  const envFormat = env.get("PIDONE_LOG_FORMAT");
  if (servicesMode && cfg.logFormat === null && envFormat !== undefined) {
    cfg.logFormat = logFormat(envFormat);
    if (cfg.logFormat === null) return { kind: "usage-error", fatal: `Not a valid value for PIDONE_LOG_FORMAT: ${envFormat} (prefix, json or raw)` };
  }
  if (servicesMode) {
    const fromEnv = env.get("PIDONE_CONTROL");
    if (cfg.control === null && fromEnv !== undefined && fromEnv !== "") {
      if (!controlPath(fromEnv)) return { kind: "usage-error", fatal: `Not a valid value for PIDONE_CONTROL: ${fromEnv} (an absolute path, or none)` };
      cfg.control = fromEnv;
    }
    if (cfg.program.length > 0) return { kind: "usage-error", fatal: "services (-c/--service) take no PROGRAM" };
    if (cfg.pause) return { kind: "usage-error", fatal: "--pause cannot be combined with -c/--service" };
    if (cfg.waitAll || cfg.pidfile || cfg.setsid) {
      return { kind: "usage-error", fatal: "-c/--service cannot be combined with --wait-all, --pidfile or --setsid" };
    }
    return cfg;
  }

  if (cfg.http !== null) return { kind: "usage-error", fatal: "--http needs services (-c/--service)" };
  if (cfg.pause) {
    if (cfg.program.length > 0) return { kind: "usage-error", fatal: "--pause takes no PROGRAM" };
    if (cfg.waitAll || cfg.pidfile || cfg.setsid) {
      return { kind: "usage-error", fatal: "--pause cannot be combined with --wait-all, --pidfile or --setsid" };
    }
    return cfg;
  }
  if (cfg.waitAll && cfg.pidfile) return { kind: "usage-error", fatal: "--wait-all and --pidfile cannot be combined" };
  if (cfg.program.length === 0) return { kind: "usage-error" };
  if (cfg.pidfile) cfg.subreaper = true; // adoption needs orphans to come to us (no-op as PID 1)
  return cfg;
}
