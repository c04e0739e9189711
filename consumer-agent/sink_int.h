/*
 * sink_int.h - what the built-in sinks share; internal to consumer-agent/.
 */
#ifndef AGENT_SINK_INT_H
#define AGENT_SINK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "agent_util.h"
#include "herald/sink.h"
#include "sink.h"

extern const sink_ops_t sink__stdout_ops;
extern const sink_ops_t sink__file_ops;
extern const sink_ops_t sink__command_ops;
extern const sink_ops_t sink__plugin_ops;
extern const sink_ops_t sink__nats_ops;
extern const sink_ops_t sink__http_ops;
extern const sink_ops_t sink__redis_ops;
extern const sink_ops_t sink__kafka_ops;

/* sink_plugin.c: whether a plugin's table can be used (its ABI version,
 * its calls); 0 or HD_ECONFIG with err naming path and what is wrong. */
int sink_plugin_check(const herald_sink_plugin_t *pl, const char *path,
                      char *err, size_t errlen);

#endif
