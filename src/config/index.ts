/**
 * Services mode configuration: `--service 'NAME: COMMAND'` flags, Procfiles and TOML
 * files → one validated ServicePlan, or every problem found, each as `FILE:LINE: message`
 * (or `FILE: key.path: message` when no line can be known).
 *
 * Sources
 * - `--service 'NAME: COMMAND'` (repeatable) and a Procfile (`-c FILE`, any name not
 *   ending in .toml): `NAME: COMMAND` lines, `#` comments, blank lines. COMMAND is a
 *   shell command line, run as ["/bin/sh", "-c", COMMAND] (the Procfile convention).
 * - A TOML file (`-c FILE.toml`): [settings] grace, log_format, stop_delay, control, http,
 *   env_file, timestamps, log_level; [services.NAME] with command, shell, env, cwd, user,
 *   restart, restart_delay, restart_delay_max, max_restarts, restart_window, critical,
 *   oneshot, after, ready, ready_timeout, stop_signal, stop_timeout, signals, pidfile,
 *   env_file, health (a liveness check: tcp, http or exec, with interval, timeout,
 *   retries, start_period).
 *   The README's TOML example documents every key with its default (test/config-plan.test.ts
 *   checks it).
 * - Several sources combine into one plan; a name declared twice is an error, and
 *   `after` may name a service of any source.
 *
 * Names: 1 to 64 of [A-Za-z0-9_.-], not starting with "." or "-".
 *
 * Defaults (types.ts DEFAULTS): restart "never", restart_delay 1 s doubling up to
 * restart_delay_max 30 s, max_restarts 5 within restart_window 60 s (inf: no limit),
 * critical true (a service that dies for good stops the container, so nothing
 * dies silently; set critical = false for helpers), oneshot false, ready_timeout 30 s,
 * stop_signal TERM, stop_timeout 10 s, signals: all, grace 5 s, log_format "prefix",
 * timestamps false, log_level unset (each mode's own default), env_file none;
 * health: none (with one: interval 30 s, timeout 5 s, retries 3, start_period 0 s).
 *
 * env_file ([settings] for every service, then the service's own) is only listed here:
 * the files are read at every start of the service (src/services/launch.ts), so the
 * program is looked up before any of them is read, and a PATH set in one does not move it.
 *
 * A command given as a string (without shell = true) is split with POSIX quoting only:
 * '…', "…" with \" \\ \$ \` and \newline, backslash outside quotes. What a shell would
 * expand or interpret ($VAR, `…`, | & ; < > ( ), a # comment, a second line) is refused
 * with a pointer to shell = true, never passed on literally.
 *
 * Checks that need the machine: argv[0] is found and executable (a name with a slash
 * relative to cwd, a bare name in the service's PATH: env.PATH, else pidone's), and
 * /bin/sh for shell commands; `user` resolves through /etc/passwd and /etc/group (read
 * directly, no NSS) and pidone runs as root. Each is injectable through PlanOptions.
 *
 * Nothing here spawns a process or touches bun:ffi: it reads files and nothing else.
 */
import { readFileSync, statSync } from "node:fs";
import { planFromSources, type PlanOptions, type PlanResult, type Source } from "./plan.ts";

export { planFromSources, type PlanOptions, type PlanResult, type Source } from "./plan.ts";
export { startLevels, stopLevels, topologicalOrder, findCycles } from "./graph.ts";
export { splitCommand, quoteCommand, type SplitResult } from "./shellwords.ts";
export { parseProcfile, parseServiceLine, checkServiceName } from "./procfile.ts";
export { readAccounts, resolveUser, parsePasswd, parseGroup, type Accounts } from "./accounts.ts";
export { findProgram, probeFile, type FileKind, type ProbeFile } from "./programs.ts";
export { formatDiagnostic, type Diagnostic } from "./diagnostics.ts";
export { parseHttpAddress, formatHttpAddress, type AddressResult } from "./address.ts";
export { parseEnvFile, readEnvFile, readEnvFiles, envFileRef, type EnvFileRef, type EnvFileParse } from "./envfile.ts";
export * from "./types.ts";

/** `-c FILE` is TOML when its name ends in .toml (any case), a Procfile otherwise. */
export function isTomlFile(file: string): boolean {
  return /\.toml$/i.test(file);
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
};

const MAX_FILE_BYTES = 1024 * 1024;

/** Reads each file as UTF-8; unreadable, oversized or non-UTF-8 files become diagnostics. */
export function readSources(
  files: readonly string[],
  flags: readonly string[],
): { sources: Source[]; diagnostics: string[] } {
  const sources: Source[] = [];
  const diagnostics: string[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      // Refused before it is read: a file this big is a mistake, and parsing it would cost
      // seconds and hundreds of MB (a Procfile's every line is a service).
      const size = statSync(file).size;
      if (size > MAX_FILE_BYTES) {
        diagnostics.push(`${file}: ${size} bytes, more than the ${MAX_FILE_BYTES / 1024 / 1024} MiB a services file may have`);
        continue;
      }
      bytes = readFileSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      diagnostics.push(`${file}: cannot read: ${READ_ERRORS[code] ?? code}`);
      continue;
    }
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      diagnostics.push(`${file}: not valid UTF-8 text`);
      continue;
    }
    if (text.startsWith("\uFEFF")) text = text.slice(1);
    sources.push({ kind: isTomlFile(file) ? "toml" : "procfile", file, text });
  }
  for (const text of flags) sources.push({ kind: "flag", text });
  return { sources, diagnostics };
}

/**
 * The plan services mode runs: from the `-c FILE` values and the `--service` values.
 * Files are listed before flags in diagnostics.
 */
export function buildPlan(files: readonly string[], flags: readonly string[], options: PlanOptions = {}): PlanResult {
  const read = readSources(files, flags);
  const result = planFromSources(read.sources, options);
  if (read.diagnostics.length === 0) return result;
  // With every file unreadable, "no services declared" would only add noise.
  if (read.sources.length === 0) return { ok: false, diagnostics: read.diagnostics };
  const warnings = result.warnings ? { warnings: result.warnings } : {};
  return { ok: false, diagnostics: [...read.diagnostics, ...(result.ok ? [] : result.diagnostics)], ...warnings };
}

/**
 * `pidone --check`: exit 0 when ok, else exit 2 printing every diagnostic. It reads each
 * env_file too: `warnings` name the missing ones, which do not fail the check.
 */
export function check(
  files: readonly string[],
  flags: readonly string[],
  options: PlanOptions = {},
): { ok: boolean; diagnostics: string[]; warnings: string[] } {
  const result = buildPlan(files, flags, { ...options, checkEnvFiles: true });
  return { ok: result.ok, diagnostics: result.diagnostics, warnings: result.warnings ?? [] };
}
