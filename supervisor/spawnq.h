/* spawnq: the supervisor's queue of nodes waiting to be forked, in the
 * order they became ready to start (breadth-first through a tree), and the
 * spawn-rate brake: a token bucket of `rate` forks a second with bursts of
 * a tenth of that (a fork bomb's brake, not a throttle on normal trees).
 * Pure: time is passed in. */
#ifndef ARBOR_SPAWNQ_H
#define ARBOR_SPAWNQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t serial; /* the tree */
    int idx;         /* the node */
} spawnq_item_t;

typedef struct spawnq_t spawnq_t;

spawnq_t *spawnq_new(int rate_per_s);
void spawnq_destroy(spawnq_t **self);
/* 0, or -1 when out of memory. */
int spawnq_push(spawnq_t *self, spawnq_item_t item);
/* The oldest item, left in place: false when empty. */
bool spawnq_peek(const spawnq_t *self, spawnq_item_t *out);
void spawnq_pop(spawnq_t *self);
size_t spawnq_size(const spawnq_t *self);
/* May one more fork start at now_us? If not, *wait_ms says when the next
 * token is due. */
bool spawnq_take_token(spawnq_t *self, int64_t now_us, int64_t *wait_ms);

#endif
