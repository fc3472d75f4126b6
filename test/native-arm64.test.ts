// The native helper on arm64, under qemu-user: the same stub source built for aarch64
// (early signal safety, the handler for STKFLT and the real-time signals, environment
// hygiene, the exec trampoline). Builds the arm64 single file with scripts/build.ts, or
// takes PIDONE_ARM64=path. The trampoline re-executes the arm64 file, which only works
// where arm64 executables run: a user namespace with its own binfmt_misc entry for qemu
// (test/fixtures/native-userns.c, Linux 6.7+), so the host's binfmt_misc is never touched.
// qemu-user 7.2 carries guest signals 32..62 on host signals 34..64: the host's 36..64
// are the guest's SIGRTMIN..SIGRTMIN+28, and what pidone forwards maps back the same way.
// Both single files carry one Debian libc6 (scripts/release/lock.ts): the test compares
// the arm64 file's with dist/pidone's.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { AS_PID1, PIDONE, ROOT, cHelper, needs, run, start, tempDir } from "./helpers.ts";
import { SIGSTKFLT, countOf, pidoneHostPid, signalCounts } from "./fixtures/core-lib.ts";
import { NATIVE, QEMU_ARM64, SINGLE_FILE, credentialLines } from "./fixtures/native-lib.ts";
import { embeddedLibc6, lockedLibc6Available, readLock } from "../scripts/release/lock.ts";

setDefaultTimeout(180_000);

let pidone = process.env.PIDONE_ARM64 ?? "";
let qemu = "";

beforeAll(async () => {
  if (!NATIVE) return;
  qemu = (await run(["sh", "-c", `command -v ${QEMU_ARM64}`])).stdout.trim();
  if (!qemu) throw new Error(`${QEMU_ARM64} is missing: run scripts/setup-test-env.sh`);
  if (!pidone) {
    pidone = join(tempDir("pidone-arm64-"), "pidone");
    // HOME: the build caches the runtime and libc6 it fetched in ~/.cache/pidone.
    const r = await run([process.execPath, "scripts/build.ts", "--target", "bun-linux-arm64", "--outfile", relative(ROOT, pidone)], {
      cwd: ROOT,
      env: { HOME: process.env.HOME, PIDONE_CACHE: process.env.PIDONE_CACHE, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME },
      timeoutMs: 600_000,
    });
    if (r.code !== 0 || !existsSync(pidone)) throw new Error(`building the arm64 single file failed:\n${r.stdout}${r.stderr}`);
  }
}, 600_000);

/** Host signals qemu-user maps onto the guest's STKFLT and SIGRTMIN..SIGRTMIN+28. */
const CARRIED = [SIGSTKFLT, ...Array.from({ length: 64 - 36 + 1 }, (_, i) => 36 + i)];

needs(NATIVE, SINGLE_FILE)("arm64 under qemu-user", () => {
  test("carries the same Debian libc6 as dist/pidone: the lock's, while Debian's archive has it", () => {
    const arm64 = embeddedLibc6(pidone);
    expect(arm64).toBe(embeddedLibc6(PIDONE));
    if (lockedLibc6Available()) expect(arm64).toBe(readLock().libc6.version);
  });

  // qemu needs some milliseconds of its own before the guest's first instruction; the
  // guest's JavaScript starts seconds later under emulation.
  test("a SIGTERM while the runtime starts: acted on as PID 1 and not fatal otherwise (exit 143 both)", async () => {
    const early = await cHelper("native-early");
    const pid1 = await run([early, "--pid1", "300000", "15", qemu, pidone, "--", "sleep", "100"], { timeoutMs: 60_000 });
    expect(pid1.stdout, pid1.stderr).toStartWith("exited 143 ");
    const plain = await run([early, "300000", "15", qemu, pidone, "--", "sleep", "100"], { timeoutMs: 60_000 });
    expect(plain.stdout, plain.stderr).toStartWith("exited 143 ");
  });

  test("STKFLT and the real-time signals reach the child exactly once each, as PID 1", async () => {
    const sigcount = await cHelper("core-sigcount");
    const p = start([...AS_PID1, qemu, pidone, "--", sigcount], { stdin: "pipe" });
    try {
      await p.waitStdout(/^ready /m, 60_000);
      const target = await pidoneHostPid(p, true);
      for (const sig of CARRIED) {
        process.kill(target, sig);
        await p.waitStdout((out) => countOf(out, sig) >= 1, 20_000).catch((e) => {
          throw new Error(`signal ${sig} was not forwarded: ${e.message}`);
        });
      }
      p.closeStdin();
      expect(await p.exit(60_000)).toBe(0);
      expect([...signalCounts(p.stdout())].sort((a, b) => a[0]! - b[0]!)).toEqual(CARRIED.map((s): [number, number] => [s, 1]));
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("an LD_PRELOAD for the (amd64) child and BUN_OPTIONS reach the child and leave pidone alone", async () => {
    const dir = tempDir("pidone-arm64-preload-");
    const lib = join(dir, "preload.so");
    const cc = await run(["cc", "-O2", "-shared", "-fPIC", "-o", lib, join(ROOT, "test/fixtures/native-preload.c")]);
    expect(cc.code, cc.stderr).toBe(0);
    const log = join(dir, "loaded");
    const r = await run([qemu, pidone, "--", "sh", "-c", 'echo "$BUN_OPTIONS $LD_PRELOAD"'], {
      env: { LD_PRELOAD: lib, PRELOAD_LOG: log, BUN_OPTIONS: "--revision", TINI_VERBOSITY: "0" },
      timeoutMs: 60_000,
    });
    // Unhidden, the arm64 ld.so would complain about the amd64 library, and Bun would
    // print its revision instead of running the child.
    expect(r).toEqual({ code: 0, stdout: `--revision ${lib}\n`, stderr: "" });
    expect(readFileSync(log, "utf8")).toBe("loaded into sh\n");
  });

  describe("the trampoline, in a user namespace with its own binfmt_misc entry for qemu", () => {
    test("LISTEN_PID naming pidone (PID 1) names the child in the child", async () => {
      const userns = await cHelper("native-userns");
      const script = `exec env LISTEN_PID=1 LISTEN_FDS=0 "$0" -- sh -c 'echo "$LISTEN_PID $$"'`;
      const r = await run([userns, "--binfmt-aarch64", qemu, "sh", "-c", script, pidone], { timeoutMs: 90_000 });
      expect(r.code, r.stderr).toBe(0);
      const [listenPid, self] = r.stdout.trim().split(" ");
      expect(self).not.toBe("1");
      expect(listenPid).toBe(self);
    });

    test("services switch supplementary groups, gid and uid, as PID 1", async () => {
      const userns = await cHelper("native-userns");
      const dir = tempDir("pidone-arm64-user-");
      writeFileSync(join(dir, "passwd"), "root:x:0:0:root:/root:/bin/sh\nsvc:x:4242:4243:service:/srv:/bin/sh\n");
      writeFileSync(join(dir, "group"), "root:x:0:\nsvc:x:4243:\nextra1:x:5000:svc\nextra2:x:5001:other,svc\n");
      const who = `grep -E '^(Uid|Gid|Groups):' /proc/self/status`;
      writeFileSync(join(dir, "svc.toml"), `[settings]\nlog_format = "raw"\n[services.who]\ncommand = ["/bin/sh", "-c", ${JSON.stringify(who)}]\nuser = "svc"\n`);
      const script = 'mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group && exec "$0" -c "$1/svc.toml"';
      const r = await run([userns, "--binfmt-aarch64", qemu, "sh", "-c", script, pidone, dir], { timeoutMs: 90_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(credentialLines(r.stdout)).toEqual(["Uid: 4242 4242 4242 4242", "Gid: 4243 4243 4243 4243", "Groups: 4243 5000 5001"]);
    });
  });
});
