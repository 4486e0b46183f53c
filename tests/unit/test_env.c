/* env: the envelope codec of common/env.c, as every arbor process uses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"

/* Decode text; expect failure with code. */
static void s_bad(const char *text, const char *code)
{
    env_err_t err;
    memset(&err, 0, sizeof err);
    env_t *e = env_decode(text, strlen(text), &err);
    if (e || strcmp(err.code, code) != 0)
        fail_msg("%s: expected %s, got %s (%s)", text, code, e ? "success" : err.code,
                 err.message);
    assert_true(err.message[0] != 0);
}

static void test_good_envelope(void **state)
{
    (void) state;
    const char *text = "{\"v\":1,\"type\":\"spawn\",\"to\":\"sup1\",\"id\":7,\"re\":null,"
                       "\"body\":{\"spec\":{\"name\":\"root\"}}}";
    env_err_t err;
    env_t *e = env_decode(text, strlen(text), &err);
    assert_non_null(e);
    assert_string_equal(e->type, "spawn");
    assert_string_equal(e->to, "sup1");
    assert_int_equal(e->id, 7);
    assert_int_equal(e->re, -1);
    assert_true(cJSON_IsObject(e->body));
    assert_non_null(cJSON_GetObjectItem(e->body, "spec"));
    env_destroy(&e);
    assert_null(e);
    env_destroy(&e); /* harmless twice */
}

static void test_re_null_absent_or_int(void **state)
{
    (void) state;
    const char *with = "{\"v\":1,\"type\":\"report\",\"to\":\"c\",\"id\":2,\"re\":41,\"body\":{}}";
    const char *absent = "{\"v\":1,\"type\":\"report\",\"to\":\"c\",\"id\":2,\"body\":{}}";
    env_t *e = env_decode(with, strlen(with), NULL);
    assert_non_null(e);
    assert_int_equal(e->re, 41);
    env_destroy(&e);
    e = env_decode(absent, strlen(absent), NULL);
    assert_non_null(e);
    assert_int_equal(e->re, -1);
    env_destroy(&e);
}

static void test_not_json(void **state)
{
    (void) state;
    s_bad("", "bad_json");
    s_bad("not json", "bad_json");
    s_bad("{\"v\":1,", "bad_json");
    s_bad("{'v':1}", "bad_json");
    env_err_t err;
    assert_null(env_decode("\x00\xff\xfe", 3, &err));
    assert_string_equal(err.code, "bad_json");
}

static void test_not_an_object(void **state)
{
    (void) state;
    s_bad("[1,2]", "bad_envelope");
    s_bad("\"text\"", "bad_envelope");
    s_bad("42", "bad_envelope");
    s_bad("null", "bad_envelope");
}

static void test_missing_keys(void **state)
{
    (void) state;
    s_bad("{\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"to\":\"broker\",\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1}", "bad_envelope");
}

static void test_wrong_types(void **state)
{
    (void) state;
    s_bad("{\"v\":2,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":\"1\",\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":3,\"to\":\"broker\",\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":[],\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"\",\"id\":1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":\"1\",\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":-1,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1.5,\"body\":{}}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"re\":\"x\",\"body\":{}}",
          "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"re\":-3,\"body\":{}}",
          "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":[]}", "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":null}", "bad_envelope");
}

static void test_duplicate_keys(void **state)
{
    (void) state;
    /* Which "to" would count? cJSON takes the first, Python the last: neither. */
    env_err_t err = {0};
    const char *text = "{\"v\":1,\"type\":\"peers\",\"to\":\"a\",\"to\":\"b\",\"id\":1,\"body\":{}}";
    env_t *e = env_decode(text, strlen(text), &err);
    assert_null(e);
    assert_string_equal(err.code, "bad_envelope");
    assert_non_null(strstr(err.message, "\"to\" appears twice"));
    s_bad("{\"v\":1,\"v\":1,\"type\":\"peers\",\"to\":\"a\",\"id\":1,\"body\":{}}", "bad_envelope");
    /* Keys of the body, or other keys, may repeat: not the envelope's business. */
    text = "{\"v\":1,\"type\":\"peers\",\"to\":\"a\",\"id\":1,\"body\":{\"k\":1,\"k\":2},\"x\":1,\"x\":2}";
    e = env_decode(text, strlen(text), &err);
    assert_non_null(e);
    env_destroy(&e);
}

static void test_huge_values(void **state)
{
    (void) state;
    /* Ids must be exact in a double: at most 2^53 - 1. */
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":9007199254740992,\"body\":{}}",
          "bad_envelope");
    s_bad("{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1e300,\"body\":{}}", "bad_envelope");
    const char *max = "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":9007199254740991,"
                      "\"body\":{}}";
    env_t *e = env_decode(max, strlen(max), NULL);
    assert_non_null(e);
    assert_int_equal(e->id, 9007199254740991LL);
    env_destroy(&e);
    /* A type or destination too long for the fixed fields. */
    char text[1024];
    snprintf(text, sizeof text,
             "{\"v\":1,\"type\":\"%040d\",\"to\":\"broker\",\"id\":1,\"body\":{}}", 0);
    s_bad(text, "bad_envelope");
    snprintf(text, sizeof text, "{\"v\":1,\"type\":\"status\",\"to\":\"%0300d\",\"id\":1,\"body\":{}}",
             0);
    s_bad(text, "bad_envelope");
}

static void test_unknown_type(void **state)
{
    (void) state;
    s_bad("{\"v\":1,\"type\":\"frobnicate\",\"to\":\"broker\",\"id\":1,\"body\":{}}",
          "unknown_type");
    assert_true(env_type_known("hello"));
    assert_true(env_type_known("logs"));
    /* Supervisor <-> worker traffic goes over the notify fd, never the broker. */
    assert_false(env_type_known("node_phase"));
    assert_false(env_type_known("node_cancel"));
    assert_false(env_type_known("node_children_exited"));
    assert_false(env_type_known(""));
    assert_false(env_type_known("HELLO"));
}

static void test_encode_round_trip(void **state)
{
    (void) state;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "tree", "t-1");
    cJSON_AddNumberToObject(body, "n", 3);
    char *text = env_encode("status", "sup1", 12, 11, body);
    assert_non_null(text);
    env_t *e = env_decode(text, strlen(text), NULL);
    assert_non_null(e);
    assert_string_equal(e->type, "status");
    assert_string_equal(e->to, "sup1");
    assert_int_equal(e->id, 12);
    assert_int_equal(e->re, 11);
    assert_string_equal(env_str(e->body, "tree"), "t-1");
    assert_int_equal(env_int(e->body, "n", -1), 3);
    assert_null(env_str(e->body, "n"));
    assert_int_equal(env_int(e->body, "tree", -7), -7);
    env_destroy(&e);
    free(text);

    text = env_encode("heartbeat", "broker", 1, -1, NULL); /* no body: {} and re null */
    assert_non_null(strstr(text, "\"re\":null"));
    assert_non_null(strstr(text, "\"body\":{}"));
    e = env_decode(text, strlen(text), NULL);
    assert_non_null(e);
    assert_int_equal(e->re, -1);
    assert_int_equal(cJSON_GetArraySize(e->body), 0);
    env_destroy(&e);
    free(text);
}

static void test_name_valid(void **state)
{
    (void) state;
    assert_true(env_name_valid("a", ENV_NAME_MAX));
    assert_true(env_name_valid("sup1.tree-7.3_x", ENV_NAME_MAX));
    assert_false(env_name_valid("", ENV_NAME_MAX));
    assert_false(env_name_valid("has space", ENV_NAME_MAX));
    assert_false(env_name_valid("slash/no", ENV_NAME_MAX));
    assert_false(env_name_valid("topic:x", ENV_NAME_MAX));
    assert_false(env_name_valid("\xc3\xa9", ENV_NAME_MAX));
    char name[ENV_NAME_MAX + 2];
    memset(name, 'n', ENV_NAME_MAX);
    name[ENV_NAME_MAX] = 0;
    assert_true(env_name_valid(name, ENV_NAME_MAX));
    name[ENV_NAME_MAX] = 'n';
    name[ENV_NAME_MAX + 1] = 0;
    assert_false(env_name_valid(name, ENV_NAME_MAX));
    assert_true(env_name_valid("abc", 3));
    assert_false(env_name_valid("abcd", 3));
}

static void test_err_set(void **state)
{
    (void) state;
    env_err_t err;
    assert_int_equal(env_err_set(&err, "bad_request", "n=%d", 5), -1);
    assert_string_equal(err.code, "bad_request");
    assert_string_equal(err.message, "n=5");
    assert_int_equal(env_err_set(NULL, "x", "y"), -1);
}

/* env_decode_raw: the body's report stays its text, exactly as it came;
 * everything else is env_decode's. */
static void test_decode_raw_keeps_the_report_as_text(void **state)
{
    (void) state;
    const char *text = "{\"v\":1,\"type\":\"event\",\"to\":\"cli\",\"id\":3,\"re\":null,"
                       "\"body\":{\"kind\":\"done\",\"report\":{\"status\":\"ok\",\"n\":1.50,"
                       "\"s\":\"\\u00e9\"},\"tree\":\"t\"}}";
    env_err_t err;
    env_t *e = env_decode_raw(text, strlen(text), "report", &err);
    assert_non_null(e);
    assert_string_equal(e->type, "event");
    assert_int_equal(e->id, 3);
    assert_string_equal(env_str(e->body, "kind"), "done");
    assert_string_equal(env_str(e->body, "tree"), "t"); /* after it: still parsed */
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(e->body, "report");
    assert_true(cJSON_IsRaw(r));
    assert_string_equal(r->valuestring, "{\"status\":\"ok\",\"n\":1.50,\"s\":\"\\u00e9\"}");
    env_destroy(&e);
}

static void test_decode_raw_falls_back_to_env_decode(void **state)
{
    (void) state;
    env_err_t err;
    /* no report, or one that is not an object: parsed as env_decode does */
    const char *none = "{\"v\":1,\"type\":\"event\",\"to\":\"c\",\"id\":1,\"body\":{\"kind\":\"x\"}}";
    env_t *e = env_decode_raw(none, strlen(none), "report", &err);
    assert_non_null(e);
    assert_string_equal(env_str(e->body, "kind"), "x");
    env_destroy(&e);
    const char *null = "{\"v\":1,\"type\":\"report\",\"to\":\"c\",\"id\":1,\"body\":{\"report\":null}}";
    e = env_decode_raw(null, strlen(null), "report", &err);
    assert_non_null(e);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(e->body, "report")));
    env_destroy(&e);
    /* cJSON's JSON, not strict JSON (a leading zero): env_decode reads it */
    const char *loose = "{\"v\":1,\"type\":\"report\",\"to\":\"c\",\"id\":1,"
                        "\"body\":{\"report\":{\"n\":01}}}";
    e = env_decode_raw(loose, strlen(loose), "report", &err);
    assert_non_null(e);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(e->body, "report")));
    env_destroy(&e);
    /* the envelope's own checks still apply, with env_decode's error */
    const char *bad = "{\"v\":1,\"type\":\"nonsense\",\"to\":\"c\",\"id\":1,"
                      "\"body\":{\"report\":{}}}";
    env_err_t want;
    assert_null(env_decode(bad, strlen(bad), &want));
    assert_null(env_decode_raw(bad, strlen(bad), "report", &err));
    assert_string_equal(err.code, want.code);
    assert_string_equal(err.message, want.message);
    /* an escaped key is the member too, as cJSON reads keys */
    const char *esc = "{\"v\":1,\"type\":\"report\",\"to\":\"c\",\"id\":1,"
                      "\"body\":{\"rep\\u006frt\":{\"a\":1},\"report\":{\"b\":2}}}";
    e = env_decode_raw(esc, strlen(esc), "report", &err);
    assert_non_null(e);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(e->body, "report");
    assert_true(cJSON_IsRaw(r));
    assert_string_equal(r->valuestring, "{\"a\":1}");
    env_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_envelope),   cmocka_unit_test(test_re_null_absent_or_int),
        cmocka_unit_test(test_not_json),        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_missing_keys),    cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_huge_values),     cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_encode_round_trip), cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_err_set),         cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_decode_raw_keeps_the_report_as_text),
        cmocka_unit_test(test_decode_raw_falls_back_to_env_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
