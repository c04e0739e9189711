/* Unit tests of the structured logger: format, quoting, level filter. */
#include <string.h>
#include <unistd.h>

#include "hd_check.h"
#include "hd_log.h"

static char out[8192];

/* Runs the logger into a pipe and returns what it wrote. */
static const char *capture_begin(int *fds) {
  ck_assert_int_eq(pipe(fds), 0);
  hd_log_set_fd(fds[1]);
  return NULL;
}

static const char *capture_end(int *fds) {
  close(fds[1]);
  ssize_t n = read(fds[0], out, sizeof(out) - 1);
  close(fds[0]);
  out[n > 0 ? n : 0] = '\0';
  hd_log_set_fd(2);
  return out;
}

START_TEST(format_and_quoting) {
  int fds[2];
  capture_begin(fds);
  hd_log_level = HD_LL_INFO;
  hd_log(HD_LL_WARN, "relay", "frame too large", "len=%u peer=%s", 9000000u,
         "127.0.0.1:4411");
  hd_log(HD_LL_INFO, "zk", "connected", NULL);
  const char *s = capture_end(fds);
  const char *l2 = strchr(s, '\n') + 1;
  ck_assert_msg(strncmp(s, "ts=", 3) == 0, "%s", s);
  ck_assert_ptr_nonnull(strstr(s, "Z level=warn comp=relay msg=\"frame too "
                                  "large\" len=9000000 peer=127.0.0.1:4411\n"));
  ck_assert_ptr_nonnull(strstr(l2, " level=info comp=zk msg=connected\n"));
}
END_TEST

START_TEST(quiet_by_default_and_filtered) {
  int fds[2];
  ck_assert_int_eq(hd_log_level, HD_LL_WARN); /* the default */
  capture_begin(fds);
  hd_log(HD_LL_INFO, "relay", "hidden", NULL);
  hd_log(HD_LL_DEBUG, "relay", "hidden", NULL);
  hd_log(HD_LL_ERROR, "relay", "shown", NULL);
  const char *s = capture_end(fds);
  ck_assert_ptr_null(strstr(s, "hidden"));
  ck_assert_ptr_nonnull(strstr(s, "msg=shown"));
}
END_TEST

START_TEST(levels) {
  ck_assert_int_eq(hd_log_level_parse("debug"), HD_LL_DEBUG);
  ck_assert_int_eq(hd_log_level_parse("warning"), HD_LL_WARN);
  ck_assert_int_eq(hd_log_level_parse("off"), HD_LL_OFF);
  ck_assert_int_eq(hd_log_level_parse("loud"), -1);
  setenv("HERALD_LOG_LEVEL", "nope", 1);
  ck_assert_int_eq(hd_log_init_from_env(), -1);
  setenv("HERALD_LOG_LEVEL", "debug", 1);
  ck_assert_int_eq(hd_log_init_from_env(), 0);
  ck_assert_int_eq(hd_log_level, HD_LL_DEBUG);
}
END_TEST

START_TEST(long_record_cut_not_dropped) {
  int fds[2];
  static char big[6000];
  memset(big, 'x', sizeof(big) - 1);
  capture_begin(fds);
  hd_log(HD_LL_ERROR, "t", "big", "v=%s", big);
  const char *s = capture_end(fds);
  size_t n = strlen(s);
  ck_assert_uint_eq(n, 4095);
  ck_assert_int_eq(s[n - 1], '\n');
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, format_and_quoting);
  tcase_add_test(tc, quiet_by_default_and_filtered);
  tcase_add_test(tc, levels);
  tcase_add_test(tc, long_record_cut_not_dropped);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
