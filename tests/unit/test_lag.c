/*
 * test_lag.c - lag and partition status (hd_lag.h): which relays count,
 * lag in time never from SCN arithmetic, lead within a file and across
 * files, out of retention, and each status from a window of readings:
 * caught up, idle, lagging, stalled, stopped, unowned, too early.
 */
#include <string.h>

#include "hd_check.h"
#include "hd_lag.h"

#define SCN(file, off) (((uint64_t)(file) << 32) | (uint64_t)(off))

static hd_reg_t reg(const char *id, const char *source, uint64_t server,
                    uint64_t oldest, uint64_t newest, uint64_t ts,
                    uint64_t updated) {
  hd_reg_t r;
  memset(&r, 0, sizeof(r));
  strcpy(r.id, id);
  strcpy(r.source, source);
  r.source_server_id = server;
  r.oldest_scn = oldest;
  r.newest_scn = newest;
  r.newest_ts_ms = ts;
  r.updated_ms = updated;
  r.connected = 1;
  return r;
}

START_TEST(source_summary) {
  hd_reg_t regs[5] = {
      reg("r1", "shop", 7, SCN(3, 100), SCN(5, 900), 5000, 1000),
      reg("r2", "shop", 7, SCN(2, 400), SCN(5, 800), 4900, 1001),
      /* another source */
      reg("r3", "crm", 7, SCN(1, 4), SCN(9, 9), 9999, 1002),
      /* never reached its source */
      reg("r4", "shop", 0, 0, 0, 0, 2000),
      /* a replica's relay, older registration: another server's SCNs */
      reg("r5", "shop", 8, SCN(1, 4), SCN(9, 9), 9999, 10),
  };
  hd_lag_source_t s;
  ck_assert_uint_eq(hd_lag_source(regs, 5, "shop", &s), 2);
  ck_assert_uint_eq(s.server_id, 7);
  ck_assert_uint_eq(s.newest_scn, SCN(5, 900));
  ck_assert_uint_eq(s.newest_ts_ms, 5000);
  ck_assert_uint_eq(s.oldest_scn, SCN(2, 400));
  /* The most recently updated server wins when they disagree. */
  regs[4].updated_ms = 5000;
  ck_assert_uint_eq(hd_lag_source(regs, 5, "shop", &s), 1);
  ck_assert_uint_eq(s.server_id, 8);
  ck_assert_uint_eq(hd_lag_source(regs, 5, "none", &s), 0);
  ck_assert_uint_eq(s.relays, 0);
}
END_TEST

START_TEST(measure) {
  hd_lag_source_t s = {.relays = 2,
                       .server_id = 7,
                       .newest_scn = SCN(5, 900),
                       .newest_ts_ms = 60000,
                       .oldest_scn = SCN(3, 100)};
  hd_lag_point_t p;
  /* Caught up: lag 0 whatever the commit times say. */
  hd_lag_measure(&s, SCN(5, 900), 1000, &p);
  ck_assert(!p.behind && p.lag_known);
  ck_assert(p.lag_s == 0.0);
  ck_assert(p.lead_known && p.lead_files == 2 && !p.lead_bytes_known);
  /* Behind in another file: seconds from commit times only. */
  hd_lag_measure(&s, SCN(4, 0xffffff00u), 57500, &p);
  ck_assert(p.behind && p.lag_known);
  ck_assert(p.lag_s == 2.5);
  ck_assert_int_eq(p.lead_files, 1);
  ck_assert(!p.out_of_retention);
  /* Same file as the oldest: bytes too. */
  hd_lag_measure(&s, SCN(3, 164), 1000, &p);
  ck_assert(p.lead_bytes_known && p.lead_files == 0 && p.lead_bytes == 64);
  /* Below every relay's oldest. */
  hd_lag_measure(&s, SCN(3, 50), 1000, &p);
  ck_assert(p.out_of_retention && p.lead_bytes == -50);
  hd_lag_measure(&s, SCN(1, 50), 1000, &p);
  ck_assert(p.out_of_retention && p.lead_files == -2 && !p.lead_bytes_known);
  ck_assert(p.lag_s == 59.0);
  /* No commit time on the checkpoint (set by hand): lag unknown. */
  hd_lag_measure(&s, SCN(4, 1), 0, &p);
  ck_assert(p.behind && !p.lag_known);
  /* No position yet: behind, nothing known. */
  hd_lag_measure(&s, 0, 0, &p);
  ck_assert(p.behind && !p.lag_known && !p.lead_known);
  /* A commit time after the newest (clocks): never negative. */
  hd_lag_measure(&s, SCN(5, 1), 61000, &p);
  ck_assert(p.lag_known && p.lag_s == 0.0 && p.behind);
  /* No relay: nothing known, not behind. */
  hd_lag_source_t none = {0};
  hd_lag_measure(&none, SCN(5, 1), 61000, &p);
  ck_assert(!p.behind && !p.lag_known && !p.lead_known);
}
END_TEST

/* A window of n readings: scn, version, behind, lag, one per second. */
typedef struct {
  uint64_t scn;
  int64_t ver;
  int behind;
  double lag;
} r_t;

static hd_lag_status_t judge(const r_t *r, size_t n, size_t window, int owned) {
  hd_lag_sample_t w[32];
  for (size_t i = 0; i < n; i++) {
    w[i] = (hd_lag_sample_t){.t_ms = 1000 * i,
                             .scn = r[i].scn,
                             .zversion = r[i].ver,
                             .owned = owned,
                             .behind = r[i].behind,
                             .lag_known = r[i].lag >= 0,
                             .lag_s = r[i].lag};
  }
  return hd_lag_judge(w, n, window);
}

START_TEST(statuses) {
  /* Caught up at every reading (a steady stream): OK. */
  const r_t caught[4] = {
      {10, 1, 0, 0}, {20, 2, 0, 0}, {30, 3, 0, 0}, {40, 4, 0, 0}};
  ck_assert_int_eq(judge(caught, 4, 4, 1), HD_LAG_OK);
  /* Idle: nothing written, nothing to do: OK. */
  const r_t idle[4] = {
      {10, 1, 0, 0}, {10, 1, 0, 0}, {10, 1, 0, 0}, {10, 1, 0, 0}};
  ck_assert_int_eq(judge(idle, 4, 4, 1), HD_LAG_OK);
  /* Behind but catching up (lag goes down at times): OK. */
  const r_t catching[4] = {
      {10, 1, 1, 5}, {20, 2, 1, 6}, {30, 3, 1, 4}, {40, 4, 1, 4.5}};
  ck_assert_int_eq(judge(catching, 4, 4, 1), HD_LAG_OK);
  /* Lagging more at every reading, though moving: WARN. */
  const r_t lagging[4] = {
      {10, 1, 1, 1}, {20, 2, 1, 2}, {30, 3, 1, 2}, {40, 4, 1, 3}};
  ck_assert_int_eq(judge(lagging, 4, 4, 1), HD_LAG_WARN);
  /* Between checkpoints the lag grows by itself: only the readings where
   * the checkpoint moved count. A steady saw is OK, a rising one WARN. */
  const r_t saw[5] = {{10, 1, 1, 1},
                      {10, 1, 1, 2},
                      {20, 2, 1, 1},
                      {20, 2, 1, 2},
                      {30, 3, 1, 1}};
  ck_assert_int_eq(judge(saw, 5, 5, 1), HD_LAG_OK);
  const r_t rising[5] = {{10, 1, 1, 1},
                         {10, 1, 1, 2},
                         {20, 2, 1, 2.5},
                         {20, 2, 1, 3},
                         {30, 3, 1, 3.5}};
  ck_assert_int_eq(judge(rising, 5, 5, 1), HD_LAG_WARN);
  /* Whole-second commit times: a partition in step reads 0 or 1 s. */
  const r_t step[4] = {
      {10, 1, 1, 0}, {20, 2, 1, 1}, {30, 3, 1, 1}, {40, 4, 1, 1}};
  ck_assert_int_eq(judge(step, 4, 4, 1), HD_LAG_OK);
  /* Two moves are too few to call a trend. */
  const r_t two[4] = {
      {10, 1, 1, 1}, {10, 1, 1, 2}, {10, 1, 1, 3}, {20, 2, 1, 4}};
  ck_assert_int_eq(judge(two, 4, 4, 1), HD_LAG_OK);
  /* The same lag throughout is not WARN: it must grow. */
  const r_t flat[4] = {
      {10, 1, 1, 2}, {20, 2, 1, 2}, {30, 3, 1, 2}, {40, 4, 1, 2}};
  ck_assert_int_eq(judge(flat, 4, 4, 1), HD_LAG_OK);
  /* Written (heartbeats), not moving, behind: STALL. */
  const r_t stalled[4] = {
      {10, 1, 1, 1}, {10, 1, 1, 2}, {10, 2, 1, 3}, {10, 2, 1, 4}};
  ck_assert_int_eq(judge(stalled, 4, 4, 1), HD_LAG_STALL);
  /* Not written at all over the window, behind now: STOP. */
  const r_t stopped[4] = {
      {10, 1, 0, 0}, {10, 1, 1, 1}, {10, 1, 1, 2}, {10, 1, 1, 3}};
  ck_assert_int_eq(judge(stopped, 4, 4, 1), HD_LAG_STOP);
  /* Only the last window counts: a stop long ago is over. */
  const r_t recovered[6] = {{10, 1, 1, 1}, {10, 1, 1, 2}, {10, 1, 1, 3},
                            {20, 2, 1, 2}, {30, 3, 1, 1}, {40, 4, 1, 0.5}};
  ck_assert_int_eq(judge(recovered, 6, 4, 1), HD_LAG_OK);
  ck_assert_int_eq(judge(recovered, 3, 3, 1), HD_LAG_STOP);
  /* A new holder claims the checkpoint (a write, the same SCN, a new
   * epoch): too early to judge it, not STALL. */
  {
    hd_lag_sample_t w[6];
    for (int i = 0; i < 6; i++)
      w[i] = (hd_lag_sample_t){.t_ms = 1000 * (uint64_t)i,
                               .scn = 10,
                               .zversion = i < 4 ? 1 : 2,
                               .epoch = i < 4 ? 1 : 2,
                               .owned = 1,
                               .behind = 1,
                               .lag_known = 1,
                               .lag_s = i};
    ck_assert_int_eq(hd_lag_judge(w, 4, 4), HD_LAG_STOP); /* the old one */
    ck_assert_int_eq(hd_lag_judge(w, 6, 4), HD_LAG_OK);
  }
  /* Unknown lag (a checkpoint set by hand) is never WARN. */
  const r_t unknown[4] = {
      {10, 1, 1, -1}, {20, 2, 1, -1}, {30, 3, 1, -1}, {40, 4, 1, -1}};
  ck_assert_int_eq(judge(unknown, 4, 4, 1), HD_LAG_OK);
  /* Too few readings to judge: OK, unless no one holds it. */
  ck_assert_int_eq(judge(stopped, 3, 4, 1), HD_LAG_OK);
  ck_assert_int_eq(judge(stopped, 3, 4, 0), HD_LAG_UNOWNED);
  ck_assert_int_eq(judge(caught, 4, 4, 0), HD_LAG_UNOWNED);
  ck_assert_int_eq(judge(caught, 0, 4, 1), HD_LAG_OK);
}
END_TEST

START_TEST(names) {
  ck_assert_str_eq(hd_lag_status_name(HD_LAG_OK), "OK");
  ck_assert_str_eq(hd_lag_status_name(HD_LAG_WARN), "WARN");
  ck_assert_str_eq(hd_lag_status_name(HD_LAG_STALL), "STALL");
  ck_assert_str_eq(hd_lag_status_name(HD_LAG_STOP), "STOP");
  ck_assert_str_eq(hd_lag_status_name(HD_LAG_UNOWNED), "UNOWNED");
  ck_assert_str_eq(hd_lag_status_name((hd_lag_status_t)9), "?");
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("lag");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, source_summary);
  tcase_add_test(tc, measure);
  tcase_add_test(tc, statuses);
  tcase_add_test(tc, names);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
