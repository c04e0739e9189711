/*
 * sink.h - where the agent's windows go: the sink interface.
 *
 * A sink takes the windows of the partitions an agent holds and delivers
 * them to a destination: stdout, a file, a command's stdin, and later
 * databases (MariaDB, PostgreSQL appliers), Kafka, NATS, Redis. The shape
 * is Kafka Connect's SinkTask: open(partition) -> write... -> flush ->
 * close(partition), with the agent writing a partition's checkpoint only
 * after a flush has returned. docs/sinks.md describes the built-in sinks
 * and their guarantees.
 *
 * Calls, per partition:
 *
 *   sink_open(s, p, epoch, &part, &position)   [see sink_ops_t]
 *   sink_write(part, w)                 every chunk of every window, in
 *   ...                                 SCN order
 *   sink_idle(part)                     when no window is waiting
 *   sink_flush(part)                    before each checkpoint of p
 *   sink_flush(part); sink_close(part)  when p is released or the agent
 *                                       stops (final flush, checkpoint,
 *                                       close)
 *
 * The contract between the agent (the caller) and a sink:
 *
 * - Threads. The calls for one partition come from one thread at a time
 *   (not necessarily always the same thread); calls for different
 *   partitions may come concurrently from different threads, including
 *   sink_open() and sink_close(). Whatever a sink shares between
 *   partitions (a file, stdout, a connection pool) it locks itself.
 *   sink_create() and sink_destroy() are called from one thread with no
 *   other call in progress.
 *
 * - Order. sink_write() receives every chunk of a window, chunk 0 first,
 *   and windows in increasing SCN order; the last chunk has last = 1. The
 *   generic layer (sink.c) checks it: a window out of order is refused
 *   with HD_ESINK_ORDER before the sink sees it.
 *
 * - Durability. When sink_flush() returns 0, every window whose last
 *   chunk was written before it on this partition is durable or
 *   acknowledged at the destination, in the sense each sink documents
 *   (file: fsync'd; command: read by the command; stdout: written to fd 1,
 *   and fsync'd when that is a regular file). The caller checkpoints a
 *   partition only up to the last window a flush covered. Chunks of a
 *   window whose last chunk has not been written yet need not be durable
 *   (a database sink commits a window as one transaction at its last
 *   chunk).
 *
 * - Idle. sink_idle() says that the stream has nothing more waiting right
 *   now: a sink that batches windows (a database sink's transaction of
 *   several windows) finishes its batch then, so that a quiet stream is
 *   not held back until the next flush. It promises nothing about
 *   durability and may be a no-op.
 *
 * - Fencing. A sink that keeps its own position at the destination
 *   (database sinks) also keeps the epoch of the partition's owner there
 *   (the assignment's epoch, higher for each new owner). When it finds a
 *   newer epoch than the one it was opened with, another agent owns the
 *   partition: the call fails with HD_ESINK_FENCED, nothing of it is
 *   written, and the caller must drop the partition (no checkpoint, no
 *   retry) instead of opening it again.
 *
 * - Failures. Every call returns 0 or a negative error code (hd_err.h:
 *   a negative errno, HD_ESINK_*) and fills err with one line naming what
 *   failed: the path and the errno text, the command and its exit status,
 *   the partition. A failed write or flush breaks the handle: every later
 *   write and flush on it fails with HD_ESINK_BROKEN (the message repeats
 *   the first failure) until it is closed. The caller then stops that
 *   partition's progress, closes it, waits (agent_retry.h) and opens it
 *   again, streaming from the last checkpoint: the window that failed is
 *   retried, never skipped. Other partitions go on.
 *
 * - Replays. After a reopen (a failure, a restart of the agent, a
 *   partition moving to another agent) the windows after the last
 *   checkpoint come again, some of which the destination may already
 *   hold: delivery is at least once, and a sink must tolerate the replay
 *   (append again, upsert by key, skip by its own stored position). What
 *   a checkpoint covers is never replayed.
 *
 * Ownership: sink_create() returns a sink freed by sink_destroy(); a
 * partition handle lives from sink_open() to sink_close(), which frees it
 * whatever it returns. A sink_window_t and the bytes it points to belong
 * to the caller and are valid only during the sink_write() call.
 *
 * Writing a sink: define a sink_ops_t, embed sink_t as the first member
 * of the sink's struct and sink_part_t as the first member of its
 * partition handle, and add the ops to the table in sink.c under a
 * sink.type (hd_sink_t, common/hd_confdefs.h).
 */
#ifndef AGENT_SINK_H
#define AGENT_SINK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hd_confdefs.h"
#include "herald/herald.h"

/** One chunk of a window, as the caller hands it to sink_write(). */
typedef struct {
  uint64_t scn;     /* the window's SCN (every chunk of it the same) */
  uint64_t ts_ms;   /* its commit time at the source, Unix ms; 0: unknown */
  uint32_t chunk;   /* 0, 1, ... within the window */
  int last;         /* 1 on the last (or only) chunk: the window is whole */
  const char *json; /* this chunk's lines in the change format
                       (docs/change-format.md), each ending in '\n' */
  size_t json_len;  /* bytes at json; may be 0 */
  uint64_t rows;    /* row changes in this chunk */
  const herald_window_t *hw; /* the chunk itself, for typed access
                                (database sinks); NULL in unit tests */
  herald_client_t *hc;       /* the client that delivered it, for its table
                                definitions (herald_change_schema()) and
                                partition facts (herald_change_owned()) */
  int snapshot; /* 1: a snapshot window (docs/snapshots.md): rows of op
                   'r', the state at scn, which may equal the previous
                   window's scn (never less) */
} sink_window_t;

typedef struct sink sink_t;
typedef struct sink_part sink_part_t;

/**
 * The vtable a sink implements. Each operation returns 0 or a negative
 * code with err (errlen bytes, errlen > 0) holding one line. The generic
 * functions below call them; nothing else does.
 */
typedef struct {
  const char *name; /* sink.type, "file" */
  int typed_only;   /* 1: reads only sink_window_t.hw, never the JSON lines
                       (the caller need not render them: json_len 0) */

  /** Allocate the sink (its struct begins with a sink_t) from the agent's
   *  config, check its keys and whatever can be checked before any
   *  partition opens. The generic layer fills the sink_t afterwards. */
  int (*create)(const hd_agent_conf_t *conf, sink_t **out, char *err,
                size_t errlen);

  /** Open partition p: allocate its handle (beginning with a
   *  sink_part_t), connect, open files, start the command.
   *  *position: the SCN up to which the destination itself already holds
   *  p's windows, when the sink keeps its own position there (a database
   *  sink storing it in the transaction that applies a window); 0 when it
   *  keeps none. When non-zero, the caller streams from after it instead
   *  of after the checkpoint: the destination is the truth.
   *  epoch: the owner's epoch of p (see Fencing above). */
  int (*open_partition)(sink_t *s, uint32_t p, uint64_t epoch,
                        sink_part_t **out, uint64_t *position, char *err,
                        size_t errlen);

  /** Deliver one chunk (see sink_window_t). */
  int (*write)(sink_part_t *part, const sink_window_t *w, char *err,
               size_t errlen);

  /** Return only when everything written so far is durable or
   *  acknowledged (see Durability above). */
  int (*flush)(sink_part_t *part, char *err, size_t errlen);

  /** Nothing more is waiting (see Idle above); NULL when the sink does
   *  not batch. */
  int (*idle)(sink_part_t *part, char *err, size_t errlen);

  /** Release p's resources and free the handle, whatever happens. Called
   *  after a final flush when the caller releases p in good order, and
   *  without one after a failure. */
  int (*close_partition)(sink_part_t *part, char *err, size_t errlen);

  /** Free the sink; every partition is closed. */
  void (*destroy)(sink_t *s);
} sink_ops_t;

/** The generic part of every sink; owned by sink.c. */
struct sink {
  const sink_ops_t *ops;
  uint32_t partitions;  /* agent.partitions */
  pthread_mutex_t lock; /* guards parts[] */
  sink_part_t **parts;  /* the open handle of each partition, or NULL */
};

/** The generic part of every partition handle; owned by sink.c. */
struct sink_part {
  sink_t *sink;
  uint32_t partition;
  int failed;        /* the first failed write or flush, 0 if none */
  char failure[256]; /* its message */
  uint64_t scn;      /* the window being written, or the last whole one */
  uint32_t chunk;    /* the next chunk expected of it */
  int in_window;     /* 1 between a window's chunk 0 and its last chunk */
};

/** @brief Whether the sink reads the chunks' JSON lines (sink_ops_t's
 *         typed_only is 0). */
int sink_wants_json(const sink_t *s);

/** @brief The ops of a sink.type (hd_sink_t), or NULL for none. */
const sink_ops_t *sink_ops_for(int type);

/**
 * @brief The sink conf->sink.type names, created from conf (which must
 *        outlive it only during this call: what a sink needs, it copies).
 * @returns 0 and *out; or a negative code with err filled (an unknown
 *          type, a bad sink.path placeholder, ...).
 * @locality any thread, no other call on the sink in progress
 */
int sink_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                size_t errlen);

/**
 * @brief Open partition p (below agent.partitions, not open already).
 * @param epoch     the owner's epoch of p (Fencing above)
 * @param position  set to the SCN the destination holds for p, 0 if none
 *                  (sink_ops_t.open_partition)
 * @returns 0 and *out; -EINVAL for a partition out of range, -EBUSY when
 *          it is open, or the sink's error.
 * @locality any thread (see Threads above)
 */
int sink_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
              uint64_t *position, char *err, size_t errlen);

/**
 * @brief Write one chunk of a window of the partition.
 * @returns 0; HD_ESINK_ORDER when w breaks the order above (nothing
 *          written, the handle stays usable); HD_ESINK_BROKEN after an
 *          earlier failure; or the sink's error, which breaks the handle.
 */
int sink_write(sink_part_t *part, const sink_window_t *w, char *err,
               size_t errlen);

/**
 * @brief Make every window written so far on the partition durable.
 * @returns 0; HD_ESINK_BROKEN after an earlier failure; or the sink's
 *          error, which breaks the handle.
 */
int sink_flush(sink_part_t *part, char *err, size_t errlen);

/**
 * @brief The stream has nothing waiting (Idle above): finish a batch.
 * @returns 0; HD_ESINK_BROKEN after an earlier failure; or the sink's
 *          error, which breaks the handle.
 */
int sink_idle(sink_part_t *part, char *err, size_t errlen);

/**
 * @brief Close the partition and free part (also when it fails: the error
 *        is for the log; the partition can be opened again).
 */
int sink_close(sink_part_t *part, char *err, size_t errlen);

/**
 * @brief Free the sink. Partitions still open are closed first (with a
 *        warning in the log: the caller should have closed them).
 *        NULL is fine.
 */
void sink_destroy(sink_t *s);

/**
 * @brief Command sink only: how long closing a partition waits for its
 *        command to exit after its stdin is closed, and again after
 *        SIGTERM, before SIGKILL. Default 5000 ms. Call before opening
 *        partitions.
 */
void sink_command_set_stop_timeout(sink_t *s, uint64_t ms);

#endif
