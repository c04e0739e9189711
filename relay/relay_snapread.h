/*
 * relay_snapread.h - the snapshot reader: the rows that exist in a source
 * table, read in chunks by primary key, as the decoder would have given
 * them from the binlog (docs/snapshots-design.md).
 *
 * Each chunk is one short read-only transaction (START TRANSACTION WITH
 * CONSISTENT SNAPSHOT ... COMMIT) whose SCN is MariaDB's
 * Binlog_snapshot_file/Binlog_snapshot_position: the rows are exactly the
 * state at that SCN. The chunk's table and values come out of herald's own
 * decoder (a table map and rows events built from information_schema and
 * the binary protocol's values), so that TableSchema, schema_version and
 * every value equal what the stream gives for the same row.
 *
 * MariaDB only for now: MySQL has no binlog_snapshot_* status variables,
 * and a chunk on MySQL fails with HD_ESNAPSHOT (the low/high watermark
 * reading of the design is not built).
 *
 * One reader is used by one thread at a time; it blocks on the source.
 */
#ifndef RELAY_SNAPREAD_H
#define RELAY_SNAPREAD_H

#include <stddef.h>
#include <stdint.h>

#include "hb.h"
#include "hd_confdefs.h"

typedef struct relay_snapread relay_snapread_t;

/**
 * @brief A reader on its own connection to conf->source (host, port, user;
 *        password given), session time_zone '+00:00' (TIMESTAMP values in
 *        UTC, as the decoder gives them), utf8mb4, results as raw bytes.
 *        Connects at once (so that a wrong password shows here); after a
 *        lost connection the next call connects again. conf and password
 *        are copied.
 * @returns 0 and *out (free with relay_snapread_close()), or a negative
 *          code with err filled.
 * @locality any thread
 */
int relay_snapread_open(const hd_relay_conf_t *conf, const char *password,
                        relay_snapread_t **out, char *err, size_t errlen);
void relay_snapread_close(relay_snapread_t *r);

typedef struct {
  char *db, *table;
  uint64_t rows_estimate; /* information_schema.TABLES.TABLE_ROWS */
  int has_pk;
} relay_snaptable_t;

/**
 * @brief Base tables (no views) whose "db.table" matches one of patterns
 *        (hd_glob_match, as source.tables), never in mysql,
 *        information_schema, performance_schema or sys; sorted bytewise
 *        by "db.table".
 * @returns 0 with *out and *n set (free with relay_snaptables_free()), or a
 * negative code with err filled.
 */
int relay_snapread_tables(relay_snapread_t *r, const char *const *patterns,
                          size_t npat, relay_snaptable_t **out, size_t *n,
                          char *err, size_t errlen);
void relay_snaptables_free(relay_snaptable_t *t, size_t n);

typedef struct relay_snapchunk {
  /* scn, file, file_index, end_pos and begin_pos: the snapshot position;
   * ts_ms 0, gtid NULL; nrows rows, op 'r', after = the row's values,
   * before NULL, pos = the snapshot position. */
  hb_window_t win;
  const hb_table_t *table; /* as the decoder builds it from the table map
                              (schema_version set); owned by the chunk */
  /* The watermarks: rows as of scn_high, except those the binlog changed
   * after scn_low (MariaDB: both the consistent snapshot's SCN; MySQL:
   * the binlog position before and after the SELECT, DBLog's window) */
  uint64_t scn_low, scn_high;
  /* Packed herald.SnapshotKey of the last row's primary key values in key
   * order (hb_value_to_pb, as the relay encodes values); NULL/0 when the
   * chunk has no rows. Pass it back as after for the next chunk. */
  uint8_t *last_key;
  size_t last_key_len;
  int table_done; /* fewer rows than limit: the table is finished */
  /* the reader's own memory */
  hb_decoder_t *dec; /* owns table */
  hb_row_t *rows;
  hb_value_t *vals;
  char *text; /* the values' bytes */
  char *file;
} relay_snapchunk_t;

/**
 * @brief Read the next chunk of db.table: at most limit rows whose primary
 *        key is above after (a packed SnapshotKey; NULL: from the first
 *        row), in key order. Key literals compare in each column's own
 *        collation (quoted strings; X'..' for binary columns only).
 *        A connection found lost is replaced and the chunk read again,
 *        once.
 * @returns 0 and *out (free with relay_snapchunk_free()); HD_ESNAPSHOT
 *          for a table without a primary key ("table db.t has no primary
 *          key: ..."), a column type the reader cannot read, a bad after
 *          or a source without binlog_snapshot_* (MySQL); -ENOENT for a
 *          table that does not exist; -EAGAIN when the table changed while
 *          it was read (try again); other negative codes for the source's
 *          errors. err names the table.
 */
int relay_snapread_chunk(relay_snapread_t *r, const char *db, const char *table,
                         const uint8_t *after, size_t after_len, uint32_t limit,
                         relay_snapchunk_t **out, char *err, size_t errlen);
void relay_snapchunk_free(relay_snapchunk_t *c);

#endif
