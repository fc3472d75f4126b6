// Builds src/native/stub.c for one architecture and returns the bytes the packer
// appends. The stub includes protocol.h, which protocol-header.ts writes from
// src/native/protocol.ts into the build directory. The stub is linked twice, at two
// addresses 256 MiB apart: identical bytes prove it has no absolute address anywhere, so
// the packer may place it at any 64 KiB boundary without a loader to relocate it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARCH_INFO, compilerFor, hostArch, type Arch } from "./arch.ts";
import { Elf, PF_W, PF_X, PT_LOAD, alignUp } from "./elf.ts";
import { protocolHeader } from "./protocol-header.ts";

const STUB_DIR = new URL("../../src/native/", import.meta.url).pathname;
export const STUB_SOURCE = join(STUB_DIR, "stub.c");
const LINKER_SCRIPT = join(STUB_DIR, "stub.ld");
/** The linker script's distance quantum between the stub's code and data. */
export const SEGMENT_ALIGN = 0x10000;

export const STUB_CFLAGS = [
  "-Os",
  "-std=gnu11",
  "-ffreestanding",
  "-fno-builtin",
  "-nostdlib",
  "-static",
  "-fPIE",
  "-fvisibility=hidden",
  "-fno-stack-protector",
  "-fno-asynchronous-unwind-tables",
  "-fno-unwind-tables",
  // a loop that clears or copies must stay a loop: there is no memset/memcpy to call
  "-fno-tree-loop-distribute-patterns",
  "-fno-jump-tables",
  "-Wall",
  "-Wextra",
  "-Werror",
  `-Wl,-T,${LINKER_SCRIPT}`,
  "-Wl,--build-id=none",
  "-Wl,-z,noexecstack",
  "-Wl,-z,norelro",
];

export interface StubImage {
  arch: Arch;
  /** Code and read-only data, linked at 0. */
  text: Uint8Array;
  /** Writable data (file part) and its size in memory (.bss included). */
  data: Uint8Array;
  dataMemsz: number;
  /** Where the writable segment starts, relative to the code. */
  dataDistance: number;
  /** _start, relative to the code. */
  entry: number;
  /** pidone_manifest, relative to the code, and its size. */
  manifest: number;
  manifestSize: number;
}

/** `include`: the directory holding the generated protocol.h. */
function compile(arch: Arch, include: string, out: string, base: number): void {
  const cc = compilerFor(arch);
  const args = [cc, ...STUB_CFLAGS, ...ARCH_INFO[arch].cflags, `-I${include}`, `-Wl,-Ttext-segment=0x${base.toString(16)}`, "-o", out, STUB_SOURCE];
  let r: ReturnType<typeof Bun.spawnSync>;
  try {
    r = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  } catch {
    const pkgs = arch === hostArch() ? "gcc" : ARCH_INFO[arch].crossPackages.join(" ");
    throw new Error(`compiling the stub for ${arch} needs ${cc}: apt-get install ${pkgs}`);
  }
  if (!r.success) throw new Error(`compiling the stub for ${arch} failed:\n${r.stderr?.toString()}`);
}

function segments(elf: Elf) {
  const loads = elf.phdrs.filter((p) => p.type === PT_LOAD);
  const text = loads.find((p) => p.flags & PF_X);
  if (!text || text.memsz !== text.filesz) throw new Error("stub: no code segment, or one with .bss");
  const data = loads.find((p) => p.flags & PF_W && p.memsz > 0);
  return { text, data };
}

export function buildStub(arch: Arch): StubImage {
  const dir = mkdtempSync(join(tmpdir(), "pidone-stub-"));
  try {
    const a = join(dir, "stub-a");
    const b = join(dir, "stub-b");
    const shift = 0x10000000;
    writeFileSync(join(dir, "protocol.h"), protocolHeader());
    compile(arch, dir, a, 0);
    compile(arch, dir, b, shift);
    const ea = new Elf(new Uint8Array(readFileSync(a)), `stub (${arch})`);
    const eb = new Elf(new Uint8Array(readFileSync(b)), `stub (${arch}, moved)`);
    if (ea.header.machine !== ARCH_INFO[arch].machine) throw new Error(`stub: compiled for machine ${ea.header.machine}, not ${arch}`);
    for (const s of ea.sections) {
      if (/^\.(got|rela|relr|dynamic|interp)/.test(s.name) && s.size > 0)
        throw new Error(`stub: section ${s.name} needs a loader; the stub must be position independent`);
    }
    const sa = segments(ea);
    const sb = segments(eb);
    const bytes = (e: Elf, p: { offset: number; filesz: number }) => e.bytes.subarray(p.offset, p.offset + p.filesz);
    const same = (x: Uint8Array, y: Uint8Array) => x.length === y.length && Buffer.from(x).equals(Buffer.from(y));
    if (sb.text.vaddr !== sa.text.vaddr + shift || !same(bytes(ea, sa.text), bytes(eb, sb.text)))
      throw new Error("stub: code changes with its address (an absolute address slipped in)");
    if (sa.data && (!sb.data || !same(bytes(ea, sa.data), bytes(eb, sb.data))))
      throw new Error("stub: data changes with its address (a pointer in initialised data?)");

    const start = ea.symbol("_start");
    const manifest = ea.symbol("pidone_manifest");
    if (!start || !manifest) throw new Error("stub: _start or pidone_manifest is missing");
    const base = sa.text.vaddr;
    const dataDistance = sa.data ? sa.data.vaddr - base : alignUp(sa.text.memsz, SEGMENT_ALIGN);
    if (dataDistance % SEGMENT_ALIGN !== 0 || dataDistance < sa.text.memsz) throw new Error("stub: unexpected segment layout");
    return {
      arch,
      text: new Uint8Array(bytes(ea, sa.text)),
      data: sa.data ? new Uint8Array(bytes(ea, sa.data)) : new Uint8Array(0),
      dataMemsz: sa.data?.memsz ?? 0,
      dataDistance,
      entry: start.value - base,
      manifest: manifest.value - base,
      manifestSize: manifest.size,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
