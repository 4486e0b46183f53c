/* jnul: where a JSON text holds "\u0000" inside a string (cJSON would cut
 * that string there without a word). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "jnul.h"

static void test_finds_the_pointer(void **state)
{
    (void) state;
    static const struct {
        const char *text, *pointer;
        long offset; /* -1: none */
    } cases[] = {
        {"{\"a\":\"x\"}", "", -1},
        {"{\"a\":\"x\\u0000\"}", "/a", 7},
        {"{\"a\":[\"x\",{\"b\":1,\"c/d~\":\"\\u0000\"}]}", "/a/1/c~1d~0", 25},
        {"{\"k\\u0000\":1}", "/k\\u0000", 3},
        {"[1,[2,3],\"\\u0000\"]", "/2", 10},
        {"{\"a\":\"\\\\u0000\"}", "", -1},            /* a backslash, then "u0000" */
        {"{\"a\":\"\\\\\\u0000\"}", "/a", 8},          /* a backslash, then a NUL */
        {"{\"a\":\"\\\"\\u0000\"}", "/a", 8},          /* an escaped quote first */
        {"{\"a\":{\"b\":\"x\"},\"c\":\"\\u0000\"}", "/c", 20},
        {"{\"a\":\"\\u00001\"}", "/a", 6},
        {"{\"a\":\"\\u0001\"}", "", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char pointer[64] = "?";
        ssize_t at = jnul_find(cases[i].text, strlen(cases[i].text), pointer, sizeof pointer);
        if (at != cases[i].offset || (at >= 0 && strcmp(pointer, cases[i].pointer) != 0))
            fail_msg("%s: at %ld \"%s\", expected %ld \"%s\"", cases[i].text, (long) at, pointer,
                     cases[i].offset, cases[i].pointer);
    }
    assert_int_equal(jnul_find(NULL, 0, NULL, 0), -1);
    /* A text cut after a backslash (fuzz_spec found it): the key ends at
     * the text's end, never a byte past it (an exact-size copy: ASan sees
     * any read beyond). */
    static const char cut[] = "{\"k\\u0000\\";
    char *exact = malloc(sizeof cut - 1);
    assert_non_null(exact);
    memcpy(exact, cut, sizeof cut - 1);
    char ptr[64];
    assert_int_equal(jnul_find(exact, sizeof cut - 1, ptr, sizeof ptr), 3);
    assert_string_equal(ptr, "/k\\u0000\\");
    free(exact);
    /* cJSON ignores what follows the value; the scan stays in bounds. */
    const char *trail = "{\"a\":1}]]]]]{[{\"\\u0000\"";
    assert_true(jnul_find(trail, strlen(trail), NULL, 0) > 0);
    char deep[600] = "";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    strcat(deep, "\"\\u0000\"");
    char pointer[32];
    assert_int_equal(jnul_find(deep, strlen(deep), pointer, sizeof pointer), 101);
    assert_int_equal(strncmp(pointer, "/0/0/0", 6), 0);
    assert_int_equal(jnul_find("\"\\u0000\"", 8, NULL, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_the_pointer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
