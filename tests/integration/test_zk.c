/*
 * test_zk.c - the sandbox's 3-node ZooKeeper ensemble: create, watch and
 * read a znode; then stop the server the client is connected to and check
 * that the session survives (same session id, ephemeral node still there,
 * watches still fire) on the remaining two.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper.h>

#include "hd_check.h"
#include "sbenv.h"

/* What the ZooKeeper thread saw, under one lock. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int zk_state_now;
static int saw_connecting;
static int changed_events;

/* @locality ZooKeeper completion thread */
static void watcher(zhandle_t *zh, int type, int state, const char *path,
                    void *ctx) {
  (void)zh;
  (void)ctx;
  pthread_mutex_lock(&mu);
  if (type == ZOO_SESSION_EVENT) {
    zk_state_now = state;
    if (state == ZOO_CONNECTING_STATE)
      saw_connecting = 1;
  } else if (type == ZOO_CHANGED_EVENT && path && strstr(path, "/data")) {
    changed_events++;
  }
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* Waits until *v >= want (or state == want when is_state), up to secs. */
static int wait_for(int *v, int want, int secs) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += secs;
  pthread_mutex_lock(&mu);
  while (*v != want) {
    if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
      break;
  }
  int ok = *v == want;
  pthread_mutex_unlock(&mu);
  return ok;
}

static int get_counter(int *v) {
  pthread_mutex_lock(&mu);
  int x = *v;
  pthread_mutex_unlock(&mu);
  return x;
}

static void set_and_expect_watch(zhandle_t *zh, const char *path,
                                 const char *val) {
  char buf[64];
  int len = sizeof(buf);
  struct Stat st;
  int before = get_counter(&changed_events);
  ck_assert_int_eq(zoo_wget(zh, path, watcher, NULL, buf, &len, &st), ZOK);
  ck_assert_int_eq(zoo_set(zh, path, val, (int)strlen(val), -1), ZOK);
  ck_assert_msg(wait_for(&changed_events, before + 1, 20),
                "no change event for %s", path);
  len = sizeof(buf);
  ck_assert_int_eq(zoo_get(zh, path, 0, buf, &len, &st), ZOK);
  ck_assert_int_eq(len, (int)strlen(val));
  ck_assert(memcmp(buf, val, (size_t)len) == 0);
}

/* 1-based index of host:port in the comma list, 0 if absent. */
static int node_index(const char *hosts, const char *server) {
  char copy[512], *save = NULL;
  snprintf(copy, sizeof(copy), "%s", hosts);
  int i = 1;
  for (char *t = strtok_r(copy, ",", &save); t;
       t = strtok_r(NULL, ",", &save), i++)
    if (strcmp(t, server) == 0)
      return i;
  return 0;
}

START_TEST(ensemble_survives_node_loss) {
  const char *hosts = sbenv("HERALD_ZK_HOSTS");
  ck_assert_str_eq(sbenv("HERALD_ZK_NODES"), "3");
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  zhandle_t *zh = zookeeper_init2(hosts, watcher, 10000, NULL, NULL, 0, NULL);
  ck_assert_ptr_nonnull(zh);
  ck_assert_msg(wait_for(&zk_state_now, ZOO_CONNECTED_STATE, 20),
                "not connected to %s", hosts);
  int64_t sid = zoo_client_id(zh)->client_id;

  char root[64], data[96], eph[96];
  snprintf(root, sizeof(root), "/herald-test-%d", (int)getpid());
  snprintf(data, sizeof(data), "%s/data", root);
  snprintf(eph, sizeof(eph), "%s/member", root);
  ck_assert_int_eq(
      zoo_create(zh, root, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(
      zoo_create(zh, data, "v0", 2, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
  ck_assert_int_eq(zoo_create(zh, eph, "me", 2, &ZOO_OPEN_ACL_UNSAFE,
                              ZOO_EPHEMERAL, NULL, 0),
                   ZOK);
  set_and_expect_watch(zh, data, "v1");

  /* Stop the very server this session talks to. */
  char server[128];
  const char *cur = zoo_get_current_server(zh);
  ck_assert_ptr_nonnull(cur);
  snprintf(server, sizeof(server), "%s", cur);
  int idx = node_index(hosts, server);
  ck_assert_msg(idx > 0, "server %s not in %s", server, hosts);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "'%s/scripts/sandbox' zk-stop %d --dir '%s'",
           getenv("HERALD_SOURCE"), idx, sbenv("HERALD_SANDBOX_DIR"));
  ck_assert_int_eq(system(cmd), 0);

  /* The client notices, moves to another server, keeps its session. */
  ck_assert_msg(wait_for(&saw_connecting, 1, 20), "loss not noticed");
  ck_assert_msg(wait_for(&zk_state_now, ZOO_CONNECTED_STATE, 20),
                "did not reconnect after losing %s", server);
  ck_assert(zoo_client_id(zh)->client_id == sid);
  ck_assert_str_ne(zoo_get_current_server(zh), server);
  struct Stat st;
  ck_assert_int_eq(zoo_exists(zh, eph, 0, &st), ZOK);
  ck_assert(st.ephemeralOwner == sid);
  set_and_expect_watch(zh, data, "v2-after-loss");

  ck_assert_int_eq(zoo_delete(zh, eph, -1), ZOK);
  ck_assert_int_eq(zoo_delete(zh, data, -1), ZOK);
  ck_assert_int_eq(zoo_delete(zh, root, -1), ZOK);
  ck_assert_int_eq(zookeeper_close(zh), ZOK);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("zookeeper ensemble");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, ensemble_survives_node_loss);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
