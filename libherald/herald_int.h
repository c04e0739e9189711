/*
 * herald_int.h - libherald's internal types, shared by its files: the
 * configuration (herald_conf.c), the client and its connection
 * (herald_client.c), and windows, schemas and rendering (herald_window.c).
 */
#ifndef HERALD_INT_H
#define HERALD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "hb_buf.h"
#include "hb_pb.h"
#include "hd_frame.h"
#include "hd_zk.h"
#include "herald.pb-c.h"
#include "herald/herald.h"

typedef struct {
  char *table;
  char **cols;
  size_t ncols;
} hl_proj_t;

struct herald_conf {
  char **relays;
  size_t nrelays;
  char *zk_hosts, *cluster, *source;
  char *zk_auth; /* digest user:password, NULL: none */
  int zk_timeout_ms;
  char *token, *client_id;
  int tls;        /* 1: TLS with every relay (else: as registered) */
  int tls_verify; /* the relay's certificate and its name or IP */
  char *tls_ca, *tls_cert, *tls_key; /* PEM files; NULL: none */
  char **tables;
  size_t ntables;
  uint32_t nparts; /* 0: no partition filter */
  uint32_t *parts; /* the subset, or all when nplist == 0 */
  size_t nplist;
  int pfn; /* Herald__PartitionFunction */
  char *key_column;
  hl_proj_t *proj;
  size_t nproj;
  int start_mode; /* Herald__StartMode */
  uint64_t start_scn;
  int stall_ms, connect_ms, backoff_max_ms;
  int failover; /* 0: a relay's failure is fatal (HERALD_ERR_RELAY) */
  uint32_t max_frame;
  int snap;           /* snapshot: on */
  char **snap_tables; /* snapshot.tables; none: the subscription's */
  size_t nsnap_tables;
  uint8_t *snap_pos; /* snapshot.position, as packed SnapshotPosition */
  size_t snap_pos_len;
  uint32_t snap_chunk; /* snapshot.chunk_rows; 0: the relay's */
  herald_error_cb *ecb;
  void *eud;
};

/* Deep copy, for the client to own. */
herald_conf_t *hl_conf_dup(const herald_conf_t *c);

/* A table definition the client keeps for its life. */
struct herald_schema {
  Herald__TableSchema *ts; /* unpacked copy */
  herald_column_t *cols;
};

/* The schemas seen, by (db, table, version). */
typedef struct {
  struct herald_schema **slot;
  size_t cap, n;
} hl_schemas_t;

void hl_schemas_free(hl_schemas_t *m);
/* @returns the kept copy of ts; *added = 1 when it was new. */
const herald_schema_t *
hl_schemas_add(hl_schemas_t *m, const Herald__TableSchema *ts, int *added);
const herald_schema_t *hl_schemas_find(const hl_schemas_t *m, const char *db,
                                       const char *table, uint32_t version);

/* herald_arena.c: a bump arena for the client's unpacked frames, with
 * protobuf-c's allocator interface (pa). */
typedef struct hl_block hl_block_t;
typedef struct {
  hl_block_t *head;
  size_t nblocks, total, want;
  ProtobufCAllocator pa;
} hl_arena_t;

void hl_arena_init(hl_arena_t *a);
/* Everything allocated is gone: no frame of it may be alive. */
void hl_arena_reset(hl_arena_t *a);
void hl_arena_free(hl_arena_t *a);

/* What herald_poll() hands out: a received Window, less what an earlier
 * relay already delivered of it (a window resumed after a failover). */
struct herald_window {
  const Herald__Window *pw;
  size_t row0, ddl0; /* first row change / statement of pw delivered */
  uint32_t chunk;
  int last;
  uint64_t row_base;
  const herald_schema_t **schemas; /* new in this chunk */
  size_t nschemas, schemas_cap;
};

/* What herald_change_owned() decides by: the client's partition filter
 * as a bitset (set NULL without one) and scratch for the canonical key,
 * kept so that no call allocates once it has grown. */
typedef struct {
  int fn; /* Herald__PartitionFunction */
  uint32_t nparts;
  uint8_t *set; /* nparts bits: the partitions asked for */
  uint8_t *tmp;
  size_t tmpcap;
} hl_owned_t;

void hl_owned_init(hl_owned_t *o, const herald_conf_t *conf);
void hl_owned_free(hl_owned_t *o);
/* herald_change_owned() of a client's o. */
int hl_owned(hl_owned_t *o, const herald_change_t *ch, int image);

/* The change-format renderer state of a client. */
typedef struct {
  hb_pbr_t *pbr;
  hb_buf_t out, held;
  uint64_t row_base;
} hl_json_t;

void hl_json_free(hl_json_t *j);
int hl_json_window(hl_json_t *j, const herald_window_t *w, unsigned flags,
                   char *const *tables, size_t ntables, const char **out,
                   size_t *len);

/* herald_client.c: fd, a connected stream socket, as the connection to
 * the first relay, just dialed, its Subscribe taken as sent: the state
 * conn_open() leaves. Not exported; for the fuzz target that plays the
 * relay on a socketpair (tests/fuzz/fuzz_client_window.c).
 * @returns 0, or -1 when a connection is open already, the client has
 * stopped or has no relay. */
int hl_client_attach(herald_client_t *c, int fd);

#endif
