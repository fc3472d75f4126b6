// The `health` key (liveness checks): parsing, defaults and every problem with its line.
import { describe, expect, test } from "bun:test";
import { planFromSources, type PlanOptions } from "../src/config/plan.ts";
import { DEFAULTS, type HealthSpec, type ServiceSpec } from "../src/config/types.ts";

const MACHINE: PlanOptions = { env: { PATH: "/usr/bin:/bin" }, cwd: "/", euid: 0, probe: () => "executable" };

function problems(text: string, options: PlanOptions = MACHINE): string[] {
  const r = planFromSources([{ kind: "toml", file: "app.toml", text }], options);
  return r.ok ? [] : r.diagnostics;
}

function one(body: string, options: PlanOptions = MACHINE): ServiceSpec {
  const r = planFromSources([{ kind: "toml", file: "app.toml", text: `[services.s]\ncommand = "x"\n${body}` }], options);
  if (!r.ok) throw new Error(r.diagnostics.join("\n"));
  return r.plan.services[0]!;
}

/** The problems of one [services.s] table whose `health` starts on line 3. */
const bad = (body: string) => problems(`[services.s]\ncommand = "x"\n${body}`);

describe("health: parsing", () => {
  test("no health key: none, and no timer", () => {
    expect(one("").health).toBeNull();
  });

  test("each kind, with Docker's defaults", () => {
    const defaults = { interval: 30, timeout: 5, retries: 3, startPeriod: 0 };
    expect([DEFAULTS.healthInterval, DEFAULTS.healthTimeout, DEFAULTS.healthRetries, DEFAULTS.healthStartPeriod]).toEqual([30, 5, 3, 0]);
    expect(one('health = { http = "http://127.0.0.1:8080/live" }').health).toEqual({
      probe: { kind: "http", url: "http://127.0.0.1:8080/live" },
      ...defaults,
    });
    expect(one("health = { tcp = 5432 }").health).toEqual({ probe: { kind: "tcp", host: DEFAULTS.readyHost, port: 5432 }, ...defaults });
    expect(one('health = { tcp = "[::1]:80" }').health!.probe).toEqual({ kind: "tcp", host: "::1", port: 80 });
    expect(one('health = { exec = "pg_isready -q" }').health).toEqual({
      probe: { kind: "exec", argv: ["pg_isready", "-q"], executable: "/usr/bin/pg_isready" },
      ...defaults,
    });
  });

  test("inline or as a [services.NAME.health] table, every key", () => {
    const inline = one('health = { exec = ["/bin/check"], interval = 10, timeout = 0.5, retries = 1, start_period = 60 }').health;
    const table = one('[services.s.health]\nexec = ["/bin/check"]\ninterval = 10\ntimeout = 0.5\nretries = 1\nstart_period = 60').health;
    const expected: HealthSpec = { probe: { kind: "exec", argv: ["/bin/check"], executable: "/bin/check" }, interval: 10, timeout: 0.5, retries: 1, startPeriod: 60 };
    expect(inline).toEqual(expected);
    expect(table).toEqual(expected);
  });

  test("an exec check's program is looked up as the command's is", () => {
    const r = planFromSources([{ kind: "toml", file: "app.toml", text: '[services.s]\ncommand = "x"\nhealth = { exec = ["nope"] }' }], {
      ...MACHINE,
      probe: (p) => (p === "/usr/bin/x" ? "executable" : "missing"),
    });
    expect(r.ok ? [] : r.diagnostics).toEqual(['app.toml:3: services.s.health.exec: program "nope" not found in PATH (/usr/bin:/bin)']);
  });
});

describe("health: every problem, each on its own line", () => {
  test("kinds and values", () => {
    const kinds = "{ tcp = … }, { http = … }, { exec = … }";
    const cases: [string, string[]][] = [
      ["health = {}", [`app.toml:3: services.s.health: expected one of tcp, http, exec: ${kinds}`]],
      ["health = 8080", [`app.toml:3: services.s.health: expected one of ${kinds}, got the integer 8080`]],
      ['health = "http://x/"', [`app.toml:3: services.s.health: expected one of ${kinds}, got the string "http://x/"`]],
      ["health = { interval = 5 }", [`app.toml:3: services.s.health: expected one of tcp, http, exec: ${kinds}`]],
      ['health = { tcp = 80, http = "http://x/" }', ["app.toml:3: services.s.health: takes exactly one of tcp, http, exec; got tcp and http"]],
      [
        'health = { file = "/run/ok" }',
        ["app.toml:3: services.s.health.file: a liveness check is tcp, http or exec (a file that exists says nothing about a process that hangs)"],
      ],
      ["health = { tpc = 80 }", ['app.toml:3: services.s.health.tpc: unknown key "tpc" (did you mean "tcp"?)', `app.toml:3: services.s.health: expected one of tcp, http, exec: ${kinds}`]],
      ['health = { test = ["check"] }', ['app.toml:3: services.s.health.test: unknown key "test" (did you mean "exec"?)', `app.toml:3: services.s.health: expected one of tcp, http, exec: ${kinds}`]],
      ["health = { tcp = 70000 }", ["app.toml:3: services.s.health.tcp: expected a port from 1 to 65535, got the integer 70000"]],
      ['health = { http = "ftp://x/" }', ['app.toml:3: services.s.health.http: expected an http:// or https:// URL, got "ftp://x/"']],
      ["health = { exec = [] }", ["app.toml:3: services.s.health.exec: the command is empty"]],
      ["health = { tcp = 80, interval = 0 }", ["app.toml:3: services.s.health.interval: must be greater than 0 seconds, got 0"]],
      ['health = { tcp = 80, timeout = "5s" }', ['app.toml:3: services.s.health.timeout: expected a number of seconds, got the string "5s"']],
      ["health = { tcp = 80, retries = 0 }", ["app.toml:3: services.s.health.retries: must be 1 or more: the failures in a row that make the service unhealthy"]],
      ["health = { tcp = 80, retries = 1.5 }", ["app.toml:3: services.s.health.retries: expected an integer 0 or more, got the float 1.5"]],
      ["health = { tcp = 80, start_period = -1 }", ["app.toml:3: services.s.health.start_period: must be 0 or more seconds, got -1"]],
      ["health = { tcp = 80, startperiod = 1 }", ['app.toml:3: services.s.health.startperiod: unknown key "startperiod" (did you mean "start_period"?)']],
    ];
    for (const [body, messages] of cases) expect(bad(body)).toEqual(messages);
  });

  test("each key of a [services.NAME.health] table on its own line", () => {
    expect(bad('[services.s.health]\nhttp = "http://127.0.0.1/"\ninterval = -1\n\ntimeout = 0\nretries = 0')).toEqual([
      "app.toml:5: services.s.health.interval: must be greater than 0 seconds, got -1",
      "app.toml:7: services.s.health.timeout: must be greater than 0 seconds, got 0",
      "app.toml:8: services.s.health.retries: must be 1 or more: the failures in a row that make the service unhealthy",
    ]);
  });

  test("Docker's and Kubernetes' words lead to health", () => {
    expect(bad("healthcheck = { tcp = 80 }")).toEqual(['app.toml:3: services.s.healthcheck: unknown key "healthcheck" (did you mean "health"?)']);
    expect(bad("liveness = { tcp = 80 }")).toEqual(['app.toml:3: services.s.liveness: unknown key "liveness" (did you mean "health"?)']);
  });

  test("a oneshot takes no liveness check", () => {
    expect(bad("oneshot = true\nhealth = { tcp = 80 }")).toEqual(["app.toml:4: services.s.health: a oneshot runs to its end: it takes no liveness check"]);
  });
});
