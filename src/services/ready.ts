// Readiness probes, and the single checks of liveness probes (health.ts runs them). A
// readiness probe retries until it succeeds or its deadline passes; probing is where
// services mode wakes on a timer: until a service is ready, and every interval of a
// liveness check.
//
// No probe may make the runtime start a thread: once services run, a thread the kernel
// refuses (a container's pids limit, filled by a fork bomb) aborts the runtime, and PID 1
// with it. `fetch` starts Bun's HTTP client thread, and a connection to a host name
// resolves it on Bun's thread pool; so the http probe is a plain HTTP/1.0 exchange over
// Bun.connect, and host names are resolved once, before any service starts
// (resolveProbeHosts), by c-ares on the event loop.
import { existsSync } from "node:fs";
import type { Socket } from "bun";
import type { HealthProbe, HealthSpec, ReadyProbe, ServiceSpec } from "../config/index.ts";
import type { SpawnFailure } from "../errors.ts";
import { SIG } from "../signals/table.ts";
import { kill } from "../sys/libc.ts";

/** An exec probe runs as its service does: same environment, directory and user. */
export type ProbeContext = Pick<ServiceSpec, "env" | "envFiles" | "cwd" | "user">;

const RETRY_MS = 100;
/** One connection attempt (connect, and for http the status line) gives up after this. */
const ATTEMPT_MS = 2000;
/** Start-up waits this long at most for the probes' host names. */
const RESOLVE_MS = 2000;
/** An http answer whose first line is longer than this is not HTTP. */
const STATUS_LINE_MAX = 1024;

export interface ProbeHooks {
  /**
   * Runs the exec probe's program through pidone's own spawner, in a process group of its
   * own; resolves with its exit code, or why it did not start. `started` learns its pid
   * (a liveness check's timeout kills its group).
   */
  runProgram(argv: readonly string[], executable: string | null, as: ProbeContext, started?: (pid: number) => void): Promise<number | SpawnFailure>;
}

// ---------------------------------------------------------------- host names

/** Each probe host name's addresses, or why it did not resolve; filled once, at start-up. */
const addresses = new Map<string, string[] | Error>();

/** An IPv4 or IPv6 address, which needs no resolving (a host name never holds ':'). */
const isIP = (host: string) => /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host) || host.includes(":");

/**
 * "localhost" and its subdomains are the loopback addresses (RFC 6761), as c-ares has
 * them; asked for "localhost" itself, Bun's lookup goes to getaddrinfo, on its thread pool.
 */
const LOOPBACK = ["127.0.0.1", "::1"];
const isLocalhost = (host: string) => /^(?:.+\.)?localhost\.?$/i.test(host);

/** A URL's host without an IPv6 literal's brackets. */
const bare = (host: string) => (host.startsWith("[") ? host.slice(1, -1) : host);

function probeHost(p: ReadyProbe): string | null {
  if (p.kind === "tcp") return p.host;
  if (p.kind === "http") return bare(new URL(p.url).hostname);
  return null;
}

/**
 * Resolves every probe's host name (readiness and liveness), once, before the services
 * run (numeric addresses need nothing). A name that does not resolve within RESOLVE_MS
 * leaves its probe failing (until ready_timeout; a liveness check: every time), and
 * describeProbe or the check's outcome says why. A name that would resolve differently
 * later keeps its start-up address: see the README's readiness section.
 */
export async function resolveProbeHosts(probes: Iterable<ReadyProbe | HealthSpec | null>): Promise<void> {
  const names = new Set<string>();
  for (const item of probes) {
    const p = item !== null && "probe" in item ? item.probe : item;
    const host = p && probeHost(p);
    if (host !== null && host !== "" && !isIP(host) && !isLocalhost(host)) names.add(host);
  }
  await Promise.all(
    [...names].map(async (name) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${RESOLVE_MS / 1000} s`)), RESOLVE_MS);
      });
      try {
        // c-ares, not getaddrinfo: getaddrinfo runs on Bun's thread pool.
        const found = await Promise.race([Bun.dns.lookup(name, { backend: "c-ares" }), late]);
        addresses.set(name, found.map((a) => a.address));
      } catch (e) {
        addresses.set(name, e instanceof Error ? e : new Error(String(e)));
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

/** Where to connect for `host`: itself when numeric, loopback for localhost, else its start-up addresses (none: unresolved). */
function addressesOf(host: string): string[] {
  if (isIP(host)) return [host];
  if (isLocalhost(host)) return LOOPBACK;
  const a = addresses.get(host);
  return Array.isArray(a) ? a : [];
}

// ---------------------------------------------------------------- the probes

/** One check's outcome: null when it passed, else why not ("HTTP 503", "connection refused"). */
export type Outcome = string | null;

/** The outcome of an attempt cut short by its time limit. */
const TIMED_OUT = "timed out";

interface Exchange {
  address: string;
  port: number;
  /** For https: the name the certificate must carry. */
  tlsName?: string;
  /** Sent once connected; null: the connection alone is the answer. */
  request: string | null;
}

/** Why a connection failed, in a few words: "connection refused", "ECONNRESET". */
function socketError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (typeof code === "string") return code;
  return e instanceof Error ? e.message : String(e);
}

/**
 * One attempt, given up (the socket closed) after `ms` or when `abort` fires: passed
 * when connected (request null), else what `status` says of the first line.
 */
function attempt(x: Exchange, status: (line: string) => Outcome, ms: number, abort?: AbortSignal): Promise<Outcome> {
  return new Promise((resolve) => {
    let socket: Socket | null = null;
    let head = "";
    let unsent = x.request === null ? null : Buffer.from(x.request, "latin1");
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abort?.removeEventListener("abort", aborted);
      socket?.end();
      resolve(outcome);
    };
    const aborted = () => finish(TIMED_OUT);
    const timer = setTimeout(aborted, ms);
    abort?.addEventListener("abort", aborted);
    const send = (s: Socket) => {
      if (unsent === null) return;
      const n = s.write(unsent);
      unsent = n < 0 ? null : unsent.subarray(n);
      if (unsent !== null && unsent.length === 0) unsent = null;
    };
    Bun.connect({
      hostname: x.address,
      port: x.port,
      tls: x.tlsName === undefined ? false : { serverName: x.tlsName },
      socket: {
        open(s) {
          socket = s;
          if (x.request === null) return finish(null);
          send(s);
        },
        handshake(_s, ok, error) {
          if (!ok) finish(`TLS handshake failed${error?.message ? `: ${error.message}` : ""}`);
        },
        drain: send,
        data(_s, chunk) {
          head += chunk.toString("latin1");
          const eol = head.indexOf("\n");
          if (eol >= 0) finish(status(head.slice(0, eol)));
          else if (head.length > STATUS_LINE_MAX) finish("not an HTTP answer");
        },
        close() {
          finish("connection closed before an answer");
        },
        error(_s, e) {
          finish(socketError(e));
        },
        connectError(_s, e) {
          finish(socketError(e));
        },
      },
    }).then(
      (s) => {
        socket = s;
        if (settled) s.end();
      },
      (e) => finish(socketError(e)),
    );
  });
}

/** When a check must be over: each attempt's own limit, and the whole check's. */
interface Limits {
  attemptMs: number;
  deadline: number;
  abort?: AbortSignal;
}

/** Tries each address in turn until one passes; the last failure otherwise. */
async function tryAddresses(host: string, limits: Limits, x: (address: string) => Exchange, status: (line: string) => Outcome): Promise<Outcome> {
  let outcome: Outcome = "no address";
  for (const address of addressesOf(host)) {
    const ms = Math.min(limits.attemptMs, limits.deadline - performance.now());
    if (ms <= 0 || limits.abort?.aborted) return TIMED_OUT;
    outcome = await attempt(x(address), status, ms, limits.abort);
    if (outcome === null) return null;
  }
  return outcome;
}

function tcpOnce(host: string, port: number, limits: Limits): Promise<Outcome> {
  return tryAddresses(host, limits, (address) => ({ address, port, request: null }), () => null);
}

/**
 * GET the URL and read only the status line, which `accept` judges by its code.
 * HTTP/1.0 with `Connection: close`, so that no server keeps the connection or chunks
 * the answer; a redirect is not followed, as with `fetch`'s redirect: "manual".
 */
function httpOnce(url: URL, accept: (code: number) => boolean, limits: Limits): Promise<Outcome> {
  const tls = url.protocol === "https:";
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  let request = `GET ${url.pathname}${url.search} HTTP/1.0\r\nHost: ${url.host}\r\nUser-Agent: pidone\r\nAccept: */*\r\nConnection: close\r\n`;
  if (url.username !== "" || url.password !== "") {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    request += `Authorization: Basic ${Buffer.from(credentials).toString("base64")}\r\n`;
  }
  request += "\r\n";
  const host = bare(url.hostname);
  const status = (line: string): Outcome => {
    const m = /^HTTP\/\d(?:\.\d)? (\d{3})(?:[ \r]|$)/.exec(line);
    if (m === null) return "not an HTTP answer";
    return accept(Number(m[1])) ? null : `HTTP ${m[1]}`;
  };
  return tryAddresses(host, limits, (address) => ({ address, port, request, tlsName: tls ? host : undefined }), status);
}

/** Readiness takes 2xx only: a redirect usually means "not serving yet" (a login, a maintenance page). */
const READY_HTTP = (code: number) => code >= 200 && code < 300;

async function once(probe: ReadyProbe, hooks: ProbeHooks, as: ProbeContext): Promise<boolean> {
  const limits: Limits = { attemptMs: ATTEMPT_MS, deadline: Infinity };
  switch (probe.kind) {
    case "tcp":
      return (await tcpOnce(probe.host, probe.port, limits)) === null;
    case "http":
      return (await httpOnce(new URL(probe.url), READY_HTTP, limits)) === null;
    case "file":
      return existsSync(probe.path);
    case "exec": {
      const r = await hooks.runProgram(probe.argv, probe.executable, as);
      noteStart(probe, r);
      return r === 0;
    }
    case "notify":
    case "fd":
      return false; // the service says it: waitAnnounced
  }
}

/**
 * Kept for the "not ready" line: a probe that cannot even start (no descriptor left,
 * no such program) would otherwise fail in silence until ready_timeout.
 */
function noteStart(probe: ReadyProbe, r: number | SpawnFailure): void {
  if (typeof r === "number") unstarted.delete(probe);
  else unstarted.set(probe, r.message);
}

/** Why an exec probe's program last failed to start, while it does. */
const unstarted = new WeakMap<ReadyProbe, string>();

/**
 * One liveness check (health.ts), over within `timeoutMs`: a tcp or http check closes
 * its socket then, an exec check's process group gets SIGKILL (and the check ends once
 * it is reaped, so that checks never overlap). `abort` ends it early the same way (the
 * service stopped); its outcome then means nothing. http passes on 2xx and 3xx: a live
 * server answered, and a redirect (to a login page, say) is no reason to kill it.
 */
export async function checkOnce(probe: HealthProbe, hooks: ProbeHooks, as: ProbeContext, timeoutMs: number, abort: AbortSignal): Promise<Outcome> {
  const timedOut = `timed out after ${timeoutMs / 1000} s`;
  const limits: Limits = { attemptMs: Infinity, deadline: performance.now() + timeoutMs, abort };
  switch (probe.kind) {
    case "tcp":
    case "http": {
      const host = probeHost(probe)!;
      const failed = addresses.get(host);
      if (failed instanceof Error) return `${host} did not resolve at start-up: ${failed.message}`;
      const outcome = probe.kind === "tcp" ? await tcpOnce(probe.host, probe.port, limits) : await httpOnce(new URL(probe.url), (c) => c >= 200 && c < 400, limits);
      return outcome === TIMED_OUT ? timedOut : outcome;
    }
    case "exec": {
      let pid = 0;
      let late = false;
      let done = false;
      const kill9 = () => {
        if (done || pid === 0) return;
        try {
          kill(-pid, SIG.KILL);
        } catch {
          // already gone: its reap is on the way
        }
      };
      const timeout = () => {
        late = true;
        kill9();
      };
      const timer = setTimeout(timeout, timeoutMs);
      abort.addEventListener("abort", kill9);
      const r = await hooks.runProgram(probe.argv, probe.executable, as, (p) => {
        pid = p;
        if (late || abort.aborted) kill9();
      });
      done = true;
      clearTimeout(timer);
      abort.removeEventListener("abort", kill9);
      noteStart(probe, r);
      if (typeof r !== "number") return `could not be started: ${r.message}`;
      if (late) return timedOut;
      return r === 0 ? null : `exit status ${r}`;
    }
  }
}

/** A probe as its config says it: "http http://127.0.0.1:8080/live", "tcp 127.0.0.1:5432", "exec pg_isready". */
export function probeText(p: ReadyProbe): string {
  switch (p.kind) {
    case "tcp":
      return `tcp ${p.host.includes(":") ? `[${p.host}]` : p.host}:${p.port}`;
    case "http":
      return `http ${p.url}`;
    case "file":
      return `file ${p.path}`;
    case "exec":
      return `exec ${p.argv.join(" ")}`;
    case "notify":
      return "notify (sd_notify READY=1)";
    case "fd":
      return `fd ${p.fd} (a newline)`;
  }
}

export function describeProbe(p: ReadyProbe): string {
  const host = probeHost(p);
  const failed = host === null ? undefined : addresses.get(host);
  const unresolved = failed instanceof Error ? ` (${host} did not resolve at start-up: ${failed.message})` : "";
  switch (p.kind) {
    case "tcp":
      return `tcp ${p.host}:${p.port}${unresolved}`;
    case "http":
      return `http ${p.url}${unresolved}`;
    case "file":
      return `file ${p.path}`;
    case "exec": {
      const why = unstarted.get(p);
      return `exec ${p.argv.join(" ")}${why ? ` (it could not be started: ${why})` : ""}`;
    }
    case "notify":
      return "notify (READY=1 on NOTIFY_SOCKET)";
    case "fd":
      return `fd ${p.fd} (a newline on it)`;
  }
}

/** Probes that the service answers itself (sd_notify, s6's notification fd): nothing to poll. */
export function announced(p: ReadyProbe): p is Extract<ReadyProbe, { kind: "notify" | "fd" }> {
  return p.kind === "notify" || p.kind === "fd";
}

/**
 * The announced kinds: resolves with `said` (true: the service said it is ready; false:
 * its run ended), or false at the deadline. One timer, no polling.
 */
export function waitAnnounced(said: Promise<boolean>, timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  return Promise.race([said, late]).finally(() => clearTimeout(timer));
}

/**
 * Resolves true once the probe succeeds, false at the deadline or when `cancelled()`
 * turns true (the service exited or is being stopped).
 */
export async function waitReady(
  probe: ReadyProbe,
  timeoutMs: number,
  hooks: ProbeHooks,
  cancelled: () => boolean,
  as: ProbeContext,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (cancelled()) return false;
    if (await once(probe, hooks, as)) return !cancelled();
    if (performance.now() + RETRY_MS > deadline) return false;
    await Bun.sleep(RETRY_MS);
  }
}
