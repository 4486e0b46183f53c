#include "topics.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>

/* Two indexes of the same relation: by topic for publishing, by peer for
 * listing and for dropping a peer that left. Sets are zhashx with a dummy
 * item, since zhashx cannot hold NULL. */
struct topics_t {
    zhashx_t *by_topic; /* topic -> set of peer names */
    zhashx_t *by_peer;  /* peer  -> set of topics */
};

#define S_MEMBER ((void *) 1)

static void s_set_free(void **item)
{
    zhashx_t *set = (zhashx_t *) *item;
    zhashx_destroy(&set);
    *item = NULL;
}

static zhashx_t *s_index_new(void)
{
    zhashx_t *index = zhashx_new();
    if (index)
        zhashx_set_destructor(index, s_set_free);
    return index;
}

topics_t *topics_new(void)
{
    topics_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_topic = s_index_new();
    self->by_peer = s_index_new();
    if (!self->by_topic || !self->by_peer)
        topics_destroy(&self);
    return self;
}

void topics_destroy(topics_t **self)
{
    if (!self || !*self)
        return;
    zhashx_destroy(&(*self)->by_topic);
    zhashx_destroy(&(*self)->by_peer);
    free(*self);
    *self = NULL;
}

bool topics_valid(const char *topic)
{
    if (!topic || !*topic)
        return false;
    size_t n = 0;
    for (const char *p = topic; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= TOPICS_NAME_MAX)
            return false;
    return true;
}

/* Add member to the set under key, creating the set. */
static int s_add(zhashx_t *index, const char *key, const char *member)
{
    zhashx_t *set = zhashx_lookup(index, key);
    if (!set) {
        set = zhashx_new();
        if (!set || zhashx_insert(index, key, set) != 0) {
            zhashx_destroy(&set);
            return -1;
        }
    }
    if (zhashx_lookup(set, member))
        return 0;
    return zhashx_insert(set, member, S_MEMBER);
}

/* Remove member from the set under key; drop the set when empty. */
static void s_del(zhashx_t *index, const char *key, const char *member)
{
    zhashx_t *set = zhashx_lookup(index, key);
    if (!set)
        return;
    zhashx_delete(set, member);
    if (zhashx_size(set) == 0)
        zhashx_delete(index, key);
}

int topics_subscribe(topics_t *self, const char *peer, const char *topic)
{
    if (!topics_valid(topic)) {
        errno = EINVAL;
        return -1;
    }
    zhashx_t *mine = zhashx_lookup(self->by_peer, peer);
    if (mine && zhashx_lookup(mine, topic))
        return 0;
    if (mine && zhashx_size(mine) >= TOPICS_PER_PEER_MAX) {
        errno = E2BIG;
        return -1;
    }
    if (s_add(self->by_peer, peer, topic) != 0) {
        errno = ENOMEM;
        return -1;
    }
    if (s_add(self->by_topic, topic, peer) != 0) {
        s_del(self->by_peer, peer, topic);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void topics_unsubscribe(topics_t *self, const char *peer, const char *topic)
{
    s_del(self->by_topic, topic, peer);
    s_del(self->by_peer, peer, topic);
}

void topics_drop_peer(topics_t *self, const char *peer)
{
    zhashx_t *mine = zhashx_lookup(self->by_peer, peer);
    if (!mine)
        return;
    for (void *it = zhashx_first(mine); it; it = zhashx_next(mine))
        s_del(self->by_topic, (const char *) zhashx_cursor(mine), peer);
    zhashx_delete(self->by_peer, peer);
}

size_t topics_count(topics_t *self, const char *peer)
{
    zhashx_t *mine = zhashx_lookup(self->by_peer, peer);
    return mine ? zhashx_size(mine) : 0;
}

cJSON *topics_list(topics_t *self, const char *peer)
{
    cJSON *list = cJSON_CreateArray();
    zhashx_t *mine = zhashx_lookup(self->by_peer, peer);
    zlistx_t *keys = mine ? zhashx_keys(mine) : NULL;
    if (!list || !keys)
        return list;
    zlistx_set_comparator(keys, (zlistx_comparator_fn *) strcmp);
    zlistx_sort(keys);
    for (char *t = zlistx_first(keys); t; t = zlistx_next(keys))
        cJSON_AddItemToArray(list, cJSON_CreateString(t));
    zlistx_destroy(&keys);
    return list;
}

size_t topics_subscribers(topics_t *self, const char *topic)
{
    zhashx_t *set = zhashx_lookup(self->by_topic, topic);
    return set ? zhashx_size(set) : 0;
}

cJSON *topics_with_prefix(topics_t *self, const char *prefix)
{
    cJSON *list = cJSON_CreateArray();
    zlistx_t *keys = zhashx_keys(self->by_topic);
    if (!list || !keys)
        return list;
    zlistx_set_comparator(keys, (zlistx_comparator_fn *) strcmp);
    zlistx_sort(keys);
    size_t n = strlen(prefix);
    for (char *t = zlistx_first(keys); t; t = zlistx_next(keys))
        if (strncmp(t, prefix, n) == 0)
            cJSON_AddItemToArray(list, cJSON_CreateString(t));
    zlistx_destroy(&keys);
    return list;
}

size_t topics_match(topics_t *self, const char *topic, topics_match_fn *fn, void *arg)
{
    /* The sets that match: each prefix ending in '/', then the topic. */
    zhashx_t *sets[TOPICS_NAME_MAX + 1];
    size_t nsets = 0;
    char key[TOPICS_NAME_MAX + 1];
    size_t len = strlen(topic);
    if (len > TOPICS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (topic[i] != '/')
            continue;
        memcpy(key, topic, i + 1);
        key[i + 1] = 0;
        zhashx_t *set = zhashx_lookup(self->by_topic, key);
        if (set)
            sets[nsets++] = set;
    }
    zhashx_t *exact = zhashx_lookup(self->by_topic, topic);
    if (exact && (nsets == 0 || sets[nsets - 1] != exact)) /* "a/" is its own prefix */
        sets[nsets++] = exact;

    size_t n = 0;
    if (nsets == 1) { /* the common case: no duplicates possible */
        for (void *it = zhashx_first(sets[0]); it; it = zhashx_next(sets[0]), n++)
            fn((const char *) zhashx_cursor(sets[0]), arg);
        return n;
    }
    zhashx_t *seen = nsets ? zhashx_new() : NULL;
    for (size_t s = 0; seen && s < nsets; s++)
        for (void *it = zhashx_first(sets[s]); it; it = zhashx_next(sets[s])) {
            const char *peer = zhashx_cursor(sets[s]);
            if (zhashx_lookup(seen, peer) || zhashx_insert(seen, peer, S_MEMBER) != 0)
                continue;
            fn(peer, arg);
            n++;
        }
    zhashx_destroy(&seen);
    return n;
}
