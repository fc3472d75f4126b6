// pidone's log: consola's core (no formatting, no process.stdout) with one reporter that
// writes tini-style lines straight to fd 1/2 through write(2).
//
// Why not process.stderr: its first write sets O_NONBLOCK on an inherited pipe, which the
// child shares, so the child's own writes then fail with EAGAIN.
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { getpid, writeAll } from "../sys/libc.ts";

/**
 * tini's verbosity: 0 fatal only, 1 warnings (default), 2 info, 3 debug, 4 trace. The same
 * scale as services mode's log_level names (error, warn, info, debug, trace) and -q (warn).
 */
export type Verbosity = number;

const LABELS: Record<string, { label: string; fd: number }> = {
  fatal: { label: "FATAL", fd: 2 },
  error: { label: "FATAL", fd: 2 },
  warn: { label: "WARN ", fd: 2 },
  info: { label: "INFO ", fd: 1 },
  log: { label: "INFO ", fd: 1 },
  success: { label: "INFO ", fd: 1 },
  debug: { label: "DEBUG", fd: 1 },
  trace: { label: "TRACE", fd: 1 },
  verbose: { label: "TRACE", fd: 1 },
};

/** Lines lost because stdout/stderr was full, closed or gone. */
export let droppedLines = 0;
// After one drop, stop waiting on a stuck stream until a write succeeds again.
let waitMs = 100;

function emit(fd: number, line: string): void {
  const ok = writeAll(fd, Buffer.from(line), waitMs);
  if (ok) waitMs = 100;
  else {
    droppedLines++;
    waitMs = 0;
  }
}

/**
 * consola's levels, which `log.level` holds: compare against these, never a number
 * (`log.level >= LEVEL.debug` guards a line whose text costs something to build).
 */
export const LEVEL = { fatal: 0, warn: 1, info: 3, debug: 4, trace: 5 } as const;

/** tini's verbosity (-v, TINI_VERBOSITY) on consola's scale. */
function consolaLevel(v: Verbosity): number {
  if (v <= 0) return LEVEL.fatal;
  if (v === 1) return LEVEL.warn;
  if (v === 2) return LEVEL.info;
  if (v === 3) return LEVEL.debug;
  return LEVEL.trace;
}

let pid = 0;
const reporter = {
  log(obj: LogObject) {
    const kind = LABELS[obj.type] ?? LABELS.info!;
    const text = obj.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
    emit(kind.fd, `[${kind.label} pidone (${pid || (pid = getpid())})] ${text}\n`);
  },
};

type Level = "fatal" | "error" | "warn" | "info" | "debug" | "trace";
export type Logger = Record<Level, (message: string) => void> & { level: number };

// Created on the first message that the level lets through: as PID 1 at the default
// verbosity tini's mode logs nothing, and consola's set-up is start-up time.
let instance: ConsolaInstance | null = null;
let level: number = LEVEL.warn;
const consola = () => (instance ??= createConsola({ level, reporters: [reporter], throttle: 0 }));
const at = (min: number, emit: (c: ConsolaInstance, message: string) => void) => (message: string) => {
  if (level >= min) emit(consola(), message);
};

export const log: Logger = {
  get level() {
    return level;
  },
  set level(v: number) {
    level = v;
    if (instance) instance.level = v;
  },
  fatal: at(LEVEL.fatal, (c, m) => c.fatal(m)),
  error: at(LEVEL.fatal, (c, m) => c.error(m)),
  warn: at(LEVEL.warn, (c, m) => c.warn(m)),
  info: at(LEVEL.info, (c, m) => c.info(m)),
  debug: at(LEVEL.debug, (c, m) => c.debug(m)),
  trace: at(LEVEL.trace, (c, m) => c.trace(m)),
};

export function setVerbosity(v: Verbosity): void {
  log.level = consolaLevel(v);
}

/** Plain text (help, version, license) to fd 1 or 2, without a prefix. */
export function print(fd: 1 | 2, text: string): void {
  emit(fd, text);
}
