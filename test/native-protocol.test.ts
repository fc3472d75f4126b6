// The stub <-> pidone protocol has one definition, src/native/protocol.ts: the C header
// the stub is compiled with is generated from it and refuses a layout that differs, the
// packed file carries its magic on both sides, and a file packed from mismatched builds
// stops at start-up with one line instead of running without its helper.
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { MAGIC, OFFSET, SHARED_FIELDS, SIZE, STRUCTS, layout } from "../src/native/protocol.ts";
import { protocolHeader } from "../scripts/pack/protocol-header.ts";
import { AS_PID1, PIDONE, ROOT, needs, run, tempDir } from "./helpers.ts";
import { NATIVE, SINGLE_FILE } from "./fixtures/native-lib.ts";

/** Compiles a C file that includes the generated protocol.h; returns cc's result. */
async function compileWithHeader(header: string, main: string, out: string | null) {
  const dir = tempDir("pidone-protocol-");
  writeFileSync(join(dir, "protocol.h"), header);
  writeFileSync(join(dir, "main.c"), main);
  const args = out ? ["-o", out] : ["-fsyntax-only"];
  const r = await run(["cc", "-std=gnu11", "-Wall", "-Werror", "-I", dir, ...args, join(dir, "main.c")]);
  rmSync(dir, { recursive: true, force: true });
  return r;
}

const TYPEDEFS = "typedef unsigned long u64; typedef unsigned int u32; typedef unsigned char u8; typedef int s32;\n";

describe("the generated header", () => {
  test("C lays every struct out at the offsets pidone and the packer use (the shared area, the manifest)", async () => {
    const exe = join(tempDir("pidone-protocol-"), "offsets");
    const lines = STRUCTS.flatMap((st) => [
      ...st.fields.map((f) => `  printf("${st.name}.${f.name} %zu\\n", __builtin_offsetof(struct ${st.name}, ${f.name}));`),
      `  printf("${st.name} %zu\\n", sizeof(struct ${st.name}));`,
    ]);
    const main = `#include <stdio.h>\n${TYPEDEFS}#include "protocol.h"\nint main(void) {\n${lines.join("\n")}\n  return 0;\n}\n`;
    const built = await compileWithHeader(protocolHeader(), main, exe);
    expect(built.code, built.stderr).toBe(0);
    const r = await run([exe]);
    const want = STRUCTS.flatMap((st) => {
      const l = layout(st.fields);
      return [...st.fields.map((f) => `${st.name}.${f.name} ${l.offset[f.name]}`), `${st.name} ${l.size}`];
    });
    expect(r.stdout.trim().split("\n")).toEqual(want);
    // native.ts reads the shared area through OFFSET and SIZE: the same numbers.
    expect(want).toContain(`shared ${SIZE}`);
    for (const f of SHARED_FIELDS) expect(want).toContain(`shared.${f.name} ${OFFSET[f.name]}`);
  });

  test("swapping two fields of the same size is refused at compile time", async () => {
    const header = protocolHeader();
    const mask = /^ {2}u64 mask;.*$/m.exec(header)![0];
    const ignored = /^ {2}u64 ignored;.*$/m.exec(header)![0];
    const swapped = header.replace(mask, "@").replace(ignored, mask).replace("@", ignored);
    expect(swapped).not.toBe(header);
    const r = await compileWithHeader(swapped, `${TYPEDEFS}#include "protocol.h"\n`, null);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("src/native/protocol.ts: shared.mask");
  });

  test("the magics and the trampoline's marker are spelled only in src/native/protocol.ts", () => {
    const own = join(ROOT, "src/native/protocol.ts");
    const spelled: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (name === "node_modules" || name === "results") continue;
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.(ts|c|h)$/.test(name) && path !== own) {
          const text = readFileSync(path, "latin1");
          if (/pidone-(native|stub)-v?\d|\\(x01|001)pidone-exec/.test(text)) spelled.push(relative(ROOT, path));
        }
      }
    };
    for (const top of ["src", "scripts", "test"]) walk(join(ROOT, top));
    expect(spelled).toEqual([]);
  });
});

/** The stub's copy of the shared area in a packed file: the magic, NUL-padded, then the size. */
function stubMagicOffsets(bytes: Buffer): number[] {
  const needle = Buffer.from(`${MAGIC}\0`, "latin1");
  const out: number[] = [];
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1))
    if (bytes.readUInt32LE(at + OFFSET.size) === SIZE) out.push(at);
  return out;
}

needs(NATIVE, SINGLE_FILE)("the packed file", () => {
  const bytes = readFileSync(PIDONE);

  test("carries the magic in the stub's shared area and in the JavaScript payload", () => {
    expect(stubMagicOffsets(bytes)).toHaveLength(1);
    // The payload's copy: the packer turns the native helper on only when it finds it.
    let copies = 0;
    for (let at = bytes.indexOf(MAGIC); at >= 0; at = bytes.indexOf(MAGIC, at + 1)) copies++;
    expect(copies).toBeGreaterThan(1);
  });

  /** A copy of the single file whose stub says `magic` and `size`; its JavaScript is untouched. */
  function patched(magic: string, size: number): string {
    const copy = Buffer.from(bytes);
    const [at] = stubMagicOffsets(copy);
    copy.fill(0, at!, at! + OFFSET.size);
    copy.write(magic, at!, "latin1");
    copy.writeUInt32LE(size, at! + OFFSET.size);
    const file = join(tempDir("pidone-mismatch-"), "pidone");
    writeFileSync(file, copy, { mode: 0o755 });
    return file;
  }

  test("a stub of another protocol version: one line and exit 1, as PID 1 too, and the child never runs", async () => {
    const other = MAGIC.replace(/\d+$/, "0");
    const file = patched(other, SIZE);
    try {
      for (const prefix of [[], AS_PID1]) {
        const r = await run([...prefix, file, "--", "sh", "-c", "echo ran"]);
        expect(r.code).toBe(1);
        expect(r.stdout).toBe("");
        expect(r.stderr).toBe(
          `pidone: the native helper in this file speaks ${other}, this pidone needs ${MAGIC}: the file was packed from mismatched builds\n`,
        );
      }
    } finally {
      rmSync(file, { force: true });
    }
  });

  test("a stub with the same magic but another size: one line and exit 1", async () => {
    const file = patched(MAGIC, SIZE + 8);
    try {
      const r = await run([file, "--", "sh", "-c", "echo ran"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        `pidone: the native helper in this file has a ${SIZE + 8}-byte shared area, this pidone needs ${SIZE} bytes of ${MAGIC}: the file was packed from mismatched builds\n`,
      );
    } finally {
      rmSync(file, { force: true });
    }
  });
});
