// env_file for real: the built pidone as PID 1 of a PID namespace reads each file at
// every start of a service, in the stated order, and fails a start on a broken file.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, linesOf, pid1Of, run, start, tempDir } from "./helpers.ts";

function config(dir: string, text: string): string {
  const file = join(dir, "services.toml");
  writeFileSync(file, text);
  return file;
}

describe("env_file", () => {
  test("pidone's environment < [settings] files < the service's files < its env", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "all.env"), "A=settings\nB=settings\nC=settings\nD=settings\n");
    writeFileSync(join(dir, "one.env"), "B=service-1\nC=service-1\nD=service-1\n");
    writeFileSync(join(dir, "two.env"), "export C='service-2'\n");
    const file = config(dir, `
[settings]
env_file = "${dir}/all.env"
[services.show]
command = ["sh", "-c", "echo P=$P A=$A B=$B C=$C D=$D"]
env_file = ["${dir}/one.env", "-${dir}/absent.env", "${dir}/two.env"]
env = { D = "env" }
`);
    const r = await run([...AS_PID1, PIDONE, "-c", file], { env: { P: "pidone", A: "pidone", D: "pidone" } });
    expect(linesOf(r.stdout, "show")).toEqual(["P=pidone A=settings B=service-1 C=service-2 D=env"]);
    expect(r.code).toBe(0);
  });

  test("a restart reads the file again: a changed value reaches the next run", async () => {
    const dir = tempDir();
    const env = join(dir, "app.env");
    writeFileSync(env, "VERSION=1\n");
    const file = config(dir, `
[services.app]
command = ["sh", "-c", "echo version=$VERSION; while [ ! -e ${dir}/next ]; do sleep 0.05; done; rm ${dir}/next; exit 1"]
env_file = ["${env}"]
restart = "on-failure"
restart_delay = 0.1
`);
    const p = start([...AS_PID1, PIDONE, "--grace", "2", "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout("version=1");
    writeFileSync(env, "VERSION=2\n");
    writeFileSync(join(dir, "next"), "");
    await p.waitStdout("version=2");
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
    expect(linesOf(p.stdout(), "app")).toEqual(["version=1", "version=2"]);
  });

  test("a broken file fails that start with FILE:LINE; once fixed, the next restart runs", async () => {
    const dir = tempDir();
    const env = join(dir, "app.env");
    writeFileSync(env, "GOOD=1\nBAD=\"open\n");
    const file = config(dir, `
[services.app]
command = ["sh", "-c", "echo good=$GOOD; exec sleep 100"]
env_file = ["${env}"]
restart = "on-failure"
restart_delay = 0.2
restart_delay_max = 0.2
max_restarts = inf
`);
    const p = start([...AS_PID1, PIDONE, "--grace", "2", "-c", file]);
    const pid1 = await pid1Of(p.proc.pid);
    await p.waitStdout(`app: ${env}:2: unterminated double quote in the value of BAD`);
    await p.waitStdout("app: restarting in 0.2 s");
    writeFileSync(env, "GOOD=1\nBAD='closed'\n");
    await p.waitStdout("good=1");
    process.kill(pid1, "SIGTERM");
    expect(await p.exit()).toBe(0);
    // The broken start never spawned anything: one start, after the fix.
    const out = p.stdout();
    expect(out.match(/started \(pid/g)?.length).toBe(1);
    expect(out.indexOf("unterminated double quote")).toBeLessThan(out.indexOf("started (pid"));
  });

  test("a missing required file fails the start (exit 1, as a failed exec); an optional one is skipped", async () => {
    const dir = tempDir();
    const file = config(dir, `
[services.app]
command = ["sh", "-c", "echo ran"]
env_file = ["-${dir}/optional.env", "${dir}/required.env"]
`);
    const r = await run([...AS_PID1, PIDONE, "-c", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`pidone | app: ${dir}/required.env: cannot read env_file: no such file\n`);
    expect(linesOf(r.stdout, "app")).toEqual([]);
  });

  test("an exec probe runs with the service's env_file variables", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "app.env"), `MARK=${dir}/mark\n`);
    const file = config(dir, `
[services.app]
command = ["sh", "-c", "touch $MARK; exec sleep 100"]
env_file = ["${dir}/app.env"]
ready = { exec = ["sh", "-c", "test -e \\"$MARK\\""] }
ready_timeout = 10
[services.after]
command = ["sh", "-c", "echo after-ready"]
after = ["app"]
`);
    const r = await run([...AS_PID1, PIDONE, "--grace", "2", "-c", file]);
    expect(linesOf(r.stdout, "after")).toEqual(["after-ready"]);
    expect(r.stdout).toContain("pidone | app: ready");
  });

  test("--check: a syntax error exits 2 naming FILE:LINE; a missing file is a warning and exits 0", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "bad.env"), "A=1\n\nB=$HOME\n");
    const file = config(dir, `[services.app]\ncommand = ["true"]\nenv_file = ["${dir}/bad.env", "${dir}/later.env"]\n`);
    const bad = await run([PIDONE, "--check", "-c", file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${dir}/bad.env:3: "$HOME" would be expanded by Docker Compose`);
    writeFileSync(join(dir, "bad.env"), "A=1\n\nB='$HOME'\n");
    const ok = await run([PIDONE, "--check", "-c", file]);
    expect(ok).toEqual({
      code: 0,
      stdout: "configuration OK\n",
      stderr: `${dir}/later.env: warning: no such env_file (if it is not there at run time either, the services that need it cannot start)\n`,
    });
  });
});
