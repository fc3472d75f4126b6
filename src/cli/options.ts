// argv (bytes) + environment → what pidone should do. Pure: no I/O, no exits.
import { parseGrammar } from "./grammar.ts";
import { PDEATHSIG_NAMES } from "../signals/table.ts";

export interface RunConfig {
  kind: "run";
  subreaper: boolean;
  pdeathsig: number;
  verbosity: number;
  warnOnReap: boolean;
  processGroup: boolean;
  /** Exit codes remapped to 0 (-e). */
  expectExit: ReadonlySet<number>;
  /** PROGRAM and its arguments, byte for byte. */
  program: Uint8Array[];
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

export function decide(argv: readonly Uint8Array[], env: ReadonlyMap<string, string>): Decision {
  // Option tokens are ASCII; latin1 keeps every byte of a value without failing.
  const text = argv.map((a) => Buffer.from(a).toString("latin1"));
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
  };
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
        break;
      case "warn-on-reap":
        cfg.warnOnReap = true;
        break;
      case "process-group":
        cfg.processGroup = true;
        break;
      case "pdeathsig": {
        const sig = PDEATHSIG_NAMES.get(opt.value!);
        if (sig === undefined) return { kind: "usage-error", fatal: `Not a valid option for -p: ${opt.value}` };
        cfg.pdeathsig = sig;
        break;
      }
      case "expect-exit": {
        const code = parseExitCode(opt.value!);
        if (code === null) return { kind: "usage-error", fatal: `Not a valid option for -e: ${opt.value}` };
        expect.add(code);
        break;
      }
    }
  }

  // tini reads its environment after its flags: TINI_VERBOSITY overrides -v.
  if (env.has("TINI_SUBREAPER")) cfg.subreaper = true;
  if (env.has("TINI_KILL_PROCESS_GROUP")) cfg.processGroup = true;
  const v = env.get("TINI_VERBOSITY");
  if (v !== undefined) cfg.verbosity = atoi(v);

  if (cfg.program.length === 0) return { kind: "usage-error" };
  return cfg;
}
