/* Peak resident memory of a short command: VmHWM of its own memory, read as it exits.
 * wait4's ru_maxrss cannot tell it: at an exec the kernel carries the peak of the memory
 * the process had before into it, and after a fork or a posix_spawn that is this
 * helper's. So the command is traced, stops at its exit (PTRACE_EVENT_EXIT, when its
 * memory still exists), and /proc/PID/status is read then. Stdio on /dev/null; commands
 * run interleaved as in spawntime.
 *
 *   peakrss ROUNDS CMD1 [ARGS] ::: CMD2 [ARGS] ::: ...
 * prints, per command in the order given: "rss IDX kB kB ..." and "fail IDX N" (runs
 * that did not exit 0, or whose VmHWM could not be read).
 */
#include "bench.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

static long vm_hwm_kb(pid_t pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char *at = strstr(buf, "\nVmHWM:");
  return at ? strtol(at + 7, NULL, 10) : -1;
}

static int run_once(char **cmd, long *kb) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(126);
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) _exit(126);
    execvp(cmd[0], cmd);
    _exit(127);
  }
  *kb = -1;
  int status;
  if (waitpid(pid, &status, 0) < 0) die("waitpid");
  if (!WIFSTOPPED(status)) return 0; /* the exec failed before its stop */
  if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL)) < 0) die("ptrace");
  int sig = 0;
  for (;;) {
    if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig) < 0 && errno != ESRCH) die("ptrace");
    if (waitpid(pid, &status, __WALL) < 0) die("waitpid");
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    sig = 0;
    if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) *kb = vm_hwm_kb(pid);
    else if (WIFSTOPPED(status)) sig = WSTOPSIG(status); /* its own signal: delivered */
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 && *kb >= 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: peakrss ROUNDS CMD... [::: CMD...]\n");
    return 2;
  }
  int rounds = atoi(argv[1]);
  char **cmds[MAX_CMDS];
  int n = split_commands(argc - 2, argv + 2, cmds);
  long *kb = calloc((size_t)rounds * n, sizeof *kb);
  int *fails = calloc(n, sizeof *fails);
  if (!kb || !fails) die("calloc");
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < n; k++) {
      int i = (r + k) % n;
      if (!run_once(cmds[i], &kb[(size_t)i * rounds + r])) fails[i]++;
    }
  }
  for (int i = 0; i < n; i++) {
    printf("rss %d", i);
    for (int r = 0; r < rounds; r++)
      if (kb[(size_t)i * rounds + r] >= 0) printf(" %ld", kb[(size_t)i * rounds + r]);
    printf("\nfail %d %d\n", i, fails[i]);
  }
  return 0;
}
