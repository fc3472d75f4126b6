// 6. `docker stop -t 10` of a container whose child (busybox sleep) has no SIGTERM
// handler: an init that forwards SIGTERM stops it at once; with no init, sleep is PID 1,
// the kernel drops SIGTERM, and Docker waits the full 10 s before SIGKILL.
// One FROM scratch image carries every init and the shared libraries each one needs.
// Also each init's memory as PID 1 of its container, idle: there its file is what
// Docker's layer extraction wrote, not what the build wrote seconds ago on the host (the
// kernel maps a just-written file's large page-cache folios whole: same bytes, more RSS).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Rootfs } from "../../lib/rootfs.ts";
import { capture, sleep } from "./proc.ts";
import { newMetric, type MetricResult, type Subject } from "./types.ts";

const IMAGE = "pidone-bench:latest";
const DOCKER_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", DOCKER_BUILDKIT: "0" };
const docker = (args: string[], timeoutMs = 60_000) => capture(["docker", ...args], { env: DOCKER_ENV, timeoutMs });

async function buildImage(subjects: readonly Subject[]): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), "pidone-bench-img-"));
  try {
    const root = new Rootfs(join(ctx, "rootfs"));
    for (const s of subjects) if (s.bin) root.putProgram(`/inits/${s.id}`, s.bin);
    root.putBusybox(["sleep"]);
    writeFileSync(join(ctx, "Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n");
    const r = await docker(["build", "-q", "-t", IMAGE, ctx], 300_000);
    if (r.code !== 0) throw new Error(`docker build failed:\n${r.stderr}${r.stdout}`);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/** Starts the container and waits until sleep runs under the init; returns its id. */
async function start(entrypoint: string, args: string[]): Promise<string> {
  const r = await docker(["run", "-d", "--network", "none", "--entrypoint", entrypoint, IMAGE, ...args]);
  if (r.code !== 0) throw new Error(`docker run failed: ${r.stderr}`);
  const id = r.stdout.trim();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const top = await docker(["top", id]);
    // With an init, two processes (init + sleep); without, sleep alone.
    const lines = top.stdout.trim().split("\n").slice(1);
    if (top.code === 0 && lines.some((l) => /sleep 3600/.test(l)) && (entrypoint === "/bin/sleep" || lines.length >= 2)) break;
    if (Date.now() > deadline) throw new Error(`container ${id} did not start its child`);
    await sleep(20);
  }
  // The child running says nothing of the init finishing its own start-up.
  await sleep(200);
  return id;
}

/** VmRSS and RssAnon in MB of the container's PID 1, seen from the host. */
async function memoryOf(id: string): Promise<[number, number]> {
  const pid = (await docker(["inspect", "-f", "{{.State.Pid}}", id])).stdout.trim();
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const mB = (field: string) => Number(new RegExp(`^${field}:\\s*(\\d+) kB$`, "m").exec(status)?.[1] ?? NaN) / 1000;
  return [mB("VmRSS"), mB("RssAnon")];
}

/** The settling time before the memory is read, as the idle metric allows its subjects. */
const IDLE_SETTLE_MS = 1000;

export async function measureDockerStop(subjects: readonly Subject[], rounds: number): Promise<MetricResult[]> {
  const m = newMetric("docker-stop", "`docker stop -t 10`, child without a SIGTERM handler", "s");
  const rss = newMetric("docker-vmrss", "idle in a container, as its PID 1: VmRSS", "MB");
  const anon = newMetric("docker-rssanon", "idle in a container, as its PID 1: RssAnon", "MB");
  const subs = subjects.filter((s) => s.families.has("docker"));
  if ((await docker(["info"], 20_000)).code !== 0) {
    m.notes.push("skipped: no Docker engine answers `docker info`");
    return [m];
  }
  await buildImage(subs);
  for (const s of subs) {
    m.series[s.id] = [];
    m.extra[s.id] = { exitCode: -1 };
  }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < subs.length; k++) {
      const s = subs[(r + k) % subs.length]!;
      // No init: sleep is PID 1 and ignores SIGTERM, so every stop takes the full 10 s;
      // once is enough to show it.
      if (!s.bin && r > 0) continue;
      const entry = s.bin ? `/inits/${s.id}` : "/bin/sleep";
      const args = s.bin ? [...s.prefix.slice(1), "/bin/sleep", "3600"] : ["3600"];
      const id = await start(entry, args);
      try {
        if (r === 0 && s.bin) {
          await sleep(IDLE_SETTLE_MS);
          const [v, a] = await memoryOf(id);
          rss.series[s.id] = [v];
          anon.series[s.id] = [a];
        }
        const t0 = performance.now();
        const stop = await docker(["stop", "-t", "10", id], 30_000);
        const t1 = performance.now();
        if (stop.code !== 0) throw new Error(`docker stop failed: ${stop.stderr}`);
        m.series[s.id]!.push((t1 - t0) / 1000);
        const code = await docker(["inspect", "-f", "{{.State.ExitCode}}", id]);
        m.extra[s.id]!.exitCode = Number(code.stdout.trim());
      } finally {
        await docker(["rm", "-f", id]);
      }
    }
  }
  await docker(["rmi", IMAGE]);
  m.notes.push(
    `${rounds} round(s); wall time of the docker CLI call, which includes the client and daemon round trip ` +
      "(the same for every init); exitCode 143 = the child died of the forwarded SIGTERM, 137 = SIGKILL after the grace",
  );
  rss.notes.push(
    `read ${IDLE_SETTLE_MS} ms after busybox sleep ran under the init, in the first round; the files are as Docker's ` +
      "layer extraction wrote them (the host's idle figures see them as the build wrote them)",
  );
  return [m, rss, anon];
}
