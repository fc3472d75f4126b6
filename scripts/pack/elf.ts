// Just enough ELF64 little-endian to read and patch Bun's executable, glibc's ld.so and
// libraries, and the linked stub. Offsets and field layouts follow the System V gABI
// (elf.h); every value we use fits in a JavaScript number (files and addresses < 2^53).

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_PHDR = 6;

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;

export const DT_NULL = 0;
export const DT_NEEDED = 1;
export const DT_STRTAB = 5;
export const DT_STRSZ = 10;
export const DT_SONAME = 14;
export const DT_VERDEF = 0x6ffffffc;
export const DT_VERDEFNUM = 0x6ffffffd;
export const DT_VERNEED = 0x6ffffffe;
export const DT_VERNEEDNUM = 0x6fffffff;

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;
export const DYN_SIZE = 16;

export interface Header {
  type: number;
  machine: number;
  entry: number;
  phoff: number;
  shoff: number;
  phnum: number;
  shnum: number;
  shstrndx: number;
}

export interface ProgramHeader {
  /** index in the table */
  index: number;
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface SectionHeader {
  index: number;
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
}

export interface DynamicEntry {
  /** file offset of this entry */
  at: number;
  tag: number;
  value: number;
}

export class ElfError extends Error {
  override name = "ElfError";
}

function num(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} is too large: ${v}`);
  return Number(v);
}

/** A read view over one ELF64 LE file, with the writes the packer needs. */
export class Elf {
  readonly view: DataView;
  readonly header: Header;
  readonly phdrs: ProgramHeader[];
  private sectionCache: SectionHeader[] | null = null;

  constructor(
    readonly bytes: Uint8Array,
    readonly name: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < EHDR_SIZE || this.view.getUint32(0, false) !== 0x7f454c46) throw new ElfError(`${name}: not an ELF file`);
    if (bytes[4] !== 2 || bytes[5] !== 1) throw new ElfError(`${name}: not a 64-bit little-endian ELF file`);
    this.header = {
      type: this.u16(16),
      machine: this.u16(18),
      entry: this.u64(24),
      phoff: this.u64(32),
      shoff: this.u64(40),
      phnum: this.u16(56),
      shnum: this.u16(60),
      shstrndx: this.u16(62),
    };
    if (this.u16(54) !== PHDR_SIZE) throw new ElfError(`${name}: unexpected program header size`);
    this.phdrs = [];
    for (let i = 0; i < this.header.phnum; i++) this.phdrs.push(this.readPhdr(this.header.phoff + i * PHDR_SIZE, i));
  }

  u16(at: number): number {
    return this.view.getUint16(at, true);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  u64(at: number): number {
    return num(this.view.getBigUint64(at, true), `${this.name}: value at ${at}`);
  }
  i64(at: number): number {
    const v = this.view.getBigInt64(at, true);
    // Dynamic tags above 2^53 (none that we read) would lose precision; flag them as unknown.
    return v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER) ? -1 : Number(v);
  }
  setU32(at: number, v: number): void {
    this.view.setUint32(at, v, true);
  }
  setU64(at: number, v: number): void {
    this.view.setBigUint64(at, BigInt(v), true);
  }

  private readPhdr(at: number, index: number): ProgramHeader {
    return {
      index,
      type: this.u32(at),
      flags: this.u32(at + 4),
      offset: this.u64(at + 8),
      vaddr: this.u64(at + 16),
      paddr: this.u64(at + 24),
      filesz: this.u64(at + 32),
      memsz: this.u64(at + 40),
      align: this.u64(at + 48),
    };
  }

  get sections(): SectionHeader[] {
    if (this.sectionCache) return this.sectionCache;
    const raw: Omit<SectionHeader, "name">[] = [];
    const out: SectionHeader[] = [];
    const { shoff, shnum, shstrndx } = this.header;
    if (shoff === 0) return (this.sectionCache = out);
    const nameOffsets: number[] = [];
    for (let i = 0; i < shnum; i++) {
      const at = shoff + i * SHDR_SIZE;
      nameOffsets.push(this.u32(at));
      raw.push({
        index: i,
        type: this.u32(at + 4),
        flags: this.u64(at + 8),
        addr: this.u64(at + 16),
        offset: this.u64(at + 24),
        size: this.u64(at + 32),
        link: this.u32(at + 40),
        info: this.u32(at + 44),
        addralign: this.u64(at + 48),
        entsize: this.u64(at + 56),
      });
    }
    const names = raw[shstrndx];
    for (let i = 0; i < raw.length; i++) {
      const name = names ? this.cString(names.offset + nameOffsets[i]!) : "";
      out.push({ ...raw[i]!, name });
    }
    return (this.sectionCache = out);
  }

  section(name: string): SectionHeader | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Writes a section header's address, offset and size (the other fields stay). */
  setSectionPlace(index: number, addr: number, offset: number, size: number): void {
    const at = this.header.shoff + index * SHDR_SIZE;
    this.setU64(at + 16, addr);
    this.setU64(at + 24, offset);
    this.setU64(at + 32, size);
  }

  cString(at: number): string {
    let end = at;
    while (end < this.bytes.length && this.bytes[end] !== 0) end++;
    return Buffer.from(this.bytes.subarray(at, end)).toString("latin1");
  }

  loads(): ProgramHeader[] {
    return this.phdrs.filter((p) => p.type === PT_LOAD);
  }

  /** The file offset holding a virtual address (of the file's own image). */
  offsetOf(vaddr: number): number {
    for (const p of this.loads()) {
      if (vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz) return p.offset + (vaddr - p.vaddr);
    }
    throw new ElfError(`${this.name}: address 0x${vaddr.toString(16)} is not backed by the file`);
  }

  dynamic(): DynamicEntry[] {
    const dyn = this.phdrs.find((p) => p.type === PT_DYNAMIC);
    if (!dyn) return [];
    const out: DynamicEntry[] = [];
    for (let at = dyn.offset; at + DYN_SIZE <= dyn.offset + dyn.filesz; at += DYN_SIZE) {
      const tag = this.i64(at);
      if (tag === DT_NULL) break;
      out.push({ at, tag, value: this.u64(at + 8) });
    }
    return out;
  }

  dynamicValue(tag: number): number | undefined {
    return this.dynamic().find((d) => d.tag === tag)?.value;
  }

  /** The dynamic string table as the loader sees it (DT_STRTAB/DT_STRSZ). */
  dynamicStrings(): { vaddr: number; offset: number; size: number } {
    const vaddr = this.dynamicValue(DT_STRTAB);
    const size = this.dynamicValue(DT_STRSZ);
    if (vaddr === undefined || size === undefined) throw new ElfError(`${this.name}: no DT_STRTAB/DT_STRSZ`);
    return { vaddr, offset: this.offsetOf(vaddr), size };
  }

  dynamicString(strOffset: number): string {
    return this.cString(this.dynamicStrings().offset + strOffset);
  }

  soname(): string | undefined {
    const v = this.dynamicValue(DT_SONAME);
    return v === undefined ? undefined : this.dynamicString(v);
  }

  /** .gnu.version_r: each file a version is needed from, with the versions' names. */
  versionNeeds(): { at: number; file: string; fileOffset: number; versions: string[] }[] {
    const addr = this.dynamicValue(DT_VERNEED);
    const count = this.dynamicValue(DT_VERNEEDNUM) ?? 0;
    if (addr === undefined) return [];
    const out: { at: number; file: string; fileOffset: number; versions: string[] }[] = [];
    let at = this.offsetOf(addr);
    for (let i = 0; i < count; i++) {
      const fileOffset = this.u32(at + 4);
      const versions: string[] = [];
      let aux = at + this.u32(at + 8);
      for (let k = 0; k < this.u16(at + 2); k++) {
        versions.push(this.dynamicString(this.u32(aux + 8)));
        aux += this.u32(aux + 12);
      }
      out.push({ at, file: this.dynamicString(fileOffset), fileOffset, versions });
      const next = this.u32(at + 12);
      if (next === 0) break;
      at += next;
    }
    return out;
  }

  /** .gnu.version_d: the version names a library defines. */
  versionDefinitions(): Set<string> {
    const out = new Set<string>();
    const addr = this.dynamicValue(DT_VERDEF);
    const count = this.dynamicValue(DT_VERDEFNUM) ?? 0;
    if (addr === undefined) return out;
    let at = this.offsetOf(addr);
    for (let i = 0; i < count; i++) {
      const aux = at + this.u32(at + 12);
      out.add(this.dynamicString(this.u32(aux)));
      const next = this.u32(at + 16);
      if (next === 0) break;
      at += next;
    }
    return out;
  }

  /** A symbol from .symtab (the linked stub keeps one). */
  symbol(name: string): { value: number; size: number } | undefined {
    const tab = this.sections.find((s) => s.type === SHT_SYMTAB);
    if (!tab) return undefined;
    const strings = this.sections[tab.link];
    if (!strings) return undefined;
    for (let at = tab.offset; at + 24 <= tab.offset + tab.size; at += 24) {
      if (this.cString(strings.offset + this.u32(at)) === name) return { value: this.u64(at + 8), size: this.u64(at + 16) };
    }
    return undefined;
  }
}

/** Encodes one program header at `at` of `out`. */
export function writePhdr(out: DataView, at: number, p: Omit<ProgramHeader, "index">): void {
  out.setUint32(at, p.type, true);
  out.setUint32(at + 4, p.flags, true);
  out.setBigUint64(at + 8, BigInt(p.offset), true);
  out.setBigUint64(at + 16, BigInt(p.vaddr), true);
  out.setBigUint64(at + 24, BigInt(p.paddr), true);
  out.setBigUint64(at + 32, BigInt(p.filesz), true);
  out.setBigUint64(at + 40, BigInt(p.memsz), true);
  out.setBigUint64(at + 48, BigInt(p.align), true);
}

export const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;
