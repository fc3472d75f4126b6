// What lets people trust a release (issue 16): GPG signatures checked with gpgv, SPDX
// SBOMs checked against SPDX 2.3's published schema and against the glibc the files
// embed, bytes that do not depend on where or when the release was built, and the image
// tarball loaded into Docker. The README's snippets for these (scripts/
// release-trust-snippets.md) are built offline against a local copy of the release,
// signed with a throwaway key made here; a tampered file and a wrong key must fail them.
//
// Builds its own release (a few seconds). Needs gpg and gpgv; without a Docker engine
// the Docker tests are skipped with a warning, or fail under CI (test/helpers.ts, needs).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DOCKER_ENGINE, buildScratchImage, dockerAvailable, dockerRun, sharedLibraries } from "./docker.ts";
import { ROOT, needs, run, tempDir, waitFor, type RunResult } from "./helpers.ts";
import { isoDate, releaseMeta } from "../scripts/release/meta.ts";
import { writeImage } from "../scripts/release/image.ts";
import { sha256, spdxDocument } from "../scripts/release/sbom.ts";
import pkg from "../package.json" with { type: "json" };

const SNIPPETS = join(ROOT, "scripts/release-trust-snippets.md");
const SNIPPET_BASE_URL = "https://github.com/OWNER/pidone/releases/download/v0.1.0";
const SNIPPET_IMAGE = "ghcr.io/OWNER/pidone:0.1.0";
/** The snippet's pin until the first signed release publishes the real keyring's sha256. */
const KEYRING_PIN = "KEYRING_SHA256";
const TAG = `pidone-trust-test-${process.pid}`;
const PASSPHRASE = "a throwaway passphrase";

const DOCKER = await dockerAvailable();
const scratch: string[] = [];
const images: string[] = [];
function scratchDir(prefix: string): string {
  const d = tempDir(prefix);
  scratch.push(d);
  return d;
}
function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

let dir = "";
const file = (name: string) => join(dir, name);
/** Two throwaway keys: the release's, and another one for the wrong-key case. */
const keys = { release: { home: "", secret: "", fingerprint: "" }, other: { home: "", keyring: "" } };

async function gpg(home: string, args: string[]): Promise<RunResult> {
  const r = await run(["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", ...args], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`gpg ${args.join(" ")}: ${show(r)}`);
  return r;
}

async function makeKey(name: string, passphrase: string): Promise<string> {
  const home = scratchDir("pidone-trust-gpg-");
  await gpg(home, ["--passphrase", passphrase, "--quick-generate-key", `${name} <${name}@pidone.invalid>`, "ed25519", "sign", "1d"]);
  return home;
}

function release(out: string, env: Record<string, string | undefined>, args: string[] = []) {
  // HOME: Bun keeps the cross-compilation runtimes in ~/.bun.
  return run([process.execPath, "scripts/release.ts", "--out", out, ...args], {
    cwd: ROOT,
    env: { HOME: process.env.HOME, ...env },
    timeoutMs: 600_000,
  });
}

beforeAll(async () => {
  keys.release.home = await makeKey("pidone-release-test", PASSPHRASE);
  keys.release.secret = join(keys.release.home, "secret.asc");
  const secret = await gpg(keys.release.home, ["--passphrase", PASSPHRASE, "--armor", "--export-secret-keys"]);
  writeFileSync(keys.release.secret, secret.stdout);
  const listed = await gpg(keys.release.home, ["--with-colons", "--list-keys"]);
  keys.release.fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listed.stdout)![1]!;
  keys.other.home = await makeKey("someone-else", "");
  keys.other.keyring = join(keys.other.home, "other.gpg");
  // Binary: to a file (run() decodes output as text).
  await gpg(keys.other.home, ["--yes", "--output", keys.other.keyring, "--export"]);

  dir = scratchDir("pidone-trust-release-");
  const r = await release(dir, { PIDONE_SIGNING_KEY: keys.release.secret, PIDONE_SIGNING_PASSPHRASE: PASSPHRASE });
  if (r.code !== 0) throw new Error(`npm run release failed:\n${show(r)}`);
}, 600_000);

afterAll(async () => {
  if (images.length) await run(["docker", "rmi", "-f", ...images], { timeoutMs: 60_000 });
  for (const home of [keys.release.home, keys.other.home])
    if (home) await run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"]);
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

const listed = () =>
  readFileSync(file("SHA256SUMS"), "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split("  ")[1]!);

// ------------------------------------------------------------------ signatures

describe("signatures", () => {
  test("every release file and SHA256SUMS has a detached armoured signature that gpgv accepts with the binary keyring", async () => {
    const signed = [...listed(), "SHA256SUMS"];
    expect(signed.length).toBe(12 + 1);
    for (const name of signed) {
      expect(readFileSync(file(`${name}.asc`), "utf8")).toStartWith("-----BEGIN PGP SIGNATURE-----\n");
      const r = await run(["gpgv", "--keyring", file("pidone-signing-key.gpg"), file(`${name}.asc`), file(name)]);
      expect(r.code, `${name}: ${show(r)}`).toBe(0);
    }
  }, 120_000);

  test("the public key ships armoured and as a keyring, with the signing key's fingerprint", async () => {
    expect(readFileSync(file("pidone-signing-key.asc"), "utf8")).toStartWith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n");
    const home = scratchDir("pidone-trust-import-");
    for (const key of ["pidone-signing-key.asc", "pidone-signing-key.gpg"]) {
      const r = await run(["gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys", file(key)]);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toContain(`fpr:::::::::${keys.release.fingerprint}:`);
      expect(r.stdout).not.toMatch(/^sec:/m);
    }
  }, 60_000);

  test("gpgv rejects a changed file, another key, and the armoured key as a keyring", async () => {
    const d = scratchDir("pidone-trust-bad-");
    const copy = join(d, "SHA256SUMS");
    writeFileSync(copy, readFileSync(file("SHA256SUMS"), "utf8").replace(/^./, (c) => (c === "0" ? "1" : "0")));
    const changed = await run(["gpgv", "--keyring", file("pidone-signing-key.gpg"), file("SHA256SUMS.asc"), copy]);
    expect(changed.code, show(changed)).not.toBe(0);
    expect(changed.stderr).toContain("BAD signature");
    const other = await run(["gpgv", "--keyring", keys.other.keyring, file("SHA256SUMS.asc"), file("SHA256SUMS")]);
    expect(other.code, show(other)).not.toBe(0);
    expect(other.stderr).toContain("No public key");
    const armoured = await run(["gpgv", "--keyring", file("pidone-signing-key.asc"), file("SHA256SUMS.asc"), file("SHA256SUMS")]);
    expect(armoured.code, show(armoured)).not.toBe(0);
  }, 60_000);

  test("without a key the release says it is unsigned, and its files are the signed release's, byte for byte", async () => {
    // Another directory, another time zone and umask: nothing of it may reach the bytes.
    const d = scratchDir("pidone-trust-unsigned-");
    const out = join(d, "some", "other", "path");
    const r = await run(["sh", "-c", 'umask 027; exec "$@"', "sh", process.execPath, "scripts/release.ts", "--out", out, "--arch", "amd64"], {
      cwd: ROOT,
      env: { HOME: process.env.HOME, TZ: "Pacific/Kiritimati", LC_ALL: "C" },
      timeoutMs: 600_000,
    });
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain("release: UNSIGNED: PIDONE_SIGNING_KEY is not set");
    const names = readdirSync(out);
    expect(names.filter((n) => n.endsWith(".asc") || n.startsWith("pidone-signing-key"))).toEqual([]);
    const shared = names.filter((n) => n !== "SHA256SUMS");
    expect(shared.length).toBe(3 * 3); // two executables and the image, their SBOMs and .sha256 files
    for (const n of shared) expect(sha256(readFileSync(join(out, n))), n).toBe(sha256(readFileSync(file(n))));
  }, 600_000);

  test("a wrong passphrase fails the release with one line", async () => {
    const d = scratchDir("pidone-trust-wrongpass-");
    const r = await release(d, { PIDONE_SIGNING_KEY: keys.release.secret, PIDONE_SIGNING_PASSPHRASE: "not it" }, ["--arch", "amd64"]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toMatch(/^release: signing failed: gpg .*Bad passphrase.*$/m);
    expect(r.stderr.split("\n").filter((l) => l.startsWith("release: signing failed")).length).toBe(1);
  }, 600_000);
});

// ------------------------------------------------------------------ SBOM

function embeddedGlibcVersion(path: string): string {
  // Independent of sbom.ts: the banner `strings FILE | grep 'GNU C Library'` shows.
  const m = /GNU C Library \(Debian GLIBC ([^)]+)\) stable release/.exec(readFileSync(path).toString("latin1"));
  if (!m) throw new Error(`${path}: no glibc banner`);
  return m[1]!;
}

describe("the SBOMs", () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(
    JSON.parse(readFileSync(join(ROOT, "scripts/release/spdx-2.3.schema.json"), "utf8")),
  );
  const sbom = (name: string) => JSON.parse(readFileSync(file(`${name}.spdx.json`), "utf8"));
  const pkgNamed = (doc: any, name: string) => doc.packages.find((p: any) => p.name === name);

  test("one per release file, each valid against SPDX 2.3's JSON schema", () => {
    const files = listed().filter((n) => !n.endsWith(".spdx.json"));
    expect(files.length).toBe(6);
    for (const n of files) {
      const ok = validate(sbom(n));
      expect(ok, `${n}.spdx.json: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  test("name pidone's version, commit and checksum, dated at the commit", async () => {
    const commit = (await run(["git", "-C", ROOT, "rev-parse", "HEAD"])).stdout.trim();
    const when = Number((await run(["git", "-C", ROOT, "log", "-1", "--format=%ct"])).stdout.trim());
    for (const n of ["pidone-amd64", "pidone-arm64-glibc"]) {
      const doc = sbom(n);
      expect(doc.creationInfo.created).toBe(isoDate(when));
      expect(doc.documentNamespace).toContain(sha256(readFileSync(file(n))));
      const pidone = pkgNamed(doc, "pidone");
      expect(pidone.versionInfo).toBe(pkg.version);
      expect(pidone.sourceInfo).toContain(commit);
      expect(pidone.checksums).toEqual([{ algorithm: "SHA256", checksumValue: sha256(readFileSync(file(n))) }]);
    }
  });

  test("the single files name the Debian package libc6 at the version they embed; the -glibc files carry none", () => {
    for (const arch of ["amd64", "arm64"]) {
      const embedded = embeddedGlibcVersion(file(`pidone-${arch}`));
      for (const n of [`pidone-${arch}`, `pidone-${arch}-image.tar`]) {
        const libc6 = pkgNamed(sbom(n), "libc6");
        expect(libc6.versionInfo, n).toBe(embedded);
        const purl = libc6.externalRefs.find((r: any) => r.referenceType === "purl").referenceLocator;
        expect(purl).toStartWith(`pkg:deb/debian/libc6@${encodeURIComponent(embedded)}?arch=${arch}`);
        expect(pkgNamed(sbom(n), "pidone-stub")).toBeDefined();
      }
      expect(pkgNamed(sbom(`pidone-${arch}-glibc`), "libc6")).toBeUndefined();
      console.log(`pidone-${arch}: libc6 ${embedded}`);
    }
  });

  test("name the Bun runtime and the bundled npm packages with their licences", () => {
    for (const n of ["pidone-amd64", "pidone-arm64-glibc"]) {
      const doc = sbom(n);
      const bun = pkgNamed(doc, "bun");
      expect(bun.versionInfo).toBe(pkg.devDependencies.bun);
      expect(bun.comment).toContain(n.includes("amd64") ? "bun-linux-x64-baseline" : "bun-linux-arm64");
      expect(bun.checksums?.[0]?.checksumValue).toMatch(/^[0-9a-f]{64}$/);
      for (const [name, version] of Object.entries(pkg.dependencies)) {
        const p = pkgNamed(doc, name);
        expect(p?.versionInfo, name).toBe(version);
        expect(p.licenseDeclared).toBe(JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).license);
      }
      const contained = doc.relationships.filter((r: any) => r.relationshipType === "CONTAINS").map((r: any) => r.relatedSpdxElement);
      expect(contained).toContain(bun.SPDXID);
    }
  });

  test("with scripts/release/lock.json they name the pinned .deb and runtime, and refuse a glibc the lock does not pin", () => {
    // A stand-in checkout: the files sbom.ts reads, and a lock in the shape the release pins.
    const fake = scratchDir("pidone-trust-lock-");
    for (const f of ["package.json", "package-lock.json", "src/native/stub.c"]) {
      mkdirSync(join(fake, f, ".."), { recursive: true });
      copyFileSync(join(ROOT, f), join(fake, f));
    }
    mkdirSync(join(fake, "scripts/release"), { recursive: true });
    const deb = { file: "libc6_2.36-9+deb12u99_arm64.deb", sha256: "ab".repeat(32) };
    const runtime = { target: "bun-linux-arm64", package: "@oven/bun-linux-aarch64", integrity: "sha512-AAAA", sha256: "cd".repeat(32) };
    const lock = {
      libc6: { version: "2.36-9+deb12u99", debs: { amd64: { ...deb, file: "libc6_2.36-9+deb12u99_amd64.deb" }, arm64: deb } },
      bun: { version: pkg.devDependencies.bun, runtimes: { amd64: { ...runtime, target: "bun-linux-x64-baseline" }, arm64: runtime } },
    };
    writeFileSync(join(fake, "scripts/release/lock.json"), JSON.stringify(lock));
    const meta = { ...releaseMeta(ROOT), epoch: 1_700_000_000 };
    const subject = { name: "pidone-arm64", sha256: "ef".repeat(32), arch: "arm64" as const, single: true, glibc: "2.36-9+deb12u99" };
    const doc: any = spdxDocument(fake, meta, subject);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const libc6 = pkgNamed(doc, "libc6");
    expect(libc6.packageFileName).toBe(deb.file);
    expect(libc6.checksums).toEqual([{ algorithm: "SHA256", checksumValue: deb.sha256 }]);
    const bun = pkgNamed(doc, "bun");
    expect(bun.checksums).toEqual([{ algorithm: "SHA256", checksumValue: runtime.sha256 }]);
    expect(bun.externalRefs[0].referenceLocator).toBe(`pkg:npm/%40oven/bun-linux-aarch64@${pkg.devDependencies.bun}`);
    expect(() => spdxDocument(fake, meta, { ...subject, glibc: "2.36-8" })).toThrow(
      "the arm64 single file embeds glibc 2.36-8, but scripts/release/lock.json pins libc6 2.36-9+deb12u99",
    );
  });

  test("the same inputs give the same bytes: no clock, no path, ids from content hashes", () => {
    const d = scratchDir("pidone-trust-determinism-");
    const input = join(d, "pidone-amd64");
    // The repository's lock names the libc6 a single file must embed.
    const glibc: string = JSON.parse(readFileSync(join(ROOT, "scripts/release/lock.json"), "utf8")).libc6.version;
    writeFileSync(input, `not really pidone\nGNU C Library (Debian GLIBC ${glibc}) stable release version 2.36.\n`);
    const meta = { ...releaseMeta(ROOT), epoch: 1_700_000_000 };
    const subject = { name: "pidone-amd64", sha256: sha256(readFileSync(input)), arch: "amd64" as const, single: true, glibc };
    const a = JSON.stringify(spdxDocument(ROOT, meta, subject));
    const b = JSON.stringify(spdxDocument(ROOT, meta, subject));
    expect(a).toBe(b);
    expect(a).toContain('"created":"2023-11-14T22:13:20Z"');
    expect(a).not.toContain(ROOT);
    const one = writeImage(meta, "amd64", input, join(d, "one.tar"));
    const two = writeImage(meta, "amd64", input, join(d, "two.tar"));
    expect(one.id).toBe(two.id);
    expect(sha256(readFileSync(one.path))).toBe(sha256(readFileSync(two.path)));
    const other = writeImage({ ...meta, epoch: meta.epoch + 1 }, "amd64", input, join(d, "three.tar"));
    expect(other.id).not.toBe(one.id);
  });
});

// ------------------------------------------------------------------ the image

/** Loads the release's image tarball for `arch` and tags it `${TAG}-image:${arch}`. */
async function loadImage(arch: "amd64" | "arm64"): Promise<string> {
  const local = `${TAG}-image:${arch}`;
  if (images.includes(local)) return local;
  const r = await run(["docker", "load", "-i", file(`pidone-${arch}-image.tar`)], { timeoutMs: 180_000 });
  expect(r.code, show(r)).toBe(0);
  const loaded = /^Loaded image: (\S+)$/m.exec(r.stdout)?.[1];
  expect(loaded, show(r)).toBe(`${releaseMeta(ROOT).imageName}:${pkg.version}-${arch}`);
  expect((await run(["docker", "tag", loaded!, local])).code).toBe(0);
  await run(["docker", "rmi", loaded!]); // untags only: the local name keeps the image
  images.push(local);
  return local;
}

needs(DOCKER, DOCKER_ENGINE)("the image tarball", () => {
  test("docker load accepts both architectures; the image has the OCI labels and runs /pause by default", async () => {
    const meta = releaseMeta(ROOT);
    for (const arch of ["amd64", "arm64"] as const) {
      const image = await loadImage(arch);
      const r = await run(["docker", "image", "inspect", "-f", "{{.Architecture}}\t{{json .Config.Cmd}}\t{{len .RootFS.Layers}}\t{{json .Config.Labels}}", image]);
      expect(r.code, show(r)).toBe(0);
      const [architecture, cmd, layers, labels] = r.stdout.trim().split("\t");
      expect(architecture).toBe(arch);
      expect(cmd).toBe('["/pause"]');
      expect(layers).toBe("1");
      expect(JSON.parse(labels!)).toMatchObject({
        "org.opencontainers.image.source": meta.sourceUrl,
        "org.opencontainers.image.version": pkg.version,
        "org.opencontainers.image.revision": meta.commit,
        "org.opencontainers.image.licenses": pkg.license,
      });
    }
  }, 360_000);

  test("it holds only /pidone and /pause, one file with two names, from SOURCE_DATE_EPOCH", async () => {
    const image = await loadImage("amd64");
    const name = `${TAG}-export`;
    const created = await run(["docker", "create", "--name", name, image]);
    expect(created.code, show(created)).toBe(0);
    try {
      const listing = await run(["sh", "-c", `docker export ${name} | tar -tv --numeric-owner --full-time`], {
        env: { TZ: "UTC" },
        timeoutMs: 120_000,
      });
      expect(listing.code, show(listing)).toBe(0);
      // Docker adds its own mount points (/dev, /proc, /etc/hosts...) to a container's
      // export; the image's files are the rest.
      const ours = listing.stdout.split("\n").filter((l) => / (pidone|pause)( link to pidone)?$/.test(l));
      expect(ours.length).toBe(2);
      const when = isoDate(releaseMeta(ROOT).epoch).replace("T", " ").replace("Z", "");
      // Docker's export picks which of the two names holds the data.
      const size = readFileSync(file("pidone-amd64")).length;
      const file1 = ours.find((l) => l.startsWith("-"));
      const link = ours.find((l) => l.startsWith("h"));
      expect(file1, listing.stdout).toMatch(new RegExp(`^-rwxr-xr-x 0/0 +${size} ${when} (pidone|pause)$`));
      const holder = file1!.split(" ").at(-1);
      const other = holder === "pidone" ? "pause" : "pidone";
      expect(link, listing.stdout).toMatch(new RegExp(`^hrwxr-xr-x 0/0 +0 ${when} ${other} link to ${holder}$`));
    } finally {
      await run(["docker", "rm", "-f", name]);
    }
    // The layer as the release wrote it.
    const tarball = file("pidone-amd64-image.tar");
    const manifest = JSON.parse((await run(["tar", "-xOf", tarball, "manifest.json"])).stdout);
    const layer = await run(["sh", "-c", `tar -xOf "$0" "$1" | tar -tv --numeric-owner --full-time`, tarball, manifest[0].Layers[0]], {
      env: { TZ: "UTC" },
      timeoutMs: 60_000,
    });
    const when = isoDate(releaseMeta(ROOT).epoch).replace("T", " ").replace("Z", "");
    expect(layer.stdout.replace(/ +/g, " ")).toBe(
      `-rwxr-xr-x 0/0 ${readFileSync(file("pidone-amd64")).length} ${when} pidone\nhrwxr-xr-x 0/0 0 ${when} pause link to pidone\n`,
    );
  }, 180_000);
});

// ------------------------------------------------------------------ README snippets

/** The ```dockerfile blocks of a Markdown file, in order. */
function dockerfileBlocks(path: string): string[] {
  return [...readFileSync(path, "utf8").matchAll(/```dockerfile\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test("the README quotes every signature and image snippet unchanged, in order", () => {
  const tested = dockerfileBlocks(SNIPPETS);
  const readme = dockerfileBlocks(join(ROOT, "README.md"));
  expect(tested.length).toBe(3);
  const at = tested.map((s) => readme.indexOf(s));
  expect(at.every((i) => i >= 0), "a snippet of scripts/release-trust-snippets.md is missing from README.md, or differs").toBe(true);
  expect(at).toEqual([...at].sort((x, y) => x - y));
});

needs(DOCKER, DOCKER_ENGINE)("the signature and image snippets (scripts/release-trust-snippets.md)", () => {
  let server: ReturnType<typeof Bun.serve> | null = null;
  let base = "";
  let context = "";
  let tampered: Uint8Array;
  const snippets = () => dockerfileBlocks(SNIPPETS);

  beforeAll(async () => {
    // A release server on loopback (the daemon fetches ADD URLs, so --network none holds):
    // /tampered/ serves pidone-amd64 with one byte changed, /wrongkey/ another key's keyring.
    const original = readFileSync(file("pidone-amd64"));
    tampered = new Uint8Array(original);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        const [, variant, name] = /^\/(?:(tampered|wrongkey)\/)?([\w.-]+)$/.exec(path) ?? [];
        if (!name || !existsSync(file(name))) return new Response("not found", { status: 404 });
        if (variant === "tampered" && name === "pidone-amd64") return new Response(tampered);
        if (variant === "wrongkey" && name === "pidone-signing-key.gpg") return new Response(Bun.file(keys.other.keyring));
        return new Response(Bun.file(file(name)));
      },
    });
    base = `http://127.0.0.1:${server.port}`;
    // The stand-in for debian:bookworm-slim: busybox for the shell and coreutils, and the
    // host's (Debian's) gpgv with its libraries.
    const gpgv = (await run(["sh", "-c", "command -v gpgv"])).stdout.trim();
    const libs = Object.fromEntries([gpgv, ...sharedLibraries(gpgv)].map((p) => [p, p]));
    await buildScratchImage({ tag: `${TAG}-debian`, pidone: null, files: libs, extra: ['RUN ["/bin/busybox", "--install", "-s", "/bin"]'] });
    images.push(`${TAG}-debian`);
    context = scratchDir("pidone-trust-snippet-");
    const app = join(context, "app");
    const cc = await run(["cc", "-O2", "-static", "-o", app, join(ROOT, "test/fixtures/release-app.c")]);
    if (cc.code !== 0) throw new Error(`cc release-app.c failed:\n${show(cc)}`);
  }, 300_000);

  afterAll(() => {
    server?.stop(true);
  });

  async function build(snippet: string, tag: string, opts: { url?: string; pin?: string } = {}): Promise<RunResult> {
    const text = snippet
      .replaceAll(SNIPPET_BASE_URL, opts.url ?? base)
      .replaceAll("FROM debian:bookworm-slim", `FROM ${TAG}-debian`)
      .replaceAll(SNIPPET_IMAGE, `${TAG}-image:amd64`)
      .replaceAll(KEYRING_PIN, opts.pin ?? sha256(readFileSync(file("pidone-signing-key.gpg"))));
    expect(text).not.toContain("github.com");
    expect(text).not.toContain("ghcr.io");
    const d = join(context, tag);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    copyFileSync(join(context, "app"), join(d, "app"));
    writeFileSync(join(d, "Dockerfile"), text);
    const r = await run(["docker", "build", "--no-cache", "--network", "none", "-t", tag, d], {
      timeoutMs: 300_000,
      env: { DOCKER_BUILDKIT: "0" },
    });
    images.push(tag);
    return r;
  }

  test("three snippets: the signature check, COPY --from for /pidone, and for /pause", () => {
    const [sig, pidone, pause] = snippets();
    expect(sig).toContain(SNIPPET_BASE_URL);
    expect(sig).toContain(KEYRING_PIN);
    expect(pidone).toContain(`COPY --from=${SNIPPET_IMAGE} /pidone /pidone`);
    expect(pause).toContain(`COPY --from=${SNIPPET_IMAGE} /pause /pause`);
  });

  test("the signature snippet builds against the signed release and runs as an unprivileged user", async () => {
    const tag = `${TAG}-verified`;
    const r = await build(snippets()[0]!, tag);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout + r.stderr).toContain("/pidone-signing-key.gpg: OK");
    expect(r.stdout + r.stderr).toContain(`Good signature from "pidone-release-test`);
    const out = await dockerRun(["--user", "65534:65534", "--read-only", "--cap-drop", "ALL", tag]);
    expect(out.code, show(out)).toBe(0);
    expect(out.stdout).toMatch(/^hello from \/app \(pid \d+, parent 1, 1 args\)\n$/);
  }, 300_000);

  test("a tampered file fails the build", async () => {
    const r = await build(snippets()[0]!, `${TAG}-tampered`, { url: `${base}/tampered` });
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("BAD signature");
  }, 300_000);

  test("a signature checked against another key fails the build, even with that keyring pinned", async () => {
    const r = await build(snippets()[0]!, `${TAG}-wrongkey`, { url: `${base}/wrongkey`, pin: sha256(readFileSync(keys.other.keyring)) });
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("No public key");
  }, 300_000);

  test("a keyring other than the pinned one fails the build at sha256sum", async () => {
    const r = await build(snippets()[0]!, `${TAG}-wrongpin`, { url: `${base}/wrongkey` });
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("/pidone-signing-key.gpg: FAILED");
  }, 300_000);

  test("COPY --from the image for /pidone builds with no network and runs", async () => {
    await loadImage("amd64");
    const tag = `${TAG}-copy-pidone`;
    const r = await build(snippets()[1]!, tag);
    expect(r.code, show(r)).toBe(0);
    const out = await dockerRun(["--user", "65534:65534", "--read-only", "--cap-drop", "ALL", tag]);
    expect(out.code, show(out)).toBe(0);
    expect(out.stdout).toBe("hello from pidone\n");
  }, 300_000);

  for (const [label, fromSnippet] of [["the /pause snippet", true], ["the image itself", false]] as const) {
    test(`${label} is a pause container: PID 1 stays, docker stop ends it with 0`, async () => {
      const image = await loadImage("amd64");
      let tag = image;
      if (fromSnippet) {
        tag = `${TAG}-copy-pause`;
        const r = await build(snippets()[2]!, tag);
        expect(r.code, show(r)).toBe(0);
      }
      const name = `${TAG}-pod-${fromSnippet ? "snippet" : "image"}`;
      const started = await run(["docker", "run", "-d", "--name", name, "--network", "none", tag]);
      expect(started.code, show(started)).toBe(0);
      try {
        const pid = Number((await run(["docker", "inspect", "-f", "{{.State.Pid}}", name])).stdout.trim());
        expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toBe("/pause\0");
        // A container started in its PID namespace sees it as PID 1.
        const peer = await dockerRun(["--pid", `container:${name}`, `${TAG}-debian`, "cat", "/proc/1/cmdline"]);
        expect(peer.code, show(peer)).toBe(0);
        expect(peer.stdout).toBe("/pause\0");
        const t0 = performance.now();
        const stop = await run(["docker", "stop", "-t", "10", name], { timeoutMs: 30_000 });
        expect(stop.code, show(stop)).toBe(0);
        expect((performance.now() - t0) / 1000).toBeLessThan(5);
        const code = await waitFor(async () => (await run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name])).stdout.trim(), 10_000);
        expect(code).toBe("0");
      } finally {
        await run(["docker", "rm", "-f", name]);
      }
    }, 300_000);
  }
});
