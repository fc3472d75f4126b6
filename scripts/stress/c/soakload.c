/* The soak's workloads (scripts/stress/soak.ts), one small static program:
 *
 *   soakload orphans N     inside pidone's PID namespace: prints "orphans ready", waits for
 *                          SIGUSR2 (the driver's baseline is taken), leaves N orphans for
 *                          PID 1 to reap, never more than MAX_PENDING at once (the namespace shares
 *                          the machine's pid table), waits until PID 1 has reaped them all,
 *                          prints "orphans made=N left=L ms=T", then waits for SIGTERM.
 *   soakload sink          counts the SIGUSR1 it receives; prints "sink ready", and on
 *                          SIGTERM "sink received=N" and exits 0.
 *   soakload burst PID N   sends SIGUSR1 to PID N times, as fast as kill(2) goes; prints
 *                          "burst sent=N failed=F ms=T".
 *   soakload exit CODE     exits at once with CODE (a crash-looping service).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 2000
/* 256 grandchild stacks (4 MiB): each is needed only until its first instruction. */
#define ORPHAN_STACKS 256
#include "../../lib/c/orphans.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what) {
  fprintf(stderr, "soakload: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static volatile sig_atomic_t term_seen;
static volatile sig_atomic_t go_seen;
static volatile sig_atomic_t usr1_count;

static void on_term(int sig) {
  (void)sig;
  term_seen = 1;
}

static void on_usr2(int sig) {
  (void)sig;
  go_seen = 1;
}

static void on_usr1(int sig) {
  (void)sig;
  usr1_count++;
}

static void handle(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) die("sigaction");
}

/* Blocks until *flag is set by a handler: the signals are blocked outside sigsuspend, so
 * none is missed between the test and the wait. */
static void wait_for(volatile sig_atomic_t *flag) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  if (sigprocmask(SIG_BLOCK, &block, &old) != 0) die("sigprocmask");
  while (!*flag) sigsuspend(&old);
  if (sigprocmask(SIG_SETMASK, &old, NULL) != 0) die("sigprocmask");
}

/* PID 1's children, less ourselves. -1 when /proc cannot be read. */
static int init_children(void) {
  static char buf[1 << 20];
  return proc_children("/proc", 1, getpid(), NULL, 0, buf, sizeof buf);
}

static int orphans(long n) {
  handle(SIGTERM, on_term);
  handle(SIGUSR2, on_usr2);
  printf("orphans ready\n");
  fflush(stdout);
  wait_for(&go_seen);
  int64_t t0 = now_ms();
  long failed = 0;
  for (long i = 0; i < n; i++) {
    if (i % 500 == 0) {
      int64_t wait_until = now_ms() + 60000;
      int left;
      while ((left = init_children()) > MAX_PENDING && now_ms() < wait_until) pause_ms(1);
      if (left < 0) die("reading /proc/1/task");
    }
    int status = make_orphan();
    if (status < 0) die("clone");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  int64_t wait_until = now_ms() + 60000;
  int left;
  while ((left = init_children()) > 0 && now_ms() < wait_until) pause_ms(1);
  printf("orphans made=%ld failed=%ld left=%d ms=%lld\n", n - failed, failed, left, (long long)(now_ms() - t0));
  fflush(stdout);
  wait_for(&term_seen);
  return 0;
}

static int sink(void) {
  handle(SIGTERM, on_term);
  handle(SIGUSR1, on_usr1);
  printf("sink ready\n");
  fflush(stdout);
  wait_for(&term_seen);
  printf("sink received=%ld\n", (long)usr1_count);
  fflush(stdout);
  return 0;
}

static int burst(pid_t pid, long n) {
  int64_t t0 = now_ms();
  long failed = 0;
  for (long i = 0; i < n; i++) {
    if (kill(pid, SIGUSR1) != 0) failed++;
  }
  printf("burst sent=%ld failed=%ld ms=%lld\n", n - failed, failed, (long long)(now_ms() - t0));
  fflush(stdout);
  return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "orphans") == 0) return orphans(atol(argv[2]));
  if (argc == 2 && strcmp(argv[1], "sink") == 0) return sink();
  if (argc == 4 && strcmp(argv[1], "burst") == 0) return burst((pid_t)atol(argv[2]), atol(argv[3]));
  if (argc == 3 && strcmp(argv[1], "exit") == 0) return atoi(argv[2]);
  fprintf(stderr, "usage: soakload orphans N | sink | burst PID N | exit CODE\n");
  return 2;
}
