/*
 * agent_util.c - small helpers the agent's modules share.
 */
#include "agent_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hd_err.h"
#include "hd_mem.h"

int agent__write_all(int fd, const char *buf, size_t len, size_t *done) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  /* A SIGPIPE that was pending before (blocked by the program for its own
   * reasons) is not ours to consume. */
  sigpending(&pending);
  int was_pending = sigismember(&pending, SIGPIPE);
  size_t off = 0;
  int rc = 0;
  while (off < len) {
    ssize_t n = write(fd, buf + off, len - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = -errno;
      break;
    }
    off += (size_t)n;
  }
  if (rc == -EPIPE && !was_pending) {
    /* The signal is thread-directed: it is pending in this thread, and
     * taking it here keeps it from being delivered when the mask is
     * restored. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (done)
    *done = off;
  return rc;
}

int agent__sync_dir_of(const char *path, char *dir, size_t dirlen) {
  char *copy = hd_strdup(path);
  snprintf(dir, dirlen, "%s", dirname(copy));
  free(copy);
  int rc = 0;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) < 0)
    rc = -errno;
  if (dfd >= 0)
    close(dfd);
  return rc;
}

uint64_t agent__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void agent__sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

char *agent__read_first_line(const char *key, const char *path, char *err,
                             size_t errlen, int *rc) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    *rc = hd_errorf(err, errlen, HD_ECONFIG, "%s %s: %s", key, path,
                    strerror(errno));
    return NULL;
  }
  char buf[4096];
  if (fgets(buf, sizeof buf, f) == NULL) {
    fclose(f);
    *rc = hd_errorf(err, errlen, HD_ECONFIG, "%s %s: empty", key, path);
    return NULL;
  }
  fclose(f);
  buf[strcspn(buf, "\r\n")] = '\0';
  if (buf[0] == '\0') {
    *rc = hd_errorf(err, errlen, HD_ECONFIG, "%s %s: empty first line", key,
                    path);
    return NULL;
  }
  *rc = 0;
  return hd_strdup(buf);
}

int agent__expand_template(const char *tmpl, const char *db, const char *table,
                           int lower, char *out, size_t cap) {
  size_t n = 0;
  for (const char *t = tmpl; *t;) {
    const char *v = NULL;
    size_t skip = 1;
    if (strncmp(t, "{db}", 4) == 0)
      v = db, skip = 4;
    else if (strncmp(t, "{table}", 7) == 0)
      v = table, skip = 7;
    size_t vl = v ? strlen(v) : 1;
    if (n + vl + 1 > cap)
      return -1;
    for (size_t i = 0; i < vl; i++) {
      char ch = v ? v[i] : t[i];
      out[n + i] = v && lower ? (char)tolower((unsigned char)ch) : ch;
    }
    n += vl;
    t += skip;
  }
  out[n] = '\0';
  return 0;
}
