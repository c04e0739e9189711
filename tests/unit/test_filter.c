/*
 * Unit tests of relay_filter: key moves (wanted by the owners of both
 * partitions), Subscribe validation, and the schema changes a consumer
 * with table patterns gets. The partition functions themselves are
 * common/hd_partkey's, pinned by tests/unit/test_partkey.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_check.h"
#include "relay_filter.h"

/* A one-column integer key, as the relay indexes it. */
static void int_key(int64_t v, hd_key_t *k) {
  Herald__Value val = HERALD__VALUE__INIT;
  Herald__Column col = HERALD__COLUMN__INIT, *cp = &col;
  val.kind_case = HERALD__VALUE__KIND_INT;
  val.int_ = v;
  col.value = &val;
  uint8_t *tmp = NULL;
  size_t cap = 0;
  hd_key_of(k, &cp, 1, &tmp, &cap);
  free(tmp);
}

/* A moved key is wanted by the owners of both partitions, once each. */
START_TEST(moved_key_both_partitions) {
  hd_key_t a, b;
  int_key(1, &a);       /* mod 7 -> 1 */
  int_key(1000003, &b); /* mod 7 -> 1000003 % 7 */
  uint32_t pa = hd_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 7, &a);
  uint32_t pb = hd_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 7, &b);
  ck_assert_uint_ne(pa, pb);
  relay_row_t r = {0};
  relay_win_t w = {0};
  w.olds = &a;
  w.nolds = 1;
  r.key = b;
  r.old = 1;
  for (uint32_t p = 0; p < 7; p++) {
    Herald__Subscribe sub = HERALD__SUBSCRIBE__INIT;
    Herald__PartitionFilter pf = HERALD__PARTITION_FILTER__INIT;
    pf.fn = HERALD__PARTITION_FUNCTION__PART_MOD;
    pf.num_partitions = 7;
    pf.partitions = &p;
    pf.n_partitions = 1;
    sub.partition = &pf;
    relay_filter_t f;
    char err[200];
    ck_assert_int_eq(relay_filter_init(&f, &sub, err, sizeof(err)), 0);
    ck_assert_int_eq(relay_filter_row(&f, &w, &r), p == pa || p == pb);
    r.old = 0;
    ck_assert_int_eq(relay_filter_row(&f, &w, &r), p == pb);
    r.old = 1;
    relay_filter_free(&f);
  }
}
END_TEST

START_TEST(subscribe_refused) {
  static const char *bad_tables[] = {"nodot", ".t", "db.", "a.b.c"};
  for (size_t i = 0; i < 4; i++) {
    Herald__Subscribe sub = HERALD__SUBSCRIBE__INIT;
    char *t = (char *)bad_tables[i];
    sub.tables = &t;
    sub.n_tables = 1;
    relay_filter_t f;
    char err[200];
    ck_assert_int_eq(relay_filter_init(&f, &sub, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "db.table"));
    relay_filter_free(&f);
  }
  Herald__Subscribe sub = HERALD__SUBSCRIBE__INIT;
  Herald__PartitionFilter pf = HERALD__PARTITION_FILTER__INIT;
  uint32_t p = 9;
  pf.fn = HERALD__PARTITION_FUNCTION__PART_HASH;
  pf.num_partitions = 4;
  pf.partitions = &p;
  pf.n_partitions = 1;
  sub.partition = &pf;
  relay_filter_t f;
  char err[200];
  ck_assert_int_eq(relay_filter_init(&f, &sub, err, sizeof(err)), -1);
  ck_assert_str_eq(err, "partition 9 is not below 4");
  relay_filter_free(&f);
  pf.fn = HERALD__PARTITION_FUNCTION__PART_RANGE;
  pf.range_start = 5;
  pf.range_end = 5;
  ck_assert_int_eq(relay_filter_init(&f, &sub, err, sizeof(err)), -1);
  relay_filter_free(&f);
  pf.range_to_max = 1; /* [5, max]: fine */
  ck_assert_int_eq(relay_filter_init(&f, &sub, err, sizeof(err)), 0);
  relay_filter_free(&f);
}
END_TEST

/* The schema changes of a window are indexed once, the same way when the
 * window is built and when it is read back from the log store, and a
 * consumer with table patterns takes them by the tables they name. */
START_TEST(ddl_index_and_filter) {
  static const struct {
    const char *db, *stmt;
  } st[] = {
      {"other", "ALTER TABLE t1.items ADD c INT"}, /* qualified: t1.items */
      {"t1", "ALTER TABLE orders ADD c INT"},      /* unqualified: t1.orders */
      {"", "CREATE DATABASE t2"},                  /* no table: db t2 */
      {"", "CREATE USER u IDENTIFIED BY '<redacted>'"},
  };
  enum { N = sizeof(st) / sizeof(st[0]) };
  hb_ddl_t d[N];
  memset(d, 0, sizeof(d));
  for (size_t i = 0; i < N; i++) {
    d[i].db = st[i].db;
    d[i].statement = st[i].stmt;
    d[i].len = strlen(st[i].stmt);
    d[i].pos = 100 + i;
  }
  hb_window_t w = {0};
  w.scn = (UINT64_C(3) << 32) | 500;
  w.file = "binlog.000003";
  w.end_pos = 500;
  relay_wb_t *wb = relay_wb_new();
  relay_win_t *built = relay_win_build(wb, &w, d, N);
  uint8_t *copy = malloc(built->len);
  memcpy(copy, built->buf, built->len);
  relay_win_t *read = relay_win_from_packed(wb, copy, built->len);
  ck_assert_ptr_nonnull(read);
  relay_win_t *ws[2] = {built, read};
  /* patterns -> which of the statements the consumer gets */
  static const struct {
    const char *pat;
    int want[N];
  } cases[] = {
      {"t1.*", {1, 1, 0, 0}}, {"t1.items", {1, 0, 0, 0}},
      {"t2.x", {0, 0, 1, 0}}, {"*.*", {1, 1, 1, 1}},
      {"t3.*", {0, 0, 0, 0}},
  };
  for (int k = 0; k < 2; k++) {
    relay_win_t *rw = ws[k];
    ck_assert_uint_eq(rw->nddl, N);
    uint32_t end = rw->ddl_off;
    for (size_t i = 0; i < N; i++) {
      /* The ranges tile [ddl_off, len) in order, each one field. */
      ck_assert_uint_eq(rw->ddls[i].off, end);
      end = rw->ddls[i].off + rw->ddls[i].len;
      Herald__Window *one = herald__window__unpack(NULL, rw->ddls[i].len,
                                                   rw->buf + rw->ddls[i].off);
      ck_assert_ptr_nonnull(one);
      ck_assert_uint_eq(one->n_ddl, 1);
      ck_assert_str_eq(one->ddl[0]->statement, st[i].stmt);
      herald__window__free_unpacked(one, NULL);
    }
    ck_assert_uint_eq(end, rw->len);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
      Herald__Subscribe sub = HERALD__SUBSCRIBE__INIT;
      char *pat = (char *)cases[c].pat;
      sub.tables = &pat;
      sub.n_tables = 1;
      relay_filter_t f;
      char err[200];
      ck_assert_int_eq(relay_filter_init(&f, &sub, err, sizeof(err)), 0);
      for (size_t i = 0; i < N; i++)
        ck_assert_msg(relay_filter_ddl(&f, &rw->ddls[i]) == cases[c].want[i],
                      "%s, statement %zu (%s)", cases[c].pat, i,
                      k ? "read back" : "built");
      relay_filter_free(&f);
    }
    /* No table patterns (a partition filter only): every statement. */
    Herald__Subscribe sub = HERALD__SUBSCRIBE__INIT;
    relay_filter_t f;
    char err[200];
    ck_assert_int_eq(relay_filter_init(&f, &sub, err, sizeof(err)), 0);
    for (size_t i = 0; i < N; i++)
      ck_assert(relay_filter_ddl(&f, &rw->ddls[i]));
    relay_filter_free(&f);
  }
  relay_win_release(built);
  relay_win_release(read);
  relay_wb_free(wb);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("relay filter");
  TCase *tc = tcase_create("filter");
  tcase_add_test(tc, moved_key_both_partitions);
  tcase_add_test(tc, subscribe_refused);
  tcase_add_test(tc, ddl_index_and_filter);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
