/*
 * fuzz_ckpt.c - the checkpoint readers against arbitrary data: the nodes
 * an agent and the coordinator read back from ZooKeeper about positions
 * and snapshots (checkpoints/<p> with its snapshot progress, the snapshot
 * request, drain/<agent>), the agent's own reading of a checkpoint object
 * (ckpt_parse) and its standalone checkpoint file (ckpt_file_load).
 *
 * Every reader must take any bytes: return 0 or its error code with a
 * one-line message, leak nothing, and give back what it read as data
 * that builds and reads again to the same data (compared as the JSON
 * built). The file is loaded for one partition and for four (a store
 * holds every partition's checkpoint, 10 KiB each: more would be the
 * allocator's time, not the reader's), and every
 * partition's checkpoint taken from it must build. HD_FUZZ_VERBOSE=1
 * prints what each reader said (to check seeds).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt_file.h"
#include "hd_err.h"
#include "hd_group.h"

static int verbose; /* HD_FUZZ_VERBOSE: what each reader said */

static void check_err(int rc, int code, const char *err) {
  if (rc != code || err[0] == '\0' || strchr(err, '\n') != NULL)
    abort();
}

typedef int (*parse_fn)(const char *, size_t, void *, char *, size_t);
typedef int (*build_fn)(const void *, char **, char *, size_t);

/* parse, build, parse the built, build again: the same JSON */
static void roundtrip(parse_fn parse, build_fn build, int code, void *v,
                      void *back, const uint8_t *data, size_t size) {
  char err[512], *json, *again;
  int rc = parse((const char *)data, size, v, err, sizeof(err));
  if (verbose)
    fprintf(stderr, "%s\n", rc ? err : "read");
  if (rc != 0) {
    check_err(rc, code, err);
    return;
  }
  if (build(v, &json, err, sizeof(err)) != 0)
    abort();
  if (parse(json, strlen(json), back, err, sizeof(err)) != 0 ||
      build(back, &again, err, sizeof(err)) != 0 || strcmp(json, again) != 0)
    abort();
  free(json);
  free(again);
}

static char path[64];

static void unlink_path(void) {
  unlink(path);
}

static void file(const uint8_t *data, size_t size, uint32_t partitions) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    abort();
  ckpt_file_t *st = NULL;
  char err[1024];
  int rc = ckpt_file_load(path, partitions, &st, err, sizeof(err));
  if (verbose)
    fprintf(stderr, "file/%u: %s\n", partitions, rc ? err : "loaded");
  if (rc != 0) {
    if ((rc != HD_ECKPT_CORRUPT && rc != HD_ECKPT_PARTITIONS) ||
        err[0] == '\0' || strchr(err, '\n') != NULL)
      abort();
    return;
  }
  if (ckpt_file_partitions(st) != partitions)
    abort();
  for (uint32_t p = 0; p <= partitions; p++) {
    static ckpt_t c, back;
    if (!ckpt_file_get(st, p, &c))
      continue;
    char *json;
    if (p == partitions || ckpt_build(&c, &json, err, sizeof(err)) != 0)
      abort(); /* out of range has none; what was loaded builds */
    if (ckpt_parse(json, strlen(json), &back, err, sizeof(err)) != 0)
      abort();
    free(json);
  }
  ckpt_file_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the nodes are large (a checkpoint: 8 KiB of snapshot position) */
  static _Alignas(16) unsigned char v[sizeof(hd_checkpoint_t) + 64],
      back[sizeof(hd_checkpoint_t) + 64];
  if (path[0] == '\0') {
    /* in memory where there is /dev/shm: a file is written per input */
    snprintf(path, sizeof(path), "%s/fuzz_ckpt.%ld.json",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (long)getpid());
    atexit(unlink_path);
    verbose = getenv("HD_FUZZ_VERBOSE") != NULL;
  }
  roundtrip((parse_fn)hd_checkpoint_parse, (build_fn)hd_checkpoint_build,
            HD_EGROUP, v, back, data, size);
  roundtrip((parse_fn)ckpt_parse, (build_fn)ckpt_build, HD_ECKPT_CORRUPT, v,
            back, data, size);
  roundtrip((parse_fn)hd_drain_parse, (build_fn)hd_drain_build, HD_EGROUP, v,
            back, data, size);
  /* the request, and the partitions it names */
  hd_snapreq_t *r = (hd_snapreq_t *)v;
  char err[512];
  if (hd_snapreq_parse((const char *)data, size, r, err, sizeof(err)) == 0) {
    for (uint32_t p = 0; p < 70000; p += p < 64 ? 1 : 4093)
      (void)hd_snapreq_has(r, p);
  }
  roundtrip((parse_fn)hd_snapreq_parse, (build_fn)hd_snapreq_build, HD_EGROUP,
            v, back, data, size);
  file(data, size, 1);
  file(data, size, 4);
  return 0;
}
