// Linux signal numbers. x86-64 and aarch64 share the generic numbering.
export const SIG = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10,
  SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18,
  STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26,
  PROF: 27, WINCH: 28, IO: 29, PWR: 30, SYS: 31,
} as const;
export type SignalName = keyof typeof SIG;

/** glibc reserves 32 and 33 for its threads; SIGRTMIN is 34 for every program. */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

// signalName's table, built on first use: each built-in's first call costs start-up time.
let nameByNumber: Map<number, string> | null = null;

/** Signals tini forwards to the child (SIGCHLD drives reaping instead). */
export const FORWARDED: readonly number[] = [
  SIG.HUP, SIG.INT, SIG.QUIT, SIG.USR1, SIG.USR2, SIG.PIPE, SIG.ALRM, SIG.TERM, SIG.CONT,
  SIG.TSTP, SIG.WINCH, SIG.URG, SIG.XCPU, SIG.XFSZ, SIG.VTALRM, SIG.PROF, SIG.IO,
];

/**
 * Signals Bun 1.4.4's process.on cannot catch: it installs nothing for them, so until
 * the native helper catches them pidone ignores them (default again in the child).
 */
export const UNCATCHABLE_FROM_JS: readonly number[] = [SIG.STKFLT];
// A loop, not Array.from: each built-in's first use costs start-up time.
for (let s = SIGRTMIN; s <= SIGRTMAX; s++) (UNCATCHABLE_FROM_JS as number[]).push(s);

const PDEATHSIG_SPELLINGS: readonly SignalName[] = [
  "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
  "PIPE", "ALRM", "TERM", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
  "XFSZ", "VTALRM", "PROF", "WINCH", "SYS",
];

/** tini's -p vocabulary: exactly these SIGxxx spellings. */
export function pdeathsigByName(text: string): number | null {
  if (!text.startsWith("SIG")) return null;
  const bare = text.slice(3) as SignalName;
  return PDEATHSIG_SPELLINGS.includes(bare) ? SIG[bare] : null;
}

export function signalName(n: number): string {
  nameByNumber ??= new Map(Object.entries(SIG).map(([name, num]) => [num, `SIG${name}`]));
  const name = nameByNumber.get(n);
  if (name) return name;
  if (n >= SIGRTMIN && n <= SIGRTMAX) return n === SIGRTMIN ? "SIGRTMIN" : `SIGRTMIN+${n - SIGRTMIN}`;
  return `signal ${n}`;
}

/**
 * Parses HUP, SIGHUP, hup, 1, RTMIN+3, SIGRTMAX-1. Returns null when it is not a
 * Linux signal (0 is accepted only when allowZero, for "drop" in rewrites).
 */
export function parseSignal(text: string, allowZero = false): number | null {
  const t = text.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n === 0) return allowZero ? 0 : null;
    return n >= 1 && n <= SIGRTMAX && n !== 32 && n !== 33 ? n : null;
  }
  const bare = t.startsWith("SIG") ? t.slice(3) : t;
  if (bare in SIG) return SIG[bare as SignalName];
  const rt = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(bare);
  if (rt) {
    const base = rt[1] === "MIN" ? SIGRTMIN : SIGRTMAX;
    const off = rt[3] ? Number(rt[3]) * (rt[2] === "-" ? -1 : 1) : 0;
    const n = base + off;
    return n >= SIGRTMIN && n <= SIGRTMAX ? n : null;
  }
  return null;
}
