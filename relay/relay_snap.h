/*
 * relay_snap.h - snapshots on the relay: the chunks of table rows that
 * consumers asked for in Subscribe.snapshot, read from the source once and
 * merged into each consumer's stream (docs/snapshots.md).
 *
 * A chunk is read by relay_snapread.h in one short consistent-snapshot
 * transaction, at a known SCN W. It is kept in a cache keyed by (table,
 * the key it starts after, rows), so that every consumer of a group that
 * asks for the same chunk (one connection per partition) is served the
 * same rows: the source reads each row once per snapshot, however many
 * partitions there are. While a chunk is kept, every window the relay
 * captures after W is looked at: a chunk row whose key such a window
 * changes (or whose table a statement changes) is marked with that
 * window's SCN. A consumer at position P >= W gets the chunk as a
 * snapshot window at P without the rows changed in (W, P]: the stream
 * has given it those keys' newer state already. What is left is the
 * state at P, so a snapshot row never overwrites a newer change.
 *
 * Threads: everything here runs on the loop thread but the reads, which
 * run on libuv's worker threads with source connections of their own.
 */
#ifndef RELAY_SNAP_H
#define RELAY_SNAP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hd_confdefs.h"
#include "herald.pb-c.h"
#include "relay_metrics.h"
#include "relay_ring.h"
#include "relay_window.h"

struct relay_schemas;
typedef struct relay_snap relay_snap_t;
typedef struct relay_snapsub relay_snapsub_t;

typedef struct {
  uv_loop_t *loop;
  const hd_relay_conf_t *conf;
  const char *password;
  relay_ring_t *ring; /* to find the changes captured before a chunk is
                         ready */
  struct relay_schemas *schemas;
  relay_metrics_t *m;
} relay_snap_opts_t;

/** @brief The snapshot service. @locality loop thread */
relay_snap_t *relay_snap_new(const relay_snap_opts_t *o);

/** @brief Free it once the reads under way have finished and the last
 *         subscription is gone (connections may close after this). */
void relay_snap_free(relay_snap_t *s);

/**
 * @brief Look at a captured window before the ring takes it: marks the
 *        rows of kept chunks it changes.
 * @locality loop thread
 */
void relay_snap_on_window(relay_snap_t *s, const relay_win_t *w);

/**
 * @brief The source had nothing after the windows looked at so far up to
 *        scn (a heartbeat of an idle source): a chunk as of a position up
 *        to scn is as of the newest window too.
 * @locality loop thread
 */
void relay_snap_on_idle(relay_snap_t *s, uint64_t scn);

/**
 * @brief A consumer's snapshot. tables are its Subscribe.tables (a table
 *        must match them too); start_scn is where its stream begins (it
 *        is sent every window after it). wake(ud) is called when the
 *        consumer may have something to send (a chunk was read).
 * @returns the subscription, or NULL with err filled (a bad request).
 */
relay_snapsub_t *relay_snap_subscribe(relay_snap_t *s,
                                      const Herald__SnapshotRequest *req,
                                      char *const *tables, size_t ntables,
                                      uint64_t start_scn, const char *client,
                                      void (*wake)(void *ud), void *ud,
                                      char *err, size_t errlen);

void relay_snap_unsubscribe(relay_snapsub_t *ss);

/* A chunk to send at position scn. */
typedef struct {
  relay_win_t *w;          /* a reference, for the caller to release */
  const uint64_t *changed; /* per row of w: the SCN that changed it, 0 */
  uint64_t scn;            /* the consumer's position */
  uint8_t *hdr;            /* Window fields to add: scn and snapshot */
  size_t hdr_len;          /*   (malloc'd, the caller frees) */
} relay_snap_send_t;

enum {
  RELAY_SNAP_WAIT = 0, /* nothing now; wake() says when */
  RELAY_SNAP_SEND,     /* *out is the next chunk (the position moves on) */
  RELAY_SNAP_DONE,     /* the snapshot is over: unsubscribe */
  RELAY_SNAP_FAIL      /* it cannot go on: *code and err say why */
};

/**
 * @brief What the consumer at position scn (whole windows only) does now.
 * @returns a RELAY_SNAP_* value.
 */
int relay_snap_next(relay_snapsub_t *ss, uint64_t scn, relay_snap_send_t *out,
                    int *code, char *err, size_t errlen);

/** @brief Whether a row of a chunk is left out at the consumer's position:
 *         its key was changed by a window at or before it. */
static inline int relay_snap_dropped(const relay_snap_send_t *x, uint32_t i) {
  return x->changed && x->changed[i] && x->changed[i] <= x->scn;
}

#endif
