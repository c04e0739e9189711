/*
 * sink_plugin_example.c - an example herald sink plugin (<herald/sink.h>):
 * each partition's windows appended as JSON lines to DIR/p<N>.jsonl.
 *
 * Exactly once into the files, across failures and restarts: a flush
 * fsyncs the data file, then records in DIR/p<N>.pos (written to a
 * temporary file, fsync'd and renamed over it) the SCN of the last whole
 * window, the file's length after it and the owner's epoch. Opening the
 * partition cuts the data file back to that length (dropping what was
 * written after the last flush, which the agent sends again) and returns
 * the SCN as the position, so the agent streams from after it. A newer
 * epoch in the .pos file means another agent owns the partition now:
 * open and flush answer HERALD_SINK_FENCED.
 *
 * Options (sink.options):
 *   dir                   the directory of the files (required, must exist)
 *   fail_after_windows    N: the write of window N+1 fails once in the
 *                         process's life (for tests of the retry)
 *   down_while            PATH: every write and flush fails while PATH
 *                         exists (a destination that is down)
 *
 * Build it against an installed herald:
 *   cc -std=c11 -shared -fPIC $(pkg-config --cflags herald) \
 *      -o libherald_sink_example.so sink_plugin_example.c
 * HERALD_SINK_ABI_VERSION_OVERRIDE builds it as if for another ABI
 * version, to see the agent refuse it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <herald/sink.h>

#ifdef HERALD_SINK_ABI_VERSION_OVERRIDE
#define ABI HERALD_SINK_ABI_VERSION_OVERRIDE
#else
#define ABI HERALD_SINK_ABI_VERSION
#endif

typedef struct {
  char *dir;
  long fail_after;      /* -1: never */
  char *down_while;     /* NULL: never */
  pthread_mutex_t lock; /* windows, failed */
  long windows;         /* whole windows written, all partitions */
  int failed;           /* the injected failure happened */
} state_t;

typedef struct {
  state_t *st;
  uint32_t p;
  uint64_t epoch;
  int fd;
  char *data, *pos, *tmp;
  uint64_t off;       /* bytes in the data file */
  uint64_t whole_scn; /* the last whole window written */
  uint64_t whole_off; /* the file's length after it */
  uint64_t opened_at; /* the position returned at open */
} part_t;

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

static char *path_of(const char *dir, uint32_t p, const char *ext) {
  size_t n = strlen(dir) + 32;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s/p%" PRIu32 "%s", dir, p, ext);
  return s;
}

static int ex_init(const herald_sink_config_t *conf, void **state, char *err,
                   size_t errlen) {
  const char *dir = NULL;
  long fail_after = -1;
  const char *down_while = NULL;
  for (size_t i = 0; i < conf->n_options; i++) {
    const char *k = conf->keys[i], *v = conf->values[i];
    if (strcmp(k, "dir") == 0) {
      dir = v;
    } else if (strcmp(k, "fail_after_windows") == 0) {
      char *end;
      errno = 0;
      fail_after = strtol(v, &end, 10);
      if (errno || *end || fail_after < 0)
        return fail(err, errlen, HERALD_SINK_ERROR,
                    "fail_after_windows '%s': not a count", v);
    } else if (strcmp(k, "down_while") == 0) {
      down_while = v;
    } else {
      return fail(err, errlen, HERALD_SINK_ERROR,
                  "unknown option '%s' (known: dir, fail_after_windows, "
                  "down_while)",
                  k);
    }
  }
  if (dir == NULL)
    return fail(err, errlen, HERALD_SINK_ERROR, "option 'dir' is not set");
  struct stat sb;
  if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
    return fail(err, errlen, HERALD_SINK_ERROR, "dir '%s': not a directory",
                dir);
  state_t *st = calloc(1, sizeof(*st));
  if (st == NULL || (st->dir = strdup(dir)) == NULL) {
    free(st);
    return fail(err, errlen, HERALD_SINK_ERROR, "out of memory");
  }
  st->fail_after = fail_after;
  if (down_while != NULL && (st->down_while = strdup(down_while)) == NULL) {
    free(st->dir);
    free(st);
    return fail(err, errlen, HERALD_SINK_ERROR, "out of memory");
  }
  pthread_mutex_init(&st->lock, NULL);
  *state = st;
  return HERALD_SINK_OK;
}

/* The .pos file: "scn off epoch"; all 0 when it does not exist. */
static int read_pos(const part_t *pt, uint64_t *scn, uint64_t *off,
                    uint64_t *epoch, char *err, size_t errlen) {
  *scn = *off = *epoch = 0;
  FILE *f = fopen(pt->pos, "r");
  if (f == NULL) {
    if (errno == ENOENT)
      return 0;
    return fail(err, errlen, HERALD_SINK_ERROR, "%s: %s", pt->pos,
                strerror(errno));
  }
  int n = fscanf(f, "%" SCNu64 " %" SCNu64 " %" SCNu64, scn, off, epoch);
  fclose(f);
  if (n != 3)
    return fail(err, errlen, HERALD_SINK_ERROR, "%s: malformed", pt->pos);
  return 0;
}

static int write_pos(const part_t *pt, char *err, size_t errlen) {
  int fd = open(pt->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return fail(err, errlen, HERALD_SINK_ERROR, "%s: %s", pt->tmp,
                strerror(errno));
  char line[96];
  int n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                   pt->whole_scn, pt->whole_off, pt->epoch);
  int ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
  int e = errno;
  close(fd);
  if (!ok || rename(pt->tmp, pt->pos) < 0)
    return fail(err, errlen, HERALD_SINK_ERROR, "%s: %s", pt->pos,
                strerror(ok ? errno : e));
  /* The rename durable too: the directory's entry. */
  int dfd = open(pt->st->dir, O_RDONLY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

static int ex_close(void *vp, char *err, size_t errlen) {
  part_t *pt = vp;
  int rc = 0;
  if (pt->fd >= 0 && close(pt->fd) < 0)
    rc = fail(err, errlen, HERALD_SINK_ERROR, "%s: %s", pt->data,
              strerror(errno));
  free(pt->data);
  free(pt->pos);
  free(pt->tmp);
  free(pt);
  return rc;
}

static int ex_open(void *vs, uint32_t p, uint64_t epoch, void **out,
                   uint64_t *position, char *err, size_t errlen) {
  state_t *st = vs;
  part_t *pt = calloc(1, sizeof(*pt));
  if (pt == NULL)
    return fail(err, errlen, HERALD_SINK_ERROR, "out of memory");
  pt->st = st;
  pt->p = p;
  pt->epoch = epoch;
  pt->fd = -1;
  pt->data = path_of(st->dir, p, ".jsonl");
  pt->pos = path_of(st->dir, p, ".pos");
  pt->tmp = path_of(st->dir, p, ".pos.tmp");
  char ignore[8];
  if (pt->data == NULL || pt->pos == NULL || pt->tmp == NULL) {
    ex_close(pt, ignore, sizeof(ignore));
    return fail(err, errlen, HERALD_SINK_ERROR, "out of memory");
  }
  uint64_t scn, off, owner;
  int rc = read_pos(pt, &scn, &off, &owner, err, errlen);
  if (rc == 0 && owner > epoch)
    rc = fail(err, errlen, HERALD_SINK_FENCED,
              "%s names owner epoch %" PRIu64 ", newer than ours %" PRIu64,
              pt->pos, owner, epoch);
  if (rc == 0) {
    pt->fd = open(pt->data, O_WRONLY | O_CREAT, 0644);
    /* What follows the last flush was never acknowledged: the agent sends
     * it again after the position. */
    if (pt->fd < 0 || ftruncate(pt->fd, (off_t)off) < 0 ||
        lseek(pt->fd, (off_t)off, SEEK_SET) < 0)
      rc = fail(err, errlen, HERALD_SINK_ERROR, "%s: %s", pt->data,
                strerror(errno));
  }
  if (rc < 0) {
    ex_close(pt, ignore, sizeof(ignore));
    return rc;
  }
  pt->off = pt->whole_off = off;
  pt->whole_scn = pt->opened_at = scn;
  *position = scn;
  *out = pt;
  return HERALD_SINK_OK;
}

/* down_while: the destination is down while that file exists. */
static int down(const state_t *st, char *err, size_t errlen) {
  if (st->down_while == NULL || access(st->down_while, F_OK) < 0)
    return 0;
  return fail(err, errlen, HERALD_SINK_ERROR, "destination down (%s exists)",
              st->down_while);
}

static int ex_write(void *vp, const herald_sink_window_t *w, char *err,
                    size_t errlen) {
  part_t *pt = vp;
  state_t *st = pt->st;
  if (down(st, err, errlen) < 0)
    return HERALD_SINK_ERROR;
  if (!w->snapshot && w->scn <= pt->opened_at)
    return HERALD_SINK_OK; /* held already (the agent skips it too) */
  if (w->last) {
    pthread_mutex_lock(&st->lock);
    int inject =
        st->fail_after >= 0 && !st->failed && st->windows >= st->fail_after;
    if (inject)
      st->failed = 1;
    else
      st->windows++;
    pthread_mutex_unlock(&st->lock);
    if (inject)
      return fail(err, errlen, HERALD_SINK_ERROR,
                  "injected failure (fail_after_windows %ld) at window "
                  "%" PRIu64,
                  st->fail_after, w->scn);
  }
  for (size_t done = 0; done < w->json_len;) {
    ssize_t n = write(pt->fd, w->json + done, w->json_len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail(err, errlen, HERALD_SINK_ERROR, "%s: %s", pt->data,
                  strerror(errno));
    done += (size_t)n;
  }
  pt->off += w->json_len;
  if (w->last) {
    pt->whole_scn = w->scn;
    pt->whole_off = pt->off;
  }
  return HERALD_SINK_OK;
}

static int ex_flush(void *vp, char *err, size_t errlen) {
  part_t *pt = vp;
  if (down(pt->st, err, errlen) < 0)
    return HERALD_SINK_ERROR;
  if (fsync(pt->fd) < 0)
    return fail(err, errlen, HERALD_SINK_ERROR, "%s: fsync: %s", pt->data,
                strerror(errno));
  uint64_t scn, off, owner;
  if (read_pos(pt, &scn, &off, &owner, err, errlen) < 0)
    return HERALD_SINK_ERROR;
  if (owner > pt->epoch)
    return fail(err, errlen, HERALD_SINK_FENCED,
                "%s names owner epoch %" PRIu64 ", newer than ours %" PRIu64,
                pt->pos, owner, pt->epoch);
  return write_pos(pt, err, errlen);
}

static void ex_destroy(void *vs) {
  state_t *st = vs;
  pthread_mutex_destroy(&st->lock);
  free(st->down_while);
  free(st->dir);
  free(st);
}

static const herald_sink_plugin_t example = {
    .abi_version = ABI,
    .name = "example",
    .init = ex_init,
    .open_partition = ex_open,
    .write = ex_write,
    .flush = ex_flush,
    .idle = NULL,
    .close_partition = ex_close,
    .destroy = ex_destroy,
};

const herald_sink_plugin_t *herald_sink_plugin(void) {
  return &example;
}
