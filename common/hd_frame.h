/*
 * hd_frame.h - the frame codec: length-prefixed protobuf.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of a
 * serialized herald.Frame. The decoder is pure and incremental (no I/O, no
 * logging): feed it whatever bytes arrived, in any split, and it returns
 * whole frames. Lengths that a peer controls are checked against the
 * maximum before anything is allocated.
 */
#ifndef HD_FRAME_H
#define HD_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "herald.pb-c.h"

#define HD_FRAME_HDR_LEN 4
#define HD_FRAME_DEFAULT_MAX (16u << 20)

/* Input window: the decoder reads src[pos..size) and advances pos. */
typedef struct {
  const uint8_t *src;
  size_t size;
  size_t pos;
} hd_inbuf_t;

typedef struct {
  uint32_t max_frame_bytes;
  uint8_t hdr[HD_FRAME_HDR_LEN];
  uint32_t hdr_have; /* header bytes collected */
  uint32_t len;      /* payload length, valid once hdr_have == 4 */
  uint8_t *body;     /* payload being collected across calls, owned */
  uint32_t body_have;
  uint32_t body_cap; /* grown as the payload comes, not from len at once */
  int failed;        /* a decode error is final for the stream */
  char errmsg[160];  /* what was wrong, after an error */
  ProtobufCAllocator *alloc; /* what frames are unpacked with; NULL: malloc */
} hd_frame_dec_t;

/** @brief Initialise a decoder; max_frame_bytes bounds the payload. */
void hd_frame_dec_init(hd_frame_dec_t *d, uint32_t max_frame_bytes);

/** @brief Unpack the frames of d with a (protobuf-c's allocator interface;
 *         NULL: malloc). Frames so made are freed through a too, or all
 *         at once by whoever owns a (an arena): never with
 *         hd_frame_free(). */
void hd_frame_dec_set_allocator(hd_frame_dec_t *d, ProtobufCAllocator *a);

/** @brief Release what the decoder holds; it may be initialised again. */
void hd_frame_dec_free(hd_frame_dec_t *d);

/**
 * @brief Decode at most one frame from in.
 * @returns >0: the number of bytes still needed (at least that many);
 *          0: *out holds one frame, which the caller frees with
 *             hd_frame_free();
 *          <0: HD_EFRAME_TOO_BIG, HD_EFRAME_EMPTY or HD_EBAD_FRAME; d->errmsg
 *             says what was wrong. The stream is then unusable: every later
 *             call returns the same error. Close the connection.
 * @locality any thread; one decoder per stream
 */
ssize_t hd_frame_decode(hd_frame_dec_t *d, hd_inbuf_t *in, Herald__Frame **out);

/** @brief Free a frame returned by hd_frame_decode() (NULL is fine). */
void hd_frame_free(Herald__Frame *f);

/** @brief Bytes hd_frame_pack() writes for f, header included. */
size_t hd_frame_packed_size(const Herald__Frame *f);

/**
 * @brief Write header and payload of f into buf, which has room for
 *        hd_frame_packed_size(f) bytes.
 * @returns bytes written, or HD_EFRAME_TOO_BIG if the payload would exceed
 *          max_frame_bytes (nothing is written then).
 */
ssize_t hd_frame_pack(const Herald__Frame *f, uint32_t max_frame_bytes,
                      uint8_t *buf);

/**
 * @brief Encode f into a new buffer (caller frees *out with free()).
 * @returns 0, or HD_EFRAME_TOO_BIG.
 */
int hd_frame_encode(const Herald__Frame *f, uint32_t max_frame_bytes,
                    uint8_t **out, size_t *outlen);

/**
 * @brief The wire's ErrorCode for a herald code, for an Error frame. The
 *        PROTO codes (HD_EBAD_REQUEST...) map one to one; besides them, a
 *        frame codec error is ERR_BAD_REQUEST, RELAY_STORE_ETOO_OLD is
 *        ERR_SCN_TOO_OLD and any other store error ERR_UNAVAILABLE.
 * @returns the ErrorCode; ERR_UNKNOWN for every other value (errno too).
 * @locality any thread
 */
Herald__ErrorCode hd_err_to_wire(int err);

/**
 * @brief The herald code for the ErrorCode of a relay's Error frame: what a
 *        client returns to its caller, who can act on it (HD_ESCN_TOO_OLD:
 *        bootstrap; HD_EAUTH: fix the token; HD_ETOO_MANY, HD_EUNAVAILABLE:
 *        retry later or elsewhere).
 * @returns a PROTO code; HD_EREMOTE for ERR_UNKNOWN and for values this
 *          build does not know (a newer relay's).
 * @locality any thread
 */
int hd_err_from_wire(Herald__ErrorCode code);

#endif
