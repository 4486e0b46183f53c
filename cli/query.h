/* query: the supervisor conversations shared by arborctl's commands —
 * choosing a supervisor, finding which one owns a tree, waiting for a tree
 * (or one node) to end, printing a report. Functions returning int give 0,
 * or an exit code (exitcode.h) after printing why on stderr. */
#ifndef ARBOR_CLI_QUERY_H
#define ARBOR_CLI_QUERY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

#define QUERY_POLL_MS 1000     /* status fallback while waiting: events can be lost */
#define QUERY_SILENCE_MS 15000 /* supervisor silent this long while waiting: unreachable */
#define QUERY_TREE_MAX 64      /* tree ids: [A-Za-z0-9_.-]{1,64} */

/* Supervisor for a spawn: forced (--supervisor), else $ARBOR_SUPERVISOR,
 * else the only peer with role "supervisor". */
int query_pick_supervisor(ctl_t *ctl, const char *forced, char *out, size_t size);

/* The supervisor a tree id names (ids arbor makes are SUPERVISOR.RANDOM):
 * true with its name in name. Only a guess: that supervisor may be gone,
 * or the id was chosen by hand. */
bool query_named_supervisor(const char *tree, char *name, size_t size);

/* Ask every supervisor (or only forced) for tree's status; the one answering
 * with a report owns it. Fills sup and *report (caller deletes). Unknown
 * tree: EXIT_USAGE; no answer: EXIT_UNREACHABLE. */
int query_find_tree(ctl_t *ctl, const char *tree, const char *forced, char *sup, size_t size,
                    cJSON **report);

/* Wait until tree has ended — or, with path, until that node has a terminal
 * status — on events of topic tree/ID (subscribe first) with a status poll
 * every QUERY_POLL_MS as fallback. deadline: clk_now_ms() base, 0 = none.
 * Fills *report with the final report. */
/* Subscribe to what query_wait_end needs, before the request whose end is
 * awaited: the tree's done event alone (topic end/ID) when path is NULL,
 * else every event of the tree (tree/ID). 0, or the exit code with a
 * message on stderr. */
int query_subscribe_wait(ctl_t *ctl, const char *tree, const char *path);

int query_wait_end(ctl_t *ctl, const char *sup, const char *tree, const char *path,
                   int64_t deadline, cJSON **report);

/* The node of report whose "path" is path, or NULL. */
const cJSON *query_node(const cJSON *report, const char *path);

/* Report to stdout: the JSON object on one line, or the human rendering.
 * 0, or -1 when stdout failed. With json its numbers are printed as raw
 * items (jprint.h): read statuses after, not numbers. */
int query_print_report(cJSON *report, bool json);

/* "status" of a report ("?" when absent); of a report still in its text
 * (ctl_keep_raw_reports), read from the text, valid until the next call. */
#define QUERY_STATUS_MAX 32
const char *query_status(const cJSON *report);

/* A report as received may still be its JSON text (ctl_keep_raw_reports):
 * parsed here, in place, so that whoever holds the item holds the tree.
 * Returns report. */
cJSON *query_report_tree(cJSON *report);

#endif
