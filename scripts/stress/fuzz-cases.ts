// The fuzzer's cases and its judge, shared by scripts/stress/fuzz.ts (100,000 cases on
// demand) and test/fuzz.test.ts (a few hundred in CI). A case is a pure function of
// (seed, index), so any failure replays with `--seed S --only I`.
//
// Two kinds:
// - "cli": a command line built from the real option table (src/cli/definition.ts):
//   flags, values, clusters, `--`, `--opt=value`, unknown options and raw bytes, with
//   PROGRAM always a harmless fixture (true, `sh -c 'exit N'`, a short sleep...). Run as a
//   plain child in its own session, or as PID 1 of a new PID namespace.
// - "config": `pidone --check -c FILE...` on mutations of valid TOML files and
//   Procfiles (from the tests and the README): huge, deeply nested, binary, non-UTF-8,
//   long lines, many services, cycles, duplicated keys.
//
// Every case must end with a defined exit code and a message: never an uncaught
// exception, a crash banner, a signal death of pidone or a hang.
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { args as OPTION_TABLE } from "../../src/cli/definition.ts";
import { decide, type Decision } from "../../src/cli/options.ts";
import { SIG } from "../../src/signals/table.ts";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

// ---------------------------------------------------------------- randomness

export interface Rng {
  /** [0, 1) */
  next(): number;
  int(n: number): number;
  between(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: small, fast and the same on every machine. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    between: (lo, hi) => lo + int(hi - lo + 1),
    chance: (p) => next() < p,
    pick: (items) => items[int(items.length)]!,
  };
}

/** The seed of case `index` of a run seeded with `seed`. */
export function caseSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  return (h ^ (h >>> 13)) >>> 0;
}

const enc = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

function randomBytes(r: Rng, n: number, nul = true): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r.int(256);
  if (!nul) for (let i = 0; i < n; i++) if (out[i] === 0) out[i] = 1;
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

// ---------------------------------------------------------------- cases

export interface FileSpec {
  name: string;
  bytes: Uint8Array;
}

export interface CliCase {
  kind: "cli";
  /** argv[0] as pidone sees it (null: its own path). */
  argv0: Uint8Array | null;
  /** argv[1..] */
  args: Uint8Array[];
  /** Variables set over a minimal environment. */
  env: [string, Uint8Array][];
  /** PID 1 of a new PID namespace, or a plain child in its own session. */
  pid1: boolean;
  /** When to send the stop signal if pidone still runs (it may legitimately). */
  signalAfterMs: number;
}

export interface ConfigCase {
  kind: "config";
  files: FileSpec[];
  /** argv[1..]: --check, -c FILE (files are named relative to the case's directory), --service. */
  args: Uint8Array[];
}

export type Case = CliCase | ConfigCase;

/** Exit codes the fixtures end with (never 1 or 2: those are pidone's own). */
export const FIXTURE_CODES = [0, 3, 42, 99, 255] as const;

/** Files every cli case may name: written once into each worker's directory. */
export const CLI_FILES: Record<string, string> = {
  Procfile: "a: sleep 0.2\nb: exit 3\n# comment\n",
  "services.toml": `[settings]\ngrace = 2\n[services.a]\ncommand = ["sleep", "0.3"]\n[services.b]\ncommand = ["sh", "-c", "exit 42"]\nafter = ["a"]\nrestart = "on-failure"\nmax_restarts = 1\n`,
  "always.toml": `[services.loop]\ncommand = "sh -c 'exit 3'"\nrestart = "always"\ncritical = false\n[services.idle]\ncommand = ["sleep", "2"]\n`,
  "bad.toml": "[services.x]\ncommand = 3\n",
  "binary.bin": "\u0000\u00ff\u00fe garbage \u0001",
  "notexec.sh": "#!/bin/sh\nexit 3\n",
  "pid-junk": "not a pid\n",
  "pid-one": "1\n",
  "pid-huge": "99999999999999999999\n",
};

function programs(): Uint8Array[][] {
  const sh = (script: string) => [enc("sh"), enc("-c"), enc(script)];
  return [
    [enc("true")],
    ...FIXTURE_CODES.map((c) => sh(`exit ${c}`)),
    sh("sleep 0.2; exit 3"),
    sh("exec sleep 2"), // runs until the stop signal, or ends by itself if the signal is dropped
    sh("sleep 0.1 & exit 42"), // leaves an orphan for -s, -w, --wait-all and the sweep
    sh("kill -TERM $$"),
    [enc("./notexec.sh")], // 126
    [enc("./")], // a directory: 126
    [enc("/nonexistent/program")], // 127
    [latin1("no-such-\xff\xfe")], // 127
  ];
}

/** Values for each option of the table: valid ones, near misses, and garbage. */
function optionValue(r: Rng, name: string, pid1: boolean): Uint8Array {
  // Relative to the case's directory (its cwd), so that a case is the same in any worker.
  const file = (n: string) => (r.chance(0.5) ? n : `./${n}`);
  const dir = ".";
  const choices: Record<string, string[]> = {
    pdeathsig: ["SIGKILL", "SIGTERM", "SIGUSR1", "KILL", "9", "SIGFOO", "", "SIG", "sigkill", "SIGRTMIN+1"],
    "expect-exit": ["0", "3", "42", "255", "256", "-1", " 3", "+3", "0x10", "", "1e3", "99999999999999999999", "3 ", "143"],
    grace: ["0", "0.1", "1", "5", "1e9", "1e3", "-1", "inf", "NaN", ".5", "5.", " 2 ", "9".repeat(400), "", "0.000001", "99999999999", "2147483", "2147484"],
    "stop-signals": ["TERM,INT", "QUIT", "HUP,USR1", "RTMIN+3", "", ",", "KILL", "STOP", "0", "65", "TERM,,INT", "INT", "CHLD", "TERM,KILL"],
    // "1" is pidone itself as PID 1; outside a namespace it would name the host's init.
    pidfile: [file("missing.pid"), file("pid-junk"), file(pid1 ? "pid-one" : "pid-huge"), file("pid-huge"), "", dir, file("binary.bin"), "/dev/null"],
    "pidfile-timeout": ["0.1", "0.3", "1", "0", "-1", "abc", "1e308", "9".repeat(400), "", ".2", "99999999999", "3000000"],
    rewrite: ["TERM:QUIT", "TERM:0", "USR1:USR2", "KILL:TERM", "CHLD:TERM", "TERM:KILL", "TERM", "a:b:c", "RTMIN+1:RTMAX", "RTMIN+99:1", ":", "INT:0", "TERM:STOP", "HUP:65"],
    service: ["a: true", "b: exit 3", "c: sleep 0.3", "d: sleep 3", "bad name: x", ":", "", "x:", "a: exit 42", "-a: true", "é: true", ".x: true", "n: ", "a:true"],
    config: [file("Procfile"), file("services.toml"), file("always.toml"), file("bad.toml"), file("binary.bin"), file("missing.toml"), dir, "/dev/null", ""],
  };
  const list = choices[name];
  if (list && r.chance(0.85)) {
    let v: Uint8Array = enc(r.pick(list));
    if (r.chance(0.1)) v = mutateBytes(r, v, false);
    return v;
  }
  return junkArg(r);
}

/** An argument of random shape: bytes, option-looking words, long values. */
function junkArg(r: Rng): Uint8Array {
  switch (r.int(8)) {
    case 0:
      return randomBytes(r, r.between(0, 12), false);
    case 1:
      return enc(`--${r.pick(["", "=", "==", "x", "help=", "verbose=1", "pause=yes", "no-such", "v"])}`);
    case 2:
      return enc("-".repeat(r.between(1, 4)));
    case 3:
      return latin1("\xff\xfe-\x80\xc3(");
    case 4:
      return enc("x".repeat(r.pick([1, 100, 4096, 20000])));
    case 5:
      return enc(r.pick(["-", "--", "-h", "--version", "-c", "=", "'", '"', "\\", "$HOME", "%s%n", "\t\n"]));
    case 6:
      return enc(String(r.pick([0, -1, 1e21, 2 ** 53, -(2 ** 31), 1.5])));
    default:
      return enc("é✓\u{1f600}");
  }
}

interface OptionInfo {
  name: string;
  short: string[];
  takesValue: boolean;
}

const OPTIONS: OptionInfo[] = Object.entries(OPTION_TABLE)
  .filter(([, def]) => def.type !== "positional")
  .map(([name, def]) => ({
    name,
    short: [...(("alias" in def ? def.alias : []) as readonly string[])],
    takesValue: def.type === "string",
  }));

function oneOption(r: Rng, pid1: boolean): Uint8Array[] {
  const o = r.pick(OPTIONS);
  // Help, version and license end pidone at once: keep them rare so the rest gets run.
  if (["help", "version", "license"].includes(o.name) && r.chance(0.8)) return [enc("-v")];
  const value = () => optionValue(r, o.name, pid1);
  if (o.short.length && r.chance(0.45)) {
    const c = r.pick(o.short);
    if (!o.takesValue) return [enc(`-${c}`)];
    return r.chance(0.5) ? [concat([enc(`-${c}`), value()])] : [enc(`-${c}`), value()];
  }
  if (!o.takesValue) return [enc(r.chance(0.03) ? `--${o.name}=1` : `--${o.name}`)];
  return r.chance(0.5) ? [concat([enc(`--${o.name}=`), value()])] : [enc(`--${o.name}`), value()];
}

/** `-vvsg`, `-vve3`, `-vvx`: short options packed into one word. */
function cluster(r: Rng, pid1: boolean): Uint8Array[] {
  const flags = OPTIONS.filter((o) => o.short.length && !o.takesValue && !["help", "license"].includes(o.name));
  let word = "-";
  for (let n = r.between(1, 5); n > 0; n--) word += r.pick(r.pick(flags).short);
  if (r.chance(0.1)) word += r.pick(["x", "Z", "-", "=", "9"]);
  const valued = OPTIONS.filter((o) => o.short.length && o.takesValue);
  if (r.chance(0.3)) {
    const o = r.pick(valued);
    word += r.pick(o.short);
    const value = optionValue(r, o.name, pid1);
    return r.chance(0.5) ? [concat([enc(word), value])] : [enc(word), value];
  }
  return [enc(word)];
}

/** Values pidone accepts, for command lines meant to run (tidyArgs). */
function validValue(r: Rng, name: string, pid1: boolean): string | null {
  const valid: Record<string, string[]> = {
    pdeathsig: ["SIGKILL", "SIGTERM", "SIGUSR1"],
    "expect-exit": ["0", "3", "42", "143", "255"],
    grace: ["0", "0.1", "1", "5"],
    "stop-signals": ["TERM,INT", "QUIT,TERM", "HUP,TERM,INT", "INT,TERM", "USR2"],
    pidfile: ["missing.pid", "pid-junk", pid1 ? "pid-one" : "pid-huge"],
    "pidfile-timeout": ["0.1", "0.3"],
    rewrite: ["TERM:QUIT", "USR1:USR2", "TERM:0", "INT:TERM", "HUP:0", "TERM:KILL"],
    service: ["a: true", "b: exit 3", "c: sleep 0.3", "d: exec sleep 2", "e: exit 42"],
    config: ["Procfile", "services.toml", "always.toml"],
  };
  return valid[name] ? r.pick(valid[name]) : null;
}

function formatted(r: Rng, name: string, value: string | null): Uint8Array[] {
  const o = OPTIONS.find((x) => x.name === name)!;
  if (o.short.length && r.chance(0.4)) {
    const c = r.pick(o.short);
    if (value === null) return [enc(`-${c}`)];
    return r.chance(0.5) ? [enc(`-${c}${value}`)] : [enc(`-${c}`), enc(value)];
  }
  if (value === null) return [enc(`--${name}`)];
  return r.chance(0.5) ? [enc(`--${name}=${value}`)] : [enc(`--${name}`), enc(value)];
}

/** A command line pidone accepts, in one of its modes: what runs, not only what is refused. */
function tidyArgs(r: Rng, pid1: boolean): Uint8Array[] {
  const mode = r.pick(["single", "single", "single", "single", "pause", "services"] as const);
  const common = ["subreaper", "pdeathsig", "verbose", "warn-on-reap", "process-group", "expect-exit", "grace", "stop-signals", "rewrite"];
  const names: string[] = [];
  for (let n = r.between(0, 4); n > 0; n--) names.push(r.pick(common));
  if (mode === "single") {
    if (r.chance(0.2)) names.push("setsid");
    const daemon = r.int(6);
    if (daemon === 0) names.push("wait-all");
    if (daemon === 1) names.push("pidfile", ...(r.chance(0.5) ? ["pidfile-timeout"] : []));
  }
  if (mode === "pause") names.push("pause");
  if (mode === "services") {
    for (let n = r.between(1, 3); n > 0; n--) names.push(r.pick(["service", "config"]));
    if (r.chance(0.2)) names.push("check");
  }
  const args: Uint8Array[] = [];
  for (const name of names.sort(() => r.next() - 0.5)) args.push(...formatted(r, name, validValue(r, name, pid1)));
  if (mode === "single") {
    if (r.chance(0.5)) args.push(enc("--"));
    args.push(...r.pick(programs()));
    for (let n = r.chance(0.3) ? r.between(1, 4) : 0; n > 0; n--) args.push(junkArg(r)); // the program's own
  }
  return args;
}

/** Anything goes: options, clusters, unknown options and junk in any order. */
function chaosArgs(r: Rng, pid1: boolean): Uint8Array[] {
  const args: Uint8Array[] = [];
  for (let n = r.between(0, 6); n > 0; n--) {
    const k = r.int(20);
    if (k < 12) args.push(...oneOption(r, pid1));
    else if (k < 16) args.push(...cluster(r, pid1));
    else if (k < 18) args.push(junkArg(r)); // often an operand: PROGRAM is then junk, and not found
    else args.push(enc(`--${r.pick(["bogus", "verbos", "pid", "Help", "grace-", "x".repeat(r.between(1, 300))])}`));
  }
  if (r.chance(0.5)) args.push(enc("--"));
  if (r.chance(0.9)) args.push(...r.pick(programs()));
  for (let n = r.chance(0.3) ? r.between(1, 4) : 0; n > 0; n--) args.push(junkArg(r));
  // Drop the last word now and then: an option left without its value.
  if (args.length && r.chance(0.05)) args.pop();
  return args;
}

export function cliCase(r: Rng): CliCase {
  const pid1 = r.chance(0.5);
  const args = r.chance(0.5) ? tidyArgs(r, pid1) : chaosArgs(r, pid1);
  const env: [string, Uint8Array][] = [];
  if (r.chance(0.1)) env.push(["TINI_SUBREAPER", enc(r.pick(["", "1", "0"]))]);
  if (r.chance(0.1)) env.push(["TINI_KILL_PROCESS_GROUP", enc("")]);
  if (r.chance(0.15)) env.push(["TINI_VERBOSITY", r.chance(0.8) ? enc(r.pick(["0", "1", "2", "3", "4", "9", "-1", "x", "99999999999"])) : junkArg(r)]);
  if (r.chance(0.1)) env.push(["PIDONE_GRACE", r.chance(0.8) ? enc(r.pick(["0", "1", "0.2", "-1", "x", "1e9", "99999999999"])) : junkArg(r)]);

  let argv0: Uint8Array | null = null;
  if (r.chance(0.05)) argv0 = r.chance(0.5) ? enc(r.pick(["pause", "/x/pause", "pidone", "tini", ""])) : junkArg(r);
  return {
    kind: "cli",
    argv0,
    args,
    env,
    pid1,
    signalAfterMs: r.chance(0.75) ? r.int(200) : 1000,
  };
}

// ---------------------------------------------------------------- config mutations

/** Valid TOML files and Procfiles: the README's schema, the tests' files, and a few of ours. */
export function configSamples(): { toml: string[]; procfile: string[] } {
  const toml: string[] = [
    `[settings]\ngrace = 3\nlog_format = "json"\n\n[services.a]\ncommand = ["/bin/true"]\n\n[services.b]\ncommand = "sh -c 'exit 0'"\nafter = ["a"]\nrestart = "on-failure"\nenv = { X = "1", Y = "two" }\nready = { tcp = 8080 }\n`,
    `[services.web]\ncommand = "exec sleep 1"\nshell = true\nstop_signal = "QUIT"\nsignals = ["HUP", "USR1"]\n[services.job]\ncommand = ["true"]\noneshot = true\n[services.w]\ncommand = ["true"]\nafter = ["job", "web"]\nready = { exec = ["true"] }\n`,
    `services.a.command = ["true"]\nservices.b = { command = "true", after = ["a"], ready = { file = "/tmp/x" } }\n`,
  ];
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  for (const m of readme.matchAll(/```toml\n([\s\S]*?)```/g)) toml.push(m[1]!);
  const fixtures = join(ROOT, "test/fixtures");
  const procfile: string[] = ["web: sleep 1\nworker: exec sh -c 'exit 0'\n# comment\n\nclock: true\n"];
  if (existsSync(fixtures)) {
    for (const f of readdirSync(fixtures)) {
      if (f.endsWith(".toml")) toml.push(readFileSync(join(fixtures, f), "utf8"));
      else if (/procfile/i.test(f)) procfile.push(readFileSync(join(fixtures, f), "utf8"));
    }
  }
  // The tests' inline TOML texts: template literals holding a [services.NAME] table.
  for (const f of ["test/config-toml.test.ts", "test/config-plan.test.ts"]) {
    const p = join(ROOT, f);
    if (!existsSync(p)) continue;
    for (const m of readFileSync(p, "utf8").matchAll(/`([^`]*\[services\.[^`]*)`/g)) toml.push(m[1]!.replace(/\\n/g, "\n"));
  }
  return { toml, procfile };
}

const TOML_TOKENS = [
  "[", "]", "[[", "]]", "{", "}", "\"", "'", '"""', "'''", "=", ".", ",", "\n", "#", "\\", "\\u00e9", "\\U0010FFFF",
  "\\x", "inf", "nan", "-0", "+inf", "1e999", "0x7fffffffffffffff", "9223372036854775808", "1979-05-27T07:32:00Z",
  "true", "false", "[services]", "[settings]", "[services.a]", "[[services]]", "[services.a.ready]", "services.a.after = [\"a\"]",
  "command", "after", "ready", "tcp", "http", "file", "exec", "user", "env", "cwd", "restart", "signals", "stop_signal",
  "pidfile", "grace", "log_format", "\r\n", "\t", "\uFEFF", "\u0000", "é", "\u{1f600}", "__proto__", "constructor",
  "toString", "hasOwnProperty", "a.b.c.d.e.f", "\"\" = 1", "x = 1\nx = 2\n", "[services.a]\n[services.a]\n",
];

/** One edit of the bytes: flip, insert, delete, duplicate, a bad UTF-8 sequence, a TOML token. */
function mutateBytes(r: Rng, input: Uint8Array, nul = true): Uint8Array {
  const b = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const at = () => r.int(b.length + 1);
  const insert = (i: number, piece: Uint8Array) => concat([b.subarray(0, i), piece, b.subarray(i)]);
  switch (r.int(6)) {
    case 0: {
      const out = new Uint8Array(b);
      if (out.length) out[r.int(out.length)] = r.int(256);
      return out;
    }
    case 1:
      return insert(at(), randomBytes(r, r.between(1, 8), nul));
    case 2: {
      const i = at();
      return concat([b.subarray(0, i), b.subarray(i + r.between(1, 16))]);
    }
    case 3: {
      const i = at();
      return insert(at(), new Uint8Array(b.subarray(i, i + r.between(1, 64))));
    }
    case 4:
      return insert(at(), new Uint8Array(r.pick([[0xc3], [0xff, 0xfe], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf]])));
    default:
      return insert(at(), enc(r.pick(TOML_TOKENS)));
  }
}

/** Files stay below this: big enough to find what is quadratic, small enough to make quickly. */
const MAX_FILE = 4 << 20;

function mutateLines(r: Rng, text: string, others: readonly string[]): string {
  const lines = text.split("\n");
  const i = r.int(lines.length + 1);
  switch (r.int(5)) {
    case 0: {
      const other = r.pick(others).split("\n");
      lines.splice(i, 0, ...other.slice(r.int(other.length), r.int(other.length) + r.between(1, 6)));
      break;
    }
    case 1:
      lines.splice(i, 0, ...Array(r.between(2, 50)).fill(lines[r.int(lines.length)] ?? ""));
      break;
    case 2:
      lines.splice(i, 1);
      break;
    case 3: {
      const j = r.int(lines.length);
      [lines[i], lines[j]] = [lines[j] ?? "", lines[i] ?? ""];
      break;
    }
    default:
      lines.splice(i, 0, r.pick(TOML_TOKENS));
  }
  return lines.join("\n").slice(0, MAX_FILE);
}

const NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-";
function serviceName(r: Rng): string {
  let s = "";
  for (let n = r.between(1, r.chance(0.02) ? 100 : 8); n > 0; n--) s += NAME_CHARS[r.int(NAME_CHARS.length)];
  return s;
}

/** Structured inputs no mutation reaches: size, depth, count, cycles. */
function generatedToml(r: Rng): string {
  switch (r.int(7)) {
    case 0: {
      // Many services, `after` chains with cycles and duplicates.
      const n = r.pick([50, 500, 5000, r.chance(0.2) ? 20000 : 1000]);
      const names = Array.from({ length: n }, (_, i) => (r.chance(0.01) ? `s${r.int(i + 1)}` : `s${i}`));
      return names
        .map((s) => `[services.${s}]\ncommand = ["true"]\nafter = [${Array.from({ length: r.int(4) }, () => `"${r.pick(names)}"`).join(", ")}]\n`)
        .join("");
    }
    case 1: {
      // Deep nesting, balanced or not, in a value the schema reads or in one it does not.
      const depth = r.pick([10, 100, 1000, 5000, 20000, 60000]);
      const [open, close] = r.chance(0.5) ? ["[", "]"] : ["{a=", "}"];
      const inner = open === "[" ? "1" : "1";
      const balanced = r.chance(0.8);
      const value = open.repeat(depth) + inner + (balanced ? close.repeat(depth) : close.repeat(r.int(depth)));
      const key = r.pick(["command", "after", "env", "ready", "x", "signals"]);
      return `[services.a]\n${key === "command" ? "" : 'command = ["true"]\n'}${key} = ${value}\n`;
    }
    case 2: {
      // A long line: a string, a comment, a bare word, or a key.
      const n = r.pick([1000, 100_000, 1_000_000, r.chance(0.3) ? 4_000_000 : 10_000]);
      const long = r.pick(["a", "é", "\\", "x"]).repeat(n);
      return r.pick([
        `[services.a]\ncommand = ["${long}"]\n`,
        `# ${long}\n[services.a]\ncommand = ["true"]\n`,
        `[services.a]\ncommand = "true ${long}"\n`,
        `[services.${long}]\ncommand = ["true"]\n`,
        `${long}\n`,
      ]);
    }
    case 3: {
      // Many long lines after an early syntax error: the error's line is searched for.
      const width = r.pick([100, 2000, 10_000]);
      const lines = Math.min(r.pick([100, 999, 1001, 5000]), Math.floor(MAX_FILE / width));
      const opening = r.pick(['x = """', "x = [", "x = {", "[services.a", "x = '''", "= 1"]);
      const body = Array.from({ length: lines }, (_, i) => (opening === "x = [" ? `"${"a".repeat(width)}",` : `k${i} = "${"a".repeat(width)}"`));
      return [opening, ...body].join("\n");
    }
    case 4: {
      // Duplicated tables and keys.
      const t = `[services.a]\ncommand = ["true"]\n`;
      return r.pick([t + t, `${t}command = ["x"]\n`, `${t}[services]\na = 1\n`, `[[services.a]]\ncommand = ["true"]\n${t}`, `services = 1\n${t}`]);
    }
    case 5: {
      // Every key of a service, with values of every type.
      const values = ["1", "-1", "1.5", "inf", "nan", '"x"', '""', "true", "[]", '["a", 1]', "{}", "{ tcp = 1 }", "1979-05-27", `"${"9".repeat(400)}"`];
      const keys = ["command", "shell", "env", "cwd", "user", "restart", "max_restarts", "restart_window", "critical", "oneshot", "after", "ready", "ready_timeout", "stop_signal", "stop_timeout", "signals", "pidfile", "grace", "log_format"];
      let s = r.chance(0.3) ? `[settings]\ngrace = ${r.pick(values)}\nlog_format = ${r.pick(values)}\n` : "";
      for (let n = r.between(1, 5); n > 0; n--) {
        s += `[services.${serviceName(r)}]\n`;
        for (const k of keys) if (r.chance(0.4)) s += `${k} = ${r.pick(values)}\n`;
      }
      return s;
    }
    default:
      // A binary file.
      return Buffer.from(randomBytes(r, r.pick([1, 64, 4096, 65536]))).toString("latin1");
  }
}

function generatedProcfile(r: Rng): string {
  switch (r.int(4)) {
    case 0:
      return Array.from({ length: r.pick([10, 1000, 20000]) }, (_, i) => `${r.chance(0.01) ? "dup" : `s${i}`}: sleep 1\n`).join("");
    case 1:
      return `${serviceName(r)}: ${"x".repeat(r.pick([1000, 100_000, 2_000_000]))}\n`;
    case 2:
      return Array.from({ length: r.between(1, 50) }, () => r.pick([":", "a:", ": b", "a b: c", "#x", "  a: b", "a:\tb", "a:b:c", "\r", "é: x", "a: \\", "a: 'unclosed"])).join("\n");
    default:
      return Buffer.from(randomBytes(r, r.pick([1, 100, 10_000]))).toString("latin1");
  }
}

export function configCase(r: Rng, samples: { toml: string[]; procfile: string[] }): ConfigCase {
  const files: FileSpec[] = [];
  for (let n = r.chance(0.85) ? 1 : r.between(0, 3); n > 0; n--) {
    const toml = r.chance(0.7);
    const pool = toml ? samples.toml : samples.procfile;
    let text = r.chance(0.2) ? (toml ? generatedToml(r) : generatedProcfile(r)) : r.pick(pool);
    for (let k = r.chance(0.3) ? r.between(1, 8) : 0; k > 0; k--) text = mutateLines(r, text, pool);
    // Non-UTF-8 text now and then: the same text with its accents in latin1.
    let bytes: Uint8Array = r.chance(0.03) ? latin1(text) : enc(text);
    for (let k = r.chance(0.8) ? r.between(1, 6) : 0; k > 0; k--) bytes = mutateBytes(r, bytes);
    const name = toml ? (r.chance(0.95) ? `c${files.length}.toml` : `c${files.length}.TOML`) : r.chance(0.9) ? `Procfile${files.length}` : `p${files.length}.txt`;
    // A TOML text under a Procfile's name and the other way round.
    files.push({ name: r.chance(0.05) ? name.replace(/\.toml$/i, "") : name, bytes });
  }
  const args: Uint8Array[] = [enc("--check")];
  for (const f of files) args.push(enc("-c"), enc(f.name));
  for (let n = r.chance(0.2) ? r.between(1, 3) : 0; n > 0; n--) {
    let v: Uint8Array = enc(r.pick(["a: true", "b: sleep 1", "bad name: x", ":", `${serviceName(r)}: true`, "s0: true"]));
    if (r.chance(0.3)) v = mutateBytes(r, v, false);
    args.push(enc("--service"), v);
  }
  if (files.length === 0 && args.length === 1) args.push(enc("--service"), enc("a: true"));
  if (r.chance(0.1)) args.push(enc("-v"));
  return { kind: "config", files, args };
}

export function makeCase(kind: "cli" | "config", seed: number, samples: ReturnType<typeof configSamples>): Case {
  const r = rng(seed);
  const c = kind === "cli" ? cliCase(r) : configCase(r, samples);
  for (const a of c.args) for (let i = 0; i < a.length; i++) if (a[i] === 0) a[i] = 1; // argv cannot hold NUL
  return c;
}

// ---------------------------------------------------------------- running

export interface Outcome {
  /** pidone's exit code, or null when it died of a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** The stop signal the runner sent, if pidone was still running when its time came. */
  sentSignal: number | null;
  /** Still running after the stop signal and the hang limit: SIGKILLed. */
  hung: boolean;
  /** The case could not be run at all (the fuzzer's fault, not pidone's). */
  harness?: string;
}

export interface RunContext {
  pidone: string;
  /** A directory of this worker: CLI_FILES live there, config cases write their files there. */
  dir: string;
  /** How long a case may run after its stop signal (or a config case at all) before it counts as a hang. */
  hangMs: number;
  /**
   * Send the stop signal only once pidone catches it, not while it still only blocks it
   * (start-up). Services mode can die of a SIGTERM that arrives then (known, not yet
   * fixed): the CI test waits for the handler so as not to fail on it at random.
   */
  onlyWhenCaught?: boolean;
}

/** Writes CLI_FILES into `dir` (once per worker). */
export function prepareDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(CLI_FILES)) writeFileSync(join(dir, name), Buffer.from(text, "latin1"), { mode: 0o644 });
}

/** One word for bash: $'...' with every byte that is not plain printable ASCII escaped. */
export function bashWord(bytes: Uint8Array): string {
  let s = "$'";
  for (const b of bytes) {
    if (b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c) s += String.fromCharCode(b);
    else s += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return `${s}'`;
}

/**
 * Argv of bytes: Bun.spawn takes strings and would re-encode every byte above 0x7f,
 * so bash builds the words from $'\xHH' escapes and execs pidone (same pid).
 */
export function caseScript(c: Case, pidone: string): string {
  const env = c.kind === "cli" ? c.env : [];
  const argv0 = c.kind === "cli" ? c.argv0 : null;
  const words = c.args.map(bashWord).join(" ");
  const exports = env.map(([k, v]) => `export ${k}=${bashWord(v)}; `).join("");
  const run = `exec ${argv0 ? `-a ${bashWord(argv0)} ` : ""}${bashWord(enc(pidone))} ${words}`;
  if (c.kind === "cli" && c.pid1) {
    const unshare = "exec unshare --pid --fork --mount-proc --kill-child";
    // Only bash's exec can set argv[0]: a second bash, in the namespace, for that.
    return argv0 ? `${exports}${unshare} bash -c ${bashWord(enc(run))}` : `${exports}${unshare} ${bashWord(enc(pidone))} ${words}`;
  }
  return exports + run;
}

/**
 * What to spawn: pidone itself when every word is UTF-8 and nothing needs bash, which
 * saves a process per case; else bash on caseScript (from a file past the size of one
 * argument, which the kernel caps at 128 KiB).
 */
function caseCommand(c: Case, ctx: RunContext): string[] {
  const utf8 = (b: Uint8Array) => Buffer.from(Buffer.from(b).toString("utf8")).equals(b);
  if (c.kind === "config" || (!c.pid1 && !c.argv0 && c.env.length === 0)) {
    if (c.args.every(utf8)) return [ctx.pidone, ...c.args.map((a) => Buffer.from(a).toString("utf8"))];
  }
  const script = caseScript(c, ctx.pidone);
  if (script.length < 100_000) return ["bash", "-c", script];
  const file = join(ctx.dir, "case.sh");
  writeFileSync(file, script);
  return ["bash", file];
}

/** unshare reports its child's signal death by failing to re-raise it (util-linux 2.38). */
const UNSHARE_SIGNALLED = /^unshare: sigprocmask unblock failed/m;

function exeOf(pid: number): string | null {
  try {
    return realpathSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/** The signal is blocked or caught (/proc/PID/status SigBlk, SigCgt), or only caught. */
function handles(pid: number, sig: number, caughtOnly = false): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const mask = (field: string) => BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)`, "m").exec(status)?.[1] ?? "0"}`);
    return (((caughtOnly ? 0n : mask("SigBlk")) | mask("SigCgt")) & (1n << BigInt(sig - 1))) !== 0n;
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The stop signal for what pidone was told to do: the first stop signal it catches. */
export function stopSignalFor(d: Decision): number {
  if (d.kind !== "run") return SIG.TERM;
  for (const s of d.stopSignals) if (s !== SIG.KILL && s !== SIG.STOP) return s;
  return SIG.TERM;
}

export function decisionOf(c: Case, pidone: string): Decision {
  const argv = [c.kind === "cli" && c.argv0 ? c.argv0 : enc(pidone), ...c.args];
  const env = new Map<string, string>();
  if (c.kind === "cli") for (const [k, v] of c.env) env.set(k, Buffer.from(v).toString("latin1"));
  return decide(argv, env);
}

const OUTPUT_CAP = 1 << 20;

/** Reads a stream into `into` (up to a cap); resolves at end of file. */
async function collect(stream: ReadableStream<Uint8Array>, into: Uint8Array[]): Promise<void> {
  let size = 0;
  for await (const chunk of stream) {
    if (size < OUTPUT_CAP) into.push(chunk);
    size += chunk.length;
  }
}

/** The sessions of the cases running now, for killLiveCases. */
const live = new Set<number>();

/** SIGKILLs every case still running: a fuzzer stopped midway leaves no --pause behind. */
export function killLiveCases(): void {
  for (const pid of live) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

function spawn(cmd: string[], cwd: string) {
  return Bun.spawn(cmd, {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true, // its own session: whatever pidone signals, the fuzzer is not in it
  });
}

export async function runCase(c: Case, ctx: RunContext): Promise<Outcome> {
  if (c.kind === "config") for (const f of c.files) writeFileSync(join(ctx.dir, f.name), f.bytes);
  const pidoneReal = realpathSync(ctx.pidone);
  const started = performance.now();
  let proc: ReturnType<typeof spawn>;
  try {
    proc = spawn(caseCommand(c, ctx), ctx.dir);
  } catch (e) {
    // The fuzzer's own fault (an argument the kernel refuses): reported, never fatal to the run.
    const message = `the fuzzer could not start the case: ${e instanceof Error ? e.message : String(e)}`;
    return { code: null, signal: null, stdout: "", stderr: message, ms: 0, sentSignal: null, hung: false, harness: message };
  }
  live.add(proc.pid);
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const output = Promise.all([collect(proc.stdout, out), collect(proc.stderr, err)]);
  const exited = proc.exited.then(() => true);
  const within = (ms: number) => Promise.race([exited, Bun.sleep(ms).then(() => false)]);

  let sentSignal: number | null = null;
  let hung = false;
  const signalAfter = c.kind === "cli" ? c.signalAfterMs : ctx.hangMs;
  if (!(await within(signalAfter)) && c.kind === "cli") {
    // Signal pidone itself (not bash before its exec, nor unshare), once it blocks or
    // catches the signal: between its execve and its first instruction nothing can, and a
    // signal there kills any program (tini too), which is not what is being tested.
    const sig = stopSignalFor(decisionOf(c, ctx.pidone));
    const target = async (): Promise<number | null> => {
      for (let tries = 0; tries < 500; tries++) {
        const pid = c.pid1 ? (childrenOf(proc.pid)[0] ?? -1) : proc.pid;
        if (pid > 0 && exeOf(pid) === pidoneReal && handles(pid, sig, ctx.onlyWhenCaught)) return pid;
        if (await within(10)) return null;
      }
      return null;
    };
    const pid = await target();
    if (pid !== null) {
      sentSignal = sig;
      try {
        process.kill(pid, sentSignal);
      } catch {
        // gone meanwhile
      }
    }
    if (!(await within(ctx.hangMs))) hung = true;
  } else if (c.kind === "config" && proc.exitCode === null) {
    hung = true;
  }
  if (hung) {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  await proc.exited;
  live.delete(proc.pid);
  // Whatever pidone left behind in its session (an orphan of the fixture) goes too; one
  // in a group of its own (-g, --setsid) may still hold the pipes: stop reading then.
  try {
    process.kill(-proc.pid, "SIGKILL");
  } catch {
    // nothing left
  }
  await Promise.race([output, Bun.sleep(1000)]);
  const stdout = Buffer.concat(out).toString("latin1");
  const stderr = Buffer.concat(err).toString("latin1");
  return {
    code: proc.signalCode ? null : proc.exitCode,
    signal: proc.signalCode ? String(proc.signalCode) : null,
    stdout,
    stderr,
    ms: performance.now() - started,
    sentSignal,
    hung,
  };
}

// ---------------------------------------------------------------- judging

/** What only a crash or an uncaught exception prints; none of it is pidone's own wording. */
const CRASH = [
  /Bun has crashed/i,
  /oh no:? Bun/i,
  /bun\.report/,
  /^panic[:(]/m,
  /Segmentation fault|Illegal instruction|Aborted \(core dumped\)/,
  /^\s+at .*(:\d+:\d+\)?|\[native code\]\)?)$/m, // a JavaScript stack frame
  /^\s*\d+ \| /m, // Bun's source excerpt above an uncaught error
  /^error: /m, // Bun's uncaught error line
  /internal error in /,
  /pidone failed: /,
  /Bun v\d+\.\d+\.\d+/,
  /\(node:\d+\) \w*Warning|--trace-warnings/, // the runtime's own warnings (a timer out of range...)
];

/** --check on a few MB must not take seconds (a quadratic path shows here first). */
const SLOW_CHECK_MS = 5000;

/** The stop signal reaches the child rewritten into one that stops it (-r TERM:STOP). */
function stopsTheChild(d: Decision, sent: number | null): boolean {
  if (d.kind !== "run" || sent === null) return false;
  const to = d.rewrite.get(sent);
  return to !== undefined && ([SIG.STOP, SIG.TSTP, SIG.TTIN, SIG.TTOU] as number[]).includes(to);
}

/** Exit codes pidone's own failures use: each must come with a message. */
const OWN_FAILURES = new Set([1, 2, 126, 127]);

/** Why the outcome is wrong, or null. */
export function judge(c: Case, o: Outcome, pidone: string): string | null {
  if (o.harness) return o.harness;
  if (o.hung && !(c.kind === "cli" && stopsTheChild(decisionOf(c, pidone), o.sentSignal))) {
    return `hang: still running ${o.sentSignal ? `after signal ${o.sentSignal}` : "at the limit"} (${Math.round(o.ms)} ms)`;
  }
  if (o.hung) return null; // it waits for a child it was told to stop (-r TERM:STOP), as tini does
  if (o.signal) return `pidone died of ${o.signal}`;
  if (c.kind === "cli" && c.pid1 && UNSHARE_SIGNALLED.test(o.stderr)) return "pidone (PID 1) died of a signal";
  const text = `${o.stdout}\n${o.stderr}`;
  for (const re of CRASH) if (re.test(text)) return `crash text ${re}: ${excerpt(text, re)}`;
  const code = o.code!;
  const d = decisionOf(c, pidone);
  if (c.kind === "config") {
    if (o.ms > SLOW_CHECK_MS) return `slow: --check took ${Math.round(o.ms)} ms`;
    if (d.kind !== "run") return o.stderr.trim() ? null : `usage error without a message (exit ${code})`;
    if (code === 0) return /configuration OK/.test(o.stdout) ? null : "exit 0 without \"configuration OK\"";
    if (code === 2) return o.stderr.trim() ? null : "exit 2 without a diagnostic";
    return `--check ended with exit ${code}`;
  }
  const allowed = new Set<number>([0, 1, 2, 126, 127, 143, ...FIXTURE_CODES]);
  if (o.sentSignal !== null) for (let s = 1; s <= 64; s++) allowed.add(128 + s);
  if (!allowed.has(code)) return `undefined exit code ${code}`;
  if (d.kind === "usage-error" && code === 1 && !o.stderr.trim()) return "usage error without a message";
  if (d.kind === "run" && d.verbosity >= 1 && OWN_FAILURES.has(code) && !o.stderr.trim()) {
    return `exit ${code} without a message`;
  }
  return null;
}

function excerpt(text: string, re: RegExp): string {
  const m = re.exec(text);
  const at = m ? m.index : 0;
  return JSON.stringify(text.slice(Math.max(0, at - 120), at + 200));
}

/** A case as text: the bash line that replays it by hand, and its files. */
export function describeCase(c: Case, pidone: string): string {
  const lines = [`kind: ${c.kind}`];
  if (c.kind === "cli") lines.push(`pid1: ${c.pid1}, stop signal after ${c.signalAfterMs} ms`);
  else for (const f of c.files) lines.push(`file ${f.name}: ${f.bytes.length} bytes, starts ${JSON.stringify(Buffer.from(f.bytes.slice(0, 160)).toString("latin1"))}`);
  const script = caseScript(c, pidone);
  lines.push(`bash -c ${bashWord(enc(script)).length > 4000 ? "(script too long to show)" : bashWord(enc(script))}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------- a run of many cases

export interface CaseResult {
  index: number;
  kind: "cli" | "config";
  case: Case;
  outcome: Outcome;
  failure: string | null;
}

export interface PoolOptions {
  seed: number;
  /** The case indexes to run. */
  indexes: Iterable<number>;
  kinds: readonly ("cli" | "config")[];
  jobs: number;
  pidone: string;
  /** Each worker gets `${workDir}/wN`. */
  workDir: string;
  hangMs: number;
  onlyWhenCaught?: boolean;
  onResult(r: CaseResult): void;
}

/** Case `index` is of kind kinds[index % kinds.length]: a replay needs only (seed, index). */
export function kindOf(index: number, kinds: readonly ("cli" | "config")[]): "cli" | "config" {
  return kinds[index % kinds.length]!;
}

/** Runs the cases with `jobs` workers, each in its own directory. */
export async function runPool(o: PoolOptions): Promise<void> {
  const samples = configSamples();
  const it = o.indexes[Symbol.iterator]();
  const worker = async (w: number) => {
    const dir = join(o.workDir, `w${w}`);
    prepareDir(dir);
    const ctx: RunContext = { pidone: o.pidone, dir, hangMs: o.hangMs, onlyWhenCaught: o.onlyWhenCaught };
    for (let next = it.next(); !next.done; next = it.next()) {
      const index = next.value;
      const kind = kindOf(index, o.kinds);
      const c = makeCase(kind, caseSeed(o.seed, index), samples);
      const outcome = await runCase(c, ctx);
      o.onResult({ index, kind, case: c, outcome, failure: judge(c, outcome, o.pidone) });
    }
  };
  await Promise.all(Array.from({ length: o.jobs }, (_, w) => worker(w)));
}

/**
 * A hang (or a slow --check) under the machine's load may be the load: each such case is
 * run again alone. Returns the failures that stand, and those that did not happen again.
 */
export async function confirmHangs(
  failed: readonly CaseResult[],
  o: Omit<PoolOptions, "indexes" | "jobs" | "onResult">,
): Promise<{ failures: CaseResult[]; unconfirmed: CaseResult[] }> {
  const failures: CaseResult[] = [];
  const unconfirmed: CaseResult[] = [];
  for (const f of failed) {
    if (!/^(hang|slow)/.test(f.failure ?? "")) {
      failures.push(f);
      continue;
    }
    let again: CaseResult | null = null;
    await runPool({ ...o, indexes: [f.index], jobs: 1, onResult: (r) => (again = r) });
    if (again !== null && (again as CaseResult).failure === null) unconfirmed.push(f);
    else failures.push(f);
  }
  return { failures, unconfirmed };
}
