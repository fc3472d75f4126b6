// Fuzzes pidone's command line and its configuration (`--check`): every case must end
// with a defined exit code and a message, never an uncaught exception, a crash banner,
// a signal death or a hang. The cases and the judge are in fuzz-cases.ts.
//
//   bun scripts/stress/fuzz.ts [--cases N] [--seed S] [--kind cli|config|both] [--jobs J]
//   bun scripts/stress/fuzz.ts --seed S --only I      # replay one case, show everything
//
// Options: --pidone PATH (default $PIDONE_BIN or dist/pidone), --hang-ms MS (how long a
// case may run after its stop signal; default 15000), --failures DIR (where failing
// cases are saved, default /tmp/pidone-fuzz-SEED). Exit 0 when no case failed.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, caseScript, confirmHangs, describeCase, killLiveCases, kindOf, runPool, type CaseResult } from "./fuzz-cases.ts";

const { values: opts } = parseArgs({
  options: {
    cases: { type: "string", default: "1000" },
    seed: { type: "string" },
    only: { type: "string" },
    kind: { type: "string", default: "both" },
    jobs: { type: "string" },
    pidone: { type: "string" },
    "hang-ms": { type: "string", default: "15000" },
    failures: { type: "string" },
  },
});

const seed = opts.seed !== undefined ? Number(opts.seed) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const kinds = opts.kind === "cli" ? (["cli"] as const) : opts.kind === "config" ? (["config"] as const) : (["cli", "config"] as const);
const count = Number(opts.cases);
const jobs = Number(opts.jobs ?? availableParallelism());
const pidone = opts.pidone ?? process.env.PIDONE_BIN ?? join(ROOT, "dist/pidone");
const hangMs = Number(opts["hang-ms"]);
const failuresDir = opts.failures ?? join(tmpdir(), `pidone-fuzz-${seed}`);
const workDir = mkdtempSync(join(tmpdir(), "pidone-fuzz-work-"));

// --only replays one case: kind and content come from (seed, index) alone.
const only = opts.only !== undefined ? Number(opts.only) : null;
const indexes = only !== null ? [only] : Array.from({ length: count }, (_, i) => i);
console.log(
  `pidone fuzz: seed ${seed}, ${only !== null ? `case ${only}` : `${count} cases`} (${kinds.join(" + ")}), ${jobs} jobs, ${pidone}`,
);

process.on("exit", killLiveCases); // even when the fuzzer itself fails
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    killLiveCases();
    rmSync(workDir, { recursive: true, force: true });
    process.exit(130);
  });
}

const failures: CaseResult[] = [];
const codes = new Map<string, number>();
const slowest: Record<string, { ms: number; index: number }> = {};
let done = 0;
const started = performance.now();
let lastReport = started;

function save(r: CaseResult): string {
  const dir = join(failuresDir, String(r.index));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "case.sh"), `#!/bin/bash\n# pidone fuzz seed ${seed} case ${r.index}: ${r.failure}\n${caseScript(r.case, pidone)}\n`);
  if (r.case.kind === "config") for (const f of r.case.files) writeFileSync(join(dir, f.name), f.bytes);
  writeFileSync(join(dir, "stdout"), r.outcome.stdout, "latin1");
  writeFileSync(join(dir, "stderr"), r.outcome.stderr, "latin1");
  return dir;
}

function onResult(r: CaseResult): void {
  done++;
  const code = r.outcome.hung ? "hang" : r.outcome.signal ?? String(r.outcome.code);
  codes.set(`${r.kind} ${code}`, (codes.get(`${r.kind} ${code}`) ?? 0) + 1);
  if (!slowest[r.kind] || r.outcome.ms > slowest[r.kind]!.ms) slowest[r.kind] = { ms: r.outcome.ms, index: r.index };
  if (only !== null) {
    console.log(describeCase(r.case, pidone));
    console.log(`exit ${code} in ${Math.round(r.outcome.ms)} ms, stop signal sent: ${r.outcome.sentSignal ?? "none"}`);
    console.log(`--- stdout (${r.outcome.stdout.length} bytes)\n${r.outcome.stdout.slice(0, 4000)}`);
    console.log(`--- stderr (${r.outcome.stderr.length} bytes)\n${r.outcome.stderr.slice(0, 4000)}`);
  }
  if (r.failure) {
    failures.push(r);
    const dir = save(r);
    console.log(`FAIL seed ${seed} case ${r.index} (${r.kind}): ${r.failure}`);
    console.log(`  replay: bun scripts/stress/fuzz.ts --seed ${seed} --only ${r.index}   (saved in ${dir})`);
  }
  const now = performance.now();
  if (now - lastReport > 10_000) {
    lastReport = now;
    const rate = done / ((now - started) / 1000);
    console.log(`  ${done}/${indexes.length} cases, ${rate.toFixed(1)}/s, ${failures.length} failed`);
  }
}

await runPool({ seed, indexes, kinds, jobs, pidone, workDir, hangMs, onResult });

// A hang under the machine's load may be the load: each is run again alone, and one that
// then ends in time is reported apart, not counted as a failure.
const { failures: standing, unconfirmed } = await confirmHangs(failures, { seed, kinds, pidone, workDir: join(workDir, "again"), hangMs });
rmSync(workDir, { recursive: true, force: true });

const seconds = (performance.now() - started) / 1000;
console.log(`\n${done} cases in ${seconds.toFixed(1)} s: ${(done / seconds).toFixed(1)} cases/s with ${jobs} jobs`);
for (const k of kinds) {
  const perKind = [...codes].filter(([key]) => key.startsWith(`${k} `)).sort((a, b) => b[1] - a[1]);
  console.log(`  ${k}: exits ${perKind.map(([key, n]) => `${key.slice(k.length + 1)}×${n}`).join(", ")}`);
  if (slowest[k]) console.log(`  ${k}: slowest case ${slowest[k]!.index} (${Math.round(slowest[k]!.ms)} ms)`);
}
if (unconfirmed.length) console.log(`${unconfirmed.length} hangs did not happen again alone (machine load): cases ${unconfirmed.map((f) => f.index).join(", ")}`);
if (standing.length) {
  console.log(`${standing.length} failed (seed ${seed}):`);
  for (const f of standing) console.log(`  case ${f.index} (${f.kind}): ${f.failure!.slice(0, 200)}`);
  console.log(`failing cases saved in ${failuresDir}`);
} else {
  console.log(`no failure (seed ${seed}); kinds by index: ${indexes.slice(0, 2).map((i) => kindOf(i, kinds)).join(", ")}, …`);
}
process.exit(standing.length ? 1 : 0);
