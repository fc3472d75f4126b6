import { describe, expect, test } from "bun:test";
import { checkServiceName, parseProcfile, parseServiceLine } from "../src/config/procfile.ts";

describe("Procfile", () => {
  test("NAME: COMMAND lines, with comments, blank lines and CRLF endings skipped", () => {
    const text = [
      "# the web tier",
      "web: bundle exec puma -b tcp://0.0.0.0:8080",
      "",
      "   ",
      "  worker:python -m worker   --queue a:b  ",
      "\t# indented comment",
      "clock: sh -c 'echo \"# not a comment\"'\r",
    ].join("\n");
    expect(parseProcfile(text)).toEqual([
      { ok: true, entry: { name: "web", command: "bundle exec puma -b tcp://0.0.0.0:8080", line: 2 } },
      { ok: true, entry: { name: "worker", command: "python -m worker   --queue a:b", line: 5 } },
      { ok: true, entry: { name: "clock", command: "sh -c 'echo \"# not a comment\"'", line: 7 } },
    ]);
  });

  test("every bad line is reported with its own line number", () => {
    const text = "web: ok\nno colon here\nbad name: x\n: nameless\nempty:\n-dash: x\nweb.v2: fine\n";
    expect(parseProcfile(text)).toEqual([
      { ok: true, entry: { name: "web", command: "ok", line: 1 } },
      { ok: false, line: 2, message: 'expected "NAME: COMMAND", got "no colon here"' },
      { ok: false, line: 3, message: 'service name "bad name" may hold only letters, digits, "_", "." and "-" (and not start with "." or "-")' },
      { ok: false, line: 4, message: "a service needs a name" },
      { ok: false, line: 5, message: 'service "empty" has an empty command' },
      { ok: false, line: 6, message: 'service name "-dash" may hold only letters, digits, "_", "." and "-" (and not start with "." or "-")' },
      { ok: true, entry: { name: "web.v2", command: "fine", line: 7 } },
    ]);
  });

  test("an empty file has no entries", () => {
    expect(parseProcfile("")).toEqual([]);
    expect(parseProcfile("# only\n\n")).toEqual([]);
  });
});

describe("--service values", () => {
  test("split at the first colon, the command keeps the rest", () => {
    expect(parseServiceLine("sshd: /usr/sbin/sshd -D -e")).toEqual({
      ok: true,
      entry: { name: "sshd", command: "/usr/sbin/sshd -D -e", line: 1 },
    });
    expect(parseServiceLine("app:node server.js --listen :8080")).toEqual({
      ok: true,
      entry: { name: "app", command: "node server.js --listen :8080", line: 1 },
    });
  });
  test("refuses a value without a name or a command", () => {
    expect(parseServiceLine("sleep 10")).toEqual({ ok: false, line: 1, message: 'expected "NAME: COMMAND", got "sleep 10"' });
    expect(parseServiceLine("x:   ")).toEqual({ ok: false, line: 1, message: 'service "x" has an empty command' });
  });
});

describe("service names", () => {
  test("letters, digits, _ . - up to 64 characters, not starting with . or -", () => {
    for (const ok of ["web", "Web_2", "a.b-c", "_x", "9", "x".repeat(64)]) expect(checkServiceName(ok)).toBeNull();
    for (const bad of ["", ".hidden", "-x", "a b", "a/b", "a:b", "é", "a|b"]) expect(checkServiceName(bad)).not.toBeNull();
    expect(checkServiceName("x".repeat(65))).toBe(`service name "${"x".repeat(20)}…" is longer than 64 characters`);
  });
});
