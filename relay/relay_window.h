/*
 * relay_window.h - a decoded window, encoded once for every consumer.
 *
 * The fetcher turns each hb_window_t into one relay_win_t: the packed
 * herald.Window protobuf plus a small index of its row changes (where each
 * one's bytes are, its table, its partition hash) and of its schema
 * changes (where, and the tables each statement names). Consumers that take
 * everything are sent the bytes as they are; a filtered consumer gets the
 * window header followed by the byte ranges of the rows it wants, with no
 * decoding and no re-encoding (see the layout note in proto/herald.proto).
 * Windows are immutable once built and reference-counted, because the ring
 * and every connection writing them hold references.
 */
#ifndef RELAY_WINDOW_H
#define RELAY_WINDOW_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hb.h"
#include "hb_sql.h"
#include "hd_partkey.h"
#include "herald.pb-c.h"

/* One row change inside the packed window. */
typedef struct {
  uint32_t off;            /* of its field (tag + length + RowChange bytes) */
  uint32_t len;            /* of the whole field */
  uint32_t table;          /* index into relay_win_t.tables */
  uint32_t old;            /* an UPDATE that changed the primary key: 1 + the
                              index of the key before it in relay_win_t.olds;
                              0 for every other row (they are rare, so the
                              old keys are kept apart) */
  uint32_t schema_version; /* of its table's TableSchema (0: none) */
  hd_key_t key;
} relay_row_t;

/* One schema change inside the packed window. */
typedef struct {
  uint32_t off, len;    /* of its field (tag + length + SchemaChange bytes) */
  hb_sql_names_t names; /* the tables its statement names, and its database:
                           what table filters select it by (hb_sql.h) */
} relay_ddl_t;

typedef struct {
  uint64_t scn;
  uint64_t ts_ms;
  uint32_t chunk;    /* of a window in chunks: this one's index */
  uint8_t more;      /*   and whether more chunks follow */
  uint8_t disk_only; /* a marker in the ring: the window (stored in chunks)
                        is read from the log store, buf is empty */
  _Atomic uint32_t refs;
  uint32_t hdr_len; /* window-level fields at the start of buf */
  uint32_t nrows;
  uint32_t nddl;
  uint32_t ddl_off;  /* DDL fields follow the rows: [ddl_off, len) */
  relay_ddl_t *ddls; /* nddl entries, in order */
  uint32_t ntables;
  char **tables; /* "db.table" of the rows, deduplicated */
  uint32_t nsch; /* the distinct (table, schema version) pairs of its rows */
  struct relay_sch {
    uint32_t table, version;
    uint64_t key; /* relay_sch_key() of the pair */
  } * sch;
  relay_row_t *rows;
  hd_key_t *olds; /* the old keys of rows whose key moved */
  uint32_t nolds;
  uint8_t *buf; /* packed herald.Window */
  size_t len;
  size_t mem; /* bytes this window holds, for the ring's budget */
} relay_win_t;

/* A (table, schema version) pair as one number, for the server's record
 * of what each consumer was sent: FNV-1a of "db.table", then the version. */
static inline uint64_t relay_sch_key(const char *dbtable, uint32_t version) {
  uint64_t h = 1469598103934665603ull;
  for (const char *p = dbtable; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  h ^= (uint64_t)version << 17 | version;
  return h ? h : 1;
}

/* Scratch memory reused from window to window by one thread. */
typedef struct relay_wb relay_wb_t;

struct relay_schemas;

/** @brief A builder for one thread; free with relay_wb_free(). */
relay_wb_t *relay_wb_new(void);

/** @brief Register each table's schema version with s while building
 *         (the fetcher's builder); without it rows carry no version. */
void relay_wb_set_schemas(relay_wb_t *wb, struct relay_schemas *s);

/** @brief Whether the last relay_win_build() could not keep a schema
 *         (then the window must not be stored). */
int relay_wb_failed(const relay_wb_t *wb);
void relay_wb_free(relay_wb_t *wb);

/**
 * @brief Encode a decoded transaction (and the DDL statements that came
 *        with it, which may be none) into a new window with one reference.
 * @returns the window; release with relay_win_release().
 * @locality the thread that owns wb
 */
relay_win_t *relay_win_build(relay_wb_t *wb, const hb_window_t *w,
                             const hb_ddl_t *ddl, size_t nddl);

/**
 * @brief The header of one chunk of a window stored in chunks: the
 *        window-level fields of w (known at its commit) with rows_total of
 *        the chunk, its index and whether more follow. Appended to out.
 * @returns the header's length
 */
size_t relay_win_chunk_header(const hb_window_t *w, uint32_t rows_total,
                              uint32_t chunk, int more, uint8_t **out,
                              size_t *cap);

/** @brief A ring marker for a window the log store holds in chunks. */
relay_win_t *relay_win_marker(uint64_t scn, uint64_t ts_ms);

/** @brief A window holding only DDL (a statement outside a transaction). */
relay_win_t *relay_win_build_ddl(relay_wb_t *wb, const hb_ddl_t *ddl);

/**
 * @brief Rebuild the index of a packed window read back from the log
 *        store. buf is taken over on success (and left to the caller on
 *        failure).
 * @returns the window, or NULL if buf is not a valid packed window.
 */
relay_win_t *relay_win_from_packed(relay_wb_t *wb, uint8_t *buf, size_t len);

/** @brief Take a reference. @locality any thread */
relay_win_t *relay_win_ref(relay_win_t *w);

/** @brief Drop a reference; the last one frees. @locality any thread */
void relay_win_release(relay_win_t *w);

#endif
