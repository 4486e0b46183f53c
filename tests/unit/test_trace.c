/* trace: report -> timeline model -> Trace Event Format; and the gnuplot
 * script of timeline.c built from the same model. Each test reads as a
 * usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "trace.h"

/* root (failed) -> spawner-10, spawner-2 (children: errorer fails, sleeper
 * cancelled), cache (hang in cleanup: SIGTERM, SIGKILL), and a pending node
 * with no phases. Phases deliberately out of order in one node. */
static const char *REPORT =
    "{\"tree\":\"t1\",\"supervisor\":\"sup1\",\"status\":\"failed\",\"duration_ms\":520,"
    "\"root\":{\"name\":\"root\",\"path\":\"root\",\"status\":\"failed\","
    " \"error\":{\"type\":\"ChildrenFailed\",\"message\":\"2 of 4 failed\",\"phase\":\"running\"},"
    " \"escalation\":null,\"phases\":["
    "  {\"phase\":\"spawned\",\"t_ms\":0},{\"phase\":\"ready\",\"t_ms\":4},"
    "  {\"phase\":\"running\",\"t_ms\":4},{\"phase\":\"cancel_requested\",\"t_ms\":117},"
    "  {\"phase\":\"cancelling_children\",\"t_ms\":117},{\"phase\":\"children_exited\",\"t_ms\":517},"
    "  {\"phase\":\"cleanup\",\"t_ms\":517},{\"phase\":\"exiting\",\"t_ms\":518},"
    "  {\"phase\":\"exited\",\"t_ms\":519}],"
    " \"children\":["
    "  {\"name\":\"spawner-10\",\"path\":\"root/spawner-10\",\"status\":\"cancelled\","
    "   \"error\":null,\"escalation\":null,\"phases\":[{\"phase\":\"spawned\",\"t_ms\":2},"
    "   {\"phase\":\"running\",\"t_ms\":5},{\"phase\":\"exited\",\"t_ms\":120}],\"children\":[]},"
    "  {\"name\":\"spawner-2\",\"path\":\"root/spawner-2\",\"status\":\"failed\","
    "   \"error\":{\"type\":\"ChildrenFailed\",\"message\":\"1 of 2\",\"phase\":\"running\"},"
    "   \"escalation\":null,\"phases\":[{\"phase\":\"running\",\"t_ms\":5},"
    "   {\"phase\":\"spawned\",\"t_ms\":2},{\"phase\":\"cleanup\",\"t_ms\":113},"
    "   {\"phase\":\"exited\",\"t_ms\":115}],\"children\":["
    "    {\"name\":\"sleeper\",\"path\":\"root/spawner-2/sleeper\",\"status\":\"cancelled\","
    "     \"error\":null,\"escalation\":null,\"phases\":[{\"phase\":\"spawned\",\"t_ms\":5},"
    "     {\"phase\":\"running\",\"t_ms\":14},{\"phase\":\"exited\",\"t_ms\":112}],\"children\":[]},"
    "    {\"name\":\"errorer\",\"path\":\"root/spawner-2/errorer\",\"status\":\"failed\","
    "     \"error\":{\"type\":\"ValueError\",\"message\":\"row 17: 'n/a'\\n\",\"phase\":\"running\"},"
    "     \"escalation\":null,\"phases\":[{\"phase\":\"spawned\",\"t_ms\":6},"
    "     {\"phase\":\"running\",\"t_ms\":10},{\"phase\":\"cleanup\",\"t_ms\":110},"
    "     {\"phase\":\"exited\",\"t_ms\":113}],\"children\":[]}]},"
    "  {\"name\":\"cache\",\"path\":\"root/cache\",\"status\":\"killed\","
    "   \"error\":{\"type\":\"ShutdownTimeout\",\"message\":\"stuck\",\"phase\":\"cleanup\"},"
    "   \"escalation\":{\"stuck_phase\":\"cleanup\",\"signals\":[\"SIGTERM\",\"SIGKILL\"]},"
    "   \"phases\":[{\"phase\":\"spawned\",\"t_ms\":2},{\"phase\":\"running\",\"t_ms\":11},"
    "   {\"phase\":\"cancel_requested\",\"t_ms\":115},{\"phase\":\"cleanup\",\"t_ms\":116},"
    "   {\"phase\":\"term_sent\",\"t_ms\":315},{\"phase\":\"kill_sent\",\"t_ms\":516},"
    "   {\"phase\":\"exited\",\"t_ms\":516}],\"children\":[]},"
    "  {\"name\":\"later\",\"path\":\"root/later\",\"status\":\"pending\",\"pid\":null,"
    "   \"error\":null,\"escalation\":null,\"phases\":[],\"children\":[]}]}}";

static cJSON *s_report(void)
{
    cJSON *r = cJSON_Parse(REPORT);
    assert_non_null(r);
    return r;
}

static const char *s_s(const cJSON *o, const char *k)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(i) ? i->valuestring : NULL;
}

static double s_n(const cJSON *o, const char *k)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(i));
    return i->valuedouble;
}

/* Rows come sorted by path: a subtree right after its node, numbers by value. */
static void test_path_order(void **state)
{
    (void) state;
    assert_true(trace_path_cmp("root", "root/a") < 0);
    assert_true(trace_path_cmp("root/a/b", "root/a-b") < 0); /* '/' sorts first */
    assert_true(trace_path_cmp("root/s-2", "root/s-10") < 0);
    assert_true(trace_path_cmp("root/s-10", "root/s-10") == 0);
    assert_true(trace_path_cmp("root/s-010", "root/s-9") > 0);

    cJSON *r = s_report();
    trace_model_t m;
    assert_int_equal(trace_model_build(r, &m), 0);
    const char *want[] = {"root", "root/cache", "root/later", "root/spawner-2",
                          "root/spawner-2/errorer", "root/spawner-2/sleeper", "root/spawner-10"};
    assert_int_equal(m.nrows, 7);
    for (int i = 0; i < m.nrows; i++)
        assert_string_equal(m.rows[i].path, want[i]);
    assert_int_equal(m.rows[3].depth, 1);
    assert_int_equal(m.rows[4].depth, 2);
    assert_int_equal(m.end_ms, 520);
    assert_string_equal(m.tree, "t1");
    trace_model_clear(&m);
    cJSON_Delete(r);
}

/* Each worker phase is a slice up to the next one; signals are marks. */
static void test_slices_and_marks(void **state)
{
    (void) state;
    cJSON *r = s_report();
    trace_model_t m;
    assert_int_equal(trace_model_build(r, &m), 0);
    const trace_row_t *cache = &m.rows[1];
    assert_string_equal(cache->path, "root/cache");
    assert_int_equal(cache->nslices, 5); /* spawned running cancel_requested cleanup exited */
    assert_int_equal(cache->nmarks, 2);
    assert_string_equal(cache->marks[0].signal, "SIGTERM");
    assert_int_equal(cache->marks[0].t_ms, 315);
    assert_string_equal(cache->marks[1].name, "kill_sent");
    const trace_slice_t *cleanup = &cache->slices[3];
    assert_string_equal(cleanup->phase, "cleanup");
    assert_int_equal(cleanup->t0_ms, 116);
    assert_int_equal(cleanup->t1_ms, 516); /* the signals do not cut it */
    assert_int_equal(cache->stuck_slice, 3);
    assert_string_equal(cache->stuck_phase, "cleanup");
    assert_int_equal(cache->error_ms, 315); /* timed out when SIGTERM went */
    assert_int_equal(cache->slices[4].t1_ms, 516); /* exited: an instant */

    /* Out-of-order phases are put in time order. */
    const trace_row_t *sp2 = &m.rows[3];
    assert_string_equal(sp2->slices[0].phase, "spawned");
    assert_string_equal(sp2->slices[1].phase, "running");
    assert_int_equal(sp2->slices[1].t1_ms, 113);
    assert_int_equal(sp2->error_ms, 113); /* end of "running", the phase it names */
    for (int i = 0; i < m.nrows; i++)
        for (int k = 0; k + 1 < m.rows[i].nslices; k++) {
            assert_true(m.rows[i].slices[k].t0_ms <= m.rows[i].slices[k + 1].t0_ms);
            assert_int_equal(m.rows[i].slices[k].t1_ms, m.rows[i].slices[k + 1].t0_ms);
        }
    /* A node with no phases still has its row. */
    assert_string_equal(m.rows[2].path, "root/later");
    assert_int_equal(m.rows[2].nslices, 0);
    trace_model_clear(&m);
    cJSON_Delete(r);
}

/* A node still in its last phase runs to the report's end. */
static void test_running_node_extends_to_end(void **state)
{
    (void) state;
    cJSON *r = cJSON_Parse("{\"status\":\"running\",\"duration_ms\":900,\"root\":{\"path\":\"root\","
                           "\"status\":\"running\",\"phases\":[{\"phase\":\"spawned\",\"t_ms\":0},"
                           "{\"phase\":\"running\",\"t_ms\":3}]}}");
    trace_model_t m;
    assert_int_equal(trace_model_build(r, &m), 0);
    assert_int_equal(m.nrows, 1);
    assert_int_equal(m.rows[0].slices[1].t1_ms, 900);
    assert_string_equal(m.tree, "?");
    trace_model_clear(&m);
    cJSON_Delete(r);
}

/* Every phase of every node appears in the trace: worker phases as "X"
 * slices (ts/dur in µs, dur >= 0, in order per track), signals as "i". */
static void test_trace_has_every_phase(void **state)
{
    (void) state;
    cJSON *r = s_report();
    cJSON *t = trace_from_report(r);
    assert_non_null(t);
    assert_string_equal(s_s(t, "displayTimeUnit"), "ms");
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(t, "traceEvents");
    assert_true(cJSON_IsArray(events));

    /* tid -> path from the thread_name metadata */
    const char *names[16] = {0};
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        assert_non_null(s_s(e, "name"));
        assert_non_null(s_s(e, "ph"));
        assert_int_equal((int) s_n(e, "pid"), TRACE_PID);
        (void) s_n(e, "tid");
        (void) s_n(e, "ts");
        if (!strcmp(s_s(e, "ph"), "M") && !strcmp(s_s(e, "name"), "thread_name")) {
            int tid = (int) s_n(e, "tid");
            assert_true(tid > 0 && tid < 16);
            names[tid] = s_s(cJSON_GetObjectItemCaseSensitive(e, "args"), "name");
        }
    }
    assert_string_equal(names[1], "root");
    assert_string_equal(names[2], "root/cache");

    /* Walk the report: each phase (t_ms) of each node has its event. */
    trace_model_t m;
    assert_int_equal(trace_model_build(r, &m), 0);
    int checked = 0;
    for (int i = 0; i < m.nrows; i++) {
        const cJSON *phases = cJSON_GetObjectItemCaseSensitive(m.rows[i].node, "phases");
        const cJSON *p;
        cJSON_ArrayForEach(p, phases)
        {
            const char *phase = s_s(p, "phase");
            double ts = s_n(p, "t_ms") * 1000.0;
            bool found = false;
            cJSON_ArrayForEach(e, events)
                if ((int) s_n(e, "tid") == i + 1 && !strcmp(s_s(e, "name"), phase) &&
                    s_n(e, "ts") == ts)
                    found = true;
            assert_true(found);
            checked++;
        }
        /* slices of one track: ordered and never overlapping */
        double last_end = -1;
        cJSON_ArrayForEach(e, events)
            if ((int) s_n(e, "tid") == i + 1 && !strcmp(s_s(e, "ph"), "X")) {
                assert_true(s_n(e, "dur") >= 0);
                assert_true(s_n(e, "ts") >= last_end);
                last_end = s_n(e, "ts") + s_n(e, "dur");
            }
    }
    assert_int_equal(checked, 9 + 3 + 4 + 3 + 4 + 7);

    /* Errors: an instant named by type, args carry type and message. */
    int errors = 0, signals = 0;
    cJSON_ArrayForEach(e, events)
    {
        const char *cat = s_s(e, "cat");
        if (cat && !strcmp(cat, "error")) {
            errors++;
            assert_string_equal(s_s(e, "ph"), "i");
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
            assert_string_equal(s_s(e, "name"), s_s(args, "type"));
            assert_non_null(s_s(args, "message"));
        }
        if (cat && !strcmp(cat, "signal")) {
            signals++;
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
            assert_string_equal(s_s(args, "stuck_phase"), "cleanup");
        }
    }
    assert_int_equal(errors, 4);
    assert_int_equal(signals, 2);

    /* It prints and parses back: valid JSON. */
    char *text = cJSON_PrintUnformatted(t);
    cJSON *back = cJSON_Parse(text);
    assert_non_null(back);
    cJSON_Delete(back);
    free(text);
    trace_model_clear(&m);
    cJSON_Delete(t);
    cJSON_Delete(r);
}

/* Garbage in: no crash, NULL for no root, rows with "?" for missing keys. */
static void test_each_incarnation_is_its_own_span(void **state)
{
    (void) state;
    cJSON *r = cJSON_Parse(
        "{\"tree\":\"t\",\"supervisor\":\"s\",\"status\":\"cancelled\",\"duration_ms\":90,"
        "\"root\":{\"name\":\"root\",\"path\":\"root\",\"status\":\"cancelled\",\"phases\":[],"
        "\"children\":[{\"name\":\"job\",\"path\":\"root/job\",\"status\":\"cancelled\","
        "\"phases\":[{\"phase\":\"spawned\",\"t_ms\":40},{\"phase\":\"exited\",\"t_ms\":90}],"
        "\"restarts\":[{\"incarnation\":0,\"t_ms\":30,\"pid\":7,\"status\":\"failed\","
        "\"exit\":{\"code\":3,\"signal\":null},\"error\":{\"type\":\"NonZeroExit\","
        "\"message\":\"exited with code 3\",\"phase\":\"running\"},"
        "\"phases\":[{\"phase\":\"spawned\",\"t_ms\":1},{\"phase\":\"running\",\"t_ms\":2},"
        "{\"phase\":\"exited\",\"t_ms\":29}]}],\"children\":[]}]}}");
    trace_model_t m;
    assert_int_equal(trace_model_build(r, &m), 0);
    assert_int_equal(m.nrows, 3); /* root, job #0, job #1 */
    assert_string_equal(m.rows[1].path, "root/job");
    assert_int_equal(m.rows[1].incarnation, 0);
    assert_int_equal(m.rows[1].incarnations, 2);
    assert_string_equal(m.rows[1].status, "failed");
    assert_non_null(m.rows[1].error); /* the old incarnation's own error */
    assert_int_equal(m.rows[1].slices[0].t0_ms, 1);
    assert_int_equal(m.rows[2].incarnation, 1);
    assert_string_equal(m.rows[2].status, "cancelled");
    assert_null(m.rows[2].error);
    assert_int_equal(m.rows[2].slices[0].t0_ms, 40);
    trace_model_clear(&m);
    cJSON *t = trace_from_report(r);
    char *text = cJSON_PrintUnformatted(t);
    assert_non_null(strstr(text, "\"root/job #0\""));
    assert_non_null(strstr(text, "\"root/job #1\""));
    free(text);
    cJSON_Delete(t);
    cJSON_Delete(r);
}

static void test_bad_reports(void **state)
{
    (void) state;
    assert_null(trace_from_report(NULL));
    cJSON *r = cJSON_Parse("{\"root\":[1]}");
    assert_null(trace_from_report(r));
    assert_null(timeline_script(r, TIMELINE_PNG, 0));
    cJSON_Delete(r);
    r = cJSON_Parse("{\"root\":{\"phases\":[{\"phase\":3},{\"t_ms\":\"x\"},7,"
                    "{\"phase\":\"running\",\"t_ms\":-5}],\"children\":[1,\"a\",{}],"
                    "\"error\":{\"type\":7}}}");
    cJSON *t = trace_from_report(r);
    assert_non_null(t);
    trace_model_t m;
    assert_int_equal(trace_model_build(r, &m), 0);
    assert_int_equal(m.nrows, 2);
    assert_string_equal(m.rows[0].path, "?");
    assert_int_equal(m.rows[0].nslices, 1);
    assert_int_equal(m.rows[0].slices[0].t0_ms, 0);
    trace_model_clear(&m);
    cJSON_Delete(t);
    char *script = timeline_script(r, TIMELINE_SVG, 800);
    assert_non_null(script);
    free(script);
    cJSON_Delete(r);
}

/* The gnuplot script: one labelled row per node, a legend entry per phase
 * drawn, the stuck phase outlined, worker text quoted for gnuplot. */
static void test_timeline_script(void **state)
{
    (void) state;
    cJSON *r = s_report();
    char *s = timeline_script(r, TIMELINE_PNG, 1400);
    assert_non_null(s);
    assert_non_null(strstr(s, "set terminal pngcairo size 1400,"));
    assert_non_null(strstr(s, "'root/cache  [stuck]' 2"));
    assert_non_null(strstr(s, "'root/spawner-10' 7"));
    assert_non_null(strstr(s, "title 'running'"));
    assert_non_null(strstr(s, "title 'cleanup'"));
    assert_null(strstr(s, "title 'ready'")); /* no node shows ready long enough */
    assert_non_null(strstr(s, "title 'stuck phase'"));
    assert_non_null(strstr(s, "title 'SIGTERM sent'"));
    assert_non_null(strstr(s, "title 'error'"));
    assert_non_null(strstr(s, "stuck: root/cache in cleanup"));
    assert_non_null(strstr(s, "ShutdownTimeout: stuck in cleanup; sent SIGTERM, SIGKILL"));
    /* the worker's quote doubled, its newline made harmless */
    assert_non_null(strstr(s, "ValueError: row 17: ''n/a''?'"));
    free(s);
    s = timeline_script(r, TIMELINE_SVG, 0);
    assert_non_null(strstr(s, "set terminal svg size 1400,"));
    free(s);
    /* narrow: annotations cut shorter, with "..." */
    s = timeline_script(r, TIMELINE_PNG, 800);
    assert_non_null(strstr(s, "'ShutdownTimeout: "));
    assert_null(strstr(s, "SIGTERM, SIGKILL'"));
    assert_non_null(strstr(s, "...'"));
    free(s);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_order),
        cmocka_unit_test(test_slices_and_marks),
        cmocka_unit_test(test_running_node_extends_to_end),
        cmocka_unit_test(test_trace_has_every_phase),
        cmocka_unit_test(test_each_incarnation_is_its_own_span),
        cmocka_unit_test(test_bad_reports),
        cmocka_unit_test(test_timeline_script),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
