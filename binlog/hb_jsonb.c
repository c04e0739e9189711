/*
 * hb_jsonb.c - MySQL's binary JSON (the JSON column type) to JSON text, and
 * the JSON diffs of PARTIAL_UPDATE_ROWS events.
 *
 * The binary format (MySQL sql-common/json_binary.h): a type byte, then
 * for objects and arrays an element count and a byte size (2-byte fields
 * for "small" containers, 4-byte for "large"), key entries (offset, length),
 * value entries (type, then the value inline or an offset into the
 * container), then keys and values. Scalars: literals, integers, doubles,
 * strings with a 7-bit variable-length size, and "opaque" values that
 * carry a MySQL field type (dates, times, decimals, binary strings).
 *
 * The text is what MySQL prints (Json_wrapper::to_string): ", " and ": "
 * separators, dates and times with six fraction digits, decimals with their
 * scale, doubles in the shortest form with ".0" kept on integral values,
 * other opaque values as "base64:typeNN:...".
 *
 * Every offset and size is checked against its container, recursion stops
 * at MySQL's depth limit, and the output is capped relative to the input:
 * offsets may be shared between entries, so a crafted document could
 * otherwise expand exponentially.
 */
#include <stdlib.h>
#include <string.h>

#include "hb_int.h"
#include "hd_mem.h"

enum {
  JB_SMALL_OBJ = 0x00,
  JB_LARGE_OBJ = 0x01,
  JB_SMALL_ARR = 0x02,
  JB_LARGE_ARR = 0x03,
  JB_LITERAL = 0x04,
  JB_INT16 = 0x05,
  JB_UINT16 = 0x06,
  JB_INT32 = 0x07,
  JB_UINT32 = 0x08,
  JB_INT64 = 0x09,
  JB_UINT64 = 0x0a,
  JB_DOUBLE = 0x0b,
  JB_STRING = 0x0c,
  JB_OPAQUE = 0x0f
};

#define JB_MAX_DEPTH 100

typedef struct {
  hb_buf_t *out;
  size_t limit; /* output cap */
  const char *why;
} jb_ctx_t;

/* Keep the innermost reason: the outer levels only pass the failure up. */
static int jb_fail(jb_ctx_t *c, const char *why) {
  if (c->why == NULL)
    c->why = why;
  return -1;
}

/* 7-bit variable-length size of strings and opaque values (at most 5
 * bytes, since values are below 4 GiB). */
static int jb_varlen(const uint8_t *p, size_t n, uint32_t *len, size_t *used) {
  uint64_t v = 0;
  for (size_t i = 0; i < 5 && i < n; i++) {
    v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      if (v > UINT32_MAX)
        return -1;
      *len = (uint32_t)v;
      *used = i + 1;
      return 0;
    }
  }
  return -1;
}

/* Packed temporal of an opaque value: int part << 24 | microseconds, as a
 * little-endian signed 64-bit integer. */
static int jb_opaque(jb_ctx_t *c, uint8_t ftype, const uint8_t *d, uint32_t n) {
  char tmp[96];
  size_t len;
  switch (ftype) {
  case HB_T_DATE:
  case HB_T_TIME:
  case HB_T_DATETIME:
  case HB_T_TIMESTAMP: {
    if (n < 8)
      return jb_fail(c, "short temporal in JSON");
    int64_t packed = (int64_t)hb__u64(d);
    int kind = ftype == HB_T_DATE ? 1 : ftype == HB_T_TIME ? 2 : 0;
    len = hb__fmt_datetime_packed(packed, kind, tmp);
    hb_buf_putc(c->out, '"');
    hb_buf_put(c->out, tmp, len);
    hb_buf_putc(c->out, '"');
    return 0;
  }
  case HB_T_NEWDECIMAL: {
    /* precision, scale, then the binary decimal */
    if (n < 2)
      return jb_fail(c, "short decimal in JSON");
    unsigned prec = d[0], scale = d[1];
    if (prec == 0 || prec > 65 || scale > prec)
      return jb_fail(c, "bad decimal precision in JSON");
    if (n - 2 < hb__decimal_size(prec, scale))
      return jb_fail(c, "short decimal in JSON");
    if (hb__decimal_text(d + 2, prec, scale, tmp, &len) < 0)
      return jb_fail(c, "invalid decimal digits in JSON");
    hb_buf_put(c->out, tmp, len);
    return 0;
  }
  case HB_T_VAR_STRING:
    /* MySQL prints strings stored as opaque as plain strings. */
    hb__json_str_checked(c->out, (const char *)d, n);
    return 0;
  default:
    hb_buf_lit(c->out, "\"base64:type");
    hb_buf_u64(c->out, ftype);
    hb_buf_putc(c->out, ':');
    hb__base64(c->out, d, n, 1);
    hb_buf_putc(c->out, '"');
    return 0;
  }
}

static int jb_value(jb_ctx_t *c, uint8_t type, const uint8_t *p, size_t n,
                    int depth);

/* A container: p..p+n is the container's bytes (count, size, entries...).
 * Offsets in entries are relative to the container's start, and every
 * one is checked against the container's declared size, which is itself
 * checked against what the parent has left. */
static int jb_container(jb_ctx_t *c, uint8_t type, const uint8_t *p, size_t n,
                        int depth) {
  int large = type == JB_LARGE_OBJ || type == JB_LARGE_ARR;
  int obj = type == JB_SMALL_OBJ || type == JB_LARGE_OBJ;
  size_t ow = large ? 4 : 2; /* offset/size field width */
  if (depth > JB_MAX_DEPTH)
    return jb_fail(c, "JSON nested too deeply");
  if (n < 2 * ow)
    return jb_fail(c, "short JSON container");
  uint32_t count = (uint32_t)hb__le(p, (unsigned)ow);
  uint32_t size = (uint32_t)hb__le(p + ow, (unsigned)ow);
  if (size > n || size < 2 * ow)
    return jb_fail(c, "JSON container size out of range");
  size_t keyent = obj ? ow + 2 : 0, valent = 1 + ow;
  if ((uint64_t)count * (keyent + valent) > size - 2 * ow)
    return jb_fail(c, "JSON container entries out of range");
  const uint8_t *keys = p + 2 * ow;
  const uint8_t *vals = keys + (size_t)count * keyent;
  hb_buf_putc(c->out, obj ? '{' : '[');
  for (uint32_t i = 0; i < count; i++) {
    if (c->out->len > c->limit)
      return jb_fail(c, "JSON text too large for its binary size");
    if (i)
      hb_buf_lit(c->out, ", ");
    if (obj) {
      const uint8_t *ke = keys + (size_t)i * keyent;
      uint32_t koff = (uint32_t)hb__le(ke, (unsigned)ow);
      uint16_t klen = hb__u16(ke + ow);
      if ((uint64_t)koff + klen > size)
        return jb_fail(c, "JSON key out of range");
      hb__json_str_checked(c->out, (const char *)p + koff, klen);
      hb_buf_lit(c->out, ": ");
    }
    const uint8_t *ve = vals + (size_t)i * valent;
    uint8_t vt = ve[0];
    /* Literals and 16-bit integers are inlined; so are 32-bit integers in
     * large containers. */
    int inl = vt == JB_LITERAL || vt == JB_INT16 || vt == JB_UINT16 ||
              (large && (vt == JB_INT32 || vt == JB_UINT32));
    if (inl) {
      if (jb_value(c, vt, ve + 1, ow, depth) < 0)
        return -1;
    } else {
      uint32_t off = (uint32_t)hb__le(ve + 1, (unsigned)ow);
      if (off >= size)
        return jb_fail(c, "JSON value offset out of range");
      if (jb_value(c, vt, p + off, size - off, depth) < 0)
        return -1;
    }
  }
  hb_buf_putc(c->out, obj ? '}' : ']');
  return 0;
}

/* One value of type type whose bytes start at p, with n bytes left in
 * the enclosing container (the bound for everything it reads). */
static int jb_value(jb_ctx_t *c, uint8_t type, const uint8_t *p, size_t n,
                    int depth) {
  char tmp[48];
  switch (type) {
  case JB_SMALL_OBJ:
  case JB_LARGE_OBJ:
  case JB_SMALL_ARR:
  case JB_LARGE_ARR:
    return jb_container(c, type, p, n, depth + 1);
  case JB_LITERAL:
    if (n < 1)
      return jb_fail(c, "short JSON literal");
    switch (p[0]) {
    case 0x00:
      hb_buf_lit(c->out, "null");
      return 0;
    case 0x01:
      hb_buf_lit(c->out, "true");
      return 0;
    case 0x02:
      hb_buf_lit(c->out, "false");
      return 0;
    default:
      return jb_fail(c, "bad JSON literal");
    }
  case JB_INT16:
    if (n < 2)
      return jb_fail(c, "short JSON integer");
    hb_buf_i64(c->out, (int16_t)hb__u16(p));
    return 0;
  case JB_UINT16:
    if (n < 2)
      return jb_fail(c, "short JSON integer");
    hb_buf_u64(c->out, hb__u16(p));
    return 0;
  case JB_INT32:
    if (n < 4)
      return jb_fail(c, "short JSON integer");
    hb_buf_i64(c->out, (int32_t)hb__u32(p));
    return 0;
  case JB_UINT32:
    if (n < 4)
      return jb_fail(c, "short JSON integer");
    hb_buf_u64(c->out, hb__u32(p));
    return 0;
  case JB_INT64:
    if (n < 8)
      return jb_fail(c, "short JSON integer");
    hb_buf_i64(c->out, (int64_t)hb__u64(p));
    return 0;
  case JB_UINT64:
    if (n < 8)
      return jb_fail(c, "short JSON integer");
    hb_buf_u64(c->out, hb__u64(p));
    return 0;
  case JB_DOUBLE: {
    if (n < 8)
      return jb_fail(c, "short JSON double");
    double d;
    memcpy(&d, p, 8);
    if (d != d || d - d != 0)
      return jb_fail(c, "JSON double is not finite");
    hb_buf_put(c->out, tmp, hb__fmt_double_mysql(d, tmp));
    return 0;
  }
  case JB_STRING: {
    uint32_t len;
    size_t used;
    if (jb_varlen(p, n, &len, &used) < 0 || len > n - used)
      return jb_fail(c, "JSON string length out of range");
    hb__json_str_checked(c->out, (const char *)p + used, len);
    return 0;
  }
  case JB_OPAQUE: {
    uint32_t len;
    size_t used;
    if (n < 1 || jb_varlen(p + 1, n - 1, &len, &used) < 0 || len > n - 1 - used)
      return jb_fail(c, "JSON opaque length out of range");
    return jb_opaque(c, p[0], p + 1 + used, len);
  }
  default:
    return jb_fail(c, "unknown JSON value type");
  }
}

/* The largest text a document of n bytes may print. */
static size_t out_limit(size_t n) {
  /* Legitimate documents print at most a few times their binary size
   * (escaped control characters are the worst case, 6x). */
  return (size_t)1 << 20 | n * 64;
}

int hb__jsonb_to_text(const uint8_t *p, size_t n, hb_buf_t *out,
                      const char **why) {
  jb_ctx_t c = {out, out->len + out_limit(n), NULL};
  if (n < 1 || jb_value(&c, p[0], p + 1, n - 1, 0) < 0) {
    *why = c.why ? c.why : "empty JSON value";
    return -1;
  }
  return 0;
}

/* ---- DOM, for applying partial-update diffs ---- */

enum { JN_SCALAR, JN_OBJ, JN_ARR };

typedef struct jn {
  uint8_t t;
  uint32_t n, cap; /* members or elements */
  struct jn **kids;
  char **keys; /* objects: member names (NUL-terminated copies) */
  uint32_t *klens;
  char *text; /* scalars: their JSON text */
  size_t len;
} jn_t;

typedef struct {
  size_t nodes, max_nodes;
  const char *why;
} jd_ctx_t;

static void jn_free(jn_t *j) {
  if (j == NULL)
    return;
  for (uint32_t i = 0; i < j->n; i++) {
    jn_free(j->kids[i]);
    if (j->keys)
      free(j->keys[i]);
  }
  free(j->kids);
  free(j->keys);
  free(j->klens);
  free(j->text);
  free(j);
}

/* Nodes are counted so that shared offsets cannot blow the DOM up. */
static jn_t *jn_new(jd_ctx_t *c, uint8_t t) {
  if (++c->nodes > c->max_nodes) {
    c->why = "JSON document expands too much";
    return NULL;
  }
  jn_t *j = hd_calloc(1, sizeof(*j));
  j->t = t;
  return j;
}

static void jn_reserve(jn_t *j, uint32_t n) {
  if (n <= j->cap)
    return;
  uint32_t cap = j->cap ? j->cap * 2 : 4;
  while (cap < n)
    cap *= 2;
  j->kids = hd_realloc(j->kids, cap * sizeof(*j->kids));
  if (j->t == JN_OBJ) {
    j->keys = hd_realloc(j->keys, cap * sizeof(*j->keys));
    j->klens = hd_realloc(j->klens, cap * sizeof(*j->klens));
  }
  j->cap = cap;
}

static jn_t *jd_value(jd_ctx_t *c, uint8_t type, const uint8_t *p, size_t n,
                      int depth);

/* The DOM twin of jb_container: the same checks, nodes instead of text. */
static jn_t *jd_container(jd_ctx_t *c, uint8_t type, const uint8_t *p, size_t n,
                          int depth) {
  int large = type == JB_LARGE_OBJ || type == JB_LARGE_ARR;
  int obj = type == JB_SMALL_OBJ || type == JB_LARGE_OBJ;
  size_t ow = large ? 4 : 2;
  if (depth > JB_MAX_DEPTH) {
    c->why = "JSON nested too deeply";
    return NULL;
  }
  if (n < 2 * ow) {
    c->why = "short JSON container";
    return NULL;
  }
  uint32_t count = (uint32_t)hb__le(p, (unsigned)ow);
  uint32_t size = (uint32_t)hb__le(p + ow, (unsigned)ow);
  size_t keyent = obj ? ow + 2 : 0, valent = 1 + ow;
  if (size > n || size < 2 * ow ||
      (uint64_t)count * (keyent + valent) > size - 2 * ow) {
    c->why = "JSON container out of range";
    return NULL;
  }
  jn_t *j = jn_new(c, obj ? JN_OBJ : JN_ARR);
  if (j == NULL)
    return NULL;
  jn_reserve(j, count);
  const uint8_t *keys = p + 2 * ow;
  const uint8_t *vals = keys + (size_t)count * keyent;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *ve = vals + (size_t)i * valent;
    uint8_t vt = ve[0];
    int inl = vt == JB_LITERAL || vt == JB_INT16 || vt == JB_UINT16 ||
              (large && (vt == JB_INT32 || vt == JB_UINT32));
    jn_t *kid;
    if (inl) {
      kid = jd_value(c, vt, ve + 1, ow, depth);
    } else {
      uint32_t off = (uint32_t)hb__le(ve + 1, (unsigned)ow);
      kid = off < size ? jd_value(c, vt, p + off, size - off, depth) : NULL;
      if (off >= size)
        c->why = "JSON value offset out of range";
    }
    if (kid == NULL) {
      jn_free(j);
      return NULL;
    }
    if (obj) {
      const uint8_t *ke = keys + (size_t)i * keyent;
      uint32_t koff = (uint32_t)hb__le(ke, (unsigned)ow);
      uint16_t klen = hb__u16(ke + ow);
      if ((uint64_t)koff + klen > size) {
        c->why = "JSON key out of range";
        jn_free(kid);
        jn_free(j);
        return NULL;
      }
      j->keys[j->n] = hd_strndup((const char *)p + koff, klen);
      j->klens[j->n] = klen;
    }
    j->kids[j->n++] = kid;
  }
  return j;
}

static jn_t *jd_value(jd_ctx_t *c, uint8_t type, const uint8_t *p, size_t n,
                      int depth) {
  if (type <= JB_LARGE_ARR)
    return jd_container(c, type, p, n, depth + 1);
  /* Scalars keep their rendered text. */
  hb_buf_t b = {0};
  jb_ctx_t jc = {&b, out_limit(n), NULL};
  if (jb_value(&jc, type, p, n, depth) < 0) {
    c->why = jc.why;
    hb_buf_free(&b);
    return NULL;
  }
  jn_t *j = jn_new(c, JN_SCALAR);
  if (j == NULL) {
    hb_buf_free(&b);
    return NULL;
  }
  j->text = b.p;
  j->len = b.len;
  return j;
}

/* Print a DOM the way jb_value prints binary JSON. */
static void jn_print(const jn_t *j, hb_buf_t *out) {
  switch (j->t) {
  case JN_SCALAR:
    hb_buf_put(out, j->text, j->len);
    return;
  case JN_OBJ:
    hb_buf_putc(out, '{');
    for (uint32_t i = 0; i < j->n; i++) {
      if (i)
        hb_buf_lit(out, ", ");
      hb__json_str_checked(out, j->keys[i], j->klens[i]);
      hb_buf_lit(out, ": ");
      jn_print(j->kids[i], out);
    }
    hb_buf_putc(out, '}');
    return;
  default:
    hb_buf_putc(out, '[');
    for (uint32_t i = 0; i < j->n; i++) {
      if (i)
        hb_buf_lit(out, ", ");
      jn_print(j->kids[i], out);
    }
    hb_buf_putc(out, ']');
    return;
  }
}

/* ---- JSON paths as written in diffs: $, .name, ."quoted", [N],
 *      [last], [last-N] ---- */

typedef struct {
  int is_index;
  char *key; /* member name, unescaped (owned) */
  uint32_t klen;
  int from_last; /* [last-N] */
  uint64_t index;
} jleg_t;

typedef struct {
  jleg_t *legs;
  size_t n;
} jpath_t;

static void jpath_free(jpath_t *jp) {
  for (size_t i = 0; i < jp->n; i++)
    free(jp->legs[i].key);
  free(jp->legs);
  jp->legs = NULL;
  jp->n = 0;
}

static int hexval(char h) {
  if (h >= '0' && h <= '9')
    return h - '0';
  if (h >= 'a' && h <= 'f')
    return h - 'a' + 10;
  if (h >= 'A' && h <= 'F')
    return h - 'A' + 10;
  return -1;
}

/* Parse a double-quoted member name at s (s[0] == '"'). */
static int jpath_quoted(const char *s, const char *e, jleg_t *leg,
                        const char **next) {
  hb_buf_t b = {0};
  const char *q = s + 1;
  while (q < e && *q != '"') {
    if (*q != '\\') {
      hb_buf_putc(&b, *q++);
      continue;
    }
    if (++q >= e)
      goto bad;
    char ch = *q++;
    switch (ch) {
    case '"':
    case '\\':
    case '/':
      hb_buf_putc(&b, ch);
      break;
    case 'b':
      hb_buf_putc(&b, '\b');
      break;
    case 'f':
      hb_buf_putc(&b, '\f');
      break;
    case 'n':
      hb_buf_putc(&b, '\n');
      break;
    case 'r':
      hb_buf_putc(&b, '\r');
      break;
    case 't':
      hb_buf_putc(&b, '\t');
      break;
    case 'u': {
      if (e - q < 4)
        goto bad;
      uint32_t cp = 0;
      for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0)
          goto bad;
        cp = cp << 4 | (uint32_t)h;
      }
      q += 4;
      /* Surrogate pairs for characters above the BMP. */
      if (cp >= 0xd800 && cp < 0xdc00 && e - q >= 6 && q[0] == '\\' &&
          q[1] == 'u') {
        uint32_t lo = 0;
        int ok = 1;
        for (int i = 0; i < 4; i++) {
          int h = hexval(q[2 + i]);
          ok &= h >= 0;
          lo = lo << 4 | (uint32_t)(h < 0 ? 0 : h);
        }
        if (ok && lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          q += 6;
        }
      }
      char u[4];
      size_t k;
      if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
      } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
      } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
      } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
      }
      hb_buf_put(&b, u, k);
      break;
    }
    default:
      goto bad;
    }
  }
  if (q >= e || b.len > UINT16_MAX)
    goto bad;
  hb_buf_putc(&b, '\0');
  leg->key = b.p;
  leg->klen = (uint32_t)(b.len - 1);
  *next = q + 1;
  return 0;
bad:
  hb_buf_free(&b);
  return -1;
}

/* The paths come from the server's Json_path::to_string(), so only the
 * forms it writes are accepted; wildcards and ranges, which a diff never
 * holds, are errors. */
static int jpath_parse(const char *s, size_t n, jpath_t *jp) {
  const char *e = s + n;
  jp->legs = NULL;
  jp->n = 0;
  size_t cap = 0;
  if (n < 1 || s[0] != '$')
    return -1;
  s++;
  while (s < e) {
    jleg_t leg = {0};
    if (*s == '.') {
      s++;
      if (s < e && *s == '"') {
        if (jpath_quoted(s, e, &leg, &s) < 0)
          goto bad;
      } else {
        const char *b = s;
        while (s < e && *s != '.' && *s != '[')
          s++;
        if (s == b || s - b > UINT16_MAX || memchr(b, '*', (size_t)(s - b)))
          goto bad;
        leg.key = hd_strndup(b, (size_t)(s - b));
        leg.klen = (uint32_t)(s - b);
      }
    } else if (*s == '[') {
      s++;
      while (s < e && *s == ' ')
        s++;
      leg.is_index = 1;
      if (e - s >= 4 && memcmp(s, "last", 4) == 0) {
        leg.from_last = 1;
        s += 4;
        while (s < e && *s == ' ')
          s++;
        if (s < e && *s == '-') {
          s++;
          while (s < e && *s == ' ')
            s++;
        } else if (s < e && *s == ']') {
          s++;
          goto add;
        } else {
          goto bad;
        }
      }
      if (s >= e || *s < '0' || *s > '9')
        goto bad;
      while (s < e && *s >= '0' && *s <= '9') {
        if (leg.index > UINT32_MAX)
          goto bad;
        leg.index = leg.index * 10 + (uint64_t)(*s++ - '0');
      }
      while (s < e && *s == ' ')
        s++;
      if (s >= e || *s != ']')
        goto bad;
      s++;
    } else {
      goto bad;
    }
  add:
    if (jp->n == cap) {
      cap = cap ? cap * 2 : 8;
      jp->legs = hd_realloc(jp->legs, cap * sizeof(*jp->legs));
    }
    jp->legs[jp->n++] = leg;
    continue;
  bad:
    free(leg.key);
    jpath_free(jp);
    return -1;
  }
  return 0;
}

/* Array position of an index leg in an array of size n; SIZE_MAX when it
 * points before the start. */
static size_t leg_pos(const jleg_t *leg, size_t n) {
  if (!leg->from_last)
    return (size_t)leg->index;
  if (n == 0 || leg->index > n - 1)
    return SIZE_MAX;
  return n - 1 - (size_t)leg->index;
}

/* Members are few in practice; a linear scan keeps the DOM simple. */
static int key_index(const jn_t *o, const char *k, uint32_t klen) {
  for (uint32_t i = 0; i < o->n; i++)
    if (o->klens[i] == klen && memcmp(o->keys[i], k, klen) == 0)
      return (int)i;
  return -1;
}

/* Follow legs [0, n) from j; NULL when the path does not exist. */
static jn_t *seek(jn_t *j, const jleg_t *legs, size_t n) {
  for (size_t i = 0; i < n && j; i++) {
    if (legs[i].is_index) {
      if (j->t != JN_ARR)
        return NULL;
      size_t pos = leg_pos(&legs[i], j->n);
      j = pos < j->n ? j->kids[pos] : NULL;
    } else {
      if (j->t != JN_OBJ)
        return NULL;
      int k = key_index(j, legs[i].key, legs[i].klen);
      j = k >= 0 ? j->kids[k] : NULL;
    }
  }
  return j;
}

/* MySQL keeps object members ordered by key length, then bytes. */
static int key_before(const char *a, uint32_t al, const char *b, uint32_t bl) {
  if (al != bl)
    return al < bl;
  return memcmp(a, b, al) < 0;
}

/* One diff, with the semantics of MySQL's apply_json_diffs(): REPLACE needs
 * the path to exist, INSERT adds a member that does not exist yet or puts
 * an array element before the given index (or at the end), REMOVE deletes
 * a member or element. Returns NULL, or why the diff does not apply; on
 * success *val has been taken over. */
static const char *apply_one(jn_t *root, int op, const jpath_t *jp,
                             jn_t **val) {
  if (jp->n == 0)
    return "JSON diff on the document root";
  const jleg_t *last = &jp->legs[jp->n - 1];
  jn_t *parent = seek(root, jp->legs, jp->n - 1);
  if (parent == NULL)
    return "JSON diff path not found";
  if (op == 0) { /* REPLACE */
    if (last->is_index) {
      if (parent->t != JN_ARR)
        return "JSON diff path not found";
      size_t pos = leg_pos(last, parent->n);
      if (pos >= parent->n)
        return "JSON diff path not found";
      jn_free(parent->kids[pos]);
      parent->kids[pos] = *val;
    } else {
      if (parent->t != JN_OBJ)
        return "JSON diff path not found";
      int k = key_index(parent, last->key, last->klen);
      if (k < 0)
        return "JSON diff path not found";
      jn_free(parent->kids[k]);
      parent->kids[k] = *val;
    }
    *val = NULL;
    return NULL;
  }
  if (op == 1) { /* INSERT */
    if (parent->t == JN_OBJ && !last->is_index) {
      if (key_index(parent, last->key, last->klen) >= 0)
        return "JSON diff inserts an existing member";
      jn_reserve(parent, parent->n + 1);
      uint32_t at = 0;
      while (at < parent->n && key_before(parent->keys[at], parent->klens[at],
                                          last->key, last->klen))
        at++;
      memmove(parent->kids + at + 1, parent->kids + at,
              (parent->n - at) * sizeof(*parent->kids));
      memmove(parent->keys + at + 1, parent->keys + at,
              (parent->n - at) * sizeof(*parent->keys));
      memmove(parent->klens + at + 1, parent->klens + at,
              (parent->n - at) * sizeof(*parent->klens));
      parent->kids[at] = *val;
      parent->keys[at] = hd_strndup(last->key, last->klen);
      parent->klens[at] = last->klen;
      parent->n++;
      *val = NULL;
      return NULL;
    }
    if (parent->t == JN_ARR && last->is_index) {
      size_t pos = leg_pos(last, parent->n);
      if (pos > parent->n)
        pos = parent->n; /* past the end appends */
      jn_reserve(parent, parent->n + 1);
      memmove(parent->kids + pos + 1, parent->kids + pos,
              (parent->n - pos) * sizeof(*parent->kids));
      parent->kids[pos] = *val;
      parent->n++;
      *val = NULL;
      return NULL;
    }
    return "JSON diff path not found";
  }
  /* REMOVE */
  uint32_t at;
  if (parent->t == JN_OBJ && !last->is_index) {
    int k = key_index(parent, last->key, last->klen);
    if (k < 0)
      return "JSON diff path not found";
    at = (uint32_t)k;
    free(parent->keys[at]);
    memmove(parent->keys + at, parent->keys + at + 1,
            (parent->n - at - 1) * sizeof(*parent->keys));
    memmove(parent->klens + at, parent->klens + at + 1,
            (parent->n - at - 1) * sizeof(*parent->klens));
  } else if (parent->t == JN_ARR && last->is_index) {
    size_t pos = leg_pos(last, parent->n);
    if (pos >= parent->n)
      return "JSON diff path not found";
    at = (uint32_t)pos;
  } else {
    return "JSON diff path not found";
  }
  jn_free(parent->kids[at]);
  memmove(parent->kids + at, parent->kids + at + 1,
          (parent->n - at - 1) * sizeof(*parent->kids));
  parent->n--;
  return NULL;
}

/* One diff: operation byte, path (packed length + text), and unless the
 * operation is REMOVE a value (packed length + binary JSON). */
typedef struct {
  int op;
  const char *path;
  size_t pathlen;
  const uint8_t *val;
  size_t vallen;
} jdiff_t;

/* Read the next diff of a vector (MySQL Json_diff_vector::read_binary),
 * checking every length against what is left. */
static int next_diff(const uint8_t **p, const uint8_t *end, jdiff_t *d,
                     const char **why) {
  const uint8_t *q = *p;
  uint64_t len;
  d->op = *q++;
  if (d->op > 2) {
    *why = "unknown JSON diff operation";
    return -1;
  }
  if (hb__lenenc(&q, end, &len) < 0 || len > (uint64_t)(end - q)) {
    *why = "JSON diff path out of range";
    return -1;
  }
  d->path = (const char *)q;
  d->pathlen = (size_t)len;
  q += len;
  d->val = NULL;
  d->vallen = 0;
  if (d->op != 2) {
    if (hb__lenenc(&q, end, &len) < 0 || len > (uint64_t)(end - q) || len < 1) {
      *why = "JSON diff value out of range";
      return -1;
    }
    d->val = q;
    d->vallen = (size_t)len;
    q += len;
  }
  *p = q;
  return 0;
}

/* The before document to a DOM, every diff applied in order, the DOM
 * printed. The node budget is tied to the input size for the same reason
 * as the text cap above. */
int hb__jsonb_apply_diffs(const uint8_t *doc, size_t doclen,
                          const uint8_t *diffs, size_t difflen, hb_buf_t *out,
                          const char **why) {
  jd_ctx_t c = {0, doclen + difflen + 16, NULL};
  jn_t *root;
  if (doclen == 0) {
    root = jn_new(&c, JN_SCALAR);
    root->text = hd_strdup("null");
    root->len = 4;
  } else {
    root = jd_value(&c, doc[0], doc + 1, doclen - 1, 0);
  }
  if (root == NULL) {
    *why = c.why;
    return -1;
  }
  const uint8_t *p = diffs, *end = diffs + difflen;
  const char *err = NULL;
  while (p < end && err == NULL) {
    jdiff_t d;
    jpath_t jp;
    if (next_diff(&p, end, &d, why) < 0) {
      jn_free(root);
      return -1;
    }
    if (jpath_parse(d.path, d.pathlen, &jp) < 0) {
      err = "bad JSON diff path";
      break;
    }
    jn_t *val = NULL;
    if (d.op != 2) {
      val = jd_value(&c, d.val[0], d.val + 1, d.vallen - 1, 0);
      if (val == NULL)
        err = c.why;
    }
    if (err == NULL)
      err = apply_one(root, d.op, &jp, &val);
    jn_free(val);
    jpath_free(&jp);
  }
  if (err == NULL)
    jn_print(root, out);
  jn_free(root);
  if (err) {
    *why = err;
    return -1;
  }
  return 0;
}

/* The documented fallback: the diffs themselves as a JSON array, the
 * values rendered from their binary form. */
int hb__jsonb_diffs_to_json(const uint8_t *diffs, size_t difflen, hb_buf_t *out,
                            const char **why) {
  static const char *const ops[] = {"replace", "insert", "remove"};
  const uint8_t *p = diffs, *end = diffs + difflen;
  hb_buf_putc(out, '[');
  for (int first = 1; p < end; first = 0) {
    jdiff_t d;
    if (next_diff(&p, end, &d, why) < 0)
      return -1;
    if (!first)
      hb_buf_putc(out, ',');
    hb_buf_lit(out, "{\"op\":\"");
    hb_buf_put(out, ops[d.op], strlen(ops[d.op]));
    hb_buf_lit(out, "\",\"path\":");
    hb__json_str_checked(out, d.path, d.pathlen);
    if (d.op != 2) {
      hb_buf_lit(out, ",\"value\":");
      jb_ctx_t jc = {out, out->len + out_limit(d.vallen), NULL};
      if (jb_value(&jc, d.val[0], d.val + 1, d.vallen - 1, 0) < 0) {
        *why = jc.why;
        return -1;
      }
    }
    hb_buf_putc(out, '}');
  }
  hb_buf_putc(out, ']');
  return 0;
}
