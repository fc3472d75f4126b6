/*
 * pidone's stub: the first code the kernel runs in a single-file release.
 *
 * The packer (scripts/pack/) turned Bun's PT_INTERP program header into a PT_LOAD for
 * this code (and PT_NOTE into one for its writable data) and pointed e_entry here, so
 * the kernel starts the file as a static executable: no /lib64/ld-linux-*.so.2 is
 * needed in the image. This stub then does
 * what the kernel would have done with an interpreter, from pieces appended to our own
 * file: it maps glibc's ld.so, hands it the C libraries as sealed memfds at the fd
 * numbers the packer wrote into DT_NEEDED (/proc/self/fd/1000...), fixes the auxiliary
 * vector and jumps to ld.so with the kernel's stack untouched (argv, environment and
 * /proc/self/cmdline stay byte for byte what our parent passed).
 *
 * Freestanding: raw system calls, no libc, no relocations (the packer places this code
 * at any 64 KiB-aligned address and proves it position independent by linking it
 * twice). One source for x86-64 and aarch64.
 *
 * Room left for the native helper (issue 4): _start is where signals get blocked at the
 * first instruction; stub_main returns the stack ld.so starts on, so it can hand over a
 * rebuilt stack with an edited environment; a marker in argv can select a trampoline
 * mode that never reaches ld.so; the packer maps a writable segment (stub .data/.bss)
 * for state a signal handler living here would share with pidone.
 */

typedef unsigned long u64;
typedef unsigned int u32;
typedef int s32;
typedef long s64;

/* ------------------------------------------------------------------ system calls */

#if defined(__x86_64__)
#define NR_write 1
#define NR_close 3
#define NR_mmap 9
#define NR_pread64 17
#define NR_sendfile 40
#define NR_fcntl 72
#define NR_exit_group 231
#define NR_openat 257
#define NR_dup3 292
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
 * The kernel enters with %rsp at argc (16-byte aligned). stub_main returns the stack and
 * the entry to continue on in %rax:%rdx; ld.so's _start reads only %rsp, and %rdx (an
 * atexit function for the program by the ABI) must not carry our garbage.
 */
__asm__(".section .text.entry,\"ax\",@progbits\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  mov %rsp, %rdi\n"
        "  call stub_main\n"
        "  mov %rax, %rsp\n"
        "  mov %rdx, %rax\n"
        "  xor %edx, %edx\n"
        "  jmp *%rax\n"
        ".previous\n");

#elif defined(__aarch64__)
#define NR_dup3 24
#define NR_fcntl 25
#define NR_openat 56
#define NR_close 57
#define NR_write 64
#define NR_pread64 67
#define NR_sendfile 71
#define NR_exit_group 94
#define NR_mmap 222
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

/* Same contract as above: sp at argc in, {sp, entry} back in x0:x1. */
__asm__(".section .text.entry,\"ax\",%progbits\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  mov x0, sp\n"
        "  bl stub_main\n"
        "  mov sp, x0\n"
        "  mov x16, x1\n"
        "  mov x0, xzr\n"
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
#define PROT_NONE 0
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define F_GETFD 1
#define F_DUPFD_CLOEXEC 1030
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 1
#define F_SEAL_SHRINK 2
#define F_SEAL_GROW 4
#define F_SEAL_WRITE 8
#define MFD_CLOEXEC 1
#define MFD_ALLOW_SEALING 2
#define MFD_NOEXEC_SEAL 8
#define EBADF 9
#define EACCES 13
#define EINVAL 22

#define AT_NULL 0
#define AT_PHDR 3
#define AT_PAGESZ 6
#define AT_BASE 7
#define AT_ENTRY 9
#define AT_EXECFN 31

/* ------------------------------------------------------------------ the manifest */

/*
 * Written by the packer (scripts/pack/manifest.ts encodes the same layout; the packer
 * checks the symbol's size). All addresses are absolute: the Bun executable is ET_EXEC,
 * so nothing here moves at run time.
 */
#define MAX_SEGMENTS 8
#define MAX_LIBRARIES 8
#define NAME_SLOT 32

struct segment {
  u64 vaddr;  /* relative to ld.so's load base */
  u64 offset; /* in ld.so's own file */
  u64 filesz;
  u64 memsz;
  u32 prot;
  u32 pad;
};

struct library {
  u64 offset;    /* of its bytes in our file */
  u64 size;
  u64 name_slot; /* address of its NAME_SLOT-byte DT_NEEDED string in the .dynstr copy */
  s32 fd;        /* the fd number that string names */
  u32 pad;
  char memfd_name[32];
};

struct manifest {
  char magic[16];
  u64 pack_id;     /* also found at self_offset in the file: we opened ourselves */
  u64 self_offset;
  u64 entry;       /* Bun's own e_entry */
  u64 phdr;        /* the original program headers, PT_INTERP included */
  u64 ldso_offset; /* ld.so's file offset in ours (64 KiB aligned) */
  u64 ldso_span;
  u64 ldso_entry;
  u32 nsegments;
  u32 nlibraries;
  struct segment segment[MAX_SEGMENTS];
  struct library library[MAX_LIBRARIES];
};

__attribute__((section(".rodata.manifest"), used, aligned(16))) const struct manifest pidone_manifest = {
    .magic = "pidone-stub-v1",
};

static const struct manifest *manifest(void) {
  const struct manifest *m = &pidone_manifest;
  /* The packer fills the manifest in after compilation: keep the compiler from folding
   * the placeholder values above into the code. */
  __asm__("" : "+r"(m));
  return m;
}

/* ------------------------------------------------------------------ small helpers */

static u64 length(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
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

static const char *errno_name(s64 e) {
  switch (e) {
    case 1: return "operation not permitted";
    case 2: return "no such file or directory";
    case 9: return "bad file descriptor";
    case 12: return "out of memory";
    case 13: return "permission denied";
    case 22: return "invalid argument";
    case 24: return "too many open files";
    case 38: return "function not implemented";
    default: return "error";
  }
}

/* One line on stderr, then exit 1 like any pidone start-up failure. */
__attribute__((noreturn)) static void die(const char *what, s64 err, const char *hint) {
  char num[24];
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

struct jump {
  u64 sp;
  u64 entry;
};

__attribute__((used)) struct jump stub_main(u64 *sp) {
  const struct manifest *m = manifest();
  u64 argc = sp[0];
  char **envp = (char **)(sp + 1 + argc + 1);
  while (*envp) envp++;
  u64 *auxv = (u64 *)(envp + 1);

  u64 *at_phdr = 0, *at_base = 0, *at_entry = 0;
  u64 page = 4096;
  const char *execfn = 0;
  for (u64 *a = auxv; a[0] != AT_NULL; a += 2) {
    switch (a[0]) {
      case AT_PHDR: at_phdr = &a[1]; break;
      case AT_BASE: at_base = &a[1]; break;
      case AT_ENTRY: at_entry = &a[1]; break;
      case AT_PAGESZ: page = a[1]; break;
      case AT_EXECFN: execfn = (const char *)a[1]; break;
    }
  }
  if (!at_phdr || !at_base || !at_entry) die("the kernel passed no AT_PHDR/AT_BASE/AT_ENTRY", 0, 0);

  s32 self = open_self(m, execfn);
  u64 base = map_ldso(m, self, page);
  load_libraries(m, self);
  sys(NR_close, self, 0, 0, 0, 0, 0);

  /*
   * What a kernel loading an interpreter would have passed. AT_PHDR goes to the packer's
   * copy of the original program headers: ld.so learns its own name from PT_INTERP,
   * which the file's table no longer has (without it ld.so asserts), and never to the
   * kernel's value, which Linux before 5.18 and qemu-user 7.2 compute from the first
   * PT_LOAD rather than from the segment holding the table. AT_BASE is 0 for a static
   * executable; AT_ENTRY is our own entry, and ld.so would jump right back here.
   */
  *at_phdr = m->phdr;
  *at_base = base;
  *at_entry = m->entry;
  return (struct jump){(u64)sp, base + m->ldso_entry};
}
