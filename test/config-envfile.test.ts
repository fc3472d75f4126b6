// env_file's parser, against Docker Compose's env_file rules (its documentation's
// examples and its parser's behaviour), and where pidone refuses what Compose would
// expand, with the line of each problem.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check, envFileRef, parseEnvFile, readEnvFile, readEnvFiles, type PlanOptions } from "../src/config/index.ts";

function vars(text: string): Record<string, string> {
  const r = parseEnvFile(text);
  if (!r.ok) throw new Error(`line ${r.line}: ${r.message}`);
  return Object.fromEntries(r.vars);
}
function problem(text: string): string {
  const r = parseEnvFile(text);
  return r.ok ? "parsed" : `${r.line}: ${r.message}`;
}

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "pidone-envfile-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("Compose's env_file syntax", () => {
  test("NAME=VALUE lines, # comments, blank lines, export, blanks around =", () => {
    expect(vars("# a comment\n\nA=1\n  # indented comment\nexport B=2\nexport\tC=3\nD = 4\n  E=5\nF=\n")).toEqual({
      A: "1", B: "2", C: "3", D: "4", E: "5", F: "",
    });
  });

  test("names: letters, digits and _ . - [ ]; export alone is a name", () => {
    expect(vars("a.b-c_d[0]=x\nexport=y\n9LIVES=z\n")).toEqual({ "a.b-c_d[0]": "x", export: "y", "9LIVES": "z" });
  });

  test("unquoted: to the end of the line, less a comment after a blank, trailing blanks trimmed", () => {
    expect(vars("A=VAL # comment\nB=VAL# not a comment\nC=a b  c   \nD=#x\nE=it's \"fine\"\nF=back\\slash \\n\nG=`date`\n")).toEqual({
      A: "VAL", B: "VAL# not a comment", C: "a b  c", D: "#x", E: `it's "fine"`, F: "back\\slash \\n", G: "`date`",
    });
  });

  test("single quotes: every character as written, newlines, $ and backslashes too", () => {
    expect(vars("A='$OTHER'\nB='${OTHER}'\nC='some\\tvalue'\nD='a # b' # comment\nE='line 1\nline 2'\nF=''\n")).toEqual({
      A: "$OTHER", B: "${OTHER}", C: "some\\tvalue", D: "a # b", E: "line 1\nline 2", F: "",
    });
  });

  test('double quotes: \\n \\r \\t \\" \\\\ \\$ (and \\a \\b \\f \\v) escapes; others kept as written', () => {
    expect(vars('A="VAL # not a comment"\nB="{\\"hello\\": \\"json\\"}"\nC="some\\tvalue"\nD="a\\nb\\\\c"\nE="\\$HOME"\nF="x\\qy"\nG="cr\\r"\n')).toEqual({
      A: "VAL # not a comment", B: '{"hello": "json"}', C: "some\tvalue", D: "a\nb\\c", E: "$HOME", F: "x\\qy", G: "cr\r",
    });
    expect(vars('A="\\a\\b\\f\\v"\n')).toEqual({ A: "\x07\b\f\v" });
  });

  test("double quotes may span lines; a comment may follow the closing quote", () => {
    expect(vars('KEY="-----BEGIN-----\nabc\n-----END-----" # a key\nNEXT=1\n')).toEqual({ KEY: "-----BEGIN-----\nabc\n-----END-----", NEXT: "1" });
  });

  test("$$ is one literal $, as in Compose", () => {
    expect(vars('A=pa$$word\nB="$$5"\n')).toEqual({ A: "pa$word", B: "$5" });
  });

  test("CRLF line ends, a byte order mark, a last line without newline, the last of a name wins", () => {
    expect(vars("\uFEFFA=1\r\nB='x'\r\nA=2")).toEqual({ A: "2", B: "x" });
  });
});

describe("every problem, with its line", () => {
  const cases: [string, string][] = [
    ["A=1\nB='open\nC=3\n", "2: unterminated single quote in the value of B"],
    ['A=1\n\nB="open\n', "3: unterminated double quote in the value of B"],
    ["A='x' y\n", `1: unexpected "y" after the closing quote`],
    ['A="multi\nline" y\n', `2: unexpected "y" after the closing quote`],
    ["A=1\nJUST_A_NAME\n", `2: expected NAME=VALUE, got "JUST_A_NAME"`],
    ["MY VAR=1\n", `1: expected NAME=VALUE, got "MY VAR=1"`],
    ["KEY: value\n", `1: expected NAME=VALUE, got "KEY: value"`],
    ["A:B=1\n", `1: unexpected character ":" in the variable name "A:B"`],
    ["=value\n", `1: a variable name is missing before "="`],
    ["A=$HOME\n", `1: "$HOME" would be expanded by Docker Compose; pidone does not expand variables: write the value in single quotes, or \\$ in double quotes, or $$ for one literal $`],
    ['\nA="${HOME:-x}/bin"\n', `2: "\${HOME:-x}" would be expanded by Docker Compose; pidone does not expand variables: write the value in single quotes, or \\$ in double quotes, or $$ for one literal $`],
    ["A=cost$\n", `1: "$" would be expanded by Docker Compose; pidone does not expand variables: write the value in single quotes, or \\$ in double quotes, or $$ for one literal $`],
    ['A="\\\\$X"\n', `1: "$X" would be expanded by Docker Compose; pidone does not expand variables: write the value in single quotes, or \\$ in double quotes, or $$ for one literal $`],
    ["A=nul\0byte\n", "1: the value of A contains a NUL character, which no environment can hold"],
  ];
  test.each(cases)("%j → %s", (text, expected) => {
    expect(problem(text)).toBe(expected);
  });
});

describe("reading files", () => {
  test("a missing file: nothing when optional (-), a failure marked missing when required", () => {
    const path = join(tempDir(), "nope.env");
    expect(envFileRef(`-${path}`)).toEqual({ path, optional: true });
    expect(readEnvFile({ path, optional: true })).toEqual({ ok: true, vars: new Map() });
    expect(readEnvFile({ path, optional: false })).toEqual({ ok: false, message: `${path}: cannot read env_file: no such file`, missing: true });
  });

  test("a syntax error is FILE:LINE: message; a directory, non-UTF-8 text and a huge file are refused", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.env"), "A=1\nB='x\n");
    writeFileSync(join(dir, "latin1.env"), Buffer.from([0x41, 0x3d, 0xe9, 0x0a]));
    writeFileSync(join(dir, "huge.env"), Buffer.alloc(1024 * 1024 + 1, 0x0a));
    expect(readEnvFile({ path: join(dir, "bad.env"), optional: true })).toEqual({ ok: false, message: `${dir}/bad.env:2: unterminated single quote in the value of B` });
    expect(readEnvFile({ path: dir, optional: false })).toEqual({ ok: false, message: `${dir}: cannot read env_file: is a directory` });
    // A device or a FIFO would block the read, or never end it.
    expect(readEnvFile({ path: "/dev/zero", optional: false })).toEqual({ ok: false, message: "/dev/zero: cannot read env_file: not a regular file" });
    expect(readEnvFile({ path: join(dir, "latin1.env"), optional: false })).toEqual({ ok: false, message: `${dir}/latin1.env: not valid UTF-8 text` });
    expect(readEnvFile({ path: join(dir, "huge.env"), optional: false })).toEqual({
      ok: false,
      message: `${dir}/huge.env: 1048577 bytes, more than the 1 MiB an env_file may have`,
    });
  });

  test("several files: later ones win, a __proto__ variable is a variable", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "one.env"), "A=1\nB=1\n__proto__=p\n");
    writeFileSync(join(dir, "two.env"), "B=2\n");
    const r = readEnvFiles([{ path: join(dir, "one.env"), optional: false }, { path: join(dir, "two.env"), optional: false }]);
    expect(r.ok && Object.entries(r.vars)).toEqual([["A", "1"], ["B", "2"], ["__proto__", "p"]]);
  });
});

describe("the configuration: env_file keys and --check", () => {
  const MACHINE: PlanOptions = { env: { PATH: "/usr/bin:/bin" }, cwd: "/", euid: 0, probe: () => "executable" };

  test("[settings] env_file comes first in every service's list; a string is a list of one", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "all.env"), "A=1\n");
    writeFileSync(join(dir, "web.env"), "B=2\n");
    const file = join(dir, "app.toml");
    writeFileSync(file, `[settings]\nenv_file = "${dir}/all.env"\n[services.web]\ncommand = "x"\nenv_file = ["${dir}/web.env", "-${dir}/local.env"]\n[services.db]\ncommand = "y"\n`);
    const r = check([file], ["flag: z"], MACHINE);
    expect(r).toEqual({ ok: true, diagnostics: [], warnings: [] });
  });

  test("--check: syntax errors are problems (exit 2), a missing required file only a warning", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.env"), "OK=1\nA=$B\n");
    const file = join(dir, "app.toml");
    writeFileSync(file, `[services.web]\ncommand = "x"\nenv_file = ["${dir}/bad.env", "${dir}/absent.env", "-${dir}/optional.env"]\n`);
    expect(check([file], [], MACHINE)).toEqual({
      ok: false,
      diagnostics: [`${dir}/bad.env:2: "$B" would be expanded by Docker Compose; pidone does not expand variables: write the value in single quotes, or \\$ in double quotes, or $$ for one literal $`],
      warnings: [`${dir}/absent.env: warning: no such env_file (if it is not there at run time either, the services that need it cannot start)`],
    });
    writeFileSync(join(dir, "bad.env"), "OK=1\nA='$B'\n");
    expect(check([file], [], MACHINE).ok).toBe(true);
  });

  test("two files setting env_file, timestamps or log_level is a conflict, as for every setting", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "one.toml"), `[settings]\nenv_file = "/a.env"\ntimestamps = true\nlog_level = "warn"\n[services.a]\ncommand = "x"\n`);
    writeFileSync(join(dir, "two.toml"), `[settings]\nenv_file = ["-/b.env"]\ntimestamps = false\nlog_level = "info"\n[services.b]\ncommand = "x"\n`);
    expect(check([join(dir, "one.toml"), join(dir, "two.toml")], [], MACHINE).diagnostics).toEqual([
      `${dir}/two.toml:2: settings.env_file: already set at ${dir}/one.toml:2`,
      `${dir}/two.toml:3: settings.timestamps: already set at ${dir}/one.toml:3`,
      `${dir}/two.toml:4: settings.log_level: already set at ${dir}/one.toml:4`,
    ]);
  });

  test("env_file values: absolute paths only, strings only, each problem at its line", () => {
    const file = join(tempDir(), "app.toml");
    writeFileSync(file, `[settings]\nenv_file = 3\n[services.web]\ncommand = "x"\nenv_file = [\n  "rel.env",\n  "-",\n  7,\n]\n[services.db]\ncommand = "x"\nenvfile = "/a.env"\n`);
    expect(check([file], [], MACHINE).diagnostics).toEqual([
      `${file}:2: settings.env_file: expected a path or an array of paths ("-/path" for an optional file), got the integer 3`,
      `${file}:6: services.web.env_file[0]: must be an absolute path ("-/path" for an optional file), got "rel.env"`,
      `${file}:7: services.web.env_file[1]: must be an absolute path ("-/path" for an optional file), got "-"`,
      `${file}:8: services.web.env_file[2]: expected a path, got the integer 7`,
      `${file}:12: services.db.envfile: unknown key "envfile" (did you mean "env_file"?)`,
    ]);
  });
});
