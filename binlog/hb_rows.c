/*
 * hb_rows.c - WRITE/UPDATE/DELETE rows events (v1, v2, MariaDB compressed)
 * and MySQL's PARTIAL_UPDATE_ROWS, into the open window's row changes.
 *
 * Layout: post-header (table id, flags, v2: extra data), column count, a
 * bitmap of the columns present in the images (a second one for the
 * after-image of updates), then rows. Each image is a null bitmap over the
 * present columns followed by the non-null values. MariaDB's compressed
 * events zlib-compress everything after the bitmaps.
 *
 * This is the hot path: the row bytes are copied once into the window's
 * arena, and values that need no conversion point into that copy.
 */
#include <string.h>

#include "hb_int.h"
#include "hd_log.h"
#include "hd_mem.h"

enum { OP_WRITE, OP_UPDATE, OP_DELETE };

/* PARTIAL_UPDATE_ROWS: value_options bit for JSON diffs in the after
 * image. */
#define PARTIAL_JSON_UPDATES 1

typedef struct {
  uint8_t op;
  uint8_t v2;         /* post-header has extra data */
  uint8_t compressed; /* MariaDB *_ROWS_COMPRESSED */
  uint8_t partial;    /* PARTIAL_UPDATE_ROWS */
} rows_kind_t;

/* The rows event types, one row each: type, op, v2, compressed, partial.
 * MySQL v1 23-25 (also MariaDB's), v2 30-32, PARTIAL_UPDATE_ROWS 39;
 * MariaDB compressed v1 166-168 and v2 169-171. */
static const struct {
  uint8_t type;
  rows_kind_t k;
} rows_kinds[] = {
    {HB_EV_WRITE_ROWS_V1, {OP_WRITE, 0, 0, 0}},
    {HB_EV_UPDATE_ROWS_V1, {OP_UPDATE, 0, 0, 0}},
    {HB_EV_DELETE_ROWS_V1, {OP_DELETE, 0, 0, 0}},
    {HB_EV_WRITE_ROWS, {OP_WRITE, 1, 0, 0}},
    {HB_EV_UPDATE_ROWS, {OP_UPDATE, 1, 0, 0}},
    {HB_EV_DELETE_ROWS, {OP_DELETE, 1, 0, 0}},
    {HB_EV_PARTIAL_UPDATE_ROWS, {OP_UPDATE, 1, 0, 1}},
    {HB_EV_MARIA_WRITE_ROWS_COMPRESSED_V1, {OP_WRITE, 0, 1, 0}},
    {HB_EV_MARIA_UPDATE_ROWS_COMPRESSED_V1, {OP_UPDATE, 0, 1, 0}},
    {HB_EV_MARIA_DELETE_ROWS_COMPRESSED_V1, {OP_DELETE, 0, 1, 0}},
    {HB_EV_MARIA_WRITE_ROWS_COMPRESSED, {OP_WRITE, 1, 1, 0}},
    {HB_EV_MARIA_UPDATE_ROWS_COMPRESSED, {OP_UPDATE, 1, 1, 0}},
    {HB_EV_MARIA_DELETE_ROWS_COMPRESSED, {OP_DELETE, 1, 1, 0}},
};

static int rows_kind(uint8_t type, rows_kind_t *k) {
  for (size_t i = 0; i < sizeof(rows_kinds) / sizeof(rows_kinds[0]); i++) {
    if (rows_kinds[i].type == type) {
      *k = rows_kinds[i].k;
      return 0;
    }
  }
  return -1;
}

static size_t popcount_bits(const uint8_t *bm, uint32_t n) {
  size_t c = 0;
  for (uint32_t i = 0; i < n; i++)
    c += (bm[i / 8] >> (i % 8)) & 1;
  return c;
}

static hb_row_t *row_add(hb_decoder_t *dec) {
  if (dec->nrows == dec->caprows) {
    dec->caprows = dec->caprows ? dec->caprows * 2 : 256;
    dec->rows = hd_realloc(dec->rows, dec->caprows * sizeof(*dec->rows));
  }
  return &dec->rows[dec->nrows++];
}

/* Room for one image's values, in the arena: no copying as a large
 * transaction grows, and pointers that stay valid until it is emitted. */
static hb_value_t *image_alloc(hb_decoder_t *dec, uint32_t ncols) {
  return hb__arena_alloc(&dec->arena, (size_t)ncols * sizeof(hb_value_t));
}

static int value_error(hb_decoder_t *dec, const hb__table_t *t, uint32_t i,
                       const char *why, int unsupported) {
  return hb__fail(dec, unsupported ? HB_EUNSUPPORTED : HB_ECORRUPT,
                  "%s.%s column %s (@%u, type %u): %s", t->pub.db, t->pub.name,
                  t->cols[i].name, i + 1, t->cols[i].type, why);
}

/* Context of one rows event for decoding its images. */
typedef struct {
  hb__table_t *t;
  const uint8_t *present; /* bitmap of the image's columns */
  size_t npresent;
  int partial_ai; /* after-image of PARTIAL_UPDATE_ROWS */
  int keep_json;  /* before-image of PARTIAL_UPDATE_ROWS */
} image_ctx_t;

/* Apply (or, without a before document, spell out) the JSON diffs of a
 * partial update. data/n: the diff vector after its length prefix. */
static int partial_json(hb_decoder_t *dec, const hb__table_t *t, uint32_t i,
                        const uint8_t *data, size_t n, hb_value_t *v) {
  const char *why = NULL;
  hb_buf_t *b = &dec->scratch;
  hb_buf_reset(b);
  if (dec->jraw && dec->jraw[i]) {
    if (hb__jsonb_apply_diffs(dec->jraw[i], dec->jlen[i], data, n, b, &why) ==
        0) {
      v->kind = HB_V_JSON;
    } else {
      /* The server would reject the row; say so, but keep the diff. */
      hd_log(HD_LL_WARN, "binlog", "JSON diff not applicable",
             "file=%s pos=%llu table=%s.%s column=%s reason=\"%s\"",
             dec->file ? dec->file : "", (unsigned long long)dec->ev_pos,
             t->pub.db, t->pub.name, t->cols[i].name, why);
      hb_buf_reset(b);
      why = NULL;
      if (hb__jsonb_diffs_to_json(data, n, b, &why) < 0)
        return value_error(dec, t, i, why, 0);
      v->kind = HB_V_JSON_DIFF;
    }
  } else {
    if (hb__jsonb_diffs_to_json(data, n, b, &why) < 0)
      return value_error(dec, t, i, why, 0);
    v->kind = HB_V_JSON_DIFF;
  }
  if (b->len > UINT32_MAX)
    return value_error(dec, t, i, "JSON text longer than 4 GiB", 0);
  char *o = hb__arena_alloc(&dec->arena, b->len);
  memcpy(o, b->p, b->len);
  v->s = o;
  v->len = (uint32_t)b->len;
  return 0;
}

/* Decode one image at *pp into vals[0..ncols). */
static int decode_image(hb_decoder_t *dec, const image_ctx_t *ic,
                        const uint8_t **pp, const uint8_t *end,
                        hb_value_t *vals) {
  hb__table_t *t = ic->t;
  uint32_t ncols = t->pub.ncols;
  const uint8_t *p = *pp;
  const uint8_t *pbits = NULL;
  if (ic->partial_ai) {
    uint64_t opts;
    if (hb__lenenc(&p, end, &opts) < 0)
      return hb__fail(dec, HB_ECORRUPT,
                      "%s.%s: partial update options run past the event",
                      t->pub.db, t->pub.name);
    if (opts & PARTIAL_JSON_UPDATES) {
      size_t nb = (t->njson + 7) / 8;
      if ((size_t)(end - p) < nb)
        return hb__fail(dec, HB_ECORRUPT,
                        "%s.%s: partial update bitmap runs past the event",
                        t->pub.db, t->pub.name);
      pbits = p;
      p += nb;
    }
  }
  size_t nb = (ic->npresent + 7) / 8;
  if ((size_t)(end - p) < nb)
    return hb__fail(dec, HB_ECORRUPT, "%s.%s: null bitmap runs past the event",
                    t->pub.db, t->pub.name);
  const uint8_t *nulls = p;
  p += nb;
  uint32_t k = 0, jk = 0;
  for (uint32_t i = 0; i < ncols; i++) {
    hb_value_t *v = &vals[i];
    const hb_column_t *col = &t->cols[i];
    int partial = 0;
    /* The partial bitmap has a bit per JSON column of the table, present
     * in the image or not. */
    if (col->type == HB_T_JSON) {
      if (pbits)
        partial = (pbits[jk / 8] >> (jk % 8)) & 1;
      jk++;
    }
    if (!((ic->present[i / 8] >> (i % 8)) & 1)) {
      v->kind = HB_V_ABSENT;
      continue;
    }
    int isnull = (nulls[k / 8] >> (k % 8)) & 1;
    k++;
    if (isnull) {
      v->kind = HB_V_NULL;
      continue;
    }
    const hb__col_t *x = &t->x[i];
    if (partial) {
      const uint8_t *data;
      unsigned pb = x->size;
      if ((size_t)(end - p) < pb)
        return value_error(dec, t, i, "JSON diff runs past the event", 0);
      uint64_t n = hb__le(p, pb);
      if (n > (uint64_t)(end - p) - pb)
        return value_error(dec, t, i, "JSON diff runs past the event", 0);
      data = p + pb;
      p = data + n;
      int r = partial_json(dec, t, i, data, (size_t)n, v);
      if (r < 0)
        return r;
      continue;
    }
    size_t used;
    const char *why = NULL;
    if (x->dk == HB_DK_BAD)
      return value_error(dec, t, i, x->bad, 1);
    if (hb__decode_value(dec, col, x, p, end, v, &used, &why) < 0)
      return value_error(dec, t, i, why, 0);
    if (ic->keep_json && x->dk == HB_DK_JSON) {
      /* The before document of a partial update, for applying diffs. */
      dec->jraw[i] = p + x->size;
      dec->jlen[i] = used - x->size;
    }
    p += used;
  }
  *pp = p;
  return 0;
}

int hb__rows_event(hb_decoder_t *dec, uint8_t type, const uint8_t *body,
                   size_t len) {
  rows_kind_t rk;
  if (rows_kind(type, &rk) < 0)
    return hb__fail(dec, HB_ECORRUPT, "event type %u is not a rows event",
                    type);
  unsigned ph = dec->ph[type];
  if (ph != 6 && ph != 8 && ph != 10)
    ph = rk.v2 ? 10 : 8;
  if (len < ph)
    return hb__fail(dec, HB_ECORRUPT, "rows event shorter than its header");
  uint64_t id = ph == 6 ? hb__u32(body) : hb__u48(body);
  const uint8_t *p = body + ph, *e = body + len;
  if (ph == 10) {
    /* v2: the extra-data length counts its own two bytes. */
    uint16_t xl = hb__u16(body + 8);
    if (xl < 2 || (size_t)(e - p) < (size_t)(xl - 2))
      return hb__fail(dec, HB_ECORRUPT, "rows event extra data out of range");
    p += xl - 2;
  }
  /* Table id 0xffffff marks a dummy end-of-statement event. */
  if (id == 0x00ffffff)
    return 0;

  uint64_t ncols;
  if (hb__lenenc(&p, e, &ncols) < 0 || ncols > 65535)
    return hb__fail(dec, HB_ECORRUPT, "rows event column count is invalid");
  size_t nb = (size_t)(ncols + 7) / 8;
  if ((size_t)(e - p) < nb * (rk.op == OP_UPDATE ? 2 : 1))
    return hb__fail(dec, HB_ECORRUPT, "rows event bitmaps are truncated");
  const uint8_t *present_b = p, *present_a = p;
  p += nb;
  if (rk.op == OP_UPDATE) {
    present_a = p;
    p += nb;
  }

  hb__table_t *t = hb__table_get(dec, id);
  if (t == NULL) {
    if (dec->resync)
      return 0;
    return hb__fail(dec, HB_ECORRUPT,
                    "rows event for table id %llu without a TABLE_MAP",
                    (unsigned long long)id);
  }
  if (!dec->in_txn) {
    if (dec->resync)
      return 0;
    /* Not written by any server we know; decode it as a transaction of
     * its own rather than lose it. */
    if (!dec->implicit_warned)
      hd_log(HD_LL_WARN, "binlog", "rows event outside a transaction",
             "file=%s pos=%llu", dec->file ? dec->file : "",
             (unsigned long long)dec->ev_pos);
    dec->implicit_warned = 1;
    dec->in_txn = 1;
    dec->txn_begin = dec->ev_pos;
  }
  if (ncols != t->pub.ncols)
    return hb__fail(dec, HB_ECORRUPT,
                    "rows event for %s.%s has %llu columns, its TABLE_MAP "
                    "%u",
                    t->pub.db, t->pub.name, (unsigned long long)ncols,
                    t->pub.ncols);
  if (t->skip) {
    dec->st.skipped_events++;
    return 0;
  }

  const uint8_t *data = p;
  size_t dlen = (size_t)(e - p);
  if (rk.compressed) {
    int r = hb__mariadb_uncompress(dec, p, dlen, &data, &dlen);
    if (r < 0)
      return r;
  }
  /* One copy of the row bytes into the window's arena: values that need
   * no conversion point into it, so they outlive this event. */
  uint8_t *copy = hb__arena_alloc(&dec->arena, dlen);
  if (dlen)
    memcpy(copy, data, dlen);
  p = copy;
  e = copy + dlen;

  uint32_t n = t->pub.ncols;
  image_ctx_t bi = {t, present_b, popcount_bits(present_b, n), 0, 0};
  image_ctx_t ai = {t, present_a, popcount_bits(present_a, n), rk.partial, 0};
  if (rk.partial && t->njson) {
    if (dec->capj < n) {
      dec->jraw = hd_realloc(dec->jraw, n * sizeof(*dec->jraw));
      dec->jlen = hd_realloc(dec->jlen, n * sizeof(*dec->jlen));
      dec->capj = n;
    }
    bi.keep_json = 1;
  }
  char op = rk.op == OP_WRITE ? 'c' : rk.op == OP_UPDATE ? 'u' : 'd';
  do {
    const uint8_t *start = p;
    hb_row_t *r = row_add(dec);
    r->op = op;
    r->table = &t->pub;
    r->pos = dec->ev_pos;
    r->before = r->after = NULL;
    if (rk.op != OP_WRITE) {
      if (bi.keep_json)
        memset(dec->jraw, 0, n * sizeof(*dec->jraw));
      hb_value_t *v = image_alloc(dec, n);
      r->before = v;
      int err = decode_image(dec, &bi, &p, e, v);
      if (err < 0)
        return err;
    }
    if (rk.op != OP_DELETE) {
      hb_value_t *v = image_alloc(dec, n);
      r->after = v;
      int err = decode_image(dec, &ai, &p, e, v);
      if (err < 0)
        return err;
    }
    /* A row of no present columns takes no bytes: it can only be the
     * single "INSERT ... VALUES ()" row. */
    if (p == start)
      break;
  } while (p < e);
  return 0;
}
