/* strategy: what a parent does when a child ends — every strategy, every
 * restart type, and the restart intensity — rule by rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strategy.h"

static strat_parent_t s_parent(strategy_t strategy, int max_restarts)
{
    return (strat_parent_t){.strategy = strategy, .max_restarts = max_restarts,
                            .within_ms = 1000, .nchildren = 4};
}

static void test_without_restarts_a_failure_fails_the_parent(void **state)
{
    (void) state;
    strat_window_t w = {0};
    for (strategy_t s = STRAT_ONE_FOR_ALL; s <= STRAT_REST_FOR_ONE; s++) {
        strat_parent_t p = s_parent(s, 0);
        strat_decision_t d = strategy_on_child_end(&p, &w, 1, RESTART_TRANSIENT, true, 0);
        assert_int_equal(d.verdict, STRAT_FAIL_PARENT);
        assert_false(d.limit_hit);
        d = strategy_on_child_end(&p, &w, 1, RESTART_PERMANENT, true, 0);
        assert_int_equal(d.verdict, STRAT_FAIL_PARENT);
        /* Ending well stops nobody. */
        d = strategy_on_child_end(&p, &w, 1, RESTART_TRANSIENT, false, 0);
        assert_int_equal(d.verdict, STRAT_NOTHING);
        d = strategy_on_child_end(&p, &w, 1, RESTART_PERMANENT, false, 0);
        assert_int_equal(d.verdict, STRAT_NOTHING);
    }
    assert_int_equal(w.n, 0);
}

static void test_which_children_restart(void **state)
{
    (void) state;
    strat_window_t w = {0};
    strat_parent_t p = s_parent(STRAT_ONE_FOR_ONE, 10);
    strat_decision_t d = strategy_on_child_end(&p, &w, 2, RESTART_TRANSIENT, true, 0);
    assert_int_equal(d.verdict, STRAT_RESTART);
    assert_int_equal(d.first, 2);
    assert_int_equal(d.last, 2);
    p = s_parent(STRAT_REST_FOR_ONE, 10);
    d = strategy_on_child_end(&p, &w, 1, RESTART_TRANSIENT, true, 0);
    assert_int_equal(d.first, 1);
    assert_int_equal(d.last, 3); /* it and the ones started after it */
    p = s_parent(STRAT_ONE_FOR_ALL, 10);
    d = strategy_on_child_end(&p, &w, 2, RESTART_TRANSIENT, true, 0);
    assert_int_equal(d.first, 0);
    assert_int_equal(d.last, 3);
    strategy_window_clear(&w);
}

static void test_restart_types(void **state)
{
    (void) state;
    strat_window_t w = {0};
    strat_parent_t p = s_parent(STRAT_ONE_FOR_ONE, 10);
    /* transient: restarted when it failed, not when it ended well */
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_TRANSIENT, false, 0).verdict, STRAT_NOTHING);
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_TRANSIENT, true, 0).verdict, STRAT_RESTART);
    /* permanent: whenever it ends */
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_PERMANENT, false, 0).verdict, STRAT_RESTART);
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_PERMANENT, true, 0).verdict, STRAT_RESTART);
    /* temporary: never, and its failure stops nobody, under any strategy */
    for (strategy_t s = STRAT_ONE_FOR_ALL; s <= STRAT_REST_FOR_ONE; s++)
        for (int max = 0; max <= 1; max++) {
            strat_parent_t q = s_parent(s, max);
            assert_int_equal(strategy_on_child_end(&q, &w, 0, RESTART_TEMPORARY, true, 0).verdict,
                             STRAT_NOTHING);
            assert_false(strategy_fails_parent_early(&q, RESTART_TEMPORARY));
        }
    strategy_window_clear(&w);
}

/* permanent and transient under every restarting strategy: which end
 * restarts, and which children go with it. */
static void test_restart_types_under_every_strategy(void **state)
{
    (void) state;
    static const struct {
        strategy_t strategy;
        int first, last; /* for child 1 of 4 */
    } cases[] = {{STRAT_ONE_FOR_ALL, 0, 3}, {STRAT_ONE_FOR_ONE, 1, 1}, {STRAT_REST_FOR_ONE, 1, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strat_window_t w = {0};
        strat_parent_t p = s_parent(cases[i].strategy, 10);
        for (int failed = 0; failed <= 1; failed++) {
            strat_decision_t d = strategy_on_child_end(&p, &w, 1, RESTART_PERMANENT, failed, 0);
            assert_int_equal(d.verdict, STRAT_RESTART); /* whenever it ends */
            assert_int_equal(d.first, cases[i].first);
            assert_int_equal(d.last, cases[i].last);
        }
        assert_int_equal(strategy_on_child_end(&p, &w, 1, RESTART_TRANSIENT, false, 0).verdict,
                         STRAT_NOTHING);
        strat_decision_t d = strategy_on_child_end(&p, &w, 1, RESTART_TRANSIENT, true, 0);
        assert_int_equal(d.verdict, STRAT_RESTART);
        assert_int_equal(d.first, cases[i].first);
        assert_int_equal(d.last, cases[i].last);
        assert_int_equal(w.n, 3);
        /* Permanent children that keep ending use up the intensity too. */
        p.max_restarts = 3;
        d = strategy_on_child_end(&p, &w, 1, RESTART_PERMANENT, false, 0);
        assert_int_equal(d.verdict, STRAT_FAIL_PARENT);
        assert_true(d.limit_hit);
        strategy_window_clear(&w);
    }
}

static void test_stopping_parent_restarts_nothing(void **state)
{
    (void) state;
    strat_window_t w = {0};
    strat_parent_t p = s_parent(STRAT_ONE_FOR_ONE, 10);
    p.stopping = true;
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_PERMANENT, true, 0).verdict, STRAT_NOTHING);
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_TRANSIENT, true, 0).verdict, STRAT_NOTHING);
    assert_false(strategy_fails_parent_early(&p, RESTART_TRANSIENT));
    assert_int_equal(w.n, 0);
}

static void test_early_failure(void **state)
{
    (void) state;
    /* Where no restart can follow, a reported error fails the parent at
     * once; where one may, it is decided at the child's exit. */
    strat_parent_t p = s_parent(STRAT_ONE_FOR_ALL, 0);
    assert_true(strategy_fails_parent_early(&p, RESTART_TRANSIENT));
    assert_true(strategy_fails_parent_early(&p, RESTART_PERMANENT));
    p = s_parent(STRAT_ONE_FOR_ONE, 3);
    assert_false(strategy_fails_parent_early(&p, RESTART_TRANSIENT));
}

static void test_intensity(void **state)
{
    (void) state;
    strat_window_t w = {0};
    strat_parent_t p = s_parent(STRAT_ONE_FOR_ONE, 2); /* 2 restarts per 1000 ms */
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_TRANSIENT, true, 0).verdict, STRAT_RESTART);
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_TRANSIENT, true, 500).verdict, STRAT_RESTART);
    strat_decision_t d = strategy_on_child_end(&p, &w, 0, RESTART_TRANSIENT, true, 900);
    assert_int_equal(d.verdict, STRAT_FAIL_PARENT);
    assert_true(d.limit_hit);
    /* Restarts older than within_ms no longer count. */
    assert_int_equal(strategy_on_child_end(&p, &w, 0, RESTART_TRANSIENT, true, 1100).verdict, STRAT_RESTART);
    assert_int_equal(w.n, 2); /* only the last max_restarts times are kept */
    strategy_window_clear(&w);
    assert_null(w.at);
}

static void test_names(void **state)
{
    (void) state;
    assert_int_equal(restart_parse("temporary"), RESTART_TEMPORARY);
    assert_int_equal(restart_parse("Permanent"), -1);
    assert_int_equal(restart_parse(NULL), -1);
    assert_string_equal(restart_name(RESTART_TRANSIENT), "transient");
    assert_string_equal(strategy_name(STRAT_REST_FOR_ONE), "rest_for_one");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_restarts_a_failure_fails_the_parent),
        cmocka_unit_test(test_which_children_restart),
        cmocka_unit_test(test_restart_types),
        cmocka_unit_test(test_restart_types_under_every_strategy),
        cmocka_unit_test(test_stopping_parent_restarts_nothing),
        cmocka_unit_test(test_early_failure),
        cmocka_unit_test(test_intensity),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
