/*
 * hb_synth.c - tables made from column names alone, so that windows that
 * did not come from the decoder (a relay's protobuf windows, in heraldctl
 * tail) are rendered by the same code as decoded ones.
 */
#include <stdlib.h>
#include <string.h>

#include "hb_int.h"
#include "hb_synth.h"
#include "hd_mem.h"

hb_table_t *hb_table_synth(const char *db, const char *table, uint32_t ncols,
                           const char *const *names, uint32_t npk,
                           const uint32_t *pk) {
  hb__table_t *t = hd_calloc(1, sizeof(*t));
  t->cols = hd_calloc(ncols + 1, sizeof(hb_column_t));
  t->x = hd_calloc(ncols + 1, sizeof(hb__col_t));
  t->pub.db = hd_strdup(db);
  t->pub.name = hd_strdup(table);
  t->pub.ncols = ncols;
  t->pub.cols = t->cols;
  t->pub.names_known = 1;
  uint32_t *pkc = hd_malloc((npk + 1) * sizeof(uint32_t));
  memcpy(pkc, pk, npk * sizeof(uint32_t));
  t->pub.pk = pkc;
  t->pub.npk = npk;
  for (uint32_t i = 0; i < ncols; i++) {
    hb_buf_t b = {0};
    t->cols[i].name = hd_strdup(names[i]);
    hb__json_str_checked(&b, names[i], strlen(names[i]));
    hb_buf_putc(&b, ':');
    t->x[i].name_json = b.p;
    t->x[i].name_json_len = (uint32_t)b.len;
  }
  for (uint32_t k = 0; k < npk; k++)
    if (pk[k] < ncols)
      t->x[pk[k]].is_pk = 1;
  hb_buf_t b = {0};
  hb_buf_lit(&b, ",\"db\":");
  hb__json_str_checked(&b, db, strlen(db));
  hb_buf_lit(&b, ",\"table\":");
  hb__json_str_checked(&b, table, strlen(table));
  t->src_json = b.p;
  t->src_json_len = (uint32_t)b.len;
  return &t->pub;
}

void hb_table_synth_free(hb_table_t *pub) {
  hb__table_t *t = (hb__table_t *)pub;
  if (t == NULL)
    return;
  for (uint32_t i = 0; i < t->pub.ncols; i++) {
    free((char *)t->cols[i].name);
    free(t->x[i].name_json);
  }
  free(t->cols);
  free(t->x);
  free((char *)t->pub.db);
  free((char *)t->pub.name);
  free((uint32_t *)t->pub.pk);
  free(t->src_json);
  free(t);
}
