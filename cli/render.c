#include "env.h"
#include "render.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbuf.h"

#define C_RESET "\033[0m"
#define FIELD_MAX 300 /* longest error message / name shown on a node line */

/* Statuses in summary order; others are counted as "other". */
static const char *s_statuses[] = {"ok",     "running", "pending", "failed", "killed",
                                   "cancelled", "spawn_failed", "lost", NULL};
#define N_STATUSES 8

typedef struct {
    sbuf_t out;
    bool colour;
    char prefix[RENDER_MAX_DEPTH * 6 + 8]; /* "│   " is 6 bytes */
    size_t prefix_len;
    int64_t counts[N_STATUSES + 1];       /* last: other */
    int64_t nodes;
    int64_t hidden;                       /* nodes below RENDER_MAX_DEPTH */
} ctx_t;

bool render_colour_wanted(int fd)
{
    const char *no = getenv("NO_COLOR");
    return isatty(fd) && !(no && *no);
}

const char *render_status_colour(const char *status)
{
    if (!status)
        return "";
    if (!strcmp(status, "failed") || !strcmp(status, "spawn_failed") || !strcmp(status, "lost"))
        return "\033[31m";
    if (!strcmp(status, "killed"))
        return "\033[35m";
    if (!strcmp(status, "cancelled"))
        return "\033[33m";
    if (!strcmp(status, "ok"))
        return "\033[32m";
    return "";
}

static void s_status(ctx_t *c, const char *status)
{
    const char *col = c->colour ? render_status_colour(status) : "";
    sbuf_add(&c->out, col, strlen(col));
    sbuf_add_clean(&c->out, status ? status : "?", 40);
    if (*col)
        sbuf_add(&c->out, C_RESET, strlen(C_RESET));
}

static void s_duration(sbuf_t *out, int64_t ms)
{
    if (ms < 1000)
        sbuf_printf(out, "%" PRId64 " ms", ms);
    else
        sbuf_printf(out, "%.2f s", (double) ms / 1000.0);
}

static void s_count(ctx_t *c, const char *status)
{
    int i = 0;
    while (s_statuses[i] && !(status && !strcmp(status, s_statuses[i])))
        i++;
    c->counts[i]++;
    c->nodes++;
}

/* "SIGTERM, SIGKILL" from an array of strings. */
static void s_signal_list(sbuf_t *out, const cJSON *signals)
{
    bool first = true;
    const cJSON *s;
    cJSON_ArrayForEach(s, signals)
    {
        if (!cJSON_IsString(s))
            continue;
        sbuf_printf(out, "%s", first ? "" : ", ");
        sbuf_add_clean(out, s->valuestring, 20);
        first = false;
    }
    if (first)
        sbuf_printf(out, "no signal");
}

/* A line under the node, lined up with its children's branches. */
static void s_detail_start(ctx_t *c, bool last, bool has_children, bool is_root)
{
    sbuf_add(&c->out, c->prefix, c->prefix_len);
    if (!is_root)
        sbuf_printf(&c->out, "%s", last ? "    " : "│   ");
    sbuf_printf(&c->out, "%s", has_children ? "│   " : "    ");
}

static void s_stderr_tail(ctx_t *c, const char *text, bool last, bool has_children, bool is_root)
{
    /* Find the start of the last RENDER_STDERR_LINES non-empty lines. */
    const char *starts[RENDER_STDERR_LINES];
    size_t lens[RENDER_STDERR_LINES];
    int n = 0;
    const char *end = text + strlen(text);
    while (end > text && n < RENDER_STDERR_LINES) {
        const char *line_end = end;
        while (line_end > text && (line_end[-1] == '\n' || line_end[-1] == '\r'))
            line_end--;
        const char *line = line_end;
        while (line > text && line[-1] != '\n')
            line--;
        if (line_end > line) {
            starts[n] = line;
            lens[n] = (size_t) (line_end - line);
            n++;
        }
        end = line;
    }
    for (int i = n - 1; i >= 0; i--) {
        s_detail_start(c, last, has_children, is_root);
        sbuf_printf(&c->out, "stderr| ");
        char piece[FIELD_MAX + 1];
        size_t len = lens[i] < FIELD_MAX ? lens[i] : FIELD_MAX;
        memcpy(piece, starts[i], len);
        piece[len] = 0;
        sbuf_add_clean(&c->out, piece, 0);
        if (lens[i] > FIELD_MAX)
            sbuf_printf(&c->out, "...");
        sbuf_printf(&c->out, "\n");
    }
}

static void s_node_fields(ctx_t *c, const cJSON *node)
{
    const char *name = env_str(node, "name");
    sbuf_add_clean(&c->out, name ? name : "?", FIELD_MAX);
    sbuf_printf(&c->out, "  ");
    s_status(c, env_str(node, "status"));
    /* A placed node ("on") ran on another supervisor: its pid, and those
     * of its subtree, are that supervisor's host's, not this one's. */
    const char *sup = env_str(node, "supervisor");
    if (sup) {
        sbuf_printf(&c->out, "  on ");
        sbuf_add_clean(&c->out, sup, 140);
    }
    int64_t pid;
    if (env_num(node, "pid", &pid))
        sbuf_printf(&c->out, "  pid %" PRId64, pid);
    const char *phase = env_str(node, "phase");
    if (phase) {
        sbuf_printf(&c->out, "  ");
        sbuf_add_clean(&c->out, phase, 40);
    }
    const cJSON *exit = cJSON_GetObjectItemCaseSensitive(node, "exit");
    const char *sig = env_str(exit, "signal");
    int64_t code;
    if (sig) {
        sbuf_printf(&c->out, "  ");
        sbuf_add_clean(&c->out, sig, 20);
    } else if (env_num(exit, "code", &code)) {
        sbuf_printf(&c->out, "  exit %" PRId64, code);
    }
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(node, "error");
    if (cJSON_IsObject(error)) {
        const char *type = env_str(error, "type");
        const char *message = env_str(error, "message");
        const char *in = env_str(error, "phase");
        sbuf_printf(&c->out, "  ");
        sbuf_add_clean(&c->out, type ? type : "Error", 80);
        if (message) {
            sbuf_printf(&c->out, ": ");
            sbuf_add_clean(&c->out, message, FIELD_MAX);
        }
        if (in) {
            sbuf_printf(&c->out, " (in phase ");
            sbuf_add_clean(&c->out, in, 40);
            sbuf_printf(&c->out, ")");
        }
    }
    sbuf_printf(&c->out, "\n");
}

static void s_hidden(ctx_t *c, const cJSON *node)
{
    s_count(c, env_str(node, "status"));
    c->hidden++;
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "children");
    const cJSON *kid;
    cJSON_ArrayForEach(kid, (cJSON_IsArray(kids) ? kids : NULL))
        s_hidden(c, kid);
}

static void s_node(ctx_t *c, const cJSON *node, int depth, bool last)
{
    bool is_root = depth == 0;
    if (!cJSON_IsObject(node)) {
        sbuf_add(&c->out, c->prefix, c->prefix_len);
        sbuf_printf(&c->out, "%s(not a node)\n", is_root ? "" : last ? "└── " : "├── ");
        return;
    }
    s_count(c, env_str(node, "status"));
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "children");
    if (!cJSON_IsArray(kids))
        kids = NULL;
    bool has_children = cJSON_GetArraySize(kids) > 0;

    sbuf_add(&c->out, c->prefix, c->prefix_len);
    if (!is_root)
        sbuf_printf(&c->out, "%s", last ? "└── " : "├── ");
    s_node_fields(c, node);

    const cJSON *esc = cJSON_GetObjectItemCaseSensitive(node, "escalation");
    if (cJSON_IsObject(esc)) {
        const char *stuck = env_str(esc, "stuck_phase");
        s_detail_start(c, last, has_children, is_root);
        if (stuck) {
            sbuf_printf(&c->out, "stuck in ");
            sbuf_add_clean(&c->out, stuck, 40);
        } else {
            sbuf_printf(&c->out, "did not exit in time");
        }
        sbuf_printf(&c->out, "; sent ");
        s_signal_list(&c->out, cJSON_GetObjectItemCaseSensitive(esc, "signals"));
        sbuf_printf(&c->out, "\n");
    }
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(node, "error");
    const char *err_text = env_str(error, "stderr");
    if (err_text)
        s_stderr_tail(c, err_text, last, has_children, is_root);

    if (!has_children)
        return;
    size_t saved = c->prefix_len;
    if (!is_root) {
        const char *add = last ? "    " : "│   ";
        memcpy(c->prefix + c->prefix_len, add, strlen(add) + 1);
        c->prefix_len += strlen(add);
    }
    if (depth + 1 >= RENDER_MAX_DEPTH) {
        int64_t before = c->hidden;
        const cJSON *kid;
        cJSON_ArrayForEach(kid, kids)
            s_hidden(c, kid);
        sbuf_add(&c->out, c->prefix, c->prefix_len);
        sbuf_printf(&c->out, "└── (%" PRId64 " deeper nodes not shown)\n", c->hidden - before);
    } else {
        const cJSON *kid;
        cJSON_ArrayForEach(kid, kids)
            s_node(c, kid, depth + 1, kid->next == NULL);
    }
    c->prefix_len = saved;
    c->prefix[saved] = 0;
}

char *render_report(const cJSON *report, bool colour)
{
    ctx_t c = {.colour = colour};
    if (!cJSON_IsObject(report)) {
        sbuf_printf(&c.out, "(no report: not a JSON object)\n");
        return sbuf_take(&c.out);
    }
    const char *tree = env_str(report, "tree");
    const char *sup = env_str(report, "supervisor");
    sbuf_printf(&c.out, "tree ");
    sbuf_add_clean(&c.out, tree ? tree : "?", 80);
    sbuf_printf(&c.out, "  ");
    s_status(&c, env_str(report, "status"));
    int64_t ms;
    if (env_num(report, "duration_ms", &ms)) {
        sbuf_printf(&c.out, "  in ");
        s_duration(&c.out, ms);
    }
    sbuf_printf(&c.out, "  on ");
    sbuf_add_clean(&c.out, sup ? sup : "?", 140);
    sbuf_printf(&c.out, "\n");

    const cJSON *root = cJSON_GetObjectItemCaseSensitive(report, "root");
    if (root)
        s_node(&c, root, 0, true);
    else
        sbuf_printf(&c.out, "(no nodes)\n");

    sbuf_printf(&c.out, "%" PRId64 " node%s", c.nodes, c.nodes == 1 ? "" : "s");
    const char *sep = ": ";
    for (int i = 0; i <= N_STATUSES; i++) {
        if (!c.counts[i])
            continue;
        sbuf_printf(&c.out, "%s%" PRId64 " ", sep, c.counts[i]);
        if (s_statuses[i])
            s_status(&c, s_statuses[i]);
        else
            sbuf_printf(&c.out, "other");
        sep = ", ";
    }
    sbuf_printf(&c.out, "\n");
    return sbuf_take(&c.out);
}

char *render_event(const cJSON *event, const char *clock, bool colour)
{
    ctx_t c = {.colour = colour};
    const char *tree = env_str(event, "tree");
    const char *kind = env_str(event, "kind");
    const char *path = env_str(event, "path");
    sbuf_printf(&c.out, "%s  ", clock ? clock : "");
    sbuf_add_clean(&c.out, tree ? tree : "?", 80);
    sbuf_printf(&c.out, "  ");
    sbuf_add_clean(&c.out, path && *path ? path : "-", FIELD_MAX);
    int64_t inc;
    if (env_num(event, "incarnation", &inc) && inc > 0) /* a restarted node's K-th process */
        sbuf_printf(&c.out, " #%" PRId64, inc);
    sbuf_printf(&c.out, "  ");
    if (kind && !strcmp(kind, "phase")) {
        const char *phase = env_str(event, "phase");
        sbuf_printf(&c.out, "phase ");
        sbuf_add_clean(&c.out, phase ? phase : "?", 40);
        int64_t t;
        if (env_num(event, "t_ms", &t))
            sbuf_printf(&c.out, "  +%" PRId64 " ms", t);
    } else if (kind && (!strcmp(kind, "status") || !strcmp(kind, "done") ||
                        !strcmp(kind, "tree"))) {
        sbuf_printf(&c.out, "%s ", strcmp(kind, "status") ? "tree" : "status");
        s_status(&c, env_str(event, "status"));
    } else {
        sbuf_add_clean(&c.out, kind ? kind : "event", 40);
    }
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(event, "error");
    if (cJSON_IsObject(error)) {
        const char *type = env_str(error, "type");
        const char *message = env_str(error, "message");
        sbuf_printf(&c.out, "  ");
        sbuf_add_clean(&c.out, type ? type : "Error", 80);
        if (message) {
            sbuf_printf(&c.out, ": ");
            sbuf_add_clean(&c.out, message, FIELD_MAX);
        }
    }
    sbuf_printf(&c.out, "\n");
    return sbuf_take(&c.out);
}

char *render_peers(const cJSON *peers_body)
{
    sbuf_t out = {0};
    const cJSON *peers = cJSON_GetObjectItemCaseSensitive(peers_body, "peers");
    sbuf_printf(&out, "%-40s %-10s %8s\n", "NAME", "ROLE", "IDLE_MS");
    const cJSON *p;
    cJSON_ArrayForEach(p, (cJSON_IsArray(peers) ? peers : NULL))
    {
        const char *name = env_str(p, "name");
        const char *role = env_str(p, "role");
        int64_t idle = -1;
        env_num(p, "idle_ms", &idle);
        sbuf_t cell = {0};
        sbuf_add_clean(&cell, name ? name : "?", 128);
        sbuf_printf(&out, "%-40s ", cell.data ? cell.data : "");
        sbuf_reset(&cell);
        sbuf_add_clean(&cell, role ? role : "?", 20);
        sbuf_printf(&out, "%-10s ", cell.data ? cell.data : "");
        sbuf_reset(&cell);
        if (idle >= 0)
            sbuf_printf(&out, "%8" PRId64 "\n", idle);
        else
            sbuf_printf(&out, "%8s\n", "?");
    }
    return sbuf_take(&out);
}

/* Columns as wide as they are on screen: one per code point. UTF-8
 * continuation bytes take no column (the "└" of a placed subtree is three
 * bytes, one column); every string here is a name, an id or a status, none
 * of them double-width. */
static size_t s_width(const char *text)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        w += (*p & 0xC0) != 0x80;
    return w;
}

enum { T_SUP, T_TREE, T_STATUS, T_ROOT, T_COLS };

/* The text of one cell of a trees row, cleaned (workers name nothing here,
 * but a supervisor's answer is still not trusted to drive the terminal). */
static void s_tree_cell(sbuf_t *cell, const cJSON *r, int col)
{
    const char *text = NULL;
    const cJSON *root;
    switch (col) {
    case T_SUP: text = env_str(r, "supervisor"); break;
    case T_TREE:
        if (env_str(r, "placed_in")) /* a placed subtree, under its tree */
            sbuf_printf(cell, "\u2514 ");
        text = env_str(r, "tree");
        break;
    case T_STATUS: text = env_str(r, "status"); break;
    default:
        root = cJSON_GetObjectItemCaseSensitive(r, "root");
        text = cJSON_IsString(root) ? root->valuestring : env_str(root, "name");
    }
    sbuf_add_clean(cell, text ? text : "?", col == T_STATUS ? 40 : 128);
}

/* text, then spaces up to width columns and one more between columns. */
static void s_padded(ctx_t *c, const char *text, size_t width, const char *colour)
{
    size_t shown = s_width(text);
    sbuf_printf(&c->out, "%s%s%s%*s ", colour, text, *colour ? C_RESET : "",
                (int) (shown < width ? width - shown : 0), "");
}

char *render_trees(const cJSON *rows, bool colour)
{
    ctx_t c = {.colour = colour};
    static const char *heads[T_COLS] = {"SUPERVISOR", "TREE", "STATUS", "ROOT"};
    size_t widths[T_COLS];
    for (int i = 0; i < T_COLS; i++)
        widths[i] = strlen(heads[i]);
    if (!cJSON_IsArray(rows))
        rows = NULL;
    sbuf_t cell = {0};
    const cJSON *r;
    /* Sized from the rows: ids are SUPERVISOR.RANDOM, placed ones longer. */
    cJSON_ArrayForEach(r, rows)
    {
        for (int i = 0; i < T_ROOT; i++) {
            s_tree_cell(&cell, r, i);
            size_t w = s_width(cell.data ? cell.data : "");
            widths[i] = w > widths[i] ? w : widths[i];
            sbuf_reset(&cell);
        }
    }
    for (int i = 0; i < T_ROOT; i++)
        s_padded(&c, heads[i], widths[i], "");
    sbuf_printf(&c.out, "%s\n", heads[T_ROOT]);
    cJSON_ArrayForEach(r, rows)
    {
        for (int i = 0; i < T_ROOT; i++) {
            s_tree_cell(&cell, r, i);
            const char *col = i == T_STATUS && colour ? render_status_colour(cell.data) : "";
            s_padded(&c, cell.data ? cell.data : "", widths[i], col);
            sbuf_reset(&cell);
        }
        s_tree_cell(&cell, r, T_ROOT);
        sbuf_printf(&c.out, "%s\n", cell.data ? cell.data : "");
        sbuf_reset(&cell);
    }
    return sbuf_take(&c.out);
}
