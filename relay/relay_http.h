/*
 * relay_http.h - /metrics (Prometheus text format) and /status (JSON) on
 * relay.http, served by GNU libmicrohttpd on a thread of its own. It only
 * reads the atomic metrics, so it never touches the loop's state.
 */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

#include <stddef.h>

#include "hd_confdefs.h"
#include "relay_metrics.h"

typedef struct relay_http relay_http_t;

/** @returns 0, or -1 with errstr filled (address in use, ...). */
int relay_http_start(const hd_relay_conf_t *conf, relay_metrics_t *m,
                     relay_http_t **out, char *errstr, size_t errlen);

/** @brief Stop serving and free (NULL is fine). */
void relay_http_stop(relay_http_t *h);

#endif
