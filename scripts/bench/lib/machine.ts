// What the numbers were measured on: they mean little without it.
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  os: string;
  memoryGiB: number;
  bun: string;
  /** 1-minute load average when the run started and ended: how shared the machine was. */
  loadStart: number;
  loadEnd?: number;
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "Linux";
  } catch {
    return "Linux";
  }
}

export function describeMachine(): Machine {
  const cpuInfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuInfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  return {
    cpu: model,
    cores: cpus().length,
    kernel: release(),
    os: osName(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    bun: Bun.version,
    loadStart: loadavg()[0]!,
  };
}

export function machineLine(m: Machine): string {
  const load = m.loadEnd === undefined ? `${m.loadStart.toFixed(2)}` : `${m.loadStart.toFixed(2)} → ${m.loadEnd.toFixed(2)}`;
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel} (${m.os}), Bun ${m.bun}; load average ${load}`;
}
