// npm run demo: runs dist/pidone on the built-in multi-service example
// (scripts/demo/services.toml) for a few seconds, asks it for its services' status as an
// operator would (`pidone --ctl status`), then stops it the way `docker stop` does
// (SIGTERM) and shows the exit status. As root it runs as PID 1 of a new PID
// namespace; otherwise as a subreaper (-s).
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const pidone = `${root}dist/pidone`;
const config = `${root}scripts/demo/services.toml`;
if (!existsSync(pidone)) {
  console.error("dist/pidone is missing: run npm run build");
  process.exit(1);
}
const asRoot = process.getuid?.() === 0 && Bun.which("unshare") !== null;
// A socket of the demo's own: the default /run/pidone may be another pidone's, or not writable.
const control = join(mkdtempSync(join(tmpdir(), "pidone-demo-")), "control.sock");
const cmd = asRoot
  ? ["unshare", "--pid", "--fork", "--mount-proc", pidone, "--control", control, "-c", config]
  : [pidone, "-s", "--control", control, "-c", config];
const seconds = Number(process.env.DEMO_SECONDS ?? 6);

console.log(`$ ${cmd.map((a) => (a.includes(" ") ? `'${a}'` : a)).join(" ")}`);
const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
await Bun.sleep((seconds * 1000) / 2);
console.log(`\n$ pidone --ctl --control ${control} status   # or: docker exec CONTAINER /pidone --ctl status`);
await Bun.spawn([pidone, "--ctl", "--control", control, "status"], { stdout: "inherit", stderr: "inherit" }).exited;
console.log();
await Bun.sleep((seconds * 1000) / 2);
// unshare forwards nothing: signal pidone itself (unshare's only child).
const target = asRoot ? Number((await Bun.file(`/proc/${proc.pid}/task/${proc.pid}/children`).text()).trim().split(" ")[0]) : proc.pid;
console.log(`\n$ kill -TERM ${target}   # what docker stop does`);
const t0 = performance.now();
process.kill(target, "SIGTERM");
const code = await proc.exited;
console.log(`\npidone exited with status ${code} after a ${((performance.now() - t0) / 1000).toFixed(2)} s stop`);
process.exit(code);
