// 9. What one `pidone --ctl status` costs: a HEALTHCHECK or a probe runs it every few
// seconds, charged to the container. Each pidone file asks a fake server, listening here
// in the benchmark's own process (Bun.listen) and answering as services mode would: the
// client's cost, not the server's formatting. Wall time from c/spawntime (posix_spawn →
// waitpid); the peak resident memory from c/peakrss (VmHWM at the command's exit).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { CONTROL } from "../../../src/native/protocol.ts";
import { mustRun, parseSeries } from "./proc.ts";
import { newMetric, type MetricResult, type Subject, type Tools } from "./types.ts";

/** A status table as services mode prints one: a header and six services. */
const ANSWER = (() => {
  const rows = ["NAME      STATE     PID   UPTIME  RESTARTS  LAST EXIT  READY  HEALTH"];
  for (const name of ["web", "worker", "cron", "redis", "metrics", "migrate"])
    rows.push(`${name.padEnd(10)}running   ${String(1000 + rows.length).padEnd(6)}3h12m   0         -          yes    ok`);
  return new TextEncoder().encode(`${CONTROL.OK}\n${rows.join("\n")}\n`);
})();

/** Answers each complete request (its NUL count reached) with ANSWER, then closes. */
function fakeServer(path: string) {
  const got = new Map<object, Buffer>();
  return Bun.listen({
    unix: path,
    socket: {
      open: (s) => void got.set(s, Buffer.alloc(0)),
      data(s, chunk) {
        const buf = Buffer.concat([got.get(s)!, chunk]);
        got.set(s, buf);
        const nl = buf.indexOf(0x0a);
        const argc = nl < 0 ? -1 : Number(buf.subarray(0, nl).toString().split(" ").pop());
        let nuls = 0;
        for (let i = nl + 1; nl >= 0 && i < buf.length; i++) nuls += buf[i] === 0 ? 1 : 0;
        if (argc < 0 || nuls < argc) return;
        s.write(ANSWER); // far below the socket's buffer: written whole
        s.end();
      },
      close: (s) => void got.delete(s),
    },
  });
}

export async function measureCtl(
  subjects: readonly Subject[],
  tools: Tools,
  work: string,
  plan: { rounds: number; rssRounds: number },
): Promise<MetricResult[]> {
  const subs = subjects.filter((s) => s.families.has("ctl"));
  const path = join(work, "control.sock");
  rmSync(path, { force: true });
  const server = fakeServer(path);
  const time = newMetric("ctl", "`pidone --ctl status`: wall time (× the single file)", "ms", "lower", "pidone");
  const rss = newMetric("ctl-rss", "`pidone --ctl status`: peak RSS (× the single file)", "MB", "lower", "pidone");
  try {
    // Last, for scale: the helpers' floor (/bin/true), and what the single file costs when
    // it starts its runtime (`--version`: the least a whole start does).
    const single = subs.find((s) => s.id === "pidone");
    const cmds = [
      ...subs.map((s) => [...s.prefix, "--ctl", "--control", path, "status"]),
      ["/bin/true"],
      ...(single ? [[...single.prefix, "--version"]] : []),
    ];
    const joined = cmds.flatMap((c, i) => (i === 0 ? c : [":::", ...c]));
    const warmup = Math.min(10, Math.max(1, Math.floor(plan.rounds / 30)));
    const t = parseSeries(await mustRun([tools.spawntime, String(plan.rounds), String(warmup), ...joined], { timeoutMs: 600_000 }));
    const r = parseSeries(await mustRun([tools.peakrss, String(plan.rssRounds), ...joined], { timeoutMs: 600_000 }));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    subs.forEach((s, i) => {
      time.series[s.id] = (t.get("t")?.get(i) ?? []).map((ns) => ns / 1e6);
      time.extra[s.id] = { failures: t.get("fail")?.get(i)?.[0] ?? 0, cpuMs: median(t.get("cpu")?.get(i) ?? []) / 1e6 };
      rss.series[s.id] = (r.get("rss")?.get(i) ?? []).map((kb) => kb / 1000);
      rss.extra[s.id] = { failures: r.get("fail")?.get(i)?.[0] ?? 0 };
      for (const m of [time, rss]) if (m.extra[s.id]!.failures) m.notes.push(`${s.id}: ${m.extra[s.id]!.failures} runs did not exit 0`);
    });
    const ms = (i: number) => (median(t.get("t")?.get(i) ?? []) / 1e6).toFixed(2);
    const mb = (i: number) => (median(r.get("rss")?.get(i) ?? []) / 1000).toFixed(2);
    const [floor, whole] = [subs.length, subs.length + 1];
    time.notes.push(
      `${plan.rounds} runs each after ${warmup} warm-up rounds (c/spawntime), interleaved; a fake server in the benchmark's ` +
        `process answers a ${ANSWER.length}-byte status table; cpuMs: median CPU time; for scale: /bin/true ${ms(floor)} ms` +
        (single ? `, the single file starting its runtime (\`pidone --version\`) ${ms(whole)} ms` : ""),
    );
    rss.notes.push(
      `${plan.rssRounds} runs each (c/peakrss): VmHWM read at the command's exit, under ptrace (wait4's ru_maxrss carries the ` +
        `spawning process's own peak); for scale: /bin/true (dynamically linked) ${mb(floor)} MB` +
        (single ? `, \`pidone --version\` ${mb(whole)} MB` : ""),
    );
  } finally {
    server.stop(true);
  }
  return [time, rss];
}
