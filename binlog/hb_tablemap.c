/*
 * hb_tablemap.c - TABLE_MAP events: column types, their metadata, and the
 * optional metadata of binlog_row_metadata=MINIMAL/FULL.
 *
 * A table map is written before the rows of every statement, usually with
 * the same bytes each time, so parsed tables are cached by table id and
 * reused while the bytes match. What the table map lacks (names, labels,
 * the primary key without FULL metadata) comes from the schema provider,
 * whose answers are cached the same way and dropped after any DDL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb_int.h"
#include "hb_schema.h"
#include "hd_log.h"
#include "hd_mem.h"

/* Optional metadata field types (MySQL rows_event.h). */
enum {
  OM_SIGNEDNESS = 1,
  OM_DEFAULT_CHARSET = 2,
  OM_COLUMN_CHARSET = 3,
  OM_COLUMN_NAME = 4,
  OM_SET_STR_VALUE = 5,
  OM_ENUM_STR_VALUE = 6,
  OM_GEOMETRY_TYPE = 7,
  OM_SIMPLE_PRIMARY_KEY = 8,
  OM_PRIMARY_KEY_WITH_PREFIX = 9,
  OM_ENUM_AND_SET_DEFAULT_CHARSET = 10,
  OM_ENUM_AND_SET_COLUMN_CHARSET = 11
};

/* Bytes of table-map metadata per column type; -1 for unknown types. */
static int meta_bytes(uint8_t t) {
  switch (t) {
  case HB_T_TINY:
  case HB_T_SHORT:
  case HB_T_INT24:
  case HB_T_LONG:
  case HB_T_LONGLONG:
  case HB_T_NULL:
  case HB_T_TIMESTAMP:
  case HB_T_DATE:
  case HB_T_TIME:
  case HB_T_DATETIME:
  case HB_T_YEAR:
  case HB_T_NEWDATE:
    return 0;
  case HB_T_FLOAT:
  case HB_T_DOUBLE:
  case HB_T_BLOB:
  case HB_T_TINY_BLOB:
  case HB_T_MEDIUM_BLOB:
  case HB_T_LONG_BLOB:
  case HB_T_GEOMETRY:
  case HB_T_JSON:
  case HB_T_TIMESTAMP2:
  case HB_T_DATETIME2:
  case HB_T_TIME2:
    return 1;
  case HB_T_NEWDECIMAL:
  case HB_T_DECIMAL:
  case HB_T_VARCHAR:
  case HB_T_VAR_STRING:
  case HB_T_STRING:
  case HB_T_BIT:
  case HB_T_ENUM:
  case HB_T_SET:
    return 2;
  default:
    return -1;
  }
}

/* Store metadata the way MySQL's table_def does, so hb_column_t.meta has
 * one documented meaning: STRING/ENUM/SET/DECIMAL byte0 << 8 | byte1,
 * BIT and VARCHAR little-endian. */
static uint16_t meta_value(uint8_t t, const uint8_t *m, int n) {
  if (n == 1)
    return m[0];
  if (n != 2)
    return 0;
  switch (t) {
  case HB_T_BIT:
  case HB_T_VARCHAR:
  case HB_T_VAR_STRING:
    return hb__u16(m);
  default:
    return (uint16_t)(m[0] << 8 | m[1]);
  }
}

static int is_numeric(uint8_t t, int mariadb) {
  switch (t) {
  case HB_T_TINY:
  case HB_T_SHORT:
  case HB_T_INT24:
  case HB_T_LONG:
  case HB_T_LONGLONG:
  case HB_T_NEWDECIMAL:
  case HB_T_FLOAT:
  case HB_T_DOUBLE:
    return 1;
  case HB_T_YEAR:
    /* MariaDB's YEAR is an integer field and takes a signedness bit
     * (checked against MariaDB 10.11); MySQL's does not. */
    return mariadb;
  default:
    return 0;
  }
}

/* Character columns, as counted by the charset metadata: CHAR, VARCHAR,
 * TEXT/BLOB and GEOMETRY (a BLOB underneath), not ENUM/SET. */
static int is_character(uint8_t t, int with_geometry) {
  switch (t) {
  case HB_T_STRING:
  case HB_T_VAR_STRING:
  case HB_T_VARCHAR:
  case HB_T_BLOB:
  case HB_T_TINY_BLOB:
  case HB_T_MEDIUM_BLOB:
  case HB_T_LONG_BLOB:
    return 1;
  case HB_T_GEOMETRY:
    return with_geometry;
  default:
    return 0;
  }
}

static const char *type_name(uint8_t t) {
  switch (t) {
  case HB_T_DECIMAL:
    return "DECIMAL (pre-5.0)";
  case HB_T_VECTOR:
    return "VECTOR";
  case 20:
    return "TYPED_ARRAY";
  default:
    return "unknown";
  }
}

/* ---- building a table ---- */

typedef struct {
  uint32_t seen; /* optional metadata fields met, by type bit */
  uint8_t have_sign, have_cs, have_names, have_pk;
  uint8_t *unsig; /* per column, from SIGNEDNESS */
  uint32_t *cs;   /* per column collation */
  char **names;
  uint32_t *pk;
  uint32_t npk;
  char ***labels; /* per column ENUM/SET labels (raw bytes, NUL-term.) */
  uint32_t *nlabels;
  uint32_t *es_cs; /* ENUM/SET collation per column */
} om_t;

/* Free what om_parse() collected (its tables take over what they keep). */
static void om_free(om_t *om, uint32_t ncols) {
  for (uint32_t i = 0; i < ncols; i++) {
    if (om->names)
      free(om->names[i]);
    if (om->labels && om->labels[i]) {
      for (uint32_t k = 0; k < om->nlabels[i]; k++)
        free(om->labels[i][k]);
      free(om->labels[i]);
    }
  }
  free(om->unsig);
  free(om->cs);
  free(om->names);
  free(om->pk);
  free(om->labels);
  free(om->nlabels);
  free(om->es_cs);
}

/* Charsets as "default + exceptions" (DEFAULT_CHARSET) or one per column
 * (COLUMN_CHARSET), over the columns that sel() picks. */
static int om_charsets(const uint8_t *p, const uint8_t *e, int per_column,
                       const uint8_t *types, uint32_t ncols, int which,
                       uint32_t *out) {
  /* which: 0 character columns incl. GEOMETRY, 1 without, 2 ENUM/SET */
  uint32_t idx[4096 + 1];
  uint32_t n = 0;
  for (uint32_t i = 0; i < ncols && n < 4096; i++) {
    int pick = which == 2 ? (types[i] == HB_T_ENUM || types[i] == HB_T_SET)
                          : is_character(types[i], which == 0);
    if (pick)
      idx[n++] = i;
  }
  uint64_t v;
  if (per_column) {
    uint32_t k = 0;
    while (p < e) {
      if (hb__lenenc(&p, e, &v) < 0 || k >= n)
        return -1;
      out[idx[k++]] = (uint32_t)v;
    }
    return k == n ? 0 : -1;
  }
  if (hb__lenenc(&p, e, &v) < 0)
    return -1;
  for (uint32_t k = 0; k < n; k++)
    out[idx[k]] = (uint32_t)v;
  while (p < e) {
    uint64_t col, coll;
    if (hb__lenenc(&p, e, &col) < 0 || hb__lenenc(&p, e, &coll) < 0 || col >= n)
      return -1;
    out[idx[col]] = (uint32_t)coll;
  }
  return 0;
}

/* Parse the optional metadata TLVs. Fields we do not use (geometry type,
 * column visibility, future ones) are skipped by their length. */
static const char *om_parse(const uint8_t *p, const uint8_t *e,
                            const uint8_t *types, uint32_t ncols, int mariadb,
                            om_t *om) {
  while (p < e) {
    uint8_t ft = *p++;
    uint64_t flen;
    if (hb__lenenc(&p, e, &flen) < 0 || flen > (uint64_t)(e - p))
      return "optional metadata field runs past the event";
    const uint8_t *q = p, *qe = p + flen;
    p = qe;
    /* A server writes each field once (and one of the two forms of each
     * charset field); anything else is corrupt. */
    if (ft >= 1 && ft <= OM_ENUM_AND_SET_COLUMN_CHARSET) {
      unsigned bit = ft == OM_COLUMN_CHARSET ? OM_DEFAULT_CHARSET
                     : ft == OM_ENUM_AND_SET_COLUMN_CHARSET
                         ? OM_ENUM_AND_SET_DEFAULT_CHARSET
                     : ft == OM_PRIMARY_KEY_WITH_PREFIX ? OM_SIMPLE_PRIMARY_KEY
                                                        : ft;
      if (om->seen & (1u << bit))
        return "optional metadata field repeated";
      om->seen |= 1u << bit;
    }
    switch (ft) {
    case OM_SIGNEDNESS: {
      uint32_t k = 0;
      om->unsig = hd_calloc(ncols, 1);
      for (uint32_t i = 0; i < ncols; i++) {
        if (!is_numeric(types[i], mariadb))
          continue;
        if (k / 8 >= flen)
          return "signedness bitmap too short";
        om->unsig[i] = (q[k / 8] >> (7 - k % 8)) & 1;
        k++;
      }
      om->have_sign = 1;
      break;
    }
    case OM_DEFAULT_CHARSET:
    case OM_COLUMN_CHARSET: {
      int per = ft == OM_COLUMN_CHARSET;
      om->cs = hd_calloc(ncols, sizeof(*om->cs));
      /* Whether GEOMETRY counts as a character column is not written
       * down anywhere we could check; accept whichever count fits. */
      if (om_charsets(q, qe, per, types, ncols, 0, om->cs) < 0) {
        memset(om->cs, 0, ncols * sizeof(*om->cs));
        if (om_charsets(q, qe, per, types, ncols, 1, om->cs) < 0)
          return "column charsets do not match the character columns";
      }
      om->have_cs = 1;
      break;
    }
    case OM_ENUM_AND_SET_DEFAULT_CHARSET:
    case OM_ENUM_AND_SET_COLUMN_CHARSET:
      om->es_cs = hd_calloc(ncols, sizeof(*om->es_cs));
      if (om_charsets(q, qe, ft == OM_ENUM_AND_SET_COLUMN_CHARSET, types, ncols,
                      2, om->es_cs) < 0)
        return "ENUM/SET charsets do not match the ENUM/SET columns";
      break;
    case OM_COLUMN_NAME:
      om->names = hd_calloc(ncols, sizeof(*om->names));
      for (uint32_t i = 0; i < ncols; i++) {
        uint64_t l;
        if (hb__lenenc(&q, qe, &l) < 0 || l > (uint64_t)(qe - q))
          return "column names run past their field";
        om->names[i] = hd_strndup((const char *)q, (size_t)l);
        q += l;
      }
      om->have_names = 1;
      break;
    case OM_SET_STR_VALUE:
    case OM_ENUM_STR_VALUE: {
      uint8_t want = ft == OM_SET_STR_VALUE ? HB_T_SET : HB_T_ENUM;
      if (om->labels == NULL) {
        om->labels = hd_calloc(ncols, sizeof(*om->labels));
        om->nlabels = hd_calloc(ncols, sizeof(*om->nlabels));
      }
      for (uint32_t i = 0; i < ncols; i++) {
        if (types[i] != want)
          continue;
        uint64_t cnt;
        if (hb__lenenc(&q, qe, &cnt) < 0 || cnt > (uint64_t)(qe - q) ||
            om->labels[i])
          return "ENUM/SET labels run past their field";
        om->labels[i] = hd_calloc(cnt ? cnt : 1, sizeof(char *));
        for (uint64_t k = 0; k < cnt; k++) {
          uint64_t l;
          if (hb__lenenc(&q, qe, &l) < 0 || l > (uint64_t)(qe - q))
            return "ENUM/SET labels run past their field";
          om->labels[i][k] = hd_strndup((const char *)q, (size_t)l);
          om->nlabels[i]++;
          q += l;
        }
      }
      break;
    }
    case OM_SIMPLE_PRIMARY_KEY:
    case OM_PRIMARY_KEY_WITH_PREFIX:
      om->pk = hd_calloc(ncols ? ncols : 1, sizeof(*om->pk));
      om->npk = 0;
      while (q < qe) {
        uint64_t col, prefix;
        if (hb__lenenc(&q, qe, &col) < 0 || col >= ncols || om->npk >= ncols)
          return "primary key column out of range";
        /* The prefix length only matters to the server's index; the key
         * we report is the whole column. */
        if (ft == OM_PRIMARY_KEY_WITH_PREFIX && hb__lenenc(&q, qe, &prefix) < 0)
          return "primary key prefix runs past its field";
        om->pk[om->npk++] = (uint32_t)col;
      }
      om->have_pk = 1;
      break;
    default:
      break;
    }
  }
  return NULL;
}

/* JSON-escaped "name": for the renderer, with 16 bytes of padding for
 * hb_buf_put_padded(). */
static void make_name_json(hb__col_t *x, const char *name) {
  hb_buf_t b = {0};
  hb__json_str_checked(&b, name, strlen(name));
  hb_buf_putc(&b, ':');
  hb_buf_reserve(&b, 16);
  memset(b.p + b.len, 0, 16);
  x->name_json = b.p;
  x->name_json_len = (uint32_t)b.len;
}

/* Choose each column's decoder from its type and metadata. */
static void pick_decoder(hb_column_t *col, hb__col_t *x, uint8_t type,
                         uint16_t meta) {
  x->dk = HB_DK_BAD;
  col->type = type;
  switch (type) {
  case HB_T_TINY:
    x->dk = HB_DK_INT;
    x->size = 1;
    return;
  case HB_T_SHORT:
    x->dk = HB_DK_INT;
    x->size = 2;
    return;
  case HB_T_INT24:
    x->dk = HB_DK_INT;
    x->size = 3;
    return;
  case HB_T_LONG:
    x->dk = HB_DK_INT;
    x->size = 4;
    return;
  case HB_T_LONGLONG:
    x->dk = HB_DK_INT;
    x->size = 8;
    return;
  case HB_T_FLOAT:
    x->dk = HB_DK_FLOAT;
    return;
  case HB_T_DOUBLE:
    x->dk = HB_DK_DOUBLE;
    return;
  case HB_T_NULL:
    x->dk = HB_DK_NULL;
    return;
  case HB_T_YEAR:
    x->dk = HB_DK_YEAR;
    return;
  case HB_T_DATE:
  case HB_T_NEWDATE:
    x->dk = HB_DK_DATE;
    return;
  case HB_T_TIME:
    x->dk = HB_DK_TIME;
    return;
  case HB_T_DATETIME:
    x->dk = HB_DK_DATETIME;
    return;
  case HB_T_TIMESTAMP:
    x->dk = HB_DK_TIMESTAMP;
    return;
  case HB_T_TIME2:
  case HB_T_DATETIME2:
  case HB_T_TIMESTAMP2:
    if (meta > 6) {
      x->bad = "fractional-second precision above 6";
      return;
    }
    x->fsp = (uint8_t)meta;
    x->dk = type == HB_T_TIME2       ? HB_DK_TIME2
            : type == HB_T_DATETIME2 ? HB_DK_DATETIME2
                                     : HB_DK_TIMESTAMP2;
    return;
  case HB_T_NEWDECIMAL: {
    unsigned prec = meta >> 8, scale = meta & 0xff;
    if (prec == 0 || prec > 65 || scale > prec) {
      x->bad = "DECIMAL precision/scale out of range";
      return;
    }
    x->prec = (uint8_t)prec;
    x->scale = (uint8_t)scale;
    x->dk = HB_DK_DECIMAL;
    return;
  }
  case HB_T_BIT: {
    unsigned bits = meta & 0xff, bytes = meta >> 8;
    unsigned n = bytes + (bits ? 1 : 0);
    if (bits > 7 || n < 1 || n > 8) {
      x->bad = "BIT length out of range";
      return;
    }
    x->size = (uint8_t)n;
    x->dk = HB_DK_BIT;
    return;
  }
  case HB_T_ENUM:
  case HB_T_SET:
    x->size = (uint8_t)(meta & 0xff);
    if ((type == HB_T_ENUM && (x->size < 1 || x->size > 2)) ||
        (type == HB_T_SET && (x->size < 1 || x->size > 8))) {
      x->bad = "ENUM/SET size out of range";
      return;
    }
    x->dk = type == HB_T_ENUM ? HB_DK_ENUM : HB_DK_SET;
    return;
  case HB_T_STRING: {
    unsigned b0 = meta >> 8, b1 = meta & 0xff, real = b0, len = b1;
    /* CHAR longer than 255 bytes keeps two high length bits in byte 0. */
    if (b0 && (b0 & 0x30) != 0x30) {
      len = b1 | (((b0 & 0x30) ^ 0x30) << 4);
      real = b0 | 0x30;
    }
    if (real == HB_T_ENUM || real == HB_T_SET) {
      col->meta = (uint16_t)b1;
      pick_decoder(col, x, (uint8_t)real, (uint16_t)b1);
      col->meta = meta;
      return;
    }
    x->size = len > 255 ? 2 : 1;
    x->fixlen = (uint16_t)len;
    x->dk = HB_DK_TEXT;
    return;
  }
  case HB_T_VARCHAR:
  case HB_T_VAR_STRING:
    x->size = meta > 255 ? 2 : 1;
    x->dk = HB_DK_TEXT;
    return;
  case HB_T_BLOB:
  case HB_T_TINY_BLOB:
  case HB_T_MEDIUM_BLOB:
  case HB_T_LONG_BLOB:
  case HB_T_GEOMETRY:
  case HB_T_JSON:
    if (meta < 1 || meta > 4) {
      x->bad = "length-prefix size out of range";
      return;
    }
    x->size = (uint8_t)meta;
    x->dk = type == HB_T_GEOMETRY ? HB_DK_BYTES
            : type == HB_T_JSON   ? HB_DK_JSON
                                  : HB_DK_TEXT;
    return;
  case HB_T_DECIMAL:
    x->bad = "pre-5.0 DECIMAL columns are not supported";
    return;
  default:
    x->bad = "column type is not supported";
    return;
  }
}

/* A table owns every string it points to. */
static void table_free(hb__table_t *t) {
  if (t == NULL)
    return;
  for (uint32_t i = 0; i < t->pub.ncols; i++) {
    free((char *)t->cols[i].name);
    for (uint32_t k = 0; k < t->cols[i].nlabels; k++)
      free((char *)t->cols[i].labels[k]);
    free((void *)t->cols[i].labels);
    free(t->x[i].name_json);
  }
  free(t->cols);
  free(t->x);
  free((char *)t->pub.db);
  free((char *)t->pub.name);
  free((uint32_t *)t->pub.pk);
  free(t->raw);
  free(t->src_json);
  free(t);
}

/* Bytes of text in collation coll as a NUL-terminated UTF-8 copy. */
static char *to_utf8(hb_decoder_t *dec, const char *s, uint32_t coll) {
  const char *iname = NULL;
  int cls = coll ? hb__cs_class(coll, &iname) : HB_CS_UTF8;
  hb_buf_t b = {0};
  hb__convert(dec, cls, iname, (const uint8_t *)s, strlen(s), &b);
  hb_buf_putc(&b, '\0');
  return b.p;
}

/* Ask the schema provider about what the table map did not say. */
static int ask_schema(hb_decoder_t *dec, hb__table_t *t, om_t *om,
                      const uint8_t *types) {
  uint32_t n = t->pub.ncols;
  hb_schema_col_t *sc = hd_calloc(n ? n : 1, sizeof(*sc));
  uint32_t *pk = hd_calloc(n ? n : 1, sizeof(*pk));
  uint32_t npk = 0;
  for (uint32_t i = 0; i < n; i++)
    sc[i].is_unsigned = -1;
  int r = dec->cfg.schema(dec->cfg.ud, t->pub.db, t->pub.name, n, sc, pk, &npk);
  if (r < 0) {
    free(sc);
    free(pk);
    return hb__fail(dec, HB_ESCHEMA,
                    "schema provider failed for table %s.%s (%d)", t->pub.db,
                    t->pub.name, r);
  }
  if (r == 0) {
    for (uint32_t i = 0; i < n; i++) {
      hb_column_t *c = &t->cols[i];
      if (!om->have_names && sc[i].name) {
        free((char *)c->name);
        c->name = hd_strdup(sc[i].name);
      }
      if (!om->have_sign && sc[i].is_unsigned >= 0)
        c->is_unsigned = (uint8_t)(sc[i].is_unsigned > 0);
      if (c->charset == 0 && sc[i].charset > 0)
        c->charset = (uint16_t)sc[i].charset;
      if (c->nlabels == 0 && sc[i].nlabels > 0 && sc[i].labels &&
          (types[i] == HB_T_ENUM || types[i] == HB_T_SET)) {
        const char **l = hd_calloc(sc[i].nlabels, sizeof(char *));
        for (uint32_t k = 0; k < sc[i].nlabels; k++)
          l[k] = hd_strdup(sc[i].labels[k] ? sc[i].labels[k] : "");
        c->labels = l;
        c->nlabels = sc[i].nlabels;
      }
    }
    if (!om->have_pk && npk > 0 && npk <= n) {
      int ok = 1;
      for (uint32_t k = 0; k < npk; k++)
        ok &= pk[k] < n;
      if (ok) {
        uint32_t *p = hd_malloc(npk * sizeof(*p));
        memcpy(p, pk, npk * sizeof(*p));
        t->pub.pk = p;
        t->pub.npk = npk;
      }
    }
    t->pub.names_known = 1;
  }
  free(sc);
  free(pk);
  return 0;
}

/* ---- the cache ---- */

/* Table ids are sequential, so a multiplicative hash spreads them. */
static size_t bucket(const hb_decoder_t *dec, uint64_t id) {
  return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (dec->tbl_cap - 1);
}

hb__table_t *hb__table_get(hb_decoder_t *dec, uint64_t id) {
  if (dec->tbl_cap == 0)
    return NULL;
  for (hb__table_t *t = dec->tbl[bucket(dec, id)]; t; t = t->next)
    if (t->pub.table_id == id)
      return t;
  return NULL;
}

/* Chained hash table, doubled when half full. */
static void table_insert(hb_decoder_t *dec, hb__table_t *t) {
  if (dec->tbl_count + 1 > dec->tbl_cap / 2) {
    size_t ncap = dec->tbl_cap ? dec->tbl_cap * 2 : 64;
    hb__table_t **nt = hd_calloc(ncap, sizeof(*nt));
    size_t ocap = dec->tbl_cap;
    hb__table_t **ot = dec->tbl;
    dec->tbl = nt;
    dec->tbl_cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
      for (hb__table_t *x = ot[i], *nx; x; x = nx) {
        nx = x->next;
        size_t b = bucket(dec, x->pub.table_id);
        x->next = nt[b];
        nt[b] = x;
      }
    }
    free(ot);
  }
  size_t b = bucket(dec, t->pub.table_id);
  t->next = dec->tbl[b];
  dec->tbl[b] = t;
  dec->tbl_count++;
}

/* Unlink a table; it stays alive on the retired list while an open window
 * may point at it. */
static void table_remove(hb_decoder_t *dec, hb__table_t *t) {
  hb__table_t **pp = &dec->tbl[bucket(dec, t->pub.table_id)];
  while (*pp != t)
    pp = &(*pp)->next;
  *pp = t->next;
  dec->tbl_count--;
  if (dec->in_txn) {
    t->next = dec->retired;
    dec->retired = t;
  } else {
    table_free(t);
  }
}

void hb__tables_retire_flush(hb_decoder_t *dec) {
  while (dec->retired) {
    hb__table_t *t = dec->retired;
    dec->retired = t->next;
    table_free(t);
  }
}

void hb__tables_free(hb_decoder_t *dec) {
  for (size_t i = 0; i < dec->tbl_cap; i++) {
    for (hb__table_t *t = dec->tbl[i], *n; t; t = n) {
      n = t->next;
      table_free(t);
    }
  }
  free(dec->tbl);
  dec->tbl = NULL;
  dec->tbl_cap = dec->tbl_count = 0;
  hb__tables_retire_flush(dec);
}

/* After DDL, what the schema provider said may be out of date: the next
 * table map of each table asks again, even if its bytes are unchanged
 * (a renamed column does not change them). */
void hb__tables_mark_stale(hb_decoder_t *dec) {
  for (size_t i = 0; i < dec->tbl_cap; i++)
    for (hb__table_t *t = dec->tbl[i]; t; t = t->next)
      t->stale = 1;
}

/* Table ids grow for as long as a server runs, so a long-lived decoder
 * drops its cache between transactions once it gets large. */
void hb__tables_trim(hb_decoder_t *dec) {
  if (dec->tbl_count > 4096 && !dec->in_txn)
    hb__tables_free(dec);
}

/* ---- TABLE_MAP ---- */

/* TABLE_MAP: post-header (table id 6, or 4 on pre-5.1 servers, flags 2),
 * then db and table names (length byte, bytes, NUL), the column count,
 * one type byte per column, the metadata block, the nullability bitmap,
 * and the optional metadata to the end of the event. */
int hb__table_map(hb_decoder_t *dec, const uint8_t *body, size_t len) {
  unsigned ph = dec->ph[HB_EV_TABLE_MAP];
  if (ph != 6 && ph != 8)
    ph = 8;
  if (len < ph)
    return hb__fail(dec, HB_ECORRUPT, "TABLE_MAP shorter than its header");
  uint64_t id = ph == 6 ? hb__u32(body) : hb__u48(body);

  hb__table_t *old = hb__table_get(dec, id);
  if (old && !old->stale && old->rawlen == len &&
      memcmp(old->raw, body, len) == 0)
    return 0; /* the usual case: the same table again */

  const uint8_t *p = body + ph, *e = body + len;
  /* db and table names: length byte, bytes, NUL */
  const uint8_t *dbn, *tbn;
  uint8_t dbl, tbl;
  if (e - p < 1 || (size_t)(e - p) < 2u + p[0])
    goto short_;
  dbl = p[0];
  dbn = p + 1;
  p += 2 + dbl;
  if (e - p < 1 || (size_t)(e - p) < 2u + p[0])
    goto short_;
  tbl = p[0];
  tbn = p + 1;
  p += 2 + tbl;
  uint64_t ncols;
  if (hb__lenenc(&p, e, &ncols) < 0 || ncols > (uint64_t)(e - p) ||
      ncols > 65535)
    goto short_;
  const uint8_t *types = p;
  p += ncols;
  uint64_t mlen;
  if (hb__lenenc(&p, e, &mlen) < 0 || mlen > (uint64_t)(e - p))
    goto short_;
  const uint8_t *meta = p, *meta_end = p + mlen;
  p += mlen;
  size_t nb = (size_t)(ncols + 7) / 8;
  if ((size_t)(e - p) < nb)
    goto short_;
  const uint8_t *nulls = p;
  p += nb;

  /* Everything a window needs is copied: the table outlives this event
   * and usually many more. */
  uint32_t n = (uint32_t)ncols;
  hb__table_t *t = hd_calloc(1, sizeof(*t));
  t->pub.table_id = id;
  t->pub.ncols = n;
  t->cols = hd_calloc(n ? n : 1, sizeof(*t->cols));
  t->x = hd_calloc(n ? n : 1, sizeof(*t->x));
  t->pub.cols = t->cols;
  t->raw = hd_malloc(len);
  memcpy(t->raw, body, len);
  t->rawlen = len;
  {
    char *s = hd_strndup((const char *)dbn, dbl);
    t->pub.db = to_utf8(dec, s, 0);
    free(s);
    s = hd_strndup((const char *)tbn, tbl);
    t->pub.name = to_utf8(dec, s, 0);
    free(s);
  }

  /* Resolve real types (ENUM/SET hide inside STRING) before the optional
   * metadata, which counts columns by their real type. */
  uint8_t *rtypes = hd_malloc(n ? n : 1);
  const uint8_t *m = meta;
  int meta_ok = 1;
  for (uint32_t i = 0; i < n; i++) {
    int k = meta_bytes(types[i]);
    uint16_t mv = 0;
    if (k < 0 || (size_t)(meta_end - m) < (size_t)k) {
      meta_ok = 0;
    } else {
      mv = meta_value(types[i], m, k);
      m += k;
    }
    hb_column_t *c = &t->cols[i];
    c->meta = mv;
    c->nullable = (nulls[i / 8] >> (i % 8)) & 1;
    pick_decoder(c, &t->x[i], types[i], mv);
    if (k < 0)
      t->x[i].bad = type_name(types[i]);
    rtypes[i] = c->type;
  }
  if (!meta_ok || m != meta_end) {
    /* Without a per-column split of the metadata nothing can be decoded;
     * fail only if rows of this table are wanted. */
    for (uint32_t i = 0; i < n; i++) {
      t->x[i].dk = HB_DK_BAD;
      if (t->x[i].bad == NULL)
        t->x[i].bad = "table map metadata does not match its column types";
    }
  }

  om_t om = {0};
  const char *err = om_parse(p, e, rtypes, n, dec->is_mariadb, &om);
  if (err) {
    om_free(&om, n);
    free(rtypes);
    table_free(t);
    return hb__fail(dec, HB_ECORRUPT, "TABLE_MAP of %.*s.%.*s: %s", dbl,
                    (const char *)dbn, tbl, (const char *)tbn, err);
  }

  /* Apply the optional metadata; names default to "@N" (1-based, as
   * mysqlbinlog numbers columns). */
  for (uint32_t i = 0; i < n; i++) {
    hb_column_t *c = &t->cols[i];
    if (om.have_sign)
      c->is_unsigned = om.unsig[i];
    if (om.cs && om.cs[i])
      c->charset = (uint16_t)om.cs[i];
    if (om.es_cs && om.es_cs[i])
      c->charset = (uint16_t)om.es_cs[i];
    if (om.have_names) {
      c->name = to_utf8(dec, om.names[i], 0);
    } else {
      char tmp[16];
      snprintf(tmp, sizeof(tmp), "@%u", i + 1);
      c->name = hd_strdup(tmp);
    }
    if (om.labels && om.labels[i]) {
      const char **l =
          hd_calloc(om.nlabels[i] ? om.nlabels[i] : 1, sizeof(char *));
      for (uint32_t k = 0; k < om.nlabels[i]; k++)
        l[k] = to_utf8(dec, om.labels[i][k], c->charset);
      c->labels = l;
      c->nlabels = om.nlabels[i];
    }
  }
  t->pub.names_known = om.have_names;
  if (om.have_pk && om.npk) {
    t->pub.pk = om.pk;
    t->pub.npk = om.npk;
    om.pk = NULL;
  }

  /* Filtered tables are still cached (their rows events must be framed
   * and skipped), but never sent to the schema provider. */
  const char *dbs = t->pub.db, *tns = t->pub.name;
  if (dec->cfg.table_filter && !dec->cfg.table_filter(dec->cfg.ud, dbs, tns))
    t->skip = 1;
  if (!t->skip && !om.have_names && dec->cfg.schema) {
    int r = ask_schema(dec, t, &om, rtypes);
    if (r < 0) {
      om_free(&om, n);
      free(rtypes);
      table_free(t);
      return r;
    }
  }
  om_free(&om, n);
  free(rtypes);

  /* Text decoding by charset; renderer caches. */
  for (uint32_t i = 0; i < n; i++) {
    hb_column_t *c = &t->cols[i];
    hb__col_t *x = &t->x[i];
    if (x->dk == HB_DK_TEXT) {
      x->cs = c->charset ? (uint8_t)hb__cs_class(c->charset, &x->iconv_name)
                         : HB_CS_UNKNOWN;
    }
    make_name_json(x, c->name);
    if (c->type == HB_T_JSON)
      t->njson++;
  }
  for (uint32_t k = 0; k < t->pub.npk; k++)
    t->x[t->pub.pk[k]].is_pk = 1;
  {
    hb_buf_t b = {0};
    hb_buf_lit(&b, ",\"db\":");
    hb__json_str_checked(&b, dbs, strlen(dbs));
    hb_buf_lit(&b, ",\"table\":");
    hb__json_str_checked(&b, tns, strlen(tns));
    hb_buf_reserve(&b, 16);
    memset(b.p + b.len, 0, 16);
    t->src_json = b.p;
    t->src_json_len = (uint32_t)b.len;
  }

  /* Tables are immutable once built, so the schema version is taken
   * here once rather than by every window that uses the table. */
  {
    hb_coldesc_t dv[32], *d = n > 32 ? hd_malloc(n * sizeof(*d)) : dv;
    for (uint32_t i = 0; i < n; i++)
      hb_describe_column(&t->pub, i, &d[i]);
    t->pub.schema_version = hb_schema_version(dbs, tns, d, n);
    if (d != dv)
      free(d);
  }

  if (old)
    table_remove(dec, old);
  table_insert(dec, t);
  return 0;

short_:
  return hb__fail(dec, HB_ECORRUPT, "TABLE_MAP body is truncated");
}
