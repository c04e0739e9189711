/*
 * sink_mysql.c - the MariaDB/MySQL driver of the database sinks
 * (sink_db.h), through libmariadb.
 *
 * It owns the connection settings the apply needs, the statements of each
 * shape and the binding of values. Every value travels as a bound
 * parameter of a prepared statement, typed by its column: integers as
 * 64-bit (unsigned where the column is), FLOAT and DOUBLE as themselves,
 * everything else (DECIMAL, temporals, text, JSON, ENUM/SET labels) as text
 * the server parses exactly, and binary strings as bytes. A run of
 * operations goes to a MariaDB server as one execution of arrays of
 * parameters (Connector/C's bulk array binding, MariaDB 10.2 and later);
 * to MySQL, which lacks it, one execution per row. Operations on tables
 * without a primary key run one row at a time, as MariaDB's own replica
 * applies them.
 *
 * Session settings: utf8mb4, time_zone '+00:00' (TIMESTAMP values arrive
 * as UTC text), sql_mode STRICT_ALL_TABLES (a value out of range is an
 * error, never truncated) with zero dates allowed (the source had them)
 * and NO_AUTO_VALUE_ON_ZERO (a 0 key is a 0 key), and CLIENT_FOUND_ROWS so
 * that an UPDATE of a row to the values it has counts as a match.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "sink_db.h"

#define COMP "sink"
/* Rows of one execution of a run, and the bytes of their text and binary
 * values: bounded so that memory stays small and a bulk packet stays
 * below the server's max_allowed_packet (at most half of it). */
#define ROWS_MAX 1000
#define BYTES_MAX (4u << 20)

enum { B_INT, B_UINT, B_FLOAT, B_DOUBLE, B_TEXT, B_BIN };

/* The column-wise parameter arrays of one execution: ROWS_MAX rows of
 * every parameter of a statement. */
typedef struct {
  size_t n;     /* rows */
  void **fixed; /* per parameter: int64_t/float/double[ROWS_MAX] */
  size_t **off; /* per text/binary parameter: offsets into arena */
  unsigned long **len;
  char **ind;  /* STMT_INDICATOR_* per row */
  char ***ptr; /* filled from off before a bulk execution */
  char *arena;
  size_t alen, acap;
} mbuf_t;

/* One prepared statement of a shape, with two sets of arrays: one filled
 * by the partition's thread while the connection's executor runs the
 * other. */
typedef struct db_run {
  struct db_run *next;
  const db_table_t *t; /* whose statement it is (the table owns it) */
  int kind;
  size_t nset, nwhere, np;
  uint32_t *cols; /* set[] then where[]: the column of each parameter */
  int *bk;        /* B_* of each parameter */
  MYSQL_STMT *st;
  struct db_run *ins; /* DB_UPDATE_ROW: insert set[] when no row matched */
  MYSQL_BIND *b;      /* the executor's */
  my_bool *isnull;    /* per parameter, for one-row executions */
  mbuf_t buf[2];
  int cur; /* the one being filled */
} mstmt_t;

/* A main connection executes its runs on a thread of its own, one
 * execution behind the partition's thread, which meanwhile decodes and
 * binds the next rows: the server and the agent work at the same time.
 * Everything else on the connection waits until the executor is idle
 * (idle()), and an execution's failure is reported by the next call. */
typedef struct {
  pthread_t th;
  int on;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  mstmt_t *job; /* the execution handed over, NULL when idle */
  mbuf_t *jbuf;
  int stop;
  int rc; /* the first failure since the last rollback, and its message */
  char err[1024];
} exec_t;

struct db_conn {
  MYSQL *m;
  int ddl;
  int bulk; /* the server takes arrays of parameters */
  int mariadb;
  const db_conf_t *k;
  uint64_t lock_wait_s; /* innodb_lock_wait_timeout of the session */
  exec_t x;
  /* herald_offsets */
  MYSQL_STMT *o_lock, *o_read, *o_ins, *o_upd;
};

static int idle(db_conn_t *c, char *err, size_t errlen);
static void exec_start(db_conn_t *c);
static void exec_stop(db_conn_t *c);

/* ------------------------------------------------------------ errors */

static int classify(unsigned e) {
  switch (e) {
  case ER_WARN_DATA_OUT_OF_RANGE:
  case ER_DATA_TOO_LONG:
  case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
  case ER_TRUNCATED_WRONG_VALUE:
  case WARN_DATA_TRUNCATED:
  case ER_BAD_NULL_ERROR:
  case ER_NO_DEFAULT_FOR_FIELD:
  case ER_INVALID_CHARACTER_STRING:
  case ER_CANT_CREATE_GEOMETRY_OBJECT:
  case ER_DIVISION_BY_ZERO:
  case 4025: /* ER_CONSTRAINT_FAILED (a CHECK, MariaDB's JSON) */
  case 3140: /* MySQL ER_INVALID_JSON_TEXT */
    return HD_ESINK_VALUE;
  case ER_NO_SUCH_TABLE:
  case ER_BAD_FIELD_ERROR:
  case ER_BAD_DB_ERROR:
    return HD_ESINK_SCHEMA;
  default:
    return HD_ESINK_DB;
  }
}

static int my_fail(db_conn_t *c, const char *what, char *err, size_t errlen) {
  unsigned e = mysql_errno(c->m);
  return hd_errorf(err, errlen, e ? classify(e) : HD_ESINK_DB,
                   "%s: error %u (%s): %s", what, e, mysql_sqlstate(c->m),
                   mysql_error(c->m));
}

static int st_fail(MYSQL_STMT *st, const char *what, char *err, size_t errlen) {
  unsigned e = mysql_stmt_errno(st);
  return hd_errorf(err, errlen, e ? classify(e) : HD_ESINK_DB,
                   "%s: error %u (%s): %s", what, e, mysql_stmt_sqlstate(st),
                   mysql_stmt_error(st));
}

static int query(db_conn_t *c, const char *sql, char *err, size_t errlen) {
  if (mysql_real_query(c->m, sql, strlen(sql)) != 0)
    return my_fail(c, sql, err, errlen);
  MYSQL_RES *r = mysql_store_result(c->m);
  if (r)
    mysql_free_result(r);
  return 0;
}

/* ------------------------------------------------------ connections */

static uint64_t secs(uint64_t ms) {
  return ms < 1000 ? 1 : (ms + 999) / 1000;
}

static int my_connect(const db_conf_t *k, int ddl, db_conn_t **out, char *err,
                      size_t errlen) {
  const hd_agent_conf_t *cf = k->conf;
  db_conn_t *c = hd_calloc(1, sizeof(*c));
  c->k = k;
  c->ddl = ddl;
  c->m = mysql_init(NULL);
  if (c->m == NULL) {
    free(c);
    return hd_errorf(err, errlen, -ENOMEM, "mysql sink: mysql_init failed");
  }
  unsigned ct = (unsigned)secs(cf->sink.connect_timeout_ms);
  /* The client waits longer than the server's lock wait, so that a lock
   * held by another session is the server's error (the caller then ends
   * that session), not a lost connection. */
  unsigned rt = (unsigned)secs(cf->sink.timeout_ms) + 5;
  my_bool no = 0;
  mysql_options(c->m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
  mysql_options(c->m, MYSQL_OPT_READ_TIMEOUT, &rt);
  mysql_options(c->m, MYSQL_OPT_WRITE_TIMEOUT, &rt);
  mysql_options(c->m, MYSQL_OPT_RECONNECT, &no);
  mysql_options(c->m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  c->lock_wait_s = secs(cf->sink.timeout_ms);
  char init[300];
  snprintf(init, sizeof(init),
           "SET SESSION time_zone = '+00:00', sql_mode = "
           "'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', "
           "innodb_lock_wait_timeout = %" PRIu64,
           c->lock_wait_s);
  mysql_options(c->m, MYSQL_INIT_COMMAND, init);
  if (cf->sink.tls) {
    /* Enforced: never a fall back to plain text, which would carry the
     * password and every row (docs/sinks.md). */
    my_bool on = 1, vfy = cf->sink.tls_verify ? 1 : 0;
    mysql_optionsv(c->m, MYSQL_OPT_SSL_ENFORCE, &on);
    mysql_optionsv(c->m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &vfy);
    if (cf->sink.ca_file)
      mysql_optionsv(c->m, MYSQL_OPT_SSL_CA, cf->sink.ca_file);
    if (cf->sink.cert_file)
      mysql_optionsv(c->m, MYSQL_OPT_SSL_CERT, cf->sink.cert_file);
    if (cf->sink.key_file)
      mysql_optionsv(c->m, MYSQL_OPT_SSL_KEY, cf->sink.key_file);
  }
  const char *host = cf->sink.socket ? NULL : cf->sink.host;
  if (mysql_real_connect(c->m, host, cf->sink.user, k->password, NULL,
                         (unsigned)cf->sink.port, cf->sink.socket,
                         CLIENT_FOUND_ROWS) == NULL) {
    int rc = hd_errorf(err, errlen, HD_ESINK_DB,
                       "mysql sink: cannot connect to %s%s%" PRId64
                       " as '%s'%s: error %u: %s",
                       cf->sink.socket ? cf->sink.socket : cf->sink.host,
                       cf->sink.socket ? "" : ":",
                       cf->sink.socket ? (int64_t)0 : cf->sink.port,
                       cf->sink.user ? cf->sink.user : "",
                       !cf->sink.tls         ? ""
                       : cf->sink.tls_verify ? " (tls=verify)"
                                             : " (tls=on)",
                       mysql_errno(c->m), mysql_error(c->m));
    mysql_close(c->m);
    free(c);
    return rc;
  }
  if (cf->sink.tls) {
    const char *cipher = mysql_get_ssl_cipher(c->m), *ver = NULL;
    if (cipher == NULL) {
      int rc = hd_errorf(err, errlen, HD_ESINK_DB,
                         "mysql sink: %s:%" PRId64 ": sink.tls is on but the "
                         "connection is not encrypted",
                         cf->sink.host ? cf->sink.host : "", cf->sink.port);
      mysql_close(c->m);
      free(c);
      return rc;
    }
    if (mariadb_get_infov(c->m, MARIADB_CONNECTION_TLS_VERSION, &ver) != 0)
      ver = NULL;
    hd_log(HD_LL_DEBUG, COMP, "destination connection encrypted",
           "tls=%s cipher=%s", ver ? ver : "?", cipher);
  }
  const char *info = mysql_get_server_info(c->m);
  c->mariadb = info && strstr(info, "MariaDB") != NULL;
  unsigned long ext = 0;
  if (mariadb_get_infov(c->m, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES,
                        &ext) == 0)
    c->bulk = (ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
  if (ddl) {
    /* A TIMESTAMP column is created as the stream describes it, without
     * MariaDB's implicit DEFAULT/ON UPDATE CURRENT_TIMESTAMP. */
    char e2[200];
    if (query(c, "SET SESSION explicit_defaults_for_timestamp = 1", e2,
              sizeof(e2)) < 0)
      hd_log(HD_LL_DEBUG, COMP, "explicit_defaults_for_timestamp not set",
             "err=\"%s\"", e2);
  } else if (mysql_autocommit(c->m, 0) != 0) {
    int rc = my_fail(c, "mysql sink: autocommit off", err, errlen);
    mysql_close(c->m);
    free(c);
    return rc;
  } else {
    exec_start(c);
  }
  *out = c;
  return 0;
}

static void stmt_close(MYSQL_STMT **st) {
  if (*st)
    mysql_stmt_close(*st);
  *st = NULL;
}

static void my_disconnect(db_conn_t *c) {
  if (c == NULL)
    return;
  exec_stop(c);
  stmt_close(&c->o_lock);
  stmt_close(&c->o_read);
  stmt_close(&c->o_ins);
  stmt_close(&c->o_upd);
  mysql_close(c->m);
  free(c);
}

static int my_begin(db_conn_t *c, char *err, size_t errlen) {
  int rc = idle(c, err, errlen);
  return rc < 0 ? rc : query(c, "START TRANSACTION", err, errlen);
}

static int my_commit(db_conn_t *c, char *err, size_t errlen) {
  int rc = idle(c, err, errlen);
  if (rc < 0)
    return rc;
  if (mysql_commit(c->m) != 0)
    return hd_errorf(err, errlen, HD_ESINK_DB,
                     "mysql sink: COMMIT: error %u: %s", mysql_errno(c->m),
                     mysql_error(c->m));
  return 0;
}

static void my_rollback(db_conn_t *c) {
  char e[8];
  (void)idle(c, e, sizeof(e));
  if (c->x.on) {
    pthread_mutex_lock(&c->x.mu);
    c->x.rc = 0; /* the failure goes with its transaction */
    pthread_mutex_unlock(&c->x.mu);
  }
  if (mysql_rollback(c->m) != 0)
    hd_log(HD_LL_DEBUG, COMP, "rollback failed", "err=\"%s\"",
           mysql_error(c->m));
}

static int my_session_id(db_conn_t *c, char *out, size_t outlen, char *err,
                         size_t errlen) {
  (void)err;
  (void)errlen;
  snprintf(out, outlen, "%lu", mysql_thread_id(c->m));
  return 0;
}

/* ---------------------------------------------------------- offsets */

static void quoted_offsets(const db_conf_t *k, char *out, size_t n) {
  char *b = NULL;
  size_t len = 0, cap = 0;
  db_quote(&b, &len, &cap, k->offsets_ns, 'm');
  char *t = NULL;
  size_t tl = 0, tc = 0;
  db_quote(&t, &tl, &tc, k->offsets_name, 'm');
  snprintf(out, n, "%s.%s", b, t);
  free(b);
  free(t);
}

static int my_offsets_ensure(db_conn_t *c, char *err, size_t errlen) {
  char *ns = NULL, sql[1024], tb[600];
  size_t len = 0, cap = 0;
  db_quote(&ns, &len, &cap, c->k->offsets_ns, 'm');
  snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS %s", ns);
  free(ns);
  int rc = query(c, sql, err, errlen);
  if (rc < 0)
    return rc;
  quoted_offsets(c->k, tb, sizeof(tb));
  snprintf(sql, sizeof(sql),
           "CREATE TABLE IF NOT EXISTS %s ("
           "`group` VARCHAR(255) NOT NULL, "
           "`partition` INT UNSIGNED NOT NULL, "
           "`scn` BIGINT UNSIGNED NOT NULL, "
           "`epoch` BIGINT UNSIGNED NOT NULL, "
           "`holder` VARCHAR(255) NOT NULL DEFAULT '', "
           "`updated_at` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
           "PRIMARY KEY (`group`, `partition`)) ENGINE=InnoDB "
           "DEFAULT CHARSET=utf8mb4",
           tb);
  return query(c, sql, err, errlen);
}

static int prep(db_conn_t *c, MYSQL_STMT **st, const char *sql, char *err,
                size_t errlen) {
  if (*st)
    return 0;
  *st = mysql_stmt_init(c->m);
  if (*st == NULL)
    return my_fail(c, "mysql_stmt_init", err, errlen);
  if (mysql_stmt_prepare(*st, sql, strlen(sql)) != 0) {
    int rc = st_fail(*st, sql, err, errlen);
    stmt_close(st);
    return rc;
  }
  return 0;
}

/* Bind (group, partition) as the last two parameters of st, after extra. */
static void bind_key(MYSQL_BIND *b, const db_conn_t *c, const uint32_t *p,
                     unsigned long *glen) {
  *glen = strlen(c->k->group);
  b[0].buffer_type = MYSQL_TYPE_STRING;
  b[0].buffer = (void *)c->k->group;
  b[0].buffer_length = *glen;
  b[0].length = glen;
  b[1].buffer_type = MYSQL_TYPE_LONG;
  b[1].buffer = (void *)p;
  b[1].is_unsigned = 1;
}

/* SELECT scn, epoch, holder of the partition's row with st. @returns 1
 * found, 0 none, <0 error (mysql errno in *eno). */
static int offsets_select(db_conn_t *c, MYSQL_STMT *st, uint32_t p,
                          uint64_t *scn, uint64_t *epoch, char *holder,
                          size_t holderlen, unsigned *eno, char *err,
                          size_t errlen) {
  MYSQL_BIND in[2];
  unsigned long glen;
  memset(in, 0, sizeof(in));
  bind_key(in, c, &p, &glen);
  char hb[256];
  unsigned long hlen = 0;
  my_bool hnull = 0;
  MYSQL_BIND outb[3];
  memset(outb, 0, sizeof(outb));
  outb[0].buffer_type = MYSQL_TYPE_LONGLONG;
  outb[0].buffer = scn;
  outb[0].is_unsigned = 1;
  outb[1].buffer_type = MYSQL_TYPE_LONGLONG;
  outb[1].buffer = epoch;
  outb[1].is_unsigned = 1;
  outb[2].buffer_type = MYSQL_TYPE_STRING;
  outb[2].buffer = hb;
  outb[2].buffer_length = sizeof(hb) - 1;
  outb[2].length = &hlen;
  outb[2].is_null = &hnull;
  *eno = 0;
  if (mysql_stmt_bind_param(st, in) != 0 || mysql_stmt_execute(st) != 0 ||
      mysql_stmt_bind_result(st, outb) != 0 || mysql_stmt_store_result(st)) {
    *eno = mysql_stmt_errno(st);
    return st_fail(st, "mysql sink: reading the partition's offset", err,
                   errlen);
  }
  int r = mysql_stmt_fetch(st);
  int found = r == 0 || r == MYSQL_DATA_TRUNCATED;
  mysql_stmt_free_result(st);
  if (found && holder && holderlen) {
    size_t n = hnull ? 0 : hlen < sizeof(hb) - 1 ? hlen : sizeof(hb) - 1;
    hb[n] = '\0';
    snprintf(holder, holderlen, "%s", hb);
  }
  return found;
}

static int set_lock_wait(db_conn_t *c, uint64_t s, char *err, size_t errlen) {
  if (s == c->lock_wait_s)
    return 0;
  char sql[80];
  snprintf(sql, sizeof(sql), "SET SESSION innodb_lock_wait_timeout = %" PRIu64,
           s);
  int rc = query(c, sql, err, errlen);
  if (rc == 0)
    c->lock_wait_s = s;
  return rc;
}

static int my_offset_lock(db_conn_t *c, uint32_t p, uint64_t lock_wait_ms,
                          uint64_t *scn, uint64_t *epoch, char *holder,
                          size_t holderlen, char *err, size_t errlen) {
  char tb[600], sql[900];
  int irc = idle(c, err, errlen);
  if (irc < 0)
    return irc;
  quoted_offsets(c->k, tb, sizeof(tb));
  snprintf(sql, sizeof(sql),
           "SELECT `scn`, `epoch`, `holder` FROM %s WHERE `group` = ? AND "
           "`partition` = ? FOR UPDATE",
           tb);
  int rc = prep(c, &c->o_lock, sql, err, errlen);
  if (rc < 0)
    return rc;
  if ((rc = set_lock_wait(c, secs(lock_wait_ms), err, errlen)) < 0)
    return rc;
  *scn = *epoch = 0;
  if (holder && holderlen)
    holder[0] = '\0';
  for (int tries = 0; tries < 2; tries++) {
    unsigned eno;
    int found = offsets_select(c, c->o_lock, p, scn, epoch, holder, holderlen,
                               &eno, err, errlen);
    if (found < 0 && eno == ER_LOCK_WAIT_TIMEOUT) {
      /* Only the statement is rolled back: read what the holder last
       * committed, without a lock. */
      snprintf(sql, sizeof(sql),
               "SELECT `scn`, `epoch`, `holder` FROM %s WHERE `group` = ? "
               "AND `partition` = ?",
               tb);
      if ((rc = prep(c, &c->o_read, sql, err, errlen)) < 0)
        return rc;
      char e2[300];
      if (offsets_select(c, c->o_read, p, scn, epoch, holder, holderlen, &eno,
                         e2, sizeof(e2)) < 0)
        return hd_errorf(err, errlen, HD_ESINK_DB, "%s", e2);
      return -EAGAIN;
    }
    if (found != 0)
      return found < 0 ? found : 0;
    /* No row yet. The locking read of a missing row locked the gap, and
     * two agents opening partitions at once would deadlock inserting
     * into it: the transaction (in which nothing is done yet: the lock is
     * its first statement) ends first, the row is inserted and committed
     * on its own, and a new transaction reads it again. */
    if (mysql_rollback(c->m) != 0)
      return my_fail(c, "mysql sink: ROLLBACK", err, errlen);
    snprintf(sql, sizeof(sql),
             "INSERT IGNORE INTO %s (`group`, `partition`, `scn`, `epoch`, "
             "`holder`) VALUES (?, ?, 0, 0, '')",
             tb);
    if ((rc = prep(c, &c->o_ins, sql, err, errlen)) < 0)
      return rc;
    MYSQL_BIND in[2];
    unsigned long glen;
    memset(in, 0, sizeof(in));
    bind_key(in, c, &p, &glen);
    if (mysql_stmt_bind_param(c->o_ins, in) != 0 ||
        (mysql_stmt_execute(c->o_ins) != 0 &&
         mysql_stmt_errno(c->o_ins) != ER_DUP_ENTRY))
      return st_fail(c->o_ins, "mysql sink: adding the partition's offset", err,
                     errlen);
    if (mysql_commit(c->m) != 0)
      return my_fail(c, "mysql sink: COMMIT of the partition's offset", err,
                     errlen);
    if ((rc = query(c, "START TRANSACTION", err, errlen)) < 0)
      return rc;
  }
  return hd_errorf(err, errlen, HD_ESINK_DB,
                   "mysql sink: the partition's offset row cannot be read");
}

static int my_offset_write(db_conn_t *c, uint32_t p, uint64_t scn,
                           uint64_t epoch, const char *holder, char *err,
                           size_t errlen) {
  char tb[600], sql[900];
  int irc = idle(c, err, errlen);
  if (irc < 0)
    return irc;
  quoted_offsets(c->k, tb, sizeof(tb));
  snprintf(sql, sizeof(sql),
           "UPDATE %s SET `scn` = ?, `epoch` = ?, `holder` = COALESCE(?, "
           "`holder`), `updated_at` = CURRENT_TIMESTAMP(6) WHERE `group` = ? "
           "AND `partition` = ?",
           tb);
  int rc = prep(c, &c->o_upd, sql, err, errlen);
  if (rc < 0)
    return rc;
  MYSQL_BIND b[5];
  memset(b, 0, sizeof(b));
  b[0].buffer_type = MYSQL_TYPE_LONGLONG;
  b[0].buffer = &scn;
  b[0].is_unsigned = 1;
  b[1].buffer_type = MYSQL_TYPE_LONGLONG;
  b[1].buffer = &epoch;
  b[1].is_unsigned = 1;
  unsigned long hl = holder ? strlen(holder) : 0;
  my_bool hnull = holder == NULL;
  b[2].buffer_type = MYSQL_TYPE_STRING;
  b[2].buffer = (void *)(holder ? holder : "");
  b[2].buffer_length = hl;
  b[2].length = &hl;
  b[2].is_null = &hnull;
  unsigned long glen;
  bind_key(b + 3, c, &p, &glen);
  if (mysql_stmt_bind_param(c->o_upd, b) != 0 ||
      mysql_stmt_execute(c->o_upd) != 0)
    return st_fail(c->o_upd, "mysql sink: writing the partition's offset", err,
                   errlen);
  if (mysql_stmt_affected_rows(c->o_upd) != 1)
    return hd_errorf(err, errlen, HD_ESINK_DB,
                     "mysql sink: the partition's offset row is gone");
  return 0;
}

static int my_kill_holder(db_conn_t *c, const char *holder, char *err,
                          size_t errlen) {
  char *end;
  unsigned long long id = strtoull(holder, &end, 10);
  if (*holder == '\0' || *end != '\0' || id == 0)
    return hd_errorf(err, errlen, HD_ESINK_DB,
                     "mysql sink: the offsets row names no session to end "
                     "('%s')",
                     holder);
  if (id == mysql_thread_id(c->m))
    return 0;
  char sql[64];
  snprintf(sql, sizeof(sql), "KILL CONNECTION %llu", id);
  if (mysql_real_query(c->m, sql, strlen(sql)) != 0 &&
      mysql_errno(c->m) != ER_NO_SUCH_THREAD)
    return my_fail(c, sql, err, errlen);
  return 0;
}

/* ----------------------------------------------------------- schema */

static void add_str(char **b, size_t *len, size_t *cap, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > *cap)
    *b = hd_realloc(*b, *cap = (*len + n + 1) * 2);
  memcpy(*b + *len, s, n + 1);
  *len += n;
}

static char *table_name(const db_table_t *t) {
  char *b = NULL;
  size_t len = 0, cap = 0;
  db_quote(&b, &len, &cap, t->dst_ns, 'm');
  add_str(&b, &len, &cap, ".");
  db_quote(&b, &len, &cap, t->dst_name, 'm');
  return b;
}

static int my_table_columns(db_conn_t *c, const db_table_t *t, int *exists,
                            char ***names, size_t *n, char *err,
                            size_t errlen) {
  char *tn = table_name(t);
  size_t ql = strlen(tn) + 32;
  char *sql = hd_malloc(ql);
  snprintf(sql, ql, "SHOW COLUMNS FROM %s", tn);
  free(tn);
  *exists = 0;
  *names = NULL;
  *n = 0;
  if (mysql_real_query(c->m, sql, strlen(sql)) != 0) {
    unsigned e = mysql_errno(c->m);
    int rc = e == ER_NO_SUCH_TABLE || e == ER_BAD_DB_ERROR
                 ? 0
                 : my_fail(c, sql, err, errlen);
    free(sql);
    return rc;
  }
  free(sql);
  MYSQL_RES *r = mysql_store_result(c->m);
  if (r == NULL)
    return my_fail(c, "SHOW COLUMNS", err, errlen);
  size_t rows = (size_t)mysql_num_rows(r);
  *names = hd_calloc(rows ? rows : 1, sizeof(char *));
  MYSQL_ROW row;
  while ((row = mysql_fetch_row(r)) != NULL)
    (*names)[(*n)++] = hd_strdup(row[0] ? row[0] : "");
  mysql_free_result(r);
  *exists = 1;
  return 0;
}

static int textual(const char *base) {
  static const char *const t[] = {"char", "varchar",    "tinytext",
                                  "text", "mediumtext", "longtext",
                                  "enum", "set",        NULL};
  for (int i = 0; t[i]; i++)
    if (strcmp(base, t[i]) == 0)
      return 1;
  return 0;
}

/* "`c` varchar(20) CHARACTER SET utf8mb4 NOT NULL" */
static int column_def(char **b, size_t *len, size_t *cap,
                      const herald_column_t *d, int force_null, char *err,
                      size_t errlen) {
  if (d->sql_type == NULL || *d->sql_type == '\0')
    return hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                     "column '%s' has no type in the stream's definition",
                     d->name);
  for (const char *p = d->sql_type; *p; p++)
    if (*p == ';')
      return hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                       "column '%s': unexpected type '%s'", d->name,
                       d->sql_type);
  db_quote(b, len, cap, d->name, 'm');
  char tail[200];
  int cs = d->charset && *d->charset && strcmp(d->charset, "binary") != 0 &&
           textual(d->base_type);
  int valid_cs = 1;
  for (const char *p = d->charset; cs && *p; p++)
    valid_cs &= isalnum((unsigned char)*p) || *p == '_';
  snprintf(tail, sizeof(tail), "%s%s%s",
           cs && valid_cs ? " CHARACTER SET " : "",
           cs && valid_cs ? d->charset : "",
           force_null || d->nullable ? " NULL" : " NOT NULL");
  size_t tl = strlen(d->sql_type) + strlen(tail) + 2;
  char *x = hd_malloc(tl);
  snprintf(x, tl, " %s%s", d->sql_type, tail);
  size_t xl = strlen(x);
  if (*len + xl + 1 > *cap)
    *b = hd_realloc(*b, *cap = *len + xl + 64);
  memcpy(*b + *len, x, xl + 1);
  *len += xl;
  free(x);
  return 0;
}

static int my_table_create(db_conn_t *c, const db_table_t *t, char *err,
                           size_t errlen) {
  char *b = NULL;
  size_t len = 0, cap = 0;
  add_str(&b, &len, &cap, "CREATE DATABASE IF NOT EXISTS ");
  db_quote(&b, &len, &cap, t->dst_ns, 'm');
  int rc = query(c, b, err, errlen);
  len = 0;
  if (rc < 0) {
    free(b);
    return rc;
  }
  char *tn = table_name(t);
  add_str(&b, &len, &cap, "CREATE TABLE IF NOT EXISTS ");
  add_str(&b, &len, &cap, tn);
  add_str(&b, &len, &cap, " (");
  free(tn);
  for (size_t i = 0; i < t->ncols && rc == 0; i++) {
    if (i)
      add_str(&b, &len, &cap, ", ");
    rc = column_def(&b, &len, &cap, &t->cols[i].def, 0, err, errlen);
  }
  if (rc == 0 && t->npk) {
    add_str(&b, &len, &cap, ", PRIMARY KEY (");
    for (size_t i = 0; i < t->npk; i++) {
      if (i)
        add_str(&b, &len, &cap, ", ");
      db_quote(&b, &len, &cap, t->cols[t->pk[i]].def.name, 'm');
    }
    add_str(&b, &len, &cap, ")");
  }
  add_str(&b, &len, &cap, ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
  if (rc == 0)
    rc = query(c, b, err, errlen);
  free(b);
  return rc;
}

static int my_column_add(db_conn_t *c, const db_table_t *t, size_t col,
                         char *err, size_t errlen) {
  char *b = NULL;
  size_t len = 0, cap = 0;
  char *tn = table_name(t);
  add_str(&b, &len, &cap, "ALTER TABLE ");
  add_str(&b, &len, &cap, tn);
  free(tn);
  add_str(&b, &len, &cap,
          c->mariadb ? " ADD COLUMN IF NOT EXISTS " : " ADD COLUMN ");
  int rc = column_def(&b, &len, &cap, &t->cols[col].def, 1, err, errlen);
  if (rc == 0 && mysql_real_query(c->m, b, len) != 0 &&
      mysql_errno(c->m) != ER_DUP_FIELDNAME)
    rc = my_fail(c, b, err, errlen);
  free(b);
  return rc;
}

/* ------------------------------------------------------- statements */

static int bind_kind(const herald_column_t *d) {
  const char *b = d->base_type ? d->base_type : "";
  static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int",
                                     "integer", "bigint",   "year",      NULL};
  static const char *const bins[] = {"binary",
                                     "varbinary",
                                     "tinyblob",
                                     "blob",
                                     "mediumblob",
                                     "longblob",
                                     "geometry",
                                     "point",
                                     "linestring",
                                     "polygon",
                                     "multipoint",
                                     "multilinestring",
                                     "multipolygon",
                                     "geometrycollection",
                                     NULL};
  for (int i = 0; ints[i]; i++)
    if (strcmp(b, ints[i]) == 0)
      return d->is_unsigned == 1 ? B_UINT : B_INT;
  for (int i = 0; bins[i]; i++)
    if (strcmp(b, bins[i]) == 0)
      return B_BIN;
  if (strcmp(b, "bit") == 0)
    return B_UINT;
  if (strcmp(b, "float") == 0)
    return B_FLOAT;
  if (strcmp(b, "double") == 0 || strcmp(b, "real") == 0)
    return B_DOUBLE;
  if ((strcmp(b, "enum") == 0 || strcmp(b, "set") == 0) && d->nlabels == 0)
    return B_UINT;
  if (d->charset && strcmp(d->charset, "binary") == 0)
    return B_BIN;
  return B_TEXT;
}

static void buf_free(mbuf_t *B, size_t np) {
  for (size_t j = 0; j < np; j++) {
    free(B->fixed[j]);
    free(B->off[j]);
    free(B->len[j]);
    free(B->ind[j]);
    free(B->ptr[j]);
  }
  free(B->fixed);
  free(B->off);
  free(B->len);
  free(B->ind);
  free(B->ptr);
  free(B->arena);
}

static void buf_init(mbuf_t *B, const mstmt_t *ms) {
  size_t np1 = ms->np ? ms->np : 1;
  B->fixed = hd_calloc(np1, sizeof(void *));
  B->off = hd_calloc(np1, sizeof(size_t *));
  B->len = hd_calloc(np1, sizeof(unsigned long *));
  B->ind = hd_calloc(np1, sizeof(char *));
  B->ptr = hd_calloc(np1, sizeof(char **));
  for (size_t j = 0; j < ms->np; j++) {
    B->ind[j] = hd_calloc(ROWS_MAX, 1);
    B->len[j] = hd_calloc(ROWS_MAX, sizeof(unsigned long));
    if (ms->bk[j] == B_TEXT || ms->bk[j] == B_BIN) {
      B->off[j] = hd_calloc(ROWS_MAX, sizeof(size_t));
      B->ptr[j] = hd_calloc(ROWS_MAX, sizeof(char *));
    } else {
      B->fixed[j] = hd_calloc(ROWS_MAX, 8);
    }
  }
}

static void ms_free(mstmt_t *ms) {
  if (ms == NULL)
    return;
  stmt_close(&ms->st);
  ms_free(ms->ins);
  buf_free(&ms->buf[0], ms->np);
  buf_free(&ms->buf[1], ms->np);
  free(ms->b);
  free(ms->isnull);
  free(ms->cols);
  free(ms->bk);
  free(ms);
}

static void my_table_free(db_table_t *t) {
  mstmt_t *ms = t->drv;
  while (ms) {
    mstmt_t *next = ms->next;
    ms_free(ms);
    ms = next;
  }
  t->drv = NULL;
}

static mstmt_t *ms_new(db_conn_t *c, const db_shape_t *sh, char *err,
                       size_t errlen, int *rc) {
  mstmt_t *ms = hd_calloc(1, sizeof(*ms));
  ms->t = sh->t;
  ms->kind = sh->kind;
  ms->nset = sh->nset;
  ms->nwhere = sh->nwhere;
  ms->np = sh->nset + sh->nwhere;
  size_t np1 = ms->np ? ms->np : 1;
  ms->cols = hd_calloc(np1, sizeof(uint32_t));
  ms->bk = hd_calloc(np1, sizeof(int));
  ms->b = hd_calloc(np1, sizeof(MYSQL_BIND));
  ms->isnull = hd_calloc(np1, sizeof(my_bool));
  for (size_t j = 0; j < ms->np; j++) {
    uint32_t col = j < sh->nset ? sh->set[j] : sh->where[j - sh->nset];
    ms->cols[j] = col;
    ms->bk[j] = bind_kind(&sh->t->cols[col].def);
  }
  buf_init(&ms->buf[0], ms);
  buf_init(&ms->buf[1], ms);
  char *sql = db_sql_for(sh, 'm');
  ms->st = mysql_stmt_init(c->m);
  if (ms->st == NULL || mysql_stmt_prepare(ms->st, sql, strlen(sql)) != 0) {
    *rc = ms->st ? st_fail(ms->st, sql, err, errlen)
                 : my_fail(c, "mysql_stmt_init", err, errlen);
    free(sql);
    ms_free(ms);
    return NULL;
  }
  free(sql);
  if (sh->kind == DB_UPDATE_ROW) {
    db_shape_t ins = {sh->t, DB_INSERT, sh->nset, sh->set, 0, NULL};
    ms->ins = ms_new(c, &ins, err, errlen, rc);
    if (ms->ins == NULL) {
      ms_free(ms);
      return NULL;
    }
  }
  *rc = 0;
  return ms;
}

static int my_run_open(db_conn_t *c, const db_shape_t *sh, db_run_t **out,
                       char *err, size_t errlen) {
  db_table_t *t = sh->t;
  mstmt_t *ms;
  for (ms = t->drv; ms; ms = ms->next)
    if (ms->kind == sh->kind && ms->nset == sh->nset &&
        ms->nwhere == sh->nwhere &&
        (sh->nset == 0 ||
         memcmp(ms->cols, sh->set, sh->nset * sizeof(uint32_t)) == 0) &&
        (sh->nwhere == 0 || memcmp(ms->cols + sh->nset, sh->where,
                                   sh->nwhere * sizeof(uint32_t)) == 0))
      break;
  if (ms == NULL) {
    int rc = idle(c, err, errlen); /* preparing uses the connection */
    if (rc < 0)
      return rc;
    ms = ms_new(c, sh, err, errlen, &rc);
    if (ms == NULL)
      return rc;
    ms->next = t->drv;
    t->drv = ms;
  }
  mbuf_t *B = &ms->buf[ms->cur];
  B->n = 0;
  B->alen = 0;
  *out = ms;
  return 0;
}

static size_t arena_put(mbuf_t *B, const char *p, size_t n) {
  if (B->alen + n > B->acap) {
    size_t cap = B->acap ? B->acap : 4096;
    while (cap < B->alen + n)
      cap *= 2;
    B->arena = hd_realloc(B->arena, cap);
    B->acap = cap;
  }
  size_t off = B->alen;
  if (n)
    memcpy(B->arena + off, p, n);
  B->alen += n;
  return off;
}

/* The bytes at off of B's arena; "" while it has none (every value so far
 * empty or NULL: nothing was put, and NULL + 0 is undefined). */
static char *at(const mbuf_t *B, size_t off) {
  return B->arena ? B->arena + off : (char *)"";
}

/* Put v into row r of parameter j. */
static int put_value(const mstmt_t *ms, mbuf_t *B, size_t j, size_t r,
                     const herald_value_t *v, char *err, size_t errlen) {
  const herald_column_t *d = &ms->t->cols[ms->cols[j]].def;
  int type = herald_value_type(v);
  B->ind[j][r] = STMT_INDICATOR_NONE;
  if (type == HERALD_V_NULL) {
    B->ind[j][r] = STMT_INDICATOR_NULL;
    B->len[j][r] = 0;
    if (B->off[j])
      B->off[j][r] = B->alen;
    return 0;
  }
  if (type == HERALD_V_JSON_DIFF)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "column '%s': a partial JSON update without its document "
                     "cannot be applied (set binlog_row_value_options='' at "
                     "the source)",
                     d->name);
  char num[32];
  size_t n = 0;
  const char *p = NULL;
  switch (ms->bk[j]) {
  case B_INT:
  case B_UINT: {
    uint64_t *a = B->fixed[j];
    if (type == HERALD_V_INT)
      a[r] = (uint64_t)herald_value_int(v);
    else if (type == HERALD_V_UINT)
      a[r] = herald_value_uint(v);
    else
      goto mismatch;
    return 0;
  }
  case B_FLOAT:
  case B_DOUBLE:
    if (type != HERALD_V_FLOAT && type != HERALD_V_DOUBLE)
      goto mismatch;
    if (ms->bk[j] == B_FLOAT)
      ((float *)B->fixed[j])[r] = (float)herald_value_double(v);
    else
      ((double *)B->fixed[j])[r] = herald_value_double(v);
    return 0;
  default:
    if (type == HERALD_V_INT) {
      n = (size_t)snprintf(num, sizeof(num), "%" PRId64, herald_value_int(v));
      p = num;
    } else if (type == HERALD_V_UINT) {
      n = (size_t)snprintf(num, sizeof(num), "%" PRIu64, herald_value_uint(v));
      p = num;
    } else if (type == HERALD_V_FLOAT || type == HERALD_V_DOUBLE) {
      n = (size_t)snprintf(num, sizeof(num), "%.17g", herald_value_double(v));
      p = num;
    } else {
      p = herald_value_data(v, &n);
      if (p == NULL)
        goto mismatch;
    }
    B->off[j][r] = arena_put(B, p, n);
    B->len[j][r] = (unsigned long)n;
    return 0;
  }
mismatch:
  return hd_errorf(err, errlen, HD_ESINK_VALUE,
                   "column '%s' (%s): a value of kind %d does not fit it",
                   d->name, d->sql_type, type);
}

/* Point the binds at row r of B (one-row execution) or at its arrays. */
static void bind_rows(mstmt_t *ms, mbuf_t *B, size_t r, int array) {
  for (size_t j = 0; j < ms->np; j++) {
    MYSQL_BIND *b = &ms->b[j];
    memset(b, 0, sizeof(*b));
    int k = ms->bk[j];
    b->buffer_type = k == B_INT || k == B_UINT ? MYSQL_TYPE_LONGLONG
                     : k == B_FLOAT            ? MYSQL_TYPE_FLOAT
                     : k == B_DOUBLE           ? MYSQL_TYPE_DOUBLE
                     : k == B_BIN              ? MYSQL_TYPE_BLOB
                                               : MYSQL_TYPE_STRING;
    b->is_unsigned = k == B_UINT;
    if (array) {
      if (B->fixed[j]) {
        b->buffer = B->fixed[j];
      } else {
        for (size_t i = 0; i < B->n; i++)
          B->ptr[j][i] = at(B, B->off[j][i]);
        b->buffer = B->ptr[j];
      }
      b->length = B->len[j];
      b->u.indicator = B->ind[j];
    } else {
      size_t w = k == B_FLOAT ? sizeof(float) : 8;
      b->buffer =
          B->fixed[j] ? (char *)B->fixed[j] + r * w : at(B, B->off[j][r]);
      b->buffer_length = B->len[j][r];
      b->length = &B->len[j][r];
      ms->isnull[j] = B->ind[j][r] == STMT_INDICATOR_NULL;
      b->is_null = &ms->isnull[j];
    }
  }
}

/* The failed row of a bulk execution, from "... at row N". */
static size_t bulk_row(MYSQL_STMT *st) {
  const char *m = mysql_stmt_error(st), *p = m ? strstr(m, "at row ") : NULL;
  if (p == NULL)
    return SIZE_MAX;
  unsigned long r = strtoul(p + 7, NULL, 10);
  return r >= 1 ? (size_t)r - 1 : SIZE_MAX;
}

static void value_at(const mstmt_t *ms, const mbuf_t *B, size_t j, size_t r,
                     char *out, size_t n) {
  if (B->ind[j][r] == STMT_INDICATOR_NULL) {
    snprintf(out, n, "NULL");
    return;
  }
  switch (ms->bk[j]) {
  case B_INT:
    snprintf(out, n, "%" PRId64, ((int64_t *)B->fixed[j])[r]);
    return;
  case B_UINT:
    snprintf(out, n, "%" PRIu64, ((uint64_t *)B->fixed[j])[r]);
    return;
  case B_FLOAT:
    snprintf(out, n, "%.9g", ((float *)B->fixed[j])[r]);
    return;
  case B_DOUBLE:
    snprintf(out, n, "%.17g", ((double *)B->fixed[j])[r]);
    return;
  case B_BIN:
    snprintf(out, n, "<%lu bytes>", B->len[j][r]);
    return;
  default: {
    unsigned long l = B->len[j][r];
    snprintf(out, n, "'%.*s%s'", (int)(l > 40 ? 40 : l), at(B, B->off[j][r]),
             l > 40 ? "..." : "");
  }
  }
}

/* "id=5, ..." of row r: its key, else the image it is matched by. */
static void describe(const mstmt_t *ms, const mbuf_t *B, size_t r, char *out,
                     size_t outlen) {
  size_t o = 0;
  out[0] = '\0';
  for (size_t j = 0; j < ms->np && o + 1 < outlen; j++) {
    const herald_column_t *d = &ms->t->cols[ms->cols[j]].def;
    int show =
        ms->t->npk ? d->pk_position != 0 : (ms->nwhere ? j >= ms->nset : 1);
    if (!show)
      continue;
    char v[64];
    value_at(ms, B, j, r, v, sizeof(v));
    int w = snprintf(out + o, outlen - o, "%s%s=%s", o ? ", " : "", d->name, v);
    if (w < 0)
      break;
    o += (size_t)w;
  }
}

/* The error of row r of B (SIZE_MAX: not known) in err, with the table and
 * the row's key. */
static int exec_fail(const mstmt_t *ms, const mbuf_t *B, size_t r,
                     MYSQL_STMT *st, const char *what, char *err,
                     size_t errlen) {
  char why[600], key[300] = "";
  int rc = st_fail(st, what, why, sizeof(why));
  if (r < B->n)
    describe(ms, B, r, key, sizeof(key));
  return hd_errorf(err, errlen, rc, "table %s.%s%s%s%s: %s", ms->t->dst_ns,
                   ms->t->dst_name, *key ? ", key {" : "", key, *key ? "}" : "",
                   why);
}

/* Execute the rows of B (the executor's thread). */
static int ms_exec(db_conn_t *c, mstmt_t *ms, mbuf_t *B, char *err,
                   size_t errlen) {
  unsigned int size = 0;
  if (B->n == 0)
    return 0;
  int bulk =
      c->bulk && B->n > 1 &&
      (ms->kind == DB_UPSERT || ms->kind == DB_DELETE || ms->kind == DB_INSERT);
  if (bulk) {
    size = (unsigned)B->n;
    bind_rows(ms, B, 0, 1);
    if (mysql_stmt_attr_set(ms->st, STMT_ATTR_ARRAY_SIZE, &size) != 0 ||
        mysql_stmt_bind_param(ms->st, ms->b) != 0 ||
        mysql_stmt_execute(ms->st) != 0)
      return exec_fail(ms, B, bulk_row(ms->st), ms->st,
                       "mysql sink: bulk execute", err, errlen);
  } else {
    size = 0;
    mysql_stmt_attr_set(ms->st, STMT_ATTR_ARRAY_SIZE, &size);
    for (size_t r = 0; r < B->n; r++) {
      bind_rows(ms, B, r, 0);
      if (mysql_stmt_bind_param(ms->st, ms->b) != 0 ||
          mysql_stmt_execute(ms->st) != 0)
        return exec_fail(ms, B, r, ms->st, "mysql sink: execute", err, errlen);
      if (ms->kind == DB_UPDATE_ROW && mysql_stmt_affected_rows(ms->st) == 0) {
        /* no row with that image: the update inserts it */
        mstmt_t *in = ms->ins;
        for (size_t j = 0; j < in->np; j++)
          in->b[j] = ms->b[j];
        mysql_stmt_attr_set(in->st, STMT_ATTR_ARRAY_SIZE, &size);
        if (mysql_stmt_bind_param(in->st, in->b) != 0 ||
            mysql_stmt_execute(in->st) != 0)
          return exec_fail(ms, B, r, in->st,
                           "mysql sink: insert of an updated row", err, errlen);
      }
    }
  }
  return 0;
}

static void *executor(void *arg) {
  db_conn_t *c = arg;
  exec_t *x = &c->x;
  pthread_mutex_lock(&x->mu);
  for (;;) {
    while (x->job == NULL && !x->stop)
      pthread_cond_wait(&x->cv, &x->mu);
    if (x->job == NULL)
      break;
    mstmt_t *ms = x->job;
    mbuf_t *B = x->jbuf;
    int failed = x->rc != 0;
    pthread_mutex_unlock(&x->mu);
    char err[1024];
    /* after a failure the transaction is lost: nothing more is sent until
     * the rollback */
    int rc = failed ? 0 : ms_exec(c, ms, B, err, sizeof(err));
    B->n = 0;
    B->alen = 0;
    pthread_mutex_lock(&x->mu);
    if (rc < 0 && x->rc == 0) {
      x->rc = rc;
      snprintf(x->err, sizeof(x->err), "%s", err);
    }
    x->job = NULL;
    pthread_cond_broadcast(&x->cv);
  }
  pthread_mutex_unlock(&x->mu);
  return NULL;
}

/* Wait until the executor has nothing in hand. @returns its failure since
 * the last rollback, if any. */
static int idle(db_conn_t *c, char *err, size_t errlen) {
  exec_t *x = &c->x;
  if (!x->on)
    return 0;
  pthread_mutex_lock(&x->mu);
  while (x->job)
    pthread_cond_wait(&x->cv, &x->mu);
  int rc = x->rc;
  if (rc < 0)
    hd_errorf(err, errlen, rc, "%s", x->err);
  pthread_mutex_unlock(&x->mu);
  return rc;
}

static void exec_start(db_conn_t *c) {
  exec_t *x = &c->x;
  pthread_mutex_init(&x->mu, NULL);
  pthread_cond_init(&x->cv, NULL);
  x->on = pthread_create(&x->th, NULL, executor, c) == 0;
  if (!x->on) {
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
  }
}

static void exec_stop(db_conn_t *c) {
  exec_t *x = &c->x;
  if (!x->on)
    return;
  pthread_mutex_lock(&x->mu);
  x->stop = 1;
  pthread_cond_broadcast(&x->cv);
  pthread_mutex_unlock(&x->mu);
  pthread_join(x->th, NULL);
  pthread_mutex_destroy(&x->mu);
  pthread_cond_destroy(&x->cv);
  x->on = 0;
}

/* @returns 1 when the run's buffers are full (or the kind runs one row at
 * a time): the caller flushes it now. */
static int my_run_add(db_conn_t *c, db_run_t *ms,
                      const herald_value_t *const *set,
                      const herald_value_t *const *where, char *err,
                      size_t errlen) {
  (void)c;
  mbuf_t *B = &ms->buf[ms->cur];
  size_t r = B->n;
  for (size_t j = 0; j < ms->np; j++) {
    const herald_value_t *v = j < ms->nset ? set[j] : where[j - ms->nset];
    int rc = put_value(ms, B, j, r, v, err, errlen);
    if (rc < 0)
      return rc;
  }
  B->n++;
  return ms->kind == DB_UPDATE_ROW || ms->kind == DB_DELETE_ROW ||
         B->n == ROWS_MAX || B->alen >= BYTES_MAX;
}

/* Hand the filled arrays to the executor (when it is done with the last
 * execution) and fill the other set meanwhile. A failure is the
 * executor's: this call, or the next that waits for it, reports it. */
static int my_run_flush(db_conn_t *c, db_run_t *ms, size_t *bad, char *err,
                        size_t errlen) {
  *bad = SIZE_MAX;
  mbuf_t *B = &ms->buf[ms->cur];
  if (B->n == 0)
    return idle(c, err, errlen);
  if (!c->x.on) {
    int rc = ms_exec(c, ms, B, err, errlen);
    B->n = 0;
    B->alen = 0;
    return rc;
  }
  exec_t *x = &c->x;
  pthread_mutex_lock(&x->mu);
  while (x->job)
    pthread_cond_wait(&x->cv, &x->mu);
  int rc = x->rc;
  if (rc < 0) {
    hd_errorf(err, errlen, rc, "%s", x->err);
  } else {
    x->job = ms;
    x->jbuf = B;
    ms->cur ^= 1;
    ms->buf[ms->cur].n = 0;
    ms->buf[ms->cur].alen = 0;
    pthread_cond_broadcast(&x->cv);
  }
  pthread_mutex_unlock(&x->mu);
  return rc;
}

static void my_run_reset(db_conn_t *c, db_run_t *ms) {
  char e[8];
  (void)idle(c, e, sizeof(e));
  for (int i = 0; i < 2; i++) {
    ms->buf[i].n = 0;
    ms->buf[i].alen = 0;
  }
}

static void my_run_describe(db_conn_t *c, db_run_t *ms, size_t i, char *out,
                            size_t outlen) {
  (void)c;
  (void)ms;
  (void)i;
  /* the executor's failures name their row themselves (exec_fail) */
  out[0] = '\0';
  (void)outlen;
}

static int my_exec_ddl(db_conn_t *c, const char *db, const char *stmt,
                       int *done, char *err, size_t errlen) {
  *done = 0;
  int irc = idle(c, err, errlen);
  if (irc < 0)
    return irc;
  if (db && *db) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    add_str(&b, &len, &cap, "USE ");
    db_quote(&b, &len, &cap, db, 'm');
    /* a statement that creates its database runs without it */
    if (mysql_real_query(c->m, b, len) != 0 &&
        mysql_errno(c->m) != ER_BAD_DB_ERROR) {
      int rc = my_fail(c, b, err, errlen);
      free(b);
      return rc;
    }
    free(b);
  }
  if (mysql_real_query(c->m, stmt, strlen(stmt)) == 0) {
    MYSQL_RES *r = mysql_store_result(c->m);
    if (r)
      mysql_free_result(r);
    return 0;
  }
  switch (mysql_errno(c->m)) {
  case ER_TABLE_EXISTS_ERROR:
  case ER_DUP_FIELDNAME:
  case ER_DUP_KEYNAME:
  case ER_BAD_TABLE_ERROR:
  case ER_CANT_DROP_FIELD_OR_KEY:
  case ER_DB_CREATE_EXISTS:
  case ER_DB_DROP_EXISTS:
    *done = 1;
    break;
  default:
    break;
  }
  return my_fail(c, "statement", err, errlen);
}

const db_driver_t sink__mysql_driver = {
    .name = "mysql",
    .connect = my_connect,
    .disconnect = my_disconnect,
    .begin = my_begin,
    .commit = my_commit,
    .rollback = my_rollback,
    .session_id = my_session_id,
    .offsets_ensure = my_offsets_ensure,
    .offset_lock = my_offset_lock,
    .offset_write = my_offset_write,
    .kill_holder = my_kill_holder,
    .table_columns = my_table_columns,
    .table_create = my_table_create,
    .column_add = my_column_add,
    .table_free = my_table_free,
    .run_open = my_run_open,
    .run_add = my_run_add,
    .run_flush = my_run_flush,
    .run_describe = my_run_describe,
    .run_reset = my_run_reset,
    .exec_ddl = my_exec_ddl,
};
