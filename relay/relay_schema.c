/*
 * relay_schema.c - table schema versions, in memory and in DATA_DIR/schemas.
 */
#include "relay_schema.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "hb_schema.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "herald.pb-c.h"

typedef struct {
  char *dbtable; /* NULL: free slot */
  uint32_t version;
  uint8_t *packed;
  size_t len;
} ent_t;

struct relay_schemas {
  char *dir;
  pthread_mutex_t mu;
  ent_t *v;
  size_t cap, n;
};

static uint64_t key_hash(const char *dbtable, uint32_t version) {
  return XXH64(dbtable, strlen(dbtable), version);
}

static ent_t *find(relay_schemas_t *s, const char *dbtable, uint32_t version) {
  if (s->cap == 0)
    return NULL;
  size_t i = (size_t)(key_hash(dbtable, version) & (s->cap - 1));
  while (s->v[i].dbtable) {
    if (s->v[i].version == version && strcmp(s->v[i].dbtable, dbtable) == 0)
      return &s->v[i];
    i = (i + 1) & (s->cap - 1);
  }
  return NULL;
}

static void insert(relay_schemas_t *s, char *dbtable, uint32_t version,
                   uint8_t *packed, size_t len) {
  if ((s->n + 1) * 2 > s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 64;
    ent_t *nv = hd_calloc(ncap, sizeof(ent_t));
    for (size_t i = 0; i < s->cap; i++) {
      if (!s->v[i].dbtable)
        continue;
      size_t j =
          (size_t)(key_hash(s->v[i].dbtable, s->v[i].version) & (ncap - 1));
      while (nv[j].dbtable)
        j = (j + 1) & (ncap - 1);
      nv[j] = s->v[i];
    }
    free(s->v);
    s->v = nv;
    s->cap = ncap;
  }
  size_t i = (size_t)(key_hash(dbtable, version) & (s->cap - 1));
  while (s->v[i].dbtable)
    i = (i + 1) & (s->cap - 1);
  s->v[i] = (ent_t){dbtable, version, packed, len};
  s->n++;
}

/* Loads one file; 0, or -1 with err filled. */
static int load_file(relay_schemas_t *s, const char *path, char *err,
                     size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, r;
  do {
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 8192;
      buf = hd_realloc(buf, cap);
    }
    r = fread(buf + len, 1, cap - len, fp);
    len += r;
  } while (r > 0);
  int bad = ferror(fp);
  fclose(fp);
  Herald__TableSchema *ts =
      bad ? NULL : herald__table_schema__unpack(NULL, len, buf);
  if (ts == NULL || ts->db == NULL || ts->table == NULL ||
      ts->schema_version == 0) {
    if (ts)
      herald__table_schema__free_unpacked(ts, NULL);
    free(buf);
    snprintf(err, errlen,
             "%s: not a table schema (remove the file if it is stray)", path);
    return -1;
  }
  size_t dl = strlen(ts->db), tl = strlen(ts->table);
  char *name = hd_malloc(dl + tl + 2);
  memcpy(name, ts->db, dl);
  name[dl] = '.';
  memcpy(name + dl + 1, ts->table, tl + 1);
  if (find(s, name, ts->schema_version) == NULL)
    insert(s, name, ts->schema_version, buf, len);
  else {
    free(name);
    free(buf);
  }
  herald__table_schema__free_unpacked(ts, NULL);
  return 0;
}

relay_schemas_t *relay_schemas_open(const char *data_dir, char *err,
                                    size_t errlen) {
  relay_schemas_t *s = hd_calloc(1, sizeof(*s));
  pthread_mutex_init(&s->mu, NULL);
  size_t n = strlen(data_dir) + 16;
  s->dir = hd_malloc(n);
  snprintf(s->dir, n, "%s/schemas", data_dir);
  if (mkdir(s->dir, 0755) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "%s: cannot create: %s", s->dir, strerror(errno));
    relay_schemas_free(s);
    return NULL;
  }
  DIR *d = opendir(s->dir);
  if (d == NULL) {
    snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
    relay_schemas_free(s);
    return NULL;
  }
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l < 4 || strcmp(e->d_name + l - 3, ".pb") != 0)
      continue;
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
    rc = load_file(s, path, err, errlen);
  }
  closedir(d);
  if (rc != 0) {
    relay_schemas_free(s);
    return NULL;
  }
  return s;
}

void relay_schemas_free(relay_schemas_t *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->cap; i++) {
    free(s->v[i].dbtable);
    free(s->v[i].packed);
  }
  free(s->v);
  free(s->dir);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* The packed TableSchema of t at version. */
static uint8_t *pack(const hb_table_t *t, const hb_coldesc_t *d,
                     uint32_t version, size_t *len) {
  Herald__TableSchema ts = HERALD__TABLE_SCHEMA__INIT;
  ts.db = (char *)t->db;
  ts.table = (char *)t->name;
  ts.schema_version = version;
  ts.n_columns = t->ncols;
  Herald__ColumnSchema *cs = hd_calloc(t->ncols + 1, sizeof(*cs));
  Herald__ColumnSchema **cp = hd_calloc(t->ncols + 1, sizeof(*cp));
  hb_buf_t *types = hd_calloc(t->ncols + 1, sizeof(hb_buf_t));
  ts.columns = cp;
  for (uint32_t i = 0; i < t->ncols; i++) {
    Herald__ColumnSchema *c = &cs[i];
    herald__column_schema__init(c);
    cp[i] = c;
    hb_render_sql_type(&d[i], &types[i]);
    hb_buf_putc(&types[i], '\0');
    c->name = (char *)d[i].name;
    c->sql_type = types[i].p;
    c->base_type = (char *)d[i].base;
    c->binlog_type = d[i].type;
    c->length = d[i].length;
    c->max_bytes = d[i].max_bytes;
    c->precision = d[i].precision;
    c->scale = d[i].scale;
    c->fsp = d[i].fsp;
    c->signedness = !d[i].numeric ? HERALD__SIGNEDNESS__SIGN_NOT_NUMERIC
                    : d[i].is_unsigned < 0 ? HERALD__SIGNEDNESS__SIGN_UNKNOWN
                    : d[i].is_unsigned     ? HERALD__SIGNEDNESS__SIGN_UNSIGNED
                                           : HERALD__SIGNEDNESS__SIGN_SIGNED;
    c->nullable = d[i].nullable;
    c->charset = (char *)(d[i].charset ? d[i].charset : "");
    c->collation_id = d[i].collation;
    c->n_labels = d[i].nlabels;
    c->labels = (char **)d[i].labels;
    c->pk_position = d[i].pk;
  }
  *len = herald__table_schema__get_packed_size(&ts);
  uint8_t *out = hd_malloc(*len ? *len : 1);
  herald__table_schema__pack(&ts, out);
  for (uint32_t i = 0; i < t->ncols; i++)
    hb_buf_free(&types[i]);
  free(types);
  free(cs);
  free(cp);
  return out;
}

/* Writes the file of a new version: temp file, fsync, rename, fsync of
 * the directory. */
static int persist(relay_schemas_t *s, const char *dbtable, uint32_t version,
                   const uint8_t *p, size_t len) {
  char path[1200], tmp[1220];
  snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%08x.pb", s->dir,
           (uint64_t)XXH64(dbtable, strlen(dbtable), 0), version);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  int rc = 0;
  if (write(fd, p, len) != (ssize_t)len || fsync(fd) != 0)
    rc = errno ? -errno : -EIO;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -errno;
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

/* The description of t's columns; *d is dv or allocated (free it when it
 * is not dv). */
static void describe(const hb_table_t *t, hb_coldesc_t *dv, size_t ndv,
                     hb_coldesc_t **d) {
  *d = t->ncols > ndv ? hd_malloc(t->ncols * sizeof(**d)) : dv;
  for (uint32_t i = 0; i < t->ncols; i++)
    hb_describe_column(t, i, &(*d)[i]);
}

int relay_schemas_note(relay_schemas_t *s, const hb_table_t *t,
                       uint32_t *version) {
  hb_coldesc_t dv[32], *d = NULL;
  uint32_t v = t->schema_version;
  if (v == 0) { /* a table the decoder did not build */
    describe(t, dv, 32, &d);
    v = hb_schema_version(t->db, t->name, d, t->ncols);
  }
  size_t dl = strlen(t->db), tl = strlen(t->name);
  char stackname[256], *name = stackname;
  if (dl + tl + 2 > sizeof(stackname))
    name = hd_malloc(dl + tl + 2);
  memcpy(name, t->db, dl);
  name[dl] = '.';
  memcpy(name + dl + 1, t->name, tl + 1);
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  int known = find(s, name, v) != NULL;
  pthread_mutex_unlock(&s->mu);
  if (!known) {
    if (d == NULL)
      describe(t, dv, 32, &d);
    size_t len;
    uint8_t *p = pack(t, d, v, &len);
    rc = persist(s, name, v, p, len);
    if (rc == 0) {
      pthread_mutex_lock(&s->mu);
      insert(s, hd_strdup(name), v, p, len);
      pthread_mutex_unlock(&s->mu);
      hd_log(HD_LL_INFO, "schema", "table schema", "table=%s version=%u", name,
             v);
    } else {
      free(p);
      hd_log(HD_LL_ERROR, "schema", "cannot keep a table schema",
             "table=%s version=%u dir=%s error=\"%s\"", name, v, s->dir,
             strerror(-rc));
    }
  }
  if (name != stackname)
    free(name);
  if (d != NULL && d != dv)
    free(d);
  *version = v;
  return rc;
}

int relay_schemas_get(relay_schemas_t *s, const char *dbtable, uint32_t version,
                      uint8_t **out, size_t *len, size_t *cap) {
  pthread_mutex_lock(&s->mu);
  ent_t *e = find(s, dbtable, version);
  if (e) {
    if (*cap - *len < e->len) {
      size_t ncap = *cap ? *cap : 256;
      while (ncap - *len < e->len)
        ncap *= 2;
      *out = hd_realloc(*out, ncap);
      *cap = ncap;
    }
    memcpy(*out + *len, e->packed, e->len);
    *len += e->len;
  }
  pthread_mutex_unlock(&s->mu);
  return e != NULL;
}
