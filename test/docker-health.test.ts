// Liveness checks in a real container: pidone as PID 1 of a FROM scratch image, a busybox
// httpd whose liveness endpoint is removed by `docker exec` is restarted with a new pid,
// its tcp-checked neighbour is left alone. Skipped, saying so, when no Docker engine
// answers `docker info`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DOCKER_ENGINE, addSymlinks, buildScratchImage, dockerAvailable } from "./docker.ts";
import { needs, run, start, tempDir, waitFor } from "./helpers.ts";

const DOCKER = await dockerAvailable();
const RUN_ID = `${process.pid}`;
const IMAGE = `pidone-test-health:${RUN_ID}`;
const NAME = `pidone-health-${RUN_ID}`;
let dir = "";

const CONFIG = `
[services.setup]
command = "mkdir -p /tmp/www && echo ok > /tmp/www/live"
shell = true
oneshot = true

[services.web]
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/tmp/www"]
after = ["setup"]
restart = "on-failure"
restart_delay = 0.2
health = { http = "http://127.0.0.1:8080/live", interval = 0.3, retries = 2 }

[services.db]
command = ["httpd", "-f", "-p", "127.0.0.1:9090", "-h", "/tmp"]
health = { tcp = 9090, interval = 0.3 }
`;

beforeAll(async () => {
  if (!DOCKER) return;
  dir = tempDir("pidone-health-img-");
  writeFileSync(join(dir, "health.toml"), CONFIG);
  const base = await buildScratchImage({ tag: `${IMAGE}-base`, files: { "/cfg/health.toml": join(dir, "health.toml") }, entrypoint: ["/pidone"] });
  await addSymlinks(base, IMAGE, { "/bin/httpd": "busybox" });
}, 300_000);

afterAll(async () => {
  if (!DOCKER) return;
  await run(["docker", "rm", "-f", NAME], { timeoutMs: 30_000 });
  await run(["docker", "rmi", "-f", IMAGE, `${IMAGE}-base`], { timeoutMs: 60_000 });
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const startedPids = (out: string, service: string) => [...out.matchAll(new RegExp(`${service}: started \\(pid (\\d+)\\)`, "g"))].map((m) => Number(m[1]));

needs(DOCKER, DOCKER_ENGINE)("liveness checks in Docker", () => {
  test("a service whose liveness endpoint starts failing is restarted (a new pid); the rest keep running", async () => {
    const p = start(["timeout", "-k", "5", "90", "docker", "run", "--name", NAME, "--network", "none", "--sig-proxy=false", IMAGE, "-c", "/cfg/health.toml"]);
    const out = () => p.stdout() + p.stderr();
    const show = () => `--- output\n${out().slice(-4000)}`;
    try {
      await waitFor(() => startedPids(out(), "web").length === 1 && startedPids(out(), "db").length === 1, 30_000, `both started\n${show()}`);
      await Bun.sleep(1000);
      expect(out(), show()).not.toContain("unhealthy");
      expect((await run(["docker", "exec", NAME, "rm", "/tmp/www/live"], { timeoutMs: 20_000 })).code).toBe(0);
      await waitFor(() => startedPids(out(), "web").length >= 2, 30_000, `web restarted\n${show()}`);
      const [first, second] = startedPids(out(), "web");
      expect(second).not.toBe(first);
      expect(out(), show()).toContain("web: unhealthy: 2 checks failed in a row, the last: HTTP 404");
      expect(startedPids(out(), "db")).toHaveLength(1);
      expect((await run(["docker", "exec", NAME, "sh", "-c", "echo ok > /tmp/www/live"], { timeoutMs: 20_000 })).code).toBe(0);
      await run(["docker", "stop", "-t", "10", NAME], { timeoutMs: 30_000 });
      expect(await p.exit(30_000), show()).toBe(0);
      expect(out(), show()).not.toContain("db: unhealthy");
    } finally {
      await run(["docker", "rm", "-f", NAME], { timeoutMs: 30_000 });
    }
  }, 150_000);
});
