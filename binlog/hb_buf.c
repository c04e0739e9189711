#include "hb_buf.h"
#include "hb_int.h"

#include <stdlib.h>

#include "hd_mem.h"

/* Capacities stay powers of two from 256 on, so every buffer can be read
 * up to its length rounded up to 16 (hb_buf_put_padded relies on it). */
void hb_buf_grow(hb_buf_t *b, size_t n) {
  size_t need = b->len + n;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  b->p = hd_realloc(b->p, cap);
  b->cap = cap;
}

/* Two digits at a time from a table: integers are most of what the
 * renderer writes, and this is several times faster than snprintf. */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* 10^0 .. 10^19, for digit counts and exact decimal scaling. */
const uint64_t hb__pow10[20] = {1ull,
                                10ull,
                                100ull,
                                1000ull,
                                10000ull,
                                100000ull,
                                1000000ull,
                                10000000ull,
                                100000000ull,
                                1000000000ull,
                                10000000000ull,
                                100000000000ull,
                                1000000000000ull,
                                10000000000000ull,
                                100000000000000ull,
                                1000000000000000ull,
                                10000000000000000ull,
                                100000000000000000ull,
                                1000000000000000000ull,
                                10000000000000000000ull};

void hb_buf_u64(hb_buf_t *b, uint64_t v) {
  /* Count the digits first and write them in place, back to front: no
   * temporary and no memcpy call for what is usually 1-13 bytes. */

  /* Digits from the bit length (log10(2) ~ 1233/4096), corrected by one
   * comparison. */
  unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
  unsigned n = (bits * 1233) >> 12;
  n += n < 20 && v >= hb__pow10[n];
  if (n == 0)
    n = 1;
  hb_buf_reserve(b, 20);
  char *p = b->p + b->len + n;
  b->len += n;
  while (v >= 100) {
    unsigned d = (unsigned)(v % 100) * 2;
    v /= 100;
    *--p = digit_pairs[d + 1];
    *--p = digit_pairs[d];
  }
  if (v >= 10) {
    unsigned d = (unsigned)v * 2;
    *--p = digit_pairs[d + 1];
    *--p = digit_pairs[d];
  } else {
    *--p = (char)('0' + v);
  }
}

void hb_buf_i64(hb_buf_t *b, int64_t v) {
  if (v < 0) {
    hb_buf_putc(b, '-');
    /* Negate in unsigned arithmetic: -INT64_MIN overflows int64_t. */
    hb_buf_u64(b, (uint64_t)0 - (uint64_t)v);
  } else {
    hb_buf_u64(b, (uint64_t)v);
  }
}

void hb_buf_free(hb_buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}
