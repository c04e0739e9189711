/*
 * coord.h - herald-coordinator's state, shared by its three parts.
 *
 * Threads:
 *  - the loop (coord_run(), main's thread) owns the ZooKeeper session, the
 *    election, the group table and every read and write of group nodes;
 *  - the ZooKeeper client's threads call the watchers and the session
 *    listener, which only record events and wake the loop;
 *  - libmicrohttpd's thread serves /metrics and /status from the view,
 *    which the loop publishes;
 *  - a signal thread turns SIGTERM and SIGINT into coord_stop().
 * Everything below mu is shared; the rest of coord_t is the loop's.
 */
#ifndef COORD_H
#define COORD_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "hd_confdefs.h"
#include "hd_group.h"

/* What /metrics says per group: the figures of the assignment as read. */
typedef struct {
  char name[HD_REG_NAME_MAX];
  uint32_t partitions; /* N; 0 while the group node is unreadable */
  uint32_t members;    /* live member ids */
  uint32_t unowned;    /* in neither members nor pending */
  uint32_t pending;    /* in pending */
  uint64_t version;    /* the assignment's version; 0: none yet */
} coord_gstat_t;

/* A group's worst lag over time, for the console's plot. */
typedef struct {
  uint64_t t_ms;
  float max_lag;  /* < 0: none known */
  uint8_t status; /* hd_lag_status_t */
} coord_hpoint_t;

typedef struct {
  char name[HD_REG_NAME_MAX];
  size_t cap, n, head; /* a ring of cap points; head: the next slot */
  coord_hpoint_t *pts;
} coord_hist_t;

/* One event a watcher saw, for the loop. */
typedef struct coord_ev {
  struct coord_ev *next;
  int kind; /* coord_ev_kind_t (coord_zk.c) */
  char group[HD_REG_NAME_MAX];
} coord_ev_t;

typedef struct coord coord_t;
typedef struct coord_group coord_group_t; /* coord_zk.c */

struct coord {
  const hd_coord_conf_t *conf;
  uint64_t started_ms;

  pthread_mutex_t mu;
  pthread_cond_t cv;  /* events, session changes, stop */
  int stop;           /* SIGTERM/SIGINT */
  coord_ev_t *events; /* newest first */
  int conn_gen;       /* bumped on every session state change */
  /* The view /metrics and /status show. leading is cleared by the session
   * listener itself the moment the connection drops, so that nothing the
   * loop does afterwards counts as the leader's. */
  int connected;
  int leading;
  char leader_id[HD_REG_NAME_MAX]; /* "" unknown */
  char node[64];                   /* our election node's name, "" none */
  char zk_server[300];             /* the server the session uses now */
  uint64_t writes;                 /* assignment writes that succeeded */
  json_t *status_groups;           /* /status "groups"; the view's own */
  coord_gstat_t *gstats;
  size_t ngstats;
  json_t *status_relays;   /* /status "relays" */
  json_t *status_coords;   /* /status "coordinators" */
  char *lag_metrics;       /* the lag families of /metrics; NULL: none */
  uint64_t lag_sampled_ms; /* 0: no lag reading (a follower) */
  coord_hist_t *hist;      /* per group, while leading */
  size_t nhist;

  /* Set before coord_run() starts, read-only after: the watchers read
   * them to tell which node an event is about. */
  char election_path[HD_GROUP_PATH_MAX];
  char groups_path[HD_GROUP_PATH_MAX];
  char *zk_auth; /* zookeeper.auth_file's user:password (owned), NULL */

  /* The loop's own. */
  coord_group_t *groups;
  size_t ngroups;
  struct hd_http *http;
};

/**
 * @brief Run the coordinator until coord_stop(): sessions, election,
 *        assignments. @returns 0 (stopped), or 1 when it cannot run.
 * @locality the loop's thread
 */
int coord_run(coord_t *c);

/** @brief Ask coord_run() to return. @locality any thread */
void coord_stop(coord_t *c);

/**
 * @brief Serve /metrics and /status on conf->coordinator.http.
 * @returns 0, or -1 with errstr filled.
 */
int coord_http_start(coord_t *c, char *errstr, size_t errlen);

/** @brief Stop serving (NULL server is fine). */
void coord_http_stop(coord_t *c);

/** @brief Set up c for conf (paths, locks); free with coord_free(). */
void coord_init(coord_t *c, const hd_coord_conf_t *conf);
void coord_free(coord_t *c);

#endif
