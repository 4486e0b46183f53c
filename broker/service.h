/* service: the messages addressed to "broker" (hello, heartbeat, subscribe,
 * unsubscribe, peers, stats, bye). Pure logic on the registry, the topics
 * and the counters: it says what to answer and which events to publish on
 * topics "peers" and "interest"; broker.c does the sending.
 *
 * Interest: publishers learn which tree topics anyone listens to, so that
 * they need not send events no one receives (ZeroMQ's XPUB forwards
 * subscriptions upstream for the same reason). A peer subscribed to
 * "interest" is sent, at once, an event {"kind":"interest","snapshot":true,
 * "added":[every "tree/..." topic with a subscriber]}, then an event with
 * "added"/"removed" whenever such a topic gains its first subscriber or
 * loses its last. Sent before the reply to the subscribe that caused it:
 * a client that subscribes, then asks a supervisor to act, is heard. */
#ifndef ARBOR_SERVICE_H
#define ARBOR_SERVICE_H

#include <stdint.h>

#include "env.h"
#include "registry.h"
#include "stats.h"
#include "topics.h"

#define SVC_EVENTS_MAX 4
#define SVC_INTEREST_TOPIC "interest"
#define SVC_INTEREST_PREFIX "tree/" /* the topics whose interest is told */
#define SVC_TOPICS_PER_REQUEST 256

typedef struct {
    reg_t *reg;          /* borrowed */
    topics_t *topics;    /* borrowed */
    const stats_t *stats; /* borrowed */
    const char *incarnation;
    int64_t heartbeat_ms;
    int64_t expiry_ms;
} svc_t;

typedef struct {
    const char *reply;  /* type of the reply, NULL for none */
    cJSON *body;        /* body of the reply (or error), owned */
    const char *code;   /* set instead of reply: answer error `code` */
    char message[256];
    int nevents;
    cJSON *events[SVC_EVENTS_MAX]; /* bodies of "event"s, on the topic each names, owned */
    cJSON *direct;                 /* the body of an "event" for the sender alone, owned */
} svc_out_t;

/* Handle env from sender (route_decide said ROUTE_BROKER). */
void svc_handle(svc_t *self, const env_t *env, const char *sender, int64_t now_ms,
                svc_out_t *out);
/* Free what out still owns. */
void svc_out_clear(svc_out_t *out);

/* Forget every subscription of peer (it left, expired or was replaced);
 * returns the "interest" event it causes (owned by the caller), or NULL. */
cJSON *svc_drop_peer(svc_t *self, const char *peer);

/* The body of a "peers" event: kind peer_joined or peer_lost. */
cJSON *svc_peer_event(const char *kind, const reg_peer_t *peer, const char *reason);

#endif
