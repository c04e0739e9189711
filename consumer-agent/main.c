/*
 * herald-agent: is a consumer-group member: it pulls its partitions from relays
 * into a sink.
 */
#include <stdio.h>

#include "hd_cli.h"
#include "hd_confdefs.h"
#include "hd_log.h"

static const char usage[] =
    "Usage: herald-agent --config FILE [options]\n"
    "\n"
    "herald-agent is a consumer-group member: it pulls its partitions from "
    "relays into a sink.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the agent config (YAML; see config/agent.yaml)\n"
    "      --check-config    validate the config, print 'ok' and exit\n"
    "  -v, --verbose         more logging (repeat for debug)\n"
    "      --log-level LVL   debug, info, warn (default), error or off\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 bad usage or invalid config.\n";

int main(int argc, char **argv) {
  hd_daemon_opts_t o;
  hd_agent_conf_t conf;
  int rc = hd_daemon_cli(argc, argv, "herald-agent", usage, &o);
  if (rc >= 0)
    return rc;
  rc = hd_daemon_load("herald-agent", &o, &hd_agent_schema, &conf);
  if (rc < 0) {
    /* The config is valid, but this release has no agent service yet: say
     * so plainly instead of pretending to run. */
    hd_log(HD_LL_ERROR, "agent", "not available",
           "reason=\"herald %s only validates agent configs (--check-config)\"",
           HD_VERSION);
    rc = 1;
  }
  hd_config_free(&hd_agent_schema, &conf);
  return rc;
}
