/*
 * fuzz_reg.c - the registration reader against arbitrary node data.
 *
 * Anyone who may write under /herald can put anything in a relay's node,
 * so the reader must take any bytes: return 0 or HD_EREG with a one-line
 * message, leak nothing, and give back what it read as a node that
 * builds and parses to the same values (a round trip).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_reg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_reg_t r, back;
  char err[512], *json;
  int rc = hd_reg_parse((const char *)data, size, &r, err, sizeof(err));
  if (rc != 0) {
    if (rc != HD_EREG || err[0] == '\0' || strchr(err, '\n') != NULL)
      abort();
    return 0;
  }
  if (hd_reg_build(&r, &json, err, sizeof(err)) != 0)
    abort();
  if (hd_reg_parse(json, strlen(json), &back, err, sizeof(err)) != 0 ||
      strcmp(r.id, back.id) != 0 || strcmp(r.advertise, back.advertise) != 0 ||
      r.newest_scn != back.newest_scn || r.connected != back.connected ||
      r.tls != back.tls || r.source_server_id != back.source_server_id)
    abort();
  free(json);
  return 0;
}
