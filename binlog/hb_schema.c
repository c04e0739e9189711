/*
 * hb_schema.c - column descriptions, SQL type text and schema versions
 * from the decoder's tables.
 */
#include "hb_schema.h"

#include <stdio.h>
#include <string.h>

#include "hb_int.h"

/* BLOB-family names by pack length (1-4 bytes of length). */
static const char *const blob_names[2][5] = {
    {"blob", "tinyblob", "blob", "mediumblob", "longblob"},
    {"text", "tinytext", "text", "mediumtext", "longtext"}};
static const uint32_t blob_max[5] = {0, 255, 65535, 16777215, 4294967295u};

void hb_describe_column(const hb_table_t *pt, uint32_t i, hb_coldesc_t *d) {
  const hb__table_t *t = (const hb__table_t *)pt;
  const hb_column_t *c = &pt->cols[i];
  const hb__col_t *x = &t->x[i];
  memset(d, 0, sizeof(*d));
  d->name = c->name;
  d->type = c->type;
  d->nullable = c->nullable;
  d->collation = c->charset;
  d->is_unsigned = 0;
  for (uint32_t k = 0; k < pt->npk; k++)
    if (pt->pk[k] == i)
      d->pk = k + 1;
  unsigned width = 0;
  const char *cs = c->charset ? hb__charset_name(c->charset, &width) : NULL;
  int binary = c->charset == 63;
  int numeric = 0;
  switch (c->type) {
  case HB_T_TINY:
    d->base = "tinyint";
    numeric = 1;
    break;
  case HB_T_SHORT:
    d->base = "smallint";
    numeric = 1;
    break;
  case HB_T_INT24:
    d->base = "mediumint";
    numeric = 1;
    break;
  case HB_T_LONG:
    d->base = "int";
    numeric = 1;
    break;
  case HB_T_LONGLONG:
    d->base = "bigint";
    numeric = 1;
    break;
  case HB_T_FLOAT:
    d->base = "float";
    numeric = 1;
    break;
  case HB_T_DOUBLE:
    d->base = "double";
    numeric = 1;
    break;
  case HB_T_DECIMAL:
  case HB_T_NEWDECIMAL:
    d->base = "decimal";
    d->precision = x->prec;
    d->scale = x->scale;
    numeric = 1;
    break;
  case HB_T_YEAR:
    d->base = "year";
    break;
  case HB_T_DATE:
  case HB_T_NEWDATE:
    d->base = "date";
    break;
  case HB_T_TIME:
  case HB_T_TIME2:
    d->base = "time";
    d->fsp = x->fsp;
    break;
  case HB_T_DATETIME:
  case HB_T_DATETIME2:
    d->base = "datetime";
    d->fsp = x->fsp;
    break;
  case HB_T_TIMESTAMP:
  case HB_T_TIMESTAMP2:
    d->base = "timestamp";
    d->fsp = x->fsp;
    break;
  case HB_T_BIT:
    d->base = "bit";
    d->length = (uint32_t)(c->meta >> 8) * 8 + (c->meta & 0xff);
    d->max_bytes = x->size;
    break;
  case HB_T_ENUM:
  case HB_T_SET:
    d->base = c->type == HB_T_ENUM ? "enum" : "set";
    d->nlabels = c->nlabels;
    d->labels = c->labels;
    d->charset = cs;
    break;
  case HB_T_STRING:
    d->base = binary ? "binary" : "char";
    d->max_bytes = x->fixlen;
    d->length = binary ? x->fixlen : width ? x->fixlen / width : 0;
    d->charset = binary ? NULL : cs;
    break;
  case HB_T_VARCHAR:
  case HB_T_VAR_STRING:
    d->base = binary ? "varbinary" : "varchar";
    d->max_bytes = c->meta;
    d->length = binary ? c->meta : width ? c->meta / width : 0;
    d->charset = binary ? NULL : cs;
    break;
  case HB_T_BLOB:
  case HB_T_TINY_BLOB:
  case HB_T_MEDIUM_BLOB:
  case HB_T_LONG_BLOB: {
    unsigned pl = c->meta >= 1 && c->meta <= 4 ? c->meta : 0;
    /* Text or binary is known from the charset only. */
    d->base = blob_names[!binary && c->charset != 0][pl];
    d->max_bytes = blob_max[pl];
    d->charset = binary ? NULL : cs;
    break;
  }
  case HB_T_JSON:
    d->base = "json";
    d->max_bytes = blob_max[4];
    break;
  case HB_T_GEOMETRY:
    d->base = "geometry";
    d->max_bytes = blob_max[4];
    break;
  case HB_T_VECTOR:
    d->base = "vector";
    d->max_bytes = c->meta;
    break;
  case HB_T_NULL:
    d->base = "null";
    break;
  default:
    d->base = "unknown";
    break;
  }
  d->numeric = numeric;
  if (numeric)
    d->is_unsigned = pt->names_known ? c->is_unsigned : -1;
}

void hb_render_sql_type(const hb_coldesc_t *d, hb_buf_t *out) {
  char tmp[64];
  int n = 0;
  hb_buf_put(out, d->base, strlen(d->base));
  switch (d->type) {
  case HB_T_DECIMAL:
  case HB_T_NEWDECIMAL:
    n = snprintf(tmp, sizeof(tmp), "(%u,%u)", d->precision, d->scale);
    break;
  case HB_T_TIME2:
  case HB_T_DATETIME2:
  case HB_T_TIMESTAMP2:
    if (d->fsp)
      n = snprintf(tmp, sizeof(tmp), "(%u)", d->fsp);
    break;
  case HB_T_BIT:
  case HB_T_STRING:
  case HB_T_VARCHAR:
  case HB_T_VAR_STRING:
    if (d->length)
      n = snprintf(tmp, sizeof(tmp), "(%u)", d->length);
    break;
  case HB_T_ENUM:
  case HB_T_SET:
    hb_buf_putc(out, '(');
    for (uint32_t i = 0; i < d->nlabels; i++) {
      if (i)
        hb_buf_putc(out, ',');
      hb_buf_putc(out, '\'');
      for (const char *s = d->labels[i]; *s; s++) {
        if (*s == '\'')
          hb_buf_putc(out, '\'');
        hb_buf_putc(out, *s);
      }
      hb_buf_putc(out, '\'');
    }
    hb_buf_putc(out, ')');
    break;
  default:
    break;
  }
  if (n > 0)
    hb_buf_put(out, tmp, (size_t)n);
  if (d->is_unsigned == 1)
    hb_buf_lit(out, " unsigned");
}

static uint32_t crc_str(uint32_t crc, const char *s) {
  s = s ? s : "";
  return hb__crc32(crc, (const uint8_t *)s, strlen(s) + 1);
}

static uint32_t crc_u32(uint32_t crc, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                  (uint8_t)(v >> 24)};
  return hb__crc32(crc, b, 4);
}

uint32_t hb_schema_version(const char *db, const char *table,
                           const hb_coldesc_t *cols, uint32_t n) {
  uint32_t crc = crc_str(0, db);
  crc = crc_str(crc, table);
  crc = crc_u32(crc, n);
  for (uint32_t i = 0; i < n; i++) {
    const hb_coldesc_t *d = &cols[i];
    crc = crc_str(crc, d->name);
    crc = crc_str(crc, d->base);
    uint32_t v[] = {d->type,
                    d->max_bytes,
                    d->length,
                    d->precision,
                    d->scale,
                    d->fsp,
                    (uint32_t)(d->is_unsigned + 1),
                    (uint32_t)d->nullable,
                    d->collation,
                    d->nlabels,
                    d->pk};
    for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
      crc = crc_u32(crc, v[k]);
    for (uint32_t k = 0; k < d->nlabels; k++)
      crc = crc_str(crc, d->labels[k]);
  }
  return crc ? crc : 1;
}

void hb_render_schema(const char *db, const char *table, uint32_t version,
                      const hb_coldesc_t *cols, uint32_t n, hb_buf_t *out) {
  hb_buf_lit(out, "{\"op\":\"schema\",\"db\":");
  hb__json_str_checked(out, db, strlen(db));
  hb_buf_lit(out, ",\"table\":");
  hb__json_str_checked(out, table, strlen(table));
  hb_buf_lit(out, ",\"schema_version\":");
  hb_buf_u64(out, version);
  hb_buf_lit(out, ",\"columns\":[");
  hb_buf_t ty = {0};
  for (uint32_t i = 0; i < n; i++) {
    const hb_coldesc_t *d = &cols[i];
    if (i)
      hb_buf_putc(out, ',');
    hb_buf_lit(out, "{\"name\":");
    hb__json_str_checked(out, d->name, strlen(d->name));
    ty.len = 0;
    if (d->sql_type)
      hb_buf_put(&ty, d->sql_type, strlen(d->sql_type));
    else
      hb_render_sql_type(d, &ty);
    hb_buf_lit(out, ",\"type\":");
    hb__json_str_checked(out, ty.p, ty.len);
    hb_buf_lit(out, ",\"nullable\":");
    if (d->nullable)
      hb_buf_lit(out, "true");
    else
      hb_buf_lit(out, "false");
    if (d->charset) {
      hb_buf_lit(out, ",\"charset\":");
      hb__json_str_checked(out, d->charset, strlen(d->charset));
    }
    if (d->collation) {
      hb_buf_lit(out, ",\"collation_id\":");
      hb_buf_u64(out, d->collation);
    }
    if (d->max_bytes) {
      hb_buf_lit(out, ",\"max_bytes\":");
      hb_buf_u64(out, d->max_bytes);
    }
    if (d->pk) {
      hb_buf_lit(out, ",\"pk\":");
      hb_buf_u64(out, d->pk);
    }
    hb_buf_putc(out, '}');
  }
  hb_buf_free(&ty);
  hb_buf_lit(out, "]}\n");
}
