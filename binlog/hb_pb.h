/*
 * hb_pb.h - the one conversion between the decoder's values (hb_value_t)
 * and the wire's (herald.Value): the relay encodes with it, and every
 * consumer that renders the change format (heraldctl tail, the client
 * library) decodes with it; and the renderer of windows received from a
 * relay, which needs nothing of the decoder but its public types.
 */
#ifndef HB_PB_H
#define HB_PB_H

#include <stddef.h>

#include "hb.h"
#include "hb_buf.h"
#include "herald.pb-c.h"

/** Returns a NUL-terminated copy of s[0..n) that lives as long as the
 *  Value (protobuf-c wants NUL-terminated strings; the decoder's are not). */
typedef char *(*hb_pb_copy_fn)(void *ud, const char *s, size_t n);

/**
 * @brief Fill pv (initialised here) from v. Text is copied with copy;
 *        bytes point into v. ENUM/SET with unknown labels travel as their
 *        index or bitmask (uint); DATE, TIME, DATETIME and TIMESTAMP as
 *        temporal text (the table's schema tells them apart).
 * @returns 1, or 0 when v is HB_V_ABSENT (not in this row image).
 */
int hb_value_to_pb(const hb_value_t *v, Herald__Value *pv, hb_pb_copy_fn copy,
                   void *ud);

/**
 * @brief The decoder's form of a received value, pointing into pv (valid
 *        while pv is). A temporal becomes HB_V_DATETIME (rendered the
 *        same); an unset Value HB_V_ABSENT.
 */
void hb_value_from_pb(const Herald__Value *pv, hb_value_t *v);

/* Renders windows as they arrive from a relay into the change format,
 * the same lines heraldctl decode prints for the same transactions. It
 * keeps tables built from the column names it has seen; one per stream. */
typedef struct hb_pbr hb_pbr_t;

hb_pbr_t *hb_pbr_new(void);
void hb_pbr_free(hb_pbr_t *r);

/**
 * @brief Append the lines of a window (or one chunk of it: row_base is the
 *        row changes of its earlier chunks) and, with ddl, of its
 *        statements that want() accepts (all when NULL) where they stand
 *        among them.
 * @returns the row changes rendered
 */
size_t hb_pbr_window(hb_pbr_t *r, const Herald__Window *pw, int ddl,
                     int (*want)(void *ud, const hb_ddl_t *d), void *ud,
                     uint64_t row_base, hb_buf_t *out);

/** @brief Append the schema line of a TableSchema ("op":"schema"). */
void hb_pbr_schema(const Herald__TableSchema *ts, hb_buf_t *out);

#endif
