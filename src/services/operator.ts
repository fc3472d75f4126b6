// What the operator may do to services mode's services (`pidone --ctl`, src/control/) and
// what they see of them. An action is refused once pidone stops; a stop by the operator
// holds the service (ServiceRunner.hold) until `start`; a restart skips the backoff and
// is not one of the policy's. The status object is read from the runners as they are.
import { pidoneStatus } from "../control/attach.ts";
import { Refused, type Supervisor } from "../control/commands.ts";
import { timestamp, type ServiceStatus, type Status } from "../control/status.ts";
import { CONTROL } from "../native/protocol.ts";
import { counters } from "../process/counters.ts";
import { signalName } from "../signals/table.ts";
import type { EventFields } from "./events.ts";
import { describeProbe } from "./ready.ts";
import type { ServiceRunner } from "./service.ts";

/** What the operator's actions need of services mode. */
export interface OperatedMode {
  readonly runners: readonly ServiceRunner[];
  readonly byName: ReadonlyMap<string, ServiceRunner>;
  /** No stop has begun: services may be started and stopped. */
  running(): boolean;
  /** A stop signal came, or the stop began (a stop_delay may still hold it): /readyz says 503. */
  stopping(): boolean;
  /** Starts every waiting service whose dependencies are ready. */
  startWhatCan(): void;
  event(service: string, message: string, fields: EventFields): void;
}

export class Operator implements Supervisor {
  constructor(private readonly mode: OperatedMode) {}

  async start(name: string): Promise<string> {
    const r = this.operable(name);
    if (r.running) throw new Refused(`${name} is already running (pid ${r.pid})`);
    if (r.state === "stopping") throw new Refused(`${name} is stopping; start it once it has stopped`);
    this.mode.event(name, "start requested by the operator", { event: "operator-start" });
    r.release();
    this.mode.startWhatCan();
    return this.after(r);
  }

  async stop(name: string): Promise<string> {
    const r = this.operable(name);
    if (r.held && !r.running) throw new Refused(`${name} is already stopped`);
    this.mode.event(name, "stop requested by the operator", { event: "operator-stop" });
    const done = await within(r.hold(r.spec.stopTimeout * 1000));
    return done ? `${name}: stopped` : `${name}: still stopping after ${CONTROL.WAIT_MAX_MS / 1000} s (SIGKILL follows its stop_timeout)`;
  }

  /** Stop (if running) and start at once: no backoff, not counted toward max_restarts. */
  async restart(name: string): Promise<string> {
    const r = this.operable(name);
    if (r.state === "stopping") throw new Refused(`${name} is stopping; start it once it has stopped`);
    this.mode.event(name, "restart requested by the operator", { event: "operator-restart" });
    const stopped = r.hold(r.spec.stopTimeout * 1000).then(() => {
      if (!this.mode.running()) return;
      r.release();
      this.mode.startWhatCan();
    });
    if (!(await within(stopped))) return `${name}: still stopping after ${CONTROL.WAIT_MAX_MS / 1000} s; it starts once stopped`;
    return this.after(r);
  }

  signal(name: string, sig: number): string {
    const r = this.operable(name);
    if (!r.running) throw new Refused(`${name} is not running`);
    r.signalGroup(sig);
    counters.forwarded++;
    return `${name}: sent ${signalName(sig)} to ${r.signalTarget() ?? r.pid}`;
  }

  status(): Status {
    const now = Date.now();
    return pidoneStatus("services", this.mode.stopping(), this.mode.runners.map((r) => this.serviceStatus(r, now)));
  }

  private operable(name: string): ServiceRunner {
    if (!this.mode.running()) throw new Refused("pidone is stopping");
    return this.mode.byName.get(name)!;
  }

  /** What a start led to: a new pid, or what it waits for. */
  private after(r: ServiceRunner): string {
    if (r.running) return `${r.name}: started (pid ${r.pid})`;
    const s = this.serviceStatus(r, Date.now());
    return `${r.name}: ${s.state === "waiting" ? `waiting for ${s.waiting_for.join(", ")}` : s.state}`;
  }

  private serviceStatus(r: ServiceRunner, now: number): ServiceStatus {
    const up = (n: string) => ["ready", "done"].includes(this.mode.byName.get(n)!.state);
    return {
      name: r.name,
      state: r.display(),
      critical: r.spec.critical,
      oneshot: r.spec.oneshot,
      held: r.held,
      pid: r.pid,
      started_at: r.startedWall === null ? null : timestamp(r.startedWall),
      uptime_seconds: r.startedWall === null ? null : Math.floor((now - r.startedWall) / 1000),
      restarts: r.restartCount,
      restart_in_seconds: r.restartAt === null ? null : Math.max(0, Math.ceil((r.restartAt - now) / 1000)),
      waiting_for: r.state === "waiting" && !r.held ? r.spec.after.filter((n) => !up(n)) : [],
      last_exit: r.lastExit,
      readiness: { check: r.spec.ready ? describeProbe(r.spec.ready) : null, ready: r.state === "ready" || r.state === "done" },
      health: r.health?.info() ?? null,
      status_text: r.statusText,
    };
  }
}

/** True when `p` settled within CONTROL.WAIT_MAX_MS; the work goes on either way. */
function within(p: Promise<void>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CONTROL.WAIT_MAX_MS)));
  return Promise.race([p.then(() => true), late]).finally(() => clearTimeout(timer));
}
