import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildPlan, check, findCycles, isTomlFile, parseGroup, parsePasswd, planFromSources, readAccounts,
  resolveUser, startLevels, stopLevels, topologicalOrder,
  type PlanOptions, type ServiceSpec, type Source,
} from "../src/config/index.ts";

const fixture = (name: string) => new URL(`fixtures/${name}`, import.meta.url).pathname;
const FIXTURE_ROOT = fixture("config-root");
const ACCOUNTS = readAccounts(FIXTURE_ROOT);

const MACHINE: PlanOptions = {
  env: { PATH: "/usr/bin:/bin" },
  cwd: "/",
  euid: 0,
  probe: () => "executable",
  accounts: ACCOUNTS,
};

function plan(sources: Source[], options: PlanOptions = MACHINE) {
  const r = planFromSources(sources, options);
  if (!r.ok) throw new Error(r.diagnostics.join("\n"));
  return r.plan;
}
function problems(sources: Source[], options: PlanOptions = MACHINE): string[] {
  const r = planFromSources(sources, options);
  return r.ok ? [] : r.diagnostics;
}
const toml = (text: string, file = "app.toml"): Source => ({ kind: "toml", file, text });
const flag = (text: string): Source => ({ kind: "flag", text });
const procfile = (text: string, file = "Procfile"): Source => ({ kind: "procfile", file, text });
const names = (levels: ServiceSpec[][]) => levels.map((l) => l.map((s) => s.name));

const tempDirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe("sources combine into one plan", () => {
  test("--service and Procfile commands run with /bin/sh -c, every key defaulted", () => {
    const p = plan([flag("sshd: /usr/sbin/sshd -D -e"), procfile("web: exec httpd -f\n")]);
    expect(p.services.map((s) => [s.name, s.origin, s.argv, s.shell, s.executable])).toEqual([
      ["sshd", '--service "sshd: /usr/sbin/sshd -D -e"', ["/bin/sh", "-c", "/usr/sbin/sshd -D -e"], true, "/bin/sh"],
      ["web", "Procfile:1", ["/bin/sh", "-c", "exec httpd -f"], true, "/bin/sh"],
    ]);
    expect(p.services[0]).toMatchObject({ restart: "never", critical: true, after: [], stopSignal: 15, signals: "all" });
    expect(p.services[1]).toMatchObject({ restartDelay: 1, restartDelayMax: 30, maxRestarts: 5, restartWindow: 60 });
  });

  test("TOML services keep their declaration order, even with integer-like names", () => {
    const p = plan([toml('[services.web]\ncommand = "x"\n[services.2]\ncommand = "y"\n[services.__proto__]\ncommand = "z"\nenv = { __proto__ = "p" }\n')]);
    expect(p.services.map((s) => s.name)).toEqual(["web", "2", "__proto__"]);
    expect(Object.entries(p.services[2]!.env)).toEqual([["__proto__", "p"]]);
  });

  test("a TOML service may start after a --service one", () => {
    const p = plan([toml('[services.app]\ncommand = "app"\nafter = ["db"]\n'), flag("db: postgres")]);
    expect(p.services.map((s) => s.name)).toEqual(["db", "app"]);
  });

  test("a name declared twice is reported where it is declared again, with the first place", () => {
    expect(problems([flag("web: a"), flag("web: b")])).toEqual([
      '--service "web: b": service "web" is already declared at --service "web: a"',
    ]);
    expect(problems([procfile("web: a\nworker: w\nweb: b\n")])).toEqual([
      'Procfile:3: service "web" is already declared at Procfile:1',
    ]);
    expect(problems([procfile("web: a\n"), toml('[services.other]\ncommand = "x"\n\n[services.web]\ncommand = "y"\n')])).toEqual([
      'app.toml:4: services.web: service "web" is already declared at Procfile:1',
    ]);
  });

  test("problems are listed source by source, each in line order", () => {
    expect(problems([
      toml('[services.a]\ncommand = "x"\nrestart = 1\n[services.b]\n', "one.toml"),
      procfile("bad line\n\nok: fine\n- x: y\n"),
      flag("nope"),
    ])).toEqual([
      "one.toml:3: services.a.restart: expected one of \"never\", \"on-failure\", \"always\", got the integer 1",
      'one.toml:4: services.b: missing "command"',
      'Procfile:1: expected "NAME: COMMAND", got "bad line"',
      'Procfile:4: service name "- x" may hold only letters, digits, "_", "." and "-" (and not start with "." or "-")',
      '--service "nope": expected "NAME: COMMAND", got "nope"',
    ]);
  });

  test("an empty Procfile, or no source at all, declares no services", () => {
    expect(problems([procfile("# nothing\n")])).toEqual(["Procfile: no services declared (expected NAME: COMMAND lines)"]);
    expect(problems([])).toEqual(["pidone: no services declared (give --service 'NAME: COMMAND' or -c FILE)"]);
  });
});

describe("settings", () => {
  const file = toml('[settings]\ngrace = 8\n[services.a]\ncommand = "x"\n');
  const bare = toml('[services.a]\ncommand = "x"\n');
  test("command line over file over environment over the default", () => {
    expect(plan([file]).settings).toEqual({ grace: 8, logFormat: "prefix", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null });
    expect(plan([file], { ...MACHINE, settings: { grace: 2, logFormat: "json" } }).settings).toEqual({ grace: 2, logFormat: "json", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null });
    expect(plan([file], { ...MACHINE, defaultSettings: { grace: 7 } }).settings.grace).toBe(8);
    expect(plan([bare], { ...MACHINE, defaultSettings: { grace: 7, logFormat: "raw" } }).settings).toEqual({ grace: 7, logFormat: "raw", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null });
    expect(plan([flag("a: x")]).settings).toEqual({ grace: 5, logFormat: "prefix", stopDelay: 0, timestamps: false, logLevel: null, envFiles: [], control: null });
  });
  test("two files setting the same key is a conflict", () => {
    const second = toml('[services.b]\ncommand = "x"\n[settings]\ngrace = 3\nlog_format = "raw"\n', "two.toml");
    expect(problems([file, second])).toEqual(["two.toml:4: settings.grace: already set at app.toml:2"]);
  });
});

describe("after: order, levels and cycles", () => {
  const diamond = toml([
    '[services.d]\ncommand = "x"\nafter = ["b", "c"]',
    '[services.c]\ncommand = "x"\nafter = ["a"]',
    '[services.e]\ncommand = "x"',
    '[services.b]\ncommand = "x"\nafter = ["a", "a"]',
    '[services.a]\ncommand = "x"',
  ].join("\n"));

  test("services come in a stable topological order: by level, then as declared", () => {
    const p = plan([diamond]);
    expect(p.services.map((s) => s.name)).toEqual(["e", "a", "c", "b", "d"]);
    expect(p.services.find((s) => s.name === "b")!.after).toEqual(["a"]);
  });

  test("start levels start in parallel; stop levels stop what nothing depends on first", () => {
    const p = plan([diamond]);
    expect(names(startLevels(p.services))).toEqual([["e", "a"], ["c", "b"], ["d"]]);
    expect(names(stopLevels(p.services))).toEqual([["e", "d"], ["c", "b"], ["a"]]);
  });

  test("a chain next to an independent service", () => {
    const nodes = [
      { name: "db", after: [] },
      { name: "migrate", after: ["db"] },
      { name: "app", after: ["migrate"] },
      { name: "cron", after: [] },
    ];
    expect(startLevels(nodes).map((l) => l.map((n) => n.name))).toEqual([["db", "cron"], ["migrate"], ["app"]]);
    expect(stopLevels(nodes).map((l) => l.map((n) => n.name))).toEqual([["app", "cron"], ["migrate"], ["db"]]);
    expect(topologicalOrder(nodes).map((n) => n.name)).toEqual(["db", "cron", "migrate", "app"]);
    expect(startLevels([])).toEqual([]);
  });

  test("cycles are found once each, starting at the service declared first", () => {
    expect(findCycles([{ name: "a", after: ["a"] }])).toEqual([["a", "a"]]);
    expect(findCycles([
      { name: "a", after: ["b"] },
      { name: "b", after: ["c"] },
      { name: "c", after: ["a"] },
    ])).toEqual([["a", "b", "c", "a"]]);
    expect(findCycles([
      { name: "x", after: [] },
      { name: "c", after: ["b"] },
      { name: "b", after: ["c", "x"] },
      { name: "p", after: ["q"] },
      { name: "q", after: ["p", "ghost"] },
    ])).toEqual([["c", "b", "c"], ["p", "q", "p"]]);
    expect(findCycles([{ name: "a", after: ["b"] }, { name: "b", after: [] }])).toEqual([]);
  });

  test("a cycle is reported at the after entry that starts it, with its whole path", () => {
    const text = [
      "[services.a]", //                1
      'command = "x"', //               2
      'after = ["z", "b"]', //          3
      "[services.b]", //                4
      'command = "x"', //               5
      'after = ["c"]', //               6
      "[services.c]", //                7
      'command = "x"', //               8
      'after = ["a", "c"]', //          9
      "[services.z]", //               10
      'command = "x"', //              11
    ].join("\n");
    expect(problems([toml(text)])).toEqual([
      "app.toml:3: services.a.after[1]: dependency cycle: a -> b -> c -> a",
      "app.toml:9: services.c.after[1]: dependency cycle: c -> c",
    ]);
  });
});

describe("after: graphs of thousands of services (fuzzer)", () => {
  const N = 100_000;
  const chain = (next: (i: number) => number | null) =>
    Array.from({ length: N }, (_, i) => ({ name: `s${i}`, after: next(i) === null ? [] : [`s${next(i)}`] }));

  test("a cycle through every service is found without overflowing the stack", () => {
    const cycles = findCycles(chain((i) => (i + 1) % N));
    expect(cycles.length).toBe(1);
    expect(cycles[0]!.length).toBe(N + 1);
  });

  test("levels of a chain declared in either order, without overflowing the stack", () => {
    expect(startLevels(chain((i) => (i + 1 < N ? i + 1 : null))).length).toBe(N);
    expect(stopLevels(chain((i) => (i > 0 ? i - 1 : null))).length).toBe(N);
  });

  test("at most 20 cycles are listed, then one line says there are more", () => {
    const text = Array.from({ length: 30 }, (_, i) => `[services.s${i}]\ncommand = "x"\nafter = ["s${i}"]`).join("\n");
    const p = problems([toml(text)]);
    expect(p.length).toBe(21);
    expect(p[20]).toBe("pidone: more dependency cycles than the 20 listed");
  });

  test("a huge unknown name costs no edit distance against every service", () => {
    const started = performance.now();
    const others = Array.from({ length: 20 }, (_, i) => `[services.s${i}]\ncommand = "x"`).join("\n");
    const p = problems([toml(`${others}\n[services.a]\ncommand = "x"\nafter = ["${"b".repeat(2_000_000)}"]`)]);
    expect(p.length).toBe(1);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("programs are looked up as execvp will", () => {
  const dir = tempDir("pidone-config-");
  const file = (path: string, mode: number) => {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), "#!/bin/sh\n");
    chmodSync(join(dir, path), mode);
  };
  file("bin1/tool", 0o644);
  file("bin2/tool", 0o755);
  file("bin1/plain", 0o644);
  file("srv/bin/local", 0o755);
  file("srv/here", 0o755);
  mkdirSync(join(dir, "bin2/adir"));
  const real: PlanOptions = { ...MACHINE, probe: undefined, env: { PATH: `${dir}/bin1:${dir}/bin2` } };
  const cmd = (command: string, extra = "") => toml(`[services.s]\ncommand = ${JSON.stringify(command)}\n${extra}`);

  test("a bare name: the first executable match in PATH, skipping a non-executable one", () => {
    expect(plan([cmd("tool --x")], real).services[0]!.executable).toBe(`${dir}/bin2/tool`);
  });
  test("a bare name with no executable match", () => {
    expect(problems([cmd("plain")], real)).toEqual([`app.toml:2: services.s.command: program ${dir}/bin1/plain is not executable`]);
    expect(problems([cmd("nothere")], real)).toEqual([
      `app.toml:2: services.s.command: program "nothere" not found in PATH (${dir}/bin1:${dir}/bin2)`,
    ]);
  });
  test("absolute paths must exist, be files and be executable", () => {
    expect(plan([cmd(`${dir}/bin2/tool`)], real).services[0]!.executable).toBe(`${dir}/bin2/tool`);
    expect(problems([cmd(`${dir}/bin1/tool`), ], real)).toEqual([`app.toml:2: services.s.command: program ${dir}/bin1/tool is not executable`]);
    expect(problems([cmd(`${dir}/nope`)], real)).toEqual([`app.toml:2: services.s.command: program ${dir}/nope not found`]);
    expect(problems([cmd(`${dir}/bin2/adir`)], real)).toEqual([`app.toml:2: services.s.command: program ${dir}/bin2/adir is a directory`]);
  });
  test("the service's own PATH and cwd are the ones searched", () => {
    expect(plan([cmd("local", `env = { PATH = "${dir}/srv/bin" }`)], real).services[0]!.executable).toBe(`${dir}/srv/bin/local`);
    expect(plan([cmd("./bin/local", `cwd = "${dir}/srv"`)], real).services[0]!.executable).toBe(`${dir}/srv/bin/local`);
    expect(problems([cmd("./bin/local")], { ...real, cwd: dir })).toEqual([
      `app.toml:2: services.s.command: program ./bin/local (${dir}/bin/local) not found`,
    ]);
    // An empty PATH entry is the current directory.
    expect(plan([cmd("here", `env = { PATH = ":/nonexistent" }\ncwd = "${dir}/srv"`)], real).services[0]!.executable).toBe(`${dir}/srv/here`);
  });
  test("without PATH, execvp's default /bin:/usr/bin", () => {
    expect(plan([cmd("sh")], { ...real, env: {} }).services[0]!.executable).toBe("/bin/sh");
    expect(problems([cmd("tool")], { ...real, env: {} })).toEqual([
      'app.toml:2: services.s.command: program "tool" not found in PATH (unset, so /bin:/usr/bin)',
    ]);
  });
  test("shell commands need /bin/sh", () => {
    const noShell: PlanOptions = { ...MACHINE, probe: (p) => (p === "/bin/sh" ? "missing" : "executable") };
    expect(problems([procfile("\nweb: httpd\n"), flag("x: y"), cmd("a | b", "shell = true")], noShell)).toEqual([
      "Procfile:2: program /bin/sh not found (the command runs with /bin/sh -c)",
      '--service "x: y": program /bin/sh not found (the command runs with /bin/sh -c)',
      "app.toml:2: services.s.command: program /bin/sh not found (the command runs with /bin/sh -c)",
    ]);
  });
  test("a ready probe's program too", () => {
    expect(problems([cmd(`${dir}/bin2/tool`, 'ready = { exec = ["check-it"] }')], real)).toEqual([
      `app.toml:3: services.s.ready.exec: program "check-it" not found in PATH (${dir}/bin1:${dir}/bin2)`,
    ]);
  });
  test("the lookup can be switched off", () => {
    const p = plan([cmd("nothere", 'ready = { exec = ["nope"] }')], { ...real, checkPrograms: false });
    expect(p.services[0]!.executable).toBeNull();
    expect(p.services[0]!.ready).toEqual({ kind: "exec", argv: ["nope"], executable: null });
  });
});

describe("users and groups", () => {
  const user = (spec: string) => {
    const r = resolveUser(spec, ACCOUNTS);
    if (!r.ok) throw new Error(r.message);
    return r.user;
  };
  const refusal = (spec: string, db = ACCOUNTS) => {
    const r = resolveUser(spec, db);
    return r.ok ? null : r.message;
  };

  test("a name: its uid, primary gid, home and every group listing it", () => {
    expect(user("admin")).toEqual({ uid: 1000, gid: 1000, groups: [1000, 4, 50, 999], name: "admin", home: "/home/admin" });
    expect(user("postgres")).toEqual({ uid: 105, gid: 110, groups: [110, 108, 50], name: "postgres", home: "/var/lib/postgresql" });
    expect(user("nohome")).toEqual({ uid: 1001, gid: 1001, groups: [1001], name: "nohome", home: "/" });
  });
  test("name:group and uid:gid", () => {
    expect(user("admin:staff")).toEqual({ uid: 1000, gid: 50, groups: [50, 4, 999], name: "admin", home: "/home/admin" });
    expect(user("1000")).toEqual(user("admin"));
    expect(user("1000:0")).toEqual({ uid: 1000, gid: 0, groups: [0, 4, 50, 999], name: "admin", home: "/home/admin" });
    expect(user("0")).toEqual({ uid: 0, gid: 0, groups: [0], name: "root", home: "/root" });
  });
  test("a uid without a passwd entry gets gid = uid, never root's group", () => {
    expect(user("4242")).toEqual({ uid: 4242, gid: 4242, groups: [4242], name: null, home: "/" });
    expect(user("4242:nogroup")).toEqual({ uid: 4242, gid: 65534, groups: [65534], name: null, home: "/" });
  });
  test("unknown names, empty parts and out-of-range ids", () => {
    expect(refusal("admn")).toBe('unknown user "admn" in /etc/passwd (did you mean "admin"?)');
    expect(refusal("nisuser")).toBe('unknown user "nisuser" in /etc/passwd');
    expect(refusal("admin:wheel")).toBe('unknown group "wheel" in /etc/group');
    expect(refusal("admin:")).toBe('"admin:" names no group after ":"');
    expect(refusal(":staff")).toBe('":staff" names no user');
    expect(refusal("4294967295")).toBe("uid 4294967295 is out of range (0 to 4294967294)");
    expect(refusal("1:99999999999")).toBe("gid 99999999999 is out of range (0 to 4294967294)");
  });
  test("without /etc/passwd (a scratch image) only numeric ids work", () => {
    const empty = readAccounts(tempDir("pidone-noetc-"));
    expect(refusal("admin", empty)).toBe('unknown user "admin" (cannot read /etc/passwd: ENOENT)');
    expect(refusal("1:staff", empty)).toBe('unknown group "staff" (cannot read /etc/group: ENOENT)');
    expect(resolveUser("65534:65534", empty)).toEqual({ ok: true, user: { uid: 65534, gid: 65534, groups: [65534], name: null, home: "/" } });
  });
  test("passwd and group parsing skips comments, NIS entries and malformed lines", () => {
    expect(parsePasswd("a:x:1:2::/h:/bin/sh\n+nis::::::\n#c:x:1:1::/:/\nshort:x:1\nbad:x:one:2::/:/\nwin:x:3:4::/w:/s\r\n")).toEqual([
      { name: "a", uid: 1, gid: 2, home: "/h" },
      { name: "win", uid: 3, gid: 4, home: "/w" },
    ]);
    expect(parseGroup("g:x:5:a, b,,c\nempty:x:6:\n-nis:x:7:\nbad:x:x:\n")).toEqual([
      { name: "g", gid: 5, members: ["a", "b", "c"] },
      { name: "empty", gid: 6, members: [] },
    ]);
  });
  test("in a plan: resolved from accountsRoot, and only when pidone is root", () => {
    const src = toml('[services.s]\ncommand = "x"\nuser = "postgres"\n');
    const options = { ...MACHINE, accounts: undefined, accountsRoot: FIXTURE_ROOT };
    expect(plan([src], options).services[0]!.user).toEqual(user("postgres"));
    expect(problems([src], { ...options, euid: 1000 })).toEqual([
      "app.toml:3: services.s.user: switching user needs pidone to run as root (it runs as uid 1000)",
    ]);
    expect(problems([toml('[services.s]\ncommand = "x"\n\nuser = "ghost:staf"\n')], options)).toEqual([
      'app.toml:4: services.s.user: unknown user "ghost" in /etc/passwd',
    ]);
  });
});

/**
 * The README's TOML example, the ```toml block that opens with EXAMPLE_HEAD, as a file
 * of its own (check() and buildPlan() read files). Throws when the block is gone.
 */
const EXAMPLE_HEAD = "# pidone services file: every key";
function readmeExample(): string {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = [...readme.matchAll(/^```toml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).find((b) => b.startsWith(EXAMPLE_HEAD));
  if (block === undefined) throw new Error(`README.md has no \`\`\`toml block starting with "${EXAMPLE_HEAD}"`);
  const file = join(tempDir("pidone-readme-"), "pidone.toml");
  writeFileSync(file, block);
  return file;
}

describe("check() and buildPlan() on files", () => {
  test("the README example is valid", () => {
    const example = readmeExample();
    const r = check([example], [], MACHINE);
    // Its env_files are examples: missing here, which --check only warns about.
    const missing = (path: string) => `${path}: warning: no such env_file (if it is not there at run time either, the services that need it cannot start)`;
    expect(r).toEqual({ ok: true, diagnostics: [], warnings: [missing("/etc/app/common.env"), missing("/etc/app/db.env")] });
    const p = buildPlan([example], [], MACHINE);
    expect(p.ok && p.plan.settings).toEqual({
      grace: 8,
      logFormat: "prefix",
      stopDelay: 0,
      timestamps: true,
      logLevel: "info",
      envFiles: [{ path: "/etc/app/common.env", optional: false }],
      control: "/run/pidone/control.sock",
      http: { host: "127.0.0.1", port: 9100 },
    });
    expect(p.ok && p.plan.services.find((s) => s.name === "db")!.envFiles).toEqual([
      { path: "/etc/app/common.env", optional: false },
      { path: "/etc/app/db.env", optional: false },
      { path: "/etc/app/local.env", optional: true },
    ]);
    expect(p.ok && names(startLevels(p.plan.services))).toEqual([["db", "cron", "sshd"], ["migrate"], ["app"], ["web"]]);
    expect(p.ok && names(stopLevels(p.plan.services))).toEqual([["cron", "sshd", "web"], ["app"], ["migrate"], ["db"]]);
    expect(p.ok && p.plan.services.find((s) => s.name === "db")).toMatchObject({
      argv: ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data", "-c", "listen_addresses=127.0.0.1"],
      user: { uid: 105, gid: 110, groups: [110, 108, 50], name: "postgres" },
      stopSignal: 2,
    });
    expect(p.ok && p.plan.services.find((s) => s.name === "app")).toMatchObject({
      restart: "on-failure",
      restartDelay: 0.5,
      restartDelayMax: 30,
      maxRestarts: 5,
      restartWindow: 60,
      health: { probe: { kind: "http", url: "http://127.0.0.1:8080/live" }, interval: 30, timeout: 5, retries: 3, startPeriod: 0 },
    });
  });

  test("a broken file: every problem, each with its line", () => {
    const file = fixture("config-broken.toml");
    const options: PlanOptions = { ...MACHINE, probe: (p) => (p === "/usr/bin/worker" ? "executable" : "missing") };
    expect(check([file], [], options)).toEqual({
      ok: false,
      diagnostics: [
        `${file}:3: settings.grace: must be 0 or more seconds, got -1`,
        `${file}:4: settings.log_format: expected one of "prefix", "json", "raw", got the string "text"`,
        `${file}:7: services.db.command: program /opt/db/bin/dbd not found`,
        `${file}:8: services.db.user: unknown user "postgress" in /etc/passwd (did you mean "postgres"?)`,
        `${file}:9: services.db.after[0]: dependency cycle: db -> app -> db`,
        `${file}:12: services.app.command: program "app-server" not found in PATH (/usr/bin:/bin)`,
        `${file}:13: services.app.after[1]: unknown service "cahce"`,
        `${file}:14: services.app.ready: takes exactly one of tcp, http, file, exec, notify, fd; got tcp and file`,
        `${file}:15: services.app.stop_signal: unknown signal "SIGSTOPP" (a name such as "TERM" or "SIGHUP", a number, or "RTMIN+n")`,
        `${file}:18: services.worker.command: "|" is a shell operator at character 8 (quote it to pass it as an argument, or set shell = true to run it with /bin/sh -c)`,
        `${file}:19: services.worker.cwd: must be an absolute path, got "var/lib/worker"`,
        `${file}:20: services.worker.retries: unknown key "retries" (did you mean "max_restarts"?)`,
      ],
      warnings: [],
    });
  });

  test("a Procfile (any name not ending in .toml) plus --service flags", () => {
    const p = buildPlan([fixture("config-Procfile")], ["extra: sleep 1"], MACHINE);
    expect(p.ok && p.plan.services.map((s) => [s.name, s.origin, s.argv[2]])).toEqual([
      ["web", `${fixture("config-Procfile")}:2`, "exec busybox httpd -f -p 8080 -h /srv"],
      ["clock", `${fixture("config-Procfile")}:3`, "while sleep 60; do date; done"],
      ["worker", `${fixture("config-Procfile")}:5`, "exec ./bin/worker --queue default"],
      ["extra", '--service "extra: sleep 1"', "sleep 1"],
    ]);
    expect(isTomlFile("a.toml")).toBe(true);
    expect(isTomlFile("A.TOML")).toBe(true);
    expect(isTomlFile("Procfile")).toBe(false);
    expect(isTomlFile("pidone.toml.bak")).toBe(false);
  });

  test("unreadable files, non-UTF-8 files and a byte order mark", () => {
    const dir = tempDir("pidone-check-");
    writeFileSync(join(dir, "latin1.toml"), Buffer.from([0x61, 0x20, 0x3d, 0x20, 0x22, 0xe9, 0x22, 0x0a]));
    writeFileSync(join(dir, "bom.toml"), `\uFEFF[services.a]\ncommand = "x"\n`);
    expect(check([join(dir, "missing.toml"), join(dir, "latin1.toml"), dir], [], MACHINE)).toEqual({
      ok: false,
      diagnostics: [
        `${join(dir, "missing.toml")}: cannot read: no such file`,
        `${join(dir, "latin1.toml")}: not valid UTF-8 text`,
        `${dir}: cannot read: is a directory`,
      ],
      warnings: [],
    });
    expect(check([join(dir, "bom.toml")], [], MACHINE)).toEqual({ ok: true, diagnostics: [], warnings: [] });
    expect(check([join(dir, "missing")], ["a: b", "bad"], MACHINE)).toEqual({
      ok: false,
      diagnostics: [`${join(dir, "missing")}: cannot read: no such file`, '--service "bad": expected "NAME: COMMAND", got "bad"'],
      warnings: [],
    });
  });

  test("with the real machine's defaults (process env, euid, /etc)", () => {
    const r = check([], ["sh: exec sleep 1"]);
    expect(r).toEqual({ ok: true, diagnostics: [], warnings: [] });
  });
});
