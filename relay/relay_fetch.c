/*
 * relay_fetch.c - replication connection, decoding, storing.
 *
 * The MySQL client library carries the connection only: the dump command
 * is sent with the connection's own command method and the raw packets are
 * read with mysql_net_read_packet(), because the library's event parser
 * rejects events herald must read (BINLOG-AND-ZK-NOTES.md). Events go to
 * herald's decoder (binlog/).
 */
#define _GNU_SOURCE /* memmem */
#include "relay_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hb_event.h"
#include "hd_log.h"
#include "hd_time.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "herald.pb-c.h"

#define COM_BINLOG_DUMP_CMD 0x12
#define ER_MASTER_FATAL_READING_BINLOG 1236
#define ER_SPECIFIC_ACCESS_DENIED 1227
#define ER_ACCESS_DENIED 1045
#define CR_SSL_CONNECTION_ERROR 2026 /* errmsg.h: the TLS handshake failed */
/* MariaDB's ER_SLAVE_SAME_ID: another dump with our server_id replaced
 * ours. MySQL says so with 1236 and "A slave (replica) with the same
 * server_uuid/server_id as this slave (replica) has connected". */
#define ER_SLAVE_SAME_ID 4052

/* The reconnect backoff starts over (at BACKOFF_MIN_MS) only after a dump
 * that streamed this long: a source that accepts connections and drops
 * them soon after, or another replica taking our server_id, is then
 * retried at source.reconnect_max, not every 100 ms. */
#define BACKOFF_MIN_MS 100
#define HEALTHY_MS 10000
/* This many dumps in a row that ended within HEALTHY_MS of starting get a
 * hint that the server_id may be taken. */
#define SHORT_DUMPS_HINT 3

/* How a step of a session ended: S_OK goes on; the others end it. */
enum { S_OK = 0, S_RETRY = 1, S_STOP = 2, S_FATAL = 3 };

struct relay_fetch {
  relay_fetch_opts_t o;
  pthread_t thr;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Atomic int stop;
  MYSQL *conn; /* the dump connection, while one is open (under mu) */
  MYSQL *meta; /* information_schema lookups, opened on demand */
  hb_decoder_t *dec;
  relay_wb_t *wb;
  char file[512]; /* binlog file of the next event */
  uint64_t pos;   /* offset of the next event in it */
  int fatal;
  char errmsg[2048];
  uint64_t session_events;
  uint64_t stream_ms; /* how long the last session's dump streamed; 0 when
                         it never started */
  int same_id;        /* the last session was ended by another replica with
                         our server_id */
  int privs_checked;  /* the source user's privileges were looked at */
  /* The last schema lookup's result and ENUM/SET labels: they must stay
   * valid until the decoder has copied them, so they are freed at the
   * next lookup. */
  MYSQL_RES *schema_res;
  char **schema_keep;
  size_t schema_nkeep;
  uint64_t last_retain_ms;
  size_t last_segments;
  int crc;         /* the stream's events end in a CRC32 */
  int start_saved; /* start-position file written, no window stored yet */
  /* The chunks of the open transaction when it outgrew relay.chunk_bytes:
   * their encoded bodies wait in DATA_DIR/capture.spool until its commit,
   * then go to the store with the commit's SCN (see on_chunk). */
  int spool_fd;
  uint64_t spool_len;    /* bytes written */
  uint32_t spool_chunks; /* chunks in it */
  uint64_t spool_rows;
  uint8_t *cbuf; /* one chunk being stored */
  size_t ccap;
#ifdef HD_TEST_HOOKS
  struct {
    int armed, fired, exit, wait; /* action: exit (SIGKILL) or drop */
    long events;                  /* trigger: after N events of a session */
    long chunks;                  /*   or N chunks of a window stored */
    char query[256];              /*   or after a QUERY holding this text */
    char wait_path[512];
  } fault;
#endif
};

/* Retention runs on this thread because it must not overlap appends. */
#define RETAIN_EVERY_MS 10000

static void maybe_retain(relay_fetch_t *f) {
  uint64_t now = hd_now_ms();
  /* Every few seconds for retention by age, and at once when a segment
   * was added, for retention by size. */
  size_t segs = relay_store_segments(f->o.store);
  if (now - f->last_retain_ms < RETAIN_EVERY_MS && segs == f->last_segments)
    return;
  f->last_retain_ms = now;
  int n = relay_store_retain(f->o.store, now);
  if (n < 0) {
    RM_ERR(f->o.m, STORE);
    hd_log(HD_LL_ERROR, "fetch", "retention failed", "error=\"%s\"",
           relay_store_errmsg(f->o.store));
  } else if (n > 0) {
    hd_log(HD_LL_INFO, "fetch", "retention deleted segments", "count=%d", n);
  }
  f->last_segments = relay_store_segments(f->o.store);
  RM_SET(f->o.m, disk_bytes, relay_store_bytes(f->o.store));
  RM_SET(f->o.m, oldest_scn, relay_store_first_scn(f->o.store));
}

static void schema_release(relay_fetch_t *f) {
  for (size_t i = 0; i < f->schema_nkeep; i++)
    free(f->schema_keep[i]);
  free(f->schema_keep);
  f->schema_keep = NULL;
  f->schema_nkeep = 0;
  if (f->schema_res)
    mysql_free_result(f->schema_res);
  f->schema_res = NULL;
}

static int fatal(relay_fetch_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fatal(relay_fetch_t *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
  va_end(ap);
  f->fatal = 1;
  return HB_ESTOPPED;
}

/* ------------------------------------------------------ start position */

/* A start resolved from the source (source.start: latest or earliest)
 * names a position that moves: resolved again after a reconnect or a
 * restart it would skip what committed in between. So the first
 * resolution is kept in the data dir until the first window is stored;
 * from then on the store's newest window says where to resume. */
#define START_FILE "start-position"

static void start_path(const relay_fetch_t *f, char *out, size_t n) {
  snprintf(out, n, "%s/" START_FILE, f->o.conf->relay.data_dir);
}

/* 1 and f->file/pos set when a kept start position was read, 0 when there
 * is none, -1 when it is unreadable (errmsg set). */
static int start_load(relay_fetch_t *f) {
  char path[700], file[sizeof(f->file)];
  start_path(f, path, sizeof(path));
  FILE *fp = fopen(path, "r");
  if (fp == NULL) {
    if (errno == ENOENT)
      return 0;
    snprintf(f->errmsg, sizeof(f->errmsg), "%s: %s", path, strerror(errno));
    return -1;
  }
  unsigned long long pos = 0;
  int n = fscanf(fp, "%511s %llu", file, &pos);
  fclose(fp);
  if (n != 2 || pos < 4) {
    snprintf(f->errmsg, sizeof(f->errmsg),
             "%s: not a start position (want \"FILE POS\"); remove it to "
             "resolve source.start again",
             path);
    return -1;
  }
  snprintf(f->file, sizeof(f->file), "%s", file);
  f->pos = pos;
  f->start_saved = 1;
  return 1;
}

/* Writes line as DATA_DIR/name durably (temp file, fsync, rename, fsync
 * of the directory); 0, or -1 with errmsg saying which file (what) could
 * not be kept. */
static int keep_file(relay_fetch_t *f, const char *name, const char *what,
                     const char *line) {
  char path[700], tmp[720];
  snprintf(path, sizeof(path), "%s/%s", f->o.conf->relay.data_dir, name);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    goto fail;
  ssize_t n = (ssize_t)strlen(line);
  if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    goto fail;
  }
  if (close(fd) != 0 || rename(tmp, path) != 0)
    goto fail;
  int dfd = open(f->o.conf->relay.data_dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
fail:
  snprintf(f->errmsg, sizeof(f->errmsg), "cannot keep the %s: %s: %s", what,
           tmp, strerror(errno));
  return -1;
}

/* Writes f->file/pos durably; 0 or -1 with errmsg set. */
static int start_save(relay_fetch_t *f) {
  char line[600];
  snprintf(line, sizeof(line), "%s %" PRIu64 "\n", f->file, f->pos);
  if (keep_file(f, START_FILE, "start position", line) != 0)
    return -1;
  f->start_saved = 1;
  return 0;
}

static void start_forget(relay_fetch_t *f) {
  char path[700];
  start_path(f, path, sizeof(path));
  if (unlink(path) != 0 && errno != ENOENT)
    hd_log(HD_LL_WARN, "fetch", "cannot remove the start position",
           "path=%s error=\"%s\"", path, strerror(errno));
  f->start_saved = 0;
}

/* ------------------------------------------------------------ decoding */

/* A window is in the store: count it and hand it (or its ring marker)
 * over. */
static void publish(relay_fetch_t *f, relay_win_t *rw, uint64_t nrows) {
  if (f->start_saved)
    start_forget(f);
  RM_ADD(f->o.m, windows, 1);
  RM_ADD(f->o.m, rows, nrows);
  RM_SET(f->o.m, newest_scn, rw->scn);
  RM_SET(f->o.m, newest_ts_ms, rw->ts_ms);
  RM_SET(f->o.m, disk_bytes, relay_store_bytes(f->o.store));
  if (RM_GET(f->o.m, oldest_scn) == 0)
    RM_SET(f->o.m, oldest_scn, relay_store_first_scn(f->o.store));
  f->o.on_window(f->o.ud, rw);
  maybe_retain(f);
}

/* Store a built window, then hand it over: a consumer never sees what a
 * crash could take back. */
static int store_and_publish(relay_fetch_t *f, relay_win_t *rw,
                             uint64_t nrows) {
  int rc = relay_store_append(f->o.store, rw->scn, rw->ts_ms, rw->buf, rw->len);
  if (rc < 0) {
    uint64_t scn = rw->scn;
    RM_ERR(f->o.m, STORE);
    relay_win_release(rw);
    /* SCN_ORDER included: the dump resumes exactly after the newest
     * stored window, so a window at or below it means positions went
     * wrong; dropping it silently could lose changes. */
    return fatal(f, "log store append failed at scn %" PRIu64 ": %s", scn,
                 relay_store_errmsg(f->o.store));
  }
  publish(f, rw, nrows);
  return 0;
}

/* ------------------------------------------------------------- chunks */

/* A transaction larger than relay.chunk_bytes arrives in chunks (the
 * decoder forgets each one's rows once handed over). Their SCN is the
 * commit's, unknown until the commit: so each chunk's encoded rows go to
 * a spool file, and at the commit every chunk gets its header and is
 * appended to the log store (published with the last); the ring gets a
 * marker, and consumers read the window from the store. Memory stays at
 * about one chunk whatever the transaction's size. */

static void spool_reset(relay_fetch_t *f) {
  if (f->spool_chunks == 0 && f->spool_len == 0)
    return;
  if (ftruncate(f->spool_fd, 0) != 0)
    hd_log(HD_LL_WARN, "fetch", "cannot truncate the spool", "error=\"%s\"",
           strerror(errno));
  f->spool_len = 0;
  f->spool_chunks = 0;
  f->spool_rows = 0;
}

static int spool_open(relay_fetch_t *f) {
  char path[700];
  snprintf(path, sizeof(path), "%s/capture.spool", f->o.conf->relay.data_dir);
  /* What a previous process left is a transaction that never reached the
   * store: it is fetched again from the binlog. */
  f->spool_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (f->spool_fd < 0) {
    snprintf(f->errmsg, sizeof(f->errmsg), "%s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

static void put32le(uint8_t *b, uint32_t v) {
  for (int i = 0; i < 4; i++)
    b[i] = (uint8_t)(v >> (8 * i));
}

/* A spooled chunk: its body's length, its row count, the body. */
static int spool_write(relay_fetch_t *f, const uint8_t *p, size_t n,
                       uint32_t rows) {
  uint8_t hdr[8];
  put32le(hdr, (uint32_t)n);
  put32le(hdr + 4, rows);
  if (pwrite(f->spool_fd, hdr, 8, (off_t)f->spool_len) != 8 ||
      (n && pwrite(f->spool_fd, p, n, (off_t)f->spool_len + 8) != (ssize_t)n))
    return -1;
  f->spool_len += 8 + n;
  return 0;
}

/* Encodes a chunk's rows and statements (the body: the header comes at
 * the commit) and spools them. */
static int spool_chunk(relay_fetch_t *f, const hb_window_t *w) {
  if (w->chunk != f->spool_chunks) {
    /* chunk 0 of a new transaction: the spooled one was dropped by the
     * decoder (rolled back, or cut off by a crash of the source) */
    if (f->spool_chunks)
      hd_log(HD_LL_INFO, "fetch", "spooled chunks discarded",
             "chunks=%u rows=%" PRIu64, f->spool_chunks, f->spool_rows);
    spool_reset(f);
    if (w->chunk != 0)
      return fatal(f, "chunk %u of a transaction without chunk %u", w->chunk,
                   f->spool_chunks);
  }
  relay_win_t *rw = relay_win_build(f->wb, w, w->ddl, w->nddl);
  if (relay_wb_failed(f->wb)) {
    relay_win_release(rw);
    RM_ERR(f->o.m, STORE);
    return fatal(f,
                 "cannot keep a table schema in %s/schemas (see the "
                 "log); the window is not stored",
                 f->o.conf->relay.data_dir);
  }
  int rc = spool_write(f, rw->buf + rw->hdr_len, rw->len - rw->hdr_len,
                       (uint32_t)w->nrows);
  size_t len = rw->len;
  relay_win_release(rw);
  if (rc != 0) {
    RM_ERR(f->o.m, STORE);
    return fatal(f, "cannot spool a chunk of %zu bytes: %s", len,
                 strerror(errno));
  }
  f->spool_chunks++;
  f->spool_rows += w->nrows;
  return 0;
}

static int on_chunk(void *ud, const hb_window_t *w) {
  relay_fetch_t *f = ud;
  int rc = spool_chunk(f, w);
  if (rc == 0 && f->spool_chunks == 1)
    hd_log(HD_LL_INFO, "fetch", "large transaction: captured in chunks",
           "file=%s begin=%" PRIu64 " chunk_bytes=%" PRIu64, w->file,
           w->begin_pos, f->o.conf->relay.chunk_bytes);
  return rc;
}

/* The commit of a transaction in chunks: every chunk to the store with
 * its header, the last one publishing the window, then a ring marker. */
static int store_chunks(relay_fetch_t *f, const hb_window_t *w) {
  int rc = spool_chunk(f, w);
  if (rc != 0)
    return rc;
  uint64_t off = 0, nrows = f->spool_rows;
  uint8_t *body = NULL;
  size_t bcap = 0;
  for (uint32_t i = 0; i < f->spool_chunks; i++) {
    uint8_t lb[8];
    if (pread(f->spool_fd, lb, 8, (off_t)off) != 8)
      goto io;
    size_t n = hb_le32(lb);
    uint32_t crows = hb_le32(lb + 4);
    if (bcap < n) {
      free(body);
      body = hd_malloc(n);
      bcap = n;
    }
    if (n && pread(f->spool_fd, body, n, (off_t)off + 8) != (ssize_t)n)
      goto io;
    off += 8 + n;
    int more = i + 1 < f->spool_chunks;
    size_t hl = relay_win_chunk_header(w, crows, i, more, &f->cbuf, &f->ccap);
    if (f->ccap < hl + n) {
      f->cbuf = hd_realloc(f->cbuf, hl + n);
      f->ccap = hl + n;
    }
    if (n)
      memcpy(f->cbuf + hl, body, n);
    rc = relay_store_append_chunk(f->o.store, w->scn, w->ts_ms, f->cbuf, hl + n,
                                  more);
#ifdef HD_TEST_HOOKS
    if (rc == 0 && more && f->fault.armed && !f->fault.fired &&
        f->fault.chunks == (long)i + 1) {
      f->fault.fired = 1;
      hd_log(HD_LL_WARN, "fetch", "test fault fired",
             "action=exit at=chunk:%u scn=%" PRIu64, i + 1, w->scn);
      raise(SIGKILL);
    }
#endif
    if (rc < 0) {
      free(body);
      RM_ERR(f->o.m, STORE);
      return fatal(
          f, "log store append failed at scn %" PRIu64 " (chunk %u of %u): %s",
          w->scn, i, f->spool_chunks, relay_store_errmsg(f->o.store));
    }
  }
  free(body);
  hd_log(HD_LL_INFO, "fetch", "large transaction stored",
         "scn=%" PRIu64 " chunks=%u rows=%" PRIu64 " bytes=%" PRIu64, w->scn,
         f->spool_chunks, nrows, f->spool_len);
  spool_reset(f);
  publish(f, relay_win_marker(w->scn, w->ts_ms), nrows);
  return 0;
io:
  free(body);
  RM_ERR(f->o.m, STORE);
  return fatal(f, "cannot read the spool back: %s",
               errno ? strerror(errno) : "short read");
}

/* A transaction from the decoder. */
static int on_window(void *ud, const hb_window_t *w) {
  relay_fetch_t *f = ud;
  if (w->chunk > 0)
    return store_chunks(f, w);
  if (f->spool_chunks)
    spool_reset(f); /* a dropped transaction's chunks */
  relay_win_t *rw = relay_win_build(f->wb, w, w->ddl, w->nddl);
  if (relay_wb_failed(f->wb)) {
    relay_win_release(rw);
    RM_ERR(f->o.m, STORE);
    return fatal(f,
                 "cannot keep a table schema in %s/schemas (see the "
                 "log); the window at scn %" PRIu64 " is not stored",
                 f->o.conf->relay.data_dir, w->scn);
  }
  return store_and_publish(f, rw, w->nrows);
}

/* A statement outside a transaction: a window of its own, at the end of
 * its query event. */
static int on_ddl(void *ud, const hb_ddl_t *d) {
  relay_fetch_t *f = ud;
  hd_log(HD_LL_INFO, "fetch", "schema change", "scn=%" PRIu64 " db=%s", d->scn,
         d->db);
  return store_and_publish(f, relay_win_build_ddl(f->wb, d), 0);
}

static int on_incident(void *ud, const hb_incident_t *inc) {
  relay_fetch_t *f = ud;
  RM_ERR(f->o.m, SOURCE);
  return fatal(f,
               "%s:%" PRIu64 ": INCIDENT event (code %u): the source may "
               "have lost changes here: %s",
               inc->file, inc->pos, inc->code, inc->message);
}

static int table_filter(void *ud, const char *db, const char *table) {
  relay_fetch_t *f = ud;
  const hd_strlist_t *l = &f->o.conf->source.tables;
  char name[512];
  snprintf(name, sizeof(name), "%s.%s", db, table);
  for (size_t i = 0; i < l->n; i++)
    if (hd_glob_match(l->v[i], name))
      return 1;
  return 0;
}

/* --------------------------------------------------------- schema lookup */

static MYSQL *open_conn(relay_fetch_t *f, const char *what, char *err,
                        size_t errlen);

/* Escapes s for a quoted SQL literal into out (size n). */
static void sql_quote(MYSQL *m, char *out, size_t n, const char *s) {
  size_t l = strlen(s);
  if (2 * l + 1 > n) {
    out[0] = '\0';
    return;
  }
  mysql_real_escape_string(m, out, s, (unsigned long)l);
}

uint32_t relay_parse_labels(const char *type, char ***out) {
  const char *p = strchr(type, '(');
  uint32_t n = 0, cap = 0;
  char **v = NULL;
  if (p == NULL)
    return 0;
  p++;
  while (*p == '\'') {
    p++;
    size_t cap_s = strlen(p) + 1, k = 0;
    char *s = hd_malloc(cap_s);
    while (*p) {
      if (*p == '\'' && p[1] == '\'') {
        s[k++] = '\'';
        p += 2;
      } else if (*p == '\'') {
        p++;
        break;
      } else if (*p == '\\' && p[1]) {
        s[k++] = p[1];
        p += 2;
      } else {
        s[k++] = *p++;
      }
    }
    s[k] = '\0';
    if (n == cap) {
      cap = cap ? cap * 2 : 8;
      v = hd_realloc(v, cap * sizeof(char *));
    }
    v[n++] = s;
    if (*p == ',')
      p++;
  }
  *out = v;
  return n;
}

/* Column facts from information_schema, for table maps without full
 * metadata. The schema read now may be newer than the binlog position:
 * the decoder asks again after each DDL, and a column count that does
 * not match the table map is reported as unknown (positional names). */
static int schema_cb(void *ud, const char *db, const char *table,
                     uint32_t ncols, hb_schema_col_t *cols, uint32_t *pk,
                     uint32_t *npk) {
  relay_fetch_t *f = ud;
  char err[256];
  if (f->meta == NULL &&
      (f->meta = open_conn(f, "schema", err, sizeof(err))) == NULL) {
    hd_log(HD_LL_WARN, "fetch", "schema lookup failed", "db=%s table=%s %s", db,
           table, err);
    return 1;
  }
  char qdb[400], qt[400], sql[1400];
  sql_quote(f->meta, qdb, sizeof(qdb), db);
  sql_quote(f->meta, qt, sizeof(qt), table);
  snprintf(sql, sizeof(sql),
           "SELECT c.COLUMN_NAME, c.COLUMN_TYPE, c.COLUMN_KEY, "
           "COALESCE(co.ID, 0) FROM information_schema.COLUMNS c LEFT JOIN "
           "information_schema.COLLATIONS co ON co.COLLATION_NAME = "
           "c.COLLATION_NAME WHERE c.TABLE_SCHEMA='%s' AND c.TABLE_NAME='%s' "
           "ORDER BY c.ORDINAL_POSITION",
           qdb, qt);
  if (mysql_query(f->meta, sql) != 0) {
    hd_log(HD_LL_WARN, "fetch", "schema lookup failed", "db=%s table=%s %s", db,
           table, mysql_error(f->meta));
    mysql_close(f->meta);
    f->meta = NULL;
    return 1;
  }
  MYSQL_RES *res = mysql_store_result(f->meta);
  if (res == NULL || mysql_num_rows(res) != ncols) {
    if (res)
      mysql_free_result(res);
    return 1;
  }
  schema_release(f);
  f->schema_res = res;
  MYSQL_ROW row;
  uint32_t i = 0;
  *npk = 0;
  while ((row = mysql_fetch_row(res)) != NULL && i < ncols) {
    hb_schema_col_t *c = &cols[i];
    c->name = row[0];
    c->is_unsigned = strstr(row[1], "unsigned") != NULL;
    c->charset = atoi(row[3]);
    if (strncmp(row[1], "enum(", 5) == 0 || strncmp(row[1], "set(", 4) == 0) {
      char **labels = NULL;
      c->nlabels = relay_parse_labels(row[1], &labels);
      c->labels = (const char *const *)labels;
      f->schema_keep = hd_realloc(
          f->schema_keep, (f->schema_nkeep + c->nlabels + 1) * sizeof(char *));
      for (uint32_t k = 0; k < c->nlabels; k++)
        f->schema_keep[f->schema_nkeep++] = labels[k];
      f->schema_keep[f->schema_nkeep++] = (char *)labels;
    }
    if (strcmp(row[2], "PRI") == 0)
      pk[(*npk)++] = i;
    i++;
  }
  return 0;
}

/* ----------------------------------------------------- TLS, privileges */

void relay_source_tls_set(MYSQL *m, int tls, int verify, const char *ca,
                          const char *cert, const char *key) {
  if (!tls)
    return;
  /* Enforced: a server without TLS is an error, never a plain-text
   * session that would carry the password and every row. */
  my_bool on = 1, vfy = verify ? 1 : 0;
  mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
  mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &vfy);
  if (ca != NULL)
    mysql_optionsv(m, MYSQL_OPT_SSL_CA, ca);
  if (cert != NULL)
    mysql_optionsv(m, MYSQL_OPT_SSL_CERT, cert);
  if (key != NULL)
    mysql_optionsv(m, MYSQL_OPT_SSL_KEY, key);
}

int relay_source_tls_check(MYSQL *m, int tls, const char *what, char *err,
                           size_t errlen) {
  if (!tls)
    return 0;
  const char *cipher = mysql_get_ssl_cipher(m);
  if (cipher == NULL) {
    snprintf(err, errlen,
             "source.tls is on but the connection is not "
             "encrypted");
    return -1;
  }
  const char *ver = NULL;
  if (mariadb_get_infov(m, MARIADB_CONNECTION_TLS_VERSION, &ver) != 0)
    ver = NULL;
  hd_log(HD_LL_INFO, "fetch", "source connection encrypted",
         "conn=%s tls=%s cipher=%s", what, ver ? ver : "?", cipher);
  return 0;
}

/* What the relay needs of the source (docs/relay.md, the replication
 * user): the binlog dump, the binlog position (BINLOG MONITOR, MySQL's
 * REPLICATION CLIENT) and reads for schema lookups and snapshots. USAGE is
 * no privilege. */
static int priv_needed(const char *p) {
  static const char *const need[] = {"USAGE",
                                     "SELECT",
                                     "REPLICATION SLAVE",
                                     "REPLICATION REPLICA",
                                     "BINLOG MONITOR",
                                     "REPLICATION CLIENT",
                                     NULL};
  for (int i = 0; need[i]; i++)
    if (strcasecmp(p, need[i]) == 0)
      return 1;
  return 0;
}

static void add_extra(char *out, size_t n, const char *p, size_t len) {
  char tok[80];
  if (len == 0 || len >= sizeof(tok))
    return;
  memcpy(tok, p, len);
  tok[len] = '\0';
  /* Once each, whatever the number of lines that grant it. */
  size_t tl = strlen(tok);
  for (const char *q = out; (q = strstr(q, tok)) != NULL; q += tl)
    if ((q == out || q[-1] == ' ') && (q[tl] == ',' || q[tl] == '\0'))
      return;
  size_t used = strlen(out);
  snprintf(out + used, n - used, "%s%s", used ? ", " : "", tok);
}

void relay_grant_extras(const char *line, char *out, size_t n) {
  if (strncasecmp(line, "GRANT ", 6) != 0)
    return;
  const char *p = line + 6, *end = NULL;
  int depth = 0;
  /* The list ends at " ON " outside parentheses (column lists); a line
   * without it grants a role, whose privileges have lines of their own. */
  for (const char *q = p; *q; q++) {
    if (*q == '(')
      depth++;
    else if (*q == ')')
      depth--;
    else if (depth == 0 && strncasecmp(q, " ON ", 4) == 0) {
      end = q;
      break;
    }
  }
  if (end == NULL)
    return;
  while (p < end) {
    const char *q = p;
    depth = 0;
    while (q < end && (depth > 0 || *q != ',')) {
      depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
      q++;
    }
    const char *a = p, *b = q;
    while (a < b && *a == ' ')
      a++;
    for (const char *c = a; c < b; c++)
      if (*c == '(') {
        b = c; /* SELECT (col, ...): the privilege's name */
        break;
      }
    while (b > a && b[-1] == ' ')
      b--;
    char name[80];
    size_t len = (size_t)(b - a) < sizeof(name) ? (size_t)(b - a) : 0;
    memcpy(name, a, len);
    name[len] = '\0';
    if (len && !priv_needed(name))
      add_extra(out, n, name, len);
    p = q < end ? q + 1 : end;
  }
  if (strstr(end, " WITH GRANT OPTION") != NULL)
    add_extra(out, n, "GRANT OPTION", 12);
}

void relay_extra_privileges(MYSQL *m, char *out, size_t n) {
  out[0] = '\0';
  if (mysql_query(m, "SHOW GRANTS") != 0)
    return;
  MYSQL_RES *res = mysql_store_result(m);
  if (res == NULL)
    return;
  MYSQL_ROW row;
  while ((row = mysql_fetch_row(res)) != NULL)
    if (row[0] != NULL)
      relay_grant_extras(row[0], out, n);
  mysql_free_result(res);
}

/* Once per relay: a source user with more than the relay needs is a risk
 * the operator should know of (a leaked password could change or drop
 * data), not an error. */
static void check_privileges(relay_fetch_t *f, MYSQL *m) {
  if (f->privs_checked)
    return;
  f->privs_checked = 1;
  char extra[1024];
  relay_extra_privileges(m, extra, sizeof(extra));
  if (extra[0])
    hd_log(HD_LL_WARN, "fetch", "source user has more privileges than needed",
           "source=%s user=%s extra=\"%s\" needed=\"REPLICATION SLAVE, "
           "BINLOG MONITOR, SELECT\" (docs/relay.md)",
           f->o.conf->source.name, f->o.conf->source.user, extra);
}

/* ------------------------------------------------------------ protocol */

static MYSQL *open_conn(relay_fetch_t *f, const char *what, char *err,
                        size_t errlen) {
  const hd_relay_conf_t *c = f->o.conf;
  MYSQL *m = mysql_init(NULL);
  if (m == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  unsigned cto = (unsigned)((c->source.connect_timeout_ms + 999) / 1000);
  /* A silent source is noticed after three missed heartbeats. */
  unsigned rto = (unsigned)((3 * c->source.heartbeat_ms + 999) / 1000);
  if (rto < 2)
    rto = 2;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &cto);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rto);
  mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rto);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  relay_source_tls_set(m, c->source.tls, c->source.tls_verify,
                       c->source.ca_file, c->source.cert_file,
                       c->source.key_file);
  if (mysql_real_connect(m, c->source.host, c->source.user, f->o.password, NULL,
                         (unsigned)c->source.port, NULL, 0) == NULL) {
    /* A TLS failure says what to check: the CA, and the name the
     * certificate must carry. */
    snprintf(err, errlen, "source=%s %s:%" PRId64 "%s: %s (error %u)%s",
             c->source.name, c->source.host, c->source.port,
             c->source.tls ? (c->source.tls_verify ? " tls=verify" : " tls=on")
                           : "",
             mysql_error(m), mysql_errno(m),
             c->source.tls && mysql_errno(m) == CR_SSL_CONNECTION_ERROR
                 ? (c->source.tls_verify
                        ? " (source.ca_file must hold the CA that signed the "
                          "server's certificate, which must name source.host)"
                        : "")
                 : "");
    if (mysql_errno(m) == ER_ACCESS_DENIED)
      RM_ERR(f->o.m, PRIVILEGE);
    mysql_close(m);
    return NULL;
  }
  char e2[200];
  if (relay_source_tls_check(m, c->source.tls, what, e2, sizeof(e2)) < 0) {
    snprintf(err, errlen, "source=%s %s:%" PRId64 ": %s", c->source.name,
             c->source.host, c->source.port, e2);
    mysql_close(m);
    return NULL;
  }
  return m;
}

/* Runs a query and copies the first row's first ncol values. */
static int query_row(MYSQL *m, const char *sql, char vals[][512], int ncol) {
  if (mysql_query(m, sql) != 0)
    return -1;
  MYSQL_RES *res = mysql_store_result(m);
  if (res == NULL)
    return -1;
  MYSQL_ROW row = mysql_fetch_row(res);
  if (row == NULL || (int)mysql_num_fields(res) < ncol) {
    mysql_free_result(res);
    return 1;
  }
  for (int i = 0; i < ncol; i++)
    snprintf(vals[i], 512, "%s", row[i] ? row[i] : "");
  mysql_free_result(res);
  return 0;
}

/* Checks what herald needs of the source: S_OK, or S_RETRY with the
 * reason logged when it is not so (it may be fixed while we wait). */
static int check_source(relay_fetch_t *f, MYSQL *m) {
  char v[5][512];
  if (query_row(m,
                "SELECT @@global.log_bin, @@global.binlog_format, "
                "@@global.binlog_row_image, @@global.binlog_checksum, "
                "@@version",
                v, 5) != 0) {
    RM_ERR(f->o.m, SOURCE);
    hd_log(HD_LL_ERROR, "fetch", "cannot read source settings", "error=\"%s\"",
           mysql_error(m));
    return S_RETRY;
  }
  /* Which server the source is: registered in ZooKeeper for clients. */
  char sid[1][512];
  if (query_row(m, "SELECT @@server_id", sid, 1) == 0)
    RM_SET(f->o.m, source_server_id, strtoull(sid[0], NULL, 10));
  const char *problem = NULL;
  f->crc = strcmp(v[3], "CRC32") == 0;
  if (strcmp(v[0], "1") != 0)
    problem = "binary logging is off (log_bin)";
  else if (strcmp(v[1], "ROW") != 0)
    problem = "binlog_format is not ROW";
  else if (strcmp(v[2], "FULL") != 0)
    problem = "binlog_row_image is not FULL";
  if (problem) {
    RM_ERR(f->o.m, CONFIG);
    hd_log(HD_LL_ERROR, "fetch", "source cannot be captured",
           "reason=\"%s\" log_bin=%s binlog_format=%s binlog_row_image=%s "
           "version=%s",
           problem, v[0], v[1], v[2], v[4]);
    return S_RETRY;
  }
  return S_OK;
}

/* ----------------------------------------------------- source identity */

/* The windows in a data dir carry binlog positions of one server: resumed
 * against another, the relay would read that server's binlog at those
 * positions (mid-event, or past changes it never saw) without a word. So
 * the first connect records the source's identity in the data dir, and
 * every connect compares: a different source is refused.
 *
 * MySQL: its server_uuid, generated once and kept in its data directory
 * (auto.cnf), unique and stable across restarts, upgrades, renames and
 * moves. MariaDB 10.11 has no server UUID (@@server_uuid does not exist);
 * its @@server_uid is a SHA1 of the first network card's MAC address and
 * the port, so it changes each time a container is re-created and says
 * nothing to a person; @@datadir is /var/lib/mysql almost everywhere and
 * gtid_domain_id is 0 unless configured. Its identity is therefore
 * server_id, hostname and port: server_id must differ between servers
 * that replicate from one another, so a promoted replica is told apart;
 * hostname and port tell apart unrelated servers that keep the default
 * server_id 1; all three survive restarts and upgrades. A MariaDB server
 * re-initialised in place (same host, port and server_id) is not told
 * apart; one renamed or moved to another port is refused, and the message
 * says how to accept it. */
#define IDENTITY_FILE "source-identity"

/* The identity line of the server behind m: S_OK, or S_RETRY with the
 * reason logged. */
static int source_identity(relay_fetch_t *f, MYSQL *m, char *out, size_t n) {
  char v[4][512];
  if (query_row(m,
                "SELECT @@version, @@global.server_id, @@global.hostname, "
                "@@global.port",
                v, 4) != 0)
    goto fail;
  if (strstr(v[0], "MariaDB") != NULL) {
    snprintf(out, n, "mariadb server_id=%s hostname=%s port=%s", v[1], v[2],
             v[3]);
    return S_OK;
  }
  char u[1][512];
  if (query_row(m, "SELECT @@global.server_uuid", u, 1) != 0)
    goto fail;
  snprintf(out, n, "mysql server_uuid=%s", u[0]);
  return S_OK;
fail:
  RM_ERR(f->o.m, SOURCE);
  hd_log(HD_LL_ERROR, "fetch", "cannot read the source's identity",
         "error=\"%s\"", mysql_error(m));
  return S_RETRY;
}

/* Records the source's identity in a data dir that has none; refuses a
 * source other than the recorded one (S_FATAL). */
static int check_identity(relay_fetch_t *f, MYSQL *m) {
  char id[1700], path[700], kept[1800];
  int rc = source_identity(f, m, id, sizeof(id));
  if (rc != S_OK)
    return rc;
  const char *dir = f->o.conf->relay.data_dir;
  snprintf(path, sizeof(path), "%s/" IDENTITY_FILE, dir);
  FILE *fp = fopen(path, "r");
  if (fp == NULL && errno != ENOENT) {
    fatal(f, "%s: %s", path, strerror(errno));
    return S_FATAL;
  }
  if (fp == NULL) {
    char line[1710];
    snprintf(line, sizeof(line), "%s\n", id);
    if (keep_file(f, IDENTITY_FILE, "source identity", line) != 0) {
      f->fatal = 1; /* keep_file's message stands */
      return S_FATAL;
    }
    if (relay_store_count(f->o.store) > 0)
      hd_log(HD_LL_WARN, "fetch",
             "source identity recorded for a data_dir that already holds "
             "windows: they are taken to come from this source",
             "path=%s identity=\"%s\"", path, id);
    else
      hd_log(HD_LL_INFO, "fetch", "source identity recorded",
             "path=%s identity=\"%s\"", path, id);
    return S_OK;
  }
  if (fgets(kept, sizeof(kept), fp) == NULL)
    kept[0] = '\0';
  fclose(fp);
  kept[strcspn(kept, "\r\n")] = '\0';
  if (strcmp(kept, id) == 0)
    return S_OK;
  RM_ERR(f->o.m, SOURCE);
  fatal(f,
        "relay.data_dir %s holds the changes of another source: it was made "
        "with '%s' (%s), but %s:%" PRId64 " is '%s'; resuming would "
        "read this server's binlog at the other's positions. Give this "
        "source a data_dir of its own; if it is the same server under a new "
        "name (another hostname or port, a new server_uuid), put its "
        "identity in %s",
        dir, kept, path, f->o.conf->source.host, f->o.conf->source.port, id,
        path);
  return S_FATAL;
}

static int first_binlog(relay_fetch_t *f, MYSQL *m) {
  if (mysql_query(m, "SHOW BINARY LOGS") != 0)
    return -1;
  MYSQL_RES *res = mysql_store_result(m);
  MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
  if (row == NULL) {
    if (res)
      mysql_free_result(res);
    return -1;
  }
  snprintf(f->file, sizeof(f->file), "%s", row[0]);
  f->pos = 4;
  mysql_free_result(res);
  return 0;
}

/* Where the dump starts: after the newest stored window, else as
 * configured. Returns 0, or S_RETRY / S_FATAL. gtid is set for a GTID
 * start. */
static int start_point(relay_fetch_t *f, MYSQL *m, const char **gtid) {
  *gtid = NULL;
  void *last = NULL;
  size_t len = 0;
  if (relay_store_count(f->o.store) > 0 &&
      relay_store_last(f->o.store, &last, &len) == 0) {
    Herald__Window *w = herald__window__unpack(NULL, len, last);
    free(last);
    if (w == NULL) {
      fatal(f, "the newest window in the log store does not decode");
      return S_FATAL;
    }
    snprintf(f->file, sizeof(f->file), "%s", w->file);
    f->pos = w->pos;
    herald__window__free_unpacked(w, NULL);
    return 0;
  }
  const hd_start_t *st = &f->o.conf->source.start;
  char v[2][512];
  if (st->kind == HD_START_EARLIEST || st->kind == HD_START_LATEST) {
    int r = start_load(f);
    if (r < 0) {
      f->fatal = 1; /* start_load's message stands */
      return S_FATAL;
    }
    if (r == 1) {
      hd_log(HD_LL_INFO, "fetch", "start position kept from the first connect",
             "file=%s pos=%" PRIu64, f->file, f->pos);
      return 0;
    }
  }
  switch (st->kind) {
  case HD_START_EARLIEST:
  case HD_START_LATEST:
    if (st->kind == HD_START_EARLIEST) {
      if (first_binlog(f, m) != 0)
        goto priv;
    } else {
      if (query_row(m, "SHOW MASTER STATUS", v, 2) != 0)
        goto priv;
      snprintf(f->file, sizeof(f->file), "%s", v[0]);
      f->pos = strtoull(v[1], NULL, 10);
    }
    if (start_save(f) != 0) {
      f->fatal = 1; /* start_save's message stands */
      return S_FATAL;
    }
    hd_log(HD_LL_INFO, "fetch", "start position resolved",
           "start=%s file=%s pos=%" PRIu64,
           st->kind == HD_START_LATEST ? "latest" : "earliest", f->file,
           f->pos);
    return 0;
  case HD_START_FILEPOS:
    snprintf(f->file, sizeof(f->file), "%s", st->file);
    f->pos = st->pos;
    return 0;
  case HD_START_GTID:
    if (strchr(st->gtid, ':') != NULL) {
      fatal(f, "source.start: MySQL GTID sets are not supported yet; "
               "start from FILE:POS");
      return S_FATAL;
    }
    *gtid = st->gtid;
    f->file[0] = '\0';
    f->pos = 4;
    return 0;
  }
priv:
  RM_ERR(f->o.m, PRIVILEGE);
  hd_log(HD_LL_ERROR, "fetch", "cannot read the binlog position",
         "error=\"%s\" hint=\"the user needs BINLOG MONITOR (REPLICATION "
         "CLIENT)\"",
         mysql_error(m));
  return S_RETRY;
}

static int send_dump(relay_fetch_t *f, MYSQL *m) {
  size_t fl = strlen(f->file);
  uint8_t buf[4 + 2 + 4 + sizeof(f->file)];
  uint32_t pos = (uint32_t)f->pos, sid = (uint32_t)f->o.conf->source.server_id;
  for (int i = 0; i < 4; i++)
    buf[i] = (uint8_t)(pos >> (8 * i));
  buf[4] = buf[5] = 0; /* flags: blocking */
  for (int i = 0; i < 4; i++)
    buf[6 + i] = (uint8_t)(sid >> (8 * i));
  memcpy(buf + 10, f->file, fl);
  return m->methods->db_command(m, COM_BINLOG_DUMP_CMD, (const char *)buf,
                                10 + fl, 1, NULL);
}

/* The server's answer to a failed dump, by error number. */
static int dump_error(relay_fetch_t *f, unsigned code, const char *msg) {
  /* Before the 1236 test below: MySQL reports a duplicate server_id with
   * the same code as a purged binlog, and that is not fatal. */
  if (code == ER_SLAVE_SAME_ID ||
      (code == ER_MASTER_FATAL_READING_BINLOG &&
       strstr(msg, "same server_uuid/server_id") != NULL)) {
    RM_ERR(f->o.m, SERVER_ID);
    f->same_id = 1;
    hd_log(HD_LL_ERROR, "fetch",
           "the source gave this relay's server_id to another replica",
           "server_id=%" PRId64 " error=\"%s\" code=%u hint=\"source.server_id "
           "must be unique: one per relay, and different from every replica "
           "of the source\"",
           f->o.conf->source.server_id, msg, code);
    return S_RETRY;
  }
  if (code == ER_MASTER_FATAL_READING_BINLOG) {
    RM_ERR(f->o.m, PURGED);
    fatal(f,
          "the source cannot send the binlog from %s:%" PRIu64
          " (purged or missing?): %s; a bootstrap is needed",
          f->file[0] ? f->file : "(gtid)", f->pos, msg);
    return S_FATAL;
  }
  if (code == ER_SPECIFIC_ACCESS_DENIED || code == ER_ACCESS_DENIED) {
    RM_ERR(f->o.m, PRIVILEGE);
    hd_log(HD_LL_ERROR, "fetch", "binlog dump refused",
           "error=\"%s\" code=%u hint=\"the user needs REPLICATION SLAVE\"",
           msg, code);
    return S_RETRY;
  }
  RM_ERR(f->o.m, SOURCE);
  hd_log(HD_LL_WARN, "fetch", "source stream ended", "error=\"%s\" code=%u",
         msg, code);
  return S_RETRY;
}

#ifdef HD_TEST_HOOKS
/* Fault injection for the tests, compiled in only with HD_TEST_HOOKS:
 *   HERALD_TEST_FAULT="events=N,ACTION", "query=TEXT,ACTION" or
 *   "chunks=N,exit"
 * fires once, right after the decoder took the N-th event of a session, a
 * QUERY event containing TEXT, or after the N-th chunk of a window in
 * chunks was appended to the log store (before the window is complete). ACTION
 * "exit" kills the relay with SIGKILL (a crash at that exact point); "drop"
 * closes the source connection, and with HERALD_TEST_FAULT_WAIT=PATH creates
 * PATH and waits (at most 60 s) until the test removes it before reconnecting.
 */
static void fault_init(relay_fetch_t *f) {
  const char *spec = getenv("HERALD_TEST_FAULT");
  if (spec == NULL || *spec == '\0')
    return;
  const char *comma = strrchr(spec, ',');
  const char *act = comma ? comma + 1 : "";
  size_t tl = comma ? (size_t)(comma - spec) : 0;
  if (strcmp(act, "exit") == 0)
    f->fault.exit = 1;
  else if (strcmp(act, "drop") != 0)
    tl = 0;
  if (tl > 7 && strncmp(spec, "events=", 7) == 0) {
    f->fault.events = strtol(spec + 7, NULL, 10);
  } else if (tl > 7 && strncmp(spec, "chunks=", 7) == 0) {
    f->fault.chunks = strtol(spec + 7, NULL, 10);
  } else if (tl > 6 && tl - 6 < sizeof(f->fault.query) &&
             strncmp(spec, "query=", 6) == 0) {
    memcpy(f->fault.query, spec + 6, tl - 6);
    f->fault.query[tl - 6] = '\0';
  } else {
    hd_log(HD_LL_ERROR, "fetch", "HERALD_TEST_FAULT not understood",
           "value=\"%s\" want=\"events=N|chunks=N|query=TEXT,exit|drop\"",
           spec);
    return;
  }
  const char *w = getenv("HERALD_TEST_FAULT_WAIT");
  if (w && *w) {
    snprintf(f->fault.wait_path, sizeof(f->fault.wait_path), "%s", w);
  }
  f->fault.armed = 1;
  hd_log(HD_LL_WARN, "fetch", "test fault armed", "spec=\"%s\"", spec);
}

static int fault_hit(relay_fetch_t *f, uint8_t type, const uint8_t *ev,
                     size_t len) {
  if (!f->fault.armed || f->fault.fired || f->fault.chunks)
    return 0;
  if (f->fault.events > 0)
    return (long)f->session_events + 1 >= f->fault.events;
  size_t ql = strlen(f->fault.query);
  return type == HB_EV_QUERY && ql &&
         memmem(ev, len, f->fault.query, ql) != NULL;
}

static int fault_act(relay_fetch_t *f) {
  f->fault.fired = 1;
  hd_log(HD_LL_WARN, "fetch", "test fault fired", "action=%s at=%s:%" PRIu64,
         f->fault.exit ? "exit" : "drop", f->file, f->pos);
  if (f->fault.exit)
    raise(SIGKILL);
  f->fault.wait = f->fault.wait_path[0] != '\0';
  return S_RETRY;
}

/* After a dropped connection: let the test act before the reconnect. */
static void fault_wait(relay_fetch_t *f) {
  if (!f->fault.wait)
    return;
  f->fault.wait = 0;
  int fd = open(f->fault.wait_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0)
    close(fd);
  for (int i = 0; i < 1200 && !atomic_load(&f->stop); i++) {
    if (access(f->fault.wait_path, F_OK) != 0)
      return;
    usleep(50000);
  }
}
#endif

/* One event from the stream: position bookkeeping, then the decoder. */
static int handle_event(relay_fetch_t *f, const uint8_t *ev, size_t len) {
  if (len < HB_EVENT_HEADER_LEN) {
    RM_ERR(f->o.m, DECODE);
    fatal(f, "%s:%" PRIu64 ": event of %zu bytes is shorter than a header",
          f->file, f->pos, len);
    return S_FATAL;
  }
  hb_event_header_t h;
  hb_event_header(ev, &h);
  uint32_t ts = h.ts, size = h.size, log_pos = h.log_pos;
  uint8_t type = h.type;
  uint16_t flags = h.flags;
  if (size != len) {
    RM_ERR(f->o.m, DECODE);
    fatal(f, "%s:%" PRIu64 ": event size %u but packet of %zu bytes", f->file,
          f->pos, size, len);
    return S_FATAL;
  }
  uint64_t pos = f->pos;
  int advance = 1;
  hd_log(HD_LL_DEBUG, "fetch", "event",
         "type=%u size=%u log_pos=%u flags=0x%x ts=%u at=%s:%" PRIu64, type,
         size, log_pos, flags, ts, f->file, f->pos);
  if (type == HB_EV_ROTATE && (ts == 0 || (flags & HB_EV_F_ARTIFICIAL))) {
    /* The server's fake rotate names the file and position that follow;
     * it is not in the file. */
    if (len >= HB_EVENT_HEADER_LEN + 8) {
      uint64_t np = hb_le64(ev + HB_EVENT_HEADER_LEN);
      size_t k = len - HB_EVENT_HEADER_LEN - 8;
      /* With checksums negotiated, the fake rotate ends in a CRC32 too. */
      if (f->crc) {
        if (k < 4) {
          RM_ERR(f->o.m, DECODE);
          fatal(f, "fake ROTATE event of %zu bytes is too short", len);
          return S_FATAL;
        }
        k -= 4;
      }
      if (k == 0 || k >= sizeof(f->file)) {
        RM_ERR(f->o.m, DECODE);
        fatal(f, "fake ROTATE event names a file of %zu bytes", k);
        return S_FATAL;
      }
      memcpy(f->file, ev + HB_EVENT_HEADER_LEN + 8, k);
      f->file[k] = '\0';
      f->pos = np;
      hb_decoder_set_file(f->dec, f->file);
    }
    return 0; /* not fed: the decoder learns the file from set_file */
  }
  if (type == HB_EV_HEARTBEAT) {
    RM_SET(f->o.m, source_ts_ms, hd_now_ms());
    RM_SET(f->o.m, source_seen_ms, hd_now_ms());
    maybe_retain(f);
    /* Sent only when the source has nothing more: what was read ends at
     * f->pos, a position no window may have reached (a rotated binlog
     * with no commit since). */
    uint64_t idx = hb_file_index(f->file);
    if (idx && idx < (1ull << 31) && f->pos < (1ull << 32)) {
      uint64_t scn = idx << 32 | f->pos;
      RM_SET(f->o.m, idle_scn, scn);
      if (f->o.on_idle)
        f->o.on_idle(f->o.ud, scn);
    }
    return 0;
  }
  if (flags & HB_EV_F_ARTIFICIAL)
    advance = 0;
  else if (type == HB_EV_FDE && log_pos == 0 && f->pos != 4)
    advance = 0; /* the format description re-sent for a mid-file start */
  else if (log_pos >= size && log_pos != 0)
    pos = log_pos - size; /* the server's position wins when it gives one */
  int rc = hb_decoder_feed(f->dec, ev, len, pos);
  if (rc < 0) {
    if (f->fatal)
      return S_FATAL;
    RM_ERR(f->o.m, DECODE);
    fatal(f, "%s", hb_decoder_errmsg(f->dec));
    return S_FATAL;
  }
  if (advance)
    f->pos = pos + size;
#ifdef HD_TEST_HOOKS
  if (fault_hit(f, type, ev, len))
    return fault_act(f);
#endif
  if (ts != 0) {
    RM_SET(f->o.m, source_ts_ms, (uint64_t)ts * 1000);
    RM_SET(f->o.m, source_seen_ms, hd_now_ms());
  }
  f->session_events++;
  maybe_retain(f);
  return 0;
}

static int session(relay_fetch_t *f) {
  char err[512];
  const char *gtid = NULL;
  f->stream_ms = 0;
  f->same_id = 0;
  MYSQL *m = open_conn(f, "dump", err, sizeof(err));
  if (m == NULL) {
    RM_ERR(f->o.m, CONNECT);
    hd_log(HD_LL_WARN, "fetch", "cannot connect to the source", "%s", err);
    return S_RETRY;
  }
  pthread_mutex_lock(&f->mu);
  f->conn = m;
  pthread_mutex_unlock(&f->mu);
  int rc = check_source(f, m);
  if (rc == S_OK)
    check_privileges(f, m);
  if (rc == S_OK)
    rc = check_identity(f, m);
  if (rc == S_OK)
    rc = start_point(f, m, &gtid);
  if (rc == 0) {
    char sql[1400];
    snprintf(sql, sizeof(sql),
             "SET @master_binlog_checksum = @@global.binlog_checksum, "
             "@source_binlog_checksum = @@global.binlog_checksum, "
             "@mariadb_slave_capability = 4, @master_heartbeat_period = "
             "%" PRIu64,
             f->o.conf->source.heartbeat_ms * 1000000);
    if (mysql_query(m, sql) != 0)
      rc = dump_error(f, mysql_errno(m), mysql_error(m));
  }
  if (rc == 0 && gtid != NULL) {
    char q[1200], sql[1400];
    sql_quote(m, q, sizeof(q), gtid);
    snprintf(sql, sizeof(sql),
             "SET @slave_connect_state = '%s', @slave_gtid_strict_mode = 1", q);
    if (mysql_query(m, sql) != 0)
      rc = dump_error(f, mysql_errno(m), mysql_error(m));
  }
  if (rc == 0) {
    hb_decoder_reset(f->dec);
    spool_reset(f); /* a transaction cut off with the old session */
    hb_decoder_resync(f->dec);
    if (f->file[0])
      hb_decoder_set_file(f->dec, f->file);
    hd_log(HD_LL_INFO, "fetch", "dump", "file=%s pos=%" PRIu64 " gtid=%s",
           f->file[0] ? f->file : "-", f->pos, gtid ? gtid : "-");
    if (send_dump(f, m) != 0)
      rc = dump_error(f, mysql_errno(m), mysql_error(m));
  }
  if (rc == 0) {
    RM_SET(f->o.m, connected, 1);
    f->session_events = 0;
    uint64_t t0 = hd_now_ms();
    for (;;) {
      unsigned long n = mysql_net_read_packet(m);
      if (atomic_load(&f->stop)) {
        rc = S_STOP;
        break;
      }
      /* The library's packet_error is an unsigned int -1. */
      if (n == packet_error || n == 0) {
        rc = dump_error(f, mysql_errno(m), mysql_error(m));
        break;
      }
      const uint8_t *p = m->net.read_pos;
      if (p[0] == 0xfe && n < 8) {
        rc = dump_error(f, 0, "end of stream");
        break;
      }
      if (p[0] != 0x00) {
        rc = dump_error(f, 0, "unexpected packet");
        break;
      }
      RM_ADD(f->o.m, bytes, n - 1);
      rc = handle_event(f, p + 1, n - 1);
      if (rc != 0)
        break;
    }
    f->stream_ms = hd_now_ms() - t0;
    if (f->stream_ms == 0)
      f->stream_ms = 1; /* it did start */
    RM_SET(f->o.m, connected, 0);
  }
  pthread_mutex_lock(&f->mu);
  f->conn = NULL;
  pthread_mutex_unlock(&f->mu);
  mysql_close(m);
  if (atomic_load(&f->stop))
    return S_STOP;
  return rc;
}

static void *fetch_main(void *arg) {
  relay_fetch_t *f = arg;
  uint64_t backoff = BACKOFF_MIN_MS, maxb = f->o.conf->source.reconnect_max_ms;
  unsigned short_dumps = 0;
  mysql_thread_init();
  while (!atomic_load(&f->stop)) {
    int rc = session(f);
    if (rc == S_STOP)
      break;
    if (rc == S_FATAL) {
      hd_log(HD_LL_ERROR, "fetch", "stopped", "reason=\"%s\"", f->errmsg);
      f->o.on_fatal(f->o.ud, f->errmsg);
      break;
    }
#ifdef HD_TEST_HOOKS
    fault_wait(f);
#endif
    /* Only a dump that streamed for a while starts the backoff over; one
     * that a replica with our server_id ended never does, or the two
     * would take turns at once. */
    if (f->stream_ms >= HEALTHY_MS && !f->same_id)
      backoff = BACKOFF_MIN_MS;
    if (f->stream_ms > 0 && f->stream_ms < HEALTHY_MS)
      short_dumps++;
    else if (f->stream_ms >= HEALTHY_MS)
      short_dumps = 0;
    if (short_dumps == SHORT_DUMPS_HINT && !f->same_id)
      hd_log(HD_LL_WARN, "fetch",
             "the source keeps ending the dump soon after it starts",
             "count=%u server_id=%" PRId64 " hint=\"another replica or relay "
             "using source.server_id %" PRId64 " would do this; it must be "
             "unique\"",
             short_dumps, f->o.conf->source.server_id,
             f->o.conf->source.server_id);
    RM_ADD(f->o.m, reconnects, 1);
    hd_log(HD_LL_INFO, "fetch", "reconnecting",
           "in_ms=%" PRIu64 " streamed_ms=%" PRIu64, backoff, f->stream_ms);
    struct timespec dl = hd_deadline_ms(backoff);
    pthread_mutex_lock(&f->mu);
    while (!atomic_load(&f->stop) &&
           pthread_cond_timedwait(&f->cv, &f->mu, &dl) == 0)
      ;
    pthread_mutex_unlock(&f->mu);
    backoff = backoff * 2 > maxb ? maxb : backoff * 2;
  }
  schema_release(f);
  if (f->meta) {
    mysql_close(f->meta);
    f->meta = NULL;
  }
  mysql_thread_end();
  return NULL;
}

int relay_fetch_start(const relay_fetch_opts_t *o, relay_fetch_t **out) {
  relay_fetch_t *f = hd_calloc(1, sizeof(*f));
  f->o = *o;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  if (o->conf->source.tls && !o->conf->source.tls_verify)
    hd_log(HD_LL_WARN, "fetch", "source certificate not verified",
           "source=%s host=%s: source.tls_verify is false, so the connection "
           "is encrypted but whoever answers at that address gets the "
           "password and sends the changes",
           o->conf->source.name, o->conf->source.host);
  hb_config_t cfg = {0};
  cfg.on_window = on_window;
  cfg.on_chunk = on_chunk;
  cfg.chunk_bytes = (size_t)o->conf->relay.chunk_bytes;
  cfg.on_ddl = on_ddl;
  cfg.on_incident = on_incident;
  cfg.schema = schema_cb;
  cfg.table_filter = table_filter;
  cfg.ud = f;
  if (spool_open(f) != 0) {
    hd_log(HD_LL_ERROR, "fetch", "cannot open the spool", "error=\"%s\"",
           f->errmsg);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
    return -EIO;
  }
  f->dec = hb_decoder_new(&cfg);
  f->wb = relay_wb_new();
  relay_wb_set_schemas(f->wb, o->schemas);
#ifdef HD_TEST_HOOKS
  fault_init(f);
#else
  if (getenv("HERALD_TEST_FAULT"))
    hd_log(HD_LL_WARN, "fetch",
           "HERALD_TEST_FAULT ignored: built without HD_TEST_HOOKS", NULL);
#endif
  int rc = pthread_create(&f->thr, NULL, fetch_main, f);
  if (rc != 0) {
    hb_decoder_free(f->dec);
    relay_wb_free(f->wb);
    close(f->spool_fd);
    free(f);
    return -rc;
  }
  *out = f;
  return 0;
}

void relay_fetch_stop(relay_fetch_t *f) {
  if (f == NULL)
    return;
  atomic_store(&f->stop, 1);
  pthread_mutex_lock(&f->mu);
  /* Unblock a read in progress: shut the socket down under the thread's
   * feet; it then sees an error, notices the stop flag and closes. */
  if (f->conn != NULL) {
    my_socket s = mysql_get_socket(f->conn);
    if (s >= 0)
      shutdown(s, SHUT_RDWR);
  }
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
  pthread_join(f->thr, NULL);
  hb_decoder_free(f->dec);
  relay_wb_free(f->wb);
  close(f->spool_fd);
  free(f->cbuf);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  free(f);
}
