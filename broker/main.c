/* arbor-broker: flags, the ROUTER socket (CURVE or plain, docs/SECURITY.md),
 * and one zloop with named handlers: messages, the expiry timer, signals
 * (through a signalfd), refused handshakes and the plain-mode reminder. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "stopsig.h"
#include "auth.h"
#include "endpoint.h"
#include "broker.h"
#include "clock.h"
#include "oom.h"
#include "log.h"
#include "sec.h"
#include "sdnotify.h"
#include "version.h"
#include "stdfds.h"

#define S_BINDS_MAX 16
#define S_BATCH 256 /* messages per wakeup: amortises the poll, keeps timers fair */
#define S_HWM 100000
#define S_RCV_HWM 10000
#define S_PLAIN_REMINDER_MS (10 * 60 * 1000)

typedef struct {
    const char *binds[S_BINDS_MAX];
    int nbinds;
    brk_cfg_t cfg;
    const char *curve_secret; /* --curve-secret FILE */
    const char *curve_allow;  /* --curve-allow DIR */
    bool plain;               /* --plain, or implied by local endpoints only */
    bool plain_asked;         /* --plain itself */
    bool allow_root;
    bool allow_shared_dir;
} s_opts_t;

enum {
    S_CURVE_SECRET = 256, S_CURVE_ALLOW, S_PLAIN, S_ALLOW_ROOT, S_ALLOW_SHARED, S_MAX_RATE,
    S_LOG_LEVEL, S_LOG_FORMAT, S_VERSION
};

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: arbor-broker --bind EP [--bind EP...] [options]\n"
            "\n"
            "Routes arbor's JSON envelopes between named DEALER peers (docs/BROKER.md).\n"
            "\n"
            "  -b, --bind EP          endpoint to listen on (tcp://*:5555, ipc:///path); repeatable\n"
            "  -m, --max-msg BYTES    largest accepted message (default 4194304)\n"
            "  -H, --heartbeat-ms N   heartbeat interval told to peers (default 1000)\n"
            "  -e, --expiry-ms N      forget a peer silent this long (default 5000)\n"
            "  -c, --capture FILE     append every message as a JSON line to FILE\n"
            "      --max-rate N       messages a second per peer, supervisors 10x (default\n"
            "                         20000; 0: no limit); above: error rate_limited\n"
            "\n"
            "security (docs/SECURITY.md):\n"
            "      --curve-secret FILE  the broker's certificate (FILE and FILE_secret, from\n"
            "                         arborctl keygen): CURVE encryption and authentication\n"
            "      --curve-allow DIR  directory of the public certificates allowed to connect\n"
            "      --plain            no encryption, no authentication, self-declared roles;\n"
            "                         required for a tcp endpoint without --curve-*\n"
            "                         (ipc endpoints alone default to plain, with a warning)\n"
            "      --allow-root       as root: log one short warning, not the loud one, and\n"
            "                         start even with ARBOR_REFUSE_ROOT=1 (as root without\n"
            "                         it: a loud warning; exit 1 when ARBOR_REFUSE_ROOT=1)\n"
            "      --allow-shared-dir accept an ipc socket directory (or --curve-allow DIR)\n"
            "                         that others may write to\n"
            LOG_FLAGS_HELP
            "  -h, --help             show this help\n"
            "      --version          print the version and exit\n"
            "\n"
            "ARBOR_LOG_LEVEL=debug|info|warn|error sets the log level (default info).\n"
            "Exit codes: 0 stopped; 1 cannot start (an endpoint it cannot bind, the capture\n"
            "file), or root refused (ARBOR_REFUSE_ROOT=1); 2 bad flag or endpoint, a tcp\n"
            "endpoint without --curve-* or --plain, or a --curve-secret certificate or\n"
            "--curve-allow directory that is missing or unusable.\n");
}

/* A whole number in [min, max], or -1. */
static long long s_number(const char *text, long long min, long long max)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || !end || end == text || *end || v < min || v > max)
        return -1;
    return v;
}

/* CURVE with both --curve-* flags; plain with --plain; without either,
 * plain only when every endpoint is local (ipc://, inproc://): a tcp
 * endpoint open to the network must be asked for. 0, or 2. */
static int s_security_mode(s_opts_t *o)
{
    if (!o->curve_secret != !o->curve_allow) {
        fprintf(stderr, "arbor-broker: --curve-secret FILE and --curve-allow DIR go together\n");
        return 2;
    }
    if (o->curve_secret && o->plain_asked) {
        fprintf(stderr, "arbor-broker: --plain contradicts --curve-secret/--curve-allow\n");
        return 2;
    }
    if (o->curve_secret || o->plain_asked)
        return 0;
    for (int i = 0; i < o->nbinds; i++) {
        if (!sec_endpoint_local(o->binds[i])) {
            fprintf(stderr,
                    "arbor-broker: %s would accept anyone who can reach it, unauthenticated: "
                    "give --curve-secret FILE --curve-allow DIR (docs/SECURITY.md), or --plain "
                    "to accept that\n",
                    o->binds[i]);
            return 2;
        }
    }
    o->plain = true; /* local endpoints only: the filesystem guards them */
    return 0;
}

/* 0, or 2 (usage error) after a message on stderr; 1 for --help. */
static int s_parse(int argc, char **argv, s_opts_t *o)
{
    static const struct option longopts[] = {{"bind", required_argument, NULL, 'b'},
                                             {"max-msg", required_argument, NULL, 'm'},
                                             {"heartbeat-ms", required_argument, NULL, 'H'},
                                             {"expiry-ms", required_argument, NULL, 'e'},
                                             {"capture", required_argument, NULL, 'c'},
                                             {"curve-secret", required_argument, NULL, S_CURVE_SECRET},
                                             {"curve-allow", required_argument, NULL, S_CURVE_ALLOW},
                                             {"plain", no_argument, NULL, S_PLAIN},
                                             {"allow-root", no_argument, NULL, S_ALLOW_ROOT},
                                             {"allow-shared-dir", no_argument, NULL, S_ALLOW_SHARED},
                                             {"max-rate", required_argument, NULL, S_MAX_RATE},
                                             {"log-level", required_argument, NULL, S_LOG_LEVEL},
                                             {"log-format", required_argument, NULL, S_LOG_FORMAT},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, S_VERSION},
                                             {NULL, 0, NULL, 0}};
    o->cfg = (brk_cfg_t){
        .max_msg = 4 << 20, .heartbeat_ms = 1000, .expiry_ms = 5000, .max_rate = 20000};
    long long v;
    int c;
    opterr = 0; /* our own messages */
    while ((c = getopt_long(argc, argv, ":b:m:H:e:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (o->nbinds == S_BINDS_MAX) {
                fprintf(stderr, "arbor-broker: at most %d --bind\n", S_BINDS_MAX);
                return 2;
            }
            o->binds[o->nbinds++] = optarg;
            break;
        case 'm':
            if ((v = s_number(optarg, 256, 1LL << 30)) < 0) {
                fprintf(stderr, "arbor-broker: --max-msg: \"%s\" is not a size in 256..%lld\n",
                        optarg, 1LL << 30);
                return 2;
            }
            o->cfg.max_msg = (size_t) v;
            break;
        case 'H':
        case 'e':
            if ((v = s_number(optarg, 1, 24LL * 3600 * 1000)) < 0) {
                fprintf(stderr, "arbor-broker: --%s: \"%s\" is not a positive number of ms\n",
                        c == 'H' ? "heartbeat-ms" : "expiry-ms", optarg);
                return 2;
            }
            *(c == 'H' ? &o->cfg.heartbeat_ms : &o->cfg.expiry_ms) = v;
            break;
        case 'c':
            o->cfg.capture = optarg;
            break;
        case S_CURVE_SECRET:
            o->curve_secret = optarg;
            break;
        case S_CURVE_ALLOW:
            o->curve_allow = optarg;
            break;
        case S_PLAIN:
            o->plain = o->plain_asked = true;
            break;
        case S_ALLOW_ROOT:
            o->allow_root = true;
            break;
        case S_LOG_LEVEL:
        case S_LOG_FORMAT:
            if (log_flag("arbor-broker", c == S_LOG_LEVEL ? "--log-level" : "--log-format",
                         optarg))
                return 2;
            break;
        case S_ALLOW_SHARED:
            o->allow_shared_dir = true;
            break;
        case S_MAX_RATE:
            if ((v = s_number(optarg, 0, 1000000000LL)) < 0) {
                fprintf(stderr, "arbor-broker: --max-rate: \"%s\" is not a number of messages "
                                "a second in 0..1000000000\n", optarg);
                return 2;
            }
            o->cfg.max_rate = (double) v;
            break;
        case 'h':
            s_usage(stdout);
            return 1;
        case S_VERSION:
            return version_print(stdout, "arbor-broker") == 0 ? 1 : 2;
        case ':':
            fprintf(stderr, "arbor-broker: %s needs a value (see --help)\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "arbor-broker: unknown option \"%s\" (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "arbor-broker: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (o->nbinds == 0) {
        fprintf(stderr, "arbor-broker: --bind EP is required (see --help)\n");
        return 2;
    }
    for (int i = 0; i < o->nbinds; i++) {
        char why[300];
        if (endpoint_check(o->binds[i], true, why, sizeof why) != 0) {
            fprintf(stderr, "arbor-broker: --bind %s\n", why);
            return 2;
        }
    }
    return s_security_mode(o);
}

static zsock_t *s_router(const s_opts_t *o)
{
    zsock_t *sock = zsock_new(ZMQ_ROUTER);
    if (!sock) {
        log_error("cannot create the ROUTER socket: %s", zmq_strerror(errno));
        return NULL;
    }
    zsock_set_router_mandatory(sock, 1); /* unroutable sends fail, not vanish */
    zsock_set_router_handover(sock, 1);  /* a restarted peer takes its name back */
    zsock_set_sndhwm(sock, S_HWM);
    /* Per connection, up to 2 x --max-msg each: a flooding peer is held at
     * S_RCV_HWM messages (then its own sends block), not at gigabytes. */
    zsock_set_rcvhwm(sock, S_RCV_HWM);
    zsock_set_maxmsgsize(sock, (int64_t) o->cfg.max_msg * 2); /* too_large above max_msg */
    /* No ZMTP heartbeats from this side: peers that need them (supervisors,
     * clients) ping the broker themselves, and in libzmq 4.3.4 each timer
     * makes every message cost the I/O thread O(connections). Silent peers
     * are expired by the registry instead. */
    zsock_set_linger(sock, 1000); /* CZMQ's default 0 loses the last replies */
    return sock;
}

/* Last step of the start: "listening" means ready to serve. */
static int s_bind(zsock_t *sock, const s_opts_t *o)
{
    for (int i = 0; i < o->nbinds; i++) {
        char why[512];
        if (sec_ipc_dir(o->binds[i], o->allow_shared_dir, why, sizeof why) != 0) {
            log_error("cannot bind %s: %s", o->binds[i], why);
            return -1;
        }
        if (strncmp(o->binds[i], "ipc://@", 7) == 0 && o->plain)
            log_warn("%s is an abstract socket: any local process can connect to it",
                     o->binds[i]);
        /* libzmq unlinks an ipc socket file before binding: a live
         * broker's socket would be taken over without a word. */
        int in_use = endpoint_ipc_in_use(o->binds[i]);
        if (in_use != 0) {
            log_error("cannot bind %s: %s", o->binds[i],
                      in_use > 0 ? "a process (another broker?) accepts connections on it; "
                                   "stop it first, or bind another path"
                                 : strerror(errno));
            return -1;
        }
        if (zsock_bind(sock, "%s", o->binds[i]) < 0) {
            log_error("cannot bind %s: %s", o->binds[i], zmq_strerror(errno));
            return -1;
        }
        log_info("listening on %s", o->binds[i]);
    }
    return 0;
}

static int s_on_message(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    (void) sock;
    brk_drain(arg, S_BATCH);
    return 0;
}

/* After many peers have gone (a large tree ended), give the freed memory
 * back: glibc keeps it in ZeroMQ's arenas otherwise (measured: 8 MiB after
 * a trim instead of 74 MiB after three 1111-worker trees). */
#define S_TRIM_AFTER_GONE 256

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    static size_t s_high;
    brk_expire(arg, clk_now_ms());
    size_t now = brk_peer_count(arg);
    if (now > s_high)
        s_high = now;
    if (s_high - now >= S_TRIM_AFTER_GONE) {
        malloc_trim(0);
        s_high = now;
    }
    return 0;
}

static int s_on_auth_event(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    (void) sock;
    brk_on_auth_event(arg);
    return 0;
}

static void s_plain_warning(const s_opts_t *o)
{
    if (o->plain_asked)
        log_warn("PLAIN MODE (--plain): no encryption, no authentication; roles are "
                 "self-declared: anyone who can reach %s can spawn, cancel and impersonate "
                 "(docs/SECURITY.md)",
                 o->binds[0]);
    else
        log_warn("no CURVE: local endpoints only, guarded by their directory's permissions; "
                 "roles are self-declared (docs/SECURITY.md)");
}

static int s_on_plain_reminder(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_plain_warning(arg);
    return 0;
}

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) arg;
    struct signalfd_siginfo si;
    if (read(item->fd, &si, sizeof si) != (ssize_t) sizeof si)
        return 0;
    log_info("stopping on %s", strsignal((int) si.ssi_signo));
    return -1; /* ends zloop_start */
}

/* Signals come through a signalfd in the loop. Blocked before CZMQ starts
 * its I/O threads, so that they inherit the mask. */
static int s_signals(void)
{
    zsys_handler_set(NULL);
    int fd = stopsig_open();
    if (fd < 0)
        log_error("signalfd: %s", strerror(errno));
    return fd;
}

static brk_t *s_broker(zsock_t *router, const s_opts_t *o)
{
    brk_t *brk = brk_new(router, &o->cfg);
    if (!brk && o->cfg.capture)
        log_error("cannot open capture file %s: %s", o->cfg.capture, strerror(errno));
    else if (!brk)
        log_error("cannot start: %s", strerror(errno));
    if (o->cfg.expiry_ms <= o->cfg.heartbeat_ms)
        log_warn("--expiry-ms %lld <= --heartbeat-ms %lld: peers will expire between heartbeats",
                 (long long) o->cfg.expiry_ms, (long long) o->cfg.heartbeat_ms);
    return brk;
}

/* The loop, until a signal: 0, or 1 when it cannot be set up. */
static int s_run(zsock_t *router, brk_t *brk, int sigfd, const s_opts_t *o)
{
    zloop_t *loop = zloop_new();
    if (!loop)
        return 1;
    zmq_pollitem_t sigitem = {.fd = sigfd, .events = ZMQ_POLLIN};
    int64_t tick = o->cfg.expiry_ms / 4; /* expiry is late by at most a tick */
    tick = tick < 10 ? 10 : tick > 250 ? 250 : tick;
    zloop_reader(loop, router, s_on_message, brk);
    zloop_reader_set_tolerant(loop, router);
    zloop_poller(loop, &sigitem, s_on_signal, NULL);
    zloop_timer(loop, (size_t) tick, 0, s_on_tick, brk);
    if (o->cfg.auth && auth_monitor(o->cfg.auth))
        zloop_reader(loop, (zsock_t *) auth_monitor(o->cfg.auth), s_on_auth_event, brk);
    if (o->plain)
        zloop_timer(loop, S_PLAIN_REMINDER_MS, 0, s_on_plain_reminder, (void *) o);
    log_info("broker %s ready (%s, max-msg %zu, max-rate %.0f/s, heartbeat %lld ms, expiry %lld "
             "ms)",
             brk_incarnation(brk), o->cfg.auth ? "CURVE" : "plain", o->cfg.max_msg,
             o->cfg.max_rate, (long long) o->cfg.heartbeat_ms, (long long) o->cfg.expiry_ms);
    if (o->plain)
        s_plain_warning(o);
    if (sdnotify_ready("routing") != 0) /* Type=notify units (systemd/) */
        log_warn("cannot notify systemd (NOTIFY_SOCKET): %s", strerror(errno));
    zloop_start(loop);
    zloop_destroy(&loop);
    const stats_t *st = brk_stats(brk);
    log_info("stopped: received %llu, routed %llu, published %llu, errors %llu",
             (unsigned long long) st->received, (unsigned long long) st->routed,
             (unsigned long long) st->published, (unsigned long long) st->errors);
    return 0;
}

int main(int argc, char **argv)
{
    stdfds_open(); /* first: a closed 0-2 must not be handed out (stdfds.h) */
    signal(SIGPIPE, SIG_IGN); /* before the first log line: a closed log pipe must not kill us */
    log_init("arbor-broker", ALOG_INFO);
    oom_install("arbor-broker"); /* out of memory is fatal, loudly (oom.h) */
    sdnotify_init(); /* before anything could start a child */
    s_opts_t opts = {0};
    int rc = s_parse(argc, argv, &opts);
    if (rc)
        return rc == 1 ? 0 : rc;
    /* A certificate or allow directory that is not there is a mistake in the
     * command line (2, as for the supervisor's certificate), not a failure
     * to start (1): told before anything starts. */
    char why[600];
    if (opts.curve_secret && auth_check_files(opts.curve_secret, opts.curve_allow,
                                              opts.allow_shared_dir, why, sizeof why) != 0) {
        fprintf(stderr, "arbor-broker: %s\n", why);
        return 2;
    }
    if (sec_check_root("arbor-broker", opts.allow_root) != 0)
        return 1;
    int sigfd = s_signals();
    if (sigfd < 0)
        return 1;
    zsock_t *router = s_router(&opts);
    auth_t *auth = NULL;
    if (router && opts.curve_secret) {
        char why[512];
        auth = auth_new(router, opts.curve_secret, opts.curve_allow, opts.allow_shared_dir, why,
                        sizeof why);
        if (!auth)
            log_error("cannot set up CURVE: %s", why);
        opts.cfg.auth = auth;
    }
    bool ready = router && (!opts.curve_secret || auth);
    brk_t *brk = ready ? s_broker(router, &opts) : NULL;
    rc = brk && s_bind(router, &opts) == 0 ? s_run(router, brk, sigfd, &opts) : 1;
    brk_destroy(&brk);
    auth_destroy(&auth); /* its monitor detaches from the router: first */
    zsock_destroy(&router);
    close(sigfd);
    return rc;
}
