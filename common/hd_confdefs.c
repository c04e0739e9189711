#include "hd_confdefs.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hd_parse.h"

#define R(f) offsetof(hd_relay_conf_t, f)
#define A(f) offsetof(hd_agent_conf_t, f)
#define C(f) offsetof(hd_coord_conf_t, f)
#define MS_DAY (86400LL * 1000)
#define MIB (1LL << 20)

static const char *const fsync_names[] = {"window", "interval", "none", NULL};
static const char *const sink_names[] = {
    "stdout", "file", "command", "mysql", "postgresql", "plugin",
    "kafka",  "nats", "redis",   "http",  NULL};
static const char *const schema_changes_names[] = {"evolve", "none", NULL};
static const char *const ddl_names[] = {"ignore", "apply", NULL};
static const char *const zero_dates_names[] = {"null", "infinity", "error",
                                               NULL};
static const char *const http_format_names[] = {"lines", "elasticsearch", NULL};
static const char *const redis_value_names[] = {"hash", "json", NULL};
static const char *const redis_mode_names[] = {"keys", "stream", NULL};
static const char *const agent_start_names[] = {"earliest", "latest",
                                                "snapshot", NULL};

/* Names of clusters, sources, groups and ids become ZooKeeper path
 * components and file names: keep them to a safe alphabet. */
static int check_name(hd_conf_ctx_t *ctx, const char *key, const char *v) {
  if (v == NULL)
    return 0;
  if (strlen(v) > 128)
    return hd_conf_error(ctx, key, "%s: longer than 128 characters", key);
  for (const char *p = v; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return hd_conf_error(ctx, key,
                           "%s: '%s' may hold only letters, digits, '-', '_' "
                           "and '.'",
                           key, v);
  }
  if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
    return hd_conf_error(ctx, key, "%s: '%s' is not a valid name", key, v);
  return 0;
}

/* db.table patterns: exactly one dot, '*' as the only wildcard. */
static int check_tables(hd_conf_ctx_t *ctx, const char *key,
                        const hd_strlist_t *l) {
  for (size_t i = 0; i < l->n; i++) {
    const char *dot = strchr(l->v[i], '.');
    if (dot == NULL || dot == l->v[i] || dot[1] == '\0' ||
        strchr(dot + 1, '.') != NULL)
      return hd_conf_error(ctx, key,
                           "%s: '%s' is not a db.table pattern (use '*' as "
                           "wildcard, e.g. shop.* or *.orders)",
                           key, l->v[i]);
  }
  return 0;
}

static int check_zk(hd_conf_ctx_t *ctx, const hd_zk_conf_t *zk, int need) {
  if (need && zk->hosts == NULL)
    return hd_conf_error(ctx, "zookeeper.hosts",
                         "missing required key 'zookeeper.hosts'");
  if (hd_conf_has(ctx, "zookeeper") && zk->hosts == NULL)
    return hd_conf_error(ctx, "zookeeper",
                         "zookeeper: 'hosts' is required when the section "
                         "is present");
  return 0;
}

/* zookeeper.auth_file, the same in every schema (docs/zookeeper.md,
 * Security). */
#define ZK_AUTH_DOC                                                            \
  "file whose first line is user:password, ZooKeeper digest credentials: "     \
  "the znodes herald creates then give all permissions to that user and "      \
  "none to anyone else; without it they are open to every client"

static const hd_prop_t relay_props[] = {
    {"cluster", HD_T_STR, R(cluster), 0, 0, 1, NULL,
     "name of the herald cluster (ZooKeeper root /herald/<cluster>)", NULL},
    {"zookeeper.hosts", HD_T_HOSTLIST, R(zk.hosts), 0, 0, 0, NULL,
     "ZooKeeper ensemble, a list or comma string of host:port; without it "
     "the relay runs alone",
     NULL},
    {"zookeeper.session_timeout", HD_T_DURATION, R(zk.session_timeout_ms), 2000,
     600000, 0, "10s", "ZooKeeper session timeout", NULL},
    {"zookeeper.auth_file", HD_T_STR, R(zk.auth_file), 0, 0, 0, NULL,
     ZK_AUTH_DOC, NULL},
    {"relay.id", HD_T_STR, R(relay.id), 0, 0, 1, NULL,
     "this relay's id, unique among the relays of its source", NULL},
    {"relay.listen", HD_T_HOSTPORT, R(relay.listen), 0, 0, 1, NULL,
     "address for consumer connections", NULL},
    {"relay.advertise", HD_T_HOSTPORT, R(relay.advertise), 0, 0, 0, NULL,
     "address clients dial, registered in ZooKeeper and shown on /status; "
     "default relay.listen, which must then not be a wildcard (0.0.0.0, ::) "
     "when zookeeper is set",
     NULL},
    {"relay.http", HD_T_HOSTPORT, R(relay.http), 0, 0, 1, NULL,
     "address for /metrics and /status", NULL},
    {"relay.data_dir", HD_T_STR, R(relay.data_dir), 0, 0, 1, NULL,
     "directory of the log store, for one source (it records the "
     "source's identity and refuses another)",
     NULL},
    {"relay.buffer_bytes", HD_T_SIZE, R(relay.buffer_bytes), 1 * MIB, 1LL << 40,
     0, "256MiB", "memory ring of encoded windows", NULL},
    {"relay.retention", HD_T_DURATION, R(relay.retention_ms), 60000,
     3650 * MS_DAY, 0, "72h", "how long the log store keeps windows", NULL},
    {"relay.retention_bytes", HD_T_SIZE, R(relay.retention_bytes), 0, 1LL << 50,
     0, "0", "upper bound of the log store on disk; 0 = none", NULL},
    {"relay.segment_bytes", HD_T_SIZE, R(relay.segment_bytes), 1 * MIB,
     1LL << 32, 0, "128MiB", "size at which a log segment is closed", NULL},
    {"relay.fsync", HD_T_ENUM, R(relay.fsync), 0, 0, 0, "interval",
     "when the log store syncs: after every window, every fsync_interval, "
     "or never (the OS decides)",
     fsync_names},
    {"relay.fsync_interval", HD_T_DURATION, R(relay.fsync_interval_ms), 1,
     60000, 0, "100ms", "fsync period when fsync is interval", NULL},
    {"relay.max_connections", HD_T_INT, R(relay.max_connections), 1, 100000, 0,
     "1024", "consumer connections accepted at once", NULL},
    {"relay.max_frame_bytes", HD_T_SIZE, R(relay.max_frame_bytes), 64 * 1024,
     1LL << 30, 0, "16MiB", "largest protocol frame sent or accepted", NULL},
    {"relay.chunk_bytes", HD_T_SIZE, R(relay.chunk_bytes), 64 * 1024, 64 * MIB,
     0, "4MiB",
     "a transaction whose decoded rows pass this is captured, stored and "
     "sent in chunks of about this size (memory stays bounded whatever its "
     "size)",
     NULL},
    {"relay.heartbeat", HD_T_DURATION, R(relay.heartbeat_ms), 100, 600000, 0,
     "1s", "heartbeat period to idle consumers", NULL},
    {"relay.handshake_timeout", HD_T_DURATION, R(relay.handshake_timeout_ms),
     100, 600000, 0, "10s",
     "a connection that has not sent Subscribe by then gets ERR_BAD_REQUEST "
     "and is closed",
     NULL},
    {"relay.inflight_bytes", HD_T_SIZE, R(relay.inflight_bytes), 64 * 1024,
     1LL << 30, 0, "4MiB",
     "bytes sent to one connection and not yet taken by it; above it the "
     "relay waits for that consumer",
     NULL},
    {"relay.disk_read_budget", HD_T_SIZE, R(relay.disk_read_budget), 1 * MIB,
     1LL << 40, 0, "32MiB",
     "windows read back from the log store for consumers behind the ring, "
     "all connections together (memory on top of buffer_bytes)",
     NULL},
    {"relay.stall_timeout", HD_T_DURATION, R(relay.stall_timeout_ms), 100,
     3600000, 0, "10s",
     "a consumer holding part of disk_read_budget that takes no byte for "
     "this long while others wait for it is disconnected",
     NULL},
    {"relay.token_file", HD_T_STR, R(relay.token_file), 0, 0, 0, NULL,
     "file holding the shared token consumers must present", NULL},
    {"relay.tls_cert_file", HD_T_STR, R(relay.tls_cert_file), 0, 0, 0, NULL,
     "PEM certificate (chain) of the consumer port; with tls_key_file the "
     "port speaks only TLS (1.2 or later)",
     NULL},
    {"relay.tls_key_file", HD_T_STR, R(relay.tls_key_file), 0, 0, 0, NULL,
     "PEM private key of relay.tls_cert_file (not encrypted)", NULL},
    {"relay.tls_client_ca_file", HD_T_STR, R(relay.tls_client_ca_file), 0, 0, 0,
     NULL,
     "PEM CA certificates: consumers must present a certificate signed by "
     "one of them",
     NULL},
    {"relay.snapshot_chunk_rows", HD_T_INT, R(relay.snapshot_chunk_rows), 1,
     1000000, 0, "4096",
     "rows per snapshot chunk when the consumer does not say (one short "
     "read transaction at the source each)",
     NULL},
    {"relay.snapshot_readers", HD_T_INT, R(relay.snapshot_readers), 1, 64, 0,
     "2", "source connections reading snapshot chunks at once", NULL},
    {"relay.snapshot_cache_bytes", HD_T_SIZE, R(relay.snapshot_cache_bytes),
     1 * MIB, 1LL << 40, 0, "256MiB",
     "snapshot chunks kept for the other consumers that will ask for them "
     "(each chunk is read from the source once while it is kept)",
     NULL},
    {"source.name", HD_T_STR, R(source.name), 0, 0, 1, NULL,
     "logical name of the source database", NULL},
    {"source.host", HD_T_STR, R(source.host), 0, 0, 1, NULL,
     "source server host", NULL},
    {"source.port", HD_T_INT, R(source.port), 1, 65535, 0, "3306",
     "source server port", NULL},
    {"source.user", HD_T_STR, R(source.user), 0, 0, 1, NULL,
     "replication user (REPLICATION SLAVE, BINLOG MONITOR, SELECT)", NULL},
    {"source.password", HD_T_STR, R(source.password), 0, 0, 0, NULL,
     "its password (or use password_file)", NULL},
    {"source.password_file", HD_T_STR, R(source.password_file), 0, 0, 0, NULL,
     "file holding the password", NULL},
    {"source.server_id", HD_T_INT, R(source.server_id), 1, 4294967295LL, 1,
     NULL, "replica server id, unique among the source's replicas", NULL},
    {"source.start", HD_T_START, R(source.start), 0, 0, 0, "latest",
     "where to start when the log store is empty: earliest, latest, "
     "FILE:POS or a GTID",
     NULL},
    {"source.tables", HD_T_STRLIST, R(source.tables), 0, 0, 0, "*.*",
     "db.table patterns to capture ('*' wildcard)", NULL},
    {"source.heartbeat", HD_T_DURATION, R(source.heartbeat_ms), 100, 600000, 0,
     "1s", "heartbeat period asked of the source", NULL},
    {"source.connect_timeout", HD_T_DURATION, R(source.connect_timeout_ms), 100,
     600000, 0, "5s", "timeout of one connection attempt", NULL},
    {"source.reconnect_max", HD_T_DURATION, R(source.reconnect_max_ms), 100,
     3600000, 0, "30s", "longest backoff between reconnect attempts", NULL},
    {"source.tls", HD_T_BOOL, R(source.tls), 0, 0, 0, "false",
     "connect to the source with TLS, never in plain text (the relay's "
     "every connection to it: the binlog dump, schema lookups, snapshots)",
     NULL},
    {"source.tls_verify", HD_T_BOOL, R(source.tls_verify), 0, 0, 0, "true",
     "with source.tls: verify the server's certificate and that it names "
     "source.host; false encrypts without knowing who answers",
     NULL},
    {"source.ca_file", HD_T_STR, R(source.ca_file), 0, 0, 0, NULL,
     "with source.tls: CA certificates (PEM) to verify the server with, "
     "instead of the system's",
     NULL},
    {"source.cert_file", HD_T_STR, R(source.cert_file), 0, 0, 0, NULL,
     "with source.tls: client certificate (PEM), for a user that REQUIRE "
     "X509 or SUBJECT (with source.key_file)",
     NULL},
    {"source.key_file", HD_T_STR, R(source.key_file), 0, 0, 0, NULL,
     "with source.tls: the client certificate's private key (PEM)", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL}};

/* The TLS keys of a MariaDB/MySQL connection (source.* of the relay,
 * sink.* of the mysql sink): the files only with tls on, a certificate
 * only with its key. */
static int check_my_tls(hd_conf_ctx_t *ctx, const char *pfx, int tls,
                        int verify, const char *ca, const char *cert,
                        const char *key) {
  char k[64];
  if (!tls) {
    const char *what = ca        ? "ca_file"
                       : cert    ? "cert_file"
                       : key     ? "key_file"
                       : !verify ? "tls_verify"
                                 : NULL;
    if (what != NULL) {
      snprintf(k, sizeof(k), "%s.%s", pfx, what);
      return hd_conf_error(ctx, k, "%s: only used with %s.tls true", k, pfx);
    }
    return 0;
  }
  if ((cert != NULL) != (key != NULL)) {
    snprintf(k, sizeof(k), "%s.%s", pfx, cert ? "cert_file" : "key_file");
    return hd_conf_error(
        ctx, k, "%s.cert_file and %s.key_file: set both or neither", pfx, pfx);
  }
  return 0;
}

/* A host clients resolve or dial: a name or an IP address. The bound keeps
 * it from carrying quotes or spaces into the registration or /status. */
static int check_dial_host(hd_conf_ctx_t *ctx, const char *key,
                           const hd_hostport_t *hp) {
  char addr[264];
  hd_fmt_hostport(hp->host, hp->port, addr, sizeof(addr));
  if (hd_host_is_wildcard(hp->host))
    return hd_conf_error(ctx, key,
                         "%s: %s is a wildcard address, which no client can "
                         "dial: give the host name or address clients use",
                         key, addr);
  for (const char *p = hp->host; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr(".-_:%", *p))
      return hd_conf_error(
          ctx, key, "%s: '%s' is not a host name or IP address", key, hp->host);
  return 0;
}

/* Clients find a relay by the address it registers. A wildcard listen
 * address binds every interface but names none a client could dial, so
 * with ZooKeeper it needs relay.advertise; without, it only shows on
 * /status. */
static int check_advertise(hd_conf_ctx_t *ctx, hd_relay_conf_t *c) {
  if (hd_conf_has(ctx, "relay.advertise"))
    return check_dial_host(ctx, "relay.advertise", &c->relay.advertise);
  if (c->zk.hosts != NULL && hd_host_is_wildcard(c->relay.listen.host)) {
    char addr[264];
    hd_fmt_hostport(c->relay.listen.host, c->relay.listen.port, addr,
                    sizeof(addr));
    return hd_conf_error(ctx, "relay.listen",
                         "relay.listen: %s is a wildcard address, which no "
                         "client can dial: with zookeeper, set "
                         "relay.advertise to the host:port clients use",
                         addr);
  }
  c->relay.advertise = c->relay.listen;
  return 0;
}

static int relay_validate(hd_conf_ctx_t *ctx, void *vc) {
  hd_relay_conf_t *c = vc;
  if (check_name(ctx, "cluster", c->cluster) < 0 ||
      check_name(ctx, "relay.id", c->relay.id) < 0 ||
      check_name(ctx, "source.name", c->source.name) < 0 ||
      check_zk(ctx, &c->zk, 0) < 0 ||
      check_tables(ctx, "source.tables", &c->source.tables) < 0 ||
      check_advertise(ctx, c) < 0 ||
      check_my_tls(ctx, "source", c->source.tls, c->source.tls_verify,
                   c->source.ca_file, c->source.cert_file,
                   c->source.key_file) < 0)
    return -1;
  if ((c->source.password != NULL) == (c->source.password_file != NULL))
    return hd_conf_error(ctx,
                         c->source.password ? "source.password_file" : "source",
                         "source: set exactly one of password and "
                         "password_file");
  if (c->relay.listen.port == c->relay.http.port &&
      strcmp(c->relay.listen.host, c->relay.http.host) == 0)
    return hd_conf_error(ctx, "relay.http",
                         "relay.http: same address as relay.listen");
  if ((c->relay.tls_cert_file != NULL) != (c->relay.tls_key_file != NULL))
    return hd_conf_error(ctx, "relay.tls_cert_file",
                         "relay: set both of tls_cert_file and tls_key_file, "
                         "or neither");
  if (c->relay.tls_client_ca_file != NULL && c->relay.tls_cert_file == NULL)
    return hd_conf_error(ctx, "relay.tls_client_ca_file",
                         "relay.tls_client_ca_file: needs tls_cert_file and "
                         "tls_key_file");
  if (c->relay.retention_bytes &&
      c->relay.retention_bytes < c->relay.segment_bytes)
    return hd_conf_error(ctx, "relay.retention_bytes",
                         "relay.retention_bytes: smaller than one segment "
                         "(relay.segment_bytes)");
  return 0;
}

static const hd_prop_t agent_props[] = {
    {"cluster", HD_T_STR, A(cluster), 0, 0, 0, NULL,
     "herald cluster name (required with zookeeper)", NULL},
    {"zookeeper.hosts", HD_T_HOSTLIST, A(zk.hosts), 0, 0, 0, NULL,
     "ZooKeeper ensemble; without it the agent runs standalone (all "
     "partitions, checkpoints in agent.checkpoint_file, relays from "
     "agent.relays)",
     NULL},
    {"zookeeper.session_timeout", HD_T_DURATION, A(zk.session_timeout_ms), 2000,
     600000, 0, "10s", "ZooKeeper session timeout", NULL},
    {"zookeeper.auth_file", HD_T_STR, A(zk.auth_file), 0, 0, 0, NULL,
     ZK_AUTH_DOC, NULL},
    {"agent.id", HD_T_STR, A(agent.id), 0, 0, 1, NULL,
     "member id, unique in its group", NULL},
    {"agent.group", HD_T_STR, A(agent.group), 0, 0, 1, NULL,
     "consumer group to join", NULL},
    {"agent.source", HD_T_STR, A(agent.source), 0, 0, 1, NULL,
     "source whose relays to pull from", NULL},
    {"agent.partitions", HD_T_INT, A(agent.partitions), 1, 65536, 1, NULL,
     "number of partitions N of the group (fixed for its life)", NULL},
    {"agent.tables", HD_T_STRLIST, A(agent.tables), 0, 0, 0, "*.*",
     "db.table patterns to consume", NULL},
    {"agent.http", HD_T_HOSTPORT, A(agent.http), 0, 0, 0, NULL,
     "address for /metrics and /status (none if unset)", NULL},
    {"agent.checkpoint_interval", HD_T_DURATION,
     A(agent.checkpoint_interval_ms), 10, 3600000, 0, "1s",
     "how often acknowledged SCNs are written to ZooKeeper", NULL},
    {"agent.token_file", HD_T_STR, A(agent.token_file), 0, 0, 0, NULL,
     "file holding the relays' shared token", NULL},
    {"agent.relay_tls", HD_T_BOOL, A(agent.relay_tls), 0, 0, 0, "false",
     "connect to the relays with TLS (also on when a relay's registration "
     "says tls)",
     NULL},
    {"agent.relay_tls_ca_file", HD_T_STR, A(agent.relay_tls_ca_file), 0, 0, 0,
     NULL,
     "PEM CA certificates the relays' certificates are verified with "
     "(default: the system's)",
     NULL},
    {"agent.relay_tls_verify", HD_T_BOOL, A(agent.relay_tls_verify), 0, 0, 0,
     "true", "verify the relay's certificate and its host name or IP address",
     NULL},
    {"agent.relay_tls_cert_file", HD_T_STR, A(agent.relay_tls_cert_file), 0, 0,
     0, NULL, "PEM client certificate, for relays with tls_client_ca_file",
     NULL},
    {"agent.relay_tls_key_file", HD_T_STR, A(agent.relay_tls_key_file), 0, 0, 0,
     NULL, "PEM private key of agent.relay_tls_cert_file", NULL},
    {"agent.start", HD_T_ENUM, A(agent.start), 0, 0, 0, "latest",
     "where a partition without a checkpoint starts: earliest, latest, or "
     "snapshot (the rows that exist now, then the stream)",
     agent_start_names},
    {"agent.snapshot_tables", HD_T_STRLIST, A(agent.snapshot_tables), 0, 0, 0,
     NULL, "db.table patterns a snapshot reads (default: agent.tables)", NULL},
    {"agent.snapshot_chunk_rows", HD_T_INT, A(agent.snapshot_chunk_rows), 0,
     1000000, 0, "0",
     "rows per snapshot chunk; 0: the relay's relay.snapshot_chunk_rows", NULL},
    {"agent.relays", HD_T_HOSTLIST, A(agent.relays), 0, 0, 0, NULL,
     "fixed list of relays (host:port); default: the source's relays in "
     "ZooKeeper",
     NULL},
    {"agent.checkpoint_file", HD_T_STR, A(agent.checkpoint_file), 0, 0, 0, NULL,
     "standalone: the checkpoint file (default <agent.id>.checkpoints.json)",
     NULL},
    {"agent.stall_timeout", HD_T_DURATION, A(agent.stall_timeout_ms), 100,
     600000, 0, "5s",
     "move to another relay when one sends nothing (not even a heartbeat) "
     "for this long",
     NULL},
    {"sink.type", HD_T_ENUM, A(sink.type), 0, 0, 0, "stdout",
     "where windows go", sink_names},
    {"sink.path", HD_T_STR, A(sink.path), 0, 0, 0, NULL,
     "file sink: path of the JSON-lines file; {agent} and {partition} are "
     "replaced, so that each partition can have a file of its own; plugin "
     "sink: the plugin's shared object (docs/plugins.md)",
     NULL},
    {"sink.command", HD_T_STR, A(sink.command), 0, 0, 0, NULL,
     "command sink: shell command fed JSON lines on stdin, restarted with "
     "backoff when it exits",
     NULL},
    {"sink.options", HD_T_STRMAP, A(sink.options), 0, 0, 0, NULL,
     "plugin sink: a mapping of names to strings handed to the plugin's "
     "init (docs/plugins.md); kafka sink: extra librdkafka producer "
     "properties (none that weakens delivery: docs/sinks.md)",
     NULL},
    {"sink.url", HD_T_STR, A(sink.url), 0, 0, 0, NULL,
     "nats, redis, http sinks: the destination's URL (docs/sinks.md)", NULL},
    /* nats sink */
    {"sink.subject", HD_T_STR, A(sink.subject), 0, 0, 0, "herald.{db}.{table}",
     "nats: subject of each change; {db} and {table} are replaced by the "
     "change's source database and table",
     NULL},
    {"sink.token_file", HD_T_STR, A(sink.token_file), 0, 0, 0, NULL,
     "nats: file holding the server's authentication token (its first line); "
     "http: the token sent as 'Authorization: Bearer <token>' (a first line "
     "with a space, such as 'ApiKey <key>', is sent as the whole value)",
     NULL},
    /* http sink */
    {"sink.format", HD_T_ENUM, A(sink.format), 0, 0, 0, "lines",
     "http: lines (the change lines, application/x-ndjson) or elasticsearch "
     "(the _bulk API: index by primary key, delete by primary key)",
     http_format_names},
    {"sink.index", HD_T_STR, A(sink.index), 0, 0, 0, "{db}.{table}",
     "http, format elasticsearch: index of each change; {db} and {table} "
     "are replaced by its source database and table, lowercased",
     NULL},
    {"sink.headers", HD_T_STRMAP, A(sink.headers), 0, 0, 0, NULL,
     "http: extra request headers, a mapping of names to values", NULL},
    {"sink.tls_verify", HD_T_BOOL, A(sink.tls_verify), 0, 0, 0, "true",
     "http: verify an https server's certificate and name; mysql, with "
     "sink.tls: the same of the destination server",
     NULL},
    {"sink.ca_file", HD_T_STR, A(sink.ca_file), 0, 0, 0, NULL,
     "http, mysql: CA certificates (PEM) to verify an https or TLS server "
     "with, instead of the system's",
     NULL},
    {"sink.tls", HD_T_BOOL, A(sink.tls), 0, 0, 0, "false",
     "mysql: connect to the destination with TLS, never in plain text "
     "(postgresql: sslmode in sink.dsn, docs/sinks.md)",
     NULL},
    {"sink.cert_file", HD_T_STR, A(sink.cert_file), 0, 0, 0, NULL,
     "mysql, with sink.tls: client certificate (PEM), with sink.key_file",
     NULL},
    {"sink.key_file", HD_T_STR, A(sink.key_file), 0, 0, 0, NULL,
     "mysql, with sink.tls: the client certificate's private key (PEM)", NULL},
    {"sink.batch_bytes", HD_T_SIZE, A(sink.batch_bytes), 1024, 1LL << 30, 0,
     "4MiB",
     "http: a batch is POSTed once its body reaches this size, without "
     "waiting for idle or a flush",
     NULL},
    /* redis sink */
    {"sink.key", HD_T_STR, A(sink.key), 0, 0, 0, "{db}:{table}:{pk}",
     "redis: key of each row; {db}, {table} and {pk} (the primary key's "
     "values joined by ':', with ':' and '\\' in them escaped by '\\') are "
     "replaced",
     NULL},
    {"sink.value", HD_T_ENUM, A(sink.value), 0, 0, 0, "hash",
     "redis: a row as a hash of its columns (NULL columns absent) or as a "
     "string holding its after image in JSON",
     redis_value_names},
    {"sink.ttl", HD_T_DURATION, A(sink.ttl_ms), 0, 3650 * MS_DAY, 0, "0",
     "redis: expiry of each key written (and of its position and a "
     "delete's tombstone); 0: none",
     NULL},
    {"sink.mode", HD_T_ENUM, A(sink.mode), 0, 0, 0, "keys",
     "redis: keys (a key per row, kept equal to the source) or stream (each "
     "change appended to a stream with XADD)",
     redis_mode_names},
    {"sink.stream", HD_T_STR, A(sink.stream), 0, 0, 0, "herald:{db}:{table}",
     "redis, mode stream: the stream of each change; {db} and {table} are "
     "replaced",
     NULL},
    {"sink.maxlen", HD_T_INT, A(sink.maxlen), 0, 1000000000000LL, 0, "0",
     "redis, mode stream: trim each stream to about this many entries "
     "(XADD MAXLEN ~); 0: never trimmed",
     NULL},
    /* kafka sink */
    {"sink.brokers", HD_T_STR, A(sink.brokers), 0, 0, 0, NULL,
     "kafka: bootstrap brokers, host:port[,host:port...]", NULL},
    {"sink.topic", HD_T_STR, A(sink.topic), 0, 0, 0, "herald.{db}.{table}",
     "kafka: topic of each change; {db} and {table} are replaced by the "
     "change's source database and table",
     NULL},
    {"sink.retry_max", HD_T_DURATION, A(sink.retry_max_ms), 10, 3600000, 0,
     "30s", "longest wait between retries of a failing sink", NULL},
    {"sink.host", HD_T_STR, A(sink.host), 0, 0, 0, NULL,
     "mysql: destination server host (or sink.socket)", NULL},
    {"sink.port", HD_T_INT, A(sink.port), 1, 65535, 0, "3306",
     "mysql: destination server port", NULL},
    {"sink.socket", HD_T_STR, A(sink.socket), 0, 0, 0, NULL,
     "mysql: destination server's Unix socket, instead of host and port", NULL},
    {"sink.user", HD_T_STR, A(sink.user), 0, 0, 0, NULL,
     "mysql: destination user", NULL},
    {"sink.password", HD_T_STR, A(sink.password), 0, 0, 0, NULL,
     "mysql: destination password (or sink.password_file)", NULL},
    {"sink.password_file", HD_T_STR, A(sink.password_file), 0, 0, 0, NULL,
     "database sinks, redis: file holding the destination password (its "
     "first line)",
     NULL},
    {"sink.database", HD_T_STR, A(sink.database), 0, 0, 0, NULL,
     "mysql: every source table goes into this database (default: the "
     "source's database name)",
     NULL},
    {"sink.tables", HD_T_STRMAP, A(sink.tables), 0, 0, 0, NULL,
     "database sinks: renames, 'srcdb.table: dstdb.table' (postgresql: "
     "'srcdb.table: schema.table')",
     NULL},
    {"sink.dsn", HD_T_STR, A(sink.dsn), 0, 0, 0, NULL,
     "postgresql: libpq connection string ('host=... port=... dbname=... "
     "user=...'); the password from sink.password_file or libpq's own files",
     NULL},
    {"sink.schema", HD_T_STR, A(sink.schema), 0, 0, 0, NULL,
     "postgresql: every source table goes into this schema (default: the "
     "source's database name as a schema)",
     NULL},
    {"sink.offsets_table", HD_T_STR, A(sink.offsets_table), 0, 0, 0,
     "herald.herald_offsets",
     "database sinks: where each partition's applied SCN and owner epoch "
     "are kept, in the transaction that applies its windows",
     NULL},
    {"sink.batch_windows", HD_T_INT, A(sink.batch_windows), 1, 1000000, 0,
     "1000",
     "database sinks: most windows in one destination transaction (a "
     "transaction ends earlier when nothing more is waiting)",
     NULL},
    {"sink.batch_rows", HD_T_INT, A(sink.batch_rows), 1, 100000000, 0, "20000",
     "database sinks: a transaction ends after the window that reaches "
     "this many rows (a window is never split)",
     NULL},
    {"sink.schema_changes", HD_T_ENUM, A(sink.schema_changes), 0, 0, 0,
     "evolve",
     "database sinks: evolve (create missing tables and columns from the "
     "stream's table definitions) or none (they must exist)",
     schema_changes_names},
    {"sink.ddl", HD_T_ENUM, A(sink.ddl), 0, 0, 0, "ignore",
     "database sinks: ignore the source's DDL statements (logged) or apply "
     "them (mysql, one-partition groups, no renames)",
     ddl_names},
    {"sink.zero_dates", HD_T_ENUM, A(sink.zero_dates), 0, 0, 0, "null",
     "postgresql: MariaDB zero dates ('0000-00-00') become NULL, "
     "'-infinity', or stop the partition (error)",
     zero_dates_names},
    {"sink.connect_timeout", HD_T_DURATION, A(sink.connect_timeout_ms), 100,
     600000, 0, "10s", "database sinks, redis: connecting to the destination",
     NULL},
    {"sink.timeout", HD_T_DURATION, A(sink.timeout_ms), 100, 3600000, 0, "60s",
     "database sinks: longest wait for one statement or commit before the "
     "partition stops and retries; nats: for JetStream's acks in a flush; "
     "http: for one batch, its retries included; redis: for one reply; "
     "kafka: for the brokers' acks in a flush (and each message's delivery "
     "timeout)",
     NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL}};

/* The database sinks' keys: each only with the sink that reads it, so that
 * a key meant for the other engine is not silently ignored. */
static int check_db_sink(hd_conf_ctx_t *ctx, const hd_agent_conf_t *c) {
  int my = c->sink.type == HD_SINK_MYSQL,
      pg = c->sink.type == HD_SINK_POSTGRESQL;
  static const struct {
    const char *key;
    size_t off;
    int who; /* 1 mysql, 2 postgresql, 3 both; 4 redis */
  } keys[] = {
      {"sink.host", offsetof(hd_agent_conf_t, sink.host), 1},
      {"sink.socket", offsetof(hd_agent_conf_t, sink.socket), 1},
      {"sink.user", offsetof(hd_agent_conf_t, sink.user), 1},
      {"sink.password", offsetof(hd_agent_conf_t, sink.password), 1},
      {"sink.password_file", offsetof(hd_agent_conf_t, sink.password_file), 7},
      {"sink.database", offsetof(hd_agent_conf_t, sink.database), 1},
      {"sink.dsn", offsetof(hd_agent_conf_t, sink.dsn), 2},
      {"sink.schema", offsetof(hd_agent_conf_t, sink.schema), 2},
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    const void *field = (const char *)c + keys[i].off;
    const char *v = *(char *const *)field;
    int ok = (my && (keys[i].who & 1)) || (pg && (keys[i].who & 2)) ||
             (c->sink.type == HD_SINK_REDIS && (keys[i].who & 4));
    if (v != NULL && !ok)
      return hd_conf_error(ctx, keys[i].key, "%s: only used with type %s",
                           keys[i].key,
                           keys[i].who == 1   ? "mysql"
                           : keys[i].who == 2 ? "postgresql"
                           : keys[i].who == 3 ? "mysql or postgresql"
                                              : "mysql, postgresql or redis");
  }
  if (!my && !pg) {
    if (c->sink.tables.n)
      return hd_conf_error(ctx, "sink.tables",
                           "sink.tables: only used with the database sinks");
    return 0;
  }
  if (my && c->sink.host == NULL && c->sink.socket == NULL)
    return hd_conf_error(ctx, "sink.type",
                         "sink: type mysql needs 'host' (or 'socket')");
  if (my && c->sink.host != NULL && c->sink.socket != NULL)
    return hd_conf_error(ctx, "sink.socket",
                         "sink: set one of 'host' and 'socket'");
  if (my && c->sink.user == NULL)
    return hd_conf_error(ctx, "sink.type", "sink: type mysql needs 'user'");
  if (c->sink.password != NULL && c->sink.password_file != NULL)
    return hd_conf_error(ctx, "sink.password_file",
                         "sink: set at most one of password and "
                         "password_file");
  if (pg && c->sink.dsn == NULL)
    return hd_conf_error(ctx, "sink.type", "sink: type postgresql needs 'dsn'");
  for (size_t i = 0; i < c->sink.tables.n; i++) {
    const char *t = c->sink.tables.v[i];
    const char *dot = strchr(t, '.');
    if (dot == NULL || dot == t || dot[1] == '\0' || strchr(dot + 1, '.'))
      return hd_conf_error(ctx, "sink.tables",
                           "sink.tables: '%s' is not db.table", t);
  }
  const char *ot = c->sink.offsets_table;
  const char *od = ot ? strchr(ot, '.') : NULL;
  if (od == NULL || od == ot || od[1] == '\0' || strchr(od + 1, '.'))
    return hd_conf_error(ctx, "sink.offsets_table",
                         "sink.offsets_table: '%s' is not db.table",
                         ot ? ot : "");
  if (c->sink.ddl == HD_DDL_APPLY) {
    if (!my)
      return hd_conf_error(ctx, "sink.ddl",
                           "sink.ddl: apply needs a mysql sink (a MariaDB or "
                           "MySQL statement means nothing to PostgreSQL)");
    if (c->agent.partitions != 1)
      return hd_conf_error(ctx, "sink.ddl",
                           "sink.ddl: apply needs agent.partitions 1 (a "
                           "statement must come after every row before it, "
                           "and partitions go at their own pace)");
    if (c->sink.database != NULL || c->sink.tables.n)
      return hd_conf_error(ctx, "sink.ddl",
                           "sink.ddl: apply cannot rename: the statements "
                           "name the source's tables (unset sink.database "
                           "and sink.tables)");
  }
  return 0;
}

/* The http sink's keys only with it (a key left at its default cannot be
 * told from an unset one); names and values of sink.headers that would
 * break the request or fight the sink's own headers are refused. */
static int check_http_sink(hd_conf_ctx_t *ctx, const hd_agent_conf_t *c) {
  int my = c->sink.type == HD_SINK_MYSQL;
  if (my &&
      check_my_tls(ctx, "sink", c->sink.tls, c->sink.tls_verify,
                   c->sink.ca_file, c->sink.cert_file, c->sink.key_file) < 0)
    return -1;
  if (my && c->sink.tls && c->sink.socket != NULL)
    return hd_conf_error(ctx, "sink.tls",
                         "sink.tls: not with sink.socket (a Unix socket "
                         "does not leave the machine)");
  if (!my &&
      (c->sink.tls || c->sink.cert_file != NULL || c->sink.key_file != NULL))
    return hd_conf_error(ctx,
                         c->sink.tls         ? "sink.tls"
                         : c->sink.cert_file ? "sink.cert_file"
                                             : "sink.key_file",
                         "sink.tls, sink.cert_file, sink.key_file: only used "
                         "with type mysql");
  if (c->sink.type != HD_SINK_HTTP) {
    if (c->sink.format != HD_HTTP_LINES)
      return hd_conf_error(ctx, "sink.format",
                           "sink.format: only used with type http");
    if (c->sink.headers.n)
      return hd_conf_error(ctx, "sink.headers",
                           "sink.headers: only used with type http");
    if (!my && c->sink.ca_file != NULL)
      return hd_conf_error(ctx, "sink.ca_file",
                           "sink.ca_file: only used with type http or mysql");
    if (!my && hd_conf_has(ctx, "sink.tls_verify"))
      return hd_conf_error(ctx, "sink.tls_verify",
                           "sink.tls_verify: only used with type http or "
                           "mysql");
    if (hd_conf_has(ctx, "sink.index"))
      return hd_conf_error(ctx, "sink.index",
                           "sink.index: only used with type http");
    return 0;
  }
  const char *u = c->sink.url;
  if (u == NULL)
    return hd_conf_error(ctx, "sink.type",
                         "sink: type http needs 'url' (http://host:port/path "
                         "or https://...)");
  if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
    return hd_conf_error(ctx, "sink.url",
                         "sink.url: '%s' is not an http:// or https:// URL", u);
  if (c->sink.format == HD_HTTP_ELASTICSEARCH &&
      (c->sink.index == NULL || c->sink.index[0] == '\0'))
    return hd_conf_error(ctx, "sink.index", "sink.index: empty");
  for (size_t i = 0; i + 1 < c->sink.headers.n; i += 2) {
    const char *name = c->sink.headers.v[i], *val = c->sink.headers.v[i + 1];
    if (name[0] == '\0' || strcspn(name, " \t\r\n:") != strlen(name))
      return hd_conf_error(ctx, "sink.headers",
                           "sink.headers: '%s' is not a header name", name);
    if (strpbrk(val, "\r\n") != NULL)
      return hd_conf_error(ctx, "sink.headers",
                           "sink.headers: the value of %s holds a line break",
                           name);
    if (strcasecmp(name, "Content-Type") == 0 ||
        strcasecmp(name, "Content-Length") == 0)
      return hd_conf_error(ctx, "sink.headers",
                           "sink.headers: %s is set by the sink", name);
    if (strcasecmp(name, "Authorization") == 0 && c->sink.token_file != NULL)
      return hd_conf_error(ctx, "sink.headers",
                           "sink.headers: Authorization and sink.token_file "
                           "both set: keep one");
  }
  return 0;
}

/* The nats sink's keys only with it; a nats sink needs its url. */
static int check_nats_sink(hd_conf_ctx_t *ctx, const hd_agent_conf_t *c) {
  if (c->sink.type != HD_SINK_NATS) {
    if (c->sink.token_file != NULL && c->sink.type != HD_SINK_HTTP)
      return hd_conf_error(ctx, "sink.token_file",
                           "sink.token_file: only used with type nats or "
                           "http");
    /* Set in the file, even to its default: a file that names a nats
       subject for another sink is a mistake worth saying. */
    if (hd_conf_has(ctx, "sink.subject"))
      return hd_conf_error(ctx, "sink.subject",
                           "sink.subject: only used with type nats");
    return 0;
  }
  if (c->sink.url == NULL)
    return hd_conf_error(ctx, "sink.type",
                         "sink: type nats needs 'url' (nats://host:port)");
  if (c->sink.subject == NULL || c->sink.subject[0] == '\0')
    return hd_conf_error(ctx, "sink.subject", "sink.subject: empty");
  return 0;
}

/* The redis sink's keys only with it; a redis sink needs its url. */
static int check_redis_sink(hd_conf_ctx_t *ctx, const hd_agent_conf_t *c) {
  if (c->sink.type != HD_SINK_REDIS) {
    static const char *const keys[] = {"sink.key", "sink.stream"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
      if (hd_conf_has(ctx, keys[i]))
        return hd_conf_error(ctx, keys[i], "%s: only used with type redis",
                             keys[i]);
    }
    if (c->sink.ttl_ms || c->sink.maxlen || c->sink.value || c->sink.mode)
      return hd_conf_error(ctx, "sink.type",
                           "sink.ttl, sink.maxlen, sink.value, sink.mode: "
                           "only used with type redis");
    return 0;
  }
  if (c->sink.url == NULL)
    return hd_conf_error(ctx, "sink.type",
                         "sink: type redis needs 'url' "
                         "(redis://[user:password@]host:port[/db] or a Unix "
                         "socket's path)");
  if (c->sink.key == NULL || strstr(c->sink.key, "{pk}") == NULL)
    return hd_conf_error(ctx, "sink.key",
                         "sink.key: '%s' lacks {pk} (rows would share a key)",
                         c->sink.key ? c->sink.key : "");
  if (c->sink.stream == NULL || c->sink.stream[0] == '\0')
    return hd_conf_error(ctx, "sink.stream", "sink.stream: empty");
  if (c->sink.mode == HD_REDIS_KEYS && c->sink.maxlen)
    return hd_conf_error(ctx, "sink.maxlen",
                         "sink.maxlen: only used with mode stream");
  if (c->sink.mode == HD_REDIS_STREAM && c->sink.ttl_ms)
    return hd_conf_error(ctx, "sink.ttl", "sink.ttl: only used with mode keys");
  return 0;
}

/* The kafka sink's keys only with it; a kafka sink needs its brokers, and
 * sink.options may not weaken delivery (the sink sets an idempotent
 * producer with acks=all; it checks the same again when it starts). */
static int check_kafka_sink(hd_conf_ctx_t *ctx, const hd_agent_conf_t *c) {
  if (c->sink.type != HD_SINK_KAFKA) {
    if (c->sink.brokers != NULL)
      return hd_conf_error(ctx, "sink.brokers",
                           "sink.brokers: only used with type kafka");
    if (hd_conf_has(ctx, "sink.topic"))
      return hd_conf_error(ctx, "sink.topic",
                           "sink.topic: only used with type kafka");
    return 0;
  }
  if (c->sink.brokers == NULL || c->sink.brokers[0] == '\0')
    return hd_conf_error(ctx, "sink.type",
                         "sink: type kafka needs 'brokers' (host:port,...)");
  if (c->sink.topic == NULL || c->sink.topic[0] == '\0')
    return hd_conf_error(ctx, "sink.topic", "sink.topic: empty");
  if (c->sink.url != NULL)
    return hd_conf_error(ctx, "sink.url",
                         "sink.url: not used with type kafka (sink.brokers)");
  for (size_t i = 0; i + 1 < c->sink.options.n; i += 2) {
    const char *k = c->sink.options.v[i], *v = c->sink.options.v[i + 1];
    if (hd_kafka_option_refused(k, v) != NULL)
      return hd_conf_error(ctx, "sink.options", "sink.options: %s: %s: %s", k,
                           v, hd_kafka_option_refused(k, v));
  }
  return 0;
}

const char *hd_kafka_option_refused(const char *k, const char *v) {
  if (strcmp(k, "enable.idempotence") == 0 && strcmp(v, "true") != 0)
    return "the producer must be idempotent (per-key order across retries)";
  if ((strcmp(k, "acks") == 0 || strcmp(k, "request.required.acks") == 0) &&
      strcmp(v, "all") != 0 && strcmp(v, "-1") != 0)
    return "acks must be all (-1): a message counts as delivered only when "
           "every in-sync replica has it";
  if (strcmp(k, "max.in.flight.requests.per.connection") == 0 ||
      strcmp(k, "max.in.flight") == 0) {
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 1 || n > 5)
      return "must be 1..5 (the idempotent producer keeps order only so)";
  }
  if (strcmp(k, "bootstrap.servers") == 0 ||
      strcmp(k, "metadata.broker.list") == 0)
    return "set sink.brokers instead";
  if (strcmp(k, "message.send.max.retries") == 0 || strcmp(k, "retries") == 0) {
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 1)
      return "retries may not be turned off";
  }
  return NULL;
}

static int agent_validate(hd_conf_ctx_t *ctx, void *vc) {
  hd_agent_conf_t *c = vc;
  if (check_name(ctx, "cluster", c->cluster) < 0 ||
      check_name(ctx, "agent.id", c->agent.id) < 0 ||
      check_name(ctx, "agent.group", c->agent.group) < 0 ||
      check_name(ctx, "agent.source", c->agent.source) < 0 ||
      check_zk(ctx, &c->zk, 0) < 0 ||
      check_tables(ctx, "agent.tables", &c->agent.tables) < 0)
    return -1;
  if (c->zk.hosts == NULL && c->agent.relays == NULL)
    return hd_conf_error(ctx, "agent.relays",
                         "agent: without zookeeper.hosts, 'agent.relays' "
                         "must list the relays");
  if (c->zk.hosts != NULL && c->cluster == NULL)
    return hd_conf_error(ctx, "cluster",
                         "missing required key 'cluster' (with zookeeper)");
  if (c->zk.hosts != NULL && c->agent.checkpoint_file != NULL)
    return hd_conf_error(ctx, "agent.checkpoint_file",
                         "agent.checkpoint_file: only used without "
                         "zookeeper (checkpoints are kept in ZooKeeper)");
  if (c->sink.type == HD_SINK_FILE && c->sink.path == NULL)
    return hd_conf_error(ctx, "sink.type", "sink: type file needs 'path'");
  if (c->sink.type == HD_SINK_COMMAND && c->sink.command == NULL)
    return hd_conf_error(ctx, "sink.type",
                         "sink: type command needs 'command'");
  if (c->sink.type == HD_SINK_PLUGIN && c->sink.path == NULL)
    return hd_conf_error(ctx, "sink.type",
                         "sink: type plugin needs 'path' (the plugin's "
                         "shared object)");
  if (c->sink.type != HD_SINK_FILE && c->sink.type != HD_SINK_PLUGIN &&
      c->sink.path != NULL)
    return hd_conf_error(ctx, "sink.path",
                         "sink.path: only used with type file or plugin");
  if (c->sink.type != HD_SINK_PLUGIN && c->sink.type != HD_SINK_KAFKA &&
      c->sink.options.n)
    return hd_conf_error(ctx, "sink.options",
                         "sink.options: only used with type plugin or kafka");
  if (c->sink.type != HD_SINK_COMMAND && c->sink.command != NULL)
    return hd_conf_error(ctx, "sink.command",
                         "sink.command: only used with type command");
  if (check_nats_sink(ctx, c) < 0 || check_http_sink(ctx, c) < 0 ||
      check_redis_sink(ctx, c) < 0 || check_kafka_sink(ctx, c) < 0)
    return -1;
  return check_db_sink(ctx, c);
}

static const hd_prop_t coord_props[] = {
    {"cluster", HD_T_STR, C(cluster), 0, 0, 1, NULL, "herald cluster name",
     NULL},
    {"zookeeper.hosts", HD_T_HOSTLIST, C(zk.hosts), 0, 0, 1, NULL,
     "ZooKeeper ensemble", NULL},
    {"zookeeper.session_timeout", HD_T_DURATION, C(zk.session_timeout_ms), 2000,
     600000, 0, "10s", "ZooKeeper session timeout", NULL},
    {"zookeeper.auth_file", HD_T_STR, C(zk.auth_file), 0, 0, 0, NULL,
     ZK_AUTH_DOC, NULL},
    {"coordinator.id", HD_T_STR, C(coordinator.id), 0, 0, 1, NULL,
     "this coordinator's id", NULL},
    {"coordinator.http", HD_T_HOSTPORT, C(coordinator.http), 0, 0, 1, NULL,
     "address for the console, /metrics and /status", NULL},
    {"coordinator.lag_interval", HD_T_DURATION, C(coordinator.lag_interval_ms),
     100, 600000, 0, "1s",
     "how often the leader samples every partition's checkpoint and lag "
     "(/status, /metrics, the console's plot)",
     NULL},
    {"coordinator.lag_window", HD_T_INT, C(coordinator.lag_window), 3, 3600, 0,
     "10",
     "samples a partition's status is judged over (WARN, STALL, STOP); "
     "lag_window x lag_interval should exceed the agents' 5 s checkpoint "
     "heartbeat by a margin",
     NULL},
    {"coordinator.rebalance_delay", HD_T_DURATION,
     C(coordinator.rebalance_delay_ms), 0, 600000, 0, "100ms",
     "wait after a membership change before reassigning, so that members "
     "joining together are assigned together (releases of moved partitions "
     "are acted on at once)",
     NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL}};

static int coord_validate(hd_conf_ctx_t *ctx, void *vc) {
  hd_coord_conf_t *c = vc;
  if (check_name(ctx, "cluster", c->cluster) < 0 ||
      check_name(ctx, "coordinator.id", c->coordinator.id) < 0 ||
      check_zk(ctx, &c->zk, 1) < 0)
    return -1;
  return 0;
}

const hd_conf_schema_t hd_relay_schema = {
    "relay", relay_props, sizeof(hd_relay_conf_t), relay_validate};
const hd_conf_schema_t hd_agent_schema = {
    "agent", agent_props, sizeof(hd_agent_conf_t), agent_validate};
const hd_conf_schema_t hd_coord_schema = {
    "coordinator", coord_props, sizeof(hd_coord_conf_t), coord_validate};

const hd_conf_schema_t *const hd_all_schemas[3] = {
    &hd_relay_schema, &hd_agent_schema, &hd_coord_schema};
