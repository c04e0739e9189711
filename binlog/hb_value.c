/*
 * hb_value.c - the value codecs: one column value of a row image to an
 * hb_value_t.
 *
 * Formats follow what the server itself prints (SELECT output), from the
 * storage formats in MySQL's strings/decimal.cc and mysys/my_time.cc and
 * MariaDB's sql/compat56.cc. Text results (decimals, temporals, converted
 * strings) are written into the decoder's arena; strings that need no
 * conversion point straight into the copy of the rows event that lives in
 * the arena too.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hb_int.h"

/* ---- DECIMAL ----
 * Nine decimal digits per 4-byte big-endian word; a partial group of
 * leading integer digits or trailing fraction digits takes the bytes
 * below. The sign is the top bit of the first byte, flipped (set means
 * positive), and negative numbers have every byte inverted. */
static const uint8_t dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
static const uint32_t pow10_32[10] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};

size_t hb__decimal_size(unsigned prec, unsigned scale) {
  unsigned intg = prec - scale;
  return (intg / 9) * 4 + dig2bytes[intg % 9] + (scale / 9) * 4 +
         dig2bytes[scale % 9];
}

/* Read n (1-4) bytes big-endian, each XORed with mask. */
/* A group of digits: n bytes big-endian, undoing the sign flip of the
 * first byte and the inversion of negative numbers. */
static uint32_t dec_word(const uint8_t *p, unsigned n, uint8_t mask,
                         int first) {
  uint32_t v = 0;
  for (unsigned i = 0; i < n; i++) {
    uint8_t b = (uint8_t)(p[i] ^ mask);
    if (first && i == 0)
      b ^= 0x80;
    v = v << 8 | b;
  }
  return v;
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* Write v as exactly w digits (zero-padded), two at a time: temporals and
 * decimals are made of these. */
static char *put_digits(char *o, uint32_t v, unsigned w) {
  unsigned i = w;
  while (i >= 2) {
    unsigned d = (v % 100) * 2;
    v /= 100;
    o[i - 1] = digit_pairs[d + 1];
    o[i - 2] = digit_pairs[d];
    i -= 2;
  }
  if (i)
    o[0] = (char)('0' + v % 10);
  return o + w;
}

/* Binary DECIMAL(prec,scale) at p (hb__decimal_size() bytes) to text with
 * exactly scale fraction digits; -1 if a group holds more than its digits
 * allow. prec <= 65 and scale <= prec, as the callers check; out needs
 * prec + 3 bytes. */
int hb__decimal_text(const uint8_t *p, unsigned prec, unsigned scale, char *out,
                     size_t *outlen) {
  unsigned intg = prec - scale;
  unsigned intg0 = intg / 9, intg0x = intg % 9;
  unsigned frac0 = scale / 9, frac0x = scale % 9;
  uint8_t mask = (p[0] & 0x80) ? 0 : 0xff;
  int first = 1;
  /* Integer digits go to a buffer first so leading zeros can be dropped:
   * the binary form always carries the full precision. */
  char digits[80], *d = digits;
  if (intg0x) {
    unsigned n = dig2bytes[intg0x];
    uint32_t w = dec_word(p, n, mask, first);
    if (w >= pow10_32[intg0x])
      return -1;
    d = put_digits(d, w, intg0x);
    p += n;
    first = 0;
  }
  for (unsigned i = 0; i < intg0; i++) {
    uint32_t w = dec_word(p, 4, mask, first);
    if (w >= 1000000000u)
      return -1;
    d = put_digits(d, w, 9);
    p += 4;
    first = 0;
  }
  char *o = out;
  const char *s = digits;
  while (s < d - 1 && *s == '0')
    s++;
  int nonzero = 0;
  for (const char *t = s; t < d; t++)
    nonzero |= *t != '0';
  /* Up to 65 fraction digits: the callers (table map, JSON) allow a
   * scale up to the precision, 65 at most, though servers stop at 38 or
   * 30 (fuzz_binlog overran a 40-digit buffer with a scale of 41). */
  char frac[80], *f = frac;
  for (unsigned i = 0; i < frac0; i++) {
    uint32_t w = dec_word(p, 4, mask, first);
    if (w >= 1000000000u)
      return -1;
    f = put_digits(f, w, 9);
    p += 4;
    first = 0;
  }
  if (frac0x) {
    unsigned n = dig2bytes[frac0x];
    uint32_t w = dec_word(p, n, mask, first);
    if (w >= pow10_32[frac0x])
      return -1;
    f = put_digits(f, w, frac0x);
  }
  for (const char *t = frac; t < f; t++)
    nonzero |= *t != '0';
  /* A negative zero cannot be written by a server; print it as 0. */
  if (mask && nonzero)
    *o++ = '-';
  if (d == digits) {
    *o++ = '0';
  } else {
    memcpy(o, s, (size_t)(d - s));
    o += d - s;
  }
  if (scale) {
    *o++ = '.';
    memcpy(o, frac, (size_t)(f - frac));
    o += f - frac;
  }
  *outlen = (size_t)(o - out);
  return 0;
}

/* ---- floating point ---- */

/* Shortest digits that read back to the same value. Writes the digits
 * without a point to digs and returns their count; *decpt is the position
 * of the decimal point (value = 0.DIGS * 10^decpt).
 *
 * Any decimal of at most 15 significant digits (6 for FLOAT) that a normal
 * double (float) is nearest to comes back out of %.15e (%.5e) unchanged,
 * with zeros after it: the value is within half an ulp of it, far less
 * than half a step of that decimal grid. So one try at 15 (6) digits finds
 * every short value, and otherwise the answer has 16 or 17 (7 to 9)
 * digits. Subnormals have fewer significant bits, so they are searched
 * from 1 digit up. This saves a dozen printf/strtod pairs per value on
 * the doubles a workload is made of. */
static int try_digits(double d, int is_float, int prec, char *digs,
                      int *decpt) {
  char buf[40];
  snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
  int ok =
      is_float ? (float)strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d;
  if (!ok)
    return 0;
  /* buf: [-]D[.DDD]e[+-]XX */
  const char *s = buf;
  if (*s == '-')
    s++;
  int n = 0;
  for (; *s && *s != 'e'; s++)
    if (*s != '.')
      digs[n++] = *s;
  int e = atoi(s + 1);
  while (n > 1 && digs[n - 1] == '0')
    n--;
  *decpt = e + 1;
  return n;
}

/* Rounds the n-digit decimal full[] (exponent e) to prec digits into out
 * and checks that it reads back to d. Returns the trimmed digit count, 0
 * if it does not read back, or -1 if the dropped digits are exactly a half
 * (rounding a rounded value twice may then differ from rounding d once:
 * the caller asks printf instead). */
static int round_try(double d, int is_float, const char *full, int n, int e,
                     int prec, char *out, int *decpt) {
  int tail = 0, half = full[prec] == '5';
  for (int i = prec + 1; i < n; i++)
    half &= full[i] == '0';
  if (half)
    return -1;
  memcpy(out, full, (size_t)prec);
  if (full[prec] >= '5') {
    int i = prec - 1;
    while (i >= 0 && out[i] == '9')
      out[i--] = '0';
    if (i >= 0) {
      out[i]++;
    } else { /* 999.. -> 1000.. */
      memmove(out + 1, out, (size_t)prec - 1);
      out[0] = '1';
      e++;
    }
  }
  char buf[40], *b = buf;
  if (d < 0)
    *b++ = '-';
  *b++ = out[0];
  *b++ = '.';
  memcpy(b, out + 1, (size_t)prec - 1);
  b += prec - 1;
  /* The exponent by hand: a printf here would cost as much as the
   * digits did. */
  *b++ = 'e';
  unsigned ae = e < 0 ? (unsigned)-e : (unsigned)e;
  if (e < 0)
    *b++ = '-';
  if (ae >= 100)
    *b++ = (char)('0' + ae / 100);
  if (ae >= 10)
    *b++ = (char)('0' + ae / 10 % 10);
  *b++ = (char)('0' + ae % 10);
  *b = '\0';
  int ok =
      is_float ? (float)strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d;
  if (!ok)
    return 0;
  tail = prec;
  while (tail > 1 && out[tail - 1] == '0')
    tail--;
  *decpt = e + 1;
  return tail;
}

/* The usual range without printf or strtod: for 2^-18 <= x < 2^53 (a
 * FLOAT's range likewise) the candidates are rounded and checked with
 * 128-bit integers. x = m * 2^-sh exactly; the k-digit candidate is
 * N = round(m * 10^s / 2^sh) (ties to even, as printf rounds), and it reads
 * back to x when N * 10^-s lies inside x's rounding interval, the midpoints
 * to its neighbours (included when m is even, as strtod rounds ties to
 * even; the one below is half as far when m is a power of two). Returns
 * the digit count, or 0 when x is outside the range (the caller uses
 * printf/strtod then). */
static int shortest_exact(double d, int is_float, char *digs, int *decpt) {
  typedef unsigned __int128 u128;
  const uint64_t *p10 = hb__pow10;
  uint64_t m;
  int q, ex, mbits;
  if (is_float) {
    float f = (float)d;
    uint32_t b;
    memcpy(&b, &f, 4);
    ex = (int)((b >> 23) & 0xff);
    m = (b & 0x7fffffu) | 0x800000u;
    q = ex - 150;
    mbits = 23;
    if (ex == 0 || ex == 255)
      return 0;
  } else {
    uint64_t b;
    memcpy(&b, &d, 8);
    ex = (int)((b >> 52) & 0x7ff);
    m = (b & ((1ull << 52) - 1)) | (1ull << 52);
    q = ex - 1075;
    mbits = 52;
    if (ex == 0 || ex == 2047)
      return 0;
  }
  if (q > 0 || q < -68)
    return 0;
  unsigned sh = (unsigned)-q;
  int boundary = m == (1ull << mbits) && ex > 1;
  /* The decimal exponent E0 with 10^E0 <= x < 10^(E0+1), exactly:
   * log10() is only an estimate (it says 7 for the double just below
   * 1e7), so it is corrected by comparing m with 10^E * 2^sh. */
  int E0 = (int)floor(log10(fabs(d)));
#define GE_POW10(E)                                                            \
  ((E) >= 0 ? (u128)m >= ((u128)p10[(E)] << sh)                                \
            : ((u128)m * p10[-(E)]) >= ((u128)1 << sh))
  if (E0 < -7 || E0 > 17)
    return 0;
  while (E0 > -7 && !GE_POW10(E0))
    E0--;
  while (E0 < 16 && GE_POW10(E0 + 1))
    E0++;
#undef GE_POW10
  int kmin = is_float ? 6 : 15, kmax = is_float ? 9 : 17;
  for (int k = kmin; k <= kmax; k++) {
    int E = E0, s = k - 1 - E0;
    if (s < 0 || s > 21)
      return 0;
    u128 p10s = s <= 19 ? (u128)p10[s] : (u128)p10[19] * (s == 20 ? 10 : 100);
    u128 X = (u128)m * p10s;
    u128 n0 = sh ? X >> sh : X;
    u128 r = sh ? X & ((((u128)1) << sh) - 1) : 0;
    u128 half = sh ? ((u128)1) << (sh - 1) : 0;
    if (sh && (r > half || (r == half && (n0 & 1))))
      n0++;
    /* x * 10^s lies in [10^(k-1), 10^k); rounding may carry to 10^k,
     * which is 1 followed by k-1 zeros one decade up. */
    uint64_t N = (uint64_t)n0;
    if (n0 >= p10[k]) {
      N = p10[k - 1];
      E = E0 + 1;
    }
    /* Scaled by 10^s * 2^(sh+2): the candidate (n0, in the scale of s
     * also when it carried), x, and the interval around x. */
    u128 v = n0 << (sh + 2), x4 = X << 2;
    u128 hi = x4 + 2 * p10s, lo = x4 - (boundary ? p10s : 2 * p10s);
    int even = (m & 1) == 0;
    int ok = k == kmax || (v > lo && v < hi) || (even && (v == lo || v == hi));
    if (!ok)
      continue;
    /* The digits of N, then no trailing zeros. */
    for (int i = k - 1; i >= 0; i--) {
      digs[i] = (char)('0' + N % 10);
      N /= 10;
    }
    int n = k;
    while (n > 1 && digs[n - 1] == '0')
      n--;
    *decpt = E + 1;
    return n;
  }
  return 0;
}

static int shortest_digits(double d, int is_float, char *digs, int *decpt) {
  int maxp = is_float ? 9 : 17, n;
  int subnormal = is_float ? fabs(d) < FLT_MIN : fabs(d) < DBL_MIN;
  if (subnormal) {
    for (int prec = 1; prec < maxp; prec++)
      if ((n = try_digits(d, is_float, prec, digs, decpt)) > 0)
        return n;
    return try_digits(d, is_float, maxp, digs, decpt);
  }
  if ((n = shortest_exact(d, is_float, digs, decpt)) > 0)
    return n;
  /* One printf of all maxp digits (always enough); the 15 and 16 (6 to 8)
   * digit candidates are rounded from it and only checked by strtod. */
  char buf[40], full[24];
  snprintf(buf, sizeof(buf), "%.*e", maxp - 1, fabs(d));
  int k = 0;
  const char *s = buf;
  for (; *s && *s != 'e'; s++)
    if (*s != '.')
      full[k++] = *s;
  int e = atoi(s + 1);
  for (int prec = is_float ? 6 : 15; prec < maxp; prec++) {
    n = round_try(d, is_float, full, k, e, prec, digs, decpt);
    if (n < 0)
      n = try_digits(d, is_float, prec, digs, decpt);
    if (n > 0)
      return n;
  }
  memcpy(digs, full, (size_t)k);
  while (k > 1 && digs[k - 1] == '0')
    k--;
  *decpt = e + 1;
  return k;
}

/* Lay out digits the way MySQL's my_gcvt() does for its widest field
 * (34): plain notation unless the exponent is far out, then N.NNNeX. */
static size_t layout_digits(const char *digs, int len, int decpt, int neg,
                            char *out) {
  int width = 34 - neg;
  int need = decpt <= 0 ? len - decpt + 2 : (decpt < len ? len + 1 : decpt);
  char *o = out;
  if (neg)
    *o++ = '-';
  if (need <= width && decpt >= -14 && (decpt <= 15 || len > decpt)) {
    if (decpt <= 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = decpt; i < 0; i++)
        *o++ = '0';
      memcpy(o, digs, (size_t)len);
      o += len;
    } else {
      for (int i = 0; i < len; i++) {
        *o++ = digs[i];
        if (i + 1 == decpt && i + 1 < len)
          *o++ = '.';
      }
      for (int i = len; i < decpt; i++)
        *o++ = '0';
    }
  } else {
    int e = decpt - 1;
    *o++ = digs[0];
    if (len > 1) {
      *o++ = '.';
      memcpy(o, digs + 1, (size_t)(len - 1));
      o += len - 1;
    }
    o += sprintf(o, "e%d", e);
  }
  return (size_t)(o - out);
}

/* MySQL's own layout of a double (my_gcvt), for JSON documents. */
static size_t fmt_mysql(double d, char *out) {
  int neg = signbit(d) != 0;
  double a = fabs(d);
  if (a == 0) {
    memcpy(out, neg ? "-0" : "0", neg ? 2 : 1);
    return neg ? 2 : 1;
  }
  /* Integers below 2^53 need no search: their digits are exact. */
  if (a < 9007199254740992.0 && a == floor(a)) {
    char digs[24];
    int n = snprintf(digs, sizeof(digs), "%.0f", a);
    int len = n;
    while (len > 1 && digs[len - 1] == '0')
      len--;
    return layout_digits(digs, len, n, neg, out);
  }
  char digs[24];
  int decpt;
  int len = shortest_digits(a, 0, digs, &decpt);
  return layout_digits(digs, len, decpt, neg, out);
}

/* Column values: the fewest significant digits that read back to the same
 * FLOAT/DOUBLE (tried from 1 up with strtof/strtod), printed by %g with
 * enough precision that numbers below 10^17 are never in exponent form
 * (100, not 1e+02). out needs 48 bytes; finite values only. */
size_t hb__fmt_double(double d, int is_float, char *out) {
  double a = fabs(d);
  /* Integral values below 10^17 print exactly with %.0f, which is what
   * the search below would end with; skipping it is the common fast path. */
  if (a < 1e17 && a == floor(a))
    return (size_t)snprintf(out, 48, "%.0f", d);
  char digs[24];
  int decpt;
  int p = shortest_digits(a, is_float, digs, &decpt);
  int e = decpt - 1; /* exponent of the first digit */
  int prec = e >= 0 && e < 17 && e + 1 > p ? e + 1 : p;
  /* What %.*g with that precision prints, laid out from the digits
   * without another printf: fixed notation for -4 <= e < prec, else
   * D.DDDe+XX with at least two exponent digits. */
  char *o = out;
  if (signbit(d))
    *o++ = '-';
  if (e < -4 || e >= prec) {
    *o++ = digs[0];
    if (p > 1) {
      *o++ = '.';
      memcpy(o, digs + 1, (size_t)p - 1);
      o += p - 1;
    }
    *o++ = 'e';
    *o++ = e < 0 ? '-' : '+';
    int ae = e < 0 ? -e : e;
    if (ae >= 100)
      *o++ = (char)('0' + ae / 100);
    *o++ = (char)('0' + ae / 10 % 10);
    *o++ = (char)('0' + ae % 10);
  } else if (e < 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = e + 1; i < 0; i++)
      *o++ = '0';
    memcpy(o, digs, (size_t)p);
    o += p;
  } else {
    for (int i = 0; i <= e; i++)
      *o++ = i < p ? digs[i] : '0';
    if (p > e + 1) {
      *o++ = '.';
      memcpy(o, digs + e + 1, (size_t)(p - e - 1));
      o += p - e - 1;
    }
  }
  return (size_t)(o - out);
}

/* As JSON documents print doubles: MySQL adds ".0" to integral values so
 * they stay distinguishable from integers. */
size_t hb__fmt_double_mysql(double d, char *out) {
  size_t n = fmt_mysql(d, out);
  if (memchr(out, '.', n) == NULL && memchr(out, 'e', n) == NULL) {
    memcpy(out + n, ".0", 2);
    n += 2;
  }
  return n;
}

/* ---- temporals ---- */

static char *put_year(char *o, unsigned y) {
  if (y >= 10000)
    return o + sprintf(o, "%u", y);
  return put_digits(o, y, 4);
}

static char *put_date(char *o, unsigned y, unsigned m, unsigned d) {
  o = put_year(o, y);
  *o++ = '-';
  o = put_digits(o, m, 2);
  *o++ = '-';
  return put_digits(o, d, 2);
}

static char *put_hms(char *o, unsigned h, unsigned mi, unsigned s) {
  if (h >= 100)
    o += sprintf(o, "%u", h);
  else
    o = put_digits(o, h, 2);
  *o++ = ':';
  o = put_digits(o, mi, 2);
  *o++ = ':';
  return put_digits(o, s, 2);
}

/* ".ffffff" cut to fsp digits (microseconds in usec). */
static char *put_frac(char *o, uint32_t usec, unsigned fsp) {
  if (fsp == 0)
    return o;
  *o++ = '.';
  return put_digits(o, usec / pow10_32[6 - fsp], fsp);
}

/* Fraction bytes of TIMESTAMP2/DATETIME2 as microseconds. */
static uint32_t frac_usec(const uint8_t *p, unsigned fsp) {
  switch ((fsp + 1) / 2) {
  case 1:
    return (uint32_t)p[0] * 10000;
  case 2:
    return (uint32_t)hb__be(p, 2) * 100;
  case 3:
    return (uint32_t)hb__be(p, 3);
  default:
    return 0;
  }
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). Used for
 * TIMESTAMP so the result never depends on the process's time zone. */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = (int64_t)yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (unsigned)(yy + (*m <= 2));
}

/* TIMESTAMP seconds to "YYYY-MM-DD HH:MM:SS" in UTC; 0 is the zero
 * timestamp, which the server shows as all zeros. */
static char *put_epoch(char *o, uint32_t secs) {
  unsigned y, m, d;
  if (secs == 0)
    return memcpy(o, "0000-00-00 00:00:00", 19), o + 19;
  civil_from_days(secs / 86400, &y, &m, &d);
  uint32_t t = secs % 86400;
  o = put_date(o, y, m, d);
  *o++ = ' ';
  return put_hms(o, t / 3600, t / 60 % 60, t % 60);
}

/* Packed datetime/time (my_time.h's "packed" form, also used by JSON
 * opaque values): int part << 24 | microseconds. kind: 0 datetime, 1 date,
 * 2 time. Writes all 6 fraction digits, as JSON does. */
size_t hb__fmt_datetime_packed(int64_t packed, int kind, char *out) {
  char *o = out;
  uint64_t a;
  if (packed < 0) {
    *o++ = '-';
    a = (uint64_t)0 - (uint64_t)packed;
  } else {
    a = (uint64_t)packed;
  }
  uint32_t usec = (uint32_t)(a % (1u << 24));
  uint64_t ip = a >> 24;
  if (usec > 999999)
    usec = 999999; /* corrupt; keep the output well-formed */
  if (kind == 2) {
    unsigned hms = (unsigned)(ip & 0xffffff);
    o = put_hms(o, (hms >> 12) % 1024, (hms >> 6) % 64, hms % 64);
    return (size_t)(put_frac(o, usec, 6) - out);
  }
  uint64_t ymd = ip >> 17, hms = ip % (1 << 17);
  uint64_t ym = ymd >> 5;
  o = put_date(o, (unsigned)(ym / 13 % 100000), (unsigned)(ym % 13),
               (unsigned)(ymd % 32));
  if (kind == 1)
    return (size_t)(o - out);
  *o++ = ' ';
  o = put_hms(o, (unsigned)(hms >> 12), (unsigned)((hms >> 6) % 64),
              (unsigned)(hms % 64));
  return (size_t)(put_frac(o, usec, 6) - out);
}

/* TIME2: 3 bytes big-endian (offset 0x800000) + fraction bytes. Negative
 * values with a fraction store "int part + 1" and a complemented fraction,
 * so the carry is undone before splitting into fields. */
static char *put_time2(char *o, const uint8_t *p, unsigned fsp) {
  int64_t intpart = (int64_t)hb__be(p, 3) - 0x800000;
  int64_t packed;
  switch ((fsp + 1) / 2) {
  case 1: {
    int64_t frac = p[3];
    if (intpart < 0 && frac) {
      intpart++;
      frac -= 0x100;
    }
    packed = intpart * (1 << 24) + frac * 10000;
    break;
  }
  case 2: {
    int64_t frac = (int64_t)hb__be(p + 3, 2);
    if (intpart < 0 && frac) {
      intpart++;
      frac -= 0x10000;
    }
    packed = intpart * (1 << 24) + frac * 100;
    break;
  }
  case 3:
    packed = (int64_t)hb__be(p, 6) - 0x800000000000LL;
    break;
  default:
    packed = intpart * (1 << 24);
    break;
  }
  uint64_t a = packed < 0 ? (uint64_t)0 - (uint64_t)packed : (uint64_t)packed;
  if (packed < 0)
    *o++ = '-';
  unsigned hms = (unsigned)((a >> 24) & 0xffffff);
  uint32_t usec = (uint32_t)(a % (1u << 24));
  if (usec > 999999)
    usec = 999999;
  o = put_hms(o, (hms >> 12) % 1024, (hms >> 6) % 64, hms % 64);
  return put_frac(o, usec, fsp);
}

/* ---- one value ---- */

/* Give a formatted value its own copy in the arena: the caller's buffer
 * is on the stack. */
static int text_value(hb_decoder_t *dec, const hb__col_t *x, hb_value_t *v,
                      const char *s, size_t n, uint8_t kind) {
  char *o = hb__arena_alloc(&dec->arena, n);
  memcpy(o, s, n);
  v->kind = kind;
  v->s = o;
  v->len = (uint32_t)n;
  (void)x;
  return 0;
}

/* Length-prefixed value: prefix of x->size bytes (1-4). */
static int prefixed(const hb__col_t *x, const uint8_t *p, const uint8_t *end,
                    const uint8_t **data, size_t *n) {
  unsigned pb = x->size;
  if ((size_t)(end - p) < pb)
    return -1;
  uint64_t len = hb__le(p, pb);
  if (len > (uint64_t)(end - p) - pb)
    return -1;
  *data = p + pb;
  *n = (size_t)len;
  return 0;
}

/* One non-NULL value at p (end bounds it): its size from the column's
 * metadata, or from a length prefix that is checked against end. */
int hb__decode_value(hb_decoder_t *dec, const hb_column_t *col,
                     const hb__col_t *x, const uint8_t *p, const uint8_t *end,
                     hb_value_t *v, size_t *used, const char **why) {
  size_t avail = (size_t)(end - p);
  char tmp[96], *o = tmp;
  v->s = NULL;
  v->len = 0;
  switch (x->dk) {
  case HB_DK_NULL:
    v->kind = HB_V_NULL;
    *used = 0;
    return 0;
  case HB_DK_INT: {
    unsigned n = x->size;
    if (avail < n)
      goto short_;
    uint64_t u = hb__le(p, n);
    *used = n;
    if (col->is_unsigned) {
      v->kind = HB_V_UINT;
      v->n.u = u;
    } else {
      /* Sign-extend from n bytes without shifting negative values. */
      uint64_t sign = (uint64_t)1 << (n * 8 - 1);
      v->kind = HB_V_INT;
      v->n.i = n == 8 ? (int64_t)u : (int64_t)(u ^ sign) - (int64_t)sign;
    }
    return 0;
  }
  case HB_DK_FLOAT: {
    if (avail < 4)
      goto short_;
    float f;
    memcpy(&f, p, 4); /* x86-64 and the binlog are both little-endian */
    if (!isfinite(f)) {
      *why = "FLOAT value is not finite";
      return -1;
    }
    v->kind = HB_V_FLOAT;
    v->n.f = f;
    *used = 4;
    return 0;
  }
  case HB_DK_DOUBLE: {
    if (avail < 8)
      goto short_;
    double d;
    memcpy(&d, p, 8);
    if (!isfinite(d)) {
      *why = "DOUBLE value is not finite";
      return -1;
    }
    v->kind = HB_V_DOUBLE;
    v->n.d = d;
    *used = 8;
    return 0;
  }
  case HB_DK_DECIMAL: {
    size_t n = hb__decimal_size(x->prec, x->scale), len;
    if (avail < n)
      goto short_;
    if (hb__decimal_text(p, x->prec, x->scale, tmp, &len) < 0) {
      *why = "invalid DECIMAL digits";
      return -1;
    }
    *used = n;
    return text_value(dec, x, v, tmp, len, HB_V_DECIMAL);
  }
  case HB_DK_YEAR:
    if (avail < 1)
      goto short_;
    v->kind = HB_V_INT;
    v->n.i = p[0] ? 1900 + p[0] : 0;
    *used = 1;
    return 0;
  case HB_DK_DATE: {
    if (avail < 3)
      goto short_;
    uint32_t d = hb__u24(p);
    o = put_date(o, d >> 9, (d >> 5) & 15, d & 31);
    *used = 3;
    return text_value(dec, x, v, tmp, (size_t)(o - tmp), HB_V_DATE);
  }
  case HB_DK_TIME: {
    if (avail < 3)
      goto short_;
    /* Old TIME: signed 3-byte integer HHMMSS. */
    int32_t t = (int32_t)(hb__u24(p) ^ 0x800000) - 0x800000;
    uint32_t a = t < 0 ? (uint32_t)-t : (uint32_t)t;
    if (t < 0)
      *o++ = '-';
    o = put_hms(o, a / 10000, a / 100 % 100, a % 100);
    *used = 3;
    return text_value(dec, x, v, tmp, (size_t)(o - tmp), HB_V_TIME);
  }
  case HB_DK_TIME2: {
    size_t n = 3 + (x->fsp + 1) / 2;
    if (avail < n)
      goto short_;
    o = put_time2(o, p, x->fsp);
    *used = n;
    return text_value(dec, x, v, tmp, (size_t)(o - tmp), HB_V_TIME);
  }
  case HB_DK_DATETIME: {
    if (avail < 8)
      goto short_;
    /* Old DATETIME: YYYYMMDDhhmmss as a little-endian integer. */
    uint64_t dt = hb__u64(p);
    uint64_t d = dt / 1000000, t = dt % 1000000;
    o = put_date(o, (unsigned)(d / 10000 % 100000), (unsigned)(d / 100 % 100),
                 (unsigned)(d % 100));
    *o++ = ' ';
    o = put_hms(o, (unsigned)(t / 10000), (unsigned)(t / 100 % 100),
                (unsigned)(t % 100));
    *used = 8;
    return text_value(dec, x, v, tmp, (size_t)(o - tmp), HB_V_DATETIME);
  }
  case HB_DK_DATETIME2: {
    size_t n = 5 + (x->fsp + 1) / 2;
    if (avail < n)
      goto short_;
    int64_t ip = (int64_t)hb__be(p, 5) - 0x8000000000LL;
    if (ip < 0) {
      *why = "negative DATETIME2 value";
      return -1;
    }
    uint64_t ymd = (uint64_t)ip >> 17, hms = (uint64_t)ip & 0x1ffff;
    uint64_t ym = ymd >> 5;
    o = put_date(o, (unsigned)(ym / 13), (unsigned)(ym % 13),
                 (unsigned)(ymd & 31));
    *o++ = ' ';
    o = put_hms(o, (unsigned)(hms >> 12), (unsigned)((hms >> 6) & 63),
                (unsigned)(hms & 63));
    uint32_t us = frac_usec(p + 5, x->fsp);
    if (us > 999999) {
      *why = "DATETIME2 fraction above 999999";
      return -1;
    }
    o = put_frac(o, us, x->fsp);
    *used = n;
    return text_value(dec, x, v, tmp, (size_t)(o - tmp), HB_V_DATETIME);
  }
  case HB_DK_TIMESTAMP:
    if (avail < 4)
      goto short_;
    o = put_epoch(o, hb__u32(p));
    *used = 4;
    return text_value(dec, x, v, tmp, (size_t)(o - tmp), HB_V_TIMESTAMP);
  case HB_DK_TIMESTAMP2: {
    size_t n = 4 + (x->fsp + 1) / 2;
    if (avail < n)
      goto short_;
    o = put_epoch(o, (uint32_t)hb__be(p, 4));
    uint32_t us = frac_usec(p + 4, x->fsp);
    if (us > 999999) {
      *why = "TIMESTAMP2 fraction above 999999";
      return -1;
    }
    o = put_frac(o, us, x->fsp);
    *used = n;
    return text_value(dec, x, v, tmp, (size_t)(o - tmp), HB_V_TIMESTAMP);
  }
  case HB_DK_BIT:
    if (avail < x->size)
      goto short_;
    v->kind = HB_V_UINT;
    v->n.u = hb__be(p, x->size);
    *used = x->size;
    return 0;
  case HB_DK_ENUM: {
    if (avail < x->size)
      goto short_;
    uint64_t idx = hb__le(p, x->size);
    *used = x->size;
    v->kind = HB_V_ENUM;
    v->n.u = idx;
    if (col->nlabels && idx <= col->nlabels) {
      /* 0 is the "invalid value" index, which MySQL shows as ''. */
      v->s = idx ? col->labels[idx - 1] : "";
      v->len = (uint32_t)strlen(v->s);
    }
    return 0;
  }
  case HB_DK_SET: {
    if (avail < x->size)
      goto short_;
    uint64_t bits = hb__le(p, x->size);
    *used = x->size;
    v->kind = HB_V_SET;
    v->n.u = bits;
    if (col->nlabels == 0 || (col->nlabels < 64 && (bits >> col->nlabels) != 0))
      return 0; /* labels unknown, or bits without a label: numeric */
    size_t total = 0;
    for (uint32_t i = 0; i < col->nlabels; i++)
      if (bits >> i & 1)
        total += strlen(col->labels[i]) + 1;
    char *s = hb__arena_alloc(&dec->arena, total + 1), *q = s;
    for (uint32_t i = 0; i < col->nlabels; i++) {
      if (!(bits >> i & 1))
        continue;
      if (q != s)
        *q++ = ',';
      size_t l = strlen(col->labels[i]);
      memcpy(q, col->labels[i], l);
      q += l;
    }
    v->s = s;
    v->len = (uint32_t)(q - s);
    return 0;
  }
  case HB_DK_TEXT:
  case HB_DK_BYTES:
  case HB_DK_JSON: {
    const uint8_t *data;
    size_t n;
    if (prefixed(x, p, end, &data, &n) < 0)
      goto short_;
    if (n > UINT32_MAX) {
      *why = "value longer than 4 GiB";
      return -1;
    }
    *used = x->size + n;
    if (x->dk == HB_DK_BYTES) {
      v->kind = HB_V_BYTES;
      v->s = (const char *)data;
      v->len = (uint32_t)n;
      return 0;
    }
    if (x->dk == HB_DK_TEXT)
      return hb__text_to_utf8(dec, x, data, n, v);
    hb_buf_reset(&dec->scratch);
    if (n == 0) {
      /* An empty JSON value is what MySQL stores for JSON null. */
      hb_buf_lit(&dec->scratch, "null");
    } else if (hb__jsonb_to_text(data, n, &dec->scratch, why) < 0) {
      return -1;
    }
    if (dec->scratch.len > UINT32_MAX) {
      *why = "JSON text longer than 4 GiB";
      return -1;
    }
    return text_value(dec, x, v, dec->scratch.p, dec->scratch.len, HB_V_JSON);
  }
  default:
    *why = x->bad ? x->bad : "column type cannot be decoded";
    return -1;
  }
short_:
  *why = "value runs past the end of the event";
  return -1;
}
