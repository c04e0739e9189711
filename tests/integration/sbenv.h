/*
 * sbenv.h - read the sandbox's env file (scripts/sandbox start writes it;
 * ctest passes its path in HERALD_SANDBOX_ENV) for C integration tests.
 */
#ifndef SBENV_H
#define SBENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns a static copy of KEY's value; exits the test (fails) if absent.
 * A value in single quotes (HERALD_PG_DSN, which holds spaces, is quoted
 * so that shell scripts can source the file) comes without them. */
static inline const char *sbenv(const char *key) {
  static char vals[16][512];
  static int next;
  const char *path = getenv("HERALD_SANDBOX_ENV");
  if (path == NULL) {
    fprintf(stderr, "HERALD_SANDBOX_ENV is not set: run through ctest\n");
    exit(1);
  }
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  char line[1024];
  size_t kl = strlen(key);
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
      char *v = vals[next++ % 16];
      const char *src = line + kl + 1;
      size_t n = strcspn(src, "\n");
      if (n >= 2 && src[0] == '\'' && src[n - 1] == '\'') {
        src++;
        n -= 2;
      }
      if (n >= sizeof(vals[0]))
        n = sizeof(vals[0]) - 1;
      memcpy(v, src, n);
      v[n] = '\0';
      fclose(f);
      return v;
    }
  }
  fclose(f);
  fprintf(stderr, "%s: no %s\n", path, key);
  exit(1);
}

#endif
