// Operating services in a real container: `docker exec … /pidone --ctl`, Docker's own
// HEALTHCHECK on `--ctl health`, a user who may not, and a read-only root. Skipped,
// saying so, when no Docker engine answers `docker info`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DOCKER_ENGINE, addSymlinks, buildScratchImage, dockerAvailable } from "./docker.ts";
import { prometheusParse } from "./fixtures/prometheus.ts";
import { needs, run, tempDir, waitFor, type RunResult } from "./helpers.ts";

const DOCKER = await dockerAvailable();
const RUN_ID = `${process.pid}`;
const BASE = `pidone-test-control-base:${RUN_ID}`;
const IMAGE = `pidone-test-control:${RUN_ID}`;
const containers: string[] = [];

function docker(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return run(["docker", ...args], { timeoutMs });
}

const SERVICES = `
[services.web]
command = "trap 'exit 0' TERM; while :; do sleep 1; done"
shell = true
[services.worker]
command = "trap 'exit 0' TERM; while :; do sleep 1; done"
shell = true
restart = "always"
[services.cron]
command = "trap 'exit 0' TERM; while :; do sleep 1; done"
shell = true
critical = false
`;

/** A detached container of IMAGE running `args` after the image's entrypoint; its name. */
async function detached(what: string, args: string[], runArgs: string[] = []): Promise<string> {
  const name = `pidone-ctl-${what}-${RUN_ID}`;
  containers.push(name);
  const r = await docker(["run", "-d", "--name", name, "--network", "none", ...runArgs, IMAGE, ...args]);
  if (r.code !== 0) throw new Error(`docker run failed: ${r.stderr}`);
  return name;
}

function ctl(name: string, ...args: string[]): Promise<RunResult> {
  return docker(["exec", name, "/pidone", "--ctl", ...args]);
}

async function pidsOf(name: string): Promise<Record<string, number | null>> {
  const r = await ctl(name, "status", "--json");
  if (r.code !== 0) throw new Error(`status: ${r.stderr}`);
  return Object.fromEntries(JSON.parse(r.stdout).services.map((s: { name: string; pid: number | null }) => [s.name, s.pid]));
}

async function healthStatus(name: string): Promise<string> {
  return (await docker(["inspect", "-f", "{{.State.Health.Status}}", name])).stdout.trim();
}

needs(DOCKER, DOCKER_ENGINE)("pidone --ctl in a container", () => {
  beforeAll(async () => {
    const dir = tempDir("pidone-ctl-img-");
    mkdirSync(join(dir, "cfg"));
    writeFileSync(join(dir, "cfg", "services.toml"), SERVICES);
    writeFileSync(join(dir, "keep"), "");
    await buildScratchImage({
      tag: BASE,
      // A /run, as Debian's and Alpine's images have (pidone makes none: FROM scratch has none).
      files: { "/cfg/services.toml": join(dir, "cfg", "services.toml"), "/run/.keep": join(dir, "keep") },
      extra: ["HEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD [\"/pidone\", \"--ctl\", \"health\"]"],
      entrypoint: ["/pidone"],
    });
    await addSymlinks(BASE, IMAGE, { "/bin/wget": "busybox" });
  }, 180_000);

  afterAll(async () => {
    for (const c of containers) await docker(["rm", "-f", c]);
    await docker(["rmi", "-f", IMAGE, BASE]);
  }, 120_000);

  test("status shows the services; restart gives a new pid and keeps the rest; HEALTHCHECK follows health", async () => {
    const name = await detached("ops", ["-c", "/cfg/services.toml"]);
    await waitFor(async () => (await healthStatus(name)) === "healthy", 30_000, "Docker's health: healthy");
    const st = await ctl(name, "status");
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/^web\s+running\s+\d+/m);
    expect(st.stdout).toMatch(/^worker\s+running\s+\d+/m);
    expect(st.stdout).toMatch(/^cron\s+running\s+\d+/m);

    const before = await pidsOf(name);
    const r = await ctl(name, "restart", "worker");
    expect(r.code).toBe(0);
    const after = await pidsOf(name);
    expect(after.worker).not.toBe(before.worker);
    expect(after.web).toBe(before.web);
    expect(after.cron).toBe(before.cron);

    // A critical service stopped by the operator: the container keeps running, health fails.
    expect((await ctl(name, "stop", "web")).code).toBe(0);
    const h = await ctl(name, "health");
    expect(h.code).toBe(1);
    expect(h.stderr).toContain("web: stopped by the operator");
    await waitFor(async () => (await healthStatus(name)) === "unhealthy", 30_000, "Docker's health: unhealthy");
    expect((await docker(["inspect", "-f", "{{.State.Running}}", name])).stdout.trim()).toBe("true");
    expect((await ctl(name, "start", "web")).code).toBe(0);
    await waitFor(async () => (await healthStatus(name)) === "healthy", 30_000, "Docker's health: healthy again");

    const stop = await docker(["stop", "-t", "10", name], 30_000);
    expect(stop.code).toBe(0);
    expect((await docker(["inspect", "-f", "{{.State.ExitCode}}", name])).stdout.trim()).toBe("0");
  }, 120_000);

  test("a user other than pidone's is refused", async () => {
    const name = await detached("user", ["-c", "/cfg/services.toml"]);
    await waitFor(async () => (await ctl(name, "health")).code === 0, 30_000, "an answer");
    const r = await docker(["exec", "--user", "65534:65534", name, "/pidone", "--ctl", "status"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe("");
    // `health` answers only 0 or 1, whoever asks.
    const h = await docker(["exec", "--user", "65534:65534", name, "/pidone", "--ctl", "health"]);
    expect(h.code).toBe(1);
  }, 60_000);

  test("--read-only: no socket, one line saying how; with a writable volume, control works", async () => {
    const off = await detached("ro", ["-c", "/cfg/services.toml"], ["--read-only"]);
    await waitFor(async () => (await docker(["logs", off])).stdout.includes("no control socket"), 30_000, "the line");
    const logs = await docker(["logs", off]);
    expect(logs.stdout).toContain("no control socket: /run is read-only; give --control PATH (or PIDONE_CONTROL) in a writable directory");
    expect((await ctl(off, "status")).code).toBe(3);
    expect((await ctl(off, "health")).code).toBe(1);

    const on = await detached("rovol", ["--control", "/data/pidone.sock", "-c", "/cfg/services.toml"], ["--read-only", "--tmpfs", "/data"]);
    await waitFor(async () => (await docker(["exec", on, "/pidone", "--ctl", "--control", "/data/pidone.sock", "health"])).code === 0, 30_000, "healthy");
    const env = await docker(["exec", "-e", "PIDONE_CONTROL=/data/pidone.sock", on, "/pidone", "--ctl", "status"]);
    expect(env.code).toBe(0);
    expect(env.stdout).toMatch(/^web\s+running/m);
  }, 90_000);

  test("/metrics from inside the container parses; /healthz follows an operator's stop", async () => {
    const name = await detached("http", ["--http", "127.0.0.1:9100", "-c", "/cfg/services.toml"]);
    const wget = (path: string) => docker(["exec", name, "wget", "-q", "-O", "-", `http://127.0.0.1:9100${path}`]);
    await waitFor(async () => (await wget("/healthz")).code === 0, 30_000, "/healthz 200");
    const families = await prometheusParse((await wget("/metrics")).stdout);
    const up = families.find((f) => f.name === "pidone_service_up")!;
    expect(Object.fromEntries(up.samples.map(([, l, v]) => [l.service, v]))).toEqual({ web: 1, worker: 1, cron: 1 });
    expect((await ctl(name, "stop", "cron")).code).toBe(0);
    expect((await wget("/healthz")).code).toBe(0); // cron is not critical
    expect((await ctl(name, "stop", "web")).code).toBe(0);
    expect((await wget("/healthz")).code).not.toBe(0); // busybox wget fails on a 503
  }, 60_000);
});
