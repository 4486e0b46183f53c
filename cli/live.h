/* live: the frame `arborctl watch` redraws on a terminal — per tree a
 * header, a progress bar (nodes with a terminal status / all nodes), the
 * count of nodes per status and per current phase, and the slowest nodes
 * (longest in their current worker phase, with the signals sent to them;
 * once no node runs any more, the longest teardown phases); then the most
 * recent event lines. Pure: reports in, text out
 * (colours only, no cursor movement), every line cut to the width. */
#ifndef ARBOR_CLI_LIVE_H
#define ARBOR_CLI_LIVE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#define LIVE_SLOWEST 5      /* slowest nodes listed for one tree */
#define LIVE_EVENT_LINES 10 /* recent events shown at most */

typedef struct {
    int width;   /* columns; lines are cut to width - 1 visible characters */
    int height;  /* rows; the frame has at most height - 1 lines (0: no limit) */
    bool colour; /* ANSI colours for statuses */
} live_opts_t;

typedef struct {
    const cJSON *report; /* the last report of the tree (NULL: none yet) */
    const char *tree;    /* its id (for a tree without a report yet) */
    const char *note;    /* shown after the header (e.g. "no answer for 5 s"), or NULL */
} live_tree_t;

/* The frame: one block per tree (the first ones when they do not fit),
 * then "recent events" with the last events (each a line as render_event
 * makes it, newline or not), as many as fit. Lines end with '\n'. NULL only
 * when out of memory. */
char *live_frame(const live_tree_t *trees, int ntrees, const char *const *events, int nevents,
                 const live_opts_t *opts);

/* Visible columns of a line: escape sequences take none, a UTF-8 sequence
 * one. */
int live_width(const char *line);

#endif
