/*
 * heraldctl tail: subscribe to a relay and print its windows in the JSON
 * change format, the same lines `heraldctl decode` prints for the same
 * binlog (the same renderer, binlog/hb_json.c, makes them).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "hb.h"
#include "hb_json.h"
#include "hb_pb.h"
#include "hb_sql.h"
#include "hd_cli.h"
#include "hd_err.h"
#include "hd_frame.h"
#include "hd_mem.h"
#include "hd_parse.h"

#define PROG "heraldctl tail"

static const char usage[] =
    "Usage: heraldctl tail --relay HOST:PORT [options]\n"
    "\n"
    "Subscribes to a relay and prints each row change as one JSON line\n"
    "(docs/change-format.md), flushed after every window.\n"
    "\n"
    "Options:\n"
    "  --relay HOST:PORT        the relay's consumer address (required)\n"
    "  --from SCN|earliest|latest  where to start (default latest): after\n"
    "                           SCN, at the oldest window the relay holds,\n"
    "                           or with the next window committed\n"
    "  --tables PATTERNS        comma list of db.table patterns ('*')\n"
    "  --partitions N:i,j,...   only partitions i, j, ... of N (hash of the\n"
    "                           primary key)\n"
    "  --partition-fn hash|mod  how rows map to partitions (default hash)\n"
    "  --columns DB.T:c1,c2     project a table to these columns (and its\n"
    "                           key); may be repeated\n"
    "  --ddl                    also print schema changes (with --tables,\n"
    "                           those naming a matching table, or naming\n"
    "                           none and in a matching database)\n"
    "  --max N                  exit 0 after N row changes\n"
    "  --until SCN              exit 0 once the relay has sent everything up\n"
    "                           to SCN (filtered windows count too)\n"
    "  --token-file FILE        the relay's shared token\n"
    "  --timeout SECONDS        exit 1 if no window arrives for this long\n"
    "                           (heartbeats do not count)\n"
    "  --connect-timeout SECONDS  exit 1 if the connection is not made, or\n"
    "                           the relay sends no first frame, within this\n"
    "                           long (default 10; a relay sends a heartbeat\n"
    "                           every relay.heartbeat, 1 s by default)\n"
    "  --schemas                also print each table's schema (an\n"
    "                           \"op\":\"schema\" line) before its first row\n"
    "  --max-frame BYTES        largest frame to accept (default 64MiB,\n"
    "                           at least 64KiB): the relay sends larger\n"
    "                           windows in chunks, and tail's memory stays\n"
    "                           about this size whatever a transaction's\n"
    "                           size\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 after --max changes or at --until; 1 on an error (the\n"
    "relay's message is printed), when the relay closes the connection, or\n"
    "when the peer is not a relay; 2 bad usage.\n";

static char *split_dup(const char *s, char sep, size_t *n, char ***out) {
  char *copy = hd_strdup(s);
  size_t cap = 8;
  *out = hd_malloc(cap * sizeof(char *));
  *n = 0;
  char *p = copy;
  for (;;) {
    char *e = strchr(p, sep);
    if (e)
      *e = '\0';
    if (*n == cap) {
      cap *= 2;
      *out = hd_realloc(*out, cap * sizeof(char *));
    }
    (*out)[(*n)++] = p;
    if (!e)
      break;
    p = e + 1;
  }
  return copy;
}

/* "db.table" with neither part empty, as the relay wants --tables and
 * --columns patterns; checked here so that a typo is a usage error on one
 * line rather than a refusal from the relay after connecting. */
static int valid_table_pattern(const char *s) {
  const char *dot = strchr(s, '.');
  return dot && dot != s && dot[1] && !strchr(dot + 1, '.');
}

/* Monotonic milliseconds, for the deadlines below. */
static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One connect() that gives up at deadline_ms: a peer that drops SYNs
 * would otherwise hold tail for the kernel's two minutes.
 * @returns the connected, blocking socket, or -1 with errno set. */
static int connect_by(const struct addrinfo *a, int64_t deadline_ms) {
  int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
  if (fd < 0)
    return -1;
  if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
    if (errno != EINPROGRESS)
      goto fail;
    struct pollfd p = {fd, POLLOUT, 0};
    int pr;
    do {
      int64_t left = deadline_ms - mono_ms();
      pr = poll(&p, 1, left > 0 ? (int)left : 0);
    } while (pr < 0 && errno == EINTR);
    if (pr == 0)
      errno = ETIMEDOUT;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (pr <= 0)
      goto fail;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
      goto fail;
    if (soerr) {
      errno = soerr;
      goto fail;
    }
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
    goto fail;
  return fd;
fail:;
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

/* @returns a connected socket; -1 (err filled) when no address of hostport
 * accepts the connection within timeout_ms; -2 when hostport is not
 * host:port. */
static int dial(const char *hostport, int64_t timeout_ms, char *err, size_t n) {
  char host[256];
  uint16_t port;
  if (hd_parse_hostport(hostport, host, sizeof(host), &port) < 0) {
    snprintf(err, n, "--relay: '%s' is not host:port", hostport);
    return -2;
  }
  char ps[8];
  snprintf(ps, sizeof(ps), "%u", port);
  struct addrinfo hints = {0}, *res;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, ps, &hints, &res);
  if (rc != 0) {
    snprintf(err, n, "%s: %s", hostport, gai_strerror(rc));
    return -1;
  }
  int64_t deadline = mono_ms() + timeout_ms;
  int fd = -1, e = 0;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = connect_by(a, deadline);
    if (fd < 0)
      e = errno;
  }
  freeaddrinfo(res);
  if (fd < 0)
    snprintf(err, n, "cannot connect to %s: %s", hostport, strerror(e));
  return fd;
}

/* The start of what a peer sent, printable and on one line, to show what
 * answered when it was not a relay. */
static void excerpt(const uint8_t *p, size_t len, char *out, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < len && o + 5 < n; i++) {
    if (p[i] == '\r' || p[i] == '\n')
      break;
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
      out[o++] = (char)p[i];
    else
      o += (size_t)snprintf(out + o, n - o, "\\x%02x", p[i]);
  }
  out[o] = '\0';
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    /* MSG_NOSIGNAL: a peer that hung up is an error to report, not a
     * SIGPIPE that ends tail without a word. */
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* --tables patterns, for selecting schema changes. */
typedef struct {
  char **v;
  size_t n;
} pats_t;

/* With --tables the relay sends only the schema changes that concern the
 * tables (the rule of hb_sql.h); tail applies the same rule, so that what
 * it prints does not depend on the relay's version. */
static int want_ddl(void *ud, const hb_ddl_t *d) {
  const pats_t *p = ud;
  return hb_ddl_wanted(d, p->v, p->n);
}

int ctl_tail(int argc, char **argv) {
  static const struct option opts[] = {
      {"relay", required_argument, NULL, 'r'},
      {"from", required_argument, NULL, 'f'},
      {"tables", required_argument, NULL, 't'},
      {"partitions", required_argument, NULL, 'p'},
      {"partition-fn", required_argument, NULL, 'P'},
      {"columns", required_argument, NULL, 'C'},
      {"ddl", no_argument, NULL, 'd'},
      {"max", required_argument, NULL, 'm'},
      {"token-file", required_argument, NULL, 'k'},
      {"timeout", required_argument, NULL, 'T'},
      {"connect-timeout", required_argument, NULL, 'c'},
      {"until", required_argument, NULL, 'u'},
      {"max-frame", required_argument, NULL, 'F'},
      {"schemas", no_argument, NULL, 'S'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *relay = NULL, *from = "latest", *tables = NULL, *parts = NULL;
  const char *token_file = NULL;
  int ddl = 0, pfn = HERALD__PARTITION_FUNCTION__PART_HASH, c;
  uint64_t max = 0, timeout_s = 0, until = 0, handshake_s = 10;
  uint64_t max_frame = 64ull << 20;
  int schemas = 0;
  char **proj_specs = NULL;
  size_t nproj_specs = 0;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
    switch (c) {
    case 'r':
      relay = optarg;
      break;
    case 'f':
      from = optarg;
      break;
    case 't':
      tables = optarg;
      break;
    case 'p':
      parts = optarg;
      break;
    case 'P':
      if (strcmp(optarg, "hash") == 0)
        pfn = HERALD__PARTITION_FUNCTION__PART_HASH;
      else if (strcmp(optarg, "mod") == 0)
        pfn = HERALD__PARTITION_FUNCTION__PART_MOD;
      else
        return hd_cli_usage(PROG, "--partition-fn: '%s' is not hash or mod",
                            optarg);
      break;
    case 'C':
      proj_specs = hd_realloc(proj_specs, (nproj_specs + 1) * sizeof(char *));
      proj_specs[nproj_specs++] = optarg;
      break;
    case 'd':
      ddl = 1;
      break;
    case 'm':
      if (hd_parse_u64(optarg, &max) < 0 || max == 0) {
        free(proj_specs);
        return hd_cli_usage(PROG, "--max: '%s' is not a positive integer",
                            optarg);
      }
      break;
    case 'k':
      token_file = optarg;
      break;
    case 'T':
      if (hd_parse_u64(optarg, &timeout_s) < 0 || timeout_s == 0) {
        free(proj_specs);
        return hd_cli_usage(PROG, "--timeout: '%s' is not a positive integer",
                            optarg);
      }
      break;
    case 'c':
      if (hd_parse_u64(optarg, &handshake_s) < 0 || handshake_s == 0 ||
          handshake_s > 86400) {
        free(proj_specs);
        return hd_cli_usage(
            PROG,
            "--connect-timeout: '%s' is not a number of seconds (1-86400)",
            optarg);
      }
      break;
    case 'S':
      schemas = 1;
      break;
    case 'F':
      if (hd_parse_size(optarg, &max_frame) < 0 || max_frame < (64u << 10) ||
          max_frame > (1u << 30)) {
        free(proj_specs);
        return hd_cli_usage(PROG,
                            "--max-frame: '%s' is not a size from 64KiB to "
                            "1GiB",
                            optarg);
      }
      break;
    case 'u':
      if (hd_parse_u64(optarg, &until) < 0 || until == 0) {
        free(proj_specs);
        return hd_cli_usage(PROG, "--until: '%s' is not an SCN", optarg);
      }
      break;
    case 'h':
      fputs(usage, stdout);
      free(proj_specs);
      return HD_EXIT_OK;
    default:
      free(proj_specs);
      return hd_cli_bad_option(PROG, c, argv);
    }
  }
  if (optind < argc) {
    free(proj_specs);
    return hd_cli_usage(PROG, "unexpected argument '%s'", argv[optind]);
  }
  if (relay == NULL) {
    free(proj_specs);
    return hd_cli_usage(PROG, "--relay HOST:PORT is required");
  }

  /* The subscription. */
  Herald__Subscribe sub = HERALD__SUBSCRIBE__INIT;
  sub.max_frame_bytes = (uint32_t)max_frame;
  hb_buf_t held = {0}; /* the batch loop's held-back line */
  uint64_t win_rows = 0;
  Herald__PartitionFilter pf = HERALD__PARTITION_FILTER__INIT;
  sub.protocol_version = 1;
  sub.client_id = "heraldctl-tail";
  int rc = HD_EXIT_USAGE;
  char *tables_copy = NULL, *parts_copy = NULL, *token = NULL;
  char **tabv = NULL, **partv = NULL;
  uint32_t *pv = NULL;
  Herald__Projection *projs = NULL, **projp = NULL;
  char **proj_copies = NULL;
  size_t ntab = 0, npart = 0;
  int fd = -1;
  hb_buf_t out = {0};
  hb_pbr_t *pbr = hb_pbr_new();
  if (strcmp(from, "earliest") == 0) {
    sub.mode = HERALD__START_MODE__START_EARLIEST;
  } else if (strcmp(from, "latest") == 0) {
    sub.mode = HERALD__START_MODE__START_LATEST;
  } else if (hd_parse_u64(from, &sub.start_scn) == 0) {
    sub.mode = HERALD__START_MODE__START_SCN;
  } else {
    hd_cli_usage(PROG, "--from: '%s' is not an SCN, earliest or latest", from);
    goto done;
  }
  if (tables) {
    tables_copy = split_dup(tables, ',', &ntab, &tabv);
    for (size_t i = 0; i < ntab; i++) {
      if (!valid_table_pattern(tabv[i])) {
        hd_cli_usage(PROG, "--tables: '%s' is not a db.table pattern", tabv[i]);
        goto done;
      }
    }
    sub.n_tables = ntab;
    sub.tables = tabv;
  }
  if (parts) {
    const char *colon = strchr(parts, ':');
    uint64_t nparts;
    char nbuf[32];
    if (!colon || (size_t)(colon - parts) >= sizeof(nbuf)) {
      hd_cli_usage(PROG, "--partitions: expected N:i,j,... got '%s'", parts);
      goto done;
    }
    memcpy(nbuf, parts, (size_t)(colon - parts));
    nbuf[colon - parts] = '\0';
    if (hd_parse_u64(nbuf, &nparts) < 0 || nparts == 0 || nparts > 65536) {
      hd_cli_usage(PROG, "--partitions: N must be 1-65536, got '%s'", nbuf);
      goto done;
    }
    parts_copy = split_dup(colon + 1, ',', &npart, &partv);
    pv = hd_malloc((npart + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < npart; i++) {
      uint64_t p;
      if (hd_parse_u64(partv[i], &p) < 0 || p >= nparts) {
        hd_cli_usage(PROG, "--partitions: '%s' is not a partition below %s",
                     partv[i], nbuf);
        goto done;
      }
      pv[i] = (uint32_t)p;
    }
    pf.fn = (Herald__PartitionFunction)pfn;
    pf.num_partitions = (uint32_t)nparts;
    pf.n_partitions = npart;
    pf.partitions = pv;
    sub.partition = &pf;
  }
  if (nproj_specs) {
    /* Each spec "DB.TABLE:c1,c2": the table name and one allocation of
     * the column names, split in place. */
    projs = hd_calloc(nproj_specs, sizeof(Herald__Projection));
    projp = hd_calloc(nproj_specs, sizeof(Herald__Projection *));
    proj_copies = hd_calloc(nproj_specs, sizeof(char *));
    for (size_t i = 0; i < nproj_specs; i++) {
      const char *spec = proj_specs[i], *colon = strchr(spec, ':');
      if (!colon || colon == spec || !colon[1]) {
        hd_cli_usage(PROG, "--columns: expected DB.TABLE:c1,c2 got '%s'", spec);
        goto done;
      }
      char *table = hd_strndup(spec, (size_t)(colon - spec));
      if (!valid_table_pattern(table)) {
        hd_cli_usage(PROG, "--columns: '%s' is not a db.table pattern in '%s'",
                     table, spec);
        free(table);
        goto done;
      }
      /* The entry is initialised only once the spec is known good: the
       * init points table at protobuf-c's static empty string, which the
       * cleanup below must never free. */
      herald__projection__init(&projs[i]);
      projp[i] = &projs[i];
      projs[i].table = table;
      proj_copies[i] =
          split_dup(colon + 1, ',', &projs[i].n_columns, &projs[i].columns);
      for (size_t k = 0; k < projs[i].n_columns; k++)
        if (projs[i].columns[k][0] == '\0') {
          hd_cli_usage(PROG, "--columns: empty column name in '%s'", spec);
          goto done;
        }
    }
    sub.n_projection = nproj_specs;
    sub.projection = projp;
  }
  if (token_file) {
    FILE *tf = fopen(token_file, "r");
    char tb[1024];
    if (!tf || !fgets(tb, sizeof(tb), tf)) {
      fprintf(stderr, PROG ": --token-file %s: cannot read\n", token_file);
      if (tf)
        fclose(tf);
      rc = HD_EXIT_USAGE;
      goto done;
    }
    fclose(tf);
    tb[strcspn(tb, "\r\n")] = '\0';
    token = hd_strdup(tb);
    sub.token = token;
  }

  char err[512];
  int64_t hs_ms = (int64_t)handshake_s * 1000;
  fd = dial(relay, hs_ms, err, sizeof(err));
  if (fd < 0) {
    fprintf(stderr, PROG ": %s\n", err);
    rc = fd == -2 ? HD_EXIT_USAGE : HD_EXIT_FAIL;
    goto done;
  }
  Herald__Frame f = HERALD__FRAME__INIT;
  f.msg_case = HERALD__FRAME__MSG_SUBSCRIBE;
  f.subscribe = &sub;
  uint8_t *fb = NULL;
  size_t fl;
  if (hd_frame_encode(&f, HD_FRAME_DEFAULT_MAX, &fb, &fl) < 0) {
    fprintf(stderr, PROG ": the subscription exceeds %u bytes\n",
            HD_FRAME_DEFAULT_MAX);
    rc = HD_EXIT_USAGE;
    goto done;
  }
  if (write_all(fd, fb, fl) < 0) {
    fprintf(stderr, PROG ": cannot send the subscription to %s: %s\n", relay,
            strerror(errno));
    free(fb);
    rc = HD_EXIT_FAIL;
    goto done;
  }
  free(fb);

  pats_t pats = {tabv, ntab};
  hd_frame_dec_t dec;
  hd_frame_dec_init(&dec, (uint32_t)max_frame);
  static uint8_t rbuf[1 << 20];
  uint64_t printed = 0;
  /* Until its first whole frame the peer has not shown that it is a relay:
   * a relay answers a subscription with a window, a heartbeat (within
   * relay.heartbeat) or an error. Anything else there, such as the relay's
   * own HTTP port, which waits for a request line, or another server, is
   * named as not a relay with the start of what it sent. */
  int handshaken = 0;
  uint8_t first[64];
  size_t nfirst = 0;
  int64_t hs_deadline = mono_ms() + hs_ms, last_data = mono_ms();
  rc = HD_EXIT_FAIL;
  for (;;) {
    /* Wait for data no longer than the nearest deadline, if any. */
    int64_t now = mono_ms(), wait = INT64_MAX;
    if (!handshaken && hs_deadline - now < wait)
      wait = hs_deadline - now;
    if (timeout_s && last_data + (int64_t)timeout_s * 1000 - now < wait)
      wait = last_data + (int64_t)timeout_s * 1000 - now;
    if (wait != INT64_MAX) {
      struct pollfd p = {fd, POLLIN, 0};
      int pr =
          wait > 0 ? poll(&p, 1, wait > INT32_MAX ? INT32_MAX : (int)wait) : 0;
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr == 0 && !handshaken && mono_ms() >= hs_deadline) {
        char ex[256];
        excerpt(first, nfirst, ex, sizeof(ex));
        if (nfirst)
          fprintf(stderr,
                  PROG ": %s is not a herald relay: it sent '%s', then "
                       "nothing for %" PRIu64 " s and no whole frame\n",
                  relay, ex, handshake_s);
        else
          fprintf(stderr,
                  PROG ": %s sent nothing within %" PRIu64
                       " s of connecting: not a herald relay (its consumer "
                       "port is relay.listen, not relay.http), or one too "
                       "busy to answer (see --connect-timeout)\n",
                  relay, handshake_s);
        break;
      }
      if (pr == 0 && timeout_s &&
          mono_ms() >= last_data + (int64_t)timeout_s * 1000) {
        fprintf(stderr, PROG ": nothing from %s for %" PRIu64 " s\n", relay,
                timeout_s);
        break;
      }
      if (pr == 0)
        continue;
    }
    ssize_t n = read(fd, rbuf, sizeof(rbuf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      char ex[256];
      excerpt(first, nfirst, ex, sizeof(ex));
      if (n < 0)
        fprintf(stderr, PROG ": read from %s: %s\n", relay, strerror(errno));
      else if (handshaken)
        fprintf(stderr, PROG ": the relay closed the connection\n");
      else if (nfirst)
        fprintf(stderr,
                PROG ": %s is not a herald relay: it closed the connection "
                     "before a whole frame; it sent '%s'\n",
                relay, ex);
      else
        fprintf(stderr,
                PROG ": %s closed the connection without a word: not a "
                     "herald relay\n",
                relay);
      break;
    }
    /* A first batch may take a while on a slow link: the peer has
     * --connect-timeout seconds for each step of it, not for all of it. */
    if (!handshaken)
      hs_deadline = mono_ms() + hs_ms;
    if (!handshaken && nfirst < sizeof(first)) {
      size_t k = sizeof(first) - nfirst < (size_t)n ? sizeof(first) - nfirst
                                                    : (size_t)n;
      memcpy(first + nfirst, rbuf, k);
      nfirst += k;
    }
    hd_inbuf_t in = {rbuf, (size_t)n, 0};
    int stop = 0;
    while (!stop && in.pos < in.size) {
      Herald__Frame *fr = NULL;
      ssize_t d = hd_frame_decode(&dec, &in, &fr);
      if (d > 0)
        break;
      if (d < 0) {
        char ex[256];
        excerpt(first, nfirst, ex, sizeof(ex));
        if (handshaken)
          fprintf(stderr, PROG ": bad frame from the relay: %s\n", dec.errmsg);
        else
          fprintf(stderr,
                  PROG ": %s is not a herald relay: it sent '%s' (%s)\n", relay,
                  ex, dec.errmsg);
        stop = 1;
        break;
      }
      handshaken = 1;
      if (fr->msg_case == HERALD__FRAME__MSG_ERROR) {
        /* The code's name is what a script can test for; the relay's
         * message says what to do. */
        int e = hd_err_from_wire(fr->error->code);
        const char *m = fr->error->message;
        fprintf(stderr, PROG ": relay error %s: %s\n", hd_err_name(e),
                m && *m ? m : hd_strerror(e));
        stop = 1;
      } else if (fr->msg_case == HERALD__FRAME__MSG_BATCH) {
        last_data = mono_ms();
        for (size_t i = 0; i < fr->batch->n_windows && !stop; i++) {
          const Herald__Window *pw = fr->batch->windows[i];
          out.len = 0;
          /* A window in chunks: the lines before this chunk's were printed
           * already, but for the last one (held): only the next chunk
           * tells whether it was the transaction's last. */
          if (held.len && pw->chunk == 0) /* cannot happen: a lost end */
            held.len = 0;
          if (schemas)
            for (size_t k = 0; k < pw->n_schemas; k++)
              hb_pbr_schema(pw->schemas[k], &out);
          win_rows += hb_pbr_window(pbr, pw, ddl, pats.n ? want_ddl : NULL,
                                    &pats, win_rows, &out);
          if (held.len) {
            static const char lf[] = "\"last\":false}}\n";
            size_t k = sizeof(lf) - 1;
            if (!pw->more_chunks && out.len == 0 && held.len >= k &&
                memcmp(held.p + held.len - k, lf, k) == 0) {
              held.len -= k;
              hb_buf_put(&held, "\"last\":true}}\n", k - 1);
            }
            hb_buf_put(&held, out.p, out.len);
            hb_buf_t t = out;
            out = held;
            held = t;
          }
          held.len = 0;
          size_t keep = out.len;
          if (pw->more_chunks && out.len) {
            /* hold the chunk's last line back */
            keep = out.len - 1;
            while (keep > 0 && out.p[keep - 1] != '\n')
              keep--;
            hb_buf_put(&held, out.p + keep, out.len - keep);
          }
          if (!pw->more_chunks)
            win_rows = 0;
          /* --max counts row changes: cut the window's lines there. */
          size_t off = 0;
          while (off < keep) {
            char *nl = memchr(out.p + off, '\n', keep - off);
            size_t end = nl ? (size_t)(nl - out.p) + 1 : keep;
            fwrite(out.p + off, 1, end - off, stdout);
            off = end;
            if (max && ++printed >= max) {
              stop = 1;
              rc = HD_EXIT_OK;
              break;
            }
          }
          fflush(stdout);
          if (!stop && until && !pw->more_chunks && pw->scn >= until) {
            stop = 1;
            rc = HD_EXIT_OK;
          }
        }
      }
      hd_frame_free(fr);
    }
    if (stop)
      break;
  }
  hd_frame_dec_free(&dec);
done:
  if (fd >= 0)
    close(fd);
  hb_pbr_free(pbr);
  free(out.p);
  free(held.p);
  free(tables_copy);
  free(tabv);
  free(parts_copy);
  free(partv);
  free(pv);
  for (size_t i = 0; projs && i < nproj_specs; i++) {
    free(projs[i].table);
    free(projs[i].columns);
    free(proj_copies[i]);
  }
  free(projs);
  free(projp);
  free(proj_copies);
  free(proj_specs);
  free(token);
  return rc;
}
