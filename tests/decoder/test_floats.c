/*
 * test_floats.c - the shortest FLOAT/DOUBLE text against a plain search.
 *
 * hb__fmt_double() computes the shortest decimal that reads back to the
 * same value with 128-bit integers in the usual range and printf/strtod
 * outside it. Here every result must equal what the simplest correct
 * method gives: try 1, 2, ... significant digits with %.*e until strtod
 * (strtof) reads the value back, then lay it out as %.*g. The values
 * concentrate on the integer path's range and its edges (powers of two
 * and of ten and their neighbours, 2^-18, 2^53, decimal-looking values)
 * and include random bit patterns. (The neighbours of powers of ten found
 * a carry bug in the first version.)
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb_int.h"

static void reference(double d, int is_float, char *out) {
  double a = fabs(d);
  if (a < 1e17 && a == floor(a)) {
    snprintf(out, 48, "%.0f", d);
    return;
  }
  char buf[48];
  int maxp = is_float ? 9 : 17, p = maxp;
  for (int prec = 1; prec <= maxp; prec++) {
    snprintf(buf, sizeof(buf), "%.*e", prec - 1, a);
    int ok = is_float ? (float)strtof(buf, NULL) == (float)a
                      : strtod(buf, NULL) == a;
    if (ok) {
      p = prec;
      break;
    }
  }
  snprintf(buf, sizeof(buf), "%.*e", p - 1, a);
  char *e = strchr(buf, 'e');
  int n = 0;
  for (char *s = buf; s < e; s++)
    n += *s >= '0' && *s <= '9';
  for (char *s = e - 1; *s == '0'; s--)
    n--;
  int ex = atoi(e + 1);
  int prec = ex >= 0 && ex < 17 && ex + 1 > n ? ex + 1 : n;
  snprintf(out, 48, "%.*g", prec, d);
}

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

START_TEST(shortest_matches_search) {
  char got[64], want[64];
  long bad = 0;
  for (int i = 0; i < 60000; i++) {
    double d;
    int isf = i & 1;
    switch (i % 6) {
    case 0: { /* any bit pattern */
      uint64_t b = rnd();
      memcpy(&d, &b, 8);
      break;
    }
    case 1: /* 53 random bits across 24 decades */
      d = ((double)(rnd() >> 11) / 9007199254740992.0) *
          pow(10, (int)(rnd() % 24) - 8);
      break;
    case 2: /* decimal-looking values */
      d = (double)((int64_t)(rnd() % 2000000001) - 1000000000) / 1000.0;
      break;
    case 3: /* around the integer path's exponent limits */
      d = ldexp((double)(rnd() >> 11), (int)(rnd() % 40) - 90);
      break;
    case 4: /* powers of ten and their neighbours */
      d = nextafter(pow(10, (int)(rnd() % 30) - 10),
                    (rnd() & 1) ? INFINITY : 0);
      break;
    default: /* powers of two and their neighbours */
      d = nextafter(ldexp(1.0, (int)(rnd() % 120) - 60),
                    (rnd() & 1) ? INFINITY : 0);
      break;
    }
    if (rnd() & 1)
      d = -d;
    if (isf)
      d = (float)d;
    if (!isfinite(d))
      continue;
    got[hb__fmt_double(d, isf, got)] = '\0';
    reference(d, isf, want);
    if (strcmp(got, want) != 0 && bad++ < 5)
      fprintf(stderr, "%s %.17g: got %s, want %s\n", isf ? "float" : "double",
              d, got, want);
  }
  ck_assert_int_eq(bad, 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("decoder floats");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, shortest_matches_search);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
