/*
 * herald-agent: a consumer-group member: it pulls the partitions its
 * group assigns it from the relays into a sink (agent.c), or, without
 * zookeeper, every partition standalone.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
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
    "SIGTERM or SIGINT: flush, checkpoint and release every partition, "
    "leave the group, exit 0.\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 bad usage or invalid config.\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

int main(int argc, char **argv) {
  hd_daemon_opts_t o;
  hd_agent_conf_t conf;
  int rc = hd_daemon_cli(argc, argv, "herald-agent", usage, &o);
  if (rc >= 0)
    return rc;
  rc = hd_daemon_load("herald-agent", &o, &hd_agent_schema, &conf);
  if (rc >= 0) {
    hd_config_free(&hd_agent_schema, &conf);
    return rc;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  hd_log(
      HD_LL_INFO, "agent", "starting", "id=%s group=%s partitions=%lld mode=%s",
      conf.agent.id, conf.agent.group ? conf.agent.group : "-",
      (long long)conf.agent.partitions, conf.zk.hosts ? "group" : "standalone");
  rc = agent_run(&conf, &stop_flag);
  hd_config_free(&hd_agent_schema, &conf);
  return rc;
}
