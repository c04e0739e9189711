/*
 * hd_tmpdir.h - a scratch directory per test, removed afterwards.
 *
 * Check forks each test, so a test's setup makes a fresh directory under
 * $TMPDIR (else /tmp) and its teardown removes the whole tree.
 */
#ifndef HD_TMPDIR_H
#define HD_TMPDIR_H

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** @brief Make "$TMPDIR/herald-<name>-XXXXXX" into out (n bytes). */
static inline void hd_tmpdir_make(char *out, size_t n, const char *name) {
  const char *t = getenv("TMPDIR");
  snprintf(out, n, "%s/herald-%s-XXXXXX", t && *t ? t : "/tmp", name);
  ck_assert_ptr_nonnull(mkdtemp(out));
}

/** @brief Remove path and everything below it (links are not followed). */
static inline void hd_tmpdir_remove(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      size_t len = strlen(path) + strlen(e->d_name) + 2;
      char *sub = malloc(len);
      snprintf(sub, len, "%s/%s", path, e->d_name);
      hd_tmpdir_remove(sub);
      free(sub);
    }
    if (d)
      closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

#endif
