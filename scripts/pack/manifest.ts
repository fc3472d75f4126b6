// The stub's manifest (struct manifest in src/native/stub.c), encoded by the packer
// into the stub's bytes. The layout is mirrored here field by field; the packer checks
// the C symbol's size against MANIFEST_SIZE so the two cannot drift apart silently.

export const MAGIC = "pidone-stub-v2";
export const MAX_SEGMENTS = 8;
export const MAX_LIBRARIES = 8;
/** Bytes reserved in .dynstr for each library's name: "/proc/self/fd/" + up to 10 digits. */
export const NAME_SLOT = 32;
const MEMFD_NAME = 32;

const SEGMENT_SIZE = 40;
const LIBRARY_SIZE = 32 + MEMFD_NAME;
const HEADER_SIZE = 16 + 7 * 8 + 4 * 4;
export const MANIFEST_SIZE = HEADER_SIZE + MAX_SEGMENTS * SEGMENT_SIZE + MAX_LIBRARIES * LIBRARY_SIZE;

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

/** struct manifest's flags: the payload is pidone and takes over the native helper. */
export const MANIFEST_NATIVE = 1;

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
  out.set(Buffer.from(MAGIC, "latin1"), 0);
  let at = 16;
  u64(at, m.packId);
  for (const x of [m.selfOffset, m.entry, m.phdr, m.ldsoOffset, m.ldsoSpan, m.ldsoEntry]) u64((at += 8), x);
  at += 8;
  v.setUint32(at, m.segments.length, true);
  v.setUint32(at + 4, m.libraries.length, true);
  v.setUint32(at + 8, m.native ? MANIFEST_NATIVE : 0, true);
  at += 16;
  for (let i = 0; i < MAX_SEGMENTS; i++, at += SEGMENT_SIZE) {
    const s = m.segments[i];
    if (!s) continue;
    u64(at, s.vaddr);
    u64(at + 8, s.offset);
    u64(at + 16, s.filesz);
    u64(at + 24, s.memsz);
    v.setUint32(at + 32, s.prot, true);
  }
  for (let i = 0; i < MAX_LIBRARIES; i++, at += LIBRARY_SIZE) {
    const l = m.libraries[i];
    if (!l) continue;
    u64(at, l.offset);
    u64(at + 8, l.size);
    u64(at + 16, l.nameSlot);
    v.setInt32(at + 24, l.fd, true);
    const name = Buffer.from(l.memfdName, "latin1");
    if (name.length >= MEMFD_NAME) throw new Error(`memfd name ${l.memfdName} is too long`);
    out.set(name, at + 32);
  }
  return out;
}

/** Offset of pack_id inside the manifest (the stub reads it back from the file). */
export const PACK_ID_OFFSET = 16;
