// Services mode, end to end: real programs as PID 1 of a PID namespace.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, linesOf, mapLimit, needs, pid1Of, run, start, statusField, tempDir, waitFor } from "./helpers.ts";
import { NATIVE, SINGLE_FILE } from "./fixtures/native-lib.ts";

function config(text: string): string {
  const dir = tempDir();
  const file = join(dir, "services.toml");
  writeFileSync(file, text);
  return file;
}

let port = 20000 + (process.pid % 5000);
const nextPort = () => ++port;

describe("declaring services", () => {
  test("--service runs each NAME: COMMAND with /bin/sh -c and prefixes its lines", async () => {
    // Not critical, so the first to finish does not stop the other.
    const file = config(`[services.a]\ncommand = "echo one; echo two >&2"\nshell = true\ncritical = false\n`);
    const r = await run([...AS_PID1, PIDONE, "-c", file, "--service", "bb: echo three"]);
    expect(r.code).toBe(0);
    expect(linesOf(r.stdout, "a")).toEqual(["one"]);
    expect(linesOf(r.stderr, "a")).toEqual(["two"]);
    expect(linesOf(r.stdout, "bb")).toEqual(["three"]);
  });

  test("a Procfile (-c) with comments", async () => {
    const dir = tempDir();
    const file = join(dir, "Procfile");
    writeFileSync(file, "# two services\nweb: echo web up; exec sleep 100\n\nworker: echo worker up; exec sleep 100\n");
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout((t) => t.includes("web up") && t.includes("worker up"));
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect(linesOf(p.stdout(), "web")).toEqual(["web up"]);
    expect(linesOf(p.stdout(), "worker")).toEqual(["worker up"]);
  });

  test("services mode takes no PROGRAM and no -P", async () => {
    expect((await run([PIDONE, "--service", "a: true", "true"])).code).toBe(1);
    expect((await run([PIDONE, "--service", "a: true", "-P"])).code).toBe(1);
  });

  test("--check: exit 0 for a good file, 2 listing every problem with FILE:LINE", async () => {
    const good = config(`[services.a]\ncommand = ["true"]\n`);
    const ok = await run([PIDONE, "--check", "-c", good]);
    expect(ok.code).toBe(0);
    const bad = config(`[services.a]\ncommand = ["true"]\nafter = ["nope"]\nrestart = "sometimes"\nbogus = 1\n`);
    const r = await run([PIDONE, "--check", "-c", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3:`);
    expect(r.stderr).toContain(`${bad}:4:`);
    expect(r.stderr).toContain(`${bad}:5:`);
  });

  test("an invalid configuration is refused at start-up too (exit 2), before anything runs", async () => {
    const bad = config(`[services.a]\ncommand = ["/nonexistent/program"]\n`);
    const r = await run([PIDONE, "-c", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("/nonexistent/program");
  });
});

describe("ordering and readiness", () => {
  test("a oneshot must finish before services `after` it start; a file probe gates its dependents", async () => {
    const dir = tempDir();
    const flag = join(dir, "ready");
    const file = config(`
[services.init]
command = "echo init; sleep 0.3; echo init-done"
shell = true
oneshot = true
[services.db]
command = "sleep 0.3; echo db-up; touch ${flag}; exec sleep 100"
shell = true
after = ["init"]
ready = { file = "${flag}" }
[services.app]
command = "echo app-start; exit 0"
shell = true
after = ["db"]
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "1", "-c", file]);
    // db says db-up before it makes itself ready: app may start the moment the file is there.
    const order = r.stdout.split("\n").filter((l) => /init-done|db-up|app-start/.test(l)).map((l) => l.split("| ")[1]);
    expect(order).toEqual(["init-done", "db-up", "app-start"]);
    expect(r.code).toBe(0); // app (critical) exited 0: the container ends with its status
  });

  test("tcp, http and exec probes: dependents start only once each is ready", async () => {
    const tcp = nextPort();
    const http = nextPort();
    const dir = tempDir();
    const file = config(`
[services.tcp]
command = ["sh", "-c", "sleep 0.5; exec node -e \\"require('net').createServer(s => s.end()).listen(${tcp}, '127.0.0.1', () => console.log('tcp-listening'))\\""]
ready = { tcp = ${tcp} }
[services.web]
command = ["sh", "-c", "sleep 0.5; mkdir -p ${dir}/www; echo hi > ${dir}/www/index.html; exec busybox httpd -f -p 127.0.0.1:${http} -h ${dir}/www"]
ready = { http = "http://127.0.0.1:${http}/" }
[services.probe]
command = ["sh", "-c", "sleep 0.5; touch ${dir}/exec-ok; exec sleep 100"]
ready = { exec = ["test", "-e", "${dir}/exec-ok"] }
[services.last]
command = ["sh", "-c", "busybox wget -q -O - http://127.0.0.1:${http}/ && echo last-ran"]
after = ["tcp", "web", "probe"]
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "2", "-c", file], { timeoutMs: 30_000 });
    expect(linesOf(r.stdout, "last")).toEqual(["hi", "last-ran"]);
    expect(r.stdout.indexOf("tcp-listening")).toBeLessThan(r.stdout.indexOf("last-ran"));
    expect(r.code).toBe(0);
  });

  test("a readiness timeout fails the service", async () => {
    const file = config(`
[services.never]
command = ["sleep", "100"]
ready = { file = "/nonexistent/ready" }
ready_timeout = 0.5
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "1", "-c", file]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("not ready after 0.5 s");
  });

  test("an exec probe whose program cannot be started says why in the not-ready line", async () => {
    // A probe program that is there when the file is checked, and gone once the service runs.
    const probe = join(tempDir(), "probe");
    writeFileSync(probe, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    const file = config(`
[services.never]
command = "rm -f ${probe}; exec sleep 100"
shell = true
ready = { exec = ["${probe}"] }
ready_timeout = 0.5
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "1", "-c", file]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`not ready after 0.5 s (exec ${probe} (it could not be started: exec ${probe} failed: No such file or directory))`);
  });

  test("a failed oneshot fails the container with its status", async () => {
    const file = config(`
[services.migrate]
command = "echo boom; exit 4"
shell = true
oneshot = true
critical = false
[services.app]
command = ["sleep", "100"]
after = ["migrate"]
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "1", "-c", file]);
    expect(r.code).toBe(4);
    expect(r.stdout).not.toContain("app: started");
  });
});

describe("restarts and critical services", () => {
  test("restart on failure with a growing backoff, then give up; a critical end propagates its status", async () => {
    const file = config(`
[services.crash]
command = "echo run; exit 3"
shell = true
restart = "on-failure"
max_restarts = 2
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "1", "-c", file], { timeoutMs: 30_000 });
    expect(linesOf(r.stdout, "crash")).toEqual(["run", "run", "run"]);
    const text = r.stdout + r.stderr;
    expect(text).toContain("restarting in 1 s");
    expect(text).toContain("restarting in 2 s");
    expect(r.code).toBe(3);
  });

  test("restart_delay and restart_delay_max set the pace of a crash loop; max_restarts = inf never gives up", async () => {
    const file = config(`
[services.crash]
command = "echo run; exit 3"
shell = true
restart = "always"
restart_delay = 0.05
restart_delay_max = 0.1
max_restarts = inf
critical = false
`);
    const p = start([...AS_PID1, PIDONE, "--grace", "2", "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    // 30 runs: well past the default limit of 5 in 60 s; at the default pace (1 s doubling
    // to 30 s) they would take over ten minutes.
    const started = performance.now();
    try {
      await p.waitStdout((t) => (t.match(/^crash +\| run$/gm) ?? []).length >= 30, 60_000);
    } finally {
      // Even when the wait fails: a crash loop left behind would load every later test.
      process.kill(pid1, "SIGTERM");
      await p.exit();
    }
    const elapsed = performance.now() - started;
    const text = p.stdout() + p.stderr();
    expect(text).toContain("restarting in 0.05 s");
    expect(text).toContain("restarting in 0.1 s");
    expect(text).not.toContain("restarting in 0.2 s");
    expect(text).not.toContain("gave up");
    expect(elapsed).toBeLessThan(45_000);
  });

  test("a non-critical service that ends is left down; the others keep running until stopped", async () => {
    const file = config(`
[services.side]
command = "exit 1"
shell = true
critical = false
[services.main]
command = "trap 'exit 0' TERM; echo main-up; while :; do sleep 0.05; done"
shell = true
`);
    const p = start([...AS_PID1, PIDONE, "--grace", "2", "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("main-up");
    await p.waitStdout(/side: exited/);
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
  });
});

describe("the stop", () => {
  test("a SIGTERM in pidone's first milliseconds, before the services run, starts the stop: never fatal, never lost", async () => {
    // The output worker's thread may take a signal pending since start-up: it is made only
    // once the signals are caught (services.ts, start). One early signal in a few hundred
    // found that window, so many starts, each signalled a little later.
    const file = config(`
[services.a]
command = "sleep 1000"
[services.b]
command = "sleep 1000"
`);
    const codes = await mapLimit([...Array(150).keys()], 4, async (i) => {
      const p = start([PIDONE, "-c", file]);
      // Not before it blocks or catches SIGTERM (the single file's first instruction blocks
      // it): a signal between execve and then meets the default action in any program.
      const term = 1n << 14n;
      const has = async (field: string) => (BigInt(`0x${(await statusField(p.proc.pid, field)) ?? "0"}`) & term) !== 0n;
      await waitFor(async () => (await has("SigBlk")) || (await has("SigCgt")));
      await Bun.sleep(i % 30);
      p.proc.kill("SIGTERM");
      return p.exit();
    });
    expect(codes.filter((c) => c !== 0)).toEqual([]);
  });

  test("SIGTERM stops services in reverse dependency order, each TERM handler runs, exit 0", async () => {
    const file = config(`
[services.db]
command = "trap 'echo db-bye; exit 0' TERM; echo db-up; while :; do sleep 0.05; done"
shell = true
[services.app]
command = "trap 'echo app-bye; exit 0' TERM; echo app-up; while :; do sleep 0.05; done"
shell = true
after = ["db"]
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("app-up");
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
    const out = p.stdout();
    expect(out.indexOf("app-bye")).toBeGreaterThan(-1);
    expect(out.indexOf("db-bye")).toBeGreaterThan(out.indexOf("app-bye"));
  });

  test("a service that ignores its stop signal is killed within the grace; the stop is then not clean", async () => {
    const file = config(`
[services.stubborn]
command = "trap '' TERM; echo up; while :; do sleep 0.05; done"
shell = true
stop_timeout = 30
`);
    const p = start([...AS_PID1, PIDONE, "--grace", "1", "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("up");
    const t0 = performance.now();
    process.kill(pid1, "SIGTERM");
    const code = await p.exit();
    expect(performance.now() - t0).toBeLessThan(8000);
    expect(code).not.toBe(0);
    expect(p.stdout() + p.stderr()).toContain("killed");
  });

  test("stop_signal is what a service gets on stop", async () => {
    const file = config(`
[services.q]
command = "trap 'echo got-quit; exit 0' QUIT; echo up; while :; do sleep 0.05; done"
shell = true
stop_signal = "QUIT"
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("up");
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect(p.stdout()).toContain("got-quit");
  });

  test("other signals reach exactly the services whose `signals` include them", async () => {
    const file = config(`
[services.a]
command = "trap 'echo a-hup' HUP; trap 'exit 0' TERM; echo up; while :; do sleep 0.05; done"
shell = true
signals = ["HUP"]
[services.b]
command = "trap 'echo b-hup' HUP; trap 'echo b-usr1' USR1; trap 'exit 0' TERM; echo up; while :; do sleep 0.05; done"
shell = true
signals = ["USR1"]
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout((t) => t.split("up\n").length >= 3);
    process.kill(pid1, "SIGHUP");
    await p.waitStdout("a-hup");
    process.kill(pid1, "SIGUSR1");
    await p.waitStdout("b-usr1");
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect(p.stdout()).not.toContain("b-hup");
  });

  test("each delivery reaches each taker once: one taker (forwarded natively), two takers, and a restarted taker", async () => {
    const file = config(`
[services.a]
command = "trap 'echo a-usr1; exit 0' USR1; trap 'exit 0' TERM; echo a-up; while :; do sleep 0.05; done"
shell = true
restart = "always"
signals = ["USR1"]
[services.b]
command = "trap 'echo b-usr2' USR2; trap 'exit 0' TERM; echo b-up; while :; do sleep 0.05; done"
shell = true
signals = ["USR2"]
[services.c]
command = "trap 'echo c-usr2' USR2; trap 'exit 0' TERM; echo c-up; while :; do sleep 0.05; done"
shell = true
signals = ["USR2"]
`);
    const p = start([...AS_PID1, PIDONE, "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    const count = (line: string) => p.stdout().split("\n").filter((l) => l.endsWith(`| ${line}`)).length;
    const until = (line: string, n: number) => p.waitStdout(() => count(line) >= n);
    await Promise.all([until("a-up", 1), until("b-up", 1), until("c-up", 1)]);
    process.kill(pid1, "SIGUSR1");
    await until("a-usr1", 1);
    await until("a-up", 2); // restarted: a new pid, a new process group
    process.kill(pid1, "SIGUSR1");
    await until("a-usr1", 2);
    for (const n of [1, 2]) {
      process.kill(pid1, "SIGUSR2");
      await Promise.all([until("b-usr2", n), until("c-usr2", n)]);
    }
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect([count("a-usr1"), count("b-usr2"), count("c-usr2")]).toEqual([2, 2, 2]);
  }, 30_000);
});

describe("output", () => {
  test("two services printing 100,000 lines at once: every line intact, none interleaved (prefix)", async () => {
    const file = config(`
[services.one]
command = ["sh", "-c", "seq 1 100000 | sed 's/^/one-line-/'"]
critical = false
[services.two]
command = ["sh", "-c", "seq 1 100000 | sed 's/^/two-line-/'"]
critical = false
`);
    const r = await run([...AS_PID1, PIDONE, "-c", file], { timeoutMs: 60_000 });
    for (const name of ["one", "two"]) {
      const lines = linesOf(r.stdout, name);
      expect(lines.length).toBe(100_000);
      expect(lines[0]).toBe(`${name}-line-1`);
      expect(lines[99_999]).toBe(`${name}-line-100000`);
      expect(lines.every((l, i) => l === `${name}-line-${i + 1}`)).toBe(true);
    }
  });

  test("json: one object per line with ts, service, stream, line", async () => {
    const file = config(`
[settings]
log_format = "json"
[services.one]
command = ["sh", "-c", "seq 1 100000 | sed 's/^/one-/'"]
critical = false
[services.two]
command = ["sh", "-c", "seq 1 100000 | sed 's/^/two-/'; echo oops >&2"]
critical = false
`);
    const r = await run([...AS_PID1, PIDONE, "-c", file], { timeoutMs: 60_000 });
    const objs = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const one = objs.filter((o) => o.service === "one" && o.stream === "stdout").map((o) => o.line);
    const two = objs.filter((o) => o.service === "two" && o.stream === "stdout").map((o) => o.line);
    expect(one.length).toBe(100_000);
    expect(two.length).toBe(100_000);
    expect(one.every((l: string, i: number) => l === `one-${i + 1}`)).toBe(true);
    expect(objs.find((o) => o.stream === "stderr")?.line).toBe("oops");
    expect(objs[0].ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test("raw: services write straight to pidone's descriptors", async () => {
    const file = config(`
[settings]
log_format = "raw"
[services.one]
command = ["sh", "-c", "echo plain"]
`);
    const r = await run([...AS_PID1, PIDONE, "-c", file]);
    expect(r.stdout).toContain("plain\n");
    expect(r.stdout).not.toContain("one |");
  });

  test("services get stdin from /dev/null", async () => {
    const r = await run([...AS_PID1, PIDONE, "--service", "s: readlink /proc/self/fd/0"], { stdin: "pipe" });
    expect(linesOf(r.stdout, "s")).toEqual(["/dev/null"]);
  });
});

// The plain executable refuses `user` (tested in native-trampoline.test.ts).
needs(NATIVE, SINGLE_FILE)("switching user (single file)", () => {
  test("a switched service gets HOME of its user, and its exec probe runs as that user too", async () => {
    const file = config(`
[services.svc]
command = ["sh", "-c", "echo home=$HOME uid=$(id -u); exec sleep 100"]
user = "31337:31338"
ready = { exec = ["sh", "-c", "test $(id -u) = 31337"] }
ready_timeout = 5
[services.after]
command = ["sh", "-c", "echo after-ran"]
after = ["svc"]
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "1", "-c", file]);
    expect(linesOf(r.stdout, "svc")).toEqual(["home=/ uid=31337"]);
    expect(linesOf(r.stdout, "after")).toEqual(["after-ran"]);
    expect(r.code).toBe(0);
  });
});
