// The read-only HTTP endpoint (issue 14): the address (--http, [settings] http), the
// request parser and the answers as pure functions, the exposition read by a real
// Prometheus parser (Debian's python3-prometheus-client), and serveHttp for real on
// 127.0.0.1: many clients at once, silent and oversized ones, the connection cap, the
// descriptor guard, and no wake-up while nobody asks.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { decide } from "../src/cli/options.ts";
import { formatHttpAddress, parseHttpAddress, planFromSources, type PlanOptions, type Source } from "../src/config/index.ts";
import { handle, LISTEN_RESERVE, parseRequest, REQUEST_MAX, serveHttp, type HttpServer } from "../src/control/http.ts";
import { escapeLabelValue, formatMetrics, METRICS_CONTENT_TYPE } from "../src/control/metrics.ts";
import type { ServiceStatus, Status } from "../src/control/status.ts";
import { contextSwitches } from "./fixtures/native-lib.ts";
import { prometheusParse } from "./fixtures/prometheus.ts";
import { PIDONE, ROOT, run, start, tempDir, waitFor } from "./helpers.ts";

setDefaultTimeout(60_000);

// ---------------------------------------------------------------- a status to serve

function service(name: string, over: Partial<ServiceStatus> = {}): ServiceStatus {
  return {
    name, state: "running", critical: true, oneshot: false, held: false, pid: 100,
    started_at: "2026-12-07T08:00:00.500Z", uptime_seconds: 60, restarts: 0, restart_in_seconds: null,
    waiting_for: [], last_exit: null, readiness: { check: null, ready: true }, health: null, status_text: null,
    ...over,
  };
}

function statusOf(services: ServiceStatus[], phase: "running" | "stopping" = "running"): Status {
  return {
    version: 1,
    pidone: {
      pid: 1, version: "1.2.3", mode: "services", phase, started_at: "2026-12-07T07:59:59.000Z",
      uptime_seconds: 61, reaped_total: 7, signals_forwarded_total: 3,
    },
    services,
  };
}

const HEALTHY = statusOf([
  service("web", { state: "ready", readiness: { check: "tcp 127.0.0.1:80", ready: true } }),
  service("migrate", { state: "exited", oneshot: true, pid: null, started_at: null, uptime_seconds: null,
    last_exit: { code: 0, signal: null, description: "status 0", at: "2026-12-07T08:00:00.400Z" } }),
]);
const SICK = statusOf([
  service("db", { state: "failed", pid: null, started_at: null, uptime_seconds: null, restarts: 5,
    readiness: { check: "tcp 127.0.0.1:5432", ready: false },
    last_exit: { code: 137, signal: "SIGKILL", description: "signal SIGKILL", at: "2026-12-07T08:01:00.000Z" } }),
  service("app", { state: "starting", readiness: { check: "http http://127.0.0.1:8080/", ready: false } }),
  service("cache", { critical: false, health: { check: "tcp 127.0.0.1:6379", status: "unhealthy", failures: 3,
    last: { ok: false, detail: "connection refused", at: "2026-12-07T08:01:00.000Z" } } }),
]);

// ---------------------------------------------------------------- the address

describe("the address: --http and [settings] http", () => {
  test("IP literals with a port; localhost is 127.0.0.1", () => {
    const ok = (s: string) => {
      const r = parseHttpAddress(s);
      if (!r.ok) throw new Error(r.message);
      return formatHttpAddress(r.address);
    };
    expect(ok("0.0.0.0:9100")).toBe("0.0.0.0:9100");
    expect(ok("127.0.0.1:1")).toBe("127.0.0.1:1");
    expect(ok("[::]:9100")).toBe("[::]:9100");
    expect(ok("[::1]:65535")).toBe("[::1]:65535");
    expect(ok("[::ffff:10.0.0.1]:80")).toBe("[::ffff:10.0.0.1]:80");
    expect(ok("localhost:9100")).toBe("127.0.0.1:9100");
    expect(parseHttpAddress("[::1]:9100")).toEqual({ ok: true, address: { host: "::1", port: 9100 } });
  });

  test("anything else is refused with what to write", () => {
    const why = (s: string) => {
      const r = parseHttpAddress(s);
      return r.ok ? "accepted" : r.message;
    };
    expect(why("example.com:9100")).toBe(
      `"example.com:9100": "example.com" is a host name: give an IP address (pidone resolves no names once services run), e.g. "0.0.0.0:9100" (every IPv4 address), "127.0.0.1:9100", "[::]:9100"`);
    expect(why("9100")).toStartWith(`"9100": a port alone; give ADDR:PORT`);
    expect(why(":9100")).toBe(`":9100": no address; write 0.0.0.0:9100 for every IPv4 address, or [::]:9100 for every address`);
    expect(why("0.0.0.0")).toStartWith(`"0.0.0.0": expected ADDR:PORT`);
    expect(why("::1:9100")).toStartWith(`"::1:9100": expected ADDR:PORT`);
    expect(why("0.0.0.0:0")).toBe(`"0.0.0.0:0": the port must be a number from 1 to 65535, got "0"`);
    expect(why("0.0.0.0:65536")).toContain("from 1 to 65535");
    expect(why("0.0.0.0:http")).toContain("from 1 to 65535");
    expect(why("256.0.0.1:80")).toBe(`"256.0.0.1:80": "256.0.0.1" is not an IPv4 address (four numbers from 0 to 255, no leading zeros)`);
    expect(why("010.0.0.1:80")).toContain("not an IPv4 address");
    expect(why("10.1:80")).toContain("not an IPv4 address");
    expect(why("[fe80::1%eth0]:80")).toBe(`"[fe80::1%eth0]:80": "[fe80::1%eth0]" is not an IPv6 address`);
    expect(why("[1:2:3]:80")).toContain("is not an IPv6 address");
    expect(why("[localhost]:80")).toContain("is not an IPv6 address");
  });

  const b = (...a: string[]) => a.map((s) => new Uint8Array(Buffer.from(s)));
  const noEnv = new Map<string, string>();
  test("--http ADDR:PORT, --http none, and a bad value as a usage error", () => {
    const d = decide(b("pidone", "--http", "127.0.0.1:9100", "-c", "x.toml"), noEnv);
    expect(d.kind === "run" && d.http).toEqual({ host: "127.0.0.1", port: 9100 });
    const none = decide(b("pidone", "--http=none", "-c", "x.toml"), noEnv);
    expect(none.kind === "run" && none.http).toBe("none");
    const absent = decide(b("pidone", "-c", "x.toml"), noEnv);
    expect(absent.kind === "run" && absent.http).toBeNull();
    expect(decide(b("pidone", "--http", "web:80", "-c", "x.toml"), noEnv)).toEqual({
      kind: "usage-error",
      fatal: `Not a valid option for --http: "web:80": "web" is a host name: give an IP address (pidone resolves no names once services run), e.g. "0.0.0.0:9100" (every IPv4 address), "127.0.0.1:9100", "[::]:9100"`,
    });
  });

  const MACHINE: PlanOptions = { env: { PATH: "/usr/bin:/bin" }, cwd: "/", euid: 0, probe: () => "executable", checkPrograms: false };
  const toml = (text: string, file = "app.toml"): Source => ({ kind: "toml", file, text });
  const plan = (sources: Source[], options: PlanOptions = MACHINE) => {
    const r = planFromSources(sources, options);
    return r.ok ? r.plan.settings : r.diagnostics;
  };
  const withHttp = toml('[settings]\nhttp = "0.0.0.0:9100"\n[services.a]\ncommand = "x"\n');
  const bare = toml('[services.a]\ncommand = "x"\n');

  test("[settings] http: the flag wins, none turns it off, and there is no default", () => {
    expect(plan([withHttp])).toEqual({ grace: 5, logFormat: "prefix", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null, http: { host: "0.0.0.0", port: 9100 } });
    expect(plan([bare])).toEqual({ grace: 5, logFormat: "prefix", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null });
    expect(plan([bare], { ...MACHINE, settings: { http: { host: "::1", port: 80 } } })).toMatchObject({ http: { host: "::1", port: 80 } });
    expect(plan([withHttp], { ...MACHINE, settings: { http: { host: "127.0.0.1", port: 9 } } })).toMatchObject({ http: { host: "127.0.0.1", port: 9 } });
    expect(plan([withHttp], { ...MACHINE, settings: { http: null } })).toEqual({ grace: 5, logFormat: "prefix", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null });
  });

  test("[settings] http: a bad value at its line, and a second file setting it", () => {
    expect(plan([toml('[settings]\n\nhttp = "db.internal:9100"\n[services.a]\ncommand = "x"\n')])).toEqual([
      `app.toml:3: settings.http: "db.internal:9100": "db.internal" is a host name: give an IP address (pidone resolves no names once services run), e.g. "0.0.0.0:9100" (every IPv4 address), "127.0.0.1:9100", "[::]:9100"`,
    ]);
    expect(plan([toml('[settings]\nhttp = 9100\n[services.a]\ncommand = "x"\n')])).toEqual([
      `app.toml:2: settings.http: expected "ADDR:PORT" (e.g. "0.0.0.0:9100"), got the integer 9100`,
    ]);
    expect(plan([withHttp, toml('[settings]\nhttp = "127.0.0.1:1"\n[services.b]\ncommand = "x"\n', "two.toml")])).toEqual(["two.toml:2: settings.http: already set at app.toml:2"]);
    expect(plan([toml('[settings]\nhtpp = "0.0.0.0:1"\n[services.a]\ncommand = "x"\n')])).toEqual([
      'app.toml:2: settings.htpp: unknown key "htpp" (did you mean "http"?)',
    ]);
  });

  test("pidone --check reports a bad address with its line", async () => {
    const file = join(tempDir("pidone-http-"), "bad.toml");
    await Bun.write(file, '[settings]\nhttp = "0.0.0.0:99999"\n[services.a]\ncommand = ["/bin/true"]\n');
    const r = await run([PIDONE, "--check", "-c", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${file}:2: settings.http: "0.0.0.0:99999": the port must be a number from 1 to 65535, got "99999"\n`);
  });
});

// ---------------------------------------------------------------- the protocol

const enc = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

interface Reply {
  code: number;
  reason: string;
  headers: Record<string, string>;
  body: string;
}

function parseReply(bytes: Uint8Array | Buffer): Reply {
  const text = Buffer.from(bytes).toString("utf8");
  const split = text.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = text.slice(0, split).split("\r\n");
  const m = /^HTTP\/1\.1 (\d{3}) (.+)$/.exec(statusLine!);
  if (!m) throw new Error(`not a status line: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
  return { code: Number(m[1]), reason: m[2]!, headers, body: text.slice(split + 4) };
}

function ask(request: string, status: Status = HEALTHY): Reply {
  const out = handle(enc(request), false, () => status);
  if (out === null) throw new Error(`incomplete: ${JSON.stringify(request)}`);
  return parseReply(out);
}
const get = (path: string, status?: Status) => ask(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, status);

describe("requests", () => {
  test("waits for the blank line that ends the headers, HTTP/1.0 and 1.1, CRLF or LF", () => {
    expect(parseRequest(enc("GET /healthz HTTP/1.1\r\nHost: x\r\n"))).toEqual({ kind: "incomplete" });
    expect(parseRequest(enc("GET /healthz HTT"))).toEqual({ kind: "incomplete" });
    expect(parseRequest(enc(""))).toEqual({ kind: "incomplete" });
    expect(parseRequest(enc("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))).toEqual({ kind: "request", method: "GET", path: "/healthz" });
    expect(parseRequest(enc("GET /readyz HTTP/1.0\r\n\r\n"))).toEqual({ kind: "request", method: "GET", path: "/readyz" });
    expect(parseRequest(enc("GET /status HTTP/1.0\n\n"))).toEqual({ kind: "request", method: "GET", path: "/status" });
    expect(parseRequest(enc("\r\nGET /metrics?name[]=x HTTP/1.1\r\n\r\n"))).toEqual({ kind: "request", method: "GET", path: "/metrics" });
    expect(parseRequest(enc("GET http://10.0.0.1:9100/metrics HTTP/1.1\r\n\r\n"))).toEqual({ kind: "request", method: "GET", path: "/metrics" });
  });

  test("a malformed request line is a 400 as soon as the line is whole; a bad version 505", () => {
    for (const line of ["GET /healthz", "GET  /healthz HTTP/1.1", "GET /a b HTTP/1.1", "G@T /healthz HTTP/1.1", "GET healthz HTTP/1.1", "GET /healthz HTTP/1.1 x", "GET /healthz http/1.1", "\u0000"]) {
      expect(parseRequest(enc(`${line}\r\n`))).toMatchObject({ kind: "bad", code: 400 });
    }
    expect(parseRequest(enc("GET /healthz HTTP/2.0\r\n"))).toEqual({ kind: "bad", code: 505, why: "HTTP/2.0 is not supported" });
    expect(ask("GET /\r\n").code).toBe(400);
  });

  test("request line and headers are bounded: 414, 431; a client that stops early: 400", () => {
    expect(parseRequest(enc(`GET /${"a".repeat(REQUEST_MAX)}`))).toMatchObject({ kind: "bad", code: 414 });
    expect(parseRequest(enc(`GET /healthz HTTP/1.1\r\nX: ${"a".repeat(REQUEST_MAX)}`))).toMatchObject({ kind: "bad", code: 431 });
    // Exactly at the bound is still a request.
    const head = "GET /healthz HTTP/1.1\r\nX: ";
    const full = `${head}${"a".repeat(REQUEST_MAX - head.length - 4)}\r\n\r\n`;
    expect(full.length).toBe(REQUEST_MAX);
    expect(parseRequest(enc(full))).toMatchObject({ kind: "request" });
    expect(parseRequest(enc("GET /healthz HTTP/1.1\r\n"), true)).toEqual({ kind: "bad", code: 400, why: "incomplete request" });
    expect(ask(`GET /healthz HTTP/1.1\r\nX: ${"a".repeat(REQUEST_MAX)}`)).toMatchObject({ code: 431, reason: "Request Header Fields Too Large" });
  });
});

describe("answers", () => {
  test("every answer is whole: status line, Content-Type, Content-Length, Connection: close", () => {
    for (const path of ["/healthz", "/readyz", "/status", "/metrics", "/nope"]) {
      const r = get(path);
      expect(r.headers.connection).toBe("close");
      expect(Number(r.headers["content-length"])).toBe(Buffer.byteLength(r.body));
      expect(r.headers["content-type"]).toBeTruthy();
      expect(new Date(r.headers.date!).getTime()).toBeGreaterThan(0);
    }
  });

  test("/healthz and /readyz: 200 ok, or 503 with the reasons of --ctl health, one a line", () => {
    expect(get("/healthz")).toMatchObject({ code: 200, body: "ok\n", headers: { "content-type": "text/plain; charset=utf-8" } });
    expect(get("/readyz")).toMatchObject({ code: 200, body: "ok\n" });
    expect(get("/healthz", SICK)).toMatchObject({
      code: 503,
      reason: "Service Unavailable",
      body: "db: failed (signal SIGKILL)\napp: starting\ncache: unhealthy (connection refused)\n",
    });
    expect(get("/readyz", SICK)).toMatchObject({ code: 503, body: "db: not ready (failed (signal SIGKILL))\napp: not ready (starting)\n" });
    const stopping = statusOf(HEALTHY.services, "stopping");
    expect(get("/readyz", stopping)).toMatchObject({ code: 503, body: "pidone is stopping\n" });
    expect(get("/healthz", stopping)).toMatchObject({ code: 503, body: "pidone is stopping\n" });
  });

  test("/status: the status object as JSON", () => {
    const r = get("/status", SICK);
    expect(r.code).toBe(200);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(r.body)).toEqual(SICK);
  });

  test("/metrics: the exposition with its content type", () => {
    const r = get("/metrics", SICK);
    expect(r.code).toBe(200);
    expect(r.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(r.body).toBe(formatMetrics(SICK));
  });

  test("HEAD: the headers of GET, no body", () => {
    const out = Buffer.from(handle(enc("HEAD /status HTTP/1.1\r\n\r\n"), false, () => HEALTHY)!).toString();
    expect(out.endsWith("\r\n\r\n")).toBe(true);
    expect(Number(/Content-Length: (\d+)/.exec(out)![1])).toBe(Buffer.byteLength(get("/status").body));
  });

  test("nothing can be changed: 405 for other methods on the paths, 404 for other paths", () => {
    for (const m of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      expect(ask(`${m} /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n`)).toMatchObject({ code: 405, headers: { allow: "GET, HEAD" } });
    }
    for (const p of ["/", "/healthz/", "/metrics/x", "/HEALTHZ", "/%68ealthz", "*"]) expect(get(p).code).toBe(404);
    expect(ask("POST /restart HTTP/1.1\r\n\r\n").code).toBe(404);
  });

  test("the status is read only when a path needs it, and a failure to read it is a 500", () => {
    let reads = 0;
    const source = () => {
      reads++;
      return HEALTHY;
    };
    handle(enc("GET /nope HTTP/1.1\r\n\r\n"), false, source);
    handle(enc("POST /status HTTP/1.1\r\n\r\n"), false, source);
    handle(enc("GET\r\n\r\n"), false, source);
    expect(reads).toBe(0);
    const broken = parseReply(handle(enc("GET /status HTTP/1.1\r\n\r\n"), false, () => {
      throw new Error("no state");
    })!);
    expect(broken).toMatchObject({ code: 500, body: "cannot read the status: no state\n" });
  });
});

// ---------------------------------------------------------------- the exposition

describe("the Prometheus exposition", () => {
  test("a real parser reads every family, type, label and value", async () => {
    const families = await prometheusParse(formatMetrics(SICK));
    const byName = new Map(families.map((f) => [f.name, f]));
    const values = (name: string) => Object.fromEntries(byName.get(name)!.samples.map(([, l, v]) => [l.service, v]));
    expect(families.map((f) => [f.name, f.type])).toEqual([
      ["pidone_service_up", "gauge"],
      ["pidone_service_ready", "gauge"],
      ["pidone_service_healthy", "gauge"],
      ["pidone_service_restarts", "counter"],
      ["pidone_service_last_exit_code", "gauge"],
      ["pidone_service_start_time_seconds", "gauge"],
      ["pidone_reaped", "counter"],
      ["pidone_signals_forwarded", "counter"],
    ]);
    expect(values("pidone_service_up")).toEqual({ db: 0, app: 1, cache: 1 });
    expect(values("pidone_service_ready")).toEqual({ db: 0, app: 0, cache: 1 });
    expect(values("pidone_service_healthy")).toEqual({ db: 1, app: 1, cache: 0 });
    expect(values("pidone_service_restarts")).toEqual({ db: 5, app: 0, cache: 0 });
    expect(byName.get("pidone_service_restarts")!.samples[0]![0]).toBe("pidone_service_restarts_total");
    expect(values("pidone_service_last_exit_code")).toEqual({ db: 137, app: "NaN", cache: "NaN" });
    expect(values("pidone_service_start_time_seconds")).toEqual({ db: "NaN", app: 1796630400.5, cache: 1796630400.5 });
    expect(byName.get("pidone_reaped")!.samples).toEqual([["pidone_reaped_total", {}, 7]]);
    expect(byName.get("pidone_signals_forwarded")!.samples).toEqual([["pidone_signals_forwarded_total", {}, 3]]);
    for (const f of families) expect(f.help.length).toBeGreaterThan(10);
  });

  test("label values are escaped: backslash, double quote, line feed", async () => {
    const odd = 'a"b\\c\nd';
    expect(escapeLabelValue(odd)).toBe('a\\"b\\\\c\\nd');
    const families = await prometheusParse(formatMetrics(statusOf([service(odd), service("plain")])));
    expect(families[0]!.samples.map(([, l]) => l.service)).toEqual([odd, "plain"]);
  });

  test("no services: the families are still there, with pidone's counters", async () => {
    const families = await prometheusParse(formatMetrics(statusOf([])));
    expect(families.length).toBe(8);
    expect(families.filter((f) => f.samples.length > 0).map((f) => f.name)).toEqual(["pidone_reaped", "pidone_signals_forwarded"]);
    expect(METRICS_CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });
});

// ---------------------------------------------------------------- serveHttp for real

const servers: HttpServer[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

function serve(status: () => Status, options: Parameters<typeof serveHttp>[2] = {}): HttpServer {
  const r = serveHttp({ host: "127.0.0.1", port: 0 }, status, options);
  if (!r.ok) throw new Error(r.message);
  servers.push(r.server);
  return r.server;
}

/** One raw exchange: what the server sent, and whether it closed the connection. */
function exchange(port: number, send: string | null, timeoutMs = 10_000): Promise<{ data: Buffer; closed: boolean; ms: number; error?: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks: Buffer[] = [];
    const sock: Socket = connect(port, "127.0.0.1");
    const done = (closed: boolean, error?: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), closed, ms: Date.now() - t0, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on("connect", () => {
      if (send !== null) sock.write(send);
    });
    sock.on("data", (d) => chunks.push(Buffer.from(d)));
    sock.on("end", () => done(true));
    sock.on("close", () => done(true));
    sock.on("error", (e: NodeJS.ErrnoException) => done(true, e.code ?? e.message));
  });
}

describe("serveHttp on 127.0.0.1", () => {
  test("100 clients at once are all answered", async () => {
    let reads = 0;
    const server = serve(() => {
      reads++;
      return HEALTHY;
    });
    const paths = ["/healthz", "/readyz", "/status", "/metrics"];
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => exchange(server.port, `GET ${paths[i % 4]} HTTP/1.0\r\n\r\n`)));
    for (const r of replies) {
      expect(r.closed).toBe(true);
      expect(parseReply(r.data).code).toBe(200);
    }
    expect(reads).toBe(100);
    await waitFor(() => server.connections === 0, 5000, "every connection closed");
    // fetch too, as an orchestrator's client would
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.headers.get("content-type")).toBe(METRICS_CONTENT_TYPE);
    expect(await res.text()).toBe(formatMetrics(HEALTHY));
  });

  test("a client that sends nothing, or too little, is dropped at the deadline", async () => {
    const server = serve(() => HEALTHY, { deadlineMs: 500 });
    const [silent, slow] = await Promise.all([exchange(server.port, null), exchange(server.port, "GET /healthz HTTP/1.1\r\nHost:")]);
    for (const r of [silent, slow]) {
      expect(r).toMatchObject({ closed: true });
      expect(r.data.length).toBe(0);
      expect(r.ms).toBeGreaterThanOrEqual(400);
      expect(r.ms).toBeLessThan(8000);
    }
    await waitFor(() => server.connections === 0, 5000, "the connections closed");
  });

  test("an oversized request gets 431 and the connection closes; a malformed one 400", async () => {
    const server = serve(() => HEALTHY);
    const big = await exchange(server.port, `GET /healthz HTTP/1.1\r\nX: ${"a".repeat(64 * 1024)}\r\n\r\n`);
    expect(big.closed).toBe(true);
    expect(parseReply(big.data).code).toBe(431);
    const bad = await exchange(server.port, "HELLO\r\n");
    expect(parseReply(bad.data).code).toBe(400);
    const post = await exchange(server.port, "POST /status HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    expect(parseReply(post.data).code).toBe(405);
  });

  test("past the cap, a new connection is closed at once, and later ones are served again", async () => {
    const server = serve(() => HEALTHY, { maxConnections: 3, deadlineMs: 3000 });
    const silent = [0, 1, 2].map(() => exchange(server.port, null));
    await waitFor(() => server.connections === 3, 5000, "three connections");
    const refused = await exchange(server.port, "GET /healthz HTTP/1.0\r\n\r\n");
    expect(refused.closed).toBe(true);
    expect(refused.ms).toBeLessThan(2000);
    expect(refused.data.length).toBe(0);
    await Promise.all(silent);
    await waitFor(() => server.connections === 0, 5000, "the silent ones dropped");
    expect(parseReply((await exchange(server.port, "GET /healthz HTTP/1.0\r\n\r\n")).data).code).toBe(200);
  });

  test("an answer larger than the socket's buffer is written whole", async () => {
    const many = statusOf(Array.from({ length: 2000 }, (_, i) => service(`svc-${i}`, { status_text: "x".repeat(1000) })));
    const server = serve(() => many);
    const r = await exchange(server.port, "GET /status HTTP/1.0\r\n\r\n");
    const reply = parseReply(r.data);
    expect(Number(reply.headers["content-length"])).toBeGreaterThan(2_000_000);
    expect(JSON.parse(reply.body)).toEqual(many);
  });

  test("a port in use is one clear line", () => {
    const first = serve(() => HEALTHY);
    const r = serveHttp({ host: "127.0.0.1", port: first.port }, () => HEALTHY);
    expect(r).toEqual({ ok: false, message: `cannot listen for HTTP on 127.0.0.1:${first.port}: the address is in use (EADDRINUSE)` });
    const v6 = serveHttp({ host: "::1", port: 0 }, () => HEALTHY);
    if (v6.ok) {
      expect(v6.server.address).toBe(`[::1]:${v6.server.port}`);
      v6.server.close();
    }
  });
});

// ---------------------------------------------------------------- in a process of its own

const FIXTURE = join(ROOT, "test/fixtures/http-serve.ts");

/** The runtime settings the single file's stub gives pidone (src/native/stub.c, runtime_settings). */
function runtimeSettings(): Record<string, string> {
  const stub = readFileSync(join(ROOT, "src/native/stub.c"), "latin1");
  const block = /runtime_settings\[\] =([\s\S]*?);/.exec(stub)![1]!;
  const env: Record<string, string> = {};
  for (const m of block.matchAll(/"([A-Z_a-z]+)=([^"\\]*)\\0"/g)) env[m[1]!] = m[2]!;
  if (!("MIMALLOC_SCAVENGER" in env)) throw new Error("stub.c's runtime_settings not found");
  return env;
}

describe("serveHttp in a process of its own", () => {
  test("with the listener open and no client: no wake-up (before and after a client came and went)", async () => {
    const p = start([process.execPath, FIXTURE, "idle"], { env: runtimeSettings() });
    try {
      await p.waitStdout(/port \d+\n/);
      const port = Number(/port (\d+)/.exec(p.stdout())![1]);
      const idle = async () => {
        // The start's, or the last answer's, own last steps: until a second passes without any.
        await waitFor(async () => {
          const c = contextSwitches(p.proc.pid);
          await Bun.sleep(1000);
          return contextSwitches(p.proc.pid) === c;
        }, 15_000, "a quiet second");
        const before = contextSwitches(p.proc.pid);
        await Bun.sleep(3000);
        return contextSwitches(p.proc.pid) - before;
      };
      expect(await idle()).toBe(0);
      expect(parseReply((await exchange(port, "GET /healthz HTTP/1.0\r\n\r\n")).data).code).toBe(200);
      expect(await idle()).toBe(0);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 60_000);

  test("short of descriptors it stops listening, and listens again when a connection closes", async () => {
    const p = start(["bash", "-c", 'ulimit -n 64 && exec "$@"', "bash", process.execPath, FIXTURE, "short"]);
    try {
      await p.waitStdout(/port \d+\n/);
      const port = Number(/port (\d+)/.exec(p.stdout())![1]);
      // The first connection takes a descriptor the reserve needs: the listener closes
      // (a connection then would wait on a listener that can only spin).
      const first = connect(port, "127.0.0.1");
      await p.waitStdout(`not listening while fewer than ${LISTEN_RESERVE} descriptors are free`);
      const refused = await exchange(port, "GET /healthz HTTP/1.0\r\n\r\n");
      expect(refused.error).toBe("ECONNREFUSED");
      first.destroy();
      await p.waitStdout("listening again");
      expect(parseReply((await exchange(port, "GET /healthz HTTP/1.0\r\n\r\n")).data).code).toBe(200);
    } finally {
      p.proc.kill("SIGKILL");
    }
  }, 30_000);
});
