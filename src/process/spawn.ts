// Starting a program the way tini's fork + execvp does, through posix_spawn: its own
// process group, the terminal's foreground when we hold one, the signal mask and
// dispositions pidone itself was given, and exactly the descriptors it inherited.
//
// What posix_spawn cannot do (switch user, LISTEN_PID = the child's own pid, take a
// controlling terminal in a new session) goes through the single file's exec trampoline
// (src/sys/native.ts): posix_spawn starts our own file, whose stub does those steps and
// execs the program. Only when a step needs it: a direct spawn otherwise.
import { DescriptorShortage, descriptorShortage, exitCodeOfFailure, isDescriptorShortage, type SpawnFailure } from "../errors.ts";
import { log } from "../log/logger.ts";
import {
  O_CLOEXEC,
  SyscallError,
  TIOCNOTTY,
  close,
  descriptorLimit,
  errno,
  getpid,
  getsid,
  hasTcsetpgrpFileAction,
  ignoreSignal,
  ioctl,
  isExecutable,
  pipe,
  readSome,
  spawn,
  strerror,
  tcgetpgrpRaw,
  tcsetpgrp,
  waitpid,
  type SpawnRequest,
} from "../sys/libc.ts";
import * as native from "../sys/native.ts";
import { SIG } from "../signals/table.ts";
import { inheritance } from "./startup.ts";

export interface ChildSetup {
  envp: readonly Uint8Array[];
  sigmask: Uint8Array;
  sigdefault: Uint8Array;
  keepFds: readonly number[];
  /** --setsid: a new session and process group. */
  newSession?: boolean;
  /** With newSession: the child takes fd 0 as its controlling terminal (see releaseTerminal). */
  takeTerminal?: boolean;
}

export type SpawnOutcome =
  | { ok: true; pid: number }
  /** It did not start: `code` is what tini's child would have exited with. */
  | ({ ok: false; code: number } & SpawnFailure);

const SLASH = 0x2f;

function envValue(envp: readonly Uint8Array[], name: string): Uint8Array | undefined {
  const prefix = Buffer.from(`${name}=`);
  for (const e of envp) {
    if (e.length >= prefix.length && Buffer.from(e.buffer, e.byteOffset, prefix.length).equals(prefix)) return e.subarray(prefix.length);
  }
  return undefined;
}

/** execvp's PATH search, used only to find a script to hand to /bin/sh after ENOEXEC. */
function searchPath(name: Uint8Array, envp: readonly Uint8Array[]): Uint8Array | null {
  if (name.includes(SLASH)) return name;
  const path = Buffer.from(envValue(envp, "PATH") ?? Buffer.from("/bin:/usr/bin"));
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== 0x3a) continue;
    const dir = path.subarray(start, i);
    start = i + 1;
    const candidate = Buffer.concat([dir.length ? dir : Buffer.from("."), Buffer.from("/"), name]);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** Is fd 0 our controlling terminal? Only then may the child take the foreground. */
function holdsTerminal(): boolean {
  // The raw call: a failure is the common case (no terminal), and a SyscallError with
  // its message costs start-up time for nothing.
  return tcgetpgrpRaw(0) >= 0;
}

/**
 * systemd socket activation: LISTEN_PID names the process the LISTEN_FDS descriptors
 * are for. When that is pidone, the child must see its own pid there instead.
 */
function socketsAreOurs(envp: readonly Uint8Array[]): boolean {
  const value = envValue(envp, "LISTEN_PID");
  return value !== undefined && Buffer.from(value).toString("latin1") === String(getpid());
}

/**
 * --setsid: a terminal is the controlling terminal of one session only, so the child's
 * new session can have ours only once pidone's session lets go of it. Only a session
 * leader can do that (PID 1 under `docker run -t`; a program under a shell is not one).
 * Call before listen(): TIOCNOTTY sends SIGHUP and SIGCONT to the terminal's foreground
 * group, pidone's own, and those are still blocked by the stub then, so they can be
 * discarded rather than forwarded to the child (dumb-init #136). Returns true when the
 * child may take the terminal (with the native helper's trampoline).
 */
export function releaseTerminal(): boolean {
  if (!native.available || !holdsTerminal()) return false;
  try {
    if (getsid(0) !== getpid()) {
      log.debug("--setsid: pidone does not lead its session, so its terminal cannot follow the child");
      return false;
    }
    ioctl(0, TIOCNOTTY);
  } catch (e) {
    log.warn(`--setsid: cannot give up the controlling terminal: ${(e as Error).message}`);
    return false;
  }
  // Setting SIG_IGN discards a pending signal; listen() installs the handlers after.
  ignoreSignal(SIG.HUP);
  ignoreSignal(SIG.CONT);
  return true;
}

/** A trampoline step failed: `syscall` names it ("setresuid", "execve"...), `errno` why. */
export class StepError extends SyscallError {
  constructor(syscall: string, errno: number, what: string) {
    super(syscall, errno);
    this.name = "StepError";
    this.message = `${what}: ${strerror(errno)}`;
  }
}

function describeStep(step: string, steps: native.TrampolineSteps, file: Uint8Array): string {
  const u = steps.user;
  switch (step) {
    case "setgroups":
      return `cannot set supplementary groups ${u?.groups.join(",")}`;
    case "setresgid":
      return `cannot switch to gid ${u?.gid}`;
    case "setresuid":
      return `cannot switch to uid ${u?.uid}`;
    case "execve":
      return `exec ${Buffer.from(file).toString()} failed`;
    default:
      return `${step} failed`;
  }
}

/**
 * posix_spawn through the exec trampoline. Returns the pid once the program itself runs
 * (the report pipe reached end of file when its execve closed it); throws StepError
 * with the step and errno that failed, after reaping the trampoline.
 */
export function spawnWithSteps(req: SpawnRequest, steps: native.TrampolineSteps): number {
  const [readEnd, writeEnd] = pipe(O_CLOEXEC);
  let pid: number;
  try {
    pid = spawn({
      ...req,
      file: Buffer.from(native.TRAMPOLINE_PATH),
      search: false,
      argv: native.trampolineArgv(steps, writeEnd, req.file, req.search, req.argv),
      keepFds: [...req.keepFds, writeEnd],
    });
  } catch (e) {
    close(readEnd);
    throw e;
  } finally {
    close(writeEnd);
  }
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(64);
  for (;;) {
    // Blocks for as long as posix_spawn itself would: until the program's execve.
    const n = readSome(readEnd, buf);
    if (n === -errno.EINTR) continue;
    if (n <= 0) break;
    chunks.push(buf.slice(0, n));
  }
  close(readEnd);
  for (const r of native.parseReports(Buffer.concat(chunks))) {
    const detail = describeStep(r.step, steps, req.file);
    if (r.warning) {
      log.warn(`${r.step === "TIOCSCTTY" ? "the child cannot take the controlling terminal" : detail}: ${strerror(r.errno)}`);
      continue;
    }
    waitpid(pid, 0); // it exits 127 right after reporting
    throw new StepError(r.step, r.errno, detail);
  }
  return pid;
}

/**
 * What spawnChild (or spawn) threw, as data for the caller's log line and exit code:
 * tini's "exec NAME failed" when the program's own exec failed, the step's own words
 * when a step before it did.
 */
export function spawnFailure(e: unknown, name: string | Uint8Array): SpawnFailure {
  const shown = typeof name === "string" ? name : Buffer.from(name).toString();
  // Out of descriptors (pidone's pipes, or the child's /dev/null before its exec): the
  // limit is the cause, not the program.
  if (e instanceof DescriptorShortage) return { step: e.step, errno: e.errno, exec: false, message: `cannot start ${shown}: ${e.message}` };
  if (e instanceof SyscallError && isDescriptorShortage(e.errno)) {
    const message = `cannot start ${shown}: ${descriptorShortage(e.syscall, e.errno, descriptorLimit(), null)}`;
    return { step: e.syscall, errno: e.errno, exec: false, message };
  }
  if (e instanceof StepError && e.syscall !== "execve") return { step: e.syscall, errno: e.errno, exec: false, message: e.message };
  if (e instanceof SyscallError) return { step: e.syscall, errno: e.errno, exec: true, message: `exec ${shown} failed: ${strerror(e.errno)}` };
  return { step: "spawn", errno: 0, exec: false, message: `exec ${shown} failed: ${String(e)}` };
}

/**
 * Signals the runtime handles in pidone itself (faults, abort, and JavaScriptCore's
 * SIGPWR): whatever our parent did with them, posix_spawn hands them to the child at
 * their default. Those our parent ignored are ignored again by the trampoline.
 */
const RUNTIME_OWNED: readonly number[] = [SIG.ILL, SIG.TRAP, SIG.ABRT, SIG.BUS, SIG.FPE, SIG.SEGV, SIG.PWR, SIG.SYS];
const ignoredByParent = native.available ? inheritance.ignored.filter((s) => RUNTIME_OWNED.includes(s)) : [];

/**
 * posix_spawn, through the trampoline when `steps` (or our parent's signal state) needs
 * it. Throws SyscallError (StepError for a trampoline step), as spawn() does.
 */
export function spawnChild(req: SpawnRequest, steps: native.TrampolineSteps = {}): number {
  const all = ignoredByParent.length ? { ...steps, ignore: ignoredByParent } : steps;
  if (!native.needsTrampoline(all)) return spawn(req);
  try {
    return spawnWithSteps(req, all);
  } catch (e) {
    // Our own file would not execute (qemu-user without binfmt_misc): restoring ignored
    // signals is worth a trampoline, not a failed start.
    if (e instanceof StepError || !(e instanceof SyscallError) || native.needsTrampoline(steps)) throw e;
    log.debug(`the exec trampoline cannot start (${e.message}): the child gets those signals at their default`);
    return spawn(req);
  }
}

export function spawnProgram(program: readonly Uint8Array[], setup: ChildSetup): SpawnOutcome {
  const name = program[0]!;
  const foreground = !setup.newSession && holdsTerminal();
  const request = {
    file: name,
    search: !name.includes(SLASH),
    argv: program,
    envp: setup.envp,
    newProcessGroup: true,
    newSession: setup.newSession ?? false,
    foreground,
    sigmask: setup.sigmask,
    sigdefault: setup.sigdefault,
    keepFds: setup.keepFds,
  };
  const steps: native.TrampolineSteps = {
    listenPid: socketsAreOurs(setup.envp),
    takeTerminal: !!(setup.newSession && setup.takeTerminal),
  };
  if (steps.listenPid && !native.available) {
    log.warn("LISTEN_PID names pidone, but only the single-file pidone can give the child its own pid there");
    steps.listenPid = false;
  }
  let pid: number;
  try {
    // execvp("") fails with ENOENT; posix_spawnp would search PATH for "".
    if (name.length === 0) throw new SyscallError("posix_spawnp", errno.ENOENT);
    // Through the trampoline, the PATH search and ENOEXEC's /bin/sh are the trampoline's.
    pid = spawnChild(request, steps);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    let failure = spawnFailure(e, name);
    if (failure.errno === errno.ENOEXEC && !(e instanceof StepError)) {
      // execvp runs a file without a #! line (and not an ELF) through /bin/sh.
      const script = searchPath(name, setup.envp);
      if (script) {
        try {
          pid = spawn({ ...request, file: Buffer.from("/bin/sh"), search: false, argv: [Buffer.from("/bin/sh"), script, ...program.slice(1)] });
          return finish(pid, foreground);
        } catch (e2) {
          if (!(e2 instanceof SyscallError)) throw e2;
          failure = spawnFailure(e2, name);
        }
      }
    }
    return { ok: false, code: exitCodeOfFailure(failure), ...failure };
  }
  return finish(pid, foreground);
}

function finish(pid: number, foreground: boolean): SpawnOutcome {
  if (foreground && !hasTcsetpgrpFileAction) {
    // musl: no file action for it, so hand over the terminal from here. pidone ignores
    // SIGTTOU, so this works although pidone is no longer in the foreground group.
    try {
      tcsetpgrp(0, pid);
    } catch {
      // the child may already have exited; nothing to hand over then
    }
  }
  return { ok: true, pid };
}
