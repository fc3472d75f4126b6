// Per architecture, a FROM scratch image holding only /pidone and /pause (a hard link to
// the same file: under the name pause it behaves as --pause), saved as one tarball that
// `docker load` accepts: Docker's archive format (manifest.json) and an OCI image layout
// (index.json, oci-layout) over the same blobs, for tools that push from either.
//
// Written here rather than by `docker save`: every byte derives from the single file and
// the release metadata (mtimes and `created` from SOURCE_DATE_EPOCH, uid 0, fixed modes,
// names in a fixed order), so two builds of one commit give the same tarball.
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import type { Arch } from "../pack/arch.ts";
import { isoDate, type ReleaseMeta } from "./meta.ts";
import { sha256 } from "./sbom.ts";

interface Entry {
  name: string;
  /** File contents, or a hard link's target. */
  data?: Uint8Array;
  link?: string;
  dir?: boolean;
  mode: number;
}

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as POSIX ustar wants.
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(e: Entry, mtime: number): Uint8Array {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(e.name) > 100) throw new Error(`tar: name too long: ${e.name}`);
  h.write(e.name, 0, "utf8");
  h.write(octal(e.mode, 8), 100);
  h.write(octal(0, 8), 108); // uid
  h.write(octal(0, 8), 116); // gid
  h.write(octal(e.data ? e.data.length : 0, 12), 124);
  h.write(octal(mtime, 12), 136);
  h.write(" ".repeat(8), 148); // the checksum counts its own field as spaces
  h.write(e.dir ? "5" : e.link ? "1" : "0", 156);
  if (e.link) h.write(e.link, 157);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(octal(sum, 7) + " ", 148);
  return h;
}

/** A ustar archive of `entries`, in order, as a list of chunks. */
function tar(entries: Entry[], mtime: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (const e of entries) {
    chunks.push(header(e, mtime));
    if (e.data) {
      chunks.push(e.data);
      const pad = (512 - (e.data.length % 512)) % 512;
      if (pad) chunks.push(new Uint8Array(pad));
    }
  }
  chunks.push(new Uint8Array(1024)); // two zero blocks end the archive
  return chunks;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks);
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

export interface ImageResult {
  path: string;
  /** The name `docker load` gives it, e.g. ghcr.io/owner/pidone:0.1.0-amd64. */
  tag: string;
  /** The image id (the config's digest). */
  id: string;
}

/** The tarball's file name for `arch`. */
export const imageFileName = (arch: Arch) => `pidone-${arch}-image.tar`;

export function writeImage(meta: ReleaseMeta, arch: Arch, single: string, out: string): ImageResult {
  const created = isoDate(meta.epoch);
  const layer = concat(
    tar(
      [
        { name: "pidone", data: new Uint8Array(readFileSync(single)), mode: 0o755 },
        { name: "pause", link: "pidone", mode: 0o755 },
      ],
      meta.epoch,
    ),
  );
  const layerDigest = sha256(layer);
  const labels = {
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.description": "pidone, a container init: COPY --from this image /pidone, or run it as a pause container",
    "org.opencontainers.image.licenses": meta.license,
    "org.opencontainers.image.revision": meta.commit,
    "org.opencontainers.image.source": meta.sourceUrl,
    "org.opencontainers.image.title": "pidone",
    "org.opencontainers.image.version": meta.version,
  };
  const platform = arch === "arm64" ? { architecture: "arm64", os: "linux", variant: "v8" } : { architecture: "amd64", os: "linux" };
  const config = json({
    ...platform,
    created,
    config: { Cmd: ["/pause"], Labels: labels },
    rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created, created_by: "pidone release: /pidone, and /pause as a hard link to it" }],
  });
  const configDigest = sha256(config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${configDigest}`, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layer.length }],
    annotations: { "org.opencontainers.image.created": created },
  });
  const manifestDigest = sha256(manifest);
  const tag = `${meta.imageName}:${meta.version}-${arch}`;
  const index = json({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: `sha256:${manifestDigest}`,
        size: manifest.length,
        annotations: { "io.containerd.image.name": tag, "org.opencontainers.image.ref.name": `${meta.version}-${arch}` },
        platform,
      },
    ],
  });
  const blob = (digest: string) => `blobs/sha256/${digest}`;
  const dockerManifest = json([{ Config: blob(configDigest), RepoTags: [tag], Layers: [blob(layerDigest)] }]);
  const outer = tar(
    [
      { name: "blobs/", dir: true, mode: 0o755 },
      { name: "blobs/sha256/", dir: true, mode: 0o755 },
      ...[
        [configDigest, config],
        [layerDigest, layer],
        [manifestDigest, manifest],
      ]
        .sort(([a], [b]) => (a! < b! ? -1 : 1))
        .map(([digest, data]) => ({ name: blob(digest as string), data: data as Uint8Array, mode: 0o644 })),
      { name: "index.json", data: index, mode: 0o644 },
      { name: "manifest.json", data: dockerManifest, mode: 0o644 },
      { name: "oci-layout", data: json({ imageLayoutVersion: "1.0.0" }), mode: 0o644 },
    ],
    meta.epoch,
  );
  const fd = openSync(out, "w", 0o644);
  try {
    for (const chunk of outer) {
      for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done);
    }
  } finally {
    closeSync(fd);
  }
  return { path: out, tag, id: `sha256:${configDigest}` };
}
