/*
 * agent.c - herald-agent's service (agent.h): partition runners, their
 * checkpoints (ZooKeeper with compare-and-swap, or the standalone file),
 * and the group membership that starts and stops them.
 *
 * Threads: the main thread owns the ZooKeeper membership (join, the
 * assignment, owners/ nodes, the lease) and starts and joins one runner
 * thread per partition held. A runner owns its libherald client and its
 * sink partition; it shares with the main thread only its part_t's
 * atomic flags and, under the agent's lock, its figures.
 *
 * Fencing: a runner writes to its sink only while the main thread has
 * heard from ZooKeeper within half the session timeout (the lease), and
 * moves a checkpoint only with the znode version it last wrote: after a
 * pause past its session (SIGSTOP), or another holder's write, it writes
 * neither sink output nor checkpoints for the partition again.
 */
#include "agent.h"
#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_retry.h"
#include "agent_util.h"
#include "ckpt_file.h"
#include "hd_err.h"
#include "hd_group.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_time.h"
#include "hd_zk.h"
#include "herald/herald.h"
#include "sink.h"

#define COMP "agent"
#define POLL_MS 100
#define ASSIGNMENT_MAX (1 << 20) /* ZooKeeper's node limit */

typedef struct part part_t;

struct agent {
  const hd_agent_conf_t *conf;
  uint32_t n;
  sink_t *sink;
  part_t *parts;
  pthread_mutex_t lock; /* figures of the parts; the checkpoint file */
  /* standalone */
  ckpt_file_t *file;
  /* group */
  hd_zk_t *zk;
  char *zk_auth; /* zookeeper.auth_file's user:password, NULL without */
  atomic_int_fast64_t session; /* read by the HTTP thread */
  char member_path[HD_GROUP_PATH_MAX];
  atomic_int_fast64_t lease_ms; /* last time ZooKeeper answered (mono) */
  atomic_int expired;
  pthread_mutex_t wake_mu;
  pthread_cond_t wake_cv;
  int woken;
  char *abuf; /* the assignment as read (main thread) */
  /* heraldctl snapshot's last request, under lock (read by the main
   * thread, acted on by the runners) */
  hd_snapreq_t req;
  int req_ok;
  int req_bad_version;  /* of a request node said to be unreadable */
  atomic_int req_dirty; /* the node may have changed: read it again */
};

struct part {
  agent_t *a;
  uint32_t p;
  pthread_t th;
  int running;       /* a thread was started and not joined (main thread) */
  atomic_int stop;   /* release: flush, checkpoint, close */
  atomic_int lost;   /* taken away: stop at once, checkpoint nothing */
  atomic_int done;   /* the thread has finished */
  atomic_int resnap; /* a snapshot request came for it: apply between polls */
  uint64_t snap_id;  /* ck.snapshot_id, under a->lock, for the main thread */
  uint64_t epoch;
  int zver;        /* checkpoint znode version last read or written */
  int64_t ck_mono; /* when the checkpoint was last written (mono) */
  hd_checkpoint_t ck;
  /* figures, under a->lock */
  uint64_t windows, rows, sink_errors, newest_ts, applied_ts;
  char sink_error[300]; /* the last sink failure, for /status */
  uint64_t sink_error_ms;
  uint64_t applied_scn, newest_scn, ckpt_scn, ckpt_ms, failovers;
  int held;        /* 1 while a runner holds the partition */
  char relay[300]; /* the relay streamed from, "" when none */
  /* its snapshot, under a->lock (the figures of agent_pstat_t) */
  int snap_state;
  char snap_table[200];
  uint64_t snap_chunks, snap_rows, snap_rows_read, snap_table_rows,
      snap_table_estimate, snap_started_ms;
  uint32_t snap_tables_done, snap_tables_total;
};

/* ------------------------------------------------------------- lease */

static int64_t mono(void) {
  return (int64_t)agent__mono_ms();
}

/* May a runner write now? Standalone always; in a group only while the
 * session is confirmed recently enough that no other agent can hold the
 * partition yet. */
static int lease_ok(agent_t *a) {
  if (a->zk == NULL)
    return 1;
  if (atomic_load(&a->expired))
    return 0;
  int64_t age = mono() - atomic_load(&a->lease_ms);
  return age < (int64_t)a->conf->zk.session_timeout_ms / 2;
}

static void wake(agent_t *a) {
  pthread_mutex_lock(&a->wake_mu);
  a->woken = 1;
  pthread_cond_signal(&a->wake_cv);
  pthread_mutex_unlock(&a->wake_mu);
}

/* ------------------------------------------------------- checkpoints */

static void ck_path(agent_t *a, uint32_t p, char *buf, size_t n) {
  hd_path_checkpoint(buf, n, a->conf->cluster, a->conf->agent.group, p);
}

/* pt->ck was written: when, for the heartbeat, and the figures. */
static void ck_written(part_t *pt) {
  pt->ck_mono = mono();
  pthread_mutex_lock(&pt->a->lock);
  pt->ckpt_scn = pt->ck.scn;
  pt->ckpt_ms = pt->ck.written_ms;
  pt->snap_state = (int)pt->ck.snapshot_state;
  pt->snap_id = pt->ck.snapshot_id;
  pthread_mutex_unlock(&pt->a->lock);
}

/* Write pt->ck. @returns 0; 1 when the partition was taken (another
 * holder wrote: ZBADVERSION); -1 a failure to retry. */
static int ck_write(part_t *pt) {
  agent_t *a = pt->a;
  char err[300];
  pt->ck.written_ms = hd_now_ms();
  if (a->zk == NULL) {
    pthread_mutex_lock(&a->lock);
    int rc = ckpt_file_set(a->file, pt->p, &pt->ck);
    if (rc == 0)
      rc = ckpt_file_save(a->file, err, sizeof(err));
    else
      snprintf(err, sizeof(err), "bad checkpoint for partition %u", pt->p);
    pthread_mutex_unlock(&a->lock);
    if (rc < 0) {
      hd_log(HD_LL_ERROR, COMP, "checkpoint not written",
             "partition=%u scn=%" PRIu64 " reason=\"%s\"", pt->p, pt->ck.scn,
             err);
      return -1;
    }
    ck_written(pt);
    return 0;
  }
  char *json = NULL, path[HD_GROUP_PATH_MAX];
  if (hd_checkpoint_build(&pt->ck, &json, err, sizeof(err)) < 0) {
    hd_log(HD_LL_ERROR, COMP, "checkpoint not built", "partition=%u err=\"%s\"",
           pt->p, err);
    return -1;
  }
  ck_path(a, pt->p, path, sizeof(path));
  struct Stat st;
  int rc = zoo_set2(hd_zk_handle(a->zk), path, json, (int)strlen(json),
                    pt->zver, &st);
  free(json);
  if (rc == ZOK) {
    pt->zver = st.version;
    ck_written(pt);
    return 0;
  }
  if (rc == ZBADVERSION || rc == ZNONODE) {
    /* Who wrote it says why: another holder, or an operator's
     * heraldctl checkpoint set (the partition starts again from it). */
    char data[HD_CK_JSON_MAX], by[HD_REG_NAME_MAX] = "?";
    int len = sizeof(data) - 1;
    hd_checkpoint_t now;
    if (zoo_get(hd_zk_handle(a->zk), path, 0, data, &len, NULL) == ZOK &&
        len >= 0 &&
        hd_checkpoint_parse(data, (size_t)len, &now, err, sizeof(err)) == 0)
      snprintf(by, sizeof(by), "%s", now.owner);
    hd_log(HD_LL_ERROR, COMP, "partition taken: checkpoint moved by another",
           "partition=%u scn=%" PRIu64 " version=%d written_by=%s", pt->p,
           pt->ck.scn, pt->zver, by);
    return 1;
  }
  hd_log(HD_LL_WARN, COMP, "checkpoint not written, will retry",
         "partition=%u scn=%" PRIu64 " zk=\"%s\"", pt->p, pt->ck.scn,
         hd_zk_strerror(rc));
  return -1;
}

/* agent.start: snapshot, for a partition that has no position yet: its
 * checkpoint says a snapshot is under way from now on, so that whoever
 * holds it next goes on with it rather than starting the stream. */
static void snapshot_begin(part_t *pt) {
  if (pt->a->conf->agent.start == HD_AGENT_START_SNAPSHOT && pt->ck.scn == 0 &&
      pt->ck.snapshot_state == HD_CK_SNAPSHOT_NONE) {
    pt->ck.snapshot_state = HD_CK_SNAPSHOT_RUNNING;
    pt->ck.snapshot[0] = '\0';
    memset(&pt->ck.progress, 0, sizeof(pt->ck.progress));
    pt->ck.progress.started_ms = hd_now_ms();
    hd_log(HD_LL_INFO, COMP, "partition starts with a snapshot", "partition=%u",
           pt->p);
  }
}

/* heraldctl snapshot's request r, for pt->ck: a snapshot of r's tables
 * from where the stream is (or, with restart, from the relays' newest
 * position), or the running one cancelled. Once per request: the
 * checkpoint keeps the id it answered. @returns 1 when pt->ck changed. */
static int snapshot_request(part_t *pt, const hd_snapreq_t *r) {
  hd_checkpoint_t *c = &pt->ck;
  if (r->id <= c->snapshot_id || !hd_snapreq_has(r, pt->p))
    return 0;
  c->snapshot_id = r->id;
  if (r->cancel) {
    if (c->snapshot_state == HD_CK_SNAPSHOT_RUNNING) {
      c->snapshot_state = HD_CK_SNAPSHOT_CANCELLED;
      c->progress.ended_ms = hd_now_ms();
      hd_log(HD_LL_INFO, COMP, "snapshot cancelled",
             "partition=%u request=%" PRIu64 " scn=%" PRIu64 " rows=%" PRIu64,
             pt->p, r->id, c->scn, c->progress.rows);
    }
    return 1;
  }
  c->snapshot_state = HD_CK_SNAPSHOT_RUNNING;
  c->snapshot[0] = '\0';
  snprintf(c->snapshot_tables, sizeof(c->snapshot_tables), "%s", r->tables);
  memset(&c->progress, 0, sizeof(c->progress));
  c->progress.started_ms = hd_now_ms();
  if (r->restart) {
    /* The rows written before the relays' newest position come from the
     * snapshot; what was deleted between the old position and it stays
     * at the destination (docs/snapshots.md). */
    hd_log(HD_LL_WARN, COMP, "stream restarts at the relays' newest position",
           "partition=%u request=%" PRIu64 " old_scn=%" PRIu64, pt->p, r->id,
           c->scn);
    c->scn = 0;
    c->ts_ms = 0;
  }
  hd_log(HD_LL_INFO, COMP, "snapshot requested",
         "partition=%u request=%" PRIu64 " tables=\"%s\" after_scn=%" PRIu64,
         pt->p, r->id, r->tables, c->scn);
  return 1;
}

/* The request as the main thread last read it, applied to pt->ck.
 * @returns 1 when pt->ck changed. */
static int snapshot_pending(part_t *pt) {
  agent_t *a = pt->a;
  hd_snapreq_t *r = hd_malloc(sizeof(*r));
  pthread_mutex_lock(&a->lock);
  int ok = a->req_ok;
  if (ok)
    *r = a->req;
  pthread_mutex_unlock(&a->lock);
  int rc = ok ? snapshot_request(pt, r) : 0;
  free(r);
  return rc;
}

/* Read p's checkpoint into pt->ck (and its version); in a group create
 * it when absent, then claim it: write it back with our owner and epoch,
 * so that a write of an earlier holder still under way fails. @returns 0,
 * 1 when another holder got there first, -1 to retry. */
static int ck_claim(part_t *pt) {
  agent_t *a = pt->a;
  memset(&pt->ck, 0, sizeof(pt->ck));
  if (a->zk == NULL) {
    pthread_mutex_lock(&a->lock);
    ckpt_file_get(a->file, pt->p, &pt->ck);
    pthread_mutex_unlock(&a->lock);
    snprintf(pt->ck.owner, sizeof(pt->ck.owner), "%s", a->conf->agent.id);
    snapshot_begin(pt);
    return 0;
  }
  char path[HD_GROUP_PATH_MAX], data[HD_CK_JSON_MAX], err[300];
  ck_path(a, pt->p, path, sizeof(path));
  int len = sizeof(data) - 1;
  struct Stat st;
  int rc = zoo_get(hd_zk_handle(a->zk), path, 0, data, &len, &st);
  if (rc == ZNONODE) {
    hd_checkpoint_t c = {0};
    snprintf(c.owner, sizeof(c.owner), "%s", a->conf->agent.id);
    c.epoch = pt->epoch;
    c.written_ms = hd_now_ms();
    char *json = NULL;
    if (hd_checkpoint_build(&c, &json, err, sizeof(err)) < 0)
      return -1;
    rc = zoo_create(hd_zk_handle(a->zk), path, json, (int)strlen(json),
                    hd_zk_acl(a->zk), 0, NULL, 0);
    free(json);
    if (rc != ZOK && rc != ZNODEEXISTS)
      return -1;
    len = sizeof(data) - 1;
    rc = zoo_get(hd_zk_handle(a->zk), path, 0, data, &len, &st);
  }
  if (rc != ZOK || len < 0)
    return -1;
  if (hd_checkpoint_parse(data, (size_t)len, &pt->ck, err, sizeof(err)) < 0) {
    /* Never reset a position silently: the partition waits for a person. */
    hd_log(HD_LL_ERROR, COMP, "checkpoint unreadable: partition not started",
           "partition=%u path=%s err=\"%s\"", pt->p, path, err);
    return -1;
  }
  if (pt->ck.epoch > pt->epoch) {
    hd_log(HD_LL_WARN, COMP, "checkpoint from a later grant: not claimed",
           "partition=%u epoch=%" PRIu64 " ours=%" PRIu64, pt->p, pt->ck.epoch,
           pt->epoch);
    return 1;
  }
  pt->zver = st.version;
  snprintf(pt->ck.owner, sizeof(pt->ck.owner), "%s", a->conf->agent.id);
  pt->ck.epoch = pt->epoch;
  snapshot_begin(pt);
  snapshot_pending(pt);
  return ck_write(pt);
}

/* ----------------------------------------------------------- runners */

/* What the client works around (a relay failing, none reachable) is
 * worth a warning naming the partition. @locality the runner's thread */
static void on_client_error(void *ud, int status, const char *msg) {
  part_t *pt = ud;
  hd_log(status == HERALD_ERR_RELAY ? HD_LL_INFO : HD_LL_WARN, COMP,
         "relay trouble", "partition=%u status=%s err=\"%s\"", pt->p,
         herald_strerror(status), msg);
}

/* A config list of patterns as libherald's comma list. @returns 0 when
 * the list is empty. */
static int join_patterns(const hd_strlist_t *l, char *buf, size_t n) {
  buf[0] = '\0';
  for (size_t i = 0; i < l->n; i++) {
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s", len ? "," : "", l->v[i]);
  }
  return buf[0] != '\0';
}

static herald_client_t *client_for(part_t *pt, uint64_t after) {
  agent_t *a = pt->a;
  const hd_agent_conf_t *k = a->conf;
  herald_conf_t *hc = herald_conf_new();
  char v[64], err[300], tables[4096] = "";
  int ok = 1;
#define SET(key, val)                                                          \
  do {                                                                         \
    if (herald_conf_set(hc, key, val, err, sizeof(err)) != HERALD_OK) {        \
      hd_log(HD_LL_ERROR, COMP, "client conf", "partition=%u err=\"%s\"",      \
             pt->p, err);                                                      \
      ok = 0;                                                                  \
    }                                                                          \
  } while (0)
  if (k->agent.relays) {
    SET("relays", k->agent.relays);
  } else {
    SET("zookeeper.hosts", k->zk.hosts);
    snprintf(v, sizeof(v), "%" PRIu64, k->zk.session_timeout_ms);
    SET("zookeeper.session_timeout_ms", v);
    SET("cluster", k->cluster);
    SET("source", k->agent.source);
    if (a->zk_auth) /* the relays' registrations are the cluster's too */
      SET("zookeeper.auth", a->zk_auth);
  }
  snprintf(v, sizeof(v), "herald-agent/%s/%u", k->agent.id, pt->p);
  SET("client_id", v);
  if (join_patterns(&k->agent.tables, tables, sizeof(tables)))
    SET("tables", tables);
  snprintf(v, sizeof(v), "%u", a->n);
  SET("partition.count", v);
  snprintf(v, sizeof(v), "%u", pt->p);
  SET("partition.list", v);
  if (after) {
    snprintf(v, sizeof(v), "%" PRIu64, after);
    SET("start", v);
  } else if (pt->ck.snapshot_state == HD_CK_SNAPSHOT_RUNNING) {
    SET("start", "latest"); /* the snapshot brings what came before */
  } else {
    SET("start",
        k->agent.start == HD_AGENT_START_EARLIEST ? "earliest" : "latest");
  }
  if (pt->ck.snapshot_state == HD_CK_SNAPSHOT_RUNNING) {
    SET("snapshot", "on");
    if (pt->ck.snapshot_tables[0])
      SET("snapshot.tables", pt->ck.snapshot_tables);
    else if (join_patterns(&k->agent.snapshot_tables, tables, sizeof(tables)))
      SET("snapshot.tables", tables);
    if (pt->ck.snapshot[0])
      SET("snapshot.position", pt->ck.snapshot);
    snprintf(v, sizeof(v), "%" PRId64, k->agent.snapshot_chunk_rows);
    SET("snapshot.chunk_rows", v);
  }
  snprintf(v, sizeof(v), "%" PRIu64, k->agent.stall_timeout_ms);
  SET("stall_timeout_ms", v);
  /* TLS with the relays: libherald's keys, from agent.relay_tls_*. */
  if (k->agent.relay_tls)
    SET("tls", "true");
  if (!k->agent.relay_tls_verify)
    SET("tls_verify", "false");
  if (k->agent.relay_tls_ca_file)
    SET("tls_ca_file", k->agent.relay_tls_ca_file);
  if (k->agent.relay_tls_cert_file)
    SET("tls_cert_file", k->agent.relay_tls_cert_file);
  if (k->agent.relay_tls_key_file)
    SET("tls_key_file", k->agent.relay_tls_key_file);
#undef SET
  if (k->agent.token_file) {
    FILE *f = fopen(k->agent.token_file, "r");
    char tb[1024];
    if (f && fgets(tb, sizeof(tb), f)) {
      tb[strcspn(tb, "\r\n")] = '\0';
      herald_conf_set(hc, "token", tb, err, sizeof(err));
    } else {
      hd_log(HD_LL_ERROR, COMP, "cannot read agent.token_file", "path=%s",
             k->agent.token_file);
      ok = 0;
    }
    if (f)
      fclose(f);
  }
  herald_conf_set_error_cb(hc, on_client_error, pt);
  herald_client_t *c = ok ? herald_client_new(hc, err, sizeof(err)) : NULL;
  if (ok && c == NULL)
    hd_log(HD_LL_ERROR, COMP, "client", "partition=%u err=\"%s\"", pt->p, err);
  herald_conf_free(hc);
  return c;
}

/* How often a held partition's checkpoint is written when its position
 * does not move: 5 checkpoint intervals, at most 5 s. */
static int64_t heartbeat_ms(const agent_t *a) {
  uint64_t ms = a->conf->agent.checkpoint_interval_ms * 5;
  return (int64_t)(ms < 5000 ? ms : 5000);
}

/* The checkpoint written again, unchanged but for written_ms, when it has
 * not been written for heartbeat_ms(): the coordinator tells a live agent
 * whose partition cannot move (a failing sink, no relay: STALL) from one
 * that has stopped acting (hung, cut off from ZooKeeper: STOP) by these
 * writes (docs/coordinator.md, "Lag"). */
static void ck_heartbeat(part_t *pt) {
  agent_t *a = pt->a;
  if (a->zk == NULL || atomic_load(&pt->lost) || !lease_ok(a) ||
      mono() - pt->ck_mono < heartbeat_ms(a))
    return;
  int rc = ck_write(pt);
  if (rc == 1) {
    atomic_store(&pt->lost, 1);
  } else if (rc < 0) {
    pt->ck_mono = mono() - heartbeat_ms(a) + 1000; /* again in a second */
  }
}

/* Sleep up to ms, waking early when the partition is stopped; the
 * checkpoint's heartbeat goes on meanwhile. */
static void nap(part_t *pt, uint64_t ms) {
  for (uint64_t t = 0;
       t < ms && !atomic_load(&pt->stop) && !atomic_load(&pt->lost); t += 20) {
    ck_heartbeat(pt);
    agent__sleep_ms(ms - t < 20 ? ms - t : 20);
  }
}

/* A failure of the sink, counted and kept for /status: the partition
 * stops and retries, and an operator sees why without the log. */
static void sink_error(part_t *pt, const char *err) {
  pthread_mutex_lock(&pt->a->lock);
  pt->sink_errors++;
  snprintf(pt->sink_error, sizeof(pt->sink_error), "%s", err);
  pt->sink_error_ms = hd_now_ms();
  pthread_mutex_unlock(&pt->a->lock);
}

/* The destination holds a newer owner's epoch for the partition: another
 * agent has it. Drop it at once, checkpoint nothing (the sink wrote
 * nothing of the call that found out). */
static void fenced(part_t *pt, const char *err) {
  hd_log(HD_LL_WARN, COMP, "partition fenced at the destination: dropped",
         "partition=%u epoch=%" PRIu64 " scn=%" PRIu64 " err=\"%s\"", pt->p,
         pt->epoch, pt->ck.scn, err);
  atomic_store(&pt->lost, 1);
}

/* Flush the sink and checkpoint what it covers. @returns 0; 1 lost; -1
 * the sink failed (reopen and replay from the checkpoint). */
static int checkpoint(part_t *pt, sink_part_t *sp, herald_client_t *hc) {
  char err[300];
  uint64_t scn = herald_delivered_scn(hc);
  int snap_moved =
      pt->ck.snapshot_state == HD_CK_SNAPSHOT_RUNNING &&
      (strcmp(herald_snapshot_position(hc), pt->ck.snapshot) != 0 ||
       herald_snapshot_done(hc));
  if (scn <= pt->ck.scn && !snap_moved) {
    ck_heartbeat(pt);
    return 0;
  }
  int frc = sink_flush(sp, err, sizeof(err));
  if (frc == HD_ESINK_FENCED) {
    fenced(pt, err);
    return 1;
  }
  if (frc < 0) {
    hd_log(HD_LL_ERROR, COMP, "sink flush failed: partition stops, retries",
           "partition=%u scn=%" PRIu64 " err=\"%s\"", pt->p, scn, err);
    sink_error(pt, err);
    return -1;
  }
  if (!lease_ok(pt->a))
    return 0; /* not now: the session is not confirmed */
  hd_checkpoint_t prev = pt->ck;
  pt->ck.scn = scn;
  if (snap_moved) {
    /* What the sink holds now includes every chunk delivered so far. */
    snprintf(pt->ck.snapshot, sizeof(pt->ck.snapshot), "%s",
             herald_snapshot_position(hc));
    if (herald_snapshot_done(hc)) {
      pt->ck.snapshot_state = HD_CK_SNAPSHOT_DONE;
      hd_log(HD_LL_INFO, COMP, "snapshot applied", "partition=%u scn=%" PRIu64,
             pt->p, scn);
    }
  }
  if (herald_delivered_ts_ms(hc))
    pt->ck.ts_ms = herald_delivered_ts_ms(hc);
  pthread_mutex_lock(&pt->a->lock);
  pt->ck.windows = pt->windows;
  pt->ck.rows = pt->rows;
  if (snap_moved) {
    hd_ck_progress_t *g = &pt->ck.progress;
    g->tables_total = pt->snap_tables_total;
    g->tables_done = pt->snap_tables_done;
    g->chunks = pt->snap_chunks;
    g->rows = pt->snap_rows;
    g->table_rows = pt->snap_table_rows;
    g->table_rows_estimate = pt->snap_table_estimate;
    if (pt->ck.snapshot_state == HD_CK_SNAPSHOT_DONE)
      g->ended_ms = hd_now_ms();
  }
  pthread_mutex_unlock(&pt->a->lock);
  int rc = ck_write(pt);
  if (rc == 1)
    atomic_store(&pt->lost, 1);
  if (rc != 0)
    pt->ck = prev;
  return rc == 1 ? 1 : 0;
}

/* The partition's figures after a poll, for /status and /metrics: one
 * locked section per window. */
static void figures(part_t *pt, herald_client_t *hc, uint64_t rows, int last) {
  const char *r = herald_relay(hc);
  pthread_mutex_lock(&pt->a->lock);
  pt->rows += rows;
  pt->windows += last != 0;
  pt->applied_scn = herald_delivered_scn(hc);
  if (herald_delivered_ts_ms(hc))
    pt->applied_ts = herald_delivered_ts_ms(hc);
  pt->newest_scn = herald_relay_newest_scn(hc);
  pt->newest_ts = herald_relay_newest_ts_ms(hc);
  pt->failovers = herald_failovers(hc);
  snprintf(pt->relay, sizeof(pt->relay), "%s", r ? r : "");
  pthread_mutex_unlock(&pt->a->lock);
}

/* A snapshot window's progress, for /status and /metrics. */
static void snap_figures(part_t *pt, const herald_snapshot_info_t *si,
                         uint64_t rows, int last) {
  pthread_mutex_lock(&pt->a->lock);
  if (pt->snap_started_ms == 0)
    pt->snap_started_ms = hd_now_ms();
  pt->snap_rows += rows;
  if (last) {
    pt->snap_chunks++;
    pt->snap_rows_read += si->rows_read;
    snprintf(pt->snap_table, sizeof(pt->snap_table), "%s",
             si->table ? si->table : "");
    pt->snap_table_rows = si->table_rows;
    pt->snap_table_estimate = si->table_rows_estimate;
    pt->snap_tables_done = si->tables_done + (uint32_t)(si->table_done != 0);
    pt->snap_tables_total = si->tables_total;
  }
  pthread_mutex_unlock(&pt->a->lock);
}

static void snap_reset(part_t *pt);

/* A partition without a position whose stream began where agent.start
 * says (the relays' newest, or their oldest) has its first window: the
 * start is pinned right before it, in memory and in the checkpoint, so
 * that a retry after a failure of this window, or the next holder after
 * a kill, replays it. Starting again from "latest" would go past every
 * window that had arrived and was not delivered yet. @returns 0; 1 lost
 * (another holder wrote the checkpoint). */
static int pin_start(part_t *pt, uint64_t first_scn) {
  pthread_mutex_lock(&pt->a->lock);
  pt->ck.scn = first_scn - 1; /* relays serve the windows after an SCN */
  pthread_mutex_unlock(&pt->a->lock);
  hd_log(HD_LL_INFO, COMP, "partition start pinned before its first window",
         "partition=%u scn=%" PRIu64, pt->p, pt->ck.scn);
  int w = ck_write(pt);
  if (w == 1) {
    atomic_store(&pt->lost, 1);
    return 1;
  }
  return 0; /* not written (-1): the pin holds for this holder's retries */
}

/* A snapshot request for a partition being applied: what was delivered
 * is checkpointed first, then the request is written with it, and the
 * client starts again from there. @returns 0 nothing to do; 2 restart
 * the client; 1 lost; -1 retry. */
static int resnap(part_t *pt, sink_part_t *sp, herald_client_t *hc) {
  if (checkpoint(pt, sp, hc) != 0)
    return atomic_load(&pt->lost) ? 1 : -1;
  if (herald_delivered_scn(hc) > pt->ck.scn)
    return -1; /* not checkpointed yet (the lease): again later */
  hd_checkpoint_t *prev = hd_malloc(sizeof(*prev));
  *prev = pt->ck;
  int rc = 0;
  if (snapshot_pending(pt)) {
    int w = ck_write(pt);
    if (w == 1) {
      atomic_store(&pt->lost, 1);
      rc = 1;
    } else if (w < 0) {
      pt->ck = *prev;
      rc = -1;
    } else {
      pthread_mutex_lock(&pt->a->lock);
      snap_reset(pt);
      pthread_mutex_unlock(&pt->a->lock);
      rc = 2;
    }
  }
  free(prev);
  return rc;
}

static void *runner(void *arg) {
  part_t *pt = arg;
  agent_t *a = pt->a;
  const hd_agent_conf_t *k = a->conf;
  agent_retry_t rt;
  agent_retry_init(&rt, k->sink.retry_max_ms, hd_now_ms() ^ pt->p);
  char err[300];
  pthread_mutex_lock(&a->lock);
  pt->held = 1;
  pt->ckpt_scn = pt->applied_scn = pt->ck.scn;
  pthread_mutex_unlock(&a->lock);
  hd_log(HD_LL_INFO, COMP, "partition started",
         "partition=%u epoch=%" PRIu64 " after_scn=%" PRIu64, pt->p, pt->epoch,
         pt->ck.scn);
  for (int round = 0; !atomic_load(&pt->stop) && !atomic_load(&pt->lost);
       round++) {
    sink_part_t *sp = NULL;
    uint64_t spos = 0;
    int orc =
        sink_open(a->sink, pt->p, pt->epoch, &sp, &spos, err, sizeof(err));
    if (orc == HD_ESINK_FENCED) {
      fenced(pt, err);
      break;
    }
    if (orc < 0) {
      hd_log(HD_LL_ERROR, COMP, "sink open failed: partition waits, retries",
             "partition=%u scn=%" PRIu64 " err=\"%s\"", pt->p, pt->ck.scn, err);
      sink_error(pt, err);
      nap(pt, agent_retry_next(&rt));
      continue;
    }
    uint64_t from = spos > pt->ck.scn ? spos : pt->ck.scn;
    /* A snapshot with no position yet begins at the relays' newest: the
     * sink's own position (a destination used before, a partition that
     * fell out of retention) is covered by the snapshot's rows. */
    if (pt->ck.snapshot_state == HD_CK_SNAPSHOT_RUNNING && pt->ck.scn == 0)
      from = 0;
    /* Where a retry goes on from: the windows after it are delivered
     * again (at least once), so an operator (and the chaos suite) can
     * tell a replay from a skip. */
    if (round > 0)
      hd_log(HD_LL_INFO, COMP, "partition resumes",
             "partition=%u after_scn=%" PRIu64, pt->p, from);
    herald_client_t *hc = client_for(pt, from);
    int healthy = hc != NULL;
    int64_t last_ck = mono();
    int pending = 0; /* windows written since the sink was last idle */
    int json_lines = sink_wants_json(a->sink);
    while (healthy && !atomic_load(&pt->stop) && !atomic_load(&pt->lost)) {
      if (!lease_ok(a)) {
        agent__sleep_ms(20); /* paused until ZooKeeper confirms us */
        continue;
      }
      if (atomic_exchange(&pt->resnap, 0)) {
        int r = resnap(pt, sp, hc);
        if (r == 1) {
          healthy = 0;
          break;
        }
        if (r == 2)
          break; /* healthy: the client again, with the snapshot */
        if (r < 0) {
          atomic_store(&pt->resnap, 1);
          healthy = 0;
          break;
        }
      }
      const herald_window_t *w;
      /* After a window, first look whether another one is there already:
       * when none is, the sink finishes its batch (sink_idle) before the
       * wait, so that a quiet stream is applied at once. */
      int rc = herald_poll(hc, pending ? 0 : POLL_MS, &w);
      if (rc == HERALD_TIMED_OUT && pending) {
        pending = 0;
        int irc = lease_ok(a) && !atomic_load(&pt->lost)
                      ? sink_idle(sp, err, sizeof(err))
                      : 0;
        if (irc == HD_ESINK_FENCED) {
          fenced(pt, err);
          healthy = 0;
          break;
        }
        if (irc < 0) {
          hd_log(HD_LL_ERROR, COMP, "sink failed: partition stops, retries",
                 "partition=%u scn=%" PRIu64 " err=\"%s\"", pt->p,
                 herald_delivered_scn(hc), err);
          sink_error(pt, err);
          healthy = 0;
          break;
        }
        continue;
      }
      if (rc == HERALD_OK) {
        const char *json = "";
        size_t len = 0;
        if (json_lines)
          herald_window_json(hc, w, 0, &json, &len);
        herald_snapshot_info_t si;
        int snap = herald_window_snapshot(w, &si);
        sink_window_t sw = {herald_window_scn(w),
                            herald_window_ts_ms(w),
                            herald_window_chunk(w),
                            herald_window_last(w),
                            json,
                            len,
                            herald_window_changes(w),
                            w,
                            hc,
                            snap};
        if (!lease_ok(a) || atomic_load(&pt->lost)) {
          /* The window is not written; the next holder replays it from
           * the checkpoint. */
          healthy = 0;
          break;
        }
        if (from == 0 && pt->ck.scn == 0 && !snap &&
            pt->ck.snapshot_state != HD_CK_SNAPSHOT_RUNNING &&
            pin_start(pt, sw.scn) == 1) {
          healthy = 0;
          break;
        }
        int wrc = sink_write(sp, &sw, err, sizeof(err));
        if (wrc == HD_ESINK_FENCED) {
          fenced(pt, err);
          healthy = 0;
          break;
        }
        if (wrc < 0) {
          hd_log(HD_LL_ERROR, COMP,
                 "sink write failed: partition stops, retries",
                 "partition=%u scn=%" PRIu64 " err=\"%s\"", pt->p, sw.scn, err);
          sink_error(pt, err);
          healthy = 0;
          break;
        }
        figures(pt, hc, sw.rows, sw.last);
        if (snap)
          snap_figures(pt, &si, sw.rows, sw.last);
        agent_retry_reset(&rt);
        pending = 1;
      } else if (rc == HERALD_TIMED_OUT) {
        figures(pt, hc, 0, 0); /* heartbeats move the position too */
      } else {
        /* SCN_TOO_OLD, a refused subscription, relays that disagree: the
         * partition cannot go on by itself. It stops and says why, and
         * tries again later; the position does not move. */
        hd_log(HD_LL_ERROR, COMP, "partition stopped: client error",
               "partition=%u scn=%" PRIu64 " err=\"%s\"", pt->p, pt->ck.scn,
               herald_error(hc));
        healthy = 0;
        break;
      }
      if (mono() - last_ck >= (int64_t)k->agent.checkpoint_interval_ms) {
        last_ck = mono();
        int c = checkpoint(pt, sp, hc);
        if (c < 0)
          healthy = 0;
      }
    }
    if (healthy && atomic_load(&pt->stop) && !atomic_load(&pt->lost)) {
      /* Released in good order: the last flush and checkpoint, waiting a
       * little for the lease if ZooKeeper is slow to answer. */
      for (int i = 0; i < 100; i++) {
        if (checkpoint(pt, sp, hc) != 0 ||
            herald_delivered_scn(hc) <= pt->ck.scn || atomic_load(&pt->lost))
          break;
        agent__sleep_ms(20);
      }
    }
    sink_close(sp, err, sizeof(err));
    herald_client_free(hc);
    if (!healthy && !atomic_load(&pt->stop) && !atomic_load(&pt->lost))
      nap(pt, agent_retry_next(&rt));
  }
  hd_log(HD_LL_INFO, COMP,
         atomic_load(&pt->lost) ? "partition lost" : "partition released",
         "partition=%u scn=%" PRIu64, pt->p, pt->ck.scn);
  pthread_mutex_lock(&a->lock);
  pt->held = 0;
  pthread_mutex_unlock(&a->lock);
  atomic_store(&pt->done, 1);
  wake(a);
  return NULL;
}

/* The snapshot's figures go on from the checkpoint's progress; the rate
 * is this holder's own. @locality under a->lock */
static void snap_reset(part_t *pt) {
  const hd_ck_progress_t *g = &pt->ck.progress;
  pt->snap_state = (int)pt->ck.snapshot_state;
  pt->snap_id = pt->ck.snapshot_id;
  pt->snap_chunks = g->chunks;
  pt->snap_rows = g->rows;
  pt->snap_table_rows = g->table_rows;
  pt->snap_table_estimate = g->table_rows_estimate;
  pt->snap_tables_done = (uint32_t)g->tables_done;
  pt->snap_tables_total = (uint32_t)g->tables_total;
  pt->snap_rows_read = pt->snap_started_ms = 0;
  pt->snap_table[0] = '\0';
}

static void part_start(part_t *pt) {
  /* the figures go on from what the partition's holders counted */
  pthread_mutex_lock(&pt->a->lock);
  pt->windows = pt->ck.windows;
  pt->rows = pt->ck.rows;
  snap_reset(pt);
  pthread_mutex_unlock(&pt->a->lock);
  atomic_store(&pt->stop, 0);
  atomic_store(&pt->lost, 0);
  atomic_store(&pt->done, 0);
  if (pthread_create(&pt->th, NULL, runner, pt) != 0) {
    hd_log(HD_LL_ERROR, COMP, "cannot start a thread", "partition=%u", pt->p);
    return;
  }
  pt->running = 1;
}

static void part_join(part_t *pt) {
  if (pt->running)
    pthread_join(pt->th, NULL);
  pt->running = 0;
}

/* ---------------------------------------------------------- the group */

static void zk_wake_watcher(zhandle_t *zh, int type, int state,
                            const char *path, void *ctx) {
  (void)zh;
  (void)type;
  (void)state;
  (void)path;
  wake(ctx);
}

/* A ZooKeeper call of joining failed: say which and why (a refusal,
 * ZNOAUTH, names zookeeper.auth_file), to be retried. @returns -1 */
static int zk_fail(const char *what, const char *path, int rc) {
  if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
    hd_log(HD_LL_WARN, COMP, "ZooKeeper refused the group's nodes",
           "action=\"%s\" path=%s zk=\"%s\"", what, path, hd_zk_strerror(rc));
  return -1;
}

/* The group node: create it, or check that it was made for our N and
 * source. @returns 0; 1 mismatch (fatal, logged); -1 retry. */
static int group_check(agent_t *a) {
  const hd_agent_conf_t *k = a->conf;
  char path[HD_GROUP_PATH_MAX], err[300], data[1024];
  hd_path_group(path, sizeof(path), k->cluster, k->agent.group);
  hd_group_t g = {0};
  g.partitions = a->n;
  snprintf(g.source, sizeof(g.source), "%s", k->agent.source);
  g.created_ms = hd_now_ms();
  char *json = NULL;
  if (hd_group_build(&g, &json, err, sizeof(err)) < 0)
    return -1;
  char parent[HD_GROUP_PATH_MAX];
  hd_path_groups(parent, sizeof(parent), k->cluster);
  int rc = hd_zk_ensure_path(a->zk, parent);
  if (rc != ZOK) {
    free(json);
    return zk_fail("cannot create", parent, rc);
  }
  rc = zoo_create(hd_zk_handle(a->zk), path, json, (int)strlen(json),
                  hd_zk_acl(a->zk), 0, NULL, 0);
  free(json);
  if (rc != ZOK && rc != ZNODEEXISTS)
    return zk_fail("cannot create", path, rc);
  int len = sizeof(data) - 1;
  rc = zoo_get(hd_zk_handle(a->zk), path, 0, data, &len, NULL);
  if (rc != ZOK || len < 0)
    return zk_fail("cannot read", path, rc);
  if (hd_group_parse(data, (size_t)len, &g, err, sizeof(err)) < 0) {
    hd_log(HD_LL_ERROR, COMP, "group node unreadable", "path=%s err=\"%s\"",
           path, err);
    return 1;
  }
  if (g.partitions != a->n || strcmp(g.source, k->agent.source) != 0) {
    hd_log(HD_LL_ERROR, COMP,
           "group made for other partitions or another source: not joining",
           "group=%s group_partitions=%u agent.partitions=%u "
           "group_source=%s agent.source=%s path=%s",
           k->agent.group, g.partitions, a->n, g.source, k->agent.source, path);
    return 1;
  }
  char sp[3][HD_GROUP_PATH_MAX];
  hd_path_members(sp[0], sizeof(sp[0]), k->cluster, k->agent.group);
  hd_path_owners(sp[1], sizeof(sp[1]), k->cluster, k->agent.group);
  hd_path_checkpoints(sp[2], sizeof(sp[2]), k->cluster, k->agent.group);
  for (int i = 0; i < 3; i++)
    if ((rc = hd_zk_ensure_path(a->zk, sp[i])) != ZOK)
      return zk_fail("cannot create", sp[i], rc);
  return 0;
}

/* A session and our member node. @returns 0; 1 fatal; -1 retry. */
static int join(agent_t *a) {
  const hd_agent_conf_t *k = a->conf;
  if (a->zk == NULL) {
    a->zk =
        hd_zk_new_auth(k->zk.hosts, (int)k->zk.session_timeout_ms, a->zk_auth);
    if (a->zk == NULL)
      return 1;
  }
  if (hd_zk_wait(a->zk, 2000) != 0)
    return -1;
  int rc = group_check(a);
  if (rc != 0)
    return rc;
  hd_member_t m = {0};
  snprintf(m.id, sizeof(m.id), "%s", k->agent.id);
  m.session = (uint64_t)hd_zk_session(a->zk);
  m.partitions = a->n;
  snprintf(m.source, sizeof(m.source), "%s", k->agent.source);
  if (k->agent.http.port)
    hd_fmt_hostport(k->agent.http.host, k->agent.http.port, m.http,
                    sizeof(m.http));
  snprintf(m.version, sizeof(m.version), "%s", HD_VERSION);
  m.joined_ms = hd_now_ms();
  char *json = NULL, err[300], prefix[HD_GROUP_PATH_MAX];
  if (hd_member_build(&m, &json, err, sizeof(err)) < 0)
    return 1;
  hd_path_member_prefix(prefix, sizeof(prefix), k->cluster, k->agent.group,
                        k->agent.id);
  rc = zoo_create(hd_zk_handle(a->zk), prefix, json, (int)strlen(json),
                  hd_zk_acl(a->zk), ZOO_EPHEMERAL | ZOO_SEQUENCE,
                  a->member_path, sizeof(a->member_path));
  free(json);
  if (rc != ZOK)
    return zk_fail("cannot create", prefix, rc);
  atomic_store(&a->session, hd_zk_session(a->zk));
  atomic_store(&a->expired, 0);
  atomic_store(&a->lease_ms, mono());
  hd_log(HD_LL_INFO, COMP, "joined", "group=%s member=%s session=0x%" PRIx64,
         k->agent.group, a->member_path, (uint64_t)atomic_load(&a->session));
  return 0;
}

/* The group's assignment (with a watch that wakes the main thread).
 * @returns 0 with *as filled (free it), -1 none or unreadable. */
static int read_assignment(agent_t *a, int watch, hd_assignment_t *as) {
  const hd_agent_conf_t *k = a->conf;
  char path[HD_GROUP_PATH_MAX], err[300];
  hd_path_assignment(path, sizeof(path), k->cluster, k->agent.group);
  if (a->abuf == NULL) /* read several times a second: kept */
    a->abuf = hd_malloc(ASSIGNMENT_MAX);
  int len = ASSIGNMENT_MAX - 1;
  int rc = zoo_wget(hd_zk_handle(a->zk), path, watch ? zk_wake_watcher : NULL,
                    a, a->abuf, &len, NULL);
  if (rc != ZOK || len < 0)
    return -1;
  rc = hd_assignment_parse(a->abuf, (size_t)len, as, err, sizeof(err));
  if (rc < 0) {
    hd_log(HD_LL_WARN, COMP, "assignment unreadable: holding what we have",
           "path=%s err=\"%s\"", path, err);
    return -1;
  }
  return 0;
}

/* heraldctl snapshot's request node, watched: the runners of the
 * partitions it names that have not answered it are told. A node that
 * cannot be read is said once per version and changes nothing. */
static void snapreq_watcher(zhandle_t *zh, int type, int state,
                            const char *path, void *ctx) {
  agent_t *a = ctx;
  atomic_store(&a->req_dirty, 1);
  zk_wake_watcher(zh, type, state, path, ctx);
}

static void read_snapreq(agent_t *a) {
  /* Only when its watch fired (or a session began): the node changes
   * once per request, the group steps several times a second. */
  if (!atomic_exchange(&a->req_dirty, 0))
    return;
  const hd_agent_conf_t *k = a->conf;
  char path[HD_GROUP_PATH_MAX], err[300], data[4 * HD_CK_TABLES_MAX];
  hd_path_snapreq(path, sizeof(path), k->cluster, k->agent.group);
  int len = sizeof(data) - 1;
  struct Stat st;
  zhandle_t *zh = hd_zk_handle(a->zk);
  int rc = zoo_wget(zh, path, snapreq_watcher, a, data, &len, &st);
  if (rc == ZNONODE) {
    /* not asked yet: woken when it is */
    if (zoo_wexists(zh, path, snapreq_watcher, a, &st) != ZNONODE)
      atomic_store(&a->req_dirty, 1); /* created meanwhile, or not armed */
    return;
  }
  if (rc != ZOK || len < 0) {
    atomic_store(&a->req_dirty, 1);
    return;
  }
  hd_snapreq_t *r = hd_malloc(sizeof(*r));
  if (hd_snapreq_parse(data, (size_t)len, r, err, sizeof(err)) < 0) {
    if (a->req_bad_version != st.version + 1)
      hd_log(HD_LL_ERROR, COMP, "snapshot request unreadable: ignored",
             "path=%s version=%d err=\"%s\"", path, st.version, err);
    a->req_bad_version = st.version + 1;
    free(r);
    return;
  }
  pthread_mutex_lock(&a->lock);
  a->req = *r;
  a->req_ok = 1;
  for (uint32_t p = 0; p < a->n; p++) {
    part_t *pt = &a->parts[p];
    if (pt->running && pt->held && r->id > pt->snap_id && hd_snapreq_has(r, p))
      atomic_store(&pt->resnap, 1);
  }
  pthread_mutex_unlock(&a->lock);
  free(r);
}

/* Take p: its owners node, then its checkpoint. @returns 1 taken, 0 not
 * now. */
static int acquire(agent_t *a, part_t *pt) {
  const hd_agent_conf_t *k = a->conf;
  char path[HD_GROUP_PATH_MAX], err[300], *json = NULL;
  hd_path_owner(path, sizeof(path), k->cluster, k->agent.group, pt->p);
  hd_owner_t o = {0};
  snprintf(o.owner, sizeof(o.owner), "%s", k->agent.id);
  o.epoch = pt->epoch;
  o.session = (uint64_t)atomic_load(&a->session);
  o.since_ms = hd_now_ms();
  if (hd_owner_build(&o, &json, err, sizeof(err)) < 0)
    return 0;
  int rc = zoo_create(hd_zk_handle(a->zk), path, json, (int)strlen(json),
                      hd_zk_acl(a->zk), ZOO_EPHEMERAL, NULL, 0);
  free(json);
  if (rc == ZNODEEXISTS) {
    char data[1024];
    int len = sizeof(data) - 1;
    if (zoo_get(hd_zk_handle(a->zk), path, 0, data, &len, NULL) != ZOK ||
        len < 0 ||
        hd_owner_parse(data, (size_t)len, &o, err, sizeof(err)) < 0 ||
        o.session != (uint64_t)atomic_load(&a->session))
      return 0; /* held by another session: wait for it to go */
  } else if (rc != ZOK) {
    return 0;
  }
  /* The leader cannot tell a holder that released p from one that has not
   * created its node yet: the grant is checked again now that the node
   * is ours, and a partition that moved on meanwhile is let go at once. */
  hd_assignment_t as = {0};
  int still = 0;
  if (read_assignment(a, 0, &as) == 0) {
    int32_t me = hd_assignment_find(&as, k->agent.id);
    still = as.partitions == a->n && me >= 0 && as.owner[pt->p] == me &&
            as.epochs[pt->p] == pt->epoch;
    hd_assignment_free(&as);
  }
  if (!still) {
    zoo_delete(hd_zk_handle(a->zk), path, -1);
    return 0;
  }
  rc = ck_claim(pt);
  if (rc != 0) {
    zoo_delete(hd_zk_handle(a->zk), path, -1);
    return 0;
  }
  return 1;
}

static void release(agent_t *a, part_t *pt) {
  char path[HD_GROUP_PATH_MAX];
  hd_path_owner(path, sizeof(path), a->conf->cluster, a->conf->agent.group,
                pt->p);
  zoo_delete(hd_zk_handle(a->zk), path, -1);
}

/* One look at ZooKeeper: confirm the session (the lease), read the
 * assignment, start and stop partitions. */
static void group_step(agent_t *a, int stopping) {
  const hd_agent_conf_t *k = a->conf;
  zhandle_t *zh = hd_zk_handle(a->zk);
  struct Stat st;
  int rc = zoo_exists(zh, a->member_path, 0, &st);
  if (rc == ZOK)
    atomic_store(&a->lease_ms, mono());
  if (rc == ZNONODE || hd_zk_expired(a->zk)) {
    atomic_store(&a->expired, 1);
    return;
  }
  /* partitions that finished */
  for (uint32_t p = 0; p < a->n; p++) {
    part_t *pt = &a->parts[p];
    if (pt->running && atomic_load(&pt->done)) {
      part_join(pt);
      release(a, pt);
    }
  }
  if (stopping)
    return;
  read_snapreq(a);
  hd_assignment_t as = {0};
  if (read_assignment(a, 1, &as) < 0)
    return; /* no coordinator yet: keep applying what we hold */
  int32_t me = hd_assignment_find(&as, k->agent.id);
  if (as.partitions == a->n) {
    for (uint32_t p = 0; p < a->n; p++) {
      part_t *pt = &a->parts[p];
      int mine = me >= 0 && as.owner[p] == me;
      if (mine && !pt->running) {
        pt->epoch = as.epochs[p];
        if (acquire(a, pt))
          part_start(pt);
      } else if (!mine && pt->running) {
        atomic_store(&pt->stop, 1); /* revoke: flush, checkpoint, release */
      }
    }
  }
  hd_assignment_free(&as);
}

static void wait_wake(agent_t *a, int ms) {
  struct timespec dl = hd_deadline_ms((uint64_t)ms);
  pthread_mutex_lock(&a->wake_mu);
  while (!a->woken)
    if (pthread_cond_timedwait(&a->wake_cv, &a->wake_mu, &dl) != 0)
      break;
  a->woken = 0;
  pthread_mutex_unlock(&a->wake_mu);
}

static void drop_all(agent_t *a, int lost) {
  for (uint32_t p = 0; p < a->n; p++) {
    part_t *pt = &a->parts[p];
    if (!pt->running)
      continue;
    if (lost)
      atomic_store(&pt->lost, 1);
    atomic_store(&pt->stop, 1);
  }
}

static int any_running(agent_t *a) {
  for (uint32_t p = 0; p < a->n; p++)
    if (a->parts[p].running)
      return 1;
  return 0;
}

/* ------------------------------------------------------------ figures */

void agent_stats(agent_t *a, agent_info_t *info, agent_pstat_t *ps) {
  const hd_agent_conf_t *k = a->conf;
  info->id = k->agent.id;
  info->group = k->agent.group;
  info->mode = a->conf->zk.hosts ? "group" : "standalone";
  info->session = (uint64_t)atomic_load(&a->session);
  info->connected = lease_ok(a);
  info->partitions = a->n;
  pthread_mutex_lock(&a->lock);
  for (uint32_t p = 0; p < a->n; p++) {
    const part_t *pt = &a->parts[p];
    agent_pstat_t *s = &ps[p];
    s->partition = p;
    s->held = pt->held;
    s->applied_scn = pt->applied_scn;
    s->applied_ts_ms = pt->applied_ts;
    s->ckpt_scn = pt->ckpt_scn;
    s->ckpt_written_ms = pt->ckpt_ms;
    s->newest_scn = pt->newest_scn;
    s->newest_ts_ms = pt->newest_ts;
    s->windows = pt->windows;
    s->rows = pt->rows;
    s->sink_errors = pt->sink_errors;
    snprintf(s->sink_error, sizeof(s->sink_error), "%s", pt->sink_error);
    s->sink_error_ms = pt->sink_error_ms;
    s->failovers = pt->failovers;
    snprintf(s->relay, sizeof(s->relay), "%s", pt->relay);
    s->snap_state = pt->snap_state;
    snprintf(s->snap_table, sizeof(s->snap_table), "%s", pt->snap_table);
    s->snap_chunks = pt->snap_chunks;
    s->snap_rows = pt->snap_rows;
    s->snap_rows_read = pt->snap_rows_read;
    s->snap_table_rows = pt->snap_table_rows;
    s->snap_table_estimate = pt->snap_table_estimate;
    s->snap_tables_done = pt->snap_tables_done;
    s->snap_tables_total = pt->snap_tables_total;
    s->snap_started_ms = pt->snap_started_ms;
    s->snap_request = pt->snap_id;
  }
  pthread_mutex_unlock(&a->lock);
}

/* ------------------------------------------------------------------ run */

int agent_run(const hd_agent_conf_t *conf, volatile sig_atomic_t *stop) {
  agent_t a = {0};
  a.conf = conf;
  a.n = (uint32_t)conf->agent.partitions;
  pthread_mutex_init(&a.lock, NULL);
  pthread_mutex_init(&a.wake_mu, NULL);
  pthread_cond_init(&a.wake_cv, NULL);
  int rc = 1;
  char err[400];
  agent_http_t *http = NULL;
  if (sink_create(conf, &a.sink, err, sizeof(err)) < 0) {
    hd_log(HD_LL_ERROR, COMP, "sink", "err=\"%s\"", err);
    goto out;
  }
  a.parts = hd_calloc(a.n, sizeof(part_t));
  for (uint32_t p = 0; p < a.n; p++) {
    a.parts[p].a = &a;
    a.parts[p].p = p;
  }
  if (agent_http_start(&a, conf, &http) < 0)
    goto out;
  if (conf->zk.hosts == NULL) {
    /* standalone: every partition, checkpoints in a file */
    char path[1024];
    ckpt_file_path(conf, path, sizeof(path));
    if (ckpt_file_load(path, a.n, &a.file, err, sizeof(err)) < 0) {
      hd_log(HD_LL_ERROR, COMP, "checkpoint file", "err=\"%s\"", err);
      goto out;
    }
    for (uint32_t p = 0; p < a.n; p++) {
      ck_claim(&a.parts[p]);
      part_start(&a.parts[p]);
    }
    while (!*stop)
      wait_wake(&a, 200);
    drop_all(&a, 0);
    for (uint32_t p = 0; p < a.n; p++)
      part_join(&a.parts[p]);
    rc = 0;
    goto out;
  }
  /* in a group */
  if (conf->zk.auth_file &&
      (a.zk_auth = hd_zk_read_auth(conf->zk.auth_file, err, sizeof(err))) ==
          NULL) {
    hd_log(HD_LL_ERROR, COMP, "zookeeper.auth_file", "err=\"%s\"", err);
    goto out;
  }
  agent_retry_t rt;
  agent_retry_init(&rt, 5000, hd_now_ms());
  while (!*stop) {
    int j = join(&a);
    if (j == 1)
      goto out;
    if (j < 0) {
      hd_log(HD_LL_WARN, COMP, "cannot join yet, retrying",
             "group=%s zookeeper=%s", conf->agent.group, conf->zk.hosts);
      if (a.zk && hd_zk_expired(a.zk)) {
        hd_zk_free(a.zk);
        a.zk = NULL;
      }
      agent__sleep_ms(agent_retry_next(&rt));
      continue;
    }
    agent_retry_reset(&rt);
    atomic_store(&a.req_dirty, 1); /* a new session has no watches */
    while (!*stop && !atomic_load(&a.expired)) {
      group_step(&a, 0);
      wait_wake(&a, POLL_MS * 2);
    }
    if (atomic_load(&a.expired)) {
      /* Expired: everything we held may be another's already. */
      hd_log(HD_LL_WARN, COMP, "session expired: dropping every partition",
             "group=%s", conf->agent.group);
      drop_all(&a, 1);
      for (uint32_t p = 0; p < a.n; p++)
        part_join(&a.parts[p]);
      hd_zk_free(a.zk);
      a.zk = NULL;
      continue;
    }
  }
  /* SIGTERM: release everything in good order, then leave */
  if (a.zk) {
    drop_all(&a, 0);
    while (any_running(&a) && !atomic_load(&a.expired)) {
      group_step(&a, 1);
      wait_wake(&a, 50);
    }
    drop_all(&a, 1);
    for (uint32_t p = 0; p < a.n; p++)
      part_join(&a.parts[p]);
  }
  rc = 0;
out:
  agent_http_stop(http);
  if (a.zk)
    hd_zk_free(a.zk);
  if (a.zk_auth)
    memset(a.zk_auth, 0, strlen(a.zk_auth));
  free(a.zk_auth);
  if (a.sink)
    sink_destroy(a.sink);
  ckpt_file_free(a.file);
  free(a.abuf);
  free(a.parts);
  pthread_mutex_destroy(&a.lock);
  pthread_mutex_destroy(&a.wake_mu);
  pthread_cond_destroy(&a.wake_cv);
  return rc;
}
