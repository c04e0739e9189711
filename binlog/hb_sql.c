/*
 * hb_sql.c - a lexer for logged SQL statements, and what is built on it:
 * password redaction, and the tables a statement names.
 */
#include "hb_sql.h"

#include <stdlib.h>
#include <string.h>

#include "hd_mem.h"
#include "hd_parse.h"

/* ------------------------------------------------------------------ lexer */

enum {
  TK_END = 0,
  TK_WORD, /* keyword, bare identifier or number: [A-Za-z0-9_$], >= 0x80 */
  TK_STR,  /* 'string', or "string" without ANSI_QUOTES */
  TK_QID,  /* `identifier`, or "identifier" with ANSI_QUOTES */
  TK_PUNCT /* one character */
};

typedef struct {
  int kind;
  size_t a, b; /* s[a..b): the whole token, quotes included */
} tok_t;

typedef struct {
  const char *s;
  size_t n, pos;
  unsigned flags;
  int in_exec; /* inside an executable comment: its end is whitespace */
} lex_t;

static void lex_init(lex_t *lx, const char *s, size_t n, unsigned flags) {
  lx->s = s;
  lx->n = n;
  lx->pos = 0;
  lx->flags = flags;
  lx->in_exec = 0;
}

static int is_ident(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

static int is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

/* Skips whitespace and comments. MySQL's / *! and MariaDB's / *M!
 * comments (optionally with a version number) hold code the server ran:
 * their text is read as statement text, and their end as whitespace. */
static void skip_blank(lex_t *lx) {
  const char *s = lx->s;
  size_t n = lx->n;
  while (lx->pos < n) {
    size_t p = lx->pos;
    unsigned char c = (unsigned char)s[p];
    if (is_space(c)) {
      lx->pos++;
    } else if (c == '/' && p + 1 < n && s[p + 1] == '*') {
      size_t q = p + 2;
      if (q < n && s[q] == 'M' && q + 1 < n && s[q + 1] == '!')
        q++;
      if (q < n && s[q] == '!') {
        q++;
        for (int k = 0; k < 6 && q < n && s[q] >= '0' && s[q] <= '9'; k++)
          q++;
        lx->in_exec++;
        lx->pos = q;
        continue;
      }
      const char *e = NULL;
      for (size_t i = p + 2; i + 1 < n; i++)
        if (s[i] == '*' && s[i + 1] == '/') {
          e = s + i;
          break;
        }
      lx->pos = e ? (size_t)(e - s) + 2 : n;
    } else if (c == '*' && lx->in_exec && p + 1 < n && s[p + 1] == '/') {
      lx->in_exec--;
      lx->pos += 2;
    } else if (c == '#' || (c == '-' && p + 1 < n && s[p + 1] == '-' &&
                            (p + 2 == n || (unsigned char)s[p + 2] <= ' '))) {
      while (lx->pos < n && s[lx->pos] != '\n')
        lx->pos++;
    } else {
      return;
    }
  }
}

/* The end of a quoted token opening at s[a]: a doubled quote stands for
 * itself, a backslash escapes the next character where it may. An
 * unterminated token runs to the end. */
static size_t quoted_end(const lex_t *lx, size_t a, int backslash) {
  const char *s = lx->s;
  char q = s[a];
  size_t i = a + 1;
  while (i < lx->n) {
    if (backslash && s[i] == '\\') {
      i += 2;
    } else if (s[i] == q) {
      if (i + 1 < lx->n && s[i + 1] == q)
        i += 2;
      else
        return i + 1;
    } else {
      i++;
    }
  }
  return lx->n;
}

static tok_t lex_next(lex_t *lx) {
  tok_t t = {TK_END, lx->n, lx->n};
  skip_blank(lx);
  if (lx->pos >= lx->n)
    return t;
  const char *s = lx->s;
  size_t a = lx->pos;
  unsigned char c = (unsigned char)s[a];
  int bs = !(lx->flags & HB_SQL_NO_BACKSLASH_ESCAPES);
  t.a = a;
  if (c == '\'' || (c == '"' && !(lx->flags & HB_SQL_ANSI_QUOTES))) {
    t.kind = TK_STR;
    t.b = quoted_end(lx, a, bs);
  } else if (c == '`' || c == '"') {
    t.kind = TK_QID;
    t.b = quoted_end(lx, a, 0);
  } else if (is_ident(c)) {
    size_t i = a;
    while (i < lx->n && is_ident((unsigned char)s[i]))
      i++;
    t.kind = TK_WORD;
    t.b = i;
  } else {
    t.kind = TK_PUNCT;
    t.b = a + 1;
  }
  lx->pos = t.b > lx->n ? lx->n : t.b;
  if (t.b > lx->n)
    t.b = lx->n;
  return t;
}

static tok_t lex_peek(const lex_t *lx) {
  lex_t c = *lx;
  return lex_next(&c);
}

/* Whether t is the keyword kw (upper case), ignoring case. */
static int kw(const lex_t *lx, tok_t t, const char *kw) {
  size_t k = strlen(kw);
  if (t.kind != TK_WORD || t.b - t.a != k)
    return 0;
  for (size_t i = 0; i < k; i++) {
    char c = lx->s[t.a + i];
    if (c >= 'a' && c <= 'z')
      c = (char)(c - 32);
    if (c != kw[i])
      return 0;
  }
  return 1;
}

static int punct(const lex_t *lx, tok_t t, char c) {
  return t.kind == TK_PUNCT && lx->s[t.a] == c;
}

unsigned hb_sql_mode_flags(uint64_t sql_mode) {
  unsigned f = 0;
  if (sql_mode & ((uint64_t)1 << 20)) /* MODE_NO_BACKSLASH_ESCAPES */
    f |= HB_SQL_NO_BACKSLASH_ESCAPES;
  if (sql_mode & ((uint64_t)1 << 2)) /* MODE_ANSI_QUOTES */
    f |= HB_SQL_ANSI_QUOTES;
  return f;
}

/* -------------------------------------------------------------- literals */

/* A hex number word: 0x followed by hex digits. */
static int hex_word(const lex_t *lx, tok_t t) {
  const char *s = lx->s + t.a;
  size_t n = t.b - t.a;
  if (t.kind != TK_WORD || n < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
    return 0;
  for (size_t i = 2; i < n; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
          (c >= 'A' && c <= 'F')))
      return 0;
  }
  return 1;
}

/* A word that may prefix a string: a charset introducer (_utf8mb4), N for
 * national strings, X and B for hex and bit strings. */
static int introducer(const lex_t *lx, tok_t t) {
  if (t.kind != TK_WORD)
    return 0;
  if (lx->s[t.a] == '_')
    return 1;
  return t.b - t.a == 1 && strchr("nNxXbB", lx->s[t.a]) != NULL;
}

/* If a literal starts at the next token, consumes it and stores the
 * extent of its value: a hex number, or a string without its introducer,
 * which stays in the text (_utf8mb4'<redacted>'): taking it too could
 * leave a word before the replacement that reads as an introducer, and
 * redacting the result again would change it. Otherwise consumes
 * nothing. */
static int take_literal(lex_t *lx, size_t *a, size_t *b) {
  lex_t save = *lx;
  tok_t t = lex_next(lx);
  if (hex_word(lx, t) || t.kind == TK_STR) {
    *a = t.a;
    *b = t.b;
    return 1;
  }
  if (introducer(lx, t)) {
    tok_t u = lex_next(lx);
    if (u.kind == TK_STR) {
      *a = u.a;
      *b = u.b;
      return 1;
    }
  }
  *lx = save;
  return 0;
}

/* ------------------------------------------------------------- redaction */

typedef struct {
  const char *s;
  hb_buf_t *out;
  size_t done; /* s[0..done) is in out */
  size_t count;
} redact_t;

static void redact_span(redact_t *r, size_t a, size_t b) {
  if (r->count == 0)
    hb_buf_reset(r->out);
  /* A literal right after the last one ('x'"y", 0x41'b') joins its
   * replacement: two side by side would read as one string with a
   * doubled quote. */
  if (r->count == 0 || a != r->done) {
    hb_buf_put(r->out, r->s + r->done, a - r->done);
    hb_buf_lit(r->out, HB_SQL_REDACTED);
  }
  r->done = b;
  r->count++;
}

/* Redacts the literal at the next token and the strings that follow it,
 * which the server joins to it ('pa' 'ss'); each one is replaced on its
 * own, so that comments between them, the end of an executable one
 * included, stay where they are. */
static int redact_literal(lex_t *lx, redact_t *r) {
  size_t a, b;
  if (!take_literal(lx, &a, &b))
    return 0;
  redact_span(r, a, b);
  for (;;) {
    lex_t more = *lx;
    tok_t u = lex_next(&more);
    if (u.kind != TK_STR)
      return 1;
    redact_span(r, u.a, u.b);
    *lx = more;
  }
}

/* Whether the text can hold a secret at all: every rule needs one of
 * these words, and most statements have neither. */
static int may_hold_secret(const char *s, size_t n) {
  static const char *const words[] = {"PASSWORD", "IDENTIFIED"};
  for (size_t w = 0; w < 2; w++) {
    const char *k = words[w];
    size_t kl = strlen(k);
    for (size_t i = 0; i + kl <= n; i++) {
      size_t j = 0;
      while (j < kl && (s[i + j] == k[j] || s[i + j] == k[j] + 32))
        j++;
      if (j == kl)
        return 1;
    }
  }
  return 0;
}

size_t hb_sql_redact(const char *s, size_t n, unsigned flags, hb_buf_t *out) {
  if (n == 0 || !may_hold_secret(s, n))
    return 0;
  lex_t lx;
  lex_init(&lx, s, n, flags);
  redact_t r = {s, out, 0, 0};
  /* auth: inside one user's authentication clauses (from IDENTIFIED to
   * the next ',' at the same depth), where BY, AS, USING and REPLACE are
   * followed by secrets. setpw: inside SET PASSWORD, where '=' is too. */
  int auth = 0, setpw = 0, depth = 0, auth_depth = 0;
  size_t ntok = 0;
  int set_first = 0; /* the statement starts with SET */
  for (;;) {
    tok_t t = lex_next(&lx);
    if (t.kind == TK_END)
      break;
    ntok++;
    if (t.kind == TK_PUNCT) {
      char c = s[t.a];
      if (c == '(') {
        depth++;
      } else if (c == ')') {
        depth--;
        if (auth && depth < auth_depth)
          auth = 0;
      } else if ((c == ',' && depth == auth_depth) || c == ';') {
        auth = setpw = 0;
      } else if (c == '=' && setpw) {
        redact_literal(&lx, &r);
      }
    } else if (kw(&lx, t, "IDENTIFIED")) {
      auth = 1;
      auth_depth = depth;
    } else if (kw(&lx, t, "PASSWORD") || kw(&lx, t, "OLD_PASSWORD")) {
      tok_t u = lex_peek(&lx);
      if (punct(&lx, u, '(')) {
        /* PASSWORD(...): every literal inside, whatever computes it. */
        lex_next(&lx);
        int d = 1;
        while (d > 0) {
          if (redact_literal(&lx, &r))
            continue;
          tok_t v = lex_next(&lx);
          if (v.kind == TK_END)
            break;
          if (punct(&lx, v, '('))
            d++;
          else if (punct(&lx, v, ')'))
            d--;
        }
      } else if (!redact_literal(&lx, &r) && set_first && ntok == 2 &&
                 kw(&lx, t, "PASSWORD")) {
        /* The statement SET PASSWORD [FOR user] = ... [REPLACE ...], not
         * a column named password after UPDATE ... SET. */
        setpw = 1;
      }
    } else if (kw(&lx, t, "MASTER_PASSWORD") || kw(&lx, t, "SOURCE_PASSWORD")) {
      tok_t u = lex_peek(&lx);
      if (punct(&lx, u, '='))
        lex_next(&lx);
      redact_literal(&lx, &r);
    } else if ((auth || setpw) &&
               (kw(&lx, t, "BY") || kw(&lx, t, "AS") || kw(&lx, t, "USING") ||
                kw(&lx, t, "REPLACE"))) {
      redact_literal(&lx, &r);
    }
    if (ntok == 1)
      set_first = kw(&lx, t, "SET");
  }
  if (r.count)
    hb_buf_put(out, s + r.done, n - r.done);
  return r.count;
}

/* ----------------------------------------------------------------- names */

/* The text of an identifier token: a bare word as it is, a quoted one
 * without its quotes and with doubled quotes collapsed. NULL when t is
 * not an identifier. */
static char *ident_text(const lex_t *lx, tok_t t) {
  const char *s = lx->s + t.a;
  size_t n = t.b - t.a;
  if (t.kind == TK_WORD)
    return hd_strndup(s, n);
  if (t.kind != TK_QID || n < 1)
    return NULL;
  char q = s[0];
  char *o = hd_malloc(n + 1);
  size_t k = 0;
  for (size_t i = 1; i < n; i++) {
    if (s[i] == q) {
      if (i + 1 < n && s[i + 1] == q)
        i++;
      else
        break;
    }
    o[k++] = s[i];
  }
  o[k] = '\0';
  return o;
}

/* Whether t can be an identifier. */
static int is_name_tok(tok_t t) {
  return t.kind == TK_WORD || t.kind == TK_QID;
}

typedef struct {
  lex_t lx;
  const char *defdb;
  hb_sql_names_t *out;
} np_t;

static void add_table(np_t *np, char *db, char *name) {
  hb_sql_names_t *o = np->out;
  size_t dl = strlen(db), tl = strlen(name);
  char *full = hd_malloc(dl + tl + 2);
  memcpy(full, db, dl);
  full[dl] = '.';
  memcpy(full + dl + 1, name, tl + 1);
  o->tables = hd_realloc(o->tables, (o->ntables + 1) * sizeof(*o->tables));
  o->tables[o->ntables].name = full;
  o->tables[o->ntables].dblen = dl;
  o->ntables++;
}

/* [db.]name at the next token: stores the parts (owned; *db NULL when
 * unqualified) and returns 1, or consumes nothing and returns 0. */
static int take_qname(np_t *np, char **db, char **name) {
  lex_t save = np->lx;
  tok_t t = lex_next(&np->lx);
  if (!is_name_tok(t)) {
    np->lx = save;
    return 0;
  }
  char *a = ident_text(&np->lx, t);
  tok_t dot = lex_peek(&np->lx);
  if (punct(&np->lx, dot, '.')) {
    lex_t save2 = np->lx;
    lex_next(&np->lx);
    tok_t u = lex_next(&np->lx);
    if (is_name_tok(u)) {
      *db = a;
      *name = ident_text(&np->lx, u);
      return 1;
    }
    np->lx = save2;
  }
  *db = NULL;
  *name = a;
  return 1;
}

/* A table name at the next token, added to the names; 1 if there was
 * one. Unqualified names are in the default database. */
static int take_table(np_t *np) {
  char *db, *name;
  if (!take_qname(np, &db, &name))
    return 0;
  add_table(np, db ? db : (char *)np->defdb, name);
  free(db);
  free(name);
  return 1;
}

/* name {, name} */
static void take_tables(np_t *np) {
  while (take_table(np)) {
    tok_t t = lex_peek(&np->lx);
    if (!punct(&np->lx, t, ','))
      break;
    lex_next(&np->lx);
  }
}

/* Consumes the next token if it is the keyword k. */
static int accept(np_t *np, const char *k) {
  tok_t t = lex_peek(&np->lx);
  if (!kw(&np->lx, t, k))
    return 0;
  lex_next(&np->lx);
  return 1;
}

/* IF [NOT] EXISTS */
static void skip_if_exists(np_t *np) {
  if (accept(np, "IF")) {
    accept(np, "NOT");
    accept(np, "EXISTS");
  }
}

/* Skips tokens up to and including the keyword k at parenthesis depth
 * 0; returns 0 when the statement ends first. */
static int skip_to(np_t *np, const char *k) {
  int depth = 0;
  for (;;) {
    tok_t t = lex_next(&np->lx);
    if (t.kind == TK_END)
      return 0;
    if (punct(&np->lx, t, '('))
      depth++;
    else if (punct(&np->lx, t, ')'))
      depth--;
    else if (depth <= 0 && kw(&np->lx, t, k))
      return 1;
  }
}

/* The database a CREATE/ALTER/DROP DATABASE statement names. */
static void take_database(np_t *np, int optional) {
  skip_if_exists(np);
  tok_t t = lex_peek(&np->lx);
  static const char *const not_names[] = {"CHARACTER", "CHARSET",   "DEFAULT",
                                          "COLLATE",   "COMMENT",   "UPGRADE",
                                          "READ",      "ENCRYPTION"};
  if (optional && t.kind == TK_WORD)
    for (size_t i = 0; i < sizeof(not_names) / sizeof(not_names[0]); i++)
      if (kw(&np->lx, t, not_names[i]))
        return;
  if (!is_name_tok(t))
    return;
  lex_next(&np->lx);
  free(np->out->db);
  np->out->db = ident_text(&np->lx, t);
}

/* Up to the object keyword of CREATE/ALTER/DROP (past OR REPLACE,
 * TEMPORARY, ALGORITHM=..., DEFINER=..., SQL SECURITY ...): the keyword's
 * token, or TK_END when the object is one that holds no rows. */
static tok_t object_kw(np_t *np) {
  static const char *const objects[] = {"TABLE",    "TABLES",   "VIEW",
                                        "SEQUENCE", "INDEX",    "KEY",
                                        "TRIGGER",  "DATABASE", "SCHEMA"};
  static const char *const others[] = {
      "PROCEDURE", "FUNCTION",   "EVENT",   "USER",    "ROLE",
      "SERVER",    "TABLESPACE", "LOGFILE", "PACKAGE", "RESOURCE"};
  for (int i = 0; i < 32; i++) {
    tok_t t = lex_next(&np->lx);
    if (t.kind == TK_END)
      return t;
    for (size_t k = 0; k < sizeof(objects) / sizeof(objects[0]); k++)
      if (kw(&np->lx, t, objects[k]))
        return t;
    for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++)
      if (kw(&np->lx, t, others[k]))
        return (tok_t){TK_END, 0, 0};
  }
  return (tok_t){TK_END, 0, 0};
}

static void names_create(np_t *np) {
  tok_t o = object_kw(np);
  if (o.kind == TK_END)
    return;
  if (kw(&np->lx, o, "DATABASE") || kw(&np->lx, o, "SCHEMA")) {
    take_database(np, 0);
  } else if (kw(&np->lx, o, "INDEX") || kw(&np->lx, o, "KEY") ||
             kw(&np->lx, o, "TRIGGER")) {
    /* CREATE INDEX i ... ON t, CREATE TRIGGER tr ... ON t */
    if (skip_to(np, "ON"))
      take_table(np);
  } else {
    skip_if_exists(np);
    take_table(np);
  }
}

static void names_alter(np_t *np) {
  tok_t o = object_kw(np);
  if (o.kind == TK_END)
    return;
  if (kw(&np->lx, o, "DATABASE") || kw(&np->lx, o, "SCHEMA")) {
    take_database(np, 1);
    return;
  }
  skip_if_exists(np);
  if (!take_table(np) || !kw(&np->lx, o, "TABLE"))
    return;
  /* The other tables an ALTER TABLE moves rows to or from: RENAME [TO]
   * new, EXCHANGE PARTITION p WITH TABLE t. */
  int depth = 0;
  for (;;) {
    tok_t t = lex_next(&np->lx);
    if (t.kind == TK_END)
      return;
    if (punct(&np->lx, t, '('))
      depth++;
    else if (punct(&np->lx, t, ')'))
      depth--;
    else if (depth > 0)
      continue;
    else if (kw(&np->lx, t, "RENAME")) {
      tok_t u = lex_peek(&np->lx);
      if (kw(&np->lx, u, "COLUMN") || kw(&np->lx, u, "INDEX") ||
          kw(&np->lx, u, "KEY") || kw(&np->lx, u, "CONSTRAINT"))
        continue;
      if (!accept(np, "TO"))
        accept(np, "AS");
      take_table(np);
    } else if (kw(&np->lx, t, "WITH") && accept(np, "TABLE")) {
      take_table(np);
    }
  }
}

static void names_drop(np_t *np) {
  tok_t o = object_kw(np);
  if (o.kind == TK_END)
    return;
  if (kw(&np->lx, o, "DATABASE") || kw(&np->lx, o, "SCHEMA")) {
    take_database(np, 0);
  } else if (kw(&np->lx, o, "INDEX") || kw(&np->lx, o, "KEY")) {
    if (skip_to(np, "ON"))
      take_table(np);
  } else if (kw(&np->lx, o, "TRIGGER")) {
    /* DROP TRIGGER [db.]tr: no table named, but maybe a database. */
    char *db = NULL, *name = NULL;
    skip_if_exists(np);
    if (take_qname(np, &db, &name) && db) {
      free(np->out->db);
      np->out->db = db;
      db = NULL;
    }
    free(db);
    free(name);
  } else {
    skip_if_exists(np);
    take_tables(np);
  }
}

/* RENAME TABLE a TO b [, c TO d ...] */
static void names_rename(np_t *np) {
  if (!accept(np, "TABLE") && !accept(np, "TABLES"))
    return;
  skip_if_exists(np);
  for (;;) {
    if (!take_table(np) || !skip_to(np, "TO") || !take_table(np))
      return;
    tok_t t = lex_peek(&np->lx);
    if (!punct(&np->lx, t, ','))
      return;
    lex_next(&np->lx);
  }
}

/* Statement-format DML: the table it writes. */
static void names_dml(np_t *np, tok_t first) {
  static const char *const mods[] = {"LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY",
                                     "QUICK", "IGNORE"};
  for (;;) {
    int m = 0;
    for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]) && !m; i++)
      m = accept(np, mods[i]);
    if (!m)
      break;
  }
  if (kw(&np->lx, first, "DELETE")) {
    /* DELETE FROM t ..., or the multi-table DELETE t1, t2 FROM ... */
    if (!accept(np, "FROM")) {
      take_tables(np);
      return;
    }
  } else if (!kw(&np->lx, first, "UPDATE")) {
    accept(np, "INTO");
  }
  take_tables(np);
}

void hb_sql_names(const char *s, size_t n, const char *default_db,
                  hb_sql_names_t *out) {
  memset(out, 0, sizeof(*out));
  np_t np = {.defdb = default_db ? default_db : "", .out = out};
  lex_init(&np.lx, s, n, 0);
  tok_t t = lex_next(&np.lx);
  if (kw(&np.lx, t, "CREATE"))
    names_create(&np);
  else if (kw(&np.lx, t, "ALTER"))
    names_alter(&np);
  else if (kw(&np.lx, t, "DROP"))
    names_drop(&np);
  else if (kw(&np.lx, t, "RENAME"))
    names_rename(&np);
  else if (kw(&np.lx, t, "TRUNCATE")) {
    accept(&np, "TABLE");
    take_table(&np);
  } else if (kw(&np.lx, t, "INSERT") || kw(&np.lx, t, "REPLACE") ||
             kw(&np.lx, t, "UPDATE") || kw(&np.lx, t, "DELETE")) {
    names_dml(&np, t);
  } else if (kw(&np.lx, t, "LOAD")) {
    if (skip_to(&np, "INTO") && accept(&np, "TABLE"))
      take_table(&np);
  } else if (kw(&np.lx, t, "OPTIMIZE") || kw(&np.lx, t, "ANALYZE") ||
             kw(&np.lx, t, "REPAIR") || kw(&np.lx, t, "CHECK") ||
             kw(&np.lx, t, "CHECKSUM")) {
    accept(&np, "NO_WRITE_TO_BINLOG");
    accept(&np, "LOCAL");
    if (accept(&np, "TABLE") || accept(&np, "TABLES"))
      take_tables(&np);
  }
  if (out->db == NULL)
    out->db = hd_strdup(np.defdb);
}

void hb_sql_names_free(hb_sql_names_t *nm) {
  for (size_t i = 0; i < nm->ntables; i++)
    free(nm->tables[i].name);
  free(nm->tables);
  free(nm->db);
  memset(nm, 0, sizeof(*nm));
}

size_t hb_sql_names_mem(const hb_sql_names_t *nm) {
  size_t m = nm->db ? strlen(nm->db) + 1 : 0;
  for (size_t i = 0; i < nm->ntables; i++)
    m += sizeof(nm->tables[i]) + strlen(nm->tables[i].name) + 1;
  return m;
}

/* Whether the database db[0..dblen) matches the database part of a
 * pattern (a pattern without a dot is all database). */
static int db_matches(const char *pat, const char *db, size_t dblen) {
  const char *dot = strchr(pat, '.');
  size_t pl = dot ? (size_t)(dot - pat) : strlen(pat);
  char pbuf[256], dbuf[256];
  char *p = pl < sizeof(pbuf) ? pbuf : hd_malloc(pl + 1);
  char *d = dblen < sizeof(dbuf) ? dbuf : hd_malloc(dblen + 1);
  memcpy(p, pat, pl);
  p[pl] = '\0';
  memcpy(d, db, dblen);
  d[dblen] = '\0';
  int m = hd_glob_match(p, d);
  if (p != pbuf)
    free(p);
  if (d != dbuf)
    free(d);
  return m;
}

int hb_sql_names_wanted(const hb_sql_names_t *nm, char *const *pat,
                        size_t npat) {
  if (npat == 0)
    return 1;
  for (size_t k = 0; k < npat; k++) {
    const char *p = pat[k];
    int whole_db = strchr(p, '.') == NULL;
    if (nm->ntables == 0) {
      const char *db = nm->db ? nm->db : "";
      if (db_matches(p, db, strlen(db)))
        return 1;
      continue;
    }
    for (size_t i = 0; i < nm->ntables; i++) {
      const hb_sql_table_t *t = &nm->tables[i];
      if (whole_db ? db_matches(p, t->name, t->dblen)
                   : hd_glob_match(p, t->name))
        return 1;
    }
  }
  return 0;
}

int hb_ddl_wanted(const hb_ddl_t *d, char *const *pat, size_t npat) {
  if (npat == 0)
    return 1;
  hb_sql_names_t nm;
  hb_sql_names(d->statement, d->len, d->db, &nm);
  int w = hb_sql_names_wanted(&nm, pat, npat);
  hb_sql_names_free(&nm);
  return w;
}
