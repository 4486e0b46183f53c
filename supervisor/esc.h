/* esc: the escalation ladder of one node being torn down.
 *
 *   cancel --grace_ms--> SIGTERM --kill_after_ms--> SIGKILL --ESC_REAP_MS--> lost
 *
 * Pure: given the stage a node has reached, what to do when its deadline
 * passes and how long the next step may take. */
#ifndef ARBOR_ESC_H
#define ARBOR_ESC_H

#include <stdint.h>
#include "tree.h"

#define ESC_REAP_MS 2000  /* SIGKILL should end anything; past this, give up */
#define ESC_SETTLE_MS 500 /* after an exit, wait this long for in-flight reports */

typedef enum { ESC_SEND_TERM, ESC_SEND_KILL, ESC_GIVE_UP } esc_action_t;

/* Advance node's stage; *next_ms is the delay before the next deadline
 * (unused after ESC_GIVE_UP). */
esc_action_t esc_advance(tree_node_t *node, int64_t *next_ms);

#endif
