// Every source (--service flags, Procfiles, TOML files) → one validated ServicePlan, or
// the full list of what is wrong. Checks that need all sources at once (duplicate
// names, `after`), or the machine (programs on PATH, users, root) live here.
import { readAccounts, resolveUser, type Accounts } from "./accounts.ts";
import { Diagnostics, suggestion, type KeyPath, type Where } from "./diagnostics.ts";
import { findCycles, topologicalOrder } from "./graph.ts";
import { parseProcfile, parseServiceLine, type ProcEntry } from "./procfile.ts";
import { findProgram, probeFile, type ProbeFile } from "./programs.ts";
import { parseToml, readTomlConfig, type ServiceDraft } from "./toml.ts";
import { readEnvFile, type EnvFileRef } from "./envfile.ts";
import { DEFAULTS, type HttpAddress, type ServicePlan, type ServiceSpec, type Settings } from "./types.ts";

export type Source =
  /** A TOML file's text (`-c FILE.toml`). */
  | { kind: "toml"; file: string; text: string }
  /** A Procfile's text (`-c FILE`, any other name). */
  | { kind: "procfile"; file: string; text: string }
  /** One `--service 'NAME: COMMAND'` value. */
  | { kind: "flag"; text: string };

export interface PlanOptions {
  /** pidone's environment: its PATH is the services' PATH unless their env sets one. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** pidone's working directory, for services without cwd. Default: process.cwd(). */
  cwd?: string;
  /** Directory holding etc/passwd and etc/group. Default: "/". */
  accountsRoot?: string;
  /** Already-read accounts (tests); overrides accountsRoot. */
  accounts?: Accounts;
  /** pidone's effective uid: `user` needs 0. Default: process.geteuid(). */
  euid?: number;
  /** The file system as the program lookup sees it. Default: stat + access(X_OK). */
  probe?: ProbeFile;
  /** Look programs up (and fill ServiceSpec.executable). Default: true. */
  checkPrograms?: boolean;
  /** Settings from the command line (--grace…): they win over every file; `http: null` is `--http none`. */
  settings?: Partial<Omit<Settings, "http">> & { http?: HttpAddress | null };
  /** Settings from the environment (PIDONE_GRACE…): used when no file sets them. */
  defaultSettings?: Partial<Settings>;
  /**
   * Read every env_file now (--check): a syntax error is a problem, a missing file only a
   * warning (it may be mounted at run time). A run reads them at each start instead.
   */
  checkEnvFiles?: boolean;
}

export type PlanResult =
  | { ok: true; plan: ServicePlan; diagnostics: []; warnings?: string[] }
  | { ok: false; diagnostics: string[]; warnings?: string[] };

/** A Procfile line or --service flag: a shell command with every other key defaulted. */
function shellDraft(entry: ProcEntry, where: Where, origin: string): ServiceDraft {
  return {
    spec: {
      name: entry.name,
      origin,
      argv: ["/bin/sh", "-c", entry.command],
      shell: true,
      executable: null,
      env: {},
      envFiles: [],
      cwd: null,
      user: null,
      restart: DEFAULTS.restart,
      restartDelay: DEFAULTS.restartDelay,
      restartDelayMax: DEFAULTS.restartDelayMax,
      maxRestarts: DEFAULTS.maxRestarts,
      restartWindow: DEFAULTS.restartWindow,
      critical: DEFAULTS.critical,
      oneshot: DEFAULTS.oneshot,
      after: [],
      ready: null,
      readyTimeout: DEFAULTS.readyTimeout,
      health: null,
      stopSignal: DEFAULTS.stopSignal,
      stopTimeout: DEFAULTS.stopTimeout,
      signals: "all",
      pidfile: null,
      watchdog: null,
    },
    where: () => where,
    afterRefs: [],
    userSpec: null,
    commandOk: true,
  };
}

export function planFromSources(sources: readonly Source[], options: PlanOptions = {}): PlanResult {
  const diags = new Diagnostics();
  const drafts: ServiceDraft[] = [];
  const settings: Partial<Settings> = {};
  const settingsAt: Partial<Record<keyof Settings, Where>> = {};

  sources.forEach((source, sourceIndex) => {
    if (source.kind === "flag") {
      const origin = `--service ${JSON.stringify(source.text)}`;
      const where: Where = { origin, sourceIndex };
      const parsed = parseServiceLine(source.text);
      if (parsed.ok) drafts.push(shellDraft(parsed.entry, where, origin));
      else diags.add(where, parsed.message);
    } else if (source.kind === "procfile") {
      const lines = parseProcfile(source.text);
      if (lines.length === 0) diags.add({ origin: source.file, sourceIndex }, "no services declared (expected NAME: COMMAND lines)");
      for (const l of lines) {
        if (!l.ok) {
          diags.add({ origin: source.file, sourceIndex, line: l.line }, l.message);
          continue;
        }
        const where: Where = { origin: source.file, sourceIndex, line: l.entry.line };
        drafts.push(shellDraft(l.entry, where, `${source.file}:${l.entry.line}`));
      }
    } else {
      const parsed = parseToml(source.text);
      if (!parsed.ok) {
        const where: Where = { origin: source.file, sourceIndex, ...(parsed.line === undefined ? {} : { line: parsed.line }) };
        diags.add(where, parsed.tooBig ? parsed.message : `TOML syntax error: ${parsed.message}`);
        return;
      }
      const config = readTomlConfig(parsed.data, { origin: source.file, sourceIndex, lines: parsed.lines, diags });
      drafts.push(...config.services);
      for (const key of ["grace", "logFormat", "stopDelay", "control", "http", "timestamps", "logLevel", "envFiles"] as const) {
        const value = config.settings[key];
        const at = config.settingsAt[key];
        if (value === undefined || at === undefined) continue;
        const earlier = settingsAt[key];
        if (earlier) {
          diags.add(at, `already set at ${earlier.origin}${earlier.line === undefined ? "" : `:${earlier.line}`}`);
          continue;
        }
        (settings as Record<string, unknown>)[key] = value;
        settingsAt[key] = at;
      }
    }
  });

  if (sources.length === 0) {
    diags.add({ origin: "pidone", sourceIndex: 0 }, "no services declared (give --service 'NAME: COMMAND' or -c FILE)");
  }

  const unique = checkDuplicates(drafts, diags);
  checkAfter(unique, diags);
  checkMachine(unique, diags, options);

  const envFiles = settings.envFiles ?? [];
  for (const d of unique) d.spec.envFiles = [...envFiles, ...d.spec.envFiles];
  const { errors, warnings } = options.checkEnvFiles ? checkEnvFiles(unique.map((d) => d.spec)) : { errors: [], warnings: [] };

  const grace = options.settings?.grace ?? settings.grace ?? options.defaultSettings?.grace ?? DEFAULTS.grace;
  const stopDelay = options.settings?.stopDelay ?? settings.stopDelay ?? options.defaultSettings?.stopDelay ?? DEFAULTS.stopDelay;
  if (stopDelay > 0 && stopDelay >= grace) {
    // Named where it was set: the flag, a file's key, or the environment.
    const fromFile = options.settings?.stopDelay === undefined && settingsAt.stopDelay;
    const name = options.settings?.stopDelay !== undefined ? "--stop-delay" : fromFile ? "stop_delay" : "PIDONE_STOP_DELAY";
    const at = fromFile || settingsAt.grace || { origin: "pidone", sourceIndex: 0 };
    diags.add(at, `${name} (${stopDelay} s) must be shorter than the grace (${grace} s): the delay counts inside it`);
  }

  if (diags.count > 0 || errors.length > 0) {
    return { ok: false, diagnostics: [...diags.formatted(), ...errors], ...(warnings.length ? { warnings } : {}) };
  }
  const http = options.settings?.http === undefined ? settings.http : options.settings.http;
  const pick = <K extends Exclude<keyof Settings, "http">>(key: K, fallback: Settings[K]): Settings[K] =>
    (options.settings?.[key] as Settings[K] | undefined) ?? settings[key] ?? options.defaultSettings?.[key] ?? fallback;
  return {
    ok: true,
    plan: {
      settings: {
        grace,
        logFormat: pick("logFormat", DEFAULTS.logFormat),
        stopDelay,
        timestamps: pick("timestamps", DEFAULTS.timestamps),
        logLevel: pick("logLevel", null),
        envFiles,
        control: settings.control ?? null,
        // No default: the endpoint is off unless asked for; `--http none` turns a file's off.
        ...(http ? { http } : {}),
      },
      services: topologicalOrder(unique.map((d) => d.spec)),
    },
    diagnostics: [],
    ...(warnings.length ? { warnings } : {}),
  };
}

/**
 * --check reads every env_file once: each syntax error (FILE:LINE) is a problem, listed
 * after the configuration's own; a missing required file is a warning.
 */
function checkEnvFiles(specs: readonly ServiceSpec[]): { errors: string[]; warnings: string[] } {
  // Each file once; required wherever one service requires it.
  const seen = new Map<string, EnvFileRef>();
  for (const s of specs) for (const ref of s.envFiles) if (!seen.has(ref.path) || !ref.optional) seen.set(ref.path, ref);
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const ref of seen.values()) {
    const r = readEnvFile(ref);
    if (r.ok) continue;
    if (r.missing) warnings.push(`${ref.path}: warning: no such env_file (if it is not there at run time either, the services that need it cannot start)`);
    else errors.push(r.message);
  }
  return { errors, warnings };
}

/** Names are unique across all sources; later declarations are reported and dropped. */
function checkDuplicates(drafts: readonly ServiceDraft[], diags: Diagnostics): ServiceDraft[] {
  const first = new Map<string, ServiceDraft>();
  for (const d of drafts) {
    const earlier = first.get(d.spec.name);
    if (earlier) diags.add(d.where(), `service "${d.spec.name}" is already declared at ${earlier.spec.origin}`);
    else first.set(d.spec.name, d);
  }
  return [...first.values()];
}

/** Cycles listed, and unknown names given a suggestion: each costs work over every service. */
const MAX_CYCLES = 20;
const MAX_SUGGESTIONS = 100;

function checkAfter(drafts: readonly ServiceDraft[], diags: Diagnostics): void {
  const names = drafts.map((d) => d.spec.name);
  const known = new Set(names);
  let suggestions = 0;
  for (const d of drafts) {
    for (const ref of d.afterRefs) {
      if (!known.has(ref.name)) {
        const hint = suggestions++ < MAX_SUGGESTIONS ? suggestion(ref.name, names) : "";
        diags.add(d.where(ref.field), `unknown service ${JSON.stringify(ref.name)}${hint}`);
      }
    }
  }
  const byName = new Map(drafts.map((d) => [d.spec.name, d]));
  const cycles = findCycles(drafts.map((d) => d.spec), MAX_CYCLES + 1);
  for (const cycle of cycles.slice(0, MAX_CYCLES)) {
    const from = byName.get(cycle[0]!)!;
    const ref = from.afterRefs.find((a) => a.name === cycle[1]);
    const where = ref ? from.where(ref.field) : from.where(["after"]);
    diags.add(where, `dependency cycle: ${cycle.join(" -> ")}`);
  }
  if (cycles.length > MAX_CYCLES) {
    diags.add({ origin: "pidone", sourceIndex: Number.MAX_SAFE_INTEGER }, `more dependency cycles than the ${MAX_CYCLES} listed`);
  }
}

function checkMachine(drafts: readonly ServiceDraft[], diags: Diagnostics, options: PlanOptions): void {
  const env = options.env ?? process.env;
  const baseCwd = options.cwd ?? process.cwd();
  const probe = options.probe ?? probeFile;
  const euid = options.euid ?? process.geteuid?.() ?? 0;
  let accounts = options.accounts;

  for (const d of drafts) {
    const spec = d.spec;
    if (d.commandOk && options.checkPrograms !== false) {
      const path = Object.hasOwn(spec.env, "PATH") ? spec.env.PATH : env.PATH;
      const cwd = spec.cwd ?? baseCwd;
      const lookup = (argv: readonly string[], field: KeyPath, shell: boolean): string | null => {
        const found = findProgram(argv[0]!, path, cwd, probe);
        if (found.ok) return found.path;
        const why = shell ? ` (the command runs with /bin/sh -c)` : "";
        diags.add(d.where(field), `${found.message}${why}`);
        return null;
      };
      spec.executable = lookup(spec.argv, ["command"], spec.shell);
      if (spec.ready?.kind === "exec") spec.ready.executable = lookup(spec.ready.argv, ["ready", "exec"], false);
      if (spec.health?.probe.kind === "exec") spec.health.probe.executable = lookup(spec.health.probe.argv, ["health", "exec"], false);
    }
    if (d.userSpec !== null) {
      accounts ??= readAccounts(options.accountsRoot ?? "/");
      const resolved = resolveUser(d.userSpec, accounts);
      if (resolved.ok) spec.user = resolved.user;
      else diags.add(d.where(["user"]), resolved.message);
      if (euid !== 0) diags.add(d.where(["user"]), `switching user needs pidone to run as root (it runs as uid ${euid})`);
    }
  }
}
