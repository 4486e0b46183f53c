/* arborctl watch: print tree events as they come. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmd.h"
#include "exitcode.h"
#include "query.h"
#include "render.h"

#define WATCH_POLL_MS 2000  /* status fallback for a lost "done" event */
#define WATCH_GRACE_MS 500  /* after a report shows the end, wait for the last events */

static void s_clock(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    snprintf(out, size, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
}

static int s_line(const cJSON *event)
{
    char clock[32];
    s_clock(clock, sizeof clock);
    char *line = render_event(event, clock, render_colour_wanted(STDOUT_FILENO));
    int rc = line && fputs(line, stdout) >= 0 && fflush(stdout) == 0 ? 0 : -1;
    free(line);
    return rc;
}

/* A "done" line made from a report, for an end we learnt by polling. */
static int s_done_line(const char *tree, const char *status)
{
    cJSON *event = cJSON_CreateObject();
    cJSON_AddStringToObject(event, "tree", tree);
    cJSON_AddStringToObject(event, "kind", "done");
    cJSON_AddStringToObject(event, "status", status);
    int rc = s_line(event);
    cJSON_Delete(event);
    return rc;
}

int cmd_watch(const char *broker, int argc, char **argv)
{
    static const struct option longs[] = {
        {"supervisor", required_argument, NULL, 's'},
        {"broker", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *forced = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 's': forced = optarg; break;
        case 'b': broker = optarg; break;
        case 'h': return cmd_help("watch");
        default: return cmd_bad_option("watch", c, argv);
        }
    }
    if (argc - optind > 1)
        return cmd_usage_error("watch", "expected at most one TREE");
    const char *tree = optind < argc ? argv[optind] : NULL;
    if (tree && !cmd_tree_id_valid(tree))
        return cmd_usage_error("watch", "invalid tree id \"%s\"", tree);
    if (forced && !env_name_valid(forced, ENV_NAME_MAX))
        return cmd_usage_error("watch", "invalid supervisor name \"%s\"", forced);

    int rc;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    char topic[QUERY_TREE_MAX + 8];
    snprintf(topic, sizeof topic, "tree/%s", tree ? tree : "");
    char sup[ENV_NAME_MAX + 1] = "";
    cJSON *report = NULL;
    if (ctl_subscribe(ctl, topic, CTL_REPLY_MS) != 0) {
        rc = ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
        if (!ctl_signalled())
            fprintf(stderr, "arborctl: the broker did not confirm the subscription\n");
        goto done;
    }
    /* Subscribed first, then looked up: an end between the two is seen. */
    if (tree) {
        rc = query_find_tree(ctl, tree, forced, sup, sizeof sup, &report);
        if (rc)
            goto done;
        if (exitcode_tree_ended(query_status(report))) {
            s_done_line(tree, query_status(report));
            rc = exitcode_tree(query_status(report));
            goto done;
        }
        cJSON_Delete(report);
        report = NULL;
    }
    int64_t next_poll = tree ? clk_now_ms() + WATCH_POLL_MS : 0;
    int64_t end_at = 0; /* polled end seen: stop then if no "done" came */
    char end_status[32] = "";
    rc = EXIT_TREE_OK;
    while (true) {
        int64_t now = clk_now_ms();
        if (end_at && now >= end_at) {
            s_done_line(tree, end_status);
            rc = exitcode_tree(end_status);
            break;
        }
        if (tree && !end_at && now >= next_poll) {
            cJSON *body = cJSON_CreateObject();
            cJSON_AddStringToObject(body, "tree", tree);
            ctl_send(ctl, sup, "status", body);
            next_poll = now + WATCH_POLL_MS;
        }
        int64_t until = end_at ? end_at : next_poll;
        env_t *env = ctl_recv(ctl, until);
        if (!env) {
            if (ctl_signalled()) {
                rc = tree ? EXIT_INTERRUPTED : EXIT_TREE_OK;
                break;
            }
            continue;
        }
        if (strcmp(env->type, "event") == 0 &&
            strncmp(env_str(env->body, "topic") ?: "", "tree/", 5) == 0) {
            if (s_line(env->body) != 0) {
                env_destroy(&env);
                rc = EXIT_UNREACHABLE; /* stdout is gone */
                break;
            }
            const char *kind = env_str(env->body, "kind");
            if (tree && kind && strcmp(kind, "done") == 0 &&
                strcmp(env_str(env->body, "tree") ?: "", tree) == 0) {
                rc = exitcode_tree(env_str(env->body, "status"));
                env_destroy(&env);
                break;
            }
        } else if (tree && !end_at && strcmp(env->type, "report") == 0 &&
                   strcmp(env->from, sup) == 0) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(env->body, "report");
            const char *status = env_str(r, "status");
            if (strcmp(env_str(r, "tree") ?: "", tree) == 0 && exitcode_tree_ended(status)) {
                snprintf(end_status, sizeof end_status, "%s", status);
                end_at = clk_now_ms() + WATCH_GRACE_MS;
            }
        }
        env_destroy(&env);
    }
done:
    cJSON_Delete(report);
    ctl_destroy(&ctl);
    return rc;
}
