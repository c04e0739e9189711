/*
 * agent_http.c - herald-agent's /metrics (Prometheus text) and /status
 * (JSON) on agent.http: per partition held, the SCN applied and
 * checkpointed, windows and rows applied, lag behind the relay's head,
 * sink errors and relay failovers.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "hd_group.h"
#include "hd_http.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_time.h"

struct agent_http {
  hd_http_t *srv;
  agent_t *a;
  uint32_t n;
};

uint64_t agent_lag_ms(const agent_pstat_t *s) {
  if (s->applied_scn >= s->newest_scn || s->newest_ts_ms <= s->applied_ts_ms)
    return 0;
  return s->newest_ts_ms - s->applied_ts_ms;
}

static agent_pstat_t *snapshot(agent_http_t *h, agent_info_t *info) {
  agent_pstat_t *ps = hd_calloc(h->n, sizeof(*ps));
  agent_stats(h->a, info, ps);
  return ps;
}

typedef uint64_t (*field_fn)(const agent_pstat_t *s);
static uint64_t f_applied(const agent_pstat_t *s) {
  return s->applied_scn;
}
static uint64_t f_ckpt(const agent_pstat_t *s) {
  return s->ckpt_scn;
}
static uint64_t f_windows(const agent_pstat_t *s) {
  return s->windows;
}
static uint64_t f_rows(const agent_pstat_t *s) {
  return s->rows;
}
static uint64_t f_errors(const agent_pstat_t *s) {
  return s->sink_errors;
}
static uint64_t f_failovers(const agent_pstat_t *s) {
  return s->failovers;
}
static uint64_t f_snap_rows(const agent_pstat_t *s) {
  return s->snap_rows;
}
static uint64_t f_snap_chunks(const agent_pstat_t *s) {
  return s->snap_chunks;
}
static uint64_t f_snap_running(const agent_pstat_t *s) {
  return s->snap_state == HD_CK_SNAPSHOT_RUNNING;
}

static void metrics(void *ctx, hd_http_reply_t *r) {
  agent_http_t *h = ctx;
  agent_info_t info;
  agent_pstat_t *ps = snapshot(h, &info);
  hd_buf_t b = {0};
  uint32_t held = 0;
  for (uint32_t p = 0; p < h->n; p++)
    held += ps[p].held != 0;
  hd_prom_metric(&b, "herald_agent_partitions_held", "gauge",
                 "partitions this agent applies now", held);
  hd_prom_metric(&b, "herald_agent_zookeeper_connected", "gauge",
                 "1 while the agent's ZooKeeper session is confirmed",
                 info.connected);
  static const struct {
    const char *name, *type, *help;
    field_fn f;
  } fam[] = {
      {"herald_agent_applied_scn", "gauge",
       "SCN up to which the partition's windows reached the sink", f_applied},
      {"herald_agent_checkpoint_scn", "gauge",
       "SCN of the partition's last checkpoint written", f_ckpt},
      {"herald_agent_windows_applied_total", "counter",
       "windows applied to the sink", f_windows},
      {"herald_agent_rows_applied_total", "counter",
       "row changes applied to the sink", f_rows},
      {"herald_agent_sink_errors_total", "counter",
       "failed sink opens, writes and flushes", f_errors},
      {"herald_agent_relay_failovers_total", "counter",
       "moves to another relay", f_failovers},
      {"herald_agent_snapshot_running", "gauge",
       "1 while the partition's snapshot is under way", f_snap_running},
      {"herald_agent_snapshot_chunks_total", "counter",
       "snapshot chunks applied to the partition (across its holders)",
       f_snap_chunks},
      {"herald_agent_snapshot_rows_total", "counter",
       "snapshot rows (op r) applied to the partition (across its holders)",
       f_snap_rows},
  };
  char lbl[16];
  for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
    hd_prom_family(&b, fam[i].name, fam[i].type, fam[i].help);
    for (uint32_t p = 0; p < h->n; p++)
      if (ps[p].held) {
        snprintf(lbl, sizeof(lbl), "%u", p);
        hd_prom_sample(&b, fam[i].name, "partition", lbl,
                       (double)fam[i].f(&ps[p]));
      }
  }
  hd_prom_family(&b, "herald_agent_lag_seconds", "gauge",
                 "commit time of the relay's newest window minus that of "
                 "the partition's last applied one; 0 at the head");
  for (uint32_t p = 0; p < h->n; p++)
    if (ps[p].held) {
      snprintf(lbl, sizeof(lbl), "%u", p);
      hd_prom_sample(&b, "herald_agent_lag_seconds", "partition", lbl,
                     (double)agent_lag_ms(&ps[p]) / 1000.0);
    }
  free(ps);
  r->type = "text/plain; version=0.0.4";
  r->body = b.p ? b.p : hd_strdup("");
  r->len = b.len;
}

/* A partition's snapshot: where it is and how fast it goes. The time
 * left is that of the table in progress, from the source's estimate of
 * its rows (information_schema.TABLES), so it is an estimate too. */
static json_t *snap_json(const agent_pstat_t *s) {
  double secs = s->snap_started_ms
                    ? (double)(hd_now_ms() - s->snap_started_ms) / 1000.0
                    : 0;
  double rate = secs > 0 ? (double)s->snap_rows_read / secs : 0;
  json_t *o = json_object();
  json_object_set_new(
      o, "state",
      json_string(hd_ck_snapshot_state_name((uint32_t)s->snap_state)));
  json_object_set_new(o, "request", json_integer((json_int_t)s->snap_request));
  json_object_set_new(o, "table", json_string(s->snap_table));
  json_object_set_new(o, "tables_done", json_integer(s->snap_tables_done));
  json_object_set_new(o, "tables_total", json_integer(s->snap_tables_total));
  json_object_set_new(o, "table_rows",
                      json_integer((json_int_t)s->snap_table_rows));
  json_object_set_new(o, "table_rows_estimate",
                      json_integer((json_int_t)s->snap_table_estimate));
  json_object_set_new(o, "chunks", json_integer((json_int_t)s->snap_chunks));
  json_object_set_new(o, "rows", json_integer((json_int_t)s->snap_rows));
  json_object_set_new(o, "rows_read",
                      json_integer((json_int_t)s->snap_rows_read));
  json_object_set_new(o, "rows_read_per_s", json_real(rate));
  if (s->snap_state == HD_CK_SNAPSHOT_RUNNING && rate > 0 &&
      s->snap_table_estimate > s->snap_table_rows)
    json_object_set_new(
        o, "table_eta_seconds",
        json_real((double)(s->snap_table_estimate - s->snap_table_rows) /
                  rate));
  else
    json_object_set_new(o, "table_eta_seconds", json_null());
  return o;
}

static void status(void *ctx, hd_http_reply_t *r) {
  agent_http_t *h = ctx;
  agent_info_t info;
  agent_pstat_t *ps = snapshot(h, &info);
  json_t *o = json_object(), *parts = json_array(), *held = json_array();
  json_object_set_new(o, "id", json_string(info.id));
  json_object_set_new(o, "group",
                      info.group ? json_string(info.group) : json_null());
  json_object_set_new(o, "mode", json_string(info.mode));
  char sess[24];
  snprintf(sess, sizeof(sess), "0x%" PRIx64, info.session);
  json_object_set_new(o, "session", json_string(sess));
  json_object_set_new(o, "zookeeper_connected", json_boolean(info.connected));
  json_object_set_new(o, "partitions", json_integer(info.partitions));
  for (uint32_t p = 0; p < h->n; p++) {
    if (!ps[p].held)
      continue;
    json_array_append_new(held, json_integer(p));
    json_t *e = json_object();
    json_object_set_new(e, "partition", json_integer(p));
    json_object_set_new(e, "applied_scn",
                        json_integer((json_int_t)ps[p].applied_scn));
    json_object_set_new(e, "applied_ts_ms",
                        json_integer((json_int_t)ps[p].applied_ts_ms));
    json_object_set_new(e, "checkpoint_scn",
                        json_integer((json_int_t)ps[p].ckpt_scn));
    json_object_set_new(e, "checkpoint_written_ms",
                        json_integer((json_int_t)ps[p].ckpt_written_ms));
    json_object_set_new(e, "relay_newest_scn",
                        json_integer((json_int_t)ps[p].newest_scn));
    json_object_set_new(e, "lag_ms",
                        json_integer((json_int_t)agent_lag_ms(&ps[p])));
    json_object_set_new(e, "windows", json_integer((json_int_t)ps[p].windows));
    json_object_set_new(e, "rows", json_integer((json_int_t)ps[p].rows));
    json_object_set_new(e, "sink_errors",
                        json_integer((json_int_t)ps[p].sink_errors));
    json_t *se = ps[p].sink_error[0] ? json_string(ps[p].sink_error) : NULL;
    if (ps[p].sink_error[0] && se == NULL) /* not UTF-8: the log has it */
      se = json_string("(see the log: the message is not UTF-8)");
    json_object_set_new(e, "last_sink_error", se ? se : json_null());
    json_object_set_new(e, "last_sink_error_ms",
                        json_integer((json_int_t)ps[p].sink_error_ms));
    json_object_set_new(e, "failovers",
                        json_integer((json_int_t)ps[p].failovers));
    json_object_set_new(e, "relay", json_string(ps[p].relay));
    if (ps[p].snap_state)
      json_object_set_new(e, "snapshot", snap_json(&ps[p]));
    json_array_append_new(parts, e);
  }
  json_object_set_new(o, "held", held);
  json_object_set_new(o, "partition_status", parts);
  free(ps);
  r->type = "application/json";
  r->body = json_dumps(o, JSON_COMPACT);
  r->len = r->body ? strlen(r->body) : 0;
  json_decref(o);
}

static const hd_http_route_t routes[] = {
    {"/metrics", metrics}, {"/status", status}, {NULL, NULL}};

int agent_http_start(agent_t *a, const hd_agent_conf_t *conf,
                     agent_http_t **out) {
  *out = NULL;
  if (conf->agent.http.port == 0)
    return 0;
  agent_http_t *h = hd_calloc(1, sizeof(*h));
  h->a = a;
  h->n = (uint32_t)conf->agent.partitions;
  char err[300];
  if (hd_http_start(&conf->agent.http, routes, h, &h->srv, err, sizeof(err)) <
      0) {
    hd_log(HD_LL_ERROR, "agent", "agent.http", "err=\"%s\"", err);
    free(h);
    return -1;
  }
  *out = h;
  return 0;
}

void agent_http_stop(agent_http_t *h) {
  if (h == NULL)
    return;
  hd_http_stop(h->srv);
  free(h);
}
