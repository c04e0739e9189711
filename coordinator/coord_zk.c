/*
 * coord_zk.c - herald-coordinator's loop: the ZooKeeper session, the
 * election and, while leading, the groups' assignments.
 *
 * One thread does all of it with the client's synchronous calls; the
 * watchers and the session listener only queue events and wake it
 * (coord.h). The contract is docs/zookeeper.md ("Coordinators", "Consumer
 * groups"); docs/coordinator.md explains the choices.
 *
 * Session: an ephemeral sequential node election/n_<seq> is created once
 * the session is up. The lowest sequence number leads; every other
 * coordinator watches only the node just below its own. The session
 * listener clears `leading` the moment the connection drops, before the
 * session can expire and another can lead; on reconnection the loop looks
 * at the election again (the same session keeps its node). After an
 * expiry, a new session makes a new node and queues again.
 *
 * Leading: the leader watches groups/ (children), each group's members/
 * and owners/ (children), and on every change reads the group (group
 * node, members, owners, assignment), computes the next assignment
 * (coord_assign.h) and writes it with one zoo_multi: a check that its
 * election node still exists, and a setData with the assignment's znode
 * version as read (or a create when there is none). A leader that lost its
 * session therefore cannot write, whatever it believes. After a write it
 * reads again and recomputes, since a pending move may be grantable at
 * once. A membership change is acted on coordinator.rebalance_delay after
 * it is seen, so that agents starting together are assigned together;
 * releases (owners/) are acted on at once. Every group is also read once
 * a second, leader or not, for /status and /metrics.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "coord_assign.h"
#include "coord_lag.h"
#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_time.h"
#include "hd_zk.h"

#define REFRESH_MS 1000
#define RETRY_MS 1000
/* ZooKeeper refuses data above jute.maxbuffer, 1 MiB less one byte by
 * default: one buffer of that size holds any node. */
#define DATA_MAX (1u << 20)
/* Write and read again at most this often in one pass for one group: two
 * writes do a move (revoke, grant); more means the group is changing. */
#define MAX_WRITES_PER_PASS 4

typedef enum {
  EV_ELECTION, /* a node below ours, or the election's children */
  EV_GROUPS,   /* groups/ children */
  EV_GROUP,    /* a group node, or its members/ or owners/ appeared */
  EV_MEMBERS,  /* a group's members/ children */
  EV_OWNERS    /* a group's owners/ children */
} coord_ev_kind_t;

struct coord_group {
  char name[HD_REG_NAME_MAX];
  uint64_t hold_until; /* a membership change: act from then on */
  uint64_t due;        /* act at this time (0: at the next periodic pass) */
  int seen;            /* listed by the latest groups/ read */
  char reported[320];  /* the last problem logged, to log each once */
  json_t *status;      /* this group in /status */
  coord_gstat_t stat;  /* this group in /metrics */
  coord_lag_t *lag;    /* its readings while we lead; NULL otherwise */
  json_t *lag_json;    /* their part of /status; NULL none */
};

/* What one read of a group found. */
typedef struct {
  int ok;        /* the group node was read and parsed */
  char err[320]; /* why not, or the first problem with a child node */
  hd_group_t node;
  char **live; /* distinct member ids */
  size_t nlive;
  char **sess_id; /* every live member node: its id and session */
  uint64_t *sess;
  size_t nsess;
  char **drained; /* live ids with a drain node for their session */
  size_t ndrained;
  char **holder; /* [node.partitions]: owners/<p>'s owner, "" unreadable */
  int asg_exists;
  int have_asg; /* asg holds the node's assignment */
  int32_t asg_zversion;
  hd_assignment_t asg;
} scan_t;

typedef struct {
  coord_t *c;
  hd_zk_t *z;
  zhandle_t *zh;
  char node[HD_GROUP_PATH_MAX]; /* our election node's path, "" none */
  int gen;                      /* c->conn_gen at the last election */
  char *buf;                    /* DATA_MAX + 1 */
  uint64_t next_refresh;
  uint64_t next_lag; /* the next lag reading, while leading */
  int was_leading;
  coord_cluster_t cl; /* relays and coordinators, as last read */
} loop_t;

/* ------------------------------------------------------------- events */

static void push_event(coord_t *c, int kind, const char *group, size_t glen) {
  coord_ev_t *ev = hd_calloc(1, sizeof(*ev));
  ev->kind = kind;
  if (glen >= sizeof(ev->group))
    glen = sizeof(ev->group) - 1;
  memcpy(ev->group, group, glen);
  pthread_mutex_lock(&c->mu);
  ev->next = c->events;
  c->events = ev;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* @locality ZooKeeper client thread */
static void on_watch(zhandle_t *zh, int type, int state, const char *path,
                     void *ctx) {
  (void)zh;
  (void)state;
  coord_t *c = ctx;
  if (type == ZOO_SESSION_EVENT || path == NULL)
    return; /* the session listener has it */
  size_t el = strlen(c->election_path), gl = strlen(c->groups_path);
  if (strncmp(path, c->election_path, el) == 0) {
    push_event(c, EV_ELECTION, "", 0);
    return;
  }
  if (strncmp(path, c->groups_path, gl) != 0)
    return;
  if (path[gl] == '\0') {
    push_event(c, EV_GROUPS, "", 0);
    return;
  }
  if (path[gl] != '/')
    return;
  const char *g = path + gl + 1, *slash = strchr(g, '/');
  size_t len = slash ? (size_t)(slash - g) : strlen(g);
  int kind = EV_GROUP;
  if (slash && strcmp(slash, "/members") == 0 && type == ZOO_CHILD_EVENT)
    kind = EV_MEMBERS;
  else if (slash && strcmp(slash, "/owners") == 0 && type == ZOO_CHILD_EVENT)
    kind = EV_OWNERS;
  push_event(c, kind, g, len);
}

/* @locality ZooKeeper client thread */
static void on_session(void *ctx, int state) {
  coord_t *c = ctx;
  pthread_mutex_lock(&c->mu);
  int was = c->leading;
  c->conn_gen++;
  c->connected = state == ZOO_CONNECTED_STATE;
  if (!c->connected)
    c->leading = 0;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (was && state != ZOO_CONNECTED_STATE)
    hd_log(HD_LL_WARN, "coord", "stopped leading", "reason=\"%s\" state=%d",
           state == ZOO_EXPIRED_SESSION_STATE ? "session expired"
                                              : "connection lost",
           state);
}

void coord_stop(coord_t *c) {
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* One shared int of c, read under its lock. */
static int locked(coord_t *c, const int *field) {
  pthread_mutex_lock(&c->mu);
  int v = *field;
  pthread_mutex_unlock(&c->mu);
  return v;
}
#define stopping(c) locked((c), &(c)->stop)
#define current_gen(c) locked((c), &(c)->conn_gen)

/* Waits until an event, a session change after gen, stop, or the
 * deadline (CLOCK_REALTIME ms). */
static void wait_until(coord_t *c, int gen, uint64_t deadline_ms) {
  uint64_t now = hd_now_ms();
  if (deadline_ms <= now)
    return;
  struct timespec dl = hd_deadline_ms(deadline_ms - now);
  pthread_mutex_lock(&c->mu);
  while (!c->stop && c->events == NULL && c->conn_gen == gen)
    if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0)
      break;
  pthread_mutex_unlock(&c->mu);
}

/* Whether we lead now: the listener has not seen a change since the
 * election that made us leader. Asked before every write. */
static int still_leading(loop_t *L) {
  pthread_mutex_lock(&L->c->mu);
  int l = L->c->leading && L->c->connected && L->c->conn_gen == L->gen;
  pthread_mutex_unlock(&L->c->mu);
  return l;
}

/* ------------------------------------------------------------ groups */

static coord_group_t *find_group(coord_t *c, const char *name) {
  for (size_t i = 0; i < c->ngroups; i++)
    if (strcmp(c->groups[i].name, name) == 0)
      return &c->groups[i];
  return NULL;
}

static coord_group_t *add_group(coord_t *c, const char *name) {
  c->groups = hd_realloc(c->groups, (c->ngroups + 1) * sizeof(*c->groups));
  coord_group_t *g = &c->groups[c->ngroups++];
  memset(g, 0, sizeof(*g));
  snprintf(g->name, sizeof(g->name), "%s", name);
  snprintf(g->stat.name, sizeof(g->stat.name), "%s", name);
  return g;
}

static void drop_unseen_groups(coord_t *c) {
  size_t k = 0;
  for (size_t i = 0; i < c->ngroups; i++) {
    if (c->groups[i].seen) {
      c->groups[k++] = c->groups[i];
    } else {
      json_decref(c->groups[i].status);
      json_decref(c->groups[i].lag_json);
      coord_lag_free(c->groups[i].lag);
    }
  }
  c->ngroups = k;
}

/* Logs a group's problem once, until it changes. */
static void report(coord_group_t *g, const char *what) {
  if (strcmp(g->reported, what) == 0)
    return;
  snprintf(g->reported, sizeof(g->reported), "%s", what);
  if (what[0])
    hd_log(HD_LL_WARN, "coord", "group problem", "group=%s problem=\"%s\"",
           g->name, what);
}

static void scan_free(scan_t *s) {
  for (size_t i = 0; i < s->nlive; i++)
    free(s->live[i]);
  free(s->live);
  for (size_t i = 0; i < s->nsess; i++)
    free(s->sess_id[i]);
  free(s->sess_id);
  free(s->sess);
  for (size_t i = 0; i < s->ndrained; i++)
    free(s->drained[i]);
  free(s->drained);
  if (s->holder)
    for (uint32_t p = 0; p < s->node.partitions; p++)
      free(s->holder[p]);
  free(s->holder);
  hd_assignment_free(&s->asg);
  memset(s, 0, sizeof(*s));
}

/* zoo_get into L->buf (NUL-terminated), with a watch when asked. */
static int get_data(loop_t *L, const char *path, int watch, int *len,
                    struct Stat *st) {
  *len = DATA_MAX;
  int rc = watch ? zoo_wget(L->zh, path, on_watch, L->c, L->buf, len, st)
                 : zoo_get(L->zh, path, 0, L->buf, len, st);
  if (rc == ZOK) {
    if (*len < 0)
      *len = 0; /* a node without data */
    L->buf[*len] = '\0';
  }
  return rc;
}

/* A directory's children; when it does not exist yet, a watch for its
 * creation instead (a children watch on a missing node is not kept). */
static int children(loop_t *L, const char *path, int watch,
                    struct String_vector *sv) {
  memset(sv, 0, sizeof(*sv));
  int rc = watch ? zoo_wget_children(L->zh, path, on_watch, L->c, sv)
                 : zoo_get_children(L->zh, path, 0, sv);
  if (rc == ZNONODE) {
    struct Stat st;
    if (watch)
      zoo_wexists(L->zh, path, on_watch, L->c, &st);
    return ZOK; /* no children */
  }
  return rc;
}

/* get_data() of dir/name; child is set to that path. */
static int get_child(loop_t *L, const char *dir, const char *name, char *child,
                     size_t n, int *len, struct Stat *st) {
  snprintf(child, n, "%s/%s", dir, name);
  return get_data(L, child, 0, len, st);
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static void note(scan_t *s, const char *fmt, const char *a, const char *b) {
  if (s->err[0] == '\0')
    snprintf(s->err, sizeof(s->err), fmt, a, b);
}

/* The live members' distinct ids. */
static int read_members(loop_t *L, coord_group_t *g, scan_t *s, int watch) {
  char path[HD_GROUP_PATH_MAX], child[HD_GROUP_PATH_MAX * 2], err[256];
  const char *cl = L->c->conf->cluster;
  struct String_vector sv;
  hd_path_members(path, sizeof(path), cl, g->name);
  int rc = children(L, path, watch, &sv);
  if (rc != ZOK)
    return rc;
  s->live = hd_calloc(sv.count ? (size_t)sv.count : 1, sizeof(char *));
  s->sess_id = hd_calloc(sv.count ? (size_t)sv.count : 1, sizeof(char *));
  s->sess = hd_calloc(sv.count ? (size_t)sv.count : 1, sizeof(uint64_t));
  for (int32_t i = 0; i < sv.count; i++) {
    int len;
    struct Stat st;
    rc = get_child(L, path, sv.data[i], child, sizeof(child), &len, &st);
    if (rc == ZNONODE)
      continue; /* gone since the listing */
    if (rc != ZOK)
      break;
    hd_member_t m;
    if (hd_member_parse(L->buf, (size_t)len, &m, err, sizeof(err)) != 0) {
      note(s, "member %s not used: %s", sv.data[i], err);
      continue;
    }
    if (m.partitions != s->node.partitions ||
        strcmp(m.source, s->node.source) != 0) {
      note(s,
           "member %s not used: its partitions or source differ from "
           "the group's%s",
           sv.data[i], "");
      continue;
    }
    s->sess_id[s->nsess] = hd_strdup(m.id);
    s->sess[s->nsess++] = m.session;
    int dup = 0;
    for (size_t k = 0; k < s->nlive && !dup; k++)
      dup = strcmp(s->live[k], m.id) == 0;
    if (!dup)
      s->live[s->nlive++] = hd_strdup(m.id);
  }
  deallocate_String_vector(&sv);
  qsort(s->live, s->nlive, sizeof(char *), cmp_str);
  return rc == ZNONODE ? ZOK : rc;
}

/* The live member p is granted to, or NULL. */
static const char *granted_live(const scan_t *s, uint32_t p) {
  if (!s->have_asg || s->asg.partitions != s->node.partitions ||
      s->asg.owner[p] < 0)
    return NULL;
  const char *id = s->asg.members[s->asg.owner[p]];
  return bsearch(&id, s->live, s->nlive, sizeof(char *), cmp_str) ? id : NULL;
}

/* Who holds each partition's owners/ node. A node of a partition granted
 * to a live member is not read: the assignment does not look at who holds
 * it (it stays granted, or is revoked, either way), and a group at rest is
 * then read with one listing instead of one read per partition. It counts
 * as the grantee's. */
static int read_owners(loop_t *L, coord_group_t *g, scan_t *s, int watch) {
  char path[HD_GROUP_PATH_MAX], child[HD_GROUP_PATH_MAX * 2], err[256];
  struct String_vector sv;
  hd_path_owners(path, sizeof(path), L->c->conf->cluster, g->name);
  int rc = children(L, path, watch, &sv);
  if (rc != ZOK)
    return rc;
  s->holder = hd_calloc(s->node.partitions, sizeof(char *));
  for (int32_t i = 0; i < sv.count; i++) {
    uint32_t p;
    if (hd_partition_name_parse(sv.data[i], s->node.partitions, &p) != 0) {
      note(s, "owners/%s ignored: not a partition of the group%s", sv.data[i],
           "");
      continue;
    }
    const char *grantee = granted_live(s, p);
    if (grantee) {
      s->holder[p] = hd_strdup(grantee);
      continue;
    }
    int len;
    struct Stat st;
    rc = get_child(L, path, sv.data[i], child, sizeof(child), &len, &st);
    if (rc == ZNONODE)
      continue;
    if (rc != ZOK)
      break;
    hd_owner_t o;
    if (hd_owner_parse(L->buf, (size_t)len, &o, err, sizeof(err)) != 0) {
      /* Held all the same: by someone no target is. */
      note(s, "owners/%s unreadable: %s", sv.data[i], err);
      s->holder[p] = hd_strdup("");
    } else {
      s->holder[p] = hd_strdup(o.owner);
    }
  }
  deallocate_String_vector(&sv);
  return rc == ZNONODE ? ZOK : rc;
}

/* drain/: the live members heraldctl drain asked to empty. A node whose
 * session is no live member's is stale (the agent restarted, or left):
 * the leader deletes it, so that an agent back from maintenance gets
 * partitions again. */
static int read_drains(loop_t *L, coord_group_t *g, scan_t *s, int leading) {
  char path[HD_GROUP_PATH_MAX], child[HD_GROUP_PATH_MAX * 2], err[256];
  struct String_vector sv;
  hd_path_drains(path, sizeof(path), L->c->conf->cluster, g->name);
  int rc = children(L, path, leading, &sv);
  if (rc != ZOK)
    return rc;
  s->drained = hd_calloc(sv.count ? (size_t)sv.count : 1, sizeof(char *));
  for (int32_t i = 0; i < sv.count; i++) {
    int len;
    struct Stat st;
    rc = get_child(L, path, sv.data[i], child, sizeof(child), &len, &st);
    if (rc == ZNONODE)
      continue;
    if (rc != ZOK)
      break;
    hd_drain_t d;
    int live = 0;
    if (hd_drain_parse(L->buf, (size_t)len, &d, err, sizeof(err)) != 0) {
      note(s, "drain/%s ignored: %s", sv.data[i], err);
      continue;
    }
    for (size_t k = 0; k < s->nsess && !live; k++)
      live = s->sess[k] == d.session && strcmp(s->sess_id[k], d.agent) == 0;
    if (live) {
      s->drained[s->ndrained++] = hd_strdup(d.agent);
    } else if (leading && still_leading(L)) {
      int drc = zoo_delete(L->zh, child, st.version);
      if (drc == ZOK)
        hd_log(HD_LL_INFO, "coord", "stale drain removed",
               "group=%s agent=%s session=0x%" PRIx64, g->name, d.agent,
               d.session);
    }
  }
  deallocate_String_vector(&sv);
  return rc == ZNONODE ? ZOK : rc;
}

/* Reads a whole group. @returns ZOK (s->ok says whether the group can be
 * assigned) or the ZooKeeper error that stopped it. */
static int scan_group(loop_t *L, coord_group_t *g, scan_t *s, int watch) {
  char path[HD_GROUP_PATH_MAX], err[256];
  const char *cl = L->c->conf->cluster;
  memset(s, 0, sizeof(*s));
  int len;
  struct Stat st;
  hd_path_group(path, sizeof(path), cl, g->name);
  int rc = get_data(L, path, watch, &len, &st);
  if (rc == ZNONODE)
    return ZOK; /* deleted: the groups/ watch follows */
  if (rc != ZOK)
    return rc;
  if (hd_group_parse(L->buf, (size_t)len, &s->node, err, sizeof(err)) != 0) {
    snprintf(s->err, sizeof(s->err), "group node unreadable: %s", err);
    return ZOK;
  }
  rc = read_members(L, g, s, watch);
  if (rc != ZOK)
    return rc;
  /* The assignment before owners/: it says which holders matter. */
  hd_path_assignment(path, sizeof(path), cl, g->name);
  rc = get_data(L, path, 0, &len, &st);
  if (rc == ZOK) {
    s->asg_exists = 1;
    s->asg_zversion = st.version;
    if (hd_assignment_parse(L->buf, (size_t)len, &s->asg, err, sizeof(err)) ==
        0)
      s->have_asg = 1;
    else
      note(s, "assignment unreadable, rewritten from scratch: %s%s", err, "");
  } else if (rc != ZNONODE) {
    return rc;
  }
  rc = read_owners(L, g, s, watch);
  if (rc != ZOK)
    return rc;
  rc = read_drains(L, g, s, watch);
  if (rc != ZOK)
    return rc;
  if (s->ndrained && s->ndrained >= s->nlive)
    note(s, "every live member is drained: nothing moves%s%s", "", "");
  s->ok = 1;
  return ZOK;
}

/* The group's /status and /metrics entries from what s read. */
static void summarize(coord_group_t *g, const scan_t *s) {
  json_t *members = json_array(), *owners = json_object(), *asg = json_null(),
         *drained = json_array();
  for (size_t i = 0; i < s->ndrained; i++)
    json_array_append_new(drained, json_string(s->drained[i]));
  coord_gstat_t *st = &g->stat;
  memset(st, 0, sizeof(*st));
  snprintf(st->name, sizeof(st->name), "%s", g->name);
  for (size_t i = 0; i < s->nlive; i++)
    json_array_append_new(members, json_string(s->live[i]));
  if (s->ok) {
    st->partitions = s->node.partitions;
    st->members = (uint32_t)s->nlive;
    st->unowned = s->node.partitions;
    for (uint32_t p = 0; p < s->node.partitions; p++)
      if (s->holder[p]) {
        char key[16];
        snprintf(key, sizeof(key), "%" PRIu32, p);
        json_object_set_new(owners, key, json_string(s->holder[p]));
      }
  }
  if (s->have_asg) {
    char *text, err[128];
    if (hd_assignment_build(&s->asg, &text, err, sizeof(err)) == 0) {
      json_error_t je;
      json_decref(asg);
      asg = json_loads(text, 0, &je);
      free(text);
    }
    st->version = s->asg.version;
    st->unowned = st->pending = 0;
    for (uint32_t p = 0; p < s->asg.partitions; p++) {
      st->pending += s->asg.pending[p] >= 0;
      st->unowned += s->asg.pending[p] < 0 && s->asg.owner[p] < 0;
    }
  }
  json_decref(g->status);
  g->status = json_pack(
      "{s:I, s:s?, s:o, s:o, s:o, s:o, s:I, s:I, s:s?}", "partitions",
      (json_int_t)st->partitions, "source", s->ok ? s->node.source : NULL,
      "members", members, "drained", drained, "owners", owners, "assignment",
      asg ? asg : json_null(), "unowned", (json_int_t)st->unowned, "pending",
      (json_int_t)st->pending, "error", s->err[0] ? s->err : NULL);
}

/* The view /status and /metrics show, from the group table. */
static void publish(loop_t *L) {
  coord_t *c = L->c;
  json_t *groups = json_object();
  coord_gstat_t *gs = hd_calloc(c->ngroups ? c->ngroups : 1, sizeof(*gs));
  for (size_t i = 0; i < c->ngroups; i++) {
    coord_group_t *g = &c->groups[i];
    if (g->status && g->lag_json) {
      json_t *o = json_copy(g->status);
      json_object_update(o, g->lag_json);
      json_object_set_new(groups, g->name, o);
    } else if (g->status) {
      json_object_set(groups, g->name, g->status);
    }
    gs[i] = g->stat;
  }
  pthread_mutex_lock(&c->mu);
  json_decref(c->status_groups);
  c->status_groups = groups;
  free(c->gstats);
  c->gstats = gs;
  c->ngstats = c->ngroups;
  pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------- lag */

/* One point of history per second at most, an hour of them at least. */
static uint64_t hist_step_ms(const coord_t *c) {
  uint64_t i = c->conf->coordinator.lag_interval_ms;
  return i > 1000 ? i : 1000;
}

static coord_hist_t *hist_for(coord_t *c, const char *name) {
  for (size_t i = 0; i < c->nhist; i++)
    if (strcmp(c->hist[i].name, name) == 0)
      return &c->hist[i];
  c->hist = hd_realloc(c->hist, (c->nhist + 1) * sizeof(*c->hist));
  coord_hist_t *h = &c->hist[c->nhist++];
  memset(h, 0, sizeof(*h));
  snprintf(h->name, sizeof(h->name), "%s", name);
  uint64_t cap = 3600000 / hist_step_ms(c) + 1;
  h->cap = cap < 60 ? 60 : (size_t)cap;
  h->pts = hd_calloc(h->cap, sizeof(*h->pts));
  return h;
}

/* History of the groups we read lag for; none for the others (and none
 * at all on a follower). @locality the loop, c->mu held */
static void hist_update(coord_t *c, int leading, uint64_t now) {
  size_t k = 0;
  for (size_t i = 0; i < c->nhist; i++) {
    coord_group_t *g = leading ? find_group(c, c->hist[i].name) : NULL;
    if (g && g->lag)
      c->hist[k++] = c->hist[i];
    else
      free(c->hist[i].pts);
  }
  c->nhist = k;
  for (size_t i = 0; leading && i < c->ngroups; i++) {
    coord_group_t *g = &c->groups[i];
    if (g->lag == NULL || g->lag_json == NULL)
      continue;
    coord_hist_t *h = hist_for(c, g->name);
    const coord_hpoint_t *last =
        h->n ? &h->pts[(h->head + h->cap - 1) % h->cap] : NULL;
    if (last && now < last->t_ms + hist_step_ms(c) - 50)
      continue;
    hd_lag_status_t st;
    double max;
    coord_lag_worst(g->lag, &st, &max);
    h->pts[h->head] =
        (coord_hpoint_t){.t_ms = now, .max_lag = max, .status = st};
    h->head = (h->head + 1) % h->cap;
    if (h->n < h->cap)
      h->n++;
  }
}

/* A reading of g's lag from what s read (its holders) and the relays. */
static void sample_group(loop_t *L, coord_group_t *g, const scan_t *s,
                         uint64_t now) {
  if (g->lag == NULL)
    g->lag = coord_lag_new();
  int rc = coord_lag_sample(g->lag, L->zh, L->c->conf->cluster, g->name,
                            &s->node, (const char *const *)s->holder, &L->cl,
                            (size_t)L->c->conf->coordinator.lag_window, now);
  if (rc != ZOK) {
    hd_log(HD_LL_DEBUG, "coord", "lag not read", "group=%s error=\"%s\"",
           g->name, hd_zk_strerror(rc));
    return;
  }
  json_decref(g->lag_json);
  g->lag_json = coord_lag_json(g->lag);
}

/* After a refresh: relays, coordinators, and while leading the lag
 * families of /metrics and the history. */
static void publish_lag(loop_t *L, int leading, uint64_t now) {
  coord_t *c = L->c;
  if (!leading)
    for (size_t i = 0; i < c->ngroups; i++) {
      coord_lag_free(c->groups[i].lag);
      c->groups[i].lag = NULL;
      json_decref(c->groups[i].lag_json);
      c->groups[i].lag_json = NULL;
    }
  char *text = NULL;
  if (leading) {
    const char **names = hd_calloc(c->ngroups + 1, sizeof(char *));
    const coord_lag_t **lags = hd_calloc(c->ngroups + 1, sizeof(void *));
    for (size_t i = 0; i < c->ngroups; i++) {
      names[i] = c->groups[i].name;
      lags[i] = c->groups[i].lag;
    }
    hd_buf_t b = {0};
    coord_lag_metrics(&b, names, (const coord_lag_t *const *)lags, c->ngroups,
                      &L->cl);
    text = b.p;
    free(names);
    free(lags);
  }
  pthread_mutex_lock(&c->mu);
  free(c->lag_metrics);
  c->lag_metrics = text;
  c->lag_sampled_ms = leading ? now : 0;
  json_decref(c->status_relays);
  c->status_relays = L->cl.relays ? json_incref(L->cl.relays) : NULL;
  json_decref(c->status_coords);
  c->status_coords = L->cl.coords ? json_incref(L->cl.coords) : NULL;
  hist_update(c, leading, now);
  pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ writes */

typedef enum { W_NONE, W_WROTE, W_CONFLICT, W_FENCED, W_ERROR } wres_t;

/* Computes the group's next assignment from s and writes it. */
static wres_t assign_group(loop_t *L, coord_group_t *g, scan_t *s) {
  coord_t *c = L->c;
  coord_assign_in_t in = {.partitions = s->node.partitions,
                          .current = s->have_asg ? &s->asg : NULL,
                          .live = (const char *const *)s->live,
                          .nlive = s->nlive,
                          .holder = (const char *const *)s->holder,
                          .drained = (const char *const *)s->drained,
                          .ndrained = s->ndrained};
  hd_assignment_t next;
  coord_assign_stats_t st;
  if (coord_assign(&in, &next, &st) != 1)
    return W_NONE;
  /* A rewrite of an unreadable node continues its version count. */
  if (!s->have_asg && s->asg_exists)
    next.version = (uint64_t)s->asg_zversion + 2;
  snprintf(next.leader, sizeof(next.leader), "%s", c->conf->coordinator.id);
  next.updated_ms = hd_now_ms();
  char *json, err[256], path[HD_GROUP_PATH_MAX];
  if (hd_assignment_build(&next, &json, err, sizeof(err)) != 0) {
    hd_log(HD_LL_ERROR, "coord", "cannot build the assignment",
           "group=%s error=\"%s\"", g->name, err);
    hd_assignment_free(&next);
    return W_ERROR;
  }
  hd_path_assignment(path, sizeof(path), c->conf->cluster, g->name);
  if (!still_leading(L)) {
    free(json);
    hd_assignment_free(&next);
    return W_FENCED;
  }
  /* The check makes the write the leader's: a coordinator whose node is
   * gone (its session expired while it was paused) fails here. */
  zoo_op_t ops[2];
  zoo_op_result_t res[2];
  struct Stat out;
  memset(res, 0, sizeof(res));
  zoo_check_op_init(&ops[0], L->node, -1);
  if (s->asg_exists)
    zoo_set_op_init(&ops[1], path, json, (int)strlen(json), s->asg_zversion,
                    &out);
  else
    zoo_create_op_init(&ops[1], path, json, (int)strlen(json), hd_zk_acl(L->z),
                       0, NULL, 0);
  int rc = zoo_multi(L->zh, 2, ops, res);
  free(json);
  wres_t w;
  if (rc == ZOK) {
    w = W_WROTE;
    pthread_mutex_lock(&c->mu);
    c->writes++;
    pthread_mutex_unlock(&c->mu);
    hd_log(HD_LL_INFO, "coord", "assignment written",
           "group=%s version=%" PRIu64 " members=%zu moved=%" PRIu32
           " revoked=%" PRIu32 " granted=%" PRIu32 " pending=%" PRIu32
           " unowned=%" PRIu32,
           g->name, next.version, next.nmembers, st.moved, st.revoked,
           st.granted, st.pending, st.unowned);
  } else if (res[0].err == ZNONODE) {
    w = W_FENCED;
    hd_log(HD_LL_WARN, "coord", "assignment not written: election node gone",
           "group=%s node=%s", g->name, L->node);
  } else if (rc == ZBADVERSION || rc == ZNODEEXISTS) {
    w = W_CONFLICT; /* written by another since our read: read again */
    hd_log(HD_LL_WARN, "coord", "assignment changed under us",
           "group=%s error=\"%s\"", g->name, hd_zk_strerror(rc));
  } else {
    w = W_ERROR;
    hd_log(HD_LL_WARN, "coord", "assignment not written",
           "group=%s error=\"%s\"", g->name, hd_zk_strerror(rc));
  }
  hd_assignment_free(&next);
  return w;
}

/* One group: read, assign (when asked), write; again after a write. The
 * first reading also reads the lag when asked. */
static int pass_group(loop_t *L, coord_group_t *g, int leading, int assign,
                      int lag, uint64_t now) {
  scan_t s;
  int rc = ZOK;
  for (int i = 0; i < MAX_WRITES_PER_PASS + 1; i++) {
    rc = scan_group(L, g, &s, leading);
    if (rc != ZOK) {
      scan_free(&s);
      return rc;
    }
    report(g, s.err);
    summarize(g, &s);
    if (i == 0 && lag && s.ok)
      sample_group(L, g, &s, now);
    publish(L); /* what was read is what /status shows, write by write */
    wres_t w = leading && assign && s.ok ? assign_group(L, g, &s) : W_NONE;
    scan_free(&s);
    if (w == W_FENCED)
      return ZSESSIONEXPIRED;
    if (w != W_WROTE && w != W_CONFLICT)
      break;
  }
  return ZOK;
}

/* groups/: the table follows the children. New groups wait for
 * rebalance_delay when we lead (their first agents arrive together). */
static int list_groups(loop_t *L, int leading, uint64_t now) {
  coord_t *c = L->c;
  struct String_vector sv;
  int rc = children(L, c->groups_path, leading, &sv);
  if (rc != ZOK)
    return rc;
  for (size_t i = 0; i < c->ngroups; i++)
    c->groups[i].seen = 0;
  for (int32_t i = 0; i < sv.count; i++) {
    coord_group_t *g = find_group(c, sv.data[i]);
    if (g == NULL) {
      g = add_group(c, sv.data[i]);
      g->hold_until =
          leading ? now + c->conf->coordinator.rebalance_delay_ms : 0;
      g->due = g->hold_until ? g->hold_until : now;
    }
    g->seen = 1;
  }
  deallocate_String_vector(&sv);
  drop_unseen_groups(c);
  return ZOK;
}

/* Events since the last look, into the group table. @returns whether the
 * election must be looked at again. */
static int drain_events(loop_t *L, uint64_t now, int *groups_due) {
  coord_t *c = L->c;
  pthread_mutex_lock(&c->mu);
  coord_ev_t *ev = c->events;
  c->events = NULL;
  pthread_mutex_unlock(&c->mu);
  int elect = 0;
  while (ev) {
    coord_ev_t *next = ev->next;
    coord_group_t *g = ev->group[0] ? find_group(c, ev->group) : NULL;
    switch (ev->kind) {
    case EV_ELECTION:
      elect = 1;
      break;
    case EV_GROUPS:
      *groups_due = 1;
      break;
    case EV_MEMBERS:
      /* One hold per burst: changes during it are taken with it. */
      if (g == NULL)
        *groups_due = 1;
      else if (g->hold_until <= now) {
        g->hold_until = now + c->conf->coordinator.rebalance_delay_ms;
        g->due = g->hold_until;
      }
      break;
    case EV_GROUP:
    case EV_OWNERS:
      if (g)
        g->due = now;
      else
        *groups_due = 1;
      break;
    }
    free(ev);
    ev = next;
  }
  return elect;
}

static int read_cluster(loop_t *L, coord_cluster_t *out);

/* Every group that is due (or all, on the periodic pass). @returns the
 * next time something is due. */
static uint64_t groups_pass(loop_t *L, int leading, int groups_due,
                            uint64_t now, int *zrc) {
  coord_t *c = L->c;
  int periodic = now >= L->next_refresh;
  int lag = leading && now >= L->next_lag;
  *zrc = ZOK;
  if (periodic || lag) {
    coord_cluster_t cl;
    *zrc = read_cluster(L, &cl);
    if (*zrc != ZOK)
      return now + RETRY_MS;
    coord_cluster_free(&L->cl);
    L->cl = cl;
  }
  if (periodic || groups_due || lag)
    *zrc = list_groups(L, leading, now);
  if (periodic)
    L->next_refresh = now + REFRESH_MS;
  if (lag)
    L->next_lag = now + c->conf->coordinator.lag_interval_ms;
  uint64_t next = L->next_refresh;
  if (leading && L->next_lag < next)
    next = L->next_lag;
  for (size_t i = 0; i < c->ngroups && *zrc == ZOK; i++) {
    coord_group_t *g = &c->groups[i];
    int held = leading && g->hold_until > now;
    if (held)
      next = g->hold_until < next ? g->hold_until : next;
    if (held && !lag)
      continue;
    if (!held && !periodic && !lag && !(g->due && g->due <= now)) {
      if (g->due && g->due < next)
        next = g->due;
      continue;
    }
    if (!held)
      g->due = 0;
    *zrc = pass_group(L, g, leading, !held, lag, now);
  }
  publish(L); /* groups dropped */
  if (periodic || lag)
    publish_lag(L, leading, now);
  return next;
}

/* ----------------------------------------------------------- election */

typedef struct {
  char name[32];
  int64_t seq;
} enode_t;

static int by_seq(const void *x, const void *y) {
  const enode_t *a = x, *b = y;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The election's nodes, by sequence number. */
static int election_nodes(loop_t *L, enode_t **out, size_t *n) {
  struct String_vector sv;
  int rc = zoo_get_children(L->zh, L->c->election_path, 0, &sv);
  if (rc != ZOK)
    return rc;
  enode_t *v = hd_calloc(sv.count ? (size_t)sv.count : 1, sizeof(*v));
  size_t k = 0;
  for (int32_t i = 0; i < sv.count; i++) {
    char pre[4];
    if (strlen(sv.data[i]) >= sizeof(v[k].name) ||
        hd_seq_name_split(sv.data[i], pre, sizeof(pre), &v[k].seq) != 0 ||
        strcmp(pre, "n") != 0)
      continue; /* not a coordinator's */
    snprintf(v[k].name, sizeof(v[k].name), "%s", sv.data[i]);
    k++;
  }
  deallocate_String_vector(&sv);
  qsort(v, k, sizeof(*v), by_seq);
  *out = v;
  *n = k;
  return ZOK;
}

/* Every relay registration and election node of the cluster, for /status
 * and the lag. Nodes that do not parse are skipped (logged at debug).
 * @returns ZOK with *out filled, or the error that stopped the reading
 * (*out empty then). */
static int read_cluster(loop_t *L, coord_cluster_t *out) {
  char path[HD_GROUP_PATH_MAX], dir[HD_GROUP_PATH_MAX * 2],
      node[HD_GROUP_PATH_MAX * 3], err[256];
  const char *cl = L->c->conf->cluster;
  memset(out, 0, sizeof(*out));
  out->coords = json_array();
  struct String_vector sources, ids;
  snprintf(path, sizeof(path), "/herald/%s/relays", cl);
  int rc = children(L, path, 0, &sources);
  if (rc == ZOK && sources.count > 0)
    qsort(sources.data, (size_t)sources.count, sizeof(char *), cmp_str);
  for (int32_t i = 0; rc == ZOK && i < sources.count; i++) {
    snprintf(dir, sizeof(dir), "%s/%s", path, sources.data[i]);
    if ((rc = children(L, dir, 0, &ids)) != ZOK)
      break;
    if (ids.count > 0) /* qsort() wants a pointer even for none */
      qsort(ids.data, (size_t)ids.count, sizeof(char *), cmp_str);
    out->regs = hd_realloc(out->regs, (out->nregs + (size_t)ids.count + 1) *
                                          sizeof(hd_reg_t));
    for (int32_t k = 0; k < ids.count; k++) {
      int len;
      struct Stat st;
      rc = get_child(L, dir, ids.data[k], node, sizeof(node), &len, &st);
      if (rc == ZNONODE) {
        rc = ZOK; /* gone since the listing */
        continue;
      }
      if (rc != ZOK)
        break;
      if (hd_reg_parse(L->buf, (size_t)len, &out->regs[out->nregs], err,
                       sizeof(err)) == 0)
        out->nregs++;
      else
        hd_log(HD_LL_DEBUG, "coord", "relay registration skipped",
               "path=%s error=\"%s\"", node, err);
    }
    deallocate_String_vector(&ids);
  }
  deallocate_String_vector(&sources); /* children() zeroes it first */
  enode_t *v = NULL;
  size_t n = 0;
  if (rc == ZOK && (rc = election_nodes(L, &v, &n)) == ZNONODE)
    rc = ZOK;
  for (size_t i = 0; rc == ZOK && i < n; i++) {
    int len;
    struct Stat st;
    hd_election_t e;
    rc = get_child(L, L->c->election_path, v[i].name, node, sizeof(node), &len,
                   &st);
    if (rc == ZNONODE) {
      rc = ZOK;
      continue;
    }
    if (rc != ZOK)
      break;
    if (hd_election_parse(L->buf, (size_t)len, &e, err, sizeof(err)) != 0) {
      hd_log(HD_LL_DEBUG, "coord", "election node skipped",
             "path=%s error=\"%s\"", node, err);
      continue;
    }
    /* By sequence number: the first leads. */
    json_array_append_new(out->coords,
                          json_pack("{s:s, s:s, s:s, s:s, s:I, s:b}", "node",
                                    v[i].name, "id", e.id, "http", e.http,
                                    "version", e.version, "started_ms",
                                    (json_int_t)e.started_ms, "leader",
                                    json_array_size(out->coords) == 0));
  }
  free(v);
  if (rc != ZOK) {
    coord_cluster_free(out);
    return rc;
  }
  coord_cluster_finish(out);
  return ZOK;
}

/* Our node: one this session made already (a create whose answer was
 * lost still made it), or a new one. */
static int join_election(loop_t *L) {
  coord_t *c = L->c;
  enode_t *v;
  size_t n;
  int rc = election_nodes(L, &v, &n);
  if (rc != ZOK)
    return rc;
  int64_t me = hd_zk_session(L->z);
  char path[HD_GROUP_PATH_MAX];
  L->node[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    struct Stat st;
    if (snprintf(path, sizeof(path), "%s/%.31s", c->election_path, v[i].name) >=
        (int)sizeof(path))
      continue;
    if (zoo_exists(L->zh, path, 0, &st) != ZOK || st.ephemeralOwner != me)
      continue;
    if (L->node[0] == '\0')
      snprintf(L->node, sizeof(L->node), "%s", path);
    else
      zoo_delete(L->zh, path, -1); /* a second one of ours */
  }
  free(v);
  if (L->node[0])
    return ZOK;
  hd_election_t e;
  char *json, err[256], prefix[HD_GROUP_PATH_MAX];
  memset(&e, 0, sizeof(e));
  snprintf(e.id, sizeof(e.id), "%s", c->conf->coordinator.id);
  hd_fmt_hostport(c->conf->coordinator.http.host,
                  c->conf->coordinator.http.port, e.http, sizeof(e.http));
  snprintf(e.version, sizeof(e.version), "%s", HD_VERSION);
  e.started_ms = c->started_ms;
  if (hd_election_build(&e, &json, err, sizeof(err)) != 0) {
    hd_log(HD_LL_ERROR, "coord", "cannot build the election node",
           "error=\"%s\"", err);
    return ZBADARGUMENTS;
  }
  hd_path_election_prefix(prefix, sizeof(prefix), c->conf->cluster);
  rc = zoo_create(L->zh, prefix, json, (int)strlen(json), hd_zk_acl(L->z),
                  ZOO_EPHEMERAL | ZOO_SEQUENCE, L->node, (int)sizeof(L->node));
  free(json);
  if (rc != ZOK)
    L->node[0] = '\0';
  else
    hd_log(HD_LL_INFO, "coord", "in the election", "node=%s", L->node);
  return rc;
}

static void set_view(coord_t *c, int gen, int leading, const char *leader,
                     const char *node) {
  pthread_mutex_lock(&c->mu);
  int was = c->leading;
  /* Leadership only from the session state it was decided in. */
  c->leading = leading && c->connected && c->conn_gen == gen;
  snprintf(c->leader_id, sizeof(c->leader_id), "%s", leader);
  snprintf(c->node, sizeof(c->node), "%s", node);
  int now = c->leading;
  pthread_mutex_unlock(&c->mu);
  if (now && !was)
    hd_log(HD_LL_INFO, "coord", "leading", "node=%s", node);
}

/* Where we stand: leader, or watching the node below ours. @returns ZOK,
 * ZNONODE when our node is gone, or a ZooKeeper error. */
static int elect(loop_t *L) {
  coord_t *c = L->c;
  const char *mine = strrchr(L->node, '/') + 1;
  for (int tries = 0; tries < 10; tries++) {
    L->gen = current_gen(c);
    enode_t *v;
    size_t n, at = 0;
    int rc = election_nodes(L, &v, &n);
    if (rc != ZOK)
      return rc;
    while (at < n && strcmp(v[at].name, mine) != 0)
      at++;
    if (at == n) {
      free(v);
      return ZNONODE;
    }
    if (at == 0) {
      free(v);
      set_view(c, L->gen, 1, c->conf->coordinator.id, mine);
      return ZOK;
    }
    char path[HD_GROUP_PATH_MAX * 2], leader[HD_REG_NAME_MAX] = "";
    struct Stat st;
    snprintf(path, sizeof(path), "%s/%s", c->election_path, v[at - 1].name);
    rc = zoo_wexists(L->zh, path, on_watch, c, &st);
    if (rc == ZNONODE) {
      free(v);
      continue; /* gone meanwhile: look again */
    }
    /* The leader's id, for /status. */
    snprintf(path, sizeof(path), "%s/%s", c->election_path, v[0].name);
    int len;
    hd_election_t e;
    char err[128];
    if (get_data(L, path, 0, &len, &st) == ZOK &&
        hd_election_parse(L->buf, (size_t)len, &e, err, sizeof(err)) == 0)
      snprintf(leader, sizeof(leader), "%s", e.id);
    free(v);
    pthread_mutex_lock(&c->mu);
    int was = c->leading, changed = strcmp(c->leader_id, leader) != 0;
    pthread_mutex_unlock(&c->mu);
    set_view(c, L->gen, 0, leader, mine);
    if (was || changed)
      hd_log(HD_LL_INFO, "coord", "following", "leader=%s node=%s",
             leader[0] ? leader : "?", mine);
    return rc;
  }
  return ZOPERATIONTIMEOUT;
}

/* ------------------------------------------------------------- session */

static int ensure_dirs(loop_t *L) {
  int rc = hd_zk_ensure_path(L->z, L->c->election_path);
  return rc == ZOK ? hd_zk_ensure_path(L->z, L->c->groups_path) : rc;
}

/* One session, until it expires or we stop. */
static void session(loop_t *L) {
  coord_t *c = L->c;
  int need_elect = 1, dirs = 0, gen_seen = -1;
  L->node[0] = '\0';
  L->next_refresh = 0;
  L->next_lag = 0;
  L->was_leading = 0;
  while (!stopping(c)) {
    if (hd_zk_expired(L->z)) {
      hd_log(HD_LL_WARN, "coord", "session expired", "action=\"queue again\"");
      return;
    }
    int gen = current_gen(c);
    if (!hd_zk_connected(L->z)) {
      wait_until(c, gen, hd_now_ms() + RETRY_MS);
      continue;
    }
    if (gen != gen_seen) {
      need_elect = 1; /* a reconnection: verify where we stand */
      gen_seen = gen;
    }
    int rc = ZOK;
    if (!dirs)
      dirs = (rc = ensure_dirs(L)) == ZOK;
    if (rc == ZOK && L->node[0] == '\0') {
      rc = join_election(L);
      need_elect = 1;
    }
    if (rc == ZOK && need_elect) {
      rc = elect(L);
      need_elect = rc != ZOK;
      if (rc == ZNONODE)
        L->node[0] = '\0'; /* deleted under us: a new one */
    }
    if (rc != ZOK) {
      if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
        hd_log(HD_LL_WARN, "coord", "ZooKeeper call failed", "error=\"%s\"",
               hd_zk_strerror(rc));
      wait_until(c, gen, hd_now_ms() + RETRY_MS);
      continue;
    }
    const char *srv = zoo_get_current_server(L->zh);
    pthread_mutex_lock(&c->mu);
    snprintf(c->zk_server, sizeof(c->zk_server), "%s", srv ? srv : "");
    pthread_mutex_unlock(&c->mu);
    uint64_t now = hd_now_ms();
    int groups_due = 0;
    if (drain_events(L, now, &groups_due)) {
      need_elect = 1;
      continue;
    }
    int leading = still_leading(L), zrc;
    if (!leading && now >= L->next_refresh && elect(L) != ZOK)
      need_elect = 1; /* a follower's view of the leader, once a second */
    if (leading && !L->was_leading) {
      /* New leader: read every group now, with watches, no holds. */
      L->next_refresh = L->next_lag = 0;
      for (size_t i = 0; i < c->ngroups; i++)
        c->groups[i].hold_until = 0;
    }
    L->was_leading = leading;
    uint64_t next = groups_pass(L, leading, groups_due, now, &zrc);
    if (zrc == ZSESSIONEXPIRED && !hd_zk_expired(L->z)) {
      /* Fenced although the session lives: our node was deleted. */
      L->node[0] = '\0';
      continue;
    }
    wait_until(c, gen, next);
  }
}

int coord_run(coord_t *c) {
  const hd_coord_conf_t *conf = c->conf;
  loop_t L;
  memset(&L, 0, sizeof(L));
  L.c = c;
  L.buf = hd_malloc(DATA_MAX + 1);
  while (!stopping(c)) {
    L.z = hd_zk_new_auth(conf->zk.hosts, (int)conf->zk.session_timeout_ms,
                         c->zk_auth);
    if (L.z == NULL) {
      wait_until(c, current_gen(c), hd_now_ms() + 5 * RETRY_MS);
      continue;
    }
    L.zh = hd_zk_handle(L.z);
    hd_zk_set_listener(L.z, on_session, c);
    if (hd_zk_connected(L.z))
      on_session(c, ZOO_CONNECTED_STATE);
    session(&L);
    /* Closing the session removes our election node at once: the next
     * coordinator leads without waiting for a timeout. */
    hd_zk_set_listener(L.z, NULL, NULL);
    hd_zk_free(L.z);
    L.z = NULL;
    pthread_mutex_lock(&c->mu);
    c->leading = c->connected = 0;
    c->node[0] = '\0';
    c->conn_gen++;
    pthread_mutex_unlock(&c->mu);
  }
  coord_cluster_free(&L.cl);
  free(L.buf);
  return 0;
}

void coord_init(coord_t *c, const hd_coord_conf_t *conf) {
  memset(c, 0, sizeof(*c));
  c->conf = conf;
  c->started_ms = hd_now_ms();
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  hd_path_election(c->election_path, sizeof(c->election_path), conf->cluster);
  hd_path_groups(c->groups_path, sizeof(c->groups_path), conf->cluster);
}

void coord_free(coord_t *c) {
  while (c->events) {
    coord_ev_t *n = c->events->next;
    free(c->events);
    c->events = n;
  }
  for (size_t i = 0; i < c->ngroups; i++) {
    json_decref(c->groups[i].status);
    json_decref(c->groups[i].lag_json);
    coord_lag_free(c->groups[i].lag);
  }
  free(c->groups);
  json_decref(c->status_groups);
  free(c->gstats);
  json_decref(c->status_relays);
  json_decref(c->status_coords);
  free(c->lag_metrics);
  for (size_t i = 0; i < c->nhist; i++)
    free(c->hist[i].pts);
  free(c->hist);
  if (c->zk_auth)
    memset(c->zk_auth, 0, strlen(c->zk_auth));
  free(c->zk_auth);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
}
