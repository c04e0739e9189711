/* Unit tests of the standalone checkpoint file (consumer-agent/ckpt_file.h):
 * the exact JSON of docs/zookeeper.md, round trips, the atomic replace, and
 * a clear refusal of every file that is not what it should be - never a
 * silent reset. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_file.h"
#include "hd_check.h"
#include "hd_tmpdir.h"
#include "hd_err.h"

static char dir[256], path[512];

static void setup(void) {
  hd_tmpdir_make(dir, sizeof(dir), "ckpt");
  snprintf(path, sizeof(path), "%s/a1.checkpoints.json", dir);
}

static void teardown(void) {
  hd_tmpdir_remove(dir);
}

static void put_file(const char *p, const char *text) {
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static char *get_file(const char *p) {
  static char buf[8192];
  FILE *f = fopen(p, "r");
  ck_assert_ptr_nonnull(f);
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

/* The sample of docs/zookeeper.md. */
static ckpt_t sample(void) {
  ckpt_t c;
  memset(&c, 0, sizeof(c));
  c.scn = 30064772306ull;
  c.ts_ms = 1717000000123ull;
  c.written_ms = 1717000000999ull;
  strcpy(c.owner, "agent-1");
  c.epoch = 2;
  c.windows = 1200;
  c.rows = 4800;
  return c;
}

static const char sample_json[] =
    "{\"scn\":30064772306,\"ts_ms\":1717000000123,\"written_ms\":"
    "1717000000999,\"owner\":\"agent-1\",\"epoch\":2,\"windows\":1200,"
    "\"rows\":4800}";

static void assert_same(const ckpt_t *a, const ckpt_t *b) {
  ck_assert_uint_eq(a->scn, b->scn);
  ck_assert_uint_eq(a->ts_ms, b->ts_ms);
  ck_assert_uint_eq(a->written_ms, b->written_ms);
  ck_assert_str_eq(a->owner, b->owner);
  ck_assert_uint_eq(a->epoch, b->epoch);
  ck_assert_uint_eq(a->windows, b->windows);
  ck_assert_uint_eq(a->rows, b->rows);
}

static ckpt_file_t *load_ok(uint32_t n) {
  ckpt_file_t *f = NULL;
  char err[1024];
  int rc = ckpt_file_load(path, n, &f, err, sizeof(err));
  ck_assert_msg(rc == 0, "load: %s", err);
  return f;
}

static void save_ok(ckpt_file_t *f) {
  char err[1024];
  int rc = ckpt_file_save(f, err, sizeof(err));
  ck_assert_msg(rc == 0, "save: %s", err);
}

/* A file for n partitions with the sample at partition p, and its text. */
static char *save_sample(uint32_t n, uint32_t p) {
  ckpt_file_t *f = load_ok(n);
  ckpt_t a = sample();
  ck_assert_int_eq(ckpt_file_set(f, p, &a), 0);
  save_ok(f);
  ckpt_file_free(f);
  return strdup(get_file(path));
}

/* Loading path must fail with rc and a message holding want (after the
 * file's name); the file must be left as it was. */
static void expect_refused(const char *text, uint32_t n, int rc,
                           const char *want) {
  put_file(path, text);
  ckpt_file_t *f = (ckpt_file_t *)1;
  char err[1024], prefix[600];
  ck_assert_int_eq(ckpt_file_load(path, n, &f, err, sizeof(err)), rc);
  ck_assert_ptr_null(f);
  snprintf(prefix, sizeof(prefix), "checkpoint file '%s'", path);
  ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s", err);
  ck_assert_msg(strstr(err, want), "'%s' not in: %s", want, err);
  ck_assert_str_eq(get_file(path), text); /* never reset */
}

START_TEST(one_object_both_ways) {
  ckpt_t c = sample(), back;
  char *json, err[256];
  ck_assert_int_eq(ckpt_build(&c, &json, err, sizeof(err)), 0);
  ck_assert_str_eq(json, sample_json);
  ck_assert_int_eq(ckpt_parse(json, strlen(json), &back, err, sizeof(err)), 0);
  assert_same(&c, &back);
  free(json);

  c.rows = (uint64_t)INT64_MAX + 1;
  ck_assert_int_eq(ckpt_build(&c, &json, err, sizeof(err)), HD_ECKPT_CORRUPT);
  ck_assert_ptr_null(json);
  ck_assert_str_eq(err, "field 'rows': 9223372036854775808 is above 2^63-1, "
                        "the largest integer the node holds");
  c = sample();
  c.owner[0] = '\0';
  ck_assert_int_eq(ckpt_build(&c, &json, err, sizeof(err)), HD_ECKPT_CORRUPT);

  /* Unknown fields are ignored, known ones are required and typed. */
  const char *extra = "{\"scn\":1,\"ts_ms\":0,\"written_ms\":0,\"owner\":"
                      "\"a\",\"epoch\":0,\"windows\":0,\"rows\":0,\"new\":1}";
  ck_assert_int_eq(ckpt_parse(extra, strlen(extra), &back, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(back.scn, 1);
  const char *noepoch = "{\"scn\":1,\"ts_ms\":0,\"written_ms\":0,\"owner\":"
                        "\"a\",\"windows\":0,\"rows\":0}";
  ck_assert_int_eq(
      ckpt_parse(noepoch, strlen(noepoch), &back, err, sizeof(err)),
      HD_ECKPT_CORRUPT);
  ck_assert_str_eq(err, "missing field 'epoch'");
  ck_assert_int_eq(ckpt_parse("[1]", 3, &back, err, sizeof(err)),
                   HD_ECKPT_CORRUPT);
  ck_assert_str_eq(err, "expected a JSON object");
}
END_TEST

START_TEST(missing_file_is_empty) {
  ckpt_file_t *f = load_ok(64);
  ckpt_t c;
  ck_assert_uint_eq(ckpt_file_partitions(f), 64);
  for (uint32_t p = 0; p < 64; p++)
    ck_assert_int_eq(ckpt_file_get(f, p, &c), 0);
  ck_assert_uint_eq(c.scn, 0);
  ck_assert_int_eq(access(path, F_OK), -1); /* loading creates nothing */
  ckpt_file_free(f);

  char buf[64];
  hd_agent_conf_t conf;
  memset(&conf, 0, sizeof(conf));
  conf.agent.id = "agent-7";
  ck_assert_str_eq(ckpt_file_path(&conf, buf, sizeof(buf)),
                   "agent-7.checkpoints.json");
  conf.agent.checkpoint_file = "/var/lib/herald/ck.json";
  ck_assert_str_eq(ckpt_file_path(&conf, buf, sizeof(buf)),
                   "/var/lib/herald/ck.json");
}
END_TEST

START_TEST(round_trip) {
  ckpt_file_t *f = load_ok(8);
  ckpt_t a = sample(), b = sample(), got;
  b.scn = (uint64_t)INT64_MAX;
  b.epoch = 0;
  strcpy(b.owner, "a1");
  ck_assert_int_eq(ckpt_file_set(f, 5, &b), 0);
  ck_assert_int_eq(ckpt_file_set(f, 0, &a), 0);
  ck_assert_int_eq(ckpt_file_set(f, 8, &a), -EINVAL);
  got = a;
  got.owner[0] = '\0';
  ck_assert_int_eq(ckpt_file_set(f, 1, &got), -EINVAL);
  save_ok(f);
  ckpt_file_free(f);

  /* The file: the documented shape, the field names of docs/zookeeper.md,
   * partitions ascending. */
  char want[1024];
  snprintf(want, sizeof(want),
           "{\"partitions\":8,\"checkpoints\":{\"0\":%s,\"5\":{\"scn\":"
           "9223372036854775807,\"ts_ms\":1717000000123,\"written_ms\":"
           "1717000000999,\"owner\":\"a1\",\"epoch\":0,\"windows\":1200,"
           "\"rows\":4800}}}\n",
           sample_json);
  ck_assert_str_eq(get_file(path), want);

  f = load_ok(8);
  ck_assert_int_eq(ckpt_file_get(f, 0, &got), 1);
  assert_same(&got, &a);
  ck_assert_int_eq(ckpt_file_get(f, 5, &got), 1);
  assert_same(&got, &b);
  ck_assert_int_eq(ckpt_file_get(f, 1, &got), 0);
  ck_assert_int_eq(ckpt_file_get(f, 99, &got), 0);
  /* Moving on: the next save replaces the file whole. */
  a.scn += 100;
  a.windows++;
  ck_assert_int_eq(ckpt_file_set(f, 0, &a), 0);
  save_ok(f);
  ckpt_file_free(f);
  f = load_ok(8);
  ck_assert_int_eq(ckpt_file_get(f, 0, &got), 1);
  assert_same(&got, &a);
  ck_assert_int_eq(ckpt_file_get(f, 5, &got), 1);
  ckpt_file_free(f);
  char tmp[600];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  ck_assert_int_eq(access(tmp, F_OK), -1); /* renamed, nothing left */
}
END_TEST

START_TEST(crash_mid_write_keeps_old_file) {
  char *before = save_sample(4, 2);
  ckpt_t a = sample(), got;

  /* A crash while the next save wrote its temporary file: half of it. */
  char tmp[600];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  put_file(tmp, "{\"partitions\":4,\"checkpoints\":{\"2\":{\"scn\":9");
  ckpt_file_t *f = load_ok(4);
  ck_assert_int_eq(ckpt_file_get(f, 2, &got), 1);
  assert_same(&got, &a); /* the old file is what loads */
  ck_assert_str_eq(get_file(path), before);

  /* The next save writes over the leftover and replaces the file: a new
   * inode renamed over the old name, never the old file rewritten in
   * place. */
  struct stat st0, st1;
  ck_assert_int_eq(stat(path, &st0), 0);
  a.scn = 42;
  ck_assert_int_eq(ckpt_file_set(f, 2, &a), 0);
  save_ok(f);
  ck_assert_int_eq(stat(path, &st1), 0);
  ck_assert_uint_ne(st0.st_ino, st1.st_ino);
  ckpt_file_free(f);
  ck_assert_int_eq(access(tmp, F_OK), -1);
  f = load_ok(4);
  ck_assert_int_eq(ckpt_file_get(f, 2, &got), 1);
  ck_assert_uint_eq(got.scn, 42);
  ckpt_file_free(f);
  free(before);
}
END_TEST

START_TEST(failed_save_keeps_old_file) {
  char *before = save_sample(4, 1);
  ckpt_file_t *f = load_ok(4);
  ckpt_t a = sample();
  /* The temporary file's name taken by a directory: the save fails before
   * the rename, naming the file and the error. */
  char tmp[600], err[1024], want[1400];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  ck_assert_int_eq(mkdir(tmp, 0755), 0);
  a.scn = 7;
  ck_assert_int_eq(ckpt_file_set(f, 1, &a), 0);
  ck_assert_int_eq(ckpt_file_save(f, err, sizeof(err)), -EISDIR);
  snprintf(want, sizeof(want), "checkpoint file: create '%s': Is a directory",
           tmp);
  ck_assert_str_eq(err, want);
  ck_assert_str_eq(get_file(path), before);
  ckpt_file_free(f);
  free(before);

  /* A directory that does not exist. */
  snprintf(path, sizeof(path), "%s/nope/ck.json", dir);
  f = load_ok(4);
  ck_assert_int_eq(ckpt_file_save(f, err, sizeof(err)), -ENOENT);
  ck_assert_msg(strstr(err, "/nope/ck.json.tmp': No such file or directory"),
                "%s", err);
  ckpt_file_free(f);
}
END_TEST

START_TEST(other_partition_count_refused) {
  char *text = save_sample(8, 7);
  expect_refused(text, 4, HD_ECKPT_PARTITIONS,
                 "' is for 8 partitions, agent.partitions is 4: the "
                 "partitions are fixed");
  expect_refused(text, 16, HD_ECKPT_PARTITIONS, "is for 8 partitions");
  free(text);
}
END_TEST

START_TEST(corrupt_file_refused) {
  const char *ok = "{\"scn\":1,\"ts_ms\":2,\"written_ms\":3,\"owner\":\"a1\","
                   "\"epoch\":0,\"windows\":1,\"rows\":1}";
  char text[1024];
  expect_refused("", 4, HD_ECKPT_CORRUPT, "not JSON: ");
  expect_refused("{\"partitions\":4,\"checkpoints\":{\"0\":{\"scn\":1", 4,
                 HD_ECKPT_CORRUPT, "not JSON: ");
  expect_refused("{\"partitions\":4,\"checkpoints\":{}} x", 4, HD_ECKPT_CORRUPT,
                 "(line 1, column");
  expect_refused("[]", 4, HD_ECKPT_CORRUPT, ": expected a JSON object");
  expect_refused("{\"checkpoints\":{}}", 4, HD_ECKPT_CORRUPT,
                 "field 'partitions': missing");
  expect_refused("{\"partitions\":\"4\",\"checkpoints\":{}}", 4,
                 HD_ECKPT_CORRUPT,
                 "field 'partitions': expected a positive integer");
  expect_refused("{\"partitions\":4}", 4, HD_ECKPT_CORRUPT,
                 "field 'checkpoints': missing");
  expect_refused("{\"partitions\":4,\"checkpoints\":[]}", 4, HD_ECKPT_CORRUPT,
                 "field 'checkpoints': expected an object");
  expect_refused("{\"partitions\":4,\"partitions\":4,\"checkpoints\":{}}", 4,
                 HD_ECKPT_CORRUPT, "duplicate object key");
  const char *keys[] = {"4", "01", "-1", "x", ""};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    snprintf(text, sizeof(text),
             "{\"partitions\":4,\"checkpoints\":{\"%s\":%s}}", keys[i], ok);
    char want[64];
    snprintf(want, sizeof(want),
             "checkpoints: key '%s' is not a partition "
             "below 4",
             keys[i]);
    expect_refused(text, 4, HD_ECKPT_CORRUPT, want);
  }
  snprintf(text, sizeof(text),
           "{\"partitions\":4,\"checkpoints\":{\"0\":%s,\"3\":{\"scn\":1,"
           "\"ts_ms\":2,\"written_ms\":3,\"owner\":\"a1\",\"windows\":1,"
           "\"rows\":1}}}",
           ok);
  expect_refused(text, 4, HD_ECKPT_CORRUPT,
                 "': checkpoints.3: missing field 'epoch'");
  expect_refused("{\"partitions\":4,\"checkpoints\":{\"1\":{\"scn\":-5,"
                 "\"ts_ms\":2,\"written_ms\":3,\"owner\":\"a1\",\"epoch\":0,"
                 "\"windows\":1,\"rows\":1}}}",
                 4, HD_ECKPT_CORRUPT,
                 "checkpoints.1: field 'scn': -5 is negative");
  expect_refused("{\"partitions\":4,\"checkpoints\":{\"1\":{\"scn\":1.5,"
                 "\"ts_ms\":2,\"written_ms\":3,\"owner\":\"a1\",\"epoch\":0,"
                 "\"windows\":1,\"rows\":1}}}",
                 4, HD_ECKPT_CORRUPT, "field 'scn': expected a non-negative");
  expect_refused("{\"partitions\":4,\"checkpoints\":{\"1\":{\"scn\":1,"
                 "\"ts_ms\":2,\"written_ms\":3,\"owner\":\"\",\"epoch\":0,"
                 "\"windows\":1,\"rows\":1}}}",
                 4, HD_ECKPT_CORRUPT,
                 "checkpoints.1: field 'owner': must not be empty");
  expect_refused("{\"partitions\":4,\"checkpoints\":{\"2\":7}}", 4,
                 HD_ECKPT_CORRUPT, "checkpoints.2: expected a JSON object");
}
END_TEST

START_TEST(unreadable_is_not_missing) {
  /* A directory where the file should be: an error, not an empty store. */
  ck_assert_int_eq(mkdir(path, 0755), 0);
  ckpt_file_t *f = (ckpt_file_t *)1;
  char err[1024];
  int rc = ckpt_file_load(path, 4, &f, err, sizeof(err));
  ck_assert_int_lt(rc, 0);
  ck_assert_ptr_null(f);
  ck_assert_msg(strstr(err, path), "%s", err);
}
END_TEST

static Suite *ckpt_suite(void) {
  Suite *s = suite_create("ckpt_file");
  TCase *tc = tcase_create("ckpt_file");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, one_object_both_ways);
  tcase_add_test(tc, missing_file_is_empty);
  tcase_add_test(tc, round_trip);
  tcase_add_test(tc, crash_mid_write_keeps_old_file);
  tcase_add_test(tc, failed_save_keeps_old_file);
  tcase_add_test(tc, other_partition_count_refused);
  tcase_add_test(tc, corrupt_file_refused);
  tcase_add_test(tc, unreadable_is_not_missing);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(ckpt_suite)
