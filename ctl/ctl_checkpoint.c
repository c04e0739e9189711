/*
 * heraldctl checkpoint get|set|reset: a consumer group's checkpoints
 * (groups/<g>/checkpoints/<p>, docs/zookeeper.md) read, and rewritten by
 * an operator: to an SCN, to the relays' oldest or newest window, or to no
 * position. Writes are refused while the group has live members (unless
 * --force), shown and not made without --execute, and each one is a
 * compare-and-swap on the version read: a partition whose checkpoint
 * moved meanwhile is left as it is and reported.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "ctl_ops.h"
#include "hd_cli.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_time.h"

static const char usage[] =
    "Usage: heraldctl checkpoint get --group G [--partition P|all] [options]\n"
    "       heraldctl checkpoint set --group G --partition P|all\n"
    "                 (--scn SCN | --to earliest|latest) [--force] "
    "[--execute]\n"
    "       heraldctl checkpoint reset --group G --partition P|all\n"
    "                 [--to earliest|latest] [--force] [--execute]\n"
    "\n"
    "get prints the checkpoints (SCN, commit time, writer, epoch, counts and\n"
    "the znode version). set writes SCN, or with --to the position from\n"
    "which the next holder receives every window the group's relays still\n"
    "hold (earliest) or only windows after the newest one (latest). reset\n"
    "writes scn 0, no position: the next holder starts per agent.start\n"
    "(or, with --to, does what set --to does). The written checkpoint keeps\n"
    "its epoch, windows and rows; its owner is \"heraldctl\".\n"
    "\n"
    "Options:\n" CTL_OPS_USAGE "  --group G                the consumer group\n"
    "  --partition P|all        a partition, a comma list, or all (get: all\n"
    "                           by default)\n"
    "  --scn SCN                set: the position (everything up to SCN\n"
    "                           counts as applied)\n"
    "  --to earliest|latest     the relays' oldest window / newest window\n"
    "  --force                  write although the group has live members:\n"
    "                           a holder's next checkpoint write then fails,\n"
    "                           it stops the partition and starts it again\n"
    "                           from the new checkpoint\n"
    "  --execute                write; without it, print the path, the old\n"
    "                           and the new data of each write and exit 0\n"
    "  --json                   one JSON object instead of text\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 done (or shown); 1 refused (live members), or a\n"
    "checkpoint changed since it was read (not written); 2 bad usage,\n"
    "ZooKeeper unreachable, no such group, or no relay to take --to from.\n";

#define PROG "heraldctl checkpoint"

/* --partition: "all" or a comma list, into want[n] (1 = chosen). */
static int parse_partitions(const char *s, uint32_t n, unsigned char *want) {
  if (strcmp(s, "all") == 0) {
    memset(want, 1, n);
    return 0;
  }
  char *copy = hd_strdup(s), *save = NULL;
  int rc = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    uint64_t p;
    if (hd_parse_u64(tok, &p) < 0) {
      rc = hd_cli_usage(PROG, "--partition: '%s' is not a partition number",
                        tok);
      break;
    }
    if (p >= n) {
      rc = hd_cli_usage(PROG,
                        "--partition: %" PRIu64 " is not below the group's %u "
                        "partitions",
                        p, n);
      break;
    }
    want[p] = 1;
  }
  free(copy);
  return rc;
}

/* Where --to points, from the relays of the group's source: *scn (and
 * *ts_ms when known). @returns 0, or HD_EXIT_USAGE after a message. */
static int relay_position(ctl_ops_t *o, const char *source, int latest,
                          uint64_t *scn, uint64_t *ts_ms) {
  ctl_relay_t *rs = NULL;
  size_t n = 0;
  int zrc = ctl_relays(o, source, &rs, &n);
  if (zrc != ZOK) {
    fprintf(stderr, PROG ": reading the relays of source '%s': %s\n", source,
            ctl_zerror(zrc));
    return HD_EXIT_USAGE;
  }
  /* SCNs are positions in one server's binlog: every relay used must read
   * the same server. */
  uint64_t server = 0, best = 0, best_ts = 0, oldest = 0;
  int have = 0;
  for (size_t i = 0; i < n; i++) {
    const ctl_relay_t *r = &rs[i];
    if (!r->ok || r->r.source_server_id == 0)
      continue;
    if (server && r->r.source_server_id != server) {
      fprintf(stderr,
              PROG ": the relays of source '%s' read different servers "
                   "(server ids %" PRIu64 " and %" PRIu64
                   "): their SCNs do not compare; give --scn\n",
              source, server, r->r.source_server_id);
      free(rs);
      return HD_EXIT_USAGE;
    }
    server = r->r.source_server_id;
    if (r->r.newest_scn > best) {
      best = r->r.newest_scn;
      best_ts = r->r.newest_ts_ms;
    }
    /* A relay answers a Subscribe after SCN with the windows above it; it
     * accepts any SCN from the one before its oldest window on (its
     * retention's base), so oldest - 1 gets that oldest window too. */
    if (r->r.oldest_scn && (!have || r->r.oldest_scn - 1 < oldest)) {
      oldest = r->r.oldest_scn - 1;
      have = 1;
    }
  }
  free(rs);
  if (server == 0) {
    fprintf(stderr,
            PROG ": no relay of source '%s' is registered with a source "
                 "server (cluster '%s'): --to needs one; give --scn\n",
            source, o->cluster);
    return HD_EXIT_USAGE;
  }
  if (latest ? best == 0 : !have) {
    fprintf(stderr,
            PROG ": no relay of source '%s' holds a window yet: give "
                 "--scn, or reset\n",
            source);
    return HD_EXIT_USAGE;
  }
  *scn = latest ? best : oldest;
  *ts_ms = latest ? best_ts : 0;
  return 0;
}

static json_t *ckpt_json(const hd_checkpoint_t *c) {
  char *s = NULL, err[200];
  if (hd_checkpoint_build(c, &s, err, sizeof(err)) < 0)
    return json_null();
  json_t *v = ctl_json_raw(s, strlen(s));
  free(s);
  return v;
}

/* The JSON entry of partition p's checkpoint node (path) as read. */
static json_t *entry_json(uint32_t p, const char *path, const ctl_ckpt_t *ck) {
  json_t *e = json_pack("{s:I,s:s}", "partition", (json_int_t)p, "path", path);
  json_object_set_new(e, "version",
                      ck->s.present ? json_integer(ck->version) : json_null());
  return e;
}

static int do_get(ctl_ops_t *o, const ctl_group_t *g,
                  const unsigned char *want) {
  char path[HD_GROUP_PATH_MAX], b1[64], b2[64];
  if (o->json) {
    json_t *a = json_array();
    for (uint32_t p = 0; p < g->g.partitions; p++) {
      if (!want[p])
        continue;
      const ctl_ckpt_t *ck = &g->ckpts[p];
      hd_path_checkpoint(path, sizeof(path), o->cluster, g->name, p);
      json_t *e = entry_json(p, path, ck);
      json_object_set_new(e, "checkpoint",
                          ck->s.ok ? ckpt_json(&ck->c) : json_null());
      if (ck->s.present && !ck->s.ok) {
        json_object_set_new(e, "error", json_string(ck->s.err));
        json_object_set_new(e, "raw", json_string(ck->raw));
      }
      json_array_append_new(a, e);
    }
    json_t *out = json_pack("{s:s,s:I,s:o}", "group", g->name, "partitions",
                            (json_int_t)g->g.partitions, "checkpoints", a);
    ctl_json_print(out);
    json_decref(out);
    return HD_EXIT_OK;
  }
  ctl_table_t *t = ctl_table_new(9);
  const char *hdr[] = {"PARTITION", "SCN",     "COMMIT", "WRITTEN", "OWNER",
                       "EPOCH",     "WINDOWS", "ROWS",   "VERSION"};
  for (int i = 0; i < 9; i++)
    ctl_table_cell(t, "%s", hdr[i]);
  for (uint32_t p = 0; p < g->g.partitions; p++) {
    if (!want[p])
      continue;
    const ctl_ckpt_t *ck = &g->ckpts[p];
    ctl_table_cell(t, "%u", p);
    if (!ck->s.ok) {
      ctl_table_cell(t, "%s", ck->s.present ? "unreadable" : "none");
      for (int i = 0; i < 6; i++)
        ctl_table_cell(t, "%s", i == 0 && ck->s.present ? ck->s.err : "-");
      if (ck->s.present)
        ctl_table_cell(t, "%d", ck->version);
      else
        ctl_table_cell(t, "-");
      continue;
    }
    ctl_table_cell(t, "%" PRIu64, ck->c.scn);
    ctl_table_cell(t, "%s", ctl_fmt_time(ck->c.ts_ms, b1, sizeof(b1)));
    ctl_table_cell(t, "%s", ctl_fmt_time(ck->c.written_ms, b2, sizeof(b2)));
    ctl_table_cell(t, "%s", ck->c.owner);
    ctl_table_cell(t, "%" PRIu64, ck->c.epoch);
    ctl_table_cell(t, "%" PRIu64, ck->c.windows);
    ctl_table_cell(t, "%" PRIu64, ck->c.rows);
    ctl_table_cell(t, "%d", ck->version);
  }
  ctl_table_print(t, stdout, 0);
  ctl_table_free(t);
  return HD_EXIT_OK;
}

/* Write p's new checkpoint: a compare-and-swap on the version read, or a
 * create when there was none. @returns ZOK or the ZooKeeper code. */
static int write_one(ctl_ops_t *o, const char *path, const ctl_ckpt_t *ck,
                     const char *json, int *version) {
  zhandle_t *zh = hd_zk_handle(o->zk);
  if (ck->s.present) {
    struct Stat st;
    int rc = zoo_set2(zh, path, json, (int)strlen(json), ck->version, &st);
    if (rc == ZOK)
      *version = st.version;
    return rc;
  }
  char dir[HD_GROUP_PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", path);
  *strrchr(dir, '/') = '\0';
  int rc = hd_zk_ensure_path(o->zk, dir);
  if (rc != ZOK)
    return rc;
  rc = zoo_create(zh, path, json, (int)strlen(json), hd_zk_acl(o->zk), 0, NULL,
                  0);
  if (rc == ZOK)
    *version = 0;
  return rc;
}

/* The tests' way to let an agent write between our read and our write,
 * so that the compare-and-swap is seen to fail:
 * HERALD_TEST_FAULT=checkpoint_write_delay_ms=N sleeps N ms before the
 * first write. */
static void test_delay(void) {
#ifdef HD_TEST_HOOKS
  const char *f = getenv("HERALD_TEST_FAULT");
  const char *k = "checkpoint_write_delay_ms=";
  uint64_t ms;
  if (f && strncmp(f, k, strlen(k)) == 0 &&
      hd_parse_u64(f + strlen(k), &ms) == 0) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
  }
#else
  if (getenv("HERALD_TEST_FAULT"))
    fprintf(stderr, PROG ": HERALD_TEST_FAULT ignored: built without "
                         "HD_TEST_HOOKS\n");
#endif
}

static int do_write(ctl_ops_t *o, const ctl_group_t *g,
                    const unsigned char *want, uint64_t scn, uint64_t ts_ms,
                    int ts_known, int execute, int force) {
  char path[HD_GROUP_PATH_MAX], err[300];
  uint32_t n = g->g.partitions;
  size_t nw = 0, nfail = 0;
  json_t *writes = json_array();
  uint64_t now = hd_now_ms();
  for (uint32_t p = 0; p < n; p++) {
    if (!want[p])
      continue;
    const ctl_ckpt_t *ck = &g->ckpts[p];
    hd_checkpoint_t c;
    memset(&c, 0, sizeof(c));
    if (ck->s.ok)
      c = ck->c;
    /* The epoch stays: an agent refuses a checkpoint from a later grant
     * than its own, and its grant is at least the one that wrote this. */
    c.ts_ms =
        ts_known ? ts_ms : (ck->s.ok && ck->c.scn == scn ? ck->c.ts_ms : 0);
    c.scn = scn;
    c.written_ms = now;
    snprintf(c.owner, sizeof(c.owner), "heraldctl");
    char *json = NULL;
    if (hd_checkpoint_build(&c, &json, err, sizeof(err)) < 0) {
      fprintf(stderr, PROG ": partition %u: %s\n", p, err);
      nfail++;
      continue;
    }
    hd_path_checkpoint(path, sizeof(path), o->cluster, g->name, p);
    const char *old = ck->s.present ? ck->raw : NULL;
    const char *result = "dry run";
    int version = -1, zrc = ZOK;
    if (execute) {
      if (nw + nfail == 0)
        test_delay();
      zrc = write_one(o, path, ck, json, &version);
      if (zrc == ZOK) {
        result = "written";
        nw++;
      } else {
        result = zrc == ZBADVERSION || zrc == ZNODEEXISTS || zrc == ZNONODE
                     ? "moved"
                     : "failed";
        nfail++;
      }
    }
    if (o->json) {
      json_t *e = entry_json(p, path, ck);
      json_object_set_new(e, "old",
                          old ? ctl_json_raw(old, strlen(old)) : json_null());
      json_object_set_new(e, "new", ctl_json_raw(json, strlen(json)));
      json_object_set_new(e, "result", json_string(result));
      if (version >= 0)
        json_object_set_new(e, "new_version", json_integer(version));
      if (execute && zrc != ZOK)
        json_object_set_new(e, "error", json_string(ctl_zerror(zrc)));
      json_array_append_new(writes, e);
    } else if (!execute) {
      if (ck->s.present)
        printf("%s (version %d)\n  old: %s\n  new: %s\n", path, ck->version,
               old, json);
      else
        printf("%s (none yet: created)\n  old: -\n  new: %s\n", path, json);
    } else if (zrc == ZOK) {
      printf("partition %u: written %s (version %d): %s\n", p, path, version,
             json);
    } else if (strcmp(result, "moved") == 0) {
      printf("partition %u: NOT written: %s changed since it was read "
             "(version %d): the partition moved meanwhile; read it again\n",
             p, path, ck->s.present ? ck->version : -1);
    } else {
      printf("partition %u: NOT written: %s: %s\n", p, path, ctl_zerror(zrc));
    }
    free(json);
  }
  if (o->json) {
    json_t *ids = json_array();
    for (size_t i = 0; i < g->nmembers; i++)
      if (i == 0 || strcmp(g->members[i].m.id, g->members[i - 1].m.id) != 0)
        json_array_append_new(ids, json_string(g->members[i].m.id));
    json_t *out =
        json_pack("{s:s,s:b,s:b,s:o,s:o}", "group", g->name, "execute", execute,
                  "force", force, "live_members", ids, "writes", writes);
    ctl_json_print(out);
    json_decref(out);
  } else {
    json_decref(writes);
    if (!execute)
      printf("dry run: nothing written; add --execute to write\n");
  }
  if (nfail) {
    fprintf(stderr, PROG ": %zu checkpoint%s not written (%zu written)\n",
            nfail, nfail == 1 ? "" : "s", nw);
    return HD_EXIT_FAIL;
  }
  return HD_EXIT_OK;
}

/* The options of checkpoint's own. */
typedef struct {
  const char *parts, *to;
  uint64_t scn;
  int have_scn, force, execute;
} ckpt_args_t;

static int ckpt_option(void *ctx, int c, const char *arg) {
  ckpt_args_t *a = ctx;
  switch (c) {
  case 'p':
    a->parts = arg;
    return 0;
  case 's':
    if (hd_parse_u64(arg, &a->scn) < 0 || a->scn > INT64_MAX)
      return hd_cli_usage(PROG, "--scn: '%s' is not an SCN", arg);
    a->have_scn = 1;
    return 0;
  case 't':
    if (strcmp(arg, "earliest") && strcmp(arg, "latest"))
      return hd_cli_usage(PROG, "--to: '%s' is not earliest or latest", arg);
    a->to = arg;
    return 0;
  case 'f':
    a->force = 1;
    return 0;
  case 'x':
    a->execute = 1;
    return 0;
  default:
    return -1;
  }
}

int ctl_checkpoint(int argc, char **argv) {
  static const struct option opts[] = {
      CTL_OPS_OPTIONS,
      {"partition", required_argument, NULL, 'p'},
      {"scn", required_argument, NULL, 's'},
      {"to", required_argument, NULL, 't'},
      {"force", no_argument, NULL, 'f'},
      {"execute", no_argument, NULL, 'x'},
      {NULL, 0, NULL, 0}};
  ctl_ops_t o;
  ctl_ops_init(&o, PROG);
  ckpt_args_t a = {0};
  int rc = ctl_ops_parse(&o, argc, argv, opts, usage, ckpt_option, &a, 1);
  if (rc >= 0)
    return rc;
  const char *group = o.group, *parts = a.parts, *to = a.to;
  uint64_t scn = a.scn;
  int have_scn = a.have_scn, force = a.force, execute = a.execute;
  if (optind >= argc)
    return hd_cli_usage(PROG, "needs get, set or reset");
  const char *action = argv[optind];
  int get = strcmp(action, "get") == 0, set = strcmp(action, "set") == 0,
      reset = strcmp(action, "reset") == 0;
  if (!get && !set && !reset)
    return hd_cli_usage(PROG, "unknown action '%s' (get, set or reset)",
                        action);
  if (group == NULL)
    return hd_cli_usage(PROG, "%s needs --group G", action);
  if (get && (have_scn || to || force || execute))
    return hd_cli_usage(PROG, "get takes no --scn, --to, --force or --execute");
  if (!get && parts == NULL)
    return hd_cli_usage(PROG, "%s needs --partition P|all", action);
  if (set && have_scn == (to != NULL))
    return hd_cli_usage(PROG, "set needs one of --scn SCN and --to");
  if (reset && have_scn)
    return hd_cli_usage(PROG, "reset takes no --scn (use set)");

  if ((rc = ctl_ops_connect(&o)) != 0)
    return rc;
  ctl_group_t g;
  unsigned char *want = NULL;
  rc = HD_EXIT_USAGE;
  if (ctl_group_load(&o, group, CTL_G_MEMBERS | CTL_G_CKPTS, &g) != 0)
    goto done;
  want = hd_calloc(g.g.partitions, 1);
  if (parse_partitions(parts ? parts : "all", g.g.partitions, want) != 0)
    goto done;
  if (get) {
    rc = do_get(&o, &g, want);
    goto done;
  }
  size_t live = ctl_group_live_ids(&g);
  if (live) {
    hd_buf_t ids = {0};
    for (size_t i = 0; i < g.nmembers; i++)
      if (i == 0 || strcmp(g.members[i].m.id, g.members[i - 1].m.id) != 0)
        hd_buf_printf(&ids, "%s%s", ids.len ? ", " : "", g.members[i].m.id);
    if (!force) {
      fprintf(stderr,
              PROG ": group '%s' has %zu live member%s (%s): stop %s first, "
                   "or give --force\n",
              group, live, live == 1 ? "" : "s", ids.p,
              live == 1 ? "it" : "them");
      free(ids.p);
      rc = HD_EXIT_FAIL;
      goto done;
    }
    fprintf(stderr,
            PROG ": warning: group '%s' has live members (%s): a holder "
                 "stops its partition at its next checkpoint write and starts "
                 "it again from the new checkpoint\n",
            group, ids.p);
    free(ids.p);
  }
  uint64_t ts = 0;
  int ts_known = 0;
  if (to) {
    rc = relay_position(&o, g.g.source, strcmp(to, "latest") == 0, &scn, &ts);
    if (rc)
      goto done;
    ts_known = ts != 0;
  } else if (reset) {
    scn = 0;
    ts_known = 1; /* no position, no commit time */
  }
  rc = do_write(&o, &g, want, scn, ts, ts_known, execute, force);
done:
  free(want);
  ctl_group_free(&g);
  ctl_ops_close(&o);
  return rc;
}
