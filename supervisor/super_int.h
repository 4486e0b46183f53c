/* super_int: the supervisor's insides, shared by its parts: super.c (trees,
 * spawning, cancellation, statuses, requests) and place.c (subtrees placed
 * on other supervisors). Not for use outside supervisor/. */
#ifndef ARBOR_SUPER_INT_H
#define ARBOR_SUPER_INT_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "dl.h"
#include "drain.h"
#include "fsrv.h"
#include "log.h"
#include "peer.h"
#include "super.h"
#include "tree.h"

struct super_t {
    super_cfg_t cfg;
    char name[TREE_NAME_MAX + 1];
    char broker[256];
    fsrv_t fsrv;
    peer_t *peer;
    zloop_t *loop;
    zlistx_t *trees;      /* tree_t*, oldest first */
    uint64_t next_serial;
    dl_heap_t *deadlines;
    int timerfd, sigfd;
    drain_t *drain;
    zlistx_t *spawn_queue; /* s_pending_t*, breadth-first */
    int inflight;
    bool registered;
    int64_t next_beat;
    bool stopping;
    int64_t stop_deadline;
    int64_t stop_at;      /* stopping, every tree ended: leave at this time */
    int exit_code;
    bool fsrv_gone;
    int guarantees; /* FSRV_G_ flags the fork-server reported */
    int fsrv_restarts;         /* fork-server deaths in the current window */
    int64_t fsrv_window_start;
    double tokens;      /* spawn-rate bucket */
    bool token_timer;   /* a pump is due when the next token is */
    log_budget_t reject_log; /* a flood of bad specs is not a flood of lines */
    int64_t tokens_at;  /* us */
    struct {
        uint64_t trees, spawns, spawn_failures, exits, sigterms, sigkills, lost, rejected, restarts;
    } count;
};

/* Send a message through the broker (body is taken). */
void super_send(super_t *s, const char *to, const char *type, cJSON *body, int64_t re);
/* Record phase ph of node n, dated mono_ms (CLOCK_MONOTONIC), and publish it. */
void super_phase_at(super_t *s, tree_t *t, tree_node_t *n, phase_t ph, int64_t mono_ms);
/* Arm a deadline of kind for node n (NULL: the tree) in_ms from now. */
void super_deadline(super_t *s, tree_t *t, tree_node_t *n, dl_kind_t kind, int64_t in_ms);
/* Node n could not be started: it and its subtree settle. */
void super_spawn_failed(super_t *s, tree_t *t, tree_node_t *n, const char *why);
/* Ask node n and its subtree to stop. */
void super_cancel_node(super_t *s, tree_t *t, tree_node_t *n, const char *reason);
/* Node n has its terminal status: tell its parent, its watchers, the tree. */
void super_after_settle(super_t *s, tree_t *t, tree_node_t *n);

#endif
