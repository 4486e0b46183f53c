/* jprint: the same JSON as cJSON_PrintUnformatted, integers printed fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jprint.h"

/* Both printers on two parses of the same text: the same output. */
static void s_same(const char *json)
{
    cJSON *a = cJSON_Parse(json), *b = cJSON_Parse(json);
    assert_non_null(a);
    char *want = cJSON_PrintUnformatted(a);
    char *got = jprint_unformatted(b);
    assert_non_null(got);
    assert_string_equal(got, want);
    cJSON_free(want);
    cJSON_free(got);
    cJSON_Delete(a);
    cJSON_Delete(b); /* the raw items' text is freed with them (ASan, valgrind) */
}

static void test_integers_nested(void **state)
{
    (void) state;
    s_same("{\"v\":1,\"id\":12345,\"re\":null,\"body\":{\"t_ms\":0,\"pid\":4194303,"
           "\"neg\":-7,\"list\":[1,2,[3,{\"x\":40}]],\"s\":\"12\",\"ok\":true}}");
    s_same("[0,2147483648,-2147483649,999999999999999,-999999999999999]");
}

/* Where the two differ, jprint is the exact one: cJSON 1.7.15 rounds
 * integers of 16 digits to 15 ("9.00719925474099e+15"); -0 is 0. */
static void test_big_integers_exact(void **state)
{
    (void) state;
    cJSON *a = cJSON_Parse("[9007199254740991,-9007199254740991,-0,1e15]");
    char *got = jprint_unformatted(a);
    assert_string_equal(got, "[9007199254740991,-9007199254740991,0,1000000000000000]");
    cJSON_free(got);
    cJSON_Delete(a);
}

static void test_other_numbers_keep_cjsons_way(void **state)
{
    (void) state;
    s_same("[0.5,-1.25,1e300,9007199254740993,123456789012345678901234567890,3.14159]");
    s_same("42");
    s_same("{}");
    s_same("[]");
}

static void test_only_the_item_not_its_siblings(void **state)
{
    (void) state;
    cJSON *arr = cJSON_Parse("[{\"a\":1},2]");
    char *got = jprint_unformatted(arr->child);
    assert_string_equal(got, "{\"a\":1}");
    assert_true(cJSON_IsNumber(arr->child->next)); /* the sibling is untouched */
    cJSON_free(got);
    cJSON_Delete(arr);
    assert_null(jprint_unformatted(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers_nested),
        cmocka_unit_test(test_big_integers_exact),
        cmocka_unit_test(test_other_numbers_keep_cjsons_way),
        cmocka_unit_test(test_only_the_item_not_its_siblings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
