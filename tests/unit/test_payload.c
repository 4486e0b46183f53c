/* payload: the fork-server's reading of a spawn payload with jscan, no
 * JSON library (forkserver/payload.h): what it reads must be what cJSON,
 * which the supervisor wrote it with, reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

static const char *s_text =
    "{\"tree\":\"t1\",\"path\":\"root/a\\u00e9\",\"has_children\":true,\"output\":false,"
    "\"spec\":{\"run\":\"exec\",\"argv\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\"],"
    "\"env\":{\"A\":\"1\",\"B\\u0041\":\"x\\ny\"},\"rlimits\":{\"nofile\":64},"
    "\"ms\":-2.5e1}}";

static void s_word(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    char *out = arg;
    char *k = key ? pl_dup(key) : NULL, *v = pl_dup(value);
    strcat(out, k ? k : "-");
    strcat(out, "=");
    strcat(out, v ? v : "?");
    strcat(out, ";");
    free(k);
    free(v);
}

static void test_reads_what_cjson_wrote(void **state)
{
    (void) state;
    pl_t root, spec, v;
    assert_true(pl_parse(s_text, strlen(s_text), &root));
    char buf[64];
    assert_string_equal(pl_str(&root, "tree", buf, sizeof buf), "t1");
    assert_string_equal(pl_str(&root, "path", buf, sizeof buf), "root/a\xc3\xa9");
    assert_true(pl_is(&root, "has_children", JSCAN_TRUE));
    assert_true(pl_is(&root, "output", JSCAN_FALSE));
    assert_false(pl_is(&root, "output", JSCAN_TRUE));
    assert_false(pl_is(&root, "absent", JSCAN_FALSE));
    assert_true(pl_get(&root, "spec", &spec));
    assert_int_equal(spec.kind, JSCAN_OBJECT);
    double d;
    assert_true(pl_num(&spec, "ms", &d));
    assert_true(d == -25.0);
    assert_false(pl_num(&spec, "run", &d)); /* not a number */
    assert_null(pl_str(&spec, "ms", buf, sizeof buf)); /* not a string */
    assert_true(pl_get(&spec, "argv", &v));
    char words[256] = "";
    pl_each(&v, s_word, words);
    assert_string_equal(words, "-=sh;-=-c;-=echo \"hi\";");
    assert_true(pl_get(&spec, "env", &v));
    words[0] = 0;
    pl_each(&v, s_word, words);
    assert_string_equal(words, "A=1;BA=x\ny;");
    /* cut to the buffer, never past it */
    char small[4];
    assert_string_equal(pl_str(&root, "path", small, sizeof small), "roo");
    /* members of nested objects are not the payload's */
    assert_false(pl_get(&root, "run", &v));
}

static void test_refuses_what_is_not_an_object(void **state)
{
    (void) state;
    pl_t root;
    const char *bad[] = {"", "[]", "\"s\"", "{\"a\":1", "{\"a\":01}", "{} {}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(pl_parse(bad[i], strlen(bad[i]), &root));
    pl_t num = {.kind = JSCAN_NUMBER, .start = "1", .len = 1};
    pl_t out;
    assert_false(pl_get(&num, "a", &out));
    assert_null(pl_dup(&num));
    pl_each(&num, NULL, NULL); /* nothing to visit: fn is never called */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_what_cjson_wrote),
        cmocka_unit_test(test_refuses_what_is_not_an_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
