/*
 * fuzz_sql.c - libFuzzer target for hb_sql.h, the statement lexer's users.
 *
 * Input: one flags byte (HB_SQL_* in its low bits), then a statement.
 * Redaction must read nothing past the statement and be idempotent: the
 * redacted text, redacted again, is itself (a redacted literal is closed,
 * and what follows it lexes as before). The names of the statement and the
 * table rule run on the same text.
 *
 * The corpus (tests/decoder/corpus_sql) holds statements of the forms the
 * unit test covers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hb_sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned flags = data[0] & 3;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  hb_buf_t a = {0}, b = {0};
  if (hb_sql_redact(s, n, flags, &a) > 0) {
    size_t again = hb_sql_redact(a.p, a.len, flags, &b);
    if (again > 0 && (b.len != a.len || memcmp(a.p, b.p, a.len) != 0))
      abort(); /* redacting twice changed the text */
  }
  hb_sql_names_t nm;
  hb_sql_names(s, n, "db", &nm);
  char *pat[] = {"db.*", "a*.b"};
  (void)hb_sql_names_wanted(&nm, pat, 2);
  (void)hb_sql_names_mem(&nm);
  hb_sql_names_free(&nm);
  hb_buf_free(&a);
  hb_buf_free(&b);
  return 0;
}
