// One SPDX 2.3 JSON document per release file (<file>.spdx.json): pidone (version,
// commit), the Bun runtime the executable is built on (version, target, sha256), for the
// single file the Debian package libc6 whose ld.so and libraries it carries (the name and
// version scanners match glibc advisories against) and the stub, and the npm packages
// bundled. Dates come from SOURCE_DATE_EPOCH and the document's namespace from the
// file's sha256: the same file always gets the same bytes.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { ARCH_INFO, type Arch } from "../pack/arch.ts";
import { isoDate, readLock, type ReleaseMeta } from "./meta.ts";

export type Sha256 = string;

export function sha256(bytes: Uint8Array): Sha256 {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The glibc Debian version a file carries, from libc's banner ("GNU C Library (Debian GLIBC 2.36-9+deb12u14) ..."). */
export function embeddedGlibc(bytes: Uint8Array): string | null {
  const banner = Buffer.from("GNU C Library (Debian GLIBC ");
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = buf.indexOf(banner);
  if (at < 0) return null;
  const end = buf.indexOf(")", at + banner.length);
  return end < 0 ? null : buf.toString("latin1", at + banner.length, end);
}

export interface SbomSubject {
  /** The release file's name, e.g. pidone-amd64 or pidone-amd64-image.tar. */
  name: string;
  sha256: Sha256;
  arch: Arch;
  /** The single file (stub and C libraries) rather than the plain -glibc executable. */
  single: boolean;
  /** The glibc version the single file embeds (embeddedGlibc). */
  glibc?: string;
  /** An image: the single file it holds, as /pidone and /pause. */
  image?: { file: string; sha256: Sha256 };
}

interface Package {
  SPDXID: string;
  name: string;
  [key: string]: unknown;
}

const purlVersion = (v: string) => encodeURIComponent(v);
/** A purl keeps a scoped package's "/" between namespace and name: pkg:npm/%40oven/bun-linux-x64. */
const npmPurlName = (name: string) => name.split("/").map(encodeURIComponent).join("/");

function bunPackage(root: string, arch: Arch): Package {
  const lock = readLock(root)?.bun;
  const pinned = lock?.runtimes[arch];
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const version = lock?.version ?? String(pkg.devDependencies?.bun ?? "").replace(/^[\^~]/, "");
  const target = pinned?.target ?? ARCH_INFO[arch].bunTarget;
  let digest = pinned?.sha256;
  if (!digest) {
    // Without a lock, the runtime bun build --compile took from Bun's cache (it names
    // arm64 aarch64 there).
    const cache = join(process.env.BUN_INSTALL ?? join(homedir(), ".bun"), "install/cache");
    const names = [`${target}-v${version}`, `${target.replace("arm64", "aarch64")}-v${version}`];
    const found = names.map((n) => join(cache, n)).find((p) => existsSync(p));
    if (found) digest = sha256(readFileSync(found));
  }
  const npmName = pinned?.package;
  return {
    SPDXID: "SPDXRef-Package-bun-runtime",
    name: "bun",
    versionInfo: version,
    supplier: "Organization: Oven (https://bun.sh)",
    downloadLocation: npmName
      ? `https://registry.npmjs.org/${npmName}/-/${basename(npmName)}-${version}.tgz`
      : `https://github.com/oven-sh/bun/releases/tag/bun-v${version}`,
    filesAnalyzed: false,
    ...(digest ? { checksums: [{ algorithm: "SHA256", checksumValue: digest }] } : {}),
    licenseConcluded: "NOASSERTION",
    licenseDeclared: "MIT",
    copyrightText: "NOASSERTION",
    primaryPackagePurpose: "APPLICATION",
    comment: `the runtime of bun build --compile --target=${target}${digest ? "; the checksum is the runtime executable's" : ""}`,
    externalRefs: [
      {
        referenceCategory: "PACKAGE-MANAGER",
        referenceType: "purl",
        referenceLocator: npmName ? `pkg:npm/${npmPurlName(npmName)}@${purlVersion(version)}` : `pkg:github/oven-sh/bun@bun-v${version}`,
      },
    ],
  };
}

function libc6Package(root: string, arch: Arch, embedded: string): Package {
  const lock = readLock(root)?.libc6;
  if (lock && lock.version !== embedded)
    throw new Error(`the ${arch} single file embeds glibc ${embedded}, but scripts/release/lock.json pins libc6 ${lock.version}`);
  const deb = lock?.debs[arch];
  const upstream = embedded.replace(/-[^-]*$/, "");
  // Debian 12 ships glibc 2.36; a purl names the distribution release for scanners.
  const distro = upstream === "2.36" ? "&distro=debian-12" : "";
  return {
    SPDXID: "SPDXRef-Package-deb-libc6",
    name: "libc6",
    versionInfo: embedded,
    supplier: "Organization: Debian",
    downloadLocation: "NOASSERTION",
    ...(deb ? { packageFileName: deb.file, checksums: [{ algorithm: "SHA256", checksumValue: deb.sha256 }] } : {}),
    filesAnalyzed: false,
    licenseConcluded: "NOASSERTION",
    licenseDeclared: "LGPL-2.1-or-later",
    copyrightText: "NOASSERTION",
    primaryPackagePurpose: "LIBRARY",
    comment: `ld.so, libc, libm, libpthread and libdl of Debian's libc6:${arch}, appended to the single file and loaded by its stub`,
    externalRefs: [
      { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: `pkg:deb/debian/libc6@${purlVersion(embedded)}?arch=${arch}${distro}` },
      { referenceCategory: "SECURITY", referenceType: "cpe23Type", referenceLocator: `cpe:2.3:a:gnu:glibc:${upstream}:*:*:*:*:*:*:*` },
    ],
  };
}

/** The npm packages bundled: package-lock.json's production dependencies. */
function npmPackages(root: string): Package[] {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
  const out: Package[] = [];
  for (const [key, p] of Object.entries<any>(lock.packages ?? {})) {
    if (!key.startsWith("node_modules/") || p.dev || p.optional) continue;
    const name = key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    const sha512 = /^sha512-(.+)$/.exec(p.integrity ?? "")?.[1];
    out.push({
      SPDXID: `SPDXRef-Package-npm-${name.replace(/[^A-Za-z0-9.]+/g, "-")}`,
      name,
      versionInfo: p.version,
      downloadLocation: p.resolved ?? `https://registry.npmjs.org/${name}/-/${basename(name)}-${p.version}.tgz`,
      filesAnalyzed: false,
      ...(sha512 ? { checksums: [{ algorithm: "SHA512", checksumValue: Buffer.from(sha512, "base64").toString("hex") }] } : {}),
      licenseConcluded: "NOASSERTION",
      licenseDeclared: p.license ?? "NOASSERTION",
      copyrightText: "NOASSERTION",
      primaryPackagePurpose: "LIBRARY",
      comment: "bundled into the executable's JavaScript by bun build",
      externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: `pkg:npm/${npmPurlName(name)}@${purlVersion(p.version)}` }],
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export function spdxDocument(root: string, meta: ReleaseMeta, subject: SbomSubject): object {
  const date = isoDate(meta.epoch);
  const download = `${meta.sourceUrl}/releases/download/v${meta.version}`;
  const pidoneFile = subject.image?.file ?? subject.name;
  const pidone: Package = {
    SPDXID: "SPDXRef-Package-pidone",
    name: "pidone",
    versionInfo: meta.version,
    packageFileName: pidoneFile,
    downloadLocation: `${download}/${pidoneFile}`,
    filesAnalyzed: false,
    checksums: [{ algorithm: "SHA256", checksumValue: subject.image?.sha256 ?? subject.sha256 }],
    homepage: meta.sourceUrl,
    sourceInfo: `built from commit ${meta.commit} of ${meta.sourceUrl}`,
    licenseConcluded: meta.license,
    licenseDeclared: meta.license,
    copyrightText: "NOASSERTION",
    builtDate: date,
    primaryPackagePurpose: "APPLICATION",
    externalRefs: [
      { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: `pkg:github/${meta.sourceUrl.replace("https://github.com/", "")}@v${meta.version}` },
    ],
  };
  const parts: Package[] = [bunPackage(root, subject.arch), ...npmPackages(root)];
  if (subject.single) {
    if (!subject.glibc) throw new Error(`${pidoneFile} carries no "GNU C Library (Debian GLIBC ...)" banner`);
    const stub = readFileSync(join(root, "src/native/stub.c"));
    parts.push(libc6Package(root, subject.arch, subject.glibc), {
      SPDXID: "SPDXRef-Package-pidone-stub",
      name: "pidone-stub",
      versionInfo: meta.version,
      downloadLocation: "NOASSERTION",
      filesAnalyzed: false,
      sourceInfo: `src/native/stub.c (sha256 ${sha256(stub)}) at commit ${meta.commit}`,
      licenseConcluded: meta.license,
      licenseDeclared: meta.license,
      copyrightText: "NOASSERTION",
      primaryPackagePurpose: "APPLICATION",
      comment: "the freestanding loader and native helper the single file starts with",
    });
  }
  const packages = [pidone, ...parts];
  const relationships = parts.map((p) => ({
    spdxElementId: pidone.SPDXID,
    relationshipType: "CONTAINS",
    relatedSpdxElement: p.SPDXID,
  }));
  let top = pidone;
  if (subject.image) {
    top = {
      SPDXID: "SPDXRef-Package-pidone-image",
      name: meta.imageName,
      versionInfo: meta.version,
      packageFileName: subject.name,
      downloadLocation: `${download}/${subject.name}`,
      filesAnalyzed: false,
      checksums: [{ algorithm: "SHA256", checksumValue: subject.sha256 }],
      licenseConcluded: meta.license,
      licenseDeclared: meta.license,
      copyrightText: "NOASSERTION",
      builtDate: date,
      primaryPackagePurpose: "CONTAINER",
      comment: `a FROM scratch image (docker load) holding ${pidoneFile} as /pidone and /pause`,
    };
    packages.unshift(top);
    relationships.unshift({ spdxElementId: top.SPDXID, relationshipType: "CONTAINS", relatedSpdxElement: pidone.SPDXID });
  }
  relationships.unshift({ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: top.SPDXID });
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: subject.name,
    documentNamespace: `${meta.sourceUrl}/spdx/${subject.name}-${meta.version}-${subject.sha256}`,
    creationInfo: { created: date, creators: [`Tool: pidone-release-${meta.version}`] },
    documentDescribes: [top.SPDXID],
    packages,
    relationships,
  };
}

/** Writes <file>.spdx.json beside `file` and returns its path. */
export function writeSbom(root: string, meta: ReleaseMeta, file: string, subject: Omit<SbomSubject, "name" | "sha256" | "glibc">): string {
  const bytes = new Uint8Array(readFileSync(file));
  // An image's glibc is the one of the single file it holds.
  const carrier = subject.image ? new Uint8Array(readFileSync(subject.image.file)) : bytes;
  const doc = spdxDocument(root, meta, {
    ...subject,
    name: basename(file),
    sha256: sha256(bytes),
    glibc: subject.single ? (embeddedGlibc(carrier) ?? undefined) : undefined,
    image: subject.image ? { file: basename(subject.image.file), sha256: subject.image.sha256 } : undefined,
  });
  const out = `${file}.spdx.json`;
  writeFileSync(out, JSON.stringify(doc, null, 2) + "\n");
  return out;
}

/** The SBOMs of one architecture's files: the single file, the -glibc file and the image. */
export function writeSboms(root: string, meta: ReleaseMeta, outDir: string, arch: Arch, imageFile: string): string[] {
  const single = join(outDir, `pidone-${arch}`);
  return [
    writeSbom(root, meta, single, { arch, single: true }),
    writeSbom(root, meta, `${single}-glibc`, { arch, single: false }),
    writeSbom(root, meta, imageFile, { arch, single: true, image: { file: single, sha256: sha256(new Uint8Array(readFileSync(single))) } }),
  ];
}
