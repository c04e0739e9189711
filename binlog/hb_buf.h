/*
 * hb_buf.h - a growable byte buffer, the output side of the JSON renderer.
 *
 * Appends are inline and unchecked against a reserve() done first, so the
 * hot paths of the renderer cost a memcpy and a length update. Growth
 * doubles, so a buffer that is reset and reused reaches a steady size and
 * stops allocating.
 */
#ifndef HB_BUF_H
#define HB_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  char *p;    /* owned; NULL until the first append */
  size_t len; /* bytes in use */
  size_t cap; /* bytes allocated */
} hb_buf_t;

/** @brief Make room for n more bytes (aborts on out-of-memory). */
void hb_buf_grow(hb_buf_t *b, size_t n);

static inline void hb_buf_reserve(hb_buf_t *b, size_t n) {
  if (b->cap - b->len < n)
    hb_buf_grow(b, n);
}

static inline void hb_buf_put(hb_buf_t *b, const void *p, size_t n) {
  hb_buf_reserve(b, n);
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

static inline void hb_buf_putc(hb_buf_t *b, char c) {
  hb_buf_reserve(b, 1);
  b->p[b->len++] = c;
}

#define hb_buf_lit(b, s) hb_buf_put((b), (s), sizeof(s) - 1)

/**
 * @brief Append n bytes from a source that stays readable up to n rounded
 *        up to 16 (a padded allocation): copies in 16-byte moves, which for
 *        short pieces beats a memcpy call.
 */
static inline void hb_buf_put_padded(hb_buf_t *b, const void *p, size_t n) {
  hb_buf_reserve(b, n + 16);
  char *o = b->p + b->len;
  const char *s = p;
  for (size_t i = 0; i < n; i += 16)
    memcpy(o + i, s + i, 16);
  b->len += n;
}

/** @brief Append the decimal digits of v. */
void hb_buf_u64(hb_buf_t *b, uint64_t v);
void hb_buf_i64(hb_buf_t *b, int64_t v);

/** @brief Forget the contents, keep the memory. */
static inline void hb_buf_reset(hb_buf_t *b) {
  b->len = 0;
}

/** @brief Release the memory; the buffer can be used again. */
void hb_buf_free(hb_buf_t *b);

#endif
