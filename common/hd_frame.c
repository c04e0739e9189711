#include "hd_frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hd_err.h"
#include "hd_mem.h"

void hd_frame_dec_init(hd_frame_dec_t *d, uint32_t max_frame_bytes) {
  memset(d, 0, sizeof(*d));
  d->max_frame_bytes = max_frame_bytes;
}

void hd_frame_dec_set_allocator(hd_frame_dec_t *d, ProtobufCAllocator *a) {
  d->alloc = a;
}

void hd_frame_dec_free(hd_frame_dec_t *d) {
  free(d->body);
  d->body = NULL;
  d->body_have = d->body_cap = 0;
  d->hdr_have = 0;
}

static ssize_t dec_fail(hd_frame_dec_t *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ssize_t dec_fail(hd_frame_dec_t *d, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->errmsg, sizeof(d->errmsg), fmt, ap);
  va_end(ap);
  d->failed = err;
  free(d->body);
  d->body = NULL;
  d->body_cap = 0;
  return err;
}

/* Unpack one payload and check that it carries a message. */
static ssize_t dec_unpack(hd_frame_dec_t *d, const uint8_t *p, uint32_t len,
                          Herald__Frame **out) {
  Herald__Frame *f = herald__frame__unpack(d->alloc, len, p);
  if (f == NULL)
    return dec_fail(d, HD_EBAD_FRAME,
                    "payload of %u bytes is not a valid herald.Frame "
                    "protobuf",
                    len);
  if (f->msg_case == HERALD__FRAME__MSG__NOT_SET) {
    herald__frame__free_unpacked(f, d->alloc);
    return dec_fail(d, HD_EBAD_FRAME,
                    "frame of %u bytes carries no known message", len);
  }
  *out = f;
  return 0;
}

ssize_t hd_frame_decode(hd_frame_dec_t *d, hd_inbuf_t *in,
                        Herald__Frame **out) {
  *out = NULL;
  if (d->failed)
    return d->failed;

  while (d->hdr_have < HD_FRAME_HDR_LEN) {
    if (in->pos >= in->size)
      return HD_FRAME_HDR_LEN - d->hdr_have;
    d->hdr[d->hdr_have++] = in->src[in->pos++];
    if (d->hdr_have == HD_FRAME_HDR_LEN) {
      d->len = (uint32_t)d->hdr[0] << 24 | (uint32_t)d->hdr[1] << 16 |
               (uint32_t)d->hdr[2] << 8 | d->hdr[3];
      /* Check before allocating: the peer controls this number. */
      if (d->len == 0)
        return dec_fail(d, HD_EFRAME_EMPTY, "frame length is 0");
      if (d->len > d->max_frame_bytes)
        return dec_fail(d, HD_EFRAME_TOO_BIG,
                        "frame length %u exceeds the maximum of %u bytes",
                        d->len, d->max_frame_bytes);
      d->body_have = 0;
    }
  }

  size_t avail = in->size - in->pos;
  if (d->body == NULL && avail >= d->len) {
    /* The whole payload is in the caller's buffer: parse it in place. */
    const uint8_t *p = in->src + in->pos;
    in->pos += d->len;
    d->hdr_have = 0;
    return dec_unpack(d, p, d->len, out);
  }

  size_t take = d->len - d->body_have;
  if (take > avail)
    take = avail;
  if (take == 0)
    return d->len - d->body_have;
  if (d->body_have + take > d->body_cap) {
    /* A header alone must not make us hold max_frame_bytes: the buffer
     * grows (doubling, from 64 KiB) with what has arrived. */
    size_t cap = d->body_cap ? d->body_cap : 64u << 10;
    while (cap < d->body_have + take)
      cap *= 2;
    if (cap > d->len)
      cap = d->len;
    d->body = hd_realloc(d->body, cap);
    d->body_cap = (uint32_t)cap;
  }
  memcpy(d->body + d->body_have, in->src + in->pos, take);
  in->pos += take;
  d->body_have += (uint32_t)take;
  if (d->body_have < d->len)
    return d->len - d->body_have;

  uint8_t *body = d->body;
  d->body = NULL;
  d->body_cap = 0;
  d->hdr_have = 0;
  ssize_t rc = dec_unpack(d, body, d->len, out);
  free(body);
  return rc;
}

void hd_frame_free(Herald__Frame *f) {
  if (f != NULL)
    herald__frame__free_unpacked(f, NULL);
}

size_t hd_frame_packed_size(const Herald__Frame *f) {
  return HD_FRAME_HDR_LEN + herald__frame__get_packed_size(f);
}

ssize_t hd_frame_pack(const Herald__Frame *f, uint32_t max_frame_bytes,
                      uint8_t *buf) {
  size_t len = herald__frame__get_packed_size(f);
  if (len > max_frame_bytes || len == 0)
    return len == 0 ? HD_EFRAME_EMPTY : HD_EFRAME_TOO_BIG;
  buf[0] = (uint8_t)(len >> 24);
  buf[1] = (uint8_t)(len >> 16);
  buf[2] = (uint8_t)(len >> 8);
  buf[3] = (uint8_t)len;
  size_t w = herald__frame__pack(f, buf + HD_FRAME_HDR_LEN);
  return (ssize_t)(w + HD_FRAME_HDR_LEN);
}

int hd_frame_encode(const Herald__Frame *f, uint32_t max_frame_bytes,
                    uint8_t **out, size_t *outlen) {
  size_t n = hd_frame_packed_size(f);
  if (n - HD_FRAME_HDR_LEN > max_frame_bytes)
    return HD_EFRAME_TOO_BIG;
  uint8_t *buf = hd_malloc(n);
  ssize_t w = hd_frame_pack(f, max_frame_bytes, buf);
  if (w < 0) {
    free(buf);
    return (int)w;
  }
  *out = buf;
  *outlen = (size_t)w;
  return 0;
}

/* The PROTO block against the wire's ErrorCode, one to one: the two
 * directions below are generated from it, so they cannot disagree. */
#define HD_WIRE_ERR_MAP(XX)                                                    \
  XX(HD_EBAD_REQUEST, BAD_REQUEST)                                             \
  XX(HD_ESCN_TOO_OLD, SCN_TOO_OLD)                                             \
  XX(HD_EAUTH, AUTH)                                                           \
  XX(HD_ETOO_MANY, TOO_MANY)                                                   \
  XX(HD_EUNAVAILABLE, UNAVAILABLE)                                             \
  XX(HD_EVERSION, VERSION)                                                     \
  XX(HD_ESNAPSHOT, SNAPSHOT)                                                   \
  XX(HD_EREMOTE, UNKNOWN)

Herald__ErrorCode hd_err_to_wire(int err) {
  switch (err) {
#define XX(e, w)                                                               \
  case e:                                                                      \
    return HERALD__ERROR_CODE__ERR_##w;
    HD_WIRE_ERR_MAP(XX)
#undef XX
  case RELAY_STORE_ETOO_OLD:
    /* retention deleted what the consumer needs: it must bootstrap */
    return HERALD__ERROR_CODE__ERR_SCN_TOO_OLD;
  default:
    break;
  }
  /* The peer sent what the codec refuses. */
  if (HD_ERR_IN(err, FRAME))
    return HERALD__ERROR_CODE__ERR_BAD_REQUEST;
  /* The relay cannot serve from its log now; another relay may. */
  if (HD_ERR_IN(err, STORE))
    return HERALD__ERROR_CODE__ERR_UNAVAILABLE;
  return HERALD__ERROR_CODE__ERR_UNKNOWN;
}

int hd_err_from_wire(Herald__ErrorCode code) {
  switch (code) {
#define XX(e, w)                                                               \
  case HERALD__ERROR_CODE__ERR_##w:                                            \
    return e;
    HD_WIRE_ERR_MAP(XX)
#undef XX
  default:
    return HD_EREMOTE;
  }
}
