/* arbor_worker: what a worker process uses to talk to its supervisor.
 *
 * A program started by an "exec" node links this library to report its
 * phases and errors and to learn of cancellation:
 *
 *     arbor_worker_t *w = arbor_worker_from_env();   // ARBOR_* variables
 *     arbor_worker_phase(w, "ready");
 *     arbor_worker_phase(w, "running");
 *     while (!done) {
 *         int ev = arbor_worker_poll(w, 100);          // ms; also heartbeats
 *         if (ev == ARBOR_EV_CANCEL) break;
 *         ...work...
 *     }
 *     arbor_worker_phase(w, "cleanup");
 *     arbor_worker_phase(w, "exiting");
 *     arbor_worker_close(&w);                          // flushes, bounded
 *
 * For exec nodes arbor's cancel is SIGTERM; the library does not touch
 * signal handling: a program that wants a graceful exit catches SIGTERM
 * itself (and may tell the library with arbor_worker_note_cancel()).
 * Builtin behaviours receive cancel as a message (ARBOR_EV_CANCEL).
 * Nothing here blocks for longer than the deadlines documented per call. */
#ifndef ARBOR_WORKER_H
#define ARBOR_WORKER_H

#include <stdbool.h>

typedef struct arbor_worker_t arbor_worker_t;

enum {
    ARBOR_EV_NONE = 0,
    ARBOR_EV_CANCEL,           /* the supervisor asks this node to stop */
    ARBOR_EV_CHILDREN_EXITED,  /* every child of this node has ended */
    ARBOR_EV_ERROR = -1
};

/* Connect using ARBOR_BROKER, ARBOR_SUPERVISOR and ARBOR_WORKER. NULL (and
 * a message on stderr) when they are missing or the broker is unusable. */
arbor_worker_t *arbor_worker_from_env(void);
arbor_worker_t *arbor_worker_open(const char *broker, const char *supervisor, const char *name);

/* Report a phase: "ready", "running", "cancel_requested",
 * "cancelling_children", "children_exited", "cleanup", "exiting".
 * Sending waits at most 1 s for the broker. 0 or -1. */
int arbor_worker_phase(arbor_worker_t *w, const char *phase);

/* Report this node's error; the supervisor marks the node failed. */
int arbor_worker_error(arbor_worker_t *w, const char *type, const char *message);

/* Wait up to timeout_ms (0: just check) for a message from the supervisor;
 * sends heartbeats when due. Returns an ARBOR_EV_ value. */
int arbor_worker_poll(arbor_worker_t *w, int timeout_ms);

/* The file descriptor to add to your own poll()/epoll set; when readable,
 * call arbor_worker_poll(w, 0). */
int arbor_worker_fd(arbor_worker_t *w);

bool arbor_worker_cancelled(arbor_worker_t *w);
void arbor_worker_note_cancel(arbor_worker_t *w);

/* Flush what is queued (at most 1 s) and disconnect. */
void arbor_worker_close(arbor_worker_t **w);

#endif
