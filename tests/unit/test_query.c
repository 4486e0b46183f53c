/* query: arborctl's reading and printing of reports, both as a cJSON tree
 * and as the text the supervisor wrote (ctl_keep_raw_reports). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"

static const char *s_text = "{\"tree\":\"t.1\",\"supervisor\":\"s\",\"status\":\"cancelled\","
                            "\"root\":{\"name\":\"root\",\"path\":\"root\",\"status\":\"cancelled\","
                            "\"n\":1.50,\"e\":\"\\u00e9\",\"children\":[{\"name\":\"a\","
                            "\"path\":\"root/a\",\"status\":\"killed\",\"children\":[]}]}}";

static cJSON *s_raw(const char *text)
{
    cJSON *r = cJSON_CreateRaw(text);
    assert_non_null(r);
    return r;
}

static void test_status_of_either_kind(void **state)
{
    (void) state;
    cJSON *raw = s_raw(s_text);
    assert_string_equal(query_status(raw), "cancelled"); /* the top level's, not a node's */
    cJSON *tree = cJSON_Parse(s_text);
    assert_string_equal(query_status(tree), "cancelled");
    cJSON *none = s_raw("{\"root\":{\"status\":\"ok\"}}");
    assert_string_equal(query_status(none), "?");
    cJSON_Delete(raw);
    cJSON_Delete(tree);
    cJSON_Delete(none);
}

static void test_report_tree_parses_in_place(void **state)
{
    (void) state;
    cJSON *holder = cJSON_CreateObject();
    cJSON_AddItemToObject(holder, "report", s_raw(s_text));
    cJSON *r = cJSON_GetObjectItem(holder, "report");
    assert_ptr_equal(query_report_tree(r), r);
    assert_true(cJSON_IsObject(r));
    cJSON *want = cJSON_Parse(s_text);
    assert_true(cJSON_Compare(r, want, true));
    assert_string_equal(r->string, "report"); /* still its holder's member */
    const cJSON *a = query_node(r, "root/a");
    assert_non_null(a);
    assert_string_equal(cJSON_GetObjectItem(a, "status")->valuestring, "killed");
    assert_ptr_equal(query_report_tree(r), r); /* a tree stays as it is */
    cJSON_Delete(want);
    cJSON_Delete(holder);
}

/* Run query_print_report with stdout sent to a temporary file; its text. */
static char *s_printed(cJSON *report, bool json)
{
    char name[] = "/tmp/arbor-test-query-XXXXXX";
    int fd = mkstemp(name);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
    int rc = query_print_report(report, json);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(rc, 0);
    off_t size = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t) size + 1);
    assert_int_equal(pread(fd, out, (size_t) size, 0), size);
    close(fd);
    unlink(name);
    return out;
}

static void test_print_raw_as_it_came(void **state)
{
    (void) state;
    cJSON *raw = s_raw(s_text);
    char *out = s_printed(raw, true);
    char want[2048];
    snprintf(want, sizeof want, "%s\n", s_text); /* byte for byte, one line */
    assert_string_equal(out, want);
    free(out);
    /* The human rendering needs the tree: parsed on the way. */
    out = s_printed(raw, false);
    assert_non_null(strstr(out, "killed"));
    assert_true(cJSON_IsObject(raw));
    free(out);
    cJSON_Delete(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_of_either_kind),
        cmocka_unit_test(test_report_tree_parses_in_place),
        cmocka_unit_test(test_print_raw_as_it_came),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
