// What the child shares with pidone's caller: the working directory and stdin, stdout
// and stderr, passed through untouched.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, run, start, tempDir } from "./helpers.ts";

setDefaultTimeout(30_000);

const WAYS = [
  { name: "not PID 1 (-s)", cmd: [PIDONE, "-s"] },
  { name: "as PID 1", cmd: [...AS_PID1, PIDONE] },
];

describe("working directory", () => {
  for (const way of WAYS) {
    test(`the child starts in pidone's working directory (spaces and unicode in its name), ${way.name}`, async () => {
      const dir = join(tempDir(), "a dir ünï");
      mkdirSync(dir);
      const r = await run([...way.cmd, "--", "readlink", "/proc/self/cwd"], { cwd: dir });
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${realpathSync(dir)}\n`);
    });
  }
});

describe("stdin, stdout and stderr", () => {
  for (const way of WAYS) {
    test(`the child reads pidone's stdin and writes to its stdout and stderr, ${way.name}`, async () => {
      const p = start([...way.cmd, "--", "sh", "-c", 'while read -r line; do echo "out:$line"; echo "err:$line" >&2; done; echo eof'], {
        stdin: "pipe",
      });
      try {
        p.write("one\n");
        await p.waitStdout("out:one\n");
        p.write("two\n");
        p.closeStdin();
        expect(await p.exit()).toBe(0);
        expect(p.stdout()).toBe("out:one\nout:two\neof\n");
        expect(p.stderr()).toBe("err:one\nerr:two\n");
      } finally {
        p.proc.kill("SIGKILL");
      }
    });
  }

  test("binary data passes through stdin and stdout unchanged", async () => {
    const data = new Uint8Array(256 * 1024).map((_, i) => (i * 7919) & 0xff);
    const proc = Bun.spawn([PIDONE, "-s", "--", "cat"], { stdin: data, stdout: "pipe", stderr: "pipe" });
    const out = new Uint8Array(await new Response(proc.stdout).arrayBuffer());
    expect(await proc.exited).toBe(0);
    expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
  });

  test("pidone adds nothing to the child's output at the default verbosity", async () => {
    const r = await run([PIDONE, "-s", "--", "sh", "-c", "printf out; printf err >&2"]);
    expect(r).toEqual({ code: 0, stdout: "out", stderr: "err" });
  });
});
