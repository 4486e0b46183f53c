/* exitcode: arborctl's exit codes (docs/CLI.md) and the
 * mapping from tree and node statuses to them. */
#ifndef ARBOR_CLI_EXITCODE_H
#define ARBOR_CLI_EXITCODE_H

#include <stdbool.h>

enum {
    EXIT_TREE_OK = 0,        /* also: command done, tree still running */
    EXIT_TREE_FAILED = 1,    /* tree failed or lost */
    EXIT_USAGE = 2,          /* bad usage, invalid spec, unknown tree */
    EXIT_UNREACHABLE = 3,    /* broker/supervisor unreachable, --timeout */
    EXIT_TREE_CANCELLED = 4, /* tree cancelled */
    EXIT_INTERRUPTED = 130,  /* SIGINT/SIGTERM while waiting (128 + SIGINT) */
};

/* Tree status -> exit code: running/ok 0, failed/lost 1, cancelled 4.
 * Unknown or NULL counts as failed: never report success we cannot see. */
int exitcode_tree(const char *status);

/* Node status -> exit code (cancel --wait of a subtree): ok/running/pending 0,
 * cancelled/killed 4, failed/spawn_failed/lost and unknown 1. */
int exitcode_node(const char *status);

/* True when a tree status is terminal (anything but "running"; NULL is not). */
bool exitcode_tree_ended(const char *status);

/* True when a node status is terminal (not pending/running; NULL is not). */
bool exitcode_node_ended(const char *status);

#endif
