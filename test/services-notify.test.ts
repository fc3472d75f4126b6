// Readiness protocols, end to end with real clients: Debian's systemd-notify, a small
// Python sd_notify client, and s6's notification descriptor; pidone as PID 1 of a PID
// namespace. Also the NOTIFY_SOCKET pidone inherits, in services mode and in tini's.
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { AS_PID1, PIDONE, ROOT, needs, pid1Of, run, start, tempDir, type Started } from "./helpers.ts";
import { NATIVE, SINGLE_FILE, contextSwitches } from "./fixtures/native-lib.ts";

const SYSTEMD_NOTIFY = Bun.which("systemd-notify");
const PYTHON = Bun.which("python3");
const PLAIN = join(ROOT, "dist/pidone-glibc");

/** A directory every user may read: services running as nobody run the client from it. */
function workDir(): string {
  const dir = tempDir("pidone-notify-");
  chmodSync(dir, 0o755);
  // The client: sends its argument (\n for newlines) to NOTIFY_SOCKET, or to argv[2].
  writeFileSync(
    join(dir, "notify.py"),
    `import os, socket, sys
addr = sys.argv[2] if len(sys.argv) > 2 else os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"): addr = "\\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.sendto(sys.argv[1].replace("\\\\n", "\\n").encode(), addr)
    print("sent", flush=True)
except OSError as e:
    print("refused:", type(e).__name__, flush=True)
`,
  );
  // A manager's socket (Podman's --sdnotify=container): prints each datagram as one line.
  writeFileSync(
    join(dir, "listen.py"),
    `import socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print("listening", flush=True)
while True:
    print("got " + s.recv(4096).decode().strip().replace("\\n", ";"), flush=True)
`,
  );
  return dir;
}

function config(dir: string, text: string): string {
  const file = join(dir, "services.toml");
  writeFileSync(file, text);
  return file;
}

/** pidone as PID 1 on `file`, answering status at DIR/ctl.sock (the tests' environment says PIDONE_CONTROL=none). */
const pidone = (dir: string, file: string, ...flags: string[]) => [...AS_PID1, PIDONE, "--control", join(dir, "ctl.sock"), ...flags, "-c", file];

/** `pidone --ctl status --json`, spoken directly (src/native/protocol.ts CONTROL). */
async function status(dir: string): Promise<{ services: { name: string; state: string; pid: number | null; status_text: string | null; readiness: { ready: boolean } }[] }> {
  const text = await new Promise<string>((resolve, reject) => {
    let out = "";
    Bun.connect({
      unix: join(dir, "ctl.sock"),
      socket: {
        open(s) {
          s.write(`pidone-ctl 1 2\nstatus\0--json\0`);
        },
        data(_s, d) {
          out += d.toString();
        },
        close() {
          resolve(out);
        },
        error(_s, e) {
          reject(e);
        },
      },
    }).catch(reject);
  });
  return JSON.parse(text.slice(text.indexOf("\n") + 1));
}

const service = async (dir: string, name: string) => (await status(dir)).services.find((s) => s.name === name)!;

/** Stops pidone (SIGTERM to PID 1) and returns its exit code. */
async function stop(p: Started, pid1: number): Promise<number> {
  process.kill(pid1, "SIGTERM");
  return p.exit();
}

const at = (text: string, needle: string) => {
  const i = text.indexOf(needle);
  if (i < 0) throw new Error(`no ${JSON.stringify(needle)} in ${JSON.stringify(text)}`);
  return i;
};

needs(SYSTEMD_NOTIFY !== null && PYTHON !== null, "systemd-notify (Debian's systemd package) and python3")("sd_notify", () => {
  test("systemd-notify: dependents wait for READY=1, STATUS= shows in status, the barrier's descriptor is closed at once", async () => {
    const dir = workDir();
    const file = config(
      dir,
      `[services.app]
command = "echo socket=$NOTIFY_SOCKET; sleep 0.3; systemd-notify --status='warming up'; t0=$(date +%s%N); systemd-notify --ready --status=serving; t1=$(date +%s%N); echo took=$(( (t1 - t0) / 1000000 )); exec sleep 100"
shell = true
ready = { notify = true }
[services.web]
command = "echo web-started; exec sleep 100"
shell = true
after = ["app"]
`,
    );
    const p = start(pidone(dir, file, "-v"));
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout(/took=\d+/);
    await p.waitStdout("web-started");
    const out = p.stdout();
    // systemd-notify 252 follows READY=1 with BARRIER=1 and a descriptor, and waits up to
    // 5 s for it to be closed.
    const took = Number(/took=(\d+)/.exec(out)![1]);
    expect(took).toBeLessThan(3000);
    expect(at(out, "app: status: warming up")).toBeLessThan(at(out, "app: ready"));
    expect(at(out, "app: ready")).toBeLessThan(at(out, "web: started"));
    const app = await service(dir, "app");
    expect(app).toMatchObject({ state: "ready", status_text: "serving", readiness: { ready: true } });
    // Its own directory, closed to everyone else; gone when pidone exits.
    const socket = /socket=(\S+)/.exec(out)![1]!;
    expect(statSync(dirname(socket)).mode & 0o777).toBe(0o700);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(await stop(p, pid1)).toBe(0);
    expect(existsSync(dirname(dirname(socket)))).toBe(false);
  }, 60_000);

  test("a Python client that sends STATUS= and READY=1 and exits at once", async () => {
    const dir = workDir();
    const file = config(
      dir,
      `[services.py]
command = "python3 ${dir}/notify.py 'STATUS=from python\\nREADY=1'; exec sleep 100"
shell = true
ready = { notify = true }
ready_timeout = 20
`,
    );
    const p = start(pidone(dir, file));
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("py: ready", 25_000);
    expect(await service(dir, "py")).toMatchObject({ state: "ready", status_text: "from python" });
    expect(await stop(p, pid1)).toBe(0);
  }, 60_000);

  test("ready_timeout applies: a service that never says READY=1 is not ready, and killed", async () => {
    const dir = workDir();
    const file = config(dir, `[services.mute]\ncommand = ["sleep", "100"]\nready = { notify = true }\nready_timeout = 1\n`);
    const r = await run(pidone(dir, file), { timeoutMs: 30_000 });
    expect(r.stdout).toContain("mute: not ready after 1 s (notify (READY=1 on NOTIFY_SOCKET))");
    expect(r.code).not.toBe(0);
  }, 60_000);

  test("MAINPID= of a descendant is adopted (its parent's exit is not the service's); of another process, refused", async () => {
    const dir = workDir();
    const file = config(
      dir,
      `[services.daemon]
command = "sleep 100 & echo child=$!; systemd-notify MAINPID=1; systemd-notify --ready --pid=$!; exit 0"
shell = true
ready = { notify = true }
`,
    );
    const p = start(pidone(dir, file));
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout(/main process is now pid \d+/);
    await p.waitStdout("daemon: ready");
    const child = Number(/child=(\d+)/.exec(p.stdout())![1]);
    expect(p.stdout()).toContain(`main process is now pid ${child} (MAINPID)`);
    expect(p.stdout()).toContain("MAINPID=1 ignored: pid 1 is not in the service's process tree");
    // The shell exited 0 long ago; the service lives on as the adopted sleep.
    await Bun.sleep(300);
    expect(p.stdout()).not.toContain("daemon: exited");
    expect(await service(dir, "daemon")).toMatchObject({ state: "ready", pid: child });
    expect(await stop(p, pid1)).toBe(0);
    expect(p.stdout()).toContain("daemon: exited (signal SIGTERM)");
  }, 60_000);

  test("watchdog: WATCHDOG_USEC is given; pings keep it healthy, silence makes it unhealthy and restarts it", async () => {
    const dir = workDir();
    const file = config(
      dir,
      `[services.dog]
command = "echo usec=$WATCHDOG_USEC; systemd-notify --ready; for i in 1 2 3 4 5 6; do sleep 0.4; systemd-notify WATCHDOG=1; done; echo silent; exec sleep 100"
shell = true
ready = { notify = true }
watchdog = 2
restart = "on-failure"
restart_delay = 0.1
`,
    );
    const p = start(pidone(dir, file));
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("dog: unhealthy: no WATCHDOG=1 within 2 s", 30_000);
    await p.waitStdout(/restarting in 0\.1 s[\s\S]*dog: started/, 15_000);
    const out = p.stdout();
    expect(out).toContain("usec=2000000");
    // Six pings 0.4 s apart outlast the 2 s: unhealthy only once they stopped.
    expect(at(out, "silent")).toBeLessThan(at(out, "unhealthy"));
    expect(await stop(p, pid1)).toBe(0);
  }, 60_000);
});

needs(SYSTEMD_NOTIFY !== null && PYTHON !== null, "systemd-notify and python3")("where the sockets are", () => {
  test("without a writable /run, under /dev/shm", async () => {
    const dir = workDir();
    const file = config(dir, `[services.app]\ncommand = "echo socket=$NOTIFY_SOCKET; systemd-notify --ready; exec sleep 100"\nshell = true\nready = { notify = true }\n`);
    // A read-only /run in pidone's own mount namespace; exec keeps pidone PID 1.
    const script = `mount --bind /run /run && mount -o remount,bind,ro /run && exec ${PIDONE} --control none -c ${file}`;
    const p = start([...AS_PID1, "sh", "-c", script]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("app: ready");
    expect(p.stdout()).toMatch(/socket=\/dev\/shm\/pidone-notify\/run-\w+\/app\/notify\.sock/);
    expect(await stop(p, pid1)).toBe(0);
  }, 60_000);

  test("a run directory left by a killed pidone is removed once old and silent; a live one's is kept", async () => {
    const dir = workDir();
    // A socket file nobody listens on any more, in a directory two minutes old.
    const stale = join("/run/pidone-notify", `run-test-${process.pid}`);
    mkdirSync(join(stale, "app"), { recursive: true });
    expect((await run(["python3", "-c", `import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind("${join(stale, "app", "notify.sock")}")`])).code).toBe(0);
    const old = new Date(Date.now() - 120_000);
    utimesSync(stale, old, old);
    const file = config(dir, `[services.app]\ncommand = "echo socket=$NOTIFY_SOCKET; systemd-notify --ready; exec sleep 100"\nshell = true\nready = { notify = true }\n`);
    const first = start(pidone(dir, file));
    const firstPid1 = await pid1Of(first.proc.pid);
    await first.waitStdout("app: ready");
    expect(existsSync(stale)).toBe(false);
    // A second pidone meanwhile: the first's directory answers, and is old enough only in name.
    const live = dirname(dirname(/socket=(\S+)/.exec(first.stdout())![1]!));
    utimesSync(live, old, old);
    const dir2 = workDir();
    const second = start(pidone(dir2, config(dir2, `[services.b]\ncommand = "systemd-notify --ready; exec sleep 100"\nshell = true\nready = { notify = true }\n`)));
    const secondPid1 = await pid1Of(second.proc.pid);
    await second.waitStdout("b: ready");
    expect(existsSync(live)).toBe(true);
    expect(await stop(second, secondPid1)).toBe(0);
    expect(await stop(first, firstPid1)).toBe(0);
    expect(existsSync(live)).toBe(false);
  }, 60_000);
});

needs(SYSTEMD_NOTIFY !== null && PYTHON !== null && NATIVE, `python3, and ${SINGLE_FILE}`)("who may speak for a service", () => {
  test("a service's user gets the socket's directory; a process outside its tree, or of another uid, is not heard", async () => {
    const dir = workDir();
    // Written by a service that runs as nobody.
    const shared = join(dir, "shared");
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777);
    const path = join(shared, "socket-path");
    const file = config(
      dir,
      `[services.app]
command = "echo $NOTIFY_SOCKET > ${path}; exec sleep 100"
shell = true
user = "nobody"
ready = { notify = true }
ready_timeout = 4
critical = false
[services.stranger]
command = "while [ ! -s ${path} ]; do sleep 0.05; done; python3 ${dir}/notify.py READY=1 $(cat ${path}); exec sleep 100"
shell = true
critical = false
[services.ghost]
command = "while [ ! -s ${path} ]; do sleep 0.05; done; exec python3 ${dir}/notify.py READY=1 $(cat ${path})"
shell = true
critical = false
[services.other]
command = "while [ ! -s ${path} ]; do sleep 0.05; done; exec python3 ${dir}/notify.py READY=1 $(cat ${path})"
shell = true
user = "65533"
critical = false
[services.own]
command = "python3 ${dir}/notify.py READY=1; exec sleep 100"
shell = true
user = "nobody"
ready = { notify = true }
ready_timeout = 20
critical = false
`,
    );
    const p = start(pidone(dir, file, "-vv"));
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("own: ready", 25_000);
    await p.waitStdout("app: not ready after 4 s", 25_000);
    const out = p.stdout();
    // root, alive, in another service's tree: its datagram arrived and was ignored.
    expect(out).toMatch(/stranger\s*\| sent/);
    expect(out).toMatch(/app: ignored a notification from pid \d+ \(uid 0\): pid \d+ is not in the service's process tree/);
    // root, and gone by the time it is read (or not yet: then not in the tree either)
    expect(out).toMatch(/ghost\s*\| sent/);
    const refusals = out.match(/app: ignored a notification from pid \d+ \(uid 0\): pid \d+ (has exited, and uid 0 is not the service's \(65534\)|is not in the service's process tree)/g);
    expect(refusals).toHaveLength(2);
    // another uid cannot even enter the directory
    expect(out).toMatch(/other\s*\| refused: PermissionError/);
    const socket = readFileSync(path, "latin1").trim();
    expect(statSync(dirname(socket)).uid).toBe(65534);
    expect(statSync(dirname(socket)).mode & 0o777).toBe(0o700);
    expect(await stop(p, pid1)).toBe(0);
  }, 90_000);
});

describe("notification fd (s6)", () => {
  test("a newline on descriptor N is ready (later writes are dropped); closing it without one never is (not ready after ready_timeout)", async () => {
    const dir = workDir();
    const file = config(
      dir,
      `[services.good]
command = "sleep 0.3; echo >&3; sleep 0.3; echo later >&3 && echo still-writing; exec sleep 100"
shell = true
ready = { fd = 3 }
[services.high]
command = "echo ready >&9; exec sleep 100"
shell = true
ready = { fd = 9 }
[services.closer]
command = "exec 3>&-; exec sleep 100"
shell = true
ready = { fd = 3 }
ready_timeout = 2
critical = false
[services.after]
command = "echo after-started; exec sleep 100"
shell = true
after = ["good", "high"]
`,
    );
    const p = start(pidone(dir, file));
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("after-started");
    await p.waitStdout("closer: not ready after 2 s", 20_000);
    // What it writes after the newline is read and dropped: no SIGPIPE.
    await p.waitStdout("still-writing");
    const out = p.stdout();
    expect(at(out, "good: ready")).toBeLessThan(at(out, "after: started"));
    expect(out).toContain("high: ready");
    expect(at(out, "closer: closed descriptor 3 without a newline")).toBeLessThan(at(out, "closer: not ready"));
    expect(await stop(p, pid1)).toBe(0);
  }, 60_000);
});

needs(NATIVE, SINGLE_FILE)("notification fd through the exec trampoline", () => {
  test("with `user`, descriptor N is still the pipe", async () => {
    const dir = workDir();
    const file = config(dir, `[services.u]\ncommand = "id -u; echo >&3; exec sleep 100"\nshell = true\nuser = "nobody"\nready = { fd = 3 }\nready_timeout = 10\n`);
    const p = start(pidone(dir, file));
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("u: ready");
    expect(p.stdout()).toMatch(/u\s*\| 65534/);
    expect(await stop(p, pid1)).toBe(0);
  }, 60_000);
});

needs(PYTHON !== null, "python3")("the NOTIFY_SOCKET pidone inherits", () => {
  for (const kind of ["path", "abstract"] as const) {
    test(`services mode (${kind}): not passed to the services; READY=1 once all are ready, STOPPING=1 at the stop`, async () => {
      const dir = workDir();
      const address = kind === "path" ? join(dir, "manager.sock") : `@pidone-test-${process.pid}-${Date.now()}`;
      const manager = start(["python3", join(dir, "listen.py"), address]);
      try {
        await manager.waitStdout("listening");
        const file = config(
          dir,
          `[services.plain]
command = "echo \\"outer=[$NOTIFY_SOCKET][$WATCHDOG_USEC]\\"; exec sleep 100"
shell = true
[services.slow]
command = "sleep 1; python3 ${dir}/notify.py READY=1; exec sleep 100"
shell = true
ready = { notify = true }
`,
        );
        const p = start(pidone(dir, file), { env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: "5000000" } });
        const pid1 = await pid1Of(p.proc.pid);
        await p.waitStdout("slow: ready");
        await manager.waitStdout("got READY=1");
        expect(p.stdout()).toContain("outer=[][]");
        // The service with readiness was not ready when "plain" was: READY=1 waited for it.
        expect(manager.stdout().match(/got /g)).toHaveLength(1);
        process.kill(pid1, "SIGTERM");
        await manager.waitStdout("got STOPPING=1");
        expect(await p.exit()).toBe(0);
      } finally {
        manager.proc.kill("SIGKILL");
      }
    }, 60_000);
  }

  test("tini's mode: the child gets it unchanged", async () => {
    const r = await run([...AS_PID1, PIDONE, "--", "sh", "-c", 'echo "[$NOTIFY_SOCKET]"'], { env: { NOTIFY_SOCKET: "/run/podman/notify.sock" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("[/run/podman/notify.sock]\n");
    const abstract = await run([PIDONE, "--", "sh", "-c", 'echo "[$NOTIFY_SOCKET]"'], { env: { NOTIFY_SOCKET: "@podman-abc" } });
    expect(abstract.stdout).toBe("[@podman-abc]\n");
  });
});

needs(existsSync(PLAIN) && PYTHON !== null, `${PLAIN} (bun scripts/build.ts) and python3`)("the plain -glibc file", () => {
  test("sd_notify and the notification fd wake it too (SIGIO through process.on)", async () => {
    const dir = workDir();
    const file = config(
      dir,
      `[services.py]
command = "sleep 0.2; python3 ${dir}/notify.py 'STATUS=plain\\nREADY=1'; exec sleep 100"
shell = true
ready = { notify = true }
ready_timeout = 20
[services.fd]
command = "sleep 0.2; echo >&4; exec sleep 100"
shell = true
ready = { fd = 4 }
ready_timeout = 20
`,
    );
    const p = start([...AS_PID1, PLAIN, "--control", join(dir, "ctl.sock"), "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout((t) => t.includes("py: ready") && t.includes("fd: ready"), 25_000);
    expect(await service(dir, "py")).toMatchObject({ status_text: "plain" });
    expect(await stop(p, pid1)).toBe(0);
  }, 60_000);
});

needs(NATIVE && PYTHON !== null, `${SINGLE_FILE} and python3`)("an idle pidone with a notify service", () => {
  test("no wake-up in 10 s once it is ready (context switches summed over every thread)", async () => {
    const dir = workDir();
    const file = config(dir, `[services.py]\ncommand = "python3 ${dir}/notify.py READY=1; exec sleep 1000"\nshell = true\nready = { notify = true }\nready_timeout = 20\n`);
    const p = start(pidone(dir, file));
    try {
      const pid1 = await pid1Of(p.proc.pid, 15_000);
      await p.waitStdout("py: ready", 25_000);
      await Bun.sleep(1000);
      const before = contextSwitches(pid1);
      await Bun.sleep(10_000);
      expect(contextSwitches(pid1) - before).toBe(0);
      expect(await stop(p, pid1)).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);
});

describe("--check", () => {
  test("ready = { notify }, { fd } and watchdog are checked with FILE:LINE", async () => {
    const dir = workDir();
    const file = join(dir, "bad.toml");
    writeFileSync(
      file,
      `[services.a]
command = ["true"]
ready = { notify = false }
[services.b]
command = ["true"]
ready = { fd = 2 }
[services.c]
command = ["true"]
ready = { tcp = 80 }
watchdog = 5
[services.d]
command = ["true"]
ready = { notify = true }
watchdog = 0
[services.e]
command = ["true"]
ready = { notify = true }
pidfile = "/run/e.pid"
`,
    );
    const r = await run([PIDONE, "--check", "-c", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:3: services.a.ready.notify: expected true`);
    expect(r.stderr).toContain(`${file}:6: services.b.ready.fd: expected a descriptor number from 3 to 1023, got the integer 2`);
    expect(r.stderr).toContain(`${file}:10: services.c.watchdog: needs ready = { notify = true }`);
    expect(r.stderr).toContain(`${file}:14: services.d.watchdog: must be greater than 0 seconds`);
    expect(r.stderr).toContain(`${file}:18: services.e.pidfile: cannot be combined with ready = { notify = … } (a notify daemon names its main process with MAINPID=)`);
    const good = join(dir, "good.toml");
    writeFileSync(good, `[services.a]\ncommand = ["true"]\nready = { notify = true }\nwatchdog = 1.5\n[services.b]\ncommand = ["true"]\nready = { fd = 3 }\n`);
    expect((await run([PIDONE, "--check", "-c", good])).code).toBe(0);
  });
});
