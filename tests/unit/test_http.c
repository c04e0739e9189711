/* Unit tests of hd_http: routes, 404 and 405 over a real socket on
 * loopback, the buffer, and the Prometheus text pieces. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hd_check.h"
#include "hd_http.h"
#include "hd_mem.h"

static int calls;

static void hello(void *ctx, hd_http_reply_t *r) {
  calls++;
  hd_buf_t b = {0};
  hd_buf_printf(&b, "hello %s\n", (const char *)ctx);
  r->body = b.p;
  r->len = b.len;
  r->type = "text/x-test";
}

static void teapot(void *ctx, hd_http_reply_t *r) {
  (void)ctx;
  r->status = 418; /* no body at all */
}

static const hd_http_route_t routes[] = {
    {"/hello", hello}, {"/teapot", teapot}, {NULL, NULL}};

/* One request over a fresh connection; the whole answer in buf. */
static void request(uint16_t port, const char *req, char *buf, size_t n) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  size_t got = 0;
  ssize_t r;
  while (got + 1 < n && (r = read(fd, buf + got, n - 1 - got)) > 0)
    got += (size_t)r;
  buf[got] = '\0';
  close(fd);
}

START_TEST(serves_routes) {
  hd_hostport_t addr = {"127.0.0.1", 0};
  hd_http_t *h;
  char err[256], buf[4096];
  ck_assert_int_eq(hd_http_start(&addr, routes, "world", &h, err, sizeof(err)),
                   0);
  uint16_t port = hd_http_port(h);
  ck_assert_uint_gt(port, 0);
  request(port, "GET /hello HTTP/1.0\r\n\r\n", buf, sizeof(buf));
  ck_assert_msg(strncmp(buf, "HTTP/1.0 200", 12) == 0 ||
                    strncmp(buf, "HTTP/1.1 200", 12) == 0,
                "%s", buf);
  ck_assert_ptr_nonnull(strstr(buf, "Content-Type: text/x-test"));
  ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\nhello world\n"));
  request(port, "GET /teapot HTTP/1.0\r\n\r\n", buf, sizeof(buf));
  ck_assert_ptr_nonnull(strstr(buf, " 418 "));
  request(port, "GET /nope HTTP/1.0\r\n\r\n", buf, sizeof(buf));
  ck_assert_ptr_nonnull(strstr(buf, " 404 "));
  ck_assert_ptr_nonnull(strstr(buf, "not found: try /hello or /teapot\n"));
  request(port, "POST /hello HTTP/1.0\r\nContent-Length: 0\r\n\r\n", buf,
          sizeof(buf));
  ck_assert_ptr_nonnull(strstr(buf, " 405 "));
  ck_assert_int_eq(calls, 1);

  /* The same address again: in use, said so. */
  hd_http_t *h2;
  addr.port = port;
  ck_assert_int_eq(hd_http_start(&addr, routes, NULL, &h2, err, sizeof(err)),
                   -1);
  ck_assert_ptr_nonnull(strstr(err, "cannot listen"));
  hd_http_stop(h);
  hd_http_stop(NULL);

  hd_hostport_t bad = {"localhost", 80};
  ck_assert_int_eq(hd_http_start(&bad, routes, NULL, &h2, err, sizeof(err)),
                   -1);
  ck_assert_str_eq(err, "'localhost' is not an IP address");
  hd_hostport_t v6 = {"::1", 0};
  if (hd_http_start(&v6, routes, "six", &h2, err, sizeof(err)) == 0)
    hd_http_stop(h2); /* a host without IPv6 may refuse; both are fine */
}
END_TEST

START_TEST(prometheus_text) {
  hd_buf_t b = {0};
  hd_prom_metric(&b, "x_total", "counter", "Things.", 3);
  hd_prom_family(&b, "g", "gauge", "Per group.");
  hd_prom_sample(&b, "g", "group", "a\"b\\c\nd", 0.5);
  hd_prom_sample(&b, "g", "group", "plain", 12345678901234.0);
  ck_assert_str_eq(b.p, "# HELP x_total Things.\n# TYPE x_total counter\n"
                        "x_total 3\n# HELP g Per group.\n# TYPE g gauge\n"
                        "g{group=\"a\\\"b\\\\c\\nd\"} 0.5\n"
                        "g{group=\"plain\"} 12345678901234\n");
  free(b.p);
  /* Growth over many appends keeps everything. */
  hd_buf_t c = {0};
  for (int i = 0; i < 10000; i++)
    hd_buf_printf(&c, "%d,", i % 10);
  ck_assert_uint_eq(c.len, 20000);
  ck_assert_uint_eq(strlen(c.p), 20000);
  free(c.p);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("http");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, serves_routes);
  tcase_add_test(tc, prometheus_text);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
