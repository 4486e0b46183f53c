/* arborctl logs: the output lines a tree's nodes wrote (supervisor request
 * "logs", schema/msg.logs.json), read from a cursor; --follow asks again
 * until the tree (or the node) has ended and its pipes are drained. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "exitcode.h"
#include "query.h"

#define LOGS_POLL_MS 200   /* --follow: ask for new lines this often */
#define LOGS_DRAIN_MS 5000 /* --follow: after the end, wait this long at most for the last lines */
#define LOGS_CUT_MARK " [... %llu bytes cut]" /* as supervisor/logbuf.h */

typedef struct {
    const char *supervisor;
    bool follow, json;
    const char *stream; /* NULL: both */
    char tree[QUERY_TREE_MAX + 1];
    const char *path;   /* NULL: the whole tree */
} logs_opts_t;

static int s_parse(int argc, char **argv, logs_opts_t *o, const char **broker)
{
    static const struct option longs[] = {
        {"supervisor", required_argument, NULL, 's'}, {"follow", no_argument, NULL, 'f'},
        {"stream", required_argument, NULL, 'S'},     {"json", no_argument, NULL, 'j'},
        {"broker", required_argument, NULL, 'b'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fh", longs, NULL)) != -1) {
        switch (c) {
        case 's': o->supervisor = optarg; break;
        case 'f': o->follow = true; break;
        case 'j': o->json = true; break;
        case 'b': *broker = optarg; break;
        case 'h': return -1;
        case 'S':
            if (strcmp(optarg, "stdout") != 0 && strcmp(optarg, "stderr") != 0)
                return cmd_usage_error("logs", "--stream is stdout or stderr, not \"%s\"", optarg);
            o->stream = optarg;
            break;
        default: return cmd_bad_option("logs", c, argv);
        }
    }
    if (optind != argc - 1)
        return cmd_usage_error("logs", optind >= argc ? "missing TREE"
                                                      : "expected one TREE, got more");
    const char *arg = argv[optind];
    const char *slash = strchr(arg, '/');
    size_t len = slash ? (size_t) (slash - arg) : strlen(arg);
    if (len > QUERY_TREE_MAX)
        return cmd_usage_error("logs", "invalid tree id \"%.*s\"", (int) len, arg);
    memcpy(o->tree, arg, len);
    o->tree[len] = 0;
    if (!cmd_tree_id_valid(o->tree))
        return cmd_usage_error("logs", "invalid tree id \"%s\"", o->tree);
    if (slash) {
        o->path = slash + 1;
        /* PATH: node names joined by '/', starting with the root's name. */
        for (const char *p = o->path;;) {
            const char *next = strchr(p, '/');
            size_t n = next ? (size_t) (next - p) : strlen(p);
            char name[128];
            if (n == 0 || n >= sizeof name)
                return cmd_usage_error("logs", "invalid node path \"%s\"", o->path);
            memcpy(name, p, n);
            name[n] = 0;
            if (!env_name_valid(name, 64))
                return cmd_usage_error("logs", "invalid node name \"%s\" in path", name);
            if (!next)
                break;
            p = next + 1;
        }
    }
    if (o->supervisor && !env_name_valid(o->supervisor, ENV_NAME_MAX))
        return cmd_usage_error("logs", "invalid supervisor name \"%s\"", o->supervisor);
    return 0;
}

/* One line: "PATH STREAM | TEXT" or its JSON object. -1 when stdout failed. */
static int s_print_line(const cJSON *line, bool json)
{
    if (json) {
        char *text = cJSON_PrintUnformatted(line);
        int rc = text && puts(text) >= 0 ? 0 : -1;
        free(text);
        return rc;
    }
    const char *path = env_str(line, "path"), *stream = env_str(line, "stream");
    const char *text = env_str(line, "text");
    int64_t cut = env_int(line, "cut", 0);
    if (printf("%s %s | %s", path ? path : "?", stream ? stream : "?", text ? text : "") < 0)
        return -1;
    if (cut > 0 && printf(LOGS_CUT_MARK, (unsigned long long) cut) < 0)
        return -1;
    return putchar('\n') == EOF ? -1 : 0;
}

/* What a reply says besides its lines. */
typedef struct {
    bool more, ended, eof;
    char status[24], node_status[24];
} logs_state_t;

/* One request at cursor *after; prints the lines, advances *after and fills
 * *st. 0 or an exit code. */
static int s_ask(ctl_t *ctl, const char *sup, const logs_opts_t *o, uint64_t *after,
                 logs_state_t *st)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", o->tree);
    if (o->path)
        cJSON_AddStringToObject(body, "path", o->path);
    if (o->stream)
        cJSON_AddStringToObject(body, "stream", o->stream);
    cJSON_AddNumberToObject(body, "after", (double) *after);
    env_t *reply = ctl_request(ctl, sup, "logs", body, CTL_REPLY_MS);
    if (!reply) {
        if (ctl_signalled())
            return EXIT_INTERRUPTED;
        fprintf(stderr, "arborctl: supervisor %s did not answer \"logs\" within %d s\n", sup,
                CTL_REPLY_MS / 1000);
        return EXIT_UNREACHABLE;
    }
    if (strcmp(reply->type, "logs") != 0) {
        const char *code = env_str(reply->body, "code");
        const char *message = env_str(reply->body, "message");
        bool not_found = code && strcmp(code, "not_found") == 0;
        if (not_found && o->path)
            fprintf(stderr, "arborctl: tree %s has no node %s\n", o->tree, o->path);
        else
            fprintf(stderr, "arborctl: supervisor %s refused \"logs\": %s%s%s\n", sup,
                    code ? code : reply->type, message ? ": " : "", message ? message : "");
        env_destroy(&reply);
        return not_found || (code && strcmp(code, "bad_request") == 0) ? EXIT_USAGE
                                                                       : EXIT_UNREACHABLE;
    }
    const cJSON *line;
    cJSON_ArrayForEach(line, cJSON_GetObjectItemCaseSensitive(reply->body, "lines"))
    {
        if (s_print_line(line, o->json) != 0) {
            env_destroy(&reply);
            fprintf(stderr, "arborctl: cannot write to stdout\n");
            return EXIT_UNREACHABLE;
        }
    }
    if (fflush(stdout) != 0) {
        env_destroy(&reply);
        fprintf(stderr, "arborctl: cannot write to stdout\n");
        return EXIT_UNREACHABLE;
    }
    int64_t next;
    if (env_num(reply->body, "next", &next) && next >= 0 && (uint64_t) next > *after)
        *after = (uint64_t) next;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply->body, "gap")))
        fprintf(stderr, "arborctl: some lines were dropped before they could be read (%lld "
                "dropped in all: the supervisor keeps --log-lines/--log-bytes per node)\n",
                (long long) env_int(reply->body, "dropped", 0));
    st->more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply->body, "more"));
    st->ended = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply->body, "ended"));
    st->eof = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply->body, "eof"));
    snprintf(st->status, sizeof st->status, "%s", env_str(reply->body, "status") ?: "");
    snprintf(st->node_status, sizeof st->node_status, "%s",
             env_str(reply->body, "node_status") ?: "");
    env_destroy(&reply);
    return 0;
}

/* The exit code once followed to the end: the node's status while the tree
 * goes on (like cancel --wait of a subtree), else the tree's. */
static int s_exit_code(const logs_state_t *st, const logs_opts_t *o)
{
    if (o->path && !exitcode_tree_ended(st->status))
        return exitcode_node(st->node_status);
    return exitcode_tree(st->status);
}

int cmd_logs(const char *broker, int argc, char **argv)
{
    logs_opts_t o = {0};
    int rc = s_parse(argc, argv, &o, &broker);
    if (rc < 0)
        return cmd_help("logs");
    if (rc)
        return rc;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    char sup[ENV_NAME_MAX + 1];
    cJSON *report = NULL;
    rc = query_find_tree(ctl, o.tree, o.supervisor, sup, sizeof sup, &report);
    cJSON_Delete(report);
    uint64_t after = 0;
    int64_t ended_at = 0;
    while (rc == 0) {
        logs_state_t st;
        rc = s_ask(ctl, sup, &o, &after, &st);
        if (rc)
            break;
        if (!st.more && (!o.follow || st.eof)) {
            rc = o.follow ? s_exit_code(&st, &o) : EXIT_TREE_OK;
            break;
        }
        if (!ended_at && st.ended)
            ended_at = clk_now_ms();
        if (!st.more && ended_at && clk_now_ms() - ended_at > LOGS_DRAIN_MS) {
            /* A pipe still open after the end (a descendant that escaped
             * containment holds it): stop anyway. */
            fprintf(stderr, "arborctl: tree %s ended but its output did not close within %d s\n",
                    o.tree, LOGS_DRAIN_MS / 1000);
            rc = s_exit_code(&st, &o);
            break;
        }
        if (st.more)
            continue;
        /* Wait for the next poll; a signal ends the wait at once. */
        env_t *stray;
        int64_t until = clk_now_ms() + LOGS_POLL_MS;
        while ((stray = ctl_recv(ctl, until)))
            env_destroy(&stray);
        if (ctl_signalled())
            rc = EXIT_INTERRUPTED;
    }
    ctl_destroy(&ctl);
    return rc;
}
