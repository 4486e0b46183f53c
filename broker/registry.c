#include "registry.h"

#include <string.h>

struct reg_t {
    zhashx_t *peers; /* name -> reg_peer_t*, owned */
};

static void s_peer_free(void **item)
{
    free(*item);
    *item = NULL;
}

reg_t *reg_new(void)
{
    reg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->peers = zhashx_new();
    if (!self->peers) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->peers, s_peer_free);
    return self;
}

void reg_destroy(reg_t **self)
{
    if (!self || !*self)
        return;
    zhashx_destroy(&(*self)->peers);
    free(*self);
    *self = NULL;
}

bool reg_role_valid(const char *role)
{
    return role && (strcmp(role, "client") == 0 || strcmp(role, "supervisor") == 0);
}

bool reg_incarnation_valid(const char *incarnation)
{
    if (!incarnation || !*incarnation)
        return false;
    size_t n = 0;
    for (const char *p = incarnation; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= REG_INCARNATION_MAX)
            return false;
    return true;
}

int reg_hello(reg_t *self, const char *name, const char *role, const char *incarnation,
              int64_t now_ms, reg_peer_t *old)
{
    if (!env_name_valid(name, ENV_NAME_MAX) || !reg_role_valid(role) ||
        !reg_incarnation_valid(incarnation))
        return -1;
    reg_peer_t *peer = zhashx_lookup(self->peers, name);
    int result = REG_JOINED;
    if (peer) {
        result = strcmp(peer->incarnation, incarnation) == 0 ? REG_REFRESHED : REG_REPLACED;
        if (result == REG_REPLACED && old)
            *old = *peer;
    } else {
        peer = calloc(1, sizeof *peer);
        if (!peer)
            return -1;
        snprintf(peer->name, sizeof peer->name, "%s", name);
        if (zhashx_insert(self->peers, name, peer) != 0) {
            free(peer);
            return -1;
        }
    }
    if (result != REG_REFRESHED)
        peer->joined_ms = now_ms;
    snprintf(peer->role, sizeof peer->role, "%s", role);
    snprintf(peer->incarnation, sizeof peer->incarnation, "%s", incarnation);
    peer->last_seen_ms = now_ms;
    return result;
}

reg_peer_t *reg_lookup(reg_t *self, const char *name)
{
    return zhashx_lookup(self->peers, name);
}

void reg_touch(reg_peer_t *peer, int64_t now_ms)
{
    if (now_ms > peer->last_seen_ms)
        peer->last_seen_ms = now_ms;
}

int reg_remove(reg_t *self, const char *name, reg_peer_t *gone)
{
    reg_peer_t *peer = zhashx_lookup(self->peers, name);
    if (!peer)
        return -1;
    if (gone)
        *gone = *peer;
    zhashx_delete(self->peers, name);
    return 0;
}

size_t reg_expire(reg_t *self, int64_t now_ms, int64_t expiry_ms, reg_expired_fn *fn, void *arg)
{
    /* Collect first: the table must not change while it is iterated. */
    zlistx_t *silent = NULL;
    for (reg_peer_t *p = zhashx_first(self->peers); p; p = zhashx_next(self->peers)) {
        if (now_ms - p->last_seen_ms < expiry_ms)
            continue;
        if (!silent) {
            silent = zlistx_new();
            if (!silent)
                return 0; /* out of memory: try again on the next tick */
            zlistx_set_duplicator(silent, (zlistx_duplicator_fn *) strdup);
            zlistx_set_destructor(silent, (zlistx_destructor_fn *) zstr_free);
        }
        zlistx_add_end(silent, p->name);
    }
    size_t n = 0;
    for (char *name = silent ? zlistx_first(silent) : NULL; name; name = zlistx_next(silent)) {
        reg_peer_t gone;
        if (reg_remove(self, name, &gone) == 0) {
            n++;
            if (fn)
                fn(&gone, arg);
        }
    }
    zlistx_destroy(&silent);
    return n;
}

size_t reg_size(reg_t *self)
{
    return zhashx_size(self->peers);
}

size_t reg_count_role(reg_t *self, const char *role)
{
    size_t n = 0;
    for (reg_peer_t *p = zhashx_first(self->peers); p; p = zhashx_next(self->peers))
        n += strcmp(p->role, role) == 0;
    return n;
}

zlistx_t *reg_names(reg_t *self)
{
    zlistx_t *names = zhashx_keys(self->peers);
    if (names) {
        zlistx_set_comparator(names, (zlistx_comparator_fn *) strcmp);
        zlistx_sort(names);
    }
    return names;
}
