/*
 * test_mdb.c - the sandbox's MariaDB is what herald needs: binlog on in
 * ROW format with full images and full metadata, GTID, and a replication
 * user that can read the binlog position but not change data.
 */
#include <mysql.h>
#include <stdlib.h>
#include <string.h>

#include "hd_check.h"
#include "sbenv.h"

static MYSQL *connect_repl(void) {
  MYSQL *m = mysql_init(NULL);
  ck_assert_ptr_nonnull(m);
  unsigned port = (unsigned)atoi(sbenv("HERALD_MDB_PORT"));
  MYSQL *r = mysql_real_connect(
      m, sbenv("HERALD_MDB_HOST"), sbenv("HERALD_MDB_REPL_USER"),
      sbenv("HERALD_MDB_REPL_PASSWORD"), NULL, port, NULL, 0);
  ck_assert_msg(r != NULL, "connect as repl user: %s", mysql_error(m));
  return m;
}

static MYSQL *connect_root(void) {
  MYSQL *m = mysql_init(NULL);
  ck_assert_ptr_nonnull(m);
  MYSQL *r = mysql_real_connect(m, NULL, "root", NULL, NULL, 0,
                                sbenv("HERALD_MDB_SOCKET"), 0);
  ck_assert_msg(r != NULL, "connect as root: %s", mysql_error(m));
  return m;
}

/* First row of a one-row query, as strings; row freed by the caller
 * through the returned result. */
static MYSQL_RES *query_row(MYSQL *m, const char *sql, MYSQL_ROW *row) {
  ck_assert_msg(mysql_query(m, sql) == 0, "%s: %s", sql, mysql_error(m));
  MYSQL_RES *res = mysql_store_result(m);
  ck_assert_ptr_nonnull(res);
  *row = mysql_fetch_row(res);
  ck_assert_ptr_nonnull(*row);
  return res;
}

static void exec(MYSQL *m, const char *sql) {
  ck_assert_msg(mysql_query(m, sql) == 0, "%s: %s", sql, mysql_error(m));
}

START_TEST(binlog_settings) {
  MYSQL *m = connect_repl();
  MYSQL_ROW row;
  MYSQL_RES *res = query_row(m,
                             "SELECT @@log_bin, @@binlog_format, "
                             "@@binlog_row_image, @@binlog_row_metadata, "
                             "@@gtid_strict_mode, @@server_id, "
                             "@@binlog_checksum",
                             &row);
  ck_assert_str_eq(row[0], "1");
  ck_assert_str_eq(row[1], "ROW");
  ck_assert_str_eq(row[2], "FULL");
  ck_assert_str_eq(row[3], "FULL");
  ck_assert_str_eq(row[4], "1");
  ck_assert_str_eq(row[5], sbenv("HERALD_MDB_SERVER_ID"));
  ck_assert_str_eq(row[6], "CRC32");
  mysql_free_result(res);
  mysql_close(m);
}
END_TEST

/* The repl user reads the binlog position; a write by another session
 * moves it forward in the same file. */
START_TEST(binlog_position_moves) {
  MYSQL *repl = connect_repl(), *root = connect_root();
  MYSQL_ROW row;
  MYSQL_RES *res = query_row(repl, "SHOW MASTER STATUS", &row);
  char file1[256];
  snprintf(file1, sizeof(file1), "%s", row[0]);
  unsigned long long pos1 = strtoull(row[1], NULL, 10);
  mysql_free_result(res);
  ck_assert_msg(strncmp(file1, "binlog.", 7) == 0, "file %s", file1);
  ck_assert_uint_ge(pos1, 4);

  exec(root, "CREATE DATABASE IF NOT EXISTS t_mdb");
  exec(root, "CREATE TABLE IF NOT EXISTS t_mdb.t (id INT PRIMARY KEY, v "
             "VARCHAR(10))");
  exec(root, "REPLACE INTO t_mdb.t VALUES (1, 'a')");

  res = query_row(repl, "SHOW MASTER STATUS", &row);
  ck_assert_str_eq(row[0], file1);
  ck_assert_uint_gt(strtoull(row[1], NULL, 10), pos1);
  mysql_free_result(res);

  /* SHOW BINARY LOGS works too (BINLOG MONITOR), and GTIDs are on. */
  ck_assert_int_eq(mysql_query(repl, "SHOW BINARY LOGS"), 0);
  mysql_free_result(mysql_store_result(repl));
  res = query_row(repl, "SELECT @@gtid_binlog_pos", &row);
  ck_assert_msg(strncmp(row[0], "0-1-", 4) == 0, "gtid %s", row[0]);
  mysql_free_result(res);
  mysql_close(repl);
  mysql_close(root);
}
END_TEST

/* Exactly the privileges herald needs: it can read, it cannot write. */
START_TEST(repl_user_cannot_write) {
  MYSQL *root = connect_root(), *repl = connect_repl();
  exec(root, "CREATE DATABASE IF NOT EXISTS t_mdb");
  exec(root, "CREATE TABLE IF NOT EXISTS t_mdb.t (id INT PRIMARY KEY, v "
             "VARCHAR(10))");
  ck_assert_int_ne(mysql_query(repl, "INSERT INTO t_mdb.t VALUES (99, 'x')"),
                   0);
  ck_assert_int_eq(mysql_errno(repl), 1142); /* ER_TABLEACCESS_DENIED */
  ck_assert_int_ne(mysql_query(repl, "CREATE DATABASE nope"), 0);
  ck_assert_int_ne(mysql_query(repl, "SET GLOBAL binlog_format='STATEMENT'"),
                   0);
  MYSQL_ROW row;
  MYSQL_RES *res = query_row(repl,
                             "SELECT COUNT(*) FROM information_schema.columns"
                             " WHERE table_schema='t_mdb' AND table_name='t'",
                             &row);
  ck_assert_str_eq(row[0], "2");
  mysql_free_result(res);
  mysql_close(repl);
  mysql_close(root);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("mariadb sandbox");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, binlog_settings);
  tcase_add_test(tc, binlog_position_moves);
  tcase_add_test(tc, repl_user_cannot_write);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
