/* arborctl status / cancel: commands about one existing tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "exitcode.h"
#include "query.h"

typedef struct {
    const char *supervisor;
    bool wait;
    bool json;
    int64_t timeout_ms;
    char tree[QUERY_TREE_MAX + 1];
    const char *path; /* NULL: the whole tree */
} tree_opts_t;

static int s_parse(const char *cmd, int argc, char **argv, tree_opts_t *o, const char **broker)
{
    bool is_cancel = strcmp(cmd, "cancel") == 0;
    /* status and cancel both take TREE[/PATH]. */
    static const struct option longs[] = {
        {"supervisor", required_argument, NULL, 's'}, {"wait", no_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},    {"json", no_argument, NULL, 'j'},
        {"broker", required_argument, NULL, 'b'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 's': o->supervisor = optarg; break;
        case 'j': o->json = true; break;
        case 'b': *broker = optarg; break;
        case 'h': return -1;
        case 'w':
            if (!is_cancel)
                return cmd_usage_error(cmd, "unknown option --wait");
            o->wait = true;
            break;
        case 't':
            if (!is_cancel)
                return cmd_usage_error(cmd, "unknown option --timeout");
            if (cmd_parse_seconds(optarg, &o->timeout_ms) != 0)
                return cmd_usage_error(cmd, "--timeout wants a number of seconds > 0, not \"%s\"",
                                       optarg);
            break;
        default: return cmd_bad_option(cmd, c, argv);
        }
    }
    if (optind != argc - 1)
        return cmd_usage_error(cmd, optind >= argc ? "missing TREE" : "expected one TREE, got more");
    const char *arg = argv[optind];
    const char *slash = strchr(arg, '/');
    size_t len = slash ? (size_t) (slash - arg) : strlen(arg);
    if (len > QUERY_TREE_MAX)
        return cmd_usage_error(cmd, "invalid tree id \"%.*s\"", (int) len, arg);
    memcpy(o->tree, arg, len);
    o->tree[len] = 0;
    if (!cmd_tree_id_valid(o->tree))
        return cmd_usage_error(cmd, "invalid tree id \"%s\"", o->tree);
    if (slash) {
        o->path = slash + 1;
        /* PATH: node names joined by '/', starting with the root's name. */
        const char *p = o->path;
        while (true) {
            const char *next = strchr(p, '/');
            size_t n = next ? (size_t) (next - p) : strlen(p);
            char name[128];
            if (n == 0 || n >= sizeof name)
                return cmd_usage_error(cmd, "invalid node path \"%s\"", o->path);
            memcpy(name, p, n);
            name[n] = 0;
            if (!env_name_valid(name, 64))
                return cmd_usage_error(cmd, "invalid node name \"%s\" in path", name);
            if (!next)
                break;
            p = next + 1;
        }
    }
    if (o->timeout_ms && !o->wait)
        return cmd_usage_error(cmd, "--timeout only makes sense with --wait");
    if (o->supervisor && !env_name_valid(o->supervisor, ENV_NAME_MAX))
        return cmd_usage_error(cmd, "invalid supervisor name \"%s\"", o->supervisor);
    return 0;
}

static int s_print(cJSON *report, bool json)
{
    if (query_print_report(report, json) != 0) {
        fprintf(stderr, "arborctl: cannot write the report to stdout\n");
        return -1;
    }
    return 0;
}

/* The report with its root replaced by the node at path (a copy), or NULL
 * with a message when the tree has no such node. */
static cJSON *s_subtree(const cJSON *report, const char *tree, const char *path)
{
    const cJSON *node = query_node(report, path);
    if (!node) {
        fprintf(stderr, "arborctl: tree %s has no node %s\n", tree, path);
        return NULL;
    }
    cJSON *copy = cJSON_Duplicate(report, true);
    if (copy)
        cJSON_ReplaceItemInObjectCaseSensitive(copy, "root", cJSON_Duplicate(node, true));
    return copy;
}

/* Exit code of a report, or of its node at path: a running tree exits by
 * that node's status (0 while it runs). */
static int s_exit_code(const cJSON *report, const char *path)
{
    const cJSON *node = path ? query_node(report, path) : NULL;
    if (node && !exitcode_tree_ended(env_str(report, "status")))
        return exitcode_node(env_str(node, "status"));
    return exitcode_tree(query_status(report));
}

int cmd_status(const char *broker, int argc, char **argv)
{
    tree_opts_t o = {0};
    int rc = s_parse("status", argc, argv, &o, &broker);
    if (rc < 0)
        return cmd_help("status");
    if (rc)
        return rc;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    if (o.json && !o.path)
        ctl_keep_raw_reports(ctl); /* printed as it comes */
    char sup[ENV_NAME_MAX + 1];
    cJSON *report = NULL;
    rc = query_find_tree(ctl, o.tree, o.supervisor, sup, sizeof sup, &report);
    cJSON *shown = rc == 0 && o.path ? s_subtree(report, o.tree, o.path) : NULL;
    if (rc == 0 && o.path && !shown)
        rc = EXIT_USAGE;
    else if (rc == 0)
        rc = s_print(shown ? shown : report, o.json) == 0 ? s_exit_code(report, o.path)
                                                          : EXIT_UNREACHABLE;
    cJSON_Delete(shown);
    cJSON_Delete(report);
    ctl_destroy(&ctl);
    return rc;
}

/* The cancel request to sup, and its answer (NULL: none in time). */
static env_t *s_cancel_request(ctl_t *ctl, const char *sup, const tree_opts_t *o)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", o->tree);
    if (o->path)
        cJSON_AddStringToObject(body, "path", o->path);
    return ctl_request(ctl, sup, "cancel", body, CTL_REPLY_MS);
}

/* Send cancel and read the answer. 0 when the supervisor is cancelling. */
static int s_cancel(ctl_t *ctl, const char *sup, const tree_opts_t *o)
{
    env_t *reply = s_cancel_request(ctl, sup, o);
    if (!reply) {
        if (ctl_signalled())
            return EXIT_INTERRUPTED;
        fprintf(stderr, "arborctl: supervisor %s did not answer the cancel within %d s\n", sup,
                CTL_REPLY_MS / 1000);
        return EXIT_UNREACHABLE;
    }
    int rc = 0;
    if (strcmp(reply->type, "cancelling") != 0) {
        const char *code = env_str(reply->body, "code");
        const char *message = env_str(reply->body, "message");
        if (code && strcmp(code, "not_found") == 0) {
            if (o->path)
                fprintf(stderr, "arborctl: tree %s has no node %s\n", o->tree, o->path);
            else
                fprintf(stderr, "arborctl: supervisor %s does not know tree %s\n", sup, o->tree);
            rc = EXIT_USAGE;
        } else {
            fprintf(stderr, "arborctl: supervisor %s refused the cancel: %s%s%s\n", sup,
                    code ? code : reply->type, message ? ": " : "", message ? message : "");
            rc = code && strcmp(code, "bad_request") == 0 ? EXIT_USAGE : EXIT_UNREACHABLE;
        }
    }
    env_destroy(&reply);
    return rc;
}

/* The cancel sent straight to the supervisor the tree's id (or
 * --supervisor) names, without first fetching the report to find it (for a
 * big tree, most of the time a cancel of it took). 1 when it is
 * cancelling (*ended: it had ended already), 0 when it was not the owner,
 * or did not answer (the caller then looks for the tree), or an exit code. */
static int s_cancel_direct(ctl_t *ctl, const char *sup, const tree_opts_t *o, bool *ended)
{
    env_t *reply = s_cancel_request(ctl, sup, o);
    if (!reply)
        return ctl_signalled() ? EXIT_INTERRUPTED : 0;
    int rc = 0;
    if (strcmp(reply->type, "cancelling") == 0 && strcmp(reply->from, sup) == 0) {
        rc = 1;
        *ended = o->path ? exitcode_node_ended(env_str(reply->body, "status"))
                         : env_str(reply->body, "tree_status") != NULL;
    }
    env_destroy(&reply);
    return rc;
}

/* Nothing to cancel: the tree (or the node) has ended already. Say so,
 * print the report with --json, and exit with its code (*rc). */
static bool s_already_ended(cJSON *report, const tree_opts_t *o, const char *sup, int *rc)
{
    const char *status = query_status(report);
    const cJSON *node = o->path ? query_node(report, o->path) : NULL;
    if (o->path && !node) {
        fprintf(stderr, "arborctl: tree %s has no node %s\n", o->tree, o->path);
        *rc = EXIT_USAGE;
        return true;
    }
    if (node && !exitcode_tree_ended(status)) {
        if (!exitcode_node_ended(env_str(node, "status")))
            return false;
        fprintf(stderr, "arborctl: %s/%s on %s has already ended: %s; nothing to cancel\n",
                o->tree, o->path, sup, env_str(node, "status"));
    } else if (exitcode_tree_ended(status)) {
        fprintf(stderr, "arborctl: tree %s on %s has already ended: %s; nothing to cancel\n",
                o->tree, sup, status);
    } else {
        return false;
    }
    *rc = s_exit_code(report, o->path);
    if (o->json && s_print(report, true) != 0)
        *rc = EXIT_UNREACHABLE;
    return true;
}

int cmd_cancel(const char *broker, int argc, char **argv)
{
    tree_opts_t o = {0};
    int rc = s_parse("cancel", argc, argv, &o, &broker);
    if (rc < 0)
        return cmd_help("cancel");
    if (rc)
        return rc;
    int64_t deadline = o.timeout_ms ? clk_now_ms() + o.timeout_ms : 0;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    if (o.json && !o.path)
        ctl_keep_raw_reports(ctl); /* printed as it comes */
    char sup[ENV_NAME_MAX + 1];
    cJSON *report = NULL;
    bool ended = false;
    int direct = 0;
    if (o.supervisor ? snprintf(sup, sizeof sup, "%s", o.supervisor) < (int) sizeof sup
                     : query_named_supervisor(o.tree, sup, sizeof sup)) {
        /* Subscribe first: the end may follow the cancel at once. */
        if (o.wait && (rc = query_subscribe_wait(ctl, o.tree, o.path)) != 0)
            goto done;
        direct = s_cancel_direct(ctl, sup, &o, &ended);
        if (direct > 1) {
            rc = direct;
            goto done;
        }
    }
    if (direct == 0 || ended) {
        /* Not where its id says, or nothing left to cancel: find the tree
         * and its report, as the answer needs it. */
        rc = query_find_tree(ctl, o.tree, o.supervisor, sup, sizeof sup, &report);
        if (rc)
            goto done;
        if (s_already_ended(report, &o, sup, &rc))
            goto done;
    }
    if (direct == 0) {
        if (o.wait && (rc = query_subscribe_wait(ctl, o.tree, o.path)) != 0)
            goto done;
        rc = s_cancel(ctl, sup, &o);
        if (rc)
            goto done;
    }
    cJSON_Delete(report);
    report = NULL;
    if (!o.wait) {
        if (o.json) { /* --json always prints a report: the one after the cancel */
            char got[ENV_NAME_MAX + 1];
            rc = query_find_tree(ctl, o.tree, sup, got, sizeof got, &report);
            if (rc == 0)
                rc = s_print(report, true) == 0 ? EXIT_TREE_OK : EXIT_UNREACHABLE;
        } else {
            printf("cancelling %s%s%s on %s\n", o.tree, o.path ? "/" : "", o.path ? o.path : "",
                   sup);
            rc = fflush(stdout) == 0 ? EXIT_TREE_OK : EXIT_UNREACHABLE;
        }
        goto done;
    }
    rc = query_wait_end(ctl, sup, o.tree, o.path, deadline, &report);
    if (rc)
        goto done;
    if (s_print(report, o.json) != 0) {
        rc = EXIT_UNREACHABLE;
        goto done;
    }
    /* A subtree cancel ends with that node; the tree may go on running. */
    rc = s_exit_code(report, o.path);
done:
    cJSON_Delete(report);
    ctl_destroy(&ctl);
    return rc;
}
