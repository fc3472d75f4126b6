// Liveness checks (`health`), end to end: services mode as PID 1 of a PID namespace.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, needs, pid1Of, run, start, tempDir, waitFor } from "./helpers.ts";
import { NATIVE, SINGLE_FILE, contextSwitches } from "./fixtures/native-lib.ts";

function config(text: string): string {
  const file = join(tempDir(), "services.toml");
  writeFileSync(file, text);
  return file;
}

let port = 26000 + (process.pid % 3000);
const nextPort = () => ++port;

/** The pids a service was started with, in order (its "started (pid N)" events). */
function startedPids(out: string, service: string): number[] {
  return [...out.matchAll(new RegExp(`${service}: started \\(pid (\\d+)\\)`, "g"))].map((m) => Number(m[1]));
}

/** pidone's events and the services' lines, whichever stream they went to. */
const all = (p: ReturnType<typeof start>) => p.stdout() + p.stderr();

/** Are there processes whose command line contains `marker`? */
function running(marker: string): boolean {
  const r = Bun.spawnSync(["pgrep", "-f", marker]);
  return r.exitCode === 0;
}

describe("liveness checks", () => {
  test("--check: the health keys with FILE:LINE, exit 2", async () => {
    const good = config(`[services.a]\ncommand = ["sleep", "1"]\nhealth = { exec = ["true"], interval = 5 }\n`);
    expect((await run([PIDONE, "--check", "-c", good])).code).toBe(0);
    const bad = config(`[services.a]\ncommand = ["sleep", "1"]\n[services.a.health]\nhttp = "ftp://x/"\nretries = 0\nexec = ["/nonexistent/check"]\n`);
    const r = await run([PIDONE, "--check", "-c", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3: services.a.health: takes exactly one of tcp, http, exec; got http and exec`);
    expect(r.stderr).toContain(`${bad}:5: services.a.health.retries: must be 1 or more`);
  });

  test("http: a service whose endpoint starts failing is stopped and restarted (a new pid); a healthy tcp-checked neighbour keeps its pid", async () => {
    const web = nextPort();
    const db = nextPort();
    const dir = tempDir();
    const www = join(dir, "www");
    mkdirSync(www);
    writeFileSync(join(www, "live"), "ok\n");
    const file = config(`
[services.web]
command = ["busybox", "httpd", "-f", "-p", "127.0.0.1:${web}", "-h", "${www}"]
restart = "on-failure"
restart_delay = 0.1
health = { http = "http://127.0.0.1:${web}/live", interval = 0.2, timeout = 2, retries = 2 }
[services.db]
command = ["busybox", "httpd", "-f", "-p", "127.0.0.1:${db}", "-h", "${www}"]
health = { tcp = ${db}, interval = 0.2, timeout = 2 }
`);
    const p = start([...AS_PID1, PIDONE, "--grace", "2", "-c", file]);
    try {
      const pid1 = await pid1Of(p.proc.pid);
      await waitFor(() => startedPids(all(p), "web").length === 1 && startedPids(all(p), "db").length === 1, 15_000, "both started");
      // Several healthy checks pass without a restart.
      await Bun.sleep(1500);
      expect(all(p)).not.toContain("unhealthy");
      rmSync(join(www, "live"));
      await waitFor(() => startedPids(all(p), "web").length >= 2, 20_000, `web restarted: ${all(p)}`);
      const pids = startedPids(all(p), "web");
      expect(pids[1]).not.toBe(pids[0]);
      expect(all(p)).toContain("web: unhealthy: 2 checks failed in a row, the last: HTTP 404");
      expect(all(p)).toMatch(/web: exited \(signal SIGTERM\)/);
      // Healthy again: the new process stays.
      writeFileSync(join(www, "live"), "ok\n");
      const restarts = startedPids(all(p), "web").length;
      await Bun.sleep(1500);
      expect(startedPids(all(p), "web").length).toBeLessThanOrEqual(restarts + 1);
      expect(startedPids(all(p), "db")).toHaveLength(1);
      expect(all(p)).not.toContain("db: unhealthy");
      process.kill(pid1, "SIGTERM");
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);

  test('tcp: with restart = "never", an unhealthy critical service ends the container with a failure; one that ignores its stop signal is SIGKILLed after stop_timeout', async () => {
    const free = nextPort(); // nothing listens there
    const file = config(`
[services.stuck]
command = ["sh", "-c", "trap '' TERM; exec sleep 100"]
stop_timeout = 0.3
health = { tcp = ${free}, interval = 0.1, retries = 2 }
[services.other]
command = ["sleep", "100"]
`);
    const p = start([...AS_PID1, PIDONE, "--grace", "3", "-c", file]);
    try {
      const code = await p.exit(30_000);
      expect(all(p)).toContain("stuck: unhealthy: 2 checks failed in a row, the last: connection refused");
      expect(all(p)).toContain("stuck: killed: still running 0.3 s after SIGTERM");
      expect(code).toBe(137);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);

  test("exec: checks never overlap, even when one takes longer than the interval", async () => {
    const dir = tempDir();
    // Each check holds a lock (mkdir is atomic) for 0.4 s; a second one at the same time
    // would find it taken.
    const check = `mkdir ${dir}/lock || echo overlap >> ${dir}/overlaps; echo run >> ${dir}/runs; sleep 0.4; rmdir ${dir}/lock`;
    const file = config(`
[services.s]
command = ["sleep", "100"]
health = { exec = ["sh", "-c", "${check}"], interval = 0.05, timeout = 5 }
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    try {
      const pid1 = await pid1Of(p.proc.pid);
      await waitFor(() => existsSync(`${dir}/runs`) && readFileSync(`${dir}/runs`, "utf8").split("\n").length > 5, 20_000, "five checks");
      process.kill(pid1, "SIGTERM");
      expect(await p.exit()).toBe(0);
      expect(existsSync(`${dir}/overlaps`)).toBe(false);
      expect(all(p)).not.toContain("unhealthy");
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);

  test("exec: a check over its timeout fails, and its process group is killed", async () => {
    const marker = `${nextPort()}.25`; // a sleep no other process runs
    const file = config(`
[services.hang]
command = ["sleep", "100"]
critical = false
health = { exec = ["sh", "-c", "sleep ${marker}; true"], interval = 0.1, timeout = 0.3, retries = 2 }
[services.keep]
command = ["sleep", "100"]
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    try {
      const pid1 = await pid1Of(p.proc.pid);
      await waitFor(() => all(p).includes("hang: unhealthy"), 20_000, "hang unhealthy");
      expect(all(p)).toContain("hang: unhealthy: 2 checks failed in a row, the last: timed out after 0.3 s");
      // The check's shell and its sleep (the whole group) are gone, not left to run 100 s.
      await waitFor(() => !running(`sleep ${marker}`), 10_000, "the timed-out checks' processes gone");
      // restart = "never", not critical: hang is left down, keep runs on.
      await waitFor(() => all(p).includes("hang: exited"), 10_000, "hang exited");
      expect(p.proc.exitCode).toBeNull();
      process.kill(pid1, "SIGTERM");
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);

  test("http: a server that accepts and never answers fails by the timeout, and each check's socket is closed", async () => {
    const mute = nextPort();
    const file = config(`
[services.mute]
command = ["node", "-e", "require('net').createServer(() => {}).listen(${mute}, '127.0.0.1')"]
critical = false
health = { http = "http://127.0.0.1:${mute}/", interval = 0.05, timeout = 0.1, retries = 30 }
[services.keep]
command = ["sleep", "100"]
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    try {
      const pid1 = await pid1Of(p.proc.pid);
      await waitFor(() => all(p).includes("mute: started"), 15_000, "started");
      const fds = () => Bun.spawnSync(["ls", `/proc/${pid1}/fd`]).stdout.toString().trim().split("\n").length;
      await Bun.sleep(1000);
      const early = fds();
      await waitFor(() => all(p).includes("mute: unhealthy"), 30_000, "unhealthy");
      expect(all(p)).toContain("mute: unhealthy: 30 checks failed in a row, the last: timed out after 0.1 s");
      // 30 timed-out connections: none left open (one may be closing as we look).
      expect(fds()).toBeLessThanOrEqual(early + 1);
      process.kill(pid1, "SIGTERM");
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);

  test("a forking daemon (pidfile): its checks go on after the handover, and unhealthy stops the adopted daemon", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "alive"), "");
    const file = config(`
[services.daemon]
command = ["sh", "-c", "sleep 100 & echo $! > ${dir}/pid"]
pidfile = "${dir}/pid"
health = { exec = ["test", "-e", "${dir}/alive"], interval = 0.1, retries = 2 }
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    try {
      await waitFor(() => all(p).includes("daemon: adopted pid"), 15_000, "the daemon adopted");
      await Bun.sleep(500);
      expect(all(p)).not.toContain("unhealthy");
      rmSync(join(dir, "alive"));
      // restart = "never", critical: the container ends with the daemon's status.
      expect(await p.exit(30_000)).toBe(143);
      expect(all(p)).toContain("daemon: unhealthy: 2 checks failed in a row, the last: exit status 1");
      expect(all(p)).toMatch(/daemon: exited \(signal SIGTERM\)/);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);

  test("start_period: failures do not count within it", async () => {
    const file = config(`
[services.s]
command = ["sleep", "100"]
health = { exec = ["false"], interval = 0.1, retries = 1, start_period = 2 }
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    try {
      await waitFor(() => all(p).includes("s: started"), 15_000, "started");
      const started = performance.now();
      await waitFor(() => all(p).includes("s: unhealthy"), 20_000, "unhealthy");
      // At least start_period (less the time it took to see the start), the last check failed.
      expect(performance.now() - started).toBeGreaterThan(1500);
      expect(all(p)).toContain("s: unhealthy: 1 check failed in a row, the last: exit status 1");
      expect(await p.exit()).not.toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);
});

needs(NATIVE, SINGLE_FILE)("the cost of a liveness check", () => {
  test("a tcp check every second wakes pidone a few times per check, on no new thread", async () => {
    const web = nextPort();
    const dir = tempDir();
    const file = config(`
[services.s]
command = ["busybox", "httpd", "-f", "-p", "127.0.0.1:${web}", "-h", "${dir}"]
health = { tcp = ${web}, interval = 1 }
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    try {
      const pid1 = await pid1Of(p.proc.pid);
      await waitFor(() => all(p).includes("s: started"), 15_000, "started");
      await Bun.sleep(2000);
      const threads = () => Bun.spawnSync(["ls", `/proc/${pid1}/task`]).stdout.toString().trim().split("\n").length;
      const before = contextSwitches(pid1);
      const threadsBefore = threads();
      await Bun.sleep(5000);
      const switches = contextSwitches(pid1) - before;
      // About five checks; each a timer, a connect and a close. Generous: other tests load the machine.
      expect(switches).toBeGreaterThan(0);
      expect(switches).toBeLessThan(5 * 10);
      expect(threads()).toBe(threadsBefore);
      process.kill(pid1, "SIGTERM");
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);
});
