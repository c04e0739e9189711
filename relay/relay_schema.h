/*
 * relay_schema.h - the relay's table schemas: every version of every
 * table's column definitions it has seen, as packed herald.TableSchema,
 * kept in DATA_DIR/schemas/ so that windows read back from the log store
 * after a restart still have the schema they were captured with.
 *
 * The fetcher registers a table's version while it builds a window (before
 * the window is stored, so a consumer can never be sent a row whose schema
 * the relay does not have); the server looks versions up to send each
 * consumer the ones it has not seen. One mutex guards the map; versions are
 * immutable once registered.
 */
#ifndef RELAY_SCHEMA_H
#define RELAY_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "hb.h"

typedef struct relay_schemas relay_schemas_t;

/**
 * @brief Open the schemas of data_dir (creating DATA_DIR/schemas) and load
 *        what is there.
 * @returns the registry, or NULL with err filled (an unreadable or corrupt
 *          file is named).
 */
relay_schemas_t *relay_schemas_open(const char *data_dir, char *err,
                                    size_t errlen);

void relay_schemas_free(relay_schemas_t *s);

/**
 * @brief The schema version of t, registered (and written to disk with
 *        fsync) if it is new.
 * @returns 0 and *version, or -errno when a new version cannot be kept.
 * @locality the fetcher thread
 */
int relay_schemas_note(relay_schemas_t *s, const hb_table_t *t,
                       uint32_t *version);

/**
 * @brief Append the packed TableSchema of "db.table" at version to out
 *        (growing *out, *len, *cap).
 * @returns 1 when appended, 0 when unknown.
 * @locality any thread
 */
int relay_schemas_get(relay_schemas_t *s, const char *dbtable, uint32_t version,
                      uint8_t **out, size_t *len, size_t *cap);

#endif
