/*
 * sink_redis.c - the redis sink: the rows of the source kept as Redis keys
 * (a cache that follows the tables), or every change appended to Redis
 * streams.
 *
 * Keys mode (sink.mode keys, the default): each row is the key sink.key
 * ({db}, {table}, {pk} replaced; {pk} is the primary key's values in key
 * order joined by ':', each ':' and '\' in a value escaped by a '\').
 * The value is a hash of the row's columns (sink.value hash: an insert or
 * snapshot row replaces the hash, an update sets the columns its after
 * image has and removes the ones that became NULL) or a string holding
 * the after image's JSON text as the change line has it (sink.value json).
 * A delete deletes the key. A key move deletes the old key in the old
 * key's partition and writes the new one in the new key's
 * (herald_change_owned()), so that each key is written by one partition
 * only.
 *
 * The guard. Every write is one EVALSHA of the script below, which keeps
 * the position of the last change applied to a key in the companion key
 * "herald:pos:<key>" and applies a write only when its position is newer:
 * (SCN, index), index the row's 0-based place in the partition's window
 * (counting every chunk; a snapshot row, whose window may share its SCN
 * with the one before and which holds the state at that SCN, takes the
 * highest index). Positions are fixed-width digit strings, compared as
 * strings. A delete leaves its position behind (a tombstone), so that a
 * replayed older insert does not bring the row back. A replay after a
 * failure, a kill, or a move of the partition therefore never puts an
 * older value back: per key, the content is the newest change applied,
 * once. sink.ttl, when set, expires the key and its position together
 * (tombstones too); without it positions and tombstones are kept.
 *
 * Stream mode: every change line (without its '\n') is XADDed to the
 * stream sink.stream ({db}, {table} replaced) with the fields scn,
 * partition and change; the script keeps the position of the partition's
 * last entry in the hash "herald:pos:<stream>" (field: the partition) and
 * appends only newer ones, so a replay appends nothing twice. A key move
 * is appended by both partitions that receive it.
 *
 * Each partition has its own connection. A window's commands go out
 * pipelined (hiredis' output buffer, drained every 1024 commands, at idle
 * and at flush); every reply is checked: an error reply or an I/O error
 * (a timeout after sink.timeout included) breaks the handle with
 * HD_ESINK_REMOTE naming the key, the error and the SCN. The agent then
 * closes the partition and replays from its checkpoint, which a flush
 * moves only when every reply came back. The script is loaded (SCRIPT
 * LOAD) when a partition opens; a NOSCRIPT reply (a SCRIPT FLUSH, a
 * restarted server) breaks the partition like any error, and the reopen
 * loads it again: the pipelined commands after it cannot be resent in
 * order, the replay from the checkpoint can.
 *
 * Credentials: the URL's user:password, or sink.password_file (its first
 * line) with the URL's user, if any.
 */
#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "sink_int.h"

/* KEYS[1] the key (or stream), KEYS[2] its position key (or hash);
 * ARGV[1] the position, ARGV[2] the operation:
 *   D delete; S set ARGV[4]; H replace, M merge the hash: ARGV[4] n, then
 *   n field/value pairs to set, then the fields to delete; ARGV[3] ttl ms
 *   (0 none);
 *   X stream: ARGV[3] the partition, ARGV[4] maxlen (0 none), then the
 *   entry's field/value pairs.
 * Returns 1 when applied, 0 when the stored position is as new or newer. */
static const char guard_lua[] =
    "local op = ARGV[2]\n"
    "local cur\n"
    "if op == 'X' then cur = redis.call('HGET', KEYS[2], ARGV[3])\n"
    "else cur = redis.call('GET', KEYS[2]) end\n"
    "if cur and cur >= ARGV[1] then return 0 end\n"
    "if op == 'X' then\n"
    "  local a = {'XADD', KEYS[1]}\n"
    "  if tonumber(ARGV[4]) > 0 then\n"
    "    a[#a+1] = 'MAXLEN'; a[#a+1] = '~'; a[#a+1] = ARGV[4]\n"
    "  end\n"
    "  a[#a+1] = '*'\n"
    "  for i = 5, #ARGV do a[#a+1] = ARGV[i] end\n"
    "  redis.call(unpack(a))\n"
    "  redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])\n"
    "  return 1\n"
    "end\n"
    "local ttl = tonumber(ARGV[3])\n"
    "if op == 'D' then redis.call('DEL', KEYS[1])\n"
    "elseif op == 'S' then redis.call('SET', KEYS[1], ARGV[4])\n"
    "else\n"
    "  if op == 'H' then redis.call('DEL', KEYS[1]) end\n"
    "  local n = tonumber(ARGV[4])\n"
    "  if n > 0 then\n"
    "    local a = {'HSET', KEYS[1]}\n"
    "    for i = 5, 4 + 2 * n do a[#a+1] = ARGV[i] end\n"
    "    redis.call(unpack(a))\n"
    "  end\n"
    "  if #ARGV > 4 + 2 * n then\n"
    "    local a = {'HDEL', KEYS[1]}\n"
    "    for i = 5 + 2 * n, #ARGV do a[#a+1] = ARGV[i] end\n"
    "    redis.call(unpack(a))\n"
    "  end\n"
    "end\n"
    "if ttl > 0 then\n"
    "  if op ~= 'D' then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
    "  redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)\n"
    "else\n"
    "  redis.call('SET', KEYS[2], ARGV[1])\n"
    "end\n"
    "return 1\n";

#define POS_PREFIX "herald:pos:"
/* A snapshot row's place: the end of its SCN. */
#define SNAP_INDEX UINT64_C(9999999999)
#define DRAIN_AT 1024 /* pending commands before a drain */

typedef struct {
  sink_t base;
  char *host; /* NULL: unix */
  int port;
  char *unix_path;
  int db;
  char *user, *pass; /* NULL: none */
  char *shown;       /* the URL without its password, for messages */
  char *key_tmpl, *stream_tmpl;
  int value, mode;
  uint64_t ttl_ms;
  int64_t maxlen;
  uint64_t timeout_ms, connect_timeout_ms;
} redis_sink_t;

typedef struct {
  char *key;
  uint64_t scn;
} pending_t;

typedef struct {
  sink_part_t base;
  redisContext *c;
  char sha[64];
  uint64_t scn;   /* the current window */
  uint64_t index; /* rows of it so far */
  pending_t *pend;
  size_t npend, cappend;
  /* Ownership of the changes whose lines have not come yet (a chunk's
   * last line comes with the next chunk): bit 0 the key is this
   * partition's, bit 1 the old key is. */
  unsigned char *own;
  size_t nown, capown, ownhead;
  uint64_t applied, skipped; /* replies 1 and 0 */
} redis_part_t;

/* ------------------------------------------------------------ config */

static char *read_first_line(const char *path, char *err, size_t errlen,
                             int *rc) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    *rc = hd_errorf(err, errlen, HD_ECONFIG, "sink.password_file %s: %s", path,
                    strerror(errno));
    return NULL;
  }
  char buf[4096];
  if (fgets(buf, sizeof buf, f) == NULL) {
    fclose(f);
    *rc = hd_errorf(err, errlen, HD_ECONFIG, "sink.password_file %s: empty",
                    path);
    return NULL;
  }
  fclose(f);
  buf[strcspn(buf, "\r\n")] = '\0';
  *rc = 0;
  return hd_strdup(buf);
}

static void redis_destroy(sink_t *s) {
  redis_sink_t *rs = (redis_sink_t *)s;
  if (rs == NULL)
    return;
  free(rs->host);
  free(rs->unix_path);
  free(rs->user);
  free(rs->pass);
  free(rs->shown);
  free(rs->key_tmpl);
  free(rs->stream_tmpl);
  free(rs);
}

static char *strndup_(const char *p, size_t n) {
  char *s = hd_malloc(n + 1);
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* redis://[user:password@]host[:port][/db], unix:/path, or /path. */
static int parse_url(redis_sink_t *rs, const char *url, char *err,
                     size_t errlen) {
  rs->port = 6379;
  if (url[0] == '/' || strncmp(url, "unix:", 5) == 0) {
    rs->unix_path = hd_strdup(url[0] == '/' ? url : url + 5);
    rs->shown = hd_strdup(url);
    return 0;
  }
  if (strncmp(url, "redis://", 8) != 0)
    return hd_errorf(err, errlen, HD_ECONFIG,
                     "sink.url '%s': not redis://[user:password@]host:port"
                     "[/db], unix:/path or /path",
                     url);
  const char *p = url + 8, *at = strrchr(p, '@');
  if (at != NULL) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL) {
      rs->pass = strndup_(p, (size_t)(at - p));
    } else {
      if (colon > p)
        rs->user = strndup_(p, (size_t)(colon - p));
      rs->pass = strndup_(colon + 1, (size_t)(at - colon - 1));
    }
    p = at + 1;
  }
  const char *slash = strchr(p, '/');
  const char *hend = slash ? slash : p + strlen(p);
  const char *colon = memchr(p, ':', (size_t)(hend - p));
  if (colon != NULL) {
    char *e;
    long port = strtol(colon + 1, &e, 10);
    if (e != hend || port < 1 || port > 65535)
      return hd_errorf(err, errlen, HD_ECONFIG, "sink.url: bad port in '%s'",
                       url);
    rs->port = (int)port;
  } else {
    colon = hend;
  }
  if (colon == p)
    return hd_errorf(err, errlen, HD_ECONFIG, "sink.url: no host in '%s'", url);
  rs->host = strndup_(p, (size_t)(colon - p));
  if (slash != NULL && slash[1] != '\0') {
    char *e;
    long db = strtol(slash + 1, &e, 10);
    if (*e != '\0' || db < 0 || db > 1000000)
      return hd_errorf(err, errlen, HD_ECONFIG,
                       "sink.url: bad database number in '%s'", url);
    rs->db = (int)db;
  }
  char shown[512];
  snprintf(shown, sizeof shown, "redis://%s%s%s:%d/%d",
           rs->user ? rs->user : "", rs->user ? "@" : "", rs->host, rs->port,
           rs->db);
  rs->shown = hd_strdup(shown);
  return 0;
}

static int redis_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                        size_t errlen) {
  if (conf->sink.url == NULL)
    return hd_errorf(err, errlen, HD_ECONFIG, "sink: type redis needs 'url'");
  redis_sink_t *rs = hd_calloc(1, sizeof *rs);
  int rc = parse_url(rs, conf->sink.url, err, errlen);
  if (rc == 0 && conf->sink.password_file != NULL) {
    free(rs->pass);
    rs->pass = read_first_line(conf->sink.password_file, err, errlen, &rc);
  }
  if (rc < 0) {
    redis_destroy(&rs->base);
    return rc;
  }
  rs->key_tmpl =
      hd_strdup(conf->sink.key ? conf->sink.key : "{db}:{table}:{pk}");
  rs->stream_tmpl =
      hd_strdup(conf->sink.stream ? conf->sink.stream : "herald:{db}:{table}");
  rs->value = conf->sink.value;
  rs->mode = conf->sink.mode;
  rs->ttl_ms = conf->sink.ttl_ms;
  rs->maxlen = conf->sink.maxlen;
  rs->timeout_ms = conf->sink.timeout_ms ? conf->sink.timeout_ms : 60000;
  rs->connect_timeout_ms =
      conf->sink.connect_timeout_ms ? conf->sink.connect_timeout_ms : 10000;
  if (rs->mode == HD_REDIS_KEYS && strstr(rs->key_tmpl, "{pk}") == NULL) {
    rc = hd_errorf(err, errlen, HD_ECONFIG, "sink.key '%s' lacks {pk}",
                   rs->key_tmpl);
    redis_destroy(&rs->base);
    return rc;
  }
  *out = &rs->base;
  return 0;
}

/* ------------------------------------------------------- connection */

static struct timeval tv_ms(uint64_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

/* One command and its reply, outside the pipeline (open only). */
static int command(redis_part_t *rp, const char *what, redisReply **out,
                   int argc, const char **argv, char *err, size_t errlen) {
  redis_sink_t *rs = (redis_sink_t *)rp->base.sink;
  redisReply *r = redisCommandArgv(rp->c, argc, argv, NULL);
  if (r == NULL)
    return hd_errorf(err, errlen, HD_ESINK_REMOTE,
                     "redis: partition %" PRIu32 ": %s (%s): %s",
                     rp->base.partition, what, rs->shown,
                     rp->c->errstr[0] ? rp->c->errstr : "no reply");
  if (r->type == REDIS_REPLY_ERROR) {
    int rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                       "redis: partition %" PRIu32 ": %s (%s): %s",
                       rp->base.partition, what, rs->shown, r->str);
    freeReplyObject(r);
    return rc;
  }
  if (out)
    *out = r;
  else
    freeReplyObject(r);
  return 0;
}

static void free_pending(redis_part_t *rp) {
  for (size_t i = 0; i < rp->npend; i++)
    free(rp->pend[i].key);
  rp->npend = 0;
}

static int redis_close(sink_part_t *part, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  redis_part_t *rp = (redis_part_t *)part;
  if (rp->c != NULL)
    redisFree(rp->c);
  free_pending(rp);
  free(rp->pend);
  free(rp->own);
  free(rp);
  return 0;
}

static int redis_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                      uint64_t *position, char *err, size_t errlen) {
  (void)epoch;
  redis_sink_t *rs = (redis_sink_t *)s;
  redis_part_t *rp = hd_calloc(1, sizeof *rp);
  rp->base.partition = p;
  rp->base.sink = s; /* for messages before sink.c sets it */
  *position = 0;     /* the guard keeps positions per key, not per partition */
  struct timeval ct = tv_ms(rs->connect_timeout_ms);
  rp->c = rs->unix_path ? redisConnectUnixWithTimeout(rs->unix_path, ct)
                        : redisConnectWithTimeout(rs->host, rs->port, ct);
  int rc = 0;
  if (rp->c == NULL || rp->c->err) {
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "redis: partition %" PRIu32 ": connecting to %s: %s", p,
                   rs->shown, rp->c ? rp->c->errstr : "out of memory");
    goto fail;
  }
  if (redisSetTimeout(rp->c, tv_ms(rs->timeout_ms)) != REDIS_OK ||
      (rs->host && redisEnableKeepAlive(rp->c) != REDIS_OK)) {
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "redis: partition %" PRIu32 ": socket options (%s): %s", p,
                   rs->shown, rp->c->errstr);
    goto fail;
  }
  if (rs->pass != NULL) {
    const char *a[] = {"AUTH", rs->user ? rs->user : rs->pass, rs->pass};
    rc = command(rp, "AUTH", NULL, rs->user ? 3 : 2, a, err, errlen);
    if (rc < 0)
      goto fail;
  }
  if (rs->db != 0) {
    char db[16];
    snprintf(db, sizeof db, "%d", rs->db);
    const char *a[] = {"SELECT", db};
    rc = command(rp, "SELECT", NULL, 2, a, err, errlen);
    if (rc < 0)
      goto fail;
  }
  redisReply *r = NULL;
  const char *a[] = {"SCRIPT", "LOAD", guard_lua};
  rc = command(rp, "SCRIPT LOAD", &r, 3, a, err, errlen);
  if (rc < 0)
    goto fail;
  if (r->type != REDIS_REPLY_STRING || r->len >= sizeof rp->sha) {
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "redis: partition %" PRIu32
                   ": SCRIPT LOAD (%s): unexpected reply type %d",
                   p, rs->shown, r->type);
    freeReplyObject(r);
    goto fail;
  }
  memcpy(rp->sha, r->str, r->len);
  rp->sha[r->len] = '\0';
  freeReplyObject(r);
  *out = &rp->base;
  return 0;
fail:
  redis_close(&rp->base, err, 0);
  return rc;
}

/* Read the reply of every pending command, in order; the first error
 * wins (the others are read too, so that the failure names the first). */
static int drain(redis_part_t *rp, char *err, size_t errlen) {
  redis_sink_t *rs = (redis_sink_t *)rp->base.sink;
  int rc = 0;
  for (size_t i = 0; i < rp->npend; i++) {
    void *v = NULL;
    if (redisGetReply(rp->c, &v) != REDIS_OK || v == NULL) {
      if (rc == 0)
        rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                       "redis: partition %" PRIu32 ": writing %s (scn %" PRIu64
                       ") to %s: %s",
                       rp->base.partition, rp->pend[i].key, rp->pend[i].scn,
                       rs->shown,
                       rp->c->errstr[0] ? rp->c->errstr : "connection lost");
      break; /* the connection is unusable */
    }
    redisReply *r = v;
    if (r->type == REDIS_REPLY_ERROR) {
      if (rc == 0)
        rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                       "redis: partition %" PRIu32 ": writing %s (scn %" PRIu64
                       ") to %s: %s",
                       rp->base.partition, rp->pend[i].key, rp->pend[i].scn,
                       rs->shown, r->str);
    } else if (r->type == REDIS_REPLY_INTEGER) {
      if (r->integer)
        rp->applied++;
      else
        rp->skipped++;
    }
    freeReplyObject(r);
  }
  free_pending(rp);
  return rc;
}

/* ------------------------------------------------- the change lines */

/* A minimal scanner over the change line, so that values keep the text
 * the line has (numbers as herald printed them, the after image as is). */
typedef struct {
  const char *p;
  size_t n;
} span_t;

static const char *skip_ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    p++;
  return p;
}

static const char *skip_value(const char *p, const char *e) {
  if (p >= e)
    return NULL;
  if (*p == '"') {
    for (p++; p < e; p++) {
      if (*p == '\\')
        p++;
      else if (*p == '"')
        return p + 1;
    }
    return NULL;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < e) {
      if (*p == '"') {
        p = skip_value(p, e);
        if (p == NULL)
          return NULL;
        continue;
      }
      if (*p == '{' || *p == '[')
        depth++;
      else if (*p == '}' || *p == ']') {
        if (--depth == 0)
          return p + 1;
      }
      p++;
    }
    return NULL;
  }
  while (p < e && !strchr(",}] \t\r\n", *p))
    p++;
  return p;
}

/* Members of an object: *it at '{' first; 1 and the next key (with its
 * quotes) and value, 0 at the end, -1 when malformed. */
static int next_member(const char **it, const char *e, span_t *k, span_t *v) {
  const char *p = skip_ws(*it, e);
  if (p >= e)
    return -1;
  if (*p == '{' || *p == ',')
    p = skip_ws(p + 1, e);
  if (p < e && *p == '}')
    return 0;
  const char *ke = skip_value(p, e);
  if (ke == NULL || *p != '"')
    return -1;
  *k = (span_t){p, (size_t)(ke - p)};
  p = skip_ws(ke, e);
  if (p >= e || *p != ':')
    return -1;
  p = skip_ws(p + 1, e);
  const char *ve = skip_value(p, e);
  if (ve == NULL || ve == p)
    return -1;
  *v = (span_t){p, (size_t)(ve - p)};
  *it = ve;
  return 1;
}

static int span_is(span_t s, const char *quoted) {
  return s.n == strlen(quoted) && memcmp(s.p, quoted, s.n) == 0;
}

/* A value as text: a string decoded, anything else as the line has it;
 * NULL for null. Freed by the caller. */
static char *value_text(span_t v, size_t *len) {
  if (v.n == 4 && memcmp(v.p, "null", 4) == 0)
    return NULL;
  if (v.p[0] != '"' || memchr(v.p, '\\', v.n) == NULL) {
    size_t off = v.p[0] == '"';
    *len = v.n - 2 * off;
    return strndup_(v.p + off, *len);
  }
  json_t *j = json_loadb(v.p, v.n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (j == NULL || !json_is_string(j)) {
    json_decref(j);
    return NULL;
  }
  *len = json_string_length(j);
  char *s = hd_malloc(*len + 1);
  memcpy(s, json_string_value(j), *len);
  s[*len] = '\0';
  json_decref(j);
  return s;
}

typedef struct {
  span_t db, table, op, key, old_key, after;
} line_t;

static int parse_line(const char *p, size_t n, line_t *l) {
  memset(l, 0, sizeof *l);
  const char *it = p, *e = p + n;
  span_t k, v, src = {0};
  int r;
  while ((r = next_member(&it, e, &k, &v)) == 1) {
    if (span_is(k, "\"source\""))
      src = v;
    else if (span_is(k, "\"op\""))
      l->op = v;
    else if (span_is(k, "\"key\""))
      l->key = v;
    else if (span_is(k, "\"old_key\""))
      l->old_key = v;
    else if (span_is(k, "\"after\""))
      l->after = v;
  }
  if (r < 0 || src.p == NULL || src.p[0] != '{' || l->op.n != 3)
    return -1;
  it = src.p;
  e = src.p + src.n;
  while ((r = next_member(&it, e, &k, &v)) == 1) {
    if (span_is(k, "\"db\""))
      l->db = v;
    else if (span_is(k, "\"table\""))
      l->table = v;
  }
  return r < 0 || l->db.p == NULL || l->table.p == NULL ? -1 : 0;
}

/* A growing string. */
typedef struct {
  char *p;
  size_t n, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = hd_realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

/* The template with {db}, {table} and (when pk is non-NULL) {pk}. */
static int expand(const char *tmpl, span_t db, span_t table, const span_t *pk,
                  buf_t *out) {
  out->n = 0;
  buf_add(out, "", 0);
  char *dbs = NULL, *ts = NULL;
  size_t dl = 0, tl = 0;
  int rc = 0;
  dbs = value_text(db, &dl);
  ts = value_text(table, &tl);
  if (dbs == NULL || ts == NULL) {
    rc = -1;
    goto out;
  }
  for (const char *t = tmpl; *t;) {
    if (strncmp(t, "{db}", 4) == 0) {
      buf_add(out, dbs, dl);
      t += 4;
    } else if (strncmp(t, "{table}", 7) == 0) {
      buf_add(out, ts, tl);
      t += 7;
    } else if (pk != NULL && strncmp(t, "{pk}", 4) == 0) {
      const char *it = pk->p, *e = pk->p + pk->n;
      span_t k, v;
      int r, first = 1;
      if (pk->p[0] != '{') {
        rc = -1; /* null: no primary key */
        goto out;
      }
      while ((r = next_member(&it, e, &k, &v)) == 1) {
        size_t vl = 0;
        char *s = value_text(v, &vl);
        if (s == NULL) {
          rc = -1;
          goto out;
        }
        if (!first)
          buf_add(out, ":", 1);
        first = 0;
        for (size_t i = 0; i < vl; i++) {
          if (s[i] == ':' || s[i] == '\\')
            buf_add(out, "\\", 1);
          buf_add(out, s + i, 1);
        }
        free(s);
      }
      if (r < 0 || first) {
        rc = -1;
        goto out;
      }
      t += 4;
    } else {
      buf_add(out, t, 1);
      t++;
    }
  }
out:
  free(dbs);
  free(ts);
  return rc;
}

/* ------------------------------------------------------------ writes */

typedef struct {
  const char **v;
  size_t *len;
  char **owned; /* freed after the append */
  size_t n, cap;
} argv_t;

static void arg_add(argv_t *a, const char *s, size_t len, int own) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 32;
    a->v = hd_realloc(a->v, a->cap * sizeof *a->v);
    a->len = hd_realloc(a->len, a->cap * sizeof *a->len);
    a->owned = hd_realloc(a->owned, a->cap * sizeof *a->owned);
  }
  a->v[a->n] = s;
  a->len[a->n] = len;
  a->owned[a->n] = own ? (char *)s : NULL;
  a->n++;
}

static void args_reset(argv_t *a) {
  for (size_t i = 0; i < a->n; i++)
    free(a->owned[i]);
  a->n = 0;
}

static void args_free(argv_t *a) {
  args_reset(a);
  free(a->v);
  free(a->len);
  free(a->owned);
}

/* Queue one EVALSHA (its args from "EVALSHA" on in a), remembering key
 * and SCN for the reply's message; drain when enough are pending. */
static int queue_cmd(redis_part_t *rp, argv_t *a, const char *key, uint64_t scn,
                     char *err, size_t errlen) {
  redis_sink_t *rs = (redis_sink_t *)rp->base.sink;
  if (redisAppendCommandArgv(rp->c, (int)a->n, a->v, a->len) != REDIS_OK)
    return hd_errorf(err, errlen, HD_ESINK_REMOTE,
                     "redis: partition %" PRIu32 ": writing %s (scn %" PRIu64
                     ") to %s: %s",
                     rp->base.partition, key, scn, rs->shown, rp->c->errstr);
  if (rp->npend == rp->cappend) {
    rp->cappend = rp->cappend ? rp->cappend * 2 : 64;
    rp->pend = hd_realloc(rp->pend, rp->cappend * sizeof *rp->pend);
  }
  rp->pend[rp->npend++] = (pending_t){hd_strdup(key), scn};
  return rp->npend >= DRAIN_AT ? drain(rp, err, errlen) : 0;
}

static void script_head(redis_part_t *rp, argv_t *a, buf_t *key, buf_t *poskey,
                        const char *pos, const char *op) {
  args_reset(a);
  arg_add(a, "EVALSHA", 7, 0);
  arg_add(a, rp->sha, strlen(rp->sha), 0);
  arg_add(a, "2", 1, 0);
  arg_add(a, key->p, key->n, 0);
  poskey->n = 0;
  buf_add(poskey, POS_PREFIX, strlen(POS_PREFIX));
  buf_add(poskey, key->p, key->n);
  arg_add(a, poskey->p, poskey->n, 0);
  arg_add(a, pos, strlen(pos), 0);
  arg_add(a, op, 1, 0);
}

/* A key's write (op D, S, H, M) under the guard. */
static int key_write(redis_part_t *rp, const sink_window_t *w, const line_t *l,
                     const span_t *pk, char opc, const char *pos, argv_t *a,
                     buf_t *key, buf_t *poskey, char *err, size_t errlen) {
  redis_sink_t *rs = (redis_sink_t *)rp->base.sink;
  if (expand(rs->key_tmpl, l->db, l->table, pk, key) < 0)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "redis: partition %" PRIu32 ": scn %" PRIu64
                     ": %.*s.%.*s: no primary key to make sink.key of",
                     rp->base.partition, w->scn, (int)l->db.n, l->db.p,
                     (int)l->table.n, l->table.p);
  char op[2] = {opc, 0}, ttl[32];
  snprintf(ttl, sizeof ttl, "%" PRIu64, rs->ttl_ms);
  script_head(rp, a, key, poskey, pos, op);
  arg_add(a, hd_strdup(ttl), strlen(ttl), 1);
  if (opc == 'S') {
    if (l->after.p == NULL || l->after.p[0] != '{')
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "redis: partition %" PRIu32 ": scn %" PRIu64
                       ": %s: no after image",
                       rp->base.partition, w->scn, key->p);
    arg_add(a, l->after.p, l->after.n, 0);
  } else if (opc == 'H' || opc == 'M') {
    if (l->after.p == NULL || l->after.p[0] != '{')
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "redis: partition %" PRIu32 ": scn %" PRIu64
                       ": %s: no after image",
                       rp->base.partition, w->scn, key->p);
    size_t at_n = a->n;
    arg_add(a, NULL, 0, 0); /* n, set below */
    argv_t nulls = {0};
    const char *it = l->after.p, *e = l->after.p + l->after.n;
    span_t k, v;
    int r;
    size_t nset = 0;
    while ((r = next_member(&it, e, &k, &v)) == 1) {
      size_t kl = 0, vl = 0;
      char *ks = value_text(k, &kl);
      char *vs = value_text(v, &vl);
      if (ks == NULL) {
        free(vs);
        r = -1;
        break;
      }
      if (vs == NULL) {
        arg_add(&nulls, ks, kl, 1);
        continue;
      }
      arg_add(a, ks, kl, 1);
      arg_add(a, vs, vl, 1);
      nset++;
    }
    char nb[32];
    snprintf(nb, sizeof nb, "%zu", nset);
    a->v[at_n] = a->owned[at_n] = hd_strdup(nb);
    a->len[at_n] = strlen(nb);
    for (size_t i = 0; i < nulls.n; i++) {
      arg_add(a, nulls.v[i], nulls.len[i], 1);
      nulls.owned[i] = NULL; /* now a's */
    }
    args_free(&nulls);
    if (r < 0)
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "redis: partition %" PRIu32 ": scn %" PRIu64
                       ": %s: a malformed after image",
                       rp->base.partition, w->scn, key->p);
  }
  return queue_cmd(rp, a, key->p, w->scn, err, errlen);
}

static int stream_write(redis_part_t *rp, const sink_window_t *w,
                        const line_t *l, const char *line, size_t len,
                        const char *pos, argv_t *a, buf_t *key, buf_t *poskey,
                        char *err, size_t errlen) {
  redis_sink_t *rs = (redis_sink_t *)rp->base.sink;
  if (expand(rs->stream_tmpl, l->db, l->table, NULL, key) < 0)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "redis: partition %" PRIu32 ": scn %" PRIu64
                     ": bad source.db/table for sink.stream",
                     rp->base.partition, w->scn);
  char part[16], maxlen[32], scn[32];
  snprintf(part, sizeof part, "%" PRIu32, rp->base.partition);
  snprintf(maxlen, sizeof maxlen, "%" PRId64, rs->maxlen);
  snprintf(scn, sizeof scn, "%" PRIu64, w->scn);
  script_head(rp, a, key, poskey, pos, "X");
  arg_add(a, hd_strdup(part), strlen(part), 1);
  arg_add(a, hd_strdup(maxlen), strlen(maxlen), 1);
  arg_add(a, "scn", 3, 0);
  arg_add(a, hd_strdup(scn), strlen(scn), 1);
  arg_add(a, "partition", 9, 0);
  arg_add(a, hd_strdup(part), strlen(part), 1);
  arg_add(a, "change", 6, 0);
  arg_add(a, line, len, 0);
  return queue_cmd(rp, a, key->p, w->scn, err, errlen);
}

static int write_line(redis_part_t *rp, const sink_window_t *w,
                      const char *line, size_t len, unsigned own, argv_t *a,
                      buf_t *key, buf_t *poskey, char *err, size_t errlen) {
  redis_sink_t *rs = (redis_sink_t *)rp->base.sink;
  line_t l;
  if (parse_line(line, len, &l) < 0)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "redis: partition %" PRIu32 ": scn %" PRIu64
                     ": a change line without source.db/table or op: %.80s",
                     rp->base.partition, w->scn, line);
  char opc = l.op.p[1];
  char pos[64];
  snprintf(pos, sizeof pos, "%020" PRIu64 "%010" PRIu64, w->scn,
           opc == 'r' ? SNAP_INDEX : rp->index);
  rp->index++;
  if (rs->mode == HD_REDIS_STREAM)
    return stream_write(rp, w, &l, line, len, pos, a, key, poskey, err, errlen);
  int hash = rs->value == HD_REDIS_HASH;
  switch (opc) {
  case 'c':
  case 'r':
    return key_write(rp, w, &l, &l.key, hash ? 'H' : 'S', pos, a, key, poskey,
                     err, errlen);
  case 'u':
    if (l.old_key.p != NULL) {
      /* A key move: the old key's partition deletes it, the new key's
       * writes the new one (docs/change-format.md, Primary-key moves). */
      if (own & 2) {
        int rc = key_write(rp, w, &l, &l.old_key, 'D', pos, a, key, poskey, err,
                           errlen);
        if (rc < 0)
          return rc;
      }
      if (!(own & 1))
        return 0;
      return key_write(rp, w, &l, &l.key, hash ? 'H' : 'S', pos, a, key, poskey,
                       err, errlen);
    }
    return key_write(rp, w, &l, &l.key, hash ? 'M' : 'S', pos, a, key, poskey,
                     err, errlen);
  case 'd':
    return key_write(rp, w, &l, &l.key, 'D', pos, a, key, poskey, err, errlen);
  default:
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "redis: partition %" PRIu32 ": scn %" PRIu64
                     ": unknown op '%c'",
                     rp->base.partition, w->scn, opc);
  }
}

/* Queue the ownership of the chunk's changes (see redis_part_t.own). */
static int queue_owned(redis_part_t *rp, const sink_window_t *w, char *err,
                       size_t errlen) {
  if (w->hw == NULL)
    return 0;
  size_t n = herald_window_changes(w->hw);
  if (rp->ownhead > 0 && rp->ownhead == rp->nown)
    rp->ownhead = rp->nown = 0;
  if (rp->nown + n > rp->capown) {
    rp->capown = (rp->nown + n) * 2;
    rp->own = hd_realloc(rp->own, rp->capown);
  }
  for (size_t i = 0; i < n; i++) {
    const herald_change_t *ch = herald_window_change(w->hw, i);
    int k = 1, old = 1; /* without a client (unit tests): both */
    if (w->hc != NULL) {
      k = herald_change_owned(w->hc, ch, HERALD_IMAGE_KEY);
      old = herald_change_owned(w->hc, ch, HERALD_IMAGE_OLD_KEY);
    }
    if (k < 0 || old < 0)
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "redis: partition %" PRIu32 ": scn %" PRIu64
                       ": change %zu: whose key it is is unknown (%d)",
                       rp->base.partition, w->scn, i, k < 0 ? k : old);
    rp->own[rp->nown++] = (unsigned char)((k == 1) | (old == 1) << 1);
  }
  return 0;
}

static int redis_write(sink_part_t *part, const sink_window_t *w, char *err,
                       size_t errlen) {
  redis_part_t *rp = (redis_part_t *)part;
  if (w->chunk == 0 || w->scn != rp->scn) {
    rp->scn = w->scn;
    rp->index = 0;
    rp->ownhead = rp->nown = 0;
  }
  int rc = queue_owned(rp, w, err, errlen);
  if (rc < 0)
    return rc;
  argv_t a = {0};
  buf_t key = {0}, poskey = {0};
  const char *p = w->json, *end = w->json + w->json_len;
  while (rc == 0 && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0) {
      unsigned own = 3; /* without typed access (unit tests): both */
      if (w->hw != NULL) {
        if (rp->ownhead >= rp->nown) {
          rc = hd_errorf(err, errlen, HD_ESINK_VALUE,
                         "redis: partition %" PRIu32 ": scn %" PRIu64
                         ": more change lines than changes",
                         part->partition, w->scn);
          break;
        }
        own = rp->own[rp->ownhead++];
      }
      rc = write_line(rp, w, p, n, own, &a, &key, &poskey, err, errlen);
    }
    p += n + 1;
  }
  args_free(&a);
  free(key.p);
  free(poskey.p);
  return rc;
}

static int redis_flush(sink_part_t *part, char *err, size_t errlen) {
  return drain((redis_part_t *)part, err, errlen);
}

const sink_ops_t sink__redis_ops = {
    .name = "redis",
    .create = redis_create,
    .open_partition = redis_open,
    .write = redis_write,
    .flush = redis_flush,
    .idle = redis_flush,
    .close_partition = redis_close,
    .destroy = redis_destroy,
};
