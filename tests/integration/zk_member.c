/*
 * zk_member.c - a faithful fake agent and a few ZooKeeper chores, for the
 * coordinator's integration tests (test_coordinator.py). Debian has no
 * ZooKeeper command-line client but the JVM's zkCli.sh, far too slow to
 * start once per check.
 *
 *   zk_member agent --zk HOSTS --cluster C --group G --id ID --partitions N
 *             [--source S] [--session-timeout MS] [--release-delay MS]
 *       Joins group G as docs/zookeeper.md says an agent does: creates the
 *       group node when it is missing, its member node, and follows the
 *       assignment: owners/<p> of every partition granted to it is
 *       created (and, if the assignment no longer grants p at that epoch
 *       when read again right after, deleted at once); owners/<p> of a
 *       partition that left its list is deleted, after --release-delay
 *       (its "flush"). Prints one JSON line per event on stdout:
 *         {"ev":"joined","t":MS,"node":"..."}
 *         {"ev":"assignment","t":MS,"version":V,"leader":"..","mine":[..],
 *          "pending":[..]}      (pending: moving to it, not granted yet)
 *         {"ev":"acquired","t":MS,"p":P,"epoch":E}
 *         {"ev":"waiting","t":MS,"p":P}   (owners/<p> held by another)
 *         {"ev":"released","t":MS,"p":P}
 *         {"ev":"left"} on SIGTERM (after releasing everything), exit 0;
 *         {"ev":"expired"} when its session expires, exit 4.
 *   zk_member watch --zk HOSTS --cluster C --group G
 *       Prints every assignment it sees (watching the node) as
 *       {"t":MS,"zversion":V,"data":{...}} until SIGTERM.
 *   zk_member get --zk HOSTS PATH       the data, or exit 1 (no node)
 *   zk_member rmr --zk HOSTS PATH       deletes PATH and all below it
 *   zk_member set --zk HOSTS PATH DATA  sets the data (any version), or
 *       exit 1 with the ZooKeeper error on stderr
 *   zk_member create --zk HOSTS PATH DATA  creates a persistent node (open
 *       ACL without credentials, creator-all with), or exit 1 likewise
 *   zk_member dump --zk HOSTS PATH      every node from PATH down, one
 *       line each: {"path":"..","acl":"scheme:id:perms,..","data":".."}
 *       (data as a JSON string); exit 1 on an error
 *   zk_member open --zk HOSTS PATH      sets PATH's ACL to the open one
 *       (world: all), to undo a test's credentials on a shared node
 *
 * Every command takes --auth-file FILE: ZooKeeper digest credentials
 * (zookeeper.auth_file's format), the session then authenticated; a
 * refusal shows on stderr as ZNOAUTH.
 *
 * T is the wall clock (ms) when the event happened here.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hd_group.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_time.h"
#include "hd_zk.h"

static const char *zk_hosts, *cluster, *group, *agent_id, *source = "shop";
static const char *auth_file;
static int partitions, session_timeout = 4000, release_delay;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int events;
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

/* @locality ZooKeeper client thread */
static void watcher(zhandle_t *zh, int type, int state, const char *path,
                    void *ctx) {
  (void)zh;
  (void)type;
  (void)state;
  (void)path;
  (void)ctx;
  pthread_mutex_lock(&mu);
  events++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* Waits for a watch to fire, at most ms; a signal ends it within 100 ms
 * (a handler cannot signal the condition). */
static void nap(int ms) {
  uint64_t end = hd_now_ms() + (uint64_t)ms;
  pthread_mutex_lock(&mu);
  int seen = events;
  while (events == seen && !stop_flag && hd_now_ms() < end) {
    struct timespec dl = hd_deadline_ms(100);
    pthread_cond_timedwait(&cv, &mu, &dl);
  }
  pthread_mutex_unlock(&mu);
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static hd_zk_t *connect_zk(void) {
  char *auth = NULL, err[1200];
  if (auth_file &&
      (auth = hd_zk_read_auth(auth_file, err, sizeof(err))) == NULL) {
    fprintf(stderr, "zk_member: %s\n", err);
    exit(2);
  }
  hd_zk_t *z = hd_zk_new_auth(zk_hosts, session_timeout, auth);
  free(auth);
  if (z == NULL || hd_zk_wait(z, 20000) != 0) {
    fprintf(stderr, "zk_member: cannot connect to %s\n", zk_hosts);
    exit(2);
  }
  return z;
}

/* ------------------------------------------------------------- agent */

typedef struct {
  hd_zk_t *z;
  zhandle_t *zh;
  char member[HD_GROUP_PATH_MAX];
  hd_assignment_t asg;
  int have;
  uint64_t *held_epoch; /* [partitions]: 0 not held, else the epoch */
  int *waiting;         /* [partitions]: "waiting" printed */
  char *buf;
} agent_t;

#define BUFMAX (1 << 20)

/* Reads the assignment (with a watch). @returns 1 if it is a new one. */
static int read_assignment(agent_t *a) {
  char path[HD_GROUP_PATH_MAX], err[256];
  hd_path_assignment(path, sizeof(path), cluster, group);
  int len = BUFMAX;
  struct Stat st;
  int rc = zoo_wget(a->zh, path, watcher, NULL, a->buf, &len, &st);
  if (rc == ZNONODE) {
    zoo_wexists(a->zh, path, watcher, NULL, &st);
    return 0;
  }
  if (rc != ZOK || len < 0)
    return 0;
  hd_assignment_t n;
  if (hd_assignment_parse(a->buf, (size_t)len, &n, err, sizeof(err)) != 0) {
    fprintf(stderr, "zk_member: assignment unreadable: %s\n", err);
    return 0;
  }
  if (a->have && n.version == a->asg.version) {
    hd_assignment_free(&n);
    return 0;
  }
  if (a->have)
    hd_assignment_free(&a->asg);
  a->asg = n;
  a->have = 1;
  return 1;
}

static int32_t my_index(agent_t *a) {
  return a->have ? hd_assignment_find(&a->asg, agent_id) : -1;
}

static int granted(agent_t *a, uint32_t p) {
  int32_t m = my_index(a);
  return m >= 0 && a->have && a->asg.partitions == (uint32_t)partitions &&
         a->asg.owner[p] == m;
}

static void print_assignment(agent_t *a) {
  char mine[8192] = "", pend[8192] = "";
  size_t ml = 0, pl = 0;
  int32_t m = my_index(a);
  for (uint32_t p = 0; p < a->asg.partitions && m >= 0; p++) {
    if (a->asg.owner[p] == m && ml + 8 < sizeof(mine))
      ml += (size_t)snprintf(mine + ml, sizeof(mine) - ml, "%s%" PRIu32,
                             ml ? "," : "", p);
    if (a->asg.pending[p] == m && pl + 8 < sizeof(pend))
      pl += (size_t)snprintf(pend + pl, sizeof(pend) - pl, "%s%" PRIu32,
                             pl ? "," : "", p);
  }
  out("{\"ev\":\"assignment\",\"t\":%" PRIu64 ",\"version\":%" PRIu64
      ",\"leader\":\"%s\",\"mine\":[%s],\"pending\":[%s]}",
      hd_now_ms(), a->asg.version, a->asg.leader, mine, pend);
}

static void release(agent_t *a, uint32_t p) {
  char path[HD_GROUP_PATH_MAX];
  hd_path_owner(path, sizeof(path), cluster, group, p);
  int rc = zoo_delete(a->zh, path, -1);
  if (rc == ZOK || rc == ZNONODE) {
    a->held_epoch[p] = 0;
    out("{\"ev\":\"released\",\"t\":%" PRIu64 ",\"p\":%" PRIu32 "}",
        hd_now_ms(), p);
  }
}

static void acquire(agent_t *a, uint32_t p) {
  char path[HD_GROUP_PATH_MAX], err[128], *json;
  uint64_t epoch = a->asg.epochs[p];
  hd_owner_t o;
  memset(&o, 0, sizeof(o));
  snprintf(o.owner, sizeof(o.owner), "%s", agent_id);
  o.epoch = epoch;
  o.session = (uint64_t)hd_zk_session(a->z);
  o.since_ms = hd_now_ms();
  if (hd_owner_build(&o, &json, err, sizeof(err)) != 0)
    return;
  hd_path_owner(path, sizeof(path), cluster, group, p);
  int rc = zoo_create(a->zh, path, json, (int)strlen(json), hd_zk_acl(a->z),
                      ZOO_EPHEMERAL, NULL, 0);
  free(json);
  if (rc == ZNODEEXISTS) {
    struct Stat st;
    if (zoo_wexists(a->zh, path, watcher, NULL, &st) == ZOK && !a->waiting[p]) {
      a->waiting[p] = 1;
      out("{\"ev\":\"waiting\",\"t\":%" PRIu64 ",\"p\":%" PRIu32 "}",
          hd_now_ms(), p);
    }
    return;
  }
  if (rc != ZOK)
    return;
  /* Read again: a grant taken back while we were creating the node must
   * not be acted on (docs/zookeeper.md, owners/). */
  read_assignment(a);
  if (!granted(a, p) || a->asg.epochs[p] != epoch) {
    zoo_delete(a->zh, path, -1);
    out("{\"ev\":\"undone\",\"t\":%" PRIu64 ",\"p\":%" PRIu32 "}", hd_now_ms(),
        p);
    return;
  }
  a->held_epoch[p] = epoch;
  a->waiting[p] = 0;
  out("{\"ev\":\"acquired\",\"t\":%" PRIu64 ",\"p\":%" PRIu32
      ",\"epoch\":%" PRIu64 "}",
      hd_now_ms(), p, epoch);
}

static void join_group(agent_t *a) {
  char path[HD_GROUP_PATH_MAX], err[256], *json;
  hd_group_t g = {.partitions = (uint32_t)partitions,
                  .created_ms = hd_now_ms()};
  snprintf(g.source, sizeof(g.source), "%s", source);
  hd_path_group(path, sizeof(path), cluster, group);
  char parent[HD_GROUP_PATH_MAX];
  hd_path_groups(parent, sizeof(parent), cluster);
  hd_zk_ensure_path(a->z, parent);
  hd_group_build(&g, &json, err, sizeof(err));
  int rc = zoo_create(a->zh, path, json, (int)strlen(json), hd_zk_acl(a->z), 0,
                      NULL, 0);
  free(json);
  if (rc != ZOK && rc != ZNODEEXISTS) {
    fprintf(stderr, "zk_member: cannot create %s: %s\n", path,
            hd_zk_strerror(rc));
    exit(2);
  }
  int len = BUFMAX;
  struct Stat st;
  hd_group_t have;
  if (zoo_get(a->zh, path, 0, a->buf, &len, &st) != ZOK || len < 0 ||
      hd_group_parse(a->buf, (size_t)len, &have, err, sizeof(err)) != 0 ||
      have.partitions != (uint32_t)partitions) {
    fprintf(stderr, "zk_member: group %s does not match\n", group);
    exit(3);
  }
  const char *dirs[] = {"members", "owners", "checkpoints"};
  for (int i = 0; i < 3; i++) {
    char d[HD_GROUP_PATH_MAX + 16];
    snprintf(d, sizeof(d), "%s/%s", path, dirs[i]);
    hd_zk_ensure_path(a->z, d);
  }
  hd_member_t m;
  memset(&m, 0, sizeof(m));
  snprintf(m.id, sizeof(m.id), "%s", agent_id);
  m.session = (uint64_t)hd_zk_session(a->z);
  m.partitions = (uint32_t)partitions;
  snprintf(m.source, sizeof(m.source), "%s", source);
  snprintf(m.version, sizeof(m.version), "test");
  m.joined_ms = hd_now_ms();
  hd_member_build(&m, &json, err, sizeof(err));
  hd_path_member_prefix(path, sizeof(path), cluster, group, agent_id);
  rc = zoo_create(a->zh, path, json, (int)strlen(json), hd_zk_acl(a->z),
                  ZOO_EPHEMERAL | ZOO_SEQUENCE, a->member,
                  (int)sizeof(a->member));
  free(json);
  if (rc != ZOK) {
    fprintf(stderr, "zk_member: cannot join: %s\n", hd_zk_strerror(rc));
    exit(2);
  }
  out("{\"ev\":\"joined\",\"t\":%" PRIu64 ",\"node\":\"%s\"}", hd_now_ms(),
      a->member);
}

static int run_agent(void) {
  agent_t a;
  memset(&a, 0, sizeof(a));
  a.buf = hd_malloc(BUFMAX + 1);
  a.held_epoch = hd_calloc((size_t)partitions, sizeof(uint64_t));
  a.waiting = hd_calloc((size_t)partitions, sizeof(int));
  a.z = connect_zk();
  a.zh = hd_zk_handle(a.z);
  join_group(&a);
  while (!stop_flag) {
    if (hd_zk_expired(a.z)) {
      out("{\"ev\":\"expired\"}");
      return 4;
    }
    if (read_assignment(&a))
      print_assignment(&a);
    /* Revoked: flush (the delay), then release. */
    int revoked = 0;
    for (uint32_t p = 0; p < (uint32_t)partitions; p++)
      revoked |= a.held_epoch[p] && !granted(&a, p);
    if (revoked && release_delay > 0) {
      usleep((useconds_t)release_delay * 1000);
      if (read_assignment(&a))
        print_assignment(&a);
    }
    for (uint32_t p = 0; p < (uint32_t)partitions; p++)
      if (a.held_epoch[p] && !granted(&a, p))
        release(&a, p);
    for (uint32_t p = 0; p < (uint32_t)partitions; p++)
      if (!a.held_epoch[p] && granted(&a, p))
        acquire(&a, p);
    nap(1000);
  }
  /* SIGTERM: release everything, leave, close. */
  for (uint32_t p = 0; p < (uint32_t)partitions; p++)
    if (a.held_epoch[p])
      release(&a, p);
  zoo_delete(a.zh, a.member, -1);
  hd_zk_free(a.z);
  out("{\"ev\":\"left\"}");
  hd_assignment_free(&a.asg);
  free(a.buf);
  free(a.held_epoch);
  free(a.waiting);
  return 0;
}

/* ---------------------------------------------------------- the rest */

static int run_watch(void) {
  hd_zk_t *z = connect_zk();
  zhandle_t *zh = hd_zk_handle(z);
  char path[HD_GROUP_PATH_MAX];
  char *buf = hd_malloc(BUFMAX + 1);
  hd_path_assignment(path, sizeof(path), cluster, group);
  int64_t last = -1;
  while (!stop_flag) {
    int len = BUFMAX;
    struct Stat st;
    int rc = zoo_wget(zh, path, watcher, NULL, buf, &len, &st);
    if (rc == ZNONODE)
      zoo_wexists(zh, path, watcher, NULL, &st);
    else if (rc == ZOK && len >= 0 && st.mzxid != last) {
      last = st.mzxid;
      buf[len] = '\0';
      out("{\"t\":%" PRIu64 ",\"zversion\":%d,\"data\":%s}", hd_now_ms(),
          st.version, buf);
    }
    nap(1000);
  }
  free(buf);
  hd_zk_free(z);
  return 0;
}

static int rmr(zhandle_t *zh, const char *path) {
  struct String_vector sv;
  int rc = zoo_get_children(zh, path, 0, &sv);
  if (rc == ZNONODE)
    return ZOK;
  if (rc != ZOK)
    return rc;
  for (int32_t i = 0; i < sv.count && rc == ZOK; i++) {
    char child[1024];
    snprintf(child, sizeof(child), "%s/%s", path, sv.data[i]);
    rc = rmr(zh, child);
  }
  deallocate_String_vector(&sv);
  if (rc == ZOK) {
    rc = zoo_delete(zh, path, -1);
    rc = rc == ZNONODE ? ZOK : rc;
  }
  return rc;
}

/* s as a JSON string's body (no quotes) on stdout. */
static void put_json_str(const char *s, int len) {
  for (int i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
}

static int dump(zhandle_t *zh, const char *path, char *buf) {
  int len = BUFMAX;
  struct Stat st;
  int rc = zoo_get(zh, path, 0, buf, &len, &st);
  if (rc != ZOK) {
    fprintf(stderr, "zk_member: get %s: %s\n", path, hd_zk_strerror(rc));
    return rc;
  }
  struct ACL_vector acl;
  struct Stat ast;
  rc = zoo_get_acl(zh, path, &acl, &ast);
  if (rc != ZOK) {
    fprintf(stderr, "zk_member: getacl %s: %s\n", path, hd_zk_strerror(rc));
    return rc;
  }
  printf("{\"path\":\"");
  put_json_str(path, (int)strlen(path));
  printf("\",\"acl\":\"");
  for (int32_t i = 0; i < acl.count; i++)
    printf("%s%s:%s:%d", i ? "," : "", acl.data[i].id.scheme, acl.data[i].id.id,
           acl.data[i].perms);
  printf("\",\"data\":\"");
  put_json_str(buf, len < 0 ? 0 : len);
  printf("\"}\n");
  deallocate_ACL_vector(&acl);
  struct String_vector sv;
  rc = zoo_get_children(zh, path, 0, &sv);
  if (rc != ZOK) {
    fprintf(stderr, "zk_member: ls %s: %s\n", path, hd_zk_strerror(rc));
    return rc;
  }
  for (int32_t i = 0; i < sv.count && rc == ZOK; i++) {
    char child[1024];
    snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") ? path : "",
             sv.data[i]);
    rc = dump(zh, child, buf);
  }
  deallocate_String_vector(&sv);
  return rc;
}

static int usage(void) {
  fprintf(stderr, "usage: zk_member agent|watch|get|rmr|set|create|dump|open "
                  "--zk HOSTS [--auth-file FILE] ...\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  const char *cmd = argv[1], *path = NULL, *value = NULL;
  for (int i = 2; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (k[0] != '-') {
      if (path == NULL)
        path = k;
      else
        value = k;
      continue;
    }
    if (v == NULL)
      return usage();
    i++;
    if (strcmp(k, "--zk") == 0)
      zk_hosts = v;
    else if (strcmp(k, "--cluster") == 0)
      cluster = v;
    else if (strcmp(k, "--group") == 0)
      group = v;
    else if (strcmp(k, "--id") == 0)
      agent_id = v;
    else if (strcmp(k, "--source") == 0)
      source = v;
    else if (strcmp(k, "--partitions") == 0)
      partitions = atoi(v);
    else if (strcmp(k, "--session-timeout") == 0)
      session_timeout = atoi(v);
    else if (strcmp(k, "--release-delay") == 0)
      release_delay = atoi(v);
    else if (strcmp(k, "--auth-file") == 0)
      auth_file = v;
    else
      return usage();
  }
  if (zk_hosts == NULL)
    return usage();
  hd_log_level = HD_LL_ERROR;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  if (strcmp(cmd, "agent") == 0) {
    if (!cluster || !group || !agent_id || partitions < 1)
      return usage();
    return run_agent();
  }
  if (strcmp(cmd, "watch") == 0) {
    if (!cluster || !group)
      return usage();
    return run_watch();
  }
  if (path == NULL)
    return usage();
  hd_zk_t *z = connect_zk();
  int rc = 0;
  if (strcmp(cmd, "get") == 0) {
    char *buf = hd_malloc(BUFMAX + 1);
    int len = BUFMAX;
    struct Stat st;
    int zrc = zoo_get(hd_zk_handle(z), path, 0, buf, &len, &st);
    if (zrc == ZOK) {
      printf("%.*s\n", len < 0 ? 0 : len, buf);
    } else {
      if (zrc != ZNONODE)
        fprintf(stderr, "zk_member: get %s: %s\n", path, hd_zk_strerror(zrc));
      rc = 1;
    }
    free(buf);
  } else if (strcmp(cmd, "set") == 0 || strcmp(cmd, "create") == 0) {
    if (value == NULL) {
      hd_zk_free(z);
      return usage();
    }
    int zrc =
        cmd[0] == 's'
            ? zoo_set(hd_zk_handle(z), path, value, (int)strlen(value), -1)
            : zoo_create(hd_zk_handle(z), path, value, (int)strlen(value),
                         hd_zk_acl(z), 0, NULL, 0);
    if (zrc != ZOK) {
      fprintf(stderr, "zk_member: %s %s: %s\n", cmd, path, hd_zk_strerror(zrc));
      rc = 1;
    }
  } else if (strcmp(cmd, "open") == 0) {
    int zrc = zoo_set_acl(hd_zk_handle(z), path, -1, &ZOO_OPEN_ACL_UNSAFE);
    if (zrc != ZOK) {
      fprintf(stderr, "zk_member: open %s: %s\n", path, hd_zk_strerror(zrc));
      rc = 1;
    }
  } else if (strcmp(cmd, "dump") == 0) {
    char *buf = hd_malloc(BUFMAX + 1);
    rc = dump(hd_zk_handle(z), path, buf) == ZOK ? 0 : 1;
    free(buf);
  } else if (strcmp(cmd, "rmr") == 0) {
    int zrc = rmr(hd_zk_handle(z), path);
    if (zrc != ZOK) {
      fprintf(stderr, "zk_member: rmr %s: %s\n", path, hd_zk_strerror(zrc));
      rc = 1;
    }
  } else {
    rc = usage();
  }
  hd_zk_free(z);
  return rc;
}
