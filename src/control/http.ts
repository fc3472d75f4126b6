// The read-only HTTP endpoint (`--http ADDR:PORT`, `[settings] http`): /healthz, /readyz,
// /status and /metrics, drawn from the status object at each request. Nothing can be
// changed over HTTP. The protocol part is pure (bytes in, response bytes out); serveHttp
// binds it to Bun.listen over TCP with the hostile-limits rules: IP literals only (see
// config/address.ts), a cap on connections, a deadline per connection, a bounded request,
// and no listening while descriptors run short.
import type { Socket, TCPSocketListener } from "bun";
import { formatHttpAddress, type HttpAddress } from "../config/index.ts";
import { SPARE_DESCRIPTORS } from "../process/startup.ts";
import { spareDescriptors } from "../sys/libc.ts";
import { formatMetrics, METRICS_CONTENT_TYPE } from "./metrics.ts";
import { healthOf, readinessOf, type Status } from "./status.ts";

/** The request line and headers together; a longer request is refused (414 or 431). */
export const REQUEST_MAX = 8192;
/** Connections served at once; one more is closed as soon as it is accepted. */
export const MAX_CONNECTIONS = 128;
/** From accept to the last byte of the answer: a silent or slow client is dropped then. */
export const CONNECTION_DEADLINE_MS = 5000;
/**
 * Descriptors that must stay free for the listener to stay open: pidone's own reserve
 * (startup.ts), one for the next accept, and one more, because Bun's accept loop spins
 * on EMFILE with a connection pending, and still does with one descriptor free.
 */
export const LISTEN_RESERVE = SPARE_DESCRIPTORS + 2;

// ---------------------------------------------------------------- the request

export type Parsed =
  /** Not a whole request yet: wait for more bytes. */
  | { kind: "incomplete" }
  | { kind: "request"; method: string; path: string }
  | { kind: "bad"; code: 400 | 414 | 431 | 505; why: string };

const LF = 0x0a;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TARGET = /^[\x21-\x7e]+$/;

/** Where the blank line that ends the headers ends, or -1. Bare LF line ends are accepted. */
function headersEnd(bytes: Uint8Array, from: number, limit: number): number {
  for (let i = bytes.indexOf(LF, from); i !== -1 && i < limit; i = bytes.indexOf(LF, i + 1)) {
    if (bytes[i + 1] === LF) return i + 2;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === LF) return i + 3;
  }
  return -1;
}

/**
 * The request in `bytes` (what the client has sent so far). Only the request line
 * matters; the headers are waited for, so that the answer is not sent while the client
 * is still writing, and bounded. `ended`: the client will send nothing more.
 */
export function parseRequest(bytes: Uint8Array, ended = false): Parsed {
  let start = 0;
  // RFC 9112 2.2: empty lines before the request line are ignored.
  while (bytes[start] === 0x0d || bytes[start] === LF) start++;
  const lineEnd = bytes.indexOf(LF, start);
  if (lineEnd === -1 || lineEnd >= REQUEST_MAX) {
    if (bytes.length >= REQUEST_MAX) return { kind: "bad", code: 414, why: `request line longer than ${REQUEST_MAX} bytes` };
    return ended ? { kind: "bad", code: 400, why: "incomplete request" } : { kind: "incomplete" };
  }
  const line = Buffer.from(bytes.subarray(start, lineEnd)).toString("latin1").replace(/\r$/, "");
  const parts = line.split(" ");
  if (parts.length !== 3 || !TOKEN.test(parts[0]!) || !TARGET.test(parts[1]!)) return { kind: "bad", code: 400, why: "malformed request line" };
  const [method, target, version] = parts as [string, string, string];
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return /^HTTP\/\d\.\d$/.test(version) ? { kind: "bad", code: 505, why: `${version} is not supported` } : { kind: "bad", code: 400, why: "malformed request line" };
  }
  const path = targetPath(target);
  if (path === null) return { kind: "bad", code: 400, why: "malformed request target" };
  const end = headersEnd(bytes, lineEnd, REQUEST_MAX);
  if (end === -1) {
    if (bytes.length >= REQUEST_MAX) return { kind: "bad", code: 431, why: `headers longer than ${REQUEST_MAX} bytes` };
    return ended ? { kind: "bad", code: 400, why: "incomplete request" } : { kind: "incomplete" };
  }
  return { kind: "request", method, path };
}

/** The path of an origin-form ("/metrics?x") or absolute-form ("http://h/metrics") target. */
function targetPath(target: string): string | null {
  if (target.startsWith("/")) return target.replace(/[?#].*$/s, "");
  const m = /^https?:\/\/[^/?#]*(\/[^?#]*)?/i.exec(target);
  if (m) return m[1] ?? "/";
  return target === "*" ? "*" : null;
}

// ---------------------------------------------------------------- the answer

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json";
export const PATHS = ["/healthz", "/readyz", "/status", "/metrics"] as const;
const ALLOW = "GET, HEAD";

interface Answer {
  code: number;
  type: string;
  body: string;
  extra?: [string, string][];
}

/** The complete response: status line, headers, and (unless HEAD) the body. Always closes. */
export function responseBytes(a: Answer, head = false, now = Date.now()): Uint8Array {
  const body = Buffer.from(a.body, "utf8");
  let text =
    `HTTP/1.1 ${a.code} ${REASONS[a.code] ?? "Unknown"}\r\n` +
    `Date: ${new Date(now).toUTCString()}\r\n` +
    `Content-Type: ${a.type}\r\n` +
    `Content-Length: ${body.length}\r\n` +
    "Cache-Control: no-store\r\n" +
    "Connection: close\r\n";
  for (const [k, v] of a.extra ?? []) text += `${k}: ${v}\r\n`;
  const headBytes = Buffer.from(`${text}\r\n`, "latin1");
  return head ? new Uint8Array(headBytes) : new Uint8Array(Buffer.concat([headBytes, body]));
}

/** "ok", or one reason a line, as `--ctl health` prints them. */
function verdict(v: { ok: boolean; reasons: string[] }): Answer {
  return v.ok ? { code: 200, type: TEXT, body: "ok\n" } : { code: 503, type: TEXT, body: v.reasons.map((r) => `${r}\n`).join("") };
}

/** `/status`'s body: the object of `status --json`, on one line. */
export function statusJson(s: Status): string {
  return `${JSON.stringify(s)}\n`;
}

/** What a request gets; the status is asked for only when a path needs it. */
export function answer(p: Exclude<Parsed, { kind: "incomplete" }>, status: () => Status): Answer {
  if (p.kind === "bad") return { code: p.code, type: TEXT, body: `${p.why}\n` };
  if (!(PATHS as readonly string[]).includes(p.path)) {
    return { code: 404, type: TEXT, body: `not found: the paths are ${PATHS.join(", ")}\n` };
  }
  if (p.method !== "GET" && p.method !== "HEAD") {
    return { code: 405, type: TEXT, body: "read-only: only GET and HEAD\n", extra: [["Allow", ALLOW]] };
  }
  let s: Status;
  try {
    s = status();
  } catch (e) {
    return { code: 500, type: TEXT, body: `cannot read the status: ${e instanceof Error ? e.message : String(e)}\n` };
  }
  switch (p.path) {
    case "/healthz":
      return verdict(healthOf(s));
    case "/readyz":
      return verdict(readinessOf(s));
    case "/status":
      return { code: 200, type: JSON_TYPE, body: statusJson(s) };
    default:
      return { code: 200, type: METRICS_CONTENT_TYPE, body: formatMetrics(s) };
  }
}

/** Bytes received so far → the response to send, or null while the request is incomplete. */
export function handle(bytes: Uint8Array, ended: boolean, status: () => Status, now = Date.now()): Uint8Array | null {
  const p = parseRequest(bytes, ended);
  if (p.kind === "incomplete") return null;
  return responseBytes(answer(p, status), p.kind === "request" && p.method === "HEAD", now);
}

// ---------------------------------------------------------------- the listener

export interface HttpServer {
  /** The address it listens on, with the port it got ("127.0.0.1:9100"). */
  readonly address: string;
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /** False while it has stopped listening for want of descriptors. */
  readonly listening: boolean;
  /** Listens again if it stopped for want of descriptors and they are back (call it when some were freed). */
  recheck(): void;
  /** Stops listening and drops every connection. */
  close(): void;
}

export type ServeResult = { ok: true; server: HttpServer } | { ok: false; message: string };

export interface ServeOptions {
  maxConnections?: number;
  deadlineMs?: number;
  /** Descriptors that must stay free to keep listening (tests lower or raise it). */
  reserve?: number;
  /** One line when the listener stops or resumes for want of descriptors, or cannot listen again. */
  warn?: (line: string) => void;
}

interface Connection {
  buf: Uint8Array;
  len: number;
  /** The response's bytes not yet written; null until the request is complete. */
  pending: Uint8Array | null;
  timer: ReturnType<typeof setTimeout> | null;
  counted: boolean;
}

const ERRNO_WORDS: Record<string, string> = {
  EADDRINUSE: "the address is in use",
  EADDRNOTAVAIL: "not an address of this machine",
  EACCES: "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)",
  EAFNOSUPPORT: "this address family is not supported here",
  EMFILE: "out of file descriptors",
  ENFILE: "the system's file table is full",
};

/** "cannot listen for HTTP on 0.0.0.0:9100: the address is in use (EADDRINUSE)". */
function listenFailure(where: string, e: unknown): string {
  const code = (e as { code?: unknown }).code;
  const words = typeof code === "string" ? `${ERRNO_WORDS[code] ?? code} (${code})` : e instanceof Error ? e.message : String(e);
  return `cannot listen for HTTP on ${where}: ${words}`;
}

/**
 * Listens on `addr` (an IP literal, as parseHttpAddress gives; port 0 takes a free port)
 * and answers each request from `status()`. Fails with one line when it cannot listen.
 */
export function serveHttp(addr: HttpAddress, status: () => Status, options: ServeOptions = {}): ServeResult {
  const max = options.maxConnections ?? MAX_CONNECTIONS;
  const deadline = options.deadlineMs ?? CONNECTION_DEADLINE_MS;
  const reserve = options.reserve ?? LISTEN_RESERVE;
  const warn = options.warn ?? (() => {});
  let open = 0;
  let closed = false;
  let port = addr.port;
  let listener: TCPSocketListener<Connection> | null = null;

  const spareEnough = () => spareDescriptors(reserve).made >= reserve;

  const finish = (socket: Socket<Connection>) => {
    const c = socket.data;
    while (c.pending && c.pending.length > 0) {
      const n = socket.write(c.pending);
      if (n <= 0) return; // the rest on drain
      c.pending = c.pending.subarray(n);
    }
    socket.end();
  };

  const receive = (socket: Socket<Connection>, chunk: Uint8Array | null) => {
    const c = socket.data;
    if (c.pending) return; // answered: the rest of what it sends is not read
    if (chunk) {
      const n = Math.min(chunk.length, c.buf.length - c.len);
      c.buf.set(chunk.subarray(0, n), c.len);
      c.len += n;
    }
    const bytes = handle(c.buf.subarray(0, c.len), chunk === null, status);
    if (bytes === null) return;
    c.pending = bytes;
    finish(socket);
  };

  const handlers = {
    open(socket: Socket<Connection>) {
      socket.data = { buf: new Uint8Array(REQUEST_MAX), len: 0, pending: null, timer: null, counted: false };
      if (closed || open >= max) {
        socket.terminate();
        return;
      }
      open++;
      socket.data.counted = true;
      socket.data.timer = setTimeout(() => socket.terminate(), deadline);
      // The accept just took a descriptor: stop listening while the next one would eat pidone's reserve.
      if (listener && !spareEnough()) {
        listener.stop(false);
        listener = null;
        warn(`HTTP endpoint ${formatHttpAddress({ host: addr.host, port })}: not listening while fewer than ${reserve} descriptors are free`);
      }
    },
    data(socket: Socket<Connection>, chunk: Uint8Array) {
      receive(socket, chunk);
    },
    end(socket: Socket<Connection>) {
      receive(socket, null);
    },
    drain(socket: Socket<Connection>) {
      if (socket.data?.pending) finish(socket);
    },
    close(socket: Socket<Connection>) {
      const c = socket.data;
      if (!c?.counted) return;
      c.counted = false;
      if (c.timer) clearTimeout(c.timer);
      c.timer = null;
      open--;
      if (!listener && !closed) resume();
    },
    error(socket: Socket<Connection>) {
      socket.terminate();
    },
  };

  const listen = (): string | null => {
    try {
      listener = Bun.listen<Connection>({ hostname: addr.host, port, socket: handlers });
      port = listener.port;
      return null;
    } catch (e) {
      return listenFailure(formatHttpAddress({ host: addr.host, port }), e);
    }
  };

  const resume = () => {
    if (!spareEnough()) return;
    const failure = listen();
    if (failure) warn(failure);
    else warn(`HTTP endpoint ${formatHttpAddress({ host: addr.host, port })}: listening again`);
  };

  const failure = listen();
  if (failure) return { ok: false, message: failure };
  return {
    ok: true,
    server: {
      get address() {
        return formatHttpAddress({ host: addr.host, port });
      },
      get port() {
        return port;
      },
      get connections() {
        return open;
      },
      get listening() {
        return listener !== null;
      },
      recheck() {
        if (!listener && !closed) resume();
      },
      close() {
        closed = true;
        listener?.stop(true);
        listener = null;
      },
    },
  };
}
