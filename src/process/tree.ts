// The processes pidone is responsible for, read from /proc, and signalled through pidfds
// so that a pid reused between reading /proc and kill() is never hit.
import type * as fs from "node:fs";

// Loaded on first use: node:fs costs milliseconds of start-up that tini's mode never needs.
const nodeFs = (): typeof fs => require("node:fs");
import { close, getpid, pidfdOpen, pidfdSendSignal, readLink } from "../sys/libc.ts";

/** /proc/PID/stat: the fields after the parenthesised command (which may contain spaces). */
function statFields(pid: number): string[] | null {
  try {
    const stat = nodeFs().readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

export function parentOf(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[1]) : null; // state, ppid, pgrp, ...
}

export function processGroupOf(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[2]) : null;
}

export function isZombie(pid: number): boolean {
  return statFields(pid)?.[0] === "Z";
}

/** The command line for a log line: argv joined with spaces, else the kernel's comm. */
export function commandOf(pid: number): string {
  try {
    const raw = nodeFs().readFileSync(`/proc/${pid}/cmdline`);
    if (raw.length > 0) return raw.toString("utf8").replace(/\0+$/, "").replaceAll("\0", " ");
    return `[${nodeFs().readFileSync(`/proc/${pid}/comm`, "utf8").trim()}]`;
  } catch {
    return "?";
  }
}

/**
 * Is the mounted /proc our own PID namespace's? If it belongs to another namespace,
 * every pid we read there would name a different process.
 */
export function procIsOurs(): boolean {
  // Through libc: as a subreaper this runs before the spawn, where node:fs would cost
  // milliseconds.
  const self = readLink("/proc/self");
  return self !== null && Number(self) === getpid();
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = nodeFs().readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = nodeFs().readFileSync(`/proc/${pid}/task/${tid}/children`, "latin1").trim();
      if (text) for (const c of text.split(" ")) out.push(Number(c));
    } catch {
      // the task ended while we read
    }
  }
  return out;
}

/** Every descendant of `root`, parents before their children. */
export function descendantsOf(root: number): number[] {
  const out: number[] = [];
  const queue = [root];
  const seen = new Set<number>([root]);
  while (queue.length) {
    for (const c of childrenOf(queue.shift()!)) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Every process in the namespace but ourselves (what kill(-1, …) reaches as PID 1). */
export function allOtherProcesses(): number[] {
  const self = getpid();
  try {
    return nodeFs().readdirSync("/proc")
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((p) => p !== self);
  } catch {
    return [];
  }
}

/**
 * Signals `pid` only if it is still the process whose parent we saw: the pidfd pins the
 * process, and re-reading its parent after opening it proves the pid was not reused.
 * Returns false when it is gone (or was never ours).
 */
export function signalIfStill(pid: number, expectedParent: number, sig: number): boolean {
  let fd: number;
  try {
    fd = pidfdOpen(pid);
  } catch {
    return false;
  }
  try {
    if (parentOf(pid) !== expectedParent) return false;
    pidfdSendSignal(fd, sig);
    return true;
  } catch {
    return false;
  } finally {
    try {
      close(fd);
    } catch {
      // nothing useful to do: the descriptor is ours and valid
    }
  }
}

/** Signals every descendant of ours, each through its own pidfd. Returns those reached. */
export function signalDescendants(sig: number, skip: ReadonlySet<number> = new Set()): number[] {
  const self = getpid();
  const reached: number[] = [];
  const queue = [self];
  const seen = new Set<number>();
  while (queue.length) {
    const parent = queue.shift()!;
    for (const c of childrenOf(parent)) {
      if (seen.has(c)) continue;
      seen.add(c);
      queue.push(c);
      if (!skip.has(c) && signalIfStill(c, parent, sig)) reached.push(c);
    }
  }
  return reached;
}
