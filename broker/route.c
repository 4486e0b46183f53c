#include "route.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "topics.h"

static const char *s_broker_types[] = {"hello", "heartbeat", "subscribe", "unsubscribe",
                                       "peers", "stats",     "bye",       NULL};

static void s_error(route_t *out, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_error(route_t *out, const char *code, const char *fmt, ...)
{
    memset(out, 0, sizeof *out);
    out->action = ROUTE_ERROR;
    out->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
}

bool route_sender_valid(const void *id, size_t len, char *name, size_t size)
{
    if (len == 0 || len > ENV_NAME_MAX || len >= size)
        return false;
    memcpy(name, id, len);
    name[len] = 0;
    /* A NUL inside the id would make the C string shorter than the frame. */
    if (strlen(name) != len || !env_name_valid(name, ENV_NAME_MAX) || strcmp(name, "broker") == 0)
        return false;
    return true;
}

bool route_broker_type(const char *type)
{
    for (int i = 0; s_broker_types[i]; i++)
        if (strcmp(type, s_broker_types[i]) == 0)
            return true;
    return false;
}

bool route_check_frames(size_t frames, size_t size, size_t max_msg, route_t *out)
{
    if (frames != 1) {
        s_error(out, "bad_envelope", "a message is exactly one frame (got %zu)", frames);
        return false;
    }
    if (size > max_msg) {
        s_error(out, "too_large", "message of %zu bytes exceeds the limit of %zu", size, max_msg);
        return false;
    }
    return true;
}

void route_decode_failed(const env_err_t *err, route_t *out)
{
    /* env_decode's own codes are protocol codes; keep only those we count. */
    const char *code = strcmp(err->code, "bad_json") == 0       ? "bad_json"
                       : strcmp(err->code, "unknown_type") == 0 ? "unknown_type"
                       : strcmp(err->code, "bad_envelope") == 0 ? "bad_envelope"
                                                                : "internal";
    s_error(out, code, "%s", err->message);
}

void route_decide(const head_t *head, const char *sender, reg_t *reg, route_t *out)
{
    /* Not memset: the message buffer is only written for an error. */
    out->action = ROUTE_ERROR;
    out->code = NULL;
    out->message[0] = 0;
    out->dest = out->topic = NULL;
    out->dest_peer = NULL;
    if (!sender) {
        s_error(out, "unknown_session",
                "routing id is not a peer name: set ZMQ_ROUTING_ID to [A-Za-z0-9_.-]{1,%d}",
                ENV_NAME_MAX);
        return;
    }
    /* The broker states the sender; a "from" may only repeat it. */
    if (head->from != HEAD_FROM_NONE &&
        (head->from == HEAD_FROM_OTHER || strcmp(head->from_name, sender) != 0)) {
        s_error(out, "spoofed_sender", "\"from\" is not the sender's name \"%s\"", sender);
        return;
    }
    bool to_broker = strcmp(head->to, "broker") == 0;
    bool hello = to_broker && strcmp(head->type, "hello") == 0;
    if (!hello && !reg_lookup(reg, sender)) {
        s_error(out, "unknown_session", "\"%s\" has not said hello (or the broker restarted)",
                sender);
        return;
    }
    if (to_broker) {
        if (!route_broker_type(head->type)) {
            s_error(out, "bad_request", "the broker does not handle \"%s\"", head->type);
            return;
        }
        out->action = ROUTE_BROKER;
        return;
    }
    size_t plen = strlen(ENV_TOPIC_PREFIX);
    if (strncmp(head->to, ENV_TOPIC_PREFIX, plen) == 0) {
        if (!topics_valid(head->to + plen)) {
            s_error(out, "unknown_destination", "\"%s\" is not a valid topic", head->to);
            return;
        }
        out->action = ROUTE_PUBLISH;
        out->topic = head->to + plen;
        return;
    }
    const reg_peer_t *dest = reg_lookup(reg, head->to);
    if (!dest) {
        s_error(out, "unknown_destination", "no peer \"%s\" is registered", head->to);
        return;
    }
    out->action = ROUTE_FORWARD;
    out->dest = head->to;
    out->dest_peer = dest;
}
