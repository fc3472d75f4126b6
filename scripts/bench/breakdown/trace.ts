// Where pidone's start-up goes, from inside: the time the runtime took to reach our
// first line, then the cost of evaluating each of pidone's modules in the order main.ts
// imports them (dynamic imports, so each one is timed on its own). Prints JSON.
const marks: [string, number][] = [["runtime ready (first line of JS)", performance.now()]];
const mark = (what: string) => marks.push([what, performance.now()]);
// --bytecode builds have no top-level await.
async function main(): Promise<void> {
  await import("./nothing.ts");
  mark("first dynamic import (module loader)");
  const fs = await import("node:fs");
  fs.readFileSync("/proc/self/stat");
  mark("node:fs, first readFileSync");
  await import("../../../src/process/startup.ts");
  mark("process/startup.ts: /proc/self/{fd,status,cmdline}");
  // consola and citty are no longer on tini's path (the help alone loads citty): timed
  // here for comparison.
  await import("consola/core");
  mark("consola/core (not loaded by pidone)");
  await import("../../../src/sys/libc.ts");
  mark("sys/libc.ts: dlopen libc, start-up symbols (the rest bound on first use)");
  await import("citty");
  mark("citty (help only)");
  await import("../../../src/signals/table.ts");
  mark("signals/table.ts");
  await import("../../../src/cli/definition.ts");
  mark("cli/definition.ts: the option table");
  await import("../../../src/cli/options.ts");
  mark("cli/options.ts, grammar.ts");
  await import("../../../src/cli/help.ts");
  mark("cli/help.ts: defineCommand, LICENSE text (help only)");
  await import("../../../src/log/logger.ts");
  mark("log/logger.ts");
  await import("../../../src/modes/single.ts");
  mark("modes/single.ts, process/*, signals/*");
  const lib = await import("../../../src/sys/libc.ts");
  lib.readEnviron();
  mark("readEnviron()");
  const { planSignals, listen } = await import("../../../src/signals/intake.ts");
  listen(planSignals(new Set()), () => {});
  mark("listen(): process.on x18 + signal() x33 + sigprocmask");
  const { spawnProgram } = await import("../../../src/process/spawn.ts");
  const r = spawnProgram([Buffer.from("/bin/true")], {
    envp: [],
    sigmask: new Uint8Array(128),
    sigdefault: new Uint8Array(128),
    keepFds: [],
  });
  mark("spawnProgram(/bin/true): posix_spawn");
  const out: Record<string, number> = {};
  for (let i = 0; i < marks.length; i++) out[marks[i]![0]] = marks[i]![1] - (i ? marks[i - 1]![1] : 0);
  process.stdout.write(`${JSON.stringify({ ok: r.ok, ms: out })}\n`);
  lib.exit(0);
}
void main();
