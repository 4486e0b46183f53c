/* spec: how a tree spec becomes a tree model, and how bad specs are refused
 * with a message that names the offending path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "spec.h"

static tree_t *s_build(const char *text, spec_err_t *err)
{
    return spec_build_text(text, strlen(text), "t1", 1, "sup1", NULL, err);
}

static void test_nested_counts_expand_breadth_first(void **state)
{
    (void) state;
    spec_err_t err;
    tree_t *t = s_build("{\"name\":\"root\",\"children\":[{\"name\":\"spawner\",\"count\":2,"
                        "\"children\":[{\"name\":\"errorer\",\"run\":\"fail\",\"count\":3}]}]}",
                        &err);
    assert_non_null(t);
    assert_int_equal(t->nnodes, 1 + 2 + 6);
    assert_string_equal(t->nodes[0].path, "root");
    assert_string_equal(t->nodes[1].path, "root/spawner-0");
    assert_string_equal(t->nodes[2].path, "root/spawner-1");
    assert_string_equal(t->nodes[3].path, "root/spawner-0/errorer-0");
    assert_string_equal(t->nodes[8].path, "root/spawner-1/errorer-2");
    assert_int_equal(t->nodes[0].nchildren, 2);
    assert_ptr_equal(t->nodes[5].parent, &t->nodes[1]);
    assert_int_equal(t->nodes[3].run, RUN_FAIL);
    assert_int_equal(t->nodes[1].run, RUN_SUPERVISE);
    /* The worker's params: its own name, no children. */
    assert_null(cJSON_GetObjectItem(t->nodes[1].params, "children"));
    assert_string_equal(cJSON_GetObjectItem(t->nodes[3].params, "name")->valuestring, "errorer-0");
    tree_destroy(&t);
    assert_null(t);
}

static void test_defaults_and_settings(void **state)
{
    (void) state;
    spec_err_t err;
    tree_t *t = s_build("{\"name\":\"r\",\"timeout_ms\":500,\"strategy\":\"one_for_one\","
                        "\"children\":[{\"name\":\"a\",\"run\":\"sleep\",\"grace_ms\":10,"
                        "\"kill_after_ms\":20}]}",
                        &err);
    assert_non_null(t);
    assert_int_equal(t->timeout_ms, 500);
    assert_int_equal(t->nodes[0].grace_ms, SPEC_DEFAULT_GRACE_MS);
    assert_int_equal(t->nodes[0].kill_after_ms, SPEC_DEFAULT_KILL_AFTER_MS);
    assert_int_equal(t->nodes[0].strategy, STRAT_ONE_FOR_ONE);
    assert_int_equal(t->nodes[1].grace_ms, 10);
    assert_int_equal(t->nodes[1].kill_after_ms, 20);
    tree_destroy(&t);
}

/* Each bad spec: the path and a word the message must hold. */
static const struct {
    const char *spec, *path, *word;
} s_bad[] = {
    {"{\"name\":", "(spec)", "JSON"},
    {"[1,2]", "(root)", "object"},
    {"{}", "(root)", "name"},
    {"{\"name\":\"bad name\"}", "(root)", "A-Za-z0-9"},
    {"{\"name\":\"r\",\"run\":\"explode\"}", "r", "unknown behaviour"},
    {"{\"name\":\"r\",\"chidren\":[]}", "r", "unknown key"},
    {"{\"name\":\"r\",\"children\":{}}", "r", "array"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "r", "two siblings"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"a\",\"count\":3},{\"name\":\"a-1\"}]}", "r",
     "two siblings"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"s\",\"run\":\"sleep\",\"ms\":-5}]}", "r/s", "ms"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"s\",\"run\":\"sleep\",\"code\":1}]}", "r/s",
     "unknown key"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"exec\"}]}", "r/x", "argv"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"exec\",\"argv\":[1]}]}", "r/x",
     "argv"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"crash\",\"signal\":\"SIGNOPE\"}]}",
     "r/x", "signal"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"hang\",\"in\":\"limbo\"}]}", "r/x",
     "in"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"timeout_ms\":5}]}", "r/x", "root"},
    {"{\"name\":\"r\",\"count\":2}", "r", "root"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"count\":20000}]}", "r/x", "limit"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"count\":200,\"children\":[{\"name\":\"y\","
     "\"count\":200}]}]}",
     "r/x", "limit"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"strategy\":\"all_for_none\"}]}", "r/x",
     "strategy"},
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"strategy\":\"one_for_one\"}]}", "r/x",
     "only a node with children"},
    {"{\"name\":\"r\",\"max_restarts\":0,\"within_ms\":100,\"children\":[{\"name\":\"x\"}]}",
     "r", "nothing to count"},
};

static void test_bad_specs_name_their_path(void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        spec_err_t err = {0};
        tree_t *t = s_build(s_bad[i].spec, &err);
        if (t || strcmp(err.path, s_bad[i].path) != 0 || !strstr(err.message, s_bad[i].word))
            fail_msg("spec %zu %s: got %s / path \"%s\" / \"%s\"", i, s_bad[i].spec,
                     t ? "a tree" : "NULL", err.path, err.message);
    }
}

static void test_depth_limit(void **state)
{
    (void) state;
    spec_limits_t limits = {.max_depth = 3, .max_nodes = 100};
    spec_err_t err;
    const char *deep = "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":[{\"name\":"
                       "\"c\",\"children\":[{\"name\":\"d\"}]}]}]}";
    assert_null(spec_build_text(deep, strlen(deep), "t", 1, "s", &limits, &err));
    assert_string_equal(err.path, "a/b/c/d");
    assert_non_null(strstr(err.message, "deeper"));
    limits.max_depth = 4;
    tree_t *t = spec_build_text(deep, strlen(deep), "t", 1, "s", &limits, &err);
    assert_non_null(t);
    tree_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_counts_expand_breadth_first),
        cmocka_unit_test(test_defaults_and_settings),
        cmocka_unit_test(test_bad_specs_name_their_path),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
