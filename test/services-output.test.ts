// The service output multiplexer (issue 6, "Output"): real writer processes started with
// pidone's own spawn() write into pipes; the mux writes to pipes (or a file) that the
// test reads back and parses.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OutputMux, type OutputOptions } from "../src/services/output.ts";
import { JsonFormatter, PrefixFormatter, prefixBytes, type LineTarget } from "../src/services/output-format.ts";
import { close, pipe, sigset, spawn, waitpid, WNOHANG } from "../src/sys/libc.ts";
import { tempDir, waitFor } from "./helpers.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const SIGPIPE = 13;

/** Starts argv with the given descriptors as its fd 0, 1, 2 (through pidone's own spawn()). */
function spawnWith(argv: string[], fds: { stdin?: number; stdout?: number; stderr?: number }): number {
  const actions = (
    [
      [fds.stdin, 0],
      [fds.stdout, 1],
      [fds.stderr, 2],
    ] as const
  ).flatMap(([from, to]) => (from === undefined ? [] : [{ kind: "dup2" as const, from, to }]));
  return spawn({
    file: enc(argv[0]!),
    search: true,
    argv: argv.map(enc),
    envp: [enc(`PATH=${process.env.PATH ?? "/usr/bin:/bin"}`)],
    newProcessGroup: false,
    foreground: false,
    sigmask: sigset([]),
    sigdefault: sigset([SIGPIPE]),
    keepFds: [],
    actions,
  });
}
const spawnWriter = (argv: string[], stdout: number, stderr?: number) => spawnWith(argv, { stdout, stderr });

const children = new Set<number>();
/** Exit status of a writer, reaped without blocking the event loop. */
async function reaped(pid: number, timeoutMs = 20_000): Promise<number> {
  const r = await waitFor(() => waitpid(pid, WNOHANG), timeoutMs, `writer ${pid} to exit`);
  children.delete(pid);
  return typeof r === "object" && r ? r.status : -1;
}
afterEach(async () => {
  for (const pid of children) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
    await reaped(pid).catch(() => {});
  }
});

/** A service writing `file`'s bytes (and optionally `errFile`'s to stderr), attached to the mux. */
function service(mux: OutputMux, name: string, file: string, errFile?: string): number {
  const [r, w] = pipe();
  let pid: number;
  if (errFile) {
    const [er, ew] = pipe();
    pid = spawnWriter(["sh", "-c", 'cat "$0"; cat "$1" >&2', file, errFile], w, ew);
    close(ew);
    mux.attach(name, "stderr", er);
  } else {
    pid = spawnWriter(["cat", file], w);
  }
  close(w);
  mux.attach(name, "stdout", r);
  children.add(pid);
  return pid;
}

/**
 * pidone's stdout as a pipe whose reader is a separate `cat` copying into a file, as a
 * container runtime's log copier would be. With `start: false` nobody reads the pipe until
 * resume(): a stuck reader.
 */
interface Capture {
  fd: number;
  resume(): void;
  /** The bytes the reader has copied so far. */
  bytes(): Buffer;
  /** Closes the write end and returns everything once the reader has finished. */
  finish(): Promise<Buffer>;
}
function capture(options: { start?: boolean } = {}): Capture {
  const [r, w] = pipe();
  const file = join(tempDir("pidone-output-"), "captured");
  writeFileSync(file, "");
  let reader: number | null = null;
  const resume = () => {
    if (reader !== null) return;
    const fileFd = openSync(file, "w");
    reader = spawnWith(["cat"], { stdin: r, stdout: fileFd });
    children.add(reader);
    close(fileFd);
    close(r);
  };
  if (options.start !== false) resume();
  return {
    fd: w,
    resume,
    bytes: () => readFileSync(file),
    async finish() {
      close(w);
      resume();
      expect(await reaped(reader!)).toBe(0);
      return readFileSync(file);
    },
  };
}

function fileWith(content: string | Buffer): string {
  const p = join(tempDir("pidone-output-"), "data");
  writeFileSync(p, content);
  return p;
}

function muxTo(out: Capture, err: Capture | null, opts: Partial<OutputOptions> = {}): OutputMux {
  return new OutputMux({
    format: "prefix",
    names: ["web", "worker"],
    color: false,
    stdoutFd: out.fd,
    stderrFd: err ? err.fd : out.fd,
    ...opts,
  });
}

/** Runs services to completion through a fresh mux; returns stdout and stderr as text lines. */
async function runServices(
  opts: Partial<OutputOptions>,
  services: { name: string; out: string | Buffer; err?: string | Buffer }[],
): Promise<{ out: Buffer; err: Buffer; dropped: { droppedLines: number; droppedBytes: number } }> {
  const out = capture();
  const err = capture();
  const mux = muxTo(out, err, { names: services.map((s) => s.name), ...opts });
  const pids = services.map((s) =>
    service(mux, s.name, fileWith(s.out), s.err === undefined ? undefined : fileWith(s.err)),
  );
  for (const pid of pids) expect(await reaped(pid)).toBe(0);
  const dropped = await mux.drain(10_000);
  return { out: await out.finish(), err: await err.finish(), dropped };
}

const linesOf = (b: Buffer) => {
  const text = b.toString("latin1");
  expect(text.endsWith("\n") || text === "").toBe(true);
  return text === "" ? [] : text.slice(0, -1).split("\n");
};

describe("prefix format", () => {
  test("each line goes to the same stream as `NAME | line`, names padded to one width", async () => {
    const r = await runServices({}, [
      { name: "web", out: "hello\nworld\n", err: "oops\n" },
      { name: "background", out: "tick\n" },
    ]);
    // "background" (10) is the longest name, longer than "pidone" (6).
    expect(linesOf(r.out).sort()).toEqual(["background | tick", "web        | hello", "web        | world"]);
    expect(linesOf(r.err)).toEqual(["web        | oops"]);
    expect(r.dropped).toEqual({ droppedLines: 0, droppedBytes: 0 });
  });

  test("names shorter than `pidone` are padded to its width; events follow the output they report on", async () => {
    const out = capture();
    const mux = muxTo(out, null, { names: ["a", "bb"] });
    const pid = service(mux, "bb", fileWith("x\n"));
    await reaped(pid);
    await mux.outputEnded("bb"); // the exit report follows the service's last line
    mux.event("bb", "exited (status 0)", { event: "exited", code: 0 });
    mux.event(null, "stopping: bb ended", { event: "stopping" });
    await mux.drain(5_000);
    expect(linesOf(await out.finish())).toEqual([
      "bb     | x",
      "pidone | bb: exited (status 0)",
      "pidone | stopping: bb ended",
    ]);
  });

  test("without colour no escape sequence is written; with colour each service gets its own", async () => {
    const plain = await runServices({ color: false }, [{ name: "web", out: "a\n" }]);
    expect(plain.out.includes(0x1b)).toBe(false);
    const coloured = await runServices({ color: true, names: ["web", "db"] }, [
      { name: "web", out: "a\n" },
      { name: "db", out: "b\n" },
    ]);
    const lines = linesOf(coloured.out).sort();
    expect(lines).toEqual(["\x1b[33mdb     |\x1b[0m b", "\x1b[36mweb    |\x1b[0m a"]);
  });

  test("a last line without a newline is still written, with one", async () => {
    const r = await runServices({}, [{ name: "web", out: "first\nlast" }]);
    expect(r.out.toString()).toBe("web    | first\nweb    | last\n");
  });

  test("bytes that are not UTF-8 pass through untouched", async () => {
    const raw = Buffer.from([0xff, 0xfe, 0x41, 0x0d, 0x1b, 0x5b, 0x6d, 0x0a]);
    const r = await runServices({}, [{ name: "web", out: raw }]);
    expect(r.out).toEqual(Buffer.concat([Buffer.from("web    | "), raw]));
  });
});

describe("long lines", () => {
  const MAX = 64 * 1024;

  test("a line of exactly 64 KiB stays whole; longer ones are cut into 64 KiB pieces marked with …", async () => {
    const exact = "a".repeat(MAX);
    const long = "b".repeat(3 * MAX + 100);
    const r = await runServices({}, [{ name: "web", out: `${exact}\n${long}\nend\n` }]);
    const lines = linesOf(r.out).map((l) => Buffer.from(l, "latin1").toString());
    const prefix = "web    | ";
    expect(lines.length).toBe(6);
    expect(lines[0]).toBe(prefix + exact);
    for (const piece of lines.slice(1, 4)) expect(piece).toBe(`${prefix}${"b".repeat(MAX)} …`);
    expect(lines[4]).toBe(prefix + "b".repeat(100));
    expect(lines[5]).toBe(`${prefix}end`);
  });

  test("a long line without a newline at EOF is cut the same way", async () => {
    const r = await runServices({}, [{ name: "web", out: "c".repeat(MAX + 5) }]);
    expect(linesOf(r.out).map((l) => Buffer.from(l, "latin1").toString())).toEqual([
      `web    | ${"c".repeat(MAX)} …`,
      "web    | ccccc",
    ]);
  });

  test("pieces end on a UTF-8 character boundary", async () => {
    // 'é' is 2 bytes: with one ASCII byte first, byte 65536 would split a character.
    const line = `x${"é".repeat(MAX)}`;
    const r = await runServices({ format: "json" }, [{ name: "web", out: `${line}\n` }]);
    const objs = linesOf(r.out).map((l) => JSON.parse(Buffer.from(l, "latin1").toString()));
    expect(objs.map((o) => o.line).join("")).toBe(line);
    expect(objs.slice(0, -1).every((o) => o.partial === true && Buffer.byteLength(o.line) <= MAX)).toBe(true);
    expect(objs.at(-1).partial).toBeUndefined();
    expect(objs.every((o) => !o.line.includes("\ufffd") && o.line_base64 === undefined)).toBe(true);
  });
});

describe("json format", () => {
  const parse = (b: Buffer) => linesOf(b).map((l) => JSON.parse(Buffer.from(l, "latin1").toString()));

  test("one object per line with ts, service, stream and the exact line, all on stdout", async () => {
    const tricky = 'quote " backslash \\ tab \t cr \r bell \x07 esc \x1b del \x7f unicode ü€😀';
    const r = await runServices({ format: "json" }, [{ name: "web", out: `${tricky}\nplain\n`, err: "to stderr\n" }]);
    expect(r.err.length).toBe(0);
    const objs = parse(r.out);
    expect(objs.length).toBe(3);
    for (const o of objs) {
      expect(Object.keys(o).slice(0, 4)).toEqual(["ts", "service", "stream", "line"]);
      expect(o.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Math.abs(Date.parse(o.ts) - Date.now())).toBeLessThan(60_000);
      expect(o.service).toBe("web");
    }
    const byLine = new Map(objs.map((o) => [o.line, o.stream]));
    expect(byLine.get(tricky)).toBe("stdout");
    expect(byLine.get("plain")).toBe("stdout");
    expect(byLine.get("to stderr")).toBe("stderr");
  });

  test("invalid UTF-8 becomes U+FFFD in `line` and the exact bytes are kept in `line_base64`", async () => {
    const bad = Buffer.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xe2, 0x82, 0x0a]);
    const r = await runServices({ format: "json" }, [{ name: "web", out: Buffer.concat([bad, Buffer.from("ok\n")]) }]);
    // Strict UTF-8 first: the output itself must be valid.
    const text = new TextDecoder("utf-8", { fatal: true }).decode(r.out);
    const objs = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(objs[0].line).toBe(new TextDecoder().decode(bad.subarray(0, -1))); // same replacement as the WHATWG decoder
    expect(Buffer.from(objs[0].line_base64, "base64")).toEqual(bad.subarray(0, -1));
    expect(objs[1]).toMatchObject({ line: "ok" });
    expect(objs[1].line_base64).toBeUndefined();
  });

  test("invalid UTF-8 of every kind is replaced exactly as the WHATWG decoder does, and kept in base64", () => {
    const cases = [
      [0x80], // stray continuation
      [0xc0, 0xaf], // overlong
      [0xc2], // truncated at the end
      [0xe0, 0x80, 0xaf], // overlong 3-byte
      [0xe2, 0x82], // truncated 3-byte
      [0xed, 0xa0, 0x80], // surrogate
      [0xf0, 0x8f, 0xbf, 0xbf], // overlong 4-byte
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0xf5, 0x80], // never a lead byte
      [0xf0, 0x9f, 0x98], // truncated emoji
      [0xff, 0xfe, 0xfd],
    ];
    const fmt = new JsonFormatter("web", "stdout");
    for (const bad of cases) {
      for (const bytes of [
        Buffer.from(bad),
        Buffer.concat([Buffer.from("a\u00e9"), Buffer.from(bad), Buffer.from("\u{1F600}z")]),
      ]) {
        const out: LineTarget = { buf: Buffer.alloc(4096), len: 0, room() {} };
        fmt.line(out, bytes, 0, bytes.length, false);
        const text = new TextDecoder("utf-8", { fatal: true }).decode(out.buf.subarray(0, out.len));
        const obj = JSON.parse(text);
        expect(obj.line).toBe(new TextDecoder().decode(bytes));
        expect(Buffer.from(obj.line_base64, "base64")).toEqual(bytes);
      }
    }
  });

  test("long lines (past the regular-expression scan's threshold) are escaped and replaced exactly as short ones", () => {
    // Every kind of byte, long runs of plain text between them, lines of 500 to 5,000 bytes.
    const pieces = ["plain text ", '"', "\\", "\t", "\u0001", "\u001f", "\u00e9", "\u20ac", "\u{1F600}", "\u007f"];
    const invalid = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80]];
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const fmt = new JsonFormatter("web", "stdout");
    for (let round = 0; round < 60; round++) {
      const parts: Buffer[] = [];
      const target = 500 + rand(4500);
      let len = 0;
      while (len < target) {
        const p =
          round % 3 === 0 && rand(20) === 0
            ? Buffer.from(invalid[rand(invalid.length)]!)
            : Buffer.from(rand(4) === 0 ? pieces[rand(pieces.length)]! : "x".repeat(1 + rand(300)));
        parts.push(p);
        len += p.length;
      }
      const bytes = Buffer.concat(parts);
      const out: LineTarget = { buf: Buffer.alloc(bytes.length * 8 + 256), len: 0, room() {} };
      fmt.line(out, bytes, 0, bytes.length, false);
      const obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(out.buf.subarray(0, out.len)));
      expect(obj.line).toBe(new TextDecoder().decode(bytes));
      if (obj.line_base64 !== undefined) expect(Buffer.from(obj.line_base64, "base64")).toEqual(bytes);
      else expect(Buffer.from(obj.line)).toEqual(bytes);
      // The block path (whole lines, already checked to be UTF-8) agrees with the single-line path.
      if (obj.line_base64 === undefined && !bytes.includes(10)) {
        const block: LineTarget = { buf: Buffer.alloc(bytes.length * 8 + 256), len: 0, room() {} };
        const withNl = Buffer.concat([bytes, Buffer.from("\n")]);
        fmt.lines(block, withNl, 0, withNl.length);
        expect(block.buf.subarray(0, block.len)).toEqual(out.buf.subarray(0, out.len));
      }
    }
  });

  test("pidone's events are JSON lines too, and fields never override ts, service or message", async () => {
    const out = capture();
    const mux = muxTo(out, null, { format: "json" });
    mux.event("web", "started (pid 42)", { event: "started", pid: 42, ready: false, note: null, service: "spoofed" });
    mux.event(null, "stopping: SIGTERM");
    await mux.drain(5_000);
    const [a, b] = parse(await out.finish());
    expect(a).toEqual({
      ts: a.ts,
      service: "web",
      event: "started",
      message: "started (pid 42)",
      pid: 42,
      ready: false,
      note: null,
    });
    expect(a.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(b).toEqual({ ts: b.ts, service: "pidone", event: "stopping: SIGTERM", message: "stopping: SIGTERM" });
  });
});

describe("every line length", () => {
  // Lengths around the formatters' switch from byte loops to native calls (128) and past it.
  const alphabet = ["a", "é", '"', "\\", "\t", "\u{1F600}", "\x1b", "z"];
  const make = (n: number) => {
    let line = "";
    for (let i = 0; Buffer.byteLength(line) < n; i++) line += alphabet[(i * 7 + n) % alphabet.length];
    return line;
  };
  const lines = Array.from({ length: 400 }, (_, n) => make(n));

  test("prefix: lines of 0 to 400 bytes come out byte for byte", async () => {
    const r = await runServices({ names: ["web"] }, [{ name: "web", out: lines.join("\n") + "\n" }]);
    expect(r.out.toString()).toBe(lines.map((l) => `web    | ${l}\n`).join(""));
  });

  test("json: lines of 0 to 400 bytes parse back to themselves", async () => {
    const r = await runServices({ format: "json", names: ["web"] }, [{ name: "web", out: lines.join("\n") + "\n" }]);
    const got = r.out
      .toString()
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l).line);
    expect(got).toEqual(lines);
  });
});

describe("the formatters' word-at-a-time loops", () => {
  // They read and write four or eight bytes at a time and look for the newline (and, in
  // JSON, the bytes to escape) in whole words: every special byte at every position in a
  // word, lines of every length around SHORT_LINE (128), blocks ending anywhere near the end
  // of their buffer, and output buffers that fill up mid-block must all give exact bytes.
  const pieces = ["a", "bc", "def", '"', "\\", "\t", "\n", "\u0001", "\u001f", "\u007f", "\u00e9", "\u20ac", "\u{1F600}", " "];
  let seed = 11;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const randomLine = () => {
    const target = [rand(12), rand(140), 120 + rand(16), rand(400)][rand(4)]!;
    let line = "";
    while (Buffer.byteLength(line) < target) line += rand(3) === 0 ? pieces[rand(pieces.length)]! : "x".repeat(1 + rand(9));
    return line.replaceAll("\n", "");
  };
  /** A LineTarget that hands out small buffers, so that blocks span several of them. */
  const smallTarget = () => {
    const done: Buffer[] = [];
    const t = {
      buf: Buffer.alloc(4096, 0xee),
      len: 0,
      room(n: number) {
        if (t.buf.length - t.len >= n) return;
        done.push(Buffer.from(t.buf.subarray(0, t.len)));
        t.buf = Buffer.alloc(Math.max(4096, n), 0xee);
        t.len = 0;
      },
      bytes: () => Buffer.concat([...done, t.buf.subarray(0, t.len)]),
    };
    return t;
  };
  /** The block inside a larger buffer (at an odd offset of its memory): `before` newlines ahead of it, `after` bytes of text behind it. */
  const embed = (block: Buffer, before: number, after: number) => {
    const whole = Buffer.alloc(3 + before + block.length + after, 0x79);
    whole.fill(0x0a, 0, 3 + before);
    block.copy(whole, 3 + before);
    return whole.subarray(3);
  };

  test("prefix and JSON of random lines are byte for byte what a plain reference gives", () => {
    const ms = Date.UTC(2024, 4, 1, 12, 34, 56, 789);
    for (let round = 0; round < 150; round++) {
      const lines = Array.from({ length: 1 + rand(60) }, randomLine);
      const block = Buffer.from(lines.map((l) => `${l}\n`).join(""));
      const before = rand(9);
      const after = rand(3) === 0 ? 0 : rand(150);
      const src = embed(block, before, after);
      // Short names and one whose JSON head is longer than 96 bytes (another path).
      const name = ["web", "a\"b", "s\u00e9rvice-\u20ac", "a-service-name-long-enough-for-a-long-json-head"][round % 4]!;

      const prefix = prefixBytes(name, 8, round % 2 ? round % 10 : null);
      const p = smallTarget();
      new PrefixFormatter(prefix).lines(p, src, before, before + block.length);
      expect(p.bytes()).toEqual(Buffer.concat(lines.map((l) => Buffer.concat([prefix, Buffer.from(`${l}\n`)]))));

      const fmt = new JsonFormatter(name, "stdout");
      fmt.stamp(ms);
      const j = smallTarget();
      fmt.lines(j, src, before, before + block.length);
      const ts = new Date(ms).toISOString();
      const expected = lines
        .map((l) => `{"ts":"${ts}","service":${JSON.stringify(name)},"stream":"stdout","line":${JSON.stringify(l)}}\n`)
        .join("");
      expect(j.bytes().toString()).toBe(expected);
    }
  });

  test("JSON: blocks of ASCII lines with other UTF-8 or invalid bytes anywhere come out as line by line", () => {
    // The kernel takes a block as ASCII until a byte of 0x80 or more; from that line on the
    // block is checked as UTF-8 once, and done line by line (with replacement) if invalid.
    const invalid = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf0, 0x9f, 0x98]];
    const ms = Date.UTC(2024, 4, 1, 12, 34, 56, 789);
    for (let round = 0; round < 200; round++) {
      const lines = Array.from({ length: 1 + rand(40) }, () => {
        const line = Buffer.from(randomLine().replace(/[^\x00-\x7f]/g, round % 2 ? "" : "y"));
        if (rand(4) !== 0) return line; // mostly ASCII
        const at = rand(line.length + 1);
        const odd = rand(2) === 0 ? Buffer.from(invalid[rand(invalid.length)]!) : Buffer.from(["\u00e9", "\u20ac", "\u{1F600}"][rand(3)]!);
        return Buffer.concat([line.subarray(0, at), odd, line.subarray(at)]);
      });
      const block = Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")]));
      const before = rand(9);
      const src = embed(block, before, rand(3) === 0 ? 0 : rand(150));
      const fmt = new JsonFormatter("web", "stdout");
      fmt.stamp(ms);
      const j = smallTarget();
      fmt.lines(j, src, before, before + block.length);
      const one = smallTarget();
      for (const l of lines) fmt.line(one, l, 0, l.length, false);
      expect(j.bytes()).toEqual(one.bytes());
    }
  });
});

describe("many writers at once", () => {
  const COUNT = 100_000;
  const flood = (name: string) => {
    const parts: string[] = [];
    for (let i = 0; i < COUNT; i++) parts.push(`${name} ${i} ${"x".repeat(i % 50)}\n`);
    return parts.join("");
  };

  for (const [format, polledWrites] of [
    ["prefix", false],
    ["json", false],
    ["prefix", true],
  ] as const) {
    const how = polledWrites ? " (writes polled, as before Linux 6.x)" : "";
    test(`${format}: two services flooding 100,000 lines each: every line intact, in order, none interleaved${how}`, async () => {
      const r = await runServices({ format, polledWrites, names: ["alpha", "beta"] }, [
        { name: "alpha", out: flood("alpha") },
        { name: "beta", out: flood("beta") },
      ]);
      const next = { alpha: 0, beta: 0 };
      const firstAt = { alpha: -1, beta: -1 };
      const lastAt = { alpha: -1, beta: -1 };
      const lines = linesOf(r.out);
      expect(lines.length).toBe(2 * COUNT);
      lines.forEach((raw, at) => {
        const line = format === "json" ? JSON.parse(raw).line : raw.replace(/^(alpha|beta) *\| /, "");
        const m = /^(alpha|beta) (\d+) (x*)$/.exec(line);
        expect(m).not.toBeNull();
        const name = m![1] as "alpha" | "beta";
        if (format === "prefix") expect(raw.startsWith(name)).toBe(true);
        else expect(JSON.parse(raw).service).toBe(name);
        const i = Number(m![2]);
        expect(i).toBe(next[name]++);
        expect(m![3]!.length).toBe(i % 50);
        if (firstAt[name] < 0) firstAt[name] = at;
        lastAt[name] = at;
      });
      // Fair reading: neither waited for the other to finish.
      expect(firstAt.beta).toBeLessThan(lastAt.alpha);
      expect(firstAt.alpha).toBeLessThan(lastAt.beta);
    }, 60_000);
  }

  for (const polledWrites of [false, true])
    test(`lines longer than PIPE_BUF from two services on one shared output pipe are never torn${polledWrites ? " (writes polled)" : ""}`, async () => {
      const big = (name: string) => {
        const parts: string[] = [];
        for (let i = 0; i < 300; i++) parts.push(`${name} ${i} ${name[0]!.repeat(10_000 + i)}\n`);
        return parts.join("");
      };
      const out = capture();
      const mux = muxTo(out, null, { names: ["a", "b"], polledWrites }); // stdout and stderr are the same pipe
      const pids = [service(mux, "a", fileWith(big("a")), fileWith(big("a"))), service(mux, "b", fileWith(big("b")))];
      for (const pid of pids) expect(await reaped(pid)).toBe(0);
      await mux.drain(10_000);
      const lines = linesOf(await out.finish());
      expect(lines.length).toBe(900);
      for (const line of lines) {
        const m = /^(a|b) +\| (a|b) (\d+) (a+|b+)$/.exec(line);
        expect(m).not.toBeNull();
        expect(m![1]).toBe(m![2]!);
        expect(m![4]!.length).toBe(10_000 + Number(m![3]));
      }
    }, 60_000);
});

describe("a stuck output", () => {
  for (const polledWrites of [false, true])
    test(`does not block the event loop; services are held back; nothing is lost once the reader resumes${polledWrites ? " (writes polled)" : ""}`, async () => {
      const out = capture({ start: false }); // nobody reads pidone's stdout yet
      const mux = muxTo(out, null, { names: ["web"], polledWrites });
      const COUNT = 200_000; // ~ 5 MB: far more than the pipes and the mux's queue hold
      const parts: string[] = [];
      for (let i = 0; i < COUNT; i++) parts.push(`line ${i} ${"y".repeat(16)}\n`);
      const pid = service(mux, "web", fileWith(parts.join("")));

      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      try {
        await waitFor(() => ticks >= 20, 10_000, "the event loop to keep turning");
      } finally {
        clearInterval(timer);
      }
      // Backpressure: the writer is blocked in write(2), not finished.
      expect(waitpid(pid, WNOHANG)).toBeNull();

      out.resume();
      expect(await reaped(pid)).toBe(0);
      expect(await mux.drain(10_000)).toEqual({ droppedLines: 0, droppedBytes: 0 });
      const lines = linesOf(await out.finish());
      expect(lines.length).toBe(COUNT);
      lines.forEach((l, i) => expect(l).toBe(`web    | line ${i} ${"y".repeat(16)}`));
    }, 60_000);

  test("drain gives up after its time and reports exactly what was dropped", async () => {
    const out = capture({ start: false });
    const mux = muxTo(out, null, { names: ["web"] });
    const COUNT = 100_000;
    const parts: string[] = [];
    for (let i = 0; i < COUNT; i++) parts.push(`line ${i}\n`);
    const pid = service(mux, "web", fileWith(parts.join("")));
    await waitFor(() => mux.written > 0);

    const t0 = performance.now();
    const dropped = await mux.drain(200);
    const took = performance.now() - t0;
    expect(took).toBeLessThan(5_000); // generous: the point is that it returns at all
    await reaped(pid);
    expect(dropped.droppedLines).toBeGreaterThan(0);
    expect(dropped.droppedBytes).toBeGreaterThan(0);

    // What reached the pipe plus what was reported dropped is everything, line for line.
    const got = linesOf(await out.finish());
    got.forEach((l, i) => expect(l).toBe(`web    | line ${i}`));
    expect(got.length + dropped.droppedLines).toBe(COUNT);
  }, 60_000);
});

describe("where the mux runs", () => {
  test("it runs in its worker by default; written counts what reached the output", async () => {
    const out = capture();
    const mux = muxTo(out, null, { names: ["web"] });
    expect(await mux.started()).toBe("worker");
    const pid = service(mux, "web", fileWith("one\ntwo\n"));
    expect(await reaped(pid)).toBe(0);
    await mux.outputEnded("web");
    await mux.drain(5_000);
    expect(mux.written).toBe("web    | one\nweb    | two\n".length);
    expect((await out.finish()).toString()).toBe("web    | one\nweb    | two\n");
  });

  test("on the main thread (no worker) the output is the same, line for line", async () => {
    const parts: string[] = [];
    for (let i = 0; i < 50_000; i++) parts.push(`${i} ${"z".repeat(i % 90)}\n`);
    const outs: string[] = [];
    for (const thread of ["worker", "main"] as const) {
      const out = capture();
      const mux = muxTo(out, null, { names: ["web"], thread });
      expect(await mux.started()).toBe(thread);
      const pid = service(mux, "web", fileWith(`${parts.join("")}tail without newline`));
      expect(await reaped(pid)).toBe(0);
      await mux.drain(10_000);
      outs.push((await out.finish()).toString());
    }
    expect(outs[1]).toBe(outs[0]!);
    const lines = outs[0]!.split("\n");
    expect(lines.filter((l) => l.startsWith("web    | ")).length).toBe(50_001);
    expect(outs[0]!.endsWith("web    | tail without newline\n")).toBe(true);
  }, 60_000);

  test("while the worker floods a stuck output, the main thread's event loop is free", async () => {
    const out = capture({ start: false });
    const mux = muxTo(out, null, { names: ["web"] });
    const parts: string[] = [];
    for (let i = 0; i < 100_000; i++) parts.push(`line ${i}\n`);
    const pid = service(mux, "web", fileWith(parts.join("")));
    let worst = 0;
    let last = performance.now();
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
      ticks++;
    }, 2);
    try {
      await waitFor(() => ticks >= 50, 10_000, "the event loop to keep turning");
    } finally {
      clearInterval(timer);
    }
    expect(worst).toBeLessThan(1_000); // generous: nothing on this thread waits for the output
    out.resume();
    expect(await reaped(pid)).toBe(0);
    expect(await mux.drain(10_000)).toEqual({ droppedLines: 0, droppedBytes: 0 });
    expect(linesOf(await out.finish()).length).toBe(100_000);
  }, 60_000);
});

describe("descriptors", () => {
  test("the mux closes each pipe at EOF; after drain, attach closes what it is given", async () => {
    const fds = () => new Set(require("node:fs").readdirSync("/proc/self/fd") as string[]);
    const before = fds();
    const out = capture();
    const mux = muxTo(out, null);
    const [r, w] = pipe();
    const pid = spawnWriter(["echo", "hi"], w);
    children.add(pid);
    close(w);
    mux.attach("web", "stdout", r);
    await reaped(pid);
    await mux.drain(5_000);
    expect(existsSync(`/proc/self/fd/${r}`)).toBe(false);
    const [r2, w2] = pipe();
    mux.attach("web", "stdout", r2);
    expect(existsSync(`/proc/self/fd/${r2}`)).toBe(false);
    close(w2);
    expect((await out.finish()).toString()).toBe("web    | hi\n");
    // Bun closes its own dup of a pipe it streamed from a moment after EOF.
    const leaked = () => [...fds()].filter((fd) => !before.has(fd) && existsSync(`/proc/self/fd/${fd}`));
    await waitFor(() => leaked().length === 0, 5_000, "no descriptor left open").catch(() => {});
    expect(leaked()).toEqual([]);
  });

  test("a regular file as stdout gets whole batches in order", async () => {
    const path = join(tempDir("pidone-output-"), "out.log");
    const fd = openSync(path, "w");
    const mux = new OutputMux({ format: "prefix", names: ["web"], color: false, stdoutFd: fd, stderrFd: fd });
    const parts: string[] = [];
    for (let i = 0; i < 50_000; i++) parts.push(`${i}\n`);
    const [r, w] = pipe();
    const pid = spawnWriter(["cat", fileWith(parts.join(""))], w);
    children.add(pid);
    close(w);
    mux.attach("web", "stdout", r);
    await reaped(pid);
    await mux.drain(10_000);
    close(fd);
    const lines = linesOf(readFileSync(path));
    expect(lines.length).toBe(50_000);
    lines.forEach((l, i) => expect(l).toBe(`web    | ${i}`));
  }, 60_000);
});
