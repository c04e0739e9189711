/*
 * relay_metrics.h - the relay's counters and gauges.
 *
 * Written by the thread that owns each figure (fetcher, loop), read by the
 * HTTP thread and the ZooKeeper registration: every field is atomic and
 * read without locks. Relaxed ordering is enough, since no figure is used
 * to publish other memory.
 */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

/* Error kinds, counted separately (label kind="..." in /metrics). */
#define RELAY_ERR_MAP(XX)                                                      \
  XX(CONNECT, "connect")                                                       \
  XX(SOURCE, "source")                                                         \
  XX(PURGED, "binlog_purged")                                                  \
  XX(CONFIG, "source_config")                                                  \
  XX(PRIVILEGE, "privilege")                                                   \
  XX(SERVER_ID, "server_id")                                                   \
  XX(DECODE, "decode")                                                         \
  XX(STORE, "store")                                                           \
  XX(PROTOCOL, "protocol")                                                     \
  XX(ZK, "zookeeper")

typedef enum {
#define XX(c, s) RELAY_ERR_##c,
  RELAY_ERR_MAP(XX)
#undef XX
      RELAY_ERR__N
} relay_err_kind_t;

typedef struct {
  _Atomic uint64_t windows; /* windows captured (stored) */
  _Atomic uint64_t rows;    /* row changes captured */
  _Atomic uint64_t bytes;   /* binlog bytes read from the source */
  _Atomic uint64_t newest_scn;
  _Atomic uint64_t newest_ts_ms;   /* commit time of the newest window */
  _Atomic uint64_t idle_scn;       /* the source's heartbeat said nothing
                                      follows newest_scn up to here */
  _Atomic uint64_t source_ts_ms;   /* source time of the last event or
                                      heartbeat seen: the lag reference */
  _Atomic uint64_t source_seen_ms; /* local time that was seen */
  _Atomic uint64_t oldest_scn;     /* oldest window still served */
  _Atomic uint64_t consumers;      /* connections subscribed now */
  _Atomic uint64_t buffered_bytes; /* memory ring */
  _Atomic uint64_t buffered_windows;
  _Atomic uint64_t disk_bytes;   /* log store */
  _Atomic uint64_t sent_windows; /* to consumers, all connections */
  _Atomic uint64_t sent_bytes;
  _Atomic uint64_t connected; /* 1 while the source stream is up */
  _Atomic uint64_t reconnects;
  /* The source's @@server_id, read at each connect; 0 before the first. */
  _Atomic uint64_t source_server_id;
  /* snapshots (relay_snap.h) */
  _Atomic uint64_t snapshot_consumers;    /* subscriptions with one now */
  _Atomic uint64_t snapshot_chunks_read;  /* from the source */
  _Atomic uint64_t snapshot_rows_read;    /* from the source */
  _Atomic uint64_t snapshot_rows_dropped; /* changed after their chunk was
                                             read: the stream had them */
  _Atomic uint64_t errors[RELAY_ERR__N];
} relay_metrics_t;

#define RM_ADD(m, f, v)                                                        \
  atomic_fetch_add_explicit(&(m)->f, (v), memory_order_relaxed)
#define RM_SET(m, f, v)                                                        \
  atomic_store_explicit(&(m)->f, (v), memory_order_relaxed)
#define RM_GET(m, f) atomic_load_explicit(&(m)->f, memory_order_relaxed)
#define RM_ERR(m, kind) RM_ADD(m, errors[RELAY_ERR_##kind], 1)

#endif
