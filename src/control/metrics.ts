// `GET /metrics`: the status object in Prometheus' text exposition format 0.0.4. Each
// family is one group (# HELP, # TYPE, then its samples), as the format requires. A
// value that does not exist yet (no exit so far, no process running) is NaN, not 0 and
// not a missing series: Prometheus' instrumentation guide asks for series known in advance
// to be exported always, and 0 would read as "exited with status 0" or "started in 1970".
import type { ServiceStatus, Status } from "./status.ts";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

interface Family {
  name: string;
  type: "gauge" | "counter";
  help: string;
  value: (svc: ServiceStatus) => number;
}

const SERVICE_FAMILIES: readonly Family[] = [
  {
    name: "pidone_service_up",
    type: "gauge",
    help: "1 while the service has a running process, else 0.",
    value: (svc) => (svc.pid !== null ? 1 : 0),
  },
  {
    name: "pidone_service_ready",
    type: "gauge",
    help: "1 once the service is ready (its readiness probe passed in the current run), else 0.",
    value: (svc) => (svc.readiness.ready ? 1 : 0),
  },
  {
    name: "pidone_service_healthy",
    type: "gauge",
    help: "0 once the service's liveness check has failed `retries` times in a row, else 1 (also without a check).",
    value: (svc) => (svc.state === "unhealthy" || svc.health?.status === "unhealthy" ? 0 : 1),
  },
  {
    name: "pidone_service_restarts_total",
    type: "counter",
    help: "Restarts by the service's restart policy since pidone started (an operator's restart is not counted).",
    value: (svc) => svc.restarts,
  },
  {
    name: "pidone_service_last_exit_code",
    type: "gauge",
    help: "The service's last exit status as a shell reports it (128+N for signal N); NaN before its first exit.",
    value: (svc) => svc.last_exit?.code ?? NaN,
  },
  {
    name: "pidone_service_start_time_seconds",
    type: "gauge",
    help: "When the service's current process started, in seconds since the epoch; NaN while it is not running.",
    value: (svc) => (svc.started_at === null ? NaN : Date.parse(svc.started_at) / 1000),
  },
];

/** A sample value as the format writes it: Go's ParseFloat reads NaN, +Inf, -Inf. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A label value: backslash, double quote and line feed escaped. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** # HELP text: backslash and line feed escaped. */
function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function head(name: string, type: string, help: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

/** The whole exposition, ending with a line feed. */
export function formatMetrics(s: Status): string {
  let out = "";
  for (const f of SERVICE_FAMILIES) {
    out += head(f.name, f.type, f.help);
    for (const svc of s.services) out += `${f.name}{service="${escapeLabelValue(svc.name)}"} ${formatValue(f.value(svc))}\n`;
  }
  out += head("pidone_reaped_total", "counter", "Processes pidone reaped (services, probes, orphans).");
  out += `pidone_reaped_total ${formatValue(s.pidone.reaped_total)}\n`;
  out += head("pidone_signals_forwarded_total", "counter", "Signals pidone forwarded to a child or a service.");
  out += `pidone_signals_forwarded_total ${formatValue(s.pidone.signals_forwarded_total)}\n`;
  return out;
}
