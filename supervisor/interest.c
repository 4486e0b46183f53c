#include "interest.h"

#include <czmq.h>
#include <string.h>

#define S_ALL "tree/" /* its subscribers receive every tree's events */

struct interest_t {
    bool known;        /* a snapshot has come: otherwise everything is wanted */
    zhashx_t *topics;  /* topic -> (void *) 1 */
};

interest_t *interest_new(void)
{
    interest_t *self = calloc(1, sizeof *self);
    if (self && !(self->topics = zhashx_new()))
        interest_destroy(&self);
    return self;
}

void interest_destroy(interest_t **self)
{
    if (!self || !*self)
        return;
    zhashx_destroy(&(*self)->topics);
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
        zhashx_purge(self->topics);
        self->known = true;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, removed)
        zhashx_delete(self->topics, t->valuestring);
    cJSON_ArrayForEach(t, added) {
        if (zhashx_lookup(self->topics, t->valuestring))
            continue;
        if (zhashx_insert(self->topics, t->valuestring, (void *) 1) != 0) {
            self->known = false; /* lost track: send everything until the next snapshot */
            return -1;
        }
    }
    return 0;
}

bool interest_wanted(const interest_t *self, const char *topic)
{
    return !self->known || zhashx_lookup(self->topics, S_ALL) ||
           zhashx_lookup(self->topics, topic);
}

size_t interest_size(const interest_t *self)
{
    return zhashx_size(self->topics);
}
