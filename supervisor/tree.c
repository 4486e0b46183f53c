#include "tree.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "link.h"
#include "sig.h"

static const char *s_phase_names[PH_COUNT] = {
    "spawned", "ready", "running", "cancel_requested", "cancelling_children",
    "children_exited", "cleanup", "exiting", "exited", "term_sent", "kill_sent"};

static const char *s_status_names[] = {"pending", "running", "ok", "failed",
                                       "cancelled", "killed", "spawn_failed", "lost"};

static const char *s_tree_status_names[] = {"running", "ok", "failed", "cancelled", "lost"};

const char *phase_name(phase_t p)
{
    return (p >= 0 && p < PH_COUNT) ? s_phase_names[p] : "none";
}

phase_t phase_parse(const char *name)
{
    for (int i = 0; name && i < PH_COUNT; i++)
        if (strcmp(name, s_phase_names[i]) == 0)
            return (phase_t) i;
    return PH_NONE;
}

const char *status_name(status_t s) { return s_status_names[s]; }

status_t status_parse(const char *name)
{
    for (int i = 0; name && i <= ST_LOST; i++)
        if (strcmp(name, s_status_names[i]) == 0)
            return (status_t) i;
    return ST_PENDING;
}
const char *tree_status_name(tree_status_t s) { return s_tree_status_names[s]; }

bool status_is_terminal(status_t s) { return s != ST_PENDING && s != ST_RUNNING; }

bool status_is_failure(status_t s)
{
    return s == ST_FAILED || s == ST_SPAWN_FAILED || s == ST_LOST;
}

static void s_inc_init(tree_inc_t *inc)
{
    memset(inc, 0, sizeof *inc);
    node_life_reset(&inc->life);
    inc->stuck_phase = inc->child_failed_phase = PH_NONE;
}

static void s_inc_free(tree_inc_t *inc)
{
    cJSON_Delete(inc->error);
    free(inc->phases);
    free(inc->tail);
    errline_free(&inc->errline);
    s_inc_init(inc);
}

tree_t *tree_new(const char *id, uint64_t serial, const char *supervisor, int nnodes)
{
    tree_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->nodes = calloc((size_t) nnodes, sizeof *self->nodes);
    if (!self->nodes) {
        free(self);
        return NULL;
    }
    snprintf(self->id, sizeof self->id, "%s", id);
    snprintf(self->supervisor, sizeof self->supervisor, "%s", supervisor);
    self->serial = serial;
    self->nnodes = nnodes;
    for (int i = 0; i < nnodes; i++) {
        tree_node_t *n = &self->nodes[i];
        n->idx = i;
        wfd_init(&n->fds);
        n->phase = PH_NONE;
        s_inc_init(&n->inc);
    }
    return self;
}

void tree_destroy(tree_t **self)
{
    if (!self || !*self)
        return;
    tree_t *t = *self;
    for (int i = 0; i < t->nnodes; i++) {
        tree_node_t *n = &t->nodes[i];
        free(n->path);
        free(n->children);
        cJSON_Delete(n->params);
        s_inc_free(&n->inc);
        strategy_window_clear(&n->window);
        cJSON_Delete(n->history);
        cJSON_Delete(n->subtree_spec);
        logbuf_destroy(&n->logs);
    }
    free(t->nodes);
    free(t);
    *self = NULL;
}

tree_node_t *tree_find_path(tree_t *self, const char *path)
{
    for (int i = 0; i < self->nnodes; i++)
        if (self->nodes[i].path && strcmp(self->nodes[i].path, path) == 0)
            return &self->nodes[i];
    return NULL;
}

void tree_node_phase(tree_node_t *node, phase_t phase, int64_t t_ms)
{
    tree_inc_t *inc = &node->inc;
    if (inc->nphases == inc->phases_cap) {
        int cap = inc->phases_cap ? inc->phases_cap * 2 : 12;
        phase_rec_t *grown = realloc(inc->phases, (size_t) cap * sizeof *grown);
        if (!grown)
            return; /* the phase is lost from the history, the status is not */
        inc->phases = grown;
        inc->phases_cap = cap;
    }
    /* Phases are dated where they happened (a worker's report can trail the
     * fork-server's exit status): keep the history in time order. But
     * "exited" is last: reports read before it were sent before it, even
     * undated ones (a shell's printf) that were dated when read. */
    if (phase == PH_EXITED && inc->nphases > 0 && inc->phases[inc->nphases - 1].t_ms > t_ms)
        t_ms = inc->phases[inc->nphases - 1].t_ms;
    int pos = inc->nphases++;
    /* Same millisecond: "exited" still comes last. */
    while (pos > 0 && (inc->phases[pos - 1].t_ms > t_ms ||
                       (inc->phases[pos - 1].t_ms == t_ms && phase != PH_EXITED &&
                        inc->phases[pos - 1].phase == PH_EXITED))) {
        inc->phases[pos] = inc->phases[pos - 1];
        pos--;
    }
    inc->phases[pos] = (phase_rec_t){phase, t_ms};
    node->phase = inc->phases[inc->nphases - 1].phase;
}

void tree_node_tail_append(tree_node_t *node, const char *data, size_t len)
{
    errline_feed(&node->inc.errline, data, len);
    node->inc.err_bytes += len;
    if (!node->inc.tail && !(node->inc.tail = malloc(TREE_TAIL_BYTES)))
        return;
    if (len > TREE_TAIL_BYTES) {
        data += len - TREE_TAIL_BYTES;
        len = TREE_TAIL_BYTES;
    }
    for (size_t i = 0; i < len; i++) {
        node->inc.tail[node->inc.tail_pos] = data[i];
        node->inc.tail_pos = (node->inc.tail_pos + 1) % TREE_TAIL_BYTES;
    }
    node->inc.tail_len = node->inc.tail_len + len > TREE_TAIL_BYTES ? TREE_TAIL_BYTES
                                                             : node->inc.tail_len + len;
}

char *tree_node_tail(const tree_node_t *node)
{
    char *out = malloc(node->inc.tail_len + 1);
    if (!out)
        return NULL;
    size_t start = (node->inc.tail_pos + TREE_TAIL_BYTES - node->inc.tail_len) % TREE_TAIL_BYTES;
    for (size_t i = 0; i < node->inc.tail_len; i++)
        out[i] = node->inc.tail[(start + i) % TREE_TAIL_BYTES];
    out[node->inc.tail_len] = 0;
    return out;
}

bool tree_node_error_from_stderr(tree_node_t *node, char *why, size_t size)
{
    if (size)
        why[0] = 0;
    if (node->inc.error)
        return false;
    cJSON *e = errline_error(&node->inc.errline, why, size);
    if (!e)
        return false;
    if (!cJSON_IsString(cJSON_GetObjectItem(e, "phase"))) {
        cJSON_DeleteItemFromObject(e, "phase");
        cJSON_AddStringToObject(e, "phase", "running");
    }
    node->inc.error = e;
    return true;
}

/* Did the node die of the SIGTERM that arbor sent, as the cancel of a
 * program that never spoke or as an escalation? 128+SIGTERM is how shells
 * report it. */
static bool s_died_of_our_sigterm(const node_life_t *l)
{
    bool by_sigterm = l->exit_signal == SIGTERM || (!l->exit_signal && l->exit_code == 128 + SIGTERM);
    return by_sigterm && (l->escalated || l->cancel_by_sigterm);
}

status_t tree_node_final_status(const tree_node_t *n)
{
    const node_life_t *l = &n->inc.life;
    if (l->end == END_SPAWN_FAILED)
        return ST_SPAWN_FAILED;
    if (l->end == END_LOST)
        return ST_LOST;
    /* A cancel never hides an error. */
    if (n->inc.error || n->inc.child_failed)
        return ST_FAILED;
    if (l->end != END_EXITED)
        return l->stop ? ST_CANCELLED : ST_LOST; /* never started */
    if (l->exit_signal == SIGKILL && l->escalated == SIGKILL)
        return ST_KILLED;
    if (s_died_of_our_sigterm(l))
        return l->escalated ? ST_KILLED : ST_CANCELLED;
    if (l->exit_signal || l->exit_code != 0)
        return ST_FAILED;
    if (l->escalated)
        return ST_KILLED;
    return l->stop ? ST_CANCELLED : ST_OK;
}

static cJSON *s_error(const char *type, const char *message, phase_t phase)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "phase", phase_name(phase));
    return e;
}

/* The phase the node was in before arbor's own observations were added. */
static phase_t s_last_worker_phase(const tree_node_t *n)
{
    for (int i = n->inc.nphases - 1; i >= 0; i--) {
        phase_t p = n->inc.phases[i].phase;
        if (p != PH_EXITED && p != PH_TERM_SENT && p != PH_KILL_SENT)
            return p;
    }
    return PH_NONE;
}

/* Failed children named in a ChildrenFailed message; "failed" has them all. */
#define S_NAMED_MAX 8

static cJSON *s_children_failed_error(const tree_node_t *n)
{
    int failed = 0;
    char names[S_NAMED_MAX * (TREE_NAME_MAX + 2) + 32] = "";
    size_t used = 0;
    cJSON *paths = cJSON_CreateArray();
    for (int i = 0; i < n->nchildren; i++) {
        const tree_node_t *c = n->children[i];
        if (!status_is_failure(c->status))
            continue;
        if (failed++ < S_NAMED_MAX)
            used += (size_t) snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                                      c->name);
        cJSON_AddItemToArray(paths, cJSON_CreateString(c->path));
    }
    if (failed > S_NAMED_MAX)
        snprintf(names + used, sizeof names - used, " and %d more", failed - S_NAMED_MAX);
    char msg[sizeof names + 128];
    if (n->restart_limit_hit && failed == 0) {
        /* permanent children that kept ending: no child failed, the
         * restart intensity did */
        cJSON_Delete(paths);
        snprintf(msg, sizeof msg, "more than %d restarts within %lld ms (children that keep ending)",
                 n->max_restarts, (long long) n->within_ms);
        return s_error("RestartLimit", msg,
                       n->inc.child_failed_phase != PH_NONE ? n->inc.child_failed_phase
                                                            : s_last_worker_phase(n));
    }
    if (n->restart_limit_hit)
        snprintf(msg, sizeof msg, "more than %d restarts within %lld ms; %d of %d children failed: %s",
                 n->max_restarts, (long long) n->within_ms, failed, n->nchildren, names);
    else
        snprintf(msg, sizeof msg, "%d of %d children failed: %s", failed, n->nchildren, names);
    cJSON *e = s_error("ChildrenFailed", msg,
                       n->inc.child_failed_phase != PH_NONE ? n->inc.child_failed_phase
                                                            : s_last_worker_phase(n));
    cJSON_AddNumberToObject(e, "failed_children", failed);
    cJSON_AddItemToObject(e, "failed", paths); /* every failed child, by path, in order */
    return e;
}

static cJSON *s_derived_error(const tree_node_t *n, status_t status)
{
    char msg[256];
    const node_life_t *l = &n->inc.life;
    phase_t at = s_last_worker_phase(n);
    if (status == ST_FAILED && n->inc.child_failed)
        return s_children_failed_error(n);
    if (status == ST_FAILED && l->exit_signal) {
        snprintf(msg, sizeof msg, "died by %s, which arbor did not send", sig_name(l->exit_signal));
        return s_error("KilledBySignal", msg, at);
    }
    if (status == ST_FAILED && l->end == END_EXITED) {
        snprintf(msg, sizeof msg, "exited with code %d", l->exit_code);
        return s_error("NonZeroExit", msg, at);
    }
    if (status == ST_KILLED) {
        snprintf(msg, sizeof msg,
                 "did not exit within grace_ms=%lld after cancel (stuck in %s); needed %s",
                 (long long) n->grace_ms, phase_name(n->inc.stuck_phase),
                 l->escalated == SIGKILL ? "SIGTERM and SIGKILL" : "SIGTERM");
        return s_error("ShutdownTimeout", msg, n->inc.stuck_phase);
    }
    return NULL;
}

/* Whether the node's last ARBOR-ERROR line holds an error (errline.h): a
 * line that does not (not JSON, no type, a \u0000) is never taken, and
 * stays in "stderr", where it can be read. */
static bool s_error_line_taken(const tree_inc_t *inc)
{
    char why[8];
    cJSON *e = errline_error(&inc->errline, why, sizeof why);
    cJSON_Delete(e);
    return e != NULL;
}

/* The ARBOR-ERROR line taken as the error is for the supervisor (the error
 * itself already says it): what people read in "stderr" is the rest, in
 * place. It is the last marked line; the tail may start inside it (a long
 * one), and then all of it that is left goes. */
static void s_drop_error_line(const tree_inc_t *inc, char *text)
{
    static const char mark[] = LINK_ERROR_MARK;
    const size_t mlen = sizeof mark - 1;
    if (!s_error_line_taken(inc))
        return;
    char *line = NULL;
    if (errline_covers(&inc->errline, inc->err_bytes - inc->tail_len)) {
        line = text;
    } else {
        for (char *at = text; *at;) { /* the last line that starts with the mark */
            if (strncmp(at, mark, mlen) == 0)
                line = at;
            char *nl = strchr(at, '\n');
            at = nl ? nl + 1 : at + strlen(at);
        }
    }
    if (!line)
        return;
    char *nl = strchr(line, '\n');
    char *rest = nl ? nl + 1 : line + strlen(line);
    memmove(line, rest, strlen(rest) + 1);
}

void tree_node_settle(tree_t *tree, tree_node_t *node, status_t status)
{
    if (status_is_terminal(node->status))
        return; /* exactly one terminal status, ever */
    node->status = status;
    if (!node->inc.error)
        node->inc.error = s_derived_error(node, status);
    else if (node->inc.child_failed && status == ST_FAILED)
        cJSON_AddItemToObject(node->inc.error, "children", s_children_failed_error(node));
    if (node->inc.error && node->inc.tail_len && !cJSON_HasObjectItem(node->inc.error, "stderr")) {
        char *tail = tree_node_tail(node);
        if (tail)
            s_drop_error_line(&node->inc, tail);
        if (tail && *tail)
            cJSON_AddStringToObject(node->inc.error, "stderr", tail);
        free(tail);
    }
    tree->nterminal++;
}

bool tree_children_settled(const tree_node_t *node)
{
    for (int i = 0; i < node->nchildren; i++)
        if (!status_is_terminal(node->children[i]->status))
            return false;
    return true;
}

bool tree_subtree_settled(const tree_node_t *node)
{
    if (!status_is_terminal(node->status))
        return false;
    for (int i = 0; i < node->nchildren; i++)
        if (!tree_subtree_settled(node->children[i]))
            return false;
    return true;
}

static cJSON *s_exit_json(const tree_node_t *n);

int tree_node_depth(const tree_node_t *node)
{
    int d = 1;
    for (const tree_node_t *p = node->parent; p; p = p->parent)
        d++;
    return d;
}

bool tree_node_below(const tree_node_t *node, const tree_node_t *ancestor)
{
    for (const tree_node_t *p = node->parent; p; p = p->parent)
        if (p == ancestor)
            return true;
    return false;
}

int tree_adopt(tree_t *tree, int parent_idx, tree_t **wp)
{
    tree_t *w = *wp;
    int add = w->nnodes - 1, base = tree->nnodes;
    tree_node_t *wroot = &w->nodes[0];
    if (add <= 0)
        return -1;
    /* Links become indices while the array moves, then pointers again. */
    tree_node_t *old = tree->nodes;
    for (int i = 0; i < base; i++) {
        tree_node_t *n = &old[i];
        n->parent = n->parent ? (tree_node_t *) (uintptr_t) (n->parent - old + 1) : NULL;
        for (int c = 0; c < n->nchildren; c++)
            n->children[c] = (tree_node_t *) (uintptr_t) (n->children[c] - old + 1);
    }
    tree_node_t *grown = realloc(old, (size_t) (base + add) * sizeof *grown);
    tree_node_t *now = grown ? grown : old; /* on failure the old array stays */
    for (int i = 0; i < base; i++) {
        tree_node_t *n = &now[i];
        if (n->parent)
            n->parent = now + ((uintptr_t) n->parent - 1);
        for (int c = 0; c < n->nchildren; c++)
            n->children[c] = now + ((uintptr_t) n->children[c] - 1);
    }
    if (!grown)
        return -1;
    tree->nodes = grown;
    tree_node_t *p = &grown[parent_idx];
    tree_node_t **kids = realloc(p->children, (size_t) (p->nchildren + wroot->nchildren) * sizeof *kids);
    if (!kids)
        return -1; /* the array grew, harmlessly: nothing else changed */
    p->children = kids;
    /* w's node j (j >= 1) becomes tree's node base + j - 1; w's root is p. */
#define S_MAP(x) ((x) == wroot ? p : grown + base + ((x) - w->nodes) - 1)
    for (int j = 1; j < w->nnodes; j++) {
        tree_node_t *n = &grown[base + j - 1];
        *n = w->nodes[j];
        n->idx = base + j - 1;
        n->parent = S_MAP(w->nodes[j].parent);
        for (int c = 0; c < n->nchildren; c++)
            n->children[c] = S_MAP(w->nodes[j].children[c]);
        /* "ROOTNAME/rest" -> "PARENT_PATH/rest" */
        const char *rest = n->path + strlen(wroot->name);
        size_t len = strlen(p->path) + strlen(rest) + 1;
        char *path = malloc(len);
        if (path) {
            snprintf(path, len, "%s%s", p->path, rest);
            free(n->path);
            n->path = path;
        }
    }
    for (int c = 0; c < wroot->nchildren; c++)
        p->children[p->nchildren++] = S_MAP(wroot->children[c]);
#undef S_MAP
    tree->nnodes = base + add;
    /* The moved nodes' members are tree's now: free only w's shell. */
    free(wroot->path);
    free(wroot->children);
    cJSON_Delete(wroot->params);
    cJSON_Delete(wroot->subtree_spec);
    free(w->nodes);
    free(w);
    *wp = NULL;
    return base;
}

static cJSON *s_phases_json(const tree_inc_t *inc);

void tree_node_next_incarnation(tree_t *tree, tree_node_t *n, int64_t t_ms)
{
    if (!n->history)
        n->history = cJSON_CreateArray();
    /* Everything about the last process goes into its history entry: its
     * own phases, exit, error and stderr, none of it shared with the next. */
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "incarnation", n->incarnation);
    cJSON_AddNumberToObject(h, "t_ms", (double) t_ms);
    if (n->inc.pid > 0)
        cJSON_AddNumberToObject(h, "pid", n->inc.pid);
    else
        cJSON_AddNullToObject(h, "pid");
    cJSON_AddStringToObject(h, "status", status_name(n->status));
    cJSON_AddItemToObject(h, "exit", s_exit_json(n));
    cJSON_AddItemToObject(h, "error", n->inc.error ? n->inc.error : cJSON_CreateNull());
    n->inc.error = NULL; /* moved into h */
    cJSON_AddItemToObject(h, "phases", s_phases_json(&n->inc));
    if (n->inc.tail_len) {
        char *tail = tree_node_tail(n);
        if (tail)
            cJSON_AddStringToObject(h, "stderr", tail);
        free(tail);
    }
    cJSON_AddItemToArray(n->history, h);
    if (status_is_terminal(n->status))
        tree->nterminal--;
    s_inc_free(&n->inc);
    n->phase = PH_NONE;
    n->status = ST_PENDING;
    n->restart_wanted = false;
    n->deadline_gen++; /* its pending deadlines are void */
    n->incarnation++;
    strategy_window_clear(&n->window); /* a restarted parent starts with a fresh intensity */
    n->restart_limit_hit = false;
}

void tree_subtree_reset(tree_t *tree, tree_node_t *n, int64_t t_ms)
{
    for (int i = 0; i < n->nchildren; i++)
        tree_subtree_reset(tree, n->children[i], t_ms);
    tree_node_next_incarnation(tree, n, t_ms);
}

/* One node's outcome from a report node of the other supervisor. */
static status_t s_graft_one(tree_node_t *n, const cJSON *r, int64_t shift)
{
    node_life_t *l = &n->inc.life;
    const cJSON *pid = cJSON_GetObjectItem(r, "pid");
    n->inc.pid = cJSON_IsNumber(pid) ? (pid_t) pid->valuedouble : 0;
    const cJSON *ex = cJSON_GetObjectItem(r, "exit");
    const cJSON *code = cJSON_GetObjectItem(ex, "code");
    const char *sig = cJSON_GetStringValue(cJSON_GetObjectItem(ex, "signal"));
    if (cJSON_IsNumber(code) || sig)
        l->end = END_EXITED;
    l->exit_code = cJSON_IsNumber(code) ? (int) code->valuedouble : 0;
    l->exit_signal = sig ? sig_parse(sig) : 0;
    const cJSON *err = cJSON_GetObjectItem(r, "error");
    cJSON_Delete(n->inc.error);
    n->inc.error = cJSON_IsObject(err) ? cJSON_Duplicate(err, 1) : NULL;
    const cJSON *esc = cJSON_GetObjectItem(r, "escalation");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(esc, "signals"))
    {
        if (cJSON_IsString(s) && strcmp(s->valuestring, "SIGTERM") == 0 && !l->escalated)
            l->escalated = SIGTERM;
        if (cJSON_IsString(s) && strcmp(s->valuestring, "SIGKILL") == 0)
            l->escalated = SIGKILL;
    }
    n->inc.stuck_phase = phase_parse(cJSON_GetStringValue(cJSON_GetObjectItem(esc, "stuck_phase")));
    const cJSON *escaped = cJSON_GetObjectItem(r, "escaped");
    n->inc.escaped = cJSON_IsNumber(escaped) ? (int) escaped->valuedouble : 0;
    n->inc.nphases = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(r, "phases"))
    {
        phase_t ph = phase_parse(cJSON_GetStringValue(cJSON_GetObjectItem(p, "phase")));
        const cJSON *t = cJSON_GetObjectItem(p, "t_ms");
        if (ph != PH_NONE && cJSON_IsNumber(t))
            tree_node_phase(n, ph, (int64_t) t->valuedouble + shift);
    }
    const cJSON *restarts = cJSON_GetObjectItem(r, "restarts");
    if (cJSON_GetArraySize(restarts) > 0) {
        cJSON_Delete(n->history);
        n->history = cJSON_Duplicate(restarts, 1);
    }
    status_t st = status_parse(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status")));
    return status_is_terminal(st) ? st : ST_LOST;
}

/* A report node's name, when it can name a node here (NULL if not). */
static const char *s_report_name(const cJSON *r)
{
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(r, "name"));
    return name && env_name_valid(name, TREE_NAME_MAX) ? name : NULL;
}

static const cJSON *s_report_child(const cJSON *r, const char *name)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItem(r, "children"))
    {
        const char *kname = s_report_name(k);
        if (kname && strcmp(kname, name) == 0)
            return k;
    }
    return NULL;
}

static bool s_has_child(const tree_node_t *n, const char *name)
{
    for (int i = 0; i < n->nchildren; i++)
        if (strcmp(n->children[i]->name, name) == 0)
            return true;
    return false;
}

/* Report nodes in r's subtree (r included) that can be nodes here. */
static int s_report_size(const cJSON *r)
{
    int size = 1;
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItem(r, "children")) if (s_report_name(k)) size +=
        s_report_size(k);
    return size;
}

/* The report children of r that node n does not know, as a tree whose root
 * stands for n (for tree_adopt): breadth-first, like spec_build. NULL when
 * there are none, or out of memory. */
static tree_t *s_unknown_part(const tree_t *tree, const tree_node_t *n, const cJSON *r)
{
    int total = 1;
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItem(r, "children"))
    {
        const char *name = s_report_name(k);
        if (name && !s_has_child(n, name))
            total += s_report_size(k);
    }
    if (total == 1)
        return NULL;
    tree_t *w = tree_new(tree->id, tree->serial, tree->supervisor, total);
    const cJSON **src = calloc((size_t) total, sizeof *src);
    if (!w || !src) {
        free(src);
        tree_destroy(&w);
        return NULL;
    }
    snprintf(w->nodes[0].name, sizeof w->nodes[0].name, "%s", n->name);
    w->nodes[0].path = strdup(n->name);
    src[0] = r;
    int next = 1;
    for (int i = 0; i < next; i++) {
        tree_node_t *x = &w->nodes[i];
        const cJSON *kids = cJSON_GetObjectItem(src[i], "children");
        x->children = calloc((size_t) cJSON_GetArraySize(kids) + 1, sizeof *x->children);
        cJSON_ArrayForEach(k, kids)
        {
            const char *name = s_report_name(k);
            if (!name || (i == 0 && s_has_child(n, name)) || !x->children)
                continue;
            tree_node_t *c = &w->nodes[next];
            src[next++] = k;
            snprintf(c->name, sizeof c->name, "%s", name);
            size_t len = strlen(x->path ? x->path : "") + strlen(name) + 2;
            if ((c->path = malloc(len)))
                snprintf(c->path, len, "%s/%s", x->path ? x->path : "", name);
            c->parent = x;
            c->remote_part = c->grafted = true;
            int restart = restart_parse(cJSON_GetStringValue(cJSON_GetObjectItem(k, "restart")));
            c->restart = restart < 0 ? RESTART_TRANSIENT : (restart_t) restart;
            x->children[x->nchildren++] = c;
        }
    }
    free(src);
    /* A node skipped for want of memory leaves the count short: give up. */
    bool whole = next == total;
    for (int i = 0; whole && i < total; i++)
        whole = w->nodes[i].path != NULL;
    if (!whole)
        tree_destroy(&w);
    return w;
}

/* Settle n's children from report node r, deepest first. Children that
 * ran there but are unknown here (a placed worker's dynamic children) are
 * adopted first. The node array may grow: nodes are held by index. */
static void s_graft_below(tree_t *tree, int idx, const cJSON *r, int64_t shift)
{
    tree_t *w = s_unknown_part(tree, &tree->nodes[idx], r);
    if (w && tree_adopt(tree, idx, &w) < 0)
        tree_destroy(&w); /* out of memory: the report lacks them, nothing else */
    for (int i = 0; i < tree->nodes[idx].nchildren; i++) {
        int ci = tree->nodes[idx].children[i]->idx;
        const cJSON *match = s_report_child(r, tree->nodes[ci].name);
        if (match)
            s_graft_below(tree, ci, match, shift);
        tree_node_t *c = &tree->nodes[ci];
        c->inc.life.state = NODE_DONE;
        if (match) {
            tree_node_settle(tree, c, s_graft_one(c, match, shift));
        } else if (c->grafted) {
            /* seen in an earlier incarnation's report only: not started in this one */
            tree_settle_remote_part(tree, c, ST_CANCELLED, NULL);
            tree_node_settle(tree, c, ST_CANCELLED);
        } else {
            tree_settle_remote_part(tree, c, ST_LOST, NULL);
            c->inc.life.end = END_LOST;
            tree_node_settle(tree, c, ST_LOST);
        }
    }
}

status_t tree_graft(tree_t *tree, int top, const cJSON *remote_root)
{
    int64_t shift = tree->nodes[top].remote_t0_ms;
    s_graft_below(tree, top, remote_root, shift);
    return s_graft_one(&tree->nodes[top], remote_root, shift);
}

void tree_settle_remote_part(tree_t *tree, tree_node_t *top, status_t status, const cJSON *error)
{
    for (int i = 0; i < top->nchildren; i++) {
        tree_node_t *c = top->children[i];
        tree_settle_remote_part(tree, c, status, error);
        if (status_is_terminal(c->status))
            continue;
        c->inc.life.state = NODE_DONE;
        if (status == ST_LOST)
            c->inc.life.end = END_LOST;
        if (error && !c->inc.error)
            c->inc.error = cJSON_Duplicate(error, 1);
        tree_node_settle(tree, c, status);
    }
}

tree_status_t tree_status_of(const tree_t *self)
{
    if (self->nterminal < self->nnodes)
        return TREE_RUNNING;
    switch (self->nodes[0].status) {
    case ST_OK: return TREE_OK;
    case ST_CANCELLED:
    case ST_KILLED: return TREE_CANCELLED;
    case ST_LOST: return TREE_LOST;
    default: return TREE_FAILED;
    }
}

static cJSON *s_exit_json(const tree_node_t *n)
{
    const node_life_t *l = &n->inc.life;
    bool exited = l->end == END_EXITED;
    cJSON *ex = cJSON_CreateObject();
    if (exited && !l->exit_signal)
        cJSON_AddNumberToObject(ex, "code", l->exit_code);
    else
        cJSON_AddNullToObject(ex, "code");
    if (exited && l->exit_signal)
        cJSON_AddStringToObject(ex, "signal", sig_name(l->exit_signal));
    else
        cJSON_AddNullToObject(ex, "signal");
    return ex;
}

static cJSON *s_phases_json(const tree_inc_t *inc)
{
    cJSON *phases = cJSON_CreateArray();
    for (int i = 0; i < inc->nphases; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "phase", phase_name(inc->phases[i].phase));
        cJSON_AddNumberToObject(p, "t_ms", (double) inc->phases[i].t_ms);
        cJSON_AddItemToArray(phases, p);
    }
    return phases;
}

