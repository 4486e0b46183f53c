#include "head.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "jscan.h"

enum { S_V, S_TYPE, S_TO, S_ID, S_RE, S_BODY, S_FROM, S_KEYS };

static const char *const s_names[S_KEYS] = {"v", "type", "to", "id", "re", "body", "from"};

typedef struct {
    jscan_span_t member[S_KEYS];
    bool seen[S_KEYS];
    int twice; /* the first envelope key met a second time, or -1 */
} s_members_t;

/* Which envelope key a raw key span is; -1 for others. */
static int s_key(const char *k, size_t n)
{
    switch (n) {
    case 1: return k[0] == 'v' ? S_V : -1;
    case 2: return memcmp(k, "to", 2) == 0 ? S_TO
                   : memcmp(k, "id", 2) == 0 ? S_ID
                   : memcmp(k, "re", 2) == 0 ? S_RE
                                             : -1;
    case 4: return memcmp(k, "type", 4) == 0 ? S_TYPE
                   : memcmp(k, "body", 4) == 0 ? S_BODY
                   : memcmp(k, "from", 4) == 0 ? S_FROM
                                               : -1;
    default: return -1;
    }
}

static void s_member(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    s_members_t *m = arg;
    int i;
    if (key->escaped) { /* rare: decode it as cJSON would ("t\u0079pe" is "type") */
        char name[8];
        size_t n = jscan_string(key, name, sizeof name);
        i = n < sizeof name ? s_key(name, n) : -1;
    } else {
        i = s_key(key->start, key->len);
    }
    if (i < 0)
        return;
    if (m->seen[i]) {
        if (m->twice < 0)
            m->twice = i;
        return;
    }
    m->seen[i] = true;
    m->member[i] = *value;
}

/* As env.c's s_is_int: a number that is a whole double in [0, 2^53). */
static bool s_int(const s_members_t *m, int i, int64_t *out)
{
    if (!m->seen[i] || m->member[i].kind != JSCAN_NUMBER)
        return false;
    double d = jscan_number(&m->member[i]);
    if (!isfinite(d) || d != floor(d) || d < 0 || d >= 9007199254740992.0)
        return false;
    *out = (int64_t) d;
    return true;
}

/* A string member into buf; its C length, or size when it is not a string
 * or does not fit. */
static size_t s_str(const s_members_t *m, int i, char *buf, size_t size)
{
    if (!m->seen[i] || m->member[i].kind != JSCAN_STRING)
        return size;
    const jscan_span_t *s = &m->member[i];
    if (!s->escaped && s->len < size) { /* the usual case */
        memcpy(buf, s->start, s->len);
        buf[s->len] = 0;
        return s->len;
    }
    size_t n = jscan_string(s, buf, size);
    return n < size ? n : size;
}

/* env_type_known() compares with each type in turn (up to 20 compares, for
 * "logs"); a message mostly has the type of the one before it. */
static bool s_type_known(const char *type)
{
    static _Thread_local char last[32] = "hello"; /* a known type */
    if (strcmp(type, last) == 0)
        return true;
    if (!env_type_known(type))
        return false;
    memcpy(last, type, strlen(type) + 1); /* head_read checked: shorter than 32 */
    return true;
}

int head_read(const void *data, size_t len, head_t *out, env_err_t *err)
{
    s_members_t m;
    memset(&m.seen, 0, sizeof m.seen);
    m.twice = -1;
    out->re = -1;
    jscan_kind_t kind = jscan(data, len, s_member, &m);
    if (kind == JSCAN_INVALID)
        return env_err_set(err, "bad_json", "message is not valid JSON (%zu bytes)", len);
    if (kind != JSCAN_OBJECT)
        return env_err_set(err, "bad_envelope", "envelope must be a JSON object");
    if (m.twice >= 0)
        return env_err_set(err, "bad_envelope", "\"%s\" appears twice in the envelope",
                           s_names[m.twice]);
    if (!m.seen[S_V] || m.member[S_V].kind != JSCAN_NUMBER ||
        jscan_number(&m.member[S_V]) != ENV_VERSION)
        return env_err_set(err, "bad_envelope", "\"v\" must be %d", ENV_VERSION);
    if (s_str(&m, S_TYPE, out->type, sizeof out->type) >= sizeof out->type)
        return env_err_set(err, "bad_envelope", "\"type\" must be a short string");
    size_t n = s_str(&m, S_TO, out->to, sizeof out->to);
    if (n >= sizeof out->to || n == 0)
        return env_err_set(err, "bad_envelope", "\"to\" must be a non-empty string");
    if (!s_int(&m, S_ID, &out->id))
        return env_err_set(err, "bad_envelope", "\"id\" must be a non-negative integer");
    if (m.seen[S_RE] && m.member[S_RE].kind != JSCAN_NULL && !s_int(&m, S_RE, &out->re))
        return env_err_set(err, "bad_envelope", "\"re\" must be null or an integer");
    if (!m.seen[S_BODY] || m.member[S_BODY].kind != JSCAN_OBJECT)
        return env_err_set(err, "bad_envelope", "\"body\" must be an object");
    if (!s_type_known(out->type))
        return env_err_set(err, "unknown_type", "unknown message type \"%s\"", out->type);
    out->from = HEAD_FROM_NONE;
    if (m.seen[S_FROM])
        out->from = s_str(&m, S_FROM, out->from_name, sizeof out->from_name) <
                            sizeof out->from_name
                        ? HEAD_FROM_NAME
                        : HEAD_FROM_OTHER;
    if (out->from != HEAD_FROM_NAME)
        out->from_name[0] = 0;
    return 0;
}

void head_of_env(const env_t *env, head_t *out)
{
    snprintf(out->type, sizeof out->type, "%s", env->type);
    snprintf(out->to, sizeof out->to, "%s", env->to);
    out->id = env->id;
    out->re = env->re;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(env->root, "from");
    out->from = !from ? HEAD_FROM_NONE
                : cJSON_IsString(from) && strlen(from->valuestring) < sizeof out->from_name
                    ? HEAD_FROM_NAME
                    : HEAD_FROM_OTHER;
    snprintf(out->from_name, sizeof out->from_name, "%s",
             out->from == HEAD_FROM_NAME ? from->valuestring : "");
}
