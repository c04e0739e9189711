/*
 * sink_http.c - the http sink: each partition POSTs its changes to
 * sink.url in batches, one request in flight per partition, so per-key
 * order holds; a batch counts as delivered only once the server has
 * accepted all of it.
 *
 * sink.format lines: the body is the change lines (application/x-ndjson)
 * written since the last POST; any 2xx accepts the whole batch.
 *
 * sink.format elasticsearch: the body is the _bulk API's NDJSON. A change
 * becomes an "index" of its after image under _id = its primary key
 * (the key's values; several are joined by ':' with ':' and '\' escaped
 * by '\'), a delete a "delete" of that _id, a key move a delete of the
 * old key followed by an index under the new one (in both partitions
 * that see the move: see es_line()). Every action
 * carries version = the change's SCN and version_type external_gte:
 * Elasticsearch keeps a document's highest version, so a replay of an
 * older window after a newer one is refused with a version conflict
 * (409, counted as applied: the newer state is already there), while the
 * several changes of one key inside one window (one SCN) apply in order.
 * The response's items are read one by one: 2xx, 409 and a delete's 404
 * are applied; 429 and 5xx (and a 429/5xx/408 for the whole request, or
 * a connection error) resend the whole batch after a backoff that honours
 * Retry-After. The whole batch, not its failed items only: an item that
 * failed may have a later change of the same key in the batch, which
 * must come after it. Any other item error (a mapping error, say) stops
 * the partition naming the index, _id, error and SCN; it retries and
 * nothing is skipped. A deleted document's version is kept only for
 * index.gc_deletes (60 s by default): a replay older than that can bring
 * an older version of a deleted document back (docs/sinks.md).
 * The elasticsearch format needs whole rows (binlog_row_image FULL): an
 * index replaces the whole document, so a partial image stops the
 * partition rather than dropping columns.
 *
 * All retries of one batch are bounded by sink.timeout together; past it
 * the partition stops with HD_ESINK_REMOTE naming the URL, the status
 * and the SCN, and the agent retries it from its checkpoint with its own
 * backoff (sink.retry_max).
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "sink_int.h"

typedef struct {
  sink_t base;
  char *url;
  int format; /* hd_http_format_t */
  char *index;
  struct curl_slist *headers; /* every request's: type, auth, sink.headers */
  int tls_verify;
  char *ca_file;
  size_t batch_bytes;
  uint64_t timeout_ms;
  long connect_timeout_ms;
} http_sink_t;

typedef struct {
  char *p;
  size_t len, cap;
} hbuf_t;

typedef struct {
  sink_part_t base;
  http_sink_t *hs;
  CURL *curl;
  hbuf_t body;        /* the batch */
  hbuf_t resp;        /* the last response's body (elasticsearch) */
  size_t actions;     /* elasticsearch: actions in the batch */
  uint64_t last_scn;  /* the last SCN in the batch */
  long retry_after_s; /* the last response's Retry-After; -1: none */
} http_part_t;

/* A response body longer than this is an error: a _bulk answer is a few
 * hundred bytes per item, and the batch is bounded. */
#define HTTP_RESP_MAX (256u << 20)

static int buf_add(hbuf_t *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *nb = realloc(b->p, cap);
    if (nb == NULL)
      return HD_ENOMEM;
    b->p = nb;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static void http_destroy(sink_t *s) {
  http_sink_t *hs = (http_sink_t *)s;
  if (hs == NULL)
    return;
  free(hs->url);
  free(hs->index);
  free(hs->ca_file);
  curl_slist_free_all(hs->headers);
  free(hs);
}

static int add_header(http_sink_t *hs, const char *name, const char *value) {
  size_t n = strlen(name) + strlen(value) + 3;
  char *line = hd_malloc(n);
  snprintf(line, n, "%s: %s", name, value);
  struct curl_slist *l = curl_slist_append(hs->headers, line);
  free(line);
  if (l == NULL)
    return HD_ENOMEM;
  hs->headers = l;
  return 0;
}

static int http_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                       size_t errlen) {
  if (conf->sink.url == NULL)
    return hd_errorf(err, errlen, HD_ECONFIG, "sink.type http needs sink.url");
  /* Here, not in open: curl_easy_init()'s implicit global init is not
   * thread-safe, and partitions open concurrently. */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return hd_errorf(err, errlen, HD_ENOMEM,
                     "http sink: curl_global_init failed");
  http_sink_t *hs = hd_calloc(1, sizeof(*hs));
  hs->url = hd_strdup(conf->sink.url);
  hs->format = conf->sink.format;
  hs->index = hd_strdup(conf->sink.index ? conf->sink.index : "{db}.{table}");
  hs->tls_verify = conf->sink.tls_verify;
  hs->ca_file = conf->sink.ca_file ? hd_strdup(conf->sink.ca_file) : NULL;
  hs->batch_bytes = conf->sink.batch_bytes ? conf->sink.batch_bytes : 4u << 20;
  hs->timeout_ms = conf->sink.timeout_ms;
  hs->connect_timeout_ms = (long)conf->sink.connect_timeout_ms;
  int rc = add_header(hs, "Content-Type", "application/x-ndjson");
  for (size_t i = 0; rc == 0 && i + 1 < conf->sink.headers.n; i += 2)
    rc = add_header(hs, conf->sink.headers.v[i], conf->sink.headers.v[i + 1]);
  if (rc == 0 && conf->sink.token_file != NULL) {
    char *tok = agent__read_first_line("sink.token_file", conf->sink.token_file,
                                       err, errlen, &rc);
    if (tok != NULL) {
      /* "ApiKey <key>", "Basic <b64>": a scheme of its own; else a bearer
       * token. */
      size_t n = strlen(tok) + 8;
      char *v = hd_malloc(n);
      snprintf(v, n, "%s%s", strchr(tok, ' ') ? "" : "Bearer ", tok);
      rc = add_header(hs, "Authorization", v);
      /* the secret lives on only in the header list */
      memset(v, 0, n);
      memset(tok, 0, strlen(tok));
      free(v);
      free(tok);
    }
  } else if (rc != 0) {
    snprintf(err, errlen, "http sink: out of memory for the headers");
  }
  if (rc != 0) {
    http_destroy(&hs->base);
    return rc;
  }
  *out = &hs->base;
  return 0;
}

static int http_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                     uint64_t *position, char *err, size_t errlen) {
  (void)p;
  (void)epoch;
  *position = 0;
  http_part_t *hp = hd_calloc(1, sizeof(*hp));
  hp->hs = (http_sink_t *)s;
  hp->curl = curl_easy_init();
  if (hp->curl == NULL) {
    free(hp);
    return hd_errorf(err, errlen, HD_ENOMEM,
                     "http sink: curl_easy_init failed");
  }
  *out = &hp->base;
  return 0;
}

/* ------------------------------------------------- elasticsearch actions */

/* The _id of a key object: one value as it is (a string's text, a
 * number's JSON); several joined by ':' with ':' and '\' escaped. */
static int key_id(json_t *key, hbuf_t *out) {
  size_t n = json_object_size(key);
  const char *name;
  json_t *v;
  size_t i = 0;
  out->len = 0;
  json_object_foreach(key, name, v) {
    (void)name;
    char *owned = NULL;
    const char *s;
    if (json_is_string(v))
      s = json_string_value(v);
    else if (json_is_null(v))
      s = "";
    else
      s = owned = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
      return HD_ENOMEM;
    int rc = i++ ? buf_add(out, ":", 1) : 0;
    for (const char *c = s; rc == 0 && *c; c++) {
      if (n > 1 && (*c == ':' || *c == '\\'))
        rc = buf_add(out, "\\", 1);
      if (rc == 0)
        rc = buf_add(out, c, 1);
    }
    free(owned);
    if (rc)
      return rc;
  }
  if (out->len == 0)
    return buf_add(out, "", 0);
  return 0;
}

/* Appends one action line (and the document's line for an index). */
static int es_action(http_part_t *hp, const char *verb, const char *index,
                     json_t *key, json_t *doc, uint64_t scn, char *err,
                     size_t errlen) {
  hbuf_t id = {0};
  int rc = key_id(key, &id);
  if (rc == 0 && id.len > 512)
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "http sink: elasticsearch: the _id of a key of %s at SCN "
                   "%" PRIu64 " is %zu bytes (512 at most)",
                   index, scn, id.len);
  json_t *a = NULL;
  char *line = NULL;
  if (rc == 0) {
    a = json_pack("{s:{s:s,s:s,s:I,s:s}}", verb, "_index", index, "_id", id.p,
                  "version", (json_int_t)scn, "version_type", "external_gte");
    line = a ? json_dumps(a, JSON_COMPACT) : NULL;
    rc = line ? buf_add(&hp->body, line, strlen(line)) : HD_ENOMEM;
    if (rc == 0)
      rc = buf_add(&hp->body, "\n", 1);
    free(line);
    line = NULL;
  }
  if (rc == 0 && doc != NULL) {
    line = json_dumps(doc, JSON_COMPACT);
    rc = line ? buf_add(&hp->body, line, strlen(line)) : HD_ENOMEM;
    if (rc == 0)
      rc = buf_add(&hp->body, "\n", 1);
    free(line);
  }
  json_decref(a);
  free(id.p);
  if (rc == HD_ENOMEM)
    snprintf(err, errlen, "http sink: out of memory for a batch");
  if (rc == 0)
    hp->actions++;
  return rc;
}

/* Whether the after image holds every column the before image has (the
 * relay refuses a source whose binlog_row_image is not FULL; this is the
 * sink's own guard against a partial image replacing a document). */
static int whole_row(json_t *before, json_t *after) {
  const char *name;
  json_t *v;
  if (json_is_object(before))
    json_object_foreach(before, name, v) {
      (void)v;
      if (json_object_get(after, name) == NULL)
        return 0;
    }
  return 1;
}

static int es_line(http_part_t *hp, const sink_window_t *w, size_t i,
                   const char *line, size_t len, char *err, size_t errlen) {
  json_error_t je;
  json_t *o = json_loadb(line, len, 0, &je);
  if (o == NULL)
    return hd_errorf(err, errlen, HD_ESINK_REMOTE,
                     "http sink: change %zu of SCN %" PRIu64 " is not JSON: %s",
                     i, w->scn, je.text);
  const char *op = json_string_value(json_object_get(o, "op"));
  json_t *src = json_object_get(o, "source");
  const char *db = json_string_value(json_object_get(src, "db"));
  const char *table = json_string_value(json_object_get(src, "table"));
  json_t *key = json_object_get(o, "key");
  json_t *old_key = json_object_get(o, "old_key");
  json_t *after = json_object_get(o, "after");
  int rc = 0;
  char index[512];
  if (op == NULL || db == NULL || table == NULL) {
    rc =
        hd_errorf(err, errlen, HD_ESINK_REMOTE,
                  "http sink: change %zu of SCN %" PRIu64 " lacks op or source",
                  i, w->scn);
  } else if (!json_is_object(key) || json_object_size(key) == 0) {
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "http sink: elasticsearch: %s.%s (SCN %" PRIu64
                   ") has no primary key to use as _id; leave the table out "
                   "(agent.tables) or give it a key",
                   db, table, w->scn);
  } else if (agent__expand_template(hp->hs->index, db, table, 1, index,
                                    sizeof index) < 0) {
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "http sink: sink.index for %s.%s is too long", db, table);
  } else if (op[0] == 'd') {
    rc = es_action(hp, "delete", index, key, NULL, w->scn, err, errlen);
  } else if (!json_is_object(after) ||
             !whole_row(json_object_get(o, "before"), after)) {
    rc = hd_errorf(err, errlen, HD_ESINK_REMOTE,
                   "http sink: elasticsearch: change %zu of %s.%s at SCN "
                   "%" PRIu64
                   " has a partial row image: an index replaces the whole "
                   "document, so the source needs binlog_row_image FULL",
                   i, db, table, w->scn);
  } else {
    /* A key move is in the stream of both keys' partitions, and both
     * apply both halves: with the SCN as external version either order
     * of the two partitions, and a replay of either, ends with the newest
     * state of both keys (an older half is refused as a conflict). */
    if (json_is_object(old_key))
      rc = es_action(hp, "delete", index, old_key, NULL, w->scn, err, errlen);
    if (rc == 0)
      rc = es_action(hp, "index", index, key, after, w->scn, err, errlen);
  }
  json_decref(o);
  return rc;
}

/* ------------------------------------------------------------- requests */

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  http_part_t *hp = ud;
  if (hp->hs->format != HD_HTTP_ELASTICSEARCH || hp->resp.len > HTTP_RESP_MAX)
    return sz * n;
  return buf_add(&hp->resp, p, sz * n) == 0 ? sz * n : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  http_part_t *hp = ud;
  size_t len = sz * n;
  if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
    char *end;
    long v = strtol(p + 12, &end, 10);
    /* an HTTP date instead of seconds: the sink's own backoff */
    if (end != p + 12 && v >= 0)
      hp->retry_after_s = v;
  }
  return len;
}

typedef enum { POST_OK, POST_RETRY, POST_FAIL } post_result_t;

static const char *str_or(json_t *v) {
  const char *s = json_string_value(v);
  return s ? s : "?";
}

/* Reads a _bulk response: POST_OK when every item is applied, POST_RETRY
 * when one may succeed later, POST_FAIL (err set) for one that will not. */
static post_result_t es_result(http_part_t *hp, char *err, size_t errlen) {
  json_error_t je;
  if (hp->resp.len > HTTP_RESP_MAX) {
    snprintf(err, errlen,
             "http sink: elasticsearch: a _bulk response over "
             "%u MiB",
             HTTP_RESP_MAX >> 20);
    return POST_FAIL;
  }
  json_t *r = json_loadb(hp->resp.p ? hp->resp.p : "", hp->resp.len, 0, &je);
  json_t *items = json_object_get(r, "items");
  if (!json_is_array(items) || json_array_size(items) != hp->actions) {
    snprintf(err, errlen,
             "http sink: elasticsearch: POST %s (up to SCN %" PRIu64
             "): the answer is not a _bulk response for %zu actions (%s)",
             hp->hs->url, hp->last_scn, hp->actions,
             r == NULL ? je.text : "items missing or miscounted");
    json_decref(r);
    return POST_FAIL;
  }
  post_result_t res = POST_OK;
  if (json_is_false(json_object_get(r, "errors"))) {
    json_decref(r);
    return res;
  }
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *verb;
    json_t *v;
    json_object_foreach(it, verb, v) {
      json_int_t st = json_integer_value(json_object_get(v, "status"));
      if ((st >= 200 && st < 300) || st == 409 ||
          (st == 404 && strcmp(verb, "delete") == 0))
        continue;
      if (st == 429 || st >= 500) {
        res = POST_RETRY;
        continue;
      }
      json_t *e = json_object_get(v, "error");
      const char *type = json_string_value(json_object_get(e, "type"));
      const char *reason = json_string_value(json_object_get(e, "reason"));
      snprintf(err, errlen,
               "http sink: elasticsearch: %s of _id '%s' in %s (batch up to "
               "SCN %" PRIu64 "): HTTP %" JSON_INTEGER_FORMAT ": %s: %s",
               verb, str_or(json_object_get(v, "_id")),
               str_or(json_object_get(v, "_index")), hp->last_scn, st,
               type ? type : "error", reason ? reason : "no reason given");
      json_decref(r);
      return POST_FAIL;
    }
  }
  json_decref(r);
  return res;
}

/* POSTs the batch, resending it on what may pass later (connection
 * errors, 408, 429, 5xx, an item's 429 or 5xx), the whole bounded by
 * sink.timeout; then HD_ESINK_REMOTE naming URL, status and SCN. */
static int http_post(http_part_t *hp, char *err, size_t errlen) {
  if (hp->body.len == 0)
    return 0;
  http_sink_t *hs = hp->hs;
  CURL *c = hp->curl;
  uint64_t deadline = agent__mono_ms() + hs->timeout_ms;
  long status = 0;
  CURLcode cc = CURLE_OK;
  char why[512] = "";
  for (unsigned attempt = 0;; attempt++) {
    uint64_t now = agent__mono_ms();
    if (now >= deadline)
      break;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, hs->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, hp->body.p);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)hp->body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(deadline - now));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, hs->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, hs->tls_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, hs->tls_verify ? 2L : 0L);
    if (hs->ca_file)
      curl_easy_setopt(c, CURLOPT_CAINFO, hs->ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, hp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hp);
    hp->resp.len = 0;
    hp->retry_after_s = -1;
    status = 0;
    cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    post_result_t res;
    if (cc != CURLE_OK) {
      res = POST_RETRY;
      snprintf(why, sizeof why, "%s", curl_easy_strerror(cc));
      /* a certificate that does not verify will not verify later */
      if (cc == CURLE_PEER_FAILED_VERIFICATION ||
          cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_URL_MALFORMAT ||
          cc == CURLE_UNSUPPORTED_PROTOCOL)
        res = POST_FAIL;
    } else if (status >= 200 && status < 300) {
      res = hs->format == HD_HTTP_ELASTICSEARCH ? es_result(hp, why, sizeof why)
                                                : POST_OK;
      if (res == POST_RETRY)
        snprintf(why, sizeof why,
                 "HTTP %ld, items rejected for now (429 or 5xx)", status);
    } else {
      res = status == 408 || status == 429 || status >= 500 ? POST_RETRY
                                                            : POST_FAIL;
      snprintf(why, sizeof why, "HTTP %ld", status);
    }
    if (res == POST_OK) {
      hp->body.len = 0;
      hp->actions = 0;
      return 0;
    }
    if (res == POST_FAIL)
      break;
    /* 200 ms, 400 ms, ... 5 s, or what the server asked for, within the
     * batch's time */
    uint64_t wait = attempt < 5 ? 200u << attempt : 5000;
    if (hp->retry_after_s >= 0)
      wait = (uint64_t)hp->retry_after_s * 1000;
    now = agent__mono_ms();
    if (now + wait >= deadline)
      break;
    agent__sleep_ms(wait);
  }
  if (why[0] == '\0')
    snprintf(why, sizeof why, "no answer within sink.timeout");
  if (strncmp(why, "http sink:", 10) == 0) {
    snprintf(err, errlen, "%s", why);
  } else {
    snprintf(err, errlen, "http sink: POST %s (up to SCN %" PRIu64 "): %s",
             hs->url, hp->last_scn, why);
  }
  return HD_ESINK_REMOTE;
}

static int http_write(sink_part_t *part, const sink_window_t *w, char *err,
                      size_t errlen) {
  http_part_t *hp = (http_part_t *)part;
  http_sink_t *hs = hp->hs;
  int rc = 0;
  if (hs->format == HD_HTTP_LINES) {
    rc = buf_add(&hp->body, w->json, w->json_len);
    if (rc)
      return hd_errorf(err, errlen, rc, "http sink: out of memory for a batch");
  } else {
    size_t i = 0;
    for (const char *p = w->json, *end = w->json + w->json_len; p < end; i++) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
      rc = es_line(hp, w, i, p, len, err, errlen);
      if (rc)
        return rc;
      p += len + 1;
    }
  }
  hp->last_scn = w->scn;
  /* A busy stream is never idle: without a bound the batch would grow
   * until the next flush. */
  if (hp->body.len >= hs->batch_bytes)
    return http_post(hp, err, errlen);
  return 0;
}

static int http_flush(sink_part_t *part, char *err, size_t errlen) {
  return http_post((http_part_t *)part, err, errlen);
}

static int http_close(sink_part_t *part, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  http_part_t *hp = (http_part_t *)part;
  curl_easy_cleanup(hp->curl);
  free(hp->body.p);
  free(hp->resp.p);
  free(hp);
  return 0;
}

const sink_ops_t sink__http_ops = {
    .name = "http",
    .create = http_create,
    .open_partition = http_open,
    .write = http_write,
    .flush = http_flush,
    .idle = http_flush,
    .close_partition = http_close,
    .destroy = http_destroy,
};
