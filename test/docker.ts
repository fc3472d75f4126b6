// Docker test images, built locally (there is no registry): FROM scratch with pidone,
// the shared libraries a plain (dynamic) build needs, and busybox-static for a shell.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rootfs } from "../scripts/lib/rootfs.ts";
import { PIDONE, run, tempDir } from "./helpers.ts";

export { sharedLibraries } from "../scripts/lib/rootfs.ts";

/** What needs(dockerAvailable(), ...) names when it is missing. */
export const DOCKER_ENGINE = "a Docker engine that answers `docker info` (scripts/setup-test-env.sh starts one, as root)";

export async function dockerAvailable(): Promise<boolean> {
  return (await run(["docker", "info"], { timeoutMs: 20_000 })).code === 0;
}

export interface ImageSpec {
  tag: string;
  /** Files to place in the image: image path → host path. */
  files?: Record<string, string>;
  /** pidone binary to install as /pidone (default: dist/pidone); null for none. */
  pidone?: string | null;
  /** Add /bin/busybox and /bin/sh etc. (default true). */
  busybox?: boolean;
  /** Extra Dockerfile lines after the files are added. */
  extra?: string[];
  entrypoint?: string[];
}

/** Builds a FROM scratch image and returns its tag. */
export async function buildScratchImage(spec: ImageSpec): Promise<string> {
  const ctx = tempDir("pidone-img-");
  const root = new Rootfs(join(ctx, "rootfs"));
  const pidone = spec.pidone === undefined ? PIDONE : spec.pidone;
  if (pidone) root.putProgram("/pidone", pidone);
  if (spec.busybox !== false) {
    root.putBusybox(["sh", "sleep", "cat", "echo", "kill", "ls", "ps", "trap", "touch", "true", "false", "env", "test", "grep", "wc", "mkdir", "rm"]);
  }
  for (const [imagePath, hostPath] of Object.entries(spec.files ?? {})) root.put(imagePath, hostPath);
  const lines = ["FROM scratch", "COPY rootfs/ /", ...(spec.extra ?? [])];
  if (spec.entrypoint) lines.push(`ENTRYPOINT ${JSON.stringify(spec.entrypoint)}`);
  writeFileSync(join(ctx, "Dockerfile"), lines.join("\n") + "\n");
  const r = await run(["docker", "build", "-q", "-t", spec.tag, ctx], { timeoutMs: 120_000, env: { DOCKER_BUILDKIT: "0" } });
  rmSync(ctx, { recursive: true, force: true }); // ~115 MB of copies per image otherwise
  if (r.code !== 0) throw new Error(`docker build ${spec.tag} failed:\n${r.stderr}${r.stdout}`);
  return spec.tag;
}

/** `docker run --rm --network none ...`, returning code and output. */
export function dockerRun(args: string[], timeoutMs = 60_000) {
  return run(["docker", "run", "--rm", "--network", "none", ...args], { timeoutMs });
}

/**
 * Builds `tag` FROM `base` with symbolic links added (image path → link target), e.g.
 * busybox applets beyond buildScratchImage's set. A COPY layer, not a RUN: the engine
 * may have no bridge network for RUN containers.
 */
export async function addSymlinks(base: string, tag: string, links: Record<string, string>): Promise<string> {
  const ctx = tempDir("pidone-img-links-");
  const root = new Rootfs(join(ctx, "rootfs"));
  for (const [imagePath, target] of Object.entries(links)) root.link(imagePath, target);
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${base}\nCOPY rootfs/ /\n`);
  const r = await run(["docker", "build", "-q", "--network", "none", "-t", tag, ctx], { timeoutMs: 120_000, env: { DOCKER_BUILDKIT: "0" } });
  rmSync(ctx, { recursive: true, force: true });
  if (r.code !== 0) throw new Error(`docker build ${tag} failed:\n${r.stderr}${r.stdout}`);
  return tag;
}
