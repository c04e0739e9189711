/*
 * agent.h - herald-agent's service: the partitions it holds, each
 * streamed by a thread of its own from the relays through libherald into
 * the sink and checkpointed after the sink has flushed; in a group, the
 * membership in ZooKeeper that decides which partitions those are.
 */
#ifndef AGENT_H
#define AGENT_H

#include <signal.h>

#include "hd_confdefs.h"

typedef struct agent agent_t;

/**
 * @brief Run the agent until *stop becomes non-zero (SIGTERM, SIGINT),
 *        then flush, checkpoint and release every partition, leave the
 *        group and return.
 * @returns 0 after a clean stop; 1 when it cannot run (a sink that cannot
 *          be created, a group made for another number of partitions, a
 *          checkpoint file that cannot be read), with the reason logged.
 */
int agent_run(const hd_agent_conf_t *conf, volatile sig_atomic_t *stop);

#endif
