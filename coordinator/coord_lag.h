/*
 * coord_lag.h - what the coordinator keeps for lag: per group, while
 * leading, a reading of every partition's checkpoint each
 * coordinator.lag_interval with the window of readings its status is
 * judged over (hd_lag.h), against the cluster's relays (which the loop
 * reads every refresh, leader or not).
 *
 * All of it is the loop's (coord_zk.c); what /status, /metrics and
 * /history show is rendered from it by the loop and handed to the view
 * (coord.h), except the history, which lives in the view under its lock.
 */
#ifndef COORD_LAG_H
#define COORD_LAG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <zookeeper/zookeeper.h>

#include "hd_group.h"
#include "hd_http.h"
#include "hd_lag.h"
#include "hd_reg.h"

/* The relays and coordinators registered in the cluster, as the loop
 * read them (coord_zk.c); free with coord_cluster_free(). */
typedef struct {
  hd_reg_t *regs;
  size_t nregs;
  json_t *relays; /* /status "relays" */
  json_t *coords; /* /status "coordinators" */
} coord_cluster_t;

/**
 * @brief Build cl->relays, the relays' /status entries with each one's
 *        behind_seconds, from cl->regs (coord_zk.c reads them).
 */
void coord_cluster_finish(coord_cluster_t *cl);
void coord_cluster_free(coord_cluster_t *cl);

/* One group's readings. */
typedef struct coord_lag coord_lag_t;

/** @brief Empty state for a group; free with coord_lag_free(). */
coord_lag_t *coord_lag_new(void);
void coord_lag_free(coord_lag_t *lg);

/**
 * @brief One reading of group: every checkpoints/<p> (asynchronously, all
 *        at once), figures against the relays of node->source, the
 *        window moved on and each partition judged.
 * @param holder  [node->partitions]: who holds owners/<p> (NULL: none)
 * @param window  coordinator.lag_window
 * @returns ZOK, or the ZooKeeper error that left the reading incomplete
 *          (the window is not moved then).
 */
int coord_lag_sample(coord_lag_t *lg, zhandle_t *zh, const char *cluster,
                     const char *group, const hd_group_t *node,
                     const char *const *holder, const coord_cluster_t *cl,
                     size_t window, uint64_t now_ms);

/** @brief The group's worst status and lag of the last reading (for the
 *         history); *max_lag < 0 when no lag is known. */
void coord_lag_worst(const coord_lag_t *lg, hd_lag_status_t *status,
                     double *max_lag);

/** @brief The fields the group's /status entry gets (contract:
 *         docs/coordinator.md); NULL before the first reading. */
json_t *coord_lag_json(const coord_lag_t *lg);

/**
 * @brief The lag families of /metrics for n groups (names[i], lags[i];
 *        a NULL lags[i] is left out) and the relays of cl.
 */
void coord_lag_metrics(hd_buf_t *b, const char *const *names,
                       const coord_lag_t *const *lags, size_t n,
                       const coord_cluster_t *cl);

#endif
