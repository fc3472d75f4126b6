// The native helper's exec trampoline (issue 4, part 4): what posix_spawn cannot do,
// done by the single file started as a trampoline between spawn and exec - LISTEN_PID
// set to the child's own pid (systemd socket activation), the child of --setsid taking
// pidone's controlling terminal, and services switching user (setgroups, setresgid,
// setresuid) - as PID 1 of namespaces, in a pty and in Docker. The plain executable
// degrades with a clear message instead (last block, run with PIDONE_BIN=dist/pidone-glibc).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DOCKER_ENGINE, buildScratchImage, dockerAvailable, dockerRun } from "./docker.ts";
import { AS_PID1, PIDONE, ROOT, cHelper, needs, run, start, tempDir } from "./helpers.ts";
import { NATIVE, SINGLE_FILE, credentialLines } from "./fixtures/native-lib.ts";

setDefaultTimeout(60_000);

const DOCKER = NATIVE && (await dockerAvailable());
const PLAIN = join(ROOT, "dist/pidone-glibc");

/** /etc/passwd and /etc/group for a user with two supplementary groups. */
function accounts(dir: string): { passwd: string; group: string } {
  const passwd = join(dir, "passwd");
  const group = join(dir, "group");
  writeFileSync(passwd, "root:x:0:0:root:/root:/bin/sh\nsvc:x:4242:4243:service:/srv:/bin/sh\n");
  writeFileSync(group, "root:x:0:\nsvc:x:4243:\nextra1:x:5000:svc\nextra2:x:5001:other,svc\nunrelated:x:5002:other\n");
  return { passwd, group };
}

const WHO = `grep -E '^(Uid|Gid|Groups):' /proc/self/status`;

function servicesToml(dir: string, user: string): string {
  const file = join(dir, "svc.toml");
  writeFileSync(file, `[settings]\nlog_format = "raw"\n\n[services.who]\ncommand = ["/bin/sh", "-c", ${JSON.stringify(WHO)}]\nuser = "${user}"\n`);
  return file;
}

const SVC_CREDENTIALS = ["Uid: 4242 4242 4242 4242", "Gid: 4243 4243 4243 4243", "Groups: 4243 5000 5001"];

needs(NATIVE, SINGLE_FILE)("LISTEN_PID (systemd socket activation)", () => {
  const child = `echo "$LISTEN_PID $$ $LISTEN_FDS \${LISTEN_PIDFDID-unset} $(readlink /proc/self/fd/3)"`;

  test("naming pidone, it names the child in the child; the LISTEN_FDS descriptors pass; LISTEN_PIDFDID goes", async () => {
    // exec keeps the pid: LISTEN_PID is pidone's own.
    const script = `exec 3</etc/hostname; exec env LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_PIDFDID=12345 "$0" -s -- sh -c '${child}'`;
    const r = await run(["bash", "-c", script, PIDONE]);
    expect(r.code, r.stderr).toBe(0);
    const [listenPid, self, fds, pidfdid, fd3] = r.stdout.trim().split(" ");
    expect({ listenPid, fds, pidfdid, fd3 }).toEqual({ listenPid: self, fds: "1", pidfdid: "unset", fd3: "/etc/hostname" });
  });

  test("as PID 1 (LISTEN_PID=1): the child sees its own pid", async () => {
    const script = `exec 3</etc/hostname; exec env LISTEN_PID=1 LISTEN_FDS=1 "$0" -- sh -c '${child}'`;
    const r = await run([...AS_PID1, "bash", "-c", script, PIDONE]);
    expect(r.code, r.stderr).toBe(0);
    const [listenPid, self, fds, , fd3] = r.stdout.trim().split(" ");
    expect(self).not.toBe("1");
    expect({ listenPid, fds, fd3 }).toEqual({ listenPid: self, fds: "1", fd3: "/etc/hostname" });
  });

  test("naming another process, it reaches the child unchanged", async () => {
    const r = await run([PIDONE, "-s", "--", "sh", "-c", 'echo "$LISTEN_PID $LISTEN_PIDFDID"'], {
      env: { LISTEN_PID: "999999", LISTEN_PIDFDID: "7" },
    });
    expect(r).toEqual({ code: 0, stdout: "999999 7\n", stderr: "" });
  });

  test("through the trampoline, a failed exec keeps tini's codes and messages; a script without #! runs with /bin/sh", async () => {
    const dir = tempDir("pidone-tramp-");
    const noExec = join(dir, "not-executable");
    writeFileSync(noExec, "#!/bin/sh\nexit 0\n");
    const script = join(dir, "no-shebang");
    writeFileSync(script, 'echo "script ran with $1"; exit 7\n');
    chmodSync(script, 0o755);
    const viaTrampoline = (program: string[]) =>
      run(["bash", "-c", 'exec env LISTEN_PID=$$ "$0" -s -- "$@"', PIDONE, ...program]);

    const missing = await viaTrampoline(["no-such-program-anywhere"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain("exec no-such-program-anywhere failed: No such file or directory");
    const denied = await viaTrampoline([noExec]);
    expect(denied.code).toBe(126);
    expect(denied.stderr).toContain(`exec ${noExec} failed: Permission denied`);
    const sh = await viaTrampoline([script, "arg"]);
    expect(sh.code).toBe(7);
    expect(sh.stdout).toBe("script ran with arg\n");
  });
});

needs(NATIVE, SINGLE_FILE)("--setsid and pidone's controlling terminal", () => {
  const CHILD_LINE = /child pid=(-?\d+) pgid=(-?\d+) fg=(-?\d+)/;

  test("the child leads a new session with pidone's terminal as its own, in the foreground; Ctrl-C reaches it; the handover's SIGHUP does not", async () => {
    const [pty, fgcheck] = await Promise.all([cHelper("core-pty"), cHelper("core-fgcheck")]);
    // core-pty makes pidone a session leader with the pty as its controlling terminal,
    // as `docker run -t` does for PID 1.
    const p = start([pty, PIDONE, "--setsid", "-vvv", "--", fgcheck], { stdin: "pipe" });
    try {
      await p.waitStdout(CHILD_LINE);
      const [, pid, pgid, fg] = CHILD_LINE.exec(p.stdout())!;
      // tcgetpgrp(0) answers only for a process's own controlling terminal.
      expect({ pgid, fg }).toEqual({ pgid: pid, fg: pid });
      p.write("\x03");
      expect(await p.exit()).toBe(130);
      expect(p.stdout()).not.toContain("Hangup");
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});

needs(NATIVE, SINGLE_FILE)("services: `user`", () => {
  test("switches supplementary groups, gid and uid (setgroups, setresgid, setresuid), as PID 1", async () => {
    const dir = tempDir("pidone-user-");
    const { passwd, group } = accounts(dir);
    const toml = servicesToml(dir, "svc");
    // Our own /etc/passwd and /etc/group, in this mount namespace only.
    const script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && exec "$0" -c "$3"';
    const r = await run([...AS_PID1, "sh", "-c", script, PIDONE, passwd, group, toml]);
    expect(r.code, r.stderr).toBe(0);
    expect(credentialLines(r.stdout)).toEqual(SVC_CREDENTIALS);
  });

  test("uid:gid without a passwd entry: that uid and gid, and no other group", async () => {
    const dir = tempDir("pidone-user-");
    const r = await run([...AS_PID1, PIDONE, "-c", servicesToml(dir, "31337:31338")]);
    expect(r.code, r.stderr).toBe(0);
    expect(credentialLines(r.stdout)).toEqual(["Uid: 31337 31337 31337 31337", "Gid: 31338 31338 31338 31338", "Groups: 31338"]);
  });

  test("a user pidone may not switch to: the service fails to start, saying which step failed and why", async () => {
    const dir = tempDir("pidone-user-");
    // Root without CAP_SETGID and CAP_SETUID (dropped from the bounding set before exec).
    const r = await run(["setpriv", "--bounding-set=-setuid,-setgid", PIDONE, "-s", "-c", servicesToml(dir, "31337:31338")]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("cannot set supplementary groups 31338: Operation not permitted");
  });
});

needs(DOCKER, NATIVE ? DOCKER_ENGINE : SINGLE_FILE)("in Docker, FROM scratch", () => {
  const tag = `pidone-native-test-${process.pid}`;
  let image = "";
  const imageWithAccounts = async () => {
    if (image) return image;
    const dir = tempDir("pidone-native-img-");
    const { passwd, group } = accounts(dir);
    image = await buildScratchImage({
      tag,
      files: { "/etc/passwd": passwd, "/etc/group": group, "/svc.toml": servicesToml(dir, "svc") },
      entrypoint: ["/pidone"],
    });
    return image;
  };
  afterAll(async () => {
    if (image) await run(["docker", "rmi", "-f", image], { timeoutMs: 60_000 });
  });

  test("docker stop right after docker run: the SIGTERM is not lost while pidone starts (143, well before 10 s)", async () => {
    const img = await imageWithAccounts();
    const name = `${tag}-stop`;
    try {
      const started = await run(["docker", "run", "-d", "--name", name, "--network", "none", img, "--", "sleep", "1000"]);
      expect(started.code, started.stderr).toBe(0);
      const t0 = performance.now();
      const stop = await run(["docker", "stop", "-t", "10", name], { timeoutMs: 30_000 });
      expect(stop.code, stop.stderr).toBe(0);
      expect((performance.now() - t0) / 1000).toBeLessThan(5);
      const code = await run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name]);
      expect(code.stdout.trim()).toBe("143");
    } finally {
      await run(["docker", "rm", "-f", name]);
    }
  }, 120_000);

  test("docker run -t --setsid: the child leads its session and owns the terminal's foreground", async () => {
    const img = await imageWithAccounts();
    // /proc/PID/stat: pid (comm) state ppid pgrp session tty_nr tpgid
    const r = await dockerRun(["-t", img, "--setsid", "--", "sh", "-c", "cat /proc/$$/stat"], 60_000);
    expect(r.code, r.stdout).toBe(0);
    const fields = r.stdout.slice(r.stdout.lastIndexOf(")") + 2).trim().split(" ");
    const pid = r.stdout.trim().split(" ")[0]!;
    const [pgrp, session, ttyNr, tpgid] = [fields[2], fields[3], fields[4], fields[5]];
    expect({ pgrp, session, tpgid }).toEqual({ pgrp: pid, session: pid, tpgid: pid });
    expect(ttyNr).not.toBe("0");
  }, 120_000);

  test("services switch to a user of the image's /etc/passwd and /etc/group, as PID 1", async () => {
    const r = await dockerRun([await imageWithAccounts(), "-c", "/svc.toml"], 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(credentialLines(r.stdout)).toEqual(SVC_CREDENTIALS);
  }, 120_000);
});

describe.skipIf(NATIVE)("without the native helper (the plain executable)", () => {
  test("`user` is refused with a clear message", async () => {
    const r = await run([PIDONE, "-s", "-c", servicesToml(tempDir("pidone-user-"), "31337:31338")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("`user` needs the native helper of the single-file pidone");
  });

  test("LISTEN_PID naming pidone: a warning, and the child still runs", async () => {
    const r = await run(["bash", "-c", 'exec env LISTEN_PID=$$ "$0" -s -- sh -c "echo ran"', PIDONE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("ran\n");
    expect(r.stderr).toContain("LISTEN_PID names pidone");
  });
});

// The plain executable beside a single file: the same behaviour as the block above,
// whichever is under test (CI tests the single file, where that block skips).
needs(NATIVE, SINGLE_FILE)("the plain executable beside it", () => {
  test("refuses `user` with a clear message", async () => {
    const r = await run([PLAIN, "-s", "-c", servicesToml(tempDir("pidone-user-"), "31337:31338")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("`user` needs the native helper of the single-file pidone");
  });

  test("LISTEN_PID naming pidone: a warning, and the child still runs", async () => {
    const r = await run(["bash", "-c", 'exec env LISTEN_PID=$$ "$0" -s -- sh -c "echo ran"', PLAIN]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("ran\n");
    expect(r.stderr).toContain("LISTEN_PID names pidone");
  });
});
