#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clock.h"
#include "curve.h"
#include "peer.h"

struct ctl_t {
    peer_t *peer;
    char endpoint[512];
    int64_t next_tick;
    zlist_t *aside; /* env_t* received while waiting for a reply */
};

static int s_sigfd = -1;
static volatile bool s_signalled;

int ctl_signals_init(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    s_sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    /* A dead reader of our stdout must give EPIPE, not kill us mid-report. */
    signal(SIGPIPE, SIG_IGN);
    return s_sigfd >= 0 ? 0 : -1;
}

bool ctl_signalled(void) { return s_signalled; }

static void s_drain_signals(void)
{
    struct signalfd_siginfo info;
    while (s_sigfd >= 0 && read(s_sigfd, &info, sizeof info) == (ssize_t) sizeof info)
        s_signalled = true;
}

/* Poll the peer socket and the signalfd until deadline (0 = none) or the
 * next heartbeat. Returns 1 readable, 0 timeout, -1 signal. */
static int s_poll(ctl_t *self, int64_t deadline)
{
    while (!s_signalled) {
        int64_t now = clk_now_ms();
        if (now >= self->next_tick) {
            peer_tick(self->peer);
            self->next_tick = clk_now_ms() + PEER_HEARTBEAT_MS;
            now = clk_now_ms();
        }
        if (deadline && now >= deadline)
            return 0;
        int64_t until = self->next_tick;
        if (deadline && deadline < until)
            until = deadline;
        zmq_pollitem_t items[2] = {
            {.socket = zsock_resolve(peer_sock(self->peer)), .events = ZMQ_POLLIN},
            {.fd = s_sigfd, .events = ZMQ_POLLIN},
        };
        int n = zmq_poll(items, s_sigfd >= 0 ? 2 : 1, (long) (until > now ? until - now : 0));
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0 && (items[1].revents & ZMQ_POLLIN))
            s_drain_signals();
        if (s_signalled)
            break;
        if (n > 0 && (items[0].revents & ZMQ_POLLIN))
            return 1;
    }
    return -1;
}

/* How long to wait for the broker's welcome: CTL_WELCOME_MS, or
 * ARBOR_CONNECT_TIMEOUT seconds (a loaded or distant broker). */
static int s_welcome_ms(void)
{
    const char *v = getenv("ARBOR_CONNECT_TIMEOUT");
    if (!v || !*v)
        return CTL_WELCOME_MS;
    char *end;
    double s = strtod(v, &end);
    if (*end || !(s > 0) || s > 3600) {
        fprintf(stderr,
                "arborctl: ARBOR_CONNECT_TIMEOUT=%s is not a number of seconds in (0, 3600]: "
                "waiting %d s\n",
                v, CTL_WELCOME_MS / 1000);
        return CTL_WELCOME_MS;
    }
    return (int) (s * 1000);
}

ctl_t *ctl_connect(const char *endpoint)
{
    int welcome_ms = s_welcome_ms();
    int64_t deadline = clk_now_ms() + welcome_ms;
    char name[ENV_NAME_MAX + 1], rnd[20], key_name[CURVE_NAME_MAX + 1];
    peer_random_id(rnd, sizeof rnd);
    /* With CURVE the broker accepts a client only under its key's name,
     * NAME or NAME.*: "NAME.ctl-PID-RND". */
    bool curve = curve_env_cert_name(key_name, sizeof key_name) == 0;
    if (curve)
        snprintf(name, sizeof name, "%s.ctl-%d-%.8s", key_name, (int) getpid(), rnd);
    else
        snprintf(name, sizeof name, "ctl-%d-%.8s", (int) getpid(), rnd);
    ctl_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->aside = zlist_new();
    self->peer = peer_new(endpoint, name, "client", CTL_SNDTIMEO_MS);
    if (!self->peer || !self->aside) {
        fprintf(stderr, "arborctl: cannot connect to broker at %s\n", endpoint);
        ctl_destroy(&self);
        return NULL;
    }
    self->next_tick = clk_now_ms() + PEER_HEARTBEAT_MS;
    while (!peer_welcomed(self->peer)) {
        int rc = s_poll(self, deadline);
        if (rc < 0) {
            ctl_destroy(&self);
            return NULL;
        }
        if (rc == 0) {
            fprintf(stderr, "arborctl: cannot reach broker at %s (no answer within %g s)%s\n",
                    endpoint, welcome_ms / 1000.0,
                    getenv(CURVE_ENV_CERT) ? "; with CURVE: is this client's certificate in the "
                                             "broker's allow directory, and the broker's key right?"
                                           : "; is it running? A broker that uses CURVE never "
                                             "answers a client without keys: then give "
                                             "--curve-cert FILE --curve-server-key KEY "
                                             "(docs/SECURITY.md)");
            ctl_destroy(&self);
            return NULL;
        }
        env_t *env = peer_recv(self->peer);
        if (env && strcmp(env->from, "broker") == 0 && strcmp(env->type, "error") == 0 &&
            strcmp(env_str(env->body, "code") ?: "", "forbidden") == 0) {
            fprintf(stderr, "arborctl: the broker at %s refused this client: %s\n", endpoint,
                    env_str(env->body, "message") ?: "forbidden");
            env_destroy(&env);
            ctl_destroy(&self);
            return NULL;
        }
        if (env) /* nothing is expected before welcome; keep it anyway */
            zlist_append(self->aside, env);
    }
    return self;
}

void ctl_keep_raw_reports(ctl_t *self) { peer_keep_raw(self->peer, "report"); }

void ctl_destroy(ctl_t **self)
{
    if (!self || !*self)
        return;
    ctl_t *c = *self;
    if (c->aside) {
        env_t *env;
        while ((env = zlist_pop(c->aside)))
            env_destroy(&env);
        zlist_destroy(&c->aside);
    }
    if (c->peer) {
        /* Say bye so the broker forgets us now rather than at expiry; the
         * peer's linger bounds how long this can hold up exit. */
        if (peer_welcomed(c->peer)) {
            zsock_set_linger(peer_sock(c->peer), 200);
            peer_send(c->peer, "broker", "bye", NULL, -1);
        }
        peer_destroy(&c->peer);
    }
    free(c);
    *self = NULL;
}

const char *ctl_endpoint(ctl_t *self) { return self->endpoint; }

int64_t ctl_send(ctl_t *self, const char *to, const char *type, cJSON *body)
{
    return peer_send(self->peer, to, type, body, -1);
}

env_t *ctl_recv(ctl_t *self, int64_t deadline)
{
    env_t *env = zlist_pop(self->aside);
    if (env)
        return env;
    while (!s_signalled) {
        int rc = s_poll(self, deadline);
        if (rc <= 0)
            return NULL;
        env = peer_recv(self->peer);
        if (env)
            return env;
    }
    return NULL;
}

void ctl_unread(ctl_t *self, env_t *env)
{
    if (env)
        zlist_append(self->aside, env);
}

static env_t *s_wait_reply(ctl_t *self, int64_t id, int timeout_ms)
{
    int64_t deadline = clk_now_ms() + timeout_ms;
    while (!s_signalled) {
        int rc = s_poll(self, deadline);
        if (rc <= 0)
            return NULL;
        env_t *env = peer_recv(self->peer);
        if (!env)
            continue;
        if (env->re == id)
            return env;
        zlist_append(self->aside, env);
    }
    return NULL;
}

env_t *ctl_request(ctl_t *self, const char *to, const char *type, cJSON *body, int timeout_ms)
{
    int64_t id = ctl_send(self, to, type, body);
    if (id < 0)
        return NULL;
    return s_wait_reply(self, id, timeout_ms);
}

static bool s_lists(const env_t *env, const char *topic)
{
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(env->body, "topics");
    const cJSON *t;
    cJSON_ArrayForEach(t, topics)
        if (cJSON_IsString(t) && strcmp(t->valuestring, topic) == 0)
            return true;
    return false;
}

int ctl_subscribe(ctl_t *self, const char *topic, int timeout_ms)
{
    if (peer_subscribe(self->peer, topic) != 0)
        return -1;
    int64_t deadline = clk_now_ms() + timeout_ms;
    while (!s_signalled) {
        int rc = s_poll(self, deadline);
        if (rc <= 0)
            return -1;
        env_t *env = peer_recv(self->peer);
        if (!env)
            continue;
        bool done = strcmp(env->type, "subscribed") == 0 && strcmp(env->from, "broker") == 0 &&
                    s_lists(env, topic);
        if (done) {
            env_destroy(&env);
            return 0;
        }
        zlist_append(self->aside, env);
    }
    return -1;
}

cJSON *ctl_supervisors(ctl_t *self)
{
    env_t *env = ctl_request(self, "broker", "peers", NULL, CTL_REPLY_MS);
    if (!env)
        return NULL;
    cJSON *names = cJSON_CreateArray();
    const cJSON *peers = cJSON_GetObjectItemCaseSensitive(env->body, "peers");
    const cJSON *p;
    cJSON_ArrayForEach(p, (strcmp(env->type, "peers") == 0 ? peers : NULL))
    {
        const char *role = env_str(p, "role");
        const char *name = env_str(p, "name");
        if (role && name && strcmp(role, "supervisor") == 0)
            cJSON_AddItemToArray(names, cJSON_CreateString(name));
    }
    env_destroy(&env);
    return names;
}
