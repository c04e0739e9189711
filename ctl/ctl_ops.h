/*
 * ctl_ops.h - what heraldctl's operator commands (status, lag, checkpoint,
 * drain) share: their common options (--zk, --cluster, --config, --json,
 * --connect-timeout, --group, --help) and their parsing, the ZooKeeper
 * session, reading the cluster's nodes (relays, coordinators, a group's
 * members, assignment, owners, checkpoints and drain nodes,
 * docs/zookeeper.md), finding the leading
 * coordinator and asking it for /status over HTTP (libcurl), and printing
 * aligned tables.
 *
 * Everything runs on the command's one thread; the ZooKeeper client's own
 * threads only complete reads that ctl_ops waits for.
 */
#ifndef CTL_OPS_H
#define CTL_OPS_H

#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hd_group.h"
#include "hd_http.h" /* hd_buf_t */
#include "hd_reg.h"
#include "hd_zk.h"

/* ----------------------------------------------------------- options */

/* getopt_long codes of the common options: above any character. */
enum {
  CTL_OPT_ZK = 0x1000,
  CTL_OPT_CLUSTER,
  CTL_OPT_CONFIG,
  CTL_OPT_JSON,
  CTL_OPT_CONNECT_TIMEOUT,
  CTL_OPT_GROUP,
  CTL_OPT_ZK_AUTH
};

/* The common options' rows of a command's struct option table: also
 * --group and --help, which every operator command takes (each says in
 * its own usage what --group means to it). */
#define CTL_OPS_OPTIONS                                                        \
  {"zk", required_argument, NULL, CTL_OPT_ZK},                                 \
      {"cluster", required_argument, NULL, CTL_OPT_CLUSTER},                   \
      {"config", required_argument, NULL, CTL_OPT_CONFIG},                     \
      {"json", no_argument, NULL, CTL_OPT_JSON},                               \
      {"connect-timeout", required_argument, NULL, CTL_OPT_CONNECT_TIMEOUT},   \
      {"group", required_argument, NULL, CTL_OPT_GROUP},                       \
      {"zk-auth", required_argument, NULL, CTL_OPT_ZK_AUTH}, {                 \
    "help", no_argument, NULL, 'h'                                             \
  }

/* Their --help lines, for the commands' usage texts. */
#define CTL_OPS_USAGE                                                          \
  "  --zk HOSTS               the ZooKeeper ensemble (host:port,...)\n"        \
  "  --cluster NAME           the herald cluster (/herald/NAME)\n"             \
  "  --config FILE            take zookeeper.hosts, zookeeper.auth_file and\n" \
  "                           cluster from a herald config of any kind\n"      \
  "                           (the options win)\n"                             \
  "  --zk-auth FILE           ZooKeeper credentials, a file whose first "      \
  "line\n"                                                                     \
  "                           is user:password (zookeeper.auth_file)\n"        \
  "  --connect-timeout SECONDS  how long to wait for ZooKeeper and for the\n"  \
  "                           coordinator's answer (default 5)\n"

typedef struct {
  const char *prog; /* "heraldctl status", for messages */
  const char *hosts;
  const char *cluster;
  const char *config;
  const char *auth_file; /* --zk-auth, else zookeeper.auth_file of --config */
  const char *group;     /* --group (checked: a name), NULL when not given */
  int json;
  int timeout_ms;
  char *conf_hosts, *conf_cluster; /* from --config (owned) */
  char *conf_auth_file;            /* from --config (owned) */
  hd_zk_t *zk;
  int curl_ready;
} ctl_ops_t;

/** @brief Defaults (5 s timeout); nothing to free yet. */
void ctl_ops_init(ctl_ops_t *o, const char *prog);

/**
 * @brief A command's own option, as getopt_long() returned it (c) with
 *        its optarg (arg); ctx is the command's.
 * @returns 0 taken; -1 not an option of the command; HD_EXIT_USAGE after a
 *          one-line message for a bad value.
 */
typedef int (*ctl_opt_fn)(void *ctx, int c, const char *arg);

/**
 * @brief Parse argv's options against opts (CTL_OPS_OPTIONS, then the
 *        command's own rows): the common ones into o, --group checked
 *        into o->group, -h/--help prints usage; every other goes to own
 *        (NULL: the command has none), and what own does not take is a
 *        usage error. At most max_operands operands may follow.
 * @returns -1 to go on (the operands from optind), or the exit code to
 *          return (0 after --help).
 */
int ctl_ops_parse(ctl_ops_t *o, int argc, char **argv,
                  const struct option *opts, const char *usage, ctl_opt_fn own,
                  void *ctx, int max_operands);

/**
 * @brief Load --config, check that ZooKeeper and the cluster are known,
 *        and connect within the timeout.
 * @returns 0 connected; HD_EXIT_USAGE after a one-line message (a usage
 *          problem, or ZooKeeper unreachable), o then closed already.
 */
int ctl_ops_connect(ctl_ops_t *o);

/** @brief Close the session, free what o holds. */
void ctl_ops_close(ctl_ops_t *o);

/** @brief 1 when s is a herald name (letters, digits, '-', '_', '.',
 *         at most 128, not "." or ".."). */
int ctl_name_ok(const char *s);

/* --------------------------------------------------------- ZooKeeper */

/**
 * @brief A node's whole data (NUL-terminated, *data freed by the caller)
 *        and its stat. @returns ZOK, ZNONODE or another ZooKeeper code.
 */
int ctl_zk_get(ctl_ops_t *o, const char *path, char **data, int *len,
               struct Stat *st);

/**
 * @brief The children of path, sorted (bytewise), in *names[*n] (free
 *        with ctl_strv_free). @returns ZOK, ZNONODE (then none) or another
 *        ZooKeeper code.
 */
int ctl_zk_children(ctl_ops_t *o, const char *path, char ***names, size_t *n);
void ctl_strv_free(char **v, size_t n);

/* One node of ctl_zk_get_many(). */
typedef struct {
  int rc; /* ZOK, ZNONODE, ... */
  char *data;
  int len;
  struct Stat st;
} ctl_znode_t;

/**
 * @brief Read n nodes, many requests in flight at once (a group's
 *        checkpoints are one node per partition). out[n] is filled; free
 *        each out[i].data.
 */
void ctl_zk_get_many(ctl_ops_t *o, char *const *paths, size_t n,
                     ctl_znode_t *out);

/** @brief ZooKeeper's text for a code, as "what (ZCODE)". */
const char *ctl_zerror(int rc);

/* --------------------------------------------------------- the nodes */

typedef struct {
  hd_reg_t r;
  int ok;                       /* the data parsed */
  char name[HD_REG_NAME_MAX];   /* the node's name (relay id) */
  char source[HD_REG_NAME_MAX]; /* its parent's name */
  char err[300];
  double behind_s; /* the source's best newest_ts_ms minus this one's */
} ctl_relay_t;

/**
 * @brief Every relay node of the cluster (source NULL) or of one source,
 *        by source then id; behind_s computed per source.
 * @returns ZOK (none is fine) or a ZooKeeper code.
 */
int ctl_relays(ctl_ops_t *o, const char *source, ctl_relay_t **out, size_t *n);

typedef struct {
  char node[64]; /* n_0000000003 */
  int64_t seq;
  hd_election_t e;
  int ok;
  char err[300];
} ctl_coord_t;

/** @brief The election's nodes, lowest sequence (the leader) first.
 *  @returns ZOK or a ZooKeeper code. */
int ctl_coordinators(ctl_ops_t *o, ctl_coord_t **out, size_t *n);

typedef struct {
  char node[HD_REG_NAME_MAX + 16];
  int64_t seq;
  hd_member_t m;
  int ok;
  char err[1024]; /* path: what is wrong */
} ctl_member_t;

typedef struct {
  int present;   /* the node exists */
  int ok;        /* and parsed */
  char err[300]; /* why not (the path is the partition's) */
} ctl_nodestate_t;

typedef struct {
  ctl_nodestate_t s;
  hd_owner_t o;
} ctl_owner_t;

typedef struct {
  ctl_nodestate_t s;
  hd_checkpoint_t c;
  int version; /* the znode's, for a compare-and-swap */
  char *raw;   /* the data as read (owned) */
} ctl_ckpt_t;

typedef struct {
  char node[HD_REG_NAME_MAX];
  hd_drain_t d;
  int ok;
  char err[1024]; /* path: what is wrong */
} ctl_drainnode_t;

/* What ctl_group_read() reads besides the group node. */
enum {
  CTL_G_MEMBERS = 1,
  CTL_G_ASSIGNMENT = 2,
  CTL_G_OWNERS = 4,
  CTL_G_CKPTS = 8,
  CTL_G_DRAINS = 16,
  CTL_G_ALL = 31
};

typedef struct {
  char name[HD_REG_NAME_MAX];
  hd_group_t g;
  int ok;        /* the group node parsed (else err; nothing else read) */
  char err[300]; /* the first problem with the group's nodes, or "" */
  ctl_member_t *members;
  size_t nmembers; /* sorted by id, then sequence */
  int has_assignment;
  hd_assignment_t as;
  json_t *as_json;     /* the assignment as read (owned), NULL when none */
  ctl_owner_t *owners; /* [g.partitions] */
  ctl_ckpt_t *ckpts;   /* [g.partitions] */
  ctl_drainnode_t *drains;
  size_t ndrains;
} ctl_group_t;

/**
 * @brief Read one group's nodes.
 * @returns 0; 1 the group does not exist; -1 a ZooKeeper failure (err
 *          says what). A node that does not parse is not a failure: its
 *          entry says why (and g->err has the first such problem).
 */
int ctl_group_read(ctl_ops_t *o, const char *group, unsigned what,
                   ctl_group_t *g, char *err, size_t errlen);
void ctl_group_free(ctl_group_t *g);

/**
 * @brief ctl_group_read() for a command that cannot go on without the
 *        group: a failure, no such group, or a group node that does not
 *        parse is printed on stderr as "prog: what".
 * @returns 0 read; HD_EXIT_USAGE after the message. Free g with
 *          ctl_group_free() in either case.
 */
int ctl_group_load(ctl_ops_t *o, const char *group, unsigned what,
                   ctl_group_t *g);

/** @brief The group names of the cluster, sorted. @returns ZOK or a code. */
int ctl_group_names(ctl_ops_t *o, char ***names, size_t *n);

/** @brief The index of the newest member node of agent id, or -1. */
int ctl_group_member(const ctl_group_t *g, const char *id);

/** @brief How many distinct ids the live members have. */
size_t ctl_group_live_ids(const ctl_group_t *g);

/** @brief Whether member m's session has a drain node in g. */
int ctl_group_drained(const ctl_group_t *g, const ctl_member_t *m);

/* -------------------------------------------------- the coordinator */

/**
 * @brief GET http://hostport<path>, within o's timeout.
 * @returns 0 with *body (NUL-terminated, freed by the caller), or -1 with
 *          err naming the URL and what failed (also a status other than
 *          200).
 */
int ctl_http_get(ctl_ops_t *o, const char *hostport, const char *path,
                 char **body, char *err, size_t errlen);

/**
 * @brief The leading coordinator's /status: the coordinators are asked in
 *        election order and the first that says it leads answers; waits
 *        (within the timeout) for its first lag sample.
 * @param who  set to the index in cs of the one that answered
 * @returns the parsed /status (json_decref it), or NULL with err saying
 *          why no leader answered.
 */
json_t *ctl_leader_status(ctl_ops_t *o, const ctl_coord_t *cs, size_t n,
                          size_t *who, char *err, size_t errlen);

/** @brief Sleep ms milliseconds (the commands' polls). */
void ctl_nap_ms(int ms);

/* ------------------------------------------------------------ output */

typedef struct ctl_table ctl_table_t;

/** @brief A table of ncols columns; the first row added is the header. */
ctl_table_t *ctl_table_new(size_t ncols);
/** @brief Append one cell (printf-style); rows wrap every ncols cells. */
void ctl_table_cell(ctl_table_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** @brief Print with columns aligned (two spaces apart), indented. */
void ctl_table_print(const ctl_table_t *t, FILE *out, int indent);
void ctl_table_free(ctl_table_t *t);

/** @brief Unix ms as "2026-12-02T10:11:12.345Z" into buf; "-" for 0. */
const char *ctl_fmt_time(uint64_t ms, char *buf, size_t n);
/** @brief Seconds as "0.25s", "1m05s", "2h07m"; "-" when s < 0. */
const char *ctl_fmt_secs(double s, char *buf, size_t n);

/** @brief Print v on stdout, indented, with a final newline. */
void ctl_json_print(json_t *v);

/** @brief A parse of the ZooKeeper node data, or null when it is not
 *         JSON (for --json outputs that show a node as read). New
 *         reference. */
json_t *ctl_json_raw(const char *data, size_t len);

#endif
