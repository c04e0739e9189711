/*
 * hb.h - the binlog decoder: MySQL 5.5-8.x and MariaDB 10.x binary logs to
 * transactions of typed row changes.
 *
 * The core is event-at-a-time, so that the same code serves files
 * (hb_file.h) and a replication connection: the caller frames events (each
 * starts with the 19-byte v4 header and is exactly event_size bytes long)
 * and feeds them with their offset in the binlog file. The decoder keeps the
 * state the format needs between events - the format description (checksum
 * algorithm, post-header lengths), the table maps, the current file name and
 * the open transaction - and calls back once per complete transaction (a
 * "window") and once per schema change.
 *
 * Nothing here does I/O. Errors are returned as negative codes; the message
 * ("FILE:OFFSET: what is wrong") is kept in the decoder, see
 * hb_decoder_errmsg(). Corrupt input of any kind gives an error, never a
 * crash: every length read from the input is checked before use.
 *
 * Rendering the windows as JSON lines is a separate step (hb_json.h).
 */
#ifndef HB_H
#define HB_H

#include <stddef.h>
#include <stdint.h>

/* The decoder's error codes, HB_ECORRUPT, HB_ETRUNCATED..., are the BINLOG
 * block of herald's error space (HD_ERR_IN(err, BINLOG)); hd_strerror()
 * gives their messages. */
#include "hd_err.h"

/* Column types as they appear in table maps (MySQL's enum_field_types).
 * ENUM and SET normally arrive as STRING with the real type in the
 * metadata; the decoder resolves that, so hb_column_t.type says ENUM/SET. */
enum {
  HB_T_DECIMAL = 0,
  HB_T_TINY = 1,
  HB_T_SHORT = 2,
  HB_T_LONG = 3,
  HB_T_FLOAT = 4,
  HB_T_DOUBLE = 5,
  HB_T_NULL = 6,
  HB_T_TIMESTAMP = 7,
  HB_T_LONGLONG = 8,
  HB_T_INT24 = 9,
  HB_T_DATE = 10,
  HB_T_TIME = 11,
  HB_T_DATETIME = 12,
  HB_T_YEAR = 13,
  HB_T_NEWDATE = 14,
  HB_T_VARCHAR = 15,
  HB_T_BIT = 16,
  HB_T_TIMESTAMP2 = 17,
  HB_T_DATETIME2 = 18,
  HB_T_TIME2 = 19,
  HB_T_VECTOR = 242,
  HB_T_JSON = 245,
  HB_T_NEWDECIMAL = 246,
  HB_T_ENUM = 247,
  HB_T_SET = 248,
  HB_T_TINY_BLOB = 249,
  HB_T_MEDIUM_BLOB = 250,
  HB_T_LONG_BLOB = 251,
  HB_T_BLOB = 252,
  HB_T_VAR_STRING = 253,
  HB_T_STRING = 254,
  HB_T_GEOMETRY = 255
};

/* What a decoded value holds. Text kinds (s, len) are never
 * NUL-terminated and are valid UTF-8 unless said otherwise. */
typedef enum {
  HB_V_ABSENT = 0, /* column not in this row image (minimal row image) */
  HB_V_NULL,
  HB_V_INT,       /* n.i: signed integers, YEAR */
  HB_V_UINT,      /* n.u: unsigned integers, BIT */
  HB_V_FLOAT,     /* n.f: FLOAT */
  HB_V_DOUBLE,    /* n.d: DOUBLE */
  HB_V_DECIMAL,   /* s: "-12.3400", exactly the column's scale */
  HB_V_DATE,      /* s: "YYYY-MM-DD" */
  HB_V_TIME,      /* s: "[-]HH:MM:SS[.ffffff]" */
  HB_V_DATETIME,  /* s: "YYYY-MM-DD HH:MM:SS[.ffffff]" */
  HB_V_TIMESTAMP, /* s: as DATETIME, in UTC */
  HB_V_STRING,    /* s: text converted to UTF-8 */
  HB_V_BYTES,     /* s: binary bytes (BINARY, BLOB, GEOMETRY, ...) */
  HB_V_BADTEXT,   /* s: raw bytes of a text column that are not valid in
                     its charset (or, charset unknown, not UTF-8) */
  HB_V_ENUM,      /* n.u: index (1-based, 0 = ''); s: label or NULL when
                     labels are unknown */
  HB_V_SET,       /* n.u: bitmask; s: labels joined by ',' or NULL */
  HB_V_JSON,      /* s: JSON text */
  HB_V_JSON_DIFF  /* s: JSON array of {"op","path"[,"value"]} objects: a
                     partial JSON update that could not be applied because
                     the before image lacks the document */
} hb_vkind_t;

typedef struct {
  uint8_t kind; /* hb_vkind_t */
  uint32_t len; /* bytes at s */
  union {
    int64_t i;
    uint64_t u;
    double d;
    float f;
  } n;
  const char *s;
} hb_value_t;

typedef struct {
  const char *name; /* from metadata or the schema; "@N" (1-based) when
                       unknown */
  uint8_t type;     /* HB_T_*, STRING's real type resolved */
  uint8_t is_unsigned;
  uint8_t nullable;
  uint16_t meta;    /* type metadata as in the table map */
  uint16_t charset; /* collation id, 0 when unknown */
  uint32_t nlabels; /* ENUM/SET labels (UTF-8), 0 when unknown */
  const char *const *labels;
} hb_column_t;

typedef struct hb_table hb_table_t;
struct hb_table {
  uint64_t table_id;
  const char *db;
  const char *name;
  uint32_t ncols;
  const hb_column_t *cols;
  uint32_t npk;        /* primary key columns, in key order; 0: no primary */
  const uint32_t *pk;  /*   key or unknown */
  uint8_t names_known; /* column names came from metadata or the schema */
  uint32_t schema_version; /* hb_schema_version() of the definition, computed
                              once per table map (0: a synthesized table) */
};

typedef struct {
  char op; /* 'c' insert, 'u' update, 'd' delete */
  const hb_table_t *table;
  uint64_t pos;             /* offset of the rows event; inside a MySQL
                               transaction payload, of the payload event */
  const hb_value_t *before; /* table->ncols values, or NULL (insert) */
  const hb_value_t *after;  /* table->ncols values, or NULL (delete) */
} hb_row_t;

/* A statement that is not BEGIN/COMMIT/ROLLBACK/SAVEPOINT/XA: DDL, or DML
 * logged in statement format. */
typedef struct {
  uint64_t scn; /* file_index << 32 | end offset of the query event; inside
                   a transaction, its window's SCN */
  const char *file;
  uint64_t pos;     /* offset of the query event */
  const char *gtid; /* NULL when anonymous */
  uint64_t ts_ms;
  uint32_t server_id;
  const char *db;        /* default database, "" when none */
  const char *statement; /* UTF-8 (invalid bytes replaced by U+FFFD) */
  size_t len;
  size_t row_index; /* inside a window: how many of its row changes
                       precede the statement */
} hb_ddl_t;

/* A committed transaction. Everything it points to is owned by the
 * decoder and valid only during the callback. */
typedef struct {
  uint64_t scn;        /* file_index << 32 | end_pos */
  const char *file;    /* binlog file name */
  uint32_t file_index; /* numeric suffix of the file name, 0 if none */
  uint32_t end_pos;    /* end offset of the commit event (or of the
                          transaction payload event holding it) */
  uint64_t begin_pos;  /* offset of the first event of the transaction */
  const char *gtid;    /* "0-1-42" (MariaDB), "uuid:N" (MySQL), NULL when
                          anonymous */
  uint64_t ts_ms;      /* commit event's header timestamp * 1000 */
  uint32_t server_id;  /* of the commit event */
  size_t nrows;        /* row changes that passed the table filter */
  const hb_row_t *rows;
  size_t nddl;         /* statements logged inside the transaction */
  const hb_ddl_t *ddl; /*   (CREATE ... SELECT, statement-format
                               DML), in order; scn is the window's */
  uint32_t chunk;      /* with hb_config_t.chunk_bytes: how many chunks of
                          this transaction came before (0: none) */
  uint8_t more;        /* 1 in a chunk (on_chunk): the transaction goes on;
                          scn, end_pos, ts_ms and server_id are not known
                          yet (0) */
  uint64_t row_base;   /* row changes of the transaction before these */
} hb_window_t;

/* An INCIDENT event: the source says changes may be missing here. */
typedef struct {
  const char *file;
  uint64_t pos;
  uint32_t server_id;
  uint16_t code;       /* 1: LOST_EVENTS */
  const char *message; /* NUL-terminated */
} hb_incident_t;

/* What the schema provider fills in for one column. The decoder passes
 * entries preset to "unknown" (NULL, -1, 0); strings must stay valid until
 * the callback returns (the decoder copies them). */
typedef struct {
  const char *name;
  int is_unsigned; /* -1 unknown, 0 signed, 1 unsigned */
  int charset;     /* collation id; 0 unknown */
  uint32_t nlabels;
  const char *const *labels; /* ENUM/SET labels in UTF-8 */
} hb_schema_col_t;

typedef struct {
  /**
   * @brief Called once per complete transaction, in binlog order.
   * @returns 0 to go on; anything else stops decoding and is returned by
   *          hb_decoder_feed() (use a negative code).
   */
  int (*on_window)(void *ud, const hb_window_t *w);
  /**
   * @brief Called per statement outside a transaction (optional). Same
   *        return rule. A statement inside a transaction is not passed
   *        here but with its window (hb_window_t.ddl), so that it shares
   *        the transaction's SCN: a consumer resuming after it can never
   *        resume in the middle of the transaction.
   */
  int (*on_ddl)(void *ud, const hb_ddl_t *d);
  /**
   * @brief Called per INCIDENT event (optional). Without it an incident
   *        is an error (HB_EINCIDENT), as it is for a MySQL replica.
   */
  int (*on_incident)(void *ud, const hb_incident_t *inc);
  /**
   * @brief Column names, signedness, charsets, ENUM/SET labels and the
   *        primary key for a table whose table map lacks them (no
   *        binlog_row_metadata=FULL). Optional. Called once per table map
   *        change, and again after a DDL statement.
   * @param cols  ncols entries to fill (preset to unknown)
   * @param pk    room for ncols column indexes; *npk = how many are used
   * @returns 0 filled, 1 unknown table (positional names are used), <0 an
   *          error that stops decoding with HB_ESCHEMA.
   */
  int (*schema)(void *ud, const char *db, const char *table, uint32_t ncols,
                hb_schema_col_t *cols, uint32_t *pk, uint32_t *npk);
  /**
   * @brief Which tables to decode (optional; default all). Row changes of
   *        other tables are skipped without being decoded.
   * @returns 1 to decode, 0 to skip.
   */
  int (*table_filter)(void *ud, const char *db, const char *table);
  void *ud;
  /** Largest decompressed transaction payload or compressed event
   *  accepted, in bytes; 0 means 1 GiB. */
  size_t max_payload;
  /**
   * @brief With chunk_bytes > 0: called whenever the open transaction's
   *        decoded row changes take chunk_bytes or more (checked after
   *        each rows event), with those rows as a window with more = 1;
   *        they are then forgotten, so memory stays bounded whatever the
   *        transaction's size. on_window then gets the rest, with chunk =
   *        the number of chunks before it. A transaction that is dropped
   *        (rolled back, or cut off by a crash of the source) after chunks
   *        were handed out is not announced: the next chunk or window with
   *        chunk == 0 starts another transaction, and the caller discards
   *        what it kept. Same return rule as on_window.
   */
  int (*on_chunk)(void *ud, const hb_window_t *w);
  size_t chunk_bytes;
} hb_config_t;

typedef struct hb_decoder hb_decoder_t;

/* Counters, for summaries and metrics. */
typedef struct {
  uint64_t events;         /* events fed (inner events of payloads included) */
  uint64_t windows;        /* windows emitted */
  uint64_t rows;           /* row changes emitted */
  uint64_t ddls;           /* schema changes emitted */
  uint64_t bytes;          /* bytes of events fed */
  uint64_t skipped_events; /* rows events of filtered tables */
} hb_stats_t;

/**
 * @brief Create a decoder. cfg is copied.
 * @returns a decoder to free with hb_decoder_free(). Never NULL.
 * @locality any thread; one decoder is used by one thread at a time
 */
hb_decoder_t *hb_decoder_new(const hb_config_t *cfg);

/** @brief Free a decoder and everything it owns (NULL is fine). */
void hb_decoder_free(hb_decoder_t *dec);

/**
 * @brief Name the binlog file the next events come from (a ROTATE event
 *        does the same). The file index is the name's numeric suffix
 *        ("binlog.000003" -> 3), 0 when it has none.
 */
void hb_decoder_set_file(hb_decoder_t *dec, const char *name);

/**
 * @brief Decode one event.
 * @param ev   the event, starting at its 19-byte header; exactly
 *             event_size bytes. Not kept after the call.
 * @param pos  the event's offset in its binlog file
 * @returns 0, or a negative code (HB_E*, or what a callback returned).
 *          After an error the message is in hb_decoder_errmsg(); the
 *          decoder must not be fed again (free it or hb_decoder_reset()).
 */
int hb_decoder_feed(hb_decoder_t *dec, const uint8_t *ev, size_t len,
                    uint64_t pos);

/**
 * @brief End of input. Returns HB_EINCOMPLETE when a transaction is open
 *        (its row changes are dropped; the message says how many), else 0.
 */
int hb_decoder_finish(hb_decoder_t *dec);

/**
 * @brief Skip events until the next transaction starts. For resuming
 *        from an offset that may lie inside a transaction: its remaining
 *        events are dropped instead of failing on unknown table ids.
 */
void hb_decoder_resync(hb_decoder_t *dec);

/**
 * @brief Forget the open transaction, the table maps and the error, e.g.
 *        after a replication connection was re-established. The format
 *        description and the file name are kept.
 */
void hb_decoder_reset(hb_decoder_t *dec);

/** @brief Change the callbacks' user data (a decoder reused for another
 *         piece of input). */
void hb_decoder_set_ud(hb_decoder_t *dec, void *ud);

/** @brief The last error: "FILE:OFFSET: what is wrong". "" if none. */
const char *hb_decoder_errmsg(const hb_decoder_t *dec);

/** @brief Counters since the decoder was created. */
void hb_decoder_stats(const hb_decoder_t *dec, hb_stats_t *st);

/** @brief Whether a FORMAT_DESCRIPTION event has been seen. */
int hb_decoder_has_fde(const hb_decoder_t *dec);

/**
 * @brief Numeric suffix of a binlog file name: "mysql-bin.000042" -> 42;
 *        0 when the part after the last '.' is not all digits.
 * @returns the index; may exceed 32 bits (SCNs then fail with
 *          HB_ESCN_RANGE).
 */
uint64_t hb_file_index(const char *name);

#endif
