/*
 * fuzz_config.c - the config loader against arbitrary text.
 *
 * The input is loaded as each kind of config. Whatever the input, the
 * loader must return 0 or HD_ECONFIG with a one-line message of the form
 * "NAME:LINE:COLUMN: ...", and free everything it allocated.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_confdefs.h"
#include "hd_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  union {
    hd_relay_conf_t r;
    hd_agent_conf_t a;
    hd_coord_conf_t c;
  } conf;
  for (int i = 0; i < 3; i++) {
    char err[512];
    int rc = hd_config_load_string("fuzz.yaml", (const char *)data, size,
                                   hd_all_schemas[i], &conf, err, sizeof(err));
    if (rc != 0) {
      unsigned line, col;
      if (rc != HD_ECONFIG ||
          sscanf(err, "fuzz.yaml:%u:%u: ", &line, &col) != 2 || line == 0 ||
          col == 0 || strchr(err, '\n') != NULL)
        abort();
    }
    hd_config_free(hd_all_schemas[i], &conf);
  }
  return 0;
}
