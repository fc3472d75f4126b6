// Starting a program the way tini's fork + execvp does, through posix_spawn: its own
// process group, the terminal's foreground when we hold one, the signal mask and
// dispositions pidone itself was given, and exactly the descriptors it inherited.
import {
  SyscallError,
  errno,
  hasTcsetpgrpFileAction,
  isExecutable,
  spawn,
  strerror,
  tcgetpgrp,
  tcsetpgrp,
} from "../sys/libc.ts";

export interface ChildSetup {
  envp: readonly Uint8Array[];
  sigmask: Uint8Array;
  sigdefault: Uint8Array;
  keepFds: readonly number[];
  /** --setsid: a new session; the terminal cannot follow without the native helper. */
  newSession?: boolean;
}

export type SpawnOutcome =
  | { ok: true; pid: number }
  /** exec failed: `code` is what tini's child would have exited with. */
  | { ok: false; code: number; message: string };

const SLASH = 0x2f;

function envValue(envp: readonly Uint8Array[], name: string): Uint8Array | undefined {
  const prefix = Buffer.from(`${name}=`);
  for (const e of envp) if (Buffer.from(e.buffer, e.byteOffset, prefix.length).equals(prefix)) return e.subarray(prefix.length);
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
  try {
    tcgetpgrp(0);
    return true;
  } catch {
    return false;
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
  let pid: number;
  try {
    // execvp("") fails with ENOENT; posix_spawnp would search PATH for "".
    if (name.length === 0) throw new SyscallError("posix_spawnp", errno.ENOENT);
    pid = spawn(request);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    let err = e.errno;
    if (err === errno.ENOEXEC) {
      // execvp runs a file without a #! line (and not an ELF) through /bin/sh.
      const script = searchPath(name, setup.envp);
      if (script) {
        try {
          pid = spawn({ ...request, file: Buffer.from("/bin/sh"), search: false, argv: [Buffer.from("/bin/sh"), script, ...program.slice(1)] });
          return finish(pid, foreground);
        } catch (e2) {
          if (!(e2 instanceof SyscallError)) throw e2;
          err = e2.errno;
        }
      }
    }
    const code = err === errno.ENOENT ? 127 : err === errno.EACCES ? 126 : 1;
    return { ok: false, code, message: `exec ${Buffer.from(name).toString()} failed: ${strerror(err)}` };
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
