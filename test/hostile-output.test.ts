// Output that cannot be written (issue 13, item 8): pidone's own stdout/stderr as a pipe
// nobody reads (a stuck log collector), a pipe whose reader is gone (EPIPE), or closed
// descriptors. pidone keeps forwarding signals, reaping orphans, restarting and stopping
// on time without spinning; services are held back, never lost silently; pidone's own
// EPIPE never becomes a SIGPIPE for the child or the services; its lines never land in
// the other stream.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, constants, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { OutputMux } from "../src/services/output.ts";
import { close, pipe, writeAll } from "../src/sys/libc.ts";
import { AS_PID1, PIDONE, childrenOfAllThreads, killQuietly, needs, pid1Of, processState, run, tempDir, waitFor } from "./helpers.ts";
import { NATIVE, SINGLE_FILE } from "./fixtures/native-lib.ts";

setDefaultTimeout(120_000);

const SH = "/bin/sh";

/**
 * One of pidone's output streams: a pipe whose read end the test holds. Nobody reads it
 * until resume() starts a `cat` copying it into a file (as a log collector would);
 * closeReader() closes it unread instead (EPIPE for the writers).
 */
class Output {
  readonly file: string;
  private r: number | null;
  readonly w: number;
  private reader: ReturnType<typeof Bun.spawn> | null = null;

  constructor(full: boolean) {
    [this.r, this.w] = pipe();
    this.file = join(tempDir("pidone-hostile-"), "captured");
    writeFileSync(this.file, "");
    if (full) this.fill();
  }

  /** Fills the pipe to the brim with whole "fill" lines, through a non-blocking description of its own. */
  private fill(): void {
    const fd = openSync(`/proc/self/fd/${this.w}`, constants.O_WRONLY | constants.O_NONBLOCK);
    const page = Buffer.from("fill-----------\n".repeat(256));
    const line = Buffer.from("fill-----------\n");
    try {
      for (const chunk of [page, line]) {
        for (;;) {
          try {
            writeSync(fd, chunk); // at most PIPE_BUF: all or EAGAIN
          } catch {
            break;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  resume(): void {
    if (this.r === null || this.reader) return;
    const out = openSync(this.file, "w");
    this.reader = Bun.spawn(["cat"], { stdin: this.r, stdout: out, stderr: "ignore" });
    closeSync(out);
    close(this.r);
    this.r = null;
  }

  closeReader(): void {
    if (this.r !== null) close(this.r);
    this.r = null;
  }

  /** Our copy of the write end: pidone has its own once started. */
  closeWriter(): void {
    close(this.w);
  }

  text(): string {
    return readFileSync(this.file, "latin1");
  }

  /** Once every writer is gone: everything the reader copied. */
  async finish(): Promise<string> {
    this.resume();
    if (this.reader) await this.reader.exited;
    return this.text().replace(/^(fill-+\n)+/, "");
  }

  dispose(): void {
    this.closeReader();
    if (this.reader && this.reader.exitCode === null && !this.reader.signalCode) killQuietly(this.reader.pid);
  }
}

const outputs: Output[] = [];
const procs: ReturnType<typeof Bun.spawn>[] = [];
const pid1s: { unshare: ReturnType<typeof Bun.spawn>; pid: number }[] = [];
afterEach(() => {
  // The namespace goes with its PID 1; once unshare has exited, so has its child.
  for (const { unshare, pid } of pid1s.splice(0)) if (unshare.exitCode === null && !unshare.signalCode) killQuietly(pid);
  for (const p of procs.splice(0)) if (p.exitCode === null && !p.signalCode) killQuietly(p.pid);
  for (const o of outputs.splice(0)) o.dispose();
});

/** pidone's pid, as PID 1 under `unshare --fork` (killed after the test, should it fail). */
async function pidoneUnder(proc: ReturnType<typeof Bun.spawn>): Promise<number> {
  const pid = await pid1Of(proc.pid);
  pid1s.push({ unshare: proc, pid });
  return pid;
}

function output(full: boolean): Output {
  const o = new Output(full);
  outputs.push(o);
  return o;
}

/** Starts cmd with the given stdout and stderr. */
function startWith(cmd: string[], out: Output, err: Output) {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: out.w, stderr: err.w, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  procs.push(proc);
  out.closeWriter();
  err.closeWriter();
  return proc;
}

async function exitWithin(proc: ReturnType<typeof Bun.spawn>, ms: number): Promise<number> {
  const timer = setTimeout(() => killQuietly(proc.pid), ms);
  const code = await proc.exited;
  clearTimeout(timer);
  if (proc.signalCode) throw new Error(`did not exit within ${ms} ms (killed: ${proc.signalCode})`);
  return code;
}

/** utime + stime of a whole process (every thread), in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

/** CPU time pidone spends over `ms` of wall time, while `during` runs (if given). */
async function cpuOver(pid: number, ms: number, during?: () => Promise<void>): Promise<number> {
  const before = cpuSeconds(pid);
  const end = Date.now() + ms;
  if (during) await during();
  await Bun.sleep(Math.max(0, end - Date.now()));
  return cpuSeconds(pid) - before;
}

/** pidone's children that are zombies (an orphan not reaped yet). */
async function zombiesOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const c of await childrenOfAllThreads(pid)) if ((await processState(c)) === "Z") out.push(c);
  return out;
}

const count = (file: string, word: string) => {
  try {
    return readFileSync(file, "latin1").split("\n").filter((l) => l === word).length;
  } catch {
    return 0;
  }
};

/** Sends `sig` to pid `n` times, each time waiting until `received()` has counted it. */
async function signalEach(pid: number, sig: NodeJS.Signals, n: number, received: () => number): Promise<void> {
  const base = received();
  for (let i = 1; i <= n; i++) {
    process.kill(pid, sig);
    await waitFor(() => received() >= base + i, 10_000, `${sig} number ${i} to arrive`);
  }
}

/** A generous bound: pidone's work while idle is a few wake-ups a second. */
const IDLE_CPU_SECONDS = 0.4;

// ---------------------------------------------------------------- tini's mode

describe("tini's mode, as PID 1 with -vvv", () => {
  // The child makes 40 orphans, then counts the signals it gets; on SIGTERM it exits 0.
  // It writes only to its file: its own stdout is the same stuck pipe.
  const child = (file: string) => [
    SH,
    "-c",
    `trap 'echo usr1 >> "$0"' USR1; trap 'echo pipe >> "$0"' PIPE; trap 'echo term >> "$0"; exit 0' TERM
     i=0; while [ $i -lt 40 ]; do sh -c 'sleep 0.05 &'; i=$((i+1)); done
     echo started >> "$0"
     while :; do sleep 0.05; done`,
    file,
  ];

  for (const how of ["full", "gone"] as const) {
    const what = how === "full" ? "a full pipe nobody reads" : "a pipe whose reader is gone (EPIPE)";
    test(`stdout and stderr ${what}: signals, reaping and the stop on time, no spin, no SIGPIPE for the child`, async () => {
      const out = output(how === "full");
      const err = output(how === "full");
      if (how === "gone") {
        out.closeReader();
        err.closeReader();
      }
      const file = join(tempDir("pidone-hostile-"), "events");
      const proc = startWith([...AS_PID1, PIDONE, "-vvv", "--", ...child(file)], out, err);
      const pid1 = await pidoneUnder(proc);
      await waitFor(() => count(file, "started") === 1, 15_000, "the child to start");
      // Every orphan reaped: only the child is left.
      await waitFor(async () => (await childrenOfAllThreads(pid1)).length === 1, 15_000, "every orphan to be reaped");
      expect(await zombiesOf(pid1)).toEqual([]);

      // pidone logs each one (-vvv): a stuck line costs at most its bounded wait, once.
      let took = 0;
      const cpu = await cpuOver(pid1, 2_000, async () => {
        const t = performance.now();
        await signalEach(pid1, "SIGUSR1", 10, () => count(file, "usr1"));
        took = performance.now() - t;
      });
      expect(cpu).toBeLessThan(IDLE_CPU_SECONDS);
      expect(took).toBeLessThan(5_000); // generous: the child notices each within 0.05 s

      const t0 = performance.now();
      process.kill(pid1, "SIGTERM");
      expect(await exitWithin(proc, 15_000)).toBe(0);
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(count(file, "term")).toBe(1);
      expect(count(file, "pipe")).toBe(0); // pidone's EPIPE stays pidone's

      if (how === "full") {
        // Whatever got through is whole lines of pidone's, each in its stream.
        for (const line of (await out.finish()).split("\n").filter(Boolean)) expect(line).toMatch(/^\[(INFO |DEBUG|TRACE) pidone \(1\)\] /);
        for (const line of (await err.finish()).split("\n").filter(Boolean)) expect(line).toMatch(/^\[(WARN |FATAL) pidone \(1\)\] /);
      }
    });
  }
});

// ---------------------------------------------------------------- services mode

function config(dir: string, text: string): string {
  const file = join(dir, "services.toml");
  writeFileSync(file, text);
  return file;
}

/** Lines of one service in prefixed output, in the order they came. */
function serviceLines(text: string, name: string): string[] {
  const re = new RegExp(`^${name} *\\| (.*)$`);
  return text.split("\n").flatMap((l) => {
    const m = re.exec(l);
    return m ? [m[1]!] : [];
  });
}

function sequence(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`);
}

describe("services mode, as PID 1", () => {
  const OUT_LINES = 300_000; // far more than the pipes and the multiplexer's queue hold
  const ERR_LINES = 300_000;

  test("stdout and stderr stuck: services held back, signals, reaping and restarts go on, no spin; once read again, every line arrives in order", async () => {
    const dir = tempDir("pidone-hostile-");
    const f = join(dir, "events");
    const file = config(
      dir,
      `[services.flood]
command = "seq -f 'out %g' 1 ${OUT_LINES}; echo flood-done >> ${f}; exec sleep 1000"
shell = true
signals = []
[services.eflood]
command = "seq -f 'err %g' 1 ${ERR_LINES} >&2; echo eflood-done >> ${f}; exec sleep 1000"
shell = true
signals = []
[services.sig]
command = "trap 'echo usr1 >> ${f}' USR1; echo sig-up >> ${f}; while :; do sleep 0.05; done"
shell = true
signals = ["USR1"]
[services.crash]
command = "echo start >> ${f}; echo crashing; exit 1"
shell = true
signals = []
critical = false
restart = "always"
[services.orph]
command = "i=0; while [ $i -lt 40 ]; do sh -c 'sleep 0.05 &'; i=$((i+1)); done; echo orphans >> ${f}; exec sleep 1000"
shell = true
signals = []
`,
    );
    const out = output(true);
    const err = output(true);
    const proc = startWith([...AS_PID1, PIDONE, "-c", file], out, err);
    const pid1 = await pidoneUnder(proc);
    await waitFor(() => count(f, "sig-up") === 1 && count(f, "orphans") === 1, 15_000, "the services to start");
    // Every orphan reaped: pidone's children are the five services' processes at most.
    await waitFor(async () => (await childrenOfAllThreads(pid1)).length <= 5 && (await zombiesOf(pid1)).length === 0, 15_000, "the orphans to be reaped");

    const cpu = await cpuOver(pid1, 2_000, () => signalEach(pid1, "SIGUSR1", 10, () => count(f, "usr1")));
    expect(cpu).toBeLessThan(IDLE_CPU_SECONDS);
    // Restarts go on (1 s, then 2 s of backoff), with their events queued.
    await waitFor(() => count(f, "start") >= 3, 15_000, "the crashing service to be restarted twice");
    // Held back, not dropped: the floods cannot have finished into a stuck output.
    expect(count(f, "flood-done")).toBe(0);
    expect(count(f, "eflood-done")).toBe(0);

    out.resume();
    err.resume();
    await waitFor(() => count(f, "flood-done") === 1 && count(f, "eflood-done") === 1, 60_000, "the floods to finish once read");
    await waitFor(() => serviceLines(out.text(), "flood").length === OUT_LINES, 30_000, "every line of the flood to arrive");
    process.kill(pid1, "SIGTERM");
    expect(await exitWithin(proc, 20_000)).toBe(0);

    const stdout = await out.finish();
    const stderr = await err.finish();
    expect(serviceLines(stdout, "flood")).toEqual(sequence("out", OUT_LINES));
    expect(serviceLines(stderr, "eflood")).toEqual(sequence("err", ERR_LINES));
    expect(serviceLines(stdout, "crash").filter((l) => l === "crashing").length).toBe(count(f, "start"));
    expect(stderr).not.toContain("were lost");
  });

  test("stdout stuck at the stop: pidone exits within the grace and says on stderr how many lines were lost", async () => {
    const dir = tempDir("pidone-hostile-");
    const f = join(dir, "events");
    const file = config(
      dir,
      `[settings]
grace = 2
[services.flood]
command = "echo up >> ${f}; seq -f 'out %g' 1 ${OUT_LINES}; exec sleep 1000"
shell = true
`,
    );
    const out = output(true);
    const err = output(false);
    err.resume();
    const proc = startWith([...AS_PID1, PIDONE, "-c", file], out, err);
    const pid1 = await pidoneUnder(proc);
    await waitFor(() => count(f, "up") === 1, 15_000, "the service to start");
    await Bun.sleep(300); // let it fill what it can
    const t0 = performance.now();
    process.kill(pid1, "SIGTERM");
    expect(await exitWithin(proc, 20_000)).toBe(0);
    expect(performance.now() - t0).toBeLessThan(2_000 + 3_000); // the grace, and slack for a loaded machine
    expect(await err.finish()).toMatch(/^\[WARN  pidone \(1\)\] \d+ lines of service output were lost at exit$/m);
  });

  test("stdout and stderr readers gone (EPIPE): no SIGPIPE reaches a service, nothing restarts, no spin, a clean stop", async () => {
    const dir = tempDir("pidone-hostile-");
    const f = join(dir, "events");
    const file = config(
      dir,
      `[services.talk]
command = "trap 'echo pipe >> ${f}' PIPE; echo start >> ${f}; while :; do echo hello; echo oops >&2; sleep 0.02; done"
shell = true
[services.flood]
command = "trap 'echo pipe >> ${f}' PIPE; seq -f 'out %g' 1 50000; echo flood-done >> ${f}; exec sleep 1000"
shell = true
`,
    );
    const out = output(false);
    const err = output(false);
    out.closeReader();
    err.closeReader();
    const proc = startWith([...AS_PID1, PIDONE, "-c", file], out, err);
    const pid1 = await pidoneUnder(proc);
    // The output is dropped (nobody can read it): the flood is not held back.
    await waitFor(() => count(f, "flood-done") === 1, 30_000, "the flood to finish");
    const cpu = await cpuOver(pid1, 2_000);
    expect(cpu).toBeLessThan(IDLE_CPU_SECONDS + 0.4); // the talker's lines are still read and dropped
    expect(count(f, "pipe")).toBe(0);
    expect(count(f, "start")).toBe(1);
    process.kill(pid1, "SIGTERM");
    expect(await exitWithin(proc, 20_000)).toBe(0);
    expect(count(f, "pipe")).toBe(0);
  });
});

describe("services mode, stdout broken", () => {
  test("/dev/full (ENOSPC): output dropped, services not held back, the loss said on stderr at the stop", async () => {
    const dir = tempDir("pidone-hostile-");
    const f = join(dir, "events");
    const file = config(dir, `[services.flood]\ncommand = "seq -f 'out %g' 1 300000; echo flood-done >> ${f}; exec sleep 1000"\nshell = true\n`);
    const err = output(false);
    err.resume();
    const proc = Bun.spawn([...AS_PID1, PIDONE, "-c", file], { stdin: "ignore", stdout: Bun.file("/dev/full"), stderr: err.w });
    procs.push(proc);
    err.closeWriter();
    const pid1 = await pidoneUnder(proc);
    await waitFor(() => count(f, "flood-done") === 1, 30_000, "the flood to finish");
    expect(await cpuOver(pid1, 1_000)).toBeLessThan(IDLE_CPU_SECONDS);
    process.kill(pid1, "SIGTERM");
    expect(await exitWithin(proc, 20_000)).toBe(0);
    expect(await err.finish()).toMatch(/^\[WARN  pidone \(1\)\] \d+ lines of service output were lost at exit$/m);
  });
});

// ---------------------------------------------------------------- closed at start

describe("stdout or stderr closed when pidone starts", () => {
  // The runtime puts /dev/null (close-on-exec) on a closed fd 0-2 before pidone's first
  // line: what pidone writes there is gone, and the child still gets it closed.
  const sh = (script: string, ...args: string[]) => run([SH, "-c", script, ...args]);
  const levels = (text: string) => text.split("\n").filter(Boolean).map((l) => /^\[(\w+) *pidone \(\d+\)\]/.exec(l)?.[1] ?? l);

  test("stderr closed: stdout carries exactly what it carries with stderr open, no warning or error moves to it", async () => {
    const closed = await sh('exec "$0" -vv -- true 2>&-', PIDONE);
    const open = await sh('exec "$0" -vv -- true 2>/dev/null', PIDONE);
    expect(closed.code).toBe(0);
    expect(levels(closed.stdout)).toEqual(levels(open.stdout));
    expect(levels(closed.stdout)).toEqual(["INFO", "DEBUG", "DEBUG", "INFO"]); // tini's: info and debug on stdout
    const tini = Bun.which("tini");
    if (tini) {
      // tini does the same: its info and debug lines are stdout's, whatever stderr is.
      const theirs = await sh('exec "$0" -vv -- true 2>&-', tini);
      expect(theirs.stdout.split("\n").filter(Boolean).map((l) => /^\[(\w+) *tini/.exec(l)?.[1])).toEqual(levels(closed.stdout));
    }
    const fatal = await sh('exec "$0" -vvv -- /nonexistent/program 2>&-', PIDONE);
    expect(fatal.code).toBe(127);
    expect(levels(fatal.stdout).filter((l) => l === "FATAL" || l === "WARN")).toEqual([]);
  });

  test("stdout closed: nothing of pidone's moves to stderr", async () => {
    const r = await sh('exec "$0" -s -vvv -- true >&-', PIDONE);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("the child gets the closed descriptor closed, and pidone's other streams as they were", async () => {
    const dir = tempDir("pidone-hostile-");
    const f = join(dir, "fds");
    // Each test before the shell's own redirection of its fd 1 for the echo.
    const probe = `: > "$0"; for n in 0 1 2; do if [ -e /proc/$$/fd/$n ]; then r=open; else r=closed; fi; echo "fd$n $r" >> "$0"; done`;
    for (const [redirect, expected] of [
      ["2>&-", ["fd0 open", "fd1 open", "fd2 closed"]],
      [">&-", ["fd0 open", "fd1 closed", "fd2 open"]],
      [">&- 2>&-", ["fd0 open", "fd1 closed", "fd2 closed"]],
    ] as const) {
      const r = await run([SH, "-c", `exec "$0" -s -- sh -c '${probe}' "$1" ${redirect}`, PIDONE, f], { stdin: "pipe" });
      expect(r.code).toBe(0);
      expect({ redirect, fds: readFileSync(f, "latin1").split("\n").filter(Boolean) }).toEqual({ redirect, fds: [...expected] });
    }
  });

  test("services mode, stdout closed: services' stdout lines and pidone's events are dropped, stderr lines still on stderr", async () => {
    const dir = tempDir("pidone-hostile-");
    const file = config(dir, `[services.web]\ncommand = "seq -f 'out %g' 1 100000; echo oops >&2"\nshell = true\n`);
    const r = await sh('exec "$0" -s -c "$1" >&-', PIDONE, file);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("web    | oops\n"); // nothing moved here, no loss reported: a closed stdout wants nothing
  });

  test("services mode, stderr closed: services' stderr lines are dropped, stdout keeps its own", async () => {
    const dir = tempDir("pidone-hostile-");
    const file = config(dir, `[services.web]\ncommand = "echo fine; echo oops >&2; echo fine again"\nshell = true\n`);
    const r = await sh('exec "$0" -s -c "$1" 2>&-', PIDONE, file);
    expect(r.code).toBe(0);
    expect(serviceLines(r.stdout, "web")).toEqual(["fine", "fine again"]);
    expect(r.stdout).not.toContain("oops");
  });
});

needs(NATIVE, SINGLE_FILE)("closed descriptors and no /dev/null (the single file)", () => {
  // The runtime aborts with its crash banner when it cannot put /dev/null on a closed
  // fd 0-2; the stub puts a stand-in there first. A tmpfs hides /dev in a mount namespace.
  const noDev = (script: string, ...args: string[]) =>
    run(["unshare", "--mount", SH, "-c", `mount -t tmpfs none /dev && ${script}`, ...args], { stdin: "pipe" });

  test("pidone runs, writes nothing where nothing is open, and the child gets the descriptors closed", async () => {
    const dir = tempDir("pidone-hostile-");
    const f = join(dir, "fds");
    const probe = `: > "$0"; for n in 0 1 2; do if [ -e /proc/$$/fd/$n ]; then r=open; else r=closed; fi; echo "fd$n $r" >> "$0"; done; exit 3`;
    for (const [redirect, expected] of [
      ["2>&-", ["fd0 open", "fd1 open", "fd2 closed"]],
      [">&- <&-", ["fd0 closed", "fd1 closed", "fd2 open"]],
    ] as const) {
      const r = await noDev(`exec "$0" -s -vv -- sh -c '${probe}' "$1" ${redirect}`, PIDONE, f);
      expect({ redirect, code: r.code }).toEqual({ redirect, code: 3 });
      expect(r.stderr).not.toContain("Bun");
      expect(r.stdout).not.toContain("Bun");
      expect(readFileSync(f, "latin1").split("\n").filter(Boolean)).toEqual([...expected]);
      if (redirect === "2>&-") expect(r.stdout).toMatch(/^\[INFO  pidone \(\d+\)\] Main child exited normally \(with status '3'\)$/m);
    }
  });
});

// ---------------------------------------------------------------- in this process

describe("pidone's own write into a pipe whose reader is gone raises no signal", () => {
  // pidone catches SIGPIPE (and SIGXFSZ) to forward them: one raised by its own failed
  // write would reach the child or the services. Here a handler counts any that arrive.
  async function signalsDuring(write: (fd: number) => Promise<void> | void): Promise<number> {
    let n = 0;
    const onPipe = () => n++;
    process.on("SIGPIPE", onPipe);
    try {
      const [r, w] = pipe();
      close(r);
      await write(w);
      close(w);
      await Bun.sleep(100); // a signal would be handled by now
      return n;
    } finally {
      process.off("SIGPIPE", onPipe);
    }
  }

  test("a control: a plain write(2) does raise one", async () => {
    expect(await signalsDuring((fd) => void Bun.write(Bun.file(fd), "x").catch(() => {}))).toBeGreaterThan(0);
  });

  test("the log's write (main thread)", async () => {
    expect(await signalsDuring((fd) => void expect(writeAll(fd, Buffer.from("line\n"), 100)).toBe(false))).toBe(0);
  });

  for (const thread of ["worker", "main"] as const)
    test(`the service output multiplexer's (${thread === "main" ? "main thread" : "its worker"})`, async () => {
      const n = await signalsDuring(async (fd) => {
        const mux = new OutputMux({ format: "prefix", names: ["web"], color: false, stdoutFd: fd, stderrFd: fd, thread });
        expect(await mux.started()).toBe(thread);
        for (let i = 0; i < 10; i++) mux.event("web", `event ${i}`);
        expect((await mux.drain(1_000)).droppedLines).toBeGreaterThan(0);
      });
      expect(n).toBe(0);
    });
});
