/*
 * ckpt_file.c - the checkpoint file, with jansson.
 *
 * One table lists a checkpoint's fields, in the order of
 * docs/zookeeper.md; building and parsing both walk it, as hd_reg.c does
 * for the relays' registrations.
 */
#include "ckpt_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hd_err.h"
#include "hd_group.h"
#include "hd_mem.h"
#include "agent_util.h"

/* Larger than any real file: 65536 partitions take about 13 MB. */
#define CKPT_FILE_MAX (64u << 20)

struct ckpt_file {
  char *path;
  uint32_t partitions;
  pthread_mutex_t lock;      /* entries */
  pthread_mutex_t save_lock; /* one save at a time */
  ckpt_t **entries;          /* partitions entries; NULL: no checkpoint */
};

/* The object of docs/zookeeper.md's checkpoints/<p>, built and read by
 * hd_group.c, the one codec of it: here as an object of the file. */
static int to_json(const ckpt_t *c, json_t **o, char *err, size_t errlen) {
  char *text = NULL, e[256];
  *o = NULL;
  if (hd_checkpoint_build(c, &text, e, sizeof(e)) < 0)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT, "%s", e);
  *o = json_loads(text, 0, NULL);
  free(text);
  if (*o == NULL)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT, "out of memory");
  return 0;
}

/* A checkpoint object into *out; the message is prefixed with where. */
static int from_json(const json_t *o, ckpt_t *out, const char *where, char *err,
                     size_t errlen) {
  if (!json_is_object(o))
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT, "%sexpected a JSON object",
                     where);
  char *text = json_dumps(o, JSON_COMPACT), e[256];
  if (text == NULL)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT, "%sout of memory", where);
  int rc = hd_checkpoint_parse(text, strlen(text), out, e, sizeof(e));
  free(text);
  if (rc < 0)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT, "%s%s", where, e);
  return 0;
}

int ckpt_build(const ckpt_t *c, char **json, char *err, size_t errlen) {
  json_t *o;
  *json = NULL;
  int rc = to_json(c, &o, err, errlen);
  if (rc < 0)
    return rc;
  *json = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (*json == NULL)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT, "out of memory");
  return 0;
}

int ckpt_parse(const char *json, size_t len, ckpt_t *out, char *err,
               size_t errlen) {
  json_error_t je;
  json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (o == NULL)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT,
                     "not JSON: %s (line %d, column %d)", je.text, je.line,
                     je.column);
  int rc = from_json(o, out, "", err, errlen);
  json_decref(o);
  return rc;
}

const char *ckpt_file_path(const hd_agent_conf_t *conf, char *buf, size_t n) {
  if (conf->agent.checkpoint_file)
    snprintf(buf, n, "%s", conf->agent.checkpoint_file);
  else
    snprintf(buf, n, "%s.checkpoints.json",
             conf->agent.id ? conf->agent.id : "agent");
  return buf;
}

static ckpt_file_t *store_new(const char *path, uint32_t partitions) {
  ckpt_file_t *f = hd_calloc(1, sizeof(*f));
  f->path = hd_strdup(path);
  f->partitions = partitions;
  pthread_mutex_init(&f->lock, NULL);
  pthread_mutex_init(&f->save_lock, NULL);
  f->entries = hd_calloc(partitions, sizeof(*f->entries));
  return f;
}

/* The whole file into *data (NUL-terminated), or -ENOENT. */
static int read_file(const char *path, char **data, size_t *len, char *err,
                     size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? -ENOENT
                           : hd_errorf(err, errlen, -errno,
                                       "checkpoint file '%s': open: %s", path,
                                       hd_strerror(-errno));
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0)
    rc = hd_errorf(err, errlen, -errno, "checkpoint file '%s': fstat: %s", path,
                   hd_strerror(-errno));
  else if (st.st_size > CKPT_FILE_MAX)
    rc = hd_errorf(err, errlen, HD_ECKPT_CORRUPT,
                   "checkpoint file '%s': %lld bytes, more than any "
                   "checkpoint file holds",
                   path, (long long)st.st_size);
  char *buf = NULL;
  size_t off = 0;
  if (rc == 0) {
    buf = hd_malloc((size_t)st.st_size + 1);
    while (off < (size_t)st.st_size) {
      ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        rc = hd_errorf(err, errlen, -errno, "checkpoint file '%s': read: %s",
                       path, hd_strerror(-errno));
        break;
      }
      if (n == 0)
        break;
      off += (size_t)n;
    }
  }
  close(fd);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  buf[off] = '\0';
  *data = buf;
  *len = off;
  return 0;
}

/* "0".."N-1" in decimal, no sign, no leading zero. */
static int partition_key(const char *key, uint32_t n, uint32_t *p) {
  if (key[0] == '\0' || (key[0] == '0' && key[1] != '\0'))
    return -1;
  uint64_t v = 0;
  for (const char *c = key; *c; c++) {
    if (*c < '0' || *c > '9')
      return -1;
    v = v * 10 + (uint64_t)(*c - '0');
    if (v >= n)
      return -1;
  }
  *p = (uint32_t)v;
  return 0;
}

static int load_json(ckpt_file_t *f, const json_t *root, char *err,
                     size_t errlen) {
  const char *path = f->path;
  if (!json_is_object(root))
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT,
                     "checkpoint file '%s': expected a JSON object", path);
  json_t *n = json_object_get(root, "partitions");
  if (!json_is_integer(n) || json_integer_value(n) < 1)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT,
                     "checkpoint file '%s': field 'partitions': %s", path,
                     n ? "expected a positive integer" : "missing");
  if (json_integer_value(n) != (json_int_t)f->partitions)
    return hd_errorf(
        err, errlen, HD_ECKPT_PARTITIONS,
        "checkpoint file '%s' is for %" JSON_INTEGER_FORMAT
        " partitions, agent.partitions is %" PRIu32
        ": the partitions are fixed for the checkpoints' life (set "
        "agent.partitions back, or move the file away to start afresh)",
        path, json_integer_value(n), f->partitions);
  json_t *cks = json_object_get(root, "checkpoints");
  if (!json_is_object(cks))
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT,
                     "checkpoint file '%s': field 'checkpoints': %s", path,
                     cks ? "expected an object" : "missing");
  const char *key;
  json_t *v;
  json_object_foreach(cks, key, v) {
    uint32_t p;
    if (partition_key(key, f->partitions, &p) < 0)
      return hd_errorf(err, errlen, HD_ECKPT_CORRUPT,
                       "checkpoint file '%s': checkpoints: key '%.40s' is "
                       "not a partition below %" PRIu32,
                       path, key, f->partitions);
    char where[64];
    snprintf(where, sizeof(where), "checkpoints.%" PRIu32 ": ", p);
    ckpt_t c;
    char msg[256];
    int rc = from_json(v, &c, where, msg, sizeof(msg));
    if (rc < 0)
      return hd_errorf(err, errlen, rc, "checkpoint file '%s': %s", path, msg);
    f->entries[p] = hd_malloc(sizeof(ckpt_t));
    *f->entries[p] = c;
  }
  return 0;
}

int ckpt_file_load(const char *path, uint32_t partitions, ckpt_file_t **out,
                   char *err, size_t errlen) {
  *out = NULL;
  if (partitions < 1 || partitions > 65536)
    return hd_errorf(err, errlen, -EINVAL,
                     "checkpoint file '%s': %" PRIu32
                     " partitions: not in 1..65536",
                     path, partitions);
  char *data = NULL;
  size_t len = 0;
  int rc = read_file(path, &data, &len, err, errlen);
  if (rc == -ENOENT) {
    *out = store_new(path, partitions);
    return 0;
  }
  if (rc < 0)
    return rc;
  json_error_t je;
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  free(data);
  if (root == NULL)
    return hd_errorf(err, errlen, HD_ECKPT_CORRUPT,
                     "checkpoint file '%s': not JSON: %s (line %d, column "
                     "%d); refusing to start without the positions it "
                     "holds (repair it, or move it away to start afresh)",
                     path, je.text, je.line, je.column);
  ckpt_file_t *f = store_new(path, partitions);
  rc = load_json(f, root, err, errlen);
  json_decref(root);
  if (rc < 0) {
    ckpt_file_free(f);
    return rc;
  }
  *out = f;
  return 0;
}

uint32_t ckpt_file_partitions(const ckpt_file_t *f) {
  return f->partitions;
}

int ckpt_file_get(ckpt_file_t *f, uint32_t p, ckpt_t *out) {
  memset(out, 0, sizeof(*out));
  if (p >= f->partitions)
    return 0;
  pthread_mutex_lock(&f->lock);
  int have = f->entries[p] != NULL;
  if (have)
    *out = *f->entries[p];
  pthread_mutex_unlock(&f->lock);
  return have;
}

int ckpt_file_set(ckpt_file_t *f, uint32_t p, const ckpt_t *c) {
  if (p >= f->partitions || c->owner[0] == '\0' ||
      memchr(c->owner, '\0', sizeof(c->owner)) == NULL)
    return -EINVAL;
  pthread_mutex_lock(&f->lock);
  if (f->entries[p] == NULL)
    f->entries[p] = hd_malloc(sizeof(ckpt_t));
  *f->entries[p] = *c;
  pthread_mutex_unlock(&f->lock);
  return 0;
}

/* The store as the file's text, with a final newline. */
static int render(ckpt_file_t *f, char **text, char *err, size_t errlen) {
  json_t *root = json_object();
  json_t *cks = json_object();
  int rc = 0;
  json_object_set_new(root, "partitions", json_integer(f->partitions));
  pthread_mutex_lock(&f->lock);
  for (uint32_t p = 0; p < f->partitions && rc == 0; p++) {
    if (f->entries[p] == NULL)
      continue;
    json_t *o;
    char key[16], msg[256];
    snprintf(key, sizeof(key), "%" PRIu32, p);
    rc = to_json(f->entries[p], &o, msg, sizeof(msg));
    if (rc < 0)
      hd_errorf(err, errlen, rc, "checkpoint file '%s': checkpoints.%s: %s",
                f->path, key, msg);
    else
      json_object_set_new(cks, key, o);
  }
  pthread_mutex_unlock(&f->lock);
  json_object_set_new(root, "checkpoints", cks);
  char *s = rc == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  if (rc < 0)
    return rc;
  if (s == NULL)
    return hd_errorf(err, errlen, HD_ENOMEM, "checkpoint file '%s': %s",
                     f->path, hd_strerror(HD_ENOMEM));
  size_t n = strlen(s);
  *text = hd_realloc(s, n + 2);
  (*text)[n] = '\n';
  (*text)[n + 1] = '\0';
  return 0;
}

/* text into tmp, durably. */
static int write_tmp(const char *tmp, const char *text, char *err,
                     size_t errlen) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return hd_errorf(err, errlen, -errno, "checkpoint file: create '%s': %s",
                     tmp, hd_strerror(-errno));
  int rc = agent__write_all(fd, text, strlen(text), NULL);
  if (rc < 0)
    hd_errorf(err, errlen, rc, "checkpoint file: write '%s': %s", tmp,
              hd_strerror(rc));
  else if (fsync(fd) < 0)
    rc = hd_errorf(err, errlen, -errno, "checkpoint file: fsync '%s': %s", tmp,
                   hd_strerror(-errno));
  if (close(fd) < 0 && rc == 0)
    rc = hd_errorf(err, errlen, -errno, "checkpoint file: close '%s': %s", tmp,
                   hd_strerror(-errno));
  return rc;
}

int ckpt_file_save(ckpt_file_t *f, char *err, size_t errlen) {
  pthread_mutex_lock(&f->save_lock);
  char *text = NULL;
  size_t tlen = strlen(f->path) + 5;
  char *tmp = hd_malloc(tlen);
  snprintf(tmp, tlen, "%s.tmp", f->path);
  int rc = render(f, &text, err, errlen);
  if (rc == 0)
    rc = write_tmp(tmp, text, err, errlen);
  if (rc == 0 && rename(tmp, f->path) < 0)
    rc = hd_errorf(err, errlen, -errno,
                   "checkpoint file: rename '%s' to '%s': %s", tmp, f->path,
                   hd_strerror(-errno));
  if (rc < 0) {
    unlink(tmp); /* the old file stands; the next save starts afresh */
  } else {
    char dir[4096];
    rc = agent__sync_dir_of(f->path, dir, sizeof(dir));
    if (rc < 0)
      hd_errorf(err, errlen, rc,
                "checkpoint file '%s': fsync directory '%s': %s", f->path, dir,
                hd_strerror(rc));
  }
  free(text);
  free(tmp);
  pthread_mutex_unlock(&f->save_lock);
  return rc;
}

void ckpt_file_free(ckpt_file_t *f) {
  if (f == NULL)
    return;
  for (uint32_t p = 0; p < f->partitions; p++)
    free(f->entries[p]);
  free(f->entries);
  pthread_mutex_destroy(&f->lock);
  pthread_mutex_destroy(&f->save_lock);
  free(f->path);
  free(f);
}
