/*
 * hd_reg.c - the registration node's JSON, with jansson.
 *
 * One table lists the fields: name, kind and place in hd_reg_t. Building
 * and parsing both walk it, so the two cannot disagree on a name or a
 * type, and a field added to the table is written and read alike.
 */
#include "hd_reg.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hd_err.h"
#include "hd_parse.h"

typedef enum {
  F_NAME, /* non-empty string */
  F_ADDR, /* host:port, as hd_parse_hostport() reads it */
  F_DIAL, /* host:port a client can dial: no wildcard host */
  F_U64,  /* integer in [0, 2^63-1] */
  F_BOOL
} fkind_t;

typedef struct {
  const char *name;
  fkind_t kind;
  size_t off;
  size_t size; /* of the char array, for strings */
} field_t;

#define S(f, k)                                                                \
  { #f, k, offsetof(hd_reg_t, f), sizeof(((hd_reg_t *)0)->f) }
#define N(f, k)                                                                \
  { #f, k, offsetof(hd_reg_t, f), 0 }

/* In the order docs/zookeeper.md lists them, which is also the order of
 * the keys in the node. */
static const field_t fields[] = {
    S(id, F_NAME),
    S(source, F_NAME),
    S(advertise, F_DIAL),
    S(listen, F_ADDR),
    S(http, F_ADDR),
    S(version, F_NAME),
    N(source_server_id, F_U64),
    N(oldest_scn, F_U64),
    N(newest_scn, F_U64),
    N(newest_ts_ms, F_U64),
    N(connected, F_BOOL),
    N(updated_ms, F_U64),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static int fail(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hd_verrorf(err, n, HD_EREG, fmt, ap);
  va_end(ap);
  return HD_EREG;
}

/* The checks a string value passes, on either side. */
static int check_str(const field_t *f, const char *s, char *err, size_t n) {
  char host[256];
  uint16_t port;
  if (s[0] == '\0')
    return fail(err, n, "field '%s': must not be empty", f->name);
  if (f->kind == F_NAME)
    return 0;
  if (hd_parse_hostport(s, host, sizeof(host), &port) < 0)
    return fail(err, n,
                "field '%s': '%.280s' is not host:port (port 1-65535, IPv6 "
                "in brackets)",
                f->name, s);
  if (f->kind == F_DIAL && hd_host_is_wildcard(host))
    return fail(err, n,
                "field '%s': '%.280s' is a wildcard address, which no client "
                "can dial",
                f->name, s);
  return 0;
}

int hd_reg_build(const hd_reg_t *r, char **json, char *errstr, size_t errlen) {
  const char *base = (const char *)r;
  json_t *o = json_object();
  int rc = 0;
  *json = NULL;
  if (o == NULL)
    return fail(errstr, errlen, "out of memory");
  for (size_t i = 0; i < NFIELDS && rc == 0; i++) {
    const field_t *f = &fields[i];
    json_t *v = NULL;
    uint64_t u;
    int b;
    switch (f->kind) {
    case F_NAME:
    case F_ADDR:
    case F_DIAL:
      if (memchr(base + f->off, '\0', f->size) == NULL) {
        rc = fail(errstr, errlen, "field '%s': not NUL-terminated", f->name);
        break;
      }
      rc = check_str(f, base + f->off, errstr, errlen);
      if (rc == 0 && (v = json_string(base + f->off)) == NULL)
        rc = fail(errstr, errlen, "field '%s': not valid UTF-8", f->name);
      break;
    case F_U64:
      memcpy(&u, base + f->off, sizeof(u));
      /* JSON has no unsigned type and jansson's integers are signed 64
       * bits: a value above that range is refused, never wrapped. */
      if (u > (uint64_t)INT64_MAX)
        rc = fail(errstr, errlen,
                  "field '%s': %" PRIu64 " is above 2^63-1, the largest "
                  "integer the node holds",
                  f->name, u);
      else
        v = json_integer((json_int_t)u);
      break;
    case F_BOOL:
      memcpy(&b, base + f->off, sizeof(b));
      v = json_boolean(b);
      break;
    }
    if (rc == 0 && (v == NULL || json_object_set_new(o, f->name, v) < 0))
      rc = fail(errstr, errlen, "field '%s': out of memory", f->name);
  }
  if (rc == 0) {
    *json = json_dumps(o, JSON_COMPACT);
    if (*json == NULL)
      rc = fail(errstr, errlen, "out of memory");
  }
  json_decref(o);
  return rc;
}

static const char *type_name(const json_t *v) {
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

static int parse_field(const field_t *f, json_t *v, hd_reg_t *r, char *err,
                       size_t n) {
  char *base = (char *)r;
  switch (f->kind) {
  case F_NAME:
  case F_ADDR:
  case F_DIAL: {
    if (!json_is_string(v))
      return fail(err, n, "field '%s': expected a string, got %s", f->name,
                  type_name(v));
    /* jansson refuses \u0000 unless asked (JSON_ALLOW_NUL), so the length
     * is the C string's. */
    size_t len = json_string_length(v);
    if (len >= f->size)
      return fail(err, n, "field '%s': longer than %zu bytes", f->name,
                  f->size - 1);
    memcpy(base + f->off, json_string_value(v), len + 1);
    return check_str(f, base + f->off, err, n);
  }
  case F_U64: {
    if (!json_is_integer(v))
      return fail(err, n, "field '%s': expected a non-negative integer, got %s",
                  f->name, type_name(v));
    json_int_t i = json_integer_value(v);
    if (i < 0)
      return fail(err, n, "field '%s': %" JSON_INTEGER_FORMAT " is negative",
                  f->name, i);
    uint64_t u = (uint64_t)i;
    memcpy(base + f->off, &u, sizeof(u));
    return 0;
  }
  case F_BOOL: {
    if (!json_is_boolean(v))
      return fail(err, n, "field '%s': expected true or false, got %s", f->name,
                  type_name(v));
    int b = json_is_true(v);
    memcpy(base + f->off, &b, sizeof(b));
    return 0;
  }
  }
  return fail(err, n, "field '%s': unknown kind", f->name);
}

int hd_reg_parse(const char *data, size_t len, hd_reg_t *out, char *errstr,
                 size_t errlen) {
  json_error_t je;
  /* Two values for one key would leave it to the parser which one counts:
   * refused, like duplicate keys in herald's configs. */
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL)
    return fail(errstr, errlen, "not JSON: %s (line %d, column %d)", je.text,
                je.line, je.column);
  int rc = 0;
  hd_reg_t r;
  memset(&r, 0, sizeof(r));
  if (!json_is_object(root))
    rc =
        fail(errstr, errlen, "expected a JSON object, got %s", type_name(root));
  for (size_t i = 0; i < NFIELDS && rc == 0; i++) {
    json_t *v = json_object_get(root, fields[i].name);
    if (v == NULL)
      rc = fail(errstr, errlen, "missing field '%s'", fields[i].name);
    else
      rc = parse_field(&fields[i], v, &r, errstr, errlen);
  }
  json_decref(root);
  if (rc == 0)
    *out = r;
  return rc;
}
