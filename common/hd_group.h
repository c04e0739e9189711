/*
 * hd_group.h - the consumer groups' and coordinators' nodes in ZooKeeper:
 * their paths, and their JSON built and parsed.
 *
 * docs/zookeeper.md is the contract ("Coordinators", "Consumer groups");
 * this module is its one implementation, for the coordinator, the agent,
 * heraldctl and the client library alike. Like hd_reg.h it takes and
 * returns plain values: no ZooKeeper handle, no config, no I/O, no
 * jansson in this header.
 *
 *   /herald/<cluster>/coordinator/election/n_<seq>       hd_election_t
 *   /herald/<cluster>/groups/<group>                      hd_group_t
 *   /herald/<cluster>/groups/<group>/members/<id>_<seq>   hd_member_t
 *   /herald/<cluster>/groups/<group>/assignment           hd_assignment_t
 *   /herald/<cluster>/groups/<group>/owners/<p>           hd_owner_t
 *   /herald/<cluster>/groups/<group>/checkpoints/<p>      hd_checkpoint_t
 *   /herald/<cluster>/groups/<group>/drain/<agent.id>     hd_drain_t
 *   /herald/<cluster>/groups/<group>/snapshot             hd_snapreq_t
 *
 * Every *_build() writes compact JSON with the fields in the documented
 * order and never writes what the matching *_parse() would refuse. Every
 * *_parse() takes len bytes (no NUL needed), refuses data that lacks a
 * field it knows or has it with another type or an invalid value, with
 * one line naming the field ("missing field 'epoch'", "field 'scn':
 * expected a non-negative integer, got a string"), and ignores fields it
 * does not know. On failure they return HD_EGROUP (hd_err.h) and leave
 * *out untouched.
 *
 * All functions are pure and may run on any thread.
 */
#ifndef HD_GROUP_H
#define HD_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "hd_reg.h" /* HD_REG_NAME_MAX, HD_REG_ADDR_MAX, HD_REG_VERSION_MAX */

/* agent.partitions' range: a group has 1 to 65536 partitions. */
#define HD_GROUP_MAX_PARTITIONS 65536
/* Room for the longest path below (names are at most 128 bytes). */
#define HD_GROUP_PATH_MAX 512

/* ------------------------------------------------------------- paths */

/*
 * Each fills buf[n] with one path and returns 0, or HD_ERANGE when it
 * does not fit (buf then holds ""). Names are used as they are: herald's
 * configs allow only letters, digits, '-', '_' and '.' in them, which are
 * path components as they are.
 */

/** @brief /herald/<cluster>/coordinator/election */
int hd_path_election(char *buf, size_t n, const char *cluster);
/** @brief /herald/<cluster>/coordinator/election/n_ : the prefix to create
 *         with ZOO_EPHEMERAL | ZOO_SEQUENCE. */
int hd_path_election_prefix(char *buf, size_t n, const char *cluster);
/** @brief /herald/<cluster>/groups */
int hd_path_groups(char *buf, size_t n, const char *cluster);
/** @brief /herald/<cluster>/groups/<group> */
int hd_path_group(char *buf, size_t n, const char *cluster, const char *group);
/** @brief /herald/<cluster>/groups/<group>/members */
int hd_path_members(char *buf, size_t n, const char *cluster,
                    const char *group);
/** @brief /herald/<cluster>/groups/<group>/members/<agent_id>_ : the
 *         prefix to create with ZOO_EPHEMERAL | ZOO_SEQUENCE. */
int hd_path_member_prefix(char *buf, size_t n, const char *cluster,
                          const char *group, const char *agent_id);
/** @brief /herald/<cluster>/groups/<group>/assignment */
int hd_path_assignment(char *buf, size_t n, const char *cluster,
                       const char *group);
/** @brief /herald/<cluster>/groups/<group>/owners */
int hd_path_owners(char *buf, size_t n, const char *cluster, const char *group);
/** @brief /herald/<cluster>/groups/<group>/owners/<p> */
int hd_path_owner(char *buf, size_t n, const char *cluster, const char *group,
                  uint32_t p);
/** @brief /herald/<cluster>/groups/<group>/checkpoints */
int hd_path_checkpoints(char *buf, size_t n, const char *cluster,
                        const char *group);
/** @brief /herald/<cluster>/groups/<group>/checkpoints/<p> */
int hd_path_checkpoint(char *buf, size_t n, const char *cluster,
                       const char *group, uint32_t p);
/** @brief /herald/<cluster>/groups/<group>/drain */
int hd_path_drains(char *buf, size_t n, const char *cluster, const char *group);
/** @brief /herald/<cluster>/groups/<group>/drain/<agent_id> */
int hd_path_drain(char *buf, size_t n, const char *cluster, const char *group,
                  const char *agent_id);
/** @brief /herald/<cluster>/groups/<group>/snapshot */
int hd_path_snapreq(char *buf, size_t n, const char *cluster,
                    const char *group);

/**
 * @brief Split a sequential node's name, "<name>_<seq>" ("agent-1_0000000003",
 *        "n_0000000007"), at its last '_'.
 * @param name  set to the part before it (name[n]); may be NULL
 * @param seq   set to the sequence number; may be NULL
 * @returns 0, or HD_EGROUP when the node's name does not end in '_' and
 *          ten digits, or the name part is empty or does not fit.
 */
int hd_seq_name_split(const char *node, char *name, size_t n, int64_t *seq);

/**
 * @brief The partition number of an owners/ or checkpoints/ child's name:
 *        decimal, no sign, no leading zero, below partitions.
 * @returns 0 with *p set, or HD_EGROUP.
 */
int hd_partition_name_parse(const char *node, uint32_t partitions, uint32_t *p);

/* ------------------------------------------------------------- nodes */

/* /herald/<cluster>/coordinator/election/n_<seq>: one per coordinator. */
typedef struct {
  char id[HD_REG_NAME_MAX];         /* coordinator.id */
  char http[HD_REG_ADDR_MAX];       /* coordinator.http, host:port */
  char version[HD_REG_VERSION_MAX]; /* herald release */
  uint64_t started_ms;              /* when the coordinator started */
} hd_election_t;

/* /herald/<cluster>/groups/<group>: written once by the first agent. */
typedef struct {
  uint32_t partitions;          /* N, 1..HD_GROUP_MAX_PARTITIONS */
  char source[HD_REG_NAME_MAX]; /* agent.source */
  uint64_t created_ms;
} hd_group_t;

/* members/<agent.id>_<seq>: one per live agent session. */
typedef struct {
  char id[HD_REG_NAME_MAX];         /* agent.id: the assignment's key */
  uint64_t session;                 /* its ZooKeeper session, "0x..." */
  uint32_t partitions;              /* its agent.partitions */
  char source[HD_REG_NAME_MAX];     /* its agent.source */
  char http[HD_REG_ADDR_MAX];       /* agent.http; "" when it serves none */
  char version[HD_REG_VERSION_MAX]; /* herald release */
  uint64_t joined_ms;
} hd_member_t;

/* owners/<p>: held (ephemeral) by the agent applying partition p. */
typedef struct {
  char owner[HD_REG_NAME_MAX]; /* agent.id */
  uint64_t epoch;              /* of the grant it acts on */
  uint64_t session;            /* its ZooKeeper session */
  uint64_t since_ms;
} hd_owner_t;

#define HD_CK_SNAPSHOT_MAX 8192
enum {
  HD_CK_SNAPSHOT_NONE = 0,
  HD_CK_SNAPSHOT_RUNNING,
  HD_CK_SNAPSHOT_DONE,
  HD_CK_SNAPSHOT_CANCELLED
};

/** @brief "running", "done", "cancelled" for an HD_CK_SNAPSHOT_* state,
 *         as the checkpoint node spells it; "none" otherwise. */
const char *hd_ck_snapshot_state_name(uint32_t state);

/* A snapshot's progress as its partition's holder last checkpointed it,
 * so that the coordinator and heraldctl can show it (docs/snapshots.md):
 * counts of this partition's deliveries, kept across holders. */
typedef struct {
  uint64_t tables_total; /* in the snapshot; 0 until the first chunk */
  uint64_t tables_done;
  uint64_t chunks; /* applied by the partition */
  uint64_t rows;
  uint64_t table_rows;          /* of the table being read, read so far */
  uint64_t table_rows_estimate; /* the source's estimate of that table */
  uint64_t started_ms;          /* when the snapshot was asked for */
  uint64_t ended_ms;            /* done or cancelled; 0 while running */
} hd_ck_progress_t;

#define HD_CK_TABLES_MAX 1024
/* Room for any checkpoint node's JSON (the token and the tables escaped
 * at worst, the fields): a buffer to read one into. */
#define HD_CK_JSON_MAX (HD_CK_SNAPSHOT_MAX + 6 * HD_CK_TABLES_MAX + 2048)

/* checkpoints/<p>: everything up to scn has been applied by the sink. */
typedef struct {
  uint64_t scn;        /* last window applied; 0: no position yet */
  uint64_t ts_ms;      /* the source's commit time of it; 0: unknown */
  uint64_t written_ms; /* the writer's clock */
  char owner[HD_REG_NAME_MAX];
  uint64_t epoch;
  uint64_t windows; /* applied so far by the partition's holders */
  uint64_t rows;
  /* its snapshot (docs/snapshots.md): the relay's position token (hex of
   * a packed SnapshotPosition; "" none) and the state; both omitted from
   * the node when there is none */
  uint32_t snapshot_state; /* HD_CK_SNAPSHOT_* */
  char snapshot[HD_CK_SNAPSHOT_MAX];
  /* the request it answers (hd_snapreq_t.id; 0: agent.start: snapshot)
   * and its tables, comma-separated db.table patterns ("": the agent's
   * agent.snapshot_tables) */
  uint64_t snapshot_id;
  char snapshot_tables[HD_CK_TABLES_MAX];
  hd_ck_progress_t progress;
} hd_checkpoint_t;

/* snapshot: heraldctl snapshot's last request to the group (persistent;
 * replaced by the next one). Each holder of a partition it names starts
 * the snapshot of tables beside the stream, once per id (the checkpoint
 * says which it answered), or cancels a running one. */
typedef struct {
  uint64_t id;                       /* above every earlier request's */
  char tables[HD_CK_TABLES_MAX];     /* comma-separated db.table patterns */
  char partitions[HD_CK_TABLES_MAX]; /* "all", or "0,3,8-11" */
  int cancel;                        /* cancel the running snapshots instead */
  int restart; /* the stream starts again at the relays' newest position
                * (a partition that fell out of the relays' retention) */
  uint64_t requested_ms;
} hd_snapreq_t;

/* drain/<agent.id>: heraldctl drain's request that the member with this
 * session hold no partition (persistent; the leader deletes it once that
 * session is no live member's). */
typedef struct {
  char agent[HD_REG_NAME_MAX]; /* agent.id, also the node's name */
  uint64_t session;            /* the member's session the drain is for */
  uint64_t since_ms;           /* heraldctl's clock when it asked */
} hd_drain_t;

/*
 * @brief Build: the node's data as a NUL-terminated string in *json, which
 *        the caller frees with free(); 0, or HD_EGROUP with errstr naming
 *        the field that cannot be written (then *json is NULL).
 * @brief Parse: see the top of this file.
 */
int hd_election_build(const hd_election_t *e, char **json, char *errstr,
                      size_t errlen);
int hd_election_parse(const char *data, size_t len, hd_election_t *out,
                      char *errstr, size_t errlen);
int hd_group_build(const hd_group_t *g, char **json, char *errstr,
                   size_t errlen);
int hd_group_parse(const char *data, size_t len, hd_group_t *out, char *errstr,
                   size_t errlen);
int hd_member_build(const hd_member_t *m, char **json, char *errstr,
                    size_t errlen);
int hd_member_parse(const char *data, size_t len, hd_member_t *out,
                    char *errstr, size_t errlen);
int hd_owner_build(const hd_owner_t *o, char **json, char *errstr,
                   size_t errlen);
int hd_owner_parse(const char *data, size_t len, hd_owner_t *out, char *errstr,
                   size_t errlen);
int hd_checkpoint_build(const hd_checkpoint_t *c, char **json, char *errstr,
                        size_t errlen);
int hd_checkpoint_parse(const char *data, size_t len, hd_checkpoint_t *out,
                        char *errstr, size_t errlen);
int hd_snapreq_build(const hd_snapreq_t *r, char **json, char *errstr,
                     size_t errlen);
int hd_snapreq_parse(const char *data, size_t len, hd_snapreq_t *out,
                     char *errstr, size_t errlen);
/** @brief Does request r name partition p? (r parsed or built: its list
 *         is valid). */
int hd_snapreq_has(const hd_snapreq_t *r, uint32_t p);
int hd_drain_build(const hd_drain_t *d, char **json, char *errstr,
                   size_t errlen);
int hd_drain_parse(const char *data, size_t len, hd_drain_t *out, char *errstr,
                   size_t errlen);

/* -------------------------------------------------------- assignment */

/*
 * The assignment, per partition: granted to a member (owner[p] >= 0),
 * moving to a member once its previous holder has released it
 * (pending[p] >= 0), or unowned (both -1); never both. Both hold indexes
 * into members[]. members[] lists every member the assignment names,
 * also those with no partition (a live member when there are more members
 * than partitions, or one whose partitions are all still pending).
 *
 * In JSON (docs/zookeeper.md):
 *   {"version":12,"partitions":64,"leader":"coord-1","updated_ms":...,
 *    "members":{"agent-1":[0,1,2],"agent-2":[3,4]},
 *    "pending":{"5":"agent-2"},"epochs":[1,1,1,1,1,2]}
 */
typedef struct {
  uint64_t version;             /* counts the assignment's writes */
  uint32_t partitions;          /* N */
  char leader[HD_REG_NAME_MAX]; /* coordinator.id of the writer */
  uint64_t updated_ms;          /* the writer's clock */
  size_t nmembers;
  char **members;   /* agent ids, each at most 128 bytes; distinct */
  int32_t *owner;   /* [partitions]: index into members, or -1 */
  int32_t *pending; /* [partitions]: index into members, or -1 */
  uint64_t *epochs; /* [partitions]: grants of p so far */
} hd_assignment_t;

/**
 * @brief An assignment of partitions partitions with no member, every
 *        partition unowned, every epoch 0, version 0.
 * @returns 0, or HD_ERANGE when partitions is not 1..65536 (*a is then
 *          zeroed, and hd_assignment_free() on it is harmless).
 */
int hd_assignment_init(hd_assignment_t *a, uint32_t partitions);

/** @brief Free what *a holds and zero it. NULL and a zeroed *a are fine. */
void hd_assignment_free(hd_assignment_t *a);

/**
 * @brief A deep copy of src into *dst (which must not hold anything).
 * @returns 0. Aborts when out of memory, like hd_malloc().
 */
int hd_assignment_copy(hd_assignment_t *dst, const hd_assignment_t *src);

/** @brief The index of member id in a->members, or -1. */
int32_t hd_assignment_find(const hd_assignment_t *a, const char *id);

/**
 * @brief The index of member id, added (with no partition) if absent.
 *        The id is copied. Indexes of other members do not change.
 */
int32_t hd_assignment_add(hd_assignment_t *a, const char *id);

/** @brief How many partitions are granted to member index m. */
uint32_t hd_assignment_count(const hd_assignment_t *a, int32_t m);

/**
 * @brief Whether a and b assign the same: same partitions, same members
 *        (by id, in any order), the same grants, pending moves and epochs.
 *        version, leader and updated_ms are not compared.
 * @returns 1 or 0.
 */
int hd_assignment_same(const hd_assignment_t *a, const hd_assignment_t *b);

/**
 * @brief The node's data: members sorted by id, each list ascending,
 *        pending by ascending partition.
 * @param json  set to a string the caller frees with free()
 * @returns 0; or HD_EGROUP with errstr naming what is not valid (an index
 *          out of range, a partition both granted and pending, an empty,
 *          long or repeated member id, an epoch above 2^63-1); *json is
 *          then NULL.
 */
int hd_assignment_build(const hd_assignment_t *a, char **json, char *errstr,
                        size_t errlen);

/**
 * @brief Read the node's data into *out (which must not hold anything;
 *        free it with hd_assignment_free() after success). members[] come
 *        out sorted by id. Besides the scalar fields, refused with a
 *        message naming the field: a list that is not ascending or names
 *        a partition >= partitions, a partition in two lists, a pending key
 *        that is not a partition number or is also granted, a pending
 *        target that is not a key of members, epochs of another length.
 * @returns 0 or HD_EGROUP (then *out is untouched).
 */
int hd_assignment_parse(const char *data, size_t len, hd_assignment_t *out,
                        char *errstr, size_t errlen);

#endif
