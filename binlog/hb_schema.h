/*
 * hb_schema.h - what a consumer needs to know of a table's columns to
 * create a destination table and tell every kind of value apart: the SQL
 * type with its length, precision, scale and fractional seconds, signedness,
 * charset, ENUM/SET labels, nullability and the primary key, as the binlog
 * describes them (table map and its optional metadata, or the schema
 * provider).
 *
 * The relay sends it as herald.TableSchema; the description and the
 * schema version are computed here so that every relay of a source, and
 * every restart, give the same version for the same definition.
 */
#ifndef HB_SCHEMA_H
#define HB_SCHEMA_H

#include <stdint.h>

#include "hb.h"
#include "hb_buf.h"

typedef struct {
  const char *name;
  const char *base;    /* "varchar", "int", "datetime", "longtext", ... */
  uint8_t type;        /* HB_T_*, as resolved by the decoder */
  uint32_t max_bytes;  /* char, binary, text, blob: the largest value in
                          bytes the column holds (2^32-1 for LONG*) */
  uint32_t length;     /* char/varchar: characters (0 when the charset's
                          width is unknown); binary/varbinary: bytes; bit:
                          bits */
  uint32_t precision;  /* decimal */
  uint32_t scale;      /* decimal */
  uint32_t fsp;        /* time, datetime, timestamp: 0-6 */
  int numeric;         /* an integer, float, double or decimal type */
  int is_unsigned;     /* numeric: 1 or 0, -1 unknown; 0 otherwise */
  int nullable;        /* from the table map's NULL bitmap */
  const char *charset; /* text: MySQL's charset name; NULL otherwise */
  uint32_t collation;  /* collation id, 0 unknown */
  uint32_t nlabels;    /* ENUM/SET */
  const char *const *labels;
  uint32_t pk;          /* 1-based position in the primary key, 0 none */
  const char *sql_type; /* when set (a description received from a relay),
                           what hb_render_schema prints as type */
} hb_coldesc_t;

/** @brief Describe column i of t (pointers are into t). */
void hb_describe_column(const hb_table_t *t, uint32_t i, hb_coldesc_t *d);

/**
 * @brief The column's SQL type as information_schema.COLUMNS.COLUMN_TYPE
 *        writes it, less integer display widths: "varchar(20)",
 *        "decimal(12,4) unsigned", "datetime(6)", "enum('a','b')".
 */
void hb_render_sql_type(const hb_coldesc_t *d, hb_buf_t *out);

/**
 * @brief The schema version of a table: a 32-bit digest of its columns'
 *        descriptions and primary key (never 0). Equal definitions give
 *        equal versions on every relay and after restarts; any change of
 *        a name, type, length, charset, label, nullability or key gives
 *        another (versions are identifiers, not ordered).
 */
uint32_t hb_schema_version(const char *db, const char *table,
                           const hb_coldesc_t *cols, uint32_t n);

/**
 * @brief Append the schema line of the change format ("op":"schema"):
 *        db, table, schema_version and each column's description.
 */
void hb_render_schema(const char *db, const char *table, uint32_t version,
                      const hb_coldesc_t *cols, uint32_t n, hb_buf_t *out);

#endif
