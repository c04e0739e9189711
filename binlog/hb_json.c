/*
 * hb_json.c - rendering windows as JSON lines.
 *
 * The benchmark target is several hundred thousand rows per second, so the
 * per-row work is memcpy of pre-rendered pieces (the window's prefix, the
 * table's source fields and escaped column names) plus the values, written
 * with table-driven escaping and integer formatting rather than printf.
 */
#include <string.h>

#include "hb_int.h"
#include "hb_json.h"

/* Bytes that need escaping in a JSON string: 1 for control characters,
 * the quote and the backslash. */
static const uint8_t need_esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

/* The short escapes JSON has, \u00XX for the other control bytes (as
 * MySQL's JSON printer does). */
static void put_escape(hb_buf_t *b, uint8_t c) {
  static const char hx[] = "0123456789abcdef";
  char e[6] = {'\\', 0, 0, 0, 0, 0};
  size_t n = 2;
  switch (c) {
  case '"':
    e[1] = '"';
    break;
  case '\\':
    e[1] = '\\';
    break;
  case '\b':
    e[1] = 'b';
    break;
  case '\f':
    e[1] = 'f';
    break;
  case '\n':
    e[1] = 'n';
    break;
  case '\r':
    e[1] = 'r';
    break;
  case '\t':
    e[1] = 't';
    break;
  default:
    memcpy(e + 1, "u00", 3);
    e[4] = hx[c >> 4];
    e[5] = hx[c & 15];
    n = 6;
  }
  hb_buf_put(b, e, n);
}

/* Whether any of the 8 bytes in w needs escaping: below 0x20, '"' or
 * '\\' (the usual "has a byte less than / equal to" bit tricks). */
static inline int word_needs_esc(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t lt20 = (w - ones * 0x20) & ~w & high;
  uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
  uint64_t eq = ((q - ones) & ~q & high) | ((bs - ones) & ~bs & high);
  return (lt20 | eq) != 0;
}

/* For text known to be valid UTF-8 (decoded column values). */
void hb__json_str(hb_buf_t *b, const char *s, size_t n) {
  const uint8_t *p = (const uint8_t *)s, *e = p + n;
  hb_buf_reserve(b, n + 2);
  b->p[b->len++] = '"';
  while (p < e) {
    const uint8_t *q = p;
    /* Most text needs no escaping: skip it eight bytes at a time. */
    while (e - q >= 8) {
      uint64_t w;
      memcpy(&w, q, 8);
      if (word_needs_esc(w))
        break;
      q += 8;
    }
    while (q < e && !need_esc[*q])
      q++;
    hb_buf_put(b, p, (size_t)(q - p));
    if (q == e)
      break;
    put_escape(b, *q);
    p = q + 1;
  }
  hb_buf_putc(b, '"');
}

/* For text of unknown validity (names, JSON documents, statements). */
void hb__json_str_checked(hb_buf_t *b, const char *s, size_t n) {
  if (n == 0) {
    /* s may be an empty buffer's NULL, and NULL + 0 is undefined */
    hb_buf_lit(b, "\"\"");
    return;
  }
  const uint8_t *p = (const uint8_t *)s, *e = p + n;
  hb_buf_reserve(b, n + 2);
  b->p[b->len++] = '"';
  while (p < e) {
    const uint8_t *q = p;
    while (q < e && *q < 0x80 && !need_esc[*q])
      q++;
    hb_buf_put(b, p, (size_t)(q - p));
    if (q == e)
      break;
    if (*q < 0x80) {
      put_escape(b, *q);
      p = q + 1;
      continue;
    }
    size_t k = hb__utf8_seq(q, (size_t)(e - q));
    if (k == 0) {
      hb_buf_lit(b, "\xef\xbf\xbd");
      p = q + 1;
    } else {
      hb_buf_put(b, q, k);
      p = q + k;
    }
  }
  hb_buf_putc(b, '"');
}

void hb_render_string(const char *s, size_t n, hb_buf_t *out) {
  hb__json_str_checked(out, s, n);
}

/* RFC 4648 base64 with padding; mysql_lines adds MySQL's line breaks (for
 * opaque values inside JSON documents only). */
void hb__base64(hb_buf_t *b, const uint8_t *p, size_t n, int mysql_lines) {
  static const char al[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (n == 0)
    return; /* nothing to encode; b->p may still be NULL */
  size_t outlen = (n + 2) / 3 * 4;
  hb_buf_reserve(b, outlen + (mysql_lines ? outlen / 76 * 2 : 0));
  char *o = b->p + b->len;
  size_t col = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    /* MySQL's base64 breaks lines every 76 characters; inside JSON text
     * the break is the escape sequence \n. */
    if (mysql_lines && col == 76) {
      *o++ = '\\';
      *o++ = 'n';
      col = 0;
    }
    o[0] = al[v >> 18];
    o[1] = al[(v >> 12) & 63];
    o[2] = al[(v >> 6) & 63];
    o[3] = al[v & 63];
    o += 4;
    col += 4;
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (mysql_lines && col == 76) {
      *o++ = '\\';
      *o++ = 'n';
    }
    o[0] = al[v >> 18];
    o[1] = al[(v >> 12) & 63];
    o[2] = i + 1 < n ? al[(v >> 6) & 63] : '=';
    o[3] = '=';
    o += 4;
  }
  b->len = (size_t)(o - b->p);
}

/* The value table of docs/change-format.md. */
void hb_render_value(const hb_value_t *v, hb_buf_t *out) {
  char tmp[48];
  switch (v->kind) {
  case HB_V_ABSENT:
    return;
  case HB_V_NULL:
    hb_buf_lit(out, "null");
    return;
  case HB_V_INT:
    hb_buf_i64(out, v->n.i);
    return;
  case HB_V_UINT:
    hb_buf_u64(out, v->n.u);
    return;
  case HB_V_FLOAT:
    hb_buf_put(out, tmp, hb__fmt_double(v->n.f, 1, tmp));
    return;
  case HB_V_DOUBLE:
    hb_buf_put(out, tmp, hb__fmt_double(v->n.d, 0, tmp));
    return;
  case HB_V_DECIMAL:
  case HB_V_DATE:
  case HB_V_TIME:
  case HB_V_DATETIME:
  case HB_V_TIMESTAMP:
    /* Digits and punctuation only: no escaping. */
    hb_buf_reserve(out, v->len + 2);
    out->p[out->len++] = '"';
    memcpy(out->p + out->len, v->s, v->len);
    out->len += v->len;
    out->p[out->len++] = '"';
    return;
  case HB_V_STRING:
  case HB_V_JSON:
    hb__json_str(out, v->s, v->len);
    return;
  case HB_V_BYTES:
    hb_buf_putc(out, '"');
    hb__base64(out, (const uint8_t *)v->s, v->len, 0);
    hb_buf_putc(out, '"');
    return;
  case HB_V_BADTEXT:
    hb_buf_lit(out, "{\"base64\":\"");
    hb__base64(out, (const uint8_t *)v->s, v->len, 0);
    hb_buf_lit(out, "\"}");
    return;
  case HB_V_ENUM:
  case HB_V_SET:
    if (v->s)
      hb__json_str(out, v->s, v->len);
    else
      hb_buf_u64(out, v->n.u);
    return;
  case HB_V_JSON_DIFF:
    hb_buf_lit(out, "{\"json_diff\":");
    hb_buf_put(out, v->s, v->len);
    hb_buf_putc(out, '}');
    return;
  default:
    hb_buf_lit(out, "null");
    return;
  }
}

/* {"col":value,...} over the columns present in the image: absent columns
 * (minimal row images) are left out, which is not the same as null. */
static void render_image(const hb__table_t *t, const hb_value_t *vals,
                         hb_buf_t *out) {
  hb_buf_putc(out, '{');
  int first = 1;
  for (uint32_t i = 0; i < t->pub.ncols; i++) {
    const hb_value_t *v = &vals[i];
    if (v->kind == HB_V_ABSENT)
      continue;
    if (!first)
      hb_buf_putc(out, ',');
    first = 0;
    hb_buf_put_padded(out, t->x[i].name_json, t->x[i].name_json_len);
    hb_render_value(v, out);
  }
  hb_buf_putc(out, '}');
}

/* The primary key, or null when the table has none, it is unknown, or a
 * key column is in neither image. */
static void render_key(const hb__table_t *t, const hb_row_t *r, hb_buf_t *out) {
  const hb_value_t *pri = r->op == 'd' ? r->before : r->after;
  const hb_value_t *alt = r->op == 'u' ? r->before : NULL;
  /* Rows from a relay's protobuf (hb_pb.c) may lack the image their op
   * implies: the key is then taken from the other image, or is null. */
  if (pri == NULL) {
    pri = alt;
    alt = NULL;
  }
  if (t->pub.npk == 0 || pri == NULL) {
    hb_buf_lit(out, "null");
    return;
  }
  for (uint32_t k = 0; k < t->pub.npk; k++) {
    uint32_t c = t->pub.pk[k];
    if (pri[c].kind == HB_V_ABSENT &&
        (alt == NULL || alt[c].kind == HB_V_ABSENT)) {
      hb_buf_lit(out, "null");
      return;
    }
  }
  hb_buf_putc(out, '{');
  for (uint32_t k = 0; k < t->pub.npk; k++) {
    uint32_t c = t->pub.pk[k];
    const hb_value_t *v = pri[c].kind != HB_V_ABSENT ? &pri[c] : &alt[c];
    if (k)
      hb_buf_putc(out, ',');
    hb_buf_put_padded(out, t->x[c].name_json, t->x[c].name_json_len);
    hb_render_value(v, out);
  }
  hb_buf_putc(out, '}');
}

static int same_value(const hb_value_t *a, const hb_value_t *b) {
  if (a->kind != b->kind || a->len != b->len)
    return 0;
  switch ((hb_vkind_t)a->kind) {
  case HB_V_INT:
  case HB_V_UINT:
    return a->n.u == b->n.u;
  case HB_V_FLOAT:
    return memcmp(&a->n.f, &b->n.f, sizeof(a->n.f)) == 0;
  case HB_V_DOUBLE:
    return memcmp(&a->n.d, &b->n.d, sizeof(a->n.d)) == 0;
  case HB_V_ENUM:
  case HB_V_SET:
    if (a->n.u != b->n.u)
      return 0;
    break;
  default:
    break;
  }
  if (a->len == 0)
    return 1;
  return a->s && b->s && memcmp(a->s, b->s, a->len) == 0;
}

/* An UPDATE that changed the primary key: both images hold every key
 * column and one differs. */
static int key_moved(const hb__table_t *t, const hb_row_t *r) {
  if (r->op != 'u' || r->before == NULL || r->after == NULL)
    return 0;
  int moved = 0;
  for (uint32_t k = 0; k < t->pub.npk; k++) {
    uint32_t c = t->pub.pk[k];
    if (r->before[c].kind == HB_V_ABSENT || r->after[c].kind == HB_V_ABSENT)
      return 0;
    if (!same_value(&r->before[c], &r->after[c]))
      moved = 1;
  }
  return moved;
}

static void render_old_key(const hb__table_t *t, const hb_row_t *r,
                           hb_buf_t *out) {
  hb_buf_lit(out, ",\"old_key\":{");
  for (uint32_t k = 0; k < t->pub.npk; k++) {
    uint32_t c = t->pub.pk[k];
    if (k)
      hb_buf_putc(out, ',');
    hb_buf_put_padded(out, t->x[c].name_json, t->x[c].name_json_len);
    hb_render_value(&r->before[c], out);
  }
  hb_buf_putc(out, '}');
}

/* Lines of row changes [from, to) of w; see docs/change-format.md for
 * the keys. */
static void render_rows(const hb_window_t *w, size_t from, size_t to,
                        hb_buf_t *out) {
  if (from >= to)
    return;
  /* The part of every line up to source.pos is the same for the whole
   * window: render it once, then copy it. */
  size_t pre_off = out->len;
  hb_buf_lit(out, "{\"scn\":");
  hb_buf_u64(out, w->scn);
  hb_buf_lit(out, ",\"gtid\":");
  if (w->gtid)
    hb__json_str_checked(out, w->gtid, strlen(w->gtid));
  else
    hb_buf_lit(out, "null");
  hb_buf_lit(out, ",\"ts_ms\":");
  hb_buf_u64(out, w->ts_ms);
  hb_buf_lit(out, ",\"source\":{\"server_id\":");
  hb_buf_u64(out, w->server_id);
  hb_buf_lit(out, ",\"file\":");
  hb__json_str_checked(out, w->file, strlen(w->file));
  hb_buf_lit(out, ",\"pos\":");
  size_t pre_len = out->len - pre_off;
  for (size_t i = from; i < to; i++) {
    const hb_row_t *r = &w->rows[i];
    const hb__table_t *t = (const hb__table_t *)r->table;
    if (i > from) {
      hb_buf_reserve(out, pre_len);
      memcpy(out->p + out->len, out->p + pre_off, pre_len);
      out->len += pre_len;
    }
    hb_buf_u64(out, r->pos);
    hb_buf_put_padded(out, t->src_json, t->src_json_len);
    hb_buf_lit(out, "},\"op\":\"");
    hb_buf_putc(out, r->op);
    hb_buf_lit(out, "\",\"key\":");
    render_key(t, r, out);
    if (r->op == 'u' && key_moved(t, r))
      render_old_key(t, r, out);
    hb_buf_lit(out, ",\"before\":");
    if (r->before)
      render_image(t, r->before, out);
    else
      hb_buf_lit(out, "null");
    hb_buf_lit(out, ",\"after\":");
    if (r->after)
      render_image(t, r->after, out);
    else
      hb_buf_lit(out, "null");
    hb_buf_lit(out, ",\"txn\":{\"index\":");
    hb_buf_u64(out, w->row_base + i);
    if (i + 1 == w->nrows && !w->more)
      hb_buf_lit(out, ",\"last\":true}}\n");
    else
      hb_buf_lit(out, ",\"last\":false}}\n");
  }
}

void hb_render_window(const hb_window_t *w, hb_buf_t *out) {
  render_rows(w, 0, w->nrows, out);
}

void hb_render_window_ddl(const hb_window_t *w,
                          int (*want)(void *ud, const hb_ddl_t *d), void *ud,
                          hb_buf_t *out) {
  size_t at = 0;
  for (size_t i = 0; i < w->nddl; i++) {
    const hb_ddl_t *d = &w->ddl[i];
    /* row_index counts the whole transaction; w may be one chunk of it */
    size_t rel = d->row_index > w->row_base ? d->row_index - w->row_base : 0;
    size_t upto = rel < w->nrows ? rel : w->nrows;
    if (want != NULL && !want(ud, d))
      continue;
    render_rows(w, at, upto > at ? upto : at, out);
    if (upto > at)
      at = upto;
    hb_render_ddl(d, out);
  }
  render_rows(w, at, w->nrows, out);
}

/* The schema-change line: the keys of the specification, in its order,
 * and the GTID last. */
void hb_render_ddl(const hb_ddl_t *d, hb_buf_t *out) {
  hb_buf_lit(out, "{\"scn\":");
  hb_buf_u64(out, d->scn);
  hb_buf_lit(out, ",\"op\":\"ddl\",\"ts_ms\":");
  hb_buf_u64(out, d->ts_ms);
  hb_buf_lit(out, ",\"source\":{\"server_id\":");
  hb_buf_u64(out, d->server_id);
  hb_buf_lit(out, ",\"file\":");
  hb__json_str_checked(out, d->file, strlen(d->file));
  hb_buf_lit(out, ",\"pos\":");
  hb_buf_u64(out, d->pos);
  hb_buf_lit(out, ",\"db\":");
  hb__json_str_checked(out, d->db, strlen(d->db));
  hb_buf_lit(out, "},\"statement\":");
  hb__json_str_checked(out, d->statement, d->len);
  hb_buf_lit(out, ",\"gtid\":");
  if (d->gtid)
    hb__json_str_checked(out, d->gtid, strlen(d->gtid));
  else
    hb_buf_lit(out, "null");
  hb_buf_lit(out, "}\n");
}
