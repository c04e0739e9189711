/*
 * store_bench DIR [RECORDS [SIZE]] - throughput of the relay's log store.
 *
 * Appends RECORDS records of SIZE bytes (default 200000 x 1 KiB) into a
 * fresh store under DIR with fsync = none, then with fsync = interval
 * (100 ms, synced by append itself as the relay's timer would), then a
 * shorter run with fsync = window; and reads each store back with one
 * reader. Prints records/s and MB/s. Not a test: figures depend on the disk.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay_store.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rm_store(const char *d) {
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", d);
}

static int run(const char *root, const char *name, int fsync, uint64_t n,
               size_t size) {
  char d[1024];
  snprintf(d, sizeof(d), "%s/bench-%s", root, name);
  rm_store(d);
  relay_store_opts_t o = {.dir = d, .fsync = fsync, .fsync_interval_ms = 100};
  relay_store_t *s;
  char err[512];
  if (relay_store_open(&o, &s, err, sizeof(err)) != 0) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  uint8_t *buf = malloc(size);
  for (size_t i = 0; i < size; i++)
    buf[i] = (uint8_t)(i * 7);
  double t0 = now_s();
  for (uint64_t i = 0; i < n; i++) {
    if (relay_store_append(s, 1000 + 10 * i, i, buf, size) != 0) {
      fprintf(stderr, "append: %s\n", relay_store_errmsg(s));
      return 1;
    }
  }
  if (fsync == HD_FSYNC_INTERVAL)
    relay_store_sync(s); /* the timer's last tick */
  double ta = now_s() - t0;
  /* Read back while the data is still in the page cache, as consumers
   * close behind the relay read it. */
  relay_store_reader_t *r;
  relay_store_reader_open(s, 0, &r);
  uint64_t scn, ts, got = 0, bytes = 0;
  const void *data;
  size_t len;
  t0 = now_s();
  while (relay_store_reader_next(r, &scn, &ts, &data, &len) == 0) {
    got++;
    bytes += len;
  }
  double tr = now_s() - t0;
  relay_store_reader_close(r);
  relay_store_close(s);
  double mb = (double)n * (double)size / 1e6;
  printf("fsync=%-8s records=%-8" PRIu64 " size=%zu  append: %9.0f rec/s "
         "%7.1f MB/s  read: %9.0f rec/s %7.1f MB/s%s\n",
         name, n, size, (double)n / ta, mb / ta, (double)got / tr,
         (double)bytes / 1e6 / tr, got == n ? "" : "  READ MISMATCH");
  free(buf);
  rm_store(d);
  return got == n ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: store_bench DIR [RECORDS [SIZE]]\n");
    return 2;
  }
  uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 200000;
  size_t size = argc > 3 ? (size_t)strtoull(argv[3], NULL, 10) : 1024;
  int rc = run(argv[1], "none", HD_FSYNC_NONE, n, size);
  rc |= run(argv[1], "interval", HD_FSYNC_INTERVAL, n, size);
  rc |= run(argv[1], "window", HD_FSYNC_WINDOW, n / 50 ? n / 50 : 1, size);
  return rc;
}
