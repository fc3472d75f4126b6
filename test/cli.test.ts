import { describe, expect, test } from "bun:test";
import { parseGrammar } from "../src/cli/grammar.ts";
import { atoi, decide, parseExitCode } from "../src/cli/options.ts";

const b = (...a: string[]) => a.map((s) => new Uint8Array(Buffer.from(s)));
const noEnv = new Map<string, string>();

describe("option grammar", () => {
  test("stops at the first operand, so the child's flags stay the child's", () => {
    const g = parseGrammar(["pidone", "-v", "sh", "-c", "exit 3"]);
    expect(g).toEqual({ ok: true, options: [{ name: "verbose" }], operandIndex: 2 });
  });
  test("-- ends options", () => {
    const g = parseGrammar(["pidone", "--", "-v"]);
    expect(g).toEqual({ ok: true, options: [], operandIndex: 2 });
  });
  test("short options cluster and take attached values", () => {
    const g = parseGrammar(["pidone", "-vvv", "-e143", "-pSIGKILL", "-gse", "5", "x"]);
    expect(g.ok && g.options).toEqual([
      { name: "verbose" }, { name: "verbose" }, { name: "verbose" },
      { name: "expect-exit", value: "143" },
      { name: "pdeathsig", value: "SIGKILL" },
      { name: "process-group" }, { name: "subreaper" }, { name: "expect-exit", value: "5" },
    ]);
    expect(g.ok && g.operandIndex).toBe(6);
  });
  test("long options take =value or the next word, and no abbreviations", () => {
    expect(parseGrammar(["p", "--expect-exit=3", "--pdeathsig", "SIGTERM", "x"]).ok).toBe(true);
    expect(parseGrammar(["p", "--vers"])).toEqual({ ok: false, message: "p: unrecognized option '--vers'" });
    expect(parseGrammar(["p", "--version=1"])).toEqual({ ok: false, message: "p: option '--version' doesn't allow an argument" });
  });
  test("glibc getopt's messages for unknown options and missing values", () => {
    expect(parseGrammar(["pidone", "-z"])).toEqual({ ok: false, message: "pidone: invalid option -- 'z'" });
    expect(parseGrammar(["pidone", "-e"])).toEqual({ ok: false, message: "pidone: option requires an argument -- 'e'" });
    expect(parseGrammar(["pidone", "--pdeathsig"])).toEqual({ ok: false, message: "pidone: option '--pdeathsig' requires an argument" });
  });
  test("a value that looks like an option is still the value", () => {
    const g = parseGrammar(["pidone", "-e", "-1", "x"]);
    expect(g.ok && g.options).toEqual([{ name: "expect-exit", value: "-1" }]);
  });
});

describe("decisions", () => {
  test("no PROGRAM is a usage error", () => {
    expect(decide(b("pidone", "-v"), noEnv).kind).toBe("usage-error");
  });
  test("-h and --version win wherever they stand among the options", () => {
    expect(decide(b("pidone", "-v", "-h", "x"), noEnv).kind).toBe("help");
    expect(decide(b("pidone", "--version"), noEnv).kind).toBe("version");
    expect(decide(b("pidone", "-l"), noEnv).kind).toBe("license");
  });
  test("-h after PROGRAM belongs to the child", () => {
    const d = decide(b("pidone", "ls", "-h"), noEnv);
    expect(d.kind).toBe("run");
  });
  test("-p takes tini's SIGxxx names only", () => {
    expect(decide(b("pidone", "-p", "SIGKILL", "x"), noEnv)).toMatchObject({ kind: "run", pdeathsig: 9 });
    expect(decide(b("pidone", "-p", "KILL", "x"), noEnv)).toEqual({ kind: "usage-error", fatal: "Not a valid option for -p: KILL" });
  });
  test("TINI_* variables: set (even empty) means on; TINI_VERBOSITY overrides -v", () => {
    const env = new Map([["TINI_SUBREAPER", ""], ["TINI_KILL_PROCESS_GROUP", ""], ["TINI_VERBOSITY", "3"]]);
    expect(decide(b("pidone", "-v", "x"), env)).toMatchObject({ subreaper: true, processGroup: true, verbosity: 3 });
    expect(decide(b("pidone", "-vv", "x"), noEnv)).toMatchObject({ verbosity: 3 });
  });
  test("durations past setTimeout's range are refused, not fired at once (fuzzer)", () => {
    const tooLong = "Not a valid option for --grace: 99999999999 (at most 2147483 seconds)";
    expect(decide(b("pidone", "--grace", "99999999999", "x"), noEnv)).toEqual({ kind: "usage-error", fatal: tooLong });
    expect(decide(b("pidone", "--grace", "2147483", "x"), noEnv)).toMatchObject({ kind: "run", graceSeconds: 2147483 });
    expect(decide(b("pidone", "--pidfile", "f", "--pidfile-timeout", "3000000", "x"), noEnv)).toEqual({
      kind: "usage-error",
      fatal: "Not a valid option for --pidfile-timeout: 3000000 (at most 2147483 seconds)",
    });
    expect(decide(b("pidone", "x"), new Map([["PIDONE_GRACE", "1e3"]]))).toEqual({
      kind: "usage-error",
      fatal: "Not a valid value for PIDONE_GRACE: 1e3",
    });
  });
  test("--stop-signals refuses KILL and STOP, which pidone cannot catch (fuzzer: --pause --stop-signals STOP never stopped)", () => {
    expect(decide(b("pidone", "-P", "--stop-signals", "STOP"), noEnv)).toEqual({
      kind: "usage-error",
      fatal: "Not a valid signal for --stop-signals: STOP (it cannot be caught)",
    });
    expect(decide(b("pidone", "--stop-signals", "TERM,KILL", "x"), noEnv)).toMatchObject({ kind: "usage-error" });
    expect(decide(b("pidone", "--stop-signals", "TERM,QUIT", "x"), noEnv)).toMatchObject({ kind: "run", stopSignals: new Set([15, 3]) });
  });
  test("PROGRAM bytes pass through untouched", () => {
    const bad = new Uint8Array([0x66, 0xff, 0xfe]);
    const d = decide([b("pidone")[0]!, bad], noEnv);
    expect(d.kind === "run" && d.program[0]).toEqual(bad);
  });
});

describe("C number parsing", () => {
  test("-e accepts what strtol consumes whole, 0..255", () => {
    expect(parseExitCode("0")).toBe(0);
    expect(parseExitCode("255")).toBe(255);
    expect(parseExitCode(" 7")).toBe(7);
    expect(parseExitCode("+7")).toBe(7);
    expect(parseExitCode("")).toBe(0);
    expect(parseExitCode("256")).toBeNull();
    expect(parseExitCode("-1")).toBeNull();
    expect(parseExitCode("7x")).toBeNull();
    expect(parseExitCode("x")).toBeNull();
  });
  test("atoi reads a leading number and ignores the rest", () => {
    expect(atoi("3")).toBe(3);
    expect(atoi(" 2abc")).toBe(2);
    expect(atoi("abc")).toBe(0);
  });
});
