// OOM kills named under cgroup v2, from fixture files (this machine's memory controller
// is bound to cgroup v1; test/docker-oom.test.ts has the real OOM killer): in a private
// mount namespace a tmpfs over /sys/fs/cgroup holds what a v2 container sees, and the
// program raises memory.events' oom_kill itself before it dies of SIGKILL, as the kernel
// would have. Both the stub (tini's mode) and services mode read that file.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { tempDir } from "./helpers.ts";
import { withCgroup as overCgroup } from "./fixtures/cgroup.ts";

setDefaultTimeout(60_000);

const EVENTS = "low 0\nhigh 0\nmax 3\noom 4\noom_kill 4\noom_group_kill 0\n";
const RAISED = "low 0\\nhigh 0\\nmax 3\\noom 5\\noom_kill 5\\noom_group_kill 0\\n";
let dir = "";
beforeAll(() => {
  dir = tempDir("pidone-oom-v2-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** pidone as PID 1 over a fake v2 /sys/fs/cgroup (test/fixtures/cgroup.ts). */
async function withCgroup(files: Record<string, string>, cgroup: string | null, args: string[]) {
  const { ms: _, ...r } = await overCgroup(dir, files, cgroup, args);
  return r;
}

/**
 * A shell command that raises the count in `file` (as the OOM killer would) and dies of
 * SIGKILL; a moment after its start, as a real OOM kill comes only once the program has
 * faulted in the limit's worth of memory (the plain file reads the count after the spawn).
 */
const oomKilled = (file: string) => `sleep 0.2; printf '${RAISED}' > ${file}; kill -9 $$`;
const WARNING = "[WARN  pidone (1)] Main child was killed by the kernel's OOM killer (memory limit 256 MiB)\n";

describe("cgroup v2 memory.events", () => {
  const files = { "memory.events": EVENTS, "memory.max": `${256 * 2 ** 20}\n` };

  test("tini's mode: the count rose, one warning; it did not, nothing", async () => {
    const rose = await withCgroup(files, null, ["--", "sh", "-c", oomKilled("/sys/fs/cgroup/memory.events")]);
    expect(rose).toEqual({ code: 137, stdout: "", stderr: WARNING });
    const plain = await withCgroup(files, null, ["--", "sh", "-c", "kill -9 $$"]);
    expect(plain).toEqual({ code: 137, stdout: "", stderr: "" });
  });

  test("services mode: the event line, and the plain SIGKILL stays plain", async () => {
    const rose = await withCgroup(files, null, ["--service", `hog: ${oomKilled("/sys/fs/cgroup/memory.events")}`]);
    expect(rose.code).toBe(137);
    expect(rose.stdout).toMatch(/^pidone \| hog: killed by the kernel's OOM killer \(memory limit 256 MiB\)$/m);
    const plain = await withCgroup(files, null, ["--service", "k: kill -9 $$"]);
    expect(plain.stdout).toMatch(/^pidone \| k: exited \(signal SIGKILL\)$/m);
  });

  test("our own cgroup below the mount: its memory.events, and the limit of a parent", async () => {
    const nested = {
      "memory.max": "max\n",
      "kubepods/pod1/memory.max": `${256 * 2 ** 20}\n`,
      "kubepods/pod1/app/memory.max": "max\n",
      "kubepods/pod1/app/memory.events": EVENTS,
    };
    const file = "/sys/fs/cgroup/kubepods/pod1/app/memory.events";
    const tini = await withCgroup(nested, "0::/kubepods/pod1/app\n", ["--", "sh", "-c", oomKilled(file)]);
    expect(tini).toEqual({ code: 137, stdout: "", stderr: WARNING });
    const services = await withCgroup(nested, "0::/kubepods/pod1/app\n", ["--service", `hog: ${oomKilled(file)}`]);
    expect(services.stdout).toMatch(/hog: killed by the kernel's OOM killer \(memory limit 256 MiB\)$/m);
  });

  test("no memory.events (or no oom_kill line): the plain SIGKILL", async () => {
    const none = await withCgroup({ "memory.max": "max\n" }, null, ["--", "sh", "-c", "printf 'oom_kill 9\\n' > /sys/fs/cgroup/memory.events; kill -9 $$"]);
    expect(none).toEqual({ code: 137, stdout: "", stderr: "" });
    const noLine = await withCgroup({ "memory.events": "low 0\n" }, null, ["--service", `k: ${oomKilled("/sys/fs/cgroup/memory.events")}`]);
    expect(noLine.stdout).toMatch(/^pidone \| k: exited \(signal SIGKILL\)$/m);
  });
});
