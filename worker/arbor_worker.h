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
#include <stddef.h>

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
    ARBOR_EV_CHILD_EXITED,     /* one child ended: read it with arbor_worker_child_exited */
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

/* Report n phases at once, in order, in one datagram (a JSON text sequence:
 * docs/PROTOCOL.md): what n calls of arbor_worker_phase say, in one write,
 * as a teardown that has nothing to do between them ("cancel_requested",
 * "cleanup", "exiting"). Nothing is sent when one is not a phase (EINVAL).
 * 0, or -1 with errno. */
int arbor_worker_phases(arbor_worker_t *w, const char *const *phases, size_t n);

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

/* ---- dynamic children ------------------------------------------------------
 *
 * A running worker starts children under itself, learns of their ends and
 * may cancel its own descendants (docs/WRITING-WORKERS.md, "Children"):
 *
 *     char path[ARBOR_WORKER_PATH_MAX];
 *     for (int i = 0; i < 4; i++) {
 *         char node[256];
 *         snprintf(node, sizeof node, "{\"name\":\"job-%d\",\"run\":\"exec\","
 *                  "\"argv\":[\"./job\",\"%d\"],\"restart\":\"temporary\"}", i, i);
 *         if (arbor_worker_spawn(w, node, path, sizeof path, -1) != 0)
 *             fprintf(stderr, "spawn: %s\n", path);   // the refusal, or why not
 *     }
 *     int failed = arbor_nursery_wait(w, 4, -1, on_end, NULL); // each end to on_end
 *
 * Answers and events share the socket: while a call waits for its answer,
 * a cancel or a child's end read meanwhile is kept, not lost (poll returns
 * it next; child ends queue up, one entry per ended child, until
 * arbor_worker_child_exited reads them). */

#define ARBOR_WORKER_PATH_MAX 4224           /* a node path: 64 levels of 64-byte names */
#define ARBOR_WORKER_SPAWN_TIMEOUT_MS 10000  /* the default wait for a spawn's answer */

/* Start a child under this worker. node_json is one tree-spec node as JSON
 * text ({"name":"x","run":"exec","argv":[...]}; with "count", several: the
 * first one's path is given). Waits up to timeout_ms (-1: the default,
 * ARBOR_WORKER_SPAWN_TIMEOUT_MS) for the supervisor's answer. 0: the
 * child's path is in path_out (size bytes, NUL-terminated, cut to fit).
 * -1 with errno, and a message for a person in path_out:
 *   EINVAL     the supervisor refused it (an invalid node, a name taken, over
 *              the limits, this node stopping): its message
 *   ETIMEDOUT  no answer in time      EPIPE  the supervisor is gone
 *   ENOTCONN   NULL handle: not running under arbor, nobody to spawn under
 *   EMSGSIZE   node_json over ARBOR_WORKER_MSG_MAX */
int arbor_worker_spawn(arbor_worker_t *w, const char *node_json, char *path_out, size_t size,
                       int timeout_ms);

/* One child's end: {"event":"child_exited","path","status","error"}. */
typedef struct {
    char path[ARBOR_WORKER_PATH_MAX]; /* "root/a/b" */
    char status[16];      /* ok, failed, cancelled, killed, spawn_failed, lost */
    bool failed;          /* failed, spawn_failed or lost */
    char type[128];       /* error.type; "" when it ended without an error */
    char message[1024];   /* error.message, cut to fit */
    const char *error_json; /* the whole error object ("null" when none): its
                             * traceback, phase, stderr...; valid until the
                             * next call on this handle */
} arbor_child_exit_t;

/* The next child end read (oldest first), waiting up to timeout_ms (0: just
 * check; -1: until one comes). 1: *out is filled. 0: none in time (or a
 * NULL handle). -1 with errno: EPIPE the supervisor is gone, ECANCELED a
 * cancel arrived while waiting (arbor_worker_cancelled() is true; poll
 * returns ARBOR_EV_CANCEL next), or poll()'s own. */
int arbor_worker_child_exited(arbor_worker_t *w, arbor_child_exit_t *out, int timeout_ms);

/* Ask the supervisor to cancel one of this worker's descendants by path
 * (its grace, then SIGTERM, ...); its end comes as a child_exited. A path
 * that is not below this node is refused (logged by the supervisor). 0,
 * or -1 with errno; a NULL handle: 0, nothing sent. */
int arbor_worker_cancel(arbor_worker_t *w, const char *path);

/* A nursery: after starting n_children children, wait until n_children
 * child ends have been read, passing each to report_cb(arg, end) when
 * report_cb is not NULL. Returns how many of them failed (0..n_children).
 * -1 with errno, the ends read so far reported: ETIMEDOUT timeout_ms (-1:
 * no limit) passed, ECANCELED this node was cancelled (its children are
 * stopped by the supervisor), EPIPE the supervisor is gone. Children started
 * "temporary" never stop their siblings: every failure is reported. A
 * NULL handle: 0 (nothing ran). */
typedef void (*arbor_child_cb)(void *arg, const arbor_child_exit_t *end);
int arbor_nursery_wait(arbor_worker_t *w, int n_children, int timeout_ms, arbor_child_cb report_cb,
                       void *arg);

/* Close the notify fd and free the handle; *w becomes NULL. */
void arbor_worker_close(arbor_worker_t **w);

#ifdef __cplusplus
}
#endif
#endif
