/* jscan and head: how the broker reads an envelope without a cJSON tree.
 * jscan validates JSON and lists the top-level members; head_read checks
 * the envelope as env_decode() does. Whatever they accept, cJSON accepts
 * too, with the same fields (tests/fuzz/fuzz_envelope.c checks that on
 * arbitrary input; the tables here are the cases worth naming). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "head.h"
#include "jscan.h"

static jscan_kind_t s_scan(const char *text)
{
    return jscan(text, strlen(text), NULL, NULL);
}

/* cJSON must accept whatever jscan accepts. */
static void s_cjson_agrees(const char *text, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    assert_non_null(root);
    cJSON_Delete(root);
}

static void test_kinds(void **state)
{
    (void) state;
    assert_int_equal(s_scan("{}"), JSCAN_OBJECT);
    assert_int_equal(s_scan(" \t\r\n{ } \n"), JSCAN_OBJECT);
    assert_int_equal(s_scan("[]"), JSCAN_ARRAY);
    assert_int_equal(s_scan("[1, [2, {}], {\"a\": [ ]}]"), JSCAN_ARRAY);
    assert_int_equal(s_scan("\"x\""), JSCAN_STRING);
    assert_int_equal(s_scan("-0.5e+10"), JSCAN_NUMBER);
    assert_int_equal(s_scan("true"), JSCAN_TRUE);
    assert_int_equal(s_scan("false"), JSCAN_FALSE);
    assert_int_equal(s_scan(" null "), JSCAN_NULL);
}

/* Valid JSON, in the corners: all of it parses with cJSON too. */
static void test_accepts(void **state)
{
    (void) state;
    const char *ok[] = {
        "0", "-0", "10", "1.25", "1e5", "1E-5", "-12.5e+3", "123456789012345678901234567890",
        "\"\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00e9\\u20AC\"",
        "\"\\ud83d\\ude00\"",       /* a surrogate pair */
        "\"\\u0000\"",              /* NUL: cJSON takes it (and stops the C string there) */
        "\"caf\xc3\xa9\"",          /* UTF-8 */
        "\"\xff\xfe\"",             /* not UTF-8: passed, as cJSON does */
        "{\"a\":1,\"a\":2}",        /* duplicate keys: valid JSON */
        "[[[[[[[[[[]]]]]]]]]]",
        "{\"k\":{\"k\":{\"k\":[true,false,null]}}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (jscan(ok[i], strlen(ok[i]), NULL, NULL) == JSCAN_INVALID)
            fail_msg("jscan refused valid JSON: %s", ok[i]);
        s_cjson_agrees(ok[i], strlen(ok[i]));
    }
}

/* Not JSON (some of them cJSON lets through: jscan is stricter). */
static void test_rejects(void **state)
{
    (void) state;
    const char *bad[] = {
        "", " ", "{", "}", "[", "]", "{]", "[}", "[1,]", "[,1]", "{\"a\":1,}", "{,}",
        "{\"a\"}", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{a:1}", "[1 2]", "{\"a\":1 \"b\":2}",
        "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "1.e5", "0x10", "NaN", "Infinity",
        "-Infinity", "tru", "nul", "falsey", "True", "\"abc", "\"a\\x\"", "\"\\u12\"",
        "\"\\uZZZZ\"", "\"\\uDC00\"", "\"\\uD800\"", "\"\\uD800x\"", "\"\\uD800\\u0041\"",
        "\"\\\"", "'a'",
        "{} x",           /* bytes after the value (cJSON ignores them) */
        "{}{}", "1 2",
        "\xef\xbb\xbf{}", /* a byte-order mark (cJSON skips it) */
        "{\x01}",         /* a control character as whitespace (cJSON takes any <= 32) */
        "[1,\f2]",
        "\"a\tb\"", "\"a\nb\"", /* raw control characters in a string */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (jscan(bad[i], strlen(bad[i]), NULL, NULL) != JSCAN_INVALID)
            fail_msg("jscan accepted: %s", bad[i]);
    /* NUL bytes: neither whitespace nor string content. */
    assert_int_equal(jscan("{}\0", 3, NULL, NULL), JSCAN_INVALID);
    assert_int_equal(jscan("\"a\0\"", 4, NULL, NULL), JSCAN_INVALID);
    /* The length is the end, wherever the NUL is. */
    assert_int_equal(jscan("{}}", 2, NULL, NULL), JSCAN_OBJECT);
    assert_int_equal(jscan(NULL, 0, NULL, NULL), JSCAN_INVALID);
}

/* cJSON's limits, so that it always agrees: nesting and number length. */
static void test_limits(void **state)
{
    (void) state;
    size_t n = CJSON_NESTING_LIMIT;
    char *deep = malloc(2 * n + 2);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    assert_int_equal(jscan(deep, 2 * n, NULL, NULL), JSCAN_ARRAY);
    s_cjson_agrees(deep, 2 * n);
    memset(deep, '[', n + 1);
    memset(deep + n + 1, ']', n + 1);
    assert_int_equal(jscan(deep, 2 * n + 2, NULL, NULL), JSCAN_INVALID);
    free(deep);

    char num[JSCAN_NUMBER_MAX + 2];
    memset(num, '1', sizeof num);
    assert_int_equal(jscan(num, JSCAN_NUMBER_MAX, NULL, NULL), JSCAN_NUMBER);
    assert_int_equal(jscan(num, JSCAN_NUMBER_MAX + 1, NULL, NULL), JSCAN_INVALID);
    char arr[JSCAN_NUMBER_MAX + 4] = "[";
    memset(arr + 1, '1', JSCAN_NUMBER_MAX);
    strcpy(arr + 1 + JSCAN_NUMBER_MAX, "]");
    s_cjson_agrees(arr, strlen(arr));
}

typedef struct {
    int n;
    char keys[8][16];
    jscan_kind_t kinds[8];
    char values[8][64];
} s_seen_t;

static void s_collect(const jscan_span_t *key, const jscan_span_t *value, void *arg)
{
    s_seen_t *s = arg;
    assert_true(s->n < 8);
    if (key)
        snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int) key->len, key->start);
    else
        snprintf(s->keys[s->n], sizeof s->keys[0], "(element)");
    s->kinds[s->n] = value->kind;
    snprintf(s->values[s->n], sizeof s->values[0], "%.*s", (int) value->len, value->start);
    s->n++;
}

/* The members of the top-level object, as spans of the input. */
static void test_members(void **state)
{
    (void) state;
    const char *text = "{\"a\": 1, \"b\" :{\"c\":[1,{\"d\":2}]}, \"e\":\"x\\\"y\", \"f\":[],"
                       "\"g\":{}, \"h\":null, \"i\":-2.5}";
    s_seen_t s = {0};
    assert_int_equal(jscan(text, strlen(text), s_collect, &s), JSCAN_OBJECT);
    const char *keys[] = {"a", "b", "e", "f", "g", "h", "i"};
    const char *values[] = {"1", "{\"c\":[1,{\"d\":2}]}", "x\\\"y", "[]", "{}", "null", "-2.5"};
    jscan_kind_t kinds[] = {JSCAN_NUMBER, JSCAN_OBJECT, JSCAN_STRING, JSCAN_ARRAY,
                            JSCAN_OBJECT, JSCAN_NULL,   JSCAN_NUMBER};
    /* a, b, e, f, g, h, i: nothing from inside b */
    assert_int_equal(s.n, 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(s.keys[i], keys[i]);
        assert_int_equal(s.kinds[i], kinds[i]);
        assert_string_equal(s.values[i], values[i]);
    }
    /* Arrays and scalars at the top report nothing. */
    s = (s_seen_t){0};
    assert_int_equal(jscan("[{\"a\":1}]", 9, s_collect, &s), JSCAN_ARRAY);
    assert_int_equal(s.n, 0);
}

/* jscan_each: an object's members as jscan gives them, an array's
 * elements (containers whole, nothing from inside them), key NULL. */
static void test_each_element(void **state)
{
    (void) state;
    const char *text = "[1, {\"a\":[2]}, \"s\", [], {}, [[3]], null, true]";
    s_seen_t s = {0};
    assert_int_equal(jscan_each(text, strlen(text), s_collect, &s), JSCAN_ARRAY);
    const char *values[] = {"1", "{\"a\":[2]}", "s", "[]", "{}", "[[3]]", "null", "true"};
    jscan_kind_t kinds[] = {JSCAN_NUMBER, JSCAN_OBJECT, JSCAN_STRING, JSCAN_ARRAY,
                            JSCAN_OBJECT, JSCAN_ARRAY,  JSCAN_NULL,   JSCAN_TRUE};
    assert_int_equal(s.n, 8);
    for (int i = 0; i < 8; i++) {
        assert_string_equal(s.keys[i], "(element)");
        assert_int_equal(s.kinds[i], kinds[i]);
        assert_string_equal(s.values[i], values[i]);
    }
    s = (s_seen_t){0};
    assert_int_equal(jscan_each("{\"k\":[1]}", 9, s_collect, &s), JSCAN_OBJECT);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0], "k");
    assert_string_equal(s.values[0], "[1]");
    s = (s_seen_t){0};
    assert_int_equal(jscan_each("[]", 2, s_collect, &s), JSCAN_ARRAY);
    assert_int_equal(s.n, 0);
    assert_int_equal(jscan_each("[1,]", 4, NULL, NULL), JSCAN_INVALID);
}

/* jscan_member: the first member of that name, keys as cJSON reads them. */
static void test_member_by_name(void **state)
{
    (void) state;
    jscan_span_t v;
    const char *text = "{\"a\":{\"b\":1},\"st\\u0061tus\":\"ok\",\"status\":\"late\","
                       "\"k\\u0000x\":2}";
    assert_true(jscan_member(text, strlen(text), "a", &v));
    assert_int_equal(v.kind, JSCAN_OBJECT);
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.start, "{\"b\":1}", 7);
    assert_true(jscan_member(text, strlen(text), "status", &v)); /* the escaped one, first */
    assert_int_equal(v.kind, JSCAN_STRING);
    assert_memory_equal(v.start, "ok", 2);
    assert_true(jscan_member(text, strlen(text), "k", &v)); /* cut at its NUL, as cJSON */
    assert_int_equal(v.kind, JSCAN_NUMBER);
    assert_false(jscan_member(text, strlen(text), "b", &v)); /* not at the top */
    assert_false(jscan_member("[{\"a\":1}]", 9, "a", &v));
    assert_false(jscan_member("{\"a\":1", 6, "a", &v)); /* not one JSON text */
}

/* jscan_find: the member jscan_member finds in a valid text, read no
 * further than it; nothing from text that is not valid up to the member. */
static void test_find_stops_at_the_member(void **state)
{
    (void) state;
    jscan_span_t v, w;
    const char *text = "{\"a\":{\"b\":1},\"st\\u0061tus\":\"ok\",\"status\":\"late\","
                       "\"k\\u0000x\":2,\"r\":[1,{\"x\":[]}]}";
    const char *names[] = {"a", "status", "k", "r", "b", "zz"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        bool found = jscan_member(text, strlen(text), names[i], &v);
        assert_int_equal(jscan_find(text, strlen(text), names[i], &w), found);
        if (found) {
            assert_int_equal(w.kind, v.kind);
            assert_ptr_equal(w.start, v.start);
            assert_int_equal(w.len, v.len);
        }
    }
    /* What follows the member is not read: a report's status in front of
     * half a megabyte is found at once (and garbage after it is not seen). */
    const char *head = "{\"tree\":\"t\",\"status\":\"cancelled\",\"root\":{\"unfinished";
    assert_true(jscan_find(head, strlen(head), "status", &w));
    assert_memory_equal(w.start, "cancelled", 9);
    assert_false(jscan_member(head, strlen(head), "status", &w));
    /* Invalid before the member, or the member itself cut: not found. */
    assert_false(jscan_find("{\"a\":01,\"s\":1}", 14, "s", &w));
    assert_false(jscan_find("{\"s\":\"ab", 9, "s", &w));
    assert_false(jscan_find("{\"s\":[1,2", 10, "s", &w));
    assert_false(jscan_find("[{\"s\":1}]", 9, "s", &w)); /* not an object */
    assert_false(jscan_find(NULL, 0, "s", &w));
}

/* Strings are read a word at a time: a special byte at any position of a
 * word is found, and every other byte passes. */
static void test_string_runs(void **state)
{
    (void) state;
    char text[64];
    for (int len = 0; len < 40; len++) {
        for (int at = 0; at <= len; at++) {
            memset(text, 'x', sizeof text);
            text[0] = '"';
            text[len + 1] = '"';
            /* plain, and with high and edge bytes anywhere */
            const unsigned char fine[] = {'x', 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc,
                                          0xff};
            for (size_t f = 0; f < sizeof fine; f++) {
                if (at < len)
                    text[1 + at] = (char) fine[f];
                assert_int_equal(jscan(text, (size_t) len + 2, NULL, NULL), JSCAN_STRING);
            }
            if (at == len)
                continue;
            /* a control character anywhere: not JSON */
            const unsigned char bad[] = {0x00, 0x01, 0x09, 0x0a, 0x1f};
            for (size_t b = 0; b < sizeof bad; b++) {
                text[1 + at] = (char) bad[b];
                assert_int_equal(jscan(text, (size_t) len + 2, NULL, NULL), JSCAN_INVALID);
            }
            /* a quote ends the string early: what follows is too much */
            text[1 + at] = '"';
            assert_int_equal(jscan(text, (size_t) len + 2, NULL, NULL), JSCAN_INVALID);
            /* an escape anywhere is read as one */
            if (at + 1 < len) {
                text[1 + at] = '\\';
                text[2 + at] = 'n';
                assert_int_equal(jscan(text, (size_t) len + 2, NULL, NULL), JSCAN_STRING);
                /* and its length and place are kept */
                char obj[80];
                int n = snprintf(obj, sizeof obj, "{\"k\":%.*s}", len + 2, text);
                s_seen_t seen = {0};
                assert_int_equal(jscan(obj, (size_t) n, s_collect, &seen), JSCAN_OBJECT);
                assert_int_equal(seen.n, 1);
                assert_int_equal(strlen(seen.values[0]), (size_t) len);
            }
        }
    }
}

static void test_strings_and_numbers(void **state)
{
    (void) state;
    char buf[32];
    jscan_span_t s = {.kind = JSCAN_STRING, .escaped = true};
    s.start = "a\\n\\u00e9\\ud83d\\ude00\\/";
    s.len = strlen(s.start);
    assert_int_equal(jscan_string(&s, buf, sizeof buf), 9);
    assert_memory_equal(buf, "a\n\xc3\xa9\xf0\x9f\x98\x80/", 10);
    /* C reads up to the first NUL, as it does cJSON's valuestring. */
    s.start = "type\\u0000more";
    s.len = strlen(s.start);
    assert_int_equal(jscan_string(&s, buf, sizeof buf), 4);
    assert_string_equal(buf, "type");
    /* Cut to the buffer; the whole length is returned. */
    s.start = "abcdefgh";
    s.len = 8;
    assert_int_equal(jscan_string(&s, buf, 4), 8);
    assert_string_equal(buf, "abc");

    jscan_span_t n = {.kind = JSCAN_NUMBER};
    const char *texts[] = {"0", "42", "-0", "1.5", "1e2", "-2.5E-1", "123456789012345",
                           "1234567890123456789"};
    double values[] = {0, 42, -0.0, 1.5, 100, -0.25, 123456789012345.0, 1234567890123456789.0};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        n.start = texts[i];
        n.len = strlen(texts[i]);
        assert_true(jscan_number(&n) == values[i]);
    }
}

/* ---- head ---------------------------------------------------------------- */

/* head_read and env_decode on the same bytes: the same verdict, the same
 * error, the same fields. */
static void s_same(const char *text)
{
    size_t len = strlen(text);
    head_t h, d;
    env_err_t herr, derr;
    memset(&herr, 0, sizeof herr);
    memset(&derr, 0, sizeof derr);
    int hrc = head_read(text, len, &h, &herr);
    env_t *env = env_decode(text, len, &derr);
    if (hrc != 0 || !env) {
        if (hrc == 0 || env)
            fail_msg("head_read %s, env_decode %s: %s", hrc == 0 ? "accepts" : herr.code,
                     env ? "accepts" : derr.code, text);
        assert_string_equal(herr.code, derr.code);
        assert_string_equal(herr.message, derr.message);
        return;
    }
    head_of_env(env, &d);
    assert_string_equal(h.type, d.type);
    assert_string_equal(h.to, d.to);
    assert_int_equal(h.id, d.id);
    assert_int_equal(h.re, d.re);
    assert_int_equal(h.from, d.from);
    assert_string_equal(h.from_name, d.from_name);
    env_destroy(&env);
}

static void test_head_reads_an_envelope(void **state)
{
    (void) state;
    const char *text = "{\"v\":1,\"type\":\"status\",\"to\":\"sup\",\"id\":7,\"re\":3,"
                       "\"body\":{\"tree\":\"t1\",\"nested\":{\"to\":\"x\"}},"
                       "\"from\":\"sup.ctl-2\"}";
    head_t h;
    env_err_t err;
    assert_int_equal(head_read(text, strlen(text), &h, &err), 0);
    assert_string_equal(h.type, "status");
    assert_string_equal(h.to, "sup");
    assert_int_equal(h.id, 7);
    assert_int_equal(h.re, 3);
    assert_int_equal(h.from, HEAD_FROM_NAME);
    assert_string_equal(h.from_name, "sup.ctl-2");
    s_same(text);
}

/* Every check of env_decode, in its order, with its codes and messages. */
static void test_head_checks_as_env_decode(void **state)
{
    (void) state;
    const char *cases[] = {
        "not json", "", "[1,2,3]", "\"string\"", "null",
        "{\"type\":\"peers\",\"to\":\"broker\",\"id\":3,\"re\":null,\"body\":{}}",
        "{\"v\":2,\"type\":\"peers\",\"to\":\"broker\",\"id\":4,\"re\":null,\"body\":{}}",
        "{\"v\":\"1\",\"type\":\"peers\",\"to\":\"broker\",\"id\":4,\"re\":null,\"body\":{}}",
        "{\"v\":1.0,\"type\":\"peers\",\"to\":\"broker\",\"id\":4,\"re\":null,\"body\":{}}",
        "{\"v\":0.1e1,\"type\":\"peers\",\"to\":\"broker\",\"id\":4,\"re\":null,\"body\":{}}",
        "{\"v\":1e999,\"type\":\"peers\",\"to\":\"broker\",\"id\":4,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"to\":\"broker\",\"id\":5,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":7,\"to\":\"broker\",\"id\":6,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"0123456789012345678901234567890\",\"to\":\"b\",\"id\":6,"
        "\"body\":{}}",
        "{\"v\":1,\"type\":\"01234567890123456789012345678901\",\"to\":\"b\",\"id\":6,"
        "\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"id\":7,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"\",\"id\":8,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"\\u0000x\",\"id\":8,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":-1,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":-0,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1.5,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":2.0,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1e3,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":\"9\",\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1e300,\"re\":null,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":9007199254740991,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":9007199254740992,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":10,\"re\":\"x\",\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":10,\"re\":-3,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":10,\"re\":4,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":11,\"re\":null,\"body\":[]}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":12,\"re\":null}",
        "{\"v\":1,\"type\":\"frobnicate\",\"to\":\"broker\",\"id\":13,\"re\":null,\"body\":{}}",
        /* an envelope key twice is refused (which would count?); others may repeat */
        "{\"v\":1,\"type\":\"peers\",\"to\":\"a\",\"to\":\"b\",\"id\":1,\"body\":{},\"body\":1}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"a\",\"id\":1,\"body\":1,\"body\":{}}",
        "{\"v\":1,\"type\":\"status\",\"to\":\"a\",\"id\":1,\"body\":{},\"from\":\"x\",\"from\":\"y\"}",
        "{\"v\":1,\"t\\u0079pe\":\"peers\",\"type\":\"peers\",\"to\":\"a\",\"id\":1,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\",\"to\":\"a\",\"id\":1,\"body\":{},\"x\":1,\"x\":2}",
        /* escaped keys and values */
        "{\"\\u0076\":1,\"t\\u0079pe\":\"p\\u0065ers\",\"to\":\"br\\/oker\",\"id\":1,"
        "\"body\":{}}",
        "{\"v\":1,\"type\\u0000x\":\"peers\",\"to\":\"b\",\"id\":1,\"body\":{}}",
        "{\"v\":1,\"type\":\"peers\\u0000junk\",\"to\":\"b\",\"id\":1,\"body\":{}}",
        /* from: absent, the sender, another, not a string, too long */
        "{\"v\":1,\"type\":\"status\",\"to\":\"b\",\"id\":1,\"body\":{},\"from\":\"a\"}",
        "{\"v\":1,\"type\":\"status\",\"to\":\"b\",\"id\":1,\"body\":{},\"from\":3}",
        "{\"v\":1,\"type\":\"status\",\"to\":\"b\",\"id\":1,\"body\":{},\"from\":null}",
        "{\"v\":1,\"type\":\"status\",\"to\":\"b\",\"id\":1,\"body\":{},\"from\":\"a\\u0000b\"}",
        "{\"v\":1,\"type\":\"status\",\"to\":\"b\",\"id\":1,\"body\":{},\"from\":\""
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_same(cases[i]);
}

/* Where jscan is stricter than cJSON, head_read answers bad_json for what
 * env_decode takes. */
static void test_head_is_stricter(void **state)
{
    (void) state;
    const char *cases[] = {
        "{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":{}} trailing",
        "{\"v\":01,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":{}}",
        "{\"v\":1,\"type\":\"pe\x01rs\",\"to\":\"broker\",\"id\":1,\"body\":{}}",
        "\xef\xbb\xbf{\"v\":1,\"type\":\"peers\",\"to\":\"broker\",\"id\":1,\"body\":{}}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        head_t h;
        env_err_t err;
        assert_int_equal(head_read(cases[i], strlen(cases[i]), &h, &err), -1);
        assert_string_equal(err.code, "bad_json");
        env_t *env = env_decode(cases[i], strlen(cases[i]), &err);
        if (env) /* cJSON takes some of them; never the other way round */
            env_destroy(&env);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_member_by_name),
        cmocka_unit_test(test_each_element),
        cmocka_unit_test(test_find_stops_at_the_member),
        cmocka_unit_test(test_string_runs),
        cmocka_unit_test(test_strings_and_numbers),
        cmocka_unit_test(test_head_reads_an_envelope),
        cmocka_unit_test(test_head_checks_as_env_decode),
        cmocka_unit_test(test_head_is_stricter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
