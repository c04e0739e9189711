/*
 * hb_synth.h - tables built from column names, for rendering windows that
 * arrive as protobuf (heraldctl tail) with the decoder's own renderer.
 */
#ifndef HB_SYNTH_H
#define HB_SYNTH_H

#include "hb.h"

/**
 * @brief A table with the given column names and primary key columns
 *        (indexes into names), usable in hb_row_t for hb_render_window().
 * @returns a table to free with hb_table_synth_free(). Never NULL.
 */
hb_table_t *hb_table_synth(const char *db, const char *table, uint32_t ncols,
                           const char *const *names, uint32_t npk,
                           const uint32_t *pk);

void hb_table_synth_free(hb_table_t *t);

#endif
