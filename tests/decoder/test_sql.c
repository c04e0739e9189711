/*
 * test_sql.c - hb_sql.h: the tables a statement names and the rule that
 * selects schema changes by them; password redaction over the statement
 * forms of MySQL 5.7-8.x and MariaDB 10.x, with quoting that would fool a
 * search for keywords (escapes, doubled quotes, comments, strings that
 * look like clauses), and statements that hold no secret and must come
 * out as they went in. The MariaDB forms were checked against what
 * MariaDB 10.11 logs (IDENTIFIED BY with the plain password, SET PASSWORD
 * as a hash).
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb_buf.h"
#include "hb_sql.h"

/* Redacts s (an exact-size copy, so ASan sees any read past it) and
 * returns the result, or s itself when nothing was redacted; *count is
 * the number of literals replaced. */
static const char *redact(const char *s, unsigned flags, size_t *count) {
  static char res[4096];
  size_t n = strlen(s);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, s, n);
  hb_buf_t b = {0};
  size_t c = hb_sql_redact(copy, n, flags, &b);
  if (c)
    snprintf(res, sizeof(res), "%.*s", (int)b.len, b.p);
  else
    snprintf(res, sizeof(res), "%s", s);
  if (count)
    *count = c;
  hb_buf_free(&b);
  free(copy);
  return res;
}

typedef struct {
  const char *in, *want;
  size_t count;
} vec_t;

static void check_vecs(const vec_t *v, size_t n, unsigned flags) {
  for (size_t i = 0; i < n; i++) {
    size_t c = 0;
    const char *got = redact(v[i].in, flags, &c);
    ck_assert_msg(strcmp(got, v[i].want) == 0, "%s\n got: %s\nwant: %s",
                  v[i].in, got, v[i].want);
    ck_assert_msg(c == v[i].count, "%s: %zu redactions, want %zu", v[i].in, c,
                  v[i].count);
  }
}

#define R HB_SQL_REDACTED

START_TEST(redact_user_statements) {
  static const vec_t v[] = {
      /* As MariaDB 10.11 logs them. */
      {"CREATE USER 'u1'@'%' IDENTIFIED BY 's3cr\\'et1'",
       "CREATE USER 'u1'@'%' IDENTIFIED BY " R, 1},
      {"ALTER USER 'u1'@'%' IDENTIFIED BY 'pw2'",
       "ALTER USER 'u1'@'%' IDENTIFIED BY " R, 1},
      {"GRANT SELECT ON *.* TO 'u1'@'%' IDENTIFIED BY 'pw4'",
       "GRANT SELECT ON *.* TO 'u1'@'%' IDENTIFIED BY " R, 1},
      {"CREATE USER IF NOT EXISTS 'herald_repl'@'127.0.0.1' IDENTIFIED BY "
       "'0d03d1c6dfd8f88c1c5ee455'",
       "CREATE USER IF NOT EXISTS 'herald_repl'@'127.0.0.1' IDENTIFIED BY " R,
       1},
      {"SET PASSWORD FOR 'u1'@'%'='*77B4A70CEFD76DB9415F36D291E74C110D2738E0'",
       "SET PASSWORD FOR 'u1'@'%'=" R, 1},
      {"CREATE USER u3 IDENTIFIED BY PASSWORD "
       "'*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'",
       "CREATE USER u3 IDENTIFIED BY PASSWORD " R, 1},
      {"CREATE USER u4 IDENTIFIED VIA mysql_native_password USING "
       "PASSWORD('pw9') OR unix_socket",
       "CREATE USER u4 IDENTIFIED VIA mysql_native_password USING PASSWORD(" R
       ") OR unix_socket",
       1},
      {"ALTER USER u4 IDENTIFIED VIA mysql_native_password USING "
       "'*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'",
       "ALTER USER u4 IDENTIFIED VIA mysql_native_password USING " R, 1},
      {"CREATE USER u2 IDENTIFIED VIA ed25519 USING PASSWORD('a') OR "
       "mysql_native_password USING '*94BD' OR unix_socket",
       "CREATE USER u2 IDENTIFIED VIA ed25519 USING PASSWORD(" R
       ") OR mysql_native_password USING " R " OR unix_socket",
       2},
      {"CREATE OR REPLACE USER u5  IDENTIFIED \n BY 'pw10'",
       "CREATE OR REPLACE USER u5  IDENTIFIED \n BY " R, 1},
      {"ALTER USER 'repl'@'%' IDENTIFIED BY 'zk<9ZL)lpRoe452n' WITH "
       "MAX_USER_CONNECTIONS 0",
       "ALTER USER 'repl'@'%' IDENTIFIED BY " R " WITH MAX_USER_CONNECTIONS 0",
       1},
      /* As MySQL 5.7 and 8 log them. */
      {"CREATE USER 'u'@'%' IDENTIFIED WITH 'mysql_native_password' AS "
       "'*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29' REQUIRE NONE PASSWORD "
       "EXPIRE DEFAULT ACCOUNT UNLOCK",
       "CREATE USER 'u'@'%' IDENTIFIED WITH 'mysql_native_password' AS " R
       " REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK",
       1},
      {"ALTER USER 'root'@'localhost' IDENTIFIED WITH 'caching_sha2_password' "
       "AS '$A$005$=\x07uH,\x1fJKsz\\\\TRwy\\'q'",
       "ALTER USER 'root'@'localhost' IDENTIFIED WITH 'caching_sha2_password' "
       "AS " R,
       1},
      {"CREATE USER 'u'@'%' IDENTIFIED WITH 'caching_sha2_password' AS "
       "0x24412430303524 REQUIRE NONE",
       "CREATE USER 'u'@'%' IDENTIFIED WITH 'caching_sha2_password' AS " R
       " REQUIRE NONE",
       1},
      {"ALTER USER u IDENTIFIED WITH caching_sha2_password BY 'new' REPLACE "
       "'old' RETAIN CURRENT PASSWORD",
       "ALTER USER u IDENTIFIED WITH caching_sha2_password BY " R " REPLACE " R
       " RETAIN CURRENT PASSWORD",
       2},
      {"SET PASSWORD FOR 'u'@'%' = 'new' REPLACE 'old'",
       "SET PASSWORD FOR 'u'@'%' = " R " REPLACE " R, 2},
      {"SET PASSWORD = PASSWORD('x')", "SET PASSWORD = PASSWORD(" R ")", 1},
      {"set password for u = old_password('x')",
       "set password for u = old_password(" R ")", 1},
      {"SET PASSWORD FOR u TO RANDOM", "SET PASSWORD FOR u TO RANDOM", 0},
      {"CREATE USER u IDENTIFIED BY RANDOM PASSWORD",
       "CREATE USER u IDENTIFIED BY RANDOM PASSWORD", 0},
      {"CREATE USER a IDENTIFIED BY 'x', b IDENTIFIED BY 'y' COMMENT 'by me'",
       "CREATE USER a IDENTIFIED BY " R ", b IDENTIFIED BY " R
       " COMMENT 'by me'",
       2},
      {"CREATE USER a IDENTIFIED BY 'x' AND IDENTIFIED WITH "
       "authentication_ldap_sasl AS 'uid=u'",
       "CREATE USER a IDENTIFIED BY " R
       " AND IDENTIFIED WITH authentication_ldap_sasl AS " R,
       2},
      {"ALTER USER u ADD 2 FACTOR IDENTIFIED WITH p BY 'x'",
       "ALTER USER u ADD 2 FACTOR IDENTIFIED WITH p BY " R, 1},
      /* Servers and replication. */
      {"CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h', USER "
       "'u', PASSWORD 'p w', PORT 3306)",
       "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h', USER "
       "'u', PASSWORD " R ", PORT 3306)",
       1},
      {"ALTER SERVER s OPTIONS (PASSWORD 'pw7')",
       "ALTER SERVER s OPTIONS (PASSWORD " R ")", 1},
      {"CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='x'",
       "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD=" R, 1},
      {"CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = 'x'",
       "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = " R, 1},
      /* PASSWORD() anywhere, also in statement-format DML. */
      {"UPDATE mysql.user SET authentication_string = PASSWORD('x') WHERE "
       "user = 'password'",
       "UPDATE mysql.user SET authentication_string = PASSWORD(" R
       ") WHERE user = 'password'",
       1},
      {"INSERT INTO t VALUES (PASSWORD(CONCAT('a', \"b\")), 'c')",
       "INSERT INTO t VALUES (PASSWORD(CONCAT(" R ", " R ")), 'c')", 2},
  };
  check_vecs(v, sizeof(v) / sizeof(v[0]), 0);
}
END_TEST

START_TEST(redact_tricky_quoting) {
  static const vec_t v[] = {
      /* Doubled quotes, escaped quotes, other quotes inside. */
      {"CREATE USER u IDENTIFIED BY 'it''s'", "CREATE USER u IDENTIFIED BY " R,
       1},
      {"CREATE USER u IDENTIFIED BY 'a\\\\' COMMENT 'c'",
       "CREATE USER u IDENTIFIED BY " R " COMMENT 'c'", 1},
      {"CREATE USER u IDENTIFIED BY \"d\\\"q\" COMMENT 'c'",
       "CREATE USER u IDENTIFIED BY " R " COMMENT 'c'", 1},
      {"CREATE USER u IDENTIFIED BY '\"' COMMENT '\"'",
       "CREATE USER u IDENTIFIED BY " R " COMMENT '\"'", 1},
      {"CREATE USER u IDENTIFIED BY ') , x IDENTIFIED BY'",
       "CREATE USER u IDENTIFIED BY " R, 1},
      /* Adjacent strings are one literal: each part is redacted, and
       * what stands between them stays. Introducers stay. */
      {"CREATE USER u IDENTIFIED BY 'pa' \"ss\"/**/'wd' ACCOUNT LOCK",
       "CREATE USER u IDENTIFIED BY " R " " R "/**/" R " ACCOUNT LOCK", 3},
      {"CREATE USER u /*!1 IDENTIFIED BY 'pa' */ 'ss'",
       "CREATE USER u /*!1 IDENTIFIED BY " R " */ " R, 2},
      {"CREATE USER u IDENTIFIED BY _utf8mb4'p\xc3\xa4ss'",
       "CREATE USER u IDENTIFIED BY _utf8mb4" R, 1},
      {"CREATE USER u IDENTIFIED BY _utf8mb4 'p''q'",
       "CREATE USER u IDENTIFIED BY _utf8mb4 " R, 1},
      {"CREATE USER u IDENTIFIED WITH p AS X'0a0b'",
       "CREATE USER u IDENTIFIED WITH p AS X" R, 1},
      /* Literals side by side become one replacement, not two that would
       * read as one string with a doubled quote. */
      {"SET PASSWORD = PASSWORD(0x41'b')", "SET PASSWORD = PASSWORD(" R ")", 2},
      {"CREATE USER u IDENTIFIED BY 'a'\"b\"", "CREATE USER u IDENTIFIED BY " R,
       2},
      {"SET PASSWORD = PASSWORD(\"a\"b'c')",
       "SET PASSWORD = PASSWORD(" R "b" R ")", 2},
      /* Comments between the keywords, comments that hide keywords, and
       * executable comments that hold code. */
      {"CREATE USER u IDENTIFIED /* by 'no' */ BY -- x\n 'pw'",
       "CREATE USER u IDENTIFIED /* by 'no' */ BY -- x\n " R, 1},
      {"CREATE USER u # IDENTIFIED BY 'no'\n",
       "CREATE USER u # IDENTIFIED BY "
       "'no'\n",
       0},
      {"CREATE USER u /*!80000 IDENTIFIED BY 'pw' */",
       "CREATE USER u /*!80000 IDENTIFIED BY " R " */", 1},
      {"CREATE USER u /*M!100100 IDENTIFIED BY 'pw'*/ COMMENT 'c'",
       "CREATE USER u /*M!100100 IDENTIFIED BY " R "*/ COMMENT 'c'", 1},
      {"CREATE USER u IDENTIFIED BY--not a comment\n'pw'",
       "CREATE USER u IDENTIFIED BY--not a comment\n'pw'", 0},
      /* An unterminated string is redacted to the end. */
      {"CREATE USER u IDENTIFIED BY 'abc\\' , v",
       "CREATE USER u IDENTIFIED BY " R, 1},
      /* Case, and whitespace of every kind. */
      {"create user u identified\tby\r\n'pw'",
       "create user u identified\tby\r\n" R, 1},
      {"CrEaTe UsEr u IdEnTiFiEd By 'pw'", "CrEaTe UsEr u IdEnTiFiEd By " R, 1},
  };
  check_vecs(v, sizeof(v) / sizeof(v[0]), 0);
}
END_TEST

/* Statements without secrets come out unchanged, even where a keyword
 * search would find one. */
START_TEST(redact_leaves_others) {
  static const vec_t v[] = {
      {"INSERT INTO t VALUES ('IDENTIFIED BY ''x''', 'PASSWORD(''y'')')",
       "INSERT INTO t VALUES ('IDENTIFIED BY ''x''', 'PASSWORD(''y'')')", 0},
      {"CREATE TABLE account (id INT, password VARCHAR(36), pw_by CHAR(1))",
       "CREATE TABLE account (id INT, password VARCHAR(36), pw_by CHAR(1))", 0},
      {"UPDATE users SET password = 'hash' WHERE id = 1",
       "UPDATE users SET password = 'hash' WHERE id = 1", 0},
      {"ALTER TABLE t PARTITION BY HASH(id) PARTITIONS 4",
       "ALTER TABLE t PARTITION BY HASH(id) PARTITIONS 4", 0},
      {"CREATE TABLE t2 AS SELECT 'a' AS identified",
       "CREATE TABLE t2 AS SELECT 'a' AS identified", 0},
      {"SELECT `identified by 'x'`", "SELECT `identified by 'x'`", 0},
      {"CREATE USER u IDENTIFIED VIA unix_socket",
       "CREATE USER u IDENTIFIED VIA unix_socket", 0},
      {"ALTER USER u PASSWORD EXPIRE INTERVAL 90 DAY",
       "ALTER USER u PASSWORD EXPIRE INTERVAL 90 DAY", 0},
      {"GRANT SELECT ON db.* TO u", "GRANT SELECT ON db.* TO u", 0},
      {"", "", 0},
  };
  check_vecs(v, sizeof(v) / sizeof(v[0]), 0);
}
END_TEST

/* The sql_mode changes where strings end. */
START_TEST(redact_sql_modes) {
  /* NO_BACKSLASH_ESCAPES: 'a\' ends at the second quote, and the
   * COMMENT after it is not part of the password. */
  static const vec_t nbe[] = {
      {"CREATE USER u IDENTIFIED BY 'a\\' COMMENT 'c'",
       "CREATE USER u IDENTIFIED BY " R " COMMENT 'c'", 1},
  };
  check_vecs(nbe, 1, HB_SQL_NO_BACKSLASH_ESCAPES);
  /* ANSI_QUOTES: "x" is an identifier, so this is not a literal. */
  static const vec_t aq[] = {
      {"CREATE USER \"u\" IDENTIFIED BY 'pw'",
       "CREATE USER \"u\" IDENTIFIED BY " R, 1},
      {"CREATE USER u IDENTIFIED BY \"pw\"",
       "CREATE USER u IDENTIFIED BY "
       "\"pw\"",
       0},
  };
  check_vecs(aq, 2, HB_SQL_ANSI_QUOTES);
  ck_assert_uint_eq(hb_sql_mode_flags(1048576), HB_SQL_NO_BACKSLASH_ESCAPES);
  ck_assert_uint_eq(hb_sql_mode_flags(4), HB_SQL_ANSI_QUOTES);
  ck_assert_uint_eq(hb_sql_mode_flags(0x4000000), 0);
}
END_TEST

/* Every prefix of a statement with secrets: never a read past the end,
 * never a secret's first characters left in place, the same text when
 * redacted twice. */
START_TEST(redact_every_prefix) {
  const char *s = "CREATE USER u IDENTIFIED BY 'sec\\'ret' /*!1 , v IDENTIFIED "
                  "VIA p USING PASSWORD('xyz') */";
  size_t n = strlen(s);
  for (size_t k = 0; k <= n; k++) {
    char *copy = malloc(k ? k : 1);
    memcpy(copy, s, k);
    hb_buf_t b = {0};
    size_t c = hb_sql_redact(copy, k, 0, &b);
    if (c) {
      ck_assert_ptr_null(memmem(b.p, b.len, "sec", 3));
      ck_assert_ptr_null(memmem(b.p, b.len, "xyz", 3));
      /* Redacting again changes nothing. */
      hb_buf_t b2 = {0};
      if (hb_sql_redact(b.p, b.len, 0, &b2))
        ck_assert(b2.len == b.len && memcmp(b2.p, b.p, b.len) == 0);
      hb_buf_free(&b2);
    }
    hb_buf_free(&b);
    free(copy);
  }
}
END_TEST

/* ---- the tables a statement names ---- */

/* "t1,t2|db": the tables hb_sql_names() finds, then its database. */
static const char *names(const char *s, const char *defdb) {
  static char res[1024];
  size_t n = strlen(s);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, s, n);
  hb_sql_names_t nm;
  hb_sql_names(copy, n, defdb, &nm);
  size_t k = 0;
  res[0] = '\0';
  for (size_t i = 0; i < nm.ntables; i++) {
    ck_assert_int_eq(nm.tables[i].name[nm.tables[i].dblen], '.');
    k += (size_t)snprintf(res + k, sizeof(res) - k, "%s%s", i ? "," : "",
                          nm.tables[i].name);
  }
  snprintf(res + k, sizeof(res) - k, "|%s", nm.db);
  hb_sql_names_free(&nm);
  free(copy);
  return res;
}

START_TEST(names_of_statements) {
  static const struct {
    const char *stmt, *defdb, *want;
  } v[] = {
      {"CREATE TABLE items (id INT PRIMARY KEY)", "t1", "t1.items|t1"},
      {"CREATE TABLE t1.items (id INT)", "", "t1.items|"},
      {"create table if not exists `t 1`.`it``ems` like other", "x",
       "t 1.it`ems|x"},
      {"CREATE OR REPLACE TEMPORARY TABLE t LIKE s", "d", "d.t|d"},
      {"ALTER TABLE t1.items ADD COLUMN c INT", "other", "t1.items|other"},
      {"ALTER ONLINE IGNORE TABLE items ADD KEY (c)", "t1", "t1.items|t1"},
      {"ALTER TABLE a RENAME TO b.c", "d", "d.a,b.c|d"},
      {"ALTER TABLE a RENAME COLUMN x TO y, RENAME INDEX i TO j", "d", "d.a|d"},
      {"ALTER TABLE a EXCHANGE PARTITION p WITH TABLE e.b", "d", "d.a,e.b|d"},
      {"ALTER TABLE a ADD c INT COMMENT 'RENAME TO x'", "d", "d.a|d"},
      {"DROP TABLE IF EXISTS `t1`.`x` /* generated by server */", "", "t1.x|"},
      {"DROP TEMPORARY TABLE a, b.c, `d`", "z", "z.a,b.c,z.d|z"},
      {"RENAME TABLE a TO b, c.d TO e.f", "z", "z.a,z.b,c.d,e.f|z"},
      {"TRUNCATE TABLE s.t", "", "s.t|"},
      {"TRUNCATE t", "s", "s.t|s"},
      {"CREATE UNIQUE INDEX i ON s.t (c)", "", "s.t|"},
      {"DROP INDEX i ON t", "s", "s.t|s"},
      {"CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON t FOR "
       "EACH ROW SET NEW.a = 1",
       "s", "s.t|s"},
      {"CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER "
       "VIEW `v` AS SELECT * FROM t",
       "s", "s.v|s"},
      {"CREATE SEQUENCE s.seq", "", "s.seq|"},
      {"DROP VIEW IF EXISTS v1, v2", "s", "s.v1,s.v2|s"},
      {"OPTIMIZE NO_WRITE_TO_BINLOG TABLE a, b", "s", "s.a,s.b|s"},
      {"INSERT INTO nopk VALUES (5, 'stmt')", "hbt", "hbt.nopk|hbt"},
      {"INSERT LOW_PRIORITY IGNORE t2.x SET a = 1", "hbt", "t2.x|hbt"},
      {"REPLACE INTO `a`.b VALUES (1)", "", "a.b|"},
      {"UPDATE IGNORE s.t SET a = 1", "", "s.t|"},
      {"DELETE QUICK FROM t WHERE a = 1", "s", "s.t|s"},
      {"DELETE t1, t2 FROM t1 JOIN t2", "s", "s.t1,s.t2|s"},
      {"LOAD DATA INFILE '/tmp/x' INTO TABLE s.t", "", "s.t|"},
      {"/*!40000 ALTER TABLE `t` DISABLE KEYS */", "s", "s.t|s"},
      /* Statements about a database: no table, the database named. */
      {"CREATE DATABASE hbt CHARACTER SET utf8mb4", "", "|hbt"},
      {"DROP DATABASE IF EXISTS `hbt`", "x", "|hbt"},
      {"DROP SCHEMA hbt", "x", "|hbt"},
      {"ALTER DATABASE CHARACTER SET utf8mb4", "cur", "|cur"},
      {"ALTER DATABASE other COLLATE utf8mb4_bin", "cur", "|other"},
      {"DROP TRIGGER IF EXISTS s.tr", "x", "|s"},
      /* Statements that name no table. */
      {"CREATE USER u IDENTIFIED BY '<redacted>'", "", "|"},
      {"GRANT SELECT ON s.t TO u", "cur", "|cur"},
      {"CREATE DEFINER=`u`@`%` PROCEDURE p() BEGIN CREATE TABLE x (a INT); "
       "END",
       "s", "|s"},
      {"CREATE FUNCTION f() RETURNS INT RETURN 1", "s", "|s"},
      {"SET @a = 1", "s", "|s"},
      {"", NULL, "|"},
      /* Cut short: what is there. */
      {"ALTER TABLE", "s", "|s"},
      {"ALTER TABLE `a", "s", "s.a|s"},
      {"RENAME TABLE a TO", "s", "s.a|s"},
      {"DROP TABLE a.", "s", "s.a|s"},
      {"DROP TRIGGER IF EXISTS", "s", "|s"},
      {"DROP TRIGGER (", "s", "|s"},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    const char *got = names(v[i].stmt, v[i].defdb);
    ck_assert_msg(strcmp(got, v[i].want) == 0, "%s (db %s)\n got: %s\nwant: %s",
                  v[i].stmt, v[i].defdb, got, v[i].want);
  }
}
END_TEST

/* The one rule, for the relay, tail and decode. */
static int wanted(const char *stmt, const char *db, const char *pats) {
  char *copy = strdup(pats);
  char *pv[16];
  size_t np = 0;
  for (char *p = strtok(copy, ","); p && np < 16; p = strtok(NULL, ","))
    pv[np++] = p;
  hb_ddl_t d = {0};
  d.statement = stmt;
  d.len = strlen(stmt);
  d.db = db;
  int w = hb_ddl_wanted(&d, pv, np);
  free(copy);
  return w;
}

START_TEST(ddl_rule) {
  static const struct {
    const char *stmt, *db, *pats;
    int want;
  } v[] = {
      /* The qualified name decides, whatever the default database. */
      {"ALTER TABLE t1.items ADD c INT", "other", "t1.*", 1},
      {"ALTER TABLE t1.items ADD c INT", "", "t1.*", 1},
      {"ALTER TABLE t1.items ADD c INT", "t1", "t2.*", 0},
      {"ALTER TABLE t1.items ADD c INT", "t1", "t1.orders", 0},
      {"ALTER TABLE t1.items ADD c INT", "t1", "t1.orders,*.items", 1},
      /* Unqualified names are in the default database. */
      {"ALTER TABLE items ADD c INT", "t1", "t1.*", 1},
      {"ALTER TABLE items ADD c INT", "t1", "t1.items", 1},
      {"ALTER TABLE items ADD c INT", "t1", "t1.orders", 0},
      {"ALTER TABLE items ADD c INT", "t2", "t1.*", 0},
      {"RENAME TABLE t1.a TO t2.a", "", "t2.*", 1},
      {"DROP TABLE t1.a, t2.b", "", "t2.b", 1},
      {"DROP TABLE t1.a, t2.b", "", "t3.*", 0},
      /* A pattern without a dot is whole databases (decode --tables). */
      {"ALTER TABLE t1.items ADD c INT", "", "t1", 1},
      {"ALTER TABLE t1.items ADD c INT", "t1", "t2", 0},
      /* No table named: the database it concerns. */
      {"CREATE DATABASE t1", "", "t1.*", 1},
      {"CREATE DATABASE t1", "", "t1.items", 1},
      {"DROP DATABASE t1", "t2", "t2.*", 0},
      {"CREATE USER u IDENTIFIED BY '<redacted>'", "", "t1.*", 0},
      {"CREATE USER u IDENTIFIED BY '<redacted>'", "", "*.*", 1},
      {"CREATE PROCEDURE p() SELECT 1", "t1", "t1.*", 1},
      /* No patterns: everything. */
      {"CREATE USER u", "", "", 1},
      {"ALTER TABLE x.y ADD c INT", "", "", 1},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
    ck_assert_msg(wanted(v[i].stmt, v[i].db, v[i].pats) == v[i].want,
                  "%s (db '%s') for '%s': want %d", v[i].stmt, v[i].db,
                  v[i].pats, v[i].want);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("decoder sql");
  TCase *tc = tcase_create("redact");
  tcase_add_test(tc, redact_user_statements);
  tcase_add_test(tc, redact_tricky_quoting);
  tcase_add_test(tc, redact_leaves_others);
  tcase_add_test(tc, redact_sql_modes);
  tcase_add_test(tc, redact_every_prefix);
  suite_add_tcase(s, tc);
  tc = tcase_create("names");
  tcase_add_test(tc, names_of_statements);
  tcase_add_test(tc, ddl_rule);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
