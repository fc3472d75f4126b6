// The core in a real container (tini's run_outer_tests.py shapes): a FROM scratch image
// with pidone, the shared libraries it needs and busybox; always --network none.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cHelper, mapLimit, run, waitFor } from "./helpers.ts";
import { buildScratchImage, dockerAvailable, dockerRun, sharedLibraries } from "./docker.ts";

setDefaultTimeout(120_000);

const TAG = `pidone-core-test-${process.pid}`;
let image = "";
const containers: string[] = [];
let serial = 0;

beforeAll(async () => {
  if (!(await dockerAvailable())) throw new Error("no Docker engine: run scripts/setup-test-env.sh (as root)");
  const [orphans, sigcount] = await Promise.all([cHelper("core-orphans"), cHelper("core-sigcount")]);
  const files: Record<string, string> = { "/core-orphans": orphans, "/core-sigcount": sigcount };
  for (const helper of [orphans, sigcount]) for (const lib of await sharedLibraries(helper)) files[lib] = lib;
  image = await buildScratchImage({ tag: TAG, files, entrypoint: ["/pidone"] });
}, 180_000);

afterAll(async () => {
  for (const name of containers) await run(["docker", "rm", "-f", name], { timeoutMs: 60_000 });
  if (image) await run(["docker", "rmi", "-f", image], { timeoutMs: 60_000 });
}, 120_000);

/** `docker run -d` under a fresh name; returns the name (removed in afterAll). */
async function detached(args: string[], dockerOptions: string[] = []): Promise<string> {
  const name = `${TAG}-${++serial}`;
  containers.push(name);
  const r = await run(["docker", "run", "-d", "--network", "none", "--name", name, ...dockerOptions, image, ...args], {
    timeoutMs: 60_000,
  });
  if (r.code !== 0) throw new Error(`docker run failed: ${r.stderr}`);
  return name;
}

async function logs(name: string): Promise<{ stdout: string; stderr: string }> {
  const r = await run(["docker", "logs", name], { timeoutMs: 30_000 });
  return { stdout: r.stdout, stderr: r.stderr };
}

async function waitForLog(name: string, pattern: RegExp): Promise<void> {
  await waitFor(async () => pattern.test((await logs(name)).stdout), 30_000, `${pattern} in the logs of ${name}`);
}

async function exitCode(name: string): Promise<number> {
  const r = await run(["docker", "wait", name], { timeoutMs: 60_000 });
  return Number(r.stdout.trim());
}

describe("docker run", () => {
  test("passes the child's exit codes through", async () => {
    const codes = [0, 1, 3, 143, 255];
    const got = await mapLimit(codes, 3, async (code) => (await dockerRun([image, "--", "sh", "-c", `exit ${code}`])).code);
    expect(got).toEqual(codes);
  });

  test("-e remaps, a missing program is 127, a usage error 1, -h 0 (tini's outer exit code tests)", async () => {
    const [remapped, missing, bad, help, version] = await mapLimit(
      [["-e", "3", "--", "sh", "-c", "exit 3"], ["--", "zzzz"], ["-z"], ["-h"], ["--version"]],
      3,
      (args) => dockerRun([image, ...args]),
    );
    expect(remapped!.code).toBe(0);
    expect(missing!.code).toBe(127);
    expect(missing!.stderr).toContain("zzzz");
    expect(bad!.code).toBe(1);
    expect(bad!.stderr).toMatch(/usage/i);
    expect(help!.code).toBe(0);
    expect(help!.stdout).toMatch(/usage/i);
    expect(version!.stdout).toMatch(/^pidone version \d+\.\d+\.\d+ - git\.[0-9a-f]{7}\n$/);
  });

  test("runs as PID 1 without the not-PID-1 warning, with stdout and stderr passed through", async () => {
    const r = await dockerRun([image, "--", "sh", "-c", 'echo "pid of parent: $PPID"; echo to-stderr >&2']);
    expect(r).toEqual({ code: 0, stdout: "pid of parent: 1\n", stderr: "to-stderr\n" });
  });

  test("reaps 200 orphans inside the container, naming each with -w", async () => {
    const r = await dockerRun([image, "-w", "--", "/core-orphans", "200"]);
    expect(r.stdout).toContain("orphans=200 reports=200 adopted=200 left=0");
    expect(r.code).toBe(0);
    expect([...r.stderr.matchAll(/Reaped zombie process with pid=\d+/g)].length).toBe(200);
  });
});

describe("docker stop and docker kill", () => {
  test("docker stop of a child without a TERM handler ends with 143, not Docker's SIGKILL (137)", async () => {
    // sleep is not PID 1 here, so SIGTERM's default action ends it.
    const name = await detached(["--", "sh", "-c", "echo ready; exec sleep 1000"]);
    await waitForLog(name, /^ready$/m);
    // Docker's own 10 s: a pidone that did not forward TERM would be SIGKILLed (137).
    const stop = await run(["docker", "stop", "-t", "10", name], { timeoutMs: 60_000 });
    expect(stop.code).toBe(0);
    expect(await exitCode(name)).toBe(143);
  });

  for (const [sig, code] of [["INT", 130], ["TERM", 143]] as const) {
    test(`docker kill -s ${sig} reaches the child: exit ${code}`, async () => {
      const name = await detached(["-vvv", "--", "sh", "-c", "echo ready; exec sleep 1000"]);
      await waitForLog(name, /^ready$/m);
      const kill = await run(["docker", "kill", "-s", sig, name], { timeoutMs: 30_000 });
      expect(kill.code).toBe(0);
      expect(await exitCode(name)).toBe(code);
    });
  }

  test("docker kill -s HUP/USR1/WINCH: each arrives once at the child", async () => {
    // -i keeps stdin open: core-sigcount exits when it reads end of file.
    const name = await detached(["--", "/core-sigcount"], ["-i"]);
    await waitForLog(name, /^ready /m);
    for (const [sig, n] of [["HUP", 1], ["USR1", 10], ["WINCH", 28]] as const) {
      expect((await run(["docker", "kill", "-s", sig, name], { timeoutMs: 30_000 })).code).toBe(0);
      await waitForLog(name, new RegExp(`^SIG ${n}$`, "m"));
    }
    const out = (await logs(name)).stdout;
    expect(out.match(/^SIG \d+$/gm)).toEqual(["SIG 1", "SIG 10", "SIG 28"]);
  });
});
