/*
 * hb_int.h - internals of the binlog decoder, for the binlog/ sources only.
 *
 * Byte readers (hb_event.h's), the bump arena that holds a window's
 * values, the table cache and the decoder state. Never included from
 * outside binlog/.
 */
#ifndef HB_INT_H
#define HB_INT_H

#include <iconv.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "hb.h"
#include "hb_buf.h"
#include "hb_event.h"

/* 10^0 .. 10^19 (hb_buf.c). */
extern const uint64_t hb__pow10[20];

/* ---- little- and big-endian readers: hb_event.h, under the short names
 * the decoder's sources use ---- */

#define hb__u16 hb_le16
#define hb__u24 hb_le24
#define hb__u32 hb_le32
#define hb__u48 hb_le48
#define hb__u64 hb_le64
#define hb__be hb_be
#define hb__le hb_le

/**
 * Read MySQL's packed integer ("length-encoded": < 251 in one byte, then
 * 0xfc + 2, 0xfd + 3, 0xfe + 8 bytes). 0xfb (SQL NULL) and 0xff are
 * invalid here.
 * @returns 0 and advances *p, or -1 when the input is short or invalid.
 */
static inline int hb__lenenc(const uint8_t **p, const uint8_t *end,
                             uint64_t *out) {
  const uint8_t *q = *p;
  if (q >= end)
    return -1;
  unsigned n;
  switch (q[0]) {
  case 0xfc:
    n = 2;
    break;
  case 0xfd:
    n = 3;
    break;
  case 0xfe:
    n = 8;
    break;
  case 0xfb:
  case 0xff:
    return -1;
  default:
    *out = q[0];
    *p = q + 1;
    return 0;
  }
  if ((size_t)(end - q) < 1 + (size_t)n)
    return -1;
  *out = hb__le(q + 1, n);
  *p = q + 1 + n;
  return 0;
}

/* ---- arena: the values of one window live here until it is emitted ---- */

typedef struct hb__ablk {
  struct hb__ablk *next;
  size_t cap, used;
  char data[];
} hb__ablk_t;

/* Blocks are kept across resets, so a decoder that has seen its largest
 * window stops calling malloc. Pointers into the arena are stable until
 * the next reset. */
typedef struct {
  hb__ablk_t *first, *cur;
  size_t total; /* bytes allocated in blocks */
  size_t full;  /* bytes used in blocks before cur (since the reset) */
} hb__arena_t;

/* Bytes handed out since the last reset (block slack not counted). */
static inline size_t hb__arena_used(const hb__arena_t *a) {
  return a->full + (a->cur ? a->cur->used : 0);
}

void *hb__arena_slow(hb__arena_t *a, size_t n);
void hb__arena_reset(hb__arena_t *a);
void hb__arena_free(hb__arena_t *a);

static inline void *hb__arena_alloc(hb__arena_t *a, size_t n) {
  hb__ablk_t *b = a->cur;
  n = (n + 7) & ~(size_t)7;
  if (b && b->cap - b->used >= n) {
    void *p = b->data + b->used;
    b->used += n;
    return p;
  }
  return hb__arena_slow(a, n);
}

/* ---- charsets ---- */

/* How a text column's bytes become UTF-8. */
enum {
  HB_CS_UNKNOWN = 0, /* UTF-8 when valid, else raw (HB_V_BADTEXT) */
  HB_CS_UTF8,        /* utf8mb3/utf8mb4: validated, passed through */
  HB_CS_LATIN1,      /* MySQL's latin1, i.e. cp1252: table lookup */
  HB_CS_ASCII,       /* validated */
  HB_CS_BINARY,      /* bytes: HB_V_BYTES */
  HB_CS_ICONV        /* anything else glibc's iconv knows */
};

/**
 * Classify a collation id. For HB_CS_ICONV, *iconv_name is the charset's
 * iconv name. Unknown ids give HB_CS_UNKNOWN.
 */
int hb__cs_class(unsigned collation, const char **iconv_name);
/* MySQL's name of a collation's charset ("utf8mb4", "latin1", ...) and its
 * widest character in bytes (0 when unknown); NULL for unknown ids. */
const char *hb__charset_name(unsigned collation, unsigned *width);

/** Whether p[0..n) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int hb__utf8_valid(const uint8_t *p, size_t n);

/** Length of the valid UTF-8 sequence at p (n > 0 bytes left), 0 if none. */
size_t hb__utf8_seq(const uint8_t *p, size_t n);

/* ---- tables ---- */

/* How to decode one column's values; chosen once per table map. */
enum {
  HB_DK_BAD = 0, /* cannot be decoded: x->bad says why */
  HB_DK_NULL,
  HB_DK_INT, /* x->size bytes, little-endian, signedness in column */
  HB_DK_FLOAT,
  HB_DK_DOUBLE,
  HB_DK_DECIMAL,
  HB_DK_YEAR,
  HB_DK_DATE,
  HB_DK_TIME,
  HB_DK_TIME2,
  HB_DK_DATETIME,
  HB_DK_DATETIME2,
  HB_DK_TIMESTAMP,
  HB_DK_TIMESTAMP2,
  HB_DK_BIT,
  HB_DK_ENUM,
  HB_DK_SET,
  HB_DK_TEXT, /* length prefix of x->size bytes, then text or bytes */
  HB_DK_JSON, /* length prefix of x->size bytes, then binary JSON */
  HB_DK_BYTES /* length prefix of x->size bytes, then bytes */
};

typedef struct {
  uint8_t dk;          /* HB_DK_* */
  uint8_t cs;          /* HB_CS_* for HB_DK_TEXT */
  uint8_t size;        /* fixed size, or length-prefix bytes */
  uint8_t fsp;         /* fractional digits of temporals */
  uint8_t prec, scale; /* DECIMAL */
  uint8_t is_pk;
  uint16_t fixlen;        /* CHAR/BINARY: declared length in bytes */
  const char *iconv_name; /* for HB_CS_ICONV */
  const char *bad;        /* for HB_DK_BAD: why (static string) */
  char *name_json;        /* "\"name\":" escaped, for the renderer; readable up
                            to its length rounded up to 16 (hb_buf_put_padded) */
  uint32_t name_json_len;
} hb__col_t;

typedef struct hb__table {
  hb_table_t pub; /* what callers see; must stay first */
  hb_column_t *cols;
  hb__col_t *x;
  uint8_t *raw; /* the table map body this was built from */
  size_t rawlen;
  uint8_t skip;   /* filtered out: rows are not decoded */
  uint8_t stale;  /* rebuild at the next table map (after DDL) */
  uint32_t njson; /* JSON columns: partial update bitmaps count them */
  char *src_json; /* ,"db":"D","table":"T" for the renderer (padded
                     like name_json) */
  uint32_t src_json_len;
  struct hb__table *next; /* hash chain, or retired list */
} hb__table_t;

/* One cached iconv converter per charset name. */
typedef struct {
  const char *name;
  iconv_t cd;
} hb__conv_t;

struct hb_decoder {
  hb_config_t cfg;
  size_t max_payload;

  /* format description */
  int have_fde;
  int checksum;    /* 1: events end with a CRC32 */
  uint8_t ph[256]; /* post-header length per event type */
  char server_version[51];
  int is_mariadb;

  /* where we are */
  char *file; /* owned */
  uint64_t file_index;
  uint64_t ev_pos; /* offset of the current (outer) event */
  uint64_t ev_end; /* its end offset */
  uint32_t ev_ts;
  uint32_t ev_server_id;
  uint8_t ev_type;
  int inner;          /* inside a transaction payload */
  uint64_t inner_off; /* offset of the inner event in the payload */

  /* transactions */
  int in_txn;
  int resync; /* skipping to the next transaction start */
  int implicit_warned;
  char gtid[64]; /* of the open window, or pending for the next */
  int have_gtid; /*   statement (MySQL GTID, MariaDB standalone) */
  uint64_t txn_begin;
  hb_row_t *rows;        /* the open window's row changes; their values */
  size_t nrows, caprows; /*   live in the arena, so pointers are stable */
  int txn_by_gtid;       /* window opened by a MariaDB GTID event (a BEGIN
                            that follows belongs to it) */
  hb_ddl_t *ddls;        /* statements of the open window; their texts */
  size_t nddl, capddl;   /*   live in the arena */
  uint32_t chunk;        /* chunks of the open window already emitted */
  uint64_t rows_emitted; /*   and the row changes they held */
  hb__arena_t arena;

  /* tables, by table id */
  hb__table_t **tbl;
  size_t tbl_cap, tbl_count;
  hb__table_t *retired; /* replaced while a window may point at them */

  /* scratch space */
  hb_buf_t scratch; /* JSON text, converted statements */
  hb_buf_t scratch2;
  uint8_t *zbuf; /* decompressed transaction payload */
  size_t zcap;
  uint8_t *zbuf2; /* decompressed MariaDB event body */
  size_t zcap2;
  const uint8_t **jraw; /* before-image JSON documents by column, for */
  size_t *jlen;         /*   partial updates */
  size_t capj;
  hb__conv_t conv[8];
  unsigned nconv;

  int failed;
  char errmsg[512];
  hb_stats_t st;
};

/* Record an error "FILE:OFFSET: message" and return err. */
int hb__fail(hb_decoder_t *dec, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* hb_tablemap.c */
int hb__table_map(hb_decoder_t *dec, const uint8_t *body, size_t len);
hb__table_t *hb__table_get(hb_decoder_t *dec, uint64_t id);
void hb__tables_free(hb_decoder_t *dec);
void hb__tables_retire_flush(hb_decoder_t *dec);
void hb__tables_mark_stale(hb_decoder_t *dec);
void hb__tables_trim(hb_decoder_t *dec);

/* hb_rows.c */
int hb__rows_event(hb_decoder_t *dec, uint8_t type, const uint8_t *body,
                   size_t len);

/* hb_value.c: value codecs. Each returns 0 or -1 (value invalid) and
 * writes its text into the arena. */
int hb__decode_value(hb_decoder_t *dec, const hb_column_t *col,
                     const hb__col_t *x, const uint8_t *p, const uint8_t *end,
                     hb_value_t *v, size_t *used, const char **why);
size_t hb__decimal_size(unsigned prec, unsigned scale);
int hb__decimal_text(const uint8_t *p, unsigned prec, unsigned scale, char *out,
                     size_t *outlen);
int hb__text_to_utf8(hb_decoder_t *dec, const hb__col_t *x, const uint8_t *p,
                     size_t n, hb_value_t *v);
size_t hb__fmt_double(double d, int is_float, char *out);
size_t hb__fmt_double_mysql(double d, char *out);
size_t hb__fmt_datetime_packed(int64_t packed, int kind, char *out);
iconv_t hb__iconv(hb_decoder_t *dec, const char *name);
int hb__convert(hb_decoder_t *dec, int cs, const char *iconv_name,
                const uint8_t *p, size_t n, hb_buf_t *out);

/* hb_jsonb.c: MySQL binary JSON */
int hb__jsonb_to_text(const uint8_t *p, size_t n, hb_buf_t *out,
                      const char **why);
int hb__jsonb_apply_diffs(const uint8_t *doc, size_t doclen,
                          const uint8_t *diffs, size_t difflen, hb_buf_t *out,
                          const char **why);
int hb__jsonb_diffs_to_json(const uint8_t *diffs, size_t difflen, hb_buf_t *out,
                            const char **why);

/* hb_crc32.c: CRC-32 as zlib's crc32() computes it, faster on small
 * buffers. crc is the running value (0 to start). */
uint32_t hb__crc32(uint32_t crc, const uint8_t *p, size_t n);

/* hb_decoder.c: MariaDB's compressed event bodies (zlib) */
int hb__mariadb_uncompress(hb_decoder_t *dec, const uint8_t *p, size_t n,
                           const uint8_t **out, size_t *outlen);

/* hb_json.c: helpers shared with the value codecs */
void hb__json_str(hb_buf_t *b, const char *s, size_t n);
void hb__json_str_checked(hb_buf_t *b, const char *s, size_t n);
void hb__base64(hb_buf_t *b, const uint8_t *p, size_t n, int mysql_lines);

#endif
