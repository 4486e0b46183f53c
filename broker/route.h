/* route: the routing decision for one received message, as pure logic (no
 * sockets, no clock) so that every rule of docs/PROTOCOL.md can be tested.
 *
 * Two steps, because the cheap checks must come before the parse:
 *   route_check_frames()  frame count and size, before head_read();
 *   route_decide()        session, sender, destination, after it. */
#ifndef ARBOR_ROUTE_H
#define ARBOR_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "env.h"
#include "head.h"
#include "registry.h"

typedef enum {
    ROUTE_ERROR,   /* answer the sender with error `code` */
    ROUTE_BROKER,  /* a message for the broker itself (service.h) */
    ROUTE_FORWARD, /* deliver the frame unchanged to peer `dest` */
    ROUTE_PUBLISH, /* deliver the frame unchanged to subscribers of `topic` */
} route_action_t;

typedef struct {
    route_action_t action;
    const char *code;  /* ROUTE_ERROR: a code of docs/PROTOCOL.md */
    char message[256]; /* ROUTE_ERROR: for humans */
    const char *dest;  /* ROUTE_FORWARD: peer name, points into the head_t */
    const char *topic; /* ROUTE_PUBLISH: topic, points into the head_t */
    const reg_peer_t *dest_peer; /* ROUTE_FORWARD: dest's registration */
} route_t;

/* True when a sender's routing id may be read as its name: a valid name
 * other than the reserved "broker" (ZeroMQ's generated ids start with 0). */
bool route_sender_valid(const void *id, size_t len, char *name, size_t size);

/* True when the broker handles this type when it is sent to "broker". */
bool route_broker_type(const char *type);

/* frames: data frames after the routing id; size: bytes of the first.
 * Returns true when the message may be decoded, else fills out. */
bool route_check_frames(size_t frames, size_t size, size_t max_msg, route_t *out);

/* Turn a head_read() or env_decode() failure into the error to answer. */
void route_decode_failed(const env_err_t *err, route_t *out);

/* head: the envelope (head_read()); sender: the name from
 * route_sender_valid(), or NULL when the routing id is not a name. reg: the
 * registered peers. */
void route_decide(const head_t *head, const char *sender, reg_t *reg, route_t *out);

#endif
