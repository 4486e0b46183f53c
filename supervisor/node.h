/* node: the lifecycle of one node's process, as one state machine.
 *
 *            REQUESTED            SPAWNED
 *   PENDING ----------> REQUESTED ------> RUNNING
 *      |                   |                 | STOP (cancel, a sibling failed,
 *      | STOP              | SPAWN_FAILED    v  timeout, restart, parent gone)
 *      v                   v              STOPPING ---- its children are still ending
 *    DONE <------------- DONE                | CHILDREN_ENDED
 *                                            v
 *                                          GRACE --deadline grace_ms--> TERM
 *   TERM --deadline kill_after_ms--> KILL --deadline ESC_REAP_MS--> DONE (lost)
 *
 *   any live state --EXITED (its notify fd read to the end first)--> DONE
 *   any state but DONE --LOST (the fork-server died)--> DONE (lost)
 *
 * node_step() is pure: it reads and updates one node's incarnation record
 * (node_life_t) and says what the supervisor must do (node_out_t): tell the
 * worker, signal it, arm a deadline, stop its children, settle it, release
 * its fds. It does no I/O and reads no clock, so every transition is
 * unit-tested (tests/unit/test_node.c). The facts it records are what
 * tree_node_final_status() turns into the node's one terminal status.
 *
 * A restarted node gets a fresh node_life_t (node_life_reset): nothing of
 * an earlier incarnation (error, exit, phases, stderr) leaks into the next. */
#ifndef ARBOR_NODE_H
#define ARBOR_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "dl.h"

typedef enum {
    NODE_PENDING,   /* not asked for yet */
    NODE_REQUESTED, /* spawn request sent to the fork-server */
    NODE_RUNNING,   /* forked; nobody asked it to stop */
    NODE_STOPPING,  /* asked to stop; its children are still ending */
    NODE_GRACE,     /* its children are gone: grace_ms for its own exit */
    NODE_TERM,      /* SIGTERM sent: kill_after_ms */
    NODE_KILL,      /* SIGKILL sent: ESC_REAP_MS, then it is lost */
    NODE_REMOTE,    /* its subtree runs on another supervisor (place.h) */
    NODE_DONE       /* terminal status set */
} node_state_t;

/* How its process ended, once it has. */
typedef enum { END_NONE, END_EXITED, END_SPAWN_FAILED, END_LOST } node_end_t;

typedef enum {
    NEV_REQUESTED,      /* the spawn request left */
    NEV_SPAWNED,        /* forked: pidfd and pipes in hand */
    NEV_SPAWN_FAILED,   /* it could not be started */
    NEV_HEARD,          /* it spoke on its notify fd: it can be told things */
    NEV_STOP,           /* arbor asks it to stop */
    NEV_CHILDREN_ENDED, /* every child has a terminal status */
    NEV_DEADLINE,       /* its current deadline passed */
    NEV_EXITED,         /* the fork-server reaped it (ev.wait_status) */
    NEV_LOST,           /* the fork-server died: no exit status will come */
    NEV_CHILD_ADDED,    /* a child was added at run time (a dynamic spawn) */
    NEV_PLACED,         /* its subtree was sent to another supervisor */
    NEV_REMOTE_ENDED    /* that supervisor's report settled it (ev.status) */
} node_event_kind_t;

typedef struct {
    node_event_kind_t kind;
    int wait_status;  /* NEV_EXITED */
    int status;       /* NEV_REMOTE_ENDED: its status_t */
} node_event_t;

/* One incarnation of a node: zeroed (node_life_reset) for each new one. */
typedef struct {
    node_state_t state;
    node_end_t end;
    int exit_code;        /* END_EXITED and no signal */
    int exit_signal;      /* END_EXITED by a signal, else 0 */
    bool stop;            /* arbor asked it to stop */
    bool heard;           /* it has spoken on its notify fd */
    bool told_cancel;     /* the cancel reached it (a message, or SIGTERM) */
    bool cancel_by_sigterm; /* that cancel was SIGTERM (a program that never spoke) */
    bool told_children_exited;
    bool children_ended;  /* every child has a terminal status */
    int escalated;        /* 0, SIGTERM or SIGKILL: the strongest escalation sent */
} node_life_t;

/* What the supervisor must do, in this order. */
enum {
    NA_TELL_CANCEL = 1 << 0,          /* send {"event":"cancel"} */
    NA_TELL_CHILDREN_EXITED = 1 << 1, /* send {"event":"children_exited"} */
    NA_SIGTERM = 1 << 2,              /* as its cancel (never spoke) or an escalation */
    NA_SIGKILL = 1 << 3,
    NA_PHASE_TERM_SENT = 1 << 4,      /* record term_sent (an escalation) */
    NA_PHASE_KILL_SENT = 1 << 5,
    NA_START_CHILDREN = 1 << 6,       /* it is forked: its children may start */
    NA_STOP_CHILDREN = 1 << 7,
    NA_ARM = 1 << 8,                  /* a deadline: out.deadline_ms, out.deadline_kind */
    NA_SETTLE = 1 << 9,               /* give it its terminal status now */
    NA_RELEASE = 1 << 10,             /* close its pidfd, pipes and notify fd */
    NA_PHASE_EXITED = 1 << 11,        /* record "exited" */
};

typedef struct {
    unsigned actions;
    int64_t deadline_ms;
    dl_kind_t deadline_kind;
} node_out_t;

/* The per-node settings node_step needs. */
typedef struct {
    int64_t grace_ms, kill_after_ms;
    bool has_children;    /* it is told when they have all ended */
    bool speaks_first;    /* a builtin: it reads its notify fd from the start */
} node_conf_t;

#define ESC_REAP_MS 2000  /* SIGKILL should end anything; past this, give up */

/* Advance life by ev; returns out->actions (0: nothing to do, e.g. an
 * event that does not apply to its state). */
unsigned node_step(node_life_t *life, const node_conf_t *conf, node_event_t ev, node_out_t *out);

/* A fresh incarnation. */
void node_life_reset(node_life_t *life);

const char *node_state_name(node_state_t s);
/* True while its process may be alive (it holds a pidfd). */
bool node_state_alive(node_state_t s);

#endif
