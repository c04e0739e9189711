/*
 * sink_db.c - the generic layer of the database sinks (sink.type mysql and
 * postgresql) over an engine's driver (sink_db.h).
 *
 * It owns what makes a database sink exactly once and safe:
 *
 * - herald_offsets: each destination transaction begins by locking the
 *   partition's row, checks that no newer owner (epoch) wrote it, applies
 *   whole windows, writes the last one's SCN and commits: rows and offset
 *   together or neither. open() claims the row with our epoch (ending the
 *   session of a stopped former owner that still holds it) and reports its
 *   SCN as the partition's position, so the agent resumes after what the
 *   destination holds, and a window at or below it is skipped.
 * - transactions of whole windows: several windows per transaction
 *   (sink.batch_windows, sink.batch_rows), ended early when nothing more
 *   is waiting (idle) or at a flush; a window in chunks has a transaction
 *   of its own, so a flush in its middle has nothing to commit and never
 *   commits part of it.
 * - row changes to operations: upserts and deletes by key, key moves split
 *   by partition (herald_change_owned()), whole-image matches for tables
 *   without a key; consecutive operations of one shape are one run, which
 *   a driver sends as one statement for many rows. Runs execute in stream
 *   order, so the order of every key is kept.
 * - tables: the stream's definitions, renames, creating missing tables and
 *   columns (sink.schema_changes evolve) on a second, autocommit
 *   connection, or refusing (none).
 * - the source's DDL: logged once (TRUNCATE and DROP TABLE as warnings:
 *   the destination keeps its rows), or applied (sink.ddl apply).
 */
#include "sink_db.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"

#define COMP "sink"
/* The most operations waiting in one run: a run's bookkeeping (the SCN of
 * each operation, for error messages) stays bounded whatever the window. */
#define RUN_MAX 4096
/* Runs waiting at once (one per shape), and the slots of the table of the
 * keys they hold: when either fills up, everything waiting is executed. */
#define RUNS_MAX 32
#define KEYS_CAP 65536
/* How often open() ends a session that holds the partition's offsets row
 * before it gives up (each try waits up to sink.timeout, at most 5 s). */
#define CLAIM_TRIES 5
#define TABLE_BUCKETS 512

typedef struct tnode {
  struct tnode *next;
  db_table_t *t;
  int ready; /* checked (and evolved) at the destination by this handle */
} tnode_t;

/* One run as the generic layer tracks it. */
typedef struct {
  db_shape_t sh; /* its arrays owned (set, where) */
  db_run_t *dr;  /* the driver's */
  size_t n;      /* operations waiting */
  uint32_t gen;  /* bumped at each flush: older keys[] entries are stale */
  uint64_t scn[RUN_MAX]; /* the window of each waiting operation */
} grun_t;

/* A key with operations waiting: in which run, as of which flush. */
typedef struct {
  uint64_t h; /* 0: free */
  uint32_t run, gen;
} kslot_t;

typedef struct {
  sink_t base;
  const db_driver_t *drv;
  hd_agent_conf_t conf; /* the keys a database sink reads, copied */
  db_conf_t k;
  char *password;
  char *offsets_ns, *offsets_name;
  uint64_t *ddl_seen; /* per partition: the last window whose statements
                         were logged (a replay does not log them again) */
} db_sink_t;

typedef struct {
  sink_part_t base;
  db_sink_t *s;
  uint32_t p;
  uint64_t epoch;
  char holder[160]; /* our session, as the driver names it */
  db_conn_t *c;     /* transactions */
  db_conn_t *ddl;   /* schema statements, autocommit */
  uint64_t applied; /* the destination's offset, committed */
  int txn;          /* a transaction is open */
  uint64_t txn_windows, txn_rows, txn_scn; /* whole windows in it */
  int in_window; /* a window in chunks is being applied (its own txn) */
  int skip;      /* the window being received is at the destination */
  /* runs holding operations not executed yet: at most one per shape, and
   * every key's waiting operations in one of them (keys[]) */
  grun_t runs[RUNS_MAX];
  size_t nruns;
  kslot_t *keys; /* KEYS_CAP slots, open addressing */
  size_t nkeys;  /* slots used (live or stale) */
  /* one operation's columns, reused */
  uint32_t *set_i, *where_i, *tmp_i;
  const herald_value_t **set_v, **where_v, **tmp_v;
  size_t op_cap;
  tnode_t *buckets[TABLE_BUCKETS];
} db_part_t;

/* ------------------------------------------------------------ helpers */

void db_names_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

static void buf_add(char **b, size_t *len, size_t *cap, const char *s,
                    size_t n) {
  if (*len + n + 1 > *cap) {
    size_t c = *cap ? *cap : 256;
    while (c < *len + n + 1)
      c *= 2;
    *b = hd_realloc(*b, c);
    *cap = c;
  }
  memcpy(*b + *len, s, n);
  *len += n;
  (*b)[*len] = '\0';
}

static void buf_str(char **b, size_t *len, size_t *cap, const char *s) {
  buf_add(b, len, cap, s, strlen(s));
}

void db_quote(char **b, size_t *len, size_t *cap, const char *name,
              int dialect) {
  char q = dialect == 'm' ? '`' : '"';
  buf_add(b, len, cap, &q, 1);
  for (const char *p = name; *p; p++) {
    buf_add(b, len, cap, p, 1);
    if (*p == q)
      buf_add(b, len, cap, p, 1);
  }
  buf_add(b, len, cap, &q, 1);
}

static void quote_table(char **b, size_t *len, size_t *cap, const db_table_t *t,
                        int d) {
  db_quote(b, len, cap, t->dst_ns, d);
  buf_add(b, len, cap, ".", 1);
  db_quote(b, len, cap, t->dst_name, d);
}

static void placeholder(char **b, size_t *len, size_t *cap, int d,
                        unsigned *k) {
  char ph[16];
  if (d == 'm')
    snprintf(ph, sizeof(ph), "?");
  else
    snprintf(ph, sizeof(ph), "$%u", ++*k);
  buf_str(b, len, cap, ph);
}

static int is_key(const db_table_t *t, uint32_t col) {
  return t->cols[col].def.pk_position != 0;
}

/* "WHERE a <=> ? AND b <=> ?" or, exact, "a = ? AND ..." */
static void where_list(char **b, size_t *len, size_t *cap, const db_shape_t *sh,
                       int d, unsigned *k, int nullsafe) {
  for (size_t i = 0; i < sh->nwhere; i++) {
    if (i)
      buf_str(b, len, cap, " AND ");
    db_quote(b, len, cap, sh->t->cols[sh->where[i]].def.name, d);
    buf_str(b, len, cap,
            !nullsafe  ? " = "
            : d == 'm' ? " <=> "
                       : " IS NOT DISTINCT FROM ");
    placeholder(b, len, cap, d, k);
  }
}

static void insert_into(char **b, size_t *len, size_t *cap,
                        const db_shape_t *sh, int d, unsigned *k) {
  buf_str(b, len, cap, "INSERT INTO ");
  quote_table(b, len, cap, sh->t, d);
  buf_str(b, len, cap, " (");
  for (size_t i = 0; i < sh->nset; i++) {
    if (i)
      buf_str(b, len, cap, ", ");
    db_quote(b, len, cap, sh->t->cols[sh->set[i]].def.name, d);
  }
  buf_str(b, len, cap, ") VALUES (");
  for (size_t i = 0; i < sh->nset; i++) {
    if (i)
      buf_str(b, len, cap, ", ");
    placeholder(b, len, cap, d, k);
  }
  buf_str(b, len, cap, ")");
}

/* "b = VALUES(b), c = VALUES(c)": each non-key column of set[] from the row
 * the insert proposed (pre + name + post). */
static void update_list(char **b, size_t *len, size_t *cap,
                        const db_shape_t *sh, int d, const char *pre,
                        const char *post) {
  size_t n = 0;
  for (size_t i = 0; i < sh->nset; i++) {
    if (is_key(sh->t, sh->set[i]))
      continue;
    const char *c = sh->t->cols[sh->set[i]].def.name;
    if (n++)
      buf_str(b, len, cap, ", ");
    db_quote(b, len, cap, c, d);
    buf_str(b, len, cap, pre);
    db_quote(b, len, cap, c, d);
    buf_str(b, len, cap, post);
  }
}

char *db_sql_for(const db_shape_t *sh, int d) {
  char *b = NULL;
  size_t len = 0, cap = 0;
  unsigned k = 0;
  const db_table_t *t = sh->t;
  switch (sh->kind) {
  case DB_UPSERT: {
    insert_into(&b, &len, &cap, sh, d, &k);
    size_t nonkey = 0;
    for (size_t i = 0; i < sh->nset; i++)
      nonkey += !is_key(t, sh->set[i]);
    if (d == 'm') {
      buf_str(&b, &len, &cap, " ON DUPLICATE KEY UPDATE ");
      if (nonkey == 0) { /* only the key: insert it, or leave the row */
        const char *c0 = t->cols[t->pk[0]].def.name;
        db_quote(&b, &len, &cap, c0, d);
        buf_str(&b, &len, &cap, " = ");
        db_quote(&b, &len, &cap, c0, d);
      }
      update_list(&b, &len, &cap, sh, d, " = VALUES(", ")");
    } else {
      buf_str(&b, &len, &cap, " ON CONFLICT (");
      for (size_t i = 0; i < t->npk; i++) {
        if (i)
          buf_str(&b, &len, &cap, ", ");
        db_quote(&b, &len, &cap, t->cols[t->pk[i]].def.name, d);
      }
      buf_str(&b, &len, &cap, nonkey ? ") DO UPDATE SET " : ") DO NOTHING");
      update_list(&b, &len, &cap, sh, d, " = EXCLUDED.", "");
    }
    break;
  }
  case DB_INSERT:
    insert_into(&b, &len, &cap, sh, d, &k);
    break;
  case DB_DELETE:
    buf_str(&b, &len, &cap, "DELETE FROM ");
    quote_table(&b, &len, &cap, t, d);
    buf_str(&b, &len, &cap, " WHERE ");
    where_list(&b, &len, &cap, sh, d, &k, 0);
    break;
  case DB_UPDATE_ROW:
  case DB_DELETE_ROW:
    buf_str(&b, &len, &cap,
            sh->kind == DB_UPDATE_ROW ? "UPDATE " : "DELETE FROM ");
    quote_table(&b, &len, &cap, t, d);
    if (sh->kind == DB_UPDATE_ROW) {
      buf_str(&b, &len, &cap, " SET ");
      for (size_t i = 0; i < sh->nset; i++) {
        if (i)
          buf_str(&b, &len, &cap, ", ");
        db_quote(&b, &len, &cap, t->cols[sh->set[i]].def.name, d);
        buf_str(&b, &len, &cap, " = ");
        placeholder(&b, &len, &cap, d, &k);
      }
    }
    if (d == 'm') {
      buf_str(&b, &len, &cap, " WHERE ");
      where_list(&b, &len, &cap, sh, d, &k, 1);
      buf_str(&b, &len, &cap, " LIMIT 1");
    } else {
      /* PostgreSQL has no UPDATE/DELETE ... LIMIT: one row by its ctid */
      buf_str(&b, &len, &cap, " WHERE ctid = (SELECT ctid FROM ");
      quote_table(&b, &len, &cap, t, d);
      buf_str(&b, &len, &cap, " WHERE ");
      where_list(&b, &len, &cap, sh, d, &k, 1);
      buf_str(&b, &len, &cap, " LIMIT 1)");
    }
    break;
  }
  return b;
}

/* A value for a message: numbers as they are, text quoted and cut. */
static void value_text(const herald_value_t *v, char *out, size_t n) {
  size_t len = 0;
  const char *d;
  switch (herald_value_type(v)) {
  case HERALD_V_NULL:
    snprintf(out, n, "NULL");
    return;
  case HERALD_V_INT:
    snprintf(out, n, "%" PRId64, herald_value_int(v));
    return;
  case HERALD_V_UINT:
    snprintf(out, n, "%" PRIu64, herald_value_uint(v));
    return;
  case HERALD_V_FLOAT:
  case HERALD_V_DOUBLE:
    snprintf(out, n, "%.17g", herald_value_double(v));
    return;
  case HERALD_V_BYTES:
  case HERALD_V_BADTEXT:
    d = herald_value_data(v, &len);
    snprintf(out, n, "<%zu bytes>", len);
    return;
  default:
    d = herald_value_data(v, &len);
    snprintf(out, n, "'%.*s%s'", (int)(len > 40 ? 40 : len), d ? d : "",
             len > 40 ? "..." : "");
    return;
  }
}

/* "id=5, name='x'" of an image of the change. */
static void image_text(const herald_change_t *ch, int image, char *out,
                       size_t n) {
  size_t o = 0, m = herald_change_columns(ch, image);
  out[0] = '\0';
  for (size_t i = 0; i < m && o + 1 < n; i++) {
    const char *name;
    const herald_value_t *v = herald_change_value(ch, image, i, &name);
    char vt[64];
    value_text(v, vt, sizeof(vt));
    int w = snprintf(out + o, n - o, "%s%s=%s", i ? ", " : "", name, vt);
    if (w < 0)
      break;
    o += (size_t)w;
  }
  if (o >= n && n > 4)
    strcpy(out + n - 4, "...");
}

/* --------------------------------------------------------- the sink */

static char *dup_or_null(const char *s) {
  return s ? hd_strdup(s) : NULL;
}

static int read_password(const char *path, char **out, char *err,
                         size_t errlen) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return hd_errorf(err, errlen, -errno, "sink.password_file '%s': %s", path,
                     strerror(errno));
  char line[1024];
  if (fgets(line, sizeof(line), f) == NULL) {
    fclose(f);
    return hd_errorf(err, errlen, -EINVAL, "sink.password_file '%s': empty",
                     path);
  }
  fclose(f);
  line[strcspn(line, "\r\n")] = '\0';
  *out = hd_strdup(line);
  return 0;
}

static void conf_free(hd_agent_conf_t *c) {
  free(c->agent.id);
  free(c->agent.group);
  char **strs[] = {
      &c->sink.host,     &c->sink.socket,        &c->sink.user,
      &c->sink.password, &c->sink.password_file, &c->sink.database,
      &c->sink.dsn,      &c->sink.schema,        &c->sink.offsets_table};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    free(*strs[i]);
  for (size_t i = 0; i < c->sink.tables.n; i++)
    free(c->sink.tables.v[i]);
  free(c->sink.tables.v);
}

/* The keys a database sink reads; everything else of the agent's config
 * is left out (the sink must not keep pointers into it). */
static void conf_copy(hd_agent_conf_t *d, const hd_agent_conf_t *s) {
  memset(d, 0, sizeof(*d));
  d->agent.id = dup_or_null(s->agent.id);
  d->agent.group = dup_or_null(s->agent.group);
  d->agent.partitions = s->agent.partitions;
  d->sink = s->sink;
  d->sink.path = d->sink.command = NULL;
  d->sink.host = dup_or_null(s->sink.host);
  d->sink.socket = dup_or_null(s->sink.socket);
  d->sink.user = dup_or_null(s->sink.user);
  d->sink.password = dup_or_null(s->sink.password);
  d->sink.password_file = dup_or_null(s->sink.password_file);
  d->sink.database = dup_or_null(s->sink.database);
  d->sink.dsn = dup_or_null(s->sink.dsn);
  d->sink.schema = dup_or_null(s->sink.schema);
  d->sink.offsets_table = dup_or_null(s->sink.offsets_table);
  d->sink.tables.n = s->sink.tables.n;
  d->sink.tables.v =
      s->sink.tables.n ? hd_calloc(s->sink.tables.n, sizeof(char *)) : NULL;
  for (size_t i = 0; i < s->sink.tables.n; i++)
    d->sink.tables.v[i] = hd_strdup(s->sink.tables.v[i]);
}

static int db_create(const hd_agent_conf_t *conf, const db_driver_t *drv,
                     sink_t **out, char *err, size_t errlen) {
  if (drv->exec_ddl == NULL && conf->sink.ddl == HD_DDL_APPLY)
    return hd_errorf(err, errlen, -EINVAL,
                     "%s sink: sink.ddl apply is not supported", drv->name);
  db_sink_t *s = hd_calloc(1, sizeof(*s));
  s->drv = drv;
  conf_copy(&s->conf, conf);
  if (conf->sink.password)
    s->password = hd_strdup(conf->sink.password);
  else if (conf->sink.password_file) {
    int rc = read_password(conf->sink.password_file, &s->password, err, errlen);
    if (rc < 0) {
      conf_free(&s->conf);
      free(s);
      return rc;
    }
  }
  const char *ot = s->conf.sink.offsets_table ? s->conf.sink.offsets_table
                                              : "herald.herald_offsets";
  const char *dot = strchr(ot, '.');
  s->offsets_ns =
      dot ? hd_strndup(ot, (size_t)(dot - ot)) : hd_strdup("herald");
  s->offsets_name = hd_strdup(dot ? dot + 1 : ot);
  s->k.conf = &s->conf;
  s->k.password = s->password;
  s->k.offsets_ns = s->offsets_ns;
  s->k.offsets_name = s->offsets_name;
  s->k.group = s->conf.agent.group ? s->conf.agent.group : "";
  s->k.agent_id = s->conf.agent.id ? s->conf.agent.id : "";
  s->ddl_seen = hd_calloc(
      (size_t)(conf->agent.partitions > 0 ? conf->agent.partitions : 1),
      sizeof(uint64_t));
  *out = &s->base;
  return 0;
}

static int mysql_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                        size_t errlen) {
  return db_create(conf, &sink__mysql_driver, out, err, errlen);
}

static int pg_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                     size_t errlen) {
  return db_create(conf, &sink__pg_driver, out, err, errlen);
}

static void db_destroy(sink_t *base) {
  db_sink_t *s = (db_sink_t *)base;
  conf_free(&s->conf);
  free(s->password);
  free(s->offsets_ns);
  free(s->offsets_name);
  free(s->ddl_seen);
  free(s);
}

/* ------------------------------------------------------------ tables */

static void table_free(const db_driver_t *drv, db_table_t *t) {
  if (t->drv)
    drv->table_free(t);
  for (size_t i = 0; i < t->ncols; i++) {
    herald_column_t *c = &t->cols[i].def;
    free((char *)c->name);
    free((char *)c->sql_type);
    free((char *)c->base_type);
    free((char *)c->charset);
    for (size_t l = 0; l < c->nlabels; l++)
      free((char *)c->labels[l]);
    free((char **)c->labels);
  }
  free(t->cols);
  free(t->pk);
  free(t->src_db);
  free(t->src_table);
  free(t->dst_ns);
  free(t->dst_name);
  free(t);
}

static uint32_t thash(const char *db, const char *table, uint32_t version) {
  uint32_t h = 2166136261u ^ version;
  for (const char *p = db; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  h = (h ^ '.') * 16777619u;
  for (const char *p = table; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  return h % TABLE_BUCKETS;
}

/* The destination of a source table: a rename, else sink.database (mysql)
 * or sink.schema (postgresql), else the source's database. */
static void dst_names(const db_sink_t *s, db_table_t *t) {
  const hd_strlist_t *m = &s->conf.sink.tables;
  size_t dl = strlen(t->src_db);
  for (size_t i = 0; i + 1 < m->n; i += 2) {
    const char *k = m->v[i];
    if (strncmp(k, t->src_db, dl) == 0 && k[dl] == '.' &&
        strcmp(k + dl + 1, t->src_table) == 0) {
      const char *v = m->v[i + 1], *dot = strchr(v, '.');
      t->dst_ns = hd_strndup(v, (size_t)(dot - v));
      t->dst_name = hd_strdup(dot + 1);
      return;
    }
  }
  const char *ns = s->drv == &sink__mysql_driver ? s->conf.sink.database
                                                 : s->conf.sink.schema;
  t->dst_ns = hd_strdup(ns ? ns : t->src_db);
  t->dst_name = hd_strdup(t->src_table);
}

static db_table_t *table_make(const db_sink_t *s, const herald_schema_t *sc) {
  db_table_t *t = hd_calloc(1, sizeof(*t));
  t->src_db = hd_strdup(herald_schema_db(sc));
  t->src_table = hd_strdup(herald_schema_table(sc));
  t->version = herald_schema_version(sc);
  t->ncols = herald_schema_columns(sc);
  t->cols = hd_calloc(t->ncols ? t->ncols : 1, sizeof(db_col_t));
  for (size_t i = 0; i < t->ncols; i++) {
    const herald_column_t *c = herald_schema_column(sc, i);
    herald_column_t *d = &t->cols[i].def;
    *d = *c;
    d->name = hd_strdup(c->name ? c->name : "");
    d->sql_type = hd_strdup(c->sql_type ? c->sql_type : "");
    d->base_type = hd_strdup(c->base_type ? c->base_type : "");
    d->charset = hd_strdup(c->charset ? c->charset : "");
    if (c->nlabels) {
      const char **l = hd_calloc(c->nlabels, sizeof(char *));
      for (size_t j = 0; j < c->nlabels; j++)
        l[j] = hd_strdup(c->labels[j] ? c->labels[j] : "");
      d->labels = l;
    } else {
      d->labels = NULL;
    }
    if (c->pk_position)
      t->npk++;
  }
  t->pk = hd_calloc(t->npk ? t->npk : 1, sizeof(uint32_t));
  for (size_t i = 0; i < t->ncols; i++) {
    uint32_t pos = t->cols[i].def.pk_position;
    if (pos >= 1 && pos <= t->npk)
      t->pk[pos - 1] = (uint32_t)i;
  }
  dst_names(s, t);
  return t;
}

static int col_named(const db_part_t *dp, const char *a, const char *b) {
  /* MariaDB's column names are case-insensitive; PostgreSQL's, quoted as
   * we quote them, are not. */
  return dp->s->drv == &sink__mysql_driver ? strcasecmp(a, b) == 0
                                           : strcmp(a, b) == 0;
}

static int ddl_conn(db_part_t *dp, char *err, size_t errlen) {
  if (dp->ddl)
    return 0;
  return dp->s->drv->connect(&dp->s->k, 1, &dp->ddl, err, errlen);
}

/* Make t exist at the destination with every column of the stream's
 * definition (evolve), or check that it does (none). */
static int table_ready(db_part_t *dp, db_table_t *t, char *err, size_t errlen) {
  const db_driver_t *drv = dp->s->drv;
  int evolve = dp->s->conf.sink.schema_changes == HD_SCHEMA_EVOLVE;
  int rc = ddl_conn(dp, err, errlen);
  if (rc < 0)
    return rc;
  int exists = 0;
  char **names = NULL;
  size_t n = 0;
  rc = drv->table_columns(dp->ddl, t, &exists, &names, &n, err, errlen);
  if (rc < 0)
    return rc;
  if (!exists) {
    db_names_free(names, n);
    if (!evolve)
      return hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                       "table %s.%s (for %s.%s) does not exist at the "
                       "destination and sink.schema_changes is none",
                       t->dst_ns, t->dst_name, t->src_db, t->src_table);
    rc = drv->table_create(dp->ddl, t, err, errlen);
    if (rc == 0)
      hd_log(HD_LL_INFO, COMP, "table created",
             "sink=%s partition=%u table=%s.%s", drv->name, dp->p, t->dst_ns,
             t->dst_name);
    return rc;
  }
  for (size_t i = 0; i < t->ncols && rc == 0; i++) {
    int found = 0;
    for (size_t j = 0; j < n && !found; j++)
      found = col_named(dp, names[j], t->cols[i].def.name);
    if (found)
      continue;
    if (!evolve) {
      rc = hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                     "table %s.%s has no column '%s' (source %s.%s) and "
                     "sink.schema_changes is none",
                     t->dst_ns, t->dst_name, t->cols[i].def.name, t->src_db,
                     t->src_table);
      break;
    }
    rc = drv->column_add(dp->ddl, t, i, err, errlen);
    if (rc == 0)
      hd_log(HD_LL_INFO, COMP, "column added",
             "sink=%s partition=%u table=%s.%s column=%s", drv->name, dp->p,
             t->dst_ns, t->dst_name, t->cols[i].def.name);
  }
  db_names_free(names, n);
  return rc;
}

/* The table of a change (made on first sight), or NULL with err. */
static tnode_t *table_for(db_part_t *dp, herald_client_t *hc,
                          const herald_change_t *ch, char *err, size_t errlen) {
  const char *db = herald_change_db(ch), *tb = herald_change_table(ch);
  uint32_t v = herald_change_schema_version(ch);
  uint32_t h = thash(db, tb, v);
  for (tnode_t *n = dp->buckets[h]; n; n = n->next)
    if (n->t->version == v && strcmp(n->t->src_table, tb) == 0 &&
        strcmp(n->t->src_db, db) == 0)
      return n;
  const herald_schema_t *sc = hc ? herald_change_schema(hc, ch) : NULL;
  if (sc == NULL) {
    hd_errorf(err, errlen, HD_ESINK_SCHEMA,
              "no table definition for %s.%s (version %" PRIu32
              ") in the stream: a database sink needs the relay's table "
              "schemas",
              db, tb, v);
    return NULL;
  }
  tnode_t *n = hd_calloc(1, sizeof(*n));
  n->t = table_make(dp->s, sc);
  n->next = dp->buckets[h];
  dp->buckets[h] = n;
  return n;
}

static void tables_free(db_part_t *dp) {
  for (size_t b = 0; b < TABLE_BUCKETS; b++) {
    tnode_t *n = dp->buckets[b];
    while (n) {
      tnode_t *next = n->next;
      table_free(dp->s->drv, n->t);
      free(n);
      n = next;
    }
    dp->buckets[b] = NULL;
  }
}

/* ------------------------------------------------------ transactions */

static int fenced(db_part_t *dp, uint64_t epoch, char *err, size_t errlen) {
  return hd_errorf(err, errlen, HD_ESINK_FENCED,
                   "%s sink: partition %u: the destination's %s.%s names "
                   "owner epoch %" PRIu64 ", newer than ours (%" PRIu64
                   "): another agent has the partition",
                   dp->s->drv->name, dp->p, dp->s->offsets_ns,
                   dp->s->offsets_name, epoch, dp->epoch);
}

static uint64_t lock_wait_ms(const db_part_t *dp) {
  return dp->s->conf.sink.timeout_ms;
}

static void runs_drop(db_part_t *dp) {
  for (size_t i = 0; i < dp->nruns; i++) {
    grun_t *r = &dp->runs[i];
    if (r->n)
      dp->s->drv->run_reset(dp->c, r->dr);
    r->n = 0;
    free((uint32_t *)r->sh.set);
    free((uint32_t *)r->sh.where);
  }
  dp->nruns = 0;
  if (dp->nkeys)
    memset(dp->keys, 0, KEYS_CAP * sizeof(kslot_t));
  dp->nkeys = 0;
}

static void txn_reset(db_part_t *dp) {
  dp->txn = 0;
  dp->txn_windows = dp->txn_rows = dp->txn_scn = 0;
}

static void txn_abort(db_part_t *dp) {
  if (dp->txn)
    dp->s->drv->rollback(dp->c);
  runs_drop(dp);
  txn_reset(dp);
}

static int txn_begin(db_part_t *dp, char *err, size_t errlen) {
  const db_driver_t *drv = dp->s->drv;
  int rc = drv->begin(dp->c, err, errlen);
  if (rc < 0)
    return rc;
  dp->txn = 1;
  uint64_t scn = 0, epoch = 0;
  rc = drv->offset_lock(dp->c, dp->p, lock_wait_ms(dp), &scn, &epoch, NULL, 0,
                        err, errlen);
  if (rc == -EAGAIN)
    rc = hd_errorf(err, errlen, HD_ESINK_DB,
                   "%s sink: partition %u: another session holds the "
                   "partition's row in %s.%s",
                   drv->name, dp->p, dp->s->offsets_ns, dp->s->offsets_name);
  if (rc == 0 && epoch > dp->epoch)
    rc = fenced(dp, epoch, err, errlen);
  if (rc == 0 && scn != dp->applied)
    /* Only a second writer with our epoch moves it (two standalone agents
     * of one group): stop rather than interleave with it. */
    rc = hd_errorf(err, errlen, HD_ESINK_FENCED,
                   "%s sink: partition %u: the destination's offset moved to "
                   "SCN %" PRIu64 " (we applied up to %" PRIu64
                   "): another writer with epoch %" PRIu64,
                   drv->name, dp->p, scn, dp->applied, epoch);
  if (rc < 0)
    txn_abort(dp);
  return rc;
}

static int runs_flush(db_part_t *dp, char *err, size_t errlen);

static int txn_commit(db_part_t *dp, char *err, size_t errlen) {
  if (!dp->txn)
    return 0;
  const db_driver_t *drv = dp->s->drv;
  int rc = runs_flush(dp, err, errlen);
  if (rc == 0 && dp->txn_windows)
    rc = drv->offset_write(dp->c, dp->p, dp->txn_scn, dp->epoch, NULL, err,
                           errlen);
  if (rc == 0)
    rc = drv->commit(dp->c, err, errlen);
  if (rc < 0) {
    txn_abort(dp);
    return rc;
  }
  if (dp->txn_windows)
    dp->applied = dp->txn_scn;
  txn_reset(dp);
  return 0;
}

/* --------------------------------------------------------------- runs */

/* Prefix err's message with where it happened: partition, SCN, table and
 * the key of the operation. */
static int locate(db_part_t *dp, int rc, uint64_t scn, const db_table_t *t,
                  const char *key, char *err, size_t errlen) {
  char why[512];
  snprintf(why, sizeof(why), "%s", err);
  if (t == NULL) /* the driver's message names the table itself */
    return hd_errorf(err, errlen, rc,
                     "%s sink: partition %u, window SCN %" PRIu64 ": %s",
                     dp->s->drv->name, dp->p, scn, why);
  return hd_errorf(err, errlen, rc,
                   "%s sink: partition %u, window SCN %" PRIu64
                   ", table %s.%s%s%s%s: %s",
                   dp->s->drv->name, dp->p, scn, t->dst_ns, t->dst_name,
                   key && *key ? ", key {" : "", key ? key : "",
                   key && *key ? "}" : "", why);
}

/* Execute run i's waiting operations. */
static int run_flush(db_part_t *dp, size_t i, char *err, size_t errlen) {
  grun_t *r = &dp->runs[i];
  if (r->n == 0)
    return 0;
  size_t bad = SIZE_MAX, n = r->n;
  int rc = dp->s->drv->run_flush(dp->c, r->dr, &bad, err, errlen);
  r->n = 0;
  r->gen++;
  if (rc == 0)
    return 0;
  char key[256] = "";
  uint64_t scn = r->scn[n - 1];
  if (bad < n) {
    dp->s->drv->run_describe(dp->c, r->dr, bad, key, sizeof(key));
    scn = r->scn[bad];
  }
  /* without the operation, the failure may be another run's (a driver
   * that executes behind the caller): its message says which */
  return locate(dp, rc, scn, bad < n ? r->sh.t : NULL, key, err, errlen);
}

/* Execute everything waiting; the runs are let go (their statements stay
 * with the tables). */
static int runs_flush(db_part_t *dp, char *err, size_t errlen) {
  for (size_t i = 0; i < dp->nruns; i++) {
    int rc = run_flush(dp, i, err, errlen);
    if (rc < 0)
      return rc;
  }
  runs_drop(dp);
  return 0;
}

static int same_list(const uint32_t *a, size_t na, const uint32_t *b,
                     size_t nb) {
  return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

/* The run of the shape (t, kind, set_i, where_i), opened when missing.
 * @returns its index, or <0 */
static int run_for(db_part_t *dp, db_table_t *t, int kind, size_t nset,
                   size_t nwhere, char *err, size_t errlen) {
  for (size_t i = 0; i < dp->nruns; i++) {
    const db_shape_t *sh = &dp->runs[i].sh;
    if (sh->t == t && sh->kind == kind &&
        same_list(sh->set, sh->nset, dp->set_i, nset) &&
        same_list(sh->where, sh->nwhere, dp->where_i, nwhere))
      return (int)i;
  }
  int rc;
  if ((dp->nruns == RUNS_MAX || (dp->nruns && dp->s->drv->one_run)) &&
      (rc = runs_flush(dp, err, errlen)) < 0)
    return rc;
  grun_t *r = &dp->runs[dp->nruns];
  uint32_t *set = hd_malloc((nset ? nset : 1) * sizeof(uint32_t));
  uint32_t *where = hd_malloc((nwhere ? nwhere : 1) * sizeof(uint32_t));
  if (nset)
    memcpy(set, dp->set_i, nset * sizeof(uint32_t));
  if (nwhere)
    memcpy(where, dp->where_i, nwhere * sizeof(uint32_t));
  r->sh = (db_shape_t){t, kind, nset, set, nwhere, where};
  r->n = 0;
  if ((rc = dp->s->drv->run_open(dp->c, &r->sh, &r->dr, err, errlen)) < 0) {
    free(set);
    free(where);
    return rc;
  }
  return (int)dp->nruns++;
}

/* A hash of the operation's key (its table and primary key values): two
 * operations on one row always have the same one. */
static uint64_t key_hash(const db_table_t *t, const uint32_t *idx,
                         const herald_value_t *const *v, size_t n) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)t;
  for (size_t i = 0; i < n; i++) {
    if (!is_key(t, idx[i]))
      continue;
    int type = herald_value_type(v[i]);
    uint64_t x;
    const char *d = NULL;
    size_t len = 0;
    if (type == HERALD_V_INT || type == HERALD_V_UINT) {
      x = type == HERALD_V_INT ? (uint64_t)herald_value_int(v[i])
                               : herald_value_uint(v[i]);
      d = (const char *)&x;
      len = sizeof(x);
    } else if (type == HERALD_V_FLOAT || type == HERALD_V_DOUBLE) {
      double f = herald_value_double(v[i]);
      memcpy(&x, &f, sizeof(x));
      d = (const char *)&x;
      len = sizeof(x);
    } else {
      d = herald_value_data(v[i], &len);
    }
    h = (h ^ idx[i]) * 1099511628211ull;
    for (size_t k = 0; k < len; k++)
      h = (h ^ (uint8_t)d[k]) * 1099511628211ull;
  }
  return h ? h : 1;
}

/* The slot of key h: where it is, or the free one it would take. */
static kslot_t *key_slot(db_part_t *dp, uint64_t h) {
  size_t i = (size_t)(h & (KEYS_CAP - 1));
  for (;;) {
    kslot_t *k = &dp->keys[i];
    if (k->h == h || k->h == 0)
      return k;
    i = (i + 1) & (KEYS_CAP - 1);
  }
}

static int op_add(db_part_t *dp, db_table_t *t, int kind, size_t nset,
                  size_t nwhere, uint64_t scn, const herald_change_t *ch,
                  char *err, size_t errlen) {
  int rc;
  if (t->npk == 0 && (rc = runs_flush(dp, err, errlen)) < 0)
    return rc; /* no key to order by: everything before it goes first */
  int ri = run_for(dp, t, kind, nset, nwhere, err, errlen);
  if (ri < 0)
    return ri;
  grun_t *r = &dp->runs[ri];
  if (t->npk) {
    /* Operations of other rows may wait in other runs and go in any
     * order; one row's go in one run, in order: when this row waits in
     * another run, that run goes first. */
    uint64_t h = kind == DB_DELETE
                     ? key_hash(t, dp->where_i, dp->where_v, nwhere)
                     : key_hash(t, dp->set_i, dp->set_v, nset);
    if (dp->nkeys >= KEYS_CAP / 2 && (rc = runs_flush(dp, err, errlen)) < 0)
      return rc;
    if (dp->nruns == 0) { /* flushed: the run is to be opened again */
      if ((ri = run_for(dp, t, kind, nset, nwhere, err, errlen)) < 0)
        return ri;
      r = &dp->runs[ri];
    }
    kslot_t *k = key_slot(dp, h);
    if (k->h == h && k->run != (uint32_t)ri && dp->runs[k->run].gen == k->gen &&
        dp->runs[k->run].n && (rc = run_flush(dp, k->run, err, errlen)) < 0)
      return rc;
    if (k->h == 0)
      dp->nkeys++;
    k->h = h;
    k->run = (uint32_t)ri;
    k->gen = r->gen;
  }
  rc = dp->s->drv->run_add(dp->c, r->dr, dp->set_v, dp->where_v, err, errlen);
  if (rc < 0) {
    char key[256];
    image_text(ch,
               herald_change_columns(ch, HERALD_IMAGE_KEY) ? HERALD_IMAGE_KEY
               : herald_change_op(ch) == HERALD_OP_INSERT ||
                       herald_change_op(ch) == HERALD_OP_READ
                   ? HERALD_IMAGE_AFTER
                   : HERALD_IMAGE_BEFORE,
               key, sizeof(key));
    return locate(dp, rc, scn, t, key, err, errlen);
  }
  r->scn[r->n++] = scn;
  if (rc > 0 || r->n == RUN_MAX)
    return run_flush(dp, (size_t)ri, err, errlen);
  return 0;
}

static void op_reserve(db_part_t *dp, size_t n) {
  if (n <= dp->op_cap)
    return;
  size_t c = dp->op_cap ? dp->op_cap : 16;
  while (c < n)
    c *= 2;
  dp->op_cap = c;
  dp->set_i = hd_realloc(dp->set_i, c * sizeof(uint32_t));
  dp->where_i = hd_realloc(dp->where_i, c * sizeof(uint32_t));
  dp->tmp_i = hd_realloc(dp->tmp_i, c * sizeof(uint32_t));
  dp->set_v = hd_realloc(dp->set_v, c * sizeof(void *));
  dp->where_v = hd_realloc(dp->where_v, c * sizeof(void *));
  dp->tmp_v = hd_realloc(dp->tmp_v, c * sizeof(void *));
}

/* The columns of image present in the change (not ABSENT), as indexes into
 * t->cols in ascending order with their values. */
static int image_cols(db_part_t *dp, const db_table_t *t,
                      const herald_change_t *ch, int image, uint32_t *idx,
                      const herald_value_t **vals, size_t *n, char *err,
                      size_t errlen) {
  size_t m = herald_change_columns(ch, image), k = 0, cur = 0;
  int sorted = 1;
  for (size_t i = 0; i < m; i++) {
    const char *name;
    const herald_value_t *v = herald_change_value(ch, image, i, &name);
    if (v == NULL || herald_value_type(v) == HERALD_V_ABSENT)
      continue;
    size_t j = cur;
    if (j >= t->ncols || strcmp(t->cols[j].def.name, name) != 0)
      for (j = 0; j < t->ncols && strcmp(t->cols[j].def.name, name) != 0; j++)
        ;
    if (j == t->ncols)
      return hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                       "%s.%s: column '%s' is not in the table's definition "
                       "(version %" PRIu32 ")",
                       t->src_db, t->src_table, name, t->version);
    if (k && j <= idx[k - 1])
      sorted = 0;
    idx[k] = (uint32_t)j;
    vals[k++] = v;
    cur = j + 1;
  }
  if (!sorted) /* images come in column order; keep it whatever happens */
    for (size_t a = 1; a < k; a++)
      for (size_t b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
        uint32_t ti = idx[b];
        idx[b] = idx[b - 1];
        idx[b - 1] = ti;
        const herald_value_t *tv = vals[b];
        vals[b] = vals[b - 1];
        vals[b - 1] = tv;
      }
  *n = k;
  (void)dp;
  return 0;
}

/* The key columns of t from image (KEY or OLD_KEY), in t->cols order, into
 * where_i/where_v. */
static int key_cols(db_part_t *dp, const db_table_t *t,
                    const herald_change_t *ch, int image, size_t *n, char *err,
                    size_t errlen) {
  int rc =
      image_cols(dp, t, ch, image, dp->where_i, dp->where_v, n, err, errlen);
  if (rc < 0)
    return rc;
  if (*n != t->npk)
    return hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                     "%s.%s: the change's key has %zu of the %zu primary key "
                     "columns",
                     t->src_db, t->src_table, *n, t->npk);
  return 0;
}

/* set = after, with the key columns after lacks (a minimal image's update
 * may leave the key out) added from the key image. */
static int upsert_cols(db_part_t *dp, const db_table_t *t,
                       const herald_change_t *ch, size_t *nset, char *err,
                       size_t errlen) {
  size_t na, nk;
  int rc = image_cols(dp, t, ch, HERALD_IMAGE_AFTER, dp->tmp_i, dp->tmp_v, &na,
                      err, errlen);
  if (rc == 0)
    rc = key_cols(dp, t, ch, HERALD_IMAGE_KEY, &nk, err, errlen);
  if (rc < 0)
    return rc;
  size_t a = 0, b = 0, o = 0;
  while (a < na || b < nk) {
    if (b == nk || (a < na && dp->tmp_i[a] <= dp->where_i[b])) {
      if (b < nk && dp->tmp_i[a] == dp->where_i[b])
        b++; /* after has the key column: its value wins */
      dp->set_i[o] = dp->tmp_i[a];
      dp->set_v[o++] = dp->tmp_v[a++];
    } else {
      dp->set_i[o] = dp->where_i[b];
      dp->set_v[o++] = dp->where_v[b++];
    }
  }
  *nset = o;
  return 0;
}

static int apply_change(db_part_t *dp, const sink_window_t *w,
                        const herald_change_t *ch, db_table_t *t, char *err,
                        size_t errlen) {
  int op = herald_change_op(ch), rc;
  size_t nset = 0, nwhere = 0;
  op_reserve(dp, 2 * t->ncols + 2);
  if (op == HERALD_OP_READ && t->npk == 0)
    return hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                     "%s.%s has no primary key: a snapshot row cannot be "
                     "applied without duplicating it",
                     t->src_db, t->src_table);
  if (op == HERALD_OP_READ)
    op = HERALD_OP_INSERT; /* an upsert, like an insert */
  if (t->npk == 0) {
    switch (op) {
    case HERALD_OP_INSERT:
      rc = image_cols(dp, t, ch, HERALD_IMAGE_AFTER, dp->set_i, dp->set_v,
                      &nset, err, errlen);
      return rc < 0
                 ? rc
                 : op_add(dp, t, DB_INSERT, nset, 0, w->scn, ch, err, errlen);
    case HERALD_OP_UPDATE:
      rc = image_cols(dp, t, ch, HERALD_IMAGE_AFTER, dp->set_i, dp->set_v,
                      &nset, err, errlen);
      if (rc == 0)
        rc = image_cols(dp, t, ch, HERALD_IMAGE_BEFORE, dp->where_i,
                        dp->where_v, &nwhere, err, errlen);
      if (rc == 0 && nwhere == 0)
        rc = hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                       "%s.%s has no primary key and the update has no "
                       "before image to find its row by",
                       t->src_db, t->src_table);
      return rc < 0 ? rc
                    : op_add(dp, t, DB_UPDATE_ROW, nset, nwhere, w->scn, ch,
                             err, errlen);
    case HERALD_OP_DELETE:
      rc = image_cols(dp, t, ch, HERALD_IMAGE_BEFORE, dp->where_i, dp->where_v,
                      &nwhere, err, errlen);
      if (rc == 0 && nwhere == 0)
        rc = hd_errorf(err, errlen, HD_ESINK_SCHEMA,
                       "%s.%s has no primary key and the delete has no "
                       "before image to find its row by",
                       t->src_db, t->src_table);
      return rc < 0 ? rc
                    : op_add(dp, t, DB_DELETE_ROW, 0, nwhere, w->scn, ch, err,
                             errlen);
    }
    return hd_errorf(err, errlen, HD_ESINK_SCHEMA, "unknown operation %d", op);
  }
  switch (op) {
  case HERALD_OP_INSERT:
    rc = upsert_cols(dp, t, ch, &nset, err, errlen);
    return rc < 0 ? rc
                  : op_add(dp, t, DB_UPSERT, nset, 0, w->scn, ch, err, errlen);
  case HERALD_OP_UPDATE:
    if (herald_change_columns(ch, HERALD_IMAGE_OLD_KEY)) {
      /* A key move: the old row goes from the old key's partition, the
       * new one comes to the new key's (both when they are the same). */
      if (herald_change_owned(w->hc, ch, HERALD_IMAGE_OLD_KEY) == 1) {
        rc = key_cols(dp, t, ch, HERALD_IMAGE_OLD_KEY, &nwhere, err, errlen);
        if (rc == 0)
          rc = op_add(dp, t, DB_DELETE, 0, nwhere, w->scn, ch, err, errlen);
        if (rc < 0)
          return rc;
      }
      if (herald_change_owned(w->hc, ch, HERALD_IMAGE_KEY) != 1)
        return 0;
    }
    rc = upsert_cols(dp, t, ch, &nset, err, errlen);
    return rc < 0 ? rc
                  : op_add(dp, t, DB_UPSERT, nset, 0, w->scn, ch, err, errlen);
  case HERALD_OP_DELETE:
    rc = key_cols(dp, t, ch, HERALD_IMAGE_KEY, &nwhere, err, errlen);
    return rc < 0
               ? rc
               : op_add(dp, t, DB_DELETE, 0, nwhere, w->scn, ch, err, errlen);
  }
  return hd_errorf(err, errlen, HD_ESINK_SCHEMA, "unknown operation %d", op);
}

/* ---------------------------------------------------------------- DDL */

static const char *skip_space(const char *s) {
  for (;;) {
    while (isspace((unsigned char)*s))
      s++;
    if (s[0] == '/' && s[1] == '*') {
      const char *e = strstr(s + 2, "*/");
      s = e ? e + 2 : s + strlen(s);
    } else if ((s[0] == '-' && s[1] == '-') || s[0] == '#') {
      s += strcspn(s, "\n");
    } else {
      return s;
    }
  }
}

static int starts_word(const char *s, const char *w) {
  size_t n = strlen(w);
  return strncasecmp(s, w, n) == 0 && !isalnum((unsigned char)s[n]) &&
         s[n] != '_';
}

/* TRUNCATE and DROP TABLE remove rows the destination keeps when the
 * statement is not applied: that is said louder than other statements. */
static int removes_rows(const char *stmt) {
  const char *s = skip_space(stmt);
  if (starts_word(s, "TRUNCATE"))
    return 1;
  if (!starts_word(s, "DROP"))
    return 0;
  s = skip_space(s + 4);
  if (starts_word(s, "TEMPORARY"))
    return 0;
  return starts_word(s, "TABLE") || starts_word(s, "DATABASE") ||
         starts_word(s, "SCHEMA");
}

static int window_ddl(db_part_t *dp, const sink_window_t *w, char *err,
                      size_t errlen) {
  size_t n = herald_window_ddls(w->hw);
  if (n == 0)
    return 0;
  db_sink_t *s = dp->s;
  int tell = w->scn > s->ddl_seen[dp->p];
  if (tell)
    s->ddl_seen[dp->p] = w->scn;
  for (size_t i = 0; i < n; i++) {
    const herald_ddl_t *d = herald_window_ddl(w->hw, i);
    const char *stmt = herald_ddl_statement(d), *db = herald_ddl_db(d);
    if (s->conf.sink.ddl != HD_DDL_APPLY) {
      if (!tell)
        continue;
      if (removes_rows(stmt))
        hd_log(HD_LL_WARN, COMP,
               "source statement not applied: the destination keeps its rows "
               "(sink.ddl is ignore)",
               "sink=%s partition=%u scn=%" PRIu64
               " db=%s statement=\"%.300s\"",
               s->drv->name, dp->p, w->scn, db ? db : "", stmt);
      else
        hd_log(HD_LL_INFO, COMP, "source statement ignored (sink.ddl ignore)",
               "sink=%s partition=%u scn=%" PRIu64
               " db=%s statement=\"%.300s\"",
               s->drv->name, dp->p, w->scn, db ? db : "", stmt);
      continue;
    }
    /* apply: the whole windows before it are committed with their offset
     * first; the statement itself commits implicitly (MariaDB, MySQL). */
    int rc = runs_flush(dp, err, errlen);
    if (rc == 0 && dp->txn && dp->txn_windows)
      rc = txn_commit(dp, err, errlen);
    if (rc < 0)
      return rc;
    int done = 0;
    rc = s->drv->exec_ddl(dp->c, db ? db : "", stmt, &done, err, errlen);
    if (dp->txn) /* committed by the statement, or to be started again */
      txn_reset(dp);
    if (rc < 0 && done) {
      hd_log(HD_LL_WARN, COMP,
             "source statement's effect is there already (a replay): "
             "skipped",
             "sink=%s partition=%u scn=%" PRIu64
             " statement=\"%.300s\" err=\"%s\"",
             s->drv->name, dp->p, w->scn, stmt, err);
      rc = 0;
    }
    if (rc < 0) {
      char why[400];
      snprintf(why, sizeof(why), "%s", err);
      return hd_errorf(err, errlen, rc,
                       "%s sink: partition %u, window SCN %" PRIu64
                       ": source statement \"%.200s\": %s",
                       s->drv->name, dp->p, w->scn, stmt, why);
    }
    hd_log(HD_LL_INFO, COMP, "source statement applied",
           "sink=%s partition=%u scn=%" PRIu64 " statement=\"%.300s\"",
           s->drv->name, dp->p, w->scn, stmt);
    /* tables may have changed under the statements prepared for them */
    tables_free(dp);
  }
  return 0;
}

/* ---------------------------------------------------------- sink ops */

static int claim(db_part_t *dp, uint64_t *position, char *err, size_t errlen) {
  const db_driver_t *drv = dp->s->drv;
  uint64_t wait = lock_wait_ms(dp) < 5000 ? lock_wait_ms(dp) : 5000;
  for (int attempt = 0;; attempt++) {
    int rc = drv->begin(dp->c, err, errlen);
    if (rc < 0)
      return rc;
    dp->txn = 1;
    uint64_t scn = 0, epoch = 0;
    char holder[160] = "";
    rc = drv->offset_lock(dp->c, dp->p, wait, &scn, &epoch, holder,
                          sizeof(holder), err, errlen);
    if (rc == -EAGAIN) {
      txn_abort(dp);
      if (epoch > dp->epoch)
        return fenced(dp, epoch, err, errlen);
      if (attempt + 1 >= CLAIM_TRIES)
        return hd_errorf(err, errlen, HD_ESINK_DB,
                         "%s sink: partition %u: the session '%s' keeps the "
                         "partition's row in %s.%s locked",
                         drv->name, dp->p, holder, dp->s->offsets_ns,
                         dp->s->offsets_name);
      /* A former owner stopped (or cut off) inside a transaction: its
       * session is ended so that the transaction rolls back. */
      hd_log(HD_LL_WARN, COMP,
             "offsets row held by another session: ending that session",
             "sink=%s partition=%u holder=%s epoch=%" PRIu64, drv->name, dp->p,
             holder, epoch);
      rc = ddl_conn(dp, err, errlen);
      if (rc == 0)
        rc = drv->kill_holder(dp->ddl, holder, err, errlen);
      if (rc < 0)
        return rc;
      continue;
    }
    if (rc == 0 && epoch > dp->epoch)
      rc = fenced(dp, epoch, err, errlen);
    if (rc == 0)
      rc = drv->offset_write(dp->c, dp->p, scn, dp->epoch, dp->holder, err,
                             errlen);
    if (rc == 0)
      rc = drv->commit(dp->c, err, errlen);
    if (rc < 0) {
      txn_abort(dp);
      return rc;
    }
    txn_reset(dp);
    dp->applied = scn;
    *position = scn;
    return 0;
  }
}

static void part_free(db_part_t *dp) {
  txn_abort(dp);
  tables_free(dp);
  dp->s->drv->disconnect(dp->c);
  dp->s->drv->disconnect(dp->ddl);
  free(dp->keys);
  free(dp->set_i);
  free(dp->where_i);
  free(dp->tmp_i);
  free(dp->set_v);
  free(dp->where_v);
  free(dp->tmp_v);
  free(dp);
}

static int db_open(sink_t *base, uint32_t p, uint64_t epoch, sink_part_t **out,
                   uint64_t *position, char *err, size_t errlen) {
  db_sink_t *s = (db_sink_t *)base;
  const db_driver_t *drv = s->drv;
  db_part_t *dp = hd_calloc(1, sizeof(*dp));
  dp->s = s;
  dp->p = p;
  dp->epoch = epoch;
  dp->keys = hd_calloc(KEYS_CAP, sizeof(kslot_t));
  int rc = drv->connect(&s->k, 0, &dp->c, err, errlen);
  if (rc == 0)
    rc = drv->session_id(dp->c, dp->holder, sizeof(dp->holder), err, errlen);
  if (rc == 0)
    rc = ddl_conn(dp, err, errlen);
  if (rc == 0)
    rc = drv->offsets_ensure(dp->ddl, err, errlen);
  if (rc == 0)
    rc = claim(dp, position, err, errlen);
  if (rc < 0) {
    part_free(dp);
    return rc;
  }
  hd_log(HD_LL_INFO, COMP, "destination partition opened",
         "sink=%s partition=%u epoch=%" PRIu64 " applied_scn=%" PRIu64,
         drv->name, p, epoch, dp->applied);
  *out = &dp->base;
  return 0;
}

static int db_write(sink_part_t *part, const sink_window_t *w, char *err,
                    size_t errlen) {
  db_part_t *dp = (db_part_t *)part;
  int rc;
  if (w->chunk == 0) {
    /* A snapshot window at the SCN the destination holds is the state
     * at that SCN: applied; one before it would overwrite newer rows. */
    dp->skip = w->snapshot ? w->scn < dp->applied : w->scn <= dp->applied;
    dp->in_window = 0;
    /* A window in chunks gets a transaction of its own, so that a flush
     * in its middle has only whole windows before it to commit. */
    if (!dp->skip && !w->last && dp->txn &&
        (rc = txn_commit(dp, err, errlen)) < 0)
      return rc;
  }
  if (dp->skip || w->hw == NULL)
    return 0;
  size_t n = herald_window_changes(w->hw);
  if (n == 0 && herald_window_ddls(w->hw) == 0 && !dp->txn && w->last)
    /* nothing for this partition (a window whose rows are all others'):
     * no transaction. The checkpoint that covers it keeps it from coming
     * again. */
    return 0;
  /* Tables first seen here are made ready before the transaction uses
   * them: schema statements run on the other connection, and one on a
   * table this transaction holds locks on would wait for it. */
  for (size_t i = 0; i < n; i++) {
    const herald_change_t *ch = herald_window_change(w->hw, i);
    tnode_t *tn = table_for(dp, w->hc, ch, err, errlen);
    if (tn == NULL)
      return HD_ESINK_SCHEMA;
    if (tn->ready)
      continue;
    /* at chunk 0 nothing of this window is in the transaction yet */
    if (dp->txn && w->chunk == 0 && (rc = txn_commit(dp, err, errlen)) < 0)
      return rc;
    if ((rc = table_ready(dp, tn->t, err, errlen)) < 0) {
      char why[400];
      snprintf(why, sizeof(why), "%s", err);
      return hd_errorf(err, errlen, rc,
                       "%s sink: partition %u, window SCN %" PRIu64 ": %s",
                       dp->s->drv->name, dp->p, w->scn, why);
    }
    tn->ready = 1;
  }
  if ((rc = window_ddl(dp, w, err, errlen)) < 0)
    return rc;
  if (!dp->txn && (rc = txn_begin(dp, err, errlen)) < 0)
    return rc;
  for (size_t i = 0; i < n; i++) {
    const herald_change_t *ch = herald_window_change(w->hw, i);
    tnode_t *tn = table_for(dp, w->hc, ch, err, errlen);
    if (tn == NULL)
      return HD_ESINK_SCHEMA;
    if (!tn->ready) { /* after a statement applied above */
      if ((rc = table_ready(dp, tn->t, err, errlen)) < 0)
        return rc;
      tn->ready = 1;
    }
    if ((rc = apply_change(dp, w, ch, tn->t, err, errlen)) < 0)
      return rc;
  }
  dp->txn_rows += n;
  if (!w->last) {
    dp->in_window = 1;
    return 0;
  }
  dp->in_window = 0;
  dp->txn_windows++;
  dp->txn_scn = w->scn;
  if (dp->txn_windows >= (uint64_t)dp->s->conf.sink.batch_windows ||
      dp->txn_rows >= (uint64_t)dp->s->conf.sink.batch_rows)
    return txn_commit(dp, err, errlen);
  return 0;
}

/* Commit the whole windows written (none in the middle of a window in
 * chunks: it has the transaction to itself). */
static int db_flush(sink_part_t *part, char *err, size_t errlen) {
  db_part_t *dp = (db_part_t *)part;
  if (!dp->txn || dp->in_window)
    return 0;
  return txn_commit(dp, err, errlen);
}

static int db_close(sink_part_t *part, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  part_free((db_part_t *)part);
  return 0;
}

const sink_ops_t sink__mysql_ops = {
    .name = "mysql",
    .typed_only = 1,
    .create = mysql_create,
    .open_partition = db_open,
    .write = db_write,
    .flush = db_flush,
    .idle = db_flush,
    .close_partition = db_close,
    .destroy = db_destroy,
};

const sink_ops_t sink__pg_ops = {
    .name = "postgresql",
    .typed_only = 1,
    .create = pg_create,
    .open_partition = db_open,
    .write = db_write,
    .flush = db_flush,
    .idle = db_flush,
    .close_partition = db_close,
    .destroy = db_destroy,
};
