// Writes src/native/protocol.ts as the C header the stub is compiled with (protocol.h in
// the stub's temporary build directory, never committed): the structs themselves (the
// shared area, the manifest), the constants, the trampoline's words and steps, and a
// static assertion for every field's offset and size and every struct's size, so the
// compiler refuses a stub whose layout differs from the one pidone and the packer use.
import {
  AT_PIDONE,
  CONSTANTS,
  CONTROL,
  MAGIC,
  MANIFEST_MAGIC,
  SIZE,
  STRUCTS,
  TRAMPOLINE,
  TYPE_SIZE,
  layout,
  type Struct,
} from "../../src/native/protocol.ts";

/** A C string literal: printable ASCII as is, the rest as octal escapes. */
function cString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    if (code > 0xff) throw new Error(`protocol: ${JSON.stringify(s)} is not latin1`);
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (code < 0x20 || code > 0x7e) out += `\\${code.toString(8).padStart(3, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function cNumber(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`protocol: ${n} is not a u32`);
  return n > 0x7fffffff ? `0x${n.toString(16)}u` : String(n);
}

function comment(text: string): string {
  if (text.includes("*/")) throw new Error(`protocol: a meaning holds "*/": ${text}`);
  return `/* ${text} */`;
}

/** `struct NAME { ... };` and, per field, its offset as SHARED_OFFSET_FIELD (the shared
 *  area's, which the assembly uses) and the assertions of its offset and size. */
function struct(st: Struct): string[] {
  const { offset, size } = layout(st.fields);
  const L = [`struct ${st.name} {`];
  for (const f of st.fields) {
    const type = typeof f.type === "string" ? f.type : `struct ${f.type.name}`;
    L.push(`  ${type} ${f.name}${f.count ? `[${f.count}]` : ""}; ${comment(f.meaning)}`);
  }
  L.push("};");
  const where = `src/native/protocol.ts: ${st.name}`;
  for (const f of st.fields) {
    const at = st.name === "shared" ? `SHARED_OFFSET_${f.name.toUpperCase()}` : String(offset[f.name]);
    if (st.name === "shared") L.push(`#define ${at} ${offset[f.name]}`);
    const bytes = (typeof f.type === "string" ? TYPE_SIZE[f.type] : layout(f.type.fields).size) * (f.count ?? 1);
    L.push(`_Static_assert(__builtin_offsetof(struct ${st.name}, ${f.name}) == ${at}, "${where}.${f.name}");`);
    L.push(`_Static_assert(sizeof(((struct ${st.name} *)0)->${f.name}) == ${bytes}, "${where}.${f.name}");`);
    if (f.perSignal) L.push(`_Static_assert(${f.count ?? 1} >= NSIG, "${where}.${f.name} is indexed by signal");`);
  }
  L.push(`_Static_assert(sizeof(struct ${st.name}) == ${size}, "${where}: the size");`);
  return L;
}

export function protocolHeader(): string {
  const L: string[] = [
    "/* Generated from src/native/protocol.ts by scripts/pack/protocol-header.ts: edit that file.",
    " * Needs the u8, s32, u32 and u64 typedefs first. */",
    "#ifndef PIDONE_PROTOCOL_H",
    "#define PIDONE_PROTOCOL_H",
    "",
    `#define SHARED_MAGIC ${cString(MAGIC)}`,
    `#define SHARED_SIZE ${SIZE}`,
    `#define AT_PIDONE 0x${AT_PIDONE.toString(16)}`,
    "",
  ];
  for (const [name, [value, meaning]] of Object.entries(CONSTANTS)) L.push(`#define ${name} ${cNumber(value)} ${comment(meaning)}`);

  L.push("", "_Static_assert(sizeof(u8) == 1 && sizeof(s32) == 4 && sizeof(u32) == 4 && sizeof(u64) == 8, \"the typedefs\");");
  for (const st of STRUCTS) L.push("", ...struct(st));
  L.push(`_Static_assert(sizeof(struct shared) == SHARED_SIZE, "src/native/protocol.ts: the size");`, "");
  L.push(`#define MANIFEST_MAGIC ${cString(MANIFEST_MAGIC)}`);
  L.push(`#define TRAMPOLINE_MARKER ${cString(TRAMPOLINE.marker)}`);
  for (const [name, [word, meaning]] of Object.entries(TRAMPOLINE.words)) L.push(`#define WORD_${name} ${cString(word)} ${comment(meaning)}`);
  for (const [name, [step, meaning]] of Object.entries(TRAMPOLINE.steps)) L.push(`#define STEP_${name} ${step} ${comment(meaning)}`);
  L.push(`#define STEP_WARNING 0x${TRAMPOLINE.STEP_WARNING.toString(16)}`);
  L.push(`#define REPORT_RECORD_SIZE ${TRAMPOLINE.RECORD_SIZE}`);
  for (const [name, value] of Object.entries(CONTROL))
    L.push(`#define CTL_${name} ${typeof value === "string" ? cString(value) : cNumber(value)}`);
  L.push("", "#endif", "");
  return L.join("\n");
}

// bun scripts/pack/protocol-header.ts: print it, to read what the stub is compiled with.
if (import.meta.main) process.stdout.write(protocolHeader());
