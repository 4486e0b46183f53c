/* dl: the deadlines of a teardown (the escalation ladder that uses them
 * is node.c's, tested in test_node.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "dl.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_orders_by_time),
        cmocka_unit_test(test_forget_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
