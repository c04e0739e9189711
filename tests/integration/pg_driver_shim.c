/*
 * pg_driver_shim.c - TEMPORARY, test only: db_sql_for(), db_quote() and
 * db_names_free() of sink_db.h for test_pg_driver, until the generic
 * layer (consumer-agent/sink_db.c) lands with the real ones. Drop this
 * file and link agent_core's sink_db.c instead at that merge.
 *
 * Only the PostgreSQL dialect ('p'), with the statement texts the real
 * db_sql_for() produces for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_mem.h"
#include "sink_db.h"

static void put(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*cap - *len < n + 1) {
    *cap = *cap * 2 + n + 64;
    *buf = hd_realloc(*buf, *cap);
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
}

void db_quote(char **buf, size_t *len, size_t *cap, const char *name,
              int dialect) {
  char q = dialect == 'm' ? '`' : '"';
  put(buf, len, cap, &q, 1);
  for (const char *p = name; *p; p++) {
    put(buf, len, cap, p, 1);
    if (*p == q)
      put(buf, len, cap, p, 1);
  }
  put(buf, len, cap, &q, 1);
}

void db_names_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

static void s_lit(sbuf_t *b, const char *s) {
  put(&b->p, &b->len, &b->cap, s, strlen(s));
}

static void s_table(sbuf_t *b, const db_shape_t *sh) {
  db_quote(&b->p, &b->len, &b->cap, sh->t->dst_ns, 'p');
  s_lit(b, ".");
  db_quote(&b->p, &b->len, &b->cap, sh->t->dst_name, 'p');
}

/* cols[0..n) joined by sep, each as "name" op $p (p from param on), or
 * the name alone (op NULL), or the parameter alone (cols NULL). */
static void s_list(sbuf_t *b, const db_shape_t *sh, const uint32_t *cols,
                   size_t n, const char *sep, const char *op, size_t param) {
  for (size_t i = 0; i < n; i++) {
    s_lit(b, i ? sep : "");
    if (cols)
      db_quote(&b->p, &b->len, &b->cap, sh->t->cols[cols[i]].def.name, 'p');
    if (op) {
      char num[32];
      snprintf(num, sizeof(num), "%s$%zu", op, param + i);
      s_lit(b, num);
    }
  }
}

static void s_insert(sbuf_t *b, const db_shape_t *sh) {
  s_lit(b, "INSERT INTO ");
  s_table(b, sh);
  s_lit(b, " (");
  s_list(b, sh, sh->set, sh->nset, ", ", NULL, 0);
  s_lit(b, ") VALUES (");
  s_list(b, sh, NULL, sh->nset, ", ", "", 1);
  s_lit(b, ")");
}

/* " WHERE ctid = (SELECT ctid FROM t WHERE a IS NOT DISTINCT FROM $n ...
 * LIMIT 1)", the where[] values after the set[] ones. */
static void s_ctid(sbuf_t *b, const db_shape_t *sh) {
  s_lit(b, " WHERE ctid = (SELECT ctid FROM ");
  s_table(b, sh);
  s_lit(b, " WHERE ");
  s_list(b, sh, sh->where, sh->nwhere, " AND ", " IS NOT DISTINCT FROM ",
         sh->nset + 1);
  s_lit(b, " LIMIT 1)");
}

char *db_sql_for(const db_shape_t *sh, int dialect) {
  if (dialect != 'p')
    abort(); /* the shim knows PostgreSQL only */
  sbuf_t b = {0};
  switch (sh->kind) {
  case DB_UPSERT: {
    s_insert(&b, sh);
    s_lit(&b, " ON CONFLICT (");
    s_list(&b, sh, sh->t->pk, sh->t->npk, ", ", NULL, 0);
    s_lit(&b, ") DO ");
    int any = 0;
    for (size_t i = 0; i < sh->nset; i++) {
      int key = 0;
      for (size_t k = 0; k < sh->t->npk; k++)
        key |= sh->t->pk[k] == sh->set[i];
      if (key)
        continue;
      s_lit(&b, any++ ? ", " : "UPDATE SET ");
      s_list(&b, sh, sh->set + i, 1, "", NULL, 0);
      s_lit(&b, " = EXCLUDED.");
      s_list(&b, sh, sh->set + i, 1, "", NULL, 0);
    }
    if (!any)
      s_lit(&b, "NOTHING");
    break;
  }
  case DB_DELETE:
    s_lit(&b, "DELETE FROM ");
    s_table(&b, sh);
    s_lit(&b, " WHERE ");
    s_list(&b, sh, sh->where, sh->nwhere, " AND ", " = ", sh->nset + 1);
    break;
  case DB_INSERT:
    s_insert(&b, sh);
    break;
  case DB_UPDATE_ROW:
    s_lit(&b, "UPDATE ");
    s_table(&b, sh);
    s_lit(&b, " SET ");
    s_list(&b, sh, sh->set, sh->nset, ", ", " = ", 1);
    s_ctid(&b, sh);
    break;
  default: /* DB_DELETE_ROW */
    s_lit(&b, "DELETE FROM ");
    s_table(&b, sh);
    s_ctid(&b, sh);
    break;
  }
  return b.p;
}
