// The control socket, server side: pidone as PID 1 of a PID namespace, asked by its own
// client (`pidone --ctl`) and, for what a client never sends, by raw connections.
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CONTROL } from "../src/native/protocol.ts";
import { peerCredentials } from "../src/sys/libc.ts";
import { AS_PID1, PIDONE, needs, pid1Of, run, start, tempDir, waitFor, type Started } from "./helpers.ts";
import { NATIVE, SINGLE_FILE, contextSwitches } from "./fixtures/native-lib.ts";
import { prometheusParse } from "./fixtures/prometheus.ts";

/** `pidone --ctl --control PATH ARGS...`: its exit code and output. */
function ctl(path: string, ...args: string[]) {
  return run([PIDONE, "--ctl", "--control", path, ...args]);
}

/** One raw request: whatever bytes, and the answer as sent (null: closed without one). */
async function raw(path: string, bytes: Uint8Array | string, opts: { hold?: boolean } = {}): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  let got = "";
  await Bun.connect({
    unix: path,
    socket: {
      open(s) {
        if (bytes.length) s.write(bytes);
        if (!opts.hold) s.flush();
      },
      data(_s, d) {
        got += Buffer.from(d).toString();
      },
      close() {
        resolve(got);
      },
      error() {
        resolve(got);
      },
    },
  });
  return promise;
}

function request(...words: string[]): Buffer {
  return Buffer.concat([Buffer.from(`${CONTROL.HEADER} ${words.length}\n`), ...words.map((w) => Buffer.from(`${w}\0`))]);
}

interface Running {
  p: Started;
  pid1: number;
  sock: string;
  dir: string;
}

/** pidone as PID 1 with these services (TOML) and its socket in a fresh directory. */
async function services(toml: string, extra: string[] = []): Promise<Running> {
  const dir = tempDir();
  const file = join(dir, "services.toml");
  writeFileSync(file, toml);
  const sock = join(dir, "ctl", "control.sock");
  const p = start([...AS_PID1, PIDONE, "--control", sock, ...extra, "-c", file]);
  const pid1 = await pid1Of(p.proc.pid);
  await waitFor(() => existsSync(sock), 10_000, "the control socket");
  return { p, pid1, sock, dir };
}

async function stop(r: Running): Promise<number> {
  process.kill(r.pid1, "SIGTERM");
  return r.p.exit();
}

const TWO = `
[services.web]
command = "sleep 1000"
[services.worker]
command = "sleep 1000"
restart = "always"
`;

describe("the control socket", () => {
  test("status: one aligned row per service; --json: the documented object", async () => {
    const r = await services(TWO);
    try {
      await waitFor(async () => (await ctl(r.sock, "status")).stdout.includes("running"), 10_000, "running");
      const t = await ctl(r.sock, "status");
      expect(t.code).toBe(0);
      const lines = t.stdout.trimEnd().split("\n");
      expect(lines[1]).toMatch(/^NAME\s+STATE\s+PID\s+UPTIME\s+RESTARTS\s+LAST EXIT\s+READY\s+HEALTH\s+STATUS$/);
      expect(lines[2]).toMatch(/^web\s+running\s+\d+\s+\d+s\s+0\s+-/);
      expect(lines[3]).toMatch(/^worker\s+running\s+\d+/);
      // Columns line up: each header starts where its cells do.
      expect(lines[2]!.indexOf(lines[2]!.split(/\s+/)[2]!)).toBe(lines[1]!.indexOf("PID"));
      const j = await ctl(r.sock, "status", "--json");
      const s = JSON.parse(j.stdout);
      expect(s.version).toBe(1);
      expect(s.pidone).toMatchObject({ pid: 1, mode: "services", phase: "running" });
      expect(s.services.map((x: { name: string }) => x.name)).toEqual(["web", "worker"]);
      expect(Object.keys(s.services[0]).sort()).toEqual(
        ["critical", "health", "held", "last_exit", "name", "oneshot", "pid", "readiness", "restart_in_seconds", "restarts", "started_at", "state", "status_text", "uptime_seconds", "waiting_for"].sort(),
      );
      const one = JSON.parse((await ctl(r.sock, "status", "worker", "--json")).stdout);
      expect(one.services.map((x: { name: string }) => x.name)).toEqual(["worker"]);
      const unknown = await ctl(r.sock, "status", "nope");
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("no service named nope (services: web, worker)");
    } finally {
      expect(await stop(r)).toBe(0);
    }
  });

  test("restart: a new pid, the other service untouched, not counted as a restart", async () => {
    const r = await services(TWO);
    try {
      const pids = async () => {
        const s = JSON.parse((await ctl(r.sock, "status", "--json")).stdout);
        return Object.fromEntries(s.services.map((x: { name: string; pid: number; restarts: number }) => [x.name, x]));
      };
      const before = await waitFor(async () => {
        const x = await pids();
        return x.web.pid && x.worker.pid ? x : null;
      });
      const a = await ctl(r.sock, "restart", "worker");
      expect(a.code).toBe(0);
      expect(a.stdout).toMatch(/^worker: started \(pid \d+\)$/m);
      const after = await pids();
      expect(after.worker.pid).not.toBe(before!.worker.pid);
      expect(after.worker.restarts).toBe(0);
      expect(after.web.pid).toBe(before!.web.pid);
    } finally {
      expect(await stop(r)).toBe(0);
    }
  });

  test("stop holds a service: no restart, no fail-fast, the container runs on (even with every service stopped) until start", async () => {
    const r = await services(TWO);
    try {
      await waitFor(async () => (await ctl(r.sock, "health")).code === 0, 10_000, "healthy");
      for (const name of ["worker", "web"]) {
        const s = await ctl(r.sock, "stop", name);
        expect(s.code).toBe(0);
        expect(s.stdout).toBe(`${name}: stopped\n`);
      }
      // worker has restart = "always", web is critical: neither counts.
      await Bun.sleep(1500);
      const st = JSON.parse((await ctl(r.sock, "status", "--json")).stdout);
      expect(st.services.map((x: { state: string; held: boolean; pid: number | null }) => [x.state, x.held, x.pid])).toEqual([
        ["stopped", true, null],
        ["stopped", true, null],
      ]);
      expect((await ctl(r.sock, "status")).stdout).toContain("stopped (operator)");
      const h = await ctl(r.sock, "health");
      expect(h.code).toBe(1);
      expect(h.stderr).toContain("web: stopped by the operator");
      expect((await ctl(r.sock, "stop", "web")).code).toBe(1); // already stopped
      const s = await ctl(r.sock, "start", "web");
      expect(s.code).toBe(0);
      expect(s.stdout).toMatch(/^web: started \(pid \d+\)$/m);
      expect((await ctl(r.sock, "start", "web")).stderr).toContain("web is already running");
    } finally {
      // A service stopped by the operator is no failure of the container's stop.
      expect(await stop(r)).toBe(0);
    }
  });

  test("start waits for `after` dependencies that are not ready, and shows as waiting", async () => {
    const r = await services(`
[services.db]
command = "sleep 1000"
[services.app]
command = "sleep 1000"
after = ["db"]
`);
    try {
      await waitFor(async () => (await ctl(r.sock, "health")).code === 0, 10_000, "healthy");
      expect((await ctl(r.sock, "stop", "db")).code).toBe(0);
      expect((await ctl(r.sock, "stop", "app")).code).toBe(0);
      // Dependents are not touched: app's start waits for db.
      const a = await ctl(r.sock, "start", "app");
      expect(a.stdout).toBe("app: waiting for db\n");
      expect((await ctl(r.sock, "status")).stdout).toMatch(/^app\s+waiting for db/m);
      expect((await ctl(r.sock, "start", "db")).code).toBe(0);
      await waitFor(async () => (await ctl(r.sock, "status")).stdout.match(/^app\s+running/m), 10_000, "app running");
    } finally {
      expect(await stop(r)).toBe(0);
    }
  });

  test("signal goes to the service's process group; bad words are usage errors (2)", async () => {
    const r = await services(`
[services.trap]
command = "trap 'echo got-usr1' USR1; while :; do sleep 0.1; done"
shell = true
`);
    try {
      await waitFor(async () => (await ctl(r.sock, "status")).stdout.match(/^trap\s+running/m), 10_000, "running");
      await Bun.sleep(300); // the trap is set once the shell has read it
      const s = await ctl(r.sock, "signal", "trap", "USR1");
      expect(s.code).toBe(0);
      await r.p.waitStdout("got-usr1");
      expect((await ctl(r.sock, "signal", "trap", "NOPE")).code).toBe(2);
      expect((await ctl(r.sock, "signal", "trap")).code).toBe(2);
      expect((await ctl(r.sock, "frobnicate")).code).toBe(2);
      expect((await ctl(r.sock, "signal", "ghost", "TERM")).code).toBe(1);
    } finally {
      expect(await stop(r)).toBe(0);
    }
  });

  test("what clients never send: oversized, malformed and silent requests cost nothing; 100 at once are all answered", async () => {
    const r = await services(TWO);
    try {
      expect(await raw(r.sock, Buffer.alloc(CONTROL.REQUEST_MAX + 100, 0x41))).toMatch(/^2\n.*longer than/);
      expect(await raw(r.sock, "GET / HTTP/1.0\r\n\r\n")).toMatch(/^2\npidone: not a control request/);
      expect(await raw(r.sock, `${CONTROL.HEADER} 1\nstatus\0extra`)).toMatch(/^2\n/);
      const t0 = performance.now();
      expect(await raw(r.sock, "", { hold: true })).toMatch(/^1\n.*no complete request/);
      expect(performance.now() - t0).toBeGreaterThan(CONTROL.REQUEST_TIMEOUT_MS - 200);
      const answers = await Promise.all(Array.from({ length: 100 }, () => raw(r.sock, request("health"))));
      expect(answers.filter((a) => a === "0\nhealthy\n").length).toBe(100);
      expect((await ctl(r.sock, "health")).code).toBe(0);
    } finally {
      expect(await stop(r)).toBe(0);
    }
  }, 60_000);

  test("only root and pidone's uid: the socket is 0600, and the peer's credentials are checked on every connection", async () => {
    const r = await services(TWO);
    try {
      expect(statSync(r.sock).mode & 0o777).toBe(0o600);
      // As if the directory and socket were opened up (a volume): the credentials still refuse.
      chmodSync(join(r.dir, "ctl"), 0o755);
      chmodSync(r.sock, 0o666);
      chmodSync(r.dir, 0o755);
      const other = await run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PIDONE, "--ctl", "--control", r.sock, "status"]);
      expect(other.code).toBe(1);
      expect(other.stderr).toContain("uid 65534 may not use this socket");
      expect((await ctl(r.sock, "status")).code).toBe(0);
    } finally {
      expect(await stop(r)).toBe(0);
    }
  });

  test("a socket file left by an earlier run is replaced; pidone removes its socket when it exits", async () => {
    const dir = tempDir();
    const sock = join(dir, "ctl", "control.sock");
    // An earlier pidone, killed: its socket file stays.
    const first = start([...AS_PID1, PIDONE, "--control", sock, "--service", "a: sleep 1000"]);
    const pid1 = await pid1Of(first.proc.pid);
    await waitFor(() => existsSync(sock));
    process.kill(pid1, "SIGKILL");
    await first.exit();
    expect(existsSync(sock)).toBe(true);
    const second = start([...AS_PID1, PIDONE, "--control", sock, "--service", "a: sleep 1000"]);
    const pid = await pid1Of(second.proc.pid);
    await waitFor(async () => (await ctl(sock, "status")).code === 0, 10_000, "an answer at the old path");
    expect(second.stdout() + second.stderr()).not.toContain("no control socket");
    process.kill(pid, "SIGTERM");
    expect(await second.exit()).toBe(0);
    expect(existsSync(sock)).toBe(false);
    const none = await ctl(sock, "status");
    expect(none.code).toBe(CONTROL.NO_ANSWER);
  });

  test("a path where another pidone answers is left to it: one line, and pidone runs on without control", async () => {
    const r = await services(TWO);
    try {
      const second = start([...AS_PID1, PIDONE, "--control", r.sock, "--service", "a: echo up; exec sleep 1000"]);
      const pid = await pid1Of(second.proc.pid);
      await second.waitStdout("up");
      expect(second.stdout()).toContain(`no control socket: another process answers at ${r.sock}`);
      process.kill(pid, "SIGTERM");
      expect(await second.exit()).toBe(0);
      expect((await ctl(r.sock, "status")).code).toBe(0); // the first one's, untouched
    } finally {
      expect(await stop(r)).toBe(0);
    }
  });

  test("--control none, and PIDONE_CONTROL, choose; a bad path is a usage error", async () => {
    const dir = tempDir();
    const sock = join(dir, "env.sock");
    const p = start([...AS_PID1, PIDONE, "--service", "a: sleep 1000"], { env: { PIDONE_CONTROL: sock } });
    const pid = await pid1Of(p.proc.pid);
    await waitFor(() => existsSync(sock));
    expect((await run([PIDONE, "--ctl", "status"], { env: { PIDONE_CONTROL: sock } })).code).toBe(0);
    process.kill(pid, "SIGTERM");
    expect(await p.exit()).toBe(0);
    const bad = await run([PIDONE, "--control", "relative.sock", "--service", "a: true"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("Not a valid option for --control: relative.sock");
  });
});

let port = 30000 + (process.pid % 5000);

/** A GET from the test process (its own fetch, not pidone): status and body. */
async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

describe("the HTTP endpoint, served by services mode", () => {
  test("/healthz, /readyz, /status and /metrics follow the services; a stop signal turns /readyz to 503 at once", async () => {
    const http = `127.0.0.1:${++port}`;
    const r = await services(TWO, ["--http", http, "--grace", "10", "--stop-delay", "3"]);
    try {
      await waitFor(async () => (await get(`http://${http}/healthz`)).status === 200, 10_000, "/healthz 200");
      expect(await get(`http://${http}/readyz`)).toEqual({ status: 200, body: "ok\n" });
      const st = JSON.parse((await get(`http://${http}/status`)).body);
      expect(st.services.map((x: { name: string; state: string }) => [x.name, x.state])).toEqual([
        ["web", "running"],
        ["worker", "running"],
      ]);
      expect((await ctl(r.sock, "restart", "worker")).code).toBe(0);
      expect((await ctl(r.sock, "stop", "web")).code).toBe(0);
      const sick = await get(`http://${http}/healthz`);
      expect(sick.status).toBe(503);
      expect(sick.body).toContain("web: stopped by the operator");
      const families = await prometheusParse((await get(`http://${http}/metrics`)).body);
      const value = (name: string, service: string) =>
        families.find((f) => f.name === name)!.samples.find(([, l]) => l.service === service)![2];
      expect(value("pidone_service_up", "web")).toBe(0);
      expect(value("pidone_service_up", "worker")).toBe(1);
      expect(value("pidone_service_last_exit_code", "web")).toBe(143);
      expect(value("pidone_service_restarts", "worker")).toBe(0); // the operator's restart does not count
      expect(families.find((f) => f.name === "pidone_reaped")!.samples[0]![2]).toBeGreaterThanOrEqual(2);
      expect((await ctl(r.sock, "start", "web")).code).toBe(0);
      await waitFor(async () => (await get(`http://${http}/healthz`)).status === 200, 10_000, "/healthz 200 again");
      // The stop delay holds the stop; /readyz says 503 from the first signal on.
      process.kill(r.pid1, "SIGTERM");
      await waitFor(async () => (await get(`http://${http}/readyz`)).status === 503, 2_000, "/readyz 503");
      expect((await get(`http://${http}/readyz`)).body).toContain("pidone is stopping");
      expect(await r.p.exit()).toBe(0);
    } finally {
      r.p.proc.kill("SIGKILL");
    }
  });
});

describe("tini's mode and --pause with --control", () => {
  test("status and health answer for the main child; the socket goes with pidone; its exit code is kept", async () => {
    const dir = tempDir();
    const sock = join(dir, "t.sock");
    const p = start([...AS_PID1, PIDONE, "--control", sock, "--", "sh", "-c", "sleep 2; exit 7"]);
    await waitFor(() => existsSync(sock));
    const s = await ctl(sock, "status", "--json");
    expect(JSON.parse(s.stdout)).toMatchObject({ pidone: { pid: 1, mode: "tini" }, services: [{ name: "sh", state: "running" }] });
    expect((await ctl(sock, "health")).code).toBe(0);
    const refused = await ctl(sock, "restart", "sh");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("restart needs services mode");
    expect(await p.exit()).toBe(7);
    expect(existsSync(sock)).toBe(false);
  });

  test("--pause: health is pidone itself", async () => {
    const dir = tempDir();
    const sock = join(dir, "p.sock");
    const p = start([...AS_PID1, PIDONE, "--control", sock, "--pause"]);
    const pid = await pid1Of(p.proc.pid);
    await waitFor(() => existsSync(sock));
    expect(await ctl(sock, "health")).toMatchObject({ code: 0, stdout: "healthy\n" });
    expect(JSON.parse((await ctl(sock, "status", "--json")).stdout).services).toEqual([]);
    process.kill(pid, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect(existsSync(sock)).toBe(false);
  });
});

needs(NATIVE, SINGLE_FILE)("an idle pidone with its control socket", () => {
  test("0 wake-ups in 10 s as PID 1 of services mode, socket listening, after answering", async () => {
    const r = await services(`[services.a]\ncommand = "sleep 1000"\n`);
    try {
      expect((await ctl(r.sock, "status")).code).toBe(0);
      await Bun.sleep(1500); // the answered connection's last steps
      const before = contextSwitches(r.pid1);
      await Bun.sleep(10_000);
      expect(contextSwitches(r.pid1) - before).toBe(0);
    } finally {
      expect(await stop(r)).toBe(0);
    }
  }, 60_000);
});

describe("what the server relies on in Bun", () => {
  // Bun's sockets carry their descriptor as `fd` (not in bun-types): the server checks
  // SO_PEERCRED on it. If an upgrade removes it, every caller is refused: this says why.
  test("a Unix socket's `fd` is a descriptor getsockopt(SO_PEERCRED) works on", async () => {
    const dir = tempDir();
    const path = join(dir, "fd.sock");
    const { promise, resolve } = Promise.withResolvers<unknown>();
    const listener = Bun.listen({
      unix: path,
      socket: {
        open(s) {
          resolve((s as unknown as { fd?: unknown }).fd);
        },
        data() {},
      },
    });
    const client = await Bun.connect({ unix: path, socket: { data() {} } });
    const fd = await promise;
    expect(typeof fd).toBe("number");
    expect(peerCredentials(fd as number)).toMatchObject({ uid: process.getuid!(), pid: process.pid });
    client.end();
    listener.stop(true);
  });
});
