/* registry: the peers that said hello — name, role, incarnation and the
 * last sign of life — and their expiry. No sockets, no clock: callers pass
 * "now" so tests can drive time. */
#ifndef ARBOR_REGISTRY_H
#define ARBOR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "env.h"
#include "rate.h"

#define REG_INCARNATION_MAX 64

typedef struct {
    char name[ENV_NAME_MAX + 1];
    char role[16];
    char incarnation[REG_INCARNATION_MAX + 1];
    int64_t joined_ms;
    int64_t last_seen_ms;
    char key[41]; /* with CURVE: the public key (z85) bound to this name at hello */
    rate_t rate;  /* the broker's flood guard; kept across a re-registration */
} reg_peer_t;

typedef enum {
    REG_JOINED,    /* a new name */
    REG_REFRESHED, /* same name, same incarnation: a repeated hello */
    REG_REPLACED,  /* same name, new incarnation: the peer restarted */
} reg_hello_t;

typedef struct reg_t reg_t;

/* Called for each expired peer, after it left the registry. */
typedef void(reg_expired_fn)(const reg_peer_t *peer, void *arg);

reg_t *reg_new(void);
void reg_destroy(reg_t **self);

/* "client" or "supervisor". Workers are not peers: they report to their
 * supervisor over their notify fd (common/link.h). */
bool reg_role_valid(const char *role);
/* 1..REG_INCARNATION_MAX printable ASCII characters. */
bool reg_incarnation_valid(const char *incarnation);

/* Register name or refresh it. When the incarnation differs, the old
 * registration is copied to *old (may be NULL). Returns a reg_hello_t, or -1
 * when out of memory or the arguments are invalid. */
int reg_hello(reg_t *self, const char *name, const char *role, const char *incarnation,
              int64_t now_ms, reg_peer_t *old);

reg_peer_t *reg_lookup(reg_t *self, const char *name);
/* Every message counts as a sign of life. */
void reg_touch(reg_peer_t *peer, int64_t now_ms);
/* Forget name; copies it to *gone (may be NULL). 0, or -1 when unknown. */
int reg_remove(reg_t *self, const char *name, reg_peer_t *gone);

/* Remove every peer silent for expiry_ms or more and call fn for each.
 * Returns how many expired. */
size_t reg_expire(reg_t *self, int64_t now_ms, int64_t expiry_ms, reg_expired_fn *fn, void *arg);

size_t reg_size(reg_t *self);
size_t reg_count_role(reg_t *self, const char *role);
/* Peer names sorted; caller destroys the list (items are char*). */
zlistx_t *reg_names(reg_t *self);

#endif
