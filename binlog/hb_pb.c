/*
 * hb_pb.c - hb_value_t <-> herald.Value.
 */
#include "hb_pb.h"

#include <stdlib.h>
#include <string.h>

#include "hb_json.h"
#include "hb_schema.h"
#include "hb_synth.h"
#include "hd_mem.h"

int hb_value_to_pb(const hb_value_t *v, Herald__Value *pv, hb_pb_copy_fn copy,
                   void *ud) {
  ProtobufCBinaryData bin = {v->len, (uint8_t *)v->s};
  herald__value__init(pv);
  switch ((hb_vkind_t)v->kind) {
  case HB_V_ABSENT:
    return 0;
  case HB_V_NULL:
    pv->kind_case = HERALD__VALUE__KIND_NULL;
    pv->null = 1;
    break;
  case HB_V_INT:
    pv->kind_case = HERALD__VALUE__KIND_INT;
    pv->int_ = v->n.i;
    break;
  case HB_V_UINT:
    pv->kind_case = HERALD__VALUE__KIND_UINT;
    pv->uint = v->n.u;
    break;
  case HB_V_FLOAT:
    pv->kind_case = HERALD__VALUE__KIND_FLT;
    pv->flt = v->n.f;
    break;
  case HB_V_DOUBLE:
    pv->kind_case = HERALD__VALUE__KIND_DBL;
    pv->dbl = v->n.d;
    break;
  case HB_V_BYTES:
    pv->kind_case = HERALD__VALUE__KIND_BIN;
    pv->bin = bin;
    break;
  case HB_V_BADTEXT:
    pv->kind_case = HERALD__VALUE__KIND_BADTEXT;
    pv->badtext = bin;
    break;
  case HB_V_DECIMAL:
    pv->kind_case = HERALD__VALUE__KIND_DECIMAL;
    pv->decimal = copy(ud, v->s, v->len);
    break;
  case HB_V_JSON:
    pv->kind_case = HERALD__VALUE__KIND_JSON;
    pv->json = copy(ud, v->s, v->len);
    break;
  case HB_V_JSON_DIFF:
    pv->kind_case = HERALD__VALUE__KIND_JSON_DIFF;
    pv->json_diff = copy(ud, v->s, v->len);
    break;
  case HB_V_DATE:
  case HB_V_TIME:
  case HB_V_DATETIME:
  case HB_V_TIMESTAMP:
    pv->kind_case = HERALD__VALUE__KIND_TEMPORAL;
    pv->temporal = copy(ud, v->s, v->len);
    break;
  case HB_V_ENUM:
  case HB_V_SET:
    if (v->s == NULL) { /* labels unknown: the index or bitmask */
      pv->kind_case = HERALD__VALUE__KIND_UINT;
      pv->uint = v->n.u;
      break;
    }
    /* fall through */
  case HB_V_STRING:
    pv->kind_case = HERALD__VALUE__KIND_STR;
    pv->str.data = (uint8_t *)copy(ud, v->s, v->len);
    pv->str.len = v->len;
    break;
  }
  return 1;
}

void hb_value_from_pb(const Herald__Value *pv, hb_value_t *v) {
  memset(v, 0, sizeof(*v));
  switch (pv->kind_case) {
  case HERALD__VALUE__KIND_NULL:
    v->kind = HB_V_NULL;
    break;
  case HERALD__VALUE__KIND_INT:
    v->kind = HB_V_INT;
    v->n.i = pv->int_;
    break;
  case HERALD__VALUE__KIND_UINT:
    v->kind = HB_V_UINT;
    v->n.u = pv->uint;
    break;
  case HERALD__VALUE__KIND_DBL:
    v->kind = HB_V_DOUBLE;
    v->n.d = pv->dbl;
    break;
  case HERALD__VALUE__KIND_FLT:
    v->kind = HB_V_FLOAT;
    v->n.f = pv->flt;
    break;
  case HERALD__VALUE__KIND_STR:
    v->kind = HB_V_STRING;
    v->s = pv->str.data ? (const char *)pv->str.data : "";
    v->len = (uint32_t)pv->str.len;
    return;
  case HERALD__VALUE__KIND_DECIMAL:
    v->kind = HB_V_DECIMAL;
    v->s = pv->decimal;
    break;
  case HERALD__VALUE__KIND_TEMPORAL:
    v->kind = HB_V_DATETIME;
    v->s = pv->temporal;
    break;
  case HERALD__VALUE__KIND_JSON:
    v->kind = HB_V_JSON;
    v->s = pv->json;
    break;
  case HERALD__VALUE__KIND_JSON_DIFF:
    v->kind = HB_V_JSON_DIFF;
    v->s = pv->json_diff;
    break;
  case HERALD__VALUE__KIND_BIN:
    v->kind = HB_V_BYTES;
    v->s = (const char *)pv->bin.data;
    v->len = (uint32_t)pv->bin.len;
    return;
  case HERALD__VALUE__KIND_BADTEXT:
    v->kind = HB_V_BADTEXT;
    v->s = (const char *)pv->badtext.data;
    v->len = (uint32_t)pv->badtext.len;
    return;
  default:
    v->kind = HB_V_ABSENT;
    return;
  }
  if (v->s)
    v->len = (uint32_t)strlen(v->s);
}

/* ---- rendering windows received from a relay ---- */

/* Tables built from the column names of what arrives, cached by db, table
 * and names (a projection or a schema change gives another entry). */
typedef struct {
  char *key; /* db \0 table \0 names... */
  size_t klen;
  hb_table_t *t;
} tcache_t;

struct hb_pbr {
  tcache_t *v;
  size_t n, cap;
};

hb_pbr_t *hb_pbr_new(void) {
  return hd_calloc(1, sizeof(hb_pbr_t));
}

void hb_pbr_free(hb_pbr_t *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->v[i].key);
    hb_table_synth_free(r->v[i].t);
  }
  free(r->v);
  free(r);
}

/* The columns of a row change as the relay sent it: the after image's,
 * or the before image's for a delete; the other image is aligned to them
 * by name. */
static hb_table_t *row_table(hb_pbr_t *tc, const Herald__RowChange *rc,
                             Herald__Column **cols, size_t ncols) {
  /* The cache key: db, table, column names and key names, each with
   * its NUL. */
  size_t kl = strlen(rc->db) + strlen(rc->table) + 2;
  for (size_t i = 0; i < ncols; i++)
    kl += strlen(cols[i]->name) + 1;
  for (size_t i = 0; i < rc->n_key; i++)
    kl += strlen(rc->key[i]->name) + 1;
  char *key = hd_malloc(kl), *kp = key;
#define KPUT(s)                                                                \
  do {                                                                         \
    size_t l_ = strlen(s) + 1;                                                 \
    memcpy(kp, s, l_);                                                         \
    kp += l_;                                                                  \
  } while (0)
  KPUT(rc->db);
  KPUT(rc->table);
  for (size_t i = 0; i < ncols; i++)
    KPUT(cols[i]->name);
  for (size_t i = 0; i < rc->n_key; i++)
    KPUT(rc->key[i]->name);
#undef KPUT
  for (size_t i = 0; i < tc->n; i++)
    if (tc->v[i].klen == kl && memcmp(tc->v[i].key, key, kl) == 0) {
      free(key);
      return tc->v[i].t;
    }
  const char **names = hd_malloc((ncols + 1) * sizeof(char *));
  uint32_t *pk = hd_malloc((rc->n_key + 1) * sizeof(uint32_t));
  uint32_t npk = 0;
  for (size_t i = 0; i < ncols; i++)
    names[i] = cols[i]->name;
  for (size_t k = 0; k < rc->n_key; k++)
    for (size_t i = 0; i < ncols; i++)
      if (strcmp(rc->key[k]->name, cols[i]->name) == 0) {
        pk[npk++] = (uint32_t)i;
        break;
      }
  hb_table_t *t =
      hb_table_synth(rc->db, rc->table, (uint32_t)ncols, names, npk, pk);
  free(names);
  free(pk);
  if (tc->n == tc->cap) {
    tc->cap = tc->cap ? tc->cap * 2 : 16;
    tc->v = hd_realloc(tc->v, tc->cap * sizeof(tcache_t));
  }
  tc->v[tc->n].key = key;
  tc->v[tc->n].klen = kl;
  tc->v[tc->n].t = t;
  tc->n++;
  return t;
}

/* Renders the row changes of one window, one line each, and with ddl its
 * statements where they stand among them. */
size_t hb_pbr_window(hb_pbr_t *tc, const Herald__Window *pw, int ddl,
                     int (*want)(void *ud, const hb_ddl_t *d), void *ud,
                     uint64_t row_base, hb_buf_t *out) {
  size_t n = pw->n_changes;
  hb_row_t *rows = hd_calloc(n + 1, sizeof(hb_row_t));
  hb_value_t **imgs = hd_calloc(2 * n + 1, sizeof(hb_value_t *));
  for (size_t i = 0; i < n; i++) {
    const Herald__RowChange *rc = pw->changes[i];
    Herald__Column **cols = rc->n_after ? rc->after : rc->before;
    size_t ncols = rc->n_after ? rc->n_after : rc->n_before;
    hb_row_t *r = &rows[i];
    r->op = rc->op == HERALD__OP__OP_INSERT   ? 'c'
            : rc->op == HERALD__OP__OP_UPDATE ? 'u'
            : rc->op == HERALD__OP__OP_READ   ? 'r'
                                              : 'd';
    r->pos = rc->pos;
    r->table = row_table(tc, rc, cols, ncols);
    Herald__Column **src[2] = {rc->before, rc->after};
    size_t nsrc[2] = {rc->n_before, rc->n_after};
    for (int im = 0; im < 2; im++) {
      if (nsrc[im] == 0)
        continue;
      hb_value_t *vals = hd_calloc(ncols + 1, sizeof(hb_value_t));
      imgs[2 * i + (size_t)im] = vals;
      for (size_t c = 0; c < ncols; c++) {
        /* Same position first (the usual case), else by name. */
        Herald__Column *col = NULL;
        if (c < nsrc[im] && strcmp(src[im][c]->name, cols[c]->name) == 0)
          col = src[im][c];
        for (size_t k = 0; !col && k < nsrc[im]; k++)
          if (strcmp(src[im][k]->name, cols[c]->name) == 0)
            col = src[im][k];
        if (col && col->value)
          hb_value_from_pb(col->value, &vals[c]);
      }
      if (im == 0)
        r->before = vals;
      else
        r->after = vals;
    }
  }
  hb_window_t w = {0};
  w.scn = pw->scn;
  w.file = pw->file ? pw->file : "";
  w.end_pos = (uint32_t)pw->pos;
  w.file_index = (uint32_t)hb_file_index(w.file);
  w.gtid = pw->gtid && *pw->gtid ? pw->gtid : NULL;
  w.ts_ms = pw->ts_ms;
  w.server_id = pw->server_id;
  w.nrows = n;
  w.rows = rows;
  w.row_base = row_base;
  w.more = pw->more_chunks;
  hb_ddl_t *dv = NULL;
  if (ddl && pw->n_ddl) {
    dv = hd_calloc(pw->n_ddl, sizeof(hb_ddl_t));
    for (size_t i = 0; i < pw->n_ddl; i++) {
      const Herald__SchemaChange *sc = pw->ddl[i];
      hb_ddl_t *d = &dv[i];
      d->scn = pw->scn;
      d->file = w.file;
      d->pos = sc->pos;
      d->gtid = w.gtid;
      d->ts_ms = pw->ts_ms;
      d->server_id = pw->server_id;
      d->db = sc->db ? sc->db : "";
      d->statement = sc->statement ? sc->statement : "";
      d->len = strlen(d->statement);
      d->row_index = sc->row_index;
    }
    w.nddl = pw->n_ddl;
    w.ddl = dv;
    hb_render_window_ddl(&w, want, ud, out);
  } else {
    hb_render_window(&w, out);
  }
  free(dv);
  for (size_t i = 0; i < 2 * n; i++)
    free(imgs[i]);
  free(imgs);
  free(rows);
  return n;
}

/* The schema line of a TableSchema the relay sent. */
void hb_pbr_schema(const Herald__TableSchema *ts, hb_buf_t *out) {
  hb_coldesc_t *d = hd_calloc(ts->n_columns + 1, sizeof(*d));
  for (size_t i = 0; i < ts->n_columns; i++) {
    const Herald__ColumnSchema *c = ts->columns[i];
    d[i].name = c->name ? c->name : "";
    d[i].sql_type = c->sql_type ? c->sql_type : "";
    d[i].nullable = c->nullable;
    d[i].charset = c->charset && *c->charset ? c->charset : NULL;
    d[i].collation = c->collation_id;
    d[i].max_bytes = c->max_bytes;
    d[i].pk = c->pk_position;
  }
  hb_render_schema(ts->db ? ts->db : "", ts->table ? ts->table : "",
                   ts->schema_version, d, (uint32_t)ts->n_columns, out);
  free(d);
}
