/*
 * hd_zk.h - a ZooKeeper session that survives expiry.
 *
 * Wraps the multi-threaded C client for code that runs on a thread of its
 * own and uses the synchronous calls (registration, membership): connect,
 * wait for the session, create parent paths, and notice expiry so the
 * caller can start a new session and redo its ephemeral nodes. Connection
 * loss alone is not expiry: the client reconnects within the session
 * timeout by itself. The client's own log lines go through hd_log.
 *
 * Authentication (zookeeper.auth_file): a session made with credentials
 * adds them as digest auth before its first request (the client keeps
 * them and sends them again on every reconnection within the session),
 * and hd_zk_acl() then gives the ACL every herald znode is created with:
 * all permissions to that digest identity, none to anyone else. Without
 * credentials the ACL is the open one (world: all), as before. The
 * password is never logged: only the user name is.
 */
#ifndef HD_ZK_H
#define HD_ZK_H

#include <zookeeper.h>

typedef struct hd_zk hd_zk_t;

/** @brief Start connecting. @returns NULL only if the client refused the
 *         host list (the message is logged). */
hd_zk_t *hd_zk_new(const char *hosts, int session_timeout_ms);

/**
 * @brief Read zookeeper.auth_file: its first line, "user:password"
 *        (trailing CR/LF cut). Refuses a missing file, an empty first
 *        line, no ':', an empty user or password. A file that group or
 *        others may read is taken, with a warning naming the path (never
 *        the content).
 * @returns the malloc'd credentials (the caller frees; wipe first), or
 *          NULL with a message in err naming the key and path.
 */
char *hd_zk_read_auth(const char *path, char *err, size_t errlen);

/** @brief hd_zk_new() with digest credentials "user:password" (NULL: none,
 *         the same as hd_zk_new). The string is copied. */
hd_zk_t *hd_zk_new_auth(const char *hosts, int session_timeout_ms,
                        const char *auth);

/** @brief The ACL to create herald's znodes with: creator-all when the
 *         session has credentials, else open. */
struct ACL_vector *hd_zk_acl(const hd_zk_t *z);

/** @brief A ZooKeeper error code as text for messages: zerror() and the
 *         code, ZNOAUTH named as "not authorized (zookeeper.auth_file)". */
const char *hd_zk_strerror(int rc);

/**
 * @brief Wait until the session is connected.
 * @returns 0 connected; 1 timed out (still trying); -1 the session expired
 *          or authentication failed: free it and make a new one.
 */
int hd_zk_wait(hd_zk_t *z, int timeout_ms);

/** @brief 1 once the session has expired (final). @locality any thread */
int hd_zk_expired(hd_zk_t *z);

/** @brief 1 while the session is connected to a server. @locality any
 *         thread */
int hd_zk_connected(hd_zk_t *z);

/**
 * @brief Have fn(ctx, state) called on every session state change, after
 *        hd_zk has recorded it: ZOO_CONNECTED_STATE, ZOO_CONNECTING_STATE
 *        (the connection dropped; the client is trying the servers),
 *        ZOO_EXPIRED_SESSION_STATE, ... A change before this call is not
 *        reported: look at hd_zk_connected() after setting it.
 * @locality fn runs on the ZooKeeper client's thread: it must not block
 *           nor make synchronous zoo_* calls.
 */
void hd_zk_set_listener(hd_zk_t *z, void (*fn)(void *ctx, int state),
                        void *ctx);

/** @brief The client handle, for zoo_* calls. */
zhandle_t *hd_zk_handle(hd_zk_t *z);

/** @brief The session id (0 before the first connection). */
int64_t hd_zk_session(hd_zk_t *z);

/**
 * @brief Create path and its parents as persistent empty nodes where they
 *        are missing, with hd_zk_acl(); but the top one (/herald, which
 *        every cluster of the ensemble shares), made by a session with
 *        credentials, also lets anyone CREATE under it, so that other
 *        clusters (open, or with credentials of their own) can make their
 *        roots there. @returns ZOK or a ZooKeeper error code.
 */
int hd_zk_ensure_path(hd_zk_t *z, const char *path);

/** @brief Close the session (may block briefly) and free. */
void hd_zk_free(hd_zk_t *z);

#endif
