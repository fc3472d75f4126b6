/* Orphans for an init to reap, made fast, and an init's children counted from /proc:
 * shared by the benchmark's reapbench.c and the soak's soakload.c. Header only: each of
 * them is one gcc call. Define ORPHAN_STACKS before including it for another ring size. */
#ifndef PIDONE_ORPHANS_H
#define PIDONE_ORPHANS_H
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The children of `pid` as seen in `proc`, from every thread's list (a child belongs to
 * the thread that forked or adopted it), `skip` (0: none) left out; the first `max` into
 * `out` when it is not NULL. `scratch` holds one list of `size` bytes. -1 when `proc`
 * cannot be read.
 */
static int proc_children(const char *proc, pid_t pid, pid_t skip, pid_t *out, int max, char *scratch, size_t size) {
  char path[320];
  snprintf(path, sizeof path, "%s/%d/task", proc, pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%d/task/%s/children", proc, pid, e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    size_t len = 0;
    ssize_t k;
    while (len < size - 1 && (k = read(fd, scratch + len, size - 1 - len)) > 0) len += (size_t)k;
    close(fd);
    scratch[len] = 0;
    for (char *p = scratch; *p;) {
      while (*p == ' ' || *p == '\n') p++;
      if (!*p) break;
      long v = strtol(p, &p, 10);
      if (v == skip) continue;
      if (out && n < max) out[n] = (pid_t)v;
      n++;
    }
  }
  closedir(d);
  return n;
}

/*
 * One orphan: an intermediate shares our memory (clone(CLONE_VM): a real fork() copies
 * page tables, which costs far more than the rest on a virtual machine), starts the
 * grandchild and exits, so the grandchild goes to PID 1 and exits at once, a zombie for
 * PID 1 to reap. Neither touches memory beyond its own small stack.
 */
#define ORPHAN_STACK_BYTES (16 * 1024)
#ifndef ORPHAN_STACKS
#define ORPHAN_STACKS 1024
#endif
static char (*orphan_stacks)[ORPHAN_STACK_BYTES];
static unsigned orphan_next_stack;
static char orphan_intermediate_stack[ORPHAN_STACK_BYTES] __attribute__((aligned(16)));

static int orphan_grandchild(void *arg) {
  (void)arg;
  _exit(0);
}

static int orphan_intermediate(void *arg) {
  (void)arg;
  /* A stack from a ring: a grandchild needs it only until its first instruction's
   * exit_group, long before the ring comes round. */
  char *stack = orphan_stacks[orphan_next_stack++ % ORPHAN_STACKS];
  if (clone(orphan_grandchild, stack + ORPHAN_STACK_BYTES, CLONE_VM | SIGCHLD, NULL) < 0) _exit(1);
  _exit(0);
}

/* Makes one orphan: the intermediate's wait status (0: the grandchild started), or -1
 * with errno when the ring could not be allocated or the intermediate not started. */
static int make_orphan(void) {
  if (!orphan_stacks && !(orphan_stacks = aligned_alloc(64, (size_t)ORPHAN_STACKS * ORPHAN_STACK_BYTES))) return -1;
  /* CLONE_VFORK: we resume once the intermediate has exited, its stack free again. */
  pid_t p = clone(orphan_intermediate, orphan_intermediate_stack + ORPHAN_STACK_BYTES, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
  if (p < 0) return -1;
  int status;
  while (waitpid(p, &status, 0) == -1) {
    if (errno != EINTR) return -1;
  }
  return status;
}
#endif
