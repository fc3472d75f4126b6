// The command line, flag for flag with tini 0.19: what pidone prints and how it exits
// for --version, -h, -l, usage errors, and programs that cannot be run.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PIDONE, ROOT, run, tempDir } from "./helpers.ts";

setDefaultTimeout(30_000);

const VERSION = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;
const FLAGS = ["-h", "-s", "-p", "-v", "-w", "-g", "-e", "-l", "--version"];

function fatalLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /^\[FATAL pidone \(\d+\)\] /.test(l));
}

describe("information", () => {
  test("--version prints exactly `pidone version X.Y.Z - git.<7 hex>` and exits 0", async () => {
    const r = await run([PIDONE, "--version"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^pidone version \d+\.\d+\.\d+ - git\.[0-9a-f]{7}\n$/);
    expect(r.stdout).toStartWith(`pidone version ${VERSION} - git.`);
  });

  for (const flag of ["-h", "--help"]) {
    test(`${flag} prints the usage with every tini flag on stdout and exits 0`, async () => {
      const r = await run([PIDONE, flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/usage/i);
      for (const f of FLAGS) expect(r.stdout).toContain(f);
      for (const v of ["TINI_SUBREAPER", "TINI_VERBOSITY", "TINI_KILL_PROCESS_GROUP"]) expect(r.stdout).toContain(v);
    });
  }

  test("-l prints the license and exits 0", async () => {
    const r = await run([PIDONE, "-l"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/license/i);
    expect(r.stdout.length).toBeGreaterThan(200);
  });

  test("-h among other options wins; -h after PROGRAM belongs to the program", async () => {
    const before = await run([PIDONE, "-v", "-h", "true"]);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/usage/i);
    const after = await run([PIDONE, "-s", "sh", "-c", 'printf "%s|" "$@"', "sh", "-h", "--version", "-l"]);
    expect(after).toEqual({ code: 0, stdout: "-h|--version|-l|", stderr: "" });
  });
});

describe("usage errors exit 1 with the usage on stderr", () => {
  const cases: Array<[string, string[], RegExp | null]> = [
    ["an unknown short option", ["-z", "true"], /invalid option -- 'z'/],
    ["an unknown long option", ["--bogus", "true"], /unrecognized option '--bogus'/],
    ["a prefix of a long option (no abbreviations)", ["--vers"], /unrecognized option '--vers'/],
    ["-e without a value", ["-e"], /requires an argument -- 'e'/],
    ["-e 256", ["-e", "256", "true"], /Not a valid option for -e: 256/],
    ["-e -1", ["-e", "-1", "true"], /Not a valid option for -e: -1/],
    ["-e abc", ["-e", "abc", "true"], /Not a valid option for -e: abc/],
    ["-p without a value", ["-p"], /requires an argument -- 'p'/],
    ["-p with a name tini does not know (KILL without SIG)", ["-p", "KILL", "true"], /Not a valid option for -p: KILL/],
    ["-p SIGFOO", ["-p", "SIGFOO", "true"], /Not a valid option for -p: SIGFOO/],
    ["no PROGRAM", [], null],
    ["options but no PROGRAM", ["-s", "-v"], null],
    ["only --", ["--"], null],
  ];
  for (const [what, args, message] of cases) {
    test(what, async () => {
      const r = await run([PIDONE, ...args]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/usage/i);
      if (message) expect(r.stderr).toMatch(message);
    });
  }

  test("a fatal -e/-p error is one [FATAL pidone (PID)] line", async () => {
    const r = await run([PIDONE, "-p", "SIGFOO", "true"]);
    expect(fatalLines(r.stderr)).toEqual([expect.stringMatching(/^\[FATAL pidone \(\d+\)\] Not a valid option for -p: SIGFOO$/)]);
  });
});

describe("option grammar", () => {
  test("`pidone sh -c 'exit 3'` works without --: options stop at PROGRAM", async () => {
    expect((await run([PIDONE, "-s", "sh", "-c", "exit 3"])).code).toBe(3);
    expect((await run([PIDONE, "-s", "--", "sh", "-c", "exit 3"])).code).toBe(3);
  });

  test("clustered and attached forms: -svw, -e3, -pSIGKILL, --expect-exit=3, --pdeathsig SIGKILL", async () => {
    const r = await run([PIDONE, "-svwe3", "-pSIGKILL", "--expect-exit=4", "--pdeathsig", "SIGTERM", "sh", "-c", "exit 4"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("[INFO  pidone (");
  });

  test("-p accepts each of tini's SIGxxx names", async () => {
    for (const name of ["SIGHUP", "SIGINT", "SIGKILL", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGWINCH", "SIGSYS"]) {
      const r = await run([PIDONE, "-s", "-p", name, "true"]);
      expect({ name, code: r.code, stderr: r.stderr }).toEqual({ name, code: 0, stderr: "" });
    }
  });
});

describe("programs that cannot be run", () => {
  test("a missing program exits 127 with one fatal line naming it", async () => {
    for (const program of ["/nonexistent/program", "no-such-program-anywhere"]) {
      const r = await run([PIDONE, "-s", "--", program, "arg"]);
      expect(r.code).toBe(127);
      expect(r.stdout).toBe("");
      const fatal = fatalLines(r.stderr);
      expect(fatal.length).toBe(1);
      expect(fatal[0]).toContain(program);
      expect(fatal[0]).toContain("No such file or directory");
      expect(r.stderr.trim().split("\n")).toEqual(fatal);
    }
  });

  test("a missing program exits 127 as PID 1 too", async () => {
    const r = await run(["unshare", "--pid", "--fork", "--mount-proc", PIDONE, "--", "/nonexistent/program"]);
    expect(r.code).toBe(127);
    expect(fatalLines(r.stderr).length).toBe(1);
  });

  test("a program without execute permission exits 126 with one fatal line naming it", async () => {
    const dir = tempDir();
    const file = join(dir, "not-executable");
    writeFileSync(file, "#!/bin/sh\necho should not run\n");
    chmodSync(file, 0o644);
    const r = await run([PIDONE, "-s", "--", file]);
    expect(r.code).toBe(126);
    expect(r.stdout).toBe("");
    const fatal = fatalLines(r.stderr);
    expect(fatal.length).toBe(1);
    expect(fatal[0]).toContain(file);
    expect(fatal[0]).toContain("Permission denied");
  });

  test("a directory as the program exits 126", async () => {
    const r = await run([PIDONE, "-s", "--", tempDir()]);
    expect(r.code).toBe(126);
    expect(fatalLines(r.stderr).length).toBe(1);
  });

  test("-e applies to pidone's 127 as it does in tini (the child's exec failure)", async () => {
    expect((await run([PIDONE, "-s", "-e", "127", "--", "/nonexistent/program"])).code).toBe(0);
  });

  test("a script without #! runs through /bin/sh, by path and through PATH (execvp)", async () => {
    const dir = tempDir();
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const script = join(bin, "no-shebang");
    writeFileSync(script, 'echo "ran as $0 with [$1] [$2]"\nexit 5\n');
    chmodSync(script, 0o755);
    const byPath = await run([PIDONE, "-s", "--", script, "a b", ""]);
    expect(byPath).toEqual({ code: 5, stdout: `ran as ${script} with [a b] []\n`, stderr: "" });
    const viaPath = await run([PIDONE, "-s", "--", "no-shebang", "x"], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    expect(viaPath.code).toBe(5);
    expect(viaPath.stdout).toBe(`ran as ${script} with [x] []\n`);
  });
});
