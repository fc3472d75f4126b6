// The memory floors: for each subject and mode, the smallest Docker memory limit
// (`-m X --memory-swap X`, MiB granularity) at which it starts and does its job, found by
// bisection. Each probe is bounded (`timeout -k 5 30 docker run --sig-proxy=false`): below
// the floor a probe can stall for minutes, and a timeout counts as a failure.
//
// Cold: the page cache is dropped before each probe, so the container pays for every page
// of the file it touches: this is "the floor". Warm: the same command ran first without a
// limit, so its page cache is charged to a container that is gone, as when another
// container from the same image already pays for it.
//
//   bun scripts/stress/floors.ts [--only pidone,pidone-glibc,bun-empty,tini] [--modes tini,pause,services]
//       [--cache cold,warm] [--variant 'LABEL=PATH [VAR=VALUE...]'] [--env-glibc 'VAR=VALUE ...'] [--max MIB] [--out DIR]
//
// --variant adds another single file (another build of dist/pidone) as one more subject of
// the same run; VAR=VALUE are set in its container (the plain -glibc file obeys BUN_*,
// MIMALLOC_*; the single file hides them). Writes DIR/floors-<date>.json and .md (DIR:
// scripts/bench/results). Needs root (drop_caches) and dockerd.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rootfs } from "../lib/rootfs.ts";
import { capture, mustRun, sleep } from "../bench/lib/proc.ts";
import { ROOT, compileBun, ensurePackages, isPacked, packer } from "../bench/lib/prepare.ts";

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    modes: { type: "string", default: "tini,pause,services" },
    cache: { type: "string", default: "cold,warm" },
    variant: { type: "string", multiple: true, default: [] },
    "env-glibc": { type: "string" },
    out: { type: "string", default: join(ROOT, "scripts/bench/results") },
    max: { type: "string", default: "96" },
  },
});

/** Docker refuses a memory limit below 6 MiB. */
const DOCKER_MIN = 6;
const LINES = 20_000;
const IMAGE = "pidone-floors:latest";
const ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", DOCKER_BUILDKIT: "0" };
const say = (s: string) => process.stderr.write(`[floors] ${s}\n`);

type Mode = "tini" | "pause" | "services" | "start";
interface Subject {
  id: string;
  /** The file on the host, and where the image has it. */
  host: string;
  path: string;
  modes: Mode[];
  env: string[];
  /** The exit code of a clean stop by SIGTERM in the pause mode. */
  pauseCode: number;
}
interface Probe {
  mib: number;
  ok: boolean;
  why: string;
  ms: number;
}

/** One mode's command line and its verdict on what came out. */
const MODES: Record<Mode, { args: (s: Subject) => string[]; what: string }> = {
  tini: { args: () => ["--", "sh", "-c", "echo ok; exit 3"], what: "`-- sh -c 'echo ok; exit 3'`: prints ok, exits 3" },
  pause: {
    args: (s) => (s.id.startsWith("tini") ? ["--", "sleep", "3600"] : ["--pause"]),
    what: "`--pause` (tini: `-- sleep 3600`): running after 2 s, `docker stop -t 10` ends it with SIGTERM alone",
  },
  services: {
    args: () => ["--service", `burst: seq 1 ${LINES}`, "--service", "idle: sleep 3600"],
    what: `\`--service 'burst: seq 1 ${LINES}' --service 'idle: sleep 3600'\`: every line out, clean stop (exit 0) when burst ends`,
  },
  start: { args: () => [], what: "the empty program: starts and exits 0" },
};

const docker = (args: string[], timeoutS = 30) =>
  capture(["timeout", "-k", "5", String(timeoutS), "docker", ...args], { env: ENV, timeoutMs: (timeoutS + 15) * 1000 });

async function dropCaches(): Promise<void> {
  await mustRun(["sync"]);
  writeFileSync("/proc/sys/vm/drop_caches", "3\n");
}

let serial = 0;
async function probe(s: Subject, mode: Mode, mib: number | null): Promise<Probe> {
  const name = `pidone-floor-${process.pid}-${serial++}`;
  const limit = mib === null ? [] : ["-m", `${mib}m`, "--memory-swap", `${mib}m`];
  const env = s.env.flatMap((e) => ["-e", e]);
  const run = ["run", "--name", name, "--sig-proxy=false", "--network", "none", ...limit, ...env, "--entrypoint", s.path];
  const t0 = performance.now();
  const result = (ok: boolean, why: string): Probe => ({ mib: mib ?? 0, ok, why, ms: Math.round(performance.now() - t0) });
  try {
    if (mode === "pause") {
      const r = await docker([...run, "-d", IMAGE, ...MODES[mode].args(s)]);
      if (r.code !== 0) return result(false, `docker run: ${r.stderr.trim().split("\n")[0]}`);
      await sleep(2000);
      const state = await inspect(name);
      if (state.status !== "running") return result(false, `${state.status} after 2 s, exit ${state.code}${state.oom ? " (OOM)" : ""}`);
      const stopped = await docker(["stop", "-t", "10", name]);
      const end = await inspect(name);
      if (stopped.code !== 0) return result(false, `docker stop failed (${stopped.code})`);
      if (end.code !== s.pauseCode) return result(false, `stopped with exit ${end.code}${end.oom ? " (OOM)" : ""}`);
      return result(true, "ok");
    }
    const r = await docker([...run, IMAGE, ...MODES[mode].args(s)]);
    const state = await inspect(name);
    // timeout ended the client; the container, not signalled (--sig-proxy=false), runs on.
    if (state.status === "running" || r.code === 124) return result(false, "stalled (timeout)");
    if (state.oom || state.code === 137) return result(false, `exit ${state.code}${state.oom ? " (OOM)" : ""}`);
    if (mode === "tini") {
      const ok = state.code === 3 && r.stdout.split("\n").includes("ok");
      return result(ok, ok ? "ok" : `exit ${state.code}, stdout ${JSON.stringify(r.stdout.slice(0, 40))}`);
    }
    if (mode === "services") {
      const lines = r.stdout.split("\n").filter((l) => /^burst\s*\| \d+$/.test(l)).length;
      const ok = state.code === 0 && lines === LINES;
      // pidone's own lines say what went wrong when lines are missing.
      const said = r.stderr.trim().split("\n").slice(-3).join(" / ").slice(0, 300);
      return result(ok, ok ? "ok" : `exit ${state.code}, ${lines}/${LINES} lines${said ? `; stderr: ${said}` : ""}`);
    }
    return result(state.code === 0, state.code === 0 ? "ok" : `exit ${state.code}`);
  } finally {
    await docker(["rm", "-f", name]);
  }
}

async function inspect(name: string): Promise<{ status: string; code: number; oom: boolean }> {
  const r = await docker(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}", name]);
  const [status = "gone", code = "-1", oom = "false"] = r.stdout.trim().split(" ");
  return { status, code: Number(code), oom: oom === "true" };
}

/**
 * The smallest passing limit in [DOCKER_MIN, max], assuming a pass at X means a pass
 * above X; `floor` is DOCKER_MIN when even that passes (the real floor is then lower).
 */
async function search(s: Subject, mode: Mode, cold: boolean, max: number) {
  const probes: Probe[] = [];
  const attempt = async (mib: number) => {
    if (cold) await dropCaches();
    const p = await probe(s, mode, mib);
    probes.push(p);
    say(`${s.id} ${mode} ${cold ? "cold" : "warm"} ${mib} MiB: ${p.ok ? "ok" : p.why} (${(p.ms / 1000).toFixed(1)} s)`);
    return p.ok;
  };
  if (!cold) {
    const prime = await probe(s, mode, null);
    if (!prime.ok) throw new Error(`${s.id} ${mode} fails without a limit: ${prime.why}`);
  }
  let hi = Math.min(32, max);
  while (!(await attempt(hi))) {
    if (hi >= max) return { floor: null as number | null, probes };
    hi = Math.min(hi * 2, max);
  }
  let lo = DOCKER_MIN - 1; // lo fails (or is below Docker's minimum), hi passes
  if (hi > DOCKER_MIN && (await attempt(DOCKER_MIN))) hi = DOCKER_MIN;
  else lo = DOCKER_MIN;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (await attempt(mid)) hi = mid;
    else lo = mid;
  }
  return { floor: hi as number | null, probes };
}

// ---------------------------------------------------------------- the subjects and the image

async function buildEmpty(work: string): Promise<{ packed: string; plain: string }> {
  const plain = join(work, "bun-empty-plain");
  const packed = join(work, "bun-empty");
  await compileBun(join(ROOT, "scripts/bench/floors/empty.ts"), plain);
  const pack = await packer();
  if (!pack) throw new Error("scripts/pack/index.ts (packFile) is missing");
  pack(plain, packed);
  return { packed, plain };
}

async function buildImage(subjects: Subject[]): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), "pidone-floors-img-"));
  try {
    const root = new Rootfs(join(ctx, "rootfs"));
    for (const s of subjects) root.putProgram(s.path, s.host);
    root.putBusybox(["sh", "seq", "sleep", "echo", "true"]);
    writeFileSync(join(ctx, "Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n");
    await mustRun(["docker", "build", "-q", "-t", IMAGE, ctx], { env: ENV, timeoutMs: 300_000 });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const words = (s: string | undefined) => (s ?? "").split(/\s+/).filter(Boolean);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root: each cold probe drops the page cache");
  await ensurePackages(true, say);
  const pidone = join(ROOT, "dist/pidone");
  if (!existsSync(pidone)) await mustRun([process.execPath, join(ROOT, "scripts/build.ts")], { cwd: ROOT, timeoutMs: 300_000 });
  if (!isPacked(pidone)) throw new Error("dist/pidone is not the packed single file");
  const work = mkdtempSync(join(tmpdir(), "pidone-floors-"));
  const empty = await buildEmpty(work);
  const modes = values.modes!.split(",") as Mode[];
  const all: Subject[] = [
    { id: "pidone", host: pidone, path: "/pidone", modes, env: [], pauseCode: 0 },
    { id: "pidone-glibc", host: join(ROOT, "dist/pidone-glibc"), path: "/pidone-glibc", modes, env: words(values["env-glibc"]), pauseCode: 0 },
    ...values.variant!.map((v): Subject => {
      const [spec = "", ...env] = words(v);
      const [id = "", host = ""] = spec.split("=");
      if (!id || !existsSync(host)) throw new Error(`--variant ${v}: want 'LABEL=PATH [VAR=VALUE...]'`);
      return { id, host, path: `/variants/${id}`, modes, env, pauseCode: 0 };
    }),
    { id: "bun-empty", host: empty.packed, path: "/bun-empty", modes: ["start"], env: [], pauseCode: 0 },
    { id: "bun-empty-plain", host: empty.plain, path: "/bun-empty-plain", modes: ["start"], env: [], pauseCode: 0 },
    // tini -- sleep: sleep dies of the forwarded SIGTERM, and tini returns 128 + 15.
    { id: "tini-static", host: "/usr/bin/tini-static", path: "/tini-static", modes: modes.filter((m) => m !== "services"), env: [], pauseCode: 143 },
  ];
  const only = values.only ? new Set(values.only.split(",")) : null;
  const subjects = all.filter((s) => !only || only.has(s.id) || (only.has("tini") && s.id === "tini-static"));
  say(`building ${IMAGE}`);
  await buildImage(all);
  rmSync(work, { recursive: true, force: true });

  const caches = values.cache!.split(",");
  const max = Number(values.max);
  const started = new Date();
  const rows: Row[] = [];
  // Cold first for every subject, then warm: a warm phase never drops the cache. The
  // files are rewritten after each search, so that an interrupted run leaves its figures.
  for (const cache of caches)
    for (const mode of [...modes, "start" as Mode])
      for (const s of subjects)
        if (s.modes.includes(mode)) {
          rows.push({ subject: s.id, mode, cache, ...(await search(s, mode, cache === "cold", max)) });
          await report(rows, subjects, caches, max, started);
        }
}

interface Row {
  subject: string;
  mode: Mode;
  cache: string;
  floor: number | null;
  probes: Probe[];
}

async function report(rows: Row[], subjects: Subject[], caches: string[], max: number, started: Date): Promise<void> {
  // The floor, and how long its passing probe took: near the floor a start can thrash.
  const fmt = (r: Row | undefined) => {
    if (!r) return "–";
    if (r.floor === null) return `> ${max}`;
    const at = r.probes.find((p) => p.ok && p.mib === r.floor);
    return `${r.floor === DOCKER_MIN ? "≤ " : ""}${r.floor}${at ? ` (${(at.ms / 1000).toFixed(1)} s)` : ""}`;
  };
  const cell = (id: string, mode: Mode) => caches.map((c) => fmt(rows.find((r) => r.subject === id && r.mode === mode && r.cache === c))).join(" / ");
  const usedModes = (Object.keys(MODES) as Mode[]).filter((m) => rows.some((r) => r.mode === m));
  const md = [
    `## Memory floors (${started.toISOString().slice(0, 10)}, MiB, ${caches.join(" / ")})`,
    "",
    `| subject | ${usedModes.join(" | ")} |`,
    `|---|${usedModes.map(() => "---|").join("")}`,
    ...subjects.map((s) => `| ${s.id}${s.env.length ? ` (${s.env.join(" ")})` : ""} | ${usedModes.map((m) => cell(s.id, m)).join(" | ")} |`),
    "",
    `The smallest \`docker run -m X --memory-swap X\` (MiB) that passes; "≤ ${DOCKER_MIN}": Docker's minimum passes.`,
    "Cold: page cache dropped before each probe (the floor); warm: the command ran first without a limit. In brackets: the passing probe's time, `docker run` included.",
    ...usedModes.map((m) => `- ${m}: ${MODES[m].what}`),
    "",
  ].join("\n");
  const doc = { schema: "pidone-floors/1", date: started.toISOString(), args: process.argv.slice(2), kernel: (await capture(["uname", "-r"])).stdout.trim(), dockerMinimumMiB: DOCKER_MIN, modes: Object.fromEntries(usedModes.map((m) => [m, MODES[m].what])), subjects: subjects.map(({ id, path, env }) => ({ id, path, env })), rows };
  mkdirSync(values.out!, { recursive: true });
  const base = join(values.out!, `floors-${started.toISOString().slice(0, 10)}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(`${base}.md`, md);
  say(`wrote ${base}.json, ${base}.md`);
}

await main();
const last = join(values.out!, `floors-${new Date().toISOString().slice(0, 10)}.md`);
if (existsSync(last)) process.stdout.write(await Bun.file(last).text());
