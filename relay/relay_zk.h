/*
 * relay_zk.h - the relay's registration in ZooKeeper.
 *
 * An ephemeral node /herald/<cluster>/relays/<source>/<relay.id> holds the
 * address clients dial (relay.advertise), the listen and HTTP addresses,
 * the oldest and newest SCN with the newest window's commit time, the
 * source's server id and the relay's version: docs/zookeeper.md, built by
 * hd_reg (common/hd_reg.h), rewritten every second from the metrics. A
 * thread of its own keeps it there: it re-registers after a session
 * expiry, and while ZooKeeper is away the relay goes on serving consumers
 * regardless.
 */
#ifndef RELAY_ZK_H
#define RELAY_ZK_H

#include "hd_confdefs.h"
#include "relay_metrics.h"

typedef struct relay_zk relay_zk_t;

/** @brief Start registering (conf->zk.hosts must be set) with digest
 *         credentials auth (zookeeper.auth_file's; NULL: none; copied).
 *         Never NULL. */
relay_zk_t *relay_zk_start(const hd_relay_conf_t *conf, relay_metrics_t *m,
                           const char *auth);

/** @brief Remove the registration, close the session, free (NULL ok). */
void relay_zk_stop(relay_zk_t *z);

#endif
