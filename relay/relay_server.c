/*
 * relay_server.c - consumer connections: subscribe, filter, stream.
 */
#include "relay_server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hd_err.h"
#include "hd_frame.h"
#include "hd_log.h"
#include "hd_time.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_pbwire.h"
#include "relay_filter.h"
#include "herald.pb-c.h"

/* A connection keeps writing while less than this is queued in the kernel
 * and libuv; above it, it waits for write callbacks. This is what bounds
 * the memory a stalled consumer can pin. */
#define HIGH_WATER (4u << 20)
#define DEFAULT_BATCH (1u << 20)
#define DISK_BATCH_BYTES (1u << 20)
#define DISK_BATCH_WINDOWS 4096
/* Windows read back from disk are not in the ring, so they are memory on
 * top of relay.buffer_bytes: all connections together hold at most this
 * much of them (read or in flight); the rest wait their turn. */
#define DISK_BUDGET (32u << 20)

enum { C_HANDSHAKE, C_RING, C_DISK, C_CLOSED };

typedef struct relay_conn relay_conn_t;

struct relay_conn {
  uv_tcp_t tcp;
  relay_server_t *srv;
  relay_conn_t *prev, *next;
  uint64_t id;
  char peer[80];
  hd_frame_dec_t dec;
  int state;
  int closing;
  int work_busy;             /* a disk read is running on a worker thread */
  int disk_wait;             /* waiting for the disk budget */
  size_t disk_held;          /* its share of the disk budget */
  uint64_t last_progress_ms; /* when a write last completed */
  int subscribed;            /* counted in metrics */
  /* subscription */
  char *client_id;
  relay_filter_t filt;
  uint32_t max_batch;
  /* position */
  uint64_t cursor;   /* ring sequence number of the next window (C_RING) */
  uint64_t last_scn; /* newest SCN sent */
  relay_store_reader_t *reader; /* C_DISK */
  /* flow */
  size_t inflight;
  uint64_t last_send_ms;
};

struct relay_server {
  relay_server_opts_t o;
  uv_tcp_t listener;
  uv_timer_t hb_timer;
  relay_conn_t *conns;
  size_t nconns;
  uint64_t next_id;
  int closing;
  int open_handles;
  size_t disk_mem; /* memory of windows read from disk, not yet written */
};

static void conn_pump(relay_conn_t *c);
static void conn_close(relay_conn_t *c, const char *why);

/* ------------------------------------------------------------ lifetime */

static void conn_free(relay_conn_t *c) {
  relay_server_t *s = c->srv;
  hd_frame_dec_free(&c->dec);
  if (c->reader)
    relay_store_reader_close(c->reader);
  relay_filter_free(&c->filt);
  free(c->client_id);
  free(c);
  if (--s->open_handles == 0 && s->closing)
    free(s);
}

static void conn_close_cb(uv_handle_t *h) {
  relay_conn_t *c = h->data;
  /* A disk read still running on a worker finishes first; its callback
   * frees the connection. */
  if (c->work_busy) {
    c->state = C_CLOSED;
    return;
  }
  conn_free(c);
}

static void conn_close(relay_conn_t *c, const char *why) {
  if (c->closing)
    return;
  c->closing = 1;
  relay_server_t *s = c->srv;
  if (why)
    hd_log(HD_LL_INFO, "server", "consumer closed",
           "conn=%" PRIu64 " peer=%s client=%s reason=\"%s\"", c->id, c->peer,
           c->client_id ? c->client_id : "-", why);
  if (c->subscribed)
    RM_ADD(s->o.m, consumers, (uint64_t)-1);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
  uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

/* ------------------------------------------------------------- writing */

typedef struct {
  uv_write_t req;
  relay_conn_t *c;
  size_t disk_mem; /* of wins, when they came from disk */
  relay_win_t **wins;
  size_t nwins, capwins;
  uv_buf_t *bufs;
  size_t nbufs, capbufs;
  uint8_t *arena; /* frame prefixes and re-encoded rows */
  size_t alen, acap;
  size_t bytes;
} wreq_t;

static void wr_buf(wreq_t *w, const void *p, size_t n) {
  if (n == 0)
    return;
  if (w->nbufs == w->capbufs) {
    w->capbufs = w->capbufs ? w->capbufs * 2 : 16;
    w->bufs = hd_realloc(w->bufs, w->capbufs * sizeof(uv_buf_t));
  }
  /* Consecutive ranges of one buffer merge into one uv_buf_t. */
  if (w->nbufs && w->bufs[w->nbufs - 1].base + w->bufs[w->nbufs - 1].len ==
                      (const char *)p) {
    w->bufs[w->nbufs - 1].len += n;
  } else {
    w->bufs[w->nbufs++] = uv_buf_init((char *)p, (unsigned)n);
  }
  w->bytes += n;
}

/* Arena offsets, not pointers: the arena may move while it grows, so the
 * bufs pointing into it are fixed up before the write (see wr_finish). */
static size_t ar_put(wreq_t *w, const void *p, size_t n) {
  if (w->alen + n > w->acap) {
    size_t cap = w->acap ? w->acap * 2 : 256;
    while (cap < w->alen + n)
      cap *= 2;
    w->arena = hd_realloc(w->arena, cap);
    w->acap = cap;
  }
  memcpy(w->arena + w->alen, p, n);
  w->alen += n;
  return w->alen - n;
}

static void disk_budget_free(relay_server_t *s, size_t n);

static void write_cb(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  relay_conn_t *c = w->c;
  for (size_t i = 0; i < w->nwins; i++)
    relay_win_release(w->wins[i]);
  c->inflight -= w->bytes;
  c->last_progress_ms = hd_now_ms();
  if (w->disk_mem) {
    c->disk_held -= w->disk_mem;
    disk_budget_free(c->srv, w->disk_mem);
  }
  free(w->wins);
  free(w->bufs);
  free(w->arena);
  free(w);
  if (status < 0) {
    conn_close(c, uv_strerror(status));
    return;
  }
  if (!c->closing)
    conn_pump(c);
}

static int wr_send(relay_conn_t *c, wreq_t *w) {
  w->c = c;
  c->inflight += w->bytes;
  c->last_send_ms = hd_now_ms();
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs,
                    (unsigned)w->nbufs, write_cb);
  if (rc < 0) {
    c->inflight -= w->bytes;
    if (w->disk_mem) {
      c->disk_held -= w->disk_mem;
      disk_budget_free(c->srv, w->disk_mem);
    }
    for (size_t i = 0; i < w->nwins; i++)
      relay_win_release(w->wins[i]);
    free(w->wins);
    free(w->bufs);
    free(w->arena);
    free(w);
    conn_close(c, uv_strerror(rc));
  }
  return rc;
}

/* Sends one protobuf Frame built in memory (heartbeats, errors). */
static void send_frame(relay_conn_t *c, const Herald__Frame *f) {
  uint8_t *buf;
  size_t len;
  if (hd_frame_encode(f, (uint32_t)c->srv->o.conf->relay.max_frame_bytes, &buf,
                      &len) < 0)
    return;
  wreq_t *w = hd_calloc(1, sizeof(*w));
  w->arena = buf;
  w->acap = w->alen = len;
  wr_buf(w, buf, len);
  wr_send(c, w);
}

static void send_error(relay_conn_t *c, int err, uint64_t oldest,
                       const char *msg) {
  Herald__Frame f = HERALD__FRAME__INIT;
  Herald__Error e = HERALD__ERROR__INIT;
  e.code = hd_err_to_wire(err);
  e.message = (char *)msg;
  e.oldest_scn = oldest;
  f.msg_case = HERALD__FRAME__MSG_ERROR;
  f.error = &e;
  send_frame(c, &f);
}

/* ------------------------------------------------------------ batching */

/* One window as this consumer gets it: [start,len) ranges of w->buf or
 * arena offsets, collected into plan arrays before the batch header
 * (which needs the total length) is written. */
typedef struct {
  int arena; /* 1: off is in the arena */
  size_t off;
  size_t len;
} piece_t;

typedef struct {
  piece_t *v;
  size_t n, cap;
} plan_t;

static void plan_add(plan_t *pl, int arena, size_t off, size_t len) {
  if (len == 0)
    return;
  if (pl->n && !arena && !pl->v[pl->n - 1].arena &&
      pl->v[pl->n - 1].off + pl->v[pl->n - 1].len == off) {
    pl->v[pl->n - 1].len += len;
    return;
  }
  if (pl->n == pl->cap) {
    pl->cap = pl->cap ? pl->cap * 2 : 16;
    pl->v = hd_realloc(pl->v, pl->cap * sizeof(piece_t));
  }
  pl->v[pl->n++] = (piece_t){arena, off, len};
}

/* Plans window w for this consumer; returns its encoded length. */
static size_t plan_window(relay_conn_t *c, wreq_t *wr, const relay_win_t *w,
                          plan_t *pl) {
  relay_filter_t *f = &c->filt;
  if (relay_filter_all(f)) {
    plan_add(pl, 0, 0, w->len);
    return w->len;
  }
  relay_filter_window(f, w);
  size_t total = w->hdr_len;
  plan_add(pl, 0, 0, w->hdr_len);
  for (uint32_t i = 0; i < w->nrows; i++) {
    const relay_row_t *r = &w->rows[i];
    if (!relay_filter_row(f, r))
      continue;
    int pj = f->nproj ? relay_filter_proj(f, w->tables[r->table]) : -1;
    if (pj < 0) {
      plan_add(pl, 0, r->off, r->len);
      total += r->len;
    } else {
      size_t len;
      relay_bytes_t ab = {wr->arena, wr->alen, wr->acap};
      size_t off =
          relay_filter_project(f, pj, w->buf + r->off, r->len, &ab, &len);
      wr->arena = ab.p;
      wr->alen = ab.len;
      wr->acap = ab.cap;
      plan_add(pl, 1, off, len);
      total += len;
    }
  }
  /* Schema changes by the tables they name (adjacent ones merge into one
   * piece, so an unfiltered run costs what one range did). */
  for (uint32_t i = 0; i < w->nddl; i++) {
    const relay_ddl_t *d = &w->ddls[i];
    if (!relay_filter_ddl(f, d))
      continue;
    plan_add(pl, 0, d->off, d->len);
    total += d->len;
  }
  return total;
}

/* Sends wins[0..n) (references pass to the write) as one WindowBatch;
 * disk_mem is their memory when they were read from disk (freed from the
 * disk budget once written). */
static void send_batch(relay_conn_t *c, relay_win_t **wins, size_t n,
                       size_t disk_mem) {
  wreq_t *wr = hd_calloc(1, sizeof(*wr));
  wr->disk_mem = disk_mem;
  plan_t *plans = hd_calloc(n, sizeof(plan_t));
  size_t *lens = hd_malloc(n * sizeof(size_t));
  size_t batch = 0;
  for (size_t i = 0; i < n; i++) {
    lens[i] = plan_window(c, wr, wins[i], &plans[i]);
    batch += 1 + hd_pb_varint_len(lens[i]) + lens[i];
  }
  size_t frame = 1 + hd_pb_varint_len(batch) + batch;
  /* Prefixes first, into the arena, so its final address is known before
   * any buf points into it. */
  uint8_t tmp[16];
  size_t hoff = wr->alen;
  tmp[0] = (uint8_t)(frame >> 24);
  tmp[1] = (uint8_t)(frame >> 16);
  tmp[2] = (uint8_t)(frame >> 8);
  tmp[3] = (uint8_t)frame;
  tmp[4] = (2u << 3) | 2; /* Frame.batch */
  size_t hl = 5 + hd_pb_varint(tmp + 5, batch);
  ar_put(wr, tmp, hl);
  size_t *poff = hd_malloc(n * sizeof(size_t));
  for (size_t i = 0; i < n; i++) {
    tmp[0] = (1u << 3) | 2; /* WindowBatch.windows */
    size_t l = 1 + hd_pb_varint(tmp + 1, lens[i]);
    poff[i] = ar_put(wr, tmp, l);
  }
  /* Now lay out the bufs. */
  wr_buf(wr, wr->arena + hoff, hl);
  for (size_t i = 0; i < n; i++) {
    wr_buf(wr, wr->arena + poff[i], 1 + hd_pb_varint_len(lens[i]));
    for (size_t k = 0; k < plans[i].n; k++) {
      piece_t *pc = &plans[i].v[k];
      wr_buf(wr, pc->arena ? wr->arena + pc->off : wins[i]->buf + pc->off,
             pc->len);
    }
    free(plans[i].v);
  }
  free(plans);
  free(lens);
  free(poff);
  wr->wins = wins;
  wr->nwins = n;
  c->last_scn = wins[n - 1]->scn;
  RM_ADD(c->srv->o.m, sent_windows, n);
  RM_ADD(c->srv->o.m, sent_bytes, 4 + frame);
  wr_send(c, wr);
}

/* ---------------------------------------------------------- disk reads */

typedef struct {
  uv_work_t work;
  relay_conn_t *c;
  relay_win_t **wins;
  size_t n;
  size_t mem; /* charged to the disk budget */
  int rc;     /* 0: got some, 1: at the end, <0: error */
  char err[256];
} dwork_t;

static void disk_work(uv_work_t *req) {
  dwork_t *d = req->data;
  relay_conn_t *c = d->c;
  relay_wb_t *wb = relay_wb_new();
  size_t bytes = 0, cap = 64;
  d->wins = hd_malloc(cap * sizeof(relay_win_t *));
  d->rc = 0;
  while (bytes < DISK_BATCH_BYTES && d->n < DISK_BATCH_WINDOWS) {
    uint64_t scn, ts;
    const void *data;
    size_t len;
    int rc = relay_store_reader_next(c->reader, &scn, &ts, &data, &len);
    if (rc != 0) {
      d->rc = rc;
      if (rc < 0)
        snprintf(d->err, sizeof(d->err), "log store read failed: %s",
                 hd_strerror(rc));
      break;
    }
    uint8_t *copy = hd_malloc(len);
    memcpy(copy, data, len);
    relay_win_t *w = relay_win_from_packed(wb, copy, len);
    if (w == NULL) {
      free(copy);
      d->rc = -1;
      snprintf(d->err, sizeof(d->err),
               "log store window at scn %" PRIu64 " does not decode", scn);
      break;
    }
    if (d->n == cap) {
      cap *= 2;
      d->wins = hd_realloc(d->wins, cap * sizeof(relay_win_t *));
    }
    d->wins[d->n++] = w;
    bytes += len;
  }
  relay_wb_free(wb);
}

/* Replaces the up-front charge of a disk batch by what it holds.
 * @locality loop thread */
static void disk_recharge(relay_server_t *s, dwork_t *d) {
  size_t real = 0;
  for (size_t i = 0; i < d->n; i++)
    real += d->wins[i]->mem;
  s->disk_mem = s->disk_mem - d->mem + real;
  d->mem = real;
}

static void disk_done(uv_work_t *req, int status) {
  dwork_t *d = req->data;
  relay_conn_t *c = d->c;
  c->work_busy = 0;
  disk_recharge(c->srv, d);
  if (c->state == C_CLOSED || c->closing || status < 0) {
    disk_budget_free(c->srv, d->mem);
    for (size_t i = 0; i < d->n; i++)
      relay_win_release(d->wins[i]);
    free(d->wins);
    int closed = c->state == C_CLOSED;
    free(d);
    if (closed)
      conn_free(c);
    return;
  }
  if (d->rc < 0) {
    disk_budget_free(c->srv, d->mem);
    RM_ERR(c->srv->o.m, STORE);
    hd_log(HD_LL_ERROR, "server", "disk read failed",
           "conn=%" PRIu64 " error=\"%s\"", c->id, d->err);
    for (size_t i = 0; i < d->n; i++)
      relay_win_release(d->wins[i]);
    free(d->wins);
    free(d);
    send_error(c, HD_EUNAVAILABLE, 0, "log store read failed");
    conn_close(c, "log store read failed");
    return;
  }
  if (d->n > 0) {
    /* Windows the ring also has are fine to send from disk: the cursor is
     * by SCN, and send_batch moves last_scn. */
    c->disk_held += d->mem;
    send_batch(c, d->wins, d->n, d->mem);
  } else {
    disk_budget_free(c->srv, d->mem);
    free(d->wins);
  }
  int at_end = d->rc == 1;
  free(d);
  if (c->closing)
    return;
  /* Back to the ring when it covers what comes next. */
  uint64_t seq;
  (void)at_end;
  if (relay_ring_seek(c->srv->o.ring, c->last_scn, &seq) == 0) {
    relay_store_reader_close(c->reader);
    c->reader = NULL;
    c->state = C_RING;
    c->cursor = seq;
    hd_log(HD_LL_DEBUG, "server", "consumer back on the ring",
           "conn=%" PRIu64 " scn=%" PRIu64, c->id, c->last_scn);
  }
  conn_pump(c);
}

/* Gives back disk-read memory and lets waiting connections read. */
static void disk_budget_free(relay_server_t *s, size_t n) {
  s->disk_mem -= n;
  for (relay_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (s->disk_mem >= DISK_BUDGET)
      break;
    if (c->disk_wait && !c->closing) {
      c->disk_wait = 0;
      conn_pump(c);
    }
  }
}

static void disk_start(relay_conn_t *c) {
  relay_server_t *s = c->srv;
  if (c->work_busy)
    return;
  if (s->disk_mem + DISK_BATCH_BYTES > DISK_BUDGET) {
    c->disk_wait = 1;
    return;
  }
  /* Charge a whole batch up front; the worker's real size replaces it. */
  s->disk_mem += DISK_BATCH_BYTES;
  dwork_t *d = hd_calloc(1, sizeof(*d));
  d->mem = DISK_BATCH_BYTES;
  d->c = c;
  d->work.data = d;
  c->work_busy = 1;
  int rc = uv_queue_work(c->srv->o.loop, &d->work, disk_work, disk_done);
  if (rc < 0) {
    c->work_busy = 0;
    free(d);
    s->disk_mem -= DISK_BATCH_BYTES;
    conn_close(c, uv_strerror(rc));
  }
}

/* Switch to reading from disk after last_scn. */
static int to_disk(relay_conn_t *c) {
  int rc = relay_store_reader_open(c->srv->o.store, c->last_scn, &c->reader);
  if (rc < 0)
    return rc;
  c->state = C_DISK;
  hd_log(HD_LL_DEBUG, "server", "consumer reads from disk",
         "conn=%" PRIu64 " after_scn=%" PRIu64, c->id, c->last_scn);
  return 0;
}

/* ----------------------------------------------------------------- pump */

static void conn_pump(relay_conn_t *c) {
  relay_server_t *s = c->srv;
  while (!c->closing && c->inflight < HIGH_WATER) {
    if (c->state == C_DISK) {
      disk_start(c);
      return;
    }
    if (c->state != C_RING)
      return;
    relay_ring_t *r = s->o.ring;
    if (c->cursor < r->first) {
      /* Evicted while this consumer was slow: continue from disk. */
      int rc = to_disk(c);
      if (rc < 0) {
        send_error(c, HD_ESCN_TOO_OLD, relay_store_first_scn(s->o.store),
                   "windows after the consumer's position are gone");
        conn_close(c, "position lost");
        return;
      }
      continue;
    }
    if (c->cursor >= r->end)
      return; /* caught up: relay_server_notify() wakes us */
    size_t cap = 64, n = 0, bytes = 0;
    relay_win_t **wins = hd_malloc(cap * sizeof(relay_win_t *));
    while (c->cursor < r->end && bytes < c->max_batch) {
      relay_win_t *w = relay_ring_at(r, c->cursor++);
      /* A window read from disk may reach the ring afterwards (the
       * fetcher stores before it publishes): never send it twice. */
      if (w->scn <= c->last_scn)
        continue;
      if (n == cap) {
        cap *= 2;
        wins = hd_realloc(wins, cap * sizeof(relay_win_t *));
      }
      wins[n++] = relay_win_ref(w);
      bytes += w->len;
    }
    if (n == 0) {
      free(wins);
      continue;
    }
    send_batch(c, wins, n, 0);
  }
}

void relay_server_notify(relay_server_t *s) {
  for (relay_conn_t *c = s->conns; c; c = c->next)
    if (c->state == C_RING && c->inflight < HIGH_WATER)
      conn_pump(c);
}

/* ------------------------------------------------------------ subscribe */

/* Constant-time comparison, so the token cannot be guessed by timing. */
static int token_ok(const char *want, const char *got) {
  size_t a = strlen(want), b = got ? strlen(got) : 0;
  unsigned diff = (unsigned)(a ^ b);
  for (size_t i = 0; i < a; i++)
    diff |= (unsigned)(want[i] ^ (i < b ? got[i] : 0));
  return diff == 0;
}

static void reject(relay_conn_t *c, int err, uint64_t oldest, const char *msg) {
  send_error(c, err, oldest, msg);
  RM_ERR(c->srv->o.m, PROTOCOL);
  conn_close(c, msg);
}

/* Retention decides what history exists: older positions need a
 * bootstrap, and the message says from where to go on. */
static void reject_too_old(relay_conn_t *c, uint64_t after) {
  relay_store_t *st = c->srv->o.store;
  char msg[256];
  snprintf(msg, sizeof(msg),
           "SCN %" PRIu64 " is older than the relay's retention; "
           "bootstrap, then subscribe from SCN %" PRIu64 " or later",
           after, relay_store_base_scn(st));
  reject(c, HD_ESCN_TOO_OLD, relay_store_first_scn(st), msg);
}

static void on_subscribe(relay_conn_t *c, const Herald__Subscribe *sub) {
  relay_server_t *s = c->srv;
  char msg[256];
  if (sub->protocol_version != 1) {
    snprintf(msg, sizeof(msg), "protocol version %u is not supported (1)",
             sub->protocol_version);
    reject(c, HD_EVERSION, 0, msg);
    return;
  }
  if (s->o.token && !token_ok(s->o.token, sub->token)) {
    reject(c, HD_EAUTH, 0, "bad or missing token");
    return;
  }
  c->client_id = hd_strdup(sub->client_id ? sub->client_id : "");
  if (relay_filter_init(&c->filt, sub, msg, sizeof(msg)) < 0) {
    reject(c, HD_EBAD_REQUEST, 0, msg);
    return;
  }
  c->max_batch = sub->max_batch_bytes ? sub->max_batch_bytes : DEFAULT_BATCH;
  if (c->max_batch > s->o.conf->relay.max_frame_bytes / 2)
    c->max_batch = (uint32_t)(s->o.conf->relay.max_frame_bytes / 2);

  /* Where to start. */
  relay_ring_t *r = s->o.ring;
  uint64_t after = 0;
  switch (sub->mode) {
  case HERALD__START_MODE__START_LATEST:
    c->state = C_RING;
    c->cursor = r->end;
    c->last_scn =
        r->end > r->first ? relay_ring_at(r, r->end - 1)->scn : r->prev_scn;
    break;
  case HERALD__START_MODE__START_EARLIEST:
    after = relay_store_base_scn(s->o.store);
    /* fall through */
  default:
    if (sub->mode == HERALD__START_MODE__START_SCN)
      after = sub->start_scn;
    c->last_scn = after;
    /* Retention decides what history exists, also for windows the ring
     * still happens to hold. */
    if (after < relay_store_base_scn(s->o.store)) {
      reject_too_old(c, after);
      return;
    }
    if (relay_ring_seek(r, after, &c->cursor) == 0) {
      c->state = C_RING;
    } else {
      int rc = to_disk(c);
      if (rc == RELAY_STORE_ETOO_OLD) {
        reject_too_old(c, after);
        return;
      }
      if (rc < 0) {
        reject(c, HD_EUNAVAILABLE, 0, "log store unavailable");
        return;
      }
    }
  }
  c->subscribed = 1;
  RM_ADD(s->o.m, consumers, 1);
  hd_log(HD_LL_INFO, "server", "consumer subscribed",
         "conn=%" PRIu64 " peer=%s client=%s after_scn=%" PRIu64
         " tables=%zu partition_fn=%d",
         c->id, c->peer, c->client_id, c->last_scn, c->filt.ntables,
         c->filt.part_fn);
  conn_pump(c);
}

/* -------------------------------------------------------------- reading */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = hd_malloc(64 * 1024);
  buf->len = 64 * 1024;
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  relay_conn_t *c = st->data;
  if (nread < 0) {
    free(buf->base);
    conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
    return;
  }
  hd_inbuf_t in = {(const uint8_t *)buf->base, (size_t)nread, 0};
  while (!c->closing && in.pos < in.size) {
    Herald__Frame *f = NULL;
    ssize_t rc = hd_frame_decode(&c->dec, &in, &f);
    if (rc > 0)
      break;
    if (rc < 0) {
      hd_log(HD_LL_WARN, "server", "malformed frame",
             "conn=%" PRIu64 " peer=%s error=\"%s\"", c->id, c->peer,
             c->dec.errmsg);
      reject(c, HD_EBAD_REQUEST, 0, c->dec.errmsg);
      break;
    }
    if (c->state == C_HANDSHAKE &&
        f->msg_case == HERALD__FRAME__MSG_SUBSCRIBE) {
      on_subscribe(c, f->subscribe);
    } else if (c->state != C_HANDSHAKE &&
               f->msg_case == HERALD__FRAME__MSG_HEARTBEAT) {
      /* a live consumer; nothing to do */
    } else {
      hd_log(HD_LL_WARN, "server", "unexpected frame",
             "conn=%" PRIu64 " peer=%s message=%d", c->id, c->peer,
             (int)f->msg_case);
      reject(c, HD_EBAD_REQUEST, 0,
             c->state == C_HANDSHAKE ? "the first frame must be Subscribe"
                                     : "unexpected frame");
    }
    hd_frame_free(f);
  }
  free(buf->base);
}

static void on_connection(uv_stream_t *ls, int status) {
  relay_server_t *s = ls->data;
  if (status < 0) {
    hd_log(HD_LL_WARN, "server", "accept failed", "error=\"%s\"",
           uv_strerror(status));
    return;
  }
  relay_conn_t *c = hd_calloc(1, sizeof(*c));
  c->srv = s;
  c->id = ++s->next_id;
  c->state = C_HANDSHAKE;
  c->last_progress_ms = hd_now_ms();
  hd_frame_dec_init(&c->dec, 1u << 20); /* consumers send small frames */
  uv_tcp_init(s->o.loop, &c->tcp);
  c->tcp.data = c;
  s->open_handles++;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c, "accept failed");
    return;
  }
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char host[64] = "?";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
    else
      uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host,
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (s->nconns > (size_t)s->o.conf->relay.max_connections) {
    reject(c, HD_ETOO_MANY, 0,
           "connection limit reached (relay.max_connections)");
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* A consumer that holds disk-read memory and has not taken a byte for this
 * long is disconnected when others wait for that memory: it may come back
 * from its checkpoint, and the others go on. */
#define STALL_MS 10000

static void drop_stalled(relay_server_t *s, uint64_t now) {
  int waiting = 0;
  for (relay_conn_t *c = s->conns; c && !waiting; c = c->next)
    waiting = c->disk_wait;
  if (!waiting)
    return;
  for (relay_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->disk_held > 0 && c->inflight > 0 &&
        now - c->last_progress_ms > STALL_MS)
      conn_close(c, "stalled while holding disk reads others wait for");
  }
}

/* Idle consumers get a heartbeat with the relay's newest SCN. */
static void hb_cb(uv_timer_t *t) {
  relay_server_t *s = t->data;
  uint64_t now = hd_now_ms();
  drop_stalled(s, now);
  Herald__Frame f = HERALD__FRAME__INIT;
  Herald__Heartbeat hb = HERALD__HEARTBEAT__INIT;
  hb.newest_scn = RM_GET(s->o.m, newest_scn);
  hb.newest_ts_ms = RM_GET(s->o.m, newest_ts_ms);
  hb.now_ms = now;
  f.msg_case = HERALD__FRAME__MSG_HEARTBEAT;
  f.heartbeat = &hb;
  for (relay_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->state != C_HANDSHAKE && c->inflight == 0 &&
        now - c->last_send_ms >= s->o.conf->relay.heartbeat_ms)
      send_frame(c, &f);
  }
}

static void srv_handle_closed(uv_handle_t *h) {
  relay_server_t *s = h->data;
  if (--s->open_handles == 0)
    free(s);
}

int relay_server_start(const relay_server_opts_t *o, relay_server_t **out,
                       char *errstr, size_t errlen) {
  relay_server_t *s = hd_calloc(1, sizeof(*s));
  s->o = *o;
  const hd_hostport_t *hp = &o->conf->relay.listen;
  struct sockaddr_storage ss;
  int rc = strchr(hp->host, ':')
               ? uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
  if (rc < 0) {
    snprintf(errstr, errlen, "relay.listen: '%s' is not an IP address: %s",
             hp->host, uv_strerror(rc));
    free(s);
    return rc;
  }
  uv_tcp_init(o->loop, &s->listener);
  s->listener.data = s;
  s->hb_timer.data = s;
  s->open_handles = 1;
  if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection)) < 0) {
    snprintf(errstr, errlen, "relay.listen %s:%u: %s", hp->host, hp->port,
             uv_strerror(rc));
    /* The server is freed by the close callback: run the loop once. */
    s->closing = 1;
    uv_close((uv_handle_t *)&s->listener, srv_handle_closed);
    *out = NULL;
    return rc;
  }
  uv_timer_init(o->loop, &s->hb_timer);
  s->hb_timer.data = s;
  s->open_handles++;
  uint64_t hbms = o->conf->relay.heartbeat_ms;
  uv_timer_start(&s->hb_timer, hb_cb, hbms / 2 ? hbms / 2 : 1,
                 hbms / 2 ? hbms / 2 : 1);
  *out = s;
  return 0;
}

void relay_server_close(relay_server_t *s) {
  if (s == NULL || s->closing)
    return;
  s->closing = 1;
  while (s->conns)
    conn_close(s->conns, "relay shutting down");
  uv_close((uv_handle_t *)&s->listener, srv_handle_closed);
  uv_close((uv_handle_t *)&s->hb_timer, srv_handle_closed);
}
