// Nothing from the working directory: a compiled Bun program would load .env files and
// bunfig.toml from wherever it starts, and hand those variables to the child.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AS_PID1, PIDONE, cHelper, run, tempDir } from "./helpers.ts";

setDefaultTimeout(30_000);

function trap(): string {
  const dir = tempDir("pidone-dotenv-");
  const vars = (tag: string) => `PIDONE_DOTENV_PROBE=${tag}\nTINI_VERBOSITY=4\nTINI_SUBREAPER=1\nPATH=/nowhere\n`;
  writeFileSync(join(dir, ".env"), vars("env"));
  writeFileSync(join(dir, ".env.local"), vars("local"));
  writeFileSync(join(dir, ".env.production"), vars("production"));
  writeFileSync(join(dir, ".env.development"), vars("development"));
  writeFileSync(join(dir, "preload.ts"), `require("node:fs").writeFileSync(${JSON.stringify(join(dir, "preloaded"))}, "yes");\n`);
  writeFileSync(join(dir, "bunfig.toml"), `preload = ["./preload.ts"]\n[define]\n"process.env.PIDONE_DOTENV_PROBE" = "'bunfig'"\n`);
  return dir;
}

describe(".env and bunfig.toml in the working directory", () => {
  for (const way of [
    { name: "not PID 1", cmd: [PIDONE, "-s"] },
    { name: "as PID 1", cmd: [...AS_PID1, PIDONE] },
  ]) {
    test(`change nothing in the child's environment or in pidone, ${way.name}`, async () => {
      const dir = trap();
      const args = await cHelper("core-args");
      const env = { MARKER: "from-parent", NODE_ENV: "production" };
      const direct = await run([args], { cwd: dir, env });
      const child = await run([...way.cmd, "--", args], { cwd: dir, env });
      expect(child.code).toBe(0);
      // TINI_VERBOSITY=4 from a .env would make pidone talk; PATH=/nowhere would lose cat.
      expect(child.stderr).toBe("");
      const envOf = (out: string) => [...out.matchAll(/^env ([0-9a-f]*)$/gm)].map((m) => Buffer.from(m[1]!, "hex").toString("latin1"));
      expect(envOf(child.stdout)).toEqual(envOf(direct.stdout));
      expect(child.stdout).not.toContain(Buffer.from("PIDONE_DOTENV_PROBE").toString("hex"));
      expect(existsSync(join(dir, "preloaded"))).toBe(false);
    });
  }

  test("a PROGRAM found through PATH still uses the real PATH, not one from .env", async () => {
    const dir = trap();
    const r = await run([PIDONE, "-s", "--", "sh", "-c", 'echo "$PATH"'], { cwd: dir, env: { PATH: "/usr/bin:/bin" } });
    expect(r).toEqual({ code: 0, stdout: "/usr/bin:/bin\n", stderr: "" });
  });
});
