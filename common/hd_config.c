/*
 * hd_config.c - the one walker from a libyaml document to a typed struct.
 */
#include "hd_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "hd_parse.h"

/* Keys deeper than this are refused: no herald config nests that far, and
 * the bound keeps hostile input from recursing without end. */
#define HD_CONF_MAX_DEPTH 8
#define HD_CONF_MAX_KEY 256

typedef struct {
  char *path;
  yaml_mark_t mark;
} hd_seen_t;

struct hd_conf_ctx {
  const char *name;
  const hd_conf_schema_t *schema;
  void *conf;
  yaml_document_t *doc;
  char *err;
  size_t errlen;
  int failed;
  hd_seen_t *seen; /* every key the file holds, in file order */
  size_t nseen, capseen;
  unsigned char *visited; /* per node: refuses aliases (and their blow-up) */
  size_t nnodes;
};

static int ctx_fail_at(hd_conf_ctx_t *ctx, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ctx_vfail(hd_conf_ctx_t *ctx, size_t line, size_t col,
                     const char *fmt, va_list ap) {
  if (ctx->failed)
    return HD_ECONFIG; /* the first error is the one reported */
  ctx->failed = 1;
  int n = snprintf(ctx->err, ctx->errlen, "%s:%zu:%zu: ", ctx->name, line, col);
  if (n >= 0 && (size_t)n < ctx->errlen)
    vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
  /* One line, always: a value quoted into the message may hold newlines. */
  for (char *p = ctx->err; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  return HD_ECONFIG;
}

static int ctx_fail_line(hd_conf_ctx_t *ctx, size_t line, size_t col,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ctx_fail_line(hd_conf_ctx_t *ctx, size_t line, size_t col,
                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = ctx_vfail(ctx, line, col, fmt, ap);
  va_end(ap);
  return rc;
}

static int ctx_fail_at(hd_conf_ctx_t *ctx, yaml_mark_t m, const char *fmt,
                       ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = ctx_vfail(ctx, m.line + 1, m.column + 1, fmt, ap);
  va_end(ap);
  return rc;
}

static const hd_seen_t *seen_find(hd_conf_ctx_t *ctx, const char *path) {
  for (size_t i = 0; i < ctx->nseen; i++)
    if (strcmp(ctx->seen[i].path, path) == 0)
      return &ctx->seen[i];
  return NULL;
}

int hd_conf_has(hd_conf_ctx_t *ctx, const char *key) {
  return seen_find(ctx, key) != NULL;
}

int hd_conf_error(hd_conf_ctx_t *ctx, const char *key, const char *fmt, ...) {
  yaml_mark_t m = {0, 0, 0};
  char buf[HD_CONF_MAX_KEY];
  snprintf(buf, sizeof(buf), "%s", key ? key : "");
  /* The key itself, else its nearest section present in the file. */
  for (;;) {
    const hd_seen_t *s = seen_find(ctx, buf);
    if (s != NULL) {
      m = s->mark;
      break;
    }
    char *dot = strrchr(buf, '.');
    if (dot == NULL)
      break;
    *dot = '\0';
  }
  va_list ap;
  va_start(ap, fmt);
  int rc = ctx_vfail(ctx, m.line + 1, m.column + 1, fmt, ap);
  va_end(ap);
  return rc;
}

/* ------------------------------------------------------------------ values */

static const hd_prop_t *prop_find(const hd_conf_schema_t *s, const char *k) {
  for (const hd_prop_t *p = s->props; p->key; p++)
    if (strcmp(p->key, k) == 0)
      return p;
  return NULL;
}

/* 1 if some property lives below `section` (so it is a mapping). */
static int is_section(const hd_conf_schema_t *s, const char *section) {
  size_t n = strlen(section);
  for (const hd_prop_t *p = s->props; p->key; p++)
    if (strncmp(p->key, section, n) == 0 && p->key[n] == '.')
      return 1;
  return 0;
}

static void fmt_size(uint64_t v, char *buf, size_t n) {
  static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (i < 4 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    i++;
  }
  snprintf(buf, n, "%" PRIu64 "%s", v, u[i]);
}

static void fmt_duration(uint64_t ms, char *buf, size_t n) {
  if (ms % 3600000 == 0 && ms)
    snprintf(buf, n, "%" PRIu64 "h", ms / 3600000);
  else if (ms % 60000 == 0 && ms)
    snprintf(buf, n, "%" PRIu64 "m", ms / 60000);
  else if (ms % 1000 == 0)
    snprintf(buf, n, "%" PRIu64 "s", ms / 1000);
  else
    snprintf(buf, n, "%" PRIu64 "ms", ms);
}

static int check_range(hd_conf_ctx_t *ctx, const hd_prop_t *p, yaml_mark_t m,
                       uint64_t v, int is_signed, int64_t sv) {
  char a[64], b[64];
  if (p->type == HD_T_INT) {
    if (sv < p->min || (p->max && sv > p->max))
      return ctx_fail_at(
          ctx, m, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
          p->key, sv, p->min, p->max);
    return 0;
  }
  (void)is_signed;
  void (*fmt)(uint64_t, char *, size_t) =
      p->type == HD_T_SIZE ? fmt_size : fmt_duration;
  if (v < (uint64_t)p->min) {
    fmt((uint64_t)p->min, a, sizeof(a));
    return ctx_fail_at(ctx, m, "%s: below the minimum of %s", p->key, a);
  }
  if (p->max && v > (uint64_t)p->max) {
    fmt((uint64_t)p->max, b, sizeof(b));
    return ctx_fail_at(ctx, m, "%s: above the maximum of %s", p->key, b);
  }
  return 0;
}

static int valid_hostport(const char *s) {
  char host[256];
  uint16_t port;
  return hd_parse_hostport(s, host, sizeof(host), &port) == 0;
}

/* A name as MySQL writes binlog files: letters, digits, '.', '_', '-'. */
static int valid_binlog_name(const char *s, size_t n) {
  if (n == 0 || n >= 256)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' &&
        s[i] != '-')
      return 0;
  return 1;
}

static int is_uuid(const char *s, size_t n) {
  if (n != 36)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return 0;
    } else if (!isxdigit((unsigned char)s[i])) {
      return 0;
    }
  }
  return 1;
}

static int skip_digits(const char **p) {
  const char *s = *p;
  while (isdigit((unsigned char)*s))
    s++;
  int any = s != *p;
  *p = s;
  return any;
}

/* MariaDB GTID list: D-S-N[,D-S-N...] */
static int valid_mariadb_gtid(const char *s) {
  for (;;) {
    if (!skip_digits(&s) || *s++ != '-' || !skip_digits(&s) || *s++ != '-' ||
        !skip_digits(&s))
      return 0;
    if (*s == '\0')
      return 1;
    if (*s++ != ',')
      return 0;
  }
}

/* MySQL GTID set: uuid:a[-b][:c[-d]...][,uuid:...] */
static int valid_mysql_gtid(const char *s) {
  for (;;) {
    while (*s == ' ')
      s++;
    if (!is_uuid(s, strnlen(s, 36)) || s[36] != ':')
      return 0;
    s += 36;
    while (*s == ':') {
      s++;
      if (!skip_digits(&s))
        return 0;
      if (*s == '-') {
        s++;
        if (!skip_digits(&s))
          return 0;
      }
    }
    if (*s == '\0')
      return 1;
    if (*s++ != ',')
      return 0;
  }
}

int hd_parse_start(const char *s, hd_start_t *out) {
  memset(out, 0, sizeof(*out));
  if (strcmp(s, "earliest") == 0) {
    out->kind = HD_START_EARLIEST;
    return 0;
  }
  if (strcmp(s, "latest") == 0) {
    out->kind = HD_START_LATEST;
    return 0;
  }
  const char *colon = strchr(s, ':');
  if (colon != NULL && !is_uuid(s, (size_t)(colon - s))) {
    uint64_t pos;
    if (!valid_binlog_name(s, (size_t)(colon - s)) ||
        hd_parse_u64(colon + 1, &pos) < 0 || pos < 4 || pos > UINT32_MAX)
      return HD_EPARSE;
    out->kind = HD_START_FILEPOS;
    memcpy(out->file, s, (size_t)(colon - s));
    out->pos = pos;
    return 0;
  }
  if (strlen(s) >= sizeof(out->gtid))
    return HD_ERANGE;
  if (!valid_mariadb_gtid(s) && !valid_mysql_gtid(s))
    return HD_EPARSE;
  out->kind = HD_START_GTID;
  strcpy(out->gtid, s);
  return 0;
}

static int scalar_is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  const char *v = (const char *)n->data.scalar.value;
  return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
         strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return "a scalar";
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "nothing";
  }
}

static void strlist_free(hd_strlist_t *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* Set one scalar (or, for lists, one element) text into the field. */
static int set_scalar(hd_conf_ctx_t *ctx, const hd_prop_t *p, yaml_mark_t m,
                      const char *v) {
  void *field = (char *)ctx->conf + p->off;
  uint64_t u;
  int64_t i;
  int rc;
  switch (p->type) {
  case HD_T_STRMAP: /* set_map(); a mapping has no scalar form */
    break;
  case HD_T_STR:
    if (*v == '\0')
      return ctx_fail_at(ctx, m, "%s: must not be empty", p->key);
    free(*(char **)field);
    *(char **)field = hd_strdup(v);
    return 0;
  case HD_T_INT:
    rc = hd_parse_i64(v, &i);
    if (rc < 0)
      return ctx_fail_at(ctx, m, "%s: expected an integer, got '%s'", p->key,
                         v);
    if (check_range(ctx, p, m, 0, 1, i) < 0)
      return HD_ECONFIG;
    *(int64_t *)field = i;
    return 0;
  case HD_T_SIZE:
    rc = hd_parse_size(v, &u);
    if (rc < 0)
      return ctx_fail_at(ctx, m,
                         "%s: expected a size such as 512KiB, 256MiB or 1GiB, "
                         "got '%s'%s",
                         p->key, v, rc == HD_ERANGE ? " (too large)" : "");
    if (check_range(ctx, p, m, u, 0, 0) < 0)
      return HD_ECONFIG;
    *(uint64_t *)field = u;
    return 0;
  case HD_T_DURATION:
    rc = hd_parse_duration_ms(v, &u);
    if (rc < 0)
      return ctx_fail_at(ctx, m,
                         "%s: expected a duration such as 500ms, 30s, 72h or "
                         "1h30m, got '%s'%s",
                         p->key, v, rc == HD_ERANGE ? " (too large)" : "");
    if (check_range(ctx, p, m, u, 0, 0) < 0)
      return HD_ECONFIG;
    *(uint64_t *)field = u;
    return 0;
  case HD_T_BOOL:
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0)
      *(int *)field = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
             strcmp(v, "off") == 0)
      *(int *)field = 0;
    else
      return ctx_fail_at(ctx, m, "%s: expected true or false, got '%s'", p->key,
                         v);
    return 0;
  case HD_T_HOSTPORT: {
    hd_hostport_t *hp = (hd_hostport_t *)field;
    rc = hd_parse_hostport(v, hp->host, sizeof(hp->host), &hp->port);
    if (rc < 0)
      return ctx_fail_at(ctx, m,
                         "%s: expected host:port (port 1-65535, IPv6 in "
                         "brackets), got '%s'",
                         p->key, v);
    return 0;
  }
  case HD_T_HOSTLIST: {
    /* A comma-separated string; each member must be host:port. */
    char *copy = hd_strdup(v), *save = NULL;
    int n = 0;
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save), n++) {
      while (*t == ' ')
        t++;
      if (!valid_hostport(t)) {
        int r = ctx_fail_at(ctx, m, "%s: '%s' is not host:port", p->key, t);
        free(copy);
        return r;
      }
    }
    free(copy);
    if (n == 0)
      return ctx_fail_at(ctx, m, "%s: must list at least one host:port",
                         p->key);
    char **dst = (char **)field;
    if (*dst == NULL) {
      *dst = hd_strdup(v);
    } else { /* list form: append */
      size_t a = strlen(*dst), b = strlen(v);
      *dst = hd_realloc(*dst, a + b + 2);
      (*dst)[a] = ',';
      memcpy(*dst + a + 1, v, b + 1);
    }
    return 0;
  }
  case HD_T_STRLIST: {
    if (*v == '\0')
      return ctx_fail_at(ctx, m, "%s: list items must not be empty", p->key);
    hd_strlist_t *l = (hd_strlist_t *)field;
    l->v = hd_realloc(l->v, (l->n + 1) * sizeof(char *));
    l->v[l->n++] = hd_strdup(v);
    return 0;
  }
  case HD_T_ENUM:
    for (int k = 0; p->enums[k]; k++) {
      if (strcmp(p->enums[k], v) == 0) {
        *(int *)field = k;
        return 0;
      }
    }
    {
      char opts[256] = "";
      for (int k = 0; p->enums[k]; k++) {
        if (k)
          strncat(opts, ", ", sizeof(opts) - strlen(opts) - 1);
        strncat(opts, p->enums[k], sizeof(opts) - strlen(opts) - 1);
      }
      return ctx_fail_at(ctx, m, "%s: expected one of %s, got '%s'", p->key,
                         opts, v);
    }
  case HD_T_START:
    if (hd_parse_start(v, (hd_start_t *)field) < 0)
      return ctx_fail_at(ctx, m,
                         "%s: expected earliest, latest, FILE:POS (e.g. "
                         "binlog.000003:4) or a GTID (0-1-42 or uuid:1-5), "
                         "got '%s'",
                         p->key, v);
    return 0;
  }
  return ctx_fail_at(ctx, m, "%s: unsupported type", p->key);
}

/* A mapping of non-empty scalars to non-empty scalars, each key once; the
 * keys are names, not config keys, so they are not walked. */
static int set_map(hd_conf_ctx_t *ctx, const hd_prop_t *p, yaml_node_t *n) {
  void *field = (char *)ctx->conf + p->off;
  hd_strlist_t *l = field;
  strlist_free(l);
  if (n->type != YAML_MAPPING_NODE)
    return ctx_fail_at(ctx, n->start_mark, "%s: expected a mapping, got %s",
                       p->key, node_kind(n));
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
       pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = yaml_document_get_node(ctx->doc, pr->key);
    yaml_node_t *v = yaml_document_get_node(ctx->doc, pr->value);
    if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE ||
        v->type != YAML_SCALAR_NODE)
      return ctx_fail_at(ctx, k ? k->start_mark : n->start_mark,
                         "%s: keys and values must be scalars", p->key);
    const char *ks = (const char *)k->data.scalar.value;
    const char *vs = (const char *)v->data.scalar.value;
    if (*ks == '\0' || *vs == '\0' || scalar_is_null(v))
      return ctx_fail_at(ctx, k->start_mark, "%s: empty name", p->key);
    for (size_t i = 0; i < l->n; i += 2)
      if (strcmp(l->v[i], ks) == 0)
        return ctx_fail_at(ctx, k->start_mark, "%s: '%s' twice", p->key, ks);
    l->v = hd_realloc(l->v, (l->n + 2) * sizeof(char *));
    l->v[l->n++] = hd_strdup(ks);
    l->v[l->n++] = hd_strdup(vs);
  }
  return 0;
}

static int set_value(hd_conf_ctx_t *ctx, const hd_prop_t *p, yaml_node_t *n) {
  if (scalar_is_null(n))
    return ctx_fail_at(ctx, n->start_mark, "%s: missing value", p->key);
  if (p->type == HD_T_STRLIST || p->type == HD_T_HOSTLIST) {
    /* The file's list replaces the default; it does not extend it. */
    void *field = (char *)ctx->conf + p->off;
    if (p->type == HD_T_STRLIST) {
      strlist_free((hd_strlist_t *)field);
    } else {
      free(*(char **)field);
      *(char **)field = NULL;
    }
    if (n->type == YAML_SCALAR_NODE && p->type == HD_T_HOSTLIST)
      return set_scalar(ctx, p, n->start_mark,
                        (const char *)n->data.scalar.value);
    if (n->type != YAML_SEQUENCE_NODE)
      return ctx_fail_at(ctx, n->start_mark, "%s: expected a list, got %s",
                         p->key, node_kind(n));
    if (n->data.sequence.items.top == n->data.sequence.items.start)
      return ctx_fail_at(ctx, n->start_mark, "%s: the list is empty", p->key);
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++) {
      yaml_node_t *e = yaml_document_get_node(ctx->doc, *it);
      if (e == NULL || e->type != YAML_SCALAR_NODE)
        return ctx_fail_at(ctx, e ? e->start_mark : n->start_mark,
                           "%s: list items must be scalars", p->key);
      if (set_scalar(ctx, p, e->start_mark,
                     (const char *)e->data.scalar.value) < 0)
        return HD_ECONFIG;
    }
    return 0;
  }
  if (p->type == HD_T_STRMAP)
    return set_map(ctx, p, n);
  if (n->type != YAML_SCALAR_NODE)
    return ctx_fail_at(ctx, n->start_mark, "%s: expected a scalar, got %s",
                       p->key, node_kind(n));
  return set_scalar(ctx, p, n->start_mark, (const char *)n->data.scalar.value);
}

/* ------------------------------------------------------------------- walk */

static int walk_mapping(hd_conf_ctx_t *ctx, yaml_node_t *map,
                        const char *prefix, int depth) {
  if (depth > HD_CONF_MAX_DEPTH)
    return ctx_fail_at(ctx, map->start_mark, "nesting too deep");
  for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
       pr < map->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = yaml_document_get_node(ctx->doc, pr->key);
    yaml_node_t *v = yaml_document_get_node(ctx->doc, pr->value);
    if (k == NULL || v == NULL)
      return ctx_fail_at(ctx, map->start_mark, "malformed mapping");
    if (k->type != YAML_SCALAR_NODE)
      return ctx_fail_at(ctx, k->start_mark, "keys must be plain names");
    /* The libyaml loader turns an alias into a second reference to the
     * same node. A node reached twice is an alias: refused, which also
     * stops "billion laughs" expansion before it starts. */
    size_t vi = (size_t)pr->value;
    if (vi < ctx->nnodes && ctx->visited[vi])
      return ctx_fail_at(ctx, k->start_mark,
                         "%s%s%s: YAML aliases are not supported in herald "
                         "configs",
                         prefix, *prefix ? "." : "",
                         (const char *)k->data.scalar.value);
    if (vi < ctx->nnodes)
      ctx->visited[vi] = 1;

    char path[HD_CONF_MAX_KEY];
    int pl = snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
                      (const char *)k->data.scalar.value);
    if (pl < 0 || (size_t)pl >= sizeof(path))
      return ctx_fail_at(ctx, k->start_mark, "key too long");
    if (seen_find(ctx, path))
      return ctx_fail_at(ctx, k->start_mark, "duplicate key '%s'", path);
    if (ctx->nseen == ctx->capseen) {
      ctx->capseen = ctx->capseen ? ctx->capseen * 2 : 32;
      ctx->seen = hd_realloc(ctx->seen, ctx->capseen * sizeof(hd_seen_t));
    }
    ctx->seen[ctx->nseen].path = hd_strdup(path);
    ctx->seen[ctx->nseen].mark = k->start_mark;
    ctx->nseen++;

    const hd_prop_t *p = prop_find(ctx->schema, path);
    if (p != NULL) {
      if (set_value(ctx, p, v) < 0)
        return HD_ECONFIG;
    } else if (is_section(ctx->schema, path)) {
      if (v->type != YAML_MAPPING_NODE)
        return ctx_fail_at(ctx, v->start_mark, "%s: expected a mapping, got %s",
                           path, node_kind(v));
      if (walk_mapping(ctx, v, path, depth + 1) < 0)
        return HD_ECONFIG;
    } else {
      return ctx_fail_at(ctx, k->start_mark, "unknown key '%s' in a %s config",
                         path, ctx->schema->kind);
    }
  }
  return 0;
}

static int apply_defaults(hd_conf_ctx_t *ctx) {
  static const yaml_mark_t m0 = {0, 0, 0};
  for (const hd_prop_t *p = ctx->schema->props; p->key; p++) {
    if (p->def == NULL)
      continue;
    if (set_scalar(ctx, p, m0, p->def) < 0) /* a bug in the table */
      return HD_ECONFIG;
  }
  return 0;
}

static int check_required(hd_conf_ctx_t *ctx) {
  for (const hd_prop_t *p = ctx->schema->props; p->key; p++)
    if (p->required && !seen_find(ctx, p->key))
      return hd_conf_error(ctx, p->key, "missing required key '%s'", p->key);
  return 0;
}

static void ctx_free(hd_conf_ctx_t *ctx) {
  for (size_t i = 0; i < ctx->nseen; i++)
    free(ctx->seen[i].path);
  free(ctx->seen);
  free(ctx->visited);
}

/* Defaults, then the document, then the cross-key checks. */
static int load_doc(hd_conf_ctx_t *ctx, yaml_node_t *root) {
  memset(ctx->conf, 0, ctx->schema->size);
  if (apply_defaults(ctx) < 0)
    return HD_ECONFIG;
  if (walk_mapping(ctx, root, "", 0) < 0)
    return HD_ECONFIG;
  if (check_required(ctx) < 0)
    return HD_ECONFIG;
  if (ctx->schema->validate && ctx->schema->validate(ctx, ctx->conf) < 0) {
    if (!ctx->failed) /* a validator that forgot to say why */
      hd_conf_error(ctx, NULL, "invalid %s config", ctx->schema->kind);
    return HD_ECONFIG;
  }
  return 0;
}

typedef struct {
  yaml_parser_t parser;
  yaml_document_t doc;
  int have_doc;
} hd_yaml_t;

/* Parse text into one document; exactly one is allowed. */
static int yaml_load(hd_conf_ctx_t *ctx, hd_yaml_t *y, const char *text,
                     size_t len, yaml_node_t **root) {
  memset(y, 0, sizeof(*y));
  if (!yaml_parser_initialize(&y->parser))
    return ctx_fail_line(ctx, 1, 1, "cannot initialise the YAML parser");
  yaml_parser_set_input_string(&y->parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&y->parser, &y->doc)) {
    yaml_mark_t m = y->parser.problem_mark;
    return ctx_fail_at(ctx, m, "YAML syntax error: %s%s%s",
                       y->parser.problem ? y->parser.problem : "unknown",
                       y->parser.context ? " " : "",
                       y->parser.context ? y->parser.context : "");
  }
  y->have_doc = 1;
  *root = yaml_document_get_root_node(&y->doc);
  if (*root == NULL)
    return ctx_fail_line(ctx, 1, 1, "the file is empty");
  if ((*root)->type != YAML_MAPPING_NODE)
    return ctx_fail_at(ctx, (*root)->start_mark,
                       "the top level must be a mapping of keys, got %s",
                       node_kind(*root));
  /* A second document in the same file would be ignored silently. */
  yaml_document_t extra;
  if (!yaml_parser_load(&y->parser, &extra)) {
    yaml_mark_t m = y->parser.problem_mark;
    return ctx_fail_at(ctx, m, "YAML syntax error: %s%s%s",
                       y->parser.problem ? y->parser.problem : "unknown",
                       y->parser.context ? " " : "",
                       y->parser.context ? y->parser.context : "");
  }
  yaml_node_t *r2 = yaml_document_get_root_node(&extra);
  if (r2 != NULL) {
    yaml_mark_t m = r2->start_mark;
    yaml_document_delete(&extra);
    return ctx_fail_at(ctx, m, "only one YAML document is allowed");
  }
  yaml_document_delete(&extra);
  ctx->doc = &y->doc;
  ctx->nnodes = (size_t)(y->doc.nodes.top - y->doc.nodes.start) + 1;
  ctx->visited = hd_calloc(ctx->nnodes, 1);
  return 0;
}

static void yaml_done(hd_yaml_t *y) {
  if (y->have_doc)
    yaml_document_delete(&y->doc);
  yaml_parser_delete(&y->parser);
}

static void ctx_init(hd_conf_ctx_t *ctx, const char *name, char *err,
                     size_t errlen) {
  memset(ctx, 0, sizeof(*ctx));
  ctx->name = name;
  ctx->err = err;
  ctx->errlen = errlen;
  if (errlen)
    err[0] = '\0';
}

int hd_config_load_string(const char *name, const char *text, size_t len,
                          const hd_conf_schema_t *schema, void *conf,
                          char *errstr, size_t errlen) {
  hd_conf_ctx_t ctx;
  hd_yaml_t y;
  yaml_node_t *root = NULL;
  ctx_init(&ctx, name, errstr, errlen);
  ctx.schema = schema;
  ctx.conf = conf;
  memset(conf, 0, schema->size);
  int rc = yaml_load(&ctx, &y, text, len, &root);
  if (rc == 0)
    rc = load_doc(&ctx, root);
  yaml_done(&y);
  ctx_free(&ctx);
  return rc;
}

/* Reads a whole file; NUL bytes are refused since YAML text has none. */
static int read_file(const char *path, char **out, size_t *outlen, char *err,
                     size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return HD_ECONFIG;
  }
  size_t cap = 4096, n = 0;
  char *buf = hd_malloc(cap);
  for (;;) {
    if (n == cap) {
      if (cap >= (16u << 20)) {
        snprintf(err, errlen, "%s: larger than 16 MiB: not a config file",
                 path);
        free(buf);
        fclose(f);
        return HD_ECONFIG;
      }
      cap *= 2;
      buf = hd_realloc(buf, cap);
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  if (ferror(f)) {
    snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    return HD_ECONFIG;
  }
  fclose(f);
  *out = buf;
  *outlen = n;
  return 0;
}

int hd_config_load_file(const char *path, const hd_conf_schema_t *schema,
                        void *conf, char *errstr, size_t errlen) {
  char *text;
  size_t len;
  memset(conf, 0, schema->size);
  if (read_file(path, &text, &len, errstr, errlen) < 0)
    return HD_ECONFIG;
  int rc = hd_config_load_string(path, text, len, schema, conf, errstr, errlen);
  free(text);
  return rc;
}

int hd_config_load_any(const char *path, const hd_conf_schema_t *const *schemas,
                       size_t nschemas, int *which, void *conf, char *errstr,
                       size_t errlen) {
  char *text;
  size_t len;
  hd_conf_ctx_t ctx;
  hd_yaml_t y;
  yaml_node_t *root = NULL;
  *which = -1;
  if (read_file(path, &text, &len, errstr, errlen) < 0)
    return HD_ECONFIG;
  ctx_init(&ctx, path, errstr, errlen);
  int rc = yaml_load(&ctx, &y, text, len, &root);
  if (rc == 0) {
    /* The kind is the first top-level key that names a program. */
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
         pr < root->data.mapping.pairs.top && *which < 0; pr++) {
      yaml_node_t *k = yaml_document_get_node(&y.doc, pr->key);
      if (k == NULL || k->type != YAML_SCALAR_NODE)
        continue;
      for (size_t i = 0; i < nschemas; i++)
        if (strcmp((const char *)k->data.scalar.value, schemas[i]->kind) == 0)
          *which = (int)i;
    }
    if (*which < 0) {
      char kinds[128] = "";
      for (size_t i = 0; i < nschemas; i++) {
        strncat(kinds, i ? ", " : "", sizeof(kinds) - strlen(kinds) - 1);
        strncat(kinds, schemas[i]->kind, sizeof(kinds) - strlen(kinds) - 1);
      }
      rc = ctx_fail_at(&ctx, root->start_mark,
                       "cannot tell what this config is for: it needs a "
                       "top-level section named one of: %s",
                       kinds);
    } else {
      ctx.schema = schemas[*which];
      ctx.conf = conf;
      rc = load_doc(&ctx, root);
    }
  }
  yaml_done(&y);
  ctx_free(&ctx);
  free(text);
  return rc;
}

void hd_config_free(const hd_conf_schema_t *schema, void *conf) {
  for (const hd_prop_t *p = schema->props; p->key; p++) {
    void *field = (char *)conf + p->off;
    if (p->type == HD_T_STR || p->type == HD_T_HOSTLIST) {
      free(*(char **)field);
      *(char **)field = NULL;
    } else if (p->type == HD_T_STRLIST || p->type == HD_T_STRMAP) {
      strlist_free((hd_strlist_t *)field);
    }
  }
}

static const char *type_name(const hd_prop_t *p) {
  switch (p->type) {
  case HD_T_STR:
    return "string";
  case HD_T_INT:
    return "integer";
  case HD_T_SIZE:
    return "size";
  case HD_T_DURATION:
    return "duration";
  case HD_T_BOOL:
    return "boolean";
  case HD_T_HOSTPORT:
    return "host:port";
  case HD_T_HOSTLIST:
    return "host:port list";
  case HD_T_STRLIST:
    return "list of strings";
  case HD_T_ENUM:
    return "one of";
  case HD_T_START:
    return "start position";
  case HD_T_STRMAP:
    return "mapping of names";
  }
  return "?";
}

void hd_config_print_doc(const hd_conf_schema_t *schema, FILE *out) {
  fprintf(out, "# %s configuration\n\n", schema->kind);
  fprintf(out, "| key | type | required | default | meaning |\n");
  fprintf(out, "|---|---|---|---|---|\n");
  for (const hd_prop_t *p = schema->props; p->key; p++) {
    fprintf(out, "| `%s` | %s", p->key, type_name(p));
    if (p->type == HD_T_ENUM)
      for (int k = 0; p->enums[k]; k++)
        fprintf(out, "%s`%s`", k ? ", " : " ", p->enums[k]);
    fprintf(out, " | %s | %s%s%s | %s |\n", p->required ? "yes" : "no",
            p->def ? "`" : "", p->def ? p->def : "-", p->def ? "`" : "",
            p->doc ? p->doc : "");
  }
}
