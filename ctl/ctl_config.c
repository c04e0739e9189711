/*
 * heraldctl validate-config / config-doc.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "hd_cli.h"
#include "hd_confdefs.h"

int ctl_validate_config(int argc, char **argv) {
  static const char usage[] =
      "Usage: heraldctl validate-config FILE...\n"
      "\n"
      "Checks herald config files of any kind; the kind is named by the\n"
      "file's top-level section (relay:, agent: or coordinator:). Prints\n"
      "'FILE: ok (KIND config)' for each valid file and\n"
      "'FILE:LINE:COLUMN: what is wrong' for the first error of an invalid\n"
      "one. Exit 0 if all are valid, 2 otherwise.\n";
  if (argc < 2)
    return hd_cli_usage("heraldctl validate-config", "needs a FILE");
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    fputs(usage, stdout);
    return HD_EXIT_OK;
  }
  int rc = HD_EXIT_OK;
  for (int i = 1; i < argc; i++) {
    union {
      hd_relay_conf_t r;
      hd_agent_conf_t a;
      hd_coord_conf_t c;
    } conf;
    char err[512];
    int which;
    if (argv[i][0] == '-' && argv[i][1] != '\0')
      return hd_cli_usage("heraldctl validate-config", "unknown option '%s'",
                          argv[i]);
    if (hd_config_load_any(argv[i], hd_all_schemas, 3, &which, &conf, err,
                           sizeof(err)) < 0) {
      fprintf(stderr, "%s\n", err);
      rc = HD_EXIT_USAGE;
    } else {
      printf("%s: ok (%s config)\n", argv[i], hd_all_schemas[which]->kind);
    }
    if (which >= 0)
      hd_config_free(hd_all_schemas[which], &conf);
  }
  return rc;
}

int ctl_config_doc(int argc, char **argv) {
  if (argc > 2)
    return hd_cli_usage("heraldctl config-doc", "takes at most one KIND");
  for (int i = 0; i < 3; i++) {
    if (argc == 2 && strcmp(argv[1], hd_all_schemas[i]->kind) != 0)
      continue;
    hd_config_print_doc(hd_all_schemas[i], stdout);
    printf("\n");
    if (argc == 2)
      return HD_EXIT_OK;
  }
  if (argc == 2)
    return hd_cli_usage("heraldctl config-doc",
                        "unknown kind '%s' (relay, agent or coordinator)",
                        argv[1]);
  return HD_EXIT_OK;
}
