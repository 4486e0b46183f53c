#include "env.h"
#include "trace.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const cJSON *node;
    int depth;
} frame_t;

static bool s_is(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

int trace_path_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char) *a) && isdigit((unsigned char) *b)) {
            const char *ea = a, *eb = b;
            while (*a == '0' && isdigit((unsigned char) a[1]))
                a++;
            while (*b == '0' && isdigit((unsigned char) b[1]))
                b++;
            while (isdigit((unsigned char) *ea))
                ea++;
            while (isdigit((unsigned char) *eb))
                eb++;
            size_t la = (size_t) (ea - a), lb = (size_t) (eb - b);
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = memcmp(a, b, la);
            if (c)
                return c < 0 ? -1 : 1;
            a = ea;
            b = eb;
            continue;
        }
        unsigned ca = *a == '/' ? 0 : (unsigned char) *a;
        unsigned cb = *b == '/' ? 0 : (unsigned char) *b;
        if (ca != cb)
            return ca < cb ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int s_row_cmp(const void *x, const void *y)
{
    const trace_row_t *a = x, *b = y;
    int c = trace_path_cmp(a->path, b->path);
    if (c)
        return c;
    if (a->incarnation != b->incarnation)
        return a->incarnation < b->incarnation ? -1 : 1;
    /* equal paths (a malformed report): keep the walk order */
    return a->order < b->order ? -1 : a->order > b->order;
}

static const char *s_signal_of(const char *mark)
{
    return s_is(mark, "term_sent") ? "SIGTERM" : s_is(mark, "kill_sent") ? "SIGKILL" : NULL;
}

/* Insertion sorts: phase lists are short and normally already in order. */
static void s_sort_slices(trace_slice_t *s, int n)
{
    for (int i = 1; i < n; i++) {
        trace_slice_t v = s[i];
        int j = i;
        while (j > 0 && s[j - 1].t0_ms > v.t0_ms) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = v;
    }
}

static void s_sort_marks(trace_mark_t *m, int n)
{
    for (int i = 1; i < n; i++) {
        trace_mark_t v = m[i];
        int j = i;
        while (j > 0 && m[j - 1].t_ms > v.t_ms) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = v;
    }
}

/* Fill a row's slices, marks, error time and stuck phase from its node. */
static int s_fill_row(trace_row_t *row, int64_t end_ms)
{
    const cJSON *phases = cJSON_GetObjectItemCaseSensitive(row->node, "phases");
    int n = cJSON_IsArray(phases) ? cJSON_GetArraySize(phases) : 0;
    row->stuck_slice = -1;
    row->error_ms = -1;
    if (n > 0) {
        row->slices = calloc((size_t) n, sizeof *row->slices);
        row->marks = calloc((size_t) n, sizeof *row->marks);
        if (!row->slices || !row->marks)
            return -1;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, (n > 0 ? phases : NULL))
    {
        const char *name = env_str(p, "phase");
        int64_t t;
        if (!name || !env_num(p, "t_ms", &t))
            continue;
        if (t < 0)
            t = 0;
        const char *sig = s_signal_of(name);
        if (sig)
            row->marks[row->nmarks++] = (trace_mark_t) {name, sig, t};
        else
            row->slices[row->nslices++] = (trace_slice_t) {name, t, t};
    }
    s_sort_slices(row->slices, row->nslices);
    s_sort_marks(row->marks, row->nmarks);
    for (int i = 0; i < row->nslices; i++) {
        trace_slice_t *s = &row->slices[i];
        if (i + 1 < row->nslices)
            s->t1_ms = row->slices[i + 1].t0_ms;
        else if (!s_is(s->phase, "exited"))
            s->t1_ms = end_ms > s->t0_ms ? end_ms : s->t0_ms;
        /* a signal after the last worker phase still belongs to it */
        if (i + 1 == row->nslices && !s_is(s->phase, "exited"))
            for (int m = 0; m < row->nmarks; m++)
                if (row->marks[m].t_ms > s->t1_ms)
                    s->t1_ms = row->marks[m].t_ms;
    }

    const cJSON *esc = cJSON_GetObjectItemCaseSensitive(row->node, "escalation");
    row->stuck_phase = env_str(esc, "stuck_phase");
    if (row->stuck_phase)
        for (int i = row->nslices - 1; i >= 0 && row->stuck_slice < 0; i--)
            if (s_is(row->slices[i].phase, row->stuck_phase))
                row->stuck_slice = i;

    const cJSON *err = cJSON_GetObjectItemCaseSensitive(row->node, "error");
    if (cJSON_IsObject(err)) {
        row->error = err;
        const char *in = env_str(err, "phase");
        int found = -1;
        for (int i = row->nslices - 1; in && i >= 0 && found < 0; i--)
            if (s_is(row->slices[i].phase, in))
                found = i;
        if (found >= 0) {
            const trace_slice_t *s = &row->slices[found];
            row->error_ms = s->t1_ms;
            for (int m = 0; m < row->nmarks; m++)
                if (row->marks[m].t_ms >= s->t0_ms && row->marks[m].t_ms < row->error_ms) {
                    row->error_ms = row->marks[m].t_ms;
                    break;
                }
        } else if (row->nslices > 0) {
            row->error_ms = row->slices[row->nslices - 1].t0_ms;
        } else {
            row->error_ms = 0;
        }
    }
    return 0;
}

void trace_model_clear(trace_model_t *model)
{
    if (!model)
        return;
    for (int i = 0; i < model->nrows; i++) {
        free(model->rows[i].slices);
        free(model->rows[i].marks);
    }
    free(model->rows);
    memset(model, 0, sizeof *model);
}

int trace_model_build(const cJSON *report, trace_model_t *model)
{
    memset(model, 0, sizeof *model);
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(report, "root");
    if (!cJSON_IsObject(root))
        return -1;
    model->tree = env_str(report, "tree") ?: "?";
    model->supervisor = env_str(report, "supervisor") ?: "?";
    model->status = env_str(report, "status") ?: "?";
    if (!env_num(report, "duration_ms", &model->end_ms) || model->end_ms < 0)
        model->end_ms = 0;

    /* Walk (iteratively: the report's depth is not ours to trust). */
    int cap = 64, top = 0, rcap = 64;
    frame_t *stack = malloc((size_t) cap * sizeof *stack);
    model->rows = calloc((size_t) rcap, sizeof *model->rows);
    if (!stack || !model->rows)
        goto oom;
    stack[top++] = (frame_t) {root, 0};
    while (top > 0 && model->nrows < TRACE_MAX_NODES) {
        frame_t f = stack[--top];
        /* One row per incarnation: the earlier ones from "restarts". */
        const cJSON *hist = cJSON_GetObjectItemCaseSensitive(f.node, "restarts");
        int nhist = cJSON_IsArray(hist) ? cJSON_GetArraySize(hist) : 0;
        while (model->nrows + nhist + 1 > rcap) {
            trace_row_t *more = realloc(model->rows, (size_t) rcap * 2 * sizeof *more);
            if (!more)
                goto oom;
            memset(more + rcap, 0, (size_t) rcap * sizeof *more);
            model->rows = more;
            rcap *= 2;
        }
        const char *path = env_str(f.node, "path") ?: env_str(f.node, "name") ?: "?";
        for (int k = 0; k <= nhist; k++) {
            const cJSON *inc = k < nhist ? cJSON_GetArrayItem(hist, k) : f.node;
            if (!cJSON_IsObject(inc))
                continue;
            trace_row_t *row = &model->rows[model->nrows++];
            row->node = inc;
            row->depth = f.depth;
            row->order = model->nrows - 1;
            row->path = path;
            row->status = env_str(inc, "status") ?: "?";
            row->incarnation = k;
            row->incarnations = nhist + 1;
        }
        const cJSON *kids = cJSON_GetObjectItemCaseSensitive(f.node, "children");
        const cJSON *kid;
        cJSON_ArrayForEach(kid, (cJSON_IsArray(kids) ? kids : NULL))
        {
            if (!cJSON_IsObject(kid))
                continue;
            if (top == cap) {
                frame_t *more = realloc(stack, (size_t) cap * 2 * sizeof *more);
                if (!more)
                    goto oom;
                stack = more;
                cap *= 2;
            }
            stack[top++] = (frame_t) {kid, f.depth + 1};
        }
    }
    free(stack);
    stack = NULL;

    /* The end: duration_ms, or the last time any node reports. */
    for (int i = 0; i < model->nrows; i++) {
        const cJSON *p;
        const cJSON *phases = cJSON_GetObjectItemCaseSensitive(model->rows[i].node, "phases");
        cJSON_ArrayForEach(p, (cJSON_IsArray(phases) ? phases : NULL))
        {
            int64_t t;
            if (env_num(p, "t_ms", &t) && t > model->end_ms)
                model->end_ms = t;
        }
    }
    for (int i = 0; i < model->nrows; i++)
        if (s_fill_row(&model->rows[i], model->end_ms) != 0)
            goto oom;
    qsort(model->rows, (size_t) model->nrows, sizeof *model->rows, s_row_cmp);
    return 0;
oom:
    free(stack);
    trace_model_clear(model);
    return -1;
}

/* --- Trace Event Format ------------------------------------------------ */

static cJSON *s_event(cJSON *events, const char *name, const char *ph, int tid)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "ph", ph);
    cJSON_AddNumberToObject(e, "pid", TRACE_PID);
    cJSON_AddNumberToObject(e, "tid", tid);
    cJSON_AddItemToArray(events, e);
    return e;
}

static void s_metadata(cJSON *events, const char *name, int tid, const char *key,
                       cJSON *value)
{
    cJSON *e = s_event(events, name, "M", tid);
    cJSON_AddNumberToObject(e, "ts", 0);
    cJSON *args = cJSON_AddObjectToObject(e, "args");
    cJSON_AddItemToObject(args, key, value);
}

static void s_timed(cJSON *e, const char *cat, int64_t t_ms)
{
    cJSON_AddStringToObject(e, "cat", cat);
    cJSON_AddNumberToObject(e, "ts", (double) t_ms * 1000.0);
}

static void s_row_events(cJSON *events, const trace_row_t *row, int tid)
{
    for (int i = 0; i < row->nslices; i++) {
        const trace_slice_t *s = &row->slices[i];
        cJSON *e = s_event(events, s->phase, "X", tid);
        s_timed(e, "phase", s->t0_ms);
        cJSON_AddNumberToObject(e, "dur", (double) (s->t1_ms - s->t0_ms) * 1000.0);
        cJSON *args = cJSON_AddObjectToObject(e, "args");
        cJSON_AddStringToObject(args, "path", row->path);
        if (i == row->nslices - 1)
            cJSON_AddStringToObject(args, "status", row->status);
        if (i == row->stuck_slice)
            cJSON_AddBoolToObject(args, "stuck", true);
    }
    for (int i = 0; i < row->nmarks; i++) {
        const trace_mark_t *m = &row->marks[i];
        cJSON *e = s_event(events, m->name, "i", tid);
        s_timed(e, "signal", m->t_ms);
        cJSON_AddStringToObject(e, "s", "t");
        cJSON *args = cJSON_AddObjectToObject(e, "args");
        cJSON_AddStringToObject(args, "path", row->path);
        cJSON_AddStringToObject(args, "signal", m->signal);
        if (row->stuck_phase)
            cJSON_AddStringToObject(args, "stuck_phase", row->stuck_phase);
    }
    if (row->error) {
        const char *type = env_str(row->error, "type");
        cJSON *e = s_event(events, type ? type : "error", "i", tid);
        s_timed(e, "error", row->error_ms);
        cJSON_AddStringToObject(e, "s", "t");
        cJSON *args = cJSON_Duplicate(row->error, true);
        if (args) {
            cJSON_DeleteItemFromObjectCaseSensitive(args, "path");
            cJSON_AddStringToObject(args, "path", row->path);
            cJSON_AddItemToObject(e, "args", args);
        }
    }
}

cJSON *trace_from_report(const cJSON *report)
{
    trace_model_t m;
    if (trace_model_build(report, &m) != 0)
        return NULL;
    cJSON *doc = cJSON_CreateObject();
    cJSON *events = cJSON_AddArrayToObject(doc, "traceEvents");
    if (!events) {
        cJSON_Delete(doc);
        trace_model_clear(&m);
        return NULL;
    }
    size_t len = strlen(m.tree) + strlen(m.supervisor) + strlen(m.status) + 32;
    char *title = malloc(len);
    if (title) {
        snprintf(title, len, "tree %s on %s (%s)", m.tree, m.supervisor, m.status);
        s_metadata(events, "process_name", 0, "name", cJSON_CreateString(title));
        free(title);
    }
    s_metadata(events, "process_sort_index", 0, "sort_index", cJSON_CreateNumber(0));
    for (int i = 0; i < m.nrows; i++) {
        char name[1100];
        if (m.rows[i].incarnations > 1)
            snprintf(name, sizeof name, "%s #%d", m.rows[i].path, m.rows[i].incarnation);
        else
            snprintf(name, sizeof name, "%s", m.rows[i].path);
        s_metadata(events, "thread_name", i + 1, "name", cJSON_CreateString(name));
        s_metadata(events, "thread_sort_index", i + 1, "sort_index", cJSON_CreateNumber(i));
    }
    for (int i = 0; i < m.nrows; i++)
        s_row_events(events, &m.rows[i], i + 1);
    cJSON_AddStringToObject(doc, "displayTimeUnit", "ms");
    cJSON *other = cJSON_AddObjectToObject(doc, "otherData");
    cJSON_AddStringToObject(other, "tree", m.tree);
    cJSON_AddStringToObject(other, "supervisor", m.supervisor);
    cJSON_AddStringToObject(other, "status", m.status);
    cJSON_AddNumberToObject(other, "duration_ms", (double) m.end_ms);
    cJSON_AddNumberToObject(other, "nodes", m.nrows);
    trace_model_clear(&m);
    return doc;
}
