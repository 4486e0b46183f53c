#include "node.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

static const char *s_state_names[] = {"pending", "requested", "running", "stopping", "grace",
                                      "term",    "kill",      "remote",    "done"};

const char *node_state_name(node_state_t s)
{
    return s >= NODE_PENDING && s <= NODE_DONE ? s_state_names[s] : "?";
}

bool node_state_alive(node_state_t s)
{
    return s == NODE_RUNNING || s == NODE_STOPPING || s == NODE_GRACE || s == NODE_TERM ||
           s == NODE_KILL;
}

void node_life_reset(node_life_t *life)
{
    memset(life, 0, sizeof *life);
    life->state = NODE_PENDING;
}

static void s_arm(node_out_t *out, int64_t ms, dl_kind_t kind)
{
    out->actions |= NA_ARM;
    out->deadline_ms = ms;
    out->deadline_kind = kind;
}

static void s_settle(node_life_t *life, node_out_t *out)
{
    life->state = NODE_DONE;
    out->actions |= NA_SETTLE | NA_RELEASE;
}

/* It can be told things: a builtin from the start, a program once it spoke. */
static bool s_can_hear(const node_life_t *life, const node_conf_t *conf)
{
    return conf->speaks_first || life->heard;
}

static void s_tell_cancel(node_life_t *life, const node_conf_t *conf, node_out_t *out)
{
    if (life->told_cancel || !s_can_hear(life, conf))
        return;
    life->told_cancel = true;
    out->actions |= NA_TELL_CANCEL;
}

static void s_tell_children_exited(node_life_t *life, const node_conf_t *conf, node_out_t *out)
{
    if (!conf->has_children || !life->children_ended || life->told_children_exited ||
        !s_can_hear(life, conf))
        return;
    life->told_children_exited = true;
    out->actions |= NA_TELL_CHILDREN_EXITED;
}

/* Its children are gone: its own grace starts. A program that never spoke
 * cannot hear a cancel message: SIGTERM is its cancel. */
static void s_begin_grace(node_life_t *life, const node_conf_t *conf, node_out_t *out)
{
    life->state = NODE_GRACE;
    s_tell_cancel(life, conf, out);
    if (!life->told_cancel) {
        life->told_cancel = life->cancel_by_sigterm = true;
        out->actions |= NA_SIGTERM;
    }
    s_arm(out, conf->grace_ms, DL_ESCALATE);
}

static void s_stop_running(node_life_t *life, const node_conf_t *conf, node_out_t *out)
{
    life->state = NODE_STOPPING;
    out->actions |= NA_STOP_CHILDREN;
    s_tell_cancel(life, conf, out);
    if (life->children_ended)
        s_begin_grace(life, conf, out);
}

static void s_exited(node_life_t *life, int wait_status, node_out_t *out)
{
    life->end = END_EXITED;
    life->exit_signal = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
    life->exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
    /* Children still running lose their parent: they stop too. */
    out->actions |= NA_PHASE_EXITED | NA_STOP_CHILDREN;
    s_settle(life, out);
}

unsigned node_step(node_life_t *life, const node_conf_t *conf, node_event_t ev, node_out_t *out)
{
    memset(out, 0, sizeof *out);
    node_state_t st = life->state;
    if (st == NODE_DONE)
        return 0; /* exactly one terminal status: nothing moves it */
    switch (ev.kind) {
    case NEV_REQUESTED:
        if (st == NODE_PENDING)
            life->state = NODE_REQUESTED;
        break;
    case NEV_SPAWNED:
        if (st != NODE_REQUESTED)
            break;
        life->state = NODE_RUNNING;
        out->actions |= NA_START_CHILDREN;
        if (life->stop)
            s_stop_running(life, conf, out); /* cancelled while its spawn was on the way */
        else
            s_tell_children_exited(life, conf, out);
        break;
    case NEV_SPAWN_FAILED:
        if (st != NODE_PENDING && st != NODE_REQUESTED)
            break;
        life->end = END_SPAWN_FAILED;
        out->actions |= NA_STOP_CHILDREN; /* they never start */
        s_settle(life, out);
        break;
    case NEV_HEARD:
        if (!node_state_alive(st))
            break;
        life->heard = true;
        if (st == NODE_STOPPING || st == NODE_GRACE)
            s_tell_cancel(life, conf, out);
        s_tell_children_exited(life, conf, out);
        break;
    case NEV_STOP: {
        bool first = !life->stop;
        life->stop = true;
        if (st == NODE_PENDING) {
            out->actions |= NA_STOP_CHILDREN;
            s_settle(life, out); /* never started: nothing to stop */
        } else if (st == NODE_REQUESTED) {
            out->actions |= NA_STOP_CHILDREN; /* it is stopped once forked */
        } else if (st == NODE_RUNNING) {
            s_stop_running(life, conf, out);
        } else if (st == NODE_REMOTE && first) {
            life->told_cancel = true;
            out->actions |= NA_TELL_CANCEL; /* the other supervisor stops it */
        }
        break;
    }
    case NEV_CHILDREN_ENDED:
        life->children_ended = true;
        if (st == NODE_RUNNING)
            s_tell_children_exited(life, conf, out);
        else if (st == NODE_STOPPING) {
            s_tell_children_exited(life, conf, out);
            s_begin_grace(life, conf, out);
        }
        break;
    case NEV_DEADLINE:
        if (st == NODE_GRACE) {
            life->state = NODE_TERM;
            life->escalated = SIGTERM;
            out->actions |= NA_PHASE_TERM_SENT | NA_SIGTERM;
            s_arm(out, conf->kill_after_ms, DL_ESCALATE);
        } else if (st == NODE_TERM) {
            life->state = NODE_KILL;
            life->escalated = SIGKILL;
            out->actions |= NA_PHASE_KILL_SENT | NA_SIGKILL;
            s_arm(out, ESC_REAP_MS, DL_ESCALATE);
        } else if (st == NODE_KILL) {
            life->end = END_LOST; /* survived SIGKILL: no exit status will come */
            out->actions |= NA_STOP_CHILDREN;
            s_settle(life, out);
        }
        break;
    case NEV_EXITED:
        if (node_state_alive(st))
            s_exited(life, ev.wait_status, out);
        break;
    case NEV_LOST:
        if (st == NODE_REMOTE)
            break; /* it runs elsewhere: the fork-server has nothing of it */
        life->stop = true;
        if (st != NODE_PENDING)
            life->end = END_LOST;
        out->actions |= NA_STOP_CHILDREN;
        s_settle(life, out);
        break;
    case NEV_CHILD_ADDED:
        /* Its children have not all ended any more: it will be told again
         * when they have. */
        life->children_ended = false;
        life->told_children_exited = false;
        break;
    case NEV_PLACED:
        if (st != NODE_REQUESTED)
            break;
        life->state = NODE_REMOTE;
        if (life->stop) {
            life->told_cancel = true;
            out->actions |= NA_TELL_CANCEL;
        }
        break;
    case NEV_REMOTE_ENDED:
        if (st == NODE_REMOTE || st == NODE_REQUESTED)
            s_settle(life, out);
        break;
    }
    return out->actions;
}
