// --pause keeps no mount busy: it moves its working directory to "/" (as catatonit
// does), so the directory it was started in can be unmounted while it pauses.
import { describe, expect, test } from "bun:test";
import { readlinkSync } from "node:fs";
import { AS_PID1, PIDONE, pid1Of, run, start, tempDir, waitFor } from "./helpers.ts";

describe("--pause and its working directory", () => {
  test("as PID 1 started in a directory, it works from / and still exits 0 on SIGTERM", async () => {
    const dir = tempDir();
    const p = start([...AS_PID1, PIDONE, "-P"], { cwd: dir });
    const pid1 = await pid1Of(p.proc.pid);
    await waitFor(() => readlinkSync(`/proc/${pid1}/cwd`) === "/", 10_000, "pidone's cwd to be /");
    // Caught: the stop is pidone's (SIGTERM's default would be ignored by a PID 1).
    await waitFor(async () => {
      const cgt = (await Bun.file(`/proc/${pid1}/status`).text()).match(/SigCgt:\s*([0-9a-f]+)/)![1]!;
      return (BigInt(`0x${cgt}`) & (1n << 14n)) !== 0n;
    });
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
  });

  test("the file system it was started in can be unmounted while it pauses", async () => {
    const dir = tempDir();
    // In a mount namespace of its own: a tmpfs on dir, pidone -P started inside it.
    const script = `
      mount -t tmpfs pidone-pause-test "$0" || exit 10
      cd "$0" && "$1" -P & p=$!
      i=0
      until [ "$(readlink /proc/$p/cwd)" = / ]; do i=$((i+1)); [ $i -gt 500 ] && exit 11; sleep 0.02; done
      umount "$0" && echo unmounted
      kill $p; wait $p; echo "pause exited $?"`;
    const r = await run(["unshare", "--mount", ...AS_PID1.slice(1), "sh", "-c", script, dir, PIDONE]);
    expect(r.stdout).toBe("unmounted\npause exited 0\n");
    expect(r.code).toBe(0);
  });
});
