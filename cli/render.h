/* render: human text for what arborctl prints — a tree report drawn as a
 * tree, a live event line, the peers and trees tables. Pure functions of
 * their JSON input: missing or mistyped keys print as "?" or are left out,
 * never crash. Every function returns a malloc'ed string the caller frees
 * (NULL only when out of memory). */
#ifndef ARBOR_CLI_RENDER_H
#define ARBOR_CLI_RENDER_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#define RENDER_MAX_DEPTH 256   /* deeper nodes are summarised, not drawn */
#define RENDER_STDERR_LINES 3  /* tail of a failed node's stderr shown */

/* Colour only for a terminal, and never when NO_COLOR is set (no-color.org). */
bool render_colour_wanted(int fd);

/* REPORT (schema/report.json) -> header line, one line per node
 * with box drawing, error/escalation/stderr lines for nodes that need them,
 * and a summary line counting nodes per status. */
char *render_report(const cJSON *report, bool colour);

/* One line (with '\n') for an event body on topic tree/ID; clock is the
 * local time of arrival, e.g. "12:00:01.234". */
char *render_event(const cJSON *event, const char *clock, bool colour);

/* The broker's peers body {"peers":[{"name","role","incarnation","idle_ms"}]}. */
char *render_peers(const cJSON *peers_body);

/* Rows [{"supervisor","tree","status","root"}...] as a table. */
char *render_trees(const cJSON *rows, bool colour);

/* ANSI colour sequence for a status ("" when it has none). */
const char *render_status_colour(const char *status);

#endif
