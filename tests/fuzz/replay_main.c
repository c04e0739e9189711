/*
 * replay_main.c - main() for fuzz targets in builds without libFuzzer.
 *
 * Feeds every file named on the command line (directories are walked one
 * level deep) to LLVMFuzzerTestOneInput once, so that every CI run replays
 * the corpus and the crashers found earlier (zstd's regression driver does
 * the same). Exit 0 when all inputs ran, 1 if one could not be read or the
 * corpus is empty: an empty corpus would make this a test that cannot fail.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  size_t cap = 1 << 16, n = 0, r;
  uint8_t *buf = malloc(cap);
  if (buf == NULL)
    abort();
  while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      if (buf == NULL)
        abort();
    }
  }
  fclose(f);
  /* libFuzzer hands over an exact-size heap copy; do the same so that ASan
   * sees reads past the end. */
  uint8_t *exact = malloc(n ? n : 1);
  if (exact == NULL)
    abort();
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

int main(int argc, char **argv) {
  int ran = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (run_file(argv[i]) < 0)
        return 1;
      ran++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (d == NULL) {
      perror(argv[i]);
      return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
      if (run_file(path) < 0) {
        closedir(d);
        return 1;
      }
      ran++;
    }
    closedir(d);
  }
  printf("replayed %d inputs\n", ran);
  return ran > 0 ? 0 : 1;
}
