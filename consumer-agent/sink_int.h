/*
 * sink_int.h - what the built-in sinks share; internal to consumer-agent/.
 */
#ifndef AGENT_SINK_INT_H
#define AGENT_SINK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "agent_util.h"
#include "sink.h"

extern const sink_ops_t sink__stdout_ops;
extern const sink_ops_t sink__file_ops;
extern const sink_ops_t sink__command_ops;

#endif
