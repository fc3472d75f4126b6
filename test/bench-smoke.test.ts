// The benchmark must never rot: its smoke mode (few iterations, small counts, no Docker)
// runs end to end and reports every init and floor, and metric 8 (log throughput and
// signal latency under the log flood, at 1% of the workload). No budget is enforced here: timings
// belong to the benchmark, and a shared CI machine would make them flaky.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;

// Which metrics each subject must appear in (a floor only where it means something).
const EXPECTED: Record<string, string[]> = {
  tini: ["startup", "signal-pinned", "signal-unpinned", "exit", "storm", "drain", "idle-vmrss", "idle-wakeups", "size"],
  "tini-static": ["startup", "signal-pinned", "exit", "storm", "drain", "idle-rssanon", "size"],
  "dumb-init": ["startup", "signal-pinned", "exit", "storm", "drain", "idle-cpu", "size"],
  catatonit: ["startup", "signal-pinned", "exit", "storm", "drain", "idle-rssfile", "size"],
  pidone: ["startup", "signal-pinned", "signal-unpinned", "exit", "storm", "drain", "idle-vmrss", "idle-wakeups", "size"],
  "bun-forwarder": ["startup", "signal-pinned", "exit", "drain", "idle-vmrss", "size", "signal-flood"],
  "bun-empty": ["startup", "size"],
  "bun-exit": ["exit"],
  "c-handler": ["signal-pinned", "signal-unpinned"],
  none: ["startup", "signal-pinned", "exit"],
  // Metric 8: the floors cat and a bare Bun reader, pidone's output worker and its fallback.
  cat: ["logs-short", "logs-long"],
  "bun-read": ["logs-short", "logs-long"],
  "pidone-prefix": ["logs-short", "logs-long", "signal-flood"],
  "pidone-json": ["logs-short", "logs-long", "signal-flood"],
  "pidone-prefix-main": ["logs-short", "logs-long"],
  "pidone-json-main": ["logs-short", "logs-long"],
};

interface Doc {
  schema: string;
  mode: string;
  machine: { cpu: string; cores: number; kernel: string };
  subjects: { id: string }[];
  metrics: Record<string, { results: Record<string, { summary: { n: number; median: number } }> }>;
  budgets: { pidone: { id: string; met: boolean | null }[] };
}

describe("benchmark smoke mode", () => {
  test("runs end to end and reports every init and floor in a table and in JSON", async () => {
    const out = mkdtempSync(join(tmpdir(), "pidone-bench-smoke-test-"));
    try {
      const proc = Bun.spawn([process.execPath, join(ROOT, "scripts/bench/run.ts"), "--smoke", "--out", out], {
        cwd: ROOT,
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 150_000);
      const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      const code = await proc.exited;
      clearTimeout(timer);
      if (code !== 0) console.error(stderr.slice(-4000));
      expect(code).toBe(0);

      // The markdown table: a header naming every subject, and one row per metric.
      const header = stdout.split("\n").find((l) => l.startsWith("| metric (median"));
      expect(header).toBeDefined();
      for (const label of ["tini", "tini-static", "dumb-init", "catatonit", "pidone", "Bun forwarder", "empty Bun", "no init"]) {
        expect(header!).toContain(label);
      }
      expect(stdout).toContain("| metric 8 (median");
      expect(stdout).toContain("### Budgets");
      expect(readFileSync(join(out, "latest.md"), "utf8")).toContain("| metric (median");

      expect(existsSync(join(out, "latest.json"))).toBe(true);
      const doc = JSON.parse(readFileSync(join(out, "latest.json"), "utf8")) as Doc;
      expect(doc.schema).toBe("pidone-bench/1");
      expect(doc.mode).toBe("smoke");
      expect(doc.machine.cores).toBeGreaterThan(0);
      expect(doc.machine.kernel).not.toBe("");
      for (const [subject, metrics] of Object.entries(EXPECTED)) {
        expect(doc.subjects.map((s) => s.id)).toContain(subject);
        for (const metric of metrics) {
          const r = doc.metrics[metric]?.results[subject];
          if (!r) throw new Error(`${subject} is missing from metric ${metric}`);
          expect(r.summary.n).toBeGreaterThan(0);
          expect(Number.isFinite(r.summary.median)).toBe(true);
        }
      }
      // Every budget is judged (or marked not measured); none is enforced here.
      expect(doc.budgets.pidone.map((b) => b.id)).toEqual(["startup", "signal", "exit", "reaping", "idle", "docker-stop", "logs", "signal-flood"]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
