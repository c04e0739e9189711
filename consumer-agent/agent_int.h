/*
 * agent_int.h - what the agent's service (agent.c) shows its HTTP
 * endpoints (agent_http.c): a copy of its figures, taken under its lock.
 */
#ifndef AGENT_INT_H
#define AGENT_INT_H

#include <stdint.h>

#include "agent.h"

typedef struct {
  uint32_t partition;
  int held;
  uint64_t applied_scn, applied_ts_ms; /* written to the sink */
  uint64_t ckpt_scn, ckpt_written_ms;  /* last checkpoint written */
  uint64_t newest_scn, newest_ts_ms;   /* the relay's head */
  uint64_t windows, rows, sink_errors, failovers;
  char sink_error[300];   /* the last sink failure; "" when none */
  uint64_t sink_error_ms; /* when, Unix ms */
  char relay[300];        /* host:port streamed from; "" when none */
  /* its snapshot (docs/snapshots.md) */
  int snap_state;          /* hd_checkpoint_t.snapshot_state */
  char snap_table[200];    /* table of the last chunk */
  uint64_t snap_chunks;    /* chunks applied by this holder */
  uint64_t snap_rows;      /* rows (op r) applied by this holder */
  uint64_t snap_rows_read; /* rows the relay read for those chunks */
  uint64_t snap_table_rows, snap_table_estimate;
  uint32_t snap_tables_done, snap_tables_total;
  uint64_t snap_started_ms; /* when this holder began, Unix ms */
  uint64_t snap_request;    /* hd_checkpoint_t.snapshot_id */
} agent_pstat_t;

typedef struct {
  const char *id, *group, *mode; /* mode: "group" or "standalone" */
  uint64_t session;              /* ZooKeeper session, 0 standalone */
  int connected;                 /* the lease holds (1 standalone) */
  uint32_t partitions;           /* N */
} agent_info_t;

/** @brief The agent's figures; ps has room for info->partitions entries.
 *  @locality any thread */
void agent_stats(agent_t *a, agent_info_t *info, agent_pstat_t *ps);

/** @brief Lag of a partition behind its relay's head, in milliseconds: 0
 *         when it has reached the head. */
uint64_t agent_lag_ms(const agent_pstat_t *s);

typedef struct agent_http agent_http_t;
/** @brief Serve /metrics and /status for a on its agent.http. @returns 0
 *         or -1 (logged). */
int agent_http_start(agent_t *a, const hd_agent_conf_t *conf,
                     agent_http_t **out);
void agent_http_stop(agent_http_t *h);

#endif
