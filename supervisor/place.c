#include "place.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "placepoll.h"

#define PLACE_ANSWER_MS 10000 /* the other supervisor answers a spawn within this */
#define PLACE_SLACK_MS 10000  /* network and scheduling slack on a cancel's bound */
#define PLACE_EXPIRY_MS 5000  /* the broker's default peer expiry, until its welcome tells */

typedef struct s_placement_t {
    tree_t *tree;
    int idx;             /* its node (an index: a tree's node array may grow) */
    bool spawned;        /* it answered "spawned" */
    int64_t deadline_ms; /* monotonic; 0: none */
    int64_t poll_ms;     /* next status request (spawned): monotonic */
    placepoll_t poll;    /* the answers to those requests (placepoll.h) */
    struct s_placement_t *next;
} s_placement_t;

struct place_t {
    peer_t *peer;
    place_core_t core;
    s_placement_t *list;
    int count;
};

place_t *place_new(peer_t *peer, place_core_t core)
{
    place_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->peer = peer;
    self->core = core;
    return self;
}

void place_destroy(place_t **self)
{
    if (!self || !*self)
        return;
    for (s_placement_t *p = (*self)->list, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    free(*self);
    *self = NULL;
}

int place_count(const place_t *self) { return self->count; }

static tree_node_t *s_node(const s_placement_t *p) { return &p->tree->nodes[p->idx]; }

static void s_topic(const tree_node_t *n, char *out, size_t size)
{
    snprintf(out, size, "tree/%s", n->remote_tree);
}

/* Worst case for the other supervisor to end the subtree after a cancel:
 * every level's deadlines. */
static int64_t s_bound_ms(const tree_node_t *n)
{
    int64_t deepest = 0;
    for (int i = 0; i < n->nchildren; i++) {
        int64_t b = s_bound_ms(n->children[i]);
        deepest = b > deepest ? b : deepest;
    }
    return n->grace_ms + n->kill_after_ms + ESC_REAP_MS + deepest;
}

static s_placement_t *s_find_node(place_t *self, const tree_t *t, const tree_node_t *n)
{
    for (s_placement_t *p = self->list; p; p = p->next)
        if (p->tree == t && p->idx == n->idx)
            return p;
    return NULL;
}

/* The placement is over: forget it, then tell the core (which may free
 * the tree once it has ended). */
static void s_end(place_t *self, s_placement_t *p, node_event_t ev, const char *why)
{
    char topic[TREE_ID_MAX + 8];
    s_topic(s_node(p), topic, sizeof topic);
    peer_unsubscribe(self->peer, topic);
    tree_t *t = p->tree;
    tree_node_t *n = &t->nodes[p->idx];
    for (s_placement_t **at = &self->list; *at; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            break;
        }
    free(p);
    self->count--;
    self->core.event(self->core.arg, t, n, ev, why);
}

static void s_lost(place_t *self, s_placement_t *p, const char *why)
{
    tree_node_t *n = s_node(p);
    log_node(ALOG_WARN, p->tree->id, n->path, "tree %s: %s on %s: %s", p->tree->id, n->path,
             n->remote_sup, why);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", "Lost");
    cJSON_AddStringToObject(e, "message", why);
    cJSON_AddStringToObject(e, "phase", phase_name(n->phase == PH_NONE ? PH_SPAWNED : n->phase));
    tree_settle_remote_part(p->tree, n, ST_LOST, e);
    cJSON_Delete(n->inc.error);
    n->inc.error = e;
    n->inc.life.end = END_LOST;
    s_end(self, p, (node_event_t){.kind = NEV_REMOTE_ENDED, .status = ST_LOST}, why);
}

int place_spawn(place_t *self, tree_t *t, tree_node_t *n)
{
    s_placement_t *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    char id[TREE_ID_MAX + 32];
    snprintf(id, sizeof id, "%s.%d.%u", t->id, n->idx, n->incarnation);
    if (strlen(id) <= TREE_ID_MAX)
        memcpy(n->remote_tree, id, strlen(id) + 1);
    else
        peer_random_id(n->remote_tree, sizeof n->remote_tree);
    char topic[TREE_ID_MAX + 8];
    s_topic(n, topic, sizeof topic);
    peer_subscribe(self->peer, topic); /* before the spawn: no event is missed */
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "spec", cJSON_Duplicate(n->subtree_spec, 1));
    cJSON_AddStringToObject(body, "tree", n->remote_tree);
    cJSON *parent = cJSON_AddObjectToObject(body, "parent");
    cJSON_AddStringToObject(parent, "supervisor", t->supervisor);
    cJSON_AddStringToObject(parent, "tree", t->id);
    cJSON_AddStringToObject(parent, "path", n->path);
    n->remote_t0_ms = clk_now_ms() - t->started_ms;
    n->remote_req = peer_send(self->peer, n->remote_sup, "spawn", body, -1);
    if (n->remote_req < 0) {
        peer_unsubscribe(self->peer, topic);
        free(p);
        return -1;
    }
    log_node(ALOG_INFO, t->id, n->path, "tree %s: %s runs on supervisor %s as tree %s", t->id,
             n->path, n->remote_sup, n->remote_tree);
    *p = (s_placement_t){.tree = t,
                         .idx = n->idx,
                         .deadline_ms = clk_now_ms() + PLACE_ANSWER_MS,
                         .next = self->list};
    placepoll_init(&p->poll);
    self->list = p;
    self->count++;
    return 0;
}

/* A request about the placed subtree to the supervisor running it
 * ({"tree": its id there}): "cancel" or "status". The message id. */
static int64_t s_ask(place_t *self, const tree_node_t *n, const char *type)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", n->remote_tree);
    return peer_send(self->peer, n->remote_sup, type, body, -1);
}

void place_cancel(place_t *self, tree_t *t, tree_node_t *n)
{
    s_placement_t *p = s_find_node(self, t, n);
    if (!p || !p->spawned)
        return; /* not answered yet: cancelled when it is (NEV_PLACED) */
    s_ask(self, n, "cancel");
    p->deadline_ms = clk_now_ms() + s_bound_ms(n) + PLACE_SLACK_MS;
}

static int64_t s_expiry_ms(const place_t *self)
{
    int64_t told = peer_expiry_ms(self->peer);
    return told > 0 ? told : PLACE_EXPIRY_MS;
}

/* What the polls' answers say of the other supervisor (placepoll.h), as
 * a lost node's error message. */
static void s_poll_why(place_t *self, const s_placement_t *p, placepoll_verdict_t v,
                       int64_t now_ms, char *why, size_t size)
{
    const tree_node_t *n = s_node(p);
    double since_s = (double) (now_ms - placepoll_since(&p->poll, v)) / 1000;
    double expiry_s = (double) s_expiry_ms(self) / 1000;
    if (v == PLACEPOLL_GONE)
        snprintf(why, size,
                 "supervisor %s no longer has tree %s (it restarted, or dropped the ended tree "
                 "before its report came): what became of the subtree is unknown",
                 n->remote_sup, n->remote_tree);
    else if (v == PLACEPOLL_UNREGISTERED)
        snprintf(why, size,
                 "supervisor %s is not registered at the broker, and has not been for %.1f s "
                 "(the broker forgets a peer silent for %.1f s): it is gone (it died or lost "
                 "the broker, perhaps while the broker restarted)",
                 n->remote_sup, since_s, expiry_s);
    else
        snprintf(why, size,
                 "supervisor %s answered none of %d status requests in a row over %.1f s (the "
                 "broker forgets a peer silent for %.1f s)",
                 n->remote_sup, p->poll.unanswered, since_s, expiry_s);
}

/* The polls' answers say the other supervisor is gone: the subtree is
 * lost. One that only went silent may be there after all: it is asked to
 * cancel the subtree (best effort) rather than run it on unwatched. */
static void s_poll_lost(place_t *self, s_placement_t *p, placepoll_verdict_t v, int64_t now_ms)
{
    char why[600];
    s_poll_why(self, p, v, now_ms, why, sizeof why);
    if (v == PLACEPOLL_SILENT)
        s_ask(self, s_node(p), "cancel");
    s_lost(self, p, why);
}

/* Ask for the subtree's status: its report, should its done event have
 * been lost, and by the answers whether its supervisor is still there. */
static void s_poll(place_t *self, s_placement_t *p, int64_t now_ms)
{
    int64_t id = s_ask(self, s_node(p), "status");
    p->poll_ms = now_ms + PLACE_POLL_MS;
    placepoll_verdict_t v = placepoll_sent(&p->poll, id, now_ms, s_expiry_ms(self));
    if (v != PLACEPOLL_WAIT)
        s_poll_lost(self, p, v, now_ms);
}

void place_tick(place_t *self, int64_t now_ms)
{
    for (s_placement_t *p = self->list, *next; p; p = next) {
        next = p->next;
        if (p->deadline_ms && now_ms >= p->deadline_ms)
            s_lost(self, p, p->spawned ? "the other supervisor did not end the subtree in time"
                                       : "the other supervisor did not answer the spawn in 10 s");
        else if (p->spawned && now_ms >= p->poll_ms)
            s_poll(self, p, now_ms);
    }
}

static s_placement_t *s_by_req(place_t *self, const env_t *msg)
{
    for (s_placement_t *p = self->list; p; p = p->next)
        if (!p->spawned && s_node(p)->remote_req == msg->re)
            return p;
    return NULL;
}

static s_placement_t *s_by_tree(place_t *self, const char *sup, const char *rtree)
{
    for (s_placement_t *p = self->list; p && rtree; p = p->next)
        if (p->spawned && !strcmp(s_node(p)->remote_sup, sup) &&
            !strcmp(s_node(p)->remote_tree, rtree))
            return p;
    return NULL;
}

void place_on_spawned(place_t *self, env_t *msg)
{
    s_placement_t *p = s_by_req(self, msg);
    if (!p || strcmp(msg->from, s_node(p)->remote_sup) != 0)
        return;
    p->spawned = true;
    p->deadline_ms = 0; /* answered; its phases come as events */
    p->poll_ms = clk_now_ms() + PLACE_POLL_MS;
    s_node(p)->status = ST_RUNNING;
    self->core.event(self->core.arg, p->tree, s_node(p), (node_event_t){.kind = NEV_PLACED}, NULL);
}

static s_placement_t *s_by_poll(place_t *self, const env_t *msg)
{
    for (s_placement_t *p = self->list; p; p = p->next)
        if (p->spawned && placepoll_is_poll(&p->poll, msg->re))
            return p;
    return NULL;
}

/* An error answering a status poll: the broker's (the other supervisor is
 * not registered...) or the other supervisor's (no such tree). */
static void s_poll_error(place_t *self, s_placement_t *p, const env_t *msg)
{
    bool by_broker = !strcmp(msg->from, "broker");
    if (!by_broker && strcmp(msg->from, s_node(p)->remote_sup) != 0)
        return; /* not from where the poll went */
    int64_t now_ms = clk_now_ms();
    placepoll_verdict_t v = placepoll_error(&p->poll, env_str(msg->body, "code"), by_broker,
                                            now_ms, s_expiry_ms(self));
    log_node(ALOG_DEBUG, p->tree->id, s_node(p)->path, "tree %s: status of %s on %s: %s: %s",
             p->tree->id, s_node(p)->remote_tree, s_node(p)->remote_sup,
             env_str(msg->body, "code") ?: "error", env_str(msg->body, "message") ?: "");
    if (v != PLACEPOLL_WAIT)
        s_poll_lost(self, p, v, now_ms);
}

bool place_on_error(place_t *self, env_t *msg)
{
    s_placement_t *polled = s_by_poll(self, msg);
    if (polled) {
        s_poll_error(self, polled, msg);
        return true;
    }
    s_placement_t *p = s_by_req(self, msg);
    if (!p)
        return false;
    char why[600];
    snprintf(why, sizeof why, "supervisor %s refused the subtree: %s: %s", s_node(p)->remote_sup,
             env_str(msg->body, "code") ?: "error", env_str(msg->body, "message") ?: "");
    tree_settle_remote_part(p->tree, s_node(p), ST_CANCELLED, NULL);
    s_end(self, p, (node_event_t){.kind = NEV_SPAWN_FAILED}, why);
    return true;
}

/* The report of a subtree that ended on supervisor from (pushed with its
 * done event, or the answer to our status): graft it into ours. */
static void s_ended(place_t *self, const char *from, const cJSON *report)
{
    const char *status = env_str(report, "status");
    s_placement_t *p = s_by_tree(self, from, env_str(report, "tree"));
    if (p)
        placepoll_heard(&p->poll);
    if (!p || !status || !strcmp(status, "running"))
        return;
    status_t st = tree_graft(p->tree, p->idx, cJSON_GetObjectItem(report, "root"));
    tree_node_t *n = s_node(p); /* after the graft: the node array may have grown */
    log_node(ALOG_INFO, p->tree->id, n->path, "tree %s: %s ended on supervisor %s: %s",
             p->tree->id, n->path, n->remote_sup, status_name(st));
    s_end(self, p, (node_event_t){.kind = NEV_REMOTE_ENDED, .status = (int) st}, NULL);
}

void place_on_event(place_t *self, env_t *msg)
{
    s_placement_t *p = s_by_tree(self, msg->from, env_str(msg->body, "tree"));
    const char *kind = env_str(msg->body, "kind");
    if (!p || !kind)
        return;
    placepoll_heard(&p->poll);
    tree_node_t *n = s_node(p);
    if (!strcmp(kind, "done")) {
        const cJSON *report = cJSON_GetObjectItem(msg->body, "report");
        if (cJSON_IsObject(report)) /* pushed with the event: no round trip */
            s_ended(self, msg->from, report);
        else
            s_poll(self, p, clk_now_ms());
        return;
    }
    const char *rpath = env_str(msg->body, "path");
    phase_t ph = phase_parse(env_str(msg->body, "phase"));
    if (strcmp(kind, "phase") || !rpath || ph == PH_NONE)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", n->parent ? n->parent->path : "", n->parent ? "/" : "",
             rpath);
    tree_t *t = p->tree;
    tree_node_t *x = tree_find_path(t, path);
    if (x && !status_is_terminal(x->status)) {
        if (x->status == ST_PENDING)
            x->status = ST_RUNNING;
        self->core.phase(self->core.arg, t, x, ph,
                         t->started_ms + n->remote_t0_ms + env_int(msg->body, "t_ms", 0));
    }
}

void place_on_report(place_t *self, env_t *msg)
{
    s_ended(self, msg->from, cJSON_GetObjectItem(msg->body, "report"));
}

void place_on_peer_lost(place_t *self, env_t *msg)
{
    const char *name = env_str(msg->body, "name");
    if (!name || strcmp(env_str(msg->body, "kind") ?: "", "peer_lost") != 0)
        return;
    char why[200];
    snprintf(why, sizeof why, "supervisor %s was lost (%s)", name,
             env_str(msg->body, "reason") ?: "gone");
    for (s_placement_t *p = self->list, *next; p; p = next) {
        next = p->next;
        if (!strcmp(s_node(p)->remote_sup, name))
            s_lost(self, p, why);
    }
}
