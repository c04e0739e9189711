/*
 * coord_console.c - serves the console's embedded assets (coord_console.h).
 *
 * The bytes are in coord_console_assets.c, which console/embed.cmake
 * generates in the build directory from coordinator/console/ whenever one
 * of those files changes. The server frees every reply body, so each
 * request gets a copy; the three files are a few tens of KB.
 */
#include "coord_console.h"

#include <string.h>

#include "hd_mem.h"

/* Defined by the generated coord_console_assets.c (embed.cmake). */
extern const unsigned char coord_console_index_html[];
extern const size_t coord_console_index_html_len;
extern const unsigned char coord_console_console_js[];
extern const size_t coord_console_console_js_len;
extern const unsigned char coord_console_console_css[];
extern const size_t coord_console_console_css_len;

static void serve(hd_http_reply_t *r, const char *type,
                  const unsigned char *bytes, size_t len) {
  /* len + 1: the generated arrays end with a NUL, and a body of at least
   * one byte keeps malloc(0) out of it */
  r->body = hd_malloc(len + 1);
  memcpy(r->body, bytes, len + 1);
  r->len = len;
  r->type = type;
}

void coord_console_index(void *ctx, hd_http_reply_t *r) {
  (void)ctx;
  serve(r, "text/html; charset=utf-8", coord_console_index_html,
        coord_console_index_html_len);
}

void coord_console_js(void *ctx, hd_http_reply_t *r) {
  (void)ctx;
  serve(r, "text/javascript; charset=utf-8", coord_console_console_js,
        coord_console_console_js_len);
}

void coord_console_css(void *ctx, hd_http_reply_t *r) {
  (void)ctx;
  serve(r, "text/css; charset=utf-8", coord_console_console_css,
        coord_console_console_css_len);
}
