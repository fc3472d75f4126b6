// Where pidone's costs come from (the cost analysis behind the budgets), reproducibly:
//   bun scripts/bench/breakdown.ts [--runs N]
// 1. start-up from inside: trace.ts times the runtime's own start and each of pidone's
//    modules and steps (medians over N runs of a compiled trace program);
// 2. start-up from outside: wall and CPU time of single steps compiled alone, interleaved;
// 3. the exit path split: a C child alone, a Bun program that only exits (the kernel's
//    teardown of a Bun process), and a forwarder that stamps when its SIGCHLD handler
//    runs and when it calls _exit.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildFlags, prepare, ROOT } from "./lib/prepare.ts";
import { BENCH_ENV, mustRun, parseSeries } from "./lib/proc.ts";
import { summarize } from "./lib/stats.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "40" } } });
const runs = Number(values.runs);
const say = (s: string) => process.stderr.write(`[breakdown] ${s}\n`);
const built = await prepare(say);
const work = mkdtempSync(join(tmpdir(), "pidone-breakdown-"));
// The step programs import consola and citty: let them resolve from the project.
symlinkSync(join(ROOT, "node_modules"), join(work, "node_modules"));
const compile = (entry: string, out: string, extra: string[] = []) =>
  mustRun([process.execPath, "build", ...buildFlags(), ...extra, entry, "--outfile", out], { cwd: ROOT, timeoutMs: 180_000 });
const med = (xs: number[]) => summarize(xs)?.median ?? NaN;

try {
  // Single steps, each compiled alone (compare each with the empty program).
  const steps: Record<string, string> = {
    "import node:fs": 'import { readFileSync } from "node:fs";\nif (process.argv.length > 99) readFileSync("/");\n',
    "consola/core createConsola": 'import { createConsola } from "consola/core";\ncreateConsola({ reporters: [] });\n',
    "citty defineCommand": 'import { defineCommand } from "citty";\ndefineCommand({ meta: { name: "x" }, args: {} });\n',
    "dlopen libc, 1 symbol": 'import { dlopen } from "bun:ffi";\ndlopen("libc.so.6", { getpid: { args: [], returns: "i32" } }).symbols.getpid();\n',
    "process.on x18, process.exit":
      'for (const s of ["SIGHUP","SIGINT","SIGQUIT","SIGUSR1","SIGUSR2","SIGPIPE","SIGALRM","SIGTERM","SIGCONT","SIGTSTP","SIGWINCH","SIGURG","SIGXCPU","SIGXFSZ","SIGVTALRM","SIGPROF","SIGIO","SIGCHLD"]) process.on(s as NodeJS.Signals, () => {});\nprocess.exit(0);\n',
  };
  const stepBins: [string, string[]][] = [["empty Bun program", [built.bunEmptyPlain ?? built.bunEmpty]]];
  let i = 0;
  for (const [name, code] of Object.entries(steps)) {
    const entry = join(work, `step${i}.ts`);
    writeFileSync(entry, code);
    await compile(entry, join(work, `step${i}`));
    stepBins.push([name, [join(work, `step${i}`)]]);
    i++;
  }
  const trace = join(work, "trace");
  const exitChild = join(work, "bun-exit-child");
  const stamped = join(work, "stamped-forwarder");
  await compile(join(ROOT, "scripts/bench/breakdown/trace.ts"), trace);
  await compile(join(ROOT, "scripts/bench/breakdown/bun-exit-child.ts"), exitChild);
  await compile(join(ROOT, "scripts/bench/breakdown/stamped-forwarder.ts"), stamped);
  const pidonePlain = built.pidonePlain ?? built.pidone;
  stepBins.push(["pidone --version (every module, no spawn)", [pidonePlain, "--version"]]);
  stepBins.push(["Bun forwarder /bin/true", [built.bunForwarder, "/bin/true"]]);
  stepBins.push(["pidone /bin/true", [pidonePlain, "/bin/true"]]);
  stepBins.push(["/bin/true", ["/bin/true"]]);

  // 1. inside
  const traces: Record<string, number>[] = [];
  for (let r = 0; r < runs; r++) traces.push(JSON.parse(await mustRun([trace], { env: BENCH_ENV })).ms);
  console.log(`\n### Start-up from inside (trace.ts, median of ${runs} runs)\n\n| step | ms |\n|---|---:|`);
  for (const k of Object.keys(traces[0]!)) console.log(`| ${k} | ${med(traces.map((t) => t[k]!)).toFixed(2)} |`);

  // 2. outside
  const cmds = stepBins.flatMap(([, c], j) => (j ? [":::", ...c] : c));
  const out = parseSeries(await mustRun([built.spawntime, String(runs * 3), "3", ...cmds], { timeoutMs: 600_000 }));
  console.log(`\n### Start-up from outside (${runs * 3} interleaved runs; medians)\n\n| program | wall ms | CPU ms |\n|---|---:|---:|`);
  stepBins.forEach(([name], j) => {
    const wall = med((out.get("t")?.get(j) ?? []).map((n) => n / 1e6));
    const cpu = med((out.get("cpu")?.get(j) ?? []).map((n) => n / 1e6));
    console.log(`| ${name} | ${wall.toFixed(2)} | ${cpu.toFixed(2)} |`);
  });

  // 3. exit path
  const ex = parseSeries(
    await mustRun(
      [built.exitlat, "drive", String(runs), "20", built.exitlat, "child", ":::", exitChild, ":::", stamped, built.exitlat, "child", ":::", pidonePlain, built.exitlat, "child", ":::", "tini", "--", built.exitlat, "child"],
      { timeoutMs: 600_000 },
    ),
  );
  const us = (k: string, j: number) => med((ex.get(k)?.get(j) ?? []).map((n) => n / 1e3)).toFixed(0);
  console.log(`\n### Exit path (${runs} runs; medians, µs from the child's last instruction)\n`);
  console.log(`| what | µs |\n|---|---:|`);
  console.log(`| C child alone: its own teardown until its parent's waitpid returns | ${us("lat", 0)} |`);
  console.log(`| Bun program alone: _exit → parent's waitpid (teardown of a Bun process) | ${us("lat", 1)} |`);
  console.log(`| Bun forwarder: its SIGCHLD handler starts | ${us("stamp0", 2)} |`);
  console.log(`| Bun forwarder: it calls _exit | ${us("stamp1", 2)} |`);
  console.log(`| Bun forwarder: its parent's waitpid returns | ${us("lat", 2)} |`);
  console.log(`| pidone: its parent's waitpid returns | ${us("lat", 3)} |`);
  console.log(`| tini: its parent's waitpid returns | ${us("lat", 4)} |`);
} finally {
  rmSync(work, { recursive: true, force: true });
  rmSync(built.work, { recursive: true, force: true });
}
