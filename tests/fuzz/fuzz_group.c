/*
 * fuzz_group.c - the consumer-group and coordinator node readers against
 * arbitrary node data.
 *
 * Anyone who may write under /herald can put anything in these nodes, and
 * the coordinator and the agents act on what they read, so every reader
 * must take any bytes: return 0 or HD_EGROUP with a one-line message, leak
 * nothing, and give back what it read as a node that builds, and parses
 * again to the same node (a round trip, compared as the JSON built).
 * Every input goes to every reader.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_group.h"

typedef int (*parse_fn)(const char *, size_t, void *, char *, size_t);
typedef int (*build_fn)(const void *, char **, char *, size_t);

#define KIND(k, t)                                                             \
  { (parse_fn) hd_##k##_parse, (build_fn)hd_##k##_build, sizeof(t) }
static const struct {
  parse_fn parse;
  build_fn build;
  size_t size;
} kinds[] = {
    KIND(election, hd_election_t),     KIND(group, hd_group_t),
    KIND(member, hd_member_t),         KIND(owner, hd_owner_t),
    KIND(checkpoint, hd_checkpoint_t),
};

static void check_err(int rc, const char *err) {
  if (rc != HD_EGROUP || err[0] == '\0' || strchr(err, '\n') != NULL)
    abort();
}

static void flat(size_t k, const uint8_t *data, size_t size) {
  /* room for the largest node struct (a checkpoint: 8 KiB of snapshot
   * position) */
  static _Alignas(16) unsigned char v[16384], back[16384];
  char err[512], *json, *again;
  int rc = kinds[k].parse((const char *)data, size, v, err, sizeof(err));
  if (rc != 0) {
    check_err(rc, err);
    return;
  }
  if (kinds[k].build(v, &json, err, sizeof(err)) != 0)
    abort();
  if (kinds[k].parse(json, strlen(json), back, err, sizeof(err)) != 0 ||
      kinds[k].build(back, &again, err, sizeof(err)) != 0 ||
      strcmp(json, again) != 0)
    abort();
  free(json);
  free(again);
}

static void assignment(const uint8_t *data, size_t size) {
  hd_assignment_t a, b;
  char err[512], *json, *again;
  int rc = hd_assignment_parse((const char *)data, size, &a, err, sizeof(err));
  if (rc != 0) {
    check_err(rc, err);
    return;
  }
  /* What a reader acts on: no partition both granted and pending, every
   * index in range. */
  for (uint32_t p = 0; p < a.partitions; p++)
    if ((a.owner[p] >= 0 && a.pending[p] >= 0) ||
        a.owner[p] >= (int32_t)a.nmembers ||
        a.pending[p] >= (int32_t)a.nmembers || a.owner[p] < -1 ||
        a.pending[p] < -1)
      abort();
  if (hd_assignment_build(&a, &json, err, sizeof(err)) != 0)
    abort();
  if (hd_assignment_parse(json, strlen(json), &b, err, sizeof(err)) != 0 ||
      !hd_assignment_same(&a, &b) ||
      hd_assignment_build(&b, &again, err, sizeof(err)) != 0 ||
      strcmp(json, again) != 0)
    abort();
  free(json);
  free(again);
  hd_assignment_free(&a);
  hd_assignment_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
    flat(k, data, size);
  assignment(data, size);
  return 0;
}
