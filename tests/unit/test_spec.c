/* spec: how a tree spec becomes a tree model, and how bad specs are refused
 * with a message that names the offending path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
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
    /* A program may start its children at run time: it has a strategy
     * without children in the spec. */
    t = s_build("{\"name\":\"r\",\"run\":\"exec\",\"argv\":[\"w\"],\"strategy\":\"rest_for_one\","
                "\"max_restarts\":4,\"within_ms\":900}", &err);
    assert_non_null(t);
    assert_int_equal(t->nodes[0].strategy, STRAT_REST_FOR_ONE);
    assert_int_equal(t->nodes[0].max_restarts, 4);
    assert_int_equal(t->nodes[0].within_ms, 900);
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
    {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"sleep\",\"max_restarts\":2}]}",
     "r/x", "only a node with children"},
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

/* Issue 13, defect 4: "crash" with a signal that does not end a process
 * (stop, continue, ignore) would leave its node running forever. */
static void test_crash_refuses_signals_that_do_not_end_a_process(void **state)
{
    (void) state;
    static const char *harmless[] = {"SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCONT",
                                     "SIGCHLD", "SIGURG",  "SIGWINCH", "STOP", "19"};
    for (size_t i = 0; i < sizeof harmless / sizeof harmless[0]; i++) {
        char spec[200];
        bool number = harmless[i][0] >= '0' && harmless[i][0] <= '9';
        snprintf(spec, sizeof spec,
                 "{\"name\":\"r\",\"children\":[{\"name\":\"c\",\"run\":\"crash\",\"signal\":%s%s%s}]}",
                 number ? "" : "\"", harmless[i], number ? "" : "\"");
        spec_err_t err = {0};
        tree_t *t = s_build(spec, &err);
        if (t || strcmp(err.path, "r/c") != 0 || !strstr(err.message, "does not end a process"))
            fail_msg("%s: got %s / \"%s\" / \"%s\"", harmless[i], t ? "a tree" : "NULL", err.path,
                     err.message);
    }
    static const char *fatal[] = {"SIGSEGV", "SIGKILL", "SIGTERM", "SIGABRT", "SIGUSR1", "9"};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        char spec[200];
        bool number = fatal[i][0] >= '0' && fatal[i][0] <= '9';
        snprintf(spec, sizeof spec,
                 "{\"name\":\"r\",\"children\":[{\"name\":\"c\",\"run\":\"crash\",\"signal\":%s%s%s}]}",
                 number ? "" : "\"", fatal[i], number ? "" : "\"");
        spec_err_t err = {0};
        tree_t *t = s_build(spec, &err);
        if (!t)
            fail_msg("%s refused: %s", fatal[i], err.message);
        tree_destroy(&t);
    }
}

/* A spec with one exec node whose env holds a value of n bytes. */
static char *s_big_node_spec(size_t n)
{
    char *spec = malloc(n + 200);
    assert_non_null(spec);
    int head = sprintf(spec, "{\"name\":\"r\",\"children\":[{\"name\":\"big\",\"run\":\"exec\","
                             "\"argv\":[\"true\"],\"env\":{\"X\":\"");
    memset(spec + head, 'x', n);
    strcpy(spec + head + n, "\"}}]}");
    return spec;
}

/* Issue 13, defect 2: a node whose own JSON is over what the fork-server
 * takes in one SPAWN was accepted, then failed "Message too long". */
static void test_node_over_the_fork_server_limit_is_refused(void **state)
{
    (void) state;
    spec_err_t err = {0};
    char *spec = s_big_node_spec(SPEC_MAX_NODE_BYTES);
    tree_t *t = s_build(spec, &err);
    free(spec);
    assert_null(t);
    assert_string_equal(err.path, "r/big");
    char limit[32];
    snprintf(limit, sizeof limit, "%d", SPEC_MAX_NODE_BYTES);
    assert_non_null(strstr(err.message, limit));
    /* Just under the limit: accepted. */
    spec = s_big_node_spec(SPEC_MAX_NODE_BYTES - 200);
    t = s_build(spec, &err);
    free(spec);
    assert_non_null(t);
    tree_destroy(&t);
    /* Children do not count towards their parent's size. */
    size_t cap = 200 + 2000 * 40;
    char *many = malloc(cap);
    assert_non_null(many);
    size_t n = (size_t) sprintf(many, "{\"name\":\"r\",\"children\":[");
    for (int i = 0; i < 2000; i++)
        n += (size_t) sprintf(many + n, "%s{\"name\":\"child-%d\",\"run\":\"sleep\"}",
                              i ? "," : "", i);
    strcpy(many + n, "]}");
    assert_true(strlen(many) > SPEC_MAX_NODE_BYTES);
    t = s_build(many, &err);
    free(many);
    assert_non_null(t);
    tree_destroy(&t);
}

/* Issue 13, defect 5: \u0000 made cJSON cut names and error types short. */
static void test_nul_in_any_string_is_refused(void **state)
{
    (void) state;
    static const struct {
        const char *spec, *path, *key;
    } cases[] = {
        {"{\"name\":\"r\\u0000x\"}", "r", "name"},
        {"{\"name\":\"r\",\"children\":[{\"name\":\"a\"},{\"name\":\"f\",\"run\":\"fail\","
         "\"error\":{\"type\":\"Bad\\u0000Type\",\"message\":\"m\"}}]}",
         "r/f", "error/type"},
        {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"exec\",\"argv\":[\"sh\","
         "\"-c\\u0000\"]}]}",
         "r/x", "argv/1"},
        {"{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"exec\",\"argv\":[\"true\"],"
         "\"env\":{\"A\\u0000B\":\"v\"}}]}",
         "r/x", "env/A\\u0000B"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec_err_t err = {0};
        tree_t *t = s_build(cases[i].spec, &err);
        if (t || strcmp(err.path, cases[i].path) != 0 || !strstr(err.message, cases[i].key) ||
            !strstr(err.message, "\\u0000"))
            fail_msg("case %zu: got %s / \"%s\" / \"%s\"", i, t ? "a tree" : "NULL", err.path,
                     err.message);
    }
    /* An escaped backslash followed by "u0000" is a plain string. */
    tree_t *t = s_build("{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"exec\","
                        "\"argv\":[\"echo\",\"\\\\u0000\"]}]}",
                        &(spec_err_t){0});
    assert_non_null(t);
    tree_destroy(&t);
}

/* Issue 14: cwd, env_inherit, user and group on exec nodes. */
static void test_exec_options(void **state)
{
    (void) state;
    spec_limits_t user = {SPEC_DEFAULT_MAX_DEPTH, SPEC_DEFAULT_MAX_NODES, true};
    spec_limits_t nouser = {SPEC_DEFAULT_MAX_DEPTH, SPEC_DEFAULT_MAX_NODES, false};
    static const struct {
        const char *opts;
        bool root;      /* may switch user */
        const char *word; /* NULL: accepted */
    } cases[] = {
        {"\"cwd\":\"/tmp\",\"env_inherit\":false,\"env\":{\"PATH\":\"/bin\"}", false, NULL},
        {"\"cwd\":\"tmp\"", false, "cwd: must be an absolute path"},
        {"\"cwd\":5", false, "cwd"},
        {"\"env_inherit\":\"no\"", false, "env_inherit: must be true or false"},
        {"\"user\":\"nobody\"", false, "does not run as root"},
        {"\"group\":65534", false, "does not run as root"},
        {"\"user\":\"nobody\",\"group\":\"nogroup\"", true, NULL},
        {"\"user\":65534,\"group\":\"65534\"", true, NULL},
        {"\"user\":\"-rf\"", true, "user: must be a name"},
        {"\"user\":\"a b\"", true, "user: must be a name"},
        {"\"group\":-1", true, "group: must be a name"},
        {"\"user\":1.5", true, "user: must be a name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char spec[400];
        snprintf(spec, sizeof spec,
                 "{\"name\":\"r\",\"children\":[{\"name\":\"x\",\"run\":\"exec\","
                 "\"argv\":[\"true\"],%s}]}",
                 cases[i].opts);
        spec_err_t err = {0};
        tree_t *t = spec_build_text(spec, strlen(spec), "t", 1, "s",
                                    cases[i].root ? &user : &nouser, &err);
        if (cases[i].word ? (t || strcmp(err.path, "r/x") || !strstr(err.message, cases[i].word))
                          : !t)
            fail_msg("case %zu %s: got %s / \"%s\" / \"%s\"", i, cases[i].opts,
                     t ? "a tree" : "NULL", err.path, err.message);
        tree_destroy(&t);
    }
    /* Exec options only for exec nodes. */
    spec_err_t err = {0};
    assert_null(s_build("{\"name\":\"r\",\"run\":\"sleep\",\"cwd\":\"/\"}", &err));
    assert_non_null(strstr(err.message, "unknown key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_counts_expand_breadth_first),
        cmocka_unit_test(test_defaults_and_settings),
        cmocka_unit_test(test_bad_specs_name_their_path),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_crash_refuses_signals_that_do_not_end_a_process),
        cmocka_unit_test(test_node_over_the_fork_server_limit_is_refused),
        cmocka_unit_test(test_nul_in_any_string_is_refused),
        cmocka_unit_test(test_exec_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
