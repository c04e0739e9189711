/*
 * hd_reg.h - a relay's registration in ZooKeeper, built and parsed.
 *
 * Every relay keeps an ephemeral node /herald/<cluster>/relays/<source>/<id>
 * whose data is one JSON object: where clients dial it, what SCNs it
 * serves, which source server it reads. docs/zookeeper.md is the contract;
 * this module is its one implementation, shared by the relay (which
 * writes the node) and whatever reads it (heraldctl, the client library).
 * It takes and returns plain values: no YAML, no config, no ZooKeeper
 * handle, no I/O.
 *
 * Reading is strict about the fields it knows (each must be there, of its
 * type) and ignores fields it does not, so that a newer relay may add some
 * without breaking older readers.
 */
#ifndef HD_REG_H
#define HD_REG_H

#include <stddef.h>
#include <stdint.h>

#define HD_REG_NAME_MAX 129 /* a herald name (128) and its NUL */
#define HD_REG_ADDR_MAX 264 /* "[" 255-byte host "]:" 5-digit port NUL */
#define HD_REG_VERSION_MAX 64

typedef struct {
  char id[HD_REG_NAME_MAX];         /* relay.id */
  char source[HD_REG_NAME_MAX];     /* source.name */
  char advertise[HD_REG_ADDR_MAX];  /* host:port clients dial */
  char listen[HD_REG_ADDR_MAX];     /* host:port the relay binds */
  char http[HD_REG_ADDR_MAX];       /* host:port of /metrics, /status */
  char version[HD_REG_VERSION_MAX]; /* herald release, "0.1.0" */
  uint64_t source_server_id;        /* @@server_id of the source; 0: unknown */
  uint64_t oldest_scn;              /* oldest window still served */
  uint64_t newest_scn;              /* newest window stored */
  uint64_t newest_ts_ms;            /* its commit time at the source */
  int connected;                    /* 1 while the binlog stream is up */
  int tls;                          /* 1: the consumer port is TLS only */
  uint64_t updated_ms;              /* when the relay wrote this (Unix ms) */
} hd_reg_t;

/**
 * @brief The node's data for r: compact JSON, fields in documented order.
 * @param json  set to a NUL-terminated string the caller frees with free()
 * @returns 0; or HD_EREG with errstr saying which field is not valid
 *          (an empty or unterminated string, an address that is not
 *          host:port, an integer above 2^63-1, text that is not UTF-8),
 *          in which case *json is NULL. A node that hd_reg_parse() would
 *          refuse is never built.
 * @locality any thread
 */
int hd_reg_build(const hd_reg_t *r, char **json, char *errstr, size_t errlen);

/**
 * @brief Read a node's data (len bytes, no NUL needed) into *out.
 * @returns 0; or HD_EREG with errstr holding one line that names what is
 *          wrong: "not JSON: ... (line L, column C)", "missing field
 *          'advertise'", "field 'newest_scn': expected a non-negative
 *          integer, got a string", ... *out is untouched then.
 * @locality any thread
 */
int hd_reg_parse(const char *data, size_t len, hd_reg_t *out, char *errstr,
                 size_t errlen);

#endif
