// Keep-alive: no program. Stay PID 1, reap whatever lands on us, exit 0 when asked to
// stop (the Kubernetes pause container's contract), after the whole-tree stop.
import type { RunConfig } from "../cli/options.ts";
import { log } from "../log/logger.ts";
import { keepAlive } from "../process/loop.ts";
import { reapAll } from "../process/reap.ts";
import { checkReaping, mayReapNatively, setUpReaping } from "../process/reaper.ts";
import type { Inheritance } from "../process/startup.ts";
import { listen, planSignals } from "../signals/intake.ts";
import { SIG, signalName } from "../signals/table.ts";
import { exit } from "../sys/libc.ts";
import { watchChild } from "../sys/native.ts";
import { TreeStop } from "../supervisor/stop.ts";

export function runPause(cfg: RunConfig, inherited: Inheritance): void {
  setUpReaping(cfg);
  checkReaping();

  let stopping = false;
  const done = () => exit(0);
  const stop = new TreeStop(cfg.graceSeconds * 1000, done);
  const onReaped = (pid: number) => {
    log.debug(`Reaped child with pid: '${pid}'`);
    if (cfg.warnOnReap) log.warn(`Reaped zombie process with pid=${pid}`);
  };

  // No status matters here: the handler may reap everything itself (nothing to watch).
  watchChild(0, mayReapNatively(cfg));
  listen(planSignals(new Set(inherited.ignored), [...cfg.stopSignals]), (sig) => {
    if (sig === SIG.CHLD) {
      const noneLeft = reapAll(onReaped);
      if (stopping && noneLeft) done();
      return;
    }
    if (!cfg.stopSignals.has(sig)) {
      log.debug(`Ignoring signal: '${signalName(sig)}' (nothing to forward it to)`);
      return;
    }
    if (stopping) return;
    stopping = true;
    stop.trigger(`received ${signalName(sig)}`);
    if (!stop.sweeping) done();
    stop.sweep();
    if (reapAll(onReaped)) done();
  });
  log.info("Pausing: reaping zombies until SIGTERM or SIGINT");
  keepAlive();
}
