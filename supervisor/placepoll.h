/* placepoll: is the supervisor that runs a placed subtree still there?
 * Judged from the answers to the status polls that place.c sends every
 * PLACE_POLL_MS. Pure: no sockets, no clock (callers pass monotonic times
 * and the broker's peer expiry).
 *
 * The broker's peer_lost says that a supervisor is gone. A broker that
 * restarted never knew a supervisor that died while it was away, so that
 * word never comes; the polls' answers say it instead:
 *  - "not_found" from the other supervisor: it no longer has the subtree's
 *    tree (it restarted): gone, at once;
 *  - "unknown_destination" from the broker: the other supervisor is not
 *    registered. Right after a broker restart that is true of live
 *    supervisors too, until their next hello; by the broker's own rule a
 *    peer silent for its expiry is gone: lost once the answer has held
 *    for the expiry and one poll more;
 *  - no answer at all: lost after PLACE_POLL_MISSES polls in a row, sent
 *    over PLACE_POLL_MISSES polls' time past the expiry. A poll that could
 *    not leave (the broker unreachable) proves nothing and is not counted. */
#ifndef ARBOR_PLACEPOLL_H
#define ARBOR_PLACEPOLL_H

#include <stdbool.h>
#include <stdint.h>

/* A placed subtree's end is learnt from its "done" event; an event the
 * broker dropped (it restarted, and the placing supervisor had not yet
 * registered again) would leave it running here forever: ask its status
 * this often too. */
#define PLACE_POLL_MS 2000
/* Unanswered polls in a row (and their time past the expiry) that make a
 * placed subtree lost. */
#define PLACE_POLL_MISSES 5

typedef enum {
    PLACEPOLL_WAIT,         /* nothing to conclude */
    PLACEPOLL_GONE,         /* the other supervisor no longer has the tree */
    PLACEPOLL_UNREGISTERED, /* not registered at the broker past its expiry */
    PLACEPOLL_SILENT,       /* the polls went unanswered too long */
} placepoll_verdict_t;

typedef struct {
    int64_t req;             /* the poll awaiting its answer; -1: none */
    int64_t req_ms;          /* when it left */
    int unanswered;          /* polls in a row that got no answer */
    int64_t silent_since_ms; /* when the first of them left; -1: none */
    int64_t absent_since_ms; /* the first "not registered" of a row; -1: none */
} placepoll_t;

void placepoll_init(placepoll_t *pp);

/* Poll id left at now_ms (id < 0: it could not leave). The verdict on the
 * polls left before it: PLACEPOLL_SILENT or PLACEPOLL_WAIT. */
placepoll_verdict_t placepoll_sent(placepoll_t *pp, int64_t id, int64_t now_ms, int64_t expiry_ms);

/* The other supervisor spoke about the subtree (a report, an event): it is
 * there. */
void placepoll_heard(placepoll_t *pp);

/* Whether message id re is the poll awaiting its answer. */
bool placepoll_is_poll(const placepoll_t *pp, int64_t re);

/* An error answering the poll (placepoll_is_poll(re)): code, sent by the
 * broker (by_broker) or by the other supervisor. */
placepoll_verdict_t placepoll_error(placepoll_t *pp, const char *code, bool by_broker,
                                    int64_t now_ms, int64_t expiry_ms);

/* Since when the condition behind a verdict has held (-1: it does not). */
int64_t placepoll_since(const placepoll_t *pp, placepoll_verdict_t v);

#endif
