// The soak (issue 13, "long runs stay flat"): pidone as PID 1 of a PID namespace, watched
// from outside through /proc (anonymous memory, descriptors, threads, zombies), while it
//   orphans  reaps N orphans (default 1,000,000) in each mode,
//   crash    supervises a service that crash-loops for M minutes (default 10) with a tiny
//            restart delay and no restart limit,
//   signals  takes a burst of N SIGUSR1 (default 1,000,000) in each mode; then its child
//            must still be alive and the stop clean.
// The workloads are one small C program (c/soakload.c), compiled here with gcc.
//
//   bun scripts/stress/soak.ts [--minutes M] [--orphans N] [--signals N]
//       [--modes single,pause,services] [--parts orphans,crash,signals] [--bin FILE] [--out FILE.md]
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";

const ROOT = join(import.meta.dir, "../..");
const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    orphans: { type: "string", default: "1000000" },
    signals: { type: "string", default: "1000000" },
    modes: { type: "string", default: "single,pause,services" },
    parts: { type: "string", default: "orphans,crash,signals" },
    bin: { type: "string", default: join(ROOT, "dist/pidone") },
    out: { type: "string" },
    help: { type: "boolean" },
  },
});
if (values.help) {
  console.log("bun scripts/stress/soak.ts [--minutes M] [--orphans N] [--signals N] [--modes single,pause,services] [--parts orphans,crash,signals] [--bin FILE] [--out FILE.md]");
  process.exit(0);
}

const MODES = ["single", "pause", "services"] as const;
type Mode = (typeof MODES)[number];
const minutes = Number(values.minutes);
const orphanCount = Number(values.orphans);
const signalCount = Number(values.signals);
const modes = values.modes!.split(",") as Mode[];
const parts = new Set(values.parts!.split(","));
const BIN = values.bin!;
for (const m of modes) if (!MODES.includes(m)) fail(`unknown mode ${JSON.stringify(m)} (single, pause, services)`);
if (!(minutes > 0) || !(orphanCount > 0) || !(signalCount > 0)) fail("--minutes, --orphans and --signals take numbers above 0");
if (!existsSync(BIN)) fail(`${BIN} is missing: run npm run build first`);
if (process.getuid?.() !== 0) fail("needs root (unshare --pid, nsenter)");

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(1);
}

const report: string[] = [];
/** A line of the report: printed now, and kept for --out. */
function say(line = ""): void {
  process.stdout.write(`${line}\n`);
  report.push(line);
}
const note = (s: string) => process.stderr.write(`[soak] ${s}\n`);

// ------------------------------------------------------------------ the workloads

const work = mkdtempSync(join(tmpdir(), "pidone-soak-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
const LOAD = join(work, "soakload");
{
  const cc = Bun.spawnSync(["gcc", "-O2", "-Wall", "-Wextra", "-static", "-o", LOAD, join(import.meta.dir, "c/soakload.c")]);
  if (cc.exitCode !== 0) fail(`gcc failed:\n${cc.stderr.toString()}`);
}
const ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" };

// ------------------------------------------------------------------ /proc

/** Children of pid, from every thread's list (a child belongs to the thread that forked or adopted it). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** The state letter of a process ("R", "S", "Z"…), or null once it is gone. */
function stateOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

const alive = (pid: number) => {
  const s = stateOf(pid);
  return s !== null && s !== "Z" && s !== "X";
};

/** The first descendant of root running `comm`, breadth first. */
function findDescendant(root: number, comm: string): number | null {
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const c of childrenOf(pid)) {
      try {
        if (readFileSync(`/proc/${c}/comm`, "utf8").trim() === comm) return c;
      } catch {
        continue;
      }
      queue.push(c);
    }
  }
  return null;
}

interface Sample {
  /** Seconds since the part began. */
  t: number;
  rssAnonKb: number;
  vmRssKb: number;
  threads: number;
  fds: number;
  zombies: number;
}

function sample(pid: number, t0: number): Sample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
    const zombies = childrenOf(pid).filter((c) => stateOf(c) === "Z").length;
    return {
      t: (performance.now() - t0) / 1000,
      rssAnonKb: field("RssAnon"),
      vmRssKb: field("VmRSS"),
      threads: field("Threads"),
      fds: readdirSync(`/proc/${pid}/fd`).length,
      zombies,
    };
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ pidone under unshare

/** Lines of a stream, each handed to `on`, the last few kept for messages. */
function pump(stream: ReadableStream<Uint8Array>, on: (line: string) => void, tail: string[]): Promise<void> {
  return (async () => {
    const dec = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        tail.push(line);
        if (tail.length > 20) tail.shift();
        on(line);
      }
    }
  })();
}

/** The pidones running now: killed if the soak ends early (their namespaces go with them). */
const running = new Set<Run>();
process.on("exit", () => {
  for (const r of running) {
    try {
      if (r.pid) process.kill(r.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

class Run {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  pid = 0;
  private seen: string[] = [];
  private waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  readonly tail: string[] = [];
  private pumped: Promise<void[]>;
  counters = new Map<RegExp, number>();

  constructor(args: string[]) {
    this.proc = Bun.spawn(["unshare", "--pid", "--fork", "--mount-proc", BIN, ...args], {
      env: ENV,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const on = (line: string) => {
      for (const [re, n] of this.counters) if (re.test(line)) this.counters.set(re, n + 1);
      const w = this.waiters.findIndex((x) => x.re.test(line));
      if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(line);
      else if (this.seen.length < 50) this.seen.push(line);
    };
    this.pumped = Promise.all([pump(this.proc.stdout, on, this.tail), pump(this.proc.stderr, on, this.tail)]);
    running.add(this);
  }

  /** Waits for pidone to be there, as the child of unshare. */
  async up(): Promise<void> {
    this.pid = await poll(() => childrenOf(this.proc.pid)[0] ?? null, 10_000, "pidone under unshare");
  }

  /** The first line (seen already, or to come) matching re. */
  line(re: RegExp, ms: number): Promise<string> {
    const i = this.seen.findIndex((l) => re.test(l));
    if (i >= 0) return Promise.resolve(this.seen.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} in ${ms} ms; last lines:\n${this.tail.join("\n")}`)), ms);
      this.waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  /** SIGTERM to pidone: its exit status (unshare passes it on) and how long the stop took. */
  async stop(ms = 15_000): Promise<{ code: number | null; seconds: number }> {
    const t0 = performance.now();
    try {
      process.kill(this.pid, "SIGTERM");
    } catch {
      // gone already: its exit status says why
    }
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), ms);
    const code = await this.proc.exited;
    clearTimeout(timer);
    running.delete(this);
    await this.pumped;
    const seconds = (performance.now() - t0) / 1000;
    return { code: seconds * 1000 >= ms ? null : code, seconds };
  }
}

/**
 * Waits until pidone has settled after its start-up (RssAnon and descriptors unchanged for
 * a second), so that a baseline does not count the start-up itself.
 */
async function settled(pid: number): Promise<Sample> {
  let last = sample(pid, 0);
  let steady = 0;
  for (let i = 0; i < 100 && steady < 5; i++) {
    await Bun.sleep(200);
    const s = sample(pid, 0);
    steady = s && last && s.rssAnonKb === last.rssAnonKb && s.fds === last.fds ? steady + 1 : 0;
    last = s;
  }
  if (!last) throw new Error(`pidone (pid ${pid}) is gone`);
  return last;
}

async function poll<T>(f: () => T | null, ms: number, what: string): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = f();
    if (v !== null) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

function servicesFile(name: string, argv: string[], extra = ""): string {
  const file = join(work, `${name}.toml`);
  writeFileSync(file, `[services.${name}]\ncommand = ${JSON.stringify(argv)}\n${extra}`);
  return file;
}

/** Samples pid every `everyMs` until stopped; keeps every sample. */
function sampler(pid: number, t0: number, everyMs: number) {
  const samples: Sample[] = [];
  const take = () => {
    const s = sample(pid, t0);
    if (s) samples.push(s);
    return s;
  };
  const timer = setInterval(take, everyMs);
  return { samples, take, stop: () => clearInterval(timer) };
}

const kb = (n: number) => `${(n / 1024).toFixed(2)} MB`;
const signedKb = (n: number) => `${n >= 0 ? "+" : "−"}${Math.abs(n)} kB`;
const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);
const verdicts: boolean[] = [];
const verdict = (ok: boolean) => (verdicts.push(ok), ok ? "ok" : "**FAILED**");

// ------------------------------------------------------------------ orphans

async function orphans(mode: Mode): Promise<string> {
  const load = [LOAD, "orphans", String(orphanCount)];
  const run = new Run(mode === "single" ? ["--", ...load] : mode === "pause" ? ["--pause"] : ["-c", servicesFile("load", load)]);
  await run.up();
  let entered: Subprocess<"ignore", "pipe", "inherit"> | null = null;
  let ready: Promise<unknown>;
  let done: Promise<string>;
  let loadPid: number;
  if (mode === "pause") {
    // The pause container's job: the orphans of processes that joined its namespace.
    entered = Bun.spawn(["nsenter", "-t", String(run.pid), "-p", "-m", "--", ...load], { env: ENV, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
    const out = entered.stdout;
    let readied: () => void;
    ready = new Promise<void>((r) => (readied = r));
    done = new Promise((resolve) => void pump(out, (l) => (l.includes("orphans ready") && readied(), l.includes("orphans made=") && resolve(l)), []));
    loadPid = await poll(() => findDescendant(entered!.pid, "soakload"), 10_000, "the orphan maker");
  } else {
    ready = run.line(/orphans ready/, 10_000);
    done = run.line(/orphans made=/, 3_600_000);
    loadPid = await poll(() => findDescendant(run.pid, "soakload"), 10_000, "the orphan maker");
  }
  await ready;
  await settled(run.pid);
  const t0 = performance.now();
  const s = sampler(run.pid, t0, 1000);
  const start = s.take()!;
  process.kill(loadPid, "SIGUSR2");
  const line = await done;
  const end = s.take()!;
  s.stop();
  const seconds = (performance.now() - t0) / 1000;
  // The stop: pidone's SIGTERM reaches the maker (as the program, or a service); in
  // --pause mode the maker is no child of pidone's, and is ended first.
  if (entered) {
    process.kill(loadPid, "SIGTERM");
    await entered.exited;
  }
  const stop = await run.stop();
  const made = Number(/made=(\d+)/.exec(line)?.[1] ?? NaN);
  const left = Number(/left=(\d+)/.exec(line)?.[1] ?? NaN);
  const growth = end.rssAnonKb - start.rssAnonKb;
  // Whether it levels off: the growth over the second half of the run alone.
  const half = s.samples.find((x) => x.t >= end.t / 2) ?? start;
  const ok = made === orphanCount && left === 0 && growth < 1024 && end.fds <= start.fds && stop.code === 0;
  return [
    `| ${mode} | ${made.toLocaleString("en")} in ${seconds.toFixed(0)} s | ${left} | ${kb(start.rssAnonKb)} → max ${kb(max(s.samples.map((x) => x.rssAnonKb)))} → ${kb(end.rssAnonKb)}`,
    `${signedKb(growth)} | ${signedKb(end.rssAnonKb - half.rssAnonKb)}`,
    `${start.fds} → max ${max(s.samples.map((x) => x.fds))} → ${end.fds} | ${start.threads} → ${end.threads} | ${stop.code} in ${stop.seconds.toFixed(2)} s | ${verdict(ok)} |`,
  ].join(" | ");
}

// ------------------------------------------------------------------ crash loop

async function crashLoop(): Promise<string[]> {
  const file = servicesFile(
    "crash",
    [LOAD, "exit", "1"],
    'restart = "always"\nrestart_delay = 0.01\nrestart_delay_max = 0.01\nmax_restarts = inf\ncritical = false\n',
  );
  const run = new Run(["-c", file]);
  const started = /crash: started/;
  run.counters.set(started, 0);
  await run.up();
  await run.line(started, 10_000);
  const t0 = performance.now();
  const s = sampler(run.pid, t0, 5000);
  const first = s.take()!;
  const firstStarts = run.counters.get(started)!;
  const rows: string[] = [];
  const row = (x: Sample, starts: number) =>
    `| ${(x.t / 60).toFixed(1)} | ${starts.toLocaleString("en")} | ${kb(x.rssAnonKb)} | ${kb(x.vmRssKb)} | ${x.fds} | ${x.threads} | ${x.zombies} |`;
  const zombiesSeen: number[] = [];
  const zombieWatch = setInterval(() => {
    zombiesSeen.push(childrenOf(run.pid).filter((c) => stateOf(c) === "Z").length);
  }, 200);
  for (let minute = 1; minute <= Math.ceil(minutes); minute++) {
    await Bun.sleep(Math.min(minute, minutes) * 60_000 - (performance.now() - t0));
    const x = s.take();
    if (!x) throw new Error(`pidone is gone after ${minute} min; last lines:\n${run.tail.join("\n")}`);
    rows.push(row(x, run.counters.get(started)!));
    note(`crash loop: ${rows.at(-1)}`);
  }
  clearInterval(zombieWatch);
  s.stop();
  const restarts = run.counters.get(started)! - 1;
  const stop = await run.stop();
  // Flat: from the first minute on (or the second half of a shorter run), once the
  // runtime's heap has grown to its working size.
  const warm = s.samples.find((x) => x.t >= Math.min(60, (minutes * 60) / 2)) ?? first;
  const last = s.samples.at(-1)!;
  const growth = last.rssAnonKb - warm.rssAnonKb;
  const ok = restarts > 1000 && last.fds <= warm.fds && max(zombiesSeen) <= 1 && growth < 1024 && stop.code === 0;
  return [
    "| minutes | starts | RssAnon | VmRSS | descriptors | threads | zombies |",
    "|---|---|---|---|---|---|---|",
    row(first, firstStarts),
    ...rows,
    "",
    `${restarts.toLocaleString("en")} restarts in ${minutes} min (${(restarts / (minutes * 60)).toFixed(1)}/s); ` +
      `RssAnon from ${(warm.t / 60).toFixed(1)} min to the end ${signedKb(growth)} (from the start ${signedKb(last.rssAnonKb - first.rssAnonKb)}), highest ${kb(max(s.samples.map((x) => x.rssAnonKb)))}; ` +
      `descriptors ${warm.fds} → ${last.fds}; at most ${max(zombiesSeen)} zombie in ${zombiesSeen.length} looks (every 0.2 s); ` +
      `stop: exit ${stop.code} in ${stop.seconds.toFixed(2)} s: ${verdict(ok)}`,
  ];
}

// ------------------------------------------------------------------ signal bursts

async function burst(mode: Mode): Promise<string> {
  const sink = [LOAD, "sink"];
  const run = new Run(mode === "single" ? ["--", ...sink] : mode === "pause" ? ["--pause"] : ["-c", servicesFile("sink", sink)]);
  await run.up();
  const t0 = performance.now();
  let sinkPid: number | null = null;
  if (mode !== "pause") {
    await run.line(/sink ready/, 10_000);
    sinkPid = await poll(() => findDescendant(run.pid, "soakload"), 10_000, "the sink");
  }
  const start = await settled(run.pid);
  const sender = Bun.spawn([LOAD, "burst", String(run.pid), String(signalCount)], { env: ENV, stdout: "pipe", stderr: "inherit" });
  const sent = (await new Response(sender.stdout).text()).trim();
  await sender.exited;
  // The last signals may still be queued: let pidone drain them before looking.
  await Bun.sleep(500);
  const end = sample(run.pid, t0);
  const pidoneAlive = alive(run.pid);
  const childAlive = sinkPid === null ? null : alive(sinkPid);
  const stop = await run.stop();
  const received = /received=(\d+)/.exec(run.tail.join("\n"))?.[1];
  const ms = /ms=(\d+)/.exec(sent)?.[1];
  const ok = pidoneAlive && childAlive !== false && stop.code === 0 && /failed=0/.test(sent);
  return [
    `| ${mode} | ${signalCount.toLocaleString("en")} in ${ms} ms | ${pidoneAlive ? "alive" : "**gone**"}`,
    `${childAlive === null ? "(no child)" : childAlive ? `alive, ${Number(received ?? NaN).toLocaleString("en")} delivered` : "**gone**"}`,
    `${kb(start.rssAnonKb)} → ${end ? kb(end.rssAnonKb) : "–"} | ${start.fds} → ${end?.fds ?? "–"} | ${start.threads} → ${end?.threads ?? "–"}`,
    `${stop.code} in ${stop.seconds.toFixed(2)} s | ${verdict(ok)} |`,
  ].join(" | ");
}

// ------------------------------------------------------------------ the run

const began = new Date();
say(`# Soak: ${began.toISOString().slice(0, 16).replace("T", " ")} UTC`);
say();
say(`${BIN.replace(`${ROOT}/`, "")}, as PID 1 of a PID namespace (\`unshare --pid --fork --mount-proc\`), watched through /proc from outside;`);
say(`${navigator.hardwareConcurrency} CPUs, load average ${loadavg()[0]!.toFixed(2)} at the start (other work shares the machine).`);
say();

if (parts.has("orphans")) {
  note(`orphans: ${orphanCount} per mode (${modes.join(", ")})`);
  say(`## ${orphanCount.toLocaleString("en")} orphans reaped, per mode`);
  say();
  say("Each orphan is double-forked by a helper inside the namespace (in `--pause` mode, a process that joined it with nsenter), never more than 2,000 waiting. RssAnon and descriptors of pidone at the start, highest (sampled every second) and at the end.");
  say();
  say("| mode | orphans | left | RssAnon | growth | in the second half | descriptors | threads | stop (exit, time) | under 1 MB, no fd growth, clean stop |");
  say("|---|---|---|---|---|---|---|---|---|---|");
  for (const m of modes) say(await orphans(m));
  say();
}

if (parts.has("crash")) {
  note(`crash loop: ${minutes} min`);
  say(`## A service crash-looping for ${minutes} min`);
  say();
  say('`restart = "always"`, `restart_delay = 0.01`, `restart_delay_max = 0.01`, `max_restarts = inf`, `critical = false` (so that the stop ends with 0); the service exits 1 at once. pidone sampled every minute (zombies: its children in state Z, looked at every 0.2 s).');
  say();
  for (const l of await crashLoop()) say(l);
  say();
}

if (parts.has("signals")) {
  note(`signals: ${signalCount} per mode (${modes.join(", ")})`);
  say(`## ${signalCount.toLocaleString("en")} SIGUSR1 in one burst, per mode`);
  say();
  say("Sent to pidone from outside by one process, `kill(2)` in a loop. The child (tini's mode: the program; services: one service; `--pause` has none) counts what reaches it: standard signals that arrive while one is pending merge into it. Then SIGTERM: the stop must be clean (exit 0).");
  say();
  say("| mode | burst | pidone | child | RssAnon | descriptors | threads | stop (exit, time) | alive, clean stop |");
  say("|---|---|---|---|---|---|---|---|---|");
  for (const m of modes) say(await burst(m));
  say();
}

const failed = verdicts.filter((v) => !v).length;
say(`${verdicts.length - failed} of ${verdicts.length} checks held; ${((Date.now() - began.getTime()) / 60_000).toFixed(1)} min in all.`);
if (values.out) writeFileSync(values.out, `${report.join("\n")}\n`);
process.exit(failed === 0 ? 0 : 1);
