/*
 * heraldctl zk-secure: give an existing cluster's znodes the ACL that
 * programs with zookeeper.auth_file create new ones with (all permissions
 * for the credentials' user, none for anyone else; docs/zookeeper.md,
 * Security). Nodes made before the credentials were turned on keep the
 * open ACL they were created with until this is run.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_ops.h"
#include "hd_cli.h"

#define PROG "heraldctl zk-secure"

static const char usage[] =
    "Usage: heraldctl zk-secure --zk-auth FILE [--execute] [options]\n"
    "\n"
    "Sets the ACL of the cluster's root /herald/NAME and of every node\n"
    "below it to all permissions for the user of --zk-auth (the cluster's\n"
    "zookeeper.auth_file) and none for anyone else: what programs with\n"
    "zookeeper.auth_file give the nodes they create, for the nodes an\n"
    "open cluster made before. Run it once every program has the auth\n"
    "file: from then on a program without it is refused. Without\n"
    "--execute, prints the nodes that would change.\n"
    "\n"
    "Options:\n" CTL_OPS_USAGE
    "  --execute                change the ACLs (default: only print)\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 every node secured (or nothing to do, or printed); 1 a\n"
    "node could not be changed; 2 bad usage, no --zk-auth, ZooKeeper\n"
    "unreachable or no such cluster.\n";

typedef struct {
  int execute;
  size_t nodes, open, changed, failed;
} secure_t;

static int secure_option(void *ctx, int c, const char *arg) {
  (void)arg;
  secure_t *s = ctx;
  if (c != 'x')
    return -1;
  s->execute = 1;
  return 0;
}

/* Whether acl lets anyone but an authenticated user in. */
static int acl_open(const struct ACL_vector *acl) {
  for (int32_t i = 0; i < acl->count; i++)
    if (strcmp(acl->data[i].id.scheme, "digest") != 0)
      return 1;
  return 0;
}

/* path and every node below it, children before their parent: a run cut
 * short leaves the cluster root open, so that it does not look done.
 * @returns 0, or HD_EXIT_USAGE when a node cannot be read at all (named
 * on stderr). */
static int walk(ctl_ops_t *o, secure_t *s, const char *path) {
  zhandle_t *zh = hd_zk_handle(o->zk);
  struct ACL_vector acl;
  struct Stat st;
  int rc = zoo_get_acl(zh, path, &acl, &st);
  if (rc == ZNONODE)
    return 0; /* gone meanwhile (an ephemeral node) */
  if (rc != ZOK) {
    fprintf(stderr, PROG ": reading the ACL of %s: %s\n", path, ctl_zerror(rc));
    return HD_EXIT_USAGE;
  }
  int open = acl_open(&acl);
  deallocate_ACL_vector(&acl);
  char **kids = NULL;
  size_t n = 0;
  rc = ctl_zk_children(o, path, &kids, &n);
  if (rc != ZOK && rc != ZNONODE) {
    fprintf(stderr, PROG ": listing %s: %s\n", path, ctl_zerror(rc));
    return HD_EXIT_USAGE;
  }
  int out = 0;
  for (size_t i = 0; i < n && out == 0; i++) {
    char child[1024];
    snprintf(child, sizeof(child), "%s/%s", path, kids[i]);
    out = walk(o, s, child);
  }
  ctl_strv_free(kids, n);
  if (out)
    return out;
  s->nodes++;
  if (!open)
    return 0;
  s->open++;
  if (!s->execute) {
    printf("open: %s\n", path);
    return 0;
  }
  /* "auth" ids: the session's own digest identity, as on create. */
  rc = zoo_set_acl(zh, path, -1, &ZOO_CREATOR_ALL_ACL);
  if (rc == ZOK) {
    s->changed++;
    printf("secured: %s\n", path);
  } else if (rc != ZNONODE) {
    s->failed++;
    fprintf(stderr, PROG ": setting the ACL of %s: %s\n", path, ctl_zerror(rc));
  }
  return 0;
}

int ctl_zk_secure(int argc, char **argv) {
  static const struct option opts[] = {
      CTL_OPS_OPTIONS, {"execute", no_argument, NULL, 'x'}, {NULL, 0, NULL, 0}};
  ctl_ops_t o;
  ctl_ops_init(&o, PROG);
  secure_t s = {0};
  int rc = ctl_ops_parse(&o, argc, argv, opts, usage, secure_option, &s, 0);
  if (rc >= 0)
    return rc;
  if ((rc = ctl_ops_connect(&o)) != 0)
    return rc;
  if (o.auth_file == NULL) {
    ctl_ops_close(&o);
    return hd_cli_usage(PROG, "needs --zk-auth FILE (or a --config with "
                              "zookeeper.auth_file): the credentials the "
                              "nodes are given to");
  }
  char root[300];
  snprintf(root, sizeof(root), "/herald/%s", o.cluster);
  struct Stat st;
  int zrc = zoo_exists(hd_zk_handle(o.zk), root, 0, &st);
  if (zrc != ZOK) {
    fprintf(stderr, PROG ": %s: %s\n", root,
            zrc == ZNONODE ? "no such cluster" : ctl_zerror(zrc));
    ctl_ops_close(&o);
    return HD_EXIT_USAGE;
  }
  rc = walk(&o, &s, root);
  if (rc == 0) {
    printf("%zu nodes, %zu open%s", s.nodes, s.open,
           s.execute || s.open == 0 ? ""
                                    : " (nothing changed: give --execute)");
    if (s.execute)
      printf(", %zu secured, %zu failed", s.changed, s.failed);
    printf("\n");
    rc = s.failed ? HD_EXIT_FAIL : HD_EXIT_OK;
  }
  ctl_ops_close(&o);
  return rc;
}
