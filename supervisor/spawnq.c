#include "spawnq.h"

#include <stdlib.h>

struct spawnq_t {
    spawnq_item_t *ring;
    size_t cap, head, len;
    int rate;
    double tokens;
    int64_t tokens_at; /* us; 0: never taken */
};

spawnq_t *spawnq_new(int rate_per_s)
{
    spawnq_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->rate = rate_per_s > 0 ? rate_per_s : 1;
    self->tokens = self->rate / 10.0 > 1 ? self->rate / 10.0 : 1;
    return self;
}

void spawnq_destroy(spawnq_t **self)
{
    if (!self || !*self)
        return;
    free((*self)->ring);
    free(*self);
    *self = NULL;
}

int spawnq_push(spawnq_t *self, spawnq_item_t item)
{
    if (self->len == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        spawnq_item_t *ring = malloc(cap * sizeof *ring);
        if (!ring)
            return -1;
        for (size_t i = 0; i < self->len; i++)
            ring[i] = self->ring[(self->head + i) % self->cap];
        free(self->ring);
        self->ring = ring;
        self->cap = cap;
        self->head = 0;
    }
    self->ring[(self->head + self->len++) % self->cap] = item;
    return 0;
}

bool spawnq_peek(const spawnq_t *self, spawnq_item_t *out)
{
    if (!self->len)
        return false;
    *out = self->ring[self->head];
    return true;
}

void spawnq_pop(spawnq_t *self)
{
    if (!self->len)
        return;
    self->head = (self->head + 1) % self->cap;
    self->len--;
}

size_t spawnq_size(const spawnq_t *self) { return self->len; }

bool spawnq_take_token(spawnq_t *self, int64_t now_us, int64_t *wait_ms)
{
    double burst = self->rate / 10.0 > 1 ? self->rate / 10.0 : 1;
    if (self->tokens_at)
        self->tokens += (double) (now_us - self->tokens_at) * self->rate / 1e6;
    self->tokens_at = now_us;
    if (self->tokens > burst)
        self->tokens = burst;
    if (self->tokens >= 1) {
        self->tokens -= 1;
        return true;
    }
    *wait_ms = (int64_t) ((1 - self->tokens) * 1000.0 / self->rate) + 1;
    return false;
}
