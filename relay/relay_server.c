/*
 * relay_server.c - consumer connections: subscribe, filter, stream.
 */
#include "relay_server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hd_err.h"
#include "hd_frame.h"
#include "hd_log.h"
#include "hd_time.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_pbwire.h"
#include "relay_filter.h"
#include "relay_schema.h"
#include "relay_snap.h"
#include "relay_tls.h"
#include "herald.pb-c.h"

/* The limits are keys (docs/relay.md, Flow control). relay.inflight_bytes:
 * a connection keeps writing while less than this is queued in the kernel
 * and libuv; above it, it waits for write callbacks. This is what bounds
 * the memory a stalled consumer can pin. relay.disk_read_budget: windows
 * read back from disk are not in the ring, so they are memory on top of
 * relay.buffer_bytes: all connections together hold at most this much of
 * them (read or in flight); the rest wait their turn. */
#define DEFAULT_BATCH (1u << 20)
/* The smallest max_frame_bytes a consumer may ask for: room for a window
 * header and a row of ordinary size. */
#define MIN_CONSUMER_FRAME (64u << 10)
#define DISK_BATCH_BYTES (1u << 20)
#define DISK_BATCH_WINDOWS 4096

enum { C_HANDSHAKE, C_RING, C_DISK, C_CLOSED };

/* What goes on the wire for this consumer is a list of Window messages,
 * each a list of pieces: ranges of a window's buffer (w->buf) or of the
 * write's arena (re-encoded rows, chunk fields), collected as offsets and
 * turned into uv bufs only once the arena has stopped moving. */
typedef struct {
  int arena; /* 1: off is in the arena */
  size_t off;
  size_t len;
} piece_t;

/* A message's pieces: most messages are one range of one window, so the
 * first pieces live inside it and take no allocation. */
#define MSG_INLINE 2
typedef struct {
  piece_t inl[MSG_INLINE];
  piece_t *heap; /* when more than MSG_INLINE */
  size_t n, cap;
  size_t len; /* bytes of the message */
  size_t win; /* index of its window in the batch */
} msg_t;

typedef struct {
  msg_t *v;
  size_t n, cap;
} msgs_t;

typedef struct relay_conn relay_conn_t;

struct relay_conn {
  uv_tcp_t tcp;
  relay_server_t *srv;
  relay_conn_t *prev, *next;
  uint64_t id;
  char peer[80];
  relay_tls_t *tls; /* NULL: plaintext (relay.tls_cert_file unset) */
  hd_frame_dec_t dec;
  int state;
  int closing;
  int work_busy;             /* a disk read is running on a worker thread */
  int disk_wait;             /* waiting for the disk budget */
  size_t disk_held;          /* its share of the disk budget */
  uint64_t last_progress_ms; /* when a write last completed */
  uint64_t accept_ms;        /* relay.handshake_timeout counts from here */
  int subscribed;            /* counted in metrics */
  /* subscription */
  char *client_id;
  relay_filter_t filt;
  uint32_t max_batch;
  uint32_t max_frame;  /* the consumer's, at most relay.max_frame_bytes */
  int mid_window;      /* sent chunks of a window, not yet its last */
  uint32_t chunk_next; /* the chunk number the consumer sees next */
  /* (table, schema version) pairs sent on this connection: an open
   * addressing set of their hashes */
  uint64_t *sent;
  size_t nsent, sent_cap;
  uint64_t last_sch; /* the pair found sent last: most windows repeat it */
  msgs_t ms;         /* send_batch's plan, kept for the next batch */
  /* position */
  uint64_t cursor;   /* ring sequence number of the next window (C_RING) */
  uint64_t last_scn; /* newest SCN sent */
  relay_store_reader_t *reader; /* C_DISK */
  relay_snapsub_t *snap;        /* its snapshot while one is under way */
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
  size_t disk_mem;      /* memory of windows read from disk, not yet written */
  relay_tls_ctx_t *tls; /* NULL: the consumer port is plaintext */
};

static void conn_pump(relay_conn_t *c);
static void msgs_clear(msgs_t *ms);
static void conn_close(relay_conn_t *c, const char *why);

/* ------------------------------------------------------------ lifetime */

static void conn_free(relay_conn_t *c) {
  relay_server_t *s = c->srv;
  hd_frame_dec_free(&c->dec);
  relay_tls_free(c->tls);
  if (c->reader)
    relay_store_reader_close(c->reader);
  relay_snap_unsubscribe(c->snap);
  relay_filter_free(&c->filt);
  msgs_clear(&c->ms);
  free(c->ms.v);
  free(c->sent);
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

/* Frees a write that will not be sent: its window references and its
 * share of the disk-read budget go back. */
static void wr_drop(relay_conn_t *c, wreq_t *w) {
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
}

/* With TLS the write's plaintext becomes one buffer of records, which
 * takes the place of the arena: the window references go back now (the
 * records hold the bytes), and relay.inflight_bytes counts what goes on
 * the wire. The disk-read budget stays charged until the write is done:
 * the records are that memory now. */
static int wr_seal(relay_conn_t *c, wreq_t *w) {
  uint8_t *rec;
  size_t len;
  char err[300];
  if (!relay_tls_ready(c->tls)) {
    /* Nothing may be sent before the handshake (a rejection at accept,
     * a handshake that timed out): the connection just closes. */
    wr_drop(c, w);
    return -1;
  }
  if (relay_tls_seal(c->tls, w->bufs, w->nbufs, &rec, &len, err, sizeof(err)) <
      0) {
    hd_log(HD_LL_WARN, "server", "tls write failed",
           "conn=%" PRIu64 " peer=%s error=\"%s\"", c->id, c->peer, err);
    wr_drop(c, w);
    conn_close(c, "TLS write failed");
    return -1;
  }
  for (size_t i = 0; i < w->nwins; i++)
    relay_win_release(w->wins[i]);
  w->nwins = 0;
  free(w->arena);
  w->arena = rec;
  w->alen = w->acap = len;
  w->nbufs = 0;
  w->bytes = 0;
  wr_buf(w, rec, len);
  return 0;
}

static int wr_send(relay_conn_t *c, wreq_t *w) {
  if (c->tls && wr_seal(c, w) < 0)
    return -1;
  w->c = c;
  c->inflight += w->bytes;
  c->last_send_ms = hd_now_ms();
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs,
                    (unsigned)w->nbufs, write_cb);
  if (rc < 0) {
    c->inflight -= w->bytes;
    wr_drop(c, w);
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

static piece_t *msg_pieces(msg_t *m) {
  return m->heap ? m->heap : m->inl;
}

static void plan_add(msg_t *m, int arena, size_t off, size_t len) {
  if (len == 0)
    return;
  m->len += len;
  piece_t *v = msg_pieces(m);
  if (m->n && !arena && !v[m->n - 1].arena &&
      v[m->n - 1].off + v[m->n - 1].len == off) {
    v[m->n - 1].len += len;
    return;
  }
  if (m->n == (m->heap ? m->cap : MSG_INLINE)) {
    size_t ncap = m->n * 2;
    piece_t *nv = hd_malloc(ncap * sizeof(piece_t));
    memcpy(nv, v, m->n * sizeof(piece_t));
    free(m->heap);
    m->heap = v = nv;
    m->cap = ncap;
  }
  v[m->n++] = (piece_t){arena, off, len};
}

static msg_t *msg_new(msgs_t *ms, size_t win) {
  if (ms->n == ms->cap) {
    ms->cap = ms->cap ? ms->cap * 2 : 16;
    ms->v = hd_realloc(ms->v, ms->cap * sizeof(msg_t));
  }
  msg_t *m = &ms->v[ms->n++];
  m->heap = NULL;
  m->n = m->cap = m->len = 0;
  m->win = win;
  return m;
}

/* Forgets the messages; the array stays for the next batch. */
static void msgs_clear(msgs_t *ms) {
  for (size_t i = 0; i < ms->n; i++)
    free(ms->v[i].heap);
  ms->n = 0;
}

/* ------------------------------------------------------------- schemas */

/* Marks the key sent; 1 if it was not before. */
static int sent_add(relay_conn_t *c, uint64_t k) {
  if ((c->nsent + 1) * 2 > c->sent_cap) {
    size_t ncap = c->sent_cap ? c->sent_cap * 2 : 16;
    uint64_t *nv = hd_calloc(ncap, sizeof(uint64_t));
    for (size_t i = 0; i < c->sent_cap; i++) {
      if (!c->sent[i])
        continue;
      size_t j = (size_t)(c->sent[i] & (ncap - 1));
      while (nv[j])
        j = (j + 1) & (ncap - 1);
      nv[j] = c->sent[i];
    }
    free(c->sent);
    c->sent = nv;
    c->sent_cap = ncap;
  }
  size_t i = (size_t)(k & (c->sent_cap - 1));
  while (c->sent[i]) {
    if (c->sent[i] == k)
      return 0;
    i = (i + 1) & (c->sent_cap - 1);
  }
  c->sent[i] = k;
  c->nsent++;
  return 1;
}

static int sent_has(const relay_conn_t *c, uint64_t k) {
  if (c->sent_cap == 0)
    return 0;
  size_t i = (size_t)(k & (c->sent_cap - 1));
  while (c->sent[i]) {
    if (c->sent[i] == k)
      return 1;
    i = (i + 1) & (c->sent_cap - 1);
  }
  return 0;
}

/* Adds to m the TableSchema field (Window.schemas) of a table version the
 * consumer was not sent yet. */
static void plan_schema(relay_conn_t *c, wreq_t *wr, msg_t *m,
                        const relay_win_t *w, const relay_row_t *r) {
  relay_schemas_t *reg = c->srv->o.schemas;
  uint32_t version = r->schema_version;
  if (version == 0 || reg == NULL)
    return;
  /* the window's pairs hold the key already */
  uint64_t k = 0;
  for (uint32_t i = 0; i < w->nsch && k == 0; i++)
    if (w->sch[i].table == r->table && w->sch[i].version == version)
      k = w->sch[i].key;
  const char *dbtable = w->tables[r->table];
  if (k == 0)
    k = relay_sch_key(dbtable, version);
  if (k == c->last_sch || !sent_add(c, k)) {
    c->last_sch = k;
    return;
  }
  relay_bytes_t ab = {wr->arena, wr->alen, wr->acap};
  size_t at = ab.len;
  /* room for the tag and length, filled in once the size is known */
  uint8_t pre[12] = {0};
  size_t off = ar_put(wr, pre, sizeof(pre));
  ab = (relay_bytes_t){wr->arena, wr->alen, wr->acap};
  if (!relay_schemas_get(reg, dbtable, version, &ab.p, &ab.len, &ab.cap)) {
    wr->alen = at;
    hd_log(HD_LL_WARN, "server", "table schema unknown",
           "conn=%" PRIu64 " table=%s version=%u", c->id, dbtable, version);
    return;
  }
  wr->arena = ab.p;
  wr->acap = ab.cap;
  size_t body = ab.len - off - sizeof(pre);
  uint8_t t[12];
  size_t tl = 0;
  t[tl++] = (uint8_t)HD_PB_TAG(12, HD_PB_LEN);
  tl += hd_pb_varint(t + tl, body);
  /* the prefix ends right before the body: shift it into the slot's end */
  memcpy(wr->arena + off + sizeof(pre) - tl, t, tl);
  wr->alen = ab.len;
  plan_add(m, 1, off + sizeof(pre) - tl, tl + body);
}

/* Whether every schema of w's rows was sent (the fast path's test). */
static int schemas_sent(relay_conn_t *c, const relay_win_t *w) {
  if (c->srv->o.schemas == NULL)
    return 1;
  for (uint32_t i = 0; i < w->nsch; i++) {
    uint64_t k = w->sch[i].key;
    if (k == c->last_sch)
      continue;
    if (!sent_has(c, k))
      return 0;
    c->last_sch = k;
  }
  return 1;
}

/* Largest Window message that fits a frame of max_frame bytes with its
 * Frame.batch and WindowBatch.windows prefixes (tag + 5-byte length
 * each). */
#define MSG_OVERHEAD 12u

/* Plans window w for this consumer as one message, or, when it is too
 * large for the consumer's frames or is one chunk of a window the store
 * holds in chunks, as chunk messages numbered per connection (each with
 * the header and chunk fields that override the stored ones). Updates the
 * connection's position: last_scn moves only when a window is complete.
 * @returns 0, or -1 when one row is too large for the consumer's frames
 *          (msg says so). */
/* sx: a snapshot chunk (relay_snap.h), sent at the consumer's position
 * with its own header fields and without the rows the stream changed
 * since it was read; NULL for a window of the stream. */
static int plan_window(relay_conn_t *c, wreq_t *wr, const relay_win_t *w,
                       size_t win, msgs_t *ms, const relay_snap_send_t *sx,
                       char *msg, size_t msglen) {
  relay_filter_t *f = &c->filt;
  size_t budget = c->max_frame - MSG_OVERHEAD;
  int whole = !w->chunk && !w->more;
  size_t xoff = 0, xlen = sx ? sx->hdr_len : 0;
  if (sx) {
    xoff = ar_put(wr, sx->hdr, xlen);
    budget -= xlen;
  }
  if (!sx && whole && relay_filter_all(f) && w->len <= budget &&
      schemas_sent(c, w)) {
    plan_add(msg_new(ms, win), 0, 0, w->len);
    c->last_scn = w->scn;
    return 0;
  }
  /* The row (and statement) pieces this consumer wants. */
  msg_t body = {0};
  size_t *ends = hd_malloc((w->nrows + w->nddl + 1) * sizeof(size_t));
  size_t nends = 0;
  if (!relay_filter_all(f))
    relay_filter_window(f, w);
  for (uint32_t i = 0; i < w->nrows; i++) {
    const relay_row_t *r = &w->rows[i];
    if (!relay_filter_all(f) && !relay_filter_row(f, w, r))
      continue;
    if (sx && relay_snap_dropped(sx, i))
      continue;
    /* the table's schema goes with (before) its first row on this
     * connection, in the same part of the window */
    plan_schema(c, wr, &body, w, r);
    int pj = f->nproj ? relay_filter_proj(f, w->tables[r->table]) : -1;
    if (pj < 0) {
      plan_add(&body, 0, r->off, r->len);
    } else {
      size_t len;
      relay_bytes_t ab = {wr->arena, wr->alen, wr->acap};
      size_t off =
          relay_filter_project(f, pj, w->buf + r->off, r->len, &ab, &len);
      wr->arena = ab.p;
      wr->alen = ab.len;
      wr->acap = ab.cap;
      plan_add(&body, 1, off, len);
    }
    ends[nends++] = body.len;
  }
  /* Schema changes by the tables they name. */
  for (uint32_t i = 0; i < w->nddl; i++) {
    const relay_ddl_t *d = &w->ddls[i];
    if (!relay_filter_ddl(f, d))
      continue;
    plan_add(&body, 0, d->off, d->len);
    ends[nends++] = body.len;
  }
  if (whole && w->hdr_len + body.len <= budget) {
    msg_t *m = msg_new(ms, win);
    plan_add(m, 0, 0, w->hdr_len);
    if (xlen)
      plan_add(m, 1, xoff, xlen);
    piece_t *bv = msg_pieces(&body);
    for (size_t k = 0; k < body.n; k++)
      plan_add(m, bv[k].arena, bv[k].off, bv[k].len);
    free(body.heap);
    free(ends);
    if (!sx)
      c->last_scn = w->scn;
    return 0;
  }
  if (nends == 0 && w->more) {
    /* Nothing of this chunk for this consumer: the window's last chunk
     * says it is complete. */
    free(body.heap);
    free(ends);
    c->mid_window = 1;
    return 0;
  }
  /* Cut the body at row boundaries into parts that fit. */
  size_t room = budget - w->hdr_len - 16; /* chunk fields */
  size_t nparts = 0, *cuts = hd_malloc((nends + 1) * sizeof(size_t));
  size_t from = 0;
  for (size_t e = 0; e < nends; e++) {
    size_t prev = e ? ends[e - 1] : 0;
    if (ends[e] - prev > room) {
      snprintf(msg, msglen,
               "window at SCN %" PRIu64 " holds a row of %zu bytes, more "
               "than this consumer's max_frame_bytes (%u) allows",
               w->scn, ends[e] - prev, c->max_frame);
      free(cuts);
      free(body.heap);
      free(ends);
      return -1;
    }
    if (ends[e] - from > room) {
      cuts[nparts++] = prev;
      from = prev;
    }
  }
  cuts[nparts++] = body.len;
  /* Lay the parts out: header, chunk fields, their share of the body. */
  size_t k = 0, at = 0; /* piece index and offset inside it */
  size_t pos = 0;       /* body offset reached */
  for (size_t p = 0; p < nparts; p++) {
    msg_t *m = msg_new(ms, win);
    int more = p + 1 < nparts || w->more;
    uint8_t t[16];
    size_t tl = 0;
    t[tl++] = (uint8_t)HD_PB_TAG(10, HD_PB_VARINT);
    tl += hd_pb_varint(t + tl, c->chunk_next++);
    t[tl++] = (uint8_t)HD_PB_TAG(11, HD_PB_VARINT);
    t[tl++] = (uint8_t)more;
    plan_add(m, 0, 0, w->hdr_len);
    if (xlen)
      plan_add(m, 1, xoff, xlen);
    plan_add(m, 1, ar_put(wr, t, tl), tl);
    while (pos < cuts[p]) {
      piece_t *pc = &msg_pieces(&body)[k];
      size_t take = pc->len - at;
      if (take > cuts[p] - pos)
        take = cuts[p] - pos;
      plan_add(m, pc->arena, pc->off + at, take);
      pos += take;
      at += take;
      if (at == pc->len) {
        k++;
        at = 0;
      }
    }
  }
  free(cuts);
  free(body.heap);
  free(ends);
  if (w->more) {
    c->mid_window = 1;
  } else {
    c->mid_window = 0;
    c->chunk_next = 0;
    if (!sx)
      c->last_scn = w->scn;
  }
  return 0;
}

/* Sends wins[0..n) (references pass to the write) as frames of at most
 * the consumer's max_frame bytes; disk_mem is their memory when they were
 * read from disk (freed from the disk budget once written). */
static void send_batch(relay_conn_t *c, relay_win_t **wins, size_t n,
                       size_t disk_mem, const relay_snap_send_t *sx) {
  wreq_t *wr = hd_calloc(1, sizeof(*wr));
  wr->disk_mem = disk_mem;
  msgs_t *ms = &c->ms; /* kept from batch to batch */
  char err[300];
  for (size_t i = 0; i < n; i++) {
    if (plan_window(c, wr, wins[i], i, ms, sx, err, sizeof(err)) < 0) {
      msgs_clear(ms);
      wr->wins = wins;
      wr->nwins = n;
      wr_drop(c, wr); /* nothing of it was sent */
      send_error(c, HD_EBAD_REQUEST, 0, err);
      conn_close(c, err);
      return;
    }
  }
  /* Messages into frames, in order. */
  size_t *fstart = hd_malloc((ms->n + 1) * sizeof(size_t)), nf = 0;
  size_t *fbytes = hd_malloc((ms->n + 1) * sizeof(size_t));
  size_t cur = 0;
  for (size_t i = 0; i < ms->n; i++) {
    size_t one = 1 + hd_pb_varint_len(ms->v[i].len) + ms->v[i].len;
    if (nf == 0 || cur + one + MSG_OVERHEAD > c->max_frame) {
      fstart[nf] = i;
      fbytes[nf++] = 0;
      cur = 0;
    }
    fbytes[nf - 1] += one;
    cur += one;
  }
  fstart[nf] = ms->n;
  /* Prefixes first, into the arena, so its final address is known before
   * any buf points into it. */
  size_t *foff = hd_malloc((nf + 1) * sizeof(size_t));
  size_t *flen = hd_malloc((nf + 1) * sizeof(size_t));
  size_t *moff = hd_malloc((ms->n + 1) * sizeof(size_t));
  size_t total = 0;
  for (size_t fi = 0; fi < nf; fi++) {
    uint8_t tmp[16];
    size_t frame = 1 + hd_pb_varint_len(fbytes[fi]) + fbytes[fi];
    tmp[0] = (uint8_t)(frame >> 24);
    tmp[1] = (uint8_t)(frame >> 16);
    tmp[2] = (uint8_t)(frame >> 8);
    tmp[3] = (uint8_t)frame;
    tmp[4] = (uint8_t)HD_PB_TAG(2, HD_PB_LEN); /* Frame.batch */
    size_t hl = 5 + hd_pb_varint(tmp + 5, fbytes[fi]);
    foff[fi] = ar_put(wr, tmp, hl);
    flen[fi] = hl;
    total += 4 + frame;
    for (size_t i = fstart[fi]; i < fstart[fi + 1]; i++) {
      tmp[0] = (uint8_t)HD_PB_TAG(1, HD_PB_LEN); /* WindowBatch.windows */
      size_t l = 1 + hd_pb_varint(tmp + 1, ms->v[i].len);
      moff[i] = ar_put(wr, tmp, l);
    }
  }
  for (size_t fi = 0; fi < nf; fi++) {
    wr_buf(wr, wr->arena + foff[fi], flen[fi]);
    for (size_t i = fstart[fi]; i < fstart[fi + 1]; i++) {
      msg_t *m = &ms->v[i];
      wr_buf(wr, wr->arena + moff[i], 1 + hd_pb_varint_len(m->len));
      for (size_t k = 0; k < m->n; k++) {
        piece_t *pc = &msg_pieces(m)[k];
        wr_buf(wr,
               pc->arena ? wr->arena + pc->off : wins[m->win]->buf + pc->off,
               pc->len);
      }
    }
  }
  free(fstart);
  free(fbytes);
  free(foff);
  free(flen);
  free(moff);
  msgs_clear(ms);
  wr->wins = wins;
  wr->nwins = n;
  RM_ADD(c->srv->o.m, sent_windows, n);
  RM_ADD(c->srv->o.m, sent_bytes, total);
  if (wr->nbufs == 0) { /* chunks this consumer wants nothing of */
    wr_drop(c, wr);
    return;
  }
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
    send_batch(c, d->wins, d->n, d->mem, NULL);
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
  if (!c->mid_window &&
      relay_ring_seek(c->srv->o.ring, c->last_scn, &seq) == 0) {
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
    if (s->disk_mem >= s->o.conf->relay.disk_read_budget)
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
  if (s->disk_mem + DISK_BATCH_BYTES > s->o.conf->relay.disk_read_budget) {
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

/* A consumer on the ring goes on from disk (evicted while it was slow, or
 * a window stored in chunks). -1 when the store no longer has what it
 * needs: the connection is closed with ERR_SCN_TOO_OLD. */
static int ring_to_disk(relay_conn_t *c) {
  if (to_disk(c) == 0)
    return 0;
  send_error(c, HD_ESCN_TOO_OLD, relay_store_first_scn(c->srv->o.store),
             "windows after the consumer's position are gone");
  conn_close(c, "position lost");
  return -1;
}

/* ----------------------------------------------------------------- pump */

/* The consumer's snapshot, between whole windows: a chunk when one can
 * go at its position. @returns 1 when something was sent. */
static int snap_step(relay_conn_t *c) {
  if (!c->snap || c->mid_window || c->closing)
    return 0;
  relay_snap_send_t x;
  char err[400];
  int code = 0;
  switch (relay_snap_next(c->snap, c->last_scn, &x, &code, err, sizeof(err))) {
  case RELAY_SNAP_SEND: {
    relay_win_t **wins = hd_malloc(sizeof(relay_win_t *));
    wins[0] = x.w;
    send_batch(c, wins, 1, 0, &x);
    free(x.hdr);
    return 1;
  }
  case RELAY_SNAP_DONE:
    hd_log(HD_LL_INFO, "server", "snapshot sent",
           "conn=%" PRIu64 " client=%s scn=%" PRIu64, c->id, c->client_id,
           c->last_scn);
    relay_snap_unsubscribe(c->snap);
    c->snap = NULL;
    return 0;
  case RELAY_SNAP_FAIL:
    send_error(c, code ? code : HD_ESNAPSHOT, 0, err);
    conn_close(c, err);
    return 0;
  default:
    return 0;
  }
}

static void snap_wake(void *ud) {
  relay_conn_t *c = ud;
  if (!c->closing && c->state != C_CLOSED &&
      c->inflight < c->srv->o.conf->relay.inflight_bytes)
    conn_pump(c);
}

static void conn_pump(relay_conn_t *c) {
  relay_server_t *s = c->srv;
  while (!c->closing && c->inflight < s->o.conf->relay.inflight_bytes) {
    if (snap_step(c))
      continue;
    if (c->state == C_DISK) {
      disk_start(c);
      return;
    }
    if (c->state != C_RING)
      return;
    relay_ring_t *r = s->o.ring;
    if (c->cursor < r->first) {
      /* Evicted while this consumer was slow: continue from disk. */
      if (ring_to_disk(c) < 0)
        return;
      continue;
    }
    if (c->cursor >= r->end)
      return; /* caught up: relay_server_notify() wakes us */
    size_t cap = 64, n = 0, bytes = 0;
    relay_win_t **wins = hd_malloc(cap * sizeof(relay_win_t *));
    int to_store = 0;
    while (c->cursor < r->end && bytes < c->max_batch) {
      relay_win_t *w = relay_ring_at(r, c->cursor);
      /* A window read from disk may reach the ring afterwards (the
       * fetcher stores before it publishes): never send it twice. */
      if (w->scn <= c->last_scn) {
        c->cursor++;
        continue;
      }
      /* A window stored in chunks is read from the log store. */
      if (w->disk_only) {
        to_store = 1;
        break;
      }
      c->cursor++;
      if (n == cap) {
        cap *= 2;
        wins = hd_realloc(wins, cap * sizeof(relay_win_t *));
      }
      wins[n++] = relay_win_ref(w);
      bytes += w->len;
    }
    if (n == 0 && to_store) {
      free(wins);
      if (ring_to_disk(c) < 0)
        return;
      continue;
    }
    if (n == 0) {
      free(wins);
      continue;
    }
    send_batch(c, wins, n, 0, NULL);
  }
}

void relay_server_notify(relay_server_t *s) {
  for (relay_conn_t *c = s->conns; c; c = c->next)
    if (c->state == C_RING && c->inflight < s->o.conf->relay.inflight_bytes)
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
  c->max_frame = (uint32_t)s->o.conf->relay.max_frame_bytes;
  if (sub->max_frame_bytes) {
    if (sub->max_frame_bytes < MIN_CONSUMER_FRAME) {
      snprintf(msg, sizeof(msg),
               "max_frame_bytes %u is below the relay's minimum %u",
               sub->max_frame_bytes, MIN_CONSUMER_FRAME);
      reject(c, HD_EBAD_REQUEST, 0, msg);
      return;
    }
    if (sub->max_frame_bytes < c->max_frame)
      c->max_frame = sub->max_frame_bytes;
  }
  c->max_batch = sub->max_batch_bytes ? sub->max_batch_bytes : DEFAULT_BATCH;
  if (c->max_batch > c->max_frame / 2)
    c->max_batch = c->max_frame / 2;

  /* Where to start. */
  relay_ring_t *r = s->o.ring;
  uint64_t after = 0;
  if (sub->mode != HERALD__START_MODE__START_SCN &&
      sub->mode != HERALD__START_MODE__START_EARLIEST &&
      sub->mode != HERALD__START_MODE__START_LATEST) {
    snprintf(msg, sizeof(msg), "unknown start mode %d", (int)sub->mode);
    reject(c, HD_EBAD_REQUEST, 0, msg);
    return;
  }
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
  if (sub->snapshot) {
    if (s->o.snap == NULL) {
      reject(c, HD_ESNAPSHOT, 0, "this relay serves no snapshots");
      return;
    }
    c->snap = relay_snap_subscribe(s->o.snap, sub->snapshot, sub->tables,
                                   sub->n_tables, c->last_scn, c->client_id,
                                   snap_wake, c, msg, sizeof(msg));
    if (c->snap == NULL) {
      reject(c, HD_EBAD_REQUEST, 0, msg);
      return;
    }
  }
  c->subscribed = 1;
  RM_ADD(s->o.m, consumers, 1);
  hd_log(HD_LL_INFO, "server", "consumer subscribed",
         "conn=%" PRIu64 " peer=%s client=%s after_scn=%" PRIu64
         " tables=%zu partition_fn=%d snapshot=%d",
         c->id, c->peer, c->client_id, c->last_scn, c->filt.ntables,
         c->filt.part_fn, c->snap != NULL);
  conn_pump(c);
}

/* -------------------------------------------------------------- reading */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = hd_malloc(64 * 1024);
  buf->len = 64 * 1024;
}

static void on_bytes(relay_conn_t *c, const uint8_t *p, size_t n);
static void tls_read(relay_conn_t *c, const uint8_t *p, size_t n);

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  relay_conn_t *c = st->data;
  if (nread < 0) {
    free(buf->base);
    conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
    return;
  }
  if (c->tls)
    tls_read(c, (const uint8_t *)buf->base, (size_t)nread);
  else
    on_bytes(c, (const uint8_t *)buf->base, (size_t)nread);
  free(buf->base);
}

/* Bytes written as they are: TLS handshake messages and alerts, or the
 * plaintext error a plaintext client is sent. */
static void send_raw(relay_conn_t *c, uint8_t *p, size_t len) {
  wreq_t *w = hd_calloc(1, sizeof(*w));
  w->arena = p;
  w->acap = w->alen = len;
  wr_buf(w, p, len);
  relay_tls_t *t = c->tls;
  c->tls = NULL; /* wr_send without sealing */
  wr_send(c, w);
  c->tls = t;
}

/* A plaintext client on a TLS port is told so in its own protocol (an
 * Error frame, not encrypted) before the connection closes. */
static void refuse_plaintext(relay_conn_t *c, const char *why) {
  hd_log(HD_LL_WARN, "server", "tls handshake failed",
         "conn=%" PRIu64 " peer=%s error=\"%s\"", c->id, c->peer, why);
  RM_ERR(c->srv->o.m, PROTOCOL);
  Herald__Frame f = HERALD__FRAME__INIT;
  Herald__Error e = HERALD__ERROR__INIT;
  e.code = hd_err_to_wire(HD_EBAD_REQUEST);
  e.message =
      (char *)"this relay's consumer port speaks TLS only: connect with TLS "
              "(libherald's key tls, heraldctl tail --tls)";
  f.msg_case = HERALD__FRAME__MSG_ERROR;
  f.error = &e;
  uint8_t *buf;
  size_t len;
  if (hd_frame_encode(&f, (uint32_t)c->srv->o.conf->relay.max_frame_bytes, &buf,
                      &len) == 0)
    send_raw(c, buf, len);
  conn_close(c, "plaintext on a TLS port");
}

static void tls_read(relay_conn_t *c, const uint8_t *p, size_t n) {
  const uint8_t *plain;
  size_t plen, olen;
  char err[512];
  int was_ready = relay_tls_ready(c->tls);
  int rc = relay_tls_read(c->tls, p, n, &plain, &plen, err, sizeof(err));
  if (rc == RELAY_TLS_NOT_TLS) {
    refuse_plaintext(c, err);
    return;
  }
  uint8_t *out = relay_tls_take(c->tls, &olen);
  if (out)
    send_raw(c, out, olen); /* before any frame: handshake, tickets, alert */
  if (c->closing)
    return;
  if (rc < 0) {
    hd_log(HD_LL_WARN, "server",
           was_ready ? "tls record failed" : "tls handshake failed",
           "conn=%" PRIu64 " peer=%s error=\"%s\"", c->id, c->peer, err);
    RM_ERR(c->srv->o.m, PROTOCOL);
    conn_close(c, was_ready ? "TLS record failed" : "TLS handshake failed");
    return;
  }
  if (!was_ready && relay_tls_ready(c->tls))
    hd_log(HD_LL_DEBUG, "server", "tls handshake done",
           "conn=%" PRIu64 " peer=%s", c->id, c->peer);
  if (plen)
    on_bytes(c, plain, plen);
  if (rc == 1 && !c->closing)
    conn_close(c, "peer closed");
}

/* Plaintext from the consumer: its frames. */
static void on_bytes(relay_conn_t *c, const uint8_t *p, size_t n) {
  hd_inbuf_t in = {p, n, 0};
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
}

/* A new connection, in the server's list, waiting for its Subscribe. */
static relay_conn_t *conn_new(relay_server_t *s) {
  relay_conn_t *c = hd_calloc(1, sizeof(*c));
  c->srv = s;
  c->id = ++s->next_id;
  c->state = C_HANDSHAKE;
  c->accept_ms = c->last_progress_ms = hd_now_ms();
  hd_frame_dec_init(&c->dec, (uint32_t)s->o.conf->relay.max_frame_bytes);
  uv_tcp_init(s->o.loop, &c->tcp);
  c->tcp.data = c;
  s->open_handles++;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  return c;
}

/* The connection limit, then reading: what every connection goes
 * through once its socket is there. */
static void conn_start(relay_conn_t *c) {
  relay_server_t *s = c->srv;
  /* first: over the limit, a TLS port closes without a word (nothing
   * can be sent before the handshake) */
  if (s->tls)
    c->tls = relay_tls_new(s->tls);
  if (s->nconns > (size_t)s->o.conf->relay.max_connections) {
    reject(c, HD_ETOO_MANY, 0,
           "connection limit reached (relay.max_connections)");
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void on_connection(uv_stream_t *ls, int status) {
  relay_server_t *s = ls->data;
  if (status < 0) {
    hd_log(HD_LL_WARN, "server", "accept failed", "error=\"%s\"",
           uv_strerror(status));
    return;
  }
  relay_conn_t *c = conn_new(s);
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
  conn_start(c);
}

int relay_server_adopt(relay_server_t *s, int fd, const char *peer) {
  relay_conn_t *c = conn_new(s);
  snprintf(c->peer, sizeof(c->peer), "%s", peer);
  int rc = uv_tcp_open(&c->tcp, (uv_os_sock_t)fd);
  if (rc < 0) {
    close(fd);
    conn_close(c, uv_strerror(rc));
    return rc;
  }
  conn_start(c);
  return 0;
}

size_t relay_server_handles(const relay_server_t *s) {
  return (size_t)s->open_handles;
}

/* A consumer that holds disk-read memory and has not taken a byte for
 * relay.stall_timeout is disconnected when others wait for that memory: it
 * may come back from its checkpoint, and the others go on. */
static void drop_stalled(relay_server_t *s, uint64_t now) {
  int waiting = 0;
  for (relay_conn_t *c = s->conns; c && !waiting; c = c->next)
    waiting = c->disk_wait;
  if (!waiting)
    return;
  for (relay_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->disk_held > 0 && c->inflight > 0 &&
        now - c->last_progress_ms > s->o.conf->relay.stall_timeout_ms)
      conn_close(c, "stalled while holding disk reads others wait for");
  }
}

/* A connection that has not subscribed within relay.handshake_timeout
 * holds a slot of relay.max_connections for nothing: told why, closed. */
static void handshake_expired(relay_conn_t *c) {
  uint64_t ms = c->srv->o.conf->relay.handshake_timeout_ms;
  char msg[64];
  if (ms % 1000 == 0)
    snprintf(msg, sizeof(msg), "no Subscribe within %" PRIu64 " s", ms / 1000);
  else
    snprintf(msg, sizeof(msg), "no Subscribe within %" PRIu64 " ms", ms);
  hd_log(HD_LL_WARN, "server", "handshake timeout",
         "conn=%" PRIu64 " peer=%s error=\"%s\"", c->id, c->peer, msg);
  reject(c, HD_EBAD_REQUEST, 0, msg);
}

/* Idle consumers get a heartbeat with the relay's newest SCN; the same
 * sweep closes connections that never subscribed. */
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
    if (c->state == C_HANDSHAKE &&
        now - c->accept_ms >= s->o.conf->relay.handshake_timeout_ms)
      handshake_expired(c);
    else if (c->state != C_HANDSHAKE && c->inflight == 0 &&
             now - c->last_send_ms >= s->o.conf->relay.heartbeat_ms) {
      /* Never inside a window: its SCN is not a position yet. */
      hb.position = c->mid_window ? 0 : c->last_scn;
      send_frame(c, &f);
    }
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
  if (relay_tls_ctx_new(o->conf, &s->tls, errstr, errlen) < 0) {
    free(s);
    *out = NULL;
    return -1;
  }
  const hd_hostport_t *hp = &o->conf->relay.listen;
  struct sockaddr_storage ss;
  int rc = strchr(hp->host, ':')
               ? uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
  if (rc < 0) {
    snprintf(errstr, errlen, "relay.listen: '%s' is not an IP address: %s",
             hp->host, uv_strerror(rc));
    relay_tls_ctx_free(s->tls);
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
    relay_tls_ctx_free(s->tls);
    s->tls = NULL;
    uv_close((uv_handle_t *)&s->listener, srv_handle_closed);
    *out = NULL;
    return rc;
  }
  uv_timer_init(o->loop, &s->hb_timer);
  s->hb_timer.data = s;
  s->open_handles++;
  /* Every timed rule runs in hb_cb: tick at half the shortest of them, so
   * each acts within 1.5 times its time. */
  uint64_t tick = o->conf->relay.heartbeat_ms;
  if (o->conf->relay.handshake_timeout_ms < tick)
    tick = o->conf->relay.handshake_timeout_ms;
  if (o->conf->relay.stall_timeout_ms < tick)
    tick = o->conf->relay.stall_timeout_ms;
  tick = tick / 2 ? tick / 2 : 1;
  uv_timer_start(&s->hb_timer, hb_cb, tick, tick);
  *out = s;
  return 0;
}

void relay_server_close(relay_server_t *s) {
  if (s == NULL || s->closing)
    return;
  s->closing = 1;
  while (s->conns)
    conn_close(s->conns, "relay shutting down");
  relay_tls_ctx_free(s->tls); /* the connections hold their reference */
  s->tls = NULL;
  uv_close((uv_handle_t *)&s->listener, srv_handle_closed);
  uv_close((uv_handle_t *)&s->hb_timer, srv_handle_closed);
}
