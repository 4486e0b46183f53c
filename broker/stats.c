#include "stats.h"

#include <string.h>

const char *const stats_codes[STATS_CODES] = {
    "bad_json",        "bad_envelope",   "unknown_type",  "unknown_destination",
    "too_large",       "unknown_session", "spoofed_sender", "undeliverable",
    "bad_request",     "forbidden",      "rate_limited",  "internal"};

static int s_index(const char *code)
{
    for (int i = 0; i < STATS_CODES; i++)
        if (strcmp(code, stats_codes[i]) == 0)
            return i;
    return STATS_CODES - 1;
}

void stats_error(stats_t *self, const char *code)
{
    self->errors++;
    self->by_code[s_index(code)]++;
}

uint64_t stats_code(const stats_t *self, const char *code)
{
    return self->by_code[s_index(code)];
}

cJSON *stats_json(const stats_t *self)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *c = cJSON_AddObjectToObject(root, "counters");
    cJSON_AddNumberToObject(c, "received", (double) self->received);
    cJSON_AddNumberToObject(c, "routed", (double) self->routed);
    cJSON_AddNumberToObject(c, "published", (double) self->published);
    cJSON_AddNumberToObject(c, "delivered", (double) self->delivered);
    cJSON_AddNumberToObject(c, "swallowed", (double) self->swallowed);
    cJSON_AddNumberToObject(c, "handled", (double) self->handled);
    cJSON_AddNumberToObject(c, "events", (double) self->events);
    cJSON_AddNumberToObject(c, "errors", (double) self->errors);
    cJSON_AddNumberToObject(c, "expired", (double) self->expired);
    cJSON_AddNumberToObject(c, "dropped", (double) self->dropped);
    cJSON_AddNumberToObject(c, "auth_refused", (double) self->auth_refused);
    cJSON *e = cJSON_AddObjectToObject(root, "errors");
    for (int i = 0; i < STATS_CODES; i++)
        cJSON_AddNumberToObject(e, stats_codes[i], (double) self->by_code[i]);
    return root;
}
