/* interest: which of its trees' topics anyone listens to, as the broker
 * tells (broker/service.h, "Interest"), so that phase and status events no
 * one would receive are not sent: for a 1111-node tree that nobody
 * watches, ~6700 messages the supervisor no longer encodes and the broker
 * no longer parses. Pure: no sockets, no clock.
 *
 * Until the broker's first snapshot (an old broker never sends one), every
 * topic is wanted. A "tree/" subscriber (arborctl watch of everything)
 * wants them all. A tree's done event goes to end/ID always (the broker
 * tells only tree/ topics), to tree/ID when wanted, like the rest. */
#ifndef ARBOR_INTEREST_H
#define ARBOR_INTEREST_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct interest_t interest_t;

interest_t *interest_new(void);
void interest_destroy(interest_t **self);

/* Apply the body of an "interest" event from the broker. 0; -1 when it is
 * malformed (nothing changes) or memory ran out (then every topic is wanted
 * until the next snapshot). */
int interest_apply(interest_t *self, const cJSON *body);

/* Whether an event of tree (its id: "sup1.ab12", topic tree/sup1.ab12)
 * would reach anyone. */
bool interest_wanted(const interest_t *self, const char *tree);

/* Tree topics known to have a subscriber ("tree/" counted too). */
size_t interest_size(const interest_t *self);

#endif
