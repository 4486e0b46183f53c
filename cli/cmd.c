#include "cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "curve.h"
#include "env.h"
#include "ep.h"
#include "exitcode.h"
#include "query.h"

#define USAGE_SPAWN                                                                          \
    "usage: arborctl [--broker EP] spawn [--supervisor NAME] [--under TREE/PATH] [--wait]\n" \
    "       [--timeout S] [--json] FILE|-\n"                                                   \
    "  Start the tree described by the JSON spec FILE (\"-\": stdin) and print its id.\n"     \
    "  --under TREE/PATH  add FILE's node as a child of that running node instead, and\n"   \
    "                     print its path (with --wait: wait for that node's end)\n"          \
    "  --supervisor NAME  supervisor to run it (default: $ARBOR_SUPERVISOR, else the only one)\n" \
    "  --wait             wait for the tree to end and print its report\n"                  \
    "  --timeout S        with --wait: give up after S seconds (exit 3; the tree keeps running)\n" \
    "  --json             print the report as one JSON object (without --wait: the\n"                \
    "                     report right after the spawn)\n"
#define USAGE_STATUS                                                                         \
    "usage: arborctl [--broker EP] status [--supervisor NAME] [--json] TREE[/PATH]\n"       \
    "  Print the report of TREE (with PATH: only the subtree at that node); exit by\n"      \
    "  its status (running: 0).\n"                                                          \
    "  --supervisor NAME  ask only this supervisor (default: ask all)\n"                     \
    "  --json             print the report as one JSON object\n"
#define USAGE_CANCEL                                                                         \
    "usage: arborctl [--broker EP] cancel [--supervisor NAME] [--wait] [--timeout S] [--json] " \
    "TREE[/PATH]\n"                                                                          \
    "  Cancel TREE, or only the subtree at node PATH (e.g. ID/root/spawner-0).\n"             \
    "  Already ended: says so and exits by its status.\n"                                   \
    "  --supervisor NAME  ask only this supervisor (default: ask all)\n"                     \
    "  --wait             wait for the tree (or the node) to end, print the report, exit by status\n" \
    "  --timeout S        with --wait: give up after S seconds (exit 3)\n"                   \
    "  --json             print the report as one JSON object\n"
#define USAGE_WATCH                                                                          \
    "usage: arborctl [--broker EP] watch [--supervisor NAME] [--plain | --json] [TREE]\n"    \
    "  Live view on a terminal: nodes per phase and status, progress, the slowest nodes.\n"  \
    "  Otherwise (or with --plain) the current state first (each node's phase or status;\n" \
    "  without TREE each running tree), then one line per phase change, node status and\n" \
    "  tree end. With TREE: stop when it ends and exit by its status. Without: all trees,\n" \
    "  until Ctrl-C.\n"                                                                     \
    "  --supervisor NAME  ask only this supervisor for TREE\n"                              \
    "  --plain            event lines even on a terminal\n"                                 \
    "  --json             each event as one JSON object per line (\"state\": true for the\n" \
    "                     current state printed first)\n"
#define USAGE_PEERS                                                                          \
    "usage: arborctl [--broker EP] peers [--json]\n"                                         \
    "  List the peers registered at the broker (name, role, idle ms).\n"                     \
    "  --json  print the broker's answer {\"peers\": [...]} as one JSON object\n"
#define USAGE_LIST                                                                           \
    "usage: arborctl [--broker EP] list [--supervisor NAME] [--json]\n"                       \
    "  List the trees known to every supervisor (or only NAME).\n"                           \
    "  --json  print {\"trees\": [{\"supervisor\",\"tree\",\"status\",\"root\"}...]}\n"
#define USAGE_LOGS                                                                           \
    "usage: arborctl [--broker EP] logs [--supervisor NAME] [--follow] [--stream stdout|stderr] " \
    "[--json] TREE[/PATH]\n"                                                                  \
    "  Print the output lines the nodes of TREE (or of the subtree at PATH) wrote, oldest\n"   \
    "  first, as \"PATH STREAM | TEXT\". The supervisor keeps the last --log-lines lines\n"  \
    "  (--log-bytes bytes) of each node; a line it cut ends with \"[... N bytes cut]\".\n"  \
    "  -f, --follow       print new lines as they come, until the tree (or the node) has\n"  \
    "                     ended and its output is drained; exit by its status\n"            \
    "  --stream S         only stdout or only stderr\n"                                     \
    "  --json             one JSON object per line: {seq, path, stream, t_ms, text, cut?}\n"

#define USAGE_TRACE                                                                          \
    "usage: arborctl [--broker EP] trace [--supervisor NAME] [-o FILE] TREE | --report FILE\n" \
    "  Write the tree's phase timeline as Trace Event Format JSON (Perfetto, chrome://tracing).\n" \
    "  -o, --output FILE  write to FILE (default: stdout)\n"                                 \
    "  --report FILE      convert a saved report (status --json) instead of asking (\"-\": stdin)\n"
#define USAGE_TIMELINE                                                                       \
    "usage: arborctl [--broker EP] timeline [--supervisor NAME] (--png FILE | --svg FILE) "  \
    "[--width PX] TREE | --report FILE\n"                                                   \
    "  Draw the tree's phase timeline with gnuplot: nodes down, time across, stuck phase in red.\n" \
    "  --png FILE, --svg FILE  the picture to write (\"-\": stdout)\n"                        \
    "  --width PX              picture width (default 1400)\n"                                \
    "  --report FILE           draw a saved report (status --json) instead of asking\n"
#define USAGE_STATS                                                                          \
    "usage: arborctl [--broker EP] stats [--supervisor NAME] [--json]\n"                     \
    "  Print the broker's counters and every supervisor's (or only NAME's).\n"               \
    "  --json  print {\"broker\": {...}, \"supervisors\": {NAME: {...}}}\n"
#define USAGE_KEYGEN                                                                         \
    "usage: arborctl keygen NAME [--dir DIR] [--role client|supervisor|broker] [--force]\n"  \
    "  Write a CURVE key pair: DIR/NAME.cert (public) and DIR/NAME.cert_secret (mode 0600);\n" \
    "  print the public key. See docs/SECURITY.md. NAME: [A-Za-z0-9_-]{1,64}.\n"             \
    "  --dir DIR   where to write (default: .)\n"                                            \
    "  --role R    what the broker lets this key be (default client)\n"                     \
    "  --force     replace existing files\n"

const cmd_t cmd_table[] = {
    {"spawn", cmd_spawn, USAGE_SPAWN, "start a tree from a JSON spec"},
    {"status", cmd_status, USAGE_STATUS, "print a tree's report"},
    {"cancel", cmd_cancel, USAGE_CANCEL, "cancel a tree or a subtree"},
    {"watch", cmd_watch, USAGE_WATCH, "live view of trees (event lines off a terminal)"},
    {"peers", cmd_peers, USAGE_PEERS, "list the peers registered at the broker"},
    {"list", cmd_list, USAGE_LIST, "list the trees on the supervisors"},
    {"logs", cmd_logs, USAGE_LOGS, "print (or follow) the output lines of a tree's nodes"},
    {"trace", cmd_trace, USAGE_TRACE, "write a tree's timeline as Trace Event Format JSON"},
    {"timeline", cmd_timeline, USAGE_TIMELINE, "draw a tree's timeline (PNG/SVG, gnuplot)"},
    {"stats", cmd_stats, USAGE_STATS, "print broker and supervisor counters"},
    {"keygen", cmd_keygen, USAGE_KEYGEN, "write a CURVE key pair (docs/SECURITY.md)"},
    {NULL, NULL, NULL, NULL},
};

void cmd_print_usage(FILE *out)
{
    fprintf(out,
            "usage: arborctl [--broker EP] COMMAND [ARGS...]\n"
            "       arborctl COMMAND --help\n"
            "\n"
            "Control arbor supervision trees through the broker.\n"
            "\n"
            "options:\n"
            "  --broker EP  broker endpoint (default: $ARBOR_BROKER, else %s\n"
            "               when that socket exists, else %s)\n"
            "  --curve-cert FILE       this client's certificate ($ARBOR_CURVE_CERT)\n"
            "  --curve-server-key KEY  the broker's public key or certificate\n"
            "                          ($ARBOR_CURVE_SERVERKEY); both: CURVE\n"
            "  -h, --help   print this help\n"
            "  --version    print the version and exit\n"
            "\n"
            "commands:\n",
            CTL_SYSTEM_BROKER, CTL_DEFAULT_BROKER);
    for (const cmd_t *c = cmd_table; c->name; c++)
        fprintf(out, "  %-8s %s\n", c->name, c->summary);
    fprintf(out, "\n"
                 "exit codes: 0 ok (or still running), 1 tree failed or lost, 2 usage error,\n"
                 "invalid spec or unknown tree, 3 broker or supervisor unreachable or --timeout\n"
                 "reached, 4 tree cancelled, 130 interrupted while waiting.\n"
                 "See docs/CLI.md.\n");
}

static const cmd_t *s_find(const char *name)
{
    for (const cmd_t *c = cmd_table; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int cmd_usage_error(const char *cmd, const char *fmt, ...)
{
    fprintf(stderr, "arborctl %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    const cmd_t *c = s_find(cmd);
    if (c)
        fputs(c->usage, stderr);
    return EXIT_USAGE;
}

int cmd_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cmd_usage_error(cmd, "option %s needs a value", arg);
    if (optopt && optopt != '?')
        return cmd_usage_error(cmd, "unknown option -%c", optopt);
    return cmd_usage_error(cmd, "unknown option %s", arg);
}

int cmd_help(const char *cmd)
{
    const cmd_t *c = s_find(cmd);
    if (!c) {
        fprintf(stderr, "arborctl: unknown command \"%s\"\n", cmd);
        cmd_print_usage(stderr);
        return EXIT_USAGE;
    }
    fputs(c->usage, stdout);
    return EXIT_TREE_OK;
}

/* Local mistakes are usage errors, found before any socket exists: the
 * endpoint (ep.h) and the CURVE files (common/curve.h). */
static int s_precheck(const char *broker)
{
    char why[1024];
    curve_client_t curve;
    int secure = curve_client_from_env(&curve, why, sizeof why);
    if (secure < 0) {
        fprintf(stderr, "arborctl: %s\n", why);
        return EXIT_USAGE;
    }
    if (secure > 0)
        curve_client_clear(&curve);
    int rc = ep_check(broker, why, sizeof why);
    if (rc)
        fprintf(stderr, "arborctl: %s\n", why);
    return rc;
}

ctl_t *cmd_connect(const char *broker, int *rc)
{
    if ((*rc = s_precheck(broker)) != 0)
        return NULL;
    if (ctl_signals_init() != 0) {
        fprintf(stderr, "arborctl: cannot set up signal handling: %s\n", strerror(errno));
        *rc = EXIT_UNREACHABLE;
        return NULL;
    }
    ctl_t *ctl = ctl_connect(broker);
    if (!ctl)
        *rc = ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
    return ctl;
}

int cmd_parse_seconds(const char *text, int64_t *ms)
{
    char *end = NULL;
    errno = 0;
    double s = strtod(text, &end);
    /* !(s > 0 && s <= 1e7) also refuses NaN; no libm needed */
    if (errno || !end || end == text || *end || !(s > 0 && s <= 1e7))
        return -1;
    int64_t whole = (int64_t) (s * 1000.0);
    *ms = whole + ((double) whole < s * 1000.0); /* round up: never wait less */
    return 0;
}

bool cmd_tree_id_valid(const char *tree)
{
    return env_name_valid(tree, QUERY_TREE_MAX);
}

/* The options of the commands that take only [--supervisor NAME] [--json]. */
int cmd_parse_sup_json(const char *cmd, int argc, char **argv, bool with_sup, const char **sup,
                       bool *json, const char **broker)
{
    static const struct option longs[] = {
        {"supervisor", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"broker", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 'j': *json = true; break;
        case 'b': *broker = optarg; break;
        case 'h': return -1;
        case 's':
            if (!with_sup)
                return cmd_usage_error(cmd, "unknown option --supervisor");
            *sup = optarg;
            break;
        default: return cmd_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cmd_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (*sup && !env_name_valid(*sup, ENV_NAME_MAX))
        return cmd_usage_error(cmd, "invalid supervisor name \"%s\"", *sup);
    return 0;
}
