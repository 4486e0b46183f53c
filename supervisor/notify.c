#include "notify.h"

#include "jnul.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *const s_phases[] = {"ready",   "running", "cancel_requested",
                                       "cancelling_children", "children_exited",
                                       "cleanup", "exiting"};

static notify_kind_t s_fail(notify_msg_t *out, notify_kind_t kind, const char *why)
{
    notify_msg_clear(out);
    out->kind = kind;
    snprintf(out->why, sizeof out->why, "%s", why);
    return kind;
}

static bool s_is_phase(const char *p)
{
    for (size_t i = 0; p && i < sizeof s_phases / sizeof *s_phases; i++)
        if (strcmp(p, s_phases[i]) == 0)
            return true;
    return false;
}

/* {"type","message"[,"traceback"]}: only these keys, type a non-empty
 * string; a missing message is "" (the type says enough to act on). */
static cJSON *s_error_of(const cJSON *e)
{
    const cJSON *type = cJSON_GetObjectItem(e, "type");
    const cJSON *msg = cJSON_GetObjectItem(e, "message");
    const cJSON *tb = cJSON_GetObjectItem(e, "traceback");
    if (!cJSON_IsObject(e) || !cJSON_IsString(type) || !type->valuestring[0] ||
        (msg && !cJSON_IsString(msg)) || (tb && !cJSON_IsString(tb) && !cJSON_IsNull(tb)))
        return NULL;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "type", type->valuestring);
    cJSON_AddStringToObject(out, "message", msg ? msg->valuestring : "");
    if (cJSON_IsString(tb))
        cJSON_AddStringToObject(out, "traceback", tb->valuestring);
    return out;
}

bool notify_next(const char **data, size_t *len, const char **msg, size_t *msg_len)
{
    if (*len == 0)
        return false;
    *msg = *data;
    *msg_len = *len; /* a plain datagram: one message */
    if (**data == NOTIFY_RS) {
        const char *next = memchr(*data + 1, NOTIFY_RS, *len - 1);
        *msg = *data + 1;
        *msg_len = (size_t) ((next ? next : *data + *len) - *msg);
    }
    *len -= (size_t) (*msg + *msg_len - *data);
    *data = *msg + *msg_len;
    return true;
}

notify_kind_t notify_parse(const char *data, size_t len, notify_msg_t *out)
{
    memset(out, 0, sizeof *out);
    out->t_mono_ms = -1;
    if (len > NOTIFY_MSG_MAX)
        return s_fail(out, NOTIFY_TOOBIG, "longer than 65536 bytes");
    const char *end = NULL;
    cJSON *msg = cJSON_ParseWithLengthOpts(data, len, &end, false);
    /* cJSON takes a raw NUL inside a string and cuts the string there, as
     * it does "\u0000" (refused below): refused here. */
    if (msg && memchr(data, 0, (size_t) (end - data))) {
        cJSON_Delete(msg);
        return s_fail(out, NOTIFY_MALFORMED, "a NUL byte inside the JSON");
    }
    while (msg && end < data + len && (*end == ' ' || *end == '\n' || *end == '\r' ||
                                       *end == '\t' || *end == '\0'))
        end++;
    if (!cJSON_IsObject(msg) || end != data + len) {
        cJSON_Delete(msg);
        return s_fail(out, NOTIFY_MALFORMED, "not one JSON object");
    }
    /* cJSON cut every string at a \u0000 (a child "ab\u0000cd" would be
     * spawned as "ab", an error type "Bad\u0000Type" read as "Bad"): such
     * a message says something else than what was sent. */
    char pointer[64];
    if (jnul_find(data, len, pointer, sizeof pointer) >= 0) {
        cJSON_Delete(msg);
        char why[sizeof out->why];
        snprintf(why, sizeof why, "a \\u0000 (NUL) in the string at %s", pointer[0] ? pointer : "/");
        return s_fail(out, NOTIFY_MALFORMED, why);
    }
    const cJSON *t = cJSON_GetObjectItem(msg, "t_mono_ms");
    if (cJSON_IsNumber(t) && t->valuedouble >= 0 && t->valuedouble < 9e15)
        out->t_mono_ms = (int64_t) t->valuedouble;
    const cJSON *phase = cJSON_GetObjectItem(msg, "phase");
    const cJSON *error = cJSON_GetObjectItem(msg, "error");
    const cJSON *spawn = cJSON_GetObjectItem(msg, "spawn");
    const cJSON *cancel = cJSON_GetObjectItem(msg, "cancel");
    notify_kind_t kind = NOTIFY_UNKNOWN;
    const char *why = "no key this version knows (phase, error, spawn, cancel)";
    if (phase && !cJSON_IsString(phase)) {
        kind = NOTIFY_MALFORMED, why = "\"phase\" is not a string";
    } else if (error) {
        out->error = s_error_of(error);
        if (!out->error)
            kind = NOTIFY_MALFORMED, why = "\"error\" is not {\"type\",\"message\"[,\"traceback\"]}";
        else
            kind = NOTIFY_ERROR;
        if (phase && s_is_phase(phase->valuestring))
            snprintf(out->phase, sizeof out->phase, "%s", phase->valuestring);
    } else if (phase) {
        if (s_is_phase(phase->valuestring)) {
            kind = NOTIFY_PHASE;
            snprintf(out->phase, sizeof out->phase, "%s", phase->valuestring);
        } else {
            why = "not a phase a worker reports";
        }
    } else if (spawn) {
        const cJSON *id = cJSON_GetObjectItem(msg, "id");
        /* An id a double holds exactly (<= 2^53): a larger one would not
         * survive the round trip (and casting it would be undefined). */
        if (!cJSON_IsObject(spawn) || !cJSON_IsNumber(id) || id->valuedouble < 0 ||
            id->valuedouble > 9007199254740992.0 ||
            id->valuedouble != (double) (int64_t) id->valuedouble) {
            kind = NOTIFY_MALFORMED, why = "\"spawn\" needs a node object and an integer \"id\"";
        } else {
            kind = NOTIFY_SPAWN;
            out->node = cJSON_Duplicate(spawn, true);
            out->id = (int64_t) id->valuedouble;
        }
    } else if (cancel) {
        if (!cJSON_IsString(cancel)) {
            kind = NOTIFY_MALFORMED, why = "\"cancel\" is not a path";
        } else {
            kind = NOTIFY_CANCEL_REQ;
            out->path = strdup(cancel->valuestring);
        }
    }
    cJSON_Delete(msg);
    if (kind == NOTIFY_MALFORMED || kind == NOTIFY_UNKNOWN)
        return s_fail(out, kind, why);
    if ((kind == NOTIFY_ERROR && !out->error) || (kind == NOTIFY_SPAWN && !out->node) ||
        (kind == NOTIFY_CANCEL_REQ && !out->path))
        return s_fail(out, NOTIFY_MALFORMED, "out of memory");
    out->kind = kind;
    return kind;
}

void notify_msg_clear(notify_msg_t *m)
{
    cJSON_Delete(m->error);
    cJSON_Delete(m->node);
    free(m->path);
    m->error = m->node = NULL;
    m->path = NULL;
}

const char *notify_kind_name(notify_kind_t kind)
{
    static const char *const names[] = {
        [NOTIFY_PHASE] = "phase",         [NOTIFY_ERROR] = "error",
        [NOTIFY_SPAWN] = "spawn",         [NOTIFY_CANCEL_REQ] = "cancel",
        [NOTIFY_UNKNOWN] = "unknown",     [NOTIFY_MALFORMED] = "malformed",
        [NOTIFY_TOOBIG] = "too large"};
    return kind >= NOTIFY_PHASE && kind <= NOTIFY_TOOBIG ? names[kind] : "?";
}

const char *notify_event_text(int event)
{
    return event == LINK_EV_CANCEL            ? "{\"event\":\"cancel\"}"
           : event == LINK_EV_CHILDREN_EXITED ? "{\"event\":\"children_exited\"}"
                                              : NULL;
}

int notify_tell(int fd, int event)
{
    const char *text = notify_event_text(event);
    if (!text) {
        errno = EINVAL;
        return -1;
    }
    ssize_t n = send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 ? -1 : 0;
}
