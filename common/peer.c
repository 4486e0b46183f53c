#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "curve.h"
#include "log.h"

#define PEER_RECENT 64

struct peer_t {
    zsock_t *sock;
    char name[ENV_NAME_MAX + 1];
    char role[16];
    char incarnation[20];
    int64_t next_id;
    bool welcomed;
    int64_t expiry_ms; /* the broker's peer expiry, told in its welcome; 0: not yet */
    bool unreachable; /* a send timed out: don't wait again until the broker speaks */
    uint64_t dropped;
    int64_t forbidden_logged_ms; /* at most one warning per 10 s */
    zlistx_t *topics; /* char*, owned */
    const char *raw_member; /* peer_keep_raw */
    /* The last messages sent, so that one the broker refused as
     * "unknown_session" (it restarted) is sent again after hello. */
    struct {
        int64_t id;
        char *text;
        bool unsent; /* the broker was away: send it after the next welcome */
    } recent[PEER_RECENT];
};

void peer_random_id(char *out, size_t size)
{
    unsigned char raw[8] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t) sizeof raw) { /* fall back to time and pid */
        uint64_t x = (uint64_t) zclock_usecs() ^ ((uint64_t) getpid() << 32);
        memcpy(raw, &x, sizeof raw);
    }
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    for (; i < sizeof raw && 2 * i + 2 < size; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * i] = 0;
}

static void s_hello(peer_t *self)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "role", self->role);
    cJSON_AddStringToObject(body, "incarnation", self->incarnation);
    peer_send(self, "broker", "hello", body, -1);
}

static void s_resend(peer_t *self, int64_t id)
{
    int slot = (int) (id % PEER_RECENT);
    if (id < 0 || self->recent[slot].id != id || !self->recent[slot].text)
        return;
    const char *text = self->recent[slot].text;
    if (zmq_send(zsock_resolve(self->sock), text, strlen(text), 0) < 0)
        self->dropped++;
}

/* After a welcome: what could not be sent while the broker was away (a
 * tree's events, a reply...) goes now, oldest first. */
static void s_resend_unsent(peer_t *self)
{
    int64_t first = self->next_id > PEER_RECENT ? self->next_id - PEER_RECENT : 1;
    for (int64_t id = first; id < self->next_id; id++) {
        int slot = (int) (id % PEER_RECENT);
        if (self->recent[slot].id != id || !self->recent[slot].unsent)
            continue;
        const char *text = self->recent[slot].text;
        if (zmq_send(zsock_resolve(self->sock), text, strlen(text), ZMQ_DONTWAIT) < 0)
            return; /* still away: the next welcome tries again */
        self->recent[slot].unsent = false;
    }
}

static void s_send_subscriptions(peer_t *self)
{
    if (zlistx_size(self->topics) == 0)
        return;
    cJSON *body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(body, "topics");
    for (char *t = zlistx_first(self->topics); t; t = zlistx_next(self->topics))
        cJSON_AddItemToArray(list, cJSON_CreateString(t));
    peer_send(self, "broker", "subscribe", body, -1);
}

peer_t *peer_new(const char *endpoint, const char *name, const char *role, int sndtimeo_ms)
{
    if (!env_name_valid(name, ENV_NAME_MAX)) {
        log_error("invalid peer name \"%s\": use [A-Za-z0-9_.-]{1,%d}", name, ENV_NAME_MAX);
        return NULL;
    }
    peer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->name, sizeof self->name, "%s", name);
    snprintf(self->role, sizeof self->role, "%s", role);
    peer_random_id(self->incarnation, sizeof self->incarnation);
    self->next_id = 1;
    self->topics = zlistx_new();
    zlistx_set_destructor(self->topics, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator(self->topics, (zlistx_duplicator_fn *) strdup);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) {
        peer_destroy(&self);
        return NULL;
    }
    zsock_set_identity(self->sock, name);
    /* CZMQ defaults linger to 0, which loses the last messages at exit. */
    zsock_set_linger(self->sock, 1000);
    zsock_set_immediate(self->sock, 1);
    zsock_set_sndtimeo(self->sock, sndtimeo_ms);
    zsock_set_sndhwm(self->sock, 100000);
    zsock_set_rcvhwm(self->sock, 100000);
    /* ZMTP heartbeats let a supervisor or client notice a dead broker
     * connection (a partition) and reconnect. */
    zsock_set_heartbeat_ivl(self->sock, 1000);
    zsock_set_heartbeat_timeout(self->sock, 3000);
    zsock_set_heartbeat_ttl(self->sock, 3000);
    zsock_set_reconnect_ivl(self->sock, 100);
    zsock_set_reconnect_ivl_max(self->sock, 1000);
    zsock_set_maxmsgsize(self->sock, 64 << 20);
    /* CURVE when ARBOR_CURVE_SERVERKEY and ARBOR_CURVE_CERT say so (curve.h):
     * set before connecting, or the connection is made plain. */
    curve_client_t curve;
    char err[512];
    int secure = curve_client_from_env(&curve, err, sizeof err);
    if (secure < 0) {
        log_error("cannot connect to broker endpoint \"%s\": %s", endpoint, err);
        peer_destroy(&self);
        return NULL;
    }
    if (secure > 0) {
        curve_client_apply(&curve, self->sock);
        curve_client_clear(&curve);
    }
    if (zsock_connect(self->sock, "%s", endpoint) != 0) {
        log_error("cannot connect to broker endpoint \"%s\": %s", endpoint, zmq_strerror(errno));
        peer_destroy(&self);
        return NULL;
    }
    s_hello(self);
    return self;
}

void peer_destroy(peer_t **self)
{
    if (!self || !*self)
        return;
    zsock_destroy(&(*self)->sock);
    for (int i = 0; i < PEER_RECENT; i++)
        free((*self)->recent[i].text);
    zlistx_destroy(&(*self)->topics);
    free(*self);
    *self = NULL;
}

zsock_t *peer_sock(peer_t *self) { return self->sock; }
const char *peer_name(peer_t *self) { return self->name; }
bool peer_welcomed(peer_t *self) { return self->welcomed; }
uint64_t peer_dropped(peer_t *self) { return self->dropped; }
int64_t peer_expiry_ms(peer_t *self) { return self->expiry_ms; }

int64_t peer_send(peer_t *self, const char *to, const char *type, cJSON *body, int64_t re)
{
    int64_t id = self->next_id++;
    char *text = env_encode(type, to, id, re, body);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    /* One send per outage may wait sndtimeo; the next ones fail at once. */
    int rc = zmq_send(zsock_resolve(self->sock), text, strlen(text),
                      self->unreachable ? ZMQ_DONTWAIT : 0);
    if (rc < 0 && errno == EAGAIN)
        self->unreachable = true;
    int slot = (int) (id % PEER_RECENT);
    free(self->recent[slot].text);
    self->recent[slot].id = id;
    self->recent[slot].text = text;
    /* hello, heartbeats and subscriptions are sent again by their own rules */
    self->recent[slot].unsent = rc < 0 && strcmp(to, "broker") != 0;
    if (rc < 0) {
        int e = errno;
        self->dropped++;
        log_debug("could not send %s to %s: %s", type, to, zmq_strerror(e));
        errno = e;
        return -1;
    }
    return id;
}

int peer_subscribe(peer_t *self, const char *topic)
{
    zlistx_add_end(self->topics, (void *) topic);
    cJSON *body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(body, "topics");
    cJSON_AddItemToArray(list, cJSON_CreateString(topic));
    return peer_send(self, "broker", "subscribe", body, -1) < 0 ? -1 : 0;
}

int peer_unsubscribe(peer_t *self, const char *topic)
{
    for (char *t = zlistx_first(self->topics); t; t = zlistx_next(self->topics))
        if (strcmp(t, topic) == 0) {
            zlistx_delete(self->topics, zlistx_cursor(self->topics));
            break;
        }
    cJSON *body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(body, "topics");
    cJSON_AddItemToArray(list, cJSON_CreateString(topic));
    return peer_send(self, "broker", "unsubscribe", body, -1) < 0 ? -1 : 0;
}

void peer_tick(peer_t *self)
{
    self->unreachable = false; /* at most one waiting send per heartbeat */
    if (self->welcomed)
        s_resend_unsent(self); /* what the broker could not deliver, again */
    if (self->welcomed)
        peer_send(self, "broker", "heartbeat", NULL, -1);
    else
        s_hello(self);
}

void peer_keep_raw(peer_t *self, const char *member) { self->raw_member = member; }

env_t *peer_recv(peer_t *self)
{
    zmsg_t *msg = zmsg_recv(self->sock);
    if (!msg)
        return NULL;
    env_t *env = NULL;
    if (zmsg_size(msg) != 2) {
        log_warn("dropping a message of %zu frames from the broker", zmsg_size(msg));
        zmsg_destroy(&msg);
        return NULL;
    }
    self->unreachable = false; /* it spoke: it is there */
    zframe_t *from = zmsg_first(msg);
    zframe_t *data = zmsg_next(msg);
    env_err_t err;
    env = self->raw_member
              ? env_decode_raw(zframe_data(data), zframe_size(data), self->raw_member, &err)
              : env_decode(zframe_data(data), zframe_size(data), &err);
    if (!env) {
        log_warn("dropping a bad message from %.*s: %s: %s", (int) zframe_size(from),
                 (char *) zframe_data(from), err.code, err.message);
        zmsg_destroy(&msg);
        return NULL;
    }
    size_t n = zframe_size(from) < ENV_NAME_MAX ? zframe_size(from) : ENV_NAME_MAX;
    memcpy(env->from, zframe_data(from), n);
    env->from[n] = 0;
    zmsg_destroy(&msg);

    if (strcmp(env->from, "broker") == 0) {
        if (strcmp(env->type, "welcome") == 0) {
            self->welcomed = true;
            self->expiry_ms = env_int(env->body, "expiry_ms", 0);
            s_send_subscriptions(self);
            s_resend_unsent(self);
            env_destroy(&env);
        } else if (strcmp(env->type, "error") == 0 &&
                   strcmp(env_str(env->body, "code") ?: "", "undeliverable") == 0 &&
                   env->re > 0 && self->recent[env->re % PEER_RECENT].id == env->re &&
                   strcmp(env_str(env->body, "type") ?: "", "event") != 0) {
            /* The destination's queue was full (or it was reconnecting):
             * our next tick sends it again. Events are best effort. */
            self->recent[env->re % PEER_RECENT].unsent = true;
            return env; /* the caller may want to know too */
        } else if (strcmp(env->type, "error") == 0 &&
                   strcmp(env_str(env->body, "code") ?: "", "unknown_session") == 0) {
            /* The broker restarted and forgot us: register again. */
            log_info("broker does not know this session: registering again");
            self->welcomed = false;
            s_hello(self);
            s_resend(self, env->re);
            env_destroy(&env);
        } else if (strcmp(env->type, "error") == 0 &&
                   strcmp(env_str(env->body, "code") ?: "", "forbidden") == 0) {
            /* Returned to the caller too; logged here so that no process
             * misses the broker's refusal (a hello refused: never welcomed). */
            int64_t now = zclock_mono();
            if (now - self->forbidden_logged_ms >= 10000 || !self->forbidden_logged_ms) {
                self->forbidden_logged_ms = now;
                log_warn("the broker refused %s from %s: %s",
                         env_str(env->body, "type") ?: "a message", self->name,
                         env_str(env->body, "message") ?: "forbidden");
            }
        }
    }
    return env;
}
