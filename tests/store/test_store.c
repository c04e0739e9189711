/*
 * Unit tests of the relay's log store (relay/relay_store.c): round trips
 * across segment rolls, reader start points, SCN order, recovery of torn and
 * corrupt data, index rebuild, retention and its TOO_OLD boundary, the
 * directory lock, a reader on another thread, and a SIGKILL crash test.
 *
 * Stores live in fresh directories (see mkdir_tmp). Records of
 * the tests follow one pattern (rec_scn, rec_len, payload_byte), so every
 * payload read back is checked byte for byte.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hd_check.h"
#include "hd_log.h"
#include "relay_store.h"

/* ---- helpers ------------------------------------------------------------ */

/* An assertion for loops over thousands of records: Check's ck_assert_*
 * records every passing check in a message to the runner, which costs
 * seconds at that volume; this one speaks only when it fails. */
#define REQUIRE(cond, ...)                                                     \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

#define SEG_HDR 48
#define REC_HDR 24

static char dir[512];
static char *cdir = dir; /* the store of in_child() functions */

static uint8_t payload_byte(uint64_t scn, size_t i) {
  return (uint8_t)(scn * 131u + i * 7u + (i >> 8));
}

/* Record k of the tests' pattern: SCNs 10 apart, lengths 1..300. */
static uint64_t rec_scn(uint64_t k) {
  return 1000 + 10 * k;
}
static uint64_t rec_ts(uint64_t k) {
  return 1000000 + 1000 * k;
}
static size_t rec_len(uint64_t k) {
  return 1 + (size_t)((k * 37) % 300);
}

static void fill(uint8_t *b, uint64_t scn, size_t len) {
  for (size_t i = 0; i < len; i++)
    b[i] = payload_byte(scn, i);
}

static int payload_ok(const void *d, uint64_t scn, size_t len) {
  const uint8_t *b = d;
  for (size_t i = 0; i < len; i++)
    if (b[i] != payload_byte(scn, i))
      return 0;
  return 1;
}

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static void rmtree(const char *p) {
  nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Under $TMPDIR if set, else /dev/shm where there is one: the tests need
 * page-cache semantics only (the crash test kills a process, not the
 * machine), and on a busy disk ext4's flushes on rename and truncate would
 * make the torn-tail loop take many seconds. */
static void mkdir_tmp(char *out, size_t n) {
  const char *t = getenv("TMPDIR");
  struct stat st;
  if (t == NULL || *t == '\0')
    t = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                access("/dev/shm", W_OK) == 0
            ? "/dev/shm"
            : "/tmp";
  snprintf(out, n, "%s/hd_store_XXXXXX", t);
  ck_assert_ptr_nonnull(mkdtemp(out));
}

static void setup(void) {
  mkdir_tmp(dir, sizeof(dir));
}

static void teardown(void) {
  rmtree(dir);
}

static relay_store_opts_t opts(const char *d, uint64_t seg, uint32_t idx,
                               int fsync) {
  relay_store_opts_t o = {
      .dir = d, .segment_bytes = seg, .fsync = fsync, .index_bytes = idx};
  return o;
}

static relay_store_t *open_ok(const relay_store_opts_t *o) {
  relay_store_t *s = NULL;
  char err[512] = "";
  int rc = relay_store_open(o, &s, err, sizeof(err));
  ck_assert_msg(rc == 0, "open %s: %d %s", o->dir, rc, err);
  return s;
}

/* Appends records k in [from, to) of the pattern. */
static void append_range(relay_store_t *s, uint64_t from, uint64_t to) {
  static uint8_t buf[512];
  for (uint64_t k = from; k < to; k++) {
    size_t len = rec_len(k);
    fill(buf, rec_scn(k), len);
    int rc = relay_store_append(s, rec_scn(k), rec_ts(k), buf, len);
    REQUIRE(rc == 0, "append k=%" PRIu64 ": %s", k, relay_store_errmsg(s));
  }
}

/* Reads everything after after_scn and checks it is records [first, to) of
 * the pattern, in order, then the end. */
static void expect_range(relay_store_t *s, uint64_t after, uint64_t first,
                         uint64_t to) {
  relay_store_reader_t *r;
  ck_assert_int_eq(relay_store_reader_open(s, after, &r), 0);
  uint64_t scn, ts;
  const void *d;
  size_t len;
  for (uint64_t k = first; k < to; k++) {
    int rc = relay_store_reader_next(r, &scn, &ts, &d, &len);
    REQUIRE(rc == 0, "after=%" PRIu64 " k=%" PRIu64 ": rc=%d %s", after, k, rc,
            relay_store_reader_errmsg(r));
    REQUIRE(scn == rec_scn(k) && ts == rec_ts(k) && len == rec_len(k) &&
                payload_ok(d, scn, len),
            "after=%" PRIu64 " k=%" PRIu64 ": got scn=%" PRIu64 " ts=%" PRIu64
            " len=%zu",
            after, k, scn, ts, len);
  }
  int rc = relay_store_reader_next(r, &scn, &ts, &d, &len);
  REQUIRE(rc == 1, "after=%" PRIu64 ": %d at the end", after, rc);
  relay_store_reader_close(r);
}

static uint64_t file_size(const char *p) {
  struct stat st;
  ck_assert_msg(stat(p, &st) == 0, "stat %s: %s", p, strerror(errno));
  return (uint64_t)st.st_size;
}

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Sorted names (their SCN) of the segment files of d; returns how many. */
static size_t seg_names(const char *d, uint64_t *v, size_t max) {
  DIR *dd = opendir(d);
  ck_assert_ptr_nonnull(dd);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(dd)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l == 20 && strcmp(de->d_name + 16, ".seg") == 0) {
      ck_assert_uint_lt(n, max);
      v[n++] = strtoull(de->d_name, NULL, 16);
    }
  }
  closedir(dd);
  for (size_t i = 1; i < n; i++) /* insertion sort: few files */
    for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
      uint64_t t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n;
}

static void seg_path(char *out, size_t n, const char *d, uint64_t name,
                     const char *ext) {
  snprintf(out, n, "%s/%016" PRIx64 "%s", d, name, ext);
}

/* Bytes of segment and index files in d: what relay_store_bytes() counts. */
static uint64_t dir_bytes(const char *d) {
  DIR *dd = opendir(d);
  ck_assert_ptr_nonnull(dd);
  uint64_t sum = 0;
  struct dirent *de;
  char p[1024];
  while ((de = readdir(dd)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l == 20 && (strcmp(de->d_name + 16, ".seg") == 0 ||
                    strcmp(de->d_name + 16, ".idx") == 0)) {
      snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
      sum += file_size(p);
    }
  }
  closedir(dd);
  return sum;
}

/* Offsets of the records in a segment file (walked by their length fields:
 * for files the test has not damaged yet). */
static size_t rec_offsets(const char *path, uint64_t *off, uint64_t *scn,
                          size_t max) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  uint64_t size = file_size(path), o = SEG_HDR;
  size_t n = 0;
  while (o + REC_HDR <= size) {
    uint8_t h[REC_HDR];
    ck_assert_int_eq(fseek(f, (long)o, SEEK_SET), 0);
    ck_assert_uint_eq(fread(h, 1, REC_HDR, f), REC_HDR);
    uint32_t len = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24;
    uint64_t sc = 0;
    for (int i = 7; i >= 0; i--)
      sc = sc << 8 | h[8 + i];
    ck_assert_uint_lt(n, max);
    off[n] = o;
    scn[n++] = sc;
    o += REC_HDR + len;
  }
  fclose(f);
  ck_assert_uint_eq(o, size);
  return n;
}

static void flip_byte(const char *path, uint64_t off) {
  int fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  uint8_t b;
  ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
  b ^= 0x5a;
  ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
  close(fd);
}

static void copy_file(const char *from, const char *to) {
  static uint8_t buf[1 << 16];
  int a = open(from, O_RDONLY),
      b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert(a >= 0 && b >= 0);
  ssize_t n;
  while ((n = read(a, buf, sizeof(buf))) > 0)
    ck_assert_int_eq(write(b, buf, (size_t)n), n);
  close(a);
  close(b);
}

/* Copies the segment and index files of one store directory into another. */
static void copy_store(const char *from, const char *to) {
  DIR *dd = opendir(from);
  ck_assert_ptr_nonnull(dd);
  struct dirent *de;
  char a[1024], b[1024];
  while ((de = readdir(dd)) != NULL) {
    if (strlen(de->d_name) != 20)
      continue;
    snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
    snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
    copy_file(a, b);
  }
  closedir(dd);
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  size_t sz = (size_t)file_size(path);
  char *b = malloc(sz + 1);
  ck_assert_uint_eq(fread(b, 1, sz, f), sz);
  b[sz] = '\0';
  fclose(f);
  if (n)
    *n = sz;
  return b;
}

/* Log capture: hd_log records go to a file while a test looks at them. */
static char logpath[600];
static int log_fd = -1;

static void log_begin(void) {
  snprintf(logpath, sizeof(logpath), "%s.log", dir);
  log_fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(log_fd, 0);
  hd_log_set_fd(log_fd);
}

static char *log_end(void) {
  hd_log_set_fd(2);
  close(log_fd);
  char *s = slurp(logpath, NULL);
  unlink(logpath);
  return s;
}

/* Runs fn in a child process that exits without closing anything, as a
 * crashed relay would (no trailer, no sync). */
static void in_child(void (*fn)(void)) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: %d", st);
}

/* ---- round trips and readers -------------------------------------------- */

START_TEST(round_trip_across_rolls) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  ck_assert_uint_eq(relay_store_count(s), 0);
  append_range(s, 0, 400);
  ck_assert_uint_gt(relay_store_segments(s), 10);
  ck_assert_uint_eq(relay_store_count(s), 400);
  ck_assert_uint_eq(relay_store_first_scn(s), rec_scn(0));
  ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(399));
  ck_assert_uint_eq(relay_store_last_ts(s), rec_ts(399));
  ck_assert_uint_eq(relay_store_base_scn(s), 0);
  ck_assert_uint_eq(relay_store_bytes(s), dir_bytes(dir));
  expect_range(s, 0, 0, 400);
  /* No segment holds more than segment_bytes, except for one record. */
  uint64_t names[64];
  size_t n = seg_names(dir, names, 64);
  ck_assert_uint_eq(n, relay_store_segments(s));
  for (size_t i = 0; i < n; i++) {
    char p[1024];
    seg_path(p, sizeof(p), dir, names[i], ".seg");
    ck_assert_uint_le(file_size(p), 4096);
  }
  relay_store_close(s);
  s = open_ok(&o);
  ck_assert_uint_eq(relay_store_bytes(s), dir_bytes(dir));
  relay_store_close(s);
}
END_TEST

START_TEST(big_records) {
  relay_store_opts_t o = opts(dir, 1 << 20, 0, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  size_t big = 3 << 20; /* larger than a segment and a reader's chunk */
  uint8_t *b = malloc(big);
  for (uint64_t k = 1; k <= 3; k++) {
    fill(b, k, big - k);
    ck_assert_int_eq(relay_store_append(s, k, k, b, big - k), 0);
  }
  ck_assert_int_eq(relay_store_append(s, 4, 4, b, 0), 0); /* empty payload */
  ck_assert_uint_eq(relay_store_segments(s), 4); /* the empty one rolls too */
  relay_store_reader_t *r;
  ck_assert_int_eq(relay_store_reader_open(s, 0, &r), 0);
  uint64_t scn, ts;
  const void *d;
  size_t len;
  for (uint64_t k = 1; k <= 3; k++) {
    ck_assert_int_eq(relay_store_reader_next(r, &scn, &ts, &d, &len), 0);
    ck_assert_uint_eq(scn, k);
    ck_assert_uint_eq(len, big - k);
    ck_assert(payload_ok(d, k, len));
  }
  ck_assert_int_eq(relay_store_reader_next(r, &scn, &ts, &d, &len), 0);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(relay_store_reader_next(r, &scn, &ts, &d, &len), 1);
  relay_store_reader_close(r);
  /* Too big is refused before the data is looked at. */
  ck_assert_int_eq(relay_store_append(s, 10, 0, b, RELAY_STORE_MAX_RECORD + 1),
                   RELAY_STORE_ETOO_BIG);
  ck_assert_uint_eq(relay_store_last_scn(s), 4);
  free(b);
  relay_store_close(s);
}
END_TEST

/* Reads from exactly at record k and from just before it. */
static void check_start_point(relay_store_t *s, uint64_t k, uint64_t n) {
  expect_range(s, rec_scn(k), k + 1, n);
  expect_range(s, rec_scn(k) - 3, k, n);
}

/* Start points of a store holding records [0, n): at and before every
 * stride-th record and the last one, before the first, past the end. */
static void check_start_points_by(relay_store_t *s, uint64_t n,
                                  uint64_t stride) {
  for (uint64_t k = 0; k < n; k += stride)
    check_start_point(s, k, n);
  if ((n - 1) % stride != 0)
    check_start_point(s, n - 1, n);
  expect_range(s, 0, 0, n);                    /* before the first */
  expect_range(s, rec_scn(n - 1) + 100, n, n); /* after the end */
}

static void check_start_points(relay_store_t *s, uint64_t n) {
  check_start_points_by(s, n, 1);
}

START_TEST(reader_start_points) {
  relay_store_opts_t o = opts(dir, 4096, 256, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 300);
  /* Live: closed segments seek with their index file, the active one with
   * its entries in memory. */
  check_start_points(s, 300);
  relay_store_close(s);
  /* Reopened: the active segment's entries come from recovery. */
  s = open_ok(&o);
  check_start_points(s, 300);
  relay_store_close(s);
}
END_TEST

START_TEST(reader_sees_new_appends) {
  relay_store_opts_t o = opts(dir, 2048, 256, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  relay_store_reader_t *r0, *end, *past;
  uint64_t scn, ts;
  const void *d;
  size_t len;
  /* A reader of an empty store, one at the end, one past the end. */
  ck_assert_int_eq(relay_store_reader_open(s, 0, &r0), 0);
  ck_assert_int_eq(relay_store_reader_next(r0, &scn, &ts, &d, &len), 1);
  append_range(s, 0, 10);
  ck_assert_int_eq(relay_store_reader_open(s, rec_scn(9), &end), 0);
  ck_assert_int_eq(relay_store_reader_open(s, rec_scn(14) + 5, &past), 0);
  ck_assert_int_eq(relay_store_reader_next(end, &scn, &ts, &d, &len), 1);
  ck_assert_int_eq(relay_store_reader_next(past, &scn, &ts, &d, &len), 1);
  for (uint64_t k = 0; k < 10; k++) {
    ck_assert_int_eq(relay_store_reader_next(r0, &scn, &ts, &d, &len), 0);
    ck_assert_uint_eq(scn, rec_scn(k));
  }
  ck_assert_int_eq(relay_store_reader_next(r0, &scn, &ts, &d, &len), 1);
  /* New records, across several rolls, reach every reader in order; the
   * one past the end sees only those after its start point. */
  append_range(s, 10, 60);
  for (uint64_t k = 10; k < 60; k++) {
    ck_assert_int_eq(relay_store_reader_next(r0, &scn, &ts, &d, &len), 0);
    ck_assert_uint_eq(scn, rec_scn(k));
    ck_assert(payload_ok(d, scn, len));
    ck_assert_int_eq(relay_store_reader_next(end, &scn, &ts, &d, &len), 0);
    ck_assert_uint_eq(scn, rec_scn(k));
  }
  for (uint64_t k = 15; k < 60; k++) {
    ck_assert_int_eq(relay_store_reader_next(past, &scn, &ts, &d, &len), 0);
    ck_assert_uint_eq(scn, rec_scn(k));
  }
  ck_assert_int_eq(relay_store_reader_next(r0, &scn, &ts, &d, &len), 1);
  ck_assert_int_eq(relay_store_reader_next(end, &scn, &ts, &d, &len), 1);
  ck_assert_int_eq(relay_store_reader_next(past, &scn, &ts, &d, &len), 1);
  ck_assert_uint_gt(relay_store_segments(s), 3);
  relay_store_reader_close(r0);
  relay_store_reader_close(end);
  relay_store_reader_close(past);
  relay_store_close(s);
}
END_TEST

START_TEST(refuses_non_increasing_scn) {
  relay_store_opts_t o = opts(dir, 4096, 0, HD_FSYNC_WINDOW);
  relay_store_t *s = open_ok(&o);
  ck_assert_int_eq(relay_store_append(s, 100, 1, "a", 1), 0);
  ck_assert_int_eq(relay_store_append(s, 100, 1, "b", 1),
                   RELAY_STORE_ESCN_ORDER);
  ck_assert_ptr_nonnull(strstr(relay_store_errmsg(s), "100"));
  ck_assert_int_eq(relay_store_append(s, 50, 1, "c", 1),
                   RELAY_STORE_ESCN_ORDER);
  ck_assert_int_eq(relay_store_append(s, 101, 1, "d", 1), 0);
  ck_assert_uint_eq(relay_store_count(s), 2);
  relay_store_close(s);
  /* After a restart too: this is what keeps a window from being stored
   * twice when the relay resumes. */
  s = open_ok(&o);
  ck_assert_uint_eq(relay_store_last_scn(s), 101);
  ck_assert_int_eq(relay_store_append(s, 101, 1, "e", 1),
                   RELAY_STORE_ESCN_ORDER);
  ck_assert_int_eq(relay_store_append(s, 102, 1, "f", 1), 0);
  ck_assert_str_eq(hd_strerror(RELAY_STORE_ESCN_ORDER),
                   "SCN not greater than the newest stored SCN");
  relay_store_close(s);
}
END_TEST

START_TEST(reopen_keeps_everything) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  void *d;
  size_t len;
  ck_assert_int_eq(relay_store_last(s, &d, &len), RELAY_STORE_EEMPTY);
  ck_assert_uint_eq(relay_store_last_scn(s), 0);
  ck_assert_uint_eq(relay_store_first_scn(s), 0);
  ck_assert_uint_eq(relay_store_last_ts(s), 0);
  append_range(s, 0, 250);
  uint64_t bytes = relay_store_bytes(s);
  size_t segs = relay_store_segments(s);
  relay_store_close(s);
  for (int round = 0; round < 2; round++) {
    s = open_ok(&o);
    uint64_t n = 250 + 50 * (uint64_t)round;
    ck_assert_uint_eq(relay_store_count(s), n);
    ck_assert_uint_eq(relay_store_first_scn(s), rec_scn(0));
    ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(n - 1));
    ck_assert_uint_eq(relay_store_last_ts(s), rec_ts(n - 1));
    ck_assert_uint_eq(relay_store_bytes(s), dir_bytes(dir));
    if (round == 0) {
      ck_assert_uint_eq(relay_store_segments(s), segs);
      ck_assert_uint_eq(relay_store_bytes(s), bytes);
    }
    ck_assert_int_eq(relay_store_last(s, &d, &len), 0);
    ck_assert_uint_eq(len, rec_len(n - 1));
    ck_assert(payload_ok(d, rec_scn(n - 1), len));
    free(d);
    expect_range(s, 0, 0, n);
    append_range(s, n, n + 50);
    relay_store_close(s);
  }
}
END_TEST

static void crash_child_append(void) {
  relay_store_opts_t o = opts(cdir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s;
  char err[256];
  if (relay_store_open(&o, &s, err, sizeof(err)) != 0)
    _exit(1);
  static uint8_t buf[512];
  uint64_t from = relay_store_count(s);
  for (uint64_t k = from; k < from + 200; k++) {
    fill(buf, rec_scn(k), rec_len(k));
    if (relay_store_append(s, rec_scn(k), rec_ts(k), buf, rec_len(k)) != 0)
      _exit(1);
  }
  _exit(0); /* no close: no trailer on the active segment's index */
}

START_TEST(reopen_after_process_crash) {
  in_child(crash_child_append);
  in_child(crash_child_append); /* recovers, then crashes again */
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  ck_assert_uint_eq(relay_store_count(s), 400);
  ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(399));
  expect_range(s, 0, 0, 400);
  check_start_points_by(s, 400, 7);
  relay_store_close(s);
}
END_TEST

/* ---- windows in chunks --------------------------------------------------- */

/* Chunk c of the chunked window of SCN scn: its payload pattern. */
static uint64_t chunk_key(uint64_t scn, int c) {
  return scn * 64 + (uint64_t)c;
}

/* Chunks [c0, c0 + n) of the window of SCN scn; the last one closes the
 * window when last is set. */
static void append_chunks_from(relay_store_t *s, uint64_t scn, int c0, int n,
                               size_t len, int last) {
  static uint8_t buf[70000];
  ck_assert_uint_le(len, sizeof(buf));
  for (int c = c0; c < c0 + n; c++) {
    fill(buf, chunk_key(scn, c), len);
    int more = c + 1 < c0 + n || !last;
    ck_assert_int_eq(relay_store_append_chunk(s, scn, scn, buf, len, more), 0);
  }
}

static void append_chunks(relay_store_t *s, uint64_t scn, int n, size_t len,
                          int last) {
  append_chunks_from(s, scn, 0, n, len, last);
}

/* Reads one window of n chunks of SCN scn. */
static void expect_chunks(relay_store_reader_t *r, uint64_t scn, int n,
                          size_t len) {
  for (int c = 0; c < n; c++) {
    uint64_t got, ts;
    const void *d;
    size_t l;
    ck_assert_int_eq(relay_store_reader_next(r, &got, &ts, &d, &l), 0);
    ck_assert_uint_eq(got, scn);
    ck_assert_uint_eq(l, len);
    ck_assert(payload_ok(d, chunk_key(scn, c), len));
    ck_assert_int_eq(relay_store_reader_more(r), c + 1 < n);
  }
}

/* Chunks share their window's SCN, are published with the last one, never
 * split over segments, and a seek after the window lands after all of
 * them. */
START_TEST(chunked_window_round_trip) {
  relay_store_opts_t o = opts(dir, 16384, 1024, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 3);
  relay_store_reader_t *r;
  ck_assert_int_eq(relay_store_reader_open(s, rec_scn(2), &r), 0);
  /* 8 chunks of 5000 bytes: more than two segments' worth */
  append_chunks(s, 5000, 7, 5000, 0);
  uint64_t scn, ts;
  const void *d;
  size_t len;
  ck_assert_int_eq(relay_store_reader_next(r, &scn, &ts, &d, &len), 1);
  ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(2));
  ck_assert_uint_eq(relay_store_count(s), 3);
  /* a record of another SCN while the window is open is refused */
  ck_assert_int_eq(relay_store_append(s, 6000, 1, "x", 1),
                   RELAY_STORE_ESCN_ORDER);
  append_chunks_from(s, 5000, 7, 1, 5000, 1); /* the last chunk */
  ck_assert_uint_eq(relay_store_last_scn(s), 5000);
  ck_assert_uint_eq(relay_store_count(s), 11);
  ck_assert_uint_eq(relay_store_segments(s), 1); /* never split */
  append_chunks(s, 5001, 1, 10, 1);              /* rolls: a new segment */
  ck_assert_uint_eq(relay_store_segments(s), 2);
  /* the reader that waited sees the window whole, then the next */
  relay_store_reader_t *r2;
  ck_assert_int_eq(relay_store_reader_open(s, rec_scn(2), &r2), 0);
  expect_chunks(r, 5000, 8, 5000);
  expect_chunks(r2, 5000, 8, 5000);
  expect_chunks(r, 5001, 1, 10);
  relay_store_reader_close(r2);
  relay_store_reader_close(r);
  /* after the window: the next one */
  ck_assert_int_eq(relay_store_reader_open(s, 5000, &r), 0);
  expect_chunks(r, 5001, 1, 10);
  relay_store_reader_close(r);
  /* the newest record is the window's last chunk */
  void *last;
  ck_assert_int_eq(relay_store_last(s, &last, &len), 0);
  ck_assert_uint_eq(len, 10);
  free(last);
  relay_store_close(s);
  s = open_ok(&o);
  ck_assert_uint_eq(relay_store_count(s), 12);
  ck_assert_int_eq(relay_store_reader_open(s, rec_scn(2), &r), 0);
  expect_chunks(r, 5000, 8, 5000);
  expect_chunks(r, 5001, 1, 10);
  relay_store_reader_close(r);
  relay_store_close(s);
}
END_TEST

static void crash_mid_window(void) {
  relay_store_opts_t o = opts(cdir, 1 << 20, 1024, HD_FSYNC_NONE);
  relay_store_t *s;
  char err[256];
  if (relay_store_open(&o, &s, err, sizeof(err)) != 0)
    _exit(1);
  static uint8_t buf[4000];
  for (uint64_t k = 0; k < 5; k++) {
    fill(buf, rec_scn(k), rec_len(k));
    if (relay_store_append(s, rec_scn(k), rec_ts(k), buf, rec_len(k)) != 0)
      _exit(1);
  }
  for (int c = 0; c < 20; c++) {
    fill(buf, chunk_key(9000, c), sizeof(buf));
    if (relay_store_append_chunk(s, 9000, 9000, buf, sizeof(buf), 1) != 0)
      _exit(1);
  }
  _exit(0); /* dies before the last chunk, without close */
}

/* A process that dies while it appends a window's chunks leaves none of
 * them: recovery cuts the window as a torn tail and appends go on from the
 * window before. So does a close with the window open. */
START_TEST(chunked_window_cut_by_crash) {
  in_child(crash_mid_window);
  relay_store_opts_t o = opts(dir, 1 << 20, 1024, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  ck_assert_uint_eq(relay_store_count(s), 5);
  ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(4));
  append_chunks(s, 9000, 3, 100, 1);
  append_chunks(s, 9100, 2, 100, 0); /* left open at close */
  relay_store_close(s);
  s = open_ok(&o);
  ck_assert_uint_eq(relay_store_count(s), 8);
  ck_assert_uint_eq(relay_store_last_scn(s), 9000);
  relay_store_reader_t *r;
  ck_assert_int_eq(relay_store_reader_open(s, rec_scn(4), &r), 0);
  expect_chunks(r, 9000, 3, 100);
  uint64_t scn, ts;
  const void *d;
  size_t len;
  ck_assert_int_eq(relay_store_reader_next(r, &scn, &ts, &d, &len), 1);
  relay_store_reader_close(r);
  append_chunks(s, 9100, 2, 100, 1);
  ck_assert_uint_eq(relay_store_last_scn(s), 9100);
  relay_store_close(s);
}
END_TEST

/* Every cut inside a window of chunks drops the window, whole. */
START_TEST(chunked_window_torn_every_chunk) {
  relay_store_opts_t o = opts(dir, 1 << 20, 64, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 4);
  append_chunks(s, 7000, 5, 300, 1);
  relay_store_close(s);
  char seg[700];
  snprintf(seg, sizeof(seg), "%s/0000000000000000.seg", dir);
  struct stat st;
  ck_assert_int_eq(stat(seg, &st), 0);
  uint64_t win = (uint64_t)st.st_size - 5 * (REC_HDR + 300);
  int devnull = open("/dev/null", O_WRONLY), saved = dup(2);
  for (uint64_t cut = win + 1; cut < (uint64_t)st.st_size; cut += 97) {
    ck_assert_int_eq(truncate(seg, (off_t)cut), 0);
    dup2(devnull, 2); /* the torn-tail warning */
    s = open_ok(&o);
    dup2(saved, 2);
    REQUIRE(relay_store_last_scn(s) == rec_scn(3), "cut %" PRIu64, cut);
    REQUIRE(relay_store_count(s) == 4, "cut %" PRIu64, cut);
    append_chunks(s, 7000, 5, 300, 1);
    relay_store_close(s);
  }
  close(devnull);
  close(saved);
}
END_TEST

/* ---- recovery ----------------------------------------------------------- */

static void build_torn_base(void) {
  relay_store_opts_t o = opts(cdir, 1 << 20, 64, HD_FSYNC_NONE);
  relay_store_t *s;
  char err[256];
  if (relay_store_open(&o, &s, err, sizeof(err)) != 0)
    _exit(1);
  static uint8_t buf[512];
  for (uint64_t k = 0; k < 8; k++) {
    fill(buf, rec_scn(k), rec_len(k));
    if (relay_store_append(s, rec_scn(k), rec_ts(k), buf, rec_len(k)) != 0)
      _exit(1);
  }
  _exit(0);
}

/* Truncates a copy of the store at every byte offset of its last two
 * records and reopens it: whole records before the cut survive, the torn
 * one is gone, appends go on. Done for a store closed cleanly (trailer on
 * the index) and for one whose process died. */
START_TEST(torn_tail_every_offset) {
  char base[600], work[600];
  snprintf(base, sizeof(base), "%s/base", dir);
  snprintf(work, sizeof(work), "%s/work", dir);
  int devnull = open("/dev/null", O_WRONLY);
  for (int variant = 0; variant < 2; variant++) {
    rmtree(base);
    cdir = base;
    in_child(build_torn_base);
    cdir = dir;
    if (variant == 0) { /* open and close cleanly: the index has a trailer */
      relay_store_opts_t o = opts(base, 1 << 20, 64, HD_FSYNC_NONE);
      relay_store_close(open_ok(&o));
    }
    char segp[1024];
    seg_path(segp, sizeof(segp), base, 0, ".seg");
    uint64_t off[16], scns[16];
    size_t n = rec_offsets(segp, off, scns, 16);
    ck_assert_uint_eq(n, 8);
    uint64_t size = file_size(segp);
    rmtree(work);
    ck_assert_int_eq(mkdir(work, 0755), 0);
    for (uint64_t cut = off[n - 2]; cut < size; cut++) {
      copy_store(base, work); /* overwrites the segment and its index */
      char wseg[1024];
      seg_path(wseg, sizeof(wseg), work, 0, ".seg");
      ck_assert_int_eq(truncate(wseg, (off_t)cut), 0);
      uint64_t whole = cut >= off[n - 1] ? n - 1 : n - 2;
      relay_store_opts_t o = opts(work, 1 << 20, 64, HD_FSYNC_NONE);
      hd_log_set_fd(devnull);
      relay_store_t *s = open_ok(&o);
      hd_log_set_fd(2);
      REQUIRE(relay_store_count(s) == whole &&
                  relay_store_last_scn(s) == rec_scn(whole - 1) &&
                  file_size(wseg) == off[whole],
              "variant %d cut=%" PRIu64 ": count=%" PRIu64, variant, cut,
              relay_store_count(s));
      expect_range(s, 0, 0, whole);
      append_range(s, whole, whole + 1);
      relay_store_close(s);
      if (cut % 4 != 0 && cut != off[n - 1] - 1)
        continue; /* the append stays after a reopen: checked every 4th */
      s = open_ok(&o);
      REQUIRE(relay_store_count(s) == whole + 1, "cut=%" PRIu64, cut);
      expect_range(s, 0, 0, whole + 1);
      relay_store_close(s);
    }
  }
  close(devnull);
}
END_TEST

START_TEST(flipped_byte_in_last_record) {
  relay_store_opts_t o = opts(dir, 1 << 20, 0, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 20);
  relay_store_close(s);
  char segp[1024];
  seg_path(segp, sizeof(segp), dir, 0, ".seg");
  uint64_t off[32], scns[32];
  size_t n = rec_offsets(segp, off, scns, 32);
  ck_assert_uint_eq(n, 20);
  flip_byte(segp, off[19] + REC_HDR + rec_len(19) / 2);
  log_begin();
  s = open_ok(&o);
  char *log = log_end();
  ck_assert_uint_eq(relay_store_count(s), 19);
  ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(18));
  ck_assert_uint_eq(file_size(segp), off[19]);
  char want[1200];
  snprintf(want, sizeof(want), "file=%s offset=%" PRIu64 " dropped=%" PRIu64,
           segp, off[19], REC_HDR + rec_len(19));
  ck_assert_msg(strstr(log, "torn tail truncated") && strstr(log, want),
                "log: %s", log);
  ck_assert_ptr_nonnull(strstr(log, "checksum mismatch"));
  free(log);
  expect_range(s, 0, 0, 19);
  append_range(s, 19, 25);
  expect_range(s, 0, 0, 25);
  relay_store_close(s);
}
END_TEST

START_TEST(flipped_byte_in_closed_segment) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 200);
  relay_store_close(s);
  uint64_t names[64];
  size_t nseg = seg_names(dir, names, 64);
  ck_assert_uint_gt(nseg, 4);
  char segp[1024];
  seg_path(segp, sizeof(segp), dir, names[2], ".seg");
  uint64_t off[64], scns[64];
  size_t n = rec_offsets(segp, off, scns, 64);
  ck_assert_uint_gt(n, 5);
  uint64_t bad_scn = scns[3];
  flip_byte(segp, off[3] + REC_HDR / 2 + 4); /* in the SCN field */
  s = open_ok(&o); /* a closed segment is trusted at open... */
  relay_store_reader_t *r;
  ck_assert_int_eq(relay_store_reader_open(s, 0, &r), 0);
  uint64_t scn, ts, k = 0;
  const void *d;
  size_t len;
  int rc;
  log_begin();
  while ((rc = relay_store_reader_next(r, &scn, &ts, &d, &len)) == 0) {
    ck_assert_uint_eq(scn, rec_scn(k)); /* in order, none skipped */
    k++;
  }
  char *log = log_end();
  /* ...and a reader stops at the damage with file and offset. */
  ck_assert_int_eq(rc, RELAY_STORE_ECORRUPT);
  ck_assert_uint_eq(rec_scn(k), bad_scn);
  char want[1200];
  snprintf(want, sizeof(want),
           "%s: record checksum mismatch at offset %" PRIu64, segp, off[3]);
  ck_assert_str_eq(relay_store_reader_errmsg(r), want);
  ck_assert_ptr_nonnull(strstr(log, want));
  free(log);
  ck_assert_int_eq(relay_store_reader_next(r, &scn, &ts, &d, &len),
                   RELAY_STORE_ECORRUPT); /* sticky */
  relay_store_reader_close(r);
  relay_store_close(s);
}
END_TEST

static void crash_many_segments(void) {
  relay_store_opts_t o = opts(cdir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s;
  char err[256];
  if (relay_store_open(&o, &s, err, sizeof(err)) != 0)
    _exit(1);
  static uint8_t buf[512];
  for (uint64_t k = 0; k < 200; k++) {
    fill(buf, rec_scn(k), rec_len(k));
    if (relay_store_append(s, rec_scn(k), rec_ts(k), buf, rec_len(k)) != 0)
      _exit(1);
  }
  _exit(0);
}

/* Damage in the segment before the newest one, whose index was lost: what a
 * crash under fsync = none can leave. The store keeps the whole records
 * before the damage and drops everything after, never leaving a gap. */
START_TEST(damage_before_newest_truncates_suffix) {
  in_child(crash_many_segments);
  uint64_t names[64];
  size_t nseg = seg_names(dir, names, 64);
  ck_assert_uint_gt(nseg, 4);
  char segp[1024], idxp[1024];
  seg_path(segp, sizeof(segp), dir, names[nseg - 2], ".seg");
  seg_path(idxp, sizeof(idxp), dir, names[nseg - 2], ".idx");
  uint64_t off[64], scns[64];
  size_t n = rec_offsets(segp, off, scns, 64);
  ck_assert_int_eq(unlink(idxp), 0);
  flip_byte(segp, off[n / 2] + REC_HDR);
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  log_begin();
  relay_store_t *s = open_ok(&o);
  char *log = log_end();
  ck_assert_msg(strstr(log, "log truncated before its newest segment") &&
                    strstr(log, "dropped_segments=1"),
                "%s", log);
  free(log);
  uint64_t kbad = (scns[n / 2] - 1000) / 10;
  ck_assert_uint_eq(relay_store_count(s), kbad);
  ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(kbad - 1));
  ck_assert_uint_eq(relay_store_segments(s), nseg - 1);
  ck_assert(exists(idxp)); /* rebuilt */
  expect_range(s, 0, 0, kbad);
  append_range(s, kbad, kbad + 100);
  relay_store_close(s);
  s = open_ok(&o);
  expect_range(s, 0, 0, kbad + 100);
  relay_store_close(s);
}
END_TEST

/* The same damage in an old segment, with cleanly closed segments after it,
 * is not a torn tail: open refuses, names file and offset, and changes
 * nothing. */
START_TEST(damage_before_closed_segments_refuses) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 200);
  relay_store_close(s);
  uint64_t names[64];
  size_t nseg = seg_names(dir, names, 64);
  char segp[1024], idxp[1024];
  seg_path(segp, sizeof(segp), dir, names[1], ".seg");
  seg_path(idxp, sizeof(idxp), dir, names[1], ".idx");
  uint64_t off[64], scns[64];
  size_t n = rec_offsets(segp, off, scns, 64);
  ck_assert_int_eq(unlink(idxp), 0);
  flip_byte(segp, off[n - 1] + REC_HDR);
  uint64_t before = dir_bytes(dir);
  char err[1024] = "";
  ck_assert_int_eq(relay_store_open(&o, &s, err, sizeof(err)),
                   RELAY_STORE_ECORRUPT);
  char want[1200];
  snprintf(want, sizeof(want),
           "%s: record checksum mismatch at offset %" PRIu64, segp, off[n - 1]);
  ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
  ck_assert_uint_eq(seg_names(dir, names, 64), nseg);
  ck_assert_uint_eq(dir_bytes(dir), before);
}
END_TEST

/* A segment missing between two others is no crash's doing: refused. */
START_TEST(missing_segment_refuses) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 100);
  relay_store_close(s);
  uint64_t names[64];
  size_t nseg = seg_names(dir, names, 64);
  char segp[1024], next[1024];
  seg_path(segp, sizeof(segp), dir, names[nseg - 2], ".seg");
  seg_path(next, sizeof(next), dir, names[nseg - 1], ".seg");
  ck_assert_int_eq(unlink(segp), 0);
  char err[1024] = "";
  ck_assert_int_eq(relay_store_open(&o, &s, err, sizeof(err)),
                   RELAY_STORE_ECORRUPT);
  ck_assert_msg(strstr(err, next) && strstr(err, "a segment is missing"), "%s",
                err);
  ck_assert(exists(next));
}
END_TEST

START_TEST(newest_segment_with_torn_header) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 100);
  relay_store_close(s);
  uint64_t names[64];
  size_t nseg = seg_names(dir, names, 64);
  char segp[1024];
  seg_path(segp, sizeof(segp), dir, names[nseg - 1], ".seg");
  ck_assert_int_eq(truncate(segp, 20), 0);
  /* Holding no header, the newest segment goes; the one before carries on
   * as the active segment. */
  int devnull = open("/dev/null", O_WRONLY);
  hd_log_set_fd(devnull);
  s = open_ok(&o);
  hd_log_set_fd(2);
  close(devnull);
  uint64_t kept = (names[nseg - 1] - 1000) / 10 + 1;
  ck_assert_uint_eq(relay_store_count(s), kept);
  ck_assert_uint_eq(relay_store_last_scn(s), names[nseg - 1]);
  ck_assert_uint_eq(relay_store_segments(s), nseg - 1);
  append_range(s, kept, kept + 100);
  relay_store_close(s);
  s = open_ok(&o);
  expect_range(s, 0, 0, kept + 100);
  check_start_points_by(s, kept + 100, 7);
  relay_store_close(s);
}
END_TEST

START_TEST(only_segment_with_torn_header_keeps_base) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  o.base_scn = 500;
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 3);
  relay_store_close(s);
  char segp[1024];
  seg_path(segp, sizeof(segp), dir, 500, ".seg");
  ck_assert_int_eq(truncate(segp, 47), 0);
  o.base_scn = 0; /* only for a new store: the name of the file rules */
  int devnull = open("/dev/null", O_WRONLY);
  hd_log_set_fd(devnull);
  s = open_ok(&o);
  hd_log_set_fd(2);
  close(devnull);
  ck_assert_uint_eq(relay_store_count(s), 0);
  ck_assert_uint_eq(relay_store_base_scn(s), 500);
  ck_assert_uint_eq(relay_store_last_scn(s), 500);
  relay_store_reader_t *r;
  ck_assert_int_eq(relay_store_reader_open(s, 499, &r), RELAY_STORE_ETOO_OLD);
  append_range(s, 0, 3);
  expect_range(s, 500, 0, 3);
  relay_store_close(s);
}
END_TEST

START_TEST(index_rebuilt_when_missing_or_corrupt) {
  relay_store_opts_t o = opts(dir, 8192, 256, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 400);
  relay_store_close(s);
  uint64_t names[64];
  size_t nseg = seg_names(dir, names, 64);
  ck_assert_uint_gt(nseg, 6);
  char p[6][1024];
  char *orig[6];
  size_t olen[6];
  for (int i = 1; i <= 5; i++) {
    seg_path(p[i], sizeof(p[i]), dir, names[i], ".idx");
    orig[i] = slurp(p[i], &olen[i]);
  }
  ck_assert_int_eq(unlink(p[1]), 0);                        /* missing */
  flip_byte(p[2], olen[2] / 2);                             /* an entry */
  ck_assert_int_eq(truncate(p[3], (off_t)olen[3] - 10), 0); /* trailer */
  flip_byte(p[4], 3);                                       /* header */
  ck_assert_int_eq(truncate(p[5], 0), 0);                   /* empty */
  char newest[1024];
  seg_path(newest, sizeof(newest), dir, names[nseg - 1], ".idx");
  ck_assert_int_eq(unlink(newest), 0);
  int devnull = open("/dev/null", O_WRONLY);
  hd_log_set_fd(devnull);
  s = open_ok(&o);
  hd_log_set_fd(2);
  close(devnull);
  /* Rebuilt from the records, the files are what the roll wrote. */
  for (int i = 1; i <= 5; i++) {
    size_t n;
    char *now = slurp(p[i], &n);
    ck_assert_msg(n == olen[i] && memcmp(now, orig[i], n) == 0, "%s", p[i]);
    free(now);
    free(orig[i]);
  }
  ck_assert(exists(newest));
  ck_assert_uint_eq(relay_store_count(s), 400);
  check_start_points_by(s, 400, 7);
  relay_store_close(s);
}
END_TEST

START_TEST(corrupt_index_found_by_reader) {
  relay_store_opts_t o = opts(dir, 8192, 256, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 300);
  /* Damaged after open: a reader falls back to reading the segment. */
  uint64_t names[64];
  seg_names(dir, names, 64);
  char idxp[1024];
  seg_path(idxp, sizeof(idxp), dir, names[1], ".idx");
  flip_byte(idxp, 40);
  int devnull = open("/dev/null", O_WRONLY);
  hd_log_set_fd(devnull);
  check_start_points_by(s, 300, 7);
  hd_log_set_fd(2);
  close(devnull);
  relay_store_close(s);
}
END_TEST

/* ---- retention ---------------------------------------------------------- */

START_TEST(retention_by_age) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  o.retention_ms = 100000; /* 100 records' worth of timestamps */
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 400);
  size_t segs = relay_store_segments(s);
  uint64_t now = rec_ts(399) + 1;
  uint64_t cutoff = now - o.retention_ms;
  int n = relay_store_retain(s, now);
  ck_assert_int_gt(n, 0);
  ck_assert_uint_eq(relay_store_segments(s), segs - (size_t)n);
  /* Deleted: whole segments whose newest record is older than the cutoff;
   * the first one kept has its newest record at or after it. */
  uint64_t base = relay_store_base_scn(s), names[64];
  uint64_t kbase = (base - 1000) / 10;
  ck_assert_uint_lt(rec_ts(kbase), cutoff);
  size_t nf = seg_names(dir, names, 64);
  ck_assert_uint_eq(nf, relay_store_segments(s));
  ck_assert_uint_eq(names[0], base);
  ck_assert_uint_ge(rec_ts((names[1] - 1000) / 10), cutoff);
  ck_assert_uint_eq(relay_store_first_scn(s), rec_scn(kbase + 1));
  ck_assert_uint_eq(relay_store_count(s), 399 - kbase);
  ck_assert_uint_eq(relay_store_bytes(s), dir_bytes(dir));
  expect_range(s, base, kbase + 1, 400);
  ck_assert_int_eq(relay_store_retain(s, now), 0);
  /* Never the active segment, however old. */
  ck_assert_int_gt(relay_store_retain(s, UINT64_MAX / 2), 0);
  ck_assert_uint_eq(relay_store_segments(s), 1);
  ck_assert_uint_eq(relay_store_last_scn(s), rec_scn(399));
  relay_store_close(s);
  /* retention_ms = 0: no age limit. */
  o.retention_ms = 0;
  s = open_ok(&o);
  append_range(s, 400, 600);
  ck_assert_int_eq(relay_store_retain(s, UINT64_MAX / 2), 0);
  relay_store_close(s);
}
END_TEST

START_TEST(retention_by_bytes) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  o.retention_bytes = 5 * 4096;
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 400);
  ck_assert_uint_gt(relay_store_bytes(s), o.retention_bytes);
  int n = relay_store_retain(s, 0);
  ck_assert_int_gt(n, 0);
  ck_assert_uint_le(relay_store_bytes(s), o.retention_bytes);
  ck_assert_uint_eq(relay_store_bytes(s), dir_bytes(dir));
  /* Not one segment more than needed: with the oldest deleted one back the
   * store would be over the limit. */
  uint64_t base = relay_store_base_scn(s);
  expect_range(s, base, (base - 1000) / 10 + 1, 400);
  ck_assert_int_eq(relay_store_retain(s, 0), 0);
  relay_store_close(s);
}
END_TEST

START_TEST(too_old_boundary_is_exact) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  o.retention_ms = 100000;
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 400);
  relay_store_reader_t *r;
  ck_assert_int_eq(relay_store_reader_open(s, 0, &r), 0); /* nothing gone */
  relay_store_reader_close(r);
  ck_assert_int_gt(relay_store_retain(s, rec_ts(399) + 1), 0);
  for (int round = 0; round < 2; round++) {
    /* D: the newest deleted SCN; F: the oldest kept one, D + 10. */
    uint64_t d = relay_store_base_scn(s), f = relay_store_first_scn(s);
    uint64_t kf = (f - 1000) / 10;
    ck_assert_uint_eq(f, d + 10);
    ck_assert_int_eq(relay_store_reader_open(s, d - 1, &r),
                     RELAY_STORE_ETOO_OLD);
    ck_assert_int_eq(relay_store_reader_open(s, 0, &r), RELAY_STORE_ETOO_OLD);
    expect_range(s, d, kf, 400);     /* needs nothing deleted */
    expect_range(s, d + 5, kf, 400); /* between D and F */
    expect_range(s, f, kf + 1, 400);
    relay_store_close(s);
    s = open_ok(&o); /* the boundary survives a restart */
  }
  relay_store_close(s);
}
END_TEST

START_TEST(base_scn_of_new_store) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_WINDOW);
  o.base_scn = 995;
  relay_store_t *s = open_ok(&o);
  relay_store_reader_t *r;
  ck_assert_uint_eq(relay_store_last_scn(s), 995);
  ck_assert_int_eq(relay_store_reader_open(s, 994, &r), RELAY_STORE_ETOO_OLD);
  ck_assert_int_eq(relay_store_append(s, 995, 0, "x", 1),
                   RELAY_STORE_ESCN_ORDER);
  append_range(s, 0, 10);
  expect_range(s, 995, 0, 10);
  relay_store_close(s);
  o.base_scn = 0;
  s = open_ok(&o);
  ck_assert_uint_eq(relay_store_base_scn(s), 995);
  ck_assert_int_eq(relay_store_reader_open(s, 994, &r), RELAY_STORE_ETOO_OLD);
  relay_store_close(s);
}
END_TEST

START_TEST(reader_in_deleted_segment) {
  relay_store_opts_t o = opts(dir, 4096, 512, HD_FSYNC_NONE);
  o.retention_ms = 1;
  relay_store_t *s = open_ok(&o);
  append_range(s, 0, 400);
  uint64_t names[64];
  size_t nseg = seg_names(dir, names, 64);
  ck_assert_uint_gt(nseg, 4);
  relay_store_reader_t *a, *b;
  uint64_t scn, ts;
  const void *d;
  size_t len;
  ck_assert_int_eq(relay_store_reader_open(s, 0, &a), 0);
  ck_assert_int_eq(relay_store_reader_open(s, 0, &b), 0);
  ck_assert_int_eq(relay_store_reader_next(a, &scn, &ts, &d, &len), 0);
  ck_assert_int_eq(relay_store_reader_next(b, &scn, &ts, &d, &len), 0);
  /* Delete the first segment only: its newest record is names[1]. */
  uint64_t k1 = (names[1] - 1000) / 10;
  ck_assert_int_eq(relay_store_retain(s, rec_ts(k1) + 2), 1);
  /* Reader a goes on through the deleted file into the next one. */
  for (uint64_t k = 1; k < 400; k++) {
    ck_assert_int_eq(relay_store_reader_next(a, &scn, &ts, &d, &len), 0);
    ck_assert_uint_eq(scn, rec_scn(k));
    ck_assert(payload_ok(d, scn, len));
  }
  ck_assert_int_eq(relay_store_reader_next(a, &scn, &ts, &d, &len), 1);
  /* Delete two more: reader b finishes its (deleted) segment, then finds a
   * gap and says so rather than skip it. */
  uint64_t k3 = (names[3] - 1000) / 10;
  ck_assert_int_eq(relay_store_retain(s, rec_ts(k3) + 2), 2);
  uint64_t k = 1;
  int rc;
  log_begin();
  while ((rc = relay_store_reader_next(b, &scn, &ts, &d, &len)) == 0)
    ck_assert_uint_eq(scn, rec_scn(k++));
  free(log_end());
  ck_assert_int_eq(rc, RELAY_STORE_ETOO_OLD);
  ck_assert_uint_eq(k, k1 + 1);
  ck_assert_ptr_nonnull(strstr(relay_store_reader_errmsg(b), "retention"));
  relay_store_reader_close(a);
  relay_store_reader_close(b);
  relay_store_close(s);
}
END_TEST

/* ---- lock, options, sync ------------------------------------------------ */

static void try_open_locked(void) {
  relay_store_opts_t o = opts(cdir, 4096, 0, HD_FSYNC_NONE);
  relay_store_t *s;
  char err[512];
  _exit(relay_store_open(&o, &s, err, sizeof(err)) == RELAY_STORE_ELOCKED ? 0
                                                                          : 1);
}

START_TEST(second_open_is_refused) {
  relay_store_opts_t o = opts(dir, 4096, 0, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o), *s2 = NULL;
  char err[512] = "";
  ck_assert_int_eq(relay_store_open(&o, &s2, err, sizeof(err)),
                   RELAY_STORE_ELOCKED);
  ck_assert_ptr_null(s2);
  char pid[32];
  snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
  ck_assert_msg(strstr(err, dir) && strstr(err, "in use by another relay") &&
                    strstr(err, pid),
                "%s", err);
  in_child(try_open_locked); /* another process too */
  relay_store_close(s);
  s = open_ok(&o); /* and free again once closed */
  relay_store_close(s);
}
END_TEST

START_TEST(bad_options) {
  relay_store_t *s;
  char err[256];
  relay_store_opts_t o = opts(NULL, 0, 0, HD_FSYNC_NONE);
  ck_assert_int_eq(relay_store_open(&o, &s, err, sizeof(err)),
                   RELAY_STORE_EBADOPT);
  o = opts(dir, 100, 0, HD_FSYNC_NONE);
  ck_assert_int_eq(relay_store_open(&o, &s, err, sizeof(err)),
                   RELAY_STORE_EBADOPT);
  ck_assert_ptr_nonnull(strstr(err, "segment_bytes"));
  o = opts(dir, 0, 0, 7);
  ck_assert_int_eq(relay_store_open(&o, &s, err, sizeof(err)),
                   RELAY_STORE_EBADOPT);
  /* A directory that cannot be created. */
  o = opts("/proc/no/such/dir", 0, 0, HD_FSYNC_NONE);
  ck_assert_int_lt(relay_store_open(&o, &s, err, sizeof(err)), 0);
  ck_assert_ptr_nonnull(strstr(err, "/proc/no/such/dir"));
  /* Nested directories are created. */
  char deep[700];
  snprintf(deep, sizeof(deep), "%s/a/b/c/", dir);
  o = opts(deep, 0, 0, HD_FSYNC_NONE);
  relay_store_close(open_ok(&o));
}
END_TEST

START_TEST(sync_and_dirty) {
  relay_store_opts_t o = opts(dir, 4096, 0, HD_FSYNC_INTERVAL);
  o.fsync_interval_ms = 3600 * 1000;
  relay_store_t *s = open_ok(&o);
  ck_assert_int_eq(relay_store_dirty(s), 0);
  append_range(s, 0, 1);
  ck_assert_int_eq(relay_store_dirty(s), 1);
  ck_assert_int_eq(relay_store_sync(s), 0);
  ck_assert_int_eq(relay_store_dirty(s), 0);
  ck_assert_int_eq(relay_store_sync(s), 0);
  relay_store_close(s);
  /* A due interval makes append sync by itself. */
  o.fsync_interval_ms = 1;
  s = open_ok(&o);
  struct timespec ts = {0, 5 * 1000 * 1000};
  nanosleep(&ts, NULL);
  append_range(s, 1, 2);
  ck_assert_int_eq(relay_store_dirty(s), 0);
  relay_store_close(s);
  o.fsync = HD_FSYNC_WINDOW;
  s = open_ok(&o);
  append_range(s, 2, 3);
  ck_assert_int_eq(relay_store_dirty(s), 0);
  relay_store_close(s);
}
END_TEST

START_TEST(opts_from_conf) {
  hd_relay_conf_t c;
  memset(&c, 0, sizeof(c));
  c.relay.data_dir = dir;
  c.relay.segment_bytes = 1 << 20;
  c.relay.fsync = HD_FSYNC_INTERVAL;
  c.relay.fsync_interval_ms = 50;
  c.relay.retention_ms = 7;
  c.relay.retention_bytes = 9;
  relay_store_opts_t o;
  relay_store_opts_from_conf(&c, &o);
  ck_assert_str_eq(o.dir, dir);
  ck_assert_uint_eq(o.segment_bytes, 1 << 20);
  ck_assert_int_eq(o.fsync, HD_FSYNC_INTERVAL);
  ck_assert_uint_eq(o.fsync_interval_ms, 50);
  ck_assert_uint_eq(o.retention_ms, 7);
  ck_assert_uint_eq(o.retention_bytes, 9);
  ck_assert_uint_eq(o.base_scn, 0);
}
END_TEST

/* ---- threads ------------------------------------------------------------ */

#define THREAD_RECORDS 20000

typedef struct {
  relay_store_t *s;
  uint64_t got; /* records seen, in order */
  int rc;       /* the reader's final code */
  char err[512];
} reader_arg_t;

static void *reader_thread(void *p) {
  reader_arg_t *a = p;
  relay_store_reader_t *r;
  a->rc = relay_store_reader_open(a->s, 0, &r);
  if (a->rc != 0)
    return NULL;
  uint64_t scn, ts;
  const void *d;
  size_t len;
  while (a->got < THREAD_RECORDS) {
    int rc = relay_store_reader_next(r, &scn, &ts, &d, &len);
    if (rc == 1) {
      sched_yield();
      continue;
    }
    if (rc != 0) {
      a->rc = rc;
      snprintf(a->err, sizeof(a->err), "%s", relay_store_reader_errmsg(r));
      break;
    }
    if (scn != rec_scn(a->got) || len != rec_len(a->got) ||
        !payload_ok(d, scn, len)) {
      a->rc = -1;
      snprintf(a->err, sizeof(a->err), "got scn %" PRIu64 " want %" PRIu64, scn,
               rec_scn(a->got));
      break;
    }
    a->got++;
  }
  relay_store_reader_close(r);
  return NULL;
}

START_TEST(reader_on_another_thread) {
  relay_store_opts_t o = opts(dir, 16384, 1024, HD_FSYNC_NONE);
  relay_store_t *s = open_ok(&o);
  reader_arg_t a[2] = {{.s = s}, {.s = s}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, reader_thread, &a[i]), 0);
  append_range(s, 0, THREAD_RECORDS);
  ck_assert_int_eq(relay_store_sync(s), 0); /* from any thread */
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_msg(a[i].rc == 0, "reader %d: %d %s", i, a[i].rc, a[i].err);
    ck_assert_uint_eq(a[i].got, THREAD_RECORDS);
  }
  relay_store_close(s);
}
END_TEST

/* With retention deleting behind it, a slow reader either sees every record
 * in order or stops with TOO_OLD: never a gap. */
START_TEST(reader_thread_with_retention) {
  relay_store_opts_t o = opts(dir, 8192, 1024, HD_FSYNC_NONE);
  o.retention_bytes = 4 * 8192;
  relay_store_t *s = open_ok(&o);
  reader_arg_t a = {.s = s};
  pthread_t t;
  log_begin(); /* a TOO_OLD is logged */
  ck_assert_int_eq(pthread_create(&t, NULL, reader_thread, &a), 0);
  for (uint64_t k = 0; k < THREAD_RECORDS; k += 100) {
    append_range(s, k, k + 100);
    ck_assert_int_ge(relay_store_retain(s, 0), 0);
  }
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  free(log_end());
  ck_assert_msg(a.rc == 0 || a.rc == RELAY_STORE_ETOO_OLD, "%d %s", a.rc,
                a.err);
  if (a.rc == 0)
    ck_assert_uint_eq(a.got, THREAD_RECORDS);
  relay_store_close(s);
}
END_TEST

/* ---- crash -------------------------------------------------------------- */

START_TEST(kill9_loses_no_acknowledged_window) {
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execl(STORE_CRASH_CHILD, STORE_CRASH_CHILD, dir, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  /* Collect acknowledgements for ~300 ms, then SIGKILL mid-append. */
  static char out[1 << 22];
  size_t n = 0;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >=
        300)
      break;
    ssize_t r = read(p[0], out + n, sizeof(out) - 1 - n);
    if (r > 0)
      n += (size_t)r;
    else if (r == 0)
      break; /* the child died by itself: the checks below say why */
    else
      usleep(1000);
  }
  kill(pid, SIGKILL);
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %d", st);
  fcntl(p[0], F_SETFL, 0);
  ssize_t r;
  while ((r = read(p[0], out + n, sizeof(out) - 1 - n)) > 0)
    n += (size_t)r;
  close(p[0]);
  out[n] = '\0';
  /* A line cut by the kill is not an acknowledgement. */
  char *end = strrchr(out, '\n');
  ck_assert_ptr_nonnull(end);
  end[1] = '\0';

  relay_store_opts_t o = opts(dir, 64 << 10, 4096, HD_FSYNC_WINDOW);
  int devnull = open("/dev/null", O_WRONLY);
  hd_log_set_fd(devnull);
  relay_store_t *s = open_ok(&o);
  hd_log_set_fd(2);
  close(devnull);
  relay_store_reader_t *rd;
  ck_assert_int_eq(relay_store_reader_open(s, 0, &rd), 0);
  uint64_t scn, ts, acked = 0;
  const void *d;
  size_t len;
  /* Every acknowledged SCN is there, in order, once; at most the record
   * being appended when the kill came follows them. */
  for (char *line = out; *line; acked++) {
    uint64_t want = strtoull(line, &line, 10);
    size_t wlen = (size_t)strtoull(line, &line, 10);
    line++;
    int rc = relay_store_reader_next(rd, &scn, &ts, &d, &len);
    REQUIRE(rc == 0, "acked %" PRIu64 " missing: %d", want, rc);
    REQUIRE(scn == want && len == wlen && payload_ok(d, scn, len),
            "acked %" PRIu64 " (%zu bytes): read %" PRIu64 " (%zu bytes)", want,
            wlen, scn, len);
  }
  ck_assert_uint_gt(acked, 10);
  int extra = 0;
  while (relay_store_reader_next(rd, &scn, &ts, &d, &len) == 0)
    extra++;
  ck_assert_int_le(extra, 1);
  ck_assert_uint_eq(relay_store_count(s), acked + (uint64_t)extra);
  relay_store_reader_close(rd);
  uint64_t last = relay_store_last_scn(s);
  ck_assert_int_eq(relay_store_append(s, last, 0, "x", 1),
                   RELAY_STORE_ESCN_ORDER);
  ck_assert_int_eq(relay_store_append(s, last + 1, 0, "x", 1), 0);
  relay_store_close(s);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("store");
  TCase *tc = tcase_create("store");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, round_trip_across_rolls);
  tcase_add_test(tc, big_records);
  tcase_add_test(tc, reader_start_points);
  tcase_add_test(tc, reader_sees_new_appends);
  tcase_add_test(tc, refuses_non_increasing_scn);
  tcase_add_test(tc, reopen_keeps_everything);
  tcase_add_test(tc, reopen_after_process_crash);
  tcase_add_test(tc, torn_tail_every_offset);
  tcase_add_test(tc, flipped_byte_in_last_record);
  tcase_add_test(tc, flipped_byte_in_closed_segment);
  tcase_add_test(tc, damage_before_newest_truncates_suffix);
  tcase_add_test(tc, damage_before_closed_segments_refuses);
  tcase_add_test(tc, missing_segment_refuses);
  tcase_add_test(tc, newest_segment_with_torn_header);
  tcase_add_test(tc, only_segment_with_torn_header_keeps_base);
  tcase_add_test(tc, index_rebuilt_when_missing_or_corrupt);
  tcase_add_test(tc, corrupt_index_found_by_reader);
  tcase_add_test(tc, retention_by_age);
  tcase_add_test(tc, retention_by_bytes);
  tcase_add_test(tc, too_old_boundary_is_exact);
  tcase_add_test(tc, base_scn_of_new_store);
  tcase_add_test(tc, reader_in_deleted_segment);
  tcase_add_test(tc, second_open_is_refused);
  tcase_add_test(tc, bad_options);
  tcase_add_test(tc, sync_and_dirty);
  tcase_add_test(tc, opts_from_conf);
  tcase_add_test(tc, reader_on_another_thread);
  tcase_add_test(tc, reader_thread_with_retention);
  tcase_add_test(tc, kill9_loses_no_acknowledged_window);
  tcase_add_test(tc, chunked_window_round_trip);
  tcase_add_test(tc, chunked_window_cut_by_crash);
  tcase_add_test(tc, chunked_window_torn_every_chunk);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
