#include "hd_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int hd_log_level = HD_LL_WARN;
static int hd__log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

const char *hd_log_level_name(int lvl) {
  if (lvl < 0 || lvl > HD_LL_OFF)
    return "?";
  return level_names[lvl];
}

int hd_log_level_parse(const char *name) {
  if (name == NULL)
    return -1;
  for (int i = 0; i <= HD_LL_OFF; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  if (strcmp(name, "warning") == 0)
    return HD_LL_WARN;
  return -1;
}

int hd_log_init_from_env(void) {
  const char *v = getenv("HERALD_LOG_LEVEL");
  if (v == NULL || *v == '\0')
    return 0;
  int l = hd_log_level_parse(v);
  if (l < 0)
    return -1;
  hd_log_level = l;
  return 0;
}

void hd_log_set_fd(int fd) {
  hd__log_fd = fd;
}

/* Append msg, quoted if it holds a space, '=' or '"', so that a logfmt
 * reader keeps it as one value. */
static size_t put_msg(char *buf, size_t off, size_t cap, const char *msg) {
  int quote = strpbrk(msg, " =\"\t") != NULL;
  if (off < cap && quote)
    buf[off++] = '"';
  for (const char *p = msg; *p && off + 2 < cap; p++) {
    if (quote && (*p == '"' || *p == '\\'))
      buf[off++] = '\\';
    buf[off++] = *p;
  }
  if (off < cap && quote)
    buf[off++] = '"';
  return off;
}

void hd__logv(int lvl, const char *comp, const char *msg, const char *kvfmt,
              va_list ap) {
  /* Records are built in one buffer and written with one write(2) so that
   * lines from several threads never interleave. Overlong records are cut,
   * never dropped. */
  char buf[4096];
  size_t cap = sizeof(buf) - 1; /* room for the newline */
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(buf, cap,
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s "
                   "msg=",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                   hd_log_level_name(lvl), comp ? comp : "-");
  size_t off = n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap);
  off = put_msg(buf, off, cap, msg ? msg : "");
  if (kvfmt != NULL && *kvfmt != '\0' && off + 1 < cap) {
    buf[off++] = ' ';
    n = vsnprintf(buf + off, cap - off, kvfmt, ap);
    if (n > 0)
      off += (size_t)n < cap - off ? (size_t)n : cap - off - 1;
  }
  buf[off++] = '\n';
  ssize_t w = write(hd__log_fd, buf, off);
  (void)w; /* nowhere left to report a failed log write */
}

void hd__log(int lvl, const char *comp, const char *msg, const char *kvfmt,
             ...) {
  va_list ap;
  va_start(ap, kvfmt);
  hd__logv(lvl, comp, msg, kvfmt, ap);
  va_end(ap);
}
