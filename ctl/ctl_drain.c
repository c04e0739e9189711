/*
 * heraldctl drain: move an agent's partitions away before maintenance.
 * It writes the drain node groups/<g>/drain/<agent.id> with the member's
 * current session (docs/zookeeper.md); the leading coordinator then
 * grants that member nothing, and drain waits until the assignment grants
 * it nothing and no owners/<p> names it. --undo deletes the node.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_ops.h"
#include "hd_cli.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_time.h"

#define PROG "heraldctl drain"
#define POLL_MS 250

static const char usage[] =
    "Usage: heraldctl drain --group G --agent ID [--undo] [--timeout S]\n"
    "                       [--no-wait] [options]\n"
    "\n"
    "Moves the partitions of agent ID (its agent.id) to the group's other\n"
    "members, before maintenance: writes the drain node\n"
    "groups/G/drain/ID for the member's current session, then waits until\n"
    "the assignment grants ID nothing and no owners/<p> names it, printing\n"
    "what it still holds. The node stays until --undo (or until that\n"
    "session ends: the coordinator then deletes it, so the agent restarted\n"
    "after maintenance gets partitions again).\n"
    "\n"
    "Options:\n" CTL_OPS_USAGE "  --group G                the consumer group\n"
    "  --agent ID               the member to drain\n"
    "  --undo                   delete the drain node: ID may get partitions\n"
    "                           again\n"
    "  --timeout S              how long to wait (default 60)\n"
    "  --no-wait                write the node and exit\n"
    "  --json                   the outcome as one JSON object\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 drained (or undone, or written with --no-wait); 1 ID is\n"
    "not a live member, or the only one that is not drained, or it still\n"
    "holds partitions at the timeout; 2 bad usage, ZooKeeper unreachable or\n"
    "no such group.\n";

/* What agent id still has: granted or pending partitions, held owners/
 * nodes, as "granted 0,1 pending 2 holds 0,1" in b. @returns how many
 * partitions are in any of them. */
static size_t still_has(const ctl_group_t *g, const char *id, hd_buf_t *b) {
  uint32_t n = g->g.partitions;
  int32_t mi = g->has_assignment ? hd_assignment_find(&g->as, id) : -1;
  const char *label[3] = {"granted", "pending", "holds"};
  size_t total = 0;
  for (int k = 0; k < 3; k++) {
    size_t cnt = 0;
    for (uint32_t p = 0; p < n; p++) {
      int in = k == 0 ? mi >= 0 && g->as.owner[p] == mi
               : k == 1
                   ? mi >= 0 && g->as.pending[p] == mi
                   : g->owners[p].s.ok && strcmp(g->owners[p].o.owner, id) == 0;
      if (!in)
        continue;
      if (cnt == 0)
        hd_buf_printf(b, "%s%s ", b->len ? " " : "", label[k]);
      if (cnt < 16)
        hd_buf_printf(b, "%s%u", cnt ? "," : "", p);
      else if (cnt == 16)
        hd_buf_printf(b, ",...");
      cnt++;
      total++;
    }
  }
  return total;
}

/* Why the leader moves nothing, when it says so (its /status group
 * "error"), as "; coordinator c1: ..." in buf; "" otherwise.
 * @returns the separator to print before buf. */
static const char *leader_says(ctl_ops_t *o, const char *group, char *buf,
                               size_t n) {
  ctl_coord_t *cs = NULL;
  size_t nc = 0, who = 0;
  char err[512];
  buf[0] = '\0';
  if (ctl_coordinators(o, &cs, &nc) != ZOK) {
    free(cs);
    return "";
  }
  json_t *st = ctl_leader_status(o, cs, nc, &who, err, sizeof(err));
  if (st == NULL) {
    snprintf(buf, n, "no leading coordinator: %s", err);
  } else {
    json_t *e = json_object_get(
        json_object_get(json_object_get(st, "groups"), group), "error");
    if (json_is_string(e))
      snprintf(buf, n, "coordinator %s: %s", cs[who].e.id,
               json_string_value(e));
  }
  json_decref(st);
  free(cs);
  return buf[0] ? "; " : "";
}

static void outcome(const ctl_ops_t *o, const char *group, const char *id,
                    const char *result, const char *path, double secs,
                    const char *left) {
  if (!o->json)
    return;
  json_t *v =
      json_pack("{s:s,s:s,s:s,s:s,s:f,s:s?}", "group", group, "agent", id,
                "result", result, "path", path, "seconds", secs, "still", left);
  ctl_json_print(v);
  json_decref(v);
}

/* The options of drain's own. */
typedef struct {
  const char *id;
  int undo, nowait;
  uint64_t timeout_s;
} drain_args_t;

static int drain_option(void *ctx, int c, const char *arg) {
  drain_args_t *a = ctx;
  switch (c) {
  case 'a':
    if (!ctl_name_ok(arg))
      return hd_cli_usage(PROG, "--agent: '%s' is not an agent.id", arg);
    a->id = arg;
    return 0;
  case 'u':
    a->undo = 1;
    return 0;
  case 'n':
    a->nowait = 1;
    return 0;
  case 'T':
    if (hd_parse_u64(arg, &a->timeout_s) < 0 || a->timeout_s == 0 ||
        a->timeout_s > 86400)
      return hd_cli_usage(PROG,
                          "--timeout: '%s' is not a number of seconds "
                          "(1-86400)",
                          arg);
    return 0;
  default:
    return -1;
  }
}

int ctl_drain(int argc, char **argv) {
  static const struct option opts[] = {
      CTL_OPS_OPTIONS,
      {"agent", required_argument, NULL, 'a'},
      {"undo", no_argument, NULL, 'u'},
      {"timeout", required_argument, NULL, 'T'},
      {"no-wait", no_argument, NULL, 'n'},
      {NULL, 0, NULL, 0}};
  ctl_ops_t o;
  ctl_ops_init(&o, PROG);
  drain_args_t a = {.timeout_s = 60};
  int rc = ctl_ops_parse(&o, argc, argv, opts, usage, drain_option, &a, 0);
  if (rc >= 0)
    return rc;
  const char *group = o.group, *id = a.id;
  int undo = a.undo, nowait = a.nowait;
  uint64_t timeout_s = a.timeout_s;
  if (group == NULL || id == NULL)
    return hd_cli_usage(PROG, "needs --group G and --agent ID");
  if (undo && nowait)
    return hd_cli_usage(PROG, "--undo does not wait: drop --no-wait");
  if ((rc = ctl_ops_connect(&o)) != 0)
    return rc;
  char path[HD_GROUP_PATH_MAX], err[600];
  hd_path_drain(path, sizeof(path), o.cluster, group, id);
  ctl_group_t g;
  rc = HD_EXIT_USAGE;
  if (ctl_group_load(&o, group, CTL_G_MEMBERS | CTL_G_DRAINS, &g) != 0)
    goto done;
  zhandle_t *zh = hd_zk_handle(o.zk);

  if (undo) {
    int zrc = zoo_delete(zh, path, -1);
    if (zrc == ZNONODE) {
      if (!o.json)
        printf("%s is not drained in group %s (no %s)\n", id, group, path);
      outcome(&o, group, id, "not drained", path, 0, NULL);
      rc = HD_EXIT_OK;
    } else if (zrc != ZOK) {
      fprintf(stderr, PROG ": deleting %s: %s\n", path, ctl_zerror(zrc));
      rc = HD_EXIT_FAIL;
    } else {
      if (!o.json)
        printf("drain of %s undone (%s deleted): the coordinator may grant "
               "it partitions again\n",
               id, path);
      outcome(&o, group, id, "undone", path, 0, NULL);
      rc = HD_EXIT_OK;
    }
    goto done;
  }

  int mi = ctl_group_member(&g, id);
  hd_buf_t names = {0};
  size_t others = 0;
  for (size_t i = 0; i < g.nmembers; i++) {
    const ctl_member_t *m = &g.members[i];
    if (!m->ok || strcmp(m->m.id, id) == 0 ||
        ctl_group_member(&g, m->m.id) != (int)i)
      continue; /* only the newest node of each other id */
    hd_buf_printf(&names, "%s%s", names.len ? ", " : "", m->m.id);
    others += !ctl_group_drained(&g, m);
  }
  if (mi < 0) {
    fprintf(stderr, PROG ": %s is not a live member of group %s (live: %s)\n",
            id, group, names.p ? names.p : "none");
    free(names.p);
    rc = HD_EXIT_FAIL;
    goto done;
  }
  if (others == 0) {
    fprintf(stderr,
            PROG ": %s is the only live member of group %s that is not "
                 "drained: its partitions would have nowhere to go\n",
            id, group);
    free(names.p);
    rc = HD_EXIT_FAIL;
    goto done;
  }
  free(names.p);

  hd_drain_t d;
  memset(&d, 0, sizeof(d));
  snprintf(d.agent, sizeof(d.agent), "%s", id);
  d.session = g.members[mi].m.session;
  d.since_ms = hd_now_ms();
  char *json = NULL;
  if (hd_drain_build(&d, &json, err, sizeof(err)) < 0) {
    fprintf(stderr, PROG ": %s\n", err);
    goto done;
  }
  char dir[HD_GROUP_PATH_MAX];
  hd_path_drains(dir, sizeof(dir), o.cluster, group);
  int zrc = hd_zk_ensure_path(o.zk, dir);
  if (zrc == ZOK)
    zrc = zoo_create(zh, path, json, (int)strlen(json), hd_zk_acl(o.zk), 0,
                     NULL, 0);
  if (zrc == ZNODEEXISTS) {
    /* One already there: ours to keep if it is for this session, else a
     * stale one (of the agent's previous run) to replace. */
    char *old = NULL;
    int len;
    struct Stat st;
    hd_drain_t od;
    zrc = ctl_zk_get(&o, path, &old, &len, &st);
    if (zrc == ZOK &&
        hd_drain_parse(old, (size_t)len, &od, err, sizeof(err)) == 0 &&
        od.session == d.session) {
      if (!o.json)
        printf("%s is being drained already (since %s)\n", id,
               ctl_fmt_time(od.since_ms, err, sizeof(err)));
    } else if (zrc == ZOK) {
      zrc = zoo_set(zh, path, json, (int)strlen(json), st.version);
    }
    free(old);
  }
  free(json);
  if (zrc != ZOK) {
    fprintf(stderr, PROG ": writing %s: %s\n", path, ctl_zerror(zrc));
    rc = HD_EXIT_FAIL;
    goto done;
  }
  if (nowait) {
    if (!o.json)
      printf("drain node written: %s (session 0x%" PRIx64 ")\n", path,
             d.session);
    outcome(&o, group, id, "written", path, 0, NULL);
    rc = HD_EXIT_OK;
    goto done;
  }

  uint64_t t0 = hd_now_ms(), deadline = t0 + timeout_s * 1000;
  hd_buf_t last = {0};
  int member_left = 0;
  for (;;) {
    ctl_group_t w;
    if (ctl_group_load(&o, group,
                       CTL_G_MEMBERS | CTL_G_ASSIGNMENT | CTL_G_OWNERS,
                       &w) != 0) {
      ctl_group_free(&w);
      free(last.p);
      rc = HD_EXIT_FAIL;
      goto done;
    }
    hd_buf_t now = {0};
    size_t left = still_has(&w, id, &now);
    int wm = ctl_group_member(&w, id);
    if (!member_left && (wm < 0 || w.members[wm].m.session != d.session)) {
      member_left = 1;
      if (!o.json)
        printf("%s left the group (its session ended): the drain node goes "
               "with it\n",
               id);
    }
    ctl_group_free(&w);
    double secs = (double)(hd_now_ms() - t0) / 1000.0;
    if (left == 0) {
      if (!o.json)
        printf("%s holds no partition of group %s (%.1f s); the drain node "
               "stays until 'heraldctl drain --undo' or until this session "
               "ends\n",
               id, group, secs);
      outcome(&o, group, id, "drained", path, secs, NULL);
      free(now.p);
      free(last.p);
      rc = HD_EXIT_OK;
      goto done;
    }
    if (!o.json && (last.p == NULL || strcmp(last.p, now.p) != 0))
      printf("%s: %s\n", id, now.p);
    if (hd_now_ms() >= deadline) {
      const char *sep = leader_says(&o, group, err, sizeof(err));
      fprintf(stderr,
              PROG ": %s still has partitions after %" PRIu64
                   " s (%s); the drain node stays (--undo deletes it)%s%s\n",
              id, timeout_s, now.p, sep, err);
      outcome(&o, group, id, "timed out", path, secs, now.p);
      free(now.p);
      free(last.p);
      rc = HD_EXIT_FAIL;
      goto done;
    }
    free(last.p);
    last = now;
    fflush(stdout);
    ctl_nap_ms(POLL_MS);
  }
done:
  ctl_group_free(&g);
  ctl_ops_close(&o);
  return rc;
}
