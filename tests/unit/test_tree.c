/* tree: the status rules — exactly one terminal status per node, and a
 * cancel never hides an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "tree.h"

static tree_node_t s_node(run_kind_t run)
{
    tree_node_t n;
    memset(&n, 0, sizeof n);
    n.run = run;
    n.phase = n.inc.stuck_phase = n.inc.child_failed_phase = PH_NONE;
    node_life_reset(&n.inc.life);
    wfd_init(&n.fds);
    n.grace_ms = 2000;
    return n;
}

static void test_exit_codes_and_signals(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_SLEEP);
    n.inc.life.end = END_EXITED;
    assert_int_equal(tree_node_final_status(&n), ST_OK);
    n.inc.life.exit_code = 3;
    assert_int_equal(tree_node_final_status(&n), ST_FAILED);
    n.inc.life.exit_code = 0;
    n.inc.life.exit_signal = SIGSEGV; /* nobody sent it */
    assert_int_equal(tree_node_final_status(&n), ST_FAILED);
}

static void test_cancel_outcomes(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_SLEEP);
    n.inc.life.end = END_EXITED;
    n.inc.life.stop = n.inc.life.told_cancel = true;
    assert_int_equal(tree_node_final_status(&n), ST_CANCELLED);
    n.inc.life.escalated = SIGTERM; /* needed SIGTERM, exited 0 after it */
    assert_int_equal(tree_node_final_status(&n), ST_KILLED);
    n.inc.life.exit_signal = SIGTERM;
    assert_int_equal(tree_node_final_status(&n), ST_KILLED);
    n.inc.life.escalated = SIGKILL;
    n.inc.life.exit_signal = SIGKILL;
    assert_int_equal(tree_node_final_status(&n), ST_KILLED);
}

static void test_exec_cancel_is_sigterm(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_EXEC);
    n.inc.life.end = END_EXITED;
    n.inc.life.stop = n.inc.life.told_cancel = n.inc.life.cancel_by_sigterm = true;
    n.inc.life.exit_signal = SIGTERM; /* arbor's cancel, within grace */
    assert_int_equal(tree_node_final_status(&n), ST_CANCELLED);
    n.inc.life.exit_signal = 0;
    n.inc.life.exit_code = 128 + SIGTERM; /* a shell saying the same */
    assert_int_equal(tree_node_final_status(&n), ST_CANCELLED);
    n.inc.life.exit_code = 2; /* its own failure while stopping: not hidden */
    assert_int_equal(tree_node_final_status(&n), ST_FAILED);
    /* A builtin dying of SIGTERM nobody sent is a failure. */
    tree_node_t b = s_node(RUN_SLEEP);
    b.inc.life.end = END_EXITED;
    b.inc.life.exit_signal = SIGTERM;
    assert_int_equal(tree_node_final_status(&b), ST_FAILED);
}

static void test_cancel_never_hides_an_error(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_FAIL);
    n.inc.life.end = END_EXITED;
    n.inc.life.stop = n.inc.life.told_cancel = true;
    n.inc.error = cJSON_Parse("{\"type\":\"ValueError\",\"message\":\"x\"}");
    assert_int_equal(tree_node_final_status(&n), ST_FAILED);
    cJSON_Delete(n.inc.error);
    n.inc.error = NULL;
    n.inc.child_failed = true;
    assert_int_equal(tree_node_final_status(&n), ST_FAILED);
}

static void test_special_outcomes(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_EXEC);
    n.inc.life.end = END_SPAWN_FAILED;
    assert_int_equal(tree_node_final_status(&n), ST_SPAWN_FAILED);
    n = s_node(RUN_SLEEP);
    n.inc.life.stop = true; /* cancelled before it was ever spawned */
    assert_int_equal(tree_node_final_status(&n), ST_CANCELLED);
    n.inc.life.end = END_LOST;
    assert_int_equal(tree_node_final_status(&n), ST_LOST);
}

static void test_settle_once_and_report(void **state)
{
    (void) state;
    const char *spec = "{\"name\":\"root\",\"children\":[{\"name\":\"a\",\"run\":\"fail\"},"
                       "{\"name\":\"b\",\"run\":\"sleep\"}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t9", 9, "sup1", NULL, &err);
    assert_non_null(t);
    t->started_ms = 1000;
    tree_node_t *a = &t->nodes[1], *b = &t->nodes[2], *root = &t->nodes[0];
    a->inc.life.end = END_EXITED;
    a->inc.life.exit_code = 1;
    tree_node_phase(a, PH_RUNNING, 5);
    tree_node_tail_append(a, "trace line\n", 11);
    tree_node_settle(t, a, tree_node_final_status(a));
    assert_int_equal(a->status, ST_FAILED);
    assert_string_equal(cJSON_GetObjectItem(a->inc.error, "type")->valuestring, "NonZeroExit");
    assert_string_equal(cJSON_GetObjectItem(a->inc.error, "stderr")->valuestring, "trace line\n");
    tree_node_settle(t, a, ST_OK); /* a second settle changes nothing */
    assert_int_equal(a->status, ST_FAILED);
    assert_int_equal(t->nterminal, 1);
    assert_int_equal(tree_status_of(t), TREE_RUNNING);

    b->inc.life.end = END_EXITED;
    b->inc.life.stop = true;
    tree_node_settle(t, b, tree_node_final_status(b));
    root->inc.life.end = END_EXITED;
    root->inc.child_failed = true;
    tree_node_settle(t, root, tree_node_final_status(root));
    assert_int_equal(tree_status_of(t), TREE_FAILED);
    cJSON *r = tree_report(t, 1500);
    assert_string_equal(cJSON_GetObjectItem(r, "status")->valuestring, "failed");
    cJSON *rroot = cJSON_GetObjectItem(r, "root");
    cJSON *rerr = cJSON_GetObjectItem(rroot, "error");
    assert_string_equal(cJSON_GetObjectItem(rerr, "type")->valuestring, "ChildrenFailed");
    assert_int_equal(cJSON_GetObjectItem(rerr, "failed_children")->valueint, 1);
    cJSON *kids = cJSON_GetObjectItem(rroot, "children");
    assert_int_equal(cJSON_GetArraySize(kids), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(kids, 1), "status")->valuestring,
                        "cancelled");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(kids, 1), "error")));
    cJSON_Delete(r);
    tree_destroy(&t);
}

static void test_tail_is_bounded(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_FLOOD);
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 100; i++)
        tree_node_tail_append(&n, chunk, sizeof chunk);
    tree_node_tail_append(&n, "END", 3);
    char *tail = tree_node_tail(&n);
    assert_int_equal(strlen(tail), TREE_TAIL_BYTES);
    assert_string_equal(tail + TREE_TAIL_BYTES - 3, "END");
    assert_int_equal(n.inc.err_bytes, 100003);
    free(tail);
    free(n.inc.tail);
}

static void test_phases_keep_time_order(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_SLEEP);
    tree_node_phase(&n, PH_SPAWNED, 1);
    tree_node_phase(&n, PH_EXITED, 40);  /* the exit status came first... */
    tree_node_phase(&n, PH_CLEANUP, 30); /* ...the worker's reports trailed it */
    tree_node_phase(&n, PH_EXITING, 35);
    assert_int_equal(n.inc.nphases, 4);
    assert_int_equal(n.inc.phases[1].phase, PH_CLEANUP);
    assert_int_equal(n.inc.phases[2].phase, PH_EXITING);
    assert_int_equal(n.inc.phases[3].phase, PH_EXITED);
    assert_int_equal(n.phase, PH_EXITED);
    /* Reports of the same millisecond as the exit still come before it. */
    tree_node_phase(&n, PH_CLEANUP, 40);
    assert_int_equal(n.inc.phases[3].phase, PH_CLEANUP);
    assert_int_equal(n.inc.phases[4].phase, PH_EXITED);
    free(n.inc.phases);

    /* Undated reports (a shell's printf on its notify fd), read after the
     * fork-server dated the exit but handled before it: "exited" stays
     * last, dated no earlier than them. */
    n = s_node(RUN_EXEC);
    tree_node_phase(&n, PH_SPAWNED, 1);
    tree_node_phase(&n, PH_READY, 12);
    tree_node_phase(&n, PH_EXITING, 12);
    tree_node_phase(&n, PH_EXITED, 10);
    assert_int_equal(n.inc.phases[3].phase, PH_EXITED);
    assert_int_equal(n.inc.phases[3].t_ms, 12);
    free(n.inc.phases);
}

static void test_error_from_stderr_tail(void **state)
{
    (void) state;
    tree_node_t n = s_node(RUN_FAIL);
    const char *out = "starting\nARBOR-ERROR {\"type\":\"Old\",\"message\":\"first\"}\n"
                      "noise ARBOR-ERROR {\"type\":\"NotALine\",\"message\":\"x\"}\n"
                      "ARBOR-ERROR {\"type\":\"LateError\",\"message\":\"broker away\","
                      "\"phase\":\"cleanup\"}\nbye\n";
    tree_node_tail_append(&n, out, strlen(out));
    assert_true(tree_node_error_from_stderr(&n, NULL, 0));
    assert_string_equal(cJSON_GetObjectItem(n.inc.error, "type")->valuestring, "LateError");
    assert_string_equal(cJSON_GetObjectItem(n.inc.error, "phase")->valuestring, "cleanup");
    assert_false(tree_node_error_from_stderr(&n, NULL, 0)); /* a reported error is never replaced */
    cJSON_Delete(n.inc.error);
    free(n.inc.tail);
    errline_free(&n.inc.errline);
    tree_node_t m = s_node(RUN_FAIL);
    tree_node_tail_append(&m, "ARBOR-ERROR {broken\n", 20);
    char why[128];
    assert_false(tree_node_error_from_stderr(&m, why, sizeof why));
    assert_non_null(strstr(why, "not a JSON object"));
    assert_null(m.inc.error);
    free(m.inc.tail);
    errline_free(&m.inc.errline);
}

/* Issue 13, defect 1: an ARBOR-ERROR line longer than the 4 KiB stderr tail
 * lost its start there, and the node's error became NonZeroExit. It is kept
 * on its own: the error arrives whole, and the report's stderr does not
 * show the line's end a second time. A line with a \u0000 is not taken
 * (the derived error stands) and stays in stderr. */
static void test_long_error_line_survives_the_tail(void **state)
{
    (void) state;
    char hundred_x[101];
    memset(hundred_x, 'x', 100);
    hundred_x[100] = 0;
    const char *spec = "{\"name\":\"root\",\"children\":[{\"name\":\"a\",\"run\":\"fail\"},"
                       "{\"name\":\"b\",\"run\":\"fail\"}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t9", 9, "sup1", NULL, &err);
    assert_non_null(t);
    tree_node_t *a = &t->nodes[1], *b = &t->nodes[2];
    a->inc.life.end = b->inc.life.end = END_EXITED;
    a->inc.life.exit_code = b->inc.life.exit_code = 1;
    const char *head = "before\nARBOR-ERROR {\"type\":\"BigErr\",\"message\":\"";
    tree_node_tail_append(a, head, strlen(head));
    for (int i = 0; i < 100; i++)
        tree_node_tail_append(a, hundred_x, 100);
    tree_node_tail_append(a, "\"}\nafter\n", 9);
    assert_true(tree_node_error_from_stderr(a, NULL, 0));
    tree_node_settle(t, a, tree_node_final_status(a));
    assert_string_equal(cJSON_GetObjectItem(a->inc.error, "type")->valuestring, "BigErr");
    assert_int_equal(strlen(cJSON_GetObjectItem(a->inc.error, "message")->valuestring), 10000);
    assert_string_equal(cJSON_GetObjectItem(a->inc.error, "stderr")->valuestring, "after\n");

    const char *nul = "ARBOR-ERROR {\"type\":\"Bad\\u0000Type\",\"message\":\"m\"}\n";
    tree_node_tail_append(b, nul, strlen(nul));
    char why[128];
    assert_false(tree_node_error_from_stderr(b, why, sizeof why));
    assert_non_null(strstr(why, "\\u0000"));
    tree_node_settle(t, b, tree_node_final_status(b));
    assert_string_equal(cJSON_GetObjectItem(b->inc.error, "type")->valuestring, "NonZeroExit");
    assert_string_equal(cJSON_GetObjectItem(b->inc.error, "stderr")->valuestring, nul);
    tree_destroy(&t);
}

static void test_graft_remote_subtree(void **state)
{
    (void) state;
    const char *spec = "{\"name\":\"root\",\"children\":[{\"name\":\"far\",\"on\":\"away\","
                       "\"children\":[{\"name\":\"w\",\"run\":\"fail\"},{\"name\":\"gone\"}]}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t", 1, "home", NULL, &err);
    assert_non_null(t);
    tree_node_t *far = &t->nodes[1], *w = &t->nodes[2], *gone = &t->nodes[3];
    assert_string_equal(far->remote_sup, "away");
    assert_true(w->remote_part && gone->remote_part && !far->remote_part);
    assert_null(cJSON_GetObjectItem(far->subtree_spec, "on"));
    assert_non_null(cJSON_GetObjectItem(far->subtree_spec, "children"));
    far->remote_t0_ms = 100; /* its times are shifted by when we asked */
    cJSON *remote = cJSON_Parse(
        "{\"name\":\"far\",\"path\":\"far\",\"pid\":77,\"status\":\"failed\",\"phase\":\"exited\","
        "\"exit\":{\"code\":0,\"signal\":null},\"error\":{\"type\":\"ChildrenFailed\",\"message\":\"m\","
        "\"phase\":\"running\"},\"escalation\":null,\"phases\":[{\"phase\":\"spawned\",\"t_ms\":0},"
        "{\"phase\":\"exited\",\"t_ms\":9}],\"restarts\":[],\"children\":[{\"name\":\"w\",\"path\":\"far/w\","
        "\"pid\":78,\"status\":\"killed\",\"phase\":\"exited\",\"exit\":{\"code\":null,\"signal\":\"SIGKILL\"},"
        "\"error\":null,\"escalation\":{\"stuck_phase\":\"cleanup\",\"signals\":[\"SIGTERM\",\"SIGKILL\"]},"
        "\"phases\":[{\"phase\":\"cleanup\",\"t_ms\":3}],\"restarts\":[],\"children\":[]}]}");
    status_t st = tree_graft(t, far, remote);
    assert_int_equal(st, ST_FAILED);
    assert_int_equal(w->status, ST_KILLED);
    assert_int_equal(w->inc.pid, 78);
    assert_int_equal(w->inc.life.escalated, SIGKILL);
    assert_int_equal(w->inc.stuck_phase, PH_CLEANUP);
    assert_int_equal(w->inc.life.exit_signal, SIGKILL);
    assert_int_equal(w->inc.phases[0].t_ms, 103);
    assert_int_equal(gone->status, ST_LOST); /* missing from its report */
    assert_int_equal(far->inc.phases[1].t_ms, 109);
    assert_int_equal(t->nterminal, 2); /* far itself is settled by the caller */
    cJSON_Delete(remote);
    tree_destroy(&t);
}

static void test_names(void **state)
{
    (void) state;
    assert_string_equal(phase_name(PH_CANCELLING_CHILDREN), "cancelling_children");
    assert_int_equal(phase_parse("children_exited"), PH_CHILDREN_EXITED);
    assert_int_equal(phase_parse("nope"), PH_NONE);
    assert_string_equal(status_name(ST_SPAWN_FAILED), "spawn_failed");
    assert_true(status_is_failure(ST_LOST));
    assert_false(status_is_failure(ST_KILLED));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes_and_signals),
        cmocka_unit_test(test_cancel_outcomes),
        cmocka_unit_test(test_exec_cancel_is_sigterm),
        cmocka_unit_test(test_cancel_never_hides_an_error),
        cmocka_unit_test(test_special_outcomes),
        cmocka_unit_test(test_settle_once_and_report),
        cmocka_unit_test(test_tail_is_bounded),
        cmocka_unit_test(test_phases_keep_time_order),
        cmocka_unit_test(test_error_from_stderr_tail),
        cmocka_unit_test(test_long_error_line_survives_the_tail),
        cmocka_unit_test(test_graft_remote_subtree),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
