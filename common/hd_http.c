/*
 * hd_http.c - hd_http.h on libmicrohttpd.
 */
#include "hd_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_mem.h"

void hd_buf_printf(hd_buf_t *b, const char *fmt, ...) {
  for (;;) {
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
      return; /* an encoding error: nothing written */
    if ((size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    b->cap = b->cap * 2 + (size_t)n + 256;
    b->p = hd_realloc(b->p, b->cap);
  }
}

struct hd_http {
  struct MHD_Daemon *d;
  const hd_http_route_t *routes;
  void *ctx;
};

static enum MHD_Result send_reply(struct MHD_Connection *conn,
                                  hd_http_reply_t *r) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      r->len, r->body ? r->body : hd_strdup(""), MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(resp, "Content-Type",
                          r->type ? r->type : "text/plain");
  enum MHD_Result ret =
      MHD_queue_response(conn, r->status ? r->status : MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* @locality libmicrohttpd's thread */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state) {
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)state;
  hd_http_t *h = cls;
  hd_http_reply_t r;
  memset(&r, 0, sizeof(r));
  hd_buf_t b = {0};
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    hd_buf_printf(&b, "only GET\n");
    r.status = MHD_HTTP_METHOD_NOT_ALLOWED;
  } else {
    for (const hd_http_route_t *rt = h->routes; rt->path; rt++)
      if (strcmp(url, rt->path) == 0) {
        rt->fn(h->ctx, &r);
        return send_reply(conn, &r);
      }
    hd_buf_printf(&b, "not found: try");
    for (const hd_http_route_t *rt = h->routes; rt->path; rt++)
      hd_buf_printf(&b, "%s %s", rt == h->routes ? "" : " or", rt->path);
    hd_buf_printf(&b, "\n");
    r.status = MHD_HTTP_NOT_FOUND;
  }
  r.body = b.p;
  r.len = b.len;
  return send_reply(conn, &r);
}

int hd_http_start(const hd_hostport_t *addr, const hd_http_route_t *routes,
                  void *ctx, hd_http_t **out, char *errstr, size_t errlen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
  int ok;
  if (strchr(addr->host, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(addr->port);
    ok = inet_pton(AF_INET6, addr->host, &a->sin6_addr) == 1;
    flags |= MHD_USE_IPv6;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(addr->port);
    ok = inet_pton(AF_INET, addr->host, &a->sin_addr) == 1;
  }
  if (!ok) {
    snprintf(errstr, errlen, "'%s' is not an IP address", addr->host);
    return -1;
  }
  hd_http_t *h = hd_calloc(1, sizeof(*h));
  h->routes = routes;
  h->ctx = ctx;
  h->d = MHD_start_daemon(flags, addr->port, NULL, NULL, on_request, h,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                          MHD_OPTION_CONNECTION_LIMIT, 64U,
                          MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
  if (h->d == NULL) {
    snprintf(errstr, errlen, "%s:%u: cannot listen (address in use?)",
             addr->host, addr->port);
    free(h);
    return -1;
  }
  *out = h;
  return 0;
}

uint16_t hd_http_port(const hd_http_t *h) {
  const union MHD_DaemonInfo *i =
      MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  return i ? i->port : 0;
}

void hd_http_stop(hd_http_t *h) {
  if (h == NULL)
    return;
  MHD_stop_daemon(h->d);
  free(h);
}

void hd_prom_family(hd_buf_t *b, const char *name, const char *type,
                    const char *help) {
  hd_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* label="value", the value escaped as the text format wants. */
static void prom_label(hd_buf_t *b, const char *label, const char *value) {
  hd_buf_printf(b, "%s=\"", label);
  for (const char *c = value; *c; c++) {
    if (*c == '\\' || *c == '"')
      hd_buf_printf(b, "\\%c", *c);
    else if (*c == '\n')
      hd_buf_printf(b, "\\n");
    else
      hd_buf_printf(b, "%c", *c);
  }
  hd_buf_printf(b, "\"");
}

void hd_prom_sample(hd_buf_t *b, const char *name, const char *label,
                    const char *value, double v) {
  hd_prom_sample2(b, name, label, value, NULL, NULL, v);
}

void hd_prom_sample2(hd_buf_t *b, const char *name, const char *l1,
                     const char *v1, const char *l2, const char *v2, double v) {
  if (l1 == NULL) {
    hd_buf_printf(b, "%s %.17g\n", name, v);
    return;
  }
  hd_buf_printf(b, "%s{", name);
  prom_label(b, l1, v1);
  if (l2) {
    hd_buf_printf(b, ",");
    prom_label(b, l2, v2);
  }
  hd_buf_printf(b, "} %.17g\n", v);
}

void hd_prom_metric(hd_buf_t *b, const char *name, const char *type,
                    const char *help, double v) {
  hd_prom_family(b, name, type, help);
  hd_prom_sample(b, name, NULL, NULL, v);
}
