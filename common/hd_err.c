#include "hd_err.h"

#include <string.h>

const char *hd_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define XX(c, s)                                                               \
  case HD_E##c:                                                                \
    return s;
    HD_ERR_MAP(XX)
#undef XX
  default:
    break;
  }
  /* Negative errno (also libuv's codes on Unix). strerror() is not
   * thread-safe in theory, but glibc returns static strings for known
   * codes, which is all we pass it. */
  if (err < 0 && err > -4096)
    return strerror(-err);
  return "unknown error";
}

const char *hd_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define XX(c, s)                                                               \
  case HD_E##c:                                                                \
    return "HD_E" #c;
    HD_ERR_MAP(XX)
#undef XX
  default:
    return "ERRNO";
  }
}
