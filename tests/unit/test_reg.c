/* Unit tests of hd_reg: the relay registration's JSON, both ways, and one
 * clear message for every way a node's data can be wrong. jansson is used
 * here only to take a good node apart. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "hd_check.h"
#include "hd_err.h"
#include "hd_reg.h"

static hd_reg_t sample(void) {
  hd_reg_t r;
  memset(&r, 0, sizeof(r));
  strcpy(r.id, "relay-1");
  strcpy(r.source, "shop");
  strcpy(r.advertise, "relay1.example.com:7400");
  strcpy(r.listen, "0.0.0.0:7400");
  strcpy(r.http, "0.0.0.0:7480");
  strcpy(r.version, "0.1.0");
  r.source_server_id = 4294967295u;
  r.oldest_scn = (3ull << 32) | 4;
  r.newest_scn = (7ull << 32) | 1234;
  r.newest_ts_ms = 1717000000123ull;
  r.connected = 1;
  r.updated_ms = 1717000000999ull;
  return r;
}

/* The names, order and types of the fields are the contract in
 * docs/zookeeper.md: a change here is a change of that document. */
static const char sample_json[] =
    "{\"id\":\"relay-1\",\"source\":\"shop\","
    "\"advertise\":\"relay1.example.com:7400\",\"listen\":\"0.0.0.0:7400\","
    "\"http\":\"0.0.0.0:7480\",\"version\":\"0.1.0\","
    "\"source_server_id\":4294967295,\"oldest_scn\":12884901892,"
    "\"newest_scn\":30064772306,\"newest_ts_ms\":1717000000123,"
    "\"connected\":true,\"updated_ms\":1717000000999}";

static const char *const names[] = {
    "id",         "source",       "advertise",        "listen",
    "http",       "version",      "source_server_id", "oldest_scn",
    "newest_scn", "newest_ts_ms", "connected",        "updated_ms"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static void assert_same(const hd_reg_t *a, const hd_reg_t *b) {
  ck_assert_str_eq(a->id, b->id);
  ck_assert_str_eq(a->source, b->source);
  ck_assert_str_eq(a->advertise, b->advertise);
  ck_assert_str_eq(a->listen, b->listen);
  ck_assert_str_eq(a->http, b->http);
  ck_assert_str_eq(a->version, b->version);
  ck_assert_uint_eq(a->source_server_id, b->source_server_id);
  ck_assert_uint_eq(a->oldest_scn, b->oldest_scn);
  ck_assert_uint_eq(a->newest_scn, b->newest_scn);
  ck_assert_uint_eq(a->newest_ts_ms, b->newest_ts_ms);
  ck_assert_int_eq(a->connected, b->connected);
  ck_assert_uint_eq(a->updated_ms, b->updated_ms);
}

/* Parses text, expecting HD_EREG and exactly msg; *out must not change. */
static void expect_bad(const char *text, size_t len, const char *msg) {
  hd_reg_t r, before;
  char err[512];
  memset(&r, 0x5a, sizeof(r));
  before = r;
  ck_assert_int_eq(hd_reg_parse(text, len, &r, err, sizeof(err)), HD_EREG);
  ck_assert_str_eq(err, msg);
  ck_assert_int_eq(memcmp(&r, &before, sizeof(r)), 0);
}

/* The sample node with one key changed (v) or removed (v == NULL). */
static char *sample_with(const char *key, json_t *v) {
  json_error_t je;
  json_t *o = json_loads(sample_json, 0, &je);
  ck_assert_ptr_nonnull(o);
  if (v)
    json_object_set_new(o, key, v);
  else
    json_object_del(o, key);
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

static void expect_bad_field(const char *key, json_t *v, const char *msg) {
  char *s = sample_with(key, v);
  expect_bad(s, strlen(s), msg);
  free(s);
}

START_TEST(round_trip) {
  hd_reg_t r = sample(), back;
  char *json, err[512];
  ck_assert_int_eq(hd_reg_build(&r, &json, err, sizeof(err)), 0);
  ck_assert_str_eq(json, sample_json);
  ck_assert_int_eq(hd_reg_parse(json, strlen(json), &back, err, sizeof(err)),
                   0);
  assert_same(&r, &back);
  free(json);

  /* The other values: IPv6, false, zeros, the largest integers. */
  strcpy(r.advertise, "[2001:db8::7]:7400");
  strcpy(r.listen, "[::]:7400");
  strcpy(r.http, "[::1]:7480");
  strcpy(r.version, "1.2.3-rc1+g\xc3\xa9"); /* UTF-8 */
  r.connected = 0;
  r.source_server_id = 0;
  r.oldest_scn = 0;
  r.newest_scn = INT64_MAX;
  r.updated_ms = INT64_MAX;
  ck_assert_int_eq(hd_reg_build(&r, &json, err, sizeof(err)), 0);
  ck_assert_int_eq(hd_reg_parse(json, strlen(json), &back, err, sizeof(err)),
                   0);
  assert_same(&r, &back);
  free(json);
}
END_TEST

START_TEST(extra_fields_ignored) {
  /* A newer relay may add fields; an older reader takes what it knows. */
  char *s = sample_with("zone", json_string("eu-1"));
  hd_reg_t r, want = sample();
  char err[512];
  ck_assert_int_eq(hd_reg_parse(s, strlen(s), &r, err, sizeof(err)), 0);
  assert_same(&r, &want);
  free(s);
  /* Not NUL-terminated: the length counts, not a terminator. */
  char buf[sizeof(sample_json) + 8];
  memcpy(buf, sample_json, sizeof(sample_json) - 1);
  memset(buf + sizeof(sample_json) - 1, 'x', 9);
  ck_assert_int_eq(
      hd_reg_parse(buf, sizeof(sample_json) - 1, &r, err, sizeof(err)), 0);
}
END_TEST

START_TEST(missing_fields) {
  char msg[128];
  for (size_t i = 0; i < NNAMES; i++) {
    snprintf(msg, sizeof(msg), "missing field '%s'", names[i]);
    expect_bad_field(names[i], NULL, msg);
  }
  expect_bad("{}", 2, "missing field 'id'");
}
END_TEST

START_TEST(wrong_types) {
  expect_bad_field("id", json_integer(5),
                   "field 'id': expected a string, got an integer");
  expect_bad_field("source", json_null(),
                   "field 'source': expected a string, got null");
  expect_bad_field("advertise", json_pack("[si]", "h", 1),
                   "field 'advertise': expected a string, got an array");
  expect_bad_field("version", json_object(),
                   "field 'version': expected a string, got an object");
  expect_bad_field("newest_scn", json_string("5"),
                   "field 'newest_scn': expected a non-negative integer, got "
                   "a string");
  expect_bad_field("oldest_scn", json_real(1.5),
                   "field 'oldest_scn': expected a non-negative integer, got "
                   "a real number");
  expect_bad_field("newest_ts_ms", json_true(),
                   "field 'newest_ts_ms': expected a non-negative integer, "
                   "got a boolean");
  expect_bad_field("source_server_id", json_integer(-1),
                   "field 'source_server_id': -1 is negative");
  expect_bad_field("connected", json_integer(1),
                   "field 'connected': expected true or false, got an "
                   "integer");
  expect_bad_field("connected", json_string("true"),
                   "field 'connected': expected true or false, got a string");
}
END_TEST

START_TEST(bad_values) {
  expect_bad_field("id", json_string(""), "field 'id': must not be empty");
  expect_bad_field("advertise", json_string("relay1"),
                   "field 'advertise': 'relay1' is not host:port (port "
                   "1-65535, IPv6 in brackets)");
  expect_bad_field("http", json_string("h:0"),
                   "field 'http': 'h:0' is not host:port (port 1-65535, IPv6 "
                   "in brackets)");
  expect_bad_field("listen", json_string("::1:7400"),
                   "field 'listen': '::1:7400' is not host:port (port "
                   "1-65535, IPv6 in brackets)");
  expect_bad_field("advertise", json_string("0.0.0.0:7400"),
                   "field 'advertise': '0.0.0.0:7400' is a wildcard address, "
                   "which no client can dial");
  expect_bad_field("advertise", json_string("[::]:7400"),
                   "field 'advertise': '[::]:7400' is a wildcard address, "
                   "which no client can dial");
  char longname[200];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  expect_bad_field("source", json_string(longname),
                   "field 'source': longer than 128 bytes");
}
END_TEST

START_TEST(garbage) {
  expect_bad("", 0,
             "not JSON: '[' or '{' expected near end of file (line 1, "
             "column 0)");
  expect_bad("hello", 5,
             "not JSON: '[' or '{' expected near 'hello' (line 1, column 5)");
  expect_bad("[1,2]", 5, "expected a JSON object, got an array");
  expect_bad("{\"id\":", 6,
             "not JSON: unexpected token near end of file (line 1, column "
             "6)");
  expect_bad("{\"id\":\"a\",\"id\":\"b\"}", 19,
             "not JSON: duplicate object key near '\"id\"' (line 1, column "
             "14)");
  expect_bad("{\"id\":\"a\\u0000b\"}", 17,
             "not JSON: \\u0000 is not allowed without JSON_ALLOW_NUL near "
             "'\"a\\u0000b\"' (line 1, column 16)");
  expect_bad("{\"id\":\"\xff\"}", 9,
             "not JSON: unable to decode byte 0xff near '\"' (line 1, column "
             "7)");
  expect_bad("{\"oldest_scn\":99999999999999999999}", 35,
             "not JSON: too big integer near '99999999999999999999' (line 1, "
             "column 34)");
  expect_bad("{} {}", 5,
             "not JSON: end of file expected near '{' (line 1, "
             "column 4)");

  /* Every strict prefix of a good node is refused, and so is the node cut
   * short by an embedded NUL; none of it crashes. */
  hd_reg_t r;
  char err[512];
  size_t n = strlen(sample_json);
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(hd_reg_parse(sample_json, i, &r, err, sizeof(err)),
                     HD_EREG);
  char nul[sizeof(sample_json)];
  memcpy(nul, sample_json, sizeof(nul));
  nul[40] = '\0';
  ck_assert_int_eq(hd_reg_parse(nul, n, &r, err, sizeof(err)), HD_EREG);
  /* Random bytes: refused, whatever they are. */
  uint32_t x = 12345;
  char buf[256];
  for (int k = 0; k < 2000; k++) {
    size_t len = (size_t)(k % (int)sizeof(buf));
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      buf[i] = (char)(x >> 16);
    }
    if (len)
      buf[0] = '{';
    ck_assert_int_eq(hd_reg_parse(buf, len, &r, err, sizeof(err)), HD_EREG);
  }
  /* A tiny message buffer truncates, never overflows. */
  char small[8];
  ck_assert_int_eq(hd_reg_parse("x", 1, &r, small, sizeof(small)), HD_EREG);
  ck_assert_str_eq(small, "not JSO");
}
END_TEST

START_TEST(build_refuses) {
  char *json = (char *)1, err[512];
  hd_reg_t r = sample();
  r.newest_scn = (uint64_t)INT64_MAX + 1;
  ck_assert_int_eq(hd_reg_build(&r, &json, err, sizeof(err)), HD_EREG);
  ck_assert_ptr_null(json);
  ck_assert_str_eq(err, "field 'newest_scn': 9223372036854775808 is above "
                        "2^63-1, the largest integer the node holds");
  r = sample();
  r.id[0] = '\0';
  ck_assert_int_eq(hd_reg_build(&r, &json, err, sizeof(err)), HD_EREG);
  ck_assert_str_eq(err, "field 'id': must not be empty");
  r = sample();
  strcpy(r.advertise, "0.0.0.0:7400");
  ck_assert_int_eq(hd_reg_build(&r, &json, err, sizeof(err)), HD_EREG);
  ck_assert_str_eq(err, "field 'advertise': '0.0.0.0:7400' is a wildcard "
                        "address, which no client can dial");
  r = sample();
  strcpy(r.version, "\xff");
  ck_assert_int_eq(hd_reg_build(&r, &json, err, sizeof(err)), HD_EREG);
  ck_assert_str_eq(err, "field 'version': not valid UTF-8");
  r = sample();
  memset(r.source, 'a', sizeof(r.source));
  ck_assert_int_eq(hd_reg_build(&r, &json, err, sizeof(err)), HD_EREG);
  ck_assert_str_eq(err, "field 'source': not NUL-terminated");
  ck_assert_ptr_null(json);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("reg");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, round_trip);
  tcase_add_test(tc, extra_fields_ignored);
  tcase_add_test(tc, missing_fields);
  tcase_add_test(tc, wrong_types);
  tcase_add_test(tc, bad_values);
  tcase_add_test(tc, garbage);
  tcase_add_test(tc, build_refuses);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
