// Services mode (issue 6) in real containers: pidone as PID 1 of a FROM scratch image running
// real busybox programs (httpd, crond, nc, sleep, scripts) under `--network none`, then the
// motivating scenario end to end - sshd and cron from a Debian image built here with
// mmdebstrap, run with no TTY, and sshd adopted through --pidfile.
//
// The Debian base (mmdebstrap + host keys + a root login key) is cached by a tag derived from
// how it is built, so only the first run on a machine pays for it; the image with this
// build's /pidone on top is made anew each run. Skipped, saying so, when no Docker engine
// answers `docker info`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DOCKER_ENGINE, addSymlinks, buildScratchImage, dockerAvailable } from "./docker.ts";
import { PIDONE, needs, run, start, tempDir, waitFor, type RunResult, type Started, linesOf } from "./helpers.ts";

const DOCKER = await dockerAvailable();

const RUN_ID = `${process.pid}`;
const IMAGE = `pidone-test-services-scratch:${RUN_ID}`;
const NOSHELL_IMAGE = `pidone-test-services-noshell:${RUN_ID}`;
const DEBIAN_IMAGE = `pidone-test-services-debian:${RUN_ID}`;
const containers: string[] = [];
const dirs: string[] = [];

function containerName(what: string): string {
  const n = `pidone-svc-${what}-${RUN_ID}-${containers.length}`;
  containers.push(n);
  return n;
}

function scratchDir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

function docker(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return run(["docker", ...args], { timeoutMs });
}

function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(-6000)}\n--- stderr\n${r.stderr.slice(-6000)}`;
}

/** `docker run` attached without a TTY: the container's output streams into the test as it comes. */
function attach(what: string, args: string[]): { name: string; p: Started } {
  const name = containerName(what);
  return { name, p: start(["docker", "run", "--name", name, "--network", "none", ...args]) };
}

function showStarted(p: Started): string {
  return `--- stdout\n${p.stdout().slice(-6000)}\n--- stderr\n${p.stderr().slice(-6000)}`;
}

/** Waits until the container's output (stdout, stderr or both) satisfies `cond`; on timeout, shows it all. */
async function waitOutput(p: Started, cond: (stdout: string, stderr: string) => boolean, timeoutMs: number, what: string): Promise<void> {
  await waitFor(() => cond(p.stdout(), p.stderr()), timeoutMs, what).catch((e: Error) => {
    throw new Error(`${e.message}\n${showStarted(p)}`);
  });
}

interface Event {
  service: string;
  message: string;
}

/** pidone's own events in prefixed output: "pidone | web: ready (event=ready)". */
function eventsOf(out: string): Event[] {
  return out.split("\n").flatMap((l) => {
    const m = /^pidone\s*\| ([^:]+): (.*)$/.exec(l);
    return m ? [{ service: m[1]!, message: m[2]! }] : [];
  });
}

function eventIndex(events: Event[], service: string, message: RegExp): number {
  return events.findIndex((e) => e.service === service && message.test(e.message));
}

async function exitCodeOf(name: string): Promise<number> {
  const r = await docker(["inspect", "-f", "{{.State.ExitCode}}", name]);
  return Number(r.stdout.trim());
}

async function isRunning(name: string): Promise<boolean> {
  const r = await docker(["inspect", "-f", "{{.State.Running}}", name]);
  return r.stdout.trim() === "true";
}

/** `docker stop -t 10`, timed in seconds. */
async function timedStop(name: string): Promise<{ r: RunResult; seconds: number }> {
  const t0 = performance.now();
  const r = await docker(["stop", "-t", "10", name], 30_000);
  return { r, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------- the scratch image

// Services files baked into the scratch image under /cfg. Script services loop on `sleep`:
// the stop signal goes to the service's process group, so the sleep ends at once and
// the shell runs its trap.
const loop = (name: string, extraTraps = "") =>
  `trap 'echo ${name}-bye; exit 0' TERM; ${extraTraps}echo ${name}-up; while :; do sleep 1; done`;

const CONFIGS: Record<string, string> = {
  "order.toml": `
[services.setup]
command = "mkdir -p /tmp/www && echo hello-from-httpd > /tmp/www/index.html && echo setup-done"
shell = true
oneshot = true

[services.web]
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/tmp/www"]
after = ["setup"]
ready = { http = "http://127.0.0.1:8080/index.html" }

[services.pong]
command = ["nc", "-ll", "-p", "9000", "-e", "/bin/echo", "pong"]
ready = { tcp = 9000 }

[services.slowfile]
command = "sleep 1; echo file-made; touch /tmp/slowfile-ready; exec sleep 1000"
shell = true
ready = { file = "/tmp/slowfile-ready" }

[services.slowexec]
command = "sleep 1; echo exec-made; touch /tmp/slowexec-ok; exec sleep 1000"
shell = true
ready = { exec = ["test", "-e", "/tmp/slowexec-ok"] }

[services.client]
command = "wget -q -O - http://127.0.0.1:8080/index.html && echo | nc 127.0.0.1 9000 && echo client-done"
shell = true
after = ["web", "pong", "slowfile", "slowexec"]
`,
  "oneshot.toml": `
[services.migrate]
command = "echo migrating; exit 7"
shell = true
oneshot = true

[services.app]
command = ["sleep", "1000"]
after = ["migrate"]

[services.side]
command = "${loop("side")}"
shell = true
`,
  "restart.toml": `
[settings]
log_format = "json"

[services.crash]
command = "echo run; exit 5"
shell = true
restart = "on-failure"
max_restarts = 3
`,
  "critical.toml": `
[services.side]
command = "trap 'echo side-bye; exit 0' TERM; touch /tmp/side-up; while :; do sleep 1; done"
shell = true
ready = { file = "/tmp/side-up" }

[services.main]
command = "echo main-failing; exit 42"
shell = true
after = ["side"]
`,
  "stop.toml": `
[services.db]
command = "${loop("db")}"
shell = true

[services.app]
command = "${loop("app")}"
shell = true
after = ["db"]

[services.web]
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]
after = ["app"]
ready = { http = "http://127.0.0.1:8080/" }

[services.cron]
command = ["crond", "-f", "-L", "/dev/stderr", "-c", "/etc/crontabs"]

[services.edge]
command = "${loop("edge")}"
shell = true
after = ["web"]
`,
  "signals.toml": `
[services.a]
command = "${loop("a", "trap 'echo a-hup' HUP; ")}"
shell = true
signals = ["HUP"]

[services.b]
command = "${loop("b", "trap 'echo b-hup' HUP; trap 'echo b-usr1' USR1; ")}"
shell = true
signals = ["USR1"]

[services.c]
command = "${loop("c", "trap 'echo c-hup' HUP; trap 'echo c-usr1' USR1; ")}"
shell = true
`,
  // The floods stay up once done, so what is checked is the copying while they run, not
  // the bounded drain at exit.
  "flood.toml": `
[services.one]
command = "seq 1 100000 | sed 's/^/one-line-/'; exec sleep 1000"
shell = true

[services.two]
command = "seq 1 100000 | sed 's/^/two-line-/'; exec sleep 1000"
shell = true
`,
  "flood-json.toml": `
[settings]
log_format = "json"

[services.one]
command = "seq 1 100000 | sed 's/^/one-/'; exec sleep 1000"
shell = true

[services.two]
command = "seq 1 100000 | sed 's/^/two-/'; echo two-on-stderr >&2; exec sleep 1000"
shell = true
`,
  // For --read-only and --user 65534: nothing here may write anywhere.
  "readonly.toml": `
[services.web]
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]
ready = { http = "http://127.0.0.1:8080/" }

[services.pong]
command = ["nc", "-ll", "-p", "9000", "-e", "/bin/echo", "pong"]
ready = { tcp = 9000 }

[services.client]
command = "wget -q -O - http://127.0.0.1:8080/ && echo | nc 127.0.0.1 9000 && echo uid=$(id -u) && if touch /tmp/x 2>/dev/null; then echo root-writable; else echo root-read-only; fi"
shell = true
after = ["web", "pong"]
`,
  // Each problem on its own line, so every diagnostic can name it.
  "broken.toml": `[settings]
grace = "soon"
[services.web]
command = ["httpd", "-f"]
after = ["nope"]
colour = "red"
[services.a]
command = ["sleep", "1"]
after = ["b"]
[services.b]
command = ["sleep", "1"]
after = ["a"]
[services.c]
command = ["/usr/bin/not-here"]
[services.d]
command = ["sleep", "1"]
user = "nobody-here"
restart = 3
`,
  "Procfile.broken": "# a Procfile with two bad lines\nweb httpd -f\nok: sleep 1\nbad name!: true\n",
};

/** The line (1-based) of `needle` in a config, for FILE:LINE diagnostics. */
function lineOf(config: string, needle: string): number {
  const i = CONFIGS[config]!.split("\n").findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${needle} is not in ${config}`);
  return i + 1;
}

/** Busybox applets the services use, beyond buildScratchImage's shell set. */
const APPLETS = ["httpd", "crond", "nc", "wget", "seq", "sed", "id"];

const NOSHELL_TOML = `
[services.hello]
command = ["/usr/bin/busybox", "echo", "hello without a shell"]
`;

async function buildImages(): Promise<void> {
  const files = scratchDir("pidone-svc-files-");
  const put = (name: string, text: string) => {
    const p = join(files, name.replaceAll("/", "_"));
    writeFileSync(p, text);
    return p;
  };
  const cfg: Record<string, string> = {};
  for (const [name, text] of Object.entries(CONFIGS)) cfg[`/cfg/${name}`] = put(name, text);
  await Promise.all([
    buildScratchImage({
      tag: `${IMAGE}-base`,
      files: {
        ...cfg,
        "/www/index.html": put("index.html", "hello-from-www\n"),
        // Accounts for crond's job owner and for `--user 65534` (id, wget).
        "/etc/passwd": put("passwd", "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
        "/etc/group": put("group", "root:x:0:\nnogroup:x:65534:\n"),
        // A crontab for busybox crond: it runs as a service; its job need not fire here.
        "/etc/crontabs/root": put("crontab", "* * * * * echo tick\n"),
      },
      entrypoint: ["/pidone"],
    }).then((base) => addSymlinks(base, IMAGE, Object.fromEntries(APPLETS.map((a) => [`/bin/${a}`, "busybox"])))),
    // No shell at all: a TOML service needs none; a --service needs /bin/sh.
    buildScratchImage({
      tag: NOSHELL_IMAGE,
      busybox: false,
      files: { "/usr/bin/busybox": "/bin/busybox", "/cfg/noshell.toml": put("noshell.toml", NOSHELL_TOML) },
      entrypoint: ["/pidone"],
    }),
  ]);
}

// ---------------------------------------------------------------- the Debian image

const DEBIAN_SUITE = "bookworm";
// mmdebstrap's hooks run with the new root as $1. The keys are made once, with the cached
// base: host keys for sshd, and a key for root to log in with.
const MMDEBSTRAP_ARGS = [
  "--variant=apt",
  "--include=openssh-server,openssh-client,cron",
  // A throwaway tree: no fsync per file, no docs, manuals or translations.
  "--dpkgopt=force-unsafe-io",
  ...["man", "locale", "doc", "info"].map((d) => `--dpkgopt=path-exclude=/usr/share/${d}/*`),
  '--customize-hook=chroot "$1" ssh-keygen -A',
  '--customize-hook=mkdir -p -m 700 "$1/root/.ssh" && chroot "$1" ssh-keygen -q -t ed25519 -N "" -f /root/.ssh/id_ed25519' +
    ' && cp "$1/root/.ssh/id_ed25519.pub" "$1/root/.ssh/authorized_keys"',
  DEBIAN_SUITE,
];
const DEBIAN_BASE = `pidone-test-debian-sshd:${createHash("sha256").update(JSON.stringify(MMDEBSTRAP_ARGS)).digest("hex").slice(0, 12)}`;

// Cron jobs write to PID 1's stdout (the container's log) so the test sees them fire without
// polling inside the container. @reboot is cron's own way to run a job at once: Debian's
// cron runs it when /run/crond.reboot does not exist yet, as in a new container.
const CRON_D = [
  "@reboot root echo cron-reboot-fired > /proc/1/fd/1",
  "* * * * * root echo cron-minute-fired > /proc/1/fd/1",
  "",
].join("\n");

const ROOT_KEY = "/root/.ssh/id_ed25519";
const SSH = ["ssh", "-i", ROOT_KEY, "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"];

async function ensureMmdebstrap(): Promise<void> {
  if ((await run(["sh", "-c", "command -v mmdebstrap"])).code === 0) return;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  let r = await run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "mmdebstrap"], { env, timeoutMs: 300_000 });
  if (r.code !== 0) {
    await run(["apt-get", "update", "-q"], { env, timeoutMs: 300_000 });
    r = await run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "mmdebstrap"], { env, timeoutMs: 300_000 });
  }
  if (r.code !== 0) throw new Error(`mmdebstrap is missing and apt-get could not install it:\n${show(r)}`);
}

/** The cached Debian base, made with mmdebstrap when this machine has not got it yet. */
async function ensureDebianBase(): Promise<void> {
  if ((await docker(["image", "inspect", DEBIAN_BASE])).code === 0) return;
  await ensureMmdebstrap();
  const dir = scratchDir("pidone-mmdebstrap-");
  const tarball = join(dir, "rootfs.tar");
  const made = await run(["mmdebstrap", "--quiet", ...MMDEBSTRAP_ARGS, tarball], {
    env: { HOME: process.env.HOME ?? "/root", TMPDIR: process.env.TMPDIR },
    timeoutMs: 900_000,
  });
  if (made.code !== 0) throw new Error(`mmdebstrap failed:\n${show(made)}`);
  const imported = await docker(["import", tarball, DEBIAN_BASE], 300_000);
  rmSync(tarball, { force: true });
  if (imported.code !== 0) throw new Error(`docker import failed:\n${show(imported)}`);
  // Bases made by an earlier version of these steps are of no more use.
  const [repo] = DEBIAN_BASE.split(":");
  const old = (await docker(["images", "--format", "{{.Repository}}:{{.Tag}}", repo!])).stdout.split("\n").filter((t) => t && t !== DEBIAN_BASE);
  if (old.length) await docker(["rmi", ...old]);
}

/** The base plus this build's /pidone (and nothing else of it: the image has glibc). */
async function buildDebianImage(): Promise<void> {
  await ensureDebianBase();
  const ctx = scratchDir("pidone-debian-img-");
  const root = join(ctx, "rootfs");
  mkdirSync(join(root, "run", "sshd"), { recursive: true });
  chmodSync(join(root, "run", "sshd"), 0o755); // sshd refuses a privilege-separation dir others can write
  mkdirSync(join(root, "etc", "cron.d"), { recursive: true });
  writeFileSync(join(root, "etc", "cron.d", "pidone-test"), CRON_D);
  chmodSync(join(root, "etc", "cron.d", "pidone-test"), 0o644); // cron skips a group- or world-writable file
  copyFileSync(PIDONE, join(root, "pidone"));
  chmodSync(join(root, "pidone"), 0o755);
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${DEBIAN_BASE}\nCOPY rootfs/ /\nENTRYPOINT ["/pidone"]\n`);
  const r = await run(["docker", "build", "-q", "--network", "none", "-t", DEBIAN_IMAGE, ctx], {
    timeoutMs: 300_000,
    env: { DOCKER_BUILDKIT: "0" },
  });
  if (r.code !== 0) throw new Error(`docker build ${DEBIAN_IMAGE} failed:\n${show(r)}`);
}

// ---------------------------------------------------------------- set-up

interface Attached {
  name: string;
  p: Started;
  startedAt: number;
}

let scratchImages: Promise<void> = Promise.resolve();
let debianImage: Promise<void> = Promise.resolve();
let sshdAndCron: Promise<Attached> = Promise.reject(new Error("no Docker"));
sshdAndCron.catch(() => {});

beforeAll(() => {
  if (!DOCKER) return;
  // Everything starts at once; each describe awaits its own. The sshd + cron container runs
  // from the moment its image exists, so cron's once-a-minute job has had most of its
  // minute by the time the scratch tests are done.
  scratchImages = buildImages();
  debianImage = buildDebianImage();
  sshdAndCron = debianImage.then(() => {
    const { name, p } = attach("sshd-cron", [DEBIAN_IMAGE, "--service", "sshd: /usr/sbin/sshd -D -e", "--service", "cron: /usr/sbin/cron -f"]);
    return { name, p, startedAt: performance.now() };
  });
  for (const pending of [scratchImages, debianImage, sshdAndCron]) pending.catch(() => {});
});

afterAll(async () => {
  if (!DOCKER) return;
  await Promise.allSettled([scratchImages, debianImage, sshdAndCron]);
  for (const n of containers) await docker(["rm", "-f", n], 30_000);
  await docker(["rmi", "-f", IMAGE, `${IMAGE}-base`, NOSHELL_IMAGE, DEBIAN_IMAGE], 60_000);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 120_000);

// ---------------------------------------------------------------- FROM scratch

needs(DOCKER, DOCKER_ENGINE)("services in a FROM scratch image, --network none", () => {
  beforeAll(async () => {
    await scratchImages;
  }, 300_000);

  test("ordering and readiness: a oneshot, then http (httpd), tcp (nc), file and exec probes gate the dependent", async () => {
    const name = containerName("order");
    const r = await docker(["run", "--name", name, "--network", "none", IMAGE, "-c", "/cfg/order.toml"], 120_000);
    expect(r.code, show(r)).toBe(0); // client (critical) exited 0: the container ends with its status
    expect(linesOf(r.stdout, "client"), show(r)).toEqual(["hello-from-httpd", "pong", "client-done"]);
    const ev = eventsOf(r.stdout);
    const setupDone = eventIndex(ev, "setup", /^done/);
    expect(setupDone, show(r)).toBeGreaterThanOrEqual(0);
    expect(eventIndex(ev, "web", /^started/)).toBeGreaterThan(setupDone);
    const clientStarted = eventIndex(ev, "client", /^started/);
    for (const dep of ["web", "pong", "slowfile", "slowexec"]) {
      const ready = eventIndex(ev, dep, /^ready/);
      expect(ready, `${dep} ready\n${show(r)}`).toBeGreaterThanOrEqual(0);
      expect(ready, `${dep} ready before client starts\n${show(r)}`).toBeLessThan(clientStarted);
    }
  }, 150_000);

  test("a failed oneshot fails the container with its status; what comes after it never starts", async () => {
    const name = containerName("oneshot");
    const r = await docker(["run", "--name", name, "--network", "none", IMAGE, "-c", "/cfg/oneshot.toml"], 120_000);
    expect(r.code, show(r)).toBe(7);
    expect(linesOf(r.stdout, "migrate")).toEqual(["migrating"]);
    expect(eventIndex(eventsOf(r.stdout), "app", /^started/), show(r)).toBe(-1);
  }, 150_000);

  test("restart on failure with a growing backoff (1 s, 2 s, 4 s), then the critical end's status is the container's", async () => {
    const name = containerName("restart");
    const r = await docker(["run", "--name", name, "--network", "none", IMAGE, "-c", "/cfg/restart.toml"], 120_000);
    expect(r.code, show(r)).toBe(5);
    const objs = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const crash = objs.filter((o) => o.service === "crash");
    expect(crash.filter((o) => o.line === "run").length, show(r)).toBe(4);
    const delays = crash.flatMap((o) => (String(o.message ?? o.event).startsWith("restarting in") ? [String(o.message ?? o.event)] : []));
    expect(delays).toEqual(["restarting in 1 s", "restarting in 2 s", "restarting in 4 s"]);
    expect(crash.some((o) => String(o.message ?? o.event).startsWith("gave up"))).toBe(true);
    // The starts themselves are spaced at least by the announced delays.
    const starts = crash.filter((o) => String(o.message ?? o.event).startsWith("started")).map((o) => Date.parse(String(o.ts)));
    expect(starts.length).toBe(4);
    const gaps = starts.slice(1).map((t, i) => (t - starts[i]!) / 1000);
    expect(gaps[0]!).toBeGreaterThanOrEqual(0.95);
    expect(gaps[1]!).toBeGreaterThanOrEqual(1.95);
    expect(gaps[2]!).toBeGreaterThanOrEqual(3.95);
  }, 150_000);

  test("a critical exit propagates its status through docker run; the other service's TERM handler runs first", async () => {
    const name = containerName("critical");
    const r = await docker(["run", "--name", name, "--network", "none", IMAGE, "-c", "/cfg/critical.toml"], 120_000);
    expect(r.code, show(r)).toBe(42);
    expect(linesOf(r.stdout, "main")).toEqual(["main-failing"]);
    expect(linesOf(r.stdout, "side"), show(r)).toEqual(["side-bye"]);
  }, 150_000);

  test("docker stop finishes well inside 10 s, every TERM handler ran in reverse order, exit 0, nothing written to disk", async () => {
    const { name, p } = attach("stop", [IMAGE, "-c", "/cfg/stop.toml"]);
    await waitOutput(
      p,
      (out) => eventIndex(eventsOf(out), "edge", /^ready/) >= 0 && eventIndex(eventsOf(out), "cron", /^ready/) >= 0 && linesOf(out, "edge").includes("edge-up"),
      60_000,
      "every service to be up",
    );
    const { r, seconds } = await timedStop(name);
    expect(r.code, show(r)).toBe(0);
    expect(await p.exit(30_000), showStarted(p)).toBe(0);
    expect(seconds, showStarted(p)).toBeLessThan(8);
    expect(await exitCodeOf(name)).toBe(0);
    const out = p.stdout();
    for (const s of ["db", "app", "edge"]) expect(linesOf(out, s), showStarted(p)).toEqual([`${s}-up`, `${s}-bye`]);
    const ev = eventsOf(out);
    // Reverse dependency order: edge, then web, then app, then db; cron (no dependency) with edge.
    const exited = (s: string) => eventIndex(ev, s, /^exited/);
    for (const s of ["edge", "web", "app", "db", "cron"]) expect(exited(s), `${s} exited\n${showStarted(p)}`).toBeGreaterThanOrEqual(0);
    expect(exited("edge")).toBeLessThan(exited("web"));
    expect(exited("web")).toBeLessThan(exited("app"));
    expect(exited("app")).toBeLessThan(exited("db"));
    expect(eventIndex(ev, "app", /^stopping/)).toBeGreaterThan(exited("web"));
    // The real daemons have no handler of their own: SIGTERM ended them, as asked.
    expect(ev.find((e) => e.service === "web" && e.message.startsWith("exited"))?.message).toMatch(/signal SIGTERM|status 0/);
    expect(ev.find((e) => e.service === "cron" && e.message.startsWith("exited"))?.message).toMatch(/signal SIGTERM|status 0/);
    expect(ev.some((e) => e.message.startsWith("killed"))).toBe(false);
    // Neither pidone nor these services wrote to the container's file system.
    const diff = await docker(["diff", name]);
    expect(diff.code, show(diff)).toBe(0);
    expect(diff.stdout.trim()).toBe("");
  }, 150_000);

  test("per-service signals: docker kill -s HUP / USR1 reach exactly the services whose `signals` include them", async () => {
    const { name, p } = attach("signals", [IMAGE, "-c", "/cfg/signals.toml"]);
    await waitOutput(p, (out) => ["a", "b", "c"].every((s) => linesOf(out, s).includes(`${s}-up`)), 60_000, "a, b and c to be up");
    expect((await docker(["kill", "-s", "HUP", name])).code).toBe(0);
    await waitOutput(p, (out) => linesOf(out, "a").includes("a-hup") && linesOf(out, "c").includes("c-hup"), 30_000, "a and c to get HUP");
    expect((await docker(["kill", "-s", "USR1", name])).code).toBe(0);
    await waitOutput(p, (out) => linesOf(out, "b").includes("b-usr1") && linesOf(out, "c").includes("c-usr1"), 30_000, "b and c to get USR1");
    const { r } = await timedStop(name);
    expect(r.code, show(r)).toBe(0);
    expect(await p.exit(30_000), showStarted(p)).toBe(0);
    const out = p.stdout();
    expect(linesOf(out, "a")).toEqual(["a-up", "a-hup", "a-bye"]);
    expect(linesOf(out, "b")).toEqual(["b-up", "b-usr1", "b-bye"]);
    expect(linesOf(out, "c")).toEqual(["c-up", "c-hup", "c-usr1", "c-bye"]);
  }, 150_000);

  test("prefixed logs: two services printing 100,000 lines at once, every line intact and in order (attached stdout)", async () => {
    const { name, p } = attach("flood", [IMAGE, "-c", "/cfg/flood.toml"]);
    await waitOutput(
      p,
      (out) => out.includes("| one-line-100000\n") && out.includes("| two-line-100000\n"),
      180_000,
      "both floods to come through",
    );
    const { r } = await timedStop(name);
    expect(r.code, show(r)).toBe(0);
    expect(await p.exit(30_000)).toBe(0);
    const out = p.stdout();
    for (const s of ["one", "two"]) {
      const lines = linesOf(out, s);
      expect(lines.length, `${s}: ${lines.length} lines`).toBe(100_000);
      const bad = lines.findIndex((l, i) => l !== `${s}-line-${i + 1}`);
      expect(bad, `${s} line ${bad + 1}: ${JSON.stringify(lines[bad])}`).toBe(-1);
    }
    // Nothing but whole prefixed lines: no torn or interleaved line anywhere.
    const stray = out.split("\n").filter((l) => l !== "" && !/^(one|two|pidone) *\| /.test(l));
    expect(stray.slice(0, 5)).toEqual([]);
    expect(p.stderr()).not.toMatch(/lost/);
  }, 240_000);

  test("JSON logs: two services printing 100,000 lines at once, one object per line (docker logs)", async () => {
    const name = containerName("flood-json");
    const started = await docker(["run", "-d", "--name", name, "--network", "none", IMAGE, "-c", "/cfg/flood-json.toml"]);
    expect(started.code, show(started)).toBe(0);
    // `docker logs -f` follows the log until the container ends.
    const logs = start(["docker", "logs", "-f", name]);
    await waitOutput(
      logs,
      (out) => out.includes('"line":"one-100000"}') && out.includes('"line":"two-100000"}') && out.includes('"line":"two-on-stderr"}'),
      180_000,
      "both floods in docker logs",
    );
    const { r } = await timedStop(name);
    expect(r.code, show(r)).toBe(0);
    expect(await logs.exit(60_000)).toBe(0);
    expect(await exitCodeOf(name)).toBe(0);
    const objs = logs
      .stdout()
      .split("\n")
      .filter(Boolean)
      .map((l, i) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`line ${i + 1} of docker logs is not JSON: ${JSON.stringify(l.slice(0, 200))}`);
        }
      });
    for (const s of ["one", "two"]) {
      const got = objs.filter((o) => o.service === s && o.stream === "stdout").map((o) => o.line);
      expect(got.length).toBe(100_000);
      const bad = got.findIndex((l, i) => l !== `${s}-${i + 1}`);
      expect(bad, `${s} line ${bad + 1}: ${JSON.stringify(got[bad])}`).toBe(-1);
    }
    expect(objs.filter((o) => o.stream === "stderr").map((o) => o.line)).toEqual(["two-on-stderr"]);
    for (const o of objs) expect(String(o.ts)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // pidone's own events are JSON lines too, the stop included.
    const events = objs.filter((o) => typeof o.event === "string").map((o) => `${o.service}: ${o.message ?? o.event}`);
    expect(events).toContain("one: ready");
    expect(events.some((e) => e.startsWith("pidone: stopping: received SIGTERM"))).toBe(true);
    expect(logs.stderr()).toBe("");
  }, 300_000);

  test("--check: exit 2 listing every problem of a broken TOML file and Procfile as FILE:LINE; exit 0 for a good one", async () => {
    const bad = await docker(["run", "--rm", "--network", "none", IMAGE, "--check", "-c", "/cfg/broken.toml"]);
    expect(bad.code, show(bad)).toBe(2);
    const f = "/cfg/broken.toml";
    const expectations: [string, RegExp][] = [
      ['grace = "soon"', /settings\.grace/],
      ['after = ["nope"]', /unknown service "nope"/],
      ['colour = "red"', /unknown key "colour"/],
      ['after = ["b"]', /cycle/],
      ['command = ["/usr/bin/not-here"]', /not-here.*not found/],
      ['user = "nobody-here"', /unknown user "nobody-here"/],
      ["restart = 3", /services\.d\.restart/],
    ];
    for (const [needle, message] of expectations) {
      const prefix = `${f}:${lineOf("broken.toml", needle)}: `;
      const line = bad.stderr.split("\n").find((l) => l.startsWith(prefix));
      expect(line, `a diagnostic at ${prefix}\n${show(bad)}`).toBeDefined();
      expect(line!).toMatch(message);
    }
    expect(bad.stdout).not.toContain("configuration OK");

    const proc = await docker(["run", "--rm", "--network", "none", IMAGE, "--check", "-c", "/cfg/Procfile.broken"]);
    expect(proc.code, show(proc)).toBe(2);
    for (const needle of ["web httpd -f", "bad name!: true"]) {
      expect(proc.stderr, show(proc)).toContain(`/cfg/Procfile.broken:${lineOf("Procfile.broken", needle)}: `);
    }
    expect(proc.stderr).not.toContain(`/cfg/Procfile.broken:${lineOf("Procfile.broken", "ok: sleep 1")}:`);

    const good = await docker(["run", "--rm", "--network", "none", IMAGE, "--check", "-c", "/cfg/stop.toml"]);
    expect(good.code, show(good)).toBe(0);
    // A broken file refuses to run at all, with the same code.
    const refused = await docker(["run", "--rm", "--network", "none", IMAGE, "-c", "/cfg/broken.toml"]);
    expect(refused.code, show(refused)).toBe(2);
  }, 150_000);

  test("--read-only root and --user 65534 (no `user` key): probes, services and the verdict all work", async () => {
    const name = containerName("readonly");
    const r = await docker(
      ["run", "--name", name, "--network", "none", "--read-only", "--user", "65534:65534", IMAGE, "-c", "/cfg/readonly.toml"],
      120_000,
    );
    expect(r.code, show(r)).toBe(0);
    expect(linesOf(r.stdout, "client"), show(r)).toEqual(["hello-from-www", "pong", "uid=65534", "root-read-only"]);
    const ev = eventsOf(r.stdout);
    expect(eventIndex(ev, "web", /^ready/)).toBeLessThan(eventIndex(ev, "client", /^started/));
    expect(eventIndex(ev, "pong", /^ready/)).toBeLessThan(eventIndex(ev, "client", /^started/));
  }, 150_000);

  test("no shell in the image: a TOML service runs; a --service (sh -c) is refused with a clear error", async () => {
    const ok = await docker(["run", "--rm", "--network", "none", NOSHELL_IMAGE, "-c", "/cfg/noshell.toml"]);
    expect(ok.code, show(ok)).toBe(0);
    expect(linesOf(ok.stdout, "hello")).toEqual(["hello without a shell"]);
    const sh = await docker(["run", "--rm", "--network", "none", NOSHELL_IMAGE, "--service", "a: echo hi"]);
    expect(sh.code, show(sh)).toBe(2);
    expect(sh.stderr).toContain("/bin/sh not found");
    expect(linesOf(sh.stdout, "a")).toEqual([]);
  }, 150_000);
});

// ---------------------------------------------------------------- sshd + cron from Debian

needs(DOCKER, DOCKER_ENGINE)("the motivating scenario: sshd and cron in a Debian image, no TTY, --network none", () => {
  // One container (started with the image, see the top beforeAll) runs for the whole block:
  // `pidone --service 'sshd: /usr/sbin/sshd -D -e' --service 'cron: /usr/sbin/cron -f'`.
  let main: Attached | null = null;
  const mainContainer = () => {
    if (!main) throw new Error("the sshd + cron container did not start");
    return main;
  };

  beforeAll(async () => {
    main = await sshdAndCron;
  }, 900_000);

  test("sshd and cron start under pidone; an ssh login to 127.0.0.1 with the generated key succeeds", async () => {
    const { name, p } = mainContainer();
    await waitOutput(
      p,
      (out, err) => ["sshd", "cron"].every((s) => eventIndex(eventsOf(out), s, /^ready/) >= 0) && /sshd\s*\| Server listening on 0\.0\.0\.0 port 22/.test(err),
      60_000,
      "sshd and cron to start, sshd to listen",
    );
    const login = await docker(["exec", name, ...SSH, "root@127.0.0.1", "echo login-ok $(id -un) $(tty || true)"], 60_000);
    expect(login.code, show(login)).toBe(0);
    expect(login.stdout).toMatch(/^login-ok root /);
    await waitOutput(p, (_, err) => /sshd\s*\| Accepted publickey for root from 127\.0\.0\.1/.test(err), 30_000, "sshd to log the login");
    // No TTY: pidone's stdin is /dev/null and its stdout a pipe, as on Kubernetes.
    const fds = await docker(["exec", name, "readlink", "/proc/1/fd/0", "/proc/1/fd/1"]);
    expect(fds.stdout.split("\n")[0]).toBe("/dev/null");
    expect(fds.stdout.split("\n")[1]).toMatch(/^pipe:/);
  }, 120_000);

  test("cron runs jobs: an @reboot job fires at once", async () => {
    const { p } = mainContainer();
    await waitOutput(p, (out) => out.includes("cron-reboot-fired"), 60_000, "the @reboot job");
  }, 90_000);

  test("sshd without -D, adopted through --pidfile /run/sshd.pid: runs on after its parent exits, ssh works, docker stop ends it", async () => {
    await debianImage;
    const { name, p } = attach("sshd-pidfile", [DEBIAN_IMAGE, "-v", "--pidfile", "/run/sshd.pid", "--", "/usr/sbin/sshd"]);
    const adopted = /Adopted pid (\d+) from \/run\/sshd\.pid/;
    const all = () => p.stdout() + p.stderr();
    await waitOutput(p, () => adopted.test(all()), 60_000, "pidone to adopt sshd");
    expect(all(), showStarted(p)).toMatch(/Main child exited normally \(with status '0'\)/);
    const pid = Number(adopted.exec(all())![1]);
    // The daemon is now pidone's own child and the container is still up.
    const stat = await docker(["exec", name, "ps", "-o", "ppid=,args=", "-p", String(pid)]);
    expect(stat.stdout.trim(), show(stat)).toMatch(/^1 sshd: \/usr\/sbin\/sshd/);
    expect((await docker(["exec", name, "cat", "/run/sshd.pid"])).stdout.trim()).toBe(String(pid));
    expect(await isRunning(name)).toBe(true);
    const login = await docker(["exec", name, ...SSH, "root@127.0.0.1", "echo login-ok"], 60_000);
    expect(login.code, show(login)).toBe(0);
    expect(login.stdout.trim()).toBe("login-ok");
    expect(await isRunning(name)).toBe(true);
    const { r, seconds } = await timedStop(name);
    expect(r.code, show(r)).toBe(0);
    expect(await p.exit(30_000), showStarted(p)).toBe(0);
    expect(seconds).toBeLessThan(8);
    expect(await exitCodeOf(name)).toBe(0);
  }, 150_000);

  test("cron's every-minute job fires, the container keeps running, and docker stop ends it with exit 0", async () => {
    const { name, p, startedAt } = mainContainer();
    // Cron fires at the top of each minute: at most ~60 s after the start, plus slack.
    const left = 90_000 - (performance.now() - startedAt);
    await waitOutput(p, (out) => out.includes("cron-minute-fired"), Math.max(left, 5_000), "the every-minute job");
    expect(await isRunning(name)).toBe(true);
    expect(eventIndex(eventsOf(p.stdout()), "sshd", /^exited/), showStarted(p)).toBe(-1);
    expect(eventIndex(eventsOf(p.stdout()), "cron", /^exited/), showStarted(p)).toBe(-1);
    const { r, seconds } = await timedStop(name);
    expect(r.code, show(r)).toBe(0);
    expect(await p.exit(30_000), showStarted(p)).toBe(0);
    expect(seconds).toBeLessThan(8);
    expect(await exitCodeOf(name)).toBe(0);
    const ev = eventsOf(p.stdout());
    for (const s of ["sshd", "cron"]) expect(eventIndex(ev, s, /^exited/), showStarted(p)).toBeGreaterThanOrEqual(0);
    expect(ev.some((e) => e.message.startsWith("killed"))).toBe(false);
  }, 150_000);
});
