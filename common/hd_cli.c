#include "hd_cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

void hd_cli_version(const char *prog) {
  printf("%s (herald) %s\n", prog, HD_VERSION);
}

int hd_cli_bad_option(const char *prog, int c, char **argv) {
  /* getopt_long leaves the offending word at argv[optind - 1]. */
  const char *word = optind > 0 ? argv[optind - 1] : "?";
  if (c == ':')
    fprintf(stderr, "%s: option '%s' needs an argument (see --help)\n", prog,
            word);
  else if (optopt && word[0] == '-' && word[1] != '-')
    fprintf(stderr, "%s: unknown option '-%c' (see --help)\n", prog, optopt);
  else
    fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, word);
  return HD_EXIT_USAGE;
}

int hd_cli_usage(const char *prog, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see --help)\n");
  return HD_EXIT_USAGE;
}

#include <stdlib.h>
#include <string.h>

#include "hd_log.h"

int hd_daemon_cli(int argc, char **argv, const char *prog, const char *usage,
                  hd_daemon_opts_t *o) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"check-config", no_argument, NULL, 't'},
      {"verbose", no_argument, NULL, 'v'},
      {"log-level", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  int c, lvl;
  memset(o, 0, sizeof(*o));
  if (hd_log_init_from_env() < 0)
    return hd_cli_usage(prog, "HERALD_LOG_LEVEL must be debug, info, warn, "
                              "error or off");
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+:c:tvhV", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      o->config = optarg;
      break;
    case 't':
      o->check_config = 1;
      break;
    case 'v':
      if (hd_log_level > HD_LL_DEBUG)
        hd_log_level--;
      break;
    case 'l':
      lvl = hd_log_level_parse(optarg);
      if (lvl < 0)
        return hd_cli_usage(prog,
                            "--log-level: '%s' is not debug, info, warn, "
                            "error or off",
                            optarg);
      hd_log_level = lvl;
      break;
    case 'h':
      fputs(usage, stdout);
      return HD_EXIT_OK;
    case 'V':
      hd_cli_version(prog);
      return HD_EXIT_OK;
    default:
      return hd_cli_bad_option(prog, c, argv);
    }
  }
  if (optind < argc)
    return hd_cli_usage(prog, "unexpected argument '%s'", argv[optind]);
  if (o->config == NULL)
    return hd_cli_usage(prog, "--config FILE is required");
  return -1;
}

int hd_daemon_load(const char *prog, const hd_daemon_opts_t *o,
                   const hd_conf_schema_t *schema, void *conf) {
  char err[512];
  if (hd_config_load_file(o->config, schema, conf, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    return HD_EXIT_USAGE;
  }
  if (o->check_config) {
    printf("%s: ok (%s config)\n", o->config, schema->kind);
    return HD_EXIT_OK;
  }
  (void)prog;
  return -1;
}
