#include "env.h"
#include "live.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "render.h"
#include "sbuf.h"
#include "trace.h"

#define C_RESET "\033[0m"
#define C_DIM "\033[2m"
#define C_BOLD "\033[1m"
#define BAR_MAX 40
#define PATH_COL 48 /* widest path column of the slowest list */

static const char *s_statuses[] = {"running", "pending",      "ok",   "failed", "killed",
                                   "cancelled", "spawn_failed", "lost", NULL};
static const char *s_phases[] = {"spawned",  "ready",     "running",   "cancel_requested",
                                 "cancelling_children",   "children_exited",
                                 "cleanup",  "exiting",   "term_sent", "kill_sent",
                                 "exited",   NULL};

typedef struct {
    char **lines;
    int n, cap;
    bool oom;
} lines_t;

static void s_push(lines_t *l, sbuf_t *line)
{
    char *text = sbuf_take(line);
    if (!text || l->oom) {
        free(text);
        l->oom = true;
        return;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        char **more = realloc(l->lines, (size_t) cap * sizeof *more);
        if (!more) {
            free(text);
            l->oom = true;
            return;
        }
        l->lines = more;
        l->cap = cap;
    }
    l->lines[l->n++] = text;
}

static void s_lines_free(lines_t *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->lines[i]);
    free(l->lines);
}

int live_width(const char *line)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *) line; *p; p++) {
        if (*p == 0x1b && p[1] == '[') { /* CSI ... final byte */
            p += 2;
            while (*p && !(*p >= 0x40 && *p <= 0x7e))
                p++;
            if (!*p)
                break;
            continue;
        }
        if ((*p & 0xC0) != 0x80 && *p != '\n')
            w++;
    }
    return w;
}

/* Append line cut to max visible columns (escape sequences kept whole, a
 * reset added when colour was cut off). */
static void s_fit(sbuf_t *out, const char *line, int max, bool colour)
{
    int w = 0;
    bool cut = false;
    const unsigned char *p = (const unsigned char *) line;
    while (*p && *p != '\n') {
        if (*p == 0x1b && p[1] == '[') {
            const unsigned char *q = p + 2;
            while (*q && !(*q >= 0x40 && *q <= 0x7e))
                q++;
            if (!*q)
                break;
            sbuf_add(out, (const char *) p, (size_t) (q + 1 - p));
            p = q + 1;
            continue;
        }
        int len = 1;
        while ((p[len] & 0xC0) == 0x80)
            len++;
        if (w == max) {
            cut = true;
            break;
        }
        sbuf_add(out, (const char *) p, (size_t) len);
        p += len;
        w++;
    }
    if (cut && colour)
        sbuf_add(out, C_RESET, strlen(C_RESET));
}

static void s_status_word(sbuf_t *l, const char *status, bool colour)
{
    const char *col = colour ? render_status_colour(status) : "";
    sbuf_add(l, col, strlen(col));
    sbuf_add_clean(l, status, 40);
    if (*col)
        sbuf_add(l, C_RESET, strlen(C_RESET));
}

static void s_duration(sbuf_t *out, int64_t ms)
{
    if (ms < 1000)
        sbuf_printf(out, "%" PRId64 " ms", ms);
    else if (ms < 120000)
        sbuf_printf(out, "%.1f s", (double) ms / 1000.0);
    else
        sbuf_printf(out, "%" PRId64 " min %02" PRId64 " s", ms / 60000, ms / 1000 % 60);
}

/* "  status  running 28  failed 3" over the names, then any other. */
static void s_counts(lines_t *out, const char *heading, const char *const *names,
                     const char **values, int n, bool colour)
{
    sbuf_t l = {0};
    sbuf_printf(&l, "  %-8s", heading);
    bool any = false;
    bool *seen = calloc((size_t) n + 1, sizeof *seen);
    for (int k = 0; names[k]; k++) {
        int count = 0;
        for (int i = 0; i < n; i++)
            if (values[i] && strcmp(values[i], names[k]) == 0) {
                count++;
                if (seen)
                    seen[i] = true;
            }
        if (!count)
            continue;
        sbuf_printf(&l, " ");
        s_status_word(&l, names[k], colour);
        sbuf_printf(&l, " %d ", count);
        any = true;
    }
    int other = 0, none = 0;
    for (int i = 0; seen && i < n; i++) {
        other += !seen[i] && values[i];
        none += !values[i];
    }
    if (other)
        sbuf_printf(&l, " other %d ", other);
    if (none)
        sbuf_printf(&l, " none %d ", none);
    other += none;
    if (!any && !other)
        sbuf_printf(&l, " -");
    free(seen);
    s_push(out, &l);
}

typedef struct {
    const trace_row_t *row;
    const char *phase;
    int64_t ms;
} slow_t;

static int s_slow_cmp(const void *x, const void *y)
{
    const slow_t *a = x, *b = y;
    if (a->ms != b->ms)
        return a->ms > b->ms ? -1 : 1;
    return trace_path_cmp(a->row->path, b->row->path);
}

/* Once all have ended: the nodes that needed signals (stuck, escalated)
 * first, since that is what a reader looks for, whatever their times
 * beside the parents that waited for them; then the longest. */
static int s_longest_cmp(const void *x, const void *y)
{
    const slow_t *a = x, *b = y;
    bool ea = a->row->stuck_phase || a->row->nmarks, eb = b->row->stuck_phase || b->row->nmarks;
    if (ea != eb)
        return ea ? -1 : 1;
    return s_slow_cmp(x, y);
}

/* The slowest nodes: still-running ones by time in their current phase;
 * when none is running any more, every node's longest phase. */
static void s_slowest(lines_t *out, const trace_model_t *m, int max, bool colour)
{
    slow_t *s = calloc((size_t) m->nrows + 1, sizeof *s);
    if (!s)
        return;
    int n = 0;
    for (int i = 0; i < m->nrows; i++) {
        const trace_row_t *r = &m->rows[i];
        if (exitcode_node_ended(r->status) || r->nslices == 0 || r->incarnation + 1 < r->incarnations)
            continue;
        /* its worker phase: a signal sent does not end it */
        const trace_slice_t *cur = &r->slices[r->nslices - 1];
        s[n++] = (slow_t) {r, cur->phase, m->end_ms - cur->t0_ms};
    }
    bool running = n > 0;
    /* All ended: each node's longest teardown phase (after "running"), or
     * when there was no teardown at all, its longest phase. */
    for (int pass = 0; !running && pass < 2 && n == 0; pass++)
        for (int i = 0; i < m->nrows; i++) {
            const trace_row_t *r = &m->rows[i];
            int best = -1;
            for (int k = 0; k < r->nslices; k++) {
                const char *ph = r->slices[k].phase;
                if (!strcmp(ph, "exited") ||
                    (pass == 0 && (!strcmp(ph, "spawned") || !strcmp(ph, "ready") ||
                                   !strcmp(ph, "running"))))
                    continue;
                if (best < 0 || r->slices[k].t1_ms - r->slices[k].t0_ms >
                                    r->slices[best].t1_ms - r->slices[best].t0_ms)
                    best = k;
            }
            if (best >= 0 && (pass == 1 || r->slices[best].t1_ms > r->slices[best].t0_ms))
                s[n++] = (slow_t) {r, r->slices[best].phase,
                                   r->slices[best].t1_ms - r->slices[best].t0_ms};
        }
    qsort(s, (size_t) n, sizeof *s, running ? s_slow_cmp : s_longest_cmp);
    int path_col = 12;
    for (int i = 0; i < n && i < max; i++) {
        int len = live_width(s[i].row->path);
        if (len > path_col)
            path_col = len < PATH_COL ? len : PATH_COL;
    }
    for (int i = 0; i < n && i < max; i++) {
        sbuf_t l = {0};
        sbuf_printf(&l, "  %-8s ", i ? "" : running ? "slowest" : "longest");
        /* "slowest": longest in its current phase; "longest": longest teardown phase */
        sbuf_t cell = {0};
        sbuf_add_clean(&cell, s[i].row->path, 200);
        sbuf_printf(&l, "%-*s ", path_col, cell.data ? cell.data : "?");
        sbuf_reset(&cell);
        sbuf_add_clean(&cell, s[i].phase, 40);
        sbuf_printf(&l, "%-19s ", cell.data ? cell.data : "?");
        sbuf_reset(&cell);
        s_duration(&cell, s[i].ms);
        sbuf_printf(&l, "%8s", cell.data ? cell.data : "");
        sbuf_reset(&cell);
        const trace_row_t *r = s[i].row;
        if (r->stuck_phase || r->nmarks) {
            const char *col = colour ? "\033[35m" : "";
            sbuf_printf(&l, "  %s", col);
            if (r->stuck_phase)
                sbuf_printf(&l, "stuck in %s%s", r->stuck_phase, r->nmarks ? ": " : "");
            for (int k = 0; k < r->nmarks; k++)
                sbuf_printf(&l, "%s%s", k ? ", " : "", r->marks[k].signal);
            if (!r->stuck_phase)
                sbuf_printf(&l, " sent");
            if (*col)
                sbuf_printf(&l, C_RESET);
        }
        if (r->error && running) {
            const char *type = env_str(r->error, "type");
            sbuf_printf(&l, "  ");
            sbuf_add_clean(&l, type ? type : "error", 60);
        }
        s_push(out, &l);
    }
    free(s);
}

/* One tree's block. */
static void s_tree(lines_t *out, const live_tree_t *t, int width, int slowest, bool colour)
{
    sbuf_t l = {0};
    const char *id = t->report ? env_str(t->report, "tree") : NULL;
    if (colour)
        sbuf_printf(&l, C_BOLD);
    sbuf_printf(&l, "tree ");
    sbuf_add_clean(&l, id ? id : t->tree ? t->tree : "?", 80);
    if (colour)
        sbuf_printf(&l, C_RESET);
    trace_model_t m;
    if (!t->report || trace_model_build(t->report, &m) != 0) {
        sbuf_printf(&l, "  (waiting for its report)");
        if (t->note) {
            sbuf_printf(&l, "  ");
            sbuf_add_clean(&l, t->note, 200);
        }
        s_push(out, &l);
        return;
    }
    sbuf_printf(&l, " on ");
    sbuf_add_clean(&l, m.supervisor, 128);
    sbuf_printf(&l, "  ");
    s_status_word(&l, m.status, colour);
    sbuf_printf(&l, "  ");
    s_duration(&l, m.end_ms);
    if (t->note) {
        sbuf_printf(&l, "  %s", colour ? "\033[31m" : "");
        sbuf_add_clean(&l, t->note, 200);
        if (colour)
            sbuf_printf(&l, C_RESET);
    }
    s_push(out, &l);

    /* Progress: nodes with a terminal status (a restarted node counts once,
     * by its current incarnation; its earlier ones are its restarts). */
    int ended = 0, nodes = 0, restarts = 0;
    for (int i = 0; i < m.nrows; i++) {
        if (m.rows[i].incarnation + 1 < m.rows[i].incarnations) {
            restarts++;
            continue;
        }
        nodes++;
        ended += exitcode_node_ended(m.rows[i].status);
    }
    int bar = width - 40;
    if (bar > BAR_MAX)
        bar = BAR_MAX;
    if (bar < 10)
        bar = 10;
    int filled = nodes ? (int) ((int64_t) ended * bar / nodes) : 0;
    sbuf_printf(&l, "  ");
    if (colour)
        sbuf_printf(&l, "\033[32m");
    for (int i = 0; i < bar; i++) {
        if (i == filled && colour)
            sbuf_printf(&l, C_DIM);
        sbuf_printf(&l, "%s", i < filled ? "\u2588" : "\u2591");
    }
    if (colour)
        sbuf_printf(&l, C_RESET);
    sbuf_printf(&l, "  %d/%d nodes ended (%d%%)", ended, nodes,
                nodes ? (int) ((int64_t) ended * 100 / nodes) : 0);
    if (restarts)
        sbuf_printf(&l, ", %d restart%s", restarts, restarts == 1 ? "" : "s");
    if (m.nrows >= TRACE_MAX_NODES)
        sbuf_printf(&l, " (more not counted)");
    s_push(out, &l);

    const char **statuses = calloc((size_t) m.nrows + 1, sizeof *statuses);
    const char **phases = calloc((size_t) m.nrows + 1, sizeof *phases);
    int k = 0;
    for (int i = 0; statuses && phases && i < m.nrows; i++) {
        if (m.rows[i].incarnation + 1 < m.rows[i].incarnations)
            continue; /* an earlier incarnation: counted as a restart */
        statuses[k] = m.rows[i].status;
        phases[k] = env_str(m.rows[i].node, "phase");
        if (!phases[k] && m.rows[i].nslices)
            phases[k] = m.rows[i].slices[m.rows[i].nslices - 1].phase;
        k++;
    }
    if (statuses && phases) {
        s_counts(out, "status", s_statuses, statuses, k, colour);
        s_counts(out, "phase", s_phases, phases, k, false);
    }
    free(statuses);
    free(phases);
    s_slowest(out, &m, slowest, colour);
    trace_model_clear(&m);
}

char *live_frame(const live_tree_t *trees, int ntrees, const char *const *events, int nevents,
                 const live_opts_t *opts)
{
    int width = opts->width > 20 ? opts->width : 20;
    int max_lines = opts->height > 0 ? opts->height - 1 : 1 << 30;
    lines_t blocks = {0};
    int slowest = ntrees > 1 ? 3 : LIVE_SLOWEST;
    int shown = 0;
    for (int i = 0; i < ntrees; i++) {
        int before = blocks.n;
        if (i > 0) {
            sbuf_t blank = {0};
            sbuf_printf(&blank, " ");
            s_push(&blocks, &blank);
        }
        s_tree(&blocks, &trees[i], width, slowest, opts->colour);
        if (blocks.n > max_lines && i > 0) { /* does not fit: drop it */
            while (blocks.n > before)
                free(blocks.lines[--blocks.n]);
            break;
        }
        shown++;
    }
    if (shown < ntrees) {
        sbuf_t l = {0};
        sbuf_printf(&l, "(%d more tree%s not shown)", ntrees - shown,
                    ntrees - shown == 1 ? "" : "s");
        s_push(&blocks, &l);
    }
    if (ntrees == 0) {
        sbuf_t l = {0};
        sbuf_printf(&l, "waiting for trees... (Ctrl-C to stop)");
        s_push(&blocks, &l);
    }
    /* The most recent events that fit below. */
    int room = max_lines - blocks.n - 2;
    if (room > LIVE_EVENT_LINES)
        room = LIVE_EVENT_LINES;
    int from = nevents - (room > 0 ? room : 0);
    if (from < 0)
        from = 0;
    if (room > 0 && nevents > 0) {
        sbuf_t l = {0};
        sbuf_printf(&l, " ");
        s_push(&blocks, &l);
        sbuf_printf(&l, "%srecent events%s", opts->colour ? C_DIM : "",
                    opts->colour ? C_RESET : "");
        s_push(&blocks, &l);
        for (int i = from; i < nevents; i++) {
            sbuf_printf(&l, "  %s", events[i] ? events[i] : "");
            s_push(&blocks, &l);
        }
    }
    sbuf_t out = {0};
    for (int i = 0; i < blocks.n && i < max_lines; i++) {
        s_fit(&out, blocks.lines[i], width - 1, opts->colour);
        sbuf_add(&out, "\n", 1);
    }
    bool oom = blocks.oom || out.oom;
    s_lines_free(&blocks);
    if (oom) {
        sbuf_reset(&out);
        return NULL;
    }
    return sbuf_take(&out);
}
