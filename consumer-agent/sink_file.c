/*
 * sink_file.c - the file sink: JSON lines appended to sink.path.
 *
 * sink.path is a template: {agent} becomes agent.id and {partition} the
 * partition's number, so "/var/lib/herald/{agent}-{partition}.jsonl"
 * gives each partition a file of its own and "/var/log/herald.jsonl" one
 * file for all. Partitions whose paths name the same file (by device and
 * inode, so that two spellings of one path count as one) share one open
 * file with one lock: a chunk's bytes go out in one locked write loop, so
 * lines never interleave.
 *
 * The file is opened in append mode and created (0644) when missing; its
 * directory must exist (a clear error otherwise, never a silent mkdir of
 * a mistyped path), and after creating the file the directory is fsync'd
 * so that the new name survives a crash. A flush fsyncs the file: what a
 * checkpoint covers is on disk. A reopen after a failure appends again, so
 * the windows after the last checkpoint may appear twice; nothing before
 * it does.
 *
 * Two failures are worth their own handling:
 *   - a write that fails halfway (ENOSPC) would leave a torn line that the
 *     replay then follows; the file is truncated back to where the chunk
 *     began, so it holds whole lines only;
 *   - a failed fsync leaves the file's pages in an unknown state (Linux
 *     may have dropped them and marked them clean, and a second fsync
 *     would then succeed falsely): the open file is broken for every
 *     partition sharing it, each of which fails its next write or flush,
 *     closes and replays from its checkpoint into the file opened afresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "sink_int.h"

typedef struct file_ent {
  struct file_ent *next;
  char *path; /* as expanded for the partition that opened it */
  dev_t dev;
  ino_t ino;
  int fd;
  int regular;               /* a regular file: fsync and truncate apply */
  int refs;                  /* partitions holding it; under the sink's lock */
  pthread_mutex_t lock;      /* the fields below and the write loop */
  pthread_mutex_t sync_lock; /* one fsync at a time (file_flush()) */
  uint64_t writes;           /* chunks written */
  uint64_t synced;           /* writes covered by the last fsync */
  int broken;                /* a failed fsync or truncate: see above */
  char broken_msg[256];
} file_ent_t;

typedef struct {
  sink_t base;
  char *tmpl;           /* sink.path */
  char *agent;          /* agent.id */
  pthread_mutex_t lock; /* files */
  file_ent_t *files;
} file_sink_t;

typedef struct {
  sink_part_t base;
  file_ent_t *f;
} file_part_t;

/* A growing string, for the expansion. */
typedef struct {
  char *s;
  size_t len, cap;
} strbuf_t;

static void sb_add(strbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->s = hd_realloc(b->s, b->cap);
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

/* sink.path for partition p; *out freed by the caller. */
static int expand(const char *tmpl, const char *agent, uint32_t p, char **out,
                  char *err, size_t errlen) {
  strbuf_t b = {NULL, 0, 0};
  char num[16];
  snprintf(num, sizeof(num), "%" PRIu32, p);
  sb_add(&b, "", 0);
  for (const char *c = tmpl; *c;) {
    const char *brace = strchr(c, '{');
    if (brace == NULL) {
      sb_add(&b, c, strlen(c));
      break;
    }
    sb_add(&b, c, (size_t)(brace - c));
    if (strncmp(brace, "{agent}", 7) == 0 && agent != NULL) {
      sb_add(&b, agent, strlen(agent));
      c = brace + 7;
    } else if (strncmp(brace, "{partition}", 11) == 0) {
      sb_add(&b, num, strlen(num));
      c = brace + 11;
    } else {
      free(b.s);
      return hd_errorf(err, errlen, -EINVAL,
                       "file sink: sink.path '%s': unknown placeholder at "
                       "'%.20s' (known: {agent}, {partition})",
                       tmpl, brace);
    }
  }
  if (b.len == 0) {
    free(b.s);
    return hd_errorf(err, errlen, -EINVAL, "file sink: sink.path is empty");
  }
  *out = b.s;
  return 0;
}

static int file_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                       size_t errlen) {
  if (conf->sink.path == NULL)
    return hd_errorf(err, errlen, -EINVAL, "file sink: sink.path is not set");
  /* Expanded once here so that a bad template fails at start-up, not when
   * the first partition opens. */
  char *probe;
  int rc = expand(conf->sink.path, conf->agent.id, 0, &probe, err, errlen);
  if (rc < 0)
    return rc;
  free(probe);
  file_sink_t *fs = hd_calloc(1, sizeof(*fs));
  fs->tmpl = hd_strdup(conf->sink.path);
  fs->agent = conf->agent.id ? hd_strdup(conf->agent.id) : NULL;
  pthread_mutex_init(&fs->lock, NULL);
  *out = &fs->base;
  return 0;
}

/* The directory of path must exist: said plainly, with both names. */
static int check_dir(const char *path, uint32_t p, char *err, size_t errlen) {
  char *copy = hd_strdup(path);
  const char *dir = dirname(copy);
  struct stat st;
  int rc = 0;
  if (stat(dir, &st) < 0)
    rc = hd_errorf(err, errlen, -errno,
                   "file sink: partition %" PRIu32
                   ": directory '%s' of '%s': %s",
                   p, dir, path, hd_strerror(-errno));
  else if (!S_ISDIR(st.st_mode))
    rc = hd_errorf(err, errlen, -ENOTDIR,
                   "file sink: partition %" PRIu32
                   ": '%s', the directory of '%s', is not a directory",
                   p, dir, path);
  free(copy);
  return rc;
}

/* After creating path: its name is durable only once its directory is. */
static int sync_dir(const char *path, uint32_t p, char *err, size_t errlen) {
  char dir[4096];
  int rc = agent__sync_dir_of(path, dir, sizeof(dir));
  if (rc < 0)
    return hd_errorf(err, errlen, rc,
                     "file sink: partition %" PRIu32
                     ": fsync directory '%s': %s",
                     p, dir, hd_strerror(rc));
  return 0;
}

/* The open file of that path (or, with path NULL, of that device and
 * inode); under fs->lock. A broken file met on the way leaves the list:
 * it stays open for the partitions that still hold it (all their writes
 * and flushes fail), and the next partition to open the path gets a fresh
 * one. Two descriptors of one file then, but only the fresh one writes. */
static file_ent_t *find_ent(file_sink_t *fs, const char *path, dev_t dev,
                            ino_t ino) {
  for (file_ent_t **pp = &fs->files; *pp;) {
    file_ent_t *f = *pp;
    pthread_mutex_lock(&f->lock);
    int broken = f->broken;
    pthread_mutex_unlock(&f->lock);
    if (broken) {
      *pp = f->next;
      f->next = NULL;
      continue;
    }
    if ((path && strcmp(f->path, path) == 0) ||
        (!path && f->dev == dev && f->ino == ino))
      return f;
    pp = &f->next;
  }
  return NULL;
}

/* The file of path, shared or opened; under fs->lock. */
static int take_ent(file_sink_t *fs, const char *path, uint32_t p,
                    file_ent_t **out, char *err, size_t errlen) {
  file_ent_t *f = find_ent(fs, path, 0, 0);
  if (f == NULL) {
    int rc = check_dir(path, p, err, errlen);
    if (rc < 0)
      return rc;
    struct stat st;
    int created = stat(path, &st) < 0 && errno == ENOENT;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return hd_errorf(err, errlen, -errno,
                       "file sink: partition %" PRIu32 ": open '%s': %s", p,
                       path, hd_strerror(-errno));
    if (fstat(fd, &st) < 0) {
      rc = hd_errorf(err, errlen, -errno,
                     "file sink: partition %" PRIu32 ": fstat '%s': %s", p,
                     path, hd_strerror(-errno));
      close(fd);
      return rc;
    }
    if (created && (rc = sync_dir(path, p, err, errlen)) < 0) {
      close(fd);
      return rc;
    }
    f = find_ent(fs, NULL, st.st_dev, st.st_ino);
    if (f != NULL) {
      close(fd); /* another spelling of a file open already */
    } else {
      f = hd_calloc(1, sizeof(*f));
      f->path = hd_strdup(path);
      f->dev = st.st_dev;
      f->ino = st.st_ino;
      f->fd = fd;
      f->regular = S_ISREG(st.st_mode);
      pthread_mutex_init(&f->lock, NULL);
      pthread_mutex_init(&f->sync_lock, NULL);
      f->next = fs->files;
      fs->files = f;
    }
  }
  f->refs++;
  *out = f;
  return 0;
}

static void drop_ent(file_sink_t *fs, file_ent_t *f) {
  for (file_ent_t **pp = &fs->files; *pp; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  pthread_mutex_destroy(&f->lock);
  pthread_mutex_destroy(&f->sync_lock);
  free(f->path);
  free(f);
}

static int file_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                     uint64_t *position, char *err, size_t errlen) {
  (void)epoch; /* no position of its own, so nothing to fence */
  file_sink_t *fs = (file_sink_t *)s;
  char *path;
  (void)position; /* a file keeps no position of its own */
  int rc = expand(fs->tmpl, fs->agent, p, &path, err, errlen);
  if (rc < 0)
    return rc;
  file_ent_t *f = NULL;
  pthread_mutex_lock(&fs->lock);
  rc = take_ent(fs, path, p, &f, err, errlen);
  pthread_mutex_unlock(&fs->lock);
  free(path);
  if (rc < 0)
    return rc;
  file_part_t *fp = hd_calloc(1, sizeof(*fp));
  fp->f = f;
  *out = &fp->base;
  return 0;
}

/* Marks f broken; under f->lock. */
static void break_ent(file_ent_t *f, const char *msg) {
  f->broken = 1;
  snprintf(f->broken_msg, sizeof(f->broken_msg), "%s", msg);
}

static int file_write(sink_part_t *part, const sink_window_t *w, char *err,
                      size_t errlen) {
  file_ent_t *f = ((file_part_t *)part)->f;
  int rc = 0;
  if (w->json_len == 0)
    return 0;
  pthread_mutex_lock(&f->lock);
  if (f->broken) {
    rc = hd_errorf(err, errlen, HD_ESINK_BROKEN,
                   "file sink: partition %" PRIu32 ": '%s': %s",
                   part->partition, f->path, f->broken_msg);
    goto out;
  }
  off_t start = f->regular ? lseek(f->fd, 0, SEEK_END) : 0;
  size_t done = 0;
  rc = agent__write_all(f->fd, w->json, w->json_len, &done);
  if (rc < 0) {
    hd_errorf(err, errlen, rc,
              "file sink: partition %" PRIu32 ": write '%s': %s",
              part->partition, f->path, hd_strerror(rc));
    /* No torn line before the replay: back to where the chunk began. */
    if (done > 0 && f->regular && start >= 0 && ftruncate(f->fd, start) < 0) {
      char msg[256];
      snprintf(msg, sizeof(msg), "truncating after a failed write: %s",
               hd_strerror(-errno));
      break_ent(f, msg);
    }
    goto out;
  }
  f->writes++;
out:
  pthread_mutex_unlock(&f->lock);
  return rc;
}

static int file_flush(sink_part_t *part, char *err, size_t errlen) {
  file_ent_t *f = ((file_part_t *)part)->f;
  /* One fsync of a file at a time: a writeback error is reported to one
   * fsync only, and a second fsync running beside it could return 0 for
   * pages the failed one lost. The partitions waiting here then mostly
   * find their writes covered by the fsync they waited for. */
  pthread_mutex_lock(&f->sync_lock);
  pthread_mutex_lock(&f->lock);
  int rc = 0;
  if (f->broken)
    rc = hd_errorf(err, errlen, HD_ESINK_BROKEN,
                   "file sink: partition %" PRIu32 ": '%s': %s",
                   part->partition, f->path, f->broken_msg);
  uint64_t upto = f->writes;
  int needed = f->regular && f->synced < upto;
  pthread_mutex_unlock(&f->lock);
  if (rc == 0 && needed) {
    if (fsync(f->fd) < 0) {
      rc = hd_errorf(err, errlen, -errno,
                     "file sink: partition %" PRIu32 ": fsync '%s': %s",
                     part->partition, f->path, hd_strerror(-errno));
      pthread_mutex_lock(&f->lock);
      break_ent(f, err);
      pthread_mutex_unlock(&f->lock);
    } else {
      pthread_mutex_lock(&f->lock);
      f->synced = upto;
      pthread_mutex_unlock(&f->lock);
    }
  }
  pthread_mutex_unlock(&f->sync_lock);
  return rc;
}

static int file_close(sink_part_t *part, char *err, size_t errlen) {
  file_sink_t *fs = (file_sink_t *)part->sink;
  file_ent_t *f = ((file_part_t *)part)->f;
  int rc = 0;
  pthread_mutex_lock(&fs->lock);
  if (--f->refs == 0) {
    if (close(f->fd) < 0)
      rc = hd_errorf(err, errlen, -errno,
                     "file sink: partition %" PRIu32 ": close '%s': %s",
                     part->partition, f->path, hd_strerror(-errno));
    drop_ent(fs, f);
  }
  pthread_mutex_unlock(&fs->lock);
  free(part);
  return rc;
}

static void file_destroy(sink_t *s) {
  file_sink_t *fs = (file_sink_t *)s;
  /* Every partition is closed, so every file is (refs reached 0). */
  pthread_mutex_destroy(&fs->lock);
  free(fs->tmpl);
  free(fs->agent);
  free(fs);
}

const sink_ops_t sink__file_ops = {
    .name = "file",
    .create = file_create,
    .open_partition = file_open,
    .write = file_write,
    .flush = file_flush,
    .close_partition = file_close,
    .destroy = file_destroy,
};
