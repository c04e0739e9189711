/*
 * hb_event.h - the binlog v4 event header, the event type numbers and the
 * little-endian readers, for every part of herald that touches raw events:
 * the decoder (binlog/), the file reader (hb_file.c), the relay's fetcher
 * and `heraldctl decode`'s file splitter.
 *
 * An event starts with a 19-byte header, little-endian: timestamp u32,
 * type u8, server_id u32, event_size u32 (the whole event, header and
 * checksum included), log_pos u32 (end offset in the server's file; not to
 * be trusted, see hb_file.h), flags u16. Nothing here checks bounds: the
 * callers check that the bytes are there first.
 */
#ifndef HB_EVENT_H
#define HB_EVENT_H

#include <stdint.h>

/* ---- little- and big-endian readers (callers check bounds first) ---- */

static inline uint16_t hb_le16(const uint8_t *p) {
  return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}
static inline uint32_t hb_le24(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}
static inline uint32_t hb_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint64_t hb_le48(const uint8_t *p) {
  return (uint64_t)hb_le32(p) | (uint64_t)hb_le16(p + 4) << 32;
}
static inline uint64_t hb_le64(const uint8_t *p) {
  return (uint64_t)hb_le32(p) | (uint64_t)hb_le32(p + 4) << 32;
}
/* Little-endian, n = 1..8 bytes. */
static inline uint64_t hb_le(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = n; i > 0; i--)
    v = v << 8 | p[i - 1];
  return v;
}
/* Big-endian, n = 1..8 bytes. */
static inline uint64_t hb_be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* ---- the event header ---- */

#define HB_EVENT_HEADER_LEN 19

/* Header flags. */
#define HB_EV_F_IN_USE 0x0001     /* on the FDE: the file is being written */
#define HB_EV_F_ARTIFICIAL 0x0020 /* made up by the server for a dump */
#define HB_EV_F_IGNORABLE 0x0080  /* an unknown type with it may be skipped */

typedef struct {
  uint32_t ts;        /* seconds since the epoch; 0 on some fake events */
  uint8_t type;       /* HB_EV_* */
  uint32_t server_id; /* of the server that wrote it first */
  uint32_t size;      /* of the whole event */
  uint32_t log_pos;   /* the server's end offset, 0 when it gives none */
  uint16_t flags;     /* HB_EV_F_* */
} hb_event_header_t;

/* The fields of the header at p (HB_EVENT_HEADER_LEN bytes). */
static inline uint32_t hb_event_ts(const uint8_t *p) {
  return hb_le32(p);
}
static inline uint8_t hb_event_type(const uint8_t *p) {
  return p[4];
}
static inline uint32_t hb_event_server_id(const uint8_t *p) {
  return hb_le32(p + 5);
}
static inline uint32_t hb_event_size(const uint8_t *p) {
  return hb_le32(p + 9);
}
static inline uint32_t hb_event_log_pos(const uint8_t *p) {
  return hb_le32(p + 13);
}
static inline uint16_t hb_event_flags(const uint8_t *p) {
  return hb_le16(p + 17);
}

/** @brief All fields of the header at p (HB_EVENT_HEADER_LEN bytes). */
static inline void hb_event_header(const uint8_t *p, hb_event_header_t *h) {
  h->ts = hb_event_ts(p);
  h->type = hb_event_type(p);
  h->server_id = hb_event_server_id(p);
  h->size = hb_event_size(p);
  h->log_pos = hb_event_log_pos(p);
  h->flags = hb_event_flags(p);
}

/* ---- event types (MySQL binlog_event.h, MariaDB log_event.h) ---- */

enum {
  HB_EV_START_V3 = 1,
  HB_EV_QUERY = 2,
  HB_EV_STOP = 3,
  HB_EV_ROTATE = 4,
  HB_EV_INTVAR = 5,
  HB_EV_LOAD = 6,
  HB_EV_SLAVE = 7,
  HB_EV_CREATE_FILE = 8,
  HB_EV_APPEND_BLOCK = 9,
  HB_EV_EXEC_LOAD = 10,
  HB_EV_DELETE_FILE = 11,
  HB_EV_NEW_LOAD = 12,
  HB_EV_RAND = 13,
  HB_EV_USER_VAR = 14,
  HB_EV_FDE = 15, /* FORMAT_DESCRIPTION */
  HB_EV_XID = 16,
  HB_EV_BEGIN_LOAD_QUERY = 17,
  HB_EV_EXECUTE_LOAD_QUERY = 18,
  HB_EV_TABLE_MAP = 19,
  HB_EV_PRE_GA_WRITE_ROWS = 20, /* MySQL 5.1.0-5.1.15 */
  HB_EV_PRE_GA_UPDATE_ROWS = 21,
  HB_EV_PRE_GA_DELETE_ROWS = 22,
  HB_EV_WRITE_ROWS_V1 = 23,
  HB_EV_UPDATE_ROWS_V1 = 24,
  HB_EV_DELETE_ROWS_V1 = 25,
  HB_EV_INCIDENT = 26,
  HB_EV_HEARTBEAT = 27,
  HB_EV_IGNORABLE = 28,
  HB_EV_ROWS_QUERY = 29,
  HB_EV_WRITE_ROWS = 30, /* v2 */
  HB_EV_UPDATE_ROWS = 31,
  HB_EV_DELETE_ROWS = 32,
  HB_EV_GTID = 33,
  HB_EV_ANONYMOUS_GTID = 34,
  HB_EV_PREVIOUS_GTIDS = 35,
  HB_EV_TRANSACTION_CONTEXT = 36,
  HB_EV_VIEW_CHANGE = 37,
  HB_EV_XA_PREPARE = 38,
  HB_EV_PARTIAL_UPDATE_ROWS = 39,
  HB_EV_TRANSACTION_PAYLOAD = 40,
  HB_EV_HEARTBEAT_V2 = 41,
  HB_EV_GTID_TAGGED = 42,
  HB_EV_MARIA_ANNOTATE_ROWS = 160,
  HB_EV_MARIA_BINLOG_CHECKPOINT = 161,
  HB_EV_MARIA_GTID = 162,
  HB_EV_MARIA_GTID_LIST = 163,
  HB_EV_MARIA_START_ENCRYPTION = 164,
  HB_EV_MARIA_QUERY_COMPRESSED = 165,
  HB_EV_MARIA_WRITE_ROWS_COMPRESSED_V1 = 166,
  HB_EV_MARIA_UPDATE_ROWS_COMPRESSED_V1 = 167,
  HB_EV_MARIA_DELETE_ROWS_COMPRESSED_V1 = 168,
  HB_EV_MARIA_WRITE_ROWS_COMPRESSED = 169,
  HB_EV_MARIA_UPDATE_ROWS_COMPRESSED = 170,
  HB_EV_MARIA_DELETE_ROWS_COMPRESSED = 171,
  HB_EV_MARIA_PARTIAL_ROW_DATA = 172
};

#endif
