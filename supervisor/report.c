#include "report.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "logbuf.h"
#include "sbuf.h"
#include "sig.h"

/* A string literal (only: its length is the array's). */
#define S_LIT(b, lit) sbuf_add((b), "" lit, sizeof(lit) - 1)

/* ,"key": */
static void s_key(sbuf_t *b, const char *key)
{
    S_LIT(b, ",\"");
    sbuf_add(b, key, strlen(key));
    S_LIT(b, "\":");
}

static void s_key_str(sbuf_t *b, const char *key, const char *value)
{
    s_key(b, key);
    sbuf_add_jstr(b, value);
}

static void s_key_int(sbuf_t *b, const char *key, long long value)
{
    s_key(b, key);
    sbuf_add_i64(b, value);
}

/* A JSON value kept as cJSON (a worker's error, earlier incarnations):
 * rare and small next to the rest, so cJSON prints it. */
static void s_key_json(sbuf_t *b, const char *key, const cJSON *value, const char *absent)
{
    s_key(b, key);
    char *text = value ? cJSON_PrintUnformatted(value) : NULL;
    if (value && !text)
        b->oom = true;
    sbuf_add(b, text ? text : absent, strlen(text ? text : absent));
    cJSON_free(text);
}

static void s_exit(sbuf_t *b, const tree_node_t *n)
{
    const node_life_t *l = &n->inc.life;
    bool exited = l->end == END_EXITED;
    S_LIT(b, ",\"exit\":{\"code\":");
    if (exited && !l->exit_signal)
        sbuf_add_i64(b, l->exit_code);
    else
        S_LIT(b, "null");
    S_LIT(b, ",\"signal\":");
    sbuf_add_jstr(b, exited && l->exit_signal ? sig_name(l->exit_signal) : NULL);
    S_LIT(b, "}");
}

static void s_escalation(sbuf_t *b, const tree_inc_t *inc)
{
    if (!inc->life.escalated) {
        S_LIT(b, ",\"escalation\":null");
        return;
    }
    S_LIT(b, ",\"escalation\":{\"stuck_phase\":");
    sbuf_add_jstr(b, phase_name(inc->stuck_phase));
    if (inc->life.escalated == SIGKILL)
        S_LIT(b, ",\"signals\":[\"SIGTERM\",\"SIGKILL\"]}");
    else
        S_LIT(b, ",\"signals\":[\"SIGTERM\"]}");
}

static void s_phases(sbuf_t *b, const tree_inc_t *inc)
{
    S_LIT(b, ",\"phases\":[");
    for (int i = 0; i < inc->nphases; i++) {
        if (i)
            S_LIT(b, ",");
        S_LIT(b, "{\"phase\":");
        sbuf_add_jstr(b, phase_name(inc->phases[i].phase));
        s_key_int(b, "t_ms", inc->phases[i].t_ms);
        S_LIT(b, "}");
    }
    S_LIT(b, "]");
}

static void s_node(sbuf_t *b, const tree_node_t *n)
{
    const tree_inc_t *inc = &n->inc;
    S_LIT(b, "{\"name\":");
    sbuf_add_jstr(b, n->name);
    s_key_str(b, "path", n->path);
    s_key(b, "pid");
    if (inc->pid > 0)
        sbuf_add_i64(b, inc->pid);
    else
        S_LIT(b, "null");
    s_key_str(b, "status", status_name(n->status));
    s_key_str(b, "phase", n->phase == PH_NONE ? NULL : phase_name(n->phase));
    s_exit(b, n);
    s_key_json(b, "error", inc->error, "null");
    s_escalation(b, inc);
    s_phases(b, inc);
    s_key_int(b, "escaped", inc->escaped);
    if (n->remote_sup[0]) /* placed ("on"): the supervisor that ran its subtree */
        s_key_str(b, "supervisor", n->remote_sup);
    if (n->restart != RESTART_TRANSIENT)
        s_key_str(b, "restart", restart_name(n->restart));
    /* Earlier incarnations, when its parent restarted it. */
    s_key_json(b, "restarts", n->history, "[]");
    /* output lines kept here, and how many went (oldest first) */
    S_LIT(b, ",\"logs\":{\"lines\":");
    sbuf_add_i64(b, n->logs ? (long long) logbuf_lines(n->logs) : 0);
    S_LIT(b, ",\"dropped\":");
    sbuf_add_i64(b, n->logs ? (long long) logbuf_dropped(n->logs) : 0);
    S_LIT(b, "},\"children\":[");
    for (int i = 0; i < n->nchildren; i++) {
        if (i)
            S_LIT(b, ",");
        s_node(b, n->children[i]);
    }
    S_LIT(b, "]}");
}

char *report_text(const tree_t *tree, int64_t now_ms, const char *const *guarantees)
{
    sbuf_t b = {0};
    /* ~550 bytes a node with its phases: one allocation for most reports */
    sbuf_reserve(&b, 1024 + (size_t) tree->nnodes * 600);
    S_LIT(&b, "{\"tree\":");
    sbuf_add_jstr(&b, tree->id);
    s_key_str(&b, "supervisor", tree->supervisor);
    s_key_str(&b, "status", tree_status_name(tree_status_of(tree)));
    int64_t end = tree->ended_ms ? tree->ended_ms : now_ms;
    s_key_int(&b, "duration_ms", end - tree->started_ms);
    if (tree->reason[0])
        s_key_str(&b, "reason", tree->reason);
    S_LIT(&b, ",\"root\":");
    s_node(&b, &tree->nodes[0]);
    if (guarantees) {
        S_LIT(&b, ",\"guarantees\":[");
        for (int i = 0; guarantees[i]; i++) {
            if (i)
                S_LIT(&b, ",");
            sbuf_add_jstr(&b, guarantees[i]);
        }
        S_LIT(&b, "]");
    }
    S_LIT(&b, "}");
    if (b.oom) {
        sbuf_reset(&b);
        return NULL;
    }
    return sbuf_take(&b);
}
