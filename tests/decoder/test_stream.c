/*
 * test_stream.c - the decoder on whole binlogs and event streams: corrupt
 * and truncated input (truncation at every offset, every single-bit flip
 * of CRC32-protected files, and byte changes behind recomputed checksums
 * so that the parsers themselves see bad data), checksum errors, SCN
 * limits, INCIDENT and unknown events, callbacks (schema provider, table
 * filter, stop), resynchronisation and the replication-stream start.
 *
 * Inputs come from tests/decoder/data (HB_DATA, in the repository), from
 * the binlog fixtures beside it, shared/fixtures/binlog (HB_FIXTURES), and
 * from synthetic event streams behind a format description kept here
 * (mysql8_fde.h).
 * The tests are two Check cases so that a clone without the fixtures runs
 * the first and ctest reports the second as skipped: "data" reads only
 * HB_DATA, "fixtures" needs HB_FIXTURES. `test_decoder_stream CASE` runs
 * one case, without an argument both. Inputs are exact-size heap copies so
 * that ASan catches any read past the end.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "hb.h"
#include "hb_file.h"
#include "hb_json.h"
#include "hd_log.h"
#include "mysql8_fde.h"

/* Positions the exhaustive checks visit: every one, or every HB_STRIDE-th
 * (sanitizer builds, where each decode is many times slower). */
#ifndef HB_STRIDE
#define HB_STRIDE 1
#endif

/* ---- helpers ---- */

typedef struct {
  uint8_t *p;
  size_t n;
} blob_t;

static blob_t load(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  blob_t b = {NULL, 0};
  size_t cap = 0, r;
  do {
    if (b.n == cap) {
      cap = cap ? cap * 2 : 65536;
      b.p = realloc(b.p, cap);
    }
    r = fread(b.p + b.n, 1, cap - b.n, f);
    b.n += r;
  } while (r > 0);
  fclose(f);
  return b;
}

typedef struct {
  hb_buf_t out;
  uint64_t begin[16]; /* begin_pos of the first windows */
  int windows, ddls, incidents, schema_calls, stop_after;
  uint16_t incident_code;
} ctx_t;

static int on_window(void *ud, const hb_window_t *w) {
  ctx_t *c = ud;
  hb_render_window_ddl(w, NULL, NULL, &c->out);
  c->ddls += (int)w->nddl;
  for (size_t i = 0; i < w->nddl; i++)
    ck_assert_uint_eq(w->ddl[i].scn, w->scn);
  if (c->windows < 16)
    c->begin[c->windows] = w->begin_pos;
  c->windows++;
  if (c->stop_after && c->windows == c->stop_after)
    return -77;
  return 0;
}

static int on_ddl(void *ud, const hb_ddl_t *d) {
  ctx_t *c = ud;
  hb_render_ddl(d, &c->out);
  c->ddls++;
  return 0;
}

static int on_incident(void *ud, const hb_incident_t *inc) {
  ctx_t *c = ud;
  c->incidents++;
  c->incident_code = inc->code;
  return 0;
}

static hb_config_t config(ctx_t *c) {
  hb_config_t cfg = {.on_window = on_window, .on_ddl = on_ddl, .ud = c};
  return cfg;
}

/* Decode bytes as a binlog named name; returns the result code and, in
 * *out (owned by the caller), what was rendered, and the message. */
static int decode(const hb_config_t *cfg, const char *name, const uint8_t *p,
                  size_t n, char *msg, size_t msglen) {
  hb_decoder_t *d = hb_decoder_new(cfg);
  uint8_t *copy = malloc(n ? n : 1);
  memcpy(copy, p, n);
  int r = hb_read_buffer(d, name, copy, n, NULL);
  if (msg)
    snprintf(msg, msglen, "%s", hb_decoder_errmsg(d));
  free(copy);
  hb_decoder_free(d);
  return r;
}

/* Event boundaries of a well-formed binlog. */
static size_t boundaries(const blob_t *b, size_t *at, size_t max) {
  size_t k = 0, off = 4;
  while (off + 19 <= b->n && k < max) {
    at[k++] = off;
    uint32_t sz = (uint32_t)b->p[off + 9] | (uint32_t)b->p[off + 10] << 8 |
                  (uint32_t)b->p[off + 11] << 16 |
                  (uint32_t)b->p[off + 12] << 24;
    off += sz;
  }
  return k;
}

/* Recompute the CRC32 of every event (for files with checksums), so that
 * changed bytes reach the event parsers instead of failing the check. */
static void fix_crcs(uint8_t *p, size_t n) {
  size_t off = 4;
  while (off + 19 <= n) {
    uint32_t sz = (uint32_t)p[off + 9] | (uint32_t)p[off + 10] << 8 |
                  (uint32_t)p[off + 11] << 16 | (uint32_t)p[off + 12] << 24;
    if (sz < 23 || sz > n - off)
      return;
    uint8_t flags = p[off + 17];
    if (off == 4)
      p[off + 17] &= (uint8_t)~1; /* the FDE's CRC excludes the in-use bit */
    uLong crc = crc32(0L, p + off, (uInt)(sz - 4));
    p[off + 17] = flags;
    p[off + sz - 4] = (uint8_t)crc;
    p[off + sz - 3] = (uint8_t)(crc >> 8);
    p[off + sz - 2] = (uint8_t)(crc >> 16);
    p[off + sz - 1] = (uint8_t)(crc >> 24);
    off += sz;
  }
}

/* ---- truncation and corruption ---- */

static void check_truncation(const char *dir, const char *name) {
  blob_t b = load(dir, name);
  ctx_t full = {0};
  hb_config_t cfg = config(&full);
  ck_assert_int_eq(decode(&cfg, name, b.p, b.n, NULL, 0), 0);
  size_t at[4096];
  size_t nb = boundaries(&b, at, 4096);
  for (size_t cut = 0; cut <= b.n; cut += cut < 8 ? 1 : HB_STRIDE) {
    ctx_t c = {0};
    hb_config_t cc = config(&c);
    char msg[600];
    int r = decode(&cc, name, b.p, cut, msg, sizeof(msg));
    int boundary = cut == b.n;
    for (size_t i = 0; i < nb; i++)
      boundary |= at[i] == cut;
    if (cut < 4) {
      ck_assert_int_eq(r, HB_ENOT_BINLOG);
    } else if (!boundary) {
      ck_assert_msg(r == HB_ETRUNCATED, "cut %zu: %d %s", cut, r, msg);
    } else {
      ck_assert_msg(r == 0 || r == HB_EINCOMPLETE, "cut %zu: %d %s", cut, r,
                    msg);
    }
    if (r != 0) {
      /* "NAME:OFFSET: what is wrong" */
      ck_assert_msg(strncmp(msg, name, strlen(name)) == 0 &&
                        msg[strlen(name)] == ':',
                    "cut %zu: message '%s'", cut, msg);
    }
    /* complete transactions only: what was printed is a prefix */
    ck_assert_msg(
        c.out.len <= full.out.len &&
            (c.out.len == 0 || memcmp(c.out.p, full.out.p, c.out.len) == 0) &&
            (c.out.len == 0 || c.out.p[c.out.len - 1] == '\n'),
        "cut %zu: output is not a prefix", cut);
    hb_buf_free(&c.out);
  }
  hb_buf_free(&full.out);
  free(b.p);
}

START_TEST(truncated_everywhere) {
  check_truncation(HB_FIXTURES, "mysql-8.0.26_bit.000001");
  check_truncation(HB_FIXTURES, "mysql-8.0.32_zstd-payload_insert.000001");
  check_truncation(HB_FIXTURES,
                   "mariadb-10.5.15_rows-annotate-fullmeta.000001");
}
END_TEST

START_TEST(truncated_everywhere_data) {
  check_truncation(HB_DATA, "mariadb-10.11_compressed.000003");
}
END_TEST

/* Every single-bit change of a CRC32 file is detected, except the FDE's
 * in-use flag, which its checksum deliberately leaves out. */
static void check_bitflips(const char *dir, const char *name) {
  blob_t b = load(dir, name);
  uint8_t *p = malloc(b.n);
  for (size_t i = 0; i < b.n; i += HB_STRIDE) {
    for (int bit = 0; bit < 8; bit++) {
      memcpy(p, b.p, b.n);
      p[i] ^= (uint8_t)(1u << bit);
      ctx_t c = {0};
      hb_config_t cfg = config(&c);
      char msg[600];
      int r = decode(&cfg, name, p, b.n, msg, sizeof(msg));
      if (i == 4 + 17 && bit == 0)
        ck_assert_int_eq(r, 0);
      else
        ck_assert_msg(r < 0, "byte %zu bit %d went unnoticed", i, bit);
      hb_buf_free(&c.out);
    }
  }
  /* a wrong checksum names the file, the event's offset and both CRCs */
  memcpy(p, b.p, b.n);
  p[b.n - 1] ^= 0x55;
  char msg[600];
  ck_assert_int_eq(decode(NULL, name, p, b.n, msg, sizeof(msg)), HB_ECHECKSUM);
  ck_assert_msg(strstr(msg, "checksum mismatch") && strstr(msg, "stored 0x") &&
                    strstr(msg, "computed 0x") &&
                    strncmp(msg, name, strlen(name)) == 0,
                "%s", msg);
  free(p);
  free(b.p);
}

START_TEST(bitflips_detected) {
  check_bitflips(HB_FIXTURES, "mysql-8.0.26_bit.000001");
  check_bitflips(HB_FIXTURES, "mariadb-10.5.15_rows-annotate-fullmeta.000001");
}
END_TEST

/* Changed bytes behind valid checksums: any result but a crash (ASan and
 * UBSan watch), and an error always comes with a message. */
static void check_mutations(const char *dir, const char *name, size_t step) {
  static const uint8_t xors[] = {0x01, 0x80, 0xff, 0x7f};
  blob_t b = load(dir, name);
  uint8_t *p = malloc(b.n);
  int errors = 0;
  for (size_t i = 4; i < b.n; i += step * HB_STRIDE) {
    for (size_t k = 0; k < sizeof(xors); k++) {
      memcpy(p, b.p, b.n);
      p[i] ^= xors[k];
      fix_crcs(p, b.n);
      ctx_t c = {0};
      hb_config_t cfg = config(&c);
      cfg.on_incident = on_incident;
      char msg[600];
      int r = decode(&cfg, name, p, b.n, msg, sizeof(msg));
      if (r < 0) {
        errors++;
        ck_assert_msg(msg[0] != '\0', "byte %zu: error %d without message", i,
                      r);
        /* a decoder error code, not a stray -1 or errno */
        ck_assert_msg(HD_ERR_IN(r, BINLOG), "byte %zu: error %d", i, r);
      }
      hb_buf_free(&c.out);
    }
  }
  /* the test would be vacuous if nothing ever failed */
  ck_assert_int_gt(errors, 0);
  free(p);
  free(b.p);
}

START_TEST(mutations_survived) {
  check_mutations(HB_FIXTURES, "mysql-8.0.26_bit.000001", 1);
  check_mutations(HB_FIXTURES, "mysql-8.0.28_char-varchar-enum-set-text.000001",
                  1);
  check_mutations(HB_FIXTURES, "mysql-8.0.22_json_partial-update.000001", 1);
  check_mutations(HB_FIXTURES, "mysql-8.0.28_zstd-payload_update.bin", 1);
  check_mutations(HB_FIXTURES, "mysql-8.0.40_minimal-row-metadata.000001", 1);
  check_mutations(HB_FIXTURES, "mariadb-11.8.5_gtid-ddl.000010", 1);
  check_mutations(HB_FIXTURES, "mysql-5.7.20_checksum-none_rows.bin", 29);
}
END_TEST

START_TEST(mutations_survived_data) {
  check_mutations(HB_DATA, "mariadb-10.11_compressed.000003", 1);
  check_mutations(HB_DATA, "mariadb-10.11_minimal-meta.000006", 1);
  check_mutations(HB_DATA, "mariadb-10.11_types-fullmeta.000001", 11);
}
END_TEST

/* ---- SCN range, callbacks ---- */

START_TEST(scn_range) {
  blob_t b = load(HB_FIXTURES, "mysql-8.0.26_bit.000001");
  char msg[600];
  ctx_t c = {0};
  hb_config_t cfg = config(&c);
  int r = decode(&cfg, "bin.4294967296", b.p, b.n, msg, sizeof(msg));
  ck_assert_int_eq(r, HB_ESCN_RANGE);
  ck_assert_msg(strstr(msg, "file index 4294967296 does not fit 32 bits"), "%s",
                msg);
  /* the largest index that fits */
  r = decode(&cfg, "bin.4294967295", b.p, b.n, msg, sizeof(msg));
  ck_assert_int_eq(r, 0);
  ck_assert_ptr_nonnull(strstr(c.out.p, "\"scn\":18446744069414585321"));
  hb_buf_free(&c.out);
  free(b.p);
}
END_TEST

static int schema_cb(void *ud, const char *db, const char *table,
                     uint32_t ncols, hb_schema_col_t *cols, uint32_t *pk,
                     uint32_t *npk) {
  ctx_t *c = ud;
  static const char *const names[] = {"id", "name", "parent", "owner"};
  c->schema_calls++;
  if (strcmp(db, "simu_file_dev") != 0 || strcmp(table, "folder") != 0)
    return 1;
  for (uint32_t i = 0; i < ncols && i < 4; i++) {
    cols[i].name = names[i];
    cols[i].is_unsigned = i == 0;
  }
  pk[0] = 0;
  *npk = 1;
  return 0;
}

static int filter_cb(void *ud, const char *db, const char *table) {
  (void)ud;
  (void)db;
  return strcmp(table, "folder") == 0;
}

START_TEST(schema_and_filter) {
  blob_t b = load(HB_FIXTURES, "mysql-5.7.21_crc32_rows.bin");
  ctx_t c = {0};
  hb_config_t cfg = config(&c);
  cfg.schema = schema_cb;
  cfg.table_filter = filter_cb;
  ck_assert_int_eq(decode(&cfg, "x.bin", b.p, b.n, NULL, 0), 0);
  hb_buf_putc(&c.out, '\0');
  /* names and the key from the schema; the rest stays positional */
  ck_assert_ptr_nonnull(strstr(
      c.out.p, "\"key\":{\"id\":12300113},\"before\":null,\"after\":{\"id\":"
               "12300113,\"name\":\"test2\",\"parent\":\"/\",\"owner\":116103,"
               "\"@5\":"));
  ck_assert_ptr_null(strstr(c.out.p, "\"table\":\"file\""));
  /* asked once per table map change, and only for tables decoded */
  int calls = c.schema_calls;
  ck_assert_int_gt(calls, 0);
  ck_assert_int_lt(calls, 10);
  hb_buf_free(&c.out);
  free(b.p);
}
END_TEST

static int failing_schema(void *ud, const char *db, const char *table,
                          uint32_t ncols, hb_schema_col_t *cols, uint32_t *pk,
                          uint32_t *npk) {
  (void)ud, (void)db, (void)table, (void)ncols, (void)cols, (void)pk;
  (void)npk;
  return -5;
}

START_TEST(schema_failure_and_stop) {
  blob_t b = load(HB_FIXTURES, "mysql-5.7.21_crc32_rows.bin");
  ctx_t c = {0};
  hb_config_t cfg = config(&c);
  cfg.schema = failing_schema;
  char msg[600];
  ck_assert_int_eq(decode(&cfg, "x.bin", b.p, b.n, msg, sizeof(msg)),
                   HB_ESCHEMA);
  ck_assert_msg(strstr(msg, "schema provider failed for table "), "%s", msg);
  hb_buf_free(&c.out);
  /* a window callback that says stop */
  ctx_t c2 = {.stop_after = 3};
  hb_config_t cfg2 = config(&c2);
  ck_assert_int_eq(decode(&cfg2, "x.bin", b.p, b.n, msg, sizeof(msg)), -77);
  ck_assert_int_eq(c2.windows, 3);
  hb_buf_free(&c2.out);
  free(b.p);
}
END_TEST

/* ---- synthetic event streams ---- */

/* An event: header + body + CRC32. */
static size_t mkevent(uint8_t *o, uint8_t type, uint16_t flags,
                      const void *body, size_t blen) {
  uint32_t size = (uint32_t)(19 + blen + 4);
  memset(o, 0, 19);
  o[0] = 0x10; /* timestamp */
  o[4] = type;
  o[5] = 7; /* server id */
  o[9] = (uint8_t)size;
  o[10] = (uint8_t)(size >> 8);
  o[17] = (uint8_t)flags;
  o[18] = (uint8_t)(flags >> 8);
  memcpy(o + 19, body, blen);
  uLong crc = crc32(0L, o, (uInt)(19 + blen));
  for (int i = 0; i < 4; i++)
    o[19 + blen + i] = (uint8_t)(crc >> (8 * i));
  return size;
}

/* Magic + the FDE of a MySQL 8.0.26 binlog (CRC32), then the events. */
static blob_t stream(const uint8_t *events, size_t n) {
  blob_t s;
  s.n = sizeof(mysql8_fde) + n;
  s.p = malloc(s.n);
  memcpy(s.p, mysql8_fde, sizeof(mysql8_fde));
  memcpy(s.p + sizeof(mysql8_fde), events, n);
  return s;
}

START_TEST(incident_events) {
  uint8_t ev[256];
  uint8_t body[] = {1,   0,   11,  'l', 'o', 's', 't',
                    ' ', 'e', 'v', 'e', 'n', 't', 's'};
  size_t n = mkevent(ev, 26, 0, body, sizeof(body));
  blob_t s = stream(ev, n);
  char msg[600];
  /* without a callback: an error, as for a replica */
  ck_assert_int_eq(decode(NULL, "b.000001", s.p, s.n, msg, sizeof(msg)),
                   HB_EINCIDENT);
  ck_assert_msg(strstr(msg, "INCIDENT event 1 (lost events)"), "%s", msg);
  /* with one: reported and decoding goes on */
  ctx_t c = {0};
  hb_config_t cfg = config(&c);
  cfg.on_incident = on_incident;
  ck_assert_int_eq(decode(&cfg, "b.000001", s.p, s.n, NULL, 0), 0);
  ck_assert_int_eq(c.incidents, 1);
  ck_assert_int_eq(c.incident_code, 1);
  free(s.p);
}
END_TEST

START_TEST(unknown_and_unsupported_events) {
  uint8_t ev[256];
  char msg[600];
  /* unknown type with the ignorable flag: skipped */
  size_t n = mkevent(ev, 99, 0x80, "xyz", 3);
  blob_t s = stream(ev, n);
  ck_assert_int_eq(decode(NULL, "b.000001", s.p, s.n, msg, sizeof(msg)), 0);
  free(s.p);
  /* without it: an error naming the type */
  n = mkevent(ev, 99, 0, "xyz", 3);
  s = stream(ev, n);
  ck_assert_int_eq(decode(NULL, "b.000001", s.p, s.n, msg, sizeof(msg)),
                   HB_EUNSUPPORTED);
  ck_assert_msg(strstr(msg, "unknown event type 99 without the ignorable"),
                "%s", msg);
  free(s.p);
  static const struct {
    uint8_t type;
    const char *text;
  } uns[] = {{42, "GTID_TAGGED"},
             {164, "encrypted"},
             {172, "PARTIAL_ROW_DATA"},
             {20, "MySQL 5.1 or older"}};
  for (size_t i = 0; i < sizeof(uns) / sizeof(uns[0]); i++) {
    n = mkevent(ev, uns[i].type, 0, "\0\0\0\0\0\0\0\0\0\0", 10);
    s = stream(ev, n);
    ck_assert_int_eq(decode(NULL, "b.000001", s.p, s.n, msg, sizeof(msg)),
                     HB_EUNSUPPORTED);
    ck_assert_msg(strstr(msg, uns[i].text), "%s", msg);
    free(s.p);
  }
  /* rows for a table id nobody mapped */
  uint8_t rows[16] = {0x55, 0, 0, 0, 0, 0, 1, 0, 2, 0, 1, 0xff, 0, 1};
  n = mkevent(ev, 30, 0, rows, 14);
  s = stream(ev, n);
  ck_assert_int_eq(decode(NULL, "b.000001", s.p, s.n, msg, sizeof(msg)),
                   HB_ECORRUPT);
  ck_assert_msg(strstr(msg, "b.000001:125: rows event for table id 85 "
                            "without a TABLE_MAP"),
                "%s", msg);
  free(s.p);
}
END_TEST

START_TEST(fde_checks) {
  blob_t f = load(HB_FIXTURES, "mysql-8.0.26_bit.000001");
  char msg[600];
  /* the FDE's own checksum */
  f.p[4 + 30] ^= 1;
  ck_assert_int_eq(decode(NULL, "b.000001", f.p, f.n, msg, sizeof(msg)),
                   HB_ECHECKSUM);
  ck_assert_msg(strstr(msg, "b.000001:4: FORMAT_DESCRIPTION checksum "
                            "mismatch"),
                "%s", msg);
  f.p[4 + 30] ^= 1;
  /* an event before any FDE */
  uint8_t ev[64];
  size_t n = mkevent(ev, 16, 0, "\1\0\0\0\0\0\0\0", 8);
  blob_t s = {malloc(4 + n), 4 + n};
  memcpy(s.p,
         "\xfe"
         "bin",
         4);
  memcpy(s.p + 4, ev, n);
  ck_assert_int_eq(decode(NULL, "b.000001", s.p, s.n, msg, sizeof(msg)),
                   HB_ECORRUPT);
  ck_assert_msg(strstr(msg, "event type 16 before the FORMAT_DESCRIPTION"),
                "%s", msg);
  free(s.p);
  /* a non-binlog */
  ck_assert_int_eq(
      decode(NULL, "b.000001", (const uint8_t *)"GIF89a", 6, msg, sizeof(msg)),
      HB_ENOT_BINLOG);
  ck_assert_msg(strstr(msg, "b.000001:0: not a binlog file"), "%s", msg);
  free(f.p);
}
END_TEST

/* A QUERY event body: thread id, exec time, db length, error code, no
 * status variables, db + NUL, statement. */
static size_t mkquery(uint8_t *o, const char *db, const char *sql) {
  uint8_t body[512] = {0};
  size_t dl = strlen(db), ql = strlen(sql);
  body[8] = (uint8_t)dl;
  memcpy(body + 13, db, dl + 1);
  memcpy(body + 13 + dl + 1, sql, ql);
  return mkevent(o, 2, 0, body, 13 + dl + 1 + ql);
}

/* TABLE_MAP d.t (id 7) with one INT column, and a WRITE_ROWS_V2 of v. */
static size_t mkinsert(uint8_t *o, int32_t v) {
  static const uint8_t tm[] = {7,   0, 0, 0,   0, 0, 1, 0, 1,
                               'd', 0, 1, 't', 0, 1, 3, 0, 1};
  size_t n = mkevent(o, 19, 0, tm, sizeof(tm));
  uint8_t rows[32] = {7, 0, 0, 0, 0, 0, 1, 0, 2, 0, 1, 0x01, 0x00};
  memcpy(rows + 13, &v, 4);
  return n + mkevent(o + n, 30, 0, rows, 17);
}

/* Which statements are transaction control, which are reported, and how
 * the windows around them come out. */
START_TEST(statement_kinds) {
  uint8_t ev[8192];
  size_t n = 0;
  uint8_t xid[8] = {9};
  /* 1: BEGIN, insert, SAVEPOINT, insert, COMMIT: one window, two rows */
  n += mkquery(ev + n, "d", "BEGIN");
  n += mkinsert(ev + n, 1);
  n += mkquery(ev + n, "d", "SAVEPOINT s1");
  n += mkinsert(ev + n, 2);
  n += mkquery(ev + n, "d", "COMMIT");
  /* 2: rolled back: nothing */
  n += mkquery(ev + n, "d", "BEGIN");
  n += mkinsert(ev + n, 3);
  n += mkquery(ev + n, "d", "ROLLBACK");
  /* 3: CREATE ... SELECT as MySQL 8.0.21+ logs it: the DDL opens the
   * transaction that holds its rows */
  size_t ctas = n;
  n += mkquery(ev + n, "d", "CREATE TABLE t2 (a INT) START TRANSACTION");
  n += mkinsert(ev + n, 4);
  n += mkevent(ev + n, 16, 0, xid, 8);
  /* 4: a plain DDL and a statement-format DML */
  n += mkquery(ev + n, "d", "  alter table t add b int;");
  n += mkquery(ev + n, "", "INSERT INTO d.t VALUES (5)");
  /* 5: a transaction cut off by the next BEGIN (a crash), then one that
   * commits */
  n += mkquery(ev + n, "d", "BEGIN");
  n += mkinsert(ev + n, 6);
  n += mkquery(ev + n, "d", "begin");
  n += mkinsert(ev + n, 7);
  n += mkevent(ev + n, 16, 0, xid, 8);
  blob_t s = stream(ev, n);
  ctx_t c = {0};
  hb_config_t cfg = config(&c);
  char msg[600];
  ck_assert_int_eq(decode(&cfg, "b.000002", s.p, s.n, msg, sizeof(msg)), 0);
  hb_buf_putc(&c.out, '\0');
  /* the rolled back and the cut off transactions are not windows */
  ck_assert_int_eq(c.windows, 3);
  ck_assert_int_eq(c.ddls, 3);
  const char *o = c.out.p;
  ck_assert_ptr_nonnull(strstr(o, "\"after\":{\"@1\":1},\"txn\":{\"index\":0,"
                                  "\"last\":false}}"));
  ck_assert_ptr_nonnull(strstr(o, "\"after\":{\"@1\":2},\"txn\":{\"index\":1,"
                                  "\"last\":true}}"));
  ck_assert_ptr_null(strstr(o, "\"@1\":3}"));
  ck_assert_ptr_null(strstr(o, "\"@1\":6}"));
  ck_assert_ptr_nonnull(strstr(o, "\"@1\":7}"));
  ck_assert_ptr_nonnull(
      strstr(o, "\"statement\":\"CREATE TABLE t2 (a INT) START TRANSACTION\""));
  ck_assert_ptr_nonnull(strstr(o, "\"@1\":4},\"txn\":{\"index\":0,\"last\":"
                                  "true}}"));
  ck_assert_ptr_nonnull(
      strstr(o, "\"db\":\"d\"},\"statement\":\"  alter table t add b int;\""));
  ck_assert_ptr_nonnull(strstr(o, "\"db\":\"\"},\"statement\":\"INSERT INTO "
                                  "d.t VALUES (5)\""));
  ck_assert_ptr_null(strstr(o, "SAVEPOINT"));
  ck_assert_ptr_null(strstr(o, "\"statement\":\"BEGIN"));
  /* the CTAS window begins at the statement, not at its rows event */
  ck_assert_uint_eq(c.begin[1], s.n - n + ctas);
  /* lines come in binlog order: the CTAS statement before its row */
  ck_assert_ptr_nonnull(strstr(o, "START TRANSACTION"));
  ck_assert(strstr(o, "START TRANSACTION") < strstr(o, "\"@1\":4}"));
  /* and it has its transaction's SCN, not one inside the transaction: a
   * consumer resuming after the statement resumes after the rows too */
  const char *dl = strstr(o, "START TRANSACTION");
  while (dl > o && dl[-1] != '\n')
    dl--;
  const char *rl = strstr(o, "\"@1\":4}");
  while (rl > o && rl[-1] != '\n')
    rl--;
  ck_assert_int_eq(strncmp(dl, "{\"scn\":", 7), 0);
  ck_assert_uint_eq(strtoull(dl + 7, NULL, 10), strtoull(rl + 7, NULL, 10));
  hb_buf_free(&c.out);
  free(s.p);
}
END_TEST

/* Chunks: a transaction decoded with chunk_bytes comes out in pieces whose
 * lines, put together, are the lines of the same transaction decoded whole
 * (txn.index counting on across chunks, last only at the end); a chunked
 * transaction that is rolled back is never completed, and the next one
 * starts at chunk 0. */
typedef struct {
  hb_buf_t out;
  int chunks, windows;
  uint32_t next_chunk; /* what the next chunk or window must say */
  uint64_t rows;
} chunk_ctx_t;

static int on_chunk_rec(void *ud, const hb_window_t *w) {
  chunk_ctx_t *c = ud;
  if (w->chunk == 0) { /* a new transaction: forget an unfinished one */
    c->out.len = 0;
    c->rows = 0;
  }
  ck_assert_uint_eq(w->chunk, c->next_chunk == 0 ? 0 : w->chunk);
  ck_assert_uint_eq(w->row_base, c->rows);
  ck_assert_int_eq(w->more, 1);
  ck_assert_uint_eq(w->scn, 0);
  hb_render_window(w, &c->out);
  c->rows += w->nrows;
  c->chunks++;
  c->next_chunk = w->chunk + 1;
  return 0;
}

static int on_window_rec(void *ud, const hb_window_t *w) {
  chunk_ctx_t *c = ud;
  if (w->chunk == 0) {
    c->out.len = 0;
    c->rows = 0;
  }
  ck_assert_uint_eq(w->row_base, c->rows);
  ck_assert_int_eq(w->more, 0);
  hb_render_window(w, &c->out);
  /* The last chunk's last row was not known to be the transaction's last
   * when it was handed out: a consumer marks it when the window ends with
   * no rows of its own. */
  static const char lf[] = "\"last\":false}}\n";
  if (w->nrows == 0 && w->chunk > 0 && c->out.len >= sizeof(lf) - 1 &&
      memcmp(c->out.p + c->out.len - (sizeof(lf) - 1), lf, sizeof(lf) - 1) ==
          0) {
    c->out.len -= sizeof(lf) - 1;
    hb_buf_put(&c->out, "\"last\":true}}\n", sizeof(lf) - 2);
  }
  c->rows += w->nrows;
  c->windows++;
  c->next_chunk = 0;
  return 0;
}

/* Lines with the numbers chunks do not know yet (the commit's SCN, time
 * and server id) made 0. */
static void zero_scns(hb_buf_t *b) {
  static const char *keys[] = {"\"scn\":", "\"ts_ms\":", "\"server_id\":"};
  hb_buf_putc(b, '\0');
  char *p = b->p;
  size_t o = 0;
  while (*p) {
    int hit = 0;
    for (int k = 0; k < 3 && !hit; k++) {
      size_t kl = strlen(keys[k]);
      if (strncmp(p, keys[k], kl) == 0) {
        memcpy(b->p + o, keys[k], kl);
        o += kl;
        b->p[o++] = '0';
        p += kl;
        while (*p >= '0' && *p <= '9')
          p++;
        hit = 1;
      }
    }
    if (!hit)
      b->p[o++] = *p++;
  }
  b->len = o;
}

START_TEST(chunked_transactions) {
  static uint8_t ev[65536];
  size_t n = 0;
  uint8_t xid[8] = {9};
  /* rolled back after several chunks */
  n += mkquery(ev + n, "d", "BEGIN");
  for (int i = 0; i < 40; i++)
    n += mkinsert(ev + n, 1000 + i);
  n += mkquery(ev + n, "d", "ROLLBACK");
  /* committed: 60 rows */
  n += mkquery(ev + n, "d", "BEGIN");
  for (int i = 0; i < 60; i++)
    n += mkinsert(ev + n, i);
  n += mkevent(ev + n, 16, 0, xid, 8);
  blob_t s = stream(ev, n);
  /* the committed transaction decoded whole */
  chunk_ctx_t a = {0};
  hb_config_t cfg = {.on_window = on_window_rec, .ud = &a};
  int devnull = open("/dev/null", O_WRONLY), saved = dup(2);
  dup2(devnull, 2); /* the rollback's warning */
  ck_assert_int_eq(decode(&cfg, "b.000002", s.p, s.n, NULL, 0), 0);
  dup2(saved, 2);
  ck_assert_int_eq(a.windows, 1);
  ck_assert_uint_eq(a.rows, 60);
  zero_scns(&a.out);
  /* and in chunks of about one rows event (each insert is ~60 bytes of
   * decoded values) */
  for (size_t cb = 1; cb <= 512; cb *= 8) {
    chunk_ctx_t b = {0};
    hb_config_t cc = {.on_window = on_window_rec,
                      .on_chunk = on_chunk_rec,
                      .chunk_bytes = cb,
                      .ud = &b};
    dup2(devnull, 2);
    ck_assert_int_eq(decode(&cc, "b.000002", s.p, s.n, NULL, 0), 0);
    dup2(saved, 2);
    /* the rolled back one: an empty window at chunk 0, then the other */
    ck_assert(b.windows == 2 || (cb > 1 && b.windows == 1));
    ck_assert_uint_eq(b.rows, 60);
    int want = cb == 1 ? 40 + 60 : 1;
    ck_assert_int_ge(b.chunks, want);
    zero_scns(&b.out);
    ck_assert_uint_eq(b.out.len, a.out.len);
    ck_assert_int_eq(memcmp(b.out.p, a.out.p, a.out.len), 0);
    hb_buf_free(&b.out);
  }
  close(devnull);
  close(saved);
  hb_buf_free(&a.out);
  free(s.p);
}
END_TEST

/* PARTIAL_UPDATE_ROWS with the before document in the before image (the
 * diffs are applied) and without it (the diffs are shown). Table d.j (id
 * 8): id INT, j JSON. */
START_TEST(partial_json_rows) {
  /* {"a": 1, "b": "x"} as a small binary JSON object */
  static const uint8_t doc[] = {0x00, 0x02, 0x00, 0x16, 0x00, 0x12, 0x00, 0x01,
                                0x00, 0x13, 0x00, 0x01, 0x00, 0x05, 0x01, 0x00,
                                0x0c, 0x14, 0x00, 'a',  'b',  0x01, 'x'};
  /* REPLACE $.a 5 */
  static const uint8_t diff[] = {0x00, 0x03, '$',  '.', 'a',
                                 0x03, 0x05, 0x05, 0x00};
  static const uint8_t tm[] = {8, 0, 0,   0, 0, 0, 1,   0, 1, 'd',
                               0, 1, 'j', 0, 2, 3, 245, 1, 4, 3};
  uint8_t ev[4096], rows[512];
  size_t n = 0, r;
  n += mkquery(ev + n, "d", "BEGIN");
  n += mkevent(ev + n, 19, 0, tm, sizeof(tm));
  for (int full = 1; full >= 0; full--) {
    /* post-header: table id, flags, extra length 2; 2 columns; before
     * bitmap (both, or only id), after bitmap (both) */
    r = 0;
    memcpy(rows, "\x08\0\0\0\0\0\x01\0\x02\0\x02", 11);
    r = 11;
    rows[r++] = full ? 0x03 : 0x01;
    rows[r++] = 0x03;
    /* before image: null bits, id, [json] */
    rows[r++] = 0x00;
    memcpy(rows + r, "\x01\0\0\0", 4);
    r += 4;
    if (full) {
      uint32_t dl = sizeof(doc);
      memcpy(rows + r, &dl, 4);
      memcpy(rows + r + 4, doc, sizeof(doc));
      r += 4 + sizeof(doc);
    }
    /* after image: value options (partial JSON), partial bits (the one
     * JSON column), null bits, id, diff vector */
    rows[r++] = 0x01;
    rows[r++] = 0x01;
    rows[r++] = 0x00;
    memcpy(rows + r, "\x01\0\0\0", 4);
    r += 4;
    uint32_t dl = sizeof(diff);
    memcpy(rows + r, &dl, 4);
    memcpy(rows + r + 4, diff, sizeof(diff));
    r += 4 + sizeof(diff);
    n += mkevent(ev + n, 39, 0, rows, r);
  }
  uint8_t xid[8] = {1};
  n += mkevent(ev + n, 16, 0, xid, 8);
  blob_t s = stream(ev, n);
  ctx_t c = {0};
  hb_config_t cfg = config(&c);
  char msg[600];
  ck_assert_msg(decode(&cfg, "b.000003", s.p, s.n, msg, sizeof(msg)) == 0, "%s",
                msg);
  hb_buf_putc(&c.out, '\0');
  ck_assert_ptr_nonnull(
      strstr(c.out.p, "\"before\":{\"@1\":1,\"@2\":\"{\\\"a\\\": 1, "
                      "\\\"b\\\": \\\"x\\\"}\"},\"after\":{\"@1\":1,\"@2\":"
                      "\"{\\\"a\\\": 5, \\\"b\\\": \\\"x\\\"}\"}"));
  ck_assert_ptr_nonnull(
      strstr(c.out.p, "\"before\":{\"@1\":1},\"after\":{\"@1\":1,\"@2\":"
                      "{\"json_diff\":[{\"op\":\"replace\",\"path\":\"$.a\","
                      "\"value\":5}]}}"));
  hb_buf_free(&c.out);
  /* a broken before document: the error code and the column, not -1 */
  uint8_t *bad = NULL;
  for (size_t i = 0; i + sizeof(doc) <= s.n && !bad; i++)
    if (memcmp(s.p + i, doc, sizeof(doc)) == 0)
      bad = s.p + i;
  ck_assert_ptr_nonnull(bad);
  bad[3] = 0x7f; /* container size beyond the document */
  fix_crcs(s.p, s.n);
  ctx_t c2 = {0};
  hb_config_t cfg2 = config(&c2);
  ck_assert_int_eq(decode(&cfg2, "b.000003", s.p, s.n, msg, sizeof(msg)),
                   HB_ECORRUPT);
  ck_assert_msg(strstr(msg, "d.j column @2 (@2, type 245): JSON container "
                            "size out of range"),
                "%s", msg);
  hb_buf_free(&c2.out);
  free(s.p);
}
END_TEST

/* The event API, as the relay uses it: an artificial ROTATE before the
 * FDE (checksum unknown yet), events one at a time, reset after an error,
 * resynchronisation mid-transaction. */
START_TEST(event_api) {
  blob_t f =
      load(HB_FIXTURES, "mysql-8.0.28_char-varchar-enum-set-text.000001");
  size_t at[64];
  size_t nb = boundaries(&f, at, 64);
  ctx_t c = {0};
  hb_config_t cfg = config(&c);
  hb_decoder_t *d = hb_decoder_new(&cfg);
  uint8_t ev[128];
  /* artificial ROTATE: position 4, name, flag 0x20, with a CRC */
  uint8_t rot[32] = {4, 0, 0, 0, 0, 0, 0, 0};
  memcpy(rot + 8, "binlog.000077", 13);
  size_t n = mkevent(ev, 4, 0x20, rot, 21);
  ck_assert_int_eq(hb_decoder_feed(d, ev, n, 0), 0);
  ck_assert_int_eq(hb_decoder_has_fde(d), 0);
  for (size_t i = 0; i < nb; i++) {
    size_t end = i + 1 < nb ? at[i + 1] : f.n;
    ck_assert_int_eq(hb_decoder_feed(d, f.p + at[i], end - at[i], at[i]), 0);
  }
  ck_assert_int_eq(hb_decoder_finish(d), 0);
  ck_assert_int_eq(c.windows, 3);
  hb_buf_putc(&c.out, '\0');
  ck_assert_ptr_nonnull(strstr(c.out.p, "\"file\":\"binlog.000077\""));
  /* SCN = 77 << 32 | 1560, the end of the first transaction */
  ck_assert_ptr_nonnull(strstr(c.out.p, "\"scn\":330712483352,"));
  /* a size that does not match the header: an error that sticks */
  ck_assert_int_eq(hb_decoder_feed(d, f.p + at[1], 20, at[1]), HB_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(hb_decoder_errmsg(d), "event size field"));
  ck_assert_int_eq(hb_decoder_feed(d, f.p + at[1], at[2] - at[1], at[1]),
                   HB_ECORRUPT);
  /* reset clears it; resync skips a transaction entered in the middle */
  hb_decoder_reset(d);
  hb_decoder_resync(d);
  int before = c.windows;
  /* events 8.. start at the TABLE_MAP after the first BEGIN */
  for (size_t i = 8; i < nb; i++) {
    size_t end = i + 1 < nb ? at[i + 1] : f.n;
    ck_assert_int_eq(hb_decoder_feed(d, f.p + at[i], end - at[i], at[i]), 0);
  }
  ck_assert_int_eq(c.windows - before, 2);
  hb_stats_t st;
  hb_decoder_stats(d, &st);
  ck_assert_uint_eq(st.windows, 5);
  hb_decoder_free(d);
  hb_buf_free(&c.out);
  free(f.p);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("decoder streams");
  TCase *td = tcase_create("data");
  tcase_add_test(td, truncated_everywhere_data);
  tcase_add_test(td, mutations_survived_data);
  tcase_add_test(td, partial_json_rows);
  tcase_add_test(td, chunked_transactions);
  tcase_add_test(td, statement_kinds);
  tcase_add_test(td, unknown_and_unsupported_events);
  tcase_add_test(td, incident_events);
  tcase_set_timeout(td, 600);
  suite_add_tcase(s, td);
  TCase *tc = tcase_create("fixtures");
  tcase_add_test(tc, truncated_everywhere);
  tcase_add_test(tc, bitflips_detected);
  tcase_add_test(tc, mutations_survived);
  tcase_add_test(tc, scn_range);
  tcase_add_test(tc, schema_and_filter);
  tcase_add_test(tc, schema_failure_and_stop);
  tcase_add_test(tc, fde_checks);
  tcase_add_test(tc, event_api);
  /* ASan builds run the mutation loops several times slower */
  tcase_set_timeout(tc, 600);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && strcmp(argv[1], "data") != 0 &&
                   strcmp(argv[1], "fixtures") != 0)) {
    fprintf(stderr, "usage: %s [data|fixtures]\n", argv[0]);
    return 2;
  }
  /* Thousands of damaged inputs each log a warning; the results are what
   * is checked. */
  hd_log_level = HD_LL_OFF;
  SRunner *sr = srunner_create(suite());
  srunner_run(sr, NULL, argc == 2 ? argv[1] : NULL, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
