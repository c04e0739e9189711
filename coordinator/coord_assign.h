/*
 * coord_assign.h - the next assignment of a consumer group, as a pure
 * function: no ZooKeeper, no clock, no I/O. The leader calls it with what
 * it has read, writes the result (if any) with compare-and-swap, and calls
 * it again when anything changes; docs/coordinator.md describes it.
 *
 * What the result keeps true:
 *  - balanced: every partition is the target of one live member, granted
 *    to it (members) or moving to it (pending), and the members' target
 *    counts differ by at most one; with no live member every partition is
 *    unowned;
 *  - sticky: the members that get one partition more than the others are
 *    the ones that have most granted now; a member above its share gives
 *    away only its excess, partitions merely pending to it first (a join
 *    takes only from the most loaded); a member that
 *    leaves has only its own partitions spread; no partition moves between
 *    two members that stay unless one of them is above its share: the
 *    fewest moves that reach balance;
 *  - two-phase: a partition granted to a live member that must move goes
 *    to pending first (the member sees its list shrink, releases, deletes
 *    owners/<p>); a partition not granted to a live member (pending, or
 *    granted to a member that is gone, or new) is granted to its target,
 *    its epoch + 1, only when owners/<p> is gone or held by the target;
 *    while another holds owners/<p> (a dead member's session that has not
 *    expired yet, a member still releasing) it stays pending;
 *  - drained members (heraldctl drain) have a quota of 0, as long as one
 *    live member is not drained;
 *  - deterministic: the same input gives the same output (members are
 *    ordered by id, partitions by number).
 */
#ifndef COORD_ASSIGN_H
#define COORD_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "hd_group.h"

typedef struct {
  uint32_t partitions;            /* N, from the group node */
  const hd_assignment_t *current; /* as read; NULL: no assignment node yet.
                                   * One of another N counts as none, but
                                   * its epochs are kept where they exist */
  const char *const *live;        /* ids of the live members, any order;
                                   * an id listed twice counts once */
  size_t nlive;
  /* [partitions]: who holds owners/<p>, as its "owner" field says; NULL:
   * no such node; "": a node whose data could not be read (it counts as
   * held by someone other than any target). NULL for none at all. */
  const char *const *holder;
  /* Live members to give no partition (heraldctl drain): their share goes
   * to the others, as when they leave, but they stay members. Ignored
   * when every live member is drained. Ids not live are ignored. */
  const char *const *drained;
  size_t ndrained;
} coord_assign_in_t;

typedef struct {
  uint32_t revoked; /* granted to a live member, now pending elsewhere */
  uint32_t granted; /* granted now (epoch + 1) */
  uint32_t moved;   /* whose target changed from one live member to another */
  uint32_t pending; /* pending in the result */
  uint32_t unowned; /* in neither members nor pending (no live member) */
} coord_assign_stats_t;

/**
 * @brief Compute the group's next assignment.
 * @param out  set to the next assignment (version = current's + 1, leader
 *             and updated_ms empty: the caller fills them and frees *out
 *             with hd_assignment_free()) when the result differs from
 *             current; zeroed otherwise
 * @param st   the figures of the result; may be NULL
 * @returns 1 when *out is to be written, 0 when current stays as it is,
 *          HD_ERANGE when partitions is not 1..65536.
 * @locality any thread
 */
int coord_assign(const coord_assign_in_t *in, hd_assignment_t *out,
                 coord_assign_stats_t *st);

#endif
