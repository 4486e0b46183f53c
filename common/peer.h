/* peer: one DEALER connection to the broker, as used by the supervisor and
 * the CLI (never by a worker: workers talk to their supervisor only). It
 * registers with hello, re-registers when the broker answers
 * "unknown_session" (the broker restarted), re-sends its subscriptions after
 * every welcome, and sends heartbeats when asked. */
#ifndef ARBOR_PEER_H
#define ARBOR_PEER_H

#include <czmq.h>
#include <stdbool.h>

#include "env.h"

#define PEER_HEARTBEAT_MS 1000

typedef struct peer_t peer_t;

/* Connect to endpoint with routing id name. role is "client" or "supervisor".
 * sndtimeo_ms bounds every send (0: never block). Sends hello. */
peer_t *peer_new(const char *endpoint, const char *name, const char *role, int sndtimeo_ms);
void peer_destroy(peer_t **self);

zsock_t *peer_sock(peer_t *self);
const char *peer_name(peer_t *self);
bool peer_welcomed(peer_t *self);
/* How long the broker lets a peer be silent before it forgets it (its
 * last welcome said; 0 before the first). */
int64_t peer_expiry_ms(peer_t *self);
/* Messages that could not be sent (broker away or slow) since the start. */
uint64_t peer_dropped(peer_t *self);

/* Send one envelope; body is taken. Returns the message id, or -1 with
 * errno (EAGAIN: broker unreachable within sndtimeo). */
int64_t peer_send(peer_t *self, const char *to, const char *type, cJSON *body, int64_t re);

/* Subscribe to a topic ("tree/ID", or a prefix ending in '/'); kept and
 * re-sent after a broker restart. */
int peer_subscribe(peer_t *self, const char *topic);

/* Stop receiving a topic subscribed to with peer_subscribe. */
int peer_unsubscribe(peer_t *self, const char *topic);

/* Call every PEER_HEARTBEAT_MS: a heartbeat when registered, hello when not. */
void peer_tick(peer_t *self);

/* From now on, keep the body member named member of every message received
 * as its JSON text (env_decode_raw); NULL: parse everything (the default). */
void peer_keep_raw(peer_t *self, const char *member);

/* Receive one message (blocks per the socket's rcvtimeo). Returns NULL when
 * nothing came, or the message was the broker's own business (welcome,
 * unknown_session) and has been handled here. */
env_t *peer_recv(peer_t *self);

/* A short random id (16 hex digits) for incarnations and tree ids. */
void peer_random_id(char *out, size_t size);

#endif
