/*
 * hd_json_int.h - field tables for the JSON objects herald keeps in
 * ZooKeeper (internal to common/: hd_reg.c, hd_group.c).
 *
 * A node's scalar fields are listed once, as a table of name, kind and
 * place in a C struct. Building and parsing walk the same table, so the two
 * cannot disagree on a name or a type, and every reader gives the same
 * messages: "missing field 'x'", "field 'x': expected a string, got an
 * integer", ... Fields the table does not list are ignored when parsing,
 * so that a newer writer may add some.
 */
#ifndef HD_JSON_INT_H
#define HD_JSON_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  HD__JF_NAME,     /* char[]: a non-empty string */
  HD__JF_ADDR,     /* char[]: host:port, as hd_parse_hostport() reads it */
  HD__JF_DIAL,     /* char[]: host:port a client can dial: no wildcard */
  HD__JF_ADDR_OPT, /* char[]: host:port, or "" for none */
  HD__JF_SESSION,  /* uint64_t: a ZooKeeper session id, "0x" + hex */
  HD__JF_U64,      /* uint64_t: an integer in [0, 2^63-1] */
  HD__JF_PARTS,    /* uint32_t: a partition count, 1..HD__JSON_MAX_PARTS */
  HD__JF_BOOL      /* int: true or false */
} hd__jkind_t;

/* agent.partitions' range (hd_confdefs.c); hd_group.h says it again. */
#define HD__JSON_MAX_PARTS 65536

typedef struct {
  const char *name;
  hd__jkind_t kind;
  size_t off;
  size_t size; /* of the char array, for strings */
} hd__jfield_t;

#define HD__JF_STR(type, f, k)                                                 \
  { #f, k, offsetof(type, f), sizeof(((type *)0)->f) }
#define HD__JF_NUM(type, f, k)                                                 \
  { #f, k, offsetof(type, f), 0 }

/**
 * @brief Fill err[n] with one line (newlines in quoted values become
 *        spaces). @returns code, for `return hd__json_fail(...)`.
 */
int hd__json_fail(int code, char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** @brief "a string", "an integer", ... for messages. */
const char *hd__json_type_name(const json_t *v);

/**
 * @brief Parse len bytes into a JSON object: duplicate keys refused.
 * @returns the object (caller json_decref()s it), or NULL with err filled
 *          ("not JSON: ... (line L, column C)", "expected a JSON object,
 *          got an array").
 */
json_t *hd__json_load_object(const char *data, size_t len, int code, char *err,
                             size_t n);

/**
 * @brief Add the fields of the struct at base to object o, in table order.
 * @returns 0, or code with err naming the field a node could not hold
 *          (empty or unterminated string, bad address, value above 2^63-1,
 *          not UTF-8, ...). Whatever was added stays in o.
 */
int hd__json_put(json_t *o, const hd__jfield_t *f, size_t nf, const void *base,
                 int code, char *err, size_t n);

/**
 * @brief Read the fields of the table from object o into the struct at
 *        base. @returns 0, or code with err naming the first field that is
 *        missing or not valid; base may then hold some fields.
 */
int hd__json_get(const json_t *o, const hd__jfield_t *f, size_t nf, void *base,
                 int code, char *err, size_t n);

/**
 * @brief o as compact JSON, keys in insertion order.
 * @returns a string to free(), or NULL with err filled.
 */
char *hd__json_dump(const json_t *o, int code, char *err, size_t n);

/**
 * @brief A node that is just the fields of one table: the struct at base
 *        as compact JSON in *json (the caller frees it with free()).
 * @returns 0, or code with err filled and *json NULL.
 */
int hd__json_build_node(const hd__jfield_t *f, size_t nf, const void *base,
                        char **json, int code, char *err, size_t n);

/**
 * @brief The reverse: len bytes of data into the struct of size bytes at
 *        out, which is left untouched on failure (zeroed, then filled, on
 *        success). @returns 0 or code with err filled.
 */
int hd__json_parse_node(const hd__jfield_t *f, size_t nf, const char *data,
                        size_t len, void *out, size_t size, int code, char *err,
                        size_t n);

#endif
