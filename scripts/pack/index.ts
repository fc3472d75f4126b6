// Packs one Bun executable into pidone's single file:
//   bun scripts/pack/index.ts [--arch amd64|arm64] [--libc6 DIR] <bun-executable> <output>
// The architecture defaults to the executable's own; the C libraries come from an
// unpacked libc6 .deb (--libc6), by default the one scripts/release/lock.ts chooses. Never run strip or patchelf on the
// output: both rewrite the file from its section headers and drop what is appended.
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ARCH_INFO, ARCHES, libraryPath, parseArch, type Arch } from "./arch.ts";
import { libc6For } from "../release/lock.ts";
import { DT_NEEDED, Elf } from "./elf.ts";
import { pack, type PackResult } from "./pack.ts";
import { buildStub, type StubImage } from "./stub.ts";

export function archOf(executable: Uint8Array, name: string): Arch {
  const machine = new Elf(executable, name).header.machine;
  const arch = ARCHES.find((a) => ARCH_INFO[a].machine === machine);
  if (!arch) throw new Error(`${name}: ELF machine ${machine} is neither amd64 nor arm64`);
  return arch;
}

const stubs = new Map<Arch, StubImage>();
function stubFor(arch: Arch): StubImage {
  let s = stubs.get(arch);
  if (!s) stubs.set(arch, (s = buildStub(arch)));
  return s;
}

/**
 * Packs `input` (a plain Bun executable) into `output`, written atomically with mode 0755,
 * with the C libraries found under `libc6` (an unpacked libc6 .deb of the target's
 * architecture); without it, those of the lock's libc6 or its stand-in (libc6For).
 */
export function packFile(input: string, output: string, arch?: Arch, libc6?: string): PackResult & { arch: Arch } {
  const runtime = new Uint8Array(readFileSync(input));
  const target = arch ?? archOf(runtime, input);
  if (libc6 === undefined) {
    const chosen = libc6For([target], "prefer");
    try {
      return packFile(input, output, target, chosen.roots[target]!);
    } finally {
      chosen.dispose();
    }
  }
  const info = ARCH_INFO[target];
  const elf = new Elf(runtime, input);
  const libraries = new Map<string, Uint8Array>();
  for (const d of elf.dynamic()) {
    if (d.tag !== DT_NEEDED) continue;
    const name = elf.dynamicString(d.value);
    if (name !== info.ldso) libraries.set(name, new Uint8Array(readFileSync(libraryPath(target, libc6, name))));
  }
  const result = pack({
    runtime,
    stub: stubFor(target),
    machine: info.machine,
    ldso: new Uint8Array(readFileSync(libraryPath(target, libc6, info.ldso))),
    libraries,
  });
  const tmp = `${output}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, result.bytes);
    chmodSync(tmp, 0o755);
    renameSync(tmp, output);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { ...result, arch: target };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ options: { arch: { type: "string" }, libc6: { type: "string" } }, allowPositionals: true });
  const [input, output] = positionals;
  if (!input || !output) {
    console.error("usage: bun scripts/pack/index.ts [--arch amd64|arm64] [--libc6 DIR] <bun-executable> <output>");
    process.exit(2);
  }
  const r = packFile(input, output, values.arch ? parseArch(values.arch) : undefined, values.libc6);
  console.log(
    `${output}: ${r.arch}, +${r.added.total} bytes (stub ${r.added.stub}, ld.so ${r.added.ldso}, libraries ${r.added.libraries})` +
      `, native helper ${r.native ? "on" : "off (the payload does not use it)"}`,
  );
}
