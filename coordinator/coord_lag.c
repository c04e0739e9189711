/*
 * coord_lag.c - the groups' lag readings, and the relays' part of
 * /status (coord_lag.h).
 *
 * A reading asks for every checkpoint of the group at once with zoo_aget
 * and waits for the answers: one round trip for the group, not one per
 * partition, so that a group of thousands of partitions is read in about
 * the time of one read. The ZooKeeper client answers every request, with
 * an error if the connection goes, so the wait ends.
 */
#include "coord_lag.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_snap.h"
#include "hd_log.h"
#include "hd_mem.h"

struct coord_lag {
  uint32_t partitions; /* 0 before the first reading */
  size_t window;
  size_t n;              /* readings in the ring (at most window) */
  size_t head;           /* where the next reading goes */
  hd_lag_sample_t *ring; /* [partitions][window] */
  coord_ck_t *ck;        /* [partitions] as last read (scn 0: none) */
  char **owner;          /* [partitions] holder, NULL none */
  hd_lag_point_t *pt;    /* [partitions] */
  hd_lag_status_t *st;   /* [partitions] */
  hd_lag_source_t src;
  uint64_t sampled_ms;
  coord_snap_rate_t rate; /* the snapshots' rows, reading by reading */
  int has_snap;           /* a partition has a snapshot state: snap is */
  coord_snap_t snap;
};

/* ------------------------------------------------------------ cluster */

/* A relay's newest commit time behind the best relay of its source and
 * server: how far behind the source it is, as far as ZooKeeper tells. */
static double behind_s(const coord_cluster_t *cl, const hd_reg_t *r) {
  uint64_t best = r->newest_ts_ms;
  for (size_t i = 0; i < cl->nregs; i++) {
    const hd_reg_t *o = &cl->regs[i];
    if (strcmp(o->source, r->source) == 0 &&
        o->source_server_id == r->source_server_id && o->newest_ts_ms > best)
      best = o->newest_ts_ms;
  }
  return (double)(best - r->newest_ts_ms) / 1000.0;
}

void coord_cluster_finish(coord_cluster_t *cl) {
  json_decref(cl->relays);
  cl->relays = json_array();
  for (size_t i = 0; i < cl->nregs; i++) {
    const hd_reg_t *r = &cl->regs[i];
    json_array_append_new(
        cl->relays,
        json_pack(
            "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:f}", "source",
            r->source, "id", r->id, "advertise", r->advertise, "http", r->http,
            "source_server_id", (json_int_t)r->source_server_id, "oldest_scn",
            (json_int_t)r->oldest_scn, "newest_scn", (json_int_t)r->newest_scn,
            "newest_ts_ms", (json_int_t)r->newest_ts_ms, "connected",
            r->connected, "updated_ms", (json_int_t)r->updated_ms,
            "behind_seconds", behind_s(cl, r)));
  }
}

void coord_cluster_free(coord_cluster_t *cl) {
  free(cl->regs);
  json_decref(cl->relays);
  json_decref(cl->coords);
  memset(cl, 0, sizeof(*cl));
}

/* ------------------------------------------------------------- groups */

coord_lag_t *coord_lag_new(void) {
  return hd_calloc(1, sizeof(coord_lag_t));
}

static void lag_reset(coord_lag_t *lg) {
  for (uint32_t p = 0; p < lg->partitions; p++)
    free(lg->owner[p]);
  free(lg->owner);
  free(lg->ring);
  free(lg->ck);
  free(lg->pt);
  free(lg->st);
  memset(lg, 0, sizeof(*lg));
}

void coord_lag_free(coord_lag_t *lg) {
  if (lg == NULL)
    return;
  lag_reset(lg);
  free(lg);
}

/* The answers to one group's zoo_aget()s. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint32_t left;
} batch_t;

typedef struct {
  batch_t *b;
  int rc;
  int32_t version;
  char *data; /* malloc()ed, NUL-terminated */
  int len;
} answer_t;

/* @locality the ZooKeeper client's completion thread */
static void on_get(int rc, const char *value, int len, const struct Stat *st,
                   const void *ctx) {
  answer_t *a = (answer_t *)(uintptr_t)ctx;
  a->rc = rc;
  if (rc == ZOK) {
    a->version = st ? st->version : -1;
    a->len = len > 0 ? len : 0;
    a->data = hd_malloc((size_t)a->len + 1);
    if (a->len)
      memcpy(a->data, value, (size_t)a->len);
    a->data[a->len] = '\0';
  }
  pthread_mutex_lock(&a->b->mu);
  a->b->left--;
  pthread_cond_signal(&a->b->cv);
  pthread_mutex_unlock(&a->b->mu);
}

static void lag_size(coord_lag_t *lg, uint32_t n, size_t window) {
  if (lg->partitions == n && lg->window == window)
    return;
  lag_reset(lg);
  lg->partitions = n;
  lg->window = window;
  lg->ring = hd_calloc((size_t)n * window, sizeof(*lg->ring));
  lg->ck = hd_calloc(n, sizeof(*lg->ck));
  lg->owner = hd_calloc(n, sizeof(*lg->owner));
  lg->pt = hd_calloc(n, sizeof(*lg->pt));
  lg->st = hd_calloc(n, sizeof(*lg->st));
}

int coord_lag_sample(coord_lag_t *lg, zhandle_t *zh, const char *cluster,
                     const char *group, const hd_group_t *node,
                     const char *const *holder, const coord_cluster_t *cl,
                     size_t window, uint64_t now_ms) {
  uint32_t n = node->partitions;
  batch_t b;
  pthread_mutex_init(&b.mu, NULL);
  pthread_cond_init(&b.cv, NULL);
  b.left = 0;
  answer_t *ans = hd_calloc(n, sizeof(*ans));
  int rc = ZOK;
  for (uint32_t p = 0; p < n; p++) {
    char path[HD_GROUP_PATH_MAX];
    hd_path_checkpoint(path, sizeof(path), cluster, group, p);
    ans[p].b = &b;
    ans[p].version = -1;
    pthread_mutex_lock(&b.mu);
    b.left++;
    pthread_mutex_unlock(&b.mu);
    int arc = zoo_aget(zh, path, 0, on_get, &ans[p]);
    if (arc != ZOK) {
      pthread_mutex_lock(&b.mu);
      b.left--;
      pthread_mutex_unlock(&b.mu);
      rc = arc;
      break;
    }
  }
  pthread_mutex_lock(&b.mu);
  while (b.left > 0)
    pthread_cond_wait(&b.cv, &b.mu);
  pthread_mutex_unlock(&b.mu);
  pthread_mutex_destroy(&b.mu);
  pthread_cond_destroy(&b.cv);
  for (uint32_t p = 0; p < n && rc == ZOK; p++)
    if (ans[p].rc != ZOK && ans[p].rc != ZNONODE)
      rc = ans[p].rc;
  if (rc == ZOK) {
    lag_size(lg, n, window);
    hd_lag_source(cl->regs, cl->nregs, node->source, &lg->src);
    /* One parse buffer for the reading (a parse fills all of it): a
     * checkpoint is ~10 KiB parsed (the snapshot token), of which the
     * summary keeps ~130 bytes. */
    hd_checkpoint_t *full = hd_malloc(sizeof(*full));
    uint64_t prev_ms = coord_snap_last_ms(&lg->rate), snap_rows = 0;
    for (uint32_t p = 0; p < n; p++) {
      char err[256];
      int64_t ver = -1;
      coord_ck_t k;
      coord_ck_keep(&k, NULL);
      if (ans[p].rc == ZOK) {
        if (hd_checkpoint_parse(ans[p].data, (size_t)ans[p].len, full, err,
                                sizeof(err)) == 0) {
          ver = ans[p].version;
          coord_ck_keep(&k, full);
        } else {
          hd_log(HD_LL_DEBUG, "coord", "checkpoint unreadable",
                 "group=%s partition=%" PRIu32 " error=\"%s\"", group, p, err);
        }
      }
      snap_rows += coord_snap_delta(lg->n ? &lg->ck[p] : NULL, &k, prev_ms);
      lg->ck[p] = k;
      const coord_ck_t *ck = &lg->ck[p];
      free(lg->owner[p]);
      lg->owner[p] = holder && holder[p] ? hd_strdup(holder[p]) : NULL;
      hd_lag_measure(&lg->src, ck->scn, ck->ts_ms, &lg->pt[p]);
      hd_lag_sample_t *ring = lg->ring + (size_t)p * window;
      ring[lg->head] = (hd_lag_sample_t){.t_ms = now_ms,
                                         .scn = ck->scn,
                                         .zversion = ver,
                                         .epoch = ck->epoch,
                                         .owned = lg->owner[p] != NULL,
                                         .behind = lg->pt[p].behind,
                                         .lag_known = lg->pt[p].lag_known,
                                         .lag_s = lg->pt[p].lag_s};
    }
    free(full);
    coord_snap_push(&lg->rate, now_ms, snap_rows);
    lg->has_snap = coord_snap_sum(lg->ck, n, &lg->rate, &lg->snap);
    lg->head = (lg->head + 1) % window;
    if (lg->n < window)
      lg->n++;
    /* hd_lag_judge wants the readings oldest first. */
    hd_lag_sample_t *w = hd_malloc(window * sizeof(*w));
    for (uint32_t p = 0; p < n; p++) {
      const hd_lag_sample_t *ring = lg->ring + (size_t)p * window;
      for (size_t i = 0; i < lg->n; i++)
        w[i] = ring[(lg->head + window - lg->n + i) % window];
      lg->st[p] = hd_lag_judge(w, lg->n, window);
    }
    free(w);
    lg->sampled_ms = now_ms;
  }
  for (uint32_t p = 0; p < n; p++)
    free(ans[p].data);
  free(ans);
  return rc;
}

/* How far behind p is, for best and worst: its lag; unknown while behind
 * counts as the worst, unknown otherwise as the best. */
static double rank(const coord_lag_t *lg, uint32_t p) {
  const hd_lag_point_t *x = &lg->pt[p];
  if (x->lag_known)
    return x->lag_s;
  return x->behind ? 1e300 : -1;
}

static void extremes(const coord_lag_t *lg, int64_t *worst, int64_t *best) {
  *worst = *best = -1;
  for (uint32_t p = 0; p < lg->partitions; p++) {
    double r = rank(lg, p);
    if (*worst < 0 || r > rank(lg, (uint32_t)*worst) ||
        (r == rank(lg, (uint32_t)*worst) && lg->st[p] > lg->st[*worst]))
      *worst = p;
    if (*best < 0 || r < rank(lg, (uint32_t)*best) ||
        (r == rank(lg, (uint32_t)*best) && lg->st[p] < lg->st[*best]))
      *best = p;
  }
}

void coord_lag_worst(const coord_lag_t *lg, hd_lag_status_t *status,
                     double *max_lag) {
  *status = HD_LAG_OK;
  *max_lag = -1;
  for (uint32_t p = 0; p < lg->partitions; p++) {
    if (lg->st[p] > *status)
      *status = lg->st[p];
    if (lg->pt[p].lag_known && lg->pt[p].lag_s > *max_lag)
      *max_lag = lg->pt[p].lag_s;
  }
}

static json_t *opt_int(int known, int64_t v) {
  return known ? json_integer(v) : json_null();
}

json_t *coord_lag_json(const coord_lag_t *lg) {
  if (lg == NULL || lg->partitions == 0)
    return NULL;
  json_t *parts = json_array();
  for (uint32_t p = 0; p < lg->partitions; p++) {
    const hd_lag_point_t *x = &lg->pt[p];
    const coord_ck_t *ck = &lg->ck[p];
    json_array_append_new(
        parts,
        json_pack("{s:I, s:o, s:I, s:I, s:I, s:o, s:o, s:o, s:b, s:s, s:o}",
                  "partition", (json_int_t)p, "owner",
                  lg->owner[p] ? json_string(lg->owner[p]) : json_null(), "scn",
                  (json_int_t)ck->scn, "ts_ms", (json_int_t)ck->ts_ms,
                  "written_ms", (json_int_t)ck->written_ms, "lag_seconds",
                  x->lag_known ? json_real(x->lag_s) : json_null(),
                  "lead_files", opt_int(x->lead_known, x->lead_files),
                  "lead_bytes", opt_int(x->lead_bytes_known, x->lead_bytes),
                  "out_of_retention", x->out_of_retention, "status",
                  hd_lag_status_name(lg->st[p]), "snapshot",
                  coord_ck_snap_json(ck)));
  }
  hd_lag_status_t st;
  double max;
  int64_t worst, best;
  coord_lag_worst(lg, &st, &max);
  extremes(lg, &worst, &best);
  json_t *o = json_pack(
      "{s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "status",
      hd_lag_status_name(st), "max_lag_seconds",
      max >= 0 ? json_real(max) : json_null(), "worst_partition",
      opt_int(worst >= 0, worst), "best_partition", opt_int(best >= 0, best),
      "relay_newest_scn", (json_int_t)lg->src.newest_scn, "relay_newest_ts_ms",
      (json_int_t)lg->src.newest_ts_ms, "relay_oldest_scn",
      (json_int_t)lg->src.oldest_scn, "relays", (json_int_t)lg->src.relays,
      "lag_sampled_ms", (json_int_t)lg->sampled_ms, "snapshot",
      lg->has_snap ? coord_snap_json(&lg->snap) : json_null());
  json_object_set_new(o, "lag", parts); /* last: it is the long one */
  return o;
}

/* ------------------------------------------------------------ metrics */

typedef enum { F_LAG, F_STATUS, F_SCN } pfam_t;

void coord_lag_metrics(hd_buf_t *b, const char *const *names,
                       const coord_lag_t *const *lags, size_t n,
                       const coord_cluster_t *cl) {
  static const struct {
    const char *name, *help;
  } pf[] = {
      {"herald_partition_lag_seconds",
       "Relays' newest commit time minus the checkpoint's (0 when caught "
       "up); absent while unknown."},
      {"herald_partition_status",
       "0 OK, 1 WARN, 2 STALL, 3 STOP, 4 UNOWNED (docs/coordinator.md)."},
      {"herald_partition_checkpoint_scn",
       "The partition's checkpoint SCN (0: none yet)."},
  };
  char part[16];
  for (size_t f = 0; f < sizeof(pf) / sizeof(pf[0]); f++) {
    hd_prom_family(b, pf[f].name, "gauge", pf[f].help);
    for (size_t g = 0; g < n; g++) {
      const coord_lag_t *lg = lags[g];
      for (uint32_t p = 0; lg && p < lg->partitions; p++) {
        snprintf(part, sizeof(part), "%" PRIu32, p);
        double v;
        if (f == F_LAG) {
          if (!lg->pt[p].lag_known)
            continue;
          v = lg->pt[p].lag_s;
        } else if (f == F_STATUS) {
          v = lg->st[p];
        } else {
          v = (double)lg->ck[p].scn;
        }
        hd_prom_sample2(b, pf[f].name, "group", names[g], "partition", part, v);
      }
    }
  }
  static const struct {
    const char *name, *help;
  } gf[] = {
      {"herald_group_max_lag_seconds",
       "The group's worst partition's lag (absent while none is known)."},
      {"herald_group_status", "The group's worst partition's status (codes "
                              "as herald_partition_status)."},
  };
  for (size_t f = 0; f < sizeof(gf) / sizeof(gf[0]); f++) {
    hd_prom_family(b, gf[f].name, "gauge", gf[f].help);
    for (size_t g = 0; g < n; g++) {
      hd_lag_status_t st;
      double max;
      if (lags[g] == NULL || lags[g]->partitions == 0)
        continue;
      coord_lag_worst(lags[g], &st, &max);
      if (f == 1 || max >= 0)
        hd_prom_sample(b, gf[f].name, "group", names[g], f == 1 ? st : max);
    }
  }
  /* Snapshots: only groups where a partition has a snapshot state. */
  static const char *const sstates[] = {"running", "done", "cancelled"};
  hd_prom_family(b, "herald_group_snapshot_partitions", "gauge",
                 "Partitions whose checkpoint says their snapshot is in "
                 "this state.");
  for (size_t g = 0; g < n; g++) {
    const coord_lag_t *lg = lags[g];
    if (lg == NULL || !lg->has_snap)
      continue;
    const uint32_t v[] = {lg->snap.running, lg->snap.done, lg->snap.cancelled};
    for (size_t k = 0; k < 3; k++)
      hd_prom_sample2(b, "herald_group_snapshot_partitions", "group", names[g],
                      "state", sstates[k], v[k]);
  }
  static const struct {
    const char *name, *help;
  } sf[] = {
      {"herald_group_snapshot_rows",
       "Snapshot rows the group's partitions delivered (their checkpoints)."},
      {"herald_group_snapshot_rows_per_second",
       "Snapshot rows delivered per second (absent while unknown)."},
      {"herald_group_snapshot_eta_seconds",
       "Estimated time left of the group's snapshot (absent while unknown; "
       "tables not started count nothing)."},
  };
  for (size_t f = 0; f < sizeof(sf) / sizeof(sf[0]); f++) {
    hd_prom_family(b, sf[f].name, "gauge", sf[f].help);
    for (size_t g = 0; g < n; g++) {
      const coord_lag_t *lg = lags[g];
      if (lg == NULL || !lg->has_snap)
        continue;
      const coord_snap_t *s = &lg->snap;
      if ((f == 1 && !s->rate_known) || (f == 2 && !s->eta_known))
        continue;
      hd_prom_sample(b, sf[f].name, "group", names[g],
                     f == 0   ? (double)s->rows
                     : f == 1 ? s->rows_per_s
                              : s->eta_s);
    }
  }
  static const struct {
    const char *name, *help;
  } rf[] = {
      {"herald_relay_newest_scn", "Newest SCN a relay serves."},
      {"herald_relay_newest_commit_time_seconds",
       "Source commit time of a relay's newest window, Unix seconds."},
      {"herald_relay_oldest_scn", "Oldest SCN a relay still serves."},
  };
  for (size_t f = 0; f < sizeof(rf) / sizeof(rf[0]); f++) {
    hd_prom_family(b, rf[f].name, "gauge", rf[f].help);
    for (size_t i = 0; cl && i < cl->nregs; i++) {
      const hd_reg_t *r = &cl->regs[i];
      double v = f == 0   ? (double)r->newest_scn
                 : f == 1 ? (double)r->newest_ts_ms / 1000.0
                          : (double)r->oldest_scn;
      hd_prom_sample2(b, rf[f].name, "source", r->source, "relay", r->id, v);
    }
  }
}
