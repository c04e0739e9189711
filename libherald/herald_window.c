/*
 * herald_window.c - what a client hands out: windows, row changes,
 * values, statements and table definitions (thin views of the received
 * protobuf messages), whether a change's key is in the client's
 * partitions (common/hd_partkey.c, the relay's own rule), the table
 * definitions a client keeps, and the change-format rendering
 * (binlog/hb_pb.c's renderer, the one heraldctl uses).
 */
#include <stdlib.h>
#include <string.h>

#include "hb_sql.h"
#include "hd_mem.h"
#include "hd_partkey.h"
#include "herald_int.h"

/* The public handles are the protobuf messages themselves: a change is a
 * Herald__RowChange, a value a Herald__Value, a statement a
 * Herald__SchemaChange. No copies, no per-row allocation. */
#define RC(ch) ((const Herald__RowChange *)(const void *)(ch))
#define PV(v) ((const Herald__Value *)(const void *)(v))
#define SC(d) ((const Herald__SchemaChange *)(const void *)(d))

static const char *str0(const char *s) {
  return s ? s : "";
}

uint64_t herald_window_scn(const herald_window_t *w) {
  return w->pw->scn;
}
const char *herald_window_gtid(const herald_window_t *w) {
  return str0(w->pw->gtid);
}
uint64_t herald_window_ts_ms(const herald_window_t *w) {
  return w->pw->ts_ms;
}
uint32_t herald_window_server_id(const herald_window_t *w) {
  return w->pw->server_id;
}
const char *herald_window_file(const herald_window_t *w) {
  return str0(w->pw->file);
}
uint64_t herald_window_pos(const herald_window_t *w) {
  return w->pw->pos;
}
uint32_t herald_window_chunk(const herald_window_t *w) {
  return w->chunk;
}
int herald_window_last(const herald_window_t *w) {
  return w->last;
}
uint64_t herald_window_row_base(const herald_window_t *w) {
  return w->row_base;
}
size_t herald_window_changes(const herald_window_t *w) {
  return w->pw->n_changes - w->row0;
}
const herald_change_t *herald_window_change(const herald_window_t *w,
                                            size_t i) {
  if (i >= herald_window_changes(w))
    return NULL;
  return (const herald_change_t *)(const void *)w->pw->changes[w->row0 + i];
}
size_t herald_window_ddls(const herald_window_t *w) {
  return w->pw->n_ddl - w->ddl0;
}
const herald_ddl_t *herald_window_ddl(const herald_window_t *w, size_t i) {
  if (i >= herald_window_ddls(w))
    return NULL;
  return (const herald_ddl_t *)(const void *)w->pw->ddl[w->ddl0 + i];
}
size_t herald_window_schemas(const herald_window_t *w) {
  return w->nschemas;
}
const herald_schema_t *herald_window_schema(const herald_window_t *w,
                                            size_t i) {
  return i < w->nschemas ? w->schemas[i] : NULL;
}

int herald_change_op(const herald_change_t *ch) {
  switch (RC(ch)->op) {
  case HERALD__OP__OP_INSERT:
    return HERALD_OP_INSERT;
  case HERALD__OP__OP_UPDATE:
    return HERALD_OP_UPDATE;
  case HERALD__OP__OP_READ:
    return HERALD_OP_READ;
  default:
    return HERALD_OP_DELETE;
  }
}

int herald_window_snapshot(const herald_window_t *w,
                           herald_snapshot_info_t *out) {
  const Herald__SnapshotChunk *ch = w->pw->snapshot;
  if (ch == NULL)
    return 0;
  if (out) {
    const Herald__SnapshotPosition *p = ch->position;
    memset(out, 0, sizeof(*out));
    out->table = p && p->table ? p->table : "";
    out->rows_read = ch->rows_read;
    out->table_rows = p ? p->table_rows : 0;
    out->table_rows_estimate = ch->table_rows_estimate;
    out->tables_done = p ? p->tables_done : 0;
    out->tables_total = ch->tables_total;
    out->table_done = p && p->table_done;
    out->done = p && p->done;
    out->read_scn = ch->read_scn;
  }
  return 1;
}
const char *herald_change_db(const herald_change_t *ch) {
  return str0(RC(ch)->db);
}
const char *herald_change_table(const herald_change_t *ch) {
  return str0(RC(ch)->table);
}
uint64_t herald_change_pos(const herald_change_t *ch) {
  return RC(ch)->pos;
}
uint32_t herald_change_schema_version(const herald_change_t *ch) {
  return RC(ch)->schema_version;
}

static Herald__Column **image(const herald_change_t *ch, int img, size_t *n) {
  const Herald__RowChange *rc = RC(ch);
  switch (img) {
  case HERALD_IMAGE_KEY:
    *n = rc->n_key;
    return rc->key;
  case HERALD_IMAGE_BEFORE:
    *n = rc->n_before;
    return rc->before;
  case HERALD_IMAGE_AFTER:
    *n = rc->n_after;
    return rc->after;
  case HERALD_IMAGE_OLD_KEY:
    *n = rc->n_old_key;
    return rc->old_key;
  default:
    *n = 0;
    return NULL;
  }
}

static const Herald__Value absent = HERALD__VALUE__INIT;

static const herald_value_t *value_of(const Herald__Column *col) {
  return (const herald_value_t *)(const void *)(col->value ? col->value
                                                           : &absent);
}

size_t herald_change_columns(const herald_change_t *ch, int img) {
  size_t n;
  image(ch, img, &n);
  return n;
}

const herald_value_t *herald_change_value(const herald_change_t *ch, int img,
                                          size_t i, const char **name) {
  size_t n;
  Herald__Column **cols = image(ch, img, &n);
  if (i >= n)
    return NULL;
  if (name)
    *name = str0(cols[i]->name);
  return value_of(cols[i]);
}

const herald_value_t *herald_change_find(const herald_change_t *ch, int img,
                                         const char *name) {
  size_t n;
  Herald__Column **cols = image(ch, img, &n);
  for (size_t i = 0; i < n; i++)
    if (cols[i]->name && strcmp(cols[i]->name, name) == 0)
      return value_of(cols[i]);
  return NULL;
}

/* ------------------------------------------------------------ partitions */

void hl_owned_init(hl_owned_t *o, const herald_conf_t *conf) {
  memset(o, 0, sizeof(*o));
  if (conf->nparts == 0)
    return;
  o->fn = conf->pfn;
  o->nparts = conf->nparts;
  size_t bytes = (o->nparts + 7) / 8;
  o->set = hd_calloc(bytes, 1);
  if (conf->nplist == 0) /* every partition: what the client subscribes */
    memset(o->set, 0xff, bytes);
  /* herald_client_new() has checked the list against partition.count. */
  for (size_t i = 0; i < conf->nplist; i++)
    o->set[conf->parts[i] / 8] |= (uint8_t)(1u << (conf->parts[i] % 8));
}

void hl_owned_free(hl_owned_t *o) {
  free(o->set);
  free(o->tmp);
  memset(o, 0, sizeof(*o));
}

int hl_owned(hl_owned_t *o, const herald_change_t *ch, int img) {
  if (ch == NULL || (img != HERALD_IMAGE_KEY && img != HERALD_IMAGE_OLD_KEY))
    return HERALD_ERR_ARG;
  size_t n;
  Herald__Column **cols = image(ch, img, &n);
  if (img == HERALD_IMAGE_OLD_KEY && n == 0)
    return 0; /* no key moved */
  if (o->set == NULL)
    return 1;
  /* The relay's decision (relay_filter.c): the partition of the key's
   * facts, MOD by the first key column (the relay refuses a key_column),
   * partition 0 for a change without a key. */
  hd_key_t k;
  hd_key_of(&k, cols, n, &o->tmp, &o->tmpcap);
  uint32_t p = hd_partition_of(o->fn, o->nparts, &k);
  return (o->set[p / 8] >> (p % 8)) & 1;
}

const char *herald_ddl_db(const herald_ddl_t *d) {
  return str0(SC(d)->db);
}
const char *herald_ddl_statement(const herald_ddl_t *d) {
  return str0(SC(d)->statement);
}
uint64_t herald_ddl_pos(const herald_ddl_t *d) {
  return SC(d)->pos;
}
uint32_t herald_ddl_row_index(const herald_ddl_t *d) {
  return SC(d)->row_index;
}

int herald_value_type(const herald_value_t *v) {
  switch (PV(v)->kind_case) {
  case HERALD__VALUE__KIND_NULL:
    return HERALD_V_NULL;
  case HERALD__VALUE__KIND_INT:
    return HERALD_V_INT;
  case HERALD__VALUE__KIND_UINT:
    return HERALD_V_UINT;
  case HERALD__VALUE__KIND_FLT:
    return HERALD_V_FLOAT;
  case HERALD__VALUE__KIND_DBL:
    return HERALD_V_DOUBLE;
  case HERALD__VALUE__KIND_DECIMAL:
    return HERALD_V_DECIMAL;
  case HERALD__VALUE__KIND_TEMPORAL:
    return HERALD_V_TEMPORAL;
  case HERALD__VALUE__KIND_STR:
    return HERALD_V_STRING;
  case HERALD__VALUE__KIND_BIN:
    return HERALD_V_BYTES;
  case HERALD__VALUE__KIND_BADTEXT:
    return HERALD_V_BADTEXT;
  case HERALD__VALUE__KIND_JSON:
    return HERALD_V_JSON;
  case HERALD__VALUE__KIND_JSON_DIFF:
    return HERALD_V_JSON_DIFF;
  default:
    return HERALD_V_ABSENT;
  }
}

int64_t herald_value_int(const herald_value_t *v) {
  const Herald__Value *p = PV(v);
  if (p->kind_case == HERALD__VALUE__KIND_INT)
    return p->int_;
  if (p->kind_case == HERALD__VALUE__KIND_UINT)
    return (int64_t)p->uint;
  return 0;
}

uint64_t herald_value_uint(const herald_value_t *v) {
  const Herald__Value *p = PV(v);
  if (p->kind_case == HERALD__VALUE__KIND_UINT)
    return p->uint;
  if (p->kind_case == HERALD__VALUE__KIND_INT)
    return (uint64_t)p->int_;
  return 0;
}

double herald_value_double(const herald_value_t *v) {
  const Herald__Value *p = PV(v);
  switch (p->kind_case) {
  case HERALD__VALUE__KIND_DBL:
    return p->dbl;
  case HERALD__VALUE__KIND_FLT:
    return p->flt;
  case HERALD__VALUE__KIND_INT:
    return (double)p->int_;
  case HERALD__VALUE__KIND_UINT:
    return (double)p->uint;
  default:
    return 0;
  }
}

const char *herald_value_data(const herald_value_t *v, size_t *len) {
  const Herald__Value *p = PV(v);
  const char *s = NULL;
  size_t n = 0;
  switch (p->kind_case) {
  case HERALD__VALUE__KIND_STR:
    s = (const char *)p->str.data;
    n = p->str.len;
    if (s == NULL)
      s = "";
    break;
  case HERALD__VALUE__KIND_DECIMAL:
    s = p->decimal;
    break;
  case HERALD__VALUE__KIND_TEMPORAL:
    s = p->temporal;
    break;
  case HERALD__VALUE__KIND_JSON:
    s = p->json;
    break;
  case HERALD__VALUE__KIND_JSON_DIFF:
    s = p->json_diff;
    break;
  case HERALD__VALUE__KIND_BIN:
    s = (const char *)p->bin.data;
    n = p->bin.len;
    if (s == NULL)
      s = "";
    break;
  case HERALD__VALUE__KIND_BADTEXT:
    s = (const char *)p->badtext.data;
    n = p->badtext.len;
    if (s == NULL)
      s = "";
    break;
  default:
    break;
  }
  if (s && n == 0 && p->kind_case != HERALD__VALUE__KIND_STR &&
      p->kind_case != HERALD__VALUE__KIND_BIN &&
      p->kind_case != HERALD__VALUE__KIND_BADTEXT)
    n = strlen(s);
  if (len)
    *len = n;
  return s;
}

/* ------------------------------------------------------------- schemas */

const char *herald_schema_db(const herald_schema_t *s) {
  return str0(s->ts->db);
}
const char *herald_schema_table(const herald_schema_t *s) {
  return str0(s->ts->table);
}
uint32_t herald_schema_version(const herald_schema_t *s) {
  return s->ts->schema_version;
}
size_t herald_schema_columns(const herald_schema_t *s) {
  return s->ts->n_columns;
}
const herald_column_t *herald_schema_column(const herald_schema_t *s,
                                            size_t i) {
  return i < s->ts->n_columns ? &s->cols[i] : NULL;
}

static uint64_t key_hash(const char *db, const char *table, uint32_t ver) {
  uint64_t h = 1469598103934665603ull ^ ver;
  for (const char *p = db; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  h = (h ^ '.') * 1099511628211ull;
  for (const char *p = table; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h;
}

static int same(const herald_schema_t *s, const char *db, const char *table,
                uint32_t ver) {
  return s->ts->schema_version == ver && strcmp(str0(s->ts->db), db) == 0 &&
         strcmp(str0(s->ts->table), table) == 0;
}

const herald_schema_t *hl_schemas_find(const hl_schemas_t *m, const char *db,
                                       const char *table, uint32_t ver) {
  if (m->cap == 0)
    return NULL;
  db = str0(db);
  table = str0(table);
  size_t i = (size_t)key_hash(db, table, ver) & (m->cap - 1);
  for (; m->slot[i]; i = (i + 1) & (m->cap - 1))
    if (same(m->slot[i], db, table, ver))
      return m->slot[i];
  return NULL;
}

static void put(hl_schemas_t *m, herald_schema_t *s) {
  size_t i = (size_t)key_hash(str0(s->ts->db), str0(s->ts->table),
                              s->ts->schema_version) &
             (m->cap - 1);
  while (m->slot[i])
    i = (i + 1) & (m->cap - 1);
  m->slot[i] = s;
}

static herald_schema_t *schema_copy(const Herald__TableSchema *ts) {
  /* A deep copy by the codec itself: the received frame is freed at the
   * next poll, the definition lives as long as the client. */
  size_t n = herald__table_schema__get_packed_size(ts);
  uint8_t *buf = hd_malloc(n ? n : 1);
  herald__table_schema__pack(ts, buf);
  Herald__TableSchema *c = herald__table_schema__unpack(NULL, n, buf);
  free(buf);
  if (c == NULL)
    return NULL;
  herald_schema_t *s = hd_calloc(1, sizeof(*s));
  s->ts = c;
  s->cols = hd_calloc(c->n_columns + 1, sizeof(herald_column_t));
  for (size_t i = 0; i < c->n_columns; i++) {
    const Herald__ColumnSchema *cs = c->columns[i];
    herald_column_t *o = &s->cols[i];
    o->name = str0(cs->name);
    o->sql_type = str0(cs->sql_type);
    o->base_type = str0(cs->base_type);
    o->charset = str0(cs->charset);
    o->binlog_type = cs->binlog_type;
    o->length = cs->length;
    o->max_bytes = cs->max_bytes;
    o->precision = cs->precision;
    o->scale = cs->scale;
    o->fsp = cs->fsp;
    o->is_unsigned = cs->signedness == HERALD__SIGNEDNESS__SIGN_UNSIGNED  ? 1
                     : cs->signedness == HERALD__SIGNEDNESS__SIGN_SIGNED  ? 0
                     : cs->signedness == HERALD__SIGNEDNESS__SIGN_UNKNOWN ? -1
                                                                          : -2;
    o->nullable = cs->nullable;
    o->pk_position = cs->pk_position;
    o->nlabels = cs->n_labels;
    o->labels = (const char *const *)cs->labels;
  }
  return s;
}

const herald_schema_t *
hl_schemas_add(hl_schemas_t *m, const Herald__TableSchema *ts, int *added) {
  *added = 0;
  const herald_schema_t *have =
      hl_schemas_find(m, ts->db, ts->table, ts->schema_version);
  if (have)
    return have;
  herald_schema_t *s = schema_copy(ts);
  if (s == NULL)
    return NULL;
  if ((m->n + 1) * 2 > m->cap) {
    hl_schemas_t g = {hd_calloc(m->cap ? m->cap * 2 : 16, sizeof(void *)),
                      m->cap ? m->cap * 2 : 16, m->n};
    for (size_t i = 0; i < m->cap; i++)
      if (m->slot[i])
        put(&g, m->slot[i]);
    free(m->slot);
    *m = g;
  }
  put(m, s);
  m->n++;
  *added = 1;
  return s;
}

void hl_schemas_free(hl_schemas_t *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slot[i]) {
      herald__table_schema__free_unpacked(m->slot[i]->ts, NULL);
      free(m->slot[i]->cols);
      free(m->slot[i]);
    }
  free(m->slot);
  memset(m, 0, sizeof(*m));
}

/* -------------------------------------------------------- change format */

void hl_json_free(hl_json_t *j) {
  hb_pbr_free(j->pbr);
  free(j->out.p);
  free(j->held.p);
  memset(j, 0, sizeof(*j));
}

typedef struct {
  char *const *v;
  size_t n;
} pats_t;

/* With table patterns the relay sends only the statements that concern
 * the tables (hb_sql.h's rule); the same rule here keeps what is rendered
 * independent of the relay's version. */
static int want_ddl(void *ud, const hb_ddl_t *d) {
  const pats_t *p = ud;
  return hb_ddl_wanted(d, (char **)p->v, p->n);
}

int hl_json_window(hl_json_t *j, const herald_window_t *w, unsigned flags,
                   char *const *tables, size_t ntables, const char **out,
                   size_t *len) {
  if (j->pbr == NULL)
    j->pbr = hb_pbr_new();
  Herald__Window pw = *w->pw; /* less what was delivered before */
  /* (arrays of a window without rows or statements are NULL, and NULL +
   * 0 is undefined) */
  if (w->row0) {
    pw.changes += w->row0;
    pw.n_changes -= w->row0;
  }
  if (w->ddl0) {
    pw.ddl += w->ddl0;
    pw.n_ddl -= w->ddl0;
  }
  pw.more_chunks = !w->last;
  hb_buf_t *o = &j->out;
  o->len = 0;
  if (w->chunk == 0) {
    j->held.len = 0; /* a window abandoned mid-way left nothing to fix */
    j->row_base = 0;
  }
  if (flags & HERALD_JSON_SCHEMAS)
    for (size_t k = 0; k < w->nschemas; k++)
      hb_pbr_schema(w->schemas[k]->ts, o);
  pats_t pats = {tables, ntables};
  j->row_base +=
      hb_pbr_window(j->pbr, &pw, (flags & HERALD_JSON_DDL) != 0,
                    ntables ? want_ddl : NULL, &pats, j->row_base, o);
  /* A chunk's last line says "last":false; only the next chunk tells
   * whether it was the transaction's last, so it is held back. */
  if (j->held.len) {
    static const char lf[] = "\"last\":false}}\n";
    size_t k = sizeof(lf) - 1;
    if (w->last && o->len == 0 && j->held.len >= k &&
        memcmp(j->held.p + j->held.len - k, lf, k) == 0) {
      j->held.len -= k;
      hb_buf_put(&j->held, "\"last\":true}}\n", k - 1);
    }
    hb_buf_put(&j->held, o->p, o->len);
    hb_buf_t t = *o;
    *o = j->held;
    j->held = t;
  }
  j->held.len = 0;
  size_t keep = o->len;
  if (!w->last && o->len) {
    keep = o->len - 1;
    while (keep > 0 && o->p[keep - 1] != '\n')
      keep--;
    hb_buf_put(&j->held, o->p + keep, o->len - keep);
  }
  if (w->last)
    j->row_base = 0;
  *out = o->p ? o->p : "";
  *len = keep;
  return HERALD_OK;
}
