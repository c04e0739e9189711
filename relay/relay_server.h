/*
 * relay_server.h - the consumer server on relay.listen.
 *
 * libuv, one loop thread. A consumer subscribes (start SCN, table
 * patterns, partition filter, projection) and is streamed whole windows in
 * SCN order: from the memory ring while its cursor is there, from the log
 * store (read on libuv's worker threads) when it is further behind, and
 * back to the ring once it catches up. Each connection has its own cursor
 * and at most relay.inflight_bytes in flight, so a slow or stalled consumer
 * never holds up the fetcher or the others. Malformed input closes that
 * connection only, with a logged reason.
 */
#ifndef RELAY_SERVER_H
#define RELAY_SERVER_H

#include <uv.h>

#include "hd_confdefs.h"
#include "relay_metrics.h"
#include "relay_ring.h"
#include "relay_store.h"

typedef struct relay_server relay_server_t;

typedef struct {
  uv_loop_t *loop;
  const hd_relay_conf_t *conf;
  relay_ring_t *ring;   /* owned by the caller, used on the loop thread */
  relay_store_t *store; /* readers only */
  relay_metrics_t *m;
  const char *token; /* shared token consumers must present; NULL: none */
  struct relay_schemas *schemas; /* table schemas sent to consumers */
  struct relay_snap *snap;       /* snapshots; NULL: none served */
} relay_server_opts_t;

/**
 * @brief Listen on conf->relay.listen.
 * @returns 0, or a negative code with errstr filled.
 * @locality loop thread
 */
int relay_server_start(const relay_server_opts_t *o, relay_server_t **out,
                       char *errstr, size_t errlen);

/**
 * @brief Serve a consumer on fd, a connected stream socket, as if it had
 *        been accepted on relay.listen (the consumer-protocol fuzz target
 *        hands it one end of a socketpair). The server owns fd from here,
 *        also on failure.
 * @returns 0, or a negative libuv code (the connection is closed).
 * @locality loop thread
 */
int relay_server_adopt(relay_server_t *s, int fd, const char *peer);

/** @brief Open handles: the listener, the timer and one per connection
 *         not yet freed (a test waits for its connection to be gone). */
size_t relay_server_handles(const relay_server_t *s);

/** @brief New windows are in the ring: wake the consumers waiting. */
void relay_server_notify(relay_server_t *s);

/**
 * @brief Close the listener and every connection; frees the server once
 *        all handles are closed (run the loop until then).
 */
void relay_server_close(relay_server_t *s);

#endif
