/*
 * Unit tests of libherald through its public API (herald/herald.h): the
 * configuration keys, the client's refusals, the ack rules, the status
 * texts; and the protocol against test servers written here.
 *
 * The servers are a test double of the relay: a thread that accepts the
 * client's connections on a loopback port, records each Subscribe and
 * sends scripted frames built with hd_frame_encode(). A real relay cannot
 * produce these cases on demand (a connection closed in the middle of a
 * window, the same window cut at other chunk boundaries by the next
 * relay, a relay that sends another SCN after a failover, one that goes
 * silent, every relay answering ERR_SCN_TOO_OLD), so they are scripted.
 * tests/integration/test_failover.py does the same against real relays.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hd_check.h"
#include "hd_frame.h"
#include "herald/herald.h"

#define SCHEMA_VERSION 77u

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------ configuration */

static int conf_try(const char *key, const char *value, char *err, size_t n) {
  herald_conf_t *c = herald_conf_new();
  err[0] = '\0';
  int rc = herald_conf_set(c, key, value, err, n);
  herald_conf_free(c);
  return rc;
}

/* Every key: good values taken, bad ones refused with a message that
 * names the key. */
START_TEST(conf_every_key) {
  static const struct {
    const char *key;
    const char *good[4];
    const char *bad[6];
  } keys[] = {
      {"relays",
       {"a:1", "127.0.0.1:7400,relay2:7401", "[::1]:7400"},
       {"", "a", "a:1,", ",a:1", "a:99999", "a:1,,b:2"}},
      {"zookeeper.hosts", {"zk1:2181,zk2:2181"}, {""}},
      {"zookeeper.session_timeout_ms",
       {"1000", "600000"},
       {"999", "600001", "x", "-5", ""}},
      {"cluster", {"prod", "a.b-c_d"}, {"", "a/b"}},
      {"source", {"shop"}, {"", "/x"}},
      {"token", {"s3cret", ""}, {NULL}},
      {"client_id", {"me"}, {NULL}},
      {"tables",
       {"db.t", "d*.x*,other.t", "*.*"},
       {"", "db", ".t", "db.", "a.b.c", "a.t,,b.t"}},
      {"partition.count", {"1", "65536"}, {"0", "65537", "-1", "x"}},
      {"partition.list", {"0", "0,3,65535"}, {"", "x", "65536", "1,,2"}},
      {"partition.function", {"hash", "mod"}, {"range", "", "HASH"}},
      {"partition.key_column", {"id", ""}, {NULL}},
      {"projection",
       {"db.t:a", "db.*:a,b"},
       {"db.t", ":a", "db.t:", "db:a", "db.t:a,,b"}},
      {"start", {"earliest", "latest", "0", "12884901892"}, {"soon", "-1", ""}},
      {"stall_timeout_ms", {"100", "3600000"}, {"99", "3600001", "5s"}},
      {"connect_timeout_ms", {"100", "3600000"}, {"99", "x"}},
      {"backoff_max_ms", {"10", "3600000"}, {"9", "x"}},
      {"failover", {"true", "false"}, {"yes", "1", ""}},
      {"max_frame_bytes",
       {"65536", "64KiB", "1GiB"},
       {"65535", "2GiB", "x", ""}},
  };
  char err[300];
  for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
    for (size_t i = 0; i < 4 && keys[k].good[i]; i++)
      ck_assert_msg(conf_try(keys[k].key, keys[k].good[i], err, sizeof(err)) ==
                        HERALD_OK,
                    "%s=%s refused: %s", keys[k].key, keys[k].good[i], err);
    for (size_t i = 0; i < 6 && keys[k].bad[i]; i++) {
      ck_assert_msg(conf_try(keys[k].key, keys[k].bad[i], err, sizeof(err)) ==
                        HERALD_ERR_ARG,
                    "%s='%s' taken", keys[k].key, keys[k].bad[i]);
      ck_assert_msg(strstr(err, keys[k].key) != NULL,
                    "%s='%s': message '%s' does not name the key", keys[k].key,
                    keys[k].bad[i], err);
    }
  }
  ck_assert_int_eq(conf_try("nope", "1", err, sizeof(err)), HERALD_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(err, "'nope'"));
  herald_conf_t *c = herald_conf_new();
  ck_assert_int_eq(herald_conf_set(c, NULL, "1", err, sizeof(err)),
                   HERALD_ERR_ARG);
  ck_assert_int_eq(herald_conf_set(c, "start", NULL, err, sizeof(err)),
                   HERALD_ERR_ARG);
  ck_assert_int_eq(herald_conf_set(NULL, "start", "1", err, sizeof(err)),
                   HERALD_ERR_ARG);
  /* No room for a message is fine. */
  ck_assert_int_eq(herald_conf_set(c, "start", "soon", NULL, 0),
                   HERALD_ERR_ARG);
  /* A refused value keeps the one before. */
  ck_assert_int_eq(herald_conf_set(c, "relays", "a:1", err, sizeof(err)), 0);
  ck_assert_int_eq(herald_conf_set(c, "relays", "b", err, sizeof(err)),
                   HERALD_ERR_ARG);
  herald_client_t *cl = herald_client_new(c, err, sizeof(err));
  ck_assert_ptr_nonnull(cl);
  herald_client_free(cl);
  herald_conf_free(c);
  herald_conf_free(NULL);
}
END_TEST

/* herald_client_new: what an incomplete or inconsistent conf is told. */
START_TEST(client_new_refusals) {
  static const struct {
    const char *kv[6]; /* key, value, ... */
    const char *says;
  } cases[] = {
      {{NULL}, "'relays' or 'zookeeper.hosts'"},
      {{"tables", "a.b", NULL}, "'relays' or 'zookeeper.hosts'"},
      {{"zookeeper.hosts", "zk:2181", NULL}, "'cluster' and 'source'"},
      {{"zookeeper.hosts", "zk:2181", "cluster", "c", NULL},
       "'cluster' and 'source'"},
      {{"zookeeper.hosts", "zk:2181", "source", "s", NULL},
       "'cluster' and 'source'"},
      {{"relays", "a:1", "partition.list", "1", NULL},
       "'partition.list' needs 'partition.count'"},
      {{"relays", "a:1", "partition.count", "4", "partition.list", "1,4"},
       "not below partition.count"},
  };
  char err[300];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    herald_conf_t *c = herald_conf_new();
    for (size_t k = 0; k < 6 && cases[i].kv[k]; k += 2)
      ck_assert_int_eq(
          herald_conf_set(c, cases[i].kv[k], cases[i].kv[k + 1], err, 300), 0);
    err[0] = '\0';
    ck_assert_ptr_null(herald_client_new(c, err, sizeof(err)));
    ck_assert_msg(strstr(err, cases[i].says) != NULL, "case %zu: '%s'", i, err);
    ck_assert_ptr_null(herald_client_new(c, NULL, 0));
    herald_conf_free(c);
  }
  ck_assert_ptr_null(herald_client_new(NULL, err, sizeof(err)));
  ck_assert_ptr_nonnull(strstr(err, "no configuration"));
  herald_client_free(NULL);

  /* A complete one: nothing dialed yet, the start position delivered. */
  herald_conf_t *c = herald_conf_new();
  herald_conf_set(c, "zookeeper.hosts", "127.0.0.1:1", err, sizeof(err));
  herald_conf_set(c, "cluster", "c", err, sizeof(err));
  herald_conf_set(c, "source", "s", err, sizeof(err));
  herald_conf_set(c, "start", "4242", err, sizeof(err));
  herald_client_t *cl = herald_client_new(c, err, sizeof(err));
  herald_conf_free(c);
  ck_assert_ptr_nonnull(cl);
  ck_assert_int_eq(herald_state(cl), HERALD_STATE_CONNECTING);
  ck_assert_ptr_null(herald_relay(cl));
  ck_assert_str_eq(herald_error(cl), "");
  ck_assert_uint_eq(herald_delivered_scn(cl), 4242);
  ck_assert_uint_eq(herald_acked_scn(cl), 0);
  ck_assert_uint_eq(herald_failovers(cl), 0);
  herald_client_free(cl);
}
END_TEST

static herald_client_t *client_at(const char *start) {
  herald_conf_t *c = herald_conf_new();
  char err[300];
  ck_assert_int_eq(herald_conf_set(c, "relays", "127.0.0.1:1", err, 300), 0);
  if (start)
    ck_assert_int_eq(herald_conf_set(c, "start", start, err, 300), 0);
  herald_client_t *cl = herald_client_new(c, err, sizeof(err));
  herald_conf_free(c);
  ck_assert_ptr_nonnull(cl);
  return cl;
}

/* herald_ack: never beyond what was delivered, never below the last ack. */
START_TEST(ack_rules) {
  herald_client_t *c = client_at(NULL);
  ck_assert_int_eq(herald_ack(c, 0), HERALD_OK);
  ck_assert_int_eq(herald_ack(c, 1), HERALD_ERR_STATE);
  ck_assert_ptr_nonnull(strstr(herald_error(c), "ack of SCN 1"));
  herald_client_free(c);

  c = client_at("100"); /* starting after 100: delivered up to it */
  ck_assert_int_eq(herald_ack(c, 50), HERALD_OK);
  ck_assert_uint_eq(herald_acked_scn(c), 50);
  ck_assert_int_eq(herald_ack(c, 50), HERALD_OK); /* again: fine */
  ck_assert_int_eq(herald_ack(c, 100), HERALD_OK);
  ck_assert_uint_eq(herald_acked_scn(c), 100);
  ck_assert_int_eq(herald_ack(c, 101), HERALD_ERR_STATE);
  ck_assert_int_eq(herald_ack(c, 99), HERALD_ERR_STATE);
  ck_assert_ptr_nonnull(strstr(herald_error(c), "[100, 100]"));
  ck_assert_uint_eq(herald_acked_scn(c), 100);
  herald_client_free(c);
}
END_TEST

START_TEST(strerror_every_status) {
  static const int all[] = {HERALD_OK,
                            HERALD_TIMED_OUT,
                            HERALD_ERR_ARG,
                            HERALD_ERR_SCN_TOO_OLD,
                            HERALD_ERR_AUTH,
                            HERALD_ERR_REFUSED,
                            HERALD_ERR_NO_RELAY,
                            HERALD_ERR_RELAY,
                            HERALD_ERR_INCONSISTENT,
                            HERALD_ERR_ZOOKEEPER,
                            HERALD_ERR_STATE,
                            HERALD_ERR_FAILED,
                            HERALD_ERR_CALLBACK};
  const size_t n = sizeof(all) / sizeof(all[0]);
  for (size_t i = 0; i < n; i++) {
    const char *s = herald_strerror(all[i]);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(*s && strcmp(s, "unknown status") != 0, "status %d: '%s'",
                  all[i], s);
    for (size_t j = 0; j < i; j++)
      ck_assert_msg(strcmp(s, herald_strerror(all[j])) != 0,
                    "statuses %d and %d both '%s'", all[i], all[j], s);
  }
  ck_assert_str_eq(herald_strerror(HERALD_OK), "ok");
  ck_assert_ptr_nonnull(
      strstr(herald_strerror(HERALD_ERR_SCN_TOO_OLD), "bootstrap"));
  ck_assert_str_eq(herald_strerror(2), "unknown status");
  ck_assert_str_eq(herald_strerror(-12), "unknown status");
  ck_assert_str_eq(herald_strerror(12345), "unknown status");
  char v[32];
  snprintf(v, sizeof(v), "%d.%d.%d", HERALD_VERSION_MAJOR, HERALD_VERSION_MINOR,
           HERALD_VERSION_PATCH);
  ck_assert_str_eq(herald_version(), v);
}
END_TEST

/* -------------------------------------------------------- test server */

/* What a server does on one connection after reading its Subscribe. */
typedef struct srv srv_t;
typedef void script_fn(srv_t *s, int fd, int conn);

#define MAX_CONNS 8

struct srv {
  int lfd;
  uint16_t port;
  char addr[32];
  pthread_t th;
  script_fn *script;
  void *arg;
  volatile int stop;
  int joined;
  int conns;                      /* connections accepted */
  const Herald__Subscribe *cur;   /* of the connection in the script */
  Herald__Frame *subs[MAX_CONNS]; /* their first frames */
  int subscribed;                 /* how many were a Subscribe */
};

/* A frame to the client; a client that hung up is not an error here. */
static void send_frame(int fd, const Herald__Frame *f) {
  uint8_t *buf;
  size_t len;
  ck_assert_int_eq(hd_frame_encode(f, 64u << 20, &buf, &len), 0);
  size_t off = 0;
  while (off < len) {
    ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  free(buf);
}

static void send_heartbeat(int fd, uint64_t newest, uint64_t position) {
  Herald__Heartbeat hb = HERALD__HEARTBEAT__INIT;
  hb.newest_scn = newest;
  hb.newest_ts_ms = 1700000000000ull + newest;
  hb.position = position;
  Herald__Frame f = HERALD__FRAME__INIT;
  f.msg_case = HERALD__FRAME__MSG_HEARTBEAT;
  f.heartbeat = &hb;
  send_frame(fd, &f);
}

static void send_error(int fd, Herald__ErrorCode code, const char *msg,
                       uint64_t oldest) {
  Herald__Error e = HERALD__ERROR__INIT;
  e.code = code;
  e.message = (char *)msg;
  e.oldest_scn = oldest;
  Herald__Frame f = HERALD__FRAME__INIT;
  f.msg_case = HERALD__FRAME__MSG_ERROR;
  f.error = &e;
  send_frame(fd, &f);
}

/* Wait until the client closes the connection (or the test ends): a
 * relay that is up but sends nothing. */
static void hold(srv_t *s, int fd) {
  while (!s->stop) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char b[4096];
      if (read(fd, b, sizeof(b)) <= 0)
        return;
    }
  }
}

/* The client's first frame, or NULL when it sent none within 5 s. */
static Herald__Frame *read_first(int fd) {
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1u << 20);
  Herald__Frame *f = NULL;
  uint8_t buf[4096];
  int64_t end = now_ms() + 5000;
  while (f == NULL && now_ms() < end) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    hd_inbuf_t in = {buf, (size_t)n, 0};
    while (f == NULL && in.pos < in.size)
      if (hd_frame_decode(&d, &in, &f) < 0)
        goto out;
  }
out:
  hd_frame_dec_free(&d);
  return f;
}

static void *srv_main(void *arg) {
  srv_t *s = arg;
  while (!s->stop) {
    struct pollfd p = {s->lfd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0)
      continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    int conn = s->conns++;
    Herald__Frame *f = read_first(fd);
    if (f && f->msg_case == HERALD__FRAME__MSG_SUBSCRIBE) {
      s->subscribed++;
      s->cur = f->subscribe;
      if (s->script)
        s->script(s, fd, conn);
    }
    if (conn < MAX_CONNS)
      s->subs[conn] = f; /* kept for the test */
    else
      hd_frame_free(f);
    s->cur = NULL;
    close(fd);
  }
  return NULL;
}

/* A server on 127.0.0.1:port (0: any free port) running script. */
static srv_t *srv_start(uint16_t port, script_fn *script, void *arg) {
  srv_t *s = calloc(1, sizeof(*s));
  s->script = script;
  s->arg = arg;
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(listen(s->lfd, 8), 0);
  socklen_t al = sizeof(a);
  getsockname(s->lfd, (struct sockaddr *)&a, &al);
  s->port = ntohs(a.sin_port);
  snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", s->port);
  ck_assert_int_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
  return s;
}

/* Stop after the script in progress (free the client first: a script
 * holding a connection ends when the client closes it); what it recorded
 * may be read then. */
static void srv_stop(srv_t *s) {
  if (s->joined)
    return;
  s->stop = 1;
  pthread_join(s->th, NULL);
  s->joined = 1;
}

static void srv_free(srv_t *s) {
  srv_stop(s);
  close(s->lfd);
  for (int i = 0; i < s->conns && i < MAX_CONNS; i++)
    hd_frame_free(s->subs[i]);
  free(s);
}

static const Herald__Subscribe *srv_sub(const srv_t *s, int conn) {
  ck_assert_int_gt(s->subscribed, conn);
  ck_assert_int_lt(conn, MAX_CONNS);
  return s->subs[conn]->subscribe;
}

/* A port nothing listens on (until a server is started on it). */
static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t al = sizeof(a);
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd);
  return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ windows */

/* Row i of the window at scn: lh.t (id, v, d, n) = (i, "row SCN-i",
 * i + 0.5, NULL), an insert. */
typedef struct {
  Herald__RowChange rc;
  Herald__Column key, cols[4];
  Herald__Column *keyp[1], *colp[4];
  Herald__Value kv, v[4];
  char text[48];
} row_t;

static void row_init(row_t *r, uint64_t scn, size_t i) {
  static const char *names[4] = {"id", "v", "d", "n"};
  herald__row_change__init(&r->rc);
  r->rc.db = "lh";
  r->rc.table = "t";
  r->rc.op = HERALD__OP__OP_INSERT;
  r->rc.schema_version = SCHEMA_VERSION;
  r->rc.pos = 4 + i;
  snprintf(r->text, sizeof(r->text), "row %llu-%zu", (unsigned long long)scn,
           i);
  for (int k = 0; k < 4; k++) {
    herald__column__init(&r->cols[k]);
    herald__value__init(&r->v[k]);
    r->cols[k].name = (char *)names[k];
    r->cols[k].value = &r->v[k];
    r->colp[k] = &r->cols[k];
  }
  r->v[0].kind_case = HERALD__VALUE__KIND_INT;
  r->v[0].int_ = (int64_t)i;
  r->v[1].kind_case = HERALD__VALUE__KIND_STR;
  r->v[1].str.data = (uint8_t *)r->text;
  r->v[1].str.len = strlen(r->text);
  r->v[2].kind_case = HERALD__VALUE__KIND_DBL;
  r->v[2].dbl = (double)i + 0.5;
  r->v[3].kind_case = HERALD__VALUE__KIND_NULL;
  r->v[3].null = 1;
  herald__column__init(&r->key);
  r->key.name = "id";
  r->key.value = &r->kv;
  r->kv = r->v[0];
  r->keyp[0] = &r->key;
  r->rc.n_key = 1;
  r->rc.key = r->keyp;
  r->rc.n_after = 4;
  r->rc.after = r->colp;
}

/* The definition of lh.t that the windows carry. */
static Herald__TableSchema *table_schema(void) {
  static Herald__ColumnSchema cols[4];
  static Herald__ColumnSchema *colp[4];
  static Herald__TableSchema ts;
  static const char *names[4] = {"id", "v", "d", "n"};
  static const char *types[4] = {"int", "varchar(20)", "double", "int"};
  herald__table_schema__init(&ts);
  for (int k = 0; k < 4; k++) {
    herald__column_schema__init(&cols[k]);
    cols[k].name = (char *)names[k];
    cols[k].sql_type = (char *)types[k];
    cols[k].base_type = (char *)types[k];
    cols[k].pk_position = k == 0;
    cols[k].nullable = k == 3;
    colp[k] = &cols[k];
  }
  ts.db = "lh";
  ts.table = "t";
  ts.schema_version = SCHEMA_VERSION;
  ts.n_columns = 4;
  ts.columns = colp;
  return &ts;
}

/* One Window message of a batch: rows [r0, r1) of the window at scn, as
 * chunk `chunk`, with more chunks to come or not; the table definition
 * with it when schema is set; statements (ddl, their row indexes) when
 * nddl is. */
typedef struct {
  uint64_t scn;
  size_t r0, r1;
  uint32_t chunk;
  int more, schema;
  size_t nddl;
  uint32_t ddl_at[4];
} wspec_t;

static void send_batch(int fd, const wspec_t *ws, size_t n) {
  Herald__Window *w = calloc(n, sizeof(*w));
  Herald__Window **wp = calloc(n, sizeof(*wp));
  row_t **rows = calloc(n, sizeof(*rows));
  Herald__RowChange ***rp = calloc(n, sizeof(*rp));
  Herald__SchemaChange ddl[4], *ddlp[4];
  char stmt[4][40];
  Herald__TableSchema *ts = table_schema();
  char gtid[32];
  for (size_t k = 0; k < n; k++) {
    const wspec_t *s = &ws[k];
    herald__window__init(&w[k]);
    w[k].scn = s->scn;
    snprintf(gtid, sizeof(gtid), "0-7-%llu", (unsigned long long)s->scn);
    w[k].gtid = strdup(gtid);
    w[k].ts_ms = 1700000000000ull + s->scn;
    w[k].server_id = 7;
    w[k].file = "binlog.000001";
    w[k].pos = s->scn & 0xffffffffu;
    size_t nr = s->r1 - s->r0;
    rows[k] = calloc(nr + 1, sizeof(row_t));
    rp[k] = calloc(nr + 1, sizeof(Herald__RowChange *));
    for (size_t i = 0; i < nr; i++) {
      row_init(&rows[k][i], s->scn, s->r0 + i);
      rp[k][i] = &rows[k][i].rc;
    }
    w[k].n_changes = nr;
    w[k].changes = rp[k];
    w[k].rows_total = (uint32_t)nr;
    w[k].chunk = s->chunk;
    w[k].more_chunks = s->more;
    if (s->schema) {
      w[k].n_schemas = 1;
      w[k].schemas = &ts;
    }
    for (size_t d = 0; d < s->nddl && d < 4; d++) {
      herald__schema_change__init(&ddl[d]);
      ddl[d].db = "lh";
      snprintf(stmt[d], sizeof(stmt[d]), "ALTER TABLE t COMMENT '%zu'", d);
      ddl[d].statement = stmt[d];
      ddl[d].pos = 4 + s->ddl_at[d];
      ddl[d].row_index = s->ddl_at[d];
      ddlp[d] = &ddl[d];
    }
    if (s->nddl) {
      w[k].n_ddl = s->nddl;
      w[k].ddl = ddlp;
    }
    wp[k] = &w[k];
  }
  Herald__WindowBatch b = HERALD__WINDOW_BATCH__INIT;
  b.n_windows = n;
  b.windows = wp;
  Herald__Frame f = HERALD__FRAME__INIT;
  f.msg_case = HERALD__FRAME__MSG_BATCH;
  f.batch = &b;
  send_frame(fd, &f);
  for (size_t k = 0; k < n; k++) {
    free(w[k].gtid);
    free(rows[k]);
    free(rp[k]);
  }
  free(rows);
  free(rp);
  free(wp);
  free(w);
}

/* A whole window of nrows rows. */
static void send_whole(int fd, uint64_t scn, size_t nrows, int schema) {
  wspec_t w = {scn, 0, nrows, 0, 0, schema, 0, {0}};
  send_batch(fd, &w, 1);
}

/* Rows [r0, r1) of the window at scn as its chunk `chunk`. */
static void send_chunk(int fd, uint64_t scn, size_t r0, size_t r1,
                       uint32_t chunk, int more, int schema) {
  wspec_t w = {scn, r0, r1, chunk, more, schema, 0, {0}};
  send_batch(fd, &w, 1);
}

/* One row's window at the SCN of the server's arg (SCN()), then nothing,
 * not even a heartbeat, until the client closes. */
#define SCN(x) ((void *)(uintptr_t)(x))
static void script_window(srv_t *s, int fd, int conn) {
  (void)conn;
  send_whole(fd, (uint64_t)(uintptr_t)s->arg, 1, 1);
  hold(s, fd);
}

/* "a,b" or "a,b,d": the servers' addresses as a relays list. */
static const char *relays_of(char *out, size_t n, const srv_t *a,
                             const srv_t *b, const srv_t *d) {
  snprintf(out, n, "%s,%s%s%s", a->addr, b->addr, d ? "," : "",
           d ? d->addr : "");
  return out;
}

/* -------------------------------------------------------------- client */

/* What the error callback was told. */
typedef struct {
  int n, count[16];
  int last;
  char msg[1024];
} errs_t;

static void on_error(void *ud, int status, const char *message) {
  errs_t *e = ud;
  e->n++;
  if (status <= 0 && status > -16)
    e->count[-status]++;
  e->last = status;
  snprintf(e->msg, sizeof(e->msg), "%s", message);
}

/* A client of relays (a comma list) with the test's small timeouts and
 * extra key/value pairs (NULL-terminated). */
static herald_client_t *client_new(const char *relays, errs_t *e, ...) {
  herald_conf_t *c = herald_conf_new();
  char err[300];
  ck_assert_int_eq(herald_conf_set(c, "relays", relays, err, 300), 0);
  ck_assert_int_eq(herald_conf_set(c, "connect_timeout_ms", "2000", err, 300),
                   0);
  ck_assert_int_eq(herald_conf_set(c, "backoff_max_ms", "100", err, 300), 0);
  ck_assert_int_eq(herald_conf_set(c, "start", "earliest", err, 300), 0);
  va_list ap;
  va_start(ap, e);
  const char *k;
  while ((k = va_arg(ap, const char *)) != NULL) {
    const char *v = va_arg(ap, const char *);
    ck_assert_msg(herald_conf_set(c, k, v, err, sizeof(err)) == 0, "%s", err);
  }
  va_end(ap);
  if (e)
    herald_conf_set_error_cb(c, on_error, e);
  herald_client_t *cl = herald_client_new(c, err, sizeof(err));
  herald_conf_free(c); /* the client keeps a copy */
  ck_assert_msg(cl != NULL, "%s", err);
  return cl;
}

/* Poll until a window (chunk) comes, a fatal status, or timeout_ms. */
static int next(herald_client_t *c, const herald_window_t **w, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  for (;;) {
    int left = (int)(end - now_ms());
    int rc = herald_poll(c, left > 0 ? left : 0, w);
    if (rc != HERALD_TIMED_OUT || now_ms() >= end)
      return rc;
  }
}

/* Poll (nothing to come) for ms: heartbeats are taken in. */
static void idle(herald_client_t *c, int ms) {
  const herald_window_t *w;
  ck_assert_int_eq(next(c, &w, ms), HERALD_TIMED_OUT);
}

/* What a client was handed: every chunk, every row change (window SCN,
 * id, text), the change-format lines. */
typedef struct {
  struct {
    uint64_t scn, row_base;
    uint32_t chunk;
    int last;
    size_t nrows, nschemas;
  } chunk[64];
  size_t nchunks;
  struct {
    uint64_t scn;
    int64_t id;
    char v[48];
  } row[256];
  size_t nrows;
  char json[1 << 16];
  size_t jlen;
  int begins, ends, schemas;
} got_t;

static void take_rows(got_t *g, const herald_window_t *w) {
  for (size_t i = 0; i < herald_window_changes(w); i++) {
    const herald_change_t *ch = herald_window_change(w, i);
    ck_assert_uint_lt(g->nrows, 256);
    g->row[g->nrows].scn = herald_window_scn(w);
    g->row[g->nrows].id =
        herald_value_int(herald_change_find(ch, HERALD_IMAGE_KEY, "id"));
    size_t len;
    const char *v = herald_value_data(
        herald_change_find(ch, HERALD_IMAGE_AFTER, "v"), &len);
    ck_assert_uint_lt(len, 48);
    memcpy(g->row[g->nrows].v, v, len + 1);
    g->nrows++;
  }
}

/* Take w into g (its rows, its lines). */
static void take(herald_client_t *c, got_t *g, const herald_window_t *w) {
  ck_assert_uint_lt(g->nchunks, 64);
  g->chunk[g->nchunks].scn = herald_window_scn(w);
  g->chunk[g->nchunks].row_base = herald_window_row_base(w);
  g->chunk[g->nchunks].chunk = herald_window_chunk(w);
  g->chunk[g->nchunks].last = herald_window_last(w);
  g->chunk[g->nchunks].nrows = herald_window_changes(w);
  g->chunk[g->nchunks].nschemas = herald_window_schemas(w);
  g->nchunks++;
  take_rows(g, w);
  const char *out;
  size_t len;
  ck_assert_int_eq(herald_window_json(c, w, 0, &out, &len), HERALD_OK);
  ck_assert_uint_lt(g->jlen + len, sizeof(g->json));
  memcpy(g->json + g->jlen, out, len);
  g->jlen += len;
  g->json[g->jlen] = '\0';
}

/* Poll into g until the window at scn is complete. */
static int take_until(herald_client_t *c, got_t *g, uint64_t scn) {
  for (;;) {
    const herald_window_t *w;
    int rc = next(c, &w, 10000);
    if (rc != HERALD_OK)
      return rc;
    take(c, g, w);
    if (herald_window_last(w) && herald_window_scn(w) >= scn)
      return HERALD_OK;
  }
}

/* Lines of a window in the change format, in g->json. */
static size_t lines_of(const got_t *g, uint64_t scn, const char *what) {
  char key[40];
  snprintf(key, sizeof(key), "{\"scn\":%llu,", (unsigned long long)scn);
  size_t n = 0;
  for (const char *p = g->json; (p = strstr(p, key)) != NULL; p++) {
    const char *nl = strchr(p, '\n');
    const char *w = strstr(p, what);
    if (w && (!nl || w < nl))
      n++;
  }
  return n;
}

/* The client stopped on status: said to the error callback, and every
 * later poll says that it stopped. */
static void check_stopped(herald_client_t *c, const errs_t *e, int status) {
  ck_assert_int_eq(herald_state(c), HERALD_STATE_FAILED);
  ck_assert_int_eq(e->last, status);
  const herald_window_t *w;
  ck_assert_int_eq(herald_poll(c, 0, &w), HERALD_ERR_FAILED);
  ck_assert_int_eq(herald_poll(c, 0, &w), HERALD_ERR_FAILED);
}

/* ----------------------------------------------------------- protocol */

static void script_heartbeat_hold(srv_t *s, int fd, int conn) {
  (void)conn;
  send_heartbeat(fd, 1, 0);
  hold(s, fd);
}

/* The Subscribe fields, read on the server before it is stopped. */
static void check_sub(const Herald__Subscribe *sub) {
  ck_assert_uint_eq(sub->protocol_version, 1);
  ck_assert_str_eq(sub->client_id, "unit");
  ck_assert_int_eq(sub->mode, HERALD__START_MODE__START_SCN);
  ck_assert_uint_eq(sub->start_scn, 4242);
  ck_assert_uint_eq(sub->n_tables, 2);
  ck_assert_str_eq(sub->tables[0], "lh.*");
  ck_assert_str_eq(sub->tables[1], "other.t");
  ck_assert_ptr_nonnull(sub->partition);
  ck_assert_int_eq(sub->partition->fn, HERALD__PARTITION_FUNCTION__PART_MOD);
  ck_assert_uint_eq(sub->partition->num_partitions, 8);
  ck_assert_uint_eq(sub->partition->n_partitions, 2);
  ck_assert_uint_eq(sub->partition->partitions[0], 1);
  ck_assert_uint_eq(sub->partition->partitions[1], 5);
  ck_assert_str_eq(sub->partition->key_column, "id");
  ck_assert_uint_eq(sub->n_projection, 2);
  ck_assert_str_eq(sub->projection[0]->table, "lh.t");
  ck_assert_uint_eq(sub->projection[0]->n_columns, 2);
  ck_assert_str_eq(sub->projection[0]->columns[0], "v");
  ck_assert_str_eq(sub->projection[0]->columns[1], "d");
  ck_assert_str_eq(sub->projection[1]->table, "other.*");
  ck_assert_str_eq(sub->projection[1]->columns[0], "x");
  ck_assert_str_eq(sub->token, "tok");
  ck_assert_uint_eq(sub->max_frame_bytes, 131072);
}

/* Every field of the Subscribe, from the conf; and the defaults. */
START_TEST(subscribe_fields) {
  srv_t *s = srv_start(0, script_heartbeat_hold, NULL);
  herald_client_t *c =
      client_new(s->addr, NULL, "tables", "lh.*,other.t", "partition.count",
                 "8", "partition.list", "1,5", "partition.function", "mod",
                 "partition.key_column", "id", "projection", "lh.t:v,d",
                 "projection", "other.*:x", "token", "tok", "max_frame_bytes",
                 "131072", "start", "4242", "client_id", "unit", NULL);
  idle(c, 300);
  ck_assert_int_eq(herald_state(c), HERALD_STATE_STREAMING);
  ck_assert_str_eq(herald_relay(c), s->addr);
  herald_client_free(c);
  srv_stop(s);
  check_sub(srv_sub(s, 0));
  srv_free(s);

  /* The defaults: latest, no filter, hash over every partition of N,
   * no token, the default frame size. */
  s = srv_start(0, script_heartbeat_hold, NULL);
  herald_conf_t *k = herald_conf_new();
  char err[300];
  herald_conf_set(k, "relays", s->addr, err, sizeof(err));
  c = herald_client_new(k, err, sizeof(err));
  idle(c, 300);
  herald_client_free(c);
  herald_conf_set(k, "partition.count", "3", err, sizeof(err));
  herald_conf_set(k, "start", "earliest", err, sizeof(err));
  c = herald_client_new(k, err, sizeof(err));
  herald_conf_free(k);
  idle(c, 300);
  herald_client_free(c);
  srv_stop(s);
  const Herald__Subscribe *d = srv_sub(s, 0);
  ck_assert_int_eq(d->mode, HERALD__START_MODE__START_LATEST);
  ck_assert_str_eq(d->client_id, "libherald");
  ck_assert_uint_eq(d->n_tables, 0);
  ck_assert_ptr_null(d->partition);
  ck_assert_uint_eq(d->n_projection, 0);
  ck_assert(d->token == NULL || *d->token == '\0');
  ck_assert_uint_eq(d->max_frame_bytes, 64u << 20);
  d = srv_sub(s, 1);
  ck_assert_int_eq(d->mode, HERALD__START_MODE__START_EARLIEST);
  ck_assert_ptr_nonnull(d->partition);
  ck_assert_int_eq(d->partition->fn, HERALD__PARTITION_FUNCTION__PART_HASH);
  ck_assert_uint_eq(d->partition->num_partitions, 3);
  ck_assert_uint_eq(d->partition->n_partitions, 3);
  for (uint32_t i = 0; i < 3; i++)
    ck_assert_uint_eq(d->partition->partitions[i], i);
  srv_free(s);
}
END_TEST

/* Whole windows, a window in 3 chunks, statements, heartbeats that move
 * the position. */
static void script_stream(srv_t *s, int fd, int conn) {
  (void)conn;
  wspec_t two[2] = {{100, 0, 2, 0, 0, 1, 0, {0}}, {200, 0, 2, 0, 0, 0, 0, {0}}};
  send_batch(fd, two, 2);
  send_heartbeat(fd, 1000, 200);
  send_chunk(fd, 300, 0, 2, 0, 1, 0);
  send_chunk(fd, 300, 2, 4, 1, 1, 0);
  send_chunk(fd, 300, 4, 5, 2, 0, 0);
  /* statements before row 0 and before row 2 */
  wspec_t ddl = {400, 0, 3, 0, 0, 0, 2, {0, 2}};
  send_batch(fd, &ddl, 1);
  send_heartbeat(fd, 1000, 500); /* filtered windows up to 500 */
  send_heartbeat(fd, 1000, 450); /* never backwards */
  hold(s, fd);
}

typedef struct {
  herald_client_t *c;
  char order[64];
  size_t n;
} order_t;

static int o_begin(void *ud, const herald_window_t *w) {
  order_t *o = ud;
  (void)w;
  o->order[o->n++] = 'B';
  return 0;
}
static int o_schema(void *ud, const herald_schema_t *s) {
  order_t *o = ud;
  (void)s;
  o->order[o->n++] = 'S';
  return 0;
}
static int o_change(void *ud, const herald_window_t *w,
                    const herald_change_t *ch) {
  order_t *o = ud;
  (void)w;
  o->order[o->n++] = (char)('0' + herald_value_int(herald_change_value(
                                      ch, HERALD_IMAGE_KEY, 0, NULL)));
  return 0;
}
static int o_ddl(void *ud, const herald_window_t *w, const herald_ddl_t *d) {
  order_t *o = ud;
  (void)w;
  (void)d;
  o->order[o->n++] = 'D';
  return 0;
}
static int o_end(void *ud, const herald_window_t *w) {
  order_t *o = ud;
  o->order[o->n++] = 'E';
  return herald_ack(o->c, herald_window_scn(w));
}

START_TEST(stream_chunks_heartbeats) {
  srv_t *s = srv_start(0, script_stream, NULL);
  herald_client_t *c = client_new(s->addr, NULL, NULL);
  const herald_window_t *w;

  ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
  ck_assert_uint_eq(herald_window_scn(w), 100);
  ck_assert_str_eq(herald_window_gtid(w), "0-7-100");
  ck_assert_uint_eq(herald_window_ts_ms(w), 1700000000100ull);
  ck_assert_uint_eq(herald_window_server_id(w), 7);
  ck_assert_str_eq(herald_window_file(w), "binlog.000001");
  ck_assert_uint_eq(herald_window_pos(w), 100);
  ck_assert_uint_eq(herald_window_chunk(w), 0);
  ck_assert_int_eq(herald_window_last(w), 1);
  ck_assert_uint_eq(herald_window_row_base(w), 0);
  ck_assert_uint_eq(herald_window_changes(w), 2);
  ck_assert_uint_eq(herald_window_ddls(w), 0);
  ck_assert_ptr_null(herald_window_change(w, 2));
  ck_assert_ptr_null(herald_window_ddl(w, 0));
  /* the table definition, once */
  ck_assert_uint_eq(herald_window_schemas(w), 1);
  const herald_schema_t *sc = herald_window_schema(w, 0);
  ck_assert_ptr_null(herald_window_schema(w, 1));
  ck_assert_str_eq(herald_schema_db(sc), "lh");
  ck_assert_str_eq(herald_schema_table(sc), "t");
  ck_assert_uint_eq(herald_schema_version(sc), SCHEMA_VERSION);
  ck_assert_uint_eq(herald_schema_columns(sc), 4);
  ck_assert_str_eq(herald_schema_column(sc, 1)->sql_type, "varchar(20)");
  ck_assert_uint_eq(herald_schema_column(sc, 0)->pk_position, 1);
  ck_assert_int_eq(herald_schema_column(sc, 3)->nullable, 1);
  ck_assert_ptr_null(herald_schema_column(sc, 4));
  /* the values by type */
  const herald_change_t *ch = herald_window_change(w, 1);
  ck_assert_int_eq(herald_change_op(ch), HERALD_OP_INSERT);
  ck_assert_str_eq(herald_change_db(ch), "lh");
  ck_assert_str_eq(herald_change_table(ch), "t");
  ck_assert_uint_eq(herald_change_pos(ch), 5);
  ck_assert_uint_eq(herald_change_schema_version(ch), SCHEMA_VERSION);
  ck_assert_ptr_eq(herald_change_schema(c, ch), sc);
  ck_assert_uint_eq(herald_change_columns(ch, HERALD_IMAGE_KEY), 1);
  ck_assert_uint_eq(herald_change_columns(ch, HERALD_IMAGE_BEFORE), 0);
  ck_assert_uint_eq(herald_change_columns(ch, HERALD_IMAGE_AFTER), 4);
  ck_assert_uint_eq(herald_change_columns(ch, HERALD_IMAGE_OLD_KEY), 0);
  const char *name;
  const herald_value_t *v =
      herald_change_value(ch, HERALD_IMAGE_AFTER, 0, &name);
  ck_assert_str_eq(name, "id");
  ck_assert_int_eq(herald_value_type(v), HERALD_V_INT);
  ck_assert_int_eq(herald_value_int(v), 1);
  ck_assert_ptr_null(herald_change_value(ch, HERALD_IMAGE_AFTER, 4, &name));
  v = herald_change_find(ch, HERALD_IMAGE_AFTER, "v");
  ck_assert_int_eq(herald_value_type(v), HERALD_V_STRING);
  size_t len;
  ck_assert_str_eq(herald_value_data(v, &len), "row 100-1");
  ck_assert_uint_eq(len, 9);
  v = herald_change_find(ch, HERALD_IMAGE_AFTER, "d");
  ck_assert_int_eq(herald_value_type(v), HERALD_V_DOUBLE);
  ck_assert(herald_value_double(v) == 1.5);
  ck_assert_ptr_null(herald_value_data(v, &len));
  v = herald_change_find(ch, HERALD_IMAGE_AFTER, "n");
  ck_assert_int_eq(herald_value_type(v), HERALD_V_NULL);
  ck_assert_ptr_null(herald_change_find(ch, HERALD_IMAGE_AFTER, "nope"));
  ck_assert_ptr_null(herald_change_find(ch, HERALD_IMAGE_BEFORE, "id"));
  ck_assert_uint_eq(herald_delivered_scn(c), 100);
  ck_assert_uint_eq(herald_delivered_ts_ms(c), 1700000000100ull);

  ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
  ck_assert_uint_eq(herald_window_scn(w), 200);
  ck_assert_uint_eq(herald_window_schemas(w), 0);
  ck_assert_uint_eq(herald_delivered_scn(c), 200);
  ck_assert_int_eq(herald_ack(c, 150), HERALD_OK);

  /* the window in chunks: the position stays until the last */
  static const uint64_t base[3] = {0, 2, 4};
  for (uint32_t k = 0; k < 3; k++) {
    ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
    ck_assert_uint_eq(herald_window_scn(w), 300);
    ck_assert_uint_eq(herald_window_chunk(w), k);
    ck_assert_int_eq(herald_window_last(w), k == 2);
    ck_assert_uint_eq(herald_window_row_base(w), base[k]);
    ck_assert_uint_eq(herald_window_changes(w), k == 2 ? 1 : 2);
    ck_assert_int_eq(
        herald_value_int(herald_change_value(herald_window_change(w, 0),
                                             HERALD_IMAGE_KEY, 0, NULL)),
        (int64_t)base[k]);
    /* the heartbeat after 200 has come: newest moved, position not */
    ck_assert_uint_eq(herald_relay_newest_scn(c), 1000);
    ck_assert_uint_eq(herald_relay_newest_ts_ms(c), 1700000001000ull);
    ck_assert_uint_eq(herald_delivered_scn(c), k == 2 ? 300 : 200);
    if (k < 2)
      ck_assert_int_eq(herald_ack(c, 300), HERALD_ERR_STATE);
  }
  ck_assert_int_eq(herald_ack(c, 300), HERALD_OK);

  /* statements where they stand among the rows; an ack in window_end */
  order_t o = {c, {0}, 0};
  herald_callbacks_t cb = {o_begin, o_schema, o_change, o_ddl, o_end};
  ck_assert_int_eq(herald_dispatch(c, &cb, &o, 5000), HERALD_OK);
  ck_assert_str_eq(o.order, "BD01D2E");
  ck_assert_uint_eq(herald_acked_scn(c), 400);

  /* filtered windows (a heartbeat's position) move it; never back */
  idle(c, 200);
  ck_assert_uint_eq(herald_delivered_scn(c), 500);
  ck_assert_uint_eq(herald_delivered_ts_ms(c), 1700000000400ull);
  ck_assert_int_eq(herald_ack(c, 500), HERALD_OK);
  ck_assert_int_eq(herald_state(c), HERALD_STATE_STREAMING);
  ck_assert_uint_eq(herald_failovers(c), 0);
  herald_client_free(c);
  srv_free(s);
}
END_TEST

/* ------------------------------------------------- failover mid-window */

/* The reference: windows 100 (3 rows), 200 (12 rows), 300 (2 rows), whole. */
static void script_whole(srv_t *s, int fd, int conn) {
  (void)conn;
  send_whole(fd, 100, 3, 1);
  send_whole(fd, 200, 12, 0);
  send_whole(fd, 300, 2, 0);
  hold(s, fd);
}

/* Whether the connection's subscription starts before scn (a relay
 * sends what follows its start only). */
static int wants(const srv_t *s, uint64_t scn) {
  return s->cur->mode != HERALD__START_MODE__START_SCN ||
         s->cur->start_scn < scn;
}

/* A: window 100, then rows [0,4) and [4,7) of window 200, and it closes. */
static void script_cut(srv_t *s, int fd, int conn) {
  (void)conn;
  if (wants(s, 100))
    send_whole(fd, 100, 3, 1);
  send_chunk(fd, 200, 0, 4, 0, 1, 0);
  send_chunk(fd, 200, 4, 7, 1, 1, 0);
}

/* B: window 200 again from chunk 0, cut elsewhere ([0,3), [3,9),
 * [9,12)), with the definition again (a new connection gets it), then
 * window 300. */
static void script_resend(srv_t *s, int fd, int conn) {
  (void)conn;
  send_chunk(fd, 200, 0, 3, 0, 1, 1);
  send_heartbeat(fd, 300, 100); /* inside a window: no position */
  send_chunk(fd, 200, 3, 9, 1, 1, 0);
  send_chunk(fd, 200, 9, 12, 2, 0, 0);
  send_whole(fd, 300, 2, 0);
  hold(s, fd);
}

static void check_rows(const got_t *g) {
  static const struct {
    uint64_t scn;
    size_t n;
  } want[3] = {{100, 3}, {200, 12}, {300, 2}};
  size_t k = 0;
  for (size_t i = 0; i < 3; i++)
    for (size_t r = 0; r < want[i].n; r++, k++) {
      ck_assert_uint_lt(k, g->nrows);
      ck_assert_uint_eq(g->row[k].scn, want[i].scn);
      ck_assert_int_eq(g->row[k].id, (int64_t)r);
      char v[48];
      snprintf(v, sizeof(v), "row %llu-%zu", (unsigned long long)want[i].scn,
               r);
      ck_assert_str_eq(g->row[k].v, v);
    }
  ck_assert_uint_eq(g->nrows, 17);
}

/* What one relay delivering windows 100, 200 and 300 whole gives. */
static void reference(got_t *ref) {
  srv_t *r = srv_start(0, script_whole, NULL);
  herald_client_t *c = client_new(r->addr, NULL, NULL);
  ck_assert_int_eq(take_until(c, ref, 300), HERALD_OK);
  herald_client_free(c);
  srv_free(r);
  check_rows(ref);
}

/* The chunks a client was handed: window, row_base, chunk number, last,
 * rows. */
typedef struct {
  uint64_t scn, base;
  uint32_t chunk;
  int last;
  size_t n;
} chunk_want_t;

static void check_chunks(const got_t *g, const chunk_want_t *want, size_t n) {
  ck_assert_uint_eq(g->nchunks, n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_uint_eq(g->chunk[i].scn, want[i].scn);
    ck_assert_uint_eq(g->chunk[i].row_base, want[i].base);
    ck_assert_uint_eq(g->chunk[i].chunk, want[i].chunk);
    ck_assert_int_eq(g->chunk[i].last, want[i].last);
    ck_assert_uint_eq(g->chunk[i].nrows, want[i].n);
    /* the definition once in the client's life */
    ck_assert_uint_eq(g->chunk[i].nschemas, i == 0);
  }
}

START_TEST(failover_mid_window_poll) {
  /* the same windows, whole, from one relay */
  static got_t ref, got;
  reference(&ref);
  ck_assert_uint_eq(lines_of(&ref, 200, "\"last\":true"), 1);
  ck_assert_uint_eq(lines_of(&ref, 200, "\"txn\":{\"index\":11,\"last\":true}"),
                    1);

  srv_t *a = srv_start(0, script_cut, NULL);
  srv_t *b = srv_start(0, script_resend, NULL);
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, NULL);
  errs_t e = {0};
  herald_client_t *c = client_new(relays, &e, NULL);
  ck_assert_int_eq(take_until(c, &got, 300), HERALD_OK);
  ck_assert_str_eq(herald_relay(c), b->addr);
  ck_assert_uint_eq(herald_failovers(c), 1);
  ck_assert_uint_eq(herald_delivered_scn(c), 300);
  ck_assert_int_eq(e.count[-HERALD_ERR_RELAY], 1);
  ck_assert_msg(strstr(e.msg, "closed the connection") != NULL, "%s", e.msg);
  herald_client_free(c);
  srv_free(a);
  srv_stop(b);
  /* B was asked for what follows the last whole window */
  ck_assert_int_eq(srv_sub(b, 0)->mode, HERALD__START_MODE__START_SCN);
  ck_assert_uint_eq(srv_sub(b, 0)->start_scn, 100);
  srv_free(b);

  /* every row once, in order */
  check_rows(&got);
  /* window 200: chunks 0, 1 from A; B's [0,3) was all delivered before
   * (not handed out), [3,9) gives rows 7 and 8 as chunk 2, [9,12) chunk 3 */
  static const chunk_want_t want[] = {{100, 0, 0, 1, 3}, {200, 0, 0, 0, 4},
                                      {200, 4, 1, 0, 3}, {200, 7, 2, 0, 2},
                                      {200, 9, 3, 1, 3}, {300, 0, 0, 1, 2}};
  check_chunks(&got, want, sizeof(want) / sizeof(want[0]));
  /* the same lines as the window delivered whole */
  ck_assert_str_eq(got.json, ref.json);
}
END_TEST

static int g_begin(void *ud, const herald_window_t *w) {
  got_t *g = ud;
  (void)w;
  g->begins++;
  return 0;
}
static int g_schema(void *ud, const herald_schema_t *s) {
  got_t *g = ud;
  (void)s;
  g->schemas++;
  return 0;
}
static int g_change(void *ud, const herald_window_t *w,
                    const herald_change_t *ch) {
  got_t *g = ud;
  ck_assert_uint_lt(g->nrows, 256);
  g->row[g->nrows].scn = herald_window_scn(w);
  g->row[g->nrows].id =
      herald_value_int(herald_change_find(ch, HERALD_IMAGE_KEY, "id"));
  snprintf(
      g->row[g->nrows].v, sizeof(g->row[0].v), "%s",
      herald_value_data(herald_change_find(ch, HERALD_IMAGE_AFTER, "v"), NULL));
  g->nrows++;
  return 0;
}
static int g_end(void *ud, const herald_window_t *w) {
  got_t *g = ud;
  (void)w;
  g->ends++;
  return 0;
}

/* The same through herald_dispatch: one begin and one end per window. */
START_TEST(failover_mid_window_dispatch) {
  srv_t *a = srv_start(0, script_cut, NULL);
  srv_t *b = srv_start(0, script_resend, NULL);
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, NULL);
  herald_client_t *c = client_new(relays, NULL, NULL);
  static got_t got;
  herald_callbacks_t cb = {g_begin, g_schema, g_change, NULL, g_end};
  int64_t end = now_ms() + 10000;
  while (herald_delivered_scn(c) < 300 && now_ms() < end) {
    int rc = herald_dispatch(c, &cb, &got, 1000);
    ck_assert(rc == HERALD_OK || rc == HERALD_TIMED_OUT);
  }
  herald_client_free(c);
  srv_free(a);
  srv_free(b);
  check_rows(&got);
  ck_assert_int_eq(got.begins, 3);
  ck_assert_int_eq(got.ends, 3);
  ck_assert_int_eq(got.schemas, 1);
}
END_TEST

/* Two failovers inside one window: A sends rows [0,4) of window 200 and
 * closes; B sends [0,2) (all delivered before) and [2,6), and closes; C
 * sends the window in one piece. */
static void script_cut_early(srv_t *s, int fd, int conn) {
  (void)conn;
  if (wants(s, 100))
    send_whole(fd, 100, 3, 1);
  send_chunk(fd, 200, 0, 4, 0, 1, 0);
}

static void script_cut_again(srv_t *s, int fd, int conn) {
  (void)s;
  (void)conn;
  send_chunk(fd, 200, 0, 2, 0, 1, 1);
  send_chunk(fd, 200, 2, 6, 1, 1, 0);
}

static void script_one_piece(srv_t *s, int fd, int conn) {
  (void)conn;
  send_chunk(fd, 200, 0, 12, 0, 0, 1);
  send_whole(fd, 300, 2, 0);
  hold(s, fd);
}

START_TEST(failover_twice_in_a_window) {
  static got_t ref, got;
  reference(&ref);

  srv_t *a = srv_start(0, script_cut_early, NULL);
  srv_t *b = srv_start(0, script_cut_again, NULL);
  srv_t *d = srv_start(0, script_one_piece, NULL);
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, d);
  errs_t e = {0};
  herald_client_t *c = client_new(relays, &e, NULL);
  ck_assert_int_eq(take_until(c, &got, 300), HERALD_OK);
  ck_assert_uint_eq(herald_failovers(c), 2);
  ck_assert_int_eq(e.count[-HERALD_ERR_RELAY], 2);
  herald_client_free(c);
  srv_free(a);
  srv_free(b);
  srv_stop(d);
  ck_assert_uint_eq(srv_sub(d, 0)->start_scn, 100);
  srv_free(d);
  check_rows(&got);
  static const chunk_want_t want[] = {{100, 0, 0, 1, 3},
                                      {200, 0, 0, 0, 4},
                                      {200, 4, 1, 0, 2},
                                      {200, 6, 2, 1, 6},
                                      {300, 0, 0, 1, 2}};
  check_chunks(&got, want, sizeof(want) / sizeof(want[0]));
  ck_assert_str_eq(got.json, ref.json);
}
END_TEST

START_TEST(failover_inconsistent) {
  srv_t *a = srv_start(0, script_cut, NULL);
  srv_t *b = srv_start(0, script_window, SCN(250));
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, NULL);
  errs_t e = {0};
  herald_client_t *c = client_new(relays, &e, NULL);
  static got_t got;
  ck_assert_int_eq(take_until(c, &got, 1000), HERALD_ERR_INCONSISTENT);
  ck_assert_uint_eq(got.nchunks, 3); /* 100, and 200's first two chunks */
  ck_assert_msg(strstr(herald_error(c), "SCN 250") &&
                    strstr(herald_error(c), "SCN 200"),
                "%s", herald_error(c));
  check_stopped(c, &e, HERALD_ERR_INCONSISTENT);
  ck_assert_uint_eq(herald_delivered_scn(c), 100);
  herald_client_free(c);
  srv_free(a);
  srv_free(b);
}
END_TEST

/* ------------------------------------------------------- relay errors */

static void script_too_old(srv_t *s, int fd, int conn) {
  (void)conn;
  send_error(fd, HERALD__ERROR_CODE__ERR_SCN_TOO_OLD,
             "SCN 10 is older than the relay's retention",
             (uint64_t)(uintptr_t)s->arg);
}

START_TEST(every_relay_too_old) {
  srv_t *a = srv_start(0, script_too_old, SCN(5000));
  srv_t *b = srv_start(0, script_too_old, SCN(6000));
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, NULL);
  errs_t e = {0};
  herald_client_t *c = client_new(relays, &e, "start", "10", NULL);
  const herald_window_t *w;
  ck_assert_int_eq(next(c, &w, 5000), HERALD_ERR_SCN_TOO_OLD);
  ck_assert_uint_eq(herald_oldest_scn(c), 6000);
  ck_assert_msg(strstr(herald_error(c), "every relay") != NULL, "%s",
                herald_error(c));
  check_stopped(c, &e, HERALD_ERR_SCN_TOO_OLD);
  herald_client_free(c);
  srv_stop(a);
  srv_stop(b);
  ck_assert_int_eq(a->conns, 1);
  ck_assert_int_eq(b->conns, 1);
  srv_free(a);
  srv_free(b);

  /* One relay too old, the other serves: not fatal. */
  a = srv_start(0, script_too_old, SCN(5000));
  b = srv_start(0, script_window, SCN(250));
  relays_of(relays, sizeof(relays), a, b, NULL);
  c = client_new(relays, NULL, "start", "10", NULL);
  ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
  ck_assert_uint_eq(herald_window_scn(w), 250);
  herald_client_free(c);
  srv_free(a);
  srv_free(b);
}
END_TEST

static void script_error(srv_t *s, int fd, int conn) {
  (void)conn;
  send_error(fd, (Herald__ErrorCode)(uintptr_t)s->arg, "no", 0);
}

/* ERR_AUTH and a refused subscription end the client at once: the next
 * relay is not tried. ERR_UNAVAILABLE only moves it on. */
START_TEST(fatal_relay_errors) {
  static const struct {
    Herald__ErrorCode code;
    int status;
  } cases[] = {{HERALD__ERROR_CODE__ERR_AUTH, HERALD_ERR_AUTH},
               {HERALD__ERROR_CODE__ERR_BAD_REQUEST, HERALD_ERR_REFUSED},
               {HERALD__ERROR_CODE__ERR_VERSION, HERALD_ERR_REFUSED},
               {HERALD__ERROR_CODE__ERR_UNAVAILABLE, HERALD_OK},
               {HERALD__ERROR_CODE__ERR_TOO_MANY, HERALD_OK}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    srv_t *a = srv_start(0, script_error, (void *)(uintptr_t)cases[i].code);
    srv_t *b = srv_start(0, script_window, SCN(250));
    char relays[120];
    relays_of(relays, sizeof(relays), a, b, NULL);
    errs_t e = {0};
    herald_client_t *c = client_new(relays, &e, NULL);
    const herald_window_t *w;
    ck_assert_int_eq(next(c, &w, 5000), cases[i].status);
    if (cases[i].status) {
      ck_assert_ptr_nonnull(strstr(herald_error(c), "relay error"));
      check_stopped(c, &e, cases[i].status);
    } else {
      ck_assert_uint_eq(herald_window_scn(w), 250);
      ck_assert_int_eq(e.count[-HERALD_ERR_RELAY], 1);
    }
    herald_client_free(c);
    srv_free(a);
    srv_stop(b);
    ck_assert_int_eq(b->conns, cases[i].status ? 0 : 1);
    srv_free(b);
  }
}
END_TEST

/* Relays whose first word is an Error (busy, not ready) do not end the
 * round: the client goes on to the next, and backs off when none serves,
 * instead of dialing them again and again. */
START_TEST(busy_relays_back_off) {
  srv_t *a = srv_start(0, script_error,
                       (void *)(uintptr_t)HERALD__ERROR_CODE__ERR_UNAVAILABLE);
  srv_t *b = srv_start(0, script_error,
                       (void *)(uintptr_t)HERALD__ERROR_CODE__ERR_TOO_MANY);
  srv_t *d = srv_start(0, script_window, SCN(250));
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, d);
  herald_client_t *c = client_new(relays, NULL, NULL);
  const herald_window_t *w;
  ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
  ck_assert_uint_eq(herald_window_scn(w), 250);
  herald_client_free(c);
  srv_free(d);
  srv_stop(a);
  srv_stop(b);
  ck_assert_int_eq(a->conns, 1);
  ck_assert_int_eq(b->conns, 1);
  srv_free(a);
  srv_free(b);

  /* none serves: rounds of both, backoff_max_ms (100) apart */
  a = srv_start(0, script_error,
                (void *)(uintptr_t)HERALD__ERROR_CODE__ERR_UNAVAILABLE);
  b = srv_start(0, script_error,
                (void *)(uintptr_t)HERALD__ERROR_CODE__ERR_TOO_MANY);
  relays_of(relays, sizeof(relays), a, b, NULL);
  errs_t e = {0};
  c = client_new(relays, &e, NULL);
  ck_assert_int_eq(next(c, &w, 1000), HERALD_TIMED_OUT);
  /* between rounds, or dialing the next one (a loaded machine takes
   * longer to dial than to wait): never subscribed */
  int st = herald_state(c);
  ck_assert_msg(st == HERALD_STATE_WAITING || st == HERALD_STATE_CONNECTING,
                "state %d", st);
  ck_assert_int_eq(e.count[-HERALD_ERR_NO_RELAY], 1);
  ck_assert_ptr_nonnull(strstr(e.msg, "relay error"));
  herald_client_free(c);
  srv_stop(a);
  srv_stop(b);
  /* about 10 rounds in 1 s; not hundreds */
  ck_assert_msg(a->conns >= 3 && a->conns <= 15 && b->conns <= 15,
                "%d and %d connections in 1 s", a->conns, b->conns);
  srv_free(a);
  srv_free(b);
}
END_TEST

/* --------------------------------------------------- stall, no relay */

START_TEST(stall_moves_on) {
  srv_t *a = srv_start(0, script_window, SCN(100));
  srv_t *b = srv_start(0, script_window, SCN(200));
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, NULL);
  errs_t e = {0};
  herald_client_t *c = client_new(relays, &e, "stall_timeout_ms", "300", NULL);
  const herald_window_t *w;
  ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
  ck_assert_uint_eq(herald_window_scn(w), 100);
  int64_t t0 = now_ms();
  ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
  int64_t took = now_ms() - t0;
  ck_assert_uint_eq(herald_window_scn(w), 200);
  ck_assert_msg(took >= 250 && took < 3000, "moved on after %lld ms",
                (long long)took);
  ck_assert_int_eq(e.count[-HERALD_ERR_RELAY], 1);
  ck_assert_msg(strstr(e.msg, "sent nothing, not even a heartbeat, for 300 ms"),
                "%s", e.msg);
  ck_assert_str_eq(herald_relay(c), b->addr);
  ck_assert_uint_eq(herald_failovers(c), 1);
  herald_client_free(c);
  srv_free(a);
  srv_stop(b);
  ck_assert_uint_eq(srv_sub(b, 0)->start_scn, 100);
  srv_free(b);
}
END_TEST

START_TEST(no_relay_then_one) {
  uint16_t port = free_port();
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
  errs_t e = {0};
  herald_client_t *c = client_new(addr, &e, NULL);
  const herald_window_t *w;
  ck_assert_int_eq(next(c, &w, 300), HERALD_TIMED_OUT);
  ck_assert_int_eq(herald_state(c), HERALD_STATE_WAITING);
  ck_assert_ptr_null(herald_relay(c));
  ck_assert_int_eq(e.count[-HERALD_ERR_NO_RELAY], 1); /* said once */
  ck_assert_msg(strstr(e.msg, "Connection refused"), "%s", e.msg);
  srv_t *s = srv_start(port, script_window, SCN(100));
  int64_t t0 = now_ms();
  ck_assert_int_eq(next(c, &w, 5000), HERALD_OK);
  ck_assert_uint_eq(herald_window_scn(w), 100);
  /* within the backoff (backoff_max_ms 100) and the time to connect */
  ck_assert_int_lt(now_ms() - t0, 1500);
  ck_assert_int_eq(herald_state(c), HERALD_STATE_STREAMING);
  ck_assert_int_eq(e.count[-HERALD_ERR_NO_RELAY], 1);
  herald_client_free(c);
  srv_free(s);
}
END_TEST

/* failover=false: the relay's close ends the client; the next relay is
 * not tried. So does a relay that cannot be reached. */
START_TEST(no_failover) {
  srv_t *a = srv_start(0, script_cut, NULL);
  srv_t *b = srv_start(0, script_resend, NULL);
  char relays[120];
  relays_of(relays, sizeof(relays), a, b, NULL);
  errs_t e = {0};
  herald_client_t *c = client_new(relays, &e, "failover", "false", NULL);
  static got_t got;
  ck_assert_int_eq(take_until(c, &got, 300), HERALD_ERR_RELAY);
  ck_assert_uint_eq(got.nchunks, 3);
  ck_assert_ptr_nonnull(strstr(herald_error(c), "closed the connection"));
  ck_assert_int_eq(e.n, 1);
  check_stopped(c, &e, HERALD_ERR_RELAY);
  const herald_window_t *w;
  herald_client_free(c);
  srv_free(a);
  srv_stop(b);
  ck_assert_int_eq(b->conns, 0);
  srv_free(b);

  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%u", free_port());
  c = client_new(addr, NULL, "failover", "false", NULL);
  ck_assert_int_eq(next(c, &w, 2000), HERALD_ERR_NO_RELAY);
  ck_assert_ptr_nonnull(strstr(herald_error(c), "Connection refused"));
  herald_client_free(c);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("libherald");
  TCase *t = tcase_create("api");
  tcase_add_test(t, conf_every_key);
  tcase_add_test(t, client_new_refusals);
  tcase_add_test(t, ack_rules);
  tcase_add_test(t, strerror_every_status);
  suite_add_tcase(s, t);
  t = tcase_create("protocol");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, subscribe_fields);
  tcase_add_test(t, stream_chunks_heartbeats);
  tcase_add_test(t, failover_mid_window_poll);
  tcase_add_test(t, failover_mid_window_dispatch);
  tcase_add_test(t, failover_twice_in_a_window);
  tcase_add_test(t, failover_inconsistent);
  tcase_add_test(t, every_relay_too_old);
  tcase_add_test(t, fatal_relay_errors);
  tcase_add_test(t, busy_relays_back_off);
  tcase_add_test(t, stall_moves_on);
  tcase_add_test(t, no_relay_then_one);
  tcase_add_test(t, no_failover);
  suite_add_tcase(s, t);
  return s;
}

HD_CHECK_MAIN(suite)
