/* timeline: a tree report drawn as a picture by gnuplot — one row per node
 * (labelled by path, in trace.h's order), time across, each phase a coloured
 * bar (with a legend), the signals arbor sent and the errors marked, the
 * stuck node's stuck phase outlined in red and annotated.
 *
 * timeline_script is pure (report -> gnuplot script with inline data);
 * timeline_render runs gnuplot on it in a private temp dir, with a deadline. */
#ifndef ARBOR_CLI_TIMELINE_H
#define ARBOR_CLI_TIMELINE_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum { TIMELINE_PNG, TIMELINE_SVG } timeline_format_t;

#define TIMELINE_MAX_ROWS 400        /* more nodes: the first ones, and a note */
#define TIMELINE_WIDTH 1400          /* default picture width, px */
#define TIMELINE_TIMEOUT_MS 30000    /* gnuplot's deadline */

enum {
    TIMELINE_OK = 0,
    TIMELINE_ERROR = -1,      /* gnuplot failed, timed out, or I/O failed */
    TIMELINE_NO_GNUPLOT = -2, /* gnuplot is not installed */
};

/* The gnuplot script drawing report (the picture goes to gnuplot's stdout);
 * width in px (0: TIMELINE_WIDTH). Worker-provided text is quoted for
 * gnuplot and stripped of control characters. NULL when the report has no
 * root object (or out of memory). */
char *timeline_script(const cJSON *report, timeline_format_t format, int width);

/* Run "gnuplot SCRIPT" in a fresh temp dir (removed afterwards) and write
 * the picture to out_path ("-": stdout); the file is written only when
 * gnuplot succeeded. gnuplot is killed after timeout_ms. TIMELINE_OK, or an
 * error code with a one-line reason in err. */
int timeline_render(const char *script, const char *out_path, int timeout_ms, char *err,
                    size_t err_size);

#endif
