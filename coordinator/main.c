/*
 * herald-coordinator: elects a leader among the coordinators of a cluster;
 * the leader assigns each consumer group's partitions to its members
 * (docs/coordinator.md).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "coord.h"
#include "hd_cli.h"
#include "hd_confdefs.h"
#include "hd_log.h"
#include "hd_zk.h"

static const char usage[] =
    "Usage: herald-coordinator --config FILE [options]\n"
    "\n"
    "herald-coordinator assigns the partitions of consumer groups to their\n"
    "members; its instances elect one leader through ZooKeeper.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the coordinator config (YAML; see "
    "config/coordinator.yaml)\n"
    "      --check-config    validate the config, print 'ok' and exit\n"
    "  -v, --verbose         more logging (repeat for debug)\n"
    "      --log-level LVL   debug, info, warn (default), error or off\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 failure, 2 bad usage or invalid\n"
    "config.\n";

typedef struct {
  coord_t *c;
  sigset_t set;
} sig_arg_t;

/* SIGTERM and SIGINT are blocked in every thread and taken here, so that
 * no handler runs inside a ZooKeeper or HTTP library call. */
static void *sig_main(void *arg) {
  sig_arg_t *a = arg;
  int signum;
  if (sigwait(&a->set, &signum) == 0) {
    hd_log(HD_LL_INFO, "coord", "signal", "signum=%d", signum);
    coord_stop(a->c);
  }
  return NULL;
}

static int run(const hd_coord_conf_t *conf) {
  coord_t c;
  coord_init(&c, conf);
  char err[512];
  if (conf->zk.auth_file &&
      (c.zk_auth = hd_zk_read_auth(conf->zk.auth_file, err, sizeof(err))) ==
          NULL) {
    fprintf(stderr, "herald-coordinator: %s\n", err);
    coord_free(&c);
    return HD_EXIT_USAGE;
  }
  sig_arg_t sa = {.c = &c};
  sigemptyset(&sa.set);
  sigaddset(&sa.set, SIGTERM);
  sigaddset(&sa.set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sa.set, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_t thr;
  if (pthread_create(&thr, NULL, sig_main, &sa) != 0) {
    fprintf(stderr, "herald-coordinator: cannot start the signal thread\n");
    coord_free(&c);
    return 1;
  }
  int rc = 0;
  if (coord_http_start(&c, err, sizeof(err)) < 0) {
    fprintf(stderr, "herald-coordinator: coordinator.http %s\n", err);
    rc = 1;
    pthread_kill(thr, SIGTERM); /* ends sig_main */
  } else {
    hd_log(HD_LL_INFO, "coord", "started", "id=%s http=%s:%u cluster=%s",
           conf->coordinator.id, conf->coordinator.http.host,
           conf->coordinator.http.port, conf->cluster);
    rc = coord_run(&c);
  }
  pthread_join(thr, NULL);
  coord_http_stop(&c);
  coord_free(&c);
  return rc;
}

int main(int argc, char **argv) {
  hd_daemon_opts_t o;
  hd_coord_conf_t conf;
  int rc = hd_daemon_cli(argc, argv, "herald-coordinator", usage, &o);
  if (rc >= 0)
    return rc;
  rc = hd_daemon_load("herald-coordinator", &o, &hd_coord_schema, &conf);
  if (rc < 0)
    rc = run(&conf);
  hd_config_free(&hd_coord_schema, &conf);
  return rc;
}
