/*
 * hb_sql.h - what herald reads in the text of a logged SQL statement:
 * the secrets to take out before a statement is stored or shown, and the
 * tables it names, by which table filters select schema changes.
 *
 * Statements reach herald as the text the server logged (a query event).
 * They are tokenised as MySQL's lexer would: quoted strings with their
 * escapes, `identifiers`, comments (whose executable forms, / *! ... * /
 * and / *M! ... * /, are read as code), words and punctuation; nothing
 * inside a string literal is ever taken for a keyword. This is not an SQL
 * parser: it recognises the few clauses it is asked about and leaves the
 * rest of the text alone.
 */
#ifndef HB_SQL_H
#define HB_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "hb.h"
#include "hb_buf.h"

/* How the server read the statement: the sql_mode bits that change the
 * lexer (the query event's status variables carry the mode). */
enum {
  HB_SQL_NO_BACKSLASH_ESCAPES = 1, /* '\' is an ordinary character */
  HB_SQL_ANSI_QUOTES = 2           /* "x" is an identifier, not a string */
};

/** @brief The HB_SQL_* flags of a server sql_mode value. */
unsigned hb_sql_mode_flags(uint64_t sql_mode);

/** The text that stands in for a secret. */
#define HB_SQL_REDACTED "'<redacted>'"

/**
 * @brief Copy the statement s[0..n) into out with every password literal
 *        replaced by '<redacted>': the literal after IDENTIFIED BY,
 *        IDENTIFIED WITH plugin BY | AS, IDENTIFIED VIA plugin USING (and
 *        each OR alternative), IDENTIFIED BY PASSWORD, REPLACE (the current
 *        password of ALTER USER and SET PASSWORD), every literal inside
 *        PASSWORD(...) and OLD_PASSWORD(...), the value of SET PASSWORD
 *        [FOR user] = ..., PASSWORD '...' (CREATE/ALTER SERVER ... OPTIONS)
 *        and MASTER_PASSWORD/SOURCE_PASSWORD [=] '...'. A literal is a
 *        quoted string (with the strings after it, which the server
 *        joins to it; a charset introducer before it, _utf8mb4 or N, X,
 *        B, is kept) or a hex number (0x...). An unterminated string is
 *        redacted to the end of the statement. Redacting the result
 *        again gives the same text.
 * @param flags  HB_SQL_* for the statement's sql_mode
 * @param out    reset and filled only when something was redacted
 * @returns the number of literals replaced; 0 leaves out untouched.
 * @locality any thread; no state
 */
size_t hb_sql_redact(const char *s, size_t n, unsigned flags, hb_buf_t *out);

/* ---- the tables a statement names ---- */

typedef struct {
  char *name;   /* "db.table" */
  size_t dblen; /* the length of its db part */
} hb_sql_table_t;

typedef struct {
  hb_sql_table_t *tables; /* owned */
  size_t ntables;
  char *db; /* owned: the database a CREATE/ALTER/DROP DATABASE (or the
               db qualifier of DROP TRIGGER) names, else the default one */
} hb_sql_names_t;

/**
 * @brief The tables the statement s[0..n) names, unqualified ones in
 *        default_db: the table of CREATE/ALTER/DROP TABLE, VIEW and
 *        SEQUENCE (every one of a DROP list), of CREATE/DROP INDEX ... ON
 *        and CREATE TRIGGER ... ON, both sides of RENAME TABLE and of
 *        ALTER TABLE ... RENAME [TO] and EXCHANGE PARTITION ... WITH TABLE,
 *        TRUNCATE, OPTIMIZE/ANALYZE/REPAIR/CHECK TABLE, and the table that
 *        statement-format INSERT, REPLACE, UPDATE, DELETE and LOAD DATA
 *        write. Any other statement names none.
 * @param out  filled; free with hb_sql_names_free()
 */
void hb_sql_names(const char *s, size_t n, const char *default_db,
                  hb_sql_names_t *out);

void hb_sql_names_free(hb_sql_names_t *nm);

/** @brief The heap bytes nm holds (for memory budgets). */
size_t hb_sql_names_mem(const hb_sql_names_t *nm);

/**
 * @brief The one rule by which a consumer's table patterns select schema
 *        changes (relay, heraldctl tail and decode): with no patterns,
 *        every statement; a statement that names tables when one of them
 *        matches a pattern ("db.table" globs; a pattern without a dot
 *        stands for whole databases); a statement that names none when
 *        its database (nm->db) matches the database part of a pattern.
 * @returns 1 wanted, 0 not
 */
int hb_sql_names_wanted(const hb_sql_names_t *nm, char *const *pat,
                        size_t npat);

/** @brief hb_sql_names() and hb_sql_names_wanted() for one statement. */
int hb_ddl_wanted(const hb_ddl_t *d, char *const *pat, size_t npat);

#endif
