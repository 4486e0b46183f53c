/* log: text and JSON lines, fields given explicitly or by the message's
 * own words, escaping and truncation that keep a JSON line valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static char s_line[8192];

/* Format into s_line (NUL-terminated) and return it. */
static const char *s_fmt(log_format_t f, log_level_t lv, const char *const *kv, const char *msg,
                         int size)
{
    int n = log_format_line(s_line, size, f, lv, kv, msg);
    assert_true(n > 0 && n <= size);
    assert_int_equal(s_line[n - 1], '\n');
    s_line[n] = 0;
    return s_line;
}

static cJSON *s_parse_json(const char *line)
{
    cJSON *j = cJSON_Parse(line);
    assert_non_null(j);
    return j;
}

static const char *s_get(const cJSON *j, const char *k)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(i) ? i->valuestring : NULL;
}

static void test_parse_names(void **state)
{
    (void) state;
    log_level_t lv = ALOG_INFO;
    log_format_t f = ALOG_TEXT;
    assert_int_equal(log_level_parse("WARN", &lv), 0);
    assert_int_equal(lv, ALOG_WARN);
    assert_int_equal(log_level_parse("loud", &lv), -1);
    assert_int_equal(lv, ALOG_WARN);
    assert_int_equal(log_format_parse("json", &f), 0);
    assert_int_equal(f, ALOG_JSON);
    assert_int_equal(log_format_parse(NULL, &f), -1);
}

static void test_env_sets_format(void **state)
{
    (void) state;
    setenv("ARBOR_LOG_FORMAT", "json", 1);
    log_init("test-log", ALOG_INFO);
    assert_int_equal(log_format(), ALOG_JSON);
    setenv("ARBOR_LOG_FORMAT", "bogus", 1);
    log_init("test-log", ALOG_INFO);
    assert_int_equal(log_format(), ALOG_JSON); /* unknown: ignored */
    setenv("ARBOR_LOG_FORMAT", "text", 1);
    log_init("test-log", ALOG_INFO);
    assert_int_equal(log_format(), ALOG_TEXT);
    /* a flag (log_set_format after log_init) wins, and is passed on */
    setenv("ARBOR_LOG_FORMAT", "text", 1);
    log_init("test-log", ALOG_INFO);
    log_set_format(ALOG_JSON);
    assert_int_equal(log_format(), ALOG_JSON);
    assert_string_equal(getenv("ARBOR_LOG_FORMAT"), "json");
    log_set_level(ALOG_WARN);
    assert_string_equal(getenv("ARBOR_LOG_LEVEL"), "warn");
    log_set_format(ALOG_TEXT);
    log_set_level(ALOG_INFO);
    unsetenv("ARBOR_LOG_FORMAT");
    unsetenv("ARBOR_LOG_LEVEL");
}

static void test_json_line(void **state)
{
    (void) state;
    log_init("test-log", ALOG_INFO);
    cJSON *j = s_parse_json(s_fmt(ALOG_JSON, ALOG_WARN, NULL, "plain \"quoted\" \\ tab\t", 4096));
    assert_string_equal(s_get(j, "prog"), "test-log");
    assert_string_equal(s_get(j, "level"), "warn");
    assert_string_equal(s_get(j, "msg"), "plain \"quoted\" \\ tab\t");
    assert_non_null(s_get(j, "ts"));
    assert_int_equal(strlen(s_get(j, "ts")), 24); /* 2025-01-31T12:00:00.123Z */
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "pid")));
    cJSON_Delete(j);
}

static void test_fields(void **state)
{
    (void) state;
    /* explicit */
    const char *kv[] = {"tree", "t1", "node", "root/a", "skip", NULL, "peer", "sup1", NULL};
    cJSON *j = s_parse_json(s_fmt(ALOG_JSON, ALOG_INFO, kv, "stuck", 4096));
    assert_string_equal(s_get(j, "tree"), "t1");
    assert_string_equal(s_get(j, "node"), "root/a");
    assert_string_equal(s_get(j, "peer"), "sup1");
    assert_null(s_get(j, "skip"));
    cJSON_Delete(j);
    assert_non_null(strstr(s_fmt(ALOG_TEXT, ALOG_INFO, kv, "stuck", 4096),
                           "info: stuck  tree=t1 node=root/a peer=sup1\n"));

    /* by convention, from the message's words */
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_INFO, NULL, "tree abc: root/cache did not exit", 4096));
    assert_string_equal(s_get(j, "tree"), "abc");
    assert_string_equal(s_get(j, "node"), "root/cache");
    cJSON_Delete(j);
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_INFO, NULL, "tree abc: root: pidfd: EPERM", 4096));
    assert_string_equal(s_get(j, "node"), "root");
    cJSON_Delete(j);
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_INFO, NULL, "tree abc: spawning 9 nodes", 4096));
    assert_string_equal(s_get(j, "tree"), "abc");
    assert_null(s_get(j, "node"));
    cJSON_Delete(j);
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_INFO, NULL, "tree abc finished: ok", 4096));
    assert_string_equal(s_get(j, "tree"), "abc");
    cJSON_Delete(j);
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_INFO, NULL, "peer sup1 joined", 4096));
    assert_string_equal(s_get(j, "peer"), "sup1");
    cJSON_Delete(j);
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_WARN, NULL, "bad input from ctl-1.x: bad_json: no", 4096));
    assert_string_equal(s_get(j, "peer"), "ctl-1.x");
    cJSON_Delete(j);
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_WARN, NULL, "bad input from (unnamed peer): x", 4096));
    assert_null(s_get(j, "peer"));
    cJSON_Delete(j);
    /* an explicit field wins over the convention */
    const char *node_kv[] = {"node", "root/x", NULL};
    j = s_parse_json(s_fmt(ALOG_JSON, ALOG_INFO, node_kv, "tree abc: root/y: hm", 4096));
    assert_string_equal(s_get(j, "node"), "root/x");
    cJSON_Delete(j);
    /* text lines do not repeat what the message says */
    assert_null(strstr(s_fmt(ALOG_TEXT, ALOG_INFO, NULL, "tree abc: root/y: hm", 4096), "tree="));
}

/* Control characters escaped, invalid UTF-8 replaced, valid UTF-8 kept. */
static void test_escaping(void **state)
{
    (void) state;
    cJSON *j = s_parse_json(s_fmt(ALOG_JSON, ALOG_ERROR, NULL, "a\x01" "b\xff" "c\xc3\xa9\n", 4096));
    assert_string_equal(s_get(j, "msg"), "a\x01" "b?c\xc3\xa9\n");
    cJSON_Delete(j);
    const char *t = s_fmt(ALOG_TEXT, ALOG_ERROR, NULL, "two\nlines", 4096);
    assert_non_null(strstr(t, "error: two?lines\n"));
}

/* A message longer than the line: cut, still one valid JSON line. */
static void test_truncation(void **state)
{
    (void) state;
    char big[6000];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = i % 7 == 0 ? '"' : (char) ('a' + i % 26);
    big[sizeof big - 1] = 0;
    const char *kv[] = {"node", "root/a", NULL};
    const char *line = s_fmt(ALOG_JSON, ALOG_INFO, kv, big, 512);
    assert_true(strlen(line) <= 512);
    cJSON *j = s_parse_json(line);
    assert_string_equal(s_get(j, "node"), "root/a");
    assert_true(strlen(s_get(j, "msg")) > 100);
    cJSON_Delete(j);
    line = s_fmt(ALOG_TEXT, ALOG_INFO, NULL, big, 300);
    assert_int_equal(strlen(line), 298); /* cap - 3 + newline */
}

static void test_budget(void **state)
{
    (void) state;
    log_set_level(ALOG_ERROR); /* the "N more" line is not what is tested */
    log_budget_t b = {0};
    int allowed = 0;
    for (int i = 0; i < 20; i++)
        allowed += log_budget_take(&b, 5, 1000, "things");
    assert_int_equal(allowed, 5);
    assert_int_equal(b.dropped, 15);
    assert_false(log_budget_take(&b, 5, 1999, "things")); /* same second */
    assert_true(log_budget_take(&b, 5, 2000, "things"));  /* a new one: says 16 dropped */
    assert_int_equal(b.dropped, 0);
    log_set_level(ALOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names),  cmocka_unit_test(test_env_sets_format),
        cmocka_unit_test(test_json_line),    cmocka_unit_test(test_fields),
        cmocka_unit_test(test_escaping),     cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
