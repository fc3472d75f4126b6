// The control socket: a Unix stream socket on which pidone answers `pidone --ctl`
// (the protocol: CONTROL in src/native/protocol.ts). Local only, and only for root and
// pidone's own uid: the socket is 0600 in a directory pidone made 0700, and every
// connection's peer credentials are checked again, because a directory given with
// --control may be any volume.
//
// Bun.listen does the accepting. Two of its habits shape this file: a pending connection
// that accept(2) refuses with EMFILE makes its loop spin, so pidone stops listening
// while it is short of descriptors; and it keeps a timer while any connection is open,
// so connections are few (MAX_CLIENTS) and short (REQUEST_TIMEOUT_MS to send a request).
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { CONTROL } from "../native/protocol.ts";
import { geteuid, peerCredentials, probeUnixSocket, spareDescriptors, UNIX_PATH_MAX } from "../sys/libc.ts";

export interface Answer {
  /** The client's exit status (CONTROL.OK, FAILED, USAGE). */
  code: number;
  text: string;
}

/** What a mode answers: the request's words (COMMAND ARGS...), from a permitted caller. */
export type ControlHandler = (words: string[]) => Answer | Promise<Answer>;

/** Where to listen, or why not (one line for the log; null: turned off, nothing to say). */
export type ControlPlace = { path: string } | { off: string | null };

/** The default directory, made 0700 here: a directory given with --control is left as it is. */
const DEFAULT_DIR = dirname(CONTROL.DEFAULT_PATH);

/**
 * Where services mode listens: --control, PIDONE_CONTROL (both in `given`), [settings]
 * control, else the default when /run is writable. A read-only root is common, so the
 * default's absence is an info line, never a failure.
 */
export function controlPlace(given: string | null, fromConfig: string | null): ControlPlace {
  const chosen = given ?? fromConfig;
  if (chosen === "none") return { off: null };
  if (chosen !== null) return { path: chosen };
  // Only inside an existing /run: nothing is written to the image's own directories
  // unasked (a FROM scratch image has no /run).
  try {
    mkdirSync(DEFAULT_DIR, { mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") {
      const run = dirname(DEFAULT_DIR);
      const why = code === "ENOENT" ? `${run} does not exist` : code === "EROFS" ? `${run} is read-only` : `cannot make ${DEFAULT_DIR} (${code})`;
      return { off: `no control socket: ${why}; give --control PATH (or PIDONE_CONTROL) in a writable directory to use pidone --ctl` };
    }
  }
  return { path: CONTROL.DEFAULT_PATH };
}

/** Makes the socket's directory (the default one: private to pidone's uid). Null, or why not. */
function prepareDirectory(path: string): string | null {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") return `cannot make ${dir} (${code})`;
  }
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return `${dir} is not a directory`;
  if (dir === DEFAULT_DIR) {
    // Left by an earlier run, or made by the image: it must be ours and closed to others.
    if (st.uid !== geteuid()) return `${dir} belongs to uid ${st.uid}, not pidone's ${geteuid()}`;
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  }
  return null;
}

/**
 * A socket file left at `path` by an earlier run (/run survives `docker restart`) is
 * removed once a connection to it is refused; one that answers belongs to a live
 * pidone and stays. Null, or why pidone cannot listen there.
 */
function clearOldSocket(path: string): string | null {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return null;
  if (!st.isSocket()) return `${path} exists and is not a socket`;
  const e = probeUnixSocket(path);
  if (e === 0) return `another process answers at ${path}`;
  unlinkSync(path);
  return null;
}

/** An answer not taken by the client (it stopped reading) within this is dropped. */
const ANSWER_TIMEOUT_MS = 10_000;

interface Connection {
  /** The request's bytes so far. */
  chunks: Uint8Array[];
  length: number;
  /** Dropped when its request is not complete by then. */
  timer: ReturnType<typeof setTimeout> | null;
  /** The answer, written as the socket drains. */
  out: Uint8Array | null;
  written: number;
  answered: boolean;
  /**
   * Set at accept: the answer this caller gets instead of its command's. Sent once its
   * request is read: closing a socket with unread bytes resets the connection, and the
   * client would lose the answer.
   */
  early: Answer | null;
}

export class ControlServer {
  private listener: UnixSocketListener<Connection> | null = null;
  private open = 0;
  /** Short of descriptors: not listening until a connection closes (see the header). */
  private paused = false;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private readonly uid = geteuid();

  private constructor(
    readonly path: string,
    private readonly handler: ControlHandler,
  ) {}

  /** Listens at `path`; null and one line (`why`) when it cannot: pidone runs on without control. */
  static start(path: string, handler: ControlHandler, why: (line: string) => void): ControlServer | null {
    if (Buffer.byteLength(path) >= UNIX_PATH_MAX) {
      why(`no control socket: ${path} is longer than a Unix socket path may be (${UNIX_PATH_MAX - 1} bytes)`);
      return null;
    }
    try {
      const problem = prepareDirectory(path) ?? clearOldSocket(path);
      if (problem) {
        why(`no control socket: ${problem}`);
        return null;
      }
      const server = new ControlServer(path, handler);
      server.listen();
      return server;
    } catch (e) {
      why(`no control socket at ${path}: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  }

  /** Stops listening and removes the socket file (pidone is exiting). */
  close(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.listener?.stop(true);
    this.listener = null;
    try {
      unlinkSync(this.path);
    } catch {
      // gone already: nothing to leave behind
    }
  }

  private listen(): void {
    // The socket is 0600 from bind(2) on: no moment in which others could connect.
    const umask = process.umask(0o177);
    try {
      this.listener = Bun.listen<Connection>({
        unix: this.path,
        socket: {
          open: (s) => this.opened(s),
          data: (s, bytes) => this.received(s, bytes),
          drain: (s) => this.flush(s),
          close: (s) => this.closed(s),
          error: () => {},
        },
      });
    } finally {
      process.umask(umask);
    }
  }

  private opened(s: Socket<Connection>): void {
    this.open++;
    s.data = { chunks: [], length: 0, timer: null, out: null, written: 0, answered: false, early: null };
    if (!this.hasSpareDescriptors()) this.pause();
    const refusal = this.open > CONTROL.MAX_CLIENTS || this.paused ? "too many control connections at once; try again" : this.refusal(s);
    if (refusal) s.data.early = { code: CONTROL.FAILED, text: `pidone: ${refusal}\n` };
    s.data.timer = setTimeout(() => {
      s.data.timer = null;
      this.answer(s, s.data.early ?? { code: CONTROL.FAILED, text: `pidone: no complete request within ${CONTROL.REQUEST_TIMEOUT_MS} ms\n` });
    }, CONTROL.REQUEST_TIMEOUT_MS);
  }

  /** Why this caller may not use the socket, or null. */
  private refusal(s: Socket<Connection>): string | null {
    // Bun's sockets carry their descriptor as `fd` (not in its types; test/control-server
    // fails if an upgrade takes it away). Without it no caller can be checked: refuse all.
    const fd = (s as unknown as { fd?: unknown }).fd;
    if (typeof fd !== "number" || fd < 0) return "cannot check the caller's credentials; control refused";
    try {
      const peer = peerCredentials(fd);
      if (peer.uid === 0 || peer.uid === this.uid) return null;
      return `uid ${peer.uid} may not use this socket (only root${this.uid === 0 ? "" : ` and uid ${this.uid}`})`;
    } catch (e) {
      return `cannot check the caller's credentials (${e instanceof Error ? e.message : String(e)})`;
    }
  }

  private received(s: Socket<Connection>, bytes: Uint8Array): void {
    const c = s.data;
    if (c.answered) return;
    c.length += bytes.length;
    if (c.length > CONTROL.REQUEST_MAX) {
      return this.answer(s, { code: CONTROL.USAGE, text: `pidone: the request is longer than ${CONTROL.REQUEST_MAX} bytes\n` });
    }
    c.chunks.push(new Uint8Array(bytes)); // Bun reuses the buffer it hands to data()
    const request = parseRequest(Buffer.concat(c.chunks));
    if (request === "incomplete") return;
    if (c.early) return this.answer(s, c.early);
    if (typeof request === "object" && "malformed" in request) {
      return this.answer(s, { code: CONTROL.USAGE, text: `pidone: not a control request (${request.malformed})\n` });
    }
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    c.answered = true;
    void (async () => {
      let a: Answer;
      try {
        a = await this.handler(request);
      } catch (e) {
        a = { code: CONTROL.FAILED, text: `pidone: ${e instanceof Error ? e.message : String(e)}\n` };
      }
      this.answer(s, a, true);
    })();
  }

  /** Sends `CODE\n` and the text, then hangs up. */
  private answer(s: Socket<Connection>, a: Answer, force = false): void {
    const c = s.data;
    if ((c.answered && !force) || c.out) return;
    c.answered = true;
    if (c.timer) clearTimeout(c.timer);
    c.out = Buffer.from(`${a.code}\n${a.text}`);
    c.timer = setTimeout(() => s.terminate(), ANSWER_TIMEOUT_MS);
    this.flush(s);
  }

  private flush(s: Socket<Connection>): void {
    const c = s.data;
    if (!c.out) return;
    while (c.written < c.out.length) {
      const n = s.write(c.out.subarray(c.written));
      if (n <= 0) return; // the rest when it drains (a client that never reads: ANSWER_TIMEOUT_MS ends it)
      c.written += n;
    }
    s.end();
  }

  private closed(s: Socket<Connection>): void {
    this.open--;
    if (s.data?.timer) clearTimeout(s.data.timer);
    if (this.paused) this.resume();
  }

  private hasSpareDescriptors(): boolean {
    return spareDescriptors(2).made >= 2;
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.listener?.stop(false); // open connections go on
    this.listener = null;
    this.scheduleRetry();
  }

  /** Listens again once descriptors are spare. */
  private resume(): void {
    if (!this.paused) return;
    if (!this.hasSpareDescriptors()) return this.scheduleRetry();
    this.paused = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    try {
      unlinkSync(this.path);
    } catch {
      // removed by stop() already
    }
    try {
      this.listen();
    } catch {
      this.paused = true;
      this.scheduleRetry();
    }
  }

  /** While paused with no connection to close, look again each second (only then a timer). */
  private scheduleRetry(): void {
    if (this.retry || this.open > 0) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.resume();
    }, 1000);
  }
}

/**
 * A request's words, "incomplete" while more bytes should come, or why it is not one.
 * "pidone-ctl 1 ARGC\n" then ARGC words, each ended by a NUL.
 */
export function parseRequest(bytes: Uint8Array): string[] | "incomplete" | { malformed: string } {
  const nl = bytes.indexOf(0x0a);
  if (nl < 0) return bytes.length > 64 ? { malformed: "no header line" } : "incomplete";
  const header = Buffer.from(bytes.subarray(0, nl)).toString("latin1");
  const m = /^(\S+ \d+) (\d{1,4})$/.exec(header);
  if (!m || m[1] !== CONTROL.HEADER) return { malformed: `header ${JSON.stringify(header.slice(0, 40))}` };
  const argc = Number(m[2]);
  const words: string[] = [];
  let at = nl + 1;
  while (words.length < argc) {
    const end = bytes.indexOf(0, at);
    if (end < 0) return "incomplete";
    words.push(Buffer.from(bytes.subarray(at, end)).toString("utf8"));
    at = end + 1;
  }
  if (at !== bytes.length) return { malformed: "bytes after the last word" };
  return words;
}
