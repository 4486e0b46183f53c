/* logs_req: the answer to a "logs" request (schema/msg.logs.json) — the
 * output lines a tree's nodes wrote, from a cursor.
 *
 * Request body: {"tree", "path"?, "stream"?, "after"?}. path selects a node
 * and its subtree (default: the whole tree), stream "stdout" or "stderr"
 * (default: both), after the cursor (default 0: every line still kept).
 * Reply body: {"tree", "lines": [{"seq", "path", "stream", "t_ms", "text",
 * "cut"?}...], "next", "more", "dropped", "gap", "status", "node_status"?,
 * "ended", "eof"}: lines with seq > after, in seq order (the order they were
 * completed in, across nodes); next is the cursor to send next time; more:
 * the reply was full, ask again at once; dropped: lines the selected nodes
 * dropped so far (their budget, oldest first); gap: some line after the
 * cursor was dropped before it could be read; ended: the tree (with path:
 * that node) has ended; eof: ended, every pipe of the selected nodes is
 * closed and this reply holds their last line — nothing will follow.
 * Text is valid UTF-8 (an invalid byte or a NUL becomes U+FFFD). */
#ifndef ARBOR_LOGS_REQ_H
#define ARBOR_LOGS_REQ_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "tree.h"

#define LOGS_REQ_MAX_LINES 1000          /* lines in one reply */
#define LOGS_REQ_MAX_JSON (128 * 1024)   /* about this many bytes of JSON at most */

/* The reply body for request body about tree t (its "tree" already looked
 * up), or NULL with *code ("bad_request", "not_found") and err set. */
cJSON *logs_req_reply(tree_t *t, const cJSON *body, const char **code, char *err, size_t errlen);

#endif
