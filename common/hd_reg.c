/*
 * hd_reg.c - the registration node's JSON, with jansson.
 *
 * One table lists the fields: name, kind and place in hd_reg_t. Building
 * and parsing both walk it (hd_json_int.h), so the two cannot disagree on
 * a name or a type, and a field added to the table is written and read
 * alike.
 */
#include "hd_reg.h"

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

int hd_reg_build(const hd_reg_t *r, char **json, char *errstr, size_t errlen) {
  return hd__json_build_node(fields, NFIELDS, r, json, HD_EREG, errstr, errlen);
}

int hd_reg_parse(const char *data, size_t len, hd_reg_t *out, char *errstr,
                 size_t errlen) {
  return hd__json_parse_node(fields, NFIELDS, data, len, out, sizeof(*out),
                             HD_EREG, errstr, errlen);
}
