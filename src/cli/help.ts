// Help and usage, rendered by citty from the one option table, plus tini's
// environment-variable section.
import { defineCommand, renderUsage } from "citty";
import { args, ENVIRONMENT_HELP } from "./definition.ts";
import { CONTROL } from "../native/protocol.ts";
import { isatty } from "../sys/libc.ts";
import { VERSION } from "../version.ts";
import license from "../../LICENSE" with { type: "text" };

export const command = defineCommand({
  meta: {
    name: "pidone",
    version: VERSION,
    description: "Execute a program under the supervision of a valid init process",
  },
  args,
});

export const LICENSE_TEXT: string = license;

const ANSI = /\u001b\[[0-9;]*m/g;

export async function renderHelp(fd: 1 | 2, _name: string): Promise<string> {
  let text = await renderUsage(command);
  text = text.replace(/\[OPTIONS\] $|\[OPTIONS\] \[PROGRAM\]/m, "[OPTIONS] [--] PROGRAM [ARGS...] | --version");
  text += `\nCONTROL\n\n  pidone --ctl [--control PATH] COMMAND [ARGS...]    (or the file named ${CONTROL.CLIENT_NAME})\n`;
  text += "  Asks the pidone running services: status [NAME...] [--json], start NAME, stop NAME,\n";
  text += "  restart NAME, signal NAME SIGNAL, health. `pidone --ctl --help` tells more.\n";
  text += `  The socket: --control PATH, else $${CONTROL.PATH_VARIABLE}, else ${CONTROL.DEFAULT_PATH}.\n`;
  const width = Math.max(...ENVIRONMENT_HELP.map(([k]) => k.length));
  text += `\nENVIRONMENT\n\n${ENVIRONMENT_HELP.map(([k, d]) => `  ${k.padEnd(width)}  ${d}`).join("\n")}\n\n`;
  const color = isatty(fd) && !process.env.NO_COLOR;
  text = text.replace(/ +$/gm, "");
  return color ? text : text.replace(ANSI, "");
}
