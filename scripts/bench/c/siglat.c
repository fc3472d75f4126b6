/* Signal forwarding latency: from kill() on the init to the child's handler running.
 *
 *   siglat child
 *     Installs a SIGUSR1 handler that writes the CLOCK_MONOTONIC time it ran as 8 bytes
 *     to fd 1, writes 8 zero bytes ("ready"), then sleeps in pause() until killed.
 *   siglat drive SIGNALS GAP_US CMD1 [ARGS] ::: CMD2 ...
 *     Starts every command at once (each an init running `siglat child`, or the child
 *     alone), then sends SIGNALS SIGUSR1 to each, interleaved, one at a time: the next
 *     signal leaves only after the last one arrived (or 1 s passed: counted as lost),
 *     so the kernel never merges two. GAP_US (+-50%, random) separates signals.
 *     Prints per command: "lat IDX ns ns ...", "lost IDX N", "extra IDX N".
 */
#include "bench.h"
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static void on_usr1(int sig) {
  (void)sig;
  int saved = errno;
  int64_t t = now_ns();
  write_full(1, &t, sizeof t);
  errno = saved;
}

static int child(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  int64_t zero = 0;
  write_full(1, &zero, sizeof zero);
  for (;;) pause();
  return 0;
}

struct instance {
  pid_t pid;
  int fd;
  int64_t *lat;
  int count, lost;
};

static int drive(int signals, long gap_us, int argc, char **argv) {
  char **cmds[MAX_CMDS];
  int n = split_commands(argc, argv, cmds);
  struct instance inst[MAX_CMDS];
  for (int i = 0; i < n; i++) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&inst[i].pid, cmds[i][0], &fa, NULL, cmds[i], environ);
    if (rc != 0) {
      errno = rc;
      die(cmds[i][0]);
    }
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    inst[i].fd = p[0];
    inst[i].lat = calloc((size_t)signals, sizeof(int64_t));
    inst[i].count = inst[i].lost = 0;
  }
  for (int i = 0; i < n; i++) {
    int64_t zero;
    if (read_full(inst[i].fd, &zero, sizeof zero, 20000) != 0) {
      fprintf(stderr, "siglat: command %d (%s) never became ready\n", i, cmds[i][0]);
      return 2;
    }
  }
  /* The child being ready says nothing of the init: let it finish starting. */
  sleep_us(300000);
  srand(12345);
  for (int r = 0; r < signals; r++) {
    for (int k = 0; k < n; k++) {
      struct instance *in = &inst[(r + k) % n];
      if (gap_us > 0) sleep_us(gap_us / 2 + rand() % (gap_us + 1));
      int64_t t0 = now_ns();
      kill(in->pid, SIGUSR1);
      int64_t t1;
      if (read_full(in->fd, &t1, sizeof t1, 1000) != 0) {
        in->lost++;
        continue;
      }
      in->lat[in->count++] = t1 - t0;
    }
  }
  sleep_us(20000);
  for (int i = 0; i < n; i++) {
    /* Late or duplicated deliveries would still be in the pipe. */
    int extra = 0;
    int64_t t;
    while (read_full(inst[i].fd, &t, sizeof t, 0) == 0) extra++;
    printf("lat %d", i);
    for (int j = 0; j < inst[i].count; j++) printf(" %lld", (long long)inst[i].lat[j]);
    printf("\nlost %d %d\nextra %d %d\n", i, inst[i].lost, i, extra);
    kill(inst[i].pid, SIGTERM);
  }
  fflush(stdout);
  for (int i = 0; i < n; i++) {
    int64_t deadline = now_ns() + 5000000000LL;
    int status;
    while (waitpid(inst[i].pid, &status, WNOHANG) == 0) {
      if (now_ns() > deadline) {
        kill(inst[i].pid, SIGKILL);
        deadline = now_ns() + 5000000000LL;
      }
      sleep_us(1000);
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "child") == 0) return child();
  if (argc >= 5 && strcmp(argv[1], "drive") == 0) return drive(atoi(argv[2]), atol(argv[3]), argc - 4, argv + 4);
  fprintf(stderr, "usage: siglat child | siglat drive SIGNALS GAP_US CMD... [::: CMD...]\n");
  return 2;
}
