/*
 * Unit tests of hd_partkey, the partition facts of a key that the relay
 * and libherald share: the hash and partitions of a fixed set of keys
 * pinned (a release that changed one would move rows between the
 * partitions of a running group), the MOD and RANGE rules for keys at both
 * ends of both integer kinds, and the scratch memory that stops growing.
 * Then herald_change_owned(), libherald's answer to "is this key mine",
 * checked against hd_partition_of() for each of the keys as a change's
 * key and as the old key of a move, under HASH and MOD, with and without a
 * partition list, and without a partition filter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_check.h"
#include "hd_partkey.h"
#include "herald/herald.h"

#define KN HERALD__VALUE__KIND_NULL
#define KI HERALD__VALUE__KIND_INT
#define KU HERALD__VALUE__KIND_UINT
#define KDBL HERALD__VALUE__KIND_DBL
#define KFLT HERALD__VALUE__KIND_FLT
#define KS HERALD__VALUE__KIND_STR
#define KB HERALD__VALUE__KIND_BIN
#define KD HERALD__VALUE__KIND_DECIMAL
#define KT HERALD__VALUE__KIND_TEMPORAL
#define KJ HERALD__VALUE__KIND_JSON
#define KBT HERALD__VALUE__KIND_BADTEXT

/* One key column: its Value kind and the field of that kind. */
typedef struct {
  int kind;
  int64_t i;
  uint64_t u;
  double d;      /* DBL, FLT */
  const char *s; /* text kinds, BIN, BADTEXT (slen bytes) */
  size_t slen;
} tcol_t;

/* A key of up to three columns, in primary key order. */
typedef struct {
  const char *what;
  size_t n;
  tcol_t c[3];
} tkey_t;

#define CI(x)                                                                  \
  { .kind = KI, .i = (x) }
#define CU(x)                                                                  \
  { .kind = KU, .u = (x) }
#define CF(k, x)                                                               \
  { .kind = (k), .d = (x) }
#define CS(k, x)                                                               \
  { .kind = (k), .s = (x), .slen = sizeof(x) - 1 }
#define CN                                                                     \
  { .kind = KN }

static const tkey_t keys[] = {
    {"int 0", 1, {CI(0)}},
    {"int 1", 1, {CI(1)}},
    {"int -1", 1, {CI(-1)}},
    {"int 1000003", 1, {CI(1000003)}},
    {"int min", 1, {CI(INT64_MIN)}},
    {"int max", 1, {CI(INT64_MAX)}},
    {"uint 0", 1, {CU(0)}},
    {"uint 2^63", 1, {CU(UINT64_C(9223372036854775808))}},
    {"uint max", 1, {CU(UINT64_MAX)}},
    {"uint prime", 1, {CU(UINT64_C(18446744073709551557))}},
    {"str empty", 1, {CS(KS, "")}},
    {"str a", 1, {CS(KS, "a")}},
    {"str utf8", 1, {CS(KS, "h\xc3\xa9llo \xf0\x9f\x98\x80")}},
    {"bin", 1, {CS(KB, "\x01\x02\x03")}},
    {"decimal", 1, {CS(KD, "-12.3400")}},
    {"int+str", 2, {CI(42), CS(KS, "x")}},
    /* Pinned before the code moved from the relay to hd_partkey.c. */
    {"int 7", 1, {CI(7)}},
    {"int -42", 1, {CI(-42)}},
    {"int -9000000000", 1, {CI(INT64_C(-9000000000))}},
    {"uint 1.23e19", 1, {CU(UINT64_C(12345678901234567890))}},
    {"int 5, int 6, int 7", 3, {CI(5), CI(6), CI(7)}},
    {"int -5, str alpha", 2, {CI(-5), CS(KS, "alpha")}},
    {"str email, int 3", 2, {CS(KS, "user@example.com"), CI(3)}},
    {"str hello, world", 1, {CS(KS, "hello, world")}},
    {"str empty, uint 0", 2, {CS(KS, ""), CU(0)}},
    {"int 1, null", 2, {CI(1), CN}},
    {"dbl 3.5", 1, {CF(KDBL, 3.5)}},
    {"flt -0.25", 1, {CF(KFLT, -0.25)}},
    {"temporal", 1, {CS(KT, "2024-02-29 12:34:56.789")}},
    {"json", 1, {CS(KJ, "{\"a\":[1,2]}")}},
    {"badtext ff fe", 1, {CS(KBT, "\xff\xfe")}},
    {"bin 00 01 00", 1, {CS(KB, "\x00\x01\x00")}},
    {"decimal 0.000, int -1", 2, {CS(KD, "0.000"), CI(-1)}},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The columns of a key as a RowChange holds them. */
typedef struct {
  Herald__Value v[3];
  Herald__Column col[3];
  Herald__Column *cp[3];
  size_t n;
} tcols_t;

static void cols_of(const tkey_t *t, tcols_t *o) {
  static const char *const names[3] = {"a", "b", "c"};
  o->n = t->n;
  for (size_t c = 0; c < t->n; c++) {
    const tcol_t *tc = &t->c[c];
    Herald__Value *v = &o->v[c];
    herald__value__init(v);
    v->kind_case = (Herald__Value__KindCase)tc->kind;
    switch (tc->kind) {
    case KN:
      v->null = 1;
      break;
    case KI:
      v->int_ = tc->i;
      break;
    case KU:
      v->uint = tc->u;
      break;
    case KDBL:
      v->dbl = tc->d;
      break;
    case KFLT:
      v->flt = (float)tc->d;
      break;
    case KS:
      v->str.data = (uint8_t *)tc->s;
      v->str.len = strlen(tc->s);
      break;
    case KD:
      v->decimal = (char *)tc->s;
      break;
    case KT:
      v->temporal = (char *)tc->s;
      break;
    case KJ:
      v->json = (char *)tc->s;
      break;
    case KB:
      v->bin.data = (uint8_t *)tc->s;
      v->bin.len = tc->slen;
      break;
    case KBT:
      v->badtext.data = (uint8_t *)tc->s;
      v->badtext.len = tc->slen;
      break;
    }
    herald__column__init(&o->col[c]);
    o->col[c].name = (char *)names[c];
    o->col[c].value = v;
    o->cp[c] = &o->col[c];
  }
}

static void make_key(const tkey_t *t, hd_key_t *k) {
  tcols_t tc;
  cols_of(t, &tc);
  uint8_t *tmp = NULL;
  size_t cap = 0;
  hd_key_of(k, tc.cp, tc.n, &tmp, &cap);
  free(tmp);
}

/* The pinned values: xxHash64 of each canonical key, and its partitions.
 * Never edit these to make a change pass: a different value means rows
 * would move to other partitions. */
static const struct {
  uint64_t hash;
  uint32_t hash16, hash7, mod16, mod7;
} pinned[NKEYS] = {
#include "test_partkey_golden.h"
};

START_TEST(partitions_pinned) {
  for (size_t i = 0; i < NKEYS; i++) {
    hd_key_t k;
    make_key(&keys[i], &k);
    uint32_t h16 =
        hd_partition_of(HERALD__PARTITION_FUNCTION__PART_HASH, 16, &k);
    uint32_t h7 = hd_partition_of(HERALD__PARTITION_FUNCTION__PART_HASH, 7, &k);
    uint32_t m16 =
        hd_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 16, &k);
    uint32_t m7 = hd_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 7, &k);
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
    tcol_t c;
    uint32_t n, want;
  } v[] = {
      {CI(-1), 7, 6},
      {CI(INT64_MIN), 7, 6}, /* -2^63 = -1317624576693539402*7 + 6 */
      {CI(INT64_MAX), 7, 0}, /* 2^63-1 = 7 * 1317624576693539401 */
      {CU(UINT64_C(9223372036854775808)), 7, 1},
      {CU(UINT64_MAX), 7, 1}, /* 2^64-1 = 7 * 2635249153387078802 + 1 */
      {CU(UINT64_MAX), 16, 15},
      {CU(UINT64_C(18446744073709551557)), 1000, 557},
      {CI(-1000), 16, 8},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    tkey_t t = {"", 1, {v[i].c}};
    hd_key_t k;
    make_key(&t, &k);
    ck_assert_uint_eq(
        hd_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, v[i].n, &k),
        v[i].want);
  }
}
END_TEST

START_TEST(range_unsigned) {
  hd_key_t big, small, neg, nokey = {0};
  make_key(&keys[8], &big);   /* uint max */
  make_key(&keys[1], &small); /* int 1 */
  make_key(&keys[2], &neg);   /* int -1 */
  ck_assert(!hd_key_in_range(&big, 0, INT64_MAX, 0));
  ck_assert(hd_key_in_range(&big, 0, 0, 1));
  ck_assert(hd_key_in_range(&big, INT64_MAX, 0, 1));
  ck_assert(hd_key_in_range(&small, 0, 2, 0));
  ck_assert(!hd_key_in_range(&small, 2, 10, 0));
  ck_assert(hd_key_in_range(&small, 1, 0, 1));
  ck_assert(hd_key_in_range(&neg, -1, 0, 0));
  ck_assert(!hd_key_in_range(&neg, 0, 0, 1));
  ck_assert(hd_key_in_range(&nokey, 0, 1, 0)); /* no key: as 0 */
}
END_TEST

/* A key without columns, and MOD of a key whose first column is not an
 * integer, are partition 0 whatever the rest. */
START_TEST(no_key_partition_0) {
  hd_key_t k;
  uint8_t *tmp = NULL;
  size_t cap = 0;
  hd_key_of(&k, NULL, 0, &tmp, &cap);
  ck_assert(!k.has_pk);
  ck_assert_uint_eq(
      hd_partition_of(HERALD__PARTITION_FUNCTION__PART_HASH, 7, &k), 0);
  make_key(&keys[22], &k); /* str email, int 3 */
  ck_assert(k.has_pk && k.ikind == HD_IKEY_NONE);
  ck_assert_uint_eq(
      hd_partition_of(HERALD__PARTITION_FUNCTION__PART_MOD, 7, &k), 0);
  ck_assert_uint_eq(
      hd_partition_of(HERALD__PARTITION_FUNCTION__PART_NONE, 7, &k), 0);
  free(tmp);
}
END_TEST

/* The same column of the table, field by field. */
static int tcol_eq(const tcol_t *a, const tcol_t *b) {
  return a->kind == b->kind && a->i == b->i && a->u == b->u && a->d == b->d &&
         a->slen == b->slen &&
         (a->slen == 0 || memcmp(a->s, b->s, a->slen) == 0);
}

/* Values are the same key value exactly when their canonical bytes are:
 * the kind counts (int 1 is not uint 1), and so does every byte. The
 * table's first columns repeat twice ("int 1", "str empty"). */
START_TEST(value_same) {
  tcols_t a, b;
  uint8_t *tmp = NULL;
  size_t cap = 0;
  for (size_t i = 0; i < NKEYS; i++) {
    cols_of(&keys[i], &a);
    for (size_t j = 0; j < NKEYS; j++) {
      cols_of(&keys[j], &b);
      int same = hd_key_value_same(a.cp[0]->value, b.cp[0]->value, &tmp, &cap);
      ck_assert_msg(same == tcol_eq(&keys[i].c[0], &keys[j].c[0]),
                    "%s ~ %s: %d", keys[i].what, keys[j].what, same);
    }
  }
  tkey_t i1 = {"", 1, {CI(1)}}, u1 = {"", 1, {CU(1)}};
  cols_of(&i1, &a);
  cols_of(&u1, &b);
  ck_assert(!hd_key_value_same(a.cp[0]->value, b.cp[0]->value, &tmp, &cap));
  free(tmp);
}
END_TEST

/* The caller's scratch grows to the longest key and then stays: the
 * relay and libherald call this for every row. */
START_TEST(scratch_grows_once) {
  uint8_t *tmp = NULL;
  size_t cap = 0;
  hd_key_t k;
  tcols_t tc;
  cols_of(&keys[22], &tc); /* the longest of the table */
  hd_key_of(&k, tc.cp, tc.n, &tmp, &cap);
  uint8_t *p = tmp;
  size_t c0 = cap;
  ck_assert_uint_ge(cap, 1 + 4 + 16 + 1 + 8);
  for (int round = 0; round < 3; round++)
    for (size_t i = 0; i < NKEYS; i++) {
      hd_key_t again;
      cols_of(&keys[i], &tc);
      hd_key_of(&again, tc.cp, tc.n, &tmp, &cap);
      ck_assert_uint_eq(again.hash, pinned[i].hash);
    }
  ck_assert_ptr_eq(tmp, p);
  ck_assert_uint_eq(cap, c0);
  free(tmp);
}
END_TEST

/* ---------------------------------------------------- herald_change_owned */

/* A client of a conf that is relays plus kv (key, value, ..., NULL); it
 * never polls, so it never connects. */
static herald_client_t *client_with(const char *const *kv) {
  char err[300];
  herald_conf_t *conf = herald_conf_new();
  ck_assert_int_eq(herald_conf_set(conf, "relays", "127.0.0.1:1", err, 300), 0);
  for (size_t i = 0; kv[i]; i += 2)
    ck_assert_msg(herald_conf_set(conf, kv[i], kv[i + 1], err, 300) == 0, "%s",
                  err);
  herald_client_t *c = herald_client_new(conf, err, sizeof(err));
  ck_assert_msg(c != NULL, "%s", err);
  herald_conf_free(conf);
  return c;
}

/* The partitions a case asks for, as the relay would hold them. */
typedef struct {
  const char *kv[9];
  int fn; /* 0: no partition filter */
  uint32_t n;
  uint32_t list[4]; /* nlist of them; none: all */
  size_t nlist;
} tfilter_t;

#define PH HERALD__PARTITION_FUNCTION__PART_HASH
#define PM HERALD__PARTITION_FUNCTION__PART_MOD

static const tfilter_t filters[] = {
    {{"partition.count", "7", "partition.list", "1,3,4", NULL},
     PH,
     7,
     {1, 3, 4},
     3},
    {{"partition.count", "16", "partition.function", "hash", "partition.list",
      "0", NULL},
     PH,
     16,
     {0},
     1},
    {{"partition.count", "16", "partition.function", "mod", "partition.list",
      "0,5,15", NULL},
     PM,
     16,
     {0, 5, 15},
     3},
    /* key_column changes nothing: the relay uses the first key column
     * (and refuses a subscription that names one). */
    {{"partition.count", "7", "partition.function", "mod",
      "partition.key_column", "b", "partition.list", "2,6", NULL},
     PM,
     7,
     {2, 6},
     2},
    {{"partition.count", "3", "partition.function", "mod", NULL},
     PM,
     3,
     {0},
     0},
    {{"partition.count", "1", NULL}, PH, 1, {0}, 0},
    {{"tables", "*.*", NULL}, 0, 0, {0}, 0},
};
#define NFILTERS (sizeof(filters) / sizeof(filters[0]))

/* What the relay decides for the key cols under f: whether its partition
 * is one the consumer asked for. */
static int want_owned(const tfilter_t *f, const tcols_t *cols) {
  if (f->fn == 0)
    return 1;
  hd_key_t k;
  uint8_t *tmp = NULL;
  size_t cap = 0;
  hd_key_of(&k, cols->cp, cols->n, &tmp, &cap);
  free(tmp);
  uint32_t p = hd_partition_of(f->fn, f->n, &k);
  if (f->nlist == 0)
    return p < f->n;
  for (size_t i = 0; i < f->nlist; i++)
    if (f->list[i] == p)
      return 1;
  return 0;
}

/* The change as a client holds it: packed and unpacked again, as it came
 * over the wire (a change handed out is its Herald__RowChange). */
static Herald__RowChange *over_wire(const Herald__RowChange *rc) {
  size_t n = herald__row_change__get_packed_size(rc);
  uint8_t *b = malloc(n ? n : 1);
  herald__row_change__pack(rc, b);
  Herald__RowChange *out = herald__row_change__unpack(NULL, n, b);
  free(b);
  ck_assert_ptr_nonnull(out);
  return out;
}

static int owned(herald_client_t *c, const Herald__RowChange *rc, int image) {
  return herald_change_owned(c, (const herald_change_t *)(const void *)rc,
                             image);
}

/* Every key of the table as a change's key, and as the old key of a move
 * to the key after it, under each filter: herald_change_owned says what
 * hd_partition_of and the filter's list say. */
START_TEST(change_owned_as_relay) {
  for (size_t f = 0; f < NFILTERS; f++) {
    herald_client_t *c = client_with(filters[f].kv);
    size_t hits[2] = {0, 0};
    for (size_t i = 0; i < NKEYS; i++) {
      tcols_t key, old;
      cols_of(&keys[i], &key);
      cols_of(&keys[(i + 1) % NKEYS], &old);
      int wk = want_owned(&filters[f], &key);
      int wo = want_owned(&filters[f], &old);

      Herald__RowChange rc = HERALD__ROW_CHANGE__INIT;
      rc.db = "db";
      rc.table = "t";
      rc.op = HERALD__OP__OP_INSERT;
      rc.key = key.cp;
      rc.n_key = key.n;
      Herald__RowChange *got = over_wire(&rc);
      ck_assert_msg(owned(c, got, HERALD_IMAGE_KEY) == wk, "filter %zu, %s", f,
                    keys[i].what);
      ck_assert_int_eq(owned(c, got, HERALD_IMAGE_OLD_KEY), 0); /* no move */
      herald__row_change__free_unpacked(got, NULL);

      rc.op = HERALD__OP__OP_UPDATE;
      rc.old_key = old.cp;
      rc.n_old_key = old.n;
      got = over_wire(&rc);
      ck_assert_msg(owned(c, got, HERALD_IMAGE_KEY) == wk,
                    "filter %zu, move to %s", f, keys[i].what);
      ck_assert_msg(owned(c, got, HERALD_IMAGE_OLD_KEY) == wo,
                    "filter %zu, move from %s", f, keys[(i + 1) % NKEYS].what);
      herald__row_change__free_unpacked(got, NULL);
      hits[0] += (size_t)wk;
      hits[1] += (size_t)!wk;
    }
    /* A filter of some partitions owns some keys and not others. */
    if (filters[f].fn && filters[f].nlist)
      ck_assert_msg(hits[0] && hits[1], "filter %zu: %zu owned, %zu not", f,
                    hits[0], hits[1]);
    herald_client_free(c);
  }
}
END_TEST

/* A change without a key is in partition 0, as the relay has it. */
START_TEST(change_owned_no_key) {
  Herald__RowChange rc = HERALD__ROW_CHANGE__INIT;
  rc.op = HERALD__OP__OP_INSERT;
  const char *const with0[] = {"partition.count", "4", "partition.list", "0,2",
                               NULL};
  const char *const without0[] = {"partition.count", "4", "partition.list", "1",
                                  NULL};
  herald_client_t *c = client_with(with0);
  ck_assert_int_eq(owned(c, &rc, HERALD_IMAGE_KEY), 1);
  herald_client_free(c);
  c = client_with(without0);
  ck_assert_int_eq(owned(c, &rc, HERALD_IMAGE_KEY), 0);
  ck_assert_int_eq(owned(c, &rc, HERALD_IMAGE_OLD_KEY), 0);
  herald_client_free(c);
}
END_TEST

/* Only the two key images are asked about; NULLs are refused. */
START_TEST(change_owned_bad_args) {
  const char *const kv[] = {"partition.count", "4", NULL};
  const char *const none[] = {NULL};
  tcols_t key;
  cols_of(&keys[1], &key);
  Herald__RowChange rc = HERALD__ROW_CHANGE__INIT;
  rc.op = HERALD__OP__OP_UPDATE;
  rc.key = key.cp;
  rc.n_key = key.n;
  for (int pass = 0; pass < 2; pass++) {
    herald_client_t *c = client_with(pass ? none : kv);
    static const int bad[] = {HERALD_IMAGE_BEFORE, HERALD_IMAGE_AFTER, -1, 4,
                              1000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
      ck_assert_int_eq(owned(c, &rc, bad[i]), HERALD_ERR_ARG);
    ck_assert_int_eq(herald_change_owned(c, NULL, HERALD_IMAGE_KEY),
                     HERALD_ERR_ARG);
    ck_assert_int_eq(owned(c, &rc, HERALD_IMAGE_KEY), 1);
    ck_assert_int_eq(owned(c, &rc, HERALD_IMAGE_OLD_KEY), 0);
    herald_client_free(c);
  }
  ck_assert_int_eq(owned(NULL, &rc, HERALD_IMAGE_KEY), HERALD_ERR_ARG);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("partition key");
  TCase *tc = tcase_create("partkey");
  tcase_add_test(tc, partitions_pinned);
  tcase_add_test(tc, mod_exact);
  tcase_add_test(tc, range_unsigned);
  tcase_add_test(tc, no_key_partition_0);
  tcase_add_test(tc, value_same);
  tcase_add_test(tc, scratch_grows_once);
  suite_add_tcase(s, tc);
  tc = tcase_create("herald_change_owned");
  tcase_add_test(tc, change_owned_as_relay);
  tcase_add_test(tc, change_owned_no_key);
  tcase_add_test(tc, change_owned_bad_args);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
