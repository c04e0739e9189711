/*
 * hd_group.c - paths and JSON of the consumer-group and coordinator nodes.
 *
 * The flat nodes (election, group, member, owner, checkpoint, drain) are
 * field
 * tables walked by hd_json.c, like the relay registration. The assignment
 * has maps and arrays of its own and is read here, with checks that make
 * a parsed assignment safe to act on: every partition granted to at most
 * one member, never both granted and pending, every index in range.
 */
#include "hd_group.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_json_int.h"
#include "hd_mem.h"

/* ------------------------------------------------------------- paths */

static int path(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int path(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  if (len < 0 || (size_t)len >= n) {
    if (n)
      buf[0] = '\0';
    return HD_ERANGE;
  }
  return 0;
}

#define G "/herald/%s/groups/%s"

int hd_path_election(char *buf, size_t n, const char *cluster) {
  return path(buf, n, "/herald/%s/coordinator/election", cluster);
}
int hd_path_election_prefix(char *buf, size_t n, const char *cluster) {
  return path(buf, n, "/herald/%s/coordinator/election/n_", cluster);
}
int hd_path_groups(char *buf, size_t n, const char *cluster) {
  return path(buf, n, "/herald/%s/groups", cluster);
}
int hd_path_group(char *buf, size_t n, const char *cluster, const char *group) {
  return path(buf, n, G, cluster, group);
}
int hd_path_members(char *buf, size_t n, const char *cluster,
                    const char *group) {
  return path(buf, n, G "/members", cluster, group);
}
int hd_path_member_prefix(char *buf, size_t n, const char *cluster,
                          const char *group, const char *agent_id) {
  return path(buf, n, G "/members/%s_", cluster, group, agent_id);
}
int hd_path_assignment(char *buf, size_t n, const char *cluster,
                       const char *group) {
  return path(buf, n, G "/assignment", cluster, group);
}
int hd_path_owners(char *buf, size_t n, const char *cluster,
                   const char *group) {
  return path(buf, n, G "/owners", cluster, group);
}
int hd_path_owner(char *buf, size_t n, const char *cluster, const char *group,
                  uint32_t p) {
  return path(buf, n, G "/owners/%" PRIu32, cluster, group, p);
}
int hd_path_checkpoints(char *buf, size_t n, const char *cluster,
                        const char *group) {
  return path(buf, n, G "/checkpoints", cluster, group);
}
int hd_path_checkpoint(char *buf, size_t n, const char *cluster,
                       const char *group, uint32_t p) {
  return path(buf, n, G "/checkpoints/%" PRIu32, cluster, group, p);
}

int hd_path_drains(char *buf, size_t n, const char *cluster,
                   const char *group) {
  return path(buf, n, G "/drain", cluster, group);
}
int hd_path_drain(char *buf, size_t n, const char *cluster, const char *group,
                  const char *agent_id) {
  return path(buf, n, G "/drain/%s", cluster, group, agent_id);
}

int hd_path_snapreq(char *buf, size_t n, const char *cluster,
                    const char *group) {
  return path(buf, n, G "/snapshot", cluster, group);
}

int hd_seq_name_split(const char *node, char *name, size_t n, int64_t *seq) {
  const char *us = strrchr(node, '_');
  if (us == NULL || us == node || strlen(us + 1) != 10)
    return HD_EGROUP;
  int64_t v = 0;
  for (const char *p = us + 1; *p; p++) {
    if (*p < '0' || *p > '9')
      return HD_EGROUP;
    v = v * 10 + (*p - '0');
  }
  size_t len = (size_t)(us - node);
  if (name != NULL) {
    if (len >= n)
      return HD_EGROUP;
    memcpy(name, node, len);
    name[len] = '\0';
  }
  if (seq != NULL)
    *seq = v;
  return 0;
}

/* Canonical decimal: what "%u" prints, so that one partition has one
 * name. */
static int parse_partition(const char *s, uint32_t partitions, uint32_t *p) {
  if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
    return HD_EGROUP;
  uint64_t v = 0;
  for (const char *c = s; *c; c++) {
    if (*c < '0' || *c > '9' || c - s >= 6)
      return HD_EGROUP;
    v = v * 10 + (uint64_t)(*c - '0');
  }
  if (v >= partitions)
    return HD_EGROUP;
  *p = (uint32_t)v;
  return 0;
}

int hd_partition_name_parse(const char *node, uint32_t partitions,
                            uint32_t *p) {
  return parse_partition(node, partitions, p);
}

/* ------------------------------------------------------- flat nodes */

#define S(t, f, k) HD__JF_STR(t, f, k)
#define N(t, f, k) HD__JF_NUM(t, f, k)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Each table in the order docs/zookeeper.md lists the fields, which is
 * also the order of the keys in the node. */
static const hd__jfield_t election_fields[] = {
    S(hd_election_t, id, HD__JF_NAME),
    S(hd_election_t, http, HD__JF_ADDR),
    S(hd_election_t, version, HD__JF_NAME),
    N(hd_election_t, started_ms, HD__JF_U64),
};
static const hd__jfield_t group_fields[] = {
    N(hd_group_t, partitions, HD__JF_PARTS),
    S(hd_group_t, source, HD__JF_NAME),
    N(hd_group_t, created_ms, HD__JF_U64),
};
static const hd__jfield_t member_fields[] = {
    S(hd_member_t, id, HD__JF_NAME),
    N(hd_member_t, session, HD__JF_SESSION),
    N(hd_member_t, partitions, HD__JF_PARTS),
    S(hd_member_t, source, HD__JF_NAME),
    S(hd_member_t, http, HD__JF_ADDR_OPT),
    S(hd_member_t, version, HD__JF_NAME),
    N(hd_member_t, joined_ms, HD__JF_U64),
};
static const hd__jfield_t owner_fields[] = {
    S(hd_owner_t, owner, HD__JF_NAME),
    N(hd_owner_t, epoch, HD__JF_U64),
    N(hd_owner_t, session, HD__JF_SESSION),
    N(hd_owner_t, since_ms, HD__JF_U64),
};
static const hd__jfield_t checkpoint_fields[] = {
    N(hd_checkpoint_t, scn, HD__JF_U64),
    N(hd_checkpoint_t, ts_ms, HD__JF_U64),
    N(hd_checkpoint_t, written_ms, HD__JF_U64),
    S(hd_checkpoint_t, owner, HD__JF_NAME),
    N(hd_checkpoint_t, epoch, HD__JF_U64),
    N(hd_checkpoint_t, windows, HD__JF_U64),
    N(hd_checkpoint_t, rows, HD__JF_U64),
};
static const hd__jfield_t progress_fields[] = {
    N(hd_ck_progress_t, tables_total, HD__JF_U64),
    N(hd_ck_progress_t, tables_done, HD__JF_U64),
    N(hd_ck_progress_t, chunks, HD__JF_U64),
    N(hd_ck_progress_t, rows, HD__JF_U64),
    N(hd_ck_progress_t, table_rows, HD__JF_U64),
    N(hd_ck_progress_t, table_rows_estimate, HD__JF_U64),
    N(hd_ck_progress_t, started_ms, HD__JF_U64),
    N(hd_ck_progress_t, ended_ms, HD__JF_U64),
};
static const hd__jfield_t snapreq_fields[] = {
    N(hd_snapreq_t, id, HD__JF_U64),
    S(hd_snapreq_t, tables, HD__JF_NAME),
    S(hd_snapreq_t, partitions, HD__JF_NAME),
    N(hd_snapreq_t, cancel, HD__JF_BOOL),
    N(hd_snapreq_t, restart, HD__JF_BOOL),
    N(hd_snapreq_t, requested_ms, HD__JF_U64),
};
static const hd__jfield_t drain_fields[] = {
    S(hd_drain_t, agent, HD__JF_NAME),
    N(hd_drain_t, session, HD__JF_SESSION),
    N(hd_drain_t, since_ms, HD__JF_U64),
};

/* One build and one parse function per flat node, all alike. */
#define FLAT_NODE(kind, type, table)                                           \
  int hd_##kind##_build(const type *v, char **json, char *errstr,              \
                        size_t errlen) {                                       \
    return hd__json_build_node(table, COUNT(table), v, json, HD_EGROUP,        \
                               errstr, errlen);                                \
  }                                                                            \
  int hd_##kind##_parse(const char *data, size_t len, type *out, char *errstr, \
                        size_t errlen) {                                       \
    return hd__json_parse_node(table, COUNT(table), data, len, out,            \
                               sizeof(*out), HD_EGROUP, errstr, errlen);       \
  }

FLAT_NODE(election, hd_election_t, election_fields)
FLAT_NODE(group, hd_group_t, group_fields)
FLAT_NODE(member, hd_member_t, member_fields)
FLAT_NODE(owner, hd_owner_t, owner_fields)

/* A checkpoint is a flat node with two optional fields: the snapshot's
 * state and position, present only while a snapshot was asked for. */
static const char *const ck_states[] = {NULL, "running", "done", "cancelled"};

const char *hd_ck_snapshot_state_name(uint32_t state) {
  return state >= 1 && state <= HD_CK_SNAPSHOT_CANCELLED ? ck_states[state]
                                                         : "none";
}

int hd_checkpoint_build(const hd_checkpoint_t *v, char **json, char *errstr,
                        size_t errlen) {
  json_t *o = json_object();
  *json = NULL;
  int rc = hd__json_put(o, checkpoint_fields, COUNT(checkpoint_fields), v,
                        HD_EGROUP, errstr, errlen);
  if (rc == 0 && v->snapshot_state) {
    if (v->snapshot_state > HD_CK_SNAPSHOT_CANCELLED ||
        memchr(v->snapshot, '\0', sizeof(v->snapshot)) == NULL)
      rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                         "field 'snapshot_state': %u is not a state",
                         v->snapshot_state);
    else {
      json_object_set_new(o, "snapshot_state",
                          json_string(ck_states[v->snapshot_state]));
      if (v->snapshot[0])
        json_object_set_new(o, "snapshot", json_string(v->snapshot));
      if (v->snapshot_id)
        json_object_set_new(o, "snapshot_id",
                            json_integer((json_int_t)v->snapshot_id));
      if (memchr(v->snapshot_tables, '\0', sizeof(v->snapshot_tables)) == NULL)
        rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                           "field 'snapshot_tables': unterminated");
      else if (v->snapshot_tables[0])
        json_object_set_new(o, "snapshot_tables",
                            json_string(v->snapshot_tables));
      json_t *pg = json_object();
      if (rc == 0)
        rc = hd__json_put(pg, progress_fields, COUNT(progress_fields),
                          &v->progress, HD_EGROUP, errstr, errlen);
      json_object_set_new(o, "snapshot_progress", pg);
    }
  }
  if (rc == 0 && (*json = hd__json_dump(o, HD_EGROUP, errstr, errlen)) == NULL)
    rc = HD_EGROUP;
  json_decref(o);
  return rc;
}

int hd_checkpoint_parse(const char *data, size_t len, hd_checkpoint_t *out,
                        char *errstr, size_t errlen) {
  json_t *root = hd__json_load_object(data, len, HD_EGROUP, errstr, errlen);
  if (root == NULL)
    return HD_EGROUP;
  hd_checkpoint_t *tmp = hd_calloc(1, sizeof(*tmp));
  int rc = hd__json_get(root, checkpoint_fields, COUNT(checkpoint_fields), tmp,
                        HD_EGROUP, errstr, errlen);
  json_t *st = json_object_get(root, "snapshot_state");
  json_t *pos = json_object_get(root, "snapshot");
  if (rc == 0 && st) {
    const char *name = json_is_string(st) ? json_string_value(st) : "";
    for (uint32_t i = 1; i <= HD_CK_SNAPSHOT_CANCELLED; i++)
      if (strcmp(name, ck_states[i]) == 0)
        tmp->snapshot_state = i;
    if (tmp->snapshot_state == 0)
      rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                         "field 'snapshot_state': expected running, done or "
                         "cancelled, got %s",
                         json_is_string(st) ? name : hd__json_type_name(st));
  }
  if (rc == 0 && pos) {
    const char *p = json_is_string(pos) ? json_string_value(pos) : NULL;
    size_t n = p ? strlen(p) : 0;
    if (p == NULL || n >= sizeof(tmp->snapshot) ||
        strspn(p, "0123456789abcdef") != n)
      rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                         "field 'snapshot': expected a position token (lower "
                         "case hex, below %zu characters)",
                         sizeof(tmp->snapshot));
    else
      memcpy(tmp->snapshot, p, n + 1);
  }
  json_t *id = json_object_get(root, "snapshot_id");
  if (rc == 0 && id) {
    if (!json_is_integer(id) || json_integer_value(id) < 0)
      rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                         "field 'snapshot_id': expected a non-negative "
                         "integer, got %s",
                         hd__json_type_name(id));
    else
      tmp->snapshot_id = (uint64_t)json_integer_value(id);
  }
  json_t *tb = json_object_get(root, "snapshot_tables");
  if (rc == 0 && tb) {
    const char *p = json_is_string(tb) ? json_string_value(tb) : NULL;
    if (p == NULL || strlen(p) >= sizeof(tmp->snapshot_tables))
      rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                         "field 'snapshot_tables': expected a string below "
                         "%zu bytes",
                         sizeof(tmp->snapshot_tables));
    else
      snprintf(tmp->snapshot_tables, sizeof(tmp->snapshot_tables), "%s", p);
  }
  /* Progress is only shown, never acted on: a node without it (an older
   * writer) reads as none so far. */
  json_t *pg = json_object_get(root, "snapshot_progress");
  if (rc == 0 && pg) {
    if (!json_is_object(pg))
      rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                         "field 'snapshot_progress': expected an object, "
                         "got %s",
                         hd__json_type_name(pg));
    else if (hd__json_get(pg, progress_fields, COUNT(progress_fields),
                          &tmp->progress, HD_EGROUP, errstr, errlen) != 0)
      rc = HD_EGROUP;
  }
  json_decref(root);
  if (rc == 0)
    memcpy(out, tmp, sizeof(*out));
  free(tmp);
  return rc;
}
FLAT_NODE(drain, hd_drain_t, drain_fields)

/* A partition list: "all", or comma-separated numbers and ranges a-b
 * below 65536. Each item goes to fn (lo, hi) unless fn is NULL. @returns
 * 0, or -1 when the list is not one. */
static int plist_walk(const char *s, int (*fn)(void *, uint32_t, uint32_t),
                      void *ud) {
  if (strcmp(s, "all") == 0)
    return fn ? fn(ud, 0, HD_GROUP_MAX_PARTITIONS - 1) : 0;
  const char *q = s;
  for (;;) {
    char *end;
    if (*q < '0' || *q > '9')
      return -1;
    unsigned long lo = strtoul(q, &end, 10), hi = lo;
    if (*end == '-') {
      q = end + 1;
      if (*q < '0' || *q > '9')
        return -1;
      hi = strtoul(q, &end, 10);
    }
    if (lo >= HD_GROUP_MAX_PARTITIONS || hi >= HD_GROUP_MAX_PARTITIONS ||
        hi < lo)
      return -1;
    if (fn && fn(ud, (uint32_t)lo, (uint32_t)hi))
      return 1;
    if (*end == '\0')
      return 0;
    if (*end != ',')
      return -1;
    q = end + 1;
  }
}

static int plist_hit(void *ud, uint32_t lo, uint32_t hi) {
  uint32_t p = *(const uint32_t *)ud;
  return p >= lo && p <= hi;
}

int hd_snapreq_has(const hd_snapreq_t *r, uint32_t p) {
  return plist_walk(r->partitions, plist_hit, &p) == 1;
}

int hd_snapreq_build(const hd_snapreq_t *r, char **json, char *errstr,
                     size_t errlen) {
  *json = NULL;
  if (memchr(r->partitions, '\0', sizeof(r->partitions)) == NULL ||
      plist_walk(r->partitions, NULL, NULL) != 0)
    return hd__json_fail(HD_EGROUP, errstr, errlen,
                         "field 'partitions': expected \"all\" or a list "
                         "like \"0,3,8-11\" below %d",
                         HD_GROUP_MAX_PARTITIONS);
  return hd__json_build_node(snapreq_fields, COUNT(snapreq_fields), r, json,
                             HD_EGROUP, errstr, errlen);
}

int hd_snapreq_parse(const char *data, size_t len, hd_snapreq_t *out,
                     char *errstr, size_t errlen) {
  hd_snapreq_t *tmp = hd_calloc(1, sizeof(*tmp));
  int rc = hd__json_parse_node(snapreq_fields, COUNT(snapreq_fields), data, len,
                               tmp, sizeof(*tmp), HD_EGROUP, errstr, errlen);
  if (rc == 0 && plist_walk(tmp->partitions, NULL, NULL) != 0)
    rc = hd__json_fail(HD_EGROUP, errstr, errlen,
                       "field 'partitions': expected \"all\" or a list like "
                       "\"0,3,8-11\" below %d, got '%s'",
                       HD_GROUP_MAX_PARTITIONS, tmp->partitions);
  if (rc == 0)
    memcpy(out, tmp, sizeof(*out));
  free(tmp);
  return rc;
}

/* -------------------------------------------------------- assignment */

static const hd__jfield_t assignment_fields[] = {
    N(hd_assignment_t, version, HD__JF_U64),
    N(hd_assignment_t, partitions, HD__JF_PARTS),
    S(hd_assignment_t, leader, HD__JF_NAME),
    N(hd_assignment_t, updated_ms, HD__JF_U64),
};

#define FAIL(...) hd__json_fail(HD_EGROUP, err, n, __VA_ARGS__)

int hd_assignment_init(hd_assignment_t *a, uint32_t partitions) {
  memset(a, 0, sizeof(*a));
  if (partitions < 1 || partitions > HD_GROUP_MAX_PARTITIONS)
    return HD_ERANGE;
  a->partitions = partitions;
  a->owner = hd_malloc(partitions * sizeof(*a->owner));
  a->pending = hd_malloc(partitions * sizeof(*a->pending));
  a->epochs = hd_calloc(partitions, sizeof(*a->epochs));
  for (uint32_t p = 0; p < partitions; p++)
    a->owner[p] = a->pending[p] = -1;
  return 0;
}

void hd_assignment_free(hd_assignment_t *a) {
  if (a == NULL)
    return;
  for (size_t i = 0; i < a->nmembers; i++)
    free(a->members[i]);
  free(a->members);
  free(a->owner);
  free(a->pending);
  free(a->epochs);
  memset(a, 0, sizeof(*a));
}

int hd_assignment_copy(hd_assignment_t *dst, const hd_assignment_t *src) {
  *dst = *src;
  size_t np = src->partitions;
  dst->members = hd_malloc(src->nmembers * sizeof(char *));
  for (size_t i = 0; i < src->nmembers; i++)
    dst->members[i] = hd_strdup(src->members[i]);
  dst->owner = hd_malloc(np * sizeof(*dst->owner));
  dst->pending = hd_malloc(np * sizeof(*dst->pending));
  dst->epochs = hd_malloc(np * sizeof(*dst->epochs));
  memcpy(dst->owner, src->owner, np * sizeof(*dst->owner));
  memcpy(dst->pending, src->pending, np * sizeof(*dst->pending));
  memcpy(dst->epochs, src->epochs, np * sizeof(*dst->epochs));
  return 0;
}

int32_t hd_assignment_find(const hd_assignment_t *a, const char *id) {
  for (size_t i = 0; i < a->nmembers; i++)
    if (strcmp(a->members[i], id) == 0)
      return (int32_t)i;
  return -1;
}

int32_t hd_assignment_add(hd_assignment_t *a, const char *id) {
  int32_t m = hd_assignment_find(a, id);
  if (m >= 0)
    return m;
  a->members = hd_realloc(a->members, (a->nmembers + 1) * sizeof(char *));
  a->members[a->nmembers] = hd_strdup(id);
  return (int32_t)a->nmembers++;
}

uint32_t hd_assignment_count(const hd_assignment_t *a, int32_t m) {
  uint32_t c = 0;
  for (uint32_t p = 0; p < a->partitions; p++)
    c += a->owner[p] == m;
  return c;
}

/* The id of the member at index i, or NULL for -1. */
static const char *id_at(const hd_assignment_t *a, int32_t i) {
  return i < 0 ? NULL : a->members[i];
}

static int same_id(const char *x, const char *y) {
  return (x == NULL && y == NULL) || (x && y && strcmp(x, y) == 0);
}

int hd_assignment_same(const hd_assignment_t *a, const hd_assignment_t *b) {
  if (a->partitions != b->partitions || a->nmembers != b->nmembers)
    return 0;
  for (size_t i = 0; i < a->nmembers; i++)
    if (hd_assignment_find(b, a->members[i]) < 0)
      return 0;
  for (uint32_t p = 0; p < a->partitions; p++)
    if (a->epochs[p] != b->epochs[p] ||
        !same_id(id_at(a, a->owner[p]), id_at(b, b->owner[p])) ||
        !same_id(id_at(a, a->pending[p]), id_at(b, b->pending[p])))
      return 0;
  return 1;
}

/* What build checks before it writes anything: the same rules as parse. */
static int check_members(const hd_assignment_t *a, char *err, size_t n) {
  for (size_t i = 0; i < a->nmembers; i++) {
    const char *id = a->members[i];
    if (id == NULL || id[0] == '\0')
      return FAIL("field 'members': member %zu has an empty id", i);
    if (strlen(id) >= HD_REG_NAME_MAX)
      return FAIL("field 'members': id '%.40s...' longer than %d bytes", id,
                  HD_REG_NAME_MAX - 1);
    json_t *utf8 = json_string(id);
    if (utf8 == NULL)
      return FAIL("field 'members': member %zu: id not valid UTF-8", i);
    json_decref(utf8);
    for (size_t k = 0; k < i; k++)
      if (strcmp(a->members[k], id) == 0)
        return FAIL("field 'members': '%s' twice", id);
  }
  for (uint32_t p = 0; p < a->partitions; p++) {
    int32_t o = a->owner[p], q = a->pending[p];
    if (o < -1 || o >= (int32_t)a->nmembers)
      return FAIL("field 'members': partition %" PRIu32
                  " granted to member index %" PRId32 " of %zu",
                  p, o, a->nmembers);
    if (q < -1 || q >= (int32_t)a->nmembers)
      return FAIL("field 'pending': partition %" PRIu32
                  " moves to member index %" PRId32 " of %zu",
                  p, q, a->nmembers);
    if (o >= 0 && q >= 0)
      return FAIL("field 'pending': partition %" PRIu32
                  " is both granted to '%s' and pending",
                  p, a->members[o]);
    if (a->epochs[p] > (uint64_t)INT64_MAX)
      return FAIL("field 'epochs': epoch of partition %" PRIu32 " above 2^63-1",
                  p);
  }
  return 0;
}

typedef struct {
  const char *id;
  size_t index;
} by_id_t;

static int cmp_by_id(const void *x, const void *y) {
  return strcmp(((const by_id_t *)x)->id, ((const by_id_t *)y)->id);
}

/* members (sorted by id), pending and epochs of a into o: one pass over
 * the partitions, whatever the number of members. */
static int put_lists(json_t *o, const hd_assignment_t *a, char *err, size_t n) {
  json_t *mem = json_object(), *pend = json_object(), *ep = json_array();
  int ok = mem && pend && ep;
  json_t **lists = hd_calloc(a->nmembers ? a->nmembers : 1, sizeof(json_t *));
  for (size_t i = 0; ok && i < a->nmembers; i++)
    ok = (lists[i] = json_array()) != NULL;
  for (uint32_t p = 0; ok && p < a->partitions; p++) {
    if (a->owner[p] >= 0)
      ok = json_array_append_new(lists[a->owner[p]], json_integer(p)) == 0;
    if (ok && a->pending[p] >= 0) {
      char key[16];
      snprintf(key, sizeof(key), "%" PRIu32, p);
      ok = json_object_set_new(pend, key,
                               json_string(a->members[a->pending[p]])) == 0;
    }
    if (ok)
      ok = json_array_append_new(ep, json_integer((json_int_t)a->epochs[p])) ==
           0;
  }
  by_id_t *order = hd_malloc((a->nmembers ? a->nmembers : 1) * sizeof(*order));
  for (size_t i = 0; i < a->nmembers; i++)
    order[i] = (by_id_t){a->members[i], i};
  qsort(order, a->nmembers, sizeof(*order), cmp_by_id);
  for (size_t i = 0; i < a->nmembers; i++) {
    json_t *list = lists[order[i].index];
    lists[order[i].index] = NULL;
    if (ok)
      ok = json_object_set_new(mem, order[i].id, list) == 0;
    else
      json_decref(list);
  }
  free(order);
  free(lists);
  if (ok)
    ok = json_object_set_new(o, "members", mem) == 0;
  else
    json_decref(mem);
  if (ok)
    ok = json_object_set_new(o, "pending", pend) == 0;
  else
    json_decref(pend);
  if (ok)
    ok = json_object_set_new(o, "epochs", ep) == 0;
  else
    json_decref(ep);
  return ok ? 0 : FAIL("out of memory");
}

int hd_assignment_build(const hd_assignment_t *a, char **json, char *err,
                        size_t n) {
  *json = NULL;
  int rc = check_members(a, err, n);
  if (rc != 0)
    return rc;
  json_t *o = json_object();
  if (o == NULL)
    return FAIL("out of memory");
  rc = hd__json_put(o, assignment_fields, COUNT(assignment_fields), a,
                    HD_EGROUP, err, n);
  if (rc == 0)
    rc = put_lists(o, a, err, n);
  if (rc == 0 && (*json = hd__json_dump(o, HD_EGROUP, err, n)) == NULL)
    rc = HD_EGROUP;
  json_decref(o);
  return rc;
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* members: {"id": [p, ...], ...} into a (members sorted, owner[] set). */
static int get_members(const json_t *o, hd_assignment_t *a, char *err,
                       size_t n) {
  const json_t *mem = json_object_get(o, "members");
  if (mem == NULL)
    return FAIL("missing field 'members'");
  if (!json_is_object(mem))
    return FAIL("field 'members': expected an object, got %s",
                hd__json_type_name(mem));
  const char *id;
  json_t *list;
  size_t nm = json_object_size(mem), i = 0;
  a->members = hd_calloc(nm, sizeof(char *));
  json_object_foreach((json_t *)mem, id, list) {
    if (id[0] == '\0')
      return FAIL("field 'members': a member id is empty");
    if (strlen(id) >= HD_REG_NAME_MAX)
      return FAIL("field 'members': id '%.40s...' longer than %d bytes", id,
                  HD_REG_NAME_MAX - 1);
    a->members[i++] = hd_strdup(id);
    a->nmembers = i;
  }
  /* Sorted, so that two readers of one node see the same indexes. */
  qsort(a->members, a->nmembers, sizeof(char *), cmp_str);
  for (i = 0; i < a->nmembers; i++) {
    list = json_object_get(mem, a->members[i]);
    if (!json_is_array(list))
      return FAIL("field 'members': '%s': expected an array, got %s",
                  a->members[i], hd__json_type_name(list));
    json_int_t prev = -1;
    size_t k;
    json_t *v;
    json_array_foreach(list, k, v) {
      if (!json_is_integer(v))
        return FAIL("field 'members': '%s': expected partition numbers, got "
                    "%s",
                    a->members[i], hd__json_type_name(v));
      json_int_t p = json_integer_value(v);
      if (p < 0 || p >= (json_int_t)a->partitions)
        return FAIL("field 'members': '%s': partition %" JSON_INTEGER_FORMAT
                    " is not below %" PRIu32,
                    a->members[i], p, a->partitions);
      if (p <= prev)
        return FAIL("field 'members': '%s': partitions not ascending "
                    "(%" JSON_INTEGER_FORMAT " after %" JSON_INTEGER_FORMAT ")",
                    a->members[i], p, prev);
      if (a->owner[p] >= 0)
        return FAIL("field 'members': partition %" JSON_INTEGER_FORMAT
                    " is in the lists of both '%s' and '%s'",
                    p, a->members[a->owner[p]], a->members[i]);
      a->owner[p] = (int32_t)i;
      prev = p;
    }
  }
  return 0;
}

/* pending: {"p": "id", ...}, after members. */
static int get_pending(const json_t *o, hd_assignment_t *a, char *err,
                       size_t n) {
  const json_t *pend = json_object_get(o, "pending");
  if (pend == NULL)
    return FAIL("missing field 'pending'");
  if (!json_is_object(pend))
    return FAIL("field 'pending': expected an object, got %s",
                hd__json_type_name(pend));
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)pend, key, v) {
    uint32_t p;
    if (parse_partition(key, a->partitions, &p) != 0)
      return FAIL("field 'pending': key '%.40s' is not a partition number "
                  "below %" PRIu32,
                  key, a->partitions);
    if (!json_is_string(v))
      return FAIL("field 'pending': partition %" PRIu32
                  ": expected a member id, got %s",
                  p, hd__json_type_name(v));
    int32_t m = hd_assignment_find(a, json_string_value(v));
    if (m < 0)
      return FAIL("field 'pending': partition %" PRIu32
                  " moves to '%.128s', which is not in 'members'",
                  p, json_string_value(v));
    if (a->owner[p] >= 0)
      return FAIL("field 'pending': partition %" PRIu32
                  " is also granted to '%s'",
                  p, a->members[a->owner[p]]);
    a->pending[p] = m;
  }
  return 0;
}

static int get_epochs(const json_t *o, hd_assignment_t *a, char *err,
                      size_t n) {
  const json_t *ep = json_object_get(o, "epochs");
  if (ep == NULL)
    return FAIL("missing field 'epochs'");
  if (!json_is_array(ep))
    return FAIL("field 'epochs': expected an array, got %s",
                hd__json_type_name(ep));
  if (json_array_size(ep) != a->partitions)
    return FAIL("field 'epochs': %zu entries for %" PRIu32 " partitions",
                json_array_size(ep), a->partitions);
  size_t k;
  json_t *v;
  json_array_foreach(ep, k, v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return FAIL(
          "field 'epochs': entry %zu: expected a non-negative "
          "integer, got %s",
          k, json_is_integer(v) ? "a negative one" : hd__json_type_name(v));
    a->epochs[k] = (uint64_t)json_integer_value(v);
  }
  return 0;
}

int hd_assignment_parse(const char *data, size_t len, hd_assignment_t *out,
                        char *err, size_t n) {
  json_t *root = hd__json_load_object(data, len, HD_EGROUP, err, n);
  if (root == NULL)
    return HD_EGROUP;
  hd_assignment_t head, a;
  memset(&head, 0, sizeof(head));
  memset(&a, 0, sizeof(a));
  int rc = hd__json_get(root, assignment_fields, COUNT(assignment_fields),
                        &head, HD_EGROUP, err, n);
  if (rc == 0) {
    hd_assignment_init(&a, head.partitions); /* in range: JF_PARTS */
    a.version = head.version;
    a.updated_ms = head.updated_ms;
    memcpy(a.leader, head.leader, sizeof(a.leader));
    rc = get_members(root, &a, err, n);
  }
  if (rc == 0)
    rc = get_pending(root, &a, err, n);
  if (rc == 0)
    rc = get_epochs(root, &a, err, n);
  json_decref(root);
  if (rc == 0)
    *out = a;
  else
    hd_assignment_free(&a);
  return rc;
}
