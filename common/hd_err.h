/*
 * hd_err.h - herald's error codes.
 *
 * Functions return int: 0 on success, a negative code on failure. Negative
 * errno values (and libuv's UV_E* codes, which are the same thing on Unix)
 * pass through unchanged; herald's own codes start at HD__EBASE, well clear
 * of both. One X-macro generates the enum and the messages so the two can
 * never drift apart.
 */
#ifndef HD_ERR_H
#define HD_ERR_H

#define HD_ERR_MAP(XX)                                                         \
  XX(FRAME_TOO_BIG, "frame exceeds the maximum frame size")                    \
  XX(BAD_FRAME, "malformed frame")                                             \
  XX(FRAME_EMPTY, "frame of length zero")                                      \
  XX(CONFIG, "invalid configuration")                                          \
  XX(PARSE, "invalid value")                                                   \
  XX(RANGE, "value out of range")                                              \
  XX(OFFSET_GONE, "SCN no longer held by the relay")                           \
  XX(NOMEM, "out of memory")                                                   \
  XX(IO, "input/output error")

typedef enum {
  HD__EBASE = -2000, /* stays clear of errno and uv codes */
#define XX(c, s) HD_E##c,
  HD_ERR_MAP(XX)
#undef XX
      HD__ELAST
} hd_err_t;

/**
 * @brief Message for an error code: herald's own, or strerror() for a
 *        negative errno.
 * @returns a static string; never NULL.
 * @locality any thread
 */
const char *hd_strerror(int err);

/** @brief Symbolic name ("HD_EBAD_FRAME", "ENOENT"...) for logs and tests. */
const char *hd_err_name(int err);

#endif
