/* arborctl trace / timeline: a tree's phase timeline as Trace Event Format
 * JSON (trace.h) or as a picture drawn by gnuplot (timeline.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "exitcode.h"
#include "query.h"
#include "specfile.h"
#include "timeline.h"
#include "trace.h"

typedef struct {
    const char *supervisor;
    const char *report_file; /* --report: a saved report instead of asking */
    const char *out;         /* trace: -o FILE ("-" stdout); timeline: --png/--svg FILE */
    timeline_format_t format;
    int width;
    const char *tree;
} trace_opts_t;

static int s_parse(const char *cmd, int argc, char **argv, trace_opts_t *o, const char **broker)
{
    bool timeline = strcmp(cmd, "timeline") == 0;
    static const struct option longs[] = {
        {"supervisor", required_argument, NULL, 's'}, {"output", required_argument, NULL, 'o'},
        {"report", required_argument, NULL, 'r'},     {"png", required_argument, NULL, 'P'},
        {"svg", required_argument, NULL, 'S'},        {"width", required_argument, NULL, 'W'},
        {"broker", required_argument, NULL, 'b'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longs, NULL)) != -1) {
        switch (c) {
        case 's': o->supervisor = optarg; break;
        case 'r': o->report_file = optarg; break;
        case 'b': *broker = optarg; break;
        case 'h': return -1;
        case 'o':
            if (timeline)
                return cmd_usage_error(cmd, "use --png FILE or --svg FILE");
            o->out = optarg;
            break;
        case 'P':
        case 'S':
            if (!timeline)
                return cmd_usage_error(cmd, "unknown option --%s", c == 'P' ? "png" : "svg");
            if (o->out)
                return cmd_usage_error(cmd, "give one of --png FILE, --svg FILE");
            o->out = optarg;
            o->format = c == 'P' ? TIMELINE_PNG : TIMELINE_SVG;
            break;
        case 'W': {
            char *end = NULL;
            long w = strtol(optarg, &end, 10);
            if (!timeline)
                return cmd_usage_error(cmd, "unknown option --width");
            if (!end || *end || w < 400 || w > 10000)
                return cmd_usage_error(cmd, "--width wants pixels in 400..10000, not \"%s\"",
                                       optarg);
            o->width = (int) w;
            break;
        }
        default: return cmd_bad_option(cmd, c, argv);
        }
    }
    if (argc - optind > 1)
        return cmd_usage_error(cmd, "expected one TREE, got more");
    o->tree = optind < argc ? argv[optind] : NULL;
    if (!o->tree && !o->report_file)
        return cmd_usage_error(cmd, "missing TREE (or --report FILE)");
    if (o->tree && o->report_file)
        return cmd_usage_error(cmd, "give TREE or --report FILE, not both");
    if (o->tree && !cmd_tree_id_valid(o->tree))
        return cmd_usage_error(cmd, "invalid tree id \"%s\"", o->tree);
    if (o->supervisor && !env_name_valid(o->supervisor, ENV_NAME_MAX))
        return cmd_usage_error(cmd, "invalid supervisor name \"%s\"", o->supervisor);
    if (timeline && !o->out)
        return cmd_usage_error(cmd, "missing --png FILE or --svg FILE");
    return 0;
}

/* The report: from --report, or asked of the supervisors. 0 or an exit code. */
static int s_report(const char *cmd, const char *broker, const trace_opts_t *o, cJSON **report)
{
    *report = NULL;
    if (o->report_file) {
        char err[512];
        *report = specfile_load(o->report_file, err, sizeof err);
        if (!*report) {
            fprintf(stderr, "arborctl %s: %s\n", cmd, err);
            return EXIT_USAGE;
        }
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(*report, "root"))) {
            fprintf(stderr, "arborctl %s: %s is not a report (no \"root\" node)\n", cmd,
                    o->report_file);
            cJSON_Delete(*report);
            *report = NULL;
            return EXIT_USAGE;
        }
        return 0;
    }
    int rc;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    char sup[ENV_NAME_MAX + 1];
    rc = query_find_tree(ctl, o->tree, o->supervisor, sup, sizeof sup, report);
    ctl_destroy(&ctl);
    return rc;
}

int cmd_trace(const char *broker, int argc, char **argv)
{
    trace_opts_t o = {0};
    int rc = s_parse("trace", argc, argv, &o, &broker);
    if (rc < 0)
        return cmd_help("trace");
    if (rc)
        return rc;
    cJSON *report;
    rc = s_report("trace", broker, &o, &report);
    if (rc)
        return rc;
    cJSON *trace = trace_from_report(report);
    cJSON_Delete(report);
    char *text = trace ? cJSON_PrintUnformatted(trace) : NULL;
    cJSON_Delete(trace);
    if (!text) {
        fprintf(stderr, "arborctl trace: out of memory\n");
        return EXIT_UNREACHABLE;
    }
    const char *out = o.out && strcmp(o.out, "-") ? o.out : NULL;
    FILE *f = out ? fopen(out, "we") : stdout;
    if (!f) {
        fprintf(stderr, "arborctl trace: cannot write %s: %s\n", out, strerror(errno));
        free(text);
        return EXIT_UNREACHABLE;
    }
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (f == stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    free(text);
    if (!ok) {
        fprintf(stderr, "arborctl trace: cannot write %s\n", out ? out : "stdout");
        return EXIT_UNREACHABLE;
    }
    return EXIT_TREE_OK;
}

int cmd_timeline(const char *broker, int argc, char **argv)
{
    trace_opts_t o = {0};
    int rc = s_parse("timeline", argc, argv, &o, &broker);
    if (rc < 0)
        return cmd_help("timeline");
    if (rc)
        return rc;
    cJSON *report;
    rc = s_report("timeline", broker, &o, &report);
    if (rc)
        return rc;
    char *script = timeline_script(report, o.format, o.width);
    cJSON_Delete(report);
    if (!script) {
        fprintf(stderr, "arborctl timeline: out of memory\n");
        return EXIT_UNREACHABLE;
    }
    char err[600];
    rc = timeline_render(script, o.out, TIMELINE_TIMEOUT_MS, err, sizeof err);
    free(script);
    if (rc == TIMELINE_NO_GNUPLOT) {
        fprintf(stderr, "arborctl timeline: %s\n", err);
        return EXIT_USAGE;
    }
    if (rc != TIMELINE_OK) {
        fprintf(stderr, "arborctl timeline: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    return EXIT_TREE_OK;
}
