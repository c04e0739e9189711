/*
 * hb_charset.c - text columns to UTF-8.
 *
 * A column's collation id (from the table map's optional metadata, or the
 * schema provider) names its charset. utf8mb3/utf8mb4 and ascii are only
 * validated, MySQL's latin1 (which is Windows-1252, not ISO-8859-1) goes
 * through a table, binary stays bytes, and every other charset glibc knows
 * goes through iconv. The collation table below covers the ids MariaDB
 * 10.11 and MySQL 8 define (checked against information_schema.COLLATIONS
 * of MariaDB 10.11; MySQL 8 adds 76, 248-250 and 255-323).
 */
#include <errno.h>
#include <string.h>

#include "hb_int.h"
#include "hd_mem.h"

/* Charsets by index; the first five are handled without iconv. NULL
 * iconv names (keybcs2, geostd8) are charsets glibc lacks: such columns
 * are treated as of unknown charset. */
static const struct {
  const char *name;  /* MySQL's name, for the docs and messages */
  const char *iconv; /* glibc's name */
} charsets[] = {
    {"unknown", NULL},         {"utf8", NULL},
    {"latin1", NULL},          {"ascii", NULL},
    {"binary", NULL},          {"big5", "BIG5"},
    {"latin2", "ISO-8859-2"},  {"dec8", "DEC-MCS"},
    {"cp850", "CP850"},        {"hp8", "HP-ROMAN8"},
    {"koi8r", "KOI8-R"},       {"swe7", "ISO646-SE"},
    {"ujis", "EUC-JP"},        {"sjis", "SJIS"},
    {"cp1251", "CP1251"},      {"hebrew", "ISO-8859-8"},
    {"tis620", "TIS-620"},     {"euckr", "EUC-KR"},
    {"latin7", "ISO-8859-13"}, {"koi8u", "KOI8-U"},
    {"gb2312", "GB2312"},      {"greek", "ISO-8859-7"},
    {"cp1250", "CP1250"},      {"gbk", "GBK"},
    {"cp1257", "CP1257"},      {"latin5", "ISO-8859-9"},
    {"armscii8", "ARMSCII-8"}, {"ucs2", "UCS-2BE"},
    {"cp866", "CP866"},        {"macce", "MAC-CENTRALEUROPE"},
    {"macroman", "MACINTOSH"}, {"cp852", "CP852"},
    {"utf16", "UTF-16BE"},     {"utf16le", "UTF-16LE"},
    {"cp1256", "CP1256"},      {"utf32", "UTF-32BE"},
    {"cp932", "CP932"},        {"eucjpms", "EUC-JP-MS"},
    {"gb18030", "GB18030"},    {"keybcs2", NULL},
    {"geostd8", NULL},
};

enum {
  CS_UTF8 = 1,
  CS_LATIN1 = 2,
  CS_ASCII = 3,
  CS_BINARY = 4,
  CS_UCS2 = 27,
  CS_UTF16 = 32,
  CS_UTF32 = 35
};

/* Charset index of collation ids 0-255. */
static const uint8_t coll_cs[256] = {
    0,  5,  6,  7,  8,  2,  9,  10, 2,  6,  11, 3,  12, 13, 14, 2,  /* 0 */
    15, 0,  16, 17, 18, 6,  19, 14, 20, 21, 22, 6,  23, 24, 25, 2,  /* 16 */
    26, 1,  22, 27, 28, 39, 29, 30, 31, 18, 18, 29, 22, 1,  1,  2,  /* 32 */
    2,  2,  14, 14, 14, 30, 32, 32, 33, 34, 24, 24, 35, 35, 33, 4,  /* 48 */
    26, 3,  22, 34, 28, 7,  21, 15, 9,  39, 10, 19, 1,  6,  25, 18, /* 64 */
    8,  31, 11, 1,  5,  17, 20, 23, 13, 16, 27, 12, 40, 40, 2,  36, /* 80 */
    36, 37, 37, 22, 0,  32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, /* 96 */
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 0,  0,  0,  /* 112 */
    27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, /* 128 */
    27, 27, 27, 27, 27, 27, 27, 27, 0,  0,  0,  0,  0,  0,  0,  27, /* 144 */
    35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, /* 160 */
    35, 35, 35, 35, 35, 35, 35, 35, 0,  0,  0,  0,  0,  0,  0,  0,  /* 176 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 192 */
    1,  1,  1,  1,  1,  1,  1,  1,  0,  0,  0,  0,  0,  0,  0,  1,  /* 208 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 224 */
    1,  1,  1,  1,  1,  1,  1,  1,  38, 38, 38, 0,  0,  0,  0,  1,  /* 240 */
};

/* Map ids above 255 onto a charset index: MySQL 8's utf8mb4_0900
 * collations, MariaDB's extra Unicode collations, its NOPAD variants
 * (id + 1024) and its UCA 14.0 collations (10.10+). */
static unsigned coll_charset(unsigned id) {
  if (id < 256)
    return coll_cs[id];
  if (id <= 323)
    return CS_UTF8; /* MySQL 8: utf8mb4_0900_* and friends */
  if (id >= 576 && id <= 578)
    return CS_UTF8;
  if (id >= 608 && id <= 610)
    return CS_UTF8;
  if (id >= 640 && id <= 642)
    return CS_UCS2;
  if (id >= 672 && id <= 674)
    return CS_UTF16;
  if (id >= 736 && id <= 738)
    return CS_UTF32;
  if (id >= 1024 && id < 1280)
    return coll_cs[id - 1024];
  if (id >= 2048 && id < 2560)
    return CS_UTF8;
  if (id >= 2560 && id < 2816)
    return CS_UCS2;
  if (id >= 2816 && id < 3072)
    return CS_UTF16;
  if (id >= 3072 && id < 3328)
    return CS_UTF32;
  return 0;
}

/* Bytes per character at most, for the charsets whose width is fixed
 * knowledge; 0 when not known. utf8 is told apart by collation id:
 * utf8mb3 (3) or utf8mb4 (4). */
static unsigned cs_width(unsigned cs, unsigned id) {
  static const struct {
    const char *name;
    unsigned width;
  } w[] = {{"latin1", 1},   {"ascii", 1},   {"binary", 1}, {"big5", 2},
           {"latin2", 1},   {"dec8", 1},    {"cp850", 1},  {"hp8", 1},
           {"koi8r", 1},    {"swe7", 1},    {"ujis", 3},   {"sjis", 2},
           {"cp1251", 1},   {"hebrew", 1},  {"tis620", 1}, {"euckr", 2},
           {"latin7", 1},   {"koi8u", 1},   {"gb2312", 2}, {"greek", 1},
           {"cp1250", 1},   {"gbk", 2},     {"cp1257", 1}, {"latin5", 1},
           {"armscii8", 1}, {"ucs2", 2},    {"cp866", 1},  {"macce", 1},
           {"macroman", 1}, {"cp852", 1},   {"utf16", 4},  {"utf16le", 4},
           {"cp1256", 1},   {"utf32", 4},   {"cp932", 2},  {"eucjpms", 3},
           {"gb18030", 4},  {"keybcs2", 1}, {"geostd8", 1}};
  if (cs == CS_UTF8) {
    unsigned b = id >= 1024 && id < 2048 ? id - 1024 : id;
    if (b == 33 || b == 83 || b == 76 || (b >= 192 && b <= 215) || b == 223 ||
        (b >= 576 && b <= 578) || (id >= 2048 && id < 2304))
      return 3;
    if (b == 45 || b == 46 || (b >= 224 && b <= 247) ||
        (b >= 255 && b <= 323) || (b >= 608 && b <= 610) ||
        (id >= 2304 && id < 2560))
      return 4;
    return 0;
  }
  for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
    if (strcmp(w[i].name, charsets[cs].name) == 0)
      return w[i].width;
  return 0;
}

const char *hb__charset_name(unsigned collation, unsigned *width) {
  unsigned cs = coll_charset(collation);
  *width = cs ? cs_width(cs, collation) : 0;
  if (cs == 0)
    return NULL;
  if (cs == CS_UTF8)
    return *width == 3 ? "utf8mb3" : *width == 4 ? "utf8mb4" : "utf8";
  return charsets[cs].name;
}

int hb__cs_class(unsigned collation, const char **iconv_name) {
  unsigned cs = coll_charset(collation);
  *iconv_name = NULL;
  switch (cs) {
  case 0:
    return HB_CS_UNKNOWN;
  case CS_UTF8:
    return HB_CS_UTF8;
  case CS_LATIN1:
    return HB_CS_LATIN1;
  case CS_ASCII:
    return HB_CS_ASCII;
  case CS_BINARY:
    return HB_CS_BINARY;
  default:
    if (charsets[cs].iconv == NULL)
      return HB_CS_UNKNOWN;
    *iconv_name = charsets[cs].iconv;
    return HB_CS_ICONV;
  }
}

/* Length of the valid UTF-8 sequence at p, or 0 if there is none (also for
 * overlong forms, surrogates and code points above U+10FFFF). */
size_t hb__utf8_seq(const uint8_t *p, size_t n) {
  uint8_t c = p[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
      return 0;
    if (c == 0xe0 && p[1] < 0xa0)
      return 0; /* overlong */
    if (c == 0xed && p[1] >= 0xa0)
      return 0; /* surrogate */
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
        (p[3] & 0xc0) != 0x80)
      return 0;
    if (c == 0xf0 && p[1] < 0x90)
      return 0; /* overlong */
    if (c == 0xf4 && p[1] >= 0x90)
      return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

/* Bytes of pure ASCII at the start of p: eight at a time, since most text
 * in practice is ASCII and this is the renderer's hottest check. */
static size_t ascii_prefix(const uint8_t *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080ull)
      break;
  }
  while (i < n && p[i] < 0x80)
    i++;
  return i;
}

int hb__utf8_valid(const uint8_t *p, size_t n) {
  size_t i = ascii_prefix(p, n);
  while (i < n) {
    size_t k = hb__utf8_seq(p + i, n - i);
    if (k == 0)
      return 0;
    i += k;
    if (k == 1)
      i += ascii_prefix(p + i, n - i);
  }
  return 1;
}

/* MySQL's latin1 is cp1252, except that the five bytes cp1252 leaves
 * undefined map to the C1 controls of the same value. */
static const uint16_t cp1252_hi[32] = {
    0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
    0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178};

static size_t put_cp(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* latin1 to UTF-8; o has room for 3 * n bytes. */
static size_t latin1_to_utf8(const uint8_t *p, size_t n, char *o) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c < 0x80)
      o[k++] = (char)c;
    else if (c < 0xa0)
      k += put_cp(o + k, cp1252_hi[c - 0x80]);
    else
      k += put_cp(o + k, c);
  }
  return k;
}

iconv_t hb__iconv(hb_decoder_t *dec, const char *name) {
  for (unsigned i = 0; i < dec->nconv; i++)
    if (dec->conv[i].name == name)
      return dec->conv[i].cd;
  iconv_t cd = iconv_open("UTF-8", name);
  if (cd == (iconv_t)-1)
    return cd;
  /* A handful of charsets per process at most; when the cache is full the
   * oldest converter makes room. */
  if (dec->nconv == sizeof(dec->conv) / sizeof(dec->conv[0])) {
    iconv_close(dec->conv[0].cd);
    memmove(dec->conv, dec->conv + 1, sizeof(dec->conv) - sizeof(dec->conv[0]));
    dec->nconv--;
  }
  dec->conv[dec->nconv].name = name;
  dec->conv[dec->nconv].cd = cd;
  dec->nconv++;
  return cd;
}

/* iconv into out. strict: fail on the first invalid sequence; otherwise
 * replace each invalid byte with U+FFFD. @returns 0, or -1 (strict). */
static int iconv_to(iconv_t cd, const uint8_t *p, size_t n, hb_buf_t *out,
                    int strict) {
  char *in = (char *)(uintptr_t)p;
  size_t inleft = n;
  iconv(cd, NULL, NULL, NULL, NULL);
  while (inleft > 0) {
    hb_buf_reserve(out, inleft * 4 + 16);
    char *o = out->p + out->len;
    size_t oleft = out->cap - out->len;
    size_t r = iconv(cd, &in, &inleft, &o, &oleft);
    out->len = (size_t)(o - out->p);
    if (r != (size_t)-1)
      break;
    if (errno == E2BIG)
      continue;
    if (strict)
      return -1;
    /* EILSEQ or EINVAL (truncated sequence at the end): skip a byte. */
    hb_buf_lit(out, "\xef\xbf\xbd");
    in++;
    inleft--;
    iconv(cd, NULL, NULL, NULL, NULL);
  }
  /* Flush any shift state (stateful encodings). */
  hb_buf_reserve(out, 16);
  char *o = out->p + out->len;
  size_t oleft = out->cap - out->len;
  if (iconv(cd, NULL, NULL, &o, &oleft) == (size_t)-1 && strict)
    return -1;
  out->len = (size_t)(o - out->p);
  return 0;
}

int hb__text_to_utf8(hb_decoder_t *dec, const hb__col_t *x, const uint8_t *p,
                     size_t n, hb_value_t *v) {
  v->len = (uint32_t)n;
  v->s = (const char *)p;
  switch (x->cs) {
  case HB_CS_BINARY:
    v->kind = HB_V_BYTES;
    if (x->fixlen > n) {
      /* BINARY(n): the server strips trailing zero bytes when it logs the
       * value and pads them back when it reads it. */
      char *o = hb__arena_alloc(&dec->arena, x->fixlen);
      memcpy(o, p, n);
      memset(o + n, 0, x->fixlen - n);
      v->s = o;
      v->len = x->fixlen;
    }
    return 0;
  case HB_CS_ASCII:
    v->kind = ascii_prefix(p, n) == n ? HB_V_STRING : HB_V_BADTEXT;
    return 0;
  case HB_CS_LATIN1: {
    size_t a = ascii_prefix(p, n);
    v->kind = HB_V_STRING;
    if (a == n)
      return 0;
    char *o = hb__arena_alloc(&dec->arena, n * 3);
    memcpy(o, p, a);
    v->len = (uint32_t)(a + latin1_to_utf8(p + a, n - a, o + a));
    v->s = o;
    return 0;
  }
  case HB_CS_ICONV: {
    iconv_t cd = hb__iconv(dec, x->iconv_name);
    hb_buf_t *b = &dec->scratch2;
    hb_buf_reset(b);
    if (cd == (iconv_t)-1 || iconv_to(cd, p, n, b, 1) < 0 ||
        b->len > UINT32_MAX) {
      v->kind = HB_V_BADTEXT;
      return 0;
    }
    char *o = hb__arena_alloc(&dec->arena, b->len);
    memcpy(o, b->p, b->len);
    v->kind = HB_V_STRING;
    v->s = o;
    v->len = (uint32_t)b->len;
    return 0;
  }
  default: /* HB_CS_UTF8, HB_CS_UNKNOWN */
    v->kind = hb__utf8_valid(p, n) ? HB_V_STRING : HB_V_BADTEXT;
    return 0;
  }
}

int hb__convert(hb_decoder_t *dec, int cs, const char *iconv_name,
                const uint8_t *p, size_t n, hb_buf_t *out) {
  if (n == 0)
    return 0; /* out->p may still be NULL: no arithmetic on it */
  switch (cs) {
  case HB_CS_LATIN1:
    hb_buf_reserve(out, n * 3);
    out->len += latin1_to_utf8(p, n, out->p + out->len);
    return 0;
  case HB_CS_ICONV: {
    iconv_t cd = hb__iconv(dec, iconv_name);
    if (cd != (iconv_t)-1)
      return iconv_to(cd, p, n, out, 0);
    break;
  }
  default:
    break;
  }
  /* UTF-8 (or assumed so): copy, replacing what is not valid. */
  size_t i = 0;
  hb_buf_reserve(out, n);
  while (i < n) {
    size_t a = ascii_prefix(p + i, n - i);
    hb_buf_put(out, p + i, a);
    i += a;
    if (i >= n)
      break;
    size_t k = hb__utf8_seq(p + i, n - i);
    if (k == 0) {
      hb_buf_lit(out, "\xef\xbf\xbd");
      i++;
    } else {
      hb_buf_put(out, p + i, k);
      i += k;
    }
  }
  return 0;
}
