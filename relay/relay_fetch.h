/*
 * relay_fetch.h - the fetcher: a replication connection to the source.
 *
 * It runs on a thread of its own because the MySQL client library blocks.
 * It connects as a replica (binlog dump by file:pos, or by GTID on
 * MariaDB), feeds every event to the decoder, turns each transaction into
 * an encoded window, appends it to the log store and only then hands it to
 * the loop. It resumes from the newest window in the store after a restart
 * of the relay and after any loss of the source, reconnecting with
 * exponential backoff. Problems at the source (binlog_format not ROW,
 * missing privileges) are logged and counted and retried; a purged binlog
 * or an undecodable event is fatal, since going on would lose changes.
 */
#ifndef RELAY_FETCH_H
#define RELAY_FETCH_H

#include "hd_confdefs.h"
#include "relay_metrics.h"
#include "relay_store.h"
#include "relay_window.h"

typedef struct relay_fetch relay_fetch_t;

typedef struct {
  const hd_relay_conf_t *conf;
  const char *password;
  relay_store_t *store;          /* appended by the fetcher thread only */
  struct relay_schemas *schemas; /* table schema versions it registers */
  relay_metrics_t *m;
  /**
   * @brief Each stored window, in SCN order; one reference passes to the
   *        callee. It may block to push back when consumers lag far.
   * @locality fetcher thread
   */
  void (*on_window)(void *ud, relay_win_t *w);
  /**
   * @brief The source is idle (a heartbeat): every event up to scn (its
   *        binlog file index << 32 | offset) has been read, and the
   *        windows of what came before were handed to on_window already.
   *        NULL: not wanted. @locality fetcher thread
   */
  void (*on_idle)(void *ud, uint64_t scn);
  /** @brief The fetcher stopped for good; msg says why. @locality fetcher */
  void (*on_fatal)(void *ud, const char *msg);
  void *ud;
} relay_fetch_opts_t;

/**
 * @brief Start the fetcher thread. The options (and what they point to)
 *        must outlive it.
 * @returns 0 or a negative errno.
 */
int relay_fetch_start(const relay_fetch_opts_t *o, relay_fetch_t **out);

/** @brief Stop the thread (interrupting a blocked read) and free it. */
void relay_fetch_stop(relay_fetch_t *f);

/** @brief Splits information_schema's COLUMN_TYPE "enum('a','b''c')" (or
 *         set(...)) into its labels, UTF-8 as the server sends them, in
 *         *out (each and the array freed by the caller). @returns how
 *         many; 0 (and *out untouched) when type has no list. */
uint32_t relay_parse_labels(const char *type, char ***out);

/* ------------------------------------------------- TLS to the source */

struct st_mysql;

/** @brief source.tls on a connection not yet made (docs/relay.md): TLS
 *         enforced (never a fall back to plain text), the server's
 *         certificate and name verified unless verify is 0, the CA file
 *         and client certificate and key when given. Nothing when tls is
 *         0. */
void relay_source_tls_set(struct st_mysql *m, int tls, int verify,
                          const char *ca, const char *cert, const char *key);

/** @brief After the connect, with tls on: 0 when the connection is
 *         encrypted (its TLS version and cipher logged at info, naming
 *         what connection it is), else -1 with err filled. 0 without
 *         tls. */
int relay_source_tls_check(struct st_mysql *m, int tls, const char *what,
                           char *err, size_t errlen);

/** @brief The privileges of the current user of m beyond what the relay
 *         needs (REPLICATION SLAVE, BINLOG MONITOR or REPLICATION CLIENT,
 *         SELECT), from SHOW GRANTS, joined by ", " in out; "" when none
 *         (or when the grants cannot be read). Only privilege names are
 *         copied: a grant line's password hash never is. */
void relay_extra_privileges(struct st_mysql *m, char *out, size_t n);

/** @brief The privilege list of one SHOW GRANTS line, beyond what the
 *         relay needs, appended to out (", " between). Exposed for the
 *         tests. */
void relay_grant_extras(const char *line, char *out, size_t n);

#endif
