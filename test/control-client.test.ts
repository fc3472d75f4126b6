// The control channel's client, `pidone --ctl COMMAND [ARGS]` and the file named
// pidonectl, in both of its forms: the single file's (its stub, without the runtime) and
// the plain file's (src/control/client.ts). Each runs against a fake server written here,
// which answers as src/native/protocol.ts's CONTROL says and records the bytes it got.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { CONTROL } from "../src/native/protocol.ts";
import { PIDONE, ROOT, cleanEnv, needs, run, start, tempDir, waitFor } from "./helpers.ts";
import { NATIVE, SINGLE_FILE } from "./fixtures/native-lib.ts";

setDefaultTimeout(60_000);

const PLAIN = [`${PIDONE}-glibc`, join(ROOT, "dist/pidone-glibc")].find((p) => existsSync(p));
const CLIENTS: Array<[string, string | undefined]> = [
  ["the single file's stub", NATIVE ? PIDONE : undefined],
  ["the plain file's client.ts", PLAIN],
];

const dir = tempDir("pidone-ctl-");
const enc = (s: string) => new Uint8Array(Buffer.from(s));
const request = (...args: string[]) => Buffer.concat([enc(`${CONTROL.HEADER} ${args.length}\n`), ...args.map((a) => enc(`${a}\0`))]);

interface Fake {
  path: string;
  /** Every complete request, as bytes. */
  requests: Buffer[];
  /** What came after a complete request (nothing, from a client). */
  late: Buffer[];
  stop(): void;
}

/**
 * A server on a fresh socket: `answer` gets the request's words and returns the bytes to
 * send back (then the server closes, `lingerMs` later), or null to keep the connection
 * open in silence.
 */
let serial = 0;
const servers: Fake[] = [];
function fakeServer(answer: (words: string[]) => Uint8Array | null, lingerMs = 0): Fake {
  const path = join(dir, `s${serial++}.sock`);
  const requests: Buffer[] = [];
  const late: Buffer[] = [];
  const state = new Map<Socket<unknown>, { got: Buffer; out: Uint8Array; done?: boolean }>();
  const pump = (s: Socket<unknown>) => {
    const st = state.get(s)!;
    while (st.out.length) {
      const n = s.write(st.out);
      if (n <= 0) return;
      st.out = st.out.subarray(n);
    }
    if (lingerMs) setTimeout(() => s.end(), lingerMs);
    else s.end();
  };
  const listener = Bun.listen({
    unix: path,
    socket: {
      open: (s) => void state.set(s, { got: Buffer.alloc(0), out: new Uint8Array(0) }),
      data(s, chunk) {
        const st = state.get(s)!;
        if (st.done) return void late.push(Buffer.from(chunk));
        st.got = Buffer.concat([st.got, chunk]);
        const nl = st.got.indexOf(0x0a);
        if (nl < 0) return;
        const count = Number(st.got.subarray(0, nl).toString().split(" ").pop());
        const body = st.got.subarray(nl + 1);
        const words = body.toString().split("\0");
        if (words.length - 1 < count) return;
        requests.push(st.got);
        st.done = true;
        const reply = answer(words.slice(0, count));
        if (reply === null) return;
        st.out = reply;
        pump(s);
      },
      drain: pump,
    },
  });
  const fake = { path, requests, late, stop: () => listener.stop(true) };
  servers.push(fake);
  return fake;
}

afterAll(() => {
  for (const s of servers) s.stop();
});

/** A server that answers `status` with a table, `fail` with 1 and `usage` with 2. */
function statusServer(): Fake {
  return fakeServer((words) => {
    if (words[0] === "fail") return enc("1\nrefused: no service named x\n");
    if (words[0] === "usage") return enc("2\nunknown command: usage\n");
    return enc("0\nNAME  STATE\nweb   running\n");
  });
}

const noAnswer = (path: string) => `pidone: no pidone answering at ${path} (`;

for (const [label, bin] of CLIENTS) {
  const available = needs(bin !== undefined, label === CLIENTS[0]![0] ? SINGLE_FILE : "dist/pidone-glibc (npm run build)");
  available(`pidone --ctl, ${label}`, () => {
    const pidone = bin!;

    test("copies a 0 answer to stdout and exits 0; the request is the words after the options", async () => {
      const s = statusServer();
      const r = await run([pidone, "--ctl", "--control", s.path, "status", "--json"]);
      expect(r).toEqual({ code: 0, stdout: "NAME  STATE\nweb   running\n", stderr: "" });
      expect(s.requests).toEqual([request("status", "--json")]);
    });

    test("copies any other answer to stderr and exits with its code", async () => {
      const s = statusServer();
      expect(await run([pidone, "--ctl", "--control", s.path, "fail", "x"])).toEqual({
        code: 1,
        stdout: "",
        stderr: "refused: no service named x\n",
      });
      expect(await run([pidone, "--ctl", "--control", s.path, "usage"])).toEqual({ code: 2, stdout: "", stderr: "unknown command: usage\n" });
    });

    test("sends every word byte for byte: non-ASCII, empty, spaces, an option-like word", async () => {
      const s = statusServer();
      const words = ["signal", "wéb-日本", "", "a b", "--control", "-h", "SIGUSR1"];
      const r = await run([pidone, "--ctl", "--control", s.path, ...words]);
      expect(r.code).toBe(0);
      expect(s.requests).toEqual([request(...words)]);
    });

    test("the socket: --control PATH or =PATH, before or after --ctl, over PIDONE_CONTROL", async () => {
      const s = statusServer();
      const other = statusServer();
      const env = { [CONTROL.PATH_VARIABLE]: other.path };
      for (const argv of [
        ["--control", s.path, "--ctl", "status"],
        [`--control=${s.path}`, "--ctl", "status"],
        ["--ctl", `--control=${s.path}`, "status"],
        ["--ctl", "--control", "/nowhere", "--control", s.path, "status"],
      ]) {
        const r = await run([pidone, ...argv], { env });
        expect({ argv, ...r }).toEqual({ argv, code: 0, stdout: "NAME  STATE\nweb   running\n", stderr: "" });
      }
      expect(s.requests.length).toBe(4);
      expect(other.requests.length).toBe(0);
      expect((await run([pidone, "--ctl", "status"], { env })).code).toBe(0);
      expect(other.requests).toEqual([request("status")]);
    });

    test("a 1 MB answer arrives whole", async () => {
      const big = Buffer.alloc(1 << 20);
      for (let i = 0; i < big.length; i++) big[i] = 0x61 + (i % 26);
      const s = fakeServer(() => Buffer.concat([enc("0\n"), big]));
      const p = Bun.spawn([pidone, "--ctl", "--control", s.path, "status"], { env: cleanEnv({}), stdout: "pipe", stderr: "pipe" });
      const [out, err] = await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).text()]);
      expect(await p.exited).toBe(0);
      expect(err).toBe("");
      expect(Buffer.from(out).equals(big)).toBe(true);
    });

    test("a reader gone from stdout does not kill the client (no SIGPIPE): it exits with the answer's code", async () => {
      const s = fakeServer(() => Buffer.concat([enc("0\n"), Buffer.alloc(1 << 20, 0x61)]));
      const r = await run(["bash", "-c", 'set -o pipefail; "$0" --ctl --control "$1" status | head -c 10 >/dev/null', pidone, s.path]);
      expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    });

    test("with stdout closed, the socket never takes its place", async () => {
      // It stays open a while after its answer: what the client writes back arrives.
      const s = fakeServer((words) => enc(words[0] === "fail" ? "1\nrefused: no service named x\n" : "0\nweb running\n"), 300);
      const r = await run(["sh", "-c", 'exec "$0" --ctl --control "$1" status >&-', pidone, s.path]);
      expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
      const f = await run(["sh", "-c", 'exec "$0" --ctl --control "$1" fail x >&-', pidone, s.path]);
      expect(f).toEqual({ code: 1, stdout: "", stderr: "refused: no service named x\n" });
      expect(s.requests).toEqual([request("status"), request("fail", "x")]);
      expect(s.late).toEqual([]);
    });

    test("no server: exit 3 naming the socket; `health` exits 1 with the same line", async () => {
      const path = join(dir, "nothing.sock");
      const r = await run([pidone, "--ctl", "--control", path, "status"]);
      expect(r).toEqual({ code: CONTROL.NO_ANSWER, stdout: "", stderr: `${noAnswer(path)}no such file or directory)\n` });
      const h = await run([pidone, "--ctl", "--control", path, "health"]);
      expect(h).toEqual({ code: CONTROL.FAILED, stdout: "", stderr: r.stderr });
    });

    test("no server at the default path, or at PIDONE_CONTROL's", async () => {
      if (!existsSync(CONTROL.DEFAULT_PATH)) {
        const r = await run([pidone, "--ctl", "status"], { env: { [CONTROL.PATH_VARIABLE]: undefined } });
        expect(r.code).toBe(CONTROL.NO_ANSWER);
        expect(r.stderr).toBe(`${noAnswer(CONTROL.DEFAULT_PATH)}no such file or directory)\n`);
      }
      const path = join(dir, "env-nothing.sock");
      const r = await run([pidone, "--ctl", "status"], { env: { [CONTROL.PATH_VARIABLE]: path } });
      expect(r.stderr).toBe(`${noAnswer(path)}no such file or directory)\n`);
    });

    test("a socket file nobody listens on (left by an earlier run): exit 3, connection refused", async () => {
      const path = join(dir, `stale-${serial++}.sock`);
      // A listener killed outright leaves its socket file behind.
      const code = `Bun.listen({ unix: ${JSON.stringify(path)}, socket: { data() {} } }); console.log("up")`;
      const holder = start([process.execPath, "-e", code]);
      await holder.waitStdout("up");
      holder.proc.kill("SIGKILL");
      await holder.exit();
      expect(existsSync(path)).toBe(true);
      const r = await run([pidone, "--ctl", "--control", path, "status"]);
      expect(r).toEqual({ code: CONTROL.NO_ANSWER, stdout: "", stderr: `${noAnswer(path)}connection refused)\n` });
    });

    test("a server that closes without an answer, or answers something else: exit 3", async () => {
      const closes = fakeServer(() => new Uint8Array(0));
      const r = await run([pidone, "--ctl", "--control", closes.path, "status"]);
      expect(r).toEqual({ code: CONTROL.NO_ANSWER, stdout: "", stderr: `${noAnswer(closes.path)}closed without an answer)\n` });
      for (const reply of ["HTTP/1.1 400 Bad Request\r\n\r\n", "256\n", "1234\n", "\n", "0 \n", "7"]) {
        const other = fakeServer(() => enc(reply));
        const h = await run([pidone, "--ctl", "--control", other.path, "health"]);
        expect({ reply, ...h }).toEqual({ reply, code: CONTROL.FAILED, stdout: "", stderr: `${noAnswer(other.path)}not a pidone answer)\n` });
      }
    });

    test("usage: no command exits 2 with the usage on stderr; -h and --help print it on stdout", async () => {
      const none = await run([pidone, "--ctl"]);
      expect(none.code).toBe(CONTROL.USAGE);
      expect(none.stdout).toBe("");
      expect(none.stderr).toStartWith("Usage: pidone --ctl [--control PATH] COMMAND [ARGS...]\n");
      for (const h of ["-h", "--help"]) {
        const r = await run([pidone, "--ctl", "--control", "/nowhere", h]);
        expect(r).toEqual({ code: 0, stdout: none.stderr, stderr: "" });
      }
      for (const c of ["status [NAME...] [--json]", "start NAME", "stop NAME", "restart NAME", "signal NAME SIGNAL", "health"])
        expect(none.stderr).toContain(c);
      expect(none.stderr).toContain(`--control PATH, else $${CONTROL.PATH_VARIABLE}, else ${CONTROL.DEFAULT_PATH}`);
    });

    test("usage errors exit 2 (`health`: 1) with one line, and nothing is sent", async () => {
      const s = statusServer();
      const cases: Array<[string[], Record<string, string>, string]> = [
        [["--ctl", "--control"], {}, "pidone: option '--control' requires an argument"],
        [["--ctl", "--control", "none", "status"], {}, "pidone: --control none: the control socket is off, there is no pidone to ask"],
        [["--ctl", "--control=", "status"], {}, "pidone: --control needs a path"],
        [["--ctl", "status"], { [CONTROL.PATH_VARIABLE]: "none" }, `pidone: ${CONTROL.PATH_VARIABLE}=none: the control socket is off, there is no pidone to ask`],
        [["--ctl", "--control", `/${"x".repeat(107)}`, "status"], {}, "pidone: the control socket's path is too long (108 bytes, at most 107)"],
        [["--ctl", "--control", s.path, "status", "x".repeat(CONTROL.REQUEST_MAX)], {}, `pidone: the request is too long (${CONTROL.REQUEST_MAX + 23} bytes, at most ${CONTROL.REQUEST_MAX})`],
      ];
      for (const [argv, env, line] of cases) {
        const r = await run([pidone, ...argv], { env });
        expect({ argv, ...r }).toEqual({ argv, code: CONTROL.USAGE, stdout: "", stderr: `${line}\n` });
      }
      const h = await run([pidone, "--ctl", "--control", "none", "health"]);
      expect(h.code).toBe(CONTROL.FAILED);
      expect(s.requests).toEqual([]);
    });

    test("the file named pidonectl (a symlink) is pidone --ctl", async () => {
      const s = statusServer();
      const link = join(tempDir("pidone-ctl-link-"), CONTROL.CLIENT_NAME);
      symlinkSync(pidone, link);
      expect(await run([link, "--control", s.path, "status", "web"])).toEqual({ code: 0, stdout: "NAME  STATE\nweb   running\n", stderr: "" });
      expect(s.requests).toEqual([request("status", "web")]);
      expect((await run([link, "restart", "web"], { env: { [CONTROL.PATH_VARIABLE]: s.path } })).code).toBe(0);
      expect(s.requests[1]).toEqual(request("restart", "web"));
      const usage = await run([link]);
      expect(usage.code).toBe(CONTROL.USAGE);
      expect(usage.stderr).toStartWith("Usage: ");
      expect((await run([link, "-h"])).stdout).toBe(usage.stderr);
    });
  });
}

needs(NATIVE, SINGLE_FILE)("pidone --ctl costs no runtime in the single file", () => {
  test("it runs under limits that refuse the runtime's start: 4 descriptors, 16 MiB of data", async () => {
    const s = statusServer();
    // RLIMIT_DATA below the file's own writable segments (about 4 MiB, growing with the
    // bundle) would fail the exec itself; 16 MiB lets the stub run and refuse the runtime.
    const limits = "ulimit -n 4; ulimit -d 16384;";
    const r = await run(["sh", "-c", `${limits} exec "$0" --ctl --control "$1" status`, PIDONE, s.path]);
    expect(r).toEqual({ code: 0, stdout: "NAME  STATE\nweb   running\n", stderr: "" });
    // The runtime does not start there: the stub's limits check refuses it first.
    const whole = await run(["sh", "-c", `${limits} exec "$0" --version`, PIDONE]);
    expect(whole.code).toBe(1);
    expect(whole.stderr).toContain("RLIMIT_DATA");
  });
});

describe.skipIf(!PLAIN || !NATIVE)("both clients", () => {
  test("print the same usage", async () => {
    const [a, b] = await Promise.all([run([PIDONE, "--ctl", "-h"]), run([PLAIN!, "--ctl", "-h"])]);
    expect(a.code).toBe(0);
    expect(b).toEqual(a);
  });

  test(
    "give up on a server that accepts and never answers after the client's timeout: 3, `health` 1",
    async () => {
      const s = fakeServer(() => null);
      const started = Date.now();
      const runs = [PIDONE, PLAIN!].flatMap((bin) => [
        start([bin, "--ctl", "--control", s.path, "status"]),
        start([bin, "--ctl", "--control", s.path, "health"]),
      ]);
      await waitFor(() => s.requests.length === runs.length, 20_000, "the four requests");
      // Still waiting well into the timeout.
      await Bun.sleep(2000);
      for (const p of runs) expect(p.proc.exitCode).toBeNull();
      const codes = await Promise.all(runs.map((p) => p.exit(CONTROL.CLIENT_TIMEOUT_MS + 30_000)));
      expect(Date.now() - started).toBeGreaterThanOrEqual(CONTROL.CLIENT_TIMEOUT_MS - 500);
      expect(codes).toEqual([CONTROL.NO_ANSWER, CONTROL.FAILED, CONTROL.NO_ANSWER, CONTROL.FAILED]);
      for (const p of runs) expect(p.stderr()).toBe(`${noAnswer(s.path)}no answer within ${CONTROL.CLIENT_TIMEOUT_MS / 1000} s)\n`);
    },
    CONTROL.CLIENT_TIMEOUT_MS + 60_000,
  );
});
