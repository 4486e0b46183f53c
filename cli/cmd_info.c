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
        rc = s_emit(render_peers(reply->body), false);
    }
    env_destroy(&reply);
    ctl_destroy(&ctl);
    return rc;
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
