#include "relay_ring.h"

#include <stdlib.h>
#include <string.h>

#include "hd_mem.h"

void relay_ring_init(relay_ring_t *r, uint64_t max_bytes, uint64_t prev_scn) {
  memset(r, 0, sizeof(*r));
  r->cap = 1024;
  r->v = hd_calloc(r->cap, sizeof(relay_win_t *));
  r->max_bytes = max_bytes;
  r->prev_scn = prev_scn;
}

void relay_ring_free(relay_ring_t *r) {
  for (uint64_t s = r->first; s < r->end; s++)
    relay_win_release(r->v[s % r->cap]);
  free(r->v);
  r->v = NULL;
}

static void grow(relay_ring_t *r) {
  size_t ncap = r->cap * 2;
  relay_win_t **nv = hd_calloc(ncap, sizeof(relay_win_t *));
  for (uint64_t s = r->first; s < r->end; s++)
    nv[s % ncap] = r->v[s % r->cap];
  free(r->v);
  r->v = nv;
  r->cap = ncap;
}

void relay_ring_push(relay_ring_t *r, relay_win_t *w) {
  if (r->end - r->first == r->cap)
    grow(r);
  r->v[r->end % r->cap] = w;
  r->end++;
  r->bytes += w->mem;
  /* Evict the oldest while over budget, but keep the newest window even
   * if it alone is larger: consumers that are caught up need it. */
  while (r->bytes > r->max_bytes && r->end - r->first > 1) {
    relay_win_t *old = r->v[r->first % r->cap];
    r->v[r->first % r->cap] = NULL;
    r->first++;
    r->bytes -= old->mem;
    r->prev_scn = old->scn;
    relay_win_release(old);
  }
}

relay_win_t *relay_ring_at(const relay_ring_t *r, uint64_t seq) {
  if (seq < r->first || seq >= r->end)
    return NULL;
  return r->v[seq % r->cap];
}

int relay_ring_seek(const relay_ring_t *r, uint64_t after_scn, uint64_t *seq) {
  if (after_scn < r->prev_scn)
    return -1;
  /* Binary search: SCNs increase with the sequence number. */
  uint64_t lo = r->first, hi = r->end;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (r->v[mid % r->cap]->scn <= after_scn)
      lo = mid + 1;
    else
      hi = mid;
  }
  *seq = lo;
  return 0;
}
