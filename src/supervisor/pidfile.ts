// Reading a daemon's pid file: one decimal pid, optionally followed by a newline.
import type * as fs from "node:fs";

// Loaded on first use: node:fs costs milliseconds of start-up that tini's mode never needs.
const nodeFs = (): typeof fs => require("node:fs");

export type PidfileRead = { ok: true; pid: number } | { ok: false; reason: string };

export function parsePid(text: string): number | null {
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t)) return null;
  const n = Number(t);
  return n > 1 && n <= 4_194_304 ? n : null; // pid_max's ceiling; 1 is never a daemon of ours
}

export function readPidfile(path: string): PidfileRead {
  let text: string;
  try {
    text = nodeFs().readFileSync(path, "latin1");
  } catch {
    return { ok: false, reason: `${path} did not appear` };
  }
  const pid = parsePid(text);
  if (pid === null) return { ok: false, reason: `${path} holds no pid: ${JSON.stringify(text.slice(0, 40))}` };
  return { ok: true, pid };
}
