import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSplitError, quoteCommand, splitCommand } from "../src/config/shellwords.ts";

const split = (text: string) => {
  const r = splitCommand(text);
  if (!r.ok) throw new Error(`unexpected split error: ${r.problem} at ${r.at}`);
  return r.argv;
};

/** An empty directory, so that no unquoted glob in the cases can match a file. */
const EMPTY_DIR = mkdtempSync(join(tmpdir(), "pidone-split-"));
afterAll(() => rmSync(EMPTY_DIR, { recursive: true, force: true }));

/** What /bin/sh itself makes of the same words (printf prints each argument NUL-terminated). */
function shellSplit(text: string): string[] {
  const p = Bun.spawnSync(["/bin/sh", "-c", `printf '%s\\0' ${text}`], { env: {}, cwd: EMPTY_DIR });
  const out = p.stdout.toString();
  return out === "" ? [] : out.slice(0, -1).split("\0");
}

const AGREES_WITH_SH: string[] = [
  "a b  c",
  "\ta\t b ",
  "'single $HOME \\n \" quoted'",
  '"double \\" \\\\ \\$ \\` kept: \\n \\a \\ "',
  `a'b'"c"d`,
  "x '' \"\" y",
  "a\\ b \\'c\\' \\\\",
  "a\\\nb",
  "a \\\n b",
  '"multi\\\nline"',
  "'keeps\nnewline' z",
  "-c 'listen_addresses=127.0.0.1' --opt=\"a b\"",
  "a$ $ cost$",
  "nginx -g 'daemon off;'",
  "weird!chars~ @%^*?[x] {a,b}",
  "a#b c#",
  "'#' \\#x",
];

describe("splitCommand: POSIX quoting without expansion", () => {
  test.each(AGREES_WITH_SH)("splits %j exactly as /bin/sh does", (text) => {
    expect(split(text)).toEqual(shellSplit(text));
  });

  test("words, quotes and escapes", () => {
    expect(split("/usr/sbin/sshd -D -e")).toEqual(["/usr/sbin/sshd", "-D", "-e"]);
    expect(split(`echo 'it''s' "a \\"b\\""`)).toEqual(["echo", "its", 'a "b"']);
    expect(split(`"\\x\\n"`)).toEqual(["\\x\\n"]);
    expect(split(`'\\'`)).toEqual(["\\"]);
    expect(split(`a "" ''`)).toEqual(["a", "", ""]);
    expect(split("\\ ")).toEqual([" "]);
  });

  test("only whitespace gives no words", () => {
    expect(split("")).toEqual([]);
    expect(split(" \t\n ")).toEqual([]);
    expect(split("\\\n")).toEqual([]);
  });

  test("newlines before the first and after the last word are only spacing", () => {
    expect(split("\n  cmd arg\n\n")).toEqual(["cmd", "arg"]);
  });

  test("a backslash-newline continues the command across lines", () => {
    expect(split("cmd \\\n  --flag \\\n  value")).toEqual(["cmd", "--flag", "value"]);
  });

  test("quoted shell syntax is plain text", () => {
    expect(split(`sh -c 'echo $HOME | wc -l; ls > /dev/null & \`id\`'`)).toEqual([
      "sh", "-c", "echo $HOME | wc -l; ls > /dev/null & `id`",
    ]);
    expect(split(`"a|b;c&d<e>f(g)" "\\$HOME" "#"`)).toEqual(["a|b;c&d<e>f(g)", "$HOME", "#"]);
  });
});

describe("splitCommand refuses what a shell would do differently", () => {
  const refused: [string, string, number][] = [
    ["echo 'open", "unterminated single quote", 6],
    ['echo "open', "unterminated double quote", 6],
    ['echo "a\\"', "unterminated double quote", 6],
    ["echo a\\", "a lone backslash ends the command", 7],
    ["a | b", '"|" is a shell operator', 3],
    ["a && b", '"&" is a shell operator', 3],
    ["a;b", '";" is a shell operator', 2],
    ["a > f", '">" is a shell operator', 3],
    ["a <f", '"<" is a shell operator', 3],
    ["(a)", '"(" is a shell operator', 1],
    ["echo a)", '")" is a shell operator', 7],
    ["echo $HOME", '"$HOME" would be expanded by a shell', 6],
    ["echo x${HOME}", '"${HOME}" would be expanded by a shell', 7],
    ["echo $(id)", '"$(" would be expanded by a shell', 6],
    ["echo $1", '"$1" would be expanded by a shell', 6],
    ["echo $?", '"$?" would be expanded by a shell', 6],
    ['echo "$USER"', '"$USER" would be expanded by a shell', 7],
    ["echo `id`", "a backtick would run a command in a shell", 6],
    ['echo "`id`"', "a backtick would run a command in a shell", 7],
    ["cmd # comment", '"#" would start a comment in a shell', 5],
    ["cmd\nother", "a newline would end the command in a shell", 5],
    ["cmd a\n  'b'", "a newline would end the command in a shell", 9],
  ];
  test.each(refused)("%j: %s at %d", (text, problem, at) => {
    const r = splitCommand(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problem).toBe(problem);
      expect(r.at).toBe(at);
    }
  });

  test("each refusal that has a literal spelling says what it is", () => {
    const r = splitCommand("a | b");
    expect(!r.ok && describeSplitError(r, "set shell = true")).toBe(
      '"|" is a shell operator at character 3 (quote it to pass it as an argument, or set shell = true)',
    );
    const u = splitCommand("'open");
    expect(!u.ok && describeSplitError(u, "set shell = true")).toBe("unterminated single quote at character 1");
    const d = splitCommand('"$HOME"');
    expect(!d.ok && d.fix).toBe("write \\$ for a literal $");
  });
});

describe("quoteCommand", () => {
  test("quotes only what needs it, and splits back to the same words", () => {
    const argvs = [
      ["/usr/sbin/sshd", "-D"],
      ["nginx", "-g", "daemon off;"],
      ["a'b", "", "$HOME", "x\ny", "back\\slash", '"q"', "#c"],
    ];
    expect(quoteCommand(argvs[0]!)).toBe("/usr/sbin/sshd -D");
    expect(quoteCommand(argvs[1]!)).toBe("nginx -g 'daemon off;'");
    for (const argv of argvs) expect(split(quoteCommand(argv))).toEqual(argv);
  });
});
