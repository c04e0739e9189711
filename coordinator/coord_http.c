/*
 * coord_http.c - /metrics and /status of herald-coordinator (hd_http).
 *
 * Both are rendered per request from the view the loop publishes
 * (coord.h), under its lock: the leader flag is the one the session
 * listener clears on a disconnect, so neither can show a leader that has
 * stopped acting.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "coord_console.h"
#include "hd_http.h"
#include "hd_lag.h"
#include "hd_time.h"

static void metrics(void *ctx, hd_http_reply_t *r) {
  coord_t *c = ctx;
  hd_buf_t b = {0};
  pthread_mutex_lock(&c->mu);
  hd_prom_metric(&b, "herald_coordinator_leader", "gauge",
                 "1 while this coordinator leads (and may write "
                 "assignments).",
                 c->leading);
  hd_prom_metric(&b, "herald_coordinator_connected", "gauge",
                 "1 while the ZooKeeper session is connected.", c->connected);
  hd_prom_metric(&b, "herald_coordinator_assignment_writes_total", "counter",
                 "Assignments this coordinator wrote.", (double)c->writes);
  static const struct {
    const char *name, *help;
    size_t off;
  } per_group[] = {
      {"herald_group_members", "Live members (distinct agent ids).",
       offsetof(coord_gstat_t, members)},
      {"herald_group_partitions", "Partitions of the group (N).",
       offsetof(coord_gstat_t, partitions)},
      {"herald_group_unowned_partitions",
       "Partitions neither granted nor pending (no live member).",
       offsetof(coord_gstat_t, unowned)},
      {"herald_group_pending_partitions",
       "Partitions moving: revoked, not granted yet.",
       offsetof(coord_gstat_t, pending)},
  };
  for (size_t k = 0; k < sizeof(per_group) / sizeof(per_group[0]); k++) {
    hd_prom_family(&b, per_group[k].name, "gauge", per_group[k].help);
    for (size_t i = 0; i < c->ngstats; i++) {
      uint32_t v;
      memcpy(&v, (const char *)&c->gstats[i] + per_group[k].off, sizeof(v));
      hd_prom_sample(&b, per_group[k].name, "group", c->gstats[i].name, v);
    }
  }
  hd_prom_family(&b, "herald_group_assignment_version", "gauge",
                 "Version of the group's assignment (0: none yet).");
  for (size_t i = 0; i < c->ngstats; i++)
    hd_prom_sample(&b, "herald_group_assignment_version", "group",
                   c->gstats[i].name, (double)c->gstats[i].version);
  if (c->lag_metrics) /* the leader's: partitions' lag, relays */
    hd_buf_printf(&b, "%s", c->lag_metrics);
  pthread_mutex_unlock(&c->mu);
  r->type = "text/plain; version=0.0.4";
  r->body = b.p;
  r->len = b.len;
}

static void status(void *ctx, hd_http_reply_t *r) {
  coord_t *c = ctx;
  pthread_mutex_lock(&c->mu);
  json_t *groups = c->status_groups ? c->status_groups : json_object();
  if (c->status_groups)
    json_incref(groups);
  json_t *relays =
      c->status_relays ? json_incref(c->status_relays) : json_array();
  json_t *coords =
      c->status_coords ? json_incref(c->status_coords) : json_array();
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:f, s:b, s:s?, s:b, s:s?, s:s?, s:I, s:o, s:I, s:o, "
      "s:o, s:o}",
      "id", c->conf->coordinator.id, "cluster", c->conf->cluster, "version",
      HD_VERSION, "uptime_s", (double)(hd_now_ms() - c->started_ms) / 1000.0,
      "connected", c->connected, "zookeeper_server",
      c->connected && c->zk_server[0] ? c->zk_server : NULL, "leader",
      c->leading, "leader_id", c->leader_id[0] ? c->leader_id : NULL,
      "election_node", c->node[0] ? c->node : NULL, "assignment_writes",
      (json_int_t)c->writes, "lag_sampled_ms",
      c->lag_sampled_ms ? json_integer((json_int_t)c->lag_sampled_ms)
                        : json_null(),
      "lag_interval_ms", (json_int_t)c->conf->coordinator.lag_interval_ms,
      "coordinators", coords, "relays", relays, "groups", groups);
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  pthread_mutex_unlock(&c->mu);
  json_decref(o);
  hd_buf_t b = {0};
  if (text)
    hd_buf_printf(&b, "%s\n", text);
  else
    hd_buf_printf(&b, "{\"error\":\"status could not be built\"}\n");
  free(text);
  r->type = "application/json";
  r->body = b.p;
  r->len = b.len;
}

/* The leader's hour of each group's worst lag, oldest first:
 * {"interval_ms":1000,"groups":{"g":[[t_ms, max_lag|null, "OK"], ...]}}. */
static void history(void *ctx, hd_http_reply_t *r) {
  coord_t *c = ctx;
  json_t *groups = json_object();
  pthread_mutex_lock(&c->mu);
  uint64_t step = c->conf->coordinator.lag_interval_ms;
  for (size_t i = 0; i < c->nhist; i++) {
    const coord_hist_t *h = &c->hist[i];
    json_t *pts = json_array();
    for (size_t k = 0; k < h->n; k++) {
      const coord_hpoint_t *pt =
          &h->pts[(h->head + h->cap - h->n + k) % h->cap];
      json_array_append_new(
          pts,
          json_pack("[I, o, s]", (json_int_t)pt->t_ms,
                    pt->max_lag >= 0 ? json_real(pt->max_lag) : json_null(),
                    hd_lag_status_name((hd_lag_status_t)pt->status)));
    }
    json_object_set_new(groups, h->name, pts);
  }
  pthread_mutex_unlock(&c->mu);
  json_t *o =
      json_pack("{s:I, s:o}", "interval_ms",
                (json_int_t)(step > 1000 ? step : 1000), "groups", groups);
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  hd_buf_t b = {0};
  hd_buf_printf(&b, "%s\n", text ? text : "{\"error\":\"no history\"}");
  free(text);
  r->type = "application/json";
  r->body = b.p;
  r->len = b.len;
}

static const hd_http_route_t routes[] = {{"/metrics", metrics},
                                         {"/status", status},
                                         {"/history", history},
                                         {"/", coord_console_index},
                                         {"/console.js", coord_console_js},
                                         {"/console.css", coord_console_css},
                                         {NULL, NULL}};

int coord_http_start(coord_t *c, char *errstr, size_t errlen) {
  return hd_http_start(&c->conf->coordinator.http, routes, c, &c->http, errstr,
                       errlen);
}

void coord_http_stop(coord_t *c) {
  hd_http_stop(c->http);
  c->http = NULL;
}
