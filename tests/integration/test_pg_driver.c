/*
 * test_pg_driver.c - the PostgreSQL driver of the database sinks
 * (consumer-agent/sink_pg.c) against the sandbox's PostgreSQL: tables of
 * every mapped type created and written through runs, read back with
 * libpq and compared exactly; zero dates in each sink.zero_dates mode;
 * value errors naming the column and the operation, the connection usable
 * after them; rows without a key; the offsets row's lock, its holder and
 * ending it; a connection lost in a run and at commit.
 *
 * Values are built as libherald has them, Herald__Value messages cast to
 * herald_value_t (libherald/herald_window.c), so no relay is needed.
 * db_sql_for() and friends come from pg_driver_shim.c until sink_db.c
 * lands.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hd_check.h"
#include "hd_err.h"
#include "herald.pb-c.h"
#include "sbenv.h"
#include "sink_db.h"

static const db_driver_t *drv = &sink__pg_driver;
static hd_agent_conf_t conf;
static db_conf_t k;
static char dsn[512];

static void setup(void) {
  snprintf(dsn, sizeof(dsn), "host=%s port=%s dbname=%s user=%s",
           sbenv("HERALD_PG_HOST"), sbenv("HERALD_PG_PORT"),
           sbenv("HERALD_PG_DATABASE"), sbenv("HERALD_PG_USER"));
  memset(&conf, 0, sizeof(conf));
  conf.sink.dsn = dsn;
  conf.sink.zero_dates = HD_ZERO_NULL;
  conf.sink.connect_timeout_ms = 5000;
  conf.sink.timeout_ms = 20000;
  k.conf = &conf;
  k.password = strdup(sbenv("HERALD_PG_PASSWORD"));
  k.offsets_ns = "t_pg_off";
  k.offsets_name = "herald_offsets";
  k.group = "grp";
  k.agent_id = "agent-1";
}

static void teardown(void) {
  free((char *)k.password);
}

/* ------------------------------------------------------------ helpers */

static db_conn_t *conn(int ddl) {
  db_conn_t *c = NULL;
  char err[512];
  int rc = drv->connect(&k, ddl, &c, err, sizeof(err));
  ck_assert_msg(rc == 0, "connect: %s", err);
  return c;
}

/* A plain libpq connection, to look at what the driver wrote. */
static PGconn *raw(void) {
  char s[700];
  snprintf(s, sizeof(s), "%s password=%s", dsn, k.password);
  PGconn *pg = PQconnectdb(s);
  ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "%s", PQerrorMessage(pg));
  PQclear(PQexec(pg, "SET client_min_messages = warning"));
  return pg;
}

static void qexec(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                    PQresultStatus(r) == PGRES_TUPLES_OK,
                "%s: %s", sql, PQerrorMessage(pg));
  PQclear(r);
}

/* The first value of a one-row query; NULL for SQL NULL. Free it. */
static char *q1(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                PQerrorMessage(pg));
  ck_assert_msg(PQntuples(r) == 1, "%s: %d rows", sql, PQntuples(r));
  char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

static void q1_eq(PGconn *pg, const char *sql, const char *want) {
  char *v = q1(pg, sql);
  if (want == NULL)
    ck_assert_msg(v == NULL, "%s: '%s', not NULL", sql, v);
  else
    ck_assert_msg(v && strcmp(v, want) == 0, "%s: '%s', not '%s'", sql,
                  v ? v : "NULL", want);
  free(v);
}

/* One test's world: its schema dropped, a ddl and an applying
 * connection, and a plain one to look with. */
typedef struct {
  PGconn *pg;
  db_conn_t *ddl, *c;
} world_t;

static world_t world(const char *schema) {
  world_t w = {raw(), NULL, NULL};
  char sql[128];
  snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
  qexec(w.pg, sql);
  w.ddl = conn(1);
  w.c = conn(0);
  return w;
}

static void world_end(world_t *w) {
  drv->disconnect(w->c);
  drv->disconnect(w->ddl);
  PQfinish(w->pg);
}

/* The values of one operation live as long as the pool is not reset. */
static Herald__Value pool[256];
static size_t npool;

static const herald_value_t *hv(Herald__Value v) {
  ck_assert_uint_lt(npool, sizeof(pool) / sizeof(pool[0]));
  pool[npool] = v;
  return (const herald_value_t *)(const void *)&pool[npool++];
}
#define MKV(kc, field, x)                                                      \
  do {                                                                         \
    Herald__Value v_ = HERALD__VALUE__INIT;                                    \
    v_.kind_case = HERALD__VALUE__KIND_##kc;                                   \
    v_.field = (x);                                                            \
    return hv(v_);                                                             \
  } while (0)
static const herald_value_t *V_NULL(void) {
  MKV(NULL, null, 1);
}
static const herald_value_t *V_I(int64_t x) {
  MKV(INT, int_, x);
}
static const herald_value_t *V_U(uint64_t x) {
  MKV(UINT, uint, x);
}
static const herald_value_t *V_F(float x) {
  MKV(FLT, flt, x);
}
static const herald_value_t *V_D(double x) {
  MKV(DBL, dbl, x);
}
static const herald_value_t *V_DEC(const char *s) {
  MKV(DECIMAL, decimal, (char *)s);
}
static const herald_value_t *V_T(const char *s) {
  MKV(TEMPORAL, temporal, (char *)s);
}
static const herald_value_t *V_S(const char *s) {
  ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
  MKV(STR, str, b);
}
static const herald_value_t *V_J(const char *s) {
  MKV(JSON, json, (char *)s);
}
static const herald_value_t *V_JD(const char *s) {
  MKV(JSON_DIFF, json_diff, (char *)s);
}
static const herald_value_t *V_B(const void *p, size_t n) {
  ProtobufCBinaryData b = {n, (uint8_t *)p};
  MKV(BIN, bin, b);
}
static const herald_value_t *V_BAD(const void *p, size_t n) {
  ProtobufCBinaryData b = {n, (uint8_t *)p};
  MKV(BADTEXT, badtext, b);
}

/* A column: name, sql_type, base_type, length, precision, scale, fsp,
 * unsigned, nullable, pk position. */
typedef struct {
  const char *name, *sql, *base;
  uint32_t len, prec, scale, fsp;
  int uns, nullable;
  uint32_t pk;
} cdef_t;

static const char *const enum_labels[] = {"a", "b", "c d"};
static const char *const set_labels[] = {"x", "y", "z"};

static db_table_t *mk_table(const char *ns, const char *name,
                            const cdef_t *defs, size_t n) {
  db_table_t *t = calloc(1, sizeof(*t));
  t->src_db = (char *)"src";
  t->src_table = (char *)name;
  t->version = 1;
  t->dst_ns = (char *)ns;
  t->dst_name = (char *)name;
  t->ncols = n;
  t->cols = calloc(n, sizeof(*t->cols));
  t->pk = calloc(n, sizeof(*t->pk));
  for (size_t i = 0; i < n; i++) {
    herald_column_t *d = &t->cols[i].def;
    d->name = defs[i].name;
    d->sql_type = defs[i].sql;
    d->base_type = defs[i].base;
    d->charset = "";
    d->length = defs[i].len;
    d->precision = defs[i].prec;
    d->scale = defs[i].scale;
    d->fsp = defs[i].fsp;
    d->is_unsigned = defs[i].uns;
    d->nullable = defs[i].nullable;
    d->pk_position = defs[i].pk;
    if (strcmp(d->base_type, "enum") == 0 || strcmp(d->base_type, "set") == 0) {
      d->nlabels = 3;
      d->labels = strcmp(d->base_type, "enum") == 0 ? enum_labels : set_labels;
    }
    if (defs[i].pk) {
      t->pk[defs[i].pk - 1] = (uint32_t)i;
      t->npk++;
    }
  }
  return t;
}

static void tbl_free(db_table_t *t) {
  drv->table_free(t);
  ck_assert_ptr_null(t->drv);
  free(t->cols);
  free(t->pk);
  free(t);
}

static void create(db_conn_t *ddl, const db_table_t *t) {
  char err[512];
  int rc = drv->table_create(ddl, t, err, sizeof(err));
  ck_assert_msg(rc == 0, "create %s: %s", t->dst_name, err);
}

static void begin(db_conn_t *c) {
  char err[512];
  int rc = drv->begin(c, err, sizeof(err));
  ck_assert_msg(rc == 0, "begin: %s", err);
}

static void commit(db_conn_t *c) {
  char err[512];
  int rc = drv->commit(c, err, sizeof(err));
  ck_assert_msg(rc == 0, "commit: %s", err);
}

/* A run: the shape, then ops operations whose values fill() gives (set[]
 * then where[] in vals, the pool reset before each). Returns run_flush's
 * code; *bad and err from it. */
typedef void fill_fn(size_t op, const herald_value_t **vals, void *ud);

/* The run of the last run(), for run_describe(). */
static db_run_t *last_run;

static int run(db_conn_t *c, db_table_t *t, int kind, const uint32_t *set,
               size_t nset, const uint32_t *where, size_t nwhere, size_t ops,
               fill_fn *fill, void *ud, size_t *bad, char *err, size_t errlen) {
  db_shape_t sh = {t, kind, nset, set, nwhere, where};
  int rc = drv->run_open(c, &sh, &last_run, err, errlen);
  if (rc != 0)
    return rc;
  const herald_value_t *vals[64];
  for (size_t i = 0; i < ops; i++) {
    npool = 0;
    memset(vals, 0, sizeof(vals));
    fill(i, vals, ud);
    rc = drv->run_add(c, last_run, vals, vals + nset, err, errlen);
    ck_assert_msg(rc == 0, "run_add %zu: %s", i, err);
  }
  size_t b = 0;
  rc = drv->run_flush(c, last_run, &b, err, errlen);
  if (bad)
    *bad = b;
  return rc;
}

/* run() in a transaction of its own, which must succeed. */
static void apply(db_conn_t *c, db_table_t *t, int kind, const uint32_t *set,
                  size_t nset, const uint32_t *where, size_t nwhere, size_t ops,
                  fill_fn *fill, void *ud) {
  char err[1024];
  begin(c);
  int rc = run(c, t, kind, set, nset, where, nwhere, ops, fill, ud, NULL, err,
               sizeof(err));
  ck_assert_msg(rc == 0, "run: %s", err);
  commit(c);
}

/* A fill from a table of prepared value rows. */
typedef struct {
  const herald_value_t **rows[8];
} rows_t;
static void fill_rows(size_t op, const herald_value_t **vals, void *ud) {
  const herald_value_t **row = ((rows_t *)ud)->rows[op];
  for (size_t i = 0; row[i]; i++)
    vals[i] = row[i];
}

static uint32_t all_cols[64];
static const uint32_t *cols_upto(size_t n) {
  for (size_t i = 0; i < n; i++)
    all_cols[i] = (uint32_t)i;
  return all_cols;
}

/* ------------------------------------------------------- every type */

static const cdef_t types_cols[] = {
    {"id", "bigint", "bigint", 0, 0, 0, 0, 0, 0, 1},
    {"ti", "tinyint", "tinyint", 0, 0, 0, 0, 0, 1, 0},
    {"tiu", "tinyint unsigned", "tinyint", 0, 0, 0, 0, 1, 1, 0},
    {"si", "smallint", "smallint", 0, 0, 0, 0, 0, 1, 0},
    {"siu", "smallint unsigned", "smallint", 0, 0, 0, 0, 1, 1, 0},
    {"mi", "mediumint", "mediumint", 0, 0, 0, 0, 0, 1, 0},
    {"miu", "mediumint unsigned", "mediumint", 0, 0, 0, 0, 1, 1, 0},
    {"i", "int", "int", 0, 0, 0, 0, 0, 1, 0},
    {"iu", "int unsigned", "int", 0, 0, 0, 0, 1, 1, 0},
    {"bi", "bigint", "bigint", 0, 0, 0, 0, 0, 1, 0},
    {"biu", "bigint unsigned", "bigint", 0, 0, 0, 0, 1, 1, 0},
    {"yr", "year", "year", 0, 0, 0, 0, 1, 1, 0},
    {"dec65", "decimal(65,30)", "decimal", 0, 65, 30, 0, 0, 1, 0},
    {"decu", "decimal(12,4) unsigned", "decimal", 0, 12, 4, 0, 1, 1, 0},
    {"f", "float", "float", 0, 0, 0, 0, 0, 1, 0},
    {"d", "double", "double", 0, 0, 0, 0, 0, 1, 0},
    {"b1", "bit(1)", "bit", 1, 0, 0, 0, -2, 1, 0},
    {"b64", "bit(64)", "bit", 64, 0, 0, 0, -2, 1, 0},
    {"b10", "bit(10)", "bit", 10, 0, 0, 0, -2, 1, 0},
    {"dt", "date", "date", 0, 0, 0, 0, -2, 1, 0},
    {"tm", "time(6)", "time", 0, 0, 0, 6, -2, 1, 0},
    {"dtm", "datetime(6)", "datetime", 0, 0, 0, 6, -2, 1, 0},
    {"dtm0", "datetime", "datetime", 0, 0, 0, 0, -2, 1, 0},
    {"ts", "timestamp(6)", "timestamp", 0, 0, 0, 6, -2, 1, 0},
    {"c", "char(10)", "char", 10, 0, 0, 0, -2, 1, 0},
    {"vc", "varchar(3)", "varchar", 3, 0, 0, 0, -2, 1, 0},
    {"tx", "text", "text", 0, 0, 0, 0, -2, 1, 0},
    {"lt", "longtext", "longtext", 0, 0, 0, 0, -2, 1, 0},
    {"e", "enum('a','b','c d')", "enum", 0, 0, 0, 0, -2, 1, 0},
    {"s", "set('x','y','z')", "set", 0, 0, 0, 0, -2, 1, 0},
    {"j", "json", "json", 0, 0, 0, 0, -2, 1, 0},
    {"bin", "binary(4)", "binary", 4, 0, 0, 0, -2, 1, 0},
    {"vb", "varbinary(10)", "varbinary", 10, 0, 0, 0, -2, 1, 0},
    {"bl", "blob", "blob", 0, 0, 0, 0, -2, 1, 0},
    {"lb", "longblob", "longblob", 0, 0, 0, 0, -2, 1, 0},
    {"g", "geometry", "geometry", 0, 0, 0, 0, -2, 1, 0},
    {"nn", "int", "int", 0, 0, 0, 0, 0, 0, 0},
};
#define NTYPES (sizeof(types_cols) / sizeof(types_cols[0]))

/* DECIMAL(65,30)'s largest value */
#define DEC65                                                                  \
  "99999999999999999999999999999999999.999999999999999999999999999999"

static uint8_t *big; /* 1 MiB of bytea */
#define BIG (1u << 20)

static void fill_types(size_t op, const herald_value_t **v, void *ud) {
  (void)ud;
  static const uint8_t bin0[4] = {0}, bin1[4] = {0, 0xff, 0x7f, 0x80},
                       geo[] = {0, 0, 0, 0, 1, 1,    0,    0,    0,
                                0, 0, 0, 0, 0, 0,    0xf0, 0x3f, 0,
                                0, 0, 0, 0, 0, 0xf0, 0x3f};
  size_t i = 0;
  switch (op) {
  case 0: /* every minimum */
    v[i++] = V_I(1);
    v[i++] = V_I(-128);
    v[i++] = V_U(0);
    v[i++] = V_I(-32768);
    v[i++] = V_U(0);
    v[i++] = V_I(-8388608);
    v[i++] = V_U(0);
    v[i++] = V_I(INT32_MIN);
    v[i++] = V_U(0);
    v[i++] = V_I(INT64_MIN);
    v[i++] = V_U(0);
    v[i++] = V_U(1901);
    v[i++] = V_DEC("-" DEC65);
    v[i++] = V_DEC("0.0000");
    v[i++] = V_F(-3.40282347e+38f);
    v[i++] = V_D(-1.7976931348623157e308);
    v[i++] = V_U(0);
    v[i++] = V_U(0);
    v[i++] = V_U(0);
    v[i++] = V_T("1000-01-01");
    v[i++] = V_T("-838:59:59.000000");
    v[i++] = V_T("1000-01-01 00:00:00.000000");
    v[i++] = V_T("1000-01-01 00:00:00");
    v[i++] = V_T("1970-01-01 00:00:01.000000");
    v[i++] = V_S("");
    v[i++] = V_S("");
    v[i++] = V_S("");
    v[i++] = V_S("");
    v[i++] = V_S("a");
    v[i++] = V_S("");
    v[i++] = V_S("[]");
    v[i++] = V_B(bin0, 4);
    v[i++] = V_B("", 0);
    v[i++] = V_B("", 0);
    v[i++] = V_B("", 0);
    v[i++] = V_B(geo, sizeof(geo));
    v[i++] = V_I(0);
    break;
  case 1: /* every maximum */
    v[i++] = V_I(2);
    v[i++] = V_I(127);
    v[i++] = V_U(255);
    v[i++] = V_I(32767);
    v[i++] = V_U(65535);
    v[i++] = V_I(8388607);
    v[i++] = V_U(16777215);
    v[i++] = V_I(INT32_MAX);
    v[i++] = V_U(UINT32_MAX);
    v[i++] = V_I(INT64_MAX);
    v[i++] = V_U(UINT64_MAX);
    v[i++] = V_U(2155);
    v[i++] = V_DEC(DEC65);
    v[i++] = V_DEC("99999999.9999");
    v[i++] = V_F(3.40282347e+38f);
    v[i++] = V_D(1.7976931348623157e308);
    v[i++] = V_U(1);
    v[i++] = V_U(UINT64_MAX);
    v[i++] = V_U(1023);
    v[i++] = V_T("9999-12-31");
    v[i++] = V_T("838:59:59.000000");
    v[i++] = V_T("9999-12-31 23:59:59.999999");
    v[i++] = V_T("9999-12-31 23:59:59");
    v[i++] = V_T("2038-01-19 03:14:07.999999");
    v[i++] = V_S("h\xc3\xa9llo");
    v[i++] = V_S("ab\xf0\x9f\x98\x80"); /* 3 characters, one of 4 bytes */
    v[i++] = V_S("\xd0\x9f\xd1\x80\xd0\xb8, \xf0\x9f\x98\x80 'q' \\ \"d\"");
    v[i++] = V_S("long\ntext\twith\rcontrols");
    v[i++] = V_S("c d");
    v[i++] = V_S("x,z");
    v[i++] = V_J("{\"k\":[1,2.5,\"s\",null,true],\"u\":\"\xf0\x9f\x98\x80\"}");
    v[i++] = V_B(bin1, 4);
    v[i++] = V_B("\x01\x02", 2);
    v[i++] = V_B("\xde\xad\xbe\xef", 4);
    v[i++] = V_B(big, BIG);
    v[i++] = V_B(geo, sizeof(geo));
    v[i++] = V_I(-1);
    break;
  case 2: /* NULL in every nullable column */
    v[i++] = V_I(3);
    for (; i < NTYPES - 1; i++)
      v[i] = V_NULL();
    v[i++] = V_I(3);
    break;
  default: /* labels by number, the odd ones */
    v[i++] = V_I(4);
    v[i++] = V_I(0);
    v[i++] = V_U(0);
    v[i++] = V_I(-1);
    v[i++] = V_U(1);
    v[i++] = V_I(1);
    v[i++] = V_U(1);
    v[i++] = V_I(-1);
    v[i++] = V_U(2147483648u);
    v[i++] = V_I(-1);
    v[i++] = V_U(UINT64_C(9223372036854775808));
    v[i++] = V_U(0); /* the zero year */
    v[i++] = V_DEC("-0.000000000000000000000000000001");
    v[i++] = V_DEC("0.0001");
    v[i++] = V_F(1.1f);
    v[i++] = V_D(0.1);
    v[i++] = V_U(1);
    v[i++] = V_U(UINT64_C(0x8000000000000001));
    v[i++] = V_U(5);
    v[i++] = V_T("2024-02-29");
    v[i++] = V_T("-00:00:00.001000");
    v[i++] = V_T("2001-02-03 04:05:06.070809");
    v[i++] = V_T("2001-02-03 04:05:06");
    v[i++] = V_T("2001-02-03 04:05:06.000001");
    v[i++] = V_S("  lead");
    v[i++] = V_S("a'b");
    v[i++] = V_S("\xe4\xb8\xad\xe6\x96\x87");
    v[i++] = V_S("x");
    v[i++] = V_U(2); /* "b" */
    v[i++] = V_U(5); /* "x,z" */
    v[i++] = V_J("\"\"");
    v[i++] = V_S("abcd"); /* valid UTF-8 a server sent for a blob */
    v[i++] = V_BAD("\xff\xfe", 2);
    v[i++] = V_B("\0\0\0", 3);
    v[i++] = V_B("", 0);
    v[i++] = V_NULL();
    v[i++] = V_I(4);
    break;
  }
  ck_assert_uint_eq(i, NTYPES);
}

/* Every column of row id as PostgreSQL prints it, against want[] (NULL:
 * SQL NULL); the floats and the big bytea compared apart. */
static void check_row(PGconn *pg, const char *tbl, int id,
                      const char *const *want) {
  for (size_t i = 0; i < NTYPES; i++) {
    const char *n = types_cols[i].name;
    if (!strcmp(n, "f") || !strcmp(n, "d") || !strcmp(n, "lb"))
      continue;
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT \"%s\"::text FROM %s WHERE id = %d", n,
             tbl, id);
    q1_eq(pg, sql, want[i]);
  }
}

START_TEST(every_type) {
  world_t w = world("t_pg_types");
  PGconn *pg = w.pg;
  big = malloc(BIG);
  for (size_t i = 0; i < BIG; i++)
    big[i] = (uint8_t)(i * 2654435761u >> 13);

  db_table_t *t = mk_table("t_pg_types", "every", types_cols, NTYPES);
  db_conn_t *ddl = w.ddl, *c = w.c;
  char err[1024], **names;
  size_t n;
  int exists;
  ck_assert_int_eq(
      drv->table_columns(ddl, t, &exists, &names, &n, err, sizeof(err)), 0);
  ck_assert_int_eq(exists, 0);
  db_names_free(names, n);
  create(ddl, t);
  create(ddl, t); /* exists: nothing to do */
  ck_assert_int_eq(
      drv->table_columns(ddl, t, &exists, &names, &n, err, sizeof(err)), 0);
  ck_assert_int_eq(exists, 1);
  ck_assert_uint_eq(n, NTYPES);
  for (size_t i = 0; i < n; i++)
    ck_assert_str_eq(names[i], types_cols[i].name);
  db_names_free(names, n);

  /* the types created, as docs/sinks.md's table says */
  q1_eq(pg,
        "SELECT string_agg(attname || ' ' || format_type(atttypid, "
        "atttypmod) || CASE WHEN attnotnull THEN ' NN' ELSE '' END, ', ' "
        "ORDER BY attnum) FROM pg_attribute WHERE attrelid = "
        "'t_pg_types.every'::regclass AND attnum > 0 AND NOT attisdropped",
        "id bigint NN, ti smallint, tiu smallint, si smallint, siu integer, "
        "mi integer, miu integer, i integer, iu bigint, bi bigint, biu "
        "numeric(20,0), yr smallint, dec65 numeric(65,30), decu "
        "numeric(12,4), f real, d double precision, b1 bit(1), b64 bit(64), "
        "b10 bit(10), dt date, tm interval, dtm timestamp(6) without time "
        "zone, dtm0 timestamp(0) without time zone, ts timestamp(6) with "
        "time zone, c character varying(10), vc character varying(3), tx "
        "text, lt text, e text, s text, j jsonb, bin bytea, vb bytea, bl "
        "bytea, lb bytea, g bytea, nn integer NN");
  q1_eq(pg,
        "SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute "
        "a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE "
        "i.indrelid = 't_pg_types.every'::regclass AND i.indisprimary",
        "id");

  apply(c, t, DB_UPSERT, cols_upto(NTYPES), NTYPES, NULL, 0, 4, fill_types,
        NULL);

  static const char z64[] = "0000000000000000000000000000000000000000000000"
                            "000000000000000000",
                    o64[] = "1111111111111111111111111111111111111111111111"
                            "111111111111111111";
  const char *const min[NTYPES] = {
      "1",
      "-128",
      "0",
      "-32768",
      "0",
      "-8388608",
      "0",
      "-2147483648",
      "0",
      "-9223372036854775808",
      "0",
      "1901",
      "-" DEC65,
      "0.0000",
      NULL,
      NULL,
      "0",
      z64,
      "0000000000",
      "1000-01-01",
      "-838:59:59",
      "1000-01-01 00:00:00",
      "1000-01-01 00:00:00",
      "1970-01-01 00:00:01+00",
      "",
      "",
      "",
      "",
      "a",
      "",
      "[]",
      "\\x00000000",
      "\\x",
      "\\x",
      NULL,
      "\\x000000000101000000000000000000f03f000000000000f03f",
      "0"};
  check_row(pg, "t_pg_types.every", 1, min);
  const char *const max[NTYPES] = {
      "2",
      "127",
      "255",
      "32767",
      "65535",
      "8388607",
      "16777215",
      "2147483647",
      "4294967295",
      "9223372036854775807",
      "18446744073709551615",
      "2155",
      DEC65,
      "99999999.9999",
      NULL,
      NULL,
      "1",
      o64,
      "1111111111",
      "9999-12-31",
      "838:59:59",
      "9999-12-31 23:59:59.999999",
      "9999-12-31 23:59:59",
      "2038-01-19 03:14:07.999999+00",
      "h\xc3\xa9llo",
      "ab\xf0\x9f\x98\x80",
      "\xd0\x9f\xd1\x80\xd0\xb8, \xf0\x9f\x98\x80 'q' \\ \"d\"",
      "long\ntext\twith\rcontrols",
      "c d",
      "x,z",
      "{\"k\": [1, 2.5, \"s\", null, true], \"u\": \"\xf0\x9f\x98\x80\"}",
      "\\x00ff7f80",
      "\\x0102",
      "\\xdeadbeef",
      NULL,
      "\\x000000000101000000000000000000f03f000000000000f03f",
      "-1"};
  check_row(pg, "t_pg_types.every", 2, max);
  const char *nulls[NTYPES] = {"3"};
  nulls[NTYPES - 1] = "3";
  check_row(pg, "t_pg_types.every", 3, nulls);
  const char *const odd[NTYPES] = {"4",
                                   "0",
                                   "0",
                                   "-1",
                                   "1",
                                   "1",
                                   "1",
                                   "-1",
                                   "2147483648",
                                   "-1",
                                   "9223372036854775808",
                                   "0",
                                   "-0.000000000000000000000000000001",
                                   "0.0001",
                                   NULL,
                                   NULL,
                                   "1",
                                   "1000000000000000000000000000000000000"
                                   "000000000000000000000000001",
                                   "0000000101",
                                   "2024-02-29",
                                   "-00:00:00.001",
                                   "2001-02-03 04:05:06.070809",
                                   "2001-02-03 04:05:06",
                                   "2001-02-03 04:05:06.000001+00",
                                   "  lead",
                                   "a'b",
                                   "\xe4\xb8\xad\xe6\x96\x87",
                                   "x",
                                   "b",
                                   "x,z",
                                   "\"\"",
                                   "\\x61626364",
                                   "\\xfffe",
                                   "\\x000000",
                                   NULL,
                                   NULL,
                                   "4"};
  check_row(pg, "t_pg_types.every", 4, odd);

  /* floats: the digits PostgreSQL prints read back as the same value */
  static const float fs[] = {-3.40282347e+38f, 3.40282347e+38f, 1.1f};
  static const double ds[] = {-1.7976931348623157e308, 1.7976931348623157e308,
                              0.1};
  for (int id = 1; id <= 4; id++) {
    char sql[128];
    snprintf(sql, sizeof(sql),
             "SELECT f::text || ' ' || d::text FROM t_pg_types.every WHERE "
             "id = %d",
             id);
    char *v = q1(pg, sql);
    if (id == 3) {
      ck_assert_ptr_null(v);
      continue;
    }
    char *sp = strchr(v, ' ');
    ck_assert_ptr_nonnull(sp);
    int j = id == 4 ? 2 : id - 1;
    ck_assert_msg(strtof(v, NULL) == fs[j], "f %s", v);
    ck_assert_msg(strtod(sp + 1, NULL) == ds[j], "d %s", v);
    free(v);
  }
  /* the 1 MiB bytea, byte for byte */
  const char *pv[] = {(const char *)big};
  int pl[] = {(int)BIG}, pf[] = {1};
  PGresult *r = PQexecParams(
      pg, "SELECT lb = $1::bytea FROM t_pg_types.every WHERE id = 2", 1, NULL,
      pv, pl, pf, 0);
  ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
  ck_assert_str_eq(PQgetvalue(r, 0, 0), "t");
  PQclear(r);

  /* an upsert of an existing key updates its set[] columns only (the
   * NOT NULL ones among them: PostgreSQL checks them on the row proposed
   * for insertion before it finds the conflict) */
  static const uint32_t idtx[] = {0, 26, 36};
  rows_t rows = {
      {(const herald_value_t *[]){V_I(1), V_S("again"), V_I(0), NULL}}};
  apply(c, t, DB_UPSERT, idtx, 3, NULL, 0, 1, fill_rows, &rows);
  q1_eq(pg, "SELECT tx || ti FROM t_pg_types.every WHERE id = 1", "again-128");
  q1_eq(pg, "SELECT count(*) FROM t_pg_types.every", "4");

  /* a column added later: nullable whatever the source says, twice is
   * fine, then written through the table's next version */
  cdef_t v2[NTYPES + 1];
  memcpy(v2, types_cols, sizeof(types_cols));
  v2[NTYPES] = (cdef_t){"added", "varchar(5)", "varchar", 5, 0, 0, 0, -2, 0, 0};
  db_table_t *t2 = mk_table("t_pg_types", "every", v2, NTYPES + 1);
  for (int twice = 0; twice < 2; twice++) {
    int rc = drv->column_add(ddl, t2, NTYPES, err, sizeof(err));
    ck_assert_msg(rc == 0, "column_add: %s", err);
  }
  q1_eq(pg,
        "SELECT data_type || ' ' || is_nullable FROM "
        "information_schema.columns WHERE table_schema = 't_pg_types' AND "
        "table_name = 'every' AND column_name = 'added'",
        "character varying YES");
  static const uint32_t idadd[] = {0, NTYPES - 1, NTYPES};
  rows.rows[0] = (const herald_value_t *[]){V_I(4), V_I(4), V_S("new"), NULL};
  apply(c, t2, DB_UPSERT, idadd, 3, NULL, 0, 1, fill_rows, &rows);
  /* the old version's statements are deallocated at the next begin() */
  tbl_free(t);
  static const uint32_t idonly[] = {0};
  rows.rows[0] = (const herald_value_t *[]){V_I(1), NULL};
  apply(c, t2, DB_DELETE, NULL, 0, idonly, 1, 1, fill_rows, &rows);
  q1_eq(pg,
        "SELECT string_agg(id || ':' || coalesce(added, '-'), ',' ORDER BY "
        "id) FROM t_pg_types.every",
        "2:-,3:-,4:new");

  /* the same table on another connection prepares its own statements */
  db_conn_t *c2 = conn(0);
  rows.rows[0] = (const herald_value_t *[]){V_I(5), V_I(5), V_S("c2"), NULL};
  apply(c2, t2, DB_UPSERT, idadd, 3, NULL, 0, 1, fill_rows, &rows);
  drv->disconnect(c2);
  q1_eq(pg, "SELECT added FROM t_pg_types.every WHERE id = 5", "c2");

  tbl_free(t2);
  world_end(&w);
  free(big);
}
END_TEST

/* -------------------------------------------- fractions, zero dates */

static const cdef_t fsp_cols[] = {
    {"id", "int", "int", 0, 0, 0, 0, 0, 0, 1},
    {"t0", "time", "time", 0, 0, 0, 0, -2, 1, 0},
    {"t1", "time(1)", "time", 0, 0, 0, 1, -2, 1, 0},
    {"t2", "time(2)", "time", 0, 0, 0, 2, -2, 1, 0},
    {"t3", "time(3)", "time", 0, 0, 0, 3, -2, 1, 0},
    {"t4", "time(4)", "time", 0, 0, 0, 4, -2, 1, 0},
    {"t5", "time(5)", "time", 0, 0, 0, 5, -2, 1, 0},
    {"t6", "time(6)", "time", 0, 0, 0, 6, -2, 1, 0},
    {"d0", "datetime", "datetime", 0, 0, 0, 0, -2, 1, 0},
    {"d1", "datetime(1)", "datetime", 0, 0, 0, 1, -2, 1, 0},
    {"d2", "datetime(2)", "datetime", 0, 0, 0, 2, -2, 1, 0},
    {"d3", "datetime(3)", "datetime", 0, 0, 0, 3, -2, 1, 0},
    {"d4", "datetime(4)", "datetime", 0, 0, 0, 4, -2, 1, 0},
    {"d5", "datetime(5)", "datetime", 0, 0, 0, 5, -2, 1, 0},
    {"d6", "datetime(6)", "datetime", 0, 0, 0, 6, -2, 1, 0},
    {"s0", "timestamp", "timestamp", 0, 0, 0, 0, -2, 1, 0},
    {"s1", "timestamp(1)", "timestamp", 0, 0, 0, 1, -2, 1, 0},
    {"s2", "timestamp(2)", "timestamp", 0, 0, 0, 2, -2, 1, 0},
    {"s3", "timestamp(3)", "timestamp", 0, 0, 0, 3, -2, 1, 0},
    {"s4", "timestamp(4)", "timestamp", 0, 0, 0, 4, -2, 1, 0},
    {"s5", "timestamp(5)", "timestamp", 0, 0, 0, 5, -2, 1, 0},
    {"s6", "timestamp(6)", "timestamp", 0, 0, 0, 6, -2, 1, 0},
};
#define NFSP (sizeof(fsp_cols) / sizeof(fsp_cols[0]))

static char fsp_text[NFSP][48];

static void fill_fsp(size_t op, const herald_value_t **v, void *ud) {
  (void)op;
  (void)ud;
  v[0] = V_I(1);
  for (int f = 0; f <= 6; f++) {
    /* exactly f digits, as the stream has them */
    snprintf(fsp_text[1 + f], 48, "-838:59:58%s%.*s", f ? "." : "", f,
             "123456");
    snprintf(fsp_text[8 + f], 48, "2001-02-03 04:05:06%s%.*s", f ? "." : "", f,
             "987654");
    snprintf(fsp_text[15 + f], 48, "2038-01-19 03:14:07%s%.*s", f ? "." : "", f,
             "999999");
    v[1 + f] = V_T(fsp_text[1 + f]);
    v[8 + f] = V_T(fsp_text[8 + f]);
    v[15 + f] = V_T(fsp_text[15 + f]);
  }
}

START_TEST(fractional_seconds) {
  world_t w = world("t_pg_fsp");
  PGconn *pg = w.pg;
  db_table_t *t = mk_table("t_pg_fsp", "fsp", fsp_cols, NFSP);
  db_conn_t *ddl = w.ddl, *c = w.c;
  create(ddl, t);
  char err[1024];
  begin(c);
  int rc = run(c, t, DB_UPSERT, cols_upto(NFSP), NFSP, NULL, 0, 1, fill_fsp,
               NULL, NULL, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  /* upserts of only the key: the row left as it is, a new one made */
  static const uint32_t id[] = {0};
  rows_t rows = {{(const herald_value_t *[]){V_I(1), NULL},
                  (const herald_value_t *[]){V_I(2), NULL}}};
  rc = run(c, t, DB_UPSERT, id, 1, NULL, 0, 2, fill_rows, &rows, NULL, err,
           sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  commit(c);
  q1_eq(pg, "SELECT count(*) || ' ' || count(t0) FROM t_pg_fsp.fsp", "2 1");
  for (int f = 0; f <= 6; f++) {
    char sql[128], want[64];
    snprintf(sql, sizeof(sql),
             "SELECT t%d::text FROM t_pg_fsp.fsp WHERE id = 1", f);
    snprintf(want, sizeof(want), "-838:59:58%s%.*s", f ? "." : "", f, "123456");
    q1_eq(pg, sql, want);
    snprintf(sql, sizeof(sql),
             "SELECT d%d::text FROM t_pg_fsp.fsp WHERE id = 1", f);
    snprintf(want, sizeof(want), "2001-02-03 04:05:06%s%.*s", f ? "." : "", f,
             "987654");
    q1_eq(pg, sql, want);
    snprintf(sql, sizeof(sql),
             "SELECT s%d::text FROM t_pg_fsp.fsp WHERE id = 1", f);
    snprintf(want, sizeof(want), "2038-01-19 03:14:07%s%.*s+00", f ? "." : "",
             f, "999999");
    q1_eq(pg, sql, want);
    /* the interval's seconds as the source's TIME has them */
    snprintf(sql, sizeof(sql),
             "SELECT extract(epoch FROM t%d)::text FROM t_pg_fsp.fsp "
             "WHERE id = 1",
             f);
    snprintf(want, sizeof(want), "-3020398%s%.*s", f ? "." : "", f, "123456");
    char *v = q1(pg, sql);
    ck_assert_msg(strncmp(v, want, strlen(want)) == 0 &&
                      strspn(v + strlen(want), ".0") ==
                          strlen(v + strlen(want)),
                  "%s: %s, not %s", sql, v, want);
    free(v);
  }
  tbl_free(t);
  world_end(&w);
}
END_TEST

static const cdef_t zero_cols[] = {
    {"id", "int", "int", 0, 0, 0, 0, 0, 0, 1},
    {"d", "date", "date", 0, 0, 0, 0, -2, 0, 0}, /* NOT NULL at the source */
    {"dtm", "datetime(6)", "datetime", 0, 0, 0, 6, -2, 1, 0},
    {"ts", "timestamp", "timestamp", 0, 0, 0, 0, -2, 1, 0},
};

static void fill_zero(size_t op, const herald_value_t **v, void *ud) {
  (void)ud;
  static const char *const d[] = {"0000-00-00", "2020-00-00", "2020-05-00",
                                  "0000-01-01", "2020-05-06"};
  static const char *const dtm[] = {
      "0000-00-00 00:00:00.000000", "2020-00-01 00:00:00.000000",
      "2020-01-00 10:00:00.000000", "0000-02-29 12:00:00.500000",
      "2020-05-06 07:08:09.000010"};
  static const char *const ts[] = {"0000-00-00 00:00:00", "2020-01-01 00:00:00",
                                   "0000-00-00 00:00:00", "1970-01-01 00:00:01",
                                   "2020-05-06 07:08:09"};
  v[0] = V_I((int64_t)op + 1);
  v[1] = V_T(d[op]);
  v[2] = V_T(dtm[op]);
  v[3] = V_T(ts[op]);
}

START_TEST(zero_dates) {
  world_t w = world("t_pg_zero");
  PGconn *pg = w.pg;
  db_table_t *t = mk_table("t_pg_zero", "z", zero_cols, 4);
  db_conn_t *ddl = w.ddl, *c = w.c;
  char err[1024];
  size_t bad;
  /* null: the date columns take NULL (d too, NOT NULL at the source) */
  conf.sink.zero_dates = HD_ZERO_NULL;
  create(ddl, t);
  q1_eq(pg,
        "SELECT is_nullable FROM information_schema.columns WHERE "
        "table_schema = 't_pg_zero' AND column_name = 'd'",
        "YES");
  apply(c, t, DB_UPSERT, cols_upto(4), 4, NULL, 0, 5, fill_zero, NULL);
  static const char *const want_null[] = {
      "1,,,", "2,,,2020-01-01 00:00:00+00", "3,,,",
      "4,0001-01-01 BC,0001-02-29 12:00:00.5 BC,1970-01-01 00:00:01+00",
      "5,2020-05-06,2020-05-06 07:08:09.00001,2020-05-06 07:08:09+00"};
  for (int i = 0; i < 5; i++) {
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT concat_ws(',', id, coalesce(d::text, ''), "
             "coalesce(dtm::text, ''), coalesce(ts::text, '')) FROM "
             "t_pg_zero.z WHERE id = %d",
             i + 1);
    q1_eq(pg, sql, want_null[i]);
  }
  /* infinity */
  conf.sink.zero_dates = HD_ZERO_INFINITY;
  apply(c, t, DB_UPSERT, cols_upto(4), 4, NULL, 0, 3, fill_zero, NULL);
  q1_eq(pg,
        "SELECT string_agg(concat_ws(',', d, dtm, ts), ';' ORDER BY id) FROM "
        "t_pg_zero.z WHERE id <= 3",
        "-infinity,-infinity,-infinity;-infinity,-infinity,2020-01-01 "
        "00:00:00+00;-infinity,-infinity,-infinity");
  /* error: the run fails at its first zero date, naming the column */
  conf.sink.zero_dates = HD_ZERO_ERROR;
  begin(c);
  static const uint32_t id_dtm[] = {0, 2};
  rows_t rows = {{
      (const herald_value_t *[]){V_I(6), V_T("2020-01-01 00:00:00.000000"),
                                 NULL},
      (const herald_value_t *[]){V_I(7), V_T("2020-01-01 00:00:00.000000"),
                                 NULL},
      (const herald_value_t *[]){V_I(8), V_T("2020-01-00 00:00:00.000000"),
                                 NULL},
      (const herald_value_t *[]){V_I(9), V_T("2020-01-01 00:00:00.000000"),
                                 NULL},
  }};
  int rc = run(c, t, DB_UPSERT, id_dtm, 2, NULL, 0, 4, fill_rows, &rows, &bad,
               err, sizeof(err));
  ck_assert_int_eq(rc, HD_ESINK_VALUE);
  ck_assert_uint_eq(bad, 2);
  ck_assert_msg(strstr(err, "column dtm") && strstr(err, "zero date"), "%s",
                err);
  char desc[256];
  drv->run_describe(c, last_run, bad, desc, sizeof(desc));
  ck_assert_str_eq(desc, "id=8");
  drv->rollback(c);
  q1_eq(pg, "SELECT count(*) FROM t_pg_zero.z", "5");
  conf.sink.zero_dates = HD_ZERO_NULL;
  tbl_free(t);
  world_end(&w);
}
END_TEST

/* ------------------------------------------------ runs and their errors */

static const cdef_t kv_cols[] = {
    {"id", "int", "int", 0, 0, 0, 0, 0, 0, 1},
    {"v", "varchar(3)", "varchar", 3, 0, 0, 0, -2, 1, 0},
    {"small", "tinyint", "tinyint", 0, 0, 0, 0, 0, 1, 0},
    {"req", "int", "int", 0, 0, 0, 0, 0, 0, 0},
    {"n", "decimal(12,4)", "decimal", 0, 12, 4, 0, 0, 1, 0},
    {"tx", "text", "text", 0, 0, 0, 0, -2, 1, 0},
    {"j", "json", "json", 0, 0, 0, 0, -2, 1, 0},
    {"fl", "double", "double", 0, 0, 0, 0, 0, 1, 0},
};
#define NKV (sizeof(kv_cols) / sizeof(kv_cols[0]))

/* Operation op: id op, v "ab", small 1, req 1; bad_at's gets *what. */
typedef struct {
  size_t bad_at;
  int what;
} kvfill_t;

static void fill_kv(size_t op, const herald_value_t **v, void *ud) {
  const kvfill_t *kf = ud;
  int w = kf && op == kf->bad_at ? kf->what : 0;
  v[0] = w == 10 ? V_S("x") : V_I((int64_t)op);
  v[1] = V_S(w == 1 ? "abcd" : "ab");
  v[2] = w == 2 ? V_I(100000) : V_I(1);
  v[3] = w == 3 ? V_NULL() : V_I(1);
  v[4] = V_DEC(w == 4 ? "12345.6789" : "1.5000");
  v[5] = w == 5   ? V_B("a\0b", 3)
         : w == 6 ? V_BAD("\xe9t\xe9", 3)
         : w == 8 ? V_B("\xff", 1)
                  : V_S("t");
  v[6] = w == 7 ? V_JD("[{\"op\":\"remove\",\"path\":\"$.a\"}]") : V_J("{}");
  v[7] = V_D(w == 9 ? NAN : 0.5);
}

/* A run of 2500 upserts whose operation bad_at is refused with what:
 * the error's code, its column, and *bad; the connection good after the
 * rollback. */
static void kv_error(db_conn_t *c, db_table_t *t, size_t bad_at, int what,
                     int want_rc, const char *want_col, const char *want_msg) {
  char err[1024];
  size_t bad = 0;
  kvfill_t kf = {bad_at, what};
  begin(c);
  int rc = run(c, t, DB_UPSERT, cols_upto(NKV), NKV, NULL, 0, 2500, fill_kv,
               &kf, &bad, err, sizeof(err));
  ck_assert_msg(rc == want_rc, "what %d: rc %d: %s", what, rc, err);
  ck_assert_msg(bad == bad_at, "what %d: bad %zu, not %zu: %s", what, bad,
                bad_at, err);
  char col[64];
  snprintf(col, sizeof(col), "column %s", want_col);
  ck_assert_msg(strstr(err, col), "what %d: '%s' does not name %s", what, err,
                col);
  ck_assert_msg(strstr(err, want_msg), "what %d: '%s' lacks '%s'", what, err,
                want_msg);
  char desc[128];
  snprintf(col, sizeof(col), "id=%zu", bad_at);
  drv->run_describe(c, last_run, bad, desc, sizeof(desc));
  ck_assert_str_eq(desc, col);
  drv->rollback(c);
}

START_TEST(run_errors) {
  world_t w = world("t_pg_err");
  PGconn *pg = w.pg;
  db_table_t *t = mk_table("t_pg_err", "kv", kv_cols, NKV);
  db_conn_t *ddl = w.ddl, *c = w.c;
  create(ddl, t);
  /* the destination narrower than the source says: as after an ALTER
   * that widened the column at the source only */
  qexec(pg, "ALTER TABLE t_pg_err.kv ALTER n TYPE numeric(5,2)");

  /* server-side errors in the pipeline, found after a flush (op 1500)
   * and before one (op 3), the client's own before anything is sent */
  kv_error(c, t, 1500, 1, HD_ESINK_VALUE, "v", "22001");
  kv_error(c, t, 3, 2, HD_ESINK_VALUE, "small", "22003");
  kv_error(c, t, 1999, 3, HD_ESINK_VALUE, "req", "23502");
  kv_error(c, t, 0, 4, HD_ESINK_VALUE, "n", "numeric field overflow");
  kv_error(c, t, 2499, 5, HD_ESINK_VALUE, "tx", "NUL");
  kv_error(c, t, 7, 6, HD_ESINK_VALUE, "tx", "invalid text");
  kv_error(c, t, 1000, 7, HD_ESINK_VALUE, "j", "binlog_row_value_options=''");
  kv_error(c, t, 999, 8, HD_ESINK_VALUE, "tx", "22021");
  kv_error(c, t, 5, 9, HD_ESINK_VALUE, "fl", "not a number");
  /* the key itself refused: the description says so, not NULL */
  {
    char e2[1024], desc[128];
    size_t bad2 = 0;
    kvfill_t kf = {4, 10};
    begin(c);
    int rc2 = run(c, t, DB_UPSERT, cols_upto(NKV), NKV, NULL, 0, 10, fill_kv,
                  &kf, &bad2, e2, sizeof(e2));
    ck_assert_msg(rc2 == HD_ESINK_VALUE && bad2 == 4, "rc %d bad %zu: %s", rc2,
                  bad2, e2);
    drv->run_describe(c, last_run, bad2, desc, sizeof(desc));
    ck_assert_str_eq(desc, "id=(the value refused)");
    drv->rollback(c);
  }
  q1_eq(pg, "SELECT count(*) FROM t_pg_err.kv", "0");

  /* after all that the connection applies a whole run */
  char err[1024];
  size_t bad;
  apply(c, t, DB_UPSERT, cols_upto(NKV), NKV, NULL, 0, 2500, fill_kv, NULL);
  q1_eq(pg, "SELECT count(*) || ' ' || sum(id) FROM t_pg_err.kv",
        "2500 3123750");
  /* deletes by key, pipelined too */
  static const uint32_t id[] = {0};
  apply(c, t, DB_DELETE, NULL, 0, id, 1, 2000, fill_kv, NULL);
  q1_eq(pg, "SELECT count(*) || ' ' || min(id) FROM t_pg_err.kv", "500 2000");

  /* a commit after a failed statement is an error, not a silent rollback */
  begin(c);
  kvfill_t kf = {1, 2};
  int rc = run(c, t, DB_UPSERT, cols_upto(NKV), NKV, NULL, 0, 2, fill_kv, &kf,
               &bad, err, sizeof(err));
  ck_assert_int_eq(rc, HD_ESINK_VALUE);
  rc = drv->commit(c, err, sizeof(err));
  ck_assert_int_eq(rc, HD_ESINK_DB);
  ck_assert_msg(strstr(err, "rolled"), "%s", err);
  drv->rollback(c);

  /* the table gone, a column gone: schema errors at run_start */
  qexec(pg, "ALTER TABLE t_pg_err.kv DROP COLUMN tx");
  db_table_t *t2 = mk_table("t_pg_err", "kv", kv_cols, NKV); /* not prepared */
  begin(c);
  rc = run(c, t2, DB_UPSERT, cols_upto(NKV), NKV, NULL, 0, 1, fill_kv, NULL,
           &bad, err, sizeof(err));
  ck_assert_msg(rc == HD_ESINK_SCHEMA && strstr(err, "42703"), "%d %s", rc,
                err);
  drv->rollback(c);
  qexec(pg, "DROP TABLE t_pg_err.kv");
  db_table_t *t3 = mk_table("t_pg_err", "kv", kv_cols, NKV);
  begin(c);
  rc = run(c, t3, DB_UPSERT, cols_upto(NKV), NKV, NULL, 0, 1, fill_kv, NULL,
           &bad, err, sizeof(err));
  ck_assert_msg(rc == HD_ESINK_SCHEMA && strstr(err, "42P01"), "%d %s", rc,
                err);
  drv->rollback(c);
  /* and the table made again, the connection goes on */
  create(ddl, t3);
  apply(c, t3, DB_UPSERT, cols_upto(NKV), NKV, NULL, 0, 10, fill_kv, NULL);
  q1_eq(pg, "SELECT count(*) FROM t_pg_err.kv", "10");

  /* a type without a mapping: table_create refuses it, naming it */
  static const cdef_t odd[] = {
      {"id", "int", "int", 0, 0, 0, 0, 0, 0, 1},
      {"x", "vector(3)", "vector", 0, 0, 0, 0, -2, 1, 0}};
  db_table_t *t4 = mk_table("t_pg_err", "odd", odd, 2);
  rc = drv->table_create(ddl, t4, err, sizeof(err));
  ck_assert_int_eq(rc, HD_ESINK_SCHEMA);
  ck_assert_msg(strstr(err, "column x") && strstr(err, "vector(3)"), "%s", err);

  tbl_free(t);
  tbl_free(t2);
  tbl_free(t3);
  tbl_free(t4);
  world_end(&w);
}
END_TEST

/* ------------------------------------------------- tables without a key */

static const cdef_t nokey_cols[] = {
    {"a", "int", "int", 0, 0, 0, 0, 0, 1, 0},
    {"b", "varchar(10)", "varchar", 10, 0, 0, 0, -2, 1, 0},
    {"bl", "blob", "blob", 0, 0, 0, 0, -2, 1, 0},
};

START_TEST(rows_without_key) {
  world_t w = world("t_pg_nokey");
  PGconn *pg = w.pg;
  db_table_t *t = mk_table("t_pg_nokey", "nk", nokey_cols, 3);
  db_conn_t *ddl = w.ddl, *c = w.c;
  create(ddl, t);
  char err[1024];
  size_t bad;
  const uint32_t *all = cols_upto(3);
  rows_t rows = {{
      (const herald_value_t *[]){V_I(1), V_S("x"), V_B("\0\1", 2), NULL},
      (const herald_value_t *[]){V_I(1), V_S("x"), V_B("\0\1", 2), NULL},
      (const herald_value_t *[]){V_I(2), V_NULL(), V_NULL(), NULL},
  }};
  apply(c, t, DB_INSERT, all, 3, NULL, 0, 3, fill_rows, &rows);
  /* one of two equal rows updated; a NULL matched by NULL; a row that
   * matches nothing inserted */
  rows_t upd = {{
      (const herald_value_t *[]){V_I(1), V_S("y"), V_B("\0\1", 2), V_I(1),
                                 V_S("x"), V_B("\0\1", 2), NULL},
      (const herald_value_t *[]){V_I(2), V_S("was null"), V_NULL(), V_I(2),
                                 V_NULL(), V_NULL(), NULL},
      (const herald_value_t *[]){V_I(3), V_S("new"), V_B("\xff", 1), V_I(9),
                                 V_S("none"), V_NULL(), NULL},
  }};
  apply(c, t, DB_UPDATE_ROW, all, 3, all, 3, 3, fill_rows, &upd);
  q1_eq(pg,
        "SELECT string_agg(concat_ws(':', a, b, encode(bl, 'hex')), ',' ORDER "
        "BY a, b) FROM t_pg_nokey.nk",
        "1:x:0001,1:y:0001,2:was null,3:new:ff");
  /* one of two equal rows deleted; none matched: nothing */
  qexec(pg, "INSERT INTO t_pg_nokey.nk VALUES (1, 'y', '\\x0001')");
  rows_t del = {{
      (const herald_value_t *[]){V_I(1), V_S("y"), V_B("\0\1", 2), NULL},
      (const herald_value_t *[]){V_I(5), V_S("none"), V_NULL(), NULL},
  }};
  apply(c, t, DB_DELETE_ROW, NULL, 0, all, 3, 2, fill_rows, &del);
  q1_eq(pg, "SELECT count(*) FROM t_pg_nokey.nk WHERE a = 1 AND b = 'y'", "1");
  q1_eq(pg, "SELECT count(*) FROM t_pg_nokey.nk", "4");
  /* an error in a row matched alone: its index, its where[] described */
  rows_t bad_upd = {{
      (const herald_value_t *[]){V_I(1), V_S("z"), V_NULL(), V_I(1), V_S("x"),
                                 V_B("\0\1", 2), NULL},
      (const herald_value_t *[]){V_I(1), V_S("much too long"), V_NULL(), V_I(1),
                                 V_S("y"), V_B("\0\1", 2), NULL},
  }};
  begin(c);
  int rc = run(c, t, DB_UPDATE_ROW, all, 3, all, 3, 2, fill_rows, &bad_upd,
               &bad, err, sizeof(err));
  ck_assert_int_eq(rc, HD_ESINK_VALUE);
  ck_assert_uint_eq(bad, 1);
  ck_assert_msg(strstr(err, "column b"), "%s", err);
  char desc[128];
  drv->run_describe(c, last_run, 1, desc, sizeof(desc));
  ck_assert_str_eq(desc, "a=1, b='y', bl='\\x0001'");
  drv->rollback(c);
  q1_eq(pg, "SELECT count(*) FROM t_pg_nokey.nk WHERE b = 'z'", "0");
  tbl_free(t);
  world_end(&w);
}
END_TEST

/* ------------------------------------------------------------ offsets */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *ensure_thread(void *arg) {
  (void)arg;
  db_conn_t *ddl = NULL;
  char err[512];
  if (drv->connect(&k, 1, &ddl, err, sizeof(err)) != 0)
    return strdup(err);
  int rc = drv->offsets_ensure(ddl, err, sizeof(err));
  drv->disconnect(ddl);
  return rc ? strdup(err) : NULL;
}

START_TEST(offsets) {
  world_t w = world("t_pg_off");
  PGconn *pg = w.pg;
  /* agents racing to make the table: every one succeeds */
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, ensure_thread, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *e;
    pthread_join(th[i], &e);
    ck_assert_msg(e == NULL, "offsets_ensure: %s", (char *)e);
  }
  q1_eq(pg,
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY "
        "ordinal_position) FROM information_schema.columns WHERE "
        "table_schema = 't_pg_off' AND table_name = 'herald_offsets'",
        "group text, partition integer, scn numeric, epoch numeric, holder "
        "text, updated_at timestamp with time zone");

  db_conn_t *a = w.c, *b = conn(0), *ddl = w.ddl;
  char err[512], sid_a[64], holder[64];
  uint64_t scn = 1, epoch = 1;
  ck_assert_int_eq(drv->session_id(a, sid_a, sizeof(sid_a), err, sizeof(err)),
                   0);
  ck_assert_msg(strchr(sid_a, ':'), "%s", sid_a);

  /* first lock: the row made as scn 0, epoch 0 */
  begin(a);
  int rc = drv->offset_lock(a, 3, 1000, &scn, &epoch, holder, sizeof(holder),
                            err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_uint_eq(scn, 0);
  ck_assert_uint_eq(epoch, 0);
  rc = drv->offset_write(a, 3, UINT64_MAX, 7, sid_a, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  commit(a);
  q1_eq(pg,
        "SELECT scn || ' ' || epoch || ' ' || (holder = '' OR holder IS NULL)"
        " FROM t_pg_off.herald_offsets WHERE partition = 3",
        "18446744073709551615 7 false");

  /* a holds the row; b waits its bound, then learns who holds it */
  begin(a);
  rc = drv->offset_lock(a, 3, 1000, &scn, &epoch, NULL, 0, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_uint_eq(scn, UINT64_MAX);
  begin(b);
  uint64_t t0 = now_ms();
  rc = drv->offset_lock(b, 3, 300, &scn, &epoch, holder, sizeof(holder), err,
                        sizeof(err));
  uint64_t waited = now_ms() - t0;
  ck_assert_msg(rc == -EAGAIN, "rc %d: %s", rc, err);
  ck_assert_msg(waited >= 250 && waited < 3000, "waited %" PRIu64, waited);
  ck_assert_str_eq(holder, sid_a);
  /* NOWAIT with 0 */
  t0 = now_ms();
  rc = drv->offset_lock(b, 3, 0, &scn, &epoch, holder, sizeof(holder), err,
                        sizeof(err));
  ck_assert_msg(rc == -EAGAIN && now_ms() - t0 < 1000, "rc %d: %s", rc, err);
  drv->rollback(b);

  /* a pid that is not the holder's session (start time differs) is left
   * alone; a malformed holder is an error; the holder itself ends */
  char other[64];
  snprintf(other, sizeof(other), "%.*s:1", (int)strcspn(sid_a, ":"), sid_a);
  ck_assert_int_eq(drv->kill_holder(ddl, other, err, sizeof(err)), 0);
  ck_assert_int_eq(drv->kill_holder(ddl, "", err, sizeof(err)), 0);
  ck_assert_int_eq(drv->kill_holder(ddl, "server-7", err, sizeof(err)),
                   HD_ESINK_DB);
  begin(b);
  rc = drv->offset_lock(b, 3, 200, &scn, &epoch, NULL, 0, err, sizeof(err));
  ck_assert_int_eq(rc, -EAGAIN); /* still held: a was not killed */
  drv->rollback(b);
  rc = drv->kill_holder(ddl, sid_a, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  begin(b);
  rc = drv->offset_lock(b, 3, 1000, &scn, &epoch, NULL, 0, err, sizeof(err));
  ck_assert_msg(rc == 0, "after the kill: %s", err);
  ck_assert_uint_eq(scn, UINT64_MAX);
  ck_assert_uint_eq(epoch, 7);
  rc = drv->offset_write(b, 3, 42, 8, NULL, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  commit(b);
  /* holder NULL: left as it was */
  q1_eq(pg,
        "SELECT scn || ' ' || epoch || ' ' || (holder = '') FROM "
        "t_pg_off.herald_offsets WHERE partition = 3",
        "42 8 false");
  /* the killed session's commit fails; killing it again is success */
  rc = drv->commit(a, err, sizeof(err));
  ck_assert_msg(rc == HD_ESINK_DB, "rc %d: %s", rc, err);
  drv->rollback(a);
  ck_assert_int_eq(drv->kill_holder(ddl, sid_a, err, sizeof(err)), 0);
  drv->disconnect(b);
  world_end(&w);
}
END_TEST

/* A connection lost in the middle of a run: run_end fails cleanly (no
 * operation to blame), rollback and disconnect cope. */
START_TEST(connection_lost) {
  world_t w = world("t_pg_lost");
  PGconn *pg = w.pg;
  db_table_t *t = mk_table("t_pg_lost", "kv", kv_cols, NKV);
  db_conn_t *ddl = w.ddl, *c = w.c;
  create(ddl, t);
  char err[1024], sid[64];
  ck_assert_int_eq(drv->session_id(c, sid, sizeof(sid), err, sizeof(err)), 0);
  begin(c);
  db_shape_t sh = {t, DB_UPSERT, NKV, cols_upto(NKV), 0, NULL};
  ck_assert_int_eq(drv->run_open(c, &sh, &last_run, err, sizeof(err)), 0);
  const herald_value_t *vals[NKV];
  for (size_t i = 0; i < 1500; i++) {
    if (i == 1200)
      ck_assert_int_eq(drv->kill_holder(ddl, sid, err, sizeof(err)), 0);
    npool = 0;
    fill_kv(i, vals, NULL);
    ck_assert_int_eq(drv->run_add(c, last_run, vals, NULL, err, sizeof(err)),
                     0);
  }
  size_t bad = 0;
  int rc = drv->run_flush(c, last_run, &bad, err, sizeof(err));
  ck_assert_msg(rc == HD_ESINK_DB, "rc %d: %s", rc, err);
  ck_assert_uint_eq(bad, SIZE_MAX);
  drv->rollback(c);
  rc = drv->begin(c, err, sizeof(err));
  ck_assert_int_eq(rc, HD_ESINK_DB);
  q1_eq(pg, "SELECT count(*) FROM t_pg_lost.kv", "0");
  tbl_free(t);
  world_end(&w);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("postgresql driver");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, every_type);
  tcase_add_test(tc, fractional_seconds);
  tcase_add_test(tc, zero_dates);
  tcase_add_test(tc, run_errors);
  tcase_add_test(tc, rows_without_key);
  tcase_add_test(tc, offsets);
  tcase_add_test(tc, connection_lost);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
