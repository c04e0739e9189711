/*
 * sink_stdout.c - the stdout sink: every partition's lines on fd 1.
 *
 * All partitions, and every stdout sink of the process, share one file
 * descriptor, so one process-wide lock covers each chunk's write loop: the
 * lines of two partitions never interleave, not even a chunk's lines with
 * another chunk's. The bytes go out with write(2), past stdio, so nothing
 * waits in a buffer (the program must not print to stdout through stdio
 * as well). Flushing fsyncs fd 1 when it is a regular file (`herald-agent
 * > out.jsonl`); for a pipe or a terminal a written byte is as
 * acknowledged as it gets.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "sink_int.h"

static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
  sink_t base;
} stdout_sink_t;

typedef struct {
  sink_part_t base;
} stdout_part_t;

static int stdout_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                         size_t errlen) {
  (void)conf;
  (void)err;
  (void)errlen;
  stdout_sink_t *ss = hd_calloc(1, sizeof(*ss));
  *out = &ss->base;
  return 0;
}

static int stdout_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                       uint64_t *position, char *err, size_t errlen) {
  (void)epoch; /* no position of its own, so nothing to fence */
  (void)s;
  (void)p;
  (void)position;
  (void)err;
  (void)errlen;
  stdout_part_t *sp = hd_calloc(1, sizeof(*sp));
  *out = &sp->base;
  return 0;
}

static int stdout_write(sink_part_t *part, const sink_window_t *w, char *err,
                        size_t errlen) {
  if (w->json_len == 0)
    return 0;
  pthread_mutex_lock(&stdout_lock);
  int rc = agent__write_all(STDOUT_FILENO, w->json, w->json_len, NULL);
  pthread_mutex_unlock(&stdout_lock);
  if (rc < 0)
    return hd_errorf(err, errlen, rc,
                     "stdout sink: partition %" PRIu32 ": write to stdout: %s",
                     part->partition, hd_strerror(rc));
  return 0;
}

static int stdout_flush(sink_part_t *part, char *err, size_t errlen) {
  struct stat st;
  if (fstat(STDOUT_FILENO, &st) < 0)
    return hd_errorf(err, errlen, -errno,
                     "stdout sink: partition %" PRIu32 ": fstat stdout: %s",
                     part->partition, hd_strerror(-errno));
  if (!S_ISREG(st.st_mode))
    return 0;
  if (fsync(STDOUT_FILENO) < 0)
    return hd_errorf(err, errlen, -errno,
                     "stdout sink: partition %" PRIu32 ": fsync stdout: %s",
                     part->partition, hd_strerror(-errno));
  return 0;
}

static int stdout_close(sink_part_t *part, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  free(part);
  return 0;
}

static void stdout_destroy(sink_t *s) {
  free(s);
}

const sink_ops_t sink__stdout_ops = {
    .name = "stdout",
    .create = stdout_create,
    .open_partition = stdout_open,
    .write = stdout_write,
    .flush = stdout_flush,
    .close_partition = stdout_close,
    .destroy = stdout_destroy,
};
