/*
 * heraldctl validate-config / config-doc.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "hd_cli.h"
#include "hd_confdefs.h"

/* The options of a subcommand that has none but --help (anywhere; "--"
 * ends them, for a file whose name starts with '-').
 * @returns -1 to go on with the operands from optind, or the exit code. */
static int parse_help_only(const char *prog, const char *usage, int argc,
                           char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  opterr = 0;
  optind = 0; /* 0, not 1: glibc then also resets its permutation state */
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (c != 'h')
      return hd_cli_bad_option(prog, c, argv);
    fputs(usage, stdout);
    return HD_EXIT_OK;
  }
  return -1;
}

int ctl_validate_config(int argc, char **argv) {
  static const char usage[] =
      "Usage: heraldctl validate-config FILE...\n"
      "\n"
      "Checks herald config files of any kind; the kind is named by the\n"
      "file's top-level section (relay:, agent: or coordinator:). Prints\n"
      "'FILE: ok (KIND config)' for each valid file and\n"
      "'FILE:LINE:COLUMN: what is wrong' for the first error of an invalid\n"
      "one. Exit 0 if all are valid, 2 otherwise.\n";
  int c = parse_help_only("heraldctl validate-config", usage, argc, argv);
  if (c >= 0)
    return c;
  if (optind >= argc)
    return hd_cli_usage("heraldctl validate-config", "needs a FILE");
  int rc = HD_EXIT_OK;
  for (int i = optind; i < argc; i++) {
    union {
      hd_relay_conf_t r;
      hd_agent_conf_t a;
      hd_coord_conf_t c;
    } conf;
    char err[512];
    int which;
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
  static const char usage[] =
      "Usage: heraldctl config-doc [KIND]\n"
      "\n"
      "Prints the reference of every config key as Markdown tables: its\n"
      "type, whether it is required, its default and what it means, from\n"
      "the table the programs load their configs with. KIND (relay, agent\n"
      "or coordinator) limits it to one kind of config. Exit 0, or 2 for\n"
      "an unknown KIND.\n";
  int c = parse_help_only("heraldctl config-doc", usage, argc, argv);
  if (c >= 0)
    return c;
  const char *kind = optind < argc ? argv[optind] : NULL;
  if (argc - optind > 1)
    return hd_cli_usage("heraldctl config-doc", "takes at most one KIND");
  for (int i = 0; i < 3; i++) {
    if (kind && strcmp(kind, hd_all_schemas[i]->kind) != 0)
      continue;
    hd_config_print_doc(hd_all_schemas[i], stdout);
    printf("\n");
    if (kind)
      return HD_EXIT_OK;
  }
  if (kind)
    return hd_cli_usage("heraldctl config-doc",
                        "unknown kind '%s' (relay, agent or coordinator)",
                        kind);
  return HD_EXIT_OK;
}
