/*
 * coord_assign.c - balanced, sticky, two-phase assignment (coord_assign.h).
 *
 * Three steps. (1) Each partition's target now: the member it is granted
 * or moving to, if that member is live. (2) Quotas: with M live members
 * and N partitions, N % M of them get N / M + 1 and the rest N / M; the
 * larger quotas go to the members that have most granted now, so that as
 * few partitions as possible move. A member above its quota gives away its
 * excess (pending moves first: nothing has started there; then its
 * highest partitions), and every partition without a target goes to the
 * member furthest below its quota, preferring the member that already
 * holds its owners/ node. (3) Phases: the new target of each partition
 * becomes a grant or a pending move, by who holds the partition now.
 */
#include "coord_assign.h"

#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_mem.h"

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The index of id among the sorted live ids, or -1. */
static int32_t live_index(const char *const *ids, size_t n, const char *id) {
  if (id == NULL)
    return -1;
  const char *const *hit = bsearch(&id, ids, n, sizeof(*ids), cmp_str);
  return hit ? (int32_t)(hit - ids) : -1;
}

typedef struct {
  size_t n;            /* live members */
  const char **ids;    /* sorted, distinct */
  uint32_t *count;     /* [n] targets now */
  uint32_t *granted;   /* [n] of which granted to it now */
  uint32_t *quota;     /* [n] */
  int32_t *target;     /* [partitions] live index or -1 */
  int32_t *was_target; /* [partitions] target before step 2, live or -1 */
  uint8_t *drained;    /* [n] 1: quota 0 (heraldctl drain) */
} plan_t;

/* Whether member a goes before b for the larger quotas: most partitions
 * granted first (a member above its quota gives away the partitions only
 * pending to it first, which costs nothing: so the granted ones are what
 * a larger quota saves from moving), then most targets, then by id. */
static int loads_more(const plan_t *pl, size_t a, size_t b) {
  if (pl->granted[a] != pl->granted[b])
    return pl->granted[a] > pl->granted[b];
  return pl->count[a] != pl->count[b] ? pl->count[a] > pl->count[b] : a < b;
}

static void set_quotas(plan_t *pl, uint32_t partitions) {
  /* Drained members get nothing while another member can take their
   * share; when every live member is drained, none is. */
  size_t undrained = 0;
  for (size_t i = 0; i < pl->n; i++)
    undrained += !pl->drained[i];
  if (undrained == 0) {
    memset(pl->drained, 0, pl->n);
    undrained = pl->n;
  }
  uint32_t base = partitions / (uint32_t)undrained;
  uint32_t extra = partitions % (uint32_t)undrained;
  size_t *order = hd_malloc(pl->n * sizeof(size_t));
  /* An insertion sort: members are few, and qsort() would need the plan
   * through a static (C11's has no context argument). */
  size_t no = 0;
  for (size_t i = 0; i < pl->n; i++) {
    if (pl->drained[i]) {
      pl->quota[i] = 0;
      continue;
    }
    size_t k = no++;
    for (; k > 0 && loads_more(pl, i, order[k - 1]); k--)
      order[k] = order[k - 1];
    order[k] = i;
  }
  for (size_t k = 0; k < no; k++)
    pl->quota[order[k]] = base + (k < extra ? 1 : 0);
  free(order);
}

/* Step 2: excess given away, partitions without a target placed. */
static void balance(plan_t *pl, const hd_assignment_t *cur, uint32_t partitions,
                    const char *const *holder) {
  for (size_t m = 0; m < pl->n; m++) {
    uint32_t excess =
        pl->count[m] > pl->quota[m] ? pl->count[m] - pl->quota[m] : 0;
    /* Two passes, highest partition first: not granted yet (pending to
     * m), then granted. */
    for (int granted = 0; granted < 2 && excess > 0; granted++)
      for (uint32_t p = partitions; p-- > 0 && excess > 0;) {
        if (pl->target[p] != (int32_t)m)
          continue;
        int is_granted = cur && cur->owner[p] >= 0 &&
                         strcmp(cur->members[cur->owner[p]], pl->ids[m]) == 0;
        if (is_granted != granted)
          continue;
        pl->target[p] = -1;
        pl->count[m]--;
        excess--;
      }
  }
  /* A partition whose owners/ node a live member below its quota holds
   * goes to that member: the grant follows at once. */
  for (uint32_t p = 0; holder && p < partitions; p++) {
    int32_t h = live_index(pl->ids, pl->n, holder[p]);
    if (pl->target[p] < 0 && h >= 0 && pl->count[h] < pl->quota[h]) {
      pl->target[p] = h;
      pl->count[h]++;
    }
  }
  for (uint32_t p = 0; p < partitions; p++) {
    if (pl->target[p] >= 0)
      continue;
    int32_t best = -1;
    uint32_t best_gap = 0;
    for (size_t m = 0; m < pl->n; m++) {
      uint32_t gap = pl->quota[m] - pl->count[m];
      if (pl->count[m] < pl->quota[m] && (best < 0 || gap > best_gap)) {
        best = (int32_t)m;
        best_gap = gap;
      }
    }
    /* The quotas add up to partitions, so there is always one. */
    pl->target[p] = best;
    pl->count[best]++;
  }
}

int coord_assign(const coord_assign_in_t *in, hd_assignment_t *out,
                 coord_assign_stats_t *st) {
  uint32_t np = in->partitions;
  coord_assign_stats_t s;
  memset(&s, 0, sizeof(s));
  memset(out, 0, sizeof(*out));
  if (np < 1 || np > HD_GROUP_MAX_PARTITIONS)
    return HD_ERANGE;
  const hd_assignment_t *cur = in->current;
  const hd_assignment_t *same_n = cur && cur->partitions == np ? cur : NULL;

  plan_t pl;
  memset(&pl, 0, sizeof(pl));
  pl.ids = hd_malloc((in->nlive ? in->nlive : 1) * sizeof(char *));
  for (size_t i = 0; i < in->nlive; i++)
    pl.ids[i] = in->live[i];
  qsort(pl.ids, in->nlive, sizeof(char *), cmp_str);
  for (size_t i = 0; i < in->nlive; i++)
    if (pl.n == 0 || strcmp(pl.ids[pl.n - 1], pl.ids[i]) != 0)
      pl.ids[pl.n++] = pl.ids[i];
  pl.count = hd_calloc(pl.n, sizeof(uint32_t));
  pl.granted = hd_calloc(pl.n, sizeof(uint32_t));
  pl.quota = hd_calloc(pl.n, sizeof(uint32_t));
  pl.target = hd_malloc(np * sizeof(int32_t));
  pl.was_target = hd_malloc(np * sizeof(int32_t));
  pl.drained = hd_calloc(pl.n ? pl.n : 1, 1);
  for (size_t i = 0; i < in->ndrained; i++) {
    int32_t m = live_index(pl.ids, pl.n, in->drained[i]);
    if (m >= 0)
      pl.drained[m] = 1;
  }

  /* Step 1: the targets now, where they are live. */
  for (uint32_t p = 0; p < np; p++) {
    const char *id = NULL;
    if (same_n && same_n->owner[p] >= 0)
      id = same_n->members[same_n->owner[p]];
    else if (same_n && same_n->pending[p] >= 0)
      id = same_n->members[same_n->pending[p]];
    pl.target[p] = pl.was_target[p] = live_index(pl.ids, pl.n, id);
    if (pl.target[p] >= 0)
      pl.count[pl.target[p]]++;
    if (pl.target[p] >= 0 && same_n->owner[p] >= 0)
      pl.granted[pl.target[p]]++;
  }
  if (pl.n > 0) {
    set_quotas(&pl, np);
    balance(&pl, same_n, np, in->holder);
  }

  /* Step 3: grants and pending moves. */
  hd_assignment_init(out, np);
  for (size_t m = 0; m < pl.n; m++)
    hd_assignment_add(out, pl.ids[m]); /* index m */
  if (cur)
    for (uint32_t p = 0; p < np && p < cur->partitions; p++)
      out->epochs[p] = cur->epochs[p];
  for (uint32_t p = 0; p < np; p++) {
    int32_t d = pl.target[p];
    if (d < 0) {
      s.unowned++;
      continue;
    }
    if (pl.was_target[p] >= 0 && pl.was_target[p] != d)
      s.moved++;
    const char *granted_to = same_n && same_n->owner[p] >= 0
                                 ? same_n->members[same_n->owner[p]]
                                 : NULL;
    const char *h = in->holder ? in->holder[p] : NULL;
    if (granted_to && strcmp(granted_to, pl.ids[d]) == 0) {
      out->owner[p] = d;
    } else if (granted_to && live_index(pl.ids, pl.n, granted_to) >= 0) {
      out->pending[p] = d; /* phase 1: its holder must release it */
      s.revoked++;
    } else if (h == NULL || strcmp(h, pl.ids[d]) == 0) {
      out->owner[p] = d; /* phase 2, or a first grant */
      out->epochs[p]++;
      s.granted++;
    } else {
      out->pending[p] = d; /* still held: wait for its release */
    }
    s.pending += out->pending[p] >= 0;
  }

  free(pl.ids);
  free(pl.count);
  free(pl.granted);
  free(pl.quota);
  free(pl.target);
  free(pl.was_target);
  free(pl.drained);
  if (st)
    *st = s;
  if (cur && hd_assignment_same(cur, out)) {
    hd_assignment_free(out);
    return 0;
  }
  out->version = cur ? cur->version + 1 : 1;
  return 1;
}
