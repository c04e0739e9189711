/*
 * ckpt_file.h - the standalone agent's checkpoints, in a local file.
 *
 * An agent without ZooKeeper owns every partition and keeps the same
 * checkpoint objects as ZooKeeper's checkpoints/<p> nodes
 * (docs/zookeeper.md, Checkpoints) in one JSON file,
 * agent.checkpoint_file:
 *
 *   {"partitions":64,"checkpoints":{"0":{"scn":30064772306,
 *    "ts_ms":1717000000123,"written_ms":1717000000999,"owner":"agent-1",
 *    "epoch":0,"windows":1200,"rows":4800},"1":{...}}}
 *
 * Only partitions that have a checkpoint appear. The file is replaced
 * atomically: written to "<file>.tmp" in the same directory, fsync'd,
 * renamed over the file, and the directory fsync'd; a crash at any point
 * leaves either the old file or the new one, and a temporary file left
 * behind is ignored (and overwritten by the next save).
 *
 * Loading is strict: a file that is not such an object, has a field of
 * the wrong type, lacks one, or names a partition out of range is refused
 * with HD_ECKPT_CORRUPT and a message naming the file and what is wrong;
 * a file made for another number of partitions with HD_ECKPT_PARTITIONS.
 * Neither is ever reset silently: the checkpoints are the agent's
 * position, and losing them replays or skips a whole history. Unknown
 * fields are ignored, as in ZooKeeper's nodes. Only a missing file is an
 * empty store (a first start).
 *
 * Threads: a store may be used from several threads (each partition
 * setting its own checkpoint); one lock guards it, and saves are
 * serialized.
 */
#ifndef AGENT_CKPT_FILE_H
#define AGENT_CKPT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "hd_confdefs.h"
#include "hd_group.h"

#define CKPT_OWNER_MAX HD_REG_NAME_MAX

/** One partition's checkpoint: the object of docs/zookeeper.md, the same
 *  in the file as in ZooKeeper (hd_group.h builds and reads it). */
typedef hd_checkpoint_t ckpt_t;

typedef struct ckpt_file ckpt_file_t;

/**
 * @brief One checkpoint object as JSON (compact, fields in the documented
 *        order): the data of checkpoints/<p>, and each entry of the file.
 * @param json  set to a string the caller frees with free()
 * @returns 0; or HD_ECKPT_CORRUPT naming the field (an empty owner, an
 *          integer above 2^63-1).
 * @locality any thread
 */
int ckpt_build(const ckpt_t *c, char **json, char *err, size_t errlen);

/**
 * @brief Read one checkpoint object (len bytes, no NUL needed).
 * @returns 0 and *out; or HD_ECKPT_CORRUPT with a message naming the
 *          field ("missing field 'epoch'", "field 'scn': expected a
 *          non-negative integer"). *out is untouched then.
 * @locality any thread
 */
int ckpt_parse(const char *json, size_t len, ckpt_t *out, char *err,
               size_t errlen);

/**
 * @brief The checkpoint file of conf: agent.checkpoint_file, or
 *        "<agent.id>.checkpoints.json" when it is not set.
 * @returns buf, NUL-terminated (cut to n - 1 bytes)
 */
const char *ckpt_file_path(const hd_agent_conf_t *conf, char *buf, size_t n);

/**
 * @brief Load path, made for `partitions` partitions (agent.partitions,
 *        1..65536). A missing file gives an empty store.
 * @returns 0 and *out, freed with ckpt_file_free(); HD_ECKPT_CORRUPT,
 *          HD_ECKPT_PARTITIONS or a negative errno (the file cannot be
 *          read), with err naming the file.
 * @locality any thread
 */
int ckpt_file_load(const char *path, uint32_t partitions, ckpt_file_t **out,
                   char *err, size_t errlen);

/** @brief The number of partitions the store was loaded for. */
uint32_t ckpt_file_partitions(const ckpt_file_t *f);

/**
 * @brief Partition p's checkpoint.
 * @returns 1 and *out set; 0 when p has none (*out zeroed), or is out of
 *          range.
 * @locality any thread
 */
int ckpt_file_get(ckpt_file_t *f, uint32_t p, ckpt_t *out);

/**
 * @brief Set partition p's checkpoint in memory; ckpt_file_save() writes
 *        it out. Set several, then save once.
 * @returns 0; -EINVAL when p is out of range or c->owner is empty or not
 *          NUL-terminated.
 * @locality any thread
 */
int ckpt_file_set(ckpt_file_t *f, uint32_t p, const ckpt_t *c);

/**
 * @brief Write the whole store to its file, atomically (see above). When
 *        it fails, the file on disk is the one of the last save that
 *        succeeded.
 * @returns 0, or a negative errno / HD_ECKPT_CORRUPT with err naming the
 *          file (or the temporary file, or the directory) and the error.
 * @locality any thread; saves are serialized
 */
int ckpt_file_save(ckpt_file_t *f, char *err, size_t errlen);

/** @brief Free the store (nothing is saved). NULL is fine. */
void ckpt_file_free(ckpt_file_t *f);

#endif
