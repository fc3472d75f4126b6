// Environment files (`env_file`), in Docker Compose's env_file syntax, the one users know:
//
//   # a comment                      blank lines too
//   export NAME=value                `export ` is optional
//   NAME=value # comment             unquoted: to the end of the line, less a " #" comment
//   NAME='literal $ \ text'          single quotes: every character as written, lines too
//   NAME="a\nb \"q\" \\ \$"          double quotes: \n \r \t \a \b \f \v \" \\ \$ escapes
//   NAME=pa$$word                    "$$" is one "$", as Compose has it
//
// Compose interpolates `$NAME` and `${NAME}` outside single quotes; pidone interpolates
// nothing. So that one file never means two things, a `$` Compose would expand is refused
// (with a pointer to single quotes, `\$` or `$$`), never passed on literally. A bare `NAME`
// line (Compose: "take it from my environment") is refused too. Each problem comes back
// with its line, for `FILE:LINE: message`.
//
// Not npm's dotenv: its parse() gives no line numbers, skips lines it cannot read without
// a word, ends an unquoted value at any "#" (Compose: only at " #"), and keeps \" and \\
// as written in double quotes (it expands \n and \r only). A variable lost without a word
// is worse than a start that fails naming the line.
import { readFileSync, statSync } from "node:fs";

export type EnvFileParse =
  | { ok: true; vars: Map<string, string> }
  | { ok: false; line: number; message: string };

/** Compose's name characters (letters, digits, `_ . - [ ]`), ASCII only. */
const NAME = /^[A-Za-z0-9_.\-[\]]+$/;
/** Blanks within a line: what Compose's parser skips ("\r" of CRLF files included). */
const BLANK = /[ \t\v\f\r]/;

const DOUBLE_ESCAPES: Record<string, string> = {
  n: "\n", r: "\r", t: "\t", a: "\x07", b: "\b", f: "\f", v: "\v", '"': '"', "\\": "\\", $: "$",
};

class Syntax extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

const DOLLAR_HINT = "pidone does not expand variables: write the value in single quotes, or \\$ in double quotes, or $$ for one literal $";

/** One value's `$`s: `$$` is one `$`; any other `$` is refused (see the top of this file). */
function dollars(text: string, line: number): string {
  if (!text.includes("$")) return text;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== "$") {
      out += c;
    } else if (text[i + 1] === "$") {
      out += "$";
      i++;
    } else {
      const what = /^\$(?:\{[^}\n]*\}?|[A-Za-z_][A-Za-z0-9_]*)?/.exec(text.slice(i))![0];
      throw new Syntax(line, `${JSON.stringify(what)} would be expanded by Docker Compose; ${DOLLAR_HINT}`);
    }
  }
  return out;
}

/** Parses an env file's text. Later lines win over earlier ones for the same name. */
export function parseEnvFile(text: string): EnvFileParse {
  const vars = new Map<string, string>();
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  let i = 0;
  let line = 1;
  const n = text.length;
  const skipBlanks = () => {
    while (i < n && BLANK.test(text[i]!)) i++;
  };
  /** After a value: blanks, then a comment or the end of the line. */
  const endOfLine = (what: string) => {
    skipBlanks();
    if (i < n && text[i] === "#") while (i < n && text[i] !== "\n") i++;
    if (i < n && text[i] !== "\n") throw new Syntax(line, `unexpected ${JSON.stringify(restOfLine())} after ${what}`);
    i++;
    line++;
  };
  const restOfLine = () => {
    const end = text.indexOf("\n", i);
    return text.slice(i, end < 0 ? n : end).replace(/\r$/, "");
  };
  try {
    while (i < n) {
      skipBlanks();
      if (i >= n) break;
      if (text[i] === "\n" || text[i] === "#") {
        endOfLine("");
        continue;
      }
      const start = line;
      if (/^export[ \t]/.test(text.slice(i, i + 7))) {
        i += 6;
        skipBlanks();
      }
      const nameStart = i;
      while (i < n && text[i] !== "=" && text[i] !== "\n" && !BLANK.test(text[i]!)) i++;
      const name = text.slice(nameStart, i);
      skipBlanks();
      if (i >= n || text[i] !== "=") {
        const got = text.slice(nameStart, i) + (i < n && text[i] !== "\n" ? restOfLine() : "");
        throw new Syntax(start, `expected NAME=VALUE, got ${JSON.stringify(got)}`);
      }
      if (name === "") throw new Syntax(start, "a variable name is missing before \"=\"");
      if (!NAME.test(name)) {
        const bad = [...name].find((c) => !NAME.test(c))!;
        throw new Syntax(start, `unexpected character ${JSON.stringify(bad)} in the variable name ${JSON.stringify(name)}`);
      }
      i++; // "="
      skipBlanks();
      const q = text[i];
      let value: string;
      if (q === "'") {
        const close = text.indexOf("'", i + 1);
        if (close < 0) throw new Syntax(start, `unterminated single quote in the value of ${name}`);
        value = text.slice(i + 1, close);
        for (let k = i; k < close; k++) if (text[k] === "\n") line++;
        i = close + 1;
        endOfLine("the closing quote");
      } else if (q === '"') {
        value = "";
        let k = i + 1;
        for (;;) {
          if (k >= n) throw new Syntax(start, `unterminated double quote in the value of ${name}`);
          const c = text[k]!;
          if (c === '"') break;
          if (c === "\n") line++;
          if (c === "\\" && k + 1 < n) {
            const e = text[k + 1]!;
            const rep = DOUBLE_ESCAPES[e];
            // "\$" must not be read as a "$" by dollars() below: kept as "$$" until then.
            if (rep !== undefined) value += e === "$" ? "$$" : rep;
            else value += `\\${e}`; // Compose keeps what it does not know
            if (e === "\n") line++;
            k += 2;
            continue;
          }
          value += c;
          k++;
        }
        value = dollars(value, start);
        i = k + 1;
        endOfLine("the closing quote");
      } else {
        const end = text.indexOf("\n", i);
        let raw = text.slice(i, end < 0 ? n : end);
        // A comment starts at a "#" after a blank; "a#b" is a value.
        const comment = raw.search(/[ \t]#/);
        if (comment >= 0) raw = raw.slice(0, comment);
        value = dollars(raw.replace(/[ \t\v\f\r]+$/, ""), start);
        i = end < 0 ? n : end + 1;
        line++;
      }
      if (value.includes("\0")) throw new Syntax(start, `the value of ${name} contains a NUL character, which no environment can hold`);
      vars.set(name, value);
    }
  } catch (e) {
    if (e instanceof Syntax) return { ok: false, line: e.line, message: e.message };
    throw e;
  }
  return { ok: true, vars };
}

/** One `env_file` entry: an absolute path; `optional` when it was written with a leading "-". */
export interface EnvFileRef {
  path: string;
  optional: boolean;
}

/** `"-/etc/app/local.env"` → optional; the rest is the path. */
export function envFileRef(entry: string): EnvFileRef {
  return entry.startsWith("-") ? { path: entry.slice(1), optional: true } : { path: entry, optional: false };
}

export type EnvFileRead =
  | { ok: true; vars: Map<string, string> }
  /** `missing`: the file is not there (a --check warns, a start fails unless optional). */
  | { ok: false; message: string; missing?: true };

const MAX_ENV_FILE_BYTES = 1024 * 1024;
const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  ENOTDIR: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
};

/**
 * Reads and parses one env file; every failure is one `FILE:LINE: message` (or
 * `FILE: message`) line. An optional file that is missing gives no variables.
 */
export function readEnvFile(ref: EnvFileRef): EnvFileRead {
  let bytes: Uint8Array;
  try {
    const st = statSync(ref.path);
    // A FIFO or a device (/dev/zero) would block the read, or never end it.
    if (st.isDirectory()) return { ok: false, message: `${ref.path}: cannot read env_file: is a directory` };
    if (!st.isFile()) return { ok: false, message: `${ref.path}: cannot read env_file: not a regular file` };
    const size = st.size;
    if (size > MAX_ENV_FILE_BYTES) {
      return { ok: false, message: `${ref.path}: ${size} bytes, more than the 1 MiB an env_file may have` };
    }
    bytes = readFileSync(ref.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const missing = code === "ENOENT" || code === "ENOTDIR";
    if (missing && ref.optional) return { ok: true, vars: new Map() };
    const why = `${ref.path}: cannot read env_file: ${READ_ERRORS[code] ?? code}`;
    return missing ? { ok: false, message: why, missing: true } : { ok: false, message: why };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, message: `${ref.path}: not valid UTF-8 text` };
  }
  const parsed = parseEnvFile(text);
  if (!parsed.ok) return { ok: false, message: `${ref.path}:${parsed.line}: ${parsed.message}` };
  return parsed;
}

/**
 * Every file's variables in order, later files winning: what a service gets over pidone's
 * environment and under its own `env`. The first failure ends the reading.
 */
export function readEnvFiles(refs: readonly EnvFileRef[]): { ok: true; vars: Record<string, string> } | { ok: false; message: string } {
  const vars: Record<string, string> = {};
  for (const ref of refs) {
    const r = readEnvFile(ref);
    if (!r.ok) return { ok: false, message: r.message };
    // defineProperty: a variable named __proto__ is a variable like any other.
    for (const [k, v] of r.vars) Object.defineProperty(vars, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return { ok: true, vars };
}
