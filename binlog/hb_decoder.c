/*
 * hb_decoder.c - event framing, checksums, the format description, and the
 * transaction state machine that turns events into windows.
 *
 * States: idle (no transaction) -> open (after BEGIN, XA START, a MariaDB
 * GTID that is not standalone, or CREATE ... START TRANSACTION) -> idle on
 * XID, COMMIT, XA PREPARE/COMMIT (window emitted) or ROLLBACK (dropped).
 * A MySQL GTID event, or a standalone MariaDB GTID, names the transaction
 * or statement that follows. Anything that starts a transaction while one
 * is open means the previous one never committed (the server crashed while
 * writing it): it is dropped with a warning, as a replica would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <zlib.h>
#include <zstd.h>

#include "hb_int.h"
#include "hb_sql.h"
#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"

/* Event types and the header: hb_event.h. */
#define MARIA_FL_STANDALONE 1

int hb__fail(hb_decoder_t *dec, int err, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  const char *file = dec->file ? dec->file : "(binlog)";
  if (dec->inner)
    snprintf(dec->errmsg, sizeof(dec->errmsg),
             "%s:%llu: in the transaction payload, event at +%llu: %s", file,
             (unsigned long long)dec->ev_pos,
             (unsigned long long)dec->inner_off, msg);
  else
    snprintf(dec->errmsg, sizeof(dec->errmsg), "%s:%llu: %s", file,
             (unsigned long long)dec->ev_pos, msg);
  dec->failed = err;
  return err;
}

uint64_t hb_file_index(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot == NULL || dot[1] == '\0')
    return 0;
  uint64_t v = 0;
  for (const char *s = dot + 1; *s; s++) {
    if (*s < '0' || *s > '9')
      return 0;
    /* Saturate: anything this large fails the SCN range check anyway. */
    v = v > UINT64_MAX / 10 - 1 ? UINT64_MAX : v * 10 + (uint64_t)(*s - '0');
  }
  return v;
}

hb_decoder_t *hb_decoder_new(const hb_config_t *cfg) {
  hb_decoder_t *dec = hd_calloc(1, sizeof(*dec));
  if (cfg)
    dec->cfg = *cfg;
  dec->max_payload =
      dec->cfg.max_payload ? dec->cfg.max_payload : (size_t)1 << 30;
  return dec;
}

/* Forget the open window: its rows, values and arena. */
static void window_clear(hb_decoder_t *dec) {
  dec->nrows = 0;
  dec->nddl = 0;
  dec->chunk = 0;
  dec->rows_emitted = 0;
  dec->in_txn = 0;
  dec->txn_by_gtid = 0;
  dec->have_gtid = 0;
  hb__arena_reset(&dec->arena);
  hb__tables_retire_flush(dec);
  hb__tables_trim(dec);
}

/* Drop an open window that will never commit, saying so. */
static void window_drop(hb_decoder_t *dec, const char *why) {
  if (dec->in_txn && (dec->nrows > 0 || dec->nddl > 0))
    hd_log(HD_LL_WARN, "binlog", "transaction dropped",
           "file=%s begin=%llu pos=%llu rows=%zu statements=%zu "
           "reason=\"%s\"",
           dec->file ? dec->file : "", (unsigned long long)dec->txn_begin,
           (unsigned long long)dec->ev_pos, dec->nrows, dec->nddl, why);
  window_clear(dec);
}

void hb_decoder_free(hb_decoder_t *dec) {
  if (dec == NULL)
    return;
  hb__tables_free(dec);
  hb__arena_free(&dec->arena);
  free(dec->rows);
  free(dec->ddls);
  free(dec->file);
  free(dec->zbuf);
  free(dec->zbuf2);
  free(dec->jraw);
  free(dec->jlen);
  hb_buf_free(&dec->scratch);
  hb_buf_free(&dec->scratch2);
  for (unsigned i = 0; i < dec->nconv; i++)
    iconv_close(dec->conv[i].cd);
  free(dec);
}

void hb_decoder_set_file(hb_decoder_t *dec, const char *name) {
  char *n = hd_strdup(name);
  free(dec->file);
  dec->file = n;
  dec->file_index = hb_file_index(name);
}

void hb_decoder_resync(hb_decoder_t *dec) {
  window_clear(dec);
  dec->resync = 1;
}

void hb_decoder_reset(hb_decoder_t *dec) {
  window_clear(dec);
  hb__tables_free(dec);
  dec->resync = 0;
  dec->failed = 0;
  dec->errmsg[0] = '\0';
}

void hb_decoder_set_ud(hb_decoder_t *dec, void *ud) {
  dec->cfg.ud = ud;
}

const char *hb_decoder_errmsg(const hb_decoder_t *dec) {
  return dec->errmsg;
}

void hb_decoder_stats(const hb_decoder_t *dec, hb_stats_t *st) {
  *st = dec->st;
}

int hb_decoder_has_fde(const hb_decoder_t *dec) {
  return dec->have_fde;
}

int hb_decoder_finish(hb_decoder_t *dec) {
  if (dec->failed)
    return dec->failed;
  if (dec->in_txn) {
    char stmts[64] = "";
    if (dec->nddl)
      snprintf(stmts, sizeof(stmts), " and %zu statements", dec->nddl);
    int r = hb__fail(dec, HB_EINCOMPLETE,
                     "binlog ends inside the transaction that began at "
                     "offset %llu (%zu row changes%s not emitted)",
                     (unsigned long long)dec->txn_begin, dec->nrows, stmts);
    window_clear(dec);
    return r;
  }
  return 0;
}

/* ---- SCNs and emission ---- */

static int scn_of(hb_decoder_t *dec, uint64_t *scn) {
  if (dec->file_index > UINT32_MAX)
    return hb__fail(dec, HB_ESCN_RANGE, "file index %llu does not fit 32 bits",
                    (unsigned long long)dec->file_index);
  if (dec->ev_end > UINT32_MAX)
    return hb__fail(dec, HB_ESCN_RANGE,
                    "end offset %llu does not fit 32 bits (binlog file "
                    "larger than 4 GiB)",
                    (unsigned long long)dec->ev_end);
  *scn = dec->file_index << 32 | dec->ev_end;
  return 0;
}

/* The window ends at the current event (its commit): hand it over. */
static int emit_window(hb_decoder_t *dec) {
  uint64_t scn = 0;
  int r = scn_of(dec, &scn);
  if (r < 0)
    return r;
  hb_window_t w = {
      .scn = scn,
      .file = dec->file ? dec->file : "",
      .file_index = (uint32_t)dec->file_index,
      .end_pos = (uint32_t)dec->ev_end,
      .begin_pos = dec->txn_begin,
      .gtid = dec->have_gtid ? dec->gtid : NULL,
      .ts_ms = (uint64_t)dec->ev_ts * 1000,
      .server_id = dec->ev_server_id,
      .nrows = dec->nrows,
      .rows = dec->rows,
      .nddl = dec->nddl,
      .ddl = dec->ddls,
      .chunk = dec->chunk,
      .row_base = dec->rows_emitted,
  };
  for (size_t i = 0; i < dec->nddl; i++)
    dec->ddls[i].scn = scn;
  dec->st.windows++;
  dec->st.rows += dec->nrows;
  r = dec->cfg.on_window ? dec->cfg.on_window(dec->cfg.ud, &w) : 0;
  window_clear(dec);
  if (r != 0)
    return hb__fail(dec, r < 0 ? r : HB_ESTOPPED,
                    "stopped by the window callback (%d)", r);
  return 0;
}

/* The open window holds more than chunk_bytes: hand its rows over as a
 * chunk (no SCN yet: the commit is still ahead) and go on with empty
 * memory, so a transaction of any size is decoded in bounded memory. */
static int emit_chunk(hb_decoder_t *dec) {
  hb_window_t w = {
      .file = dec->file ? dec->file : "",
      .file_index = (uint32_t)dec->file_index,
      .begin_pos = dec->txn_begin,
      .gtid = dec->have_gtid ? dec->gtid : NULL,
      .nrows = dec->nrows,
      .rows = dec->rows,
      .nddl = dec->nddl,
      .ddl = dec->ddls,
      .chunk = dec->chunk,
      .more = 1,
      .row_base = dec->rows_emitted,
  };
  int r = dec->cfg.on_chunk(dec->cfg.ud, &w);
  if (r != 0)
    return hb__fail(dec, r < 0 ? r : HB_ESTOPPED,
                    "stopped by the chunk callback (%d)", r);
  dec->chunk++;
  dec->rows_emitted += dec->nrows;
  dec->nrows = 0;
  dec->nddl = 0;
  hb__arena_reset(&dec->arena);
  hb__tables_retire_flush(dec);
  return 0;
}

static int emit_ddl(hb_decoder_t *dec, const char *db, size_t dblen,
                    const uint8_t *q, size_t qlen, unsigned client_cs,
                    uint64_t sql_mode) {
  uint64_t scn = 0;
  int r = scn_of(dec, &scn);
  if (r < 0)
    return r;
  if (dec->cfg.schema)
    hb__tables_mark_stale(dec);
  dec->st.ddls++;
  if (dec->cfg.on_ddl == NULL && !dec->in_txn)
    return 0;
  /* Statements are in the client's charset; names in utf8. */
  hb_buf_t *b = &dec->scratch;
  hb_buf_reset(b);
  const char *iname = NULL;
  int cls = client_cs ? hb__cs_class(client_cs, &iname) : HB_CS_UTF8;
  hb__convert(dec, cls, iname, q, qlen, b);
  /* Passwords never leave the decoder: what it hands out is stored by
   * the relay, sent to every consumer and printed by decode. */
  unsigned sqlf = hb_sql_mode_flags(sql_mode);
  if (hb_sql_redact(b->p, b->len, sqlf, &dec->scratch2) > 0) {
    hb_buf_t t = *b;
    *b = dec->scratch2;
    dec->scratch2 = t;
  }
  size_t slen = b->len;
  hb__convert(dec, HB_CS_UTF8, NULL, (const uint8_t *)db, dblen, b);
  hb_buf_putc(b, '\0');
  hb_ddl_t d = {
      .scn = scn,
      .file = dec->file ? dec->file : "",
      .pos = dec->ev_pos,
      .gtid = dec->have_gtid ? dec->gtid : NULL,
      .ts_ms = (uint64_t)dec->ev_ts * 1000,
      .server_id = dec->ev_server_id,
      .db = b->p + slen,
      .statement = b->p,
      .len = slen,
  };
  if (dec->in_txn) {
    /* Part of the transaction: it travels in the window, at the commit's
     * SCN, never as a position of its own inside the transaction. */
    char *text = hb__arena_alloc(&dec->arena, b->len);
    memcpy(text, b->p, b->len);
    d.statement = text;
    d.db = text + slen;
    d.row_index = dec->rows_emitted + dec->nrows;
    if (dec->nddl == dec->capddl) {
      dec->capddl = dec->capddl ? dec->capddl * 2 : 4;
      dec->ddls = hd_realloc(dec->ddls, dec->capddl * sizeof(*dec->ddls));
    }
    dec->ddls[dec->nddl++] = d;
    return 0;
  }
  r = dec->cfg.on_ddl(dec->cfg.ud, &d);
  if (r != 0)
    return hb__fail(dec, r < 0 ? r : HB_ESTOPPED,
                    "stopped by the DDL callback (%d)", r);
  return 0;
}

/* ---- decompression ---- */

int hb__mariadb_uncompress(hb_decoder_t *dec, const uint8_t *p, size_t n,
                           const uint8_t **out, size_t *outlen) {
  if (n < 1 || !(p[0] & 0x80))
    return hb__fail(dec, HB_ECORRUPT,
                    "compressed event body lacks its 0x80 header byte");
  unsigned alg = (p[0] >> 4) & 7, lenlen = p[0] & 7;
  if (alg != 0)
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "compression algorithm %u (only zlib, 0, is known)", alg);
  if (lenlen < 1 || lenlen > 4 || n < 1 + lenlen)
    return hb__fail(dec, HB_ECORRUPT,
                    "compressed event length field is invalid");
  uint64_t ulen = hb__be(p + 1, lenlen);
  size_t clen = n - 1 - lenlen;
  /* zlib cannot expand more than about 1032:1; a larger claim is corrupt,
   * and checking it first keeps a bad header from allocating much. */
  if (ulen > (uint64_t)clen * 1032 + 64 || ulen > dec->max_payload)
    return hb__fail(dec, HB_ECORRUPT,
                    "compressed event claims %llu bytes from %zu",
                    (unsigned long long)ulen, clen);
  if (dec->zcap2 < ulen + 1) {
    free(dec->zbuf2);
    dec->zbuf2 = hd_malloc((size_t)ulen + 1);
    dec->zcap2 = (size_t)ulen + 1;
  }
  uLongf dl = (uLongf)ulen;
  int zr = uncompress(dec->zbuf2, &dl, p + 1 + lenlen, (uLong)clen);
  if (zr != Z_OK || dl != ulen)
    return hb__fail(dec, HB_ECORRUPT,
                    "zlib could not decompress the event body (%s)",
                    zr != Z_OK ? zError(zr) : "size mismatch");
  *out = dec->zbuf2;
  *outlen = (size_t)ulen;
  return 0;
}

/* zstd frame(s) into dec->zbuf, growing with the actual output rather
 * than trusting the declared size. */
static int zstd_payload(hb_decoder_t *dec, const uint8_t *p, size_t n,
                        uint64_t want, size_t *outlen) {
  ZSTD_DStream *zs = ZSTD_createDStream();
  if (zs == NULL)
    hd__oom(0);
  ZSTD_initDStream(zs);
  ZSTD_inBuffer in = {p, n, 0};
  size_t have = 0;
  size_t ret = 1;
  for (;;) {
    if (dec->zcap - have < 65536) {
      size_t ncap = dec->zcap ? dec->zcap * 2 : 1 << 20;
      dec->zbuf = hd_realloc(dec->zbuf, ncap);
      dec->zcap = ncap;
    }
    ZSTD_outBuffer out = {dec->zbuf + have, dec->zcap - have, 0};
    ret = ZSTD_decompressStream(zs, &out, &in);
    have += out.pos;
    if (ZSTD_isError(ret)) {
      ZSTD_freeDStream(zs);
      return hb__fail(dec, HB_ECORRUPT, "zstd: %s", ZSTD_getErrorName(ret));
    }
    if (have > want)
      break;
    if (ret == 0 && in.pos == in.size)
      break;
    if (in.pos == in.size && out.pos < out.size)
      break; /* input ended inside a frame */
  }
  ZSTD_freeDStream(zs);
  if (ret != 0 || have != want)
    return hb__fail(dec, HB_ECORRUPT,
                    "transaction payload decompresses to %zu bytes%s, "
                    "header says %llu",
                    have, ret != 0 ? " (incomplete frame)" : "",
                    (unsigned long long)want);
  *outlen = have;
  return 0;
}

/* ---- events ---- */

static int dispatch(hb_decoder_t *dec, const uint8_t *ev, size_t len,
                    int outer);

/* Leading keyword of a query, for telling transaction control from DDL. */
enum {
  QK_OTHER,
  QK_BEGIN,
  QK_COMMIT,
  QK_ROLLBACK,
  QK_ROLLBACK_TO,
  QK_SAVEPOINT,
  QK_XA_START,
  QK_XA_END,
  QK_XA_PREPARE,
  QK_XA_COMMIT,
  QK_XA_ROLLBACK,
  QK_DDL_BEGIN
};

/* Case-insensitive match of word w at s; returns the length consumed
 * (with following spaces) or 0. */
static size_t word(const char *s, size_t n, const char *w) {
  size_t k = strlen(w);
  if (n < k)
    return 0;
  for (size_t i = 0; i < k; i++) {
    char c = s[i];
    if (c >= 'a' && c <= 'z')
      c = (char)(c - 32);
    if (c != w[i])
      return 0;
  }
  if (n > k && !(s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r' ||
                 s[k] == ';'))
    return 0;
  while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
    k++;
  return k;
}

static int query_kind(const char *q, size_t n) {
  while (n && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) {
    q++;
    n--;
  }
  while (n && (q[n - 1] == ' ' || q[n - 1] == ';' || q[n - 1] == '\n' ||
               q[n - 1] == '\r' || q[n - 1] == '\t' || q[n - 1] == '\0'))
    n--;
  size_t k;
  if (word(q, n, "BEGIN") == n && n)
    return QK_BEGIN;
  if ((k = word(q, n, "START")) && word(q + k, n - k, "TRANSACTION"))
    return QK_BEGIN;
  if (word(q, n, "COMMIT"))
    return QK_COMMIT;
  if ((k = word(q, n, "ROLLBACK"))) {
    if (k < n && word(q + k, n - k, "TO"))
      return QK_ROLLBACK_TO;
    return QK_ROLLBACK;
  }
  if (word(q, n, "SAVEPOINT") || word(q, n, "RELEASE"))
    return QK_SAVEPOINT;
  if ((k = word(q, n, "XA"))) {
    const char *r = q + k;
    size_t m = n - k;
    if (word(r, m, "START") || word(r, m, "BEGIN"))
      return QK_XA_START;
    if (word(r, m, "END"))
      return QK_XA_END;
    if (word(r, m, "PREPARE"))
      return QK_XA_PREPARE;
    if (word(r, m, "COMMIT"))
      return QK_XA_COMMIT;
    if (word(r, m, "ROLLBACK"))
      return QK_XA_ROLLBACK;
  }
  /* MySQL 8.0.21+ logs CREATE TABLE ... SELECT as one atomic group: the
   * DDL ends in START TRANSACTION and the rows and an XID follow. */
  static const char st[] = "START TRANSACTION";
  if (n > sizeof(st) - 1) {
    const char *t = q + n - (sizeof(st) - 1);
    if (strncasecmp(t, st, sizeof(st) - 1) == 0 &&
        (t[-1] == ' ' || t[-1] == '\n' || t[-1] == '\t'))
      return QK_DDL_BEGIN;
  }
  return QK_OTHER;
}

/* The client charset from the status variables; 0 when not found. The
 * variables have fixed layouts per code and no lengths, so parsing stops
 * at the first code it does not know. The sql_mode, which comes before
 * the charset, is stored in *sql_mode when present. */
static unsigned status_charset(const uint8_t *p, const uint8_t *e,
                               uint64_t *sql_mode) {
  while (p < e) {
    uint8_t code = *p++;
    size_t skip;
    switch (code) {
    case 0:
      skip = 4;
      break; /* flags2 */
    case 1:  /* sql_mode */
      if (e - p >= 8)
        *sql_mode = hb__u64(p);
      skip = 8;
      break;
    case 2: /* catalog, old form */
      if (p >= e)
        return 0;
      skip = (size_t)p[0] + 2;
      break;
    case 3:
      skip = 4;
      break; /* auto_increment */
    case 4:  /* charset */
      return e - p >= 2 ? hb__u16(p) : 0;
    case 5:
    case 6: /* time zone, catalog */
      if (p >= e)
        return 0;
      skip = (size_t)p[0] + 1;
      break;
    case 7:
    case 8:
      skip = 2;
      break; /* lc_time, db charset */
    case 9:
      skip = 8;
      break; /* table map for update */
    case 10:
      skip = 4;
      break; /* master data written */
    case 11: /* invoker user, host */
      if (p >= e || (size_t)(e - p) < (size_t)p[0] + 2)
        return 0;
      skip = (size_t)p[0] + 2 + p[(size_t)p[0] + 1];
      break;
    case 12: { /* updated db names */
      if (p >= e)
        return 0;
      unsigned cnt = *p++;
      if (cnt == 254)
        cnt = 0;
      for (unsigned i = 0; i < cnt; i++) {
        const uint8_t *z = memchr(p, 0, (size_t)(e - p));
        if (z == NULL)
          return 0;
        p = z + 1;
      }
      skip = 0;
      break;
    }
    case 13:
      skip = 3;
      break; /* microseconds */
    case 128:
      skip = 3;
      break; /* MariaDB hrnow */
    case 129:
      skip = 8;
      break; /* MariaDB xid */
    default:
      return 0;
    }
    if ((size_t)(e - p) < skip)
      return 0;
    p += skip;
  }
  return 0;
}

/* Open a window at this event. */
static void window_open(hb_decoder_t *dec) {
  dec->in_txn = 1;
  dec->txn_begin = dec->ev_pos;
  dec->resync = 0;
}

/* QUERY (and EXECUTE_LOAD_QUERY, MariaDB's QUERY_COMPRESSED): post-header
 * (thread id 4, exec time 4, db length 1, error code 2, status variables
 * length 2, plus 13 more bytes for EXECUTE_LOAD_QUERY), status variables,
 * database name + NUL, statement text to the end of the event. The text
 * decides what the event means for the transaction state. */
static int ev_query(hb_decoder_t *dec, uint8_t type, const uint8_t *body,
                    size_t len) {
  unsigned ph = dec->ph[type];
  if (ph < 11)
    ph = type == HB_EV_EXECUTE_LOAD_QUERY ? 26 : 13;
  if (len < ph)
    return hb__fail(dec, HB_ECORRUPT, "QUERY event shorter than its header");
  uint8_t dblen = body[8];
  size_t svlen = ph >= 13 ? hb__u16(body + 11) : 0;
  const uint8_t *p = body + ph, *e = body + len;
  if ((size_t)(e - p) < svlen + dblen + 1u)
    return hb__fail(dec, HB_ECORRUPT,
                    "QUERY status variables or database name run past the "
                    "event");
  uint64_t sql_mode = 0;
  unsigned cs = status_charset(p, p + svlen, &sql_mode);
  p += svlen;
  const char *db = (const char *)p;
  p += dblen + 1; /* the name is NUL-terminated */
  const uint8_t *q = p;
  size_t qlen = (size_t)(e - p);
  if (type == HB_EV_MARIA_QUERY_COMPRESSED) {
    int r = hb__mariadb_uncompress(dec, p, qlen, &q, &qlen);
    if (r < 0)
      return r;
  }
  int kind = query_kind((const char *)q, qlen);
  /* Transaction control changes the state; it is never reported. */
  switch (kind) {
  case QK_BEGIN:
  case QK_XA_START:
    if (dec->in_txn) {
      if (dec->txn_by_gtid) {
        dec->txn_by_gtid = 0; /* the BEGIN of a MariaDB GTID's group */
        return 0;
      }
      window_drop(dec, "BEGIN inside an open transaction");
    }
    window_open(dec);
    return 0;
  case QK_COMMIT:
  case QK_XA_PREPARE:
    if (dec->in_txn)
      return emit_window(dec);
    dec->have_gtid = 0;
    return 0;
  case QK_XA_COMMIT:
    /* Inside a group: "XA COMMIT ... ONE PHASE", or MariaDB's completing
     * group (GTID then XA COMMIT). Outside: the prepared changes were
     * already emitted at XA PREPARE. */
    if (dec->in_txn)
      return emit_window(dec);
    dec->have_gtid = 0;
    return 0;
  case QK_ROLLBACK:
  case QK_XA_ROLLBACK:
    if (dec->in_txn && dec->chunk > 0) {
      /* Chunks of it were handed out: an empty window at chunk 0 tells the
       * caller to discard them, and keeps the SCN moving. */
      hd_log(HD_LL_WARN, "binlog", "transaction dropped",
             "file=%s begin=%llu pos=%llu rows=%llu chunks=%u "
             "reason=\"rolled back\"",
             dec->file ? dec->file : "", (unsigned long long)dec->txn_begin,
             (unsigned long long)dec->ev_pos,
             (unsigned long long)(dec->rows_emitted + dec->nrows), dec->chunk);
      dec->chunk = 0;
      dec->rows_emitted = 0;
      dec->nrows = 0;
      dec->nddl = 0;
      return emit_window(dec);
    }
    if (dec->in_txn && dec->nrows == 0)
      return emit_window(dec); /* an empty group keeps the SCN moving */
    if (dec->in_txn && dec->nddl > 0 && dec->chunk == 0) {
      /* The statements were executed whatever the rollback undid. */
      hd_log(HD_LL_WARN, "binlog", "row changes rolled back",
             "file=%s begin=%llu pos=%llu rows=%zu statements=%zu",
             dec->file ? dec->file : "", (unsigned long long)dec->txn_begin,
             (unsigned long long)dec->ev_pos, dec->nrows, dec->nddl);
      dec->nrows = 0;
      return emit_window(dec);
    }
    if (dec->in_txn)
      window_drop(dec, "rolled back");
    else if (kind == QK_XA_ROLLBACK)
      hd_log(HD_LL_WARN, "binlog",
             "XA ROLLBACK of a prepared transaction whose changes were "
             "emitted at XA PREPARE",
             "file=%s pos=%llu", dec->file ? dec->file : "",
             (unsigned long long)dec->ev_pos);
    dec->have_gtid = 0;
    return 0;
  case QK_ROLLBACK_TO:
  case QK_SAVEPOINT:
  case QK_XA_END:
    /* A rollback to a savepoint removes the events from the server's
     * transaction cache before it is written: what reaches the binlog
     * happened. */
    return 0;
  default:
    break;
  }
  /* DDL, or DML logged as a statement. */
  if (dec->resync && !dec->in_txn && kind != QK_DDL_BEGIN) {
    dec->resync = 0; /* a statement of its own is a boundary */
  }
  /* CREATE ... START TRANSACTION opens the window it belongs to. */
  if (kind == QK_DDL_BEGIN && !dec->in_txn)
    window_open(dec);
  int r = emit_ddl(dec, db, dblen, q, qlen, cs, sql_mode);
  if (r < 0)
    return r;
  if (!dec->in_txn)
    dec->have_gtid = 0;
  return 0;
}

/* FORMAT_DESCRIPTION: binlog version 2, server version 50, creation time
 * 4, header length 1, one post-header length per event type, and for
 * checksum-aware servers the algorithm byte and the event's own CRC. */
static int ev_fde(hb_decoder_t *dec, const uint8_t *ev, size_t len) {
  const uint8_t *body = ev + HB_EVENT_HEADER_LEN;
  if (len < HB_EVENT_HEADER_LEN + 57)
    return hb__fail(dec, HB_ECORRUPT,
                    "FORMAT_DESCRIPTION event of %zu bytes is too short", len);
  unsigned ver = hb__u16(body);
  if (ver != 4)
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "binlog format version %u (MySQL 4.x or older) is not "
                    "supported",
                    ver);
  char sv[51];
  memcpy(sv, body + 2, 50);
  sv[50] = '\0';
  uint32_t created = hb__u32(body + 52);
  if (body[56] != HB_EVENT_HEADER_LEN)
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "event header length %u (only 19 is known)", body[56]);
  unsigned a = 0, b = 0, c = 0;
  sscanf(sv, "%u.%u.%u", &a, &b, &c);
  int mariadb = strstr(sv, "MariaDB") != NULL;
  unsigned long v = a * 10000ul + b * 100ul + c;
  /* Servers from these versions on end the FDE with the checksum
   * algorithm byte and a CRC32, whatever binlog_checksum says. */
  int aware = mariadb ? v >= 50300 : v >= 50601;
  size_t nph = len - HB_EVENT_HEADER_LEN - 57;
  unsigned alg = 0;
  if (aware) {
    if (nph < 5)
      return hb__fail(dec, HB_ECORRUPT,
                      "FORMAT_DESCRIPTION event lacks its checksum fields");
    nph -= 5;
    alg = ev[len - 5];
    if (alg == 255)
      alg = 0; /* "undefined": written by servers that had it off */
    if (alg > 1)
      return hb__fail(dec, HB_EUNSUPPORTED,
                      "binlog checksum algorithm %u (only CRC32 is known)",
                      alg);
    if (alg == 1) {
      /* The CRC was computed before the server set the in-use flag. */
      uint8_t hdr[HB_EVENT_HEADER_LEN];
      memcpy(hdr, ev, HB_EVENT_HEADER_LEN);
      hdr[17] &= (uint8_t)~HB_EV_F_IN_USE;
      uint32_t crc = hb__crc32(0, hdr, HB_EVENT_HEADER_LEN);
      crc = hb__crc32(crc, ev + HB_EVENT_HEADER_LEN,
                      len - 4 - HB_EVENT_HEADER_LEN);
      uint32_t stored = hb__u32(ev + len - 4);
      if ((uint32_t)crc != stored)
        return hb__fail(dec, HB_ECHECKSUM,
                        "FORMAT_DESCRIPTION checksum mismatch: stored "
                        "0x%08x, computed 0x%08x",
                        stored, (uint32_t)crc);
    }
  }
  if (created != 0 && dec->in_txn)
    window_drop(dec, "server restarted (new FORMAT_DESCRIPTION)");
  memset(dec->ph, 0, sizeof(dec->ph));
  for (size_t i = 0; i < nph && i < 255; i++)
    dec->ph[i + 1] = body[57 + i];
  memcpy(dec->server_version, sv, sizeof(sv));
  dec->is_mariadb = mariadb;
  dec->checksum = alg == 1;
  dec->have_fde = 1;
  return 0;
}

/* ROTATE: the position in the next file (8 bytes), then its name. Written
 * at the end of a file, and sent artificially at the start of a
 * replication stream. */
static int ev_rotate(hb_decoder_t *dec, const uint8_t *body, size_t len) {
  unsigned ph = dec->have_fde ? dec->ph[HB_EV_ROTATE] : 8;
  if (ph < 8)
    ph = 8;
  if (len <= ph || len - ph > 1024)
    return hb__fail(dec, HB_ECORRUPT, "ROTATE event of %zu bytes is invalid",
                    len);
  const char *name = (const char *)body + ph;
  size_t n = len - ph;
  if (memchr(name, '\0', n))
    n = strlen(name);
  if (n == 0)
    return hb__fail(dec, HB_ECORRUPT, "ROTATE event names no file");
  if (dec->in_txn)
    window_drop(dec, "ROTATE inside a transaction");
  char *s = hd_strndup(name, n);
  hb_decoder_set_file(dec, s);
  free(s);
  return 0;
}

/* "3e11fa47-71ca-11e1-9e33-c80aa9429562:23" */
static void mysql_gtid(char *out, size_t outlen, const uint8_t *sid,
                       int64_t gno) {
  static const char hx[] = "0123456789abcdef";
  char u[37];
  int k = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      u[k++] = '-';
    u[k++] = hx[sid[i] >> 4];
    u[k++] = hx[sid[i] & 15];
  }
  u[k] = '\0';
  snprintf(out, outlen, "%s:%lld", u, (long long)gno);
}

/* Decimal digits of v at o; returns the end. */
static char *put_u64(char *o, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n)
    *o++ = tmp[--n];
  return o;
}

/* "domain-server-sequence", once per transaction: no printf. */
static void maria_gtid(char *out, uint32_t domain, uint32_t server,
                       uint64_t seq) {
  char *o = put_u64(out, domain);
  *o++ = '-';
  o = put_u64(o, server);
  *o++ = '-';
  o = put_u64(o, seq);
  *o = '\0';
}

/* MySQL 8's TRANSACTION_PAYLOAD: a whole transaction, compressed, its
 * header fields written as (type, length, value) packed integers. The
 * event's post-header length in the FDE (40) is not used by the server
 * either: the fields start right after the common header. */
static int ev_payload(hb_decoder_t *dec, const uint8_t *body, size_t len) {
  const uint8_t *p = body, *e = body + len;
  uint64_t psize = UINT64_MAX, ctype = UINT64_MAX, usize = UINT64_MAX;
  /* Header fields: (type, length, value) as packed integers, ending with
   * type 0. */
  for (;;) {
    uint64_t ft, fl, v;
    if (hb__lenenc(&p, e, &ft) < 0)
      return hb__fail(dec, HB_ECORRUPT,
                      "transaction payload header is truncated");
    if (ft == 0)
      break;
    if (hb__lenenc(&p, e, &fl) < 0 || fl > (uint64_t)(e - p))
      return hb__fail(dec, HB_ECORRUPT,
                      "transaction payload header field runs past the "
                      "event");
    const uint8_t *q = p;
    p += fl;
    if (ft > 3)
      continue; /* a field from a later version */
    if (hb__lenenc(&q, p, &v) < 0)
      return hb__fail(dec, HB_ECORRUPT,
                      "transaction payload header field is invalid");
    if (ft == 1)
      psize = v;
    else if (ft == 2)
      ctype = v;
    else
      usize = v;
  }
  size_t clen = (size_t)(e - p);
  if (psize != UINT64_MAX && psize != clen)
    return hb__fail(dec, HB_ECORRUPT,
                    "transaction payload is %zu bytes, header says %llu", clen,
                    (unsigned long long)psize);
  const uint8_t *data;
  size_t dlen = 0;
  if (ctype == 255) {
    data = p;
    dlen = clen;
  } else if (ctype == 0) {
    if (usize == UINT64_MAX || usize > dec->max_payload)
      return hb__fail(dec, HB_ECORRUPT,
                      "transaction payload uncompressed size %llu is "
                      "missing or above the limit of %zu bytes",
                      (unsigned long long)usize, dec->max_payload);
    int r = zstd_payload(dec, p, clen, usize, &dlen);
    if (r < 0)
      return r;
    data = dec->zbuf;
  } else {
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "transaction payload compression type %llu (zstd 0 and "
                    "none 255 are known)",
                    (unsigned long long)ctype);
  }
  /* The inner events: ordinary events without checksums. Their SCN
   * position is the end of this payload event. */
  size_t off = 0;
  while (off < dlen) {
    dec->inner = 1;
    dec->inner_off = off;
    if (dlen - off < HB_EVENT_HEADER_LEN)
      return hb__fail(dec, HB_ECORRUPT, "inner event header is truncated");
    uint32_t sz = hb_event_size(data + off);
    if (sz < HB_EVENT_HEADER_LEN || sz > dlen - off)
      return hb__fail(dec, HB_ECORRUPT, "inner event size %u out of range", sz);
    int r = dispatch(dec, data + off, sz, 0);
    if (r < 0)
      return r;
    off += sz;
  }
  dec->inner = 0;
  return 0;
}

/* INCIDENT: type (2 bytes; 1 is LOST_EVENTS), message length, message.
 * The server writes it when it knows the binlog misses changes, so it is
 * never passed over quietly. */
static int ev_incident(hb_decoder_t *dec, const uint8_t *body, size_t len) {
  char msg[256] = "";
  uint16_t code = 0;
  if (len >= 3) {
    code = hb__u16(body);
    size_t ml = body[2];
    if (ml > len - 3)
      ml = len - 3;
    hb_buf_t b = {0};
    hb__convert(dec, HB_CS_UTF8, NULL, body + 3, ml, &b);
    snprintf(msg, sizeof(msg), "%.*s", (int)b.len, b.p ? b.p : "");
    hb_buf_free(&b);
  }
  hd_log(HD_LL_ERROR, "binlog", "INCIDENT event",
         "file=%s pos=%llu code=%u message=\"%s\"", dec->file ? dec->file : "",
         (unsigned long long)dec->ev_pos, code, msg);
  if (dec->cfg.on_incident == NULL)
    return hb__fail(dec, HB_EINCIDENT,
                    "INCIDENT event %u (%s): the source may have lost "
                    "changes here",
                    code, msg[0] ? msg : "no message");
  hb_incident_t inc = {dec->file ? dec->file : "", dec->ev_pos,
                       dec->ev_server_id, code, msg};
  int r = dec->cfg.on_incident(dec->cfg.ud, &inc);
  if (r != 0)
    return hb__fail(dec, r < 0 ? r : HB_ESTOPPED,
                    "stopped by the incident callback (%d)", r);
  return 0;
}

/* One event: checksum (outer events only: the inner events of a
 * transaction payload carry none), then the handler of its type. */
/* A rows event, then a chunk when the window has grown past chunk_bytes
 * (between events, so a rows event's changes stay in one chunk). */
static int rows_then_chunk(hb_decoder_t *dec, uint8_t type, const uint8_t *body,
                           size_t blen) {
  int r = hb__rows_event(dec, type, body, blen);
  if (r == 0 && dec->cfg.on_chunk && dec->cfg.chunk_bytes && dec->in_txn &&
      hb__arena_used(&dec->arena) >= dec->cfg.chunk_bytes)
    r = emit_chunk(dec);
  return r;
}

static int dispatch(hb_decoder_t *dec, const uint8_t *ev, size_t len,
                    int outer) {
  uint8_t type = hb_event_type(ev);
  uint16_t flags = hb_event_flags(ev);
  dec->ev_type = type;
  dec->ev_ts = hb_event_ts(ev);
  dec->ev_server_id = hb_event_server_id(ev);
  dec->st.events++;
  if (type == HB_EV_FDE) {
    if (!outer)
      return hb__fail(dec, HB_ECORRUPT,
                      "FORMAT_DESCRIPTION inside a transaction payload");
    return ev_fde(dec, ev, len);
  }
  size_t blen = len - HB_EVENT_HEADER_LEN;
  if (outer) {
    int crc = dec->checksum;
    if (!dec->have_fde) {
      /* A replication stream starts with an artificial ROTATE, written
       * with the checksum setting we cannot know yet: check whether its
       * last four bytes are a valid CRC. */
      if (type != HB_EV_ROTATE && type != HB_EV_HEARTBEAT &&
          type != HB_EV_HEARTBEAT_V2)
        return hb__fail(dec, HB_ECORRUPT,
                        "event type %u before the FORMAT_DESCRIPTION event",
                        type);
      crc = len >= HB_EVENT_HEADER_LEN + 4 &&
            hb__crc32(0, ev, len - 4) == hb__u32(ev + len - 4);
    }
    if (crc) {
      if (blen < 4)
        return hb__fail(dec, HB_ECORRUPT,
                        "event of %zu bytes cannot hold its checksum", len);
      uint32_t stored = hb__u32(ev + len - 4);
      uint32_t calc = hb__crc32(0, ev, len - 4);
      if (stored != calc)
        return hb__fail(dec, HB_ECHECKSUM,
                        "checksum mismatch in event type %u: stored "
                        "0x%08x, computed 0x%08x",
                        type, stored, calc);
      blen -= 4;
    }
  }
  const uint8_t *body = ev + HB_EVENT_HEADER_LEN;
  switch (type) {
  case HB_EV_QUERY:
  case HB_EV_EXECUTE_LOAD_QUERY:
  case HB_EV_MARIA_QUERY_COMPRESSED:
    return ev_query(dec, type, body, blen);
  case HB_EV_XID:
  case HB_EV_XA_PREPARE:
    if (dec->in_txn)
      return emit_window(dec);
    dec->have_gtid = 0;
    return 0;
  case HB_EV_TABLE_MAP:
    return hb__table_map(dec, body, blen);
  case 23:
  case 24:
  case 25:
  case 30:
  case 31:
  case 32:
  case HB_EV_PARTIAL_UPDATE_ROWS:
  case 166:
  case 167:
  case 168:
  case 169:
  case 170:
  case 171:
    if (dec->resync && !dec->in_txn)
      return 0;
    return rows_then_chunk(dec, type, body, blen);
  case HB_EV_GTID:
  case HB_EV_ANONYMOUS_GTID:
    /* flags 1, source uuid 16, sequence number 8, then logical clocks and
     * commit timestamps we do not need. The transaction that follows
     * starts with BEGIN, or is one DDL statement. */
    if (blen < 25)
      return hb__fail(dec, HB_ECORRUPT, "GTID event is truncated");
    if (dec->in_txn)
      window_drop(dec, "GTID event inside an open transaction");
    dec->resync = 0;
    dec->have_gtid = type == HB_EV_GTID;
    if (dec->have_gtid)
      mysql_gtid(dec->gtid, sizeof(dec->gtid), body + 1,
                 (int64_t)hb__u64(body + 17));
    return 0;
  case HB_EV_MARIA_GTID: {
    /* sequence 8, domain 4, flags 1 (+ commit id or XID). Unless the
     * group is standalone (DDL), the GTID itself starts it; the BEGIN
     * that follows belongs to it. */
    if (blen < 13)
      return hb__fail(dec, HB_ECORRUPT, "MariaDB GTID event is truncated");
    if (dec->in_txn)
      window_drop(dec, "GTID event inside an open transaction");
    uint64_t seq = hb__u64(body);
    uint32_t domain = hb__u32(body + 8);
    uint8_t fl2 = body[12];
    maria_gtid(dec->gtid, domain, dec->ev_server_id, seq);
    dec->have_gtid = 1;
    dec->resync = 0;
    if (!(fl2 & MARIA_FL_STANDALONE)) {
      window_open(dec);
      dec->txn_by_gtid = 1;
    }
    return 0;
  }
  case HB_EV_ROTATE:
    return ev_rotate(dec, body, blen);
  case HB_EV_STOP:
    if (dec->in_txn)
      window_drop(dec, "STOP inside a transaction");
    return 0;
  case HB_EV_TRANSACTION_PAYLOAD: {
    if (!outer)
      return hb__fail(dec, HB_ECORRUPT, "nested transaction payload");
    int r = ev_payload(dec, body, blen);
    dec->inner = 0;
    return r;
  }
  case HB_EV_INCIDENT:
    return ev_incident(dec, body, blen);
  /* Events that carry nothing a change stream needs: heartbeats, GTID
   * bookkeeping, statement annotations, statement-based side data. */
  case HB_EV_HEARTBEAT:
  case HB_EV_HEARTBEAT_V2:
  case HB_EV_PREVIOUS_GTIDS:
  case HB_EV_MARIA_GTID_LIST:
  case HB_EV_MARIA_BINLOG_CHECKPOINT:
  case HB_EV_MARIA_ANNOTATE_ROWS:
  case HB_EV_ROWS_QUERY:
  case HB_EV_IGNORABLE:
  case HB_EV_TRANSACTION_CONTEXT:
  case HB_EV_VIEW_CHANGE:
  case HB_EV_INTVAR:
  case HB_EV_RAND:
  case HB_EV_USER_VAR:
  case HB_EV_BEGIN_LOAD_QUERY:
  case HB_EV_APPEND_BLOCK:
  case HB_EV_DELETE_FILE:
    return 0;
  case HB_EV_GTID_TAGGED:
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "GTID_TAGGED event (type 42, MySQL 8.3+ tagged GTIDs) "
                    "is not supported");
  case HB_EV_MARIA_START_ENCRYPTION:
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "the binlog is encrypted (START_ENCRYPTION event)");
  case HB_EV_MARIA_PARTIAL_ROW_DATA:
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "PARTIAL_ROW_DATA event (type 172, MariaDB 12.3 "
                    "fragmented rows) is not supported");
  case HB_EV_START_V3:
  case HB_EV_LOAD:
  case HB_EV_SLAVE:
  case HB_EV_CREATE_FILE:
  case HB_EV_EXEC_LOAD:
  case HB_EV_NEW_LOAD:
  case 20:
  case 21:
  case 22:
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "event type %u of MySQL 5.1 or older is not supported",
                    type);
  default:
    if (flags & HB_EV_F_IGNORABLE)
      return 0;
    return hb__fail(dec, HB_EUNSUPPORTED,
                    "unknown event type %u without the ignorable flag "
                    "(it may carry changes)",
                    type);
  }
}

/* Positions come from the caller, computed from event sizes: MariaDB 11.4+
 * leaves log_pos at 0 for events from the transaction cache, and log_pos
 * of inner events means nothing. */
int hb_decoder_feed(hb_decoder_t *dec, const uint8_t *ev, size_t len,
                    uint64_t pos) {
  if (dec->failed)
    return dec->failed;
  dec->ev_pos = pos;
  dec->ev_end = pos + len;
  dec->inner = 0;
  dec->st.bytes += len;
  if (len < HB_EVENT_HEADER_LEN)
    return hb__fail(dec, HB_ECORRUPT,
                    "event of %zu bytes is shorter than its header", len);
  uint32_t size = hb_event_size(ev);
  if (size != len)
    return hb__fail(dec, HB_ECORRUPT,
                    "event size field says %u bytes, the event has %zu", size,
                    len);
  return dispatch(dec, ev, len, 1);
}

/* ---- arena ---- */

#define ARENA_BLOCK ((size_t)1 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

/* A new block. Blocks grow with the arena (1 MiB, then doubling up to
 * 64 MiB) so a transaction of millions of rows takes few blocks, and
 * blocks of 2 MiB and more ask for transparent huge pages: most of the
 * cost of a large window is otherwise page faults. */
static hb__ablk_t *arena_block(hb__arena_t *a, size_t n) {
  size_t cap = ARENA_BLOCK;
  while (cap < a->total && cap < ((size_t)64 << 20))
    cap *= 2;
  if (cap < n)
    cap = n;
  size_t bytes = sizeof(hb__ablk_t) + cap;
  hb__ablk_t *b;
  if (bytes >= HUGE_PAGE) {
    bytes = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    b = aligned_alloc(HUGE_PAGE, bytes);
    if (b == NULL)
      hd__oom(bytes);
    madvise(b, bytes, MADV_HUGEPAGE); /* a hint; failure is harmless */
    cap = bytes - sizeof(hb__ablk_t);
  } else {
    b = hd_malloc(bytes);
  }
  b->cap = cap;
  b->used = 0;
  a->total += cap;
  return b;
}

void *hb__arena_slow(hb__arena_t *a, size_t n) {
  /* Reuse the next kept block if it is big enough. */
  hb__ablk_t *b = a->cur ? a->cur->next : a->first;
  while (b && b->cap < n)
    b = b->next;
  if (b == NULL) {
    b = arena_block(a, n);
    /* Append after the current block so the list stays in use order. */
    if (a->cur) {
      b->next = a->cur->next;
      a->cur->next = b;
    } else {
      b->next = a->first;
      a->first = b;
    }
  } else if (a->cur && a->cur->next != b) {
    /* Move the found block right after the current one. */
    hb__ablk_t **pp = &a->first;
    while (*pp != b)
      pp = &(*pp)->next;
    *pp = b->next;
    b->next = a->cur->next;
    a->cur->next = b;
  } else if (a->cur == NULL && a->first != b) {
    hb__ablk_t **pp = &a->first;
    while (*pp != b)
      pp = &(*pp)->next;
    *pp = b->next;
    b->next = a->first;
    a->first = b;
  }
  if (a->cur)
    a->full += a->cur->used;
  b->used = n;
  a->cur = b;
  return b->data;
}

void hb__arena_reset(hb__arena_t *a) {
  /* Keep up to 64 MiB for the next window; a huge transaction's memory is
   * returned. */
  size_t kept = 0;
  hb__ablk_t **pp = &a->first;
  while (*pp) {
    hb__ablk_t *b = *pp;
    if (kept + b->cap > ((size_t)64 << 20)) {
      *pp = b->next;
      a->total -= b->cap;
      free(b);
      continue;
    }
    kept += b->cap;
    b->used = 0;
    pp = &b->next;
  }
  a->cur = NULL;
  a->full = 0;
}

void hb__arena_free(hb__arena_t *a) {
  while (a->first) {
    hb__ablk_t *b = a->first;
    a->first = b->next;
    free(b);
  }
  a->cur = NULL;
  a->total = 0;
  a->full = 0;
}
