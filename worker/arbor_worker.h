/* arbor_worker: a worker's side of its notify fd (docs/PROTOCOL.md,
 * docs/WRITING-WORKERS.md).
 *
 * arbor starts every worker with a SOCK_SEQPACKET socket to its supervisor
 * and, for an exec'd program, its number in ARBOR_NOTIFY_FD. One JSON
 * object per datagram goes each way; this library writes and reads them
 * with nothing but libc (no ZeroMQ, no JSON library, no thread):
 *
 *     arbor_worker_t *w = arbor_worker_from_env();   // NULL outside arbor
 *     arbor_worker_phase(w, "ready");
 *     arbor_worker_phase(w, "running");
 *     while (!done) {
 *         int ev = arbor_worker_poll(w, 100);          // ms
 *         if (ev == ARBOR_EV_CANCEL) break;
 *         ...work...
 *     }
 *     arbor_worker_phase(w, "cleanup");
 *     arbor_worker_phase(w, "exiting");
 *     arbor_worker_close(&w);
 *
 * Every call accepts a NULL handle and then does nothing (0, ARBOR_EV_NONE,
 * -1 for the fd): the same program runs outside arbor unchanged. No call
 * blocks longer than ARBOR_WORKER_SEND_TIMEOUT_MS, apart from
 * arbor_worker_poll's own timeout. The library never touches signals: a
 * cancel arrives as a message (and, from an older supervisor or for a
 * program that never reported, as SIGTERM). */
#ifndef ARBOR_WORKER_H
#define ARBOR_WORKER_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARBOR_WORKER_ENV "ARBOR_NOTIFY_FD"
#define ARBOR_WORKER_MSG_MAX 65536       /* bytes of one message, either way */
#define ARBOR_WORKER_SEND_TIMEOUT_MS 1000 /* a report never blocks longer */

typedef struct arbor_worker_t arbor_worker_t;

enum {
    ARBOR_EV_NONE = 0,         /* nothing (yet), or a message this version ignores */
    ARBOR_EV_CANCEL,           /* the supervisor asks this node to stop */
    ARBOR_EV_CHILDREN_EXITED,  /* every child of this node has ended */
    ARBOR_EV_ERROR = -1,       /* poll itself failed (errno) */
    ARBOR_EV_GONE = -2         /* the supervisor closed its end: nobody listens */
};

/* The notify fd named by ARBOR_NOTIFY_FD. NULL when it is absent, or is
 * not an AF_UNIX SOCK_SEQPACKET socket (a variable inherited by a program
 * the worker started itself, whose fd means something else). The fd is
 * made close-on-exec: the worker's own children do not inherit it. */
arbor_worker_t *arbor_worker_from_env(void);
/* The same over a known fd (the builtins use fd 3); NULL on error. */
arbor_worker_t *arbor_worker_open_fd(int fd);

/* Report a phase: "ready", "running", "cancel_requested",
 * "cancelling_children", "children_exited", "cleanup", "exiting".
 * 0, or -1 with errno (EINVAL for another word). */
int arbor_worker_phase(arbor_worker_t *w, const char *phase);

/* Report this node's error; the supervisor marks the node failed.
 * traceback may be NULL. A report that would exceed ARBOR_WORKER_MSG_MAX
 * is cut (the traceback first, keeping its end; then the message, keeping
 * its start) with a "…[truncated N bytes]" marker: never lost. 0 or -1. */
int arbor_worker_error(arbor_worker_t *w, const char *type, const char *message,
                       const char *traceback);

/* Wait up to timeout_ms (0: just check; -1: until something arrives) for a
 * message from the supervisor. Returns an ARBOR_EV_ value; messages this
 * version does not know are skipped. */
int arbor_worker_poll(arbor_worker_t *w, int timeout_ms);

/* The fd to add to your own poll()/epoll set; when readable, call
 * arbor_worker_poll(w, 0). -1 for a NULL handle. */
int arbor_worker_fd(const arbor_worker_t *w);

/* A cancel was received (or noted, e.g. from a SIGTERM handler). */
bool arbor_worker_cancelled(const arbor_worker_t *w);
void arbor_worker_note_cancel(arbor_worker_t *w);

/* Close the notify fd and free the handle; *w becomes NULL. */
void arbor_worker_close(arbor_worker_t **w);

#ifdef __cplusplus
}
#endif
#endif
