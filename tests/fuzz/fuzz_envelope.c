/* fuzz_envelope: the broker's handling of one frame of untrusted input.
 *
 * Each input is one frame (bytes, usually an attempt at a JSON envelope).
 * It goes through:
 *   1. the two decoders directly, on a copy that ends at an unreadable
 *      page, so that any read past the frame (ours or cJSON's, which is not
 *      instrumented) is a crash: head_read() (broker/head.h, the broker's
 *      hot path: jscan, no tree) and env_decode() (cJSON), checked against
 *      each other: what head_read accepts, cJSON accepts, with the same
 *      type, to, id, re and from; where they differ, head_read says
 *      bad_json (it is the stricter JSON reader), never another error; what
 *      env_decode accepts, head_read accepts once cJSON has re-printed it;
 *      and env_decode_raw (arborctl's, the body's "report" kept as text)
 *      accepts exactly what env_decode accepts, with a report that parses
 *      to env_decode's;
 *   2. the real broker (brk_t of broker/broker.c, the code arbor-broker runs),
 *      whose ROUTER is an inproc socket in this process: the frame is sent by
 *      a registered client, a registered supervisor, a second client named
 *      under the supervisor (as workers were before they left the broker),
 *      an unregistered but validly named peer and a peer whose routing id
 *      ZeroMQ generated; then as two frames; then the broker expires
 *      everyone. Every reply and forwarded copy is read back and checked:
 *      the broker's own messages must be valid envelopes, forwarded ones
 *      the input frame byte for byte.
 * A fresh broker state is made for each input, so runs are reproducible.
 * The broker must handle every message it was sent (brk_drain), never stall
 * and never crash; leaks are reported by LeakSanitizer at exit.
 *
 * Run with tests/fuzz/run.sh; corpus in tests/fuzz/corpus/envelope. */
#include <czmq.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "jscan.h"
#include "env.h"
#include "head.h"
#include "log.h"
#include "route.h"

#define S_ENDPOINT "inproc://fuzz-broker"
#define S_MAX_MSG 4096 /* small, so that too_large is reachable */
#define S_ARENA (1u << 20)

/* The peers: index 0..2 say hello each run, 3 never does, 4 has no name. */
enum { S_CLIENT, S_SUPERVISOR, S_UNDER, S_GHOST, S_ANON, S_NPEERS };
static const char *s_names[S_NPEERS] = {"cli", "sup", "sup.t1.1", "ghost", NULL};
static const char *s_roles[3] = {"client", "supervisor", "client"};

static zsock_t *s_router;
static zsock_t *s_peers[S_NPEERS];
static char *s_arena; /* S_ARENA bytes, then a PROT_NONE page */
static reg_t *s_empty; /* a registry with nobody in it */

static void s_die(const char *what)
{
    fprintf(stderr, "fuzz_envelope: %s\n", what);
    abort();
}

static void s_teardown(void)
{
    for (int i = 0; i < S_NPEERS; i++)
        zsock_destroy(&s_peers[i]);
    zsock_destroy(&s_router);
    reg_destroy(&s_empty);
}

static void s_setup(void)
{
    log_init("fuzz_envelope", ALOG_ERROR);
    zsys_handler_set(NULL);
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, S_ARENA + (size_t) page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map + S_ARENA, (size_t) page, PROT_NONE) != 0)
        s_die("cannot map the guarded arena");
    s_arena = map;
    s_empty = reg_new();
    s_router = zsock_new(ZMQ_ROUTER);
    if (!s_router)
        s_die("cannot create the ROUTER");
    /* As broker/main.c sets it up. */
    zsock_set_router_mandatory(s_router, 1);
    zsock_set_router_handover(s_router, 1);
    zsock_set_sndhwm(s_router, 100000);
    zsock_set_rcvhwm(s_router, 100000);
    if (zsock_bind(s_router, S_ENDPOINT) < 0)
        s_die("cannot bind " S_ENDPOINT);
    for (int i = 0; i < S_NPEERS; i++) {
        s_peers[i] = zsock_new(ZMQ_DEALER);
        if (!s_peers[i])
            s_die("cannot create a DEALER");
        if (s_names[i])
            zsock_set_identity(s_peers[i], s_names[i]);
        zsock_set_sndhwm(s_peers[i], 100000);
        zsock_set_rcvhwm(s_peers[i], 100000);
        if (zsock_connect(s_peers[i], S_ENDPOINT) < 0)
            s_die("cannot connect to " S_ENDPOINT);
    }
    atexit(s_teardown); /* after CZMQ's own: runs before it */
}

/* The input, copied so that its last byte is the last readable one. */
static const char *s_guarded(const uint8_t *data, size_t size)
{
    char *copy = s_arena + S_ARENA - size;
    if (size)
        memcpy(copy, data, size);
    return copy;
}

static void s_send(int peer, const void *data, size_t size, bool more)
{
    /* libFuzzer's SIGALRM (its -timeout check) can interrupt a send that
     * waits for room: that is no failure, send again. */
    while (zmq_send(zsock_resolve(s_peers[peer]), data, size, more ? ZMQ_SNDMORE : 0) < 0)
        if (zmq_errno() != EINTR) {
            fprintf(stderr, "fuzz_envelope: peer %d: %s\n", peer, zmq_strerror(zmq_errno()));
            s_die("send to the broker failed");
        }
}

/* Let the broker handle exactly `expected` messages; never wait forever. */
static void s_pump(brk_t *brk, int expected)
{
    int handled = 0;
    int64_t deadline = clk_now_ms() + 5000;
    while (handled < expected) {
        handled += brk_drain(brk, expected - handled);
        if (handled >= expected)
            break;
        if (clk_now_ms() > deadline)
            s_die("the broker stalled: messages sent to it were not handled");
        zmq_pollitem_t item = {.socket = zsock_resolve(s_router), .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, 10);
    }
}

/* Read everything the broker sent to the peers: replies, forwarded frames,
 * events. Each delivery must be [sender][envelope]; what the broker says
 * itself must be a valid envelope; what it forwards must be the input frame,
 * byte for byte (forwarded is NULL while only the broker speaks). */
static void s_drain_peers(const char *forwarded, size_t fsize)
{
    for (int i = 0; i < S_NPEERS; i++) {
        void *sock = zsock_resolve(s_peers[i]);
        for (;;) {
            zmq_msg_t from, msg;
            zmq_msg_init(&from);
            if (zmq_msg_recv(&from, sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&from);
                break;
            }
            zmq_msg_init(&msg);
            if (!zmq_msg_more(&from) || zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0 ||
                zmq_msg_more(&msg))
                s_die("a delivery is not exactly [sender][envelope]");
            char name[ENV_NAME_MAX + 1];
            size_t flen = zmq_msg_size(&from);
            bool by_broker = flen == 6 && memcmp(zmq_msg_data(&from), "broker", 6) == 0;
            if (by_broker) {
                env_err_t err;
                env_t *env = env_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &err);
                head_t head;
                if (!env || head_read(zmq_msg_data(&msg), zmq_msg_size(&msg), &head, &err) != 0)
                    s_die("the broker sent an envelope that does not decode");
                env_destroy(&env);
            } else if (!route_sender_valid(zmq_msg_data(&from), flen, name, sizeof name)) {
                s_die("a forwarded message names an invalid sender");
            } else if (!forwarded || zmq_msg_size(&msg) != fsize ||
                       memcmp(zmq_msg_data(&msg), forwarded, fsize) != 0) {
                s_die("a forwarded message is not the frame that was sent");
            }
            zmq_msg_close(&msg);
            zmq_msg_close(&from);
        }
    }
}

static void s_hello(int peer, const char *role)
{
    char text[256];
    int n = snprintf(text, sizeof text,
                     "{\"v\":1,\"type\":\"hello\",\"to\":\"broker\",\"id\":1,\"re\":null,"
                     "\"body\":{\"role\":\"%s\",\"incarnation\":\"fuzz\"}}",
                     role);
    s_send(peer, text, (size_t) n, false);
}

static void s_same_head(const head_t *a, const head_t *b)
{
    if (strcmp(a->type, b->type) != 0 || strcmp(a->to, b->to) != 0 || a->id != b->id ||
        a->re != b->re || a->from != b->from || strcmp(a->from_name, b->from_name) != 0)
        s_die("head_read and env_decode read the same envelope differently");
}

/* An envelope cJSON accepts but head_read does not (JSON that is not
 * strict): as cJSON prints it, both must read it, and the same. (Compared
 * with the printed text decoded again, not with the original: cJSON prints
 * some integers above 10^15 with 15 digits, 9007199254740991 as
 * 9.00719925474099e+15.) */
static void s_reprinted(const env_t *env)
{
    char *text = cJSON_PrintUnformatted(env->root);
    if (!text)
        return; /* out of memory */
    env_err_t err;
    env_t *again = env_decode(text, strlen(text), &err);
    head_t head, want;
    int hrc = head_read(text, strlen(text), &head, &err);
    if (again) {
        if (hrc != 0)
            s_die("head_read refuses an envelope as cJSON prints it");
        head_of_env(again, &want);
        s_same_head(&head, &want);
        env_destroy(&again);
    } else if (hrc == 0) {
        s_die("head_read accepted what env_decode refuses");
    }
    cJSON_free(text);
}

/* env_decode_raw against env_decode on the same frame (env, err: its
 * result): the same verdict and error code, the same head, and a "report"
 * kept as text that parses to the item env_decode built. */
static void s_raw_agrees(const char *frame, size_t size, const env_t *env, const env_err_t *err)
{
    env_err_t rerr;
    memset(&rerr, 0, sizeof rerr);
    env_t *raw = env_decode_raw(frame, size, "report", &rerr);
    if (!env != !raw || (!env && strcmp(err->code, rerr.code) != 0))
        s_die("env_decode_raw and env_decode disagree on a frame");
    if (!env)
        return;
    head_t a, b;
    head_of_env(env, &a);
    head_of_env(raw, &b);
    s_same_head(&a, &b);
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(env->body, "report");
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(raw->body, "report");
    if (cJSON_IsRaw(got)) {
        cJSON *parsed = cJSON_Parse(got->valuestring);
        bool same = parsed && cJSON_Compare(parsed, want, true);
        cJSON_Delete(parsed);
        if (!same)
            s_die("env_decode_raw kept a report that is not env_decode's");
    } else if ((got || want) && !cJSON_Compare(got, want, true)) { /* Compare(NULL, NULL) is false */
        s_die("env_decode_raw parsed a report differently from env_decode");
    }
    env_destroy(&raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        s_setup();
        ready = true;
    }
    if (size > S_ARENA)
        return 0;

    /* 1. The decoders alone, on an exactly sized, guarded buffer. */
    const char *frame = s_guarded(data, size);
    env_err_t err, herr;
    memset(&err, 0, sizeof err);
    memset(&herr, 0, sizeof herr);
    env_t *env = env_decode(frame, size, &err);
    s_raw_agrees(frame, size, env, &err);
    head_t head;
    int hrc = head_read(frame, size, &head, &herr);
    if (env) {
        /* What the broker reads of a decoded envelope. */
        if (!env->body || !cJSON_IsObject(env->body) || env->id < 0 || !*env->to ||
            !env_type_known(env->type))
            s_die("env_decode accepted an envelope that breaks its own rules");
        head_t want;
        head_of_env(env, &want);
        if (hrc == 0) {
            s_same_head(&head, &want);
        } else {
            if (strcmp(herr.code, "bad_json") != 0)
                s_die("head_read refused an envelope env_decode accepts, not as bad_json");
            s_reprinted(env);
        }
        env_destroy(&env);
    } else {
        if (!*err.code)
            s_die("env_decode failed without an error code");
        if (hrc == 0)
            s_die("head_read accepted what cJSON cannot parse or env_decode refuses");
        if (strcmp(herr.code, "bad_json") != 0 &&
            (strcmp(herr.code, err.code) != 0 || strcmp(herr.message, err.message) != 0))
            s_die("head_read and env_decode refuse the same input for different reasons");
    }
    /* jscan_find, bounded by the frame on any input (the guard page), finds
     * in a valid text what jscan_member finds, for each top-level name. */
    if (jscan(frame, size, NULL, NULL) == JSCAN_OBJECT) {
        static const char *names[] = {"v", "type", "to", "from", "id", "re", "body"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            jscan_span_t m, f;
            bool found = jscan_member(frame, size, names[i], &m);
            if (jscan_find(frame, size, names[i], &f) != found ||
                (found && (f.kind != m.kind || f.start != m.start || f.len != m.len)))
                s_die("jscan_find and jscan_member disagree on a valid text");
        }
    } else {
        jscan_span_t f;
        (void) jscan_find(frame, size, "body", &f);
    }
    if (hrc == 0) {
        route_t r;
        route_decide(&head, "cli", s_empty, &r); /* nobody registered */
        if (r.action != ROUTE_ERROR && !(strcmp(head.to, "broker") == 0 &&
                                         strcmp(head.type, "hello") == 0))
            s_die("route_decide routed a message from an unregistered sender");
    }

    /* 2. The broker: a fresh state, three registered peers. */
    brk_cfg_t cfg = {.max_msg = S_MAX_MSG,
                     .heartbeat_ms = 1000,
                     .expiry_ms = 5000,
                     .capture = "/dev/null", /* the capture path runs too */
                     /* One input in five runs with a rate limit of one message a
                      * second (burst 1): each peer's hello passes, its frame is
                      * rate_limited (supervisors get 10x: theirs passes). The
                      * others run unlimited, so that routing is reached. */
                     .max_rate = size % 5 == 2 ? 1 : 0,
                     .auth = NULL};
    brk_t *brk = brk_new(s_router, &cfg);
    if (!brk)
        s_die("brk_new failed");
    for (int i = S_CLIENT; i <= S_UNDER; i++)
        s_hello(i, s_roles[i]);
    s_pump(brk, 3);
    s_drain_peers(NULL, 0);

    /* The frame from each kind of sender. */
    for (int i = 0; i < S_NPEERS; i++)
        s_send(i, frame, size, false);
    s_pump(brk, S_NPEERS);
    s_drain_peers(frame, size);

    /* As two frames (always bad_envelope), from a registered sender. */
    size_t half = size / 2;
    s_send(S_CLIENT, frame, half, true);
    s_send(S_CLIENT, frame + half, size - half, false);
    s_pump(brk, 1);
    s_drain_peers(NULL, 0);

    /* Everyone expires (peer_lost events to whoever subscribed to "peers"). */
    brk_expire(brk, clk_now_ms() + 3600 * 1000);
    s_drain_peers(NULL, 0);

    const stats_t *st = brk_stats(brk);
    if (st->received != 3 + S_NPEERS + 1)
        s_die("the broker did not count every message it received");
    brk_destroy(&brk);
    return 0;
}
