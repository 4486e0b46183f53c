/* arborctl peers / list: what is registered and running. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cmd.h"
#include "exitcode.h"
#include "query.h"
#include "render.h"

static int s_emit(char *text, bool newline)
{
    int rc = text && fputs(text, stdout) >= 0 && (!newline || fputc('\n', stdout) != EOF) &&
                     fflush(stdout) == 0
                 ? EXIT_TREE_OK
                 : EXIT_UNREACHABLE;
    free(text);
    return rc;
}

int cmd_peers(const char *broker, int argc, char **argv)
{
    const char *unused = NULL;
    bool json = false;
    int rc = cmd_parse_sup_json("peers", argc, argv, false, &unused, &json, &broker);
    if (rc < 0)
        return cmd_help("peers");
    if (rc)
        return rc;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    env_t *reply = ctl_request(ctl, "broker", "peers", NULL, CTL_REPLY_MS);
    if (!reply || strcmp(reply->type, "peers") != 0) {
        if (!ctl_signalled())
            fprintf(stderr, "arborctl: the broker at %s did not answer \"peers\"\n", broker);
        rc = ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
    } else if (json) {
        rc = s_emit(cJSON_PrintUnformatted(reply->body), true);
    } else {
        /* The table starts with the broker itself (it is no entry of its
         * own registry); --json stays the broker's answer as it is. */
        cJSON *shown = cJSON_Duplicate(reply->body, true);
        cJSON *peers = cJSON_GetObjectItemCaseSensitive(shown, "peers");
        cJSON *self = cJSON_CreateObject();
        cJSON_AddStringToObject(self, "name", "broker");
        cJSON_AddStringToObject(self, "role", "broker");
        cJSON_AddNumberToObject(self, "idle_ms", 0);
        if (cJSON_IsArray(peers))
            cJSON_InsertItemInArray(peers, 0, self);
        else
            cJSON_Delete(self);
        rc = s_emit(render_peers(shown), false);
        cJSON_Delete(shown);
    }
    env_destroy(&reply);
    ctl_destroy(&ctl);
    return rc;
}

/* A subtree placed on another supervisor runs as a tree of its own, with
 * the id PARENT.NODE.INCARNATION (supervisor/place.c): mark each such row
 * with "placed_in": PARENT when PARENT is listed too, and move it right
 * after its parent's row (and its siblings). */
static void s_group_placed(cJSON *rows)
{
    int n = cJSON_GetArraySize(rows);
    for (int i = 0; i < n; i++) {
        cJSON *row = cJSON_GetArrayItem(rows, i);
        /* PARENT.NODE.INCARNATION: the last two parts are numbers (PARENT
         * itself has dots: SUPERVISOR.RANDOM). */
        const char *id = env_str(row, "tree");
        const char *last = id ? strrchr(id, '.') : NULL;
        const char *dot = last;
        while (dot && dot > id && dot[-1] != '.')
            dot--;
        dot = dot && dot > id ? dot - 1 : NULL; /* the dot before NODE */
        if (!last || !dot || dot == last || strspn(dot + 1, "0123456789.") != strlen(dot + 1))
            continue;
        size_t plen = (size_t) (dot - id);
        for (int j = 0; j < n; j++) {
            const char *other = env_str(cJSON_GetArrayItem(rows, j), "tree");
            if (j != i && other && strlen(other) == plen && strncmp(other, id, plen) == 0) {
                cJSON_AddStringToObject(row, "placed_in", other);
                break;
            }
        }
    }
    /* Rebuild: each top-level row, then the rows placed in it. */
    cJSON *sorted = cJSON_CreateArray();
    cJSON *row;
    while ((row = cJSON_GetArrayItem(rows, 0))) {
        cJSON *top = cJSON_DetachItemFromArray(rows, 0);
        if (env_str(top, "placed_in")) {
            cJSON_AddItemToArray(rows, top); /* later, after its parent */
            bool parent_left = false;
            cJSON *r;
            cJSON_ArrayForEach(r, rows)
                parent_left |= !env_str(r, "placed_in");
            if (parent_left)
                continue;
            top = cJSON_DetachItemFromArray(rows, cJSON_GetArraySize(rows) - 1);
        }
        cJSON_AddItemToArray(sorted, top);
        const char *id = env_str(top, "tree");
        for (int j = 0; id && !env_str(top, "placed_in") && j < cJSON_GetArraySize(rows);) {
            const char *in = env_str(cJSON_GetArrayItem(rows, j), "placed_in");
            if (in && strcmp(in, id) == 0)
                cJSON_AddItemToArray(sorted, cJSON_DetachItemFromArray(rows, j));
            else
                j++;
        }
    }
    while ((row = cJSON_GetArrayItem(sorted, 0)))
        cJSON_AddItemToArray(rows, cJSON_DetachItemFromArray(sorted, 0));
    cJSON_Delete(sorted);
}

int cmd_list(const char *broker, int argc, char **argv)
{
    const char *forced = NULL;
    bool json = false;
    int rc = cmd_parse_sup_json("list", argc, argv, true, &forced, &json, &broker);
    if (rc < 0)
        return cmd_help("list");
    if (rc)
        return rc;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    cJSON *names = NULL;
    if (forced) {
        names = cJSON_CreateArray();
        cJSON_AddItemToArray(names, cJSON_CreateString(forced));
    } else if (!(names = ctl_supervisors(ctl))) {
        if (!ctl_signalled())
            fprintf(stderr, "arborctl: the broker at %s did not answer \"peers\"\n", broker);
        ctl_destroy(&ctl);
        return ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
    }
    int n = cJSON_GetArraySize(names);
    int64_t *ids = calloc((size_t) n + 1, sizeof *ids);
    bool *answered = calloc((size_t) n + 1, sizeof *answered);
    cJSON *rows = cJSON_CreateArray();
    for (int i = 0; ids && i < n; i++)
        ids[i] = ctl_send(ctl, cJSON_GetArrayItem(names, i)->valuestring, "list", NULL);
    int pending = ids && answered ? n : 0;
    int64_t deadline = clk_now_ms() + CTL_REPLY_MS;
    while (pending > 0) {
        env_t *env = ctl_recv(ctl, deadline);
        if (!env)
            break;
        int i = 0;
        while (i < n && !(env->re >= 0 && env->re == ids[i]))
            i++;
        if (i < n && !answered[i]) {
            const char *name = cJSON_GetArrayItem(names, i)->valuestring;
            answered[i] = true;
            pending--;
            if (strcmp(env->type, "trees") == 0) {
                const cJSON *trees = cJSON_GetObjectItemCaseSensitive(env->body, "trees");
                const cJSON *t;
                cJSON_ArrayForEach(t, (cJSON_IsArray(trees) ? trees : NULL))
                {
                    cJSON *row = cJSON_Duplicate(t, true);
                    if (!cJSON_IsObject(row)) {
                        cJSON_Delete(row);
                        continue;
                    }
                    cJSON_DeleteItemFromObjectCaseSensitive(row, "supervisor");
                    cJSON_AddStringToObject(row, "supervisor", name);
                    cJSON_AddItemToArray(rows, row);
                }
            } else {
                const char *code = env_str(env->body, "code");
                fprintf(stderr, "arborctl: supervisor %s: %s\n", name, code ? code : env->type);
                answered[i] = false; /* counts as not answered */
            }
        }
        env_destroy(&env);
    }
    rc = EXIT_TREE_OK;
    for (int i = 0; i < n; i++)
        if (!ids || !answered || !answered[i]) {
            if (!ctl_signalled())
                fprintf(stderr, "arborctl: no list from supervisor %s\n",
                        cJSON_GetArrayItem(names, i)->valuestring);
            rc = ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
        }
    if (n == 0)
        fprintf(stderr, "arborctl: no supervisor registered at broker %s\n", broker);
    s_group_placed(rows);
    if (rc != EXIT_INTERRUPTED) {
        int out;
        if (json) {
            cJSON *doc = cJSON_CreateObject();
            cJSON_AddItemToObject(doc, "trees", rows);
            rows = NULL;
            out = s_emit(cJSON_PrintUnformatted(doc), true);
            cJSON_Delete(doc);
        } else {
            out = s_emit(render_trees(rows, render_colour_wanted(STDOUT_FILENO)), false);
        }
        if (out)
            rc = out;
    }
    cJSON_Delete(rows);
    free(ids);
    free(answered);
    cJSON_Delete(names);
    ctl_destroy(&ctl);
    return rc;
}
