#include "relay_zk.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hd_log.h"
#include "hd_time.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_reg.h"
#include "hd_zk.h"

#define REFRESH_MS 1000

struct relay_zk {
  const hd_relay_conf_t *conf;
  relay_metrics_t *m;
  pthread_t thr;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Atomic int stop;
  char path[768];
  char *auth; /* user:password, NULL without zookeeper.auth_file */
};

/* The node's content (docs/zookeeper.md), built by hd_reg from the
 * config and the metrics of the moment.
 * @returns a string to free(), or NULL (logged) */
static char *node_data(relay_zk_t *z) {
  const hd_relay_conf_t *c = z->conf;
  hd_reg_t r;
  char *json, err[256];
  memset(&r, 0, sizeof(r));
  snprintf(r.id, sizeof(r.id), "%s", c->relay.id);
  snprintf(r.source, sizeof(r.source), "%s", c->source.name);
  hd_fmt_hostport(c->relay.advertise.host, c->relay.advertise.port, r.advertise,
                  sizeof(r.advertise));
  hd_fmt_hostport(c->relay.listen.host, c->relay.listen.port, r.listen,
                  sizeof(r.listen));
  hd_fmt_hostport(c->relay.http.host, c->relay.http.port, r.http,
                  sizeof(r.http));
  snprintf(r.version, sizeof(r.version), "%s", HD_VERSION);
  r.source_server_id = RM_GET(z->m, source_server_id);
  r.oldest_scn = RM_GET(z->m, oldest_scn);
  r.newest_scn = RM_GET(z->m, newest_scn);
  r.newest_ts_ms = RM_GET(z->m, newest_ts_ms);
  r.connected = RM_GET(z->m, connected) != 0;
  r.tls = c->relay.tls_cert_file != NULL;
  r.updated_ms = hd_now_ms();
  if (hd_reg_build(&r, &json, err, sizeof(err)) < 0) {
    RM_ERR(z->m, ZK);
    hd_log(HD_LL_ERROR, "zk", "cannot build the registration",
           "path=%s error=\"%s\"", z->path, err);
    return NULL;
  }
  return json;
}

/* Sleeps up to ms; returns 1 if asked to stop. */
static int nap(relay_zk_t *z, uint64_t ms) {
  struct timespec dl = hd_deadline_ms(ms);
  pthread_mutex_lock(&z->mu);
  while (!z->stop && pthread_cond_timedwait(&z->cv, &z->mu, &dl) == 0)
    ;
  int s = z->stop;
  pthread_mutex_unlock(&z->mu);
  return s;
}

/* Creates our ephemeral node. A node left by our previous session (after
 * an expiry, or a restart within the session timeout) is replaced; one
 * held by a live session of another process is a duplicate relay id. */
static int register_node(relay_zk_t *z, hd_zk_t *zk) {
  char parent[768];
  snprintf(parent, sizeof(parent), "%s", z->path);
  *strrchr(parent, '/') = '\0';
  int rc = hd_zk_ensure_path(zk, parent);
  if (rc != ZOK)
    return rc;
  char *data = node_data(z);
  if (data == NULL)
    return ZBADARGUMENTS;
  rc = zoo_create(hd_zk_handle(zk), z->path, data, (int)strlen(data),
                  hd_zk_acl(zk), ZOO_EPHEMERAL, NULL, 0);
  free(data);
  if (rc == ZNODEEXISTS) {
    struct Stat st;
    if (zoo_exists(hd_zk_handle(zk), z->path, 0, &st) == ZOK &&
        st.ephemeralOwner != hd_zk_session(zk)) {
      hd_log(HD_LL_WARN, "zk", "registration taken",
             "path=%s owner=0x%" PRIx64
             " hint=\"an old session that has not expired yet, or another "
             "relay with the same relay.id\"",
             z->path, (uint64_t)st.ephemeralOwner);
      return rc;
    }
    return ZOK;
  }
  return rc;
}

static void *zk_main(void *arg) {
  relay_zk_t *z = arg;
  const hd_relay_conf_t *c = z->conf;
  while (!z->stop) {
    hd_zk_t *zk =
        hd_zk_new_auth(c->zk.hosts, (int)c->zk.session_timeout_ms, z->auth);
    if (zk == NULL) {
      RM_ERR(z->m, ZK);
      if (nap(z, 5000))
        break;
      continue;
    }
    int registered = 0;
    while (!z->stop) {
      int w = hd_zk_wait(zk, REFRESH_MS);
      if (w < 0) {
        RM_ERR(z->m, ZK);
        hd_log(HD_LL_WARN, "zk", "session expired", "action=reconnect");
        break;
      }
      if (w == 0 && !registered) {
        int rc = register_node(z, zk);
        if (rc == ZOK) {
          registered = 1;
          hd_log(HD_LL_INFO, "zk", "registered", "path=%s", z->path);
        } else {
          RM_ERR(z->m, ZK);
          hd_log(HD_LL_WARN, "zk", "registration failed",
                 "path=%s error=\"%s\"", z->path, hd_zk_strerror(rc));
        }
      } else if (w == 0) {
        char *data = node_data(z);
        int rc = data ? zoo_set(hd_zk_handle(zk), z->path, data,
                                (int)strlen(data), -1)
                      : ZOK; /* node_data said why */
        free(data);
        if (rc == ZNONODE) {
          registered = 0; /* removed under us: create it again */
          continue;
        }
        if (rc != ZOK && rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
          hd_log(HD_LL_WARN, "zk", "refresh failed", "error=\"%s\"",
                 hd_zk_strerror(rc));
      }
      if (nap(z, REFRESH_MS))
        break;
    }
    if (registered && z->stop && !hd_zk_expired(zk))
      zoo_delete(hd_zk_handle(zk), z->path, -1);
    hd_zk_free(zk);
  }
  return NULL;
}

relay_zk_t *relay_zk_start(const hd_relay_conf_t *conf, relay_metrics_t *m,
                           const char *auth) {
  relay_zk_t *z = hd_calloc(1, sizeof(*z));
  z->conf = conf;
  z->auth = auth ? hd_strdup(auth) : NULL;
  z->m = m;
  snprintf(z->path, sizeof(z->path), "/herald/%s/relays/%s/%s", conf->cluster,
           conf->source.name, conf->relay.id);
  pthread_mutex_init(&z->mu, NULL);
  pthread_cond_init(&z->cv, NULL);
  if (pthread_create(&z->thr, NULL, zk_main, z) != 0) {
    hd_log(HD_LL_ERROR, "zk", "cannot start the registration thread", NULL);
    z->stop = 2; /* no thread to join */
  }
  return z;
}

void relay_zk_stop(relay_zk_t *z) {
  if (z == NULL)
    return;
  int joined = z->stop != 2;
  pthread_mutex_lock(&z->mu);
  z->stop = 1;
  pthread_cond_broadcast(&z->cv);
  pthread_mutex_unlock(&z->mu);
  if (joined)
    pthread_join(z->thr, NULL);
  pthread_mutex_destroy(&z->mu);
  pthread_cond_destroy(&z->cv);
  if (z->auth)
    memset(z->auth, 0, strlen(z->auth));
  free(z->auth);
  free(z);
}
