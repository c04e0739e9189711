/*
 * sink_db.h - the database sinks (sink.type mysql and postgresql): the
 * driver interface each engine implements, and what the generic layer
 * (sink_db.c) hands it.
 *
 * The generic layer does everything that is the same for every engine:
 * the exactly-once protocol with herald_offsets and the owner's epoch,
 * batching windows into transactions, turning row changes into operations
 * (upserts and deletes by key, whole-image matches for tables without a
 * primary key, key moves split by partition), grouping consecutive
 * operations of one shape into runs so that a driver can send each run as
 * one bulk statement, the table definitions from the stream and their
 * evolution, renames, and naming table, key and column in every error. A
 * driver (sink_mysql.c, sink_pg.c) only speaks its engine: connections,
 * transactions, SQL text, binding values and mapping types.
 *
 * Threads: one db_conn_t is used by one thread at a time (each partition
 * has its own connections); a driver shares nothing between connections
 * but what it locks itself.
 *
 * Errors: every call returns 0 or a negative code and fills err (errlen
 * bytes) with one line that says what the engine said:
 *   HD_ESINK_DB      the server refused or failed (down, timeout, deadlock,
 *                    a lost connection, a statement error): retried by the
 *                    agent after a backoff;
 *   HD_ESINK_VALUE   a value the destination cannot store as it is (out of
 *                    range, a NUL in PostgreSQL text, a zero date with
 *                    sink.zero_dates error): the message names the column;
 *   HD_ESINK_SCHEMA  the table does not match (missing table or column);
 *   -EAGAIN          offset_lock() only: the row is locked by another
 *                    session (see offset_lock).
 * The generic layer adds the partition, the window's SCN, the table and
 * the key.
 */
#ifndef AGENT_SINK_DB_H
#define AGENT_SINK_DB_H

#include <stddef.h>
#include <stdint.h>

#include "hd_confdefs.h"
#include "herald/herald.h"
#include "sink.h"

/* ----------------------------------------------------------- tables */

/** One column of a destination table: a copy of the stream's definition
 *  (herald_column_t), its strings owned by the table. */
typedef struct {
  herald_column_t def; /* name, sql_type, base_type, charset, labels: owned */
} db_col_t;

/** A source table version as the destination sees it. Made by the generic
 *  layer from the stream's herald_schema_t; one per (table, version) per
 *  partition. */
typedef struct db_table {
  char *src_db, *src_table; /* the source's names */
  uint32_t version;         /* the stream's schema version */
  char *dst_ns;   /* destination database (mysql) or schema (postgresql) */
  char *dst_name; /* destination table */
  size_t ncols;   /* in source column order */
  db_col_t *cols;
  size_t npk;   /* primary key columns, 0 without a key */
  uint32_t *pk; /* indexes into cols, in key order */
  void *drv;    /* the driver's per-table state (its statements), made
                   by the driver when it first sees the table and freed
                   by table_free(); NULL until then */
} db_table_t;

/* ------------------------------------------------------- operations */

/** What an operation does. */
enum {
  DB_UPSERT = 1, /* table with a key: insert set[], or, where a row with
                    that key exists, update its other set[] columns (with
                    only key columns in set[]: insert or leave it) */
  DB_DELETE,     /* table with a key: delete the row whose key is where[]
                    (the key columns); none: nothing */
  DB_INSERT,     /* table without a key: insert set[] */
  DB_UPDATE_ROW, /* table without a key: update one row (LIMIT 1 where the
                    engine has it, else one row chosen by the engine's row
                    id) whose where[] columns equal the before image, NULL
                    matching NULL, to set[]; when none matches, insert
                    set[] */
  DB_DELETE_ROW  /* table without a key: delete one row matching where[]
                    as above; none: nothing */
};

/** The shape of a run: consecutive operations of one kind on one table
 *  with the same columns, which a driver can send as one statement with
 *  many rows of values. Column lists are indexes into t->cols in
 *  ascending order (where[] of DB_DELETE: the key columns in t->cols
 *  order). The arrays live until the run ends. */
typedef struct {
  db_table_t *t;
  int kind; /* DB_* */
  size_t nset;
  const uint32_t *set;
  size_t nwhere;
  const uint32_t *where;
} db_shape_t;

/* ---------------------------------------------------------- the sink */

/** What a driver reads of the sink: the configuration, resolved. */
typedef struct {
  const hd_agent_conf_t *conf; /* the agent's (sink.* keys) */
  const char *password;        /* sink.password or sink.password_file's
                                  first line; NULL: none given */
  const char *offsets_ns;      /* sink.offsets_table split at its dot */
  const char *offsets_name;
  const char *group;    /* agent.group */
  const char *agent_id; /* agent.id */
} db_conf_t;

typedef struct db_conn db_conn_t;
typedef struct db_run db_run_t;

/** An engine. Called only by sink_db.c. "conn" is a main connection (in
 *  transactions) unless a call says it is the ddl one (autocommit,
 *  opened with ddl = 1). */
typedef struct {
  const char *name; /* sink.type */
  int one_run;      /* 1: the driver keeps one run per connection: the
                       generic layer flushes it before opening another */

  /** Connect with the session settings the apply needs (UTF-8, UTC for
   *  timestamps, strict value checks, zero dates allowed where the engine
   *  has them, timeouts from sink.connect_timeout and sink.timeout).
   *  ddl: the connection runs schema statements in autocommit. */
  int (*connect)(const db_conf_t *k, int ddl, db_conn_t **out, char *err,
                 size_t errlen);
  /** Close; a transaction in progress is rolled back. NULL is fine. */
  void (*disconnect)(db_conn_t *c);

  int (*begin)(db_conn_t *c, char *err, size_t errlen);
  int (*commit)(db_conn_t *c, char *err, size_t errlen);
  /** Roll back whatever is open; errors only logged (the connection may
   *  be gone: the server rolls back then). */
  void (*rollback)(db_conn_t *c);

  /** This session's identity for offset_claim()'s holder column: enough
   *  for kill_holder() to end exactly this session (mysql: the connection
   *  id; postgresql: the backend pid and its start time). */
  int (*session_id)(db_conn_t *c, char *out, size_t outlen, char *err,
                    size_t errlen);

  /** Create the offsets table and its namespace when missing (ddl
   *  connection; idempotent when agents race):
   *  (group, partition, scn, epoch, holder, updated_at), primary key
   *  (group, partition); scn and epoch unsigned 64-bit or NUMERIC(20). */
  int (*offsets_ensure)(db_conn_t *c, char *err, size_t errlen);

  /** In the open transaction: the partition's row, locked until the
   *  transaction ends (inserted as scn 0, epoch 0, holder '' first when
   *  missing). lock_wait_ms bounds the wait for another session's lock:
   *  then -EAGAIN, with *holder, *scn and *epoch set from a non-locking
   *  read of the row (what its holder last committed; the holder as
   *  session_id() wrote it).
   *  @param holder, holderlen  may be NULL */
  int (*offset_lock)(db_conn_t *c, uint32_t partition, uint64_t lock_wait_ms,
                     uint64_t *scn, uint64_t *epoch, char *holder,
                     size_t holderlen, char *err, size_t errlen);
  /** In the open transaction, the row locked: set scn and epoch (and
   *  holder unless it is NULL), updated_at now. */
  int (*offset_write)(db_conn_t *c, uint32_t partition, uint64_t scn,
                      uint64_t epoch, const char *holder, char *err,
                      size_t errlen);
  /** End the session holder names (another agent's connection stuck in a
   *  transaction on the partition's row: a stopped or cut-off former
   *  owner), so that its transaction rolls back and its lock goes. A
   *  session that is gone already is success. */
  int (*kill_holder)(db_conn_t *c, const char *holder, char *err,
                     size_t errlen);

  /** ddl connection: whether t exists at the destination, and the names
   *  of its columns (*names: an array of *n strings, freed with
   *  db_names_free()). */
  int (*table_columns)(db_conn_t *c, const db_table_t *t, int *exists,
                       char ***names, size_t *n, char *err, size_t errlen);
  /** ddl connection: CREATE TABLE IF NOT EXISTS with every column and the
   *  primary key; its namespace (database, schema) too when missing. */
  int (*table_create)(db_conn_t *c, const db_table_t *t, char *err,
                      size_t errlen);
  /** ddl connection: add column col of t (nullable, whatever the
   *  source says: rows already there have no value for it), idempotent
   *  when another agent added it first. */
  int (*column_add)(db_conn_t *c, const db_table_t *t, size_t col, char *err,
                    size_t errlen);
  /** Free t->drv (statements of any connection that used the table are
   *  the driver's to track). */
  void (*table_free)(db_table_t *t);

  /** The run of shape sh on this connection: a prepared statement and the
   *  buffers of the operations not executed yet. Made on first use and
   *  kept (with the table: t->drv, freed by table_free()); the same shape
   *  gives the same run. Several runs may hold operations at once: the
   *  generic layer only lets operations of different runs wait together
   *  when they touch different rows (different keys), so a driver may
   *  execute runs in any order, but the operations of one run in the
   *  order they were added. */
  int (*run_open)(db_conn_t *c, const db_shape_t *sh, db_run_t **out, char *err,
                  size_t errlen);
  /** Add one operation to r: set[i] is the value of column sh->set[i],
   *  where[i] of sh->where[i] (never HERALD_V_ABSENT). The driver copies
   *  what it needs (the values are valid only during the call); it
   *  executes nothing here. @returns 0; 1 when the operation is taken and
   *  r must be flushed now (its buffers are full, or its kind runs one
   *  operation at a time); <0 when the values cannot be taken (nothing of
   *  the operation is kept). */
  int (*run_add)(db_conn_t *c, db_run_t *r, const herald_value_t *const *set,
                 const herald_value_t *const *where, char *err, size_t errlen);
  /** Execute r's waiting operations, in order. On an error, *bad is the
   *  index (0-based, among the operations this flush executed) of the one
   *  that failed when the engine says, else SIZE_MAX; the transaction is
   *  then to be rolled back, and r's waiting operations are dropped by the
   *  next run_open() or run_add(). */
  int (*run_flush)(db_conn_t *c, db_run_t *r, size_t *bad, char *err,
                   size_t errlen);
  /** The values of operation i of r's failed flush, as "col=value, ..."
   *  for its key (or its where[] columns), for the error message. */
  void (*run_describe)(db_conn_t *c, db_run_t *r, size_t i, char *out,
                       size_t outlen);
  /** Drop r's waiting operations (after a rollback). */
  void (*run_reset)(db_conn_t *c, db_run_t *r);

  /** sink.ddl apply (mysql only, else NULL): run a source statement as it
   *  is, in database db ("" for none). *done: the error says the
   *  statement's effect is there already (a table that exists, a column
   *  that does, a table already dropped: a replay after a crash between
   *  the statement and its offset). */
  int (*exec_ddl)(db_conn_t *c, const char *db, const char *stmt, int *done,
                  char *err, size_t errlen);
} db_driver_t;

extern const db_driver_t sink__mysql_driver;
extern const db_driver_t sink__pg_driver;

/** The sink ops of the database sinks: one generic layer over a driver
 *  (sink_db.c). */
extern const sink_ops_t sink__mysql_ops;
extern const sink_ops_t sink__pg_ops;

/** Free an array of names from table_columns(). */
void db_names_free(char **names, size_t n);

/**
 * @brief The SQL of sh for a driver that builds statements as text with
 *        placeholders: "?" (mysql) or "$1, $2, ..." (postgresql), names
 *        quoted with quote ('`' or '"'; a quote inside a name doubled).
 *        Shared so that both engines agree on what each kind means.
 * @param dialect  'm' MariaDB/MySQL, 'p' PostgreSQL
 * @returns the statement, malloc'd, for one operation (one row of values):
 *          set[] values first, then where[] values.
 */
char *db_sql_for(const db_shape_t *sh, int dialect);

/** Append name to buf quoted for dialect ('m' or 'p'). */
void db_quote(char **buf, size_t *len, size_t *cap, const char *name,
              int dialect);

#endif
