// Fetching the single file's inputs with their ordinary clients, into a cache shared by
// every build on this machine: Debian's libc6 for both architectures (apt, with both
// architectures' package lists kept apart from the system's, so the machine's own apt
// and dpkg never learn about arm64) and Bun's target runtimes (npm pack).
// The policy - which versions, checked against what - is scripts/release/lock.ts's.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ARCHES, hostArch, type Arch } from "./arch.ts";

export class FetchError extends Error {
  override name = "FetchError";
}

/** $PIDONE_CACHE, or pidone/ in the user's cache directory. */
export function cacheDir(...sub: string[]): string {
  const base =
    process.env.PIDONE_CACHE ||
    join(process.env.XDG_CACHE_HOME || (process.env.HOME ? join(process.env.HOME, ".cache") : join(homedir() || tmpdir(), ".cache")), "pidone");
  const dir = join(base, ...sub);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** npm's integrity string (Subresource Integrity, sha512). */
export function integrity(bytes: Uint8Array): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

interface Ran {
  ok: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
}

function runTool(cmd: string[], cwd?: string): Ran {
  let r: ReturnType<typeof Bun.spawnSync>;
  try {
    r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" } });
  } catch (e) {
    // A missing tool is a failed run: the callers say what it was for.
    return { ok: false, code: null, stdout: "", stderr: `${cmd[0]} cannot be run here (${(e as Error).message})` };
  }
  return { ok: r.success, code: r.exitCode, stdout: r.stdout?.toString() ?? "", stderr: r.stderr?.toString() ?? "" };
}

function lastLine(text: string): string {
  return text.trim().split("\n").filter(Boolean).at(-1) ?? "";
}

// ------------------------------------------------------------------ Debian's libc6

/** apt's options for the private package lists that carry both architectures. */
function aptOptions(): string[] {
  const dir = cacheDir("apt");
  mkdirSync(join(dir, "lists", "partial"), { recursive: true });
  mkdirSync(join(dir, "cache", "archives", "partial"), { recursive: true });
  return [
    "-q",
    "-o", `Dir::State::Lists=${join(dir, "lists")}`,
    "-o", `Dir::Cache=${join(dir, "cache")}`,
    // No binary caches on disk: concurrent builds would race to rewrite them.
    "-o", "Dir::Cache::pkgcache=",
    "-o", "Dir::Cache::srcpkgcache=",
    ...ARCHES.flatMap((a) => ["-o", `APT::Architectures::=${a}`]),
    // The lists belong to whoever runs the build; apt's _apt user could not write them.
    "-o", "APT::Sandbox::User=root",
  ];
}

let updated: Ran | null = null;

/**
 * Refreshes the private lists from the system's sources, once per process. apt refuses a
 * second update on the same lists at once, so concurrent builds queue on a lock file.
 */
export function aptUpdate(): void {
  if (updated) return;
  const lock = join(cacheDir("apt"), "update.lock");
  updated = runTool(["flock", "-w", "300", lock, "apt-get", ...aptOptions(), "update"]);
  index = null;
  // A failing third-party source fails the whole update; what counts is whether
  // libc6 is known afterwards (the callers say so, quoting this line).
}

/** What went wrong in the last update, for a message about a libc6 that apt does not know. */
export function aptTrouble(): string {
  if (!updated || updated.ok) return "";
  return ` (apt-get update: ${lastLine(updated.stderr) || `exit ${updated.code}`})`;
}

interface Libc6Index {
  /** The version apt would take, or null. */
  candidate: string | null;
  /** The versions some source offers (not only dpkg's record of an installed one). */
  offered: Set<string>;
}

let index: Record<Arch, Libc6Index> | null = null;

/** What the private lists say of libc6 for each architecture (one apt-cache run: each parses every list). */
function libc6Index(): Record<Arch, Libc6Index> {
  if (index) return index;
  const r = runTool(["apt-cache", ...aptOptions(), "policy", ...ARCHES.map((a) => `libc6:${a}`)]);
  const result = Object.fromEntries(ARCHES.map((a) => [a, { candidate: null, offered: new Set<string>() }])) as Record<Arch, Libc6Index>;
  let arch: Arch | undefined;
  let version = "";
  for (const line of r.stdout.split("\n")) {
    // libc6:arm64:  /  Candidate: V  /  " *** V 500" (a version)  /  "   500 http://… Packages" (its sources)
    const head = /^libc6(?::(\w+))?:$/.exec(line);
    if (head) {
      // apt leaves the native architecture unqualified.
      arch = (head[1] ?? hostArch()) as Arch;
      version = "";
      continue;
    }
    if (!arch || !result[arch]) continue;
    const cand = /^\s+Candidate:\s*(\S+)/.exec(line);
    if (cand) result[arch].candidate = cand[1] === "(none)" ? null : cand[1]!;
    const ver = /^\s+(?:\*\*\* )?(\S+) -?\d+$/.exec(line);
    if (ver) version = ver[1]!;
    else if (version && /^\s+-?\d+ \S+:\/\//.test(line)) result[arch].offered.add(version);
  }
  return (index = result);
}

/** The version apt would take for libc6:arch, or null. */
export function libc6Candidate(arch: Arch): string | null {
  return libc6Index()[arch].candidate;
}

/** Whether the archive (as the private lists last saw it) has this libc6. */
export function libc6InArchive(version: string, arch: Arch): boolean {
  return libc6Index()[arch].offered.has(version);
}

/** The .deb's file name as apt-get download writes it (an epoch's colon is escaped). */
export function libc6DebName(version: string, arch: Arch): string {
  return `libc6_${version.replace(/:/g, "%3a")}_${arch}.deb`;
}

/** The cached .deb, or null. */
export function cachedLibc6(version: string, arch: Arch): string | null {
  const path = join(cacheDir("libc6"), libc6DebName(version, arch));
  return existsSync(path) ? path : null;
}

/** Downloads libc6:arch=version into the cache (apt checks it against the signed lists). */
export function downloadLibc6(version: string, arch: Arch): string {
  const dir = cacheDir("libc6");
  const work = mkdtempSync(join(dir, ".download-"));
  try {
    const r = runTool(["apt-get", ...aptOptions(), "download", `libc6:${arch}=${version}`], work);
    const name = libc6DebName(version, arch);
    if (!r.ok || !existsSync(join(work, name)))
      throw new FetchError(`apt-get download libc6:${arch}=${version} failed: ${lastLine(r.stderr) || `exit ${r.code}`}${aptTrouble()}`);
    // Atomic: a concurrent build sees the whole file or none.
    renameSync(join(work, name), join(dir, name));
    return join(dir, name);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Unpacks a .deb into a new directory under `parent` (the caller removes it). */
export function extractDeb(deb: string, parent: string): string {
  const dir = mkdtempSync(join(parent, "libc6-"));
  const r = runTool(["dpkg-deb", "-x", deb, dir]);
  if (!r.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new FetchError(`dpkg-deb -x ${deb} failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
  }
  return dir;
}

// ------------------------------------------------------------------ Bun's runtimes

/**
 * The npm package's tarball, fetched with `npm pack` into a new directory: its bytes, and
 * the integrity the registry gave for it (npm has checked the bytes against it).
 */
export function npmPack(spec: string): { tgz: Uint8Array; registryIntegrity: string } {
  const work = mkdtempSync(join(cacheDir("bun"), ".pack-"));
  try {
    // The cache directory as cwd: the project's .npmrc is not the place to look for it.
    const r = runTool(["npm", "pack", "--json", "--silent", "--pack-destination", work, spec], work);
    if (!r.ok) throw new FetchError(`npm pack ${spec} failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
    let info: { filename?: string; integrity?: string }[];
    try {
      info = JSON.parse(r.stdout);
    } catch {
      throw new FetchError(`npm pack ${spec} printed no JSON: ${lastLine(r.stdout)}`);
    }
    const { filename, integrity: registryIntegrity } = info[0] ?? {};
    if (!filename || !registryIntegrity) throw new FetchError(`npm pack ${spec} named no file or integrity`);
    return { tgz: new Uint8Array(readFileSync(join(work, filename))), registryIntegrity };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Writes `package/bin/bun` of a runtime's tarball to `dest`, atomically. */
export function extractBun(tgz: Uint8Array, dest: string): void {
  const work = mkdtempSync(join(cacheDir("bun"), ".extract-"));
  try {
    const archive = join(work, "runtime.tgz");
    writeFileSync(archive, tgz);
    const r = runTool(["tar", "-xzf", archive, "-C", work, "package/bin/bun"]);
    if (!r.ok) throw new FetchError(`the runtime's tarball has no package/bin/bun: ${lastLine(r.stderr)}`);
    renameSync(join(work, "package/bin/bun"), dest);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
