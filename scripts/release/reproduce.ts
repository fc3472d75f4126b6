// Rebuilds a release twice and compares the files byte for byte: two fresh clones of one
// commit, in two different directories, each with its own `npm ci`, built one after the
// other under a different time zone and umask. Signatures are left out (they carry the
// time they were made): the release is built unsigned. With --against, the rebuilt
// SHA256SUMS is also compared with a published one.
//
//   bun scripts/release/reproduce.ts [--commit REV] [--against SHA256SUMS] [--offline] [--keep]
//
// Exit 0 when every file matches; 1 naming each file that differs (and where).
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(new URL("../..", import.meta.url).pathname);
const { values } = parseArgs({
  options: {
    commit: { type: "string", default: "HEAD" },
    against: { type: "string" },
    offline: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log("usage: bun scripts/release/reproduce.ts [--commit REV] [--against SHA256SUMS] [--offline] [--keep]");
  process.exit(0);
}

function step(cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): string {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error(`${cmd.join(" ")} failed (exit ${r.exitCode}):\n${r.stdout.toString()}${r.stderr.toString()}`);
  return r.stdout.toString();
}

const commit = Bun.spawnSync(["git", "-C", root, "rev-parse", "--verify", "--quiet", `${values.commit}^{commit}`]).stdout.toString().trim();
if (!commit) {
  console.error(`reproduce: ${values.commit} is not a commit of ${root}`);
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), "pidone-reproduce-"));
// Two unrelated places, at different depths: nothing of the path may reach the bytes.
const clones = [join(work, "a", "pidone"), join(work, "second", "build", "elsewhere", "pidone-copy")];

interface Build {
  dir: string;
  out: string;
  sums: Map<string, string>;
}

function build(clone: string, env: Record<string, string | undefined>, umask: string): Build {
  mkdirSync(join(clone, ".."), { recursive: true });
  step(["git", "clone", "--quiet", "--no-local", "--no-checkout", root, clone]);
  step(["git", "-C", clone, "checkout", "--quiet", "--detach", commit]);
  const started = performance.now();
  step(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", ...(values.offline ? ["--offline"] : ["--prefer-offline"])], { cwd: clone });
  const out = join(clone, "dist", "release");
  // Unsigned: a signature records when it was made.
  step(["sh", "-c", `umask ${umask}; exec "$@"`, "sh", process.execPath, "scripts/release.ts", "--out", out], {
    cwd: clone,
    env: { ...env, PIDONE_SIGNING_KEY: undefined, PIDONE_SIGNING_PASSPHRASE: undefined, SOURCE_DATE_EPOCH: undefined },
  });
  console.log(`built ${commit.slice(0, 12)} in ${clone} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  const sums = new Map<string, string>();
  for (const name of readdirSync(out).sort()) sums.set(name, createHash("sha256").update(readFileSync(join(out, name))).digest("hex"));
  return { dir: clone, out, sums };
}

function firstDifference(a: string, b: string): string {
  const x = readFileSync(a);
  const y = readFileSync(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return `first difference at byte ${i}`;
  return `sizes ${x.length} and ${y.length}`;
}

let problems = 0;
try {
  const one = build(clones[0]!, { TZ: "UTC" }, "022");
  const two = build(clones[1]!, { TZ: "Pacific/Kiritimati", LC_ALL: "C" }, "027");
  const names = [...new Set([...one.sums.keys(), ...two.sums.keys()])].sort();
  for (const name of names) {
    const [a, b] = [one.sums.get(name), two.sums.get(name)];
    if (a && a === b) {
      console.log(`  same      ${name}`);
      continue;
    }
    problems++;
    const why = !a || !b ? `only in the ${a ? "first" : "second"} build` : firstDifference(join(one.out, name), join(two.out, name));
    console.log(`  DIFFERENT ${name}: ${why}`);
  }
  if (values.against) {
    const published = readFileSync(values.against, "utf8").trim().split("\n");
    for (const line of published) {
      const [hash, name] = line.split(/ [ *]/);
      const rebuilt = one.sums.get(name ?? "");
      if (rebuilt === hash) console.log(`  as published  ${name}`);
      else {
        problems++;
        console.log(`  NOT AS PUBLISHED ${name}: ${rebuilt ? `rebuilt ${rebuilt}` : "not rebuilt"}, published ${hash}`);
      }
    }
  }
  console.log(
    problems
      ? `reproduce: ${problems} difference(s) for ${commit}`
      : `reproduce: ${names.length} files identical in both builds${values.against ? " and as published" : ""} (${commit})`,
  );
} catch (e) {
  problems++;
  console.error(`reproduce: ${(e as Error).message}`);
} finally {
  if (values.keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(problems ? 1 : 0);
