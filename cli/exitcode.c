#include "exitcode.h"

#include <stddef.h>
#include <string.h>

static bool s_is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

int exitcode_tree(const char *status)
{
    if (s_is(status, "ok") || s_is(status, "running"))
        return EXIT_TREE_OK;
    if (s_is(status, "cancelled"))
        return EXIT_TREE_CANCELLED;
    return EXIT_TREE_FAILED;
}

int exitcode_node(const char *status)
{
    if (s_is(status, "ok") || s_is(status, "running") || s_is(status, "pending"))
        return EXIT_TREE_OK;
    if (s_is(status, "cancelled") || s_is(status, "killed"))
        return EXIT_TREE_CANCELLED;
    return EXIT_TREE_FAILED;
}

bool exitcode_tree_ended(const char *status)
{
    return status && !s_is(status, "running");
}

bool exitcode_node_ended(const char *status)
{
    return status && !s_is(status, "running") && !s_is(status, "pending");
}
