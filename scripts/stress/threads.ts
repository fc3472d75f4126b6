// Thread census: which threads pidone runs in each mode, and whether their set stays fixed
// once the child or the services run (issue 13: a thread the runtime cannot create
// mid-run, under a full pids limit, aborts PID 1 and with it the container).
//
// Each scenario runs pidone as PID 1 of a new PID namespace, samples /proc/PID/task
// every few milliseconds, and keeps it busy: tini's mode with orphans, output and a
// signal storm; --pause with orphans and a signal storm; services mode with 20,000-line
// bursts, restarts, every kind of readiness probe (http, tcp to localhost, file, exec)
// and signal storms; then the stop.
//
//   bun scripts/stress/threads.ts [--seconds N] [--bin FILE]...
//
// N: the busy run per mode (default 60); FILE: the files to census (default dist/pidone
// and dist/pidone-glibc). Prints, per file and mode, the threads at start-up and every
// thread that appeared or ended after it; exits 1 when a single file's set moved.
// test/hostile-threads.test.ts runs the same scenarios for a few seconds.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

// ---------------------------------------------------------------- the census

/** tid → thread name (/proc/PID/task/TID/comm). */
export type Threads = Map<number, string>;

function threadsOf(pid: number): Threads | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const out: Threads = new Map();
  for (const t of tids) {
    let name = "?";
    try {
      name = readFileSync(`/proc/${pid}/task/${t}/comm`, "latin1").trim();
    } catch {
      continue; // it ended between the two reads
    }
    out.set(Number(t), name);
  }
  return out;
}

export interface Census {
  /** The threads when start-up ended (the child or the first service running). */
  atStart: Threads;
  /** Threads seen after start-up that were not there then. */
  appeared: Threads;
  /** Start-up threads that ended before the stop began. */
  ended: Threads;
  samples: number;
}

/** Samples a process's threads until stopped; mark() ends start-up, stopping() starts the stop. */
export class ThreadWatch {
  private base: Threads | null = null;
  private stopping_ = false;
  private running = true;
  private readonly appeared: Threads = new Map();
  private readonly ended: Threads = new Map();
  private samples = 0;
  private readonly loop: Promise<void>;

  constructor(
    readonly pid: number,
    intervalMs = 2,
  ) {
    this.loop = (async () => {
      while (this.running && this.sample()) await Bun.sleep(intervalMs);
    })();
  }

  private sample(): boolean {
    const now = threadsOf(this.pid);
    // A zombie keeps its /proc entry with the main thread alone: that is the exit, not an end.
    if (now === null || isZombie(this.pid)) return false;
    this.samples++;
    if (this.base) {
      // A new thread shows its creator's name until it names itself: keep the latest.
      for (const [tid, name] of now) if (!this.base.has(tid)) this.appeared.set(tid, name);
      if (!this.stopping_) for (const [tid, name] of this.base) if (!now.has(tid)) this.ended.set(tid, name);
    }
    return true;
  }

  /** Start-up is over: from now on, the set must not move. */
  mark(): Threads {
    this.sample();
    this.base = threadsOf(this.pid) ?? new Map();
    return this.base;
  }

  /** The stop begins: threads may end (pidone exits), none may appear. */
  stopping(): void {
    this.sample();
    this.stopping_ = true;
  }

  async finish(): Promise<Census> {
    this.running = false;
    await this.loop;
    return { atStart: this.base ?? new Map(), appeared: this.appeared, ended: this.ended, samples: this.samples };
  }
}

function catches(pid: number, sig: number): boolean {
  const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(sig - 1)) & 1n) === 1n;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat[stat.lastIndexOf(")") + 2] === "Z";
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------- running pidone as PID 1

interface Pid1 {
  pid: number;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Lines of stdout seen so far that match a watched pattern, and the count of all lines. */
  lines: number;
  text(): string;
  waitFor(what: string, cond: () => boolean, ms: number): Promise<void>;
  exit(ms: number): Promise<number>;
}

const TAIL = 64 * 1024;

/** pidone under `unshare --pid --fork --mount-proc`; stdout and stderr read as they come (the tail kept). */
async function startPid1(bin: string, args: string[], keep: (line: string) => boolean): Promise<Pid1> {
  const proc = Bun.spawn(["unshare", "--pid", "--fork", "--mount-proc", bin, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  let kept = "";
  let tail = "";
  const state = { lines: 0 };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      const text = partial + dec.decode(chunk, { stream: true });
      const cut = text.lastIndexOf("\n");
      partial = text.slice(cut + 1);
      tail = (tail + text.slice(0, cut + 1)).slice(-TAIL);
      for (const line of text.slice(0, cut + 1).split("\n")) {
        if (line === "") continue;
        state.lines++;
        if (keep(line)) kept += `${line}\n`;
      }
    }
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  const deadline = Date.now() + 10_000;
  let pid = 0;
  while (!pid) {
    try {
      pid = Number(readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "latin1").trim().split(/\s+/)[0]) || 0;
    } catch {
      // unshare is still starting
    }
    if (!pid && Date.now() > deadline) throw new Error("pidone did not start under unshare");
    if (!pid) await Bun.sleep(1);
  }
  const waitFor = async (what: string, cond: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output so far:\n${kept.slice(-4000)}\n--- tail\n${tail.slice(-4000)}`);
      await Bun.sleep(5);
    }
  };
  return {
    pid,
    proc,
    get lines() {
      return state.lines;
    },
    text: () => `${kept}\n--- tail of the output\n${tail.slice(-8000)}`,
    waitFor,
    exit: async (ms) => {
      const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
      const code = await proc.exited;
      clearTimeout(timer);
      await pumped;
      return code;
    },
  };
}

/** `count` signals to `pid`, a few hundred per turn of the event loop. */
async function storm(pid: number, sig: NodeJS.Signals, count: number): Promise<number> {
  let sent = 0;
  while (sent < count) {
    for (let i = 0; i < 500 && sent < count; i++, sent++) {
      try {
        process.kill(pid, sig);
      } catch {
        return sent;
      }
    }
    await Bun.sleep(0);
  }
  return sent;
}

/** Orphans for PID 1: each subshell exits at once and leaves its sleep to pidone. */
async function orphans(pid: number, count: number): Promise<void> {
  const p = Bun.spawn(["nsenter", "-t", String(pid), "-p", "--", "sh", "-c", `i=0; while [ $i -lt ${count} ]; do (sleep 0.05 &); i=$((i+1)); done`], {
    stdio: ["ignore", "ignore", "ignore"],
  });
  await p.exited;
}

// ---------------------------------------------------------------- the scenarios

export interface Outcome {
  mode: string;
  census: Census;
  code: number;
  /** What the run did, for the report. */
  did: string;
  /** Output kept for a failure's message. */
  output: string;
}

const busyUntil = (ms: number) => {
  const end = Date.now() + ms;
  return () => Date.now() < end;
};

/** tini's mode: a child that floods its output and leaves orphans; a signal storm; SIGTERM. */
export async function tiniMode(bin: string, busyMs: number): Promise<Outcome> {
  const child = "trap 'echo usr1' USR1; echo child-up; while :; do (sleep 0.01 &); seq 1 2000; done";
  const p = await startPid1(bin, ["--", "sh", "-c", child], (l) => l === "child-up" || l === "usr1");
  const watch = new ThreadWatch(p.pid);
  await p.waitFor("the child", () => p.text().includes("child-up"), 15_000);
  const atStart = watch.mark();
  let signals = 0;
  for (const busy = busyUntil(busyMs); busy(); ) {
    signals += await storm(p.pid, "SIGUSR1", 2000);
    await Bun.sleep(50);
  }
  watch.stopping();
  process.kill(p.pid, "SIGTERM");
  const code = await p.exit(20_000);
  return { mode: "tini", census: await watch.finish(), code, did: `${p.lines} lines, ${signals} SIGUSR1 (start-up: ${atStart.size})`, output: p.text() };
}

/** --pause: orphans and a signal storm, then SIGTERM. */
export async function pauseMode(bin: string, busyMs: number): Promise<Outcome> {
  const p = await startPid1(bin, ["--pause"], () => true);
  const watch = new ThreadWatch(p.pid);
  // Up once it catches SIGTERM: its intake listens.
  await p.waitFor("--pause to listen", () => catches(p.pid, 15), 15_000);
  watch.mark();
  let signals = 0;
  let reaped = 0;
  for (const busy = busyUntil(busyMs); busy(); ) {
    await orphans(p.pid, 50);
    reaped += 50;
    signals += await storm(p.pid, "SIGUSR1", 2000);
  }
  watch.stopping();
  process.kill(p.pid, "SIGTERM");
  const code = await p.exit(20_000);
  return { mode: "pause", census: await watch.finish(), code, did: `${reaped} orphans, ${signals} SIGUSR1`, output: p.text() };
}

let port = 30000 + (process.pid % 10000);

/** The services scenario's configuration: bursts and restarts, every probe kind (readiness and liveness), signals. */
function servicesConfig(dir: string, format: "prefix" | "json"): string {
  const web = port++;
  const tcp = port++;
  writeFileSync(join(dir, "index.html"), "ok\n");
  // WINCH is the storm every service takes (the default action ignores it); USR1 goes to
  // `sig` alone, which traps it.
  return `
[settings]
log_format = "${format}"
grace = 10

[services.burst]
command = ["sh", "-c", "seq 1 20000; exit 1"]
restart = "always"
max_restarts = 1000
critical = false
signals = ["WINCH"]

[services.chatty]
command = ["sh", "-c", "while :; do seq 1 2000; sleep 0.2; done"]
signals = ["WINCH"]

[services.web]
command = ["busybox", "httpd", "-f", "-p", "127.0.0.1:${web}", "-h", "${dir}"]
ready = { http = "http://127.0.0.1:${web}/index.html" }
health = { http = "http://127.0.0.1:${web}/index.html", interval = 0.2, timeout = 10, retries = 10 }
signals = ["WINCH"]

[services.tcp]
command = ["busybox", "httpd", "-f", "-p", "127.0.0.1:${tcp}", "-h", "${dir}"]
ready = { tcp = "localhost:${tcp}" }
health = { tcp = "localhost:${tcp}", interval = 0.2, timeout = 10, retries = 10 }
signals = ["WINCH"]

[services.file]
command = ["sh", "-c", "sleep 0.3; touch ${dir}/ready-file; exec sleep 100000"]
ready = { file = "${dir}/ready-file" }
signals = ["WINCH"]

[services.exec]
command = ["sleep", "100000"]
ready = { exec = ["sh", "-c", "sleep 0.2"] }
health = { exec = ["sh", "-c", "sleep 0.1"], interval = 0.2, timeout = 10, retries = 10 }
signals = ["WINCH"]

[services.sig]
command = ["sh", "-c", "trap 'echo usr1' USR1; while :; do sleep 1; done"]
after = ["web", "tcp", "file", "exec"]
signals = ["USR1", "WINCH"]

[services.flaky]
# restarts with a probe each time: the probes run mid-run, not only at start-up
command = ["sh", "-c", "sleep 0.5; exit 1"]
ready = { http = "http://127.0.0.1:${web}/index.html" }
restart = "always"
max_restarts = 1000
critical = false
signals = ["WINCH"]
`;
}

/** One `pidone --ctl` call (the operator's client, not pidone): its exit code. */
async function ctl(bin: string, sock: string, ...words: string[]): Promise<number> {
  const proc = Bun.spawn([bin, "--ctl", "--control", sock, ...words], { stdout: "ignore", stderr: "ignore" });
  return proc.exited;
}

/** Services mode: bursts, restarts, probes, signal storms, the operator's requests (control socket and HTTP), the stop. */
export async function servicesMode(bin: string, busyMs: number, format: "prefix" | "json" = "prefix"): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), "pidone-threads-"));
  try {
    const file = join(dir, "services.toml");
    writeFileSync(file, servicesConfig(dir, format));
    const events = (l: string) => (format === "json" ? l.includes('"event":') : l.startsWith("pidone ")) || /usr1/.test(l);
    const sock = join(dir, "control.sock");
    const http = `127.0.0.1:${port++}`;
    const p = await startPid1(bin, ["--control", sock, "--http", http, "--config", file], events);
    const watch = new ThreadWatch(p.pid);
    // The first service started: every thread pidone keeps exists by then.
    await p.waitFor("the first service", () => /started/.test(p.text()), 15_000);
    watch.mark();
    await p.waitFor("sig's start (every probe passed)", () => /sig\W+(?:message\W+)?started|"service":"sig","event":"started"/.test(p.text()), 30_000);
    let signals = 0;
    let requests = 0;
    for (let round = 0, busy = busyUntil(busyMs); busy(); round++) {
      signals += await storm(p.pid, "SIGWINCH", 2000);
      signals += await storm(p.pid, "SIGUSR1", 200);
      // The operator's side: every answer is served on the threads of start-up too.
      const asked = await Promise.all([
        ctl(bin, sock, "status", "--json"),
        ctl(bin, sock, ...(round % 3 === 0 ? ["restart", "chatty"] : ["health"])),
        fetch(`http://${http}/metrics`).then((r) => r.text().then(() => 0), () => 1),
        fetch(`http://${http}/status`).then((r) => r.text().then(() => 0), () => 1),
      ]);
      // status --json and the two GETs must be answered; health and restart may say no.
      requests += [asked[0], asked[2], asked[3]].filter((code) => code === 0).length;
      await Bun.sleep(100);
    }
    watch.stopping();
    process.kill(p.pid, "SIGTERM");
    const code = await p.exit(30_000);
    const text = p.text();
    const restarts = (text.match(/restarting/g) ?? []).length;
    return {
      mode: `services (${format})`,
      census: await watch.finish(),
      code,
      did: `${p.lines} lines, ${restarts} restarts, ${signals} signals, ${requests} control and HTTP requests answered`,
      output: text,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the report

const names = (t: Threads) => [...t.values()].sort().join(", ") || "none";

export function describeOutcome(o: Outcome): string {
  const c = o.census;
  const moved = c.appeared.size + c.ended.size;
  return [
    `  ${o.mode}: ${c.atStart.size} threads at start-up (${names(c.atStart)})`,
    `    after start-up: ${moved === 0 ? "no change" : `appeared ${names(c.appeared)}; ended ${names(c.ended)}`}`,
    `    ${o.did}; exit ${o.code}; ${c.samples} samples`,
  ].join("\n");
}

/** pidone's last event lines, once each (a failure's context, without the services' floods). */
function lastEvents(output: string): string {
  const events = output.split("\n").filter((l) => /^pidone |"event":|^\[|pidone:/.test(l));
  return [...new Set(events)].slice(-30).map((l) => `      ${l.slice(0, 200)}`).join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, bin: { type: "string", multiple: true } } });
  const seconds = Number(values.seconds);
  const bins = values.bin ?? [join(ROOT, "dist/pidone"), join(ROOT, "dist/pidone-glibc")].filter((f) => existsSync(f));
  if (!bins.length) throw new Error("no dist/pidone: run npm run build first");
  let moved = false;
  for (const bin of bins) {
    console.log(`${bin} (${seconds} s of busy run per mode)`);
    for (const run of [tiniMode, pauseMode, servicesMode, (b: string, ms: number) => servicesMode(b, ms, "json")]) {
      const o = await run(bin, seconds * 1000);
      console.log(describeOutcome(o));
      // tini's mode ends with its child's SIGTERM; the others stop cleanly.
      if (o.code !== (o.mode === "tini" ? 143 : 0)) console.log(`    unexpected exit; pidone's last events:\n${lastEvents(o.output)}`);
      const single = !bin.endsWith("-glibc");
      if (single && o.census.appeared.size + o.census.ended.size > 0) moved = true;
    }
  }
  process.exit(moved ? 1 : 0);
}
