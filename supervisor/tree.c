#include "tree.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        n->pidfd = n->out_fd = n->err_fd = n->link_fd = -1;
        n->phase = PH_NONE;
        n->stuck_phase = PH_NONE;
        n->child_failed_phase = PH_NONE;
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
        cJSON_Delete(n->error);
        free(n->phases);
        free(n->tail);
        free(n->restart_at);
        cJSON_Delete(n->history);
        cJSON_Delete(n->subtree_spec);
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
    if (node->nphases == node->phases_cap) {
        int cap = node->phases_cap ? node->phases_cap * 2 : 12;
        phase_rec_t *grown = realloc(node->phases, (size_t) cap * sizeof *grown);
        if (!grown)
            return; /* the phase is lost from the history, the status is not */
        node->phases = grown;
        node->phases_cap = cap;
    }
    /* Phases are dated where they happened (a worker's report can trail the
     * fork-server's exit status): keep the history in time order. But
     * "exited" is last: reports read before it were sent before it, even
     * undated ones (a shell's printf) that were dated when read. */
    if (phase == PH_EXITED && node->nphases > 0 && node->phases[node->nphases - 1].t_ms > t_ms)
        t_ms = node->phases[node->nphases - 1].t_ms;
    int pos = node->nphases++;
    /* Same millisecond: "exited" still comes last. */
    while (pos > 0 && (node->phases[pos - 1].t_ms > t_ms ||
                       (node->phases[pos - 1].t_ms == t_ms && phase != PH_EXITED &&
                        node->phases[pos - 1].phase == PH_EXITED))) {
        node->phases[pos] = node->phases[pos - 1];
        pos--;
    }
    node->phases[pos] = (phase_rec_t){phase, t_ms};
    node->phase = node->phases[node->nphases - 1].phase;
}

void tree_node_tail_append(tree_node_t *node, const char *data, size_t len)
{
    node->err_bytes += len;
    if (!node->tail && !(node->tail = malloc(TREE_TAIL_BYTES)))
        return;
    if (len > TREE_TAIL_BYTES) {
        data += len - TREE_TAIL_BYTES;
        len = TREE_TAIL_BYTES;
    }
    for (size_t i = 0; i < len; i++) {
        node->tail[node->tail_pos] = data[i];
        node->tail_pos = (node->tail_pos + 1) % TREE_TAIL_BYTES;
    }
    node->tail_len = node->tail_len + len > TREE_TAIL_BYTES ? TREE_TAIL_BYTES
                                                             : node->tail_len + len;
}

char *tree_node_tail(const tree_node_t *node)
{
    char *out = malloc(node->tail_len + 1);
    if (!out)
        return NULL;
    size_t start = (node->tail_pos + TREE_TAIL_BYTES - node->tail_len) % TREE_TAIL_BYTES;
    for (size_t i = 0; i < node->tail_len; i++)
        out[i] = node->tail[(start + i) % TREE_TAIL_BYTES];
    out[node->tail_len] = 0;
    return out;
}

bool tree_node_error_from_tail(tree_node_t *node)
{
    static const char mark[] = LINK_ERROR_MARK;
    if (node->error || node->tail_len == 0)
        return false;
    char *tail = tree_node_tail(node);
    if (!tail)
        return false;
    char *found = NULL;
    for (char *p = strstr(tail, mark); p; p = strstr(p + 1, mark))
        if (p == tail || p[-1] == '\n')
            found = p;
    bool ok = false;
    if (found) {
        char *line = found + sizeof mark - 1;
        char *end = strchr(line, '\n');
        cJSON *e = cJSON_ParseWithLength(line, end ? (size_t) (end - line) : strlen(line));
        if (cJSON_IsObject(e) && cJSON_IsString(cJSON_GetObjectItem(e, "type")) &&
            cJSON_IsString(cJSON_GetObjectItem(e, "message"))) {
            if (!cJSON_IsString(cJSON_GetObjectItem(e, "phase"))) {
                cJSON_DeleteItemFromObject(e, "phase");
                cJSON_AddStringToObject(e, "phase", "running");
            }
            node->error = e;
            ok = true;
        } else {
            cJSON_Delete(e);
        }
    }
    free(tail);
    return ok;
}

/* Did the node die of the SIGTERM that arbor sent as its cancel (exec
 * nodes) or as an escalation? 128+SIGTERM is how shells report it. */
static bool s_died_of_our_sigterm(const tree_node_t *n)
{
    bool by_sigterm = n->exit_signal == SIGTERM || (!n->exit_signal && n->exit_code == 128 + SIGTERM);
    return by_sigterm && (n->term_sent || (n->run == RUN_EXEC && n->cancel_delivered));
}

status_t tree_node_final_status(const tree_node_t *n)
{
    if (n->spawn_failed)
        return ST_SPAWN_FAILED;
    if (n->lost)
        return ST_LOST;
    /* A cancel never hides an error. */
    if (n->error || n->child_failed)
        return ST_FAILED;
    if (!n->exited)
        return n->cancel_requested ? ST_CANCELLED : ST_LOST; /* never started */
    if (n->exit_signal == SIGKILL && n->kill_sent)
        return ST_KILLED;
    if (s_died_of_our_sigterm(n))
        return n->term_sent ? ST_KILLED : ST_CANCELLED;
    if (n->exit_signal || n->exit_code != 0)
        return ST_FAILED;
    if (n->term_sent || n->kill_sent)
        return ST_KILLED;
    return n->cancel_requested ? ST_CANCELLED : ST_OK;
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
    for (int i = n->nphases - 1; i >= 0; i--) {
        phase_t p = n->phases[i].phase;
        if (p != PH_EXITED && p != PH_TERM_SENT && p != PH_KILL_SENT)
            return p;
    }
    return PH_NONE;
}

static cJSON *s_children_failed_error(const tree_node_t *n)
{
    int failed = 0;
    char names[512] = "";
    size_t used = 0;
    for (int i = 0; i < n->nchildren; i++) {
        const tree_node_t *c = n->children[i];
        if (!status_is_failure(c->status))
            continue;
        failed++;
        if (used < sizeof names - 80) {
            int w = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", c->name);
            used += (size_t) (w > 0 ? w : 0);
        } else if (used < sizeof names - 5) {
            used += (size_t) snprintf(names + used, sizeof names - used, ", …");
        }
    }
    char msg[700];
    if (n->restart_limit_hit)
        snprintf(msg, sizeof msg, "more than %d restarts within %lld ms; %d of %d children failed: %s",
                 n->max_restarts, (long long) n->within_ms, failed, n->nchildren, names);
    else
        snprintf(msg, sizeof msg, "%d of %d children failed: %s", failed, n->nchildren, names);
    cJSON *e = s_error("ChildrenFailed", msg,
                       n->child_failed_phase != PH_NONE ? n->child_failed_phase
                                                        : s_last_worker_phase(n));
    cJSON_AddNumberToObject(e, "failed_children", failed);
    return e;
}

static cJSON *s_derived_error(const tree_node_t *n, status_t status)
{
    char msg[256];
    phase_t at = s_last_worker_phase(n);
    if (status == ST_FAILED && n->child_failed)
        return s_children_failed_error(n);
    if (status == ST_FAILED && n->exit_signal) {
        snprintf(msg, sizeof msg, "died by %s, which arbor did not send", sig_name(n->exit_signal));
        return s_error("KilledBySignal", msg, at);
    }
    if (status == ST_FAILED && n->exited) {
        snprintf(msg, sizeof msg, "exited with code %d", n->exit_code);
        return s_error("NonZeroExit", msg, at);
    }
    if (status == ST_KILLED) {
        snprintf(msg, sizeof msg,
                 "did not exit within grace_ms=%lld after cancel (stuck in %s); needed %s",
                 (long long) n->grace_ms, phase_name(n->stuck_phase),
                 n->kill_sent ? "SIGTERM and SIGKILL" : "SIGTERM");
        return s_error("ShutdownTimeout", msg, n->stuck_phase);
    }
    return NULL;
}

/* The ARBOR-ERROR lines are for the supervisor (the error itself already
 * says it): what people read in "stderr" is the rest, in place. */
static void s_drop_error_lines(char *text)
{
    static const char mark[] = LINK_ERROR_MARK;
    char *out = text;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t) (nl - line) + 1 : strlen(line);
        if (strncmp(line, mark, sizeof mark - 1) != 0) {
            memmove(out, line, len);
            out += len;
        }
        line += len;
    }
    *out = 0;
}

void tree_node_settle(tree_t *tree, tree_node_t *node, status_t status)
{
    if (status_is_terminal(node->status))
        return; /* exactly one terminal status, ever */
    node->status = status;
    if (!node->error)
        node->error = s_derived_error(node, status);
    else if (node->child_failed && status == ST_FAILED)
        cJSON_AddItemToObject(node->error, "children", s_children_failed_error(node));
    if (node->error && node->tail_len && !cJSON_HasObjectItem(node->error, "stderr")) {
        char *tail = tree_node_tail(node);
        if (tail)
            s_drop_error_lines(tail);
        if (tail && *tail)
            cJSON_AddStringToObject(node->error, "stderr", tail);
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

bool tree_restart_allowed(tree_node_t *parent, int64_t now_ms)
{
    if (parent->max_restarts <= 0)
        return false;
    int recent = 0;
    for (int i = 0; i < parent->nrestart_at; i++)
        recent += parent->restart_at[i] > now_ms - parent->within_ms;
    if (recent >= parent->max_restarts)
        return false;
    /* Keep only the last max_restarts times: older ones cannot count. */
    if (!parent->restart_at &&
        !(parent->restart_at = calloc((size_t) parent->max_restarts, sizeof(int64_t))))
        return false;
    if (parent->nrestart_at < parent->max_restarts)
        parent->restart_at[parent->nrestart_at++] = now_ms;
    else {
        memmove(parent->restart_at, parent->restart_at + 1,
                (size_t) (parent->max_restarts - 1) * sizeof(int64_t));
        parent->restart_at[parent->max_restarts - 1] = now_ms;
    }
    return true;
}

static cJSON *s_exit_json(const tree_node_t *n);

void tree_subtree_reset(tree_t *tree, tree_node_t *n, int64_t t_ms)
{
    for (int i = 0; i < n->nchildren; i++)
        tree_subtree_reset(tree, n->children[i], t_ms);
    if (!n->history)
        n->history = cJSON_CreateArray();
    cJSON *h = cJSON_CreateObject();
    cJSON_AddNumberToObject(h, "t_ms", (double) t_ms);
    if (n->pid > 0)
        cJSON_AddNumberToObject(h, "pid", n->pid);
    else
        cJSON_AddNullToObject(h, "pid");
    cJSON_AddStringToObject(h, "status", status_name(n->status));
    cJSON_AddItemToObject(h, "exit", s_exit_json(n));
    cJSON_AddItemToObject(h, "error", n->error ? n->error : cJSON_CreateNull());
    cJSON_AddItemToArray(n->history, h);
    if (status_is_terminal(n->status))
        tree->nterminal--;
    /* Everything about the last process goes; the history stays. */
    n->error = NULL;
    n->proc = PROC_PENDING;
    n->pid = 0;
    n->link_fd = -1; /* the old link is the drain's to close, at its end */
    n->linked = false;
    n->exited = n->cancel_requested = n->cancel_delivered = n->ready = false;
    n->children_exited_sent = n->teardown_started = n->term_sent = n->kill_sent = false;
    n->child_failed = n->lost = n->spawn_failed = n->restart_wanted = n->redeliver = false;
    n->exit_code = n->exit_signal = 0;
    n->stuck_phase = n->child_failed_phase = PH_NONE;
    n->esc_stage = 0;
    n->deadline_gen++; /* its pending deadlines are void */
    n->incarnation++;
    n->nrestart_at = 0; /* a restarted parent starts with a fresh intensity */
    n->restart_limit_hit = false;
    n->status = ST_PENDING;
}

/* One node's outcome from a report node of the other supervisor. */
static status_t s_graft_one(tree_node_t *n, const cJSON *r, int64_t shift)
{
    const cJSON *pid = cJSON_GetObjectItem(r, "pid");
    n->pid = cJSON_IsNumber(pid) ? (pid_t) pid->valuedouble : 0;
    const cJSON *ex = cJSON_GetObjectItem(r, "exit");
    const cJSON *code = cJSON_GetObjectItem(ex, "code");
    const char *sig = cJSON_GetStringValue(cJSON_GetObjectItem(ex, "signal"));
    n->exited = cJSON_IsNumber(code) || sig;
    n->exit_code = cJSON_IsNumber(code) ? (int) code->valuedouble : 0;
    n->exit_signal = sig ? sig_parse(sig) : 0;
    const cJSON *err = cJSON_GetObjectItem(r, "error");
    cJSON_Delete(n->error);
    n->error = cJSON_IsObject(err) ? cJSON_Duplicate(err, 1) : NULL;
    const cJSON *esc = cJSON_GetObjectItem(r, "escalation");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(esc, "signals"))
    {
        n->term_sent |= cJSON_IsString(s) && strcmp(s->valuestring, "SIGTERM") == 0;
        n->kill_sent |= cJSON_IsString(s) && strcmp(s->valuestring, "SIGKILL") == 0;
    }
    n->stuck_phase = phase_parse(cJSON_GetStringValue(cJSON_GetObjectItem(esc, "stuck_phase")));
    n->nphases = 0;
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
    n->proc = PROC_GONE;
    status_t st = status_parse(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status")));
    return status_is_terminal(st) ? st : ST_LOST;
}

static void s_graft_below(tree_t *tree, tree_node_t *n, const cJSON *r, int64_t shift)
{
    const cJSON *kids = cJSON_GetObjectItem(r, "children");
    for (int i = 0; i < n->nchildren; i++) {
        tree_node_t *c = n->children[i];
        const cJSON *match = NULL, *k;
        cJSON_ArrayForEach(k, kids) if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(k, "name"))
                                                   ?: "", c->name) == 0) match = k;
        if (match) {
            s_graft_below(tree, c, match, shift);
            tree_node_settle(tree, c, s_graft_one(c, match, shift));
        } else {
            tree_settle_remote_part(tree, c, ST_LOST, NULL);
            c->lost = true;
            tree_node_settle(tree, c, ST_LOST);
        }
    }
}

status_t tree_graft(tree_t *tree, tree_node_t *top, const cJSON *remote_root)
{
    s_graft_below(tree, top, remote_root, top->remote_t0_ms);
    return s_graft_one(top, remote_root, top->remote_t0_ms);
}

void tree_settle_remote_part(tree_t *tree, tree_node_t *top, status_t status, const cJSON *error)
{
    for (int i = 0; i < top->nchildren; i++) {
        tree_node_t *c = top->children[i];
        tree_settle_remote_part(tree, c, status, error);
        if (status_is_terminal(c->status))
            continue;
        c->proc = PROC_GONE;
        c->lost = status == ST_LOST;
        if (error && !c->error)
            c->error = cJSON_Duplicate(error, 1);
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
    cJSON *ex = cJSON_CreateObject();
    if (n->exited && !n->exit_signal)
        cJSON_AddNumberToObject(ex, "code", n->exit_code);
    else
        cJSON_AddNullToObject(ex, "code");
    if (n->exited && n->exit_signal)
        cJSON_AddStringToObject(ex, "signal", sig_name(n->exit_signal));
    else
        cJSON_AddNullToObject(ex, "signal");
    return ex;
}

static cJSON *s_node_report(const tree_node_t *n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", n->name);
    cJSON_AddStringToObject(o, "path", n->path);
    if (n->pid > 0)
        cJSON_AddNumberToObject(o, "pid", n->pid);
    else
        cJSON_AddNullToObject(o, "pid");
    cJSON_AddStringToObject(o, "status", status_name(n->status));
    if (n->phase == PH_NONE)
        cJSON_AddNullToObject(o, "phase");
    else
        cJSON_AddStringToObject(o, "phase", phase_name(n->phase));
    cJSON_AddItemToObject(o, "exit", s_exit_json(n));
    cJSON_AddItemToObject(o, "error", n->error ? cJSON_Duplicate(n->error, 1) : cJSON_CreateNull());
    if (n->term_sent || n->kill_sent) {
        cJSON *esc = cJSON_AddObjectToObject(o, "escalation");
        cJSON_AddStringToObject(esc, "stuck_phase", phase_name(n->stuck_phase));
        cJSON *sigs = cJSON_AddArrayToObject(esc, "signals");
        if (n->term_sent)
            cJSON_AddItemToArray(sigs, cJSON_CreateString("SIGTERM"));
        if (n->kill_sent)
            cJSON_AddItemToArray(sigs, cJSON_CreateString("SIGKILL"));
    } else {
        cJSON_AddNullToObject(o, "escalation");
    }
    cJSON *phases = cJSON_AddArrayToObject(o, "phases");
    for (int i = 0; i < n->nphases; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "phase", phase_name(n->phases[i].phase));
        cJSON_AddNumberToObject(p, "t_ms", (double) n->phases[i].t_ms);
        cJSON_AddItemToArray(phases, p);
    }
    /* Earlier incarnations, when its parent restarted it. */
    cJSON_AddItemToObject(o, "restarts",
                          n->history ? cJSON_Duplicate(n->history, 1) : cJSON_CreateArray());
    cJSON *kids = cJSON_AddArrayToObject(o, "children");
    for (int i = 0; i < n->nchildren; i++)
        cJSON_AddItemToArray(kids, s_node_report(n->children[i]));
    return o;
}

cJSON *tree_report(const tree_t *self, int64_t now_ms)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "tree", self->id);
    cJSON_AddStringToObject(r, "supervisor", self->supervisor);
    cJSON_AddStringToObject(r, "status", tree_status_name(tree_status_of(self)));
    int64_t end = self->ended_ms ? self->ended_ms : now_ms;
    cJSON_AddNumberToObject(r, "duration_ms", (double) (end - self->started_ms));
    if (self->reason[0])
        cJSON_AddStringToObject(r, "reason", self->reason);
    cJSON_AddItemToObject(r, "root", s_node_report(&self->nodes[0]));
    return r;
}
