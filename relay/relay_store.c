/*
 * relay_store.c - the relay's durable log store. docs/log-store.md describes
 * the on-disk format and the recovery rules; this file follows it.
 *
 * Concurrency. The owner thread appends, rolls, retains and closes. Readers
 * and relay_store_sync() run on other threads. One mutex (s->mu) guards the
 * segment list and the fields of each segment that the owner changes while
 * others look: size, count, last_*, closed and the active segment's index
 * entries. File data needs no lock: the owner publishes a record (moves
 * seg->size past it) only after its write returned, and readers never read
 * past seg->size. Segments are reference-counted; a reader's reference keeps
 * the file descriptor open, so retention can unlink a segment under a reader.
 */
#include "relay_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"

/* On-disk layout (docs/log-store.md). All integers are little-endian. */
#define RS_VERSION 1u
#define RS_SEG_MAGIC "HDLOGSEG"
#define RS_IDX_MAGIC "HDLOGIDX"
#define RS_FTR_MAGIC "HDIDXEND"
#define RS_SEG_HDR 48u  /* segment header */
#define RS_REC_HDR 24u  /* record header: len, crc, scn, ts */
#define RS_IDX_HDR 32u  /* index header */
#define RS_IENT 24u     /* index entry: scn, offset, record number */
#define RS_IDX_FTR 64u  /* index trailer of a cleanly closed segment */
#define RS_NAME_LEN 20u /* "%016x.seg" */
/* Bit 31 of a record's length field: more records of the same SCN (chunks
 * of one window) follow. Lengths are at most 256 MiB, so it is free. */
#define RS_MORE 0x80000000u

/* Bytes a reader or a recovery scan asks the kernel for at once. Large
 * enough that 1 KiB records cost one pread per 256 of them. */
#define RS_READ_CHUNK (256u << 10)
/* An index file is ~24 bytes per index_bytes of segment: anything this large
 * is not one of ours, and reading it whole would be a mistake. */
#define RS_IDX_MAX_FILE (64u << 20)

/* ---- little-endian helpers and CRC32C ---------------------------------- */

static void rs__put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void rs__put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rs__get32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static uint64_t rs__get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* ISA-L's crc32_iscsi() takes and returns the raw register: starting from
 * 0xFFFFFFFF and inverting at the end gives standard CRC32C (Castagnoli),
 * whose check value CRC32C("123456789") = 0xE3069283. Its length is an int,
 * hence the chunking. Callers chain rs__crc_upd() and finish with ~. */
#define RS_CRC_INIT 0xFFFFFFFFu

static uint32_t rs__crc_upd(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n > 0) {
    size_t k = n > (1u << 30) ? (1u << 30) : n;
    crc = crc32_iscsi((unsigned char *)b, (int)k, crc);
    b += k;
    n -= k;
  }
  return crc;
}

static uint32_t rs__crc(const void *p, size_t n) {
  return rs__crc_upd(RS_CRC_INIT, p, n) ^ RS_CRC_INIT;
}

static uint64_t rs__now_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rs__now_real_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- types -------------------------------------------------------------- */

typedef struct {
  uint64_t scn; /* SCN of the record at off */
  uint64_t off; /* its offset in the segment */
  uint64_t seq; /* its number in the segment, from 0 */
} rs_ient_t;

/* What a trailer (or a scan) tells about a whole segment. */
typedef struct {
  uint64_t seg_bytes, count, first_scn, last_scn, last_off, last_ts;
} rs_ftr_t;

typedef struct rs_seg {
  char *path;        /* DIR/%016x.seg */
  char *idx_path;    /* DIR/%016x.idx */
  uint64_t prev_scn; /* the SCN before its first record: its name */
  int fd;
  int refs;   /* the store's list holds one; each reader one (under mu) */
  int closed; /* no longer appended to; size is final (under mu) */
  int sealed; /* the index file on disk has a valid trailer */

  /* Changed by the owner under mu once the segment is in the list. */
  uint64_t size; /* bytes of whole records, header included */
  uint64_t count, first_scn, last_scn, last_off, last_ts;
  rs_ient_t *ient; /* in memory while active (and during recovery) */
  size_t nient, ient_cap;

  /* The owner's, for the active segment. */
  int idx_fd;        /* -1 when not appending index entries */
  uint64_t idx_size; /* bytes of the index file */
  int idx_failed;    /* an entry write failed: logged once */

  /* Recovery only: where the first bad byte is (UINT64_MAX: none). */
  uint64_t dmg_off;
  const char *dmg_why;
  int grp_open; /* the last record noted has more chunks after it */
} rs_seg_t;

/* A record of the window being appended, written but not yet published. */
typedef struct {
  uint64_t off, ts;
  uint32_t len;
} rs_pend_t;

struct relay_store {
  relay_store_opts_t o; /* o.dir points to dir */
  char *dir;
  int dir_fd;
  int lock_fd;

  pthread_mutex_t mu;
  rs_seg_t **segs; /* oldest first; the last one is active (under mu) */
  size_t nsegs, segs_cap;
  uint64_t bytes; /* segments + indexes on disk (under mu) */
  uint64_t count; /* records (under mu) */
  int readers;    /* open readers (under mu) */

  atomic_int dirty;
  atomic_int broken;
  _Atomic uint64_t last_sync_ms;

  /* The owner's: a window of several chunks being appended. Its records
   * are written but published only with the last one, so readers never
   * see part of a window and recovery drops a part (see rs__scan). */
  int grp_open;
  uint64_t grp_scn, grp_start, grp_end;
  rs_pend_t *pend;
  size_t npend, pend_cap;

  char errmsg[512]; /* the owner's last error */
};

/* A buffered window over one file, for sequential record reads. */
typedef struct {
  int fd;
  uint8_t *buf;
  size_t cap;
  uint64_t boff; /* buf holds file bytes [boff, boff + blen) */
  size_t blen;
} rs_cur_t;

/* One decoded, verified record. data points into the cursor's buffer. */
typedef struct {
  uint64_t scn, ts;
  uint32_t len;
  const uint8_t *data;
  int more; /* another chunk of this SCN follows */
} rs_rec_t;

struct relay_store_reader {
  relay_store_t *s;
  rs_seg_t *seg;  /* referenced */
  uint64_t pos;   /* offset of the next record in seg */
  uint64_t skip;  /* records with SCN <= skip are passed over (the seek) */
  uint64_t prev;  /* SCN of the last record read (returned or skipped) */
  uint64_t nread; /* records read */
  int prev_more;  /* the last record read has more chunks after it */
  rs_cur_t cur;
  int err; /* sticky */
  char errmsg[512];
};

/* ---- errors ------------------------------------------------------------- */

/* Record the owner's error in s->errmsg, log it when it is about the disk
 * (not about the caller's arguments), and return code. */
__attribute__((format(printf, 4, 5))) static int
rs__fail(relay_store_t *s, int code, int log, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
  va_end(ap);
  if (log)
    hd_log(HD_LL_ERROR, "store", "store error", "code=%s detail=\"%s\"",
           hd_err_name(code), s->errmsg);
  return code;
}

__attribute__((format(printf, 3, 4))) static void
rs__errstr(char *errstr, size_t errlen, const char *fmt, ...) {
  if (errstr == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errstr, errlen, fmt, ap);
  va_end(ap);
}

/* ---- file helpers ------------------------------------------------------- */

/* Reads up to n bytes at off. @returns bytes read (short at end of file), or
 * -errno. */
static ssize_t rs__pread_full(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

/* Writes all of iov at off, resuming after short writes. iov is consumed. */
static int rs__pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off) {
  while (cnt > 0) {
    ssize_t w = pwritev(fd, iov, cnt, (off_t)off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    off += (uint64_t)w;
    while (cnt > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      cnt--;
    }
    if (cnt > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

static int rs__pwrite_full(int fd, const void *buf, size_t n, uint64_t off) {
  struct iovec iov = {(void *)buf, n};
  return rs__pwritev_full(fd, &iov, 1, off);
}

static char *rs__path(const char *dir, uint64_t prev_scn, const char *ext) {
  size_t n = strlen(dir) + 1 + 16 + strlen(ext) + 1;
  char *p = hd_malloc(n);
  snprintf(p, n, "%s/%016" PRIx64 "%s", dir, prev_scn, ext);
  return p;
}

/* mkdir -p. */
static int rs__mkdirs(const char *dir) {
  char *p = hd_strdup(dir);
  int rc = 0;
  for (char *q = p + 1;; q++) {
    if (*q != '/' && *q != '\0')
      continue;
    char c = *q;
    *q = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      rc = -errno;
      break;
    }
    *q = c;
    if (c == '\0')
      break;
  }
  free(p);
  return rc;
}

/* ---- cursor and records ------------------------------------------------- */

static void rs__cur_init(rs_cur_t *c, int fd) {
  c->fd = fd;
  c->boff = 0;
  c->blen = 0;
}

static void rs__cur_free(rs_cur_t *c) {
  free(c->buf);
  c->buf = NULL;
  c->cap = 0;
  c->blen = 0;
}

/* Points *p at file bytes [off, off + n), n <= end - off, reading ahead up
 * to end. @returns 0, 1 if the file is shorter than end, or -errno. */
static int rs__cur_get(rs_cur_t *c, uint64_t off, size_t n, uint64_t end,
                       const uint8_t **p) {
  if (c->blen > 0 && off >= c->boff && off + n <= c->boff + c->blen) {
    *p = c->buf + (off - c->boff);
    return 0;
  }
  size_t want = n > RS_READ_CHUNK ? n : RS_READ_CHUNK;
  if (want > end - off)
    want = (size_t)(end - off);
  if (want > c->cap) {
    /* The old contents are not needed: this read replaces them. */
    free(c->buf);
    c->buf = hd_malloc(want);
    c->cap = want;
  }
  c->blen = 0;
  ssize_t r = rs__pread_full(c->fd, c->buf, want, off);
  if (r < 0)
    return (int)r;
  c->boff = off;
  c->blen = (size_t)r;
  if ((size_t)r < n)
    return 1;
  *p = c->buf;
  return 0;
}

/* Reads and verifies the record at off; the segment's valid bytes end at
 * end. @returns 0 with *rec; RELAY_STORE_ECORRUPT with *why; or -errno. */
static int rs__rec_read(rs_cur_t *c, uint64_t off, uint64_t end, rs_rec_t *rec,
                        const char **why) {
  const uint8_t *p;
  if (off > end || end - off < RS_REC_HDR) {
    *why = "record header cut short";
    return RELAY_STORE_ECORRUPT;
  }
  int rc = rs__cur_get(c, off, RS_REC_HDR, end, &p);
  if (rc != 0) {
    *why = "file shorter than its records";
    return rc < 0 ? rc : RELAY_STORE_ECORRUPT;
  }
  uint32_t raw = rs__get32(p);
  uint32_t len = raw & ~RS_MORE;
  uint32_t crc = rs__get32(p + 4);
  /* Check the length before using it: a corrupt one must not make us read
   * (or allocate) far past the segment. */
  if (len > RELAY_STORE_MAX_RECORD) {
    *why = "record length exceeds the maximum record size";
    return RELAY_STORE_ECORRUPT;
  }
  if (end - off - RS_REC_HDR < len) {
    *why = "record extends past the end of the segment";
    return RELAY_STORE_ECORRUPT;
  }
  rc = rs__cur_get(c, off, RS_REC_HDR + (size_t)len, end, &p);
  if (rc != 0) {
    *why = "file shorter than its records";
    return rc < 0 ? rc : RELAY_STORE_ECORRUPT;
  }
  uint32_t got = rs__crc_upd(RS_CRC_INIT, p, 4);
  got = rs__crc_upd(got, p + 8, RS_REC_HDR - 8 + (size_t)len) ^ RS_CRC_INIT;
  if (got != crc) {
    *why = "record checksum mismatch";
    return RELAY_STORE_ECORRUPT;
  }
  rec->len = len;
  rec->more = (raw & RS_MORE) != 0;
  rec->scn = rs__get64(p + 8);
  rec->ts = rs__get64(p + 16);
  rec->data = p + RS_REC_HDR;
  return 0;
}

/* ---- segment header and index images ------------------------------------ */

static void rs__seg_hdr_encode(uint8_t *b, uint64_t prev_scn) {
  memset(b, 0, RS_SEG_HDR);
  memcpy(b, RS_SEG_MAGIC, 8);
  rs__put32(b + 8, RS_VERSION);
  rs__put32(b + 12, RS_SEG_HDR);
  rs__put64(b + 16, prev_scn);
  rs__put64(b + 24, rs__now_real_ms());
  rs__put32(b + 44, rs__crc(b, 44));
}

/* @returns NULL if b is a valid header of the segment after prev_scn, else
 * what is wrong. */
static const char *rs__seg_hdr_check(const uint8_t *b, uint64_t prev_scn) {
  if (memcmp(b, RS_SEG_MAGIC, 8) != 0)
    return "bad segment magic";
  if (rs__get32(b + 44) != rs__crc(b, 44))
    return "segment header checksum mismatch";
  if (rs__get32(b + 8) != RS_VERSION)
    return "unsupported segment version";
  if (rs__get32(b + 12) != RS_SEG_HDR)
    return "unexpected segment header length";
  if (rs__get64(b + 16) != prev_scn)
    return "segment header's previous SCN differs from its file name";
  return NULL;
}

/* Index image: header, entries and, when sealing, the trailer. @returns a
 * buffer the caller frees, its length in *n. */
static uint8_t *rs__idx_image(const rs_seg_t *seg, int with_ftr, size_t *n) {
  size_t len = RS_IDX_HDR + seg->nient * RS_IENT + (with_ftr ? RS_IDX_FTR : 0);
  uint8_t *b = hd_calloc(1, len);
  memcpy(b, RS_IDX_MAGIC, 8);
  rs__put32(b + 8, RS_VERSION);
  rs__put32(b + 12, RS_IENT);
  rs__put64(b + 16, seg->prev_scn);
  rs__put32(b + 28, rs__crc(b, 28));
  uint8_t *p = b + RS_IDX_HDR;
  for (size_t i = 0; i < seg->nient; i++, p += RS_IENT) {
    rs__put64(p, seg->ient[i].scn);
    rs__put64(p + 8, seg->ient[i].off);
    rs__put64(p + 16, seg->ient[i].seq);
  }
  if (with_ftr) {
    memcpy(p, RS_FTR_MAGIC, 8);
    rs__put64(p + 8, seg->size);
    rs__put64(p + 16, seg->count);
    rs__put64(p + 24, seg->first_scn);
    rs__put64(p + 32, seg->last_scn);
    rs__put64(p + 40, seg->last_off);
    rs__put64(p + 48, seg->last_ts);
    /* The trailer's CRC covers the whole file before it: a sealed index is
     * verified as one piece. */
    rs__put32(p + 56, rs__crc(b, len - 8));
  }
  *n = len;
  return b;
}

/* Parses an index file image. Entries are kept up to the first one that is
 * not in order (a torn write of an active segment's index). @returns 0 and
 * the entries (caller frees *ents) and whether a valid trailer is there, or
 * -1 if the header is not one of ours for this segment. */
static int rs__idx_parse(const uint8_t *b, size_t n, uint64_t prev_scn,
                         rs_ient_t **ents, size_t *nents, int *has_ftr,
                         rs_ftr_t *f) {
  *ents = NULL;
  *nents = 0;
  *has_ftr = 0;
  if (n < RS_IDX_HDR || memcmp(b, RS_IDX_MAGIC, 8) != 0 ||
      rs__get32(b + 28) != rs__crc(b, 28) || rs__get32(b + 8) != RS_VERSION ||
      rs__get32(b + 12) != RS_IENT || rs__get64(b + 16) != prev_scn)
    return -1;
  size_t end = RS_IDX_HDR + (n - RS_IDX_HDR) / RS_IENT * RS_IENT;
  if (n >= RS_IDX_HDR + RS_IDX_FTR &&
      (n - RS_IDX_HDR - RS_IDX_FTR) % RS_IENT == 0 &&
      memcmp(b + n - RS_IDX_FTR, RS_FTR_MAGIC, 8) == 0 &&
      rs__get32(b + n - 8) == rs__crc(b, n - 8)) {
    const uint8_t *p = b + n - RS_IDX_FTR;
    *has_ftr = 1;
    f->seg_bytes = rs__get64(p + 8);
    f->count = rs__get64(p + 16);
    f->first_scn = rs__get64(p + 24);
    f->last_scn = rs__get64(p + 32);
    f->last_off = rs__get64(p + 40);
    f->last_ts = rs__get64(p + 48);
    end = n - RS_IDX_FTR;
  }
  size_t cnt = (end - RS_IDX_HDR) / RS_IENT;
  rs_ient_t *e = hd_malloc((cnt ? cnt : 1) * sizeof(*e));
  size_t k = 0;
  for (const uint8_t *p = b + RS_IDX_HDR; k < cnt; p += RS_IENT) {
    rs_ient_t x = {rs__get64(p), rs__get64(p + 8), rs__get64(p + 16)};
    /* The first entry is always the first record; each next one is later in
     * every respect. */
    int ok = k == 0 ? (x.off == RS_SEG_HDR && x.seq == 0 && x.scn > prev_scn)
                    : (x.scn > e[k - 1].scn && x.off > e[k - 1].off &&
                       x.seq > e[k - 1].seq);
    if (!ok)
      break;
    e[k++] = x;
  }
  if (k < cnt)
    *has_ftr = 0; /* a trailer over bad entries is not to be trusted */
  *ents = e;
  *nents = k;
  return 0;
}

/* Reads a whole index file. @returns 0 with a buffer the caller frees, 1 if
 * the file is missing or unreasonably large, or -errno. *buf and *n are set
 * on every path (NULL and 0 when nothing was read): a caller that tests only
 * for 0 never sees stale values, and the compiler can prove it at -O3. */
static int rs__idx_read(const char *path, uint8_t **buf, size_t *n) {
  *buf = NULL;
  *n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 1 : -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  if ((uint64_t)st.st_size > RS_IDX_MAX_FILE) {
    close(fd);
    return 1;
  }
  size_t len = (size_t)st.st_size;
  uint8_t *b = hd_malloc(len);
  ssize_t r = rs__pread_full(fd, b, len, 0);
  close(fd);
  if (r < 0) {
    free(b);
    return (int)r;
  }
  *buf = b;
  *n = (size_t)r;
  return 0;
}

/* Loads the entries of a sealed segment's index (a reader seeking in a closed
 * segment). @returns 0 with *ents (caller frees), or 1 if the index is
 * missing, damaged or does not match the segment. */
static int rs__idx_load_sealed(const rs_seg_t *seg, rs_ient_t **ents,
                               size_t *n) {
  uint8_t *b;
  size_t len;
  if (rs__idx_read(seg->idx_path, &b, &len) != 0)
    return 1;
  int has_ftr;
  rs_ftr_t f;
  int rc = rs__idx_parse(b, len, seg->prev_scn, ents, n, &has_ftr, &f);
  free(b);
  if (rc != 0)
    return 1;
  if (!has_ftr || f.seg_bytes != seg->size) {
    free(*ents);
    return 1;
  }
  return 0;
}

/* Offset of the record to start from to find the first SCN > after: the
 * last indexed record with SCN <= after, or the first record. */
static uint64_t rs__ient_find(const rs_ient_t *e, size_t n, uint64_t after) {
  size_t lo = 0, hi = n; /* first entry with scn > after */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (e[mid].scn <= after)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo == 0 ? RS_SEG_HDR : e[lo - 1].off;
}

/* Writes seg's index file whole (header, entries, trailer if with_ftr)
 * through a temporary file and rename, so that a crash leaves the old file
 * or the new one, never half of one. */
static int rs__idx_write(relay_store_t *s, rs_seg_t *seg, int with_ftr,
                         int sync) {
  size_t n;
  uint8_t *img = rs__idx_image(seg, with_ftr, &n);
  size_t tl = strlen(seg->idx_path) + 5;
  char *tmp = hd_malloc(tl);
  snprintf(tmp, tl, "%s.tmp", seg->idx_path);
  int rc = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = rs__fail(s, -errno, 1, "%s: cannot create: %s", tmp, strerror(errno));
    goto out;
  }
  rc = rs__pwrite_full(fd, img, n, 0);
  if (rc == 0 && sync && fdatasync(fd) != 0)
    rc = -errno;
  close(fd);
  if (rc == 0 && rename(tmp, seg->idx_path) != 0)
    rc = -errno;
  if (rc != 0) {
    rs__fail(s, rc, 1, "%s: cannot write index: %s", seg->idx_path,
             strerror(-rc));
    unlink(tmp);
    goto out;
  }
  /* The entry-appending descriptor, if any, points to the replaced file. */
  if (seg->idx_fd >= 0) {
    close(seg->idx_fd);
    seg->idx_fd = -1;
  }
  pthread_mutex_lock(&s->mu);
  s->bytes = s->bytes - seg->idx_size + n;
  seg->idx_size = n;
  seg->sealed = with_ftr;
  pthread_mutex_unlock(&s->mu);
out:
  free(tmp);
  free(img);
  return rc;
}

/* ---- segments ----------------------------------------------------------- */

static rs_seg_t *rs__seg_new(relay_store_t *s, uint64_t prev_scn) {
  rs_seg_t *seg = hd_calloc(1, sizeof(*seg));
  seg->path = rs__path(s->dir, prev_scn, ".seg");
  seg->idx_path = rs__path(s->dir, prev_scn, ".idx");
  seg->prev_scn = prev_scn;
  seg->fd = -1;
  seg->idx_fd = -1;
  seg->refs = 1;
  seg->size = RS_SEG_HDR;
  seg->last_scn = prev_scn;
  seg->dmg_off = UINT64_MAX;
  return seg;
}

static void rs__seg_free(rs_seg_t *seg) {
  if (seg->fd >= 0)
    close(seg->fd);
  if (seg->idx_fd >= 0)
    close(seg->idx_fd);
  free(seg->ient);
  free(seg->path);
  free(seg->idx_path);
  free(seg);
}

static void rs__seg_unref(relay_store_t *s, rs_seg_t *seg) {
  pthread_mutex_lock(&s->mu);
  int last = --seg->refs == 0;
  pthread_mutex_unlock(&s->mu);
  if (last)
    rs__seg_free(seg);
}

static rs_seg_t *rs__active(relay_store_t *s) {
  return s->segs[s->nsegs - 1];
}

/* Accounts one verified record at off in seg: summary fields and, every
 * index_bytes, an index entry. @returns 1 if it added an entry. Called under
 * mu once the segment is visible to readers. */
static int rs__seg_note(relay_store_t *s, rs_seg_t *seg, uint64_t off,
                        const rs_rec_t *rec) {
  int added = 0;
  /* Index entries point only at the first record of a window, so a seek
   * or a recovery that starts at one never starts inside a window. */
  if (!seg->grp_open &&
      (seg->nient == 0 ||
       off >= seg->ient[seg->nient - 1].off + s->o.index_bytes)) {
    if (seg->nient == seg->ient_cap) {
      seg->ient_cap = seg->ient_cap ? seg->ient_cap * 2 : 64;
      seg->ient = hd_realloc(seg->ient, seg->ient_cap * sizeof(*seg->ient));
    }
    seg->ient[seg->nient++] = (rs_ient_t){rec->scn, off, seg->count};
    added = 1;
  }
  if (seg->count == 0)
    seg->first_scn = rec->scn;
  seg->count++;
  seg->last_scn = rec->scn;
  seg->last_off = off;
  seg->last_ts = rec->ts;
  seg->size = off + RS_REC_HDR + rec->len;
  seg->grp_open = rec->more;
  return added;
}

/* Scans records from off to fsize, accounting each. Stops at the first bad
 * one and leaves its offset in seg->dmg_off. @returns 0 or -errno. */
static int rs__scan(relay_store_t *s, rs_seg_t *seg, uint64_t off,
                    uint64_t fsize) {
  rs_cur_t c = {0};
  rs__cur_init(&c, seg->fd);
  int rc = 0;
  seg->size = off;
  seg->grp_open = 0;
  /* The segment as it was before the window being scanned: what it goes
   * back to if that window turns out to lack its last chunk. */
  rs_seg_t before = *seg;
  uint64_t grp_start = off;
  while (off < fsize) {
    rs_rec_t rec;
    const char *why = NULL;
    rc = rs__rec_read(&c, off, fsize, &rec, &why);
    if (rc == 0 && seg->grp_open && rec.scn != seg->last_scn) {
      why = "chunk of a window with another SCN";
      rc = RELAY_STORE_ECORRUPT;
    } else if (rc == 0 && !seg->grp_open && rec.scn <= seg->last_scn) {
      why = "SCN not greater than the record before";
      rc = RELAY_STORE_ECORRUPT;
    }
    if (rc == RELAY_STORE_ECORRUPT) {
      seg->dmg_off = off;
      seg->dmg_why = why;
      rc = 0;
      break;
    }
    if (rc < 0)
      break;
    if (!seg->grp_open) {
      before = *seg;
      grp_start = off;
    }
    rs__seg_note(s, seg, off, &rec);
    off += RS_REC_HDR + rec.len;
  }
  rs__cur_free(&c);
  if (rc == 0 && seg->grp_open) {
    /* A window whose last chunk never reached the disk (a crash while it
     * was appended): none of it was published, so it goes as a whole. */
    seg->count = before.count;
    seg->first_scn = before.first_scn;
    seg->last_scn = before.last_scn;
    seg->last_off = before.last_off;
    seg->last_ts = before.last_ts;
    seg->size = before.size;
    seg->nient = before.nient < seg->nient ? before.nient : seg->nient;
    seg->grp_open = 0;
    seg->dmg_off = grp_start;
    seg->dmg_why = "window cut off before its last chunk";
  }
  return rc;
}

/* Creates the segment that follows prev_scn: header, empty index. */
static int rs__seg_create(relay_store_t *s, uint64_t prev_scn, int sync,
                          rs_seg_t **out) {
  rs_seg_t *seg = rs__seg_new(s, prev_scn);
  uint8_t hdr[RS_SEG_HDR];
  int rc;
  seg->fd = open(seg->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (seg->fd < 0) {
    rc = rs__fail(s, -errno, 1, "%s: cannot create segment: %s", seg->path,
                  strerror(errno));
    goto fail;
  }
  rs__seg_hdr_encode(hdr, prev_scn);
  rc = rs__pwrite_full(seg->fd, hdr, sizeof(hdr), 0);
  /* The header is synced now so that a segment on disk always has one:
   * recovery then never confuses a torn creation with damage. */
  if (rc == 0 && sync && fdatasync(seg->fd) != 0)
    rc = -errno;
  if (rc != 0) {
    rs__fail(s, rc, 1, "%s: cannot write segment header: %s", seg->path,
             strerror(-rc));
    goto fail;
  }
  uint8_t *img;
  size_t n;
  img = rs__idx_image(seg, 0, &n);
  seg->idx_fd =
      open(seg->idx_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  rc = seg->idx_fd < 0 ? -errno : rs__pwrite_full(seg->idx_fd, img, n, 0);
  free(img);
  if (rc != 0) {
    rs__fail(s, rc, 1, "%s: cannot create index: %s", seg->idx_path,
             strerror(-rc));
    goto fail;
  }
  seg->idx_size = n;
  if (sync && fsync(s->dir_fd) != 0) {
    rc = rs__fail(s, -errno, 1, "%s: fsync of directory failed: %s", s->dir,
                  strerror(errno));
    goto fail;
  }
  *out = seg;
  return 0;
fail:
  if (seg->fd >= 0) {
    unlink(seg->path);
    unlink(seg->idx_path);
  }
  rs__seg_free(seg);
  return rc;
}

static void rs__segs_push(relay_store_t *s, rs_seg_t *seg) {
  if (s->nsegs == s->segs_cap) {
    s->segs_cap = s->segs_cap ? s->segs_cap * 2 : 16;
    s->segs = hd_realloc(s->segs, s->segs_cap * sizeof(*s->segs));
  }
  s->segs[s->nsegs++] = seg;
}

/* ---- open and recovery -------------------------------------------------- */

void relay_store_opts_from_conf(const hd_relay_conf_t *c,
                                relay_store_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->dir = c->relay.data_dir;
  o->segment_bytes = c->relay.segment_bytes;
  o->fsync = c->relay.fsync;
  o->fsync_interval_ms = c->relay.fsync_interval_ms;
  o->retention_ms = c->relay.retention_ms;
  o->retention_bytes = c->relay.retention_bytes;
}

static int rs__lock(relay_store_t *s, char *errstr, size_t errlen) {
  size_t n = strlen(s->dir) + 6;
  char *path = hd_malloc(n);
  snprintf(path, n, "%s/LOCK", s->dir);
  int rc = 0;
  s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd < 0) {
    rc = -errno;
    rs__errstr(errstr, errlen, "%s: cannot open: %s", path, strerror(errno));
    goto out;
  }
  /* flock() locks belong to the open file description: a second open of
   * the same directory, in this process or another, is refused, and the
   * lock goes away with the process however it dies. */
  if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      char pid[32] = "";
      ssize_t r = rs__pread_full(s->lock_fd, pid, sizeof(pid) - 1, 0);
      pid[r > 0 ? r : 0] = '\0';
      pid[strcspn(pid, "\n")] = '\0';
      rc = RELAY_STORE_ELOCKED;
      rs__errstr(errstr, errlen,
                 "%s: log store is in use by another relay (lock held by "
                 "pid %s); two relays cannot share one data_dir",
                 path, pid[0] ? pid : "?");
    } else {
      rc = -errno;
      rs__errstr(errstr, errlen, "%s: flock: %s", path, strerror(-rc));
    }
    goto out;
  }
  char pid[32];
  int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
  if (ftruncate(s->lock_fd, 0) != 0 ||
      rs__pwrite_full(s->lock_fd, pid, (size_t)len, 0) != 0)
    hd_log(HD_LL_WARN, "store", "cannot write pid to lock file", "file=%s",
           path); /* the lock holds regardless */
out:
  free(path);
  return rc;
}

static int rs__cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Lists the segments of the directory by name (their previous SCN), sorted,
 * and removes what a crash can leave beside them: temporary index files and
 * indexes whose segment is gone. */
static int rs__list(relay_store_t *s, uint64_t **out, size_t *nout,
                    char *errstr, size_t errlen) {
  DIR *d = opendir(s->dir);
  if (d == NULL) {
    int rc = -errno;
    rs__errstr(errstr, errlen, "%s: cannot list: %s", s->dir, strerror(-rc));
    return rc;
  }
  uint64_t *v = NULL, *idx = NULL;
  size_t n = 0, cap = 0, ni = 0, capi = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *nm = de->d_name;
    size_t l = strlen(nm);
    /* An index being rewritten when the process died: "%016x.idx.tmp". */
    if (l == RS_NAME_LEN + 4 && strspn(nm, "0123456789abcdef") == 16 &&
        strcmp(nm + 16, ".idx.tmp") == 0) {
      unlinkat(s->dir_fd, nm, 0);
      continue;
    }
    if (l != RS_NAME_LEN || strspn(nm, "0123456789abcdef") != 16)
      continue;
    int is_seg = strcmp(nm + 16, ".seg") == 0;
    if (!is_seg && strcmp(nm + 16, ".idx") != 0)
      continue;
    uint64_t scn = strtoull(nm, NULL, 16);
    if (is_seg) {
      if (n == cap)
        v = hd_realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
      v[n++] = scn;
    } else {
      if (ni == capi)
        idx = hd_realloc(idx, (capi = capi ? capi * 2 : 64) * sizeof(*idx));
      idx[ni++] = scn;
    }
  }
  closedir(d);
  if (n > 1)
    qsort(v, n, sizeof(*v), rs__cmp_u64);
  for (size_t i = 0; i < ni; i++) {
    if (n > 0 && bsearch(&idx[i], v, n, sizeof(*v), rs__cmp_u64))
      continue;
    char nm[RS_NAME_LEN + 1];
    snprintf(nm, sizeof(nm), "%016" PRIx64 ".idx", idx[i]);
    unlinkat(s->dir_fd, nm, 0);
  }
  free(idx);
  *out = v;
  *nout = n;
  return 0;
}

/* Loads one segment at open: header, then its index. A segment whose index
 * has a valid trailer matching its size was closed cleanly and is trusted.
 * Otherwise its records are verified: all of them, or for the newest one
 * from its last index point that checks out. Damage is left in dmg_off. */
static int rs__load(relay_store_t *s, rs_seg_t *seg, int newest, char *errstr,
                    size_t errlen) {
  seg->fd = open(seg->path, O_RDWR | O_CLOEXEC);
  struct stat st;
  if (seg->fd < 0 || fstat(seg->fd, &st) != 0) {
    int rc = -errno;
    rs__errstr(errstr, errlen, "%s: cannot open: %s", seg->path, strerror(-rc));
    return rc;
  }
  uint64_t fsize = (uint64_t)st.st_size;
  uint8_t hdr[RS_SEG_HDR];
  ssize_t r = rs__pread_full(seg->fd, hdr, sizeof(hdr), 0);
  if (r < 0) {
    rs__errstr(errstr, errlen, "%s: read: %s", seg->path, strerror((int)-r));
    return (int)r;
  }
  const char *why = (size_t)r < sizeof(hdr)
                        ? "segment header cut short"
                        : rs__seg_hdr_check(hdr, seg->prev_scn);
  if (why != NULL) {
    seg->dmg_off = 0;
    seg->dmg_why = why;
    seg->size = 0;
    return 0;
  }

  uint8_t *b = NULL;
  size_t blen = 0;
  int rc = rs__idx_read(seg->idx_path, &b, &blen);
  if (rc < 0) {
    rs__errstr(errstr, errlen, "%s: read: %s", seg->idx_path, strerror(-rc));
    return rc;
  }
  seg->idx_size = rc == 0 ? blen : 0;
  rs_ient_t *ents = NULL;
  size_t nents = 0;
  int has_ftr = 0;
  rs_ftr_t f;
  if (rc == 0 &&
      rs__idx_parse(b, blen, seg->prev_scn, &ents, &nents, &has_ftr, &f) != 0)
    hd_log(HD_LL_WARN, "store", "index unusable, rebuilding", "file=%s",
           seg->idx_path);
  free(b);

  /* The newest segment is checked even when its trailer says it was closed
   * cleanly: from its last index point on, a few dozen KiB, so that a
   * damaged last record is found at open rather than by a reader. */
  if (has_ftr && !newest && f.seg_bytes == fsize &&
      (f.count == 0 ? nents == 0 && f.last_scn == seg->prev_scn
                    : nents > 0 && ents[0].scn == f.first_scn &&
                          f.last_off + RS_REC_HDR <= fsize)) {
    seg->sealed = 1;
    seg->size = fsize;
    seg->count = f.count;
    seg->first_scn = f.first_scn;
    seg->last_scn = f.count ? f.last_scn : seg->prev_scn;
    seg->last_off = f.last_off;
    seg->last_ts = f.last_ts;
    /* Closed segments keep no entries in memory; readers load them from
     * the file when they seek in one. */
    free(ents);
    return 0;
  }
  if (has_ftr && !newest)
    hd_log(HD_LL_INFO, "store", "index trailer does not match segment",
           "file=%s seg_bytes=%" PRIu64 " size=%" PRIu64, seg->idx_path,
           f.seg_bytes, fsize);

  uint64_t start = RS_SEG_HDR;
  if (newest && nents > 0) {
    /* Index entries of the active segment were written without a sync, so
     * the last ones may point past what reached the disk: trust the newest
     * entry whose record verifies, and scan from there. */
    rs_cur_t c = {0};
    rs__cur_init(&c, seg->fd);
    size_t k = nents;
    while (k > 0) {
      rs_rec_t rec;
      const char *w;
      rc = rs__rec_read(&c, ents[k - 1].off, fsize, &rec, &w);
      if (rc < 0 && rc != RELAY_STORE_ECORRUPT) {
        rs__cur_free(&c);
        free(ents);
        rs__errstr(errstr, errlen, "%s: read: %s", seg->path, strerror(-rc));
        return rc;
      }
      if (rc == 0 && rec.scn == ents[k - 1].scn)
        break;
      k--;
    }
    rs__cur_free(&c);
    if (k > 0) {
      const rs_ient_t *e = &ents[k - 1];
      start = e->off;
      seg->count = e->seq;
      seg->first_scn = ents[0].scn;
      /* A lower bound of the SCN before the entry's record: enough for the
       * scan's order check. */
      seg->last_scn = k > 1 ? ents[k - 2].scn : seg->prev_scn;
      seg->ient = ents;
      seg->nient = k - 1; /* the scan adds entry k-1 again */
      seg->ient_cap = nents;
      ents = NULL;
    }
  }
  free(ents);
  rc = rs__scan(s, seg, start, fsize);
  if (rc < 0) {
    rs__errstr(errstr, errlen, "%s: read: %s", seg->path, strerror(-rc));
    return rc;
  }
  if (seg->dmg_off == UINT64_MAX && seg->size != fsize) {
    seg->dmg_off = seg->size;
    seg->dmg_why = "bytes after the last record";
  }
  return 0;
}

/* Deletes a segment's files during recovery. */
static int rs__drop_files(rs_seg_t *seg, char *errstr, size_t errlen) {
  if (unlink(seg->path) != 0 && errno != ENOENT) {
    int rc = -errno;
    rs__errstr(errstr, errlen, "%s: cannot delete: %s", seg->path,
               strerror(-rc));
    return rc;
  }
  unlink(seg->idx_path); /* an orphan index is removed at the next open */
  return 0;
}

/* Keeps the store a gap-free prefix of what was appended. Damage in the
 * newest segments (the ones not closed cleanly) is what a crash leaves: the
 * store is cut at the first bad byte and every later segment dropped, and
 * the relay fetches those windows again. Damage before a cleanly closed
 * segment is not a crash's doing; the store then refuses to open rather than
 * throw away intact history. */
static int rs__repair(relay_store_t *s, uint64_t *prev_of_dropped, char *errstr,
                      size_t errlen) {
  size_t i = 0;
  for (; i < s->nsegs; i++) {
    rs_seg_t *seg = s->segs[i];
    if (seg->dmg_off != UINT64_MAX)
      break;
    /* Segments are created one after another and deleted oldest first, so
     * no crash leaves a hole between two of them: a missing segment is an
     * operator's doing, and cutting the log there would throw away intact
     * records. */
    if (i > 0 && seg->prev_scn != s->segs[i - 1]->last_scn) {
      rs__errstr(errstr, errlen,
                 "%s: begins after SCN %" PRIu64 " but %s ends at SCN %" PRIu64
                 ": a segment is missing between them; refusing to open "
                 "(docs/log-store.md, Repair by hand)",
                 seg->path, seg->prev_scn, s->segs[i - 1]->path,
                 s->segs[i - 1]->last_scn);
      return RELAY_STORE_ECORRUPT;
    }
  }
  if (i == s->nsegs)
    return 0;
  rs_seg_t *bad = s->segs[i];
  for (size_t j = i + 1; j < s->nsegs; j++) {
    if (s->segs[j]->sealed) {
      rs__errstr(errstr, errlen,
                 "%s: %s at offset %" PRIu64 "; %zu later segment(s) from %s "
                 "were closed cleanly, so this is not a torn tail and the "
                 "store will not drop them: repair by hand (docs/log-store.md)",
                 bad->path, bad->dmg_why, bad->dmg_off, s->nsegs - j,
                 s->segs[j]->path);
      return RELAY_STORE_ECORRUPT;
    }
  }
  char *path = hd_strdup(bad->path);
  const char *why = bad->dmg_why;
  uint64_t cut = bad->dmg_off;
  uint64_t dropped = 0;
  size_t dropped_segs = 0;
  int rc = 0;
  struct stat st;
  for (size_t j = i + 1; j < s->nsegs; j++) {
    if (fstat(s->segs[j]->fd, &st) == 0)
      dropped += (uint64_t)st.st_size;
    if (rc == 0)
      rc = rs__drop_files(s->segs[j], errstr, errlen);
    rs__seg_free(s->segs[j]);
    dropped_segs++;
  }
  s->nsegs = i + 1;
  if (rc != 0)
    goto out;
  uint64_t fsize = fstat(bad->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  if (cut < RS_SEG_HDR) {
    /* No usable header: nothing in the file can be trusted. Its name still
     * tells where it began, which open keeps as the store's base. */
    *prev_of_dropped = bad->prev_scn;
    cut = 0;
    rc = rs__drop_files(bad, errstr, errlen);
    rs__seg_free(bad);
    s->nsegs = i;
  } else if (ftruncate(bad->fd, (off_t)cut) != 0 ||
             (s->o.fsync != HD_FSYNC_NONE && fdatasync(bad->fd) != 0)) {
    rc = -errno;
    rs__errstr(errstr, errlen, "%s: cannot truncate at offset %" PRIu64 ": %s",
               path, cut, strerror(errno));
  }
  if (rc != 0)
    goto out;
  dropped += fsize - cut;
  if (dropped_segs == 0)
    hd_log(HD_LL_WARN, "store", "torn tail truncated",
           "file=%s offset=%" PRIu64 " dropped=%" PRIu64 " reason=\"%s\"", path,
           cut, dropped, why);
  else
    hd_log(HD_LL_ERROR, "store", "log truncated before its newest segment",
           "file=%s offset=%" PRIu64 " dropped=%" PRIu64
           " dropped_segments=%zu reason=\"%s\"",
           path, cut, dropped, dropped_segs, why);
out:
  free(path);
  return rc;
}

static void rs__free(relay_store_t *s) {
  for (size_t i = 0; i < s->nsegs; i++)
    rs__seg_free(s->segs[i]);
  free(s->segs);
  if (s->dir_fd >= 0)
    close(s->dir_fd);
  if (s->lock_fd >= 0)
    close(s->lock_fd); /* releases the flock */
  pthread_mutex_destroy(&s->mu);
  free(s->pend);
  free(s->dir);
  free(s);
}

int relay_store_open(const relay_store_opts_t *o, relay_store_t **out,
                     char *errstr, size_t errlen) {
  *out = NULL;
  if (o == NULL || o->dir == NULL || o->dir[0] == '\0') {
    rs__errstr(errstr, errlen, "log store: no directory given");
    return RELAY_STORE_EBADOPT;
  }
  if (o->fsync != HD_FSYNC_WINDOW && o->fsync != HD_FSYNC_INTERVAL &&
      o->fsync != HD_FSYNC_NONE) {
    rs__errstr(errstr, errlen, "%s: unknown fsync policy %d", o->dir, o->fsync);
    return RELAY_STORE_EBADOPT;
  }
  relay_store_t *s = hd_calloc(1, sizeof(*s));
  s->o = *o;
  if (s->o.segment_bytes == 0)
    s->o.segment_bytes = RELAY_STORE_DEFAULT_SEGMENT_BYTES;
  if (s->o.index_bytes == 0)
    s->o.index_bytes = RELAY_STORE_DEFAULT_INDEX_BYTES;
  if (s->o.fsync_interval_ms == 0)
    s->o.fsync_interval_ms = 100;
  s->dir = hd_strdup(o->dir);
  for (size_t l = strlen(s->dir); l > 1 && s->dir[l - 1] == '/'; l--)
    s->dir[l - 1] = '\0';
  s->o.dir = s->dir;
  s->dir_fd = -1;
  s->lock_fd = -1;
  pthread_mutex_init(&s->mu, NULL);
  int sync = s->o.fsync != HD_FSYNC_NONE;
  uint64_t *names = NULL;
  size_t nnames = 0;
  int rc;

  if (s->o.segment_bytes < 1024) {
    rs__errstr(errstr, errlen,
               "%s: segment_bytes %" PRIu64 " is below the minimum of 1024",
               s->dir, s->o.segment_bytes);
    rc = RELAY_STORE_EBADOPT;
    goto fail;
  }
  if ((rc = rs__mkdirs(s->dir)) != 0) {
    rs__errstr(errstr, errlen, "%s: cannot create directory: %s", s->dir,
               strerror(-rc));
    goto fail;
  }
  s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dir_fd < 0) {
    rc = -errno;
    rs__errstr(errstr, errlen, "%s: cannot open directory: %s", s->dir,
               strerror(errno));
    goto fail;
  }
  if ((rc = rs__lock(s, errstr, errlen)) != 0)
    goto fail;
  if ((rc = rs__list(s, &names, &nnames, errstr, errlen)) != 0)
    goto fail;
  for (size_t i = 0; i < nnames; i++) {
    rs_seg_t *seg = rs__seg_new(s, names[i]);
    rs__segs_push(s, seg);
    if ((rc = rs__load(s, seg, i + 1 == nnames, errstr, errlen)) != 0)
      goto fail;
  }
  uint64_t base = s->o.base_scn;
  if ((rc = rs__repair(s, &base, errstr, errlen)) != 0)
    goto fail;

  for (size_t i = 0; i < s->nsegs; i++) {
    rs_seg_t *seg = s->segs[i];
    s->bytes += seg->size + seg->idx_size;
    s->count += seg->count;
  }
  /* Segments before the newest are closed: give the ones that were verified
   * here their trailer, so that the next open trusts them. */
  for (size_t i = 0; i + 1 < s->nsegs; i++) {
    rs_seg_t *seg = s->segs[i];
    seg->closed = 1;
    if (!seg->sealed && (rc = rs__idx_write(s, seg, 1, sync)) != 0) {
      rs__errstr(errstr, errlen, "%s", s->errmsg);
      goto fail;
    }
    free(seg->ient);
    seg->ient = NULL;
    seg->nient = seg->ient_cap = 0;
  }
  if (s->nsegs == 0) {
    rs_seg_t *seg;
    if ((rc = rs__seg_create(s, base, sync, &seg)) != 0) {
      rs__errstr(errstr, errlen, "%s", s->errmsg);
      goto fail;
    }
    rs__segs_push(s, seg);
    s->bytes += seg->size + seg->idx_size;
  } else {
    /* The newest segment goes on as the active one. Its index is rewritten
     * without a trailer (an index with a trailer claims a final size) and
     * reopened for appending entries. */
    rs_seg_t *seg = rs__active(s);
    if (seg->ient == NULL && seg->count > 0 &&
        rs__idx_load_sealed(seg, &seg->ient, &seg->nient) != 0) {
      /* Trusted at load, unreadable now: verify the records instead. */
      seg->count = 0;
      seg->last_scn = seg->prev_scn;
      if ((rc = rs__scan(s, seg, RS_SEG_HDR, seg->size)) != 0 ||
          seg->dmg_off != UINT64_MAX) {
        rs__errstr(errstr, errlen, "%s: %s at offset %" PRIu64, seg->path,
                   seg->dmg_why ? seg->dmg_why : strerror(-rc), seg->dmg_off);
        rc = rc ? rc : RELAY_STORE_ECORRUPT;
        goto fail;
      }
    }
    seg->ient_cap = seg->nient;
    if ((rc = rs__idx_write(s, seg, 0, sync)) != 0) {
      rs__errstr(errstr, errlen, "%s", s->errmsg);
      goto fail;
    }
    seg->idx_fd = open(seg->idx_path, O_WRONLY | O_CLOEXEC);
    if (seg->idx_fd < 0) {
      rc = -errno;
      rs__errstr(errstr, errlen, "%s: cannot open: %s", seg->idx_path,
                 strerror(errno));
      goto fail;
    }
  }
  if (sync && fsync(s->dir_fd) != 0) {
    rc = -errno;
    rs__errstr(errstr, errlen, "%s: fsync of directory failed: %s", s->dir,
               strerror(errno));
    goto fail;
  }
  atomic_store(&s->last_sync_ms, rs__now_mono_ms());
  free(names);
  hd_log(HD_LL_INFO, "store", "opened",
         "dir=%s segments=%zu records=%" PRIu64 " base_scn=%" PRIu64
         " last_scn=%" PRIu64 " bytes=%" PRIu64,
         s->dir, s->nsegs, s->count, s->segs[0]->prev_scn,
         rs__active(s)->last_scn, s->bytes);
  *out = s;
  return 0;
fail:
  free(names);
  rs__free(s);
  return rc;
}

/* ---- appending ---------------------------------------------------------- */

/* Closes the active segment (synced, index with trailer) and starts the next
 * one. A failure leaves the current segment active; the next append tries
 * again. */
static int rs__roll(relay_store_t *s) {
  rs_seg_t *old = rs__active(s);
  int sync = s->o.fsync != HD_FSYNC_NONE;
  /* Syncing a closed segment once costs little, and it means that a crash
   * can only ever tear the newest segment (docs/log-store.md, Recovery). */
  if (sync && fdatasync(old->fd) != 0) {
    atomic_store(&s->broken, 1);
    return rs__fail(s, -errno, 1, "%s: fdatasync failed: %s", old->path,
                    strerror(errno));
  }
  int rc = rs__idx_write(s, old, 1, sync);
  if (rc != 0)
    return rc;
  rs_seg_t *seg;
  if ((rc = rs__seg_create(s, old->last_scn, sync, &seg)) != 0)
    return rc;
  seg->last_ts = old->last_ts;
  pthread_mutex_lock(&s->mu);
  old->closed = 1;
  /* Readers of a closed segment load its index from its file. */
  free(old->ient);
  old->ient = NULL;
  old->nient = old->ient_cap = 0;
  rs__segs_push(s, seg);
  s->bytes += seg->size + seg->idx_size;
  pthread_mutex_unlock(&s->mu);
  hd_log(HD_LL_DEBUG, "store", "segment rolled",
         "closed=%s bytes=%" PRIu64 " records=%" PRIu64 " next=%s", old->path,
         old->size, old->count, seg->path);
  return 0;
}

/* Forgets the open window's records (written, never published). */
static void rs__grp_abort(relay_store_t *s, rs_seg_t *seg) {
  if (!s->grp_open)
    return;
  if (ftruncate(seg->fd, (off_t)s->grp_start) != 0)
    atomic_store(&s->broken, 1);
  s->grp_open = 0;
  s->npend = 0;
}

int relay_store_append(relay_store_t *s, uint64_t scn, uint64_t ts_ms,
                       const void *data, size_t len) {
  return relay_store_append_chunk(s, scn, ts_ms, data, len, 0);
}

int relay_store_append_chunk(relay_store_t *s, uint64_t scn, uint64_t ts_ms,
                             const void *data, size_t len, int more) {
  if (atomic_load(&s->broken))
    return rs__fail(s, RELAY_STORE_EBROKEN, 0,
                    "%s: an earlier write or sync failed; reopen the store",
                    s->dir);
  if (len > RELAY_STORE_MAX_RECORD)
    return rs__fail(s, RELAY_STORE_ETOO_BIG, 0,
                    "record of SCN %" PRIu64 " has %zu bytes; the maximum is "
                    "%u",
                    scn, len, RELAY_STORE_MAX_RECORD);
  /* The owner is the only thread that changes the segment list, so it reads
   * it without the lock. */
  rs_seg_t *seg = rs__active(s);
  if (s->grp_open && scn != s->grp_scn)
    return rs__fail(s, RELAY_STORE_ESCN_ORDER, 0,
                    "SCN %" PRIu64 " while the window of SCN %" PRIu64
                    " still waits for its last chunk",
                    scn, s->grp_scn);
  if (!s->grp_open && scn <= seg->last_scn)
    return rs__fail(s, RELAY_STORE_ESCN_ORDER, 0,
                    "SCN %" PRIu64 " is not greater than the newest stored "
                    "SCN %" PRIu64,
                    scn, seg->last_scn);
  uint64_t rec_len = RS_REC_HDR + (uint64_t)len;
  int rc;
  /* A window never spans segments: a segment rolls only between windows
   * (a window larger than segment_bytes gets a segment of its own). */
  if (!s->grp_open && seg->count > 0 &&
      seg->size + rec_len > s->o.segment_bytes) {
    if ((rc = rs__roll(s)) != 0)
      return rc;
    seg = rs__active(s);
  }

  uint8_t hdr[RS_REC_HDR];
  rs__put32(hdr, (uint32_t)len | (more ? RS_MORE : 0));
  rs__put64(hdr + 8, scn);
  rs__put64(hdr + 16, ts_ms);
  uint32_t crc = rs__crc_upd(RS_CRC_INIT, hdr, 4);
  crc = rs__crc_upd(crc, hdr + 8, RS_REC_HDR - 8);
  crc = rs__crc_upd(crc, data, len) ^ RS_CRC_INIT;
  rs__put32(hdr + 4, crc);
  /* Header and payload in one system call: no copy of the payload, and the
   * record reaches the page cache in one piece. */
  struct iovec iov[2] = {{hdr, RS_REC_HDR}, {(void *)data, len}};
  uint64_t off = s->grp_open ? s->grp_end : seg->size;
  if ((rc = rs__pwritev_full(seg->fd, iov, 2, off)) != 0) {
    /* Take back what part of the record (and of its window) was written,
     * so that the segment still ends with a whole window and the store
     * stays usable (ENOSPC is worth a retry). */
    int was_open = s->grp_open;
    rs__grp_abort(s, seg);
    if (!was_open && ftruncate(seg->fd, (off_t)off) != 0)
      atomic_store(&s->broken, 1);
    return rs__fail(s, rc, 1,
                    "%s: write of SCN %" PRIu64 " at offset %" PRIu64
                    " failed: %s",
                    seg->path, scn, off, strerror(-rc));
  }
  if (!s->grp_open && more) {
    s->grp_open = 1;
    s->grp_scn = scn;
    s->grp_start = off;
    s->npend = 0;
  }
  if (s->grp_open) {
    if (s->npend == s->pend_cap) {
      s->pend_cap = s->pend_cap ? s->pend_cap * 2 : 64;
      s->pend = hd_realloc(s->pend, s->pend_cap * sizeof(*s->pend));
    }
    s->pend[s->npend++] = (rs_pend_t){off, ts_ms, (uint32_t)len};
    s->grp_end = off + rec_len;
    if (more)
      return 0; /* published with the window's last chunk */
  }
  uint64_t first_off = s->grp_open ? s->grp_start : off;

  /* The index entry is written with no sync: recovery checks entries
   * against the records they point to. Every index_bytes of records, so
   * one small write per many records; only at a window's first record. */
  int ient = seg->nient == 0 ||
             first_off >= seg->ient[seg->nient - 1].off + s->o.index_bytes;
  int ient_written = 0;
  if (ient && seg->idx_fd >= 0) {
    uint8_t e[RS_IENT];
    rs__put64(e, scn);
    rs__put64(e + 8, first_off);
    rs__put64(e + 16, seg->count);
    if (rs__pwrite_full(seg->idx_fd, e, sizeof(e), seg->idx_size) == 0) {
      ient_written = 1;
    } else if (!seg->idx_failed) {
      /* Not fatal: the entries stay in memory for the trailer, and without
       * them on disk recovery scans from an earlier point. */
      seg->idx_failed = 1;
      hd_log(HD_LL_WARN, "store", "index entry write failed",
             "file=%s offset=%" PRIu64 " error=\"%s\"", seg->idx_path,
             seg->idx_size, strerror(errno));
    }
  }

  if (s->o.fsync == HD_FSYNC_WINDOW) {
    if (fdatasync(seg->fd) != 0) {
      /* After a failed fsync the kernel may have dropped the dirty pages:
       * what is on disk is unknown until recovery reads it. */
      atomic_store(&s->broken, 1);
      return rs__fail(s, -errno, 1,
                      "%s: fdatasync after SCN %" PRIu64 " failed: %s",
                      seg->path, scn, strerror(errno));
    }
  } else {
    atomic_store(&s->dirty, 1);
    if (s->o.fsync == HD_FSYNC_INTERVAL &&
        rs__now_mono_ms() - atomic_load(&s->last_sync_ms) >=
            s->o.fsync_interval_ms &&
        relay_store_sync(s) != 0)
      return rs__fail(s, RELAY_STORE_EBROKEN, 0,
                      "%s: fdatasync after SCN %" PRIu64 " failed", seg->path,
                      scn);
  }

  /* Publish: from here on readers see the record (or the whole window). */
  pthread_mutex_lock(&s->mu);
  if (s->grp_open) {
    for (size_t i = 0; i < s->npend; i++) {
      rs_pend_t *pe = &s->pend[i];
      rs_rec_t rec = {scn, pe->ts, pe->len, NULL, i + 1 < s->npend};
      rs__seg_note(s, seg, pe->off, &rec);
      s->bytes += RS_REC_HDR + (uint64_t)pe->len;
      s->count++;
    }
  } else {
    rs_rec_t rec = {scn, ts_ms, (uint32_t)len, NULL, 0};
    rs__seg_note(s, seg, off, &rec);
    s->bytes += rec_len;
    s->count++;
  }
  if (ient_written) {
    seg->idx_size += RS_IENT;
    s->bytes += RS_IENT;
  }
  pthread_mutex_unlock(&s->mu);
  s->grp_open = 0;
  s->npend = 0;
  return 0;
}

int relay_store_sync(relay_store_t *s) {
  if (atomic_load(&s->broken))
    return RELAY_STORE_EBROKEN;
  if (!atomic_exchange(&s->dirty, 0))
    return 0;
  pthread_mutex_lock(&s->mu);
  rs_seg_t *seg = rs__active(s);
  seg->refs++;
  pthread_mutex_unlock(&s->mu);
  /* Records of the segment before were synced when it was rolled. */
  int rc = fdatasync(seg->fd) != 0 ? -errno : 0;
  if (rc != 0) {
    atomic_store(&s->broken, 1);
    hd_log(HD_LL_ERROR, "store", "fdatasync failed", "file=%s error=\"%s\"",
           seg->path, strerror(-rc));
  } else {
    atomic_store(&s->last_sync_ms, rs__now_mono_ms());
  }
  rs__seg_unref(s, seg);
  return rc ? RELAY_STORE_EBROKEN : 0;
}

int relay_store_dirty(relay_store_t *s) {
  return atomic_load(&s->dirty);
}

void relay_store_close(relay_store_t *s) {
  if (s == NULL)
    return;
  if (s->readers > 0) {
    fprintf(stderr, "relay_store_close: %d reader(s) of %s still open\n",
            s->readers, s->dir);
    abort();
  }
  /* A window still waiting for its last chunk was never published: its
   * records go, so that the segment ends with a whole window. */
  rs__grp_abort(s, rs__active(s));
  if (!atomic_load(&s->broken)) {
    /* The active segment's index gets its trailer (it is written whole,
     * which also repairs a failed entry write). With fsync = none nothing
     * is synced, not even here: "never" means never. */
    rs_seg_t *seg = rs__active(s);
    int sync = s->o.fsync != HD_FSYNC_NONE;
    if (sync && fdatasync(seg->fd) != 0)
      hd_log(HD_LL_ERROR, "store", "fdatasync failed", "file=%s error=\"%s\"",
             seg->path, strerror(errno));
    else if (rs__idx_write(s, seg, 1, sync) == 0 && sync &&
             fsync(s->dir_fd) != 0)
      hd_log(HD_LL_ERROR, "store", "fsync of directory failed",
             "dir=%s error=\"%s\"", s->dir, strerror(errno));
  }
  rs__free(s);
}

/* ---- state -------------------------------------------------------------- */

uint64_t relay_store_first_scn(relay_store_t *s) {
  uint64_t v = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nsegs && v == 0; i++)
    if (s->segs[i]->count > 0)
      v = s->segs[i]->first_scn;
  pthread_mutex_unlock(&s->mu);
  return v;
}

uint64_t relay_store_last_scn(relay_store_t *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t v = rs__active(s)->last_scn;
  pthread_mutex_unlock(&s->mu);
  return v;
}

uint64_t relay_store_base_scn(relay_store_t *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t v = s->segs[0]->prev_scn;
  pthread_mutex_unlock(&s->mu);
  return v;
}

uint64_t relay_store_last_ts(relay_store_t *s) {
  uint64_t v = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = s->nsegs; i-- > 0;)
    if (s->segs[i]->count > 0) {
      v = s->segs[i]->last_ts;
      break;
    }
  pthread_mutex_unlock(&s->mu);
  return v;
}

uint64_t relay_store_bytes(relay_store_t *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t v = s->bytes;
  pthread_mutex_unlock(&s->mu);
  return v;
}

uint64_t relay_store_count(relay_store_t *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t v = s->count;
  pthread_mutex_unlock(&s->mu);
  return v;
}

size_t relay_store_segments(relay_store_t *s) {
  pthread_mutex_lock(&s->mu);
  size_t v = s->nsegs;
  pthread_mutex_unlock(&s->mu);
  return v;
}

const char *relay_store_errmsg(relay_store_t *s) {
  return s->errmsg;
}

int relay_store_last(relay_store_t *s, void **data, size_t *len) {
  *data = NULL;
  *len = 0;
  rs_seg_t *seg = NULL;
  uint64_t off = 0, end = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = s->nsegs; i-- > 0;)
    if (s->segs[i]->count > 0) {
      seg = s->segs[i];
      seg->refs++;
      off = seg->last_off;
      end = seg->size;
      break;
    }
  pthread_mutex_unlock(&s->mu);
  if (seg == NULL)
    return rs__fail(s, RELAY_STORE_EEMPTY, 0, "%s: the store holds no record",
                    s->dir);
  rs_cur_t c = {0};
  rs__cur_init(&c, seg->fd);
  rs_rec_t rec;
  const char *why = NULL;
  int rc = rs__rec_read(&c, off, end, &rec, &why);
  if (rc == 0) {
    *data = hd_malloc(rec.len);
    memcpy(*data, rec.data, rec.len);
    *len = rec.len;
  } else {
    rs__fail(s, rc, 1, "%s: %s at offset %" PRIu64, seg->path,
             rc == RELAY_STORE_ECORRUPT ? why : strerror(-rc), off);
  }
  rs__cur_free(&c);
  rs__seg_unref(s, seg);
  return rc;
}

/* ---- retention ---------------------------------------------------------- */

int relay_store_retain(relay_store_t *s, uint64_t now_ms) {
  int n = 0;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    rs_seg_t *seg = s->nsegs > 1 ? s->segs[0] : NULL;
    const char *why = NULL;
    if (seg != NULL && s->o.retention_ms > 0 && now_ms > s->o.retention_ms &&
        seg->last_ts < now_ms - s->o.retention_ms)
      why = "age";
    else if (seg != NULL && s->o.retention_bytes > 0 &&
             s->bytes > s->o.retention_bytes)
      why = "bytes";
    if (why == NULL) {
      pthread_mutex_unlock(&s->mu);
      break;
    }
    /* Out of the list first: from now on no reader can start in it, and the
     * next segment's header (its previous SCN) is the store's base, the
     * exact limit of what readers may ask for. */
    memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof(*s->segs));
    s->nsegs--;
    s->bytes -= seg->size + seg->idx_size;
    s->count -= seg->count;
    pthread_mutex_unlock(&s->mu);
    int rc = 0;
    if (unlink(seg->path) != 0 && errno != ENOENT)
      rc = rs__fail(s, -errno, 1,
                    "%s: cannot delete: %s (it is back at the next open)",
                    seg->path, strerror(errno));
    else if (unlink(seg->idx_path) != 0 && errno != ENOENT)
      hd_log(HD_LL_WARN, "store", "cannot delete index", "file=%s error=\"%s\"",
             seg->idx_path, strerror(errno));
    if (rc == 0)
      hd_log(HD_LL_INFO, "store", "segment deleted",
             "file=%s last_scn=%" PRIu64 " last_ts=%" PRIu64 " bytes=%" PRIu64
             " reason=%s",
             seg->path, seg->last_scn, seg->last_ts, seg->size, why);
    rs__seg_unref(s, seg);
    if (rc != 0)
      return rc;
    n++;
  }
  /* Not for correctness (a segment that comes back after a crash is simply
   * deleted again) but so that freed space stays freed. */
  if (n > 0 && s->o.fsync != HD_FSYNC_NONE)
    fsync(s->dir_fd);
  return n;
}

/* ---- readers ------------------------------------------------------------ */

/* The segment after seg in the list, referenced, or NULL. Under mu. */
static rs_seg_t *rs__seg_after(relay_store_t *s, const rs_seg_t *seg) {
  size_t lo = 0, hi = s->nsegs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->segs[mid]->prev_scn <= seg->prev_scn)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == s->nsegs)
    return NULL;
  s->segs[lo]->refs++;
  return s->segs[lo];
}

int relay_store_reader_open(relay_store_t *s, uint64_t after_scn,
                            relay_store_reader_t **out) {
  *out = NULL;
  pthread_mutex_lock(&s->mu);
  if (after_scn < s->segs[0]->prev_scn) {
    pthread_mutex_unlock(&s->mu);
    return RELAY_STORE_ETOO_OLD;
  }
  /* The last segment whose previous SCN is <= after_scn holds the first
   * record > after_scn, or ends right before it. */
  size_t lo = 0, hi = s->nsegs;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->segs[mid]->prev_scn <= after_scn)
      lo = mid;
    else
      hi = mid;
  }
  rs_seg_t *seg = s->segs[lo];
  seg->refs++;
  s->readers++;
  int closed = seg->closed;
  uint64_t pos = RS_SEG_HDR;
  if (!closed)
    pos = rs__ient_find(seg->ient, seg->nient, after_scn);
  pthread_mutex_unlock(&s->mu);

  if (closed) {
    rs_ient_t *e;
    size_t n;
    if (rs__idx_load_sealed(seg, &e, &n) == 0) {
      pos = rs__ient_find(e, n, after_scn);
      free(e);
    } else {
      hd_log(HD_LL_WARN, "store", "index unusable, reading segment from start",
             "file=%s", seg->idx_path);
    }
  }
  relay_store_reader_t *r = hd_calloc(1, sizeof(*r));
  r->s = s;
  r->seg = seg;
  r->pos = pos;
  r->skip = after_scn;
  rs__cur_init(&r->cur, seg->fd);
  *out = r;
  return 0;
}

__attribute__((format(printf, 3, 4))) static int
rs__rfail(relay_store_reader_t *r, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
  va_end(ap);
  r->err = code;
  /* A consumer that fell behind retention is the consumer's problem (it
   * needs a bootstrap); damage on disk is the relay's. */
  hd_log(code == RELAY_STORE_ETOO_OLD ? HD_LL_WARN : HD_LL_ERROR, "store",
         "reader error", "detail=\"%s\"", r->errmsg);
  return code;
}

int relay_store_reader_next(relay_store_reader_t *r, uint64_t *scn,
                            uint64_t *ts_ms, const void **data, size_t *len) {
  relay_store_t *s = r->s;
  if (r->err)
    return r->err;
  for (;;) {
    rs_seg_t *seg = r->seg, *next = NULL;
    pthread_mutex_lock(&s->mu);
    uint64_t end = seg->size;
    int closed = seg->closed;
    if (r->pos >= end && closed)
      next = rs__seg_after(s, seg);
    pthread_mutex_unlock(&s->mu);

    if (r->pos < end) {
      rs_rec_t rec;
      const char *why = NULL;
      int rc = rs__rec_read(&r->cur, r->pos, end, &rec, &why);
      if (rc == 0 && r->nread > 0 && r->prev_more && rec.scn != r->prev) {
        why = "chunk of a window with another SCN";
        rc = RELAY_STORE_ECORRUPT;
      } else if (rc == 0 && r->nread > 0 && !r->prev_more &&
                 rec.scn <= r->prev) {
        why = "SCN not greater than the record before";
        rc = RELAY_STORE_ECORRUPT;
      }
      if (rc != 0)
        return rs__rfail(r, rc, "%s: %s at offset %" PRIu64, seg->path,
                         rc == RELAY_STORE_ECORRUPT ? why : strerror(-rc),
                         r->pos);
      r->pos += RS_REC_HDR + rec.len;
      r->prev = rec.scn;
      r->prev_more = rec.more;
      r->nread++;
      if (rec.scn <= r->skip)
        continue; /* before the start point: the seek lands on an index
                     entry at or before it */
      *scn = rec.scn;
      *ts_ms = rec.ts;
      *data = rec.data;
      *len = rec.len;
      return 0;
    }
    if (!closed || next == NULL)
      return 1;
    /* Segments continue one another: a gap means retention deleted the one
     * after ours while we were reading, and skipping it would lose records. */
    if (next->prev_scn != seg->last_scn) {
      uint64_t gap = seg->last_scn;
      rs__seg_unref(s, next);
      return rs__rfail(r, RELAY_STORE_ETOO_OLD,
                       "%s: records after SCN %" PRIu64
                       " were deleted by retention while the reader was at "
                       "offset %" PRIu64 " of %s",
                       s->dir, gap, r->pos, seg->path);
    }
    rs__seg_unref(s, seg);
    r->seg = next;
    r->pos = RS_SEG_HDR;
    rs__cur_init(&r->cur, next->fd);
  }
}

int relay_store_reader_more(const relay_store_reader_t *r) {
  return r->prev_more;
}

const char *relay_store_reader_errmsg(relay_store_reader_t *r) {
  return r->errmsg;
}

void relay_store_reader_close(relay_store_reader_t *r) {
  if (r == NULL)
    return;
  relay_store_t *s = r->s;
  rs__seg_unref(s, r->seg);
  pthread_mutex_lock(&s->mu);
  s->readers--;
  pthread_mutex_unlock(&s->mu);
  rs__cur_free(&r->cur);
  free(r);
}
