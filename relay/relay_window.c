/*
 * relay_window.c - hb_window_t -> packed herald.Window with an index of
 * its rows and schema changes.
 */
#include "relay_window.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hd_mem.h"
#include "hd_pbwire.h"
#include "hb_pb.h"
#include "relay_schema.h"
#include "herald.pb-c.h"

/* Field tags of herald.Window used when composing by hand:
 * (field number << 3) | wire type 2 (length-delimited). */
#define TAG_WINDOW_CHANGES HD_PB_TAG(7, HD_PB_LEN)
#define TAG_WINDOW_DDL HD_PB_TAG(8, HD_PB_LEN)

/* ------------------------------------------------------------ growable */

typedef struct {
  uint8_t *p;
  size_t len, cap;
} gbuf_t;

static void gb_reserve(gbuf_t *b, size_t more) {
  if (b->len + more <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + more)
    cap *= 2;
  b->p = hd_realloc(b->p, cap);
  b->cap = cap;
}

static void gb_varint(gbuf_t *b, uint64_t v) {
  gb_reserve(b, 10);
  b->len += hd_pb_varint(b->p + b->len, v);
}

/* Appends one length-delimited field holding msg, packed in place. */
static void gb_field(gbuf_t *b, uint32_t tag, const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  gb_varint(b, tag);
  gb_varint(b, n);
  gb_reserve(b, n);
  protobuf_c_message_pack(msg, b->p + b->len);
  b->len += n;
}

/* ------------------------------------------------------------- values */

/* String copies for one row, in blocks that never move (pointers into
 * them are held until the row is packed) and are kept for the next row:
 * no allocation per value once the blocks are there. */
typedef struct sblk {
  struct sblk *next;
  size_t cap, used;
  char data[];
} sblk_t;

/* Scratch for one window: column and value arrays, string copies. */
typedef struct {
  Herald__Column *cols;
  Herald__Value *vals;
  Herald__Column **ptrs;
  size_t ncap;
  sblk_t *blocks; /* the one being filled first */
} scratch_t;

#define SBLK_SIZE ((size_t)64 << 10)

/* A NUL-terminated copy of s[0..n) valid until sc_reset(). */
static char *sc_str(scratch_t *sc, const char *s, size_t n) {
  sblk_t *b = sc->blocks;
  if (b == NULL || b->cap - b->used < n + 1) {
    size_t cap = n + 1 > SBLK_SIZE ? n + 1 : SBLK_SIZE;
    sblk_t *nb = hd_malloc(sizeof(sblk_t) + cap);
    nb->cap = cap;
    nb->used = 0;
    nb->next = b;
    sc->blocks = b = nb;
  }
  char *c = b->data + b->used;
  if (n)
    memcpy(c, s, n);
  c[n] = '\0';
  b->used += n + 1;
  return c;
}

/* Forget the copies; one block stays for the next row. */
static void sc_reset(scratch_t *sc) {
  sblk_t *b = sc->blocks;
  if (b == NULL)
    return;
  while (b->next) {
    sblk_t *n = b->next;
    b->next = n->next;
    free(n);
  }
  b->used = 0;
}

/* Tables whose schema version the registry has: most windows touch the
 * tables of the windows before, and the registry takes a lock. */
#define NOTED_SLOTS 64

struct relay_wb {
  scratch_t sc;
  uint8_t *ktmp; /* canonical key bytes (hd_key_of) */
  size_t ktmpcap;
  relay_schemas_t *schemas;
  int failed;
  struct {
    const hb_table_t *t;
    uint32_t version;
  } noted[NOTED_SLOTS];
};

/* The schema version of t, registered with the registry if this builder
 * has not done so yet. */
static uint32_t note_schema(relay_wb_t *wb, const hb_table_t *t) {
  size_t i = ((uintptr_t)t >> 4) % NOTED_SLOTS;
  /* A table freed and another built at its address has a version of its
   * own (the digest covers its names), so both must match. */
  if (wb->noted[i].t == t && wb->noted[i].version == t->schema_version &&
      t->schema_version != 0)
    return t->schema_version;
  uint32_t version = 0;
  if (relay_schemas_note(wb->schemas, t, &version) < 0) {
    wb->failed = 1;
    return version;
  }
  wb->noted[i].t = t;
  wb->noted[i].version = version;
  return version;
}

relay_wb_t *relay_wb_new(void) {
  return hd_calloc(1, sizeof(relay_wb_t));
}

void relay_wb_set_schemas(relay_wb_t *wb, relay_schemas_t *s) {
  wb->schemas = s;
}

int relay_wb_failed(const relay_wb_t *wb) {
  return wb->failed;
}

/* Notes (table, version) among the window's distinct pairs. */
static void sch_add(relay_win_t *rw, size_t *cap, uint32_t table,
                    uint32_t version) {
  if (version == 0)
    return;
  for (uint32_t i = 0; i < rw->nsch; i++)
    if (rw->sch[i].table == table && rw->sch[i].version == version)
      return;
  if (rw->nsch == *cap) {
    *cap = *cap ? *cap * 2 : 4;
    rw->sch = hd_realloc(rw->sch, *cap * sizeof(*rw->sch));
  }
  rw->sch[rw->nsch].table = table;
  rw->sch[rw->nsch].version = version;
  rw->sch[rw->nsch].key = relay_sch_key(rw->tables[table], version);
  rw->nsch++;
}

void relay_wb_free(relay_wb_t *wb) {
  if (wb == NULL)
    return;
  sc_reset(&wb->sc);
  free(wb->sc.blocks);
  free(wb->sc.cols);
  free(wb->sc.vals);
  free(wb->sc.ptrs);
  free(wb->ktmp);
  free(wb);
}

static void sc_need(scratch_t *sc, size_t n) {
  if (n <= sc->ncap)
    return;
  sc->cols = hd_realloc(sc->cols, n * sizeof(*sc->cols));
  sc->vals = hd_realloc(sc->vals, n * sizeof(*sc->vals));
  sc->ptrs = hd_realloc(sc->ptrs, n * sizeof(*sc->ptrs));
  sc->ncap = n;
}

/* Fills slot k with the column's name and value; returns 0 when the
 * column is not in this image (minimal row images), else 1. Text goes
 * through the scratch arena because protobuf-c wants NUL-terminated
 * strings and the decoder's are not. */
static char *sc_copy(void *ud, const char *s, size_t n) {
  return sc_str(ud, s, n);
}

static int fill_col(scratch_t *sc, size_t k, const hb_column_t *c,
                    const hb_value_t *v) {
  Herald__Value *pv = &sc->vals[k];
  if (!hb_value_to_pb(v, pv, sc_copy, sc))
    return 0;
  Herald__Column *pc = &sc->cols[k];
  herald__column__init(pc);
  pc->name = (char *)c->name;
  pc->value = pv;
  sc->ptrs[k] = pc;
  return 1;
}

/* ---------------------------------------------------------------- keys */

/* The index entry's keys from a row change's (unpacked) key columns; an
 * old key is the row's key before an UPDATE that moved it. */
static void index_keys(relay_win_t *rw, size_t *oldcap, relay_row_t *ri,
                       Herald__Column *const *key, size_t n,
                       Herald__Column *const *old, size_t nold,
                       relay_wb_t *wb) {
  hd_key_of(&ri->key, key, n, &wb->ktmp, &wb->ktmpcap);
  ri->old = 0;
  if (nold == 0)
    return;
  if (rw->nolds == *oldcap) {
    *oldcap = *oldcap ? *oldcap * 2 : 4;
    rw->olds = hd_realloc(rw->olds, *oldcap * sizeof(hd_key_t));
  }
  hd_key_of(&rw->olds[rw->nolds], old, nold, &wb->ktmp, &wb->ktmpcap);
  ri->old = ++rw->nolds;
}

/* ---------------------------------------------------------------- build */

static uint32_t table_index(relay_win_t *w, size_t *cap, const char *db,
                            const char *table) {
  size_t dl = strlen(db), tl = strlen(table);
  for (uint32_t i = 0; i < w->ntables; i++) {
    const char *t = w->tables[i];
    if (strncmp(t, db, dl) == 0 && t[dl] == '.' &&
        strcmp(t + dl + 1, table) == 0)
      return i;
  }
  if (w->ntables == *cap) {
    *cap = *cap ? *cap * 2 : 4;
    w->tables = hd_realloc(w->tables, *cap * sizeof(char *));
  }
  char *s = hd_malloc(dl + tl + 2);
  memcpy(s, db, dl);
  s[dl] = '.';
  memcpy(s + dl + 1, table, tl + 1);
  w->tables[w->ntables] = s;
  return w->ntables++;
}

static void pack_header(gbuf_t *b, const hb_window_t *w, const hb_ddl_t *d,
                        uint32_t rows_total) {
  Herald__Window hw = HERALD__WINDOW__INIT;
  char *gtid = NULL;
  if (w) {
    hw.scn = w->scn;
    hw.ts_ms = w->ts_ms;
    hw.server_id = w->server_id;
    hw.file = (char *)w->file;
    hw.pos = w->end_pos;
    hw.chunk = w->chunk;
    hw.more_chunks = w->more;
    gtid = (char *)w->gtid;
  } else {
    hw.scn = d->scn;
    hw.ts_ms = d->ts_ms;
    hw.server_id = d->server_id;
    hw.file = (char *)d->file;
    hw.pos = (uint32_t)d->scn;
    gtid = (char *)d->gtid;
  }
  hw.gtid = gtid ? gtid : "";
  hw.rows_total = rows_total;
  size_t n = herald__window__get_packed_size(&hw);
  if (n == 0)
    return; /* every field at its default (the relay's empty snapshot
               chunk): nothing to write, and no buffer yet */
  gb_reserve(b, n);
  herald__window__pack(&hw, b->p + b->len);
  b->len += n;
}

/* Packs one statement and indexes it: its byte range, and the tables it
 * names for the consumers' table filters, found here once rather than
 * per consumer. */
static void pack_ddl(gbuf_t *b, const hb_ddl_t *d, scratch_t *sc,
                     relay_ddl_t *ri) {
  Herald__SchemaChange sc_msg = HERALD__SCHEMA_CHANGE__INIT;
  sc_msg.db = (char *)d->db;
  sc_msg.statement = sc_str(sc, d->statement, d->len);
  sc_msg.pos = d->pos;
  sc_msg.row_index = (uint32_t)d->row_index;
  ri->off = (uint32_t)b->len;
  gb_field(b, TAG_WINDOW_DDL, &sc_msg.base);
  ri->len = (uint32_t)(b->len - ri->off);
  hb_sql_names(d->statement, d->len, d->db, &ri->names);
}

static void free_ddls(relay_win_t *w) {
  for (uint32_t i = 0; i < w->nddl; i++)
    hb_sql_names_free(&w->ddls[i].names);
  free(w->ddls);
}

static relay_win_t *finish(relay_win_t *rw, gbuf_t *b) {
  rw->buf = b->p;
  rw->len = b->len;
  rw->refs = 1;
  rw->mem = sizeof(*rw) + b->cap + rw->nrows * sizeof(relay_row_t) +
            rw->nolds * sizeof(hd_key_t);
  for (uint32_t i = 0; i < rw->ntables; i++)
    rw->mem += strlen(rw->tables[i]) + 1 + sizeof(char *);
  for (uint32_t i = 0; i < rw->nddl; i++)
    rw->mem += sizeof(relay_ddl_t) + hb_sql_names_mem(&rw->ddls[i].names);
  return rw;
}

relay_win_t *relay_win_build(relay_wb_t *wb, const hb_window_t *w,
                             const hb_ddl_t *ddl, size_t nddl) {
  scratch_t *sc = &wb->sc;
  relay_win_t *rw = hd_calloc(1, sizeof(*rw));
  gbuf_t b = {0};
  size_t tabcap = 0, schcap = 0, oldcap = 0;
  const hb_table_t *last_t = NULL;
  uint32_t version = 0;
  wb->failed = 0;
  rw->scn = w->scn;
  rw->ts_ms = w->ts_ms;
  rw->chunk = w->chunk;
  rw->more = w->more;
  pack_header(&b, w, NULL, (uint32_t)w->nrows);
  rw->hdr_len = (uint32_t)b.len;
  rw->nrows = (uint32_t)w->nrows;
  rw->rows = hd_calloc(w->nrows ? w->nrows : 1, sizeof(relay_row_t));

  for (size_t i = 0; i < w->nrows; i++) {
    const hb_row_t *r = &w->rows[i];
    const hb_table_t *t = r->table;
    Herald__RowChange rc = HERALD__ROW_CHANGE__INIT;
    sc_reset(sc);
    /* Slots: [0, n) before, [n, 2n) after, [2n, 2n + npk) key. */
    size_t n = t->ncols;
    sc_need(sc, 2 * n + 2 * t->npk + 1);
    rc.db = (char *)t->db;
    rc.table = (char *)t->name;
    rc.pos = r->pos;
    if (wb->schemas && t != last_t) {
      last_t = t;
      version = note_schema(wb, t);
    }
    rc.schema_version = version;
    rc.op = r->op == 'c'   ? HERALD__OP__OP_INSERT
            : r->op == 'u' ? HERALD__OP__OP_UPDATE
            : r->op == 'r' ? HERALD__OP__OP_READ
                           : HERALD__OP__OP_DELETE;
    size_t k = 0;
    if (r->before) {
      rc.before = &sc->ptrs[k];
      for (size_t c = 0; c < n; c++)
        k += (size_t)fill_col(sc, k, &t->cols[c], &r->before[c]);
      rc.n_before = k;
    }
    size_t a0 = k;
    if (r->after) {
      rc.after = &sc->ptrs[a0];
      for (size_t c = 0; c < n; c++)
        k += (size_t)fill_col(sc, k, &t->cols[c], &r->after[c]);
      rc.n_after = k - a0;
    }
    /* The key comes from the after image, or the before image of a
     * delete, in primary key order. */
    const hb_value_t *img = r->after ? r->after : r->before;
    size_t k0 = k;
    for (uint32_t p = 0; p < t->npk; p++) {
      uint32_t c = t->pk[p];
      if (c < n && img[c].kind != HB_V_ABSENT)
        k += (size_t)fill_col(sc, k, &t->cols[c], &img[c]);
    }
    rc.key = &sc->ptrs[k0];
    rc.n_key = k - k0;
    /* An UPDATE that changed the primary key also names the key it had:
     * the owner of the old key's partition must see it to delete it. */
    if (r->before && r->after) {
      size_t o0 = k;
      int moved = 0;
      for (uint32_t p = 0; p < t->npk; p++) {
        uint32_t c = t->pk[p];
        if (c < n && r->before[c].kind != HB_V_ABSENT)
          k += (size_t)fill_col(sc, k, &t->cols[c], &r->before[c]);
      }
      if (k - o0 == rc.n_key) {
        for (size_t q = 0; q < rc.n_key && !moved; q++)
          moved = !hd_key_value_same(sc->ptrs[o0 + q]->value, rc.key[q]->value,
                                     &wb->ktmp, &wb->ktmpcap);
      }
      if (moved) {
        rc.old_key = &sc->ptrs[o0];
        rc.n_old_key = k - o0;
      }
    }

    relay_row_t *ri = &rw->rows[i];
    ri->off = (uint32_t)b.len;
    gb_field(&b, TAG_WINDOW_CHANGES, &rc.base);
    ri->len = (uint32_t)(b.len - ri->off);
    ri->table = table_index(rw, &tabcap, t->db, t->name);
    ri->schema_version = version;
    sch_add(rw, &schcap, ri->table, version);
    index_keys(rw, &oldcap, ri, rc.key, rc.n_key, rc.old_key, rc.n_old_key, wb);
  }
  rw->ddl_off = (uint32_t)b.len;
  rw->ddls = hd_calloc(nddl ? nddl : 1, sizeof(relay_ddl_t));
  for (size_t i = 0; i < nddl; i++)
    pack_ddl(&b, &ddl[i], sc, &rw->ddls[i]);
  rw->nddl = (uint32_t)nddl;
  sc_reset(sc);
  return finish(rw, &b);
}

size_t relay_win_chunk_header(const hb_window_t *w, uint32_t rows_total,
                              uint32_t chunk, int more, uint8_t **out,
                              size_t *cap) {
  hb_window_t cw = *w;
  cw.chunk = chunk;
  cw.more = (uint8_t)more;
  gbuf_t b = {*out, 0, *cap};
  pack_header(&b, &cw, NULL, rows_total);
  *out = b.p;
  *cap = b.cap;
  return b.len;
}

relay_win_t *relay_win_marker(uint64_t scn, uint64_t ts_ms) {
  relay_win_t *rw = hd_calloc(1, sizeof(*rw));
  rw->scn = scn;
  rw->ts_ms = ts_ms;
  rw->disk_only = 1;
  rw->refs = 1;
  rw->rows = hd_calloc(1, sizeof(relay_row_t));
  rw->mem = sizeof(*rw);
  return rw;
}

relay_win_t *relay_win_build_ddl(relay_wb_t *wb, const hb_ddl_t *ddl) {
  scratch_t *sc = &wb->sc;
  relay_win_t *rw = hd_calloc(1, sizeof(*rw));
  gbuf_t b = {0};
  rw->scn = ddl->scn;
  rw->ts_ms = ddl->ts_ms;
  pack_header(&b, NULL, ddl, 0);
  rw->hdr_len = (uint32_t)b.len;
  rw->rows = hd_calloc(1, sizeof(relay_row_t));
  rw->ddl_off = (uint32_t)b.len;
  rw->ddls = hd_calloc(1, sizeof(relay_ddl_t));
  pack_ddl(&b, ddl, sc, &rw->ddls[0]);
  rw->nddl = 1;
  sc_reset(sc);
  return finish(rw, &b);
}

relay_win_t *relay_win_from_packed(relay_wb_t *wb, uint8_t *buf, size_t len) {
  /* The header is everything before the first row or DDL field; rows
   * precede DDL. Walk the top-level fields to find them. */
  relay_win_t *rw = hd_calloc(1, sizeof(*rw));
  size_t tabcap = 0, rowcap = 0, schcap = 0, ddlcap = 0, oldcap = 0;
  const uint8_t *p = buf, *end = buf + len;
  int seen_body = 0;
  Herald__Window *hdr = NULL;
  rw->hdr_len = (uint32_t)len;
  rw->ddl_off = (uint32_t)len;
  while (p < end) {
    const uint8_t *fstart = p;
    uint64_t tag, flen = 0;
    if (hd_pb_read_varint(&p, end, &tag) < 0)
      goto bad;
    uint32_t wt = (uint32_t)(tag & 7), fn = (uint32_t)(tag >> 3);
    if (wt == 0) {
      if (hd_pb_read_varint(&p, end, &flen) < 0)
        goto bad;
      flen = 0;
    } else if (wt == 2) {
      if (hd_pb_read_varint(&p, end, &flen) < 0 || flen > (uint64_t)(end - p))
        goto bad;
    } else if (wt == 1 || wt == 5) {
      flen = wt == 1 ? 8 : 4;
      if (flen > (uint64_t)(end - p))
        goto bad;
    } else {
      goto bad;
    }
    if (fn == 7 || fn == 8) {
      if (!seen_body) {
        rw->hdr_len = (uint32_t)(fstart - buf);
        seen_body = 1;
      }
      if (fn == 8 && rw->nddl == 0)
        rw->ddl_off = (uint32_t)(fstart - buf);
    } else if (seen_body) {
      goto bad; /* header fields after the body: not our layout */
    }
    if (fn == 7) {
      if (rw->nddl)
        goto bad;
      Herald__RowChange *rc = herald__row_change__unpack(NULL, flen, p);
      if (rc == NULL)
        goto bad;
      if (rw->nrows == rowcap) {
        rowcap = rowcap ? rowcap * 2 : 16;
        rw->rows = hd_realloc(rw->rows, rowcap * sizeof(relay_row_t));
      }
      relay_row_t *ri = &rw->rows[rw->nrows++];
      ri->off = (uint32_t)(fstart - buf);
      ri->len = (uint32_t)(p + flen - fstart);
      ri->table = table_index(rw, &tabcap, rc->db, rc->table);
      index_keys(rw, &oldcap, ri, rc->key, rc->n_key, rc->old_key,
                 rc->n_old_key, wb);
      ri->schema_version = rc->schema_version;
      sch_add(rw, &schcap, ri->table, rc->schema_version);
      herald__row_change__free_unpacked(rc, NULL);
    } else if (fn == 8) {
      Herald__SchemaChange *sc = herald__schema_change__unpack(NULL, flen, p);
      if (sc == NULL)
        goto bad;
      if (rw->nddl == ddlcap) {
        ddlcap = ddlcap ? ddlcap * 2 : 4;
        rw->ddls = hd_realloc(rw->ddls, ddlcap * sizeof(relay_ddl_t));
      }
      relay_ddl_t *di = &rw->ddls[rw->nddl++];
      di->off = (uint32_t)(fstart - buf);
      di->len = (uint32_t)(p + flen - fstart);
      const char *st = sc->statement ? sc->statement : "";
      hb_sql_names(st, strlen(st), sc->db ? sc->db : "", &di->names);
      herald__schema_change__free_unpacked(sc, NULL);
    }
    p += flen;
  }
  hdr = herald__window__unpack(NULL, rw->hdr_len, buf);
  if (hdr == NULL)
    goto bad;
  rw->scn = hdr->scn;
  rw->ts_ms = hdr->ts_ms;
  rw->chunk = hdr->chunk;
  rw->more = hdr->more_chunks;
  herald__window__free_unpacked(hdr, NULL);
  if (rw->rows == NULL)
    rw->rows = hd_calloc(1, sizeof(relay_row_t));
  if (rw->ddls == NULL)
    rw->ddls = hd_calloc(1, sizeof(relay_ddl_t));
  gbuf_t b = {buf, len, len};
  return finish(rw, &b);
bad:
  for (uint32_t i = 0; i < rw->ntables; i++)
    free(rw->tables[i]);
  free(rw->tables);
  free(rw->rows);
  free(rw->sch);
  free(rw->olds);
  free_ddls(rw);
  free(rw);
  return NULL;
}

relay_win_t *relay_win_ref(relay_win_t *w) {
  atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
  return w;
}

void relay_win_release(relay_win_t *w) {
  if (w == NULL)
    return;
  if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
    return;
  for (uint32_t i = 0; i < w->ntables; i++)
    free(w->tables[i]);
  free(w->tables);
  free(w->rows);
  free(w->sch);
  free(w->olds);
  free_ddls(w);
  free(w->buf);
  free(w);
}
