/*
 * nats_dump.c - the nats sink tests' reader: creates a JetStream stream
 * or prints every message of one as a JSON line.
 *
 *   nats_dump URL create STREAM SUBJECT   file storage, 2 min duplicate
 *                                          window; an existing one is fine
 *   nats_dump URL delete STREAM
 *   nats_dump URL dump STREAM             {"subject":..,"seq":..,
 *                                          "headers":{..},"data":".."}
 *   nats_dump URL count STREAM            the messages it holds
 *                                          (bench/sinks)
 */
#include <inttypes.h>
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, natsStatus st, jsErrCode jerr) {
  fprintf(stderr, "nats_dump: %s: %s (jetstream error %d): %s\n", what,
          natsStatus_GetText(st), (int)jerr, nats_GetLastError(NULL));
  return 1;
}

static int dump(jsCtx *js, const char *stream) {
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  natsStatus st = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
  if (st != NATS_OK)
    return fail("stream info", st, jerr);
  uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  for (uint64_t seq = first; seq > 0 && seq <= last; seq++) {
    natsMsg *m = NULL;
    st = js_GetMsg(&m, js, stream, seq, NULL, &jerr);
    if (st == NATS_NOT_FOUND)
      continue;
    if (st != NATS_OK)
      return fail("get message", st, jerr);
    json_t *h = json_object();
    const char **keys = NULL;
    int n = 0;
    if (natsMsgHeader_Keys(m, &keys, &n) == NATS_OK) {
      for (int i = 0; i < n; i++) {
        const char *v = NULL;
        if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK)
          json_object_set_new(h, keys[i], json_string(v));
      }
      free((void *)keys);
    }
    const char *subj = natsMsg_GetSubject(m);
    const char *data = natsMsg_GetData(m);
    json_t *o = json_object();
    json_object_set_new(o, "subject", json_string(subj ? subj : ""));
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "headers", h);
    json_object_set_new(
        o, "data",
        json_stringn(data ? data : "", (size_t)natsMsg_GetDataLength(m)));
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line == NULL) {
      fprintf(stderr, "nats_dump: message %" PRIu64 ": not JSON-able\n", seq);
      json_decref(o);
      natsMsg_Destroy(m);
      return 1;
    }
    puts(line);
    free(line);
    json_decref(o);
    natsMsg_Destroy(m);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr,
            "usage: nats_dump URL create|delete|dump|count STREAM [SUBJECT]\n");
    return 2;
  }
  natsConnection *nc = NULL;
  jsCtx *js = NULL;
  jsErrCode jerr = 0;
  int rc = 1;
  natsStatus st = natsConnection_ConnectTo(&nc, argv[1]);
  if (st != NATS_OK) {
    rc = fail(argv[1], st, 0);
    goto out;
  }
  if ((st = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
    rc = fail("jetstream", st, 0);
    goto out;
  }
  if (strcmp(argv[2], "create") == 0 && argc == 5) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subj[1] = {argv[4]};
    cfg.Name = argv[3];
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = (int64_t)120 * 1000 * 1000 * 1000;
    jsStreamInfo *si = NULL;
    st = js_AddStream(&si, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    rc = st == NATS_OK ? 0 : fail("add stream", st, jerr);
  } else if (strcmp(argv[2], "delete") == 0) {
    st = js_DeleteStream(js, argv[3], NULL, &jerr);
    rc = st == NATS_OK || st == NATS_NOT_FOUND
             ? 0
             : fail("delete stream", st, jerr);
  } else if (strcmp(argv[2], "dump") == 0) {
    rc = dump(js, argv[3]);
  } else if (strcmp(argv[2], "count") == 0) {
    jsStreamInfo *si = NULL;
    st = js_GetStreamInfo(&si, js, argv[3], NULL, &jerr);
    if (st == NATS_OK)
      printf("%" PRIu64 "\n", si->State.Msgs);
    jsStreamInfo_Destroy(si);
    rc = st == NATS_OK ? 0 : fail("stream info", st, jerr);
  } else {
    fprintf(stderr, "nats_dump: unknown command '%s'\n", argv[2]);
    rc = 2;
  }
out:
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  nats_Close();
  return rc;
}
