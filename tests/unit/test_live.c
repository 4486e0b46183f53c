/* live: the frame `arborctl watch` redraws on a terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"
#include "render.h"

/* A tree half torn down: two nodes ended, cache stuck in cleanup after
 * SIGTERM, root waiting for it, one node pending. */
static const char *RUNNING =
    "{\"tree\":\"t1\",\"supervisor\":\"sup1\",\"status\":\"running\",\"duration_ms\":3000,"
    "\"root\":{\"path\":\"root\",\"status\":\"running\",\"phase\":\"cancelling_children\","
    " \"phases\":[{\"phase\":\"running\",\"t_ms\":4},{\"phase\":\"cancel_requested\",\"t_ms\":1000},"
    "  {\"phase\":\"cancelling_children\",\"t_ms\":1000}],\"children\":["
    "  {\"path\":\"root/a\",\"status\":\"failed\",\"phase\":\"exited\",\"error\":{\"type\":\"E\"},"
    "   \"phases\":[{\"phase\":\"running\",\"t_ms\":5},{\"phase\":\"exited\",\"t_ms\":1000}]},"
    "  {\"path\":\"root/b\",\"status\":\"cancelled\",\"phase\":\"exited\","
    "   \"phases\":[{\"phase\":\"running\",\"t_ms\":5},{\"phase\":\"exited\",\"t_ms\":1010}]},"
    "  {\"path\":\"root/cache\",\"status\":\"running\",\"phase\":\"term_sent\","
    "   \"escalation\":{\"stuck_phase\":\"cleanup\",\"signals\":[\"SIGTERM\"]},"
    "   \"phases\":[{\"phase\":\"running\",\"t_ms\":5},{\"phase\":\"cleanup\",\"t_ms\":1001},"
    "   {\"phase\":\"term_sent\",\"t_ms\":2500}]},"
    "  {\"path\":\"root/later\",\"status\":\"pending\",\"phases\":[]}]}}";

static cJSON *s_parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static int s_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static void test_counts_progress_slowest(void **state)
{
    (void) state;
    cJSON *r = s_parse(RUNNING);
    live_tree_t t = {r, "t1", NULL};
    live_opts_t o = {.width = 120, .height = 0, .colour = false};
    char *f = live_frame(&t, 1, NULL, 0, &o);
    assert_non_null(f);
    assert_non_null(strstr(f, "tree t1 on sup1  running  3.0 s\n"));
    assert_non_null(strstr(f, "2/5 nodes ended (40%)"));
    assert_non_null(strstr(f, "status   running 2  pending 1  failed 1  cancelled 1"));
    assert_non_null(strstr(f, "phase    cancelling_children 1  term_sent 1  exited 2  none 1"));
    /* the slowest: root in cancelling_children for 2 s, then cache 500 ms since SIGTERM */
    const char *slow = strstr(f, "slowest  root ");
    assert_non_null(slow);
    assert_non_null(strstr(slow, "cancelling_children"));
    assert_non_null(strstr(slow, "2.0 s"));
    assert_non_null(strstr(f, "root/cache"));
    assert_non_null(strstr(f, "stuck in cleanup: SIGTERM"));
    assert_null(strchr(f, '\033')); /* no colour asked: no escape at all */
    free(f);
    cJSON_Delete(r);
}

/* Lines cut to the width, the frame to the height; events fill what is left. */
static void test_fits_the_terminal(void **state)
{
    (void) state;
    cJSON *r = s_parse(RUNNING);
    live_tree_t t = {r, "t1", "no answer from sup1 for 20 s"};
    const char *events[30];
    char buf[30][64];
    for (int i = 0; i < 30; i++) {
        snprintf(buf[i], sizeof buf[i], "12:00:00.%03d  t1  root/x  phase running  +%d ms\n", i, i);
        events[i] = buf[i];
    }
    live_opts_t o = {.width = 40, .height = 14, .colour = true};
    char *f = live_frame(&t, 1, events, 30, &o);
    assert_non_null(f);
    assert_true(s_lines(f) <= 13);
    for (char *line = f; *line;) {
        char *nl = strchr(line, '\n');
        *nl = 0;
        assert_true(live_width(line) <= 39);
        line = nl + 1;
    }
    free(f);
    o.height = 60;
    o.width = 100;
    f = live_frame(&t, 1, events, 30, &o);
    assert_non_null(strstr(f, "recent events"));
    assert_non_null(strstr(f, "+29 ms"));    /* the newest */
    assert_null(strstr(f, "+19 ms"));        /* at most LIVE_EVENT_LINES */
    assert_non_null(strstr(f, "\033[31m"));  /* failed in red; the note too */
    assert_non_null(strstr(f, "no answer from sup1"));
    free(f);
    cJSON_Delete(r);
}

/* Ended: "longest" teardown phases instead of "slowest". No trees yet: says so. */
static void test_ended_and_empty(void **state)
{
    (void) state;
    cJSON *r = s_parse("{\"tree\":\"t2\",\"status\":\"ok\",\"duration_ms\":50,\"root\":{\"path\":\"root\","
                       "\"status\":\"ok\",\"phase\":\"exited\",\"phases\":[{\"phase\":\"running\",\"t_ms\":1},"
                       "{\"phase\":\"cleanup\",\"t_ms\":40},{\"phase\":\"exited\",\"t_ms\":48}]}}");
    live_tree_t t[2] = {{r, "t2", NULL}, {NULL, "t3", NULL}};
    live_opts_t o = {.width = 100, .height = 40, .colour = false};
    char *f = live_frame(t, 2, NULL, 0, &o);
    assert_non_null(strstr(f, "1/1 nodes ended (100%)"));
    assert_non_null(strstr(f, "longest  root  "));
    assert_non_null(strstr(f, "cleanup"));
    assert_non_null(strstr(f, "tree t3  (waiting for its report)"));
    free(f);
    f = live_frame(NULL, 0, NULL, 0, &o);
    assert_non_null(strstr(f, "waiting for trees"));
    free(f);
    assert_int_equal(live_width("\033[31mfailed\033[0m \u2588\u2591"), 9);
    cJSON_Delete(r);
}

/* A restarted node counts once (its current incarnation); the header
 * says how many restarts there were, and an event names the incarnation. */
static void test_restarts_counted(void **state)
{
    (void) state;
    cJSON *r = s_parse(
        "{\"tree\":\"t4\",\"status\":\"running\",\"duration_ms\":90,\"root\":{\"path\":\"root\","
        "\"status\":\"running\",\"phase\":\"running\",\"phases\":[{\"phase\":\"running\",\"t_ms\":1}],"
        "\"children\":[{\"path\":\"root/job\",\"status\":\"running\",\"phase\":\"running\","
        "\"phases\":[{\"phase\":\"running\",\"t_ms\":60}],\"restarts\":["
        "{\"incarnation\":0,\"status\":\"failed\",\"phases\":[{\"phase\":\"exited\",\"t_ms\":20}]},"
        "{\"incarnation\":1,\"status\":\"failed\",\"phases\":[{\"phase\":\"exited\",\"t_ms\":50}]}]}]}}");
    live_tree_t t = {r, "t4", NULL};
    live_opts_t o = {.width = 120, .height = 40, .colour = false};
    char *f = live_frame(&t, 1, NULL, 0, &o);
    assert_non_null(strstr(f, "0/2 nodes ended (0%), 2 restarts"));
    assert_null(strstr(f, "failed")); /* the old incarnations are not counted as nodes */
    free(f);
    cJSON_Delete(r);
    cJSON *ev = s_parse("{\"tree\":\"t4\",\"kind\":\"phase\",\"path\":\"root/job\","
                        "\"phase\":\"ready\",\"t_ms\":61,\"incarnation\":2}");
    char *line = render_event(ev, "12:00:00.000", false);
    assert_non_null(strstr(line, "root/job #2  phase ready"));
    free(line);
    cJSON_Delete(ev);
}

/* Ended: a node arbor had to signal is listed first among the longest,
 * even when the parent that waited for it took longer. */
static void test_ended_stuck_first(void **state)
{
    (void) state;
    cJSON *r = s_parse(
        "{\"tree\":\"t5\",\"status\":\"cancelled\",\"duration_ms\":3000,\"root\":{\"path\":\"root\","
        "\"status\":\"cancelled\",\"phase\":\"exited\",\"phases\":[{\"phase\":\"running\",\"t_ms\":1},"
        "{\"phase\":\"cancelling_children\",\"t_ms\":100},{\"phase\":\"exited\",\"t_ms\":2900}],"
        "\"children\":[{\"path\":\"root/cache\",\"status\":\"killed\",\"phase\":\"exited\","
        "\"escalation\":{\"stuck_phase\":\"cleanup\",\"signals\":[\"SIGTERM\"]},"
        "\"phases\":[{\"phase\":\"running\",\"t_ms\":2},{\"phase\":\"cleanup\",\"t_ms\":200},"
        "{\"phase\":\"term_sent\",\"t_ms\":500},{\"phase\":\"exited\",\"t_ms\":600}]}]}}");
    live_tree_t t = {r, "t5", NULL};
    live_opts_t o = {.width = 120, .height = 0, .colour = false};
    char *f = live_frame(&t, 1, NULL, 0, &o);
    assert_non_null(strstr(f, "longest  root/cache"));
    assert_non_null(strstr(f, "stuck in cleanup"));
    free(f);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_progress_slowest),
        cmocka_unit_test(test_fits_the_terminal),
        cmocka_unit_test(test_ended_and_empty),
        cmocka_unit_test(test_restarts_counted),
        cmocka_unit_test(test_ended_stuck_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
