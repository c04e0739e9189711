/*
 * relay_filter.c - a consumer's tables, partitions and projection.
 */
#include "relay_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_mem.h"
#include "hd_parse.h"
#include "hd_partkey.h"
#include "hd_pbwire.h"

static int valid_pattern(const char *p) {
  const char *dot = strchr(p, '.');
  return dot && dot != p && dot[1] && !strchr(dot + 1, '.');
}

int relay_filter_init(relay_filter_t *f, const Herald__Subscribe *sub,
                      char *err, size_t errlen) {
  memset(f, 0, sizeof(*f));
  for (size_t i = 0; i < sub->n_tables; i++) {
    if (!valid_pattern(sub->tables[i])) {
      snprintf(err, errlen, "'%.100s' is not a db.table pattern",
               sub->tables[i]);
      return -1;
    }
  }
  f->tables = hd_calloc(sub->n_tables + 1, sizeof(char *));
  for (size_t i = 0; i < sub->n_tables; i++)
    f->tables[f->ntables++] = hd_strdup(sub->tables[i]);
  const Herald__PartitionFilter *pf = sub->partition;
  if (pf && pf->fn != HERALD__PARTITION_FUNCTION__PART_NONE) {
    if (pf->key_column && *pf->key_column) {
      snprintf(err, errlen,
               "key_column is not supported: MOD and RANGE use the first "
               "primary key column");
      return -1;
    }
    f->part_fn = pf->fn;
    if (pf->fn == HERALD__PARTITION_FUNCTION__PART_RANGE) {
      if (!pf->range_to_max && pf->range_start >= pf->range_end) {
        snprintf(err, errlen, "range_start must be below range_end");
        return -1;
      }
      f->range_lo = pf->range_start;
      f->range_hi = pf->range_end;
      f->range_to_max = pf->range_to_max;
    } else if (pf->fn == HERALD__PARTITION_FUNCTION__PART_HASH ||
               pf->fn == HERALD__PARTITION_FUNCTION__PART_MOD) {
      if (pf->num_partitions < 1 || pf->num_partitions > 65536 ||
          pf->n_partitions == 0) {
        snprintf(err, errlen,
                 "a partition filter needs 1-65536 partitions and a "
                 "non-empty set");
        return -1;
      }
      f->nparts = pf->num_partitions;
      f->part_set = hd_calloc((f->nparts + 7) / 8, 1);
      for (size_t i = 0; i < pf->n_partitions; i++) {
        uint32_t p = pf->partitions[i];
        if (p >= f->nparts) {
          snprintf(err, errlen, "partition %u is not below %u", p, f->nparts);
          return -1;
        }
        f->part_set[p / 8] |= (uint8_t)(1u << (p % 8));
      }
    } else {
      snprintf(err, errlen, "unknown partition function");
      return -1;
    }
  }
  if (sub->n_projection) {
    f->proj = hd_calloc(sub->n_projection, sizeof(relay_proj_t));
    for (size_t i = 0; i < sub->n_projection; i++) {
      const Herald__Projection *p = sub->projection[i];
      relay_proj_t *pj = &f->proj[f->nproj++];
      pj->pattern = hd_strdup(p->table ? p->table : "");
      pj->cols = hd_calloc(p->n_columns + 1, sizeof(char *));
      for (size_t k = 0; k < p->n_columns; k++)
        pj->cols[pj->ncols++] = hd_strdup(p->columns[k]);
      if (!valid_pattern(pj->pattern)) {
        snprintf(err, errlen, "projection table is not a db.table pattern");
        return -1;
      }
    }
  }
  return 0;
}

void relay_filter_free(relay_filter_t *f) {
  for (size_t i = 0; i < f->ntables; i++)
    free(f->tables[i]);
  free(f->tables);
  for (size_t i = 0; i < f->nproj; i++) {
    free(f->proj[i].pattern);
    for (size_t k = 0; k < f->proj[i].ncols; k++)
      free(f->proj[i].cols[k]);
    free(f->proj[i].cols);
  }
  free(f->proj);
  free(f->part_set);
  free(f->tmatch);
  memset(f, 0, sizeof(*f));
}

int relay_filter_all(const relay_filter_t *f) {
  return f->ntables == 0 && f->part_fn == 0 && f->nproj == 0;
}

void relay_filter_window(relay_filter_t *f, const relay_win_t *w) {
  if (f->ntables == 0)
    return;
  if (f->tmatch_cap < w->ntables) {
    f->tmatch_cap = w->ntables;
    f->tmatch = hd_realloc(f->tmatch, f->tmatch_cap);
  }
  for (uint32_t t = 0; t < w->ntables; t++) {
    f->tmatch[t] = 0;
    for (size_t i = 0; i < f->ntables && !f->tmatch[t]; i++)
      f->tmatch[t] = (uint8_t)hd_glob_match(f->tables[i], w->tables[t]);
  }
}

static int key_wanted(const relay_filter_t *f, const hd_key_t *k) {
  if (f->part_fn == HERALD__PARTITION_FUNCTION__PART_RANGE)
    return hd_key_in_range(k, f->range_lo, f->range_hi, f->range_to_max);
  uint32_t p = hd_partition_of(f->part_fn, f->nparts, k);
  return (f->part_set[p / 8] >> (p % 8)) & 1;
}

int relay_filter_row(const relay_filter_t *f, const relay_win_t *w,
                     const relay_row_t *r) {
  if (f->ntables && !f->tmatch[r->table])
    return 0;
  if (f->part_fn == 0)
    return 1;
  return key_wanted(f, &r->key) ||
         (r->old && key_wanted(f, &w->olds[r->old - 1]));
}

int relay_filter_ddl(const relay_filter_t *f, const relay_ddl_t *d) {
  return f->ntables == 0 ||
         hb_sql_names_wanted(&d->names, f->tables, f->ntables);
}

int relay_filter_proj(const relay_filter_t *f, const char *table) {
  for (size_t i = 0; i < f->nproj; i++)
    if (hd_glob_match(f->proj[i].pattern, table))
      return (int)i;
  return -1;
}

static void bytes_reserve(relay_bytes_t *b, size_t more) {
  if (b->len + more <= b->cap)
    return;
  size_t cap = b->cap ? b->cap * 2 : 256;
  while (cap < b->len + more)
    cap *= 2;
  b->p = hd_realloc(b->p, cap);
  b->cap = cap;
}

static int has_name(Herald__Column *const *cols, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(cols[i]->name, name) == 0)
      return 1;
  return 0;
}

size_t relay_filter_project(const relay_filter_t *f, int pj,
                            const uint8_t *field, size_t flen,
                            relay_bytes_t *out, size_t *len) {
  const relay_proj_t *pr = &f->proj[pj];
  /* Skip the field's tag and length to reach the RowChange bytes. */
  const uint8_t *p = field, *end = field + flen;
  uint64_t skip;
  Herald__RowChange *rc = NULL;
  if (hd_pb_read_varint(&p, end, &skip) == 0 &&
      hd_pb_read_varint(&p, end, &skip) == 0)
    rc = herald__row_change__unpack(NULL, (size_t)(end - p), p);
  if (rc == NULL) { /* cannot happen for our own bytes; send as is */
    bytes_reserve(out, flen);
    memcpy(out->p + out->len, field, flen);
    out->len += flen;
    *len = flen;
    return out->len - flen;
  }
  /* Pack a shallow copy with filtered column arrays: the unpacked
   * message keeps ownership of every column. */
  Herald__RowChange cp = *rc;
  Herald__Column **keep =
      hd_malloc((rc->n_before + rc->n_after + 1) * sizeof(Herald__Column *));
  size_t nk = 0;
  Herald__Column **imgs[2] = {rc->before, rc->after};
  size_t ns[2] = {rc->n_before, rc->n_after};
  for (int im = 0; im < 2; im++) {
    size_t k0 = nk;
    for (size_t i = 0; i < ns[im]; i++) {
      Herald__Column *col = imgs[im][i];
      int want = 0;
      for (size_t j = 0; j < pr->ncols && !want; j++)
        want = strcmp(pr->cols[j], col->name) == 0;
      if (!want)
        want = has_name(rc->key, rc->n_key, col->name) ||
               has_name(rc->old_key, rc->n_old_key, col->name);
      if (want)
        keep[nk++] = col;
    }
    if (im == 0) {
      cp.before = keep + k0;
      cp.n_before = nk - k0;
    } else {
      cp.after = keep + k0;
      cp.n_after = nk - k0;
    }
  }
  size_t body = herald__row_change__get_packed_size(&cp);
  bytes_reserve(out, 20 + body);
  size_t off = out->len;
  out->p[out->len++] = (uint8_t)HD_PB_TAG(7, HD_PB_LEN);
  out->len += hd_pb_varint(out->p + out->len, body);
  herald__row_change__pack(&cp, out->p + out->len);
  out->len += body;
  *len = out->len - off;
  free(keep);
  herald__row_change__free_unpacked(rc, NULL);
  return off;
}
