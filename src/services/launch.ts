// Starting one service: its argv, its environment over pidone's, its cwd, stdin from
// /dev/null, stdout/stderr into pipes pidone reads (or pidone's own, for raw output),
// its own process group, and the signal state pidone was given.
//
// Its environment, from the bottom up: pidone's own; HOME, USER and LOGNAME of a switched
// `user`; each env_file in order (read here, at every start, so that a restart picks up a
// changed file); the service's `env`.
import { readEnvFiles, type ResolvedUser, type ServiceSpec } from "../config/index.ts";
import { DescriptorShortage, isDescriptorShortage, type SpawnFailure } from "../errors.ts";
import { spawnChild, spawnFailure } from "../process/spawn.ts";
import { SPARE_DESCRIPTORS } from "../process/startup.ts";
import { SyscallError, close, pipe, spareDescriptors, O_RDONLY, O_WRONLY, type FileAction } from "../sys/libc.ts";

export interface LaunchContext {
  envp: readonly Uint8Array[];
  sigmask: Uint8Array;
  sigdefault: Uint8Array;
  /** "pipe": give the service pipes (prefix/json output); "inherit": raw; "null": /dev/null (probes). */
  output: "pipe" | "inherit" | "null";
}

export type Launched =
  | { ok: true; pid: number; stdout: number | null; stderr: number | null }
  | ({ ok: false } & SpawnFailure);

/** pidone's environment with `overrides` set (replacing any existing entry of the same name). */
export function mergeEnv(envp: readonly Uint8Array[], overrides: Readonly<Record<string, string>>): Uint8Array[] {
  const names = new Set(Object.keys(overrides));
  if (names.size === 0) return [...envp];
  const kept = envp.filter((e) => {
    const eq = e.indexOf(0x3d);
    return !(eq > 0 && names.has(Buffer.from(e.subarray(0, eq)).toString("latin1")));
  });
  for (const [k, v] of Object.entries(overrides)) kept.push(new Uint8Array(Buffer.from(`${k}=${v}`)));
  return kept;
}

/** As gosu and su do: a switched user gets its own HOME, USER and LOGNAME (the service's env wins). */
function userEnv(spec: { env: Readonly<Record<string, string>>; user?: ResolvedUser | null }, files: Record<string, string>): Record<string, string> {
  const u = spec.user;
  if (!u) return { ...files, ...spec.env };
  const ids: Record<string, string> = { HOME: u.home };
  if (u.name) ids.USER = ids.LOGNAME = u.name;
  return { ...ids, ...files, ...spec.env };
}

/** What a readiness protocol adds to a start (src/services/notify.ts): variables over the service's own, descriptors at fixed numbers. */
export interface LaunchExtras {
  env: Readonly<Record<string, string>>;
  passFds: readonly { from: number; to: number }[];
}

export function launch(
  argv: readonly string[],
  spec: Pick<ServiceSpec, "env" | "cwd" | "executable"> & { user?: ResolvedUser | null; envFiles?: ServiceSpec["envFiles"] },
  ctx: LaunchContext,
  extras?: LaunchExtras,
): Launched {
  // A file that is missing or does not parse fails this start as a failed exec would
  // (exit code 1, the restart policy applies), with the file's FILE:LINE.
  const files = readEnvFiles(spec.envFiles ?? []);
  if (!files.ok) return { ok: false, step: "env_file", errno: 0, exec: false, message: files.message };
  const actions: FileAction[] = [{ kind: "open", fd: 0, path: "/dev/null", flags: O_RDONLY }];
  let out: [number, number] | null = null;
  let err: [number, number] | null = null;
  try {
    if (ctx.output === "pipe") {
      out = pipe();
      err = pipe();
      actions.push({ kind: "dup2", from: out[1], to: 1 }, { kind: "dup2", from: err[1], to: 2 });
    }
    if (ctx.output === "null") {
      actions.push({ kind: "open", fd: 1, path: "/dev/null", flags: O_WRONLY }, { kind: "dup2", from: 1, to: 2 });
    }
    // After stdout and stderr: their sources are used up before anything lands on `to`.
    for (const p of extras?.passFds ?? []) actions.push({ kind: "dup2", from: p.from, to: p.to });
    if (spec.cwd) actions.push({ kind: "chdir", path: spec.cwd });
    if (out) keepSpare(); // the pipes' read ends stay ours while the service runs
    const file = spec.executable ?? argv[0]!;
    const request = {
      file: Buffer.from(file),
      search: !file.includes("/"),
      argv: argv.map((a) => new Uint8Array(Buffer.from(a))),
      envp: mergeEnv(ctx.envp, { ...userEnv(spec, files.vars), ...extras?.env }),
      newProcessGroup: true,
      foreground: false,
      sigmask: ctx.sigmask,
      sigdefault: ctx.sigdefault,
      keepFds: [],
      actions,
    };
    // `user`: setgroups/setresgid/setresuid between fork and exec, by the native helper's trampoline.
    const pid = spawnChild(request, { user: spec.user });
    return { ok: true, pid, stdout: out ? out[0] : null, stderr: err ? err[0] : null };
  } catch (e) {
    for (const p of [out, err]) if (p) for (const fd of p) safeClose(fd);
    out = err = null;
    return { ok: false, ...spawnFailure(e, argv[0]!) };
  } finally {
    // The child has its own copies of the write ends; ours would keep the pipes open forever.
    if (out) safeClose(out[1]);
    if (err) safeClose(err[1]);
  }
}

/**
 * A service whose pipes would leave pidone without the descriptors it keeps for itself
 * (startup.ts) fails its start instead: a Worker or a stop short of them is worse off.
 * The child's own open of /dev/null needs one more, in its copy of our table. A probe
 * keeps nothing open in pidone: it may use the reserve.
 */
function keepSpare(): void {
  const need = SPARE_DESCRIPTORS + 1;
  const { made, errno } = spareDescriptors(need);
  if (made >= need) return;
  if (!isDescriptorShortage(errno)) throw new SyscallError("pipe2", errno);
  throw new DescriptorShortage(`keeping ${SPARE_DESCRIPTORS} for pidone`, errno);
}

function safeClose(fd: number): void {
  try {
    close(fd);
  } catch {
    // already closed: nothing leaks
  }
}
