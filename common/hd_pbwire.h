/*
 * hd_pbwire.h - the few protobuf wire-format primitives herald writes and
 * reads by hand: varints and field tags.
 *
 * The relay composes windows, batches and frames from bytes it already has
 * (a filtered window is the same header followed by a subset of the same
 * row fields) instead of re-encoding them through protobuf-c; these are
 * the pieces that needs. Everything else goes through protobuf-c.
 */
#ifndef HD_PBWIRE_H
#define HD_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

/* Wire types. */
enum { HD_PB_VARINT = 0, HD_PB_I64 = 1, HD_PB_LEN = 2, HD_PB_I32 = 5 };

/* The tag of field number n with wire type wt. */
#define HD_PB_TAG(n, wt) (((uint32_t)(n) << 3) | (uint32_t)(wt))

/** @brief Bytes of v as a varint (1-10). */
static inline size_t hd_pb_varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/** @brief Writes v as a varint at out (room for 10 bytes); its length. */
static inline size_t hd_pb_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

/**
 * @brief Reads a varint at *p, not past end; advances *p.
 * @returns 0, or -1 when it runs past end or over 10 bytes.
 */
static inline int hd_pb_read_varint(const uint8_t **p, const uint8_t *end,
                                    uint64_t *v) {
  uint64_t r = 0;
  for (int sh = 0; sh < 64 && *p < end; sh += 7) {
    uint8_t c = *(*p)++;
    r |= (uint64_t)(c & 0x7f) << sh;
    if (!(c & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

#endif
