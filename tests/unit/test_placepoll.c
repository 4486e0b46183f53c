/* placepoll: whether a placed subtree's supervisor is still there, from
 * the answers to the status polls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "placepoll.h"

#define EXPIRY 5000

/* Poll every PLACE_POLL_MS from t0, each answered "unknown_destination"
 * by the broker, until a verdict or t_end: the time of the verdict, or -1. */
static int64_t s_unregistered_until(placepoll_t *pp, int64_t *id, int64_t t0, int64_t t_end)
{
    for (int64_t t = t0; t <= t_end; t += PLACE_POLL_MS) {
        assert_int_equal(placepoll_sent(pp, ++*id, t, EXPIRY), PLACEPOLL_WAIT);
        assert_true(placepoll_is_poll(pp, *id));
        if (placepoll_error(pp, "unknown_destination", true, t + 1, EXPIRY) != PLACEPOLL_WAIT)
            return t;
    }
    return -1;
}

static void test_answered_polls_never_conclude(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    for (int64_t id = 1, t = 0; id < 1000; id++, t += PLACE_POLL_MS) {
        assert_int_equal(placepoll_sent(&pp, id, t, EXPIRY), PLACEPOLL_WAIT);
        placepoll_heard(&pp); /* its report (running) */
    }
    assert_int_equal(pp.unanswered, 0);
}

/* After a broker restart a live supervisor is unregistered for a moment:
 * lost only once that has lasted the broker's expiry and one poll more. */
static void test_unregistered_past_the_expiry_is_lost(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    int64_t id = 0;
    int64_t t0 = 100000;
    int64_t t = s_unregistered_until(&pp, &id, t0, t0 + 100000);
    assert_true(t >= t0 + EXPIRY + PLACE_POLL_MS); /* the first poll past it */
    assert_true(t < t0 + EXPIRY + 2 * PLACE_POLL_MS);
    assert_int_equal(placepoll_since(&pp, PLACEPOLL_UNREGISTERED), 100001);
}

static void test_registered_again_starts_afresh(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    int64_t id = 0;
    assert_int_equal(s_unregistered_until(&pp, &id, 0, EXPIRY), -1); /* not yet */
    /* It said hello: its answer (or an event of its) clears the absence. */
    assert_int_equal(placepoll_sent(&pp, ++id, EXPIRY + PLACE_POLL_MS, EXPIRY), PLACEPOLL_WAIT);
    placepoll_heard(&pp);
    assert_int_equal(placepoll_since(&pp, PLACEPOLL_UNREGISTERED), -1);
    /* A new absence is timed from its own first answer. */
    int64_t t0 = 60000;
    assert_int_equal(s_unregistered_until(&pp, &id, t0, t0 + EXPIRY), -1);
    assert_true(s_unregistered_until(&pp, &id, t0 + EXPIRY + PLACE_POLL_MS, t0 + 60000) >= 0);
}

/* The other supervisor answers that it has no such tree: it restarted. */
static void test_not_found_from_the_supervisor_is_gone(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    placepoll_sent(&pp, 7, 0, EXPIRY);
    assert_int_equal(placepoll_error(&pp, "not_found", false, 1, EXPIRY), PLACEPOLL_GONE);
    /* The broker never says not_found of a tree; and another error of
     * the supervisor's shows it is there. */
    placepoll_init(&pp);
    placepoll_sent(&pp, 8, 0, EXPIRY);
    assert_int_equal(placepoll_error(&pp, "not_found", true, 1, EXPIRY), PLACEPOLL_WAIT);
    placepoll_sent(&pp, 9, PLACE_POLL_MS, EXPIRY);
    assert_int_equal(placepoll_error(&pp, "bad_request", false, 1, EXPIRY), PLACEPOLL_WAIT);
}

static void test_only_the_last_poll_is_matched(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    assert_false(placepoll_is_poll(&pp, -1));
    assert_false(placepoll_is_poll(&pp, 3));
    placepoll_sent(&pp, 3, 0, EXPIRY);
    placepoll_sent(&pp, 4, PLACE_POLL_MS, EXPIRY);
    assert_false(placepoll_is_poll(&pp, 3));
    assert_true(placepoll_is_poll(&pp, 4));
    placepoll_heard(&pp);
    assert_false(placepoll_is_poll(&pp, 4)); /* answered */
}

/* No answer at all: lost after PLACE_POLL_MISSES polls in a row that
 * span the expiry and that many polls more. */
static void test_silence_is_lost_after_misses_past_the_expiry(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    int64_t t = 0, id = 0;
    placepoll_verdict_t v = PLACEPOLL_WAIT;
    for (; v == PLACEPOLL_WAIT && t < 100000; t += PLACE_POLL_MS)
        v = placepoll_sent(&pp, ++id, t, EXPIRY);
    t -= PLACE_POLL_MS;
    assert_int_equal(v, PLACEPOLL_SILENT);
    assert_true(pp.unanswered >= PLACE_POLL_MISSES);
    assert_int_equal(placepoll_since(&pp, PLACEPOLL_SILENT), 0);
    assert_true(t >= EXPIRY + PLACE_POLL_MISSES * PLACE_POLL_MS);
    assert_true(t < EXPIRY + (PLACE_POLL_MISSES + 1) * PLACE_POLL_MS);
}

/* Polls that could not leave (the broker unreachable) prove nothing, however
 * long that lasts; nor does "undeliverable" (the poll is sent again). */
static void test_unsent_and_undeliverable_polls_prove_nothing(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    for (int64_t t = 0; t < 600000; t += PLACE_POLL_MS)
        assert_int_equal(placepoll_sent(&pp, -1, t, EXPIRY), PLACEPOLL_WAIT);
    assert_int_equal(pp.unanswered, 0);
    placepoll_sent(&pp, 1, 600000, EXPIRY);
    assert_int_equal(placepoll_error(&pp, "undeliverable", true, 600001, EXPIRY), PLACEPOLL_WAIT);
    assert_true(placepoll_is_poll(&pp, 1)); /* still awaiting its answer */
    /* Other errors of the broker's are its own trouble: an answer, no verdict. */
    assert_int_equal(placepoll_error(&pp, "rate_limited", true, 600002, EXPIRY), PLACEPOLL_WAIT);
    assert_false(placepoll_is_poll(&pp, 1));
    assert_int_equal(pp.unanswered, 0);
}

/* Any answer breaks a silence: the count starts again. */
static void test_an_answer_breaks_the_silence(void **state)
{
    (void) state;
    placepoll_t pp;
    placepoll_init(&pp);
    int64_t t = 0, id = 0;
    for (int i = 0; i < PLACE_POLL_MISSES + 2; i++, t += PLACE_POLL_MS)
        assert_int_equal(placepoll_sent(&pp, ++id, t, 60000), PLACEPOLL_WAIT);
    assert_int_equal(placepoll_error(&pp, "unknown_destination", true, t, 60000), PLACEPOLL_WAIT);
    assert_int_equal(pp.unanswered, 0);
    assert_int_equal(placepoll_since(&pp, PLACEPOLL_SILENT), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answered_polls_never_conclude),
        cmocka_unit_test(test_unregistered_past_the_expiry_is_lost),
        cmocka_unit_test(test_registered_again_starts_afresh),
        cmocka_unit_test(test_not_found_from_the_supervisor_is_gone),
        cmocka_unit_test(test_only_the_last_poll_is_matched),
        cmocka_unit_test(test_silence_is_lost_after_misses_past_the_expiry),
        cmocka_unit_test(test_unsent_and_undeliverable_polls_prove_nothing),
        cmocka_unit_test(test_an_answer_breaks_the_silence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
