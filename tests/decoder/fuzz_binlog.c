/*
 * fuzz_binlog.c - libFuzzer target for the binlog decoder.
 *
 * Input: one mode byte, then a binlog file (magic and events). Mode bit 0
 * set: before decoding, every event's trailing CRC32 is recomputed (and
 * the FDE's with its in-use flag cleared), so that mutations get past the
 * checksum check into the event parsers; clear: the bytes are decoded as
 * they are, which exercises framing and checksum verification. Bit 1 adds
 * a schema provider and bit 2 a table filter, reaching those paths too.
 * Everything decoded is rendered, so the renderer sees the odd values.
 *
 * The corpus (tests/decoder/corpus) holds small real binlogs with mode
 * bytes 0x00 and 0x07.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hb.h"
#include "hb_file.h"
#include "hb_json.h"

static void fix_crcs(uint8_t *p, size_t n) {
  size_t off = 4;
  while (off + 23 <= n) {
    uint32_t sz = (uint32_t)p[off + 9] | (uint32_t)p[off + 10] << 8 |
                  (uint32_t)p[off + 11] << 16 | (uint32_t)p[off + 12] << 24;
    if (sz < 23 || sz > n - off)
      return;
    uint8_t flags = p[off + 17];
    if (off == 4)
      p[off + 17] &= (uint8_t)~1;
    uLong crc = crc32(0L, p + off, (uInt)(sz - 4));
    p[off + 17] = flags;
    for (int i = 0; i < 4; i++)
      p[off + sz - 4 + i] = (uint8_t)(crc >> (8 * i));
    off += sz;
  }
}

static int on_window(void *ud, const hb_window_t *w) {
  hb_buf_t *b = ud;
  hb_render_window(w, b);
  if (b->len > (1u << 20))
    hb_buf_reset(b); /* keep memory flat on long inputs */
  return 0;
}

static int on_ddl(void *ud, const hb_ddl_t *d) {
  hb_render_ddl(d, ud);
  return 0;
}

static int on_incident(void *ud, const hb_incident_t *inc) {
  (void)ud;
  (void)inc;
  return 0;
}

/* Names for even-length table names, unknown otherwise. */
static int schema(void *ud, const char *db, const char *table, uint32_t ncols,
                  hb_schema_col_t *cols, uint32_t *pk, uint32_t *npk) {
  static const char *const labels[] = {"a", "b", "c"};
  (void)ud;
  (void)db;
  if (strlen(table) % 2)
    return 1;
  for (uint32_t i = 0; i < ncols; i++) {
    cols[i].name = i % 2 ? "odd" : "even";
    cols[i].is_unsigned = (int)(i % 3) - 1;
    cols[i].charset = i % 4 == 0 ? 8 : 0;
    cols[i].labels = labels;
    cols[i].nlabels = 3;
  }
  if (ncols > 0) {
    pk[0] = ncols - 1;
    *npk = 1;
  }
  return 0;
}

static int filter(void *ud, const char *db, const char *table) {
  (void)ud;
  (void)db;
  return table[0] != 'x';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  size_t n = size - 1;
  uint8_t *p = malloc(n ? n : 1);
  memcpy(p, data + 1, n);
  if (mode & 1)
    fix_crcs(p, n);
  hb_buf_t out = {0};
  hb_config_t cfg = {
      .on_window = on_window,
      .on_ddl = on_ddl,
      .on_incident = (mode & 8) ? NULL : on_incident,
      .schema = (mode & 2) ? schema : NULL,
      .table_filter = (mode & 4) ? filter : NULL,
      .ud = &out,
      .max_payload = 16u << 20,
  };
  hb_decoder_t *dec = hb_decoder_new(&cfg);
  hb_read_opts_t ro = {.from_pos = (mode & 16) ? 200 : 0,
                       .max_event = 16u << 20};
  hb_read_buffer(dec, "fuzz.000001", p, n, &ro);
  hb_decoder_free(dec);
  hb_buf_free(&out);
  free(p);
  return 0;
}
