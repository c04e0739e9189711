/*
 * herald_conf.c - libherald's configuration: the keys of
 * herald_conf_set(), their checks and defaults, and the copy a client
 * keeps.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_mem.h"
#include "hd_parse.h"
#include "herald_int.h"

herald_conf_t *herald_conf_new(void) {
  herald_conf_t *c = hd_calloc(1, sizeof(*c));
  c->zk_timeout_ms = 10000;
  c->client_id = hd_strdup("libherald");
  c->pfn = HERALD__PARTITION_FUNCTION__PART_HASH;
  c->start_mode = HERALD__START_MODE__START_LATEST;
  c->stall_ms = 5000;
  c->connect_ms = 5000;
  c->backoff_max_ms = 5000;
  c->max_frame = 64u << 20;
  c->failover = 1;
  c->tls_verify = 1;
  return c;
}

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void herald_conf_free(herald_conf_t *c) {
  if (c == NULL)
    return;
  strv_free(c->relays, c->nrelays);
  free(c->zk_hosts);
  if (c->zk_auth)
    memset(c->zk_auth, 0, strlen(c->zk_auth));
  free(c->zk_auth);
  free(c->cluster);
  free(c->source);
  free(c->token);
  free(c->tls_ca);
  free(c->tls_cert);
  free(c->tls_key);
  free(c->client_id);
  strv_free(c->tables, c->ntables);
  strv_free(c->snap_tables, c->nsnap_tables);
  free(c->snap_pos);
  free(c->parts);
  free(c->key_column);
  for (size_t i = 0; i < c->nproj; i++) {
    free(c->proj[i].table);
    strv_free(c->proj[i].cols, c->proj[i].ncols);
  }
  free(c->proj);
  free(c);
}

static char **strv_dup(char *const *v, size_t n) {
  if (n == 0)
    return NULL;
  char **o = hd_malloc(n * sizeof(char *));
  for (size_t i = 0; i < n; i++)
    o[i] = hd_strdup(v[i]);
  return o;
}

static char *dup_or_null(const char *s) {
  return s ? hd_strdup(s) : NULL;
}

herald_conf_t *hl_conf_dup(const herald_conf_t *c) {
  herald_conf_t *o = hd_malloc(sizeof(*o));
  *o = *c;
  o->relays = strv_dup(c->relays, c->nrelays);
  o->zk_hosts = dup_or_null(c->zk_hosts);
  o->zk_auth = dup_or_null(c->zk_auth);
  o->cluster = dup_or_null(c->cluster);
  o->source = dup_or_null(c->source);
  o->token = dup_or_null(c->token);
  o->tls_ca = dup_or_null(c->tls_ca);
  o->tls_cert = dup_or_null(c->tls_cert);
  o->tls_key = dup_or_null(c->tls_key);
  o->client_id = dup_or_null(c->client_id);
  o->tables = strv_dup(c->tables, c->ntables);
  o->snap_tables = strv_dup(c->snap_tables, c->nsnap_tables);
  o->snap_pos = NULL;
  if (c->snap_pos_len) {
    o->snap_pos = hd_malloc(c->snap_pos_len);
    memcpy(o->snap_pos, c->snap_pos, c->snap_pos_len);
  }
  o->parts = NULL;
  if (c->nplist) {
    o->parts = hd_malloc(c->nplist * sizeof(uint32_t));
    memcpy(o->parts, c->parts, c->nplist * sizeof(uint32_t));
  }
  o->key_column = dup_or_null(c->key_column);
  o->proj = c->nproj ? hd_calloc(c->nproj, sizeof(hl_proj_t)) : NULL;
  for (size_t i = 0; i < c->nproj; i++) {
    o->proj[i].table = hd_strdup(c->proj[i].table);
    o->proj[i].cols = strv_dup(c->proj[i].cols, c->proj[i].ncols);
    o->proj[i].ncols = c->proj[i].ncols;
  }
  return o;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

static int fail(char *errstr, size_t errlen, const char *fmt, ...) {
  if (errstr && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errlen, fmt, ap);
    va_end(ap);
  }
  return HERALD_ERR_ARG;
}

/* Split a comma list into new strings; empty items are an error. */
static int split(const char *s, char ***out, size_t *n) {
  size_t cap = 4, k = 0;
  char **v = hd_malloc(cap * sizeof(char *));
  const char *p = s;
  for (;;) {
    size_t len = strcspn(p, ",");
    if (len == 0) {
      strv_free(v, k);
      return -1;
    }
    if (k == cap) {
      cap *= 2;
      v = hd_realloc(v, cap * sizeof(char *));
    }
    v[k++] = hd_strndup(p, len);
    if (p[len] == '\0')
      break;
    p += len + 1;
  }
  *out = v;
  *n = k;
  return 0;
}

/* "db.table" with neither part empty, '*' allowed: what the relay takes. */
static int table_pattern_ok(const char *s) {
  const char *dot = strchr(s, '.');
  return dot && dot != s && dot[1] && !strchr(dot + 1, '.');
}

/* A comma list of db.table patterns into *list (replacing it). */
static int set_patterns(const char *key, const char *v, char ***list, size_t *n,
                        char *errstr, size_t errlen) {
  char **l;
  size_t k;
  if (split(v, &l, &k) < 0)
    return fail(errstr, errlen, "%s: '%s' has an empty item", key, v);
  for (size_t i = 0; i < k; i++)
    if (!table_pattern_ok(l[i])) {
      fail(errstr, errlen, "%s: '%s' is not a db.table pattern", key, l[i]);
      strv_free(l, k);
      return HERALD_ERR_ARG;
    }
  strv_free(*list, *n);
  *list = l;
  *n = k;
  return HERALD_OK;
}

static int set_int(const char *key, const char *v, uint64_t lo, uint64_t hi,
                   uint64_t *out, char *errstr, size_t errlen) {
  if (hd_parse_u64(v, out) < 0 || *out < lo || *out > hi)
    return fail(errstr, errlen, "%s: '%s' is not an integer from %llu to %llu",
                key, v, (unsigned long long)lo, (unsigned long long)hi);
  return HERALD_OK;
}

int herald_conf_set(herald_conf_t *c, const char *key, const char *v,
                    char *errstr, size_t errlen) {
  if (c == NULL || key == NULL || v == NULL)
    return fail(errstr, errlen, "herald_conf_set: NULL argument");
  uint64_t n;
  if (strcmp(key, "relays") == 0) {
    char **list;
    size_t k;
    if (split(v, &list, &k) < 0)
      return fail(errstr, errlen, "relays: '%s' has an empty item", v);
    for (size_t i = 0; i < k; i++) {
      char host[256];
      uint16_t port;
      if (hd_parse_hostport(list[i], host, sizeof(host), &port) < 0) {
        fail(errstr, errlen, "relays: '%s' is not host:port", list[i]);
        strv_free(list, k);
        return HERALD_ERR_ARG;
      }
    }
    strv_free(c->relays, c->nrelays);
    c->relays = list;
    c->nrelays = k;
  } else if (strcmp(key, "zookeeper.hosts") == 0) {
    if (*v == '\0')
      return fail(errstr, errlen, "zookeeper.hosts: empty");
    free(c->zk_hosts);
    c->zk_hosts = hd_strdup(v);
  } else if (strcmp(key, "zookeeper.auth") == 0) {
    /* The value is a secret: never quoted back in a message. */
    const char *colon = strchr(v, ':');
    if (colon == NULL || colon == v || colon[1] == '\0')
      return fail(errstr, errlen, "zookeeper.auth: not user:password");
    if (c->zk_auth)
      memset(c->zk_auth, 0, strlen(c->zk_auth));
    free(c->zk_auth);
    c->zk_auth = hd_strdup(v);
  } else if (strcmp(key, "zookeeper.session_timeout_ms") == 0) {
    if (set_int(key, v, 1000, 600000, &n, errstr, errlen))
      return HERALD_ERR_ARG;
    c->zk_timeout_ms = (int)n;
  } else if (strcmp(key, "cluster") == 0 || strcmp(key, "source") == 0) {
    /* Path components: no '/', not empty. */
    if (*v == '\0' || strchr(v, '/'))
      return fail(errstr, errlen, "%s: '%s' is not a name (no '/', not empty)",
                  key, v);
    char **dst = key[0] == 'c' ? &c->cluster : &c->source;
    free(*dst);
    *dst = hd_strdup(v);
  } else if (strcmp(key, "token") == 0) {
    free(c->token);
    c->token = hd_strdup(v);
  } else if (strcmp(key, "tls") == 0 || strcmp(key, "tls_verify") == 0) {
    int *dst = key[3] == '\0' ? &c->tls : &c->tls_verify;
    if (strcmp(v, "true") == 0)
      *dst = 1;
    else if (strcmp(v, "false") == 0)
      *dst = 0;
    else
      return fail(errstr, errlen, "%s: '%s' is not true or false", key, v);
  } else if (strcmp(key, "tls_ca_file") == 0 ||
             strcmp(key, "tls_cert_file") == 0 ||
             strcmp(key, "tls_key_file") == 0) {
    char **dst = key[4] == 'c' && key[5] == 'a' ? &c->tls_ca
                 : key[4] == 'c'                ? &c->tls_cert
                                                : &c->tls_key;
    if (*v == '\0')
      return fail(errstr, errlen, "%s: empty file name", key);
    free(*dst);
    *dst = hd_strdup(v);
  } else if (strcmp(key, "client_id") == 0) {
    free(c->client_id);
    c->client_id = hd_strdup(v);
  } else if (strcmp(key, "tables") == 0) {
    return set_patterns(key, v, &c->tables, &c->ntables, errstr, errlen);
  } else if (strcmp(key, "snapshot") == 0) {
    if (strcmp(v, "on") == 0)
      c->snap = 1;
    else if (strcmp(v, "off") == 0)
      c->snap = 0;
    else
      return fail(errstr, errlen, "snapshot: '%s' is not on or off", v);
  } else if (strcmp(key, "snapshot.tables") == 0) {
    return set_patterns(key, v, &c->snap_tables, &c->nsnap_tables, errstr,
                        errlen);
  } else if (strcmp(key, "snapshot.position") == 0) {
    size_t len = strlen(v);
    uint8_t *b = len ? hd_malloc(len / 2 + 1) : NULL;
    for (size_t i = 0; i < len / 2; i++) {
      int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        free(b);
        return fail(errstr, errlen,
                    "snapshot.position: not a position from "
                    "herald_snapshot_position() (bad hex at %zu)",
                    2 * i);
      }
      b[i] = (uint8_t)(hi << 4 | lo);
    }
    Herald__SnapshotPosition *p =
        len % 2 == 0 && len
            ? herald__snapshot_position__unpack(NULL, len / 2, b)
            : NULL;
    if (len && p == NULL) {
      free(b);
      return fail(errstr, errlen,
                  "snapshot.position: not a position from "
                  "herald_snapshot_position()");
    }
    if (p)
      herald__snapshot_position__free_unpacked(p, NULL);
    free(c->snap_pos);
    c->snap_pos = b;
    c->snap_pos_len = len / 2;
  } else if (strcmp(key, "snapshot.chunk_rows") == 0) {
    if (set_int(key, v, 0, 1000000, &n, errstr, errlen))
      return HERALD_ERR_ARG;
    c->snap_chunk = (uint32_t)n;
  } else if (strcmp(key, "partition.count") == 0) {
    if (set_int(key, v, 1, 65536, &n, errstr, errlen))
      return HERALD_ERR_ARG;
    c->nparts = (uint32_t)n;
  } else if (strcmp(key, "partition.list") == 0) {
    char **list;
    size_t k;
    if (split(v, &list, &k) < 0)
      return fail(errstr, errlen, "partition.list: '%s' has an empty item", v);
    uint32_t *pv = hd_malloc(k * sizeof(uint32_t));
    for (size_t i = 0; i < k; i++) {
      if (hd_parse_u64(list[i], &n) < 0 || n >= 65536) {
        fail(errstr, errlen, "partition.list: '%s' is not a partition number",
             list[i]);
        strv_free(list, k);
        free(pv);
        return HERALD_ERR_ARG;
      }
      pv[i] = (uint32_t)n;
    }
    strv_free(list, k);
    free(c->parts);
    c->parts = pv;
    c->nplist = k;
  } else if (strcmp(key, "partition.function") == 0) {
    if (strcmp(v, "hash") == 0)
      c->pfn = HERALD__PARTITION_FUNCTION__PART_HASH;
    else if (strcmp(v, "mod") == 0)
      c->pfn = HERALD__PARTITION_FUNCTION__PART_MOD;
    else
      return fail(errstr, errlen, "partition.function: '%s' is not hash or mod",
                  v);
  } else if (strcmp(key, "partition.key_column") == 0) {
    free(c->key_column);
    c->key_column = *v ? hd_strdup(v) : NULL;
  } else if (strcmp(key, "projection") == 0) {
    const char *colon = strchr(v, ':');
    if (!colon || colon == v || !colon[1])
      return fail(errstr, errlen,
                  "projection: expected db.table:c1,c2 got '%s'", v);
    char *table = hd_strndup(v, (size_t)(colon - v));
    char **cols;
    size_t k;
    if (!table_pattern_ok(table) || split(colon + 1, &cols, &k) < 0) {
      fail(errstr, errlen, "projection: '%s' is not db.table:c1,c2", v);
      free(table);
      return HERALD_ERR_ARG;
    }
    c->proj = hd_realloc(c->proj, (c->nproj + 1) * sizeof(hl_proj_t));
    c->proj[c->nproj].table = table;
    c->proj[c->nproj].cols = cols;
    c->proj[c->nproj].ncols = k;
    c->nproj++;
  } else if (strcmp(key, "start") == 0) {
    if (strcmp(v, "earliest") == 0) {
      c->start_mode = HERALD__START_MODE__START_EARLIEST;
    } else if (strcmp(v, "latest") == 0) {
      c->start_mode = HERALD__START_MODE__START_LATEST;
    } else if (hd_parse_u64(v, &n) == 0) {
      c->start_mode = HERALD__START_MODE__START_SCN;
      c->start_scn = n;
    } else {
      return fail(errstr, errlen,
                  "start: '%s' is not earliest, latest or an SCN", v);
    }
  } else if (strcmp(key, "stall_timeout_ms") == 0) {
    if (set_int(key, v, 100, 3600000, &n, errstr, errlen))
      return HERALD_ERR_ARG;
    c->stall_ms = (int)n;
  } else if (strcmp(key, "connect_timeout_ms") == 0) {
    if (set_int(key, v, 100, 3600000, &n, errstr, errlen))
      return HERALD_ERR_ARG;
    c->connect_ms = (int)n;
  } else if (strcmp(key, "backoff_max_ms") == 0) {
    if (set_int(key, v, 10, 3600000, &n, errstr, errlen))
      return HERALD_ERR_ARG;
    c->backoff_max_ms = (int)n;
  } else if (strcmp(key, "failover") == 0) {
    if (strcmp(v, "true") == 0)
      c->failover = 1;
    else if (strcmp(v, "false") == 0)
      c->failover = 0;
    else
      return fail(errstr, errlen, "failover: '%s' is not true or false", v);
  } else if (strcmp(key, "max_frame_bytes") == 0) {
    if (hd_parse_size(v, &n) < 0 || n < (64u << 10) || n > (1u << 30))
      return fail(errstr, errlen,
                  "max_frame_bytes: '%s' is not a size from 64KiB to 1GiB", v);
    c->max_frame = (uint32_t)n;
  } else {
    return fail(errstr, errlen, "unknown key '%s'", key);
  }
  return HERALD_OK;
}

void herald_conf_set_error_cb(herald_conf_t *c, herald_error_cb *cb, void *ud) {
  c->ecb = cb;
  c->eud = ud;
}
