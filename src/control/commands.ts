// The commands of `pidone --ctl`, as the server answers them: the words checked, the
// verdicts and tables formatted here (the clients only copy), the work done by the mode
// through Supervisor. tini's mode and --pause answer `status` and `health` only.
import { CONTROL } from "../native/protocol.ts";
import { parseSignal } from "../signals/table.ts";
import type { Answer, ControlHandler } from "./server.ts";
import { healthOf, type ServiceStatus, type Status } from "./status.ts";

/** What a mode does for the operator. Each action resolves with a line saying what happened, or throws Refused. */
export interface Supervisor {
  status(): Status;
  /** Services mode only: the rest are absent in tini's mode and --pause. */
  start?(name: string): Promise<string>;
  stop?(name: string): Promise<string>;
  restart?(name: string): Promise<string>;
  signal?(name: string, sig: number): string;
}

/** An action the mode will not do now (no such service, already running, pidone stopping): exit 1 and why. */
export class Refused extends Error {}

export const USAGE = `usage: pidone --ctl [--control PATH] COMMAND [ARGS]
  status [NAME...] [--json]   each service's state (--json: the documented object)
  start NAME...               start services stopped by the operator, or ended
  stop NAME...                stop services and hold them stopped (not a failure)
  restart NAME...             stop and start again (no backoff, not counted)
  signal NAME SIGNAL          send SIGNAL to the service's process group
  health                      exit 0 when healthy, else 1 and the reasons
`;

const ok = (text: string): Answer => ({ code: CONTROL.OK, text });
const failed = (text: string): Answer => ({ code: CONTROL.FAILED, text });
const usage = (why: string): Answer => ({ code: CONTROL.USAGE, text: `pidone: ${why}\n${USAGE}` });

export function controlHandler(sup: Supervisor): ControlHandler {
  return async (words) => {
    const [command, ...args] = words;
    switch (command) {
      case "status":
        return status(sup, args);
      case "health": {
        if (args.length) return usage("health takes no arguments");
        const h = healthOf(sup.status());
        return h.ok ? ok("healthy\n") : failed(h.reasons.map((r) => `${r}\n`).join(""));
      }
      case "start":
      case "stop":
      case "restart": {
        const act = sup[command];
        if (!act) return failed(`pidone: ${command} needs services mode (this pidone runs ${sup.status().pidone.mode === "pause" ? "--pause" : "a PROGRAM"})\n`);
        if (args.length === 0) return usage(`${command} needs a service's NAME`);
        const unknown = unknownNames(sup.status(), args);
        if (unknown) return failed(unknown);
        return perService(args, (name) => act.call(sup, name));
      }
      case "signal": {
        if (!sup.signal) return failed("pidone: signal needs services mode\n");
        if (args.length !== 2) return usage("signal takes a service's NAME and a SIGNAL");
        const sig = parseSignal(args[1]!);
        if (sig === null) return usage(`not a signal: ${args[1]}`);
        const unknown = unknownNames(sup.status(), [args[0]!]);
        if (unknown) return failed(unknown);
        const signal = sup.signal.bind(sup);
        return perService([args[0]!], async (name) => signal(name, sig));
      }
      case undefined:
        return usage("no command");
      default:
        return usage(`unknown command: ${command}`);
    }
  };
}

/** Runs `act` for each name in turn; exit 1 if any was refused, each line either way. */
async function perService(names: string[], act: (name: string) => Promise<string>): Promise<Answer> {
  const lines: string[] = [];
  let code: number = CONTROL.OK;
  for (const name of names) {
    try {
      lines.push(`${await act(name)}\n`);
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      code = CONTROL.FAILED;
      lines.push(`pidone: ${e.message}\n`);
    }
  }
  return { code, text: lines.join("") };
}

function unknownNames(s: Status, names: readonly string[]): string | null {
  const known = new Set(s.services.map((x) => x.name));
  const unknown = names.filter((n) => !known.has(n));
  if (!unknown.length) return null;
  const list = s.services.length ? `services: ${[...known].join(", ")}` : "none here";
  return `pidone: no service named ${unknown.join(", ")} (${list})\n`;
}

function status(sup: Supervisor, args: string[]): Answer {
  const json = args.includes("--json");
  const names = args.filter((a) => a !== "--json");
  const bad = names.find((n) => n.startsWith("-"));
  if (bad) return usage(`unknown option for status: ${bad}`);
  const s = sup.status();
  const unknown = unknownNames(s, names);
  if (unknown) return failed(unknown);
  const shown = names.length ? { ...s, services: s.services.filter((x) => names.includes(x.name)) } : s;
  return ok(json ? `${JSON.stringify(shown, null, 2)}\n` : table(shown));
}

/** One aligned row per service; the last column, the service's own words, may hold spaces. */
export function table(s: Status): string {
  const head = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "READY", "HEALTH", "STATUS"];
  const rows = s.services.map((x) => [
    x.name,
    stateColumn(x),
    x.pid === null ? "-" : String(x.pid),
    x.uptime_seconds === null ? "-" : duration(x.uptime_seconds),
    String(x.restarts),
    x.last_exit ? x.last_exit.description : "-",
    x.readiness.check === null ? "-" : x.readiness.ready ? "yes" : "no",
    x.health ? (x.health.failures && x.health.status !== "unhealthy" ? `${x.health.status} (${x.health.failures} failed)` : x.health.status) : "-",
    x.status_text ?? "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const mode = s.pidone.mode === "services" ? "" : ` (${s.pidone.mode === "tini" ? "tini's mode" : "--pause"})`;
  const title = `pidone ${s.pidone.version}, pid ${s.pidone.pid}, up ${duration(s.pidone.uptime_seconds)}${mode}${s.pidone.phase === "stopping" ? ", stopping" : ""}`;
  return [title, line(head), ...rows.map(line)].join("\n") + "\n";
}

function stateColumn(x: ServiceStatus): string {
  if (x.state === "restarting") return `restarting in ${x.restart_in_seconds ?? 0} s`;
  if (x.state === "waiting" && x.waiting_for.length) return `waiting for ${x.waiting_for.join(", ")}`;
  if (x.state === "stopped" && x.held) return "stopped (operator)";
  return x.state;
}

/** 45s, 3m04s, 2h03m, 3d04h. */
export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  const two = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}
