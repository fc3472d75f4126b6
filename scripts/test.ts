// npm test: prepare the machine (scripts/setup-test-env.sh), run bun test, and end
// with the one line CI reads: "N passed, N failed".
//   bun scripts/test.ts [bun test arguments...]
const root = new URL("..", import.meta.url).pathname;

const setup = Bun.spawnSync(["bash", `${root}scripts/setup-test-env.sh`], { stdout: "inherit", stderr: "inherit" });
if (setup.exitCode !== 0) {
  console.log("test setup failed");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

// Integration tests start real namespaces and containers: give each a generous limit
// (bunfig.toml has no key for it).
const args = process.argv.slice(2);
if (!args.some((a) => a.startsWith("--timeout"))) args.unshift("--timeout=120000");
const proc = Bun.spawn([process.execPath, "test", ...args], {
  cwd: root,
  stdout: "inherit",
  stderr: "pipe",
  env: { ...process.env, FORCE_COLOR: "0" },
});
// bun test prints its summary on stderr; pass it through while counting.
let tail = "";
const decoder = new TextDecoder();
for await (const chunk of proc.stderr) {
  process.stderr.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const code = await proc.exited;
const passed = Number(/^\s*(\d+) pass$/m.exec(tail)?.[1] ?? 0);
let failed = Number(/^\s*(\d+) fail$/m.exec(tail)?.[1] ?? 0);
if (code !== 0 && failed === 0) failed = 1; // a crash or load error is a failure too
console.log(`${passed} passed, ${failed} failed`);
process.exit(code === 0 && failed === 0 ? 0 : 1);
