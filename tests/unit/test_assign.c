/*
 * test_assign.c - the coordinator's assignment function (coord_assign.h):
 * Helix's example, 64 partitions over 5 members, the two phases, dead
 * members' partitions, and random join/leave/death sequences checked
 * against the properties the function promises after every step.
 *
 * A small simulator plays the agents: a member creates owners/<p> for
 * every partition granted to it, and releases (deletes) owners/<p> of a
 * partition that left its list; a member that dies keeps its owners/
 * nodes until its session "expires"; one that leaves gracefully releases
 * everything first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_assign.h"
#include "hd_check.h"
#include "hd_err.h"
#include "hd_mem.h"

#define MAXM 16

typedef struct {
  uint32_t n;
  hd_assignment_t cur;
  int have;               /* cur holds an assignment */
  char *holder[1024];     /* owners/<p>: holder id, or NULL */
  char live[MAXM][16];    /* live member ids ("" free slot) */
  char dead[MAXM][16];    /* died, session not expired yet */
  char drained[MAXM][16]; /* heraldctl drain */
  uint32_t writes;
  coord_assign_stats_t last;
} sim_t;

static void sim_init(sim_t *s, uint32_t n) {
  memset(s, 0, sizeof(*s));
  ck_assert_uint_le(n, 1024);
  s->n = n;
}

static void sim_free(sim_t *s) {
  if (s->have)
    hd_assignment_free(&s->cur);
  for (uint32_t p = 0; p < s->n; p++)
    free(s->holder[p]);
}

static size_t live_ids(const sim_t *s, const char **ids) {
  size_t k = 0;
  for (int i = 0; i < MAXM; i++)
    if (s->live[i][0])
      ids[k++] = s->live[i];
  return k;
}

static int is_live(const sim_t *s, const char *id) {
  for (int i = 0; i < MAXM; i++)
    if (s->live[i][0] && strcmp(s->live[i], id) == 0)
      return 1;
  return 0;
}

static void add_to(char (*set)[16], const char *id) {
  for (int i = 0; i < MAXM; i++)
    if (!set[i][0]) {
      snprintf(set[i], 16, "%s", id);
      return;
    }
  ck_abort_msg("too many members");
}

static void remove_from(char (*set)[16], const char *id) {
  for (int i = 0; i < MAXM; i++)
    if (strcmp(set[i], id) == 0)
      set[i][0] = '\0';
}

static void join(sim_t *s, const char *id) {
  add_to(s->live, id);
}

/* kill -9: the member node and owners/ nodes stay until expire(). */
static void die(sim_t *s, const char *id) {
  remove_from(s->live, id);
  add_to(s->dead, id);
}

static void expire(sim_t *s, const char *id) {
  remove_from(s->dead, id);
  for (uint32_t p = 0; p < s->n; p++)
    if (s->holder[p] && strcmp(s->holder[p], id) == 0) {
      free(s->holder[p]);
      s->holder[p] = NULL;
    }
}

/* SIGTERM: release everything, then leave. */
static void leave(sim_t *s, const char *id) {
  remove_from(s->live, id);
  for (uint32_t p = 0; p < s->n; p++)
    if (s->holder[p] && strcmp(s->holder[p], id) == 0) {
      free(s->holder[p]);
      s->holder[p] = NULL;
    }
}

static const char *granted_to(const hd_assignment_t *a, uint32_t p) {
  return a->owner[p] >= 0 ? a->members[a->owner[p]] : NULL;
}
static const char *target_of(const hd_assignment_t *a, uint32_t p) {
  if (a->owner[p] >= 0)
    return a->members[a->owner[p]];
  return a->pending[p] >= 0 ? a->members[a->pending[p]] : NULL;
}

/* The promises of coord_assign.h that one step must keep. */
static void check_step(const sim_t *s, const hd_assignment_t *prev,
                       const hd_assignment_t *next) {
  const char *ids[MAXM];
  size_t nl = live_ids(s, ids);
  char *json, err[256];
  ck_assert_msg(hd_assignment_build(next, &json, err, sizeof(err)) == 0, "%s",
                err);
  free(json);
  ck_assert_uint_eq(next->partitions, s->n);
  /* Its members are the live members. */
  size_t distinct = 0;
  for (size_t i = 0; i < nl; i++) {
    ck_assert_int_ge(hd_assignment_find(next, ids[i]), 0);
    int first = 1;
    for (size_t k = 0; k < i; k++)
      first &= strcmp(ids[k], ids[i]) != 0;
    distinct += first;
  }
  ck_assert_uint_eq(next->nmembers, distinct);
  uint32_t cnt[MAXM * 2] = {0};
  for (uint32_t p = 0; p < s->n; p++) {
    const char *t = target_of(next, p);
    if (distinct == 0) {
      ck_assert_ptr_null(t); /* unowned only when no member is live */
      continue;
    }
    ck_assert_msg(t != NULL, "partition %u unowned with %zu members", p,
                  distinct);
    cnt[hd_assignment_find(next, t)]++;
    const char *was = prev ? granted_to(prev, p) : NULL;
    const char *now = granted_to(next, p);
    uint64_t e0 = prev && prev->partitions == s->n ? prev->epochs[p] : 0;
    if (now && (was == NULL || strcmp(was, now) != 0)) {
      /* A new grant: one epoch more, and only if nobody else holds the
       * partition; never straight from another live member. */
      ck_assert_uint_eq(next->epochs[p], e0 + 1);
      ck_assert_msg(s->holder[p] == NULL || strcmp(s->holder[p], now) == 0,
                    "partition %u granted to %s while %s holds it", p, now,
                    s->holder[p]);
      ck_assert_msg(was == NULL || !is_live(s, was),
                    "partition %u moved from live %s to %s in one step", p, was,
                    now);
    } else {
      ck_assert_uint_eq(next->epochs[p], e0);
    }
  }
  /* Balanced among the undrained (all, when every live one is drained);
   * a drained member is the target of nothing. */
  size_t nd = 0;
  for (size_t m = 0; m < next->nmembers; m++)
    for (int i = 0; i < MAXM; i++)
      nd += strcmp(s->drained[i], next->members[m]) == 0;
  uint32_t lo = UINT32_MAX, hi = 0;
  for (size_t m = 0; m < next->nmembers; m++) {
    int d = 0;
    for (int i = 0; i < MAXM; i++)
      d |= strcmp(s->drained[i], next->members[m]) == 0;
    if (d && nd < distinct) {
      ck_assert_uint_eq(cnt[m], 0);
      continue;
    }
    lo = cnt[m] < lo ? cnt[m] : lo;
    hi = cnt[m] > hi ? cnt[m] : hi;
  }
  if (distinct)
    ck_assert_msg(hi - lo <= 1, "unbalanced: %u to %u", lo, hi);
}

/* The agents act on the assignment: release what left a list, take what
 * is granted and free. @returns whether anything changed. */
static int agents_act(sim_t *s) {
  int changed = 0;
  for (uint32_t p = 0; p < s->n; p++) {
    const char *g = s->have ? granted_to(&s->cur, p) : NULL;
    if (s->holder[p] && is_live(s, s->holder[p]) &&
        (g == NULL || strcmp(g, s->holder[p]) != 0)) {
      free(s->holder[p]);
      s->holder[p] = NULL;
      changed = 1;
    }
    if (s->holder[p] == NULL && g && is_live(s, g)) {
      s->holder[p] = hd_strdup(g);
      changed = 1;
    }
  }
  return changed;
}

/* One leader pass: coord_assign and the write. @returns 1 if written. */
static int leader_pass(sim_t *s) {
  const char *ids[MAXM];
  size_t nl = live_ids(s, ids);
  const char *dr[MAXM];
  size_t nd = 0;
  for (int i = 0; i < MAXM; i++)
    if (s->drained[i][0])
      dr[nd++] = s->drained[i];
  coord_assign_in_t in = {.partitions = s->n,
                          .current = s->have ? &s->cur : NULL,
                          .live = ids,
                          .nlive = nl,
                          .holder = (const char *const *)s->holder,
                          .drained = dr,
                          .ndrained = nd};
  hd_assignment_t next;
  int rc = coord_assign(&in, &next, &s->last);
  ck_assert_int_ge(rc, 0);
  if (rc == 0) {
    ck_assert_ptr_null(next.owner);
    return 0;
  }
  strcpy(next.leader, "coord-t");
  check_step(s, s->have ? &s->cur : NULL, &next);
  ck_assert_uint_eq(next.version, s->have ? s->cur.version + 1 : 1);
  if (s->have)
    hd_assignment_free(&s->cur);
  s->cur = next;
  s->have = 1;
  s->writes++;
  return 1;
}

/* Leader and agents until neither changes anything. */
static void settle(sim_t *s) {
  for (int round = 0; round < 100; round++) {
    int w = leader_pass(s);
    int a = agents_act(s);
    if (!w && !a)
      return;
  }
  ck_abort_msg("no fixed point after 100 rounds");
}

/* k members join together, and everything settles. */
static void join_all(sim_t *s, const char *const *ids, int k) {
  for (int i = 0; i < k; i++)
    join(s, ids[i]);
  settle(s);
}

static uint32_t count_of(const sim_t *s, const char *id) {
  int32_t m = hd_assignment_find(&s->cur, id);
  return m < 0 ? 0 : hd_assignment_count(&s->cur, m);
}

static uint32_t npending(const sim_t *s) {
  uint32_t k = 0;
  for (uint32_t p = 0; p < s->n; p++)
    k += s->cur.pending[p] >= 0;
  return k;
}

/* Snapshot of who has each partition (granted), for move counting. */
static void grants(const sim_t *s, char (*g)[16]) {
  for (uint32_t p = 0; p < s->n; p++)
    snprintf(g[p], 16, "%s",
             s->have && granted_to(&s->cur, p) ? granted_to(&s->cur, p) : "");
}

static uint32_t moved_from(char (*before)[16], const sim_t *s, const char *id) {
  uint32_t k = 0;
  for (uint32_t p = 0; p < s->n; p++)
    if (strcmp(before[p], id) == 0 &&
        strcmp(granted_to(&s->cur, p) ? granted_to(&s->cur, p) : "", id) != 0)
      k++;
  return k;
}

static char snap[1024][16];

START_TEST(helix_member_dies) {
  /* 60 partitions on 4 nodes: 15 each; one dies: 20 each, and only its 15
   * partitions move. */
  sim_t s;
  sim_init(&s, 60);
  const char *n[] = {"n0", "n1", "n2", "n3"};
  join_all(&s, n, 4);
  for (int i = 0; i < 4; i++)
    ck_assert_uint_eq(count_of(&s, n[i]), 15);
  ck_assert_uint_eq(npending(&s), 0);
  grants(&s, snap);
  die(&s, "n3");
  settle(&s);
  /* Its partitions wait, pending, while its session lives on. */
  ck_assert_uint_eq(npending(&s), 15);
  for (int i = 0; i < 3; i++)
    ck_assert_uint_eq(count_of(&s, n[i]), 15);
  for (uint32_t p = 0; p < 60; p++)
    if (strcmp(snap[p], "n3") == 0)
      ck_assert_ptr_null(granted_to(&s.cur, p));
  expire(&s, "n3");
  settle(&s);
  ck_assert_uint_eq(npending(&s), 0);
  for (int i = 0; i < 3; i++) {
    ck_assert_uint_eq(count_of(&s, n[i]), 20);
    ck_assert_uint_eq(moved_from(snap, &s, n[i]), 0);
  }
  ck_assert_uint_eq(moved_from(snap, &s, "n3"), 15);
  sim_free(&s);
}
END_TEST

START_TEST(helix_fifth_joins) {
  /* 60 on 4, a fifth joins: 12 each, 3 taken from each. */
  sim_t s;
  sim_init(&s, 60);
  const char *n[] = {"n0", "n1", "n2", "n3", "n4"};
  join_all(&s, n, 4);
  grants(&s, snap);
  join(&s, "n4");
  /* One pass: the 12 moves are revoked, none granted yet. */
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_uint_eq(s.last.revoked, 12);
  ck_assert_uint_eq(s.last.granted, 0);
  ck_assert_uint_eq(s.last.moved, 12);
  ck_assert_uint_eq(npending(&s), 12);
  ck_assert_uint_eq(count_of(&s, "n4"), 0);
  /* Nothing more until the owners release. */
  ck_assert_int_eq(leader_pass(&s), 0);
  settle(&s);
  for (int i = 0; i < 5; i++)
    ck_assert_uint_eq(count_of(&s, n[i]), 12);
  for (int i = 0; i < 4; i++)
    ck_assert_uint_eq(moved_from(snap, &s, n[i]), 3);
  ck_assert_uint_eq(npending(&s), 0);
  sim_free(&s);
}
END_TEST

START_TEST(sixty_four_over_five) {
  sim_t s;
  sim_init(&s, 64);
  const char *n[] = {"a1", "a2", "a3", "a4", "a5"};
  /* Joined one at a time, settling in between, as agents start. */
  for (int i = 0; i < 5; i++) {
    join(&s, n[i]);
    settle(&s);
  }
  uint32_t c13 = 0, c12 = 0;
  for (int i = 0; i < 5; i++) {
    uint32_t c = count_of(&s, n[i]);
    c13 += c == 13;
    c12 += c == 12;
  }
  ck_assert_uint_eq(c13, 4);
  ck_assert_uint_eq(c12, 1);
  /* The newest has the 12: the larger shares stay with those who had
   * more. */
  ck_assert_uint_eq(count_of(&s, "a5"), 12);
  for (uint32_t p = 0; p < 64; p++) {
    ck_assert_ptr_nonnull(granted_to(&s.cur, p));
    ck_assert_str_eq(s.holder[p], granted_to(&s.cur, p));
  }
  /* All at once gives the same shape. */
  sim_t t;
  sim_init(&t, 64);
  join_all(&t, n, 5);
  c13 = 0;
  for (int i = 0; i < 5; i++)
    c13 += count_of(&t, n[i]) == 13;
  ck_assert_uint_eq(c13, 4);
  ck_assert_uint_eq(t.writes, 1); /* nothing held: granted at once */
  sim_free(&s);
  sim_free(&t);
}
END_TEST

START_TEST(two_phases) {
  sim_t s;
  sim_init(&s, 4);
  join(&s, "a");
  settle(&s);
  ck_assert_uint_eq(count_of(&s, "a"), 4);
  for (uint32_t p = 0; p < 4; p++)
    ck_assert_uint_eq(s.cur.epochs[p], 1);
  join(&s, "b");
  ck_assert_int_eq(leader_pass(&s), 1);
  /* a's two highest partitions go pending to b; a keeps 0 and 1. */
  int32_t b = hd_assignment_find(&s.cur, "b");
  ck_assert_int_eq(s.cur.pending[2], b);
  ck_assert_int_eq(s.cur.pending[3], b);
  ck_assert_str_eq(granted_to(&s.cur, 0), "a");
  ck_assert_str_eq(granted_to(&s.cur, 1), "a");
  ck_assert_uint_eq(s.cur.epochs[3], 1);
  /* a releases 3 only: 3 is granted (epoch 2), 2 stays pending. */
  free(s.holder[3]);
  s.holder[3] = NULL;
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_str_eq(granted_to(&s.cur, 3), "b");
  ck_assert_uint_eq(s.cur.epochs[3], 2);
  ck_assert_int_eq(s.cur.pending[2], b);
  ck_assert_uint_eq(s.cur.epochs[2], 1);
  ck_assert_uint_eq(s.last.granted, 1);
  ck_assert_int_eq(leader_pass(&s), 0);
  /* Held by the target itself: granted too. */
  free(s.holder[2]);
  s.holder[2] = hd_strdup("b");
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_str_eq(granted_to(&s.cur, 2), "b");
  /* A node whose data could not be read holds a partition against all. */
  leave(&s, "b");
  s.holder[2] = hd_strdup("");
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_int_eq(s.cur.pending[2], hd_assignment_find(&s.cur, "a"));
  ck_assert_str_eq(granted_to(&s.cur, 3), "a"); /* b released 3 */
  ck_assert_uint_eq(s.cur.epochs[3], 3);
  ck_assert_int_eq(leader_pass(&s), 0);
  free(s.holder[2]);
  s.holder[2] = NULL;
  settle(&s);
  ck_assert_uint_eq(count_of(&s, "a"), 4);
  sim_free(&s);
}
END_TEST

START_TEST(dead_members) {
  sim_t s;
  sim_init(&s, 6);
  join(&s, "a");
  join(&s, "b");
  join(&s, "c");
  settle(&s);
  grants(&s, snap);
  /* c dies, its session expires before the leader looks: its partitions
   * are granted directly, no pending step. */
  die(&s, "c");
  expire(&s, "c");
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_uint_eq(s.last.granted, 2);
  ck_assert_uint_eq(s.last.revoked, 0);
  ck_assert_uint_eq(npending(&s), 0);
  ck_assert_uint_eq(count_of(&s, "a"), 3);
  ck_assert_uint_eq(count_of(&s, "b"), 3);
  settle(&s);
  /* Everyone dies: every partition unowned, epochs kept. */
  die(&s, "a");
  die(&s, "b");
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_uint_eq(s.cur.nmembers, 0);
  ck_assert_uint_eq(s.last.unowned, 6);
  for (uint32_t p = 0; p < 6; p++)
    ck_assert_ptr_null(target_of(&s.cur, p));
  uint64_t e0[6];
  int by_a[6];
  for (uint32_t p = 0; p < 6; p++) {
    e0[p] = s.cur.epochs[p];
    by_a[p] = s.holder[p] && strcmp(s.holder[p], "a") == 0;
  }
  /* a comes back before its old session expired: the partitions its old
   * session holds are granted at once (held by its own id); b's wait for
   * b's session. */
  join(&s, "a");
  remove_from(s.dead, "a");
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_uint_eq(count_of(&s, "a"), 3);
  ck_assert_uint_eq(npending(&s), 3);
  for (uint32_t p = 0; p < 6; p++) {
    ck_assert_uint_eq(s.cur.epochs[p], e0[p] + (uint64_t)by_a[p]);
    ck_assert_int_eq(s.cur.owner[p] >= 0, by_a[p]);
  }
  expire(&s, "b");
  settle(&s);
  ck_assert_uint_eq(count_of(&s, "a"), 6);
  sim_free(&s);
}
END_TEST

START_TEST(edge_cases) {
  /* No member, no assignment yet: one is written, all unowned. */
  sim_t s;
  sim_init(&s, 3);
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_uint_eq(s.last.unowned, 3);
  ck_assert_int_eq(leader_pass(&s), 0);
  /* More members than partitions: one each for three, none for two, and
   * all five named. */
  const char *n[] = {"e", "d", "c", "b", "a"};
  join_all(&s, n, 5);
  ck_assert_uint_eq(s.cur.nmembers, 5);
  uint32_t total = 0;
  for (int i = 0; i < 5; i++) {
    ck_assert_uint_le(count_of(&s, n[i]), 1);
    total += count_of(&s, n[i]);
  }
  ck_assert_uint_eq(total, 3);
  /* A member listed twice (two sessions of one agent.id) counts once. */
  join(&s, "a");
  ck_assert_int_eq(leader_pass(&s), 0);
  remove_from(s.live, "a");
  join(&s, "a");
  ck_assert_int_eq(leader_pass(&s), 0);
  sim_free(&s);

  /* An assignment of another N counts as none, epochs kept. */
  hd_assignment_t old, out;
  hd_assignment_init(&old, 2);
  old.version = 7;
  old.epochs[0] = 5;
  const char *ids[] = {"x"};
  coord_assign_in_t in = {.partitions = 3,
                          .current = &old,
                          .live = ids,
                          .nlive = 1,
                          .holder = NULL};
  ck_assert_int_eq(coord_assign(&in, &out, NULL), 1);
  ck_assert_uint_eq(out.version, 8);
  ck_assert_uint_eq(out.partitions, 3);
  ck_assert_uint_eq(out.epochs[0], 6);
  ck_assert_uint_eq(out.epochs[2], 1);
  ck_assert_uint_eq(hd_assignment_count(&out, 0), 3);
  hd_assignment_free(&out);
  hd_assignment_free(&old);
  in.partitions = 0;
  ck_assert_int_eq(coord_assign(&in, &out, NULL), HD_ERANGE);
  in.partitions = HD_GROUP_MAX_PARTITIONS + 1;
  ck_assert_int_eq(coord_assign(&in, &out, NULL), HD_ERANGE);
}
END_TEST

START_TEST(deterministic) {
  /* The same input in another order gives the same output. */
  hd_assignment_t cur, o1, o2;
  hd_assignment_init(&cur, 10);
  int32_t a = hd_assignment_add(&cur, "a"), b = hd_assignment_add(&cur, "b");
  for (uint32_t p = 0; p < 10; p++)
    cur.owner[p] = p < 7 ? a : b;
  const char *l1[] = {"a", "b", "c", "d"}, *l2[] = {"d", "c", "a", "b", "c"};
  coord_assign_in_t in = {10, &cur, l1, 4, NULL, NULL, 0};
  ck_assert_int_eq(coord_assign(&in, &o1, NULL), 1);
  in.live = l2;
  in.nlive = 5;
  ck_assert_int_eq(coord_assign(&in, &o2, NULL), 1);
  ck_assert(hd_assignment_same(&o1, &o2));
  strcpy(o1.leader, "c");
  strcpy(o2.leader, "c");
  char *j1, *j2, err[128];
  ck_assert_int_eq(hd_assignment_build(&o1, &j1, err, sizeof(err)), 0);
  ck_assert_int_eq(hd_assignment_build(&o2, &j2, err, sizeof(err)), 0);
  ck_assert_str_eq(j1, j2);
  /* a (7) gives 4, b (3) gives 0: quotas 3,3,2,2, the 3s to a and b. */
  ck_assert_str_eq(j1, "{\"version\":1,\"partitions\":10,\"leader\":\"c\","
                       "\"updated_ms\":0,\"members\":{\"a\":[0,1,2],\"b\":"
                       "[7,8,9],\"c\":[],\"d\":[]},\"pending\":{\"3\":\"c\","
                       "\"4\":\"d\",\"5\":\"c\",\"6\":\"d\"},\"epochs\":"
                       "[0,0,0,0,0,0,0,0,0,0]}");
  free(j1);
  free(j2);
  hd_assignment_free(&o1);
  hd_assignment_free(&o2);
  hd_assignment_free(&cur);
}
END_TEST

/* ------------------------------------------------ random sequences */

static uint32_t rnd_state;
static uint32_t rnd(uint32_t n) {
  rnd_state = rnd_state * 1103515245u + 12345u;
  return (rnd_state >> 8) % n;
}

/* Between two settled states: the fewest moves that balance, and none
 * between two staying members unless one was above its share. */
static void check_minimal(const sim_t *s, char (*before)[16],
                          char (*live_before)[16]) {
  const char *ids[MAXM];
  size_t nl = live_ids(s, ids);
  if (nl == 0)
    return;
  uint32_t base = s->n / (uint32_t)nl, extra = s->n % (uint32_t)nl;
  uint32_t moved = 0, over_base = 0, excess = 0;
  for (size_t i = 0; i < nl; i++) {
    int stayed = 0;
    for (int k = 0; k < MAXM; k++)
      stayed |= strcmp(live_before[k], ids[i]) == 0;
    if (!stayed)
      continue;
    uint32_t had = 0;
    for (uint32_t p = 0; p < s->n; p++)
      had += strcmp(before[p], ids[i]) == 0;
    uint32_t lost = moved_from(before, s, ids[i]), now = count_of(s, ids[i]);
    /* A staying member loses only what its count went down by. */
    ck_assert_uint_eq(lost, had > now ? had - now : 0);
    moved += lost;
    if (had > base) {
      over_base++;
      excess += had - base;
    }
  }
  /* The least any balanced result could move: every staying member's
   * excess over the base share, less one for each larger share given to
   * a member above the base. */
  uint32_t least = excess - (over_base < extra ? over_base : extra);
  if (moved != least) {
    for (uint32_t p = 0; p < s->n; p++)
      fprintf(stderr, "p%u before=%s now=%s pend=%d holder=%s\n", p, before[p],
              granted_to(&s->cur, p) ? granted_to(&s->cur, p) : "-",
              s->cur.pending[p], s->holder[p] ? s->holder[p] : "-");
    for (int k = 0; k < MAXM; k++)
      fprintf(stderr, "live_before %s live %s dead %s\n", live_before[k],
              s->live[k], s->dead[k]);
  }
  ck_assert_msg(moved == least, "n=%u: moved %u, at least %u needed", s->n,
                moved, least);
}

/* A random member joins, leaves, dies, or (dead) expires. */
static void random_event(sim_t *s) {
  char id[16];
  snprintf(id, sizeof(id), "m%u", rnd(12));
  uint32_t what = rnd(10);
  if (!is_live(s, id)) {
    int is_dead = 0;
    for (int k = 0; k < MAXM; k++)
      is_dead |= strcmp(s->dead[k], id) == 0;
    if (is_dead)
      expire(s, id);
    else
      join(s, id);
  } else if (what < 4) {
    leave(s, id);
  } else if (what < 7) {
    die(s, id);
  }
}

START_TEST(random_sequences) {
  static const uint32_t sizes[] = {1, 2, 3, 7, 16, 60, 64, 100, 1000};
  char live_before[MAXM][16];
  for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
    for (uint32_t seed = 1; seed <= (sizes[si] >= 100 ? 8u : 50u); seed++) {
      rnd_state = seed * 7919u + (uint32_t)si;
      sim_t s;
      sim_init(&s, sizes[si]);
      for (int step = 0; step < 60; step++) {
        grants(&s, snap);
        memcpy(live_before, s.live, sizeof(live_before));
        /* One event, or two before the leader looks. */
        int events = rnd(5) == 0 ? 2 : 1;
        for (int e = 0; e < events; e++)
          random_event(&s);
        settle(&s);
        int any_dead = 0;
        for (int k = 0; k < MAXM; k++)
          any_dead |= s.dead[k][0] != 0;
        if (!any_dead) /* a dead member's partitions wait for expiry */
          ck_assert_uint_eq(npending(&s), 0);
        check_minimal(&s, snap, live_before);
        /* Every granted partition is held by its member. */
        for (uint32_t p = 0; p < s.n; p++)
          if (granted_to(&s.cur, p))
            ck_assert_str_eq(s.holder[p], granted_to(&s.cur, p));
      }
      sim_free(&s);
    }
}
END_TEST

/* heraldctl drain: the member's partitions move away in two phases, it
 * stays a member with none, the rest stay put; undrained, it takes its
 * share back; the last undrained member cannot be emptied. */
START_TEST(drain) {
  sim_t s;
  sim_init(&s, 9);
  const char *n[] = {"a", "b", "c"};
  join_all(&s, n, 3);
  uint32_t a0 = count_of(&s, "a");
  add_to(s.drained, "b");
  ck_assert_int_eq(leader_pass(&s), 1);
  ck_assert_uint_eq(count_of(&s, "b"), 0); /* revoked: pending elsewhere */
  ck_assert_uint_eq(s.last.revoked, 3);
  ck_assert_int_ge(hd_assignment_find(&s.cur, "b"), 0);
  settle(&s);
  ck_assert_uint_eq(count_of(&s, "b"), 0);
  ck_assert_uint_eq(count_of(&s, "a") + count_of(&s, "c"), 9);
  ck_assert_uint_ge(count_of(&s, "a"), a0); /* nothing moved a -> c */
  for (uint32_t p = 0; p < s.n; p++)
    ck_assert(s.holder[p] == NULL || strcmp(s.holder[p], "b") != 0);
  /* Draining a second leaves one with everything; the third cannot be. */
  add_to(s.drained, "c");
  settle(&s);
  ck_assert_uint_eq(count_of(&s, "a"), 9);
  add_to(s.drained, "a");
  settle(&s);
  ck_assert_uint_eq(count_of(&s, "a") + count_of(&s, "b") + count_of(&s, "c"),
                    9); /* all drained: balanced over all, as undrained */
  remove_from(s.drained, "a");
  remove_from(s.drained, "b");
  remove_from(s.drained, "c");
  settle(&s);
  for (int i = 0; i < 3; i++)
    ck_assert_uint_eq(count_of(&s, n[i]), 3);
  /* A drained id that is no live member changes nothing. */
  add_to(s.drained, "zz");
  ck_assert_int_eq(leader_pass(&s), 0);
  sim_free(&s);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("assign");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, helix_member_dies);
  tcase_add_test(tc, helix_fifth_joins);
  tcase_add_test(tc, sixty_four_over_five);
  tcase_add_test(tc, two_phases);
  tcase_add_test(tc, dead_members);
  tcase_add_test(tc, edge_cases);
  tcase_add_test(tc, deterministic);
  tcase_add_test(tc, random_sequences);
  tcase_add_test(tc, drain);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
