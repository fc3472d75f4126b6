// Byte-level line formatters for the service output multiplexer: one formatted line is
// appended straight into an output buffer, with no strings and no allocation per line.
// Prefix mode never decodes text (service output need not be UTF-8); JSON mode
// validates UTF-8 (SIMD, once per block of lines), as a JSON string must be valid Unicode.
// Large because it is one concern done carefully: every byte of service output passes
// through these kernels, tuned for the JIT (see WORDS and COLD below), and splitting them
// would only spread one hot path over several files.
import { isUtf8 } from "node:buffer";

/** Longest line passed through whole; longer lines are cut into pieces of this size. */
export const MAX_LINE = 64 * 1024;

/** Where formatted bytes go: `buf` has room for at least what `room()` was asked for. */
export interface LineTarget {
  buf: Buffer;
  len: number;
  /** Ensures `n` free bytes in `buf` after `len` (may swap `buf` for a fresh one). */
  room(n: number): void;
}

export interface LineFormatter {
  /** src[start, end) is whole lines, each ending in "\n" and at most MAX_LINE bytes long. */
  lines(out: LineTarget, src: Buffer, start: number, end: number): void;
  /** src[start, end) is one line without its newline; `partial`: more of it follows. */
  line(out: LineTarget, src: Buffer, start: number, end: number, partial: boolean): void;
}

/**
 * Where to cut a piece of at most MAX_LINE bytes from a longer line: on a UTF-8
 * character boundary when one is within 3 bytes, so both pieces stay readable/valid.
 */
export function pieceEnd(src: Uint8Array, start: number): number {
  const cut = start + MAX_LINE;
  for (let k = cut; k > cut - 4; k--) if ((src[k]! & 0xc0) !== 0x80) return k;
  return cut; // not UTF-8 anyway: cut at the limit
}

/** Lines up to this long go through the kernels (see WORDS); longer ones are done one by one. */
const SHORT_LINE = 128;

// Very short runs are copied in JS: for them a native Buffer.copy's call costs more than the copy.
const NATIVE_COPY_MIN = 16;
function copy(out: Buffer, o: number, src: Buffer, start: number, end: number): number {
  if (end - start < NATIVE_COPY_MIN) {
    for (let k = start; k < end; k++) out[o++] = src[k]!;
    return o;
  }
  return o + src.copy(out, o, start, end);
}

// WORDS: the hot loops read and write four bytes at a time through DataViews (the JIT
// turns those into plain unaligned loads and stores) and find the first byte of interest
// in a word with the classic "has a zero byte" bit trick: for x = word ^ 0x0a0a0a0a,
// (x - 0x01010101) & ~x & 0x80808080 flags each byte of x that is 0 (the word's newlines).
// A borrow can falsely flag a byte above a true one, never below: the lowest flag is exact.
// A word may run past the line's end: the bytes stored past it are overwritten by the
// next line (or lie beyond `len`), so the output buffer only needs a few bytes of slack.

// COLD: a new process runs its first thousands of lines through the kernels in the
// interpreter and the baseline JIT, where every call is a real call (the DataView methods
// too) and costs many times what it does once optimized; the optimizing JITs compile on
// threads that share the machine's cores with the worker. So the JSON kernel makes no
// call per word of its own: specials and firstFlagged are written out in it.

/** Index (0..3) of the lowest byte flagged (bit 7 set) in a non-zero mask. */
function firstFlagged(m: number): number {
  return (31 - Math.clz32(m & -m)) >> 3;
}

/** A DataView over a buffer's bytes; cached for the output buffers, which are used over and over. */
let lastViewBuf: Uint8Array | null = null;
let lastView: DataView = new DataView(new ArrayBuffer(0));
function viewOf(buf: Uint8Array): DataView {
  if (buf !== lastViewBuf) {
    lastViewBuf = buf;
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return lastView;
}

/**
 * Reads `view` (a whole number of 8-byte words) into `doubles` as little-endian 64-bit
 * doubles; false if one of them is a NaN. Any other double is stored back bit for bit, but
 * a NaN may not be: the engine is free to replace its payload with the canonical one.
 * Valid UTF-8 text never makes one: a NaN's two top bytes are 0xf0-0xff then 0x7f or 0xff,
 * never a character's.
 */
function readDoubles(view: DataView, doubles: Float64Array): boolean {
  for (let i = 0; i < doubles.length; i++) {
    doubles[i] = view.getFloat64(8 * i, true);
    if (Number.isNaN(doubles[i]!)) return false;
  }
  return true;
}

/** `bytes` as little-endian 32-bit words, the last padded with spaces. */
function wordsOf(bytes: Uint8Array): Int32Array {
  const padded = new Uint8Array((bytes.length + 3) & ~3).fill(0x20);
  padded.set(bytes);
  const view = new DataView(padded.buffer);
  const words = new Int32Array(padded.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = view.getInt32(4 * i, true);
  return words;
}

// ---------------------------------------------------------------- prefix

// ANSI foreground colours handed out to services in order; red is left for nobody to
// mistake a service's ordinary output for an error.
const PALETTE = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];
const MARKER = Buffer.from(" \u2026"); // " …" ends every piece of a cut line but the last

/** `NAME | ` padded to `width`; coloured with the service's palette entry when asked. */
export function prefixBytes(name: string, width: number, colorIndex: number | null): Buffer {
  const label = `${name.padEnd(width)} |`;
  if (colorIndex === null) return Buffer.from(`${label} `);
  const code = PALETTE[colorIndex % PALETTE.length]!;
  return Buffer.from(`\x1b[${code}m${label}\x1b[0m `);
}

/** Where the last kernel call stopped: the first line it left (module state: no object per call). */
let kernelAt = 0;

/**
 * Formats the lines starting in src[pos, end) (read through `sv`) into the output buffer
 * (written through `ov`) from offset `o`, while each line is at most SHORT_LINE long and
 * `o` is at most `stop`. Returns the output offset; kernelAt is the first line not done.
 * Kept small, with nothing rare in it, so that the JIT compiles it quickly.
 */
function prefixKernel(
  sv: DataView,
  pos: number,
  end: number,
  ov: DataView,
  o: number,
  stop: number,
  words: Int32Array,
  pl: number,
): number {
  const nw = words.length;
  while (pos < end && o <= stop) {
    for (let j = 0; j < nw; j++) ov.setInt32(o + 4 * j, words[j]!, true);
    let k = pos;
    let to = o + pl;
    const limit = pos + SHORT_LINE;
    for (;;) {
      const w = sv.getInt32(k, true);
      ov.setInt32(to, w, true);
      const x = w ^ 0x0a0a0a0a;
      const m = (x - 0x01010101) & ~x & 0x80808080;
      if (m !== 0) {
        const n = firstFlagged(m) + 1; // up to and with the newline
        k += n;
        to += n;
        break;
      }
      k += 4;
      to += 4;
      if (k >= limit) {
        kernelAt = pos; // a long line: not ours
        return o;
      }
    }
    pos = k;
    o = to;
  }
  kernelAt = pos;
  return o;
}

export class PrefixFormatter implements LineFormatter {
  /** The prefix as little-endian 32-bit words, padded with spaces to a whole word. */
  private readonly words: Int32Array;
  private readonly prefix: Buffer;

  /** `timestamps`: the prefix starts with the time, which stamp() sets per chunk read. */
  constructor(label: Buffer, timestamps = false) {
    this.prefix = timestamps ? Buffer.concat([timestamp(Date.now()), Buffer.from(" "), label]) : label;
    this.words = wordsOf(this.prefix);
  }

  /**
   * Stamps the lines that follow with `ms` (one time per chunk read, as JSON's "ts"). The
   * time fills the prefix's first TS_LEN bytes, a whole number of its 32-bit words.
   */
  stamp(ms: number): void {
    const ts = timestamp(ms);
    ts.copy(this.prefix, 0);
    for (let j = 0; j < TS_LEN / 4; j++) this.words[j] = ts.readInt32LE(4 * j);
  }

  // Prefix mode's hot path: short lines go through prefixKernel (WORDS); what it leaves
  // (a line longer than SHORT_LINE, the last lines of `src`, a full output buffer) is
  // dealt with here, one line at a time, with native calls.
  lines(out: LineTarget, src: Buffer, start: number, end: number): void {
    const prefix = this.prefix;
    const pl = prefix.length;
    const sv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    // The kernel reads whole words up to SHORT_LINE + 3 bytes into a line.
    const kernelEnd = Math.min(end, src.length - SHORT_LINE - 4);
    let pos = start;
    while (pos < end) {
      let buf = out.buf;
      if (pos < kernelEnd) {
        const stop = buf.length - (pl + SHORT_LINE + 8);
        const o = prefixKernel(sv, pos, kernelEnd, viewOf(buf), out.len, stop, this.words, pl);
        out.len = o;
        pos = kernelAt;
        if (pos >= end) break;
        if (o > stop) {
          out.room(pl + SHORT_LINE + 8);
          continue;
        }
      }
      // A long line, or one of the last: memchr and memcpy.
      const nl = src.indexOf(10, pos);
      out.room(pl + nl + 1 - pos + 8);
      buf = out.buf;
      buf.set(prefix, out.len);
      out.len = copy(buf, out.len + pl, src, pos, nl + 1);
      pos = nl + 1;
    }
  }

  line(out: LineTarget, src: Buffer, start: number, end: number, partial: boolean): void {
    const p = this.prefix;
    out.room(p.length + (end - start) + MARKER.length + 1);
    const buf = out.buf;
    buf.set(p, out.len);
    let o = copy(buf, out.len + p.length, src, start, end);
    if (partial) o = copy(buf, o, MARKER, 0, MARKER.length);
    buf[o++] = 10;
    out.len = o;
  }
}

// ---------------------------------------------------------------- JSON

/** The time as RFC 3339 UTC with milliseconds, cached per millisecond. */
const TS_LEN = 24; // 2024-05-01T12:34:56.789Z
let tsMs = -1;
const tsBytes = Buffer.alloc(TS_LEN);
export function timestamp(ms: number): Buffer {
  if (ms !== tsMs) {
    tsMs = ms;
    tsBytes.write(new Date(ms).toISOString(), 0, TS_LEN, "latin1");
  }
  return tsBytes;
}

// Per byte: 0 copied as is, 1 escaped (", \, C0 controls), 2 starts or continues a
// multi-byte sequence that must be checked (text not known to be valid UTF-8).
const CHECK_TEXT = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) CHECK_TEXT[b] = 1;
CHECK_TEXT[0x22] = 1;
CHECK_TEXT[0x5c] = 1;
for (let b = 0x80; b < 0x100; b++) CHECK_TEXT[b] = 2;
/** The letter of a two-character escape (\n and the like) by byte; 0: \u00XX. */
const SHORT_ESCAPE = new Uint8Array(256);
for (const [b, c] of [[0x22, 0x22], [0x5c, 0x5c], [8, 0x62], [9, 0x74], [10, 0x6e], [12, 0x66], [13, 0x72]] as const) SHORT_ESCAPE[b] = c;
const HEX = Buffer.from("0123456789abcdef");

/**
 * Length of the valid UTF-8 sequence starting at src[i] (2..4), or minus the length of
 * its maximal invalid subpart (-1..-3), which becomes one U+FFFD as in the WHATWG decoder.
 */
function utf8Sequence(src: Buffer, i: number, end: number): number {
  const b = src[i]!;
  // Bytes after the lead: how many, and the range of the first (the rest are 80..BF).
  // E0 and F0 exclude overlong forms, ED the surrogates, F4 what lies above U+10FFFF.
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) need = 1;
  else if (b >= 0xe0 && b <= 0xef) need = 2;
  else if (b >= 0xf0 && b <= 0xf4) need = 3;
  else return -1;
  if (b === 0xe0) lo = 0xa0;
  else if (b === 0xed) hi = 0x9f;
  else if (b === 0xf0) lo = 0x90;
  else if (b === 0xf4) hi = 0x8f;
  for (let k = 1; k <= need; k++) {
    const c = i + k < end ? src[i + k]! : -1;
    if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return -k;
  }
  return need + 1;
}

/** Appends the JSON escape of byte b (a quote, backslash or C0 control): \n and the like, or \u00XX. */
function escapeByte(buf: Buffer, o: number, b: number): number {
  buf[o++] = 0x5c;
  const short = SHORT_ESCAPE[b]!;
  if (short !== 0) buf[o++] = short;
  else {
    buf[o++] = 0x75;
    buf[o++] = 0x30;
    buf[o++] = 0x30;
    buf[o++] = HEX[b >> 4]!;
    buf[o++] = HEX[b & 15]!;
  }
  return o;
}

/**
 * Appends src[start, end), which need not be valid UTF-8, as the body of a JSON string.
 * Returns the new offset, negated when invalid bytes were replaced by U+FFFD.
 */
function escapeInto(buf: Buffer, o: number, src: Buffer, start: number, end: number): number {
  if (end - start >= LONG_TEXT) return escapeLong(buf, o, src, start, end);
  replaced = false;
  let i = start;
  while (i < end) {
    // Copy the run of bytes that need nothing, then deal with the one that stopped it.
    let j = i;
    while (j < end && CHECK_TEXT[src[j]!] === 0) j++;
    o = copy(buf, o, src, i, j);
    if (j === end) break;
    o = special(buf, o, src, j, end);
    i = after;
  }
  return replaced ? -o : o;
}

// What special() leaves for its caller: where scanning resumes, and whether invalid UTF-8
// was replaced (module state: no object per call on the hot path).
let after = 0;
let replaced = false;

/** The byte at `j` needs something: an escape, a whole UTF-8 sequence, or U+FFFD. */
function special(buf: Buffer, o: number, src: Buffer, j: number, end: number): number {
  const b = src[j]!;
  if (CHECK_TEXT[b] === 1) {
    after = j + 1;
    return escapeByte(buf, o, b);
  }
  const len = utf8Sequence(src, j, end);
  if (len > 0) {
    after = j + len;
    return copy(buf, o, src, j, j + len);
  }
  replaced = true;
  buf[o++] = 0xef; // U+FFFD
  buf[o++] = 0xbf;
  buf[o++] = 0xbd;
  after = j - len;
  return o;
}

// Long text is scanned by the regular expression engine over a latin1 copy (one byte, one
// character), not byte by byte in JS: the engine's scan runs in native code.
const LONG_TEXT = 512;
const NEEDS_LOOK = /[\x00-\x1f"\\\x80-\xff]/g;

/** As escapeInto, for long text: only the bytes that need something are looked at in JS. */
function escapeLong(buf: Buffer, o: number, src: Buffer, start: number, end: number): number {
  const text = src.toString("latin1", start, end);
  const re = NEEDS_LOOK;
  replaced = false;
  let i = start;
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(text);
    const j = m ? start + m.index : end;
    o = copy(buf, o, src, i, j);
    if (j === end) break;
    o = special(buf, o, src, j, end);
    i = after;
    re.lastIndex = i - start;
  }
  return replaced ? -o : o;
}

/** Worst case of one formatted line: every byte a \u00XX escape, plus the base64 copy unless `valid`. */
function worstCase(head: number, n: number, valid = false): number {
  return head + n * 6 + (valid ? 0 : Math.ceil(n / 3) * 4) + 48;
}

/**
 * Flags (bit 7 of each byte) the bytes of word `w` that a JSON string must escape: below
 * 0x20 (C0 controls, the newline among them), '"' and '\\' (WORDS). The three tests share
 * one `& ~w`: none of those bytes has bit 7 set, and for a byte below 0x80 each term's
 * own `~` would keep the same bit 7. A borrow starts only at a byte truly flagged, so the
 * lowest flag is exact, as in WORDS (checked against all 2^32 words).
 */
function specials(w: number): number {
  return ((w - 0x20202020) | ((w ^ 0x22222222) - 0x01010101) | ((w ^ 0x5c5c5c5c) - 0x01010101)) & ~w & 0x80808080;
}

/**
 * jsonKernel's `hi` for text not yet known to be UTF-8. The kernel tests each word as
 * specials(w) with bytes of 0x80 and up flagged as well: `| w` instead of `& ~w`, one
 * operation less. No term borrows at such a byte, so the lowest flag stays exact (checked
 * against all 2^32 words). With hi = ASCII a flagged byte of 0x80 or more stops the kernel
 * at its line, and from there on the block gets its UTF-8 check (SIMD, once): blocks of
 * ASCII, the usual log, need none. With hi = 0, a word with a flag gets `& ~w` after all,
 * which makes the test specials(w): other UTF-8 goes through as it comes.
 */
const ASCII = 0x80808080 | 0;

/** jsonKernel's head, padded to twelve 8-byte words (the rest of its room is far more). */
const HEAD_DOUBLES = new Float64Array(12);

/**
 * As prefixKernel, for JSON: `head`, the line as the body of a JSON string, `"}\n`. A word
 * is stored as is unless one of its bytes is a newline or needs an escape. Bytes of 0x80
 * and up are copied as they come when `hi` is 0 (the caller checked the text is UTF-8);
 * with `hi` = ASCII the kernel stops at the line of the first one.
 */
function jsonKernel(
  sv: DataView,
  pos: number,
  end: number,
  buf: Buffer,
  ov: DataView,
  o: number,
  stop: number,
  head: Buffer,
  hd: Float64Array | null,
  hi: number,
): number {
  const hl = head.length;
  const hn = hd === null ? 0 : hd.length;
  // The head goes out in 8-byte stores, cheaper than a native copy's call per line; up to
  // 96 bytes (service names of up to ~25 bytes) in twelve stores from locals, which stay in
  // registers. What they write past the head, the line overwrites.
  const unrolled = hd !== null && hn <= HEAD_DOUBLES.length;
  HEAD_DOUBLES.fill(0);
  if (unrolled) HEAD_DOUBLES.set(hd);
  const H = HEAD_DOUBLES;
  const h0 = H[0]!, h1 = H[1]!, h2 = H[2]!, h3 = H[3]!, h4 = H[4]!, h5 = H[5]!;
  const h6 = H[6]!, h7 = H[7]!, h8 = H[8]!, h9 = H[9]!, h10 = H[10]!, h11 = H[11]!;
  while (pos < end && o <= stop) {
    if (unrolled) {
      ov.setFloat64(o, h0, true);
      ov.setFloat64(o + 8, h1, true);
      ov.setFloat64(o + 16, h2, true);
      ov.setFloat64(o + 24, h3, true);
      ov.setFloat64(o + 32, h4, true);
      ov.setFloat64(o + 40, h5, true);
      ov.setFloat64(o + 48, h6, true);
      ov.setFloat64(o + 56, h7, true);
      ov.setFloat64(o + 64, h8, true);
      ov.setFloat64(o + 72, h9, true);
      ov.setFloat64(o + 80, h10, true);
      ov.setFloat64(o + 88, h11, true);
    } else if (hd !== null) for (let j = 0; j < hn; j++) ov.setFloat64(o + 8 * j, hd[j]!, true);
    else buf.set(head, o);
    let k = pos;
    let to = o + hl;
    const limit = pos + SHORT_LINE;
    for (;;) {
      const w = sv.getInt32(k, true);
      ov.setInt32(to, w, true);
      // specials(w) with bytes of 0x80 and up flagged too (see ASCII), written out (see COLD).
      let m = ((w - 0x20202020) | ((w ^ 0x22222222) - 0x01010101) | ((w ^ 0x5c5c5c5c) - 0x01010101) | w) & 0x80808080;
      if (m !== 0) m &= hi | ~w; // with hi = 0 (UTF-8 known valid): specials(w)
      if (m !== 0) {
        const n = (31 - Math.clz32(m & -m)) >> 3;
        k += n;
        to += n;
        const b = (w >>> (8 * n)) & 0xff;
        k++;
        if (b === 10) break;
        if (b >= 0x80) {
          kernelAt = pos; // not known to be UTF-8 (hi): not ours yet
          return o;
        }
        to = escapeByte(buf, to, b);
      } else {
        k += 4;
        to += 4;
      }
      if (k >= limit) {
        kernelAt = pos; // a long line: not ours
        return o;
      }
    }
    ov.setInt32(to, 0x0a7d22, true); // "}\n (and a 0 that the next line overwrites)
    pos = k;
    o = to + 3;
  }
  kernelAt = pos;
  return o;
}

/**
 * Appends src[pos, end) (valid UTF-8, no newline) to buf at `o` as the body of a JSON
 * string, four bytes at a time (WORDS); for long lines. Returns the new offset. Faster
 * than escapeLong's regular-expression scan, which makes a string of every line for the
 * garbage collector; escapeLong stays for text not known to be UTF-8.
 */
function escapeWords(src: Buffer, sv: DataView, pos: number, end: number, buf: Buffer, ov: DataView, o: number): number {
  let k = pos;
  while (k + 4 <= end) {
    const w = sv.getInt32(k, true);
    ov.setInt32(o, w, true);
    const m = specials(w);
    if (m === 0) {
      k += 4;
      o += 4;
      continue;
    }
    const n = firstFlagged(m);
    o = escapeByte(buf, o + n, (w >>> (8 * n)) & 0xff);
    k += n + 1;
  }
  while (k < end) {
    const b = src[k++]!;
    if (b < 0x20 || b === 0x22 || b === 0x5c) o = escapeByte(buf, o, b);
    else buf[o++] = b;
  }
  return o;
}

/**
 * `{"ts":"…","service":"web","stream":"stdout","line":"…"}` per line. Invalid UTF-8
 * becomes U+FFFD in "line" (readable by any JSON parser), and the exact bytes are kept
 * in "line_base64" on those lines only, so nothing is lost. A piece of a cut line
 * carries "partial":true.
 */
export class JsonFormatter implements LineFormatter {
  /** Every line's object up to the opening quote of "line"; its memory goes on with spaces to a whole number of 8-byte words. */
  private readonly head: Buffer;
  private readonly tsAt: number;
  /** The head's padded memory, and the doubles read from it (see readDoubles): made once, re-read by stamp(), no garbage per chunk. */
  private readonly view: DataView;
  private readonly doubles: Float64Array;
  /** `doubles` when they hold the head (kept in step with it), else null. */
  private headDoubles: Float64Array | null = null;

  constructor(service: string, stream: "stdout" | "stderr") {
    const before = `{"ts":"`;
    const text = Buffer.from(
      `${before}${"0".repeat(TS_LEN)}","service":${JSON.stringify(service)},"stream":"${stream}","line":"`,
    );
    const padded = new Uint8Array((text.length + 7) & ~7).fill(0x20);
    padded.set(text);
    this.head = Buffer.from(padded.buffer, 0, text.length);
    this.view = new DataView(padded.buffer);
    this.doubles = new Float64Array(padded.length / 8);
    this.tsAt = before.length;
    this.headDoubles = readDoubles(this.view, this.doubles) ? this.doubles : null;
  }

  /** Stamps the lines that follow (one timestamp per chunk read: they arrived together). */
  stamp(ms: number): void {
    timestamp(ms).copy(this.head, this.tsAt);
    this.headDoubles = readDoubles(this.view, this.doubles) ? this.doubles : null;
  }

  // As in PrefixFormatter.lines: short lines through jsonKernel, the rest here. The kernel
  // starts on the block as ASCII (see ASCII); only a block with invalid UTF-8 is done line
  // by line, with replacement (line()).
  lines(out: LineTarget, src: Buffer, start: number, end: number): void {
    const head = this.head;
    const hl = head.length;
    const sv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    const kernelEnd = Math.min(end, src.length - SHORT_LINE - 4);
    const room = worstCase(hl, SHORT_LINE);
    let hi = ASCII;
    let pos = start;
    while (pos < end) {
      let buf = out.buf;
      if (pos < kernelEnd) {
        const stop = buf.length - room;
        const o = jsonKernel(sv, pos, kernelEnd, buf, viewOf(buf), out.len, stop, head, this.headDoubles, hi);
        out.len = o;
        pos = kernelAt;
        if (pos >= end) break;
        if (o > stop) {
          out.room(room);
          continue;
        }
      }
      if (hi !== 0) {
        // What the kernel left (a line with a byte of 0x80 or more, a long line, the last
        // lines) is not known to be UTF-8 yet.
        if (!isUtf8(src.subarray(pos, end))) {
          while (pos < end) {
            const nl = src.indexOf(10, pos);
            this.line(out, src, pos, nl, false);
            pos = nl + 1;
          }
          return;
        }
        hi = 0;
        continue;
      }
      // A long line, or one of the last.
      const nl = src.indexOf(10, pos);
      out.room(worstCase(hl, nl - pos, true)); // the block is valid UTF-8: no base64
      buf = out.buf;
      buf.set(head, out.len);
      let o = escapeWords(src, sv, pos, nl, buf, viewOf(buf), out.len + hl);
      buf[o++] = 0x22; // "}\n
      buf[o++] = 0x7d;
      buf[o++] = 10;
      out.len = o;
      pos = nl + 1;
    }
  }

  line(out: LineTarget, src: Buffer, start: number, end: number, partial: boolean): void {
    const head = this.head;
    out.room(worstCase(head.length, end - start));
    const buf = out.buf;
    buf.set(head, out.len);
    let o = escapeInto(buf, out.len + head.length, src, start, end);
    const invalid = o < 0;
    if (invalid) o = -o;
    buf[o++] = 0x22;
    if (invalid) {
      o += buf.write(',"line_base64":"', o, "latin1");
      o += buf.write(src.toString("base64", start, end), o, "latin1");
      buf[o++] = 0x22;
    }
    if (partial) o += buf.write(',"partial":true', o, "latin1");
    buf[o++] = 0x7d;
    buf[o++] = 10;
    out.len = o;
  }
}
