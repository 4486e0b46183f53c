/* super: the supervisor's event loop. It turns events (requests from the
 * broker, fork-server messages, notify-fd reports, deadlines, signals) into
 * node events, lets node_step (node.h) decide, and carries out what it
 * decides. The rules live elsewhere, pure and unit-tested: a node's
 * lifecycle in node.c, a parent's strategy in strategy.c, statuses and the
 * report in tree.c, the spawn queue in spawnq.c, placement in place.c. */
#include "interest.h"
#include "jprint.h"
#include "report.h"
#include "super.h"
#include "sweep.h"
#include "creds.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "dl.h"
#include "drain.h"
#include "link.h"
#include "notify.h"
#include "notify.h"
#include "log.h"
#include "logs_req.h"
#include "node.h"
#include "oom.h"
#include "nodelog.h"
#include "peer.h"
#include "place.h"
#include "sdnotify.h"
#include "sig.h"
#include "spawnq.h"
#include "stopsig.h"
#include "strategy.h"
#include "wfd.h"

#define SPAWN_WINDOW 64 /* spawn requests in flight to the fork-server */
/* req = tree serial << 28 | incarnation (8 bits) << 20 | node index: events
 * about an earlier incarnation of a restarted node are recognised as such. */
#define REQ_NODE_BITS 20
#define REQ_GEN_BITS 8
#define TICK_MS 100
#define FSRV_MAX_RESTARTS 10
#define FSRV_RESTART_WINDOW_MS 10000

struct super_t {
    super_cfg_t cfg;
    char name[TREE_NAME_MAX + 1];
    char broker[256];
    fsrv_t fsrv;
    bool fsrv_gone;
    int guarantees;            /* FSRV_G_ flags the fork-server reported */
    int fsrv_restarts;         /* fork-server deaths in the current window */
    int64_t fsrv_window_start;
    peer_t *peer;
    bool registered;
    int64_t next_beat;
    zloop_t *loop;
    zlistx_t *trees;           /* tree_t*, oldest first */
    uint64_t next_serial;
    dl_heap_t *deadlines;
    int timerfd, sigfd;
    int64_t timer_at;          /* the deadline the timerfd is set for; -1: disarmed */
    drain_t *drain;
    spawnq_t *spawnq;
    creds_t *creds; /* user and group names resolved for the fork-server */
    int inflight;              /* spawn requests the fork-server has not answered */
    uint32_t exits_unacked;    /* exit statuses read, not acknowledged yet */
    bool token_timer;          /* a pump is due when the next spawn token is */
    place_t *place;
    interest_t *interest;      /* which tree topics anyone listens to */
    uint64_t events_unwatched; /* phase/status events not sent: no listener */
    bool stopping;
    int64_t stop_deadline;
    int exit_code;
    log_budget_t reject_log;   /* a flood of bad specs is not a flood of lines */
    struct {
        uint64_t trees, spawns, spawn_failures, exits, sigterms, sigkills, lost, rejected,
            restarts, bad_notify;
    } count;
};

static void s_pump(super_t *s);
static void s_event(super_t *s, tree_t *t, tree_node_t *n, node_event_t ev, int64_t mono_ms,
                    const char *why);

/* ---- lookups -------------------------------------------------------------- */

static tree_t *s_tree_by_serial(super_t *s, uint64_t serial)
{
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees))
        if (t->serial == serial)
            return t;
    return NULL;
}

static tree_t *s_tree_by_id(super_t *s, const char *id)
{
    for (tree_t *t = zlistx_first(s->trees); t && id; t = zlistx_next(s->trees))
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static uint64_t s_req(const tree_t *t, const tree_node_t *n)
{
    uint64_t gen = n->incarnation & ((1u << REQ_GEN_BITS) - 1);
    return (t->serial << (REQ_NODE_BITS + REQ_GEN_BITS)) | (gen << REQ_NODE_BITS) |
           (uint64_t) n->idx;
}

static int s_req_idx(uint64_t req)
{
    return (int) (req & ((1u << REQ_NODE_BITS) - 1));
}

/* The node a fork-server event or pipe is about, if it is about the node's
 * current incarnation. */
static tree_node_t *s_node_by_req(super_t *s, uint64_t req, tree_t **tree)
{
    tree_t *t = s_tree_by_serial(s, req >> (REQ_NODE_BITS + REQ_GEN_BITS));
    int idx = s_req_idx(req);
    *tree = t;
    if (!t || idx >= t->nnodes || s_req(t, &t->nodes[idx]) != req)
        return NULL;
    return &t->nodes[idx];
}

/* Worker names are SUPERVISOR.TREE.INDEX: the broker stamps them, so a
 * program linked with an older libarbor_worker can only speak for itself. */
static void s_worker_name(super_t *s, const tree_t *t, const tree_node_t *n, char *out, size_t size)
{
    snprintf(out, size, "%s.%s.%d", s->name, t->id, n->idx);
}

/* ---- messages out --------------------------------------------------------- */

static void s_reply_error(super_t *s, const env_t *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_reply_error(super_t *s, const env_t *req, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "code", code);
    cJSON_AddStringToObject(body, "message", msg);
    peer_send(s->peer, req->from, "error", body, req->id);
}

/* An event of tree t on topic KIND/ID: "tree" for every event of the
 * tree, "end" for its done event alone (clients that only wait for the end
 * are spared the tree's phase events). */
static void s_publish_on(super_t *s, const tree_t *t, const char *kind, cJSON *body)
{
    char topic[TREE_ID_MAX + 16];
    snprintf(topic, sizeof topic, "%s/%s", kind, t->id);
    cJSON_AddStringToObject(body, "topic", topic);
    cJSON_AddStringToObject(body, "tree", t->id);
    char to[TREE_ID_MAX + 32];
    snprintf(to, sizeof to, "topic:%s", topic);
    peer_send(s->peer, to, "event", body, -1);
}

/* Node n's phase or status event on tree/ID: {"kind": KIND, "path",
 * KIND: value, "t_ms" (when >= 0), "incarnation" (after a restart)}.
 * Built and sent only when someone listens there (interest.h): an
 * unwatched 1111-node cancel would build and drop ~5500 of them. */
static void s_node_event(super_t *s, const tree_t *t, const tree_node_t *n, const char *kind,
                         const char *value, int64_t t_ms)
{
    if (!interest_wanted(s->interest, t->id)) {
        s->events_unwatched++;
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "kind", kind);
    cJSON_AddStringToObject(body, "path", n->path);
    cJSON_AddStringToObject(body, kind, value);
    if (t_ms >= 0)
        cJSON_AddNumberToObject(body, "t_ms", (double) t_ms);
    if (n->incarnation)
        cJSON_AddNumberToObject(body, "incarnation", n->incarnation);
    s_publish_on(s, t, "tree", body);
}

/* Record a phase that happened at mono_ms (CLOCK_MONOTONIC, one clock per
 * host) and publish it; times from the future or before the tree are
 * clamped. */
static void s_phase_at(super_t *s, tree_t *t, tree_node_t *n, phase_t ph, int64_t mono_ms)
{
    int64_t now = clk_now_ms();
    if (mono_ms > now || mono_ms < t->started_ms)
        mono_ms = now;
    int64_t t_ms = mono_ms - t->started_ms;
    tree_node_phase(n, ph, t_ms);
    s_node_event(s, t, n, "phase", phase_name(ph), t_ms);
}

#define S_GUARANTEES_MAX (8 * sizeof(int)) /* one bit each in s->guarantees */

/* The names of the guarantees the fork-server reported, NULL-terminated;
 * returns how many. */
static int s_guarantee_names(const super_t *s, const char *names[S_GUARANTEES_MAX + 1])
{
    int n = 0;
    for (int bit = 1; bit <= FSRV_G_LAST; bit <<= 1)
        if (s->guarantees & bit)
            names[n++] = fsrv_guarantee_name(bit);
    names[n] = NULL;
    return n;
}

static void s_add_guarantees(super_t *s, cJSON *obj)
{
    const char *names[S_GUARANTEES_MAX + 1];
    int n = s_guarantee_names(s, names);
    cJSON_AddItemToObject(obj, "guarantees", cJSON_CreateStringArray(names, n));
}

/* The tree's report as JSON text (report.h), with this supervisor's
 * guarantees. NULL when out of memory. */
static char *s_report(super_t *s, const tree_t *t)
{
    const char *names[S_GUARANTEES_MAX + 1];
    s_guarantee_names(s, names);
    return report_text(t, clk_now_ms(), names);
}

/* ---- deadlines ------------------------------------------------------------ */

/* Set the timerfd for the earliest deadline. Most new deadlines are later
 * than it (a cancelled tree pushes one per node): then nothing changes. */
static void s_arm_timer(super_t *s)
{
    int64_t when = dl_next_when(s->deadlines);
    if (when == s->timer_at)
        return;
    int64_t in = dl_next_in(s->deadlines, clk_now_ms());
    struct itimerspec its = {0};
    if (in >= 0) {
        if (in == 0)
            in = 1; /* 0 would disarm */
        its.it_value.tv_sec = in / 1000;
        its.it_value.tv_nsec = (in % 1000) * 1000000;
    }
    /* Without the timer no deadline fires: teardowns could hang. */
    s->timer_at = when;
    if (timerfd_settime(s->timerfd, 0, &its, NULL) != 0) {
        log_error("timerfd_settime: %s: deadlines cannot fire; stopping", strerror(errno));
        s->exit_code = 1;
        zsys_interrupted = 1;
    }
}

static void s_deadline(super_t *s, tree_t *t, tree_node_t *n, dl_kind_t kind, int64_t in_ms)
{
    dl_entry_t e = {.when = clk_now_ms() + in_ms, .serial = t->serial,
                    .node = n ? n->idx : -1, .gen = n ? ++n->deadline_gen : 0, .kind = kind};
    if (dl_push(s->deadlines, e) != 0)
        oom_die(sizeof e); /* a teardown without its deadline could hang */
    s_arm_timer(s);
}

/* ---- the core: node events ------------------------------------------------ */

static node_conf_t s_conf(const tree_node_t *n)
{
    return (node_conf_t){.grace_ms = n->grace_ms, .kill_after_ms = n->kill_after_ms,
                         .has_children = n->nchildren > 0, .speaks_first = n->run != RUN_EXEC};
}

static void s_signal(super_t *s, tree_t *t, tree_node_t *n, int sig)
{
    (void) s;
    /* Rule 4: only through the pidfd, never a bare pid. */
    if (wfd_signal(&n->fds, sig) != 0 && errno != ESRCH)
        log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: pidfd_send_signal(%s): %s", t->id,
                 n->path, sig_name(sig), strerror(errno));
}

/* The events node_step tells a worker, over its notify fd, in this order;
 * what its socket cannot take now waits in its queue (wfd_send), behind
 * any message already waiting. A remote node is told by its supervisor. */
static void s_tell(super_t *s, tree_t *t, tree_node_t *n, unsigned tells)
{
    if (n->remote_sup[0]) {
        if (tells & NA_TELL_CANCEL)
            place_cancel(s->place, t, n);
        return;
    }
    static const struct { unsigned bit; int ev; } order[] = {
        {NA_TELL_CANCEL, LINK_EV_CANCEL}, {NA_TELL_CHILDREN_EXITED, LINK_EV_CHILDREN_EXITED}};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *text = notify_event_text(order[i].ev);
        if ((tells & order[i].bit) && wfd_send(&n->fds, s->drain, text, strlen(text)) != 0 &&
            errno != EPIPE && errno != ECONNRESET) /* those: it has exited, its exit settles it */
            log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: cannot tell it %s: %s", t->id,
                     n->path, text, strerror(errno));
    }
}

static void s_enqueue(super_t *s, tree_t *t, tree_node_t *n);
static void s_settle(super_t *s, tree_t *t, tree_node_t *n, status_t status, const char *why);

/* Ask node n (and so its subtree) to stop. */
static void s_stop(super_t *s, tree_t *t, tree_node_t *n, const char *reason)
{
    if (status_is_terminal(n->status) || n->remote_part)
        return; /* a placed subtree is stopped by the supervisor running it */
    if (!n->inc.life.stop)
        log_node(ALOG_DEBUG, t->id, n->path, "tree %s: %s: stop (%s)", t->id, n->path, reason);
    s_event(s, t, n, (node_event_t){.kind = NEV_STOP}, 0, reason);
    /* Its children may all have ended already, with nobody told: a restart
     * that was waiting for them, and that the stop has just called off. */
    if (!status_is_terminal(n->status) && tree_children_settled(n))
        s_event(s, t, n, (node_event_t){.kind = NEV_CHILDREN_ENDED}, 0, NULL);
}

/* The phase it was stuck in when SIGTERM was needed: the last it reported. */
static phase_t s_stuck_phase(const tree_node_t *n)
{
    for (int i = n->inc.nphases - 1; i >= 0; i--)
        if (n->inc.phases[i].phase != PH_TERM_SENT && n->inc.phases[i].phase != PH_KILL_SENT)
            return n->inc.phases[i].phase;
    return PH_NONE;
}

static void s_apply(super_t *s, tree_t *t, tree_node_t *n, const node_out_t *o, int64_t mono_ms,
                    const char *why)
{
    unsigned a = o->actions;
    if (a & NA_PHASE_TERM_SENT) {
        n->inc.stuck_phase = s_stuck_phase(n);
        s_phase_at(s, t, n, PH_TERM_SENT, clk_now_ms());
        log_node(ALOG_INFO, t->id, n->path,
                 "tree %s: %s did not exit within grace_ms=%lld (stuck in %s): SIGTERM", t->id,
                 n->path, (long long) n->grace_ms, phase_name(n->inc.stuck_phase));
        s->count.sigterms++;
    }
    if (a & NA_PHASE_KILL_SENT) {
        s_phase_at(s, t, n, PH_KILL_SENT, clk_now_ms());
        log_node(ALOG_INFO, t->id, n->path, "tree %s: %s still alive %lld ms after SIGTERM: SIGKILL",
                 t->id, n->path, (long long) n->kill_after_ms);
        s->count.sigkills++;
    }
    if (a & NA_SIGTERM)
        s_signal(s, t, n, SIGTERM);
    if (a & NA_SIGKILL)
        s_signal(s, t, n, SIGKILL);
    if (a & (NA_TELL_CANCEL | NA_TELL_CHILDREN_EXITED))
        s_tell(s, t, n, a & (NA_TELL_CANCEL | NA_TELL_CHILDREN_EXITED));
    if (a & NA_ARM)
        s_deadline(s, t, n, o->deadline_kind, o->deadline_ms);
    if (a & NA_PHASE_EXITED)
        s_phase_at(s, t, n, PH_EXITED, mono_ms);
    if (a & NA_START_CHILDREN)
        for (int i = 0; i < n->nchildren; i++)
            if (n->children[i]->inc.life.state == NODE_PENDING &&
                !status_is_terminal(n->children[i]->status))
                s_enqueue(s, t, n->children[i]);
    if (a & NA_STOP_CHILDREN)
        for (int i = 0; i < n->nchildren; i++)
            s_stop(s, t, n->children[i],
                   n->inc.life.end == END_SPAWN_FAILED ? "parent failed to spawn"
                   : n->inc.life.end != END_NONE       ? "parent exited"
                                                       : why ? why : "parent stopping");
    if (a & NA_RELEASE)
        wfd_release(&n->fds, s->drain);
    if (a & NA_SETTLE)
        s_settle(s, t, n, tree_node_final_status(n), why);
}

static void s_event(super_t *s, tree_t *t, tree_node_t *n, node_event_t ev, int64_t mono_ms,
                    const char *why)
{
    node_conf_t conf = s_conf(n);
    node_out_t out;
    if (node_step(&n->inc.life, &conf, ev, &out))
        s_apply(s, t, n, &out, mono_ms, why);
}

static void s_spawn_failed(super_t *s, tree_t *t, tree_node_t *n, const char *why)
{
    cJSON_Delete(n->inc.error);
    n->inc.error = cJSON_CreateObject();
    cJSON_AddStringToObject(n->inc.error, "type", "SpawnFailed");
    cJSON_AddStringToObject(n->inc.error, "message", why);
    cJSON_AddStringToObject(n->inc.error, "phase", "spawned");
    log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: spawn failed: %s", t->id, n->path, why);
    s->count.spawn_failures++;
    s_event(s, t, n, (node_event_t){.kind = NEV_SPAWN_FAILED}, 0, why);
}

/* ---- strategies and restarts ---------------------------------------------- */

static strat_parent_t s_strat_parent(const tree_node_t *p)
{
    return (strat_parent_t){.strategy = p->strategy, .max_restarts = p->max_restarts,
                            .within_ms = p->within_ms, .nchildren = p->nchildren,
                            .stopping = p->inc.life.stop || p->inc.life.state != NODE_RUNNING};
}

/* A child's failure fails p, which stops its other children. */
static void s_child_failed(super_t *s, tree_t *t, tree_node_t *p)
{
    if (p->inc.child_failed || status_is_terminal(p->status))
        return;
    p->inc.child_failed = true;
    p->inc.child_failed_phase = p->phase;
    s_stop(s, t, p, "a child failed");
}

static bool s_restart_pending(const tree_node_t *p)
{
    if (p->inc.life.stop)
        return false; /* a parent being stopped restarts nothing */
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i]->restart_wanted)
            return true;
    return false;
}

/* Once every subtree to restart has ended, start them again, in order. */
static void s_restart_ready(super_t *s, tree_t *t, tree_node_t *p)
{
    if (!s_restart_pending(p) || status_is_terminal(p->status) ||
        p->inc.life.state != NODE_RUNNING)
        return;
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i]->restart_wanted && !tree_subtree_settled(p->children[i]))
            return;
    int64_t t_ms = clk_now_ms() - t->started_ms;
    for (int i = 0; i < p->nchildren; i++) {
        tree_node_t *x = p->children[i];
        if (!x->restart_wanted)
            continue;
        tree_subtree_reset(t, x, t_ms);
        s->count.restarts++;
        s_enqueue(s, t, x);
    }
    s_pump(s);
}

/* Child c of p has ended: what p's strategy does about it. */
static void s_on_child_end(super_t *s, tree_t *t, tree_node_t *p, tree_node_t *c)
{
    if (c->restart_wanted)
        return; /* it was stopped for a restart already decided */
    int idx = 0;
    while (idx < p->nchildren && p->children[idx] != c)
        idx++;
    strat_parent_t sp = s_strat_parent(p);
    strat_decision_t d = strategy_on_child_end(&sp, &p->window, idx, c->restart,
                                               status_is_failure(c->status), clk_now_ms());
    if (d.verdict == STRAT_RESTART) {
        log_node(ALOG_INFO, t->id, c->path, "tree %s: %s %s: restarting %s (%s, %s)", t->id,
                 c->path, status_name(c->status),
                 d.first == d.last ? "it" : "it and its siblings", strategy_name(p->strategy),
                 restart_name(c->restart));
        for (int i = d.first; i <= d.last; i++) {
            p->children[i]->restart_wanted = true;
            s_stop(s, t, p->children[i], "restart");
        }
    } else if (d.verdict == STRAT_FAIL_PARENT) {
        if (d.limit_hit) {
            log_node(ALOG_INFO, t->id, p->path,
                     "tree %s: %s: more than %d restarts within %lld ms: giving up", t->id,
                     p->path, p->max_restarts, (long long) p->within_ms);
            p->restart_limit_hit = true;
        }
        s_child_failed(s, t, p);
    }
}

/* ---- terminal statuses ---------------------------------------------------- */

static void s_tree_done(super_t *s, tree_t *t)
{
    t->ended_ms = clk_now_ms();
    t->status = tree_status_of(t);
    log_info("tree %s finished: %s in %lld ms (%d nodes)", t->id, tree_status_name(t->status),
             (long long) (t->ended_ms - t->started_ms), t->nnodes);
    /* The report travels with the event: clients waiting on the tree need
     * no second round trip, and a stopping supervisor no poll to answer. */
    char *text = s_report(s, t); /* once, for both topics */
    /* end/ID always (its subscribers are not told to us); tree/ID when
     * someone listens there (a watcher, a parent supervisor of a placed
     * subtree): half a megabyte for a 1111-node tree otherwise swallowed. */
    for (int i = interest_wanted(s->interest, t->id) ? 0 : 1; i < 2; i++) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "kind", "done");
        cJSON_AddStringToObject(body, "status", tree_status_name(t->status));
        cJSON_AddItemToObject(body, "report", text ? cJSON_CreateRaw(text) : cJSON_CreateNull());
        s_publish_on(s, t, i == 0 ? "tree" : "end", body);
    }
    free(text);
    /* Forget the oldest finished trees beyond the retention limit. */
    int finished = 0;
    for (tree_t *x = zlistx_first(s->trees); x; x = zlistx_next(s->trees))
        finished += x->ended_ms != 0;
    while (finished > s->cfg.keep_finished) {
        tree_t *x = zlistx_first(s->trees);
        while (x && !x->ended_ms)
            x = zlistx_next(s->trees);
        if (!x)
            break;
        dl_forget_tree(s->deadlines, x->serial);
        zlistx_delete(s->trees, zlistx_cursor(s->trees));
        finished--;
    }
}

/* Send one JSON message to a worker over its notify fd, without blocking:
 * what its socket cannot take now waits in its queue (wfd.h), bounded, so
 * a worker that does not read cannot stall anyone. */
static void s_notify_send(super_t *s, tree_t *t, tree_node_t *n, cJSON *msg)
{
    char *text = jprint_unformatted(msg);
    if (text && strlen(text) <= NOTIFY_MSG_MAX && wfd_send(&n->fds, s->drain, text, strlen(text)) != 0 &&
        errno != EPIPE && errno != ECONNRESET)
        log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: a message to it was dropped: %s", t->id,
                 n->path, strerror(errno));
    free(text);
    cJSON_Delete(msg);
}

/* A program learns of each child's end (a builtin needs only
 * "children_exited"): {"event":"child_exited","path","status","error"}.
 * Sent whether it has spoken yet or not: its socket keeps it until it
 * reads (one that never reads fills it, and later ones are dropped). */
static void s_tell_child_exited(super_t *s, tree_t *t, tree_node_t *p, const tree_node_t *c)
{
    (void) s;
    if (p->run != RUN_EXEC || !node_state_alive(p->inc.life.state))
        return;
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "event", "child_exited");
    cJSON_AddStringToObject(msg, "path", c->path);
    cJSON_AddStringToObject(msg, "status", status_name(c->status));
    cJSON_AddItemToObject(msg, "error", c->inc.error ? cJSON_Duplicate(c->inc.error, 1)
                                                     : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(msg);
    if (text && strlen(text) > NOTIFY_MSG_MAX) { /* a huge error: its type and message only */
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "type", env_str(c->inc.error, "type") ?: "Error");
        cJSON_AddStringToObject(e, "message", "(too long for one message: see the report)");
        cJSON_ReplaceItemInObject(msg, "error", e);
    }
    free(text);
    s_notify_send(s, t, p, msg);
}

/* Node n has its terminal status: tell its watchers, its parent, the tree. */
static void s_after_settle(super_t *s, tree_t *t, tree_node_t *n)
{
    s_node_event(s, t, n, "status", status_name(n->status), -1);
    if (n->status == ST_FAILED || n->status == ST_KILLED || n->status == ST_LOST)
        log_node(ALOG_INFO, t->id, n->path, "tree %s: %s %s", t->id, n->path, status_name(n->status));
    tree_node_t *p = n->parent;
    if (p && !status_is_terminal(p->status)) {
        s_tell_child_exited(s, t, p, n);
        s_on_child_end(s, t, p, n);
        s_restart_ready(s, t, p);
        if (!status_is_terminal(p->status) && tree_children_settled(p) && !s_restart_pending(p)) {
            /* Every child has ended: one that failed fails p, whatever
             * stopped its siblings or not (temporary children). */
            for (int i = 0; i < p->nchildren && !p->inc.child_failed; i++)
                if (status_is_failure(p->children[i]->status)) {
                    p->inc.child_failed = true;
                    p->inc.child_failed_phase = p->phase;
                }
            s_event(s, t, p, (node_event_t){.kind = NEV_CHILDREN_ENDED}, 0, NULL);
        }
    }
    for (tree_node_t *a = p ? p->parent : NULL; a; a = a->parent)
        s_restart_ready(s, t, a);
    if (t->nterminal == t->nnodes && !t->ended_ms)
        s_tree_done(s, t);
}

static void s_settle(super_t *s, tree_t *t, tree_node_t *n, status_t status, const char *why)
{
    if (status_is_terminal(n->status))
        return;
    if (n->inc.life.end == END_LOST && (!n->inc.error || why)) {
        cJSON_Delete(n->inc.error);
        n->inc.error = cJSON_CreateObject();
        cJSON_AddStringToObject(n->inc.error, "type", "Lost");
        cJSON_AddStringToObject(n->inc.error, "message", why ? why : "did not die after SIGKILL");
        phase_t at = n->inc.stuck_phase != PH_NONE ? n->inc.stuck_phase : n->phase;
        cJSON_AddStringToObject(n->inc.error, "phase", phase_name(at == PH_NONE ? PH_SPAWNED : at));
        s->count.lost++;
        status = ST_LOST;
    }
    if (n->remote_sup[0]) /* never placed, or given up on: its remote part ends with it */
        tree_settle_remote_part(t, n, status == ST_LOST ? ST_LOST : ST_CANCELLED, NULL);
    char not_taken[128];
    if (tree_node_error_from_stderr(n, not_taken, sizeof not_taken))
        log_node(ALOG_INFO, t->id, n->path,
                 "tree %s: %s: error taken from its stderr (its report did not arrive)", t->id,
                 n->path);
    else if (not_taken[0])
        log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: not taken as its error: %s", t->id,
                 n->path, not_taken);
    tree_node_settle(t, n, status);
    s_after_settle(s, t, n);
}

/* ---- spawning ------------------------------------------------------------- */

static void s_enqueue(super_t *s, tree_t *t, tree_node_t *n)
{
    if (spawnq_push(s->spawnq, (spawnq_item_t){t->serial, n->idx}) != 0)
        oom_die(sizeof(spawnq_item_t));
}

static char *s_payload(super_t *s, tree_t *t, tree_node_t *n)
{
    char worker[256];
    s_worker_name(s, t, n, worker, sizeof worker);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "broker", s->broker);
    cJSON_AddStringToObject(p, "supervisor", s->name);
    cJSON_AddStringToObject(p, "tree", t->id);
    cJSON_AddStringToObject(p, "worker", worker);
    cJSON_AddStringToObject(p, "path", n->path);
    cJSON_AddBoolToObject(p, "has_children", n->nchildren > 0);
    if (!run_writes_output(n->run))
        cJSON_AddFalseToObject(p, "output"); /* no pipes: see run_writes_output */
    cJSON_AddItemReferenceToObject(p, "spec", n->params);
    if (n->run == RUN_EXEC) {
        cJSON *creds = creds_resolve(s->creds, n->params, clk_now_ms()); /* creds.h */
        if (creds)
            cJSON_AddItemToObject(p, "creds", creds);
    }
    char *text = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return text;
}

static int s_on_token(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    super_t *s = arg;
    s->token_timer = false;
    s_pump(s);
    return 0;
}

/* Feed the fork-server from the queue, SPAWN_WINDOW requests at a time. */
static void s_pump(super_t *s)
{
    spawnq_item_t item;
    while (s->inflight < SPAWN_WINDOW && !s->fsrv_gone && spawnq_peek(s->spawnq, &item)) {
        tree_t *t = s_tree_by_serial(s, item.serial);
        tree_node_t *n = t ? &t->nodes[item.idx] : NULL;
        if (!n || n->inc.life.state != NODE_PENDING || status_is_terminal(n->status)) {
            spawnq_pop(s->spawnq);
            continue;
        }
        if (n->remote_sup[0]) {
            spawnq_pop(s->spawnq);
            s_event(s, t, n, (node_event_t){.kind = NEV_REQUESTED}, 0, NULL);
            if (place_spawn(s->place, t, n) != 0)
                s_spawn_failed(s, t, n, "cannot reach the broker to ask the other supervisor");
            continue;
        }
        int64_t wait_ms = 0;
        if (!spawnq_take_token(s->spawnq, clk_now_us(), &wait_ms)) {
            if (!s->token_timer) /* over --spawn-rate: s_on_token goes on */
                s->token_timer = zloop_timer(s->loop, (size_t) wait_ms, 1, s_on_token, s) >= 0;
            return;
        }
        char *payload = s_payload(s, t, n);
        /* Anything this incarnation reports is dated after this moment;
         * reports of the one before were all dated before it. Taken before
         * the request leaves: the child may report before the send returns. */
        int64_t asked_at = clk_now_ms();
        int rc = payload ? fsrv_send_spawn(&s->fsrv, s_req(t, n), payload, strlen(payload)) : -1;
        int e = payload ? errno : ENOMEM;
        free(payload);
        if (rc != 0 && e == EAGAIN)
            return; /* the fork-server is busy: try again when it answers */
        spawnq_pop(s->spawnq);
        if (rc != 0) {
            char why[128];
            snprintf(why, sizeof why, "cannot ask the fork-server: %s", strerror(e));
            s_spawn_failed(s, t, n, why);
            continue;
        }
        n->inc.asked_mono_ms = asked_at;
        s_event(s, t, n, (node_event_t){.kind = NEV_REQUESTED}, 0, NULL);
        s->inflight++;
        s->count.spawns++;
    }
}

/* ---- placement's events --------------------------------------------------- */

static void s_place_event(void *arg, tree_t *t, tree_node_t *n, node_event_t ev, const char *why)
{
    super_t *s = arg;
    if (ev.kind == NEV_SPAWN_FAILED) {
        s_spawn_failed(s, t, n, why);
    } else if (ev.kind == NEV_REMOTE_ENDED) {
        node_conf_t conf = s_conf(n);
        node_out_t out;
        if (node_step(&n->inc.life, &conf, ev, &out) & NA_SETTLE)
            s_settle(s, t, n, (status_t) ev.status, NULL);
    } else {
        s_event(s, t, n, ev, 0, why);
    }
}

static void s_place_phase(void *arg, tree_t *t, tree_node_t *x, phase_t ph, int64_t mono_ms)
{
    s_phase_at(arg, t, x, ph, mono_ms);
}

/* ---- reports from workers ------------------------------------------------- */

static bool s_worker_phase(phase_t ph)
{
    return ph == PH_READY || ph == PH_RUNNING || ph == PH_CANCEL_REQUESTED ||
           ph == PH_CANCELLING_CHILDREN || ph == PH_CHILDREN_EXITED || ph == PH_CLEANUP ||
           ph == PH_EXITING;
}

static void s_on_dynamic(super_t *s, tree_t *t, tree_node_t *n, notify_msg_t *m);

static void s_notify_send(super_t *s, tree_t *t, tree_node_t *n, cJSON *msg);

/* A malformed spawn request that still has its "id": answer it with the
 * error, so the worker waiting for it is not left waiting. */
static bool s_refuse_bad_spawn(super_t *s, tree_t *t, tree_node_t *n, const char *data, size_t len,
                               const char *why)
{
    cJSON *msg = cJSON_ParseWithLength(data, len);
    const cJSON *id = cJSON_GetObjectItem(msg, "id");
    bool spawn = cJSON_HasObjectItem(msg, "spawn") && cJSON_IsNumber(id);
    if (spawn) {
        cJSON *reply = cJSON_CreateObject();
        cJSON_AddNumberToObject(reply, "re", id->valuedouble);
        cJSON *e = cJSON_AddObjectToObject(reply, "error");
        cJSON_AddStringToObject(e, "type", "SpawnRefused");
        cJSON_AddStringToObject(e, "message", why && *why ? why : "a malformed spawn request");
        s_notify_send(s, t, n, reply);
    }
    cJSON_Delete(msg);
    return spawn;
}

/* The last phase this incarnation reported itself (PH_NONE: none yet). */
static phase_t s_last_reported(const tree_node_t *n)
{
    for (int i = n->inc.nphases - 1; i >= 0; i--)
        if (s_worker_phase(n->inc.phases[i].phase))
            return n->inc.phases[i].phase;
    return PH_NONE;
}

/* A worker's error: recorded once, in the phase it names or the last one
 * it reported ("spawned" before any), and acted on at once. */
static void s_on_error(super_t *s, tree_t *t, tree_node_t *n, cJSON *error, phase_t ph)
{
    if (n->inc.error) {
        cJSON_Delete(error); /* its first error is the one that counts */
        return;
    }
    n->inc.error = error;
    cJSON_DeleteItemFromObject(error, "phase");
    cJSON_AddStringToObject(error, "phase", ph == PH_NONE ? "spawned" : phase_name(ph));
    log_node(ALOG_INFO, t->id, n->path, "tree %s: %s reported %s: %s", t->id, n->path,
             env_str(error, "type") ?: "an error", env_str(error, "message") ?: "");
    /* Act on a failure as soon as it is known, not at exit. */
    tree_node_t *p = n->parent;
    if (p && !status_is_terminal(p->status)) {
        strat_parent_t sp = s_strat_parent(p);
        if (strategy_fails_parent_early(&sp, n->restart))
            s_child_failed(s, t, p);
    }
}

/* One datagram from a worker's notify fd (notify.h). Whatever it is, the
 * worker has spoken: it can be told things now (NEV_HEARD). Phases only go
 * forward: a repeated or earlier one is dropped (a flood of valid phases
 * cannot grow the history). Bad messages are counted and logged for the
 * node (the 1st, 2nd, 4th, ...: a flood cannot flood the log), never fatal. */
static void s_on_notify(super_t *s, tree_t *t, tree_node_t *n, const char *data, size_t len)
{
    if (wfd_queued(&n->fds)) /* it reads its socket too, now: send what waits */
        wfd_flush(&n->fds, s->drain);
    notify_msg_t m;
    notify_kind_t kind = notify_parse(data, len, &m);
    log_debug("notify %s: %.*s", n->path, (int) (len < 512 ? len : 512), data);
    if (!node_state_alive(n->inc.life.state)) {
        notify_msg_clear(&m);
        return;
    }
    phase_t last = s_last_reported(n);
    if (kind == NOTIFY_PHASE && phase_parse(m.phase) <= last) {
        kind = NOTIFY_UNKNOWN;
        snprintf(m.why, sizeof m.why, "\"%s\" after \"%s\": phases only go forward", m.phase,
                 phase_name(last));
    }
    s_event(s, t, n, (node_event_t){.kind = NEV_HEARD}, 0, NULL);
    /* The worker's own clock dates what it says (our libraries send it):
     * reports read at its exit still land in order. */
    int64_t at = m.t_mono_ms >= 0 ? m.t_mono_ms : clk_now_ms();
    if (kind == NOTIFY_PHASE) {
        phase_t ph = phase_parse(m.phase);
        s_phase_at(s, t, n, ph, at);
        if (ph == PH_CANCELLING_CHILDREN && !n->inc.life.stop)
            for (int i = 0; i < n->nchildren; i++) /* its own work ended: it stops its children */
                s_stop(s, t, n->children[i], "parent finished");
    } else if (kind == NOTIFY_ERROR) {
        s_on_error(s, t, n, m.error, m.phase[0] ? phase_parse(m.phase) : last);
        m.error = NULL;
    } else if (kind == NOTIFY_SPAWN || kind == NOTIFY_CANCEL_REQ) {
        s_on_dynamic(s, t, n, &m);
    } else if (kind == NOTIFY_MALFORMED && s_refuse_bad_spawn(s, t, n, data, len, m.why)) {
        ; /* a spawn request it can match to its answer */
    } else {
        n->inc.bad_messages++;
        s->count.bad_notify++;
        if ((n->inc.bad_messages & (n->inc.bad_messages - 1)) == 0)
            log_node(ALOG_WARN, t->id, n->path,
                     "tree %s: %s: %s message on its notify fd (%zu bytes: %s); %llu so far", t->id,
                     n->path, notify_kind_name(kind), len, m.why,
                     (unsigned long long) n->inc.bad_messages);
    }
    notify_msg_clear(&m);
}

/* A worker's notify socket has room again: send what waits for it (no
 * polling: the drain watches for room only while something waits). */
static bool s_on_writable(void *arg, uint64_t key)
{
    super_t *s = arg;
    tree_t *t;
    tree_node_t *n = s_node_by_req(s, WFD_KEY_REQ(key), &t);
    if (!n || WFD_KEY_WHICH(key) != WFD_NOTIFY)
        return false;
    wfd_flush(&n->fds, s->drain);
    return wfd_queued(&n->fds) > 0;
}

/* Each message of one datagram from a worker, in order (notify_next). */
static void s_on_datagram(super_t *s, uint64_t key, const char *data, size_t len)
{
    const char *msg;
    size_t msg_len;
    while (notify_next(&data, &len, &msg, &msg_len)) {
        tree_t *t;
        tree_node_t *n = s_node_by_req(s, WFD_KEY_REQ(key), &t); /* the last may have moved it */
        if (!n)
            return;
        s_on_notify(s, t, n, msg, msg_len);
    }
}

static void s_on_output(void *arg, uint64_t key, const char *data, size_t len, bool eof)
{
    super_t *s = arg;
    tree_t *t;
    tree_node_t *n = s_node_by_req(s, WFD_KEY_REQ(key), &t);
    int which = WFD_KEY_WHICH(key);
    /* Every line is the node's, even from the pipe of an earlier
     * incarnation that a restart has replaced. */
    int idx = s_req_idx(WFD_KEY_REQ(key));
    if (which != WFD_NOTIFY && t && idx < t->nnodes)
        nodelog_output(&s->cfg.logs, t, &t->nodes[idx],
                       which == WFD_ERR ? LOGBUF_STDERR : LOGBUF_STDOUT, data, len, eof,
                       clk_now_ms());
    if (!n)
        return;
    if (eof)
        wfd_closed(&n->fds, which);
    else if (which == WFD_NOTIFY)
        s_on_datagram(s, key, data, len);
    else if (which == WFD_ERR)
        tree_node_tail_append(n, data, len);
    else
        n->inc.out_bytes += len;
}

static int s_on_drain(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    drain_ready(((super_t *) arg)->drain);
    return 0;
}

/* ---- fork-server events --------------------------------------------------- */

static void s_on_spawned(super_t *s, fsrv_event_t *ev)
{
    tree_t *t;
    tree_node_t *n = s_node_by_req(s, ev->hdr.req, &t);
    if (!n || ev->nfds < 3 || n->inc.life.state != NODE_REQUESTED) {
        /* Not ours any more: the fork-server will report its exit. */
        for (int i = 0; i < ev->nfds; i++)
            if (ev->fds[i] >= 0)
                close(ev->fds[i]);
        return;
    }
    n->inc.pid = ev->hdr.pid;
    n->status = ST_RUNNING;
    /* Without these its output could block it and its reports go unread:
     * say so; its deadlines still bound its teardown. */
    if (wfd_adopt(&n->fds, s->drain, ev->hdr.req, ev->fds, ev->nfds) != 0)
        log_node(ALOG_ERROR, t->id, n->path, "tree %s: %s: cannot watch its pipes and notify fd: %s",
                 t->id, n->path, strerror(errno));
    s_phase_at(s, t, n, PH_SPAWNED, ev->hdr.mono_ms);
    s_event(s, t, n, (node_event_t){.kind = NEV_SPAWNED}, 0, NULL);
    /* No children, or all ended before it was even forked. */
    if (!status_is_terminal(n->status) && tree_children_settled(n))
        s_event(s, t, n, (node_event_t){.kind = NEV_CHILDREN_ENDED}, 0, NULL);
}

static void s_on_exited(super_t *s, fsrv_event_t *ev)
{
    s->exits_unacked++; /* acknowledged once per batch (s_on_fsrv) */
    tree_t *t;
    tree_node_t *n = s_node_by_req(s, ev->hdr.req, &t);
    if (!n || n->inc.pid != ev->hdr.pid || !node_state_alive(n->inc.life.state))
        return;
    /* What it said before it ended is handled before its end, and what it
     * wrote is in its logs when it settles (a partial last line too). */
    unsigned ended = wfd_drain_final(&n->fds, s->drain, ev->hdr.req);
    /* What it said may have grown the tree (a last spawn): n moved. */
    n = s_node_by_req(s, ev->hdr.req, &t);
    if (!n || n->inc.pid != ev->hdr.pid)
        return;
    for (int which = WFD_OUT; which <= WFD_ERR; which++)
        if (ended & (1u << which))
            nodelog_output(&s->cfg.logs, t, n, which == WFD_OUT ? LOGBUF_STDOUT : LOGBUF_STDERR,
                           NULL, 0, true, clk_now_ms());
    if (!node_state_alive(n->inc.life.state))
        return;
    s->count.exits++;
    n->inc.escaped = ev->hdr.escaped; /* what its node left behind, killed at its end */
    s_event(s, t, n, (node_event_t){.kind = NEV_EXITED, .wait_status = ev->hdr.status},
            ev->hdr.mono_ms, NULL);
}

static int s_on_fsrv(zloop_t *loop, zmq_pollitem_t *item, void *arg);

/* A supervisor without a fork-server cannot keep its promises: start a new
 * one (fork + exec: this process has threads now), unless they keep dying. */
static void s_fsrv_replace(super_t *s)
{
    zmq_pollitem_t old = {NULL, s->fsrv.fd, ZMQ_POLLIN, 0};
    zloop_poller_end(s->loop, &old);
    close(s->fsrv.fd);
    waitpid(s->fsrv.pid, NULL, 0); /* it is dead: the channel closed */
    if (s->stopping) {
        zsys_interrupted = 1; /* stopping anyway: no new one */
        return;
    }
    /* Restart intensity, as for workers: FSRV_MAX_RESTARTS deaths within
     * FSRV_RESTART_WINDOW_MS and something is wrong with this host. */
    int64_t now = clk_now_ms();
    if (now - s->fsrv_window_start >= FSRV_RESTART_WINDOW_MS) {
        s->fsrv_window_start = now;
        s->fsrv_restarts = 0;
    }
    if (++s->fsrv_restarts > FSRV_MAX_RESTARTS) {
        log_error("the fork-server died %d times within %d ms: stopping", s->fsrv_restarts,
                  FSRV_RESTART_WINDOW_MS);
        s->exit_code = 1;
        zsys_interrupted = 1; /* ends zloop_start after this handler */
        return;
    }
    zmq_pollitem_t fs = {NULL, -1, ZMQ_POLLIN, 0};
    if (fsrv_start(&s->fsrv) != 0 || (fs.fd = s->fsrv.fd, zloop_poller(s->loop, &fs, s_on_fsrv, s)) != 0) {
        log_error("cannot start a new fork-server: %s: stopping", strerror(errno));
        s->exit_code = 1;
        zsys_interrupted = 1;
        return;
    }
    s->fsrv_gone = false;
    s->inflight = 0;
    log_warn("started a new fork-server, pid %d", (int) s->fsrv.pid);
}

/* Every node that is not yet terminal ends now, leaves first: those that
 * had a process are lost (why says why), those that never started are
 * cancelled. Placed subtrees too when `placed` (the supervisor stops). */
static void s_abandon(super_t *s, const char *why, bool placed)
{
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees)) {
        void *cursor = zlistx_cursor(s->trees);
        for (int i = t->nnodes - 1; i >= 0 && !t->ended_ms; i--) {
            tree_node_t *n = &t->nodes[i];
            if (status_is_terminal(n->status) || n->remote_part)
                continue;
            /* A placed node is the other supervisor's and place.c's: the
             * fork-server never had it (and place.c still holds it). */
            if (n->remote_sup[0] && !placed)
                continue;
            if (n->inc.life.state == NODE_REMOTE && placed) {
                n->inc.life.end = END_LOST;
                s_place_event(s, t, n, (node_event_t){.kind = NEV_REMOTE_ENDED, .status = ST_LOST},
                              why);
            } else {
                s_event(s, t, n, (node_event_t){.kind = NEV_LOST}, 0, why);
            }
        }
        /* Ending a tree may have dropped an old one: stay on this one. */
        zlistx_first(s->trees);
        while (zlistx_cursor(s->trees) != cursor && zlistx_next(s->trees))
            ;
    }
}

static void s_fsrv_lost(super_t *s)
{
    s->fsrv_gone = true;
    log_error("the fork-server died: its workers died with it (PDEATHSIG); marking them lost");
    s_abandon(s, "the fork-server died; no exit status can be known", false);
    sweep_descendants(s->fsrv.pid); /* orphans adopted by us, the second subreaper */
    s_fsrv_replace(s);
}

/* The fork-server says which guarantees it could arm: log them once, and
 * put them in every report. */
static void s_on_fsrv_ready(super_t *s, int flags)
{
    char active[200] = "", missing[200] = "";
    s->guarantees = flags;
    for (int bit = 1; bit <= FSRV_G_LAST; bit <<= 1) {
        char *to = (flags & bit) ? active : missing;
        size_t used = strlen(to);
        snprintf(to + used, sizeof active - used, "%s%s", used ? ", " : "", fsrv_guarantee_name(bit));
    }
    log_info("fork-server ready; guarantees active: %s%s%s", active[0] ? active : "none",
             missing[0] ? "; MISSING: " : "", missing);
}

static int s_on_fsrv(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    super_t *s = arg;
    for (int budget = 256; budget > 0; budget--) {
        fsrv_event_t ev;
        int rc = fsrv_recv(&s->fsrv, &ev);
        if (rc == 0)
            break;
        if (rc < 0) {
            s_fsrv_lost(s);
            return zsys_interrupted ? -1 : 0;
        }
        if (ev.hdr.type == FSRV_SPAWNED || ev.hdr.type == FSRV_SPAWN_FAILED)
            s->inflight--;
        if (ev.hdr.type == FSRV_SPAWNED) {
            s_on_spawned(s, &ev);
        } else if (ev.hdr.type == FSRV_SPAWN_FAILED) {
            tree_t *t;
            tree_node_t *n = s_node_by_req(s, ev.hdr.req, &t);
            if (n && n->inc.life.state == NODE_REQUESTED)
                s_spawn_failed(s, t, n, ev.text);
        } else if (ev.hdr.type == FSRV_EXITED) {
            s_on_exited(s, &ev);
        } else if (ev.hdr.type == FSRV_READY) {
            s_on_fsrv_ready(s, ev.hdr.status);
        }
    }
    if (s->exits_unacked && fsrv_send_ack(&s->fsrv, s->exits_unacked) == 0)
        s->exits_unacked = 0; /* else (socket full) with the next batch */
    s_pump(s);
    return 0;
}

/* ---- deadlines firing ----------------------------------------------------- */

static int s_on_timer(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    super_t *s = arg;
    uint64_t ticks;
    if (read(s->timerfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
        log_warn("timerfd read: %s", strerror(errno));
    s->timer_at = -1; /* it fired: disarmed until set again below */
    dl_entry_t e;
    while (dl_pop_due(s->deadlines, clk_now_ms(), &e)) {
        tree_t *t = s_tree_by_serial(s, e.serial);
        if (!t)
            continue;
        if (e.kind == DL_TREE_TIMEOUT) {
            if (!t->ended_ms && !t->nodes[0].inc.life.stop) {
                log_info("tree %s: timeout_ms=%lld reached: cancelling", t->id,
                         (long long) t->timeout_ms);
                snprintf(t->reason, sizeof t->reason, "timeout");
                s_stop(s, t, &t->nodes[0], "timeout");
            }
            continue;
        }
        tree_node_t *n = &t->nodes[e.node];
        if (e.gen == n->deadline_gen) /* else superseded */
            s_event(s, t, n, (node_event_t){.kind = NEV_DEADLINE}, 0, NULL);
    }
    s_arm_timer(s);
    s_pump(s);
    return 0;
}

/* ---- dynamic children ----------------------------------------------------- */

/* Worker processes of the running trees (their nodes not yet ended);
 * *running, when asked, counts those trees. */
static int s_processes(super_t *s, int *running)
{
    int processes = 0, trees = 0;
    for (tree_t *x = zlistx_first(s->trees); x; x = zlistx_next(s->trees))
        if (!x->ended_ms) {
            trees++;
            processes += x->nnodes - x->nterminal;
        }
    if (running)
        *running = trees;
    return processes;
}

/* Add the subtree `node` (a tree-spec node) under t's node idx while it
 * runs: validated like any spec, with the limits counted on the whole
 * tree; refused under a node that is not running or is being stopped.
 * Returns the index of the first new node (its top nodes are queued), or
 * -1 with why (code: the error code for a client). */
static int s_add_children(super_t *s, tree_t *t, int idx, const cJSON *node, const char **code,
                          char *why, size_t size)
{
    tree_node_t *n = &t->nodes[idx];
    *code = "bad_request";
    if (t->ended_ms || status_is_terminal(n->status) || n->inc.life.state != NODE_RUNNING ||
        n->inc.life.stop) {
        snprintf(why, size, "%s is not running, or is stopping: no new children", n->path);
        return -1;
    }
    if (!cJSON_IsObject(node)) {
        *code = "invalid_spec";
        snprintf(why, size, "the child must be a tree-spec node (a JSON object)");
        return -1;
    }
    /* Validate it as the only child of a stand-in for n, with what the
     * tree has left of the limits. */
    spec_limits_t lim = s->cfg.limits;
    lim.max_depth -= tree_node_depth(n) - 1;
    lim.max_nodes -= t->nnodes - 1;
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddStringToObject(wrap, "name", n->name);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(wrap, "children"), cJSON_Duplicate(node, 1));
    spec_err_t err = {0};
    tree_t *w = lim.max_depth > 1 && lim.max_nodes > 1
                    ? spec_build(wrap, t->id, t->serial, s->name, &lim, &err)
                    : NULL;
    cJSON_Delete(wrap);
    if (!w) {
        *code = "invalid_spec";
        if (lim.max_depth <= 1 || lim.max_nodes <= 1)
            snprintf(why, size, "%s: the tree is at its limit (%d levels, %d nodes)", n->path,
                     s->cfg.limits.max_depth, s->cfg.limits.max_nodes);
        else
            snprintf(why, size, "invalid spec at %s%s%s: %s", n->parent ? n->parent->path : "",
                     n->parent ? "/" : "", err.path, err.message);
        return -1;
    }
    for (int i = 0; i < w->nodes[0].nchildren; i++)
        for (int k = 0; k < n->nchildren; k++)
            if (!strcmp(w->nodes[0].children[i]->name, n->children[k]->name)) {
                *code = "invalid_spec";
                snprintf(why, size, "%s already has a child named \"%s\"", n->path,
                         n->children[k]->name);
                tree_destroy(&w);
                return -1;
            }
    if (s_processes(s, NULL) + w->nnodes - 1 > s->cfg.max_processes) {
        *code = "limit_exceeded";
        snprintf(why, size, "%d more processes would take supervisor %s over --max-processes %d",
                 w->nnodes - 1, s->name, s->cfg.max_processes);
        tree_destroy(&w);
        return -1;
    }
    int ntop = w->nodes[0].nchildren;
    int first = tree_adopt(t, idx, &w);
    if (first < 0)
        oom_die(sizeof(tree_node_t));
    n = &t->nodes[idx]; /* the array moved */
    s_event(s, t, n, (node_event_t){.kind = NEV_CHILD_ADDED}, 0, NULL);
    log_node(ALOG_INFO, t->id, n->path, "tree %s: %s: %d node(s) added under it, first %s", t->id,
             n->path, t->nnodes - first, t->nodes[first].path);
    for (int i = n->nchildren - ntop; i < n->nchildren; i++)
        s_enqueue(s, t, n->children[i]);
    s_pump(s);
    return first;
}

/* {"spawn": NODE, "id": N} -> {"re": N, "path"} or {"re": N, "error"};
 * {"cancel": PATH}: one of its own descendants. */
static void s_on_dynamic(super_t *s, tree_t *t, tree_node_t *n, notify_msg_t *m)
{
    int idx = n->idx;
    cJSON *reply = cJSON_CreateObject();
    char why[600];
    if (m->kind == NOTIFY_CANCEL_REQ) {
        tree_node_t *x = m->path ? tree_find_path(t, m->path) : NULL;
        if (x && tree_node_below(x, n)) {
            log_node(ALOG_INFO, t->id, x->path, "tree %s: %s: cancel asked by %s", t->id, x->path,
                     n->path);
            s_stop(s, t, x, "cancel asked by an ancestor");
            cJSON_Delete(reply);
            return;
        }
        snprintf(why, sizeof why, "\"%s\" is not a node below %s", m->path ? m->path : "",
                 n->path);
        cJSON_AddStringToObject(reply, "cancel", m->path ? m->path : "");
    } else {
        cJSON_AddNumberToObject(reply, "re", (double) m->id);
        const char *code;
        int first = s_add_children(s, t, idx, m->node, &code, why, sizeof why);
        n = &t->nodes[idx];
        if (first >= 0) {
            cJSON_AddStringToObject(reply, "path", t->nodes[first].path);
            cJSON *paths = cJSON_AddArrayToObject(reply, "paths");
            for (int i = 0; i < n->nchildren; i++)
                if (n->children[i]->idx >= first)
                    cJSON_AddItemToArray(paths, cJSON_CreateString(n->children[i]->path));
            s_notify_send(s, t, n, reply);
            return;
        }
    }
    log_node(ALOG_INFO, t->id, n->path, "tree %s: %s: refused: %s", t->id, n->path, why);
    cJSON *e = cJSON_AddObjectToObject(reply, "error");
    cJSON_AddStringToObject(e, "type", "SpawnRefused");
    cJSON_AddStringToObject(e, "message", why);
    s_notify_send(s, t, n, reply);
}

/* ---- requests from clients, one handler each ------------------------------ */

/* spawn {"under": "PATH", "tree": ID, "spec": NODE}: a subtree under a
 * running node of an existing tree (arborctl spawn --under). */
static void s_handle_spawn_under(super_t *s, env_t *req, const char *under)
{
    const char *id = env_str(req->body, "tree");
    tree_t *t = s_tree_by_id(s, id);
    tree_node_t *n = t ? tree_find_path(t, under) : NULL;
    if (!n) {
        s_reply_error(s, req, "not_found", "supervisor %s has no %s \"%s%s%s\"", s->name,
                      t ? "node" : "tree", id ?: "", t ? "/" : "", t ? under : "");
        return;
    }
    const char *code;
    char why[600];
    int first = s_add_children(s, t, n->idx, cJSON_GetObjectItem(req->body, "spec"), &code, why,
                               sizeof why);
    if (first < 0) {
        s_reply_error(s, req, code, "%s", why);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", t->id);
    cJSON_AddStringToObject(body, "path", t->nodes[first].path);
    peer_send(s->peer, req->from, "spawned", body, req->id);
}


/* A spec refused before anything was spawned: invalid_spec, with the path
 * of the offending node; counted, and logged within a budget. */
static void s_reply_invalid_spec(super_t *s, const env_t *req, const spec_err_t *err)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "code", "invalid_spec");
    cJSON_AddStringToObject(body, "message", err->message);
    cJSON_AddStringToObject(body, "path", err->path);
    peer_send(s->peer, req->from, "error", body, req->id);
    s->count.rejected++;
    if (log_budget_take(&s->reject_log, 5, clk_now_ms(), "rejected specs"))
        log_info("rejected a spec from %s: %s: %s", req->from, err->path, err->message);
}

static void s_handle_spawn(super_t *s, env_t *req)
{
    if (s->stopping) {
        s_reply_error(s, req, "unavailable", "supervisor %s is stopping", s->name);
        return;
    }
    const char *under = env_str(req->body, "under");
    if (under && !req->nul_pointer[0]) {
        s_handle_spawn_under(s, req, under);
        return;
    }
    const cJSON *spec = cJSON_GetObjectItem(req->body, "spec");
    /* A \u0000 anywhere in the request: cJSON would cut the string there. */
    if (req->nul_pointer[0]) {
        spec_err_t err = {"(spec)", "a string holds \\u0000 (NUL), which arbor refuses"};
        if (strncmp(req->nul_pointer, "/body/spec/", 11) == 0)
            spec_refuse_nul(spec, req->nul_pointer + 10, &err);
        s_reply_invalid_spec(s, req, &err);
        return;
    }
    const char *id = env_str(req->body, "tree");
    char idbuf[TREE_ID_MAX + 1];
    if (id && !env_name_valid(id, TREE_ID_MAX)) {
        s_reply_error(s, req, "bad_request", "tree id \"%.80s\" must match [A-Za-z0-9_.-]{1,%d}",
                      id, TREE_ID_MAX);
        return;
    }
    if (id && s_tree_by_id(s, id)) {
        s_reply_error(s, req, "bad_request", "tree id \"%s\" is already in use", id);
        return;
    }
    if (!id) {
        /* NAME.RANDOM: the id names its supervisor, so clients go straight
         * to it (the random part has no dot). */
        char rnd[17];
        peer_random_id(rnd, sizeof rnd);
        size_t len = strlen(s->name);
        if (len + 1 + strlen(rnd) <= TREE_ID_MAX) {
            memcpy(idbuf, s->name, len);
            idbuf[len] = '.';
            memcpy(idbuf + len + 1, rnd, strlen(rnd) + 1);
        } else {
            memcpy(idbuf, rnd, strlen(rnd) + 1);
        }
        id = idbuf;
    }
    int running;
    int processes = s_processes(s, &running);
    if (running >= s->cfg.max_trees) {
        s->count.rejected++;
        s_reply_error(s, req, "limit_exceeded", "supervisor %s already runs %d trees (--max-trees)",
                      s->name, running);
        return;
    }
    spec_err_t err = {0};
    tree_t *t = spec ? spec_build(spec, id, s->next_serial, s->name, &s->cfg.limits, &err) : NULL;
    if (t && processes + t->nnodes > s->cfg.max_processes) {
        s->count.rejected++;
        s_reply_error(s, req, "limit_exceeded",
                      "a tree of %d nodes would take supervisor %s to %d processes "
                      "(--max-processes %d)", t->nnodes, s->name, processes + t->nnodes,
                      s->cfg.max_processes);
        tree_destroy(&t);
        return;
    }
    if (!t) {
        if (!spec)
            err = (spec_err_t){"(spec)", "body.spec: missing"};
        s_reply_invalid_spec(s, req, &err);
        return;
    }
    if (!zlistx_add_end(s->trees, t))
        oom_die(sizeof(void *));
    s->next_serial++;
    s->count.trees++;
    t->started_ms = clk_now_ms();
    log_info("tree %s: spawning %d nodes for %s", t->id, t->nnodes, req->from);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", t->id);
    peer_send(s->peer, req->from, "spawned", body, req->id);
    if (t->timeout_ms > 0)
        s_deadline(s, t, NULL, DL_TREE_TIMEOUT, t->timeout_ms);
    s_enqueue(s, t, &t->nodes[0]);
    s_pump(s);
}

static void s_handle_status(super_t *s, env_t *req)
{
    tree_t *t = s_tree_by_id(s, env_str(req->body, "tree"));
    if (!t) {
        s_reply_error(s, req, "not_found", "supervisor %s has no tree \"%s\"", s->name,
                      env_str(req->body, "tree") ?: "");
        return;
    }
    char *text = s_report(s, t);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "report", text ? cJSON_CreateRaw(text) : cJSON_CreateNull());
    free(text);
    peer_send(s->peer, req->from, "report", body, req->id);
}

static void s_handle_cancel(super_t *s, env_t *req)
{
    const char *id = env_str(req->body, "tree");
    const char *path = env_str(req->body, "path");
    tree_t *t = s_tree_by_id(s, id);
    tree_node_t *n = t ? (path ? tree_find_path(t, path) : &t->nodes[0]) : NULL;
    if (!n) {
        s_reply_error(s, req, "not_found", "supervisor %s has no %s \"%s%s%s\"", s->name,
                      t ? "node" : "tree", id ?: "", path ? "/" : "", path ?: "");
        return;
    }
    if (!path && !t->reason[0] && !t->ended_ms)
        snprintf(t->reason, sizeof t->reason, "cancel");
    log_info("tree %s: cancel %s requested by %s", t->id, n->path, req->from);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", t->id);
    cJSON_AddStringToObject(body, "path", n->path);
    cJSON_AddStringToObject(body, "status", status_name(n->status));
    if (t->ended_ms) /* nothing to stop: say how it ended */
        cJSON_AddStringToObject(body, "tree_status", tree_status_name(t->status));
    peer_send(s->peer, req->from, "cancelling", body, req->id);
    s_stop(s, t, n, "cancel requested");
}

/* A tree's output lines; logs_req.c answers. */
static void s_handle_logs(super_t *s, env_t *req)
{
    const char *id = env_str(req->body, "tree");
    tree_t *t = s_tree_by_id(s, id);
    const char *code = "not_found";
    char why[300] = "";
    cJSON *body = t ? logs_req_reply(t, req->body, &code, why, sizeof why) : NULL;
    if (body)
        peer_send(s->peer, req->from, "logs", body, req->id);
    else if (!t)
        s_reply_error(s, req, "not_found", "supervisor %s has no tree \"%s\"", s->name, id ?: "");
    else
        s_reply_error(s, req, code, "tree %s: %s", t->id, why);
}

static void s_handle_list(super_t *s, env_t *req)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(body, "trees");
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees)) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "tree", t->id);
        cJSON_AddStringToObject(o, "status", tree_status_name(tree_status_of(t)));
        cJSON_AddStringToObject(o, "root", t->nodes[0].name);
        cJSON_AddNumberToObject(o, "nodes", t->nnodes);
        cJSON_AddItemToArray(list, o);
    }
    s_add_guarantees(s, body);
    peer_send(s->peer, req->from, "trees", body, req->id);
}

static void s_handle_stats(super_t *s, env_t *req)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "role", "supervisor");
    cJSON *c = cJSON_AddObjectToObject(body, "counters");
    cJSON_AddNumberToObject(c, "trees_spawned", (double) s->count.trees);
    cJSON_AddNumberToObject(c, "specs_rejected", (double) s->count.rejected);
    cJSON_AddNumberToObject(c, "spawns", (double) s->count.spawns);
    cJSON_AddNumberToObject(c, "spawn_failures", (double) s->count.spawn_failures);
    cJSON_AddNumberToObject(c, "exits", (double) s->count.exits);
    cJSON_AddNumberToObject(c, "sigterms_sent", (double) s->count.sigterms);
    cJSON_AddNumberToObject(c, "sigkills_sent", (double) s->count.sigkills);
    cJSON_AddNumberToObject(c, "lost", (double) s->count.lost);
    cJSON_AddNumberToObject(c, "restarts", (double) s->count.restarts);
    cJSON_AddNumberToObject(c, "bad_notify_messages", (double) s->count.bad_notify);
    cJSON_AddNumberToObject(c, "events_unwatched", (double) s->events_unwatched);
    cJSON_AddNumberToObject(c, "broker_sends_dropped", (double) peer_dropped(s->peer));
    int running = 0, alive = 0;
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees)) {
        running += !t->ended_ms;
        for (int i = 0; !t->ended_ms && i < t->nnodes; i++)
            alive += node_state_alive(t->nodes[i].inc.life.state);
    }
    cJSON_AddNumberToObject(c, "trees_running", running);
    cJSON_AddNumberToObject(c, "trees_kept", (double) zlistx_size(s->trees));
    cJSON_AddNumberToObject(c, "processes", alive);
    cJSON_AddNumberToObject(c, "spawn_queue", (double) spawnq_size(s->spawnq));
    cJSON_AddNumberToObject(c, "placements", place_count(s->place));
    s_add_guarantees(s, body);
    peer_send(s->peer, req->from, "stats", body, req->id);
}

static void s_handle_event(super_t *s, env_t *msg)
{
    if (!strcmp(msg->from, "broker") && !strcmp(env_str(msg->body, "kind") ?: "", "interest")) {
        if (interest_apply(s->interest, msg->body) != 0)
            log_warn("a malformed interest event from the broker: every tree event is sent");
    } else if (!strcmp(msg->from, "broker"))
        place_on_peer_lost(s->place, msg);
    else
        place_on_event(s->place, msg);
}

static void s_handle_spawned(super_t *s, env_t *msg) { place_on_spawned(s->place, msg); }
static void s_handle_report(super_t *s, env_t *msg) { place_on_report(s->place, msg); }
static void s_handle_ack(super_t *s, env_t *msg) { (void) s, (void) msg; }

static void s_handle_error(super_t *s, env_t *msg)
{
    if (!place_on_error(s->place, msg))
        log_debug("broker error for message %lld: %s: %s", (long long) msg->re,
                  env_str(msg->body, "code") ?: "?", env_str(msg->body, "message") ?: "");
}

typedef void (s_handler_fn)(super_t *s, env_t *msg);
static const struct {
    const char *type;
    s_handler_fn *fn;
} s_handlers[] = {
    {"spawn", s_handle_spawn},     {"status", s_handle_status}, {"cancel", s_handle_cancel},
    {"list", s_handle_list},       {"stats", s_handle_stats},
    {"spawned", s_handle_spawned}, {"report", s_handle_report}, {"event", s_handle_event},
    {"error", s_handle_error},     {"cancelling", s_handle_ack}, {"subscribed", s_handle_ack},
    {"logs", s_handle_logs},
};

static void s_dispatch(super_t *s, env_t *msg)
{
    for (size_t i = 0; i < sizeof s_handlers / sizeof s_handlers[0]; i++)
        if (!strcmp(msg->type, s_handlers[i].type)) {
            s_handlers[i].fn(s, msg);
            return;
        }
    if (strcmp(msg->from, "broker") != 0) /* never answer the broker's own */
        s_reply_error(s, msg, "bad_request", "a supervisor does not handle \"%s\"", msg->type);
}

static bool s_all_done(super_t *s);

/* The broker refused our hello (our CURVE key may not register this name
 * or role). Retrying cannot help: with no tree to look
 * after, stop with exit code 3 and the broker's reason. Trees that run
 * keep running (they need no broker); the refusal is logged meanwhile. */
static bool s_hello_refused(super_t *s, const env_t *msg)
{
    if (strcmp(msg->type, "error") || strcmp(msg->from, "broker") ||
        strcmp(env_str(msg->body, "code") ?: "", "forbidden") ||
        strcmp(env_str(msg->body, "type") ?: "", "hello") || !s_all_done(s))
        return false;
    log_error("the broker %s refused to register supervisor %s: %s: stopping (exit 3)",
              s->broker, s->name, env_str(msg->body, "message") ?: "forbidden");
    s->exit_code = 3;
    return true;
}

static int s_on_broker(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    (void) sock;
    super_t *s = arg;
    for (int budget = 512; budget > 0; budget--) {
        if (!(zsock_events(peer_sock(s->peer)) & ZMQ_POLLIN))
            break;
        env_t *msg = peer_recv(s->peer);
        if (!s->registered && peer_welcomed(s->peer)) {
            s->registered = true;
            log_info("registered with broker %s as %s", s->broker, s->name);
            if (sdnotify_ready("registered with the broker") != 0) /* systemd/: Type=notify */
                log_warn("cannot notify systemd (NOTIFY_SOCKET): %s", strerror(errno));
        } else if (s->registered && !peer_welcomed(s->peer)) {
            s->registered = false;
        }
        if (msg && s_hello_refused(s, msg)) {
            env_destroy(&msg);
            return -1; /* the broker will not have us: nothing to retry */
        }
        if (msg)
            s_dispatch(s, msg);
        env_destroy(&msg);
    }
    s_pump(s);
    return 0;
}

/* ---- signals, ticks, stopping --------------------------------------------- */

static bool s_all_done(super_t *s)
{
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees))
        if (!t->ended_ms)
            return false;
    return true;
}

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    super_t *s = arg;
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
        if (s->stopping) {
            /* Stop now. Every tree's report goes out as it stands: what
             * could not be waited for is lost (the fork-server stops it). */
            log_warn("second %s: stopping now; the fork-server stops the workers",
                     sig_name((int) si.ssi_signo));
            s_abandon(s, "the supervisor was stopped before this node ended (second signal)",
                      true);
            return -1;
        }
        s->stopping = true;
        s->stop_deadline = clk_now_ms() + s->cfg.stop_deadline_ms;
        log_info("%s: cancelling every tree, then stopping (at most %d ms)",
                 sig_name((int) si.ssi_signo), s->cfg.stop_deadline_ms);
        for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees))
            if (!t->ended_ms) {
                snprintf(t->reason, sizeof t->reason, "supervisor stopping");
                s_stop(s, t, &t->nodes[0], "supervisor stopping");
            }
    }
    /* Every tree has ended (their reports went out with their "done"):
     * stop now. Otherwise the tick stops once they have. */
    return s_all_done(s) ? -1 : 0;
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    super_t *s = arg;
    int64_t now = clk_now_ms();
    /* Registered: a heartbeat a second. Not yet: say hello every tick. */
    if (!peer_welcomed(s->peer) || now >= s->next_beat) {
        peer_tick(s->peer);
        s->next_beat = now + PEER_HEARTBEAT_MS;
    }
    place_tick(s->place, now);
    s_pump(s);
    if (s->stopping && now >= s->stop_deadline) {
        s_abandon(s, "the supervisor stopped (--stop-deadline) before this node ended", true);
        return -1;
    }
    return s->stopping && s_all_done(s) ? -1 : 0;
}

/* ---- life ----------------------------------------------------------------- */

static void s_tree_free(void **item)
{
    tree_destroy((tree_t **) item);
}

static int s_poll_fd(super_t *s, int fd, zloop_fn *fn)
{
    zmq_pollitem_t item = {NULL, fd, ZMQ_POLLIN, 0};
    return zloop_poller(s->loop, &item, fn, s);
}

super_t *super_new(const super_cfg_t *cfg, fsrv_t fsrv)
{
    super_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    snprintf(s->name, sizeof s->name, "%s", cfg->name);
    snprintf(s->broker, sizeof s->broker, "%s", cfg->broker);
    s->fsrv = fsrv;
    s->next_serial = 1;
    s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    s->timer_at = -1;
    s->sigfd = stopsig_open(); /* before the first socket starts ZeroMQ's threads */
    s->trees = zlistx_new();
    if (s->trees)
        zlistx_set_destructor(s->trees, s_tree_free);
    s->spawnq = spawnq_new(cfg->spawn_rate);
    s->creds = creds_new();
    s->deadlines = dl_new();
    s->drain = drain_new(s_on_output, s);
    if (s->drain)
        drain_on_writable(s->drain, s_on_writable);
    s->peer = peer_new(cfg->broker, cfg->name, "supervisor", 0);
    s->place = s->peer ? place_new(s->peer, (place_core_t){s, s_place_event, s_place_phase}) : NULL;
    s->interest = interest_new();
    s->loop = zloop_new();
    if (s->timerfd < 0 || s->sigfd < 0 || !s->trees || !s->spawnq || !s->deadlines || !s->drain ||
        !s->peer || !s->place || !s->interest || !s->loop) {
        super_destroy(&s);
        return NULL;
    }
    zsock_set_rcvtimeo(peer_sock(s->peer), 0);
    peer_subscribe(s->peer, "peers"); /* to learn that a supervisor we rely on is lost */
    peer_subscribe(s->peer, "interest"); /* to send only the events someone receives */
    if (zloop_reader(s->loop, peer_sock(s->peer), s_on_broker, s) != 0 ||
        s_poll_fd(s, s->fsrv.fd, s_on_fsrv) != 0 || s_poll_fd(s, drain_fd(s->drain), s_on_drain) != 0 ||
        s_poll_fd(s, s->timerfd, s_on_timer) != 0 || s_poll_fd(s, s->sigfd, s_on_signal) != 0 ||
        zloop_timer(s->loop, TICK_MS, 0, s_on_tick, s) < 0) {
        log_error("cannot set up the supervisor's event loop");
        super_destroy(&s);
        return NULL;
    }
    return s;
}

void super_destroy(super_t **self)
{
    if (!self || !*self)
        return;
    super_t *s = *self;
    zloop_destroy(&s->loop);
    place_destroy(&s->place);
    interest_destroy(&s->interest);
    peer_destroy(&s->peer);
    zlistx_destroy(&s->trees);
    spawnq_destroy(&s->spawnq);
    creds_destroy(&s->creds);
    dl_destroy(&s->deadlines);
    drain_destroy(&s->drain);
    if (s->timerfd >= 0)
        close(s->timerfd);
    if (s->sigfd >= 0)
        close(s->sigfd);
    free(s);
    *self = NULL;
}

/* Close the channel (the fork-server then stops what is left and exits)
 * and reap it, with a deadline. */
static void s_stop_fsrv(super_t *s)
{
    int pidfd = (int) syscall(SYS_pidfd_open, s->fsrv.pid, 0);
    close(s->fsrv.fd);
    if (pidfd >= 0) {
        struct pollfd p = {pidfd, POLLIN, 0};
        int limit = FSRV_TERM_GRACE_MS + FSRV_REAP_DEADLINE_MS + 500;
        if (poll(&p, 1, limit) == 0) {
            log_error("fork-server did not exit within %d ms: SIGKILL", limit);
            syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        }
        close(pidfd);
    }
    waitpid(s->fsrv.pid, NULL, 0);
}

int super_run(super_t *s)
{
    log_info("supervisor %s: fork-server pid %d; broker %s", s->name, (int) s->fsrv.pid,
             s->broker);
    zloop_start(s->loop);
    int busy = 0;
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees))
        busy += !t->ended_ms;
    if (busy)
        log_warn("stopping with %d trees unfinished: the fork-server stops their workers", busy);
    /* Let the last events and reports leave (linger on the socket). */
    peer_send(s->peer, "broker", "bye", NULL, -1);
    if (!s->fsrv_gone)
        s_stop_fsrv(s);
    log_info("supervisor %s stopped", s->name);
    return s->exit_code;
}
