/* broker: the broker's state (registry, topics, counters, capture) and what
 * it does with each message read from its ROUTER socket: check it, route
 * it, answer it. main.c owns the socket and the loop. */
#ifndef ARBOR_BROKER_H
#define ARBOR_BROKER_H

#include <czmq.h>
#include <stdint.h>

#include "stats.h"

typedef struct {
    size_t max_msg;       /* larger frames are answered too_large */
    int64_t heartbeat_ms; /* told to peers in welcome */
    int64_t expiry_ms;    /* silence after which a peer is forgotten */
    const char *capture;  /* --capture FILE, or NULL */
    double max_rate;      /* messages a second per peer (supervisors: x RATE_SUPERVISOR_FACTOR); 0: no limit */
    struct auth_t *auth;  /* CURVE (auth.h), borrowed; NULL: plain, roles are self-declared */
} brk_cfg_t;

typedef struct brk_t brk_t;

/* router is borrowed. NULL with errno when the capture file cannot be opened
 * or memory runs out. */
brk_t *brk_new(zsock_t *router, const brk_cfg_t *cfg);
void brk_destroy(brk_t **self);

/* Handle at most budget messages waiting on the socket, without blocking.
 * Returns how many were handled. */
int brk_drain(brk_t *self, int budget);

/* Forget peers silent for expiry_ms, publishing peer_lost for each. */
void brk_expire(brk_t *self, int64_t now_ms);

/* With CURVE: read one event of the handshake monitor (auth.h), counting a
 * refused connection in the stats. */
void brk_on_auth_event(brk_t *self);

const char *brk_incarnation(brk_t *self);
const stats_t *brk_stats(brk_t *self);
/* Peers registered now. */
size_t brk_peer_count(brk_t *self);

#endif
