// HealthMonitor's semantics with a fake exec runner: counting, start_period, once-only
// onUnhealthy, and a stopped monitor ignoring the check in flight.
import { describe, expect, test } from "bun:test";
import type { HealthSpec } from "../src/config/types.ts";
import { HealthMonitor } from "../src/services/health.ts";
import type { ProbeHooks } from "../src/services/ready.ts";
import { waitFor } from "./helpers.ts";

const AS = { env: {}, cwd: null, user: null, envFiles: [] };

/** Hooks whose exec checks exit with the given codes in turn (then 0), each at once. */
function scripted(codes: number[]): ProbeHooks & { calls: number } {
  const hooks = {
    calls: 0,
    runProgram: async () => {
      hooks.calls++;
      return codes.shift() ?? 0;
    },
  };
  return hooks;
}

function spec(over: Partial<HealthSpec> = {}): HealthSpec {
  return { probe: { kind: "exec", argv: ["check", "-q"], executable: "/bin/check" }, interval: 0.01, timeout: 5, retries: 3, startPeriod: 0, ...over };
}

describe("HealthMonitor", () => {
  test("a success resets the count; retries failures in a row make it unhealthy, onUnhealthy once, and checks stop", async () => {
    const hooks = scripted([1, 0, 1, 1, 1, 0, 0]);
    const unhealthy: string[] = [];
    const m = new HealthMonitor(spec(), hooks, AS, (d) => unhealthy.push(d));
    expect(m.info()).toEqual({ check: "exec check -q", status: "starting", failures: 0, last: null });
    m.start();
    await waitFor(() => unhealthy.length > 0, 5000, "unhealthy");
    await Bun.sleep(100);
    expect(hooks.calls).toBe(5);
    expect(unhealthy).toEqual(["3 checks failed in a row, the last: exit status 1"]);
    expect(m.info()).toMatchObject({ status: "unhealthy", failures: 3, last: { ok: false, detail: "exit status 1" } });
    // A new run starts over; the last outcome stays on show until the next check.
    m.start();
    expect(m.info()).toMatchObject({ status: "starting", failures: 0, last: { ok: false } });
    await waitFor(() => m.info().status === "healthy", 5000, "healthy");
    expect(m.info().last).toMatchObject({ ok: true, detail: "ok" });
    m.stop();
  });

  test("start_period: failures within it do not count", async () => {
    const hooks = scripted(Array(1000).fill(1));
    let at = 0;
    const m = new HealthMonitor(spec({ retries: 1, startPeriod: 0.3 }), hooks, AS, () => (at = performance.now()));
    const started = performance.now();
    m.start();
    await waitFor(() => at > 0, 5000, "unhealthy");
    expect(at - started).toBeGreaterThanOrEqual(300);
    expect(hooks.calls).toBeGreaterThan(2);
    m.stop();
  });

  test("a success ends start_period early: the next failures count", async () => {
    const hooks = scripted([0, ...Array(1000).fill(1)]);
    let unhealthy = false;
    const m = new HealthMonitor(spec({ retries: 2, startPeriod: 3600 }), hooks, AS, () => (unhealthy = true));
    m.start();
    await waitFor(() => unhealthy, 5000, "unhealthy within the start period, after a success");
    expect(hooks.calls).toBe(3);
    m.stop();
  });

  test("stop(): no more checks, and the one in flight is ignored", async () => {
    let finish: (code: number) => void = () => {};
    let calls = 0;
    const hooks: ProbeHooks = {
      runProgram: () => {
        calls++;
        return new Promise((resolve) => (finish = resolve));
      },
    };
    const m = new HealthMonitor(spec({ retries: 1 }), hooks, AS, () => {
      throw new Error("not after stop()");
    });
    m.start();
    await waitFor(() => calls === 1, 5000, "a check in flight");
    m.stop();
    finish(1);
    await Bun.sleep(100);
    expect(calls).toBe(1);
    expect(m.info()).toEqual({ check: "exec check -q", status: "starting", failures: 0, last: null });
  });
});
