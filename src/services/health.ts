// A service's liveness check, with Docker's HEALTHCHECK semantics (README: "Liveness
// checks"): the first check one interval after the process starts, each next one an
// interval after the previous ended (never two at once), a check over `timeout` failed,
// failures within start_period not counted until a first success, and after `retries`
// failures in a row the service is unhealthy: onUnhealthy, once per run.
//
// Its idle cost is one timer per interval; the probes are ready.ts's (no thread, exec
// through pidone's own spawner).
import type { HealthSpec } from "../config/index.ts";
import { timestamp, type HealthInfo } from "../control/status.ts";
import { worked } from "../process/reap.ts";
import { checkOnce, probeText, type ProbeContext, type ProbeHooks } from "./ready.ts";

export class HealthMonitor {
  private status: HealthInfo["status"] = "starting";
  private failures = 0;
  private last: HealthInfo["last"] = null;
  /** The current run's start (performance.now()), for start_period. */
  private since = 0;
  /** A check has passed in this run: start_period is over. */
  private passed = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Ends the check in flight, whose outcome is then ignored; null: none in flight. */
  private inFlight: AbortController | null = null;
  readonly check: string;

  constructor(
    readonly spec: HealthSpec,
    private readonly hooks: ProbeHooks,
    private readonly as: ProbeContext,
    private readonly onUnhealthy: (detail: string) => void,
  ) {
    this.check = probeText(spec.probe);
  }

  /** The service's process started: a new run (start_period counts from now). The last outcome stays on show. */
  start(): void {
    this.stop();
    this.status = "starting";
    this.failures = 0;
    this.passed = false;
    this.since = performance.now();
    this.schedule();
  }

  /** The process ended or is being stopped: no more checks; one in flight is ended and its outcome ignored. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.inFlight?.abort();
    this.inFlight = null;
  }

  info(): HealthInfo {
    return { check: this.check, status: this.status, failures: this.failures, last: this.last };
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.run(), this.spec.interval * 1000);
  }

  private async run(): Promise<void> {
    this.timer = null;
    const abort = new AbortController();
    this.inFlight = abort;
    const outcome = await checkOnce(this.spec.probe, this.hooks, this.as, this.spec.timeout * 1000, abort.signal);
    // A unit of work for the collection pacer (src/process/gc.ts), as a reap is: a tcp or
    // http check reaps nothing, and its sockets and promises would wait for allocation to
    // trigger the collector.
    worked();
    if (abort.signal.aborted) return; // stopped meanwhile
    this.inFlight = null;
    this.last = { ok: outcome === null, detail: outcome ?? "ok", at: timestamp(Date.now()) };
    if (outcome === null) {
      this.passed = true;
      this.failures = 0;
      this.status = "healthy";
    } else if (this.passed || performance.now() - this.since >= this.spec.startPeriod * 1000) {
      this.failures++;
      if (this.failures >= this.spec.retries) {
        // No more checks in this run: the service is being stopped.
        this.status = "unhealthy";
        this.onUnhealthy(`${this.failures === 1 ? "1 check" : `${this.failures} checks`} failed in a row, the last: ${outcome}`);
        return;
      }
    }
    this.schedule();
  }
}
