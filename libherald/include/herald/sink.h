/*
 * sink.h - the C ABI of herald-agent's sink plugins (sink.type: plugin).
 *
 * A plugin is a shared object (sink.path) that exports one function,
 * herald_sink_plugin(), returning a table of the calls below. The agent
 * dlopen()s it at start, refuses it when its abi_version is not the
 * agent's HERALD_SINK_ABI_VERSION (a config error: the agent exits), and
 * then drives it exactly as it drives its built-in sinks. docs/plugins.md
 * has the whole contract, an example config and how to build one.
 *
 * Calls, per partition:
 *
 *   open_partition(state, p, epoch, &part, &position)
 *   write(part, w)                 every chunk of every window, in SCN order
 *   idle(part)                     nothing waiting right now (optional)
 *   flush(part)                    before each checkpoint of p
 *   flush(part); close_partition   when p is released or the agent stops
 *
 * The contract, in short (docs/plugins.md says it in full):
 *
 * - Threads: the calls of one partition come from one thread at a time;
 *   different partitions' calls may run concurrently, open and close
 *   included. What the plugin shares between partitions it locks itself.
 *   init and destroy run with no other call in progress.
 * - Order: chunk 0, 1, ... of a window (last = 1 on its last chunk), and
 *   windows in increasing SCN order (a snapshot window may repeat the
 *   previous SCN). The agent checks it before the plugin sees a chunk.
 * - Durability: when flush returns HERALD_SINK_OK, every window whose last
 *   chunk was written before it is durable or acknowledged at the
 *   destination. The agent checkpoints a partition only up to there.
 * - Failures: a call that fails returns a negative status and writes one
 *   line into err (errlen bytes, always > 0). Any negative status but
 *   HERALD_SINK_FENCED is retryable: the agent stops the partition,
 *   closes it, waits (with backoff) and opens it again, streaming from
 *   the last checkpoint. Nothing is skipped.
 * - Fencing: HERALD_SINK_FENCED says the destination names a newer owner
 *   (a higher epoch) of the partition: the agent drops it, no retry.
 * - Replays: after a reopen the windows after the last checkpoint come
 *   again (at least once), unless open_partition returned a position:
 *   then the agent streams from after that SCN.
 *
 * Ownership: the plugin owns its state and partition handles (created by
 * init / open_partition, freed by destroy / close_partition, which frees
 * the handle whatever it returns). A herald_sink_window_t and everything
 * it points to (json, window) belong to the agent and are valid only
 * during write. The config's strings are valid only during init: copy
 * what is kept. The table herald_sink_plugin() returns must stay valid
 * until the object is unloaded (a static const table).
 */
#ifndef HERALD_SINK_H
#define HERALD_SINK_H

#include <stddef.h>
#include <stdint.h>

#include <herald/herald.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raised on any change of the structs or the calls below: the agent
 * loads only plugins built for its own version. */
#define HERALD_SINK_ABI_VERSION 1

/* The name of the one symbol the agent looks up. */
#define HERALD_SINK_SYMBOL "herald_sink_plugin"

enum {
  HERALD_SINK_OK = 0,
  HERALD_SINK_ERROR = -1, /* retryable: the partition stops, reopens */
  HERALD_SINK_FENCED = -2 /* another owner: the partition is dropped */
  /* any other negative value: retryable, like HERALD_SINK_ERROR */
};

/** What init gets: valid only during the init call. */
typedef struct {
  const char *agent_id;    /* agent.id */
  uint32_t partitions;     /* agent.partitions: partition numbers are
                              0 .. partitions - 1 */
  size_t n_options;        /* the entries of sink.options */
  const char *const *keys; /* keys[i] = values[i], in the config's order */
  const char *const *values;
} herald_sink_config_t;

/** One chunk of a window, as write gets it. */
typedef struct {
  uint64_t scn;     /* the window's SCN (every chunk of it the same) */
  uint64_t ts_ms;   /* its commit time at the source, Unix ms; 0: unknown */
  uint32_t chunk;   /* 0, 1, ... within the window */
  int last;         /* 1 on the last (or only) chunk: the window is whole */
  int snapshot;     /* 1: a snapshot window (rows of op 'r') */
  const char *json; /* this chunk's changes as change-format JSON lines
                       (docs/change-format.md), each ending in '\n' */
  size_t json_len;  /* bytes at json; may be 0 */
  uint64_t rows;    /* row changes in this chunk */
  const herald_window_t *window; /* the chunk for typed access through
                                    herald.h (herald_window_*); the plugin
                                    links libherald to use it */
} herald_sink_window_t;

/** The table a plugin exports. abi_version must stay the first field. */
typedef struct {
  uint32_t abi_version; /* HERALD_SINK_ABI_VERSION the plugin was built for */
  const char *name;     /* for the agent's logs and errors */

  /** Check the options, allocate *state. */
  int (*init)(const herald_sink_config_t *conf, void **state, char *err,
              size_t errlen);

  /** Open partition p for the owner of epoch epoch; *part: its handle.
   *  *position (0 on entry): the SCN up to which the destination already
   *  holds p's windows, when the plugin keeps its position there; left 0
   *  when it keeps none. */
  int (*open_partition)(void *state, uint32_t p, uint64_t epoch, void **part,
                        uint64_t *position, char *err, size_t errlen);

  /** Deliver one chunk. */
  int (*write)(void *part, const herald_sink_window_t *w, char *err,
               size_t errlen);

  /** Return only when everything written on part is durable. */
  int (*flush)(void *part, char *err, size_t errlen);

  /** Nothing more waiting right now (finish a batch); may be NULL. */
  int (*idle)(void *part, char *err, size_t errlen);

  /** Release the partition and free part, whatever it returns. */
  int (*close_partition)(void *part, char *err, size_t errlen);

  /** Free state; every partition is closed. */
  void (*destroy)(void *state);
} herald_sink_plugin_t;

/** The symbol a plugin defines; declared here with default visibility so
 *  that it is exported also from objects built with -fvisibility=hidden. */
typedef const herald_sink_plugin_t *(*herald_sink_plugin_fn)(void);
HERALD_API const herald_sink_plugin_t *herald_sink_plugin(void);

#ifdef __cplusplus
}
#endif

#endif
