// The container's limits as its cgroup files state them, read the way the stub reads them
// before the runtime starts (src/native/stub.c, "limits"): cgroup v2 at /sys/fs/cgroup
// (a container's own namespace shows its cgroup there; elsewhere /proc/self/cgroup names
// it below), else the cgroup v1 hierarchy holding the controller, found in
// /proc/self/mountinfo. From our own cgroup up to what the mount shows, the tightest
// value wins; a limit set above that (a Kubernetes pod's) is invisible.
import type * as fs from "node:fs";
import { limitsView } from "../native/protocol.ts" with { type: "macro" };

const nodeFs = (): typeof fs => require("node:fs");
const LIMIT = limitsView();
const MIB = 1024 * 1024;

function read(path: string): string | null {
  try {
    return nodeFs().readFileSync(path, "latin1");
  } catch {
    return null;
  }
}

/** A cgroup value: bytes or a count; Infinity for "max" or when unreadable. */
function value(path: string): number {
  const text = read(path)?.trim();
  if (!text || text === "max" || !/^\d+$/.test(text)) return Infinity;
  return Number(text);
}

/** Our cgroup's path for `controller` (null: the v2 line "0::PATH"). */
function ownCgroup(controller: string | null): string | null {
  for (const line of (read("/proc/self/cgroup") ?? "").split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m && (controller === null ? m[1] === "" : m[1]!.split(",").includes(controller))) return m[2]!;
  }
  return null;
}

/** cgroup v1: where `controller`'s hierarchy is mounted, and the cgroup its root shows. */
function v1Mount(controller: string): { mount: string; root: string } | null {
  for (const line of (read("/proc/self/mountinfo") ?? "").split("\n")) {
    const [left, right] = line.split(" - ");
    const f = left?.split(" ") ?? [];
    const r = right?.split(" ") ?? [];
    if (r[0] === "cgroup" && (r[2] ?? "").split(",").includes(controller) && f[3] && f[4]) return { mount: f[4], root: f[3] };
  }
  return null;
}

/** The tightest `file` (less `used`: what is left) from our cgroup up to the mount's root. */
function walkUp(mount: string, root: string, path: string | null, file: string, used?: string): number {
  const rel = root === "/" ? path : path === root || path?.startsWith(`${root}/`) ? path.slice(root.length) : null;
  const parts = (rel ?? "").split("/").filter(Boolean);
  let best = Infinity;
  for (let n = parts.length; n >= 0; n--) {
    const dir = [mount, ...parts.slice(0, n)].join("/");
    const limit = value(`${dir}/${file}`);
    if (limit === Infinity) continue;
    const current = used ? value(`${dir}/${used}`) : 0;
    best = Math.min(best, Math.max(0, limit - (current === Infinity ? 0 : current)));
  }
  return best;
}

function cgroupLimit(controller: string, v2file: string, v1file: string, used?: string): number {
  if (read("/sys/fs/cgroup/cgroup.controllers") !== null) return walkUp("/sys/fs/cgroup", "/", ownCgroup(null), v2file, used);
  const v1 = v1Mount(controller);
  return v1 ? walkUp(v1.mount, v1.root, ownCgroup(controller), v1file, used) : Infinity;
}

/** The container's memory limit in bytes; Infinity when none is visible. */
export function memoryLimit(): number {
  return cgroupLimit("memory", "memory.max", "memory.limit_in_bytes");
}

/** How many more tasks (processes and threads) the pids limit allows; Infinity: no limit. */
export function tasksLeft(): number {
  return cgroupLimit("pids", "pids.max", "pids.max", "pids.current");
}

/** RLIMIT_AS in bytes (/proc/self/limits: "Max address space  SOFT  HARD  bytes"). */
export function addressSpaceLimit(): number {
  const m = /^Max address space\s+(\d+|unlimited)/m.exec(read("/proc/self/limits") ?? "");
  return !m || m[1] === "unlimited" ? Infinity : Number(m[1]);
}

export interface LimitCheck {
  /** The line that refuses to start, or null. */
  fatal: string | null;
  /** Lines to log as warnings. */
  warnings: string[];
}

/**
 * Services mode's needs: more memory and address space than tini's mode (the services'
 * output goes through pidone's output worker, a second JavaScript VM), and the threads
 * its runtime creates once services run: a failed creation or reservation aborts the
 * runtime. For the plain -glibc file, which has no stub, this is the only check.
 */
export function checkServicesLimits(memory = memoryLimit(), tasks = tasksLeft(), as = addressSpaceLimit()): LimitCheck {
  const floor = LIMIT.LIMIT_MEMORY_SERVICES_MIB;
  const mib = Math.floor(memory / MIB);
  const asNeed = LIMIT.LIMIT_ADDRESS_SPACE_SERVICES_MIB;
  if (as < asNeed * MIB) {
    const kib = Math.floor(as / 1024);
    return {
      fatal: `the address-space limit (RLIMIT_AS, ulimit -v ${kib}) is below the ${asNeed} MiB services mode needs (ulimit -v ${asNeed * 1024})`,
      warnings: [],
    };
  }
  if (memory < floor * MIB) {
    return { fatal: `the container's memory limit (${mib} MiB) is below the ${floor} MiB services mode needs`, warnings: [] };
  }
  if (tasks + 1 < LIMIT.LIMIT_TASKS_SERVICES) {
    const room = tasks + 1;
    return {
      fatal: `the container's pids limit leaves room for ${room} ${room === 1 ? "task" : "tasks"}, below the ${LIMIT.LIMIT_TASKS_SERVICES} services mode needs (its runtime's threads and a service)`,
      warnings: [],
    };
  }
  const warnings: string[] = [];
  if (memory < floor * MIB * (1 + LIMIT.LIMIT_MEMORY_NEAR_PERCENT / 100)) {
    warnings.push(`the container's memory limit (${mib} MiB) is close to the ${floor} MiB services mode needs: it may run out of memory`);
  }
  return { fatal: null, warnings };
}
