/* place: subtrees placed on other supervisors ("on": NAME in the spec).
 *
 * The subtree of a node with "on" runs as a tree of its own on that
 * supervisor. We follow it through its events (topic tree/ID), cancel it
 * with "cancel", take its report when it is done and graft it into ours,
 * and mark it lost if that supervisor is lost (broker topic "peers") or
 * stops answering within its deadlines. Every PLACE_POLL_MS it also asks
 * the subtree's status: a done event dropped by a restarting broker does
 * not leave it running forever, and the answers tell a supervisor that
 * died while the broker was away (placepoll.h).
 *
 * It owns its placements and their deadlines (checked by place_tick), and
 * speaks to the supervisor's core only through node events (node.h) and a
 * phase callback: it never reaches into the supervisor. */
#ifndef ARBOR_PLACE_H
#define ARBOR_PLACE_H

#include <stdbool.h>

#include "env.h"
#include "node.h"
#include "peer.h"
#include "tree.h"

typedef struct {
    void *arg;
    /* An event of placed node n: NEV_PLACED, NEV_SPAWN_FAILED (why says
     * what), NEV_REMOTE_ENDED (ev.status; its subtree is already settled
     * from the other supervisor's report). */
    void (*event)(void *arg, tree_t *t, tree_node_t *n, node_event_t ev, const char *why);
    /* A phase of node x of a placed subtree, dated mono_ms on our clock. */
    void (*phase)(void *arg, tree_t *t, tree_node_t *x, phase_t ph, int64_t mono_ms);
} place_core_t;

typedef struct place_t place_t;

place_t *place_new(peer_t *peer, place_core_t core);
void place_destroy(place_t **self);

/* Ask n's supervisor to run n's subtree: 0, or -1 when the request could
 * not leave (then nothing was placed). */
int place_spawn(place_t *self, tree_t *t, tree_node_t *n);
/* Cancel it there (bounded: lost if no report comes in time). */
void place_cancel(place_t *self, tree_t *t, tree_node_t *n);
/* Deadlines (a placement that does not answer in time is lost) and the
 * status polls. */
void place_tick(place_t *self, int64_t now_ms);
/* Placements in flight. */
int place_count(const place_t *self);

/* Messages from the broker about placed subtrees. */
void place_on_spawned(place_t *self, env_t *msg);
bool place_on_error(place_t *self, env_t *msg); /* false: not about a placed subtree */
void place_on_event(place_t *self, env_t *msg);
void place_on_report(place_t *self, env_t *msg);
void place_on_peer_lost(place_t *self, env_t *msg);

#endif
