/* Unit tests of hd_parse: sizes, durations, integers, host:port, globs. */
#include <stdint.h>

#include "hd_check.h"
#include "hd_err.h"
#include "hd_parse.h"

START_TEST(size_units) {
  uint64_t v;
  ck_assert_int_eq(hd_parse_size("0", &v), 0);
  ck_assert_uint_eq(v, 0);
  ck_assert_int_eq(hd_parse_size("512", &v), 0);
  ck_assert_uint_eq(v, 512);
  ck_assert_int_eq(hd_parse_size("512B", &v), 0);
  ck_assert_uint_eq(v, 512);
  ck_assert_int_eq(hd_parse_size("64KiB", &v), 0);
  ck_assert_uint_eq(v, 65536);
  ck_assert_int_eq(hd_parse_size("256MiB", &v), 0);
  ck_assert_uint_eq(v, 256ull << 20);
  ck_assert_int_eq(hd_parse_size("256mib", &v), 0);
  ck_assert_uint_eq(v, 256ull << 20);
  ck_assert_int_eq(hd_parse_size("1G", &v), 0);
  ck_assert_uint_eq(v, 1ull << 30);
  ck_assert_int_eq(hd_parse_size("2TiB", &v), 0);
  ck_assert_uint_eq(v, 2ull << 40);
  ck_assert_int_eq(hd_parse_size("5MB", &v), 0);
  ck_assert_uint_eq(v, 5000000);
  ck_assert_int_eq(hd_parse_size("3kB", &v), 0);
  ck_assert_uint_eq(v, 3000);
}
END_TEST

START_TEST(size_errors) {
  uint64_t v = 77;
  ck_assert_int_eq(hd_parse_size("", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_size("MiB", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_size("-1", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_size("1.5GiB", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_size("12XB", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_size(" 1", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_size("1 MiB", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_size("99999999999999999999", &v), HD_ERANGE);
  ck_assert_int_eq(hd_parse_size("17179869184GiB", &v), HD_ERANGE);
  ck_assert_uint_eq(v, 77); /* untouched on error */
}
END_TEST

START_TEST(durations) {
  uint64_t v;
  ck_assert_int_eq(hd_parse_duration_ms("0", &v), 0);
  ck_assert_uint_eq(v, 0);
  ck_assert_int_eq(hd_parse_duration_ms("500ms", &v), 0);
  ck_assert_uint_eq(v, 500);
  ck_assert_int_eq(hd_parse_duration_ms("30s", &v), 0);
  ck_assert_uint_eq(v, 30000);
  ck_assert_int_eq(hd_parse_duration_ms("72h", &v), 0);
  ck_assert_uint_eq(v, 72ull * 3600 * 1000);
  ck_assert_int_eq(hd_parse_duration_ms("1h30m", &v), 0);
  ck_assert_uint_eq(v, 5400000);
  ck_assert_int_eq(hd_parse_duration_ms("7d", &v), 0);
  ck_assert_uint_eq(v, 7ull * 86400 * 1000);
  ck_assert_int_eq(hd_parse_duration_ms("1m1s1ms", &v), 0);
  ck_assert_uint_eq(v, 61001);
  ck_assert_int_eq(hd_parse_duration_ms("10", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_duration_ms("", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_duration_ms("h", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_duration_ms("5w", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_duration_ms("-5s", &v), HD_EPARSE);
  ck_assert_int_eq(hd_parse_duration_ms("999999999999999999d", &v), HD_ERANGE);
}
END_TEST

START_TEST(integers) {
  uint64_t u;
  int64_t i;
  ck_assert_int_eq(hd_parse_u64("18446744073709551615", &u), 0);
  ck_assert_uint_eq(u, UINT64_MAX);
  ck_assert_int_eq(hd_parse_u64("18446744073709551616", &u), HD_ERANGE);
  ck_assert_int_eq(hd_parse_i64("-9223372036854775808", &i), 0);
  ck_assert(i == INT64_MIN);
  ck_assert_int_eq(hd_parse_i64("9223372036854775807", &i), 0);
  ck_assert(i == INT64_MAX);
  ck_assert_int_eq(hd_parse_i64("9223372036854775808", &i), HD_ERANGE);
  ck_assert_int_eq(hd_parse_i64("-9223372036854775809", &i), HD_ERANGE);
  ck_assert_int_eq(hd_parse_i64("+42", &i), 0);
  ck_assert_int_eq(i, 42);
  ck_assert_int_eq(hd_parse_i64("4x", &i), HD_EPARSE);
  ck_assert_int_eq(hd_parse_i64("-", &i), HD_EPARSE);
}
END_TEST

START_TEST(hostport) {
  char h[64];
  uint16_t p;
  ck_assert_int_eq(hd_parse_hostport("127.0.0.1:7400", h, sizeof(h), &p), 0);
  ck_assert_str_eq(h, "127.0.0.1");
  ck_assert_uint_eq(p, 7400);
  ck_assert_int_eq(hd_parse_hostport("[::1]:65535", h, sizeof(h), &p), 0);
  ck_assert_str_eq(h, "::1");
  ck_assert_uint_eq(p, 65535);
  ck_assert_int_eq(hd_parse_hostport("localhost:1", h, sizeof(h), &p), 0);
  ck_assert_int_eq(hd_parse_hostport("::1:80", h, sizeof(h), &p), HD_EPARSE);
  ck_assert_int_eq(hd_parse_hostport("host", h, sizeof(h), &p), HD_EPARSE);
  ck_assert_int_eq(hd_parse_hostport(":80", h, sizeof(h), &p), HD_EPARSE);
  ck_assert_int_eq(hd_parse_hostport("h:0", h, sizeof(h), &p), HD_ERANGE);
  ck_assert_int_eq(hd_parse_hostport("h:65536", h, sizeof(h), &p), HD_ERANGE);
  ck_assert_int_eq(hd_parse_hostport("h:", h, sizeof(h), &p), HD_EPARSE);
  ck_assert_int_eq(hd_parse_hostport("[::1]80", h, sizeof(h), &p), HD_EPARSE);
  ck_assert_int_eq(hd_parse_hostport("hh:80", h, 2, &p), HD_EPARSE);
}
END_TEST

START_TEST(hostport_format_and_wildcards) {
  char b[32];
  ck_assert_int_eq(hd_fmt_hostport("127.0.0.1", 7400, b, sizeof(b)), 0);
  ck_assert_str_eq(b, "127.0.0.1:7400");
  ck_assert_int_eq(hd_fmt_hostport("::1", 1, b, sizeof(b)), 0);
  ck_assert_str_eq(b, "[::1]:1");
  ck_assert_int_eq(hd_fmt_hostport("relay1.example.com", 65535, b, 15),
                   HD_ERANGE);
  ck_assert_str_eq(b, "");
  /* What it writes, hd_parse_hostport reads back. */
  char h[64];
  uint16_t p;
  ck_assert_int_eq(hd_fmt_hostport("fe80::1%eth0", 80, b, sizeof(b)), 0);
  ck_assert_int_eq(hd_parse_hostport(b, h, sizeof(h), &p), 0);
  ck_assert_str_eq(h, "fe80::1%eth0");
  ck_assert_uint_eq(p, 80);

  ck_assert(hd_host_is_wildcard(""));
  ck_assert(hd_host_is_wildcard("0.0.0.0"));
  ck_assert(hd_host_is_wildcard("::"));
  ck_assert(hd_host_is_wildcard("0:0::0"));
  ck_assert(!hd_host_is_wildcard("127.0.0.1"));
  ck_assert(!hd_host_is_wildcard("::1"));
  ck_assert(!hd_host_is_wildcard("localhost"));
  ck_assert(!hd_host_is_wildcard("0.0.0.0.example.com"));
}
END_TEST

START_TEST(globs) {
  ck_assert(hd_glob_match("*.*", "shop.orders"));
  ck_assert(hd_glob_match("shop.*", "shop.orders"));
  ck_assert(!hd_glob_match("shop.*", "shop2.orders"));
  ck_assert(hd_glob_match("*.ord*s", "a.orders"));
  ck_assert(!hd_glob_match("*.ord*s", "a.ordersx"));
  ck_assert(hd_glob_match("a*b*c", "aXbYbZc"));
  ck_assert(hd_glob_match("*", ""));
  ck_assert(!hd_glob_match("a", ""));
  ck_assert(hd_glob_match("**a**", "bab"));
  ck_assert(!hd_glob_match("Shop.*", "shop.x")); /* case-sensitive */
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("parse");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, size_units);
  tcase_add_test(tc, size_errors);
  tcase_add_test(tc, durations);
  tcase_add_test(tc, integers);
  tcase_add_test(tc, hostport);
  tcase_add_test(tc, hostport_format_and_wildcards);
  tcase_add_test(tc, globs);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
