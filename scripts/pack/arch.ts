// The two release architectures: Bun's target and its npm package, the ELF machine, the
// cross compiler, and where the glibc pieces the packed file carries sit in Debian's libc6.
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { EM_AARCH64, EM_X86_64 } from "./elf.ts";

export type Arch = "amd64" | "arm64";
export const ARCHES: readonly Arch[] = ["amd64", "arm64"];

export interface ArchInfo {
  arch: Arch;
  machine: number;
  /** amd64 uses the baseline build: the default x64 one needs AVX2. */
  bunTarget: string;
  /** The npm package holding that target's runtime (what `bun build --compile` downloads). */
  bunPackage: string;
  /** Debian's multiarch triple. */
  triple: string;
  /** ld.so's file name (and the soname the runtime's DT_NEEDED uses for it). */
  ldso: string;
  /** Extra compiler flags: no CET/BTI notes, which only a loader would honour. */
  cflags: string[];
  /** Debian packages that provide the cross compiler when this is not the host. */
  crossPackages: string[];
}

export const ARCH_INFO: Record<Arch, ArchInfo> = {
  amd64: {
    arch: "amd64",
    machine: EM_X86_64,
    bunTarget: "bun-linux-x64-baseline",
    bunPackage: "@oven/bun-linux-x64-baseline",
    triple: "x86_64-linux-gnu",
    ldso: "ld-linux-x86-64.so.2",
    cflags: ["-fcf-protection=none"],
    crossPackages: ["gcc-x86-64-linux-gnu"],
  },
  arm64: {
    arch: "arm64",
    machine: EM_AARCH64,
    bunTarget: "bun-linux-arm64",
    bunPackage: "@oven/bun-linux-aarch64",
    triple: "aarch64-linux-gnu",
    ldso: "ld-linux-aarch64.so.1",
    cflags: ["-mbranch-protection=none", "-mgeneral-regs-only", "-mno-outline-atomics"],
    crossPackages: ["gcc-aarch64-linux-gnu"],
  },
};

export function hostArch(): Arch {
  if (process.arch === "x64") return "amd64";
  if (process.arch === "arm64") return "arm64";
  throw new Error(`unsupported host architecture ${process.arch}`);
}

export function parseArch(name: string): Arch {
  if (name === "amd64" || name === "x64" || name === "x86_64") return "amd64";
  if (name === "arm64" || name === "aarch64") return "arm64";
  throw new Error(`unknown architecture ${name} (use amd64 or arm64)`);
}

/** The C compiler for `arch`: the host's gcc, or Debian's cross gcc. */
export function compilerFor(arch: Arch): string {
  return arch === hostArch() ? "gcc" : `${ARCH_INFO[arch].triple}-gcc`;
}

export function archOfTarget(target: string): Arch | undefined {
  return ARCHES.find((a) => ARCH_INFO[a].bunTarget === target);
}

/**
 * The directory holding libc.so.6 and ld.so for `arch` under `root`: an unpacked libc6
 * .deb of that architecture (scripts/release/lock.ts), or "/" for the host's own.
 */
export function libraryDir(arch: Arch, root: string): string {
  const { triple, ldso } = ARCH_INFO[arch];
  const candidates = [join(root, "lib", triple), join(root, "usr/lib", triple)];
  for (const dir of candidates) if (existsSync(join(dir, ldso)) && existsSync(join(dir, "libc.so.6"))) return dir;
  throw new Error(`no glibc for ${arch} in ${candidates.join(" or ")}`);
}

/** A library's real file (Debian's names are often symlinks). */
export function libraryPath(arch: Arch, root: string, name: string): string {
  const path = join(libraryDir(arch, root), name);
  if (!existsSync(path)) throw new Error(`${path} is missing`);
  const real = realpathSync(path);
  // An absolute symlink in an unpacked .deb points at the host's file, not the package's.
  if (!real.startsWith(`${realpathSync(root).replace(/\/$/, "")}/`)) throw new Error(`${path} leads out of ${root} (to ${real})`);
  return real;
}
