/*
 * relay_tls.h - TLS on the consumer port (relay.tls_cert_file), with
 * OpenSSL memory BIOs between the libuv socket and the frame code.
 *
 * The connection code stays what it is: the bytes a read brings go in
 * (relay_tls_read) and the plaintext they hold comes out for the frame
 * parser; the plaintext buffers of a write go in (relay_tls_seal) and one
 * buffer of TLS records comes out for uv_write. Nothing here does I/O, so
 * libuv's flow control (and the relay's relay.inflight_bytes, which counts
 * the encrypted bytes) applies as it does without TLS. TLS 1.2 at least,
 * no renegotiation; with relay.tls_client_ca_file a client certificate
 * signed by one of its CAs is required.
 */
#ifndef RELAY_TLS_H
#define RELAY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hd_confdefs.h"

typedef struct relay_tls_ctx relay_tls_ctx_t;
typedef struct relay_tls relay_tls_t;

/* relay_tls_read(): what came is not TLS (a plaintext client). */
#define RELAY_TLS_NOT_TLS (-2)

/**
 * @brief The server context of conf->relay.tls_*: certificate, key and the
 *        client CAs loaded and checked. *out is NULL when TLS is off.
 * @returns 0, or -1 with err naming the key and file that failed.
 */
int relay_tls_ctx_new(const hd_relay_conf_t *conf, relay_tls_ctx_t **out,
                      char *err, size_t errlen);
void relay_tls_ctx_free(relay_tls_ctx_t *x);

/** @brief A connection's TLS state (server side). */
relay_tls_t *relay_tls_new(relay_tls_ctx_t *x);
void relay_tls_free(relay_tls_t *t);

/** @brief 1 once the handshake is done: application data may go. */
int relay_tls_ready(const relay_tls_t *t);

/**
 * @brief n bytes from the socket in; *plain / *plen: the plaintext they
 *        complete (valid until the next call; *plen may be 0).
 * @returns 0; 1 when the client ended the session (close_notify);
 *          RELAY_TLS_NOT_TLS or -1 (handshake or record failure) with err
 *          filled. Either way relay_tls_take() may hold bytes to send
 *          (handshake messages, an alert).
 */
int relay_tls_read(relay_tls_t *t, const uint8_t *in, size_t n,
                   const uint8_t **plain, size_t *plen, char *err,
                   size_t errlen);

/**
 * @brief The plaintext of bufs[0..n) as TLS records, with whatever else
 *        was waiting to be sent before them, in one buffer for the caller
 *        to free(). Small buffers are gathered into full records.
 * @returns 0, or -1 with err filled (*out NULL).
 */
int relay_tls_seal(relay_tls_t *t, const uv_buf_t *bufs, size_t n,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen);

/** @brief Bytes waiting to be sent (handshake, alerts): a buffer to free(),
 *         or NULL when there are none. */
uint8_t *relay_tls_take(relay_tls_t *t, size_t *len);

#endif
