// npm run build: dist/pidone for this machine, the single file that runs in any image
// (the Bun executable packed by scripts/pack/ with the stub, ld.so and the C libraries),
// and beside it dist/pidone-glibc, the plain Bun executable it is packed from.
//   bun scripts/build.ts [--target bun-linux-x64-baseline] [--outfile dist/pidone]
import { $ } from "bun";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { COMPILE_FLAGS } from "./compile-flags.ts";
import { packFile } from "./pack/index.ts";
import { NATIVE_MARKER } from "./pack/pack.ts";

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    outfile: { type: "string", default: "dist/pidone" },
  },
});

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
  "src/main.ts",
  // The service output's worker thread (src/services/output.ts loads it from the
  // executable's own file system; without it the output runs on the main thread).
  "src/services/output-worker.ts",
  "--outfile",
  plain,
];
const r = Bun.spawnSync([process.execPath, ...flags], { cwd: root, stdout: "inherit", stderr: "inherit" });
if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
try {
  const packed = packFile(resolve(root, plain), resolve(root, outfile));
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
}
