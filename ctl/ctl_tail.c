/*
 * heraldctl tail: subscribe to a source's relays through libherald and
 * print their windows in the JSON change format, the same lines
 * `heraldctl decode` prints for the same binlog (libherald renders them
 * with the same renderer, binlog/hb_json.c).
 */
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "hd_cli.h"
#include "hd_parse.h"
#include "hd_zk.h"
#include "herald/herald.h"

#define PROG "heraldctl tail"

static const char usage[] =
    "Usage: heraldctl tail --relay HOST:PORT[,...] [options]\n"
    "       heraldctl tail --zk HOSTS --cluster NAME --source NAME [options]\n"
    "\n"
    "Subscribes to a relay and prints each row change as one JSON line\n"
    "(docs/change-format.md), flushed after every window.\n"
    "\n"
    "Options:\n"
    "  --relay HOST:PORT[,...]  the relay's consumer address; with several,\n"
    "                           tail moves to the next when one fails\n"
    "  --zk HOSTS --cluster NAME --source NAME\n"
    "                           find the source's relays in ZooKeeper and\n"
    "                           move to another when one fails or stalls\n"
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
    "  --tls                    TLS with the relay (also on when a relay\n"
    "                           registered in ZooKeeper says tls)\n"
    "  --tls-ca FILE            PEM CAs the relay's certificate is verified\n"
    "                           with (default: the system's)\n"
    "  --tls-cert FILE          PEM client certificate (with --tls-key), for\n"
    "                           relays with relay.tls_client_ca_file\n"
    "  --tls-key FILE           PEM key of --tls-cert\n"
    "  --tls-no-verify          accept any relay certificate (testing only)\n"
    "  --zk-auth FILE           ZooKeeper credentials, a file whose first\n"
    "                           line is user:password (zookeeper.auth_file)\n"
    "  --timeout SECONDS        exit 1 if no window arrives for this long\n"
    "                           (heartbeats do not count)\n"
    "  --connect-timeout SECONDS  exit 1 if the connection is not made, or\n"
    "                           the relay sends no first frame, within this\n"
    "                           long (default 10; a relay sends a heartbeat\n"
    "                           every relay.heartbeat, 1 s by default)\n"
    "  --stall-timeout SECONDS  with several relays: move on when one sends\n"
    "                           nothing, not even a heartbeat, this long\n"
    "                           (default 5)\n"
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
    "relay's message is printed), when the relay closes the connection\n"
    "(with one relay), or when the peer is not a relay; 2 bad usage.\n";

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With failover, what the client works around is worth a line. */
static void on_error(void *ud, int status, const char *msg) {
  int *failover = ud;
  if (*failover &&
      (status == HERALD_ERR_RELAY || status == HERALD_ERR_NO_RELAY ||
       status == HERALD_ERR_ZOOKEEPER))
    fprintf(stderr, PROG ": %s\n", msg);
}

/* A conf key from an option; a bad value is a usage error naming the
 * option. */
static int set(herald_conf_t *conf, const char *opt, const char *key,
               const char *v) {
  char err[300];
  if (herald_conf_set(conf, key, v, err, sizeof(err)) == HERALD_OK)
    return 0;
  const char *why = strchr(err, ':');
  hd_cli_usage(PROG, "%s: %s", opt, why ? why + 2 : err);
  return -1;
}

static int seconds(const char *opt, const char *v, uint64_t max,
                   uint64_t *out) {
  if (hd_parse_u64(v, out) < 0 || *out == 0 || *out > max) {
    hd_cli_usage(PROG, "%s: '%s' is not a number of seconds (1-%" PRIu64 ")",
                 opt, v, max);
    return -1;
  }
  return 0;
}

int ctl_tail(int argc, char **argv) {
  static const struct option opts[] = {
      {"relay", required_argument, NULL, 'r'},
      {"zk", required_argument, NULL, 'z'},
      {"cluster", required_argument, NULL, 'K'},
      {"source", required_argument, NULL, 's'},
      {"from", required_argument, NULL, 'f'},
      {"tables", required_argument, NULL, 't'},
      {"partitions", required_argument, NULL, 'p'},
      {"partition-fn", required_argument, NULL, 'P'},
      {"columns", required_argument, NULL, 'C'},
      {"ddl", no_argument, NULL, 'd'},
      {"max", required_argument, NULL, 'm'},
      {"token-file", required_argument, NULL, 'k'},
      {"tls", no_argument, NULL, 'L'},
      {"tls-ca", required_argument, NULL, 'a'},
      {"tls-cert", required_argument, NULL, 'e'},
      {"tls-key", required_argument, NULL, 'y'},
      {"tls-no-verify", no_argument, NULL, 'V'},
      {"zk-auth", required_argument, NULL, 'A'},
      {"timeout", required_argument, NULL, 'T'},
      {"connect-timeout", required_argument, NULL, 'c'},
      {"stall-timeout", required_argument, NULL, 'S'},
      {"until", required_argument, NULL, 'u'},
      {"max-frame", required_argument, NULL, 'F'},
      {"schemas", no_argument, NULL, 'X'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  herald_conf_t *conf = herald_conf_new();
  herald_client_t *cl = NULL;
  const char *relay = NULL, *zk = NULL, *cluster = NULL, *source = NULL;
  unsigned flags = 0;
  uint64_t max = 0, timeout_s = 0, until = 0, n;
  int rc = HD_EXIT_USAGE, c, failover = 0;
  char ms[32];
  opterr = 0;
  optind = 1;
  set(conf, "", "client_id", "heraldctl-tail");
  set(conf, "", "connect_timeout_ms", "10000");
  while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
    switch (c) {
    case 'r':
      relay = optarg;
      if (set(conf, "--relay", "relays", optarg) < 0)
        goto done;
      break;
    case 'z':
      zk = optarg;
      if (set(conf, "--zk", "zookeeper.hosts", optarg) < 0)
        goto done;
      break;
    case 'K':
      cluster = optarg;
      if (set(conf, "--cluster", "cluster", optarg) < 0)
        goto done;
      break;
    case 's':
      source = optarg;
      if (set(conf, "--source", "source", optarg) < 0)
        goto done;
      break;
    case 'f':
      if (strcmp(optarg, "earliest") && strcmp(optarg, "latest") &&
          hd_parse_u64(optarg, &n) < 0) {
        hd_cli_usage(PROG, "--from: '%s' is not an SCN, earliest or latest",
                     optarg);
        goto done;
      }
      set(conf, "--from", "start", optarg);
      break;
    case 't':
      if (set(conf, "--tables", "tables", optarg) < 0)
        goto done;
      break;
    case 'p': {
      const char *colon = strchr(optarg, ':');
      char nbuf[32];
      if (!colon || (size_t)(colon - optarg) >= sizeof(nbuf)) {
        hd_cli_usage(PROG, "--partitions: expected N:i,j,... got '%s'", optarg);
        goto done;
      }
      memcpy(nbuf, optarg, (size_t)(colon - optarg));
      nbuf[colon - optarg] = '\0';
      /* N's range and each partition below it: the client's checks */
      if (set(conf, "--partitions", "partition.count", nbuf) < 0 ||
          set(conf, "--partitions", "partition.list", colon + 1) < 0)
        goto done;
      break;
    }
    case 'P':
      if (set(conf, "--partition-fn", "partition.function", optarg) < 0)
        goto done;
      break;
    case 'C':
      if (set(conf, "--columns", "projection", optarg) < 0)
        goto done;
      break;
    case 'd':
      flags |= HERALD_JSON_DDL;
      break;
    case 'X':
      flags |= HERALD_JSON_SCHEMAS;
      break;
    case 'm':
      if (hd_parse_u64(optarg, &max) < 0 || max == 0) {
        hd_cli_usage(PROG, "--max: '%s' is not a positive integer", optarg);
        goto done;
      }
      break;
    case 'k': {
      FILE *tf = fopen(optarg, "r");
      char tb[1024];
      if (!tf || !fgets(tb, sizeof(tb), tf)) {
        fprintf(stderr, PROG ": --token-file %s: cannot read\n", optarg);
        if (tf)
          fclose(tf);
        goto done;
      }
      fclose(tf);
      tb[strcspn(tb, "\r\n")] = '\0';
      set(conf, "--token-file", "token", tb);
      break;
    }
    case 'L':
      set(conf, "--tls", "tls", "true");
      break;
    case 'a':
      if (set(conf, "--tls-ca", "tls_ca_file", optarg) < 0)
        goto done;
      break;
    case 'e':
      if (set(conf, "--tls-cert", "tls_cert_file", optarg) < 0)
        goto done;
      break;
    case 'y':
      if (set(conf, "--tls-key", "tls_key_file", optarg) < 0)
        goto done;
      break;
    case 'V':
      set(conf, "--tls-no-verify", "tls_verify", "false");
      break;
    case 'A': {
      char err[1200], *auth = hd_zk_read_auth(optarg, err, sizeof(err));
      if (auth == NULL) {
        fprintf(stderr, PROG ": --zk-auth: %s\n", err);
        goto done;
      }
      int src = set(conf, "--zk-auth", "zookeeper.auth", auth);
      memset(auth, 0, strlen(auth));
      free(auth);
      if (src < 0)
        goto done;
      break;
    }
    case 'T':
      if (hd_parse_u64(optarg, &timeout_s) < 0 || timeout_s == 0) {
        hd_cli_usage(PROG, "--timeout: '%s' is not a positive integer", optarg);
        goto done;
      }
      break;
    case 'c':
      if (seconds("--connect-timeout", optarg, 86400, &n) < 0)
        goto done;
      snprintf(ms, sizeof(ms), "%" PRIu64, n * 1000);
      set(conf, "--connect-timeout", "connect_timeout_ms", ms);
      break;
    case 'S':
      if (seconds("--stall-timeout", optarg, 3600, &n) < 0)
        goto done;
      snprintf(ms, sizeof(ms), "%" PRIu64, n * 1000);
      set(conf, "--stall-timeout", "stall_timeout_ms", ms);
      break;
    case 'F':
      if (hd_parse_size(optarg, &n) < 0 || n < (64u << 10) || n > (1u << 30)) {
        hd_cli_usage(PROG, "--max-frame: '%s' is not a size from 64KiB to 1GiB",
                     optarg);
        goto done;
      }
      set(conf, "--max-frame", "max_frame_bytes", optarg);
      break;
    case 'u':
      if (hd_parse_u64(optarg, &until) < 0 || until == 0) {
        hd_cli_usage(PROG, "--until: '%s' is not an SCN", optarg);
        goto done;
      }
      break;
    case 'h':
      fputs(usage, stdout);
      rc = HD_EXIT_OK;
      goto done;
    default:
      rc = hd_cli_bad_option(PROG, c, argv);
      goto done;
    }
  }
  if (optind < argc) {
    hd_cli_usage(PROG, "unexpected argument '%s'", argv[optind]);
    goto done;
  }
  if ((relay == NULL) == (zk == NULL)) {
    hd_cli_usage(PROG, "give --relay HOST:PORT, or --zk HOSTS with --cluster "
                       "and --source");
    goto done;
  }
  if (zk && (cluster == NULL || source == NULL)) {
    hd_cli_usage(PROG, "--zk needs --cluster and --source");
    goto done;
  }
  /* One relay: its failure ends tail, with its message. Several, or
   * ZooKeeper: tail moves on, as an agent does. */
  failover = zk != NULL || strchr(relay, ',') != NULL;
  set(conf, "", "failover", failover ? "true" : "false");
  herald_conf_set_error_cb(conf, on_error, &failover);
  char err[700];
  cl = herald_client_new(conf, err, sizeof(err));
  if (cl == NULL) {
    hd_cli_usage(PROG, "%s", err);
    goto done;
  }

  rc = HD_EXIT_FAIL;
  uint64_t printed = 0;
  int64_t last_data = mono_ms();
  for (;;) {
    int wait = -1;
    if (timeout_s) {
      int64_t left = last_data + (int64_t)timeout_s * 1000 - mono_ms();
      wait = left > 0 ? (int)left : 0;
    }
    const herald_window_t *w;
    int s = herald_poll(cl, wait, &w);
    if (s == HERALD_TIMED_OUT) {
      if (until && herald_delivered_scn(cl) >= until) {
        rc = HD_EXIT_OK;
        break;
      }
      if (timeout_s && mono_ms() >= last_data + (int64_t)timeout_s * 1000) {
        const char *r = herald_relay(cl);
        fprintf(stderr, PROG ": nothing from %s for %" PRIu64 " s\n",
                r ? r : (relay ? relay : "the relays"), timeout_s);
        break;
      }
      continue;
    }
    if (s != HERALD_OK) {
      fprintf(stderr, PROG ": %s\n", herald_error(cl));
      break;
    }
    last_data = mono_ms();
    const char *out;
    size_t len;
    herald_window_json(cl, w, flags, &out, &len);
    /* --max counts row changes: cut the window's lines there. */
    size_t off = 0;
    int stop = 0;
    while (off < len) {
      const char *nl = memchr(out + off, '\n', len - off);
      size_t end = nl ? (size_t)(nl - out) + 1 : len;
      fwrite(out + off, 1, end - off, stdout);
      off = end;
      if (max && ++printed >= max) {
        stop = 1;
        break;
      }
    }
    fflush(stdout);
    if (stop ||
        (until && herald_window_last(w) && herald_window_scn(w) >= until)) {
      rc = HD_EXIT_OK;
      break;
    }
  }
done:
  herald_client_free(cl);
  herald_conf_free(conf);
  return rc;
}
