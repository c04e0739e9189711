#include "hd_opq.h"

#include <stdlib.h>

static void op_drop(hd_op_t *op) {
  if (op->drop)
    op->drop(op);
  else
    free(op);
}

static void opq_async_cb(uv_async_t *h) {
  hd_opq_t *q = h->data;
  /* Take the whole list under the lock, run it outside: callbacks may
   * push more ops, which the next wake-up handles. */
  pthread_mutex_lock(&q->mu);
  hd_op_t *op = q->head;
  q->head = q->tail = NULL;
  q->len = 0;
  pthread_mutex_unlock(&q->mu);
  while (op != NULL) {
    hd_op_t *next = op->next;
    op->cb(op);
    op = next;
  }
}

int hd_opq_init(uv_loop_t *loop, hd_opq_t *q) {
  q->head = q->tail = NULL;
  q->len = 0;
  q->closing = 0;
  int rc = pthread_mutex_init(&q->mu, NULL);
  if (rc != 0)
    return -rc;
  q->async.data = q;
  return uv_async_init(loop, &q->async, opq_async_cb);
}

size_t hd_opq_push(hd_opq_t *q, hd_op_t *op) {
  op->next = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->closing) {
    pthread_mutex_unlock(&q->mu);
    op_drop(op);
    return 0;
  }
  if (q->tail)
    q->tail->next = op;
  else
    q->head = op;
  q->tail = op;
  size_t n = ++q->len;
  pthread_mutex_unlock(&q->mu);
  uv_async_send(&q->async);
  return n;
}

size_t hd_opq_len(hd_opq_t *q) {
  pthread_mutex_lock(&q->mu);
  size_t n = q->len;
  pthread_mutex_unlock(&q->mu);
  return n;
}

void hd_opq_close(hd_opq_t *q) {
  pthread_mutex_lock(&q->mu);
  q->closing = 1;
  hd_op_t *op = q->head;
  q->head = q->tail = NULL;
  q->len = 0;
  pthread_mutex_unlock(&q->mu);
  while (op != NULL) {
    hd_op_t *next = op->next;
    op_drop(op);
    op = next;
  }
  uv_close((uv_handle_t *)&q->async, NULL);
}
