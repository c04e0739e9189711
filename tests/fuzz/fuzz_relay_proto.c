/*
 * fuzz_relay_proto.c - the relay's consumer protocol against arbitrary
 * bytes from a consumer.
 *
 * One relay server (its own loop, an empty log store and a schema
 * registry in a temporary directory, a ring of a few windows with rows of
 * two tables, schema versions and a DDL, a shared token) lives for the
 * whole run. Each input is one consumer connection: the server adopts one
 * end of a socketpair (relay_server_adopt, the path an accepted
 * connection takes), the input is written to the other end in chunks
 * whose size comes from its first byte, then the end is shut down. The
 * loop runs until the server has freed the connection, whatever it was
 * sent: the Subscribe and the frames after it go through the relay's own
 * read callback, Subscribe validation, filter set-up and the batches it
 * streams (drained and dropped here).
 *
 * With HD_FUZZ_CAPTURE=FILE the bytes the relay sent are written to FILE:
 * that is how the client target's seeds are made (a stream from the
 * relay's own encoder).
 */
/* nftw() */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "hb_int.h"
#include "hd_config.h"
#include "hd_confdefs.h"
#include "hd_log.h"
#include "relay_ring.h"
#include "relay_schema.h"
#include "relay_server.h"
#include "relay_store.h"
#include "relay_window.h"

#define TOKEN "fuzz-token"

static uv_loop_t loop;
static hd_relay_conf_t conf;
static relay_ring_t ring;
static relay_store_t *store;
static relay_schemas_t *schemas;
static relay_metrics_t metrics;
static relay_server_t *srv;

static void die(const char *what, const char *err) {
  fprintf(stderr, "fuzz_relay_proto: %s: %s\n", what, err);
  abort();
}

/* A window of rows of two tables (a key move among them) and a DDL. */
static void add_windows(relay_wb_t *wb) {
  static const hb_column_t cols[2] = {
      {.name = "id", .type = HB_T_LONGLONG},
      {.name = "name", .type = HB_T_VARCHAR, .nullable = 1},
  };
  static const uint32_t pk[1] = {0};
  /* the decoder's table (hb_int.h): the schema registry describes its
   * columns from the decoder's side of it */
  static hb__col_t x[2];
  static hb__table_t full[2] = {
      {.pub = {.table_id = 1,
               .db = "shop",
               .name = "orders",
               .ncols = 2,
               .cols = cols,
               .npk = 1,
               .pk = pk,
               .names_known = 1,
               .schema_version = 7},
       .x = x},
      {.pub = {.table_id = 2,
               .db = "crm",
               .name = "people",
               .ncols = 2,
               .cols = cols,
               .npk = 1,
               .pk = pk,
               .names_known = 1,
               .schema_version = 8},
       .x = x},
  };
  const hb_table_t *tabs[2] = {&full[0].pub, &full[1].pub};
  for (uint64_t k = 0; k < 4; k++) {
    hb_value_t before[2], after[2];
    hb_row_t rows[3];
    after[0] = (hb_value_t){.kind = HB_V_INT, .n.i = (int64_t)(k * 10 + 1)};
    after[1] = (hb_value_t){.kind = HB_V_STRING, .len = 5, .s = "alice"};
    before[0] = (hb_value_t){.kind = HB_V_INT, .n.i = (int64_t)(k * 10 + 7)};
    before[1] = (hb_value_t){.kind = HB_V_NULL};
    rows[0] = (hb_row_t){'c', tabs[k & 1], 100, NULL, after};
    rows[1] = (hb_row_t){'u', tabs[0], 120, before, after}; /* key moved */
    rows[2] = (hb_row_t){'d', tabs[1], 140, before, NULL};
    hb_ddl_t ddl = {.db = "shop",
                    .statement = "ALTER TABLE orders ADD c INT",
                    .len = strlen("ALTER TABLE orders ADD c INT"),
                    .pos = 150,
                    .row_index = 1};
    hb_window_t w = {0};
    w.file_index = 3;
    w.end_pos = (uint32_t)(1000 + k * 100);
    w.scn = (UINT64_C(3) << 32) | w.end_pos;
    w.file = "binlog.000003";
    w.begin_pos = w.end_pos - 90;
    w.gtid = k == 2 ? NULL : "0-1-42";
    w.ts_ms = 1700000000000 + k;
    w.server_id = 1;
    w.nrows = 3;
    w.rows = rows;
    relay_win_t *rw = relay_win_build(wb, &w, &ddl, k == 1 ? 1 : 0);
    if (rw == NULL || relay_wb_failed(wb))
      die("relay_win_build", "a window could not be built");
    relay_ring_push(&ring, rw);
  }
}

static char dir[] = "/tmp/fuzz_relay_proto.XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* The store and the schemas go with the process (libFuzzer ends with
 * exit()). */
static void rm_dir(void) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void) {
  if (mkdtemp(dir) == NULL)
    die("mkdtemp", strerror(errno));
  atexit(rm_dir);
  char yaml[1024], err[512];
  snprintf(
      yaml, sizeof(yaml),
      "cluster: fuzz\n"
      "zookeeper:\n  hosts: [127.0.0.1:1]\n"
      "relay:\n  id: fuzz\n  listen: 127.0.0.1:1\n"
      "  http: 127.0.0.1:2\n  data_dir: %s\n"
      "source:\n  name: fuzz\n  host: 127.0.0.1\n  user: u\n  password: p\n"
      "  server_id: 9\n",
      dir);
  if (hd_config_load_string("fuzz.yaml", yaml, strlen(yaml), &hd_relay_schema,
                            &conf, err, sizeof(err)) != 0)
    die("config", err);
  /* any free port: the consumers come through relay_server_adopt */
  conf.relay.listen.port = 0;
  hd_log_level = HD_LL_ERROR + 1; /* a malformed frame is logged: quiet */
  relay_store_opts_t so;
  relay_store_opts_from_conf(&conf, &so);
  if (relay_store_open(&so, &store, err, sizeof(err)) != 0)
    die("relay_store_open", err);
  schemas = relay_schemas_open(conf.relay.data_dir, err, sizeof(err));
  if (schemas == NULL)
    die("relay_schemas_open", err);
  relay_ring_init(&ring, 64u << 20, 0);
  relay_wb_t *wb = relay_wb_new();
  relay_wb_set_schemas(wb, schemas);
  add_windows(wb);
  relay_wb_free(wb);
  uv_loop_init(&loop);
  relay_server_opts_t o = {.loop = &loop,
                           .conf = &conf,
                           .ring = &ring,
                           .store = store,
                           .m = &metrics,
                           .token = TOKEN,
                           .schemas = schemas,
                           .snap = NULL};
  if (relay_server_start(&o, &srv, err, sizeof(err)) != 0)
    die("relay_server_start", err);
}

static FILE *capture;

/* What the relay sent: read and dropped (or captured). */
static void drain(int fd) {
  uint8_t buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    if (capture)
      fwrite(buf, 1, (size_t)n, capture);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (srv == NULL) {
    setup();
    const char *cap = getenv("HD_FUZZ_CAPTURE");
    if (cap && (capture = fopen(cap, "wb")) == NULL)
      die(cap, strerror(errno));
  }
  if (size < 1)
    return 0;
  /* 0: all at once; else 1, 8, 27, ... 512 bytes per write: split
   * headers and payloads, without a loop turn per byte for most inputs */
  size_t k = (size_t)data[0] % 9, chunk = k * k * k;
  data++;
  size--;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    die("socketpair", strerror(errno));
  /* Room for the whole input and what the relay answers while it waits. */
  int big = 4 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  fcntl(sv[1], F_SETFL, O_NONBLOCK);
  size_t base = relay_server_handles(srv);
  if (relay_server_adopt(srv, sv[0], "fuzz") != 0)
    die("relay_server_adopt", "failed");
  size_t off = 0;
  do {
    size_t n = chunk == 0 || chunk > size - off ? size - off : chunk;
    while (n > 0) {
      ssize_t w = write(sv[1], data + off, n);
      if (w < 0) {
        if (errno != EAGAIN)
          break; /* the relay closed: the rest is not read */
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1]);
        continue;
      }
      off += (size_t)w;
      n -= (size_t)w;
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    drain(sv[1]);
  } while (off < size && relay_server_handles(srv) > base);
  shutdown(sv[1], SHUT_WR);
  /* The relay closes the connection on EOF at the latest. */
  for (int i = 0; relay_server_handles(srv) > base; i++) {
    if (i > 1000000)
      die("connection", "not closed after EOF");
    uv_run(&loop, UV_RUN_NOWAIT);
    drain(sv[1]);
  }
  if (capture)
    fflush(capture);
  close(sv[1]);
  return 0;
}
