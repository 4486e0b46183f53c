#include "broker.h"

#include <errno.h>
#include <string.h>

#include "auth.h"
#include "capture.h"
#include "clock.h"
#include "env.h"
#include "head.h"
#include "log.h"
#include "peer.h"
#include "policy.h"
#include "rate.h"
#include "registry.h"
#include "route.h"
#include "service.h"
#include "topics.h"

#define S_WARN_PER_SEC 5 /* bad-input warnings per second; the rest are counted */

struct brk_t {
    void *sock; /* the ROUTER's libzmq handle, borrowed */
    brk_cfg_t cfg;
    char incarnation[20];
    reg_t *reg;
    topics_t *topics;
    stats_t stats;
    svc_t svc;
    cap_t *cap;
    int64_t next_id; /* ids of the broker's own messages */
    int64_t now;     /* clock of the batch being handled */
    log_budget_t warn_budget; /* bad input is logged, within limits */
    rate_t anon_rate;  /* shared by senders without a session */
    rate_t hello_rate; /* their hellos: registering is never starved */
};

/* One received message: who sent it, as the routing id says. */
typedef struct {
    const void *id; /* routing id bytes, where replies go */
    size_t id_len;
    const char *name; /* the id as a peer name, NULL when it is not one */
    char buf[ENV_NAME_MAX + 1];
} s_in_t;

brk_t *brk_new(zsock_t *router, const brk_cfg_t *cfg)
{
    brk_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sock = zsock_resolve(router);
    self->cfg = *cfg;
    self->cfg.capture = NULL; /* the path is not kept */
    peer_random_id(self->incarnation, sizeof self->incarnation);
    self->reg = reg_new();
    self->topics = topics_new();
    self->next_id = 1;
    if (cfg->capture) {
        self->cap = cap_new(cfg->capture);
        if (!self->cap) {
            int e = errno;
            brk_destroy(&self);
            errno = e;
            return NULL;
        }
    }
    if (!self->reg || !self->topics) {
        brk_destroy(&self);
        errno = ENOMEM;
        return NULL;
    }
    self->svc = (svc_t){.reg = self->reg,
                        .topics = self->topics,
                        .stats = &self->stats,
                        .incarnation = self->incarnation,
                        .heartbeat_ms = cfg->heartbeat_ms,
                        .expiry_ms = cfg->expiry_ms};
    return self;
}

void brk_destroy(brk_t **self)
{
    if (!self || !*self)
        return;
    reg_destroy(&(*self)->reg);
    topics_destroy(&(*self)->topics);
    cap_destroy(&(*self)->cap);
    free(*self);
    *self = NULL;
}

const char *brk_incarnation(brk_t *self) { return self->incarnation; }
const stats_t *brk_stats(brk_t *self) { return &self->stats; }
size_t brk_peer_count(brk_t *self) { return reg_size(self->reg); }

/* ---- sending: never blocks; a gone or full peer fails visibly ---------- */

/* [dest][sender][data]; the data frame is shared, not copied. */
static int s_send_frame(brk_t *self, const void *dest, size_t dlen, const char *sender,
                        zmq_msg_t *data)
{
    if (zmq_send(self->sock, dest, dlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1; /* EHOSTUNREACH: not connected; EAGAIN: its queue is full */
    if (zmq_send(self->sock, sender, strlen(sender), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, data);
    if (zmq_msg_send(&copy, self->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&copy);
        return -1;
    }
    return 0;
}

static int s_send_text(brk_t *self, const void *dest, size_t dlen, const char *text)
{
    if (zmq_send(self->sock, dest, dlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->sock, "broker", 6, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->sock, text, strlen(text), ZMQ_DONTWAIT) < 0) {
        self->stats.dropped++;
        log_debug("cannot send to %.*s: %s", (int) dlen, (const char *) dest,
                  zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* A message of the broker's own to the sender of in; body is taken. */
static void s_send_own(brk_t *self, const s_in_t *in, const char *type, int64_t re, cJSON *body)
{
    char *text = env_encode(type, in->name ? in->name : "anonymous", self->next_id++, re, body);
    if (!text) {
        self->stats.dropped++;
        return;
    }
    if (self->cap)
        cap_out(self->cap, text);
    s_send_text(self, in->id, in->id_len, text);
    cJSON_free(text);
}

/* ---- errors ------------------------------------------------------------ */

static void s_warn_bad(brk_t *self, const s_in_t *in, const char *code, const char *message)
{
    if (log_budget_take(&self->warn_budget, S_WARN_PER_SEC, self->now, "bad messages"))
        log_warn("bad input from %s: %s: %s", in->name ? in->name : "(unnamed peer)", code,
                 message);
}

/* Answer error code; type and to are echoed when known so the sender can
 * tell which of its messages failed. */
static void s_error(brk_t *self, const s_in_t *in, int64_t re, const char *code,
                    const char *message, const char *type, const char *to)
{
    stats_error(&self->stats, code);
    /* undeliverable is the destination's problem, not bad input. */
    if (strcmp(code, "undeliverable") == 0)
        log_debug("undeliverable from %s: %s", in->name, message);
    else
        s_warn_bad(self, in, code, message);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "code", code);
    cJSON_AddStringToObject(body, "message", message);
    if (type)
        cJSON_AddStringToObject(body, "type", type);
    if (to)
        cJSON_AddStringToObject(body, "to", to);
    s_send_own(self, in, "error", re, body);
}

/* A message that could not be decoded: read what we can of it (for re, the
 * error body and the capture) with a second parse, paid only by bad input. */
static void s_refuse(brk_t *self, const s_in_t *in, const route_t *r, zmq_msg_t *data)
{
    cJSON *root = data ? cJSON_ParseWithLength(zmq_msg_data(data), zmq_msg_size(data)) : NULL;
    int64_t re = -1;
    const char *type = NULL, *to = NULL;
    if (cJSON_IsObject(root)) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
        if (cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble < 9007199254740992.0 &&
            id->valuedouble == (double) (int64_t) id->valuedouble)
            re = (int64_t) id->valuedouble;
        type = env_str(root, "type");
        to = env_str(root, "to");
    }
    if (root && self->cap)
        cap_in(self->cap, in->name ? in->name : "", root);
    s_error(self, in, re, r->code, r->message, type, to);
    cJSON_Delete(root);
}

/* ---- routing ------------------------------------------------------------ */

static void s_forward(brk_t *self, const s_in_t *in, const head_t *env, const char *dest,
                      zmq_msg_t *data)
{
    if (s_send_frame(self, dest, strlen(dest), in->name, data) != 0) {
        int e = errno;
        self->stats.dropped++;
        char message[256];
        snprintf(message, sizeof message, "peer \"%s\" %s", dest,
                 e == EAGAIN ? "is not keeping up (its queue is full)" : "is not connected");
        s_error(self, in, env->id, "undeliverable", message, env->type, env->to);
        return;
    }
    self->stats.routed++;
    log_debug("routed %s #%lld %s -> %s (%zu bytes)", env->type, (long long) env->id, in->name,
              dest, zmq_msg_size(data));
}

typedef struct {
    brk_t *self;
    const char *sender;
    zmq_msg_t *data;   /* a published frame, or */
    const char *text;  /* an event of the broker's */
} s_fanout_t;

static void s_deliver(const char *peer, void *arg)
{
    s_fanout_t *f = arg;
    int rc = f->data ? s_send_frame(f->self, peer, strlen(peer), f->sender, f->data)
                     : s_send_text(f->self, peer, strlen(peer), f->text);
    if (rc == 0) {
        f->self->stats.delivered++;
    } else if (f->data) { /* s_send_text counted its own */
        f->self->stats.dropped++;
        log_debug("cannot deliver to subscriber %s: %s", peer, zmq_strerror(errno));
    }
}

static void s_publish(brk_t *self, const s_in_t *in, const char *topic, zmq_msg_t *data)
{
    s_fanout_t f = {.self = self, .sender = in->name, .data = data};
    size_t n = topics_match(self->topics, topic, s_deliver, &f);
    if (n == 0) {
        self->stats.swallowed++;
        return;
    }
    self->stats.published++;
    log_debug("published on %s from %s to %zu peers", topic, in->name, n);
}

/* An event of the broker's on the topic its body names ("peers",
 * "interest"); body is taken. */
static void s_event(brk_t *self, cJSON *body)
{
    if (!body)
        return;
    char topic[TOPICS_NAME_MAX + 1], to[TOPICS_NAME_MAX + sizeof ENV_TOPIC_PREFIX];
    snprintf(topic, sizeof topic, "%s", env_str(body, "topic") ?: "peers");
    snprintf(to, sizeof to, ENV_TOPIC_PREFIX "%s", topic);
    char *text = env_encode("event", to, self->next_id++, -1, body);
    if (!text)
        return;
    if (self->cap)
        cap_out(self->cap, text);
    s_fanout_t f = {.self = self, .text = text};
    topics_match(self->topics, topic, s_deliver, &f);
    self->stats.events++;
    cJSON_free(text);
}

static void s_serve(brk_t *self, const s_in_t *in, const env_t *env)
{
    svc_out_t out;
    svc_handle(&self->svc, env, in->name, self->now, &out);
    self->stats.handled++;
    if (out.code) {
        s_error(self, in, env->id, out.code, out.message, env->type, env->to);
    } else if (out.reply) {
        s_send_own(self, in, out.reply, env->id, out.body);
        out.body = NULL;
    }
    /* In this same turn, before any other message is read: a change of
     * interest reaches the supervisors before the subscriber can act on its
     * "subscribed". */
    for (int i = 0; i < out.nevents; i++) {
        s_event(self, out.events[i]);
        out.events[i] = NULL;
    }
    if (out.direct) {
        char *text = env_encode("event", ENV_TOPIC_PREFIX SVC_INTEREST_TOPIC, self->next_id++, -1,
                                out.direct);
        out.direct = NULL;
        if (text && self->cap)
            cap_out(self->cap, text);
        if (text)
            s_send_text(self, in->name, strlen(in->name), text);
        cJSON_free(text);
    }
    svc_out_clear(&out);
}

/* ---- limits and permissions --------------------------------------------- */

/* The flood guard: one token per message, per peer. Senders without a
 * session share one bucket; their hellos have a bucket of their own, so a
 * flood from an unregistered sender cannot keep new peers from
 * registering. */
static bool s_rate_ok(brk_t *self, reg_peer_t *peer, const head_t *env)
{
    double rate = self->cfg.max_rate;
    if (rate <= 0)
        return true;
    if (!peer && strcmp(env->type, "hello") == 0)
        return rate_take(&self->hello_rate, rate * RATE_HELLO_FACTOR, rate * RATE_HELLO_FACTOR,
                         self->now);
    if (!peer)
        return rate_take(&self->anon_rate, rate, rate, self->now);
    if (strcmp(peer->role, "supervisor") == 0)
        rate *= RATE_SUPERVISOR_FACTOR;
    return rate_take(&peer->rate, rate, rate, self->now);
}

static bool s_is_hello(const head_t *env, const route_t *r)
{
    return r->action == ROUTE_BROKER && strcmp(env->type, "hello") == 0;
}

/* May this routed message go on (docs/SECURITY.md)? With CURVE, a hello
 * must fit the sender's key (policy_identity) and every other message must
 * come with the key its name was registered with; then the role rules
 * (policy_allows). peer: the sender's registration (NULL before hello);
 * body: the decoded envelope of a message to the broker, else NULL. */
static bool s_permitted(brk_t *self, const reg_peer_t *peer, const s_in_t *in, const head_t *env,
                        const env_t *body, zmq_msg_t *data, const route_t *r, char *why,
                        size_t size)
{
    bool hello = s_is_hello(env, r);
    if (self->cfg.auth) {
        const char *key = zmq_msg_gets(data, "User-Id");
        if (hello) {
            const char *role = body ? env_str(body->body, "role") : NULL;
            if (!reg_role_valid(role))
                return true; /* service.c answers bad_request */
            const char *key_role, *key_name;
            if (!auth_lookup(self->cfg.auth, key, &key_role, &key_name)) {
                snprintf(why, size, "this connection's key is no longer in the allow directory");
                return false;
            }
            return policy_identity(key_role, key_name, in->name, role, why, size);
        }
        if (!peer || !key || strcmp(peer->key, key) != 0) {
            snprintf(why, size,
                     "\"%s\" was registered with another key: a connection speaks only for the "
                     "names of its own key",
                     in->name);
            return false;
        }
    }
    if (hello || !peer)
        return true;
    const reg_peer_t *dest = r->action == ROUTE_FORWARD ? r->dest_peer : NULL;
    policy_msg_t m = {.role = peer->role,
                      .name = in->name,
                      .type = env->type,
                      .to = env->to,
                      .to_role = dest ? dest->role : NULL};
    return policy_allows(&m, why, size);
}

/* With CURVE: a successful hello binds the name to the connection's key. */
static void s_bind_key(brk_t *self, const s_in_t *in, zmq_msg_t *data)
{
    reg_peer_t *peer = self->cfg.auth ? reg_lookup(self->reg, in->name) : NULL;
    const char *key = peer ? zmq_msg_gets(data, "User-Id") : NULL;
    if (peer)
        snprintf(peer->key, sizeof peer->key, "%s", key ? key : "");
}

void brk_on_auth_event(brk_t *self)
{
    if (self->cfg.auth && auth_on_monitor(self->cfg.auth, clk_now_ms()))
        self->stats.auth_refused++;
}

/* One message: routing id, first data frame, and how many data frames. */
static void s_handle(brk_t *self, zmq_msg_t *id, zmq_msg_t *data, size_t frames)
{
    self->stats.received++;
    s_in_t in = {.id = zmq_msg_data(id), .id_len = zmq_msg_size(id)};
    if (route_sender_valid(in.id, in.id_len, in.buf, sizeof in.buf))
        in.name = in.buf;
    reg_peer_t *peer = in.name ? reg_lookup(self->reg, in.name) : NULL;
    if (peer)
        reg_touch(peer, self->now); /* any message is a sign of life */

    route_t r;
    size_t size = frames ? zmq_msg_size(data) : 0;
    if (!route_check_frames(frames, size, self->cfg.max_msg, &r)) {
        bool readable = frames && size <= self->cfg.max_msg;
        s_refuse(self, &in, &r, readable ? data : NULL);
        return;
    }
    /* The head is all that routing needs; the broker's own messages (and
     * the capture) need the whole envelope, decoded again. */
    env_err_t err;
    head_t head;
    if (head_read(zmq_msg_data(data), size, &head, &err) != 0) {
        route_decode_failed(&err, &r);
        s_refuse(self, &in, &r, data);
        return;
    }
    env_t *env = NULL;
    if (self->cap || strcmp(head.to, "broker") == 0) {
        env = env_decode(zmq_msg_data(data), size, &err);
        if (!env) { /* head_read accepted it: only out of memory */
            route_decode_failed(&err, &r);
            s_refuse(self, &in, &r, data);
            return;
        }
        if (self->cap)
            cap_in(self->cap, in.name ? in.name : "", env->root);
    }
    if (!s_rate_ok(self, peer, &head)) {
        char message[200];
        snprintf(message, sizeof message,
                 "more than %.0f messages a second from this peer: message dropped",
                 self->cfg.max_rate *
                     (peer && strcmp(peer->role, "supervisor") == 0 ? RATE_SUPERVISOR_FACTOR : 1));
        s_error(self, &in, head.id, "rate_limited", message, head.type, head.to);
        env_destroy(&env);
        return;
    }
    route_decide(&head, in.name, self->reg, &r);
    char why[256];
    if (r.action != ROUTE_ERROR &&
        !s_permitted(self, peer, &in, &head, env, data, &r, why, sizeof why)) {
        s_error(self, &in, head.id, "forbidden", why, head.type, head.to);
        env_destroy(&env);
        return;
    }
    switch (r.action) {
    case ROUTE_ERROR:
        s_error(self, &in, head.id, r.code, r.message, head.type, head.to);
        break;
    case ROUTE_FORWARD:
        s_forward(self, &in, &head, r.dest, data);
        break;
    case ROUTE_PUBLISH:
        s_publish(self, &in, r.topic, data);
        break;
    case ROUTE_BROKER: /* to "broker": env is decoded */
        s_serve(self, &in, env);
        if (s_is_hello(&head, &r))
            s_bind_key(self, &in, data);
        break;
    }
    env_destroy(&env);
}

int brk_drain(brk_t *self, int budget)
{
    self->now = clk_now_ms();
    int n = 0;
    while (n < budget) {
        zmq_msg_t id, data;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            if (errno == EINTR)
                continue;
            break; /* EAGAIN: nothing more waiting */
        }
        zmq_msg_init(&data);
        size_t frames = 0;
        if (zmq_msg_more(&id) && zmq_msg_recv(&data, self->sock, 0) >= 0) {
            frames = 1;
            /* Count and discard any further frames: they make it bad_envelope. */
            bool more = zmq_msg_more(&data);
            while (more) {
                zmq_msg_t extra;
                zmq_msg_init(&extra);
                if (zmq_msg_recv(&extra, self->sock, 0) < 0) {
                    zmq_msg_close(&extra);
                    break;
                }
                frames++;
                more = zmq_msg_more(&extra);
                zmq_msg_close(&extra);
            }
        }
        s_handle(self, &id, &data, frames);
        zmq_msg_close(&data);
        zmq_msg_close(&id);
        n++;
    }
    return n;
}

static void s_on_expired(const reg_peer_t *peer, void *arg)
{
    brk_t *self = arg;
    cJSON *interest = svc_drop_peer(&self->svc, peer->name);
    self->stats.expired++;
    log_info("peer %s expired (%s, silent for %lld ms)", peer->name, peer->role,
             (long long) (self->now - peer->last_seen_ms));
    s_event(self, svc_peer_event("peer_lost", peer, "expired"));
    s_event(self, interest);
}

void brk_expire(brk_t *self, int64_t now_ms)
{
    self->now = now_ms;
    reg_expire(self->reg, now_ms, self->cfg.expiry_ms, s_on_expired, self);
}
