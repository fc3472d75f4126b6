// npm run stress: the slow checks and the figures that stay out of npm test, each run as
// its own process, one after the other (they would skew each other's figures). With
// names, only those; a script that is not there is skipped with a line saying so.
//
//   bun scripts/stress/run.ts [soak] [fuzz] [floors] [threads] [limits] [ARGS for a single script]
//   npm run stress -- soak --minutes 1 --orphans 10000 --signals 10000
import { existsSync } from "node:fs";
import { join } from "node:path";

interface Entry {
  name: string;
  file: string;
  args: string[];
}

const HERE = import.meta.dir;
const ENTRIES: Entry[] = [
  { name: "soak", file: "soak.ts", args: [] },
  { name: "fuzz", file: "fuzz.ts", args: ["--cases", "100000"] },
  { name: "floors", file: "floors.ts", args: [] },
  { name: "threads", file: "threads.ts", args: [] },
  { name: "limits", file: "issue-table.ts", args: [] },
];

// Names first; from the first option on (or after "--"), the one named script's arguments.
const argv = process.argv.slice(2);
let split = argv.findIndex((a) => a.startsWith("-"));
if (split < 0) split = argv.length;
const names = argv.slice(0, split);
const extra = argv.slice(argv[split] === "--" ? split + 1 : split);
const say = (s: string) => process.stderr.write(`[stress] ${s}\n`);

for (const n of names) {
  if (!ENTRIES.some((e) => e.name === n)) {
    say(`unknown script ${JSON.stringify(n)} (${ENTRIES.map((e) => e.name).join(", ")})`);
    process.exit(2);
  }
}
if (extra.length > 0 && names.length !== 1) {
  say("options go to one script: name it first (npm run stress -- soak --minutes 1)");
  process.exit(2);
}

const chosen = names.length === 0 ? ENTRIES : ENTRIES.filter((e) => names.includes(e.name));
const results: string[] = [];
let failed = 0;
for (const e of chosen) {
  const path = join(HERE, e.file);
  if (!existsSync(path)) {
    say(`${e.name}: skipped, scripts/stress/${e.file} does not exist`);
    results.push(`${e.name}: skipped (no ${e.file})`);
    continue;
  }
  const args = [...e.args, ...extra];
  say(`${e.name}: bun scripts/stress/${e.file} ${args.join(" ")}`.trimEnd());
  const t0 = performance.now();
  const proc = Bun.spawn([process.execPath, path, ...args], { stdio: ["inherit", "inherit", "inherit"] });
  const code = await proc.exited;
  const minutes = ((performance.now() - t0) / 60_000).toFixed(1);
  if (code !== 0) failed++;
  results.push(`${e.name}: ${code === 0 ? "passed" : `FAILED (exit ${code})`} in ${minutes} min`);
}
for (const r of results) say(r);
process.exit(failed === 0 ? 0 : 1);
