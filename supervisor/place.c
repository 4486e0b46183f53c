#include "place.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "env.h"
#include "esc.h"

static void s_remote_topic(const tree_node_t *n, char *out, size_t size)
{
    snprintf(out, size, "tree/%s", n->remote_tree);
}

/* Worst case for the other supervisor to end the subtree after a cancel:
 * every level's deadlines, plus slack for the network. */
static int64_t s_remote_bound_ms(const tree_node_t *n)
{
    int64_t deepest = 0;
    for (int i = 0; i < n->nchildren; i++) {
        int64_t b = s_remote_bound_ms(n->children[i]);
        deepest = b > deepest ? b : deepest;
    }
    return n->grace_ms + n->kill_after_ms + ESC_REAP_MS + deepest;
}

static void s_remote_done_with(super_t *s, tree_t *t, tree_node_t *n, status_t status)
{
    char topic[TREE_ID_MAX + 8];
    s_remote_topic(n, topic, sizeof topic);
    peer_unsubscribe(s->peer, topic);
    n->proc = PROC_GONE;
    tree_node_settle(t, n, status);
    super_after_settle(s, t, n);
}

void place_lost(super_t *s, tree_t *t, tree_node_t *n, const char *why)
{
    log_node(ALOG_WARN, t->id, n->path, "tree %s: %s on %s: %s", t->id, n->path, n->remote_sup, why);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", "Lost");
    cJSON_AddStringToObject(e, "message", why);
    cJSON_AddStringToObject(e, "phase", phase_name(n->phase));
    tree_settle_remote_part(t, n, ST_LOST, e);
    cJSON_Delete(n->error);
    n->error = e;
    n->lost = true;
    s_remote_done_with(s, t, n, ST_LOST);
}

void place_spawn(super_t *s, tree_t *t, tree_node_t *n)
{
    char id[TREE_ID_MAX + 32];
    snprintf(id, sizeof id, "%s.%d.%u", t->id, n->idx, n->incarnation);
    if (strlen(id) <= TREE_ID_MAX)
        memcpy(n->remote_tree, id, strlen(id) + 1);
    else
        peer_random_id(n->remote_tree, sizeof n->remote_tree);
    char topic[TREE_ID_MAX + 8];
    s_remote_topic(n, topic, sizeof topic);
    peer_subscribe(s->peer, topic); /* before the spawn: no event is missed */
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "spec", cJSON_Duplicate(n->subtree_spec, 1));
    cJSON_AddStringToObject(body, "tree", n->remote_tree);
    cJSON *parent = cJSON_AddObjectToObject(body, "parent");
    cJSON_AddStringToObject(parent, "supervisor", s->name);
    cJSON_AddStringToObject(parent, "tree", t->id);
    cJSON_AddStringToObject(parent, "path", n->path);
    n->remote_t0_ms = clk_now_ms() - t->started_ms;
    n->remote_req = peer_send(s->peer, n->remote_sup, "spawn", body, -1);
    n->proc = PROC_REQUESTED;
    log_node(ALOG_INFO, t->id, n->path, "tree %s: %s runs on supervisor %s as tree %s", t->id, n->path, n->remote_sup,
             n->remote_tree);
    if (n->remote_req < 0) {
        peer_unsubscribe(s->peer, topic);
        super_spawn_failed(s, t, n, "cannot reach the broker to ask the other supervisor");
        return;
    }
    super_deadline(s, t, n, DL_REMOTE, 10000); /* an answer to the spawn, at least */
}

static tree_node_t *s_remote_by_req(super_t *s, const env_t *msg, tree_t **tree)
{
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees))
        for (int i = 0; !t->ended_ms && i < t->nnodes; i++) {
            tree_node_t *n = &t->nodes[i];
            if (n->remote_sup[0] && n->proc == PROC_REQUESTED && n->remote_req == msg->re) {
                *tree = t;
                return n;
            }
        }
    return NULL;
}

static tree_node_t *s_remote_by_tree(super_t *s, const char *sup, const char *rtree, tree_t **tree)
{
    for (tree_t *t = zlistx_first(s->trees); t && rtree; t = zlistx_next(s->trees))
        for (int i = 0; !t->ended_ms && i < t->nnodes; i++) {
            tree_node_t *n = &t->nodes[i];
            if (n->proc == PROC_REMOTE && !strcmp(n->remote_sup, sup) &&
                !strcmp(n->remote_tree, rtree)) {
                *tree = t;
                return n;
            }
        }
    return NULL;
}

void place_cancel(super_t *s, tree_t *t, tree_node_t *n)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", n->remote_tree);
    peer_send(s->peer, n->remote_sup, "cancel", body, -1);
    super_deadline(s, t, n, DL_REMOTE, s_remote_bound_ms(n) + 10000);
}

/* "spawned" from the other supervisor. */
void place_on_spawned(super_t *s, env_t *msg)
{
    tree_t *t;
    tree_node_t *n = s_remote_by_req(s, msg, &t);
    if (!n || strcmp(msg->from, n->remote_sup) != 0)
        return;
    n->proc = PROC_REMOTE;
    n->status = ST_RUNNING;
    n->deadline_gen++; /* the spawn deadline is met; its phases come as events */
    if (n->cancel_requested)
        place_cancel(s, t, n);
}

/* An error answering our spawn (from it, or from the broker). */
bool place_on_error(super_t *s, env_t *msg)
{
    tree_t *t;
    tree_node_t *n = s_remote_by_req(s, msg, &t);
    if (!n)
        return false;
    char why[600];
    snprintf(why, sizeof why, "supervisor %s refused the subtree: %s: %s", n->remote_sup,
             env_str(msg->body, "code") ?: "error", env_str(msg->body, "message") ?: "");
    char topic[TREE_ID_MAX + 8];
    s_remote_topic(n, topic, sizeof topic);
    peer_unsubscribe(s->peer, topic);
    tree_settle_remote_part(t, n, ST_CANCELLED, NULL);
    super_spawn_failed(s, t, n, why);
    return true;
}

/* An event of a subtree running elsewhere: its phases show in our tree. */
void place_on_event(super_t *s, env_t *msg)
{
    tree_t *t;
    tree_node_t *n = s_remote_by_tree(s, msg->from, env_str(msg->body, "tree"), &t);
    const char *kind = env_str(msg->body, "kind");
    if (!n || !kind)
        return;
    if (!strcmp(kind, "done")) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "tree", n->remote_tree);
        peer_send(s->peer, n->remote_sup, "status", body, -1);
        return;
    }
    const char *rpath = env_str(msg->body, "path");
    phase_t ph = phase_parse(env_str(msg->body, "phase"));
    if (strcmp(kind, "phase") || !rpath || ph == PH_NONE)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", n->parent ? n->parent->path : "", n->parent ? "/" : "",
             rpath);
    tree_node_t *x = tree_find_path(t, path);
    if (x && !status_is_terminal(x->status)) {
        if (x->status == ST_PENDING)
            x->status = ST_RUNNING;
        super_phase_at(s, t, x, ph, t->started_ms + n->remote_t0_ms + env_int(msg->body, "t_ms", 0));
    }
}

/* The report of a subtree that ended elsewhere: graft it into ours. */
void place_on_report(super_t *s, env_t *msg)
{
    const cJSON *report = cJSON_GetObjectItem(msg->body, "report");
    const char *status = env_str(report, "status");
    tree_t *t;
    tree_node_t *n = s_remote_by_tree(s, msg->from, env_str(report, "tree"), &t);
    if (!n || !status || !strcmp(status, "running"))
        return;
    status_t st = tree_graft(t, n, cJSON_GetObjectItem(report, "root"));
    log_node(ALOG_INFO, t->id, n->path, "tree %s: %s ended on supervisor %s: %s", t->id, n->path, n->remote_sup,
             status_name(st));
    s_remote_done_with(s, t, n, st);
}

/* Topic "peers": a supervisor running subtrees of ours is gone. */
void place_on_peer_lost(super_t *s, env_t *msg)
{
    const char *name = env_str(msg->body, "name");
    if (!name || strcmp(env_str(msg->body, "kind") ?: "", "peer_lost") != 0)
        return;
    char why[200];
    snprintf(why, sizeof why, "supervisor %s was lost (%s)", name,
             env_str(msg->body, "reason") ?: "gone");
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees))
        for (int i = 0; !t->ended_ms && i < t->nnodes; i++) {
            tree_node_t *n = &t->nodes[i];
            if (!strcmp(n->remote_sup, name) &&
                (n->proc == PROC_REMOTE || n->proc == PROC_REQUESTED))
                place_lost(s, t, n, why);
        }
}
