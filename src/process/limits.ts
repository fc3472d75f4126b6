// The container's limits as its cgroup files state them, read the way the stub reads them
// before the runtime starts (src/native/stub.c, "limits"): cgroup v2 at /sys/fs/cgroup
// (a container's own namespace shows its cgroup there; elsewhere /proc/self/cgroup names
// it below), else the cgroup v1 hierarchy holding the controller, found in
// /proc/self/mountinfo. From our own cgroup up to what the mount shows, the tightest
// value wins; a limit set above that (a Kubernetes pod's) is invisible.
import type * as fs from "node:fs";
import { limitsView } from "../native/protocol.ts" with { type: "macro" };
import { getauxval, libcFailure, pageCached, readSmallFile } from "../sys/libc.ts";
import { startResidency } from "../sys/native.ts";

const nodeFs = (): typeof fs => require("node:fs");
const LIMIT = limitsView();
const MIB = 1024 * 1024;

/**
 * A small file's text, or null. Through libc (readSmallFile): node:fs's first use costs
 * milliseconds, which tini's mode pays if it reads a cgroup file (src/process/oom.ts);
 * node:fs only where libc could not be loaded (main.ts's last words on RLIMIT_AS).
 */
function read(path: string): string | null {
  try {
    if (libcFailure) return nodeFs().readFileSync(path, "latin1");
    const bytes = readSmallFile(path);
    return bytes && Buffer.from(bytes).toString("latin1");
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

/** Our own cgroup's directory under `mount`, the walk's start: `path` made relative to what the mount shows. */
function ownDir(mount: string, root: string, path: string | null): string[] {
  const rel = root === "/" ? path : path === root || path?.startsWith(`${root}/`) ? path.slice(root.length) : null;
  return [mount, ...(rel ?? "").split("/").filter(Boolean)];
}

/** The tightest `file` (less `used`: what is left) from our cgroup up to the mount's root. */
function walkUp(parts: readonly string[], file: string, used?: string): number {
  let best = Infinity;
  for (let n = parts.length; n >= 1; n--) {
    const dir = parts.slice(0, n).join("/");
    const limit = value(`${dir}/${file}`);
    if (limit === Infinity) continue;
    const current = used ? value(`${dir}/${used}`) : 0;
    best = Math.min(best, Math.max(0, limit - (current === Infinity ? 0 : current)));
  }
  return best;
}

/**
 * Our own cgroup for `controller`: its directory as path parts (the mount first), and
 * which cgroup version shows it; null when neither does.
 */
export function cgroupOf(controller: string): { parts: string[]; version: 1 | 2 } | null {
  if (read("/sys/fs/cgroup/cgroup.controllers") !== null) return { parts: ownDir("/sys/fs/cgroup", "/", ownCgroup(null)), version: 2 };
  const v1 = v1Mount(controller);
  return v1 ? { parts: ownDir(v1.mount, v1.root, ownCgroup(controller)), version: 1 } : null;
}

function cgroupLimit(controller: string, v2file: string, v1file: string, used?: string): number {
  const own = cgroupOf(controller);
  return own ? walkUp(own.parts, own.version === 2 ? v2file : v1file, used) : Infinity;
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

/**
 * A memory need in MiB: `warm` when the file's pages are in the page cache, growing to
 * `cold` as they are not, the stub's rule (src/native/stub.c, limit_memory): `pages` of
 * the runtime's code sampled, `resident` of them cached. A start touches only part of
 * the code, so LIMIT_MEMORY_RESIDENT_PERCENT of it cached counts as all it needs.
 */
export function memoryNeed(warm: number, cold: number, pages: number, resident: number): number {
  const have = resident * 100;
  const full = pages * LIMIT.LIMIT_MEMORY_RESIDENT_PERCENT;
  return have >= full ? warm : warm + Math.ceil(((cold - warm) * (full - have)) / full);
}

const AT_PAGESZ = 6;
const STRIDE = 256 * 1024; // the stub's RESIDENCY_STRIDE

/**
 * How much of the runtime's code was in the page cache before it started. The single
 * file's stub sampled it then, and that is the figure that counts: by now this start has
 * read what it needed, so a sample taken here would call a cold start warm and let
 * services mode (a second VM, output bursts) thrash where its cold need applies. The
 * plain file has no stub: its sample, taken here from its own mappings, sees the pages
 * this start just read, so in practice it applies the warm need; the runtime's cold start
 * itself cannot be checked in that file (the README says so).
 */
export function fileResidency(): { pages: number; resident: number } {
  const measured = startResidency();
  if (measured) return measured;
  const page = getauxval(AT_PAGESZ) || 4096;
  const self = read("/proc/self/maps") ?? "";
  let exe: string | null = null;
  try {
    exe = nodeFs().readlinkSync("/proc/self/exe");
  } catch {}
  let pages = 0;
  let resident = 0;
  for (const line of self.split("\n")) {
    // "START-END PERMS OFFSET DEV INODE PATH": our file's executable mappings, the runtime's code.
    const m = /^([0-9a-f]+)-([0-9a-f]+) ..x. \S+ \S+ [1-9]\d* +(.*)$/.exec(line);
    if (!m || m[3] !== exe) continue;
    const end = parseInt(m[2]!, 16);
    for (let at = parseInt(m[1]!, 16); at < end; at += Math.max(STRIDE, page)) {
      pages++;
      if (pageCached(at, page)) resident++;
    }
  }
  return { pages, resident };
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
export function checkServicesLimits(
  memory = memoryLimit(),
  tasks = tasksLeft(),
  as = addressSpaceLimit(),
  residency: () => { pages: number; resident: number } = fileResidency,
): LimitCheck {
  const warm = LIMIT.LIMIT_MEMORY_SERVICES_WARM_MIB;
  const cold = LIMIT.LIMIT_MEMORY_SERVICES_COLD_MIB;
  const near = 1 + LIMIT.LIMIT_MEMORY_NEAR_PERCENT / 100;
  // Far above the cold need, nothing to measure (the stub did not either).
  const file = memory < cold * MIB * near ? residency() : null;
  const floor = file && file.pages ? memoryNeed(warm, cold, file.pages, file.resident) : warm;
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
    const why = floor > warm ? ` to start while its file is not in the page cache (${warm} MiB once it is)` : "";
    return { fatal: `the container's memory limit (${mib} MiB) is below the ${floor} MiB services mode needs${why}`, warnings: [] };
  }
  if (tasks + 1 < LIMIT.LIMIT_TASKS_SERVICES) {
    const room = tasks + 1;
    return {
      fatal: `the container's pids limit leaves room for ${room} ${room === 1 ? "task" : "tasks"}, below the ${LIMIT.LIMIT_TASKS_SERVICES} services mode needs (its runtime's threads and a service)`,
      warnings: [],
    };
  }
  const warnings: string[] = [];
  if (memory < floor * MIB * near) {
    warnings.push(`the container's memory limit (${mib} MiB) is close to the ${floor} MiB services mode needs: it may run out of memory`);
  }
  return { fatal: null, warnings };
}
