/*
 * coord_console.h - the coordinator's live console: one static page
 * (coordinator/console/: index.html, console.js, console.css) embedded in
 * the program at build time and served at /, /console.js and
 * /console.css of coordinator.http. The page itself polls /status and
 * /history (coord_http.c); these handlers only hand out its bytes.
 */
#ifndef COORD_CONSOLE_H
#define COORD_CONSOLE_H

#include "hd_http.h"

/**
 * @brief The page (text/html). ctx is unused: the assets are constant.
 * @locality libmicrohttpd's thread; reads only constant data.
 */
void coord_console_index(void *ctx, hd_http_reply_t *r);

/** @brief The page's script (text/javascript); as coord_console_index. */
void coord_console_js(void *ctx, hd_http_reply_t *r);

/** @brief The page's style sheet (text/css); as coord_console_index. */
void coord_console_css(void *ctx, hd_http_reply_t *r);

#endif
