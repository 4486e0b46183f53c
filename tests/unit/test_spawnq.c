/* spawnq: the queue of nodes waiting to be forked, and the spawn-rate
 * token bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spawnq.h"

static void test_fifo_grows(void **state)
{
    (void) state;
    spawnq_t *q = spawnq_new(1000);
    spawnq_item_t it;
    assert_false(spawnq_peek(q, &it));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(spawnq_push(q, (spawnq_item_t){1, i}), 0);
    for (int i = 0; i < 500; i++) {
        assert_true(spawnq_peek(q, &it));
        assert_int_equal(it.idx, i);
        spawnq_pop(q);
    }
    for (int i = 1000; i < 1200; i++) /* wraps around, then grows again */
        assert_int_equal(spawnq_push(q, (spawnq_item_t){2, i}), 0);
    assert_int_equal(spawnq_size(q), 700);
    for (int i = 500; i < 1200; i++) {
        assert_true(spawnq_peek(q, &it));
        assert_int_equal(it.idx, i);
        spawnq_pop(q);
    }
    assert_int_equal(spawnq_size(q), 0);
    spawnq_pop(q); /* popping an empty queue is harmless */
    spawnq_destroy(&q);
    assert_null(q);
}

static void test_token_bucket(void **state)
{
    (void) state;
    spawnq_t *q = spawnq_new(100); /* 100/s, bursts of 10 */
    int64_t wait = -1, now = 1000000;
    for (int i = 0; i < 10; i++)
        assert_true(spawnq_take_token(q, now, &wait));
    assert_false(spawnq_take_token(q, now, &wait));
    assert_true(wait >= 1 && wait <= 11); /* the next token in ~10 ms */
    assert_true(spawnq_take_token(q, now + 10000, &wait));
    /* A long pause refills only up to the burst. */
    now += 60 * 1000000LL;
    int taken = 0;
    while (spawnq_take_token(q, now, &wait))
        taken++;
    assert_int_equal(taken, 10);
    spawnq_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_grows),
        cmocka_unit_test(test_token_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
