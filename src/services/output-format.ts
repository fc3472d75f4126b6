// Byte-level line formatters for the service output multiplexer: one formatted line is
// appended straight into an output buffer, with no strings and no allocation per line.
// Prefix mode never decodes text (service output need not be UTF-8); JSON mode
// validates UTF-8 (SIMD, once per block of lines), as a JSON string must be valid Unicode.
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

/** Lines up to this long are copied in JS, longer ones with native calls (see PrefixFormatter). */
const SHORT_LINE = 128;

// Very short runs are copied in JS: below ~16 bytes a native Buffer.copy costs more (measured).
const NATIVE_COPY_MIN = 16;
function copy(out: Buffer, o: number, src: Buffer, start: number, end: number): number {
  if (end - start < NATIVE_COPY_MIN) {
    for (let k = start; k < end; k++) out[o++] = src[k]!;
    return o;
  }
  return o + src.copy(out, o, start, end);
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

export class PrefixFormatter implements LineFormatter {
  constructor(private readonly prefix: Buffer) {}

  // The hot loop of prefix mode. Short lines are scanned and copied byte by byte in one
  // pass: per line, a native memchr and memcpy cost more than that (profiled: 45 % of the
  // CPU for 1,000,000 short lines went to those two calls). Longer lines start over with them.
  lines(out: LineTarget, src: Buffer, start: number, end: number): void {
    const p = this.prefix;
    const pl = p.length;
    let buf = out.buf;
    let o = out.len;
    let pos = start;
    while (pos < end) {
      if (buf.length - o < pl + SHORT_LINE) {
        out.len = o;
        out.room(pl + SHORT_LINE);
        buf = out.buf;
        o = out.len;
      }
      const lineAt = o;
      for (let k = 0; k < pl; k++) buf[o++] = p[k]!;
      const limit = Math.min(end, pos + SHORT_LINE);
      let k = pos;
      let b = 0;
      while (k < limit) {
        b = src[k++]!;
        buf[o++] = b;
        if (b === 10) break;
      }
      if (b === 10) {
        pos = k;
        continue;
      }
      o = lineAt;
      const nl = src.indexOf(10, k);
      const need = pl + nl + 1 - pos;
      if (buf.length - o < need) {
        out.len = o;
        out.room(need);
        buf = out.buf;
        o = out.len;
      }
      for (let k = 0; k < pl; k++) buf[o++] = p[k]!;
      o = copy(buf, o, src, pos, nl + 1);
      pos = nl + 1;
    }
    out.len = o;
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
// multi-byte sequence that must be checked. Text already known to be valid UTF-8 uses
// VALID_TEXT, where multi-byte sequences are copied as is.
const CHECK_TEXT = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) CHECK_TEXT[b] = 1;
CHECK_TEXT[0x22] = 1;
CHECK_TEXT[0x5c] = 1;
for (let b = 0x80; b < 0x100; b++) CHECK_TEXT[b] = 2;
const VALID_TEXT = CHECK_TEXT.map((c) => (c === 2 ? 0 : c));
const SHORT_ESCAPE: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 8: 0x62, 9: 0x74, 10: 0x6e, 12: 0x66, 13: 0x72 };
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
  const short = SHORT_ESCAPE[b];
  if (short !== undefined) buf[o++] = short;
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
 * Appends src[start, end) as the body of a JSON string. `table` is VALID_TEXT when the
 * bytes are known to be valid UTF-8. Returns the new offset, negated when invalid bytes
 * were replaced by U+FFFD.
 */
function escapeInto(buf: Buffer, o: number, src: Buffer, start: number, end: number, table: Uint8Array): number {
  if (end - start >= LONG_TEXT) return escapeLong(buf, o, src, start, end, table);
  replaced = false;
  let i = start;
  while (i < end) {
    // Copy the run of bytes that need nothing, then deal with the one that stopped it.
    let j = i;
    while (j < end && table[src[j]!] === 0) j++;
    o = copy(buf, o, src, i, j);
    if (j === end) break;
    o = special(buf, o, src, j, end, table);
    i = after;
  }
  return replaced ? -o : o;
}

// What special() leaves for its caller: where scanning resumes, and whether invalid UTF-8
// was replaced (module state: no object per call on the hot path).
let after = 0;
let replaced = false;

/** The byte at `j` needs something: an escape, a whole UTF-8 sequence, or U+FFFD. */
function special(buf: Buffer, o: number, src: Buffer, j: number, end: number, table: Uint8Array): number {
  const b = src[j]!;
  if (table[b] === 1) {
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
// character), not byte by byte in JS: measured ~5x faster on 64 KiB lines of plain text.
const LONG_TEXT = 512;
const NEEDS_ESCAPE = /[\x00-\x1f"\\]/g;
const NEEDS_LOOK = /[\x00-\x1f"\\\x80-\xff]/g;

/** As escapeInto, for long text: only the bytes that need something are looked at in JS. */
function escapeLong(buf: Buffer, o: number, src: Buffer, start: number, end: number, table: Uint8Array): number {
  const text = src.toString("latin1", start, end);
  const re = table === VALID_TEXT ? NEEDS_ESCAPE : NEEDS_LOOK;
  replaced = false;
  let i = start;
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(text);
    const j = m ? start + m.index : end;
    o = copy(buf, o, src, i, j);
    if (j === end) break;
    o = special(buf, o, src, j, end, table);
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
 * `{"ts":"…","service":"web","stream":"stdout","line":"…"}` per line. Invalid UTF-8
 * becomes U+FFFD in "line" (readable by any JSON parser), and the exact bytes are kept
 * in "line_base64" on those lines only, so nothing is lost. A piece of a cut line
 * carries "partial":true.
 */
export class JsonFormatter implements LineFormatter {
  private readonly head: Buffer;
  private readonly tsAt: number;

  constructor(service: string, stream: "stdout" | "stderr") {
    const before = `{"ts":"`;
    this.head = Buffer.from(
      `${before}${"0".repeat(TS_LEN)}","service":${JSON.stringify(service)},"stream":"${stream}","line":"`,
    );
    this.tsAt = before.length;
  }

  /** Stamps the lines that follow (one timestamp per chunk read: they arrived together). */
  stamp(ms: number): void {
    timestamp(ms).copy(this.head, this.tsAt);
  }

  lines(out: LineTarget, src: Buffer, start: number, end: number): void {
    // One SIMD check for the whole block; only a block with invalid UTF-8 is checked byte by byte.
    if (!isUtf8(src.subarray(start, end))) {
      for (let pos = start; pos < end;) {
        const nl = src.indexOf(10, pos);
        this.line(out, src, pos, nl, false);
        pos = nl + 1;
      }
      return;
    }
    // As in PrefixFormatter.lines: short lines in one JS pass, longer ones with memchr.
    const head = this.head;
    const hl = head.length;
    let buf = out.buf;
    let o = out.len;
    let pos = start;
    while (pos < end) {
      if (buf.length - o < worstCase(hl, SHORT_LINE)) {
        out.len = o;
        out.room(worstCase(hl, SHORT_LINE));
        buf = out.buf;
        o = out.len;
      }
      const lineAt = o;
      buf.set(head, o); // native: faster than a loop for ~75 bytes (measured)
      o += hl;
      const limit = Math.min(end, pos + SHORT_LINE);
      let k = pos;
      let b = 0;
      while (k < limit) {
        b = src[k++]!;
        if (b === 10) break;
        if (VALID_TEXT[b] === 0) buf[o++] = b;
        else o = escapeByte(buf, o, b);
      }
      if (b !== 10) {
        o = lineAt;
        const nl = src.indexOf(10, k);
        const need = worstCase(hl, nl - pos, true); // the block is valid UTF-8: no base64
        if (buf.length - o < need) {
          out.len = o;
          out.room(need);
          buf = out.buf;
          o = out.len;
        }
        buf.set(head, o);
        o = escapeInto(buf, o + hl, src, pos, nl, VALID_TEXT);
        k = nl + 1;
      }
      buf[o++] = 0x22; // "}\n
      buf[o++] = 0x7d;
      buf[o++] = 10;
      pos = k;
    }
    out.len = o;
  }

  line(out: LineTarget, src: Buffer, start: number, end: number, partial: boolean): void {
    const head = this.head;
    out.room(worstCase(head.length, end - start));
    const buf = out.buf;
    buf.set(head, out.len);
    let o = escapeInto(buf, out.len + head.length, src, start, end, CHECK_TEXT);
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
