// npm run build: dist/pidone for this machine, the single file that runs in any image
// (the Bun executable packed by scripts/pack/ with the stub, ld.so and the C libraries),
// and beside it dist/pidone-glibc, the plain Bun executable it is packed from.
//   bun scripts/build.ts [--target bun-linux-x64-baseline] [--outfile dist/pidone]
//                        [--libc6 DIR] [--runtime FILE]
// The C libraries come from Debian's libc6 and a --target's runtime from npm, both as
// scripts/release/lock.ts chooses (the lock's while they can be had), or as given:
// --libc6, an unpacked libc6 .deb of the target's architecture; --runtime, the target's
// Bun executable (npm run release passes both, checked strictly against the lock).
import { $ } from "bun";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { COMPILE_FLAGS } from "./compile-flags.ts";
import { archOfTarget, hostArch } from "./pack/arch.ts";
import { archOf, packFile } from "./pack/index.ts";
import { NATIVE_MARKER } from "./pack/pack.ts";
import { libc6For, runtimeFor, type Libc6 } from "./release/lock.ts";

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    outfile: { type: "string", default: "dist/pidone" },
    libc6: { type: "string" },
    runtime: { type: "string" },
  },
});

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}

/** The lock's and the fetchers' failures are one line each; anything else is a bug. */
function inputs<T>(get: () => T): T {
  try {
    return get();
  } catch (e) {
    if (e instanceof Error && (e.name === "LockError" || e.name === "FetchError")) fail(e.message);
    throw e;
  }
}

const arch = values.target ? archOfTarget(values.target) : hostArch();
// `bun build --compile --target` would fetch the runtime into Bun's cache unchecked;
// a target this file does not know is left to Bun.
const runtime = values.runtime ?? (values.target && arch ? inputs(() => runtimeFor(arch, "prefer")).path : undefined);

const root = new URL("..", import.meta.url).pathname;
async function gitCommit(): Promise<string> {
  const r = await $`git -C ${root} rev-parse --short=7 HEAD`.quiet().nothrow();
  const hash = r.stdout.toString().trim();
  return /^[0-9a-f]{7}$/.test(hash) ? hash : "0000000";
}

const outfile = values.outfile!;
const plain = `${outfile}-glibc`;
mkdirSync(dirname(resolve(root, outfile)), { recursive: true });
const flags = [
  "build",
  ...COMPILE_FLAGS,
  `--define=PIDONE_VERSION=${JSON.stringify(pkg.version)}`,
  `--define=PIDONE_GIT=${JSON.stringify(await gitCommit())}`,
  ...(values.target ? [`--target=${values.target}`] : []),
  ...(runtime ? [`--compile-executable-path=${runtime}`] : []),
  "src/main.ts",
  // The service output's worker thread (src/services/output.ts loads it from the
  // executable's own file system; without it the output runs on the main thread).
  "src/services/output-worker.ts",
  "--outfile",
  plain,
];
const r = Bun.spawnSync([process.execPath, ...flags], { cwd: root, stdout: "inherit", stderr: "inherit" });
if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
let chosen: Libc6 | undefined;
try {
  const packArch = arch ?? archOf(new Uint8Array(readFileSync(resolve(root, plain))), plain);
  if (!values.libc6) chosen = inputs(() => libc6For([packArch], "prefer"));
  const packed = packFile(resolve(root, plain), resolve(root, outfile), packArch, values.libc6 ?? chosen!.roots[packArch]);
  // pidone's payload always carries the protocol's magic (src/sys/native.ts imports
  // src/native/protocol.ts, which the stub was just compiled from): if the packer did not
  // find it, the bundle lost native.ts or its view of the protocol, and the single file
  // would start without its native helper.
  if (!packed.native) {
    throw new Error(`${outfile}: the payload lacks the protocol's magic ${NATIVE_MARKER} (src/native/protocol.ts): is src/sys/native.ts still bundled?`);
  }
} catch (e) {
  // Without a C compiler the stub cannot be built: keep a working dist/pidone (the plain
  // executable, which runs on this glibc machine) and say what is missing.
  if (!/needs .*apt-get install/.test(String(e))) throw e;
  copyFileSync(resolve(root, plain), resolve(root, outfile));
  console.warn(`warning: dist/pidone is the plain executable, not the single file: ${(e as Error).message}`);
} finally {
  chosen?.dispose();
}
if (chosen) console.log(`${outfile}: libc6 ${chosen.version}${chosen.fromLock ? " (the lock's)" : " (not the lock's)"}`);
