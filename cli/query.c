#include "jprint.h"
#include "query.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "exitcode.h"
#include "jscan.h"
#include "oom.h"
#include "render.h"

/* A top-level string of a report, also of one still in its text (read
 * from the text into out, building nothing); NULL when absent. */
static const char *s_report_str(const cJSON *report, const char *key, char *out, size_t size)
{
    if (!cJSON_IsRaw(report))
        return env_str(report, key);
    jscan_span_t v; /* env_decode_raw checked the text: stop at the member */
    if (!jscan_find(report->valuestring, strlen(report->valuestring), key, &v) ||
        v.kind != JSCAN_STRING)
        return NULL;
    jscan_string(&v, out, size);
    return out;
}

const char *query_status(const cJSON *report)
{
    static char status[QUERY_STATUS_MAX];
    const char *s = s_report_str(report, "status", status, sizeof status);
    return s ? s : "?";
}

cJSON *query_report_tree(cJSON *report)
{
    if (!cJSON_IsRaw(report))
        return report;
    cJSON *tree = cJSON_Parse(report->valuestring);
    if (!tree)
        oom_die(strlen(report->valuestring)); /* jscan accepted it: cJSON does too */
    /* In place: whoever holds the item now holds the tree. */
    cJSON_free(report->valuestring);
    report->valuestring = NULL;
    report->type = tree->type;
    report->child = tree->child;
    tree->child = NULL;
    cJSON_Delete(tree);
    return report;
}

static bool s_is_report(const cJSON *item) { return cJSON_IsObject(item) || cJSON_IsRaw(item); }

static bool s_is(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* The report inside a "report" reply, detached from env (caller deletes). */
static cJSON *s_take_report(env_t *env)
{
    if (!s_is(env->type, "report"))
        return NULL;
    cJSON *report = cJSON_DetachItemFromObjectCaseSensitive(env->body, "report");
    if (report && !s_is_report(report)) {
        cJSON_Delete(report);
        return NULL;
    }
    return report;
}

int query_pick_supervisor(ctl_t *ctl, const char *forced, char *out, size_t size)
{
    if (!forced || !*forced)
        forced = getenv("ARBOR_SUPERVISOR");
    if (forced && *forced) {
        snprintf(out, size, "%s", forced);
        return 0;
    }
    cJSON *names = ctl_supervisors(ctl);
    if (!names) {
        if (!ctl_signalled())
            fprintf(stderr, "arborctl: the broker at %s did not answer \"peers\"\n",
                    ctl_endpoint(ctl));
        return ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
    }
    int n = cJSON_GetArraySize(names);
    int rc = 0;
    if (n == 0) {
        fprintf(stderr, "arborctl: no supervisor registered at broker %s\n", ctl_endpoint(ctl));
        rc = EXIT_UNREACHABLE;
    } else if (n == 1) {
        snprintf(out, size, "%s", cJSON_GetArrayItem(names, 0)->valuestring);
    } else {
        fprintf(stderr, "arborctl: several supervisors: choose one with --supervisor (");
        const cJSON *name;
        cJSON_ArrayForEach(name, names)
            fprintf(stderr, "%s%s", name->valuestring, name->next ? ", " : ")\n");
        rc = EXIT_USAGE;
    }
    cJSON_Delete(names);
    return rc;
}

static cJSON *s_status_body(const char *tree)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", tree);
    return body;
}

/* Tree ids that arbor makes are SUPERVISOR.RANDOM (the random part has no
 * dot): ask the supervisor they name first. 0 when it answered with the
 * report; otherwise the caller asks every supervisor. */
bool query_named_supervisor(const char *tree, char *name, size_t size)
{
    const char *dot = strrchr(tree, '.');
    if (!dot || dot == tree || (size_t) (dot - tree) > ENV_NAME_MAX || (size_t) (dot - tree) >= size)
        return false;
    memcpy(name, tree, (size_t) (dot - tree));
    name[dot - tree] = 0;
    return true;
}

static int s_ask_named(ctl_t *ctl, const char *tree, char *sup, size_t size, cJSON **report)
{
    char name[ENV_NAME_MAX + 1];
    if (!query_named_supervisor(tree, name, sizeof name))
        return -1;
    env_t *reply = ctl_request(ctl, name, "status", s_status_body(tree), CTL_REPLY_MS);
    *report = reply && s_is(reply->from, name) ? s_take_report(reply) : NULL;
    env_destroy(&reply);
    if (!*report)
        return -1;
    snprintf(sup, size, "%s", name);
    return 0;
}

int query_find_tree(ctl_t *ctl, const char *tree, const char *forced, char *sup, size_t size,
                    cJSON **report)
{
    *report = NULL;
    if ((!forced || !*forced) && s_ask_named(ctl, tree, sup, size, report) == 0)
        return 0;
    if (ctl_signalled())
        return EXIT_INTERRUPTED;
    cJSON *names;
    if (forced && *forced) {
        names = cJSON_CreateArray();
        cJSON_AddItemToArray(names, cJSON_CreateString(forced));
    } else {
        names = ctl_supervisors(ctl);
        if (!names) {
            if (ctl_signalled())
                return EXIT_INTERRUPTED;
            fprintf(stderr, "arborctl: the broker at %s did not answer \"peers\"\n",
                    ctl_endpoint(ctl));
            return EXIT_UNREACHABLE;
        }
    }
    int n = cJSON_GetArraySize(names);
    if (n == 0) {
        fprintf(stderr, "arborctl: no supervisor registered at broker %s\n", ctl_endpoint(ctl));
        cJSON_Delete(names);
        return EXIT_UNREACHABLE;
    }
    /* One status request per supervisor, all in flight at once. */
    int64_t *ids = calloc((size_t) n, sizeof *ids);
    int *answer = calloc((size_t) n, sizeof *answer); /* 0 none, 1 not_found, 2 gone */
    if (!ids || !answer) {
        free(ids);
        free(answer);
        cJSON_Delete(names);
        return EXIT_UNREACHABLE;
    }
    for (int i = 0; i < n; i++)
        ids[i] = ctl_send(ctl, cJSON_GetArrayItem(names, i)->valuestring, "status",
                          s_status_body(tree));
    zlist_t *others = zlist_new(); /* not ours: handed back afterwards */
    int64_t deadline = clk_now_ms() + CTL_REPLY_MS;
    int pending = n;
    while (pending > 0 && !*report) {
        env_t *env = ctl_recv(ctl, deadline);
        if (!env)
            break;
        int i = 0;
        while (i < n && !(env->re >= 0 && env->re == ids[i]))
            i++;
        if (i == n || answer[i]) {
            zlist_append(others, env);
            continue;
        }
        const char *name = cJSON_GetArrayItem(names, i)->valuestring;
        if (s_is(env->type, "report") && s_is(env->from, name)) {
            *report = s_take_report(env);
            snprintf(sup, size, "%s", name);
        }
        const char *code = s_is(env->type, "error") ? env_str(env->body, "code") : NULL;
        answer[i] = s_is(code, "not_found") ? 1 : 2;
        pending--;
        if (!*report && !s_is(code, "not_found"))
            fprintf(stderr, "arborctl: supervisor %s: %s%s%s\n", name,
                    code ? code : env->type, code ? ": " : "",
                    code ? (env_str(env->body, "message") ?: "") : "");
        env_destroy(&env);
    }
    env_t *env;
    while ((env = zlist_pop(others)))
        ctl_unread(ctl, env);
    zlist_destroy(&others);

    int rc = 0;
    if (*report) {
        rc = 0;
    } else if (ctl_signalled()) {
        rc = EXIT_INTERRUPTED;
    } else {
        int not_found = 0;
        for (int i = 0; i < n; i++)
            not_found += answer[i] == 1;
        if (not_found == n) {
            if (forced && *forced)
                fprintf(stderr, "arborctl: supervisor %s does not know tree %s\n", forced, tree);
            else
                fprintf(stderr, "arborctl: no supervisor knows tree %s\n", tree);
            rc = EXIT_USAGE;
        } else {
            fprintf(stderr, "arborctl: tree %s not found; no answer from supervisor", tree);
            const char *sep = " ";
            for (int i = 0; i < n; i++)
                if (answer[i] != 1) {
                    fprintf(stderr, "%s%s", sep, cJSON_GetArrayItem(names, i)->valuestring);
                    sep = ", ";
                }
            fprintf(stderr, "\n");
            rc = EXIT_UNREACHABLE;
        }
    }
    free(ids);
    free(answer);
    cJSON_Delete(names);
    return rc;
}

const cJSON *query_node(const cJSON *report, const char *path)
{
    /* Iterative walk: report depth is not ours to trust. */
    const cJSON *stack[512];
    int top = 0;
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(report, "root");
    if (cJSON_IsObject(root))
        stack[top++] = root;
    while (top > 0) {
        const cJSON *node = stack[--top];
        if (s_is(env_str(node, "path"), path))
            return node;
        const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "children");
        const cJSON *kid;
        cJSON_ArrayForEach(kid, (cJSON_IsArray(kids) ? kids : NULL))
            if (cJSON_IsObject(kid) && top < (int) (sizeof stack / sizeof *stack))
                stack[top++] = kid;
    }
    return NULL;
}

static bool s_ended(cJSON *report, const char *path)
{
    if (exitcode_tree_ended(query_status(report)))
        return true;
    if (!path)
        return false;
    const cJSON *node = query_node(query_report_tree(report), path);
    return node && exitcode_node_ended(env_str(node, "status"));
}

int query_subscribe_wait(ctl_t *ctl, const char *tree, const char *path)
{
    /* The end of a whole tree comes on end/ID alone; a node's end needs
     * the tree's status events (tree/ID). */
    char topic[QUERY_TREE_MAX + 8];
    snprintf(topic, sizeof topic, "%s/%s", path ? "tree" : "end", tree);
    if (ctl_subscribe(ctl, topic, CTL_REPLY_MS) == 0)
        return 0;
    if (ctl_signalled())
        return EXIT_INTERRUPTED;
    fprintf(stderr, "arborctl: the broker did not confirm the subscription\n");
    return EXIT_UNREACHABLE;
}

int query_wait_end(ctl_t *ctl, const char *sup, const char *tree, const char *path,
                   int64_t deadline, cJSON **report)
{
    *report = NULL;
    int64_t now = clk_now_ms();
    int64_t next_poll = now + QUERY_POLL_MS;
    int64_t heard = now;
    int64_t last_id = -1;
    int not_found = 0;
    while (true) {
        now = clk_now_ms();
        if (deadline && now >= deadline) {
            fprintf(stderr, "arborctl: timed out waiting for tree %s; it keeps running "
                    "(arborctl cancel %s)\n", tree, tree);
            return EXIT_UNREACHABLE;
        }
        if (now - heard > QUERY_SILENCE_MS) {
            fprintf(stderr, "arborctl: supervisor %s stopped answering about tree %s\n", sup,
                    tree);
            return EXIT_UNREACHABLE;
        }
        if (now >= next_poll) {
            last_id = ctl_send(ctl, sup, "status", s_status_body(tree));
            next_poll = now + QUERY_POLL_MS;
        }
        int64_t until = next_poll;
        if (deadline && deadline < until)
            until = deadline;
        env_t *env = ctl_recv(ctl, until);
        if (!env) {
            if (ctl_signalled()) {
                fprintf(stderr, "arborctl: interrupted; tree %s keeps running\n", tree);
                return EXIT_INTERRUPTED;
            }
            continue;
        }
        if (s_is(env->type, "event")) {
            const char *kind = env_str(env->body, "kind");
            bool ours = s_is(env_str(env->body, "tree"), tree);
            /* The end comes with the report: nothing to fetch. */
            cJSON *pushed = ours && s_is(kind, "done") && s_is(env->from, sup)
                                ? cJSON_DetachItemFromObjectCaseSensitive(env->body, "report")
                                : NULL;
            if (s_is_report(pushed) && s_ended(pushed, path)) {
                *report = pushed;
                env_destroy(&env);
                return 0;
            }
            cJSON_Delete(pushed);
            /* The end (or our node's end) was announced: fetch the report now. */
            if (ours && (s_is(kind, "done") ||
                         (path && s_is(kind, "status") && s_is(env_str(env->body, "path"), path))))
                next_poll = clk_now_ms();
        } else if (s_is(env->from, sup) && s_is(env->type, "report")) {
            heard = clk_now_ms();
            not_found = 0;
            cJSON *r = s_take_report(env);
            char id[QUERY_TREE_MAX + 2];
            if (r && s_is(s_report_str(r, "tree", id, sizeof id), tree) && s_ended(r, path)) {
                *report = r;
                env_destroy(&env);
                return 0;
            }
            cJSON_Delete(r);
        } else if (s_is(env->type, "error") && env->re >= 0 && env->re == last_id) {
            const char *code = env_str(env->body, "code");
            if (s_is(env->from, sup) && s_is(code, "not_found")) {
                heard = clk_now_ms();
                /* Three in a row: the supervisor restarted and forgot it. */
                if (++not_found >= 3) {
                    fprintf(stderr, "arborctl: supervisor %s no longer knows tree %s\n", sup,
                            tree);
                    env_destroy(&env);
                    return EXIT_UNREACHABLE;
                }
            }
            /* unknown_destination / undeliverable: the supervisor is away;
             * keep asking until QUERY_SILENCE_MS. */
        }
        env_destroy(&env);
    }
}

int query_print_report(cJSON *report, bool json)
{
    if (json && cJSON_IsRaw(report)) { /* as the supervisor wrote it */
        int rc = fputs(report->valuestring, stdout) < 0 || fputc('\n', stdout) == EOF ? -1 : 0;
        return fflush(stdout) != 0 ? -1 : rc;
    }
    report = query_report_tree(report);
    char *text = json ? jprint_unformatted(report) /* its numbers may turn raw */
                      : render_report(report, render_colour_wanted(STDOUT_FILENO));
    if (!text)
        return -1;
    int rc = fputs(text, stdout) < 0 ? -1 : 0;
    if (json && rc == 0)
        rc = fputc('\n', stdout) == EOF ? -1 : 0;
    free(text);
    if (fflush(stdout) != 0)
        rc = -1;
    return rc;
}
