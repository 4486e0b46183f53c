#include "arbor_worker.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "link.h"
#include "log.h"
#include "peer.h"

struct arbor_worker_t {
    peer_t *peer;
    char supervisor[ENV_NAME_MAX + 1];
    int64_t next_tick;
    bool cancelled;
    char phase[32]; /* the last phase reported: an error happens in it */
};

arbor_worker_t *arbor_worker_open(const char *broker, const char *supervisor, const char *name)
{
    if (!broker || !supervisor || !name) {
        fprintf(stderr, "arbor_worker: broker, supervisor and worker name are required\n");
        return NULL;
    }
    arbor_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    snprintf(w->supervisor, sizeof w->supervisor, "%s", supervisor);
    /* CZMQ would otherwise install its own SIGINT/SIGTERM handlers: a
     * worker's signals stay the program's (and arbor's) business. */
    zsys_handler_set(NULL);
    /* A bounded send: with the broker down a worker still makes progress. */
    w->peer = peer_new(broker, name, "worker", 1000);
    if (!w->peer) {
        free(w);
        return NULL;
    }
    w->next_tick = clk_now_ms() + PEER_HEARTBEAT_MS;
    return w;
}

arbor_worker_t *arbor_worker_from_env(void)
{
    return arbor_worker_open(getenv("ARBOR_BROKER"), getenv("ARBOR_SUPERVISOR"),
                             getenv("ARBOR_WORKER"));
}

int arbor_worker_phase(arbor_worker_t *w, const char *phase)
{
    snprintf(w->phase, sizeof w->phase, "%s", phase);
    cJSON *body = link_phase_body(phase, NULL, NULL);
    return peer_send(w->peer, w->supervisor, "node_phase", body, -1) < 0 ? -1 : 0;
}

int arbor_worker_error(arbor_worker_t *w, const char *type, const char *message)
{
    const char *phase = w->phase[0] ? w->phase : "running";
    /* The same error also goes to stderr, which the supervisor always
     * drains: it still reaches the report when the broker is away. */
    fflush(stderr); /* what the program wrote before, in order */
    link_error_line(2, type, message, phase);
    cJSON *body = link_phase_body(phase, type, message);
    return peer_send(w->peer, w->supervisor, "node_phase", body, -1) < 0 ? -1 : 0;
}

int arbor_worker_fd(arbor_worker_t *w)
{
    return zsock_fd(peer_sock(w->peer));
}

bool arbor_worker_cancelled(arbor_worker_t *w) { return w->cancelled; }
void arbor_worker_note_cancel(arbor_worker_t *w) { w->cancelled = true; }

int arbor_worker_poll(arbor_worker_t *w, int timeout_ms)
{
    int64_t deadline = clk_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t now = clk_now_ms();
        if (now >= w->next_tick) {
            peer_tick(w->peer);
            w->next_tick = now + PEER_HEARTBEAT_MS;
        }
        int64_t wait = deadline - now;
        if (wait > w->next_tick - now)
            wait = w->next_tick - now;
        zmq_pollitem_t item = {zsock_resolve(peer_sock(w->peer)), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, wait > 0 ? (long) wait : 0);
        if (rc < 0)
            return errno == EINTR ? ARBOR_EV_NONE : ARBOR_EV_ERROR;
        if (rc > 0) {
            env_t *env = peer_recv(w->peer);
            if (env) {
                int ev = ARBOR_EV_NONE;
                if (strcmp(env->type, "node_cancel") == 0 && strcmp(env->from, w->supervisor) == 0) {
                    w->cancelled = true;
                    ev = ARBOR_EV_CANCEL;
                } else if (strcmp(env->type, "node_children_exited") == 0 &&
                           strcmp(env->from, w->supervisor) == 0) {
                    ev = ARBOR_EV_CHILDREN_EXITED;
                }
                env_destroy(&env);
                if (ev != ARBOR_EV_NONE)
                    return ev;
            }
            continue;
        }
        if (clk_now_ms() >= deadline)
            return ARBOR_EV_NONE;
    }
}

void arbor_worker_close(arbor_worker_t **w)
{
    if (!w || !*w)
        return;
    /* Say goodbye so the broker forgets this name now, not at expiry. */
    peer_send((*w)->peer, "broker", "bye", NULL, -1);
    peer_destroy(&(*w)->peer); /* linger 1 s: queued phases get out, bounded */
    free(*w);
    *w = NULL;
}
