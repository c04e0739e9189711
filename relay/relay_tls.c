/*
 * relay_tls.c - the consumer port's TLS layer (relay_tls.h): the server
 * SSL_CTX from relay.tls_* and, per connection, an SSL object whose
 * reading and writing ends are two memory BIOs.
 */
#include "relay_tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "hd_mem.h"

/* Plaintext is gathered into records of this size: the send path hands
 * many small buffers (frame prefixes, row pieces), and one SSL_write each
 * would make one record each. */
#define SEAL_RECORD 16384

struct relay_tls_ctx {
  SSL_CTX *ctx;
};

struct relay_tls {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int got;          /* bytes have come: the first was looked at */
  uint8_t *plain;
  size_t pcap;
  uint8_t stage[SEAL_RECORD];
};

/* OpenSSL's queued errors as one line ("...: ...; ..."), the queue emptied. */
static void ssl_errors(char *b, size_t n, const char *what) {
  size_t o = (size_t)snprintf(b, n, "%s", what);
  unsigned long e;
  int first = 1;
  while ((e = ERR_get_error()) != 0) {
    if (o + 3 >= n)
      continue;
    o += (size_t)snprintf(b + o, n - o, first ? ": " : "; ");
    if (o + 1 < n)
      ERR_error_string_n(e, b + o, n - o);
    o = strlen(b);
    first = 0;
  }
}

/* A key file is read at start without anyone to ask: an encrypted one is
 * an error, not a prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rw, void *ud) {
  (void)buf;
  (void)size;
  (void)rw;
  (void)ud;
  return 0;
}

int relay_tls_ctx_new(const hd_relay_conf_t *conf, relay_tls_ctx_t **out,
                      char *err, size_t errlen) {
  *out = NULL;
  if (conf->relay.tls_cert_file == NULL)
    return 0;
  char what[600];
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    ssl_errors(err, errlen, "relay.tls_cert_file: cannot make a TLS context");
    return -1;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  /* The write BIO is drained after every call: partial writes never
   * happen, and a buffer may move between calls. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, conf->relay.tls_cert_file) != 1) {
    snprintf(what, sizeof(what), "relay.tls_cert_file %s: cannot load",
             conf->relay.tls_cert_file);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, conf->relay.tls_key_file,
                                  SSL_FILETYPE_PEM) != 1) {
    snprintf(what, sizeof(what),
             "relay.tls_key_file %s: cannot load as the key of "
             "relay.tls_cert_file %s (a PEM key, not encrypted)",
             conf->relay.tls_key_file, conf->relay.tls_cert_file);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    snprintf(what, sizeof(what),
             "relay.tls_key_file %s: not the key of relay.tls_cert_file %s",
             conf->relay.tls_key_file, conf->relay.tls_cert_file);
    goto fail;
  }
  if (conf->relay.tls_client_ca_file) {
    const char *ca = conf->relay.tls_client_ca_file;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
      if (names)
        sk_X509_NAME_pop_free(names, X509_NAME_free);
      snprintf(what, sizeof(what),
               "relay.tls_client_ca_file %s: no CA certificate loaded", ca);
      goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
  }
  relay_tls_ctx_t *x = hd_calloc(1, sizeof(*x));
  x->ctx = ctx;
  *out = x;
  return 0;
fail:
  ssl_errors(err, errlen, what);
  SSL_CTX_free(ctx);
  return -1;
}

void relay_tls_ctx_free(relay_tls_ctx_t *x) {
  if (x == NULL)
    return;
  SSL_CTX_free(x->ctx); /* connections still open hold their reference */
  free(x);
}

relay_tls_t *relay_tls_new(relay_tls_ctx_t *x) {
  SSL *ssl = SSL_new(x->ctx);
  BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
  if (ssl == NULL || r == NULL || w == NULL)
    hd__oom(0); /* allocation only: nothing else fails here */
  /* An empty memory BIO says "retry", not end of file. */
  BIO_set_mem_eof_return(r, -1);
  BIO_set_mem_eof_return(w, -1);
  SSL_set_bio(ssl, r, w);
  SSL_set_accept_state(ssl);
  relay_tls_t *t = hd_calloc(1, sizeof(*t));
  t->ssl = ssl;
  t->rbio = r;
  t->wbio = w;
  return t;
}

void relay_tls_free(relay_tls_t *t) {
  if (t == NULL)
    return;
  SSL_free(t->ssl);
  free(t->plain);
  free(t);
}

int relay_tls_ready(const relay_tls_t *t) {
  return SSL_is_init_finished(t->ssl);
}

/* What SSL_do_handshake/SSL_read returned: 0 to wait for more bytes, 1 for
 * the end of the session, -1 a failure (err filled). */
static int ssl_result(relay_tls_t *t, int rc, char *err, size_t errlen) {
  int e = SSL_get_error(t->ssl, rc);
  switch (e) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return 0;
  case SSL_ERROR_ZERO_RETURN:
    return 1;
  default: {
    const char *what = SSL_is_init_finished(t->ssl) ? "TLS record failed"
                                                    : "TLS handshake failed";
    long v = SSL_get_verify_result(t->ssl);
    char w2[200];
    if (v != X509_V_OK) {
      snprintf(w2, sizeof(w2), "%s (client certificate: %s)", what,
               X509_verify_cert_error_string(v));
      what = w2;
    }
    ssl_errors(err, errlen, what);
    return -1;
  }
  }
}

int relay_tls_read(relay_tls_t *t, const uint8_t *in, size_t n,
                   const uint8_t **plain, size_t *plen, char *err,
                   size_t errlen) {
  *plain = t->plain;
  *plen = 0;
  if (n == 0)
    return 0;
  /* A TLS client's first record is a handshake (22); a herald client
   * without TLS starts with a frame length, whose first byte is 0. */
  if (!t->got && in[0] != 22) {
    snprintf(err, errlen,
             "the client does not speak TLS (first byte 0x%02x): plaintext "
             "sent to a TLS-only consumer port",
             in[0]);
    return RELAY_TLS_NOT_TLS;
  }
  t->got = 1;
  if (BIO_write(t->rbio, in, (int)n) != (int)n)
    hd__oom(n);
  ERR_clear_error();
  if (!SSL_is_init_finished(t->ssl)) {
    int rc = SSL_do_handshake(t->ssl);
    if (rc != 1)
      return ssl_result(t, rc, err, errlen);
  }
  size_t len = 0;
  for (;;) {
    if (t->pcap - len < SEAL_RECORD) {
      t->pcap = t->pcap ? t->pcap * 2 : 4 * SEAL_RECORD;
      t->plain = hd_realloc(t->plain, t->pcap);
    }
    size_t got = 0;
    int rc = SSL_read_ex(t->ssl, t->plain + len, t->pcap - len, &got);
    if (rc == 1) {
      len += got;
      continue;
    }
    *plain = t->plain;
    *plen = len;
    return ssl_result(t, rc, err, errlen);
  }
}

/* Appends the write BIO's bytes to *out (capacity *cap, length *len). */
static void drain(relay_tls_t *t, uint8_t **out, size_t *len, size_t *cap) {
  size_t p = BIO_ctrl_pending(t->wbio);
  if (p == 0)
    return;
  if (*len + p > *cap) {
    size_t nc = *cap ? *cap : 4096;
    while (nc < *len + p)
      nc *= 2;
    *out = hd_realloc(*out, nc);
    *cap = nc;
  }
  int r = BIO_read(t->wbio, *out + *len, (int)p);
  if (r > 0)
    *len += (size_t)r;
}

uint8_t *relay_tls_take(relay_tls_t *t, size_t *len) {
  uint8_t *out = NULL;
  size_t cap = 0;
  *len = 0;
  drain(t, &out, len, &cap);
  return out;
}

/* One SSL_write of p[0..n), its records appended to the output. */
static int seal_one(relay_tls_t *t, const uint8_t *p, size_t n, uint8_t **out,
                    size_t *len, size_t *cap, char *err, size_t errlen) {
  while (n) {
    size_t one = n > INT_MAX / 2 ? INT_MAX / 2 : n, wrote = 0;
    if (SSL_write_ex(t->ssl, p, one, &wrote) != 1) {
      ssl_errors(err, errlen, "TLS write failed");
      return -1;
    }
    drain(t, out, len, cap); /* the write BIO holds one call's records */
    p += wrote;
    n -= wrote;
  }
  return 0;
}

int relay_tls_seal(relay_tls_t *t, const uv_buf_t *bufs, size_t n,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen) {
  size_t total = 0, len = 0, cap, st = 0;
  for (size_t i = 0; i < n; i++)
    total += bufs[i].len;
  /* Room for the records' headers, tags and padding up front: one
   * allocation for the common case. */
  cap = total + (total / SEAL_RECORD + 2) * 64 + BIO_ctrl_pending(t->wbio);
  uint8_t *o = hd_malloc(cap);
  *out = NULL;
  *outlen = 0;
  ERR_clear_error();
  if (!SSL_is_init_finished(t->ssl)) {
    snprintf(err, errlen, "TLS handshake not done: nothing may be sent yet");
    free(o);
    return -1;
  }
  drain(t, &o, &len, &cap);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = (const uint8_t *)bufs[i].base;
    size_t left = bufs[i].len;
    while (left) {
      /* A large piece with nothing gathered goes as it is: no copy. */
      if (st == 0 && left >= SEAL_RECORD) {
        size_t whole = left - left % SEAL_RECORD;
        if (seal_one(t, p, whole, &o, &len, &cap, err, errlen) < 0)
          goto fail;
        p += whole;
        left -= whole;
        continue;
      }
      size_t k = SEAL_RECORD - st < left ? SEAL_RECORD - st : left;
      memcpy(t->stage + st, p, k);
      st += k;
      p += k;
      left -= k;
      if (st == SEAL_RECORD) {
        if (seal_one(t, t->stage, st, &o, &len, &cap, err, errlen) < 0)
          goto fail;
        st = 0;
      }
    }
  }
  if (st && seal_one(t, t->stage, st, &o, &len, &cap, err, errlen) < 0)
    goto fail;
  *out = o;
  *outlen = len;
  return 0;
fail:
  free(o);
  return -1;
}
