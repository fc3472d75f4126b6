/*
 * pidone's stub: the first code the kernel runs in a single-file release.
 *
 * The packer (scripts/pack/) turned Bun's PT_INTERP program header into a PT_LOAD for
 * this code (and PT_NOTE into one for its writable data) and pointed e_entry here, so
 * the kernel starts the file as a static executable: no /lib64/ld-linux-*.so.2 is
 * needed in the image. This stub then does what the kernel would have done with an
 * interpreter, from pieces appended to our own file: it maps glibc's ld.so, hands it the
 * C libraries as sealed memfds at the fd numbers the packer wrote into DT_NEEDED
 * (/proc/self/fd/1000...), fixes the auxiliary vector and jumps to ld.so. ld.so comes
 * back once it has loaded them (after_ldso): the libraries are then mapped from our file
 * itself and the memfds freed, before the runtime's first instruction.
 *
 * It is also pidone's native helper, the part of an init a managed runtime cannot be:
 *  - signals are blocked at the first instruction, so nothing sent while the runtime
 *    starts is lost or fatal, and every runtime thread inherits the block;
 *  - what pidone must hand its child is recorded before anything changes it: the signal
 *    mask, the ignored signals, the environment, the inherited descriptors;
 *  - the runtime starts on a rebuilt stack whose environment holds its own settings and
 *    none of the variables meant for the application (BUN_*, LD_*, ...); argv and the
 *    strings themselves stay where the kernel put them (/proc/self/cmdline unchanged);
 *  - on_signal, an async-signal-safe handler pidone installs, forwards each signal with
 *    kill() to the target pidone publishes here and wakes pidone's event loop through
 *    a self-pipe (the shared area below, found through our own auxv entry AT_PIDONE);
 *  - started with TRAMPOLINE_MARKER as argv[1], the file never starts Bun: it performs
 *    what posix_spawn cannot (user switch, LISTEN_PID, taking a terminal) and execs.
 *
 * What pidone and this file share (struct shared, its magic, the constants, the
 * trampoline's words and report records) and what the packer writes into it (struct
 * manifest) are defined once, in src/native/protocol.ts; the build writes them as
 * protocol.h, which asserts every offset at compile time.
 *
 * Freestanding: raw system calls, no libc, no relocations (the packer places this code
 * at any 64 KiB-aligned address and proves it position independent by linking it
 * twice). One source for x86-64 and aarch64.
 */

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef int s32;
typedef long s64;

#include "protocol.h" /* generated from src/native/protocol.ts by scripts/pack/ */

#define STR_(x) #x
#define STR(x) STR_(x)

/* ------------------------------------------------------------------ system calls */

#if defined(__x86_64__)
#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_mmap 9
#define NR_mprotect 10
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_rt_sigprocmask 14
#define NR_ioctl 16
#define NR_pread64 17
#define NR_sched_yield 24
#define NR_mremap 25
#define NR_mincore 27
#define NR_madvise 28
#define NR_getpid 39
#define NR_sendfile 40
#define NR_socket 41
#define NR_connect 42
#define NR_sendto 44
#define NR_setsockopt 54
#define NR_execve 59
#define NR_wait4 61
#define NR_kill 62
#define NR_fcntl 72
#define NR_setgroups 116
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_getdents64 217
#define NR_clock_gettime 228
#define NR_exit_group 231
#define NR_openat 257
#define NR_ppoll 271
#define NR_dup3 292
#define NR_prlimit64 302
#define NR_memfd_create 319

static inline s64 syscall6(s64 n, s64 a, s64 b, s64 c, s64 d, s64 e, s64 f) {
  register s64 r10 __asm__("r10") = d;
  register s64 r8 __asm__("r8") = e;
  register s64 r9 __asm__("r9") = f;
  s64 ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

/*
 * The kernel enters with %rsp at argc (16-byte aligned). The first instruction blocks
 * signals (rt_sigprocmask(SIG_BLOCK, &early_block, &shared.mask)): a SIGTERM now stays
 * pending until pidone has a handler instead of killing us, or, as PID 1, being dropped.
 * stub_main returns how many bytes the rebuilt stack needs; it goes right below the
 * kernel's, and stub_stack fills it and returns the entry to jump to. ld.so's _start
 * reads only %rsp; %rdx (an atexit function for the program by the ABI) must be 0.
 */
__asm__(".section .text.entry,\"ax\",@progbits\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  mov $14, %eax\n"
        "  xor %edi, %edi\n"
        "  lea early_block(%rip), %rsi\n"
        "  lea pidone_shared+" STR(SHARED_OFFSET_MASK) "(%rip), %rdx\n"
        "  mov $8, %r10d\n"
        "  syscall\n"
        "  mov %rsp, %rdi\n"
        "  call stub_main\n"
        "  sub %rax, %rsp\n"
        "  mov %rsp, %rdi\n"
        "  call stub_stack\n"
        "  xor %edx, %edx\n"
        "  jmp *%rax\n"
        /* ld.so jumps here (AT_ENTRY) with %rdx = its _dl_fini, which the runtime's
         * _start passes to atexit: kept across the call, %rsp back as it came. */
        ".globl after_ldso\n"
        ".type after_ldso,@function\n"
        "after_ldso:\n"
        "  sub $8, %rsp\n"
        "  push %rdx\n"
        "  call release_libraries\n"
        "  pop %rdx\n"
        "  add $8, %rsp\n"
        "  jmp *%rax\n"
        ".previous\n");

#elif defined(__aarch64__)
#define NR_dup3 24
#define NR_fcntl 25
#define NR_ioctl 29
#define NR_openat 56
#define NR_close 57
#define NR_getdents64 61
#define NR_read 63
#define NR_write 64
#define NR_pread64 67
#define NR_sendfile 71
#define NR_ppoll 73
#define NR_exit_group 94
#define NR_clock_gettime 113
#define NR_sched_yield 124
#define NR_kill 129
#define NR_rt_sigaction 134
#define NR_rt_sigprocmask 135
#define NR_setresuid 147
#define NR_setresgid 149
#define NR_setgroups 159
#define NR_getpid 172
#define NR_socket 198
#define NR_connect 203
#define NR_sendto 206
#define NR_setsockopt 208
#define NR_munmap 215
#define NR_mremap 216
#define NR_execve 221
#define NR_mmap 222
#define NR_mprotect 226
#define NR_mincore 232
#define NR_madvise 233
#define NR_wait4 260
#define NR_prlimit64 261
#define NR_memfd_create 279

static inline s64 syscall6(s64 n, s64 a, s64 b, s64 c, s64 d, s64 e, s64 f) {
  register s64 x8 __asm__("x8") = n;
  register s64 x0 __asm__("x0") = a;
  register s64 x1 __asm__("x1") = b;
  register s64 x2 __asm__("x2") = c;
  register s64 x3 __asm__("x3") = d;
  register s64 x4 __asm__("x4") = e;
  register s64 x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}

/* Same contract as above: signals blocked first, then sp at argc in, bytes to reserve
 * back in x0, then the rebuilt stack and the entry in x0. */
__asm__(".section .text.entry,\"ax\",%progbits\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  mov x8, #135\n"
        "  mov x0, xzr\n"
        "  adrp x1, early_block\n"
        "  add x1, x1, :lo12:early_block\n"
        "  adrp x2, pidone_shared+" STR(SHARED_OFFSET_MASK) "\n"
        "  add x2, x2, :lo12:pidone_shared+" STR(SHARED_OFFSET_MASK) "\n"
        "  mov x3, #8\n"
        "  svc #0\n"
        "  mov x0, sp\n"
        "  bl stub_main\n"
        "  mov x9, sp\n"
        "  sub x9, x9, x0\n"
        "  mov sp, x9\n"
        "  mov x0, x9\n"
        "  bl stub_stack\n"
        "  mov x16, x0\n"
        "  mov x0, xzr\n"
        "  br x16\n"
        /* ld.so jumps here (AT_ENTRY) with x0 = its _dl_fini, kept in x19. */
        ".globl after_ldso\n"
        ".type after_ldso,%function\n"
        "after_ldso:\n"
        "  mov x19, x0\n"
        "  bl release_libraries\n"
        "  mov x16, x0\n"
        "  mov x0, x19\n"
        "  br x16\n"
        ".previous\n");

#else
#error "the stub supports x86-64 and aarch64"
#endif

#define sys(n, a, b, c, d, e, f) syscall6(n, (s64)(a), (s64)(b), (s64)(c), (s64)(d), (s64)(e), (s64)(f))

/* Both architectures share these values (asm-generic and x86-64 agree). */
#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_CLOEXEC 0x80000
#define O_RDWR 2
#define O_PATH 0x200000
#define PROT_NONE 0
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MADV_RANDOM 1
#define MADV_DONTDUMP 16
#define MAP_ANONYMOUS 0x20
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define PT_LOAD 1
#define PT_DYNAMIC 2
#define PT_GNU_RELRO 0x6474e552
#define PF_X 1
#define PF_W 2
#define PF_R 4
#define DT_DEBUG 21
#define F_GETFD 1
#define F_SETFD 2
#define FD_CLOEXEC 1
#define F_DUPFD_CLOEXEC 1030
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 1
#define F_SEAL_SHRINK 2
#define F_SEAL_GROW 4
#define F_SEAL_WRITE 8
#define MFD_CLOEXEC 1
#define MFD_ALLOW_SEALING 2
#define MFD_NOEXEC_SEAL 8
#define SIG_SETMASK 2
#define SIGCHLD 17
#define WNOHANG 1
#define TIOCSCTTY 0x540E
#define ENOENT 2
#define ENOEXEC 8
#define EBADF 9
#define ECHILD 10
#define EACCES 13
#define ENODEV 19
#define ENOTDIR 20
#define EINVAL 22
#define ENAMETOOLONG 36
#define ETIMEDOUT 110
#define ESTALE 116
#define RLIMIT_DATA 2
#define RLIMIT_STACK 3
#define RLIMIT_AS 9

#define AT_NULL 0
#define AT_PHDR 3
#define AT_PHNUM 5
#define AT_PAGESZ 6
#define AT_BASE 7
#define AT_ENTRY 9
#define AT_EXECFN 31

#define BIT(sig) (1UL << ((sig) - 1))

/* ------------------------------------------------------------------ the manifest */

/*
 * Written by the packer after compilation (struct manifest and its constants come from
 * protocol.h, the packer's offsets from the same definition). MANIFEST_NATIVE is set
 * when the JavaScript payload carries src/sys/native.ts: only such a payload unblocks
 * signals, installs on_signal and reads what we recorded. Any other (the benchmark's
 * floors) gets the plain loader: no block, no environment changes.
 */
__attribute__((section(".rodata.manifest"), used, aligned(16))) const struct manifest pidone_manifest = {
    .magic = MANIFEST_MAGIC,
};

static const struct manifest *manifest(void) {
  const struct manifest *m = &pidone_manifest;
  /* The packer fills the manifest in after compilation: keep the compiler from folding
   * the placeholder values above into the code. */
  __asm__("" : "+r"(m));
  return m;
}

/* ------------------------------------------------------------------ the shared area */

/*
 * One page of state pidone and this file share for the life of the process: struct
 * shared, from protocol.h (src/sys/native.ts reads it and stops at start-up when the
 * magic or the size differ). pidone writes target, sig_target, pipe, action, reap, watch
 * and the exit table; on_signal reads them and writes count, reaped, watch and the
 * watched record; everything else is written once, here, before the runtime exists.
 *
 *  - count: one atomic add per delivery, so pidone reads both halves from one
 *    consistent word.
 *  - sig_target: in services mode, the one service that takes that signal, so its
 *    forward needs no JavaScript either.
 *  - reap: set by pidone only when it needs no status but the watched pid's, and only
 *    after it has published `watch`.
 *  - watch: on_signal sets it back to 0 when it reaps that pid and fills in the record
 *    (watched_status first, watched_pid last with release ordering).
 *  - exit_on_watched: once the watched pid is reaped here, the process ends right away
 *    with exit_code[code], code being tini's (the exit status, or 128 + the signal):
 *    EXIT_ALWAYS, or EXIT_ALONE only when no child is left either. Set by pidone, before
 *    `watch`, only where it has nothing else to do then (tini's mode, nothing to log;
 *    EXIT_ALONE where it would stop what the main program left behind, and with no child
 *    left, PID 1 or a subreaper has no descendant left to stop): its JavaScript would
 *    only call _exit after a turn of the event loop.
 *
 * Its address goes to the runtime as our own auxv entry AT_PIDONE: glibc's getauxval
 * returns any type it finds in the vector; ld.so ignores types it does not know.
 */
__attribute__((used, aligned(64))) struct shared pidone_shared = {
    .magic = SHARED_MAGIC,
    .size = SHARED_SIZE,
    .nfds = FDS_UNKNOWN,
    .pipe = -1,
};

/*
 * Blocked from the first instruction: everything pidone may handle. Not the signals the
 * runtime needs delivered to the thread that raised them (a fault while blocked kills
 * the process instead of reaching its handler), not SIGPWR (JavaScriptCore suspends
 * threads with it for garbage collection: blocked, the collector would wait forever),
 * not glibc's 32 and 33 (thread cancellation, set*id across threads), and not KILL and
 * STOP, which cannot be blocked.
 */
#define RUNTIME_SIGNALS \
  (BIT(4) | BIT(5) | BIT(6) | BIT(7) | BIT(8) | BIT(11) | BIT(30) | BIT(31) | BIT(32) | BIT(33))
#define UNBLOCKABLE (BIT(9) | BIT(19))
__attribute__((used)) const u64 early_block = ~(RUNTIME_SIGNALS | UNBLOCKABLE);

/* ------------------------------------------------------------------ the signal handler */

/*
 * tini's loop, run where the signal lands: every child that has ended, until wait4 says
 * none has (0) or none is left (-ECHILD). pidone's JavaScript would spend one event-loop
 * turn and one FFI call per zombie.
 *
 * Races, all settled by the kernel handing each zombie to exactly one waiter: this loop
 * may run on two threads at once, and next to pidone's own waitpid(-1) loop; whoever
 * gets the watched pid records it (only one wait4 call can return it), everybody else
 * never sees it. The compare-and-swap on watch makes the record a one-shot per
 * publication even if the pid were reused meanwhile, so a later record cannot overwrite
 * one pidone has not taken yet. The record is complete (release) before count is
 * incremented and the byte written, so the wake-up that follows always finds it.
 *
 * Returns whether pidone must wake up: for the record, or because no child is left
 * (its draining ends on its own waitpid's ECHILD). Otherwise some child still runs, and
 * its exit brings another SIGCHLD: by induction, the last exit is answered by an ECHILD
 * here or in pidone's own loop. A storm of orphans then costs pidone no event-loop turn
 * per exit, only this loop, as in tini.
 *
 * With exit_on_watched, the watched pid's end is pidone's own, as in tini: once the loop
 * has taken every zombie there is (and, with EXIT_ALONE, wait4 says no child is left),
 * the process exits with the table's code. The record is written all the same, for a
 * pidone whose loop got there first, or that has a child left to stop. Not for a SIGKILL
 * end where the OOM-kill count is known: pidone may have an OOM kill to name.
 */
static int reap_children(struct shared *s) {
  int wake = 0;
  u32 exit_mode = EXIT_NEVER; /* read once, with the watched pid's status */
  s32 exit_code = 0;
  for (;;) {
    s32 status = 0;
    s64 pid = sys(NR_wait4, -1, &status, WNOHANG, 0, 0, 0);
    if (pid <= 0) {
      if (exit_mode == EXIT_ALWAYS || (exit_mode == EXIT_ALONE && pid == -ECHILD))
        for (;;) sys(NR_exit_group, s->exit_code[exit_code], 0, 0, 0, 0, 0);
      return pid < 0 ? 1 : wake;
    }
    __atomic_fetch_add(&s->reaped, 1, __ATOMIC_RELAXED);
    s32 expected = (s32)pid;
    if (__atomic_compare_exchange_n(&s->watch, &expected, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
      __atomic_store_n(&s->watched_status, status, __ATOMIC_RELAXED);
      __atomic_store_n(&s->watched_pid, (s32)pid, __ATOMIC_RELEASE);
      wake = 1;
      exit_mode = __atomic_load_n(&s->exit_on_watched, __ATOMIC_ACQUIRE);
      exit_code = (status & 0x7f) ? 128 + (status & 0x7f) : (status >> 8) & 0xff;
      /* A SIGKILL may be the OOM killer's: pidone compares the count (oom_known). */
      if ((status & 0x7f) == 9 && s->oom_known) exit_mode = EXIT_NEVER;
    }
  }
}

/*
 * Installed by pidone (src/signals/intake.ts) for every signal it handles, with every
 * handled signal in sa_mask. Async-signal-safe by construction: raw system calls (which
 * leave errno alone), lock-free atomics, no state of its own. It may run on any thread
 * that has the signal unblocked, concurrently with itself on another.
 *
 * The forward happens here rather than in JavaScript: a signal then costs one kill()
 * after delivery, not a trip through the event loop. If kill() fails (the target has
 * gone), the delivery is left to pidone, which reports it. Once forwarded, the CPU goes
 * to whoever the kill() woke (sched_yield): the signal is for the child, and on a busy
 * or single CPU everything this thread does next (returning from the handler, the
 * interrupted epoll_pwait2, the event loop) would otherwise run first; on an idle
 * machine it also keeps the child on this CPU instead of waking another (the
 * benchmark's signal latency shows both, pinned and unpinned). A quiet signal, once
 * forwarded, does not even wake the event loop; nor does a SIGCHLD once reaped here,
 * unless pidone has something to learn from it (reap_children).
 */
__attribute__((used)) void on_signal(int sig) {
  struct shared *s = &pidone_shared;
  if (sig < 1 || sig >= NSIG) return;
  /* Before the count and the byte: pidone, woken, must find the record and, when this
   * was the last child, wait4's ECHILD. */
  int quiet = sig == SIGCHLD && __atomic_load_n(&s->reap, __ATOMIC_ACQUIRE) && !reap_children(s);
  u32 act = __atomic_load_n(&s->action[sig], __ATOMIC_ACQUIRE);
  u32 out = act & ~ACT_QUIET;
  s32 target = __atomic_load_n(&s->sig_target[sig], __ATOMIC_ACQUIRE);
  if (!target) target = __atomic_load_n(&s->target, __ATOMIC_ACQUIRE);
  u32 done = 0;
  if (out != ACT_QUEUE && target != 0) done = out == ACT_DROP || sys(NR_kill, target, out, 0, 0, 0, 0) == 0;
  if (done && out != ACT_DROP) sys(NR_sched_yield, 0, 0, 0, 0, 0, 0);
  __atomic_fetch_add(&s->count[sig], 0x10000u + done, __ATOMIC_RELEASE);
  if ((done && (act & ACT_QUIET)) || quiet) return;
  s32 fd = __atomic_load_n(&s->pipe, __ATOMIC_ACQUIRE);
  /* The byte only wakes the event loop; pidone reads the counts. A full pipe (EAGAIN)
   * already holds a wake-up. */
  if (fd >= 0) {
    u8 byte = (u8)sig;
    sys(NR_write, fd, &byte, 1, 0, 0, 0);
  }
}

/* ------------------------------------------------------------------ small helpers */

static u64 length(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}

/* Does `s` start with `prefix`? */
static int starts(const char *s, const char *prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

/* `s` past `prefix`, or 0 when it does not start with it. */
static const char *after(const char *s, const char *prefix) {
  return starts(s, prefix) ? s + length(prefix) : 0;
}

static int equal(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

static void say(const char *s) {
  sys(NR_write, 2, s, length(s), 0, 0, 0);
}

static char *decimal(char *end, u64 v) {
  *--end = 0;
  do *--end = (char)('0' + v % 10);
  while (v /= 10);
  return end;
}

/* A decimal u32 at *p, advancing *p past it; -1 when there is none or it overflows. */
static s64 parse_u32(const char **p) {
  const char *s = *p;
  u64 v = 0;
  if (*s < '0' || *s > '9') return -1;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (u64)(*s++ - '0');
    if (v > 0xffffffffUL) return -1;
  }
  *p = s;
  return (s64)v;
}

static const char *errno_name(s64 e) {
  switch (e) {
    case 1: return "operation not permitted";
    case 2: return "no such file or directory";
    case 9: return "bad file descriptor";
    case 12: return "out of memory";
    case 13: return "permission denied";
    case 22: return "invalid argument";
    case 23: return "too many open files in system";
    case 24: return "too many open files";
    case 38: return "function not implemented";
    default: return "error";
  }
}

/* One line on stderr, then exit 1 like any pidone start-up failure. */
__attribute__((noreturn)) static void die(const char *what, s64 err, const char *hint) {
  char num[24];
  /* Out of descriptors says nothing about /proc or memfd: the limit is the cause. The
   * figures are src/process/startup.ts's, with the libraries' four memfds. */
  if (err == 24)
    hint = ": the descriptor limit (ulimit -n, RLIMIT_NOFILE) is too low: the single-file pidone needs 11 beyond"
           " 0-2 and what it inherits, 22 in services mode";
  if (err == 23) hint = ": the system's file table is full (sysctl fs.file-max)";
  say("pidone: ");
  say(what);
  if (err) {
    say(": ");
    say(errno_name(err));
    say(" (errno ");
    say(decimal(num + sizeof num, (u64)err));
    say(")");
  }
  if (hint) say(hint);
  say("\n");
  for (;;) sys(NR_exit_group, 1, 0, 0, 0, 0, 0);
}

static s64 open_read(const char *path) {
  return sys(NR_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
}

/* ------------------------------------------------------------------ what we inherited */

/*
 * The signals our parent left ignored: the runtime ignores SIGPIPE and SIGXFSZ before
 * pidone's first line, so only now can anyone tell what the child should get.
 */
static void record_ignored(struct shared *s) {
  u64 old[4]; /* the kernel's struct sigaction: handler first, on both architectures */
  u64 dfl[4] = {0, 0, 0, 0};
  for (s32 sig = 1; sig < NSIG; sig++) {
    old[0] = 0;
    if (sig == 9 || sig == 19) continue;
    if (sys(NR_rt_sigaction, sig, 0, old, 8, 0, 0) == 0 && old[0] == 1 /* SIG_IGN */) {
      s->ignored |= BIT(sig);
      /* The runtime installs its own handlers for these anyway, and JavaScriptCore
       * complains on stderr about an ignored SIGPWR. The child gets them ignored again
       * through the trampoline (ignore=...). */
      if (BIT(sig) & RUNTIME_SIGNALS) sys(NR_rt_sigaction, sig, dfl, 0, 8, 0, 0);
    }
  }
}

/*
 * The descriptors above 2 our parent passed, before the runtime (or this stub) opens
 * any: pidone passes exactly these on. Every one of them survived our execve, so none
 * is close-on-exec yet; the runtime marks them so later.
 */
struct dirent64 {
  u64 ino;
  s64 off;
  u16 reclen;
  u8 type;
  char name[];
};

static void record_fds(struct shared *s) {
  s64 dir = open_read("/proc/self/fd");
  if (dir < 0) return; /* FDS_UNKNOWN: without /proc we stop with a clear message below */
  u32 n = 0;
  s32 overflow = 0;
  char buf[2048] __attribute__((aligned(8)));
  for (;;) {
    s64 got = sys(NR_getdents64, dir, buf, sizeof buf, 0, 0, 0);
    if (got <= 0) {
      if (got < 0) overflow = 1;
      break;
    }
    for (s64 at = 0; at < got;) {
      struct dirent64 *d = (struct dirent64 *)(buf + at);
      at += d->reclen;
      const char *p = d->name;
      s64 fd = parse_u32(&p);
      if (fd <= 2 || *p || fd == dir) continue;
      if (n == MAX_FDS) {
        overflow = 1;
        break;
      }
      /* getdents lists them in no promised order: insert in place. */
      u32 i = n++;
      while (i > 0 && s->fds[i - 1] > fd) s->fds[i] = s->fds[i - 1], i--;
      s->fds[i] = (s32)fd;
    }
    if (overflow) break;
  }
  sys(NR_close, dir, 0, 0, 0, 0, 0);
  s->nfds = overflow ? FDS_UNKNOWN : n;
}

/* ------------------------------------------------------------------ the runtime's environment */

/*
 * Variables that reconfigure the runtime or its loader: meant for the application, they
 * reach it through pidone byte for byte, but pidone itself must not obey them
 * (BUN_OPTIONS=--cpu-prof would write a profile, LD_PRELOAD would load into PID 1,
 * BUN_BE_BUN=1 would even turn pidone into bun). MIMALLOC_*: Bun's allocator. Names
 * with '=' are whole names, the rest prefixes. A string list, not a pointer array:
 * an array of pointers would need relocations.
 */
static const char hidden_names[] = "BUN_\0LD_\0MALLOC_\0MIMALLOC_\0GLIBC_TUNABLES=\0NODE_OPTIONS=\0";
/*
 * The runtime's own settings, read only at its start: Bun's GC timer off (it wakes an
 * idle process many times a second); JavaScriptCore without the concurrent JIT's worker
 * threads, without the thread that pre-faults heap blocks, without timer-driven
 * collections (a collection and helper threads waking long after start), and marking on
 * the collecting thread alone (a parallel marker is a thread started at a collection,
 * mid-run: under a full pids limit the runtime aborts when it cannot create one), and
 * collections on the thread that asks for them (the full ones pidone runs itself,
 * src/process/gc.ts, would otherwise start the collector's thread mid-run); and mimalloc
 * without its scavenger thread, which purges freed pages from a timer (the allocating
 * thread purges them itself instead). An idle pidone then runs on one thread and never
 * wakes, and starts faster, not slower (the benchmark's README has the figures).
 * Garbage is still collected as allocation and pidone's own work demand.
 */
static const char runtime_settings[] =
    "BUN_GC_TIMER_DISABLE=1\0"
    "BUN_JSC_useConcurrentJIT=false\0"
    "BUN_JSC_useWarmUpMarkedBlocks=false\0"
    "BUN_JSC_collectionTimerMaxPercentCPU=0\0"
    "BUN_JSC_numberOfGCMarkers=1\0"
    "BUN_JSC_useConcurrentGC=false\0"
    /* No top JIT tier: its compilations keep their memory for the life of a busy
     * pidone, and its code is no faster on pidone's short loops (the soak and the
     * output's throughput show it). */
    "BUN_JSC_useFTLJIT=false\0"
    "MIMALLOC_SCAVENGER=0\0"
    /* JavaScriptCore reserves its JIT's address space at start; by default a range that
     * an address-space limit (ulimit -v) refuses, and without the JIT bun:ffi refuses to
     * load. pidone's compiled code fits many times in this much. */
    "BUN_JSC_jitMemoryReservationSize=4194304\0"
    /* mimalloc reserves its arenas' address space ahead too: segments are mapped as the
     * heap grows instead. */
    "MIMALLOC_ARENA_RESERVE=0\0";

static int hidden(const char *entry) {
  for (const char *h = hidden_names; *h; h += length(h) + 1)
    if (starts(entry, h)) return 1;
  return 0;
}

/* Counts the settings and, when `out` is given, stores pointers to them. */
static u64 settings(const char **out) {
  u64 n = 0;
  for (const char *e = runtime_settings; *e; e += length(e) + 1, n++)
    if (out) out[n] = e;
  return n;
}

/* ------------------------------------------------------------------ the exec trampoline */

/*
 * pidone (src/process/spawn.ts, src/sys/native.ts) posix_spawns /proc/self/exe with
 *   argv = pidone TRAMPOLINE_MARKER [report=FD] [search] [groups=G,G...] [gid=G] [uid=U]
 *          [listen-pid] [ctty] [ignore=SIG,SIG...] -- FILE ARGV0 ARGV1...
 * (the words are protocol.h's WORD_*) and the child's environment, mask, dispositions,
 * descriptors, session and working directory already set by posix_spawn. We do what
 * posix_spawn cannot, in this order (ignore=: signals our parent ignored that the
 * runtime handles in pidone, which posix_spawn can only reset to their default),
 * restore the mask the child was given, and execve FILE (searched in the child's PATH
 * with `search`, as execvp does). Bun is never started: this costs an execve of our own
 * file (nothing of it is read but this code) and a few system calls.
 *
 * A failure goes to FD as {u32 step, s32 errno} and ends us with 127; a step that only
 * warns (taking the terminal) has STEP_WARNING set and we carry on. FD is close-on-exec
 * once we run, so pidone reads end-of-file as "FILE is running".
 */
#define MAX_GROUPS 65536 /* the kernel's NGROUPS_MAX */
#define PATH_MAX 4096

static s32 report_fd = -1;

static void report(u32 step, s64 err) {
  if (report_fd < 0) return;
  u32 record[2] = {step, (u32)(s32)err};
  _Static_assert(sizeof record == REPORT_RECORD_SIZE, "src/native/protocol.ts: the report record");
  sys(NR_write, report_fd, record, sizeof record, 0, 0, 0);
}

__attribute__((noreturn)) static void fail(u32 step, s64 err) {
  report(step, err);
  for (;;) sys(NR_exit_group, 127, 0, 0, 0, 0, 0);
}

/* execve, and for a file with no #! line that is not ELF, /bin/sh FILE as execvp does
 * (args[-1] is FILE's slot, free by then). Once /bin/sh was tried the search is over. */
static s64 try_exec(const char *path, char **args, char **envp, int *final) {
  s64 r = sys(NR_execve, path, args, envp, 0, 0, 0);
  if (r != -ENOEXEC) return r;
  *final = 1;
  args[-1] = "/bin/sh";
  args[0] = (char *)path;
  return sys(NR_execve, "/bin/sh", args - 1, envp, 0, 0, 0);
}

/* execvpe(3) with the child's PATH: the errors that end the search are glibc's. */
static s64 exec_searching(const char *file, char **args, char **envp, int search) {
  int final = 0;
  if (!search) return try_exec(file, args, envp, &final);
  for (const char *p = file; *p; p++)
    if (*p == '/') return try_exec(file, args, envp, &final);
  const char *path = "/bin:/usr/bin";
  for (char **e = envp; *e; e++)
    if (starts(*e, "PATH=")) {
      path = *e + 5;
      break;
    }
  u64 flen = length(file);
  s64 result = -ENOENT;
  char buf[PATH_MAX];
  for (const char *dir = path;; dir++) {
    const char *end = dir;
    while (*end && *end != ':') end++;
    u64 dlen = (u64)(end - dir);
    if (dlen == 0) {
      buf[0] = '.'; /* an empty entry is the working directory */
      dlen = 1;
    } else if (dlen + 1 + flen + 1 > sizeof buf) {
      result = -ENAMETOOLONG;
      dlen = 0;
    } else {
      for (u64 i = 0; i < dlen; i++) buf[i] = dir[i];
    }
    if (dlen) {
      buf[dlen] = '/';
      for (u64 i = 0; i <= flen; i++) buf[dlen + 1 + i] = file[i];
      s64 r = try_exec(buf, args, envp, &final);
      if (final) return r;
      if (r == -EACCES) result = r;
      else if (r != -ENOENT && r != -ENOTDIR && r != -ESTALE && r != -ENODEV && r != -ETIMEDOUT) return r;
    }
    dir = end;
    if (!*dir) break;
  }
  return result;
}

/*
 * LISTEN_PID names the process the sockets are for (sd_listen_fds checks it): the
 * child's own pid now. LISTEN_PIDFDID (systemd 254) names pidone's pidfd, which the
 * child could never match: it goes.
 */
static void listen_pid(char **envp, char *buf, u64 size) {
  char digits[24];
  const char *pid = decimal(digits + sizeof digits, (u64)sys(NR_getpid, 0, 0, 0, 0, 0, 0));
  const char *name = "LISTEN_PID=";
  u64 n = 0;
  while (name[n]) buf[n] = name[n], n++;
  for (u64 i = 0; pid[i] && n + 1 < size; i++) buf[n++] = pid[i];
  buf[n] = 0;
  char **out = envp;
  for (char **e = envp; *e; e++) {
    if (starts(*e, "LISTEN_PIDFDID=")) continue;
    *out++ = starts(*e, "LISTEN_PID=") ? buf : *e;
  }
  *out = 0;
}

/* `a`: the words after the marker. */
__attribute__((noreturn)) static void trampoline(char **a, char **envp) {
  struct shared *s = &pidone_shared;
  s64 uid = -1, gid = -1;
  const char *groups = 0, *ignore = 0;
  int search = 0, ctty = 0, listen = 0;
  for (; *a && !equal(*a, WORD_END); a++) {
    const char *v;
    s64 n;
    if ((v = after(*a, WORD_REPORT))) {
      if ((n = parse_u32(&v)) < 0 || *v) fail(STEP_USAGE, EINVAL);
      report_fd = (s32)n;
      /* Closed by our execve: end-of-file tells pidone the program runs. */
      sys(NR_fcntl, report_fd, F_SETFD, FD_CLOEXEC, 0, 0, 0);
    } else if ((v = after(*a, WORD_UID))) {
      if ((uid = parse_u32(&v)) < 0 || *v) fail(STEP_USAGE, EINVAL);
    } else if ((v = after(*a, WORD_GID))) {
      if ((gid = parse_u32(&v)) < 0 || *v) fail(STEP_USAGE, EINVAL);
    } else if ((v = after(*a, WORD_GROUPS))) {
      groups = v;
    } else if ((v = after(*a, WORD_IGNORE))) {
      ignore = v;
    } else if (equal(*a, WORD_SEARCH)) {
      search = 1;
    } else if (equal(*a, WORD_CTTY)) {
      ctty = 1;
    } else if (equal(*a, WORD_LISTEN_PID)) {
      listen = 1;
    } else {
      fail(STEP_USAGE, EINVAL);
    }
  }
  if (!*a || !a[1] || !a[2]) fail(STEP_USAGE, EINVAL);
  const char *file = a[1];
  char **args = a + 2;

  /* Supplementary groups first, then the group, then the user: each later step gives
   * up the privilege the earlier ones need. Raw calls change this process only, which
   * is all of it: no runtime, no other thread. */
  if (groups) {
    u64 count = 0;
    for (const char *p = groups; *p; p++)
      if (*p == ',') count++;
    count += *groups != 0;
    if (count > MAX_GROUPS) fail(STEP_SETGROUPS, EINVAL);
    u32 list[count ? count : 1];
    const char *p = groups;
    for (u64 i = 0; i < count; i++) {
      s64 g = parse_u32(&p);
      if (g < 0 || (*p && *p != ',')) fail(STEP_USAGE, EINVAL);
      list[i] = (u32)g;
      if (*p) p++;
    }
    s64 r = sys(NR_setgroups, count, list, 0, 0, 0, 0);
    if (r < 0) fail(STEP_SETGROUPS, -r);
  }
  if (gid >= 0) {
    s64 r = sys(NR_setresgid, gid, gid, gid, 0, 0, 0);
    if (r < 0) fail(STEP_SETRESGID, -r);
  }
  if (uid >= 0) {
    s64 r = sys(NR_setresuid, uid, uid, uid, 0, 0, 0);
    if (r < 0) fail(STEP_SETRESUID, -r);
  }
  /* posix_spawn made us a session leader; the terminal on fd 0 becomes our controlling
   * terminal only if no other session holds it (pidone gave it up). Without it the
   * program still runs, as dumb-init's does. */
  if (ctty) {
    s64 r = sys(NR_ioctl, 0, TIOCSCTTY, 0, 0, 0, 0);
    if (r < 0) report(STEP_CTTY | STEP_WARNING, -r);
  }
  char listen_buf[40];
  if (listen) listen_pid(envp, listen_buf, sizeof listen_buf);
  if (ignore && *ignore) {
    u64 act[4] = {1 /* SIG_IGN */, 0, 0, 0};
    for (const char *p = ignore;;) {
      s64 sig = parse_u32(&p);
      if (sig < 1 || sig >= NSIG || (*p && *p != ',')) fail(STEP_USAGE, EINVAL);
      sys(NR_rt_sigaction, sig, act, 0, 8, 0, 0);
      if (!*p++) break;
    }
  }

  /* The mask posix_spawn gave us, which _start blocked over. */
  sys(NR_rt_sigprocmask, SIG_SETMASK, &s->mask, 0, 8, 0, 0);
  s64 r = exec_searching(file, args, envp, search);
  fail(STEP_EXEC, -r);
}
/* ------------------------------------------------------------------ limits */

static void file_residency(u64 *pages, u64 *resident);

/* Set by limit_memory: a tight memory limit and the runtime's code not in the page cache. */
static int cold_and_tight;

/*
 * A fault on a file mapping reads the disk's read-ahead window around the page
 * (megabytes on some disks), and the container is charged for all of it. Under a tight
 * limit that evicts the pages the start is using, which fault back in with windows of
 * their own: a cold start thrashes far above what it touches. So, only when the limit
 * is tight and the file cold (more, smaller reads would cost other starts for nothing),
 * MADV_RANDOM: a fault reads its own page. Recent kernels ignore it for code, where a
 * fault reads ahead to the end of its mapping instead: so the code is also cut into
 * mappings of READ_CHUNK, every other one marked MADV_DONTDUMP (file-backed code is not
 * in a core dump anyway) so that the kernel cannot merge them back. Best effort: where a
 * call fails, that range keeps the usual read-ahead.
 */
#define READ_CHUNK (64UL << 10)

static void read_little(u64 from, u64 to, u64 page, int code) {
  if (!cold_and_tight) return;
  from &= ~(page - 1);
  to = (to + page - 1) & ~(page - 1);
  if (to > from) sys(NR_madvise, from, to - from, MADV_RANDOM, 0, 0, 0);
  if (!code) return;
  u64 chunk = READ_CHUNK > page ? READ_CHUNK : page;
  for (u64 at = from; at < to; at += 2 * chunk) sys(NR_madvise, at, to - at < chunk ? to - at : chunk, MADV_DONTDUMP, 0, 0, 0);
}

/*
 * The limits under which the runtime would crash or thrash before pidone's first line,
 * checked while nothing but this stub runs: below what every mode needs, one line and
 * exit 1 (services mode checks its own, higher needs in src/process/limits.ts). The
 * figures are protocol.h's LIMIT_*. Only what this process can see: a limit set on a
 * cgroup above the one we can read (a Kubernetes pod's) stays invisible.
 */

/* A file's first bytes as a NUL-terminated string; 0 when it cannot be read. */
static int read_small(const char *path, char *buf, u64 size) {
  s64 fd = open_read(path);
  if (fd < 0) return 0;
  u64 n = 0;
  for (;;) {
    s64 r = sys(NR_read, fd, buf + n, size - 1 - n, 0, 0, 0);
    if (r <= 0 || (n += (u64)r) == size - 1) break;
  }
  sys(NR_close, fd, 0, 0, 0, 0, 0);
  buf[n] = 0;
  return n > 0;
}

/* A cgroup value: a decimal number, or "max" (no limit, ~0). Returns 0 when unreadable. */
static int read_value(const char *path, u64 *value) {
  char buf[32];
  if (!read_small(path, buf, sizeof buf)) return 0;
  if (starts(buf, "max")) return *value = ~0UL, 1;
  const char *p = buf;
  u64 v = 0;
  if (*p < '0' || *p > '9') return 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + (u64)(*p++ - '0');
  return *value = v, 1;
}

/* Appends `s` to the NUL-terminated string at `to` (PATH_MAX bytes); 0 when it does not fit. */
static int append(char *to, const char *s) {
  u64 n = length(to), k = length(s);
  if (n + k + 1 > PATH_MAX) return 0;
  for (u64 i = 0; i <= k; i++) to[n + i] = s[i];
  return 1;
}

/* Reads `fd` a line at a time into `line` (PATH_MAX bytes; longer lines are cut). */
struct lines {
  s32 fd;
  u64 have, at;
  char buf[4096];
};

static int next_line(struct lines *l, char *line) {
  u64 n = 0;
  for (;;) {
    if (l->at == l->have) {
      s64 r = sys(NR_read, l->fd, l->buf, sizeof l->buf, 0, 0, 0);
      if (r <= 0) {
        line[n] = 0;
        return n > 0;
      }
      l->have = (u64)r;
      l->at = 0;
    }
    char c = l->buf[l->at++];
    if (c == '\n') break;
    if (n + 1 < PATH_MAX) line[n++] = c;
  }
  line[n] = 0;
  return 1;
}

/* Is `word` one of the comma-separated items of `list` (which ends at `end` or NUL)? */
static int has_item(const char *list, const char *end, const char *word) {
  while (list < end && *list) {
    const char *w = word, *p = list;
    while (*w && p < end && *p == *w) p++, w++;
    if (!*w && (p == end || !*p || *p == ',' || *p == ' ')) return 1;
    while (list < end && *list && *list != ',') list++;
    if (list < end && *list == ',') list++;
  }
  return 0;
}

/*
 * Our cgroup's path for `controller` from /proc/self/cgroup ("ID:CONTROLLERS:PATH"; the
 * v2 line is "0::PATH"), into `path`; 0 when there is none.
 */
static int own_cgroup(const char *controller, char *path) {
  s64 fd = open_read("/proc/self/cgroup");
  if (fd < 0) return 0;
  struct lines l;
  l.fd = (s32)fd, l.have = l.at = 0;
  char line[PATH_MAX];
  int found = 0;
  while (!found && next_line(&l, line)) {
    char *list = line;
    while (*list && *list != ':') list++;
    if (!*list++) continue;
    char *end = list;
    while (*end && *end != ':') end++;
    if (!*end) continue;
    if (controller ? has_item(list, end, controller) : end == list) {
      path[0] = 0;
      found = append(path, end + 1);
    }
  }
  sys(NR_close, fd, 0, 0, 0, 0, 0);
  return found;
}

/*
 * cgroup v1: where `controller`'s hierarchy is mounted and which of its cgroups that
 * mount shows at its root ("ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - cgroup SRC OPTIONS"
 * in /proc/self/mountinfo). Docker mounts the container's own cgroup there.
 */
static int v1_mount(const char *controller, char *mount, char *root) {
  s64 fd = open_read("/proc/self/mountinfo");
  if (fd < 0) return 0;
  struct lines l;
  l.fd = (s32)fd, l.have = l.at = 0;
  char line[PATH_MAX];
  int found = 0;
  while (!found && next_line(&l, line)) {
    char *field[5];
    char *p = line;
    for (int i = 0; i < 5; i++) {
      while (*p == ' ') *p++ = 0;
      field[i] = p;
      while (*p && *p != ' ') p++;
    }
    if (*p) *p++ = 0;
    char *dash = p;
    while (*dash && !starts(dash, "- ")) dash++;
    if (!*dash || !starts(dash + 2, "cgroup ")) continue;
    char *options = dash + 9;
    while (*options && *options != ' ') options++; /* past the source */
    if (!*options || !has_item(options + 1, options + 1 + length(options + 1), controller)) continue;
    mount[0] = root[0] = 0;
    found = append(mount, field[4]) && append(root, field[3]);
  }
  sys(NR_close, fd, 0, 0, 0, 0, 0);
  return found;
}

/*
 * Our own cgroup's directory for `controller` into `dir` (PATH_MAX bytes), in the
 * README's order: cgroup v2 at /sys/fs/cgroup (a container's own namespace shows its
 * cgroup there; elsewhere /proc/self/cgroup names it below), else the v1 hierarchy
 * holding the controller. *base: the length of the mount's own directory, where a walk
 * up stops. Returns the cgroup version, 0 when neither shows one.
 */
static int cgroup_dir(const char *controller, char *dir, u64 *base) {
  char path[PATH_MAX], root[PATH_MAX];
  int version = 2;
  const char *own = 0;
  s64 v2 = open_read("/sys/fs/cgroup/cgroup.controllers");
  if (v2 >= 0) {
    sys(NR_close, v2, 0, 0, 0, 0, 0);
    dir[0] = root[0] = 0;
    append(dir, "/sys/fs/cgroup");
    append(root, "/");
    if (own_cgroup(0, path)) own = path;
  } else {
    version = 1;
    if (!v1_mount(controller, dir, root)) return 0;
    if (own_cgroup(controller, path)) own = path;
  }
  *base = length(dir);
  u64 rootlen = equal(root, "/") ? 0 : length(root);
  if (!own || !starts(own, root) || (own[rootlen] && own[rootlen] != '/')) own = "";
  else own += rootlen;
  if (equal(own, "/")) own = "";
  return append(dir, own) ? version : 0;
}

/*
 * The tightest `file` (less `used` when given: then what is left) from our own cgroup,
 * `dir`, up to the mount's root at `base`, whichever of them this mount shows. ~0 when
 * none is set.
 */
static u64 walk_up(char *dir, u64 base, const char *file, const char *used) {
  u64 best = ~0UL;
  for (;;) {
    u64 end = length(dir);
    u64 limit, current = 0;
    if (append(dir, "/") && append(dir, file) && read_value(dir, &limit) && limit != ~0UL) {
      dir[end] = 0;
      if (used && !(append(dir, "/") && append(dir, used) && read_value(dir, &current))) current = 0;
      u64 left = limit > current ? limit - current : 0;
      if (left < best) best = left;
    }
    dir[end] = 0;
    if (end == base) return best;
    while (end > base && dir[end] != '/') end--;
    dir[end] = 0;
  }
}

/* A controller's limit (cgroup_dir's order, then walk_up). ~0 when nothing is set. */
static u64 cgroup_limit(const char *controller, const char *v2file, const char *v1file, const char *used) {
  char dir[PATH_MAX];
  u64 base;
  int version = cgroup_dir(controller, dir, &base);
  return version ? walk_up(dir, base, version == 2 ? v2file : v1file, used) : ~0UL;
}

/*
 * The container's OOM-kill count (the `oom_kill` line of memory.events, or of v1's
 * memory.oom_control since Linux 4.13) in our own memory cgroup `dir`, before any child
 * exists: pidone names a main child's SIGKILL end an OOM kill when the count has risen
 * since (src/process/oom.ts). Left unknown where the file or the line is missing.
 */
static void record_oom_kills(char *dir, int version) {
  u64 end = length(dir);
  char buf[512];
  int ok = append(dir, version == 2 ? "/memory.events" : "/memory.oom_control") && read_small(dir, buf, sizeof buf);
  dir[end] = 0;
  for (const char *line = buf; ok && *line;) {
    const char *p = after(line, "oom_kill ");
    s64 n = p ? parse_u32(&p) : -1;
    if (n >= 0) {
      pidone_shared.oom_kills = (u32)n;
      pidone_shared.oom_known = 1;
      return;
    }
    while (*line && *line != '\n') line++;
    if (*line) line++;
  }
}

/* "[FATAL pidone (PID)] " or "[WARN  pidone (PID)] ", as pidone's own lines start. */
static void limit_line(const char *label) {
  char digits[24];
  say("[");
  say(label);
  say(" pidone (");
  say(decimal(digits + sizeof digits, (u64)sys(NR_getpid, 0, 0, 0, 0, 0, 0)));
  say(")] ");
}

static void say_u64(u64 v) {
  char digits[24];
  say(decimal(digits + sizeof digits, v));
}

__attribute__((noreturn)) static void refuse(void) {
  for (;;) sys(NR_exit_group, 1, 0, 0, 0, 0, 0);
}

/* `value < need` through a call: a LIMIT_* set to 0 must not turn the comparison into
 * "always false", which the compiler refuses. */
static int below(u64 value, u64 need) {
  return value < need;
}

/* "N MiB" or "N KiB". */
static void say_kib(u64 kib) {
  say_u64(kib % 1024 ? kib : kib >> 10);
  say(kib % 1024 ? " KiB" : " MiB");
}

/*
 * A resource limit below `need` KiB: one line naming it as ulimit and the kernel do, and
 * exit. The runtime reserves address space (RLIMIT_AS) and private writable memory
 * (RLIMIT_DATA) for its heaps at start and needs a stack deep enough for its own start
 * (RLIMIT_STACK); each failure aborts it long before any line of pidone's.
 */
static void check_rlimit(u32 resource, u64 need, const char *what, const char *name, const char *flag) {
  u64 rl[2];
  if (sys(NR_prlimit64, 0, resource, 0, rl, 0, 0) != 0 || !below(rl[0] >> 10, need)) return;
  limit_line("FATAL");
  say(what);
  say(" (");
  say(name);
  say(", ulimit -");
  say(flag);
  say(" ");
  say_u64(rl[0] >> 10);
  say(") is below the ");
  say_kib(need);
  say(" pidone needs (ulimit -");
  say(flag);
  say(" ");
  say_u64(need);
  say(")\n");
  refuse();
}

/*
 * Memory: below its need the kernel does not kill us, it evicts our own file's pages as
 * fast as we fault them back in, and nothing ever starts. The need is mostly those pages:
 * a start from a cold page cache reads the runtime's code it runs (and what read-ahead
 * brings around it: read_little), all charged to this container; pages already cached,
 * paid for by whoever read them (another container from the same image, the image's
 * extraction), cost it nothing. So the need lies between the warm and the cold figure by
 * the share of the runtime's code that is not cached, which mincore(2) tells without
 * faulting it in.
 */
static void limit_memory(void) {
  char dir[PATH_MAX];
  u64 base;
  int version = cgroup_dir("memory", dir, &base);
  if (version) record_oom_kills(dir, version);
  u64 memory = version ? walk_up(dir, base, version == 2 ? "memory.max" : "memory.limit_in_bytes", 0) : ~0UL;
  u64 warm = LIMIT_MEMORY_WARM_MIB, cold = LIMIT_MEMORY_COLD_MIB;
  /* Well above every need (services mode's included, which reads what we publish) and
   * far from thrashing with the usual read-ahead: nothing to measure, nothing added to
   * the start. */
  if (!below(memory >> 20, (u64)LIMIT_MEMORY_SERVICES_COLD_MIB * (100 + LIMIT_MEMORY_NEAR_PERCENT) / 100) &&
      !below(memory >> 20, LIMIT_MEMORY_READ_LITTLE_MIB))
    return;
  u64 pages = 0, resident = 0;
  file_residency(&pages, &resident);
  pidone_shared.file_pages = (u32)pages;
  pidone_shared.file_resident = (u32)resident;
  u64 need = warm;
  /* A start touches part of the code only, and how much around it gets read depends on
   * the disk's read-ahead: what a start leaves cached is all the next one needs, however
   * small a share of the code. From LIMIT_MEMORY_RESIDENT_PERCENT of the code cached the
   * start's own pages are taken as cached (a start leaves more than that with any
   * read-ahead, and reclaim keeps the pages a running container uses); below, the need
   * grows towards the cold figure. */
  u64 have = resident * 100, full = pages * LIMIT_MEMORY_RESIDENT_PERCENT;
  if (below(have, full)) {
    need += ((cold - warm) * (full - have) + full - 1) / full;
    cold_and_tight = below(memory >> 20, LIMIT_MEMORY_READ_LITTLE_MIB);
  }
  if (below(memory, need << 20)) {
    limit_line("FATAL");
    say("the container's memory limit (");
    say_u64(memory >> 20);
    say(" MiB) is below the ");
    say_u64(need);
    if (need > warm) {
      say(" MiB pidone needs to start while its file is not in the page cache (");
      say_u64(warm);
      say(" MiB once it is)\n");
    } else {
      say(" MiB pidone needs\n");
    }
    refuse();
  }
  if (below(memory, (need << 20) / 100 * (100 + LIMIT_MEMORY_NEAR_PERCENT))) {
    limit_line("WARN ");
    say("the container's memory limit (");
    say_u64(memory >> 20);
    say(" MiB) is close to the ");
    say_u64(need);
    say(" MiB pidone needs: it may run out of memory\n");
  }
}

static void check_limits(void) {
  check_rlimit(RLIMIT_AS, (u64)LIMIT_ADDRESS_SPACE_MIB << 10, "the address-space limit", "RLIMIT_AS", "v");
  check_rlimit(RLIMIT_DATA, (u64)LIMIT_DATA_MIB << 10, "the data-segment limit", "RLIMIT_DATA", "d");
  check_rlimit(RLIMIT_STACK, LIMIT_STACK_KIB, "the stack limit", "RLIMIT_STACK", "s");

  limit_memory();

  /* Tasks: a thread the runtime cannot create aborts it. pids.current counts us. */
  u64 left = cgroup_limit("pids", "pids.max", "pids.max", "pids.current");
  if (left != ~0UL && below(left + 1, LIMIT_TASKS_START)) {
    limit_line("FATAL");
    say("the container's pids limit leaves room for ");
    say_u64(left + 1);
    say(left ? " tasks" : " task");
    say(", below the ");
    say_u64(LIMIT_TASKS_START);
    say(" pidone needs to start (its runtime's threads and a child)\n");
    refuse();
  }
}

/* ------------------------------------------------------------------ steps */

/*
 * Our own file: /proc/self/exe, else the path we were executed by. The pack id in the
 * file must match the one mapped in memory, so a file replaced at AT_EXECFN cannot feed
 * ld.so someone else's bytes.
 */
static s32 open_self(const struct manifest *m, const char *execfn) {
  s64 fd = open_read("/proc/self/exe");
  s64 first = fd;
  if (fd < 0 && execfn) fd = open_read(execfn);
  if (fd < 0)
    die("cannot open its own file /proc/self/exe", -first,
        first == -EACCES ? ": the single file must be readable, not only executable (chmod 0755)"
                         : ": the single-file pidone needs /proc mounted");
  u64 id = 0;
  s64 n = sys(NR_pread64, fd, &id, sizeof id, m->self_offset + __builtin_offsetof(struct manifest, pack_id), 0, 0);
  if (n != sizeof id || id != m->pack_id) die("its own file does not match the running program", 0, " (replaced while starting?)");
  return (s32)fd;
}

/*
 * ld.so, mapped straight from our file like the kernel maps an interpreter: shared page
 * cache, no copy. A PROT_NONE reservation picks the base; each PT_LOAD goes over it.
 */
static u64 map_ldso(const struct manifest *m, s32 fd, u64 page) {
  s64 base = sys(NR_mmap, 0, m->ldso_span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base < 0) die("cannot reserve memory for ld.so", -base, 0);
  for (u32 i = 0; i < m->nsegments; i++) {
    const struct segment *s = &m->segment[i];
    u64 start = (u64)base + s->vaddr;
    u64 delta = start & (page - 1);
    u64 file_end = start + s->filesz;
    u64 mapped_end = (file_end + page - 1) & ~(page - 1);
    if (s->filesz) {
      /* The packer put ld.so at a 64 KiB-aligned offset, so file offsets and addresses
       * agree modulo any page size the kernel may use (4, 16 or 64 KiB on arm64). */
      s64 r = sys(NR_mmap, start - delta, s->filesz + delta, s->prot, MAP_PRIVATE | MAP_FIXED, fd,
                  m->ldso_offset + s->offset - delta);
      if (r < 0) die("cannot map ld.so", -r, 0);
      /* .bss starting inside the last file page: that page holds file bytes past
       * p_filesz (the next section of ld.so, or our own data), which must read as 0.
       * Only a writable segment has a .bss (the packer checks). */
      if (s->memsz > s->filesz)
        for (volatile char *p = (char *)file_end; (u64)p < mapped_end; p++) *p = 0;
    } else {
      mapped_end = start - delta;
    }
    read_little(start - delta, mapped_end, page, s->prot & PROT_EXEC);
    u64 mem_end = (start + s->memsz + page - 1) & ~(page - 1);
    if (mem_end > mapped_end) {
      s64 r = sys(NR_mmap, mapped_end, mem_end - mapped_end, s->prot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
      if (r < 0) die("cannot map ld.so", -r, 0);
    }
  }
  return (u64)base;
}

static void copy_range(s32 to, s32 from, u64 offset, u64 size) {
  /* sendfile copies inside the kernel; qemu-user and old kernels may refuse it for a
   * memfd target, then plain pread/write does the same. */
  s64 off = (s64)offset;
  u64 left = size;
  while (left) {
    s64 n = sys(NR_sendfile, to, from, &off, left, 0, 0);
    if (n <= 0) break;
    left -= (u64)n;
  }
  static const u64 chunk = 16384;
  char buf[16384];
  while (left) {
    s64 n = sys(NR_pread64, from, buf, left < chunk ? left : chunk, off, 0, 0);
    if (n <= 0) die("cannot read a library from its own file", n < 0 ? -n : 5, 0);
    for (s64 done = 0; done < n;) {
      s64 w = sys(NR_write, to, buf + done, n - done, 0, 0, 0);
      if (w <= 0) die("cannot fill a memfd", w < 0 ? -w : 28, 0);
      done += w;
    }
    off += n;
    left -= (u64)n;
  }
}

/*
 * Move `fd` to `want` if that number is free and below RLIMIT_NOFILE; otherwise keep it
 * at (or move it to) the lowest free number above 2 - never 0..2, which may be closed
 * stdio that must stay closed for our child. Returns the final number.
 */
static s32 place_fd(s32 fd, s32 want) {
  /* dup3 would silently close whatever our parent left open at `want`. */
  if (sys(NR_fcntl, want, F_GETFD, 0, 0, 0, 0) == -EBADF) {
    /* EBADF here too when `want` is at or above a small --ulimit nofile. */
    if (sys(NR_dup3, fd, want, O_CLOEXEC, 0, 0, 0) == want) {
      sys(NR_close, fd, 0, 0, 0, 0, 0);
      return want;
    }
  }
  if (fd > 2) return fd;
  s64 moved = sys(NR_fcntl, fd, F_DUPFD_CLOEXEC, 3, 0, 0, 0);
  if (moved < 0) die("cannot place a memfd", -moved, 0);
  sys(NR_close, fd, 0, 0, 0, 0, 0);
  return (s32)moved;
}

/*
 * The C libraries go to memfds, not mappings of our file: ld.so opens each DT_NEEDED
 * name and maps it from offset 0, and a memfd is a file of its own that needs no
 * writable directory (--read-only images, FROM scratch). Sealed, so nothing that shares
 * our uid can change them under us.
 */
static void load_libraries(const struct manifest *m, s32 self) {
  for (u32 i = 0; i < m->nlibraries; i++) {
    const struct library *l = &m->library[i];
    /* MFD_NOEXEC_SEAL (Linux 6.3) keeps the kernel from warning and works where
     * vm.memfd_noexec forbids executable memfds; mmap(PROT_EXEC) does not need the
     * file's x bits. Older kernels reject the flag with EINVAL. */
    s64 fd = sys(NR_memfd_create, l->memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL, 0, 0, 0, 0);
    if (fd == -EINVAL) fd = sys(NR_memfd_create, l->memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING, 0, 0, 0, 0);
    if (fd < 0) die("memfd_create failed", -fd, ": the single-file pidone needs memfd (Linux 3.17)");
    copy_range((s32)fd, self, l->offset, l->size);
    /* Best effort: a kernel without sealing still runs us correctly. */
    sys(NR_fcntl, fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE, 0, 0, 0);
    s32 placed = place_fd((s32)fd, l->fd);
    if (placed != l->fd) {
      /* Our private copy of .dynstr (the writable segment, copy-on-write) names the fd
       * it really got; DT_NEEDED and .gnu.version_r both point at this slot. */
      char tmp[24];
      const char *digits = decimal(tmp + sizeof tmp, (u64)placed);
      char *slot = (char *)l->name_slot;
      const char *prefix = "/proc/self/fd/";
      u64 n = 0;
      while (prefix[n]) slot[n] = prefix[n], n++;
      for (u64 k = 0; digits[k]; k++) slot[n++] = digits[k];
      while (n < NAME_SLOT) slot[n++] = 0;
    }
  }
  /* ld.so would say "cannot open shared object file"; say what is missing instead. */
  if (m->nlibraries) {
    s64 probe = open_read((const char *)m->library[0].name_slot);
    if (probe < 0)
      die("cannot open /proc/self/fd", -probe,
          ": the single-file pidone needs /proc mounted (Docker, Kubernetes and Podman do)");
    sys(NR_close, probe, 0, 0, 0, 0, 0);
  }
}

/*
 * The runtime puts /dev/null (close-on-exec) on a closed fd 0, 1 or 2 before pidone's
 * first line, and aborts with its crash banner when it cannot open it (no /dev in the
 * container). So we do it first, and without /dev/null an O_PATH descriptor of "/"
 * stands in: reads and writes fail with EBADF, so pidone's lines to it go nowhere, and
 * close-on-exec, so the child still gets the descriptor closed, as pidone got it.
 */
static void fill_closed_stdio(void) {
  for (s32 fd = 0; fd <= 2; fd++) {
    if (sys(NR_fcntl, fd, F_GETFD, 0, 0, 0, 0) != -EBADF) continue;
    s64 got = sys(NR_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC, 0, 0, 0);
    if (got < 0) got = sys(NR_openat, AT_FDCWD, "/", O_PATH | O_CLOEXEC, 0, 0, 0);
    if (got < 0 || got == fd) continue; /* the lowest free number: fd, as 0..fd-1 are open */
    sys(NR_dup3, got, fd, O_CLOEXEC, 0, 0, 0);
    sys(NR_close, got, 0, 0, 0, 0, 0);
  }
}

/* ------------------------------------------------------------------ ctl: the control client */

/*
 * `pidone --ctl [--control PATH] COMMAND [ARGS...]` (also `pidone --control PATH --ctl
 * ...`) and the file named pidonectl: the client of services mode's control socket
 * (src/control/). It runs here, before the limits checks and without the runtime, so that
 * a HEALTHCHECK every few seconds costs an execve and a few system calls instead of a
 * whole Bun start. It sends the words after the options as one request (protocol.h's
 * CTL_*, from src/native/protocol.ts) and copies the answer, which the server formats, to
 * stdout or stderr. src/control/client.ts is the same client for the plain file: same
 * usage, messages and exit codes (test/control-client.test.ts runs both).
 */
/* x86-64 and asm-generic (aarch64) agree on all of these. */
#define AF_UNIX 1
#define SOCK_STREAM 1
#define SOCK_CLOEXEC O_CLOEXEC
#define SOL_SOCKET 1
#define SO_RCVTIMEO 20
#define SO_SNDTIMEO 21
#define MSG_NOSIGNAL 0x4000
#define CLOCK_MONOTONIC 1
#define POLLOUT 4
#define SIGPIPE 13
#define EPERM 1
#define EINTR 4
#define EAGAIN 11
#define EMFILE 24
#define EPIPE 32
#define ENOTSOCK 88
#define EPROTOTYPE 91
#define ECONNRESET 104
#define EISCONN 106
#define ECONNREFUSED 111
#define SUN_PATH_MAX 108 /* sun_path's size, its NUL included */

static const char ctl_usage[] =
    "Usage: pidone --ctl [--control PATH] COMMAND [ARGS...]\n"
    "       " CTL_CLIENT_NAME " [--control PATH] COMMAND [ARGS...]\n"
    "\n"
    "Asks the pidone that runs the services, over its control socket:\n"
    "  status [NAME...] [--json]  each service's state, pid, uptime, restarts, health\n"
    "  start NAME                 start a service an operator stopped\n"
    "  stop NAME                  stop a service; the container keeps running\n"
    "  restart NAME               restart a service now\n"
    "  signal NAME SIGNAL         send SIGNAL to the service's process group\n"
    "  health                     exit 0 when every critical service runs and is ready, else 1\n"
    "\n"
    "The socket: --control PATH, else $" CTL_PATH_VARIABLE ", else " CTL_DEFAULT_PATH ".\n"
    "Exit status: 0 done, 1 refused or failed, 2 usage, 3 no pidone answering (health: 1).\n";

/* One line of a message, cut to fit. */
struct ctl_line {
  u64 n;
  char b[400];
};

static void ctl_put(struct ctl_line *l, const char *s) {
  while (*s && l->n < sizeof l->b - 1) l->b[l->n++] = *s++;
}

static void ctl_put_u64(struct ctl_line *l, u64 v) {
  char digits[24];
  ctl_put(l, decimal(digits + sizeof digits, v));
}

/* write(2) until all is written; a non-blocking descriptor that is full is waited for.
 * 0, or -errno. */
static s64 ctl_write(s32 fd, const char *p, u64 n) {
  while (n) {
    s64 w = sys(NR_write, fd, p, n, 0, 0, 0);
    if (w == -EINTR) continue;
    if (w == -EAGAIN) {
      struct { s32 fd; u16 events, revents; } want = {fd, POLLOUT, 0};
      s64 r = sys(NR_ppoll, &want, 1, 0, 0, 0, 0);
      if (r < 0 && r != -EINTR) return r;
      continue;
    }
    if (w <= 0) return w < 0 ? w : -EPIPE;
    p += w;
    n -= (u64)w;
  }
  return 0;
}

__attribute__((noreturn)) static void ctl_exit(u32 code) {
  for (;;) sys(NR_exit_group, code, 0, 0, 0, 0, 0);
}

/*
 * A failure: its line on stderr, and `code`. The command `health` exits only 0 or 1:
 * Docker reserves 2 for HEALTHCHECK, and "no pidone answering" is an unhealthy answer.
 */
__attribute__((noreturn)) static void ctl_fail(struct ctl_line *l, u32 code, int health) {
  ctl_put(l, "\n");
  ctl_write(2, l->b, l->n);
  ctl_exit(health ? CTL_FAILED : code);
}

/* The reason in "no pidone answering at PATH (REASON)": the errno's text. */
static const char *ctl_errno_text(s64 err) {
  switch (err) {
    case EPERM: return "operation not permitted";
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case ENOTDIR: return "not a directory";
    case EMFILE: return "too many open files";
    case EPIPE: return "broken pipe";
    case ENOTSOCK: return "not a socket";
    case EPROTOTYPE: return "protocol wrong type for socket";
    case ECONNRESET: return "connection reset by peer";
    case ECONNREFUSED: return "connection refused";
    default: return 0;
  }
}

static void ctl_put_reason(struct ctl_line *l, s64 err) {
  const char *text = ctl_errno_text(err);
  if (err == EAGAIN) { /* the socket's timeout: see ctl_arm */
    ctl_put(l, "no answer within ");
    ctl_put_u64(l, CTL_CLIENT_TIMEOUT_MS / 1000);
    ctl_put(l, " s");
  } else if (text) {
    ctl_put(l, text);
  } else {
    ctl_put(l, "errno ");
    ctl_put_u64(l, (u64)err);
  }
}

__attribute__((noreturn)) static void ctl_no_answer(const char *path, s64 err, const char *why, int health) {
  struct ctl_line l;
  l.n = 0;
  ctl_put(&l, "pidone: no pidone answering at ");
  ctl_put(&l, path);
  ctl_put(&l, " (");
  if (why) ctl_put(&l, why);
  else ctl_put_reason(&l, err);
  ctl_put(&l, ")");
  ctl_fail(&l, CTL_NO_ANSWER, health);
}

static s64 ctl_now_ns(void) {
  s64 ts[2] = {0, 0};
  sys(NR_clock_gettime, CLOCK_MONOTONIC, ts, 0, 0, 0, 0); /* cannot fail for this clock */
  return ts[0] * 1000000000L + ts[1];
}

/*
 * The socket's send and receive timeouts set to what is left until `deadline`: connect
 * (which waits while the server's backlog is full), send and read then fail with EAGAIN
 * once it has passed, and no call waits past it. Returns 0, or -errno (-EAGAIN: passed).
 */
static s64 ctl_arm(s32 fd, s64 deadline) {
  s64 left = deadline - ctl_now_ns();
  if (left <= 0) return -EAGAIN;
  /* A zero timeval would mean no timeout at all. */
  s64 tv[2] = {left / 1000000000L, (left % 1000000000L) / 1000 + 1};
  s64 r = sys(NR_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, tv, sizeof tv, 0);
  if (r == 0) r = sys(NR_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, tv, sizeof tv, 0);
  return r;
}

/*
 * The client itself. `i`: the first word after `--ctl` (or after the name pidonectl);
 * `ctl_at`: where `--ctl` stands when options come before it, else 0.
 */
__attribute__((noreturn)) static void ctl_client(u64 argc, char **argv, char **envp, u64 i, u64 ctl_at) {
  /* Back to the mask we were given (an operator's Ctrl-C ends the client), plus SIGPIPE:
   * a reader gone from stdout, or a server gone mid-request, is then an EPIPE to handle
   * rather than a silent death. */
  u64 mask = pidone_shared.mask | BIT(SIGPIPE);
  sys(NR_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8, 0, 0); /* a valid set and `how`: cannot fail */

  struct ctl_line l;
  l.n = 0;
  const char *path = 0;
  for (; i < argc; i++) {
    const char *v;
    if (i == ctl_at) continue;
    if (equal(argv[i], "--control")) {
      if (i + 1 >= argc) {
        ctl_put(&l, "pidone: option '--control' requires an argument");
        ctl_fail(&l, CTL_USAGE, 0);
      }
      path = argv[++i];
    } else if ((v = after(argv[i], "--control="))) {
      path = v;
    } else {
      break;
    }
  }
  if (i >= argc) {
    ctl_write(2, ctl_usage, sizeof ctl_usage - 1);
    ctl_exit(CTL_USAGE);
  }
  if (equal(argv[i], "-h") || equal(argv[i], "--help")) {
    ctl_write(1, ctl_usage, sizeof ctl_usage - 1);
    ctl_exit(CTL_OK);
  }
  int health = equal(argv[i], "health");

  const char *from = "--control ";
  if (!path) {
    from = CTL_PATH_VARIABLE "=";
    for (char **e = envp; *e && !path; e++) {
      const char *v = after(*e, CTL_PATH_VARIABLE "=");
      if (v && *v) path = v;
    }
  }
  if (!path) path = CTL_DEFAULT_PATH;
  if (equal(path, "none") || !*path) {
    ctl_put(&l, "pidone: ");
    ctl_put(&l, from);
    ctl_put(&l, *path ? "none: the control socket is off, there is no pidone to ask" : "needs a path");
    ctl_fail(&l, CTL_USAGE, health);
  }
  u64 plen = length(path);
  if (plen >= SUN_PATH_MAX) {
    ctl_put(&l, "pidone: the control socket's path is too long (");
    ctl_put_u64(&l, plen);
    ctl_put(&l, " bytes, at most ");
    ctl_put_u64(&l, SUN_PATH_MAX - 1);
    ctl_put(&l, ")");
    ctl_fail(&l, CTL_USAGE, health);
  }

  /* "pidone-ctl 1 ARGC\n", then each word and a NUL. */
  char digits[24];
  const char *count = decimal(digits + sizeof digits, argc - i);
  u64 need = length(CTL_HEADER) + 1 + length(count) + 1;
  for (u64 k = i; k < argc; k++) need += length(argv[k]) + 1;
  if (need > CTL_REQUEST_MAX) {
    ctl_put(&l, "pidone: the request is too long (");
    ctl_put_u64(&l, need);
    ctl_put(&l, " bytes, at most ");
    ctl_put_u64(&l, CTL_REQUEST_MAX);
    ctl_put(&l, ")");
    ctl_fail(&l, CTL_USAGE, health);
  }
  char request[CTL_REQUEST_MAX];
  u64 n = 0;
  for (const char *p = CTL_HEADER " "; *p;) request[n++] = *p++;
  for (const char *p = count; *p;) request[n++] = *p++;
  request[n++] = '\n';
  for (u64 k = i; k < argc; k++) {
    for (const char *p = argv[k]; *p;) request[n++] = *p++;
    request[n++] = 0;
  }

  s64 deadline = ctl_now_ns() + (s64)CTL_CLIENT_TIMEOUT_MS * 1000000L;
  s64 fd = sys(NR_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0, 0);
  /* Never on 0..2: with stdout closed, the answer would be copied back into the socket.
   * Moved, the closed descriptor is closed again. */
  if (fd >= 0 && fd <= 2) {
    s64 moved = sys(NR_fcntl, fd, F_DUPFD_CLOEXEC, 3, 0, 0, 0);
    sys(NR_close, fd, 0, 0, 0, 0, 0);
    fd = moved;
  }
  if (fd < 0) {
    ctl_put(&l, "pidone: cannot make a socket to ask the pidone at ");
    ctl_put(&l, path);
    ctl_put(&l, " (");
    ctl_put_reason(&l, -fd);
    ctl_put(&l, ")");
    ctl_fail(&l, CTL_FAILED, health);
  }
  struct {
    u16 family;
    char path[SUN_PATH_MAX];
  } addr;
  addr.family = AF_UNIX;
  for (u64 k = 0; k <= plen; k++) addr.path[k] = path[k];
  s64 r = ctl_arm((s32)fd, deadline);
  while (r == 0) {
    r = sys(NR_connect, fd, &addr, 2 + plen + 1, 0, 0, 0);
    if (r == -EISCONN) r = 0;
    if (r != -EINTR) break;
    r = ctl_arm((s32)fd, deadline);
  }
  for (u64 sent = 0; r == 0 && sent < n;) {
    r = ctl_arm((s32)fd, deadline);
    if (r == 0) r = sys(NR_sendto, fd, request + sent, n - sent, MSG_NOSIGNAL, 0, 0);
    if (r == -EINTR) r = 0;
    else if (r > 0) sent += (u64)r, r = 0;
    else if (r == 0) r = -EPIPE;
  }
  if (r < 0) ctl_no_answer(path, -r, 0, health);

  /* "CODE\n", then the text: to stdout when CODE is 0, else to stderr, until end of file. */
  char buf[16384];
  s32 code = -1, digits_seen = 0, value = 0, out = 1;
  for (;;) {
    r = ctl_arm((s32)fd, deadline);
    if (r == 0) r = sys(NR_read, fd, buf, sizeof buf, 0, 0, 0);
    if (r == -EINTR) continue;
    if (r < 0 && code < 0) ctl_no_answer(path, -r, 0, health);
    if (r < 0) {
      ctl_put(&l, "pidone: the answer from ");
      ctl_put(&l, path);
      ctl_put(&l, " was cut short (");
      ctl_put_reason(&l, -r);
      ctl_put(&l, ")");
      ctl_fail(&l, CTL_NO_ANSWER, health);
    }
    if (r == 0) {
      if (code < 0) ctl_no_answer(path, 0, digits_seen ? "not a pidone answer" : "closed without an answer", health);
      ctl_exit((u32)code);
    }
    s64 at = 0;
    while (code < 0 && at < r) {
      char c = buf[at++];
      if (c == '\n' && digits_seen) {
        code = value;
        out = code ? 2 : 1;
      } else if (c >= '0' && c <= '9' && digits_seen < 3 && (value = value * 10 + (c - '0')) <= 255) {
        digits_seen++;
      } else {
        ctl_no_answer(path, 0, "not a pidone answer", health);
      }
    }
    /* A reader gone from our output: the answer was given; its status stands. */
    if (at < r && ctl_write(out, buf + at, (u64)(r - at)) < 0) ctl_exit((u32)code);
  }
}

/* Returns unless argv asks for the client (the forms above ctl_client). */
static void ctl_dispatch(u64 argc, char **argv, char **envp) {
  if (argc < 1) return;
  const char *name = argv[0];
  for (const char *p = argv[0]; *p; p++)
    if (*p == '/') name = p + 1;
  if (equal(name, CTL_CLIENT_NAME)) ctl_client(argc, argv, envp, 1, 0);
  if (argc >= 2 && equal(argv[1], "--ctl")) ctl_client(argc, argv, envp, 2, 0);
  if (argc >= 4 && equal(argv[1], "--control") && equal(argv[3], "--ctl")) ctl_client(argc, argv, envp, 1, 3);
  if (argc >= 3 && starts(argv[1], "--control=") && equal(argv[2], "--ctl")) ctl_client(argc, argv, envp, 1, 2);
}

/* ------------------------------------------------------------------ start-up */

/* What stub_main found and stub_stack needs: the stub's own .bss. */
static struct {
  u32 native; /* MANIFEST_NATIVE */
  u64 argc;
  char **argv;
  char **envp;
  u64 envc;   /* entries in the runtime's environment */
  u64 *auxv;
  u64 auxc;   /* entries in the kernel's auxiliary vector, AT_NULL excluded */
  u64 ldso;   /* ld.so's load base */
  u64 page;
  u64 phnum;  /* entries in the program header table */
  const char *execfn;
} start;

/* ------------------------------------------------------------------ after ld.so */

__attribute__((visibility("hidden"))) void after_ldso(void);

struct elf_phdr {
  u32 type, flags;
  u64 offset, vaddr, paddr, filesz, memsz, align;
};

/*
 * Of the runtime's code as the kernel mapped it from our file (its executable PT_LOADs,
 * the bulk of what a start reads), how much is in the page cache: mincore(2) on a file
 * mapping reads the page cache and faults nothing in. The code alone, not the whole
 * file: a file read only in part (its first, read-only segment) must not pass for a
 * start's pages. One page every RESIDENCY_STRIDE bytes: a share is all the need uses,
 * and walking every page would cost milliseconds of the start. A failed call counts its
 * page as not cached: the need errs towards refusing, never towards thrashing.
 */
#define RESIDENCY_STRIDE (256UL << 10)

static void file_residency(u64 *pages, u64 *resident) {
  const struct elf_phdr *ph = (const struct elf_phdr *)manifest()->phdr;
  u64 page = start.page;
  u64 step = RESIDENCY_STRIDE > page ? RESIDENCY_STRIDE : page;
  for (u64 i = 0; i < start.phnum; i++) {
    if (ph[i].type != PT_LOAD || !(ph[i].flags & PF_X) || !ph[i].filesz) continue;
    u64 end = ph[i].vaddr + ph[i].filesz;
    for (u64 at = ph[i].vaddr & ~(page - 1); at < end; at += step) {
      u8 in = 0;
      *pages += 1;
      if (sys(NR_mincore, at, page, &in, 0, 0, 0) == 0) *resident += in & 1;
    }
  }
}

/* The link_map entries ld.so made, from the runtime's DT_DEBUG (r_debug.r_map). */
struct link_map {
  u64 l_addr;
  const char *l_name;
  u64 l_ld;
  struct link_map *l_next, *l_prev;
};

static struct link_map *loaded(const struct manifest *m) {
  /* The runtime's segments, as the kernel mapped them from our file. */
  const struct elf_phdr *ph = (const struct elf_phdr *)m->phdr;
  for (u64 i = 0; i < start.phnum; i++) {
    if (ph[i].type != PT_DYNAMIC) continue;
    for (const u64 *d = (const u64 *)ph[i].vaddr; d[0]; d += 2)
      if (d[0] == DT_DEBUG && d[1]) return *(struct link_map **)(d[1] + 8);
  }
  return 0;
}

/*
 * One library, mapped by ld.so from its memfd, now mapped from our own file: its
 * read-only segments straight from the same bytes, its writable one (relocated, with
 * RELRO) moved to anonymous memory of its own. Returns 0 when the memfd is no longer
 * mapped, -1 when this library cannot be (it then keeps its memfd).
 */
static int remap_library(const struct library *l, const struct link_map *lm, s32 self) {
  u64 page = start.page;
  const u8 *ehdr = (const u8 *)lm->l_addr;
  if ((l->offset & (page - 1)) || ehdr[0] != 0x7f || ehdr[1] != 'E' || ehdr[2] != 'L' || ehdr[3] != 'F') return -1;
  const struct elf_phdr *ph = (const struct elf_phdr *)(lm->l_addr + *(const u64 *)(ehdr + 0x20));
  u16 phnum = *(const u16 *)(ehdr + 0x38);
  for (u16 i = 0; i < phnum; i++) {
    if (ph[i].type != PT_LOAD || !ph[i].filesz) continue;
    u64 from = (lm->l_addr + ph[i].vaddr) & ~(page - 1);
    u64 to = (lm->l_addr + ph[i].vaddr + ph[i].filesz + page - 1) & ~(page - 1);
    s64 r;
    if (!(ph[i].flags & PF_W)) {
      u64 prot = (ph[i].flags & PF_R ? 1 : 0) | (ph[i].flags & PF_W ? 2 : 0) | (ph[i].flags & PF_X ? 4 : 0);
      r = sys(NR_mmap, from, to - from, prot, MAP_PRIVATE | MAP_FIXED, self, l->offset + (ph[i].offset & ~(page - 1)));
      if (r >= 0) read_little(from, to, page, ph[i].flags & PF_X);
    } else {
      /* Its pages as they are now, relocations included, into fresh anonymous memory
       * that then takes their place; RELRO goes back to read-only as ld.so left it. */
      r = sys(NR_mmap, 0, to - from, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (r < 0) return -1;
      volatile u64 *dst = (u64 *)r;
      const volatile u64 *src = (const u64 *)from;
      for (u64 k = 0; k < (to - from) / 8; k++) dst[k] = src[k];
      r = sys(NR_mremap, r, to - from, to - from, MREMAP_MAYMOVE | MREMAP_FIXED, from, 0);
      for (u16 j = 0; r >= 0 && j < phnum; j++) {
        if (ph[j].type != PT_GNU_RELRO) continue;
        u64 ro = (lm->l_addr + ph[j].vaddr) & ~(page - 1);
        u64 ro_end = (lm->l_addr + ph[j].vaddr + ph[j].memsz) & ~(page - 1);
        if (ro_end > ro) r = sys(NR_mprotect, ro, ro_end - ro, PROT_READ, 0, 0, 0);
      }
    }
    /* MAP_FIXED and MREMAP_FIXED drop the old mapping before they can fail. */
    if (r < 0) die("cannot map a C library from its own file", -r, 0);
  }
  return 0;
}

/*
 * ld.so jumps here (AT_ENTRY) once every library is loaded, relocated and initialised,
 * before the runtime's first instruction, on one thread with signals still blocked.
 * A memfd's pages are shared memory: without swap they cannot be reclaimed, and the
 * container's memory limit pays for all of them, used or not, for the life of pidone.
 * Mapped from our file instead, the same bytes are page cache: reclaimable, only what is
 * touched, and shared with every container started from the same image. With no mapping
 * left and its descriptor closed, a memfd is freed. Returns the runtime's entry.
 */
__attribute__((used)) u64 release_libraries(void) {
  const struct manifest *m = manifest();
  const struct link_map *lm = loaded(m);
  s32 self = lm ? open_self(m, start.execfn) : -1;
  for (; lm; lm = lm->l_next) {
    if (!lm->l_name) continue;
    for (u32 i = 0; i < m->nlibraries; i++) {
      const struct library *l = &m->library[i];
      const char *digits = after(lm->l_name, "/proc/self/fd/");
      if (!digits || !equal(lm->l_name, (const char *)l->name_slot)) continue;
      s64 fd = parse_u32(&digits);
      if (fd > 2 && remap_library(l, lm, self) == 0) sys(NR_close, fd, 0, 0, 0, 0, 0);
    }
  }
  if (self >= 0) sys(NR_close, self, 0, 0, 0, 0, 0);
  return m->entry;
}

/*
 * Runs on the kernel's stack, signals blocked. Either becomes the trampoline and never
 * returns, or loads ld.so and the libraries and returns the size of the stack the
 * runtime will start on (a multiple of 16, the ABI's alignment at process entry).
 */
__attribute__((used)) u64 stub_main(u64 *sp) {
  const struct manifest *m = manifest();
  struct shared *s = &pidone_shared;
  u64 argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  char **e = envp;
  while (*e) e++;
  u64 *auxv = (u64 *)(e + 1);

  start.native = m->flags & MANIFEST_NATIVE;
  if (start.native) {
    if (argc >= 2 && equal(argv[1], TRAMPOLINE_MARKER)) trampoline(argv + 2, envp);
    /* The control client: before the limits checks and the runtime, which it never needs. */
    ctl_dispatch(argc, argv, envp);
    record_ignored(s);
    record_fds(s);
    s->envp = (u64)envp;
    s->handler = (u64)&on_signal;
  } else {
    /* Nobody would unblock them: back to what the kernel gave us. */
    sys(NR_rt_sigprocmask, SIG_SETMASK, &s->mask, 0, 8, 0, 0);
  }

  u64 page = 4096;
  const char *execfn = 0;
  int seen = 0;
  u64 auxc = 0;
  for (u64 *a = auxv; a[0] != AT_NULL; a += 2, auxc++) {
    switch (a[0]) {
      case AT_PHDR: seen |= 1; break;
      case AT_BASE: seen |= 2; break;
      case AT_ENTRY: seen |= 4; break;
      case AT_PAGESZ: page = a[1]; break;
      case AT_PHNUM: start.phnum = a[1]; break;
      case AT_EXECFN: execfn = (const char *)a[1]; break;
    }
  }
  if (seen != 7) die("the kernel passed no AT_PHDR/AT_BASE/AT_ENTRY", 0, 0);

  start.page = page;
  start.execfn = execfn;
  /* After the auxiliary vector: the memory check samples the runtime's mapped code. */
  if (start.native) check_limits();
  const struct elf_phdr *ph = (const struct elf_phdr *)m->phdr;
  for (u64 i = 0; i < start.phnum; i++)
    if (ph[i].type == PT_LOAD) read_little(ph[i].vaddr, ph[i].vaddr + ph[i].filesz, page, ph[i].flags & PF_X);
  s32 self = open_self(m, execfn);
  start.ldso = map_ldso(m, self, page);
  load_libraries(m, self);
  sys(NR_close, self, 0, 0, 0, 0, 0);
  fill_closed_stdio();

  start.auxv = auxv;
  if (!start.native) return 0; /* ld.so starts on the kernel's stack, as the kernel left it */
  u64 envc = settings(0);
  for (e = envp; *e; e++) envc += !hidden(*e);
  start.argc = argc;
  start.argv = argv;
  start.envp = envp;
  start.envc = envc;
  start.auxc = auxc;
  /* argc, argv + NULL, environment + NULL, auxv + AT_PIDONE + AT_NULL */
  u64 words = 1 + (argc + 1) + (envc + 1) + 2 * (auxc + 2);
  return (words * 8 + 15) & ~15UL;
}

/*
 * Fills the stack the runtime starts on, at `to` (right below the kernel's, which stays
 * untouched: pidone reads the original environment from it), and returns ld.so's entry.
 */
__attribute__((used)) u64 stub_stack(u64 *to) {
  const struct manifest *m = manifest();
  u64 *w = to;
  if (!start.native) {
    /* stub_main reserved nothing: `to` is the kernel's stack; patch its auxv in place. */
    w = start.auxv;
  } else {
    *w++ = start.argc;
    for (u64 i = 0; i <= start.argc; i++) *w++ = (u64)start.argv[i];
    w += settings((const char **)w);
    for (char **e = start.envp; *e; e++)
      if (!hidden(*e)) *w++ = (u64)*e;
    *w++ = 0;
  }
  for (u64 *a = start.auxv; a[0] != AT_NULL; a += 2) {
    u64 value = a[1];
    /*
     * What a kernel loading an interpreter would have passed. AT_PHDR goes to the
     * packer's copy of the original program headers: ld.so learns its own name from
     * PT_INTERP, which the file's table no longer has (without it ld.so asserts), and
     * never to the kernel's value, which Linux before 5.18 and qemu-user 7.2 compute
     * from the first PT_LOAD rather than from the segment holding the table. AT_BASE is
     * 0 for a static executable. AT_ENTRY is the kernel's jump to our own _start; ld.so
     * jumps to it once everything is loaded: after_ldso, which maps the libraries from
     * our file and goes on to the runtime's entry (with no library, straight there).
     */
    if (a[0] == AT_PHDR) value = m->phdr;
    if (a[0] == AT_BASE) value = start.ldso;
    if (a[0] == AT_ENTRY) value = m->nlibraries ? (u64)&after_ldso : m->entry;
    *w++ = a[0];
    *w++ = value;
  }
  if (start.native) {
    *w++ = AT_PIDONE;
    *w++ = (u64)&pidone_shared;
    *w++ = AT_NULL;
    *w++ = 0;
  }
  return start.ldso + m->ldso_entry;
}
