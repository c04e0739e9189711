/*
 * relay_filter.h - what one consumer wants of each window: the table
 * patterns (for rows and schema changes), the partition filter and the
 * column projection of its Subscribe.
 *
 * The server plans each window for a connection from this (which row
 * fields to send as they are, which to re-encode); nothing here does I/O,
 * so the rules can be tested on their own. The partition functions
 * themselves are common/hd_partkey.h's, which libherald uses too, so that
 * a client can tell which keys are its own exactly as the relay does.
 */
#ifndef RELAY_FILTER_H
#define RELAY_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "herald.pb-c.h"
#include "relay_window.h"

typedef struct {
  char *pattern;
  char **cols;
  size_t ncols;
} relay_proj_t;

/* Growable bytes that re-encoded rows are appended to. */
typedef struct {
  uint8_t *p;
  size_t len, cap;
} relay_bytes_t;

typedef struct {
  char **tables; /* db.table patterns; none: every table */
  size_t ntables;
  int part_fn; /* Herald__PartitionFunction; 0: no partition filter */
  uint32_t nparts;
  uint8_t *part_set; /* nparts bits */
  int64_t range_lo, range_hi;
  int range_to_max; /* RANGE without an upper bound */
  relay_proj_t *proj;
  size_t nproj;
  /* per window: which of its tables match (relay_filter_window) */
  uint8_t *tmatch;
  size_t tmatch_cap;
} relay_filter_t;

/**
 * @brief Take the filter of a Subscribe. On a bad request (a pattern that
 *        is not db.table, an empty or out-of-range partition set, an
 *        unknown function) it fills err and returns -1; f must be freed
 *        with relay_filter_free() either way.
 */
int relay_filter_init(relay_filter_t *f, const Herald__Subscribe *sub,
                      char *err, size_t errlen);

void relay_filter_free(relay_filter_t *f);

/** @brief Whether the consumer takes every row as it is. */
int relay_filter_all(const relay_filter_t *f);

/** @brief Match the window's tables; call before relay_filter_row. */
void relay_filter_window(relay_filter_t *f, const relay_win_t *w);

/**
 * @brief Whether the consumer wants the row: its table matches and the
 *        partition of its key, or of its old key when the row is an
 *        UPDATE that moved the key, is one of the consumer's.
 */
int relay_filter_row(const relay_filter_t *f, const relay_win_t *w,
                     const relay_row_t *r);

/**
 * @brief Whether the consumer wants a schema change of the window: every
 *        one without table patterns, else by the tables its statement
 *        names (hb_sql_names_wanted(), the rule of heraldctl decode and
 *        tail). Partition filters do not apply to schema changes.
 */
int relay_filter_ddl(const relay_filter_t *f, const relay_ddl_t *d);

/** @brief The projection for "db.table", or -1 when none applies. */
int relay_filter_proj(const relay_filter_t *f, const char *table);

/**
 * @brief Re-encode one row field (tag, length, RowChange) keeping only the
 *        projected columns and the key columns. Appends to out.
 * @returns the offset in out of the new field; *len its length.
 */
size_t relay_filter_project(const relay_filter_t *f, int pj,
                            const uint8_t *field, size_t flen,
                            relay_bytes_t *out, size_t *len);

#endif
