/*
 * hd_http.h - a small HTTP server for /metrics, /status and the like.
 *
 * GNU libmicrohttpd (Debian's libmicrohttpd) does the HTTP on a thread of
 * its own: request lines, headers, keep-alive and slow clients are its
 * job. A program gives a table of paths and one handler each; a handler
 * fills a reply (status, content type, a body it allocated) and the
 * server sends and frees it. Only GET and HEAD are served (405
 * otherwise); a path the table lacks is a 404 that lists the paths.
 *
 * Also here: a growing string buffer, and the Prometheus text format's
 * few pieces (Debian has no C Prometheus client library), so that every
 * program writes metrics the same way.
 */
#ifndef HD_HTTP_H
#define HD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "hd_config.h" /* hd_hostport_t */

/* ----------------------------------------------------------- buffer */

/* A string that grows; zero-initialise it ({0}). */
typedef struct {
  char *p; /* NUL-terminated once anything was written; free() it */
  size_t len, cap;
} hd_buf_t;

/** @brief Append printf-style; aborts when out of memory (hd_mem.h). */
void hd_buf_printf(hd_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------- server */

typedef struct {
  unsigned status;  /* HTTP status; 200 when left 0 */
  const char *type; /* Content-Type, a static string; "text/plain" if NULL */
  char *body;       /* malloc()ed; the server frees it after sending */
  size_t len;       /* bytes of body */
} hd_http_reply_t;

/**
 * @brief Answer one request for the path of its route; r is zeroed.
 * @locality libmicrohttpd's thread: it must only read state that is
 *           locked or atomic, and not block for long.
 */
typedef void (*hd_http_fn)(void *ctx, hd_http_reply_t *r);

typedef struct {
  const char *path; /* matched exactly, "/metrics" */
  hd_http_fn fn;
} hd_http_route_t;

typedef struct hd_http hd_http_t;

/**
 * @brief Listen on addr (an IPv4 or IPv6 address, not a host name; port 0
 *        takes a free port, see hd_http_port()) and serve routes.
 * @param routes  ends with {NULL, NULL}; must live until hd_http_stop()
 * @param ctx     passed to every handler
 * @returns 0 with *out set, or -1 with errstr saying why (not an IP
 *          address, address in use).
 */
int hd_http_start(const hd_hostport_t *addr, const hd_http_route_t *routes,
                  void *ctx, hd_http_t **out, char *errstr, size_t errlen);

/** @brief The port the server listens on. */
uint16_t hd_http_port(const hd_http_t *h);

/** @brief Stop serving (waits for handlers running now) and free; NULL ok. */
void hd_http_stop(hd_http_t *h);

/* --------------------------------------------------------- prometheus */

/** @brief "# HELP name help" and "# TYPE name type" (gauge, counter). */
void hd_prom_family(hd_buf_t *b, const char *name, const char *type,
                    const char *help);

/**
 * @brief One sample: "name v", or "name{label="value"} v" when label is
 *        not NULL, the value escaped as the text format wants (\\, \", \n).
 */
void hd_prom_sample(hd_buf_t *b, const char *name, const char *label,
                    const char *value, double v);

/** @brief One sample with two labels (l2 NULL: one, l1 NULL: none). */
void hd_prom_sample2(hd_buf_t *b, const char *name, const char *l1,
                     const char *v1, const char *l2, const char *v2, double v);

/** @brief A family of one sample without labels: family + sample. */
void hd_prom_metric(hd_buf_t *b, const char *name, const char *type,
                    const char *help, double v);

#endif
