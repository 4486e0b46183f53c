/* node: the lifecycle of one node's process, transition by transition.
 * Each test drives a node_life_t through node_step and checks the state it
 * reaches and exactly the actions the supervisor is asked to carry out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "node.h"

static const node_conf_t builtin = {.grace_ms = 200, .kill_after_ms = 300, .speaks_first = true};
static const node_conf_t program = {.grace_ms = 200, .kill_after_ms = 300, .speaks_first = false};
static const node_conf_t parent = {.grace_ms = 200, .kill_after_ms = 300, .has_children = true,
                                   .speaks_first = true};

static unsigned s_step(node_life_t *l, const node_conf_t *c, node_event_kind_t kind, node_out_t *out)
{
    return node_step(l, c, (node_event_t){.kind = kind}, out);
}

/* A node that is forked and has no children (they "ended" at once). */
static node_life_t s_running(const node_conf_t *c)
{
    node_life_t l;
    node_out_t out;
    node_life_reset(&l);
    s_step(&l, c, NEV_REQUESTED, &out);
    s_step(&l, c, NEV_SPAWNED, &out);
    if (!c->has_children)
        s_step(&l, c, NEV_CHILDREN_ENDED, &out);
    return l;
}

static void test_pending_to_running(void **state)
{
    (void) state;
    node_life_t l;
    node_out_t out;
    node_life_reset(&l);
    assert_int_equal(l.state, NODE_PENDING);
    assert_int_equal(s_step(&l, &builtin, NEV_REQUESTED, &out), 0);
    assert_int_equal(l.state, NODE_REQUESTED);
    assert_int_equal(s_step(&l, &builtin, NEV_SPAWNED, &out), NA_START_CHILDREN);
    assert_int_equal(l.state, NODE_RUNNING);
    /* A leaf's children "end" at once: nothing to tell a node without any. */
    assert_int_equal(s_step(&l, &builtin, NEV_CHILDREN_ENDED, &out), 0);
    assert_true(l.children_ended);
}

static void test_stop_before_it_started(void **state)
{
    (void) state;
    node_life_t l;
    node_out_t out;
    node_life_reset(&l);
    assert_int_equal(s_step(&l, &builtin, NEV_STOP, &out), NA_STOP_CHILDREN | NA_SETTLE | NA_RELEASE);
    assert_int_equal(l.state, NODE_DONE);
    assert_true(l.stop);
    assert_int_equal(l.end, END_NONE); /* never started: cancelled, by the status rule */
}

static void test_stop_while_requested_waits_for_the_fork(void **state)
{
    (void) state;
    node_life_t l;
    node_out_t out;
    node_life_reset(&l);
    s_step(&l, &builtin, NEV_REQUESTED, &out);
    assert_int_equal(s_step(&l, &builtin, NEV_STOP, &out), NA_STOP_CHILDREN);
    assert_int_equal(l.state, NODE_REQUESTED);
    /* Forked: it is stopped at once, and told so. */
    assert_int_equal(s_step(&l, &builtin, NEV_SPAWNED, &out),
                     NA_START_CHILDREN | NA_STOP_CHILDREN | NA_TELL_CANCEL);
    assert_int_equal(l.state, NODE_STOPPING);
    assert_int_equal(s_step(&l, &builtin, NEV_CHILDREN_ENDED, &out), NA_ARM);
    assert_int_equal(l.state, NODE_GRACE);
    assert_int_equal(out.deadline_ms, 200);
}

static void test_spawn_failed(void **state)
{
    (void) state;
    node_life_t l;
    node_out_t out;
    node_life_reset(&l);
    s_step(&l, &builtin, NEV_REQUESTED, &out);
    assert_int_equal(s_step(&l, &builtin, NEV_SPAWN_FAILED, &out),
                     NA_STOP_CHILDREN | NA_SETTLE | NA_RELEASE);
    assert_int_equal(l.end, END_SPAWN_FAILED);
    assert_int_equal(l.state, NODE_DONE);
    /* A late fork-server message changes nothing. */
    assert_int_equal(s_step(&l, &builtin, NEV_SPAWNED, &out), 0);
}

static void test_builtin_cancel_is_a_message_then_the_ladder(void **state)
{
    (void) state;
    node_life_t l = s_running(&builtin);
    node_out_t out;
    assert_int_equal(s_step(&l, &builtin, NEV_STOP, &out),
                     NA_STOP_CHILDREN | NA_TELL_CANCEL | NA_ARM);
    assert_int_equal(l.state, NODE_GRACE);
    assert_int_equal(out.deadline_kind, DL_ESCALATE);
    assert_int_equal(out.deadline_ms, 200); /* grace_ms */
    assert_int_equal(s_step(&l, &builtin, NEV_STOP, &out), 0); /* told once */
    assert_int_equal(s_step(&l, &builtin, NEV_DEADLINE, &out),
                     NA_PHASE_TERM_SENT | NA_SIGTERM | NA_ARM);
    assert_int_equal(l.state, NODE_TERM);
    assert_int_equal(out.deadline_ms, 300); /* kill_after_ms */
    assert_int_equal(s_step(&l, &builtin, NEV_DEADLINE, &out),
                     NA_PHASE_KILL_SENT | NA_SIGKILL | NA_ARM);
    assert_int_equal(l.state, NODE_KILL);
    assert_int_equal(out.deadline_ms, ESC_REAP_MS);
    assert_int_equal(l.escalated, SIGKILL);
    /* It exits of the SIGKILL. */
    node_event_t ev = {.kind = NEV_EXITED, .wait_status = SIGKILL};
    assert_int_equal(node_step(&l, &builtin, ev, &out),
                     NA_PHASE_EXITED | NA_STOP_CHILDREN | NA_SETTLE | NA_RELEASE);
    assert_int_equal(l.exit_signal, SIGKILL);
    assert_int_equal(l.end, END_EXITED);
}

static void test_survivor_of_sigkill_is_lost(void **state)
{
    (void) state;
    node_life_t l = s_running(&builtin);
    node_out_t out;
    s_step(&l, &builtin, NEV_STOP, &out);
    s_step(&l, &builtin, NEV_DEADLINE, &out);
    s_step(&l, &builtin, NEV_DEADLINE, &out);
    assert_int_equal(s_step(&l, &builtin, NEV_DEADLINE, &out),
                     NA_STOP_CHILDREN | NA_SETTLE | NA_RELEASE);
    assert_int_equal(l.end, END_LOST);
    /* There is no step after giving up: every wait has an end. */
    assert_int_equal(s_step(&l, &builtin, NEV_DEADLINE, &out), 0);
    node_event_t ev = {.kind = NEV_EXITED, .wait_status = SIGKILL};
    assert_int_equal(node_step(&l, &builtin, ev, &out), 0);
}

static void test_silent_program_is_cancelled_by_sigterm(void **state)
{
    (void) state;
    node_life_t l = s_running(&program);
    node_out_t out;
    assert_int_equal(s_step(&l, &program, NEV_STOP, &out), NA_STOP_CHILDREN | NA_SIGTERM | NA_ARM);
    assert_true(l.cancel_by_sigterm);
    assert_int_equal(l.escalated, 0); /* its cancel, not an escalation */
    node_event_t ev = {.kind = NEV_EXITED, .wait_status = SIGTERM};
    node_step(&l, &program, ev, &out);
    assert_int_equal(l.exit_signal, SIGTERM);
}

static void test_program_that_spoke_is_cancelled_like_a_builtin(void **state)
{
    (void) state;
    node_life_t l = s_running(&program);
    node_out_t out;
    assert_int_equal(s_step(&l, &program, NEV_HEARD, &out), 0);
    assert_true(l.heard);
    assert_int_equal(s_step(&l, &program, NEV_STOP, &out),
                     NA_STOP_CHILDREN | NA_TELL_CANCEL | NA_ARM);
    assert_false(l.cancel_by_sigterm);
}

static void test_program_heard_while_stopping_gets_the_cancel(void **state)
{
    (void) state;
    node_life_t l = s_running(&(node_conf_t){.grace_ms = 200, .kill_after_ms = 300,
                                             .has_children = true});
    node_conf_t c = {.grace_ms = 200, .kill_after_ms = 300, .has_children = true};
    node_out_t out;
    assert_int_equal(s_step(&l, &c, NEV_STOP, &out), NA_STOP_CHILDREN);
    assert_int_equal(l.state, NODE_STOPPING); /* its children are ending */
    assert_int_equal(s_step(&l, &c, NEV_HEARD, &out), NA_TELL_CANCEL);
    assert_int_equal(s_step(&l, &c, NEV_CHILDREN_ENDED, &out), NA_TELL_CHILDREN_EXITED | NA_ARM);
    assert_int_equal(l.state, NODE_GRACE);
}

static void test_parent_is_told_its_children_ended(void **state)
{
    (void) state;
    node_life_t l = s_running(&parent);
    node_out_t out;
    assert_int_equal(s_step(&l, &parent, NEV_CHILDREN_ENDED, &out), NA_TELL_CHILDREN_EXITED);
    assert_int_equal(l.state, NODE_RUNNING); /* it decides when to exit */
    assert_int_equal(s_step(&l, &parent, NEV_CHILDREN_ENDED, &out), 0); /* told once */
    /* A program that has not spoken is told once it does. */
    node_conf_t silent = parent;
    silent.speaks_first = false;
    node_life_t m = s_running(&silent);
    assert_int_equal(s_step(&m, &silent, NEV_CHILDREN_ENDED, &out), 0);
    assert_int_equal(s_step(&m, &silent, NEV_HEARD, &out), NA_TELL_CHILDREN_EXITED);
}

static void test_exit_by_itself(void **state)
{
    (void) state;
    node_life_t l = s_running(&builtin);
    node_out_t out;
    node_event_t ev = {.kind = NEV_EXITED, .wait_status = 3 << 8};
    assert_int_equal(node_step(&l, &builtin, ev, &out),
                     NA_PHASE_EXITED | NA_STOP_CHILDREN | NA_SETTLE | NA_RELEASE);
    assert_int_equal(l.exit_code, 3);
    assert_int_equal(l.exit_signal, 0);
    assert_false(l.stop);
    assert_int_equal(s_step(&l, &builtin, NEV_STOP, &out), 0); /* done is done */
}

static void test_fork_server_death(void **state)
{
    (void) state;
    node_life_t l = s_running(&builtin);
    node_out_t out;
    assert_int_equal(s_step(&l, &builtin, NEV_LOST, &out), NA_STOP_CHILDREN | NA_SETTLE | NA_RELEASE);
    assert_int_equal(l.end, END_LOST);
    node_life_t p;
    node_life_reset(&p); /* never started: not lost, cancelled */
    s_step(&p, &builtin, NEV_LOST, &out);
    assert_int_equal(p.end, END_NONE);
    assert_true(p.stop);
}

static void test_placed_node(void **state)
{
    (void) state;
    node_life_t l;
    node_out_t out;
    node_life_reset(&l);
    s_step(&l, &parent, NEV_REQUESTED, &out);
    assert_int_equal(s_step(&l, &parent, NEV_STOP, &out), NA_STOP_CHILDREN);
    assert_int_equal(s_step(&l, &parent, NEV_PLACED, &out), NA_TELL_CANCEL);
    assert_int_equal(l.state, NODE_REMOTE);
    assert_int_equal(s_step(&l, &parent, NEV_STOP, &out), 0); /* cancelled there once */
    assert_int_equal(s_step(&l, &parent, NEV_LOST, &out), 0); /* our fork-server has none of it */
    node_event_t ev = {.kind = NEV_REMOTE_ENDED, .status = 4};
    assert_int_equal(node_step(&l, &parent, ev, &out), NA_SETTLE | NA_RELEASE);
    assert_int_equal(l.state, NODE_DONE);
}

static void test_new_incarnation_starts_clean(void **state)
{
    (void) state;
    node_life_t l = s_running(&program);
    node_out_t out;
    s_step(&l, &program, NEV_HEARD, &out);
    s_step(&l, &program, NEV_STOP, &out);
    s_step(&l, &program, NEV_DEADLINE, &out);
    node_step(&l, &program, (node_event_t){.kind = NEV_EXITED, .wait_status = 1 << 8}, &out);
    node_life_reset(&l);
    node_life_t zero;
    memset(&zero, 0, sizeof zero);
    zero.state = NODE_PENDING;
    assert_memory_equal(&l, &zero, sizeof l);
}

static void test_names(void **state)
{
    (void) state;
    assert_string_equal(node_state_name(NODE_GRACE), "grace");
    assert_string_equal(node_state_name(NODE_DONE), "done");
    assert_true(node_state_alive(NODE_KILL));
    assert_false(node_state_alive(NODE_REQUESTED));
    assert_false(node_state_alive(NODE_REMOTE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_to_running),
        cmocka_unit_test(test_stop_before_it_started),
        cmocka_unit_test(test_stop_while_requested_waits_for_the_fork),
        cmocka_unit_test(test_spawn_failed),
        cmocka_unit_test(test_builtin_cancel_is_a_message_then_the_ladder),
        cmocka_unit_test(test_survivor_of_sigkill_is_lost),
        cmocka_unit_test(test_silent_program_is_cancelled_by_sigterm),
        cmocka_unit_test(test_program_that_spoke_is_cancelled_like_a_builtin),
        cmocka_unit_test(test_program_heard_while_stopping_gets_the_cancel),
        cmocka_unit_test(test_parent_is_told_its_children_ended),
        cmocka_unit_test(test_exit_by_itself),
        cmocka_unit_test(test_fork_server_death),
        cmocka_unit_test(test_placed_node),
        cmocka_unit_test(test_new_incarnation_starts_clean),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
