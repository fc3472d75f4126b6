// -p SIGNAL: pidone asks for SIGNAL when its parent dies (tini's pdeathsignal test: the
// child kills pidone's parent; pidone gets the signal and forwards it).
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PIDONE, killQuietly, processState, run, tempDir, waitFor } from "./helpers.ts";

setDefaultTimeout(60_000);

const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) killQuietly(pid);
});

/**
 * Runs `sh -c 'pidone -p SIGNAL -- sh stage2 $$ DIR & wait'`: stage 2 (pidone's child)
 * records its pid and pidone's, then SIGKILLs the outer sh, pidone's parent.
 */
async function parentDies(signal: string, stage2: string): Promise<{ dir: string; parent: number }> {
  const dir = tempDir("pidone-pdeath-");
  const script = join(dir, "stage2.sh");
  writeFileSync(script, stage2);
  const r = await run(["sh", "-c", 'echo "$$"; "$0" -s -p "$1" -- sh "$2" "$$" "$3" >/dev/null 2>&1 & wait', PIDONE, signal, script, dir], {
    timeoutMs: 30_000,
  });
  // Our sh is killed by its grandchild; it never exits on its own. Output goes to
  // /dev/null so that a surviving process does not keep our pipes open.
  expect(r.code).toBe(128 + 9);
  return { dir, parent: Number(r.stdout.trim().split("\n")[0]) };
}

const readPid = (file: string) => Number(readFileSync(file, "utf8").trim());

describe("parent death signal", () => {
  test("-p SIGUSR1: when pidone's parent dies pidone gets SIGUSR1 and forwards it to the child (tini's test)", async () => {
    const { dir } = await parentDies(
      "SIGUSR1",
      `trap 'echo ok > "$2/result"; exit 0' USR1
echo $$ > "$2/child.tmp" && mv "$2/child.tmp" "$2/child"
kill -KILL "$1"
while :; do sleep 0.05; done
`,
    );
    await waitFor(() => existsSync(join(dir, "child")), 10_000, "stage 2 to start");
    leftovers.push(readPid(join(dir, "child")));
    await waitFor(() => existsSync(join(dir, "result")) && readFileSync(join(dir, "result"), "utf8") === "ok\n", 15_000, "the child to receive SIGUSR1");
  });

  test("-p SIGKILL: pidone dies with its parent; its child is not signalled", async () => {
    const { dir } = await parentDies(
      "SIGKILL",
      `echo $PPID > "$2/pidone"
echo $$ > "$2/child.tmp" && mv "$2/child.tmp" "$2/child"
kill -KILL "$1"
exec sleep 1000
`,
    );
    await waitFor(() => existsSync(join(dir, "child")), 10_000, "stage 2 to start");
    const pidone = readPid(join(dir, "pidone"));
    const child = readPid(join(dir, "child"));
    leftovers.push(child);
    // Gone, or a zombie waiting for whoever adopted it.
    await waitFor(async () => {
      const s = await processState(pidone);
      return s === null || s === "Z" || s === "X";
    }, 15_000, `pidone (${pidone}) to die`);
    const state = await processState(child);
    expect(state === null || state === "Z").toBe(false);
  });

  test("without -p, pidone outlives its parent", async () => {
    const dir = tempDir("pidone-pdeath-");
    const script = join(dir, "stage2.sh");
    writeFileSync(script, `echo $PPID > "$2/pidone.tmp" && mv "$2/pidone.tmp" "$2/pidone"\nkill -KILL "$1"\nexec sleep 1000\n`);
    const r = await run(["sh", "-c", '"$0" -s -- sh "$1" "$$" "$2" >/dev/null 2>&1 & wait', PIDONE, script, dir], { timeoutMs: 30_000 });
    expect(r.code).toBe(137);
    await waitFor(() => existsSync(join(dir, "pidone")), 10_000, "stage 2 to start");
    const pidone = readPid(join(dir, "pidone"));
    try {
      expect(await processState(pidone)).toMatch(/^[RS]$/);
    } finally {
      killQuietly(pidone, "SIGTERM"); // forwarded: the child's sleep ends too
    }
  });
});
