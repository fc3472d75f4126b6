/* Start-up: wall time from posix_spawn of a command to waitpid seeing it end, with
 * stdio on /dev/null. Commands run interleaved (A B C, B C A, C A B, ...) so that a
 * burst of load from the rest of the machine hits every command alike.
 *
 *   spawntime ROUNDS WARMUP CMD1 [ARGS] ::: CMD2 [ARGS] ::: ...
 * prints, per command in the order given:  "t IDX ns ns ns ...", "cpu IDX ns ..." (user +
 * system CPU of the command and its children, from wait4) and "fail IDX N"
 */
#include "bench.h"
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

extern char **environ;

/* CPU time (user + system) of the command and everything it waited for: less sensitive
 * than wall time to other load on a shared machine. */
static int run_once(char **cmd, posix_spawn_file_actions_t *fa, int64_t *elapsed, int64_t *cpu) {
  pid_t pid;
  int64_t t0 = now_ns();
  int rc = posix_spawnp(&pid, cmd[0], fa, NULL, cmd, environ);
  if (rc != 0) {
    errno = rc;
    die(cmd[0]);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) == -1)
    if (errno != EINTR) die("wait4");
  *elapsed = now_ns() - t0;
  *cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: spawntime ROUNDS WARMUP CMD... [::: CMD...]\n");
    return 2;
  }
  int rounds = atoi(argv[1]);
  int warmup = atoi(argv[2]);
  char **cmds[MAX_CMDS];
  int n = split_commands(argc - 3, argv + 3, cmds);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

  int64_t *t = calloc((size_t)rounds * n, sizeof *t);
  int64_t *cpu = calloc((size_t)rounds * n, sizeof *cpu);
  int *fails = calloc(n, sizeof *fails);
  if (!t || !cpu || !fails) die("calloc");
  int64_t dummy, dummy_cpu;
  for (int w = 0; w < warmup; w++)
    for (int i = 0; i < n; i++) run_once(cmds[i], &fa, &dummy, &dummy_cpu);
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < n; k++) {
      int i = (r + k) % n;
      if (!run_once(cmds[i], &fa, &t[(size_t)i * rounds + r], &cpu[(size_t)i * rounds + r])) fails[i]++;
    }
  }
  for (int i = 0; i < n; i++) {
    printf("t %d", i);
    for (int r = 0; r < rounds; r++) printf(" %lld", (long long)t[(size_t)i * rounds + r]);
    printf("\ncpu %d", i);
    for (int r = 0; r < rounds; r++) printf(" %lld", (long long)cpu[(size_t)i * rounds + r]);
    printf("\nfail %d %d\n", i, fails[i]);
  }
  return 0;
}
