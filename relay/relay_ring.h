/*
 * relay_ring.h - the bounded memory ring of encoded windows.
 *
 * Windows enter in SCN order and get consecutive sequence numbers; a
 * consumer's cursor is the sequence number of the next window it needs,
 * so appends and evictions never move it. The ring holds one reference to
 * each window and evicts the oldest when the windows' memory exceeds the
 * budget (relay.buffer_bytes). Connections take their own references to
 * what they are writing, so eviction never frees bytes still in flight and
 * no window is copied per consumer.
 */
#ifndef RELAY_RING_H
#define RELAY_RING_H

#include <stddef.h>
#include <stdint.h>

#include "relay_window.h"

typedef struct {
  relay_win_t **v; /* circular, cap entries */
  size_t cap;
  uint64_t first; /* sequence number of the oldest window held */
  uint64_t end;   /* sequence number the next window gets */
  uint64_t bytes; /* memory of the windows held */
  uint64_t max_bytes;
  uint64_t prev_scn; /* SCN of the last window before `first`: the ring
                        answers for every after_scn >= prev_scn */
} relay_ring_t;

/** @brief prev_scn: the newest SCN that is not in the ring (the log
 *         store's newest at start-up, 0 for an empty store). */
void relay_ring_init(relay_ring_t *r, uint64_t max_bytes, uint64_t prev_scn);

/** @brief Release every window. */
void relay_ring_free(relay_ring_t *r);

/** @brief Append (the ring takes the caller's reference) and evict. */
void relay_ring_push(relay_ring_t *r, relay_win_t *w);

/** @brief The window with sequence number seq, borrowed; NULL if it was
 *         evicted or has not arrived. */
relay_win_t *relay_ring_at(const relay_ring_t *r, uint64_t seq);

/**
 * @brief The sequence number of the first window with scn > after_scn.
 * @returns 0 and *seq (== end when all are older), or -1 when windows
 *          after after_scn were already evicted (read them from disk).
 */
int relay_ring_seek(const relay_ring_t *r, uint64_t after_scn, uint64_t *seq);

#endif
