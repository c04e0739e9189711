/*
 * hd_partkey.h - the partition facts of a primary key: its canonical
 * encoding and the xxHash64 of it, its first column's integer value, and
 * the partition functions over them (HASH, MOD, RANGE; docs/relay.md,
 * Partitions).
 *
 * One implementation for the relay, which decides from them which
 * consumers get a row, and for libherald, which tells its application
 * whether a key (the new or the old one of a key move) is its own: the two
 * must never disagree. Nor may a key's partition change between releases:
 * consumers of one group may run different versions, and a checkpointed
 * partition must keep meaning the same rows (tests/unit/test_partkey.c
 * pins it). Pure: no I/O, no state.
 */
#ifndef HD_PARTKEY_H
#define HD_PARTKEY_H

#include <stddef.h>
#include <stdint.h>

#include "herald.pb-c.h"

/* What the partition functions read of a primary key. */
enum { HD_IKEY_NONE = 0, HD_IKEY_SIGNED, HD_IKEY_UNSIGNED };

typedef struct {
  uint8_t has_pk;
  uint8_t ikind; /* HD_IKEY_*: the first key column's integer kind */
  uint64_t ival; /* its value (an int64_t when ikind is SIGNED) */
  uint64_t hash; /* xxHash64 of the canonical primary key */
} hd_key_t;

/**
 * @brief The partition facts of a key given as its columns, in primary
 *        key order (the canonical encoding of docs/relay.md). A column
 *        without a value counts as an unset one. tmp is scratch memory
 *        kept by the caller (may start {NULL, 0}; free it with free()):
 *        once it has grown to the longest key, no call allocates.
 */
void hd_key_of(hd_key_t *k, Herald__Column *const *cols, size_t n,
               uint8_t **tmp, size_t *tmpcap);

/**
 * @brief Whether two values are the same key value: the same canonical
 *        bytes (so a key move is told apart the way keys are hashed).
 *        tmp as for hd_key_of().
 */
int hd_key_value_same(const Herald__Value *a, const Herald__Value *b,
                      uint8_t **tmp, size_t *tmpcap);

/**
 * @brief The partition of a key under HASH or MOD with n partitions:
 *        HASH is xxHash64 of the canonical key mod n; MOD is the first key
 *        column's integer value mod n (non-negative, exact for signed and
 *        unsigned 64-bit values). A row without a primary key, or under
 *        MOD without an integer first key column, is in partition 0.
 * @param fn  a Herald__PartitionFunction; any other gives 0
 */
uint32_t hd_partition_of(int fn, uint32_t n, const hd_key_t *k);

/**
 * @brief Whether a key is in [lo, hi) (RANGE), or at or above lo when
 *        to_max; exact for unsigned values above INT64_MAX. A key without
 *        an integer first column counts as 0.
 */
int hd_key_in_range(const hd_key_t *k, int64_t lo, int64_t hi, int to_max);

#endif
