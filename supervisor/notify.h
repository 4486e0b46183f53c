/* notify: the supervisor's side of a worker's notify fd (link.h), as pure
 * functions: what one datagram from a worker means, and telling a worker
 * an event. No state, no clock: the supervisor decides what to do with a
 * message; this module only says what it is.
 *
 *     notify_msg_t m;
 *     switch (notify_parse(data, len, &m)) {
 *     case NOTIFY_PHASE: ... m.phase, m.t_mono_ms (-1: absent = now)
 *     case NOTIFY_ERROR: ... m.error {"type","message"[,"traceback"]}
 *     case NOTIFY_MALFORMED: case NOTIFY_UNKNOWN: case NOTIFY_TOOBIG:
 *         count and log m.why for that node; never fatal
 *     ...
 *     }
 *     notify_msg_clear(&m);
 */
#ifndef ARBOR_NOTIFY_H
#define ARBOR_NOTIFY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"

typedef enum {
    NOTIFY_PHASE = 1,  /* {"phase":P}: one of the worker phases */
    NOTIFY_ERROR,      /* {"error":{"type","message","traceback"?}} */
    NOTIFY_SPAWN,      /* {"spawn":NODE,"id":N}: a dynamic child (recognised only) */
    NOTIFY_CANCEL_REQ, /* {"cancel":PATH}: the worker asks for a cancel (recognised only) */
    NOTIFY_UNKNOWN,    /* a JSON object this version does not understand */
    NOTIFY_MALFORMED,  /* not one JSON object, or a known key of the wrong shape */
    NOTIFY_TOOBIG      /* longer than NOTIFY_MSG_MAX (it arrived cut) */
} notify_kind_t;

typedef struct {
    notify_kind_t kind;
    char phase[24];     /* PHASE; also ERROR when the message names one ("" if not) */
    int64_t t_mono_ms;  /* the worker's CLOCK_MONOTONIC ms; -1: absent */
    cJSON *error;       /* ERROR: {"type","message"[,"traceback"]}, owned */
    cJSON *node;        /* SPAWN: the child's spec, owned */
    int64_t id;         /* SPAWN: the worker's request id */
    char *path;         /* CANCEL_REQ: the path to cancel, owned */
    char why[128];      /* UNKNOWN, MALFORMED, TOOBIG: what was wrong */
} notify_msg_t;

/* What one message from a worker is. Fills *out (owned parts freed by
 * notify_msg_clear) and returns out->kind. data need not be NUL-terminated;
 * a trailing newline is allowed. */
notify_kind_t notify_parse(const char *data, size_t len, notify_msg_t *out);

#define NOTIFY_RS '\x1e' /* RFC 7464's record separator */

/* The messages of one datagram, in order: the datagram itself, unless it
 * begins with RS: then it is a JSON text sequence (RFC 7464) and each
 * RS-prefixed record is one message (a burst of phases in one write).
 * Sets *msg and *msg_len to the next message and advances *data and *len
 * past it; false when none is left.
 *
 *     const char *msg; size_t n;
 *     while (notify_next(&data, &len, &msg, &n))
 *         notify_parse(msg, n, &m) ...                                  */
bool notify_next(const char **data, size_t *len, const char **msg, size_t *msg_len);
void notify_msg_clear(notify_msg_t *m);
const char *notify_kind_name(notify_kind_t kind);

/* Tell the worker LINK_EV_CANCEL or LINK_EV_CHILDREN_EXITED without
 * blocking: 0, or -1 with errno (EAGAIN: its socket is full, try again). */
int notify_tell(int fd, int event);
/* The datagram that tells LINK_EV_CANCEL or LINK_EV_CHILDREN_EXITED; NULL
 * for any other event. */
const char *notify_event_text(int event);

#endif
