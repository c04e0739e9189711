/*
 * agent_retry.c - exponential backoff with equal jitter.
 */
#include "agent_retry.h"

static uint64_t first_step(uint64_t max_ms) {
  return max_ms < AGENT_RETRY_MIN_MS ? max_ms : AGENT_RETRY_MIN_MS;
}

void agent_retry_init(agent_retry_t *r, uint64_t max_ms, uint64_t seed) {
  r->max_ms = max_ms;
  r->step_ms = first_step(max_ms);
  /* splitmix64 of the seed: nearby seeds (partition numbers) give
   * unrelated sequences, and the xorshift state must not be 0. */
  uint64_t z = seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  r->rng = z ? z : 1;
  r->attempts = 0;
}

static uint64_t xorshift64(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

uint64_t agent_retry_next(agent_retry_t *r) {
  uint64_t d = r->step_ms;
  uint64_t half = d / 2;
  uint64_t wait = half + xorshift64(&r->rng) % (d - half + 1);
  r->step_ms = d > r->max_ms / 2 ? r->max_ms : d * 2;
  r->attempts++;
  return wait;
}

void agent_retry_reset(agent_retry_t *r) {
  r->step_ms = first_step(r->max_ms);
  r->attempts = 0;
}
