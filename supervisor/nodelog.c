#include "nodelog.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "logdir.h"

/* A full disk, or no memory, is not a flood of warnings: a few a second. */
static log_budget_t s_warnings;

static void s_to_file(void *arg, const logbuf_line_t *line)
{
    logdir_line(arg, line);
}

void nodelog_output(const nodelog_cfg_t *cfg, tree_t *t, tree_node_t *n, logbuf_stream_t stream,
                    const char *data, size_t len, bool eof, int64_t now_ms)
{
    if (!n->logs && eof)
        return; /* it never wrote a byte */
    if (!n->logs && !(n->logs = logbuf_new(&cfg->limits))) {
        if (log_budget_take(&s_warnings, 2, now_ms, "output warnings"))
            log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: out of memory for its output lines",
                     t->id, n->path);
        return;
    }
    logdir_batch_t batch;
    if (cfg->dir) {
        logdir_begin(&batch, cfg->dir, t->id, n->path);
        logbuf_set_sink(n->logs, s_to_file, &batch);
    }
    if (eof)
        logbuf_close(n->logs, stream, &t->log_seq);
    else
        logbuf_append(n->logs, stream, data, len, now_ms - t->started_ms, &t->log_seq);
    if (!cfg->dir)
        return;
    logbuf_set_sink(n->logs, NULL, NULL);
    int rc = logdir_end(&batch), e = errno;
    if (rc != 0 && log_budget_take(&s_warnings, 2, now_ms, "output warnings")) {
        char name[512];
        logdir_file_name(cfg->dir, t->id, n->path, name, sizeof name);
        log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: cannot write its output to %s: %s "
                 "(it is still kept in memory)", t->id, n->path, name, strerror(e));
    }
}
