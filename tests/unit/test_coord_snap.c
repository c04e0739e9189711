/*
 * test_coord_snap.c - a group's snapshot progress as the coordinator
 * computes it (coordinator/coord_snap.h): the checkpoint summary keeps
 * what /status shows and no token; states add up to running, done,
 * cancelled or mixed; the rate counts each partition's new rows once,
 * also across a new snapshot and an unreadable reading; the time left
 * comes from the estimates of the tables being read, shared out over the
 * group's partitions, and is unknown until it can be told.
 */
#include <string.h>

#include "coord_snap.h"
#include "hd_check.h"

static coord_ck_t part(uint32_t state, uint64_t id, uint64_t rows,
                       uint64_t table_rows, uint64_t estimate,
                       uint64_t started) {
  coord_ck_t k;
  memset(&k, 0, sizeof(k));
  k.scn = 100;
  k.snapshot_state = state;
  k.snapshot_id = id;
  k.progress.tables_total = 2;
  k.progress.tables_done = state == HD_CK_SNAPSHOT_DONE ? 2 : 0;
  k.progress.chunks = rows / 10;
  k.progress.rows = rows;
  k.progress.table_rows = table_rows;
  k.progress.table_rows_estimate = estimate;
  k.progress.started_ms = started;
  if (state != HD_CK_SNAPSHOT_RUNNING)
    k.progress.ended_ms = started + 10000;
  return k;
}

START_TEST(keep_summary) {
  static hd_checkpoint_t ck;
  memset(&ck, 0, sizeof(ck));
  ck.scn = 42;
  ck.ts_ms = 7;
  ck.written_ms = 8;
  ck.epoch = 3;
  ck.snapshot_state = HD_CK_SNAPSHOT_RUNNING;
  ck.snapshot_id = 5;
  memset(ck.snapshot, 'a', 100);
  ck.progress.rows = 11;
  ck.progress.table_rows_estimate = 99;
  coord_ck_t k;
  coord_ck_keep(&k, &ck);
  ck_assert_uint_eq(k.scn, 42);
  ck_assert_uint_eq(k.epoch, 3);
  ck_assert_uint_eq(k.snapshot_id, 5);
  ck_assert_uint_eq(k.progress.rows, 11);
  ck_assert_uint_eq(k.progress.table_rows_estimate, 99);
  /* small enough for 65536 partitions: not the token's 8 KiB */
  ck_assert_uint_lt(sizeof(coord_ck_t), 160);
  json_t *j = coord_ck_snap_json(&k);
  ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "running");
  ck_assert_int_eq(json_integer_value(json_object_get(j, "rows")), 11);
  ck_assert(json_is_null(json_object_get(j, "ended_ms")));
  json_decref(j);
  coord_ck_keep(&k, NULL);
  ck_assert_uint_eq(k.scn, 0);
  j = coord_ck_snap_json(&k);
  ck_assert(json_is_null(j));
  json_decref(j);
}
END_TEST

START_TEST(states) {
  coord_snap_t s;
  coord_ck_t ck[4];
  for (int i = 0; i < 4; i++)
    ck[i] = part(HD_CK_SNAPSHOT_NONE, 0, 0, 0, 0, 0);
  ck_assert_int_eq(coord_snap_sum(ck, 4, NULL, &s), 0);
  ck[1] = part(HD_CK_SNAPSHOT_DONE, 3, 500, 1000, 1000, 1000);
  ck[2] = part(HD_CK_SNAPSHOT_DONE, 2, 300, 1000, 1000, 2000);
  ck_assert_int_eq(coord_snap_sum(ck, 4, NULL, &s), 1);
  ck_assert_str_eq(s.state, "done");
  ck_assert_uint_eq(s.done, 2);
  ck_assert_uint_eq(s.running, 0);
  ck_assert_uint_eq(s.request, 3);
  ck_assert_uint_eq(s.rows, 800);
  ck_assert_uint_eq(s.tables_total, 4);
  ck_assert_uint_eq(s.tables_done, 4);
  ck_assert_uint_eq(s.started_ms, 1000);
  ck_assert_uint_eq(s.ended_ms, 12000);
  /* over: the mean rate, first start to last end, and nothing left */
  ck_assert(s.rate_known);
  ck_assert_double_eq_tol(s.rows_per_s, 800.0 / 11.0, 1e-9);
  ck_assert(s.eta_known);
  ck_assert_double_eq(s.eta_s, 0);
  ck[3] = part(HD_CK_SNAPSHOT_CANCELLED, 3, 10, 10, 1000, 1000);
  coord_snap_sum(ck, 4, NULL, &s);
  ck_assert_str_eq(s.state, "mixed");
  ck_assert_uint_eq(s.cancelled, 1);
  ck_assert(!s.eta_known); /* a cancelled one never ends */
  ck[1] = ck[2] = ck[3];
  coord_snap_sum(ck, 4, NULL, &s);
  ck_assert_str_eq(s.state, "cancelled");
  ck[0] = part(HD_CK_SNAPSHOT_RUNNING, 4, 10, 10, 1000, 5000);
  coord_snap_sum(ck, 4, NULL, &s);
  ck_assert_str_eq(s.state, "mixed");
  ck_assert_uint_eq(s.running, 1);
  ck_assert_uint_eq(s.ended_ms, 0); /* one still runs */
  json_t *j = coord_snap_json(&s);
  ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "mixed");
  ck_assert_int_eq(json_integer_value(json_object_get(j, "request")), 4);
  ck_assert(json_is_null(json_object_get(j, "ended_ms")));
  ck_assert(json_is_null(json_object_get(j, "rows_per_s")));
  ck_assert(json_is_null(json_object_get(j, "eta_seconds")));
  json_decref(j);
}
END_TEST

START_TEST(delta) {
  coord_ck_t a = part(HD_CK_SNAPSHOT_RUNNING, 1, 100, 400, 1000, 5000);
  coord_ck_t b = part(HD_CK_SNAPSHOT_RUNNING, 1, 160, 600, 1000, 5000);
  ck_assert_uint_eq(coord_snap_delta(NULL, &b, 0), 0); /* no reading yet */
  ck_assert_uint_eq(coord_snap_delta(&a, &b, 6000), 60);
  ck_assert_uint_eq(coord_snap_delta(&b, &a, 6000), 0); /* never below 0 */
  /* the checkpoint unreadable in between: no rows, and no spike after */
  coord_ck_t none = part(HD_CK_SNAPSHOT_NONE, 0, 0, 0, 0, 0);
  ck_assert_uint_eq(coord_snap_delta(&a, &none, 6000), 0);
  ck_assert_uint_eq(coord_snap_delta(&none, &b, 7000), 0);
  /* a new request since the last reading: all its rows are new */
  coord_ck_t c = part(HD_CK_SNAPSHOT_RUNNING, 2, 30, 90, 1000, 8000);
  ck_assert_uint_eq(coord_snap_delta(&b, &c, 7000), 30);
  /* a finished one read again: nothing */
  coord_ck_t d = part(HD_CK_SNAPSHOT_DONE, 2, 30, 90, 1000, 8000);
  ck_assert_uint_eq(coord_snap_delta(&d, &d, 9000), 0);
  ck_assert_uint_eq(coord_snap_delta(&c, &d, 9000), 0);
}
END_TEST

START_TEST(rate_and_eta) {
  /* 4 partitions, 2 of them snapshotting a table of ~10000 rows: each
   * reads all of it and keeps about a quarter */
  coord_ck_t ck[4];
  for (int i = 0; i < 4; i++)
    ck[i] = part(HD_CK_SNAPSHOT_NONE, 0, 0, 0, 0, 0);
  coord_snap_rate_t r;
  memset(&r, 0, sizeof(r));
  coord_snap_t s;
  ck[0] = part(HD_CK_SNAPSHOT_RUNNING, 1, 0, 0, 0, 1000);
  ck[1] = ck[0];
  ck[1].progress.tables_total = 0; /* no chunk yet */
  coord_snap_push(&r, 1000, 0);
  coord_snap_sum(ck, 4, &r, &s);
  ck_assert(!s.rate_known); /* one reading */
  ck_assert(!s.eta_known);
  uint64_t t = 1000;
  for (int i = 1; i <= 20; i++) {
    coord_ck_t prev[2] = {ck[0], ck[1]};
    for (int p = 0; p < 2; p++) {
      ck[p] = part(HD_CK_SNAPSHOT_RUNNING, 1, (uint64_t)i * 100,
                   (uint64_t)i * 400, 10000, 1000);
    }
    t += 1000;
    uint64_t d = 0;
    for (int p = 0; p < 2; p++)
      d += coord_snap_delta(&prev[p], &ck[p], t - 1000);
    ck_assert_uint_eq(d, 200);
    coord_snap_push(&r, t, d);
  }
  ck_assert_uint_eq(r.n, COORD_SNAP_POINTS);
  ck_assert_uint_eq(coord_snap_last_ms(&r), t);
  coord_snap_sum(ck, 4, &r, &s);
  ck_assert_str_eq(s.state, "running");
  ck_assert(s.rate_known);
  ck_assert_double_eq_tol(s.rows_per_s, 200, 1e-9);
  /* 2 x (10000 - 8000) source rows left, a quarter of them each */
  ck_assert_double_eq_tol(s.rows_left, 1000, 1e-9);
  ck_assert(s.eta_known);
  ck_assert_double_eq_tol(s.eta_s, 5, 1e-9);
  /* a stop: the rate falls to 0 over the readings, the time left is
   * unknown then */
  for (int i = 0; i < COORD_SNAP_POINTS; i++)
    coord_snap_push(&r, t += 1000, 0);
  coord_snap_sum(ck, 4, &r, &s);
  ck_assert(s.rate_known);
  ck_assert_double_eq(s.rows_per_s, 0);
  ck_assert(!s.eta_known);
  /* past the estimate (estimates are rough): any moment */
  ck[0].progress.table_rows = ck[1].progress.table_rows = 12000;
  coord_snap_sum(ck, 4, &r, &s);
  ck_assert(s.eta_known);
  ck_assert_double_eq(s.eta_s, 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("coord_snap");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, keep_summary);
  tcase_add_test(tc, states);
  tcase_add_test(tc, delta);
  tcase_add_test(tc, rate_and_eta);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
