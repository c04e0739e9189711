/*
 * sink_pg.c - the PostgreSQL driver of the database sinks (sink.type
 * postgresql), over libpq: its connections and their session settings,
 * transactions, the offsets row and its lock, the destination's tables
 * (the type mapping of docs/sinks.md, section "postgresql"), and the runs
 * of operations: one prepared statement per shape, the values converted
 * from the stream's MariaDB/MySQL types, a run sent through libpq's
 * pipeline mode so that a thousand operations cost one round trip.
 *
 * Statements are per connection, tables per (table, version) and
 * partition, and either may go first: the connection keeps its prepared
 * statements keyed by the table's driver state (pg_tab_t, reference
 * counted, so that its address is never reused while a statement names
 * it) and the shape. table_free() only marks the state dropped; the
 * connection deallocates the statements of dropped tables (and of those
 * evicted beyond STMT_MAX) at its next begin(), outside any transaction.
 *
 * Errors of a run: run_add() never fails. What it finds (a value that
 * cannot be converted, a statement the server refused, found when the
 * pipeline is flushed, possibly for an earlier operation) is latched with
 * the index of its operation, later operations are ignored, and run_end()
 * reports it with *bad: sink_db.h gives only run_end() a *bad, and an
 * error from run_add() could not say which operation it was.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "agent_util.h"
#include "hd_err.h"
#include "hd_http.h" /* hd_buf_t */
#include "hd_log.h"
#include "hd_mem.h"
#include "sink_db.h"

#define COMP "sink-pg"

/* Operations sent before the pipeline is synced and their results read:
 * bounds libpq's buffers and the values kept for error messages. */
#define PIPE_MAX_OPS 1000
#define PIPE_MAX_BYTES ((size_t)8 << 20)
/* Prepared statements a connection keeps; beyond, the least recently used
 * is deallocated. */
#define STMT_MAX 256
/* Attempts of a CREATE ... IF NOT EXISTS that raced another agent's. */
#define DDL_TRIES 5

/* ------------------------------------------------------ type mapping */

/* How a column's values are converted (and which PostgreSQL type
 * table_create() gives it). */
typedef enum {
  K_OTHER, /* no mapping: sent by the value's own type */
  K_INT,
  K_FLOAT,
  K_DOUBLE,
  K_DECIMAL,
  K_BIT,
  K_DATE,
  K_DATETIME,
  K_TIMESTAMP,
  K_TIME,
  K_TEXT,
  K_ENUM,
  K_SET,
  K_JSON,
  K_BYTEA
} pg_kind_t;

/* MariaDB/MySQL base types. type is the PostgreSQL type (utype for
 * UNSIGNED); NULL: made from the column's length, precision or fsp. */
static const struct {
  const char *base;
  pg_kind_t kind;
  const char *type, *utype;
} pg_types[] = {
    /* one size up where UNSIGNED needs it: every source value fits */
    {"tinyint", K_INT, "smallint", "smallint"},
    {"smallint", K_INT, "smallint", "integer"},
    {"mediumint", K_INT, "integer", "integer"},
    {"int", K_INT, "integer", "bigint"},
    {"integer", K_INT, "integer", "bigint"},
    {"bigint", K_INT, "bigint", "numeric(20)"},
    {"year", K_INT, "smallint", "smallint"},
    {"decimal", K_DECIMAL, NULL, NULL},
    {"numeric", K_DECIMAL, NULL, NULL},
    {"float", K_FLOAT, "real", "real"},
    {"double", K_DOUBLE, "double precision", "double precision"},
    {"bit", K_BIT, NULL, NULL},
    {"date", K_DATE, "date", "date"},
    {"time", K_TIME, "interval", "interval"},
    {"datetime", K_DATETIME, NULL, NULL},
    {"timestamp", K_TIMESTAMP, NULL, NULL},
    {"char", K_TEXT, NULL, NULL},
    {"varchar", K_TEXT, NULL, NULL},
    {"tinytext", K_TEXT, "text", "text"},
    {"text", K_TEXT, "text", "text"},
    {"mediumtext", K_TEXT, "text", "text"},
    {"longtext", K_TEXT, "text", "text"},
    {"enum", K_ENUM, "text", "text"},
    {"set", K_SET, "text", "text"},
    {"json", K_JSON, "jsonb", "jsonb"},
    {"binary", K_BYTEA, "bytea", "bytea"},
    {"varbinary", K_BYTEA, "bytea", "bytea"},
    {"tinyblob", K_BYTEA, "bytea", "bytea"},
    {"blob", K_BYTEA, "bytea", "bytea"},
    {"mediumblob", K_BYTEA, "bytea", "bytea"},
    {"longblob", K_BYTEA, "bytea", "bytea"},
    {"geometry", K_BYTEA, "bytea", "bytea"},
    {"point", K_BYTEA, "bytea", "bytea"},
    {"linestring", K_BYTEA, "bytea", "bytea"},
    {"polygon", K_BYTEA, "bytea", "bytea"},
    {"multipoint", K_BYTEA, "bytea", "bytea"},
    {"multilinestring", K_BYTEA, "bytea", "bytea"},
    {"multipolygon", K_BYTEA, "bytea", "bytea"},
    {"geometrycollection", K_BYTEA, "bytea", "bytea"},
};

/* What the driver knows of one column. */
typedef struct {
  pg_kind_t kind;
  uint32_t bits; /* K_BIT: n of BIT(n), 1..64 */
} pg_col_t;

/* BIT(n)'s n: the column's length, else its sql_type; 0 when neither says
 * a width PostgreSQL's bit(n) can take for a 64-bit value. */
static uint32_t bit_width(const herald_column_t *d) {
  unsigned n = d->length;
  if (n == 0 && d->sql_type && sscanf(d->sql_type, "bit(%u)", &n) != 1)
    n = 0;
  return n <= 64 ? n : 0;
}

/* The column's kind, and its PostgreSQL type into type (NULL: not
 * wanted). Returns -1 when the column has no mapping (kind K_OTHER). */
static int col_map(const herald_column_t *d, pg_col_t *pc, char *type,
                   size_t typelen) {
  memset(pc, 0, sizeof(*pc));
  const char *base = d->base_type ? d->base_type : "";
  size_t i = 0;
  while (i < sizeof(pg_types) / sizeof(pg_types[0]) &&
         strcmp(pg_types[i].base, base) != 0)
    i++;
  if (i == sizeof(pg_types) / sizeof(pg_types[0]))
    return -1;
  pc->kind = pg_types[i].kind;
  char buf[64];
  const char *t = d->is_unsigned == 1 ? pg_types[i].utype : pg_types[i].type;
  if (t == NULL) {
    t = buf;
    switch (pc->kind) {
    case K_DECIMAL:
      if (d->precision)
        snprintf(buf, sizeof(buf), "numeric(%u,%u)", d->precision, d->scale);
      else
        snprintf(buf, sizeof(buf), "numeric");
      break;
    case K_BIT:
      pc->bits = bit_width(d);
      if (pc->bits == 0) {
        pc->kind = K_OTHER;
        return -1;
      }
      snprintf(buf, sizeof(buf), "bit(%u)", pc->bits);
      break;
    case K_DATETIME:
      snprintf(buf, sizeof(buf), "timestamp(%u)", d->fsp <= 6 ? d->fsp : 6);
      break;
    case K_TIMESTAMP:
      snprintf(buf, sizeof(buf), "timestamptz(%u)", d->fsp <= 6 ? d->fsp : 6);
      break;
    default: /* char, varchar: characters, as PostgreSQL counts them */
      if (d->length)
        snprintf(buf, sizeof(buf), "varchar(%u)", d->length);
      else
        snprintf(buf, sizeof(buf), "varchar");
      break;
    }
  }
  if (type)
    snprintf(type, typelen, "%s", t);
  return 0;
}

/* The driver's state of a table (t->drv): its columns' kinds. Referenced
 * by the table and by every statement a connection prepared for it. */
typedef struct {
  atomic_int refs;
  atomic_int dropped; /* table_free() ran */
  size_t ncols;
  pg_col_t *cols;
} pg_tab_t;

static pg_tab_t *tab_of(db_table_t *t) {
  if (t->drv == NULL) {
    pg_tab_t *pt = hd_calloc(1, sizeof(*pt));
    atomic_init(&pt->refs, 1);
    atomic_init(&pt->dropped, 0);
    pt->ncols = t->ncols;
    pt->cols = hd_calloc(t->ncols, sizeof(*pt->cols));
    for (size_t i = 0; i < t->ncols; i++)
      col_map(&t->cols[i].def, &pt->cols[i], NULL, 0);
    t->drv = pt;
  }
  return t->drv;
}

static void tab_release(pg_tab_t *pt) {
  if (atomic_fetch_sub(&pt->refs, 1) == 1) {
    free(pt->cols);
    free(pt);
  }
}

static void pg_table_free(db_table_t *t) {
  pg_tab_t *pt = t->drv;
  if (pt == NULL)
    return;
  atomic_store(&pt->dropped, 1);
  tab_release(pt);
  t->drv = NULL;
}

/* ------------------------------------------------------- connections */

/* A statement prepared on one connection for one table and shape. */
typedef struct {
  pg_tab_t *tab; /* a reference */
  int kind;
  size_t nset, nwhere;
  uint32_t *cols; /* set[] then where[] */
  int *formats;   /* per parameter: 1 (binary) for bytea, else 0 (text) */
  uint64_t used;  /* the connection's clock at its last use */
  char name[24];
} pg_stmt_t;

/* A parameter of a kept operation: off into the arena; len -1 for NULL. */
typedef struct {
  size_t off;
  int len;
} pg_param_t;

/* pg_param_t.len of an operation's parameters after one was refused by
 * put_value: that one, and those after it (never converted); -1 is NULL. */
#define PARAM_REFUSED (-2)
#define PARAM_UNREAD (-3)

struct db_conn {
  PGconn *pg;
  const db_conf_t *k;
  int ddl;
  char *offq; /* the offsets table's name, quoted */

  pg_stmt_t **stmts;
  size_t nstmts;
  char **dead; /* names to deallocate at the next begin() */
  size_t ndead;
  uint64_t clock, serial;

  /* the run */
  db_shape_t sh;
  pg_stmt_t *st;      /* its statement */
  pg_stmt_t *ins;     /* DB_UPDATE_ROW: the insert when no row matched */
  int pipe;           /* in pipeline mode */
  size_t np;          /* parameters per operation */
  size_t nops;        /* operations added since run_start */
  size_t base;        /* the run index of the first kept operation */
  size_t nkept;       /* operations kept: sent and not yet known to be done */
  pg_param_t *params; /* nkept * np */
  size_t capparams;
  const char **vals; /* one operation's, for libpq */
  int *lens;
  size_t capvals;
  hd_buf_t arena; /* their values' bytes */
  int flushed;    /* the run was flushed; more of it may come */
  int rc;         /* the run's first error, latched */
  size_t bad;
  char rerr[1024];
};

/* libpq prints NOTICEs ("relation exists, skipping") on stderr unless
 * told otherwise; they are the log's, at debug level. */
static void pg_notice(void *arg, const char *msg) {
  (void)arg;
  hd_log(HD_LL_DEBUG, COMP, "server notice", "msg=\"%.*s\"",
         (int)strcspn(msg, "\n"), msg);
}

/* libpq's own message (connection failures), on one line. */
static const char *conn_msg(PGconn *pg) {
  static _Thread_local char buf[512];
  const char *m = pg ? PQerrorMessage(pg) : "out of memory";
  snprintf(buf, sizeof(buf), "%s", m && *m ? m : "connection failed");
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\t')
      *p = (p[1] ? ' ' : '\0');
  return buf;
}

/* What an error means to the agent (sink_db.h). */
static int sqlstate_code(const char *st) {
  if (st == NULL)
    return HD_ESINK_DB;
  if (strncmp(st, "22", 2) == 0 || strcmp(st, "23502") == 0)
    return HD_ESINK_VALUE;
  if (strcmp(st, "42P01") == 0 || strcmp(st, "42703") == 0 ||
      strcmp(st, "3F000") == 0)
    return HD_ESINK_SCHEMA;
  return HD_ESINK_DB;
}

/* Fills err with "what[: column]: message (SQLSTATE s[; detail])" from a
 * failed result (or the connection's message when r has none) and
 * returns its code. */
static int res_err(PGconn *pg, const PGresult *r, const char *what,
                   const char *column, char *err, size_t errlen) {
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *det = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
  if (msg == NULL)
    return hd_errorf(err, errlen, HD_ESINK_DB, "%s: %s", what, conn_msg(pg));
  return hd_errorf(err, errlen, sqlstate_code(st),
                   "%s%s%s: %s (SQLSTATE %s%s%s)", what,
                   column ? ": column " : "", column ? column : "", msg,
                   st ? st : "?", det ? "; " : "", det ? det : "");
}

/* One statement without parameters; 0 or the error. */
static int exec_sql(db_conn_t *c, const char *what, const char *sql, char *err,
                    size_t errlen) {
  PGresult *r = PQexec(c->pg, sql);
  ExecStatusType s = PQresultStatus(r);
  int rc = 0;
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
    rc = res_err(c->pg, r, what, NULL, err, errlen);
  PQclear(r);
  return rc;
}

/* One statement with text parameters; the result (PQclear it) when it
 * succeeded, else NULL with err filled. */
static PGresult *exec_params(db_conn_t *c, const char *what, const char *sql,
                             int n, const char *const *vals, int *rc, char *err,
                             size_t errlen) {
  PGresult *r = PQexecParams(c->pg, sql, n, NULL, vals, NULL, NULL, 0);
  ExecStatusType s = PQresultStatus(r);
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
    *rc = 0;
    return r;
  }
  *rc = res_err(c->pg, r, what, NULL, err, errlen);
  PQclear(r);
  return NULL;
}

/* Appends "ns"."name". */
static void put_qname(hd_buf_t *b, const char *ns, const char *name) {
  db_quote(&b->p, &b->len, &b->cap, ns, 'p');
  hd_buf_printf(b, ".");
  db_quote(&b->p, &b->len, &b->cap, name, 'p');
  hd_buf_printf(b, "%s", ""); /* NUL-terminated whatever db_quote does */
}

/* TLS to PostgreSQL is libpq's own, set in sink.dsn (docs/sinks.md):
 * sslmode verify-full (with sslrootcert) is the one that both encrypts and
 * verifies the server's certificate and name. A weaker one to a server
 * that is not on this machine is warned about, once per agent. */
static void pg_tls_warn(PGconn *pg) {
  static _Atomic int warned;
  const char *host = PQhost(pg);
  if (host == NULL || host[0] == '/' || host[0] == '@' ||
      strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
      strcmp(host, "::1") == 0)
    return;
  const char *mode = "prefer";
  PQconninfoOption *o = PQconninfo(pg);
  for (PQconninfoOption *p = o; p && p->keyword; p++)
    if (strcmp(p->keyword, "sslmode") == 0 && p->val)
      mode = p->val;
  int weak = strcmp(mode, "verify-full") != 0;
  if (weak && atomic_exchange(&warned, 1) == 0)
    hd_log(HD_LL_WARN, COMP, "destination TLS not verified",
           "host=%s sslmode=%s tls=%s: the server's certificate and name are "
           "not verified%s; set sslmode=verify-full and sslrootcert in "
           "sink.dsn (docs/sinks.md)",
           host, mode, PQsslInUse(pg) ? "on" : "off",
           PQsslInUse(pg) ? "" : " and the connection is not encrypted");
  PQconninfoFree(o);
}

static int pg_connect(const db_conf_t *k, int ddl, db_conn_t **out, char *err,
                      size_t errlen) {
  const hd_agent_conf_t *conf = k->conf;
  *out = NULL;
  /* A dead server (or a cut network) is noticed within about
   * sink.timeout: keepalives probe an idle connection, tcp_user_timeout
   * drops one whose sent data goes unacknowledged. They come before the
   * DSN, which may set them otherwise; what the sink.* keys say comes
   * after it and wins. */
  char idle[24], cnt[24], utmo[24], ctmo[24];
  uint64_t probe = (conf->sink.timeout_ms / 1000 + 3) / 4;
  snprintf(idle, sizeof(idle), "%" PRIu64, probe ? probe : 1);
  snprintf(cnt, sizeof(cnt), "3");
  snprintf(utmo, sizeof(utmo), "%" PRIu64, conf->sink.timeout_ms);
  /* libpq counts whole seconds, and treats 1 as 2 */
  snprintf(ctmo, sizeof(ctmo), "%" PRIu64,
           (conf->sink.connect_timeout_ms + 999) / 1000);
  const char *kw[16], *val[16];
  int n = 0;
#define KV(a, b) (kw[n] = (a), val[n] = (b), n++)
  KV("keepalives", "1");
  KV("keepalives_idle", idle);
  KV("keepalives_interval", idle);
  KV("keepalives_count", cnt);
  KV("tcp_user_timeout", utmo);
  KV("fallback_application_name", "herald-agent");
  KV("dbname", conf->sink.dsn ? conf->sink.dsn : "");
  KV("connect_timeout", ctmo);
  KV("client_encoding", "UTF8");
  if (k->password)
    KV("password", k->password);
  KV(NULL, NULL);
#undef KV
  PGconn *pg = PQconnectdbParams(kw, val, 1);
  if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
    int rc = hd_errorf(err, errlen, HD_ESINK_DB, "connect: %s", conn_msg(pg));
    PQfinish(pg);
    return rc;
  }
  PQsetNoticeProcessor(pg, pg_notice, NULL);
  pg_tls_warn(pg);
  db_conn_t *c = hd_calloc(1, sizeof(*c));
  c->pg = pg;
  c->k = k;
  c->ddl = ddl;
  /* Timestamps are UTC text both ways, dates ISO, intervals as
   * [-]HH:MM:SS, floats read back exactly; statement_timeout bounds every
   * statement and lock_timeout every lock wait by sink.timeout. */
  char set[512];
  snprintf(set, sizeof(set),
           "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
           "SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; "
           "SET statement_timeout = %" PRIu64 "; SET lock_timeout = %" PRIu64,
           conf->sink.timeout_ms, conf->sink.timeout_ms);
  int rc = exec_sql(c, "session settings", set, err, errlen);
  if (rc != 0) {
    PQfinish(pg);
    free(c);
    return rc;
  }
  hd_buf_t b = {0};
  put_qname(&b, k->offsets_ns, k->offsets_name);
  c->offq = b.p;
  *out = c;
  return 0;
}

/* Forgets s; dead: its name is kept for sweep_stmts() to deallocate. */
static void stmt_free(db_conn_t *c, pg_stmt_t *s, int dead) {
  if (dead) {
    c->dead = hd_realloc(c->dead, (c->ndead + 1) * sizeof(*c->dead));
    c->dead[c->ndead++] = hd_strdup(s->name);
  }
  tab_release(s->tab);
  free(s->cols);
  free(s->formats);
  free(s);
}

/* The statements of dropped tables, and those evicted, are deallocated
 * outside a transaction, where a failure aborts nothing. */
static void sweep_stmts(db_conn_t *c) {
  size_t j = 0;
  for (size_t i = 0; i < c->nstmts; i++) {
    if (atomic_load(&c->stmts[i]->tab->dropped))
      stmt_free(c, c->stmts[i], 1);
    else
      c->stmts[j++] = c->stmts[i];
  }
  c->nstmts = j;
  if (c->ndead == 0)
    return;
  hd_buf_t b = {0};
  for (size_t i = 0; i < c->ndead; i++) {
    hd_buf_printf(&b, "DEALLOCATE %s;", c->dead[i]);
    free(c->dead[i]);
  }
  c->ndead = 0;
  PGresult *r = PQexec(c->pg, b.p);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) /* a leak on the server only */
    hd_log(HD_LL_WARN, COMP, "prepared statements not deallocated",
           "err=\"%s\"", conn_msg(c->pg));
  PQclear(r);
  free(b.p);
}

static void run_reset(db_conn_t *c) {
  c->st = c->ins = NULL;
  c->nops = c->base = c->nkept = 0;
  c->arena.len = 0;
  c->rc = 0;
  c->bad = SIZE_MAX;
  c->rerr[0] = '\0';
}

/* Reads every result up to the pipeline's sync: the operations kept and
 * the sync itself. The first failure is latched (unless one is already)
 * with its operation. Returns 0 when the sync was seen (the connection is
 * in step again), else -1. */
static int pipe_drain(db_conn_t *c);

static void pg_rollback(db_conn_t *c) {
  if (c == NULL || c->pg == NULL)
    return;
  if (c->pipe) {
    /* after a failed run: its results are read up to a sync, which
     * leaves the connection ready for ROLLBACK */
    if (c->nkept && PQpipelineSync(c->pg) == 1)
      pipe_drain(c);
    if (PQexitPipelineMode(c->pg) != 1 && PQstatus(c->pg) == CONNECTION_OK)
      hd_log(HD_LL_WARN, COMP, "pipeline mode not left", "err=\"%s\"",
             conn_msg(c->pg));
    c->pipe = 0; /* a connection in this state is only good for closing */
  }
  run_reset(c);
  if (PQstatus(c->pg) != CONNECTION_OK ||
      PQtransactionStatus(c->pg) == PQTRANS_IDLE)
    return;
  char err[512];
  if (exec_sql(c, "rollback", "ROLLBACK", err, sizeof(err)) != 0)
    hd_log(HD_LL_WARN, COMP, "rollback failed", "err=\"%s\"", err);
}

static void pg_disconnect(db_conn_t *c) {
  if (c == NULL)
    return;
  pg_rollback(c);
  PQfinish(c->pg); /* the server forgets the statements */
  for (size_t i = 0; i < c->nstmts; i++)
    stmt_free(c, c->stmts[i], 0);
  free(c->stmts);
  for (size_t i = 0; i < c->ndead; i++)
    free(c->dead[i]);
  free(c->dead);
  free(c->params);
  free(c->vals);
  free(c->lens);
  free(c->arena.p);
  free(c->offq);
  free(c);
}

static int pg_begin(db_conn_t *c, char *err, size_t errlen) {
  sweep_stmts(c);
  return exec_sql(c, "begin", "BEGIN", err, errlen);
}

static int pg_commit(db_conn_t *c, char *err, size_t errlen) {
  PGresult *r = PQexec(c->pg, "COMMIT");
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    /* whatever its class (a deferred constraint is 23...): the whole
     * transaction is to be tried again */
    res_err(c->pg, r,
            PQstatus(c->pg) == CONNECTION_OK
                ? "commit"
                : "commit (the connection failed: committed or not)",
            NULL, err, errlen);
    rc = HD_ESINK_DB;
  } else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
    /* COMMIT of a transaction an error aborted answers ROLLBACK */
    rc = hd_errorf(err, errlen, HD_ESINK_DB,
                   "commit: the server rolled the transaction back (%s): a "
                   "statement in it had failed",
                   PQcmdStatus(r));
  PQclear(r);
  return rc;
}

static int pg_session_id(db_conn_t *c, char *out, size_t outlen, char *err,
                         size_t errlen) {
  int rc;
  PGresult *r = exec_params(
      c, "session id",
      "SELECT pg_backend_pid(), (extract(epoch FROM backend_start) * "
      "1000000)::bigint FROM pg_stat_activity WHERE pid = pg_backend_pid()",
      0, NULL, &rc, err, errlen);
  if (r == NULL)
    return rc;
  if (PQntuples(r) != 1)
    rc = hd_errorf(err, errlen, HD_ESINK_DB,
                   "session id: pg_stat_activity has no row of this session");
  else
    snprintf(out, outlen, "%s:%s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  PQclear(r);
  return rc;
}

/* --------------------------------------------------------- offsets */

static int offset_num(const char *s, uint64_t *v) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || end == s || *end)
    return -1;
  *v = x;
  return 0;
}

static int pg_offset_lock(db_conn_t *c, uint32_t partition,
                          uint64_t lock_wait_ms, uint64_t *scn, uint64_t *epoch,
                          char *holder, size_t holderlen, char *err,
                          size_t errlen) {
  const char *group = c->k->group ? c->k->group : "";
  char *g = PQescapeLiteral(c->pg, group, strlen(group));
  if (g == NULL)
    return hd_errorf(err, errlen, HD_ESINK_DB, "offset lock: %s",
                     conn_msg(c->pg));
  /* One round trip: the row made when missing, then locked with the wait
   * bounded by lock_wait_ms (0: not at all), then the session's timeout
   * back. lock_timeout covers the INSERT too: another agent's insert of
   * the same new row, not yet committed, is waited for. */
  hd_buf_t b = {0};
  /* The statements may run longer than the lock wait, so that another
   * session's lock ends in lock_timeout's error (55P03: the caller ends
   * that session) and not statement_timeout's. */
  uint64_t lw =
      lock_wait_ms < INT32_MAX - 5000 ? lock_wait_ms : INT32_MAX - 5000;
  if (lock_wait_ms) /* PostgreSQL's limit: INT_MAX ms */
    hd_buf_printf(&b,
                  "SET LOCAL lock_timeout = %" PRIu64 "; SET LOCAL "
                  "statement_timeout = %" PRIu64 "; ",
                  lw, lw + 5000);
  uint64_t tmo = c->k->conf->sink.timeout_ms;
  hd_buf_printf(&b,
                "INSERT INTO %s (\"group\", \"partition\", scn, epoch, "
                "holder) VALUES (%s, %" PRIu32 ", 0, 0, '') ON CONFLICT DO "
                "NOTHING; SELECT scn, epoch FROM %s WHERE \"group\" = %s AND "
                "\"partition\" = %" PRIu32 " FOR UPDATE%s; SET LOCAL "
                "lock_timeout = %" PRIu64
                "; SET LOCAL statement_timeout = %" PRIu64,
                c->offq, g, partition, c->offq, g, partition,
                lock_wait_ms ? "" : " NOWAIT", tmo, tmo);
  PQfreemem(g);
  int rc = 0, locked = 0, sent = PQsendQuery(c->pg, b.p);
  free(b.p);
  if (!sent)
    return hd_errorf(err, errlen, HD_ESINK_DB, "offset lock: %s",
                     conn_msg(c->pg));
  PGresult *r;
  while ((r = PQgetResult(c->pg)) != NULL) {
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK && rc == 0) {
      if (PQntuples(r) != 1 || offset_num(PQgetvalue(r, 0, 0), scn) ||
          offset_num(PQgetvalue(r, 0, 1), epoch))
        rc = hd_errorf(err, errlen, HD_ESINK_DB,
                       "offset lock: partition %" PRIu32 ": no row in %s",
                       partition, c->offq);
      else
        locked = 1;
    } else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && rc == 0) {
      const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      rc = st && strcmp(st, "55P03") == 0
               ? -EAGAIN
               : res_err(c->pg, r, "offset lock", NULL, err, errlen);
    }
    PQclear(r);
  }
  if (rc == 0 && !locked)
    rc =
        hd_errorf(err, errlen, HD_ESINK_DB, "offset lock: %s", conn_msg(c->pg));
  if (rc != -EAGAIN)
    return rc;
  /* The lock timed out, which aborted the transaction: it is rolled back
   * and the holder read outside it, and a new one begun, empty, for the
   * caller to end (it rolls back, ends the holder, begins again). A
   * savepoint would keep the transaction, but would make the row's lock
   * a subtransaction's, and the UPDATE of offset_write() then turns it
   * into a MultiXact on every window. */
  if ((rc = exec_sql(c, "offset lock", "ROLLBACK", err, errlen)) != 0)
    return rc;
  char part[16];
  snprintf(part, sizeof(part), "%" PRIu32, partition);
  const char *vals[] = {group, part};
  hd_buf_t q = {0};
  hd_buf_printf(&q,
                "SELECT holder, scn, epoch FROM %s WHERE \"group\" = $1 AND "
                "\"partition\" = $2",
                c->offq);
  r = exec_params(c, "offset holder", q.p, 2, vals, &rc, err, errlen);
  free(q.p);
  if (r == NULL)
    return rc;
  if (holder && holderlen)
    snprintf(holder, holderlen, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
  /* what the holder last committed: a newer epoch fences the caller
   * without ending anyone's session */
  if (PQntuples(r) && (offset_num(PQgetvalue(r, 0, 1), scn) ||
                       offset_num(PQgetvalue(r, 0, 2), epoch)))
    *scn = *epoch = 0;
  PQclear(r);
  if ((rc = pg_begin(c, err, errlen)) != 0)
    return rc;
  hd_errorf(err, errlen, -EAGAIN,
            "offset lock: partition %" PRIu32 "'s row in %s is locked by "
            "session %s (waited %" PRIu64 " ms)",
            partition, c->offq, holder && *holder ? holder : "?", lock_wait_ms);
  return -EAGAIN;
}

static int pg_offset_write(db_conn_t *c, uint32_t partition, uint64_t scn,
                           uint64_t epoch, const char *holder, char *err,
                           size_t errlen) {
  char part[16], s[24], e[24];
  snprintf(part, sizeof(part), "%" PRIu32, partition);
  snprintf(s, sizeof(s), "%" PRIu64, scn);
  snprintf(e, sizeof(e), "%" PRIu64, epoch);
  const char *vals[] = {c->k->group ? c->k->group : "", part, s, e, holder};
  hd_buf_t q = {0};
  hd_buf_printf(&q,
                "UPDATE %s SET scn = $3, epoch = $4, holder = "
                "COALESCE($5, holder), updated_at = now() WHERE \"group\" = "
                "$1 AND \"partition\" = $2",
                c->offq);
  int rc;
  PGresult *r = exec_params(c, "offset write", q.p, 5, vals, &rc, err, errlen);
  free(q.p);
  if (r == NULL)
    return rc;
  if (strcmp(PQcmdTuples(r), "1") != 0)
    rc = hd_errorf(err, errlen, HD_ESINK_DB,
                   "offset write: partition %" PRIu32 " has no row in %s",
                   partition, c->offq);
  PQclear(r);
  return rc;
}

static int pg_kill_holder(db_conn_t *c, const char *holder, char *err,
                          size_t errlen) {
  if (holder == NULL || *holder == '\0')
    return 0; /* nobody recorded: nothing to end */
  char pid[16], start[24], wait[24];
  unsigned p;
  unsigned long long us;
  int used = 0;
  if (sscanf(holder, "%u:%llu%n", &p, &us, &used) != 2 || holder[used] != '\0')
    return hd_errorf(err, errlen, HD_ESINK_DB,
                     "kill holder: '%s' is no PostgreSQL session (pid:start)",
                     holder);
  snprintf(pid, sizeof(pid), "%u", p);
  snprintf(start, sizeof(start), "%llu", us);
  /* waited for, so that the lock is gone when this returns */
  snprintf(wait, sizeof(wait), "%" PRIu64, c->k->conf->sink.timeout_ms);
  const char *vals[] = {pid, start, wait};
  /* The backend start time tells a reused pid from the holder's. Another
   * role's start time is hidden (NULL) unless ours may read all
   * statistics: then the session is not ended, and the error says why. */
  int rc;
  PGresult *r = exec_params(
      c, "kill holder",
      "SELECT CASE WHEN backend_start IS NULL THEN NULL ELSE "
      "pg_terminate_backend(pid, $3::bigint) END FROM pg_stat_activity "
      "WHERE pid = $1::int AND pid <> pg_backend_pid() AND "
      "(backend_start IS NULL OR (extract(epoch FROM backend_start) * "
      "1000000)::bigint = $2::bigint)",
      3, vals, &rc, err, errlen);
  if (r == NULL)
    return rc;
  if (PQntuples(r) == 1 && PQgetisnull(r, 0, 0))
    rc = hd_errorf(err, errlen, HD_ESINK_DB,
                   "kill holder: session %s belongs to another role, whose "
                   "sessions' start times this role cannot read: use one "
                   "role for the agents of a group, or grant them "
                   "pg_read_all_stats and pg_signal_backend",
                   holder);
  else if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") != 0)
    rc = hd_errorf(err, errlen, HD_ESINK_DB,
                   "kill holder: session %s did not end within %s ms (the "
                   "role needs to be the session's or have "
                   "pg_signal_backend)",
                   holder, wait);
  PQclear(r);
  return rc;
}

/* ------------------------------------------------------- schema */

/* A CREATE ... IF NOT EXISTS, tried again when it raced another agent's
 * (the loser of two concurrent creations gets a unique violation on the
 * catalog, or "already exists"). */
static int ddl_exec(db_conn_t *c, const char *what, const char *sql, char *err,
                    size_t errlen) {
  for (int i = 1;; i++) {
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType s = PQresultStatus(r);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int race = st && (strcmp(st, "23505") == 0 || strcmp(st, "42P06") == 0 ||
                      strcmp(st, "42P07") == 0 || strcmp(st, "42701") == 0);
    int rc = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
      rc = res_err(c->pg, r, what, NULL, err, errlen);
    PQclear(r);
    if (rc == 0 || !race || i == DDL_TRIES)
      return rc == HD_ESINK_VALUE ? HD_ESINK_SCHEMA : rc;
    agent__sleep_ms(20u * (unsigned)i);
  }
}

/* CREATE SCHEMA when the schema is missing: IF NOT EXISTS alone would
 * need the right to create schemas even when it exists. */
static int schema_ensure(db_conn_t *c, const char *ns, char *err,
                         size_t errlen) {
  int rc;
  const char *vals[] = {ns};
  PGresult *r = exec_params(c, "schema lookup",
                            "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1,
                            vals, &rc, err, errlen);
  if (r == NULL)
    return rc;
  int have = PQntuples(r) > 0;
  PQclear(r);
  if (have)
    return 0;
  hd_buf_t b = {0};
  hd_buf_printf(&b, "CREATE SCHEMA IF NOT EXISTS ");
  db_quote(&b.p, &b.len, &b.cap, ns, 'p');
  hd_buf_printf(&b, "%s", "");
  rc = ddl_exec(c, "create schema", b.p, err, errlen);
  free(b.p);
  return rc;
}

/* The relation's columns in order; *exists 0 when there is none. */
static int rel_columns(db_conn_t *c, const char *ns, const char *name,
                       int *exists, char ***names, size_t *n, char *err,
                       size_t errlen) {
  int rc;
  const char *vals[] = {ns, name};
  *exists = 0;
  PGresult *r = exec_params(
      c, "table columns",
      "SELECT a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = "
      "c.relnamespace LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND "
      "a.attnum > 0 AND NOT a.attisdropped WHERE n.nspname = $1 AND "
      "c.relname = $2 AND c.relkind IN ('r', 'p', 'f', 'v', 'm') ORDER BY "
      "a.attnum",
      2, vals, &rc, err, errlen);
  if (r == NULL)
    return rc;
  size_t rows = (size_t)PQntuples(r), m = 0;
  *exists = rows > 0;
  if (names) {
    *names = hd_calloc(rows, sizeof(**names));
    for (size_t i = 0; i < rows; i++)
      if (!PQgetisnull(r, (int)i, 0))
        (*names)[m++] = hd_strdup(PQgetvalue(r, (int)i, 0));
  }
  if (n)
    *n = m;
  PQclear(r);
  return 0;
}

static int pg_offsets_ensure(db_conn_t *c, char *err, size_t errlen) {
  int exists = 0, rc = rel_columns(c, c->k->offsets_ns, c->k->offsets_name,
                                   &exists, NULL, NULL, err, errlen);
  if (rc != 0 || exists)
    return rc;
  if ((rc = schema_ensure(c, c->k->offsets_ns, err, errlen)) != 0)
    return rc;
  hd_buf_t b = {0};
  hd_buf_printf(&b,
                "CREATE TABLE IF NOT EXISTS %s (\"group\" text, \"partition\" "
                "integer, scn numeric(20) NOT NULL, epoch numeric(20) NOT "
                "NULL, holder text NOT NULL DEFAULT '', updated_at "
                "timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (\"group\", "
                "\"partition\"))",
                c->offq);
  rc = ddl_exec(c, "create offsets table", b.p, err, errlen);
  free(b.p);
  return rc;
}

static int pg_table_columns(db_conn_t *c, const db_table_t *t, int *exists,
                            char ***names, size_t *n, char *err,
                            size_t errlen) {
  *names = NULL;
  *n = 0;
  return rel_columns(c, t->dst_ns, t->dst_name, exists, names, n, err, errlen);
}

/* Appends column i's definition, its name and type; *pc its kind. */
static int put_coldef(hd_buf_t *b, const db_table_t *t, size_t i, pg_col_t *pc,
                      char *err, size_t errlen) {
  const herald_column_t *d = &t->cols[i].def;
  char type[64];
  if (col_map(d, pc, type, sizeof(type)) != 0)
    return hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                     "column %s: the source type '%s' has no PostgreSQL "
                     "mapping (docs/sinks.md, postgresql): create the table "
                     "by hand",
                     d->name, d->sql_type ? d->sql_type : d->base_type);
  db_quote(&b->p, &b->len, &b->cap, d->name, 'p');
  hd_buf_printf(b, " %s", type);
  return 0;
}

static int is_temporal(pg_kind_t k) {
  return k == K_DATE || k == K_DATETIME || k == K_TIMESTAMP;
}

static int pg_table_create(db_conn_t *c, const db_table_t *t, char *err,
                           size_t errlen) {
  hd_buf_t b = {0};
  hd_buf_printf(&b, "CREATE TABLE IF NOT EXISTS ");
  put_qname(&b, t->dst_ns, t->dst_name);
  hd_buf_printf(&b, " (");
  int rc = 0;
  for (size_t i = 0; i < t->ncols && rc == 0; i++) {
    hd_buf_printf(&b, "%s", i ? ", " : "");
    pg_col_t pc;
    rc = put_coldef(&b, t, i, &pc, err, errlen);
    const herald_column_t *d = &t->cols[i].def;
    /* With sink.zero_dates null a zero date is stored as NULL, so a
     * temporal column outside the key takes NULL whatever the source
     * says. */
    int zero_null = is_temporal(pc.kind) && d->pk_position == 0 &&
                    c->k->conf->sink.zero_dates == HD_ZERO_NULL;
    if (!d->nullable && !zero_null)
      hd_buf_printf(&b, " NOT NULL");
  }
  if (rc == 0 && t->npk) {
    hd_buf_printf(&b, ", PRIMARY KEY (");
    for (size_t i = 0; i < t->npk; i++) {
      hd_buf_printf(&b, "%s", i ? ", " : "");
      db_quote(&b.p, &b.len, &b.cap, t->cols[t->pk[i]].def.name, 'p');
    }
    hd_buf_printf(&b, ")");
  }
  hd_buf_printf(&b, ")");
  if (rc == 0 && (rc = schema_ensure(c, t->dst_ns, err, errlen)) == 0)
    rc = ddl_exec(c, "create table", b.p, err, errlen);
  free(b.p);
  return rc;
}

static int pg_column_add(db_conn_t *c, const db_table_t *t, size_t col,
                         char *err, size_t errlen) {
  hd_buf_t b = {0};
  hd_buf_printf(&b, "ALTER TABLE ");
  put_qname(&b, t->dst_ns, t->dst_name);
  hd_buf_printf(&b, " ADD COLUMN IF NOT EXISTS ");
  pg_col_t pc;
  int rc = put_coldef(&b, t, col, &pc, err, errlen);
  if (rc == 0)
    rc = ddl_exec(c, "add column", b.p, err, errlen);
  free(b.p);
  return rc;
}

/* ------------------------------------------------------- statements */

static pg_stmt_t *stmt_find(db_conn_t *c, pg_tab_t *pt, int kind, size_t nset,
                            const uint32_t *set, size_t nwhere,
                            const uint32_t *where) {
  for (size_t i = 0; i < c->nstmts; i++) {
    pg_stmt_t *s = c->stmts[i];
    if (s->tab == pt && s->kind == kind && s->nset == nset &&
        s->nwhere == nwhere &&
        (nset == 0 || memcmp(s->cols, set, nset * sizeof(*set)) == 0) &&
        (nwhere == 0 ||
         memcmp(s->cols + nset, where, nwhere * sizeof(*where)) == 0))
      return s;
  }
  return NULL;
}

/* The statement of sh on this connection, prepared when missing. */
static int stmt_get(db_conn_t *c, const db_shape_t *sh, pg_stmt_t **out,
                    char *err, size_t errlen) {
  pg_tab_t *pt = tab_of(sh->t);
  pg_stmt_t *s =
      stmt_find(c, pt, sh->kind, sh->nset, sh->set, sh->nwhere, sh->where);
  if (s == NULL) {
    char *sql = db_sql_for(sh, 'p');
    size_t np = sh->nset + sh->nwhere;
    char name[24];
    snprintf(name, sizeof(name), "hd_%" PRIu64, ++c->serial);
    PGresult *r = PQprepare(c->pg, name, sql, (int)np, NULL);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      rc = res_err(c->pg, r, "prepare", NULL, err, errlen);
    PQclear(r);
    free(sql);
    if (rc != 0)
      return rc;
    if (c->nstmts == STMT_MAX) { /* the least recently used goes */
      size_t lru = 0;
      for (size_t i = 1; i < c->nstmts; i++)
        if (c->stmts[i]->used < c->stmts[lru]->used)
          lru = i;
      stmt_free(c, c->stmts[lru], 1);
      c->stmts[lru] = c->stmts[--c->nstmts];
    }
    s = hd_calloc(1, sizeof(*s));
    s->tab = pt;
    atomic_fetch_add(&pt->refs, 1);
    s->kind = sh->kind;
    s->nset = sh->nset;
    s->nwhere = sh->nwhere;
    s->cols = hd_calloc(np, sizeof(*s->cols));
    if (sh->nset)
      memcpy(s->cols, sh->set, sh->nset * sizeof(*sh->set));
    if (sh->nwhere)
      memcpy(s->cols + sh->nset, sh->where, sh->nwhere * sizeof(*sh->where));
    s->formats = hd_calloc(np, sizeof(*s->formats));
    for (size_t i = 0; i < np; i++)
      s->formats[i] = pt->cols[s->cols[i]].kind == K_BYTEA;
    snprintf(s->name, sizeof(s->name), "%s", name);
    c->stmts = hd_realloc(c->stmts, (c->nstmts + 1) * sizeof(*c->stmts));
    c->stmts[c->nstmts++] = s;
  }
  s->used = ++c->clock;
  *out = s;
  return 0;
}

/* ------------------------------------------------------------ values */

static const char *vtype_name(int vt) {
  static const char *const names[] = {"absent",
                                      "NULL",
                                      "integer",
                                      "unsigned integer",
                                      "FLOAT",
                                      "DOUBLE",
                                      "DECIMAL",
                                      "temporal",
                                      "text",
                                      "binary",
                                      "invalid text",
                                      "JSON",
                                      "partial JSON update"};
  return vt >= 0 && vt < (int)(sizeof(names) / sizeof(names[0])) ? names[vt]
                                                                 : "unknown";
}

static void arena_put(hd_buf_t *a, const void *p, size_t n) {
  if (a->cap - a->len < n + 1) {
    a->cap = a->cap * 2 + n + 256;
    a->p = hd_realloc(a->p, a->cap);
  }
  if (n)
    memcpy(a->p + a->len, p, n);
  a->len += n;
}

static void arena_str(hd_buf_t *a, const char *s) {
  arena_put(a, s, strlen(s));
}

/* A MariaDB DATE, DATETIME or TIMESTAMP ("YYYY-MM-DD[ hh:mm:ss[.f]]",
 * TIMESTAMP in UTC) as PostgreSQL reads it: a zero date (or one with a
 * zero month or day) as sink.zero_dates says; year 0, which MariaDB
 * allows and PostgreSQL's years lack, as 1 BC, which is the same day
 * (ISO 8601's year 0). Returns 1 for NULL, 0 when text was appended,
 * else the error. */
static int put_date(db_conn_t *c, pg_kind_t kind, const char *col,
                    const char *s, size_t n, char *err, size_t errlen) {
  hd_buf_t *a = &c->arena;
  if (n < 10 || s[4] != '-' || s[7] != '-')
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "column %s: '%.40s' is not a date", col, s);
  if (memcmp(s + 5, "00", 2) == 0 || memcmp(s + 8, "00", 2) == 0) {
    switch (c->k->conf->sink.zero_dates) {
    case HD_ZERO_NULL:
      return 1;
    case HD_ZERO_INFINITY:
      arena_str(a, "-infinity");
      return 0;
    default:
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "column %s: zero date '%.40s' (sink.zero_dates: "
                       "error; null or infinity store it)",
                       col, s);
    }
  }
  int bc = memcmp(s, "0000", 4) == 0;
  if (bc) {
    arena_str(a, "0001");
    arena_put(a, s + 4, n - 4);
  } else {
    arena_put(a, s, n);
  }
  if (kind == K_TIMESTAMP)
    arena_str(a, "+00");
  if (bc)
    arena_str(a, " BC");
  return 0;
}

/* ENUM and SET values that came as numbers (the source logged no labels):
 * their labels from the column's definition. */
static int put_labels(db_conn_t *c, pg_kind_t kind, const herald_column_t *d,
                      uint64_t v, char *err, size_t errlen) {
  hd_buf_t *a = &c->arena;
  if (d->nlabels == 0)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "column %s: %s value %" PRIu64
                     " without the column's labels (the source's "
                     "binlog_row_metadata=FULL, or the relay's schema query, "
                     "gives them)",
                     d->name, kind == K_ENUM ? "ENUM" : "SET", v);
  if (kind == K_ENUM) {
    if (v > d->nlabels)
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "column %s: ENUM index %" PRIu64 " beyond its %zu "
                       "labels",
                       d->name, v, d->nlabels);
    arena_str(a, v ? d->labels[v - 1] : "");
    return 0;
  }
  if (d->nlabels < 64 && (v >> d->nlabels) != 0)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "column %s: SET bits 0x%" PRIx64 " beyond its %zu labels",
                     d->name, v, d->nlabels);
  int first = 1;
  for (size_t i = 0; i < d->nlabels && i < 64; i++)
    if (v >> i & 1) {
      if (!first)
        arena_str(a, ",");
      arena_str(a, d->labels[i]);
      first = 0;
    }
  return 0;
}

/* Appends v as PostgreSQL is sent it for column ci (text, NUL-terminated,
 * or bytea's bytes) and fills *p; p->len -1 for NULL. */
static int put_value(db_conn_t *c, uint32_t ci, const herald_value_t *v,
                     pg_param_t *p, char *err, size_t errlen) {
  const db_table_t *t = c->sh.t;
  const pg_tab_t *pt = t->drv;
  const herald_column_t *d = &t->cols[ci].def;
  pg_kind_t kind = pt->cols[ci].kind;
  hd_buf_t *a = &c->arena;
  int vt = herald_value_type(v);
  size_t n = 0;
  const char *s = herald_value_data(v, &n);
  char num[72]; /* a number, or BIT(64)'s digits */
  int rc = 0;
  p->off = a->len;
  p->len = -1;
  if (vt == HERALD_V_NULL)
    return 0;
  if (vt == HERALD_V_JSON_DIFF)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "column %s: a partial JSON update without its document "
                     "cannot be applied; set binlog_row_value_options='' on "
                     "the source",
                     d->name);
  int is_int = vt == HERALD_V_INT || vt == HERALD_V_UINT;
  int is_float = vt == HERALD_V_FLOAT || vt == HERALD_V_DOUBLE;
  int is_text = vt == HERALD_V_STRING || vt == HERALD_V_JSON ||
                vt == HERALD_V_DECIMAL || vt == HERALD_V_TEMPORAL;
  int ok;
  switch (kind) {
  case K_INT:
    ok = is_int;
    break;
  case K_FLOAT:
  case K_DOUBLE:
    ok = is_float;
    break;
  case K_DECIMAL:
    ok = vt == HERALD_V_DECIMAL;
    break;
  case K_BIT:
    ok = vt == HERALD_V_UINT || vt == HERALD_V_INT;
    break;
  case K_DATE:
  case K_DATETIME:
  case K_TIMESTAMP:
  case K_TIME:
    ok = vt == HERALD_V_TEMPORAL;
    break;
  case K_ENUM:
  case K_SET:
    ok = vt == HERALD_V_STRING || vt == HERALD_V_UINT;
    break;
  case K_TEXT:
  case K_JSON:
    /* bytes a server logged for a text column are PostgreSQL's to check
     * as UTF-8 (class 22 when they are not) */
    ok = vt == HERALD_V_STRING || vt == HERALD_V_JSON || vt == HERALD_V_BYTES;
    break;
  case K_BYTEA:
    ok =
        vt == HERALD_V_BYTES || vt == HERALD_V_STRING || vt == HERALD_V_BADTEXT;
    break;
  default:
    ok = vt != HERALD_V_BADTEXT && vt != HERALD_V_ABSENT;
    break;
  }
  if (!ok)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "column %s: %s value for a %s column%s", d->name,
                     vtype_name(vt), d->sql_type ? d->sql_type : "?",
                     vt == HERALD_V_BADTEXT
                         ? " (bytes invalid in the column's character set)"
                         : "");
  if (n >= (size_t)1 << 30) /* also libpq's int lengths */
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "column %s: %zu bytes, more than a PostgreSQL value "
                     "holds (1 GiB)",
                     d->name, n);
  if (is_int && kind == K_BIT) {
    uint64_t u = herald_value_uint(v);
    uint32_t bits = pt->cols[ci].bits;
    if (bits < 64 && u >> bits)
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "column %s: %" PRIu64 " does not fit in BIT(%u)",
                       d->name, u, bits);
    for (uint32_t i = bits; i-- > 0;)
      num[bits - 1 - i] = (char)('0' + (u >> i & 1));
    num[bits] = '\0';
  } else if (is_int && (kind == K_ENUM || kind == K_SET)) {
    if ((rc = put_labels(c, kind, d, herald_value_uint(v), err, errlen)))
      return rc;
    num[0] = '\0';
  } else if (vt == HERALD_V_INT) {
    snprintf(num, sizeof(num), "%" PRId64, herald_value_int(v));
  } else if (vt == HERALD_V_UINT) {
    snprintf(num, sizeof(num), "%" PRIu64, herald_value_uint(v));
  } else if (is_float) {
    double x = herald_value_double(v);
    if (!isfinite(x)) /* MariaDB stores neither: a decoding fault */
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "column %s: %g is not a number MariaDB stores", d->name,
                       x);
    /* the digits that read back as exactly the same float or double */
    snprintf(num, sizeof(num),
             kind == K_FLOAT || (kind == K_OTHER && vt == HERALD_V_FLOAT)
                 ? "%.9g"
                 : "%.17g",
             x);
  } else if (kind == K_BYTEA) {
    arena_put(a, s, n);
    p->len = (int)n;
    return 0;
  } else if (is_text || vt == HERALD_V_BYTES) {
    if (memchr(s, '\0', n))
      return hd_errorf(err, errlen, HD_ESINK_VALUE,
                       "column %s: a NUL byte, which PostgreSQL text cannot "
                       "hold",
                       d->name);
    if (is_temporal(kind)) {
      if ((rc = put_date(c, kind, d->name, s, n, err, errlen)) == 1) {
        a->len = p->off;
        return 0; /* a zero date as NULL */
      }
      if (rc != 0)
        return rc;
    } else if (kind == K_OTHER && vt == HERALD_V_BYTES) {
      /* no type to go by: bytea's text form, which text takes too */
      static const char hex[] = "0123456789abcdef";
      arena_str(a, "\\x");
      for (size_t i = 0; i < n; i++) {
        char h[2] = {hex[(uint8_t)s[i] >> 4], hex[(uint8_t)s[i] & 15]};
        arena_put(a, h, 2);
      }
    } else {
      arena_put(a, s, n);
    }
    num[0] = '\0';
  }
  arena_put(a, num, strlen(num) + 1); /* text's NUL */
  p->len = (int)(a->len - p->off - 1);
  return 0;
}

/* -------------------------------------------------------------- runs */

/* The column of parameter i (0-based) of the run's statement. */
static uint32_t param_col(const db_conn_t *c, size_t i) {
  return i < c->sh.nset ? c->sh.set[i] : c->sh.where[i - c->sh.nset];
}

static pg_kind_t param_kind(const db_conn_t *c, size_t i) {
  return ((const pg_tab_t *)c->sh.t->drv)->cols[param_col(c, i)].kind;
}

/* UTF-8 characters of s. */
static size_t utf8_chars(const char *s, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    m += ((uint8_t)s[i] & 0xc0) != 0x80;
  return m;
}

/* Digits before the point of a DECIMAL's text. */
static size_t int_digits(const char *s) {
  s += *s == '-' || *s == '+';
  while (*s == '0' && s[1] >= '0' && s[1] <= '9')
    s++;
  size_t n = strcspn(s, ".");
  return n == 1 && *s == '0' ? 0 : n;
}

/* Which column of kept operation k a value error is about, when
 * PostgreSQL does not name it: the parameter its context names (an input
 * function's error), else the values that break the limit its message
 * states. Appends the names to b. */
static void value_column(const db_conn_t *c, const PGresult *r, size_t k,
                         hd_buf_t *b) {
  const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
  const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char *det = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  const char *pp = ctx ? strstr(ctx, "parameter $") : NULL;
  unsigned pn;
  if (pp && sscanf(pp, "parameter $%u", &pn) == 1 && pn >= 1 && pn <= c->np) {
    hd_buf_printf(b, "%s", c->sh.t->cols[param_col(c, pn - 1)].def.name);
    return;
  }
  const pg_param_t *ps = c->params + k * c->np;
  unsigned lim = 0;
  int found = 0;
  for (size_t i = 0; msg && i < c->np; i++) {
    const char *v = c->arena.p ? c->arena.p + ps[i].off : "";
    int hit = 0;
    if (ps[i].len < 0)
      continue;
    pg_kind_t kind = param_kind(c, i);
    if (sscanf(msg, "value too long for type character varying(%u)", &lim) ==
            1 ||
        sscanf(msg, "value too long for type character(%u)", &lim) == 1)
      hit = (kind == K_TEXT || kind == K_ENUM || kind == K_SET ||
             kind == K_OTHER) &&
            utf8_chars(v, (size_t)ps[i].len) > lim;
    else if (strcmp(msg, "numeric field overflow") == 0 && det &&
             strstr(det, "less than 10^") &&
             sscanf(strstr(det, "less than 10^"), "less than 10^%u", &lim) == 1)
      hit = (kind == K_DECIMAL || kind == K_OTHER) && int_digits(v) > lim;
    else if (sscanf(msg, "bit string length %u does not match", &lim) == 1)
      hit = kind == K_BIT && (size_t)ps[i].len == lim;
    if (hit)
      hd_buf_printf(b, "%s%s", found++ ? " or " : "",
                    c->sh.t->cols[param_col(c, i)].def.name);
  }
  if (found)
    return;
  /* nothing says: the operation's columns */
  hd_buf_printf(b, "(one of ");
  for (size_t i = 0; i < c->np; i++)
    hd_buf_printf(b, "%s%s", i ? ", " : "",
                  c->sh.t->cols[param_col(c, i)].def.name);
  hd_buf_printf(b, ")");
}

/* Latches the run's first error: operation k of the kept ones failed with
 * r (NULL: the connection). */
static void run_fail(db_conn_t *c, const PGresult *r, size_t k) {
  if (c->rc != 0)
    return;
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  int code = sqlstate_code(st);
  hd_buf_t col = {0};
  if (code == HD_ESINK_VALUE) {
    const char *pc = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    if (pc)
      hd_buf_printf(&col, "%s", pc);
    else
      value_column(c, r, k, &col);
  }
  const char *what = c->sh.kind == DB_UPSERT       ? "upsert"
                     : c->sh.kind == DB_DELETE     ? "delete"
                     : c->sh.kind == DB_INSERT     ? "insert"
                     : c->sh.kind == DB_UPDATE_ROW ? "update"
                                                   : "delete";
  c->rc = res_err(c->pg, r, what, col.p, c->rerr, sizeof(c->rerr));
  free(col.p);
  /* The operation is the one the server refused; not for what ends the
   * connection or the server (class 08, 57, 58, XX) */
  if (st && strncmp(st, "08", 2) && strncmp(st, "57", 2) &&
      strncmp(st, "58", 2) && strncmp(st, "XX", 2))
    c->bad = c->base + k;
}

static int pipe_drain(db_conn_t *c) {
  size_t k = 0;
  int nulls = 0, synced = 0;
  /* Each operation gives one result (done, failed, or skipped after a
   * failure) and a NULL; the sync gives its own. Two NULLs in a row mean
   * nothing more will come: the connection failed. */
  while (!synced) {
    PGresult *r = PQgetResult(c->pg);
    if (r == NULL) {
      if (++nulls == 2 || PQstatus(c->pg) == CONNECTION_BAD)
        break;
      continue;
    }
    nulls = 0;
    switch (PQresultStatus(r)) {
    case PGRES_PIPELINE_SYNC:
      synced = 1;
      break;
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_PIPELINE_ABORTED:
      k++;
      break;
    default:
      run_fail(c, r, k < c->nkept ? k : c->nkept - 1);
      k++;
      break;
    }
    PQclear(r);
  }
  if (!synced)
    run_fail(c, NULL, 0);
  return synced ? 0 : -1;
}

/* Sends the pipeline's sync and reads the kept operations' results; the
 * kept values go when they all succeeded. */
static void pipe_flush(db_conn_t *c) {
  if (c->nkept == 0)
    return;
  if (PQpipelineSync(c->pg) != 1) {
    run_fail(c, NULL, 0);
    return;
  }
  pipe_drain(c);
  if (c->rc == 0) {
    c->base += c->nkept;
    c->nkept = 0;
    c->arena.len = 0;
  }
}

static int pg_run_start(db_conn_t *c, const db_shape_t *sh, char *err,
                        size_t errlen) {
  run_reset(c);
  c->flushed = 0;
  c->sh = *sh;
  c->np = sh->nset + sh->nwhere;
  if (c->np > c->capvals) {
    c->capvals = c->np;
    c->vals = hd_realloc(c->vals, c->np * sizeof(*c->vals));
    c->lens = hd_realloc(c->lens, c->np * sizeof(*c->lens));
  }
  int rc = stmt_get(c, sh, &c->st, err, errlen);
  if (rc == 0 && sh->kind == DB_UPDATE_ROW) {
    db_shape_t ins = {sh->t, DB_INSERT, sh->nset, sh->set, 0, NULL};
    rc = stmt_get(c, &ins, &c->ins, err, errlen);
  }
  if (rc != 0)
    return rc;
  /* A row matched by its whole image (tables without a key) goes alone:
   * an UPDATE that matched nothing becomes an INSERT, which the next
   * operation must see. */
  if (sh->kind == DB_UPSERT || sh->kind == DB_DELETE || sh->kind == DB_INSERT) {
    if (PQenterPipelineMode(c->pg) != 1)
      return hd_errorf(err, errlen, HD_ESINK_DB, "pipeline mode: %s",
                       conn_msg(c->pg));
    c->pipe = 1;
  }
  return 0;
}

/* One operation of a run without a pipeline, its values kept in slot 0:
 * DB_UPDATE_ROW inserts set[] when no row matched. */
static void exec_alone(db_conn_t *c) {
  PGresult *r = PQexecPrepared(c->pg, c->st->name, (int)c->np, c->vals, c->lens,
                               c->st->formats, 0);
  if (PQresultStatus(r) == PGRES_COMMAND_OK && c->ins &&
      strcmp(PQcmdTuples(r), "0") == 0) {
    PQclear(r);
    r = PQexecPrepared(c->pg, c->ins->name, (int)c->sh.nset, c->vals, c->lens,
                       c->ins->formats, 0);
  }
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    run_fail(c, r, 0);
  PQclear(r);
}

static int pg_run_add(db_conn_t *c, const herald_value_t *const *set,
                      const herald_value_t *const *where, char *err,
                      size_t errlen) {
  (void)err;
  (void)errlen;
  size_t op = c->nops++;
  if (c->rc != 0)
    return 0; /* the run failed: run_end() says so */
  if (c->st == NULL) {
    c->rc = hd_errorf(c->rerr, sizeof(c->rerr), HD_ESINK_DB,
                      "run_add without a run (run_start failed)");
    return 0;
  }
  if (!c->pipe) { /* one at a time: only the current one kept */
    c->base = op;
    c->nkept = 0;
    c->arena.len = 0;
  }
  if ((c->nkept + 1) * c->np > c->capparams) {
    c->capparams = (c->nkept + 1) * c->np * 2 + 16;
    c->params = hd_realloc(c->params, c->capparams * sizeof(*c->params));
  }
  pg_param_t *ps = c->params + c->nkept * c->np;
  c->nkept++;
  for (size_t i = 0; i < c->np && c->rc == 0; i++) {
    const herald_value_t *v = i < c->sh.nset ? set[i] : where[i - c->sh.nset];
    c->rc = put_value(c, param_col(c, i), v, &ps[i], c->rerr, sizeof(c->rerr));
    if (c->rc != 0) {
      c->bad = op;
      ps[i].len = PARAM_REFUSED;
      for (size_t j = i + 1; j < c->np; j++) /* run_describe reads them */
        ps[j].len = PARAM_UNREAD;
    }
  }
  if (c->rc != 0)
    return 0;
  /* the arena is complete for this operation: its pointers are stable */
  for (size_t i = 0; i < c->np; i++) {
    c->vals[i] = ps[i].len < 0 ? NULL : c->arena.p + ps[i].off;
    c->lens[i] = ps[i].len < 0 ? 0 : ps[i].len;
  }
  if (!c->pipe) {
    exec_alone(c);
    return 0;
  }
  if (PQsendQueryPrepared(c->pg, c->st->name, (int)c->np, c->vals, c->lens,
                          c->st->formats, 0) != 1) {
    run_fail(c, NULL, 0);
    return 0;
  }
  if (c->nkept >= PIPE_MAX_OPS || c->arena.len >= PIPE_MAX_BYTES)
    pipe_flush(c);
  return 0;
}

static int pg_run_end(db_conn_t *c, size_t *bad, char *err, size_t errlen) {
  *bad = SIZE_MAX;
  if (c->pipe) {
    /* also after an error: everything up to a sync read, the connection
     * is in step for the rollback */
    pipe_flush(c);
    if (PQexitPipelineMode(c->pg) == 1)
      c->pipe = 0;
    else
      run_fail(c, NULL, 0);
  }
  if (c->rc == 0)
    return 0;
  *bad = c->bad;
  return hd_errorf(err, errlen, c->rc, "%s", c->rerr);
}

static void pg_run_describe(db_conn_t *c, size_t i, char *out, size_t outlen) {
  hd_buf_t b = {0};
  if (c->sh.t == NULL || i < c->base || i >= c->base + c->nkept) {
    snprintf(out, outlen, "(values of operation %zu not kept)", i);
    return;
  }
  const pg_param_t *ps = c->params + (i - c->base) * c->np;
  const db_table_t *t = c->sh.t;
  /* the key's columns when the shape has them all, in key order; else
   * where[] (rows matched by their image), else set[] */
  size_t idx[64], m = 0;
  if (t->npk && (c->sh.kind == DB_UPSERT || c->sh.kind == DB_DELETE))
    for (size_t k = 0; k < t->npk && m < 64; k++)
      for (size_t j = 0; j < c->np; j++)
        if (param_col(c, j) == t->pk[k]) {
          idx[m++] = j;
          break;
        }
  if (m == 0)
    for (size_t j = c->sh.nwhere ? c->sh.nset : 0; j < c->np && m < 64; j++)
      idx[m++] = j;
  for (size_t k = 0; k < m; k++) {
    size_t j = idx[k];
    uint32_t ci = param_col(c, j);
    pg_kind_t kind = ((const pg_tab_t *)t->drv)->cols[ci].kind;
    const char *v = c->arena.p ? c->arena.p + ps[j].off : "";
    size_t n = ps[j].len < 0 ? 0 : (size_t)ps[j].len;
    hd_buf_printf(&b, "%s%s=", k ? ", " : "", t->cols[ci].def.name);
    if (ps[j].len == PARAM_REFUSED || ps[j].len == PARAM_UNREAD)
      /* not its value: a NULL here would send the reader astray */
      hd_buf_printf(&b, "%s",
                    ps[j].len == PARAM_REFUSED ? "(the value refused)"
                                               : "(not read)");
    else if (ps[j].len < 0)
      hd_buf_printf(&b, "NULL");
    else if (kind == K_INT || kind == K_FLOAT || kind == K_DOUBLE ||
             kind == K_DECIMAL)
      hd_buf_printf(&b, "%s", v);
    else if (kind == K_BYTEA) {
      hd_buf_printf(&b, "'\\x");
      for (size_t x = 0; x < n && x < 32; x++)
        hd_buf_printf(&b, "%02x", (uint8_t)v[x]);
      hd_buf_printf(&b, "%s'", n > 32 ? "..." : "");
    } else {
      size_t cut = n > 64 ? 64 : n;
      while (cut < n && ((uint8_t)v[cut] & 0xc0) == 0x80)
        cut--; /* not inside a character */
      hd_buf_printf(&b, "'");
      for (size_t x = 0, y; x < cut; x = y + 1) { /* quotes doubled */
        y = x + strcspn(v + x, "'");
        if (y > cut)
          y = cut;
        hd_buf_printf(&b, "%.*s%s", (int)(y - x), v + x, y < cut ? "''" : "");
      }
      hd_buf_printf(&b, "%s'", cut < n ? "..." : "");
    }
  }
  snprintf(out, outlen, "%s", b.p ? b.p : "");
  free(b.p);
}

/* The generic layer's runs (sink_db.h) over the one run this driver keeps
 * per connection: db_driver_t.one_run makes the generic layer flush a run
 * before it opens another, so the handle is the connection itself. */
static int pg_run_open(db_conn_t *c, const db_shape_t *sh, db_run_t **out,
                       char *err, size_t errlen) {
  *out = (db_run_t *)c;
  return pg_run_start(c, sh, err, errlen);
}

static int pg_run_add_r(db_conn_t *c, db_run_t *r,
                        const herald_value_t *const *set,
                        const herald_value_t *const *where, char *err,
                        size_t errlen) {
  (void)r;
  if (c->flushed) { /* more of a flushed run: its indexes start again */
    pg_stmt_t *st = c->st, *ins = c->ins;
    run_reset(c);
    c->st = st;
    c->ins = ins;
    c->flushed = 0;
    if (c->sh.kind == DB_UPSERT || c->sh.kind == DB_DELETE ||
        c->sh.kind == DB_INSERT) {
      if (PQenterPipelineMode(c->pg) != 1)
        return hd_errorf(err, errlen, HD_ESINK_DB, "pipeline mode: %s",
                         conn_msg(c->pg));
      c->pipe = 1;
    }
  }
  return pg_run_add(c, set, where, err, errlen);
}

/* run_end(); the run stays the connection's, out of pipeline mode (a
 * COMMIT may follow) until its next operation. */
static int pg_run_flush(db_conn_t *c, db_run_t *r, size_t *bad, char *err,
                        size_t errlen) {
  (void)r;
  int rc = pg_run_end(c, bad, err, errlen);
  if (rc == 0)
    c->flushed = 1;
  return rc;
}

static void pg_run_describe_r(db_conn_t *c, db_run_t *r, size_t i, char *out,
                              size_t outlen) {
  (void)r;
  pg_run_describe(c, i, out, outlen);
}

static void pg_run_reset(db_conn_t *c, db_run_t *r) {
  (void)r;
  run_reset(c);
}

const db_driver_t sink__pg_driver = {
    .name = "postgresql",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .session_id = pg_session_id,
    .offsets_ensure = pg_offsets_ensure,
    .offset_lock = pg_offset_lock,
    .offset_write = pg_offset_write,
    .kill_holder = pg_kill_holder,
    .table_columns = pg_table_columns,
    .table_create = pg_table_create,
    .column_add = pg_column_add,
    .table_free = pg_table_free,
    .one_run = 1,
    .run_open = pg_run_open,
    .run_add = pg_run_add_r,
    .run_flush = pg_run_flush,
    .run_describe = pg_run_describe_r,
    .run_reset = pg_run_reset,
    .exec_ddl = NULL,
};
