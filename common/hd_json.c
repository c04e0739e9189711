/*
 * hd_json.c - the field-table walker of hd_json_int.h, with jansson.
 *
 * Its messages are part of the contract of every node it reads
 * (docs/zookeeper.md quotes them), so they are spelled in one place.
 */
#include "hd_json_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hd_mem.h"
#include "hd_parse.h"

int hd__json_fail(int code, char *err, size_t n, const char *fmt, ...) {
  if (n) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    /* One line, whatever a quoted value held. */
    for (char *p = err; *p; p++)
      if (*p == '\n' || *p == '\r')
        *p = ' ';
  }
  return code;
}

const char *hd__json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
    return "an integer";
  case JSON_REAL:
    return "a real number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  case JSON_NULL:
    return "null";
  }
  return "something else";
}

json_t *hd__json_load_object(const char *data, size_t len, int code, char *err,
                             size_t n) {
  json_error_t je;
  /* Two values for one key would leave it to the parser which one counts:
   * refused, like duplicate keys in herald's configs. */
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL) {
    hd__json_fail(code, err, n, "not JSON: %s (line %d, column %d)", je.text,
                  je.line, je.column);
    return NULL;
  }
  if (!json_is_object(root)) {
    hd__json_fail(code, err, n, "expected a JSON object, got %s",
                  hd__json_type_name(root));
    json_decref(root);
    return NULL;
  }
  return root;
}

/* The checks a string value passes, on either side. */
static int check_str(const hd__jfield_t *f, const char *s, int code, char *err,
                     size_t n) {
  char host[256];
  uint16_t port;
  if (s[0] == '\0' && f->kind == HD__JF_ADDR_OPT)
    return 0;
  if (s[0] == '\0')
    return hd__json_fail(code, err, n, "field '%s': must not be empty",
                         f->name);
  if (f->kind == HD__JF_NAME)
    return 0;
  if (hd_parse_hostport(s, host, sizeof(host), &port) < 0)
    return hd__json_fail(code, err, n,
                         "field '%s': '%.280s' is not host:port (port "
                         "1-65535, IPv6 in brackets)",
                         f->name, s);
  if (f->kind == HD__JF_DIAL && hd_host_is_wildcard(host))
    return hd__json_fail(code, err, n,
                         "field '%s': '%.280s' is a wildcard address, which "
                         "no client can dial",
                         f->name, s);
  return 0;
}

static int is_str(hd__jkind_t k) {
  return k == HD__JF_NAME || k == HD__JF_ADDR || k == HD__JF_DIAL ||
         k == HD__JF_ADDR_OPT;
}

/* JSON has no unsigned type and jansson's integers are signed 64 bits: a
 * value above that range is refused, never wrapped. */
static int put_u64(const hd__jfield_t *f, uint64_t u, json_t **v, int code,
                   char *err, size_t n) {
  if (u > (uint64_t)INT64_MAX)
    return hd__json_fail(code, err, n,
                         "field '%s': %" PRIu64 " is above 2^63-1, the "
                         "largest integer the node holds",
                         f->name, u);
  *v = json_integer((json_int_t)u);
  return 0;
}

static int put_one(const hd__jfield_t *f, const char *base, json_t **v,
                   int code, char *err, size_t n) {
  uint64_t u;
  uint32_t u32;
  int b, rc;
  char sess[24];
  if (is_str(f->kind)) {
    if (memchr(base + f->off, '\0', f->size) == NULL)
      return hd__json_fail(code, err, n, "field '%s': not NUL-terminated",
                           f->name);
    rc = check_str(f, base + f->off, code, err, n);
    if (rc == 0 && (*v = json_string(base + f->off)) == NULL)
      rc = hd__json_fail(code, err, n, "field '%s': not valid UTF-8", f->name);
    return rc;
  }
  switch (f->kind) {
  case HD__JF_SESSION:
    memcpy(&u, base + f->off, sizeof(u));
    snprintf(sess, sizeof(sess), "0x%" PRIx64, u);
    *v = json_string(sess);
    return 0;
  case HD__JF_U64:
    memcpy(&u, base + f->off, sizeof(u));
    return put_u64(f, u, v, code, err, n);
  case HD__JF_PARTS:
    memcpy(&u32, base + f->off, sizeof(u32));
    if (u32 < 1 || u32 > HD__JSON_MAX_PARTS)
      return hd__json_fail(code, err, n,
                           "field '%s': %" PRIu32 " is not between 1 and %d",
                           f->name, u32, HD__JSON_MAX_PARTS);
    *v = json_integer(u32);
    return 0;
  case HD__JF_BOOL:
    memcpy(&b, base + f->off, sizeof(b));
    *v = json_boolean(b);
    return 0;
  default:
    return hd__json_fail(code, err, n, "field '%s': unknown kind", f->name);
  }
}

int hd__json_put(json_t *o, const hd__jfield_t *f, size_t nf, const void *base,
                 int code, char *err, size_t n) {
  for (size_t i = 0; i < nf; i++) {
    json_t *v = NULL;
    int rc = put_one(&f[i], base, &v, code, err, n);
    if (rc != 0)
      return rc;
    if (v == NULL || json_object_set_new(o, f[i].name, v) < 0)
      return hd__json_fail(code, err, n, "field '%s': out of memory",
                           f[i].name);
  }
  return 0;
}

/* "0x" and 1 to 16 hex digits, as hd__json_put writes a session id. */
static int parse_session(const char *s, uint64_t *out) {
  if (s[0] != '0' || s[1] != 'x' || s[2] == '\0' || strlen(s) > 18)
    return -1;
  uint64_t u = 0;
  for (const char *p = s + 2; *p; p++) {
    int d = (*p >= '0' && *p <= '9')   ? *p - '0'
            : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
            : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
                                       : -1;
    if (d < 0)
      return -1;
    u = u << 4 | (uint64_t)d;
  }
  *out = u;
  return 0;
}

static int get_one(const hd__jfield_t *f, const json_t *v, char *base, int code,
                   char *err, size_t n) {
  if (is_str(f->kind) || f->kind == HD__JF_SESSION) {
    if (!json_is_string(v))
      return hd__json_fail(code, err, n,
                           "field '%s': expected a string, got %s", f->name,
                           hd__json_type_name(v));
  } else if (f->kind == HD__JF_BOOL) {
    if (!json_is_boolean(v))
      return hd__json_fail(code, err, n,
                           "field '%s': expected true or false, got %s",
                           f->name, hd__json_type_name(v));
  } else if (!json_is_integer(v) && f->kind == HD__JF_PARTS) {
    return hd__json_fail(code, err, n,
                         "field '%s': expected an integer from 1 to %d, got %s",
                         f->name, HD__JSON_MAX_PARTS, hd__json_type_name(v));
  } else if (!json_is_integer(v)) {
    return hd__json_fail(code, err, n,
                         "field '%s': expected a non-negative integer, got %s",
                         f->name, hd__json_type_name(v));
  }
  if (is_str(f->kind)) {
    /* jansson refuses \u0000 unless asked (JSON_ALLOW_NUL), so the length
     * is the C string's. */
    size_t len = json_string_length(v);
    if (len >= f->size)
      return hd__json_fail(code, err, n, "field '%s': longer than %zu bytes",
                           f->name, f->size - 1);
    memcpy(base + f->off, json_string_value(v), len + 1);
    return check_str(f, base + f->off, code, err, n);
  }
  if (f->kind == HD__JF_SESSION) {
    uint64_t u;
    if (parse_session(json_string_value(v), &u) < 0)
      return hd__json_fail(code, err, n,
                           "field '%s': '%.40s' is not a session id (0x and "
                           "up to 16 hex digits)",
                           f->name, json_string_value(v));
    memcpy(base + f->off, &u, sizeof(u));
    return 0;
  }
  if (f->kind == HD__JF_BOOL) {
    int b = json_is_true(v);
    memcpy(base + f->off, &b, sizeof(b));
    return 0;
  }
  json_int_t i = json_integer_value(v);
  if (i < 0)
    return hd__json_fail(code, err, n,
                         "field '%s': %" JSON_INTEGER_FORMAT " is negative",
                         f->name, i);
  if (f->kind == HD__JF_PARTS) {
    if (i < 1 || i > HD__JSON_MAX_PARTS)
      return hd__json_fail(code, err, n,
                           "field '%s': %" JSON_INTEGER_FORMAT
                           " is not between 1 and %d",
                           f->name, i, HD__JSON_MAX_PARTS);
    uint32_t u32 = (uint32_t)i;
    memcpy(base + f->off, &u32, sizeof(u32));
    return 0;
  }
  uint64_t u = (uint64_t)i;
  memcpy(base + f->off, &u, sizeof(u));
  return 0;
}

int hd__json_get(const json_t *o, const hd__jfield_t *f, size_t nf, void *base,
                 int code, char *err, size_t n) {
  for (size_t i = 0; i < nf; i++) {
    json_t *v = json_object_get(o, f[i].name);
    if (v == NULL)
      return hd__json_fail(code, err, n, "missing field '%s'", f[i].name);
    int rc = get_one(&f[i], v, base, code, err, n);
    if (rc != 0)
      return rc;
  }
  return 0;
}

char *hd__json_dump(const json_t *o, int code, char *err, size_t n) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (s == NULL)
    hd__json_fail(code, err, n, "out of memory");
  return s;
}

int hd__json_build_node(const hd__jfield_t *f, size_t nf, const void *base,
                        char **json, int code, char *err, size_t n) {
  json_t *o = json_object();
  *json = NULL;
  if (o == NULL)
    return hd__json_fail(code, err, n, "out of memory");
  int rc = hd__json_put(o, f, nf, base, code, err, n);
  if (rc == 0 && (*json = hd__json_dump(o, code, err, n)) == NULL)
    rc = code;
  json_decref(o);
  return rc;
}

int hd__json_parse_node(const hd__jfield_t *f, size_t nf, const char *data,
                        size_t len, void *out, size_t size, int code, char *err,
                        size_t n) {
  json_t *root = hd__json_load_object(data, len, code, err, n);
  if (root == NULL)
    return code;
  void *tmp = hd_calloc(1, size);
  int rc = hd__json_get(root, f, nf, tmp, code, err, n);
  json_decref(root);
  if (rc == 0)
    memcpy(out, tmp, size);
  free(tmp);
  return rc;
}
