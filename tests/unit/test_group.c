/* Unit tests of hd_group: the consumer groups' and coordinators' paths and
 * JSON (docs/zookeeper.md), both ways, and one clear message for every way
 * a node's data can be wrong. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "hd_check.h"
#include "hd_err.h"
#include "hd_group.h"
#include "hd_mem.h"

/* The examples of docs/zookeeper.md, byte for byte as built. */
static const char election_json[] =
    "{\"id\":\"coord-1\",\"http\":\"127.0.0.1:7600\",\"version\":\"0.1.0\","
    "\"started_ms\":1717000000000}";
static const char group_json[] =
    "{\"partitions\":64,\"source\":\"shop\",\"created_ms\":1717000000000}";
static const char member_json[] =
    "{\"id\":\"agent-1\",\"session\":\"0x1000a2b3c4d0005\",\"partitions\":64,"
    "\"source\":\"shop\",\"http\":\"127.0.0.1:7590\",\"version\":\"0.1.0\","
    "\"joined_ms\":1717000000000}";
static const char owner_json[] =
    "{\"owner\":\"agent-1\",\"epoch\":2,\"session\":\"0x1000a2b3c4d0005\","
    "\"since_ms\":1717000000000}";
static const char checkpoint_json[] =
    "{\"scn\":30064772306,\"ts_ms\":1717000000123,\"written_ms\":"
    "1717000000999,\"owner\":\"agent-1\",\"epoch\":2,\"windows\":1200,"
    "\"rows\":4800}";
static const char drain_json[] =
    "{\"agent\":\"agent-1\",\"session\":\"0x1000a2b3c4d0005\","
    "\"since_ms\":1717000000000}";
static const char assignment_json[] =
    "{\"version\":12,\"partitions\":6,\"leader\":\"coord-1\",\"updated_ms\":"
    "1717000000000,\"members\":{\"agent-1\":[0,1,2],\"agent-2\":[3,4]},"
    "\"pending\":{\"5\":\"agent-2\"},\"epochs\":[1,1,1,1,1,2]}";

/* json with key changed to v (or removed, v == NULL). */
static char *with(const char *json, const char *key, json_t *v) {
  json_error_t je;
  json_t *o = json_loads(json, 0, &je);
  ck_assert_ptr_nonnull(o);
  if (v)
    json_object_set_new(o, key, v);
  else
    json_object_del(o, key);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

/* ------------------------------------------------------------- paths */

START_TEST(paths) {
  char b[HD_GROUP_PATH_MAX];
  ck_assert_int_eq(hd_path_election(b, sizeof(b), "c"), 0);
  ck_assert_str_eq(b, "/herald/c/coordinator/election");
  ck_assert_int_eq(hd_path_election_prefix(b, sizeof(b), "c"), 0);
  ck_assert_str_eq(b, "/herald/c/coordinator/election/n_");
  ck_assert_int_eq(hd_path_groups(b, sizeof(b), "c"), 0);
  ck_assert_str_eq(b, "/herald/c/groups");
  ck_assert_int_eq(hd_path_group(b, sizeof(b), "c", "g"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g");
  ck_assert_int_eq(hd_path_members(b, sizeof(b), "c", "g"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/members");
  ck_assert_int_eq(hd_path_member_prefix(b, sizeof(b), "c", "g", "a-1"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/members/a-1_");
  ck_assert_int_eq(hd_path_assignment(b, sizeof(b), "c", "g"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/assignment");
  ck_assert_int_eq(hd_path_owners(b, sizeof(b), "c", "g"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/owners");
  ck_assert_int_eq(hd_path_owner(b, sizeof(b), "c", "g", 65535), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/owners/65535");
  ck_assert_int_eq(hd_path_drains(b, sizeof(b), "c", "g"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/drain");
  ck_assert_int_eq(hd_path_drain(b, sizeof(b), "c", "g", "agent-1"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/drain/agent-1");
  ck_assert_int_eq(hd_path_snapreq(b, sizeof(b), "c", "g"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/snapshot");
  ck_assert_int_eq(hd_path_checkpoints(b, sizeof(b), "c", "g"), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/checkpoints");
  ck_assert_int_eq(hd_path_checkpoint(b, sizeof(b), "c", "g", 0), 0);
  ck_assert_str_eq(b, "/herald/c/groups/g/checkpoints/0");

  /* The longest: three 128-byte names and a 10-digit sequence. */
  char n128[129];
  memset(n128, 'x', 128);
  n128[128] = '\0';
  ck_assert_int_eq(hd_path_member_prefix(b, sizeof(b), n128, n128, n128), 0);
  ck_assert_uint_lt(strlen(b) + 10, sizeof(b));
  /* Too small: HD_ERANGE and an empty string, never a cut path. */
  char small[12];
  ck_assert_int_eq(hd_path_groups(small, sizeof(small), "cluster"), HD_ERANGE);
  ck_assert_str_eq(small, "");
}
END_TEST

START_TEST(sequence_names) {
  char name[16];
  int64_t seq = -1;
  ck_assert_int_eq(
      hd_seq_name_split("agent-1_0000000003", name, sizeof(name), &seq), 0);
  ck_assert_str_eq(name, "agent-1");
  ck_assert_int_eq(seq, 3);
  /* The last '_' splits: ids may hold '_' themselves. */
  ck_assert_int_eq(
      hd_seq_name_split("a_b_2147483647", name, sizeof(name), &seq), 0);
  ck_assert_str_eq(name, "a_b");
  ck_assert_int_eq(seq, 2147483647);
  ck_assert_int_eq(hd_seq_name_split("n_0000000007", NULL, 0, &seq), 0);
  ck_assert_int_eq(seq, 7);
  static const char *const bad[] = {
      "agent-1",      "agent-1_",      "agent-1_123",  "_0000000001",
      "a_000000000x", "a_00000000001", "a_-000000001", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(hd_seq_name_split(bad[i], name, sizeof(name), &seq) ==
                      HD_EGROUP,
                  "'%s' accepted", bad[i]);
  /* A name that does not fit the buffer. */
  ck_assert_int_eq(
      hd_seq_name_split("a-very-long-agent-id_0000000001", name, 8, NULL),
      HD_EGROUP);
}
END_TEST

START_TEST(partition_names) {
  uint32_t p = 99;
  ck_assert_int_eq(hd_partition_name_parse("0", 64, &p), 0);
  ck_assert_uint_eq(p, 0);
  ck_assert_int_eq(hd_partition_name_parse("63", 64, &p), 0);
  ck_assert_uint_eq(p, 63);
  ck_assert_int_eq(hd_partition_name_parse("65535", 65536, &p), 0);
  ck_assert_uint_eq(p, 65535);
  static const char *const bad[] = {"64", "05", "-1",  "+1",     "",
                                    "1x", " 1", "1e3", "0000000"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(hd_partition_name_parse(bad[i], 64, &p) == HD_EGROUP,
                  "'%s' accepted", bad[i]);
  ck_assert_int_eq(hd_partition_name_parse("1000000", 65536, &p), HD_EGROUP);
}
END_TEST

/* ------------------------------------------------------- flat nodes */

typedef int (*parse_fn)(const char *, size_t, void *, char *, size_t);
typedef int (*build_fn)(const void *, char **, char *, size_t);

typedef struct {
  const char *json;
  parse_fn parse;
  build_fn build;
  size_t size;
} kind_t;

#define KIND(j, k, t)                                                          \
  { j, (parse_fn)hd_##k##_parse, (build_fn)hd_##k##_build, sizeof(t) }
static const kind_t kinds[] = {
    KIND(election_json, election, hd_election_t),
    KIND(group_json, group, hd_group_t),
    KIND(member_json, member, hd_member_t),
    KIND(owner_json, owner, hd_owner_t),
    KIND(checkpoint_json, checkpoint, hd_checkpoint_t),
    KIND(drain_json, drain, hd_drain_t),
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Parsing text fails with exactly msg and leaves the output alone. */
static void expect_bad(const kind_t *k, const char *text, const char *msg) {
  static unsigned char out[16384], before[16384];
  char err[512];
  ck_assert_uint_le(k->size, sizeof(out));
  memset(out, 0x5a, sizeof(out));
  memcpy(before, out, sizeof(out));
  ck_assert_int_eq(k->parse(text, strlen(text), out, err, sizeof(err)),
                   HD_EGROUP);
  ck_assert_str_eq(err, msg);
  ck_assert_int_eq(memcmp(out, before, sizeof(out)), 0);
}

static void expect_bad_field(const kind_t *k, const char *key, json_t *v,
                             const char *msg) {
  char *s = with(k->json, key, v);
  expect_bad(k, s, msg);
  free(s);
}

START_TEST(flat_round_trips) {
  for (size_t i = 0; i < NKINDS; i++) {
    const kind_t *k = &kinds[i];
    static unsigned char v[16384], back[16384];
    char err[512], *json;
    memset(v, 0, sizeof(v));
    memset(back, 0, sizeof(back));
    ck_assert_msg(k->parse(k->json, strlen(k->json), v, err, sizeof(err)) == 0,
                  "%s: %s", k->json, err);
    ck_assert_int_eq(k->build(v, &json, err, sizeof(err)), 0);
    ck_assert_str_eq(json, k->json);
    ck_assert_int_eq(k->parse(json, strlen(json), back, err, sizeof(err)), 0);
    ck_assert_int_eq(memcmp(v, back, k->size), 0);
    free(json);
    /* Unknown fields are ignored, wherever they stand. */
    char *s = with(k->json, "zone", json_string("eu-1"));
    ck_assert_int_eq(k->parse(s, strlen(s), back, err, sizeof(err)), 0);
    ck_assert_int_eq(memcmp(v, back, k->size), 0);
    free(s);
  }
}
END_TEST

START_TEST(flat_values) {
  hd_member_t m;
  char err[512], *json;
  ck_assert_int_eq(
      hd_member_parse(member_json, strlen(member_json), &m, err, sizeof(err)),
      0);
  ck_assert_str_eq(m.id, "agent-1");
  ck_assert_uint_eq(m.session, 0x1000a2b3c4d0005ull);
  ck_assert_uint_eq(m.partitions, 64);
  ck_assert_str_eq(m.http, "127.0.0.1:7590");
  /* An agent without agent.http writes "" there. */
  memset(m.http, 0, sizeof(m.http));
  m.session = UINT64_MAX;
  m.partitions = HD_GROUP_MAX_PARTITIONS;
  ck_assert_int_eq(hd_member_build(&m, &json, err, sizeof(err)), 0);
  ck_assert_ptr_nonnull(strstr(json, "\"http\":\"\""));
  ck_assert_ptr_nonnull(strstr(json, "\"session\":\"0xffffffffffffffff\""));
  hd_member_t back;
  ck_assert_int_eq(hd_member_parse(json, strlen(json), &back, err, sizeof(err)),
                   0);
  ck_assert_int_eq(memcmp(&m, &back, sizeof(m)), 0);
  free(json);

  hd_checkpoint_t c;
  ck_assert_int_eq(hd_checkpoint_parse(checkpoint_json, strlen(checkpoint_json),
                                       &c, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(c.scn, 30064772306ull);
  ck_assert_uint_eq(c.epoch, 2);
  ck_assert_uint_eq(c.rows, 4800);
  c.scn = UINT64_MAX;
  ck_assert_int_eq(hd_checkpoint_build(&c, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_ptr_null(json);
  ck_assert_str_eq(err, "field 'scn': 18446744073709551615 is above 2^63-1, "
                        "the largest integer the node holds");

  /* A snapshot's state and position round-trip; bad ones are refused
   * by name; without them the node is as before. */
  static const char snap[] =
      "{\"scn\":5,\"ts_ms\":0,\"written_ms\":1,\"owner\":\"a\",\"epoch\":1,"
      "\"windows\":0,\"rows\":0,\"snapshot_state\":\"running\","
      "\"snapshot\":\"0a0b\",\"snapshot_id\":7,"
      "\"snapshot_tables\":\"shop.*,crm.users\",\"snapshot_progress\":"
      "{\"tables_total\":3,\"tables_done\":1,\"chunks\":9,\"rows\":4000,"
      "\"table_rows\":1500,\"table_rows_estimate\":9000,\"started_ms\":"
      "1700000000000,\"ended_ms\":0}}";
  ck_assert_int_eq(
      hd_checkpoint_parse(snap, strlen(snap), &c, err, sizeof(err)), 0);
  ck_assert_uint_eq(c.snapshot_state, HD_CK_SNAPSHOT_RUNNING);
  ck_assert_str_eq(c.snapshot, "0a0b");
  ck_assert_uint_eq(c.snapshot_id, 7);
  ck_assert_str_eq(c.snapshot_tables, "shop.*,crm.users");
  ck_assert_uint_eq(c.progress.tables_total, 3);
  ck_assert_uint_eq(c.progress.rows, 4000);
  ck_assert_uint_eq(c.progress.table_rows_estimate, 9000);
  ck_assert_int_eq(hd_checkpoint_build(&c, &json, err, sizeof(err)), 0);
  ck_assert_str_eq(json, snap);
  free(json);
  /* An older writer's node, without the request and the progress. */
  static const char old[] =
      "{\"scn\":5,\"ts_ms\":0,\"written_ms\":1,\"owner\":\"a\",\"epoch\":1,"
      "\"windows\":0,\"rows\":0,\"snapshot_state\":\"done\"}";
  ck_assert_int_eq(hd_checkpoint_parse(old, strlen(old), &c, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(c.snapshot_id, 0);
  ck_assert_str_eq(c.snapshot_tables, "");
  ck_assert_uint_eq(c.progress.chunks, 0);
  static const char badprog[] =
      "{\"scn\":5,\"ts_ms\":0,\"written_ms\":1,\"owner\":\"a\",\"epoch\":1,"
      "\"windows\":0,\"rows\":0,\"snapshot_state\":\"done\","
      "\"snapshot_progress\":{\"rows\":-1}}";
  ck_assert_int_eq(
      hd_checkpoint_parse(badprog, strlen(badprog), &c, err, sizeof(err)),
      HD_EGROUP);
  static const char badid[] =
      "{\"scn\":5,\"ts_ms\":0,\"written_ms\":1,\"owner\":\"a\",\"epoch\":1,"
      "\"windows\":0,\"rows\":0,\"snapshot_id\":\"7\"}";
  ck_assert_int_eq(
      hd_checkpoint_parse(badid, strlen(badid), &c, err, sizeof(err)),
      HD_EGROUP);
  ck_assert_msg(strstr(err, "snapshot_id") != NULL, "%s", err);
  static const char bad[] =
      "{\"scn\":5,\"ts_ms\":0,\"written_ms\":1,\"owner\":\"a\",\"epoch\":1,"
      "\"windows\":0,\"rows\":0,\"snapshot_state\":\"later\"}";
  ck_assert_int_eq(hd_checkpoint_parse(bad, strlen(bad), &c, err, sizeof(err)),
                   HD_EGROUP);
  ck_assert_msg(strstr(err, "snapshot_state") != NULL, "%s", err);

  hd_group_t g;
  memset(&g, 0, sizeof(g));
  strcpy(g.source, "shop");
  ck_assert_int_eq(hd_group_build(&g, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'partitions': 0 is not between 1 and 65536");
  g.partitions = 1;
  g.source[0] = '\0';
  ck_assert_int_eq(hd_group_build(&g, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'source': must not be empty");

  hd_owner_t o;
  memset(&o, 'x', sizeof(o)); /* owner not NUL-terminated */
  ck_assert_int_eq(hd_owner_build(&o, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'owner': not NUL-terminated");
}
END_TEST

START_TEST(flat_missing_fields) {
  static const char *const names[][8] = {
      {"id", "http", "version", "started_ms"},
      {"partitions", "source", "created_ms"},
      {"id", "session", "partitions", "source", "http", "version", "joined_ms"},
      {"owner", "epoch", "session", "since_ms"},
      {"scn", "ts_ms", "written_ms", "owner", "epoch", "windows", "rows"},
      {"agent", "session", "since_ms"}};
  char msg[128];
  for (size_t i = 0; i < NKINDS; i++)
    for (size_t f = 0; f < 8 && names[i][f]; f++) {
      snprintf(msg, sizeof(msg), "missing field '%s'", names[i][f]);
      expect_bad_field(&kinds[i], names[i][f], NULL, msg);
    }
}
END_TEST

START_TEST(flat_bad_values) {
  const kind_t *el = &kinds[0], *gr = &kinds[1], *me = &kinds[2],
               *ow = &kinds[3], *cp = &kinds[4];
  expect_bad_field(gr, "partitions", json_integer(0),
                   "field 'partitions': 0 is not between 1 and 65536");
  expect_bad_field(gr, "partitions", json_integer(65537),
                   "field 'partitions': 65537 is not between 1 and 65536");
  expect_bad_field(gr, "partitions", json_integer(-3),
                   "field 'partitions': -3 is negative");
  expect_bad_field(gr, "partitions", json_string("64"),
                   "field 'partitions': expected an integer from 1 to 65536, "
                   "got a string");
  expect_bad_field(me, "partitions", json_real(64.0),
                   "field 'partitions': expected an integer from 1 to 65536, "
                   "got a real number");
  expect_bad_field(gr, "source", json_string(""),
                   "field 'source': must not be empty");
  expect_bad_field(me, "session", json_integer(5),
                   "field 'session': expected a string, got an integer");
  expect_bad_field(me, "session", json_string("1000a2b3"),
                   "field 'session': '1000a2b3' is not a session id (0x and "
                   "up to 16 hex digits)");
  expect_bad_field(me, "session", json_string("0x"),
                   "field 'session': '0x' is not a session id (0x and up to "
                   "16 hex digits)");
  expect_bad_field(ow, "session", json_string("0x10000000000000000"),
                   "field 'session': '0x10000000000000000' is not a session "
                   "id (0x and up to 16 hex digits)");
  expect_bad_field(ow, "session", json_string("0xg"),
                   "field 'session': '0xg' is not a session id (0x and up to "
                   "16 hex digits)");
  expect_bad_field(me, "http", json_string("nohost"),
                   "field 'http': 'nohost' is not host:port (port 1-65535, "
                   "IPv6 in brackets)");
  expect_bad_field(el, "http", json_string(""),
                   "field 'http': must not be empty");
  expect_bad_field(ow, "epoch", json_integer(-1),
                   "field 'epoch': -1 is negative");
  expect_bad_field(ow, "owner", json_null(),
                   "field 'owner': expected a string, got null");
  expect_bad_field(cp, "scn", json_string("30064772306"),
                   "field 'scn': expected a non-negative integer, got a "
                   "string");
  expect_bad_field(cp, "rows", json_true(),
                   "field 'rows': expected a non-negative integer, got a "
                   "boolean");
  char longname[200];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  expect_bad_field(cp, "owner", json_string(longname),
                   "field 'owner': longer than 128 bytes");
  expect_bad(cp, "[]", "expected a JSON object, got an array");
  expect_bad(cp, "",
             "not JSON: '[' or '{' expected near end of file (line 1, "
             "column 0)");
  expect_bad(ow,
             "{\"owner\":\"a\",\"owner\":\"b\",\"epoch\":1,\"session\":\"0x1\","
             "\"since_ms\":0}",
             "not JSON: duplicate object key near '\"owner\"' (line 1, column "
             "20)");
}
END_TEST

/* -------------------------------------------------------- assignment */

static void parse_ok(const char *json, hd_assignment_t *a) {
  char err[512];
  ck_assert_msg(hd_assignment_parse(json, strlen(json), a, err, sizeof(err)) ==
                    0,
                "%s: %s", json, err);
}

static void expect_bad_asg(const char *json, const char *msg) {
  hd_assignment_t a, before;
  char err[512];
  memset(&a, 0x5a, sizeof(a));
  before = a;
  ck_assert_int_eq(
      hd_assignment_parse(json, strlen(json), &a, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, msg);
  ck_assert_int_eq(memcmp(&a, &before, sizeof(a)), 0);
}

static void expect_bad_asg_field(const char *key, const char *v,
                                 const char *msg) {
  json_error_t je;
  json_t *j = v ? json_loads(v, JSON_DECODE_ANY, &je) : NULL;
  ck_assert(v == NULL || j != NULL);
  char *s = with(assignment_json, key, j);
  expect_bad_asg(s, msg);
  free(s);
}

/* heraldctl snapshot's request: the partition list is checked on both
 * sides and answers which partitions it names. */
START_TEST(snapreq_round_trip) {
  char err[300], *json = NULL;
  static const char req[] =
      "{\"id\":3,\"tables\":\"shop.orders\",\"partitions\":\"0,3,8-11\","
      "\"cancel\":false,\"restart\":true,\"requested_ms\":12}";
  hd_snapreq_t r;
  ck_assert_int_eq(hd_snapreq_parse(req, strlen(req), &r, err, sizeof(err)), 0);
  ck_assert_uint_eq(r.id, 3);
  ck_assert_int_eq(r.restart, 1);
  ck_assert_int_eq(r.cancel, 0);
  ck_assert_int_eq(hd_snapreq_has(&r, 0), 1);
  ck_assert_int_eq(hd_snapreq_has(&r, 1), 0);
  ck_assert_int_eq(hd_snapreq_has(&r, 3), 1);
  ck_assert_int_eq(hd_snapreq_has(&r, 8), 1);
  ck_assert_int_eq(hd_snapreq_has(&r, 11), 1);
  ck_assert_int_eq(hd_snapreq_has(&r, 12), 0);
  ck_assert_int_eq(hd_snapreq_build(&r, &json, err, sizeof(err)), 0);
  ck_assert_str_eq(json, req);
  free(json);
  strcpy(r.partitions, "all");
  ck_assert_int_eq(hd_snapreq_has(&r, 65535), 1);
  static const char *const bad[] = {"",      "x",  "1,",  ",1", "3-1",
                                    "65536", "1-", "1;2", "-1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(r.partitions, sizeof(r.partitions), "%s", bad[i]);
    ck_assert_int_eq(hd_snapreq_build(&r, &json, err, sizeof(err)), HD_EGROUP);
    ck_assert_ptr_null(json);
    ck_assert_msg(strstr(err, "partitions") != NULL, "%s: %s", bad[i], err);
  }
  static const char badreq[] =
      "{\"id\":3,\"tables\":\"shop.orders\",\"partitions\":\"1-x\","
      "\"cancel\":false,\"restart\":false,\"requested_ms\":12}";
  ck_assert_int_eq(
      hd_snapreq_parse(badreq, strlen(badreq), &r, err, sizeof(err)),
      HD_EGROUP);
  ck_assert_msg(strstr(err, "'1-x'") != NULL, "%s", err);
}
END_TEST

START_TEST(assignment_round_trip) {
  hd_assignment_t a, b;
  char err[512], *json;
  parse_ok(assignment_json, &a);
  ck_assert_uint_eq(a.version, 12);
  ck_assert_uint_eq(a.partitions, 6);
  ck_assert_str_eq(a.leader, "coord-1");
  ck_assert_uint_eq(a.nmembers, 2);
  int32_t m1 = hd_assignment_find(&a, "agent-1"),
          m2 = hd_assignment_find(&a, "agent-2");
  ck_assert_int_eq(m1, 0);
  ck_assert_int_eq(m2, 1);
  ck_assert_int_eq(hd_assignment_find(&a, "agent-3"), -1);
  ck_assert_int_eq(a.owner[0], m1);
  ck_assert_int_eq(a.owner[4], m2);
  ck_assert_int_eq(a.owner[5], -1);
  ck_assert_int_eq(a.pending[5], m2);
  ck_assert_int_eq(a.pending[0], -1);
  ck_assert_uint_eq(a.epochs[5], 2);
  ck_assert_uint_eq(hd_assignment_count(&a, m1), 3);
  ck_assert_uint_eq(hd_assignment_count(&a, m2), 2);
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), 0);
  ck_assert_str_eq(json, assignment_json);
  free(json);

  /* A copy is the same and independent. */
  ck_assert_int_eq(hd_assignment_copy(&b, &a), 0);
  ck_assert(hd_assignment_same(&a, &b));
  b.epochs[0]++;
  ck_assert(!hd_assignment_same(&a, &b));
  b.epochs[0]--;
  b.owner[5] = b.pending[5];
  b.pending[5] = -1;
  ck_assert(!hd_assignment_same(&a, &b));
  hd_assignment_free(&b);
  ck_assert_int_eq(hd_assignment_copy(&b, &a), 0);
  b.version = 99;
  strcpy(b.leader, "other");
  ck_assert(hd_assignment_same(&a, &b));
  hd_assignment_add(&b, "agent-3"); /* a member with no partition counts */
  ck_assert(!hd_assignment_same(&a, &b));
  hd_assignment_free(&b);
  hd_assignment_free(&a);
  hd_assignment_free(&a); /* zeroed: harmless */
}
END_TEST

START_TEST(assignment_built) {
  /* Members added in any order come out sorted; an empty list stays;
   * member indexes do not move as members are added. */
  hd_assignment_t a, b;
  char err[512], *json;
  ck_assert_int_eq(hd_assignment_init(&a, 4), 0);
  ck_assert_int_eq(hd_assignment_add(&a, "zed"), 0);
  ck_assert_int_eq(hd_assignment_add(&a, "amy"), 1);
  ck_assert_int_eq(hd_assignment_add(&a, "mid"), 2);
  ck_assert_int_eq(hd_assignment_add(&a, "zed"), 0);
  a.owner[3] = 0;
  a.owner[1] = 1;
  a.pending[2] = 0;
  a.epochs[3] = 7;
  a.version = 1;
  strcpy(a.leader, "c");
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), 0);
  ck_assert_str_eq(json, "{\"version\":1,\"partitions\":4,\"leader\":\"c\","
                         "\"updated_ms\":0,\"members\":{\"amy\":[1],\"mid\":[],"
                         "\"zed\":[3]},\"pending\":{\"2\":\"zed\"},\"epochs\":"
                         "[0,0,0,7]}");
  parse_ok(json, &b);
  ck_assert(hd_assignment_same(&a, &b));
  ck_assert_str_eq(b.members[0], "amy");
  free(json);
  hd_assignment_free(&b);

  /* What build refuses. */
  a.owner[2] = 1;
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_ptr_null(json);
  ck_assert_str_eq(err, "field 'pending': partition 2 is both granted to "
                        "'amy' and pending");
  a.owner[2] = 3;
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err,
                   "field 'members': partition 2 granted to member index 3 "
                   "of 3");
  a.owner[2] = -1;
  a.pending[2] = -2;
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'pending': partition 2 moves to member index "
                        "-2 of 3");
  a.pending[2] = -1;
  a.epochs[0] = UINT64_MAX;
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'epochs': epoch of partition 0 above 2^63-1");
  a.epochs[0] = 0;
  free(a.members[2]);
  a.members[2] = hd_strdup("amy");
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'members': 'amy' twice");
  a.members[2][0] = '\0';
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'members': member 2 has an empty id");
  strcpy(a.members[2], "\xff");
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'members': member 2: id not valid UTF-8");
  strcpy(a.members[2], "mid");
  a.partitions = 0;
  ck_assert_int_eq(hd_assignment_build(&a, &json, err, sizeof(err)), HD_EGROUP);
  ck_assert_str_eq(err, "field 'partitions': 0 is not between 1 and 65536");
  a.partitions = 4;
  hd_assignment_free(&a);

  ck_assert_int_eq(hd_assignment_init(&a, 0), HD_ERANGE);
  ck_assert_int_eq(hd_assignment_init(&a, HD_GROUP_MAX_PARTITIONS + 1),
                   HD_ERANGE);
  hd_assignment_free(&a);
  ck_assert_int_eq(hd_assignment_init(&a, HD_GROUP_MAX_PARTITIONS), 0);
  hd_assignment_free(&a);
}
END_TEST

START_TEST(assignment_bad) {
  static const char *const names[] = {"version",    "partitions", "leader",
                                      "updated_ms", "members",    "pending",
                                      "epochs"};
  char msg[128];
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(msg, sizeof(msg), "missing field '%s'", names[i]);
    expect_bad_asg_field(names[i], NULL, msg);
  }
  expect_bad_asg_field("members", "[]",
                       "field 'members': expected an object, got an array");
  expect_bad_asg_field("members", "{\"a\":5}",
                       "field 'members': 'a': expected an array, got an "
                       "integer");
  expect_bad_asg_field("members", "{\"a\":[\"1\"]}",
                       "field 'members': 'a': expected partition numbers, got "
                       "a string");
  expect_bad_asg_field("members", "{\"a\":[6]}",
                       "field 'members': 'a': partition 6 is not below 6");
  expect_bad_asg_field("members", "{\"a\":[-1]}",
                       "field 'members': 'a': partition -1 is not below 6");
  expect_bad_asg_field("members", "{\"a\":[2,1]}",
                       "field 'members': 'a': partitions not ascending (1 "
                       "after 2)");
  expect_bad_asg_field("members", "{\"a\":[1,1]}",
                       "field 'members': 'a': partitions not ascending (1 "
                       "after 1)");
  expect_bad_asg_field("members", "{\"b\":[1],\"a\":[0,1]}",
                       "field 'members': partition 1 is in the lists of both "
                       "'a' and 'b'");
  expect_bad_asg_field("members", "{\"\":[]}",
                       "field 'members': a member id is empty");
  /* pending: against the sample's members (agent-1: 0-2, agent-2: 3-4) */
  expect_bad_asg_field("pending", "[]",
                       "field 'pending': expected an object, got an array");
  expect_bad_asg_field("pending", "{\"05\":\"agent-2\"}",
                       "field 'pending': key '05' is not a partition number "
                       "below 6");
  expect_bad_asg_field("pending", "{\"6\":\"agent-2\"}",
                       "field 'pending': key '6' is not a partition number "
                       "below 6");
  expect_bad_asg_field("pending", "{\"x\":\"agent-2\"}",
                       "field 'pending': key 'x' is not a partition number "
                       "below 6");
  expect_bad_asg_field("pending", "{\"5\":7}",
                       "field 'pending': partition 5: expected a member id, "
                       "got an integer");
  expect_bad_asg_field("pending", "{\"5\":\"agent-9\"}",
                       "field 'pending': partition 5 moves to 'agent-9', "
                       "which is not in 'members'");
  expect_bad_asg_field("pending", "{\"0\":\"agent-2\"}",
                       "field 'pending': partition 0 is also granted to "
                       "'agent-1'");
  expect_bad_asg_field("epochs", "{}",
                       "field 'epochs': expected an array, got an object");
  expect_bad_asg_field("epochs", "[1,1,1,1,1]",
                       "field 'epochs': 5 entries for 6 partitions");
  expect_bad_asg_field("epochs", "[1,1,1,1,1,-2]",
                       "field 'epochs': entry 5: expected a non-negative "
                       "integer, got a negative one");
  expect_bad_asg_field("epochs", "[1,1,1,1,1,null]",
                       "field 'epochs': entry 5: expected a non-negative "
                       "integer, got null");
  expect_bad_asg_field("partitions", "0",
                       "field 'partitions': 0 is not between 1 and 65536");
  expect_bad_asg_field("leader", "\"\"", "field 'leader': must not be empty");
  expect_bad_asg_field("version", "-1", "field 'version': -1 is negative");
  expect_bad_asg("[]", "expected a JSON object, got an array");

  /* Extra fields, also inside: ignored. */
  hd_assignment_t a;
  char *s = with(assignment_json, "moves", json_integer(3));
  parse_ok(s, &a);
  hd_assignment_free(&a);
  free(s);
}
END_TEST

START_TEST(garbage) {
  /* Every strict prefix of a good node is refused; random bytes too. */
  char err[512];
  unsigned char out[2048];
  hd_assignment_t a;
  size_t n = strlen(assignment_json);
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(
        hd_assignment_parse(assignment_json, i, &a, err, sizeof(err)),
        HD_EGROUP);
  for (size_t k = 0; k < NKINDS; k++) {
    const char *j = kinds[k].json;
    for (size_t i = 0; i < strlen(j); i++)
      ck_assert_int_eq(kinds[k].parse(j, i, out, err, sizeof(err)), HD_EGROUP);
  }
  uint32_t x = 4242;
  char buf[256];
  for (int t = 0; t < 2000; t++) {
    size_t len = (size_t)(t % (int)sizeof(buf));
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      buf[i] = (char)(x >> 16);
    }
    if (len)
      buf[0] = '{';
    ck_assert_int_eq(hd_assignment_parse(buf, len, &a, err, sizeof(err)),
                     HD_EGROUP);
    for (size_t k = 0; k < NKINDS; k++)
      ck_assert_int_eq(kinds[k].parse(buf, len, out, err, sizeof(err)),
                       HD_EGROUP);
  }
  /* The messages are one line. */
  expect_bad_asg("{\"version\":\"a\nb\"}",
                 "not JSON: unexpected newline near '\"a' (line 1, column "
                 "13)");
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("group");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, paths);
  tcase_add_test(tc, sequence_names);
  tcase_add_test(tc, partition_names);
  tcase_add_test(tc, flat_round_trips);
  tcase_add_test(tc, flat_values);
  tcase_add_test(tc, flat_missing_fields);
  tcase_add_test(tc, flat_bad_values);
  tcase_add_test(tc, snapreq_round_trip);
  tcase_add_test(tc, assignment_round_trip);
  tcase_add_test(tc, assignment_built);
  tcase_add_test(tc, assignment_bad);
  tcase_add_test(tc, garbage);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
