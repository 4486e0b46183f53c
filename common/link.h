/* link: the private channel between a supervisor and a builtin worker.
 *
 * The fork-server gives each builtin child one end of a SOCK_SEQPACKET
 * socketpair as fd LINK_FD and hands the other end to the supervisor with
 * the child's pidfd (like s6's notification fd, both ways). One datagram is
 * one message, so nothing needs framing:
 *
 *   worker -> supervisor   a node_phase body: {"phase","t_mono_ms"[,"error"]}
 *   supervisor -> worker   "node_cancel" | "node_children_exited"
 *
 * Builtins need nothing else from the world: no ZeroMQ context, no broker
 * connection, and no broker between them and the statuses they report. The
 * supervisor publishes every phase on the tree's topic through the broker,
 * as for any worker. Programs run by "exec" nodes talk through the broker
 * with libarbor_worker instead. */
#ifndef ARBOR_LINK_H
#define ARBOR_LINK_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define LINK_FD 3
#define LINK_MSG_MAX 4096     /* bytes of one message, either way */
#define LINK_SEND_TIMEOUT_MS 1000 /* a worker never blocks longer on a report */

enum {
    LINK_EV_NONE = 0,
    LINK_EV_CANCEL,           /* the supervisor asks this node to stop */
    LINK_EV_CHILDREN_EXITED,  /* every child of this node has ended */
    LINK_EV_GONE              /* the supervisor's end is closed */
};

/* The node_phase body, the same over the link and through the broker:
 * {"phase","t_mono_ms"[,"error":{"type","message","phase"}]} (error_type
 * NULL: no error). NULL when out of memory. */
cJSON *link_phase_body(const char *phase, const char *error_type, const char *error_message);

/* A worker's error also goes to its stderr as one line, LINK_ERROR_MARK
 * followed by {"type","message","phase"}: the supervisor always drains
 * stderr and finds the error in the tail it keeps, whatever became of the
 * report itself. */
#define LINK_ERROR_MARK "ARBOR-ERROR "
void link_error_line(int fd, const char *type, const char *message, const char *phase);

/* Worker side. Bound sends to LINK_SEND_TIMEOUT_MS (call once after fork). */
void link_worker_init(int fd);
/* Report a phase, optionally with an error (type, message): 0 or -1. */
int link_phase(int fd, const char *phase, const char *error_type, const char *error_message);
/* Wait up to timeout_ms (-1: until something arrives) for a message. */
int link_wait(int fd, int timeout_ms);

/* Supervisor side: tell the worker (non-blocking): 0, or -1 with errno. */
int link_tell(int fd, int event);
/* The LINK_EV_ of a message the worker received ("node_cancel", ...). */
int link_event_of(const char *data, size_t len);

#endif
