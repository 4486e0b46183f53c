#include "esc.h"

esc_action_t esc_advance(tree_node_t *node, int64_t *next_ms)
{
    switch (node->esc_stage) {
    case 0:
        node->esc_stage = 1;
        *next_ms = node->kill_after_ms;
        return ESC_SEND_TERM;
    case 1:
        node->esc_stage = 2;
        *next_ms = ESC_REAP_MS;
        return ESC_SEND_KILL;
    default:
        node->esc_stage = 3;
        *next_ms = 0;
        return ESC_GIVE_UP;
    }
}
