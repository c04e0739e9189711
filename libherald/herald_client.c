/*
 * herald_client.c - the client: relay discovery (ZooKeeper or a fixed
 * list), the connection (dial, subscribe, frames, heartbeats, stalls),
 * failover with resume after the last delivered window, and the order in
 * which windows are handed out (herald_poll, herald_dispatch).
 *
 * Everything runs on the caller's thread inside poll: one socket, poll(2)
 * with the nearest deadline, frames decoded one at a time from a read
 * buffer so that a window handed out stays valid until the next poll.
 *
 * TLS (keys tls, tls_ca_file, ...; a relay registered with "tls": true):
 * OpenSSL on the same non-blocking socket, the handshake done in
 * conn_open within connect_timeout_ms, then SSL_read/SSL_write where read
 * and send were. A relay's certificate is verified against tls_ca_file
 * (else the system's CAs) and the host name or IP address dialed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_reg.h"
#include "herald_int.h"

/* The read buffer starts small and doubles whenever a read fills it: a
 * client of a quiet or filtered stream (most of an agent's partitions)
 * keeps 64 KiB, one that streams a backlog reads 1 MiB at a time. */
#define RBUF_MIN (64u << 10)
#define RBUF_MAX (1u << 20)
#define BACKOFF_MIN_MS 100

typedef struct {
  char *addr;          /* host:port to dial */
  char *id;            /* relay.id when known from ZooKeeper */
  uint64_t newest_scn; /* from its registration (0: unknown) */
  uint64_t server_id;  /* source_server_id (0: unknown) */
  int connected;       /* registration says its binlog stream is up */
  int tls;             /* registration says its consumer port is TLS */
  int tried;           /* failed in this round */
  uint64_t too_old_at; /* ERR_SCN_TOO_OLD for this position (+1) */
} relay_t;

/* Where a window that was cut off by a failover stands. */
typedef struct {
  uint64_t scn; /* 0: none */
  uint64_t rows, ddl;
  uint32_t chunk;
} resume_t;

struct herald_client {
  herald_conf_t *conf;
  relay_t *relays;
  size_t nrelays;
  hd_zk_t *zk;
  int state;
  int fatal; /* the fatal status, 0 while running */
  int fatal_told;
  char err[1024];
  char too_old_msg[600]; /* the last relay's ERR_SCN_TOO_OLD */

  /* the connection */
  SSL_CTX *tls_ctx;    /* NULL: no TLS configured or registered yet */
  BIO_METHOD *tls_bio; /* the socket's BIO (tls_bio_new) */
  SSL *ssl;            /* the connection's TLS, NULL: plaintext */
  int fd;
  int cur; /* index into relays, -1 */
  char cur_addr[300];
  uint64_t cur_server_id;
  hd_frame_dec_t dec;
  hl_arena_t arena; /* the unpacked frames (herald_arena.c) */
  int dec_live;
  uint8_t *rbuf;
  size_t rlen, rpos, rcap;
  int handshaken;    /* a whole frame came */
  int serving;       /* a frame other than an Error came */
  uint8_t first[64]; /* what the peer sent first, to name a non-relay */
  size_t nfirst;
  int64_t conn_ms, last_rx_ms;
  Herald__Frame *frame; /* the batch being handed out */
  size_t fwin;

  /* backoff between rounds over the relays */
  int backoff_ms;
  int64_t next_try_ms;
  int waiting_reported;

  /* positions */
  uint64_t delivered_scn, delivered_ts, acked_scn;
  uint64_t newest_scn, newest_ts, oldest_scn, failovers;
  /* the window being handed out in chunks */
  int in_window;
  uint64_t win_scn, rows_done, ddl_done;
  uint32_t chunk_next;
  uint64_t skip_rows, skip_ddl; /* of a resumed window, still to skip */
  resume_t resume;

  /* the snapshot: where it is (the last snapshot window delivered) */
  uint8_t *snap_pos;
  size_t snap_pos_len;
  int snap_done;
  int in_snap; /* the window being handed out in chunks is one */
  char *snap_hex;

  herald_window_t win;
  hl_schemas_t schemas;
  hl_json_t json;
  hl_owned_t owned; /* herald_change_owned() */
};

/* "2 s" for whole seconds, "1500 ms" otherwise. */
static void fmt_ms(char *b, size_t n, int ms) {
  if (ms % 1000 == 0)
    snprintf(b, n, "%d s", ms / 1000);
  else
    snprintf(b, n, "%d ms", ms);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *herald_version(void) {
  return HD_VERSION;
}

const char *herald_strerror(int s) {
  switch (s) {
  case HERALD_OK:
    return "ok";
  case HERALD_TIMED_OUT:
    return "timed out";
  case HERALD_ERR_ARG:
    return "bad argument";
  case HERALD_ERR_SCN_TOO_OLD:
    return "position older than every relay's retention (bootstrap needed)";
  case HERALD_ERR_AUTH:
    return "the relay refused the token";
  case HERALD_ERR_REFUSED:
    return "the relay refused the subscription";
  case HERALD_ERR_NO_RELAY:
    return "no relay reachable";
  case HERALD_ERR_RELAY:
    return "relay failed";
  case HERALD_ERR_INCONSISTENT:
    return "relays disagree about a window";
  case HERALD_ERR_ZOOKEEPER:
    return "ZooKeeper unavailable";
  case HERALD_ERR_STATE:
    return "call out of order";
  case HERALD_ERR_FAILED:
    return "the client stopped on an earlier error";
  case HERALD_ERR_CALLBACK:
    return "stopped by a callback";
  default:
    return "unknown status";
  }
}

/* Say what happened: into c->err, and to the application's callback.
 * Formatted apart first: an argument may be c->err itself (the last
 * relay's problem). */
static void report(herald_client_t *c, int status, const char *fmt, ...) {
  char msg[sizeof(c->err)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  memcpy(c->err, msg, sizeof(msg));
  if (c->conf->ecb)
    c->conf->ecb(c->conf->eud, status, c->err);
}

static int set_fatal(herald_client_t *c, int status) {
  c->fatal = status;
  c->state = HERALD_STATE_FAILED;
  if (c->conf->ecb)
    c->conf->ecb(c->conf->eud, status, c->err);
  return status;
}

/* ----------------------------------------------------------- discovery */

static void relays_clear(herald_client_t *c) {
  for (size_t i = 0; i < c->nrelays; i++) {
    free(c->relays[i].addr);
  }
  free(c->relays);
  c->relays = NULL;
  c->nrelays = 0;
}

static relay_t *relay_add(herald_client_t *c, const char *addr) {
  c->relays = hd_realloc(c->relays, (c->nrelays + 1) * sizeof(relay_t));
  relay_t *r = &c->relays[c->nrelays++];
  memset(r, 0, sizeof(*r));
  r->addr = hd_strdup(addr);
  return r;
}

/* Read the source's registrations; keep what each relay's failures in
 * this round and its answers were (by address). */
static int discover(herald_client_t *c) {
  herald_conf_t *k = c->conf;
  if (c->zk && hd_zk_expired(c->zk)) {
    hd_zk_free(c->zk);
    c->zk = NULL;
  }
  if (c->zk == NULL) {
    c->zk = hd_zk_new_auth(k->zk_hosts, k->zk_timeout_ms, k->zk_auth);
    if (c->zk == NULL) {
      report(c, HERALD_ERR_ZOOKEEPER, "zookeeper.hosts '%s' refused",
             k->zk_hosts);
      return -1;
    }
  }
  if (hd_zk_wait(c->zk, k->connect_ms) != 0) {
    report(c, HERALD_ERR_ZOOKEEPER,
           "no ZooKeeper session with %s within %d ms: using the relays "
           "known before",
           k->zk_hosts, k->connect_ms);
    return -1;
  }
  char path[600];
  snprintf(path, sizeof(path), "/herald/%s/relays/%s", k->cluster, k->source);
  struct String_vector kids = {0, NULL};
  int rc = zoo_get_children(hd_zk_handle(c->zk), path, 0, &kids);
  if (rc == ZNONODE) {
    kids.count = 0;
  } else if (rc != ZOK) {
    report(c, HERALD_ERR_ZOOKEEPER, "cannot list %s: %s", path,
           hd_zk_strerror(rc));
    return -1;
  }
  relay_t *old = c->relays;
  size_t nold = c->nrelays;
  c->relays = NULL;
  c->nrelays = 0;
  for (int i = 0; i < kids.count; i++) {
    char cp[900], data[4096];
    int len = sizeof(data) - 1;
    snprintf(cp, sizeof(cp), "%s/%s", path, kids.data[i]);
    if (zoo_get(hd_zk_handle(c->zk), cp, 0, data, &len, NULL) != ZOK || len < 0)
      continue; /* gone since the listing */
    hd_reg_t reg;
    char e[200];
    if (hd_reg_parse(data, (size_t)len, &reg, e, sizeof(e)) < 0) {
      report(c, HERALD_ERR_ZOOKEEPER, "%s: skipped: %s", cp, e);
      continue;
    }
    relay_t *r = relay_add(c, reg.advertise);
    r->newest_scn = reg.newest_scn;
    r->server_id = reg.source_server_id;
    r->connected = reg.connected;
    r->tls = reg.tls;
    for (size_t j = 0; j < nold; j++)
      if (strcmp(old[j].addr, r->addr) == 0) {
        r->tried = old[j].tried;
        r->too_old_at = old[j].too_old_at;
      }
  }
  deallocate_String_vector(&kids);
  for (size_t j = 0; j < nold; j++) {
    free(old[j].addr);
  }
  free(old);
  return 0;
}

/* The relay to try next, or -1 when none is left in this round. With
 * registrations: only relays that have what the position needs (newest
 * SCN at or past it) and read the same server as the last one used;
 * among them connected ones first, then the newest. A fixed list in its
 * order, from the relay after the last one used: one that fails again
 * and again after it served a while does not keep the next ones from
 * their turn. */
static int pick(herald_client_t *c) {
  uint64_t pos = c->delivered_scn;
  int best = -1;
  size_t first = c->cur >= 0 ? (size_t)c->cur + 1 : 0;
  for (size_t k = 0; k < c->nrelays; k++) {
    size_t i = (first + k) % c->nrelays;
    const relay_t *r = &c->relays[i];
    if (r->tried || r->too_old_at == pos + 1)
      continue;
    if (c->conf->zk_hosts) {
      if (pos && r->newest_scn < pos)
        continue;
      if (c->cur_server_id && r->server_id && r->server_id != c->cur_server_id)
        continue;
      if (best >= 0) {
        const relay_t *b = &c->relays[best];
        if (b->connected > r->connected ||
            (b->connected == r->connected && b->newest_scn >= r->newest_scn))
          continue;
      }
    } else if (best >= 0) {
      continue; /* a fixed list is tried in its order */
    }
    best = (int)i;
  }
  return best;
}

/* ---------------------------------------------------------- connection */

/* One connect() that gives up at deadline_ms: a peer that drops SYNs
 * would otherwise hold the client for the kernel's two minutes. */
static int connect_by(const struct addrinfo *a, int64_t deadline_ms) {
  int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  a->ai_protocol);
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
  return fd;
fail:;
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

static int dial(const char *hostport, int timeout_ms, char *err, size_t n) {
  char host[256];
  uint16_t port;
  if (hd_parse_hostport(hostport, host, sizeof(host), &port) < 0) {
    snprintf(err, n, "'%s' is not host:port", hostport);
    return -1;
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

/* One line of OpenSSL's queued errors, the queue emptied. */
static void tls_errors(char *b, size_t n) {
  unsigned long e;
  size_t o = 0;
  b[0] = '\0';
  while ((e = ERR_get_error()) != 0) {
    if (o + 3 >= n)
      continue;
    if (o)
      o += (size_t)snprintf(b + o, n - o, "; ");
    ERR_error_string_n(e, b + o, n - o);
    o = strlen(b);
  }
  if (o == 0)
    snprintf(b, n, "connection closed");
}

/* Waits for the socket as OpenSSL asked (rc of an SSL call). @returns 0
 * to call again, -1 with errno (ETIMEDOUT at the deadline), -2 for a TLS
 * failure. */
static int tls_wait(SSL *ssl, int fd, int rc, int64_t deadline) {
  int e = SSL_get_error(ssl, rc);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
    if (e == SSL_ERROR_SYSCALL && errno == 0)
      errno = ECONNRESET;
    return e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? -1 : -2;
  }
  struct pollfd pf = {fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0};
  int64_t left = deadline - mono_ms();
  int pr;
  if (left <= 0 || (pr = poll(&pf, 1, (int)left)) == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (pr < 0 && errno != EINTR)
    return -1;
  return 0;
}

static int send_all(herald_client_t *c, const uint8_t *p, size_t n,
                    int64_t deadline) {
  int fd = c->fd;
  while (c->ssl && n) {
    size_t w = 0;
    ERR_clear_error();
    int rc = SSL_write_ex(c->ssl, p, n, &w);
    if (rc == 1) {
      p += w;
      n -= w;
    } else if ((rc = tls_wait(c->ssl, fd, rc, deadline)) < 0) {
      if (rc == -2)
        errno = EPROTO;
      return -1;
    }
  }
  while (n) {
    /* MSG_NOSIGNAL: a peer that hung up is an error to report, not a
     * SIGPIPE that ends the application. */
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd pf = {fd, POLLOUT, 0};
      int64_t left = deadline - mono_ms();
      if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
        errno = ETIMEDOUT;
        return -1;
      }
      continue;
    }
    if (w < 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The printable start of what the peer sent, to name what answered when
 * it was not a relay. */
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

static void conn_close(herald_client_t *c) {
  if (c->ssl) {
    SSL_shutdown(c->ssl); /* close_notify if it fits; never waits */
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  if (c->dec_live)
    hd_frame_dec_free(&c->dec);
  c->dec_live = 0;
  c->frame = NULL; /* in the arena, reset before the next decode */
  c->fwin = 0;
  c->rlen = c->rpos = 0;
  c->handshaken = c->serving = 0;
  c->nfirst = 0;
}

static int send_subscribe(herald_client_t *c, int64_t deadline) {
  herald_conf_t *k = c->conf;
  Herald__Subscribe sub = HERALD__SUBSCRIBE__INIT;
  sub.protocol_version = 1;
  sub.client_id = k->client_id;
  sub.max_frame_bytes = k->max_frame;
  sub.token = k->token;
  sub.n_tables = k->ntables;
  sub.tables = k->tables;
  /* After the first window (or position) the client always resumes by
   * SCN: after what it delivered, whatever it was asked to start with. */
  if (c->delivered_scn) {
    sub.mode = HERALD__START_MODE__START_SCN;
    sub.start_scn = c->delivered_scn;
  } else {
    sub.mode = (Herald__StartMode)k->start_mode;
    sub.start_scn = k->start_scn;
  }
  Herald__SnapshotRequest sr = HERALD__SNAPSHOT_REQUEST__INIT;
  if (k->snap && !c->snap_done) {
    sr.n_tables = k->nsnap_tables;
    sr.tables = k->snap_tables;
    sr.position.data = c->snap_pos;
    sr.position.len = c->snap_pos_len;
    sr.chunk_rows = k->snap_chunk;
    sub.snapshot = &sr;
  }
  Herald__PartitionFilter pf = HERALD__PARTITION_FILTER__INIT;
  uint32_t *all = NULL;
  if (k->nparts) {
    pf.fn = (Herald__PartitionFunction)k->pfn;
    pf.num_partitions = k->nparts;
    if (k->nplist) {
      pf.n_partitions = k->nplist;
      pf.partitions = k->parts;
    } else {
      all = hd_malloc(k->nparts * sizeof(uint32_t));
      for (uint32_t i = 0; i < k->nparts; i++)
        all[i] = i;
      pf.n_partitions = k->nparts;
      pf.partitions = all;
    }
    pf.key_column = k->key_column;
    sub.partition = &pf;
  }
  Herald__Projection *pj = NULL, **pjp = NULL;
  if (k->nproj) {
    pj = hd_calloc(k->nproj, sizeof(*pj));
    pjp = hd_calloc(k->nproj, sizeof(*pjp));
    for (size_t i = 0; i < k->nproj; i++) {
      herald__projection__init(&pj[i]);
      pj[i].table = k->proj[i].table;
      pj[i].n_columns = k->proj[i].ncols;
      pj[i].columns = k->proj[i].cols;
      pjp[i] = &pj[i];
    }
    sub.n_projection = k->nproj;
    sub.projection = pjp;
  }
  Herald__Frame f = HERALD__FRAME__INIT;
  f.msg_case = HERALD__FRAME__MSG_SUBSCRIBE;
  f.subscribe = &sub;
  uint8_t *fb = NULL;
  size_t fl = 0;
  int rc = hd_frame_encode(&f, HD_FRAME_DEFAULT_MAX, &fb, &fl);
  free(all);
  free(pj);
  free(pjp);
  if (rc < 0) {
    snprintf(c->err, sizeof(c->err), "the subscription exceeds %u bytes",
             HD_FRAME_DEFAULT_MAX);
    return -2;
  }
  rc = send_all(c, fb, fl, deadline);
  free(fb);
  if (rc < 0) {
    snprintf(c->err, sizeof(c->err), "cannot send the subscription to %s: %s",
             c->cur_addr, strerror(errno));
    return -1;
  }
  return 0;
}

/* The current relay failed: drop the connection, remember where a window
 * in progress stood, and move on (next poll dials another). */
static void relay_fail(herald_client_t *c, const char *fmt, ...) {
  char why[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  if (c->in_window && c->in_snap) {
    /* Another relay reads the chunk again, at its own SCN and with its
     * own rows: what was handed out of this one cannot be continued. */
    snprintf(c->err, sizeof(c->err),
             "%s, in the middle of a snapshot chunk at SCN %" PRIu64
             ": the chunk must be applied again from the last snapshot "
             "position",
             why, c->win_scn);
    conn_close(c);
    set_fatal(c, HERALD_ERR_INCONSISTENT);
    return;
  }
  if (c->in_window) {
    c->resume.scn = c->win_scn;
    c->resume.rows = c->rows_done;
    c->resume.ddl = c->ddl_done;
    c->resume.chunk = c->chunk_next;
    c->in_window = 0;
  }
  if (c->cur >= 0 && (size_t)c->cur < c->nrelays)
    c->relays[c->cur].tried = 1;
  int was = c->handshaken;
  conn_close(c);
  if (!c->conf->failover) {
    snprintf(c->err, sizeof(c->err), "%s", why);
    set_fatal(c, HERALD_ERR_RELAY);
    return;
  }
  c->state = HERALD_STATE_CONNECTING;
  if (was)
    c->failovers++;
  report(c, HERALD_ERR_RELAY, "%s (resuming after SCN %" PRIu64 ")", why,
         c->delivered_scn);
}

/* The TLS context from the tls_* keys. @returns NULL with err filled. */
static SSL_CTX *tls_ctx_new(const herald_conf_t *k, char *err, size_t n) {
  char e[400];
  ERR_clear_error();
  SSL_CTX *x = SSL_CTX_new(TLS_client_method());
  if (x == NULL) {
    tls_errors(e, sizeof(e));
    snprintf(err, n, "cannot make a TLS context: %s", e);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION);
  /* A relay closes without close_notify: frames are length-prefixed, so
   * an end of stream is the closed connection it is without TLS. */
  SSL_CTX_set_options(x, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                             SSL_OP_IGNORE_UNEXPECTED_EOF);
  const char *what = NULL, *file = NULL;
  if (k->tls_ca) {
    if (SSL_CTX_load_verify_locations(x, k->tls_ca, NULL) != 1)
      what = "tls_ca_file", file = k->tls_ca;
  } else if (SSL_CTX_set_default_verify_paths(x) != 1) {
    what = "the system's CA certificates", file = "";
  }
  if (what == NULL && (k->tls_cert != NULL) != (k->tls_key != NULL)) {
    snprintf(err, n, "set both of tls_cert_file and tls_key_file, or neither");
    SSL_CTX_free(x);
    return NULL;
  }
  if (what == NULL && k->tls_cert &&
      SSL_CTX_use_certificate_chain_file(x, k->tls_cert) != 1)
    what = "tls_cert_file", file = k->tls_cert;
  if (what == NULL && k->tls_key &&
      (SSL_CTX_use_PrivateKey_file(x, k->tls_key, SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_check_private_key(x) != 1))
    what = "tls_key_file", file = k->tls_key;
  if (what) {
    tls_errors(e, sizeof(e));
    snprintf(err, n, "%s %s: cannot load: %s", what, file, e);
    SSL_CTX_free(x);
    return NULL;
  }
  SSL_CTX_set_verify(x, k->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                     NULL);
  return x;
}

/* OpenSSL's socket BIO writes with write(2): a relay that hung up would
 * be a SIGPIPE ending the application. This one is the same over
 * send(MSG_NOSIGNAL) and recv. */
static int nb_write(BIO *b, const char *p, int n) {
  BIO_clear_retry_flags(b);
  ssize_t w = send((int)(intptr_t)BIO_get_data(b), p, (size_t)n, MSG_NOSIGNAL);
  if (w < 0 && (errno == EAGAIN || errno == EINTR))
    BIO_set_retry_write(b);
  return (int)w;
}

static int nb_read(BIO *b, char *p, int n) {
  BIO_clear_retry_flags(b);
  ssize_t r = recv((int)(intptr_t)BIO_get_data(b), p, (size_t)n, 0);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    BIO_set_retry_read(b);
  return (int)r;
}

static long nb_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b;
  (void)num;
  (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *tls_bio_new(void) {
  BIO_METHOD *m =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "herald socket");
  if (m == NULL || !BIO_meth_set_write(m, nb_write) ||
      !BIO_meth_set_read(m, nb_read) || !BIO_meth_set_ctrl(m, nb_ctrl)) {
    BIO_meth_free(m);
    return NULL;
  }
  return m;
}

/* TLS over the connection just dialed, within the deadline: the relay's
 * certificate checked against the CAs and the host (name or IP) dialed.
 * @returns 0, or -1 with c->err saying what failed. */
static int tls_start(herald_client_t *c, int64_t deadline) {
  herald_conf_t *k = c->conf;
  char host[256], e[400];
  uint16_t port;
  if (c->tls_ctx == NULL &&
      (c->tls_ctx = tls_ctx_new(k, e, sizeof(e))) == NULL) {
    snprintf(c->err, sizeof(c->err), "TLS with %s: %s", c->cur_addr, e);
    return -1;
  }
  if (c->tls_bio == NULL)
    c->tls_bio = tls_bio_new();
  c->ssl = SSL_new(c->tls_ctx);
  BIO *bio = c->tls_bio ? BIO_new(c->tls_bio) : NULL;
  if (bio) {
    BIO_set_data(bio, (void *)(intptr_t)c->fd);
    BIO_set_init(bio, 1);
  }
  if (c->ssl == NULL || bio == NULL) {
    BIO_free(bio);
    tls_errors(e, sizeof(e));
    snprintf(c->err, sizeof(c->err), "TLS with %s: %s", c->cur_addr, e);
    return -1;
  }
  SSL_set_bio(c->ssl, bio, bio);
  if (hd_parse_hostport(c->cur_addr, host, sizeof(host), &port) == 0) {
    unsigned char ip[16];
    int is_ip =
        inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(vp, host);
    } else {
      SSL_set_tlsext_host_name(c->ssl, host);
      X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(vp, host, 0);
    }
  }
  for (;;) {
    ERR_clear_error();
    int rc = SSL_connect(c->ssl);
    if (rc == 1)
      return 0;
    int w = tls_wait(c->ssl, c->fd, rc, deadline);
    if (w == 0)
      continue;
    long v = SSL_get_verify_result(c->ssl);
    if (w == -1) {
      snprintf(c->err, sizeof(c->err), "TLS handshake with %s: %s", c->cur_addr,
               strerror(errno));
    } else if (v != X509_V_OK) {
      snprintf(c->err, sizeof(c->err),
               "TLS handshake with %s failed: the relay's certificate does "
               "not verify: %s (tls_ca_file %s)",
               c->cur_addr, X509_verify_cert_error_string(v),
               k->tls_ca ? k->tls_ca : "unset: the system's CAs");
      ERR_clear_error();
    } else {
      tls_errors(e, sizeof(e));
      snprintf(c->err, sizeof(c->err),
               "TLS handshake with %s failed: %s (does the relay speak TLS "
               "on this port? a client certificate it needs: "
               "tls_cert_file)",
               c->cur_addr, e);
    }
    return -1;
  }
}

/* Dial the next relay. @returns 0 connected or waiting, <0 fatal. */
static int conn_open(herald_client_t *c) {
  herald_conf_t *k = c->conf;
  if (k->zk_hosts)
    discover(c); /* on failure the relays known before stay */
  int i = pick(c);
  if (i < 0) {
    /* Every relay failed in this round (or none is registered): wait and
     * start a new round. */
    for (size_t j = 0; j < c->nrelays; j++)
      c->relays[j].tried = 0;
    if (c->nrelays && c->relays[0].too_old_at) {
      int all_old = 1;
      for (size_t j = 0; j < c->nrelays; j++)
        if (c->relays[j].too_old_at != c->delivered_scn + 1)
          all_old = 0;
      if (all_old) {
        snprintf(c->err, sizeof(c->err),
                 "every relay answered ERR_SCN_TOO_OLD for SCN %" PRIu64
                 " (the oldest served is %" PRIu64 "; last: %s)",
                 c->delivered_scn, c->oldest_scn, c->too_old_msg);
        return set_fatal(c, HERALD_ERR_SCN_TOO_OLD);
      }
    }
    c->state = HERALD_STATE_WAITING;
    if (c->backoff_ms == 0)
      c->backoff_ms = BACKOFF_MIN_MS;
    else if ((c->backoff_ms *= 2) > k->backoff_max_ms)
      c->backoff_ms = k->backoff_max_ms;
    c->next_try_ms = mono_ms() + c->backoff_ms;
    if (!c->waiting_reported) {
      c->waiting_reported = 1;
      if (c->nrelays == 0 && k->zk_hosts)
        report(c, HERALD_ERR_NO_RELAY,
               "no relay of source '%s' registered in cluster '%s' (at SCN "
               "%" PRIu64 "): waiting",
               k->source, k->cluster, c->delivered_scn);
      else
        report(c, HERALD_ERR_NO_RELAY,
               "no relay can serve SCN %" PRIu64 " now (last: %s): waiting",
               c->delivered_scn, c->err);
    }
    return 0;
  }
  relay_t *r = &c->relays[i];
  c->cur = i;
  snprintf(c->cur_addr, sizeof(c->cur_addr), "%s", r->addr);
  c->state = HERALD_STATE_CONNECTING;
  char err[400];
  int64_t deadline = mono_ms() + k->connect_ms;
  c->fd = dial(r->addr, k->connect_ms, err, sizeof(err));
  if (c->fd < 0) {
    r->tried = 1;
    snprintf(c->err, sizeof(c->err), "%s", err);
    return k->failover ? 0 : set_fatal(c, HERALD_ERR_NO_RELAY);
  }
  if ((k->tls || r->tls) && tls_start(c, deadline) < 0) {
    r->tried = 1;
    conn_close(c);
    return k->failover ? 0 : set_fatal(c, HERALD_ERR_NO_RELAY);
  }
  hd_frame_dec_init(&c->dec, k->max_frame + 64);
  hd_frame_dec_set_allocator(&c->dec, &c->arena.pa);
  c->dec_live = 1;
  int rc = send_subscribe(c, deadline);
  if (rc < 0) {
    r->tried = 1;
    conn_close(c);
    if (rc == -2)
      return set_fatal(c, HERALD_ERR_REFUSED);
    return k->failover ? 0 : set_fatal(c, HERALD_ERR_NO_RELAY);
  }
  c->conn_ms = c->last_rx_ms = mono_ms();
  return 0;
}

int hl_client_attach(herald_client_t *c, int fd) {
  if (c->fd >= 0 || c->nrelays == 0 || c->fatal)
    return -1;
  c->cur = 0;
  snprintf(c->cur_addr, sizeof(c->cur_addr), "%s", c->relays[0].addr);
  c->state = HERALD_STATE_CONNECTING;
  c->fd = fd;
  hd_frame_dec_init(&c->dec, c->conf->max_frame + 64);
  hd_frame_dec_set_allocator(&c->dec, &c->arena.pa);
  c->dec_live = 1;
  c->conn_ms = c->last_rx_ms = mono_ms();
  return 0;
}

/* ---------------------------------------------------------- life cycle */

herald_client_t *herald_client_new(const herald_conf_t *conf, char *errstr,
                                   size_t errlen) {
  const char *why = NULL;
  char buf[160];
  if (conf == NULL)
    why = "no configuration";
  else if (conf->nrelays == 0 && conf->zk_hosts == NULL)
    why = "set 'relays' or 'zookeeper.hosts' (with 'cluster' and 'source')";
  else if (conf->zk_hosts && (conf->cluster == NULL || conf->source == NULL))
    why = "with 'zookeeper.hosts', 'cluster' and 'source' are needed";
  else if (conf->nplist && conf->nparts == 0)
    why = "'partition.list' needs 'partition.count'";
  for (size_t i = 0; why == NULL && conf->nplist && i < conf->nplist; i++)
    if (conf->parts[i] >= conf->nparts) {
      snprintf(buf, sizeof(buf),
               "'partition.list' names partition %u, not below "
               "partition.count %u",
               conf->parts[i], conf->nparts);
      why = buf;
    }
  if (why) {
    if (errstr && errlen)
      snprintf(errstr, errlen, "%s", why);
    return NULL;
  }
  /* A TLS setting that cannot work is said now, not at the first relay. */
  SSL_CTX *tctx = NULL;
  if (conf->tls || conf->tls_ca || conf->tls_cert || conf->tls_key) {
    char e[600];
    if ((tctx = tls_ctx_new(conf, e, sizeof(e))) == NULL) {
      if (errstr && errlen)
        snprintf(errstr, errlen, "%s", e);
      return NULL;
    }
  }
  herald_client_t *c = hd_calloc(1, sizeof(*c));
  c->tls_ctx = tctx;
  hl_arena_init(&c->arena);
  c->conf = hl_conf_dup(conf);
  c->fd = -1;
  c->cur = -1;
  c->rcap = RBUF_MIN;
  c->rbuf = hd_malloc(c->rcap);
  for (size_t i = 0; i < conf->nrelays; i++)
    relay_add(c, conf->relays[i]);
  /* Starting after an SCN is having delivered everything up to it. */
  if (conf->start_mode == HERALD__START_MODE__START_SCN)
    c->delivered_scn = conf->start_scn;
  c->state = HERALD_STATE_CONNECTING;
  hl_owned_init(&c->owned, c->conf);
  if (conf->snap_pos_len) {
    c->snap_pos = hd_malloc(conf->snap_pos_len);
    memcpy(c->snap_pos, conf->snap_pos, conf->snap_pos_len);
    c->snap_pos_len = conf->snap_pos_len;
    Herald__SnapshotPosition *p =
        herald__snapshot_position__unpack(NULL, c->snap_pos_len, c->snap_pos);
    c->snap_done = p && p->done;
    if (p)
      herald__snapshot_position__free_unpacked(p, NULL);
  }
  return c;
}

const char *herald_snapshot_position(herald_client_t *c) {
  if (c->snap_hex == NULL) {
    static const char hx[] = "0123456789abcdef";
    c->snap_hex = hd_malloc(c->snap_pos_len * 2 + 1);
    for (size_t i = 0; i < c->snap_pos_len; i++) {
      c->snap_hex[2 * i] = hx[c->snap_pos[i] >> 4];
      c->snap_hex[2 * i + 1] = hx[c->snap_pos[i] & 15];
    }
    c->snap_hex[c->snap_pos_len * 2] = '\0';
  }
  return c->snap_hex;
}

int herald_snapshot_done(const herald_client_t *c) {
  return c->snap_done;
}

void herald_client_free(herald_client_t *c) {
  if (c) {
    free(c->snap_pos);
    free(c->snap_hex);
  }
  if (c == NULL)
    return;
  conn_close(c);
  SSL_CTX_free(c->tls_ctx);
  BIO_meth_free(c->tls_bio);
  relays_clear(c);
  if (c->zk)
    hd_zk_free(c->zk);
  free(c->rbuf);
  hl_arena_free(&c->arena);
  free(c->win.schemas);
  hl_schemas_free(&c->schemas);
  hl_json_free(&c->json);
  hl_owned_free(&c->owned);
  herald_conf_free(c->conf);
  free(c);
}

int herald_state(const herald_client_t *c) {
  return c->state;
}
const char *herald_relay(const herald_client_t *c) {
  return c->fd >= 0 ? c->cur_addr : NULL;
}
const char *herald_error(const herald_client_t *c) {
  return c->err;
}
uint64_t herald_delivered_scn(const herald_client_t *c) {
  return c->delivered_scn;
}
uint64_t herald_delivered_ts_ms(const herald_client_t *c) {
  return c->delivered_ts;
}
uint64_t herald_acked_scn(const herald_client_t *c) {
  return c->acked_scn;
}
uint64_t herald_relay_newest_scn(const herald_client_t *c) {
  return c->newest_scn;
}
uint64_t herald_relay_newest_ts_ms(const herald_client_t *c) {
  return c->newest_ts;
}
uint64_t herald_oldest_scn(const herald_client_t *c) {
  return c->oldest_scn;
}
uint64_t herald_failovers(const herald_client_t *c) {
  return c->failovers;
}

int herald_ack(herald_client_t *c, uint64_t scn) {
  if (scn > c->delivered_scn || scn < c->acked_scn) {
    snprintf(c->err, sizeof(c->err),
             "ack of SCN %" PRIu64 " outside [%" PRIu64 ", %" PRIu64
             "] (last ack, last delivered)",
             scn, c->acked_scn, c->delivered_scn);
    return HERALD_ERR_STATE;
  }
  c->acked_scn = scn;
  return HERALD_OK;
}

/* ---------------------------------------------------------------- frames */

/* An Error frame from the relay: which of them end the client, which
 * only this relay. @returns <0 fatal */
static int on_error_frame(herald_client_t *c, const Herald__Error *e) {
  int code = hd_err_from_wire(e->code);
  const char *m = e->message && *e->message ? e->message : hd_strerror(code);
  switch (e->code) {
  case HERALD__ERROR_CODE__ERR_SCN_TOO_OLD:
    if (e->oldest_scn > c->oldest_scn)
      c->oldest_scn = e->oldest_scn;
    if (c->cur >= 0)
      c->relays[c->cur].too_old_at = c->delivered_scn + 1;
    snprintf(c->too_old_msg, sizeof(c->too_old_msg),
             "relay %s: relay error %s: %s", c->cur_addr, hd_err_name(code), m);
    if (!c->conf->failover) {
      snprintf(c->err, sizeof(c->err), "%s", c->too_old_msg);
      conn_close(c);
      return set_fatal(c, HERALD_ERR_SCN_TOO_OLD);
    }
    relay_fail(c, "%s", c->too_old_msg);
    return 0;
  case HERALD__ERROR_CODE__ERR_AUTH:
    snprintf(c->err, sizeof(c->err), "relay %s: relay error %s: %s",
             c->cur_addr, hd_err_name(code), m);
    conn_close(c);
    return set_fatal(c, HERALD_ERR_AUTH);
  case HERALD__ERROR_CODE__ERR_BAD_REQUEST:
  case HERALD__ERROR_CODE__ERR_VERSION:
  case HERALD__ERROR_CODE__ERR_SNAPSHOT:
    snprintf(c->err, sizeof(c->err), "relay %s: relay error %s: %s",
             c->cur_addr, hd_err_name(code), m);
    conn_close(c);
    return set_fatal(c, HERALD_ERR_REFUSED);
  default:
    relay_fail(c, "relay %s: relay error %s: %s", c->cur_addr,
               hd_err_name(code), m);
    return 0;
  }
}

/* A whole snapshot chunk was handed out: the position to resume after. */
static void snap_moved(herald_client_t *c, const Herald__SnapshotChunk *ch) {
  if (ch == NULL || ch->position == NULL)
    return;
  size_t n = herald__snapshot_position__get_packed_size(ch->position);
  free(c->snap_pos);
  c->snap_pos = hd_malloc(n + 1);
  c->snap_pos_len = herald__snapshot_position__pack(ch->position, c->snap_pos);
  c->snap_done = ch->position->done;
  free(c->snap_hex);
  c->snap_hex = NULL;
}

/* Take pw into the window handed out next, or drop what of it was handed
 * out before. @returns 1 to hand it out, 0 to go on, <0 fatal. */
static int take_window(herald_client_t *c, const Herald__Window *pw) {
  herald_window_t *w = &c->win;
  if (!c->in_window) {
    if (c->resume.scn) {
      /* The first window after a failover in the middle of one must be
       * that window again, from its start. */
      if (pw->scn != c->resume.scn || pw->chunk != 0) {
        snprintf(c->err, sizeof(c->err),
                 "relay %s sent SCN %" PRIu64 " chunk %u after a failover "
                 "in the middle of the window at SCN %" PRIu64,
                 c->cur_addr, pw->scn, pw->chunk, c->resume.scn);
        conn_close(c);
        return set_fatal(c, HERALD_ERR_INCONSISTENT);
      }
      c->in_window = 1;
      c->win_scn = pw->scn;
      c->rows_done = c->skip_rows = c->resume.rows;
      c->ddl_done = c->skip_ddl = c->resume.ddl;
      c->chunk_next = c->resume.chunk;
      memset(&c->resume, 0, sizeof(c->resume));
    } else if (pw->snapshot) {
      /* A snapshot chunk is the state at the position reached: its SCN
       * is that of the last window, not a new one. */
      if (!c->conf->snap || c->snap_done || pw->scn < c->delivered_scn) {
        relay_fail(c,
                   "relay %s sent a snapshot chunk at SCN %" PRIu64
                   " (position %" PRIu64 ")%s",
                   c->cur_addr, pw->scn, c->delivered_scn,
                   c->conf->snap && !c->snap_done ? "" : " unasked");
        return 0;
      }
      c->in_window = 1;
      c->in_snap = 1;
      c->win_scn = pw->scn;
      c->rows_done = c->ddl_done = c->skip_rows = c->skip_ddl = 0;
      c->chunk_next = 0;
    } else {
      if (pw->scn <= c->delivered_scn) {
        /* Never twice in a client's life: a relay resumes after the
         * position, so this is only a relay's mistake. */
        relay_fail(c, "relay %s sent SCN %" PRIu64 ", not after %" PRIu64,
                   c->cur_addr, pw->scn, c->delivered_scn);
        return 0;
      }
      c->in_window = 1;
      c->win_scn = pw->scn;
      c->rows_done = c->ddl_done = c->skip_rows = c->skip_ddl = 0;
      c->chunk_next = 0;
    }
  } else if (pw->scn != c->win_scn) {
    relay_fail(
        c, "relay %s sent SCN %" PRIu64 " inside the window at SCN %" PRIu64,
        c->cur_addr, pw->scn, c->win_scn);
    return 0;
  }
  /* Table definitions: every new (table, version) is kept and handed out
   * with the next chunk that is. */
  for (size_t i = 0; i < pw->n_schemas; i++) {
    int added;
    const herald_schema_t *s =
        hl_schemas_add(&c->schemas, pw->schemas[i], &added);
    if (s && added) {
      if (w->nschemas == w->schemas_cap) {
        w->schemas_cap = w->schemas_cap ? w->schemas_cap * 2 : 8;
        w->schemas =
            hd_realloc(w->schemas, w->schemas_cap * sizeof(w->schemas[0]));
      }
      w->schemas[w->nschemas++] = s;
    }
  }
  size_t row0 = 0, ddl0 = 0;
  if (c->skip_rows) {
    row0 = pw->n_changes < c->skip_rows ? pw->n_changes : c->skip_rows;
    c->skip_rows -= row0;
  }
  if (c->skip_ddl) {
    ddl0 = pw->n_ddl < c->skip_ddl ? pw->n_ddl : c->skip_ddl;
    c->skip_ddl -= ddl0;
  }
  int last = !pw->more_chunks;
  size_t nrows = pw->n_changes - row0, nddl = pw->n_ddl - ddl0;
  if (!last && nrows == 0 && nddl == 0)
    return 0; /* all of it was handed out before */
  w->pw = pw;
  w->row0 = row0;
  w->ddl0 = ddl0;
  w->chunk = c->chunk_next++;
  w->last = last;
  w->row_base = c->rows_done;
  c->rows_done += nrows;
  c->ddl_done += nddl;
  if (last) {
    c->in_window = 0;
    c->delivered_scn = pw->scn;
    if (c->in_snap) {
      c->in_snap = 0;
      snap_moved(c, pw->snapshot);
    } else {
      c->delivered_ts = pw->ts_ms;
    }
  }
  return 1;
}

/* Handle one whole frame. @returns <0 fatal, else 0. */
static int on_frame(herald_client_t *c, Herald__Frame *f) {
  if (!c->handshaken) {
    c->handshaken = 1;
    if (c->cur >= 0)
      c->cur_server_id = c->relays[c->cur].server_id
                             ? c->relays[c->cur].server_id
                             : c->cur_server_id;
  }
  /* A relay that serves (not one whose first word is an Error: a refusal,
   * ERR_TOO_MANY, ERR_UNAVAILABLE) ends the round: every relay may be
   * tried again, without backoff. */
  if (!c->serving && f->msg_case != HERALD__FRAME__MSG_ERROR) {
    c->serving = 1;
    c->state = HERALD_STATE_STREAMING;
    c->backoff_ms = 0;
    c->waiting_reported = 0;
    for (size_t j = 0; j < c->nrelays; j++)
      c->relays[j].tried = 0;
  }
  switch (f->msg_case) {
  case HERALD__FRAME__MSG_BATCH:
    c->frame = f;
    c->fwin = 0;
    return 0;
  case HERALD__FRAME__MSG_HEARTBEAT: {
    const Herald__Heartbeat *h = f->heartbeat;
    c->newest_scn = h->newest_scn;
    c->newest_ts = h->newest_ts_ms;
    /* Everything before the heartbeat was handed out: its position is
     * one to resume after (idle or filtered streams move so). */
    if (!c->in_window && !c->resume.scn && h->position > c->delivered_scn) {
      c->delivered_scn = h->position;
      if (h->position == h->newest_scn)
        c->delivered_ts = h->newest_ts_ms;
    }
    return 0;
  }
  case HERALD__FRAME__MSG_ERROR: {
    int rc = on_error_frame(c, f->error);
    return rc < 0 ? rc : 0;
  }
  default:
    relay_fail(c, "relay %s sent an unexpected frame", c->cur_addr);
    return 0;
  }
}

/* The connection dropped or sent garbage before or after its first
 * frame: say what answered. */
static void read_failed(herald_client_t *c, ssize_t n, int e) {
  char ex[256];
  excerpt(c->first, c->nfirst, ex, sizeof(ex));
  if (n < 0)
    relay_fail(c, "read from %s: %s", c->cur_addr, strerror(e));
  else if (c->handshaken)
    relay_fail(c, "the relay %s closed the connection", c->cur_addr);
  else if (c->nfirst)
    relay_fail(c,
               "%s is not a herald relay: it closed the connection before a "
               "whole frame; it sent '%s'",
               c->cur_addr, ex);
  else
    relay_fail(c, "%s closed the connection without a word: not a herald relay",
               c->cur_addr);
}

/* The fatal status once, then that the client stopped. */
static int fatal_status(herald_client_t *c) {
  if (c->fatal_told)
    return HERALD_ERR_FAILED;
  c->fatal_told = 1;
  return c->fatal;
}

int herald_poll(herald_client_t *c, int timeout_ms,
                const herald_window_t **out) {
  int64_t start = mono_ms();
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + timeout_ms;
  c->win.nschemas = 0;
  for (;;) {
    if (c->fatal)
      return fatal_status(c);
    /* 1. the next window of the batch in hand */
    if (c->frame) {
      const Herald__WindowBatch *b = c->frame->batch;
      while (c->frame && c->fwin < b->n_windows) {
        int rc = take_window(c, b->windows[c->fwin++]);
        if (rc < 0)
          return fatal_status(c);
        if (rc == 1) {
          *out = &c->win;
          return HERALD_OK;
        }
      }
      c->frame = NULL;
      /* A window the relay got wrong stops a client without failover
       * (relay_fail): stop here, before step 3 dials another relay and
       * takes the client out of HERALD_STATE_FAILED. */
      if (c->fatal)
        return fatal_status(c);
    }
    /* 2. the next frame from the bytes in hand */
    if (c->fd >= 0 && c->rpos < c->rlen) {
      hd_inbuf_t in = {c->rbuf, c->rlen, c->rpos};
      Herald__Frame *f = NULL;
      /* No frame is alive here (the last window handed out is no longer
       * valid: herald_poll() was called again). */
      hl_arena_reset(&c->arena);
      ssize_t d = hd_frame_decode(&c->dec, &in, &f);
      c->rpos = in.pos;
      if (d == 0) {
        int rc = on_frame(c, f);
        if (rc < 0)
          return fatal_status(c);
        continue;
      }
      if (d < 0) {
        char ex[256];
        excerpt(c->first, c->nfirst, ex, sizeof(ex));
        if (c->handshaken)
          relay_fail(c, "bad frame from the relay %s: %s", c->cur_addr,
                     c->dec.errmsg);
        else
          relay_fail(c, "%s is not a herald relay: it sent '%s' (%s)",
                     c->cur_addr, ex, c->dec.errmsg);
        continue;
      }
      c->rpos = c->rlen = 0; /* the decoder keeps a partial frame */
    }
    int64_t now = mono_ms();
    /* 3. a connection, or the wait before the next round */
    if (c->fd < 0) {
      if (c->state == HERALD_STATE_WAITING && now < c->next_try_ms) {
        int64_t until = c->next_try_ms < deadline ? c->next_try_ms : deadline;
        if (until > now) {
          struct timespec ts = {(time_t)((until - now) / 1000),
                                (long)((until - now) % 1000) * 1000000};
          nanosleep(&ts, NULL);
        }
        if (mono_ms() >= deadline)
          return HERALD_TIMED_OUT;
        continue;
      }
      int rc = conn_open(c);
      if (rc < 0)
        return fatal_status(c);
      if (mono_ms() >= deadline && c->fd < 0)
        return HERALD_TIMED_OUT;
      continue;
    }
    /* 4. bytes from the relay, within the nearest deadline */
    int64_t limit = c->handshaken ? c->last_rx_ms + c->conf->stall_ms
                                  : c->conn_ms + c->conf->connect_ms;
    int64_t until = limit < deadline ? limit : deadline;
    struct pollfd p = {c->fd, POLLIN, 0};
    int wait = until > now
                   ? (until - now > INT32_MAX ? INT32_MAX : (int)(until - now))
                   : 0;
    /* A TLS record read in part is in OpenSSL's buffer, not the socket. */
    int pr = c->ssl && SSL_pending(c->ssl) > 0 ? 1 : poll(&p, 1, wait);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0) {
      now = mono_ms();
      if (now >= limit) {
        char ex[256];
        excerpt(c->first, c->nfirst, ex, sizeof(ex));
        char dur[32];
        if (c->handshaken) {
          fmt_ms(dur, sizeof(dur), c->conf->stall_ms);
          relay_fail(c,
                     "the relay %s sent nothing, not even a heartbeat, for %s",
                     c->cur_addr, dur);
        } else if (c->nfirst) {
          fmt_ms(dur, sizeof(dur), c->conf->connect_ms);
          relay_fail(c,
                     "%s is not a herald relay: it sent '%s', then nothing "
                     "for %s and no whole frame",
                     c->cur_addr, ex, dur);
        } else {
          fmt_ms(dur, sizeof(dur), c->conf->connect_ms);
          relay_fail(c,
                     "%s sent nothing within %s of connecting: not a herald "
                     "relay (its consumer port is relay.listen, not "
                     "relay.http), or one too busy to answer",
                     c->cur_addr, dur);
        }
        continue;
      }
      if (now >= deadline)
        return HERALD_TIMED_OUT;
      continue;
    }
    ssize_t n;
    if (c->rlen == c->rcap && c->rcap < RBUF_MAX) {
      /* The last read filled the buffer, and all of it was handled. */
      free(c->rbuf);
      c->rcap *= 2;
      c->rbuf = hd_malloc(c->rcap);
      c->rlen = c->rpos = 0;
    }
    if (c->ssl) {
      size_t got = 0;
      ERR_clear_error();
      int rc = SSL_read_ex(c->ssl, c->rbuf, c->rcap, &got);
      int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        continue;
      if (e == SSL_ERROR_SSL) {
        char te[400];
        tls_errors(te, sizeof(te));
        if (c->handshaken)
          relay_fail(c, "TLS from %s: %s", c->cur_addr, te);
        else
          relay_fail(c,
                     "TLS with %s ended before the first frame: %s (a relay "
                     "with relay.tls_client_ca_file wants tls_cert_file and "
                     "tls_key_file)",
                     c->cur_addr, te);
        continue;
      }
      n = e == SSL_ERROR_NONE               ? (ssize_t)got
          : e == SSL_ERROR_SYSCALL && errno ? -1
                                            : 0;
    } else {
      n = read(c->fd, c->rbuf, c->rcap);
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0) {
      read_failed(c, n, errno);
      continue;
    }
    c->last_rx_ms = mono_ms();
    if (!c->handshaken) {
      /* a slow first batch: the peer has connect_timeout_ms per step */
      c->conn_ms = c->last_rx_ms;
      if (c->nfirst < sizeof(c->first)) {
        size_t k = sizeof(c->first) - c->nfirst < (size_t)n
                       ? sizeof(c->first) - c->nfirst
                       : (size_t)n;
        memcpy(c->first + c->nfirst, c->rbuf, k);
        c->nfirst += k;
      }
    }
    c->rlen = (size_t)n;
    c->rpos = 0;
  }
}

/* ------------------------------------------------------------- dispatch */

const herald_schema_t *herald_change_schema(herald_client_t *c,
                                            const herald_change_t *ch) {
  return hl_schemas_find(&c->schemas, herald_change_db(ch),
                         herald_change_table(ch),
                         herald_change_schema_version(ch));
}

int herald_change_owned(herald_client_t *c, const herald_change_t *ch,
                        int image) {
  return c ? hl_owned(&c->owned, ch, image) : HERALD_ERR_ARG;
}

int herald_window_json(herald_client_t *c, const herald_window_t *w,
                       unsigned flags, const char **out, size_t *len) {
  return hl_json_window(&c->json, w, flags, c->conf->tables, c->conf->ntables,
                        out, len);
}

int herald_dispatch(herald_client_t *c, const herald_callbacks_t *cb, void *ud,
                    int timeout_ms) {
  const herald_window_t *w;
  int rc = herald_poll(c, timeout_ms, &w);
  if (rc != HERALD_OK)
    return rc;
  if (w->chunk == 0 && cb->window_begin && (rc = cb->window_begin(ud, w)))
    return rc;
  for (size_t i = 0; cb->schema && i < w->nschemas; i++)
    if ((rc = cb->schema(ud, w->schemas[i])))
      return rc;
  /* Statements where they stand among the row changes: row_index counts
   * the window's rows before filtering, so a statement goes before the
   * first delivered row whose place it precedes; with a filter the exact
   * place among removed rows is unknown, and a statement whose index is
   * past this chunk's rows goes at the chunk's end. */
  size_t nd = herald_window_ddls(w), nr = herald_window_changes(w), d = 0;
  for (size_t i = 0; i < nr; i++) {
    while (cb->ddl && d < nd &&
           herald_ddl_row_index(herald_window_ddl(w, d)) <= w->row_base + i) {
      if ((rc = cb->ddl(ud, w, herald_window_ddl(w, d))))
        return rc;
      d++;
    }
    if (cb->change && (rc = cb->change(ud, w, herald_window_change(w, i))))
      return rc;
  }
  for (; cb->ddl && d < nd; d++)
    if ((rc = cb->ddl(ud, w, herald_window_ddl(w, d))))
      return rc;
  if (w->last && cb->window_end && (rc = cb->window_end(ud, w)))
    return rc;
  return HERALD_OK;
}
