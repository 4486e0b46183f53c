/* arborctl stats: the broker's counters and every supervisor's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "exitcode.h"
#include "query.h"
#include "render.h"
#include "sbuf.h"

#define STATS_COLUMNS 2 /* counters per line in the human table (fits 80 columns) */

/* The numbers of an object as aligned "name value" cells, STATS_COLUMNS a
 * line; skip_zero leaves out the zeros (error codes). */
static void s_numbers(sbuf_t *out, const char *heading, const cJSON *obj, bool skip_zero)
{
    int col = 0, shown = 0;
    const cJSON *item;
    sbuf_printf(out, "  %-10s", heading);
    cJSON_ArrayForEach(item, (cJSON_IsObject(obj) ? obj : NULL))
    {
        if (!cJSON_IsNumber(item) || !item->string || (skip_zero && item->valuedouble == 0))
            continue;
        if (col == STATS_COLUMNS) {
            sbuf_printf(out, "\n  %-10s", "");
            col = 0;
        }
        sbuf_t name = {0};
        sbuf_add_clean(&name, item->string, 24);
        sbuf_printf(out, " %-22s %9" PRId64, name.data ? name.data : "?",
                    (int64_t) item->valuedouble);
        sbuf_reset(&name);
        col++;
        shown++;
    }
    sbuf_printf(out, "%s\n", shown ? "" : " none");
}

static void s_strings(sbuf_t *out, const char *heading, const cJSON *arr)
{
    sbuf_printf(out, "  %-10s", heading);
    const cJSON *item;
    const char *sep = " ";
    cJSON_ArrayForEach(item, (cJSON_IsArray(arr) ? arr : NULL))
        if (cJSON_IsString(item)) {
            sbuf_printf(out, "%s", sep);
            sbuf_add_clean(out, item->valuestring, 64);
            sep = ", ";
        }
    sbuf_printf(out, "%s\n", *sep == ' ' ? " none" : "");
}

/* {"broker": BODY|null, "supervisors": {NAME: BODY|null}} as text. */
static char *s_render(const cJSON *doc, const char *endpoint)
{
    sbuf_t out = {0};
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "broker");
    sbuf_printf(&out, "broker ");
    sbuf_add_clean(&out, endpoint, 200);
    sbuf_printf(&out, "\n");
    if (cJSON_IsObject(b)) {
        s_numbers(&out, "messages", cJSON_GetObjectItemCaseSensitive(b, "counters"), false);
        s_numbers(&out, "errors", cJSON_GetObjectItemCaseSensitive(b, "errors"), true);
        const cJSON *peers = cJSON_GetObjectItemCaseSensitive(b, "peers");
        sbuf_printf(&out, "  %-10s %" PRId64 " registered\n", "peers",
                    cJSON_IsNumber(peers) ? (int64_t) peers->valuedouble : -1);
        s_numbers(&out, "by role", cJSON_GetObjectItemCaseSensitive(b, "peers_by_role"), false);
    } else {
        sbuf_printf(&out, "  (no answer)\n");
    }
    const cJSON *sups = cJSON_GetObjectItemCaseSensitive(doc, "supervisors");
    const cJSON *s;
    cJSON_ArrayForEach(s, sups)
    {
        sbuf_printf(&out, "\nsupervisor ");
        sbuf_add_clean(&out, s->string ? s->string : "?", 128);
        sbuf_printf(&out, "\n");
        if (!cJSON_IsObject(s)) {
            sbuf_printf(&out, "  (no answer)\n");
            continue;
        }
        s_numbers(&out, "counters", cJSON_GetObjectItemCaseSensitive(s, "counters"), false);
        s_strings(&out, "guarantees", cJSON_GetObjectItemCaseSensitive(s, "guarantees"));
    }
    if (!cJSON_GetArraySize(sups))
        sbuf_printf(&out, "\n(no supervisor registered)\n");
    return sbuf_take(&out);
}

int cmd_stats(const char *broker, int argc, char **argv)
{
    const char *forced = NULL;
    bool json = false;
    int rc = cmd_parse_sup_json("stats", argc, argv, true, &forced, &json, &broker);
    if (rc < 0)
        return cmd_help("stats");
    if (rc)
        return rc;
    ctl_t *ctl = cmd_connect(broker, &rc);
    if (!ctl)
        return rc;
    cJSON *doc = cJSON_CreateObject();
    cJSON *sups = cJSON_CreateObject();
    cJSON *names = NULL;
    rc = EXIT_TREE_OK;

    env_t *reply = ctl_request(ctl, "broker", "stats", NULL, CTL_REPLY_MS);
    if (reply && strcmp(reply->type, "stats") == 0 && cJSON_IsObject(reply->body)) {
        cJSON_AddItemToObject(doc, "broker", cJSON_Duplicate(reply->body, true));
    } else {
        if (!ctl_signalled())
            fprintf(stderr, "arborctl: the broker at %s did not answer \"stats\"\n", broker);
        env_destroy(&reply);
        rc = ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
        goto done;
    }
    env_destroy(&reply);

    if (forced) {
        names = cJSON_CreateArray();
        cJSON_AddItemToArray(names, cJSON_CreateString(forced));
    } else if (!(names = ctl_supervisors(ctl))) {
        if (!ctl_signalled())
            fprintf(stderr, "arborctl: the broker at %s did not answer \"peers\"\n", broker);
        rc = ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
        goto done;
    }
    /* One stats request per supervisor, all in flight at once. */
    int n = cJSON_GetArraySize(names);
    int64_t *ids = calloc((size_t) n + 1, sizeof *ids);
    for (int i = 0; ids && i < n; i++)
        ids[i] = ctl_send(ctl, cJSON_GetArrayItem(names, i)->valuestring, "stats", NULL);
    int pending = ids ? n : 0;
    int64_t deadline = clk_now_ms() + CTL_REPLY_MS;
    while (pending > 0) {
        env_t *env = ctl_recv(ctl, deadline);
        if (!env)
            break;
        int i = 0;
        while (i < n && !(env->re >= 0 && env->re == ids[i]))
            i++;
        const char *name = i < n ? cJSON_GetArrayItem(names, i)->valuestring : NULL;
        if (name && !cJSON_GetObjectItemCaseSensitive(sups, name)) {
            pending--;
            if (strcmp(env->type, "stats") == 0 && strcmp(env->from, name) == 0 &&
                cJSON_IsObject(env->body)) {
                cJSON_AddItemToObject(sups, name, cJSON_Duplicate(env->body, true));
            } else {
                const char *code = env_str(env->body, "code");
                fprintf(stderr, "arborctl: supervisor %s: %s\n", name, code ? code : env->type);
                cJSON_AddNullToObject(sups, name);
                rc = EXIT_UNREACHABLE;
            }
        }
        env_destroy(&env);
    }
    for (int i = 0; i < n; i++) {
        const char *name = cJSON_GetArrayItem(names, i)->valuestring;
        if (!cJSON_GetObjectItemCaseSensitive(sups, name)) {
            if (!ctl_signalled())
                fprintf(stderr, "arborctl: no stats from supervisor %s\n", name);
            cJSON_AddNullToObject(sups, name);
            rc = ctl_signalled() ? EXIT_INTERRUPTED : EXIT_UNREACHABLE;
        }
    }
    free(ids);

done:
    cJSON_AddItemToObject(doc, "supervisors", sups);
    if (rc != EXIT_INTERRUPTED && cJSON_GetObjectItemCaseSensitive(doc, "broker")) {
        char *text = json ? cJSON_PrintUnformatted(doc) : s_render(doc, broker);
        bool ok = text && fputs(text, stdout) >= 0 && (!json || fputc('\n', stdout) != EOF) &&
                  fflush(stdout) == 0;
        free(text);
        if (!ok)
            rc = EXIT_UNREACHABLE;
    }
    cJSON_Delete(names);
    cJSON_Delete(doc);
    ctl_destroy(&ctl);
    return rc;
}
