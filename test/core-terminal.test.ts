// The terminal: when stdin is pidone's controlling terminal, the child's process group
// is the terminal's foreground group before it runs, so Ctrl-C typed on the terminal
// reaches the child (and pidone, in the background, never stops on terminal I/O).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AS_PID1, PIDONE, cHelper, childrenOf, start } from "./helpers.ts";

setDefaultTimeout(60_000);

const CHILD_LINE = /child pid=(-?\d+) pgid=(-?\d+) fg=(-?\d+)/;

describe("terminal foreground", () => {
  const ways = [
    { name: "not PID 1 (-s)", cmd: [PIDONE, "-s"] },
    { name: "as PID 1", cmd: [...AS_PID1, PIDONE] },
  ];
  for (const way of ways) {
    test(`in a pty the child is the foreground process group and Ctrl-C ends it with SIGINT, ${way.name}`, async () => {
      const [pty, fgcheck] = await Promise.all([cHelper("core-pty"), cHelper("core-fgcheck")]);
      const p = start([pty, ...way.cmd, "--", fgcheck], { stdin: "pipe" });
      try {
        await p.waitStdout(CHILD_LINE);
        const [, pid, pgid, fg] = CHILD_LINE.exec(p.stdout())!;
        expect(pgid).toBe(pid);
        expect(fg).toBe(pgid);
        p.write("\x03");
        // The child has no SIGINT handler: it dies of it, and pidone reports 128+2.
        expect(await p.exit()).toBe(130);
      } finally {
        p.proc.kill("SIGKILL");
      }
    });
  }

  test("a terminal on stdin that is not pidone's controlling terminal does not stop the spawn", async () => {
    const [pty, fgcheck] = await Promise.all([cHelper("core-pty"), cHelper("core-fgcheck")]);
    const p = start([pty, PIDONE, "-s", "--", fgcheck], { stdin: "pipe", env: { PTY_NOT_CONTROLLING: "1" } });
    try {
      await p.waitStdout(CHILD_LINE);
      const [, pid, pgid, fg] = CHILD_LINE.exec(p.stdout())!;
      expect(pgid).toBe(pid);
      expect(fg).toBe("-1"); // no controlling terminal: nothing to be foreground of
      const [pidone] = await childrenOf(p.proc.pid);
      process.kill(pidone!, "SIGTERM");
      expect(await p.exit()).toBe(143);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("pidone writes its log lines to the terminal from the background without being stopped", async () => {
    const [pty, fgcheck] = await Promise.all([cHelper("core-pty"), cHelper("core-fgcheck")]);
    // TOSTOP makes background writes raise SIGTTOU; pidone ignores it, so it must keep going.
    const p = start([pty, "sh", "-c", 'stty tostop; exec "$0" -s -vvv -- "$1"', PIDONE, fgcheck], { stdin: "pipe" });
    try {
      await p.waitStdout(CHILD_LINE);
      p.write("\x03");
      expect(await p.exit()).toBe(130);
      expect(p.stdout()).toContain("Main child exited with signal");
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});
