/*
 * heraldctl status / lag: the cluster as ZooKeeper has it (relays,
 * coordinators, groups with their members, assignment, holders and
 * checkpoints), with each partition's lag and status as the leading
 * coordinator computes them (docs/coordinator.md, /status). status still
 * prints everything without a leader; lag needs one, and with
 * --max-seconds is a check for cron or a monitoring system.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_ops.h"
#include "hd_cli.h"
#include "hd_mem.h"
#include "hd_time.h"

/* ----------------------------------------------------- leader's JSON */

/* A number of the leader's JSON, or -1 when null or absent. */
static double jnum(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : -1;
}

/* An integer of the leader's JSON (SCNs: above 2^53, exact), or -1. */
static int64_t jint(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *jstr(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The leader's view of group g, or NULL. */
static json_t *leader_group(json_t *st, const char *g) {
  return json_object_get(json_object_get(st, "groups"), g);
}

/* The leader's lag entry of partition p of a group of n partitions. */
static json_t *leader_lag(json_t *lg, uint32_t n, uint32_t p) {
  json_t *a = json_object_get(lg, "lag");
  if (!json_is_array(a) || json_array_size(a) != n)
    return NULL;
  return json_array_get(a, p);
}

/* Worse first: the contract's order of statuses. */
static int status_rank(const char *s) {
  static const char *const order[] = {"OK", "WARN", "STALL", "STOP", "UNOWNED"};
  for (int i = 0; s && i < 5; i++)
    if (strcmp(s, order[i]) == 0)
      return i;
  return -1;
}

/* --------------------------------------------------------- snapshots */

/* A group's snapshot as its checkpoints say (read here, so that it shows
 * without a leader too); the rate and the time left need readings over
 * time, which only the leader makes (docs/coordinator.md, Snapshots). */
typedef struct {
  size_t with, running, done, cancelled;
  uint64_t request, rows, chunks, tables_total, tables_done;
} snap_sum_t;

static int snap_sum(const ctl_group_t *g, snap_sum_t *s) {
  memset(s, 0, sizeof(*s));
  for (uint32_t p = 0; g->ok && p < g->g.partitions; p++) {
    const ctl_ckpt_t *ck = &g->ckpts[p];
    if (!ck->s.ok || ck->c.snapshot_state == HD_CK_SNAPSHOT_NONE)
      continue;
    const hd_ck_progress_t *pg = &ck->c.progress;
    s->with++;
    s->running += ck->c.snapshot_state == HD_CK_SNAPSHOT_RUNNING;
    s->done += ck->c.snapshot_state == HD_CK_SNAPSHOT_DONE;
    s->cancelled += ck->c.snapshot_state == HD_CK_SNAPSHOT_CANCELLED;
    if (ck->c.snapshot_id > s->request)
      s->request = ck->c.snapshot_id;
    s->rows += pg->rows;
    s->chunks += pg->chunks;
    s->tables_total += pg->tables_total;
    s->tables_done += pg->tables_done;
  }
  return s->with > 0;
}

static const char *snap_state(const snap_sum_t *s) {
  if (s->running == s->with)
    return "running";
  if (s->done == s->with)
    return "done";
  if (s->cancelled == s->with)
    return "cancelled";
  return "mixed";
}

/* The group's "snapshot" of --json: the checkpoints' counts, the
 * leader's rate and time left (null without a leader). */
static json_t *snap_group_json(const ctl_group_t *g, json_t *lg) {
  snap_sum_t s;
  if (!snap_sum(g, &s))
    return json_null();
  json_t *ls = json_object_get(lg, "snapshot");
  json_t *o = json_pack(
      "{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "state", snap_state(&s),
      "partitions_running", (json_int_t)s.running, "partitions_done",
      (json_int_t)s.done, "partitions_cancelled", (json_int_t)s.cancelled,
      "request", (json_int_t)s.request, "rows", (json_int_t)s.rows, "chunks",
      (json_int_t)s.chunks, "tables_total", (json_int_t)s.tables_total,
      "tables_done", (json_int_t)s.tables_done);
  static const char *const from_leader[] = {"rows_per_s", "eta_seconds",
                                            "rows_left_estimate", NULL};
  for (int i = 0; from_leader[i]; i++) {
    json_t *v = json_object_get(ls, from_leader[i]);
    json_object_set(o, from_leader[i], v ? v : json_null());
  }
  return o;
}

/* A partition's "snapshot" of --json, from its checkpoint. */
static json_t *snap_part_json(const ctl_ckpt_t *ck) {
  if (!ck->s.ok || ck->c.snapshot_state == HD_CK_SNAPSHOT_NONE)
    return json_null();
  const hd_ck_progress_t *g = &ck->c.progress;
  return json_pack(
      "{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "state",
      hd_ck_snapshot_state_name(ck->c.snapshot_state), "request",
      (json_int_t)ck->c.snapshot_id, "tables", ck->c.snapshot_tables,
      "tables_total", (json_int_t)g->tables_total, "tables_done",
      (json_int_t)g->tables_done, "chunks", (json_int_t)g->chunks, "rows",
      (json_int_t)g->rows, "table_rows", (json_int_t)g->table_rows,
      "table_rows_estimate", (json_int_t)g->table_rows_estimate, "started_ms",
      (json_int_t)g->started_ms, "ended_ms",
      g->ended_ms ? json_integer((json_int_t)g->ended_ms) : json_null());
}

/* The group's snapshot line of the text output. */
static void print_snap(const ctl_group_t *g, json_t *lg) {
  snap_sum_t s;
  char b1[64];
  if (!snap_sum(g, &s))
    return;
  json_t *ls = json_object_get(lg, "snapshot");
  double rate = jnum(ls, "rows_per_s");
  printf("  snapshot: %s, request %" PRIu64 ", %zu of %zu partitions done, "
         "%zu running, %zu cancelled, rows %" PRIu64 ", tables %" PRIu64
         "/%" PRIu64 ", ",
         snap_state(&s), s.request, s.done, s.with, s.running, s.cancelled,
         s.rows, s.tables_done, s.tables_total);
  if (rate >= 0)
    printf("%.0f rows/s", rate);
  else
    printf("rate -");
  printf(", eta %s\n", ctl_fmt_secs(jnum(ls, "eta_seconds"), b1, sizeof(b1)));
}

/* A partition's SNAPSHOT cell. */
static void snap_cell(ctl_table_t *t, const ctl_ckpt_t *ck) {
  if (!ck->s.ok || ck->c.snapshot_state == HD_CK_SNAPSHOT_NONE) {
    ctl_table_cell(t, "%s", "-");
    return;
  }
  const hd_ck_progress_t *g = &ck->c.progress;
  ctl_table_cell(t, "%s %" PRIu64 "/%" PRIu64 " tables, %" PRIu64 " rows",
                 hd_ck_snapshot_state_name(ck->c.snapshot_state),
                 g->tables_done, g->tables_total, g->rows);
}

/* ------------------------------------------------------------ status */

static const char status_usage[] =
    "Usage: heraldctl status --zk HOSTS --cluster NAME [--group G] [--json]\n"
    "\n"
    "Prints the cluster as ZooKeeper has it: the relays (address, SCN range,\n"
    "newest commit time, how far behind the source's best relay), the\n"
    "coordinators (the lowest election node leads) and every consumer group\n"
    "(members, assignment version, drain nodes, and per partition the\n"
    "member it is granted to, the holder of owners/<p>, the checkpoint\n"
    "SCN), with each partition's lag and status from the leading\n"
    "coordinator's /status. A group whose checkpoints carry a snapshot gets\n"
    "a line of its progress (partitions done and running, rows; the rate\n"
    "and the time left from the leader) and a SNAPSHOT column. Without a\n"
    "reachable leader everything else is still printed, and one line says\n"
    "that lag needs one.\n"
    "\n"
    "Options:\n" CTL_OPS_USAGE "  --group G                only this group\n"
    "  --json                   one JSON object: relays, coordinators, groups\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 printed (also without a leader); 2 bad usage, ZooKeeper\n"
    "unreachable, or no such group.\n";

static json_t *relay_json(const ctl_relay_t *r) {
  if (!r->ok)
    return json_pack("{s:s,s:s,s:s}", "source", r->source, "id", r->name,
                     "error", r->err);
  return json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:I,s:o}", "source",
      r->source, "id", r->name, "advertise", r->r.advertise, "listen",
      r->r.listen, "http", r->r.http, "version", r->r.version,
      "source_server_id", (json_int_t)r->r.source_server_id, "oldest_scn",
      (json_int_t)r->r.oldest_scn, "newest_scn", (json_int_t)r->r.newest_scn,
      "newest_ts_ms", (json_int_t)r->r.newest_ts_ms, "connected",
      r->r.connected, "updated_ms", (json_int_t)r->r.updated_ms,
      "behind_seconds", r->behind_s < 0 ? json_null() : json_real(r->behind_s));
}

static json_t *coord_json(const ctl_coord_t *c, int leader) {
  if (!c->ok)
    return json_pack("{s:s,s:s,s:b}", "node", c->node, "error", c->err,
                     "leader", leader);
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:b}", "node", c->node, "id", c->e.id,
                   "http", c->e.http, "version", c->e.version, "started_ms",
                   (json_int_t)c->e.started_ms, "leader", leader);
}

static char session_buf[32];
static const char *session_str(uint64_t s) {
  snprintf(session_buf, sizeof(session_buf), "0x%" PRIx64, s);
  return session_buf;
}

/* The partition's grant in the assignment: "agent", "agent (pending)" or
 * NULL (unowned, or no assignment). */
static const char *granted(const ctl_group_t *g, uint32_t p, int *pending) {
  *pending = 0;
  if (!g->has_assignment)
    return NULL;
  if (g->as.owner[p] >= 0)
    return g->as.members[g->as.owner[p]];
  if (g->as.pending[p] >= 0) {
    *pending = 1;
    return g->as.members[g->as.pending[p]];
  }
  return NULL;
}

static json_t *group_json(const ctl_group_t *g, json_t *lg) {
  json_t *o = json_object();
  if (!g->ok) {
    json_object_set_new(o, "error", json_string(g->err));
    return o;
  }
  uint32_t n = g->g.partitions;
  json_object_set_new(o, "partitions", json_integer(n));
  json_object_set_new(o, "source", json_string(g->g.source));
  json_object_set_new(o, "created_ms",
                      json_integer((json_int_t)g->g.created_ms));
  json_t *ids = json_array(), *nodes = json_array();
  for (size_t i = 0; i < g->nmembers; i++) {
    const ctl_member_t *m = &g->members[i];
    if (i == 0 || strcmp(m->m.id, g->members[i - 1].m.id) != 0)
      json_array_append_new(ids, json_string(m->m.id));
    if (!m->ok) {
      json_array_append_new(
          nodes, json_pack("{s:s,s:s}", "node", m->node, "error", m->err));
      continue;
    }
    json_array_append_new(
        nodes, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "node", m->node, "id",
                         m->m.id, "session", session_str(m->m.session), "http",
                         m->m.http, "version", m->m.version, "joined_ms",
                         (json_int_t)m->m.joined_ms, "draining",
                         ctl_group_drained(g, m)));
  }
  json_object_set_new(o, "members", ids);
  json_object_set_new(o, "member_nodes", nodes);
  json_object_set_new(o, "assignment_version",
                      g->has_assignment
                          ? json_integer((json_int_t)g->as.version)
                          : json_null());
  json_object_set(o, "assignment", g->as_json ? g->as_json : json_null());
  json_t *owners = json_object(), *drains = json_array();
  size_t unowned = 0, pending = 0;
  for (uint32_t p = 0; p < n; p++) {
    char k[16];
    snprintf(k, sizeof(k), "%u", p);
    if (g->owners[p].s.ok)
      json_object_set_new(owners, k, json_string(g->owners[p].o.owner));
    int pend;
    const char *to = granted(g, p, &pend);
    unowned += to == NULL;
    pending += pend;
  }
  for (size_t i = 0; i < g->ndrains; i++) {
    const ctl_drainnode_t *d = &g->drains[i];
    if (!d->ok) {
      json_array_append_new(
          drains, json_pack("{s:s,s:s}", "node", d->node, "error", d->err));
      continue;
    }
    int live = 0;
    int m = ctl_group_member(g, d->d.agent);
    live = m >= 0 && g->members[m].m.session == d->d.session;
    json_array_append_new(
        drains, json_pack("{s:s,s:s,s:I,s:b}", "agent", d->d.agent, "session",
                          session_str(d->d.session), "since_ms",
                          (json_int_t)d->d.since_ms, "stale", !live));
  }
  json_object_set_new(o, "owners", owners);
  json_object_set_new(o, "drains", drains);
  json_object_set_new(o, "unowned", json_integer((json_int_t)unowned));
  json_object_set_new(o, "pending", json_integer((json_int_t)pending));
  json_object_set_new(o, "error",
                      g->err[0] ? json_string(g->err) : json_null());
  static const char *const from_leader[] = {
      "status",           "max_lag_seconds",
      "worst_partition",  "best_partition",
      "relay_newest_scn", "relay_newest_ts_ms",
      "relay_oldest_scn", NULL};
  for (int i = 0; from_leader[i]; i++) {
    json_t *v = json_object_get(lg, from_leader[i]);
    json_object_set(o, from_leader[i], v ? v : json_null());
  }
  json_t *lag = json_array();
  for (uint32_t p = 0; p < n; p++) {
    json_t *e = json_object(), *l = leader_lag(lg, n, p);
    const ctl_ckpt_t *ck = &g->ckpts[p];
    int pend;
    const char *to = granted(g, p, &pend);
    json_object_set_new(e, "partition", json_integer(p));
    json_object_set_new(e, "granted", to ? json_string(to) : json_null());
    json_object_set_new(e, "pending", json_boolean(pend));
    json_object_set_new(e, "owner",
                        g->owners[p].s.ok ? json_string(g->owners[p].o.owner)
                                          : json_null());
    if (ck->s.ok) {
      json_object_set_new(e, "scn", json_integer((json_int_t)ck->c.scn));
      json_object_set_new(e, "ts_ms", json_integer((json_int_t)ck->c.ts_ms));
      json_object_set_new(e, "written_ms",
                          json_integer((json_int_t)ck->c.written_ms));
      json_object_set_new(e, "checkpoint_owner", json_string(ck->c.owner));
      json_object_set_new(e, "epoch", json_integer((json_int_t)ck->c.epoch));
      json_object_set_new(e, "windows",
                          json_integer((json_int_t)ck->c.windows));
      json_object_set_new(e, "rows", json_integer((json_int_t)ck->c.rows));
    } else {
      json_object_set_new(e, "scn", json_integer(0));
      if (ck->s.present)
        json_object_set_new(e, "checkpoint_error", json_string(ck->s.err));
    }
    static const char *const lagf[] = {"lag_seconds", "lead_files",
                                       "lead_bytes",  "out_of_retention",
                                       "status",      NULL};
    for (int i = 0; lagf[i]; i++) {
      json_t *v = json_object_get(l, lagf[i]);
      json_object_set(e, lagf[i], v ? v : json_null());
    }
    json_object_set_new(e, "snapshot", snap_part_json(ck));
    json_array_append_new(lag, e);
  }
  json_object_set_new(o, "snapshot", snap_group_json(g, lg));
  json_object_set_new(o, "lag", lag);
  return o;
}

static void print_group(const ctl_group_t *g, json_t *lg) {
  char b1[64], b2[64];
  if (!g->ok) {
    printf("GROUP %s: %s\n", g->name, g->err);
    return;
  }
  uint32_t n = g->g.partitions;
  printf("GROUP %s: %u partition%s, source %s, ", g->name, n, n == 1 ? "" : "s",
         g->g.source);
  if (g->has_assignment)
    printf("assignment version %" PRIu64, g->as.version);
  else
    printf("no assignment yet");
  const char *st = jstr(lg, "status");
  if (st)
    printf(", status %s, max lag %s", st,
           ctl_fmt_secs(jnum(lg, "max_lag_seconds"), b1, sizeof(b1)));
  printf("\n");
  if (g->err[0])
    printf("  error: %s\n", g->err);
  print_snap(g, lg);
  if (g->nmembers == 0) {
    printf("  no live member\n");
  } else {
    ctl_table_t *t = ctl_table_new(6);
    const char *hdr[] = {"MEMBER",  "SESSION", "HTTP",
                         "VERSION", "GRANTED", "DRAIN"};
    for (int i = 0; i < 6; i++)
      ctl_table_cell(t, "%s", hdr[i]);
    for (size_t i = 0; i < g->nmembers; i++) {
      const ctl_member_t *m = &g->members[i];
      if (!m->ok) {
        ctl_table_cell(t, "%s", m->node);
        ctl_table_cell(t, "unreadable: %s", m->err);
        for (int k = 0; k < 4; k++)
          ctl_table_cell(t, "%s", "");
        continue;
      }
      hd_buf_t ps = {0};
      int32_t mi = g->has_assignment ? hd_assignment_find(&g->as, m->m.id) : -1;
      size_t cnt = 0;
      for (uint32_t p = 0; mi >= 0 && p < n; p++)
        if (g->as.owner[p] == mi) {
          if (cnt < 16)
            hd_buf_printf(&ps, "%s%u", cnt ? "," : "", p);
          cnt++;
        }
      if (cnt > 16)
        hd_buf_printf(&ps, ",... (%zu)", cnt);
      ctl_table_cell(t, "%s", m->m.id);
      ctl_table_cell(t, "%s", session_str(m->m.session));
      ctl_table_cell(t, "%s", m->m.http[0] ? m->m.http : "-");
      ctl_table_cell(t, "%s", m->m.version);
      ctl_table_cell(t, "%s", ps.p ? ps.p : "-");
      ctl_table_cell(t, "%s", ctl_group_drained(g, m) ? "draining" : "-");
      free(ps.p);
    }
    ctl_table_print(t, stdout, 2);
    ctl_table_free(t);
  }
  snap_sum_t ss;
  int snap = snap_sum(g, &ss); /* a SNAPSHOT column only then */
  ctl_table_t *t = ctl_table_new(snap ? 7 : 6);
  const char *hdr[] = {"PARTITION", "GRANTED", "OWNER",   "SCN",
                       "LAG",       "STATUS",  "SNAPSHOT"};
  for (int i = 0; i < (snap ? 7 : 6); i++)
    ctl_table_cell(t, "%s", hdr[i]);
  for (uint32_t p = 0; p < n; p++) {
    json_t *l = leader_lag(lg, n, p);
    int pend;
    const char *to = granted(g, p, &pend);
    const ctl_ckpt_t *ck = &g->ckpts[p];
    ctl_table_cell(t, "%u", p);
    ctl_table_cell(t, "%s%s", to ? to : "-", pend ? " (pending)" : "");
    ctl_table_cell(t, "%s", g->owners[p].s.ok ? g->owners[p].o.owner : "-");
    if (ck->s.ok)
      ctl_table_cell(t, "%" PRIu64, ck->c.scn);
    else
      ctl_table_cell(t, "%s", ck->s.present ? "unreadable" : "0");
    ctl_table_cell(t, "%s",
                   ctl_fmt_secs(jnum(l, "lag_seconds"), b2, sizeof(b2)));
    ctl_table_cell(t, "%s", jstr(l, "status") ? jstr(l, "status") : "-");
    if (snap)
      snap_cell(t, ck);
  }
  ctl_table_print(t, stdout, 2);
  ctl_table_free(t);
}

int ctl_status(int argc, char **argv) {
  static const struct option opts[] = {CTL_OPS_OPTIONS, {NULL, 0, NULL, 0}};
  ctl_ops_t o;
  ctl_ops_init(&o, "heraldctl status");
  int rc = ctl_ops_parse(&o, argc, argv, opts, status_usage, NULL, NULL, 0);
  if (rc >= 0)
    return rc;
  const char *only = o.group;
  if ((rc = ctl_ops_connect(&o)) != 0)
    return rc;
  ctl_relay_t *relays = NULL;
  ctl_coord_t *coords = NULL;
  size_t nrelays = 0, ncoords = 0, ngroups = 0, who = 0;
  char **gnames = NULL, err[2048] = "";
  ctl_group_t *groups = NULL;
  json_t *st = NULL;
  rc = HD_EXIT_USAGE;
  int zrc = ctl_relays(&o, NULL, &relays, &nrelays);
  if (zrc == ZOK)
    zrc = ctl_coordinators(&o, &coords, &ncoords);
  if (zrc == ZOK) {
    if (only) {
      gnames = hd_calloc(1, sizeof(char *));
      gnames[0] = hd_strdup(only);
      ngroups = 1;
    } else {
      zrc = ctl_group_names(&o, &gnames, &ngroups);
    }
  }
  if (zrc != ZOK) {
    fprintf(stderr, "%s: reading /herald/%s: %s\n", o.prog, o.cluster,
            ctl_zerror(zrc));
    goto done;
  }
  groups = hd_calloc(ngroups ? ngroups : 1, sizeof(*groups));
  for (size_t i = 0; i < ngroups; i++) {
    int r =
        ctl_group_read(&o, gnames[i], CTL_G_ALL, &groups[i], err, sizeof(err));
    if (r != 0) {
      fprintf(stderr, "%s: %s\n", o.prog, err);
      goto done;
    }
  }
  st = ctl_leader_status(&o, coords, ncoords, &who, err, sizeof(err));

  if (o.json) {
    json_t *out = json_object(), *ra = json_array(), *ca = json_array(),
           *go = json_object();
    for (size_t i = 0; i < nrelays; i++)
      json_array_append_new(ra, relay_json(&relays[i]));
    for (size_t i = 0; i < ncoords; i++)
      json_array_append_new(ca, coord_json(&coords[i], i == 0));
    for (size_t i = 0; i < ngroups; i++)
      json_object_set_new(
          go, groups[i].name,
          group_json(&groups[i], leader_group(st, groups[i].name)));
    json_object_set_new(out, "cluster", json_string(o.cluster));
    json_object_set_new(out, "relays", ra);
    json_object_set_new(out, "coordinators", ca);
    json_object_set_new(out, "groups", go);
    json_object_set_new(out, "lag_from",
                        st ? json_pack("{s:s,s:s,s:O?}", "id", coords[who].e.id,
                                       "http", coords[who].e.http,
                                       "lag_sampled_ms",
                                       json_object_get(st, "lag_sampled_ms"))
                           : json_null());
    json_object_set_new(out, "lag_error", st ? json_null() : json_string(err));
    ctl_json_print(out);
    json_decref(out);
    rc = HD_EXIT_OK;
    goto done;
  }

  char b1[64], b2[64];
  if (nrelays == 0) {
    printf("RELAYS: none\n");
  } else {
    printf("RELAYS\n");
    ctl_table_t *t = ctl_table_new(9);
    const char *hdr[] = {"SOURCE",        "ID",         "ADDRESS",
                         "SERVER",        "OLDEST_SCN", "NEWEST_SCN",
                         "NEWEST_COMMIT", "BEHIND",     "CONNECTED"};
    for (int i = 0; i < 9; i++)
      ctl_table_cell(t, "%s", hdr[i]);
    for (size_t i = 0; i < nrelays; i++) {
      const ctl_relay_t *r = &relays[i];
      ctl_table_cell(t, "%s", r->source);
      ctl_table_cell(t, "%s", r->name);
      if (!r->ok) {
        ctl_table_cell(t, "unreadable: %s", r->err);
        for (int k = 0; k < 6; k++)
          ctl_table_cell(t, "%s", "");
        continue;
      }
      ctl_table_cell(t, "%s", r->r.advertise);
      ctl_table_cell(t, "%" PRIu64, r->r.source_server_id);
      ctl_table_cell(t, "%" PRIu64, r->r.oldest_scn);
      ctl_table_cell(t, "%" PRIu64, r->r.newest_scn);
      ctl_table_cell(t, "%s", ctl_fmt_time(r->r.newest_ts_ms, b1, sizeof(b1)));
      ctl_table_cell(t, "%s", ctl_fmt_secs(r->behind_s, b2, sizeof(b2)));
      ctl_table_cell(t, "%s", r->r.connected ? "yes" : "no");
    }
    ctl_table_print(t, stdout, 2);
    ctl_table_free(t);
  }
  if (ncoords == 0) {
    printf("COORDINATORS: none\n");
  } else {
    printf("COORDINATORS\n");
    ctl_table_t *t = ctl_table_new(6);
    const char *hdr[] = {"NODE", "ID", "HTTP", "VERSION", "STARTED", "LEADS"};
    for (int i = 0; i < 6; i++)
      ctl_table_cell(t, "%s", hdr[i]);
    for (size_t i = 0; i < ncoords; i++) {
      const ctl_coord_t *k = &coords[i];
      ctl_table_cell(t, "%s", k->node);
      if (!k->ok) {
        ctl_table_cell(t, "unreadable: %s", k->err);
        for (int j = 0; j < 4; j++)
          ctl_table_cell(t, "%s", "");
        continue;
      }
      ctl_table_cell(t, "%s", k->e.id);
      ctl_table_cell(t, "%s", k->e.http);
      ctl_table_cell(t, "%s", k->e.version);
      ctl_table_cell(t, "%s", ctl_fmt_time(k->e.started_ms, b1, sizeof(b1)));
      ctl_table_cell(t, "%s", i == 0 ? "yes" : "-");
    }
    ctl_table_print(t, stdout, 2);
    ctl_table_free(t);
  }
  if (ngroups == 0)
    printf("GROUPS: none\n");
  for (size_t i = 0; i < ngroups; i++)
    print_group(&groups[i], leader_group(st, groups[i].name));
  if (st) {
    int64_t ms = jint(st, "lag_sampled_ms");
    printf("lag: from coordinator %s (%s), sampled %s\n", coords[who].e.id,
           coords[who].e.http,
           ctl_fmt_time(ms > 0 ? (uint64_t)ms : 0, b1, sizeof(b1)));
  } else {
    printf("lag: needs a leading coordinator: %s\n", err);
  }
  rc = HD_EXIT_OK;
done:
  json_decref(st);
  for (size_t i = 0; groups && i < ngroups; i++)
    ctl_group_free(&groups[i]);
  free(groups);
  ctl_strv_free(gnames, ngroups);
  free(relays);
  free(coords);
  ctl_ops_close(&o);
  return rc;
}

/* --------------------------------------------------------------- lag */

static const char lag_usage[] =
    "Usage: heraldctl lag --zk HOSTS --cluster NAME [--group G]\n"
    "                     [--max-seconds S] [--json]\n"
    "\n"
    "Prints each partition's lag as the leading coordinator computes it:\n"
    "GROUP PARTITION OWNER SCN LAG STATUS, worst first within each group\n"
    "(status UNOWNED, STOP, STALL, WARN, OK; then the larger lag). LAG is\n"
    "the source's newest commit time at the relays minus the commit time\n"
    "of the checkpoint's window; '-' when unknown.\n"
    "\n"
    "Options:\n" CTL_OPS_USAGE "  --group G                only this group\n"
    "  --max-seconds S          exit 1 when a partition's lag is above S\n"
    "                           seconds, or unknown while the partition is\n"
    "                           behind the relays, or its status is UNOWNED\n"
    "                           or STOP (the partitions over are named on\n"
    "                           stderr)\n"
    "  --json                   one JSON object instead of the table\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 every partition within --max-seconds (or none given);\n"
    "1 one is not; 2 bad usage, ZooKeeper unreachable, no such group, or no\n"
    "leading coordinator answered.\n";

typedef struct {
  const char *group;
  json_t *e; /* borrowed */
  int rank;
  double lag;
  uint32_t p;
} lag_row_t;

static int cmp_row(const void *a, const void *b) {
  const lag_row_t *x = a, *y = b;
  if (x->rank != y->rank)
    return y->rank - x->rank;
  if (x->lag != y->lag)
    return y->lag > x->lag ? 1 : -1;
  return x->p < y->p ? -1 : x->p > y->p;
}

/* Why partition entry e is over the bound, or NULL. */
static const char *over(json_t *e, json_t *lg, double max, char *buf,
                        size_t n) {
  const char *st = jstr(e, "status");
  if (st && (strcmp(st, "UNOWNED") == 0 || strcmp(st, "STOP") == 0)) {
    snprintf(buf, n, "status %s", st);
    return buf;
  }
  double lag = jnum(e, "lag_seconds");
  if (lag > max) {
    char b[32];
    snprintf(buf, n, "lag %s", ctl_fmt_secs(lag, b, sizeof(b)));
    return buf;
  }
  if (lag < 0) {
    int64_t newest = jint(lg, "relay_newest_scn");
    int64_t scn = jint(e, "scn");
    if (newest < 0) {
      snprintf(buf, n, "lag unknown: no relay");
      return buf;
    }
    if (scn < newest) {
      snprintf(buf, n, "lag unknown while behind the relays");
      return buf;
    }
  }
  return NULL;
}

#define LAG_PROG "heraldctl lag"

/* lag's own option: --max-seconds into *(double *)ctx. */
static int lag_option(void *ctx, int c, const char *arg) {
  double *max = ctx;
  if (c != 'm')
    return -1;
  char *end;
  *max = strtod(arg, &end);
  if (end == arg || *end || !(*max >= 0) || !isfinite(*max))
    return hd_cli_usage(LAG_PROG,
                        "--max-seconds: '%s' is not a number of seconds", arg);
  return 0;
}

int ctl_lag(int argc, char **argv) {
  static const struct option opts[] = {
      CTL_OPS_OPTIONS,
      {"max-seconds", required_argument, NULL, 'm'},
      {NULL, 0, NULL, 0}};
  ctl_ops_t o;
  ctl_ops_init(&o, LAG_PROG);
  double max = -1;
  int rc = ctl_ops_parse(&o, argc, argv, opts, lag_usage, lag_option, &max, 0);
  if (rc >= 0)
    return rc;
  const char *only = o.group;
  if ((rc = ctl_ops_connect(&o)) != 0)
    return rc;
  ctl_coord_t *coords = NULL;
  size_t ncoords = 0, who = 0, nrows = 0, nover = 0;
  char err[2048];
  json_t *st = NULL, *out = NULL, *overs = json_array();
  lag_row_t *rows = NULL;
  rc = HD_EXIT_USAGE;
  if (only) {
    /* an unknown group is an error, whatever the leader says */
    ctl_group_t g;
    int r = ctl_group_read(&o, only, 0, &g, err, sizeof(err));
    ctl_group_free(&g);
    if (r != 0) {
      fprintf(stderr, "%s: %s\n", o.prog, err);
      goto done;
    }
  }
  int zrc = ctl_coordinators(&o, &coords, &ncoords);
  if (zrc != ZOK) {
    fprintf(stderr, "%s: reading the election: %s\n", o.prog, ctl_zerror(zrc));
    goto done;
  }
  st = ctl_leader_status(&o, coords, ncoords, &who, err, sizeof(err));
  if (st == NULL) {
    fprintf(stderr, "%s: lag needs a leading coordinator: %s\n", o.prog, err);
    goto done;
  }
  json_t *gs = json_object_get(st, "groups");
  if (only && json_object_get(gs, only) == NULL) {
    fprintf(stderr, "%s: coordinator %s has not read group '%s' yet\n", o.prog,
            coords[who].e.id, only);
    goto done;
  }
  /* the groups by name */
  size_t ng = only ? 1 : json_object_size(gs), k = 0;
  const char **names = hd_calloc(ng ? ng : 1, sizeof(char *));
  const char *key;
  json_t *val;
  if (only)
    names[k++] = only;
  else
    json_object_foreach(gs, key, val) names[k++] = key;
  qsort(names, ng, sizeof(char *), cmp_name);
  out = json_object();
  json_t *jg = json_object();
  ctl_table_t *t = ctl_table_new(6);
  const char *hdr[] = {"GROUP", "PARTITION", "OWNER", "SCN", "LAG", "STATUS"};
  for (int i = 0; i < 6; i++)
    ctl_table_cell(t, "%s", hdr[i]);
  for (size_t i = 0; i < ng; i++) {
    json_t *lg = json_object_get(gs, names[i]);
    json_t *lag = json_object_get(lg, "lag");
    size_t n = json_array_size(lag);
    json_t *ge = json_pack(
        "{s:O?,s:O?,s:O?,s:O?,s:[]}", "status", json_object_get(lg, "status"),
        "max_lag_seconds", json_object_get(lg, "max_lag_seconds"),
        "relay_newest_scn", json_object_get(lg, "relay_newest_scn"), "error",
        json_object_get(lg, "error"), "lag");
    json_object_set_new(jg, names[i], ge);
    if (n == 0) {
      /* the leader has no figures for the group (its nodes unreadable) */
      const char *e = jstr(lg, "error");
      ctl_table_cell(t, "%s", names[i]);
      ctl_table_cell(t, "%s", "-");
      ctl_table_cell(t, "%s", "-");
      ctl_table_cell(t, "%s", "-");
      ctl_table_cell(t, "%s", "-");
      ctl_table_cell(t, "no lag: %s", e ? e : "no partition known");
      if (max >= 0) {
        json_array_append_new(overs, json_pack("{s:s,s:n,s:s}", "group",
                                               names[i], "partition", "reason",
                                               "no lag known for the group"));
        nover++;
      }
      continue;
    }
    rows = hd_realloc(rows, (nrows + n) * sizeof(*rows));
    for (size_t p = 0; p < n; p++) {
      json_t *e = json_array_get(lag, p);
      char why[128];
      const char *w = max >= 0 ? over(e, lg, max, why, sizeof(why)) : NULL;
      json_t *copy = json_deep_copy(e);
      json_object_set_new(copy, "over", json_boolean(w != NULL));
      json_array_append_new(json_object_get(ge, "lag"), copy);
      if (w) {
        json_array_append_new(overs, json_pack("{s:s,s:I,s:s}", "group",
                                               names[i], "partition",
                                               (json_int_t)p, "reason", w));
        nover++;
      }
      lag_row_t *r = &rows[nrows++];
      r->group = names[i];
      r->e = e;
      r->rank = status_rank(jstr(e, "status"));
      r->lag = jnum(e, "lag_seconds");
      r->p = (uint32_t)p;
    }
  }
  /* worst first within each group, groups in name order */
  for (size_t i = 0, j; i < nrows; i = j) {
    for (j = i; j < nrows && rows[j].group == rows[i].group; j++)
      ;
    qsort(rows + i, j - i, sizeof(*rows), cmp_row);
  }
  for (size_t i = 0; i < nrows; i++) {
    char b[32];
    json_t *e = rows[i].e;
    ctl_table_cell(t, "%s", rows[i].group);
    ctl_table_cell(t, "%u", rows[i].p);
    ctl_table_cell(t, "%s", jstr(e, "owner") ? jstr(e, "owner") : "-");
    ctl_table_cell(t, "%" PRId64, jint(e, "scn") < 0 ? 0 : jint(e, "scn"));
    ctl_table_cell(t, "%s", ctl_fmt_secs(rows[i].lag, b, sizeof(b)));
    ctl_table_cell(t, "%s", jstr(e, "status") ? jstr(e, "status") : "-");
  }
  if (o.json) {
    json_object_set_new(out, "coordinator", json_string(coords[who].e.id));
    json_t *ms = json_object_get(st, "lag_sampled_ms");
    json_object_set(out, "lag_sampled_ms", ms ? ms : json_null());
    json_object_set_new(out, "max_seconds",
                        max >= 0 ? json_real(max) : json_null());
    json_object_set_new(out, "groups", jg);
    json_object_set(out, "over", overs);
    ctl_json_print(out);
  } else {
    json_decref(jg);
    if (ng == 0)
      printf("no group\n");
    else
      ctl_table_print(t, stdout, 0);
  }
  ctl_table_free(t);
  free(names);
  if (nover) {
    hd_buf_t b = {0};
    size_t shown = 0;
    json_t *v;
    size_t idx;
    json_array_foreach(overs, idx, v) {
      if (shown++ == 5) {
        hd_buf_printf(&b, ", ...");
        break;
      }
      json_t *jp = json_object_get(v, "partition");
      hd_buf_printf(&b, "%s%s", idx ? ", " : "", jstr(v, "group"));
      if (json_is_integer(jp))
        hd_buf_printf(&b, "/%" JSON_INTEGER_FORMAT, json_integer_value(jp));
      hd_buf_printf(&b, " (%s)", jstr(v, "reason"));
    }
    char mb[32];
    fprintf(stderr, "%s: %zu partition%s over %s: %s\n", o.prog, nover,
            nover == 1 ? "" : "s", ctl_fmt_secs(max, mb, sizeof(mb)), b.p);
    free(b.p);
    rc = HD_EXIT_FAIL;
  } else {
    rc = HD_EXIT_OK;
  }
done:
  free(rows);
  json_decref(out);
  json_decref(overs);
  json_decref(st);
  free(coords);
  ctl_ops_close(&o);
  return rc;
}
