/*
 * hd_partkey.c - the canonical key encoding, its hash, and the partition
 * functions.
 */
#include "hd_partkey.h"

#include <string.h>
#include <xxhash.h>

#include "hd_mem.h"

/* Little-endian, the low n bytes of u. */
static void put_le(uint8_t *out, uint64_t u, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = (uint8_t)(u >> (8 * i));
}

/* The canonical encoding of one key value: the Value's kind number as one
 * byte, then integers as 8 bytes little-endian, floats as their IEEE bits
 * little-endian (4 or 8 bytes), strings and bytes as a 4-byte
 * little-endian length and the bytes; NULL (and an unset or unknown kind)
 * has no value bytes. Written to out, or only measured when out is NULL:
 * a key is measured first so that its scratch grows once.
 * @returns its length */
static size_t canon_value(uint8_t *out, const Herald__Value *v) {
  int kind = v ? (int)v->kind_case : HERALD__VALUE__KIND__NOT_SET;
  uint64_t u = 0;
  size_t n = 0; /* bytes of u, or of p */
  const uint8_t *p = NULL;
  int counted = 0; /* p[0..n) with its length before it */
  switch (kind) {
  case HERALD__VALUE__KIND_INT:
    u = (uint64_t)v->int_;
    n = 8;
    break;
  case HERALD__VALUE__KIND_UINT:
    u = v->uint;
    n = 8;
    break;
  case HERALD__VALUE__KIND_DBL:
    memcpy(&u, &v->dbl, 8);
    n = 8;
    break;
  case HERALD__VALUE__KIND_FLT: {
    uint32_t f;
    memcpy(&f, &v->flt, 4);
    u = f;
    n = 4;
    break;
  }
  case HERALD__VALUE__KIND_STR:
  case HERALD__VALUE__KIND_BIN:
  case HERALD__VALUE__KIND_BADTEXT: {
    const ProtobufCBinaryData *d = kind == HERALD__VALUE__KIND_STR ? &v->str
                                   : kind == HERALD__VALUE__KIND_BIN
                                       ? &v->bin
                                       : &v->badtext;
    p = d->data;
    n = d->len;
    counted = 1;
    break;
  }
  case HERALD__VALUE__KIND_DECIMAL:
  case HERALD__VALUE__KIND_TEMPORAL:
  case HERALD__VALUE__KIND_JSON:
  case HERALD__VALUE__KIND_JSON_DIFF: {
    const char *s = kind == HERALD__VALUE__KIND_DECIMAL    ? v->decimal
                    : kind == HERALD__VALUE__KIND_TEMPORAL ? v->temporal
                    : kind == HERALD__VALUE__KIND_JSON     ? v->json
                                                           : v->json_diff;
    p = (const uint8_t *)(s ? s : "");
    n = strlen((const char *)p);
    counted = 1;
    break;
  }
  default:
    break; /* NULL or unset: the kind alone */
  }
  size_t len = 1 + (counted ? 4 : 0) + n;
  if (out == NULL)
    return len;
  *out++ = (uint8_t)kind;
  if (!counted) {
    put_le(out, u, n);
    return len;
  }
  put_le(out, n, 4);
  if (n)
    memcpy(out + 4, p, n);
  return len;
}

/* The caller's scratch, at least n bytes. */
static uint8_t *scratch(uint8_t **tmp, size_t *tmpcap, size_t n) {
  if (n > *tmpcap) {
    size_t cap = *tmpcap ? *tmpcap * 2 : 256;
    while (cap < n)
      cap *= 2;
    *tmp = hd_realloc(*tmp, cap);
    *tmpcap = cap;
  }
  return *tmp;
}

void hd_key_of(hd_key_t *k, Herald__Column *const *cols, size_t n,
               uint8_t **tmp, size_t *tmpcap) {
  memset(k, 0, sizeof(*k));
  k->has_pk = n > 0;
  if (n == 0)
    return;
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += canon_value(NULL, cols[i]->value);
  uint8_t *b = scratch(tmp, tmpcap, len);
  for (size_t i = 0, off = 0; i < n; i++)
    off += canon_value(b + off, cols[i]->value);
  k->hash = XXH64(b, len, 0);
  const Herald__Value *k0 = cols[0]->value;
  if (k0 && k0->kind_case == HERALD__VALUE__KIND_INT) {
    k->ikind = HD_IKEY_SIGNED;
    k->ival = (uint64_t)k0->int_;
  } else if (k0 && k0->kind_case == HERALD__VALUE__KIND_UINT) {
    k->ikind = HD_IKEY_UNSIGNED;
    k->ival = k0->uint;
  }
}

int hd_key_value_same(const Herald__Value *a, const Herald__Value *b,
                      uint8_t **tmp, size_t *tmpcap) {
  size_t la = canon_value(NULL, a);
  if (canon_value(NULL, b) != la)
    return 0;
  uint8_t *t = scratch(tmp, tmpcap, 2 * la);
  canon_value(t, a);
  canon_value(t + la, b);
  return memcmp(t, t + la, la) == 0;
}

uint32_t hd_partition_of(int fn, uint32_t n, const hd_key_t *k) {
  if (n == 0 || !k->has_pk)
    return 0;
  switch (fn) {
  case HERALD__PARTITION_FUNCTION__PART_HASH:
    return (uint32_t)(k->hash % n);
  case HERALD__PARTITION_FUNCTION__PART_MOD:
    if (k->ikind == HD_IKEY_UNSIGNED)
      return (uint32_t)(k->ival % n);
    if (k->ikind == HD_IKEY_SIGNED) {
      /* The non-negative residue, with no overflow at INT64_MIN. */
      int64_t r = (int64_t)k->ival % (int64_t)n;
      return (uint32_t)(r < 0 ? r + (int64_t)n : r);
    }
    return 0;
  default:
    return 0;
  }
}

int hd_key_in_range(const hd_key_t *k, int64_t lo, int64_t hi, int to_max) {
  if (k->has_pk && k->ikind == HD_IKEY_UNSIGNED &&
      k->ival > (uint64_t)INT64_MAX)
    return to_max; /* above every int64 bound */
  int64_t v = k->has_pk && k->ikind != HD_IKEY_NONE ? (int64_t)k->ival : 0;
  return v >= lo && (to_max || v < hi);
}
