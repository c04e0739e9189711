/*
 * Unit tests of relay_filter: the partition functions, pinned on a fixed
 * set of keys (a release that changed one would move rows between the
 * partitions of a running group), the RANGE and MOD rules for unsigned
 * keys above 2^63, key moves, Subscribe validation, and the schema
 * changes a consumer with table patterns gets.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_check.h"
#include "relay_filter.h"

/* A key of up to two columns, as the relay indexes it. */
typedef struct {
  const char *what;
  int kinds[2]; /* Herald__Value kind_case; 0 = no column */
  int64_t i[2];
  uint64_t u[2];
  const char *s[2];
} tkey_t;

#define KI HERALD__VALUE__KIND_INT
#define KU HERALD__VALUE__KIND_UINT
#define KS HERALD__VALUE__KIND_STR
#define KB HERALD__VALUE__KIND_BIN
#define KD HERALD__VALUE__KIND_DECIMAL

static const tkey_t keys[] = {
    {"int 0", {KI}, {0}, {0}, {0}},
    {"int 1", {KI}, {1}, {0}, {0}},
    {"int -1", {KI}, {-1}, {0}, {0}},
    {"int 1000003", {KI}, {1000003}, {0}, {0}},
    {"int min", {KI}, {INT64_MIN}, {0}, {0}},
    {"int max", {KI}, {INT64_MAX}, {0}, {0}},
    {"uint 0", {KU}, {0}, {0}, {0}},
    {"uint 2^63", {KU}, {0}, {UINT64_C(9223372036854775808)}, {0}},
    {"uint max", {KU}, {0}, {UINT64_MAX}, {0}},
    {"uint prime", {KU}, {0}, {UINT64_C(18446744073709551557)}, {0}},
    {"str empty", {KS}, {0}, {0}, {""}},
    {"str a", {KS}, {0}, {0}, {"a"}},
    {"str utf8", {KS}, {0}, {0}, {"h\xc3\xa9llo \xf0\x9f\x98\x80"}},
    {"bin", {KB}, {0}, {0}, {"\x01\x02\x03"}},
    {"decimal", {KD}, {0}, {0}, {"-12.3400"}},
    {"int+str", {KI, KS}, {42, 0}, {0, 0}, {NULL, "x"}},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void make_key(const tkey_t *t, relay_key_t *k) {
  Herald__Value v[2];
  Herald__Column col[2], *cp[2];
  size_t n = 0;
  for (int c = 0; c < 2 && t->kinds[c]; c++) {
    herald__value__init(&v[c]);
    v[c].kind_case = (Herald__Value__KindCase)t->kinds[c];
    switch (t->kinds[c]) {
    case KI:
      v[c].int_ = t->i[c];
      break;
    case KU:
      v[c].uint = t->u[c];
      break;
    case KS:
      v[c].str = (char *)t->s[c];
      break;
    case KD:
      v[c].decimal = (char *)t->s[c];
      break;
    case KB:
      v[c].bin.data = (uint8_t *)t->s[c];
      v[c].bin.len = strlen(t->s[c]);
      break;
    }
    herald__column__init(&col[c]);
    col[c].value = &v[c];
    cp[n++] = &col[c];
  }
  uint8_t *tmp = NULL;
  size_t cap = 0;
  relay_key_of(k, cp, n, &tmp, &cap);
  free(tmp);
}

/* The pinned values: xxHash64 of each canonical key, and its partitions.
 * Never edit these to make a change pass: a different value means rows
 * would move to other partitions. */
static const struct {
  uint64_t hash;
  uint32_t hash16, hash7, mod16, mod7;
} pinned[NKEYS] = {
#include "test_filter_golden.h"
};

START_TEST(partitions_pinned) {
  for (size_t i = 0; i < NKEYS; i++) {
    relay_key_t k;
    make_key(&keys[i], &k);
    uint32_t h16 =
        relay_partition_of(HERALD__PARTITION_FUNCTION__PART_HASH, 16, &k);
    uint32_t h7 =
        relay_partition_of(HERALD__PARTITION_FUNCTION__PART_HASH, 7, &k);
    uint32_t m16 =
        relay_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 16, &k);
    uint32_t m7 =
        relay_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 7, &k);
    if (getenv("HERALD_PRINT_GOLDEN")) {
      printf("    {UINT64_C(%llu), %u, %u, %u, %u}, /* %s */\n",
             (unsigned long long)k.hash, h16, h7, m16, m7, keys[i].what);
      continue;
    }
    ck_assert_msg(k.hash == pinned[i].hash, "%s: hash %llu", keys[i].what,
                  (unsigned long long)k.hash);
    ck_assert_msg(h16 == pinned[i].hash16 && h7 == pinned[i].hash7,
                  "%s: hash partitions %u %u", keys[i].what, h16, h7);
    ck_assert_msg(m16 == pinned[i].mod16 && m7 == pinned[i].mod7,
                  "%s: mod partitions %u %u", keys[i].what, m16, m7);
  }
}
END_TEST

/* MOD is the arithmetic residue, for every integer kind: checked against
 * values worked out by hand, not against the implementation. */
START_TEST(mod_exact) {
  static const struct {
    int kind;
    int64_t i;
    uint64_t u;
    uint32_t n, want;
  } v[] = {
      {KI, -1, 0, 7, 6},
      {KI, INT64_MIN, 0, 7, 6}, /* -2^63 = -1317624576693539402*7 + 6 */
      {KI, INT64_MAX, 0, 7, 0}, /* 2^63-1 = 7 * 1317624576693539401 */
      {KU, 0, UINT64_C(9223372036854775808), 7, 1},
      {KU, 0, UINT64_MAX, 7, 1}, /* 2^64-1 = 7 * 2635249153387078802 + 1 */
      {KU, 0, UINT64_MAX, 16, 15},
      {KU, 0, UINT64_C(18446744073709551557), 1000, 557},
      {KI, -1000, 0, 16, 8},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    tkey_t t = {"", {v[i].kind}, {v[i].i}, {v[i].u}, {0}};
    relay_key_t k;
    make_key(&t, &k);
    ck_assert_uint_eq(
        relay_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, v[i].n, &k),
        v[i].want);
  }
}
END_TEST

START_TEST(range_unsigned) {
  relay_key_t big, small, neg, nokey = {0};
  make_key(&keys[8], &big);   /* uint max */
  make_key(&keys[1], &small); /* int 1 */
  make_key(&keys[2], &neg);   /* int -1 */
  ck_assert(!relay_key_in_range(&big, 0, INT64_MAX, 0));
  ck_assert(relay_key_in_range(&big, 0, 0, 1));
  ck_assert(relay_key_in_range(&big, INT64_MAX, 0, 1));
  ck_assert(relay_key_in_range(&small, 0, 2, 0));
  ck_assert(!relay_key_in_range(&small, 2, 10, 0));
  ck_assert(relay_key_in_range(&small, 1, 0, 1));
  ck_assert(relay_key_in_range(&neg, -1, 0, 0));
  ck_assert(!relay_key_in_range(&neg, 0, 0, 1));
  ck_assert(relay_key_in_range(&nokey, 0, 1, 0)); /* no key: as 0 */
}
END_TEST

/* A moved key is wanted by the owners of both partitions, once each. */
START_TEST(moved_key_both_partitions) {
  relay_key_t a, b;
  make_key(&keys[1], &a); /* int 1: mod 7 -> 1 */
  make_key(&keys[3], &b); /* int 1000003: mod 7 -> 1000003 % 7 */
  uint32_t pa = relay_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 7, &a);
  uint32_t pb = relay_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 7, &b);
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
  tcase_add_test(tc, partitions_pinned);
  tcase_add_test(tc, mod_exact);
  tcase_add_test(tc, range_unsigned);
  tcase_add_test(tc, moved_key_both_partitions);
  tcase_add_test(tc, subscribe_refused);
  tcase_add_test(tc, ddl_index_and_filter);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
