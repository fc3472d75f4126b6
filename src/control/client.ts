// The control channel's client for the plain file (dist/pidone-glibc) and `bun
// src/main.ts`: `pidone --ctl [--control PATH] COMMAND [ARGS...]`, `pidone --control PATH
// --ctl ...` and the file named pidonectl. The single file never gets here: its stub is
// the client (stub.c, section "ctl"), without the runtime. Both send the same request
// (src/native/protocol.ts, CONTROL), print the same usage and messages and exit with the
// same codes; test/control-client.test.ts runs both.
import { CONTROL } from "../native/protocol.ts";
import { exit, writeAll, UNIX_PATH_MAX } from "../sys/libc.ts";

export const USAGE = `Usage: pidone --ctl [--control PATH] COMMAND [ARGS...]
       ${CONTROL.CLIENT_NAME} [--control PATH] COMMAND [ARGS...]

Asks the pidone that runs the services, over its control socket:
  status [NAME...] [--json]  each service's state, pid, uptime, restarts, health
  start NAME                 start a service an operator stopped
  stop NAME                  stop a service; the container keeps running
  restart NAME               restart a service now
  signal NAME SIGNAL         send SIGNAL to the service's process group
  health                     exit 0 when every critical service runs and is ready, else 1

The socket: --control PATH, else $${CONTROL.PATH_VARIABLE}, else ${CONTROL.DEFAULT_PATH}.
Exit status: 0 done, 1 refused or failed, 2 usage, 3 no pidone answering (health: 1).
`;

/** The stub's texts for the errors a connection meets (errno numbers, as the kernel's). */
const ERRNO_TEXT: Record<number, string> = {
  1: "operation not permitted",
  2: "no such file or directory",
  13: "permission denied",
  20: "not a directory",
  24: "too many open files",
  32: "broken pipe",
  88: "not a socket",
  91: "protocol wrong type for socket",
  104: "connection reset by peer",
  111: "connection refused",
};

const reason = (errno: number) => ERRNO_TEXT[errno] ?? `errno ${errno}`;
const TIMED_OUT = `no answer within ${CONTROL.CLIENT_TIMEOUT_MS / 1000} s`;

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");
const bytes = (latin1: string) => new Uint8Array(Buffer.from(latin1, "latin1"));

function write(fd: 1 | 2, data: Uint8Array): boolean {
  return writeAll(fd, data, CONTROL.CLIENT_TIMEOUT_MS);
}

/** One line on stderr, and the exit: `health` exits only 0 or 1 (Docker reserves 2 for HEALTHCHECK). */
function fail(line: string, code: number, health: boolean): never {
  write(2, bytes(`${line}\n`));
  return exit(health ? CONTROL.FAILED : code);
}

/** Where the options after the program's name start, and where `--ctl` stands among them (0: not there). */
function form(argv: readonly string[]): { from: number; ctlAt: number } {
  const name = argv[0] ?? "";
  if (name.slice(name.lastIndexOf("/") + 1) === CONTROL.CLIENT_NAME) return { from: 1, ctlAt: 0 };
  if (argv[1] === "--ctl") return { from: 2, ctlAt: 0 };
  return { from: 1, ctlAt: argv[1] === "--control" ? 3 : 2 };
}

/**
 * Runs the client and exits. `argv`: byte for byte, as main.ts found it a client call;
 * `env`: the environment, latin1-decoded.
 */
export async function runClient(argv: readonly Uint8Array[], env: ReadonlyMap<string, string>): Promise<never> {
  const words = argv.map(text);
  const { from, ctlAt } = form(words);
  let path: string | null = null;
  let i = from;
  for (; i < words.length; i++) {
    const w = words[i]!;
    if (i === ctlAt) continue;
    if (w === "--control") {
      if (i + 1 >= words.length) return fail("pidone: option '--control' requires an argument", CONTROL.USAGE, false);
      path = words[++i]!;
    } else if (w.startsWith("--control=")) {
      path = w.slice("--control=".length);
    } else break;
  }
  if (i >= words.length) {
    write(2, bytes(USAGE));
    return exit(CONTROL.USAGE);
  }
  if (words[i] === "-h" || words[i] === "--help") {
    write(1, bytes(USAGE));
    return exit(CONTROL.OK);
  }
  const health = words[i] === "health";

  let source = "--control ";
  if (path === null) {
    source = `${CONTROL.PATH_VARIABLE}=`;
    path = env.get(CONTROL.PATH_VARIABLE) || null;
  }
  path ??= CONTROL.DEFAULT_PATH;
  if (path === "none" || path === "") {
    const why = path ? "none: the control socket is off, there is no pidone to ask" : "needs a path";
    return fail(`pidone: ${source}${why}`, CONTROL.USAGE, health);
  }
  if (path.length >= UNIX_PATH_MAX) {
    return fail(`pidone: the control socket's path is too long (${path.length} bytes, at most ${UNIX_PATH_MAX - 1})`, CONTROL.USAGE, health);
  }

  const args = argv.slice(i);
  const parts: Uint8Array[] = [bytes(`${CONTROL.HEADER} ${args.length}\n`)];
  for (const a of args) parts.push(a, new Uint8Array(1));
  const request = Buffer.concat(parts);
  if (request.length > CONTROL.REQUEST_MAX) {
    return fail(`pidone: the request is too long (${request.length} bytes, at most ${CONTROL.REQUEST_MAX})`, CONTROL.USAGE, health);
  }
  return ask(path, request, health);
}

/** Sends the request, copies the answer, exits with its code. */
function ask(path: string, request: Uint8Array, health: boolean): Promise<never> {
  const noAnswer = (why: string): never => fail(`pidone: no pidone answering at ${path} (${why})`, CONTROL.NO_ANSWER, health);
  const cutShort = (why: string): never => fail(`pidone: the answer from ${path} was cut short (${why})`, CONTROL.NO_ANSWER, health);
  let code = -1;
  let head = "";
  let unsent = request;
  // One deadline for the whole exchange, as the stub's socket timeouts.
  setTimeout(() => (code < 0 ? noAnswer(TIMED_OUT) : cutShort(TIMED_OUT)), CONTROL.CLIENT_TIMEOUT_MS);
  const send = (s: { write(data: Uint8Array): number }) => {
    if (unsent.length) unsent = unsent.subarray(Math.max(0, s.write(unsent)));
  };
  const ended = () => {
    if (code >= 0) exit(code);
    noAnswer(head ? "not a pidone answer" : "closed without an answer");
  };
  // The path as Bun passes it to connect(2): it encodes the string as UTF-8.
  const unix = Buffer.from(path, "latin1").toString("utf8");
  return new Promise<never>(() => {
    Bun.connect({
      unix,
      socket: {
        open: send,
        drain: send,
        data(_s, chunk) {
          let at = 0;
          while (code < 0 && at < chunk.length) {
            const c = chunk[at++]!;
            if (c === 0x0a && head) code = Number(head);
            else if (c >= 0x30 && c <= 0x39 && head.length < 3 && Number(head + String.fromCharCode(c)) <= 255) head += String.fromCharCode(c);
            else noAnswer("not a pidone answer");
          }
          // A reader gone from our output: the answer was given; its status stands.
          if (at < chunk.length && !write(code === 0 ? 1 : 2, chunk.subarray(at))) exit(code);
        },
        end: ended,
        close: ended,
        error(_s, error) {
          (code < 0 ? noAnswer : cutShort)(reason(-((error as { errno?: number }).errno ?? 0)));
        },
      },
    }).catch((e: { errno?: number }) => noAnswer(reason(-(e.errno ?? 0))));
  });
}
