// Readiness probes. Each retries until it succeeds or its deadline passes; probing is the
// one place services mode wakes on a timer, and only until the service is ready.
//
// No probe may make the runtime start a thread: once services run, a thread the kernel
// refuses (a container's pids limit, filled by a fork bomb) aborts the runtime, and PID 1
// with it. `fetch` starts Bun's HTTP client thread, and a connection to a host name
// resolves it on Bun's thread pool; so the http probe is a plain HTTP/1.0 exchange over
// Bun.connect, and host names are resolved once, before any service starts
// (resolveProbeHosts), by c-ares on the event loop.
import { existsSync } from "node:fs";
import type { Socket } from "bun";
import type { ReadyProbe, ServiceSpec } from "../config/index.ts";
import type { SpawnFailure } from "../errors.ts";

/** An exec probe runs as its service does: same environment, directory and user. */
export type ProbeContext = Pick<ServiceSpec, "env" | "cwd" | "user">;

const RETRY_MS = 100;
/** One connection attempt (connect, and for http the status line) gives up after this. */
const ATTEMPT_MS = 2000;
/** Start-up waits this long at most for the probes' host names. */
const RESOLVE_MS = 2000;
/** An http answer whose first line is longer than this is not HTTP. */
const STATUS_LINE_MAX = 1024;

export interface ProbeHooks {
  /** Runs the exec probe's program through pidone's own spawner; resolves with its exit code, or why it did not start. */
  runProgram(argv: readonly string[], executable: string | null, as: ProbeContext): Promise<number | SpawnFailure>;
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
 * Resolves every probe's host name, once, before the services run (numeric addresses
 * need nothing). A name that does not resolve within RESOLVE_MS leaves its probe failing
 * until the service's ready_timeout, and describeProbe says why. A name that would
 * resolve differently later keeps its start-up address: see the README's readiness section.
 */
export async function resolveProbeHosts(probes: Iterable<ReadyProbe | null>): Promise<void> {
  const names = new Set<string>();
  for (const p of probes) {
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

interface Exchange {
  address: string;
  port: number;
  /** For https: the name the certificate must carry. */
  tlsName?: string;
  /** Sent once connected; null: the connection alone is the answer. */
  request: string | null;
}

/** One attempt: true when connected (request null), else when `status` accepts the first line. */
function attempt(x: Exchange, status: (line: string) => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: Socket | null = null;
    let head = "";
    let unsent = x.request === null ? null : Buffer.from(x.request, "latin1");
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.end();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), ATTEMPT_MS);
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
          if (x.request === null) return finish(true);
          send(s);
        },
        handshake(_s, ok) {
          if (!ok) finish(false);
        },
        drain: send,
        data(_s, chunk) {
          head += chunk.toString("latin1");
          const eol = head.indexOf("\n");
          if (eol >= 0) finish(status(head.slice(0, eol)));
          else if (head.length > STATUS_LINE_MAX) finish(false);
        },
        close() {
          finish(false);
        },
        error() {
          finish(false);
        },
        connectError() {
          finish(false);
        },
      },
    }).then(
      (s) => {
        socket = s;
        if (settled) s.end();
      },
      () => finish(false),
    );
  });
}

async function tcpOnce(host: string, port: number): Promise<boolean> {
  for (const address of addressesOf(host)) if (await attempt({ address, port, request: null }, () => true)) return true;
  return false;
}

/**
 * GET the URL and read only the status line: ready on 2xx. HTTP/1.0 with
 * `Connection: close`, so that no server keeps the connection or chunks the answer;
 * a redirect is not followed (not ready), as with `fetch`'s redirect: "manual".
 */
async function httpOnce(url: URL): Promise<boolean> {
  const tls = url.protocol === "https:";
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  let request = `GET ${url.pathname}${url.search} HTTP/1.0\r\nHost: ${url.host}\r\nUser-Agent: pidone\r\nAccept: */*\r\nConnection: close\r\n`;
  if (url.username !== "" || url.password !== "") {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    request += `Authorization: Basic ${Buffer.from(credentials).toString("base64")}\r\n`;
  }
  request += "\r\n";
  const host = bare(url.hostname);
  const ok = (line: string) => {
    const m = /^HTTP\/\d(?:\.\d)? (\d{3})(?:[ \r]|$)/.exec(line);
    return m !== null && m[1]!.startsWith("2");
  };
  for (const address of addressesOf(host)) {
    if (await attempt({ address, port, request, tlsName: tls ? host : undefined }, ok)) return true;
  }
  return false;
}

async function once(probe: ReadyProbe, hooks: ProbeHooks, as: ProbeContext): Promise<boolean> {
  switch (probe.kind) {
    case "tcp":
      return tcpOnce(probe.host, probe.port);
    case "http":
      return httpOnce(new URL(probe.url));
    case "file":
      return existsSync(probe.path);
    case "exec": {
      const r = await hooks.runProgram(probe.argv, probe.executable, as);
      // Kept for the "not ready" line: a probe that cannot even start (no descriptor left,
      // no such program) would otherwise fail in silence until ready_timeout.
      if (typeof r === "number") unstarted.delete(probe);
      else unstarted.set(probe, r.message);
      return r === 0;
    }
    case "notify":
    case "fd":
      return false; // the service says it: waitAnnounced
  }
}

/** Why an exec probe's program last failed to start, while it does. */
const unstarted = new WeakMap<ReadyProbe, string>();

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
