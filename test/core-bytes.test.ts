// argv and the environment reach the child byte for byte: spaces, empty strings,
// unicode, and bytes that are not UTF-8 at all (Bun would replace those in process.argv
// and process.env).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { AS_PID1, PIDONE, cHelper, run } from "./helpers.ts";
import { hex, shq } from "./fixtures/core-lib.ts";

setDefaultTimeout(30_000);

// bash $'...' strings, so that the arguments are built from raw bytes, not from JS strings.
const ARGS_BASH = `'' 'a b' '  two  spaces ' $'\\xff' $'\\xfe\\xff\\x80' 'ünï cødé ✓' $'tab\\there' $'new\\nline' '' '-h' '--' '--version' '*' '$HOME'`;
const ARGS_BYTES: Uint8Array[] = [
  Buffer.from(""),
  Buffer.from("a b"),
  Buffer.from("  two  spaces "),
  Buffer.from([0xff]),
  Buffer.from([0xfe, 0xff, 0x80]),
  Buffer.from("ünï cødé ✓"),
  Buffer.from("tab\there"),
  Buffer.from("new\nline"),
  Buffer.from(""),
  Buffer.from("-h"),
  Buffer.from("--"),
  Buffer.from("--version"),
  Buffer.from("*"),
  Buffer.from("$HOME"),
];
const ENV_BASH = `export BAD_UTF8=$'\\xff\\xfe' LATIN1=$'caf\\xe9' UNICODE='ünï ✓' EMPTY= WITH_EQUALS='a=b=c' SPACES=' x  y '`;
const ENV_BYTES: Uint8Array[] = [
  Buffer.from([...Buffer.from("BAD_UTF8="), 0xff, 0xfe]),
  Buffer.from([...Buffer.from("LATIN1=caf"), 0xe9]),
  Buffer.from("UNICODE=ünï ✓"),
  Buffer.from("EMPTY="),
  Buffer.from("WITH_EQUALS=a=b=c"),
  Buffer.from("SPACES= x  y "),
];

interface Seen {
  argc: number;
  args: string[];
  env: string[];
}
function parse(stdout: string): Seen {
  return {
    argc: Number(/^argc (\d+)$/m.exec(stdout)?.[1]),
    args: [...stdout.matchAll(/^arg ([0-9a-f]*)$/gm)].map((m) => m[1]!),
    // bash's `_` names the program it ran, which differs between the two runs.
    env: [...stdout.matchAll(/^env ([0-9a-f]*)$/gm)].map((m) => m[1]!).filter((e) => !e.startsWith(hex("_="))),
  };
}

async function seen(prefix: string): Promise<{ direct: Seen; child: Seen }> {
  const args = await cHelper("core-args");
  const script = (cmd: string) => `${ENV_BASH}; exec ${cmd} "$0" ${ARGS_BASH}`;
  const direct = await run(["bash", "-c", script(""), args]);
  const child = await run(["bash", "-c", script(prefix), args]);
  expect(direct.code).toBe(0);
  expect({ code: child.code, stderr: child.stderr }).toEqual({ code: 0, stderr: "" });
  return { direct: parse(direct.stdout), child: parse(child.stdout) };
}

const WAYS = [
  { name: "not PID 1 (-s)", prefix: `${shq(PIDONE)} -s --` },
  { name: "as PID 1", prefix: `${AS_PID1.join(" ")} ${shq(PIDONE)} --` },
  { name: "without --", prefix: `${shq(PIDONE)} -s` },
];

describe("byte-exact argv", () => {
  for (const way of WAYS) {
    test(`spaces, empty strings, unicode, invalid UTF-8 and option-like words reach the child as they are, ${way.name}`, async () => {
      const { direct, child } = await seen(way.prefix);
      expect(child.args).toEqual(ARGS_BYTES.map(hex));
      expect(child.argc).toBe(ARGS_BYTES.length + 1);
      expect(child.args).toEqual(direct.args);
    });
  }

  test("a program name with invalid UTF-8 bytes is found and run", async () => {
    const args = await cHelper("core-args");
    const r = await run([
      "bash",
      "-c",
      `d=$(mktemp -d); ln -s "$0" "$d/"$'prog\\xff'; cd "$d"; ${shq(PIDONE)} -s -- ./$'prog\\xff' $'\\xff'; rc=$?; rm -r "$d"; exit $rc`,
      args,
    ]);
    expect(r.code).toBe(0);
    expect(parse(r.stdout).args).toEqual(["ff"]);
  });
});

describe("byte-exact environment", () => {
  for (const way of WAYS.slice(0, 2)) {
    test(`invalid UTF-8, latin-1, unicode, empty values and '=' in values reach the child as they are, ${way.name}`, async () => {
      const { direct, child } = await seen(way.prefix);
      for (const e of ENV_BYTES) expect(child.env).toContain(hex(e));
      // The whole environment, in order: nothing added, nothing dropped, nothing re-encoded.
      expect(child.env).toEqual(direct.env);
    });
  }
});
