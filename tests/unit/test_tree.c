/* tree: the status rules — exactly one terminal status per node, and a
 * cancel never hides an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "tree.h"
#include "report_json.h"

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
    cJSON *r = s_report(t, 1500);
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

/* The report's text: every key of schema/report.json, what JSON must
 * escape in strings, exits by signal, escalation, and guarantees. */
static void test_report_text(void **state)
{
    (void) state;
    const char *spec = "{\"name\":\"root\",\"children\":[{\"name\":\"a\",\"run\":\"hang\"}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t\"1", 1, "sup\\1", NULL, &err);
    assert_non_null(t);
    t->started_ms = 1000;
    snprintf(t->reason, sizeof t->reason, "cancel\n\x01");
    tree_node_t *a = &t->nodes[1], *root = &t->nodes[0];
    a->inc.pid = 4242;
    tree_node_phase(a, PH_RUNNING, 3);
    tree_node_phase(a, PH_TERM_SENT, 9);
    a->inc.life.end = END_EXITED;
    a->inc.life.exit_signal = SIGKILL;
    a->inc.life.escalated = SIGKILL;
    a->inc.life.stop = true;
    a->inc.stuck_phase = PH_RUNNING;
    tree_node_settle(t, a, tree_node_final_status(a));
    root->inc.life.end = END_EXITED;
    root->inc.life.stop = true;
    tree_node_settle(t, root, tree_node_final_status(root));

    const char *g[] = {"pidfd_signals", "cgroup", NULL};
    char *text = report_text(t, 1500, g);
    assert_non_null(text);
    cJSON *r = cJSON_Parse(text);
    assert_non_null(r);
    free(text);
    assert_string_equal(cJSON_GetObjectItem(r, "tree")->valuestring, "t\"1");
    assert_string_equal(cJSON_GetObjectItem(r, "supervisor")->valuestring, "sup\\1");
    assert_string_equal(cJSON_GetObjectItem(r, "reason")->valuestring, "cancel\n\x01");
    assert_int_equal(cJSON_GetObjectItem(r, "duration_ms")->valueint, 500);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "guarantees"), 1)->valuestring,
                        "cgroup");
    cJSON *ra = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "root"), "children"), 0);
    assert_string_equal(cJSON_GetObjectItem(ra, "path")->valuestring, "root/a");
    assert_int_equal(cJSON_GetObjectItem(ra, "pid")->valueint, 4242);
    assert_string_equal(cJSON_GetObjectItem(ra, "status")->valuestring, "killed");
    cJSON *ex = cJSON_GetObjectItem(ra, "exit");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ex, "code")));
    assert_string_equal(cJSON_GetObjectItem(ex, "signal")->valuestring, "SIGKILL");
    cJSON *esc = cJSON_GetObjectItem(ra, "escalation");
    assert_string_equal(cJSON_GetObjectItem(esc, "stuck_phase")->valuestring, "running");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(esc, "signals")), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ra, "error"), "type")->valuestring,
                        "ShutdownTimeout");
    cJSON *ph = cJSON_GetObjectItem(ra, "phases");
    assert_int_equal(cJSON_GetArraySize(ph), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ph, 1), "t_ms")->valueint, 9);
    assert_int_equal(cJSON_GetObjectItem(ra, "escaped")->valueint, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ra, "restarts")), 0);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ra, "logs"), "lines")->valueint, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ra, "children")), 0);
    cJSON_Delete(r);
    /* no guarantees: no key */
    r = s_report(t, 1500);
    assert_null(cJSON_GetObjectItem(r, "guarantees"));
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
                       "\"restart\":\"temporary\",\"children\":[{\"name\":\"w\",\"run\":\"fail\"},"
                       "{\"name\":\"gone\"}]}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t", 1, "home", NULL, &err);
    assert_non_null(t);
    tree_node_t *far = &t->nodes[1], *w = &t->nodes[2], *gone = &t->nodes[3];
    assert_string_equal(far->remote_sup, "away");
    assert_true(w->remote_part && gone->remote_part && !far->remote_part);
    assert_null(cJSON_GetObjectItem(far->subtree_spec, "on"));
    /* its restart type is decided here: the other supervisor gets a root */
    assert_null(cJSON_GetObjectItem(far->subtree_spec, "restart"));
    assert_int_equal(far->restart, RESTART_TEMPORARY);
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
    status_t st = tree_graft(t, far->idx, remote);
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

static void test_graft_adopts_children_started_there(void **state)
{
    (void) state;
    const char *spec = "{\"name\":\"root\",\"children\":[{\"name\":\"far\",\"on\":\"away\","
                       "\"run\":\"sleep\"}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t", 1, "home", NULL, &err);
    assert_non_null(t);
    assert_int_equal(t->nnodes, 2);
    t->nodes[1].remote_t0_ms = 50;
    /* far (a worker there) started kid at run time, and kid started gk. */
    cJSON *remote = cJSON_Parse(
        "{\"name\":\"far\",\"path\":\"far\",\"status\":\"failed\",\"exit\":{\"code\":0},"
        "\"error\":{\"type\":\"ChildrenFailed\",\"message\":\"m\",\"phase\":\"running\"},"
        "\"phases\":[],\"children\":[{\"name\":\"kid\",\"path\":\"far/kid\",\"pid\":9,"
        "\"status\":\"failed\",\"restart\":\"temporary\",\"exit\":{\"code\":1},"
        "\"error\":{\"type\":\"ValueError\",\"message\":\"bad\",\"phase\":\"running\"},"
        "\"phases\":[{\"phase\":\"spawned\",\"t_ms\":5},{\"phase\":\"exited\",\"t_ms\":8}],"
        "\"children\":[{\"name\":\"gk\",\"path\":\"far/kid/gk\",\"status\":\"cancelled\","
        "\"exit\":{\"code\":0},\"error\":null,\"phases\":[],\"children\":[]}]},"
        "{\"name\":\"bad/name\",\"status\":\"ok\",\"children\":[]}]}");
    assert_int_equal(tree_graft(t, 1, remote), ST_FAILED);
    assert_int_equal(t->nnodes, 4); /* kid and gk; a name that cannot be a node is left out */
    tree_node_t *far = &t->nodes[1];
    tree_node_t *kid = tree_find_path(t, "root/far/kid"), *gk = tree_find_path(t, "root/far/kid/gk");
    assert_non_null(kid);
    assert_non_null(gk);
    assert_true(far->nchildren == 1 && far->children[0] == kid && kid->parent == far);
    assert_true(kid->nchildren == 1 && kid->children[0] == gk && gk->parent == kid);
    assert_true(kid->remote_part && kid->grafted);
    assert_int_equal(kid->status, ST_FAILED);
    assert_string_equal(cJSON_GetObjectItem(kid->inc.error, "type")->valuestring, "ValueError");
    assert_int_equal(kid->restart, RESTART_TEMPORARY);
    assert_int_equal(kid->inc.pid, 9);
    assert_int_equal(kid->inc.phases[0].t_ms, 55);
    assert_int_equal(gk->status, ST_CANCELLED);
    assert_int_equal(t->nterminal, 2);
    /* far placed again (a restart) and its new report lacks them: they did
     * not start in this incarnation. */
    tree_subtree_reset(t, far, 100);
    assert_int_equal(t->nterminal, 0);
    cJSON *again = cJSON_Parse("{\"name\":\"far\",\"status\":\"ok\",\"exit\":{\"code\":0},"
                               "\"error\":null,\"phases\":[],\"children\":[]}");
    assert_int_equal(tree_graft(t, 1, again), ST_OK);
    assert_int_equal(t->nnodes, 4);
    assert_int_equal(tree_find_path(t, "root/far/kid")->status, ST_CANCELLED);
    assert_int_equal(tree_find_path(t, "root/far/kid/gk")->status, ST_CANCELLED);
    cJSON_Delete(again);
    cJSON_Delete(remote);
    tree_destroy(&t);
}

/* ChildrenFailed names a bounded number of failed children, then says how
 * many more, once; "failed" lists every one of them by path. */
static void test_children_failed_lists_every_failure(void **state)
{
    (void) state;
    const char *spec = "{\"name\":\"root\",\"children\":[{\"name\":\"c\",\"run\":\"fail\","
                       "\"count\":12},{\"name\":\"fine\",\"run\":\"sleep\"}]}";
    spec_err_t err;
    tree_t *t = spec_build_text(spec, strlen(spec), "t", 1, "home", NULL, &err);
    assert_non_null(t);
    for (int i = 1; i < t->nnodes; i++) {
        tree_node_t *c = &t->nodes[i];
        c->inc.life.end = END_EXITED;
        c->inc.life.exit_code = strcmp(c->name, "fine") ? 1 : 0;
        tree_node_settle(t, c, tree_node_final_status(c));
    }
    tree_node_t *root = &t->nodes[0];
    root->inc.life.end = END_EXITED;
    root->inc.child_failed = true;
    tree_node_settle(t, root, tree_node_final_status(root));
    const cJSON *e = root->inc.error;
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "ChildrenFailed");
    assert_string_equal(cJSON_GetObjectItem(e, "message")->valuestring,
                        "12 of 13 children failed: c-0, c-1, c-2, c-3, c-4, c-5, c-6, c-7 and 4 more");
    assert_int_equal(cJSON_GetObjectItem(e, "failed_children")->valueint, 12);
    const cJSON *failed = cJSON_GetObjectItem(e, "failed");
    assert_int_equal(cJSON_GetArraySize(failed), 12);
    assert_string_equal(cJSON_GetArrayItem(failed, 0)->valuestring, "root/c-0");
    assert_string_equal(cJSON_GetArrayItem(failed, 11)->valuestring, "root/c-11");
    tree_destroy(&t);

    /* Long names: still one "and N more", never a run of ", …". */
    char name[61];
    memset(name, 'n', 60);
    name[60] = 0;
    char spec2[256];
    snprintf(spec2, sizeof spec2,
             "{\"name\":\"root\",\"children\":[{\"name\":\"%s\",\"run\":\"fail\",\"count\":40}]}",
             name);
    t = spec_build_text(spec2, strlen(spec2), "t", 1, "home", NULL, &err);
    assert_non_null(t);
    for (int i = 1; i < t->nnodes; i++) {
        t->nodes[i].inc.life.end = END_EXITED;
        t->nodes[i].inc.life.exit_code = 1;
        tree_node_settle(t, &t->nodes[i], tree_node_final_status(&t->nodes[i]));
    }
    root = &t->nodes[0];
    root->inc.life.end = END_EXITED;
    root->inc.child_failed = true;
    tree_node_settle(t, root, tree_node_final_status(root));
    const char *msg = cJSON_GetObjectItem(root->inc.error, "message")->valuestring;
    assert_null(strstr(msg, "…"));
    const char *more = strstr(msg, " and 32 more");
    assert_non_null(more);
    assert_string_equal(more, " and 32 more");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root->inc.error, "failed")), 40);
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
        cmocka_unit_test(test_report_text),
        cmocka_unit_test(test_tail_is_bounded),
        cmocka_unit_test(test_phases_keep_time_order),
        cmocka_unit_test(test_error_from_stderr_tail),
        cmocka_unit_test(test_long_error_line_survives_the_tail),
        cmocka_unit_test(test_graft_remote_subtree),
        cmocka_unit_test(test_graft_adopts_children_started_there),
        cmocka_unit_test(test_children_failed_lists_every_failure),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
