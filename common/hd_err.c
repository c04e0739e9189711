/* strerrordesc_np(): glibc's messages as static strings, MT-safe. */
#define _GNU_SOURCE

#include "hd_err.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#if defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 32)
#define HD__STRERRORDESC 1
#endif
#endif
#ifndef HD__STRERRORDESC
#define HD__STRERRORDESC 0
#endif

/* A code outside its module's block would sit in another module's range
 * (or outside herald's), where a test of HD_ERR_IN() would misread it. */
#define XX(m, name, v, s)                                                      \
  _Static_assert(HD_ERR_IN(v, m), #name " lies outside the " #m " block");
HD_ERR_MAP(XX)
#undef XX

/* Whether err is one of libuv's codes. Asked before uv_strerror() and
 * uv_err_name(), which allocate (and leak) a string for values they do not
 * know. */
static int hd__uv_known(int err) {
  switch (err) {
#define XX(c, s) case UV_##c:
    UV_ERRNO_MAP(XX)
#undef XX
    return 1;
  default:
    return 0;
  }
}

/* libuv's codes that are not errno values - UV_EOF, getaddrinfo's UV_EAI_*
 * and the stand-ins for errnos a platform lacks - all lie at
 * UV_EAI_ADDRFAMILY (-3000) or below, far past the errnos Linux defines
 * (the largest is 133). Above it, a libuv code is a negative errno, and
 * the C library's message is the one the rest of herald prints. */
static int hd__uv_own(int err) {
  return err <= UV_EAI_ADDRFAMILY && hd__uv_known(err);
}

const char *hd_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define XX(m, name, v, s)                                                      \
  case name:                                                                   \
    return s;
    HD_ERR_MAP(XX)
#undef XX
  default:
    break;
  }
  if (hd__uv_own(err))
    return uv_strerror(err);
  if (err < 0 && err > -4096) {
    /* strerror() formats "Unknown error N" for a code it does not know
     * into a buffer that its next call frees, so two such messages in one
     * printf would be one freed. strerrordesc_np() has the same messages,
     * static, and NULL for those codes. */
#if HD__STRERRORDESC
    const char *s = strerrordesc_np(-err);
    if (s != NULL)
      return s;
#else
    return strerror(-err);
#endif
  }
  return "unknown error";
}

const char *hd_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define XX(m, name, v, s)                                                      \
  case name:                                                                   \
    return #name;
    HD_ERR_MAP(XX)
#undef XX
  default:
    break;
  }
  if (hd__uv_known(err))
    return uv_err_name(err);
  if (err < 0 && err > -4096)
    return "ERRNO";
  return "UNKNOWN";
}

int hd_verrorf(char *err, size_t errlen, int rc, const char *fmt, va_list ap) {
  if (errlen == 0)
    return rc;
  vsnprintf(err, errlen, fmt, ap);
  for (char *p = err; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  return rc;
}

int hd_errorf(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hd_verrorf(err, errlen, rc, fmt, ap);
  va_end(ap);
  return rc;
}
