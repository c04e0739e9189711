/* Unit tests of the frame codec: round trips, splits, every malformed
 * input the decoder must name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hd_check.h"
#include "hd_err.h"
#include "hd_frame.h"

/* A heartbeat frame encoded by the codec itself. */
static uint8_t *heartbeat(uint64_t scn, size_t *len) {
  Herald__Frame f = HERALD__FRAME__INIT;
  Herald__Heartbeat hb = HERALD__HEARTBEAT__INIT;
  hb.newest_scn = scn;
  hb.now_ms = 1234;
  f.msg_case = HERALD__FRAME__MSG_HEARTBEAT;
  f.heartbeat = &hb;
  uint8_t *buf;
  ck_assert_int_eq(hd_frame_encode(&f, 1024, &buf, len), 0);
  return buf;
}

START_TEST(roundtrip_whole) {
  size_t len;
  uint8_t *buf = heartbeat(42, &len);
  ck_assert_uint_eq(buf[0], 0);
  ck_assert_uint_eq((size_t)buf[3] + HD_FRAME_HDR_LEN, len);
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  hd_inbuf_t in = {buf, len, 0};
  Herald__Frame *f = NULL;
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), 0);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(f->msg_case, HERALD__FRAME__MSG_HEARTBEAT);
  ck_assert_uint_eq(f->heartbeat->newest_scn, 42);
  ck_assert_uint_eq(in.pos, len);
  hd_frame_free(f);
  hd_frame_dec_free(&d);
  free(buf);
}
END_TEST

/* Bytewise feeding: the decoder reports what it still needs and returns
 * the frame exactly when the last byte arrives. */
START_TEST(split_bytewise) {
  size_t len;
  uint8_t *buf = heartbeat(7, &len);
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  Herald__Frame *f = NULL;
  int frames = 0;
  for (size_t i = 0; i < len; i++) {
    hd_inbuf_t in = {buf + i, 1, 0};
    ssize_t rc = hd_frame_decode(&d, &in, &f);
    ck_assert_uint_eq(in.pos, 1);
    if (i + 1 < HD_FRAME_HDR_LEN) {
      ck_assert_int_eq(rc, (ssize_t)(HD_FRAME_HDR_LEN - i - 1));
    } else if (i + 1 < len) {
      ck_assert_int_eq(rc, (ssize_t)(len - i - 1));
    } else {
      ck_assert_int_eq(rc, 0);
      frames++;
      ck_assert_uint_eq(f->heartbeat->newest_scn, 7);
      hd_frame_free(f);
    }
  }
  ck_assert_int_eq(frames, 1);
  hd_frame_dec_free(&d);
  free(buf);
}
END_TEST

/* Two frames in one buffer come out one per call. */
START_TEST(two_in_one) {
  size_t l1, l2;
  uint8_t *a = heartbeat(1, &l1), *b = heartbeat(2, &l2);
  uint8_t both[256];
  memcpy(both, a, l1);
  memcpy(both + l1, b, l2);
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  hd_inbuf_t in = {both, l1 + l2, 0};
  Herald__Frame *f;
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), 0);
  ck_assert_uint_eq(f->heartbeat->newest_scn, 1);
  hd_frame_free(f);
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), 0);
  ck_assert_uint_eq(f->heartbeat->newest_scn, 2);
  hd_frame_free(f);
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), HD_FRAME_HDR_LEN);
  ck_assert_ptr_null(f);
  hd_frame_dec_free(&d);
  free(a);
  free(b);
}
END_TEST

START_TEST(too_big_before_alloc) {
  /* 0xffffffff would be a 4 GiB allocation if it were trusted. */
  const uint8_t hdr[4] = {0xff, 0xff, 0xff, 0xff};
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  hd_inbuf_t in = {hdr, 4, 0};
  Herald__Frame *f;
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), HD_EFRAME_TOO_BIG);
  ck_assert_ptr_null(d.body);
  ck_assert_str_eq(d.errmsg,
                   "frame length 4294967295 exceeds the maximum of 1024 bytes");
  /* The error is final. */
  hd_inbuf_t more = {hdr, 4, 0};
  ck_assert_int_eq(hd_frame_decode(&d, &more, &f), HD_EFRAME_TOO_BIG);
  hd_frame_dec_free(&d);
}
END_TEST

/* A header alone does not make the decoder hold the length it claims:
 * the body grows with what arrives, and a large frame fed in uneven
 * pieces across the growth steps still comes out whole. */
START_TEST(body_grows_with_input) {
  enum { MSG = 600000 };
  char *text = malloc(MSG + 1);
  for (size_t i = 0; i < MSG; i++)
    text[i] = (char)('a' + i % 26);
  text[MSG] = '\0';
  Herald__Frame f = HERALD__FRAME__INIT;
  Herald__Error e = HERALD__ERROR__INIT;
  e.message = text;
  f.msg_case = HERALD__FRAME__MSG_ERROR;
  f.error = &e;
  uint8_t *buf;
  size_t len;
  ck_assert_int_eq(hd_frame_encode(&f, 1u << 20, &buf, &len), 0);
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 64u << 20);
  Herald__Frame *out = NULL;
  hd_inbuf_t in = {buf, 104, 0};
  ck_assert_int_eq(hd_frame_decode(&d, &in, &out), (ssize_t)(len - 104));
  ck_assert_uint_le(d.body_cap, 64u << 10);
  size_t off = 104, step = 1;
  ssize_t rc = 0;
  while (off < len) {
    size_t n = step < len - off ? step : len - off;
    hd_inbuf_t part = {buf + off, n, 0};
    rc = hd_frame_decode(&d, &part, &out);
    ck_assert_uint_eq(part.pos, n);
    off += n;
    step = step * 3 + 7;
    ck_assert_uint_le(d.body_cap, 2 * (off - HD_FRAME_HDR_LEN) + (64u << 10));
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_nonnull(out);
  ck_assert_int_eq(out->msg_case, HERALD__FRAME__MSG_ERROR);
  ck_assert_str_eq(out->error->message, text);
  ck_assert_ptr_null(d.body);
  hd_frame_free(out);
  hd_frame_dec_free(&d);
  free(buf);
  free(text);
}
END_TEST

START_TEST(empty_frame) {
  const uint8_t hdr[4] = {0, 0, 0, 0};
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  hd_inbuf_t in = {hdr, 4, 0};
  Herald__Frame *f;
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), HD_EFRAME_EMPTY);
  ck_assert_str_eq(d.errmsg, "frame length is 0");
  hd_frame_dec_free(&d);
}
END_TEST

START_TEST(garbage_payload) {
  /* Field 1, wire type 7 (invalid). */
  const uint8_t bad[] = {0, 0, 0, 2, 0x0f, 0x01};
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  hd_inbuf_t in = {bad, sizeof(bad), 0};
  Herald__Frame *f;
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), HD_EBAD_FRAME);
  ck_assert_ptr_null(f);
  ck_assert_str_eq(d.errmsg,
                   "payload of 2 bytes is not a valid herald.Frame protobuf");
  hd_frame_dec_free(&d);
}
END_TEST

START_TEST(truncated_submessage) {
  /* heartbeat (field 3, length-delimited) claiming 10 bytes, holding 1. */
  const uint8_t bad[] = {0, 0, 0, 3, 0x1a, 0x0a, 0x08};
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  hd_inbuf_t in = {bad, sizeof(bad), 0};
  Herald__Frame *f;
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), HD_EBAD_FRAME);
  hd_frame_dec_free(&d);
}
END_TEST

START_TEST(no_message) {
  /* A valid protobuf that sets only an unknown field (99, varint). */
  const uint8_t bad[] = {0, 0, 0, 3, 0x98, 0x06, 0x01};
  hd_frame_dec_t d;
  hd_frame_dec_init(&d, 1024);
  hd_inbuf_t in = {bad, sizeof(bad), 0};
  Herald__Frame *f;
  ck_assert_int_eq(hd_frame_decode(&d, &in, &f), HD_EBAD_FRAME);
  ck_assert_str_eq(d.errmsg, "frame of 3 bytes carries no known message");
  hd_frame_dec_free(&d);
}
END_TEST

START_TEST(encode_too_big) {
  Herald__Frame f = HERALD__FRAME__INIT;
  Herald__Error e = HERALD__ERROR__INIT;
  char msg[300];
  memset(msg, 'x', sizeof(msg) - 1);
  msg[sizeof(msg) - 1] = '\0';
  e.message = msg;
  f.msg_case = HERALD__FRAME__MSG_ERROR;
  f.error = &e;
  uint8_t *buf = NULL;
  size_t len;
  ck_assert_int_eq(hd_frame_encode(&f, 100, &buf, &len), HD_EFRAME_TOO_BIG);
  ck_assert_ptr_null(buf);
  ck_assert_int_eq(hd_frame_encode(&f, 1000, &buf, &len), 0);
  free(buf);
}
END_TEST

START_TEST(strerror_names) {
  ck_assert_str_eq(hd_strerror(HD_EFRAME_TOO_BIG),
                   "frame exceeds the maximum frame size");
  ck_assert_str_eq(hd_err_name(HD_EBAD_FRAME), "HD_EBAD_FRAME");
  ck_assert_str_eq(hd_strerror(0), "success");
  ck_assert_str_eq(hd_strerror(-2), "No such file or directory");
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("frame");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, roundtrip_whole);
  tcase_add_test(tc, split_bytewise);
  tcase_add_test(tc, two_in_one);
  tcase_add_test(tc, too_big_before_alloc);
  tcase_add_test(tc, body_grows_with_input);
  tcase_add_test(tc, empty_frame);
  tcase_add_test(tc, garbage_payload);
  tcase_add_test(tc, truncated_submessage);
  tcase_add_test(tc, no_message);
  tcase_add_test(tc, encode_too_big);
  tcase_add_test(tc, strerror_names);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
