// The release's pinned inputs (scripts/release/lock.json, scripts/release/lock.ts): the
// lock's shape, the glibc version read from a single file, and the two modes when
// Debian's archive has dropped the pinned libc6 - npm run release fails and says how to
// update the lock, every other build takes the archive's current libc6 for both
// architectures. Needs apt-get and Debian's archive (CI has them).
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PIDONE, tempDir } from "./helpers.ts";
import { NATIVE } from "./fixtures/native-lib.ts";
import { ARCHES, hostArch } from "../scripts/pack/arch.ts";
import { LOCK_PATH, embeddedLibc6, glibcVersionsIn, libc6For, lockedLibc6Available, readLock, type Lock } from "../scripts/release/lock.ts";
import pkg from "../package.json" with { type: "json" };

const lock = readLock();

describe("scripts/release/lock.json", () => {
  test("pins one libc6 and one Bun for both architectures, the Bun that package.json pins", () => {
    for (const arch of ARCHES) {
      expect(lock.libc6.debs[arch].file).toBe(`libc6_${lock.libc6.version}_${arch}.deb`);
      expect(lock.bun.runtimes[arch].sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(lock.bun.version).toBe(pkg.devDependencies.bun);
  });

  test("a lock with a missing hash is refused with one line naming the update", () => {
    const bad = JSON.parse(readFileSync(LOCK_PATH, "utf8")) as Lock;
    bad.libc6.debs.arm64.sha256 = "";
    const path = join(tempDir("pidone-lock-"), "lock.json");
    writeFileSync(path, JSON.stringify(bad));
    expect(() => readLock(path)).toThrow(/libc6\.debs\.arm64\.sha256 is not a sha256; run `bun scripts\/release\.ts --update-lock`/);
  });
});

test("the glibc version is read from ld.so's and libc's banners, and two versions in one file are refused", () => {
  const banner = (v: string) => `ld.so (Debian GLIBC ${v}) stable release version 2.36.\0GNU C Library (Debian GLIBC ${v}) stable`;
  expect(glibcVersionsIn(Buffer.from(`x\0${banner("2.36-9+deb12u13")}\0y`))).toEqual(["2.36-9+deb12u13"]);
  const mixed = join(tempDir("pidone-lock-"), "mixed");
  writeFileSync(mixed, `${banner("2.36-8")}\0${banner("2.36-9+deb12u13")}`);
  expect(() => embeddedLibc6(mixed)).toThrow(/several glibc versions \(2\.36-8, 2\.36-9\+deb12u13\)/);
});

test.if(NATIVE)("dist/pidone carries the lock's libc6 while Debian has it, and one version only", () => {
  const version = embeddedLibc6(PIDONE);
  if (lockedLibc6Available()) expect(version).toBe(lock.libc6.version);
  else expect(version).toMatch(/^\d+\.\d+-/);
});

describe("a lock whose libc6 has left Debian's archive", () => {
  const gone: Lock = {
    ...lock,
    libc6: {
      version: "2.0-0+pidone.gone",
      debs: { amd64: { file: "libc6_2.0-0+pidone.gone_amd64.deb", sha256: "0".repeat(64) }, arm64: { file: "libc6_2.0-0+pidone.gone_arm64.deb", sha256: "0".repeat(64) } },
    },
  };

  test("fails a release, saying how to update the lock", () => {
    expect(() => libc6For(ARCHES, "strict", gone)).toThrow(
      /^libc6 2\.0-0\+pidone\.gone, which scripts\/release\/lock\.json pins, is no longer in Debian's archive \(it now has amd64 \S+, arm64 \S+\): run `bun scripts\/release\.ts --update-lock`/,
    );
  });

  test("gives any other build the archive's current libc6, one version for both architectures", () => {
    const chosen = libc6For([hostArch()], "prefer", gone);
    try {
      expect(chosen.fromLock).toBe(false);
      expect(chosen.version).toMatch(/^\d+\.\d+-/);
      const libc = readFileSync(join(chosen.roots[hostArch()]!, "lib", hostArch() === "amd64" ? "x86_64-linux-gnu" : "aarch64-linux-gnu", "libc.so.6"));
      expect(glibcVersionsIn(new Uint8Array(libc))).toEqual([chosen.version]);
    } finally {
      chosen.dispose();
    }
  });
});
