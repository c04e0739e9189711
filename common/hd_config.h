/*
 * hd_config.h - YAML configuration into typed structs.
 *
 * Each config kind (relay, agent, coordinator) is one table of properties:
 * dotted key, type, offset of the field, bounds, default, documentation. A
 * single walker maps the YAML document onto the struct. It refuses unknown
 * and duplicate keys, wrong types, values out of range and missing required
 * keys, and every refusal is one line: "FILE:LINE:COLUMN: what is wrong".
 * The same table prints the reference documentation (heraldctl config-doc).
 */
#ifndef HD_CONFIG_H
#define HD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  HD_T_STR,      /* char *, owned by the struct */
  HD_T_INT,      /* int64_t, within [min, max] */
  HD_T_SIZE,     /* uint64_t bytes: "256MiB" */
  HD_T_DURATION, /* uint64_t milliseconds: "72h" */
  HD_T_BOOL,     /* int: true/false */
  HD_T_HOSTPORT, /* hd_hostport_t: "host:port" */
  HD_T_HOSTLIST, /* char *: list or comma string of host:port, joined by ',' */
  HD_T_STRLIST,  /* hd_strlist_t */
  HD_T_ENUM,     /* int: index into enums[] */
  HD_T_START,    /* hd_start_t: earliest | latest | FILE:POS | GTID */
  HD_T_STRMAP    /* hd_strlist_t of key, value, key, value, ...: a mapping
                    of names to names ("shop.orders: copy.orders") */
} hd_type_t;

typedef struct {
  char host[256];
  uint16_t port;
} hd_hostport_t;

typedef struct {
  char **v;
  size_t n;
} hd_strlist_t;

typedef enum {
  HD_START_EARLIEST,
  HD_START_LATEST,
  HD_START_FILEPOS,
  HD_START_GTID
} hd_start_kind_t;

typedef struct {
  hd_start_kind_t kind;
  char file[256];  /* FILEPOS */
  uint64_t pos;    /* FILEPOS */
  char gtid[1024]; /* GTID: MariaDB "D-S-N[,...]" or MySQL "uuid:a-b[,...]" */
} hd_start_t;

typedef struct {
  const char *key; /* dotted path: "relay.buffer_bytes" */
  hd_type_t type;
  size_t off;
  int64_t min, max; /* INT, SIZE, DURATION (ms); max 0 = none */
  int required;
  const char *def; /* default, in the YAML syntax; NULL = none */
  const char *doc;
  const char *const *enums; /* ENUM: NULL-terminated names */
} hd_prop_t;

typedef struct hd_conf_ctx hd_conf_ctx_t;

typedef struct {
  const char *kind;       /* "relay" */
  const hd_prop_t *props; /* terminated by key == NULL */
  size_t size;            /* sizeof the struct */
  /* Checks across keys after the walk; report with hd_conf_error(). */
  int (*validate)(hd_conf_ctx_t *ctx, void *conf);
} hd_conf_schema_t;

/**
 * @brief Load a config file into *conf (zeroed first, then defaults).
 * @param conf  a struct of schema->size bytes; free it with
 *              hd_config_free() whether or not loading succeeded
 * @returns 0, or HD_ECONFIG with errstr holding one line
 *          "FILE:LINE:COLUMN: message" (or "FILE: message" for I/O errors).
 */
int hd_config_load_file(const char *path, const hd_conf_schema_t *schema,
                        void *conf, char *errstr, size_t errlen);

/** @brief The same, from memory; name stands in for the file name. */
int hd_config_load_string(const char *name, const char *text, size_t len,
                          const hd_conf_schema_t *schema, void *conf,
                          char *errstr, size_t errlen);

/**
 * @brief Load a file whose kind is named by its top-level section
 *        (relay:, agent: or coordinator:) against one of the schemas.
 * @param which  set to the index in schemas[] that matched
 * @param conf   a buffer of at least the largest schema's size
 */
int hd_config_load_any(const char *path, const hd_conf_schema_t *const *schemas,
                       size_t nschemas, int *which, void *conf, char *errstr,
                       size_t errlen);

/** @brief Free what the walker allocated in conf (the struct stays). */
void hd_config_free(const hd_conf_schema_t *schema, void *conf);

/**
 * @brief From a validate callback: fail with a message located at the key
 *        `key` (dotted) if the file has it, else at its section, else at
 *        the start of the file.
 * @returns HD_ECONFIG, for `return hd_conf_error(...)`.
 */
int hd_conf_error(hd_conf_ctx_t *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief From a validate callback: 1 if the file set `key`. */
int hd_conf_has(hd_conf_ctx_t *ctx, const char *key);

/** @brief Print the reference documentation of a schema as Markdown. */
void hd_config_print_doc(const hd_conf_schema_t *schema, FILE *out);

/** @brief Parse source.start syntax (exposed for the CLI). */
int hd_parse_start(const char *s, hd_start_t *out);

#endif
