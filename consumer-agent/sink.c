/*
 * sink.c - the generic layer of the sinks: the table of sink types, the
 * partition table, the order check and the broken state that every sink
 * gets without writing them itself.
 */
#include "sink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "sink_db.h"
#include "sink_int.h"

/* Indexed by hd_sink_t. A new sink adds its type there and its ops here. */
static const sink_ops_t *const sink_types[] = {
    [HD_SINK_STDOUT] = &sink__stdout_ops,
    [HD_SINK_FILE] = &sink__file_ops,
    [HD_SINK_COMMAND] = &sink__command_ops,
    [HD_SINK_MYSQL] = &sink__mysql_ops,
    [HD_SINK_POSTGRESQL] = &sink__pg_ops,
    [HD_SINK_PLUGIN] = &sink__plugin_ops,
    [HD_SINK_NATS] = &sink__nats_ops,
    [HD_SINK_HTTP] = &sink__http_ops,
    [HD_SINK_REDIS] = &sink__redis_ops,
    [HD_SINK_KAFKA] = &sink__kafka_ops,
};
#define NTYPES (sizeof(sink_types) / sizeof(sink_types[0]))

/* Marks a partition whose open is in progress, so that a second open of
 * it fails with -EBUSY instead of racing the first. */
static sink_part_t sink_opening;

int sink_wants_json(const sink_t *s) {
  return !s->ops->typed_only;
}

const sink_ops_t *sink_ops_for(int type) {
  if (type < 0 || (size_t)type >= NTYPES)
    return NULL;
  return sink_types[type];
}

int sink_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                size_t errlen) {
  const sink_ops_t *ops = sink_ops_for(conf->sink.type);
  *out = NULL;
  if (ops == NULL)
    return hd_errorf(err, errlen, -EINVAL, "sink.type %d: no such sink",
                     conf->sink.type);
  if (conf->agent.partitions < 1 || conf->agent.partitions > 65536)
    return hd_errorf(err, errlen, -EINVAL,
                     "agent.partitions %" PRId64 ": not in 1..65536",
                     conf->agent.partitions);
  sink_t *s = NULL;
  int rc = ops->create(conf, &s, err, errlen);
  if (rc < 0)
    return rc;
  s->ops = ops;
  s->partitions = (uint32_t)conf->agent.partitions;
  pthread_mutex_init(&s->lock, NULL);
  s->parts = hd_calloc(s->partitions, sizeof(*s->parts));
  *out = s;
  return 0;
}

int sink_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
              uint64_t *position, char *err, size_t errlen) {
  *out = NULL;
  *position = 0;
  if (p >= s->partitions)
    return hd_errorf(err, errlen, -EINVAL,
                     "%s sink: partition %" PRIu32
                     " out of range (agent.partitions is %" PRIu32 ")",
                     s->ops->name, p, s->partitions);
  pthread_mutex_lock(&s->lock);
  int busy = s->parts[p] != NULL;
  if (!busy)
    s->parts[p] = &sink_opening;
  pthread_mutex_unlock(&s->lock);
  if (busy)
    return hd_errorf(err, errlen, -EBUSY,
                     "%s sink: partition %" PRIu32 " is open already",
                     s->ops->name, p);
  sink_part_t *part = NULL;
  uint64_t pos = 0;
  int rc = s->ops->open_partition(s, p, epoch, &part, &pos, err, errlen);
  pthread_mutex_lock(&s->lock);
  s->parts[p] = rc < 0 ? NULL : part;
  pthread_mutex_unlock(&s->lock);
  if (rc < 0)
    return rc;
  part->sink = s;
  part->partition = p;
  part->failed = 0;
  part->failure[0] = '\0';
  part->scn = 0;
  part->chunk = 0;
  part->in_window = 0;
  *out = part;
  *position = pos;
  return 0;
}

/* The order of the contract: chunks 0, 1, ... of a window, then a window
 * with a higher SCN. */
static int check_order(const sink_part_t *part, const sink_window_t *w,
                       char *err, size_t errlen) {
  const char *name = part->sink->ops->name;
  if (part->in_window) {
    if (w->scn == part->scn && w->chunk == part->chunk)
      return 0;
    return hd_errorf(
        err, errlen, HD_ESINK_ORDER,
        "%s sink: partition %" PRIu32 ": got window %" PRIu64 " chunk %" PRIu32
        ", expected chunk %" PRIu32 " of window %" PRIu64,
        name, part->partition, w->scn, w->chunk, part->chunk, part->scn);
  }
  if (w->chunk != 0)
    return hd_errorf(err, errlen, HD_ESINK_ORDER,
                     "%s sink: partition %" PRIu32 ": window %" PRIu64
                     " begins with chunk %" PRIu32 ", expected chunk 0",
                     name, part->partition, w->scn, w->chunk);
  if (part->scn != 0 &&
      (w->snapshot ? w->scn < part->scn : w->scn <= part->scn))
    return hd_errorf(err, errlen, HD_ESINK_ORDER,
                     "%s sink: partition %" PRIu32 ": window %" PRIu64
                     " after window %" PRIu64 ": SCNs must increase",
                     name, part->partition, w->scn, part->scn);
  return 0;
}

static int broken(const sink_part_t *part, char *err, size_t errlen) {
  return hd_errorf(err, errlen, HD_ESINK_BROKEN,
                   "%s sink: partition %" PRIu32
                   " failed earlier (close and reopen it): %s",
                   part->sink->ops->name, part->partition, part->failure);
}

static int record_failure(sink_part_t *part, int rc, const char *err) {
  part->failed = rc;
  snprintf(part->failure, sizeof(part->failure), "%s", err);
  return rc;
}

int sink_write(sink_part_t *part, const sink_window_t *w, char *err,
               size_t errlen) {
  if (part->failed)
    return broken(part, err, errlen);
  int rc = check_order(part, w, err, errlen);
  if (rc < 0)
    return rc;
  rc = part->sink->ops->write(part, w, err, errlen);
  if (rc < 0)
    return record_failure(part, rc, err);
  part->scn = w->scn;
  part->in_window = !w->last;
  part->chunk = w->last ? 0 : w->chunk + 1;
  return 0;
}

int sink_flush(sink_part_t *part, char *err, size_t errlen) {
  if (part->failed)
    return broken(part, err, errlen);
  int rc = part->sink->ops->flush(part, err, errlen);
  return rc < 0 ? record_failure(part, rc, err) : 0;
}

int sink_idle(sink_part_t *part, char *err, size_t errlen) {
  if (part->failed)
    return broken(part, err, errlen);
  if (part->sink->ops->idle == NULL)
    return 0;
  int rc = part->sink->ops->idle(part, err, errlen);
  return rc < 0 ? record_failure(part, rc, err) : 0;
}

int sink_close(sink_part_t *part, char *err, size_t errlen) {
  sink_t *s = part->sink;
  uint32_t p = part->partition;
  int rc = s->ops->close_partition(part, err, errlen);
  pthread_mutex_lock(&s->lock);
  s->parts[p] = NULL;
  pthread_mutex_unlock(&s->lock);
  return rc;
}

void sink_destroy(sink_t *s) {
  if (s == NULL)
    return;
  for (uint32_t p = 0; p < s->partitions; p++) {
    if (s->parts[p] == NULL)
      continue;
    char err[512];
    hd_log(HD_LL_WARN, "sink", "partition still open at destroy",
           "sink=%s partition=%" PRIu32, s->ops->name, p);
    if (sink_close(s->parts[p], err, sizeof(err)) < 0)
      hd_log(HD_LL_WARN, "sink", "close failed", "sink=%s error=\"%s\"",
             s->ops->name, err);
  }
  free(s->parts);
  pthread_mutex_destroy(&s->lock);
  s->ops->destroy(s);
}
