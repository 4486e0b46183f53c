#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "env.h"

static bool s_deny(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool s_deny(char *why, size_t size, const char *fmt, ...)
{
    if (why && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool s_is(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

bool policy_owns(const char *owner, const char *name)
{
    size_t n = owner ? strlen(owner) : 0;
    return n && name && strncmp(name, owner, n) == 0 && name[n] == '.' && name[n + 1];
}

/* Types whose sender a client must be able to trust: a supervisor's answers
 * and events. */
static bool s_supervisor_only(const char *type)
{
    static const char *types[] = {"spawned", "report", "cancelling", "trees", "event", NULL};
    for (int i = 0; types[i]; i++)
        if (strcmp(type, types[i]) == 0)
            return true;
    return false;
}

bool policy_allows(const policy_msg_t *m, char *why, size_t size)
{
    bool client = s_is(m->role, "client");
    bool supervisor = s_is(m->role, "supervisor");

    /* The registry takes no other role; refuse anything else all the same
     * rather than let it fall through rules written for these two. */
    if (!client && !supervisor)
        return s_deny(why, size, "\"%s\" is not a role (sender \"%s\"): peers are clients or "
                                 "supervisors",
                      m->role ? m->role : "(none)", m->name ? m->name : "(none)");
    if (strcmp(m->to, "broker") == 0)
        return true;
    size_t plen = strlen(ENV_TOPIC_PREFIX);
    if (strncmp(m->to, ENV_TOPIC_PREFIX, plen) == 0) {
        if (strcmp(m->to + plen, "peers") == 0)
            return s_deny(why, size, "topic \"peers\" is the broker's own: nobody else publishes on it");
        if (!supervisor)
            return s_deny(why, size, "only supervisors publish on topics (this is a %s)", m->role);
        return true;
    }

    /* To a peer. */
    if (!s_is(m->to_role, "client") && !s_is(m->to_role, "supervisor"))
        return s_deny(why, size, "\"%s\" is not a role (destination \"%s\"): peers are "
                                 "clients or supervisors",
                      m->to_role ? m->to_role : "(none)", m->to);
    /* A supervisor places subtrees ("on") on other supervisors: it spawns
     * and cancels there as their client does. */
    bool placing = supervisor && s_is(m->to_role, "supervisor");
    if ((s_is(m->type, "spawn") || s_is(m->type, "cancel")) && !client && !placing)
        return s_deny(why, size, "only clients (and supervisors, on other supervisors) may send "
                                 "%s (this is a %s)", m->type, m->role);
    if (s_supervisor_only(m->type) && !supervisor)
        return s_deny(why, size, "only supervisors send %s (this is a %s)", m->type, m->role);
    /* logs: a request to a supervisor, or a supervisor's answer (a client
     * cannot fake another client's log lines). */
    if (s_is(m->type, "logs") && !supervisor && !s_is(m->to_role, "supervisor"))
        return s_deny(why, size, "logs goes to a supervisor, and only a supervisor answers it "
                                 "(this is a %s)", m->role);
    return true;
}

bool policy_identity(const char *key_role, const char *key_name, const char *name,
                     const char *role, char *why, size_t size)
{
    const char *kr = key_role && *key_role ? key_role : "client";
    bool named = key_name && *key_name;
    if (s_is(role, "supervisor")) {
        if (!s_is(kr, "supervisor"))
            return s_deny(why, size, "a %s key cannot register a supervisor", kr);
        if (named && !s_is(name, key_name))
            return s_deny(why, size, "this key belongs to supervisor \"%s\": it cannot register "
                                     "as \"%s\"",
                          key_name, name);
        return true;
    }
    if (s_is(role, "client")) {
        if (!s_is(kr, "client"))
            return s_deny(why, size, "a %s key cannot register a client", kr);
        if (named && !s_is(name, key_name) && !policy_owns(key_name, name))
            return s_deny(why, size, "this key belongs to client \"%s\": it registers as \"%s\" "
                                     "or \"%s.*\", not \"%s\"",
                          key_name, key_name, key_name, name);
        return true;
    }
    return s_deny(why, size, "unknown role \"%s\"", role ? role : "(none)");
}
