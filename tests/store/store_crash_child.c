/*
 * store_crash_child DIR - appends windows to the log store in DIR as fast as
 * it can with fsync = window, and prints each acknowledged SCN on its own
 * line (flushed). test_store's crash test kills it with SIGKILL and checks
 * that every SCN it printed is still in the store.
 *
 * Payloads are a function of the SCN (store_payload_byte below, the same as
 * in test_store.c), so the test can check contents too. Exits by itself
 * after 30 s in case nobody kills it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "relay_store.h"

static uint8_t store_payload_byte(uint64_t scn, size_t i) {
  return (uint8_t)(scn * 131u + i * 7u + (i >> 8));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: store_crash_child DIR\n");
    return 2;
  }
  relay_store_opts_t o = {.dir = argv[1],
                          .segment_bytes = 64 << 10,
                          .fsync = HD_FSYNC_WINDOW,
                          .index_bytes = 4096};
  relay_store_t *s;
  char err[512];
  int rc = relay_store_open(&o, &s, err, sizeof(err));
  if (rc != 0) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  static uint8_t buf[4096];
  uint64_t scn = relay_store_last_scn(s);
  time_t until = time(NULL) + 30;
  for (uint64_t i = 0; time(NULL) < until; i++) {
    /* SCNs with gaps, as binlog end offsets have; sizes that vary so that
     * records straddle pages and segment ends. */
    scn += 1 + i % 13;
    size_t len = 1 + (size_t)((i * 977) % sizeof(buf));
    for (size_t j = 0; j < len; j++)
      buf[j] = store_payload_byte(scn, j);
    rc = relay_store_append(s, scn, 1000 + i, buf, len);
    if (rc != 0) {
      fprintf(stderr, "append: %s\n", relay_store_errmsg(s));
      return 1;
    }
    printf("%" PRIu64 " %zu\n", scn, len);
    fflush(stdout);
  }
  relay_store_close(s);
  return 0;
}
