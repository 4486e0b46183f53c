/* arborctl: the command-line client of arbor. Global options, then one
 * command (cmd.h); see docs/CLI.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <czmq.h>

#include "cmd.h"
#include "ctl.h"
#include "exitcode.h"
#include "oom.h"
#include "log.h"
#include "version.h"
#include "stdfds.h"

static const char s_short[] =
    "usage: arborctl [--broker EP] [--curve-cert FILE --curve-server-key KEY] COMMAND [ARGS...]\n"
    "       (arborctl --help: commands and options)\n";

int main(int argc, char **argv)
{
    stdfds_open(); /* first: a closed 0-2 must not be handed out (stdfds.h) */
    /* Our own signal handling (signalfd, ctl.c): CZMQ must not install its own. */
    zsys_handler_set(NULL);
    log_init("arborctl", ALOG_WARN);
    oom_install("arborctl"); /* out of memory is fatal, loudly (oom.h) */
    const char *broker = getenv("ARBOR_BROKER");
    struct stat st;
    if (!broker || !*broker)
        broker = stat(CTL_SYSTEM_BROKER + 6, &st) == 0 && S_ISSOCK(st.st_mode) ? CTL_SYSTEM_BROKER
                                                                               : CTL_DEFAULT_BROKER;

    static const struct option longs[] = {
        {"broker", required_argument, NULL, 'b'},
        {"curve-cert", required_argument, NULL, 'C'},
        {"curve-server-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    /* '+': stop at the command; its flags are its own. */
    while ((c = getopt_long(argc, argv, "+:h", longs, NULL)) != -1) {
        switch (c) {
        case 'b': broker = optarg; break;
        /* The environment is what every peer reads (common/curve.h). */
        case 'C': setenv("ARBOR_CURVE_CERT", optarg, 1); break;
        case 'K': setenv("ARBOR_CURVE_SERVERKEY", optarg, 1); break;
        case 'h': cmd_print_usage(stdout); return EXIT_TREE_OK;
        case 'V': return version_print(stdout, "arborctl") == 0 ? EXIT_TREE_OK : EXIT_UNREACHABLE;
        case ':':
            fprintf(stderr, "arborctl: option %s needs a value\n%s", argv[optind - 1], s_short);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "arborctl: unknown option %s\n%s", argv[optind - 1], s_short);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "arborctl: missing COMMAND\n%s", s_short);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        if (optind + 1 < argc)
            return cmd_help(argv[optind + 1]);
        cmd_print_usage(stdout);
        return EXIT_TREE_OK;
    }
    for (const cmd_t *cmd = cmd_table; cmd->name; cmd++)
        if (strcmp(cmd->name, name) == 0)
            return cmd->run(broker, argc - optind, argv + optind);
    fprintf(stderr, "arborctl: unknown command \"%s\"\n%s", name, s_short);
    return EXIT_USAGE;
}
