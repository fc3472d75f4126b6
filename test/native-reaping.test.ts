// Reaping in the stub's signal handler (src/native/stub.c, reap_children): as PID 1,
// the single file reaps orphans in C, tini's way, and keeps only the main child's status
// for JavaScript; where pidone needs every status (--wait-all, -w, debug logging) its
// JavaScript reaps as before. The handler's own counter (struct shared's `reaped`) is
// read from outside, through /proc/PID/maps and /proc/PID/mem (see sharedArea), to tell
// which of the two did the reaping.
// With PIDONE_BIN=dist/pidone-glibc the behaviour is checked without the counters.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, openSync, readFileSync, readSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { MAGIC as MAGIC_TEXT, OFFSET, SIZE } from "../src/native/protocol.ts";
import { AS_PID1, PIDONE, childrenOfAllThreads, needs, pid1Of, processState, run, start, tempDir, waitFor, type Started } from "./helpers.ts";
import { NATIVE, SINGLE_FILE } from "./fixtures/native-lib.ts";

setDefaultTimeout(60_000);

/** struct shared (src/native/protocol.ts): its magic as the stub stores it. */
const MAGIC = Buffer.from(`${MAGIC_TEXT}\0`, "latin1");

/**
 * Where the shared area is in pidone (host pid): in the stub's writable segment, a
 * small read-write mapping of the file itself (AT_PIDONE is only on the stack the stub
 * built, not in /proc/PID/auxv, which keeps the kernel's vector).
 */
const areas = new Map<number, number>();
function sharedArea(pid: number): number {
  const known = areas.get(pid);
  if (known !== undefined) return known;
  const exe = readlinkSync(`/proc/${pid}/exe`);
  const fd = openSync(`/proc/${pid}/mem`, "r");
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, "latin1").split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) rw-p \S+ \S+ \d+\s+(.*)$/.exec(line);
      if (!m || m[3] !== exe) continue;
      const start = parseInt(m[1]!, 16);
      const size = parseInt(m[2]!, 16) - start;
      if (size > 1 << 20) continue; // Bun's own data, not the stub's
      const bytes = Buffer.alloc(size);
      readSync(fd, bytes, 0, size, start);
      for (let at = bytes.indexOf(MAGIC); at >= 0; at = bytes.indexOf(MAGIC, at + 1)) {
        if (at % 64 === 0 && bytes.readUInt32LE(at + 16) === SIZE) {
          areas.set(pid, start + at);
          return start + at;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  throw new Error(`pid ${pid}: no ${MAGIC.toString("latin1")} shared area in its writable mappings`);
}

function sharedWord(pid: number, offset: number): number {
  const fd = openSync(`/proc/${pid}/mem`, "r");
  try {
    const word = Buffer.alloc(4);
    readSync(fd, word, 0, 4, sharedArea(pid) + offset);
    return word.readUInt32LE(0);
  } finally {
    closeSync(fd);
  }
}

/** Children on_signal has reaped in pidone (host pid), read from its memory. */
const nativelyReaped = (pid: number) => sharedWord(pid, OFFSET.reaped);
/** Has pidone let on_signal reap (struct shared's `reap`)? */
const reapingNatively = (pid: number) => sharedWord(pid, OFFSET.reap) !== 0;

async function zombieChildren(pid: number): Promise<number> {
  let n = 0;
  for (const c of await childrenOfAllThreads(pid)) if ((await processState(c)) === "Z") n++;
  return n;
}

/** pidone as PID 1 running `sh -c body`; the body reads stdin to know when to go on. */
async function startPid1(options: string[], body: string): Promise<{ p: Started; pid1: number }> {
  const p = start([...AS_PID1, PIDONE, ...options, "--", "sh", "-c", body], { stdin: "pipe" });
  const pid1 = await pid1Of(p.proc.pid);
  return { p, pid1 };
}

/** `n` orphans that end at once: each subshell exits right after starting its background job. */
const orphans = (n: number) => `i=0; while [ $i -lt ${n} ]; do (true &); i=$((i+1)); done`;

describe("reaping in the signal handler, as PID 1", () => {
  test("a backlog made while pidone is stopped is reaped to the last zombie, and the main child's code returned", async () => {
    const N = 500;
    const { p, pid1 } = await startPid1([], `read go; ${orphans(N)}; echo made; read done; exit 7`);
    try {
      await waitFor(async () => (await childrenOfAllThreads(pid1)).length === 1, 15_000, "the main child");
      // Stopped between its spawn and publishing the watch, pidone has not let the
      // handler reap yet, by design: its JavaScript would then drain the backlog.
      if (NATIVE) await waitFor(() => reapingNatively(pid1), 15_000, "pidone to let its handler reap");
      const before = NATIVE ? nativelyReaped(pid1) : 0;
      // The backlog tini's benchmark measures: the zombies pile up while the init cannot run.
      process.kill(pid1, "SIGSTOP");
      await waitFor(async () => (await processState(pid1)) === "T", 10_000, "pidone to stop");
      p.write("go\n");
      await p.waitStdout("made", 30_000);
      await waitFor(async () => (await zombieChildren(pid1)) >= N, 30_000, `${N} zombies on the stopped pidone`);
      process.kill(pid1, "SIGCONT");
      await waitFor(async () => (await zombieChildren(pid1)) === 0 && (await childrenOfAllThreads(pid1)).length === 1, 30_000, "the backlog to drain");
      // The count follows each wait4: the last zombie may be gone a moment before it.
      if (NATIVE) await waitFor(() => nativelyReaped(pid1) - before >= N, 10_000, `the handler to count ${N} reaped`);
      p.write("\n");
      expect(await p.exit()).toBe(7);
      expect(p.stderr()).toBe("");
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("orphans made while pidone runs (core-orphans' way: adopted, then ended) leave nothing behind", async () => {
    const { p, pid1 } = await startPid1([], `${orphans(300)}; echo made; read done; exit 0`);
    try {
      await p.waitStdout("made");
      await waitFor(async () => (await zombieChildren(pid1)) === 0 && (await childrenOfAllThreads(pid1)).length === 1, 30_000, "no zombie left");
      if (NATIVE) await waitFor(() => nativelyReaped(pid1) >= 300, 10_000, "the handler to count 300 reaped");
      p.write("\n");
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  // The main child's status comes through the handler's record once the handler reaps
  // (checked first: an orphan it reaped), then through the same path as JavaScript's.
  const cases: { name: string; options: string[]; end: string; code: number }[] = [
    { name: "a normal exit", options: [], end: "exit 42", code: 42 },
    { name: "death by a signal (128 + n)", options: [], end: "kill -KILL $$", code: 137 },
    { name: "-e remapping of the main child's code", options: ["-e", "42"], end: "exit 42", code: 0 },
    { name: "-e leaving other codes alone", options: ["-e", "42"], end: "exit 3", code: 3 },
  ];
  for (const c of cases) {
    test(`the main child's status: ${c.name} → ${c.code}`, async () => {
      const { p, pid1 } = await startPid1(c.options, `(true &); echo made; read done; ${c.end}`);
      try {
        await p.waitStdout("made");
        if (NATIVE) await waitFor(() => nativelyReaped(pid1) >= 1, 15_000, "the handler to reap the orphan");
        else await waitFor(async () => (await zombieChildren(pid1)) === 0, 15_000, "the orphan to be reaped");
        p.write("\n");
        expect(await p.exit()).toBe(c.code);
      } finally {
        p.proc.kill("SIGKILL");
      }
    });
  }

  test("a main child that ends at once (before or while its pid is published) still gives its code", async () => {
    // Many tries at the window between posix_spawn returning and the watch being set.
    for (let i = 0; i < 10; i++) {
      const r = await run([...AS_PID1, PIDONE, "--", "sh", "-c", `${orphans(20)}; exit ${i + 1}`], { timeoutMs: 20_000 });
      expect(r.code).toBe(i + 1);
    }
    const killed = await run([...AS_PID1, PIDONE, "--", "sh", "-c", "kill -TERM $$"], { timeoutMs: 20_000 });
    expect(killed.code).toBe(143);
  });
});

describe("where pidone needs every status, its JavaScript reaps", () => {
  test("--wait-all: the orphan's failure decides the exit code, and the handler reaps nothing", async () => {
    // A background job's stdin is /dev/null: the orphan waits on the pipe as fd 3.
    const body = `exec 3<&0; ${orphans(5)}; (sh -c 'read x <&3; exit 3' &); echo made; read done; exit 0`;
    const { p, pid1 } = await startPid1(["--wait-all"], body);
    try {
      await p.waitStdout("made");
      await waitFor(
        async () => (await childrenOfAllThreads(pid1)).length === 2 && (await zombieChildren(pid1)) === 0,
        15_000,
        "the quick orphans reaped, the waiting one adopted",
      );
      if (NATIVE) expect(nativelyReaped(pid1)).toBe(0);
      // The main child's exit leaves the orphan running: pidone waits for it. Closing
      // the pipe ends both.
      p.closeStdin();
      expect(await p.exit()).toBe(3);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("-w names every reaped orphan, the handler reaps none", async () => {
    const { p, pid1 } = await startPid1(["-w"], `${orphans(50)}; echo made; read done; exit 0`);
    try {
      await p.waitStdout("made");
      await p.waitStderr((t) => (t.match(/Reaped zombie process with pid=/g) ?? []).length >= 50, 30_000);
      if (NATIVE) expect(nativelyReaped(pid1)).toBe(0);
      p.write("\n");
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("debug logging (-vv) logs each reaped pid, the handler reaps none", async () => {
    const { p, pid1 } = await startPid1(["-vv"], `${orphans(20)}; echo made; read done; exit 5`);
    try {
      await p.waitStdout("made");
      // tini's levels: info and debug go to stdout.
      await p.waitStdout((t) => (t.match(/Reaped child with pid: '\d+'/g) ?? []).length >= 20, 30_000);
      if (NATIVE) expect(nativelyReaped(pid1)).toBe(0);
      p.write("\n");
      expect(await p.exit()).toBe(5);
      expect(p.stdout()).toContain("Main child exited normally (with status '5')");
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});

/**
 * pidone's own system calls after the delivery of the SIGCHLD that brings its main
 * child's end, from `strace -f` output: the thread that exec'd pidone, up to its exit.
 */
function callsAfterMainChildExit(trace: string, exe: string): string[] {
  const lines = trace.split("\n");
  const pid = lines.map((l) => /^(\d+) +execve\("([^"]*)".* = 0$/.exec(l)).find((m) => m && m[2] === exe)?.[1];
  if (!pid) throw new Error(`no execve of ${exe} in the trace`);
  const own = lines.filter((l) => l.startsWith(`${pid} `)).map((l) => l.slice(pid.length + 1).trim());
  const at = own.findIndex((l) => l.startsWith("--- SIGCHLD"));
  if (at < 0) throw new Error("no SIGCHLD delivered to pidone in the trace");
  const calls: string[] = [];
  for (const l of own.slice(at + 1)) {
    const call = /^(?:<\.\.\. )?(\w+)/.exec(l)?.[1] ?? l;
    calls.push(call === "exit_group" ? l.replace(/\s*=.*$/, "") : call);
    if (call === "exit_group" || l.startsWith("+++")) break;
  }
  return calls;
}

// The native exit: where the main child's end leaves pidone nothing else to do, the
// handler that reaps it exits with pidone's code (-e applied). Traced, nothing comes
// between that SIGCHLD and exit_group but the handler's wait4 loop: no byte written to
// wake the event loop, no return into it. As PID 1 only once no other child is left.
needs(NATIVE, SINGLE_FILE)("the main child's end, when nothing else is left to do", () => {
  const traced = async (prefix: string[], script: string) => {
    const file = join(tempDir("pidone-strace-"), "trace");
    const r = await run(["strace", "-f", "-qq", "-o", file, ...prefix, PIDONE, "-e", "3", "--", "sh", "-c", script]);
    return { code: r.code, calls: callsAfterMainChildExit(readFileSync(file, "latin1"), PIDONE) };
  };

  test("ends pidone from the signal handler, not PID 1 and as PID 1", async () => {
    for (const prefix of [[], AS_PID1]) {
      const { code, calls } = await traced(prefix, "exit 3");
      expect({ prefix, code, calls }).toEqual({ prefix, code: 0, calls: ["wait4", "wait4", "exit_group(0)"] });
    }
  });

  test("as PID 1 with another child left, JavaScript stops it first", async () => {
    const { code, calls } = await traced(AS_PID1, "sleep 30 & exit 3");
    expect(code).toBe(0);
    // The handler only woke the event loop: the sweep's kill(-1, SIGTERM) came before the exit.
    expect(calls).toContain("write");
    expect(calls).toContain("kill");
    expect(calls.at(-1)).toBe("exit_group(0)");
  });
});

describe("--pause", () => {
  test("reaps the orphans of a process that joined its namespace, then exits 0 on SIGTERM", async () => {
    const p = start([...AS_PID1, PIDONE, "--pause"]);
    try {
      const pid1 = await pid1Of(p.proc.pid);
      await waitFor(async () => {
        const cgt = (await Bun.file(`/proc/${pid1}/status`).text()).match(/SigCgt:\s*([0-9a-f]+)/)![1]!;
        return (BigInt(`0x${cgt}`) & (1n << 16n)) !== 0n; // SIGCHLD caught: the intake is up
      }, 15_000, "pidone --pause to catch SIGCHLD");
      // A sleeper adopted first keeps a child there throughout: with none left, the handler
      // wakes JavaScript, whose own waitpid loop may then take an orphan that ended meanwhile.
      const r = await run(["nsenter", "-t", String(pid1), "-p", "-m", "sh", "-c", `(exec sleep 60 </dev/null >/dev/null 2>&1 &); ${orphans(100)}`]);
      expect(r.code).toBe(0);
      if (NATIVE) await waitFor(() => nativelyReaped(pid1) >= 100, 15_000, "the handler to reap 100 orphans");
      for (const sleeper of await childrenOfAllThreads(pid1)) process.kill(sleeper, "SIGKILL");
      await waitFor(async () => (await childrenOfAllThreads(pid1)).length === 0, 15_000, "no child left");
      process.kill(pid1, "SIGTERM");
      expect(await p.exit()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });
});

// The same handler built for aarch64 (its own wait4 number), under qemu-user. Only with
// PIDONE_ARM64=path (test/native-arm64.test.ts builds one): a second arm64 build here
// would take minutes.
const ARM64 = process.env.PIDONE_ARM64 ?? "";
describe.skipIf(!ARM64)("arm64 under qemu-user (PIDONE_ARM64)", () => {
  test("orphans are reaped as PID 1 and the main child's code still comes back", async () => {
    const qemu = (await run(["sh", "-c", "command -v qemu-aarch64-static"])).stdout.trim();
    expect(qemu).not.toBe("");
    for (const [end, code] of [["exit 7", 7], ["kill -KILL $$", 137]] as const) {
      const p = start([...AS_PID1, qemu, ARM64, "--", "sh", "-c", `${orphans(100)}; echo made; read done; ${end}`], { stdin: "pipe" });
      try {
        const pid1 = await pid1Of(p.proc.pid);
        await p.waitStdout("made", 60_000);
        await waitFor(async () => (await zombieChildren(pid1)) === 0 && (await childrenOfAllThreads(pid1)).length === 1, 30_000, "no zombie left");
        p.write("\n");
        expect(await p.exit(60_000)).toBe(code);
      } finally {
        p.proc.kill("SIGKILL");
      }
    }
  }, 180_000);
});
