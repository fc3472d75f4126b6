// Keep-alive: no program. Stay PID 1, reap whatever lands on us, exit 0 when asked to
// stop (the Kubernetes pause container's contract), after the whole-tree stop.
//
//   pausing ──stop signal: SIGTERM to every process left──▶ stopping
//   stopping ──no child left, or the grace over (SIGKILL sent)──▶ exit 0
//
// Nothing is watched: where native reaping is on, the stub's handler (reap_children in
// src/native/stub.c) reaps every orphan itself and wakes JavaScript only once no child
// is left, which matters only while stopping.
import type { RunConfig } from "../cli/options.ts";
import { LEVEL, log } from "../log/logger.ts";
import { keepAlive } from "../process/loop.ts";
import { reapAll, worked } from "../process/reap.ts";
import { checkReaping, mayReapNatively, setUpReaping } from "../process/reaper.ts";
import type { Inheritance } from "../process/startup.ts";
import { listen, planSignals } from "../signals/intake.ts";
import { SIG, signalName } from "../signals/table.ts";
import { exit } from "../sys/libc.ts";
import { watchChild } from "../sys/native.ts";
import { TreeStop } from "../supervisor/stop.ts";
import type { ControlServer } from "../control/server.ts";

export function runPause(cfg: RunConfig, inherited: Inheritance): void {
  // A pause process lives as long as its pod: its working directory would keep the
  // directory's file system busy (umount: EBUSY) all that time. "/" keeps none but the root.
  try {
    process.chdir("/");
  } catch (e) {
    log.warn(`cannot change the working directory to /: ${(e as Error).message}`);
  }
  setUpReaping(cfg);
  checkReaping();

  let phase: "pausing" | "stopping" = "pausing";
  // --control PATH: `status` and `health` answer for pidone itself (without it, none of
  // the control code is loaded).
  let control: ControlServer | null = null;
  const path = cfg.control;
  if (path !== null && path !== "none") {
    void import("../control/attach.ts").then(({ attachControl }) => {
      control = attachControl("pause", path, () => phase === "stopping", () => []);
    });
  }
  const done = () => {
    control?.close();
    return exit(0);
  };
  const stop = new TreeStop(cfg.graceSeconds * 1000, done); // the grace is over
  const reaped = (pid: number) => {
    if (log.level >= LEVEL.debug) log.debug(`Reaped child with pid: '${pid}'`);
    if (cfg.warnOnReap) log.warn(`Reaped zombie process with pid=${pid}`);
  };

  /** The one dispatch: a reaped child, or a signal, which only a stop signal acts on. */
  const signal = (sig: number) => {
    if (sig === SIG.CHLD) {
      if (reapAll(reaped) && phase === "stopping") done();
      return;
    }
    worked(); // a storm's wakes leave garbage too (src/process/gc.ts)
    if (!cfg.stopSignals.has(sig)) {
      log.debug(`Ignoring signal: '${signalName(sig)}' (nothing to forward it to)`);
      return;
    }
    if (phase === "stopping") return;
    phase = "stopping";
    stop.trigger(`received ${signalName(sig)}`);
    if (!stop.sweeping) done();
    stop.sweep();
    if (reapAll(reaped)) done();
  };

  watchChild(0, mayReapNatively(cfg));
  listen(planSignals(new Set(inherited.ignored), [...cfg.stopSignals]), signal);
  log.info("Pausing: reaping zombies until SIGTERM or SIGINT");
  keepAlive();
}
