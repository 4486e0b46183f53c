/* service: the messages addressed to "broker" (hello, heartbeat, subscribe,
 * unsubscribe, peers, stats, bye). Pure logic on the registry, the topics
 * and the counters: it says what to answer and which events to publish on
 * topic "peers"; broker.c does the sending. */
#ifndef ARBOR_SERVICE_H
#define ARBOR_SERVICE_H

#include <stdint.h>

#include "env.h"
#include "registry.h"
#include "stats.h"
#include "topics.h"

#define SVC_EVENTS_MAX 2
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
    cJSON *events[SVC_EVENTS_MAX]; /* bodies of "event"s for topic "peers", owned */
} svc_out_t;

/* Handle env from sender (route_decide said ROUTE_BROKER). */
void svc_handle(svc_t *self, const env_t *env, const char *sender, int64_t now_ms,
                svc_out_t *out);
/* Free what out still owns. */
void svc_out_clear(svc_out_t *out);

/* The body of a "peers" event: kind peer_joined or peer_lost. */
cJSON *svc_peer_event(const char *kind, const reg_peer_t *peer, const char *reason);

#endif
