/*
 * herald-relay: captures a MySQL/MariaDB binlog and serves its transactions to
 * consumers.
 */
#include <stdio.h>

#include "hd_cli.h"
#include "hd_confdefs.h"
#include "hd_log.h"

static const char usage[] =
    "Usage: herald-relay --config FILE [options]\n"
    "\n"
    "herald-relay captures a MySQL/MariaDB binlog and serves its transactions "
    "to consumers.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the relay config (YAML; see config/relay.yaml)\n"
    "      --check-config    validate the config, print 'ok' and exit\n"
    "  -v, --verbose         more logging (repeat for debug)\n"
    "      --log-level LVL   debug, info, warn (default), error or off\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 bad usage or invalid config.\n";

int main(int argc, char **argv) {
  hd_daemon_opts_t o;
  hd_relay_conf_t conf;
  int rc = hd_daemon_cli(argc, argv, "herald-relay", usage, &o);
  if (rc >= 0)
    return rc;
  rc = hd_daemon_load("herald-relay", &o, &hd_relay_schema, &conf);
  if (rc < 0) {
    /* The config is valid, but this release has no relay service yet: say
     * so plainly instead of pretending to run. */
    hd_log(HD_LL_ERROR, "relay", "not available",
           "reason=\"herald %s only validates relay configs (--check-config)\"",
           HD_VERSION);
    rc = 1;
  }
  hd_config_free(&hd_relay_schema, &conf);
  return rc;
}
