// Start-up limits: under an address-space, memory or pids limit below what pidone needs,
// one line naming the limit and exit 1 at once, never the runtime's crash banner or a
// container thrashing its own pages; at and above the needs, every mode runs. The floors
// are protocol.ts's LIMIT_*, so these tests follow them when they change.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readSync } from "node:fs";
import { VALUES } from "../src/native/protocol.ts";
import { PIDONE, needs, run, tempDir } from "./helpers.ts";
import { DOCKER_ENGINE, buildScratchImage, dockerAvailable } from "./docker.ts";
import { withCgroup as overCgroup } from "./fixtures/cgroup.ts";

const {
  LIMIT_MEMORY_WARM_MIB: FLOOR,
  LIMIT_MEMORY_COLD_MIB: COLD_FLOOR,
  LIMIT_MEMORY_SERVICES_WARM_MIB: SERVICES_FLOOR,
  LIMIT_MEMORY_SERVICES_COLD_MIB: SERVICES_COLD_FLOOR,
  LIMIT_MEMORY_NEAR_PERCENT: NEAR,
  LIMIT_MEMORY_READ_LITTLE_MIB: READ_LITTLE,
  LIMIT_ADDRESS_SPACE_MIB: AS_MIB,
  LIMIT_ADDRESS_SPACE_SERVICES_MIB: AS_SERVICES_MIB,
  LIMIT_DATA_MIB: DATA_MIB,
  LIMIT_STACK_KIB: STACK_KIB,
  LIMIT_TASKS_START: TASKS,
  LIMIT_TASKS_SERVICES: SERVICES_TASKS,
} = VALUES;
const MIB = 1024 * 1024;
const FATAL = /^\[FATAL pidone \(\d+\)\] /;
const WARN = /^\[WARN  pidone \(\d+\)\] /;
const CRASH = /bun\.report|Bun has crashed|panic|file a GitHub issue/i;
const lines = (s: string) => s.split("\n").filter(Boolean);
// The child shows it ran; its exit code comes back through pidone.
const CHILD = ["sh", "-c", "echo ok; exit 3"];
// A burst of output through the services' multiplexer, then the end of the service (and of pidone: 0).
const BURST = `burst: i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done`;

/** Reads `path` whole: its pages are then in the page cache (warm), paid for by this process. */
function warmFile(path: string): void {
  const fd = openSync(path, "r");
  const buf = Buffer.alloc(1 << 20);
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

/** Drops the page cache: every file's pages must be read again (others' runs slow down a little). */
async function dropCaches(): Promise<void> {
  const r = await run(["sh", "-c", "sync && echo 3 > /proc/sys/vm/drop_caches"], { timeoutMs: 60_000 });
  expect(r.code).toBe(0);
}

/** The refusal of a start from a cold page cache: the need (between both figures) and the warm one. */
function coldNeed(who: "pidone" | "services mode", limit: number, warm: number): RegExp {
  return new RegExp(`${FATAL.source}the container's memory limit \\(${limit} MiB\\) is below the (\\d+) MiB ${who} needs to start while its file is not in the page cache \\(${warm} MiB once it is\\)$`);
}

/**
 * What a start between the warm and the cold need says once its file is cached: nothing,
 * or the warning when the limit is that close to the warm need.
 */
function nearWarm(limit: number): string[] {
  if (limit >= FLOOR * (1 + NEAR / 100)) return [];
  return [expect.stringMatching(new RegExp(`${WARN.source}the container's memory limit \\(${limit} MiB\\) is close to the ${FLOOR} MiB pidone needs`))];
}

/** Exactly one fatal line, nothing else from pidone, no crash banner, exit 1. */
function expectRefusal(r: { code: number; stdout: string; stderr: string }, line: RegExp): void {
  expect(r.stderr).not.toMatch(CRASH);
  expect(lines(r.stderr).filter((l) => !WARN.test(l))).toEqual([expect.stringMatching(line)]);
  expect(lines(r.stderr).filter((l) => FATAL.test(l))).toHaveLength(1);
  expect(r.stdout).toBe("");
  expect(r.code).toBe(1);
}

describe("resource limits (ulimit -v, -d, -s)", () => {
  const under = (limits: string[], cmd: string[]) => run(["prlimit", ...limits, "--", ...cmd], { timeoutMs: 60_000 });
  const as = (kib: number) => `--as=${kib * 1024}`;

  test("at 512 MB tini's mode runs", async () => {
    const r = await under([as(512 * 1024)], [PIDONE, "-s", "--", ...CHILD]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("ok\n");
    expect(r.code).toBe(3);
  });

  test("at 512 MB services mode runs a burst of output", async () => {
    const r = await under([as(512 * 1024)], [PIDONE, "-s", "--service", BURST]);
    expect(r.stderr).not.toMatch(CRASH);
    expect(r.stdout.split("\n").filter((l) => /^burst +\| line \d+$/.test(l))).toHaveLength(20_000);
    expect(r.code).toBe(0);
  });

  test("at 512 MB --pause runs and stops on SIGTERM", async () => {
    const r = await under([as(512 * 1024)], ["sh", "-c", `"$0" -s --pause & sleep 1; kill -TERM $!; wait $!`, PIDONE]);
    expect(r.stderr).not.toMatch(CRASH);
    expect(r.code).toBe(0);
  });

  test("at exactly the needs stated, every mode runs: tini's, --pause, services with a burst", async () => {
    const common = [as(AS_MIB * 1024), `--data=${DATA_MIB * MIB}`, `--stack=${STACK_KIB * 1024}`];
    const tini = await under(common, [PIDONE, "-s", "--", ...CHILD]);
    expect(tini.stderr).toBe("");
    expect(tini.stdout).toBe("ok\n");
    expect(tini.code).toBe(3);
    const pause = await under(common, ["sh", "-c", `"$0" -s --pause & sleep 1; kill -TERM $!; wait $!`, PIDONE]);
    expect(pause.stderr).not.toMatch(CRASH);
    expect(pause.code).toBe(0);
    const services = await under([as(AS_SERVICES_MIB * 1024), `--data=${DATA_MIB * MIB}`, `--stack=${STACK_KIB * 1024}`], [PIDONE, "-s", "--service", BURST]);
    expect(services.stderr).not.toMatch(CRASH);
    expect(services.stdout.split("\n").filter((l) => /^burst +\| line \d+$/.test(l))).toHaveLength(20_000);
    expect(services.code).toBe(0);
  });

  test("ulimit -v below what pidone needs: one line naming it and RLIMIT_AS, exit 1 at once", async () => {
    const kib = (AS_MIB - 64) * 1024;
    const t0 = performance.now();
    const r = await under([as(kib)], [PIDONE, "-s", "--", ...CHILD]);
    expect(performance.now() - t0).toBeLessThan(3000); // 1 s and scheduling noise
    expectRefusal(r, new RegExp(`${FATAL.source}the address-space limit \\(RLIMIT_AS, ulimit -v ${kib}\\) is below the ${AS_MIB} MiB pidone needs \\(ulimit -v ${AS_MIB * 1024}\\)$`));
  });

  test("ulimit -v enough for tini's mode, not for services mode: tini's runs, services mode says so in one line", async () => {
    const kib = Math.floor((AS_MIB + AS_SERVICES_MIB) / 2) * 1024;
    const tini = await under([as(kib)], [PIDONE, "-s", "--", ...CHILD]);
    expect(tini.stdout).toBe("ok\n");
    expect(tini.code).toBe(3);
    const r = await under([as(kib)], [PIDONE, "-s", "--service", BURST]);
    expectRefusal(r, new RegExp(`${FATAL.source}the address-space limit \\(RLIMIT_AS, ulimit -v ${kib}\\) is below the ${AS_SERVICES_MIB} MiB services mode needs \\(ulimit -v ${AS_SERVICES_MIB * 1024}\\)$`));
  });

  test("ulimit -d and ulimit -s below what pidone needs: one line each", async () => {
    const data = (DATA_MIB - 32) * 1024;
    expectRefusal(
      await under([`--data=${data * 1024}`], [PIDONE, "-s", "--", ...CHILD]),
      new RegExp(`${FATAL.source}the data-segment limit \\(RLIMIT_DATA, ulimit -d ${data}\\) is below the ${DATA_MIB} MiB pidone needs \\(ulimit -d ${DATA_MIB * 1024}\\)$`),
    );
    const stack = Math.floor(STACK_KIB / 4);
    expectRefusal(
      await under([`--stack=${stack * 1024}`], [PIDONE, "-s", "--", ...CHILD]),
      new RegExp(`${FATAL.source}the stack limit \\(RLIMIT_STACK, ulimit -s ${stack}\\) is below the ${STACK_KIB} KiB pidone needs \\(ulimit -s ${STACK_KIB}\\)$`),
    );
  });
});

/**
 * cgroup v2 from fixture files (this machine's memory and pids controllers are bound to
 * cgroup v1, so a real v2 mount has neither): in a private mount namespace, a tmpfs over
 * /sys/fs/cgroup holds what a v2 container sees, and a file bind-mounted over
 * /proc/PID/cgroup names our cgroup where a case needs it.
 */
describe("cgroup v2 (fixture files)", () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir("pidone-cgroup-");
    // The need depends on how much of the file is cached: these cases check the warm one.
    warmFile(PIDONE);
  });

  /** pidone as PID 1 over a fake /sys/fs/cgroup (test/fixtures/cgroup.ts). */
  const withCgroup = (files: Record<string, string>, cgroup: string | null, args: string[]) => overCgroup(dir, files, cgroup, args);

  test("memory.max below the floor: one line, exit 1 at once", async () => {
    const r = await withCgroup({ "memory.max": `${(FLOOR - 2) * MIB}\n` }, null, ["--", ...CHILD]);
    expectRefusal(r, new RegExp(`${FATAL.source}the container's memory limit \\(${FLOOR - 2} MiB\\) is below the ${FLOOR} MiB pidone needs$`));
    expect(r.ms).toBeLessThan(3000);
  });

  test("memory.max near the floor: one warning, and the child runs", async () => {
    const near = FLOOR + Math.max(1, Math.floor((FLOOR * NEAR) / 100) - 1);
    const r = await withCgroup({ "memory.max": `${near * MIB}\n` }, null, ["--", ...CHILD]);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`${WARN.source}the container's memory limit \\(${near} MiB\\) is close to the ${FLOOR} MiB pidone needs`))]);
    expect(r.stdout).toBe("ok\n");
    expect(r.code).toBe(3);
  });

  test("memory.max \"max\" and pids.max \"max\": nothing said, the child runs", async () => {
    const r = await withCgroup({ "memory.max": "max\n", "pids.max": "max\n", "pids.current": "1\n" }, null, ["--", ...CHILD]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("ok\n");
    expect(r.code).toBe(3);
  });

  test("the cgroup /proc/self/cgroup names, below the mount, holds the limit", async () => {
    const r = await withCgroup(
      { "memory.max": "max\n", "kubepods/pod1/app/memory.max": `${(FLOOR - 1) * MIB}\n` },
      "0::/kubepods/pod1/app\n",
      ["--", ...CHILD],
    );
    expectRefusal(r, new RegExp(`${FATAL.source}the container's memory limit \\(${FLOOR - 1} MiB\\) is below`));
  });

  test("a parent of that cgroup holds the limit: the tightest on the way up counts", async () => {
    const r = await withCgroup(
      { "kubepods/pod1/memory.max": `${(FLOOR - 1) * MIB}\n`, "kubepods/pod1/app/memory.max": "max\n" },
      "0::/kubepods/pod1/app\n",
      ["--", ...CHILD],
    );
    expectRefusal(r, new RegExp(`${FATAL.source}the container's memory limit \\(${FLOOR - 1} MiB\\) is below`));
  });

  test("pids.max leaves no room for a child: one line", async () => {
    const r = await withCgroup({ "pids.max": `${TASKS - 1}\n`, "pids.current": "1\n" }, null, ["--", ...CHILD]);
    expectRefusal(r, new RegExp(`${FATAL.source}the container's pids limit leaves room for ${TASKS - 1} tasks?, below the ${TASKS} pidone needs to start`));
  });

  test("services mode: memory.max between the common floor and its own: one line from services mode", async () => {
    const between = Math.max(Math.ceil(FLOOR * (1 + NEAR / 100)), SERVICES_FLOOR - 1);
    const r = await withCgroup({ "memory.max": `${between * MIB}\n` }, null, ["--service", "a: echo hi"]);
    expectRefusal(r, new RegExp(`${FATAL.source}the container's memory limit \\(${between} MiB\\) is below the ${SERVICES_FLOOR} MiB services mode needs$`));
  });

  // From a cold page cache a start reads most of the runtime's code, charged to the
  // container: the need rises towards the cold figure, refused before the runtime starts.
  test("memory.max between the warm and the cold need, file not cached: one line naming both, at once; cached, the child runs", async () => {
    const limit = COLD_FLOOR - 1;
    expect(limit).toBeGreaterThan(FLOOR);
    await dropCaches();
    const cold = await withCgroup({ "memory.max": `${limit * MIB}\n` }, null, ["--", ...CHILD]);
    expectRefusal(cold, coldNeed("pidone", limit, FLOOR));
    const need = Number(coldNeed("pidone", limit, FLOOR).exec(lines(cold.stderr)[0]!)![1]);
    expect(need).toBeGreaterThan(limit);
    expect(need).toBeLessThanOrEqual(COLD_FLOOR);
    expect(cold.ms).toBeLessThan(3000);
    warmFile(PIDONE);
    const warm = await withCgroup({ "memory.max": `${limit * MIB}\n` }, null, ["--", ...CHILD]);
    expect(lines(warm.stderr)).toEqual(nearWarm(limit));
    expect(warm.stdout).toBe("ok\n");
    expect(warm.code).toBe(3);
  });

  // The stub lets the runtime start (its need is lower) and publishes what it sampled:
  // services mode's check uses that, not what its own start has cached since.
  test("services mode, file not cached: memory.max above the stub's cold need, below services mode's: one line from services mode", async () => {
    const limit = COLD_FLOOR + 1;
    expect(limit).toBeLessThan(SERVICES_COLD_FLOOR);
    await dropCaches();
    const r = await withCgroup({ "memory.max": `${limit * MIB}\n` }, null, ["--service", "a: echo hi"]);
    expectRefusal(r, coldNeed("services mode", limit, SERVICES_FLOOR));
    expect(Number(coldNeed("services mode", limit, SERVICES_FLOOR).exec(lines(r.stderr).filter((l) => FATAL.test(l))[0]!)![1])).toBeGreaterThan(limit);
    warmFile(PIDONE);
  });

  // Under a tight limit from a cold page cache the stub makes the start read little ahead:
  // MADV_RANDOM ("rr" in smaps' VmFlags) on the file's mappings, and its code cut into
  // small mappings; cached, or without a limit, the usual read-ahead (nothing marked).
  test("memory.max below the read-little bound, file not cached: the runtime's mappings read little ahead; cached or unlimited, they do not", async () => {
    const limit = READ_LITTLE / 2;
    expect(limit).toBeGreaterThan(SERVICES_COLD_FLOOR * (1 + NEAR / 100));
    const marked = ["--", "sh", "-c", "grep -c 'VmFlags:.* rr' /proc/1/smaps"];
    await dropCaches();
    const cold = await withCgroup({ "memory.max": `${limit * MIB}\n` }, null, marked);
    warmFile(PIDONE);
    const warm = await withCgroup({ "memory.max": `${limit * MIB}\n` }, null, marked);
    const unlimited = await withCgroup({ "memory.max": "max\n" }, null, marked);
    for (const r of [cold, warm, unlimited]) expect(r.stderr).toBe("");
    // The runtime's code alone is cut into hundreds of mappings.
    expect(Number(cold.stdout)).toBeGreaterThan(100);
    expect(warm.stdout).toBe("0\n");
    expect(unlimited.stdout).toBe("0\n");
  });

  test("services mode: pids.max below its threads and a service: one line", async () => {
    const r = await withCgroup({ "pids.max": `${SERVICES_TASKS - 1}\n`, "pids.current": "1\n" }, null, ["--service", "a: echo hi"]);
    expectRefusal(r, new RegExp(`${FATAL.source}the container's pids limit leaves room for ${SERVICES_TASKS - 1} tasks, below the ${SERVICES_TASKS} services mode needs`));
  });
});

const haveDocker = await dockerAvailable();
const IMAGE = "pidone-test-limits:latest";

needs(haveDocker, DOCKER_ENGINE)("in Docker (cgroup v1 here)", () => {
  beforeAll(async () => {
    await buildScratchImage({ tag: IMAGE });
  }, 180_000);
  afterAll(async () => {
    await run(["docker", "rmi", "-f", IMAGE], { timeoutMs: 60_000 });
  });

  /** docker run bounded: below the floor a container used to thrash for minutes. */
  async function docker(args: string[], cmd: string[]) {
    const t0 = performance.now();
    const r = await run(
      ["timeout", "-k", "5", "60", "docker", "run", "--rm", "--network", "none", "--sig-proxy=false", ...args, IMAGE, "/pidone", ...cmd],
      { timeoutMs: 90_000 },
    );
    return { ...r, ms: performance.now() - t0 };
  }

  // Docker's smallest -m (6m) is the warm need: below a need means from a cold page cache.
  test("-m between the warm and the cold need (memory and swap), page cache dropped: one line, exit 1 within seconds, the child never starts", async () => {
    const limit = Math.max(6, COLD_FLOOR - 1);
    const m = `${limit}m`;
    await dropCaches();
    const r = await docker(["-m", m, "--memory-swap", m], ["--", ...CHILD]);
    expectRefusal(r, coldNeed("pidone", limit, FLOOR));
    expect(r.ms).toBeLessThan(20_000); // container start-up included; the thrash lasted minutes
  });

  test("the same -m once another container has read the file: tini's mode runs", async () => {
    const limit = Math.max(6, COLD_FLOOR - 1);
    const m = `${limit}m`;
    const first = await docker([], ["--", "true"]); // pays for the file's pages, then is gone
    expect(first.code).toBe(0);
    const r = await docker(["-m", m, "--memory-swap", m], ["--", ...CHILD]);
    expect(lines(r.stderr)).toEqual(nearWarm(limit));
    expect(r.stdout).toBe("ok\n");
    expect(r.code).toBe(3);
  });

  // Well above: how much memory the start takes depends on how much of the file's page
  // cache another container already paid for (a cold cache costs most).
  test("-m well above the floor: tini's mode runs, silently", async () => {
    const m = `${Math.max(64, 2 * SERVICES_COLD_FLOOR)}m`;
    const r = await docker(["-m", m, "--memory-swap", m], ["--", ...CHILD]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("ok\n");
    expect(r.code).toBe(3);
  });

  test("--pids-limit leaving no room for a child: one line", async () => {
    const r = await docker(["--pids-limit", String(TASKS - 1)], ["--", ...CHILD]);
    expectRefusal(r, new RegExp(`${FATAL.source}the container's pids limit leaves room for ${TASKS - 1} tasks?, below the ${TASKS} pidone needs to start`));
  });

  test("--pids-limit at the start-up need: tini's mode runs", async () => {
    const r = await docker(["--pids-limit", String(TASKS)], ["--", ...CHILD]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("ok\n");
    expect(r.code).toBe(3);
  });

  test("services mode under --pids-limit below its threads and a service: one line, no crash banner", async () => {
    const r = await docker(["--pids-limit", String(SERVICES_TASKS - 1)], ["--service", BURST]);
    expectRefusal(r, new RegExp(`${FATAL.source}the container's pids limit leaves room for ${SERVICES_TASKS - 1} tasks, below the ${SERVICES_TASKS} services mode needs`));
  });
});
