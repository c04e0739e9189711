/*
 * agent_util.h - small helpers the agent's modules share (the sinks, the
 * checkpoint file); internal to consumer-agent/.
 */
#ifndef AGENT_UTIL_H
#define AGENT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Write all len bytes to fd, retrying short writes and EINTR.
 *        SIGPIPE is blocked in the calling thread for the duration and a
 *        SIGPIPE the write raised is consumed, so a reader that went away
 *        gives -EPIPE instead of killing the process; the process's
 *        signal dispositions are not touched.
 * @param done  set to the bytes written before a failure (may be NULL)
 * @returns 0 or -errno
 * @locality any thread
 */
int agent__write_all(int fd, const char *buf, size_t len, size_t *done);

/**
 * @brief fsync the directory of path, so that a name just created or
 *        renamed in it survives a crash.
 * @param dir  receives the directory's name, for the caller's message
 * @returns 0 or -errno
 */
int agent__sync_dir_of(const char *path, char *dir, size_t dirlen);

/** @brief CLOCK_MONOTONIC in milliseconds. */
uint64_t agent__mono_ms(void);

/** @brief Sleep ms milliseconds (EINTR resumed). */
void agent__sleep_ms(uint64_t ms);

/**
 * @brief The first line of a secret's file (a token), without its line end.
 * @param key  the config key naming the file, for the message
 * @returns a string the caller frees, or NULL with *rc HD_ECONFIG and err
 *          naming key and path (never the file's contents)
 */
char *agent__read_first_line(const char *key, const char *path, char *err,
                             size_t errlen, int *rc);

/**
 * @brief Write tmpl to out with {db} and {table} replaced by db and table
 *        (a destination's name: a subject, a topic, an index).
 * @param lower  1: db and table lowercased (names a destination refuses in
 *               upper case, such as an Elasticsearch index)
 * @returns 0, or -1 when out (cap bytes) is too small
 */
int agent__expand_template(const char *tmpl, const char *db, const char *table,
                           int lower, char *out, size_t cap);

#endif
