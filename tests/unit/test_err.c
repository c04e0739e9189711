/*
 * test_err.c - herald's error space (hd_err.h): the table, the module
 * blocks, hd_strerror() over herald's, libuv's and errno's codes, and the
 * mapping to and from the wire's ErrorCode (hd_frame.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "hd_check.h"
#include "hd_err.h"
#include "hd_frame.h"

typedef struct {
  int code;
  const char *name;
  const char *msg;
  int base; /* of the module the row names */
} code_t;

static const code_t codes[] = {
#define XX(m, name, v, s) {name, #name, s, HD_ERR_BASE_##m},
    HD_ERR_MAP(XX)
#undef XX
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

typedef struct {
  const char *name;
  int base;
} module_t;

static const module_t modules[] = {
#define XX(m, base) {#m, base},
    HD_ERR_MODULES(XX)
#undef XX
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

typedef struct {
  int code;
  const char *name;
} uv_code_t;

static const uv_code_t uv_codes[] = {
#define XX(c, s) {UV_##c, #c},
    UV_ERRNO_MAP(XX)
#undef XX
};
#define NUV (sizeof(uv_codes) / sizeof(uv_codes[0]))

static const char *uv_name(int code) {
  for (size_t u = 0; u < NUV; u++)
    if (uv_codes[u].code == code)
      return uv_codes[u].name;
  return NULL;
}

/* Linux's errno values are 1..4095 (MAX_ERRNO); the kernel defines about
 * 133 of them. */
#define ERRNO_MAX 4095

START_TEST(messages_distinct) {
  for (size_t i = 0; i < NCODES; i++) {
    const code_t *c = &codes[i];
    ck_assert_msg(c->msg[0] != '\0', "%s has an empty message", c->name);
    ck_assert_str_eq(hd_strerror(c->code), c->msg);
    ck_assert_str_eq(hd_err_name(c->code), c->name);
    for (size_t k = 0; k < i; k++) {
      ck_assert_msg(codes[k].code != c->code, "%s and %s are both %d",
                    codes[k].name, c->name, c->code);
      ck_assert_msg(strcmp(codes[k].msg, c->msg) != 0,
                    "%s and %s share the message \"%s\"", codes[k].name,
                    c->name, c->msg);
    }
  }
}
END_TEST

START_TEST(clear_of_errno_and_uv) {
  int uv_lo = 0, uv_hi = INT_MIN;
  for (size_t u = 0; u < NUV; u++) {
    if (uv_codes[u].code < uv_lo)
      uv_lo = uv_codes[u].code;
    if (uv_codes[u].code > uv_hi)
      uv_hi = uv_codes[u].code;
  }
  /* libuv's codes are negative errnos and its own below; so are herald's
   * blocks, below both. */
  ck_assert_int_ge(uv_lo, -ERRNO_MAX);
  ck_assert_int_lt(uv_hi, 0);
  for (size_t i = 0; i < NCODES; i++) {
    const code_t *c = &codes[i];
    ck_assert_msg(c->code < -ERRNO_MAX, "%s (%d) is in errno's range", c->name,
                  c->code);
    ck_assert_msg(c->code < uv_lo || c->code > uv_hi,
                  "%s (%d) is in libuv's range %d..%d", c->name, c->code, uv_lo,
                  uv_hi);
    for (size_t u = 0; u < NUV; u++)
      ck_assert_msg(c->code != uv_codes[u].code, "%s is UV_%s", c->name,
                    uv_codes[u].name);
  }
  for (size_t m = 0; m < NMODULES; m++) {
    int top = modules[m].base, bottom = modules[m].base - HD_ERR_BLOCK + 1;
    ck_assert_msg(top < -ERRNO_MAX && top < uv_lo,
                  "module %s (%d..%d) reaches errno's or libuv's codes",
                  modules[m].name, top, bottom);
  }
}
END_TEST

START_TEST(modules_disjoint) {
  for (size_t m = 0; m < NMODULES; m++) {
    const module_t *a = &modules[m];
    ck_assert_int_eq(a->base % HD_ERR_BLOCK, 0);
    for (size_t k = 0; k < m; k++) {
      const module_t *b = &modules[k];
      /* blocks (base - HD_ERR_BLOCK, base] of equal size overlap iff
       * their bases are closer than one block */
      int d = a->base > b->base ? a->base - b->base : b->base - a->base;
      ck_assert_msg(d >= HD_ERR_BLOCK, "modules %s and %s overlap", b->name,
                    a->name);
    }
  }
  /* every code inside the block of the module its row names, and of no
   * other */
  for (size_t i = 0; i < NCODES; i++) {
    const code_t *c = &codes[i];
    size_t owners = 0;
    for (size_t m = 0; m < NMODULES; m++) {
      int in =
          c->code < modules[m].base && c->code > modules[m].base - HD_ERR_BLOCK;
      owners += (size_t)in;
      if (modules[m].base == c->base)
        ck_assert_msg(in, "%s (%d) is outside module %s", c->name, c->code,
                      modules[m].name);
    }
    ck_assert_uint_eq(owners, 1);
  }
  ck_assert(HD_ERR_IN(HB_ECORRUPT, BINLOG));
  ck_assert(!HD_ERR_IN(HB_ECORRUPT, STORE));
  ck_assert(HD_ERR_IN(RELAY_STORE_ECORRUPT, STORE));
  ck_assert(!HD_ERR_IN(HD_ERR_BASE_BINLOG, BINLOG));
  ck_assert(!HD_ERR_IN(-2, BINLOG));
}
END_TEST

START_TEST(foreign_codes) {
  /* negative errno: the C library's message, for the codes it knows */
  for (int e = 1; e <= ERRNO_MAX; e++) {
    if (-e <= UV_EAI_ADDRFAMILY && uv_name(-e) != NULL)
      continue; /* libuv's own, below */
    char want[128];
    snprintf(want, sizeof(want), "%s", strerror(e));
    if (strncmp(want, "Unknown error", 13) == 0)
      ck_assert_str_eq(hd_strerror(-e), "unknown error");
    else
      ck_assert_str_eq(hd_strerror(-e), want);
  }
  /* static strings: two in one printf are both intact */
  const char *a = hd_strerror(-41), *b = hd_strerror(-4000);
  ck_assert_str_eq(a, b);
  ck_assert_str_eq(hd_strerror(-ENOENT), "No such file or directory");
  /* libuv's codes: errno's message where they are errnos, libuv's where
   * they are its own (UV_EOF, UV_EAI_*) */
  for (size_t u = 0; u < NUV; u++) {
    int c = uv_codes[u].code;
    char want[128];
    snprintf(want, sizeof(want), "%s",
             c > UV_EAI_ADDRFAMILY ? strerror(-c) : uv_strerror(c));
    ck_assert_str_eq(hd_strerror(c), want);
    ck_assert_str_eq(hd_err_name(c), uv_codes[u].name);
  }
  ck_assert_str_eq(hd_strerror(UV_EAI_AGAIN), uv_strerror(UV_EAI_AGAIN));
  ck_assert_str_eq(hd_strerror(UV_EOF), "end of file");
  ck_assert_str_eq(hd_err_name(UV_EAI_NONAME), "EAI_NONAME");
  ck_assert_str_eq(hd_err_name(-ENOENT), "ENOENT");
  /* everything else: a message, never NULL */
  ck_assert_str_eq(hd_strerror(0), "success");
  ck_assert_str_eq(hd_err_name(0), "OK");
  int odd[] = {1,
               12345,
               INT_MAX,
               INT_MIN,
               -3012,
               -5000,
               HD_ERR_BASE_COMMON,
               HD_ERR_BASE_STORE - 999,
               -19999,
               -20000};
  for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
    ck_assert_ptr_nonnull(hd_strerror(odd[i]));
    ck_assert_ptr_nonnull(hd_err_name(odd[i]));
  }
  ck_assert_str_eq(hd_strerror(-3012), "unknown error"); /* UV_EAI_* gap */
  ck_assert_str_eq(hd_strerror(-19999), "unknown error");
  ck_assert_str_eq(hd_err_name(-19999), "UNKNOWN");
}
END_TEST

START_TEST(wire_roundtrip) {
  /* every wire code to a PROTO code and back */
  for (size_t i = 0; i < herald__error_code__descriptor.n_values; i++) {
    Herald__ErrorCode w =
        (Herald__ErrorCode)herald__error_code__descriptor.values[i].value;
    int e = hd_err_from_wire(w);
    ck_assert_msg(HD_ERR_IN(e, PROTO), "%s gives %d",
                  herald__error_code__descriptor.values[i].name, e);
    ck_assert_int_eq(hd_err_to_wire(e), w);
  }
  /* every PROTO code to the wire and back */
  size_t nproto = 0;
  for (size_t i = 0; i < NCODES; i++) {
    if (!HD_ERR_IN(codes[i].code, PROTO))
      continue;
    nproto++;
    ck_assert_msg(hd_err_from_wire(hd_err_to_wire(codes[i].code)) ==
                      codes[i].code,
                  "%s does not come back", codes[i].name);
  }
  ck_assert_uint_eq(nproto, herald__error_code__descriptor.n_values);
  /* what a client acts on */
  ck_assert_int_eq(hd_err_from_wire(HERALD__ERROR_CODE__ERR_SCN_TOO_OLD),
                   HD_ESCN_TOO_OLD);
  ck_assert_int_eq(hd_err_from_wire(HERALD__ERROR_CODE__ERR_AUTH), HD_EAUTH);
  ck_assert_int_eq(hd_err_from_wire(HERALD__ERROR_CODE__ERR_TOO_MANY),
                   HD_ETOO_MANY);
  ck_assert_int_eq(hd_err_from_wire(HERALD__ERROR_CODE__ERR_UNAVAILABLE),
                   HD_EUNAVAILABLE);
  /* a newer relay's code this build does not know */
  ck_assert_int_eq(hd_err_from_wire((Herald__ErrorCode)77), HD_EREMOTE);
  /* the relay's internal reasons, as a consumer sees them */
  ck_assert_int_eq(hd_err_to_wire(RELAY_STORE_ETOO_OLD),
                   HERALD__ERROR_CODE__ERR_SCN_TOO_OLD);
  ck_assert_int_eq(hd_err_to_wire(RELAY_STORE_ECORRUPT),
                   HERALD__ERROR_CODE__ERR_UNAVAILABLE);
  ck_assert_int_eq(hd_err_to_wire(HD_EFRAME_TOO_BIG),
                   HERALD__ERROR_CODE__ERR_BAD_REQUEST);
  ck_assert_int_eq(hd_err_to_wire(-ENOENT), HERALD__ERROR_CODE__ERR_UNKNOWN);
  ck_assert_int_eq(hd_err_to_wire(HB_ECORRUPT),
                   HERALD__ERROR_CODE__ERR_UNKNOWN);
  ck_assert_int_eq(hd_err_to_wire(0), HERALD__ERROR_CODE__ERR_UNKNOWN);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("err");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, messages_distinct);
  tcase_add_test(tc, clear_of_errno_and_uv);
  tcase_add_test(tc, modules_disjoint);
  tcase_add_test(tc, foreign_codes);
  tcase_add_test(tc, wire_roundtrip);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
