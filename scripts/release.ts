// npm run release: the files of a GitHub release, in dist/release/:
//   pidone-amd64, pidone-arm64              single files that run in any image (FROM scratch too)
//   pidone-amd64-glibc, pidone-arm64-glibc  the plain Bun executables, for glibc images only
//   pidone-amd64-image.tar, pidone-arm64-image.tar  FROM scratch images with /pidone and /pause (docker load)
//   <file>.spdx.json                        an SPDX 2.3 SBOM beside each of those
//   SHA256SUMS, and a <file>.sha256 beside each executable and image, in sha256sum's format
//   <file>.asc, pidone-signing-key.{asc,gpg}  with PIDONE_SIGNING_KEY: GPG signatures, the public key
//
//   bun scripts/release.ts [--out dist/release] [--arch amd64,arm64] [--allow-unlocked]
//   bun scripts/release.ts --update-lock
//
// Its inputs are pinned in scripts/release/lock.json (scripts/release/lock.ts): Debian's
// libc6 of one version for both architectures, and Bun's target runtimes; a release
// with any other fails. --allow-unlocked (the tests) builds with the archive's current
// libc6 once Debian has dropped the lock's, with a warning.
//
// Each architecture is one scripts/build.ts run (compile with Bun, then pack with
// scripts/pack/); amd64 uses Bun's baseline target, which runs without AVX2.
// Needs gcc, apt-get and npm, and for arm64 on an amd64 machine gcc-aarch64-linux-gnu.
// If qemu-aarch64-static is installed, the arm64 files are smoke-tested with it too.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ARCH_INFO, hostArch, parseArch, type Arch } from "./pack/arch.ts";
import { Elf, PT_INTERP } from "./pack/elf.ts";
import { releaseInputs, updateLockCommand, type ReleaseInputs } from "./release/lock.ts";
import { imageFileName, writeImage } from "./release/image.ts";
import { releaseMeta } from "./release/meta.ts";
import { writeSboms } from "./release/sbom.ts";
import { KEYRING, PUBLIC_KEY, signRelease } from "./release/sign.ts";

const root = resolve(new URL("..", import.meta.url).pathname);
const { values } = parseArgs({
  options: {
    out: { type: "string", default: "dist/release" },
    arch: { type: "string", default: "amd64,arm64" },
    "update-lock": { type: "boolean" },
    "allow-unlocked": { type: "boolean" },
  },
});
const outDir = resolve(root, values.out!);
const arches = [...new Set(values.arch!.split(",").map((a) => parseArch(a.trim())))];

function fail(message: string): never {
  console.error(`release: ${message}`);
  process.exit(1);
}

/** The lock's and the fetchers' failures are one line each. */
function locked<T>(get: () => T): T {
  try {
    return get();
  } catch (e) {
    if (e instanceof Error && (e.name === "LockError" || e.name === "FetchError")) fail(e.message);
    throw e;
  }
}

function isPacked(path: string): boolean {
  return !new Elf(new Uint8Array(readFileSync(path)), path).phdrs.some((p) => p.type === PT_INTERP);
}

function onPath(name: string): boolean {
  return Bun.spawnSync(["sh", "-c", `command -v ${name}`]).success;
}

/** How to run a file of `arch` here, or null when this machine cannot. */
function runner(arch: Arch, packed: boolean): string[] | null {
  if (arch === hostArch()) return [];
  const qemu = arch === "arm64" ? "qemu-aarch64-static" : "qemu-x86_64-static";
  if (!onPath(qemu)) return null;
  // The single file needs nothing from a sysroot; the plain one needs the unpacked libc6.
  return packed ? [qemu] : [qemu, "-L", inputs.libc6.roots[arch]!];
}

function smokeTest(path: string, arch: Arch, packed: boolean): string {
  const prefix = runner(arch, packed);
  if (!prefix) return "not run (no qemu here)";
  const r = Bun.spawnSync([...prefix, path, "--version"], { stdout: "pipe", stderr: "pipe" });
  const line = r.stdout.toString().trim();
  if (!r.success || !/^pidone version \S+ - git\.[0-9a-f]{7}$/.test(line))
    fail(`${basename(path)} --version failed (exit ${r.exitCode}): ${line}${r.stderr.toString()}`);
  return line;
}

if (values["update-lock"]) {
  locked(updateLockCommand);
  process.exit(0);
}
const inputs: ReleaseInputs = locked(() => releaseInputs(arches, values["allow-unlocked"] ? "prefer" : "strict"));
process.on("exit", () => inputs.libc6.dispose());
for (const line of inputs.describe()) console.log(`input: ${line}`);

mkdirSync(outDir, { recursive: true });
for (const stale of ["SHA256SUMS", PUBLIC_KEY, KEYRING]) rmSync(join(outDir, stale), { force: true });
for (const name of readdirSync(outDir)) if (name.endsWith(".asc")) rmSync(join(outDir, name));

const files: string[] = [];
for (const arch of arches) {
  const single = join(outDir, `pidone-${arch}`);
  const plain = `${single}-glibc`;
  const started = performance.now();
  // build.ts takes its output relative to the repository.
  const r = Bun.spawnSync(
    [process.execPath, "scripts/build.ts", "--target", ARCH_INFO[arch].bunTarget, "--outfile", relative(root, single),
      "--libc6", inputs.libc6.roots[arch]!, "--runtime", inputs.runtimes[arch].path],
    { cwd: root, stdout: "inherit", stderr: "inherit" },
  );
  if (!r.success) fail(`building ${arch} failed`);
  if (!existsSync(single) || !existsSync(plain)) fail(`scripts/build.ts did not write ${basename(single)} and ${basename(plain)}`);
  if (!isPacked(single)) fail(`${basename(single)} is not packed`);
  if (isPacked(plain)) fail(`${basename(plain)} should be the plain executable`);
  console.log(`${arch}: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`  ${basename(single)}: ${smokeTest(single, arch, true)}`);
  console.log(`  ${basename(plain)}: ${smokeTest(plain, arch, false)}`);
  files.push(single, plain);
}

const glibc = locked(() => inputs.check(files.filter((f) => !f.endsWith("-glibc"))));
console.log(`glibc: every single file carries libc6 ${glibc}`);
// Per architecture: the image to COPY --from, and an SBOM beside each file.
try {
  const meta = releaseMeta(root);
  for (const arch of arches) {
    const image = writeImage(meta, arch, join(outDir, `pidone-${arch}`), join(outDir, imageFileName(arch)));
    console.log(`${basename(image.path)}: ${image.tag}, ${image.id}`);
    files.push(image.path, ...writeSboms(root, meta, outDir, arch, image.path));
  }
} catch (e) {
  fail((e as Error).message);
}

const sums: string[] = [];
for (const file of files) {
  const line = `${createHash("sha256").update(readFileSync(file)).digest("hex")}  ${basename(file)}\n`;
  if (!file.endsWith(".spdx.json")) writeFileSync(`${file}.sha256`, line);
  sums.push(line);
}
writeFileSync(join(outDir, "SHA256SUMS"), sums.join(""));
let signed: ReturnType<typeof signRelease> = null;
try {
  signed = signRelease(outDir, [...files, join(outDir, "SHA256SUMS")]);
} catch (e) {
  fail(`signing failed: ${(e as Error).message}`);
}

console.log(`\n${relative(process.cwd(), outDir) || "."}:`);
for (const file of files) console.log(`  ${basename(file).padEnd(34)} ${(statSync(file).size / 1e6).toFixed(1).padStart(6)} MB`);
console.log("  SHA256SUMS, *.sha256");
if (signed) console.log(`  *.asc, ${PUBLIC_KEY}, ${KEYRING}: signed by ${signed.fingerprint}`);
