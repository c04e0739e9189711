/* Unit tests of the agent's sinks (consumer-agent/sink.h): the generic
 * contract (order, broken handles, partitions), the file sink's paths,
 * appends and shared files, stdout under threads, and the command sink
 * with real commands; and the retry backoff. Every wait is bounded. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_retry.h"
#include "hd_check.h"
#include "hd_tmpdir.h"
#include "hd_err.h"
#include "hd_log.h"
#include "sink.h"

#define N_PARTS 8

static char dir[256];

static void setup(void) {
  hd_tmpdir_make(dir, sizeof(dir), "sinks");
  hd_log_level = HD_LL_OFF;
}

static void teardown(void) {
  hd_tmpdir_remove(dir);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A conf of one sink type; path and command are formats of dir. */
static char conf_path[512], conf_cmd[1024];
static hd_agent_conf_t conf_of(int type, const char *path_fmt,
                               const char *cmd_fmt) {
  hd_agent_conf_t c;
  memset(&c, 0, sizeof(c));
  c.agent.id = "a1";
  c.agent.partitions = N_PARTS;
  c.sink.type = type;
  c.sink.retry_max_ms = 400;
  if (path_fmt) {
    snprintf(conf_path, sizeof(conf_path), path_fmt, dir);
    c.sink.path = conf_path;
  }
  if (cmd_fmt) {
    snprintf(conf_cmd, sizeof(conf_cmd), cmd_fmt, dir, dir);
    c.sink.command = conf_cmd;
  }
  return c;
}

static sink_t *make(const hd_agent_conf_t *c) {
  sink_t *s = NULL;
  char err[512];
  int rc = sink_create(c, &s, err, sizeof(err));
  ck_assert_msg(rc == 0, "sink_create: %s", err);
  return s;
}

static sink_part_t *open_part(sink_t *s, uint32_t p) {
  sink_part_t *part = NULL;
  uint64_t pos = 99;
  char err[512];
  int rc = sink_open(s, p, 1, &part, &pos, err, sizeof(err));
  ck_assert_msg(rc == 0, "sink_open %u: %s", p, err);
  ck_assert_uint_eq(pos, 0);
  return part;
}

static sink_window_t win(uint64_t scn, uint32_t chunk, int last,
                         const char *json) {
  sink_window_t w;
  memset(&w, 0, sizeof(w));
  w.scn = scn;
  w.ts_ms = 1717000000000ull + scn;
  w.chunk = chunk;
  w.last = last;
  w.json = json;
  w.json_len = strlen(json);
  w.rows = 1;
  return w;
}

static void put(sink_part_t *part, uint64_t scn, const char *json) {
  sink_window_t w = win(scn, 0, 1, json);
  char err[512];
  int rc = sink_write(part, &w, err, sizeof(err));
  ck_assert_msg(rc == 0, "sink_write: %s", err);
}

static void flush_ok(sink_part_t *part) {
  char err[512];
  int rc = sink_flush(part, err, sizeof(err));
  ck_assert_msg(rc == 0, "sink_flush: %s", err);
}

static void close_ok(sink_part_t *part) {
  char err[512];
  int rc = sink_close(part, err, sizeof(err));
  ck_assert_msg(rc == 0, "sink_close: %s", err);
}

/* The file's bytes (NUL-terminated; "" when missing), read anew. */
static char *slurp(const char *path) {
  static char buf[1 << 16];
  size_t n = 0;
  int fd = open(path, O_RDONLY);
  buf[0] = '\0';
  if (fd < 0)
    return buf;
  ssize_t r;
  while (n < sizeof(buf) - 1 &&
         (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
    n += (size_t)r;
  close(fd);
  buf[n] = '\0';
  return buf;
}

static char *in_dir(const char *name) {
  static char p[512];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  return p;
}

/* No child left unreaped by the sink. */
static void assert_no_children(void) {
  errno = 0;
  ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
  ck_assert_int_eq(errno, ECHILD);
}

/* ------------------------------------------------------------- retry */

START_TEST(retry_doubles_with_jitter) {
  agent_retry_t r;
  agent_retry_init(&r, 1000, 1);
  const uint64_t steps[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
      uint64_t w = agent_retry_next(&r);
      ck_assert_msg(w >= steps[i] / 2 && w <= steps[i],
                    "wait %zu: %" PRIu64 " not in [%" PRIu64 ", %" PRIu64 "]",
                    i, w, steps[i] / 2, steps[i]);
    }
    ck_assert_uint_eq(r.attempts, 7);
    agent_retry_reset(&r);
    ck_assert_uint_eq(r.attempts, 0);
  }
  /* A ceiling below the first step is the only step. */
  agent_retry_init(&r, 30, 0);
  for (int i = 0; i < 5; i++) {
    uint64_t w = agent_retry_next(&r);
    ck_assert(w >= 15 && w <= 30);
  }
}
END_TEST

START_TEST(retry_jitter_differs_by_seed) {
  agent_retry_t a, b;
  agent_retry_init(&a, 30000, 0);
  agent_retry_init(&b, 30000, 1);
  int differ = 0, spread = 0;
  uint64_t first = 0;
  for (int i = 0; i < 20; i++) {
    uint64_t wa = agent_retry_next(&a), wb = agent_retry_next(&b);
    differ += wa != wb;
    agent_retry_reset(&a);
    agent_retry_reset(&b);
    if (i == 0)
      first = wa;
    spread += wa != first;
  }
  ck_assert_int_gt(differ, 10);
  ck_assert_int_gt(spread, 10); /* not the same wait every time */
}
END_TEST

/* ------------------------------------------------------ create, generic */

START_TEST(create_refuses_bad_config) {
  char err[512];
  sink_t *s = (sink_t *)1;
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, NULL, NULL);
  ck_assert_int_eq(sink_create(&c, &s, err, sizeof(err)), -EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_str_eq(err, "file sink: sink.path is not set");

  c = conf_of(HD_SINK_FILE, "%s/{agent}-{part}.jsonl", NULL);
  ck_assert_int_eq(sink_create(&c, &s, err, sizeof(err)), -EINVAL);
  ck_assert_msg(strstr(err, "unknown placeholder at '{part}.jsonl'") &&
                    strstr(err, "{agent}, {partition}"),
                "%s", err);

  c = conf_of(HD_SINK_COMMAND, NULL, NULL);
  ck_assert_int_eq(sink_create(&c, &s, err, sizeof(err)), -EINVAL);
  ck_assert_str_eq(err, "command sink: sink.command is not set");

  c = conf_of(99, NULL, NULL);
  ck_assert_int_eq(sink_create(&c, &s, err, sizeof(err)), -EINVAL);
  ck_assert_str_eq(err, "sink.type 99: no such sink");
  ck_assert_ptr_null(sink_ops_for(99));
  ck_assert_str_eq(sink_ops_for(HD_SINK_COMMAND)->name, "command");
}
END_TEST

START_TEST(partitions_open_close_reopen) {
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/{partition}.jsonl", NULL);
  sink_t *s = make(&c);
  char err[512];
  sink_part_t *p3 = open_part(s, 3), *again = NULL;
  uint64_t pos;
  ck_assert_int_eq(sink_open(s, 3, 1, &again, &pos, err, sizeof(err)), -EBUSY);
  ck_assert_str_eq(err, "file sink: partition 3 is open already");
  ck_assert_int_eq(sink_open(s, N_PARTS, 1, &again, &pos, err, sizeof(err)),
                   -EINVAL);
  ck_assert_str_eq(err, "file sink: partition 8 out of range "
                        "(agent.partitions is 8)");
  put(p3, 100, "{\"a\":1}\n");
  flush_ok(p3);
  close_ok(p3);
  p3 = open_part(s, 3);
  /* A new handle starts a new stream: the order check begins afresh. */
  put(p3, 100, "{\"a\":1}\n");
  close_ok(p3);
  ck_assert_str_eq(slurp(in_dir("3.jsonl")), "{\"a\":1}\n{\"a\":1}\n");
  /* Left open: destroy closes it. */
  sink_part_t *p5 = open_part(s, 5);
  put(p5, 7, "x\n");
  sink_destroy(s);
  ck_assert_str_eq(slurp(in_dir("5.jsonl")), "x\n");
}
END_TEST

START_TEST(order_is_checked) {
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/o.jsonl", NULL);
  sink_t *s = make(&c);
  sink_part_t *p = open_part(s, 0);
  char err[512];
  sink_window_t w = win(10, 0, 0, "10.0\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), 0);
  w = win(10, 2, 1, "10.2\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), HD_ESINK_ORDER);
  ck_assert_str_eq(err, "file sink: partition 0: got window 10 chunk 2, "
                        "expected chunk 1 of window 10");
  w = win(11, 0, 1, "11\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), HD_ESINK_ORDER);
  /* Refused windows do not break the handle. */
  w = win(10, 1, 1, "10.1\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), 0);
  w = win(10, 0, 1, "10 again\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), HD_ESINK_ORDER);
  ck_assert_str_eq(err, "file sink: partition 0: window 10 after window 10: "
                        "SCNs must increase");
  w = win(5, 0, 1, "5\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), HD_ESINK_ORDER);
  w = win(20, 1, 1, "20.1\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), HD_ESINK_ORDER);
  ck_assert_str_eq(err, "file sink: partition 0: window 20 begins with "
                        "chunk 1, expected chunk 0");
  w = win(20, 0, 1, "");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), 0); /* 0 bytes */
  put(p, 21, "21\n");
  close_ok(p);
  sink_destroy(s);
  ck_assert_str_eq(slurp(in_dir("o.jsonl")), "10.0\n10.1\n21\n");
}
END_TEST

/* ---------------------------------------------------------- file sink */

START_TEST(file_paths_expanded) {
  hd_agent_conf_t c =
      conf_of(HD_SINK_FILE, "%s/{agent}-{partition}-{agent}.jsonl", NULL);
  sink_t *s = make(&c);
  sink_part_t *p0 = open_part(s, 0), *p7 = open_part(s, 7);
  /* Created at open, empty. */
  struct stat st;
  ck_assert_int_eq(stat(in_dir("a1-0-a1.jsonl"), &st), 0);
  ck_assert_int_eq(st.st_size, 0);
  put(p0, 1, "{\"p\":0,\"w\":1}\n");
  put(p7, 1, "{\"p\":7,\"w\":1}\n{\"p\":7,\"w\":1,\"n\":2}\n");
  put(p0, 2, "{\"p\":0,\"w\":2}\n");
  flush_ok(p0);
  flush_ok(p7);
  /* After the flush the bytes are in the files, read through another
   * descriptor. */
  ck_assert_str_eq(slurp(in_dir("a1-0-a1.jsonl")),
                   "{\"p\":0,\"w\":1}\n{\"p\":0,\"w\":2}\n");
  ck_assert_str_eq(slurp(in_dir("a1-7-a1.jsonl")),
                   "{\"p\":7,\"w\":1}\n{\"p\":7,\"w\":1,\"n\":2}\n");
  close_ok(p0);
  close_ok(p7);
  sink_destroy(s);
}
END_TEST

START_TEST(file_directory_must_exist) {
  char err[512], want[600];
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/nope/{partition}.jsonl", NULL);
  sink_t *s = make(&c);
  sink_part_t *p = NULL;
  uint64_t pos;
  ck_assert_int_eq(sink_open(s, 2, 1, &p, &pos, err, sizeof(err)), -ENOENT);
  snprintf(want, sizeof(want),
           "file sink: partition 2: directory '%s/nope' of '%s/nope/2.jsonl': "
           "No such file or directory",
           dir, dir);
  ck_assert_str_eq(err, want);
  sink_destroy(s);

  ck_assert_int_eq(close(open(in_dir("plain"), O_CREAT | O_WRONLY, 0644)), 0);
  c = conf_of(HD_SINK_FILE, "%s/plain/x.jsonl", NULL);
  s = make(&c);
  ck_assert_int_eq(sink_open(s, 0, 1, &p, &pos, err, sizeof(err)), -ENOTDIR);
  ck_assert_msg(strstr(err, "/plain', the directory of '") &&
                    strstr(err, "is not a directory"),
                "%s", err);
  sink_destroy(s);
}
END_TEST

START_TEST(file_reopen_appends) {
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/r-{partition}.jsonl", NULL);
  sink_t *s = make(&c);
  sink_part_t *p = open_part(s, 1);
  put(p, 1, "w1\n");
  flush_ok(p); /* the checkpoint would cover w1 */
  put(p, 2, "w2\n");
  close_ok(p); /* a failure: w2 not checkpointed */
  p = open_part(s, 1);
  put(p, 2, "w2\n"); /* the replay after the checkpoint */
  put(p, 3, "w3\n");
  flush_ok(p);
  close_ok(p);
  sink_destroy(s);
  /* A new sink (an agent restart) appends too. */
  s = make(&c);
  p = open_part(s, 1);
  put(p, 4, "w4\n");
  close_ok(p);
  sink_destroy(s);
  ck_assert_str_eq(slurp(in_dir("r-1.jsonl")), "w1\nw2\nw2\nw3\nw4\n");
}
END_TEST

START_TEST(file_write_failure_breaks_handle) {
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, NULL, NULL);
  c.sink.path = "/dev/full";
  sink_t *s = make(&c);
  sink_part_t *p = open_part(s, 0);
  char err[512];
  sink_window_t w = win(1, 0, 1, "line\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), -ENOSPC);
  ck_assert_str_eq(err, "file sink: partition 0: write '/dev/full': No space "
                        "left on device");
  w = win(2, 0, 1, "next\n");
  ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), HD_ESINK_BROKEN);
  ck_assert_str_eq(err, "file sink: partition 0 failed earlier (close and "
                        "reopen it): file sink: partition 0: write "
                        "'/dev/full': No space left on device");
  ck_assert_int_eq(sink_flush(p, err, sizeof(err)), HD_ESINK_BROKEN);
  close_ok(p);
  p = open_part(s, 0); /* the retry opens it again */
  flush_ok(p);         /* nothing to sync on a device */
  close_ok(p);
  sink_destroy(s);
}
END_TEST

START_TEST(file_torn_write_truncated) {
  /* A file size limit makes a chunk's write stop halfway (then EFBIG),
   * as a full disk would: the file goes back to whole lines. */
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/t.jsonl", NULL);
  sink_t *s = make(&c);
  sink_part_t *p = open_part(s, 0);
  put(p, 1, "{\"w\":1,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n");
  flush_ok(p);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl, saved;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rl = saved;
  rl.rlim_cur = 100; /* the soft limit only, raised again below */
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
  char err[512], big[200];
  memset(big, 'y', sizeof(big));
  big[sizeof(big) - 1] = '\n';
  sink_window_t w = win(2, 0, 1, "");
  w.json = big;
  w.json_len = sizeof(big);
  int rc = sink_write(p, &w, err, sizeof(err));
  /* Check reports through files of its own: no limit for them. */
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ck_assert_int_eq(rc, -EFBIG);
  ck_assert_msg(strstr(err, "t.jsonl': File too large"), "%s", err);
  ck_assert_str_eq(
      slurp(in_dir("t.jsonl")),
      "{\"w\":1,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n");
  close_ok(p);
  sink_destroy(s);
}
END_TEST

/* Several threads, one partition each, writing windows of two chunks of
 * LINES lines each into one destination; check() then proves that no
 * chunk was interleaved with another and each partition's order held. */
#define WRITERS 4
#define WINDOWS 150
#define LINES 60

typedef struct {
  sink_t *s;
  uint32_t p;
} writer_t;

static void *writer_main(void *arg) {
  writer_t *wr = arg;
  sink_part_t *part = open_part(wr->s, wr->p);
  char buf[LINES * 160];
  for (uint32_t w = 1; w <= WINDOWS; w++)
    for (uint32_t ch = 0; ch < 2; ch++) {
      size_t n = 0;
      for (uint32_t l = 0; l < LINES; l++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                              "{\"p\":%u,\"w\":%u,\"c\":%u,\"l\":%u,\"pad\":"
                              "\"%.*s\"}\n",
                              wr->p, w, ch, l, (int)((w * 7 + l * 13) % 90),
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
      sink_window_t sw = win(w, ch, ch == 1, buf);
      sw.json_len = n;
      char err[512];
      int rc = sink_write(part, &sw, err, sizeof(err));
      ck_assert_msg(rc == 0, "write: %s", err);
      if (w % 25 == 0 && ch == 1)
        flush_ok(part);
    }
  flush_ok(part);
  close_ok(part);
  return NULL;
}

static void run_writers(sink_t *s) {
  pthread_t t[WRITERS];
  writer_t wr[WRITERS];
  for (uint32_t i = 0; i < WRITERS; i++) {
    wr[i].s = s;
    wr[i].p = i * 2; /* 0, 2, 4, 6 */
    ck_assert_int_eq(pthread_create(&t[i], NULL, writer_main, &wr[i]), 0);
  }
  for (uint32_t i = 0; i < WRITERS; i++)
    pthread_join(t[i], NULL);
}

static void check_unmixed(const char *path) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char line[1024];
  unsigned next_w[N_PARTS], next_c[N_PARTS];
  for (int i = 0; i < N_PARTS; i++)
    next_w[i] = 1, next_c[i] = 0;
  unsigned cur_p = 0, cur_l = LINES, total = 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned p, w, c, l;
    ck_assert_msg(sscanf(line, "{\"p\":%u,\"w\":%u,\"c\":%u,\"l\":%u,", &p, &w,
                         &c, &l) == 4 &&
                      line[strlen(line) - 1] == '\n',
                  "torn line %u: %s", total, line);
    ck_assert_uint_lt(p, N_PARTS);
    if (cur_l < LINES) {
      /* Inside a chunk: the next line of the same chunk, nobody else's. */
      ck_assert_msg(p == cur_p && l == cur_l, "line %u: chunk interleaved: %s",
                    total, line);
    } else {
      /* A chunk begins: the partition's next one. */
      ck_assert_msg(l == 0 && w == next_w[p] && c == next_c[p],
                    "line %u: out of order: %s", total, line);
      cur_p = p;
      cur_l = 0;
      next_c[p] = c ^ 1;
      next_w[p] = c ? w + 1 : w;
    }
    cur_l++;
    total++;
  }
  fclose(f);
  ck_assert_uint_eq(total, WRITERS * WINDOWS * 2 * LINES);
}

START_TEST(file_shared_by_partitions) {
  /* No {partition}: every partition appends to the one file. */
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/{agent}.jsonl", NULL);
  sink_t *s = make(&c);
  run_writers(s);
  sink_destroy(s);
  check_unmixed(in_dir("a1.jsonl"));
}
END_TEST

START_TEST(file_two_spellings_one_file) {
  /* "{partition}/../x" names one file for every partition: shared by
   * inode, not by the text of the path. */
  for (int i = 0; i < N_PARTS; i++) {
    char sub[32];
    snprintf(sub, sizeof(sub), "%d", i);
    ck_assert_int_eq(mkdir(in_dir(sub), 0755), 0);
  }
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/{partition}/../x.jsonl", NULL);
  sink_t *s = make(&c);
  run_writers(s);
  sink_destroy(s);
  check_unmixed(in_dir("x.jsonl"));
}
END_TEST

/* Copies a pipe's read end into a file until EOF. */
typedef struct {
  int from, to;
} copier_t;

static void *copier_main(void *arg) {
  copier_t *cp = arg;
  char buf[65536];
  ssize_t n;
  while ((n = read(cp->from, buf, sizeof(buf))) > 0)
    ck_assert_int_eq(write(cp->to, buf, (size_t)n), n);
  return NULL;
}

/* The stdout sink's writers with fd 1 a regular file (flush fsyncs it) or
 * a pipe: there, writes above PIPE_BUF are not atomic, and only the lock
 * keeps chunks apart. */
static void stdout_run(int through_pipe) {
  int saved = dup(STDOUT_FILENO);
  int fd = open(in_dir("stdout.jsonl"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(fd, 0);
  int pfd[2] = {-1, -1};
  pthread_t t;
  copier_t cp = {-1, fd};
  if (through_pipe) {
    ck_assert_int_eq(pipe(pfd), 0);
    cp.from = pfd[0];
    ck_assert_int_eq(pthread_create(&t, NULL, copier_main, &cp), 0);
    ck_assert_int_eq(dup2(pfd[1], STDOUT_FILENO), STDOUT_FILENO);
    close(pfd[1]);
  } else {
    ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
  }
  hd_agent_conf_t c = conf_of(HD_SINK_STDOUT, NULL, NULL);
  sink_t *s = make(&c);
  run_writers(s);
  sink_destroy(s);
  dup2(saved, STDOUT_FILENO); /* the pipe's last write end closes */
  close(saved);
  if (through_pipe) {
    pthread_join(t, NULL);
    close(pfd[0]);
  }
  close(fd);
  check_unmixed(in_dir("stdout.jsonl"));
}

START_TEST(stdout_file_lines_never_interleave) {
  stdout_run(0);
}
END_TEST

START_TEST(stdout_pipe_lines_never_interleave) {
  stdout_run(1);
}
END_TEST

static void *fifo_copier_main(void *arg) {
  copier_t *cp = arg;
  cp->from = open(in_dir("fifo"), O_RDONLY); /* waits for the sink */
  ck_assert_int_ge(cp->from, 0);
  return copier_main(cp);
}

START_TEST(file_fifo_shared_by_partitions) {
  /* A FIFO as sink.path: writes above PIPE_BUF are not atomic there, so
   * this fails without the file's lock. */
  ck_assert_int_eq(mkfifo(in_dir("fifo"), 0644), 0);
  int fd = open(in_dir("copy.jsonl"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  copier_t cp = {-1, fd};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, fifo_copier_main, &cp), 0);
  hd_agent_conf_t c = conf_of(HD_SINK_FILE, "%s/fifo", NULL);
  sink_t *s = make(&c);
  run_writers(s);
  sink_destroy(s);
  pthread_join(t, NULL);
  close(cp.from);
  close(fd);
  check_unmixed(in_dir("copy.jsonl"));
}
END_TEST

/* ------------------------------------------------------- command sink */

/* Writes one window after another, flushing each, until a call fails or
 * 10 s pass; returns the failure. */
static int feed_until_failure(sink_part_t *p, uint64_t *scn, char *err,
                              size_t errlen) {
  uint64_t deadline = now_ms() + 10000;
  while (now_ms() < deadline) {
    char line[64];
    snprintf(line, sizeof(line), "{\"scn\":%" PRIu64 "}\n", *scn);
    sink_window_t w = win((*scn)++, 0, 1, line);
    int rc = sink_write(p, &w, err, errlen);
    if (rc == 0)
      rc = sink_flush(p, err, errlen);
    if (rc < 0)
      return rc;
    usleep(2000);
  }
  ck_abort_msg("the command did not fail within 10 s");
  return 0;
}

START_TEST(command_cat_per_partition) {
  hd_agent_conf_t c = conf_of(
      HD_SINK_COMMAND, NULL,
      "echo \"$HERALD_AGENT $HERALD_PARTITION\" > %s/env-$HERALD_PARTITION; "
      "exec cat > %s/out-$HERALD_PARTITION");
  sink_t *s = make(&c);
  sink_part_t *p1 = open_part(s, 1), *p6 = open_part(s, 6);
  put(p1, 10, "{\"p\":1,\"n\":1}\n");
  put(p6, 10, "{\"p\":6,\"n\":1}\n");
  sink_window_t w = win(11, 0, 0, "{\"p\":1,\"n\":2}\n");
  char err[512];
  ck_assert_int_eq(sink_write(p1, &w, err, sizeof(err)), 0);
  w = win(11, 1, 1, "{\"p\":1,\"n\":3}\n");
  ck_assert_int_eq(sink_write(p1, &w, err, sizeof(err)), 0);
  flush_ok(p1); /* returns once cat has read it all */
  flush_ok(p6);
  close_ok(p1); /* EOF: cat exits 0 */
  close_ok(p6);
  sink_destroy(s);
  ck_assert_str_eq(slurp(in_dir("out-1")),
                   "{\"p\":1,\"n\":1}\n{\"p\":1,\"n\":2}\n{\"p\":1,\"n\":3}\n");
  ck_assert_str_eq(slurp(in_dir("out-6")), "{\"p\":6,\"n\":1}\n");
  ck_assert_str_eq(slurp(in_dir("env-1")), "a1 1\n");
  ck_assert_str_eq(slurp(in_dir("env-6")), "a1 6\n");
  assert_no_children();
}
END_TEST

START_TEST(command_exit_is_an_error_and_restarts_after_backoff) {
  hd_agent_conf_t c =
      conf_of(HD_SINK_COMMAND, NULL, "head -n 1 >> %s/out; exit 3");
  sink_t *s = make(&c);
  char err[512], want[600];
  uint64_t scn = 1;
  snprintf(want, sizeof(want),
           "command sink: partition 4: command 'head -n 1 >> %s/out; exit 3' "
           "exited with status 3; it restarts when the partition reopens, in ",
           dir);
  /* Steps of 100 then 200 ms (sink.retry_max 400): each restart waits at
   * least half its step. */
  const uint64_t min_wait[] = {50, 100, 200};
  for (int run = 0; run < 3; run++) {
    uint64_t t0 = now_ms();
    sink_part_t *p = open_part(s, 4);
    if (run > 0)
      ck_assert_msg(now_ms() - t0 >= min_wait[run - 1],
                    "restart %d after %" PRIu64 " ms", run, now_ms() - t0);
    ck_assert_int_eq(feed_until_failure(p, &scn, err, sizeof(err)),
                     HD_ESINK_EXITED);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    /* The handle is broken until closed. */
    sink_window_t w = win(scn++, 0, 1, "x\n");
    ck_assert_int_eq(sink_write(p, &w, err, sizeof(err)), HD_ESINK_BROKEN);
    close_ok(p); /* reported already: the close itself is clean */
    assert_no_children();
  }
  sink_destroy(s);
  /* Each run of the command took one line. */
  char *out = slurp(in_dir("out")), *nl;
  int lines = 0;
  for (; (nl = strchr(out, '\n')); out = nl + 1)
    lines++;
  ck_assert_int_eq(lines, 3);
}
END_TEST

START_TEST(command_not_found) {
  hd_agent_conf_t c = conf_of(HD_SINK_COMMAND, NULL, NULL);
  c.sink.command = "/nonexistent/herald-no-such-command --flag";
  sink_t *s = make(&c);
  sink_part_t *p = open_part(s, 0); /* the shell starts; the command not */
  char err[512];
  uint64_t scn = 1;
  ck_assert_int_eq(feed_until_failure(p, &scn, err, sizeof(err)),
                   HD_ESINK_EXITED);
  ck_assert_msg(strstr(err, "command '/nonexistent/herald-no-such-command "
                            "--flag' exited with status 127 (command not "
                            "found)"),
                "%s", err);
  close_ok(p);
  sink_destroy(s);
  assert_no_children();
}
END_TEST

START_TEST(command_stopped_when_it_ignores_eof) {
  hd_agent_conf_t c = conf_of(HD_SINK_COMMAND, NULL, NULL);
  char err[512];
  /* sleep reads nothing and ignores EOF: SIGTERM after the timeout. */
  c.sink.command = "exec sleep 30";
  sink_t *s = make(&c);
  sink_command_set_stop_timeout(s, 200);
  sink_part_t *p = open_part(s, 0);
  put(p, 1, "x\n");
  uint64_t t0 = now_ms();
  ck_assert_int_eq(sink_close(p, err, sizeof(err)), HD_ESINK_EXITED);
  ck_assert_str_eq(err, "command sink: partition 0: command 'exec sleep 30' "
                        "was killed by signal 15 (SIGTERM) at close");
  ck_assert_uint_lt(now_ms() - t0, 3000);
  assert_no_children();
  sink_destroy(s);

  /* And SIGKILL for one that ignores SIGTERM too. */
  c.sink.command = "trap '' TERM; exec sleep 30";
  s = make(&c);
  sink_command_set_stop_timeout(s, 200);
  p = open_part(s, 0);
  usleep(100000); /* let the shell set its trap */
  t0 = now_ms();
  ck_assert_int_eq(sink_close(p, err, sizeof(err)), HD_ESINK_EXITED);
  ck_assert_msg(strstr(err, "was killed by signal 9 (SIGKILL) at close"), "%s",
                err);
  ck_assert_uint_lt(now_ms() - t0, 3000);
  assert_no_children();
  sink_destroy(s);
}
END_TEST

START_TEST(command_closing_stdin_is_an_error) {
  hd_agent_conf_t c = conf_of(HD_SINK_COMMAND, NULL, NULL);
  c.sink.command = "exec 0<&-; exec sleep 30";
  sink_t *s = make(&c);
  sink_command_set_stop_timeout(s, 200);
  sink_part_t *p = open_part(s, 0);
  char err[512];
  uint64_t scn = 1;
  /* The write gets EPIPE (SIGPIPE would have killed this process). */
  ck_assert_int_eq(feed_until_failure(p, &scn, err, sizeof(err)),
                   HD_ESINK_EXITED);
  ck_assert_msg(strstr(err, "closed its stdin and was killed by signal 15 "
                            "(SIGTERM)"),
                "%s", err);
  close_ok(p);
  sink_destroy(s);
  assert_no_children();
}
END_TEST

START_TEST(command_destroy_stops_open_partitions) {
  hd_agent_conf_t c = conf_of(HD_SINK_COMMAND, NULL, "exec cat > %s/d");
  sink_t *s = make(&c);
  sink_part_t *p = open_part(s, 2);
  put(p, 1, "kept\n");
  flush_ok(p);
  sink_destroy(s); /* the caller forgot to close: EOF, cat exits */
  assert_no_children();
  ck_assert_str_eq(slurp(in_dir("d")), "kept\n");
}
END_TEST

static Suite *sinks_suite(void) {
  Suite *s = suite_create("sinks");
  TCase *tc = tcase_create("retry");
  tcase_add_test(tc, retry_doubles_with_jitter);
  tcase_add_test(tc, retry_jitter_differs_by_seed);
  suite_add_tcase(s, tc);

  tc = tcase_create("generic");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, create_refuses_bad_config);
  tcase_add_test(tc, partitions_open_close_reopen);
  tcase_add_test(tc, order_is_checked);
  suite_add_tcase(s, tc);

  tc = tcase_create("file");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, file_paths_expanded);
  tcase_add_test(tc, file_directory_must_exist);
  tcase_add_test(tc, file_reopen_appends);
  tcase_add_test(tc, file_write_failure_breaks_handle);
  tcase_add_test(tc, file_torn_write_truncated);
  tcase_add_test(tc, file_shared_by_partitions);
  tcase_add_test(tc, file_two_spellings_one_file);
  tcase_add_test(tc, stdout_file_lines_never_interleave);
  tcase_add_test(tc, stdout_pipe_lines_never_interleave);
  tcase_add_test(tc, file_fifo_shared_by_partitions);
  suite_add_tcase(s, tc);

  tc = tcase_create("command");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, command_cat_per_partition);
  tcase_add_test(tc, command_exit_is_an_error_and_restarts_after_backoff);
  tcase_add_test(tc, command_not_found);
  tcase_add_test(tc, command_stopped_when_it_ignores_eof);
  tcase_add_test(tc, command_closing_stdin_is_an_error);
  tcase_add_test(tc, command_destroy_stops_open_partitions);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(sinks_suite)
