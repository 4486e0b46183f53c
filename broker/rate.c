#include "rate.h"

bool rate_take(rate_t *self, double per_s, double burst, int64_t now_ms)
{
    if (per_s <= 0)
        return true;
    if (burst < 1)
        burst = 1;
    if (!self->primed) {
        self->primed = true;
        self->tokens = burst;
        self->last_ms = now_ms;
    } else if (now_ms > self->last_ms) {
        self->tokens += (double) (now_ms - self->last_ms) * per_s / 1000.0;
        if (self->tokens > burst)
            self->tokens = burst;
        self->last_ms = now_ms;
    }
    if (self->tokens < 1)
        return false;
    self->tokens -= 1;
    return true;
}
