/*
 * sink_nats.c - the nats sink: every change line published to NATS
 * JetStream, one message per row change.
 *
 * Subject: sink.subject with {db} and {table} replaced by the change's
 * source.db and source.table (default "herald.{db}.{table}"). Data: the
 * change's JSON line without its '\n'. Headers: Nats-Msg-Id, Herald-Scn
 * (decimal), Herald-Source ("file:pos" of the row's binlog event),
 * Herald-Partition. Nats-Msg-Id is "<scn>-<partition>-<index>", index
 * the row's 0-based position in the partition's window (counting every
 * chunk; txn.index would not do: it counts only the rows a partition
 * sees). A replay of the partition, with the same agent.partitions and
 * tables, publishes the same ids. A key move, which two partitions
 * publish, is in the stream twice (once per partition, as with every
 * sink). A snapshot row (op 'r',
 * whose window may share its SCN with the one before) uses
 * "<scn>-r-<db>.<table>-<key JSON>" instead. A replay publishes the same ids,
 * and JetStream drops the ones it saw within the stream's duplicate window.
 *
 * Each partition has its own connection and JetStream context, so that
 * one partition's acks, errors and reconnects are its own and messages go
 * out in the partition's order (per-key order). Publishing is
 * asynchronous (js_PublishMsgAsync): the ack error handler records the
 * first failure (no stream for the subject, a negative ack, a timeout),
 * and sink_flush() waits with js_PublishAsyncComplete() for every pending
 * ack of the partition's context, bounded by sink.timeout; it returns 0
 * only when every ack came back positive. Any failure breaks the handle
 * with HD_ESINK_REMOTE naming the subject, the error and the SCN: the
 * agent closes the partition and replays from its checkpoint, which never
 * covers a message JetStream did not ack. A later ack positive after an
 * earlier failure changes nothing: the partition is broken until closed.
 * Reconnects are the library's (unlimited, 1 s apart); publishes made
 * while disconnected go to its reconnect buffer, and an ack lost with the
 * connection becomes a flush timeout, hence a replay.
 *
 * Credentials: sink.token_file (its first line, a token).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "sink_int.h"

typedef struct {
  sink_t base;
  char *url;
  char *subject; /* the template */
  char *token;   /* NULL: none */
  int64_t timeout_ms;
} nats_sink_t;

typedef struct {
  sink_part_t base;
  natsConnection *nc;
  jsCtx *js;
  pthread_mutex_t lock; /* fail, fail_msg: the handler runs on nats' thread */
  int fail;
  char fail_msg[256];
  uint64_t index; /* rows of the current window so far */
  uint64_t scn;   /* the current window */
} nats_part_t;

static void nats_destroy(sink_t *s) {
  nats_sink_t *ns = (nats_sink_t *)s;
  if (ns == NULL)
    return;
  free(ns->url);
  free(ns->subject);
  free(ns->token);
  free(ns);
}

static int nats_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                       size_t errlen) {
  if (conf->sink.url == NULL)
    return hd_errorf(err, errlen, HD_ECONFIG, "sink: type nats needs 'url'");
  nats_sink_t *ns = hd_calloc(1, sizeof *ns);
  ns->url = hd_strdup(conf->sink.url);
  ns->subject = hd_strdup(conf->sink.subject ? conf->sink.subject
                                             : "herald.{db}.{table}");
  ns->timeout_ms = (int64_t)conf->sink.timeout_ms;
  if (conf->sink.token_file != NULL) {
    int rc;
    ns->token = agent__read_first_line("sink.token_file", conf->sink.token_file,
                                       err, errlen, &rc);
    if (ns->token == NULL) {
      nats_destroy(&ns->base);
      return rc;
    }
  }
  *out = &ns->base;
  return 0;
}

static void set_fail(nats_part_t *np, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_fail(nats_part_t *np, const char *fmt, ...) {
  pthread_mutex_lock(&np->lock);
  if (!np->fail) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(np->fail_msg, sizeof np->fail_msg, fmt, ap);
    va_end(ap);
    np->fail = 1;
  }
  pthread_mutex_unlock(&np->lock);
}

/* nats' thread: a publish that got no positive ack. The library destroys
 * the message afterwards. */
static void on_ack_err(jsCtx *js, jsPubAckErr *pae, void *closure) {
  (void)js;
  nats_part_t *np = closure;
  const char *subj = pae->Msg ? natsMsg_GetSubject(pae->Msg) : "?";
  const char *scn = NULL;
  if (pae->Msg == NULL ||
      natsMsgHeader_Get(pae->Msg, "Herald-Scn", &scn) != NATS_OK)
    scn = "?";
  set_fail(np, "nats: partition %" PRIu32 ": publish to %s (scn %s): %s%s%s",
           np->base.partition, subj, scn, natsStatus_GetText(pae->Err),
           pae->ErrText ? ": " : "", pae->ErrText ? pae->ErrText : "");
}

static int nats_close(sink_part_t *part, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  nats_part_t *np = (nats_part_t *)part;
  /* Closed first, so that no ack handler (which writes to np) is
   * delivered once the context is gone. */
  if (np->nc != NULL)
    natsConnection_Close(np->nc);
  jsCtx_Destroy(np->js);
  natsConnection_Destroy(np->nc);
  pthread_mutex_destroy(&np->lock);
  free(np);
  return 0;
}

static int nats_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                     uint64_t *position, char *err, size_t errlen) {
  (void)epoch;
  nats_sink_t *ns = (nats_sink_t *)s;
  nats_part_t *np = hd_calloc(1, sizeof *np);
  pthread_mutex_init(&np->lock, NULL);
  np->base.partition = p;
  *position = 0;
  natsOptions *o = NULL;
  natsStatus st = natsOptions_Create(&o);
  if (st == NATS_OK)
    st = natsOptions_SetURL(o, ns->url);
  if (st == NATS_OK && ns->token)
    st = natsOptions_SetToken(o, ns->token);
  if (st == NATS_OK)
    st = natsOptions_SetTimeout(o, ns->timeout_ms);
  if (st == NATS_OK)
    st = natsOptions_SetMaxReconnect(o, -1);
  if (st == NATS_OK)
    st = natsOptions_SetReconnectWait(o, 1000);
  if (st == NATS_OK)
    st = natsConnection_Connect(&np->nc, o);
  if (st == NATS_OK) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = ns->timeout_ms;
    jo.PublishAsync.ErrHandler = on_ack_err;
    jo.PublishAsync.ErrHandlerClosure = np;
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.StallWait = ns->timeout_ms;
    st = natsConnection_JetStream(&np->js, np->nc, &jo);
  }
  natsOptions_Destroy(o);
  if (st != NATS_OK) {
    int rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                       "nats: partition %" PRIu32 ": connecting to %s: %s", p,
                       ns->url, nats_GetLastError(NULL));
    nats_close(&np->base, err, 0);
    return rc;
  }
  *out = &np->base;
  return 0;
}

static int publish_line(nats_part_t *np, const sink_window_t *w,
                        const char *line, size_t len, char *err,
                        size_t errlen) {
  nats_sink_t *ns = (nats_sink_t *)np->base.sink;
  json_error_t je;
  json_t *j = json_loadb(line, len, 0, &je);
  const char *db = NULL, *table = NULL, *file = NULL, *op = NULL;
  json_int_t pos = 0, tidx = -1; /* txn.index: only checked */
  if (j != NULL && json_unpack(j, "{s:{s:s,s:I,s:s,s:s},s:s,s?{s?I}}", "source",
                               "file", &file, "pos", &pos, "db", &db, "table",
                               &table, "op", &op, "txn", "index", &tidx) != 0) {
    json_decref(j);
    j = NULL;
  }
  if (j == NULL)
    return hd_errorf(err, errlen, HD_ESINK_VALUE,
                     "nats: partition %" PRIu32 ": scn %" PRIu64
                     ": a change line without source.db/table: %s",
                     np->base.partition, w->scn, je.text);
  char subj[512], id[1024], scn[32], src[512], part[16];
  int rc = 0;
  if (agent__expand_template(ns->subject, db, table, 0, subj, sizeof subj) <
      0) {
    rc = hd_errorf(err, errlen, HD_ESINK_VALUE,
                   "nats: partition %" PRIu32 ": subject for %s.%s too long",
                   np->base.partition, db, table);
    goto out;
  }
  snprintf(scn, sizeof scn, "%" PRIu64, w->scn);
  snprintf(part, sizeof part, "%" PRIu32, np->base.partition);
  snprintf(src, sizeof src, "%s:%" JSON_INTEGER_FORMAT, file, pos);
  if (strcmp(op, "r") == 0) {
    char *k = json_dumps(json_object_get(j, "key"), JSON_COMPACT);
    snprintf(id, sizeof id, "%" PRIu64 "-r-%s.%s-%s", w->scn, db, table,
             k ? k : "null");
    free(k);
  } else {
    snprintf(id, sizeof id, "%" PRIu64 "-%" PRIu32 "-%" PRIu64, w->scn,
             np->base.partition, np->index);
  }
  np->index++;
  natsMsg *m = NULL;
  natsStatus st = natsMsg_Create(&m, subj, NULL, line, (int)len);
  if (st == NATS_OK)
    st = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
  if (st == NATS_OK)
    st = natsMsgHeader_Set(m, "Herald-Scn", scn);
  if (st == NATS_OK)
    st = natsMsgHeader_Set(m, "Herald-Source", src);
  if (st == NATS_OK)
    st = natsMsgHeader_Set(m, "Herald-Partition", part);
  if (st == NATS_OK)
    st = js_PublishMsgAsync(np->js, &m, NULL);
  natsMsg_Destroy(m); /* NULL when the library took it */
  if (st != NATS_OK)
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "nats: partition %" PRIu32 ": publish to %s (scn %" PRIu64
                   "): %s",
                   np->base.partition, subj, w->scn, nats_GetLastError(NULL));
out:
  json_decref(j);
  return rc;
}

static int check_fail(nats_part_t *np, char *err, size_t errlen) {
  int rc = 0;
  pthread_mutex_lock(&np->lock);
  if (np->fail)
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE, "%s", np->fail_msg);
  pthread_mutex_unlock(&np->lock);
  return rc;
}

static int nats_write(sink_part_t *part, const sink_window_t *w, char *err,
                      size_t errlen) {
  nats_part_t *np = (nats_part_t *)part;
  if (w->chunk == 0 || w->scn != np->scn) {
    np->scn = w->scn;
    np->index = 0;
  }
  int rc = check_fail(np, err, errlen);
  const char *p = w->json, *end = w->json + w->json_len;
  while (rc == 0 && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0)
      rc = publish_line(np, w, p, n, err, errlen);
    p += n + 1;
  }
  return rc;
}

static int nats_flush(sink_part_t *part, char *err, size_t errlen) {
  nats_part_t *np = (nats_part_t *)part;
  nats_sink_t *ns = (nats_sink_t *)part->sink;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = ns->timeout_ms;
  natsStatus st = js_PublishAsyncComplete(np->js, &po);
  int rc = check_fail(np, err, errlen);
  if (rc == 0 && st != NATS_OK)
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "nats: partition %" PRIu32 ": waiting for JetStream's acks "
                   "(scn %" PRIu64 ", %s): %s",
                   part->partition, np->scn, ns->url, natsStatus_GetText(st));
  return rc;
}

const sink_ops_t sink__nats_ops = {
    .name = "nats",
    .create = nats_create,
    .open_partition = nats_open,
    .write = nats_write,
    .flush = nats_flush,
    .close_partition = nats_close,
    .destroy = nats_destroy,
};
