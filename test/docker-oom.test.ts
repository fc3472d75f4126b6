// OOM kills named (issue 15), for real: a container with `-m 64m --memory-swap 64m` and a
// program that allocates 200 MB, which the kernel's OOM killer ends with SIGKILL. tini's
// mode says it in one warning and nothing else; services mode in the service's event
// line and its JSON event. A SIGKILL that is not the OOM killer's stays a plain SIGKILL.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { cHelper, needs, run, tempDir } from "./helpers.ts";
import { DOCKER_ENGINE, buildScratchImage, dockerAvailable, sharedLibraries } from "./docker.ts";

setDefaultTimeout(120_000);

const DOCKER = await dockerAvailable();
const TAG = `pidone-oom-test-${process.pid}`;
let image = "";
let dir = "";

beforeAll(async () => {
  if (!DOCKER) return;
  const alloc = await cHelper("oom-alloc");
  const files: Record<string, string> = { "/oom-alloc": alloc };
  for (const lib of await sharedLibraries(alloc)) files[lib] = lib;
  image = await buildScratchImage({ tag: TAG, files, entrypoint: ["/pidone"] });
}, 180_000);

afterAll(async () => {
  if (image) await run(["docker", "rmi", "-f", image], { timeoutMs: 60_000 });
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

/** A container under a 64 MiB limit without swap, removed once it ends. */
function limited(args: string[], dockerOptions: string[] = []) {
  const cmd = ["timeout", "-k", "10", "90", "docker", "run", "--rm", "--sig-proxy=false", "--network", "none", ...dockerOptions];
  return run([...cmd, "-m", "64m", "--memory-swap", "64m", image, ...args], { timeoutMs: 100_000 });
}

const WARNING = "[WARN  pidone (1)] Main child was killed by the kernel's OOM killer (memory limit 64 MiB)\n";

needs(DOCKER, DOCKER_ENGINE)("OOM kills", () => {
  test("tini's mode: one warning names the OOM killer, the exit code stays 137", async () => {
    const r = await limited(["/oom-alloc", "200"]);
    expect(r).toEqual({ code: 137, stdout: "", stderr: WARNING });
  });

  test("tini's mode at -v: tini's own lines unchanged, the warning added", async () => {
    const r = await limited(["-v", "/oom-alloc", "200"]);
    expect(r.code).toBe(137);
    expect(r.stdout).toContain("Main child exited with signal (with signal 'Killed')");
    expect(r.stderr).toBe(WARNING);
  });

  test("tini's mode: a SIGKILL that is not the OOM killer's says nothing", async () => {
    const r = await limited(["--", "sh", "-c", "kill -9 $$"]);
    expect(r).toEqual({ code: 137, stdout: "", stderr: "" });
  });

  test("services mode: the event line says it", async () => {
    const r = await limited(["--service", "hog: exec /oom-alloc 200"]);
    expect(r.code).toBe(137);
    expect(r.stdout).toMatch(/^pidone \| hog: killed by the kernel's OOM killer \(memory limit 64 MiB\)$/m);
    expect(r.stdout).not.toMatch(/hog: exited/);
  });

  test("services mode: the JSON event carries oom: true, the other SIGKILL none", async () => {
    dir = tempDir("pidone-oom-");
    writeFileSync(
      `${dir}/app.toml`,
      '[settings]\nlog_format = "json"\n[services.hog]\ncommand = ["/oom-alloc", "200"]\ncritical = false\n' +
        '[services.k]\ncommand = "sleep 1; kill -9 $$"\nshell = true\ncritical = false\n',
    );
    const r = await limited(["-c", "/cfg/app.toml"], ["-v", `${dir}:/cfg:ro`]);
    const events = r.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === "exited");
    const hog = events.find((e) => e.service === "hog");
    const k = events.find((e) => e.service === "k");
    expect(hog).toMatchObject({ code: 137, oom: true, message: "killed by the kernel's OOM killer (memory limit 64 MiB)" });
    expect(k).toMatchObject({ code: 137, message: "exited (signal SIGKILL)" });
    expect(k).not.toHaveProperty("oom");
  });

  test("where the count cannot be read (the file hidden), a plain SIGKILL in both modes", async () => {
    const counter = existsSync("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup/memory.events" : "/sys/fs/cgroup/memory/memory.oom_control";
    const hidden = ["-v", `/dev/null:${counter}:ro`];
    const tini = await limited(["/oom-alloc", "200"], hidden);
    expect(tini).toEqual({ code: 137, stdout: "", stderr: "" });
    const services = await limited(["--service", "hog: exec /oom-alloc 200"], hidden);
    expect(services.code).toBe(137);
    expect(services.stdout).toMatch(/^pidone \| hog: exited \(signal SIGKILL\)$/m);
    expect(services.stdout + services.stderr).not.toContain("OOM");
  });
});
