// The protocols of the single file's stub (src/native/stub.c), defined once: with pidone
// (src/sys/native.ts), the shared area's fields, the constants both sides use, and the
// exec trampoline's words and report records; with the packer (scripts/pack/), the
// manifest it writes into the stub. Pure data, no imports, so the build can read it too:
// scripts/pack/protocol-header.ts turns it into the C header the stub is compiled with
// (the structs themselves, the constants, and a static assertion per field offset and
// per struct size), and native.ts (through runtimeView, a macro evaluated at bundle time)
// and the packer take every offset from here. A change here is a change on both sides;
// change the magic with it, so that a file packed from mismatched builds fails at
// start-up instead of misreading the area.

/** The shared area's first bytes; pidone stops with one line when the stub's differ. */
export const MAGIC = "pidone-native-7";

/** The auxiliary vector entry whose value is the shared area's address ("PID1"). */
export const AT_PIDONE = 0x50494431;

export type CType = "char" | "u8" | "s32" | "u32" | "u64";

/** A C struct: its tag and its fields, in order. */
export interface Struct {
  name: string;
  fields: readonly Field[];
}

export interface Field {
  /** The C member's name. */
  name: string;
  /** A scalar, or a struct defined before this one. */
  type: CType | Struct;
  /** Elements, for an array. */
  count?: number;
  /** What the field holds, in one line (how each side uses it is told in stub.c). */
  meaning: string;
  /** Indexed by signal number: at least NSIG elements (the header asserts it). */
  perSignal?: boolean;
}

/** Constants of the protocol: name, [value, meaning]. */
export const CONSTANTS = {
  NSIG: [65, "signals 1..64; index 0 unused"],
  MAX_FDS: [256, "the capacity of fds"],
  FDS_UNKNOWN: [0xffffffff, "nfds when the descriptors could not be listed"],
  ACT_QUEUE: [0, "action: leave the signal to pidone's JavaScript"],
  ACT_DROP: [127, "action: forward nothing, but tell pidone it was dealt with"],
  ACT_QUIET: [128, "added to an action: once dealt with, do not wake pidone (it reads the count later)"],
  EXIT_NEVER: [0, "exit_on_watched: pidone's JavaScript ends the process"],
  EXIT_ALWAYS: [1, "exit_on_watched: exit once the watched pid is reaped in the handler"],
  EXIT_ALONE: [2, "exit_on_watched: the same, once no child is left either"],
  MAX_SEGMENTS: [8, "the manifest's capacity for ld.so's PT_LOAD segments"],
  MAX_LIBRARIES: [8, "the manifest's capacity for C libraries"],
  NAME_SLOT: [32, "bytes reserved in .dynstr for each library's name: /proc/self/fd/ and up to 10 digits"],
  MANIFEST_NATIVE: [1, "manifest flags: the payload is pidone, which takes over the native helper"],
  // The limits pidone refuses to start under (the stub for every mode, src/process/limits.ts
  // for services mode), from the benchmark's floors: a memory need lies between the warm
  // figure (the file's pages already in the page cache) and the cold one, by how much of
  // the file is not (see limit_memory in stub.c).
  LIMIT_MEMORY_WARM_MIB: [6, "the container memory limit every mode needs, its file in the page cache"],
  LIMIT_MEMORY_COLD_MIB: [8, "the same, its file not in the page cache"],
  LIMIT_MEMORY_SERVICES_WARM_MIB: [10, "the container memory limit services mode needs, its file in the page cache"],
  LIMIT_MEMORY_SERVICES_COLD_MIB: [12, "the same, its file not in the page cache"],
  LIMIT_MEMORY_RESIDENT_PERCENT: [12, "this much of the runtime's code in the page cache counts as all a start needs"],
  LIMIT_MEMORY_NEAR_PERCENT: [25, "a limit less than this much above a floor gets a warning"],
  LIMIT_MEMORY_READ_LITTLE_MIB: [64, "below this container memory limit, a start from a cold page cache reads little ahead"],
  LIMIT_ADDRESS_SPACE_MIB: [288, "RLIMIT_AS every mode needs"],
  LIMIT_DATA_MIB: [160, "RLIMIT_DATA every mode needs"],
  LIMIT_STACK_KIB: [512, "RLIMIT_STACK every mode needs"],
  LIMIT_ADDRESS_SPACE_SERVICES_MIB: [384, "RLIMIT_AS services mode needs (its output worker is a second runtime)"],
  LIMIT_TASKS_START: [2, "tasks (pids) pidone needs to start: the runtime's threads and a child"],
  LIMIT_TASKS_SERVICES: [3, "the same in services mode: the runtime's thread, the output worker and a service"],
} as const satisfies Record<string, readonly [number, string]>;

/** The constants' values by name. */
export const VALUES = Object.fromEntries(Object.entries(CONSTANTS).map(([name, [value]]) => [name, value])) as {
  [N in keyof typeof CONSTANTS]: (typeof CONSTANTS)[N][0];
};

/**
 * struct shared, in order. One page of state shared for the life of the process: the
 * stub's writable segment.
 */
export const SHARED_FIELDS = [
  { name: "magic", type: "char", count: 16, meaning: "MAGIC, NUL-padded" },
  { name: "size", type: "u32", meaning: "sizeof(struct shared)" },
  { name: "nfds", type: "u32", meaning: "entries in fds, or FDS_UNKNOWN (no /proc, or more than MAX_FDS)" },
  { name: "handler", type: "u64", meaning: "on_signal's address, for pidone's sigaction(2)" },
  { name: "envp", type: "u64", meaning: "the environment we were started with (char **, NULL-terminated)" },
  { name: "mask", type: "u64", meaning: "the signal mask we were started with (bit n-1: signal n)" },
  { name: "ignored", type: "u64", meaning: "the signals our parent left at SIG_IGN" },
  { name: "target", type: "s32", meaning: ">0 a pid, <0 a process group, 0: queue only (pidone decides)" },
  { name: "pipe", type: "s32", meaning: "the self-pipe's write end (O_NONBLOCK), -1 before pidone made it" },
  { name: "action", type: "u8", count: 72, perSignal: true, meaning: "per signal: ACT_QUEUE, ACT_DROP or the signal to forward, | ACT_QUIET" },
  { name: "count", type: "u32", count: 68, perSignal: true, meaning: "per signal: deliveries << 16 | deliveries forwarded (or dropped) in the handler" },
  { name: "fds", type: "s32", count: CONSTANTS.MAX_FDS[0], meaning: "descriptors above 2 we were started with, ascending" },
  { name: "sig_target", type: "s32", count: 68, perSignal: true, meaning: "per signal: a target that overrides `target` when nonzero" },
  { name: "reap", type: "s32", meaning: "nonzero: on SIGCHLD, on_signal reaps every ended child itself" },
  { name: "watch", type: "s32", meaning: "the pid whose status pidone needs (its main child), 0 for none" },
  { name: "watched_pid", type: "s32", meaning: "the watched pid once reaped in the handler, 0: no record to take" },
  { name: "watched_status", type: "s32", meaning: "the watched pid's raw wait status" },
  { name: "reaped", type: "u32", meaning: "children reaped in the handler in all (wraps), for tests and diagnostics" },
  { name: "exit_on_watched", type: "u32", meaning: "EXIT_NEVER, EXIT_ALWAYS or EXIT_ALONE" },
  { name: "exit_code", type: "u8", count: 256, meaning: "pidone's exit code for each of tini's codes (the status, or 128 + the signal)" },
  { name: "file_pages", type: "u32", meaning: "pages of the runtime's code sampled before it started; 0: not measured (no tight memory limit)" },
  { name: "file_resident", type: "u32", meaning: "how many of them were in the page cache then" },
  { name: "oom_known", type: "u32", meaning: "nonzero: oom_kills holds the container's OOM-kill count, read before the runtime started" },
  { name: "oom_kills", type: "u32", meaning: "that count (cgroup v2 memory.events, v1 memory.oom_control: oom_kill); unknown from 2^32 on" },
] as const satisfies readonly Field[];

export type SharedField = (typeof SHARED_FIELDS)[number]["name"];

/** Bytes per element; each scalar is aligned to its size, as C does on x86-64 and aarch64. */
export const TYPE_SIZE: Record<CType, number> = { char: 1, u8: 1, s32: 4, u32: 4, u64: 8 };

export interface Layout {
  /** Each field's byte offset. */
  offset: Record<string, number>;
  /** sizeof, padded to the alignment. */
  size: number;
  align: number;
}

/** C's layout of a struct: each member at the next multiple of its alignment. */
export function layout(fields: readonly Field[]): Layout {
  const offset: Record<string, number> = {};
  let at = 0;
  let align = 1;
  for (const f of fields) {
    const t = typeof f.type === "string" ? { size: TYPE_SIZE[f.type], align: TYPE_SIZE[f.type] } : layout(f.type.fields);
    at = Math.ceil(at / t.align) * t.align;
    offset[f.name] = at;
    at += t.size * (f.count ?? 1);
    align = Math.max(align, t.align);
  }
  return { offset, size: Math.ceil(at / align) * align, align };
}

const shared = layout(SHARED_FIELDS);
/** Each field's byte offset in struct shared. */
export const OFFSET = shared.offset as Record<SharedField, number>;
/** sizeof(struct shared). */
export const SIZE = shared.size;

// ---------------------------------------------------------------- the manifest

/**
 * The packer's half: written into the stub's read-only data after compilation (the
 * stub's `pidone_manifest`), read by the stub before anything else. All addresses are
 * absolute: the Bun executable is ET_EXEC, so nothing moves at run time.
 */
export const MANIFEST_MAGIC = "pidone-stub-v3";

export const SEGMENT: Struct = {
  name: "segment",
  fields: [
    { name: "vaddr", type: "u64", meaning: "relative to ld.so's load base" },
    { name: "offset", type: "u64", meaning: "in ld.so's own file" },
    { name: "filesz", type: "u64", meaning: "bytes from the file" },
    { name: "memsz", type: "u64", meaning: "bytes in memory (.bss included)" },
    { name: "prot", type: "u32", meaning: "PROT_* for mmap" },
    { name: "pad", type: "u32", meaning: "0" },
  ],
};

export const LIBRARY: Struct = {
  name: "library",
  fields: [
    { name: "offset", type: "u64", meaning: "of its bytes in our file" },
    { name: "size", type: "u64", meaning: "its length" },
    { name: "name_slot", type: "u64", meaning: "address of its NAME_SLOT-byte DT_NEEDED string in the .dynstr copy" },
    { name: "fd", type: "s32", meaning: "the fd number that string names" },
    { name: "pad", type: "u32", meaning: "0" },
    { name: "memfd_name", type: "char", count: 32, meaning: "the memfd's name, NUL-terminated" },
  ],
};

export const MANIFEST: Struct = {
  name: "manifest",
  fields: [
    { name: "magic", type: "char", count: 16, meaning: "MANIFEST_MAGIC, NUL-padded" },
    { name: "pack_id", type: "u64", meaning: "also found at self_offset in the file: we opened ourselves" },
    { name: "self_offset", type: "u64", meaning: "where this manifest sits in the file" },
    { name: "entry", type: "u64", meaning: "Bun's own e_entry" },
    { name: "phdr", type: "u64", meaning: "the original program headers, PT_INTERP included" },
    { name: "ldso_offset", type: "u64", meaning: "ld.so's file offset in ours (64 KiB aligned)" },
    { name: "ldso_span", type: "u64", meaning: "the address range ld.so's segments cover" },
    { name: "ldso_entry", type: "u64", meaning: "ld.so's entry, relative to its load base" },
    { name: "nsegments", type: "u32", meaning: "entries in segment" },
    { name: "nlibraries", type: "u32", meaning: "entries in library" },
    { name: "flags", type: "u32", meaning: "MANIFEST_NATIVE or 0" },
    { name: "pad", type: "u32", meaning: "0" },
    { name: "segment", type: SEGMENT, count: CONSTANTS.MAX_SEGMENTS[0], meaning: "ld.so's PT_LOADs" },
    { name: "library", type: LIBRARY, count: CONSTANTS.MAX_LIBRARIES[0], meaning: "the C libraries, each copied into a memfd" },
  ],
};

/** The structs the stub is compiled with, each after those it contains. */
export const STRUCTS: readonly Struct[] = [{ name: "shared", fields: SHARED_FIELDS }, SEGMENT, LIBRARY, MANIFEST];

/**
 * The exec trampoline: pidone posix_spawns its own file with
 *   argv = pidone MARKER [words...] END FILE ARGV0 ARGV1...
 * and the stub reports a failing step as a RECORD_SIZE-byte record {u32 step, s32 errno}
 * on the report descriptor.
 */
export const TRAMPOLINE = {
  /** argv[1] (binfmt_misc interpreters such as qemu-user replace argv[0]). */
  marker: "\x01pidone-exec",
  /** The option words; a word ending in "=" takes a value. */
  words: {
    REPORT: ["report=", "FD: where failures are reported; close-on-exec once the stub runs"],
    SEARCH: ["search", "search FILE in the child's PATH, as execvp does"],
    GROUPS: ["groups=", "G,G,...: setgroups"],
    GID: ["gid=", "G: setresgid"],
    UID: ["uid=", "U: setresuid"],
    LISTEN_PID: ["listen-pid", "LISTEN_PID becomes the child's own pid, LISTEN_PIDFDID goes"],
    CTTY: ["ctty", "take the terminal on fd 0 (TIOCSCTTY), best effort"],
    IGNORE: ["ignore=", "SIG,SIG,...: signals to leave ignored in the child"],
    END: ["--", "the end of the words: FILE and the program's argv follow"],
  },
  /** Report records' step numbers, and the system call each names in pidone's messages. */
  steps: {
    USAGE: [1, "the trampoline's arguments"],
    SETGROUPS: [2, "setgroups"],
    SETRESGID: [3, "setresgid"],
    SETRESUID: [4, "setresuid"],
    CTTY: [5, "TIOCSCTTY"],
    EXEC: [6, "execve"],
  },
  /** Added to a step that only warns: the trampoline carried on. */
  STEP_WARNING: 0x100,
  RECORD_SIZE: 8,
} as const;

/**
 * What pidone's native.ts reads, as plain values: imported as a Bun macro (`with { type:
 * "macro" }`), this runs at bundle time and the bundle holds only the resulting literal,
 * not the tables and the layout computed at every start.
 */
export function runtimeView() {
  return {
    MAGIC,
    AT_PIDONE,
    SIZE,
    AT: OFFSET,
    ...VALUES,
    MARKER: TRAMPOLINE.marker,
    WORD: Object.fromEntries(Object.entries(TRAMPOLINE.words).map(([name, [word]]) => [name, word])) as {
      [N in keyof typeof TRAMPOLINE.words]: (typeof TRAMPOLINE.words)[N][0];
    },
    /** Step number → the system call's name in pidone's messages. */
    STEP_NAMES: Object.fromEntries(Object.values(TRAMPOLINE.steps)) as Record<number, string>,
    STEP_WARNING: TRAMPOLINE.STEP_WARNING,
    RECORD_SIZE: TRAMPOLINE.RECORD_SIZE,
  };
}

/** The LIMIT_* constants, for src/process/limits.ts (a macro too: values only in the bundle). */
export function limitsView() {
  return Object.fromEntries(Object.entries(VALUES).filter(([name]) => name.startsWith("LIMIT_"))) as {
    [N in keyof typeof VALUES as N extends `LIMIT_${string}` ? N : never]: (typeof VALUES)[N];
  };
}

/**
 * The control protocol, spoken over services mode's Unix stream socket (src/control/)
 * by its two clients: the stub's thin client (stub.c, section "ctl", which runs
 * without the runtime so that a HEALTHCHECK every few seconds stays cheap) and
 * src/control/client.ts (the plain -glibc file). One request per connection:
 *
 *   client: "pidone-ctl 1 ARGC\n" then ARGC arguments, each followed by a NUL byte
 *           (the words after `--ctl`: COMMAND ARGS...; at most REQUEST_MAX bytes in all,
 *           sent within REQUEST_TIMEOUT_MS of connecting)
 *   server: "CODE\n" then the answer's text, and closes. CODE is the client's exit
 *           status; the client copies the text to stdout when CODE is 0, else to stderr.
 *
 * The server formats every answer (text and JSON): a client only copies.
 */
export const CONTROL = {
  /** The request's first word and version. */
  HEADER: "pidone-ctl 1",
  /** Where services mode listens unless told otherwise (when /run is writable). */
  DEFAULT_PATH: "/run/pidone/control.sock",
  /** The variable that names the socket, for pidone and its clients. */
  PATH_VARIABLE: "PIDONE_CONTROL",
  /** The file name that makes pidone its own client, as `pidone --ctl`. */
  CLIENT_NAME: "pidonectl",
  REQUEST_MAX: 4096,
  /** A client that has not sent its whole request by then is dropped. */
  REQUEST_TIMEOUT_MS: 2000,
  /** A client gives up on an answer after this long (exit NO_ANSWER; `health`: FAILED). */
  CLIENT_TIMEOUT_MS: 30_000,
  /** `stop`/`restart` answer once done, or after this long with what is still under way. */
  WAIT_MAX_MS: 20_000,
  /** Connections served at once; more wait in the kernel's backlog. */
  MAX_CLIENTS: 128,
  /** Exit codes of `pidone --ctl`. `health` uses only OK and FAILED (Docker reserves 2). */
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  NO_ANSWER: 3,
} as const;
