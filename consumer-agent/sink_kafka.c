/*
 * sink_kafka.c - the kafka sink: every change line produced to Kafka
 * (librdkafka), one message per row change (two for a key move a
 * partition owns both halves of).
 *
 * Topic: sink.topic with {db} and {table} replaced by the change's
 * source.db and source.table (default "herald.{db}.{table}"). Key: the
 * change's "key" JSON as the line has it (compact, key-column order;
 * "null" for a table without a primary key), so that Kafka's partitioner
 * (murmur2_random, the Java client's, unless sink.options says another)
 * puts every change of a key in one Kafka partition. Value: the JSON line
 * without its '\n'. Headers: herald.scn (decimal), herald.source
 * ("file:pos" of the row's binlog event), herald.partition, and on the
 * two halves of a key move herald.keymove: "old" or "new".
 *
 * Key moves (an update with "old_key", docs/change-format.md): the relay
 * sends the line to the old key's partition and to the new key's. The
 * old key's partition produces it keyed by old_key (herald.keymove old:
 * the consumer deletes old_key), the new key's partition keyed by key
 * (herald.keymove new: it upserts after). Each half lands in its key's
 * Kafka partition behind that key's earlier changes, produced by the
 * herald partition that orders that key; a partition owning both
 * produces the old half first. Which halves a partition owns is
 * herald_change_owned() on the typed chunk; the JSON lines of a chunk
 * are not the chunk's changes one to one (libherald holds a chunk's last
 * line back until the next chunk), so the answers wait in a FIFO, in
 * binlog order, until their line comes. Without the typed chunk (unit
 * tests) both halves are produced.
 *
 * One producer per partition handle: rd_kafka_flush() and the delivery
 * reports are per producer, so a flush waits only for its own
 * partition's messages, a broker error or an idempotent producer's fatal
 * error breaks only that partition, and the close of a broken partition
 * (purge, destroy) touches no one else's messages. Its cost is a
 * producer's threads (one per broker and a few) per partition held:
 * fine for the tens of partitions an agent holds, not for thousands.
 * Delivery reports and error callbacks are served in rd_kafka_poll() and
 * rd_kafka_flush(), i.e. on the partition's own thread (sink.h, Threads),
 * so the failure state needs no lock.
 *
 * Delivery: enable.idempotence=true (which also means acks=all and at
 * most 5 requests in flight, so retries keep per-key order and add no
 * duplicates within a producer session), message.timeout.ms =
 * sink.timeout. sink.options adds librdkafka properties; the ones that
 * weaken delivery are refused (hd_kafka_option_refused()). sink_flush()
 * waits with rd_kafka_flush(), bounded by sink.timeout, and returns 0
 * only when every message produced on the partition got a successful
 * delivery report. A failed report (the broker's error, a message timed
 * out, a fatal idempotence error), messages still unacknowledged at the
 * bound, or a produce call refused break the handle with HD_ESINK_REMOTE
 * naming the topic, the error and the SCN; the agent closes the partition
 * and replays from its checkpoint, which never covers an unacknowledged
 * message. A later success changes nothing: the partition is broken until
 * closed. Replays after a failure or a restart are duplicates in the
 * topic (a new producer session); consumers drop them by herald.scn.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "sink_int.h"

#define COMP "kafka"

typedef struct {
  sink_t base;
  char *brokers;
  char *topic; /* the template */
  int64_t timeout_ms;
  char **options; /* key, value, ... (sink.options) */
  size_t n_options;
} kafka_sink_t;

/* One key move's halves, as herald_change_owned() said. */
typedef struct {
  unsigned char old_own, new_own;
} kafka_move_t;

typedef struct {
  sink_part_t base;
  rd_kafka_t *rk;
  int fail;
  char fail_msg[256];
  uint64_t produced, acked; /* messages since open; acked: successful DRs */
  uint64_t scn;             /* the current window */
  kafka_move_t *moves;      /* FIFO of key moves waiting for their line */
  size_t moves_head, moves_n, moves_cap;
} kafka_part_t;

static void set_fail(kafka_part_t *kp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_fail(kafka_part_t *kp, const char *fmt, ...) {
  if (kp->fail)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(kp->fail_msg, sizeof kp->fail_msg, fmt, ap);
  va_end(ap);
  kp->fail = 1;
}

static void kafka_destroy(sink_t *s) {
  kafka_sink_t *ks = (kafka_sink_t *)s;
  if (ks == NULL)
    return;
  free(ks->brokers);
  free(ks->topic);
  for (size_t i = 0; i < ks->n_options; i++)
    free(ks->options[i]);
  free(ks->options);
  free(ks);
}

/* The producer's configuration: herald's settings, then sink.options
 * (checked again here: a config file that bypassed validate-config still
 * cannot weaken delivery). */
static rd_kafka_conf_t *make_conf(const kafka_sink_t *ks, uint32_t p, char *err,
                                  size_t errlen, int *rc) {
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  char tmo[32], cid[64], e[512];
  snprintf(tmo, sizeof tmo, "%" PRId64, ks->timeout_ms);
  snprintf(cid, sizeof cid, "herald-agent-p%" PRIu32, p);
  const char *fixed[][2] = {
      {"bootstrap.servers", ks->brokers},
      {"client.id", cid},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"max.in.flight.requests.per.connection", "5"},
      {"message.timeout.ms", tmo},
      {"partitioner", "murmur2_random"},
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (rd_kafka_conf_set(c, fixed[i][0], fixed[i][1], e, sizeof e) !=
        RD_KAFKA_CONF_OK) {
      *rc = hd_errorf(err, errlen, HD_ECONFIG, "kafka: %s=%s: %s", fixed[i][0],
                      fixed[i][1], e);
      rd_kafka_conf_destroy(c);
      return NULL;
    }
  for (size_t i = 0; i + 1 < ks->n_options; i += 2) {
    const char *k = ks->options[i], *v = ks->options[i + 1];
    const char *why = hd_kafka_option_refused(k, v);
    if (why != NULL) {
      *rc = hd_errorf(err, errlen, HD_ECONFIG, "sink.options: %s: %s: %s", k, v,
                      why);
      rd_kafka_conf_destroy(c);
      return NULL;
    }
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
      *rc = hd_errorf(err, errlen, HD_ECONFIG, "sink.options: %s: %s", k, e);
      rd_kafka_conf_destroy(c);
      return NULL;
    }
  }
  *rc = 0;
  return c;
}

static int kafka_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                        size_t errlen) {
  if (conf->sink.brokers == NULL || conf->sink.brokers[0] == '\0')
    return hd_errorf(err, errlen, HD_ECONFIG,
                     "sink: type kafka needs 'brokers' (host:port,...)");
  kafka_sink_t *ks = hd_calloc(1, sizeof *ks);
  ks->brokers = hd_strdup(conf->sink.brokers);
  ks->topic =
      hd_strdup(conf->sink.topic ? conf->sink.topic : "herald.{db}.{table}");
  ks->timeout_ms = (int64_t)conf->sink.timeout_ms;
  ks->n_options = conf->sink.options.n;
  ks->options = hd_calloc(ks->n_options + 1, sizeof *ks->options);
  for (size_t i = 0; i < ks->n_options; i++)
    ks->options[i] = hd_strdup(conf->sink.options.v[i]);
  /* Every property checked once now, so that a typo stops the agent at
   * its start and not at the first partition. */
  int rc;
  rd_kafka_conf_t *c = make_conf(ks, 0, err, errlen, &rc);
  if (c == NULL) {
    kafka_destroy(&ks->base);
    return rc;
  }
  rd_kafka_conf_destroy(c);
  *out = &ks->base;
  return 0;
}

static const char *hdr(const rd_kafka_message_t *m, const char *name) {
  rd_kafka_headers_t *h = NULL;
  const void *v = NULL;
  size_t n = 0;
  static __thread char buf[64];
  if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      v == NULL)
    return "?";
  snprintf(buf, sizeof buf, "%.*s", (int)(n < 60 ? n : 60), (const char *)v);
  return buf;
}

/* A delivery report, on the partition's thread (poll, flush). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
  (void)rk;
  kafka_part_t *kp = opaque;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
      rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED) {
    kp->acked++;
    return;
  }
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) { /* never seen; not trusted */
    set_fail(kp,
             "kafka: partition %" PRIu32 ": produce to %s (scn %s): a "
             "report without an error but not persisted (status %d)",
             kp->base.partition, rd_kafka_topic_name(m->rkt),
             hdr(m, "herald.scn"), (int)rd_kafka_message_status(m));
    return;
  }
  set_fail(kp, "kafka: partition %" PRIu32 ": produce to %s (scn %s): %s",
           kp->base.partition, rd_kafka_topic_name(m->rkt),
           hdr(m, "herald.scn"), rd_kafka_err2str(m->err));
}

/* An error of the client (brokers down, a fatal idempotence error): only
 * a fatal one breaks the partition by itself; the others show in the log
 * and, if they last, as failed or missing delivery reports. */
static void on_error(rd_kafka_t *rk, int code, const char *reason,
                     void *opaque) {
  kafka_part_t *kp = opaque;
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char fe[256];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fe, sizeof fe);
    set_fail(kp,
             "kafka: partition %" PRIu32 ": fatal producer error (scn %" PRIu64
             "): %s: %s",
             kp->base.partition, kp->scn, rd_kafka_err2name(orig), fe);
    return;
  }
  hd_log(HD_LL_WARN, COMP, "kafka client error",
         "partition=%" PRIu32 " err=%s reason=\"%s\"", kp->base.partition,
         rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
  (void)rk;
  /* At most a warning: what fails a partition is logged by the agent
   * with the sink's error; the library's lines are the detail. */
  hd_log(level <= 4   ? HD_LL_WARN
         : level <= 6 ? HD_LL_INFO
                      : HD_LL_DEBUG,
         COMP, "librdkafka", "facility=%s msg=\"%s\"", fac, buf);
}

static int kafka_close(sink_part_t *part, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  kafka_part_t *kp = (kafka_part_t *)part;
  if (kp->rk != NULL) {
    /* A broken partition's messages still queued or in flight are
     * dropped: the replay from the checkpoint sends them again. Their
     * reports (purged) are served here, while kp still exists. */
    if (rd_kafka_outq_len(kp->rk) > 0) {
      rd_kafka_purge(kp->rk,
                     RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_flush(kp->rk, 1000);
    }
    rd_kafka_destroy(kp->rk);
  }
  free(kp->moves);
  free(kp);
  return 0;
}

static int kafka_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                      uint64_t *position, char *err, size_t errlen) {
  (void)epoch;
  kafka_sink_t *ks = (kafka_sink_t *)s;
  *position = 0;
  int rc;
  rd_kafka_conf_t *c = make_conf(ks, p, err, errlen, &rc);
  if (c == NULL)
    return rc;
  kafka_part_t *kp = hd_calloc(1, sizeof *kp);
  kp->base.partition = p;
  rd_kafka_conf_set_opaque(c, kp);
  rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
  rd_kafka_conf_set_error_cb(c, on_error);
  rd_kafka_conf_set_log_cb(c, on_log);
  char e[512];
  kp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
  if (kp->rk == NULL) {
    rd_kafka_conf_destroy(c);
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "kafka: partition %" PRIu32 ": producer for %s: %s", p,
                   ks->brokers, e);
    kafka_close(&kp->base, err, 0);
    return rc;
  }
  *out = &kp->base;
  return 0;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int check_fail(kafka_part_t *kp, char *err, size_t errlen) {
  return kp->fail ? hd_errorf(err, errlen, HD_ESINK_REMOTE, "%s", kp->fail_msg)
                  : 0;
}

/* One message; a full local queue waits for room (serving reports) at
 * most sink.timeout. */
static int produce(kafka_part_t *kp, const char *topic, const char *key,
                   const char *line, size_t len, const char *scn,
                   const char *src, const char *part, const char *move,
                   char *err, size_t errlen) {
  kafka_sink_t *ks = (kafka_sink_t *)kp->base.sink;
  uint64_t until = now_ms() + (uint64_t)ks->timeout_ms;
  for (;;) {
    /* Owned by librdkafka once produced, ours to free otherwise. */
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "herald.scn", -1, scn, -1);
    rd_kafka_header_add(h, "herald.source", -1, src, -1);
    rd_kafka_header_add(h, "herald.partition", -1, part, -1);
    if (move != NULL)
      rd_kafka_header_add(h, "herald.keymove", -1, move, -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        kp->rk, RD_KAFKA_V_TOPIC(topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)line, len),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
      rd_kafka_headers_destroy(h);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      kp->produced++;
      return 0;
    }
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && now_ms() < until) {
      rd_kafka_poll(kp->rk, 100);
      int rc = check_fail(kp, err, errlen);
      if (rc < 0)
        return rc;
      continue;
    }
    char fe[256] = "";
    if (e == RD_KAFKA_RESP_ERR__FATAL)
      rd_kafka_fatal_error(kp->rk, fe, sizeof fe);
    return hd_errorf(err, errlen, HD_ESINK_REMOTE,
                     "kafka: partition %" PRIu32 ": produce to %s (scn %s): "
                     "%s%s%s",
                     kp->base.partition, topic, scn, rd_kafka_err2str(e),
                     fe[0] ? ": " : "", fe);
  }
}

static int produce_line(kafka_part_t *kp, const sink_window_t *w,
                        const char *line, size_t len, char *err,
                        size_t errlen) {
  kafka_sink_t *ks = (kafka_sink_t *)kp->base.sink;
  json_error_t je;
  json_t *j = json_loadb(line, len, 0, &je);
  const char *db = NULL, *table = NULL, *file = NULL;
  json_int_t pos = 0;
  if (j != NULL &&
      json_unpack(j, "{s:{s:s,s:I,s:s,s:s}}", "source", "file", &file, "pos",
                  &pos, "db", &db, "table", &table) != 0) {
    json_decref(j);
    j = NULL;
  }
  if (j == NULL)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "kafka: partition %" PRIu32 ": scn %" PRIu64
                     ": a change line without source.db/table: %s",
                     kp->base.partition, w->scn, je.text);
  char topic[512], scn[32], src[512], part[16];
  char *key = NULL, *old_key = NULL;
  int rc = 0;
  if (agent__expand_template(ks->topic, db, table, 0, topic, sizeof topic) <
      0) {
    rc = hd_errorf(err, errlen, HD_ESINK_VALUE,
                   "kafka: partition %" PRIu32 ": topic for %s.%s too long",
                   kp->base.partition, db, table);
    goto out;
  }
  snprintf(scn, sizeof scn, "%" PRIu64, w->scn);
  snprintf(part, sizeof part, "%" PRIu32, kp->base.partition);
  snprintf(src, sizeof src, "%s:%" JSON_INTEGER_FORMAT, file, pos);
  json_t *jk = json_object_get(j, "key"), *jo = json_object_get(j, "old_key");
  key = json_dumps(jk ? jk : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
  if (jo != NULL && !json_is_null(jo))
    old_key = json_dumps(jo, JSON_COMPACT | JSON_ENCODE_ANY);
  if (key == NULL || (jo != NULL && !json_is_null(jo) && old_key == NULL)) {
    rc = hd_errorf(err, errlen, -ENOMEM,
                   "kafka: partition %" PRIu32 ": scn %" PRIu64
                   ": encoding the key",
                   kp->base.partition, w->scn);
    goto out;
  }
  if (old_key == NULL) {
    rc = produce(kp, topic, key, line, len, scn, src, part, NULL, err, errlen);
    goto out;
  }
  /* A key move: the halves this partition owns, old first. */
  kafka_move_t mv = {1, 1};
  if (kp->moves_n > 0) {
    mv = kp->moves[kp->moves_head];
    kp->moves_head++;
    kp->moves_n--;
  } else if (w->hw != NULL) {
    rc = hd_errorf(err, errlen, HD_ESINK_VALUE,
                   "kafka: partition %" PRIu32 ": scn %" PRIu64
                   ": a key move line without its change in the chunk",
                   kp->base.partition, w->scn);
    goto out;
  }
  if (mv.old_own)
    rc = produce(kp, topic, old_key, line, len, scn, src, part, "old", err,
                 errlen);
  if (rc == 0 && mv.new_own)
    rc = produce(kp, topic, key, line, len, scn, src, part, "new", err, errlen);
out:
  free(key);
  free(old_key);
  json_decref(j);
  return rc;
}

/* The chunk's key moves, in binlog order, onto the FIFO. */
static void queue_moves(kafka_part_t *kp, const sink_window_t *w) {
  if (w->hw == NULL)
    return;
  if (kp->moves_n == 0)
    kp->moves_head = 0;
  size_t n = herald_window_changes(w->hw);
  for (size_t i = 0; i < n; i++) {
    const herald_change_t *ch = herald_window_change(w->hw, i);
    if (herald_change_columns(ch, HERALD_IMAGE_OLD_KEY) == 0)
      continue;
    if (kp->moves_head + kp->moves_n == kp->moves_cap) {
      if (kp->moves_head > 0) {
        memmove(kp->moves, kp->moves + kp->moves_head,
                kp->moves_n * sizeof *kp->moves);
        kp->moves_head = 0;
      } else {
        kp->moves_cap = kp->moves_cap ? 2 * kp->moves_cap : 16;
        kp->moves = hd_realloc(kp->moves, kp->moves_cap * sizeof *kp->moves);
      }
    }
    kafka_move_t *m = &kp->moves[kp->moves_head + kp->moves_n++];
    m->old_own = herald_change_owned(w->hc, ch, HERALD_IMAGE_OLD_KEY) == 1;
    m->new_own = herald_change_owned(w->hc, ch, HERALD_IMAGE_KEY) == 1;
  }
}

static int kafka_write(sink_part_t *part, const sink_window_t *w, char *err,
                       size_t errlen) {
  kafka_part_t *kp = (kafka_part_t *)part;
  kp->scn = w->scn;
  int rc = check_fail(kp, err, errlen);
  if (rc < 0)
    return rc;
  queue_moves(kp, w);
  const char *p = w->json, *end = w->json + w->json_len;
  while (rc == 0 && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0)
      rc = produce_line(kp, w, p, n, err, errlen);
    p += n + 1;
  }
  if (w->last)
    kp->moves_n = 0; /* a whole window has every line out */
  rd_kafka_poll(kp->rk, 0);
  return rc < 0 ? rc : check_fail(kp, err, errlen);
}

static int kafka_flush(sink_part_t *part, char *err, size_t errlen) {
  kafka_part_t *kp = (kafka_part_t *)part;
  kafka_sink_t *ks = (kafka_sink_t *)part->sink;
  rd_kafka_resp_err_t e = rd_kafka_flush(kp->rk, (int)ks->timeout_ms);
  int rc = check_fail(kp, err, errlen);
  if (rc == 0 && (e != RD_KAFKA_RESP_ERR_NO_ERROR || kp->acked != kp->produced))
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "kafka: partition %" PRIu32 ": %" PRIu64
                   " message(s) not acknowledged after %" PRId64
                   " ms (scn %" PRIu64 ", brokers %s): %s",
                   part->partition, kp->produced - kp->acked, ks->timeout_ms,
                   kp->scn, ks->brokers, rd_kafka_err2str(e));
  return rc;
}

const sink_ops_t sink__kafka_ops = {
    .name = "kafka",
    .create = kafka_create,
    .open_partition = kafka_open,
    .write = kafka_write,
    .flush = kafka_flush,
    .close_partition = kafka_close,
    .destroy = kafka_destroy,
};
