/*
 * relay_consumers - aggregate throughput of N consumers of one relay.
 *
 *   relay_consumers --relay HOST:PORT --consumers N --rows R [--stalled K]
 *
 * Opens N connections, each subscribing from the oldest window, and reads
 * until every connection has seen R row changes. A consumer here only
 * counts: it walks each window's protobuf fields to count the row changes
 * and does not render them, so the figure is what the relay serves, not
 * what a JSON printer can print. One thread, poll(2). Prints one JSON
 * object: wall seconds, rows/s over all consumers, MB/s. With --stalled K,
 * K more connections subscribe the same way and never read: what they
 * cost the others is the difference to a run without them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hd_pbwire.h"

typedef struct {
  int fd;
  uint8_t *buf;
  size_t len, cap;
  uint64_t rows;
  int done;
} cons_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Counts field-7 (RowChange) entries in one packed Window. */
static uint64_t count_rows(const uint8_t *p, const uint8_t *end) {
  uint64_t n = 0;
  while (p < end) {
    uint64_t tag, len = 0;
    if (hd_pb_read_varint(&p, end, &tag) < 0)
      return n;
    switch (tag & 7) {
    case 0:
      hd_pb_read_varint(&p, end, &len);
      len = 0;
      break;
    case 1:
      len = 8;
      break;
    case 5:
      len = 4;
      break;
    case 2:
      if (hd_pb_read_varint(&p, end, &len) < 0)
        return n;
      break;
    default:
      return n;
    }
    if ((tag >> 3) == 7)
      n++;
    p += len;
  }
  return n;
}

/* Handles every whole frame in c->buf. */
static void frames(cons_t *c) {
  size_t off = 0;
  while (c->len - off >= 4) {
    const uint8_t *h = c->buf + off;
    uint32_t flen = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                    (uint32_t)h[2] << 8 | h[3];
    if (c->len - off - 4 < flen)
      break;
    const uint8_t *p = h + 4, *end = p + flen;
    uint64_t tag = 0, blen = 0;
    if (hd_pb_read_varint(&p, end, &tag) == 0 && tag == ((2 << 3) | 2) &&
        hd_pb_read_varint(&p, end, &blen) == 0) {
      /* WindowBatch: field 1 windows */
      while (p < end) {
        uint64_t wt = 0, wl = 0;
        if (hd_pb_read_varint(&p, end, &wt) < 0 ||
            hd_pb_read_varint(&p, end, &wl) < 0)
          break;
        c->rows += count_rows(p, p + wl);
        p += wl;
      }
    } else if (tag == ((4 << 3) | 2)) {
      fprintf(stderr, "relay_consumers: the relay sent an error\n");
      exit(1);
    }
    off += 4 + flen;
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
}

int main(int argc, char **argv) {
  const char *relay = NULL;
  int n = 1, stalled = 0;
  uint64_t want = 0;
  static const struct option opts[] = {{"relay", 1, NULL, 'r'},
                                       {"consumers", 1, NULL, 'n'},
                                       {"rows", 1, NULL, 'R'},
                                       {"stalled", 1, NULL, 'S'},
                                       {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (ch == 'r')
      relay = optarg;
    else if (ch == 'n')
      n = atoi(optarg);
    else if (ch == 'R')
      want = strtoull(optarg, NULL, 10);
    else if (ch == 'S')
      stalled = atoi(optarg);
    else
      return 2;
  }
  if (!relay || n <= 0 || want == 0) {
    fprintf(stderr, "usage: relay_consumers --relay HOST:PORT --consumers N "
                    "--rows R\n");
    return 2;
  }
  char host[64];
  int port;
  if (sscanf(relay, "%63[^:]:%d", host, &port) != 2)
    return 2;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &sa.sin_addr);
  /* Subscribe{protocol_version=1, mode=EARLIEST} in a Frame. */
  static const uint8_t sub[] = {0, 0, 0, 6, 0x0a, 4, 0x08, 1, 0x18, 1};
  /* The stalled ones: a small receive buffer, subscribed, never read. */
  for (int i = 0; i < stalled; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, sub, sizeof(sub)) != (ssize_t)sizeof(sub)) {
      fprintf(stderr, "relay_consumers: connect %s: %s\n", relay,
              strerror(errno));
      return 1;
    }
  }
  cons_t *cs = calloc((size_t)n, sizeof(cons_t));
  struct pollfd *pf = calloc((size_t)n, sizeof(struct pollfd));
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cs[i].fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(cs[i].fd, sub, sizeof(sub)) != (ssize_t)sizeof(sub)) {
      fprintf(stderr, "relay_consumers: connect %s: %s\n", relay,
              strerror(errno));
      return 1;
    }
    cs[i].cap = 4u << 20;
    cs[i].buf = malloc(cs[i].cap);
    pf[i].fd = cs[i].fd;
    pf[i].events = POLLIN;
  }
  int left = n;
  uint64_t bytes = 0;
  while (left > 0) {
    if (poll(pf, (nfds_t)n, 30000) <= 0) {
      fprintf(stderr, "relay_consumers: stalled for 30 s\n");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      cons_t *c = &cs[i];
      if (c->done || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (c->cap - c->len < (1u << 20)) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
      }
      ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
      if (r <= 0) {
        fprintf(stderr,
                "relay_consumers: connection %d ended after %llu rows\n", i,
                (unsigned long long)c->rows);
        return 1;
      }
      c->len += (size_t)r;
      bytes += (uint64_t)r;
      frames(c);
      if (c->rows >= want) {
        c->done = 1;
        pf[i].fd = -1;
        close(c->fd);
        left--;
      }
    }
  }
  double secs = now_s() - t0;
  printf("{\"consumers\":%d,\"stalled\":%d,\"rows_each\":%llu,"
         "\"secs\":%.3f,\"rows_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
         n, stalled, (unsigned long long)want, secs, (double)want * n / secs,
         (double)bytes / secs / 1e6);
  return 0;
}
