// "Beyond tini" in real containers: pause as a pod sandbox, the whole-tree stop under
// `docker stop`, and Docker's own `--init` pointed at pidone.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, existsSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { PIDONE, ROOT, needs, run, tempDir, waitFor } from "./helpers.ts";
import { DOCKER_ENGINE, buildScratchImage, dockerAvailable } from "./docker.ts";

const haveDocker = await dockerAvailable();
const IMAGE = "pidone-test-beyond:latest";
const names: string[] = [];
const uniq = (what: string) => {
  const n = `pidone-${what}-${process.pid}-${names.length}`;
  names.push(n);
  return n;
};

beforeAll(async () => {
  if (haveDocker) await buildScratchImage({ tag: IMAGE });
}, 180_000);

afterAll(async () => {
  for (const n of names) await run(["docker", "rm", "-f", n], { timeoutMs: 30_000 });
});

needs(haveDocker, DOCKER_ENGINE)("in Docker", () => {
  test("--pause as a pod sandbox: a container sharing its PID namespace gets its orphans reaped", async () => {
    const pod = uniq("pause");
    const r = await run(["docker", "run", "-d", "--name", pod, "--network", "none", IMAGE, "/pidone", "--pause", "-w"]);
    expect(r.code).toBe(0);
    const app = await run([
      "docker", "run", "--rm", "--network", "none", `--pid=container:${pod}`, IMAGE,
      "sh", "-c", "for i in 1 2 3; do (sleep 0.3 &); done; sleep 1.5",
    ], { timeoutMs: 60_000 });
    expect(app.code).toBe(0);
    await waitFor(async () => {
      const logs = await run(["docker", "logs", pod]);
      return (logs.stderr.match(/Reaped zombie process with pid=/g) ?? []).length >= 3;
    }, 20_000, "pidone --pause to reap the orphans");
    const t0 = performance.now();
    const stop = await run(["docker", "stop", "-t", "10", pod], { timeoutMs: 30_000 });
    expect(stop.code).toBe(0);
    expect(performance.now() - t0).toBeLessThan(8000);
    const inspect = await run(["docker", "inspect", "-f", "{{.State.ExitCode}}", pod]);
    expect(inspect.stdout.trim()).toBe("0");
  });

  test("docker stop: a detached daemon gets SIGTERM and writes its file; the stop ends well inside 10 s", async () => {
    const name = uniq("grace");
    const out = tempDir();
    chmodSync(out, 0o777);
    const r = await run([
      "docker", "run", "-d", "--name", name, "--network", "none", "-v", `${out}:/out`, IMAGE, "/pidone", "--",
      "sh", "-c",
      `setsid sh -c 'trap "echo flushed > /out/daemon; exit 0" TERM; while :; do sleep 0.1; done' & trap 'exit 0' TERM; echo up > /out/main; while :; do sleep 0.1; done`,
    ]);
    expect(r.code).toBe(0);
    await waitFor(() => existsSync(join(out, "main")), 20_000, "the main program to start");
    const t0 = performance.now();
    const stop = await run(["docker", "stop", "-t", "10", name], { timeoutMs: 30_000 });
    const elapsed = performance.now() - t0;
    expect(stop.code).toBe(0);
    expect(elapsed).toBeLessThan(8000);
    expect(readFileSync(join(out, "daemon"), "utf8")).toBe("flushed\n");
    const inspect = await run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name]);
    expect(inspect.stdout.trim()).toBe("0");
  });

  test("--wait-all: a daemon that forks keeps the container up until it exits; docker stop reaches it", async () => {
    const name = uniq("waitall");
    const r = await run([
      "docker", "run", "-d", "--name", name, "--network", "none", IMAGE, "/pidone", "--wait-all", "--",
      "sh", "-c", `setsid sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' & exit 0`,
    ]);
    expect(r.code).toBe(0);
    // The main program exited at once; the container is still running for the daemon.
    await waitFor(async () => (await run(["docker", "exec", name, "cat", "/proc/1/task/1/children"])).stdout.trim() !== "", 20_000, "the daemon");
    expect((await run(["docker", "inspect", "-f", "{{.State.Running}}", name])).stdout.trim()).toBe("true");
    const stop = await run(["docker", "stop", "-t", "10", name], { timeoutMs: 30_000 });
    expect(stop.code).toBe(0);
    expect((await run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name])).stdout.trim()).toBe("0");
  });

  test("-r TERM:QUIT: docker stop's SIGTERM reaches the program as SIGQUIT", async () => {
    const name = uniq("rewrite");
    const r = await run([
      "docker", "run", "-d", "--name", name, "--network", "none", IMAGE, "/pidone", "-r", "TERM:QUIT", "--",
      "sh", "-c", `trap 'echo got-QUIT; exit 0' QUIT; trap 'echo got-TERM; exit 1' TERM; echo ready; while :; do sleep 0.1; done`,
    ]);
    expect(r.code).toBe(0);
    await waitFor(async () => (await run(["docker", "logs", name])).stdout.includes("ready"), 20_000, "the program");
    expect((await run(["docker", "stop", "-t", "10", name], { timeoutMs: 30_000 })).code).toBe(0);
    const logs = await run(["docker", "logs", name]);
    expect(logs.stdout).toContain("got-QUIT");
    expect(logs.stdout).not.toContain("got-TERM");
    expect((await run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name])).stdout.trim()).toBe("0");
  });

  describe("Docker's --init with --init-path pointing at pidone", () => {
    const base = "/tmp/pidone-d2";
    const sock = `unix://${base}/docker.sock`;
    let daemon: ReturnType<typeof Bun.spawn> | null = null;
    const d2 = (args: string[], timeoutMs = 60_000) => run(["docker", "-H", sock, ...args], { timeoutMs });

    beforeAll(async () => {
      mkdirSync(base, { recursive: true });
      // A second engine of our own, so its --init-path cannot disturb anyone else's.
      daemon = Bun.spawn(
        [
          "dockerd", "--data-root", `${base}/data`, "--exec-root", `${base}/exec`, "--pidfile", `${base}/dockerd.pid`,
          "-H", sock, "--init-path", PIDONE, "--bridge", "none", "--iptables=false", "--ip-masq=false",
        ],
        { stdout: Bun.file(`${base}/dockerd.log`), stderr: Bun.file(`${base}/dockerd.err`), stdin: "ignore" },
      );
      await waitFor(async () => (await d2(["info"], 10_000)).code === 0, 60_000, "the second dockerd");
      // Two images: FROM scratch with busybox only, and one that carries glibc like Debian's.
      await buildScratchImage({ tag: "pidone-test-init-scratch:latest", pidone: null });
      await buildScratchImage({ tag: "pidone-test-init-glibc:latest", pidone: join(ROOT, "dist/pidone-glibc") });
      for (const tag of ["pidone-test-init-scratch:latest", "pidone-test-init-glibc:latest"]) {
        const saved = join(base, "image.tar");
        expect((await run(["docker", "save", "-o", saved, tag], { timeoutMs: 120_000 })).code).toBe(0);
        expect((await d2(["load", "-i", saved], 120_000)).code).toBe(0);
      }
    }, 300_000);

    afterAll(async () => {
      if (daemon) {
        daemon.kill("SIGTERM");
        await Promise.race([daemon.exited, Bun.sleep(20_000)]);
      }
    }, 60_000);

    test("docker info shows the init version Docker parsed from pidone --version", async () => {
      const r = await d2(["info", "--format", "{{.InitCommit.ID}}"]);
      expect(r.code).toBe(0);
      const version = await run([PIDONE, "--version"]);
      const hash = /git\.([0-9a-f]{7})/.exec(version.stdout)![1]!;
      expect(r.stdout.trim()).toBe(hash);
    });

    for (const image of ["pidone-test-init-scratch:latest", "pidone-test-init-glibc:latest"]) {
      test(`docker run --init (${image.split(":")[0]}): pidone is PID 1, exit codes pass through, stop is fast`, async () => {
        const cmdline = await d2(["run", "--rm", "--init", "--network", "none", image, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; exit 7"]);
        expect(cmdline.code).toBe(7);
        expect(cmdline.stdout).toContain("/sbin/docker-init -- sh -c");
        const name = uniq("init");
        expect((await d2(["run", "-d", "--init", "--name", name, "--network", "none", image, "sleep", "1000"])).code).toBe(0);
        // pidone spawns its child only after its signal handlers are in place; a SIGTERM
        // before that is the native helper's business (test/native-*.test.ts).
        await waitFor(async () => (await d2(["exec", name, "cat", "/proc/1/task/1/children"])).stdout.trim() !== "", 20_000, "the child");
        const t0 = performance.now();
        expect((await d2(["stop", "-t", "10", name], 30_000)).code).toBe(0);
        expect(performance.now() - t0).toBeLessThan(8000);
        const code = await d2(["inspect", "-f", "{{.State.ExitCode}}", name]);
        expect(code.stdout.trim()).toBe("143");
        await d2(["rm", "-f", name]);
      });
    }
  });
});
