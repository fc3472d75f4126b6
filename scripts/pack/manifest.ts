// The stub's manifest (struct manifest, defined in src/native/protocol.ts), encoded by
// the packer into the stub's bytes at the offsets that definition gives; the stub is
// compiled from the same definition, and the packer checks the C symbol's size too.
import { CONSTANTS, LIBRARY, MANIFEST, MANIFEST_MAGIC, SEGMENT, layout } from "../../src/native/protocol.ts";

export const MAGIC = MANIFEST_MAGIC;
export const MAX_SEGMENTS = CONSTANTS.MAX_SEGMENTS[0];
export const MAX_LIBRARIES = CONSTANTS.MAX_LIBRARIES[0];
/** Bytes reserved in .dynstr for each library's name: "/proc/self/fd/" + up to 10 digits. */
export const NAME_SLOT = CONSTANTS.NAME_SLOT[0];
/** struct manifest's flags: the payload is pidone and takes over the native helper. */
export const MANIFEST_NATIVE = CONSTANTS.MANIFEST_NATIVE[0];

const M = layout(MANIFEST.fields);
const SEG = layout(SEGMENT.fields);
const LIB = layout(LIBRARY.fields);
export const MANIFEST_SIZE = M.size;
/** Offset of pack_id inside the manifest (the stub reads it back from the file). */
export const PACK_ID_OFFSET = M.offset.pack_id!;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

export interface LdsoSegment {
  vaddr: number;
  offset: number;
  filesz: number;
  memsz: number;
  prot: number;
}

export interface LibrarySlot {
  offset: number;
  size: number;
  nameSlot: number;
  fd: number;
  memfdName: string;
}

export interface Manifest {
  packId: bigint;
  selfOffset: number;
  entry: number;
  phdr: number;
  ldsoOffset: number;
  ldsoSpan: number;
  ldsoEntry: number;
  /** The stub blocks signals, records the inherited state and rebuilds the environment. */
  native: boolean;
  segments: LdsoSegment[];
  libraries: LibrarySlot[];
}

export function encodeManifest(m: Manifest): Uint8Array {
  if (m.segments.length > MAX_SEGMENTS) throw new Error(`ld.so has ${m.segments.length} PT_LOADs; the stub takes ${MAX_SEGMENTS}`);
  if (m.libraries.length > MAX_LIBRARIES) throw new Error(`${m.libraries.length} libraries; the stub takes ${MAX_LIBRARIES}`);
  const out = new Uint8Array(MANIFEST_SIZE);
  const v = new DataView(out.buffer);
  const u64 = (at: number, x: number | bigint) => v.setBigUint64(at, BigInt(x), true);
  const o = M.offset;
  out.set(Buffer.from(MAGIC, "latin1"), o.magic!);
  u64(o.pack_id!, m.packId);
  u64(o.self_offset!, m.selfOffset);
  u64(o.entry!, m.entry);
  u64(o.phdr!, m.phdr);
  u64(o.ldso_offset!, m.ldsoOffset);
  u64(o.ldso_span!, m.ldsoSpan);
  u64(o.ldso_entry!, m.ldsoEntry);
  v.setUint32(o.nsegments!, m.segments.length, true);
  v.setUint32(o.nlibraries!, m.libraries.length, true);
  v.setUint32(o.flags!, m.native ? MANIFEST_NATIVE : 0, true);
  m.segments.forEach((s, i) => {
    const at = o.segment! + i * SEG.size;
    u64(at + SEG.offset.vaddr!, s.vaddr);
    u64(at + SEG.offset.offset!, s.offset);
    u64(at + SEG.offset.filesz!, s.filesz);
    u64(at + SEG.offset.memsz!, s.memsz);
    v.setUint32(at + SEG.offset.prot!, s.prot, true);
  });
  const nameBytes = LIBRARY.fields.find((f) => f.name === "memfd_name")!.count!;
  m.libraries.forEach((l, i) => {
    const at = o.library! + i * LIB.size;
    u64(at + LIB.offset.offset!, l.offset);
    u64(at + LIB.offset.size!, l.size);
    u64(at + LIB.offset.name_slot!, l.nameSlot);
    v.setInt32(at + LIB.offset.fd!, l.fd, true);
    const name = Buffer.from(l.memfdName, "latin1");
    if (name.length >= nameBytes) throw new Error(`memfd name ${l.memfdName} is too long`);
    out.set(name, at + LIB.offset.memfd_name!);
  });
  return out;
}
