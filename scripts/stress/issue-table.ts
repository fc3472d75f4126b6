// The conditions issue 13 opened with, run again against this tree's single file in Docker
// (cgroup v1 here): each row prints the exit code, the wall time and pidone's first line.
// Cold rows drop the page cache first. Root and dockerd needed; a few minutes.
import { buildScratchImage } from "../../test/docker.ts";
import { run } from "../../test/helpers.ts";

const IMAGE = "pidone-issue-table:latest";
const BURST = "burst: i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done";
const TINI = ["--", "sh", "-c", "echo ok; exit 3"];

type Row = { what: string; docker: string[]; cmd: string[]; cold?: boolean; ulimit?: string };
const rows: Row[] = [
  { what: "--pids-limit 3, services, 20,000 lines", docker: ["--pids-limit", "3"], cmd: ["--service", BURST] },
  ...[6, 7, 8, 9, 10].flatMap((m) => [
    { what: `-m ${m}m, tini's mode, cold`, docker: ["-m", `${m}m`, "--memory-swap", `${m}m`], cmd: TINI, cold: true },
    { what: `-m ${m}m, tini's mode, warm`, docker: ["-m", `${m}m`, "--memory-swap", `${m}m`], cmd: TINI },
  ]),
  { what: "-m 10m, services, 20,000 lines, warm", docker: ["-m", "10m", "--memory-swap", "10m"], cmd: ["--service", BURST] },
  { what: "-m 16m, services, 20,000 lines, warm", docker: ["-m", "16m", "--memory-swap", "16m"], cmd: ["--service", BURST] },
  { what: "ulimit -v 1048576, tini's mode", docker: [], ulimit: "-v 1048576", cmd: TINI },
  { what: "ulimit -v 2097152, services, 20,000 lines", docker: [], ulimit: "-v 2097152", cmd: ["--service", BURST] },
  { what: "ulimit -v 524288, services, 20,000 lines", docker: [], ulimit: "-v 524288", cmd: ["--service", BURST] },
  { what: "ulimit -v 262144, tini's mode", docker: [], ulimit: "-v 262144", cmd: TINI },
  { what: "ulimit -n 4, tini's mode", docker: [], ulimit: "-n 4", cmd: TINI },
  { what: "ulimit -n 12 (docker --ulimit nofile), tini's mode", docker: ["--ulimit", "nofile=12:12"], cmd: TINI },
];

await buildScratchImage({ tag: IMAGE });
console.log("| condition | exit | time | pidone's first line, or the output's size |\n|---|---|---|---|");
for (const r of rows) {
  // Warm: another container from the image ran first and paid for the file's pages.
  if (r.cold) await run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"]);
  else await run(["docker", "run", "--rm", "--network", "none", IMAGE, "/pidone", "--", "true"], { timeoutMs: 60_000 });
  // `ulimit` through the image's shell, which then becomes pidone (exec): still PID 1.
  const cmd = r.ulimit
    ? ["sh", "-c", `ulimit ${r.ulimit} && exec /pidone "$@"`, "sh", ...r.cmd]
    : ["/pidone", ...r.cmd];
  const t0 = performance.now();
  const res = await run(["timeout", "-k", "5", "120", "docker", "run", "--rm", "--network", "none", "--sig-proxy=false", ...r.docker, IMAGE, ...cmd], { timeoutMs: 130_000 });
  const s = ((performance.now() - t0) / 1000).toFixed(2);
  const first = (res.stderr.split("\n").find((l) => l.includes("pidone")) ?? "").slice(0, 150);
  const lines = res.stdout.split("\n").filter((l) => l.includes("line ")).length;
  console.log(`| ${r.what} | ${res.code} | ${s} s | ${first ? "`" + first + "`" : ""} ${lines ? `${lines} lines` : res.stdout.includes("ok") ? "ok" : ""} |`);
}
await run(["docker", "rmi", "-f", IMAGE]);
