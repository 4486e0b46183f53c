/* broker_bench: routed messages per second through a ZeroMQ router.
 *
 *   broker_bench forward --bind EP
 *       the floor: a raw CZMQ ROUTER forwarder. Receives [sender][dest][payload]
 *       and sends [dest][sender][payload] unchanged, parsing nothing.
 *
 *   broker_bench run --connect EP --mode arbor|raw [--senders N] [--count M]
 *                    [--size BYTES] [--window W]
 *       N sender threads (DEALERs) each send M messages of about BYTES bytes
 *       to one receiver (a DEALER in the main thread), through the router at
 *       EP. In arbor mode every peer says hello to arbor-broker first, as
 *       clients asking a supervisor do: the receiver registers as the
 *       supervisor "bench-rx", the senders as clients "bench-tx-N", and the
 *       messages are valid status requests
 *       ({"v":1,"type":"status","to":"bench-rx",...}) that the broker
 *       parses, checks (envelope, type, roles) and forwards; in raw mode they
 *       are the same bytes behind a destination frame. (Workers are not
 *       broker peers: many peers sending to one supervisor is now clients'
 *       traffic.) Time: from the moment the
 *       senders are released until the receiver has the last message.
 *       At most W messages (default 20000) are in flight, sent but not yet
 *       received, as with peers that wait for answers: arbor-broker never
 *       blocks on a full peer (it answers `undeliverable` and drops), the
 *       raw forwarder blocks; without a window the comparison would be of
 *       what each does with an overflowing receiver, not of routing.
 *       Prints: mode=... senders=N count=TOTAL bytes=B received=R ms=T msgs_per_s=X
 *
 * Both modes use the same sockets, HWMs and counting; only the router differs.
 */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_HWM 100000
#define S_RX "bench-rx"
#define S_WINDOW_STEP 256 /* senders account for and check the window in steps */

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* ---- the raw forwarder ---------------------------------------------------- */

static volatile sig_atomic_t s_stop;
static void s_on_term(int sig) { (void) sig; s_stop = 1; }

static int s_forward(const char *bind)
{
    zsys_handler_set(NULL);
    struct sigaction sa = {.sa_handler = s_on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_set_router_mandatory(router, 1);
    zsock_set_sndhwm(router, S_HWM);
    zsock_set_rcvhwm(router, S_HWM);
    zsock_set_linger(router, 0);
    if (zsock_bind(router, "%s", bind) < 0) {
        fprintf(stderr, "broker_bench forward: cannot bind %s: %s\n", bind, zmq_strerror(errno));
        zsock_destroy(&router);
        return 1;
    }
    void *sock = zsock_resolve(router);
    fprintf(stderr, "broker_bench forward: ready on %s\n", bind);
    while (!s_stop) {
        zmq_msg_t parts[3];
        int n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t extra;
            zmq_msg_t *m = n < 3 ? &parts[n] : &extra;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, sock, 0) < 0) {
                zmq_msg_close(m);
                break;
            }
            more = zmq_msg_more(m);
            if (m == &extra)
                zmq_msg_close(m);
            else
                n++;
        }
        if (n == 3) { /* [sender][dest][payload] -> [dest][sender][payload] */
            /* Blocking sends: a full receiver slows the forwarder, nothing is lost. */
            if (zmq_msg_send(&parts[1], sock, ZMQ_SNDMORE) >= 0 &&
                zmq_msg_send(&parts[0], sock, ZMQ_SNDMORE) >= 0)
                zmq_msg_send(&parts[2], sock, 0);
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
    zsock_destroy(&router);
    return 0;
}

/* ---- the client side -------------------------------------------------------- */

typedef struct {
    const char *endpoint;
    bool arbor;
    int index;
    int count;
    size_t size;
    zsock_t *go; /* PAIR to the main thread: "registered", then "go" */
    atomic_long *errors;
    atomic_long *sent;     /* by all senders, in steps of S_WINDOW_STEP */
    atomic_long *received; /* by the receiver */
    atomic_int *finished;  /* the receiver stopped waiting (lost messages never arrive) */
    long window;
} s_sender_t;

static zsock_t *s_dealer(const char *endpoint, const char *name)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    zsock_set_identity(s, name);
    zsock_set_sndhwm(s, S_HWM);
    zsock_set_rcvhwm(s, 10 * S_HWM);
    zsock_set_linger(s, 2000);
    zsock_set_rcvtimeo(s, 5000);
    if (zsock_connect(s, "%s", endpoint) < 0) {
        fprintf(stderr, "broker_bench: cannot connect %s: %s\n", endpoint, zmq_strerror(errno));
        zsock_destroy(&s);
    }
    return s;
}

/* hello, and wait (bounded) for welcome. 0 or -1. */
static int s_hello(zsock_t *s, const char *role)
{
    char text[160];
    snprintf(text, sizeof text,
             "{\"v\":1,\"type\":\"hello\",\"to\":\"broker\",\"id\":0,\"re\":null,"
             "\"body\":{\"role\":\"%s\",\"incarnation\":\"bench\"}}", role);
    if (zstr_send(s, text) != 0)
        return -1;
    zmsg_t *m = zmsg_recv(s);
    if (!m)
        return -1;
    zframe_t *data = zmsg_last(m);
    bool ok = data && strstr((const char *) zframe_data(data), "\"welcome\"") != NULL;
    zmsg_destroy(&m);
    return ok ? 0 : -1;
}

static void s_send_broker(zsock_t *s, const char *type)
{
    char text[128];
    snprintf(text, sizeof text,
             "{\"v\":1,\"type\":\"%s\",\"to\":\"broker\",\"id\":1,\"re\":null,\"body\":{}}", type);
    zstr_send(s, text);
}

/* A valid status request of about size bytes. */
static int s_envelope(char *buf, size_t cap, size_t size, int sender, long id)
{
    int n = snprintf(buf, cap,
                     "{\"v\":1,\"type\":\"status\",\"to\":\"" S_RX "\",\"id\":%ld,\"re\":null,"
                     "\"body\":{\"tree\":\"t-%ld\",\"t_mono_ms\":%ld,\"sender\":%d,\"pad\":\"",
                     id, id % 1000, 1000000L + id, sender);
    while ((size_t) n + 3 < size && (size_t) n + 3 < cap)
        buf[n++] = 'x';
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n++] = '}';
    buf[n] = 0;
    return n;
}

static void *s_sender_main(void *arg)
{
    s_sender_t *a = arg;
    char name[64];
    snprintf(name, sizeof name, "bench-tx-%d", a->index);
    zsock_t *s = s_dealer(a->endpoint, name);
    bool ok = s && (!a->arbor || s_hello(s, "client") == 0);
    zstr_send(a->go, ok ? "registered" : "failed");
    char *go = zstr_recv(a->go);
    bool run = ok && go && strcmp(go, "go") == 0;
    zstr_free(&go);
    if (run) {
        void *raw = zsock_resolve(s);
        char buf[4096];
        for (long i = 0; i < a->count; i++) {
            if (i % S_WINDOW_STEP == 0) {
                atomic_fetch_add(a->sent, S_WINDOW_STEP);
                while (atomic_load(a->sent) - atomic_load(a->received) > a->window &&
                       !atomic_load(a->finished))
                    usleep(20);
            }
            int n = s_envelope(buf, sizeof buf, a->size, a->index, i + 2);
            if (!a->arbor && zmq_send(raw, S_RX, strlen(S_RX), ZMQ_SNDMORE) < 0)
                break;
            if (zmq_send(raw, buf, (size_t) n, 0) < 0)
                break;
        }
        /* Count the broker's error replies (undeliverable...), if any. */
        zstr_recv(a->go); /* "done": the receiver has finished */
        zmsg_t *m;
        zsock_set_rcvtimeo(s, 0);
        while ((m = zmsg_recv(s))) {
            atomic_fetch_add(a->errors, 1);
            zmsg_destroy(&m);
        }
        if (a->arbor)
            s_send_broker(s, "bye");
    }
    zsock_destroy(&s);
    return NULL;
}

static int s_run(const char *endpoint, bool arbor, int senders, int count, size_t size,
                 long window)
{
    zsys_handler_set(NULL);
    zsys_set_io_threads(1);
    zsock_t *rx = s_dealer(endpoint, S_RX);
    if (!rx)
        return 1;
    if (arbor && s_hello(rx, "supervisor") != 0) {
        fprintf(stderr, "broker_bench: the broker did not welcome the receiver\n");
        zsock_destroy(&rx);
        return 1;
    }
    s_sender_t *args = calloc((size_t) senders, sizeof *args);
    pthread_t *threads = calloc((size_t) senders, sizeof *threads);
    zsock_t **pipes = calloc((size_t) senders, sizeof *pipes);
    atomic_long errors = 0, sent = 0, received = 0;
    atomic_int finished = 0;
    int rc = 0;
    for (int i = 0; i < senders; i++) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://bench-go-%d", i);
        pipes[i] = zsock_new(ZMQ_PAIR);
        zsock_bind(pipes[i], "%s", ep);
        args[i] = (s_sender_t){.endpoint = endpoint,
                               .arbor = arbor,
                               .index = i,
                               .count = count,
                               .size = size,
                               .go = zsock_new(ZMQ_PAIR),
                               .errors = &errors,
                               .sent = &sent,
                               .received = &received,
                               .finished = &finished,
                               .window = window};
        zsock_connect(args[i].go, "%s", ep);
        pthread_create(&threads[i], NULL, s_sender_main, &args[i]);
    }
    for (int i = 0; i < senders; i++) {
        char *r = zstr_recv(pipes[i]);
        if (!r || strcmp(r, "registered") != 0)
            rc = 1;
        zstr_free(&r);
    }
    long total = (long) senders * count, got = 0;
    double t0 = s_now_ms(), last = t0, next_beat = t0 + 1000;
    if (rc == 0) {
        for (int i = 0; i < senders; i++)
            zstr_send(pipes[i], "go");
        void *raw = zsock_resolve(rx);
        zmq_pollitem_t item = {raw, 0, ZMQ_POLLIN, 0};
        while (got < total) {
            double now = s_now_ms();
            if (arbor && now >= next_beat) { /* stay registered (expiry 5 s) */
                s_send_broker(rx, "heartbeat");
                next_beat = now + 1000;
            }
            if (now - last > 3000)
                break; /* nothing for 3 s: the rest was lost */
            if (zmq_poll(&item, 1, 200) <= 0)
                continue;
            for (int b = 0; b < 1024 && got < total; b++) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, raw, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&m);
                    break;
                }
                bool more = zmq_msg_more(&m);
                zmq_msg_close(&m);
                if (!more) { /* the last frame of [sender][payload] */
                    /* Only the senders' messages count; the broker's replies
                     * (welcome etc.) never arrive here after hello. */
                    got++;
                    atomic_store(&received, got);
                    last = s_now_ms();
                }
            }
        }
    } else {
        fprintf(stderr, "broker_bench: a sender could not register\n");
        for (int i = 0; i < senders; i++)
            zstr_send(pipes[i], "stop");
    }
    atomic_store(&finished, 1);
    for (int i = 0; i < senders; i++) {
        if (rc == 0)
            zstr_send(pipes[i], "done");
        pthread_join(threads[i], NULL);
        zsock_destroy(&pipes[i]);
        zsock_destroy(&args[i].go);
    }
    if (arbor)
        s_send_broker(rx, "bye");
    zsock_destroy(&rx);
    if (rc == 0) {
        double ms = last - t0;
        printf("mode=%s senders=%d count=%ld bytes=%zu received=%ld errors=%ld ms=%.1f "
               "msgs_per_s=%.0f\n",
               arbor ? "arbor" : "raw", senders, total, size, got, (long) atomic_load(&errors),
               ms, ms > 0 ? (double) got * 1000.0 / ms : 0.0);
        if (got < total)
            rc = 1;
    }
    free(args);
    free(threads);
    free(pipes);
    return rc;
}

static void s_usage(void)
{
    fprintf(stderr, "usage: broker_bench forward --bind EP\n"
                    "       broker_bench run --connect EP --mode arbor|raw [--senders N] "
                    "[--count M] [--size BYTES] [--window W]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage();
        return 2;
    }
    const char *cmd = argv[1];
    const char *ep = NULL, *mode = "arbor";
    int senders = 4, count = 50000;
    long size = 200, window = 20000;
    static const struct option opts[] = {{"bind", required_argument, NULL, 'b'},
                                         {"connect", required_argument, NULL, 'c'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"senders", required_argument, NULL, 's'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"size", required_argument, NULL, 'z'},
                                         {"window", required_argument, NULL, 'w'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "b:c:m:s:n:z:w:", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
        case 'c': ep = optarg; break;
        case 'm': mode = optarg; break;
        case 's': senders = atoi(optarg); break;
        case 'n': count = atoi(optarg); break;
        case 'z': size = atol(optarg); break;
        case 'w': window = atol(optarg); break;
        default: s_usage(); return 2;
        }
    }
    if (!ep || senders < 1 || senders > 64 || count < 1 || size < 150 || size > 4000 ||
        window < S_WINDOW_STEP) {
        s_usage();
        return 2;
    }
    if (strcmp(cmd, "forward") == 0)
        return s_forward(ep);
    if (strcmp(cmd, "run") == 0 && (!strcmp(mode, "arbor") || !strcmp(mode, "raw")))
        return s_run(ep, strcmp(mode, "arbor") == 0, senders, count, (size_t) size,
                     window);
    s_usage();
    return 2;
}
