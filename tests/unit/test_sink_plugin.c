/* Unit tests of the plugin sink (consumer-agent/sink_plugin.c) with the
 * example plugin and its ABI-99 twin (examples/, built into build/lib):
 * the table check, the refusals at create, the status mapping (a failure
 * breaks the handle, retryable; fencing is HD_ESINK_FENCED), and the
 * example's own position: a reopen cuts what no flush covered and
 * returns the SCN of the last flushed window. No servers. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hd_check.h"
#include "hd_confdefs.h"
#include "hd_err.h"
#include "hd_log.h"
#include "hd_tmpdir.h"
#include "sink.h"
#include "sink_int.h"

#ifndef HD_PLUGIN_DIR
#error HD_PLUGIN_DIR: the directory of the example plugins
#endif
#define EXAMPLE HD_PLUGIN_DIR "/libherald_sink_example.so"
#define ABI99 HD_PLUGIN_DIR "/libherald_sink_abi99.so"

static char dir[256];
static char *opts[4];
static char dir_opt[256];

static void setup(void) {
  hd_tmpdir_make(dir, sizeof(dir), "sinkplugin");
  hd_log_level = HD_LL_OFF;
}

static void teardown(void) {
  hd_tmpdir_remove(dir);
}

static hd_agent_conf_t conf_of(const char *path, const char *fail_after) {
  hd_agent_conf_t c;
  memset(&c, 0, sizeof(c));
  c.agent.id = "a1";
  c.agent.partitions = 2;
  c.sink.type = HD_SINK_PLUGIN;
  c.sink.path = (char *)path;
  snprintf(dir_opt, sizeof(dir_opt), "%s", dir);
  opts[0] = "dir";
  opts[1] = dir_opt;
  opts[2] = "fail_after_windows";
  opts[3] = (char *)fail_after;
  c.sink.options.v = opts;
  c.sink.options.n = fail_after ? 4 : 2;
  return c;
}

static sink_window_t win(uint64_t scn, uint32_t chunk, int last,
                         const char *json) {
  sink_window_t w;
  memset(&w, 0, sizeof(w));
  w.scn = scn;
  w.chunk = chunk;
  w.last = last;
  w.json = json;
  w.json_len = strlen(json);
  w.rows = 1;
  return w;
}

static char *slurp(const char *path) {
  static char buf[4096];
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

START_TEST(check_refuses_bad_tables) {
  char err[300];
  herald_sink_plugin_t t;
  memset(&t, 0, sizeof(t));
  ck_assert_int_eq(sink_plugin_check(NULL, "x.so", err, sizeof(err)),
                   HD_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, "returned NULL"));
  t.abi_version = 2;
  ck_assert_int_eq(sink_plugin_check(&t, "x.so", err, sizeof(err)), HD_ECONFIG);
  ck_assert_ptr_nonnull(
      strstr(err, "x.so: built for ABI version 2, this agent speaks 1"));
  t.abi_version = HERALD_SINK_ABI_VERSION;
  t.name = "t";
  ck_assert_int_eq(sink_plugin_check(&t, "x.so", err, sizeof(err)), HD_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, "has no init"));
}
END_TEST

START_TEST(create_refuses) {
  char err[512];
  sink_t *s = NULL;
  hd_agent_conf_t c = conf_of(ABI99, NULL);
  ck_assert_int_eq(sink_create(&c, &s, err, sizeof(err)), HD_ECONFIG);
  ck_assert_ptr_null(s);
  ck_assert_ptr_nonnull(strstr(err, "built for ABI version 99"));
  c = conf_of("/nonexistent/libx.so", NULL);
  ck_assert_int_eq(sink_create(&c, &s, err, sizeof(err)), HD_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, "cannot load /nonexistent/libx.so"));
  c = conf_of(EXAMPLE, "many");
  ck_assert_int_eq(sink_create(&c, &s, err, sizeof(err)), HD_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, "init refused the options"));
}
END_TEST

START_TEST(reopen_cuts_to_the_last_flush) {
  char err[512], path[512];
  sink_t *s = NULL;
  hd_agent_conf_t c = conf_of(EXAMPLE, NULL);
  ck_assert_msg(sink_create(&c, &s, err, sizeof(err)) == 0, "%s", err);
  sink_part_t *part;
  uint64_t pos = 99;
  ck_assert_int_eq(sink_open(s, 1, 1, &part, &pos, err, sizeof(err)), 0);
  ck_assert_uint_eq(pos, 0);
  sink_window_t w = win(10, 0, 0, "a\n");
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), 0);
  w = win(10, 1, 1, "b\n");
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_flush(part, err, sizeof(err)), 0);
  w = win(11, 0, 1, "c\n"); /* never flushed */
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_close(part, err, sizeof(err)), 0);
  snprintf(path, sizeof(path), "%s/p1.jsonl", dir);
  ck_assert_str_eq(slurp(path), "a\nb\nc\n");

  ck_assert_int_eq(sink_open(s, 1, 1, &part, &pos, err, sizeof(err)), 0);
  ck_assert_uint_eq(pos, 10);
  ck_assert_str_eq(slurp(path), "a\nb\n");
  w = win(11, 0, 1, "c\n");
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_flush(part, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_close(part, err, sizeof(err)), 0);
  ck_assert_str_eq(slurp(path), "a\nb\nc\n");

  /* another owner (epoch 2) flushed: the old one (epoch 1) is fenced */
  ck_assert_int_eq(sink_open(s, 1, 2, &part, &pos, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_flush(part, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_close(part, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_open(s, 1, 1, &part, &pos, err, sizeof(err)),
                   HD_ESINK_FENCED);
  ck_assert_ptr_nonnull(strstr(err, "fenced"));
  sink_destroy(s);
}
END_TEST

START_TEST(failure_breaks_the_handle_once) {
  char err[512];
  sink_t *s = NULL;
  hd_agent_conf_t c = conf_of(EXAMPLE, "1");
  ck_assert_msg(sink_create(&c, &s, err, sizeof(err)) == 0, "%s", err);
  sink_part_t *part;
  uint64_t pos;
  ck_assert_int_eq(sink_open(s, 0, 1, &part, &pos, err, sizeof(err)), 0);
  sink_window_t w = win(5, 0, 1, "x\n");
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), 0);
  w = win(6, 0, 1, "y\n");
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), -EIO);
  ck_assert_ptr_nonnull(strstr(err, "injected failure"));
  ck_assert_int_eq(sink_flush(part, err, sizeof(err)), HD_ESINK_BROKEN);
  sink_close(part, err, sizeof(err));
  /* reopened: nothing was flushed, the window comes again and passes */
  ck_assert_int_eq(sink_open(s, 0, 1, &part, &pos, err, sizeof(err)), 0);
  ck_assert_uint_eq(pos, 0);
  w = win(5, 0, 1, "x\n");
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), 0);
  w = win(6, 0, 1, "y\n");
  ck_assert_int_eq(sink_write(part, &w, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_flush(part, err, sizeof(err)), 0);
  ck_assert_int_eq(sink_close(part, err, sizeof(err)), 0);
  char path[512];
  snprintf(path, sizeof(path), "%s/p0.jsonl", dir);
  ck_assert_str_eq(slurp(path), "x\ny\n");
  sink_destroy(s);
}
END_TEST

static int load(const char *sink, hd_agent_conf_t *a, char *err) {
  char text[1024];
  snprintf(text, sizeof(text),
           "agent: {id: a, group: g, source: s, partitions: 2, relays: "
           "'h:1'}\n%s",
           sink);
  memset(a, 0, sizeof(*a));
  return hd_config_load_string("a.yaml", text, strlen(text), &hd_agent_schema,
                               a, err, 512);
}

/* sink.options: a mapping of scalars, in the file's order, handed to the
 * plugin's init as it is; refused with other types and as other shapes. */
START_TEST(config_options) {
  hd_agent_conf_t a;
  char err[512], yaml[600];
  snprintf(yaml, sizeof(yaml),
           "sink:\n  type: plugin\n  path: %s\n  options:\n"
           "    dir: %s\n    fail_after_windows: 3\n",
           EXAMPLE, dir);
  ck_assert_msg(load(yaml, &a, err) == 0, "%s", err);
  ck_assert_int_eq(a.sink.type, HD_SINK_PLUGIN);
  ck_assert_uint_eq(a.sink.options.n, 4);
  ck_assert_str_eq(a.sink.options.v[0], "dir");
  ck_assert_str_eq(a.sink.options.v[2], "fail_after_windows");
  ck_assert_str_eq(a.sink.options.v[3], "3");
  sink_t *s = NULL;
  ck_assert_msg(sink_create(&a, &s, err, sizeof(err)) == 0, "%s", err);
  sink_destroy(s);
  hd_config_free(&hd_agent_schema, &a);

  static const struct {
    const char *sink, *want;
  } bad[] = {
      {"sink:\n  type: plugin\n  path: /x.so\n  options:\n    dir: [a, b]\n",
       "a.yaml:6:5: sink.options: keys and values must be scalars"},
      {"sink:\n  type: plugin\n  path: /x.so\n  options: [a]\n",
       "sink.options: expected a mapping"},
      {"sink:\n  type: plugin\n", "sink: type plugin needs 'path'"},
      {"sink:\n  type: file\n  path: /x\n  options: {dir: /tmp}\n",
       "sink.options: only used with type plugin"},
      {"sink:\n  type: stdout\n  path: /x\n",
       "sink.path: only used with type file or plugin"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(load(bad[i].sink, &a, err), HD_ECONFIG);
    ck_assert_msg(strstr(err, bad[i].want) != NULL, "%zu: '%s', not '%s'", i,
                  err, bad[i].want);
    hd_config_free(&hd_agent_schema, &a);
  }
}
END_TEST

static Suite *plugin_suite(void) {
  Suite *s = suite_create("sink_plugin");
  TCase *tc = tcase_create("plugin");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, check_refuses_bad_tables);
  tcase_add_test(tc, create_refuses);
  tcase_add_test(tc, config_options);
  tcase_add_test(tc, reopen_cuts_to_the_last_flush);
  tcase_add_test(tc, failure_breaks_the_handle_once);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(plugin_suite)
