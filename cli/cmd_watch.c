/* arborctl watch: tree events as they come — a live view redrawn on a
 * terminal (live.h), or one line per event otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmd.h"
#include "exitcode.h"
#include "live.h"
#include "query.h"
#include "render.h"
#include "sbuf.h"

#define WATCH_POLL_MS 2000  /* status fallback for a lost "done" event */
#define WATCH_GRACE_MS 500  /* after a report shows the end, wait for the last events */

#define LIVE_POLL_MS 250       /* a status request per tree this often */
#define LIVE_DRAW_MS 100       /* at most this many redraws a second: 1000 / this */
#define LIVE_EVENTS 50         /* recent event lines kept */
#define LIVE_TREES 32          /* trees followed at once without TREE */
#define LIVE_KEEP_ENDED_MS 5000 /* an ended tree stays on screen this long (no TREE) */
#define LIVE_DONE_WAIT_MS 2000 /* after "done", wait this long for the final report */

static void s_clock(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    snprintf(out, size, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
}

static bool s_json; /* --json: each event as one JSON object per line */

static int s_line(const cJSON *event)
{
    if (s_json) {
        char *text = cJSON_PrintUnformatted(event);
        int rc = text && fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF &&
                         fflush(stdout) == 0
                     ? 0
                     : -1;
        free(text);
        return rc;
    }
    char clock[32];
    s_clock(clock, sizeof clock);
    char *line = render_event(event, clock, render_colour_wanted(STDOUT_FILENO));
    int rc = line && fputs(line, stdout) >= 0 && fflush(stdout) == 0 ? 0 : -1;
    free(line);
    return rc;
}

/* An event made here rather than received: "state": true when it tells
 * the state as it was when watch started. */
static cJSON *s_event(const char *tree, const char *kind, bool state)
{
    cJSON *event = cJSON_CreateObject();
    char topic[QUERY_TREE_MAX + 8];
    snprintf(topic, sizeof topic, "tree/%s", tree);
    cJSON_AddStringToObject(event, "topic", topic);
    cJSON_AddStringToObject(event, "tree", tree);
    cJSON_AddStringToObject(event, "kind", kind);
    if (state)
        cJSON_AddBoolToObject(event, "state", true);
    return event;
}

/* A "done" line made from a report, for an end we learnt by polling. */
static int s_done_line(const char *tree, const char *status)
{
    cJSON *event = s_event(tree, "done", false);
    cJSON_AddStringToObject(event, "status", status);
    int rc = s_line(event);
    cJSON_Delete(event);
    return rc;
}

static bool s_is(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* The state of a running tree when watch starts, as the events that would
 * have told it: per node (depth first) its status when it has ended, else
 * its current phase. -1 when stdout failed. */
static int s_state_lines(const cJSON *report)
{
    const char *tree = env_str(report, "tree");
    const cJSON *stack[256];
    int top = 0, rc = 0;
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(report, "root");
    if (!tree || !cJSON_IsObject(root))
        return 0;
    stack[top++] = root;
    while (top > 0 && rc == 0) {
        const cJSON *node = stack[--top];
        const char *status = env_str(node, "status");
        bool ended = exitcode_node_ended(status);
        cJSON *event = s_event(tree, ended ? "status" : "phase", true);
        cJSON_AddStringToObject(event, "path", env_str(node, "path") ?: "?");
        if (ended) {
            cJSON_AddStringToObject(event, "status", status);
            const cJSON *error = cJSON_GetObjectItemCaseSensitive(node, "error");
            if (cJSON_IsObject(error))
                cJSON_AddItemToObject(event, "error", cJSON_Duplicate(error, true));
        } else {
            cJSON_AddStringToObject(event, "phase", env_str(node, "phase") ?: "?");
            const cJSON *phases = cJSON_GetObjectItemCaseSensitive(node, "phases");
            int64_t t;
            int n = cJSON_GetArraySize(phases);
            if (n > 0 && env_num(cJSON_GetArrayItem(phases, n - 1), "t_ms", &t))
                cJSON_AddNumberToObject(event, "t_ms", (double) t);
        }
        rc = s_line(event);
        cJSON_Delete(event);
        /* Children pushed last first: they come out in report order. */
        const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "children");
        for (int i = cJSON_GetArraySize(kids) - 1; i >= 0 && top < 256; i--)
            if (cJSON_IsObject(cJSON_GetArrayItem(kids, i)))
                stack[top++] = cJSON_GetArrayItem(kids, i);
    }
    return rc;
}

/* Without TREE: one "tree running" line per running tree of every
 * supervisor, asked with "list" (answers that do not come in time are
 * skipped: the live events follow anyway). -1 when stdout failed. */
static int s_state_all(ctl_t *ctl)
{
    cJSON *names = ctl_supervisors(ctl);
    int rc = 0;
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        env_t *reply = ctl_request(ctl, n->valuestring, "list", NULL, CTL_REPLY_MS);
        const cJSON *rows = reply && s_is(reply->type, "trees")
                                ? cJSON_GetObjectItemCaseSensitive(reply->body, "trees")
                                : NULL;
        const cJSON *row;
        cJSON_ArrayForEach(row, rows)
        {
            const char *tree = env_str(row, "tree");
            if (rc != 0 || !tree || !s_is(env_str(row, "status"), "running"))
                continue;
            cJSON *event = s_event(tree, "tree", true);
            cJSON_AddStringToObject(event, "status", "running");
            cJSON_AddStringToObject(event, "supervisor", n->valuestring);
            rc = s_line(event);
            cJSON_Delete(event);
        }
        env_destroy(&reply);
    }
    cJSON_Delete(names);
    return rc;
}

/* --- plain: one line per event ------------------------------------------- */

static int s_plain(ctl_t *ctl, const char *tree, const char *sup)
{
    int64_t next_poll = tree ? clk_now_ms() + WATCH_POLL_MS : 0;
    int64_t end_at = 0; /* polled end seen: stop then if no "done" came */
    char end_status[32] = "";
    int rc = EXIT_TREE_OK;
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
    return rc;
}

/* --- live: a frame redrawn in place ------------------------------------- */

typedef struct {
    char tree[QUERY_TREE_MAX + 1];
    char sup[ENV_NAME_MAX + 1];
    cJSON *report;
    int64_t asked;    /* last status request */
    int64_t heard;    /* last report */
    int64_t ended;    /* when a report showed the end (0: not yet) */
    int64_t done;     /* when its "done" event came (0: not yet) */
    char done_status[32];
} followed_t;

typedef struct {
    ctl_t *ctl;
    const char *only; /* TREE, or NULL: every tree */
    followed_t trees[LIVE_TREES];
    int ntrees;
    char *events[LIVE_EVENTS];
    int nevents;
    int drawn_lines; /* lines of the frame on screen */
    bool colour;
    bool dirty;
} live_t;

static followed_t *s_find(live_t *lv, const char *tree)
{
    for (int i = 0; tree && i < lv->ntrees; i++)
        if (strcmp(lv->trees[i].tree, tree) == 0)
            return &lv->trees[i];
    return NULL;
}

static followed_t *s_follow(live_t *lv, const char *tree, const char *sup)
{
    followed_t *t = s_find(lv, tree);
    if (t || !tree || !sup || lv->ntrees == LIVE_TREES || !cmd_tree_id_valid(tree))
        return t;
    t = &lv->trees[lv->ntrees++];
    memset(t, 0, sizeof *t);
    snprintf(t->tree, sizeof t->tree, "%s", tree);
    snprintf(t->sup, sizeof t->sup, "%s", sup);
    t->heard = clk_now_ms();
    return t;
}

static void s_unfollow(live_t *lv, int i)
{
    cJSON_Delete(lv->trees[i].report);
    memmove(&lv->trees[i], &lv->trees[i + 1], (size_t) (lv->ntrees - i - 1) * sizeof *lv->trees);
    lv->ntrees--;
}

static void s_add_event(live_t *lv, const cJSON *event)
{
    char clock[32];
    s_clock(clock, sizeof clock);
    char *line = render_event(event, clock, lv->colour);
    if (!line)
        return;
    line[strcspn(line, "\n")] = 0;
    if (lv->nevents == LIVE_EVENTS) {
        free(lv->events[0]);
        memmove(lv->events, lv->events + 1, (LIVE_EVENTS - 1) * sizeof *lv->events);
        lv->nevents--;
    }
    lv->events[lv->nevents++] = line;
}

/* Redraw: back to the frame's first line, each line cleared to its end,
 * then everything below the new frame cleared. -1 when stdout failed. */
static int s_draw(live_t *lv)
{
    struct winsize ws = {0};
    live_opts_t o = {.width = 80, .height = 24, .colour = lv->colour};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        o.width = ws.ws_col;
        o.height = ws.ws_row;
    }
    live_tree_t views[LIVE_TREES];
    char notes[LIVE_TREES][200]; /* a supervisor name is at most 128 */
    int64_t now = clk_now_ms();
    for (int i = 0; i < lv->ntrees; i++) {
        followed_t *t = &lv->trees[i];
        notes[i][0] = 0;
        if (!t->ended && now - t->heard > QUERY_SILENCE_MS)
            snprintf(notes[i], sizeof notes[i], "no answer from %s for %lld s", t->sup,
                     (long long) ((now - t->heard) / 1000));
        views[i] = (live_tree_t) {t->report, t->tree, notes[i][0] ? notes[i] : NULL};
    }
    char *frame = live_frame(views, lv->ntrees, (const char *const *) lv->events, lv->nevents, &o);
    if (!frame)
        return 0;
    sbuf_t out = {0};
    if (lv->drawn_lines > 0)
        sbuf_printf(&out, "\r\033[%dA", lv->drawn_lines);
    int lines = 0;
    for (char *line = frame, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        sbuf_add(&out, line, (size_t) (nl - line));
        sbuf_add(&out, "\033[K\n", 4);
        lines++;
    }
    sbuf_add(&out, "\033[J", 3);
    free(frame);
    lv->drawn_lines = lines;
    lv->dirty = false;
    char *text = sbuf_take(&out);
    int rc = text && fputs(text, stdout) >= 0 && fflush(stdout) == 0 ? 0 : -1;
    free(text);
    return rc;
}

static void s_ask_status(live_t *lv, followed_t *t)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", t->tree);
    ctl_send(lv->ctl, t->sup, "status", body);
    t->asked = clk_now_ms();
}

/* Without TREE: the trees already running when watch starts. */
static void s_ask_lists(live_t *lv)
{
    cJSON *names = ctl_supervisors(lv->ctl);
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
        ctl_send(lv->ctl, n->valuestring, "list", NULL);
    cJSON_Delete(names);
}

static void s_on_message(live_t *lv, env_t *env)
{
    const cJSON *body = env->body;
    if (s_is(env->type, "event") && strncmp(env_str(body, "topic") ?: "", "tree/", 5) == 0) {
        const char *tree = env_str(body, "tree");
        if (lv->only && !s_is(tree, lv->only))
            return;
        s_add_event(lv, body);
        lv->dirty = true;
        /* Events come from the broker with the supervisor as sender. */
        followed_t *t = lv->only ? s_find(lv, tree) : s_follow(lv, tree, env->from);
        if (t && s_is(env_str(body, "kind"), "done")) {
            t->done = clk_now_ms();
            snprintf(t->done_status, sizeof t->done_status, "%s", env_str(body, "status") ?: "?");
            s_ask_status(lv, t); /* the final report, now */
        }
    } else if (s_is(env->type, "report")) {
        cJSON *r = cJSON_DetachItemFromObjectCaseSensitive(env->body, "report");
        followed_t *t = s_find(lv, env_str(r, "tree"));
        if (t && cJSON_IsObject(r) && s_is(env->from, t->sup)) {
            cJSON_Delete(t->report);
            t->report = r;
            r = NULL;
            t->heard = clk_now_ms();
            if (!t->ended && exitcode_tree_ended(env_str(t->report, "status")))
                t->ended = clk_now_ms();
            lv->dirty = true;
        }
        cJSON_Delete(r);
    } else if (s_is(env->type, "trees") && !lv->only) {
        const cJSON *row;
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(body, "trees"))
            if (s_is(env_str(row, "status"), "running")) {
                followed_t *t = s_follow(lv, env_str(row, "tree"), env->from);
                if (t && !t->report)
                    s_ask_status(lv, t);
            }
    }
}

static int s_live(ctl_t *ctl, const char *tree, const char *sup, cJSON **report)
{
    live_t lv = {.ctl = ctl, .only = tree, .colour = render_colour_wanted(STDOUT_FILENO)};
    if (tree) {
        followed_t *t = s_follow(&lv, tree, sup);
        t->report = *report;
        *report = NULL;
        if (exitcode_tree_ended(query_status(t->report)))
            t->ended = clk_now_ms();
    } else {
        s_ask_lists(&lv);
    }
    fputs("\033[?25l", stdout); /* hide the cursor while redrawing */
    int rc = EXIT_TREE_OK;
    int64_t next_poll = 0, next_draw = 0;
    lv.dirty = true;
    while (true) {
        int64_t now = clk_now_ms();
        if (now >= next_poll) {
            for (int i = 0; i < lv.ntrees; i++) {
                followed_t *t = &lv.trees[i];
                if (!t->ended && now - t->asked >= LIVE_POLL_MS)
                    s_ask_status(&lv, t);
            }
            next_poll = now + LIVE_POLL_MS;
        }
        /* The end of TREE: its final report, or "done" and no report in time. */
        followed_t *only = tree ? &lv.trees[0] : NULL;
        if (only && (only->ended || (only->done && now - only->done > LIVE_DONE_WAIT_MS))) {
            if (s_draw(&lv) != 0)
                rc = EXIT_UNREACHABLE;
            else
                rc = exitcode_tree(only->ended ? query_status(only->report) : only->done_status);
            break;
        }
        for (int i = lv.ntrees - 1; !tree && i >= 0; i--)
            if (lv.trees[i].ended && now - lv.trees[i].ended > LIVE_KEEP_ENDED_MS) {
                s_unfollow(&lv, i);
                lv.dirty = true;
            }
        if (lv.dirty && now >= next_draw) {
            if (s_draw(&lv) != 0) {
                rc = EXIT_UNREACHABLE; /* stdout is gone */
                break;
            }
            next_draw = now + LIVE_DRAW_MS;
        }
        int64_t until = next_poll;
        if (lv.dirty && next_draw < until)
            until = next_draw;
        env_t *env = ctl_recv(ctl, until);
        if (!env) {
            if (ctl_signalled()) {
                s_draw(&lv);
                rc = tree ? EXIT_INTERRUPTED : EXIT_TREE_OK;
                break;
            }
            continue;
        }
        s_on_message(&lv, env);
        env_destroy(&env);
    }
    fputs("\033[?25h", stdout);
    fflush(stdout);
    while (lv.ntrees > 0)
        s_unfollow(&lv, lv.ntrees - 1);
    for (int i = 0; i < lv.nevents; i++)
        free(lv.events[i]);
    return rc;
}

/* A terminal that can take cursor movement, unless --plain. */
static bool s_live_wanted(bool plain)
{
    const char *term = getenv("TERM");
    return !plain && isatty(STDOUT_FILENO) && !(term && strcmp(term, "dumb") == 0);
}

int cmd_watch(const char *broker, int argc, char **argv)
{
    static const struct option longs[] = {
        {"supervisor", required_argument, NULL, 's'},
        {"plain", no_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"broker", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *forced = NULL;
    bool plain = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 's': forced = optarg; break;
        case 'p': plain = true; break;
        case 'j': s_json = plain = true; break;
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
    bool live = s_live_wanted(plain);

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
        if (!live && exitcode_tree_ended(query_status(report))) {
            s_done_line(tree, query_status(report));
            rc = exitcode_tree(query_status(report));
            goto done;
        }
        if (!live && s_state_lines(report) != 0) {
            rc = EXIT_UNREACHABLE; /* stdout is gone */
            goto done;
        }
    } else if (!live && s_state_all(ctl) != 0) {
        rc = EXIT_UNREACHABLE;
        goto done;
    }
    rc = live ? s_live(ctl, tree, sup, &report) : s_plain(ctl, tree, sup);
done:
    cJSON_Delete(report);
    ctl_destroy(&ctl);
    return rc;
}
