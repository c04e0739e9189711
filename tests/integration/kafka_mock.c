/*
 * kafka_mock.c - the kafka sink tests' broker: librdkafka's mock cluster
 * (no Kafka broker is packaged in Debian), driven by commands on stdin.
 *
 *   kafka_mock [BROKERS]      start a mock cluster of BROKERS (3), print
 *                             its bootstrap servers as the first line
 *
 * Commands (one a line; each answers "ok" or "error ..." on a line):
 *   create TOPIC PARTS        create a topic (replication: every broker)
 *   down N / up N             broker N (1..) stops / resumes accepting
 *   rtt N MS                  broker N answers MS milliseconds late
 *                             (a broker that stops answering: a large MS)
 *   err CODE COUNT            the next COUNT Produce requests fail with
 *                             the Kafka error CODE (on every broker)
 *   topicerr TOPIC CODE       metadata for TOPIC reports CODE (0 clears)
 *   dump PREFIX               every message of every topic whose name
 *                             starts with PREFIX, one JSON line each:
 *                             {"topic","partition","offset","key",
 *                             "value","headers":{..}}, then "ok"
 *   count PREFIX              the messages ever appended to those topics
 *                             (the sum of their high watermarks), then
 *                             "ok" (the mock keeps only the newest 100000
 *                             message sets or 5 MiB of a partition)
 *   quit
 */
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_mock_cluster_t *mc;
static const char *bootstraps;

static void answer(const char *s) {
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static int dump_partition(rd_kafka_t *c, const char *topic, int32_t p) {
  rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(tl, topic, p)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_resp_err_t e = rd_kafka_assign(c, tl);
  rd_kafka_topic_partition_list_destroy(tl);
  if (e) {
    fprintf(stderr, "kafka_mock: assign %s/%d: %s\n", topic, p,
            rd_kafka_err2str(e));
    return -1;
  }
  int rc = 0, idle = 0;
  for (;;) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1000);
    if (m == NULL) {
      if (++idle > 20) {
        fprintf(stderr, "kafka_mock: %s/%d: no end of partition\n", topic, p);
        rc = -1;
        break;
      }
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      break;
    }
    if (m->err) {
      fprintf(stderr, "kafka_mock: %s/%d: %s\n", topic, p,
              rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      rc = -1;
      break;
    }
    json_t *h = json_object();
    rd_kafka_headers_t *hs = NULL;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char *name;
      const void *v;
      size_t n;
      for (size_t i = 0; rd_kafka_header_get_all(hs, i, &name, &v, &n) == 0;
           i++)
        json_object_set_new(h, name, json_stringn(v ? v : "", n));
    }
    json_t *o = json_object();
    json_object_set_new(o, "topic", json_string(topic));
    json_object_set_new(o, "partition", json_integer(m->partition));
    json_object_set_new(o, "offset", json_integer(m->offset));
    json_object_set_new(
        o, "key", m->key ? json_stringn(m->key, m->key_len) : json_null());
    json_object_set_new(o, "value",
                        json_stringn(m->payload ? m->payload : "", m->len));
    json_object_set_new(o, "headers", h);
    char *line = json_dumps(o, JSON_COMPACT);
    if (line)
      answer(line);
    free(line);
    json_decref(o);
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(c, NULL);
  return rc;
}

/* dump (count == NULL): every message, as dump_partition prints them;
 * count: only the sum of the partitions' high watermarks, the messages
 * ever appended (the mock keeps only the newest 100000 message sets or
 * 5 MiB of each partition, so a big run cannot be read back whole). */
static int dump(const char *prefix, int64_t *count) {
  char e[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, e, sizeof e) ||
      rd_kafka_conf_set(conf, "group.id", "kafka_mock_dump", e, sizeof e) ||
      rd_kafka_conf_set(conf, "enable.partition.eof", "true", e, sizeof e) ||
      rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof e) ||
      rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", e,
                        sizeof e)) {
    fprintf(stderr, "kafka_mock: consumer conf: %s\n", e);
    rd_kafka_conf_destroy(conf);
    return -1;
  }
  rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
  if (c == NULL) {
    fprintf(stderr, "kafka_mock: consumer: %s\n", e);
    return -1;
  }
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err = rd_kafka_metadata(c, 1, NULL, &md, 10000);
  int rc = 0;
  if (err) {
    fprintf(stderr, "kafka_mock: metadata: %s\n", rd_kafka_err2str(err));
    rc = -1;
  }
  for (int t = 0; rc == 0 && t < md->topic_cnt; t++) {
    const char *name = md->topics[t].topic;
    if (strncmp(name, prefix, strlen(prefix)) != 0)
      continue;
    for (int p = 0; rc == 0 && p < md->topics[t].partition_cnt; p++) {
      int32_t id = md->topics[t].partitions[p].id;
      int64_t lo = 0, hi = 0;
      if (count == NULL) {
        rc = dump_partition(c, name, id);
      } else if ((err = rd_kafka_query_watermark_offsets(c, name, id, &lo, &hi,
                                                         10000))) {
        fprintf(stderr, "kafka_mock: watermarks %s/%d: %s\n", name, id,
                rd_kafka_err2str(err));
        rc = -1;
      } else {
        *count += hi;
      }
    }
  }
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return rc;
}

int main(int argc, char **argv) {
  int nbrokers = argc > 1 ? atoi(argv[1]) : 3;
  char e[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* The handle that hosts the cluster; quiet about its own brokers. */
  rd_kafka_conf_set(conf, "log_level", "3", e, sizeof e);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
  if (rk == NULL) {
    fprintf(stderr, "kafka_mock: %s\n", e);
    return 1;
  }
  mc = rd_kafka_mock_cluster_new(rk, nbrokers);
  if (mc == NULL) {
    fprintf(stderr, "kafka_mock: no mock cluster\n");
    return 1;
  }
  bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
  answer(bootstraps);
  char line[1024];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = '\0';
    char a[512] = "", b[64] = "";
    long n = 0, m = 0;
    rd_kafka_resp_err_t err = 0;
    if (sscanf(line, "create %511s %ld", a, &n) == 2)
      err = rd_kafka_mock_topic_create(mc, a, (int)n, nbrokers);
    else if (sscanf(line, "down %ld", &n) == 1)
      err = rd_kafka_mock_broker_set_down(mc, (int32_t)n);
    else if (sscanf(line, "up %ld", &n) == 1)
      err = rd_kafka_mock_broker_set_up(mc, (int32_t)n);
    else if (sscanf(line, "rtt %ld %ld", &n, &m) == 2)
      err = rd_kafka_mock_broker_set_rtt(mc, (int32_t)n, (int)m);
    else if (sscanf(line, "err %ld %ld", &n, &m) == 2) {
      rd_kafka_resp_err_t *codes = calloc((size_t)m + 1, sizeof *codes);
      for (long i = 0; i < m; i++)
        codes[i] = (rd_kafka_resp_err_t)n;
      rd_kafka_mock_push_request_errors_array(mc, 0 /* Produce */, (size_t)m,
                                              codes);
      free(codes);
    } else if (sscanf(line, "topicerr %511s %63s", a, b) == 2)
      rd_kafka_mock_topic_set_error(mc, a, (rd_kafka_resp_err_t)atoi(b));
    else if (strncmp(line, "dump", 4) == 0) {
      const char *prefix = line[4] == ' ' ? line + 5 : "";
      if (dump(prefix, NULL) < 0) {
        answer("error dump");
        continue;
      }
    } else if (strncmp(line, "count", 5) == 0) {
      const char *prefix = line[5] == ' ' ? line + 6 : "";
      int64_t total = 0;
      if (dump(prefix, &total) < 0) {
        answer("error count");
        continue;
      }
      printf("%" PRId64 "\n", total);
    } else if (strcmp(line, "quit") == 0)
      break;
    else {
      answer("error unknown command");
      continue;
    }
    if (err) {
      printf("error %s\n", rd_kafka_err2str(err));
      fflush(stdout);
    } else
      answer("ok");
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
