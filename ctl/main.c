/*
 * heraldctl: the operator's tool.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "hd_cli.h"
#include "hd_log.h"

/* One row per subcommand; new subcommands add a row here. */
static const ctl_cmd_t cmds[] = {
    {"validate-config", ctl_validate_config,
     "check herald config files (any kind)"},
    {"config-doc", ctl_config_doc,
     "print the reference of every config key [KIND]"},
    {"decode", ctl_decode, "print binlog files as JSON change lines"},
    {"tail", ctl_tail, "subscribe to a relay and print its changes"},
    {"status", ctl_status, "relays, coordinators, groups and their lag"},
    {"lag", ctl_lag, "each partition's lag; a check with --max-seconds"},
    {"checkpoint", ctl_checkpoint, "get, set or reset a group's checkpoints"},
    {"drain", ctl_drain, "move an agent's partitions away"},
    {"snapshot", ctl_snapshot,
     "snapshot tables into a running group, or cancel"},
    {"zk-secure", ctl_zk_secure,
     "give a cluster's znodes to its ZooKeeper credentials"},
    {NULL, NULL, NULL}};

static void usage(FILE *out) {
  fprintf(out, "Usage: heraldctl [-v] COMMAND [ARGS...]\n\nCommands:\n");
  for (const ctl_cmd_t *c = cmds; c->name; c++)
    fprintf(out, "  %-17s %s\n", c->name, c->summary);
  fprintf(out,
          "\nOptions:\n"
          "  -v, --verbose    more logging (repeat for debug)\n"
          "  -h, --help       this help ('heraldctl COMMAND --help' for one)\n"
          "  -V, --version    print the version\n"
          "\nExit status: 0 ok, 1 failure, 2 bad usage or invalid input.\n");
}

int main(int argc, char **argv) {
  int i = 1;
  if (hd_log_init_from_env() < 0)
    return hd_cli_usage("heraldctl", "HERALD_LOG_LEVEL must be debug, info, "
                                     "warn, error or off");
  /* Global options come before the command; everything after it belongs
   * to the command. */
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return HD_EXIT_OK;
    } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      hd_cli_version("heraldctl");
      return HD_EXIT_OK;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
      if (hd_log_level > HD_LL_DEBUG)
        hd_log_level--;
    } else {
      return hd_cli_usage("heraldctl", "unknown option '%s'", a);
    }
  }
  if (i >= argc)
    return hd_cli_usage("heraldctl", "missing COMMAND");
  for (const ctl_cmd_t *c = cmds; c->name; c++)
    if (strcmp(argv[i], c->name) == 0)
      return c->run(argc - i, argv + i);
  return hd_cli_usage("heraldctl", "unknown command '%s'", argv[i]);
}
