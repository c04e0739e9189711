/*
 * hd_mem.h - allocation that aborts on failure.
 *
 * Small allocations cannot fail usefully in herald: when malloc() returns
 * NULL for a few bytes the process is lost anyway, and checking every call
 * site buries the real error handling. Sizes a peer controls are checked
 * against their limits before these are called.
 */
#ifndef HD_MEM_H
#define HD_MEM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void hd__oom(size_t n) {
  fprintf(stderr, "herald: out of memory allocating %zu bytes\n", n);
  abort();
}

/** @returns memory the caller frees with free(). Never NULL. */
static inline void *hd_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    hd__oom(n);
  return p;
}

static inline void *hd_calloc(size_t nmemb, size_t size) {
  void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
  if (p == NULL)
    hd__oom(nmemb * size);
  return p;
}

static inline void *hd_realloc(void *ptr, size_t n) {
  void *p = realloc(ptr, n ? n : 1);
  if (p == NULL)
    hd__oom(n);
  return p;
}

static inline char *hd_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = hd_malloc(n);
  memcpy(p, s, n);
  return p;
}

static inline char *hd_strndup(const char *s, size_t n) {
  char *p = hd_malloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

#endif
