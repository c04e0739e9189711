/*
 * hb_sql.c - a lexer for logged SQL statements, and the password
 * redaction built on it.
 */
#include "hb_sql.h"

#include <string.h>

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

/* If a literal starts at the next token, consumes it (and the strings
 * that follow it, which the server concatenates) and stores its extent;
 * otherwise consumes nothing. */
static int take_literal(lex_t *lx, size_t *a, size_t *b) {
  lex_t save = *lx;
  tok_t t = lex_next(lx);
  if (hex_word(lx, t)) {
    *a = t.a;
    *b = t.b;
    return 1;
  }
  if (introducer(lx, t)) {
    tok_t u = lex_next(lx);
    if (u.kind != TK_STR) {
      *lx = save;
      return 0;
    }
    *a = t.a;
    *b = u.b;
  } else if (t.kind == TK_STR) {
    *a = t.a;
    *b = t.b;
  } else {
    *lx = save;
    return 0;
  }
  for (;;) {
    lex_t more = *lx;
    tok_t u = lex_next(&more);
    if (u.kind != TK_STR)
      break;
    *b = u.b;
    *lx = more;
  }
  return 1;
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
  hb_buf_put(r->out, r->s + r->done, a - r->done);
  hb_buf_lit(r->out, HB_SQL_REDACTED);
  r->done = b;
  r->count++;
}

static int redact_literal(lex_t *lx, redact_t *r) {
  size_t a, b;
  if (!take_literal(lx, &a, &b))
    return 0;
  redact_span(r, a, b);
  return 1;
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
