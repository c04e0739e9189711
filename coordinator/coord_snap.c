/*
 * coord_snap.c - the partitions' checkpoint summaries and the groups'
 * snapshot progress (coord_snap.h).
 *
 * The rate is the snapshot rows the group's partitions delivered over the
 * last COORD_SNAP_POINTS readings. Agents checkpoint every
 * agent.checkpoint_interval, not at the leader's readings, so the rows
 * between two readings come in steps; ten intervals smooth them. Each
 * partition's rows are added up as differences between its readings
 * rather than summed afresh, so that a partition starting a new snapshot
 * (its counts begin at 0 again) or one checkpoint that did not parse does
 * not turn the group's rate negative or into a spike.
 */
#include "coord_snap.h"

#include <string.h>

void coord_ck_keep(coord_ck_t *k, const hd_checkpoint_t *ck) {
  memset(k, 0, sizeof(*k));
  if (ck == NULL)
    return;
  k->scn = ck->scn;
  k->ts_ms = ck->ts_ms;
  k->written_ms = ck->written_ms;
  k->epoch = ck->epoch;
  k->snapshot_state = ck->snapshot_state;
  if (ck->snapshot_state != HD_CK_SNAPSHOT_NONE) {
    k->snapshot_id = ck->snapshot_id;
    k->progress = ck->progress;
  }
}

json_t *coord_ck_snap_json(const coord_ck_t *k) {
  if (k->snapshot_state == HD_CK_SNAPSHOT_NONE)
    return json_null();
  const hd_ck_progress_t *g = &k->progress;
  /* A finished snapshot's counts stay in the checkpoint until the next
   * one: once a large group is done, every partition would carry ten
   * figures that the group's summary already adds up (at 65536
   * partitions the whole objects took the coordinator ~180 MB). */
  if (k->snapshot_state == HD_CK_SNAPSHOT_DONE)
    return json_pack(
        "{s:s, s:I, s:I, s:o}", "state", "done", "request",
        (json_int_t)k->snapshot_id, "rows", (json_int_t)g->rows, "ended_ms",
        g->ended_ms ? json_integer((json_int_t)g->ended_ms) : json_null());
  return json_pack(
      "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "state",
      hd_ck_snapshot_state_name(k->snapshot_state), "request",
      (json_int_t)k->snapshot_id, "tables_total", (json_int_t)g->tables_total,
      "tables_done", (json_int_t)g->tables_done, "chunks",
      (json_int_t)g->chunks, "rows", (json_int_t)g->rows, "table_rows",
      (json_int_t)g->table_rows, "table_rows_estimate",
      (json_int_t)g->table_rows_estimate, "started_ms",
      (json_int_t)g->started_ms, "ended_ms",
      g->ended_ms ? json_integer((json_int_t)g->ended_ms) : json_null());
}

uint64_t coord_snap_delta(const coord_ck_t *prev, const coord_ck_t *cur,
                          uint64_t prev_ms) {
  if (prev == NULL || cur->snapshot_state == HD_CK_SNAPSHOT_NONE)
    return 0;
  const hd_ck_progress_t *a = &prev->progress, *b = &cur->progress;
  if (prev->snapshot_state != HD_CK_SNAPSHOT_NONE &&
      prev->snapshot_id == cur->snapshot_id && a->started_ms == b->started_ms)
    return b->rows > a->rows ? b->rows - a->rows : 0;
  /* Another snapshot than the one read before: its rows are this
   * interval's only if it began after that reading (the agent's clock
   * against ours: a skew only misplaces one interval's rows). */
  return b->started_ms >= prev_ms ? b->rows : 0;
}

void coord_snap_push(coord_snap_rate_t *r, uint64_t now_ms, uint64_t rows) {
  r->rows += rows;
  r->pts[r->head].t_ms = now_ms;
  r->pts[r->head].rows = r->rows;
  r->head = (r->head + 1) % COORD_SNAP_POINTS;
  if (r->n < COORD_SNAP_POINTS)
    r->n++;
}

uint64_t coord_snap_last_ms(const coord_snap_rate_t *r) {
  if (r->n == 0)
    return 0;
  return r->pts[(r->head + COORD_SNAP_POINTS - 1) % COORD_SNAP_POINTS].t_ms;
}

/* Rows per second over the readings kept; 0 when fewer than two. */
static int rate_of(const coord_snap_rate_t *r, double *rate) {
  if (r == NULL || r->n < 2)
    return 0;
  size_t last = (r->head + COORD_SNAP_POINTS - 1) % COORD_SNAP_POINTS;
  size_t first = (r->head + COORD_SNAP_POINTS - r->n) % COORD_SNAP_POINTS;
  uint64_t t0 = r->pts[first].t_ms, t1 = r->pts[last].t_ms;
  if (t1 <= t0)
    return 0;
  *rate = (double)(r->pts[last].rows - r->pts[first].rows) * 1000.0 /
          (double)(t1 - t0);
  return 1;
}

int coord_snap_sum(const coord_ck_t *ck, uint32_t n, const coord_snap_rate_t *r,
                   coord_snap_t *s) {
  memset(s, 0, sizeof(*s));
  uint32_t with = 0, first_state = HD_CK_SNAPSHOT_NONE;
  int same = 1, unstarted = 0;
  double left = 0;
  for (uint32_t p = 0; p < n; p++) {
    const coord_ck_t *k = &ck[p];
    if (k->snapshot_state == HD_CK_SNAPSHOT_NONE)
      continue;
    const hd_ck_progress_t *g = &k->progress;
    if (with++ == 0)
      first_state = k->snapshot_state;
    else if (k->snapshot_state != first_state)
      same = 0;
    if (k->snapshot_id > s->request)
      s->request = k->snapshot_id;
    s->rows += g->rows;
    s->chunks += g->chunks;
    s->tables_total += g->tables_total;
    s->tables_done += g->tables_done;
    if (g->started_ms && (s->started_ms == 0 || g->started_ms < s->started_ms))
      s->started_ms = g->started_ms;
    if (g->ended_ms > s->ended_ms)
      s->ended_ms = g->ended_ms;
    switch (k->snapshot_state) {
    case HD_CK_SNAPSHOT_RUNNING:
      s->running++;
      unstarted += g->tables_total == 0; /* no chunk yet: nothing known */
      if (g->table_rows_estimate > g->table_rows)
        left += (double)(g->table_rows_estimate - g->table_rows);
      break;
    case HD_CK_SNAPSHOT_DONE:
      s->done++;
      break;
    default:
      s->cancelled++;
      break;
    }
  }
  if (with == 0)
    return 0;
  s->state = !same ? "mixed" : hd_ck_snapshot_state_name(first_state);
  /* Partitioning spreads a table's keys over all n partitions and each
   * running partition reads the whole table: of the source's rows it has
   * still to read, about 1/n reach it. */
  s->rows_left = left / (double)n;
  if (s->running) {
    s->ended_ms = 0;
    s->rate_known = rate_of(r, &s->rows_per_s);
    if (unstarted) {
      /* eta unknown */
    } else if (s->rows_left <= 0) {
      s->eta_known = 1; /* the estimates are used up: any moment */
      s->eta_s = 0;
    } else if (s->rate_known && s->rows_per_s > 0) {
      s->eta_known = 1;
      s->eta_s = s->rows_left / s->rows_per_s;
    }
  } else {
    /* Over: the mean rate of the whole snapshot, first start to last
     * end (the readings' rate would only say that nothing moves now). */
    if (s->started_ms && s->ended_ms > s->started_ms) {
      s->rate_known = 1;
      s->rows_per_s =
          (double)s->rows * 1000.0 / (double)(s->ended_ms - s->started_ms);
    }
    if (s->cancelled == 0) {
      s->eta_known = 1;
      s->eta_s = 0;
    }
  }
  return 1;
}

json_t *coord_snap_json(const coord_snap_t *s) {
  return json_pack(
      "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:o, s:o, "
      "s:o}",
      "state", s->state, "partitions_running", (json_int_t)s->running,
      "partitions_done", (json_int_t)s->done, "partitions_cancelled",
      (json_int_t)s->cancelled, "request", (json_int_t)s->request, "rows",
      (json_int_t)s->rows, "chunks", (json_int_t)s->chunks, "tables_total",
      (json_int_t)s->tables_total, "tables_done", (json_int_t)s->tables_done,
      "rows_left_estimate", s->rows_left, "started_ms",
      (json_int_t)s->started_ms, "ended_ms",
      s->ended_ms ? json_integer((json_int_t)s->ended_ms) : json_null(),
      "rows_per_s", s->rate_known ? json_real(s->rows_per_s) : json_null(),
      "eta_seconds", s->eta_known ? json_real(s->eta_s) : json_null());
}
