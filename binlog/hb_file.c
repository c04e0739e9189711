/*
 * hb_file.c - binlog files into the decoder.
 *
 * One reader serves plain files (read(2)), gzip files (zlib's gzread) and
 * memory (tests, the fuzzer): a window of 4 MiB is refilled as events are
 * consumed, and grows only for an event larger than itself.
 */
#include "hb_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "hb_event.h"
#include "hb_int.h"
#include "hd_mem.h"

#define READ_CHUNK ((size_t)4 << 20)

typedef struct {
  int fd;             /* plain file, or -1 */
  gzFile gz;          /* gzip file, or NULL */
  const uint8_t *mem; /* memory source, or NULL */
  size_t memlen, mempos;
  uint8_t *buf;           /* owned window (not for memory sources) */
  size_t cap, start, end; /* valid bytes are buf[start..end) */
  int eof;
} src_t;

/* Fill so that at least need bytes are buffered, if the source has them.
 * @returns bytes available (may be less than need at EOF), or -errno. */
static ssize_t src_fill(src_t *s, size_t need) {
  if (s->mem) {
    size_t avail = s->memlen - s->mempos;
    return (ssize_t)(avail < need ? avail : need);
  }
  while (s->end - s->start < need && !s->eof) {
    if (s->start > 0 && s->cap - s->end < READ_CHUNK / 2) {
      memmove(s->buf, s->buf + s->start, s->end - s->start);
      s->end -= s->start;
      s->start = 0;
    }
    if (s->cap - s->end < need - (s->end - s->start) || s->cap == s->end) {
      size_t ncap = s->cap ? s->cap : READ_CHUNK;
      while (ncap - s->end < need - (s->end - s->start) + READ_CHUNK / 4)
        ncap *= 2;
      s->buf = hd_realloc(s->buf, ncap);
      s->cap = ncap;
    }
    size_t room = s->cap - s->end;
    ssize_t r;
    if (s->gz) {
      int gr = gzread(s->gz, s->buf + s->end,
                      (unsigned)(room > (1u << 30) ? (1u << 30) : room));
      if (gr < 0) {
        int en;
        gzerror(s->gz, &en);
        return en == Z_ERRNO ? -errno : -EIO;
      }
      r = gr;
    } else {
      r = read(s->fd, s->buf + s->end, room);
      if (r < 0) {
        if (errno == EINTR)
          continue;
        return -errno;
      }
    }
    if (r == 0)
      s->eof = 1;
    s->end += (size_t)r;
  }
  size_t avail = s->end - s->start;
  return (ssize_t)(avail < need ? avail : need);
}

static const uint8_t *src_ptr(const src_t *s) {
  return s->mem ? s->mem + s->mempos : s->buf + s->start;
}

static void src_consume(src_t *s, size_t n) {
  if (s->mem)
    s->mempos += n;
  else
    s->start += n;
}

/* Point error messages at an offset the decoder has not seen yet. */
static void at(hb_decoder_t *dec, uint64_t off) {
  dec->ev_pos = off;
  dec->inner = 0;
}

/* Check the magic, then frame events by their size field: a size below
 * the header or above the limit is corrupt, a file that ends early is
 * truncated, and each complete event goes to the decoder with its offset
 * (the sum of the sizes before it). */
static int run(hb_decoder_t *dec, src_t *s, const hb_read_opts_t *o) {
  uint64_t from = o ? o->from_pos : 0;
  size_t max_event =
      o && o->max_event ? o->max_event : ((size_t)1 << 30) + 65536;
  ssize_t r = src_fill(s, 4);
  at(dec, 0);
  if (r < 0)
    return hb__fail(dec, (int)r, "read error: %s", strerror((int)-r));
  const uint8_t *m = src_ptr(s);
  if (r < 4 || memcmp(m,
                      "\xfe"
                      "bin",
                      4) != 0)
    return hb__fail(dec, HB_ENOT_BINLOG,
                    "not a binlog file: the magic bytes are not fe 62 69 "
                    "6e%s",
                    r < 4 ? " (file shorter than 4 bytes)" : "");
  src_consume(s, 4);
  uint64_t off = 4;
  int resynced = from <= 4;
  if (o && o->from_is_event && s->mem && from > 4 && from <= s->memlen &&
      s->memlen >= 4 + HB_EVENT_HEADER_LEN) {
    /* The format description first, then straight to from. */
    uint32_t size = hb_event_size(src_ptr(s));
    if (size < HB_EVENT_HEADER_LEN || size > s->memlen - 4) {
      at(dec, 4);
      return hb__fail(dec, HB_ECORRUPT,
                      "event size %u is out of range (19 to %zu)", size,
                      max_event);
    }
    int e = hb_decoder_feed(dec, src_ptr(s), size, 4);
    if (e < 0)
      return e;
    s->mempos = (size_t)from;
    off = from;
    hb_decoder_resync(dec);
    resynced = 1;
  }
  for (;;) {
    r = src_fill(s, HB_EVENT_HEADER_LEN);
    if (r < 0) {
      at(dec, off);
      return hb__fail(dec, (int)r, "read error: %s", strerror((int)-r));
    }
    if (r == 0)
      break;
    if (r < HB_EVENT_HEADER_LEN) {
      at(dec, off);
      return hb__fail(dec, HB_ETRUNCATED,
                      "binlog ends inside an event header (%zd of 19 bytes)",
                      r);
    }
    const uint8_t *h = src_ptr(s);
    uint32_t size = hb_event_size(h);
    if (size < HB_EVENT_HEADER_LEN || size > max_event) {
      at(dec, off);
      return hb__fail(dec, HB_ECORRUPT,
                      "event size %u is out of range (19 to %zu)", size,
                      max_event);
    }
    r = src_fill(s, size);
    if (r < 0) {
      at(dec, off);
      return hb__fail(dec, (int)r, "read error: %s", strerror((int)-r));
    }
    if ((size_t)r < size) {
      at(dec, off);
      return hb__fail(dec, HB_ETRUNCATED,
                      "binlog ends inside an event (%zd of %u bytes)", r, size);
    }
    const uint8_t *ev = src_ptr(s);
    if (off >= from || hb_event_type(ev) == HB_EV_FDE) {
      if (!resynced && off >= from) {
        /* The start may cut a transaction: drop its rest. */
        hb_decoder_resync(dec);
        resynced = 1;
      }
      int e = hb_decoder_feed(dec, ev, size, off);
      if (e < 0)
        return e;
    }
    src_consume(s, size);
    off += size;
  }
  dec->ev_pos = off;
  return hb_decoder_finish(dec);
}

/* The decoder names the file as the server did: no directories, no .gz. */
static void set_name(hb_decoder_t *dec, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  char *name = hd_strndup(base, n);
  if (n > 3 && strcmp(name + n - 3, ".gz") == 0)
    name[n - 3] = '\0';
  hb_decoder_set_file(dec, name);
  free(name);
}

int hb_read_file(hb_decoder_t *dec, const char *path, const hb_read_opts_t *o) {
  set_name(dec, path);
  src_t s = {.fd = -1};
  s.fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s.fd < 0) {
    int e = -errno;
    dec->ev_pos = 0;
    return hb__fail(dec, e, "cannot open: %s", strerror(-e));
  }
  /* gzip by content, not by name: a renamed file still reads. */
  uint8_t magic[2];
  ssize_t n = pread(s.fd, magic, 2, 0);
  if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    s.gz = gzdopen(s.fd, "rb");
    if (s.gz == NULL) {
      close(s.fd);
      dec->ev_pos = 0;
      return hb__fail(dec, -ENOMEM, "cannot open as gzip");
    }
    gzbuffer(s.gz, 1 << 20);
    s.fd = -1; /* owned by gz now */
  }
  int r = run(dec, &s, o);
  if (s.gz)
    gzclose(s.gz);
  if (s.fd >= 0)
    close(s.fd);
  free(s.buf);
  return r;
}

int hb_read_buffer(hb_decoder_t *dec, const char *name, const uint8_t *buf,
                   size_t len, const hb_read_opts_t *o) {
  static const uint8_t empty[1];
  set_name(dec, name);
  /* A NULL buffer of length 0 is valid input; pointers into it are not. */
  src_t s = {.fd = -1, .mem = buf ? buf : empty, .memlen = buf ? len : 0};
  return run(dec, &s, o);
}
