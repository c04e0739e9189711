/*
 * hd_lag.h - a consumer group's lag, as pure functions of what ZooKeeper
 * holds: the relays' registrations of the group's source and each
 * partition's checkpoint, and a partition's status judged over a window
 * of such readings. The coordinator leader samples and keeps the windows
 * (coordinator/coord_zk.c); docs/coordinator.md ("Lag") is the contract.
 *
 * SCNs are (binlog file index << 32) | offset: two SCNs are compared, and
 * subtracted only when they are of one file. Lag in time is the relays'
 * newest commit time minus the checkpoint's, never an SCN difference.
 *
 * No ZooKeeper handle, no clock, no I/O: any thread.
 */
#ifndef HD_LAG_H
#define HD_LAG_H

#include <stddef.h>
#include <stdint.h>

#include "hd_reg.h"

/* Worst last; the numbers are what /metrics exports. */
typedef enum {
  HD_LAG_OK = 0,
  HD_LAG_WARN = 1,    /* behind, and the lag is not going down */
  HD_LAG_STALL = 2,   /* behind, checkpoint written but not moving */
  HD_LAG_STOP = 3,    /* behind, checkpoint not written at all */
  HD_LAG_UNOWNED = 4, /* no live holder */
} hd_lag_status_t;

/** @brief "OK", "WARN", "STALL", "STOP", "UNOWNED". */
const char *hd_lag_status_name(hd_lag_status_t s);

/* The relays of one source, as the lag sees them. */
typedef struct {
  size_t relays;         /* registrations used */
  uint64_t server_id;    /* their source_server_id */
  uint64_t newest_scn;   /* the highest newest_scn */
  uint64_t newest_ts_ms; /* the commit time of that window (0: unknown) */
  uint64_t oldest_scn;   /* the lowest non-zero oldest_scn (0: none) */
} hd_lag_source_t;

/**
 * @brief Summarise the registrations of source among regs.
 *
 * Only relays with one source_server_id count: SCNs of different servers
 * mean different things. When relays of the source disagree (a fail-over
 * of the source, a relay reading a replica), the server of the most
 * recently updated registration is taken. Relays that have never reached
 * their source (server id 0) are left out.
 * @returns the number of relays used (also out->relays).
 */
size_t hd_lag_source(const hd_reg_t *regs, size_t n, const char *source,
                     hd_lag_source_t *out);

/* One partition's figures at one reading. */
typedef struct {
  int behind;     /* checkpoint below the relays' newest SCN */
  int lag_known;  /* lag_s is meaningful */
  double lag_s;   /* 0 when not behind */
  int lead_known; /* lead_files (and maybe lead_bytes) meaningful */
  int64_t lead_files;
  int lead_bytes_known; /* the checkpoint and oldest SCN are of one file */
  int64_t lead_bytes;
  int out_of_retention; /* below every relay's oldest SCN */
} hd_lag_point_t;

/**
 * @brief A partition's figures from its checkpoint (scn 0: no position
 *        yet; ts_ms 0: commit time unknown) and its source's relays.
 *
 * Not behind once the checkpoint has reached the relays' newest SCN
 * (relays' heartbeats move a quiet or filtered partition's checkpoint up
 * to it). Behind: lag = relays' newest commit time - the checkpoint's,
 * at least 0, unknown when either is. lead: how far the checkpoint is
 * above the relays' oldest SCN, in binlog files, and in bytes when both
 * are of one file; a checkpoint below it is out of retention (the
 * relays would answer ERR_SCN_TOO_OLD).
 */
void hd_lag_measure(const hd_lag_source_t *src, uint64_t scn, uint64_t ts_ms,
                    hd_lag_point_t *out);

/* One reading of a partition, as the window keeps it. */
typedef struct {
  uint64_t t_ms;    /* when it was read (the reader's clock) */
  uint64_t scn;     /* the checkpoint's */
  int64_t zversion; /* the checkpoint znode's version; -1 no node */
  uint64_t epoch;   /* the checkpoint's: the grant its writer acts on */
  int owned;        /* owners/<p> exists */
  int behind;
  int lag_known;
  double lag_s;
} hd_lag_sample_t;

/**
 * @brief The partition's status from its last n readings, oldest first,
 *        judged over window readings.
 *
 *  - UNOWNED: the newest reading has no holder;
 *  - OK: the newest reading is not behind, or fewer than window readings
 *    of the newest reading's epoch exist (too early to judge: a new
 *    holder has just claimed the checkpoint, which writes it unchanged);
 *  - STOP: behind, and the checkpoint node was not written over the whole
 *    window (same znode version): the holder has stopped acting;
 *  - STALL: behind in every reading of the window, and the SCN the same
 *    in all of them (the holder writes it, unchanged: it is alive but
 *    cannot move);
 *  - WARN: behind in every reading, and at the readings where the
 *    checkpoint had moved (the first of the window counts as one), at
 *    least 3, the lag known, never lower than at the one before, and
 *    at least 2 s higher at the last than at the first (commit times
 *    have whole seconds: less is noise): the holder moves, but falls
 *    further behind with every checkpoint (between two checkpoints the
 *    lag grows by itself, and is not looked at);
 *  - OK otherwise.
 */
hd_lag_status_t hd_lag_judge(const hd_lag_sample_t *w, size_t n, size_t window);

#endif
