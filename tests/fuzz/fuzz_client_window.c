/*
 * fuzz_client_window.c - libherald's reading of a relay's stream against
 * arbitrary bytes.
 *
 * The input plays the relay: after two bytes of set-up it is the byte
 * stream a client reads from its connection. The client (built from
 * libherald's sources, so the internal hl_client_attach is reachable) is
 * given one end of a socketpair as the relay it just dialed and
 * subscribed to; the stream is written to the other end, then EOF. Every
 * window herald_poll() hands out is walked through every accessor: the
 * window's fields, each change's images and values (by index and by
 * name), its table definition, whether this consumer owns it, each DDL,
 * each schema, the snapshot progress, and herald_window_json() with each
 * flag set; then the window is acked. With failover on, the stream is cut
 * in two at the place the second byte says and the second part is served
 * as the next relay (the resume of a window cut off by a failover).
 *
 * Byte 0: bit 0 failover, bit 1 snapshot on, bit 2 a partition filter
 * (hash, 4, partitions 0 and 2), bit 3 a partition filter by mod of "id"
 * instead, bit 4 tables "shop.*", bit 5 start earliest (else after SCN 0),
 * bit 6 a projection. Byte 1: where the stream is cut (of 256).
 * HD_FUZZ_VERBOSE=1 prints each window and why each relay went.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herald/herald.h"
#include "herald_int.h"

/* A relay address that refuses: a bound socket that never listens, so
 * the dial after a failover fails at once instead of reaching anyone. */
static char refused[64];

static void die(const char *what) {
  fprintf(stderr, "fuzz_client_window: %s: %s\n", what, strerror(errno));
  abort();
}

static void reserve_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0)
    die("reserve a port");
  snprintf(refused, sizeof(refused), "127.0.0.1:%u", ntohs(a.sin_port));
  /* s stays open (and bound, not listening) for the whole run */
}

static void set(herald_conf_t *k, const char *key, const char *val) {
  char err[256];
  if (herald_conf_set(k, key, val, err, sizeof(err)) != HERALD_OK) {
    fprintf(stderr, "fuzz_client_window: %s\n", err);
    abort();
  }
}

/* The clients' configurations, one per set-up byte (made once). */
static herald_conf_t *confs[128];

static herald_conf_t *conf_for(unsigned b) {
  if (confs[b])
    return confs[b];
  herald_conf_t *k = herald_conf_new();
  set(k, "relays", refused);
  set(k, "failover", b & 1 ? "true" : "false");
  set(k, "connect_timeout_ms", "1000");
  if (b & 2)
    set(k, "snapshot", "on");
  if (b & 4) {
    set(k, "partition.count", "4");
    set(k, "partition.list", "0,2");
  } else if (b & 8) {
    set(k, "partition.count", "3");
    set(k, "partition.function", "mod");
    set(k, "partition.key_column", "id");
  }
  if (b & 16)
    set(k, "tables", "shop.*,crm.people");
  set(k, "start", b & 32 ? "earliest" : "0");
  if (b & 64)
    set(k, "projection", "shop.*:id,name");
  return confs[b] = k;
}

static volatile size_t sink; /* what the walk read, so it is not dropped */

static void walk_value(const herald_value_t *v) {
  if (v == NULL)
    return;
  size_t len = 0;
  const char *d = herald_value_data(v, &len);
  sink += (size_t)herald_value_type(v) + (size_t)herald_value_int(v) +
          (size_t)herald_value_uint(v) + (size_t)(herald_value_double(v) != 0);
  if (d && len)
    sink += (uint8_t)d[0] + (uint8_t)d[len - 1];
}

static void walk_str(const char *s) {
  if (s)
    sink += strlen(s);
}

static void walk(herald_client_t *c, const herald_window_t *w) {
  sink += herald_window_scn(w) + herald_window_ts_ms(w) +
          herald_window_server_id(w) + herald_window_pos(w) +
          herald_window_chunk(w) + (size_t)herald_window_last(w) +
          herald_window_row_base(w);
  walk_str(herald_window_gtid(w));
  walk_str(herald_window_file(w));
  herald_snapshot_info_t si;
  if (herald_window_snapshot(w, &si)) {
    walk_str(si.table);
    sink += si.rows_read + si.table_rows + si.tables_done + si.read_scn;
  }
  for (size_t i = 0; i < herald_window_changes(w); i++) {
    const herald_change_t *ch = herald_window_change(w, i);
    sink += (size_t)herald_change_op(ch) + herald_change_pos(ch) +
            herald_change_schema_version(ch);
    walk_str(herald_change_db(ch));
    walk_str(herald_change_table(ch));
    for (int img = HERALD_IMAGE_KEY; img <= HERALD_IMAGE_OLD_KEY; img++) {
      size_t n = herald_change_columns(ch, img);
      for (size_t j = 0; j <= n; j++) { /* one past the end: NULL */
        const char *name = NULL;
        walk_value(herald_change_value(ch, img, j, &name));
        walk_str(name);
      }
      walk_value(herald_change_find(ch, img, "id"));
      walk_value(herald_change_find(ch, img, "name"));
      walk_value(herald_change_find(ch, img, ""));
      sink += (size_t)herald_change_owned(c, ch, img);
    }
    const herald_schema_t *s = herald_change_schema(c, ch);
    if (s)
      sink += herald_schema_columns(s);
  }
  for (size_t i = 0; i < herald_window_ddls(w); i++) {
    const herald_ddl_t *d = herald_window_ddl(w, i);
    walk_str(herald_ddl_db(d));
    walk_str(herald_ddl_statement(d));
    sink += herald_ddl_pos(d) + herald_ddl_row_index(d);
  }
  for (size_t i = 0; i < herald_window_schemas(w); i++) {
    const herald_schema_t *s = herald_window_schema(w, i);
    walk_str(herald_schema_db(s));
    walk_str(herald_schema_table(s));
    sink += herald_schema_version(s);
    for (size_t j = 0; j < herald_schema_columns(s); j++) {
      const herald_column_t *col = herald_schema_column(s, j);
      walk_str(col->name);
      walk_str(col->sql_type);
      walk_str(col->base_type);
      walk_str(col->charset);
      for (size_t l = 0; l < col->nlabels; l++)
        walk_str(col->labels[l]);
    }
  }
  for (unsigned flags = 0; flags < 4; flags++) {
    const char *out = NULL;
    size_t len = 0;
    if (herald_window_json(c, w, flags, &out, &len) == HERALD_OK && len) {
      if (out == NULL || memchr(out, '\0', len) != NULL)
        abort(); /* lines of JSON text */
      sink += (uint8_t)out[len - 1];
    }
  }
  walk_str(herald_snapshot_position(c));
  if (herald_window_last(w) &&
      herald_ack(c, herald_delivered_scn(c)) != HERALD_OK)
    abort(); /* what was delivered can be acked */
}

/* Serves part as the relay's stream on a new socketpair. */
static int serve(herald_client_t *c, const uint8_t *p, size_t n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    die("socketpair");
  int big = 4 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(sv[1], p + off, n - off);
    if (w <= 0)
      die("write the stream");
    off += (size_t)w;
  }
  close(sv[1]); /* then EOF */
  if (hl_client_attach(c, sv[0]) != 0) {
    close(sv[0]);
    return -1;
  }
  return 0;
}

/* HD_FUZZ_VERBOSE: say what each input was read as (to check seeds). */
static int verbose;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (refused[0] == '\0') {
    reserve_port();
    verbose = getenv("HD_FUZZ_VERBOSE") != NULL;
  }
  if (size < 2 || size > (1u << 20))
    return 0;
  unsigned setup = data[0] & 127;
  size_t cut = (data[0] & 1) ? (size - 2) * data[1] / 256 : size - 2;
  data += 2;
  size -= 2;
  char err[256];
  herald_client_t *c = herald_client_new(conf_for(setup), err, sizeof(err));
  if (c == NULL) {
    fprintf(stderr, "fuzz_client_window: %s\n", err);
    abort();
  }
  const uint8_t *part[2] = {data, data + cut};
  size_t plen[2] = {cut, size - cut};
  for (int k = 0; k < 2; k++) {
    if (k == 1 && plen[1] == 0)
      break;
    if (serve(c, part[k], plen[k]) != 0)
      break; /* stopped: no relay is dialed any more */
    /* Poll until this relay is gone (EOF at the latest) or the client
     * stopped: every window handed out is walked. */
    for (int polls = 0; herald_relay(c) != NULL; polls++) {
      const herald_window_t *w = NULL;
      int rc = herald_poll(c, 0, &w);
      if (rc == HERALD_OK) {
        if (verbose)
          fprintf(stderr, "window scn=%llu chunk=%u changes=%zu ddl=%zu\n",
                  (unsigned long long)herald_window_scn(w),
                  herald_window_chunk(w), herald_window_changes(w),
                  herald_window_ddls(w));
        walk(c, w);
      } else if (rc != HERALD_TIMED_OUT)
        break; /* fatal: the client says why */
      if (polls > 10000000)
        abort(); /* a client that never finishes a finite stream */
    }
    if (verbose)
      fprintf(stderr, "setup %u relay %d gone: state=%d error=%s\n", setup, k,
              herald_state(c), herald_error(c));
    if (herald_state(c) == HERALD_STATE_FAILED && herald_error(c)[0] == '\0')
      abort(); /* a stop is always explained */
    if (!(setup & 1)) {
      /* Without failover, losing the relay stops the client: it says so
       * and dials no one. */
      const herald_window_t *w;
      if (herald_state(c) != HERALD_STATE_FAILED || herald_relay(c) != NULL)
        abort();
      int rc = herald_poll(c, 0, &w);
      if (rc == HERALD_OK || rc == HERALD_TIMED_OUT)
        abort();
      break;
    }
  }
  herald_client_free(c);
  return 0;
}
