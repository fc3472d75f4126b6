// Readiness probes. Each retries until it succeeds or its deadline passes; probing is the
// one place services mode wakes on a timer, and only until the service is ready.
import { existsSync } from "node:fs";
import type { ReadyProbe, ServiceSpec } from "../config/index.ts";

/** An exec probe runs as its service does: same environment, directory and user. */
export type ProbeContext = Pick<ServiceSpec, "env" | "cwd" | "user">;

const RETRY_MS = 100;

export interface ProbeHooks {
  /** Runs the exec probe's program through pidone's own spawner; resolves with its exit code. */
  runProgram(argv: readonly string[], executable: string | null, as: ProbeContext): Promise<number>;
}

async function tcpOnce(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        error() {
          resolve(false);
        },
        data() {},
      },
    }).catch(() => resolve(false));
  });
}

async function httpOnce(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000), redirect: "manual" });
    await r.body?.cancel();
    return r.status >= 200 && r.status < 300;
  } catch {
    return false;
  }
}

async function once(probe: ReadyProbe, hooks: ProbeHooks, as: ProbeContext): Promise<boolean> {
  switch (probe.kind) {
    case "tcp":
      return tcpOnce(probe.host, probe.port);
    case "http":
      return httpOnce(probe.url);
    case "file":
      return existsSync(probe.path);
    case "exec":
      return (await hooks.runProgram(probe.argv, probe.executable, as)) === 0;
  }
}

export function describeProbe(p: ReadyProbe): string {
  switch (p.kind) {
    case "tcp":
      return `tcp ${p.host}:${p.port}`;
    case "http":
      return `http ${p.url}`;
    case "file":
      return `file ${p.path}`;
    case "exec":
      return `exec ${p.argv.join(" ")}`;
  }
}

/**
 * Resolves true once the probe succeeds, false at the deadline or when `cancelled()`
 * turns true (the service exited or is being stopped).
 */
export async function waitReady(
  probe: ReadyProbe,
  timeoutMs: number,
  hooks: ProbeHooks,
  cancelled: () => boolean,
  as: ProbeContext,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (cancelled()) return false;
    if (await once(probe, hooks, as)) return !cancelled();
    if (performance.now() + RETRY_MS > deadline) return false;
    await Bun.sleep(RETRY_MS);
  }
}
