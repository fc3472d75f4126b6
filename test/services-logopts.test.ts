// Services mode's log options for real: --log-format / PIDONE_LOG_FORMAT / log_format,
// --log-timestamps / timestamps, and -q / log_level / -v / TINI_VERBOSITY on pidone's
// own event lines (never on the services' lines).
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, linesOf, run, tempDir } from "./helpers.ts";
import { PrefixFormatter, prefixBytes } from "../src/services/output-format.ts";

function config(text: string): string {
  const file = join(tempDir(), "services.toml");
  writeFileSync(file, text);
  return file;
}

/** Two services: `ok` prints and exits 0 (not critical), `bad` prints and exits 3 (critical). */
const TWO = `
[services.ok]
command = ["sh", "-c", "echo fine"]
critical = false
[services.bad]
command = ["sh", "-c", "sleep 0.2; echo broken >&2; exit 3"]
after = ["ok"]
`;

const events = (out: string) => out.split("\n").filter((l) => /^(\S+ )?pidone \| /.test(l)).map((l) => l.replace(/^.*pidone \| /, ""));

describe("--log-format, PIDONE_LOG_FORMAT and log_format", () => {
  const prefixFile = () => config(`[settings]\nlog_format = "prefix"\n[services.a]\ncommand = ["echo", "hello"]\n`);
  const isJson = (out: string) => out.trim().split("\n").every((l) => typeof JSON.parse(l).ts === "string");

  test("the flag beats the variable, which beats the file", async () => {
    const file = prefixFile();
    const byFile = await run([...AS_PID1, PIDONE, "-c", file]);
    expect(linesOf(byFile.stdout, "a")).toEqual(["hello"]);
    const byEnv = await run([...AS_PID1, PIDONE, "-c", file], { env: { PIDONE_LOG_FORMAT: "json" } });
    expect(isJson(byEnv.stdout)).toBe(true);
    expect(byEnv.stdout).toContain(`"line":"hello"`);
    const byFlag = await run([...AS_PID1, PIDONE, "--log-format", "raw", "-c", file], { env: { PIDONE_LOG_FORMAT: "json" } });
    expect(byFlag.stdout).toBe("hello\n");
    expect(byFlag.stderr).toContain("[pidone] a: started");
  });

  test("--service users get JSON without a TOML file", async () => {
    const r = await run([...AS_PID1, PIDONE, "--log-format=json", "--service", "a: echo hi"]);
    expect(r.code).toBe(0);
    expect(isJson(r.stdout)).toBe(true);
    expect(r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((o) => o.stream === "stdout")).toMatchObject({ service: "a", line: "hi" });
  });

  test("bad values and the flags outside services mode are usage errors (exit 1)", async () => {
    const flag = await run([PIDONE, "--log-format", "text", "--service", "a: true"]);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain("Not a valid option for --log-format: text (prefix, json or raw)");
    const variable = await run([PIDONE, "--service", "a: true"], { env: { PIDONE_LOG_FORMAT: "yaml" } });
    expect(variable.code).toBe(1);
    expect(variable.stderr).toContain("Not a valid value for PIDONE_LOG_FORMAT: yaml (prefix, json or raw)");
    expect((await run([PIDONE, "--log-format", "json", "--", "true"])).stderr).toContain("--log-format needs -c FILE or --service");
    expect((await run([PIDONE, "--log-timestamps", "--", "true"])).stderr).toContain("--log-timestamps needs -c FILE or --service");
    // In tini's mode the variable means nothing, whatever it says.
    expect(await run([PIDONE, "-s", "--", "echo", "x"], { env: { PIDONE_LOG_FORMAT: "yaml" } })).toEqual({ code: 0, stdout: "x\n", stderr: "" });
  });
});

describe("--log-timestamps and [settings] timestamps", () => {
  const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

  test("the prefix formatter: each chunk's lines carry the time it was stamped with, in the fast loop and line by line", () => {
    const f = new PrefixFormatter(prefixBytes("web", 6, null), true);
    const out = { buf: Buffer.alloc(1 << 16), len: 0, room(n: number) { if (this.buf.length - this.len < n) throw new Error("room"); } };
    // Enough short lines for the word-at-a-time loop, then a long one, then a piece.
    const block = Buffer.from(Array.from({ length: 40 }, (_, i) => `line ${i}\n`).join("") + `${"x".repeat(300)}\n`);
    const t1 = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    const t2 = Date.UTC(2027, 11, 31, 23, 59, 59, 999);
    f.stamp(t1);
    f.lines(out, block, 0, block.length);
    f.stamp(t2);
    f.lines(out, block, 0, block.length);
    f.line(out, Buffer.from("piece"), 0, 5, true);
    const expected = (ts: string) => Array.from({ length: 40 }, (_, i) => `${ts} web    | line ${i}\n`).join("") + `${ts} web    | ${"x".repeat(300)}\n`;
    const a = "2026-01-02T03:04:05.006Z";
    const b = "2027-12-31T23:59:59.999Z";
    expect(out.buf.toString("utf8", 0, out.len)).toBe(`${expected(a)}${expected(b)}${b} web    | piece \u2026\n`);
  });

  test("every prefixed line, a service's and pidone's, starts with RFC 3339 UTC time with milliseconds", async () => {
    const before = Date.now();
    const r = await run([...AS_PID1, PIDONE, "--log-timestamps", "--service", "a: echo out; echo err >&2"]);
    const after = Date.now();
    const lines = [...r.stdout.split("\n"), ...r.stderr.split("\n")].filter(Boolean);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const l of lines) {
      expect(l).toMatch(STAMP);
      const t = Date.parse(l.slice(0, 24));
      expect(t).toBeGreaterThanOrEqual(before - 1000);
      expect(t).toBeLessThanOrEqual(after + 1000);
    }
    expect(lines.map((l) => l.slice(25))).toContain("a      | out");
    expect(lines.map((l) => l.slice(25))).toContain("a      | err");
    expect(lines.map((l) => l.slice(25))).toContain("pidone | a: exited (status 0)");
  });

  test("the file's timestamps = true does the same; a long line's pieces each get the time", async () => {
    const file = config(`[settings]\ntimestamps = true\n[services.a]\ncommand = ["sh", "-c", "head -c 70000 /dev/zero | tr '\\\\0' x; echo"]\n`);
    const r = await run([...AS_PID1, PIDONE, "-c", file]);
    const lines = r.stdout.split("\n").filter(Boolean);
    for (const l of lines) expect(l).toMatch(STAMP);
    expect(lines.filter((l) => l.includes("a      | x")).length).toBe(2);
  });

  test("JSON lines carry ts with or without it, and are otherwise the same", async () => {
    const r = await run([...AS_PID1, PIDONE, "--log-format", "json", "--log-timestamps", "--service", "a: echo hi"]);
    const objs = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(objs.length).toBeGreaterThanOrEqual(3);
    for (const o of objs) expect(o.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Object.keys(objs.find((o) => o.stream === "stdout"))).toEqual(["ts", "service", "stream", "line"]);
  });

  test("raw: the services' lines stay raw, pidone's event lines get the time", async () => {
    const r = await run([...AS_PID1, PIDONE, "--log-format", "raw", "--log-timestamps", "--service", "a: echo hi"]);
    expect(r.stdout).toBe("hi\n");
    for (const l of r.stderr.split("\n").filter(Boolean)) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[pidone\] /);
  });
});

describe("-q, log_level, -v and TINI_VERBOSITY on pidone's own event lines", () => {
  const ALL = ["ok: started (pid N)", "ok: ready", "ok: exited (status 0)", "bad: started (pid N)", "bad: ready", "bad: exited (status 3)", "stopping: bad ended"];
  const WARNINGS = ["bad: exited (status 3)"];
  const norm = (out: string) => events(out).map((e) => e.replace(/pid \d+/, "pid N")).sort();

  async function eventsWith(args: string[], env: Record<string, string> = {}, settings = "") {
    const file = config(`${settings}${TWO}`);
    const r = await run([...AS_PID1, PIDONE, ...args, "-c", file], { env });
    expect(r.code).toBe(3);
    // Services' lines are never affected.
    expect(linesOf(r.stdout, "ok")).toEqual(["fine"]);
    expect(linesOf(r.stderr, "bad")).toEqual(["broken"]);
    return norm(r.stdout);
  }

  test("by default every event; -q and log_level = \"warn\": warnings only; log_level = \"error\": none", async () => {
    expect(await eventsWith([])).toEqual([...ALL].sort());
    expect(await eventsWith(["-q"])).toEqual(WARNINGS);
    expect(await eventsWith(["--quiet"])).toEqual(WARNINGS);
    expect(await eventsWith([], {}, `[settings]\nlog_level = "warn"\n`)).toEqual(WARNINGS);
    expect(await eventsWith([], {}, `[settings]\nlog_level = "error"\n`)).toEqual([]);
    expect(await eventsWith([], {}, `[settings]\nlog_level = "info"\n`)).toEqual([...ALL].sort());
  });

  test("the command line beats the file (the last of -v and -q wins); TINI_VERBOSITY beats both, as in tini", async () => {
    expect(await eventsWith(["-v"], {}, `[settings]\nlog_level = "error"\n`)).toEqual([...ALL].sort());
    expect(await eventsWith(["-q", "-v"])).toEqual([...ALL].sort());
    expect(await eventsWith(["-v", "-q"])).toEqual(WARNINGS);
    expect(await eventsWith(["-q"], { TINI_VERBOSITY: "2" })).toEqual([...ALL].sort());
    expect(await eventsWith([], { TINI_VERBOSITY: "0" }, `[settings]\nlog_level = "info"\n`)).toEqual([]);
  });

  test("an exit the stop asked for is information, not a warning", async () => {
    const r = await run([...AS_PID1, PIDONE, "-q", "--service", "a: exec sleep 100", "--service", "b: sleep 0.3; exit 5"]);
    expect(r.code).toBe(5);
    expect(events(r.stdout)).toEqual(["b: exited (status 5)"]);
  });

  test("raw format: the same filter on stderr", async () => {
    const file = config(`[settings]\nlog_format = "raw"\n${TWO}`);
    const r = await run([...AS_PID1, PIDONE, "-q", "-c", file]);
    expect(r.stdout).toBe("fine\n");
    expect(r.stderr).toBe("broken\n[pidone] bad: exited (status 3)\n");
  });

  test("a start that fails is a warning; log_level is checked like every key", async () => {
    const r = await run([...AS_PID1, PIDONE, "-q", "--service", "a: exit 0", "--service", "b: exit 0"]);
    expect(events(r.stdout)).toEqual([]);
    const file = config(`[settings]\nlog_level = "verbose"\ntimestamps = "yes"\nloglevel = "warn"\n[services.a]\ncommand = ["true"]\n`);
    const c = await run([PIDONE, "--check", "-c", file]);
    expect(c.code).toBe(2);
    expect(c.stderr.split("\n").filter(Boolean)).toEqual([
      `${file}:2: settings.log_level: expected one of "error", "warn", "info", "debug", "trace", got the string "verbose"`,
      `${file}:3: settings.timestamps: expected true or false, got the string "yes"`,
      `${file}:4: settings.loglevel: unknown key "loglevel" (did you mean "log_level"?)`,
    ]);
  });
});
