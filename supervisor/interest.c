#include "interest.h"

#include <czmq.h>
#include <string.h>

#define S_PREFIX "tree/" /* the topics told; "tree/" alone: every tree's */

struct interest_t {
    bool known;        /* a snapshot has come: otherwise everything is wanted */
    zhashx_t *trees;   /* tree id -> (void *) 1; "" for "tree/" */
};

/* The tree id a told topic names ("" for "tree/"), NULL for another topic. */
static const char *s_tree_of(const char *topic)
{
    return strncmp(topic, S_PREFIX, strlen(S_PREFIX)) == 0 ? topic + strlen(S_PREFIX) : NULL;
}

interest_t *interest_new(void)
{
    interest_t *self = calloc(1, sizeof *self);
    if (self && !(self->trees = zhashx_new()))
        interest_destroy(&self);
    return self;
}

void interest_destroy(interest_t **self)
{
    if (!self || !*self)
        return;
    zhashx_destroy(&(*self)->trees);
    free(*self);
    *self = NULL;
}

static bool s_strings(const cJSON *list)
{
    if (!cJSON_IsArray(list))
        return false;
    const cJSON *t;
    cJSON_ArrayForEach(t, list)
        if (!cJSON_IsString(t))
            return false;
    return true;
}

int interest_apply(interest_t *self, const cJSON *body)
{
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(body, "added");
    const cJSON *removed = cJSON_GetObjectItemCaseSensitive(body, "removed");
    bool snapshot = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "snapshot"));
    if (!s_strings(added) || (removed && !s_strings(removed)))
        return -1;
    if (snapshot) {
        zhashx_purge(self->trees);
        self->known = true;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, removed) {
        const char *tree = s_tree_of(t->valuestring);
        if (tree)
            zhashx_delete(self->trees, tree);
    }
    cJSON_ArrayForEach(t, added) {
        const char *tree = s_tree_of(t->valuestring);
        if (!tree || zhashx_lookup(self->trees, tree))
            continue;
        if (zhashx_insert(self->trees, tree, (void *) 1) != 0) {
            self->known = false; /* lost track: send everything until the next snapshot */
            return -1;
        }
    }
    return 0;
}

bool interest_wanted(const interest_t *self, const char *tree)
{
    return !self->known || zhashx_lookup(self->trees, "") || zhashx_lookup(self->trees, tree);
}

size_t interest_size(const interest_t *self)
{
    return zhashx_size(self->trees);
}
