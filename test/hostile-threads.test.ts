// Issue 13, threads: once the child or the services run, pidone needs no new thread, so a
// full pid table (a container's pids limit, a fork bomb) costs it nothing the kernel can
// refuse. In Docker: a tight --pids-limit filled by a service that forks until EAGAIN,
// with output bursts, restarts, a signal storm and the stop; and the issue's own case,
// --pids-limit 3 with a service printing 20,000 lines. As PID 1 of a PID namespace: the
// set of threads stays the one at start-up over a busy run (scripts/stress/threads.ts
// runs the same scenarios for minutes and prints the census).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeOutcome, servicesMode, ThreadWatch, tiniMode, type Outcome } from "../scripts/stress/threads.ts";
import { DOCKER_ENGINE, addSymlinks, buildScratchImage, dockerAvailable } from "./docker.ts";
import { NATIVE, SINGLE_FILE } from "./fixtures/native-lib.ts";
import { PIDONE, linesOf, needs, run, start, tempDir, waitFor, type RunResult, type Started } from "./helpers.ts";

const DOCKER = await dockerAvailable();
const RUN_ID = `${process.pid}`;
const IMAGE = `pidone-test-threads:${RUN_ID}`;
const containers: string[] = [];
const dirs: string[] = [];

/** What the runtime prints when it aborts, none of which may reach a user. */
const RUNTIME_CRASH = /panic|crash|oh no|bun\.report|Bun v\d|Bun has|Segmentation fault|Illegal instruction/i;

function containerName(what: string): string {
  const n = `pidone-threads-${what}-${RUN_ID}-${containers.length}`;
  containers.push(n);
  return n;
}

/** A run of the 20,000-line `burst` service: exit 0, every line out, no crash text. */
function expectWholeBurst(r: RunResult): void {
  expect(r.code, show(r)).toBe(0);
  const lines = linesOf(r.stdout, "burst");
  expect(lines.length, show(r)).toBe(20_000);
  expect(lines[19_999]).toBe("20000");
  expect(r.stdout + r.stderr, show(r)).not.toMatch(RUNTIME_CRASH);
}

function show(r: RunResult | Started): string {
  const [code, out, err] = "proc" in r ? ["(running)", r.stdout(), r.stderr()] : [r.code, r.stdout, r.stderr];
  const notEvents = (s: string) =>
    s
      .split("\n")
      .filter((l) => !/^burst\s*\| \d+$/.test(l))
      .join("\n");
  return `exit ${code}\n--- stdout (burst lines left out)\n${notEvents(out).slice(-6000)}\n--- stderr\n${err.slice(-4000)}`;
}

// The fork bomb forks until EAGAIN, only ever here: inside a container with a pids limit.
// ash gives up at the first failed fork; the sleeps it left, adopted by pidone, hold the
// table full for the rest of the test. What runs then forks nothing: the storm and the
// bursts are shell builtins, and a restart takes the slot its previous run freed. Every
// service but `sig` takes only WINCH (which nobody sends), so the USR1 storm reaches
// `sig` alone, which traps it. The liveness checks (tcp, http) go on through it all: an
// unhealthy web or probed would end the container with a failure.
const HOSTILE_TOML = `
[settings]
grace = 10

[services.web]
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]
ready = { tcp = "probe-host:8080" }
health = { tcp = "probe-host:8080", interval = 0.5, timeout = 10, retries = 10 }
signals = ["WINCH"]

[services.probed]
command = ["sleep", "100000"]
ready = { http = "http://probe-host:8080/index.html" }
health = { http = "http://probe-host:8080/index.html", interval = 0.5, timeout = 10, retries = 10 }
after = ["web"]
signals = ["WINCH"]

[services.sig]
command = ["sh", "-c", "n=0; trap 'n=$((n+1)); [ $((n % 100)) -ne 1 ] || echo got-usr1 $n' USR1; echo sig-up; sleep 100000 & while :; do wait; done"]
signals = ["USR1"]

[services.storm]
command = ["sh", "-c", "echo storm-up; while :; do kill -USR1 1; done"]
after = ["probed", "sig"]
critical = false
signals = ["WINCH"]

[services.bomb]
command = ["sh", "-c", "echo bomb-up; while :; do sleep 30 & done"]
after = ["storm"]
critical = false
signals = ["WINCH"]

[services.burst]
command = ["sh", "-c", "i=1; while [ $i -le 20000 ]; do echo $i; i=$((i+1)); done; exit 1"]
after = ["storm"]
restart = "always"
max_restarts = 100
critical = false
signals = ["WINCH"]

`;

beforeAll(async () => {
  if (!DOCKER) return;
  const files = tempDir("pidone-threads-img-");
  dirs.push(files);
  writeFileSync(join(files, "hostile.toml"), HOSTILE_TOML);
  writeFileSync(join(files, "seq.toml"), `[services.burst]\ncommand = ["seq", "1", "20000"]\n`);
  writeFileSync(join(files, "index.html"), "ok\n");
  const base = await buildScratchImage({
    tag: `${IMAGE}-base`,
    files: { "/cfg/hostile.toml": join(files, "hostile.toml"), "/cfg/seq.toml": join(files, "seq.toml"), "/www/index.html": join(files, "index.html") },
    entrypoint: ["/pidone"],
  });
  await addSymlinks(base, IMAGE, { "/bin/seq": "busybox", "/bin/httpd": "busybox" });
}, 300_000);

afterAll(async () => {
  if (!DOCKER) return;
  for (const n of containers) await run(["docker", "rm", "-f", n], { timeoutMs: 30_000 });
  await run(["docker", "rmi", "-f", IMAGE, `${IMAGE}-base`], { timeoutMs: 60_000 });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 120_000);

needs(DOCKER, DOCKER_ENGINE)("under a full pid table (Docker --pids-limit)", () => {
  test("--pids-limit 3, one service printing 20,000 lines: every line, exit 0, no crash", async () => {
    const name = containerName("seq");
    // pidone, its output thread and seq: the limit exactly.
    const r = await run(
      ["timeout", "-k", "5", "60", "docker", "run", "--name", name, "--network", "none", "--sig-proxy=false", "--pids-limit", "3", IMAGE, "--config", "/cfg/seq.toml"],
      { timeoutMs: 70_000 },
    );
    expectWholeBurst(r);
  }, 90_000);

  test("a fork bomb fills the table: bursts, restarts, a signal storm and the stop still work, on the threads of start-up", async () => {
    const name = containerName("hostile");
    const p = start([
      "timeout", "-k", "5", "100", "docker", "run", "--name", name, "--network", "none", "--sig-proxy=false",
      "--pids-limit", "40", "--add-host", "probe-host:127.0.0.1", IMAGE, "--config", "/cfg/hostile.toml",
    ]);
    const pid = await waitFor(async () => {
      const r = await run(["docker", "inspect", "-f", "{{.State.Pid}}", name], { timeoutMs: 10_000 });
      return r.code === 0 ? Number(r.stdout.trim()) : 0;
    }, 30_000, "the container's PID 1");
    const watch = new ThreadWatch(pid);
    const burstStarts = () => (p.stdout().match(/burst: started/g) ?? []).length;
    try {
      // The probes (tcp and http to a name resolved at start-up) passed before the bomb.
      await p.waitStdout("pidone | probed: ready", 30_000);
      const atStart = watch.mark();
      await p.waitStdout("storm-up", 30_000);
      await p.waitStdout("bomb-up", 30_000);
      // The table was full: a fork failed for want of a pid (the bomb's, a burst's, or a restart's).
      await waitFor(() => /can't fork|Resource temporarily unavailable/.test(p.stdout() + p.stderr()), 30_000, `a failed fork\n${show(p)}`);
      await p.waitStdout("got-usr1", 30_000);
      // With the table full: two restarts, each a whole run of 20,000 lines, and the storm goes on.
      const starts = burstStarts();
      const whole = () => linesOf(p.stdout(), "burst").filter((l) => l === "20000").length;
      const runs = whole();
      const storms = () => (p.stdout().match(/got-usr1/g) ?? []).length;
      const stormed = storms();
      await waitFor(() => burstStarts() >= starts + 2 && whole() >= runs + 2, 60_000, `two more whole bursts\n${show(p)}`);
      await waitFor(() => storms() > stormed, 30_000, `the storm going on\n${show(p)}`);
      watch.stopping();
      const stopAt = Date.now();
      await run(["docker", "kill", "-s", "TERM", name], { timeoutMs: 20_000 });
      const code = await p.exit(40_000);
      const census = await watch.finish();
      expect(code, show(p)).toBe(0);
      expect(Date.now() - stopAt, show(p)).toBeLessThan(15_000);
      expect(p.stdout(), show(p)).toContain("pidone | stopping: received SIGTERM");
      expect(p.stdout(), show(p)).not.toContain("unhealthy");
      expect(p.stdout() + p.stderr(), show(p)).not.toMatch(RUNTIME_CRASH);
      expect([...atStart.values()].sort()).toEqual(NATIVE ? ["Worker", "pidone"] : expect.any(Array));
      if (NATIVE) expect({ appeared: [...census.appeared.values()], ended: [...census.ended.values()] }).toEqual({ appeared: [], ended: [] });
    } finally {
      await run(["docker", "rm", "-f", name], { timeoutMs: 30_000 });
    }
  }, 180_000);
});

function expectFixed(o: Outcome, threads: string[], code: number): void {
  const why = `${describeOutcome(o)}\n${o.output.slice(-3000)}`;
  expect([...o.census.atStart.values()].sort(), why).toEqual(threads);
  expect({ appeared: [...o.census.appeared.values()], ended: [...o.census.ended.values()] }, why).toEqual({ appeared: [], ended: [] });
  expect(o.code, why).toBe(code);
  expect(o.output, why).not.toMatch(RUNTIME_CRASH);
}

needs(NATIVE, SINGLE_FILE)("the threads of start-up are all pidone ever has", () => {
  test("tini's mode: one thread through orphans, output and a signal storm, and the stop", async () => {
    expectFixed(await tiniMode(PIDONE, 4000), ["pidone"], 143);
  }, 60_000);

  test("services mode without its output thread (the kernel refuses it): the main thread copies every line", async () => {
    // strace makes pidone's first clone3, the output worker's thread, fail with EAGAIN, as
    // a full pid table would; the services are started later and are not refused.
    const dir = tempDir("pidone-threads-fallback-");
    dirs.push(dir);
    const file = join(dir, "services.toml");
    writeFileSync(file, `[services.burst]\ncommand = ["seq", "1", "20000"]\n`);
    const r = await run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=clone3", "-e", "inject=clone3:error=EAGAIN:when=1", PIDONE, "-s", "--config", file], { timeoutMs: 60_000 });
    expectWholeBurst(r);
  }, 90_000);

  test("services mode: the main thread and the output worker through bursts, restarts, probes (http, tcp, file, exec), signal storms, control and HTTP requests, and the stop", async () => {
    const o = await servicesMode(PIDONE, 5000);
    expectFixed(o, ["Worker", "pidone"], 0);
    expect(o.did).toMatch(/ [1-9]\d* control and HTTP requests answered/);
  }, 90_000);
});
