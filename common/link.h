/* link: the notify fd's contract, shared by its two ends (docs/PROTOCOL.md).
 *
 * The fork-server gives every worker, builtin or exec'd, one end of a
 * SOCK_SEQPACKET socketpair as fd LINK_FD (an exec'd program also finds the
 * number in LINK_ENV) and hands the other end to the supervisor with the
 * child's pidfd — like s6's notification-fd and systemd's sd_notify, but
 * both ways. One datagram is one JSON object, so nothing needs framing:
 *
 *   worker -> supervisor   {"phase":P} | {"error":{"type","message","traceback"?}}
 *                          (+ "t_mono_ms" from arbor's own libraries)
 *   supervisor -> worker   {"event":"cancel"} | {"event":"children_exited"}
 *
 * The worker's side is libarbor_worker (worker/arbor_worker.h), which the
 * builtins use too; the supervisor's side is supervisor/notify.h. A worker
 * needs nothing else from the world: no ZeroMQ, no broker connection. */
#ifndef ARBOR_LINK_H
#define ARBOR_LINK_H

#define LINK_FD 3                 /* the fd number every worker starts with */
#define LINK_ENV "ARBOR_NOTIFY_FD"
#define NOTIFY_MSG_MAX 65536      /* bytes of one message, either way */

enum {
    LINK_EV_NONE = 0,
    LINK_EV_CANCEL,           /* the supervisor asks this node to stop */
    LINK_EV_CHILDREN_EXITED,  /* every child of this node has ended */
};

/* A program may also write its error on stderr as one line, LINK_ERROR_MARK
 * followed by {"type","message"}: the supervisor finds it in the stderr it
 * keeps of a node that failed without a report. Not needed with the notify
 * fd (read to its end before an exit is handled); kept for programs that
 * write it. */
#define LINK_ERROR_MARK "ARBOR-ERROR "

#endif
