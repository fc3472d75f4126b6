// pidone's entry: capture what we inherited, decide what to do from argv (bytes), run it.
// Every failure ends as one clear line and a defined exit code; PID 1 never dies of an
// uncaught exception.
import { checkDescriptors, inheritance, inheritanceFailure } from "./process/startup.ts"; // first: before anything opens descriptors
import { decide } from "./cli/options.ts";
import { EXIT, fatalLine } from "./errors.ts";
import { log, print, setVerbosity } from "./log/logger.ts";
import { runSingle } from "./modes/single.ts";
import { exit, libcFailure, readEnviron } from "./sys/libc.ts";
import { VERSION_LINE } from "./version.ts";

function environment(envp: readonly Uint8Array[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const e of envp) {
    const s = Buffer.from(e).toString("latin1");
    const eq = s.indexOf("=");
    if (eq > 0 && !env.has(s.slice(0, eq))) env.set(s.slice(0, eq), s.slice(eq + 1));
  }
  return env;
}

/**
 * `pidone --ctl ...`, `pidone --control PATH --ctl ...` or the file named pidonectl: the
 * control channel's client (src/control/client.ts), before any mode. The single file's
 * stub answers these forms itself; this is the plain file's way.
 */
function controlClient(argv: readonly Uint8Array[]): boolean {
  const word = (i: number) => (argv[i] ? Buffer.from(argv[i]).toString("latin1") : "");
  const name = word(0);
  if (name.slice(name.lastIndexOf("/") + 1) === "pidonectl" || word(1) === "--ctl") return true;
  return (word(1) === "--control" && word(3) === "--ctl") || (word(1).startsWith("--control=") && word(2) === "--ctl");
}

function guard(where: string, e: unknown): void {
  // Keep supervising: an exception in a handler must not take the container down.
  log.error(`internal error in ${where}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
}

/**
 * Installed once the mode has started its work: until then nothing runs from the event
 * loop, and an exception on the way (synchronous, inside main) ends in main's catch.
 * Off the path to the first spawn, which these two calls would lengthen.
 */
function keepSupervising(): void {
  process.on("uncaughtException", (e) => guard("event handler", e));
  process.on("unhandledRejection", (e) => guard("promise", e));
}

async function main(): Promise<void> {
  // What failed while the modules loaded, raised here so that the handler below reports it.
  if (libcFailure) throw libcFailure;
  if (inheritanceFailure) throw inheritanceFailure;
  const envp = readEnviron();
  const argv = inheritance.argv ?? ["pidone", ...process.argv.slice(2)].map((a) => new Uint8Array(Buffer.from(a)));
  const env = environment(envp);
  if (controlClient(argv)) return (await import("./control/client.ts")).runClient(argv, env);
  const decision = decide(argv, env);
  const name = () => Buffer.from(argv[0] ?? "pidone").toString();

  switch (decision.kind) {
    case "version":
      print(1, `${VERSION_LINE}\n`);
      return exit(0);
    case "help":
      print(1, await (await import("./cli/help.ts")).renderHelp(1, name()));
      return exit(0);
    case "license":
      print(1, (await import("./cli/help.ts")).LICENSE_TEXT);
      return exit(0);
    case "usage-error":
      if (decision.message) print(2, `${decision.message}\n`);
      if (decision.fatal) log.fatal(decision.fatal);
      print(2, await (await import("./cli/help.ts")).renderHelp(2, name()));
      return exit(EXIT.FAILURE);
    case "run":
      setVerbosity(decision.verbosity);
      // Only tini's mode is loaded up front: the others cost start-up time it never needs.
      if (decision.check) return (await import("./modes/services.ts")).runCheck(decision, env);
      checkDescriptors(decision.services.length > 0 || decision.configFiles.length > 0);
      if (decision.services.length || decision.configFiles.length) {
        (await import("./modes/services.ts")).runServices(decision, inheritance, envp, env);
      } else if (decision.pause) (await import("./modes/pause.ts")).runPause(decision, inheritance);
      else runSingle(decision, inheritance, envp);
      keepSupervising();
      // Started (scripts/build.ts scales the JIT's thresholds for the start): what runs
      // from now on may run often (reaping, forwarding, service output) and should be
      // compiled as usual.
      Bun.unsafe.setJITPolicy(1);
      return;
  }
}

main().catch(async (e) => {
  if (!libcFailure) {
    log.fatal(fatalLine(e, () => null));
    exit(EXIT.FAILURE);
  }
  // No libc: neither the logger's write(2) nor _exit. node:fs's writeSync is a plain
  // write(2) that leaves the descriptor's flags alone (process.stderr would not).
  try {
    const fs = await import("node:fs");
    // limits.ts reads RLIMIT_AS from /proc with node:fs, no libc needed.
    const { addressSpaceLimit } = await import("./process/limits.ts");
    const line = fatalLine(e, () => {
      const as = addressSpaceLimit();
      return as === Infinity ? null : as;
    });
    fs.writeSync(2, `[FATAL pidone (${process.pid})] ${line}\n`);
  } finally {
    process.exit(EXIT.FAILURE); // stderr closed or not
  }
});
