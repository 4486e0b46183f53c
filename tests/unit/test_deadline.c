/* dl and esc: the deadlines of a teardown, and the escalation ladder
 * cancel -> SIGTERM -> SIGKILL -> lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "dl.h"
#include "esc.h"

static void test_heap_orders_by_time(void **state)
{
    (void) state;
    dl_heap_t *h = dl_new();
    int64_t whens[] = {50, 10, 40, 10, 30, 20, 60};
    for (int i = 0; i < 7; i++)
        assert_int_equal(dl_push(h, (dl_entry_t){.when = whens[i], .node = i}), 0);
    assert_int_equal(dl_next_in(h, 0), 10);
    dl_entry_t e;
    assert_false(dl_pop_due(h, 9, &e)); /* nothing due yet */
    int64_t last = 0;
    int popped = 0;
    while (dl_pop_due(h, 100, &e)) {
        assert_true(e.when >= last);
        last = e.when;
        popped++;
    }
    assert_int_equal(popped, 7);
    assert_int_equal(dl_next_in(h, 0), -1);
    dl_destroy(&h);
    assert_null(h);
}

static void test_forget_tree(void **state)
{
    (void) state;
    dl_heap_t *h = dl_new();
    for (int i = 0; i < 100; i++)
        dl_push(h, (dl_entry_t){.when = 100 - i, .serial = (uint64_t) (i % 3)});
    dl_forget_tree(h, 1);
    assert_int_equal(dl_size(h), 67);
    dl_entry_t e;
    int64_t last = 0;
    while (dl_pop_due(h, 1000, &e)) {
        assert_int_not_equal(e.serial, 1);
        assert_true(e.when >= last);
        last = e.when;
    }
    dl_destroy(&h);
}

static void test_escalation_ladder(void **state)
{
    (void) state;
    tree_node_t n;
    memset(&n, 0, sizeof n);
    n.grace_ms = 200;
    n.kill_after_ms = 300;
    int64_t next = -1;
    assert_int_equal(esc_advance(&n, &next), ESC_SEND_TERM);
    assert_int_equal(next, 300); /* SIGTERM -> SIGKILL: kill_after_ms */
    assert_int_equal(esc_advance(&n, &next), ESC_SEND_KILL);
    assert_int_equal(next, ESC_REAP_MS);
    assert_int_equal(esc_advance(&n, &next), ESC_GIVE_UP);
    /* There is no step after giving up: every wait has an end. */
    assert_int_equal(esc_advance(&n, &next), ESC_GIVE_UP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_orders_by_time),
        cmocka_unit_test(test_forget_tree),
        cmocka_unit_test(test_escalation_ladder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
