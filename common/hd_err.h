/*
 * hd_err.h - herald's error space: every error code of every module.
 *
 * Functions return int: 0 on success, a negative code on failure. Three
 * kinds of negative code meet in herald, and no value may mean two things:
 *   - negative errno values: -1..-4095 on Linux (the kernel's MAX_ERRNO);
 *   - libuv's codes: UV_E* are negative errno values on Unix, and libuv's
 *     own (UV_EOF, getaddrinfo's UV_EAI_*, stand-ins for errnos a platform
 *     lacks) lie in -3000..-4095;
 *   - herald's codes, all in HD_ERR_MAP below, all in -10000..-19999.
 * All three pass through unchanged, and hd_strerror() knows all three.
 *
 * Each module owns a block of HD_ERR_BLOCK codes below its base: the
 * binlog decoder's are -13001, -13002, ... (HD_ERR_IN(err, BINLOG)). A new
 * code takes the next free value of its module's block; a new module takes
 * the next block. Values never move once released. The compiler refuses a
 * value used twice (hd_strerror() is a switch over the table) or outside
 * its module's block (hd_err.c).
 *
 * The codes keep their modules' prefixes: HD_E* for common/, HB_E* for the
 * binlog decoder (binlog/hb.h), RELAY_STORE_E* for the log store
 * (relay/relay_store.h). The relay protocol's codes (PROTO) are what a
 * consumer acts on; hd_err_to_wire() and hd_err_from_wire() (hd_frame.h)
 * translate them to and from the wire's ErrorCode.
 */
#ifndef HD_ERR_H
#define HD_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* XX(module, base): each module's codes lie in (base - HD_ERR_BLOCK, base). */
#define HD_ERR_MODULES(XX)                                                     \
  XX(COMMON, -10000)                                                           \
  XX(FRAME, -11000)                                                            \
  XX(CONFIG, -12000)                                                           \
  XX(BINLOG, -13000)                                                           \
  XX(STORE, -14000)                                                            \
  XX(PROTO, -15000)                                                            \
  XX(REG, -16000)                                                              \
  XX(GROUP, -17000)                                                            \
  XX(AGENT, -18000)

#define HD_ERR_BLOCK 1000

/* XX(module, name, value, message): one row per code, grouped by module. */
#define HD_ERR_MAP(XX)                                                         \
  /* common: shared code */                                                    \
  XX(COMMON, HD_ENOMEM, -10001, "out of memory")                               \
  XX(COMMON, HD_EIO, -10002, "input/output error")                             \
  /* frame: the frame codec (hd_frame.h) */                                    \
  XX(FRAME, HD_EFRAME_TOO_BIG, -11001, "frame exceeds the maximum frame size") \
  XX(FRAME, HD_EBAD_FRAME, -11002, "malformed frame")                          \
  XX(FRAME, HD_EFRAME_EMPTY, -11003, "frame of length zero")                   \
  /* config: configuration files and values (hd_config.h, hd_parse.h) */       \
  XX(CONFIG, HD_ECONFIG, -12001, "invalid configuration")                      \
  XX(CONFIG, HD_EPARSE, -12002, "invalid value")                               \
  XX(CONFIG, HD_ERANGE, -12003, "value out of range")                          \
  /* binlog: the binlog decoder (binlog/hb.h) */                               \
  XX(BINLOG, HB_ECORRUPT, -13001, "corrupt binlog event")                      \
  XX(BINLOG, HB_ECHECKSUM, -13002, "binlog event checksum mismatch")           \
  XX(BINLOG, HB_ETRUNCATED, -13003, "binlog ends inside an event")             \
  XX(BINLOG, HB_ENOT_BINLOG, -13004, "not a binlog file")                      \
  XX(BINLOG, HB_EUNSUPPORTED, -13005, "unsupported binlog content")            \
  XX(BINLOG, HB_EINCIDENT, -13006,                                             \
     "INCIDENT event: the source reports lost changes")                        \
  XX(BINLOG, HB_EINCOMPLETE, -13007, "binlog ends inside a transaction")       \
  XX(BINLOG, HB_ESCN_RANGE, -13008,                                            \
     "binlog file index or offset does not fit 32 bits")                       \
  XX(BINLOG, HB_ESCHEMA, -13009, "the schema provider failed")                 \
  XX(BINLOG, HB_ESTOPPED, -13010, "stopped by a callback")                     \
  /* store: the relay's log store (relay/relay_store.h) */                     \
  XX(STORE, RELAY_STORE_ELOCKED, -14001,                                       \
     "store directory is locked by another process")                           \
  XX(STORE, RELAY_STORE_ESCN_ORDER, -14002,                                    \
     "SCN not greater than the newest stored SCN")                             \
  XX(STORE, RELAY_STORE_ETOO_BIG, -14003,                                      \
     "record larger than the store's maximum record size")                     \
  XX(STORE, RELAY_STORE_ETOO_OLD, -14004,                                      \
     "SCN older than what the store retains")                                  \
  XX(STORE, RELAY_STORE_ECORRUPT, -14005, "corrupt data in the log store")     \
  XX(STORE, RELAY_STORE_EEMPTY, -14006, "the store holds no record")           \
  XX(STORE, RELAY_STORE_EBROKEN, -14007,                                       \
     "an earlier write or sync failed; reopen the store")                      \
  XX(STORE, RELAY_STORE_EBADOPT, -14008, "invalid store option")               \
  /* proto: a relay's answer to a consumer; -1500N is the wire's ErrorCode N   \
   * (hd_err_to_wire()), HD_EREMOTE the wire's ERR_UNKNOWN */                  \
  XX(PROTO, HD_EBAD_REQUEST, -15001, "malformed or unexpected request")        \
  XX(PROTO, HD_ESCN_TOO_OLD, -15002,                                           \
     "SCN older than the relay's retention: bootstrap needed")                 \
  XX(PROTO, HD_EAUTH, -15003, "bad or missing token")                          \
  XX(PROTO, HD_ETOO_MANY, -15004, "the relay's connection limit is reached")   \
  XX(PROTO, HD_EUNAVAILABLE, -15005, "relay shutting down or not ready")       \
  XX(PROTO, HD_EVERSION, -15006, "protocol version not supported")             \
  XX(PROTO, HD_ESNAPSHOT, -15007, "the snapshot cannot go on")                 \
  XX(PROTO, HD_EREMOTE, -15100, "the relay reported an error of unknown kind") \
  /* reg: a relay's registration in ZooKeeper (hd_reg.h) */                    \
  XX(REG, HD_EREG, -16001, "malformed relay registration")                     \
  /* group: consumer-group and coordinator nodes in ZooKeeper (hd_group.h) */  \
  XX(GROUP, HD_EGROUP, -17001, "malformed consumer-group or coordinator node") \
  /* agent: the agent's sinks and checkpoint file (consumer-agent/) */         \
  XX(AGENT, HD_ESINK_EXITED, -18001, "the sink command exited")                \
  XX(AGENT, HD_ESINK_BROKEN, -18002,                                           \
     "an earlier write or flush of this partition failed; close and reopen "   \
     "it")                                                                     \
  XX(AGENT, HD_ESINK_ORDER, -18003, "window out of SCN order")                 \
  XX(AGENT, HD_ECKPT_CORRUPT, -18004, "malformed checkpoint file")             \
  XX(AGENT, HD_ECKPT_PARTITIONS, -18005,                                       \
     "checkpoint file made for another number of partitions")                  \
  XX(AGENT, HD_ESINK_FENCED, -18006,                                           \
     "the destination names a newer owner of the partition")                   \
  XX(AGENT, HD_ESINK_DB, -18007, "the destination database refused or failed") \
  XX(AGENT, HD_ESINK_VALUE, -18008,                                            \
     "a value the destination cannot store as it is")                          \
  XX(AGENT, HD_ESINK_SCHEMA, -18009,                                           \
     "the destination table does not match the stream")                        \
  XX(AGENT, HD_ESINK_REMOTE, -18010,                                           \
     "the destination refused or did not acknowledge a write")

typedef enum {
#define XX(m, name, v, s) name = (v),
  HD_ERR_MAP(XX)
#undef XX
} hd_err_t;

enum {
#define XX(m, base) HD_ERR_BASE_##m = (base),
  HD_ERR_MODULES(XX)
#undef XX
};

/** @brief Whether err is one of module m's codes (m as in HD_ERR_MODULES). */
#define HD_ERR_IN(err, m)                                                      \
  ((int)(err) < (int)HD_ERR_BASE_##m &&                                        \
   (int)(err) > (int)HD_ERR_BASE_##m - HD_ERR_BLOCK)

/**
 * @brief Message for any error code: herald's own, libuv's (uv_strerror())
 *        or a negative errno (strerror()). 0 is "success".
 * @returns a static string; never NULL ("unknown error" for other values).
 * @locality any thread
 */
const char *hd_strerror(int err);

/**
 * @brief Symbolic name for logs and tests: "HD_EBAD_FRAME", "HB_ECORRUPT";
 *        libuv's name for its codes ("ENOENT", "EAI_AGAIN", "EOF"); "ERRNO"
 *        for another negative errno, "OK" for 0, "UNKNOWN" otherwise.
 * @returns a static string; never NULL.
 * @locality any thread
 */
const char *hd_err_name(int err);

/**
 * @brief Fill a caller's message buffer (errlen bytes; nothing when 0)
 *        with one line, newlines and carriage returns made spaces (a path
 *        or a command may hold them), and return rc: the last step of a
 *        failure path that reports through (err, errlen).
 * @locality any thread
 */
int hd_errorf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int hd_verrorf(char *err, size_t errlen, int rc, const char *fmt, va_list ap);

#endif
