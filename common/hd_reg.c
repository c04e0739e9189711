/*
 * hd_reg.c - the registration node's JSON, with jansson.
 *
 * One table lists the fields: name, kind and place in hd_reg_t. Building
 * and parsing both walk it (hd_json_int.h), so the two cannot disagree on
 * a name or a type, and a field added to the table is written and read
 * alike.
 */
#include "hd_reg.h"

#include <string.h>

#include "hd_err.h"
#include "hd_json_int.h"

#define S(f, k) HD__JF_STR(hd_reg_t, f, k)
#define N(f, k) HD__JF_NUM(hd_reg_t, f, k)

/* In the order docs/zookeeper.md lists them, which is also the order of
 * the keys in the node. */
static const hd__jfield_t fields[] = {
    S(id, HD__JF_NAME),
    S(source, HD__JF_NAME),
    S(advertise, HD__JF_DIAL),
    S(listen, HD__JF_ADDR),
    S(http, HD__JF_ADDR),
    S(version, HD__JF_NAME),
    N(source_server_id, HD__JF_U64),
    N(oldest_scn, HD__JF_U64),
    N(newest_scn, HD__JF_U64),
    N(newest_ts_ms, HD__JF_U64),
    N(connected, HD__JF_BOOL),
    N(updated_ms, HD__JF_U64),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Fields added later: written only when set (a relay without TLS writes
 * the node it wrote before), absent reads as 0 (an older relay's node). */
static const hd__jfield_t opt_fields[] = {
    N(tls, HD__JF_BOOL),
};
#define NOPT (sizeof(opt_fields) / sizeof(opt_fields[0]))

int hd_reg_build(const hd_reg_t *r, char **json, char *errstr, size_t errlen) {
  json_t *o = json_object();
  *json = NULL;
  if (o == NULL)
    return hd__json_fail(HD_EREG, errstr, errlen, "out of memory");
  int rc = hd__json_put(o, fields, NFIELDS, r, HD_EREG, errstr, errlen);
  for (size_t i = 0; rc == 0 && i < NOPT; i++) {
    int v;
    memcpy(&v, (const char *)r + opt_fields[i].off, sizeof(v));
    if (v)
      rc = hd__json_put(o, &opt_fields[i], 1, r, HD_EREG, errstr, errlen);
  }
  if (rc == 0 && (*json = hd__json_dump(o, HD_EREG, errstr, errlen)) == NULL)
    rc = HD_EREG;
  json_decref(o);
  return rc;
}

int hd_reg_parse(const char *data, size_t len, hd_reg_t *out, char *errstr,
                 size_t errlen) {
  json_t *root = hd__json_load_object(data, len, HD_EREG, errstr, errlen);
  if (root == NULL)
    return HD_EREG;
  hd_reg_t tmp;
  memset(&tmp, 0, sizeof(tmp));
  int rc = hd__json_get(root, fields, NFIELDS, &tmp, HD_EREG, errstr, errlen);
  for (size_t i = 0; rc == 0 && i < NOPT; i++)
    if (json_object_get(root, opt_fields[i].name) != NULL)
      rc = hd__json_get(root, &opt_fields[i], 1, &tmp, HD_EREG, errstr, errlen);
  json_decref(root);
  if (rc == 0)
    *out = tmp;
  return rc;
}
