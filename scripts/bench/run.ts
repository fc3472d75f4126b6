// npm run bench: pidone side by side with tini, tini-static, dumb-init and catatonit,
// and the floors (an empty Bun program and a minimal Bun forwarder compiled as pidone is,
// and the child with no init); and metric 8, pidone's log output against cat and, under
// the log flood, its signal latency against the forwarder; and metric 9, what one
// `pidone --ctl status` costs. See scripts/bench/README.md.
//
//   bun scripts/bench/run.ts [--smoke] [--docker] [--no-logs] [--out DIR] [--single-file PATH] [--only a,b]
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { judgeBudgets, budgetLines } from "./lib/budgets.ts";
import { measureCtl } from "./lib/ctl.ts";
import { measureDockerStop } from "./lib/docker.ts";
import { measureIdle } from "./lib/idle.ts";
import { LOG_METRICS, LOG_SUBJECTS, measureLogs } from "./lib/logs.ts";
import { describeMachine, machineLine } from "./lib/machine.ts";
import { measureExit, measureReaping, measureSignals, measureSize, measureStartup } from "./lib/measure.ts";
import { ROOT, ensurePackages, fileBytes, prepare, versionOf } from "./lib/prepare.ts";
import { detailTable, floorTable, summarizeMetric, summaryTable, type MetricSummary } from "./lib/report.ts";
import type { Family, MetricResult, Subject } from "./lib/types.ts";
import { loadavg, tmpdir } from "node:os";

const { values } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    docker: { type: "boolean", default: false },
    // Metric 8 runs by default; --logs is still accepted (it was once needed to ask for it).
    logs: { type: "boolean", default: true },
    "no-logs": { type: "boolean", default: false },
    out: { type: "string" },
    "single-file": { type: "string" },
    only: { type: "string" },
  },
});

const smoke = values.smoke!;
const plan = smoke
  ? { startup: 10, signals: 30, exitRounds: 5, exitSettle: 20, orphans: 500, stormRounds: 1, zombies: 200, drainRounds: 1, idleS: 1, idleSettle: 300, docker: 1,
      logs: { runs: 1, scale: 0.01, signals: 20, rounds: 1 }, ctl: { rounds: 10, rssRounds: 3 } }
  : { startup: 300, signals: 1000, exitRounds: 64, exitSettle: 20, orphans: 20_000, stormRounds: 1, zombies: 5000, drainRounds: 15, idleS: 10, idleSettle: 1000, docker: 5,
      logs: { runs: 5, scale: 1, signals: 300, rounds: 4 }, ctl: { rounds: 300, rssRounds: 30 } };
const FAMILIES = ["startup", "signal", "exit", "reaping", "idle", "docker", "size", "logs", "ctl"] as const;
const only = new Set<string>(values.only ? values.only.split(",") : FAMILIES);
const runs = (f: Family) =>
  only.has(f) && (f !== "docker" || (values.docker! && !smoke)) && (f !== "logs" || !values["no-logs"]);
const say = (s: string) => process.stderr.write(`[bench] ${s}\n`);

const started = performance.now();
const machine = describeMachine();
await ensurePackages(runs("docker"), say);
const built = await prepare(say);

// What every init takes part in; `ctl` (the control client's cost) is pidone's alone.
const ALL: Family[] = FAMILIES.filter((f) => f !== "ctl");
const fam = (...f: Family[]) => new Set<Family>(f);
const subjects: Subject[] = [
  { id: "tini", label: "tini", bin: "/usr/bin/tini", prefix: ["/usr/bin/tini", "--"], families: fam(...ALL) },
  { id: "tini-static", label: "tini-static", bin: "/usr/bin/tini-static", prefix: ["/usr/bin/tini-static", "--"], families: fam(...ALL) },
  { id: "dumb-init", label: "dumb-init", bin: "/usr/bin/dumb-init", prefix: ["/usr/bin/dumb-init", "--"], families: fam(...ALL) },
  { id: "catatonit", label: "catatonit", bin: "/usr/bin/catatonit", prefix: ["/usr/bin/catatonit", "--"], families: fam(...ALL) },
  {
    id: "pidone",
    label: built.pidonePacked ? "**pidone** (single file)" : "**pidone**",
    bin: built.pidone,
    prefix: [built.pidone],
    families: fam(...ALL, "ctl"),
  },
  // The same with its control socket listening (tini's mode answers status and health
  // there): the socket must cost the signal path and the idle figures nothing. Its exit
  // is JavaScript's (the socket file is removed), not the stub's native one.
  {
    id: "pidone-control",
    label: "pidone --control (socket listening)",
    bin: built.pidone,
    prefix: [built.pidone, "--control", join(tmpdir(), `pidone-bench-${process.pid}.sock`)],
    families: fam("signal", "exit", "idle"),
  },
  ...(values["single-file"]
    ? [{ id: "pidone-single", label: "pidone (single file)", bin: values["single-file"], prefix: [values["single-file"]], families: fam(...ALL, "ctl") }]
    : []),
  ...(built.pidonePlain
    ? [
        {
          id: "pidone-glibc",
          label: "pidone-glibc (plain Bun exe)",
          bin: built.pidonePlain,
          prefix: [built.pidonePlain],
          // Not in the reaping rounds (a fifth of the run's time): its reaping is the JS
          // floor's, which the Bun forwarder already shows.
          families: fam(...ALL.filter((f) => f !== "reaping"), "ctl"),
        },
      ]
    : []),
  {
    id: "bun-forwarder",
    label: "Bun forwarder (floor)",
    bin: built.bunForwarder,
    prefix: [built.bunForwarder],
    families: fam("startup", "signal", "exit", "reaping", "idle", "docker", "size"),
  },
  {
    id: "bun-empty",
    label: built.pidonePacked ? "empty Bun, packed (floor)" : "empty Bun (floor)",
    bin: built.bunEmpty,
    prefix: [built.bunEmpty],
    standalone: true,
    families: fam("startup", "size"),
  },
  {
    id: "c-handler",
    label: "C forwarder in a signal handler (floor)",
    bin: built.handlerfwd,
    prefix: [built.handlerfwd],
    families: fam("signal"),
  },
  {
    id: "bun-exit",
    label: "a Bun program's own `_exit` (floor)",
    bin: built.bunExit,
    prefix: [built.bunExit],
    standalone: true,
    families: fam("exit"),
  },
  ...(built.bunEmptyPlain && built.pidonePlain
    ? [{ id: "bun-empty-plain", label: "empty Bun, plain (floor)", bin: built.bunEmptyPlain, prefix: [built.bunEmptyPlain], standalone: true, families: fam("startup", "size") }]
    : []),
  { id: "none", label: "no init (floor)", bin: null, prefix: [], families: fam("startup", "signal", "exit", "docker") },
];

const results: MetricResult[] = [];
const step = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
  const t0 = performance.now();
  say(`${name}...`);
  const r = await f();
  say(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return r;
};
const pinCpu = machine.cores - 1;
try {
  if (runs("startup")) results.push(await step("start-up", () => measureStartup(subjects, built, plan.startup)));
  if (runs("signal")) {
    results.push(await step("signals (pinned)", () => measureSignals(subjects, built, plan.signals, pinCpu)));
    results.push(await step("signals (unpinned)", () => measureSignals(subjects, built, plan.signals, null)));
  }
  if (runs("exit")) results.push(await step("exit", () => measureExit(subjects, built, plan.exitRounds, plan.exitSettle)));
  if (runs("reaping")) {
    const reaping = { orphans: plan.orphans, stormRounds: plan.stormRounds, zombies: plan.zombies, drainRounds: plan.drainRounds };
    results.push(...(await step("reaping", () => measureReaping(subjects, built, reaping))));
  }
  if (runs("idle")) results.push(...(await step("idle", () => measureIdle(subjects, plan.idleS, plan.idleSettle))));
  if (runs("docker")) results.push(...(await step("docker stop", () => measureDockerStop(subjects, plan.docker))));
  if (runs("size")) results.push(await step("size", () => measureSize(subjects)));
  if (runs("ctl")) results.push(...(await step("ctl", () => measureCtl(subjects, built, built.work, plan.ctl))));
  if (runs("logs")) results.push(...(await step("logs (metric 8)", () => measureLogs(built, plan.logs, say))));
} catch (e) {
  rmSync(built.work, { recursive: true, force: true });
  throw e;
}
machine.loadEnd = loadavg()[0]!;

const summaries: MetricSummary[] = results.map(summarizeMetric);
const budgets = judgeBudgets(summaries);
const singleBudgets = values["single-file"]
  ? judgeBudgets(summaries, "pidone-single")
  : built.pidonePlain
    ? judgeBudgets(summaries, "pidone-glibc", "bun-empty-plain")
    : [];
const secondSubject = values["single-file"] ? "pidone single file (--single-file)" : "pidone-glibc, the plain Bun executable";
const durationS = (performance.now() - started) / 1000;

const initSummaries = summaries.filter((m) => !LOG_METRICS.has(m.id));
const logSummaries = summaries.filter((m) => LOG_METRICS.has(m.id));
const inUse = subjects.filter((s) => initSummaries.some((m) => m.results[s.id]));
// Metric 8's subjects are not inits; its floor for latency under the flood is the forwarder.
const logSubjects = [...LOG_SUBJECTS, ...subjects.filter((s) => s.id === "bun-forwarder")];
const logInUse = LOG_SUBJECTS.filter((s) => logSummaries.some((m) => m.results[s.id]));
const described = await Promise.all(
  [...inUse, ...logInUse].map(async (s) => ({
    id: s.id,
    label: s.label.replace(/\*/g, ""),
    bin: s.bin,
    version: s.bin && !s.id.startsWith("bun-") ? await versionOf(s.bin) : s.id.startsWith("bun-") ? `Bun ${Bun.version}` : "",
    bytes: s.bin ? fileBytes(s.bin) : 0,
    command: s.note ? [] : s.standalone ? s.prefix : [...s.prefix, "CHILD..."],
    ...(s.note ? { what: s.note } : {}),
  })),
);

rmSync(built.work, { recursive: true, force: true });

const notes = summaries.flatMap((m) => m.notes.map((n) => `${m.id}: ${n}`));
const markdown = [
  `## pidone benchmark (${smoke ? "smoke" : "full"} run, ${new Date().toISOString().slice(0, 10)})`,
  "",
  `Machine: ${machineLine(machine)}. Run took ${durationS.toFixed(0)} s.`,
  "",
  ...(initSummaries.length ? [summaryTable(initSummaries, inUse), ""] : []),
  ...(logSummaries.length ? [floorTable(logSummaries, logSubjects), ""] : []),
  "### Budgets (pidone, medians of this run)",
  "",
  budgetLines(budgets),
  ...(singleBudgets.length ? ["", `### Budgets (${secondSubject})`, "", budgetLines(singleBudgets)] : []),
  "",
  "### Details",
  "",
  detailTable(summaries, [...inUse, ...logSubjects.filter((s) => !inUse.includes(s))]),
  "",
  "### How each figure was taken",
  "",
  ...notes.map((n) => `- ${n}`),
  "",
  `Subjects: ${described
    .map((d) => `${d.label} = ${d.what ?? (d.version || "-")}${d.bin ? ` (${d.bin.startsWith("/tmp") ? "built by the benchmark" : d.bin})` : ""}`)
    .join("; ")}.`,
  "",
].join("\n");

const doc = {
  schema: "pidone-bench/1",
  date: new Date().toISOString(),
  mode: smoke ? "smoke" : "full",
  args: process.argv.slice(2),
  durationS: Math.round(durationS * 10) / 10,
  machine,
  subjects: described,
  metrics: Object.fromEntries(summaries.map((m) => [m.id, m])),
  budgets: {
    pidone: budgets,
    ...(singleBudgets.length ? { [values["single-file"] ? "pidone-single" : "pidone-glibc"]: singleBudgets } : {}),
  },
};

// A smoke run must not overwrite the committed results.
const outDir = values.out ?? (smoke ? join(tmpdir(), "pidone-bench-smoke") : join(ROOT, "scripts/bench/results"));
mkdirSync(outDir, { recursive: true });
const json = `${JSON.stringify(doc, null, 2)}\n`;
writeFileSync(join(outDir, `${doc.date.slice(0, 10)}.json`), json);
writeFileSync(join(outDir, "latest.json"), json);
writeFileSync(join(outDir, "latest.md"), markdown);
process.stdout.write(`${markdown}\n`);
say(`wrote ${join(outDir, "latest.json")}, ${join(outDir, "latest.md")} (${durationS.toFixed(0)} s)`);
