/* rate: a token bucket per peer, the broker's flood guard. Pure: callers
 * pass the clock. */
#ifndef ARBOR_RATE_H
#define ARBOR_RATE_H

#include <stdbool.h>
#include <stdint.h>

/* Supervisors publish every phase of every node of every tree: they get this
 * many times the per-peer rate. */
#define RATE_SUPERVISOR_FACTOR 10
#define RATE_HELLO_FACTOR 10 /* hellos from senders without a session, all together */

typedef struct {
    double tokens;
    int64_t last_ms;
    bool primed; /* false: full at the first take */
} rate_t;

/* Take one token from a bucket refilled at per_s tokens a second that holds
 * at most burst (a new bucket is full). True when there was one. per_s <= 0:
 * unlimited, always true. */
bool rate_take(rate_t *self, double per_s, double burst, int64_t now_ms);

#endif
