/* Exit latency: from the child's last instruction to the init's parent seeing the init
 * exit (waitpid returning).
 *
 *   exitlat child
 *     Writes 8 zero bytes ("ready") to fd 1, waits for one byte on fd 0, then writes
 *     its CLOCK_MONOTONIC time to fd 1 and exits 0.
 *   exitlat drive ROUNDS SETTLE_MS CMD1 [ARGS] ::: CMD2 ...
 *     Per round and command (interleaved): starts the command (an init running
 *     `exitlat child`, or the child alone), waits for "ready" and SETTLE_MS more so the
 *     init has finished starting, lets the child go and times waitpid.
 *     Prints per command: "lat IDX ns ns ..." and "fail IDX N".
 */
#include "bench.h"
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static int child(void) {
  int64_t zero = 0;
  write_full(1, &zero, sizeof zero);
  char go;
  while (read(0, &go, 1) < 0 && errno == EINTR) {
  }
  int64_t t = now_ns();
  write(1, &t, sizeof t);
  _exit(0);
}

#define MAX_STAMPS 4
static int64_t stamps[MAX_STAMPS];

/* One run; returns the latency in ns, or -1. */
static int64_t once(char **cmd, int settle_ms) {
  for (int k = 0; k < MAX_STAMPS; k++) stamps[k] = -1;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, cmd[0], &fa, NULL, cmd, environ);
  if (rc != 0) {
    errno = rc;
    die(cmd[0]);
  }
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  int64_t result = -1, t0 = 0;
  if (read_full(out[0], &t0, sizeof t0, 20000) == 0) {
    sleep_us((long)settle_ms * 1000);
    write_full(in[1], "g", 1);
    int status;
    while (waitpid(pid, &status, 0) == -1)
      if (errno != EINTR) die("waitpid");
    int64_t t1 = now_ns();
    if (read_full(out[0], &t0, sizeof t0, 1000) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      result = t1 - t0;
      /* An instrumented init may add its own timestamps after the child's (the moment its
       * SIGCHLD handler ran, the moment it called _exit): report them relative to t0. */
      int64_t stamp;
      for (int k = 0; k < MAX_STAMPS && read_full(out[0], &stamp, sizeof stamp, 0) == 0; k++) stamps[k] = stamp - t0;
    }
  } else {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  close(in[1]);
  close(out[0]);
  return result;
}

static int drive(int rounds, int settle_ms, int argc, char **argv) {
  char **cmds[MAX_CMDS];
  int n = split_commands(argc, argv, cmds);
  int64_t *lat = calloc((size_t)rounds * n, sizeof *lat);
  int64_t *st = calloc((size_t)rounds * n * MAX_STAMPS, sizeof *st);
  int *count = calloc(n, sizeof *count), *fails = calloc(n, sizeof *fails);
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < n; k++) {
      int i = (r + k) % n;
      int64_t v = once(cmds[i], settle_ms);
      if (v < 0) fails[i]++;
      else {
        for (int k = 0; k < MAX_STAMPS; k++) st[((size_t)i * rounds + count[i]) * MAX_STAMPS + k] = stamps[k];
        lat[(size_t)i * rounds + count[i]++] = v;
      }
    }
  }
  for (int i = 0; i < n; i++) {
    printf("lat %d", i);
    for (int j = 0; j < count[i]; j++) printf(" %lld", (long long)lat[(size_t)i * rounds + j]);
    printf("\nfail %d %d\n", i, fails[i]);
    for (int k = 0; k < MAX_STAMPS; k++) {
      if (count[i] == 0 || st[((size_t)i * rounds) * MAX_STAMPS + k] < 0) break;
      printf("stamp%d %d", k, i);
      for (int j = 0; j < count[i]; j++) printf(" %lld", (long long)st[((size_t)i * rounds + j) * MAX_STAMPS + k]);
      printf("\n");
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "child") == 0) return child();
  if (argc >= 5 && strcmp(argv[1], "drive") == 0) return drive(atoi(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
  fprintf(stderr, "usage: exitlat child | exitlat drive ROUNDS SETTLE_MS CMD... [::: CMD...]\n");
  return 2;
}
