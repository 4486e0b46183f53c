/* creds: "user" and "group" of an exec'd node resolved by the supervisor,
 * so that the static fork-server looks up no name (supervisor/creds.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "creds.h"

static cJSON *s_resolve_at(creds_t *creds, const char *spec_text, int64_t now_ms)
{
    cJSON *spec = cJSON_Parse(spec_text);
    assert_non_null(spec);
    cJSON *c = creds_resolve(creds, spec, now_ms);
    cJSON_Delete(spec);
    return c;
}

/* A fresh lookup each time (a new cache). */
static cJSON *s_resolve(const char *spec_text)
{
    creds_t *creds = creds_new();
    cJSON *c = s_resolve_at(creds, spec_text, 0);
    creds_destroy(&creds);
    assert_null(creds);
    return c;
}

static double s_num(const cJSON *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(c, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool s_has_group(const cJSON *c, double gid)
{
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(c, "groups"))
    {
        if (g->valuedouble == gid)
            return true;
    }
    return false;
}

/* Neither user nor group: nothing to resolve, nothing in the payload. */
static void test_no_ids(void **state)
{
    (void) state;
    assert_null(s_resolve("{\"run\":\"exec\",\"argv\":[\"true\"]}"));
}

/* A user by name or by number: its ids, groups, home and name. */
static void test_user_by_name_and_number(void **state)
{
    (void) state;
    const char *specs[] = {"{\"user\":\"root\"}", "{\"user\":0}", "{\"user\":\"0\"}"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        cJSON *c = s_resolve(specs[i]);
        assert_non_null(c);
        assert_null(cJSON_GetObjectItem(c, "errno"));
        assert_int_equal(s_num(c, "uid"), 0);
        assert_int_equal(s_num(c, "gid"), 0);
        assert_true(s_has_group(c, 0));
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(c, "home")), "/root");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(c, "name")), "root");
        cJSON_Delete(c);
    }
}

/* "group" overrides the user's primary group; alone it sets only gids. */
static void test_group(void **state)
{
    (void) state;
    cJSON *c = s_resolve("{\"user\":\"root\",\"group\":4242}");
    assert_int_equal(s_num(c, "gid"), 4242);
    assert_true(s_has_group(c, 4242));
    cJSON_Delete(c);
    c = s_resolve("{\"group\":\"root\"}");
    assert_null(cJSON_GetObjectItem(c, "uid"));
    assert_int_equal(s_num(c, "gid"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "groups")), 1);
    assert_null(cJSON_GetObjectItem(c, "home"));
    cJSON_Delete(c);
}

/* What does not resolve travels as the child's spawn failure, with the
 * words the node's error has always had. */
static void test_unresolved(void **state)
{
    (void) state;
    struct {
        const char *spec, *words;
    } cases[] = {
        {"{\"user\":\"no-such-user-arbor\"}", "user \"no-such-user-arbor\" does not exist"},
        {"{\"group\":\"no-such-group-arbor\"}", "group \"no-such-group-arbor\" does not exist"},
        {"{\"user\":4242424}", "user 4242424 has no passwd entry: give \"group\" too"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *c = s_resolve(cases[i].spec);
        assert_non_null(c);
        assert_true(s_num(c, "errno") > 0);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(c, "what")), cases[i].words);
        assert_null(cJSON_GetObjectItem(c, "uid"));
        cJSON_Delete(c);
    }
    /* A numeric user without a passwd entry runs when "group" is given. */
    cJSON *c = s_resolve("{\"user\":4242424,\"group\":7}");
    assert_int_equal(s_num(c, "uid"), 4242424);
    assert_int_equal(s_num(c, "gid"), 7);
    assert_null(cJSON_GetObjectItem(c, "home"));
    cJSON_Delete(c);
}

/* An answer is reused for the same names within CREDS_TTL_MS, as a copy
 * the caller owns; other names, or later, are looked up again. */
static void test_answers_reused_briefly(void **state)
{
    (void) state;
    creds_t *creds = creds_new();
    cJSON *a = s_resolve_at(creds, "{\"user\":\"root\"}", 1000);
    cJSON *b = s_resolve_at(creds, "{\"user\":\"root\",\"argv\":[\"x\"]}", 1500);
    assert_true(a != b && cJSON_Compare(a, b, true));
    cJSON_Delete(a); /* each its own copy */
    cJSON *c = s_resolve_at(creds, "{\"user\":\"root\",\"group\":7}", 1600);
    assert_int_equal(s_num(c, "gid"), 7); /* not the cached answer */
    cJSON *d = s_resolve_at(creds, "{\"user\":\"root\"}", 1700);
    assert_int_equal(s_num(d, "gid"), 0);
    cJSON *e = s_resolve_at(creds, "{\"user\":\"no-such-user-arbor\"}", 1800);
    cJSON *f = s_resolve_at(creds, "{\"user\":\"no-such-user-arbor\"}", 1800 + CREDS_TTL_MS);
    assert_true(cJSON_Compare(e, f, true));
    assert_null(s_resolve_at(creds, "{\"run\":\"exec\"}", 1900));
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
    cJSON_Delete(e);
    cJSON_Delete(f);
    creds_destroy(&creds);
    creds_destroy(&creds); /* twice: nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_ids),
        cmocka_unit_test(test_user_by_name_and_number),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_unresolved),
        cmocka_unit_test(test_answers_reused_briefly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
