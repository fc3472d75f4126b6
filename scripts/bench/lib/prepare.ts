// Everything the benchmark needs before it measures: the Debian packages of the C inits,
// dist/pidone, the two Bun floors compiled with pidone's own build flags, and the C
// helpers compiled with gcc.
import { closeSync, existsSync, mkdtempSync, openSync, readSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../compile-flags.ts";
import { capture, mustRun } from "./proc.ts";

export const ROOT = new URL("../../..", import.meta.url).pathname.replace(/\/$/, "");
const BENCH = join(ROOT, "scripts/bench");

/** Command -> Debian package that provides it. */
const PACKAGES: Record<string, string> = {
  "/usr/bin/tini": "tini",
  "/usr/bin/tini-static": "tini",
  "/usr/bin/dumb-init": "dumb-init",
  "/usr/bin/catatonit": "catatonit",
  "/usr/bin/gcc": "gcc",
  "/usr/include/stdio.h": "libc6-dev",
  "/usr/bin/taskset": "util-linux",
};
const DOCKER_PACKAGES: Record<string, string> = {
  "/bin/busybox": "busybox-static",
  "/usr/bin/ldd": "libc-bin",
};

export async function ensurePackages(docker: boolean, say: (s: string) => void): Promise<void> {
  const wanted = { ...PACKAGES, ...(docker ? DOCKER_PACKAGES : {}) };
  const missing = [...new Set(Object.entries(wanted).filter(([f]) => !existsSync(f)).map(([, p]) => p))];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing packages ${missing.join(" ")}: run as root or install them`);
  say(`installing ${missing.join(" ")} with apt-get`);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", DEBIAN_FRONTEND: "noninteractive" };
  await mustRun(["apt-get", "update", "-qq"], { env, timeoutMs: 300_000 });
  await mustRun(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing], { env, timeoutMs: 600_000 });
}

/**
 * pidone's compile flags, read from scripts/build.ts so the floors can never drift from
 * them (the --define values and the target are pidone's alone).
 */
/** pidone's `bun build` flags (scripts/compile-flags.ts), for the floors. */
export function buildFlags(): string[] {
  return [...COMPILE_FLAGS];
}

export interface Built {
  /** dist/pidone: what `npm run build` makes (the packed single file once packing exists). */
  pidone: string;
  pidonePacked: boolean;
  /** dist/pidone-glibc, the plain Bun executable the single file is packed from (if any). */
  pidonePlain: string | null;
  /** The floors, compiled with pidone's flags, and packed as pidone is packed. */
  bunEmpty: string;
  bunForwarder: string;
  /** A Bun program that plays `exitlat child` and _exits: the teardown of a Bun process. */
  bunExit: string;
  /** The empty program unpacked: the floor of pidone-glibc (only when pidone is packed). */
  bunEmptyPlain: string | null;
  spawntime: string;
  /** Peak RSS of a short command, VmHWM at its exit (c/peakrss.c). */
  peakrss: string;
  siglat: string;
  exitlat: string;
  reapbench: string;
  /** A C init that forwards from a signal handler (c/handlerfwd.c): that design's floor. */
  handlerfwd: string;
  work: string;
}

/** Compiles a Bun program with pidone's flags (the floors, the memory-floor search). */
export async function compileBun(entry: string, out: string): Promise<void> {
  await mustRun([process.execPath, "build", ...buildFlags(), entry, "--outfile", out], { cwd: ROOT, timeoutMs: 180_000 });
}

/** A packed single file carries its own loader: no PT_INTERP program header. */
export function isPacked(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF64 only
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

type PackFn = (input: string, output: string) => unknown;
/** scripts/pack's packFile, when the packer exists. */
export async function packer(): Promise<PackFn | null> {
  const path = join(ROOT, "scripts/pack/index.ts");
  if (!existsSync(path)) return null;
  const mod = (await import(path)) as { packFile?: PackFn };
  return mod.packFile ?? null;
}

export async function prepare(say: (s: string) => void): Promise<Built> {
  const pidone = join(ROOT, "dist/pidone");
  if (!existsSync(pidone)) {
    say("dist/pidone is missing: building it");
    await mustRun([process.execPath, join(ROOT, "scripts/build.ts")], { cwd: ROOT, timeoutMs: 300_000 });
  }
  const pidonePacked = isPacked(pidone);
  const plain = join(ROOT, "dist/pidone-glibc");
  const work = mkdtempSync(join(tmpdir(), "pidone-bench-"));
  const out = (name: string) => join(work, name);
  const helpers = ["spawntime", "peakrss", "siglat", "exitlat", "reapbench", "handlerfwd"] as const;
  const floors = pidonePacked
    ? ["bun-empty-plain", "bun-forwarder-plain", "bun-exit-plain"]
    : ["bun-empty", "bun-forwarder", "bun-exit"];
  await Promise.all([
    compileBun(join(BENCH, "floors/empty.ts"), out(floors[0]!)),
    compileBun(join(BENCH, "floors/forwarder.ts"), out(floors[1]!)),
    compileBun(join(BENCH, "breakdown/bun-exit-child.ts"), out(floors[2]!)),
    ...helpers.map((h) =>
      mustRun(["gcc", "-O2", "-Wall", "-Wextra", "-pthread", "-o", out(h), join(BENCH, "c", `${h}.c`)]),
    ),
  ]);
  if (pidonePacked) {
    // The floors must start the way pidone starts: through the same stub and loader.
    const pack = await packer();
    if (!pack) throw new Error("dist/pidone is packed but scripts/pack/index.ts (packFile) is missing");
    say("packing the floors as dist/pidone is packed");
    pack(out("bun-empty-plain"), out("bun-empty"));
    pack(out("bun-forwarder-plain"), out("bun-forwarder"));
    pack(out("bun-exit-plain"), out("bun-exit"));
  }
  return {
    pidone,
    pidonePacked,
    pidonePlain: pidonePacked && existsSync(plain) ? plain : null,
    bunEmpty: out("bun-empty"),
    bunForwarder: out("bun-forwarder"),
    bunExit: out("bun-exit"),
    bunEmptyPlain: pidonePacked ? out("bun-empty-plain") : null,
    spawntime: out("spawntime"),
    peakrss: out("peakrss"),
    siglat: out("siglat"),
    exitlat: out("exitlat"),
    reapbench: out("reapbench"),
    handlerfwd: out("handlerfwd"),
    work,
  };
}

export function fileBytes(path: string): number {
  return statSync(path).size;
}

/** The first line an init prints for --version (dumb-init prints it on stderr). */
export async function versionOf(bin: string): Promise<string> {
  const r = await capture([bin, "--version"], { timeoutMs: 10_000 });
  return (r.stdout.trim() || r.stderr.trim()).split("\n")[0] ?? "";
}
