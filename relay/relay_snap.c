/*
 * relay_snap.c - the snapshot service (relay_snap.h): the chunk cache,
 * the change marks that merge chunks into the stream, the reads on worker
 * threads and each consumer's place in its snapshot.
 */
#include "relay_snap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_time.h"
#include "hb_sql.h"
#include "relay_snapread.h"

#define COMP "snapshot"
#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 10000
/* A kept chunk nobody holds goes after this long even under budget: each
 * costs a look at every captured row of its table. */
#define IDLE_MS 120000

enum { E_QUEUED, E_READING, E_READY, E_FAILED };

typedef struct entry entry_t;
struct entry {
  entry_t *prev, *next; /* s->entries, most recently used first */
  entry_t *qnext;       /* s->queue while E_QUEUED */
  char *table;          /* "db.table" */
  char *db, *tbl;
  uint8_t *after; /* packed SnapshotKey; NULL: from the first row */
  size_t after_len;
  uint32_t limit;
  int state;
  int refs; /* subscriptions waiting for it or holding it */
  int code; /* E_FAILED */
  char err[400];
  int unusable; /* the ring no longer had what came after W */
  relay_win_t *w;
  uint64_t scn_low, scn_high;
  uint64_t *changed;  /* per row */
  uint64_t stale_scn; /* a statement changed the table: 0 none */
  uint8_t *next_after;
  size_t next_len;
  int table_done;
  uint32_t rows;
  uint32_t *slots; /* open addressing over key hashes: row index + 1 */
  size_t nslots;
  size_t mem;
  uint64_t used_ms;
};

typedef struct reader {
  relay_snapread_t *r;
  int busy;
} reader_t;

typedef struct work work_t;

struct relay_snap {
  relay_snap_opts_t o;
  entry_t *entries;
  entry_t *queue, *qtail;
  size_t nentries, mem;
  reader_t *readers;
  size_t nreaders;
  int busy_works;
  int freeing;
  uint64_t tracked_scn; /* newest window looked at */
  uint64_t idle_scn;    /* the source had nothing after it up to here */
  relay_snapsub_t *subs;
  relay_win_t *empty; /* a chunk of no rows: the end of an empty snapshot */
};

enum { S_LIST, S_LISTING, S_RUN, S_DONE, S_FAIL };

struct relay_snapsub {
  relay_snap_t *s;
  relay_snapsub_t *prev, *next;
  char **pat; /* snapshot patterns */
  size_t npat;
  char **ftab; /* the subscription's table patterns */
  size_t nftab;
  char *client;
  uint32_t limit;
  uint64_t start_scn; /* the connection's stream begins after it */
  /* the consumer has had every change of the stream after it: start_scn,
   * or where the snapshot it resumes began (its position says) */
  uint64_t origin;
  int state;
  int code;
  char err[400];
  uint64_t retry_ms; /* S_LIST: not before (mono) */
  uint64_t backoff;
  relay_snaptable_t *tables;
  size_t ntables, idx;
  uint8_t *after;
  size_t after_len;
  uint64_t table_rows;
  Herald__SnapshotPosition *resume; /* until the tables are listed */
  entry_t *e;                       /* the chunk wanted next */
  struct work *listing;             /* S_LISTING: the read running */
  int woken;                        /* read_done: told already */
  void (*wake)(void *);
  void *ud;
};

struct work {
  uv_work_t req;
  relay_snap_t *s;
  reader_t *rd;
  entry_t *e;          /* a chunk read, or */
  int list;            /* a listing (set before the work starts: the
                          worker reads only this and what it copied) */
  relay_snapsub_t *ss; /* the listing's subscriber (loop thread only) */
  int gone;            /* ss went away meanwhile */
  int rc;
  char err[400];
  relay_snapchunk_t *chunk;
  relay_win_t *w;
  char **pat;
  size_t npat;
  relay_snaptable_t *tables;
  size_t ntables;
};

static void dispatch(relay_snap_t *s);
static void sub_wake(relay_snapsub_t *ss);
static void wake_unmarked(relay_snap_t *s);
static int maybe_free(relay_snap_t *s);

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ entries */

static void entry_free(relay_snap_t *s, entry_t *e) {
  if (e->prev)
    e->prev->next = e->next;
  else
    s->entries = e->next;
  if (e->next)
    e->next->prev = e->prev;
  s->nentries--;
  s->mem -= e->mem;
  if (e->w)
    relay_win_release(e->w);
  free(e->table);
  free(e->db);
  free(e->tbl);
  free(e->after);
  free(e->changed);
  free(e->next_after);
  free(e->slots);
  free(e);
}

static void entry_touch(relay_snap_t *s, entry_t *e) {
  e->used_ms = mono_ms();
  if (s->entries == e)
    return;
  e->prev->next = e->next;
  if (e->next)
    e->next->prev = e->prev;
  e->prev = NULL;
  e->next = s->entries;
  s->entries->prev = e;
  s->entries = e;
}

/* Chunks nobody holds go, oldest use first, while over the budget or
 * idle too long. */
static void evict(relay_snap_t *s) {
  uint64_t now = mono_ms();
  entry_t *e = s->entries;
  while (e && e->next)
    e = e->next;
  while (e) {
    entry_t *prev = e->prev;
    int idle = e->refs == 0 && (e->state == E_READY || e->state == E_FAILED);
    if (idle && (s->mem > s->o.conf->relay.snapshot_cache_bytes ||
                 now - e->used_ms > IDLE_MS || e->unusable))
      entry_free(s, e);
    e = prev;
  }
}

static int same_key(const entry_t *e, const char *table, const uint8_t *after,
                    size_t alen, uint32_t limit) {
  return e->limit == limit && e->after_len == alen &&
         strcmp(e->table, table) == 0 &&
         (alen == 0 || memcmp(e->after, after, alen) == 0);
}

/* A chunk merges into a consumer's stream only when that consumer has had
 * every window after the chunk's SCN: the rows left out are those the
 * stream changed, and a change before the consumer's origin never reached
 * it (a chunk read for another group, earlier). A consumer that resumes
 * its snapshot on a new connection has had them since its snapshot began
 * (applied before its checkpoint, or streamed since), so the chunks read
 * meanwhile for the other partitions serve it too. */
static int covers(const entry_t *e, uint64_t origin) {
  return e->state != E_READY || e->scn_low >= origin;
}

/* A chunk (db.tbl, after, limit) queued for reading, with no reference
 * yet. */
static entry_t *entry_new(relay_snap_t *s, const char *db, const char *tbl,
                          const uint8_t *after, size_t alen, uint32_t limit) {
  char name[600];
  snprintf(name, sizeof(name), "%s.%s", db, tbl);
  entry_t *e = hd_calloc(1, sizeof(*e));
  e->table = hd_strdup(name);
  e->db = hd_strdup(db);
  e->tbl = hd_strdup(tbl);
  if (alen) {
    e->after = hd_malloc(alen);
    memcpy(e->after, after, alen);
  }
  e->after_len = alen;
  e->limit = limit;
  e->state = E_QUEUED;
  e->used_ms = mono_ms();
  e->next = s->entries;
  if (s->entries)
    s->entries->prev = e;
  s->entries = e;
  s->nentries++;
  if (s->qtail)
    s->qtail->qnext = e;
  else
    s->queue = e;
  s->qtail = e;
  dispatch(s);
  return e;
}

/* The kept chunk (table, after, limit) usable at position scn by a stream
 * that began after start_scn, or a new one queued for reading. A
 * reference is taken. */
static entry_t *entry_get(relay_snap_t *s, const relay_snaptable_t *t,
                          const uint8_t *after, size_t alen, uint32_t limit,
                          uint64_t scn, uint64_t start_scn) {
  char name[600];
  snprintf(name, sizeof(name), "%s.%s", t->db, t->table);
  for (entry_t *e = s->entries; e; e = e->next) {
    if (!same_key(e, name, after, alen, limit) || e->unusable ||
        e->state == E_FAILED || (e->stale_scn && scn >= e->stale_scn) ||
        !covers(e, start_scn))
      continue;
    e->refs++;
    entry_touch(s, e);
    return e;
  }
  entry_t *e = entry_new(s, t->db, t->table, after, alen, limit);
  e->refs++; /* the read's may be there already */
  return e;
}

/* Keyset pages are known only once the one before is read, so a table's
 * chunks are read one after another. So that the source is read while
 * the consumers apply, the chunks after e are read ahead, up to AHEAD:
 * the first one missing from the chain of kept chunks is queued. */
#define AHEAD 3
static void read_ahead(relay_snap_t *s, entry_t *e) {
  for (int i = 0; i < AHEAD && e; i++) {
    if (e->state != E_READY || e->table_done || e->unusable || e->stale_scn ||
        s->freeing)
      return;
    entry_t *nx = s->entries;
    for (; nx; nx = nx->next)
      if (same_key(nx, e->table, e->next_after, e->next_len, e->limit) &&
          !nx->unusable && nx->state != E_FAILED && !nx->stale_scn)
        break;
    if (nx == NULL) {
      if (s->mem > s->o.conf->relay.snapshot_cache_bytes / 2)
        return; /* the budget is for chunks someone waits for */
      entry_new(s, e->db, e->tbl, e->next_after, e->next_len, e->limit);
      return;
    }
    e = nx;
  }
}
static void entry_put(relay_snap_t *s, entry_t *e) {
  if (e && --e->refs == 0)
    evict(s);
}

static size_t slot_of(const entry_t *e, uint64_t h) {
  return (size_t)(h ^ (h >> 29)) & (e->nslots - 1);
}

/* Marks the rows of e whose key is k as changed at scn. */
static void mark_key(entry_t *e, const hd_key_t *k, uint64_t scn) {
  if (!k->has_pk || e->nslots == 0)
    return;
  for (size_t i = slot_of(e, k->hash);; i = (i + 1) & (e->nslots - 1)) {
    uint32_t v = e->slots[i];
    if (v == 0)
      return;
    /* Hashes of the canonical key (hd_partkey.h): equal keys have equal
     * hashes, and a different key with the same 64-bit hash would only
     * drop that row from the chunk for a consumer past scn, never keep a
     * stale one. */
    if (e->w->rows[v - 1].key.hash == k->hash && e->changed[v - 1] == 0)
      e->changed[v - 1] = scn;
  }
}

static void track(entry_t *e, const relay_win_t *w) {
  if (w->scn <= e->scn_low)
    return;
  if (w->disk_only) {
    /* A window kept only in the log store (too large for the ring): its
     * rows are not looked at here, so the chunk cannot be merged past
     * it; positions after it read the chunk again. */
    if (e->stale_scn == 0)
      e->stale_scn = w->scn;
    return;
  }
  for (uint32_t t = 0; t < w->ntables; t++) {
    if (strcmp(w->tables[t], e->table) != 0)
      continue;
    for (uint32_t i = 0; i < w->nrows; i++) {
      const relay_row_t *r = &w->rows[i];
      if (r->table != t)
        continue;
      mark_key(e, &r->key, w->scn);
      if (r->old)
        mark_key(e, &w->olds[r->old - 1], w->scn);
    }
  }
  if (e->stale_scn == 0) {
    char *pat = e->table;
    for (uint32_t i = 0; i < w->nddl; i++)
      if (hb_sql_names_wanted(&w->ddls[i].names, &pat, 1)) {
        e->stale_scn = w->scn;
        break;
      }
  }
}

void relay_snap_on_window(relay_snap_t *s, const relay_win_t *w) {
  for (entry_t *e = s->entries; e; e = e->next)
    if (e->state == E_READY)
      track(e, w);
  s->tracked_scn = w->scn;
}

void relay_snap_on_idle(relay_snap_t *s, uint64_t scn) {
  if (scn <= s->tracked_scn)
    return;
  s->idle_scn = scn;
  /* Chunks waiting for a commit that is not coming may go now. */
  for (relay_snapsub_t *ss = s->subs; ss; ss = ss->next)
    ss->woken = !(ss->e && ss->e->state == E_READY);
  wake_unmarked(s);
}

/* The chunk came: index its keys and mark what the ring already holds
 * after its SCN. */
static void entry_ready(relay_snap_t *s, entry_t *e, relay_snapchunk_t *c,
                        relay_win_t *w) {
  e->w = w;
  e->scn_low = c->scn_low;
  e->scn_high = c->scn_high;
  e->rows = (uint32_t)c->win.nrows;
  e->table_done = c->table_done;
  if (c->last_key_len) {
    e->next_after = hd_malloc(c->last_key_len);
    memcpy(e->next_after, c->last_key, c->last_key_len);
    e->next_len = c->last_key_len;
  } else if (e->after_len) {
    e->next_after = hd_malloc(e->after_len);
    memcpy(e->next_after, e->after, e->after_len);
    e->next_len = e->after_len;
  }
  e->changed = hd_calloc(w->nrows + 1, sizeof(uint64_t));
  size_t n = 16;
  while (n < (size_t)w->nrows * 2)
    n <<= 1;
  e->nslots = n;
  e->slots = hd_calloc(n, sizeof(uint32_t));
  for (uint32_t i = 0; i < w->nrows; i++) {
    size_t j = slot_of(e, w->rows[i].key.hash);
    while (e->slots[j])
      j = (j + 1) & (n - 1);
    e->slots[j] = i + 1;
  }
  e->mem = w->mem + (w->nrows + 1) * sizeof(uint64_t) + n * sizeof(uint32_t) +
           e->next_len + sizeof(*e);
  s->mem += e->mem;
  e->state = E_READY;
  relay_ring_t *r = s->o.ring;
  uint64_t seq;
  if (relay_ring_seek(r, e->scn_low, &seq) != 0) {
    /* Windows after W left the ring before the chunk came: it cannot be
     * merged. Read it again (rare: the ring holds seconds at least). */
    e->unusable = 1;
    return;
  }
  for (; seq < r->end; seq++)
    track(e, relay_ring_at(r, seq));
}

/* -------------------------------------------------------------- reads */

static void read_work(uv_work_t *req) {
  work_t *k = req->data;
  relay_snap_t *s = k->s;
  if (k->rd->r == NULL &&
      relay_snapread_open(s->o.conf, s->o.password, &k->rd->r, k->err,
                          sizeof(k->err)) < 0) {
    k->rc = -1;
    return;
  }
  if (k->list) {
    k->rc =
        relay_snapread_tables(k->rd->r, (const char *const *)k->pat, k->npat,
                              &k->tables, &k->ntables, k->err, sizeof(k->err));
    return;
  }
  entry_t *e = k->e;
  k->rc = relay_snapread_chunk(k->rd->r, e->db, e->tbl, e->after, e->after_len,
                               e->limit, &k->chunk, k->err, sizeof(k->err));
  if (k->rc < 0)
    return;
  relay_wb_t *wb = relay_wb_new();
  relay_wb_set_schemas(wb, s->o.schemas);
  k->w = relay_win_build(wb, &k->chunk->win, NULL, 0);
  if (relay_wb_failed(wb)) {
    relay_win_release(k->w);
    k->w = NULL;
    k->rc = -1;
    snprintf(k->err, sizeof(k->err),
             "cannot keep the schema of %s.%s in the relay's data_dir", e->db,
             e->tbl);
  }
  relay_wb_free(wb);
}

static void sub_listed(relay_snapsub_t *ss, work_t *k);

static void read_done(uv_work_t *req, int status) {
  work_t *k = req->data;
  relay_snap_t *s = k->s;
  k->rd->busy = 0;
  if (status < 0 && k->rc == 0) {
    k->rc = -1;
    snprintf(k->err, sizeof(k->err), "%s", uv_strerror(status));
  }
  for (size_t i = 0; i < k->npat; i++)
    free(k->pat[i]);
  free(k->pat);
  if (k->gone) {
    relay_snaptables_free(k->tables, k->ntables);
  } else if (k->list) {
    k->ss->listing = NULL;
    sub_listed(k->ss, k);
  } else {
    entry_t *e = k->e;
    if (k->rc < 0) {
      e->state = E_FAILED;
      e->code = k->rc == HD_ESNAPSHOT ? HD_ESNAPSHOT : -1;
      snprintf(e->err, sizeof(e->err), "%s", k->err);
      hd_log(HD_LL_WARN, COMP, "chunk read failed", "table=%s error=\"%s\"",
             e->table, k->err);
    } else {
      RM_ADD(s->o.m, snapshot_rows_read, k->chunk->win.nrows);
      RM_ADD(s->o.m, snapshot_chunks_read, 1);
      entry_ready(s, e, k->chunk, k->w);
      k->w = NULL;
      hd_log(HD_LL_DEBUG, COMP, "chunk read",
             "table=%s rows=%u scn=%" PRIu64 " done=%d", e->table, e->rows,
             e->scn_high, e->table_done);
    }
    if (k->chunk)
      relay_snapchunk_free(k->chunk);
    if (k->w)
      relay_win_release(k->w);
    /* The next chunks of every consumer's table, then the consumers
     * waiting for this one may go on. */
    for (relay_snapsub_t *ss = s->subs; ss; ss = ss->next)
      if (ss->e)
        read_ahead(s, ss->e);
    for (relay_snapsub_t *ss = s->subs; ss; ss = ss->next)
      ss->woken = ss->e != e;
    wake_unmarked(s);
    entry_put(s, e); /* the read's own reference */
  }
  free(k);
  evict(s);
  /* Only now: a consumer woken above may have ended its subscription,
   * and the service must outlive this callback. */
  s->busy_works--;
  if (maybe_free(s))
    return;
  dispatch(s);
}

static reader_t *free_reader(relay_snap_t *s) {
  for (size_t i = 0; i < s->nreaders; i++)
    if (!s->readers[i].busy)
      return &s->readers[i];
  return NULL;
}

static int queue_work(relay_snap_t *s, work_t *k) {
  k->req.data = k;
  k->s = s;
  k->rd->busy = 1;
  s->busy_works++;
  int rc = uv_queue_work(s->o.loop, &k->req, read_work, read_done);
  if (rc < 0) {
    k->rd->busy = 0;
    s->busy_works--;
  }
  return rc;
}

/* Listings first (a consumer cannot start without one), then chunks in
 * the order they were asked for. */
static void dispatch(relay_snap_t *s) {
  if (s->freeing)
    return;
  uint64_t now = mono_ms();
  reader_t *rd;
  for (relay_snapsub_t *ss = s->subs; ss && (rd = free_reader(s));
       ss = ss->next) {
    if (ss->state != S_LIST || now < ss->retry_ms)
      continue;
    work_t *k = hd_calloc(1, sizeof(*k));
    k->rd = rd;
    k->list = 1;
    k->ss = ss;
    /* The worker's own copy: the subscription may end meanwhile. */
    k->pat = hd_calloc(ss->npat, sizeof(char *));
    for (size_t i = 0; i < ss->npat; i++)
      k->pat[i] = hd_strdup(ss->pat[i]);
    k->npat = ss->npat;
    ss->state = S_LISTING;
    ss->listing = k;
    if (queue_work(s, k) < 0) {
      ss->state = S_LIST;
      ss->listing = NULL;
      for (size_t i = 0; i < k->npat; i++)
        free(k->pat[i]);
      free(k->pat);
      free(k);
      return;
    }
  }
  while (s->queue && (rd = free_reader(s))) {
    entry_t *e = s->queue;
    s->queue = e->qnext;
    if (!s->queue)
      s->qtail = NULL;
    e->qnext = NULL;
    work_t *k = hd_calloc(1, sizeof(*k));
    k->rd = rd;
    k->e = e;
    e->state = E_READING;
    e->refs++; /* the read's */
    if (queue_work(s, k) < 0) {
      e->state = E_FAILED;
      snprintf(e->err, sizeof(e->err), "cannot start a read");
      e->refs--;
      free(k);
    }
  }
}

/* -------------------------------------------------------- subscribers */

static void sub_wake(relay_snapsub_t *ss) {
  if (ss->wake)
    ss->wake(ss->ud);
}

/* Wakes every subscription whose woken mark is 0. A wake may end that
 * subscription (its snapshot is over) or another: each is found by a
 * fresh walk of the list. */
static void wake_unmarked(relay_snap_t *s) {
  for (;;) {
    relay_snapsub_t *ss = s->subs;
    while (ss && ss->woken)
      ss = ss->next;
    if (!ss)
      return;
    ss->woken = 1;
    sub_wake(ss);
  }
}

static int table_wanted(const relay_snapsub_t *ss, const relay_snaptable_t *t) {
  char name[600];
  snprintf(name, sizeof(name), "%s.%s", t->db, t->table);
  if (ss->nftab == 0)
    return 1;
  for (size_t i = 0; i < ss->nftab; i++)
    if (hd_glob_match(ss->ftab[i], name))
      return 1;
  return 0;
}

static void sub_fail(relay_snapsub_t *ss, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sub_fail(relay_snapsub_t *ss, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ss->err, sizeof(ss->err), fmt, ap);
  va_end(ap);
  ss->state = S_FAIL;
  ss->code = code;
  hd_log(HD_LL_ERROR, COMP, "snapshot stopped", "client=%s error=\"%s\"",
         ss->client, ss->err);
}

static void sub_listed(relay_snapsub_t *ss, work_t *k) {
  if (k->rc < 0) {
    relay_snaptables_free(k->tables, k->ntables);
    ss->state = S_LIST;
    ss->backoff = ss->backoff ? ss->backoff * 2 : RETRY_MIN_MS;
    if (ss->backoff > RETRY_MAX_MS)
      ss->backoff = RETRY_MAX_MS;
    ss->retry_ms = mono_ms() + ss->backoff;
    hd_log(HD_LL_WARN, COMP, "cannot list the snapshot's tables, will retry",
           "client=%s retry_ms=%" PRIu64 " error=\"%s\"", ss->client,
           ss->backoff, k->err);
    return;
  }
  /* Only the tables the subscription takes, in name order (the position
   * names a table: the order must be the same on every relay). */
  size_t n = 0;
  char nopk[300] = "";
  for (size_t i = 0; i < k->ntables; i++) {
    if (!table_wanted(ss, &k->tables[i])) {
      free(k->tables[i].db);
      free(k->tables[i].table);
      continue;
    }
    if (!k->tables[i].has_pk) {
      size_t l = strlen(nopk);
      snprintf(nopk + l, sizeof(nopk) - l, "%s%s.%s", l ? ", " : "",
               k->tables[i].db, k->tables[i].table);
    }
    k->tables[n++] = k->tables[i];
  }
  ss->tables = k->tables;
  ss->ntables = n;
  if (*nopk) {
    sub_fail(ss, HD_ESNAPSHOT,
             "snapshot: tables without a primary key cannot be read in "
             "chunks: %s; leave them out of the snapshot's tables",
             nopk);
    sub_wake(ss);
    return;
  }
  ss->state = S_RUN;
  ss->idx = 0;
  Herald__SnapshotPosition *p = ss->resume;
  if (p && p->table && *p->table) {
    while (ss->idx < n) {
      char name[600];
      snprintf(name, sizeof(name), "%s.%s", ss->tables[ss->idx].db,
               ss->tables[ss->idx].table);
      int c = strcmp(name, p->table);
      if (c > 0)
        break;
      if (c == 0) {
        if (p->table_done) {
          ss->idx++;
        } else if (p->after.len) {
          ss->after = hd_malloc(p->after.len);
          memcpy(ss->after, p->after.data, p->after.len);
          ss->after_len = p->after.len;
          ss->table_rows = p->table_rows;
        }
        break;
      }
      ss->idx++;
    }
  }
  if (p) {
    herald__snapshot_position__free_unpacked(p, NULL);
    ss->resume = NULL;
  }
  hd_log(HD_LL_INFO, COMP, "snapshot started",
         "client=%s tables=%zu from_table=%zu from_rows=%" PRIu64 " resumed=%d",
         ss->client, n, ss->idx, ss->table_rows, p != NULL);
  sub_wake(ss);
}

relay_snapsub_t *relay_snap_subscribe(relay_snap_t *s,
                                      const Herald__SnapshotRequest *req,
                                      char *const *tables, size_t ntables,
                                      uint64_t start_scn, const char *client,
                                      void (*wake)(void *ud), void *ud,
                                      char *err, size_t errlen) {
  Herald__SnapshotPosition *p = NULL;
  if (req->position.len) {
    p = herald__snapshot_position__unpack(NULL, req->position.len,
                                          req->position.data);
    if (p == NULL) {
      snprintf(err, errlen, "snapshot position does not decode (%zu bytes)",
               req->position.len);
      return NULL;
    }
  }
  for (size_t i = 0; i < req->n_tables; i++) {
    const char *dot = strchr(req->tables[i], '.');
    if (!dot || dot == req->tables[i] || !dot[1]) {
      snprintf(err, errlen, "snapshot table pattern '%s' is not db.table",
               req->tables[i]);
      if (p)
        herald__snapshot_position__free_unpacked(p, NULL);
      return NULL;
    }
  }
  if (req->chunk_rows > 1000000) {
    snprintf(err, errlen, "snapshot chunk_rows %u is above 1000000",
             req->chunk_rows);
    if (p)
      herald__snapshot_position__free_unpacked(p, NULL);
    return NULL;
  }
  relay_snapsub_t *ss = hd_calloc(1, sizeof(*ss));
  ss->s = s;
  ss->client = hd_strdup(client ? client : "");
  char *const *src = req->n_tables ? req->tables : tables;
  size_t n = req->n_tables ? req->n_tables : ntables;
  if (n == 0) {
    static char *const all[] = {"*.*"};
    src = all;
    n = 1;
  }
  ss->pat = hd_calloc(n, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    ss->pat[i] = hd_strdup(src[i]);
  ss->npat = n;
  ss->ftab = hd_calloc(ntables + 1, sizeof(char *));
  for (size_t i = 0; i < ntables; i++)
    ss->ftab[i] = hd_strdup(tables[i]);
  ss->nftab = ntables;
  ss->limit = req->chunk_rows ? req->chunk_rows
                              : (uint32_t)s->o.conf->relay.snapshot_chunk_rows;
  ss->start_scn = start_scn;
  /* An origin after the stream's start is no origin (a position from
   * elsewhere): the start is sure. */
  ss->origin = p && p->origin_scn && p->origin_scn <= start_scn ? p->origin_scn
                                                                : start_scn;
  ss->wake = wake;
  ss->ud = ud;
  if (p && p->done) {
    ss->state = S_DONE;
    herald__snapshot_position__free_unpacked(p, NULL);
  } else {
    ss->state = S_LIST;
    ss->resume = p;
  }
  ss->next = s->subs;
  if (s->subs)
    s->subs->prev = ss;
  s->subs = ss;
  RM_ADD(s->o.m, snapshot_consumers, 1);
  dispatch(s);
  return ss;
}

void relay_snap_unsubscribe(relay_snapsub_t *ss) {
  if (!ss)
    return;
  relay_snap_t *s = ss->s;
  if (ss->prev)
    ss->prev->next = ss->next;
  else
    s->subs = ss->next;
  if (ss->next)
    ss->next->prev = ss->prev;
  RM_ADD(s->o.m, snapshot_consumers, (uint64_t)-1);
  /* A listing still running is told to drop its result. */
  if (ss->listing) {
    ss->listing->gone = 1;
    ss->listing->ss = NULL;
  }
  entry_put(s, ss->e);
  for (size_t i = 0; i < ss->npat; i++)
    free(ss->pat[i]);
  free(ss->pat);
  for (size_t i = 0; i < ss->nftab; i++)
    free(ss->ftab[i]);
  free(ss->ftab);
  relay_snaptables_free(ss->tables, ss->ntables);
  if (ss->resume)
    herald__snapshot_position__free_unpacked(ss->resume, NULL);
  free(ss->after);
  free(ss->client);
  free(ss);
  maybe_free(s);
}

/* The window fields of a chunk sent at scn: its position and progress. */
static void build_header(relay_snapsub_t *ss, const entry_t *e, uint64_t scn,
                         relay_snap_send_t *out) {
  Herald__SnapshotPosition pos = HERALD__SNAPSHOT_POSITION__INIT;
  Herald__SnapshotChunk ch = HERALD__SNAPSHOT_CHUNK__INIT;
  Herald__Window w = HERALD__WINDOW__INIT;
  char name[600] = "";
  int last_table = ss->idx + 1 >= ss->ntables;
  if (e) {
    snprintf(name, sizeof(name), "%s", e->table);
    pos.table = name;
    pos.after.data = e->next_after;
    pos.after.len = e->next_len;
    pos.table_done = e->table_done;
    pos.done = e->table_done && last_table;
    pos.table_rows = ss->table_rows + e->rows;
    pos.tables_done = (uint32_t)ss->idx;
    ch.rows_read = e->rows;
    ch.table_rows_estimate = ss->tables[ss->idx].rows_estimate;
    ch.read_scn = e->scn_low;
  } else {
    pos.table = name;
    pos.done = 1;
    pos.tables_done = (uint32_t)ss->ntables;
  }
  pos.origin_scn = ss->origin;
  ch.tables_total = (uint32_t)ss->ntables;
  ch.position = &pos;
  w.scn = scn;
  w.snapshot = &ch;
  out->hdr_len = herald__window__get_packed_size(&w);
  out->hdr = hd_malloc(out->hdr_len + 1);
  herald__window__pack(&w, out->hdr);
}

int relay_snap_next(relay_snapsub_t *ss, uint64_t scn, relay_snap_send_t *out,
                    int *code, char *err, size_t errlen) {
  relay_snap_t *s = ss->s;
  memset(out, 0, sizeof(*out));
  switch (ss->state) {
  case S_LIST:
    dispatch(s);
    return RELAY_SNAP_WAIT;
  case S_LISTING:
    return RELAY_SNAP_WAIT;
  case S_DONE:
    return RELAY_SNAP_DONE;
  case S_FAIL:
    *code = ss->code;
    snprintf(err, errlen, "%s", ss->err);
    return RELAY_SNAP_FAIL;
  }
  if (ss->idx >= ss->ntables) {
    /* Nothing (more) to read: one empty chunk says the snapshot is
     * over (a snapshot of no tables, or a resumed one past its last). */
    build_header(ss, NULL, scn, out);
    out->w = relay_win_ref(s->empty);
    out->scn = scn;
    ss->state = S_DONE;
    return RELAY_SNAP_SEND;
  }
  if (ss->e == NULL)
    ss->e = entry_get(s, &ss->tables[ss->idx], ss->after, ss->after_len,
                      ss->limit, scn, ss->origin);
  entry_t *e = ss->e;
  if (e->state == E_FAILED) {
    if (e->code == HD_ESNAPSHOT) {
      sub_fail(ss, HD_ESNAPSHOT, "snapshot of %s: %s", e->table, e->err);
      *code = ss->code;
      snprintf(err, errlen, "%s", ss->err);
      return RELAY_SNAP_FAIL;
    }
    /* The source failed: after a while, read the chunk again. */
    uint64_t now = mono_ms();
    if (ss->retry_ms == 0) {
      ss->backoff = ss->backoff ? ss->backoff * 2 : RETRY_MIN_MS;
      if (ss->backoff > RETRY_MAX_MS)
        ss->backoff = RETRY_MAX_MS;
      ss->retry_ms = now + ss->backoff;
    }
    if (now < ss->retry_ms)
      return RELAY_SNAP_WAIT;
    ss->retry_ms = 0;
    entry_put(s, e);
    ss->e = NULL;
    return relay_snap_next(ss, scn, out, code, err, errlen);
  }
  if (e->state != E_READY)
    return RELAY_SNAP_WAIT;
  if (e->unusable || (e->stale_scn && scn >= e->stale_scn) ||
      !covers(e, ss->origin)) {
    entry_put(s, e);
    ss->e = NULL;
    return relay_snap_next(ss, scn, out, code, err, errlen);
  }
  /* Only at a position the chunk's rows are as of, and that every
   * captured window up to has been looked at for. A position before the
   * chunk's will do when the stream has no window after it and the source
   * had nothing up to the chunk's either (a rotated binlog with no commit
   * since). */
  int quiet = scn == s->tracked_scn && s->idle_scn >= e->scn_high;
  if ((scn < e->scn_high && !quiet) || scn > s->tracked_scn)
    return RELAY_SNAP_WAIT;
  ss->backoff = 0;
  build_header(ss, e, scn, out);
  out->w = relay_win_ref(e->w);
  out->changed = e->changed;
  out->scn = scn;
  uint32_t sent = 0;
  for (uint32_t i = 0; i < e->w->nrows; i++)
    sent += !relay_snap_dropped(out, i);
  RM_ADD(s->o.m, snapshot_rows_dropped, e->w->nrows - sent);
  /* The position moves on; the next chunk is asked for at once, so that
   * it is read while this one is applied. */
  ss->table_rows += e->rows;
  if (e->table_done) {
    ss->idx++;
    free(ss->after);
    ss->after = NULL;
    ss->after_len = 0;
    ss->table_rows = 0;
    if (ss->idx >= ss->ntables)
      ss->state = S_DONE;
  } else {
    free(ss->after);
    ss->after = hd_malloc(e->next_len + 1);
    memcpy(ss->after, e->next_after, e->next_len);
    ss->after_len = e->next_len;
  }
  ss->e = NULL;
  if (ss->state == S_RUN) {
    ss->e = entry_get(s, &ss->tables[ss->idx], ss->after, ss->after_len,
                      ss->limit, scn, ss->origin);
    read_ahead(s, ss->e);
  }
  entry_put(s, e);
  return RELAY_SNAP_SEND;
}

/* ------------------------------------------------------------ service */

relay_snap_t *relay_snap_new(const relay_snap_opts_t *o) {
  relay_snap_t *s = hd_calloc(1, sizeof(*s));
  s->o = *o;
  s->nreaders = (size_t)o->conf->relay.snapshot_readers;
  s->readers = hd_calloc(s->nreaders, sizeof(reader_t));
  relay_ring_t *r = o->ring;
  s->tracked_scn =
      r->end > r->first ? relay_ring_at(r, r->end - 1)->scn : r->prev_scn;
  relay_wb_t *wb = relay_wb_new();
  hb_window_t hw;
  memset(&hw, 0, sizeof(hw));
  s->empty = relay_win_build(wb, &hw, NULL, 0);
  relay_wb_free(wb);
  return s;
}

/* Freed once asked to be and nothing refers to it: no read on a worker,
 * no subscription (the server's connections own theirs and end them as
 * they close, which may come after relay_snap_free()). */
static int maybe_free(relay_snap_t *s) {
  if (!s->freeing || s->busy_works || s->subs)
    return 0;
  while (s->entries)
    entry_free(s, s->entries);
  for (size_t i = 0; i < s->nreaders; i++)
    relay_snapread_close(s->readers[i].r);
  free(s->readers);
  relay_win_release(s->empty);
  free(s);
  return 1;
}

void relay_snap_free(relay_snap_t *s) {
  if (!s)
    return;
  s->freeing = 1;
  maybe_free(s);
}
