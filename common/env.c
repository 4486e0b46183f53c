#include "jprint.h"
#include "env.h"
#include "jnul.h"
#include "jscan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_types[] = {
    /* broker */
    "hello", "welcome", "heartbeat", "subscribe", "subscribed", "unsubscribe", "peers",
    "stats", "bye", "error", "event",
    /* supervisor, from clients */
    "spawn", "spawned", "status", "report", "cancel", "cancelling", "list", "trees", "logs",
    /* Nothing between a supervisor and its workers: that goes over the
     * notify fd (common/link.h), never through the broker. */
    NULL};

bool env_type_known(const char *type)
{
    for (int i = 0; s_types[i]; i++)
        if (strcmp(type, s_types[i]) == 0)
            return true;
    return false;
}

bool env_name_valid(const char *name, size_t max)
{
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok || n >= max)
            return false;
    }
    return n > 0;
}

int env_err_set(env_err_t *err, const char *code, const char *fmt, ...)
{
    if (!err)
        return -1;
    snprintf(err->code, sizeof err->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static bool s_is_int(const cJSON *item)
{
    return cJSON_IsNumber(item) && isfinite(item->valuedouble) &&
           item->valuedouble == floor(item->valuedouble) && item->valuedouble >= 0 &&
           item->valuedouble < 9007199254740992.0; /* 2^53: exact in a double */
}

static int s_check(env_t *e, env_err_t *err)
{
    const cJSON *root = e->root;
    if (!cJSON_IsObject(root))
        return env_err_set(err, "bad_envelope", "envelope must be a JSON object");
    /* A key of the envelope given twice: parsers disagree on which one
     * counts (cJSON the first, others the last), so none does. */
    static const char *const keys[] = {"v", "type", "to", "id", "re", "body", "from"};
    unsigned seen = 0;
    const cJSON *member;
    cJSON_ArrayForEach(member, root)
    {
        for (unsigned k = 0; member->string && k < sizeof keys / sizeof keys[0]; k++) {
            if (strcmp(member->string, keys[k]) != 0)
                continue;
            if (seen & (1u << k))
                return env_err_set(err, "bad_envelope", "\"%s\" appears twice in the envelope",
                                   keys[k]);
            seen |= 1u << k;
        }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
    if (!cJSON_IsNumber(v) || v->valuedouble != ENV_VERSION)
        return env_err_set(err, "bad_envelope", "\"v\" must be %d", ENV_VERSION);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(type) || strlen(type->valuestring) >= sizeof e->type)
        return env_err_set(err, "bad_envelope", "\"type\" must be a short string");
    snprintf(e->type, sizeof e->type, "%s", type->valuestring);
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(root, "to");
    if (!cJSON_IsString(to) || strlen(to->valuestring) >= sizeof e->to || !*to->valuestring)
        return env_err_set(err, "bad_envelope", "\"to\" must be a non-empty string");
    snprintf(e->to, sizeof e->to, "%s", to->valuestring);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (!s_is_int(id))
        return env_err_set(err, "bad_envelope", "\"id\" must be a non-negative integer");
    e->id = (int64_t) id->valuedouble;
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(root, "re");
    if (re && !cJSON_IsNull(re) && !s_is_int(re))
        return env_err_set(err, "bad_envelope", "\"re\" must be null or an integer");
    e->re = (re && !cJSON_IsNull(re)) ? (int64_t) re->valuedouble : -1;
    cJSON *body = cJSON_GetObjectItemCaseSensitive(root, "body");
    if (!cJSON_IsObject(body))
        return env_err_set(err, "bad_envelope", "\"body\" must be an object");
    e->body = body;
    if (!env_type_known(e->type))
        return env_err_set(err, "unknown_type", "unknown message type \"%s\"", e->type);
    return 0;
}

env_t *env_decode(const void *data, size_t len, env_err_t *err)
{
    env_t *e = calloc(1, sizeof *e);
    if (!e) {
        env_err_set(err, "internal", "out of memory");
        return NULL;
    }
    e->re = -1;
    e->root = cJSON_ParseWithLength((const char *) data, len);
    if (!e->root) {
        env_err_set(err, "bad_json", "message is not valid JSON (%zu bytes)", len);
        env_destroy(&e);
        return NULL;
    }
    if (s_check(e, err) != 0)
        env_destroy(&e);
    else
        jnul_find((const char *) data, len, e->nul_pointer, sizeof e->nul_pointer);
    return e;
}

env_t *env_decode_raw(const void *data, size_t len, const char *member, env_err_t *err)
{
    const char *text = data;
    jscan_span_t body, raw;
    /* One strict pass over the frame finds the body; a second over the body,
     * valid as part of it, finds the member (the first occurrence: the one
     * cJSON would read) and stops at its end. */
    if (!jscan_member(text, len, "body", &body) || body.kind != JSCAN_OBJECT ||
        !jscan_find(body.start, body.len, member, &raw) || raw.kind != JSCAN_OBJECT)
        return env_decode(data, len, err);
    /* The envelope without the member's value ({} in its place) is decoded
     * and checked as any other; then the text takes the placeholder's place. */
    size_t head = (size_t) (raw.start - text), tail = len - head - raw.len;
    char *rest = malloc(head + 2 + tail + 1);
    char *copy = cJSON_malloc(raw.len + 1); /* freed by cJSON_Delete: its allocator */
    if (!rest || !copy) {
        free(rest);
        cJSON_free(copy);
        env_err_set(err, "internal", "out of memory");
        return NULL;
    }
    memcpy(rest, text, head);
    memcpy(rest + head, "{}", 2);
    memcpy(rest + head + 2, raw.start + raw.len, tail);
    rest[head + 2 + tail] = 0;
    env_t *e = env_decode(rest, head + 2 + tail, err);
    free(rest);
    memcpy(copy, raw.start, raw.len);
    copy[raw.len] = 0;
    cJSON *item = e ? cJSON_CreateRaw("") : NULL;
    if (item) { /* the copy becomes its text: half a megabyte is not copied twice */
        cJSON_free(item->valuestring);
        item->valuestring = copy;
        copy = NULL;
        if (!cJSON_ReplaceItemInObjectCaseSensitive(e->body, member, item))
            cJSON_Delete(item); /* cannot be: the placeholder is there */
    } else if (e) {
        env_destroy(&e);
        env_err_set(err, "internal", "out of memory");
    }
    cJSON_free(copy);
    return e;
}

void env_destroy(env_t **self)
{
    if (!self || !*self)
        return;
    cJSON_Delete((*self)->root);
    free(*self);
    *self = NULL;
}

char *env_encode(const char *type, const char *to, int64_t id, int64_t re, cJSON *body)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        cJSON_Delete(body);
        return NULL;
    }
    cJSON_AddNumberToObject(root, "v", ENV_VERSION);
    cJSON_AddStringToObject(root, "type", type);
    cJSON_AddStringToObject(root, "to", to);
    cJSON_AddNumberToObject(root, "id", (double) id);
    if (re >= 0)
        cJSON_AddNumberToObject(root, "re", (double) re);
    else
        cJSON_AddNullToObject(root, "re");
    cJSON_AddItemToObject(root, "body", body ? body : cJSON_CreateObject());
    char *text = jprint_unformatted(root); /* root is dropped: its numbers may turn raw */
    cJSON_Delete(root);
    return text;
}

const char *env_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

int64_t env_int(const cJSON *obj, const char *key, int64_t fallback)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) ? (int64_t) item->valuedouble : fallback;
}

bool env_num(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(item))
        return false;
    *out = (int64_t) item->valuedouble;
    return true;
}
