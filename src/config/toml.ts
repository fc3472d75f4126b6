// The TOML schema of services mode: parsing (Bun.TOML.parse; where things are in the
// text is toml-lines.ts's business) and the structural checks of every key, which turn
// each [services.NAME] table into a draft. Checks that need the outside world (programs,
// users) or every source at once (duplicates, `after`) happen in plan.ts. Long because
// it is one concern, the schema: every key's checks and messages side by side.
import { suggestion, type Diagnostics, type KeyPath, type Where } from "./diagnostics.ts";
import { parseHttpAddress } from "./address.ts";
import { checkServiceName } from "./procfile.ts";
import { describeSplitError, splitCommand } from "./shellwords.ts";
import { scanKeyLines, syntaxErrorLine, type KeyLines } from "./toml-lines.ts";
import { parseSignal, SIG, signalName } from "../signals/table.ts";
import { envFileRef, type EnvFileRef } from "./envfile.ts";
import {
  DEFAULTS, LOG_FORMATS, LOG_LEVELS, MAX_SECONDS, RESTART_POLICIES,
  type HealthProbe, type HealthSpec, type LogFormat, type LogLevel, type ReadyProbe, type RestartPolicy, type ServiceSpec, type Settings,
} from "./types.ts";

// ---------------------------------------------------------------------------------
// Parsing

export type TomlParse =
  | { ok: true; data: Record<string, unknown>; lines: KeyLines }
  /** A syntax error (its line when found), or a file too big to parse (`tooBig`). */
  | { ok: false; message: string; line?: number; tooBig?: true };

const PARSE_ERROR_PREFIX = /^TOML Parse error:\s*/;

/**
 * Bun.TOML.parse takes time quadratic in the keys of one table, so a file of many keys
 * or tables (a generated or corrupted one) would stall --check and the start for minutes.
 * A services file needs few: past this many "=" and "[" (a bound from above on its keys
 * and tables, counted in one pass) it is refused unparsed.
 */
export const MAX_TOML_KEYS = 10_000;

function tooManyKeys(text: string): boolean {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c === 0x3d || c === 0x5b) && ++n > MAX_TOML_KEYS) return true; // "=" or "["
  }
  return false;
}

export function parseToml(text: string): TomlParse {
  if (tooManyKeys(text)) {
    return { ok: false, message: `more than ${MAX_TOML_KEYS} keys and tables ("=" and "["): too big for a services file`, tooBig: true };
  }
  try {
    const data = Bun.TOML.parse(text) as Record<string, unknown>;
    return { ok: true, data, lines: scanKeyLines(text) };
  } catch (e) {
    const raw = e instanceof Error ? e.message : String(e);
    const message = raw.replace(PARSE_ERROR_PREFIX, "");
    const line = syntaxErrorLine(text, raw);
    return line === undefined ? { ok: false, message } : { ok: false, message, line };
  }
}

// ---------------------------------------------------------------------------------
// Values

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** "the string \"yes\"", "the integer 5", "an array": what a value was, for messages. */
function describe(v: unknown): string {
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "boolean") return `the boolean ${v}`;
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "nan";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    return `the ${Number.isInteger(v) ? "integer" : "float"} ${v}`;
  }
  if (v instanceof Date) return "a date-time";
  if (Array.isArray(v)) return "an array";
  if (isTable(v)) return "a table";
  return typeof v;
}

const hasNul = (s: string) => s.includes("\0");

// ---------------------------------------------------------------------------------
// The schema

export const SETTINGS_KEYS = [
  "grace", "log_format", "stop_delay",
  // operating services
  "control", "http",
  // environment files and log options
  "env_file", "timestamps", "log_level",
] as const;
export const SERVICE_KEYS = [
  "command", "shell", "env", "cwd", "user", "restart", "restart_delay", "restart_delay_max", "max_restarts",
  "restart_window", "critical", "oneshot", "after", "ready", "ready_timeout", "stop_signal", "stop_timeout", "signals", "pidfile",
  // environment files
  "env_file",
  "health",
  "watchdog",
] as const;
export const READY_KINDS = ["tcp", "http", "file", "exec", "notify", "fd"] as const;
export const HEALTH_KINDS = ["tcp", "http", "exec"] as const;
export const HEALTH_KEYS = [...HEALTH_KINDS, "interval", "timeout", "retries", "start_period"] as const;
const TOP_KEYS = ["settings", "services"] as const;

/** Other tools' words for our keys (docker-compose, supervisord, systemd, Horust). */
const SYNONYMS: Record<string, string> = {
  depends_on: "after", requires: "after", wants: "after", start_after: "after",
  environment: "env", working_dir: "cwd", workdir: "cwd", directory: "cwd", working_directory: "cwd",
  cmd: "command", program: "command", exec: "command", execstart: "command",
  autorestart: "restart", stopsignal: "stop_signal", kill_signal: "stop_signal", killsignal: "stop_signal",
  restartsec: "restart_delay", restart_sec: "restart_delay", backoff: "restart_delay",
  restartmaxdelaysec: "restart_delay_max", max_delay: "restart_delay_max", max_backoff: "restart_delay_max",
  stopwaitsecs: "stop_timeout", timeout: "stop_timeout", readiness: "ready",
  healthcheck: "health", liveness: "health", livenessprobe: "health", test: "exec", startperiod: "start_period",
  startretries: "max_restarts", retries: "max_restarts", pid_file: "pidfile", service: "services",
  setting: "settings", logformat: "log_format", log: "log_format", grace_period: "grace",
  // environment files and log options
  env_files: "env_file", envfile: "env_file", environmentfile: "env_file", environment_file: "env_file",
  loglevel: "log_level", verbosity: "log_level", log_timestamps: "timestamps", timestamp: "timestamps",
};

/** Signals pidone cannot catch, or keeps for itself, so it cannot forward them. */
const NOT_FORWARDABLE = new Set<number>([SIG.KILL, SIG.STOP, SIG.CHLD]);

/** What plan.ts needs to finish a service declared in a TOML file. */
export interface ServiceDraft {
  spec: ServiceSpec;
  /** Where a key of this service is (relative to the service), or the service itself. */
  where(field?: KeyPath): Where;
  /** Each `after` entry with its own key path (for "unknown service" on the right line). */
  afterRefs: { name: string; field: KeyPath }[];
  /** The raw `user` value, resolved against /etc/passwd later. */
  userSpec: string | null;
  /** argv is sound, so its program can be looked up (a ready probe is null unless sound). */
  commandOk: boolean;
}

export interface TomlSource {
  origin: string;
  sourceIndex: number;
  lines: KeyLines;
  diags: Diagnostics;
}

export interface TomlConfig {
  settings: Partial<Settings>;
  /** Where each setting was set, for conflicts between files. */
  settingsAt: Partial<Record<keyof Settings, Where>>;
  services: ServiceDraft[];
}

function whereIn(src: TomlSource, path: KeyPath): Where {
  const line = src.lines.nearest(path);
  return { origin: src.origin, sourceIndex: src.sourceIndex, ...(line === undefined ? {} : { line }), path };
}

/** Reads one table's keys, each checked once, each problem reported at its own line. */
class TableReader {
  constructor(
    readonly src: TomlSource,
    readonly path: KeyPath,
    readonly table: Record<string, unknown>,
  ) {}

  at(key: string | KeyPath = []): Where {
    return whereIn(this.src, [...this.path, ...(typeof key === "string" ? [key] : key)]);
  }

  bad(key: string | KeyPath, message: string): void {
    this.src.diags.add(this.at(key), message);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.table, key);
  }

  get(key: string): unknown {
    return this.has(key) ? this.table[key] : undefined;
  }

  unknownKeys(known: readonly string[]): void {
    for (const key of Object.keys(this.table)) {
      if (!known.includes(key)) this.bad(key, `unknown key ${JSON.stringify(key)}${suggestion(key, known, SYNONYMS)}`);
    }
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v === "boolean") return v;
    this.bad(key, `expected true or false, got ${describe(v)}`);
    return fallback;
  }

  /** Seconds: finite, above 0 when `positive` (else 0 or more), within setTimeout's range. */
  seconds(key: string, fallback: number, positive: boolean): number {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.bad(key, `expected a number of seconds, got ${describe(v)}`);
    } else if (positive ? v <= 0 : v < 0) {
      this.bad(key, `must be ${positive ? "greater than 0" : "0 or more"} seconds, got ${v}`);
    } else if (v > MAX_SECONDS) {
      this.bad(key, `must be at most ${MAX_SECONDS} seconds, got ${v}`);
    } else {
      return v;
    }
    return fallback;
  }

  /** An integer 0 or more; with `unlimited`, TOML's `inf` too (Infinity). */
  count(key: string, fallback: number, unlimited = false): number {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
    if (unlimited && v === Infinity) return v;
    this.bad(key, `expected an integer 0 or more, got ${describe(v)}`);
    return fallback;
  }

  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v === "string" && (choices as readonly string[]).includes(v)) return v as T;
    const hint = typeof v === "string" ? suggestion(v, choices) : "";
    this.bad(key, `expected one of ${choices.map((c) => JSON.stringify(c)).join(", ")}, got ${describe(v)}${hint}`);
    return fallback;
  }

  absolutePath(key: string | KeyPath, v: unknown): string | null {
    if (typeof v !== "string") {
      this.bad(key, `expected an absolute path, got ${describe(v)}`);
    } else if (!v.startsWith("/")) {
      this.bad(key, `must be an absolute path, got ${JSON.stringify(v)}`);
    } else if (hasNul(v)) {
      this.bad(key, "must not contain a NUL character");
    } else {
      return v;
    }
    return null;
  }

  /** An argv: an array of strings, or a string split with POSIX quoting. */
  argv(key: string | KeyPath, v: unknown, alternative: string): string[] | null {
    if (typeof v === "string") {
      const split = splitCommand(v);
      if (!split.ok) {
        this.bad(key, describeSplitError(split, alternative));
        return null;
      }
      if (split.argv.length === 0) {
        this.bad(key, "the command is empty");
        return null;
      }
      return this.programArgv(key, split.argv);
    }
    if (Array.isArray(v)) {
      if (v.length === 0) {
        this.bad(key, "the command is empty");
        return null;
      }
      let ok = true;
      v.forEach((a, i) => {
        const k = [...(typeof key === "string" ? [key] : key), i];
        if (typeof a !== "string") {
          this.bad(k, `expected a string, got ${describe(a)}`);
          ok = false;
        }
      });
      return ok ? this.programArgv(key, v as string[]) : null;
    }
    this.bad(key, `expected an array of strings or a string, got ${describe(v)}`);
    return null;
  }

  private programArgv(key: string | KeyPath, argv: string[]): string[] | null {
    if (argv[0] === "") {
      this.bad(key, "the program name is empty");
      return null;
    }
    if (argv.some(hasNul)) {
      this.bad(key, "an argument contains a NUL character, which no program can receive");
      return null;
    }
    return argv;
  }

  /** `env_file`: one path or an array of them, each absolute, "-" first for an optional file. */
  envFiles(key: string): EnvFileRef[] {
    const v = this.get(key);
    if (v === undefined) return [];
    const entries = typeof v === "string" ? [v] : v;
    if (!Array.isArray(entries)) {
      this.bad(key, `expected a path or an array of paths ("-/path" for an optional file), got ${describe(v)}`);
      return [];
    }
    const refs: EnvFileRef[] = [];
    entries.forEach((entry, i) => {
      const at: KeyPath = typeof v === "string" ? [key] : [key, i];
      if (typeof entry !== "string") return this.bad(at, `expected a path, got ${describe(entry)}`);
      const ref = envFileRef(entry);
      if (!ref.path.startsWith("/")) this.bad(at, `must be an absolute path ("-/path" for an optional file), got ${JSON.stringify(entry)}`);
      else if (hasNul(ref.path)) this.bad(at, "must not contain a NUL character");
      else refs.push(ref);
    });
    return refs;
  }

  signal(key: string | KeyPath, v: unknown): number | null {
    if (typeof v === "string" || (typeof v === "number" && Number.isInteger(v))) {
      const n = parseSignal(String(v));
      if (n !== null) return n;
      this.bad(key, `unknown signal ${JSON.stringify(String(v))} (a name such as "TERM" or "SIGHUP", a number, or "RTMIN+n")`);
      return null;
    }
    this.bad(key, `expected a signal name or number, got ${describe(v)}`);
    return null;
  }
}

export function readTomlConfig(data: Record<string, unknown>, src: TomlSource): TomlConfig {
  const top = new TableReader(src, [], data);
  top.unknownKeys(TOP_KEYS);
  const out: TomlConfig = { settings: {}, settingsAt: {}, services: [] };

  const settings = top.get("settings");
  if (settings !== undefined) {
    if (!isTable(settings)) {
      top.bad("settings", `expected a table, got ${describe(settings)}`);
    } else {
      const r = new TableReader(src, ["settings"], settings);
      r.unknownKeys(SETTINGS_KEYS);
      if (r.has("grace")) {
        const before = src.diags.count;
        const grace = r.seconds("grace", DEFAULTS.grace, false);
        if (src.diags.count === before) {
          out.settings.grace = grace;
          out.settingsAt.grace = r.at("grace");
        }
      }
      if (r.has("stop_delay")) {
        const before = src.diags.count;
        const delay = r.seconds("stop_delay", DEFAULTS.stopDelay, false);
        if (src.diags.count === before) {
          out.settings.stopDelay = delay;
          out.settingsAt.stopDelay = r.at("stop_delay");
        }
      }
      if (r.has("log_format")) {
        const before = src.diags.count;
        const format = r.oneOf<LogFormat>("log_format", LOG_FORMATS, DEFAULTS.logFormat);
        if (src.diags.count === before) {
          out.settings.logFormat = format;
          out.settingsAt.logFormat = r.at("log_format");
        }
      }
      if (r.has("control")) {
        const v = r.get("control");
        const path = v === "none" ? "none" : r.absolutePath("control", v);
        if (path !== null) {
          out.settings.control = path;
          out.settingsAt.control = r.at("control");
        }
      }
      if (r.has("http")) {
        const v = r.get("http");
        const parsed = typeof v === "string" ? parseHttpAddress(v) : null;
        if (parsed?.ok) {
          out.settings.http = parsed.address;
          out.settingsAt.http = r.at("http");
        } else {
          r.bad("http", parsed ? parsed.message : `expected "ADDR:PORT" (e.g. "0.0.0.0:9100"), got ${describe(v)}`);
        }
      }
      readLogSettings(r, out);
    }
  }

  const services = top.get("services");
  if (services === undefined) {
    src.diags.add({ origin: src.origin, sourceIndex: src.sourceIndex }, "no services declared (add a [services.NAME] table)");
  } else if (!isTable(services)) {
    top.bad("services", `expected a table of [services.NAME] tables, got ${describe(services)}`);
  } else {
    if (Object.keys(services).length === 0) top.bad("services", "no services declared (add a [services.NAME] table)");
    // Declaration order, which object key order is not: integer-like keys ("2") come first.
    const line = (name: string) => src.lines.exact(["services", name]) ?? Number.MAX_SAFE_INTEGER;
    const entries = Object.entries(services).sort((a, b) => line(a[0]) - line(b[0]));
    for (const [name, raw] of entries) {
      const draft = readService(name, raw, src);
      if (draft) out.services.push(draft);
    }
  }
  return out;
}

/** [settings] env_file, timestamps and log_level, each recorded only when valid. */
function readLogSettings(r: TableReader, out: TomlConfig): void {
  const keep = <K extends keyof Settings>(key: string, field: K, read: () => Settings[K]) => {
    if (!r.has(key)) return;
    const before = r.src.diags.count;
    const value = read();
    if (r.src.diags.count !== before) return;
    out.settings[field] = value;
    out.settingsAt[field] = r.at(key);
  };
  keep("env_file", "envFiles", () => r.envFiles("env_file"));
  keep("timestamps", "timestamps", () => r.boolean("timestamps", DEFAULTS.timestamps));
  keep("log_level", "logLevel", () => r.oneOf<LogLevel>("log_level", LOG_LEVELS, "info"));
}

function readService(name: string, raw: unknown, src: TomlSource): ServiceDraft | null {
  const base: KeyPath = ["services", name];
  if (!isTable(raw)) {
    src.diags.add(whereIn(src, base), `expected a table ([services.${name}]), got ${describe(raw)}`);
    return null;
  }
  const r = new TableReader(src, base, raw);
  const badName = checkServiceName(name);
  if (badName) r.bad([], badName);
  r.unknownKeys(SERVICE_KEYS);

  // command and shell
  const shell = r.boolean("shell", false);
  let argv: string[] | null = null;
  const command = r.get("command");
  if (command === undefined) {
    r.bad([], `missing "command"`);
  } else if (shell && typeof command === "string") {
    if (command.trim() === "") r.bad("command", "the command is empty");
    else if (hasNul(command)) r.bad("command", "must not contain a NUL character");
    else argv = ["/bin/sh", "-c", command];
  } else if (shell && Array.isArray(command)) {
    r.bad("command", "shell = true runs a command line: give command as one string");
  } else {
    argv = r.argv("command", command, "set shell = true to run it with /bin/sh -c");
  }

  // env
  const envEntries: [string, string][] = [];
  const rawEnv = r.get("env");
  if (rawEnv !== undefined) {
    if (!isTable(rawEnv)) {
      r.bad("env", `expected a table of strings ({ KEY = "value" }), got ${describe(rawEnv)}`);
    } else {
      for (const [k, v] of Object.entries(rawEnv)) {
        if (k === "" || k.includes("=") || hasNul(k)) r.bad(["env", k], `${JSON.stringify(k)} cannot be an environment variable name`);
        else if (typeof v !== "string") {
          const hint = typeof v === "number" || typeof v === "boolean" ? ` (write ${k} = "${v}")` : "";
          r.bad(["env", k], `expected a string, got ${describe(v)}${hint}`);
        } else if (hasNul(v)) r.bad(["env", k], "must not contain a NUL character");
        else envEntries.push([k, v]);
      }
    }
  }

  // fromEntries defines own properties, so even a variable named __proto__ is kept.
  const env: Record<string, string> = Object.fromEntries(envEntries);
  const envFiles = r.envFiles("env_file");
  const cwd = r.has("cwd") ? r.absolutePath("cwd", r.get("cwd")) : null;

  // user: resolved later, against /etc/passwd
  let userSpec: string | null = null;
  const user = r.get("user");
  if (user !== undefined) {
    if (typeof user === "string" && user !== "") userSpec = user;
    else if (typeof user === "number" && Number.isInteger(user) && user >= 0) userSpec = String(user);
    else r.bad("user", `expected a user name or "uid[:gid]", got ${describe(user)}`);
  }

  const restart = r.oneOf<RestartPolicy>("restart", RESTART_POLICIES, DEFAULTS.restart);
  // Either delay alone moves the other's default out of its way; both set must agree.
  const delaysBefore = src.diags.count;
  const firstDelay = r.has("restart_delay") ? r.seconds("restart_delay", DEFAULTS.restartDelay, false) : null;
  const longestDelay = r.has("restart_delay_max") ? r.seconds("restart_delay_max", DEFAULTS.restartDelayMax, false) : null;
  const restartDelay = firstDelay ?? Math.min(DEFAULTS.restartDelay, longestDelay ?? Infinity);
  let restartDelayMax = longestDelay ?? Math.max(DEFAULTS.restartDelayMax, restartDelay);
  if (restartDelayMax < restartDelay && src.diags.count === delaysBefore) {
    r.bad("restart_delay_max", `must be at least restart_delay (${restartDelay} s), got ${restartDelayMax}`);
    restartDelayMax = restartDelay;
  }
  const maxRestarts = r.count("max_restarts", DEFAULTS.maxRestarts, true);
  const restartWindow = r.seconds("restart_window", DEFAULTS.restartWindow, true);
  const critical = r.boolean("critical", DEFAULTS.critical);
  const oneshot = r.boolean("oneshot", DEFAULTS.oneshot);

  // after
  const afterRefs: { name: string; field: KeyPath }[] = [];
  const rawAfter = r.get("after");
  if (rawAfter !== undefined) {
    if (!Array.isArray(rawAfter)) {
      const hint = typeof rawAfter === "string" ? ` (write after = [${JSON.stringify(rawAfter)}])` : "";
      r.bad("after", `expected an array of service names, got ${describe(rawAfter)}${hint}`);
    } else {
      rawAfter.forEach((dep, i) => {
        if (typeof dep !== "string") r.bad(["after", i], `expected a service name, got ${describe(dep)}`);
        else if (!afterRefs.some((a) => a.name === dep)) afterRefs.push({ name: dep, field: ["after", i] });
      });
    }
  }

  // ready
  const rawReady = r.get("ready");
  const ready = rawReady === undefined ? null : readReady(r, rawReady);
  const readyTimeout = r.seconds("ready_timeout", DEFAULTS.readyTimeout, true);

  // health (liveness)
  const rawHealth = r.get("health");
  const health = rawHealth === undefined ? null : readHealth(r, rawHealth);

  let stopSignal: number = DEFAULTS.stopSignal;
  if (r.has("stop_signal")) stopSignal = r.signal("stop_signal", r.get("stop_signal")) ?? stopSignal;
  const stopTimeout = r.seconds("stop_timeout", DEFAULTS.stopTimeout, false);

  let signals: "all" | number[] = "all";
  const rawSignals = r.get("signals");
  if (rawSignals !== undefined) {
    if (!Array.isArray(rawSignals)) {
      r.bad("signals", `expected an array of signal names, got ${describe(rawSignals)}`);
    } else {
      const list: number[] = [];
      rawSignals.forEach((s, i) => {
        const n = r.signal(["signals", i], s);
        if (n === null) return;
        if (NOT_FORWARDABLE.has(n)) r.bad(["signals", i], `${signalName(n)} cannot be forwarded (pidone ${n === SIG.CHLD ? "keeps it to reap children" : "can never receive it"})`);
        else if (!list.includes(n)) list.push(n);
      });
      signals = list;
    }
  }

  const pidfile = r.has("pidfile") ? r.absolutePath("pidfile", r.get("pidfile")) : null;

  // watchdog: WATCHDOG=1 comes over sd_notify, so it needs ready = { notify = true }
  const watchdog = r.has("watchdog") ? r.seconds("watchdog", 0, true) : null;
  if (watchdog !== null && (rawReady === undefined || (ready !== null && ready.kind !== "notify"))) {
    r.bad("watchdog", "needs ready = { notify = true }: WATCHDOG=1 arrives on the NOTIFY_SOCKET");
  }
  // The readiness a service says is its own run's: a daemon handed over by pid file would
  // speak after the process pidone started has gone (MAINPID= is sd_notify's own handover).
  if (pidfile !== null && (ready?.kind === "notify" || ready?.kind === "fd")) {
    r.bad("pidfile", `cannot be combined with ready = { ${ready.kind} = … }${ready.kind === "notify" ? " (a notify daemon names its main process with MAINPID=)" : ""}`);
  }

  // Combinations that cannot mean anything.
  if (oneshot && restart === "always") r.bad("restart", `a oneshot that exits 0 has succeeded: restart = "always" would run it forever (use "on-failure")`);
  if (oneshot && rawReady !== undefined) r.bad("ready", "a oneshot is ready when it exits 0: it takes no ready probe");
  if (oneshot && r.has("pidfile")) r.bad("pidfile", "a oneshot cannot hand over to a daemon's pidfile");
  if (oneshot && rawHealth !== undefined) r.bad("health", "a oneshot runs to its end: it takes no liveness check");

  const line = src.lines.exact(base);
  const spec: ServiceSpec = {
    name,
    origin: line === undefined ? src.origin : `${src.origin}:${line}`,
    argv: argv ?? [],
    shell,
    executable: null,
    env,
    envFiles,
    cwd,
    user: null,
    restart,
    restartDelay,
    restartDelayMax,
    maxRestarts,
    restartWindow,
    critical,
    oneshot,
    after: afterRefs.map((a) => a.name),
    ready,
    readyTimeout,
    health,
    stopSignal,
    stopTimeout,
    signals,
    pidfile,
    watchdog,
  };
  return {
    spec,
    where: (field = []) => r.at(field),
    afterRefs,
    userSpec,
    commandOk: argv !== null,
  };
}

function readReady(r: TableReader, v: unknown): ReadyProbe | null {
  const kinds = READY_KINDS.map((k) => `{ ${k} = … }`).join(", ");
  if (!isTable(v)) {
    r.bad("ready", `expected one of ${kinds}, got ${describe(v)}`);
    return null;
  }
  const t = new TableReader(r.src, [...r.path, "ready"], v);
  t.unknownKeys(READY_KINDS);
  const given = READY_KINDS.filter((k) => t.has(k));
  if (given.length !== 1) {
    if (given.length > 1) t.bad([], `takes exactly one of ${READY_KINDS.join(", ")}; got ${given.join(" and ")}`);
    else if (Object.keys(v).every((k) => !(READY_KINDS as readonly string[]).includes(k)) && Object.keys(v).length > 0) {
      // unknownKeys already said what is wrong
    } else t.bad([], `expected one of ${kinds}`);
    return null;
  }
  return readProbe(t, given[0]!);
}

/** The probe under `kind` in a ready or health table. */
function readProbe(t: TableReader, kind: (typeof READY_KINDS)[number]): ReadyProbe | null {
  const value = t.get(kind);
  switch (kind) {
    case "tcp":
      return readTcp(t, value);
    case "http": {
      if (typeof value !== "string") {
        t.bad("http", `expected a URL, got ${describe(value)}`);
        return null;
      }
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        t.bad("http", `${JSON.stringify(value)} is not a URL`);
        return null;
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        t.bad("http", `expected an http:// or https:// URL, got ${JSON.stringify(value)}`);
        return null;
      }
      return { kind: "http", url: value };
    }
    case "file": {
      const path = t.absolutePath("file", value);
      return path === null ? null : { kind: "file", path };
    }
    case "exec": {
      const argv = t.argv("exec", value, `write ["/bin/sh", "-c", "…"] to use a shell`);
      return argv === null ? null : { kind: "exec", argv, executable: null };
    }
    case "notify":
      if (value === true) return { kind: "notify" };
      t.bad("notify", `expected true (sd_notify's READY=1 on NOTIFY_SOCKET), got ${describe(value)}`);
      return null;
    case "fd":
      // 0 to 2 are its stdin, stdout and stderr; any default descriptor limit holds 1023.
      if (typeof value === "number" && Number.isInteger(value) && value >= 3 && value <= MAX_READY_FD) return { kind: "fd", fd: value };
      t.bad("fd", `expected a descriptor number from 3 to ${MAX_READY_FD}, got ${describe(value)}`);
      return null;
  }
}

/** The highest notification descriptor: below every descriptor limit a system starts with. */
const MAX_READY_FD = 1023;

function readTcp(t: TableReader, value: unknown): ReadyProbe | null {
  const portOk = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (typeof value === "number") {
    if (portOk(value)) return { kind: "tcp", host: DEFAULTS.readyHost, port: value };
    t.bad("tcp", `expected a port from 1 to 65535, got ${describe(value)}`);
    return null;
  }
  if (typeof value === "string") {
    // "HOST:PORT" or "[V6]:PORT": for a service that listens on one address only.
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value);
    const port = m ? Number(m[3]) : NaN;
    if (m && portOk(port)) return { kind: "tcp", host: (m[1] ?? m[2])!, port };
    t.bad("tcp", `expected a port, or "HOST:PORT", got ${describe(value)}`);
    return null;
  }
  t.bad("tcp", `expected a port, or "HOST:PORT", got ${describe(value)}`);
  return null;
}

/**
 * `health = { http = URL | tcp = PORT | exec = ARGV, interval, timeout, retries,
 * start_period }`, inline or as a [services.NAME.health] table (TOML makes them one).
 */
function readHealth(r: TableReader, v: unknown): HealthSpec | null {
  const kinds = HEALTH_KINDS.map((k) => `{ ${k} = … }`).join(", ");
  if (!isTable(v)) {
    r.bad("health", `expected one of ${kinds}, got ${describe(v)}`);
    return null;
  }
  const t = new TableReader(r.src, [...r.path, "health"], v);
  if (t.has("file")) t.bad("file", "a liveness check is tcp, http or exec (a file that exists says nothing about a process that hangs)");
  t.unknownKeys([...HEALTH_KEYS, "file"]);
  const interval = t.seconds("interval", DEFAULTS.healthInterval, true);
  const timeout = t.seconds("timeout", DEFAULTS.healthTimeout, true);
  const startPeriod = t.seconds("start_period", DEFAULTS.healthStartPeriod, false);
  let retries = t.count("retries", DEFAULTS.healthRetries);
  if (retries === 0) {
    t.bad("retries", "must be 1 or more: the failures in a row that make the service unhealthy");
    retries = DEFAULTS.healthRetries;
  }
  const given = HEALTH_KINDS.filter((k) => t.has(k));
  if (given.length !== 1) {
    if (given.length > 1) t.bad([], `takes exactly one of tcp, http, exec; got ${given.join(" and ")}`);
    else if (!t.has("file")) t.bad([], `expected one of tcp, http, exec: ${kinds}`);
    return null;
  }
  const probe = readProbe(t, given[0]!) as HealthProbe | null;
  return probe === null ? null : { probe, interval, timeout, retries, startPeriod };
}
