// What every release file's metadata derives from: the package's version, the commit, its
// time (SOURCE_DATE_EPOCH) and the repository's address. Nothing here reads the clock, the
// checkout's path or the remote's name, so two clones of one commit describe it alike.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface ReleaseMeta {
  version: string;
  /** The full commit id. */
  commit: string;
  /** Seconds since the epoch: SOURCE_DATE_EPOCH, or the commit's time. */
  epoch: number;
  /** https://github.com/OWNER/pidone (package.json's repository, or the placeholder). */
  sourceUrl: string;
  /** ghcr.io/OWNER/pidone */
  imageName: string;
  license: string;
}

function git(root: string, args: string[]): string {
  const r = Bun.spawnSync(["git", "-C", root, ...args], { stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error(`git ${args.join(" ")} failed: ${r.stderr.toString().trim()}`);
  return r.stdout.toString().trim();
}

export function releaseMeta(root: string): ReleaseMeta {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const commit = git(root, ["rev-parse", "HEAD"]);
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && !/^\d+$/.test(env)) throw new Error(`SOURCE_DATE_EPOCH must be a number of seconds, not "${env}"`);
  const epoch = Number(env ?? git(root, ["log", "-1", "--format=%ct", "HEAD"]));
  const repo = typeof pkg.repository === "string" ? pkg.repository : pkg.repository?.url;
  const m = /github\.com[/:]([\w.-]+\/[\w.-]+?)(\.git)?$/.exec(repo ?? "");
  const slug = m?.[1] ?? "OWNER/pidone";
  return {
    version: pkg.version,
    commit,
    epoch,
    sourceUrl: `https://github.com/${slug}`,
    imageName: `ghcr.io/${slug.toLowerCase()}`,
    license: pkg.license,
  };
}

/** SOURCE_DATE_EPOCH as ISO 8601 UTC, to the second. */
export function isoDate(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** scripts/release/lock.json: the pinned libc6 and Bun runtimes (absent: read from the files). */
export interface ReleaseLock {
  libc6?: { version: string; debs: Partial<Record<string, { file: string; sha256: string }>> };
  bun?: {
    version: string;
    runtimes: Partial<Record<string, { target: string; package: string; integrity: string; sha256: string }>>;
  };
}

export function readLock(root: string): ReleaseLock | null {
  const path = join(root, "scripts/release/lock.json");
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as ReleaseLock) : null;
}
