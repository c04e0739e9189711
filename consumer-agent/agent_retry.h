/*
 * agent_retry.h - exponential backoff with jitter, for retrying a sink.
 *
 * When a sink's write or flush fails, the agent stops that partition's
 * progress, closes the partition, waits agent_retry_next() milliseconds
 * and opens it again from its last checkpoint: the failed window is
 * retried, never skipped. The waits double from AGENT_RETRY_MIN_MS up to
 * a ceiling (sink.retry_max), each drawn at random from the upper half of
 * its step ("equal jitter": [d/2, d]), so that partitions that failed
 * together do not all retry at the same instant, and a partition never
 * retries sooner than half the step. agent_retry_reset() after a success
 * starts again from the bottom.
 *
 * A plain value: no allocation, no global state, no clock. Each partition
 * keeps its own; it is used by one thread at a time.
 */
#ifndef AGENT_RETRY_H
#define AGENT_RETRY_H

#include <stdint.h>

#define AGENT_RETRY_MIN_MS 100

typedef struct {
  uint64_t max_ms;   /* the ceiling of a step */
  uint64_t step_ms;  /* the next wait's step d */
  uint64_t rng;      /* xorshift64 state, never 0 */
  uint32_t attempts; /* waits handed out since the last reset */
} agent_retry_t;

/**
 * @brief Start at the bottom: the first wait lies in [50, 100] ms.
 * @param max_ms  the ceiling (sink.retry_max_ms); below AGENT_RETRY_MIN_MS
 *                it is the first step too
 * @param seed    any value (0 is fine): partitions given different seeds
 *                draw different waits
 */
void agent_retry_init(agent_retry_t *r, uint64_t max_ms, uint64_t seed);

/**
 * @brief The wait before the next attempt, in ms, in [d/2, d] where d is
 *        min(max_ms, AGENT_RETRY_MIN_MS * 2^attempts); and one step up.
 */
uint64_t agent_retry_next(agent_retry_t *r);

/** @brief After a success: the next wait is the first step again. */
void agent_retry_reset(agent_retry_t *r);

#endif
