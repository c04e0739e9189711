/*
 * hd_check.h - shared glue for herald's Check unit tests.
 *
 * Each test file defines its cases and a suite function; HD_CHECK_MAIN
 * runs it. Check forks every test into its own process (CK_FORK), so a
 * crash fails one test and the others still run.
 */
#ifndef HD_CHECK_H
#define HD_CHECK_H

#include <check.h>
#include <stdlib.h>

#define HD_CHECK_MAIN(suite_fn)                                                \
  int main(void) {                                                             \
    SRunner *sr = srunner_create(suite_fn());                                  \
    srunner_run_all(sr, CK_NORMAL);                                            \
    int failed = srunner_ntests_failed(sr);                                    \
    srunner_free(sr);                                                          \
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                          \
  }

#endif
