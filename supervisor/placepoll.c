#include "placepoll.h"

#include <string.h>

void placepoll_init(placepoll_t *pp)
{
    *pp = (placepoll_t){.req = -1, .req_ms = -1, .silent_since_ms = -1, .absent_since_ms = -1};
}

placepoll_verdict_t placepoll_sent(placepoll_t *pp, int64_t id, int64_t now_ms, int64_t expiry_ms)
{
    if (id < 0)
        return PLACEPOLL_WAIT; /* it never left: its silence says nothing */
    if (pp->req >= 0) {        /* the previous poll had its time and got no answer */
        if (pp->silent_since_ms < 0)
            pp->silent_since_ms = pp->req_ms;
        pp->unanswered++;
    }
    pp->req = id;
    pp->req_ms = now_ms;
    if (pp->unanswered >= PLACE_POLL_MISSES &&
        now_ms - pp->silent_since_ms >= expiry_ms + PLACE_POLL_MISSES * PLACE_POLL_MS)
        return PLACEPOLL_SILENT;
    return PLACEPOLL_WAIT;
}

static void s_answered(placepoll_t *pp)
{
    pp->req = -1;
    pp->unanswered = 0;
    pp->silent_since_ms = -1;
}

void placepoll_heard(placepoll_t *pp)
{
    s_answered(pp);
    pp->absent_since_ms = -1;
}

bool placepoll_is_poll(const placepoll_t *pp, int64_t re) { return re >= 0 && re == pp->req; }

placepoll_verdict_t placepoll_error(placepoll_t *pp, const char *code, bool by_broker,
                                    int64_t now_ms, int64_t expiry_ms)
{
    code = code ? code : "";
    if (!strcmp(code, "undeliverable"))
        return PLACEPOLL_WAIT; /* the broker could not pass it on yet: sent again, same id */
    s_answered(pp);
    if (!by_broker) { /* the other supervisor answered: it is there */
        pp->absent_since_ms = -1;
        return !strcmp(code, "not_found") ? PLACEPOLL_GONE : PLACEPOLL_WAIT;
    }
    if (strcmp(code, "unknown_destination") != 0)
        return PLACEPOLL_WAIT; /* the broker's trouble (a rate limit...), not the other's */
    if (pp->absent_since_ms < 0)
        pp->absent_since_ms = now_ms;
    /* A live supervisor says hello within the broker's expiry of its
     * restart; one poll more is the slack. */
    return now_ms - pp->absent_since_ms >= expiry_ms + PLACE_POLL_MS ? PLACEPOLL_UNREGISTERED
                                                                     : PLACEPOLL_WAIT;
}

int64_t placepoll_since(const placepoll_t *pp, placepoll_verdict_t v)
{
    switch (v) {
    case PLACEPOLL_UNREGISTERED: return pp->absent_since_ms;
    case PLACEPOLL_SILENT: return pp->silent_since_ms;
    default: return -1;
    }
}
