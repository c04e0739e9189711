/*
 * herald-relay: captures a MySQL/MariaDB binlog and serves its
 * transactions to consumers.
 *
 * Threads: the loop thread owns the ring, the consumer server and the
 * timers; the fetcher thread owns the replication connection, the decoder
 * and the appends to the log store; libuv's workers read the store for
 * consumers that are behind; the HTTP library and the ZooKeeper client run
 * threads of their own and only read atomics or post ops.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "hd_cli.h"
#include "relay_schema.h"
#include "hd_confdefs.h"
#include "hd_log.h"
#include "hd_time.h"
#include "hd_mem.h"
#include "hd_opq.h"
#include "hd_zk.h"
#include "relay_fetch.h"
#include "relay_http.h"
#include "relay_metrics.h"
#include "relay_ring.h"
#include "relay_snap.h"
#include "relay_server.h"
#include "relay_store.h"
#include "relay_zk.h"

static const char usage[] =
    "Usage: herald-relay --config FILE [options]\n"
    "\n"
    "herald-relay captures a MySQL/MariaDB binlog and serves its "
    "transactions\n"
    "to consumers.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the relay config (YAML; see config/relay.yaml)\n"
    "      --check-config    validate the config, print 'ok' and exit\n"
    "  -v, --verbose         more logging (repeat for debug)\n"
    "      --log-level LVL   debug, info, warn (default), error or off\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 failure, 2 bad usage or invalid\n"
    "config.\n";

/* Windows between the fetcher and the loop: the fetcher waits when more
 * than this much is queued, so a stalled loop cannot grow memory. */
#define MAX_QUEUED_BYTES (64u << 20)

typedef struct {
  hd_relay_conf_t conf;
  char *password;
  char *token;
  char *zk_auth; /* zookeeper.auth_file's user:password, NULL without */
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  pthread_t sync_thr; /* fsync: interval */
  int sync_started;
  pthread_mutex_t smu;
  pthread_cond_t scv;
  int sync_stop;
  hd_opq_t opq;
  relay_ring_t ring;
  relay_store_t *store;
  relay_schemas_t *schemas;
  relay_server_t *server;
  relay_snap_t *snap;
  relay_fetch_t *fetch;
  relay_http_t *http;
  relay_zk_t *zk;
  relay_metrics_t m;
  /* back-pressure between fetcher and loop */
  pthread_mutex_t qmu;
  pthread_cond_t qcv;
  size_t queued;
  int stopping;
  int exit_code;
} relay_t;

typedef struct {
  hd_op_t op;
  relay_t *r;
  relay_win_t *w;
  char msg[1024];
} win_op_t;

/* Reads a one-line secret file (password, token), without the newline. */
static int read_secret(const char *path, char **out, char *err, size_t n) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, n, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  char buf[1024];
  size_t len = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[len] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  if (buf[0] == '\0') {
    snprintf(err, n, "%s: empty", path);
    return -1;
  }
  *out = hd_strdup(buf);
  return 0;
}

static void shutdown_relay(relay_t *r, int code);

/* @locality loop thread */
static void win_op_cb(hd_op_t *op) {
  win_op_t *o = (win_op_t *)op;
  relay_t *r = o->r;
  pthread_mutex_lock(&r->qmu);
  r->queued -= o->w->mem;
  pthread_cond_signal(&r->qcv);
  pthread_mutex_unlock(&r->qmu);
  if (r->snap)
    relay_snap_on_window(r->snap, o->w);
  relay_ring_push(&r->ring, o->w);
  RM_SET(&r->m, buffered_bytes, r->ring.bytes);
  RM_SET(&r->m, buffered_windows, r->ring.end - r->ring.first);
  if (r->server)
    relay_server_notify(r->server);
  free(o);
}

static void win_op_drop(hd_op_t *op) {
  win_op_t *o = (win_op_t *)op;
  relay_win_release(o->w);
  free(o);
}

/* @locality fetcher thread */
static void on_window(void *ud, relay_win_t *w) {
  relay_t *r = ud;
  pthread_mutex_lock(&r->qmu);
  while (r->queued > MAX_QUEUED_BYTES && !r->stopping)
    pthread_cond_wait(&r->qcv, &r->qmu);
  r->queued += w->mem;
  pthread_mutex_unlock(&r->qmu);
  win_op_t *o = hd_calloc(1, sizeof(*o));
  o->op.cb = win_op_cb;
  o->op.drop = win_op_drop;
  o->r = r;
  o->w = w;
  hd_opq_push(&r->opq, &o->op);
}

typedef struct {
  hd_op_t op;
  relay_t *r;
  uint64_t scn;
} idle_op_t;

/* @locality loop thread */
static void idle_op_cb(hd_op_t *op) {
  idle_op_t *o = (idle_op_t *)op;
  if (o->r->snap)
    relay_snap_on_idle(o->r->snap, o->scn);
  free(o);
}

static void idle_op_drop(hd_op_t *op) {
  free(op);
}

/* After the windows before it, in the same queue: the loop learns that
 * the source has nothing between the last of them and scn.
 * @locality fetcher thread */
static void on_idle(void *ud, uint64_t scn) {
  relay_t *r = ud;
  idle_op_t *o = hd_calloc(1, sizeof(*o));
  o->op.cb = idle_op_cb;
  o->op.drop = idle_op_drop;
  o->r = r;
  o->scn = scn;
  hd_opq_push(&r->opq, &o->op);
}

static void fatal_op_cb(hd_op_t *op) {
  win_op_t *o = (win_op_t *)op;
  hd_log(HD_LL_ERROR, "relay", "capture stopped", "reason=\"%s\"", o->msg);
  relay_t *r = o->r;
  free(o);
  shutdown_relay(r, 1);
}

/* @locality fetcher thread */
static void on_fatal(void *ud, const char *msg) {
  relay_t *r = ud;
  win_op_t *o = hd_calloc(1, sizeof(*o));
  o->op.cb = fatal_op_cb;
  o->r = r;
  snprintf(o->msg, sizeof(o->msg), "%s", msg);
  hd_opq_push(&r->opq, &o->op);
}

/* fsync: interval runs its syncs on a thread of its own: an fdatasync can
 * take many milliseconds, and neither the loop (consumers) nor the fetcher
 * (capture latency) may wait for it. A failed sync makes the store refuse
 * appends, which stops the fetcher with the reason. */
static void *sync_main(void *arg) {
  relay_t *r = arg;
  uint64_t ms = r->conf.relay.fsync_interval_ms;
  pthread_mutex_lock(&r->smu);
  while (!r->sync_stop) {
    struct timespec dl = hd_deadline_ms(ms);
    pthread_cond_timedwait(&r->scv, &r->smu, &dl);
    if (r->sync_stop)
      break;
    pthread_mutex_unlock(&r->smu);
    if (relay_store_dirty(r->store) && relay_store_sync(r->store) < 0) {
      RM_ERR(&r->m, STORE);
      hd_log(HD_LL_ERROR, "relay", "log store sync failed", NULL);
    }
    pthread_mutex_lock(&r->smu);
  }
  pthread_mutex_unlock(&r->smu);
  return NULL;
}

static void sync_stop(relay_t *r) {
  if (!r->sync_started)
    return;
  pthread_mutex_lock(&r->smu);
  r->sync_stop = 1;
  pthread_cond_signal(&r->scv);
  pthread_mutex_unlock(&r->smu);
  pthread_join(r->sync_thr, NULL);
  r->sync_started = 0;
}

static void shutdown_relay(relay_t *r, int code) {
  if (r->stopping)
    return;
  r->stopping = 1;
  r->exit_code = code;
  hd_log(HD_LL_INFO, "relay", "stopping", "exit_code=%d", code);
  /* Wake a fetcher waiting on back-pressure, then stop it (it closes its
   * connection and joins). */
  pthread_mutex_lock(&r->qmu);
  pthread_cond_broadcast(&r->qcv);
  pthread_mutex_unlock(&r->qmu);
  relay_fetch_stop(r->fetch);
  r->fetch = NULL;
  relay_zk_stop(r->zk);
  r->zk = NULL;
  relay_http_stop(r->http);
  r->http = NULL;
  relay_server_close(r->server);
  r->server = NULL;
  /* After the server: its connections held snapshot subscriptions. Reads
   * under way finish on their workers, and the last one frees it. */
  relay_snap_free(r->snap);
  r->snap = NULL;
  hd_opq_close(&r->opq);
  uv_close((uv_handle_t *)&r->sigint, NULL);
  uv_close((uv_handle_t *)&r->sigterm, NULL);
}

static void signal_cb(uv_signal_t *h, int signum) {
  relay_t *r = h->data;
  hd_log(HD_LL_INFO, "relay", "signal", "signum=%d", signum);
  shutdown_relay(r, 0);
}

static int run(relay_t *r) {
  char err[1024];
  const hd_relay_conf_t *c = &r->conf;
  if (c->source.password_file) {
    if (read_secret(c->source.password_file, &r->password, err, sizeof(err)) <
        0) {
      fprintf(stderr, "herald-relay: source.password_file %s\n", err);
      return 2;
    }
  } else {
    r->password = hd_strdup(c->source.password);
  }
  if (c->relay.token_file &&
      read_secret(c->relay.token_file, &r->token, err, sizeof(err)) < 0) {
    fprintf(stderr, "herald-relay: relay.token_file %s\n", err);
    return 2;
  }
  if (c->zk.auth_file && (r->zk_auth = hd_zk_read_auth(c->zk.auth_file, err,
                                                       sizeof(err))) == NULL) {
    fprintf(stderr, "herald-relay: %s\n", err);
    return 2;
  }
  relay_store_opts_t so;
  relay_store_opts_from_conf(c, &so);
  /* The sync thread below keeps to fsync_interval; the store's own
   * fallback sync inside append (which would stall capture) only runs if
   * that thread falls far behind. */
  if (so.fsync == HD_FSYNC_INTERVAL)
    so.fsync_interval_ms = 20 * c->relay.fsync_interval_ms + 1000;
  int rc = relay_store_open(&so, &r->store, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "herald-relay: log store: %s\n", err);
    return 1;
  }
  RM_SET(&r->m, disk_bytes, relay_store_bytes(r->store));
  RM_SET(&r->m, oldest_scn, relay_store_first_scn(r->store));
  if (relay_store_count(r->store) > 0) {
    RM_SET(&r->m, newest_scn, relay_store_last_scn(r->store));
    RM_SET(&r->m, newest_ts_ms, relay_store_last_ts(r->store));
  }
  r->schemas = relay_schemas_open(c->relay.data_dir, err, sizeof(err));
  if (r->schemas == NULL) {
    fprintf(stderr, "herald-relay: table schemas: %s\n", err);
    relay_store_close(r->store);
    return 1;
  }
  hd_log(HD_LL_INFO, "relay", "log store open",
         "dir=%s windows=%" PRIu64 " first_scn=%" PRIu64 " last_scn=%" PRIu64,
         c->relay.data_dir, relay_store_count(r->store),
         relay_store_first_scn(r->store), relay_store_last_scn(r->store));

  uv_loop_init(&r->loop);
  pthread_mutex_init(&r->qmu, NULL);
  pthread_cond_init(&r->qcv, NULL);
  relay_ring_init(&r->ring, c->relay.buffer_bytes,
                  relay_store_last_scn(r->store));
  hd_opq_init(&r->loop, &r->opq);
  uv_signal_init(&r->loop, &r->sigint);
  uv_signal_init(&r->loop, &r->sigterm);
  r->sigint.data = r->sigterm.data = r;
  uv_signal_start(&r->sigint, signal_cb, SIGINT);
  uv_signal_start(&r->sigterm, signal_cb, SIGTERM);
  pthread_mutex_init(&r->smu, NULL);
  pthread_cond_init(&r->scv, NULL);
  if (c->relay.fsync == HD_FSYNC_INTERVAL &&
      pthread_create(&r->sync_thr, NULL, sync_main, r) == 0)
    r->sync_started = 1;
  signal(SIGPIPE, SIG_IGN);

  relay_snap_opts_t snopt = {.loop = &r->loop,
                             .conf = c,
                             .password = r->password,
                             .ring = &r->ring,
                             .schemas = r->schemas,
                             .m = &r->m};
  r->snap = relay_snap_new(&snopt);
  relay_server_opts_t sopt = {.loop = &r->loop,
                              .conf = c,
                              .ring = &r->ring,
                              .store = r->store,
                              .m = &r->m,
                              .token = r->token,
                              .schemas = r->schemas,
                              .snap = r->snap};
  rc = relay_server_start(&sopt, &r->server, err, sizeof(err));
  if (rc < 0) {
    hd_log(HD_LL_ERROR, "relay", "cannot listen", "error=\"%s\"", err);
    fprintf(stderr, "herald-relay: %s\n", err);
    shutdown_relay(r, 1);
  }
  if (!r->stopping) {
    rc = relay_http_start(c, &r->m, &r->http, err, sizeof(err));
    if (rc < 0) {
      fprintf(stderr, "herald-relay: %s\n", err);
      shutdown_relay(r, 1);
    }
  }
  if (!r->stopping && c->zk.hosts)
    r->zk = relay_zk_start(c, &r->m, r->zk_auth);
  if (!r->stopping) {
    relay_fetch_opts_t fo = {.conf = c,
                             .password = r->password,
                             .store = r->store,
                             .schemas = r->schemas,
                             .m = &r->m,
                             .on_window = on_window,
                             .on_idle = on_idle,
                             .on_fatal = on_fatal,
                             .ud = r};
    rc = relay_fetch_start(&fo, &r->fetch);
    if (rc < 0) {
      fprintf(stderr, "herald-relay: cannot start the fetcher: %s\n",
              strerror(-rc));
      shutdown_relay(r, 1);
    } else {
      hd_log(HD_LL_INFO, "relay", "started",
             "id=%s listen=%s:%u source=%s:%" PRId64, c->relay.id,
             c->relay.listen.host, c->relay.listen.port, c->source.host,
             c->source.port);
    }
  }
  uv_run(&r->loop, UV_RUN_DEFAULT);
  sync_stop(r);
  pthread_mutex_destroy(&r->smu);
  pthread_cond_destroy(&r->scv);
  relay_ring_free(&r->ring);
  relay_store_close(r->store);
  relay_schemas_free(r->schemas);
  if (uv_loop_close(&r->loop) != 0)
    hd_log(HD_LL_WARN, "relay", "loop closed with handles open", NULL);
  pthread_mutex_destroy(&r->qmu);
  pthread_cond_destroy(&r->qcv);
  return r->exit_code;
}

int main(int argc, char **argv) {
  hd_daemon_opts_t o;
  relay_t *r = hd_calloc(1, sizeof(*r));
  int rc = hd_daemon_cli(argc, argv, "herald-relay", usage, &o);
  if (rc < 0) {
    rc = hd_daemon_load("herald-relay", &o, &hd_relay_schema, &r->conf);
    if (rc < 0)
      rc = run(r);
    hd_config_free(&hd_relay_schema, &r->conf);
  }
  free(r->password);
  free(r->token);
  if (r->zk_auth)
    memset(r->zk_auth, 0, strlen(r->zk_auth));
  free(r->zk_auth);
  free(r);
  return rc;
}
