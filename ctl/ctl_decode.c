/*
 * heraldctl decode - binlog files to the JSON change format.
 *
 * One decoder reads the files in the order given (a transaction never spans
 * two files, so each file must end on a transaction boundary). Lines go to
 * stdout through a large buffer written in big chunks; the summary and any
 * error ("FILE:OFFSET: what is wrong") go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "hb.h"
#include "hb_file.h"
#include "hb_json.h"
#include "hd_cli.h"
#include "hd_mem.h"
#include "hd_parse.h"

#define PROG "heraldctl decode"
#define FLUSH_AT ((size_t)1 << 20)

typedef struct {
  hb_buf_t out;
  char **pat; /* --tables patterns, split at commas (owned) */
  size_t npat;
  int ddl;       /* --ddl */
  int out_error; /* writing stdout failed */
  unsigned incidents;
  hb_buf_t name; /* scratch for "db.table" */
} dec_ctx_t;

/* Write what is buffered. Lines are only appended whole, so whatever is
 * written on an error is complete transactions. */
static int flush_out(dec_ctx_t *c) {
  if (c->out.len == 0)
    return 0;
  if (fwrite(c->out.p, 1, c->out.len, stdout) != c->out.len) {
    c->out_error = errno ? errno : EIO;
    return -1;
  }
  hb_buf_reset(&c->out);
  return 0;
}

/* Render each transaction into the buffer and write in chunks of about
 * 1 MiB: one fwrite per chunk instead of one per line. */
static int on_window(void *ud, const hb_window_t *w) {
  dec_ctx_t *c = ud;
  hb_render_window(w, &c->out);
  if (c->out.len >= FLUSH_AT && flush_out(c) < 0)
    return -EIO;
  return 0;
}

/* With --tables, a schema change is shown when its default database
 * matches the database part of a pattern. */
static int ddl_wanted(dec_ctx_t *c, const char *db) {
  if (c->npat == 0)
    return 1;
  for (size_t i = 0; i < c->npat; i++) {
    const char *dot = strchr(c->pat[i], '.');
    size_t n = dot ? (size_t)(dot - c->pat[i]) : strlen(c->pat[i]);
    char *dbpat = hd_strndup(c->pat[i], n);
    int m = hd_glob_match(dbpat, db);
    free(dbpat);
    if (m)
      return 1;
  }
  return 0;
}

static int on_ddl(void *ud, const hb_ddl_t *d) {
  dec_ctx_t *c = ud;
  if (!c->ddl || !ddl_wanted(c, d->db))
    return 0;
  hb_render_ddl(d, &c->out);
  if (c->out.len >= FLUSH_AT && flush_out(c) < 0)
    return -EIO;
  return 0;
}

/* An incident is shown and remembered for the exit status; decoding goes
 * on, since a person reading a binlog wants to see all of it. */
static int on_incident(void *ud, const hb_incident_t *inc) {
  dec_ctx_t *c = ud;
  c->incidents++;
  fprintf(stderr, "%s:%llu: INCIDENT %u: %s (changes may be missing)\n",
          inc->file, (unsigned long long)inc->pos, inc->code,
          inc->message[0] ? inc->message : "no message");
  return 0;
}

/* A pattern without a dot stands for all tables of the databases it
 * matches. */
static int table_filter(void *ud, const char *db, const char *table) {
  dec_ctx_t *c = ud;
  hb_buf_reset(&c->name);
  hb_buf_put(&c->name, db, strlen(db));
  hb_buf_putc(&c->name, '.');
  hb_buf_put(&c->name, table, strlen(table));
  hb_buf_putc(&c->name, '\0');
  for (size_t i = 0; i < c->npat; i++) {
    if (strchr(c->pat[i], '.') ? hd_glob_match(c->pat[i], c->name.p)
                               : hd_glob_match(c->pat[i], db))
      return 1;
  }
  return 0;
}

static int add_patterns(dec_ctx_t *c, const char *arg) {
  const char *s = arg;
  for (;;) {
    const char *e = strchr(s, ',');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0)
      return -1;
    c->pat = hd_realloc(c->pat, (c->npat + 1) * sizeof(*c->pat));
    c->pat[c->npat++] = hd_strndup(s, n);
    if (e == NULL)
      return 0;
    s = e + 1;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char usage_text[] =
    "Usage: heraldctl decode [--from-pos N] [--tables PATTERNS] [--ddl] "
    "FILE...\n"
    "\n"
    "Prints the row changes in MySQL/MariaDB binlog files as JSON lines\n"
    "(docs/change-format.md), oldest first. Files are read in the order\n"
    "given; gzip-compressed files are read as they are.\n"
    "\n"
    "Options:\n"
    "  --from-pos N       start at offset N of the first file (its format\n"
    "                     description is still read); the rest of a\n"
    "                     transaction cut by N is skipped\n"
    "  --tables PATTERNS  only these tables: a comma list of db.table\n"
    "                     patterns where * matches any characters\n"
    "                     ('shop.*,crm.users'); a pattern without a dot\n"
    "                     matches whole databases\n"
    "  --ddl              also print one line per schema change (with\n"
    "                     --tables, those of the matching databases)\n"
    "  -h, --help         this help\n"
    "\n"
    "A summary goes to stderr. Exit status: 0 ok (also when the last file\n"
    "ends inside a transaction, as the newest binlog of a running server\n"
    "does: that transaction is left out and a warning printed); 1 when a\n"
    "file is corrupt or truncated inside an event, an earlier file ends\n"
    "inside a transaction, or a file holds an INCIDENT event (complete\n"
    "transactions before the problem are printed, then 'FILE:OFFSET: what\n"
    "is wrong'); 2 bad usage.\n";

/* Options, then one decoder for all files in order (the state needed
 * across files - the table cache, the checksum setting until the next
 * format description - is the decoder's). */
int ctl_decode(int argc, char **argv) {
  static const struct option opts[] = {
      {"from-pos", required_argument, NULL, 'p'},
      {"tables", required_argument, NULL, 't'},
      {"ddl", no_argument, NULL, 'd'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  dec_ctx_t c = {0};
  uint64_t from = 0;
  int ch, rc = HD_EXIT_OK;
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'p':
      if (hd_parse_u64(optarg, &from) < 0) {
        rc = hd_cli_usage(PROG, "--from-pos: '%s' is not an offset", optarg);
        goto out;
      }
      break;
    case 't':
      if (add_patterns(&c, optarg) < 0) {
        rc = hd_cli_usage(PROG, "--tables: empty pattern in '%s'", optarg);
        goto out;
      }
      break;
    case 'd':
      c.ddl = 1;
      break;
    case 'h':
      fputs(usage_text, stdout);
      goto out;
    default:
      rc = hd_cli_bad_option(PROG, ch, argv);
      goto out;
    }
  }
  if (optind >= argc) {
    rc = hd_cli_usage(PROG, "needs at least one FILE");
    goto out;
  }

  hb_config_t cfg = {
      .on_window = on_window,
      .on_ddl = on_ddl,
      .on_incident = on_incident,
      .table_filter = c.npat ? table_filter : NULL,
      .ud = &c,
  };
  hb_decoder_t *dec = hb_decoder_new(&cfg);
  double t0 = now_s();
  int nfiles = 0, err = 0, open_txn = 0;
  for (int i = optind; i < argc && err == 0; i++) {
    hb_read_opts_t ro = {.from_pos = i == optind ? from : 0};
    err = hb_read_file(dec, argv[i], &ro);
    nfiles++;
    /* The newest binlog of a running server normally ends inside a
     * transaction still being written: only a warning for the last file.
     * Earlier files cannot continue it, so there it is an error. */
    if (err == HB_EINCOMPLETE && i + 1 == argc) {
      open_txn = 1;
      err = 0;
    }
  }
  /* Complete transactions are printed even when a later one fails. */
  int ferr = flush_out(&c);
  fflush(stdout);
  double secs = now_s() - t0;
  if (open_txn)
    fprintf(stderr, "%s (warning: the file may still be being written)\n",
            hb_decoder_errmsg(dec));
  if (err < 0 && !c.out_error)
    fprintf(stderr, "%s\n", hb_decoder_errmsg(dec));
  if (c.out_error)
    fprintf(stderr, "%s: writing the output failed: %s\n", PROG,
            strerror(c.out_error));
  hb_stats_t st;
  hb_decoder_stats(dec, &st);
  fprintf(stderr,
          "%s: %d file%s, %llu events, %llu transactions, %llu row "
          "changes, %llu schema changes, %llu bytes, %.3f s",
          PROG, nfiles, nfiles == 1 ? "" : "s", (unsigned long long)st.events,
          (unsigned long long)st.windows, (unsigned long long)st.rows,
          (unsigned long long)st.ddls, (unsigned long long)st.bytes, secs);
  if (secs > 0 && st.rows > 0)
    fprintf(stderr, " (%.0f row changes/s)", (double)st.rows / secs);
  if (c.incidents)
    fprintf(stderr, ", %u INCIDENT event%s", c.incidents,
            c.incidents == 1 ? "" : "s");
  fputc('\n', stderr);
  hb_decoder_free(dec);
  if (err < 0 || ferr < 0 || c.out_error || c.incidents)
    rc = HD_EXIT_FAIL;
out:
  for (size_t i = 0; i < c.npat; i++)
    free(c.pat[i]);
  free(c.pat);
  hb_buf_free(&c.out);
  hb_buf_free(&c.name);
  return rc;
}
