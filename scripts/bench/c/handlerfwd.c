/* A C init that forwards from a signal handler, the way an init built on Bun's event
 * loop must: the runtime waits in epoll_pwait2 with an empty signal mask, so a signal
 * interrupts that wait and runs a handler (the kernel builds a signal frame), where tini
 * returns from sigtimedwait. The handler kill()s the child and yields the CPU to it, as
 * pidone's native handler does; SIGCHLD reaps, and the child's end is ours.
 *
 *   handlerfwd CMD [ARGS]
 *
 * The floor of that design for the signal latency metric: no runtime, nothing else.
 */
#include "bench.h"
#include <signal.h>
#include <sched.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/wait.h>

extern char **environ;

static volatile sig_atomic_t child;

static void on_signal(int sig) {
  if (sig == SIGCHLD) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
      if (pid == child) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return;
  }
  if (child > 0 && kill(child, sig) == 0) sched_yield();
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: handlerfwd CMD [ARGS]\n");
    return 2;
  }
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  /* Blocked until the wait, as in pidone's single file: no handler runs before the child exists. */
  if (sigprocmask(SIG_BLOCK, &all, NULL) == -1) die("sigprocmask");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_mask = all;
  sa.sa_flags = SA_RESTART;
  for (int sig = 1; sig < 32; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) continue;
    if (sigaction(sig, &sa, NULL) == -1) die("sigaction");
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[1], NULL, &attr, argv + 1, environ);
  if (rc != 0) {
    errno = rc;
    die(argv[1]);
  }
  child = pid;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep == -1) die("epoll_create1");
  struct epoll_event ev;
  for (;;) epoll_pwait(ep, &ev, 1, -1, &none);
}
