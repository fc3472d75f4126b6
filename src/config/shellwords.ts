// Splits a command string into argv with POSIX shell quoting and nothing else: no
// variables, no globbing, no operators. Anything a shell would treat differently from
// a plain word (`$VAR`, a backtick, `|`, `;`, a `#` comment, a newline ending the
// command) is refused rather than passed through literally, so a command never means
// one thing to the user and another to pidone; the error says to use a shell instead.

export type SplitResult =
  | { ok: true; argv: string[] }
  /**
   * `problem` at 1-based character `at`; `fix`, when there is one, says how to write it
   * literally (a shell, the other way out, is the caller's to suggest).
   */
  | { ok: false; problem: string; at: number; fix?: string };

const OPERATORS = "|&;<>()";
/** What may follow `$` for a shell to expand it: a name, ${…}, $(…), $((…)), a special parameter. */
const EXPANDS = /[A-Za-z0-9_{(@*#?$!-]/;
/** Inside double quotes a backslash escapes only these (and a newline). */
const DQ_ESCAPABLE = "\"\\$`";

export function splitCommand(text: string): SplitResult {
  const argv: string[] = [];
  let word = "";
  let inWord = false;
  /** A newline came after a word: in a shell, a following word starts a new command. */
  let newlineAfterWord = false;
  const fail = (problem: string, i: number, fix?: string): SplitResult =>
    fix === undefined ? { ok: false, problem, at: i + 1 } : { ok: false, problem, at: i + 1, fix };
  /** `$HOME`, `${x}`, `$(`: what a shell would expand, for the message. */
  const expansion = (i: number) => /^\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\}?|.)/.exec(text.slice(i))![0];
  const endWord = () => {
    if (inWord) argv.push(word);
    word = "";
    inWord = false;
  };

  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\n") {
      endWord();
      if (c === "\n" && argv.length > 0) newlineAfterWord = true;
      i++;
      continue;
    }
    // c starts or continues a word: a backslash-newline alone does not.
    if (c === "\\" && text[i + 1] === "\n") {
      i += 2;
      continue;
    }
    if (!inWord && newlineAfterWord) {
      return fail("a newline would end the command in a shell", i, "end the line with \\ to continue it");
    }
    if (c === "\\") {
      if (i + 1 >= text.length) return fail("a lone backslash ends the command", i, "write \\\\ for a backslash");
      word += text[i + 1];
      inWord = true;
      i += 2;
    } else if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) return fail("unterminated single quote", i);
      word += text.slice(i + 1, close);
      inWord = true;
      i = close + 1;
    } else if (c === '"') {
      inWord = true;
      const open = i;
      i++;
      for (;;) {
        if (i >= text.length) return fail("unterminated double quote", open);
        const d = text[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\") {
          const next = text[i + 1];
          if (next === "\n") {
            i += 2;
          } else if (next !== undefined && DQ_ESCAPABLE.includes(next)) {
            word += next;
            i += 2;
          } else {
            word += "\\";
            i++;
          }
        } else if (d === "$" && EXPANDS.test(text[i + 1] ?? "")) {
          return fail(`"${expansion(i)}" would be expanded by a shell`, i, "write \\$ for a literal $");
        } else if (d === "`") {
          return fail("a backtick would run a command in a shell", i, "write \\` for a literal one");
        } else {
          word += d;
          i++;
        }
      }
    } else if (OPERATORS.includes(c)) {
      return fail(`"${c}" is a shell operator`, i, "quote it to pass it as an argument");
    } else if (c === "$" && EXPANDS.test(text[i + 1] ?? "")) {
      return fail(`"${expansion(i)}" would be expanded by a shell`, i, "quote it with '…' for a literal $");
    } else if (c === "`") {
      return fail("a backtick would run a command in a shell", i, "quote it with '…' for a literal one");
    } else if (c === "#" && !inWord) {
      return fail('"#" would start a comment in a shell', i, "quote it to pass it as an argument");
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  endWord();
  return { ok: true, argv };
}

/** One line for messages: "PROBLEM at character N (FIX, or ALTERNATIVE)". */
export function describeSplitError(e: { problem: string; at: number; fix?: string }, alternative: string): string {
  const ways = e.fix === undefined ? "" : ` (${e.fix}, or ${alternative})`;
  return `${e.problem} at character ${e.at}${ways}`;
}

/** Quotes argv back into one line a POSIX shell would split into the same words. */
export function quoteCommand(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`))
    .join(" ");
}
