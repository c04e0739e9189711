/*
 * relay_store.h - the relay's durable log store.
 *
 * An append-only log of transaction windows on local disk. Each record is one
 * window, or one chunk of a window too large for one record: a 64-bit SCN
 * (strictly increasing from window to window; the chunks of a window share
 * it), a timestamp and opaque payload bytes (the encoded window). The log is a
 * directory of segment files, each with a sparse SCN index beside it;
 * docs/log-store.md describes the format, the recovery rules and the fsync
 * policies.
 *
 * What the store promises:
 *   - After relay_store_append() returns 0 with fsync = HD_FSYNC_WINDOW, the
 *     record survives a crash of the process or the machine.
 *   - The log on disk is always a gap-free prefix of what was appended: open
 *     drops a torn tail (and logs it), never a record in the middle.
 *   - No SCN is stored twice: append refuses an SCN that is not greater than
 *     the newest stored one, also after a restart.
 *   - Readers never skip silently: a damaged record or a range deleted by
 *     retention is an error, not a jump.
 *
 * Threads. One thread owns the store (the "owner"): it calls open, append,
 * retain, last and close. relay_store_sync(), the getters and everything
 * about readers may be called from any thread, concurrently with the owner.
 * A reader itself is used by one thread at a time. Readers keep the segment
 * they read open, so retention can delete it under them: they finish it and
 * then see RELAY_STORE_ETOO_OLD if the next segment is gone too.
 */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "hd_confdefs.h"
#include "hd_err.h"

/* The store's error codes, RELAY_STORE_ECORRUPT, RELAY_STORE_ETOO_OLD...,
 * are the STORE block of herald's error space (hd_err.h); hd_strerror()
 * gives their messages. */

/* Largest payload of one record. A window is at most 64 MiB; the margin
 * keeps a corrupt length field from making a reader allocate gigabytes. */
#define RELAY_STORE_MAX_RECORD (256u << 20)

/* Defaults for zero-valued options. */
#define RELAY_STORE_DEFAULT_SEGMENT_BYTES (128ull << 20)
#define RELAY_STORE_DEFAULT_INDEX_BYTES (64u << 10)

typedef struct {
  const char *dir;            /* created (with parents) if missing */
  uint64_t segment_bytes;     /* a segment is closed when the next record
                                 would take it past this; 0: 128 MiB */
  int fsync;                  /* hd_fsync_t: WINDOW, INTERVAL or NONE */
  uint64_t fsync_interval_ms; /* INTERVAL: append also syncs when the last
                                 sync is older than this; 0: 100 ms */
  uint64_t retention_ms;      /* relay_store_retain() by age; 0: none */
  uint64_t retention_bytes;   /* relay_store_retain() by size; 0: none */
  uint64_t base_scn;          /* a new store only: the SCN just before its
                                 first record; readers asking for anything
                                 older get RELAY_STORE_ETOO_OLD */
  uint32_t index_bytes;       /* one index entry per this many segment bytes;
                                 0: 64 KiB */
} relay_store_opts_t;

typedef struct relay_store relay_store_t;
typedef struct relay_store_reader relay_store_reader_t;

/**
 * @brief Fill store options from the relay's configuration (relay.data_dir,
 *        segment_bytes, fsync, fsync_interval, retention, retention_bytes).
 *        base_scn and index_bytes are set to 0.
 * @returns o's dir points into c: keep c alive while o is used.
 * @locality any thread
 */
void relay_store_opts_from_conf(const hd_relay_conf_t *c,
                                relay_store_opts_t *o);

/**
 * @brief Open (or create) the store in o->dir, lock it against a second
 *        process, and recover it: segments that were not closed cleanly are
 *        verified record by record and a torn or corrupt tail is truncated
 *        (logged with file, offset and bytes dropped).
 * @param out    on success, the store; free it with relay_store_close().
 * @param errstr on failure, one line saying what failed, with file and
 *               offset where there is one.
 * @returns 0; RELAY_STORE_ELOCKED if another store holds the directory,
 *          RELAY_STORE_ECORRUPT if damage sits before intact closed segments
 *          (open refuses to drop those), RELAY_STORE_EBADOPT, or -errno.
 * @locality the owner thread
 */
int relay_store_open(const relay_store_opts_t *o, relay_store_t **out,
                     char *errstr, size_t errlen);

/**
 * @brief Close the store: sync the active segment (unless fsync is
 *        HD_FSYNC_NONE), give its index a trailer, unlock and free. Every
 *        reader must be closed before; an open reader aborts the process
 *        (it would read freed memory otherwise). No other thread may call
 *        relay_store_sync() or a getter during or after this.
 * @locality the owner thread
 */
void relay_store_close(relay_store_t *s);

/**
 * @brief Append one record. Writes it with one writev; rolls to a new
 *        segment first when this one would exceed segment_bytes. With
 *        HD_FSYNC_WINDOW the record is on stable storage when this returns;
 *        with HD_FSYNC_INTERVAL it is once relay_store_sync() has run (append
 *        itself syncs when the last sync is older than fsync_interval_ms).
 *        Readers see the record once this returns 0.
 * @param data   copied; the caller keeps ownership.
 * @returns 0; RELAY_STORE_ESCN_ORDER if scn <= relay_store_last_scn();
 *          RELAY_STORE_ETOO_BIG if len > RELAY_STORE_MAX_RECORD;
 *          -errno when the write fails (the partial record is removed and the
 *          store stays usable: ENOSPC may be retried) or when rolling to a
 *          new segment fails; -errno or RELAY_STORE_EBROKEN when a sync
 *          fails, and RELAY_STORE_EBROKEN from then on until the store is
 *          reopened (after a failed fsync what reached the disk is unknown:
 *          only recovery can tell). relay_store_errmsg() has the details,
 *          with file and offset.
 * @locality the owner thread
 */
int relay_store_append(relay_store_t *s, uint64_t scn, uint64_t ts_ms,
                       const void *data, size_t len);

/**
 * @brief Append one chunk of a window stored as several records (a window
 *        too large for one): every chunk has the window's SCN; more is 1
 *        on all but the last. The chunks are written as they come but
 *        published (seen by readers, counted, synced by the fsync policy)
 *        only with the last one, and a window never spans segments. If the
 *        process dies before the last chunk, recovery drops the window's
 *        chunks as a torn tail; relay_store_close() drops them too.
 *        relay_store_append() is this with more = 0.
 * @returns as relay_store_append(); RELAY_STORE_ESCN_ORDER also for a
 *          chunk whose SCN is not the open window's.
 * @locality the owner thread
 */
int relay_store_append_chunk(relay_store_t *s, uint64_t scn, uint64_t ts_ms,
                             const void *data, size_t len, int more);

/**
 * @brief fdatasync the active segment if anything was appended since the
 *        last sync. For HD_FSYNC_INTERVAL, call it from a timer every
 *        fsync_interval_ms.
 * @returns 0, or RELAY_STORE_EBROKEN when the sync failed (the store refuses
 *          appends from then on).
 * @locality any thread
 */
int relay_store_sync(relay_store_t *s);

/** @brief 1 if records were appended since the last sync. @locality any */
int relay_store_dirty(relay_store_t *s);

/** @brief SCN of the oldest record held; 0 if none. @locality any thread */
uint64_t relay_store_first_scn(relay_store_t *s);

/**
 * @brief SCN of the newest record; when the store holds none, the SCN just
 *        before where its first record goes (base_scn, or the newest record
 *        that retention deleted). The next append needs a greater SCN.
 * @locality any thread
 */
uint64_t relay_store_last_scn(relay_store_t *s);

/**
 * @brief The oldest point readers may start from: relay_store_reader_open()
 *        accepts any after_scn >= this. It is the SCN of the newest record
 *        retention deleted, or base_scn.
 * @locality any thread
 */
uint64_t relay_store_base_scn(relay_store_t *s);

/** @brief Timestamp of the newest record; 0 if none. @locality any thread */
uint64_t relay_store_last_ts(relay_store_t *s);

/** @brief Bytes of segments and indexes on disk. @locality any thread */
uint64_t relay_store_bytes(relay_store_t *s);

/** @brief Number of records held. @locality any thread */
uint64_t relay_store_count(relay_store_t *s);

/** @brief Number of segment files. @locality any thread */
size_t relay_store_segments(relay_store_t *s);

/**
 * @brief Copy of the newest record's payload (the relay decodes it to learn
 *        where to resume the binlog).
 * @param data  on success, memory the caller frees with free().
 * @returns 0, RELAY_STORE_EEMPTY, RELAY_STORE_ECORRUPT or -errno.
 * @locality the owner thread
 */
int relay_store_last(relay_store_t *s, void **data, size_t *len);

/**
 * @brief Delete whole oldest segments: those whose newest record's ts_ms is
 *        older than now_ms - retention_ms, and then more while the store is
 *        larger than retention_bytes. Never the active segment. Open readers
 *        keep reading a deleted segment to its end. Call it from a timer
 *        (every few seconds is plenty: it deletes whole segments).
 * @returns the number of segments deleted, or a negative error.
 * @locality the owner thread
 */
int relay_store_retain(relay_store_t *s, uint64_t now_ms);

/**
 * @brief What the last failing call of the owner thread failed on, with file
 *        and offset. Valid until the next call on the owner thread.
 */
const char *relay_store_errmsg(relay_store_t *s);

/**
 * @brief Open a reader positioned at the first record with SCN > after_scn.
 *        Seeks with a binary search over segments and the sparse index.
 * @param out  on success, a reader; free it with relay_store_reader_close().
 * @returns 0; RELAY_STORE_ETOO_OLD if after_scn < relay_store_base_scn(),
 *          i.e. records the reader needs may have been deleted.
 * @locality any thread
 */
int relay_store_reader_open(relay_store_t *s, uint64_t after_scn,
                            relay_store_reader_t **out);

/**
 * @brief Next record, in SCN order.
 * @param data  points into the reader's buffer: valid until the next call
 *              on this reader or its close.
 * @returns 0 with a record; 1 at the current end (a later call sees records
 *          appended since); RELAY_STORE_ECORRUPT on a damaged record and
 *          RELAY_STORE_ETOO_OLD when retention deleted the segment the reader
 *          needs next (relay_store_reader_errmsg() names file and offset);
 *          -errno on a read error. Errors are sticky.
 * @locality the thread using the reader
 */
int relay_store_reader_next(relay_store_reader_t *r, uint64_t *scn,
                            uint64_t *ts_ms, const void **data, size_t *len);

/**
 * @brief Whether the record relay_store_reader_next() returned last is a
 *        chunk with more chunks of the same window after it.
 */
int relay_store_reader_more(const relay_store_reader_t *r);

/** @brief Details of the reader's error, with file and offset. */
const char *relay_store_reader_errmsg(relay_store_reader_t *r);

/** @brief Free a reader (NULL is fine). @locality the reader's thread */
void relay_store_reader_close(relay_store_reader_t *r);

#endif
