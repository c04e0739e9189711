#include "hd_zk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hd_log.h"
#include "hd_mem.h"
#include "hd_time.h"

struct hd_zk {
  zhandle_t *zh;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int state;
  int expired;
  void (*listener)(void *ctx, int state);
  void *listener_ctx;
  int authed; /* digest credentials were added: create with creator-all */
};

char *hd_zk_read_auth(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "zookeeper.auth_file %s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & 077))
    hd_log(HD_LL_WARN, "zk", "auth file readable by group or others",
           "path=%s mode=%04o", path, (unsigned)(st.st_mode & 07777));
  char buf[1024];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof(buf) - 1 &&
         (r = read(fd, buf + n, sizeof(buf) - 1 - n)) != 0) {
    if (r < 0) {
      if (errno == EINTR)
        continue;
      snprintf(err, errlen, "zookeeper.auth_file %s: %s", path,
               strerror(errno));
      close(fd);
      return NULL;
    }
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  const char *colon = strchr(buf, ':');
  const char *why = buf[0] == '\0'     ? "empty"
                    : colon == NULL    ? "no ':' (the first line is "
                                         "user:password)"
                    : colon == buf     ? "empty user (user:password)"
                    : colon[1] == '\0' ? "empty password (user:password)"
                                       : NULL;
  char *out = why ? NULL : hd_strdup(buf);
  /* The buffer held the password: leave nothing of it on the stack. */
  memset(buf, 0, sizeof(buf));
  __asm__ __volatile__("" : : "r"(buf) : "memory");
  if (why)
    snprintf(err, errlen, "zookeeper.auth_file %s: %s", path, why);
  return out;
}

struct ACL_vector *hd_zk_acl(const hd_zk_t *z) {
  return z->authed ? &ZOO_CREATOR_ALL_ACL : &ZOO_OPEN_ACL_UNSAFE;
}

const char *hd_zk_strerror(int rc) {
  if (rc == ZNOAUTH)
    return "not authorized (ZNOAUTH: zookeeper.auth_file missing or not "
           "the cluster's credentials)";
  if (rc == ZINVALIDACL)
    return "invalid ACL (ZINVALIDACL: the session has no credentials for a "
           "creator-only node)";
  return zerror(rc);
}

/* @locality ZooKeeper client thread */
static void zk_log(const char *message) {
  /* The client logs connection churn at INFO and real trouble at ERROR;
   * herald shows the latter as warnings and the rest only under debug. */
  int lvl = strstr(message, "ZOO_ERROR") ? HD_LL_WARN : HD_LL_DEBUG;
  hd_log(lvl, "zk", "client", "line=\"%.*s\"", (int)strcspn(message, "\n"),
         message);
}

/* @locality ZooKeeper client thread */
static void zk_watcher(zhandle_t *zh, int type, int state, const char *path,
                       void *ctx) {
  (void)zh;
  (void)path;
  hd_zk_t *z = ctx;
  if (type != ZOO_SESSION_EVENT)
    return;
  pthread_mutex_lock(&z->mu);
  z->state = state;
  if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
    z->expired = 1;
  pthread_cond_broadcast(&z->cv);
  void (*fn)(void *, int) = z->listener;
  void *fn_ctx = z->listener_ctx;
  pthread_mutex_unlock(&z->mu);
  hd_log(HD_LL_INFO, "zk", "session state", "state=%d", state);
  if (fn)
    fn(fn_ctx, state);
}

/* @locality ZooKeeper client thread. Digest auth is accepted by any
 * server; a failure here means the session is unusable (the client then
 * also reports ZOO_AUTH_FAILED_STATE, taken as expiry). */
static void auth_done(int rc, const void *data) {
  (void)data;
  if (rc != ZOK)
    hd_log(HD_LL_ERROR, "zk", "authentication refused", "error=\"%s\"",
           hd_zk_strerror(rc));
}

hd_zk_t *hd_zk_new(const char *hosts, int session_timeout_ms) {
  return hd_zk_new_auth(hosts, session_timeout_ms, NULL);
}

hd_zk_t *hd_zk_new_auth(const char *hosts, int session_timeout_ms,
                        const char *auth) {
  hd_zk_t *z = hd_calloc(1, sizeof(*z));
  pthread_mutex_init(&z->mu, NULL);
  pthread_cond_init(&z->cv, NULL);
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  z->zh = zookeeper_init2(hosts, zk_watcher, session_timeout_ms, NULL, z, 0,
                          zk_log);
  if (z->zh == NULL) {
    hd_log(HD_LL_ERROR, "zk", "cannot create a session", "hosts=%s", hosts);
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->cv);
    free(z);
    return NULL;
  }
  if (auth != NULL) {
    /* Before the first request: the client sends it when the connection
     * is made (and again after every reconnection), ahead of the requests
     * queued meanwhile. */
    int rc =
        zoo_add_auth(z->zh, "digest", auth, (int)strlen(auth), auth_done, NULL);
    if (rc != ZOK) {
      hd_log(HD_LL_ERROR, "zk", "cannot add credentials", "error=\"%s\"",
             hd_zk_strerror(rc));
      hd_zk_free(z);
      return NULL;
    }
    z->authed = 1;
    size_t ulen = strcspn(auth, ":");
    hd_log(HD_LL_INFO, "zk", "digest authentication", "user=%.*s", (int)ulen,
           auth);
  }
  return z;
}

int hd_zk_wait(hd_zk_t *z, int timeout_ms) {
  struct timespec dl = hd_deadline_ms((uint64_t)timeout_ms);
  pthread_mutex_lock(&z->mu);
  while (!z->expired && z->state != ZOO_CONNECTED_STATE)
    if (pthread_cond_timedwait(&z->cv, &z->mu, &dl) != 0)
      break;
  int rc = z->expired ? -1 : z->state == ZOO_CONNECTED_STATE ? 0 : 1;
  pthread_mutex_unlock(&z->mu);
  return rc;
}

int hd_zk_expired(hd_zk_t *z) {
  pthread_mutex_lock(&z->mu);
  int e = z->expired;
  pthread_mutex_unlock(&z->mu);
  return e;
}

int hd_zk_connected(hd_zk_t *z) {
  pthread_mutex_lock(&z->mu);
  int c = !z->expired && z->state == ZOO_CONNECTED_STATE;
  pthread_mutex_unlock(&z->mu);
  return c;
}

void hd_zk_set_listener(hd_zk_t *z, void (*fn)(void *ctx, int state),
                        void *ctx) {
  pthread_mutex_lock(&z->mu);
  z->listener = fn;
  z->listener_ctx = ctx;
  pthread_mutex_unlock(&z->mu);
}

zhandle_t *hd_zk_handle(hd_zk_t *z) {
  return z->zh;
}

int64_t hd_zk_session(hd_zk_t *z) {
  const clientid_t *id = zoo_client_id(z->zh);
  return id ? id->client_id : 0;
}

int hd_zk_ensure_path(hd_zk_t *z, const char *path) {
  char buf[1024];
  size_t n = strlen(path);
  if (n >= sizeof(buf))
    return ZBADARGUMENTS;
  memcpy(buf, path, n + 1);
  /* The top node (/herald) is shared by every cluster of an ensemble, each
   * with credentials of its own or none: whoever makes it first keeps all
   * permissions, and everyone may create a cluster root under it (CREATE
   * alone: not list, read, change nor delete what others made). */
  struct ACL root[2] = {{ZOO_PERM_ALL, ZOO_AUTH_IDS},
                        {ZOO_PERM_CREATE, ZOO_ANYONE_ID_UNSAFE}};
  struct ACL_vector root_acl = {2, root};
  /* Each prefix in turn: creating what exists is fine. */
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char save = buf[i];
    buf[i] = '\0';
    int top = strchr(buf + 1, '/') == NULL;
    int rc =
        zoo_create(z->zh, buf, "", 0,
                   top && z->authed ? &root_acl : hd_zk_acl(z), 0, NULL, 0);
    buf[i] = save;
    if (rc != ZOK && rc != ZNODEEXISTS)
      return rc;
  }
  return ZOK;
}

void hd_zk_free(hd_zk_t *z) {
  if (z == NULL)
    return;
  zookeeper_close(z->zh);
  pthread_mutex_destroy(&z->mu);
  pthread_cond_destroy(&z->cv);
  free(z);
}
