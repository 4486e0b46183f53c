/* arbor-supervisor: builds and supervises trees of worker processes. */
#include <czmq.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "curve.h"
#include "endpoint.h"
#include "env.h"
#include "fsrv.h"
#include "oom.h"
#include "log.h"
#include "logdir.h"
#include "sec.h"
#include "super.h"
#include "sdnotify.h"
#include "version.h"
#include "stdfds.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: arbor-supervisor --broker EP --name NAME [options]\n"
            "\n"
            "Builds trees of worker processes from specs sent by arborctl, propagates\n"
            "cancellation with deadlines, and reports every error of each tree.\n"
            "\n"
            "  -b, --broker EP        broker endpoint (default: $ARBOR_BROKER or\n"
            "                         ipc:///tmp/arbor/broker.sock)\n"
            "  -n, --name NAME        unique supervisor name, [A-Za-z0-9_.-]{1,48}\n"
            "                         (default: $ARBOR_SUPERVISOR_NAME or the host name)\n"
            "      --max-nodes N      largest tree accepted (default %d)\n"
            "      --max-depth N      deepest tree accepted (default %d)\n"
            "      --keep-trees N     finished trees kept for status (default 256)\n"
            "      --stop-deadline MS on SIGTERM, longest wait for trees to end\n"
            "                         before their workers are killed (default 15000)\n"
            "      --max-trees N      trees running at once (default 64)\n"
            "      --max-processes N  worker processes at once, all trees (default 8192;\n"
            "                         at most (RLIMIT_NOFILE - 256) / 4)\n"
            "      --spawn-rate N     forks per second at most (default 20000)\n"
            "      --log-lines N      workers' output: lines kept per node (default %d)\n"
            "      --log-bytes N      workers' output: bytes kept per node (default %d);\n"
            "                         past either limit the oldest lines go (arborctl logs)\n"
            "      --log-dir DIR      also write each node's output lines to\n"
            "                         DIR/TREE/PATH.log ('/' in PATH as '+')\n"
            LOG_FLAGS_HELP
            "      --curve-cert FILE  this supervisor's certificate (CURVE, docs/SECURITY.md;\n"
            "                         default $ARBOR_CURVE_CERT); never passed to its workers\n"
            "      --curve-server-key KEY  the broker's public key, or its certificate file\n"
            "                         (default $ARBOR_CURVE_SERVERKEY)\n"
            "      --allow-root       as root: log one short warning, not the loud one, and\n"
            "                         start even with ARBOR_REFUSE_ROOT=1 (as root without\n"
            "                         it: a loud warning, since every worker runs as root\n"
            "                         too; exit 1 when ARBOR_REFUSE_ROOT=1)\n"
            "  -h, --help             this text\n"
            "      --version          print the version and exit\n"
            "\n"
            "Stops on SIGTERM/SIGINT: cancels every tree, waits for them (bounded), exits 0.\n"
            "If it dies, its fork-server kills every worker within a second.\n"
            "Without its broker (no socket yet, broker down) it runs on and keeps trying.\n"
            "Exit codes: 0 stopped; 1 runtime failure (fork-server), or root refused\n"
            "(ARBOR_REFUSE_ROOT=1); 2 bad flag, endpoint, --log-dir or certificate; 3 the\n"
            "broker refused to register it (CURVE key, name or role).\n",
            SPEC_DEFAULT_MAX_NODES, SPEC_DEFAULT_MAX_DEPTH, LOGBUF_DEFAULT_LINES,
            LOGBUF_DEFAULT_BYTES);
}

static int s_int_arg(const char *flag, const char *v, int min, int max)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == 0 || *end || n < min || n > max) {
        fprintf(stderr, "arbor-supervisor: %s: \"%s\" is not a number from %d to %d\n", flag, v,
                min, max);
        exit(2);
    }
    return (int) n;
}

/* A file name made absolute (when it names a file), in the environment. */
static void s_setenv_path(const char *var, const char *value)
{
    char *abs = realpath(value, NULL);
    setenv(var, abs ? abs : value, 1);
    free(abs);
}

/* CURVE half configured, or an unreadable key, is an error now rather than
 * at the first connection. zcert_load starts no thread and no context: the
 * fork-server can still come first. 0 or -1 (message on stderr). */
static int s_check_curve(const char *name)
{
    curve_client_t curve;
    char why[512];
    int rc = curve_client_from_env(&curve, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "arbor-supervisor: %s\n", why);
        return -1;
    }
    if (rc > 0) {
        /* The broker binds a certificate's name and role (broker/policy.c):
         * one that does not fit would be refused at every hello. */
        const char *cert_name = zcert_meta(curve.cert, "name");
        const char *cert_role = zcert_meta(curve.cert, "role");
        char bad[400] = "";
        if (cert_name && *cert_name && strcmp(cert_name, name) != 0)
            snprintf(bad, sizeof bad, "the certificate in ARBOR_CURVE_CERT is for \"%s\": the "
                     "broker refuses it for the name \"%s\" (use --name %s, or this "
                     "supervisor's own certificate)", cert_name, name, cert_name);
        else if (cert_role && *cert_role && strcmp(cert_role, "supervisor") != 0)
            snprintf(bad, sizeof bad, "the certificate in ARBOR_CURVE_CERT has the role \"%s\": "
                     "the broker registers supervisors only with a \"supervisor\" key "
                     "(arborctl keygen NAME --role supervisor)", cert_role);
        curve_client_clear(&curve);
        if (bad[0]) {
            fprintf(stderr, "arbor-supervisor: %s\n", bad);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    stdfds_open(); /* first: a closed 0-2 must not be handed out (stdfds.h) */
    signal(SIGPIPE, SIG_IGN); /* before the first log line: a closed log pipe must not kill us */
    log_init("arbor-supervisor", ALOG_INFO);
    oom_install("arbor-supervisor"); /* out of memory is fatal, loudly (oom.h) */
    sdnotify_init(); /* before the fork-server: no worker inherits NOTIFY_SOCKET */
    char host[64] = "supervisor";
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if (!env_name_valid((char[]){*p, 0}, 1))
            *p = '-';
    const char *name = getenv("ARBOR_SUPERVISOR_NAME") ?: host;
    const char *broker = getenv("ARBOR_BROKER") ?: "ipc:///tmp/arbor/broker.sock";
    bool max_processes_asked = false;
    super_cfg_t cfg = {.limits = {SPEC_DEFAULT_MAX_DEPTH, SPEC_DEFAULT_MAX_NODES, geteuid() == 0},
                       .keep_finished = 256, .stop_deadline_ms = 15000,
                       .max_trees = 64, .max_processes = 8192, .spawn_rate = 20000,
                       .logs = NODELOG_CFG_DEFAULT};
    static const struct option opts[] = {
        {"broker", required_argument, 0, 'b'}, {"name", required_argument, 0, 'n'},
        {"max-nodes", required_argument, 0, 1}, {"max-depth", required_argument, 0, 2},
        {"keep-trees", required_argument, 0, 3}, {"stop-deadline", required_argument, 0, 4},
        {"max-trees", required_argument, 0, 5}, {"max-processes", required_argument, 0, 6},
        {"spawn-rate", required_argument, 0, 7},
        {"log-level", required_argument, 0, 8}, {"log-format", required_argument, 0, 9},
        {"curve-cert", required_argument, 0, 20}, {"curve-server-key", required_argument, 0, 21},
        {"allow-root", no_argument, 0, 22},
        {"log-lines", required_argument, 0, 30}, {"log-bytes", required_argument, 0, 31},
        {"log-dir", required_argument, 0, 32},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 23}, {0, 0, 0, 0}};
    bool allow_root = false;
    int c;
    while ((c = getopt_long(argc, argv, "b:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': broker = optarg; break;
        case 'n': name = optarg; break;
        case 1: cfg.limits.max_nodes = s_int_arg("--max-nodes", optarg, 1, 1 << 20); break;
        case 2: cfg.limits.max_depth = s_int_arg("--max-depth", optarg, 1, 64); break;
        case 3: cfg.keep_finished = s_int_arg("--keep-trees", optarg, 0, 100000); break;
        case 4: cfg.stop_deadline_ms = s_int_arg("--stop-deadline", optarg, 0, 3600000); break;
        case 5: cfg.max_trees = s_int_arg("--max-trees", optarg, 1, 100000); break;
        case 6:
            cfg.max_processes = s_int_arg("--max-processes", optarg, 1, 1 << 20);
            max_processes_asked = true;
            break;
        case 7: cfg.spawn_rate = s_int_arg("--spawn-rate", optarg, 1, 1000000); break;
        case 8:
        case 9:
            if (log_flag("arbor-supervisor", c == 8 ? "--log-level" : "--log-format", optarg))
                return 2;
            break;
        /* Through the environment: the fork-server and every worker inherit
         * it (common/curve.h). Absolute, whatever directory a worker runs in. */
        case 20: s_setenv_path("ARBOR_CURVE_CERT", optarg); break;
        case 21: s_setenv_path("ARBOR_CURVE_SERVERKEY", optarg); break;
        case 22: allow_root = true; break;
       
        case 30:
            cfg.logs.limits.max_lines = (size_t) s_int_arg("--log-lines", optarg, 1, 10000000);
            break;
        case 31:
            cfg.logs.limits.max_bytes = (size_t) s_int_arg("--log-bytes", optarg, 1, 1 << 30);
            break;
        case 32: cfg.logs.dir = optarg; break;
        case 'h': s_usage(stdout); return 0;
        case 23: return version_print(stdout, "arbor-supervisor") == 0 ? 0 : 2;
        default: s_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "arbor-supervisor: unexpected argument \"%s\"\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    if (!env_name_valid(name, 48) || strcmp(name, "broker") == 0) {
        fprintf(stderr, "arbor-supervisor: --name \"%s\" must match [A-Za-z0-9_.-]{1,48} "
                        "and not be \"broker\"\n", name);
        return 2;
    }
    char why[300];
    if (endpoint_check(broker, false, why, sizeof why) != 0) {
        fprintf(stderr, "arbor-supervisor: --broker %s\n", why);
        return 2;
    }
    /* a log directory we cannot write is an error now */
    if (cfg.logs.dir && logdir_check(cfg.logs.dir) != 0) {
        fprintf(stderr, "arbor-supervisor: --log-dir \"%s\": %s\n", cfg.logs.dir, strerror(errno));
        return 2;
    }
    if (sec_check_root("arbor-supervisor", allow_root) != 0)
        return 1;
    if (s_check_curve(name) != 0)
        return 2;
    /* Four fds per worker (pidfd, stdout, stderr, link): lift the soft
     * limit, and never accept more workers than there are fds for (a
     * worker's fds that cannot be received would break the fork-server
     * channel). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        rlim_t fit = rl.rlim_cur > SUPER_FDS_RESERVED ? (rl.rlim_cur - SUPER_FDS_RESERVED) / 4 : 0;
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t) cfg.max_processes > fit) {
            /* A warning when --max-processes asked for more; news otherwise. */
            log_msg(max_processes_asked ? ALOG_WARN : ALOG_INFO,
                    "RLIMIT_NOFILE is %llu: at most %llu workers at once (4 fds each), not %d",
                    (unsigned long long) rl.rlim_cur, (unsigned long long) fit,
                    cfg.max_processes);
            cfg.max_processes = fit > 0 ? (int) fit : 1;
        }
    }
    /* Rule 1: the fork-server first, while this process has one thread
     * and no ZeroMQ context (it is exec'd: a fresh process either way). */
    fsrv_t fsrv = {0};
    if (fsrv_start(&fsrv) != 0) {
        log_error("cannot start the fork-server %s (installed next to arbor-supervisor): %s",
                  fsrv.program[0] ? fsrv.program : FSRV_PROGRAM, strerror(errno));
        return 1;
    }
    zsys_handler_set(NULL); /* signals are handled with a signalfd */
    cfg.name = name;
    cfg.broker = broker;
    super_t *s = super_new(&cfg, fsrv);
    if (!s) {
        log_error("cannot start supervisor %s with broker %s", name, broker);
        return 1;
    }
    int rc = super_run(s);
    super_destroy(&s);
    return rc;
}
