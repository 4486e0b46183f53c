/* arborctl spawn: send a spec to a supervisor; with --wait, follow the tree
 * to its end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cmd.h"
#include "exitcode.h"
#include "peer.h"
#include "query.h"
#include "specfile.h"

typedef struct {
    const char *supervisor;
    bool wait;
    bool json;
    int64_t timeout_ms; /* 0: none */
    const char *file;
    const char *under;  /* TREE/PATH: a child of a running node */
} spawn_opts_t;

static int s_parse(int argc, char **argv, spawn_opts_t *o, const char **broker)
{
    static const struct option longs[] = {
        {"supervisor", required_argument, NULL, 's'}, {"wait", no_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},    {"json", no_argument, NULL, 'j'},
        {"broker", required_argument, NULL, 'b'},     {"help", no_argument, NULL, 'h'},
        {"under", required_argument, NULL, 'u'},      {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 's': o->supervisor = optarg; break;
        case 'w': o->wait = true; break;
        case 'u': o->under = optarg; break;
        case 'j': o->json = true; break;
        case 'b': *broker = optarg; break;
        case 'h': return -1;
        case 't':
            if (cmd_parse_seconds(optarg, &o->timeout_ms) != 0)
                return cmd_usage_error("spawn", "--timeout wants a number of seconds > 0, not \"%s\"",
                                       optarg);
            break;
        default: return cmd_bad_option("spawn", c, argv);
        }
    }
    if (optind != argc - 1)
        return cmd_usage_error("spawn", optind >= argc ? "missing FILE (or - for stdin)"
                                                       : "expected one FILE, got more");
    o->file = argv[optind];
    if (o->timeout_ms && !o->wait)
        return cmd_usage_error("spawn", "--timeout only makes sense with --wait");
    if (o->under && (!strchr(o->under, '/') || strchr(o->under, '/') == o->under ||
                     !strchr(o->under, '/')[1]))
        return cmd_usage_error("spawn", "--under wants TREE/PATH, not \"%s\"", o->under);
    if (o->supervisor && !env_name_valid(o->supervisor, ENV_NAME_MAX))
        return cmd_usage_error("spawn", "invalid supervisor name \"%s\"", o->supervisor);
    return 0;
}

/* Handle the supervisor's answer to spawn. 0 when spawned. */
static int s_spawn_reply(env_t *reply, const char *sup, const char *tree)
{
    if (!reply) {
        if (ctl_signalled())
            return EXIT_INTERRUPTED;
        fprintf(stderr, "arborctl: supervisor %s did not answer within %d s\n", sup,
                CTL_REPLY_MS / 1000);
        return EXIT_UNREACHABLE;
    }
    if (strcmp(reply->type, "spawned") == 0) {
        const char *got = env_str(reply->body, "tree");
        if (got && strcmp(got, tree) != 0)
            fprintf(stderr, "arborctl: warning: supervisor named the tree %s, not %s\n", got, tree);
        return 0;
    }
    const char *code = env_str(reply->body, "code");
    const char *message = env_str(reply->body, "message");
    if (strcmp(reply->type, "error") == 0 && code && strcmp(code, "invalid_spec") == 0) {
        const char *path = env_str(reply->body, "path");
        fprintf(stderr, "invalid spec at %s: %s\n", path && *path ? path : "(root)",
                message ? message : "(no message)");
        return EXIT_USAGE;
    }
    if (code && strcmp(code, "not_found") == 0) { /* --under: no such tree or node */
        fprintf(stderr, "arborctl: %s\n", message ? message : "not found");
        return EXIT_USAGE;
    }
    if (code && strcmp(code, "unknown_destination") == 0) {
        fprintf(stderr, "arborctl: supervisor %s is not registered at the broker\n", sup);
        return EXIT_UNREACHABLE;
    }
    fprintf(stderr, "arborctl: supervisor %s refused the spawn: %s%s%s\n", sup,
            code ? code : reply->type, message ? ": " : "", message ? message : "");
    return code && (strcmp(code, "bad_request") == 0 || strcmp(code, "limit_exceeded") == 0)
               ? EXIT_USAGE
               : EXIT_UNREACHABLE;
}

/* spawn --under TREE/PATH: a child of a running node; prints its path, or
 * with --wait the report once that node has ended. */
static int s_spawn_under(ctl_t *ctl, const spawn_opts_t *o, cJSON *spec, int64_t deadline)
{
    char tree[QUERY_TREE_MAX + 1];
    const char *slash = strchr(o->under, '/');
    if ((size_t) (slash - o->under) >= sizeof tree) {
        cJSON_Delete(spec);
        return cmd_usage_error("spawn", "--under: \"%.*s\" is not a tree id",
                               (int) (slash - o->under), o->under);
    }
    snprintf(tree, sizeof tree, "%.*s", (int) (slash - o->under), o->under);
    char sup[ENV_NAME_MAX + 1];
    cJSON *report = NULL;
    int rc = query_find_tree(ctl, tree, o->supervisor, sup, sizeof sup, &report);
    cJSON_Delete(report);
    report = NULL;
    if (rc) {
        cJSON_Delete(spec);
        return rc;
    }
    if (o->wait && (rc = query_subscribe_wait(ctl, tree, slash + 1)) != 0) {
        cJSON_Delete(spec);
        return rc;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "spec", spec);
    cJSON_AddStringToObject(body, "tree", tree);
    cJSON_AddStringToObject(body, "under", slash + 1);
    env_t *reply = ctl_request(ctl, sup, "spawn", body, CTL_REPLY_MS);
    rc = s_spawn_reply(reply, sup, tree);
    char path[1024];
    snprintf(path, sizeof path, "%s", rc == 0 ? env_str(reply->body, "path") ?: "" : "");
    env_destroy(&reply);
    if (rc)
        return rc;
    if (!o->wait) {
        printf("%s/%s\n", tree, path);
        return fflush(stdout) == 0 ? EXIT_TREE_OK : EXIT_UNREACHABLE;
    }
    rc = query_wait_end(ctl, sup, tree, path, deadline, &report);
    if (rc)
        return rc;
    const cJSON *node = query_node(report, path);
    rc = query_print_report(report, o->json) == 0 ? exitcode_node(env_str(node, "status"))
                                                   : EXIT_UNREACHABLE;
    cJSON_Delete(report);
    return rc;
}

int cmd_spawn(const char *broker, int argc, char **argv)
{
    spawn_opts_t o = {0};
    int rc = s_parse(argc, argv, &o, &broker);
    if (rc < 0)
        return cmd_help("spawn");
    if (rc)
        return rc;
    /* Read the spec before anything else: a bad file needs no broker. */
    char err[512];
    cJSON *spec = specfile_load(o.file, err, sizeof err);
    if (!spec) {
        fprintf(stderr, "arborctl: %s\n", err);
        return EXIT_USAGE;
    }
    int64_t deadline = o.timeout_ms ? clk_now_ms() + o.timeout_ms : 0;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl) {
        cJSON_Delete(spec);
        return rc;
    }
    if (o.under) {
        rc = s_spawn_under(ctl, &o, spec, deadline);
        ctl_destroy(&ctl);
        return rc;
    }
    if (o.json)
        ctl_keep_raw_reports(ctl); /* printed as it comes */
    char sup[ENV_NAME_MAX + 1];
    char tree[QUERY_TREE_MAX + 1];
    env_t *reply = NULL;
    cJSON *report = NULL;
    rc = query_pick_supervisor(ctl, o.supervisor, sup, sizeof sup);
    if (rc)
        goto done;
    /* SUPERVISOR.RANDOM: the id names its supervisor, so later commands
     * go straight to it. */
    char rnd[17];
    peer_random_id(rnd, sizeof rnd);
    if (strlen(sup) + 1 + strlen(rnd) < sizeof tree)
        snprintf(tree, sizeof tree, "%.*s.%s", (int) (sizeof tree - 18), sup, rnd);
    else
        snprintf(tree, sizeof tree, "%s", rnd);
    /* Subscribe before spawning so that not even the first event is missed. */
    if (o.wait && (rc = query_subscribe_wait(ctl, tree, NULL)) != 0)
        goto done;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "spec", spec);
    spec = NULL;
    cJSON_AddStringToObject(body, "tree", tree);
    reply = ctl_request(ctl, sup, "spawn", body, CTL_REPLY_MS);
    rc = s_spawn_reply(reply, sup, tree);
    if (rc)
        goto done;
    if (!o.wait && o.json) { /* --json always prints a report: the current one */
        char got[ENV_NAME_MAX + 1];
        rc = query_find_tree(ctl, tree, sup, got, sizeof got, &report);
        if (rc)
            goto done;
        rc = query_print_report(report, true) == 0 ? EXIT_TREE_OK : EXIT_UNREACHABLE;
        goto done;
    }
    if (!o.wait) {
        printf("%s\n", tree);
        rc = fflush(stdout) == 0 ? EXIT_TREE_OK : EXIT_UNREACHABLE;
        goto done;
    }
    if (!o.json)
        fprintf(stderr, "arborctl: tree %s spawned on %s; waiting for it to end\n", tree, sup);
    rc = query_wait_end(ctl, sup, tree, NULL, deadline, &report);
    if (rc)
        goto done;
    if (query_print_report(report, o.json) != 0) {
        fprintf(stderr, "arborctl: cannot write the report to stdout\n");
        rc = EXIT_UNREACHABLE;
        goto done;
    }
    rc = exitcode_tree(query_status(report));
done:
    cJSON_Delete(report);
    env_destroy(&reply);
    cJSON_Delete(spec);
    ctl_destroy(&ctl);
    return rc;
}
