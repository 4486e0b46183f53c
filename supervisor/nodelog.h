/* nodelog: where a node's stdout and stderr go — into its logbuf (kept,
 * bounded, for "logs" requests and the report) and, with --log-dir, to its
 * file. Called by the supervisor's drain for every chunk and every end of
 * a pipe; nothing here blocks or keeps an fd. */
#ifndef ARBOR_NODELOG_H
#define ARBOR_NODELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logbuf.h"
#include "tree.h"

typedef struct {
    logbuf_limits_t limits; /* per node: --log-lines, --log-bytes */
    const char *dir;        /* --log-dir, or NULL */
} nodelog_cfg_t;

#define NODELOG_CFG_DEFAULT \
    {{LOGBUF_DEFAULT_LINES, LOGBUF_DEFAULT_BYTES, LOGBUF_DEFAULT_LINE_MAX}, NULL}

/* What node n of tree t wrote on stream, read at now_ms (the clock of
 * t->started_ms); eof: the stream ended (data unused). The node's logbuf is
 * made at its first output. Lines are numbered from t->log_seq. */
void nodelog_output(const nodelog_cfg_t *cfg, tree_t *t, tree_node_t *n, logbuf_stream_t stream,
                    const char *data, size_t len, bool eof, int64_t now_ms);

#endif
