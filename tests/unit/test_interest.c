/* interest: which tree topics a supervisor sends events on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "interest.h"

static int s_apply(interest_t *in, const char *json)
{
    cJSON *body = cJSON_Parse(json);
    assert_non_null(body);
    int rc = interest_apply(in, body);
    cJSON_Delete(body);
    return rc;
}

static void test_everything_until_the_first_snapshot(void **state)
{
    (void) state;
    interest_t *in = interest_new();
    assert_true(interest_wanted(in, "a"));
    /* Changes alone (an old snapshot lost) do not make it selective. */
    assert_int_equal(s_apply(in, "{\"snapshot\":false,\"added\":[\"tree/b\"],\"removed\":[]}"), 0);
    assert_true(interest_wanted(in, "a"));
    assert_int_equal(s_apply(in, "{\"snapshot\":true,\"added\":[\"tree/b\"],\"removed\":[]}"), 0);
    assert_false(interest_wanted(in, "a"));
    assert_true(interest_wanted(in, "b"));
    interest_destroy(&in);
    assert_null(in);
}

static void test_changes_and_the_all_topic(void **state)
{
    (void) state;
    interest_t *in = interest_new();
    s_apply(in, "{\"snapshot\":true,\"added\":[],\"removed\":[]}");
    assert_false(interest_wanted(in, "a"));
    s_apply(in, "{\"snapshot\":false,\"added\":[\"tree/a\",\"tree/a\"],\"removed\":[]}");
    assert_true(interest_wanted(in, "a"));
    assert_int_equal(interest_size(in), 1);
    s_apply(in, "{\"snapshot\":false,\"added\":[\"tree/\"],\"removed\":[\"tree/a\"]}");
    assert_true(interest_wanted(in, "a")); /* a watcher of every tree */
    assert_true(interest_wanted(in, "z"));
    s_apply(in, "{\"snapshot\":false,\"added\":[],\"removed\":[\"tree/\",\"tree/never\"]}");
    assert_false(interest_wanted(in, "a"));
    /* A new snapshot replaces everything. */
    s_apply(in, "{\"snapshot\":false,\"added\":[\"tree/x\"],\"removed\":[]}");
    s_apply(in, "{\"snapshot\":true,\"added\":[\"tree/y\"],\"removed\":[]}");
    assert_false(interest_wanted(in, "x"));
    assert_true(interest_wanted(in, "y"));
    interest_destroy(&in);
}

static void test_malformed_changes_nothing(void **state)
{
    (void) state;
    interest_t *in = interest_new();
    s_apply(in, "{\"snapshot\":true,\"added\":[\"tree/a\"],\"removed\":[]}");
    assert_int_equal(s_apply(in, "{\"snapshot\":true,\"added\":\"tree/b\"}"), -1);
    assert_int_equal(s_apply(in, "{\"snapshot\":true,\"added\":[1],\"removed\":[]}"), -1);
    assert_int_equal(s_apply(in, "{\"snapshot\":true}"), -1);
    assert_int_equal(s_apply(in, "{\"snapshot\":true,\"added\":[],\"removed\":{}}"), -1);
    assert_true(interest_wanted(in, "a"));
    assert_false(interest_wanted(in, "b"));
    interest_destroy(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everything_until_the_first_snapshot),
        cmocka_unit_test(test_changes_and_the_all_topic),
        cmocka_unit_test(test_malformed_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
