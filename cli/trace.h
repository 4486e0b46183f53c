/* trace: a tree report as a timeline — one row per node, sorted by path so
 * that nesting reads top-down, with the node's phases as slices, the
 * signals arbor sent as marks, its error placed in time and its stuck phase
 * (escalation) flagged — and that timeline as Trace Event Format JSON
 * (the format Perfetto and chrome://tracing open).
 *
 * Pure functions of the report (schema/report.json): missing or
 * mistyped keys are skipped, never crash. Times are ms since the tree
 * started, as in the report's "phases". */
#ifndef ARBOR_CLI_TRACE_H
#define ARBOR_CLI_TRACE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define TRACE_MAX_NODES 100000 /* nodes beyond this are not read */
#define TRACE_PID 1            /* the tree's "process" in the trace */

typedef struct {
    const char *phase; /* a worker phase: spawned ... exited */
    int64_t t0_ms;
    int64_t t1_ms;     /* the next phase's t_ms (>= t0_ms) */
} trace_slice_t;

typedef struct {
    const char *name;   /* "term_sent" or "kill_sent" */
    const char *signal; /* "SIGTERM" / "SIGKILL" */
    int64_t t_ms;
} trace_mark_t;

typedef struct {
    const cJSON *node;       /* borrowed from the report */
    const char *path;        /* never NULL ("?" when absent) */
    const char *status;      /* never NULL */
    int depth;               /* root 0 */
    int order;               /* position in the report's depth-first walk */
    int incarnation;         /* which process of a restarted node: 0 first */
    int incarnations;        /* how many the node had (1: never restarted) */
    trace_slice_t *slices;   /* in time order */
    int nslices;
    trace_mark_t *marks;     /* signals sent, in time order */
    int nmarks;
    const cJSON *error;      /* the node's error object, or NULL */
    int64_t error_ms;        /* when the error happened (see trace_model_build) */
    const char *stuck_phase; /* escalation.stuck_phase, or NULL */
    int stuck_slice;         /* index of the stuck phase's slice, or -1 */
} trace_row_t;

typedef struct {
    trace_row_t *rows; /* sorted by path; '/' sorts first, digit runs by value */
    int nrows;
    int64_t end_ms;    /* the report's duration_ms (or the last time seen) */
    const char *tree, *supervisor, *status; /* never NULL */
} trace_model_t;

/* Build the timeline of report. A restarted node has one row per
 * incarnation (its "restarts" entries, then the current one), each its own
 * span: rows of one node are adjacent, oldest first. Slices: each worker phase lasts until the
 * node's next worker phase; the last one ends at once when it is "exited",
 * else it runs to end_ms (a node still in it when the report was taken).
 * term_sent / kill_sent are marks, not slices: the node is still in its
 * phase when arbor signals it. An error is dated at the end of the phase it
 * names (the first signal sent in that phase, if any, comes first); with no
 * such phase, at the node's last phase. 0, or -1 (no "root" object, or out
 * of memory). Free with trace_model_clear. */
int trace_model_build(const cJSON *report, trace_model_t *model);
void trace_model_clear(trace_model_t *model);

/* Path order used for rows: '/' before any other character (so a node's
 * subtree follows it directly) and digit runs compared by value
 * (spawner-2 before spawner-10). */
int trace_path_cmp(const char *a, const char *b);

/* Report -> {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}:
 * pid TRACE_PID is the tree (process_name metadata: "tree ID on SUP");
 * tid i+1 is row i (thread_name metadata: the node path, with "#K" for the
 * K-th incarnation of a restarted node; thread_sort_index i);
 * a complete event "X" per slice (cat "phase", ts/dur in µs); an instant
 * event "i" per signal mark (cat "signal", args {signal, stuck_phase?}); an
 * instant event per error (name = error type, cat "error", args = the error
 * object: type, message, phase, ...). NULL as for trace_model_build. */
cJSON *trace_from_report(const cJSON *report);

#endif
