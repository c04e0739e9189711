/*
 * coord_snap.h - what the coordinator keeps of each partition's
 * checkpoint (a small summary, not the node's whole data), and a group's
 * snapshot progress computed from those summaries: how many partitions
 * run, finished or cancelled a snapshot, the rows delivered, the rate
 * between the leader's readings and the time left
 * (docs/coordinator.md, "Snapshots").
 *
 * Pure: no ZooKeeper, no clock, no lock; the loop (coord_lag.c) feeds it
 * the readings it makes and renders /status and /metrics from the result.
 */
#ifndef COORD_SNAP_H
#define COORD_SNAP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hd_group.h"

/* One partition's checkpoint as the coordinator keeps it between
 * readings. The node's snapshot position token (up to 8 KiB) and table
 * patterns are not kept: nothing the coordinator shows needs them, and
 * a whole hd_checkpoint_t per partition is ~10 KiB (640 MiB for a group
 * of 65536 partitions). */
typedef struct {
  uint64_t scn, ts_ms, written_ms, epoch;
  uint64_t snapshot_id;      /* the request it answers; 0: agent.start */
  hd_ck_progress_t progress; /* meaningful when snapshot_state is set */
  uint32_t snapshot_state;   /* HD_CK_SNAPSHOT_* */
} coord_ck_t;

/** @brief The summary of a parsed checkpoint (ck NULL: none, all 0). */
void coord_ck_keep(coord_ck_t *k, const hd_checkpoint_t *ck);

/**
 * @brief The partition's snapshot fields of /status ("snapshot" of its
 *        lag entry): state, request and the progress figures; of a done
 *        one only state, request, rows and ended_ms.
 * @returns a new object, or a JSON null when it has no snapshot state.
 */
json_t *coord_ck_snap_json(const coord_ck_t *k);

/* The readings a group's snapshot rate is computed over: the snapshot
 * rows its partitions delivered, added up reading by reading, at the
 * leader's clock. */
#define COORD_SNAP_POINTS 11 /* 10 intervals: 10 s at lag_interval 1s */
typedef struct {
  uint64_t rows; /* delivered since the first reading, every partition */
  size_t n, head;
  struct {
    uint64_t t_ms, rows;
  } pts[COORD_SNAP_POINTS];
} coord_snap_rate_t;

/**
 * @brief The snapshot rows partition cur delivered since its reading
 *        prev, taken at the leader's clock prev_ms: the rows' increase
 *        while the same snapshot runs (same request, same start); all of
 *        a snapshot's rows when it was asked for after prev_ms; 0 when
 *        there is no earlier reading (prev NULL), no snapshot, or one
 *        that was not seen begin (its rows are not this interval's).
 */
uint64_t coord_snap_delta(const coord_ck_t *prev, const coord_ck_t *cur,
                          uint64_t prev_ms);

/** @brief One reading at now_ms, rows delivered since the last one. */
void coord_snap_push(coord_snap_rate_t *r, uint64_t now_ms, uint64_t rows);

/** @brief The newest reading's time, 0 when none. */
uint64_t coord_snap_last_ms(const coord_snap_rate_t *r);

/* A group's snapshot, from its partitions' summaries. */
typedef struct {
  uint32_t running, done, cancelled; /* partitions in each state */
  const char *state; /* "running", "done", "cancelled", or "mixed" */
  uint64_t request;  /* the highest snapshot_id */
  uint64_t rows, chunks, tables_total, tables_done; /* summed */
  /* Rows still to deliver in the tables being read, estimated: over the
   * running partitions, the source's estimate of the table left, divided
   * by the group's partitions (each partition reads the whole table and
   * keeps its share). Tables not started count nothing. */
  double rows_left;
  uint64_t started_ms; /* the earliest partition's start */
  uint64_t ended_ms;   /* the latest end, when none runs; else 0 */
  int rate_known;
  double rows_per_s; /* between readings while one runs; else the mean */
  int eta_known;
  double eta_s;
} coord_snap_t;

/**
 * @brief The group's snapshot from its n partitions' summaries ck and its
 *        readings r (NULL: no rate).
 * @returns 1 with *s filled when a partition has a snapshot state, else 0.
 */
int coord_snap_sum(const coord_ck_t *ck, uint32_t n, const coord_snap_rate_t *r,
                   coord_snap_t *s);

/** @brief The group's "snapshot" object of /status. New reference. */
json_t *coord_snap_json(const coord_snap_t *s);

#endif
