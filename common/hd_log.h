/*
 * hd_log.h - structured logging.
 *
 * One line per record, logfmt style, on stderr:
 *   ts=2026-11-22T01:51:13.123Z level=warn comp=relay msg="frame too large"
 * len=9000000 peer=127.0.0.1:4411 Quiet by default: only warnings and errors
 * are written until the program raises the level (-v, --log-level,
 * HERALD_LOG_LEVEL). The level is checked before any argument is formatted, so
 * disabled debug records cost one comparison.
 */
#ifndef HD_LOG_H
#define HD_LOG_H

#include <stdarg.h>

typedef enum {
  HD_LL_DEBUG = 0,
  HD_LL_INFO = 1,
  HD_LL_WARN = 2,
  HD_LL_ERROR = 3,
  HD_LL_OFF = 4
} hd_loglevel_t;

/* Records below this level are dropped. Set once at start-up. */
extern int hd_log_level;

/**
 * @brief Write one record.
 * @param comp   component ("relay", "fetch", "zk", ...)
 * @param msg    a short constant event text; quoted when it has spaces
 * @param kvfmt  printf format of the key=value part, or NULL
 * @locality any thread: each record is written with a single write(2)
 */
#define hd_log(lvl, comp, msg, ...)                                            \
  do {                                                                         \
    if ((int)(lvl) < hd_log_level)                                             \
      break;                                                                   \
    hd__log((lvl), (comp), (msg), __VA_ARGS__);                                \
  } while (0)

void hd__log(int lvl, const char *comp, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));
void hd__logv(int lvl, const char *comp, const char *msg, const char *kvfmt,
              va_list ap);

/**
 * @brief Parse "debug", "info", "warn", "error" or "off".
 * @returns the level, or -1 if the name is unknown.
 */
int hd_log_level_parse(const char *name);

/** @brief Name of a level ("warn"). */
const char *hd_log_level_name(int lvl);

/**
 * @brief Apply HERALD_LOG_LEVEL from the environment, if set and valid.
 * @returns 0, or -1 (and leaves the level alone) if the value is unknown.
 */
int hd_log_init_from_env(void);

/** @brief Write log records to fd instead of stderr (tests). */
void hd_log_set_fd(int fd);

#endif
