#include "hd_parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hd_err.h"

/* Reads digits at *p into *v; fails on no digits or on overflow. */
static int read_u64(const char **p, uint64_t *v) {
  const char *s = *p;
  uint64_t acc = 0;
  if (!isdigit((unsigned char)*s))
    return HD_EPARSE;
  for (; isdigit((unsigned char)*s); s++) {
    unsigned d = (unsigned)(*s - '0');
    if (acc > (UINT64_MAX - d) / 10)
      return HD_ERANGE;
    acc = acc * 10 + d;
  }
  *p = s;
  *v = acc;
  return 0;
}

int hd_parse_u64(const char *s, uint64_t *out) {
  uint64_t v;
  int rc = read_u64(&s, &v);
  if (rc < 0)
    return rc;
  if (*s != '\0')
    return HD_EPARSE;
  *out = v;
  return 0;
}

int hd_parse_i64(const char *s, int64_t *out) {
  int neg = 0;
  uint64_t v;
  if (*s == '-' || *s == '+')
    neg = *s++ == '-';
  int rc = hd_parse_u64(s, &v);
  if (rc < 0)
    return rc;
  if (neg) {
    if (v > (uint64_t)INT64_MAX + 1)
      return HD_ERANGE;
    *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  } else {
    if (v > (uint64_t)INT64_MAX)
      return HD_ERANGE;
    *out = (int64_t)v;
  }
  return 0;
}

int hd_parse_size(const char *s, uint64_t *out) {
  static const struct {
    const char *name;
    uint64_t mult;
  } units[] = {
      {"", 1},
      {"b", 1},
      {"k", 1ull << 10},
      {"kib", 1ull << 10},
      {"kb", 1000ull},
      {"m", 1ull << 20},
      {"mib", 1ull << 20},
      {"mb", 1000000ull},
      {"g", 1ull << 30},
      {"gib", 1ull << 30},
      {"gb", 1000000000ull},
      {"t", 1ull << 40},
      {"tib", 1ull << 40},
      {"tb", 1000000000000ull},
  };
  uint64_t v;
  int rc = read_u64(&s, &v);
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcasecmp(s, units[i].name) != 0)
      continue;
    if (v > UINT64_MAX / units[i].mult)
      return HD_ERANGE;
    *out = v * units[i].mult;
    return 0;
  }
  return HD_EPARSE;
}

int hd_parse_duration_ms(const char *s, uint64_t *out) {
  uint64_t total = 0;
  if (strcmp(s, "0") == 0) {
    *out = 0;
    return 0;
  }
  if (*s == '\0')
    return HD_EPARSE;
  while (*s) {
    uint64_t v, mult;
    int rc = read_u64(&s, &v);
    if (rc < 0)
      return rc;
    if (strncmp(s, "ms", 2) == 0) {
      mult = 1;
      s += 2;
    } else if (*s == 's') {
      mult = 1000;
      s++;
    } else if (*s == 'm') {
      mult = 60 * 1000;
      s++;
    } else if (*s == 'h') {
      mult = 3600 * 1000;
      s++;
    } else if (*s == 'd') {
      mult = 86400ull * 1000;
      s++;
    } else {
      return HD_EPARSE;
    }
    if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult)
      return HD_ERANGE;
    total += v * mult;
  }
  *out = total;
  return 0;
}

int hd_parse_hostport(const char *s, char *host, size_t hostlen,
                      uint16_t *port) {
  const char *hb, *he, *colon;
  if (*s == '[') {
    hb = s + 1;
    he = strchr(hb, ']');
    if (he == NULL || he[1] != ':')
      return HD_EPARSE;
    colon = he + 1;
  } else {
    hb = s;
    colon = strrchr(s, ':');
    if (colon == NULL)
      return HD_EPARSE;
    he = colon;
    /* A bare IPv6 address without brackets is ambiguous: refuse it. */
    if (memchr(hb, ':', (size_t)(he - hb)) != NULL)
      return HD_EPARSE;
  }
  size_t hl = (size_t)(he - hb);
  if (hl == 0 || hl >= hostlen)
    return HD_EPARSE;
  uint64_t p;
  int rc = hd_parse_u64(colon + 1, &p);
  if (rc < 0)
    return rc;
  if (p == 0 || p > 65535)
    return HD_ERANGE;
  memcpy(host, hb, hl);
  host[hl] = '\0';
  *port = (uint16_t)p;
  return 0;
}

int hd_fmt_hostport(const char *host, uint16_t port, char *buf, size_t n) {
  int v6 = strchr(host, ':') != NULL;
  int len = snprintf(buf, n, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
  if (len < 0 || (size_t)len >= n) {
    if (n)
      buf[0] = '\0';
    return HD_ERANGE;
  }
  return 0;
}

int hd_host_is_wildcard(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  if (host[0] == '\0')
    return 1;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return a4.s_addr == htonl(INADDR_ANY);
  if (inet_pton(AF_INET6, host, &a6) == 1)
    return IN6_IS_ADDR_UNSPECIFIED(&a6);
  return 0;
}

int hd_glob_match(const char *pat, const char *s) {
  /* Iterative matcher with one backtrack point: linear in practice and
   * never recursive, so hostile patterns cannot blow the stack. */
  const char *star = NULL, *ss = NULL;
  while (*s) {
    if (*pat == '*') {
      star = pat++;
      ss = s;
    } else if (*pat == *s) {
      pat++;
      s++;
    } else if (star) {
      pat = star + 1;
      s = ++ss;
    } else {
      return 0;
    }
  }
  while (*pat == '*')
    pat++;
  return *pat == '\0';
}
