/*
 * ctl_ops.c - the plumbing of heraldctl's operator commands: common
 * options, the ZooKeeper session, the cluster's nodes read and parsed
 * (through common/hd_reg.h and common/hd_group.h), the leader's /status
 * over libcurl, tables. See ctl_ops.h.
 */
#include "ctl_ops.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hd_cli.h"
#include "hd_confdefs.h"
#include "hd_config.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_time.h"

/* The largest node ZooKeeper stores (jute.maxbuffer's default). */
#define ZNODE_MAX (1 << 20)
/* Reads in flight at once in ctl_zk_get_many(). */
#define INFLIGHT 256

/* The session has credentials: a refusal (ZNOAUTH) is then not for
 * want of --zk-auth. One command per process, on one thread. */
static int ctl_authed;

/* ----------------------------------------------------------- options */

void ctl_ops_init(ctl_ops_t *o, const char *prog) {
  memset(o, 0, sizeof(*o));
  o->prog = prog;
  o->timeout_ms = 5000;
}

int ctl_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 128 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return 0;
  for (; *s; s++) {
    char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

/* One common option. @returns 1 taken; 0 not a common option;
 * HD_EXIT_USAGE after a one-line message for a bad value. */
static int common_option(ctl_ops_t *o, int c, const char *arg) {
  uint64_t v;
  switch (c) {
  case CTL_OPT_ZK:
    o->hosts = arg;
    return 1;
  case CTL_OPT_CLUSTER:
    if (!ctl_name_ok(arg))
      return hd_cli_usage(o->prog,
                          "--cluster: '%s' is not a name (letters, digits, "
                          "'-', '_', '.')",
                          arg);
    o->cluster = arg;
    return 1;
  case CTL_OPT_CONFIG:
    o->config = arg;
    return 1;
  case CTL_OPT_ZK_AUTH:
    o->auth_file = arg;
    return 1;
  case CTL_OPT_JSON:
    o->json = 1;
    return 1;
  case CTL_OPT_CONNECT_TIMEOUT:
    if (hd_parse_u64(arg, &v) < 0 || v == 0 || v > 3600)
      return hd_cli_usage(o->prog,
                          "--connect-timeout: '%s' is not a number of "
                          "seconds (1-3600)",
                          arg);
    o->timeout_ms = (int)v * 1000;
    return 1;
  case CTL_OPT_GROUP:
    if (!ctl_name_ok(arg))
      return hd_cli_usage(o->prog, "--group: '%s' is not a name", arg);
    o->group = arg;
    return 1;
  default:
    return 0;
  }
}

int ctl_ops_parse(ctl_ops_t *o, int argc, char **argv,
                  const struct option *opts, const char *usage, ctl_opt_fn own,
                  void *ctx, int max_operands) {
  int c;
  opterr = 0;
  optind = 0; /* 0, not 1: glibc then also resets its permutation state */
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    int r = common_option(o, c, optarg);
    if (r == 1)
      continue;
    if (r)
      return r;
    if (c == 'h') {
      fputs(usage, stdout);
      return HD_EXIT_OK;
    }
    r = own ? own(ctx, c, optarg) : -1;
    if (r == 0)
      continue;
    return r > 0 ? r : hd_cli_bad_option(o->prog, c, argv);
  }
  if (argc - optind > max_operands)
    return hd_cli_usage(o->prog, "unexpected argument '%s'",
                        argv[optind + max_operands]);
  return -1;
}

/* zookeeper.hosts and cluster of a config of any kind: the three kinds
 * begin with the same two fields. */
static int load_config(ctl_ops_t *o) {
  union {
    hd_relay_conf_t r;
    hd_agent_conf_t a;
    hd_coord_conf_t c;
  } conf;
  char err[512];
  int which = -1;
  int rc = hd_config_load_any(o->config, hd_all_schemas, 3, &which, &conf, err,
                              sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", o->prog, err);
    if (which >= 0) /* -1 when the kind was not even recognised */
      hd_config_free(hd_all_schemas[which], &conf);
    return HD_EXIT_USAGE;
  }
  const char *cluster = which == 0   ? conf.r.cluster
                        : which == 1 ? conf.a.cluster
                                     : conf.c.cluster;
  const char *hosts = which == 0   ? conf.r.zk.hosts
                      : which == 1 ? conf.a.zk.hosts
                                   : conf.c.zk.hosts;
  const char *auth = which == 0   ? conf.r.zk.auth_file
                     : which == 1 ? conf.a.zk.auth_file
                                  : conf.c.zk.auth_file;
  if (auth)
    o->conf_auth_file = hd_strdup(auth);
  if (cluster)
    o->conf_cluster = hd_strdup(cluster);
  if (hosts)
    o->conf_hosts = hd_strdup(hosts);
  hd_config_free(hd_all_schemas[which], &conf);
  if (o->hosts == NULL && o->conf_hosts == NULL) {
    fprintf(stderr, "%s: %s has no zookeeper.hosts: give --zk\n", o->prog,
            o->config);
    return HD_EXIT_USAGE;
  }
  return 0;
}

/* ctl_ops_connect() but for closing o when it fails. */
static int connect_zk(ctl_ops_t *o) {
  if (o->config) {
    int rc = load_config(o);
    if (rc)
      return rc;
    if (o->hosts == NULL)
      o->hosts = o->conf_hosts;
    if (o->cluster == NULL)
      o->cluster = o->conf_cluster;
    if (o->auth_file == NULL)
      o->auth_file = o->conf_auth_file;
  }
  if (o->hosts == NULL || o->cluster == NULL)
    return hd_cli_usage(o->prog, "give --zk HOSTS and --cluster NAME (or "
                                 "--config FILE)");
  /* The client's own complaints (a server refusing connections while it
   * tries the next) are noise for a command that reports on one line;
   * -v shows them. Set before the client's threads start, and kept: the
   * commands print their own messages, not log records. */
  if (hd_log_level == HD_LL_WARN)
    hd_log_level = HD_LL_ERROR;
  char *auth = NULL, err[1200];
  if (o->auth_file &&
      (auth = hd_zk_read_auth(o->auth_file, err, sizeof(err))) == NULL) {
    fprintf(stderr, "%s: %s\n", o->prog, err);
    return HD_EXIT_USAGE;
  }
  o->zk = hd_zk_new_auth(o->hosts, 10000, auth);
  ctl_authed = auth != NULL;
  if (auth) {
    memset(auth, 0, strlen(auth));
    free(auth);
  }
  int rc = o->zk ? hd_zk_wait(o->zk, o->timeout_ms) : -1;
  if (o->zk == NULL) {
    fprintf(stderr, "%s: --zk '%s' is not a ZooKeeper host list\n", o->prog,
            o->hosts);
    return HD_EXIT_USAGE;
  }
  if (rc != 0) {
    fprintf(stderr, "%s: cannot reach ZooKeeper at %s within %d s\n", o->prog,
            o->hosts, o->timeout_ms / 1000);
    return HD_EXIT_USAGE;
  }
  return 0;
}

int ctl_ops_connect(ctl_ops_t *o) {
  int rc = connect_zk(o);
  if (rc)
    ctl_ops_close(o);
  return rc;
}

void ctl_ops_close(ctl_ops_t *o) {
  hd_zk_free(o->zk);
  o->zk = NULL;
  free(o->conf_hosts);
  free(o->conf_cluster);
  free(o->conf_auth_file);
  o->conf_hosts = o->conf_cluster = o->conf_auth_file = NULL;
  if (o->curl_ready)
    curl_global_cleanup();
  o->curl_ready = 0;
}

/* --------------------------------------------------------- ZooKeeper */

const char *ctl_zerror(int rc) {
  static char buf[256]; /* heraldctl runs its commands on one thread */
  snprintf(buf, sizeof(buf), "%s (%d)%s", hd_zk_strerror(rc), rc,
           rc == ZNOAUTH && !ctl_authed ? ": give --zk-auth FILE" : "");
  return buf;
}

int ctl_zk_get(ctl_ops_t *o, const char *path, char **data, int *len,
               struct Stat *st) {
  zhandle_t *zh = hd_zk_handle(o->zk);
  *data = NULL;
  *len = 0;
  /* zoo_get cuts what does not fit silently: size the buffer from the
   * stat, and read again when the node grew in between. */
  for (int tries = 0; tries < 5; tries++) {
    struct Stat s0;
    int rc = zoo_exists(zh, path, 0, &s0);
    if (rc != ZOK)
      return rc;
    int cap = s0.dataLength + 1;
    if (cap > ZNODE_MAX + 1)
      cap = ZNODE_MAX + 1;
    char *buf = hd_malloc((size_t)cap + 1);
    int n = cap;
    rc = zoo_get(zh, path, 0, buf, &n, st);
    if (rc != ZOK) {
      free(buf);
      return rc;
    }
    if (n < 0)
      n = 0;
    if (st->dataLength > n) {
      free(buf);
      continue;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return ZOK;
  }
  return ZMARSHALLINGERROR;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int ctl_zk_children(ctl_ops_t *o, const char *path, char ***names, size_t *n) {
  struct String_vector sv = {0};
  *names = NULL;
  *n = 0;
  int rc = zoo_get_children(hd_zk_handle(o->zk), path, 0, &sv);
  if (rc != ZOK)
    return rc;
  if (sv.count > 0) {
    *names = hd_calloc((size_t)sv.count, sizeof(char *));
    for (int i = 0; i < sv.count; i++)
      (*names)[i] = hd_strdup(sv.data[i]);
    *n = (size_t)sv.count;
    qsort(*names, *n, sizeof(char *), cmp_str);
  }
  deallocate_String_vector(&sv);
  return ZOK;
}

void ctl_strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t inflight;
} many_t;

typedef struct {
  many_t *m;
  ctl_znode_t *out;
} many_req_t;

/* @locality the ZooKeeper client's completion thread */
static void many_done(int rc, const char *value, int value_len,
                      const struct Stat *stat, const void *data) {
  many_req_t *r = (many_req_t *)(uintptr_t)data;
  r->out->rc = rc;
  if (rc == ZOK) {
    int n = value && value_len > 0 ? value_len : 0;
    r->out->data = hd_malloc((size_t)n + 1);
    if (n)
      memcpy(r->out->data, value, (size_t)n);
    r->out->data[n] = '\0';
    r->out->len = n;
    if (stat)
      r->out->st = *stat;
  }
  pthread_mutex_lock(&r->m->mu);
  r->m->inflight--;
  pthread_cond_signal(&r->m->cv);
  pthread_mutex_unlock(&r->m->mu);
}

void ctl_zk_get_many(ctl_ops_t *o, char *const *paths, size_t n,
                     ctl_znode_t *out) {
  many_t m = {.inflight = 0};
  pthread_mutex_init(&m.mu, NULL);
  pthread_cond_init(&m.cv, NULL);
  many_req_t *reqs = hd_calloc(n ? n : 1, sizeof(*reqs));
  memset(out, 0, n * sizeof(*out));
  for (size_t i = 0; i < n; i++) {
    reqs[i].m = &m;
    reqs[i].out = &out[i];
    pthread_mutex_lock(&m.mu);
    while (m.inflight >= INFLIGHT)
      pthread_cond_wait(&m.cv, &m.mu);
    m.inflight++;
    pthread_mutex_unlock(&m.mu);
    int rc = zoo_aget(hd_zk_handle(o->zk), paths[i], 0, many_done, &reqs[i]);
    if (rc != ZOK) { /* not queued: no completion will come */
      out[i].rc = rc;
      pthread_mutex_lock(&m.mu);
      m.inflight--;
      pthread_mutex_unlock(&m.mu);
    }
  }
  /* The client completes every queued request, also on a lost
   * connection (with ZCONNECTIONLOSS). */
  pthread_mutex_lock(&m.mu);
  while (m.inflight > 0)
    pthread_cond_wait(&m.cv, &m.mu);
  pthread_mutex_unlock(&m.mu);
  free(reqs);
  pthread_mutex_destroy(&m.mu);
  pthread_cond_destroy(&m.cv);
}

/* --------------------------------------------------------- the nodes */

/* The children of a node, each one read: names[i] (sorted) read from
 * paths[i] into zn[i]; zn[i].rc ZNONODE when the child went meanwhile. */
typedef struct {
  char **names;
  char **paths;
  ctl_znode_t *zn;
  size_t n;
} kids_t;

/* Read the children of dir that keep() chooses (keep NULL: all); an
 * absent dir has none.
 * @returns ZOK (free k with kids_free()) or a ZooKeeper code (k holds
 *          nothing). */
static int kids_read(ctl_ops_t *o, const char *dir,
                     int (*keep)(void *ctx, const char *name), void *ctx,
                     kids_t *k) {
  size_t nn = 0;
  memset(k, 0, sizeof(*k));
  int rc = ctl_zk_children(o, dir, &k->names, &nn);
  if (rc == ZNONODE)
    return ZOK;
  if (rc != ZOK)
    return rc;
  for (size_t i = 0; i < nn; i++) {
    if (keep && !keep(ctx, k->names[i])) {
      free(k->names[i]);
      continue;
    }
    k->names[k->n++] = k->names[i];
  }
  k->paths = hd_calloc(k->n ? k->n : 1, sizeof(char *));
  k->zn = hd_calloc(k->n ? k->n : 1, sizeof(*k->zn));
  for (size_t i = 0; i < k->n; i++) {
    k->paths[i] = hd_malloc(strlen(dir) + strlen(k->names[i]) + 2);
    sprintf(k->paths[i], "%s/%s", dir, k->names[i]);
  }
  ctl_zk_get_many(o, k->paths, k->n, k->zn);
  return ZOK;
}

/* Frees also every zn[i].data not taken (set to NULL) by the caller. */
static void kids_free(kids_t *k) {
  for (size_t i = 0; i < k->n; i++) {
    free(k->zn[i].data);
    free(k->paths[i]);
  }
  free(k->zn);
  free(k->paths);
  ctl_strv_free(k->names, k->n);
  memset(k, 0, sizeof(*k));
}

static int cmp_relay(const void *a, const void *b) {
  const ctl_relay_t *x = a, *y = b;
  int c = strcmp(x->source, y->source);
  return c ? c : strcmp(x->name, y->name);
}

int ctl_relays(ctl_ops_t *o, const char *source, ctl_relay_t **out, size_t *n) {
  char base[HD_GROUP_PATH_MAX], path[HD_GROUP_PATH_MAX * 2];
  char **srcs = NULL;
  size_t nsrc = 0, cap = 0;
  *out = NULL;
  *n = 0;
  snprintf(base, sizeof(base), "/herald/%s/relays", o->cluster);
  int rc;
  if (source) {
    srcs = hd_calloc(1, sizeof(char *));
    srcs[0] = hd_strdup(source);
    nsrc = 1;
  } else {
    rc = ctl_zk_children(o, base, &srcs, &nsrc);
    if (rc == ZNONODE)
      return ZOK;
    if (rc != ZOK)
      return rc;
  }
  for (size_t s = 0; s < nsrc; s++) {
    kids_t k;
    snprintf(path, sizeof(path), "%s/%s", base, srcs[s]);
    rc = kids_read(o, path, NULL, NULL, &k);
    if (rc != ZOK) {
      ctl_strv_free(srcs, nsrc);
      free(*out);
      *out = NULL;
      *n = 0;
      return rc;
    }
    for (size_t i = 0; i < k.n; i++) {
      const ctl_znode_t *zn = &k.zn[i];
      if (zn->rc == ZNONODE) /* gone meanwhile */
        continue;
      if (*n == cap) {
        cap = cap ? cap * 2 : 8;
        *out = hd_realloc(*out, cap * sizeof(**out));
      }
      ctl_relay_t *r = &(*out)[(*n)++];
      memset(r, 0, sizeof(*r));
      snprintf(r->name, sizeof(r->name), "%s", k.names[i]);
      snprintf(r->source, sizeof(r->source), "%s", srcs[s]);
      if (zn->rc != ZOK)
        snprintf(r->err, sizeof(r->err), "%s: %s", k.paths[i],
                 ctl_zerror(zn->rc));
      else if (hd_reg_parse(zn->data, (size_t)zn->len, &r->r, r->err,
                            sizeof(r->err)) == 0)
        r->ok = 1;
    }
    kids_free(&k);
  }
  ctl_strv_free(srcs, nsrc);
  if (*n > 1)
    qsort(*out, *n, sizeof(**out), cmp_relay);
  /* behind: against the source's best relay (the newest commit time) */
  for (size_t i = 0; i < *n; i++) {
    ctl_relay_t *r = &(*out)[i];
    uint64_t best = 0;
    for (size_t j = 0; j < *n; j++) {
      const ctl_relay_t *q = &(*out)[j];
      if (q->ok && strcmp(q->source, r->source) == 0 &&
          q->r.newest_ts_ms > best)
        best = q->r.newest_ts_ms;
    }
    r->behind_s = r->ok && best >= r->r.newest_ts_ms
                      ? (double)(best - r->r.newest_ts_ms) / 1000.0
                      : -1;
  }
  return ZOK;
}

static int cmp_coord(const void *a, const void *b) {
  const ctl_coord_t *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int ctl_coordinators(ctl_ops_t *o, ctl_coord_t **out, size_t *n) {
  char base[HD_GROUP_PATH_MAX];
  kids_t k;
  *out = NULL;
  *n = 0;
  hd_path_election(base, sizeof(base), o->cluster);
  int rc = kids_read(o, base, NULL, NULL, &k);
  if (rc != ZOK)
    return rc;
  *out = hd_calloc(k.n ? k.n : 1, sizeof(**out));
  for (size_t i = 0; i < k.n; i++) {
    char prefix[8];
    const ctl_znode_t *zn = &k.zn[i];
    ctl_coord_t *c = &(*out)[*n];
    if (zn->rc == ZNONODE ||
        hd_seq_name_split(k.names[i], prefix, sizeof(prefix), &c->seq) < 0)
      continue; /* gone meanwhile, or not an election node */
    snprintf(c->node, sizeof(c->node), "%s", k.names[i]);
    if (zn->rc != ZOK)
      snprintf(c->err, sizeof(c->err), "%s: %s", k.paths[i],
               ctl_zerror(zn->rc));
    else if (hd_election_parse(zn->data, (size_t)zn->len, &c->e, c->err,
                               sizeof(c->err)) == 0)
      c->ok = 1;
    (*n)++;
  }
  kids_free(&k);
  qsort(*out, *n, sizeof(**out), cmp_coord);
  return ZOK;
}

int ctl_group_names(ctl_ops_t *o, char ***names, size_t *n) {
  char path[HD_GROUP_PATH_MAX];
  hd_path_groups(path, sizeof(path), o->cluster);
  int rc = ctl_zk_children(o, path, names, n);
  return rc == ZNONODE ? ZOK : rc;
}

static int cmp_member(const void *a, const void *b) {
  const ctl_member_t *x = a, *y = b;
  int c = strcmp(x->m.id, y->m.id);
  if (c)
    return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void first_err(ctl_group_t *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void first_err(ctl_group_t *g, const char *fmt, ...) {
  if (g->err[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g->err, sizeof(g->err), fmt, ap);
  va_end(ap);
}

typedef struct {
  ctl_group_t *g;
  const char *dir;
} partkeep_t;

/* kids_read()'s keep for a partition's nodes: a child that names no
 * partition of the group is reported (first_err) and not read. */
static int keep_partition(void *ctx, const char *name) {
  const partkeep_t *pk = ctx;
  uint32_t p;
  if (hd_partition_name_parse(name, pk->g->g.partitions, &p) == 0)
    return 1;
  first_err(pk->g, "%s/%s: not a partition of %u", pk->dir, name,
            pk->g->g.partitions);
  return 0;
}

/* Read the children of dir that name partitions of g into per-partition
 * slots: data[p] (NULL when absent), versions. @returns ZOK or a code. */
static int read_partition_nodes(ctl_ops_t *o, ctl_group_t *g, const char *dir,
                                ctl_znode_t *slots, int *present) {
  partkeep_t pk = {g, dir};
  kids_t k;
  int rc = kids_read(o, dir, keep_partition, &pk, &k);
  for (size_t i = 0; i < k.n; i++) { /* k.n is 0 when rc is not ZOK */
    uint32_t p = 0;
    /* kept by keep_partition(): it parses */
    hd_partition_name_parse(k.names[i], g->g.partitions, &p);
    if (k.zn[i].rc == ZOK) {
      slots[p] = k.zn[i];
      present[p] = 1;
      k.zn[i].data = NULL; /* the slot's now */
    } else if (k.zn[i].rc != ZNONODE && rc == ZOK) {
      rc = k.zn[i].rc;
    }
  }
  kids_free(&k);
  return rc;
}

int ctl_group_read(ctl_ops_t *o, const char *group, unsigned what,
                   ctl_group_t *g, char *err, size_t errlen) {
  char path[HD_GROUP_PATH_MAX];
  char *data = NULL;
  int len, rc;
  struct Stat st;
  memset(g, 0, sizeof(*g));
  snprintf(g->name, sizeof(g->name), "%s", group);
  hd_path_group(path, sizeof(path), o->cluster, group);
  rc = ctl_zk_get(o, path, &data, &len, &st);
  if (rc == ZNONODE) {
    snprintf(err, errlen, "no group '%s' in cluster '%s' (%s)", group,
             o->cluster, path);
    return 1;
  }
  if (rc != ZOK) {
    snprintf(err, errlen, "%s: %s", path, ctl_zerror(rc));
    return -1;
  }
  char perr[300];
  if (hd_group_parse(data, (size_t)len, &g->g, perr, sizeof(perr)) < 0) {
    first_err(g, "%s: %s", path, perr);
    free(data);
    return 0;
  }
  free(data);
  g->ok = 1;
  uint32_t n = g->g.partitions;

  if (what & CTL_G_MEMBERS) {
    kids_t k;
    hd_path_members(path, sizeof(path), o->cluster, group);
    rc = kids_read(o, path, NULL, NULL, &k);
    if (rc != ZOK) {
      snprintf(err, errlen, "%s: %s", path, ctl_zerror(rc));
      return -1;
    }
    g->members = hd_calloc(k.n ? k.n : 1, sizeof(ctl_member_t));
    for (size_t i = 0; i < k.n; i++) {
      const ctl_znode_t *zn = &k.zn[i];
      ctl_member_t *m = &g->members[g->nmembers];
      if (zn->rc == ZNONODE) /* left meanwhile */
        continue;
      snprintf(m->node, sizeof(m->node), "%s", k.names[i]);
      char id[HD_REG_NAME_MAX];
      if (hd_seq_name_split(k.names[i], id, sizeof(id), &m->seq) < 0)
        snprintf(m->err, sizeof(m->err), "%s: not <agent.id>_<sequence>",
                 k.paths[i]);
      else if (zn->rc != ZOK)
        snprintf(m->err, sizeof(m->err), "%s: %s", k.paths[i],
                 ctl_zerror(zn->rc));
      else if (hd_member_parse(zn->data, (size_t)zn->len, &m->m, perr,
                               sizeof(perr)) < 0)
        snprintf(m->err, sizeof(m->err), "%s: %s", k.paths[i], perr);
      else
        m->ok = 1;
      if (!m->ok) {
        first_err(g, "%s", m->err);
        snprintf(m->m.id, sizeof(m->m.id), "%s", k.names[i]);
      }
      g->nmembers++;
    }
    kids_free(&k);
    qsort(g->members, g->nmembers, sizeof(ctl_member_t), cmp_member);
  }

  if (what & CTL_G_ASSIGNMENT) {
    hd_path_assignment(path, sizeof(path), o->cluster, group);
    rc = ctl_zk_get(o, path, &data, &len, &st);
    if (rc == ZOK) {
      g->as_json = ctl_json_raw(data, (size_t)len);
      if (hd_assignment_parse(data, (size_t)len, &g->as, perr, sizeof(perr)) <
          0)
        first_err(g, "%s: %s", path, perr);
      else if (g->as.partitions != n) {
        first_err(g, "%s: for %u partitions, the group has %u", path,
                  g->as.partitions, n);
        hd_assignment_free(&g->as);
      } else
        g->has_assignment = 1;
      free(data);
    } else if (rc != ZNONODE) {
      snprintf(err, errlen, "%s: %s", path, ctl_zerror(rc));
      return -1;
    }
  }

  ctl_znode_t *slots = NULL;
  int *present = NULL;
  if (what & (CTL_G_OWNERS | CTL_G_CKPTS)) {
    slots = hd_calloc(n, sizeof(*slots));
    present = hd_calloc(n, sizeof(int));
  }
  if (what & CTL_G_OWNERS) {
    g->owners = hd_calloc(n, sizeof(ctl_owner_t));
    hd_path_owners(path, sizeof(path), o->cluster, group);
    memset(present, 0, n * sizeof(int));
    rc = read_partition_nodes(o, g, path, slots, present);
    for (uint32_t p = 0; p < n; p++) {
      if (!present[p])
        continue;
      ctl_owner_t *ow = &g->owners[p];
      ow->s.present = 1;
      if (hd_owner_parse(slots[p].data, (size_t)slots[p].len, &ow->o, perr,
                         sizeof(perr)) < 0) {
        snprintf(ow->s.err, sizeof(ow->s.err), "%s", perr);
        first_err(g, "%s/%u: %s", path, p, perr);
      } else
        ow->s.ok = 1;
      free(slots[p].data);
      slots[p].data = NULL;
    }
    if (rc != ZOK) {
      snprintf(err, errlen, "%s: %s", path, ctl_zerror(rc));
      free(slots);
      free(present);
      return -1;
    }
  }
  if (what & CTL_G_CKPTS) {
    g->ckpts = hd_calloc(n, sizeof(ctl_ckpt_t));
    hd_path_checkpoints(path, sizeof(path), o->cluster, group);
    memset(present, 0, n * sizeof(int));
    rc = read_partition_nodes(o, g, path, slots, present);
    for (uint32_t p = 0; p < n; p++) {
      if (!present[p])
        continue;
      ctl_ckpt_t *ck = &g->ckpts[p];
      ck->s.present = 1;
      ck->version = slots[p].st.version;
      ck->raw = slots[p].data;
      slots[p].data = NULL;
      if (hd_checkpoint_parse(ck->raw, (size_t)slots[p].len, &ck->c, perr,
                              sizeof(perr)) < 0) {
        snprintf(ck->s.err, sizeof(ck->s.err), "%s", perr);
        first_err(g, "%s/%u: %s", path, p, perr);
      } else
        ck->s.ok = 1;
    }
    if (rc != ZOK) {
      snprintf(err, errlen, "%s: %s", path, ctl_zerror(rc));
      free(slots);
      free(present);
      return -1;
    }
  }
  free(slots);
  free(present);

  if (what & CTL_G_DRAINS) {
    kids_t k;
    hd_path_drains(path, sizeof(path), o->cluster, group);
    rc = kids_read(o, path, NULL, NULL, &k);
    if (rc != ZOK) {
      snprintf(err, errlen, "%s: %s", path, ctl_zerror(rc));
      return -1;
    }
    g->drains = hd_calloc(k.n ? k.n : 1, sizeof(ctl_drainnode_t));
    for (size_t i = 0; i < k.n; i++) {
      const ctl_znode_t *zn = &k.zn[i];
      if (zn->rc == ZNONODE) /* gone meanwhile */
        continue;
      ctl_drainnode_t *d = &g->drains[g->ndrains++];
      snprintf(d->node, sizeof(d->node), "%s", k.names[i]);
      if (zn->rc != ZOK)
        snprintf(d->err, sizeof(d->err), "%s: %s", k.paths[i],
                 ctl_zerror(zn->rc));
      else if (hd_drain_parse(zn->data, (size_t)zn->len, &d->d, perr,
                              sizeof(perr)) < 0)
        snprintf(d->err, sizeof(d->err), "%s: %s", k.paths[i], perr);
      else
        d->ok = 1;
      if (!d->ok)
        first_err(g, "%s", d->err);
    }
    kids_free(&k);
  }
  return 0;
}

int ctl_group_load(ctl_ops_t *o, const char *group, unsigned what,
                   ctl_group_t *g) {
  char err[600];
  int r = ctl_group_read(o, group, what, g, err, sizeof(err));
  if (r != 0 || !g->ok) {
    fprintf(stderr, "%s: %s\n", o->prog, r ? err : g->err);
    return HD_EXIT_USAGE;
  }
  return 0;
}

void ctl_group_free(ctl_group_t *g) {
  free(g->members);
  hd_assignment_free(&g->as);
  json_decref(g->as_json);
  free(g->owners);
  if (g->ckpts)
    for (uint32_t p = 0; p < g->g.partitions; p++)
      free(g->ckpts[p].raw);
  free(g->ckpts);
  free(g->drains);
  memset(g, 0, sizeof(*g));
}

int ctl_group_member(const ctl_group_t *g, const char *id) {
  int best = -1;
  for (size_t i = 0; i < g->nmembers; i++)
    if (g->members[i].ok && strcmp(g->members[i].m.id, id) == 0 &&
        (best < 0 || g->members[i].seq > g->members[best].seq))
      best = (int)i;
  return best;
}

size_t ctl_group_live_ids(const ctl_group_t *g) {
  size_t n = 0;
  for (size_t i = 0; i < g->nmembers; i++)
    if (i == 0 || strcmp(g->members[i].m.id, g->members[i - 1].m.id) != 0)
      n++;
  return n;
}

int ctl_group_drained(const ctl_group_t *g, const ctl_member_t *m) {
  for (size_t i = 0; i < g->ndrains; i++)
    if (g->drains[i].ok && strcmp(g->drains[i].d.agent, m->m.id) == 0 &&
        g->drains[i].d.session == m->m.session)
      return 1;
  return 0;
}

/* -------------------------------------------------- the coordinator */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  hd_buf_t *b = ud;
  size_t n = size * nmemb;
  if (b->len + n > 64u << 20)
    return 0; /* a /status this large is not a coordinator's: stop */
  hd_buf_printf(b, "%.*s", (int)n, p);
  return n;
}

int ctl_http_get(ctl_ops_t *o, const char *hostport, const char *path,
                 char **body, char *err, size_t errlen) {
  char host[256], url[600], cerr[CURL_ERROR_SIZE] = "";
  uint16_t port;
  *body = NULL;
  if (hd_parse_hostport(hostport, host, sizeof(host), &port) < 0) {
    snprintf(err, errlen, "'%s' is not host:port", hostport);
    return -1;
  }
  /* A coordinator bound to a wildcard address is reached on this host's
   * loopback: the election node names no other. */
  if (hd_host_is_wildcard(host))
    snprintf(host, sizeof(host), "%s", strchr(host, ':') ? "::1" : "127.0.0.1");
  char hp[300];
  hd_fmt_hostport(host, port, hp, sizeof(hp));
  snprintf(url, sizeof(url), "http://%s%s", hp, path);
  if (!o->curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      snprintf(err, errlen, "libcurl does not initialise");
      return -1;
    }
    o->curl_ready = 1;
  }
  CURL *c = curl_easy_init();
  if (c == NULL) {
    snprintf(err, errlen, "libcurl: no handle");
    return -1;
  }
  hd_buf_t b = {0};
  long connect_ms = o->timeout_ms < 2000 ? o->timeout_ms : 2000;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  /* straight to the coordinator, whatever http_proxy the shell has */
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "GET %s: %s", url,
             cerr[0] ? cerr : curl_easy_strerror(rc));
    free(b.p);
    return -1;
  }
  if (status != 200) {
    snprintf(err, errlen, "GET %s: HTTP status %ld", url, status);
    free(b.p);
    return -1;
  }
  *body = b.p ? b.p : hd_strdup("");
  return 0;
}

void ctl_nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

json_t *ctl_leader_status(ctl_ops_t *o, const ctl_coord_t *cs, size_t n,
                          size_t *who, char *err, size_t errlen) {
  if (n == 0) {
    snprintf(err, errlen,
             "no coordinator is running (no node under "
             "/herald/%s/coordinator/election)",
             o->cluster);
    return NULL;
  }
  uint64_t deadline = hd_now_ms() + (uint64_t)o->timeout_ms;
  hd_buf_t why = {0};
  for (size_t i = 0; i < n; i++) {
    char e[600];
    if (!cs[i].ok) {
      hd_buf_printf(&why, "%s%s", why.len ? "; " : "", cs[i].err);
      continue;
    }
    for (;;) {
      char *body = NULL;
      if (ctl_http_get(o, cs[i].e.http, "/status", &body, e, sizeof(e)) < 0) {
        hd_buf_printf(&why, "%s%s %s", why.len ? "; " : "", cs[i].e.id, e);
        break;
      }
      json_error_t je;
      json_t *st = json_loads(body, 0, &je);
      free(body);
      if (!json_is_object(st)) {
        hd_buf_printf(&why, "%s%s: /status is not a JSON object",
                      why.len ? "; " : "", cs[i].e.id);
        json_decref(st);
        break;
      }
      if (!json_is_true(json_object_get(st, "leader"))) {
        json_decref(st);
        hd_buf_printf(&why, "%s%s does not lead", why.len ? "; " : "",
                      cs[i].e.id);
        break;
      }
      /* A leader that just took over has no lag sample yet: it takes one
       * per coordinator.lag_interval. */
      if (json_is_null(json_object_get(st, "lag_sampled_ms")) &&
          hd_now_ms() + 200 < deadline) {
        json_decref(st);
        ctl_nap_ms(200);
        continue;
      }
      free(why.p);
      *who = i;
      return st;
    }
  }
  snprintf(err, errlen, "no leading coordinator answered: %s",
           why.p ? why.p : "");
  free(why.p);
  return NULL;
}

/* ------------------------------------------------------------ output */

struct ctl_table {
  size_t ncols, ncells, cap;
  char **cells;
};

ctl_table_t *ctl_table_new(size_t ncols) {
  ctl_table_t *t = hd_calloc(1, sizeof(*t));
  t->ncols = ncols;
  return t;
}

void ctl_table_cell(ctl_table_t *t, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = hd_malloc(len > 0 ? (size_t)len + 1 : 1);
  if (len > 0)
    vsnprintf(s, (size_t)len + 1, fmt, ap2);
  else
    s[0] = '\0';
  va_end(ap2);
  if (t->ncells == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 64;
    t->cells = hd_realloc(t->cells, t->cap * sizeof(char *));
  }
  t->cells[t->ncells++] = s;
}

void ctl_table_print(const ctl_table_t *t, FILE *out, int indent) {
  size_t *w = hd_calloc(t->ncols, sizeof(size_t));
  for (size_t i = 0; i < t->ncells; i++) {
    size_t l = strlen(t->cells[i]);
    if (l > w[i % t->ncols])
      w[i % t->ncols] = l;
  }
  for (size_t i = 0; i < t->ncells; i++) {
    size_t col = i % t->ncols;
    int last = col == t->ncols - 1 || i == t->ncells - 1;
    if (col == 0)
      fprintf(out, "%*s", indent, "");
    if (last)
      fprintf(out, "%s\n", t->cells[i]);
    else
      fprintf(out, "%-*s  ", (int)w[col], t->cells[i]);
  }
  free(w);
}

void ctl_table_free(ctl_table_t *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->ncells; i++)
    free(t->cells[i]);
  free(t->cells);
  free(t);
}

const char *ctl_fmt_time(uint64_t ms, char *buf, size_t n) {
  if (ms == 0) {
    snprintf(buf, n, "-");
    return buf;
  }
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char day[32];
  strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, n, "%s.%03uZ", day, (unsigned)(ms % 1000));
  return buf;
}

const char *ctl_fmt_secs(double s, char *buf, size_t n) {
  if (s < 0)
    snprintf(buf, n, "-");
  else if (s < 60)
    snprintf(buf, n, "%.2fs", s);
  else if (s < 3600)
    snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
  else
    snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
  return buf;
}

void ctl_json_print(json_t *v) {
  json_dumpf(v, stdout, JSON_INDENT(2));
  fputc('\n', stdout);
}

json_t *ctl_json_raw(const char *data, size_t len) {
  json_error_t je;
  json_t *v = json_loadb(data, len, 0, &je);
  return v ? v : json_null();
}
