/*
 * Unit tests of the relay's reading of SHOW GRANTS (relay_fetch.c): which
 * privileges of the source user are beyond what the relay needs, named
 * once each, and nothing but privilege names copied (a grant line may
 * carry the password's hash).
 */
#include <stdio.h>
#include <string.h>

#include "hd_check.h"
#include "relay_fetch.h"

static const char *extras(const char *const *lines) {
  static char out[512];
  out[0] = '\0';
  for (int i = 0; lines[i]; i++)
    relay_grant_extras(lines[i], out, sizeof(out));
  return out;
}

START_TEST(grant_lines) {
  static const struct {
    const char *lines[4];
    const char *want;
  } cases[] = {
      /* The sandbox's herald_repl: exactly what is needed. */
      {{"GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO "
        "`herald_repl`@`127.0.0.1` IDENTIFIED BY PASSWORD "
        "'*A17E2E4888F29EDCEF669B4D02E5E020A89B98E0'",
        NULL},
       ""},
      /* MySQL's names. */
      {{"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `r`@`%`",
        "GRANT SELECT ON `shop`.* TO `r`@`%`", NULL},
       ""},
      {{"GRANT USAGE ON *.* TO `r`@`%`",
        "GRANT REPLICATION REPLICA ON *.* TO `r`@`%`", NULL},
       ""},
      {{"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION", NULL},
       "ALL PRIVILEGES, GRANT OPTION, PROXY"},
      /* Column lists, a database's grant, the same privilege twice. */
      {{"GRANT SELECT (a, b), INSERT (c), UPDATE ON `shop`.`t` TO `r`@`%`",
        "GRANT INSERT, DELETE, DROP ON `shop`.* TO `r`@`%`", NULL},
       "INSERT, UPDATE, DELETE, DROP"},
      /* MySQL 8's dynamic privileges, without spaces. */
      {{"GRANT BACKUP_ADMIN,SUPER ON *.* TO `r`@`%`", NULL},
       "BACKUP_ADMIN, SUPER"},
      /* A role: its privileges have lines of their own. */
      {{"GRANT `app_role` TO `r`@`%`", "SET DEFAULT ROLE x", NULL}, ""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    ck_assert_msg(strcmp(extras(cases[i].lines), cases[i].want) == 0,
                  "case %zu: got '%s', want '%s'", i, extras(cases[i].lines),
                  cases[i].want);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("relay grants");
  TCase *tc = tcase_create("grants");
  tcase_add_test(tc, grant_lines);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
