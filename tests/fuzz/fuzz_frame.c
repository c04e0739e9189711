/*
 * fuzz_frame.c - the frame codec against arbitrary bytes.
 *
 * The input is fed to one decoder in chunks whose sizes come from the
 * input's first byte, so that split headers and split payloads are covered
 * as well as whole frames. Every frame that decodes is encoded again and
 * must decode and encode again to the same bytes.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_frame.h"

#define MAX_FRAME (1u << 20)

/* Encodes f, decodes that, encodes again. The input may hold a
 * non-canonical protobuf (overlong varints, repeated scalars, unknown
 * fields), so only the second encoding must equal the first. protobuf-c
 * keeps some unknown fields it will not read back (an overlong tag 0):
 * such a re-decode is refused cleanly, which is all the relay needs, as it
 * never forwards what it decodes. */
static void roundtrip(const Herald__Frame *f) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (hd_frame_encode(f, MAX_FRAME * 2, &buf, &len) != 0)
    abort(); /* a decoded frame always fits twice the limit */
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, MAX_FRAME * 2);
  hd_inbuf_t in = {buf, len, 0};
  Herald__Frame *g = NULL;
  ssize_t rc = hd_frame_decode(&d, &in, &g);
  if (rc < 0) {
    if (rc != HD_EBAD_FRAME || d.errmsg[0] == '\0')
      abort();
    hd_frame_dec_free(&d);
    free(buf);
    return;
  }
  if (rc != 0 || in.pos != len)
    abort();
  uint8_t *buf2 = NULL;
  size_t len2 = 0;
  if (hd_frame_encode(g, MAX_FRAME * 2, &buf2, &len2) != 0 || len2 != len ||
      memcmp(buf, buf2, len) != 0)
    abort();
  free(buf2);
  hd_frame_free(g);
  hd_frame_dec_free(&d);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t chunk = (size_t)data[0] % 17 + 1; /* 1..17, 17 = all at once */
  data++;
  size--;
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, MAX_FRAME);
  size_t off = 0;
  while (off < size) {
    size_t n = chunk == 17 ? size - off : chunk;
    if (n > size - off)
      n = size - off;
    hd_inbuf_t in = {data + off, n, 0};
    while (in.pos < in.size) {
      Herald__Frame *f = NULL;
      ssize_t rc = hd_frame_decode(&d, &in, &f);
      if (rc < 0) {
        /* Errors are final and described. */
        if (d.errmsg[0] == '\0' || hd_frame_decode(&d, &in, &f) != rc)
          abort();
        hd_frame_dec_free(&d);
        return 0;
      }
      if (rc == 0) {
        roundtrip(f);
        hd_frame_free(f);
      } else if (in.pos != in.size) {
        abort(); /* "need more" must mean the input was used up */
      }
    }
    off += n;
  }
  hd_frame_dec_free(&d);
  return 0;
}
