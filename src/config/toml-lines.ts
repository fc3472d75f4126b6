// Where things are in a TOML text, for FILE:LINE diagnostics: Bun.TOML.parse gives
// values but no positions. For a text that parsed, a scanner walks it once more to learn
// on which line every key path is defined: table headers, dotted keys, inline tables
// (even multi-line ones, which Bun accepts), array elements and arrays of tables; on
// anything it does not understand it skips to the next line instead of failing, since a
// missing line only makes a message fall back to `FILE: key.path: message`. For a text
// that did not parse, syntaxErrorLine (at the end) finds the line by parsing prefixes.
//
// Why not a TOML parser from npm that reports positions: Bun.TOML.parse stays the judge
// of what is valid and says what is wrong, so another parser would run beside it and
// have to agree with it. One that gives every key's position (an ESLint-style AST) adds
// about as much code as the services chunk holds and loads and runs slower than this
// scan; one that places only errors leaves the scanner as it is; and both put an
// unclosed array or string at the end of the file, not on the line where it opens.
import type { KeyPath } from "./diagnostics.ts";

const BARE_KEY = /[A-Za-z0-9_-]/;

/**
 * Deeper than any path a diagnostic names (services.NAME.ready.exec[0] is 5 long): paths
 * past it are not recorded, nor copied, so deep nesting (a valid `x = [[[[…]]]]` thousands
 * deep, or a dotted key of thousands of parts) costs linear time, not quadratic.
 */
const MAX_DEPTH = 8;

/** `path` extended by `keys`, cut just past MAX_DEPTH (which marks it too deep to record). */
function extend(path: KeyPath, keys: readonly (string | number)[]): KeyPath {
  const room = MAX_DEPTH + 1 - path.length;
  return room <= 0 ? path : [...path, ...keys.slice(0, room)];
}

export class KeyLines {
  private readonly lines = new Map<string, number>();

  /** The first definition wins: a table implied by a dotted key keeps its first line. */
  set(path: KeyPath, line: number): void {
    if (path.length > MAX_DEPTH) return;
    const k = JSON.stringify(path);
    if (!this.lines.has(k)) this.lines.set(k, line);
  }

  exact(path: KeyPath): number | undefined {
    return this.lines.get(JSON.stringify(path));
  }

  /** The line of the path, or of its closest known ancestor (a missing key: its table). */
  nearest(path: KeyPath): number | undefined {
    for (let n = path.length; n > 0; n--) {
      const line = this.exact(path.slice(0, n));
      if (line !== undefined) return line;
    }
    return undefined;
  }
}

export function scanKeyLines(text: string): KeyLines {
  const out = new KeyLines();
  new Scanner(text, out).run();
  return out;
}

class Scanner {
  private i = 0;
  private readonly newlines: number[] = [];
  /** Current element index of each array of tables, by its resolved path. */
  private readonly arrayTables = new Map<string, number>();

  constructor(private readonly s: string, private readonly out: KeyLines) {
    for (let k = 0; k < s.length; k++) if (s[k] === "\n") this.newlines.push(k);
  }

  private lineAt(pos: number): number {
    let lo = 0;
    let hi = this.newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.newlines[mid]! < pos) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  }

  private ch(offset = 0): string {
    return this.s[this.i + offset] ?? "";
  }

  private get eof(): boolean {
    return this.i >= this.s.length;
  }

  private skipSpaces(): void {
    while (this.ch() === " " || this.ch() === "\t") this.i++;
  }

  private skipToLineEnd(): void {
    while (!this.eof && this.ch() !== "\n") this.i++;
  }

  /** Spaces, comments and newlines: what may separate array elements. */
  private skipBlank(): void {
    for (;;) {
      this.skipSpaces();
      if (this.ch() === "#") this.skipToLineEnd();
      if (this.ch() === "\n" || this.ch() === "\r") this.i++;
      else return;
    }
  }

  private record(base: KeyPath, key: readonly string[], pos: number): KeyPath {
    const line = this.lineAt(pos);
    const path = extend(base, key);
    for (let n = base.length + 1; n <= Math.min(path.length, MAX_DEPTH); n++) this.out.set(path.slice(0, n), line);
    return path;
  }

  run(): void {
    let table: KeyPath = [];
    while (!this.eof) {
      const before = this.i;
      this.skipBlank();
      if (this.eof) break;
      const start = this.i;
      if (this.ch() === "[") {
        const isArray = this.ch(1) === "[";
        this.i += isArray ? 2 : 1;
        const key = this.key();
        if (key) table = this.header(key, isArray, start);
        this.skipToLineEnd();
      } else {
        const key = this.key();
        if (!key) {
          this.skipToLineEnd();
        } else {
          const path = this.record(table, key, start);
          this.skipSpaces();
          if (this.ch() === "=") this.i++;
          this.skipSpaces();
          this.value(path);
        }
      }
      if (this.i === before) this.i++;
    }
  }

  /** Resolves a header through the current elements of arrays of tables and records it. */
  private header(key: readonly string[], isArray: boolean, pos: number): KeyPath {
    const line = this.lineAt(pos);
    const path: (string | number)[] = [];
    for (let n = 0; n < key.length && path.length <= MAX_DEPTH; n++) {
      path.push(key[n]!);
      const last = n === key.length - 1;
      if (last && isArray) {
        const id = JSON.stringify(path);
        const index = (this.arrayTables.get(id) ?? -1) + 1;
        this.arrayTables.set(id, index);
        this.out.set([...path], line);
        path.push(index);
      } else {
        const index = this.arrayTables.get(JSON.stringify(path));
        if (index !== undefined && !last) path.push(index);
      }
      this.out.set([...path], line);
    }
    return path;
  }

  /** A dotted key; null when there is none here. */
  private key(): string[] | null {
    const parts: string[] = [];
    for (;;) {
      this.skipSpaces();
      const c = this.ch();
      if (c === '"') {
        const end = this.basicStringEnd(this.i);
        parts.push(unescapeBasic(this.s.slice(this.i + 1, end - 1)));
        this.i = end;
      } else if (c === "'") {
        const close = this.s.indexOf("'", this.i + 1);
        const end = close < 0 ? this.s.length : close + 1;
        parts.push(this.s.slice(this.i + 1, end - 1));
        this.i = end;
      } else {
        const from = this.i;
        while (BARE_KEY.test(this.ch())) this.i++;
        if (this.i === from) return null;
        parts.push(this.s.slice(from, this.i));
      }
      this.skipSpaces();
      if (this.ch() !== ".") return parts;
      this.i++;
    }
  }

  /** Index just past the closing quote of the one-line basic string opening at `from`. */
  private basicStringEnd(from: number): number {
    let k = from + 1;
    while (k < this.s.length && this.s[k] !== '"' && this.s[k] !== "\n") k += this.s[k] === "\\" ? 2 : 1;
    return Math.min(k + 1, this.s.length);
  }

  /**
   * Skips an array or inline table too deep to record, without recursing: a valid file
   * nested thousands deep must not overflow the stack here (and be reported as a syntax error).
   */
  private skipNested(): void {
    let depth = 0;
    while (!this.eof) {
      const c = this.ch();
      if (c === "[" || c === "{") {
        depth++;
        this.i++;
      } else if (c === "]" || c === "}") {
        this.i++;
        if (--depth === 0) return;
      } else if (c === '"' || c === "'") {
        this.value([]); // a string: skipped whole, brackets inside included
      } else if (c === "#") {
        this.skipToLineEnd();
      } else {
        this.i++;
      }
    }
  }

  private value(path: KeyPath): void {
    const s = this.s;
    const c = this.ch();
    if ((c === "[" || c === "{") && path.length > MAX_DEPTH) return this.skipNested();
    if (s.startsWith('"""', this.i) || s.startsWith("'''", this.i)) {
      const quote = c;
      const delimiter = quote.repeat(3);
      this.i += 3;
      while (!this.eof) {
        if (quote === '"' && this.ch() === "\\") this.i += 2;
        else if (s.startsWith(delimiter, this.i)) {
          this.i += 3;
          // Up to two more quotes belong to the content: """a""""" is `a""`.
          for (let n = 0; n < 2 && this.ch() === quote; n++) this.i++;
          return;
        } else this.i++;
      }
    } else if (c === '"') {
      this.i = this.basicStringEnd(this.i);
    } else if (c === "'") {
      const close = s.indexOf("'", this.i + 1);
      this.i = close < 0 ? s.length : close + 1;
    } else if (c === "[") {
      this.i++;
      for (let index = 0; ; index++) {
        this.skipBlank();
        if (this.eof) return;
        if (this.ch() === "]") {
          this.i++;
          return;
        }
        const before = this.i;
        const element = extend(path, [index]);
        this.out.set(element, this.lineAt(this.i));
        this.value(element);
        this.skipBlank();
        if (this.ch() === ",") this.i++;
        else if (this.ch() !== "]" || this.i === before) return;
      }
    } else if (c === "{") {
      this.i++;
      for (;;) {
        this.skipBlank();
        if (this.eof) return;
        if (this.ch() === "}") {
          this.i++;
          return;
        }
        const start = this.i;
        const key = this.key();
        if (!key) return;
        const inner = this.record(path, key, start);
        this.skipSpaces();
        if (this.ch() === "=") this.i++;
        this.skipSpaces();
        this.value(inner);
        this.skipBlank();
        if (this.ch() === ",") this.i++;
        else if (this.ch() !== "}") return;
      }
    } else {
      // Numbers, booleans, dates (which may hold one space: 1979-05-27 07:32:00).
      while (!this.eof && !",]}#\r\n".includes(this.ch())) this.i++;
    }
  }
}

/** Quoted keys rarely hold escapes, but a key with \" or \u00e9 must still match Bun's. */
function unescapeBasic(raw: string): string {
  return raw.replace(/\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)/g, (_, e: string) => {
    switch (e[0]) {
      case "u":
      case "U":
      case "x":
        return String.fromCodePoint(parseInt(e.slice(1), 16));
      case "b":
        return "\b";
      case "t":
        return "\t";
      case "n":
        return "\n";
      case "f":
        return "\f";
      case "r":
        return "\r";
      case "e":
        return "\x1b";
      default:
        return e;
    }
  });
}

// ---------------------------------------------------------------------------------
// The line of a syntax error

/**
 * Searching a syntax error's line re-parses prefixes: up to twice as many parses as lines,
 * each as long as the text, so the lines times the characters bound the work. Past it, the
 * error is reported without a line rather than after seconds of parsing (a long file whose
 * error opens on line 1 costs the most).
 */
const MAX_LINES_TO_SEARCH = 1000;
const MAX_SEARCH_WORK = 32 * 1024 * 1024;

function parseError(text: string): string | null {
  try {
    Bun.TOML.parse(text);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Bun's error carries no position (its line and column are those of the JavaScript
 * caller), so find it by parsing prefixes of the text. The bad line is after the last
 * prefix that still parses; from there, the first prefix failing with the very same
 * message ends on it. Without such a prefix (an unclosed array or string, reported only
 * at the end of the file) the construct that never closes opens on the line after the
 * last good prefix, which is the line worth showing.
 */
export function syntaxErrorLine(text: string, message: string): number | undefined {
  const lines = text.split("\n");
  if (lines.length > MAX_LINES_TO_SEARCH || lines.length * text.length > MAX_SEARCH_WORK) return undefined;
  // Each prefix ends with a newline, as that line does in the whole text.
  const prefix = (n: number) => `${lines.slice(0, n).join("\n")}\n`;
  let good = 0;
  for (let n = lines.length - 1; n >= 1; n--) {
    if (parseError(prefix(n)) === null) {
      good = n;
      break;
    }
  }
  for (let n = good + 1; n <= lines.length; n++) {
    if (parseError(prefix(n)) === message) return n;
  }
  return Math.min(good + 1, lines.length);
}
