// Users and groups, read from /etc/passwd and /etc/group directly: a container image has
// no NSS service to ask, and going through libc's getpwnam would need FFI and could load
// NSS modules. `root` points somewhere else for tests and for checking an image's rootfs.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { suggestion } from "./diagnostics.ts";
import type { ResolvedUser } from "./types.ts";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface Accounts {
  users: PasswdEntry[];
  groups: GroupEntry[];
  /** Why /etc/passwd could not be read (a scratch image has none); numeric ids still work. */
  passwdError?: string;
  groupError?: string;
}

/** uid_t and gid_t are 32 bits; (uid_t)-1 means "unchanged" to setresuid, so it is no id. */
const MAX_ID = 0xfffffffe;

function parseId(text: string): number | null {
  if (!/^\d{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_ID ? n : null;
}

/** Lines of name:x:uid:gid:gecos:home:shell; malformed lines and NIS +/- lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.replace(/\r$/, "").split(":");
    if (f.length < 7 || f[0] === "" || f[0]!.startsWith("+") || f[0]!.startsWith("-") || f[0]!.startsWith("#")) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === null || gid === null) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] || "/" });
  }
  return out;
}

/** Lines of name:x:gid:member,member. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.replace(/\r$/, "").split(":");
    if (f.length < 4 || f[0] === "" || f[0]!.startsWith("+") || f[0]!.startsWith("-") || f[0]!.startsWith("#")) continue;
    const gid = parseId(f[2]!);
    if (gid === null) continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(",").map((m) => m.trim()).filter((m) => m !== "") });
  }
  return out;
}

function readText(path: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(path, "utf8") };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code ? `${code}` : String(e) };
  }
}

export function readAccounts(root = "/"): Accounts {
  const passwd = readText(join(root, "etc/passwd"));
  const group = readText(join(root, "etc/group"));
  return {
    users: "text" in passwd ? parsePasswd(passwd.text) : [],
    groups: "text" in group ? parseGroup(group.text) : [],
    ...("error" in passwd ? { passwdError: passwd.error } : {}),
    ...("error" in group ? { groupError: group.error } : {}),
  };
}

export type UserResult = { ok: true; user: ResolvedUser } | { ok: false; message: string };

/**
 * `name`, `uid`, `name:group` or `uid:gid` (names or numbers on either side). A uid
 * with no passwd entry and no group gets gid = uid, never root's group by accident.
 */
export function resolveUser(spec: string, db: Accounts): UserResult {
  const colon = spec.indexOf(":");
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? null : spec.slice(colon + 1);
  if (userPart === "") return { ok: false, message: `${JSON.stringify(spec)} names no user` };
  if (groupPart === "") return { ok: false, message: `${JSON.stringify(spec)} names no group after ":"` };

  let entry: PasswdEntry | undefined;
  let uid: number;
  if (/^\d+$/.test(userPart)) {
    const n = parseId(userPart);
    if (n === null) return { ok: false, message: `uid ${userPart} is out of range (0 to ${MAX_ID})` };
    uid = n;
    entry = db.users.find((u) => u.uid === n);
  } else {
    entry = db.users.find((u) => u.name === userPart);
    if (!entry) {
      const why = db.passwdError
        ? ` (cannot read /etc/passwd: ${db.passwdError})`
        : ` in /etc/passwd${suggestion(userPart, db.users.map((u) => u.name))}`;
      return { ok: false, message: `unknown user ${JSON.stringify(userPart)}${why}` };
    }
    uid = entry.uid;
  }

  let gid: number;
  if (groupPart === null) {
    gid = entry ? entry.gid : uid;
  } else if (/^\d+$/.test(groupPart)) {
    const n = parseId(groupPart);
    if (n === null) return { ok: false, message: `gid ${groupPart} is out of range (0 to ${MAX_ID})` };
    gid = n;
  } else {
    const g = db.groups.find((x) => x.name === groupPart);
    if (!g) {
      const why = db.groupError
        ? ` (cannot read /etc/group: ${db.groupError})`
        : ` in /etc/group${suggestion(groupPart, db.groups.map((g) => g.name))}`;
      return { ok: false, message: `unknown group ${JSON.stringify(groupPart)}${why}` };
    }
    gid = g.gid;
  }

  const groups = [gid];
  if (entry) {
    for (const g of db.groups) if (g.members.includes(entry.name) && !groups.includes(g.gid)) groups.push(g.gid);
  }
  return { ok: true, user: { uid, gid, groups, name: entry?.name ?? null, home: entry?.home ?? "/" } };
}
