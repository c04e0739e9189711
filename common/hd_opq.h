/*
 * hd_opq.h - hand work from other threads to the libuv loop thread.
 *
 * One loop thread owns all state (librdkafka's ops, libuv's async). The
 * fetcher thread, the ZooKeeper client's thread and worker threads push
 * ops; the loop's async callback takes the whole queue at once, because
 * uv_async_send() coalesces wake-ups.
 */
#ifndef HD_OPQ_H
#define HD_OPQ_H

#include <pthread.h>
#include <uv.h>

typedef struct hd_op hd_op_t;
/* Runs on the loop thread; owns op and frees it (free() for plain ops). */
typedef void (*hd_op_cb)(hd_op_t *op);

struct hd_op {
  hd_op_t *next;
  hd_op_cb cb;
  hd_op_cb drop; /* frees an op that will not run; NULL means free() */
  int type;      /* free for the user */
};

typedef struct {
  uv_async_t async;
  pthread_mutex_t mu;
  hd_op_t *head, *tail;
  size_t len; /* ops queued, for back-pressure decisions */
  int closing;
} hd_opq_t;

/**
 * @brief Initialise on the loop thread.
 * @returns 0 or a uv error.
 * @locality loop thread
 */
int hd_opq_init(uv_loop_t *loop, hd_opq_t *q);

/**
 * @brief Queue op (ownership passes to the queue) and wake the loop. After
 *        hd_opq_close() the op is dropped (op->drop, else free()) instead
 *        of run.
 * @returns the queue length after the push.
 * @locality any thread
 */
size_t hd_opq_push(hd_opq_t *q, hd_op_t *op);

/** @brief Ops queued now. @locality any thread */
size_t hd_opq_len(hd_opq_t *q);

/**
 * @brief Stop accepting ops, drop the ones still queued, and close
 *        the async handle. The struct must live until the loop has run the
 *        close callback.
 * @locality loop thread
 */
void hd_opq_close(hd_opq_t *q);

#endif
