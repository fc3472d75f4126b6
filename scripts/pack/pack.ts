// The packer: turns Bun's dynamically linked executable into one file that starts in
// any image, FROM scratch included.
//
// Layout of the packed file (the original bytes stay where they were):
//
//   [ Bun's executable, unchanged but for e_entry, program headers, DT_STRTAB/STRSZ,
//     DT_NEEDED, .gnu.version_r file names and the .dynstr section header        ]
//   [ 64 KiB ] stub code + manifest + the original program headers    PT_LOAD R+X
//   [ +64 KiB multiple ] stub data + a copy of .dynstr + name slots   PT_LOAD R+W
//   [ 64 KiB ] glibc's ld.so, mapped from here by the stub
//   [ 4 KiB each ] libc, libpthread, libdl, libm: copied into memfds by the stub
//
// The two new PT_LOADs take the program header slots of PT_INTERP (so the kernel starts
// us as a static executable, at the stub) and PT_NOTE (nothing at run time reads it:
// ld.so gets the original table, PT_NOTE included, through AT_PHDR).
import { createHash } from "node:crypto";
import {
  DT_NEEDED,
  DT_STRSZ,
  DT_STRTAB,
  ET_DYN,
  ET_EXEC,
  Elf,
  PF_R,
  PF_W,
  PF_X,
  PHDR_SIZE,
  PT_INTERP,
  PT_LOAD,
  PT_NOTE,
  PT_PHDR,
  alignUp,
  writePhdr,
  type ProgramHeader,
} from "./elf.ts";
import {
  MAGIC,
  MANIFEST_SIZE,
  NAME_SLOT,
  PACK_ID_OFFSET,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  encodeManifest,
  type LdsoSegment,
  type LibrarySlot,
} from "./manifest.ts";
import type { StubImage } from "./stub.ts";
import { MAGIC as PROTOCOL_MAGIC } from "../../src/native/protocol.ts";

/** Any page size Linux uses (arm64 kernels may run 64 KiB pages). */
const MAX_PAGE = 0x10000;
/** The first fd number the stub puts the libraries at. */
export const FIRST_LIBRARY_FD = 1000;
/** memfd names start with this; src/process/startup.ts leaves such fds out of what it passes on. */
export const MEMFD_PREFIX = "pidone:";
/**
 * The shared area's magic (src/native/protocol.ts, which src/sys/native.ts imports): a
 * payload whose bytes hold it takes over from the stub's native helper, so the stub may
 * block signals and rebuild the environment for it.
 */
export const NATIVE_MARKER = PROTOCOL_MAGIC;

export interface PackInput {
  /** Bun's executable. */
  runtime: Uint8Array;
  stub: StubImage;
  machine: number;
  /** glibc's ld.so, from the same build as the libraries. */
  ldso: Uint8Array;
  /** The runtime's other DT_NEEDED libraries, by file name. */
  libraries: Map<string, Uint8Array>;
  /** Turn the native helper on; default: when the payload carries NATIVE_MARKER. */
  native?: boolean;
}

export interface PackResult {
  bytes: Uint8Array;
  /** Bytes added to the runtime, and how they split. */
  added: { stub: number; ldso: number; libraries: number; total: number };
  needed: string[];
  /** The stub's native helper is on (MANIFEST_NATIVE). */
  native: boolean;
}

export class PackError extends Error {
  override name = "PackError";
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new PackError(message);
}

function protOf(flags: number): number {
  return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) | (flags & PF_X ? PROT_EXEC : 0);
}

function ldsoPlan(ldso: Elf): { segments: LdsoSegment[]; span: number; entry: number } {
  check(ldso.header.type === ET_DYN, "ld.so is not a shared object (ET_DYN)");
  const loads = ldso.loads();
  check(loads.length > 0 && loads[0]!.vaddr === 0, "ld.so's first PT_LOAD is not at address 0");
  const segments = loads.map((p) => {
    // The stub maps each segment from a 64 KiB-aligned copy: addresses and offsets must agree
    // modulo the largest page size, as the kernel's own loader requires.
    check((p.vaddr - p.offset) % MAX_PAGE === 0, `ld.so segment at 0x${p.vaddr.toString(16)} is not 64 KiB congruent`);
    check(p.memsz === p.filesz || p.flags & PF_W, "ld.so has .bss in a read-only segment");
    return { vaddr: p.vaddr, offset: p.offset, filesz: p.filesz, memsz: p.memsz, prot: protOf(p.flags) };
  });
  const span = alignUp(Math.max(...loads.map((p) => p.vaddr + p.memsz)), MAX_PAGE);
  return { segments, span, entry: ldso.header.entry };
}

/** Every version the runtime needs from a library must be defined by the copy we carry. */
function checkVersions(runtime: Elf, providers: Map<string, Elf>): void {
  for (const need of runtime.versionNeeds()) {
    const lib = providers.get(need.file);
    check(lib, `the runtime needs versions from ${need.file}, which is not packed`);
    const defined = lib.versionDefinitions();
    for (const v of need.versions) check(defined.has(v), `${need.file} lacks ${v}, which the runtime needs (older glibc?)`);
  }
}

export function pack(input: PackInput): PackResult {
  const runtime = new Elf(input.runtime, "runtime");
  const ldso = new Elf(input.ldso, "ld.so");
  const { header } = runtime;
  check(header.type === ET_EXEC, "the runtime is not ET_EXEC (Bun's executables are; was it packed already?)");
  check(header.machine === input.machine && ldso.header.machine === input.machine, "runtime, ld.so and target disagree on the machine");

  const interp = runtime.phdrs.find((p) => p.type === PT_INTERP);
  const note = runtime.phdrs.find((p) => p.type === PT_NOTE);
  check(interp, "the runtime has no PT_INTERP: already packed, or statically linked");
  check(note, "the runtime has no PT_NOTE slot for the stub's writable segment");

  // -------------------------------------------------------------- libraries
  const ldsoName = ldso.soname();
  check(ldsoName, "ld.so has no DT_SONAME");
  const needed = runtime
    .dynamic()
    .filter((d) => d.tag === DT_NEEDED)
    .map((d) => ({ entry: d, name: runtime.dynamicString(d.value) }));
  const packed = needed.filter((n) => n.name !== ldsoName);
  const providers = new Map<string, Elf>([[ldsoName, ldso]]);
  for (const n of packed) {
    const bytes = input.libraries.get(n.name);
    check(bytes, `no copy of ${n.name}, which the runtime needs`);
    const lib = new Elf(bytes, n.name);
    check(lib.header.machine === input.machine, `${n.name} is for another machine`);
    check(lib.soname() === n.name, `${n.name} has soname ${lib.soname()}`);
    providers.set(n.name, lib);
  }
  checkVersions(runtime, providers);

  // -------------------------------------------------------------- layout
  const { stub } = input;
  const oldStrings = runtime.dynamicStrings();
  const maxEnd = Math.max(...runtime.loads().map((p) => p.vaddr + p.memsz));
  const textOff = alignUp(input.runtime.length, MAX_PAGE);
  const textVa = alignUp(maxEnd, MAX_PAGE);
  const phdrCopyRel = alignUp(stub.text.length, 8);
  const textSize = phdrCopyRel + header.phnum * PHDR_SIZE;
  check(textSize <= stub.dataDistance, "stub code and program headers overflow into its data segment");

  const dataOff = textOff + stub.dataDistance;
  const dataVa = textVa + stub.dataDistance;
  const dynstrRel = alignUp(stub.dataMemsz, 16);
  const slotsRel = oldStrings.size; // the name slots follow the copied strings
  const dynstrSize = oldStrings.size + packed.length * NAME_SLOT;
  const dataSize = dynstrRel + dynstrSize;

  const ldsoOff = alignUp(dataOff + dataSize, MAX_PAGE);
  let cursor = ldsoOff + input.ldso.length;
  const libraryPlaces = packed.map((n) => {
    const bytes = input.libraries.get(n.name)!;
    // Page-aligned for any kernel page size: the stub maps each library from our file
    // once ld.so has loaded it (release_libraries), and mmap offsets are page multiples.
    const offset = alignUp(cursor, MAX_PAGE);
    cursor = offset + bytes.length;
    return { ...n, bytes, offset };
  });
  const total = cursor;

  const out = new Uint8Array(total);
  out.set(input.runtime, 0);
  const view = new DataView(out.buffer);
  const patched = new Elf(out, "packed");

  // -------------------------------------------------------------- the stub's segments
  out.set(stub.text, textOff);
  const phdrCopy = textVa + phdrCopyRel;
  // ld.so reads this table through AT_PHDR: the original, PT_INTERP included, with PT_PHDR
  // pointing at the copy itself so that ld.so computes a load bias of 0.
  out.set(input.runtime.subarray(header.phoff, header.phoff + header.phnum * PHDR_SIZE), textOff + phdrCopyRel);
  for (const p of runtime.phdrs) {
    if (p.type !== PT_PHDR) continue;
    const at = textOff + phdrCopyRel + p.index * PHDR_SIZE;
    writePhdr(view, at, { ...p, vaddr: phdrCopy, paddr: phdrCopy });
  }

  out.set(stub.data, dataOff);
  out.set(input.runtime.subarray(oldStrings.offset, oldStrings.offset + oldStrings.size), dataOff + dynstrRel);
  const dynstrVa = dataVa + dynstrRel;
  const slots: LibrarySlot[] = libraryPlaces.map((l, i) => {
    const slotRel = slotsRel + i * NAME_SLOT;
    const fd = FIRST_LIBRARY_FD + i;
    out.set(Buffer.from(`/proc/self/fd/${fd}`, "latin1"), dataOff + dynstrRel + slotRel);
    return { offset: l.offset, size: l.bytes.length, nameSlot: dynstrVa + slotRel, fd, memfdName: `${MEMFD_PREFIX}${l.name}` };
  });

  out.set(input.ldso, ldsoOff);
  for (const l of libraryPlaces) out.set(l.bytes, l.offset);

  // -------------------------------------------------------------- the manifest
  const magicAt = textOff + stub.manifest;
  check(stub.manifestSize === MANIFEST_SIZE, `the stub's manifest is ${stub.manifestSize} bytes, the packer's ${MANIFEST_SIZE}`);
  check(Buffer.from(out.subarray(magicAt, magicAt + MAGIC.length)).toString("latin1") === MAGIC, "the stub's manifest magic is missing");
  const hash = createHash("sha256");
  for (const part of [input.runtime, stub.text, stub.data, input.ldso, ...libraryPlaces.map((l) => l.bytes)]) hash.update(part);
  const ld = ldsoPlan(ldso);
  const native = input.native ?? Buffer.from(input.runtime.buffer, input.runtime.byteOffset, input.runtime.length).includes(NATIVE_MARKER, 0, "latin1");
  const manifest = encodeManifest({
    // Deterministic, so the same inputs give the same release file.
    packId: hash.digest().readBigUInt64LE(0),
    selfOffset: magicAt,
    entry: header.entry,
    phdr: phdrCopy,
    ldsoOffset: ldsoOff,
    ldsoSpan: ld.span,
    ldsoEntry: ld.entry,
    native,
    segments: ld.segments,
    libraries: slots,
  });
  out.set(manifest, magicAt);
  check(view.getBigUint64(magicAt + PACK_ID_OFFSET, true) !== 0n, "pack id is 0");

  // -------------------------------------------------------------- the kernel's program headers
  const rx = { type: PT_LOAD, flags: PF_R | PF_X, offset: textOff, vaddr: textVa, paddr: textVa, filesz: textSize, memsz: textSize, align: MAX_PAGE };
  const rw = { type: PT_LOAD, flags: PF_R | PF_W, offset: dataOff, vaddr: dataVa, paddr: dataVa, filesz: dataSize, memsz: dataSize, align: MAX_PAGE };
  // PT_PHDR first, PT_LOADs in ascending order (the gABI's rule, and what old kernels and
  // qemu assume when they derive AT_PHDR from the first PT_LOAD), then the rest.
  const kept = runtime.phdrs.filter((p) => p !== interp && p !== note);
  const ordered: Omit<ProgramHeader, "index">[] = [
    ...kept.filter((p) => p.type === PT_PHDR),
    ...[...kept.filter((p) => p.type === PT_LOAD), rx, rw].sort((a, b) => a.vaddr - b.vaddr),
    ...kept.filter((p) => p.type !== PT_PHDR && p.type !== PT_LOAD),
  ];
  check(ordered.length === header.phnum, "program header count changed");
  ordered.forEach((p, i) => writePhdr(view, header.phoff + i * PHDR_SIZE, p));
  view.setBigUint64(24, BigInt(textVa + stub.entry), true); // e_entry

  // -------------------------------------------------------------- names ld.so will open
  for (const d of runtime.dynamic()) {
    if (d.tag === DT_STRTAB) patched.setU64(d.at + 8, dynstrVa);
    if (d.tag === DT_STRSZ) patched.setU64(d.at + 8, dynstrSize);
  }
  libraryPlaces.forEach((l, i) => patched.setU64(l.entry.at + 8, slotsRel + i * NAME_SLOT));
  // ld.so matches a version need to a loaded object by the name it was loaded under.
  for (const need of runtime.versionNeeds()) {
    const i = libraryPlaces.findIndex((l) => l.name === need.file);
    if (i >= 0) patched.setU32(need.at + 4, slotsRel + i * NAME_SLOT);
  }
  // Tools (readelf -d, -V) then show the names the loader really uses.
  const dynstrSection = runtime.sections.find((s) => s.addr === oldStrings.vaddr && s.size === oldStrings.size);
  if (dynstrSection) patched.setSectionPlace(dynstrSection.index, dynstrVa, dataOff + dynstrRel, dynstrSize);

  return {
    bytes: out,
    added: {
      stub: ldsoOff - alignUp(input.runtime.length, MAX_PAGE),
      ldso: input.ldso.length,
      libraries: libraryPlaces.reduce((n, l) => n + l.bytes.length, 0),
      total: total - input.runtime.length,
    },
    needed: needed.map((n) => n.name),
    native,
  };
}
