#include "service.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static void s_fail(svc_out_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_fail(svc_out_t *out, const char *fmt, ...)
{
    out->code = "bad_request";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
}

static void s_event(svc_out_t *out, cJSON *event)
{
    if (event && out->nevents < SVC_EVENTS_MAX)
        out->events[out->nevents++] = event;
    else
        cJSON_Delete(event);
}

cJSON *svc_peer_event(const char *kind, const reg_peer_t *peer, const char *reason)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "topic", "peers");
    cJSON_AddStringToObject(body, "kind", kind);
    cJSON_AddStringToObject(body, "name", peer->name);
    cJSON_AddStringToObject(body, "role", peer->role);
    cJSON_AddStringToObject(body, "reason", reason);
    return body;
}

static bool s_told(const char *topic)
{
    return strncmp(topic, SVC_INTEREST_PREFIX, strlen(SVC_INTEREST_PREFIX)) == 0;
}

/* An "interest" event with these changes, or NULL when there are none. */
static cJSON *s_interest_event(cJSON *added, cJSON *removed, bool snapshot)
{
    if (!snapshot && cJSON_GetArraySize(added) == 0 && cJSON_GetArraySize(removed) == 0) {
        cJSON_Delete(added);
        cJSON_Delete(removed);
        return NULL;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "topic", SVC_INTEREST_TOPIC);
    cJSON_AddStringToObject(body, "kind", "interest");
    cJSON_AddBoolToObject(body, "snapshot", snapshot);
    cJSON_AddItemToObject(body, "added", added);
    cJSON_AddItemToObject(body, "removed", removed);
    return body;
}

cJSON *svc_drop_peer(svc_t *self, const char *peer)
{
    cJSON *mine = topics_list(self->topics, peer);
    topics_drop_peer(self->topics, peer);
    cJSON *removed = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, mine)
        if (s_told(t->valuestring) && topics_subscribers(self->topics, t->valuestring) == 0)
            cJSON_AddItemToArray(removed, cJSON_CreateString(t->valuestring));
    cJSON_Delete(mine);
    return s_interest_event(cJSON_CreateArray(), removed, false);
}

static void s_on_hello(svc_t *self, const env_t *env, const char *sender, int64_t now,
                       svc_out_t *out)
{
    const char *role = env_str(env->body, "role");
    const char *incarnation = env_str(env->body, "incarnation");
    if (!reg_role_valid(role)) {
        s_fail(out, "hello: \"role\" must be \"client\" or \"supervisor\"");
        return;
    }
    if (!reg_incarnation_valid(incarnation)) {
        s_fail(out, "hello: \"incarnation\" must be 1..%d printable characters",
               REG_INCARNATION_MAX);
        return;
    }
    reg_peer_t old;
    int rc = reg_hello(self->reg, sender, role, incarnation, now, &old);
    if (rc < 0) {
        out->code = "internal";
        snprintf(out->message, sizeof out->message, "cannot register \"%s\"", sender);
        return;
    }
    reg_peer_t *peer = reg_lookup(self->reg, sender);
    if (rc == REG_REPLACED) {
        /* A restarted peer: its old subscriptions belong to the dead process. */
        log_info("peer %s replaced: incarnation %s -> %s (%s)", sender, old.incarnation,
                 incarnation, role);
        s_event(out, svc_drop_peer(self, sender));
        s_event(out, svc_peer_event("peer_lost", &old, "replaced"));
    }
    if (rc == REG_JOINED)
        /* Clients come and go by the thousand: debug level. */
        log_msg(strcmp(role, "supervisor") == 0 ? ALOG_INFO : ALOG_DEBUG,
                "peer %s joined (%s, incarnation %s)", sender, role, incarnation);
    if (rc != REG_REFRESHED)
        s_event(out, svc_peer_event("peer_joined", peer, "hello"));
    out->reply = "welcome";
    out->body = cJSON_CreateObject();
    cJSON_AddStringToObject(out->body, "broker", self->incarnation);
    cJSON_AddNumberToObject(out->body, "heartbeat_ms", (double) self->heartbeat_ms);
    cJSON_AddNumberToObject(out->body, "expiry_ms", (double) self->expiry_ms);
}

/* The "topics" array of a (un)subscribe, checked whole before any change. */
static const cJSON *s_topics(const env_t *env, svc_out_t *out)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(env->body, "topics");
    if (!cJSON_IsArray(list))
        return s_fail(out, "%s: \"topics\" must be an array of strings", env->type), NULL;
    if (cJSON_GetArraySize(list) > SVC_TOPICS_PER_REQUEST)
        return s_fail(out, "%s: at most %d topics per request", env->type,
                      SVC_TOPICS_PER_REQUEST), NULL;
    const cJSON *t;
    cJSON_ArrayForEach(t, list) {
        if (!cJSON_IsString(t) || !topics_valid(t->valuestring))
            return s_fail(out, "%s: a topic is 1..%d printable characters without spaces",
                          env->type, TOPICS_NAME_MAX), NULL;
    }
    return list;
}

static void s_subscribed(svc_t *self, const char *sender, svc_out_t *out)
{
    out->reply = "subscribed";
    out->body = cJSON_CreateObject();
    cJSON_AddItemToObject(out->body, "topics", topics_list(self->topics, sender));
}

static void s_on_subscribe(svc_t *self, const env_t *env, const char *sender, svc_out_t *out)
{
    const cJSON *list = s_topics(env, out);
    if (!list)
        return;
    const cJSON *t;
    cJSON *added = cJSON_CreateArray();
    bool wants_interest = false;
    cJSON_ArrayForEach(t, list) {
        bool first = s_told(t->valuestring) && topics_subscribers(self->topics, t->valuestring) == 0;
        if (topics_subscribe(self->topics, sender, t->valuestring) != 0) {
            s_fail(out, "subscribe: cannot hold \"%s\" (at most %d topics per peer)",
                   t->valuestring, TOPICS_PER_PEER_MAX);
            s_event(out, s_interest_event(added, cJSON_CreateArray(), false));
            return;
        }
        if (first)
            cJSON_AddItemToArray(added, cJSON_CreateString(t->valuestring));
        wants_interest = wants_interest || strcmp(t->valuestring, SVC_INTEREST_TOPIC) == 0;
    }
    s_event(out, s_interest_event(added, cJSON_CreateArray(), false));
    if (wants_interest) /* where it starts from; changes follow as events */
        out->direct = s_interest_event(topics_with_prefix(self->topics, SVC_INTEREST_PREFIX),
                                       cJSON_CreateArray(), true);
    s_subscribed(self, sender, out);
}

static void s_on_unsubscribe(svc_t *self, const env_t *env, const char *sender, svc_out_t *out)
{
    const cJSON *list = s_topics(env, out);
    if (!list)
        return;
    const cJSON *t;
    cJSON *removed = cJSON_CreateArray();
    cJSON_ArrayForEach(t, list) {
        bool had = topics_subscribers(self->topics, t->valuestring) > 0;
        topics_unsubscribe(self->topics, sender, t->valuestring);
        if (had && s_told(t->valuestring) && topics_subscribers(self->topics, t->valuestring) == 0)
            cJSON_AddItemToArray(removed, cJSON_CreateString(t->valuestring));
    }
    s_event(out, s_interest_event(cJSON_CreateArray(), removed, false));
    s_subscribed(self, sender, out);
}

static void s_on_peers(svc_t *self, int64_t now, svc_out_t *out)
{
    out->reply = "peers";
    out->body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out->body, "peers");
    zlistx_t *names = reg_names(self->reg);
    for (char *name = names ? zlistx_first(names) : NULL; name; name = zlistx_next(names)) {
        const reg_peer_t *p = reg_lookup(self->reg, name);
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", p->name);
        cJSON_AddStringToObject(item, "role", p->role);
        cJSON_AddStringToObject(item, "incarnation", p->incarnation);
        cJSON_AddNumberToObject(item, "idle_ms", (double) (now - p->last_seen_ms));
        cJSON_AddItemToArray(list, item);
    }
    zlistx_destroy(&names);
}

static void s_on_stats(svc_t *self, svc_out_t *out)
{
    out->reply = "stats";
    out->body = stats_json(self->stats);
    cJSON_AddNumberToObject(out->body, "peers", (double) reg_size(self->reg));
    cJSON *roles = cJSON_AddObjectToObject(out->body, "peers_by_role");
    static const char *names[] = {"client", "supervisor"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cJSON_AddNumberToObject(roles, names[i], (double) reg_count_role(self->reg, names[i]));
}

static void s_on_bye(svc_t *self, const char *sender, svc_out_t *out)
{
    reg_peer_t gone;
    if (reg_remove(self->reg, sender, &gone) != 0)
        return;
    s_event(out, svc_drop_peer(self, sender));
    log_msg(strcmp(gone.role, "supervisor") == 0 ? ALOG_INFO : ALOG_DEBUG, "peer %s left (%s, bye)",
            sender, gone.role);
    s_event(out, svc_peer_event("peer_lost", &gone, "bye"));
}

void svc_handle(svc_t *self, const env_t *env, const char *sender, int64_t now_ms,
                svc_out_t *out)
{
    memset(out, 0, sizeof *out);
    const char *t = env->type;
    if (strcmp(t, "hello") == 0)
        s_on_hello(self, env, sender, now_ms, out);
    else if (strcmp(t, "heartbeat") == 0)
        ; /* the sign of life was taken on receipt */
    else if (strcmp(t, "subscribe") == 0)
        s_on_subscribe(self, env, sender, out);
    else if (strcmp(t, "unsubscribe") == 0)
        s_on_unsubscribe(self, env, sender, out);
    else if (strcmp(t, "peers") == 0)
        s_on_peers(self, now_ms, out);
    else if (strcmp(t, "stats") == 0)
        s_on_stats(self, out);
    else if (strcmp(t, "bye") == 0)
        s_on_bye(self, sender, out);
    else
        s_fail(out, "the broker does not handle \"%s\"", t);
}

void svc_out_clear(svc_out_t *out)
{
    cJSON_Delete(out->body);
    out->body = NULL;
    cJSON_Delete(out->direct);
    out->direct = NULL;
    for (int i = 0; i < out->nevents; i++)
        cJSON_Delete(out->events[i]);
    out->nevents = 0;
}
