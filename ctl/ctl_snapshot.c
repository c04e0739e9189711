/*
 * heraldctl snapshot: ask a running group for a snapshot of some tables
 * (tables added to the group, a partition that fell out of the relays'
 * retention), or cancel the running ones. It writes the request node
 * groups/<g>/snapshot (docs/zookeeper.md) with an id above the last one;
 * every holder of a partition the request names starts that snapshot
 * beside its stream (docs/snapshots.md), and the command follows the
 * partitions' checkpoints until each has answered and finished.
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

#define PROG "heraldctl snapshot"
#define POLL_MS 500

static const char usage[] =
    "Usage: heraldctl snapshot --group G --tables PATTERNS [--partitions L]\n"
    "                          [--restart] [--timeout S] [--no-wait] "
    "[options]\n"
    "       heraldctl snapshot --group G --cancel [--partitions L] [options]\n"
    "\n"
    "Asks the running group G for a snapshot of the tables PATTERNS (comma-\n"
    "separated db.table patterns, '*' and '?' allowed): every row that\n"
    "exists reaches its partition's sink as a read change (op r), beside the\n"
    "stream, which goes on from where it is. It writes the request node\n"
    "groups/G/snapshot with a new id; each partition's holder answers it\n"
    "once (its checkpoint says so), and the command waits until every\n"
    "partition named has finished, printing progress.\n"
    "\n"
    "Options:\n" CTL_OPS_USAGE "  --group G                the consumer group\n"
    "  --tables PATTERNS        the tables to snapshot\n"
    "  --partitions L           only these partitions: \"0,3,8-11\" "
    "(default all)\n"
    "  --restart                the stream of those partitions starts again "
    "at\n"
    "                           the relays' newest position (a partition "
    "that\n"
    "                           fell out of their retention): rows deleted\n"
    "                           meanwhile stay at the destination\n"
    "  --cancel                 cancel the running snapshots of those\n"
    "                           partitions (their streams go on)\n"
    "  --timeout S              how long to wait (default 3600)\n"
    "  --no-wait                write the request and exit\n"
    "  --json                   the outcome as one JSON object\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 every partition named finished (or the request was\n"
    "written, with --no-wait); 1 not all had at the timeout; 2 bad usage,\n"
    "ZooKeeper unreachable or no such group.\n";

typedef struct {
  const char *tables, *partitions;
  int cancel, restart, nowait;
  uint64_t timeout_s;
} snap_args_t;

/* PATTERNS as the request holds them: each item db.table, nothing
 * empty. @returns 0 or -1. */
static int tables_ok(const char *s) {
  if (*s == '\0' || strlen(s) >= HD_CK_TABLES_MAX)
    return -1;
  const char *q = s;
  for (;;) {
    const char *end = strchr(q, ',');
    size_t n = end ? (size_t)(end - q) : strlen(q);
    const char *dot = memchr(q, '.', n);
    if (n == 0 || dot == NULL || dot == q || dot == q + n - 1 ||
        memchr(q, ' ', n) != NULL)
      return -1;
    if (!end)
      return 0;
    q = end + 1;
  }
}

static int snap_option(void *ctx, int c, const char *arg) {
  snap_args_t *a = ctx;
  switch (c) {
  case 't':
    if (tables_ok(arg) < 0)
      return hd_cli_usage(PROG,
                          "--tables: '%s' is not a comma-separated list of "
                          "db.table patterns",
                          arg);
    a->tables = arg;
    return 0;
  case 'p':
    a->partitions = arg;
    return 0;
  case 'c':
    a->cancel = 1;
    return 0;
  case 'r':
    a->restart = 1;
    return 0;
  case 'n':
    a->nowait = 1;
    return 0;
  case 'T':
    if (hd_parse_u64(arg, &a->timeout_s) < 0 || a->timeout_s == 0 ||
        a->timeout_s > 7 * 86400)
      return hd_cli_usage(PROG,
                          "--timeout: '%s' is not a number of seconds "
                          "(1-604800)",
                          arg);
    return 0;
  default:
    return -1;
  }
}

/* Where the named partitions are with request id, as one line in b.
 * @returns how many have not finished. */
static size_t progress(const ctl_group_t *g, const hd_snapreq_t *r,
                       hd_buf_t *b) {
  size_t named = 0, answered = 0, done = 0, cancelled = 0, bad = 0;
  uint64_t rows = 0, tables_total = 0, tables_done = 0;
  hd_buf_t run = {0};
  size_t nrun = 0;
  for (uint32_t p = 0; p < g->g.partitions; p++) {
    if (!hd_snapreq_has(r, p))
      continue;
    named++;
    const ctl_ckpt_t *ck = &g->ckpts[p];
    if (!ck->s.ok) {
      bad += ck->s.present;
      continue;
    }
    const hd_checkpoint_t *c = &ck->c;
    if (c->snapshot_id < r->id)
      continue;
    answered++;
    rows += c->progress.rows;
    tables_total += c->progress.tables_total;
    tables_done += c->progress.tables_done;
    if (r->cancel) {
      done += c->snapshot_state != HD_CK_SNAPSHOT_RUNNING;
      continue;
    }
    if (c->snapshot_state == HD_CK_SNAPSHOT_DONE) {
      done++;
    } else if (c->snapshot_state == HD_CK_SNAPSHOT_CANCELLED) {
      cancelled++;
    } else if (nrun++ < 4) {
      hd_buf_printf(&run, "%sp%u %" PRIu64 "/%" PRIu64 " tables",
                    nrun > 1 ? ", " : "", p, c->progress.tables_done,
                    c->progress.tables_total);
    }
  }
  hd_buf_printf(
      b, "request %" PRIu64 ": %zu of %zu partitions answered, %zu %s", r->id,
      answered, named, done, r->cancel ? "not running" : "done");
  if (!r->cancel)
    hd_buf_printf(
        b, ", %zu cancelled, rows %" PRIu64 ", tables %" PRIu64 "/%" PRIu64,
        cancelled, rows, tables_done, tables_total);
  if (bad)
    hd_buf_printf(b, ", %zu checkpoints unreadable", bad);
  if (nrun)
    hd_buf_printf(b, "; running: %s%s", run.p, nrun > 4 ? ", ..." : "");
  free(run.p);
  return named - done - cancelled;
}

static void outcome(const ctl_ops_t *o, const char *group,
                    const hd_snapreq_t *r, const char *result, double secs,
                    const char *where) {
  if (!o->json)
    return;
  json_t *v =
      json_pack("{s:s,s:I,s:s,s:s,s:b,s:b,s:s,s:f,s:s?}", "group", group, "id",
                (json_int_t)r->id, "tables", r->tables, "partitions",
                r->partitions, "cancel", r->cancel, "restart", r->restart,
                "result", result, "seconds", secs, "progress", where);
  ctl_json_print(v);
  json_decref(v);
}

int ctl_snapshot(int argc, char **argv) {
  static const struct option opts[] = {
      CTL_OPS_OPTIONS,
      {"tables", required_argument, NULL, 't'},
      {"partitions", required_argument, NULL, 'p'},
      {"cancel", no_argument, NULL, 'c'},
      {"restart", no_argument, NULL, 'r'},
      {"timeout", required_argument, NULL, 'T'},
      {"no-wait", no_argument, NULL, 'n'},
      {NULL, 0, NULL, 0}};
  ctl_ops_t o;
  ctl_ops_init(&o, PROG);
  snap_args_t a = {.timeout_s = 3600};
  int rc = ctl_ops_parse(&o, argc, argv, opts, usage, snap_option, &a, 0);
  if (rc >= 0)
    return rc;
  const char *group = o.group;
  if (group == NULL)
    return hd_cli_usage(PROG, "needs --group G");
  if (a.cancel && (a.tables || a.restart))
    return hd_cli_usage(PROG, "--cancel takes neither --tables nor --restart");
  if (!a.cancel && a.tables == NULL)
    return hd_cli_usage(PROG, "needs --tables PATTERNS (or --cancel)");
  hd_snapreq_t *r = hd_calloc(1, sizeof(*r));
  snprintf(r->tables, sizeof(r->tables), "%s", a.tables ? a.tables : "*.*");
  snprintf(r->partitions, sizeof(r->partitions), "%s",
           a.partitions ? a.partitions : "all");
  r->cancel = a.cancel;
  r->restart = a.restart;
  r->requested_ms = hd_now_ms();
  char err[600], *json = NULL;
  if (hd_snapreq_build(r, &json, err, sizeof(err)) < 0) {
    free(r);
    return hd_cli_usage(PROG,
                        "--partitions: '%s' is not \"all\" or a list "
                        "like \"0,3,8-11\"",
                        a.partitions);
  }
  free(json);
  json = NULL;
  if ((rc = ctl_ops_connect(&o)) != 0) {
    free(r);
    return rc;
  }
  ctl_group_t g;
  rc = HD_EXIT_USAGE;
  if (ctl_group_load(&o, group, CTL_G_CKPTS, &g) != 0)
    goto done;
  uint32_t n = g.g.partitions, named = 0;
  for (uint32_t p = 0; p < n; p++)
    named += (uint32_t)hd_snapreq_has(r, p);
  if (named == 0) {
    fprintf(stderr, PROG ": --partitions %s names none of group %s's %u\n",
            r->partitions, group, n);
    goto done;
  }

  /* The next id: above the request there and above every id a
   * checkpoint answered (the node may have been deleted by hand). */
  char path[HD_GROUP_PATH_MAX];
  hd_path_snapreq(path, sizeof(path), o.cluster, group);
  zhandle_t *zh = hd_zk_handle(o.zk);
  char *old = NULL;
  int len = 0;
  struct Stat st;
  int zrc = ctl_zk_get(&o, path, &old, &len, &st);
  if (zrc != ZOK && zrc != ZNONODE) {
    fprintf(stderr, PROG ": reading %s: %s\n", path, ctl_zerror(zrc));
    rc = HD_EXIT_FAIL;
    goto done;
  }
  uint64_t top = 0;
  if (zrc == ZOK) {
    hd_snapreq_t *prev = hd_malloc(sizeof(*prev));
    if (hd_snapreq_parse(old, (size_t)len, prev, err, sizeof(err)) == 0)
      top = prev->id;
    else
      fprintf(stderr, PROG ": %s was unreadable (%s): replaced\n", path, err);
    free(prev);
  }
  free(old);
  for (uint32_t p = 0; p < n; p++)
    if (g.ckpts[p].s.ok && g.ckpts[p].c.snapshot_id > top)
      top = g.ckpts[p].c.snapshot_id;
  r->id = top + 1;
  if (hd_snapreq_build(r, &json, err, sizeof(err)) < 0) {
    fprintf(stderr, PROG ": %s\n", err);
    rc = HD_EXIT_FAIL;
    goto done;
  }
  /* Compare-and-swap on the version read: two requests at once do not
   * both take the same id. */
  if (zrc == ZNONODE)
    zrc = zoo_create(zh, path, json, (int)strlen(json), hd_zk_acl(o.zk), 0,
                     NULL, 0);
  else
    zrc = zoo_set(zh, path, json, (int)strlen(json), st.version);
  free(json);
  if (zrc != ZOK) {
    fprintf(stderr, PROG ": writing %s: %s%s\n", path, ctl_zerror(zrc),
            zrc == ZBADVERSION || zrc == ZNODEEXISTS
                ? " (another request was written meanwhile: try again)"
                : "");
    rc = HD_EXIT_FAIL;
    goto done;
  }
  if (!o.json)
    printf("snapshot request %" PRIu64 " written to %s: %s of %s, %u "
           "partition(s)%s\n",
           r->id, path, r->cancel ? "cancel the snapshots" : r->tables, group,
           named, r->restart ? ", streams restart at the newest" : "");
  if (a.nowait) {
    outcome(&o, group, r, "written", 0, NULL);
    rc = HD_EXIT_OK;
    goto done;
  }

  uint64_t t0 = hd_now_ms(), deadline = t0 + a.timeout_s * 1000;
  hd_buf_t last = {0};
  for (;;) {
    ctl_group_t w;
    if (ctl_group_load(&o, group, CTL_G_CKPTS, &w) != 0) {
      ctl_group_free(&w);
      free(last.p);
      rc = HD_EXIT_FAIL;
      goto done;
    }
    hd_buf_t now = {0};
    size_t left = progress(&w, r, &now);
    ctl_group_free(&w);
    double secs = (double)(hd_now_ms() - t0) / 1000.0;
    if (!o.json && (last.p == NULL || strcmp(last.p, now.p) != 0))
      printf("%s\n", now.p);
    if (left == 0) {
      if (!o.json)
        printf("snapshot request %" PRIu64 " finished in %.1f s\n", r->id,
               secs);
      outcome(&o, group, r, "finished", secs, now.p);
      free(now.p);
      free(last.p);
      rc = HD_EXIT_OK;
      goto done;
    }
    if (hd_now_ms() >= deadline) {
      fprintf(stderr,
              PROG ": request %" PRIu64 " not finished after %" PRIu64
                   " s (%s); it stays, and the partitions go on with it\n",
              r->id, a.timeout_s, now.p);
      outcome(&o, group, r, "timed out", secs, now.p);
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
  free(r);
  ctl_group_free(&g);
  ctl_ops_close(&o);
  return rc;
}
