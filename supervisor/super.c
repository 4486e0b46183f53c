#include "super.h"
#include "super_int.h"

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
#include "esc.h"
#include "link.h"
#include "notify.h"
#include "log.h"
#include "peer.h"
#include "place.h"
#include "sig.h"
#include "stopsig.h"

#define SPAWN_WINDOW 64 /* spawn requests in flight to the fork-server */
/* req = tree serial << 28 | incarnation (8 bits) << 20 | node index: events
 * about an earlier incarnation of a restarted node are recognised as such. */
#define REQ_NODE_BITS 20
#define REQ_GEN_BITS 8
/* The drain set keys each of a node's fds as req << 2 | which. */
enum { FD_OUT = 0, FD_ERR = 1, FD_LINK = 2 };
#define FD_KEY(req, which) (((uint64_t) (req) << 2) | (which))
#define TICK_MS 100
#define STOP_LINGER_MS 1000 /* stopping: reports stay available this long after the last tree ends */
#define FSRV_MAX_RESTARTS 10
#define FSRV_RESTART_WINDOW_MS 10000

typedef struct {
    uint64_t serial;
    int idx;
} s_pending_t;


static void s_pump(super_t *s);

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

/* The node a fork-server event or pipe is about, if it is about the node's
 * current incarnation. */
static tree_node_t *s_node_by_req(super_t *s, uint64_t req, tree_t **tree)
{
    tree_t *t = s_tree_by_serial(s, req >> (REQ_NODE_BITS + REQ_GEN_BITS));
    int idx = (int) (req & ((1u << REQ_NODE_BITS) - 1));
    *tree = t;
    if (!t || idx >= t->nnodes || s_req(t, &t->nodes[idx]) != req)
        return NULL;
    return &t->nodes[idx];
}

/* Worker names are SUPERVISOR.TREE.INDEX: the broker stamps them, so a
 * worker can only ever speak for itself. */
static void s_worker_name(super_t *s, const tree_t *t, const tree_node_t *n, char *out, size_t size)
{
    snprintf(out, size, "%s.%s.%d", s->name, t->id, n->idx);
}

static tree_node_t *s_node_by_worker(super_t *s, const char *worker, tree_t **tree)
{
    size_t len = strlen(s->name);
    *tree = NULL;
    if (strncmp(worker, s->name, len) != 0 || worker[len] != '.')
        return NULL;
    const char *id = worker + len + 1;
    const char *dot = strrchr(id, '.');
    if (!dot || dot == id)
        return NULL;
    char tid[TREE_ID_MAX + 1];
    size_t idlen = (size_t) (dot - id);
    if (idlen > TREE_ID_MAX)
        return NULL;
    memcpy(tid, id, idlen);
    tid[idlen] = 0;
    char *end;
    long idx = strtol(dot + 1, &end, 10);
    tree_t *t = s_tree_by_id(s, tid);
    if (!t || *end || idx < 0 || idx >= t->nnodes)
        return NULL;
    *tree = t;
    return &t->nodes[idx];
}

/* ---- messages out --------------------------------------------------------- */

void super_send(super_t *s, const char *to, const char *type, cJSON *body, int64_t re)
{
    peer_send(s->peer, to, type, body, re);
}

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
    super_send(s, req->from, "error", body, req->id);
}

static void s_publish(super_t *s, const tree_t *t, cJSON *body)
{
    char topic[TREE_ID_MAX + 16];
    snprintf(topic, sizeof topic, "tree/%s", t->id);
    cJSON_AddStringToObject(body, "topic", topic);
    cJSON_AddStringToObject(body, "tree", t->id);
    char to[TREE_ID_MAX + 32];
    snprintf(to, sizeof to, "topic:%s", topic);
    super_send(s, to, "event", body, -1);
}

static void s_publish_phase(super_t *s, const tree_t *t, const tree_node_t *n, phase_t ph,
                            int64_t t_ms)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "kind", "phase");
    cJSON_AddStringToObject(body, "path", n->path);
    cJSON_AddStringToObject(body, "phase", phase_name(ph));
    cJSON_AddNumberToObject(body, "t_ms", (double) t_ms);
    s_publish(s, t, body);
}

/* Record a phase that happened at mono_ms (CLOCK_MONOTONIC, one clock per
 * host); times from the future or before the tree are clamped. */
void super_phase_at(super_t *s, tree_t *t, tree_node_t *n, phase_t ph, int64_t mono_ms)
{
    int64_t now = clk_now_ms();
    if (mono_ms > now || mono_ms < t->started_ms)
        mono_ms = now;
    int64_t t_ms = mono_ms - t->started_ms;
    tree_node_phase(n, ph, t_ms);
    s_publish_phase(s, t, n, ph, t_ms);
}

/* Record a phase the supervisor observed itself, now. */
static void s_phase(super_t *s, tree_t *t, tree_node_t *n, phase_t ph)
{
    super_phase_at(s, t, n, ph, clk_now_ms());
}

static void s_to_worker(super_t *s, tree_t *t, tree_node_t *n, const char *type, cJSON *body)
{
    if (n->linked) {
        /* A builtin: straight over its link (a full socket is retried on
         * the next tick, like a bounce from the broker). */
        int ev = strcmp(type, "node_cancel") == 0 ? LINK_EV_CANCEL : LINK_EV_CHILDREN_EXITED;
        cJSON_Delete(body);
        if (n->link_fd < 0 || notify_tell(n->link_fd, ev) == 0)
            return; /* closed: it has exited, its exit status settles it */
        n->redeliver = true;
        if (ev == LINK_EV_CANCEL)
            n->cancel_delivered = false;
        return;
    }
    char worker[256];
    s_worker_name(s, t, n, worker, sizeof worker);
    if (peer_send(s->peer, worker, type, body, -1) < 0) {
        /* The broker is away: send it again on a tick (a bounce from the
         * broker, when it is there but the worker is not, does the same). */
        n->redeliver = true;
        if (strcmp(type, "node_cancel") == 0)
            n->cancel_delivered = false;
    }
}

/* ---- deadlines ------------------------------------------------------------ */

static void s_arm_timer(super_t *s)
{
    int64_t in = dl_next_in(s->deadlines, clk_now_ms());
    struct itimerspec its = {0};
    if (in >= 0) {
        if (in == 0)
            in = 1; /* 0 would disarm */
        its.it_value.tv_sec = in / 1000;
        its.it_value.tv_nsec = (in % 1000) * 1000000;
    }
    timerfd_settime(s->timerfd, 0, &its, NULL);
}

void super_deadline(super_t *s, tree_t *t, tree_node_t *n, dl_kind_t kind, int64_t in_ms)
{
    dl_entry_t e = {.when = clk_now_ms() + in_ms, .serial = t->serial,
                    .node = n ? n->idx : -1, .gen = n ? ++n->deadline_gen : 0, .kind = kind};
    if (dl_push(s->deadlines, e) != 0)
        log_error("out of memory for a deadline of tree %s: its teardown is unbounded", t->id);
    s_arm_timer(s);
}

static void s_signal(tree_t *t, tree_node_t *n, int sig)
{
    /* Rule 4: only through the pidfd, never a bare pid. */
    if (n->pidfd >= 0 && syscall(SYS_pidfd_send_signal, n->pidfd, sig, NULL, 0) != 0 &&
        errno != ESRCH)
        log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: pidfd_send_signal(%s): %s", t->id, n->path, sig_name(sig),
                 strerror(errno));
}

/* ---- spawning ------------------------------------------------------------- */

static void s_enqueue(super_t *s, tree_t *t, tree_node_t *n)
{
    s_pending_t *p = malloc(sizeof *p);
    if (!p) {
        n->spawn_failed = true;
        n->error = cJSON_CreateObject();
        cJSON_AddStringToObject(n->error, "type", "SpawnFailed");
        cJSON_AddStringToObject(n->error, "message", "supervisor out of memory");
        n->proc = PROC_GONE;
        tree_node_settle(t, n, ST_SPAWN_FAILED);
        super_after_settle(s, t, n);
        return;
    }
    *p = (s_pending_t){t->serial, n->idx};
    zlistx_add_end(s->spawn_queue, p);
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
    cJSON_AddItemReferenceToObject(p, "spec", n->params);
    char *text = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return text;
}

void super_spawn_failed(super_t *s, tree_t *t, tree_node_t *n, const char *why)
{
    n->spawn_failed = true;
    n->proc = PROC_GONE;
    cJSON_Delete(n->error);
    n->error = cJSON_CreateObject();
    cJSON_AddStringToObject(n->error, "type", "SpawnFailed");
    cJSON_AddStringToObject(n->error, "message", why);
    cJSON_AddStringToObject(n->error, "phase", "spawned");
    log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: spawn failed: %s", t->id, n->path, why);
    s->count.spawn_failures++;
    /* Its children never start. */
    for (int i = 0; i < n->nchildren; i++)
        super_cancel_node(s, t, n->children[i], "parent failed to spawn");
    tree_node_settle(t, n, ST_SPAWN_FAILED);
    super_after_settle(s, t, n);
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

/* Token bucket: at most cfg.spawn_rate forks a second, bursts of a tenth
 * of that. When it is empty, a timer pumps again as the next token is due. */
static bool s_spawn_token(super_t *s)
{
    int64_t now = clk_now_us();
    double burst = s->cfg.spawn_rate / 10.0 > 1 ? s->cfg.spawn_rate / 10.0 : 1;
    s->tokens += (double) (now - s->tokens_at) * s->cfg.spawn_rate / 1e6;
    s->tokens_at = now;
    if (s->tokens > burst)
        s->tokens = burst;
    if (s->tokens >= 1) {
        s->tokens -= 1;
        return true;
    }
    if (!s->token_timer) {
        size_t due_ms = (size_t) ((1 - s->tokens) * 1000.0 / s->cfg.spawn_rate) + 1;
        s->token_timer = zloop_timer(s->loop, due_ms, 1, s_on_token, s) >= 0;
    }
    return false;
}

/* Feed the fork-server from the queue, SPAWN_WINDOW requests at a time. */
static void s_pump(super_t *s)
{
    while (s->inflight < SPAWN_WINDOW && !s->fsrv_gone) {
        s_pending_t *p = zlistx_first(s->spawn_queue);
        if (!p)
            return;
        tree_t *t = s_tree_by_serial(s, p->serial);
        tree_node_t *n = t ? &t->nodes[p->idx] : NULL;
        if (!n || n->proc != PROC_PENDING || status_is_terminal(n->status)) {
            zlistx_delete(s->spawn_queue, zlistx_cursor(s->spawn_queue));
            continue;
        }
        if (n->remote_sup[0]) {
            zlistx_delete(s->spawn_queue, zlistx_cursor(s->spawn_queue));
            place_spawn(s, t, n);
            continue;
        }
        if (!s_spawn_token(s))
            return; /* over --spawn-rate: s_on_token goes on */
        char *payload = s_payload(s, t, n);
        /* Anything this incarnation reports is dated after this moment;
         * reports of the one before were all dated before it. Taken before
         * the request leaves: the child may report ready before the send
         * even returns here. */
        int64_t asked_at = clk_now_ms();
        int rc = payload ? fsrv_send_spawn(&s->fsrv, s_req(t, n), payload, strlen(payload)) : -1;
        int e = payload ? errno : ENOMEM;
        free(payload);
        if (rc != 0 && e == EAGAIN)
            return; /* the fork-server is busy: try again when it answers */
        zlistx_delete(s->spawn_queue, zlistx_cursor(s->spawn_queue));
        if (rc != 0) {
            char why[128];
            snprintf(why, sizeof why, "cannot ask the fork-server: %s", strerror(e));
            super_spawn_failed(s, t, n, why);
            continue;
        }
        n->proc = PROC_REQUESTED;
        n->incarnation_mono_ms = asked_at;
        s->inflight++;
        s->count.spawns++;
    }
}

/* ---- cancellation --------------------------------------------------------- */

/* The node's own teardown clock starts once its children are gone: its
 * grace covers its own cleanup, and its children's deadlines bound theirs. */
static void s_start_teardown(super_t *s, tree_t *t, tree_node_t *n)
{
    if (n->teardown_started || n->proc != PROC_ALIVE)
        return;
    n->teardown_started = true;
    if (n->run == RUN_EXEC && !n->cancel_delivered) {
        n->cancel_delivered = true; /* for exec nodes, cancel is SIGTERM */
        s_signal(t, n, SIGTERM);
    }
    super_deadline(s, t, n, DL_ESCALATE, n->grace_ms);
}

static void s_deliver_cancel(super_t *s, tree_t *t, tree_node_t *n)
{
    if (n->run != RUN_EXEC && n->ready && !n->cancel_delivered) {
        n->cancel_delivered = true;
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "reason", t->reason[0] ? t->reason : "cancel");
        s_to_worker(s, t, n, "node_cancel", body);
    }
    if (tree_children_settled(n))
        s_start_teardown(s, t, n);
}

/* one_for_all (and, until restarts exist, every strategy): a failing child
 * fails its parent, which cancels its siblings. */
static void s_child_failed(super_t *s, tree_t *t, tree_node_t *p)
{
    if (!p || p->child_failed || status_is_terminal(p->status))
        return;
    p->child_failed = true;
    p->child_failed_phase = p->phase;
    super_cancel_node(s, t, p, "a child failed");
}

/* Messages to a worker wait until it said ready: before that the broker
 * may not know its name yet. */
static void s_send_children_exited(super_t *s, tree_t *t, tree_node_t *n)
{
    n->children_exited_sent = true;
    if (n->ready)
        s_to_worker(s, t, n, "node_children_exited", NULL);
}

void super_cancel_node(super_t *s, tree_t *t, tree_node_t *n, const char *reason)
{
    if (status_is_terminal(n->status))
        return;
    if (!n->cancel_requested)
        log_node(ALOG_DEBUG, t->id, n->path, "tree %s: %s: cancel (%s)", t->id, n->path, reason);
    bool first = !n->cancel_requested;
    n->cancel_requested = true;
    if (n->remote_part)
        return; /* the supervisor running it propagates the cancel */
    if (n->remote_sup[0]) {
        if (n->proc == PROC_PENDING) { /* never sent: nothing runs there */
            tree_settle_remote_part(t, n, ST_CANCELLED, NULL);
            n->proc = PROC_GONE;
            tree_node_settle(t, n, ST_CANCELLED);
            super_after_settle(s, t, n);
        } else if (n->proc == PROC_REMOTE && first) {
            place_cancel(s, t, n);
        }
        return; /* REQUESTED: cancelled once it is spawned */
    }
    for (int i = 0; i < n->nchildren; i++)
        super_cancel_node(s, t, n->children[i], reason);
    if (status_is_terminal(n->status))
        return; /* settling a child may have settled us */
    switch (n->proc) {
    case PROC_PENDING:
        n->proc = PROC_GONE; /* never started: nothing to stop */
        tree_node_settle(t, n, tree_node_final_status(n));
        super_after_settle(s, t, n);
        break;
    case PROC_ALIVE:
        s_deliver_cancel(s, t, n);
        break;
    default: /* REQUESTED: delivered once spawned; GONE: settling */
        break;
    }
}

/* ---- terminal statuses ---------------------------------------------------- */

static void s_tree_done(super_t *s, tree_t *t)
{
    t->ended_ms = clk_now_ms();
    t->status = tree_status_of(t);
    log_info("tree %s finished: %s in %lld ms (%d nodes)", t->id, tree_status_name(t->status),
             (long long) (t->ended_ms - t->started_ms), t->nnodes);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "kind", "done");
    cJSON_AddStringToObject(body, "status", tree_status_name(t->status));
    s_publish(s, t, body);
    /* Forget the oldest finished trees beyond the retention limit. */
    int finished = 0;
    for (tree_t *x = zlistx_first(s->trees); x; x = zlistx_next(s->trees))
        finished += x->status != TREE_RUNNING;
    while (finished > s->cfg.keep_finished) {
        tree_t *x;
        for (x = zlistx_first(s->trees); x && x->status == TREE_RUNNING; x = zlistx_next(s->trees)) {
        }
        if (!x)
            break;
        dl_forget_tree(s->deadlines, x->serial);
        zlistx_delete(s->trees, zlistx_cursor(s->trees));
        finished--;
    }
}

/* ---- restarts ------------------------------------------------------------ */

static bool s_restart_pending(const tree_node_t *p)
{
    if (p->cancel_requested)
        return false; /* a parent being stopped restarts nothing */
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i]->restart_wanted)
            return true;
    return false;
}

/* Child c of p failed: restart it (and, by p's strategy, its siblings) if
 * p's restart intensity allows. False: p fails instead. */
static bool s_restart(super_t *s, tree_t *t, tree_node_t *p, tree_node_t *c)
{
    if (p->cancel_requested || p->proc != PROC_ALIVE || p->max_restarts == 0)
        return false;
    if (!tree_restart_allowed(p, clk_now_ms())) {
        log_node(ALOG_INFO, t->id, p->path, "tree %s: %s: more than %d restarts within %lld ms: giving up", t->id, p->path,
                 p->max_restarts, (long long) p->within_ms);
        p->restart_limit_hit = true;
        return false;
    }
    int from = 0;
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i] == c)
            from = i;
    int first = p->strategy == STRAT_ONE_FOR_ONE || p->strategy == STRAT_REST_FOR_ONE ? from : 0;
    int last = p->strategy == STRAT_ONE_FOR_ONE ? from : p->nchildren - 1;
    log_node(ALOG_INFO, t->id, c->path, "tree %s: %s failed: restarting %s%s (%s)", t->id, c->path,
             first == last ? "it" : "it and ", first == last ? "" : "its siblings",
             p->strategy == STRAT_ONE_FOR_ONE    ? "one_for_one"
             : p->strategy == STRAT_REST_FOR_ONE ? "rest_for_one"
                                                 : "one_for_all");
    for (int i = first; i <= last; i++) {
        tree_node_t *x = p->children[i];
        x->restart_wanted = true;
        super_cancel_node(s, t, x, "restart");
    }
    return true;
}

/* Once every subtree to restart has ended, start them again, in order. */
static void s_restart_ready(super_t *s, tree_t *t, tree_node_t *p)
{
    if (!s_restart_pending(p) || p->cancel_requested || status_is_terminal(p->status))
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

void super_after_settle(super_t *s, tree_t *t, tree_node_t *n)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "kind", "status");
    cJSON_AddStringToObject(body, "path", n->path);
    cJSON_AddStringToObject(body, "status", status_name(n->status));
    s_publish(s, t, body);
    if (n->status == ST_FAILED || n->status == ST_KILLED || n->status == ST_LOST)
        log_node(ALOG_INFO, t->id, n->path, "tree %s: %s %s", t->id, n->path, status_name(n->status));
    tree_node_t *p = n->parent;
    if (p && !status_is_terminal(p->status)) {
        if (status_is_failure(n->status) && !s_restart(s, t, p, n))
            s_child_failed(s, t, p);
        s_restart_ready(s, t, p);
        if (!status_is_terminal(p->status) && tree_children_settled(p) && p->proc == PROC_ALIVE &&
            !s_restart_pending(p)) {
            if (!p->children_exited_sent)
                s_send_children_exited(s, t, p);
            if (p->cancel_requested)
                s_start_teardown(s, t, p);
        }
    }
    for (tree_node_t *a = p ? p->parent : NULL; a; a = a->parent)
        s_restart_ready(s, t, a);
    if (t->nterminal == t->nnodes && t->status == TREE_RUNNING && !t->ended_ms)
        s_tree_done(s, t);
}

/* The process is gone and its reports are in (or we stopped waiting). */
static void s_settle_exited(super_t *s, tree_t *t, tree_node_t *n)
{
    if (status_is_terminal(n->status))
        return;
    /* Children still running lose their parent: stop them. */
    for (int i = 0; i < n->nchildren; i++)
        super_cancel_node(s, t, n->children[i], "parent exited");
    if (tree_node_error_from_tail(n))
        log_node(ALOG_INFO, t->id, n->path, "tree %s: %s: error taken from its stderr (its report did not arrive)", t->id,
                 n->path);
    tree_node_settle(t, n, tree_node_final_status(n));
    super_after_settle(s, t, n);
}

/* ---- fork-server events --------------------------------------------------- */

static void s_on_spawned(super_t *s, fsrv_event_t *ev)
{
    tree_t *t;
    tree_node_t *n = s_node_by_req(s, ev->hdr.req, &t);
    if (!n || ev->nfds < 3) {
        /* Not ours any more: the fork-server will report its exit. */
        for (int i = 0; i < ev->nfds; i++)
            close(ev->fds[i]);
        return;
    }
    n->pid = ev->hdr.pid;
    n->pidfd = ev->fds[0];
    n->out_fd = ev->fds[1];
    n->err_fd = ev->fds[2];
    n->link_fd = ev->nfds > 3 ? ev->fds[3] : -1;
    n->linked = n->link_fd >= 0;
    n->proc = PROC_ALIVE;
    n->status = ST_RUNNING;
    /* Without these its output could block it and its reports go unread:
     * say so; its deadlines still bound its teardown. */
    if (drain_add(s->drain, n->out_fd, FD_KEY(ev->hdr.req, FD_OUT)) != 0 ||
        drain_add(s->drain, n->err_fd, FD_KEY(ev->hdr.req, FD_ERR)) != 0 ||
        (n->linked && drain_add(s->drain, n->link_fd, FD_KEY(ev->hdr.req, FD_LINK)) != 0))
        log_node(ALOG_ERROR, t->id, n->path, "tree %s: %s: cannot watch its pipes and link: %s",
                 t->id, n->path, strerror(errno));
    super_phase_at(s, t, n, PH_SPAWNED, ev->hdr.mono_ms);
    for (int i = 0; i < n->nchildren; i++)
        if (n->children[i]->proc == PROC_PENDING && !status_is_terminal(n->children[i]->status))
            s_enqueue(s, t, n->children[i]);
    /* Its children may have ended before it was even forked (cancelled
     * while its spawn was pending): it must still be told. */
    if (n->nchildren > 0 && tree_children_settled(n) && !n->children_exited_sent)
        s_send_children_exited(s, t, n);
    if (n->cancel_requested)
        s_deliver_cancel(s, t, n);
}

static void s_on_exited(super_t *s, fsrv_event_t *ev)
{
    fsrv_send_ack(&s->fsrv, ev->hdr.req);
    tree_t *t;
    tree_node_t *n = s_node_by_req(s, ev->hdr.req, &t);
    if (!n || n->pid != ev->hdr.pid || n->exited)
        return;
    /* What it said before it ended is handled before its end: a builtin's
     * link is read to the last message while the node is still alive. */
    if (n->link_fd >= 0) {
        drain_now(s->drain, n->link_fd, FD_KEY(ev->hdr.req, FD_LINK));
        if (s_node_by_req(s, ev->hdr.req, &t) != n || n->exited)
            return;
    }
    int st = ev->hdr.status;
    s->count.exits++;
    n->exited = true;
    n->exit_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    n->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (n->err_fd >= 0)
        drain_now(s->drain, n->err_fd, FD_KEY(ev->hdr.req, FD_ERR));
    if (n->pidfd >= 0)
        close(n->pidfd);
    n->pidfd = -1;
    if (n->proc == PROC_GONE) /* given up on after SIGKILL: already lost */
        return;
    n->proc = PROC_GONE;
    super_phase_at(s, t, n, PH_EXITED, ev->hdr.mono_ms);
    /* An exec'd program's last reports travel through the broker and may
     * trail the exit status: wait for "exiting" (the last one) a bounded
     * time, if it reports at all. A builtin's link was just read to its end. */
    bool spoke = !n->linked && n->ready;
    bool talked_last = false;
    for (int i = n->nphases - 1; i >= 0 && !talked_last; i--)
        talked_last = n->phases[i].phase == PH_EXITING;
    if (spoke && !talked_last && !n->exit_signal)
        super_deadline(s, t, n, DL_SETTLE, ESC_SETTLE_MS);
    else
        s_settle_exited(s, t, n);
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
    if (fsrv_start(&s->fsrv) != 0) {
        log_error("cannot start a new fork-server: %s: stopping", strerror(errno));
        s->exit_code = 1;
        zsys_interrupted = 1;
        return;
    }
    s->fsrv_gone = false;
    s->inflight = 0;
    zmq_pollitem_t fs = {NULL, s->fsrv.fd, ZMQ_POLLIN, 0};
    zloop_poller(s->loop, &fs, s_on_fsrv, s);
    log_warn("started a new fork-server, pid %d", (int) s->fsrv.pid);
}

static void s_fsrv_lost(super_t *s)
{
    s->fsrv_gone = true;
    log_error("the fork-server died: its workers died with it (PDEATHSIG); marking them lost");
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees)) {
        for (int i = 0; i < t->nnodes; i++) {
            tree_node_t *n = &t->nodes[i];
            if (status_is_terminal(n->status))
                continue;
            if (n->proc == PROC_ALIVE || n->proc == PROC_REQUESTED) {
                n->lost = true;
                cJSON_Delete(n->error);
                n->error = cJSON_CreateObject();
                cJSON_AddStringToObject(n->error, "type", "Lost");
                cJSON_AddStringToObject(n->error, "message",
                                        "the fork-server died; no exit status can be known");
                cJSON_AddStringToObject(n->error, "phase", phase_name(n->phase));
            }
            n->cancel_requested = true;
            n->proc = PROC_GONE;
        }
        for (int i = t->nnodes - 1; i >= 0; i--) /* leaves first */
            if (!status_is_terminal(t->nodes[i].status)) {
                tree_node_settle(t, &t->nodes[i], tree_node_final_status(&t->nodes[i]));
                super_after_settle(s, t, &t->nodes[i]);
            }
    }
    s_fsrv_replace(s);
}

/* The fork-server says which guarantees it could arm: log them once, and
 * put them in every report. */
static void s_on_fsrv_ready(super_t *s, int flags)
{
    static const int all[] = {FSRV_G_PIDFD, FSRV_G_PDEATHSIG, FSRV_G_SUBREAPER,
                              FSRV_G_CLOSE_RANGE};
    char active[160] = "", missing[160] = "";
    s->guarantees = flags;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char *to = (flags & all[i]) ? active : missing;
        size_t used = strlen(to);
        snprintf(to + used, 160 - used, "%s%s", used ? ", " : "", fsrv_guarantee_name(all[i]));
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
        if (ev.hdr.type == FSRV_SPAWNED)
            s_on_spawned(s, &ev);
        else if (ev.hdr.type == FSRV_SPAWN_FAILED) {
            tree_t *t;
            tree_node_t *n = s_node_by_req(s, ev.hdr.req, &t);
            if (n && n->proc == PROC_REQUESTED)
                super_spawn_failed(s, t, n, ev.text);
        } else if (ev.hdr.type == FSRV_EXITED) {
            s_on_exited(s, &ev);
        } else if (ev.hdr.type == FSRV_READY) {
            s_on_fsrv_ready(s, ev.hdr.status);
        }
    }
    s_pump(s);
    return 0;
}

/* ---- pipes and links ------------------------------------------------------ */

static void s_node_phase(super_t *s, tree_t *t, tree_node_t *n, const cJSON *body,
                         const char *from);

/* One datagram from a worker's notify fd (notify.h), as the node_phase
 * body s_node_phase reads: {"phase","t_mono_ms"?,"error"?}. Phases only go
 * forward: a repeated or earlier one is dropped (a flood of valid phases
 * cannot grow the history). An error is reported in the last phase the
 * node reported; one sent before any counts as "ready" (else s_node_phase
 * would drop it) with error.phase "spawned". Bad messages are counted and
 * logged for the node (the 1st, 2nd, 4th, ...: a flood cannot flood the
 * log), never fatal. */
static void s_on_link(super_t *s, tree_t *t, tree_node_t *n, const char *data, size_t len)
{
    notify_msg_t m;
    notify_kind_t kind = notify_parse(data, len, &m);
    log_debug("notify %s: %.*s", n->path, (int) (len < 512 ? len : 512), data);
    phase_t last = PH_NONE; /* the last phase this incarnation reported itself */
    for (int i = n->nphases - 1; last == PH_NONE && i >= 0 && n->phases[i].phase != PH_SPAWNED; i--)
        if (n->phases[i].phase >= PH_READY && n->phases[i].phase <= PH_EXITING)
            last = n->phases[i].phase;
    cJSON *body = cJSON_CreateObject();
    if (m.t_mono_ms >= 0)
        cJSON_AddNumberToObject(body, "t_mono_ms", (double) m.t_mono_ms);
    if (kind == NOTIFY_PHASE && phase_parse(m.phase) <= last) {
        kind = NOTIFY_UNKNOWN;
        snprintf(m.why, sizeof m.why, "\"%s\" after \"%s\": phases only go forward", m.phase,
                 phase_name(last));
    }
    if (kind == NOTIFY_PHASE) {
        cJSON_AddStringToObject(body, "phase", m.phase);
        s_node_phase(s, t, n, body, n->path);
    } else if (kind == NOTIFY_ERROR) {
        phase_t ph = m.phase[0] ? phase_parse(m.phase) : last;
        if (ph < PH_READY) {
            cJSON_AddStringToObject(m.error, "phase", "spawned");
            ph = PH_READY;
        }
        cJSON_AddStringToObject(body, "phase", phase_name(ph));
        cJSON_AddItemToObject(body, "error", m.error);
        m.error = NULL;
        s_node_phase(s, t, n, body, n->path);
    } else if (kind == NOTIFY_SPAWN || kind == NOTIFY_CANCEL_REQ) {
        log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: asked for %s over its notify fd: not supported yet",
                 t->id, n->path, notify_kind_name(kind));
    } else if (++n->notify_bad, (n->notify_bad & (n->notify_bad - 1)) == 0) {
        log_node(ALOG_WARN, t->id, n->path, "tree %s: %s: %s message on its notify fd (%zu bytes: %s); %u so far",
                 t->id, n->path, notify_kind_name(kind), len, m.why, n->notify_bad);
    }
    cJSON_Delete(body);
    notify_msg_clear(&m);
}

static void s_on_output(void *arg, uint64_t key, const char *data, size_t len, bool eof)
{
    super_t *s = arg;
    tree_t *t;
    tree_node_t *n = s_node_by_req(s, key >> 2, &t);
    if (!n)
        return;
    if ((key & 3) == FD_LINK) {
        if (eof)
            n->link_fd = -1;
        else
            s_on_link(s, t, n, data, len);
        return;
    }
    bool is_err = (key & 3) == FD_ERR;
    if (eof) {
        if (is_err)
            n->err_fd = -1;
        else
            n->out_fd = -1;
        return;
    }
    if (is_err)
        tree_node_tail_append(n, data, len);
    else
        n->out_bytes += len;
}

static int s_on_drain(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    drain_ready(((super_t *) arg)->drain);
    return 0;
}

/* ---- deadlines firing ----------------------------------------------------- */

static void s_escalate(super_t *s, tree_t *t, tree_node_t *n)
{
    if (n->proc != PROC_ALIVE)
        return;
    int64_t next = 0;
    switch (esc_advance(n, &next)) {
    case ESC_SEND_TERM:
        n->term_sent = true;
        /* The phase it was stuck in: the last one it reported. */
        for (int i = n->nphases - 1; i >= 0 && n->stuck_phase == PH_NONE; i--)
            if (n->phases[i].phase != PH_TERM_SENT && n->phases[i].phase != PH_KILL_SENT)
                n->stuck_phase = n->phases[i].phase;
        s_phase(s, t, n, PH_TERM_SENT);
        log_node(ALOG_INFO, t->id, n->path, "tree %s: %s did not exit within grace_ms=%lld (stuck in %s): SIGTERM", t->id,
                 n->path, (long long) n->grace_ms, phase_name(n->stuck_phase));
        s_signal(t, n, SIGTERM);
        s->count.sigterms++;
        super_deadline(s, t, n, DL_ESCALATE, next);
        break;
    case ESC_SEND_KILL:
        n->kill_sent = true;
        s_phase(s, t, n, PH_KILL_SENT);
        log_node(ALOG_INFO, t->id, n->path, "tree %s: %s still alive %lld ms after SIGTERM: SIGKILL", t->id, n->path,
                 (long long) n->kill_after_ms);
        s_signal(t, n, SIGKILL);
        s->count.sigkills++;
        super_deadline(s, t, n, DL_ESCALATE, next);
        break;
    case ESC_GIVE_UP:
        log_node(ALOG_ERROR, t->id, n->path, "tree %s: %s (pid %d) survived SIGKILL for %d ms: marking it lost", t->id,
                  n->path, (int) n->pid, ESC_REAP_MS);
        n->lost = true;
        s->count.lost++;
        n->proc = PROC_GONE;
        cJSON_Delete(n->error);
        n->error = cJSON_CreateObject();
        cJSON_AddStringToObject(n->error, "type", "Lost");
        cJSON_AddStringToObject(n->error, "message", "did not die after SIGKILL");
        cJSON_AddStringToObject(n->error, "phase", phase_name(n->stuck_phase));
        s_settle_exited(s, t, n);
        break;
    }
}

static int s_on_timer(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    super_t *s = arg;
    uint64_t ticks;
    ssize_t r = read(s->timerfd, &ticks, sizeof ticks);
    (void) r;
    dl_entry_t e;
    while (dl_pop_due(s->deadlines, clk_now_ms(), &e)) {
        tree_t *t = s_tree_by_serial(s, e.serial);
        if (!t)
            continue;
        if (e.kind == DL_TREE_TIMEOUT) {
            if (t->status == TREE_RUNNING && !t->ended_ms && !t->nodes[0].cancel_requested) {
                log_info("tree %s: timeout_ms=%lld reached: cancelling", t->id,
                         (long long) t->timeout_ms);
                snprintf(t->reason, sizeof t->reason, "timeout");
                super_cancel_node(s, t, &t->nodes[0], "timeout");
            }
            continue;
        }
        tree_node_t *n = &t->nodes[e.node];
        if (e.gen != n->deadline_gen)
            continue; /* superseded */
        if (e.kind == DL_ESCALATE)
            s_escalate(s, t, n);
        else if (e.kind == DL_SETTLE)
            s_settle_exited(s, t, n);
        else if (e.kind == DL_REMOTE && !status_is_terminal(n->status))
            place_lost(s, t, n, n->proc == PROC_REQUESTED
                                       ? "the other supervisor did not answer the spawn in 10 s"
                                       : "the other supervisor did not end the subtree in time");
    }
    s_arm_timer(s);
    s_pump(s);
    return 0;
}

/* ---- requests from clients ------------------------------------------------ */

static void s_handle_spawn(super_t *s, env_t *req)
{
    if (s->stopping) {
        s_reply_error(s, req, "unavailable", "supervisor %s is stopping", s->name);
        return;
    }
    const cJSON *spec = cJSON_GetObjectItem(req->body, "spec");
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
        peer_random_id(idbuf, sizeof idbuf);
        id = idbuf;
    }
    int running = 0, processes = 0;
    for (tree_t *x = zlistx_first(s->trees); x; x = zlistx_next(s->trees))
        if (!x->ended_ms) {
            running++;
            processes += x->nnodes - x->nterminal;
        }
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
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "code", "invalid_spec");
        cJSON_AddStringToObject(body, "message", spec ? err.message : "body.spec: missing");
        cJSON_AddStringToObject(body, "path", spec ? err.path : "(spec)");
        super_send(s, req->from, "error", body, req->id);
        s->count.rejected++;
        if (log_budget_take(&s->reject_log, 5, clk_now_ms(), "rejected specs"))
            log_info("rejected a spec from %s: %s: %s", req->from, spec ? err.path : "(spec)",
                     spec ? err.message : "missing");
        return;
    }
    s->next_serial++;
    s->count.trees++;
    t->started_ms = clk_now_ms();
    zlistx_add_end(s->trees, t);
    log_info("tree %s: spawning %d nodes for %s", t->id, t->nnodes, req->from);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", t->id);
    super_send(s, req->from, "spawned", body, req->id);
    if (t->timeout_ms > 0)
        super_deadline(s, t, NULL, DL_TREE_TIMEOUT, t->timeout_ms);
    s_enqueue(s, t, &t->nodes[0]);
    s_pump(s);
}

static void s_add_guarantees(super_t *s, cJSON *obj)
{
    cJSON *list = cJSON_AddArrayToObject(obj, "guarantees");
    for (int bit = 1; bit <= FSRV_G_CLOSE_RANGE; bit <<= 1)
        if (s->guarantees & bit)
            cJSON_AddItemToArray(list, cJSON_CreateString(fsrv_guarantee_name(bit)));
}

static void s_handle_status(super_t *s, env_t *req)
{
    tree_t *t = s_tree_by_id(s, env_str(req->body, "tree"));
    if (!t) {
        s_reply_error(s, req, "not_found", "supervisor %s has no tree \"%s\"", s->name,
                      env_str(req->body, "tree") ?: "");
        return;
    }
    cJSON *report = tree_report(t, clk_now_ms());
    s_add_guarantees(s, report);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "report", report);
    super_send(s, req->from, "report", body, req->id);
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
    if (!path && !t->reason[0])
        snprintf(t->reason, sizeof t->reason, "cancel");
    log_info("tree %s: cancel %s requested by %s", t->id, n->path, req->from);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", t->id);
    cJSON_AddStringToObject(body, "path", n->path);
    cJSON_AddStringToObject(body, "status", status_name(n->status));
    super_send(s, req->from, "cancelling", body, req->id);
    super_cancel_node(s, t, n, "cancel requested");
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
    super_send(s, req->from, "trees", body, req->id);
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
    cJSON_AddNumberToObject(c, "broker_sends_dropped", (double) peer_dropped(s->peer));
    int running = 0, alive = 0;
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees)) {
        running += !t->ended_ms;
        for (int i = 0; !t->ended_ms && i < t->nnodes; i++)
            alive += t->nodes[i].proc == PROC_ALIVE;
    }
    cJSON_AddNumberToObject(c, "trees_running", running);
    cJSON_AddNumberToObject(c, "trees_kept", (double) zlistx_size(s->trees));
    cJSON_AddNumberToObject(c, "processes", alive);
    cJSON_AddNumberToObject(c, "spawn_queue", (double) zlistx_size(s->spawn_queue));
    s_add_guarantees(s, body);
    super_send(s, req->from, "stats", body, req->id);
}

/* A worker reports a phase (and perhaps its error): body is a node_phase
 * body, from the broker (exec'd programs) or from a builtin's link. */
static void s_node_phase(super_t *s, tree_t *t, tree_node_t *n, const cJSON *body,
                         const char *from)
{
    phase_t ph = phase_parse(env_str(body, "phase"));
    int64_t at = n ? env_int(body, "t_mono_ms", clk_now_ms()) : 0;
    if (n && status_is_terminal(n->status) && n->exited && ph > PH_RUNNING && ph < PH_EXITED &&
        at >= n->incarnation_mono_ms) {
        /* A report that trailed the exit past the settle wait: it changes
         * nothing, but the history is the node's, so it goes in. */
        super_phase_at(s, t, n, ph, at);
        return;
    }
    if (!n || ph == PH_NONE || ph == PH_SPAWNED || ph == PH_EXITED || ph == PH_TERM_SENT ||
        ph == PH_KILL_SENT || status_is_terminal(n->status) || n->proc == PROC_PENDING ||
        at < n->incarnation_mono_ms) {
        /* Unknown, out of place, or from an earlier incarnation of a
         * restarted node (dated before the current one was forked). */
        log_debug("ignoring node_phase %s from %s (tree %s, status %s, proc %d, at %lld, incarnation %lld)",
                  env_str(body, "phase") ?: "?", from, t ? t->id : "-",
                  n ? status_name(n->status) : "-", n ? (int) n->proc : -1, (long long) at,
                  n ? (long long) n->incarnation_mono_ms : 0LL);
        return;
    }
    /* The worker's own clock dates the phase: reports that trail an exit
     * status still land in order. An error report repeats the phase it
     * happened in: that is not a new phase. */
    const cJSON *error = cJSON_GetObjectItem(body, "error");
    if (!cJSON_IsObject(error) || ph != n->phase)
        super_phase_at(s, t, n, ph, at);

    if (cJSON_IsObject(error) && !n->error) {
        n->error = cJSON_Duplicate(error, 1);
        if (!cJSON_HasObjectItem(n->error, "phase"))
            cJSON_AddStringToObject(n->error, "phase", phase_name(ph));
        log_node(ALOG_INFO, t->id, n->path, "tree %s: %s reported %s: %s", t->id, n->path,
                 env_str(error, "type") ?: "an error", env_str(error, "message") ?: "");
        /* Act on a failure as soon as it is known, not at exit: the parent
         * fails and cancels the siblings now. */
        if (!n->parent || n->parent->max_restarts == 0)
            s_child_failed(s, t, n->parent); /* restarts are decided at its exit */
    }
    if (ph == PH_READY) {
        n->ready = true;
        if (n->children_exited_sent)
            s_to_worker(s, t, n, "node_children_exited", NULL);
        if (n->cancel_requested)
            s_deliver_cancel(s, t, n);
    } else if (ph == PH_CANCELLING_CHILDREN && !n->cancel_requested) {
        /* Its own work ended: it stops its children before it exits. */
        for (int i = 0; i < n->nchildren; i++)
            super_cancel_node(s, t, n->children[i], "parent finished");
    } else if (ph == PH_EXITING && n->exited) {
        s_settle_exited(s, t, n); /* the last report arrived after the exit */
    }
}

static void s_handle_phase(super_t *s, env_t *msg)
{
    tree_t *t;
    tree_node_t *n = s_node_by_worker(s, msg->from, &t);
    if (n && n->linked) {
        log_debug("ignoring node_phase through the broker from %s: it reports over its link",
                  msg->from);
        return;
    }
    s_node_phase(s, t, n, msg->body, msg->from);
}

/* The broker could not deliver a message to one of our workers (it has not
 * registered again after a broker restart): send it again on a tick. */
static bool s_bounced(super_t *s, env_t *msg)
{
    const char *type = env_str(msg->body, "type");
    const char *to = env_str(msg->body, "to");
    if (!type || !to || (strcmp(type, "node_cancel") && strcmp(type, "node_children_exited")))
        return false;
    tree_t *t;
    tree_node_t *n = s_node_by_worker(s, to, &t);
    if (n && n->proc == PROC_ALIVE) {
        n->redeliver = true;
        if (!strcmp(type, "node_cancel"))
            n->cancel_delivered = false;
    }
    return true;
}

static void s_redeliver(super_t *s)
{
    for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees)) {
        if (t->ended_ms)
            continue;
        for (int i = 0; i < t->nnodes; i++) {
            tree_node_t *n = &t->nodes[i];
            if (!n->redeliver || n->proc != PROC_ALIVE)
                continue;
            n->redeliver = false;
            if (n->cancel_requested && !n->cancel_delivered)
                s_deliver_cancel(s, t, n);
            if (n->children_exited_sent && n->ready)
                s_to_worker(s, t, n, "node_children_exited", NULL);
        }
    }
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
        } else if (s->registered && !peer_welcomed(s->peer)) {
            s->registered = false;
        }
        if (!msg)
            continue;
        if (!strcmp(msg->type, "node_phase"))
            s_handle_phase(s, msg);
        else if (!strcmp(msg->type, "spawn"))
            s_handle_spawn(s, msg);
        else if (!strcmp(msg->type, "status"))
            s_handle_status(s, msg);
        else if (!strcmp(msg->type, "cancel"))
            s_handle_cancel(s, msg);
        else if (!strcmp(msg->type, "list"))
            s_handle_list(s, msg);
        else if (!strcmp(msg->type, "stats"))
            s_handle_stats(s, msg);
        else if (!strcmp(msg->type, "spawned"))
            place_on_spawned(s, msg);
        else if (!strcmp(msg->type, "report"))
            place_on_report(s, msg);
        else if (!strcmp(msg->type, "event") && !strcmp(msg->from, "broker"))
            place_on_peer_lost(s, msg);
        else if (!strcmp(msg->type, "event"))
            place_on_event(s, msg);
        else if (!strcmp(msg->type, "cancelling") || !strcmp(msg->type, "subscribed"))
            ; /* acknowledgements: nothing to do */
        else if (!strcmp(msg->type, "error") && place_on_error(s, msg))
            ;
        else if (!strcmp(msg->type, "error") && s_bounced(s, msg))
            ;
        else if (!strcmp(msg->type, "error"))
            log_debug("broker error for message %lld: %s: %s", (long long) msg->re,
                      env_str(msg->body, "code") ?: "?", env_str(msg->body, "message") ?: "");
        else if (strcmp(msg->from, "broker") != 0) /* never answer the broker's own */
            s_reply_error(s, msg, "bad_request", "a supervisor does not handle \"%s\"", msg->type);
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
    bool idle = false;
    while (read(s->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
        if (s->stopping) {
            log_warn("second %s: stopping now; the fork-server stops the workers",
                     sig_name((int) si.ssi_signo));
            return -1;
        }
        s->stopping = true;
        idle = s_all_done(s);
        s->stop_deadline = clk_now_ms() + s->cfg.stop_deadline_ms;
        log_info("%s: cancelling every tree, then stopping (at most %d ms)",
                 sig_name((int) si.ssi_signo), s->cfg.stop_deadline_ms);
        for (tree_t *t = zlistx_first(s->trees); t; t = zlistx_next(s->trees))
            if (!t->ended_ms) {
                snprintf(t->reason, sizeof t->reason, "supervisor stopping");
                super_cancel_node(s, t, &t->nodes[0], "supervisor stopping");
            }
    }
    /* Idle: stop now. Otherwise the tick stops once the trees have ended
     * and their clients had a moment to fetch the reports. */
    return idle ? -1 : 0;
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
    s_redeliver(s);
    s_pump(s);
    if (s->stopping && now >= s->stop_deadline)
        return -1;
    if (s->stopping && s_all_done(s)) {
        /* Every tree has ended: clients waiting on them were sent "done"
         * and ask for their reports now; answer for a moment, then go. */
        if (!s->stop_at)
            s->stop_at = now + STOP_LINGER_MS;
        if (now >= s->stop_at)
            return -1;
    }
    return 0;
}

/* ---- life ----------------------------------------------------------------- */

static void s_tree_free(void **item)
{
    tree_destroy((tree_t **) item);
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
    s->sigfd = stopsig_open(); /* before the first socket starts ZeroMQ's threads */
    s->trees = zlistx_new();
    zlistx_set_destructor(s->trees, s_tree_free);
    s->spawn_queue = zlistx_new();
    zlistx_set_destructor(s->spawn_queue, (zlistx_destructor_fn *) zstr_free);
    s->deadlines = dl_new();
    s->drain = drain_new(s_on_output, s);
    s->peer = peer_new(cfg->broker, cfg->name, "supervisor", 0);
    if (s->timerfd < 0 || s->sigfd < 0 || !s->deadlines || !s->drain || !s->peer) {
        super_destroy(&s);
        return NULL;
    }
    zsock_set_rcvtimeo(peer_sock(s->peer), 0);
    peer_subscribe(s->peer, "peers"); /* to learn that a supervisor we rely on is lost */
    s->loop = zloop_new();
    zloop_reader(s->loop, peer_sock(s->peer), s_on_broker, s);
    zmq_pollitem_t fs = {NULL, s->fsrv.fd, ZMQ_POLLIN, 0};
    zloop_poller(s->loop, &fs, s_on_fsrv, s);
    zmq_pollitem_t dr = {NULL, drain_fd(s->drain), ZMQ_POLLIN, 0};
    zloop_poller(s->loop, &dr, s_on_drain, s);
    zmq_pollitem_t tm = {NULL, s->timerfd, ZMQ_POLLIN, 0};
    zloop_poller(s->loop, &tm, s_on_timer, s);
    zmq_pollitem_t sg = {NULL, s->sigfd, ZMQ_POLLIN, 0};
    zloop_poller(s->loop, &sg, s_on_signal, s);
    zloop_timer(s->loop, TICK_MS, 0, s_on_tick, s);
    return s;
}

void super_destroy(super_t **self)
{
    if (!self || !*self)
        return;
    super_t *s = *self;
    zloop_destroy(&s->loop);
    peer_destroy(&s->peer);
    zlistx_destroy(&s->trees);
    zlistx_destroy(&s->spawn_queue);
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
