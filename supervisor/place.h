/* place: subtrees placed on other supervisors ("on": NAME in the spec).
 *
 * The subtree of a node with "on" runs as a tree of its own on that
 * supervisor. We follow it through its events (topic tree/ID), cancel it
 * with "cancel", take its report when it is done and graft it into ours,
 * and mark it lost if that supervisor is lost (broker topic "peers") or
 * stops answering. */
#ifndef ARBOR_PLACE_H
#define ARBOR_PLACE_H

#include <stdbool.h>

#include "env.h"
#include "super_int.h"

/* Ask the other supervisor to run n's subtree. */
void place_spawn(super_t *s, tree_t *t, tree_node_t *n);
/* Cancel it there (bounded: lost if no report comes in time). */
void place_cancel(super_t *s, tree_t *t, tree_node_t *n);
/* Give up on it: the subtree is lost, with why. */
void place_lost(super_t *s, tree_t *t, tree_node_t *n, const char *why);

/* Messages from the broker about placed subtrees. */
void place_on_spawned(super_t *s, env_t *msg);
bool place_on_error(super_t *s, env_t *msg); /* false: not about a placed subtree */
void place_on_event(super_t *s, env_t *msg);
void place_on_report(super_t *s, env_t *msg);
void place_on_peer_lost(super_t *s, env_t *msg);

#endif
