import { describe, expect, test } from "bun:test";
import { readAccounts } from "../src/config/accounts.ts";
import { planFromSources, type PlanOptions } from "../src/config/plan.ts";
import { Diagnostics } from "../src/config/diagnostics.ts";
import { KeyLines, scanKeyLines } from "../src/config/toml-lines.ts";
import { parseToml, readTomlConfig } from "../src/config/toml.ts";
import { DEFAULTS, type ServiceSpec } from "../src/config/types.ts";

const FIXTURE_ROOT = new URL("fixtures/config-root", import.meta.url).pathname;

/** A machine where every program exists, pidone is root, and users come from the fixture. */
const MACHINE: PlanOptions = {
  env: { PATH: "/usr/bin:/bin" },
  cwd: "/",
  euid: 0,
  probe: () => "executable",
  accounts: readAccounts(FIXTURE_ROOT),
};

function problems(text: string, options: PlanOptions = MACHINE): string[] {
  const r = planFromSources([{ kind: "toml", file: "app.toml", text }], options);
  return r.ok ? [] : r.diagnostics;
}

function services(text: string, options: PlanOptions = MACHINE): ServiceSpec[] {
  const r = planFromSources([{ kind: "toml", file: "app.toml", text }], options);
  if (!r.ok) throw new Error(r.diagnostics.join("\n"));
  return r.plan.services;
}

const one = (body: string) => services(`[services.s]\n${body}`)[0]!;
/** The problems of one [services.s] table whose body starts on line 2. */
const bad = (body: string) => problems(`[services.s]\n${body}`);

describe("line scanner", () => {
  test("finds headers, keys, dotted keys, inline tables, array elements and arrays of tables", () => {
    const text = [
      "# head", //                                   1
      "top = 1", //                                  2
      "[services.web]   # comment [x]", //           3
      'command = """', //                            4
      "[not.a.table]", //                            5
      'x = "y" \\"""', //                            6
      '"""', //                                      7
      "ready = {", //                                8
      "  tcp = 80,   # comment", //                  9
      "  }", //                                     10
      "after = [", //                               11
      '  "a",   # c', //                            12
      "  'b',", //                                  13
      "]", //                                       14
      '"quoted key".sub = \'v\'', //                15
      '[services . "my db" ]', //                   16
      'env.PATH = "/x" # = trap', //                17
      "dt = 1979-05-27 07:32:00", //                18
      "[[arr]]", //                                 19
      "x = 1", //                                   20
      "[[arr]]", //                                 21
      "[[arr.nested]]", //                          22
      "z = 3", //                                   23
    ].join("\n");
    expect(() => Bun.TOML.parse(text)).not.toThrow();
    const lines = scanKeyLines(text);
    const at = (...path: (string | number)[]) => lines.exact(path);
    expect(at("top")).toBe(2);
    expect(at("services")).toBe(3);
    expect(at("services", "web")).toBe(3);
    expect(at("services", "web", "command")).toBe(4);
    expect(at("not")).toBeUndefined();
    expect(at("x")).toBeUndefined();
    expect(at("services", "web", "ready")).toBe(8);
    expect(at("services", "web", "ready", "tcp")).toBe(9);
    expect(at("services", "web", "after")).toBe(11);
    expect(at("services", "web", "after", 0)).toBe(12);
    expect(at("services", "web", "after", 1)).toBe(13);
    expect(at("services", "web", "quoted key", "sub")).toBe(15);
    expect(at("services", "my db")).toBe(16);
    expect(at("services", "my db", "env")).toBe(17);
    expect(at("services", "my db", "env", "PATH")).toBe(17);
    expect(at("services", "my db", "dt")).toBe(18);
    expect(at("arr", 0)).toBe(19);
    expect(at("arr", 0, "x")).toBe(20);
    expect(at("arr", 1)).toBe(21);
    expect(at("arr", 1, "nested", 0)).toBe(22);
    expect(at("arr", 1, "nested", 0, "z")).toBe(23);
    // A key never written falls back to its table.
    expect(lines.nearest(["services", "web", "restart"])).toBe(3);
    expect(lines.nearest(["nothing"])).toBeUndefined();
  });

  test("a table implied by a dotted key keeps the line where it first appears", () => {
    const lines = scanKeyLines('[services.a.env]\nK = "1"\n[services.a]\ncommand = "x"\n');
    expect(lines.exact(["services", "a"])).toBe(1);
    expect(lines.exact(["services", "a", "command"])).toBe(4);
  });

  test("quoted keys with escapes match Bun's keys", () => {
    const text = '[services."caf\\u00e9"]\n"a\\"b" = 1\n';
    expect(Object.keys((Bun.TOML.parse(text) as { services: object }).services)).toEqual(["café"]);
    expect(scanKeyLines(text).exact(["services", "café", 'a"b'])).toBe(2);
  });
});

describe("line scanner on deep input (fuzzer)", () => {
  test("nesting thousands deep and dotted keys of thousands of parts take linear time", () => {
    const depth = 20_000;
    const text = [
      "[services.a]",
      `after = ${"[".repeat(depth)}${"]".repeat(depth)}`,
      `env = ${"{a=".repeat(depth)}1${"}".repeat(depth)}`,
      `${Array(depth).fill("k").join(".")} = 1`,
    ].join("\n");
    const started = performance.now();
    const lines = scanKeyLines(text);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(lines.exact(["services", "a", "after", 0, 0])).toBe(2);
    expect(lines.exact(["services", "a", "env", "a", "a"])).toBe(3);
    expect(lines.exact(["services", "a", "k", "k"])).toBe(4);
    expect(lines.nearest(["services", "a", "env", ...Array(100).fill("a")])).toBe(3);
  });
});

describe("TOML syntax errors", () => {
  const cases: [string, string, number][] = [
    ["a = 1\nb = 2\nb = 3\n", "Cannot redefine key 'b'", 3],
    ["a = 1\n[x]\ny = 1\n[x]\n", "Cannot redefine table 'x'", 4],
    ['a = "x\nb = 1\n', "Unterminated string; newlines must be escaped in basic strings", 1],
    ["a = 1\nb = [\n 1,\n 2\n]\nc = 2\nd = [ 1,\n", "Unterminated array; expected ']'", 7],
    ["a = [\n1,\n2 3,\n]\n", "Expected ',' or ']' in an array but found '3'", 3],
    ['a = 1\nb = """\nxx\n', "Unterminated string", 2],
    ["x = 1\ny = {a = 1\n", "Expected ',' or '}' in an inline table but found end of file", 2],
    ['a = 1\n\n\nb = "\\q"\nc = 1\n', "Invalid escape sequence: 'q'", 4],
  ];
  test.each(cases)("%j: %s on line %d", (text, message, line) => {
    expect(parseToml(text)).toEqual({ ok: false, message, line });
  });

  test("a long file whose error opens on line 1 is reported at once, without its line", () => {
    // 999 lines of 10,000 characters after `x = [`: searching the line took seconds (fuzzer).
    const text = ["x = [", ...Array.from({ length: 999 }, () => `"${"a".repeat(10_000)}",`)].join("\n");
    const started = performance.now();
    expect(parseToml(text)).toEqual({ ok: false, message: "Unterminated array; expected ']'" });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("a file of more keys and tables than a services file needs is refused unparsed (fuzzer)", () => {
    // Bun.TOML.parse is quadratic in the keys of a table: a file of this many took minutes.
    const started = performance.now();
    expect(problems(Array.from({ length: 400_000 }, (_, i) => `k${i} = 1`).join("\n"))).toEqual([
      'app.toml: more than 10000 keys and tables ("=" and "["): too big for a services file',
    ]);
    expect(performance.now() - started).toBeLessThan(2000);
    const big = Array.from({ length: 2000 }, (_, i) => `[services.s${i}]\ncommand = ["true"]`).join("\n");
    expect(problems(big)).toEqual([]);
  });

  test("are reported as FILE:LINE: TOML syntax error", () => {
    expect(problems('[services.web]\ncommand = "x"\n[services.web]\n')).toEqual([
      "app.toml:3: TOML syntax error: Cannot redefine table 'web'",
    ]);
    expect(problems("[services.web]\ncommand = yes\n")).toEqual([
      'app.toml:2: TOML syntax error: Strings must be quoted: "yes"',
    ]);
  });
});

describe("defaults", () => {
  test("a service with only a command gets every default", () => {
    expect(one('command = ["/bin/app"]')).toEqual({
      name: "s",
      origin: "app.toml:1",
      argv: ["/bin/app"],
      shell: false,
      executable: "/bin/app",
      env: {},
      envFiles: [],
      cwd: null,
      user: null,
      restart: "never",
      restartDelay: 1,
      restartDelayMax: 30,
      maxRestarts: 5,
      restartWindow: 60,
      critical: true,
      oneshot: false,
      after: [],
      ready: null,
      readyTimeout: 30,
      health: null,
      stopSignal: 15,
      stopTimeout: 10,
      signals: "all",
      pidfile: null,
      watchdog: null,
    });
    expect(DEFAULTS.critical).toBe(true);
  });

  test("settings default to grace 5 and prefix logs", () => {
    const r = planFromSources([{ kind: "toml", file: "a.toml", text: '[services.s]\ncommand = "x"\n' }], MACHINE);
    expect(r.ok && r.plan.settings).toEqual({ grace: 5, logFormat: "prefix", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null });
  });

  test("every key read", () => {
    const s = one(
      [
        'command = "/bin/app --flag \'a b\'"',
        'env = { A = "1", PATH = "/opt/bin" }',
        'cwd = "/srv"',
        'user = "admin"',
        'restart = "always"',
        "max_restarts = 0",
        "restart_window = 2.5",
        "critical = false",
        'ready = { http = "http://127.0.0.1:8080/health" }',
        "ready_timeout = 0.5",
        'stop_signal = "sigquit"',
        "stop_timeout = 0",
        'signals = ["HUP", "SIGUSR1", 12, "RTMIN+2", "HUP"]',
        'pidfile = "/run/app.pid"',
      ].join("\n"),
    );
    expect(s).toMatchObject({
      argv: ["/bin/app", "--flag", "a b"],
      env: { A: "1", PATH: "/opt/bin" },
      cwd: "/srv",
      user: { uid: 1000, gid: 1000, groups: [1000, 4, 50, 999], name: "admin", home: "/home/admin" },
      restart: "always",
      maxRestarts: 0,
      restartWindow: 2.5,
      critical: false,
      ready: { kind: "http", url: "http://127.0.0.1:8080/health" },
      readyTimeout: 0.5,
      stopSignal: 3,
      stopTimeout: 0,
      signals: [1, 10, 12, 36],
      pidfile: "/run/app.pid",
    });
  });

  test("restart backoff: the first and the longest delay, fractions allowed; no restart limit with inf", () => {
    expect(one('command = "x"\nrestart_delay = 0.05\nrestart_delay_max = 2.5')).toMatchObject({ restartDelay: 0.05, restartDelayMax: 2.5 });
    expect(one('command = "x"\nrestart_delay = 0\nrestart_delay_max = 0')).toMatchObject({ restartDelay: 0, restartDelayMax: 0 });
    // One delay alone moves the other's default out of its way.
    expect(one('command = "x"\nrestart_delay = 45')).toMatchObject({ restartDelay: 45, restartDelayMax: 45 });
    expect(one('command = "x"\nrestart_delay = 2')).toMatchObject({ restartDelay: 2, restartDelayMax: 30 });
    expect(one('command = "x"\nrestart_delay_max = 0.5')).toMatchObject({ restartDelay: 0.5, restartDelayMax: 0.5 });
    expect(one('command = "x"\nrestart_delay_max = 60')).toMatchObject({ restartDelay: 1, restartDelayMax: 60 });
    expect(one('command = "x"\nrestart = "always"\nmax_restarts = inf')).toMatchObject({ maxRestarts: Infinity });
  });

  test("shell = true runs the string with /bin/sh -c, untouched", () => {
    const s = one('command = "exec app --level ${LEVEL:-1} | tee /tmp/x"\nshell = true');
    expect(s.argv).toEqual(["/bin/sh", "-c", "exec app --level ${LEVEL:-1} | tee /tmp/x"]);
    expect(s.shell).toBe(true);
    expect(s.executable).toBe("/bin/sh");
  });

  test("a oneshot, and every kind of ready probe", () => {
    expect(one('command = "x"\noneshot = true\nrestart = "on-failure"')).toMatchObject({ oneshot: true, restart: "on-failure" });
    expect(one('command = "x"\nready = { tcp = 5432 }').ready).toEqual({ kind: "tcp", host: "127.0.0.1", port: 5432 });
    expect(one('command = "x"\nready = { tcp = "0.0.0.0:80" }').ready).toEqual({ kind: "tcp", host: "0.0.0.0", port: 80 });
    expect(one('command = "x"\nready = { tcp = "[::1]:8443" }').ready).toEqual({ kind: "tcp", host: "::1", port: 8443 });
    expect(one('command = "x"\nready = { file = "/run/ready" }').ready).toEqual({ kind: "file", path: "/run/ready" });
    expect(one('command = "x"\n[services.s.ready]\nexec = "pg_isready -h \'127.0.0.1\'"').ready).toEqual({
      kind: "exec",
      argv: ["pg_isready", "-h", "127.0.0.1"],
      executable: "/usr/bin/pg_isready",
    });
    expect(one('command = "x"\nready.exec = ["/bin/check"]').ready).toEqual({ kind: "exec", argv: ["/bin/check"], executable: "/bin/check" });
    expect(one('command = "x"\nready = { notify = true }\nwatchdog = 1.5')).toMatchObject({ ready: { kind: "notify" }, watchdog: 1.5 });
    expect(one('command = "x"\nready = { fd = 3 }').ready).toEqual({ kind: "fd", fd: 3 });
  });

  test("integers are accepted for user and stop_signal", () => {
    expect(one('command = "x"\nuser = 65534\nstop_signal = 10')).toMatchObject({
      user: { uid: 65534, gid: 65534, name: "nobody" },
      stopSignal: 10,
    });
  });
});

describe("every problem, each on its own line", () => {
  test("a multi-line file with many mistakes lists them all, in line order", () => {
    const text = [
      "[setings]", //                                      1
      "grace = 3", //                                      2
      "", //                                               3
      "[settings]", //                                     4
      'grace = "8s"', //                                   5
      'log_format = "jsn"', //                             6
      "", //                                               7
      "[services.web]", //                                 8
      "command = [", //                                    9
      '  "/usr/sbin/nginx",', //                          10
      "  42,", //                                         11
      "]", //                                             12
      'restrat = "always"', //                            13
      "env = { PORT = 8080, OK = \"1\" }", //             14
      'after = ["dbb", "cache"]', //                      15
      "ready = { tcp = 80, http = \"http://x/\" }", //    16
      "", //                                              17
      "[services.cache]", //                              18
      'command = "redis-server --port $PORT"', //         19
      "max_restarts = -1", //                             20
      'stop_signal = "SIGFOO"', //                        21
      'signals = ["HUP", "KILL"]', //                     22
      'cwd = "srv"', //                                   23
      "depends_on = []", //                               24
    ].join("\n");
    expect(problems(text)).toEqual([
      'app.toml:1: setings: unknown key "setings" (did you mean "settings"?)',
      "app.toml:5: settings.grace: expected a number of seconds, got the string \"8s\"",
      'app.toml:6: settings.log_format: expected one of "prefix", "json", "raw", got the string "jsn" (did you mean "json"?)',
      "app.toml:11: services.web.command[1]: expected a string, got the integer 42",
      'app.toml:13: services.web.restrat: unknown key "restrat" (did you mean "restart"?)',
      'app.toml:14: services.web.env.PORT: expected a string, got the integer 8080 (write PORT = "8080")',
      'app.toml:15: services.web.after[0]: unknown service "dbb"',
      "app.toml:16: services.web.ready: takes exactly one of tcp, http, file, exec, notify, fd; got tcp and http",
      'app.toml:19: services.cache.command: "$PORT" would be expanded by a shell at character 21 (quote it with \'…\' for a literal $, or set shell = true to run it with /bin/sh -c)',
      "app.toml:20: services.cache.max_restarts: expected an integer 0 or more, got the integer -1",
      'app.toml:21: services.cache.stop_signal: unknown signal "SIGFOO" (a name such as "TERM" or "SIGHUP", a number, or "RTMIN+n")',
      "app.toml:22: services.cache.signals[1]: SIGKILL cannot be forwarded (pidone can never receive it)",
      'app.toml:23: services.cache.cwd: must be an absolute path, got "srv"',
      'app.toml:24: services.cache.depends_on: unknown key "depends_on" (did you mean "after"?)',
    ]);
  });

  test("type errors of every key", () => {
    const text = [
      "[services.s]", //                 1
      "command = 5", //                  2
      'shell = "yes"', //                3
      'env = "A=1"', //                  4
      "cwd = 1", //                      5
      "user = true", //                  6
      "restart = true", //               7
      'max_restarts = "5"', //           8
      "restart_window = []", //          9
      'critical = "no"', //             10
      "oneshot = 1", //                 11
      'after = "db"', //                12
      "ready = 5432", //                13
      'ready_timeout = "30"', //        14
      "stop_signal = 1.5", //           15
      'stop_timeout = "10"', //         16
      'signals = "HUP"', //             17
      "pidfile = false", //             18
    ].join("\n");
    expect(problems(text)).toEqual([
      "app.toml:2: services.s.command: expected an array of strings or a string, got the integer 5",
      'app.toml:3: services.s.shell: expected true or false, got the string "yes"',
      'app.toml:4: services.s.env: expected a table of strings ({ KEY = "value" }), got the string "A=1"',
      "app.toml:5: services.s.cwd: expected an absolute path, got the integer 1",
      'app.toml:6: services.s.user: expected a user name or "uid[:gid]", got the boolean true',
      'app.toml:7: services.s.restart: expected one of "never", "on-failure", "always", got the boolean true',
      'app.toml:8: services.s.max_restarts: expected an integer 0 or more, got the string "5"',
      "app.toml:9: services.s.restart_window: expected a number of seconds, got an array",
      'app.toml:10: services.s.critical: expected true or false, got the string "no"',
      "app.toml:11: services.s.oneshot: expected true or false, got the integer 1",
      'app.toml:12: services.s.after: expected an array of service names, got the string "db" (write after = ["db"])',
      "app.toml:13: services.s.ready: expected one of { tcp = … }, { http = … }, { file = … }, { exec = … }, { notify = … }, { fd = … }, got the integer 5432",
      'app.toml:14: services.s.ready_timeout: expected a number of seconds, got the string "30"',
      "app.toml:15: services.s.stop_signal: expected a signal name or number, got the float 1.5",
      'app.toml:16: services.s.stop_timeout: expected a number of seconds, got the string "10"',
      'app.toml:17: services.s.signals: expected an array of signal names, got the string "HUP"',
      "app.toml:18: services.s.pidfile: expected an absolute path, got the boolean false",
    ]);
  });

  test("bad values", () => {
    expect(bad('command = "x"\nrestart = "sometimes"')).toEqual([
      'app.toml:3: services.s.restart: expected one of "never", "on-failure", "always", got the string "sometimes"',
    ]);
    expect(bad('command = "x"\nrestart = "on_failure"')).toEqual([
      'app.toml:3: services.s.restart: expected one of "never", "on-failure", "always", got the string "on_failure" (did you mean "on-failure"?)',
    ]);
    expect(bad('command = "x"\nmax_restarts = 1.5\nrestart_window = 0\nready_timeout = -1\nstop_timeout = -0.5')).toEqual([
      "app.toml:3: services.s.max_restarts: expected an integer 0 or more, got the float 1.5",
      "app.toml:4: services.s.restart_window: must be greater than 0 seconds, got 0",
      "app.toml:5: services.s.ready_timeout: must be greater than 0 seconds, got -1",
      "app.toml:6: services.s.stop_timeout: must be 0 or more seconds, got -0.5",
    ]);
    expect(bad('command = "x"\nstop_timeout = inf\nready_timeout = nan\nrestart_window = 3000000')).toEqual([
      "app.toml:3: services.s.stop_timeout: expected a number of seconds, got inf",
      "app.toml:4: services.s.ready_timeout: expected a number of seconds, got nan",
      "app.toml:5: services.s.restart_window: must be at most 2147483 seconds, got 3000000",
    ]);
    expect(bad('command = "x"\nrestart_delay = -1\nrestart_delay_max = "30s"\nmax_restarts = -inf')).toEqual([
      "app.toml:3: services.s.restart_delay: must be 0 or more seconds, got -1",
      'app.toml:4: services.s.restart_delay_max: expected a number of seconds, got the string "30s"',
      "app.toml:5: services.s.max_restarts: expected an integer 0 or more, got -inf",
    ]);
    expect(bad('command = "x"\nrestart_delay = 5\nrestart_delay_max = 2\nrestart_window = inf')).toEqual([
      "app.toml:4: services.s.restart_delay_max: must be at least restart_delay (5 s), got 2",
      "app.toml:5: services.s.restart_window: expected a number of seconds, got inf",
    ]);
    expect(bad('command = "x"\nrestart_delay = "5"\nrestart_delay_max = 0.5')).toEqual([
      'app.toml:3: services.s.restart_delay: expected a number of seconds, got the string "5"',
    ]);
    expect(bad('command = "x"\nstop_signal = 0\nsignals = ["CHLD", "STOP", 99, "RTMIN+31"]')).toEqual([
      'app.toml:3: services.s.stop_signal: unknown signal "0" (a name such as "TERM" or "SIGHUP", a number, or "RTMIN+n")',
      "app.toml:4: services.s.signals[0]: SIGCHLD cannot be forwarded (pidone keeps it to reap children)",
      "app.toml:4: services.s.signals[1]: SIGSTOP cannot be forwarded (pidone can never receive it)",
      'app.toml:4: services.s.signals[2]: unknown signal "99" (a name such as "TERM" or "SIGHUP", a number, or "RTMIN+n")',
      'app.toml:4: services.s.signals[3]: unknown signal "RTMIN+31" (a name such as "TERM" or "SIGHUP", a number, or "RTMIN+n")',
    ]);
    expect(bad('command = "x"\nenv = { "A=B" = "1", "" = "2", C = { D = "x" } }\npidfile = "run/x.pid"')).toEqual([
      'app.toml:3: services.s.env."A=B": "A=B" cannot be an environment variable name',
      'app.toml:3: services.s.env."": "" cannot be an environment variable name',
      "app.toml:3: services.s.env.C: expected a string, got a table",
      'app.toml:4: services.s.pidfile: must be an absolute path, got "run/x.pid"',
    ]);
    expect(bad('command = "x"\ncwd = "/srv\\u0000x"')).toEqual(["app.toml:3: services.s.cwd: must not contain a NUL character"]);
  });

  test("empty and broken commands", () => {
    expect(bad('restart = "always"')).toEqual(['app.toml:1: services.s: missing "command"']);
    expect(bad('command = ""')).toEqual(["app.toml:2: services.s.command: the command is empty"]);
    expect(bad('command = "  \\n "')).toEqual(["app.toml:2: services.s.command: the command is empty"]);
    expect(bad("command = []")).toEqual(["app.toml:2: services.s.command: the command is empty"]);
    expect(bad('command = ["", "x"]')).toEqual(["app.toml:2: services.s.command: the program name is empty"]);
    expect(bad("command = \"''\"")).toEqual(["app.toml:2: services.s.command: the program name is empty"]);
    expect(bad('command = ["a\\u0000b"]')).toEqual([
      "app.toml:2: services.s.command: an argument contains a NUL character, which no program can receive",
    ]);
    expect(bad('command = "app \'unclosed"')).toEqual(["app.toml:2: services.s.command: unterminated single quote at character 5"]);
    expect(bad('command = " "\nshell = true')).toEqual(["app.toml:2: services.s.command: the command is empty"]);
    expect(bad('command = ["a", "b"]\nshell = true')).toEqual([
      "app.toml:2: services.s.command: shell = true runs a command line: give command as one string",
    ]);
  });

  test("a command string over several lines points at the command's first line", () => {
    // In a """ string, TOML itself joins lines ending in a backslash.
    expect(one('command = """\napp \\\n  --a \\\n  --b"""').argv).toEqual(["app", "--a", "--b"]);
    // In a ''' string the backslash-newline reaches the splitter, which continues the line.
    expect(one("command = '''\napp \\\n  --a \\\n  --b'''").argv).toEqual(["app", "--a", "--b"]);
    expect(problems("[services.s]\ncommand = '''\napp --a\nother'''\n")).toEqual([
      "app.toml:2: services.s.command: a newline would end the command in a shell at character 9 (end the line with \\ to continue it, or set shell = true to run it with /bin/sh -c)",
    ]);
  });

  test("ready probes", () => {
    const cases: [string, string][] = [
      ["ready = {}", "app.toml:3: services.s.ready: expected one of { tcp = … }, { http = … }, { file = … }, { exec = … }, { notify = … }, { fd = … }"],
      ["ready = { tpc = 80 }", 'app.toml:3: services.s.ready.tpc: unknown key "tpc" (did you mean "tcp"?)'],
      ["ready = { tcp = 0 }", "app.toml:3: services.s.ready.tcp: expected a port from 1 to 65535, got the integer 0"],
      ["ready = { tcp = 70000 }", "app.toml:3: services.s.ready.tcp: expected a port from 1 to 65535, got the integer 70000"],
      ['ready = { tcp = "localhost" }', 'app.toml:3: services.s.ready.tcp: expected a port, or "HOST:PORT", got the string "localhost"'],
      ["ready = { tcp = true }", 'app.toml:3: services.s.ready.tcp: expected a port, or "HOST:PORT", got the boolean true'],
      ['ready = { http = "localhost:8080/health" }', 'app.toml:3: services.s.ready.http: expected an http:// or https:// URL, got "localhost:8080/health"'],
      ['ready = { http = "not a url" }', 'app.toml:3: services.s.ready.http: "not a url" is not a URL'],
      ["ready = { http = 8080 }", "app.toml:3: services.s.ready.http: expected a URL, got the integer 8080"],
      ['ready = { file = "run/ready" }', 'app.toml:3: services.s.ready.file: must be an absolute path, got "run/ready"'],
      ["ready = { exec = [] }", "app.toml:3: services.s.ready.exec: the command is empty"],
      [
        'ready = { exec = "check && ok" }',
        'app.toml:3: services.s.ready.exec: "&" is a shell operator at character 7 (quote it to pass it as an argument, or write ["/bin/sh", "-c", "…"] to use a shell)',
      ],
    ];
    for (const [body, message] of cases) expect(bad(`command = "x"\n${body}`)).toEqual([message]);
    expect(bad('command = "x"\n[services.s.ready]\n\nfile = "/r"\nexec = ["c"]')).toEqual([
      "app.toml:3: services.s.ready: takes exactly one of tcp, http, file, exec, notify, fd; got file and exec",
    ]);
  });

  test("combinations that mean nothing", () => {
    expect(bad('command = "x"\noneshot = true\nrestart = "always"\nready = { tcp = 1 }\npidfile = "/p"')).toEqual([
      'app.toml:4: services.s.restart: a oneshot that exits 0 has succeeded: restart = "always" would run it forever (use "on-failure")',
      "app.toml:5: services.s.ready: a oneshot is ready when it exits 0: it takes no ready probe",
      "app.toml:6: services.s.pidfile: a oneshot cannot hand over to a daemon's pidfile",
    ]);
  });

  test("unknown keys at every level, with suggestions from other tools' vocabularies", () => {
    const text = [
      "service = 1", //                            1
      "[settings]", //                             2
      "grace_period = 3", //                       3
      "[services.s]", //                           4
      'cmd = "x"', //                              5
      "environment = {}", //                       6
      'working_dir = "/"', //                      7
      "Command = 1", //                            8
      "zzz = 1", //                                9
    ].join("\n");
    expect(problems(text)).toEqual([
      'app.toml:1: service: unknown key "service" (did you mean "services"?)',
      'app.toml:3: settings.grace_period: unknown key "grace_period" (did you mean "grace"?)',
      'app.toml:4: services.s: missing "command"',
      'app.toml:5: services.s.cmd: unknown key "cmd" (did you mean "command"?)',
      'app.toml:6: services.s.environment: unknown key "environment" (did you mean "env"?)',
      'app.toml:7: services.s.working_dir: unknown key "working_dir" (did you mean "cwd"?)',
      'app.toml:8: services.s.Command: unknown key "Command" (did you mean "command"?)',
      'app.toml:9: services.s.zzz: unknown key "zzz"',
    ]);
  });

  test("the shape of the file", () => {
    expect(problems("")).toEqual(["app.toml: no services declared (add a [services.NAME] table)"]);
    expect(problems("[settings]\ngrace = 1\n")).toEqual(["app.toml: no services declared (add a [services.NAME] table)"]);
    expect(problems("[services]\n")).toEqual(["app.toml:1: services: no services declared (add a [services.NAME] table)"]);
    expect(problems('services = "web"\n')).toEqual([
      'app.toml:1: services: expected a table of [services.NAME] tables, got the string "web"',
    ]);
    expect(problems('[[services]]\ncommand = "x"\n')).toEqual([
      "app.toml:1: services: expected a table of [services.NAME] tables, got an array",
    ]);
    expect(problems('[services]\nweb = "nginx"\n')).toEqual([
      'app.toml:2: services.web: expected a table ([services.web]), got the string "nginx"',
    ]);
    expect(problems("settings = 5\n[services.a]\ncommand = \"x\"\n")).toEqual([
      "app.toml:1: settings: expected a table, got the integer 5",
    ]);
    expect(problems('[services."my web"]\ncommand = "x"\n')).toEqual([
      'app.toml:1: services."my web": service name "my web" may hold only letters, digits, "_", "." and "-" (and not start with "." or "-")',
    ]);
  });

  test("a key path with no known line is shown as FILE: key.path", () => {
    const diags = new Diagnostics();
    const data = Bun.TOML.parse('[services.s]\ncommand = "x"\nrestart = "no"\n') as Record<string, unknown>;
    readTomlConfig(data, { origin: "app.toml", sourceIndex: 0, lines: new KeyLines(), diags });
    expect(diags.formatted()).toEqual([
      'app.toml: services.s.restart: expected one of "never", "on-failure", "always", got the string "no"',
    ]);
  });

  test("a one-letter name gets no suggestion, a typo or a swap of letters does", () => {
    expect(problems('[services.a]\ncommand = "x"\nafter = ["b", "aa"]\n')).toEqual([
      'app.toml:3: services.a.after[0]: unknown service "b"',
      'app.toml:3: services.a.after[1]: unknown service "aa"',
    ]);
    expect(problems('[services.cache]\ncommand = "x"\n[services.w]\ncommand = "x"\nafter = ["cahce"]\n')).toEqual([
      'app.toml:5: services.w.after[0]: unknown service "cahce" (did you mean "cache"?)',
    ]);
  });
});
