/*
 * sink_http.c - the http sink: POSTs the JSON lines written since the
 * last POST to sink.url (Content-Type application/x-ndjson) at idle and
 * flush, one request in flight per partition so per-key order holds.
 * First step: format lines only; any 2xx acknowledges the batch.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "sink_int.h"

typedef struct {
  sink_t base;
  char *url;
  long timeout_ms;
  long connect_timeout_ms;
} http_sink_t;

typedef struct {
  sink_part_t base;
  http_sink_t *hs;
  CURL *curl;
  char *buf; /* the batch: lines written since the last POST */
  size_t len, cap;
  uint64_t last_scn; /* the last SCN in the batch */
} http_part_t;

static int http_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                       size_t errlen) {
  if (conf->sink.url == NULL) {
    snprintf(err, errlen, "sink.type http needs sink.url");
    return HD_ECONFIG;
  }
  /* Here, not in open: curl_easy_init()'s implicit global init is not
   * thread-safe, and partitions open concurrently. */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "http sink: curl_global_init failed");
    return HD_ENOMEM;
  }
  http_sink_t *hs = hd_calloc(1, sizeof(*hs));
  if (hs == NULL)
    return HD_ENOMEM;
  hs->url = strdup(conf->sink.url);
  if (hs->url == NULL) {
    free(hs);
    return HD_ENOMEM;
  }
  hs->timeout_ms = (long)conf->sink.timeout_ms;
  hs->connect_timeout_ms = (long)conf->sink.connect_timeout_ms;
  *out = &hs->base;
  return 0;
}

static int http_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                     uint64_t *position, char *err, size_t errlen) {
  (void)p;
  (void)epoch;
  *position = 0;
  http_part_t *hp = hd_calloc(1, sizeof(*hp));
  if (hp == NULL)
    return HD_ENOMEM;
  hp->hs = (http_sink_t *)s;
  hp->curl = curl_easy_init();
  if (hp->curl == NULL) {
    free(hp);
    snprintf(err, errlen, "http sink: curl_easy_init failed");
    return HD_ENOMEM;
  }
  *out = &hp->base;
  return 0;
}

/* Bytes of lines after which a batch is POSTed without waiting for idle
 * or flush. */
#define HTTP_BATCH_MAX (4u << 20)

static int http_post(http_part_t *hp, char *err, size_t errlen);

static int http_write(sink_part_t *part, const sink_window_t *w, char *err,
                      size_t errlen) {
  http_part_t *hp = (http_part_t *)part;
  if (hp->len + w->json_len > hp->cap) {
    size_t cap = hp->cap ? hp->cap : 65536;
    while (cap < hp->len + w->json_len)
      cap *= 2;
    char *nb = realloc(hp->buf, cap);
    if (nb == NULL) {
      snprintf(err, errlen, "http sink: out of memory for a batch");
      return HD_ENOMEM;
    }
    hp->buf = nb;
    hp->cap = cap;
  }
  if (w->json_len)
    memcpy(hp->buf + hp->len, w->json, w->json_len);
  hp->len += w->json_len;
  hp->last_scn = w->scn;
  /* A busy stream is never idle: without a bound the batch would grow
   * until the next flush. */
  if (hp->len >= HTTP_BATCH_MAX)
    return http_post(hp, err, errlen);
  return 0;
}

static size_t http_discard(char *p, size_t sz, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return sz * n;
}

/* POSTs the batch; bounded retries with backoff for connection errors,
 * 408, 429 and 5xx, then HD_ESINK_REMOTE naming URL, status and SCN. */
static int http_post(http_part_t *hp, char *err, size_t errlen) {
  if (hp->len == 0)
    return 0;
  http_sink_t *hs = hp->hs;
  CURL *c = hp->curl;
  struct curl_slist *hdr =
      curl_slist_append(NULL, "Content-Type: application/x-ndjson");
  long status = 0;
  CURLcode cc = CURLE_OK;
  for (int attempt = 0; attempt < 3; attempt++) {
    if (attempt)
      usleep(200000u << attempt);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, hs->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, hp->buf);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)hp->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, hs->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, hs->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_discard);
    status = 0;
    cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status >= 200 && status < 300) {
      curl_slist_free_all(hdr);
      hp->len = 0;
      return 0;
    }
    if (cc == CURLE_OK && status != 429 && status != 408 && status < 500)
      break;
  }
  curl_slist_free_all(hdr);
  if (cc != CURLE_OK)
    snprintf(err, errlen, "http sink: POST %s (up to SCN %" PRIu64 "): %s",
             hs->url, hp->last_scn, curl_easy_strerror(cc));
  else
    snprintf(err, errlen,
             "http sink: POST %s (up to SCN %" PRIu64 "): HTTP %ld", hs->url,
             hp->last_scn, status);
  return HD_ESINK_REMOTE;
}

static int http_flush(sink_part_t *part, char *err, size_t errlen) {
  return http_post((http_part_t *)part, err, errlen);
}

static int http_close(sink_part_t *part, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  http_part_t *hp = (http_part_t *)part;
  curl_easy_cleanup(hp->curl);
  free(hp->buf);
  free(hp);
  return 0;
}

static void http_destroy(sink_t *s) {
  http_sink_t *hs = (http_sink_t *)s;
  free(hs->url);
  free(hs);
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
