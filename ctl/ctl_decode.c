/*
 * heraldctl decode - binlog files to the JSON change format.
 *
 * One decoder reads the files in the order given (a transaction never spans
 * two files, so each file must end on a transaction boundary). Lines go to
 * stdout through a large buffer written in big chunks; the summary and any
 * error ("FILE:OFFSET: what is wrong") go to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "hb.h"
#include "hb_event.h"
#include "hb_file.h"
#include "hb_json.h"
#include "hb_sql.h"
#include "hd_cli.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "hd_parse.h"

#define PROG "heraldctl decode"
#define FLUSH_AT ((size_t)1 << 20)

typedef struct {
  hb_buf_t out;
  char **pat; /* --tables patterns, split at commas (owned) */
  size_t npat;
  int ddl;       /* --ddl */
  int hold;      /* keep all output in `out` (a chunk of a parallel run) */
  hb_buf_t err;  /* with hold: incident lines, printed in order later */
  int out_error; /* writing stdout failed */
  unsigned incidents;
  hb_buf_t name; /* scratch for "db.table" */
} dec_ctx_t;

/* Write what is buffered. Lines are only appended whole, so whatever is
 * written on an error is complete transactions. */
static int flush_out(dec_ctx_t *c) {
  if (c->out.len == 0 || c->hold)
    return 0;
  if (fwrite(c->out.p, 1, c->out.len, stdout) != c->out.len) {
    c->out_error = errno ? errno : EIO;
    return -1;
  }
  hb_buf_reset(&c->out);
  return 0;
}

/* With --tables, schema changes are selected by the tables they name, by
 * the rule the relay and tail use (hb_sql.h). */
static int want_ddl(void *ud, const hb_ddl_t *d) {
  dec_ctx_t *c = ud;
  return hb_ddl_wanted(d, c->pat, c->npat);
}

/* Render each transaction into the buffer and write in chunks of about
 * 1 MiB: one fwrite per chunk instead of one per line. */
static int on_window(void *ud, const hb_window_t *w) {
  dec_ctx_t *c = ud;
  if (c->ddl && w->nddl)
    hb_render_window_ddl(w, want_ddl, c, &c->out);
  else
    hb_render_window(w, &c->out);
  if (c->out.len >= FLUSH_AT && flush_out(c) < 0)
    return -EIO;
  return 0;
}

static int on_ddl(void *ud, const hb_ddl_t *d) {
  dec_ctx_t *c = ud;
  if (!c->ddl || !want_ddl(c, d))
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
  char line[1024];
  int n = snprintf(line, sizeof(line),
                   "%s:%llu: INCIDENT %u: %s (changes may be missing)\n",
                   inc->file, (unsigned long long)inc->pos, inc->code,
                   inc->message[0] ? inc->message : "no message");
  if (c->hold) /* a piece of a parallel run: said when it is printed */
    hb_buf_put(&c->err, line, n < 0 ? 0 : (size_t)n);
  else
    fputs(line, stderr);
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

/* ---- large files on two cores ----
 *
 * Decoding and rendering a big binlog is CPU work on one core, and every
 * transaction carries its own table maps, so a file can be cut at the
 * events that start transactions (GTID events) and the pieces decoded at
 * the same time by decoders of their own, each of which reads the format
 * description first. Pieces are printed in order as they finish; a piece
 * may run at most PAR_AHEAD pieces ahead of the one being printed, which
 * bounds the memory. Offsets, SCNs, errors and lines are exactly those of
 * one decoder reading the whole file (the tests compare them). */
#define PAR_MIN_BYTES ((size_t)16 << 20)
#define PAR_CHUNK ((size_t)2 << 20)
#define PAR_AHEAD 4
#define PAR_THREADS 2

typedef struct {
  size_t start, end;
  dec_ctx_t ctx;
  hb_stats_t st;
  int rc;
  char errmsg[512];
  int done;
} piece_t;

typedef struct {
  const char *path;
  const uint8_t *map;
  const hb_config_t *cfg;
  piece_t *pc;
  size_t npc;
  atomic_size_t next;
  size_t printed;
  int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} par_t;

/* A worker thread; it counts its pieces for the -v report. */
typedef struct {
  par_t *p;
  size_t pieces;
} par_thr_t;

/* One decoder per thread, reset between pieces: a new decoder per piece
 * would pay again for its memory (arenas grow to the largest window). */
static void *par_worker(void *arg) {
  par_thr_t *w = arg;
  par_t *p = w->p;
  hb_decoder_t *dec = NULL;
  for (;;) {
    size_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->npc)
      break;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && i >= p->printed + PAR_AHEAD)
      pthread_cond_wait(&p->cv, &p->mu);
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    piece_t *pc = &p->pc[i];
    if (!stop) {
      if (dec == NULL)
        dec = hb_decoder_new(p->cfg);
      hb_decoder_reset(dec);
      hb_decoder_set_ud(dec, &pc->ctx);
      hb_stats_t before, after;
      hb_decoder_stats(dec, &before);
      /* Straight to the piece after the format description: framing
       * every event before it (and touching its pages) each time would
       * cost as much as decoding. */
      hb_read_opts_t ro = {.from_pos = pc->start, .from_is_event = 1};
      pc->rc = hb_read_buffer(dec, p->path, p->map, pc->end, &ro);
      snprintf(pc->errmsg, sizeof(pc->errmsg), "%s", hb_decoder_errmsg(dec));
      hb_decoder_stats(dec, &after);
      pc->st.events = after.events - before.events;
      pc->st.bytes = after.bytes - before.bytes;
      pc->st.windows = after.windows - before.windows;
      pc->st.rows = after.rows - before.rows;
      pc->st.ddls = after.ddls - before.ddls;
      w->pieces++;
      if (pc->rc < 0) { /* a failed decoder is not fed again */
        hb_decoder_free(dec);
        dec = NULL;
      }
    }
    pthread_mutex_lock(&p->mu);
    pc->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  hb_decoder_free(dec);
  return NULL;
}

/* Why a file is read in one piece, at debug level (-v -v): whether the
 * pieces were used is otherwise visible only in the timing. */
static int one_piece(const char *path, const char *why) {
  hd_log(HD_LL_DEBUG, "decode", "one piece", "file=\"%s\" reason=\"%s\"", path,
         why);
  return 0;
}

/* Reads path in pieces on two threads when it is large, plain (not gzip)
 * and has GTID events to cut at. Returns what hb_read_file() would, with
 * the message in errmsg and the counters added to *acc; *used = 0 when it
 * declined (then nothing was read). With -v it reports the pieces and the
 * threads that decoded them. */
static int read_parallel(const char *path, dec_ctx_t *c, const hb_config_t *cfg,
                         hb_stats_t *acc, char *errmsg, size_t errlen,
                         int *used) {
  *used = 0;
  /* HERALD_DECODE_THREADS=1 reads every file in one piece (the tests
   * compare both ways). */
  const char *env = getenv("HERALD_DECODE_THREADS");
  if (env && strcmp(env, "1") == 0)
    return one_piece(path, "HERALD_DECODE_THREADS=1");
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
    return one_piece(path, "one CPU online");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0; /* the plain reader says why */
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
      (size_t)sb.st_size < PAR_MIN_BYTES) {
    close(fd);
    return one_piece(path, "not a regular file of 16 MiB or more");
  }
  size_t len = (size_t)sb.st_size;
  uint8_t *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED)
    return one_piece(path, "mmap failed");
  if (memcmp(map,
             "\xfe"
             "bin",
             4) != 0 ||
      len < 4 + HB_EVENT_HEADER_LEN) {
    munmap(map, len);
    return one_piece(path, "not a plain binlog (gzip?)");
  }
  /* Cut points: GTID events (MariaDB 162, MySQL 33 and 34) at least
   * PAR_CHUNK apart, found by walking the event sizes. Where the walk
   * meets a bad size it stops: the last piece then meets it too and
   * reports it as the plain reader would. */
  size_t cap = 16, n = 0;
  piece_t *pc = hd_calloc(cap, sizeof(piece_t));
  /* The walk reads the headers through a buffer rather than the mapping:
   * touching every mapped page would make the whole file resident. */
  size_t off = 4, last = 0;
  uint32_t fde_size = hb_event_size(map + 4);
  size_t wcap = (size_t)4 << 20, wbase = 0, wlen = 0;
  uint8_t *wbuf = hd_malloc(wcap);
  int wfd = open(path, O_RDONLY | O_CLOEXEC);
  while (wfd >= 0 && off + HB_EVENT_HEADER_LEN <= len) {
    if (off < wbase || off + HB_EVENT_HEADER_LEN > wbase + wlen) {
      ssize_t r = pread(wfd, wbuf, wcap, (off_t)off);
      if (r < HB_EVENT_HEADER_LEN)
        break;
      wbase = off;
      wlen = (size_t)r;
    }
    const uint8_t *h = wbuf + (off - wbase);
    uint32_t size = hb_event_size(h);
    if (size < HB_EVENT_HEADER_LEN || size > len - off)
      break;
    uint8_t type = hb_event_type(h);
    if ((type == HB_EV_MARIA_GTID || type == HB_EV_GTID ||
         type == HB_EV_ANONYMOUS_GTID) &&
        off - last >= PAR_CHUNK && last != 0) {
      if (n + 1 >= cap) {
        /* Zeroed like the first ones: a piece's done flag, counters and
         * message must start clear, or the printing loop takes a piece
         * that is still being decoded (or never was) for finished. */
        pc = hd_realloc(pc, 2 * cap * sizeof(piece_t));
        memset(pc + cap, 0, cap * sizeof(piece_t));
        cap *= 2;
      }
      pc[n].end = off;
      pc[++n].start = off;
      last = off;
    } else if (last == 0 && off > 4) {
      last = 4; /* the first piece starts at the file's start */
    }
    off += size;
  }
  if (wfd >= 0)
    close(wfd);
  free(wbuf);
  if (n == 0) { /* nowhere to cut */
    free(pc);
    munmap(map, len);
    return one_piece(path, "no GTID event 2 MiB or more into the file");
  }
  pc[0].start = 0;
  pc[n].end = len;
  n++;

  *used = 1;
  par_t p = {.path = path, .map = map, .cfg = cfg, .pc = pc, .npc = n};
  atomic_init(&p.next, 0);
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  for (size_t i = 0; i < n; i++) {
    memset(&pc[i].ctx, 0, sizeof(dec_ctx_t));
    pc[i].ctx.pat = c->pat;
    pc[i].ctx.npat = c->npat;
    pc[i].ctx.ddl = c->ddl;
    pc[i].ctx.hold = 1;
  }
  pthread_t thr[PAR_THREADS];
  par_thr_t w[PAR_THREADS];
  int nthr = 0, terr = 0;
  for (int t = 0; t < PAR_THREADS; t++) {
    w[nthr] = (par_thr_t){.p = &p};
    int e = pthread_create(&thr[nthr], NULL, par_worker, &w[nthr]);
    if (e == 0)
      nthr++;
    else
      terr = e;
  }
  if (nthr == 0) {
    /* Nothing was read yet: the plain reader takes the file, rather than
     * waiting for pieces no thread will decode. */
    hd_log(HD_LL_WARN, "decode", "no decoder thread, one piece",
           "file=\"%s\" error=\"%s\"", path, strerror(terr));
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    free(pc);
    munmap(map, len);
    *used = 0;
    return 0;
  }
  int rc = 0;
  size_t i = 0;
  for (; i < n; i++) {
    pthread_mutex_lock(&p.mu);
    while (!pc[i].done)
      pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    /* In order: a piece's complete transactions, then its error. */
    dec_ctx_t *pcx = &pc[i].ctx;
    c->incidents += pcx->incidents;
    if (pcx->err.len)
      fwrite(pcx->err.p, 1, pcx->err.len, stderr);
    hb_buf_put(&c->out, pcx->out.p, pcx->out.len);
    hb_buf_free(&pcx->out);
    /* Its part of the file is done with: give back the mapped pages (the
     * first page, with the format description, is still read). */
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t a = (pc[i].start + pg - 1) / pg * pg, z = pc[i].end / pg * pg;
    if (a < pg)
      a = pg;
    if (z > a)
      madvise((void *)(map + a), z - a, MADV_DONTNEED);
    hb_buf_free(&pcx->name);
    hb_buf_free(&pcx->err);
    acc->events += pc[i].st.events - (i ? 1 : 0);
    acc->bytes += pc[i].st.bytes - (i ? fde_size : 0);
    acc->windows += pc[i].st.windows;
    acc->rows += pc[i].st.rows;
    acc->ddls += pc[i].st.ddls;
    rc = pc[i].rc;
    snprintf(errmsg, errlen, "%s", pc[i].errmsg);
    int failed = flush_out(c) < 0 || (rc != 0 && i + 1 < n);
    if (rc == 0 && i + 1 < n && failed == 0) {
      pthread_mutex_lock(&p.mu);
      p.printed = i + 1;
      pthread_cond_broadcast(&p.cv);
      pthread_mutex_unlock(&p.mu);
      continue;
    }
    if (rc == 0 && c->out_error)
      rc = -EIO;
    break;
  }
  pthread_mutex_lock(&p.mu);
  p.stop = 1;
  pthread_cond_broadcast(&p.cv);
  pthread_mutex_unlock(&p.mu);
  for (int t = 0; t < nthr; t++)
    pthread_join(thr[t], NULL);
  /* Pieces decoded (after an error, pieces ahead of it may be decoded and
   * not printed, or not decoded at all). */
  char per[64] = "";
  size_t decoded = 0;
  for (int t = 0; t < nthr; t++) {
    size_t l = strlen(per);
    snprintf(per + l, sizeof(per) - l, "%s%zu", t ? "," : "", w[t].pieces);
    decoded += w[t].pieces;
  }
  hd_log(HD_LL_INFO, "decode", "decoded in pieces",
         "file=\"%s\" bytes=%zu pieces=%zu decoded=%zu threads=%d "
         "per_thread=%s",
         path, len, n, decoded, nthr, per);
  for (size_t k = i + 1; k < n; k++) {
    hb_buf_free(&pc[k].ctx.out);
    hb_buf_free(&pc[k].ctx.name);
    hb_buf_free(&pc[k].ctx.err);
  }
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  free(pc);
  munmap(map, len);
  return rc;
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
    "                     --tables, those naming a matching table, or\n"
    "                     naming none and in a matching database)\n"
    "  -h, --help         this help\n"
    "\n"
    "Files of 16 MiB and more are decoded in pieces on two threads and\n"
    "printed in order (HERALD_DECODE_THREADS=1: one piece); `heraldctl -v\n"
    "decode` logs the pieces and threads used, -v -v why a file was read\n"
    "in one piece.\n"
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
  int nfiles = 0, err = 0, open_txn = 0, par_err = 0;
  hb_stats_t par_st = {0};
  char par_msg[512] = "";
  for (int i = optind; i < argc && err == 0; i++) {
    hb_read_opts_t ro = {.from_pos = i == optind ? from : 0};
    int used = 0;
    /* Large files in pieces on two cores (not with --from-pos); the
     * messages of such a file come from its pieces' decoders. */
    if (ro.from_pos == 0)
      err = read_parallel(argv[i], &c, &cfg, &par_st, par_msg, sizeof(par_msg),
                          &used);
    if (!used)
      err = hb_read_file(dec, argv[i], &ro);
    par_err = used;
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
  const char *emsg = par_err ? par_msg : hb_decoder_errmsg(dec);
  if (open_txn)
    fprintf(stderr, "%s (warning: the file may still be being written)\n",
            emsg);
  if (err < 0 && !c.out_error)
    fprintf(stderr, "%s\n", emsg);
  if (c.out_error)
    fprintf(stderr, "%s: writing the output failed: %s\n", PROG,
            strerror(c.out_error));
  hb_stats_t st;
  hb_decoder_stats(dec, &st);
  st.events += par_st.events;
  st.windows += par_st.windows;
  st.rows += par_st.rows;
  st.ddls += par_st.ddls;
  st.bytes += par_st.bytes;
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
