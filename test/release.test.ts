// The single-file release (issue 3): `npm run release` once, then every file as users run
// it - in Docker FROM scratch as PID 1 under the usual hardening flags, arm64 under qemu
// as PID 1 of its own PID namespace, amd64 on a CPU without AVX2, the payload shared
// between containers, and the README's install snippets against a loopback HTTP server.
//
// PIDONE_RELEASE_DIR=dist/release bun test test/release.test.ts  tests an existing release
// instead of building one. Needs gcc, gcc-aarch64-linux-gnu, apt-get and npm (the inputs),
// qemu-user-static (scripts/setup-test-env.sh installs them); without a Docker engine the
// Docker tests are skipped with a warning, or fail under CI (test/helpers.ts, needs).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DOCKER_ENGINE, buildScratchImage, dockerAvailable, dockerRun } from "./docker.ts";
import { AS_PID1, ROOT, needs, run, tempDir, waitFor, type RunResult } from "./helpers.ts";
import { Elf, PT_INTERP, DT_NEEDED } from "../scripts/pack/elf.ts";
import { embeddedLibc6, lockedLibc6Available, readLock } from "../scripts/release/lock.ts";
import pkg from "../package.json" with { type: "json" };

const QEMU_ARM64 = "qemu-aarch64-static";
const QEMU_AMD64 = "qemu-x86_64-static";
const SNIPPETS = join(ROOT, "scripts/release-snippets.md");
const SNIPPET_BASE_URL = "https://github.com/OWNER/pidone/releases/download/v0.1.0";
const TAG = `pidone-release-test-${process.pid}`;

const DOCKER = await dockerAvailable();

let dir = process.env.PIDONE_RELEASE_DIR ?? "";
const builtHere = !dir;
const file = (name: string) => join(dir, name);
const images: string[] = [];
const scratch: string[] = [];
/** A temporary directory removed after the run. */
function scratchDir(prefix: string): string {
  const d = tempDir(prefix);
  scratch.push(d);
  return d;
}

/** Output as bytes (run() decodes text, which would hide a byte that changed). */
async function runBytes(cmd: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [out, err] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout: Buffer.from(out), stderr: err };
}

function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function compileStatic(fixture: string): Promise<string> {
  const out = join(scratchDir("pidone-release-c-"), fixture);
  const r = await run(["cc", "-O2", "-static", "-o", out, join(ROOT, "test/fixtures", `${fixture}.c`)]);
  if (r.code !== 0) throw new Error(`cc ${fixture}.c failed:\n${r.stderr}`);
  return out;
}

beforeAll(async () => {
  if (builtHere) {
    dir = tempDir("pidone-release-");
    // HOME: the release caches the runtimes and libc6 it fetched in ~/.cache/pidone.
    // --allow-unlocked: the tests must not fail the day Debian replaces the lock's libc6.
    const r = await run([process.execPath, "scripts/release.ts", "--out", dir, "--allow-unlocked"], {
      cwd: ROOT,
      env: { HOME: process.env.HOME, PIDONE_CACHE: process.env.PIDONE_CACHE, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME },
      timeoutMs: 600_000,
    });
    if (r.code !== 0) throw new Error(`npm run release failed:\n${show(r)}`);
  }
}, 600_000);

afterAll(async () => {
  if (images.length) await run(["docker", "rmi", "-f", ...images], { timeoutMs: 60_000 });
  if (builtHere && dir) rmSync(dir, { recursive: true, force: true });
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

// A shell script (busybox or dash) that orphans `n` short-lived grandchildren and then
// waits until none is left running or unreaped: only PID 1 can reap them.
const ORPHANS = (n: number) => `
i=0; while [ $i -lt ${n} ]; do sh -c 'sleep 0.2 & exit 0'; i=$((i+1)); done
t=0; while [ $t -lt 300 ]; do
  left=0
  for s in /proc/[0-9]*/stat; do
    read -r line < "$s" 2>/dev/null || continue
    case "$line" in *"(sleep)"*) left=$((left+1));; esac
  done
  [ $left -eq 0 ] && break
  sleep 0.05; t=$((t+1))
done
echo "left=$left"`;

describe("npm run release", () => {
  const names = ["pidone-amd64", "pidone-arm64", "pidone-amd64-glibc", "pidone-arm64-glibc"];

  test("writes the four executables, SHA256SUMS and a .sha256 beside each", async () => {
    for (const n of names) {
      expect(statSync(file(n)).mode & 0o777).toBe(0o755);
      const line = readFileSync(file(`${n}.sha256`), "utf8");
      expect(line).toMatch(new RegExp(`^[0-9a-f]{64}  ${n}\\n$`));
      expect(readFileSync(file("SHA256SUMS"), "utf8")).toContain(line);
    }
    const r = await run(["sha256sum", "-c", "SHA256SUMS"], { cwd: dir });
    expect(r.code, show(r)).toBe(0);
    // The four executables, the two images and an SBOM beside each of those six.
    expect(r.stdout.match(/: OK$/gm)?.length).toBe(12);
    for (const n of [...names, "pidone-amd64-image.tar", "pidone-arm64-image.tar"]) {
      expect(r.stdout).toContain(`${n}: OK\n`);
      expect(r.stdout).toContain(`${n}.spdx.json: OK\n`);
    }
  }, 60_000);

  test("the single files have no interpreter and carry ld.so and the C libraries (about +3 MB)", () => {
    for (const arch of ["amd64", "arm64"]) {
      const single = new Elf(new Uint8Array(readFileSync(file(`pidone-${arch}`))), arch);
      const plain = new Elf(new Uint8Array(readFileSync(file(`pidone-${arch}-glibc`))), `${arch}-glibc`);
      expect(single.phdrs.some((p) => p.type === PT_INTERP)).toBe(false);
      expect(plain.phdrs.some((p) => p.type === PT_INTERP)).toBe(true);
      const needed = single.dynamic().filter((d) => d.tag === DT_NEEDED).map((d) => single.dynamicString(d.value));
      expect(needed.filter((n) => n.startsWith("/proc/self/fd/100")).length).toBe(4);
      const added = single.bytes.length - plain.bytes.length;
      console.log(`pidone-${arch}: ${single.bytes.length} bytes, +${added} over pidone-${arch}-glibc`);
      expect(added).toBeGreaterThan(2_000_000);
      expect(added).toBeLessThan(4_000_000);
    }
  }, 60_000);

  test("both single files carry one Debian libc6: the lock's, while Debian's archive has it", () => {
    const amd64 = embeddedLibc6(file("pidone-amd64"));
    expect(embeddedLibc6(file("pidone-arm64"))).toBe(amd64);
    if (builtHere && lockedLibc6Available()) expect(amd64).toBe(readLock().libc6.version);
  });

  test("--version carries the release version and the git commit, on both architectures", async () => {
    const git = await run(["git", "-C", ROOT, "rev-parse", "--short=7", "HEAD"]);
    // A release given by PIDONE_RELEASE_DIR may predate the last commit.
    const commit = git.code === 0 && builtHere ? git.stdout.trim() : "[0-9a-f]{7}";
    const want = new RegExp(`^pidone version ${pkg.version.replace(/\./g, "\\.")} - git\\.${commit}\\n$`);
    const amd64 = await run([file("pidone-amd64"), "--version"]);
    expect(amd64.stdout, show(amd64)).toMatch(want);
    const arm64 = await run([QEMU_ARM64, file("pidone-arm64"), "--version"], { timeoutMs: 60_000 });
    expect(arm64.stdout, show(arm64)).toMatch(want);
  }, 90_000);
});

describe("the single file outside Docker", () => {
  test("arm64 runs under qemu as PID 1 of its own PID namespace, reaping a child's orphans", async () => {
    // No -L: the file must need nothing from an arm64 sysroot. The child is the host's
    // (amd64) shell, which qemu-user executes natively.
    const script = `echo "parent=$PPID"; ${ORPHANS(5)}; exit 5`;
    const r = await run([...AS_PID1, QEMU_ARM64, file("pidone-arm64"), "--", "/bin/sh", "-c", script], { timeoutMs: 90_000 });
    expect(r.code, show(r)).toBe(5);
    expect(r.stdout).toContain("parent=1\n");
    expect(r.stdout).toContain("left=0\n");
  }, 90_000);

  test("arm64 under qemu moves its libraries below a small fd limit", async () => {
    const r = await run(
      ["bash", "-c", `ulimit -n 64; exec ${QEMU_ARM64} "$0" -- /bin/sh -c 'ls -l /proc/$PPID/fd; exit 4'`, file("pidone-arm64")],
      { timeoutMs: 60_000 },
    );
    expect(r.code, show(r)).toBe(4);
    // Loaded from memfds below the limit, then mapped from the file: no memfd is left.
    expect(r.stdout).not.toContain("memfd:");
    expect(r.stdout).not.toMatch(/ 100\d -> /);
  }, 60_000);

  test("amd64 is the baseline build: it runs a child on a CPU without AVX2 (qemu -cpu Nehalem)", async () => {
    const control = await run([QEMU_AMD64, "-cpu", "Nehalem", await compileStatic("release-avx2")]);
    expect(control.code, `the AVX2 control must die with SIGILL: ${show(control)}`).toBe(132);
    const r = await run([QEMU_AMD64, "-cpu", "Nehalem", file("pidone-amd64"), "--", "/bin/sh", "-c", "echo ran; exit 3"], {
      timeoutMs: 60_000,
    });
    expect(r.code, show(r)).toBe(3);
    expect(r.stdout).toBe("ran\n");
  }, 60_000);

  test("argv and the environment reach the child byte for byte, invalid UTF-8 included", async () => {
    const script = `exec env -i "RAW=$(printf 'a\\377b')" "SP=x y" "UNI=ünï" "$0" -- /bin/sh -c 'cat /proc/$$/environ; cat /proc/$$/cmdline' sh "a b" "$(printf 'x\\377y')" "ünï"`;
    const r = await runBytes(["bash", "-c", script, file("pidone-amd64")]);
    expect(r.code, r.stderr).toBe(0);
    const z = "\0";
    const expected = Buffer.concat([
      Buffer.from(`RAW=a`),
      Buffer.from([0xff]),
      Buffer.from(`b${z}SP=x y${z}UNI=ünï${z}`),
      Buffer.from(`/bin/sh${z}-c${z}cat /proc/$$/environ; cat /proc/$$/cmdline${z}sh${z}a b${z}x`),
      Buffer.from([0xff]),
      Buffer.from(`y${z}ünï${z}`),
    ]);
    expect(r.stdout.toString("hex")).toBe(expected.toString("hex"));
  }, 30_000);

  test("keeps an inherited fd 1000 for the child and puts its libraries elsewhere", async () => {
    const script = `exec 1000</etc/hostname; exec "$0" -- /bin/sh -c 'readlink /proc/self/fd/1000; ls -l /proc/$PPID/fd | grep -c memfd:pidone; ls -l /proc/self/fd | grep -c memfd; exit 0'`;
    const r = await run(["bash", "-c", script, file("pidone-amd64")]);
    expect(r.code, show(r)).toBe(0);
    // the child: fd 1000 is what we passed; pidone: the libraries' memfds, placed elsewhere,
    // are freed once loaded; the child: no memfd
    expect(r.stdout).toBe("/etc/hostname\n0\n0\n");
  }, 30_000);

  test("without /proc it stops with one clear line", async () => {
    const r = await run(["unshare", "--mount", "--fork", "sh", "-c", 'mount -t tmpfs none /proc && exec "$0" -- /bin/true', file("pidone-amd64")]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toMatch(/^pidone: cannot open \/proc\/self\/fd: no such file or directory \(errno 2\): the single-file pidone needs \/proc mounted.*\n$/);
  }, 30_000);

  test("an execute-only file (chmod +x on ADD's 0600) stops with one clear line", async () => {
    const d = scratchDir("pidone-release-0711-");
    chmodSync(d, 0o755);
    const copy = join(d, "pidone");
    copyFileSync(file("pidone-amd64"), copy);
    chmodSync(copy, 0o711);
    const r = await run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", copy, "--version"]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toBe(
      "pidone: cannot open its own file /proc/self/exe: permission denied (errno 13): the single file must be readable, not only executable (chmod 0755)\n",
    );
  }, 30_000);
});

// ------------------------------------------------------------------ Docker, FROM scratch

interface Flavour {
  arch: "amd64" | "arm64";
  image: string;
}
const flavours: Flavour[] = [
  { arch: "amd64", image: `${TAG}-amd64` },
  // No binfmt_misc here: the image carries qemu-user as its entrypoint, which runs
  // pidone-arm64 as PID 1 of the container; busybox (amd64) runs natively under it.
  { arch: "arm64", image: `${TAG}-arm64` },
];

async function imageFor(f: Flavour): Promise<string> {
  if (images.includes(f.image)) return f.image;
  const qemu = f.arch === "arm64" ? (await run(["sh", "-c", `command -v ${QEMU_ARM64}`])).stdout.trim() : "";
  await buildScratchImage({
    tag: f.image,
    pidone: null, // ldd would find host libraries; the single file must need none
    files: { "/pidone": file(`pidone-${f.arch}`), ...(qemu ? { "/qemu-aarch64": qemu } : {}) },
    entrypoint: qemu ? ["/qemu-aarch64", "/pidone", "--"] : ["/pidone", "--"],
  });
  images.push(f.image);
  return f.image;
}

const HARDENING: Record<string, string[]> = {
  "--read-only": ["--read-only"],
  "--user 65534": ["--user", "65534:65534"],
  "--cap-drop ALL --security-opt no-new-privileges": ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"],
  "--pids-limit 32": ["--pids-limit", "32"],
  "--ulimit nofile=64": ["--ulimit", "nofile=64:64"],
};
const ALL_HARDENING = Object.values(HARDENING).flat();

async function hostPid(container: string): Promise<number> {
  const r = await run(["docker", "inspect", "-f", "{{.State.Pid}}", container]);
  return Number(r.stdout.trim());
}

/** pidone (host pid) has started its child: its signal handlers are in place. */
async function childStarted(pid: number): Promise<boolean> {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim() !== "";
  } catch {
    return false;
  }
}

needs(DOCKER, DOCKER_ENGINE)("the single file in Docker, FROM scratch, as PID 1", () => {
  for (const f of flavours) {
    const slow = f.arch === "arm64" ? 3 : 1;

    test(`${f.arch}: argv with spaces and unicode, the environment and the exit code pass through`, async () => {
      const image = await imageFor(f);
      const r = await dockerRun(
        ["-e", "GREETING=hé llo  wörld", image, "/bin/sh", "-c", 'printf "[%s]" "$@"; echo; echo "$GREETING"; echo "pid=$$ parent=$PPID"; exit 42', "sh", "a b", "ünï cödé", ""],
        60_000 * slow,
      );
      expect(r.code, show(r)).toBe(42);
      expect(r.stdout).toMatch(/^\[a b\]\[ünï cödé\]\[\]\nhé llo  wörld\npid=\d+ parent=1\n$/);
    }, 90_000 * slow);

    test(`${f.arch}: a child killed by a signal ends the container with 128+n`, async () => {
      const r = await dockerRun([await imageFor(f), "/bin/sh", "-c", "kill -KILL $$"], 60_000 * slow);
      expect(r.code, show(r)).toBe(137);
    }, 60_000 * slow);

    test(`${f.arch}: reaps the zombies of orphaned grandchildren`, async () => {
      const r = await dockerRun([await imageFor(f), "/bin/sh", "-c", ORPHANS(20)], 60_000 * slow);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toContain("left=0\n");
    }, 60_000 * slow);

    test(`${f.arch}: docker stop ends a child without a TERM handler with 143, well before 10 s`, async () => {
      const image = await imageFor(f);
      const name = `${TAG}-stop-${f.arch}`;
      const started = await run(["docker", "run", "-d", "--name", name, "--network", "none", image, "/bin/sleep", "1000"]);
      expect(started.code, show(started)).toBe(0);
      try {
        const pid = await hostPid(name);
        await waitFor(() => childStarted(pid), 30_000 * slow, "pidone's child");
        const t0 = performance.now();
        const stop = await run(["docker", "stop", "-t", "10", name], { timeoutMs: 30_000 });
        const seconds = (performance.now() - t0) / 1000;
        expect(stop.code, show(stop)).toBe(0);
        expect(seconds).toBeLessThan(5);
        const code = await run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name]);
        expect(code.stdout.trim()).toBe("143");
      } finally {
        await run(["docker", "rm", "-f", name]);
      }
    }, 90_000 * slow);

    const variants = f.arch === "amd64" ? Object.entries(HARDENING) : [];
    for (const [label, flags] of [...variants, ["all of them together", ALL_HARDENING] as [string, string[]]]) {
      test(`${f.arch}: runs under ${label}`, async () => {
        // The child lists its own fds: the stub's memfds must not leak into it.
        const script = "echo ok; ls -l /proc/self/fd | grep -c memfd; exit 3";
        const r = await dockerRun([...flags, await imageFor(f), "/bin/sh", "-c", script], 60_000 * slow);
        expect(r.code, show(r)).toBe(3);
        expect(r.stdout).toBe("ok\n0\n");
      }, 60_000 * slow);
    }
  }

  test("the 110 MB runtime and its C libraries are shared page cache: two containers, Pss of /pidone about half its Rss", async () => {
    const image = await imageFor(flavours[0]!);
    const names = [1, 2].map((i) => `${TAG}-pss-${i}`);
    try {
      for (const name of names) {
        const r = await run(["docker", "run", "-d", "--name", name, "--network", "none", image, "/bin/sleep", "1000"]);
        expect(r.code, show(r)).toBe(0);
      }
      const pids = await Promise.all(names.map(hostPid));
      for (const pid of pids) await waitFor(() => childStarted(pid), 30_000, "pidone's child");
      for (const pid of pids) {
        let rss = 0;
        let pss = 0;
        let path = "";
        for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
          const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
          if (head) path = head[1] ?? "";
          else if (path.endsWith("/pidone") && line.startsWith("Rss:")) rss += Number(line.split(/\s+/)[1]);
          else if (path.endsWith("/pidone") && line.startsWith("Pss:")) pss += Number(line.split(/\s+/)[1]);
        }
        const memfd = readdirSync(`/proc/${pid}/fd`)
          .filter((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("/memfd:pidone:"))
          .reduce((n, fd) => n + statSync(`/proc/${pid}/fd/${fd}`).size, 0);
        console.log(`pidone pid ${pid}: /pidone Rss ${rss} kB, Pss ${pss} kB (${((100 * pss) / rss).toFixed(0)}%), memfd ${memfd} bytes`);
        expect(rss).toBeGreaterThan(5_000);
        expect(pss / rss).toBeGreaterThan(0.4);
        expect(pss / rss).toBeLessThan(0.6);
        // The C libraries too are mapped from the file once loaded: no memfd is left.
        expect(memfd).toBe(0);
      }
    } finally {
      await run(["docker", "rm", "-f", ...names]);
    }
  }, 90_000);
});

// ------------------------------------------------------------------ README install snippets

/** The ```dockerfile blocks of a Markdown file, in order. */
function dockerfileBlocks(path: string): string[] {
  return [...readFileSync(path, "utf8").matchAll(/```dockerfile\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test("the README quotes every install snippet unchanged, in order", () => {
  const tested = dockerfileBlocks(SNIPPETS);
  const readme = dockerfileBlocks(join(ROOT, "README.md"));
  expect(tested.length).toBe(3);
  const at = tested.map((s) => readme.indexOf(s));
  expect(at.every((i) => i >= 0), "a snippet of scripts/release-snippets.md is missing from README.md, or differs").toBe(true);
  expect(at).toEqual([...at].sort((x, y) => x - y));
});

needs(DOCKER, DOCKER_ENGINE)("the install snippets (scripts/release-snippets.md)", () => {
  let server: ReturnType<typeof Bun.serve> | null = null;
  let base = "";
  let context = "";
  const BASE_IMAGES = ["debian:bookworm-slim", "alpine:3.20", "busybox:stable-musl"];

  beforeAll(async () => {
    // A release server on loopback; /tampered/ serves checksums that do not match.
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        const tampered = path.startsWith("/tampered/");
        const name = path.replace(/^\/(tampered\/)?/, "");
        if (!/^[\w.-]+$/.test(name) || !existsSync(file(name))) return new Response("not found", { status: 404 });
        if (tampered && name.endsWith(".sha256")) return new Response(`${"0".repeat(64)}  ${name.replace(/\.sha256$/, "")}\n`);
        return new Response(Bun.file(file(name)));
      },
    });
    base = `http://127.0.0.1:${server.port}`;
    // Stand-in base images with a busybox shell, and with an image /lib that would break
    // anything loading it: the single file must not touch it.
    const junk = join(scratchDir("pidone-release-junk-"), "junk.so");
    writeFileSync(junk, "not a library\n");
    await buildScratchImage({
      tag: `${TAG}-base`,
      pidone: null,
      files: {
        "/lib64/ld-linux-x86-64.so.2": junk,
        "/lib/x86_64-linux-gnu/libc.so.6": junk,
        "/lib/ld-musl-x86_64.so.1": junk,
      },
      extra: ['RUN ["/bin/busybox", "--install", "-s", "/bin"]'],
    });
    images.push(`${TAG}-base`);
    context = scratchDir("pidone-release-snippet-");
    copyFileSync(await compileStatic("release-app"), join(context, "app"));
  }, 180_000);

  afterAll(() => {
    server?.stop(true);
  });

  const snippets = () => dockerfileBlocks(SNIPPETS);

  async function build(dockerfile: string, tag: string, url: string): Promise<RunResult> {
    let text = dockerfile.replaceAll(SNIPPET_BASE_URL, url);
    for (const b of BASE_IMAGES) text = text.replaceAll(`FROM ${b}`, `FROM ${TAG}-base`);
    expect(text).not.toContain("github.com");
    const d = join(context, tag);
    mkdirSync(d, { recursive: true });
    copyFileSync(join(context, "app"), join(d, "app"));
    writeFileSync(join(d, "Dockerfile"), text);
    // --no-cache: a cached RUN step prints nothing, and the checksum line is what we check.
    const r = await run(["docker", "build", "--no-cache", "--network", "none", "--build-arg", "TARGETARCH=amd64", "-t", tag, d], {
      timeoutMs: 180_000,
      env: { DOCKER_BUILDKIT: "0" },
    });
    images.push(tag);
    return r;
  }

  test("the file has three snippets, each naming the release URL", () => {
    const all = snippets();
    expect(all.length).toBe(3);
    for (const s of all) expect(s).toContain(SNIPPET_BASE_URL);
  });

  test("ADD <url> alone leaves the file 0600: the snippets' chmod is needed", async () => {
    const df = `FROM debian:bookworm-slim\nADD ${SNIPPET_BASE_URL}/pidone-amd64 /pidone\n`;
    const r = await build(df, `${TAG}-add-only`, base);
    expect(r.code, show(r)).toBe(0);
    const mode = await dockerRun(["--entrypoint", "/bin/stat", `${TAG}-add-only`, "-c", "%a", "/pidone"]);
    expect(mode.stdout.trim(), show(mode)).toBe("600");
  }, 180_000);

  for (const [i, name] of ["image with a shell", "FROM scratch, multi-stage", "TARGETARCH"].entries()) {
    test(`snippet ${i + 1} (${name}) builds against the release server and runs as an unprivileged user`, async () => {
      const snippet = snippets()[i]!;
      const tag = `${TAG}-snippet-${i + 1}`;
      const r = await build(snippet, tag, base);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toContain("/pidone: OK");
      const out = await dockerRun(["--user", "65534:65534", "--read-only", "--cap-drop", "ALL", tag]);
      expect(out.code, show(out)).toBe(0);
      expect(out.stdout).toMatch(i === 1 ? /^hello from \/app \(pid \d+, parent 1, 1 args\)\n$/ : /^hello from pidone\n$/);
    }, 180_000);
  }

  test("a checksum that does not match fails the build", async () => {
    const r = await build(snippets()[0]!, `${TAG}-tampered`, `${base}/tampered`);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/\/pidone: FAILED/);
  }, 180_000);
});
