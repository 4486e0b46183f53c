/* tree: the model of one supervised tree — nodes, their phases, the facts
 * observed about their processes, and the rules that turn those facts into
 * exactly one terminal status per node. Pure data and rules: no I/O, so the
 * status rules are unit-tested directly (tests/unit/test_tree.c). */
#ifndef ARBOR_TREE_H
#define ARBOR_TREE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "errline.h"
#include "node.h"
#include "strategy.h"
#include "wfd.h"
#include "logbuf.h"

#define TREE_NAME_MAX 64
#define TREE_ID_MAX 64
#define TREE_TAIL_BYTES 4096 /* stderr kept per node for its error */

typedef enum {
    RUN_SUPERVISE, RUN_SLEEP, RUN_FAIL, RUN_EXIT, RUN_CRASH, RUN_HANG, RUN_FLOOD, RUN_EXEC
} run_kind_t;

/* Whether a node of this kind may write to stdout or stderr: an exec'd
 * program, and the flood builtin. The other builtins never write, so they
 * get no output pipes (two pipes fewer to make, pass, watch and close per
 * node: a supervise node in every real tree is one of them). */
static inline bool run_writes_output(run_kind_t run)
{
    return run == RUN_EXEC || run == RUN_FLOOD;
}


typedef enum {
    PH_NONE = -1,
    PH_SPAWNED, PH_READY, PH_RUNNING, PH_CANCEL_REQUESTED, PH_CANCELLING_CHILDREN,
    PH_CHILDREN_EXITED, PH_CLEANUP, PH_EXITING, PH_EXITED, PH_TERM_SENT, PH_KILL_SENT,
    PH_COUNT
} phase_t;

typedef enum {
    ST_PENDING, ST_RUNNING, ST_OK, ST_FAILED, ST_CANCELLED, ST_KILLED, ST_SPAWN_FAILED, ST_LOST
} status_t;

typedef enum { TREE_RUNNING, TREE_OK, TREE_FAILED, TREE_CANCELLED, TREE_LOST } tree_status_t;

typedef struct {
    phase_t phase;
    int64_t t_ms;
} phase_rec_t;

/* One incarnation of a node: its process's life and what was observed of
 * it. Everything here belongs to one process; a restart starts a new one. */
typedef struct {
    node_life_t life;        /* the lifecycle state and its facts (node.h) */
    int64_t asked_mono_ms;   /* when its spawn was asked: older reports are an earlier one's */
    pid_t pid;
    cJSON *error;            /* reported or derived error, owned */
    bool child_failed;       /* a child's failure fails it (strategy.h) */
    phase_t child_failed_phase; /* the phase it was in when that happened */
    phase_t stuck_phase;     /* last phase reported when SIGTERM was needed */
    int escaped;             /* its descendants that had to be killed when it ended */
    phase_rec_t *phases;
    int nphases, phases_cap;
    char *tail;              /* bounded tail of stderr, a ring */
    size_t tail_len, tail_pos;
    errline_t errline;       /* its last ARBOR-ERROR line, kept whole up to 64 KiB */
    uint64_t out_bytes, err_bytes;
    uint64_t bad_messages;   /* unreadable messages on its notify fd */
} tree_inc_t;

typedef struct tree_node_t tree_node_t;
struct tree_node_t {
    /* from the spec */
    int idx;                 /* index in tree->nodes, breadth-first */
    char name[TREE_NAME_MAX + 1];
    char *path;              /* "root/spawner-0/errorer-1" */
    tree_node_t *parent;
    tree_node_t **children;
    int nchildren;
    run_kind_t run;
    strategy_t strategy;
    int64_t grace_ms, kill_after_ms;
    cJSON *params;           /* the node's spec without "children" */

    /* its process's fds, owned by one module with one release path */
    wfd_t fds;

    /* the current incarnation: all of it starts clean on a restart
     * (tree_node_next_incarnation), the history keeps the old one */
    tree_inc_t inc;
    status_t status;
    phase_t phase;           /* last phase reached */
    uint32_t deadline_gen;   /* stale deadline entries carry an older value (never reset) */

    /* placement on another supervisor ("on"): the whole subtree runs there */
    char remote_sup[TREE_NAME_MAX + 1]; /* set on the node that has "on" */
    bool remote_part;        /* a descendant of such a node: never spawned here */
    bool grafted;            /* known only from that supervisor's report (tree_graft) */
    cJSON *subtree_spec;     /* what is sent to the other supervisor */
    char remote_tree[TREE_ID_MAX + 1];  /* its tree id there */
    int64_t remote_req;      /* id of our spawn request, to match the reply */
    int64_t remote_t0_ms;    /* our t_ms when we asked: its times are shifted by it */

    /* restarts (a parent's strategy restarts its children) */
    restart_t restart;       /* as a child: when its parent restarts it */
    int max_restarts;        /* as a parent: restarts allowed within_ms (0: none) */
    int64_t within_ms;
    strat_window_t window;   /* as a parent: when its last restarts happened */
    uint32_t incarnation;    /* 0 for the first process of this node */
    bool restart_wanted;     /* restart once its whole subtree has ended */
    bool restart_limit_hit;  /* as a parent: failed because restarts ran out */
    cJSON *history;          /* outcomes of its earlier incarnations, oldest first */

    /* its output lines (nodelog.h), across incarnations; NULL until it writes */
    logbuf_t *logs;
};

typedef struct {
    char id[TREE_ID_MAX + 1];
    uint64_t serial;
    char supervisor[TREE_NAME_MAX + 1];
    tree_node_t *nodes;      /* array, nodes[0] is the root */
    int nnodes;
    int nterminal;
    int64_t started_ms, ended_ms;
    int64_t timeout_ms;      /* 0: none */
    char reason[32];         /* why it was cancelled: "cancel", "timeout", ... */
    tree_status_t status;
    uint64_t log_seq;        /* seq of the last output line, any node */
} tree_t;

const char *phase_name(phase_t p);
phase_t phase_parse(const char *name);
const char *status_name(status_t s);
status_t status_parse(const char *name); /* ST_PENDING when unknown */
const char *tree_status_name(tree_status_t s);
bool status_is_terminal(status_t s);
bool status_is_failure(status_t s);   /* failed, spawn_failed, lost */

tree_t *tree_new(const char *id, uint64_t serial, const char *supervisor, int nnodes);
void tree_destroy(tree_t **self);
tree_node_t *tree_find_path(tree_t *self, const char *path);

/* Record that node reached a phase at t_ms (relative to the tree start). */
void tree_node_phase(tree_node_t *node, phase_t phase, int64_t t_ms);

/* Keep the last TREE_TAIL_BYTES of what a node wrote on stderr, and its
 * last ARBOR-ERROR line on its own (errline.h). */
void tree_node_tail_append(tree_node_t *node, const char *data, size_t len);
/* The kept tail as a string (caller frees). */
char *tree_node_tail(const tree_node_t *node);

/* A program that did not report its error on its notify fd may have
 * written it on stderr, as the line "ARBOR-ERROR {json}": take the last such
 * line as the node's error (whole up to 64 KiB, cut with a marker beyond).
 * True if taken; false when the node has an error already or wrote no such
 * line, or, with why set, when that line is no error (not JSON, no type, a
 * \u0000 in a string). */
bool tree_node_error_from_stderr(tree_node_t *node, char *why, size_t size);

/* The status rules (docs/ARCHITECTURE.md): the one terminal status that the facts
 * recorded on a node add up to. Call once its process is gone. */
status_t tree_node_final_status(const tree_node_t *node);

/* Set node->status (terminal) and derive node->error when the facts call
 * for one and none was reported. Counts it in tree->nterminal. */
void tree_node_settle(tree_t *tree, tree_node_t *node, status_t status);

/* True when every child of node has a terminal status. */
bool tree_children_settled(const tree_node_t *node);
/* True when node and all its descendants have terminal statuses. */
bool tree_subtree_settled(const tree_node_t *node);

/* Dynamic children: move the nodes of w below its root into tree, as new
 * children of tree->nodes[parent_idx] (w's root stands for that node and
 * has its name; w is consumed). The node array grows: every pointer into
 * it changes (parents and children are fixed here; callers re-fetch by
 * index). Returns the index of the first new node, or -1 when out of
 * memory (then nothing changed and w is left to the caller). */
int tree_adopt(tree_t *tree, int parent_idx, tree_t **w);
/* Depth of node (the root is 1). */
int tree_node_depth(const tree_node_t *node);
/* True when node is below (not at) ancestor. */
bool tree_node_below(const tree_node_t *node, const tree_node_t *ancestor);

/* Start node's next incarnation: the current one (phases, exit, error,
 * stderr tail) becomes an entry of its history (reported as "restarts"),
 * and the new one starts clean, pending. */
void tree_node_next_incarnation(tree_t *tree, tree_node_t *node, int64_t t_ms);
/* The same for node and its whole subtree. */
void tree_subtree_reset(tree_t *tree, tree_node_t *node, int64_t t_ms);

/* The subtree of node top (an index) ran on another supervisor: take its
 * nodes' outcomes from that supervisor's report root (same shape as ours;
 * its times shifted by top's remote_t0_ms) and settle them, deepest first.
 * Nodes the report lacks are settled lost (cancelled if they came from an
 * earlier report). Nodes it has and we lack (children a placed worker
 * started there) are adopted (tree_adopt: every pointer into the node
 * array changes) and settled from it. top itself is left for the caller
 * to settle: returns its status. */
status_t tree_graft(tree_t *tree, int top, const cJSON *remote_root);

/* Settle top's remote subtree with one status (lost, or cancelled before it
 * was ever sent), each node with a copy of error (may be NULL). Deepest
 * first; top is left for the caller. */
void tree_settle_remote_part(tree_t *tree, tree_node_t *top, status_t status, const cJSON *error);

/* Tree status from its root (running until every node is terminal). */
tree_status_t tree_status_of(const tree_t *self);

#endif
