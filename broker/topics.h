/* topics: who is subscribed to what, and who receives a message published
 * on a topic: the subscribers of the topic itself and of each prefix of it
 * that ends in '/' ("tree/" receives "tree/42"). Each peer at most once. */
#ifndef ARBOR_TOPICS_H
#define ARBOR_TOPICS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define TOPICS_NAME_MAX 160      /* fits in env_t.to after "topic:" */
#define TOPICS_PER_PEER_MAX 1024 /* bounds what one peer can make us hold */

typedef struct topics_t topics_t;

/* Called once per receiving peer. */
typedef void(topics_match_fn)(const char *peer, void *arg);

topics_t *topics_new(void);
void topics_destroy(topics_t **self);

/* 1..TOPICS_NAME_MAX printable ASCII characters, no spaces. */
bool topics_valid(const char *topic);

/* 0; -1 with errno EINVAL (bad topic), E2BIG (too many) or ENOMEM.
 * Subscribing twice is harmless. */
int topics_subscribe(topics_t *self, const char *peer, const char *topic);
void topics_unsubscribe(topics_t *self, const char *peer, const char *topic);
/* Forget every subscription of peer (it left). */
void topics_drop_peer(topics_t *self, const char *peer);

size_t topics_count(topics_t *self, const char *peer);
/* The peer's topics, sorted, as a new JSON array. */
cJSON *topics_list(topics_t *self, const char *peer);

/* How many peers are subscribed to exactly topic. */
size_t topics_subscribers(topics_t *self, const char *topic);
/* Every topic starting with prefix that has a subscriber, sorted, as a new
 * JSON array. */
cJSON *topics_with_prefix(topics_t *self, const char *prefix);

/* Call fn for every peer that receives a message on topic; returns how many.
 * fn must not change the subscriptions. */
size_t topics_match(topics_t *self, const char *topic, topics_match_fn *fn, void *arg);

#endif
