/*
 * relay_snapread.c - the snapshot reader (relay_snapread.h): a table's
 * rows in primary-key chunks, each in one consistent-snapshot transaction,
 * turned into the decoder's rows.
 *
 * Fidelity comes from not formatting anything here. The table's
 * definition (information_schema) becomes a TABLE_MAP event with the types
 * and metadata the server writes, the values read with the binary protocol
 * become a WRITE_ROWS event in the binlog's storage formats, and both go
 * through a decoder of the chunk's own. Its table, schema version and
 * values are therefore the decoder's, formatted by the same code as the
 * stream's. What the table map would carry as optional metadata (names,
 * signedness, charsets, labels, the key) is given through the decoder's
 * schema provider, with the semantics of the source's binlog_row_metadata:
 * FULL/MINIMAL as the table map states them, NO_LOG as the relay's own
 * information_schema lookup (relay_fetch.c) gives them.
 */
#include "relay_snapread.h"

#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb_event.h"
#include "hb_pb.h"
#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "herald.pb-c.h"
#include "relay_fetch.h"

/* Client-side error codes (errmsg.h) start here: the connection is gone
 * or unusable, so the next call connects again. */
#define CLIENT_ERRORS 2000
#define ER_NO_SUCH_TABLE 1146
#define ER_BAD_DB_ERROR 1049
#define ER_PARSE_ERROR 1064

/* binlog_row_metadata of the source: what its table maps carry. */
enum { MD_NO_LOG = 0, MD_MINIMAL = 1, MD_FULL = 2 };

struct relay_snapread {
  char *host, *user, *password;
  char *name;          /* source.name, for messages */
  int tls, tls_verify; /* source.tls, source.tls_verify */
  char *ca_file, *cert_file, *key_file;
  unsigned port;
  unsigned connect_timeout_s;
  MYSQL *m;
  int row_metadata; /* MD_*, read at connect */
  int window;       /* use_window(), read at connect */
};

/* ------------------------------------------------------------ connection */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static void drop_conn(relay_snapread_t *r) {
  if (r->m)
    mysql_close(r->m);
  r->m = NULL;
}

/* A failed statement: the server's message, and the connection dropped
 * when the client says it is broken. */
static int sql_fail(relay_snapread_t *r, const char *what, char *err,
                    size_t errlen) {
  unsigned e = mysql_errno(r->m);
  seterr(err, errlen, "%s: %s (error %u)", what, mysql_error(r->m), e);
  if (e >= CLIENT_ERRORS)
    drop_conn(r);
  return e == ER_NO_SUCH_TABLE || e == ER_BAD_DB_ERROR ? -ENOENT : -EIO;
}

static int query(relay_snapread_t *r, const char *sql, const char *what,
                 char *err, size_t errlen) {
  if (mysql_query(r->m, sql) != 0)
    return sql_fail(r, what, err, errlen);
  return 0;
}

/* The first row of a query's result, the values copied. */
static int query_row(relay_snapread_t *r, const char *sql, char vals[][256],
                     int ncol, char *err, size_t errlen) {
  int rc = query(r, sql, sql, err, errlen);
  if (rc < 0)
    return rc;
  MYSQL_RES *res = mysql_store_result(r->m);
  if (res == NULL)
    return sql_fail(r, sql, err, errlen);
  MYSQL_ROW row = mysql_fetch_row(res);
  if (row == NULL || (int)mysql_num_fields(res) < ncol) {
    mysql_free_result(res);
    return 1;
  }
  for (int i = 0; i < ncol; i++)
    snprintf(vals[i], 256, "%s", row[i] ? row[i] : "");
  mysql_free_result(res);
  return 0;
}

/* How a chunk's SCN is known. MariaDB's consistent snapshot gives the
 * exact binlog position its rows are as of (one watermark). Elsewhere
 * (MySQL) the chunk's SELECT runs between two reads of the binlog
 * position, DBLog's low and high watermarks: rows whose key the binlog
 * changed between them are dropped from the chunk by the merge
 * (relay_snap.c), what is left is as of the high one. */
static int use_window(relay_snapread_t *r) {
  const char *sv = mysql_get_server_info(r->m);
#ifdef HD_TEST_HOOKS
  /* The tests run the window on MariaDB, the only server they have. */
  const char *t = getenv("HERALD_TEST_SNAPSHOT_WINDOW");
  if (t && strcmp(t, "1") == 0)
    return 1;
#endif
  return sv == NULL || strstr(sv, "MariaDB") == NULL;
}

static int connect_src(relay_snapread_t *r, char *err, size_t errlen) {
  if (r->m)
    return 0;
  MYSQL *m = mysql_init(NULL);
  if (m == NULL) {
    seterr(err, errlen, "snapshot reader: out of memory");
    return -ENOMEM;
  }
  /* A chunk is one SELECT of at most a few thousand rows: ten minutes
   * without a byte means the source or the network is gone. */
  unsigned rto = 600;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &r->connect_timeout_s);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rto);
  mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rto);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  relay_source_tls_set(m, r->tls, r->tls_verify, r->ca_file, r->cert_file,
                       r->key_file);
  if (mysql_real_connect(m, r->host, r->user, r->password, NULL, r->port, NULL,
                         0) == NULL) {
    seterr(err, errlen, "snapshot reader: source=%s %s:%u%s: %s (error %u)",
           r->name, r->host, r->port,
           r->tls ? (r->tls_verify ? " tls=verify" : " tls=on") : "",
           mysql_error(m), mysql_errno(m));
    mysql_close(m);
    return -ECONNREFUSED;
  }
  char e2[200];
  if (relay_source_tls_check(m, r->tls, "snapshot", e2, sizeof(e2)) < 0) {
    seterr(err, errlen, "snapshot reader: source=%s %s:%u: %s", r->name,
           r->host, r->port, e2);
    mysql_close(m);
    return -ECONNREFUSED;
  }
  r->m = m;
  /* Text and binary columns arrive as stored (character_set_results
   * binary): the decoder converts them by the column's charset exactly as
   * it converts the binlog's bytes, invalid ones included. */
  int rc = query(r, "SET time_zone = '+00:00', character_set_results = binary",
                 "snapshot reader: session settings", err, errlen);
  if (rc == 0)
    rc = query(r, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
               "snapshot reader: session settings", err, errlen);
  if (rc < 0) {
    drop_conn(r);
    return rc;
  }
  char v[1][256];
  rc = query_row(r, "SELECT @@global.binlog_row_metadata", v, 1, err, errlen);
  if (rc < 0) {
    drop_conn(r);
    return rc;
  }
  r->row_metadata = rc != 0                    ? MD_NO_LOG
                    : !strcmp(v[0], "FULL")    ? MD_FULL
                    : !strcmp(v[0], "MINIMAL") ? MD_MINIMAL
                                               : MD_NO_LOG;
  r->window = use_window(r);
  hd_log(HD_LL_INFO, "snapshot", "reader connected",
         "source=%s:%u server=\"%s\" watermarks=%s", r->host, r->port,
         mysql_get_server_info(m), r->window ? "window" : "snapshot");
  return 0;
}

int relay_snapread_open(const hd_relay_conf_t *conf, const char *password,
                        relay_snapread_t **out, char *err, size_t errlen) {
  relay_snapread_t *r = hd_calloc(1, sizeof(*r));
  r->host = hd_strdup(conf->source.host ? conf->source.host : "127.0.0.1");
  r->user = hd_strdup(conf->source.user ? conf->source.user : "");
  r->password = password ? hd_strdup(password) : NULL;
  r->port = (unsigned)conf->source.port;
  r->name = hd_strdup(conf->source.name ? conf->source.name : "");
  r->tls = conf->source.tls;
  r->tls_verify = conf->source.tls_verify;
  r->ca_file = conf->source.ca_file ? hd_strdup(conf->source.ca_file) : NULL;
  r->cert_file =
      conf->source.cert_file ? hd_strdup(conf->source.cert_file) : NULL;
  r->key_file = conf->source.key_file ? hd_strdup(conf->source.key_file) : NULL;
  r->connect_timeout_s =
      (unsigned)((conf->source.connect_timeout_ms + 999) / 1000);
  if (r->connect_timeout_s == 0)
    r->connect_timeout_s = 10;
  int rc = connect_src(r, err, errlen);
  if (rc < 0) {
    relay_snapread_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

void relay_snapread_close(relay_snapread_t *r) {
  if (r == NULL)
    return;
  drop_conn(r);
  free(r->host);
  free(r->user);
  free(r->password);
  free(r->name);
  free(r->ca_file);
  free(r->cert_file);
  free(r->key_file);
  free(r);
}

/* `name` with backticks doubled, into b. */
static void put_ident(hb_buf_t *b, const char *name) {
  hb_buf_putc(b, '`');
  for (const char *s = name; *s; s++) {
    if (*s == '`')
      hb_buf_putc(b, '`');
    hb_buf_putc(b, *s);
  }
  hb_buf_putc(b, '`');
}

/* 'text' escaped for the connection's charset, into b. */
static void put_quoted(relay_snapread_t *r, hb_buf_t *b, const char *s,
                       size_t n) {
  hb_buf_reserve(b, 2 * n + 3);
  b->p[b->len++] = '\'';
  b->len += mysql_real_escape_string(r->m, b->p + b->len, s, (unsigned long)n);
  b->p[b->len++] = '\'';
}

static void put_hex(hb_buf_t *b, const uint8_t *p, size_t n) {
  static const char hx[] = "0123456789ABCDEF";
  hb_buf_lit(b, "X'");
  for (size_t i = 0; i < n; i++) {
    hb_buf_putc(b, hx[p[i] >> 4]);
    hb_buf_putc(b, hx[p[i] & 15]);
  }
  hb_buf_putc(b, '\'');
}

/* ---------------------------------------------------------------- tables */

static int snaptable_cmp(const void *a, const void *b) {
  const relay_snaptable_t *x = a, *y = b;
  int c = strcmp(x->db, y->db);
  if (c == 0)
    return strcmp(x->table, y->table);
  /* "db.table" bytewise: a db that is a prefix of the other compares its
   * '.' with the other's next byte. */
  size_t lx = strlen(x->db), ly = strlen(y->db);
  if (lx < ly && strncmp(x->db, y->db, lx) == 0)
    return (unsigned char)'.' < (unsigned char)y->db[lx] ? -1 : 1;
  if (ly < lx && strncmp(x->db, y->db, ly) == 0)
    return (unsigned char)x->db[ly] < (unsigned char)'.' ? -1 : 1;
  return c;
}

int relay_snapread_tables(relay_snapread_t *r, const char *const *patterns,
                          size_t npat, relay_snaptable_t **out, size_t *n,
                          char *err, size_t errlen) {
  *out = NULL;
  *n = 0;
  int rc = connect_src(r, err, errlen);
  if (rc < 0)
    return rc;
  rc = query(r,
             "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, COALESCE(t.TABLE_ROWS, 0), "
             "EXISTS(SELECT 1 FROM information_schema.STATISTICS s WHERE "
             "s.TABLE_SCHEMA = t.TABLE_SCHEMA AND s.TABLE_NAME = t.TABLE_NAME "
             "AND s.INDEX_NAME = 'PRIMARY') FROM information_schema.TABLES t "
             "WHERE t.TABLE_TYPE = 'BASE TABLE' AND t.TABLE_SCHEMA NOT IN "
             "('mysql', 'information_schema', 'performance_schema', 'sys')",
             "snapshot reader: listing tables", err, errlen);
  if (rc < 0)
    return rc;
  MYSQL_RES *res = mysql_store_result(r->m);
  if (res == NULL)
    return sql_fail(r, "snapshot reader: listing tables", err, errlen);
  size_t cap = (size_t)mysql_num_rows(res) + 1, k = 0;
  relay_snaptable_t *v = hd_calloc(cap, sizeof(*v));
  MYSQL_ROW row;
  hb_buf_t name = {0};
  while ((row = mysql_fetch_row(res)) != NULL) {
    if (row[0] == NULL || row[1] == NULL)
      continue;
    name.len = 0;
    hb_buf_put(&name, row[0], strlen(row[0]));
    hb_buf_putc(&name, '.');
    hb_buf_put(&name, row[1], strlen(row[1]));
    hb_buf_putc(&name, '\0');
    int match = 0;
    for (size_t i = 0; i < npat && !match; i++)
      match = hd_glob_match(patterns[i], name.p);
    if (!match)
      continue;
    v[k].db = hd_strdup(row[0]);
    v[k].table = hd_strdup(row[1]);
    v[k].rows_estimate = row[2] ? strtoull(row[2], NULL, 10) : 0;
    v[k].has_pk = row[3] && row[3][0] == '1';
    k++;
  }
  hb_buf_free(&name);
  mysql_free_result(res);
  qsort(v, k, sizeof(*v), snaptable_cmp);
  *out = v;
  *n = k;
  return 0;
}

void relay_snaptables_free(relay_snaptable_t *t, size_t n) {
  for (size_t i = 0; t && i < n; i++) {
    free(t[i].db);
    free(t[i].table);
  }
  free(t);
}

/* ------------------------------------------------------------ definition */

/* How a column's values are read from the binary protocol and stored in
 * the rows event. */
enum {
  RK_INT,    /* integers, YEAR: 8 bytes */
  RK_FLOAT,  /* 4-byte float */
  RK_DOUBLE, /* 8-byte double */
  RK_DEC,    /* decimal text */
  RK_TIME,   /* MYSQL_TIME */
  RK_BYTES   /* strings, BIT, GEOMETRY: the bytes as stored */
};

typedef struct {
  char *name;
  char *data_type;   /* information_schema DATA_TYPE */
  char *column_type; /* COLUMN_TYPE */
  char *charset;     /* CHARACTER_SET_NAME, NULL for binary types */
  uint32_t coll;     /* the collation id as the stream gives it */
  int is_unsigned, nullable;
  uint8_t type; /* HB_T_* of the table map */
  uint16_t meta;
  uint8_t mbytes;  /* table-map metadata bytes */
  uint8_t m[2];    /* table-map metadata as written */
  uint8_t size;    /* storage: int bytes, prefix bytes, ENUM/SET bytes */
  uint32_t octets; /* CHAR/BINARY: declared length in bytes */
  uint8_t fsp;     /* temporals */
  uint8_t prec, scale;
  uint32_t bits; /* BIT */
  int rk;        /* RK_* */
  uint32_t nlabels;
  char **labels; /* ENUM/SET, UTF-8 */
  int key_pos;   /* 1-based position in the primary key, 0 none */
} scol_t;

typedef struct {
  uint32_t ncols;
  scol_t *c;
  uint32_t npk; /* the primary key in key order (paging, last_key) */
  uint32_t *pk;
  uint32_t nspk; /* the key as the stream's table has it */
  uint32_t *spk;
  char *db, *table;
} sdef_t;

static void sdef_free(sdef_t *d) {
  for (uint32_t i = 0; i < d->ncols; i++) {
    scol_t *c = &d->c[i];
    free(c->name);
    free(c->data_type);
    free(c->column_type);
    free(c->charset);
    for (uint32_t k = 0; k < c->nlabels; k++)
      free(c->labels[k]);
    free(c->labels);
  }
  free(d->c);
  free(d->pk);
  free(d->spk);
  free(d->db);
  free(d->table);
  memset(d, 0, sizeof(*d));
}

static void meta2(scol_t *c, uint8_t b0, uint8_t b1) {
  c->mbytes = 2;
  c->m[0] = b0;
  c->m[1] = b1;
}

static void meta1(scol_t *c, uint8_t b0) {
  c->mbytes = 1;
  c->m[0] = b0;
}

/* The table-map type and metadata MariaDB writes for a column (checked
 * against the sandbox's binlog: DATE is type 10, the temporals are the
 * fractional *2 types, JSON is a LONGTEXT blob, BIT's metadata is bits % 8
 * then bytes). Returns 0, or -1 for a type the reader cannot store. */
static int column_type(scol_t *c, const char *octets, const char *nprec,
                       const char *nscale, const char *dtprec) {
  const char *t = c->data_type;
  uint64_t oct = octets ? strtoull(octets, NULL, 10) : 0;
  c->rk = RK_BYTES;
  static const struct {
    const char *name;
    uint8_t type, size;
  } ints[] = {{"tinyint", HB_T_TINY, 1},
              {"smallint", HB_T_SHORT, 2},
              {"mediumint", HB_T_INT24, 3},
              {"int", HB_T_LONG, 4},
              {"bigint", HB_T_LONGLONG, 8}};
  for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
    if (strcmp(t, ints[i].name) == 0) {
      c->type = ints[i].type;
      c->size = ints[i].size;
      c->rk = RK_INT;
      return 0;
    }
  }
  if (!strcmp(t, "float")) {
    c->type = HB_T_FLOAT;
    meta1(c, 4);
    c->rk = RK_FLOAT;
  } else if (!strcmp(t, "double")) {
    c->type = HB_T_DOUBLE;
    meta1(c, 8);
    c->rk = RK_DOUBLE;
  } else if (!strcmp(t, "decimal")) {
    c->type = HB_T_NEWDECIMAL;
    c->prec = (uint8_t)(nprec ? atoi(nprec) : 0);
    c->scale = (uint8_t)(nscale ? atoi(nscale) : 0);
    meta2(c, c->prec, c->scale);
    c->rk = RK_DEC;
  } else if (!strcmp(t, "date")) {
    c->type = HB_T_DATE;
    c->rk = RK_TIME;
  } else if (!strcmp(t, "time") || !strcmp(t, "datetime") ||
             !strcmp(t, "timestamp")) {
    c->type = t[0] == 't' && t[4] == '\0' ? HB_T_TIME2
              : t[0] == 'd'               ? HB_T_DATETIME2
                                          : HB_T_TIMESTAMP2;
    c->fsp = (uint8_t)(dtprec ? atoi(dtprec) : 0);
    meta1(c, c->fsp);
    c->rk = RK_TIME;
  } else if (!strcmp(t, "year")) {
    c->type = HB_T_YEAR;
    c->rk = RK_INT;
  } else if (!strcmp(t, "bit")) {
    c->type = HB_T_BIT;
    c->bits = (uint32_t)(nprec ? atoi(nprec) : 1);
    meta2(c, (uint8_t)(c->bits % 8), (uint8_t)(c->bits / 8));
    c->size = (uint8_t)((c->bits + 7) / 8);
  } else if (!strcmp(t, "enum") || !strcmp(t, "set")) {
    c->nlabels = relay_parse_labels(c->column_type, &c->labels);
    int is_enum = t[0] == 'e';
    c->type = is_enum ? HB_T_ENUM : HB_T_SET;
    if (is_enum) {
      c->size = c->nlabels > 255 ? 2 : 1;
    } else {
      unsigned l = (c->nlabels + 7) / 8;
      c->size = (uint8_t)(l > 4 ? 8 : l);
    }
    /* Written as STRING with the real type in the first metadata byte. */
    meta2(c, c->type, c->size);
    c->rk = RK_INT;
  } else if (!strcmp(t, "char") || !strcmp(t, "binary")) {
    c->type = HB_T_STRING;
    c->octets = (uint32_t)oct;
    /* Lengths above 255 keep their two high bits in the type byte. */
    meta2(c, (uint8_t)(HB_T_STRING ^ ((oct & 0x300) >> 4)), (uint8_t)oct);
    c->size = oct > 255 ? 2 : 1;
  } else if (!strcmp(t, "varchar") || !strcmp(t, "varbinary")) {
    c->type = HB_T_VARCHAR;
    meta2(c, (uint8_t)oct, (uint8_t)(oct >> 8));
    c->size = oct > 255 ? 2 : 1;
  } else if (strstr(t, "text") || strstr(t, "blob")) {
    c->type = HB_T_BLOB;
    c->size = !strncmp(t, "tiny", 4)     ? 1
              : !strncmp(t, "medium", 6) ? 3
              : !strncmp(t, "long", 4)   ? 4
                                         : 2;
    meta1(c, c->size);
  } else if (!strcmp(t, "geometry") || !strcmp(t, "point") ||
             !strcmp(t, "linestring") || !strcmp(t, "polygon") ||
             !strcmp(t, "multipoint") || !strcmp(t, "multilinestring") ||
             !strcmp(t, "multipolygon") || !strcmp(t, "geometrycollection")) {
    c->type = HB_T_GEOMETRY;
    c->size = 4;
    meta1(c, 4);
  } else {
    return -1;
  }
  if (c->mbytes == 2 && c->type != HB_T_BIT && c->type != HB_T_VARCHAR)
    c->meta = (uint16_t)(c->m[0] << 8 | c->m[1]);
  else if (c->mbytes == 2)
    c->meta = (uint16_t)(c->m[0] | c->m[1] << 8);
  else if (c->mbytes == 1)
    c->meta = c->m[0];
  return 0;
}

/* Whether the table map counts the column as a character column for its
 * charset fields (with GEOMETRY, as MariaDB writes them) or as ENUM/SET. */
static int has_tm_charset(const scol_t *c) {
  switch (c->type) {
  case HB_T_STRING:
  case HB_T_VARCHAR:
  case HB_T_BLOB:
  case HB_T_GEOMETRY:
  case HB_T_ENUM:
  case HB_T_SET:
    return 1;
  default:
    return 0;
  }
}

/* The table's columns and keys from information_schema. */
static int load_def(relay_snapread_t *r, const char *db, const char *table,
                    sdef_t *d, char *err, size_t errlen) {
  memset(d, 0, sizeof(*d));
  /* Two queries, each with the schema and table as constants: a
   * correlated subquery on STATISTICS made the server open every table
   * of every database for each column (tens of ms of its CPU per chunk,
   * bench/README.md, "Snapshot"). The key's columns first. */
  hb_buf_t q = {0};
  hb_buf_lit(&q, "SELECT COLUMN_NAME, SEQ_IN_INDEX FROM "
                 "information_schema.STATISTICS WHERE TABLE_SCHEMA = ");
  put_quoted(r, &q, db, strlen(db));
  hb_buf_lit(&q, " AND TABLE_NAME = ");
  put_quoted(r, &q, table, strlen(table));
  hb_buf_lit(&q, " AND INDEX_NAME = 'PRIMARY'");
  hb_buf_putc(&q, '\0');
  char what[600];
  snprintf(what, sizeof(what), "snapshot reader: the key of %s.%s", db, table);
  int rc = query(r, q.p, what, err, errlen);
  if (rc < 0) {
    hb_buf_free(&q);
    return rc;
  }
  MYSQL_RES *kres = mysql_store_result(r->m);
  if (kres == NULL) {
    hb_buf_free(&q);
    return sql_fail(r, what, err, errlen);
  }
  q.len = 0;
  hb_buf_lit(&q,
             "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, "
             "c.CHARACTER_OCTET_LENGTH, c.NUMERIC_PRECISION, "
             "c.NUMERIC_SCALE, c.DATETIME_PRECISION, c.IS_NULLABLE, "
             "c.CHARACTER_SET_NAME, COALESCE(co.ID, 0), c.COLUMN_KEY "
             "FROM information_schema.COLUMNS c "
             "LEFT JOIN information_schema.COLLATIONS co ON "
             "co.COLLATION_NAME = c.COLLATION_NAME WHERE c.TABLE_SCHEMA = ");
  put_quoted(r, &q, db, strlen(db));
  hb_buf_lit(&q, " AND c.TABLE_NAME = ");
  put_quoted(r, &q, table, strlen(table));
  hb_buf_lit(&q, " ORDER BY c.ORDINAL_POSITION");
  hb_buf_putc(&q, '\0');
  snprintf(what, sizeof(what), "snapshot reader: columns of %s.%s", db, table);
  rc = query(r, q.p, what, err, errlen);
  hb_buf_free(&q);
  if (rc < 0) {
    mysql_free_result(kres);
    return rc;
  }
  MYSQL_RES *res = mysql_store_result(r->m);
  if (res == NULL) {
    mysql_free_result(kres);
    return sql_fail(r, what, err, errlen);
  }
  uint32_t n = (uint32_t)mysql_num_rows(res);
  if (n == 0) {
    mysql_free_result(res);
    mysql_free_result(kres);
    seterr(err, errlen, "table %s.%s does not exist", db, table);
    return -ENOENT;
  }
  d->db = hd_strdup(db);
  d->table = hd_strdup(table);
  d->c = hd_calloc(n, sizeof(*d->c));
  d->pk = hd_calloc(n, sizeof(*d->pk));
  d->spk = hd_calloc(n, sizeof(*d->spk));
  MYSQL_ROW row;
  uint32_t i = 0;
  rc = 0;
  while ((row = mysql_fetch_row(res)) != NULL && i < n) {
    scol_t *c = &d->c[i];
    d->ncols = i + 1;
    c->name = hd_strdup(row[0] ? row[0] : "");
    c->data_type = hd_strdup(row[1] ? row[1] : "");
    c->column_type = hd_strdup(row[2] ? row[2] : "");
    c->nullable = row[7] && !strcmp(row[7], "YES");
    c->charset = row[8] ? hd_strdup(row[8]) : NULL;
    c->is_unsigned = strstr(c->column_type, "unsigned") != NULL;
    if (column_type(c, row[3], row[4], row[5], row[6]) < 0 && rc == 0) {
      seterr(err, errlen,
             "table %s.%s column %s has type %s, which the snapshot reader "
             "cannot read yet",
             db, table, c->name, c->column_type);
      rc = HD_ESNAPSHOT;
    }
    uint32_t coll = row[9] ? (uint32_t)strtoul(row[9], NULL, 10) : 0;
    /* A table map gives binary strings and GEOMETRY the binary charset
     * (63); information_schema, and so the relay's lookup, none. */
    if (r->row_metadata != MD_NO_LOG && has_tm_charset(c) && coll == 0)
      coll = 63;
    c->coll = coll;
    mysql_data_seek(kres, 0);
    MYSQL_ROW kr;
    while ((kr = mysql_fetch_row(kres)) != NULL)
      if (kr[0] && kr[1] && strcmp(kr[0], c->name) == 0)
        c->key_pos = atoi(kr[1]);
    if (r->row_metadata != MD_FULL && row[10] && !strcmp(row[10], "PRI"))
      d->spk[d->nspk++] = i;
    i++;
  }
  mysql_free_result(res);
  mysql_free_result(kres);
  if (rc < 0)
    return rc;
  for (uint32_t k = 0; k < d->ncols; k++)
    if (d->c[k].key_pos > 0 && (uint32_t)d->c[k].key_pos <= d->ncols)
      d->npk++;
  for (uint32_t k = 0; k < d->ncols; k++)
    if (d->c[k].key_pos > 0 && (uint32_t)d->c[k].key_pos <= d->npk)
      d->pk[d->c[k].key_pos - 1] = k;
  if (r->row_metadata == MD_FULL) {
    /* FULL metadata states the key in key order. */
    memcpy(d->spk, d->pk, d->npk * sizeof(*d->pk));
    d->nspk = d->npk;
  }
  if (d->npk == 0) {
    seterr(err, errlen,
           "table %s.%s has no primary key: snapshots read tables in "
           "primary-key chunks",
           db, table);
    return HD_ESNAPSHOT;
  }
  return 0;
}

/* ------------------------------------------------------- binlog encoding */

static void put_lenenc(hb_buf_t *b, uint64_t v) {
  uint8_t t[9];
  size_t n;
  if (v < 251) {
    t[0] = (uint8_t)v;
    n = 1;
  } else if (v < 65536) {
    t[0] = 0xfc;
    t[1] = (uint8_t)v;
    t[2] = (uint8_t)(v >> 8);
    n = 3;
  } else if (v < 16777216) {
    t[0] = 0xfd;
    for (int i = 0; i < 3; i++)
      t[1 + i] = (uint8_t)(v >> (8 * i));
    n = 4;
  } else {
    t[0] = 0xfe;
    for (int i = 0; i < 8; i++)
      t[1 + i] = (uint8_t)(v >> (8 * i));
    n = 9;
  }
  hb_buf_put(b, t, n);
}

static void put_le(hb_buf_t *b, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    hb_buf_putc(b, (char)(uint8_t)(v >> (8 * i)));
}

static void put_be(hb_buf_t *b, uint64_t v, unsigned n) {
  for (unsigned i = n; i > 0; i--)
    hb_buf_putc(b, (char)(uint8_t)(v >> (8 * (i - 1))));
}

/* An event: the v4 header, then body (no checksum: the FDE says none). */
static int feed(hb_decoder_t *dec, uint8_t type, const hb_buf_t *body,
                uint64_t *pos) {
  size_t len = HB_EVENT_HEADER_LEN + body->len;
  uint8_t *ev = hd_malloc(len);
  uint8_t h[HB_EVENT_HEADER_LEN] = {0};
  h[4] = type;
  for (int i = 0; i < 4; i++) {
    h[9 + i] = (uint8_t)(len >> (8 * i));
    h[13 + i] = (uint8_t)((*pos + len) >> (8 * i));
  }
  memcpy(ev, h, sizeof(h));
  if (body->len)
    memcpy(ev + HB_EVENT_HEADER_LEN, body->p, body->len);
  int rc = hb_decoder_feed(dec, ev, len, *pos);
  free(ev);
  *pos += len;
  return rc;
}

/* FORMAT_DESCRIPTION of a MariaDB 10.11 without checksums: what the
 * decoder needs to read a TABLE_MAP and WRITE_ROWS_V1 (post-headers 8). */
static int feed_fde(hb_decoder_t *dec, uint64_t *pos) {
  hb_buf_t b = {0};
  put_le(&b, 4, 2);
  char sv[50] = "10.11.0-MariaDB";
  hb_buf_put(&b, sv, sizeof(sv));
  put_le(&b, 0, 4);
  hb_buf_putc(&b, HB_EVENT_HEADER_LEN);
  uint8_t ph[40] = {0};
  ph[HB_EV_TABLE_MAP - 1] = 8;
  ph[HB_EV_WRITE_ROWS_V1 - 1] = 8;
  hb_buf_put(&b, ph, sizeof(ph));
  hb_buf_putc(&b, 0); /* checksum algorithm: none */
  put_le(&b, 0, 4);
  int rc = feed(dec, HB_EV_FDE, &b, pos);
  hb_buf_free(&b);
  return rc;
}

/* The TABLE_MAP (table id 1) as MariaDB writes it, less the optional
 * metadata, which the schema provider gives. */
static int feed_table_map(hb_decoder_t *dec, const sdef_t *d, uint64_t *pos) {
  hb_buf_t b = {0};
  put_le(&b, 1, 6);
  put_le(&b, 0, 2);
  size_t dl = strlen(d->db), tl = strlen(d->table);
  hb_buf_putc(&b, (char)(uint8_t)dl);
  hb_buf_put(&b, d->db, dl);
  hb_buf_putc(&b, '\0');
  hb_buf_putc(&b, (char)(uint8_t)tl);
  hb_buf_put(&b, d->table, tl);
  hb_buf_putc(&b, '\0');
  put_lenenc(&b, d->ncols);
  for (uint32_t i = 0; i < d->ncols; i++) {
    uint8_t t = d->c[i].type;
    hb_buf_putc(&b, (char)(t == HB_T_ENUM || t == HB_T_SET ? HB_T_STRING : t));
  }
  size_t ml = 0;
  for (uint32_t i = 0; i < d->ncols; i++)
    ml += d->c[i].mbytes;
  put_lenenc(&b, ml);
  for (uint32_t i = 0; i < d->ncols; i++)
    hb_buf_put(&b, d->c[i].m, d->c[i].mbytes);
  size_t nb = (d->ncols + 7) / 8;
  hb_buf_reserve(&b, nb);
  memset(b.p + b.len, 0, nb);
  for (uint32_t i = 0; i < d->ncols; i++)
    if (d->c[i].nullable)
      b.p[b.len + i / 8] |= (char)(1 << (i % 8));
  b.len += nb;
  int rc = feed(dec, HB_EV_TABLE_MAP, &b, pos);
  hb_buf_free(&b);
  return rc;
}

/* The decoder's schema provider: what a FULL table map (or the relay's
 * information_schema lookup) says of the columns. */
static int schema_cb(void *ud, const char *db, const char *table,
                     uint32_t ncols, hb_schema_col_t *cols, uint32_t *pk,
                     uint32_t *npk) {
  const sdef_t *d = ud;
  (void)db;
  (void)table;
  if (ncols != d->ncols)
    return 1;
  for (uint32_t i = 0; i < ncols; i++) {
    const scol_t *c = &d->c[i];
    cols[i].name = c->name;
    cols[i].is_unsigned = c->is_unsigned;
    cols[i].charset = (int)c->coll;
    cols[i].nlabels = c->nlabels;
    cols[i].labels = (const char *const *)c->labels;
  }
  memcpy(pk, d->spk, d->nspk * sizeof(*pk));
  *npk = d->nspk;
  return 0;
}

/* DECIMAL text ("-12.3400") to the binlog's binary form: nine digits per
 * 4-byte big-endian word, partial groups in fewer bytes, the sign in the
 * inverted top bit, negative numbers with every byte inverted (the reverse
 * of hb__decimal_text). */
static int put_decimal(hb_buf_t *b, const char *s, size_t n, unsigned prec,
                       unsigned scale) {
  static const uint8_t dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
  int neg = n > 0 && s[0] == '-';
  size_t i = neg || (n > 0 && s[0] == '+') ? 1 : 0;
  char ip[80], fp[80];
  size_t il = 0, fl = 0;
  for (; i < n && s[i] != '.'; i++) {
    if (s[i] < '0' || s[i] > '9' || il >= sizeof(ip))
      return -1;
    if (il == 0 && s[i] == '0')
      continue; /* leading zeros */
    ip[il++] = s[i];
  }
  if (i < n && s[i] == '.')
    i++;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9' || fl >= sizeof(fp))
      return -1;
    fp[fl++] = s[i];
  }
  unsigned intg = prec - scale;
  if (il > intg || fl > scale)
    return -1;
  char digits[160];
  memset(digits, '0', intg - il);
  memcpy(digits + (intg - il), ip, il);
  memcpy(digits + intg, fp, fl);
  memset(digits + intg + fl, '0', scale - fl);
  size_t start = b->len;
  const char *dp = digits;
  unsigned groups[4] = {intg % 9, intg / 9, scale / 9, scale % 9};
  for (int g = 0; g < 4; g++) {
    unsigned count = g == 1 || g == 2 ? groups[g] : (groups[g] ? 1 : 0);
    unsigned width = g == 1 || g == 2 ? 9 : groups[g];
    for (unsigned k = 0; k < count; k++) {
      uint32_t v = 0;
      for (unsigned j = 0; j < width; j++)
        v = v * 10 + (uint32_t)(*dp++ - '0');
      put_be(b, v, width == 9 ? 4 : dig2bytes[width]);
    }
  }
  uint8_t *p = (uint8_t *)b->p + start;
  size_t len = b->len - start;
  if (len == 0)
    return -1;
  if (neg)
    for (size_t k = 0; k < len; k++)
      p[k] = (uint8_t)~p[k];
  p[0] ^= 0x80;
  return 0;
}

/* Days from 1970-01-01 to a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* The fraction of TIME2/DATETIME2/TIMESTAMP2: (fsp + 1) / 2 bytes,
 * big-endian, in hundredths, 1/10000ths or microseconds. frac may be
 * negative (TIME2), stored in two's complement of its width. */
static void put_frac(hb_buf_t *b, int64_t frac, unsigned fsp) {
  switch ((fsp + 1) / 2) {
  case 1:
    put_be(b, (uint64_t)(frac / 10000), 1);
    break;
  case 2:
    put_be(b, (uint64_t)(frac / 100), 2);
    break;
  case 3:
    put_be(b, (uint64_t)frac, 3);
    break;
  default:
    break;
  }
}

/* One temporal value in the table map type's storage format. */
static void put_temporal(hb_buf_t *b, const scol_t *c, const MYSQL_TIME *t) {
  switch (c->type) {
  case HB_T_DATE:
    put_le(b, t->day | t->month << 5 | (uint64_t)t->year << 9, 3);
    return;
  case HB_T_DATETIME2: {
    uint64_t ymd = ((uint64_t)t->year * 13 + t->month) << 5 | t->day;
    uint64_t hms = (uint64_t)t->hour << 12 | t->minute << 6 | t->second;
    put_be(b, (ymd << 17 | hms) + 0x8000000000ULL, 5);
    put_frac(b, t->second_part, c->fsp);
    return;
  }
  case HB_T_TIMESTAMP2: {
    int64_t secs = 0;
    if (t->year || t->month || t->day)
      secs = days_from_civil(t->year, t->month, t->day) * 86400 +
             t->hour * 3600 + t->minute * 60 + t->second;
    put_be(b, (uint64_t)secs, 4);
    put_frac(b, t->second_part, c->fsp);
    return;
  }
  case HB_T_TIME2: {
    /* MySQL's packed time (int part << 24 | microseconds, negated when
     * negative), stored as my_time_packed_to_binary() does: the int part
     * floored, the fraction as C's remainder. */
    uint64_t hours = t->hour + (uint64_t)t->day * 24;
    int64_t ip = (int64_t)(hours << 12 | t->minute << 6 | t->second);
    int64_t packed = ip * (1 << 24) + (int64_t)t->second_part;
    if (t->neg)
      packed = -packed;
    int64_t q = packed / (1 << 24), rem = packed % (1 << 24);
    int64_t ipart = rem < 0 ? q - 1 : q;
    if (c->fsp >= 5) {
      put_be(b, (uint64_t)(packed + 0x800000000000LL), 6);
      return;
    }
    put_be(b, (uint64_t)(ipart + 0x800000), 3);
    put_frac(b, rem, c->fsp);
    return;
  }
  default:
    return;
  }
}

/* ------------------------------------------------------------- the chunk */

void relay_snapchunk_free(relay_snapchunk_t *c) {
  if (c == NULL)
    return;
  hb_decoder_free(c->dec);
  free(c->rows);
  free(c->vals);
  free(c->text);
  free(c->file);
  free(c->last_key);
  free(c);
}

/* The decoder's window, copied out of its arena into the chunk. */
typedef struct {
  relay_snapchunk_t *ch;
  int got;
  int empty; /* the one row is the stand-in of an empty chunk */
} collect_t;

/* Whether a value's s/len mean anything: the decoder leaves them unset
 * for NULLs and numbers. */
static int has_text(const hb_value_t *v) {
  return v->kind >= HB_V_DECIMAL && v->s != NULL;
}

static int on_window(void *ud, const hb_window_t *w) {
  collect_t *cl = ud;
  relay_snapchunk_t *ch = cl->ch;
  size_t n = w->nrows;
  uint32_t ncols = n ? w->rows[0].table->ncols : 0;
  size_t text = 0;
  for (size_t i = 0; i < n; i++)
    for (uint32_t k = 0; k < ncols; k++)
      text += has_text(&w->rows[i].after[k]) ? w->rows[i].after[k].len : 0;
  ch->rows = hd_calloc(n ? n : 1, sizeof(*ch->rows));
  ch->vals = hd_calloc(n * ncols + 1, sizeof(*ch->vals));
  ch->text = hd_malloc(text + 1);
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    hb_value_t *v = &ch->vals[i * ncols];
    memcpy(v, w->rows[i].after, ncols * sizeof(*v));
    for (uint32_t k = 0; k < ncols; k++) {
      if (!has_text(&v[k])) {
        v[k].s = NULL;
        v[k].len = 0;
        continue;
      }
      if (v[k].len)
        memcpy(ch->text + off, v[k].s, v[k].len);
      v[k].s = ch->text + off;
      off += v[k].len;
    }
    ch->rows[i].op = 'r';
    ch->rows[i].table = w->rows[i].table;
    ch->rows[i].before = NULL;
    ch->rows[i].after = v;
  }
  ch->table = n ? w->rows[0].table : NULL;
  ch->win.nrows = cl->empty ? 0 : n;
  cl->got = 1;
  return 0;
}

static char *pb_copy(void *ud, const char *s, size_t n) {
  hb_buf_t *keep = ud;
  char *p = hd_strndup(s, n);
  hb_buf_put(keep, &p, sizeof(p));
  return p;
}

/* The last row's key values as a packed SnapshotKey. */
static void make_last_key(relay_snapchunk_t *ch, const sdef_t *d) {
  if (ch->win.nrows == 0)
    return;
  const hb_value_t *v = ch->rows[ch->win.nrows - 1].after;
  Herald__Value *pv = hd_calloc(d->npk, sizeof(*pv));
  Herald__Value **pp = hd_calloc(d->npk, sizeof(*pp));
  hb_buf_t keep = {0};
  for (uint32_t k = 0; k < d->npk; k++) {
    hb_value_to_pb(&v[d->pk[k]], &pv[k], pb_copy, &keep);
    pp[k] = &pv[k];
  }
  Herald__SnapshotKey key = HERALD__SNAPSHOT_KEY__INIT;
  key.n_values = d->npk;
  key.values = pp;
  size_t len = herald__snapshot_key__get_packed_size(&key);
  ch->last_key = hd_malloc(len ? len : 1);
  ch->last_key_len = herald__snapshot_key__pack(&key, ch->last_key);
  for (size_t i = 0; i + sizeof(char *) <= keep.len; i += sizeof(char *)) {
    char *p;
    memcpy(&p, keep.p + i, sizeof(p));
    free(p);
  }
  hb_buf_free(&keep);
  free(pv);
  free(pp);
}

/* One key value of after as an SQL literal that compares in the column's
 * own terms: numbers as numbers, ENUM/SET by index (their order), text as
 * a quoted string in the connection's charset (converted to the column's
 * and compared in its collation), binary strings as X'..'. */
static int key_literal(relay_snapread_t *r, const scol_t *c,
                       const Herald__Value *v, hb_buf_t *b) {
  char tmp[64];
  switch (v->kind_case) {
  case HERALD__VALUE__KIND_INT:
    snprintf(tmp, sizeof(tmp), "%" PRId64, v->int_);
    break;
  case HERALD__VALUE__KIND_UINT:
    snprintf(tmp, sizeof(tmp), "%" PRIu64, v->uint);
    break;
  case HERALD__VALUE__KIND_DBL:
    snprintf(tmp, sizeof(tmp), "%.17e", v->dbl);
    break;
  case HERALD__VALUE__KIND_FLT:
    snprintf(tmp, sizeof(tmp), "%.17e", (double)v->flt);
    break;
  case HERALD__VALUE__KIND_DECIMAL:
    for (const char *s = v->decimal; *s; s++)
      if (!strchr("0123456789.-", *s))
        return -1;
    hb_buf_put(b, v->decimal, strlen(v->decimal));
    return 0;
  case HERALD__VALUE__KIND_TEMPORAL:
    put_quoted(r, b, v->temporal, strlen(v->temporal));
    return 0;
  case HERALD__VALUE__KIND_STR:
    if (c->type == HB_T_ENUM || c->type == HB_T_SET) {
      /* The label(s) back to the index or bitmask (a label holds no
       * NUL: the bytes up to one are the labels). */
      uint64_t num = 0;
      char lab[1024];
      size_t ln = v->str.len < sizeof(lab) - 1 ? v->str.len : sizeof(lab) - 1;
      if (ln)
        memcpy(lab, v->str.data, ln);
      lab[ln] = '\0';
      const char *s = lab;
      if (c->type == HB_T_ENUM) {
        for (uint32_t k = 0; k < c->nlabels && *s; k++)
          if (strcmp(c->labels[k], s) == 0)
            num = k + 1;
      } else {
        while (*s) {
          size_t l = strcspn(s, ",");
          for (uint32_t k = 0; k < c->nlabels && k < 64; k++)
            if (strlen(c->labels[k]) == l && !strncmp(c->labels[k], s, l))
              num |= 1ULL << k;
          s += l + (s[l] == ',');
        }
      }
      snprintf(tmp, sizeof(tmp), "%" PRIu64, num);
      break;
    }
    put_quoted(r, b, (const char *)v->str.data, v->str.len);
    return 0;
  case HERALD__VALUE__KIND_JSON:
    put_quoted(r, b, v->json, strlen(v->json));
    return 0;
  case HERALD__VALUE__KIND_BIN:
    put_hex(b, v->bin.data, v->bin.len);
    return 0;
  case HERALD__VALUE__KIND_BADTEXT:
    /* Bytes not valid in the column's charset: an introducer keeps them
     * text of that charset, compared in the column's collation. */
    if (c->charset == NULL)
      return -1;
    hb_buf_putc(b, '_');
    hb_buf_put(b, c->charset, strlen(c->charset));
    hb_buf_putc(b, ' ');
    put_hex(b, v->badtext.data, v->badtext.len);
    return 0;
  default:
    return -1;
  }
  hb_buf_put(b, tmp, strlen(tmp));
  return 0;
}

/* WHERE for keys after the given one, the row comparison (k1, k2..) >
 * (v1, v2..) spelled out so that the range optimizer finds a range on the
 * key's first column whatever it does with row values:
 * k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...). */
static int where_after(relay_snapread_t *r, const sdef_t *d,
                       const uint8_t *after, size_t after_len, hb_buf_t *q,
                       char *err, size_t errlen) {
  Herald__SnapshotKey *key =
      herald__snapshot_key__unpack(NULL, after_len, after);
  if (key == NULL || key->n_values != d->npk) {
    seterr(err, errlen,
           "snapshot of %s.%s: the position's key is not a key of this "
           "table (%zu values, the primary key has %u columns)",
           d->db, d->table, key ? key->n_values : 0, d->npk);
    if (key)
      herald__snapshot_key__free_unpacked(key, NULL);
    return HD_ESNAPSHOT;
  }
  hb_buf_t *lit = hd_calloc(d->npk, sizeof(*lit));
  int rc = 0;
  for (uint32_t k = 0; k < d->npk && rc == 0; k++) {
    if (key_literal(r, &d->c[d->pk[k]], key->values[k], &lit[k]) < 0) {
      seterr(err, errlen,
             "snapshot of %s.%s: the position's value for key column %s "
             "cannot be compared with it",
             d->db, d->table, d->c[d->pk[k]].name);
      rc = HD_ESNAPSHOT;
    }
  }
  if (rc == 0) {
    hb_buf_lit(q, " WHERE ");
    if (d->npk > 1) {
      put_ident(q, d->c[d->pk[0]].name);
      hb_buf_lit(q, " >= ");
      hb_buf_put(q, lit[0].p, lit[0].len);
      hb_buf_lit(q, " AND (");
    }
    for (uint32_t k = 0; k < d->npk; k++) {
      if (k)
        hb_buf_lit(q, " OR ");
      hb_buf_putc(q, '(');
      for (uint32_t j = 0; j <= k; j++) {
        if (j)
          hb_buf_lit(q, " AND ");
        put_ident(q, d->c[d->pk[j]].name);
        if (j == k)
          hb_buf_lit(q, " > ");
        else
          hb_buf_lit(q, " = ");
        hb_buf_put(q, lit[j].p, lit[j].len);
      }
      hb_buf_putc(q, ')');
    }
    if (d->npk > 1)
      hb_buf_putc(q, ')');
  }
  for (uint32_t k = 0; k < d->npk; k++)
    hb_buf_free(&lit[k]);
  free(lit);
  herald__snapshot_key__free_unpacked(key, NULL);
  return rc;
}

/* The chunk's SELECT: every column in ordinal order, ENUM/SET as their
 * index or bitmask. */
static int chunk_sql(relay_snapread_t *r, const sdef_t *d, const uint8_t *after,
                     size_t after_len, uint32_t limit, hb_buf_t *q, char *err,
                     size_t errlen) {
  hb_buf_lit(q, "SELECT ");
  for (uint32_t i = 0; i < d->ncols; i++) {
    if (i)
      hb_buf_lit(q, ", ");
    put_ident(q, d->c[i].name);
    if (d->c[i].type == HB_T_ENUM || d->c[i].type == HB_T_SET)
      hb_buf_lit(q, " + 0");
  }
  hb_buf_lit(q, " FROM ");
  put_ident(q, d->db);
  hb_buf_putc(q, '.');
  put_ident(q, d->table);
  if (after && after_len) {
    int rc = where_after(r, d, after, after_len, q, err, errlen);
    if (rc < 0)
      return rc;
  }
  hb_buf_lit(q, " ORDER BY ");
  for (uint32_t k = 0; k < d->npk; k++) {
    if (k)
      hb_buf_lit(q, ", ");
    put_ident(q, d->c[d->pk[k]].name);
  }
  char tmp[32];
  snprintf(tmp, sizeof(tmp), " LIMIT %u", limit);
  hb_buf_put(q, tmp, strlen(tmp));
  hb_buf_putc(q, '\0');
  return 0;
}

/* What one column's value is fetched into. */
typedef struct {
  union {
    int64_t i;
    float f;
    double d;
    MYSQL_TIME t;
  } u;
  char *buf;
  unsigned long cap, len;
  my_bool isnull, error;
} cell_t;

/* Row i of the result as one WRITE_ROWS_V1 event body's row: null bitmap,
 * then the non-NULL values. */
static int encode_row(const sdef_t *d, const cell_t *cells, hb_buf_t *b,
                      const char **why) {
  size_t nb = (d->ncols + 7) / 8, at = b->len;
  hb_buf_reserve(b, nb);
  memset(b->p + at, 0, nb);
  b->len += nb;
  for (uint32_t i = 0; i < d->ncols; i++) {
    const scol_t *c = &d->c[i];
    const cell_t *x = &cells[i];
    if (x->isnull) {
      b->p[at + i / 8] |= (char)(1 << (i % 8));
      continue;
    }
    switch (c->type) {
    case HB_T_TINY:
    case HB_T_SHORT:
    case HB_T_INT24:
    case HB_T_LONG:
    case HB_T_LONGLONG:
    case HB_T_ENUM:
    case HB_T_SET:
      put_le(b, (uint64_t)x->u.i, c->size);
      break;
    case HB_T_YEAR:
      hb_buf_putc(b, (char)(uint8_t)(x->u.i ? x->u.i - 1900 : 0));
      break;
    case HB_T_FLOAT:
      hb_buf_put(b, &x->u.f, 4);
      break;
    case HB_T_DOUBLE:
      hb_buf_put(b, &x->u.d, 8);
      break;
    case HB_T_NEWDECIMAL:
      if (put_decimal(b, x->buf, x->len, c->prec, c->scale) < 0) {
        *why = "DECIMAL value does not fit the column's precision";
        return -1;
      }
      break;
    case HB_T_DATE:
    case HB_T_TIME2:
    case HB_T_DATETIME2:
    case HB_T_TIMESTAMP2:
      put_temporal(b, c, &x->u.t);
      break;
    case HB_T_BIT: {
      uint64_t v = 0;
      for (unsigned long k = 0; k < x->len; k++)
        v = v << 8 | (uint8_t)x->buf[k];
      put_be(b, v, c->size);
      break;
    }
    case HB_T_STRING: {
      if (x->len > c->octets) {
        *why = "CHAR value longer than the column";
        return -1;
      }
      /* The binlog stores BINARY without its trailing zero bytes (CHAR
       * without trailing spaces, as SELECT returns it too); the decoder
       * pads them back only when it knows the column is binary. */
      unsigned long n = x->len;
      if (c->charset == NULL)
        while (n > 0 && x->buf[n - 1] == '\0')
          n--;
      put_le(b, n, c->size);
      hb_buf_put(b, x->buf, n);
      break;
    }
    default:
      put_le(b, x->len, c->size);
      hb_buf_put(b, x->buf, x->len);
      break;
    }
  }
  return 0;
}

/* Fetch buffers by column: the binary protocol's exact values (floats'
 * bits, MYSQL_TIME fields, bytes as stored). */
static void bind_cells(const sdef_t *d, MYSQL_RES *meta, MYSQL_BIND *bd,
                       cell_t *cells) {
  MYSQL_FIELD *f = mysql_fetch_fields(meta);
  for (uint32_t i = 0; i < d->ncols; i++) {
    const scol_t *c = &d->c[i];
    cell_t *x = &cells[i];
    MYSQL_BIND *b = &bd[i];
    b->is_null = &x->isnull;
    b->error = &x->error;
    b->length = &x->len;
    switch (c->rk) {
    case RK_INT:
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = &x->u.i;
      b->is_unsigned =
          c->is_unsigned || c->type == HB_T_ENUM || c->type == HB_T_SET;
      break;
    case RK_FLOAT:
      b->buffer_type = MYSQL_TYPE_FLOAT;
      b->buffer = &x->u.f;
      break;
    case RK_DOUBLE:
      b->buffer_type = MYSQL_TYPE_DOUBLE;
      b->buffer = &x->u.d;
      break;
    case RK_TIME:
      b->buffer_type = c->type == HB_T_DATE    ? MYSQL_TYPE_DATE
                       : c->type == HB_T_TIME2 ? MYSQL_TYPE_TIME
                                               : MYSQL_TYPE_DATETIME;
      b->buffer = &x->u.t;
      break;
    default: {
      /* Sized by the chunk's largest value (STMT_ATTR_UPDATE_MAX_LENGTH). */
      unsigned long want = f[i].max_length + 1;
      if (want > x->cap) {
        free(x->buf);
        x->buf = hd_malloc(want);
        x->cap = want;
      }
      b->buffer_type = MYSQL_TYPE_BLOB;
      b->buffer = x->buf;
      b->buffer_length = x->cap;
      break;
    }
    }
  }
}

/* The snapshot's position: Binlog_snapshot_file/_position, read inside
 * the transaction. */
static int snapshot_pos(relay_snapread_t *r, const sdef_t *d, char **file,
                        uint64_t *pos, char *err, size_t errlen) {
  int rc = query(r, "SHOW STATUS LIKE 'binlog_snapshot%'",
                 "snapshot reader: SHOW STATUS", err, errlen);
  if (rc < 0)
    return rc;
  MYSQL_RES *res = mysql_store_result(r->m);
  if (res == NULL)
    return sql_fail(r, "snapshot reader: SHOW STATUS", err, errlen);
  MYSQL_ROW row;
  char *f = NULL;
  int have_pos = 0;
  while ((row = mysql_fetch_row(res)) != NULL) {
    if (row[0] == NULL || row[1] == NULL)
      continue;
    if (!strcasecmp(row[0], "Binlog_snapshot_file")) {
      free(f);
      f = hd_strdup(row[1]);
    } else if (!strcasecmp(row[0], "Binlog_snapshot_position")) {
      have_pos = hd_parse_u64(row[1], pos) == 0;
    }
  }
  mysql_free_result(res);
  if (f == NULL || !have_pos || f[0] == '\0') {
    free(f);
    seterr(err, errlen,
           "snapshot of %s.%s: the source gives no Binlog_snapshot_file/"
           "_position (MySQL has none; MariaDB needs log_bin): the chunk's "
           "SCN cannot be known",
           d->db, d->table);
    return HD_ESNAPSHOT;
  }
  *file = f;
  return 0;
}

/* The source's binlog position now (the DBLog window's watermarks):
 * SHOW MASTER STATUS, or SHOW BINARY LOG STATUS where MySQL 8.4 dropped
 * the first. */
static int master_pos(relay_snapread_t *r, const sdef_t *d, char **file,
                      uint64_t *pos, char *err, size_t errlen) {
  static const char *const qs[] = {"SHOW MASTER STATUS",
                                   "SHOW BINARY LOG STATUS"};
  for (size_t i = 0; i < 2; i++) {
    if (mysql_query(r->m, qs[i]) != 0) {
      if (i == 0 && mysql_errno(r->m) == ER_PARSE_ERROR)
        continue;
      return sql_fail(r, "snapshot reader: the binlog position", err, errlen);
    }
    MYSQL_RES *res = mysql_store_result(r->m);
    if (res == NULL)
      return sql_fail(r, "snapshot reader: the binlog position", err, errlen);
    MYSQL_ROW row = mysql_fetch_row(res);
    int ok =
        row && row[0] && row[0][0] && row[1] && hd_parse_u64(row[1], pos) == 0;
    if (ok)
      *file = hd_strdup(row[0]);
    mysql_free_result(res);
    if (ok)
      return 0;
    break;
  }
  seterr(err, errlen,
         "snapshot of %s.%s: %s gives no binlog position (log_bin off, or "
         "the user lacks REPLICATION CLIENT / BINLOG MONITOR)",
         d->db, d->table, qs[0]);
  return HD_ESNAPSHOT;
}

/* Rows events of at most this many bytes: one event per this much of the
 * chunk keeps the buffer small next to the decoder's copy. */
#define ROWS_EVENT_BYTES (1u << 20)

static int chunk_once(relay_snapread_t *r, const char *db, const char *table,
                      const uint8_t *after, size_t after_len, uint32_t limit,
                      relay_snapchunk_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (limit == 0) {
    seterr(err, errlen, "snapshot of %s.%s: chunk size 0", db, table);
    return -EINVAL;
  }
  int rc = connect_src(r, err, errlen);
  if (rc < 0)
    return rc;
  int window = r->window;
  sdef_t d;
  rc = load_def(r, db, table, &d, err, errlen);
  if (rc < 0) {
    sdef_free(&d);
    return rc;
  }
  hb_buf_t q = {0};
  rc = chunk_sql(r, &d, after, after_len, limit, &q, err, errlen);
  if (rc < 0) {
    hb_buf_free(&q);
    sdef_free(&d);
    return rc;
  }

  char what[600];
  snprintf(what, sizeof(what), "snapshot of %s.%s", db, table);
  relay_snapchunk_t *ch = hd_calloc(1, sizeof(*ch));
  MYSQL_STMT *st = mysql_stmt_init(r->m);
  MYSQL_RES *meta = NULL;
  MYSQL_BIND *bd = hd_calloc(d.ncols, sizeof(*bd));
  cell_t *cells = hd_calloc(d.ncols, sizeof(*cells));
  hb_buf_t ev = {0};
  int in_txn = 0, lost = 0;
  uint64_t spos = 0, lpos = 0;
  char *lfile = NULL;
  if (st == NULL) {
    rc = sql_fail(r, what, err, errlen);
    goto out;
  }
  if (mysql_stmt_prepare(st, q.p, (unsigned long)strlen(q.p)) != 0) {
    unsigned e = mysql_stmt_errno(st);
    seterr(err, errlen, "%s: %s (error %u)", what, mysql_stmt_error(st), e);
    rc = e == ER_NO_SUCH_TABLE ? -ENOENT : -EIO;
    if (e >= CLIENT_ERRORS) {
      mysql_stmt_close(st);
      st = NULL;
      drop_conn(r);
    }
    goto out;
  }
  if (mysql_stmt_field_count(st) != d.ncols) {
    seterr(err, errlen, "%s: the table changed while it was read", what);
    rc = -EAGAIN;
    goto out;
  }
  my_bool upd = 1;
  mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &upd);

  if (window) {
    /* The low watermark, then the SELECT alone (its own consistent
     * read), then the high one. */
    rc = master_pos(r, &d, &lfile, &lpos, err, errlen);
  } else {
    /* The transaction: as short as one SELECT, no locks. */
    rc = query(r, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", what,
               err, errlen);
    if (rc < 0)
      goto out;
    in_txn = 1;
    rc = snapshot_pos(r, &d, &ch->file, &spos, err, errlen);
  }
  if (rc < 0)
    goto out;
  if (mysql_stmt_execute(st) != 0 || mysql_stmt_store_result(st) != 0) {
    unsigned e = mysql_stmt_errno(st);
    seterr(err, errlen, "%s: %s (error %u)", what, mysql_stmt_error(st), e);
    rc = e == ER_NO_SUCH_TABLE ? -ENOENT : -EIO;
    lost = e >= CLIENT_ERRORS;
    goto out;
  }
  if (window) {
    rc = master_pos(r, &d, &ch->file, &spos, err, errlen);
  } else {
    rc = query(r, "COMMIT", what, err, errlen);
    in_txn = 0;
  }
  if (rc < 0)
    goto out;

  uint64_t fidx = hb_file_index(ch->file);
  uint64_t lidx = window ? hb_file_index(lfile) : fidx;
  if (!window)
    lpos = spos;
  if (fidx > UINT32_MAX || spos > UINT32_MAX || lidx > UINT32_MAX ||
      lpos > UINT32_MAX) {
    seterr(err, errlen, "%s: snapshot position %s:%" PRIu64 " has no SCN", what,
           ch->file, spos);
    rc = HD_ESNAPSHOT;
    goto out;
  }

  /* The decoder of this chunk: FDE, GTID, TABLE_MAP, rows, XID. */
  hb_config_t cfg = {0};
  collect_t cl = {ch, 0, 0};
  cfg.on_window = on_window;
  cfg.schema = schema_cb;
  cfg.ud = &d;
  ch->dec = hb_decoder_new(&cfg);
  hb_decoder_set_file(ch->dec, ch->file);
  hb_decoder_set_ud(ch->dec, &d);
  uint64_t epos = 4;
  rc = feed_fde(ch->dec, &epos);
  if (rc == 0) {
    hb_buf_t g = {0};
    put_le(&g, 1, 8);   /* sequence */
    put_le(&g, 0, 4);   /* domain */
    hb_buf_putc(&g, 0); /* flags: a transaction, not standalone */
    rc = feed(ch->dec, HB_EV_MARIA_GTID, &g, &epos);
    hb_buf_free(&g);
  }
  if (rc == 0)
    rc = feed_table_map(ch->dec, &d, &epos);
  /* The window callback's user data from here on. */
  hb_decoder_set_ud(ch->dec, &cl);
  meta = mysql_stmt_result_metadata(st);
  if (rc == 0 && meta == NULL) {
    rc = -EIO;
    seterr(err, errlen, "%s: no result metadata: %s", what,
           mysql_stmt_error(st));
    goto out;
  }
  if (rc == 0)
    bind_cells(&d, meta, bd, cells);
  if (rc == 0 && mysql_stmt_bind_result(st, bd) != 0) {
    seterr(err, errlen, "%s: %s", what, mysql_stmt_error(st));
    rc = -EIO;
    goto out;
  }
  size_t nrows = 0, hdr = 0;
  const char *why = NULL;
  while (rc == 0) {
    int f = mysql_stmt_fetch(st);
    if (f == MYSQL_NO_DATA)
      break;
    if (f != 0) {
      seterr(err, errlen, "%s: fetching row %zu: %s", what, nrows + 1,
             f == MYSQL_DATA_TRUNCATED ? "a value was truncated"
                                       : mysql_stmt_error(st));
      rc = -EIO;
      break;
    }
    if (ev.len == 0) {
      put_le(&ev, 1, 6);
      put_le(&ev, 0, 2);
      put_lenenc(&ev, d.ncols);
      size_t nb = (d.ncols + 7) / 8;
      hb_buf_reserve(&ev, nb);
      memset(ev.p + ev.len, 0xff, nb);
      ev.len += nb;
      hdr = ev.len;
    }
    if (encode_row(&d, cells, &ev, &why) < 0) {
      seterr(err, errlen, "%s: row %zu: %s", what, nrows + 1, why);
      rc = HD_ESNAPSHOT;
      break;
    }
    nrows++;
    if (ev.len >= ROWS_EVENT_BYTES) {
      rc = feed(ch->dec, HB_EV_WRITE_ROWS_V1, &ev, &epos);
      ev.len = 0;
    }
  }
  if (rc == 0 && nrows == 0) {
    /* No rows: one row of NULLs, dropped in on_window, so that the chunk
     * still has the decoder's table (and its schema version). */
    put_le(&ev, 1, 6);
    put_le(&ev, 0, 2);
    put_lenenc(&ev, d.ncols);
    size_t nb = (d.ncols + 7) / 8;
    hb_buf_reserve(&ev, 2 * nb);
    memset(ev.p + ev.len, 0xff, 2 * nb);
    ev.len += 2 * nb;
    hdr = 0;
    cl.empty = 1;
  }
  if (rc == 0 && ev.len > hdr)
    rc = feed(ch->dec, HB_EV_WRITE_ROWS_V1, &ev, &epos);
  if (rc == 0) {
    hb_buf_t x = {0};
    put_le(&x, 0, 8);
    rc = feed(ch->dec, HB_EV_XID, &x, &epos);
    hb_buf_free(&x);
  }
  if (rc < 0 && rc != -EIO && rc != HD_ESNAPSHOT) {
    seterr(err, errlen, "%s: decoding the rows: %s", what,
           hb_decoder_errmsg(ch->dec));
    rc = HD_ESNAPSHOT;
  }
  if (rc < 0)
    goto out;
  if (!cl.got || ch->table == NULL) {
    seterr(err, errlen, "%s: the decoder gave no table", what);
    rc = HD_ESNAPSHOT;
    goto out;
  }
  ch->win.rows = ch->rows;
  ch->win.scn = fidx << 32 | spos;
  ch->win.file = ch->file;
  ch->win.file_index = (uint32_t)fidx;
  ch->win.end_pos = (uint32_t)spos;
  ch->win.begin_pos = spos;
  for (size_t i = 0; i < ch->win.nrows; i++)
    ch->rows[i].pos = spos;
  ch->scn_high = ch->win.scn;
  ch->scn_low = lidx << 32 | lpos;
  if (ch->scn_low > ch->scn_high) {
    seterr(err, errlen,
           "%s: the binlog position went back during the chunk (%s:%" PRIu64
           " then %s:%" PRIu64 ")",
           what, lfile ? lfile : "?", lpos, ch->file, spos);
    rc = -EAGAIN;
    goto out;
  }
  ch->table_done = ch->win.nrows < limit;
  make_last_key(ch, &d);
  rc = 0;

out:
  free(lfile);
  if (meta)
    mysql_free_result(meta);
  if (st)
    mysql_stmt_close(st);
  if (lost)
    drop_conn(r);
  else if (in_txn && r->m && mysql_query(r->m, "ROLLBACK") != 0)
    drop_conn(r);
  for (uint32_t i = 0; i < d.ncols; i++)
    free(cells[i].buf);
  free(cells);
  free(bd);
  hb_buf_free(&ev);
  hb_buf_free(&q);
  sdef_free(&d);
  if (rc < 0) {
    relay_snapchunk_free(ch);
    return rc;
  }
  *out = ch;
  return 0;
}

int relay_snapread_chunk(relay_snapread_t *r, const char *db, const char *table,
                         const uint8_t *after, size_t after_len, uint32_t limit,
                         relay_snapchunk_t **out, char *err, size_t errlen) {
  int had_conn = r->m != NULL;
  int rc = chunk_once(r, db, table, after, after_len, limit, out, err, errlen);
  /* A connection that was lost while idle (wait_timeout, a restart of the
   * source, a KILL) is found by the first statement: the chunk is only
   * reads, so it is read again once on a new connection. */
  if (rc < 0 && had_conn && r->m == NULL)
    rc = chunk_once(r, db, table, after, after_len, limit, out, err, errlen);
  return rc;
}
