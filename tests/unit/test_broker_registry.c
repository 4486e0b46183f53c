/* registry: peers, their incarnations, and expiry on an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "registry.h"

static void test_hello_join_refresh_replace(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    reg_peer_t old;
    assert_int_equal(reg_hello(reg, "sup1", "supervisor", "aaaa", 1000, &old), REG_JOINED);
    reg_peer_t *p = reg_lookup(reg, "sup1");
    assert_non_null(p);
    assert_string_equal(p->role, "supervisor");
    assert_int_equal(p->joined_ms, 1000);
    /* Same incarnation: a repeated hello refreshes. */
    assert_int_equal(reg_hello(reg, "sup1", "supervisor", "aaaa", 2000, &old), REG_REFRESHED);
    assert_int_equal(p->last_seen_ms, 2000);
    assert_int_equal(p->joined_ms, 1000);
    /* New incarnation: the peer restarted; the old one is handed back. */
    assert_int_equal(reg_hello(reg, "sup1", "supervisor", "bbbb", 3000, &old), REG_REPLACED);
    assert_string_equal(old.incarnation, "aaaa");
    assert_string_equal(reg_lookup(reg, "sup1")->incarnation, "bbbb");
    assert_int_equal(reg_size(reg), 1);
    reg_destroy(&reg);
    assert_null(reg);
}

static void test_hello_rejects_bad_input(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    assert_int_equal(reg_hello(reg, "bad name", "client", "x", 0, NULL), -1);
    assert_int_equal(reg_hello(reg, "ok", "king", "x", 0, NULL), -1);
    assert_int_equal(reg_hello(reg, "ok", "client", "", 0, NULL), -1);
    assert_int_equal(reg_hello(reg, "ok", "client", "has space", 0, NULL), -1);
    /* Workers are not peers: they report over their notify fd. */
    assert_int_equal(reg_hello(reg, "sup1.t.1", "worker", "x", 0, NULL), -1);
    assert_int_equal(reg_size(reg), 0);
    assert_true(reg_role_valid("client"));
    assert_true(reg_role_valid("supervisor"));
    assert_false(reg_role_valid("worker"));
    assert_false(reg_role_valid(NULL));
    char inc[REG_INCARNATION_MAX + 2];
    memset(inc, 'i', sizeof inc - 1);
    inc[sizeof inc - 1] = 0;
    assert_false(reg_incarnation_valid(inc));
    inc[REG_INCARNATION_MAX] = 0;
    assert_true(reg_incarnation_valid(inc));
    reg_destroy(&reg);
}

static void test_touch_and_remove(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    reg_hello(reg, "a", "client", "1", 100, NULL);
    reg_peer_t *p = reg_lookup(reg, "a");
    reg_touch(p, 500);
    assert_int_equal(p->last_seen_ms, 500);
    reg_touch(p, 400); /* never backwards */
    assert_int_equal(p->last_seen_ms, 500);
    reg_peer_t gone;
    assert_int_equal(reg_remove(reg, "a", &gone), 0);
    assert_string_equal(gone.name, "a");
    assert_null(reg_lookup(reg, "a"));
    assert_int_equal(reg_remove(reg, "a", NULL), -1);
    reg_destroy(&reg);
}

typedef struct {
    int n;
    char names[8][ENV_NAME_MAX + 1];
} s_seen_t;

static void s_expired(const reg_peer_t *peer, void *arg)
{
    s_seen_t *seen = arg;
    snprintf(seen->names[seen->n++], sizeof seen->names[0], "%s", peer->name);
}

static void test_expiry_on_injected_clock(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    reg_hello(reg, "quiet", "client", "1", 1000, NULL);
    reg_hello(reg, "chatty", "client", "1", 1000, NULL);
    s_seen_t seen = {0};
    /* expiry 5000: alive until 5999 ms of silence. */
    assert_int_equal(reg_expire(reg, 5999, 5000, s_expired, &seen), 0);
    reg_touch(reg_lookup(reg, "chatty"), 5999);
    assert_int_equal(reg_expire(reg, 6000, 5000, s_expired, &seen), 1);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.names[0], "quiet");
    assert_null(reg_lookup(reg, "quiet"));
    assert_non_null(reg_lookup(reg, "chatty"));
    assert_int_equal(reg_expire(reg, 10999, 5000, s_expired, &seen), 1);
    assert_int_equal(reg_size(reg), 0);
    assert_int_equal(reg_expire(reg, 99999, 5000, NULL, NULL), 0);
    reg_destroy(&reg);
}

static void test_names_sorted_and_roles(void **state)
{
    (void) state;
    reg_t *reg = reg_new();
    reg_hello(reg, "zed", "client", "1", 0, NULL);
    reg_hello(reg, "alpha", "supervisor", "1", 0, NULL);
    reg_hello(reg, "mid", "client", "1", 0, NULL);
    zlistx_t *names = reg_names(reg);
    assert_string_equal(zlistx_first(names), "alpha");
    assert_string_equal(zlistx_next(names), "mid");
    assert_string_equal(zlistx_next(names), "zed");
    zlistx_destroy(&names);
    assert_int_equal(reg_count_role(reg, "client"), 2);
    assert_int_equal(reg_count_role(reg, "supervisor"), 1);
    assert_int_equal(reg_count_role(reg, "king"), 0);
    reg_destroy(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_join_refresh_replace),
        cmocka_unit_test(test_hello_rejects_bad_input),
        cmocka_unit_test(test_touch_and_remove),
        cmocka_unit_test(test_expiry_on_injected_clock),
        cmocka_unit_test(test_names_sorted_and_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
