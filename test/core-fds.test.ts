// Descriptors: the child gets exactly the descriptors pidone inherited (socket
// activation: LISTEN_FDS=2 with fds 3 and 4), and none of those the runtime opened.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, cHelper, run, tempDir } from "./helpers.ts";

setDefaultTimeout(30_000);

/**
 * "fd N -> target" lines printed by core-fds, as a map. Pipe and socket inode numbers
 * differ from run to run: they become #1, #2... in order of appearance, which keeps
 * which descriptors share one.
 */
function parseFds(stdout: string): Map<number, string> {
  const inodes = new Map<string, string>();
  return new Map(
    [...stdout.matchAll(/^fd (\d+) -> (.*)$/gm)].map((m) => {
      const target = m[2]!.replace(/^(pipe|socket):\[(\d+)\]$/, (_, kind: string, ino: string) => {
        if (!inodes.has(ino)) inodes.set(ino, `#${inodes.size + 1}`);
        return `${kind}:${inodes.get(ino)}`;
      });
      return [Number(m[1]), target];
    }),
  );
}

/**
 * Runs core-fds under `sh -c` after opening `redirections` (e.g. "3<a 4<b"), once
 * directly and once as pidone's child, and returns both listings.
 */
async function listings(redirections: string, pidone: string[], env: Record<string, string> = {}) {
  const fds = await cHelper("core-fds");
  const direct = await run(["sh", "-c", `exec ${redirections} "$0"`, fds], { env });
  const child = await run(["sh", "-c", `exec ${redirections} "$@" -- "$0"`, fds, ...pidone], { env });
  expect(direct.code).toBe(0);
  expect(child.code).toBe(0);
  return { direct: parseFds(direct.stdout), child: parseFds(child.stdout), stderr: child.stderr };
}

describe("inherited descriptors", () => {
  const ways = [
    { name: "not PID 1 (-s)", pidone: [PIDONE, "-s"] },
    { name: "as PID 1", pidone: [...AS_PID1, PIDONE] },
  ];
  for (const way of ways) {
    test(`LISTEN_FDS=2: fds 3 and 4 arrive in the child, and nothing else beyond 0-2, ${way.name}`, async () => {
      const dir = tempDir();
      writeFileSync(join(dir, "three"), "3");
      writeFileSync(join(dir, "four"), "4");
      const { direct, child } = await listings(`3<"${dir}/three" 4>>"${dir}/four"`, way.pidone, { LISTEN_FDS: "2" });
      expect([...child.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
      expect(child.get(3)).toBe(join(dir, "three"));
      expect(child.get(4)).toBe(join(dir, "four"));
      expect(child).toEqual(direct);
    });

    test(`with no extra descriptors the child has only 0, 1 and 2, ${way.name}`, async () => {
      const { direct, child } = await listings("", way.pidone);
      expect([...child.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2]);
      expect(child).toEqual(direct);
    });
  }

  test("descriptors with gaps and high numbers, and a socket, pass through as they are", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "f"), "");
    // fds 5 and 7 are copies of stdout (a socket from Bun.spawn), fd 9 a file.
    const { direct, child } = await listings(`5>&1 7>&1 9<"${dir}/f"`, [PIDONE, "-s"]);
    expect([...child.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 5, 7, 9]);
    expect(child).toEqual(direct);
  });

  test("an inherited descriptor is still usable in the child (a pipe pidone was given)", async () => {
    const r = await run(["sh", "-c", 'exec 3>&1; "$0" -s -- sh -c "echo via-fd-3 >&3" 3>&1 >/dev/null', PIDONE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("via-fd-3\n");
  });
});
