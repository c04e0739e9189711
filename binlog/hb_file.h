/*
 * hb_file.h - reading binlog files (plain or gzip) through a decoder.
 *
 * The reader checks the magic bytes, frames events by their event_size
 * field, computes each event's offset from the sizes (log_pos is not
 * trusted: MariaDB 11.4+ writes 0 for events from the transaction cache)
 * and feeds them to hb_decoder_feed(). Reads are large and buffered.
 */
#ifndef HB_FILE_H
#define HB_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "hb.h"

typedef struct {
  /** Skip events before this offset, except the format description,
   *  then drop a transaction cut in half by the start (0: from 4). */
  uint64_t from_pos;
  /** Largest event accepted, in bytes; 0 means 1 GiB + 64 KiB. */
  size_t max_event;
  /** With hb_read_buffer: from_pos is known to start an event, so the
   *  reader goes there straight after the format description instead of
   *  framing every event before it (pieces of one file read in parallel). */
  int from_is_event;
} hb_read_opts_t;

/**
 * @brief Decode the binlog file at path: plain, or gzip (by content).
 *        Names the decoder's file after the path's last component, with a
 *        ".gz" suffix removed. Ends with hb_decoder_finish(), since a
 *        transaction never spans two binlog files.
 * @param o  NULL for defaults
 * @returns 0, or a negative code with "FILE:OFFSET: what is wrong" in
 *          hb_decoder_errmsg(): HB_ENOT_BINLOG, HB_ETRUNCATED, a decoder
 *          error, or a negative errno for I/O errors.
 */
int hb_read_file(hb_decoder_t *dec, const char *path, const hb_read_opts_t *o);

/** @brief The same for a binlog held in memory (magic included). */
int hb_read_buffer(hb_decoder_t *dec, const char *name, const uint8_t *buf,
                   size_t len, const hb_read_opts_t *o);

#endif
