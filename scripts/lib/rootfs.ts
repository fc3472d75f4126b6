// The files of a FROM scratch image, gathered from this machine (there is no image
// registry here): the test suite's images and the benchmark's are built from these.
import { chmodSync, copyFileSync, mkdirSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * The shared libraries, loader included, a dynamic executable needs (from ldd). None for
 * a static one, nor for the packed single file: it has no PT_INTERP and carries its own,
 * so the image's must not matter.
 */
export function sharedLibraries(binary: string): string[] {
  const head = Bun.spawnSync(["readelf", "-lW", binary]);
  if (head.exitCode === 0 && !head.stdout.toString().includes("INTERP")) return [];
  const ldd = Bun.spawnSync(["ldd", binary]);
  if (ldd.exitCode !== 0) return [];
  const libs: string[] = [];
  for (const line of ldd.stdout.toString().split("\n")) {
    const m = /=>\s*(\S+)\s*\(/.exec(line) ?? /^\s*(\/\S+)\s*\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** A directory that becomes an image's `/` (`COPY rootfs/ /`). */
export class Rootfs {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, "tmp"), { recursive: true });
    chmodSync(join(dir, "tmp"), 0o1777);
  }

  /** Copies a host file to `imagePath`, mode 0755. */
  put(imagePath: string, hostPath: string): void {
    const dest = join(this.dir, imagePath);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(hostPath, dest);
    chmodSync(dest, 0o755);
  }

  /** A program and the shared libraries it needs, at the host's paths. */
  putProgram(imagePath: string, hostPath: string): void {
    this.put(imagePath, hostPath);
    for (const lib of sharedLibraries(hostPath)) this.put(lib, lib);
  }

  /** busybox-static as /bin/busybox with a link for each applet. */
  putBusybox(applets: readonly string[]): void {
    this.put("/bin/busybox", "/bin/busybox");
    for (const applet of applets) this.link(`/bin/${applet}`, "busybox");
  }

  link(imagePath: string, target: string): void {
    const dest = join(this.dir, imagePath);
    mkdirSync(dirname(dest), { recursive: true });
    symlinkSync(target, dest);
  }
}
