/*
 * hd_parse.h - parsing of the value syntaxes herald's configs and CLIs share.
 *
 * All functions are pure: they take a NUL-terminated string, return 0 and
 * store the result, or return a negative hd_err_t (HD_EPARSE for bad syntax,
 * HD_ERANGE for overflow) and leave the output untouched.
 */
#ifndef HD_PARSE_H
#define HD_PARSE_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Parse a byte size: an integer with an optional unit.
 *        "512", "64KiB", "256MiB", "1GiB", "2TiB" (powers of 1024);
 *        "64K", "256M", "1G", "2T" mean the same; "64kB", "256MB", "1GB",
 *        "2TB" are powers of 1000. "B" is bytes. Units are case-insensitive
 *        except that "b" alone means bytes too. No sign, no fraction.
 */
int hd_parse_size(const char *s, uint64_t *out);

/**
 * @brief Parse a duration into milliseconds: one or more integer+unit
 *        pairs, units ms, s, m, h, d ("500ms", "30s", "72h", "1h30m",
 *        "7d"). A bare "0" is allowed; any other number needs a unit.
 */
int hd_parse_duration_ms(const char *s, uint64_t *out);

/** @brief Parse an unsigned decimal integer (no sign, no spaces). */
int hd_parse_u64(const char *s, uint64_t *out);

/** @brief Parse a signed decimal integer. */
int hd_parse_i64(const char *s, int64_t *out);

/**
 * @brief Split "host:port" or "[v6addr]:port". host is copied into
 *        host[hostlen] without brackets; the port must be 1-65535.
 */
int hd_parse_hostport(const char *s, char *host, size_t hostlen,
                      uint16_t *port);

/**
 * @brief The inverse of hd_parse_hostport(): "host:port", with an IPv6
 *        address (a host holding ':') in brackets, into buf[n].
 * @returns 0, or HD_ERANGE when it does not fit (buf then holds "").
 */
int hd_fmt_hostport(const char *host, uint16_t port, char *buf, size_t n);

/**
 * @brief Whether host (as hd_parse_hostport() leaves it) is a wildcard
 *        address: empty, 0.0.0.0 or the IPv6 unspecified address (::).
 *        A server binds to those; no client can dial one.
 * @returns 1 or 0.
 */
int hd_host_is_wildcard(const char *host);

/**
 * @brief Glob match of db.table patterns: '*' matches any run of characters
 *        (also none); everything else matches itself, case-sensitively.
 * @returns 1 on match, 0 otherwise.
 */
int hd_glob_match(const char *pattern, const char *s);

#endif
