/*
 * snapread_dump.c - the snapshot reader (relay/relay_snapread.h) from the
 * command line, for test_snapread.py: a whole table chunk by chunk, every
 * row as the change format's line (hb_render_window, as heraldctl decode
 * prints), and each chunk's SCN and schema; or, from binlog files, the
 * schema the stream gives a table, to compare with.
 *
 *   snapread_dump --config relay.yaml --table db.t --chunk N [--pause-ms M]
 *   snapread_dump --config relay.yaml --list PATTERN...
 *   snapread_dump --binlog --table db.t FILE...
 *
 * Chunk lines: {"chunk":K,"scn":S,"file":F,"pos":P,"schema_version":V,
 * "rows":N,"table_done":B}, then at the first chunk and whenever the
 * version changes the schema line ("op":"schema"), then the rows. Exit 0,
 * 1 on an error (printed as "error: CODE MESSAGE" on stderr), 2 on bad
 * usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hb.h"
#include "hb_file.h"
#include "hb_json.h"
#include "hb_schema.h"
#include "hd_config.h"
#include "hd_confdefs.h"
#include "hd_mem.h"
#include "relay_snapread.h"

static void print_schema(const hb_table_t *t) {
  hb_coldesc_t *d = hd_calloc(t->ncols + 1, sizeof(*d));
  for (uint32_t i = 0; i < t->ncols; i++)
    hb_describe_column(t, i, &d[i]);
  hb_buf_t b = {0};
  hb_render_schema(t->db, t->name, t->schema_version, d, t->ncols, &b);
  fwrite(b.p, 1, b.len, stdout);
  hb_buf_free(&b);
  free(d);
}

/* --binlog: the schema line of db.t at every version the stream has. */
typedef struct {
  const char *db, *table;
  uint32_t last;
} bl_t;

static int bl_window(void *ud, const hb_window_t *w) {
  bl_t *b = ud;
  for (size_t i = 0; i < w->nrows; i++) {
    const hb_table_t *t = w->rows[i].table;
    if (strcmp(t->db, b->db) || strcmp(t->name, b->table) ||
        t->schema_version == b->last)
      continue;
    b->last = t->schema_version;
    print_schema(t);
  }
  return 0;
}

static int dump_binlog(const char *db, const char *table, char **files,
                       int nfiles) {
  bl_t b = {db, table, 0};
  hb_config_t cfg = {0};
  cfg.on_window = bl_window;
  cfg.ud = &b;
  hb_decoder_t *dec = hb_decoder_new(&cfg);
  int rc = 0;
  for (int i = 0; i < nfiles && rc == 0; i++) {
    rc = hb_read_file(dec, files[i], NULL);
    /* The newest file of a running server ends inside a transaction at
     * times; that is not an error here. */
    if (rc == HB_EINCOMPLETE)
      rc = 0;
    if (rc < 0)
      fprintf(stderr, "error: %d %s\n", rc, hb_decoder_errmsg(dec));
  }
  hb_decoder_free(dec);
  return rc < 0 ? 1 : 0;
}

static char *read_secret(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char buf[1024];
  size_t len = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[len] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  return hd_strdup(buf);
}

static int dump_table(relay_snapread_t *r, const char *name, uint32_t chunk,
                      long pause_ms) {
  char db[256], table[256], err[1024];
  const char *dot = strchr(name, '.');
  if (dot == NULL || (size_t)(dot - name) >= sizeof(db)) {
    fprintf(stderr, "error: --table wants db.table, not '%s'\n", name);
    return 2;
  }
  snprintf(db, sizeof(db), "%.*s", (int)(dot - name), name);
  snprintf(table, sizeof(table), "%s", dot + 1);
  uint8_t *after = NULL;
  size_t after_len = 0;
  uint32_t last_version = 0;
  hb_buf_t out = {0};
  for (unsigned k = 0;; k++) {
    relay_snapchunk_t *c;
    int rc = relay_snapread_chunk(r, db, table, after, after_len, chunk, &c,
                                  err, sizeof(err));
    if (rc < 0) {
      fprintf(stderr, "error: %d %s\n", rc, err);
      free(after);
      hb_buf_free(&out);
      return 1;
    }
    printf("{\"chunk\":%u,\"scn\":%" PRIu64 ",\"file\":\"%s\",\"pos\":%u,"
           "\"schema_version\":%u,\"rows\":%zu,\"table_done\":%s,"
           "\"scn_low\":%" PRIu64 ",\"scn_high\":%" PRIu64 "}\n",
           k, c->win.scn, c->win.file, c->win.end_pos, c->table->schema_version,
           c->win.nrows, c->table_done ? "true" : "false", c->scn_low,
           c->scn_high);
    if (c->table->schema_version != last_version) {
      last_version = c->table->schema_version;
      print_schema(c->table);
    }
    out.len = 0;
    hb_render_window(&c->win, &out);
    fwrite(out.p, 1, out.len, stdout);
    int done = c->table_done;
    if (c->last_key) {
      free(after);
      after = hd_malloc(c->last_key_len + 1);
      memcpy(after, c->last_key, c->last_key_len);
      after_len = c->last_key_len;
    }
    relay_snapchunk_free(c);
    if (done)
      break;
    if (pause_ms > 0) {
      /* The test kills the reader's idle connection meanwhile. */
      fflush(stdout);
      struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  free(after);
  hb_buf_free(&out);
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: snapread_dump --config relay.yaml --table db.t --chunk N\n"
          "       snapread_dump --config relay.yaml --list PATTERN...\n"
          "       snapread_dump --binlog --table db.t FILE...\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *config = NULL, *table = NULL;
  long chunk = 1000, pause_ms = 0;
  int binlog = 0, list = 0, i = 1;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (!strcmp(argv[i], "--table") && i + 1 < argc)
      table = argv[++i];
    else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
      chunk = strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--pause-ms") && i + 1 < argc)
      pause_ms = strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--binlog"))
      binlog = 1;
    else if (!strcmp(argv[i], "--list"))
      list = 1;
    else if (argv[i][0] == '-')
      return usage();
    else
      break;
  }
  if (binlog) {
    if (table == NULL || strchr(table, '.') == NULL)
      return usage();
    char db[256];
    snprintf(db, sizeof(db), "%.*s", (int)(strchr(table, '.') - table), table);
    return dump_binlog(db, strchr(table, '.') + 1, argv + i, argc - i);
  }
  if (config == NULL || (!list && (table == NULL || chunk <= 0)))
    return usage();
  hd_relay_conf_t conf;
  char err[1024];
  if (hd_config_load_file(config, &hd_relay_schema, &conf, err, sizeof(err)) <
      0) {
    fprintf(stderr, "error: %s\n", err);
    hd_config_free(&hd_relay_schema, &conf);
    return 2;
  }
  char *password =
      conf.source.password_file
          ? read_secret(conf.source.password_file)
          : (conf.source.password ? hd_strdup(conf.source.password) : NULL);
  relay_snapread_t *r;
  int rc = relay_snapread_open(&conf, password, &r, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "error: %d %s\n", rc, err);
    free(password);
    hd_config_free(&hd_relay_schema, &conf);
    return 1;
  }
  if (list) {
    relay_snaptable_t *t;
    size_t n;
    rc = relay_snapread_tables(r, (const char *const *)(argv + i),
                               (size_t)(argc - i), &t, &n, err, sizeof(err));
    if (rc < 0) {
      fprintf(stderr, "error: %d %s\n", rc, err);
      rc = 1;
    } else {
      for (size_t k = 0; k < n; k++)
        printf("{\"db\":\"%s\",\"table\":\"%s\",\"rows_estimate\":%" PRIu64
               ",\"has_pk\":%s}\n",
               t[k].db, t[k].table, t[k].rows_estimate,
               t[k].has_pk ? "true" : "false");
      relay_snaptables_free(t, n);
    }
  } else {
    rc = dump_table(r, table, (uint32_t)chunk, pause_ms);
  }
  relay_snapread_close(r);
  free(password);
  hd_config_free(&hd_relay_schema, &conf);
  return rc;
}
