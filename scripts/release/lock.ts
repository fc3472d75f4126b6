// The single file's pinned inputs, scripts/release/lock.json: the Debian libc6 version
// whose ld.so and C libraries both architectures carry (with each .deb's sha256), and the
// Bun target runtimes `bun build --compile` turns into the executables (with the npm
// tarball's integrity and the executable's sha256).
//
// Two modes. "strict" (npm run release): the lock's versions, byte for byte, or a failure
// that says how to update the lock. "prefer" (every other build, the tests, CI): the
// lock's versions while they can be had; once Debian's archive has moved past the lock's
// libc6 (it keeps only the current point release and security update), the archive's
// current libc6 for both architectures, with a warning - a newer glibc must not turn CI red.
// A sha256 or integrity that differs from the lock fails in both modes.
//
//   bun scripts/release/lock.ts            fetch and check every locked input (strict)
//   bun scripts/release/lock.ts --update   pin the archive's current libc6 and this Bun
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { ARCH_INFO, ARCHES, hostArch, type Arch } from "../pack/arch.ts";
import {
  aptTrouble,
  aptUpdate,
  cacheDir,
  cachedLibc6,
  downloadLibc6,
  extractBun,
  extractDeb,
  integrity,
  libc6Candidate,
  libc6DebName,
  libc6InArchive,
  npmPack,
  sha256,
} from "../pack/fetch.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
export const LOCK_PATH = join(ROOT, "scripts/release/lock.json");
export const UPDATE_HINT = "run `bun scripts/release.ts --update-lock`, then review and commit scripts/release/lock.json";

export interface DebPin {
  file: string;
  sha256: string;
}
export interface RuntimePin {
  target: string;
  package: string;
  integrity: string;
  sha256: string;
}
export interface Lock {
  libc6: { version: string; debs: Record<Arch, DebPin> };
  bun: { version: string; runtimes: Record<Arch, RuntimePin> };
}

export type LockMode = "strict" | "prefer";

export class LockError extends Error {
  override name = "LockError";
}

const SHA256 = /^[0-9a-f]{64}$/;
const SHA512 = /^sha512-[A-Za-z0-9+/]{86}==$/;

/** The lock, its shape checked: every architecture, every hash well formed. */
export function readLock(path = LOCK_PATH): Lock {
  let lock: Lock;
  try {
    lock = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new LockError(`${path}: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new LockError(`${path}: ${what}; ${UPDATE_HINT}`);
  };
  if (typeof lock?.libc6?.version !== "string" || !/^[0-9][\w.:~+-]*$/.test(lock.libc6.version)) bad("libc6.version is missing");
  if (typeof lock?.bun?.version !== "string" || !/^\d+\.\d+\.\d+/.test(lock.bun.version)) bad("bun.version is missing");
  for (const arch of ARCHES) {
    const deb = lock.libc6.debs?.[arch];
    if (deb?.file !== libc6DebName(lock.libc6.version, arch)) bad(`libc6.debs.${arch}.file is not ${libc6DebName(lock.libc6.version, arch)}`);
    if (!SHA256.test(deb.sha256)) bad(`libc6.debs.${arch}.sha256 is not a sha256`);
    const rt = lock.bun.runtimes?.[arch];
    const info = ARCH_INFO[arch];
    if (rt?.target !== info.bunTarget || rt.package !== info.bunPackage)
      bad(`bun.runtimes.${arch} is not ${info.bunTarget} (${info.bunPackage}), which scripts/pack/arch.ts builds`);
    if (!SHA512.test(rt.integrity)) bad(`bun.runtimes.${arch}.integrity is not an npm sha512 integrity`);
    if (!SHA256.test(rt.sha256)) bad(`bun.runtimes.${arch}.sha256 is not a sha256`);
  }
  return lock;
}

function say(line: string): void {
  console.warn(`warning: ${line}`);
}

// ------------------------------------------------------------------ libc6

export interface Libc6 {
  /** Debian's version of libc6, the same for every architecture. */
  version: string;
  /** The lock's version (checked against its sha256s), or a stand-in (prefer mode only). */
  fromLock: boolean;
  /** Each architecture's unpacked .deb ("/" for the host's own libraries, the last resort). */
  roots: Partial<Record<Arch, string>>;
  /** Removes the unpacked files. */
  dispose(): void;
}

function unpack(version: string, fromLock: boolean, debs: Partial<Record<Arch, string>>): Libc6 {
  const parent = mkdtempSync(join(tmpdir(), "pidone-libc6-"));
  const roots: Partial<Record<Arch, string>> = {};
  try {
    for (const [arch, deb] of Object.entries(debs) as [Arch, string][]) roots[arch] = extractDeb(deb, parent);
  } catch (e) {
    rmSync(parent, { recursive: true, force: true });
    throw e;
  }
  return { version, fromLock, roots, dispose: () => rmSync(parent, { recursive: true, force: true }) };
}

function checkDeb(path: string, pin: DebPin): void {
  const got = sha256(readFileSync(path));
  if (got !== pin.sha256)
    throw new LockError(
      `${pin.file} has sha256 ${got}, the lock says ${pin.sha256}: not the file the lock was made from ` +
        `(delete ${path} to fetch it again; if the archive serves these bytes, the lock is wrong: ${UPDATE_HINT})`,
    );
}

/**
 * The libc6 of `arches`, unpacked: all from one Debian version, in the lock's or (prefer
 * mode, once the archive has dropped it) the archive's current one.
 */
export function libc6For(arches: readonly Arch[], mode: LockMode, lock: Lock = readLock()): Libc6 {
  const { version } = lock.libc6;
  // The cache keeps every .deb it fetched: a locked version stays buildable here after
  // the archive has dropped it.
  if (!arches.every((a) => cachedLibc6(version, a))) aptUpdate();
  if (arches.every((a) => cachedLibc6(version, a) || libc6InArchive(version, a))) {
    const debs: Partial<Record<Arch, string>> = {};
    for (const arch of arches) {
      const path = cachedLibc6(version, arch) ?? downloadLibc6(version, arch);
      checkDeb(path, lock.libc6.debs[arch]);
      debs[arch] = path;
    }
    return unpack(version, true, debs);
  }

  // Every architecture's current version, to keep the two in step even when one is built.
  const current = ARCHES.map((a) => libc6Candidate(a));
  const now = current.every((c) => c && c === current[0]) ? current[0]! : null;
  const moved = current.some(Boolean);
  const gone = moved
    ? `libc6 ${version}, which scripts/release/lock.json pins, is no longer in Debian's archive (it now has ${ARCHES.map((a, i) => `${a} ${current[i] ?? "none"}`).join(", ")})`
    : `libc6 ${version}, which scripts/release/lock.json pins, is not cached and apt offers no libc6${aptTrouble()}`;
  if (mode === "strict") throw new LockError(`${gone}: ${moved ? UPDATE_HINT : "check apt's sources and the network"}`);
  if (now) {
    say(`${gone}: this build carries libc6 ${now} instead (a release needs the lock: ${UPDATE_HINT})`);
    const debs: Partial<Record<Arch, string>> = {};
    for (const arch of arches) debs[arch] = cachedLibc6(now, arch) ?? downloadLibc6(now, arch);
    return unpack(now, false, debs);
  }
  // No apt, or no network: the host's own glibc still makes a working file for this machine.
  if (arches.length === 1 && arches[0] === hostArch()) {
    const own = glibcVersionsIn(readFileSync(join("/lib", ARCH_INFO[hostArch()].triple, "libc.so.6")))[0] ?? "unknown";
    say(`${gone}: this build carries this machine's own glibc (${own})`);
    return { version: own, fromLock: false, roots: { [hostArch()]: "/" }, dispose: () => {} };
  }
  throw new LockError(`${gone}: no one libc6 for ${arches.join(" and ")}`);
}

/** Whether the lock's libc6 can still be had here (cached, or in the archive). */
export function lockedLibc6Available(): boolean {
  const { version } = readLock().libc6;
  if (ARCHES.every((a) => cachedLibc6(version, a))) return true;
  aptUpdate();
  return ARCHES.every((a) => cachedLibc6(version, a) || libc6InArchive(version, a));
}

/** The Debian glibc versions named in these bytes: "(Debian GLIBC 2.36-9+deb12u13)" of ld.so and libc. */
export function glibcVersionsIn(bytes: Uint8Array): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const found = new Set<string>();
  const mark = "(Debian GLIBC ";
  for (let at = buf.indexOf(mark, 0, "latin1"); at >= 0; at = buf.indexOf(mark, at + 1, "latin1")) {
    const end = buf.indexOf(")", at, "latin1");
    if (end > at && end - at < 80) found.add(buf.toString("latin1", at + mark.length, end));
  }
  return [...found];
}

/** The one libc6 version a single file carries (its ld.so and libc must agree). */
export function embeddedLibc6(path: string): string {
  const found = glibcVersionsIn(new Uint8Array(readFileSync(path)));
  if (found.length !== 1) throw new LockError(`${basename(path)} names ${found.length ? `several glibc versions (${found.join(", ")})` : "no Debian glibc version"}`);
  return found[0]!;
}

/** The single files all carry one libc6 (and the lock's, when `expected` is given). */
export function checkEmbeddedLibc6(files: string[], expected?: string): string {
  const versions = files.map((f) => [basename(f), embeddedLibc6(f)] as const);
  const first = versions[0]?.[1] ?? "";
  if (versions.some(([, v]) => v !== first)) throw new LockError(`the single files carry different glibc: ${versions.map(([f, v]) => `${f} ${v}`).join(", ")}`);
  if (expected && first !== expected) throw new LockError(`the single files carry libc6 ${first}, the lock pins ${expected}`);
  return first;
}

// ------------------------------------------------------------------ Bun's runtimes

export interface Runtime {
  path: string;
  sha256: string;
  fromLock: boolean;
}

function runtimePath(pkg: string, version: string): string {
  return join(cacheDir("bun"), `${pkg.replace(/^@oven\//, "")}-${version}`);
}

/** Fetches `pkg@version` to the cache (npm checks the tarball against the registry's integrity). */
function fetchRuntime(pkg: string, version: string, pin?: RuntimePin): string {
  const dest = runtimePath(pkg, version);
  const { tgz, registryIntegrity } = npmPack(`${pkg}@${version}`);
  const got = integrity(tgz);
  const want = pin?.integrity ?? registryIntegrity;
  if (got !== want) throw new LockError(`${pkg}@${version}: the tarball's integrity is ${got}, ${pin ? "the lock says" : "the registry says"} ${want}${pin ? `: ${UPDATE_HINT} only if that change is expected` : ""}`);
  extractBun(tgz, dest);
  writeFileSync(`${dest}.integrity`, got);
  return dest;
}

/** The cached runtime came from a tarball of this integrity (written once it was checked). */
function cachedFrom(path: string, want: string): boolean {
  return existsSync(path) && existsSync(`${path}.integrity`) && readFileSync(`${path}.integrity`, "utf8") === want;
}

/** The Bun runtime `bun build --compile --target` uses for `arch`, checked against the lock. */
export function runtimeFor(arch: Arch, mode: LockMode): Runtime {
  const lock = readLock();
  const pin = lock.bun.runtimes[arch];
  if (lock.bun.version !== Bun.version) {
    const differs = `Bun ${Bun.version} compiles this build, scripts/release/lock.json pins Bun ${lock.bun.version}`;
    if (mode === "strict") throw new LockError(`${differs}: ${UPDATE_HINT}`);
    say(`${differs}: this build takes ${pin.package}@${Bun.version} as the registry has it (${UPDATE_HINT})`);
    const path = existsSync(runtimePath(pin.package, Bun.version)) ? runtimePath(pin.package, Bun.version) : fetchRuntime(pin.package, Bun.version);
    return { path, sha256: sha256(readFileSync(path)), fromLock: false };
  }
  let path = runtimePath(pin.package, lock.bun.version);
  if (!cachedFrom(path, pin.integrity) || sha256(readFileSync(path)) !== pin.sha256) path = fetchRuntime(pin.package, lock.bun.version, pin);
  const got = sha256(readFileSync(path));
  if (got !== pin.sha256) {
    rmSync(`${path}.integrity`, { force: true });
    throw new LockError(`${pin.package}@${lock.bun.version}'s bun has sha256 ${got}, the lock says ${pin.sha256}: ${UPDATE_HINT} only if that change is expected`);
  }
  return { path, sha256: got, fromLock: true };
}

// ------------------------------------------------------------------ a release's inputs

export interface ReleaseInputs {
  mode: LockMode;
  libc6: Libc6;
  runtimes: Record<Arch, Runtime>;
  /** What the release was built from, one line per input. */
  describe(): string[];
  /** The single files carry one libc6, the lock's in strict mode; returns that version. */
  check(singles: string[]): string;
}

/** Every input of a release of `arches`, fetched and checked (scripts/release.ts). */
export function releaseInputs(arches: readonly Arch[], mode: LockMode): ReleaseInputs {
  const runtimes = {} as Record<Arch, Runtime>;
  for (const arch of arches) runtimes[arch] = runtimeFor(arch, mode);
  const libc6 = libc6For(arches, mode);
  return {
    mode,
    libc6,
    runtimes,
    describe: () => [
      `libc6 ${libc6.version}${libc6.fromLock ? " (locked)" : " (NOT the lock's: not a release)"}`,
      ...arches.map((a) => `${ARCH_INFO[a].bunTarget} sha256 ${runtimes[a].sha256}${runtimes[a].fromLock ? " (locked)" : " (NOT the lock's)"}`),
    ],
    check: (singles) => checkEmbeddedLibc6(singles, libc6.fromLock ? readLock().libc6.version : undefined),
  };
}

/** --update-lock: rewrites the lock and says what changed. */
export function updateLockCommand(): void {
  const { before, after } = updateLock();
  console.log(`scripts/release/lock.json: libc6 ${before?.libc6?.version ?? "-"} -> ${after.libc6.version}, Bun ${before?.bun?.version ?? "-"} -> ${after.bun.version}`);
  console.log("review the change and commit it with the release that uses it");
}

// ------------------------------------------------------------------ updating the lock

/** Pins the archive's current libc6 (the same for both architectures) and the Bun that runs this. */
export function updateLock(): { before: Lock | null; after: Lock } {
  const before = existsSync(LOCK_PATH) ? (JSON.parse(readFileSync(LOCK_PATH, "utf8")) as Lock) : null;
  aptUpdate();
  const current = ARCHES.map((a) => libc6Candidate(a));
  if (!current[0] || current.some((c) => c !== current[0]))
    throw new LockError(`apt offers libc6 ${ARCHES.map((a, i) => `${current[i] ?? "none"} for ${a}`).join(", ")}${aptTrouble()}: the lock needs one version for all (Debian mid-update? try again later)`);
  const version = current[0];
  const pinned = readFileSync(join(ROOT, "package.json"), "utf8");
  const bunPin = (JSON.parse(pinned) as { devDependencies?: Record<string, string> }).devDependencies?.bun;
  if (bunPin !== Bun.version) throw new LockError(`package.json pins bun ${bunPin}, but Bun ${Bun.version} runs this: npm ci first`);

  const debs = {} as Record<Arch, DebPin>;
  const runtimes = {} as Record<Arch, RuntimePin>;
  for (const arch of ARCHES) {
    const path = cachedLibc6(version, arch) ?? downloadLibc6(version, arch);
    debs[arch] = { file: libc6DebName(version, arch), sha256: sha256(readFileSync(path)) };
    const info = ARCH_INFO[arch];
    const { tgz, registryIntegrity } = npmPack(`${info.bunPackage}@${Bun.version}`);
    if (integrity(tgz) !== registryIntegrity) throw new LockError(`${info.bunPackage}@${Bun.version}: the tarball does not match the registry's integrity`);
    const dest = runtimePath(info.bunPackage, Bun.version);
    extractBun(tgz, dest);
    writeFileSync(`${dest}.integrity`, registryIntegrity);
    runtimes[arch] = { target: info.bunTarget, package: info.bunPackage, integrity: registryIntegrity, sha256: sha256(readFileSync(dest)) };
  }
  const after: Lock = { libc6: { version, debs }, bun: { version: Bun.version, runtimes } };
  writeFileSync(LOCK_PATH, `${JSON.stringify(after, null, 2)}\n`);
  return { before, after };
}

if (import.meta.main) {
  try {
    if (process.argv.includes("--update")) updateLockCommand();
    else {
      const libc6 = libc6For(ARCHES, "strict");
      libc6.dispose();
      const runtimes = ARCHES.map((a) => `${ARCH_INFO[a].bunTarget} ${runtimeFor(a, "strict").sha256}`);
      console.log(`lock: libc6 ${libc6.version} for ${ARCHES.join(", ")}; ${runtimes.join("; ")}: all as pinned`);
    }
  } catch (e) {
    if (!(e instanceof LockError) && (e as Error).name !== "FetchError") throw e;
    console.error(`lock: ${(e as Error).message}`);
    process.exit(1);
  }
}
