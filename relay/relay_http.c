/*
 * relay_http.c - libmicrohttpd handler for /metrics and /status.
 *
 * libmicrohttpd (Debian's libmicrohttpd) parses HTTP for us: request
 * lines, headers, keep-alive and slow clients are its job, not ours.
 */
#include "relay_http.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hd_log.h"
#include "hd_time.h"
#include "hd_mem.h"
#include "hd_parse.h"

struct relay_http {
  struct MHD_Daemon *d;
  const hd_relay_conf_t *conf;
  relay_metrics_t *m;
  uint64_t started_ms;
};

static const char *const err_names[] = {
#define XX(c, s) s,
    RELAY_ERR_MAP(XX)
#undef XX
};

/* Seconds the relay is behind the source: the age of the source time of
 * the last event (heartbeats count as "now" at the source). */
static double behind_s(relay_metrics_t *m) {
  uint64_t ts = RM_GET(m, source_ts_ms), now = hd_now_ms();
  if (ts == 0 || ts > now)
    return 0;
  return (double)(now - ts) / 1000.0;
}

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    b->cap = b->cap * 2 + (n > 0 ? (size_t)n : 0);
    b->p = hd_realloc(b->p, b->cap);
  }
}

static void metric(sbuf_t *b, const char *name, const char *type,
                   const char *help, double v) {
  sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type,
            name, v);
}

static void render_metrics(relay_http_t *h, sbuf_t *b) {
  relay_metrics_t *m = h->m;
  metric(b, "herald_relay_windows_total", "counter",
         "Windows (transactions) captured and stored.",
         (double)RM_GET(m, windows));
  metric(b, "herald_relay_rows_total", "counter", "Row changes captured.",
         (double)RM_GET(m, rows));
  metric(b, "herald_relay_source_bytes_total", "counter",
         "Binlog bytes read from the source.", (double)RM_GET(m, bytes));
  metric(b, "herald_relay_newest_scn", "gauge", "SCN of the newest window.",
         (double)RM_GET(m, newest_scn));
  metric(b, "herald_relay_oldest_scn", "gauge",
         "SCN of the oldest window still served.",
         (double)RM_GET(m, oldest_scn));
  metric(b, "herald_relay_newest_commit_seconds", "gauge",
         "Source commit time of the newest window (Unix seconds).",
         (double)RM_GET(m, newest_ts_ms) / 1000.0);
  metric(b, "herald_relay_seconds_behind_source", "gauge",
         "Age of the source time of the last event read.", behind_s(m));
  metric(b, "herald_relay_source_connected", "gauge",
         "1 while the replication stream is up.", (double)RM_GET(m, connected));
  metric(b, "herald_relay_reconnects_total", "counter",
         "Reconnections to the source.", (double)RM_GET(m, reconnects));
  metric(b, "herald_relay_consumers", "gauge", "Consumers subscribed now.",
         (double)RM_GET(m, consumers));
  metric(b, "herald_relay_buffer_bytes", "gauge",
         "Memory held by the window ring.", (double)RM_GET(m, buffered_bytes));
  metric(b, "herald_relay_buffer_windows", "gauge", "Windows in the ring.",
         (double)RM_GET(m, buffered_windows));
  metric(b, "herald_relay_disk_bytes", "gauge",
         "Bytes of the log store on disk.", (double)RM_GET(m, disk_bytes));
  metric(b, "herald_relay_sent_windows_total", "counter",
         "Windows sent to consumers (all connections).",
         (double)RM_GET(m, sent_windows));
  metric(b, "herald_relay_sent_bytes_total", "counter",
         "Bytes sent to consumers.", (double)RM_GET(m, sent_bytes));
  metric(b, "herald_relay_snapshot_consumers", "gauge",
         "Consumers with a snapshot under way.",
         (double)RM_GET(m, snapshot_consumers));
  metric(b, "herald_relay_snapshot_chunks_read_total", "counter",
         "Snapshot chunks read from the source.",
         (double)RM_GET(m, snapshot_chunks_read));
  metric(b, "herald_relay_snapshot_rows_read_total", "counter",
         "Snapshot rows read from the source.",
         (double)RM_GET(m, snapshot_rows_read));
  metric(b, "herald_relay_snapshot_rows_dropped_total", "counter",
         "Snapshot rows left out for a consumer because the stream had "
         "changed them after their chunk was read.",
         (double)RM_GET(m, snapshot_rows_dropped));
  sb_printf(b, "# HELP herald_relay_errors_total Errors by kind.\n"
               "# TYPE herald_relay_errors_total counter\n");
  for (int i = 0; i < RELAY_ERR__N; i++)
    sb_printf(b, "herald_relay_errors_total{kind=\"%s\"} %" PRIu64 "\n",
              err_names[i], RM_GET(m, errors[i]));
}

/* /status, built with jansson: names and the advertise address are
 * escaped by the library, not by hand. */
static void render_status(relay_http_t *h, sbuf_t *b) {
  relay_metrics_t *m = h->m;
  const hd_relay_conf_t *c = h->conf;
  char adv[264];
  hd_fmt_hostport(c->relay.advertise.host, c->relay.advertise.port, adv,
                  sizeof(adv));
  json_t *errs = json_object();
  for (int i = 0; i < RELAY_ERR__N; i++)
    json_object_set_new(errs, err_names[i],
                        json_integer((json_int_t)RM_GET(m, errors[i])));
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:s, s:f, s:b, s:I, s:I, s:I, s:I, s:f, s:I, s:I, "
      "s:I, s:I, s:I, s:o, s:s, s:I}",
      "id", c->relay.id, "cluster", c->cluster, "source", c->source.name,
      "version", HD_VERSION, "uptime_s",
      (double)(hd_now_ms() - h->started_ms) / 1000.0, "source_connected",
      RM_GET(m, connected) != 0, "newest_scn",
      (json_int_t)RM_GET(m, newest_scn), "idle_scn",
      (json_int_t)RM_GET(m, idle_scn), "oldest_scn",
      (json_int_t)RM_GET(m, oldest_scn), "newest_ts_ms",
      (json_int_t)RM_GET(m, newest_ts_ms), "seconds_behind_source", behind_s(m),
      "windows", (json_int_t)RM_GET(m, windows), "rows",
      (json_int_t)RM_GET(m, rows), "consumers",
      (json_int_t)RM_GET(m, consumers), "buffer_bytes",
      (json_int_t)RM_GET(m, buffered_bytes), "disk_bytes",
      (json_int_t)RM_GET(m, disk_bytes), "errors", errs, "advertise", adv,
      "source_server_id", (json_int_t)RM_GET(m, source_server_id));
  if (o)
    json_object_set_new(
        o, "snapshot",
        json_pack("{s:I, s:I, s:I, s:I}", "consumers",
                  (json_int_t)RM_GET(m, snapshot_consumers), "chunks_read",
                  (json_int_t)RM_GET(m, snapshot_chunks_read), "rows_read",
                  (json_int_t)RM_GET(m, snapshot_rows_read), "rows_dropped",
                  (json_int_t)RM_GET(m, snapshot_rows_dropped)));
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  if (text) {
    sb_printf(b, "%s\n", text);
    free(text);
  } else {
    sb_printf(b, "{\"error\":\"status could not be built\"}\n");
  }
  json_decref(o);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code,
                             const char *type, char *body, size_t len) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", type);
  enum MHD_Result ret = MHD_queue_response(conn, code, r);
  MHD_destroy_response(r);
  return ret;
}

/* @locality libmicrohttpd's thread */
static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **ptr) {
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)ptr;
  relay_http_t *h = cls;
  sbuf_t b = {hd_malloc(4096), 0, 4096};
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    sb_printf(&b, "only GET\n");
    return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", b.p, b.len);
  }
  if (strcmp(url, "/metrics") == 0) {
    render_metrics(h, &b);
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", b.p, b.len);
  }
  if (strcmp(url, "/status") == 0) {
    render_status(h, &b);
    return reply(conn, MHD_HTTP_OK, "application/json", b.p, b.len);
  }
  sb_printf(&b, "not found: try /metrics or /status\n");
  return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", b.p, b.len);
}

int relay_http_start(const hd_relay_conf_t *conf, relay_metrics_t *m,
                     relay_http_t **out, char *errstr, size_t errlen) {
  relay_http_t *h = hd_calloc(1, sizeof(*h));
  h->conf = conf;
  h->m = m;
  h->started_ms = hd_now_ms();
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  const hd_hostport_t *hp = &conf->relay.http;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
  if (strchr(hp->host, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(hp->port);
    if (inet_pton(AF_INET6, hp->host, &a->sin6_addr) != 1)
      goto badaddr;
    flags |= MHD_USE_IPv6;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(hp->port);
    if (inet_pton(AF_INET, hp->host, &a->sin_addr) != 1)
      goto badaddr;
  }
  h->d = MHD_start_daemon(flags, hp->port, NULL, NULL, handler, h,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                          MHD_OPTION_CONNECTION_LIMIT, 64U,
                          MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
  if (h->d == NULL) {
    snprintf(errstr, errlen,
             "relay.http %s:%u: cannot listen (address in use?)", hp->host,
             hp->port);
    free(h);
    return -1;
  }
  *out = h;
  return 0;
badaddr:
  snprintf(errstr, errlen, "relay.http: '%s' is not an IP address", hp->host);
  free(h);
  return -1;
}

void relay_http_stop(relay_http_t *h) {
  if (h == NULL)
    return;
  MHD_stop_daemon(h->d);
  free(h);
}
