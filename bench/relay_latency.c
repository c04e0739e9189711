/*
 * relay_latency - commit-to-output latency of herald-relay + heraldctl tail.
 *
 *   relay_latency --socket SOCK --relay HOST:PORT --heraldctl PATH
 *                 [--count N] [--rate PER_SECOND]
 *   relay_latency --socket SOCK --follow FILE [--count N] [--rate R]
 *
 * Starts `heraldctl tail` on bench.latency (or, with --follow, reads the
 * lines appended to FILE, an agent's file sink, as they are written,
 * woken by inotify), then makes N single-row
 * autocommit INSERTs at the given rate through the MariaDB socket, and
 * notes for each row when it was sent, when the commit was acknowledged
 * and when its JSON line came out of tail. Prints one JSON object with the
 * p50/p99/max of ack->output and send->output in milliseconds.
 * Everything runs on one machine and one clock (CLOCK_MONOTONIC).
 */
#include <errno.h>
#include <getopt.h>
#include <mysql.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t *t_send, *t_ack, *t_out;
static int count = 1000, run_id;
static FILE *tail_out;

static void die(const char *what, MYSQL *m) {
  fprintf(stderr, "relay_latency: %s: %s\n", what, m ? mysql_error(m) : "");
  exit(1);
}

/* Reads tail's lines; each holds "after":{"run":R,"id":I}. */
static void *reader(void *arg) {
  (void)arg;
  char *line = NULL;
  size_t cap = 0;
  int seen = 0;
  while (seen < count && getline(&line, &cap, tail_out) > 0) {
    int64_t t = now_ns();
    const char *a = strstr(line, "\"after\":{\"run\":");
    int r, id;
    if (a == NULL || sscanf(a, "\"after\":{\"run\":%d,\"id\":%d", &r, &id) != 2)
      continue;
    if (r != run_id || id < 0 || id >= count || t_out[id])
      continue;
    t_out[id] = t;
    seen++;
  }
  free(line);
  return NULL;
}

/* Lines appended to the followed file: read to its end, then wait for
 * inotify to say it grew. */
static const char *follow;
static volatile int follow_stop;

static void note_line(const char *line, int64_t t, int *seen) {
  const char *a = strstr(line, "\"after\":{\"run\":");
  int r, id;
  if (a == NULL || sscanf(a, "\"after\":{\"run\":%d,\"id\":%d", &r, &id) != 2)
    return;
  if (r != run_id || id < 0 || id >= count || t_out[id])
    return;
  t_out[id] = t;
  (*seen)++;
}

static void *follower(void *arg) {
  (void)arg;
  int in = inotify_init1(IN_NONBLOCK);
  int fd = -1;
  while (fd < 0 && !follow_stop) {
    fd = open(follow, O_RDONLY);
    if (fd < 0)
      usleep(10000);
  }
  if (fd < 0)
    return NULL;
  lseek(fd, 0, SEEK_END);
  inotify_add_watch(in, follow, IN_MODIFY);
  static char buf[1 << 16];
  size_t have = 0;
  int seen = 0;
  while (seen < count && !follow_stop) {
    ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
    if (n > 0) {
      int64_t t = now_ns();
      have += (size_t)n;
      buf[have] = '\0';
      char *p = buf, *nl;
      while ((nl = strchr(p, '\n')) != NULL) {
        *nl = '\0';
        note_line(p, t, &seen);
        p = nl + 1;
      }
      have = (size_t)(buf + have - p);
      memmove(buf, p, have);
      continue;
    }
    struct pollfd pf = {in, POLLIN, 0};
    if (poll(&pf, 1, 20) > 0) {
      char ev[4096];
      while (read(in, ev, sizeof(ev)) > 0) {
      }
    }
  }
  close(fd);
  close(in);
  return NULL;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(int64_t *v, int n, double p) {
  int i = (int)(p * (n - 1) + 0.5);
  return (double)v[i] / 1e6;
}

int main(int argc, char **argv) {
  const char *sock = NULL, *relay = NULL, *ctl = NULL;
  double rate = 1000;
  static const struct option opts[] = {
      {"socket", 1, NULL, 's'},    {"relay", 1, NULL, 'r'},
      {"heraldctl", 1, NULL, 'c'}, {"count", 1, NULL, 'n'},
      {"rate", 1, NULL, 'R'},      {"follow", 1, NULL, 'f'},
      {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      sock = optarg;
      break;
    case 'r':
      relay = optarg;
      break;
    case 'c':
      ctl = optarg;
      break;
    case 'n':
      count = atoi(optarg);
      break;
    case 'R':
      rate = atof(optarg);
      break;
    case 'f':
      follow = optarg;
      break;
    default:
      fprintf(stderr, "usage: relay_latency --socket S --relay H:P "
                      "--heraldctl PATH [--count N] [--rate R]\n");
      return 2;
    }
  }
  if (!sock || (!follow && (!relay || !ctl)) || count <= 0 || rate <= 0) {
    fprintf(stderr, "relay_latency: --socket, --relay and --heraldctl are "
                    "required\n");
    return 2;
  }
  MYSQL *m = mysql_init(NULL);
  if (!mysql_real_connect(m, NULL, "root", NULL, NULL, 0, sock, 0))
    die("connect", m);
  if (mysql_query(m, "CREATE DATABASE IF NOT EXISTS bench") ||
      mysql_query(m, "CREATE TABLE IF NOT EXISTS bench.latency (run INT NOT "
                     "NULL, id INT NOT NULL, PRIMARY KEY (run, id))") ||
      mysql_query(m, "SELECT COALESCE(MAX(run), 0) + 1 FROM bench.latency"))
    die("setup", m);
  MYSQL_RES *res = mysql_store_result(m);
  run_id = atoi(mysql_fetch_row(res)[0]);
  mysql_free_result(res);

  int pfd[2];
  if (pipe(pfd) != 0)
    return 1;
  char maxs[32];
  snprintf(maxs, sizeof(maxs), "%d", count);
  pid_t pid = follow ? -1 : fork();
  if (pid == 0) {
    dup2(pfd[1], 1);
    close(pfd[0]);
    close(pfd[1]);
    execl(ctl, ctl, "tail", "--relay", relay, "--from", "latest", "--tables",
          "bench.latency", "--max", maxs, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  tail_out = fdopen(pfd[0], "r");
  t_send = calloc((size_t)count, sizeof(int64_t));
  t_ack = calloc((size_t)count, sizeof(int64_t));
  t_out = calloc((size_t)count, sizeof(int64_t));
  pthread_t thr;
  pthread_create(&thr, NULL, follow ? follower : reader, NULL);
  usleep(500000); /* let tail subscribe */

  int64_t gap = (int64_t)(1e9 / rate), start = now_ns();
  for (int i = 0; i < count; i++) {
    /* Sleep to the slot: a spinning driver would take a core from the
     * servers it measures. */
    int64_t slot = start + (int64_t)i * gap, wait = slot - now_ns();
    if (wait > 0) {
      struct timespec ts = {(time_t)(wait / 1000000000),
                            (long)(wait % 1000000000)};
      nanosleep(&ts, NULL);
    }
    char q[128];
    snprintf(q, sizeof(q), "INSERT INTO bench.latency VALUES (%d, %d)", run_id,
             i);
    t_send[i] = now_ns();
    if (mysql_query(m, q))
      die("insert", m);
    t_ack[i] = now_ns();
  }
  int64_t sent_s = now_ns() - start;
  /* Bounded wait for the last lines. */
  for (int k = 0; k < 100; k++) {
    int done = 1;
    for (int i = 0; i < count && done; i++)
      done = t_out[i] != 0;
    if (done)
      break;
    usleep(100000);
  }
  follow_stop = 1;
  if (pid > 0) {
    kill(pid, SIGTERM);
    pthread_cancel(thr);
  }
  pthread_join(thr, NULL);
  if (pid > 0)
    waitpid(pid, NULL, 0);
  int n = 0;
  int64_t *fa = calloc((size_t)count, sizeof(int64_t));
  int64_t *fs = calloc((size_t)count, sizeof(int64_t));
  for (int i = 0; i < count; i++) {
    if (!t_out[i])
      continue;
    fa[n] = t_out[i] - t_ack[i];
    fs[n] = t_out[i] - t_send[i];
    n++;
  }
  if (n == 0) {
    fprintf(stderr, "relay_latency: no row came out of tail\n");
    return 1;
  }
  qsort(fa, (size_t)n, sizeof(int64_t), cmp64);
  qsort(fs, (size_t)n, sizeof(int64_t), cmp64);
  printf("{\"peer\":\"%s\",\"sent\":%d,\"seen\":%d,\"rate\":%.0f,"
         "\"achieved_rate\":%.0f,"
         "\"ack_to_output_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
         "\"send_to_output_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
         follow ? "herald-agent" : "herald", count, n, rate,
         count / ((double)sent_s / 1e9), pct(fa, n, 0.5), pct(fa, n, 0.99),
         (double)fa[n - 1] / 1e6, pct(fs, n, 0.5), pct(fs, n, 0.99),
         (double)fs[n - 1] / 1e6);
  mysql_close(m);
  return n == count ? 0 : 1;
}
