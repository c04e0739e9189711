/*
 * hb_json.h - the JSON change format (docs/change-format.md): one line per
 * row change, one per schema change.
 *
 * Rendering is separate from decoding: the decoder hands out windows of
 * typed values (hb.h), and these functions append their JSON lines to a
 * buffer. They allocate nothing once the buffer has grown to its working
 * size.
 */
#ifndef HB_JSON_H
#define HB_JSON_H

#include "hb.h"
#include "hb_buf.h"

/**
 * @brief Append one line per row change of w, each ending in '\n'.
 *        A window without row changes appends nothing.
 * @locality any thread
 */
void hb_render_window(const hb_window_t *w, hb_buf_t *out);

/**
 * @brief As hb_render_window, with the window's statements (w->ddl) that
 *        want() accepts (all when want is NULL) as "op":"ddl" lines
 *        where they stand among the row changes.
 */
void hb_render_window_ddl(const hb_window_t *w,
                          int (*want)(void *ud, const hb_ddl_t *d), void *ud,
                          hb_buf_t *out);

/** @brief Append the line of a schema change ("op":"ddl"). */
void hb_render_ddl(const hb_ddl_t *d, hb_buf_t *out);

/**
 * @brief Append one value as JSON (what appears after "column": in the
 *        row objects). HB_V_ABSENT appends nothing.
 */
void hb_render_value(const hb_value_t *v, hb_buf_t *out);

/** @brief Append s (n bytes, UTF-8) as a JSON string, quotes included;
 *         invalid UTF-8 is replaced by U+FFFD. */
void hb_render_string(const char *s, size_t n, hb_buf_t *out);

#endif
