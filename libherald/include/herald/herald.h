/*
 * herald.h - libherald, the client library of herald consumers.
 *
 * A client streams one source's transaction windows from its relays, in
 * SCN order, whole (a large window in chunks), with the filters of a
 * subscription applied by the relay: table patterns, a partition filter,
 * a column projection. It finds the relays in ZooKeeper or takes a fixed
 * list, moves to another relay when one fails or stalls, and resumes after
 * the last window it delivered: no gap, and no window delivered twice in
 * the client's life.
 *
 * Threads: a client is used from one thread at a time. Callbacks (the
 * dispatch callbacks and the error callback) run only inside
 * herald_poll() / herald_dispatch(), on the thread that calls them. The
 * only threads of the library are the ZooKeeper client's own (when
 * zookeeper.hosts is set), and they never call back into the application.
 *
 * Ownership: the application owns what it creates (a conf, a client) and
 * frees it with the matching call; everything the library returns is
 * owned by the client and valid until the next herald_poll() or
 * herald_dispatch() on it, unless said otherwise. No global state: any
 * number of clients may live in one process.
 *
 * Status codes: 0 (HERALD_OK) is success, HERALD_TIMED_OUT (positive)
 * means nothing happened within the timeout, negative values are errors
 * (herald_strerror()).
 *
 * See docs/libherald.md.
 */
#ifndef HERALD_H
#define HERALD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HERALD_API __attribute__((visibility("default")))
#else
#define HERALD_API
#endif

#define HERALD_VERSION_MAJOR 0
#define HERALD_VERSION_MINOR 1
#define HERALD_VERSION_PATCH 0

/** @brief The library's version, "0.1.0". */
HERALD_API const char *herald_version(void);

/* ------------------------------------------------------------ status */

enum {
  HERALD_OK = 0,
  HERALD_TIMED_OUT = 1,         /* nothing within the timeout */
  HERALD_ERR_ARG = -1,          /* a bad argument or conf value */
  HERALD_ERR_SCN_TOO_OLD = -2,  /* every relay's retention starts after the
                                   position: the consumer needs a bootstrap
                                   (herald_oldest_scn() says where the
                                   relays start); fatal */
  HERALD_ERR_AUTH = -3,         /* the relay refused the token; fatal */
  HERALD_ERR_REFUSED = -4,      /* the relay refused the subscription (a
                                   bad pattern or filter, a protocol
                                   version, a row larger than
                                   max_frame_bytes); fatal */
  HERALD_ERR_NO_RELAY = -5,     /* no relay can be reached now: the client
                                   backs off and tries again (reported to
                                   the error callback; not fatal) */
  HERALD_ERR_RELAY = -6,        /* a relay failed, closed, stalled or sent
                                   a bad frame: the client moves to another
                                   (error callback; not fatal) */
  HERALD_ERR_INCONSISTENT = -7, /* relays disagree about a window: after a
                                   failover the window being resumed did
                                   not come again; fatal */
  HERALD_ERR_ZOOKEEPER = -8,    /* ZooKeeper could not be read (error
                                   callback; not fatal) */
  HERALD_ERR_STATE = -9,        /* a call out of order: an ack beyond what
                                   was delivered or below the last ack */
  HERALD_ERR_FAILED = -10,      /* the client stopped on an earlier fatal
                                   error (herald_error() says which) */
  HERALD_ERR_CALLBACK = -11     /* not used by the library: a convenient
                                   value for a callback to stop dispatch */
};

/** @brief A short English text for a status code. Static; never NULL. */
HERALD_API const char *herald_strerror(int status);

/* ------------------------------------------------------- configuration */

typedef struct herald_conf herald_conf_t;

/** @brief A new configuration with every default. */
HERALD_API herald_conf_t *herald_conf_new(void);

/**
 * @brief Set one key (table below) from its text.
 * @param errstr  receives a message naming the key and what is wrong
 * @returns HERALD_OK or HERALD_ERR_ARG
 *
 * | key | value | default |
 * |---|---|---|
 * | `relays` | comma list of host:port | — |
 * | `zookeeper.hosts` | ZooKeeper connect string | — |
 * | `zookeeper.session_timeout_ms` | milliseconds | 10000 |
 * | `zookeeper.auth` | `user:password` (zookeeper.auth_file) | none |
 * | `cluster` | herald cluster name (with zookeeper.hosts) | — |
 * | `source` | source name (with zookeeper.hosts) | — |
 * | `token` | the relays' shared token | none |
 * | `tls` | `true`: TLS with every relay | as registered |
 * | `tls_ca_file` | PEM CAs for the relays' certificates | the system's |
 * | `tls_verify` | `false`: accept any relay certificate | `true` |
 * | `tls_cert_file` | PEM client certificate | none |
 * | `tls_key_file` | PEM key of tls_cert_file | none |
 * | `client_id` | shown in the relays' logs | `libherald` |
 * | `tables` | comma list of db.table patterns (`*` wildcard) | all |
 * | `partition.count` | N, 1-65536 | no partition filter |
 * | `partition.list` | comma list of partitions below N | all |
 * | `partition.function` | `hash` (of the primary key) or `mod` | `hash` |
 * | `partition.key_column` | mod: the integer key column | the key |
 * | `projection` | `db.table:col1,col2`; each set adds one | none |
 * | `start` | `earliest`, `latest` or an SCN (start after it) | `latest` |
 * | `stall_timeout_ms` | move on when a relay sends nothing (not even a
 * heartbeat) for this long | 5000 | | `connect_timeout_ms` | per connection
 * attempt and first frame | 5000 | | `max_frame_bytes` | largest frame
 * accepted, at least 65536; larger windows come in chunks | 67108864 | |
 * `snapshot` | `on`: first the rows that exist (snapshot windows of
 * HERALD_OP_READ changes, merged into the stream), then the stream | `off` |
 * `snapshot.tables` | comma list of db.table patterns to snapshot | `tables` |
 * `snapshot.position` | resume after herald_snapshot_position() | start |
 * `snapshot.chunk_rows` | rows per chunk (0: the relay's) | 0 |
 * `backoff_max_ms` | longest wait between rounds over the relays | 5000 | |
 * `failover` | `false`: a relay's failure ends the client (HERALD_ERR_RELAY,
 * HERALD_ERR_NO_RELAY when it cannot be reached) instead of moving on | `true`
 * |
 *
 * Either `relays` or `zookeeper.hosts` + `cluster` + `source` is needed.
 */
HERALD_API int herald_conf_set(herald_conf_t *conf, const char *key,
                               const char *value, char *errstr, size_t errlen);

/**
 * @brief Called for problems the client works around (status
 *        HERALD_ERR_RELAY, HERALD_ERR_NO_RELAY, HERALD_ERR_ZOOKEEPER) and
 *        for the fatal error that stops it; only from herald_poll() or
 *        herald_dispatch(). message names the relay, SCN and reason.
 */
typedef void herald_error_cb(void *ud, int status, const char *message);
HERALD_API void herald_conf_set_error_cb(herald_conf_t *conf,
                                         herald_error_cb *cb, void *ud);

HERALD_API void herald_conf_free(herald_conf_t *conf);

/* --------------------------------------------------------------- client */

typedef struct herald_client herald_client_t;

/**
 * @brief A client for conf (copied: free conf whenever you like). It
 *        connects on the first poll.
 * @returns NULL with errstr filled when conf is incomplete or
 *          inconsistent.
 */
HERALD_API herald_client_t *herald_client_new(const herald_conf_t *conf,
                                              char *errstr, size_t errlen);

/** @brief Close the connection and free everything. NULL is fine. */
HERALD_API void herald_client_free(herald_client_t *c);

typedef struct herald_window herald_window_t;

/**
 * @brief Wait up to timeout_ms (0: do not wait; -1: forever) for the next
 *        window, or the next chunk of a window in chunks.
 * @param out  the window, valid until the next poll or dispatch
 * @returns HERALD_OK (*out set), HERALD_TIMED_OUT, or a fatal error
 *          (HERALD_ERR_SCN_TOO_OLD, HERALD_ERR_AUTH, HERALD_ERR_REFUSED,
 *          HERALD_ERR_INCONSISTENT, then HERALD_ERR_FAILED on every later
 *          call). Relay failures are not returned: the client fails over
 *          and reports them to the error callback (with `failover` false
 *          they are fatal: HERALD_ERR_RELAY, HERALD_ERR_NO_RELAY).
 */
HERALD_API int herald_poll(herald_client_t *c, int timeout_ms,
                           const herald_window_t **out);

enum {
  HERALD_STATE_CONNECTING = 0, /* dialing or subscribing */
  HERALD_STATE_STREAMING = 1,  /* subscribed to a relay */
  HERALD_STATE_WAITING = 2,    /* no relay reachable: backing off */
  HERALD_STATE_FAILED = 3      /* stopped on a fatal error */
};
/** @brief What the client is doing (HERALD_STATE_*). */
HERALD_API int herald_state(const herald_client_t *c);

/** @brief The relay streamed from ("host:port"), or NULL. */
HERALD_API const char *herald_relay(const herald_client_t *c);

/** @brief The fatal error's message, or the last relay problem; "" when
 *         none. */
HERALD_API const char *herald_error(const herald_client_t *c);

/**
 * @brief The SCN the client has delivered everything up to: the last
 *        whole window returned (its last chunk), or a later position a
 *        relay reported with nothing in between for this subscription
 *        (filtered windows and idle heartbeats move it). 0 before any.
 */
HERALD_API uint64_t herald_delivered_scn(const herald_client_t *c);

/** @brief Commit time (ms since the epoch) of the window at
 *         herald_delivered_scn(); 0 when unknown. */
HERALD_API uint64_t herald_delivered_ts_ms(const herald_client_t *c);

/**
 * @brief Record that the application has applied everything up to scn.
 * @returns HERALD_OK; HERALD_ERR_STATE when scn is beyond
 *          herald_delivered_scn() or below the last ack.
 */
HERALD_API int herald_ack(herald_client_t *c, uint64_t scn);

/** @brief The last acknowledged SCN (0 before any). */
HERALD_API uint64_t herald_acked_scn(const herald_client_t *c);

/** @brief The relays' newest SCN and its commit time, from their
 *         heartbeats (0 before one arrives). */
HERALD_API uint64_t herald_relay_newest_scn(const herald_client_t *c);
HERALD_API uint64_t herald_relay_newest_ts_ms(const herald_client_t *c);

/** @brief After HERALD_ERR_SCN_TOO_OLD: the oldest SCN a relay serves. */
HERALD_API uint64_t herald_oldest_scn(const herald_client_t *c);

/**
 * @brief Where the client's snapshot is (docs/snapshots.md): everything
 *        of it up to the last snapshot window delivered, as text to give
 *        back as `snapshot.position` to resume after it. "" before any
 *        snapshot window (and without `snapshot.position`). Valid until
 *        the next poll.
 */
HERALD_API const char *herald_snapshot_position(herald_client_t *c);

/** @brief 1 once the snapshot is over: its last window was delivered, or
 *         `snapshot.position` said so. */
HERALD_API int herald_snapshot_done(const herald_client_t *c);

/** @brief Times the client moved to another relay. */
HERALD_API uint64_t herald_failovers(const herald_client_t *c);

/* -------------------------------------------------------------- windows */

typedef struct herald_change herald_change_t;
typedef struct herald_ddl herald_ddl_t;
typedef struct herald_schema herald_schema_t;
typedef struct herald_value herald_value_t;

/** (file index << 32) | end offset of the commit event. */
HERALD_API uint64_t herald_window_scn(const herald_window_t *w);
/** "domain-server-seq" (MariaDB) or "uuid:n" (MySQL); "" when none. */
HERALD_API const char *herald_window_gtid(const herald_window_t *w);
/** Commit time at the source, ms since the epoch. */
HERALD_API uint64_t herald_window_ts_ms(const herald_window_t *w);
HERALD_API uint32_t herald_window_server_id(const herald_window_t *w);
/** Binlog file of the commit event and the event's end offset. */
HERALD_API const char *herald_window_file(const herald_window_t *w);
HERALD_API uint64_t herald_window_pos(const herald_window_t *w);
/** 0, 1, ... for the chunks of one window as this client delivers them. */
HERALD_API uint32_t herald_window_chunk(const herald_window_t *w);
/** 1 on the window's last (or only) chunk: the window is complete. */
HERALD_API int herald_window_last(const herald_window_t *w);
/** Row changes of the window delivered before this chunk. */
HERALD_API uint64_t herald_window_row_base(const herald_window_t *w);

/** Row changes in this chunk, in binlog order, and the i-th of them. */
HERALD_API size_t herald_window_changes(const herald_window_t *w);
HERALD_API const herald_change_t *herald_window_change(const herald_window_t *w,
                                                       size_t i);

/** Statements logged inside the window (DDL) in this chunk. */
HERALD_API size_t herald_window_ddls(const herald_window_t *w);
HERALD_API const herald_ddl_t *herald_window_ddl(const herald_window_t *w,
                                                 size_t i);

/** Table definitions this chunk carries for the first time in the
 *  client's life (each (table, version) once). */
HERALD_API size_t herald_window_schemas(const herald_window_t *w);
HERALD_API const herald_schema_t *herald_window_schema(const herald_window_t *w,
                                                       size_t i);

/* HERALD_OP_READ: a snapshot row, the row as it is at the window's SCN
 * (docs/snapshots.md); apply it as an upsert. */
enum {
  HERALD_OP_INSERT = 'c',
  HERALD_OP_UPDATE = 'u',
  HERALD_OP_DELETE = 'd',
  HERALD_OP_READ = 'r'
};

/* A snapshot window's progress (docs/snapshots.md). */
typedef struct {
  const char *table;            /* "db.table" of the chunk */
  uint32_t rows_read;           /* rows of the chunk read at the source, before
                                   the partition filter */
  uint64_t table_rows;          /* rows of the table sent so far, this chunk's
                                   included */
  uint64_t table_rows_estimate; /* the source's estimate */
  uint32_t tables_done, tables_total;
  int table_done, done; /* the table / the whole snapshot ends here */
  uint64_t read_scn;    /* the SCN the chunk was read at */
} herald_snapshot_info_t;

/** @brief 1 and *out filled (when not NULL) when w is a snapshot window,
 *         else 0. Strings live as long as the window. */
HERALD_API int herald_window_snapshot(const herald_window_t *w,
                                      herald_snapshot_info_t *out);
HERALD_API int herald_change_op(const herald_change_t *ch);
HERALD_API const char *herald_change_db(const herald_change_t *ch);
HERALD_API const char *herald_change_table(const herald_change_t *ch);
/** Binlog offset of the rows event. */
HERALD_API uint64_t herald_change_pos(const herald_change_t *ch);
HERALD_API uint32_t herald_change_schema_version(const herald_change_t *ch);

enum {
  HERALD_IMAGE_KEY = 0,    /* primary key columns (empty without a key) */
  HERALD_IMAGE_BEFORE = 1, /* update, delete */
  HERALD_IMAGE_AFTER = 2,  /* insert, update */
  HERALD_IMAGE_OLD_KEY = 3 /* update that moved the key: the old key */
};
/** Columns of one image of the change, and the i-th (its name in *name
 *  when name is not NULL). */
HERALD_API size_t herald_change_columns(const herald_change_t *ch, int image);
HERALD_API const herald_value_t *herald_change_value(const herald_change_t *ch,
                                                     int image, size_t i,
                                                     const char **name);
/** The column of that name in the image, or NULL. */
HERALD_API const herald_value_t *
herald_change_find(const herald_change_t *ch, int image, const char *name);
/** The table definition of the change (NULL when the relay sent none). */
HERALD_API const herald_schema_t *
herald_change_schema(herald_client_t *c, const herald_change_t *ch);

/**
 * @brief Whether a key of the change is in a partition this client asks
 *        for, decided exactly as the relay decides which rows to send
 *        (docs/relay.md, Partitions): the key's partition under
 *        partition.function with partition.count partitions, among
 *        partition.list (every partition without a list). A relay sends a
 *        primary-key move (a change with HERALD_IMAGE_OLD_KEY columns) to
 *        the owners of both keys: delete the old key only when
 *        herald_change_owned(c, ch, HERALD_IMAGE_OLD_KEY) is 1, and upsert
 *        the after image only when herald_change_owned(c, ch,
 *        HERALD_IMAGE_KEY) is 1 (docs/change-format.md, Primary-key
 *        moves). Every other change a relay sends is the client's own.
 *
 *        `mod` takes the first primary-key column, as the relay does (it
 *        refuses a subscription with partition.key_column); a key whose
 *        first column is not an integer, and a change without a key, are
 *        in partition 0. No allocation once the client's scratch has
 *        grown to its longest key.
 * @param image  HERALD_IMAGE_KEY (the change's key) or HERALD_IMAGE_OLD_KEY
 *               (the key before a move)
 * @returns 0 for HERALD_IMAGE_OLD_KEY on a change that moved no key;
 *          else 1 when the key is the client's (always, without a
 *          partition filter: no partition.count) and 0 when it is not;
 *          HERALD_ERR_ARG for another image or a NULL argument.
 */
HERALD_API int herald_change_owned(herald_client_t *c,
                                   const herald_change_t *ch, int image);

/** A statement inside the window: its database, text, binlog offset, and
 *  how many of the window's row changes (before filtering) precede it. */
HERALD_API const char *herald_ddl_db(const herald_ddl_t *d);
HERALD_API const char *herald_ddl_statement(const herald_ddl_t *d);
HERALD_API uint64_t herald_ddl_pos(const herald_ddl_t *d);
HERALD_API uint32_t herald_ddl_row_index(const herald_ddl_t *d);

/* --------------------------------------------------------------- values */

enum {
  HERALD_V_ABSENT = 0, /* not in this image (minimal row image) */
  HERALD_V_NULL,       /* SQL NULL */
  HERALD_V_INT,        /* signed integers, YEAR: herald_value_int() */
  HERALD_V_UINT,       /* unsigned integers, BIT, SET/ENUM without labels:
                          herald_value_uint() */
  HERALD_V_FLOAT,      /* herald_value_double() */
  HERALD_V_DOUBLE,     /* herald_value_double() */
  HERALD_V_DECIMAL,    /* text with exactly the column's scale */
  HERALD_V_TEMPORAL,   /* DATE, TIME, DATETIME, TIMESTAMP (UTC) as text */
  HERALD_V_STRING,     /* UTF-8 text; ENUM/SET labels */
  HERALD_V_BYTES,      /* binary strings, BLOB, GEOMETRY */
  HERALD_V_BADTEXT,    /* bytes of a text column invalid in its charset */
  HERALD_V_JSON,       /* a JSON document as text */
  HERALD_V_JSON_DIFF   /* a partial JSON update that could not be applied */
};
HERALD_API int herald_value_type(const herald_value_t *v);
HERALD_API int64_t herald_value_int(const herald_value_t *v);
HERALD_API uint64_t herald_value_uint(const herald_value_t *v);
HERALD_API double herald_value_double(const herald_value_t *v);
/** The bytes of a text or binary value and their length; text is also
 *  NUL-terminated. NULL for the numeric kinds. */
HERALD_API const char *herald_value_data(const herald_value_t *v, size_t *len);

/* -------------------------------------------------------------- schemas */

/** One column of a table definition (docs/protocol.md, Table schemas).
 *  Fields are only ever appended. */
typedef struct {
  const char *name;
  const char *sql_type;  /* "varchar(20)", "decimal(12,4) unsigned", ... */
  const char *base_type; /* "varchar", "decimal", ... */
  const char *charset;   /* text types; "" otherwise */
  uint32_t binlog_type;
  uint32_t length, max_bytes, precision, scale, fsp;
  int is_unsigned; /* 1, 0; -1 unknown; -2 not numeric */
  int nullable;
  uint32_t pk_position; /* 1-based position in the primary key; 0: none */
  size_t nlabels;
  const char *const *labels; /* ENUM/SET */
} herald_column_t;

HERALD_API const char *herald_schema_db(const herald_schema_t *s);
HERALD_API const char *herald_schema_table(const herald_schema_t *s);
HERALD_API uint32_t herald_schema_version(const herald_schema_t *s);
HERALD_API size_t herald_schema_columns(const herald_schema_t *s);
HERALD_API const herald_column_t *herald_schema_column(const herald_schema_t *s,
                                                       size_t i);

/* ---------------------------------------------------------- change format */

enum {
  HERALD_JSON_DDL = 1,    /* also the statements ("op":"ddl" lines) */
  HERALD_JSON_SCHEMAS = 2 /* also each table's definition ("op":"schema")
                             before its first row */
};
/**
 * @brief The window's lines in the change format (docs/change-format.md),
 *        the lines `heraldctl decode` and `heraldctl tail` print. Call it
 *        for every chunk of every window, in order, or for none: with a
 *        window in chunks, a chunk's last line is held back until the next
 *        chunk, which tells whether it was the transaction's last.
 * @param out, len  the lines, owned by the client, valid until the next
 *                  call, poll or dispatch (len 0 possible)
 */
HERALD_API int herald_window_json(herald_client_t *c, const herald_window_t *w,
                                  unsigned flags, const char **out,
                                  size_t *len);

/* ----------------------------------------------------- callbacks on top */

/** Each returns 0 to go on; anything else stops the dispatch, which
 *  returns that value (the rest of the chunk is not dispatched). Any
 *  member may be NULL. */
typedef struct {
  int (*window_begin)(void *ud, const herald_window_t *w); /* chunk 0 */
  int (*schema)(void *ud, const herald_schema_t *s);
  int (*change)(void *ud, const herald_window_t *w, const herald_change_t *ch);
  int (*ddl)(void *ud, const herald_window_t *w, const herald_ddl_t *d);
  int (*window_end)(void *ud, const herald_window_t *w); /* last chunk */
} herald_callbacks_t;

/**
 * @brief Poll once (as herald_poll()) and hand the chunk to cb: begin (on
 *        chunk 0), its new schemas, its changes and statements in binlog
 *        order, end (on the last chunk).
 * @returns HERALD_OK, HERALD_TIMED_OUT, a fatal status, or what a callback
 *          returned.
 */
HERALD_API int herald_dispatch(herald_client_t *c, const herald_callbacks_t *cb,
                               void *ud, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
