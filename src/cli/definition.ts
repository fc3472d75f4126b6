// The one table of pidone's options: citty's definitions render the help, and the
// option grammar derives each option's arity from them (boolean: 0, string: 1), so a
// new option can never swallow PROGRAM by accident. Only the help loads citty itself
// (help.ts): the table is plain data, and tini's path never renders the help.
import type { ArgsDef } from "citty";

export const args = {
  help: { type: "boolean", alias: ["h"], description: "Show this help message and exit." },
  version: { type: "boolean", description: "Show version and exit." },
  subreaper: {
    type: "boolean",
    alias: ["s"],
    description: "Register as a process subreaper (requires Linux >= 3.4).",
  },
  pdeathsig: {
    type: "string",
    alias: ["p"],
    valueHint: "SIGNAL",
    description: 'Trigger SIGNAL when parent dies, e.g. "-p SIGKILL".',
  },
  verbose: { type: "boolean", alias: ["v"], description: "Generate more verbose output. Repeat up to 3 times." },
  "warn-on-reap": {
    type: "boolean",
    alias: ["w"],
    description: "Print a warning when processes are getting reaped.",
  },
  "process-group": {
    type: "boolean",
    alias: ["g"],
    description: "Send signals to the child's process group.",
  },
  "expect-exit": {
    type: "string",
    alias: ["e"],
    valueHint: "EXIT_CODE",
    description: "Remap EXIT_CODE (from 0 to 255) to 0 (can be repeated).",
  },
  license: { type: "boolean", alias: ["l"], description: "Show license and exit." },
  pause: {
    type: "boolean",
    alias: ["P"],
    description: "No program: stay PID 1, reap zombies, exit 0 on SIGTERM/SIGINT.",
  },
  grace: {
    type: "string",
    valueHint: "SECONDS",
    description: "Stop: how long leftover processes get after SIGTERM before SIGKILL; 0: no sweep (default 5).",
  },
  "stop-signals": {
    type: "string",
    valueHint: "LIST",
    description: "Signals that start the stop (default TERM,INT), e.g. TERM,INT,QUIT.",
  },
  "stop-delay": {
    type: "string",
    valueHint: "SECONDS",
    description: "On a stop signal, wait SECONDS before forwarding or stopping anything; inside the grace (default 0).",
  },
  "wait-all": {
    type: "boolean",
    description: "Exit when no child is left, not when PROGRAM exits (daemons that fork).",
  },
  pidfile: {
    type: "string",
    valueHint: "FILE",
    description: "After PROGRAM exits 0, adopt the daemon whose pid FILE holds.",
  },
  "pidfile-timeout": {
    type: "string",
    valueHint: "SECONDS",
    description: "How long to wait for --pidfile's FILE (default 10).",
  },
  rewrite: {
    type: "string",
    alias: ["r"],
    valueHint: "S:R",
    description: "Forward signal S as R (R = 0 drops S); repeatable, e.g. -r TERM:QUIT.",
  },
  service: {
    type: "string",
    valueHint: "'NAME: COMMAND'",
    description: "Supervise a service (repeatable); COMMAND runs with /bin/sh -c. No PROGRAM then.",
  },
  config: {
    type: "string",
    alias: ["c"],
    valueHint: "FILE",
    description: "Services from a Procfile, or from FILE.toml (see the README's schema); repeatable.",
  },
  check: {
    type: "boolean",
    description: "With -c/--service: validate the services and exit 0, or exit 2 listing every problem.",
  },
  control: {
    type: "string",
    valueHint: "PATH",
    description: "Services: the control socket (default /run/pidone/control.sock; none: off). With PROGRAM or --pause: answer status and health there.",
  },
  // Services mode's log options (issue #15).
  "log-format": {
    type: "string",
    valueHint: "FORMAT",
    description: "Services mode's output: prefix (NAME | line; default), json (an object per line) or raw (no capture).",
  },
  "log-timestamps": {
    type: "boolean",
    description: "Services mode: prefixed lines start with their UTC time (RFC 3339, milliseconds).",
  },
  quiet: {
    type: "boolean",
    alias: ["q"],
    description: "pidone's own lines: warnings and errors only (level warn). Services' own lines are never affected.",
  },
  setsid: {
    type: "boolean",
    description: "Start PROGRAM in a new session; TSTP/TTIN/TTOU become STOP to its group.",
  },
  http: {
    type: "string",
    valueHint: "ADDR:PORT",
    description: "Services: serve /healthz, /readyz, /status, /metrics read-only over HTTP, e.g. 0.0.0.0:9100; none: off.",
  },
  program: {
    type: "positional",
    required: false,
    description: "The program to run as the main child, then its arguments.",
  },
} as const satisfies ArgsDef;

export type OptionName = Exclude<keyof typeof args, "program">;

export const ENVIRONMENT_HELP = [
  ["PIDONE_GRACE", "Default for --grace."],
  ["PIDONE_CONTROL", "Services: default for --control (and where --ctl connects)."],
  ["PIDONE_LOG_FORMAT", "Default for --log-format (over the file's log_format)."],
  ["PIDONE_STOP_DELAY", "Default for --stop-delay."],
  ["TINI_SUBREAPER", "Register as a process subreaper (requires Linux >= 3.4)."],
  ["TINI_VERBOSITY", "Set the verbosity level (default: 1)."],
  ["TINI_KILL_PROCESS_GROUP", "Send signals to the child's process group."],
] as const;
