/* Reaping as PID 1, in a new PID namespace (and a mount namespace with its own /proc).
 *
 *   reapbench storm N TIMEOUT_S CMD [ARGS]      CMD = INIT... reapbench maker storm N TIMEOUT_S
 *     The maker creates N double-forked orphans as fast as it can (they exit at once,
 *     so each becomes the init's zombie) while a thread samples how many the init has;
 *     then it waits until the init has no child left but itself.
 *     Prints "storm created=N create_ns=T elapsed_ns=T peak=P left=L".
 *   reapbench backlog N TIMEOUT_S CMD [ARGS]    CMD = INIT... reapbench maker backlog N TIMEOUT_S
 *     Stops the init (SIGSTOP from outside: signals from inside the namespace cannot
 *     stop its init), has the maker leave N zombies, continues the init and times
 *     until the init has no child left but the maker.
 *     Prints "backlog zombies=N drain_ns=T left=L".
 *
 * The init's children are read from /proc/PID/task/TID/children of every thread (every thread's list:
 * a child belongs to the thread that forked it or adopted it).
 */
#include "bench.h"
#include "../../lib/c/orphans.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/wait.h>

static char *buf;
static const size_t BUF_SIZE = 4 << 20;

/* ------------------------------------------------------------------ maker (inside) */

static atomic_int peak;
static atomic_int sampling = 1;
static char *sample_buf;

static void *sampler(void *arg) {
  (void)arg;
  while (atomic_load(&sampling)) {
    int n = proc_children("/proc", 1, 0, NULL, 0, sample_buf, BUF_SIZE) - 1; /* less the maker */
    if (n > atomic_load(&peak)) atomic_store(&peak, n);
    sleep_us(1000);
  }
  return NULL;
}

static void make_orphans(int n) {
  for (int i = 0; i < n; i++) {
    if (make_orphan() < 0) die("clone");
  }
}

static int orphans_left(void) { return proc_children("/proc", 1, 0, NULL, 0, buf, BUF_SIZE) - 1; }

static int maker_storm(int n, int timeout_s) {
  sample_buf = malloc(BUF_SIZE);
  pthread_t th;
  pthread_create(&th, NULL, sampler, NULL);
  int64_t t0 = now_ns();
  make_orphans(n);
  int64_t t_created = now_ns();
  int64_t deadline = t0 + (int64_t)timeout_s * 1000000000LL;
  int left;
  while ((left = orphans_left()) > 0 && now_ns() < deadline) {
    if (left > atomic_load(&peak)) atomic_store(&peak, left);
    sleep_us(200);
  }
  int64_t t_end = now_ns();
  atomic_store(&sampling, 0);
  pthread_join(th, NULL);
  printf("storm created=%d create_ns=%lld elapsed_ns=%lld peak=%d left=%d\n", n, (long long)(t_created - t0),
         (long long)(t_end - t0), atomic_load(&peak), left);
  fflush(stdout);
  return left == 0 ? 0 : 1;
}

/* The state letter of a /proc stat file; 0 when it cannot be read (the task is gone),
 * '?' when it has no state after the command. */
static char stat_state(const char *path) {
  char stat[512];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t k = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (k <= 0) return 0;
  stat[k] = 0;
  char *rp = strrchr(stat, ')');
  return rp && rp[1] && rp[2] ? rp[2] : '?';
}

static int all_zombies(int want) {
  static pid_t pids[1 << 16];
  int n = proc_children("/proc", 1, 0, pids, 1 << 16, buf, BUF_SIZE);
  if (n - 1 < want) return 0;
  pid_t self = getpid();
  for (int i = 0; i < n && i < (1 << 16); i++) {
    if (pids[i] == self) continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
    char state = stat_state(path);
    if (state && state != 'Z') return 0;
  }
  return 1;
}

static int maker_backlog(int n, int timeout_s) {
  char c;
  write_full(1, "R", 1);
  if (read_full(0, &c, 1, timeout_s * 1000) != 0) return 1;
  make_orphans(n);
  int64_t deadline = now_ns() + (int64_t)timeout_s * 1000000000LL;
  while (!all_zombies(n)) {
    if (now_ns() > deadline) {
      write_full(1, "E", 1);
      return 1;
    }
    sleep_us(1000);
  }
  write_full(1, "Z", 1);
  if (read_full(0, &c, 1, timeout_s * 1000) != 0) return 1;
  return 0;
}

/* ------------------------------------------------------------------ driver (outside) */

struct start {
  char **cmd;
  int in, out;
};

static int pid1(void *arg) {
  struct start *s = arg;
  /* Our own /proc, so that the init and the maker see the namespace's PIDs. */
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("mount --make-rprivate /");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die("mount proc");
  dup2(s->in, 0);
  dup2(s->out, 1);
  execvp(s->cmd[0], s->cmd);
  die(s->cmd[0]);
  return 127;
}

static pid_t start_pid1(char **cmd, int *to_maker, int *from_maker) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe");
  struct start s = {cmd, in[0], out[1]};
  size_t stack_size = 1 << 20;
  char *stack = malloc(stack_size);
  pid_t pid = clone(pid1, stack + stack_size, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, &s);
  if (pid < 0) die("clone(CLONE_NEWPID) (needs root)");
  close(in[0]);
  close(out[1]);
  *to_maker = in[1];
  *from_maker = out[0];
  return pid;
}

static int all_stopped(pid_t pid) {
  char path[320];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  int ok = 1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/%d/task/%s/stat", pid, e->d_name);
    char state = stat_state(path);
    if (state && state != 'T') ok = 0;
  }
  closedir(d);
  return ok;
}

static void finish(pid_t pid, int timeout_s) {
  int64_t deadline = now_ns() + (int64_t)timeout_s * 1000000000LL;
  int status;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (now_ns() > deadline) {
      kill(pid, SIGKILL);
      deadline = now_ns() + 5000000000LL;
    }
    sleep_us(1000);
  }
}

static int drive_storm(int timeout_s, char **cmd) {
  int to, from;
  pid_t pid = start_pid1(cmd, &to, &from);
  char line[512];
  size_t len = 0;
  int64_t deadline = now_ns() + (int64_t)(timeout_s + 10) * 1000000000LL;
  while (len < sizeof line - 1) {
    int left = (int)((deadline - now_ns()) / 1000000);
    if (left <= 0 || read_full(from, &line[len], 1, left) != 0) break;
    if (line[len++] == '\n') break;
  }
  line[len] = 0;
  if (len == 0) printf("storm error=no-result\n");
  else fputs(line, stdout);
  close(to);
  finish(pid, 10);
  return len ? 0 : 1;
}

static int drive_backlog(int n, int timeout_s, char **cmd) {
  int to, from;
  pid_t pid = start_pid1(cmd, &to, &from);
  char c;
  int rc = 1;
  if (read_full(from, &c, 1, timeout_s * 1000) != 0 || c != 'R') {
    printf("backlog error=maker-not-ready\n");
    goto out;
  }
  /* The init may still be starting (the maker runs as soon as it is spawned): let it
   * reach its idle loop before freezing it. */
  sleep_us(150000);
  kill(pid, SIGSTOP);
  int64_t deadline = now_ns() + 10000000000LL;
  while (!all_stopped(pid)) {
    if (now_ns() > deadline) {
      printf("backlog error=init-not-stopped\n");
      goto out;
    }
    sleep_us(500);
  }
  write_full(to, "g", 1);
  if (read_full(from, &c, 1, timeout_s * 1000) != 0 || c != 'Z') {
    printf("backlog error=zombies-not-made\n");
    kill(pid, SIGCONT);
    goto out;
  }
  char *scratch = malloc(BUF_SIZE);
  int64_t t0 = now_ns();
  kill(pid, SIGCONT);
  int left;
  deadline = t0 + (int64_t)timeout_s * 1000000000LL;
  while ((left = proc_children("/proc", pid, 0, NULL, 0, scratch, BUF_SIZE) - 1) > 0 && now_ns() < deadline) sleep_us(50);
  int64_t t1 = now_ns();
  printf("backlog zombies=%d drain_ns=%lld left=%d\n", n, (long long)(t1 - t0), left);
  rc = left == 0 ? 0 : 1;
  write_full(to, "d", 1);
out:
  fflush(stdout);
  close(to);
  kill(pid, SIGCONT);
  finish(pid, 10);
  return rc;
}

int main(int argc, char **argv) {
  buf = malloc(BUF_SIZE);
  if (argc >= 5 && strcmp(argv[1], "maker") == 0) {
    int n = atoi(argv[3]), timeout = atoi(argv[4]);
    if (strcmp(argv[2], "storm") == 0) return maker_storm(n, timeout);
    if (strcmp(argv[2], "backlog") == 0) return maker_backlog(n, timeout);
  }
  if (argc >= 5 && strcmp(argv[1], "storm") == 0) return drive_storm(atoi(argv[3]), argv + 4);
  if (argc >= 5 && strcmp(argv[1], "backlog") == 0) return drive_backlog(atoi(argv[2]), atoi(argv[3]), argv + 4);
  fprintf(stderr,
          "usage: reapbench storm|backlog N TIMEOUT_S CMD... | reapbench maker storm|backlog N TIMEOUT_S\n");
  return 2;
}
