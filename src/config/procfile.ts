// The Procfile convention (Heroku, foreman): one `NAME: COMMAND` per line, `#` comments,
// blank lines; COMMAND is a shell command line, run with /bin/sh -c. `--service` flags
// take the same `NAME: COMMAND` form.

/** 64 characters of [A-Za-z0-9_.-], starting with a letter, digit or underscore. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** Why a service name is refused, or null when it is fine. */
export function checkServiceName(name: string): string | null {
  if (name === "") return "a service needs a name";
  if (NAME.test(name)) return null;
  if (name.length > 64) return `service name "${name.slice(0, 20)}…" is longer than 64 characters`;
  return `service name ${JSON.stringify(name)} may hold only letters, digits, "_", "." and "-" (and not start with "." or "-")`;
}

export interface ProcEntry {
  name: string;
  command: string;
  /** 1-based line in its file (1 for a --service flag). */
  line: number;
}

export type ProcLine = { ok: true; entry: ProcEntry } | { ok: false; line: number; message: string };

/** One `NAME: COMMAND`; the command keeps its inner spacing, as sh -c receives it. */
export function parseServiceLine(text: string, line = 1): ProcLine {
  const colon = text.indexOf(":");
  if (colon < 0) return { ok: false, line, message: `expected "NAME: COMMAND", got ${JSON.stringify(text.trim())}` };
  const name = text.slice(0, colon).trim();
  const command = text.slice(colon + 1).trim();
  const bad = checkServiceName(name);
  if (bad) return { ok: false, line, message: bad };
  if (command === "") return { ok: false, line, message: `service "${name}" has an empty command` };
  return { ok: true, entry: { name, command, line } };
}

/** Every line of a Procfile: entries and refusals, in file order. */
export function parseProcfile(text: string): ProcLine[] {
  const out: ProcLine[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    out.push(parseServiceLine(line, i + 1));
  });
  return out;
}
