/* Shared by the benchmark's C helpers: one clock (CLOCK_MONOTONIC, the same for every
 * process on the machine, so a timestamp taken in a child compares with the driver's),
 * and the ":::"-separated command lists the TypeScript driver hands us. */
#ifndef PIDONE_BENCH_H
#define PIDONE_BENCH_H
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static inline void die(const char *what) {
  fprintf(stderr, "bench helper: %s: %s\n", what, strerror(errno));
  exit(2);
}

#define MAX_CMDS 32

/* Splits argv[0..argc) on ":::" in place; returns the number of commands. */
static inline int split_commands(int argc, char **argv, char **cmds[MAX_CMDS]) {
  int n = 0;
  int start = 0;
  for (int i = 0; i <= argc; i++) {
    if (i == argc || strcmp(argv[i], ":::") == 0) {
      if (i > start) {
        if (n == MAX_CMDS) {
          fprintf(stderr, "bench helper: too many commands\n");
          exit(2);
        }
        cmds[n++] = &argv[start];
      }
      if (i < argc) argv[i] = NULL;
      start = i + 1;
    }
  }
  return n;
}

/* Reads exactly n bytes, waiting at most timeout_ms in total; 0 on success. */
static inline int read_full(int fd, void *buf, size_t n, int timeout_ms) {
  size_t got = 0;
  int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000LL;
  while (got < n) {
    int64_t left = (deadline - now_ns()) / 1000000LL;
    if (left < 0) return -1;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t k = read(fd, (char *)buf + got, n - got);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  return 0;
}

static inline void write_full(int fd, const void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t k = write(fd, (const char *)buf + off, n - off);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return;
    off += (size_t)k;
  }
}
#endif
