/* rate: the broker's per-peer token bucket, on a clock the test drives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rate.h"

static int s_take_all(rate_t *b, double per_s, double burst, int64_t now, int max)
{
    int n = 0;
    while (n < max && rate_take(b, per_s, burst, now))
        n++;
    return n;
}

static void test_new_bucket_is_full_then_empty(void **state)
{
    (void) state;
    rate_t b = {0};
    assert_int_equal(s_take_all(&b, 100, 100, 1000, 1000), 100);
    assert_false(rate_take(&b, 100, 100, 1000));
}

static void test_refills_at_the_rate_up_to_the_burst(void **state)
{
    (void) state;
    rate_t b = {0};
    s_take_all(&b, 100, 100, 0, 1000);
    /* 100 a second: 10 ms give one token, 250 ms give 25. */
    assert_int_equal(s_take_all(&b, 100, 100, 10, 1000), 1);
    assert_int_equal(s_take_all(&b, 100, 100, 260, 1000), 25);
    /* A long silence refills to the burst, not beyond. */
    assert_int_equal(s_take_all(&b, 100, 100, 100000, 1000), 100);
}

static void test_unlimited_and_clock_going_back(void **state)
{
    (void) state;
    rate_t b = {0};
    assert_int_equal(s_take_all(&b, 0, 0, 0, 5000), 5000);
    rate_t c = {0};
    s_take_all(&c, 10, 10, 1000, 100);
    /* A clock that does not move (or moves back) adds nothing. */
    assert_false(rate_take(&c, 10, 10, 900));
    assert_false(rate_take(&c, 10, 10, 1000));
    assert_true(rate_take(&c, 10, 10, 1100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_bucket_is_full_then_empty),
        cmocka_unit_test(test_refills_at_the_rate_up_to_the_burst),
        cmocka_unit_test(test_unlimited_and_clock_going_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
