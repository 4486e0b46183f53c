/* cmd: arborctl's commands. Each takes the broker endpoint chosen by the
 * global options and its own argv (argv[0] = command name), parses its flags
 * with getopt_long and returns the process exit code (exitcode.h). */
#ifndef ARBOR_CLI_CMD_H
#define ARBOR_CLI_CMD_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl.h"

typedef int(cmd_fn)(const char *broker, int argc, char **argv);

typedef struct {
    const char *name;
    cmd_fn *run;
    const char *usage; /* full usage text of the command */
    const char *summary;
} cmd_t;

/* All commands, NULL-terminated. */
extern const cmd_t cmd_table[];

cmd_fn cmd_spawn, cmd_status, cmd_cancel, cmd_watch, cmd_peers, cmd_list;
cmd_fn cmd_trace, cmd_timeline, cmd_stats; /* observability: cmd_trace.c, cmd_stats.c */
cmd_fn cmd_keygen;                         /* cmd_keygen.c */
cmd_fn cmd_logs;                           /* cmd_logs.c */

/* The global usage text (arborctl --help). */
void cmd_print_usage(FILE *out);

/* --- helpers shared by the commands (cmd.c) --- */

/* Print "arborctl CMD: message" and the command's usage to stderr; returns
 * EXIT_USAGE. */
int cmd_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Message for getopt_long's '?' or ':' result (opterr must be 0). */
int cmd_bad_option(const char *cmd, int c, char **argv);

/* Parse [--supervisor NAME] (when with_sup) [--json] [--broker EP]: 0, -1
 * for --help, or an exit code after a usage message. */
int cmd_parse_sup_json(const char *cmd, int argc, char **argv, bool with_sup, const char **sup,
                       bool *json, const char **broker);

/* Print the usage of cmd to stdout; returns 0 (2 for an unknown cmd). */
int cmd_help(const char *cmd);

/* Signals + broker session. NULL with *rc set when it failed. */
ctl_t *cmd_connect(const char *broker, int *rc);

/* Parse a --timeout value in seconds (> 0, decimals allowed) into ms. */
int cmd_parse_seconds(const char *text, int64_t *ms);

/* [A-Za-z0-9_.-]{1,64} */
bool cmd_tree_id_valid(const char *tree);

#endif
