/* spec: the tree spec (docs/ARCHITECTURE.md, "The contracts"), checked whole
 * before anything is spawned. A bad spec yields a message that names the
 * offending path ("root/spawner-0: run: unknown behaviour \"boom\""). */
#ifndef ARBOR_SPEC_H
#define ARBOR_SPEC_H

#include <cjson/cJSON.h>
#include "tree.h"

typedef struct {
    int max_depth;   /* root is depth 1 */
    int max_nodes;   /* after expanding "count" */
    bool may_switch_user; /* "user"/"group" allowed: the supervisor runs as root */
} spec_limits_t;

#define SPEC_DEFAULT_MAX_DEPTH 16
#define SPEC_DEFAULT_MAX_NODES 10000
#define SPEC_DEFAULT_GRACE_MS 2000
#define SPEC_DEFAULT_KILL_AFTER_MS 1000
#define SPEC_DEFAULT_MAX_RESTARTS 3   /* one_for_one, rest_for_one */
#define SPEC_DEFAULT_WITHIN_MS 5000
/* A node's own JSON (compact, without "children") travels to the
 * fork-server in one SPAWN message of at most FSRV_MAX_PAYLOAD bytes, with
 * a few fields the supervisor adds: a node above this is refused. */
#define SPEC_MAX_NODE_BYTES 56000

typedef struct {
    char path[256];
    char message[256];
} spec_err_t;

/* Build the tree model of spec. NULL (and err filled) when the spec is bad;
 * nothing else happens then. limits may be NULL for the defaults. */
tree_t *spec_build(const cJSON *spec, const char *tree_id, uint64_t serial,
                   const char *supervisor, const spec_limits_t *limits, spec_err_t *err);

/* Refuse a spec in which jnul_find (common/jnul.h) found \u0000 at the
 * JSON Pointer pointer (relative to the spec): fills err with the node's
 * path and the key, and returns -1. */
int spec_refuse_nul(const cJSON *spec, const char *pointer, spec_err_t *err);

/* Parse JSON text, refuse \u0000 in any string, then spec_build. */
tree_t *spec_build_text(const char *text, size_t len, const char *tree_id, uint64_t serial,
                        const char *supervisor, const spec_limits_t *limits, spec_err_t *err);

run_kind_t spec_run_kind(const char *name, bool *ok);

/* False for the signals whose default action does not end a process
 * (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGCHLD, SIGURG, SIGWINCH)
 * and for 0: "crash" refuses them, or its node would never end. */
bool spec_signal_ends_process(int signo);

/* The names "rlimits" accepts, NULL-terminated. */
extern const char *const spec_rlimit_names[];

#endif
