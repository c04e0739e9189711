/*
 * herald_arena.c - the memory the client unpacks its frames into.
 *
 * A frame of a thousand row changes is tens of thousands of small
 * protobuf-c allocations, freed together when the next frame comes: with
 * malloc that churn was about a quarter of a consuming agent's CPU. The
 * client holds at most one unpacked frame at a time (herald_client.c), so
 * its frames go into one bump arena, reset before the next is decoded.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "hd_mem.h"
#include "herald_int.h"

#define BLOCK_MIN (64u << 10)
#define ALIGN_TO alignof(max_align_t)

struct hl_block {
  struct hl_block *next;
  size_t cap, used;
  alignas(max_align_t) unsigned char data[];
};

/* Every allocation is followed by a NUL byte: protobuf-c gives a text
 * value (bytes on the wire, herald.proto's str) exactly its length, and
 * herald_value_data() promises text NUL-terminated. */
static void *arena_alloc(void *ud, size_t want) {
  hl_arena_t *a = ud;
  size_t n = (want + 1 + ALIGN_TO - 1) & ~(size_t)(ALIGN_TO - 1);
  hl_block_t *b = a->head;
  if (b == NULL || b->cap - b->used < n) {
    size_t cap = a->want > BLOCK_MIN ? a->want : BLOCK_MIN;
    if (cap < n)
      cap = n;
    b = hd_malloc(sizeof(*b) + cap);
    b->cap = cap;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    a->nblocks++;
  }
  unsigned char *p = b->data + b->used;
  p[want] = '\0';
  b->used += n;
  a->total += n;
  return p;
}

/* Everything goes at once, in hl_arena_reset(). */
static void arena_free(void *ud, void *p) {
  (void)ud;
  (void)p;
}

void hl_arena_init(hl_arena_t *a) {
  a->head = NULL;
  a->nblocks = 0;
  a->total = a->want = 0;
  a->pa.alloc = arena_alloc;
  a->pa.free = arena_free;
  a->pa.allocator_data = a;
}

static void blocks_free(hl_arena_t *a) {
  while (a->head) {
    hl_block_t *n = a->head->next;
    free(a->head);
    a->head = n;
  }
  a->nblocks = 0;
}

void hl_arena_reset(hl_arena_t *a) {
  if (a->total == 0)
    return;
  if (a->nblocks > 1 || (a->head && a->head->cap > 4 * BLOCK_MIN &&
                         a->total < a->head->cap / 8)) {
    /* One block of what the last frame needed: a frame that needed several
     * gets them in one next time, and a block far too large for what
     * frames need now is given back. */
    a->want = a->total + a->total / 4;
    blocks_free(a);
  } else if (a->head) {
    a->head->used = 0;
  }
  a->total = 0;
}

void hl_arena_free(hl_arena_t *a) {
  blocks_free(a);
  a->total = a->want = 0;
}
