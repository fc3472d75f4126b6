// Finding a service's program before it is started, the way execvp will: a name with a
// slash is a path (relative to the service's cwd), a bare name is searched in the PATH
// the service will have. The file system is reached through one injectable probe so
// tests can describe any machine.
import { accessSync, constants, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";

export type FileKind = "executable" | "not-executable" | "directory" | "missing";
export type ProbeFile = (path: string) => FileKind;

/** glibc's execvp default when PATH is unset (confstr _CS_PATH). */
export const DEFAULT_PATH = "/bin:/usr/bin";

export const probeFile: ProbeFile = (path) => {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return "directory";
    if (!st.isFile()) return "not-executable";
    accessSync(path, constants.X_OK);
    return "executable";
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "EACCES" ? "not-executable" : "missing";
  }
};

export type ProgramResult = { ok: true; path: string } | { ok: false; message: string };

/**
 * @param name argv[0]
 * @param path the PATH the service will see (undefined: unset)
 * @param cwd the directory the service starts in (absolute)
 */
export function findProgram(name: string, path: string | undefined, cwd: string, probe: ProbeFile): ProgramResult {
  if (name === "") return { ok: false, message: "the program name is empty" };
  if (name.includes("/")) {
    const full = isAbsolute(name) ? name : resolve(cwd, name);
    const kind = probe(full);
    const shown = full === name ? name : `${name} (${full})`;
    switch (kind) {
      case "executable":
        return { ok: true, path: full };
      case "missing":
        return { ok: false, message: `program ${shown} not found` };
      case "directory":
        return { ok: false, message: `program ${shown} is a directory` };
      case "not-executable":
        return { ok: false, message: `program ${shown} is not executable` };
    }
  }
  const dirs = (path ?? DEFAULT_PATH).split(":");
  let notExecutable: string | null = null;
  for (const dir of dirs) {
    // An empty PATH entry means the current directory, as for execvp.
    const candidate = resolve(cwd, dir === "" ? "." : dir, name);
    const kind = probe(candidate);
    if (kind === "executable") return { ok: true, path: candidate };
    if (kind === "not-executable" && notExecutable === null) notExecutable = candidate;
  }
  if (notExecutable !== null) return { ok: false, message: `program ${notExecutable} is not executable` };
  return { ok: false, message: `program "${name}" not found in PATH (${path ?? `unset, so ${DEFAULT_PATH}`})` };
}
