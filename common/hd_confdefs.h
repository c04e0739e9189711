/*
 * hd_confdefs.h - the three herald config kinds and their tables.
 *
 * They live in the shared library because heraldctl validate-config checks
 * every kind, and each program loads its own. The files in config/ are
 * examples; docs/configuration.md is generated from these tables (heraldctl
 * config-doc).
 */
#ifndef HD_CONFDEFS_H
#define HD_CONFDEFS_H

#include "hd_config.h"

typedef enum { HD_FSYNC_WINDOW, HD_FSYNC_INTERVAL, HD_FSYNC_NONE } hd_fsync_t;
typedef enum {
  HD_SINK_STDOUT,
  HD_SINK_FILE,
  HD_SINK_COMMAND,
  HD_SINK_MYSQL,
  HD_SINK_POSTGRESQL,
  HD_SINK_PLUGIN,
  HD_SINK_KAFKA,
  HD_SINK_NATS,
  HD_SINK_REDIS,
  HD_SINK_HTTP
} hd_sink_t;
/* sink.schema_changes, sink.ddl, sink.zero_dates (database sinks) */
typedef enum { HD_SCHEMA_EVOLVE, HD_SCHEMA_NONE } hd_schema_changes_t;
typedef enum { HD_DDL_IGNORE, HD_DDL_APPLY } hd_ddl_t;
typedef enum { HD_ZERO_NULL, HD_ZERO_INFINITY, HD_ZERO_ERROR } hd_zero_dates_t;

/* sink.format (http sink) */
typedef enum { HD_HTTP_LINES, HD_HTTP_ELASTICSEARCH } hd_http_format_t;
/* sink.value, sink.mode (redis sink) */
typedef enum { HD_REDIS_HASH, HD_REDIS_JSON } hd_redis_value_t;
typedef enum { HD_REDIS_KEYS, HD_REDIS_STREAM } hd_redis_mode_t;
/* agent.start: where a partition without a checkpoint begins. */
typedef enum {
  HD_AGENT_START_EARLIEST,
  HD_AGENT_START_LATEST,
  HD_AGENT_START_SNAPSHOT /* the rows that exist, then the stream */
} hd_agent_start_t;

typedef struct {
  char *hosts; /* "h1:p1,h2:p2"; NULL when ZooKeeper is not configured */
  uint64_t session_timeout_ms;
  char *auth_file; /* zookeeper.auth_file: "user:password"; NULL: open */
} hd_zk_conf_t;

typedef struct {
  char *cluster;
  hd_zk_conf_t zk;
  struct {
    char *id;
    hd_hostport_t listen;
    hd_hostport_t advertise; /* relay.listen when not set */
    hd_hostport_t http;
    char *data_dir;
    uint64_t buffer_bytes;
    uint64_t retention_ms;
    uint64_t retention_bytes; /* 0: by age only */
    uint64_t segment_bytes;
    int fsync; /* hd_fsync_t */
    uint64_t fsync_interval_ms;
    int64_t max_connections;
    uint64_t max_frame_bytes;
    uint64_t chunk_bytes;
    uint64_t heartbeat_ms;
    uint64_t handshake_timeout_ms;
    uint64_t inflight_bytes;   /* per connection */
    uint64_t disk_read_budget; /* all connections together */
    uint64_t stall_timeout_ms;
    char *token_file;
    char *tls_cert_file; /* with tls_key_file: the consumer port is TLS */
    char *tls_key_file;
    char *tls_client_ca_file;      /* client certificates required, from it */
    int64_t snapshot_chunk_rows;   /* a consumer's default */
    int64_t snapshot_readers;      /* source connections reading chunks */
    uint64_t snapshot_cache_bytes; /* chunks kept for other consumers */
  } relay;
  struct {
    char *name;
    char *host;
    int64_t port;
    char *user;
    char *password;
    char *password_file;
    int64_t server_id;
    hd_start_t start;
    hd_strlist_t tables;
    uint64_t heartbeat_ms;
    uint64_t connect_timeout_ms;
    uint64_t reconnect_max_ms;
    /* TLS (docs/relay.md): on, verify, CA, client certificate and key */
    int tls;
    int tls_verify;
    char *ca_file;
    char *cert_file;
    char *key_file;
  } source;
} hd_relay_conf_t;

typedef struct {
  char *cluster;
  hd_zk_conf_t zk;
  struct {
    char *id;
    char *group;
    char *source;
    int64_t partitions;
    hd_strlist_t tables;
    hd_hostport_t http;
    uint64_t checkpoint_interval_ms;
    char *token_file;
    int relay_tls; /* libherald's tls, tls_ca_file, ... */
    char *relay_tls_ca_file;
    int relay_tls_verify;
    char *relay_tls_cert_file;
    char *relay_tls_key_file;
    int start;    /* hd_agent_start_t */
    char *relays; /* fixed relay list (host:port,...), instead of ZooKeeper */
    char *checkpoint_file; /* standalone: where checkpoints are kept */
    uint64_t stall_timeout_ms;
    hd_strlist_t snapshot_tables; /* agent.start: snapshot; none: tables */
    int64_t snapshot_chunk_rows;  /* 0: the relay's */
  } agent;
  struct {
    int type; /* hd_sink_t */
    char *path;
    char *command;
    uint64_t retry_max_ms;
    /* database sinks (docs/sinks.md) */
    char *host;
    int64_t port;
    char *socket;
    char *user;
    char *password;
    char *password_file;
    char *database;      /* mysql: every table into this database */
    hd_strlist_t tables; /* renames: srcdb.table, dstdb.table, ... */
    char *dsn;           /* postgresql: libpq connection string */
    char *schema;        /* postgresql: every table into this schema */
    char *offsets_table; /* db.table (mysql) or schema.table (postgresql) */
    int64_t batch_windows;
    int64_t batch_rows;
    int schema_changes; /* hd_schema_changes_t */
    int ddl;            /* hd_ddl_t */
    int zero_dates;     /* hd_zero_dates_t (postgresql) */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;  /* one statement or commit */
    hd_strlist_t options; /* plugin: key, value, ... handed to its init */
    char *url;            /* nats, redis, http: the destination */
    /* nats sink */
    char *subject;    /* template, {db} {table} */
    char *token_file; /* first line: the token */
    /* http sink */
    int format;           /* hd_http_format_t */
    char *index;          /* elasticsearch: template, {db} {table} */
    hd_strlist_t headers; /* name, value, ...: extra request headers */
    int tls_verify;       /* http, mysql */
    char *ca_file;        /* http, mysql */
    uint64_t batch_bytes;
    /* mysql sink: TLS to the destination (with tls_verify, ca_file) */
    int tls;
    char *cert_file;
    char *key_file;
    /* redis sink */
    char *key;       /* template, {db} {table} {pk} */
    int value;       /* hd_redis_value_t */
    uint64_t ttl_ms; /* 0: none */
    int mode;        /* hd_redis_mode_t */
    char *stream;    /* template, {db} {table} */
    int64_t maxlen;  /* 0: unbounded */
    /* kafka sink */
    char *brokers; /* bootstrap servers, host:port,... */
    char *topic;   /* template, {db} {table} */
  } sink;
} hd_agent_conf_t;

typedef struct {
  char *cluster;
  hd_zk_conf_t zk;
  struct {
    char *id;
    hd_hostport_t http;
    uint64_t lag_interval_ms;
    int64_t lag_window;
    uint64_t rebalance_delay_ms;
  } coordinator;
} hd_coord_conf_t;

extern const hd_conf_schema_t hd_relay_schema;
extern const hd_conf_schema_t hd_agent_schema;
extern const hd_conf_schema_t hd_coord_schema;

/* All kinds, for validate-config and config-doc. */
extern const hd_conf_schema_t *const hd_all_schemas[3];

/* kafka sink: why sink.options entry k=v is refused (it weakens delivery:
 * idempotence off, acks other than all, retries off, more than 5 requests
 * in flight), or NULL when it is fine. */
const char *hd_kafka_option_refused(const char *k, const char *v);

#endif
