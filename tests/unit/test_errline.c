/* errline: a node's last ARBOR-ERROR line, kept whole up to 64 KiB and cut
 * with a marker beyond (issue 13, defect 1: a line longer than the 4 KiB
 * stderr tail used to lose its start, and the error became NonZeroExit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errline.h"

#define MARK "\xe2\x80\xa6[truncated "

/* Feed text in chunks of step bytes (the mark and the JSON split anywhere). */
static void s_feed(errline_t *el, const char *text, size_t len, size_t step)
{
    for (size_t i = 0; i < len; i += step)
        errline_feed(el, text + i, len - i < step ? len - i : step);
}

static char *s_repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t u = strlen(unit);
    char *out = malloc(strlen(head) + u * times + strlen(tail) + 1);
    char *p = stpcpy(out, head);
    for (size_t i = 0; i < times; i++)
        p = stpcpy(p, unit);
    strcpy(p, tail);
    return out;
}

static const char *s_str(const cJSON *e, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(e, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The error of one stderr text, fed in chunks of step bytes. */
static cJSON *s_error_of(const char *text, size_t step, char *why, size_t size)
{
    errline_t el = {0};
    s_feed(&el, text, strlen(text), step);
    cJSON *e = errline_error(&el, why, size);
    errline_free(&el);
    return e;
}

static void test_the_last_line_at_a_line_start(void **state)
{
    (void) state;
    const char *out = "starting\nARBOR-ERROR {\"type\":\"Old\",\"message\":\"first\"}\n"
                      "noise ARBOR-ERROR {\"type\":\"NotALine\",\"message\":\"x\"}\n"
                      "ARBOR-ARBOR-ERROR {\"type\":\"NotEither\",\"message\":\"x\"}\n"
                      "ARBOR-ERROR {\"type\":\"Late\",\"message\":\"m\",\"phase\":\"cleanup\"}\r\n"
                      "bye\n";
    for (size_t step = 1; step <= strlen(out); step += 7) {
        char why[128];
        cJSON *e = s_error_of(out, step, why, sizeof why);
        assert_non_null(e);
        assert_string_equal(s_str(e, "type"), "Late");
        assert_string_equal(s_str(e, "phase"), "cleanup");
        cJSON_Delete(e);
    }
    char why[128] = "x";
    assert_null(s_error_of("no error here\nARBOR-ERROR", 3, why, sizeof why));
    assert_string_equal(why, ""); /* a mark not whole: no line, nothing to say */
    assert_null(s_error_of("ARBOR-ERROR {broken\n", 5, why, sizeof why));
    assert_non_null(strstr(why, "not a JSON object"));
    assert_null(s_error_of("ARBOR-ERROR {\"message\":\"no type\"}\n", 64, why, sizeof why));
    assert_non_null(strstr(why, "\"type\""));
}

/* Up to ERRLINE_MAX bytes of JSON: whole, however long the stderr tail is. */
static void test_long_lines_arrive_whole(void **state)
{
    (void) state;
    char *line = s_repeat("ARBOR-ERROR {\"type\":\"BigErr\",\"message\":\"", "x", 10000, "\"}\nbye\n");
    cJSON *e = s_error_of(line, 4096, NULL, 0);
    assert_non_null(e);
    assert_string_equal(s_str(e, "type"), "BigErr");
    assert_int_equal(strlen(s_str(e, "message")), 10000);
    cJSON_Delete(e);
    free(line);
    /* exactly ERRLINE_MAX bytes of JSON */
    size_t fill = ERRLINE_MAX - strlen("{\"type\":\"E\",\"message\":\"\"}");
    line = s_repeat("ARBOR-ERROR {\"type\":\"E\",\"message\":\"", "y", fill, "\"}");
    e = s_error_of(line, 1000, NULL, 0);
    assert_non_null(e);
    assert_int_equal(strlen(s_str(e, "message")), fill);
    assert_null(strstr(s_str(e, "message"), MARK));
    cJSON_Delete(e);
    free(line);
}

/* Over ERRLINE_MAX: cut, closed again, the marker where it was cut. */
static void test_longer_lines_are_cut_with_a_marker(void **state)
{
    (void) state;
    char *line = s_repeat("ARBOR-ERROR {\"type\":\"Huge\",\"message\":\"", "m", 100000, "\"}\n");
    cJSON *e = s_error_of(line, 8192, NULL, 0);
    assert_non_null(e);
    const char *m = s_str(e, "message");
    assert_string_equal(s_str(e, "type"), "Huge");
    assert_true(strncmp(m, "mmmm", 4) == 0);
    /* what was not kept: the rest of the m's and the closing "} */
    size_t kept = ERRLINE_MAX - strlen("{\"type\":\"Huge\",\"message\":\"");
    char want[64];
    snprintf(want, sizeof want, MARK "%zu bytes]", 100000 - kept + 2);
    assert_string_equal(m + kept, want);
    cJSON_Delete(e);
    free(line);
    /* Cut in the traceback: it carries the marker, the message is whole. */
    line = s_repeat("ARBOR-ERROR {\"type\":\"T\",\"message\":\"short\",\"traceback\":\"", "frame\\n",
                    20000, "\"}\n");
    e = s_error_of(line, 10000, NULL, 0);
    assert_non_null(e);
    assert_string_equal(s_str(e, "message"), "short");
    const char *tb = s_str(e, "traceback");
    assert_true(strncmp(tb, "frame\nframe\n", 12) == 0);
    assert_non_null(strstr(tb, MARK));
    assert_string_equal(tb + strlen(tb) - 6, "bytes]");
    cJSON_Delete(e);
    free(line);
    /* Cut in a key: back to the last whole value, the marker on the message. */
    line = s_repeat("ARBOR-ERROR {\"type\":\"K\",\"message\":\"m\",\"", "k", 70000, "\":1}\n");
    e = s_error_of(line, 10000, NULL, 0);
    assert_non_null(e);
    assert_string_equal(s_str(e, "type"), "K");
    assert_true(strncmp(s_str(e, "message"), "m" MARK, strlen("m" MARK)) == 0);
    cJSON_Delete(e);
    free(line);
    /* The type after a huge message is gone: "Error", never lost. */
    line = s_repeat("ARBOR-ERROR {\"message\":\"", "z", 70000, "\",\"type\":\"Late\"}\n");
    e = s_error_of(line, 10000, NULL, 0);
    assert_non_null(e);
    assert_string_equal(s_str(e, "type"), "Error");
    assert_non_null(strstr(s_str(e, "message"), MARK));
    cJSON_Delete(e);
    free(line);
}

/* A cut never splits a character: a UTF-8 sequence, an escape, a surrogate
 * pair of escapes (each would make the closed text invalid). */
static void test_cuts_keep_characters_whole(void **state)
{
    (void) state;
    const char *units[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\\n", "\\u00e9",
                           "\\ud83d\\ude00"};
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        char quoted[32];
        snprintf(quoted, sizeof quoted, "\"%s\"", units[u]);
        cJSON *one = cJSON_Parse(quoted); /* the character the unit stands for */
        assert_true(cJSON_IsString(one));
        for (size_t shift = 0; shift < 12; shift++) {
            char head[64];
            snprintf(head, sizeof head, "ARBOR-ERROR {\"type\":\"U\",\"message\":\"%.*s", (int) shift,
                     "abcdefghijkl");
            char *line = s_repeat(head, units[u], 70000 / strlen(units[u]) + 1, "\"}\n");
            cJSON *e = s_error_of(line, 65536, NULL, 0);
            assert_non_null(e);
            /* what is kept is the letters and whole characters only (cJSON
             * does not check UTF-8: a split one would parse too) */
            const char *msg = s_str(e, "message"), *cut = strstr(msg, MARK);
            assert_non_null(cut);
            assert_memory_equal(msg, "abcdefghijkl", shift);
            size_t n = strlen(one->valuestring), kept = (size_t) (cut - msg) - shift;
            assert_true(kept > 0 && kept % n == 0);
            for (size_t at = shift; at < (size_t) (cut - msg); at += n)
                assert_memory_equal(msg + at, one->valuestring, n);
            cJSON_Delete(e);
            free(line);
        }
        cJSON_Delete(one);
    }
}

/* cJSON cuts a string at \u0000: such a line is not the error (the derived
 * one stands), whole or cut; the reason names where. */
static void test_a_nul_is_refused(void **state)
{
    (void) state;
    char why[128];
    assert_null(s_error_of("ARBOR-ERROR {\"type\":\"Bad\\u0000Type\",\"message\":\"m\"}\n", 9, why,
                           sizeof why));
    assert_non_null(strstr(why, "\\u0000"));
    assert_non_null(strstr(why, "/type"));
    char *line = s_repeat("ARBOR-ERROR {\"type\":\"T\",\"message\":\"a\\u0000", "b", 70000, "\"}\n");
    assert_null(s_error_of(line, 4096, why, sizeof why));
    assert_non_null(strstr(why, "/message"));
    free(line);
    /* an escaped backslash, then u0000: text */
    cJSON *e = s_error_of("ARBOR-ERROR {\"type\":\"T\",\"message\":\"C:\\\\u0000\"}\n", 9, NULL, 0);
    assert_non_null(e);
    assert_string_equal(s_str(e, "message"), "C:\\u0000");
    cJSON_Delete(e);
}

/* Where the last line is in the stream: a report's stderr leaves it out. */
static void test_covers(void **state)
{
    (void) state;
    errline_t el = {0};
    const char *out = "abc\nARBOR-ERROR {}\nxyz\n";
    s_feed(&el, out, strlen(out), 2);
    assert_false(errline_covers(&el, 3));
    assert_true(errline_covers(&el, 4));
    assert_true(errline_covers(&el, 18)); /* its newline */
    assert_false(errline_covers(&el, 19));
    errline_feed(&el, "ARBOR-ERROR {", 13); /* open: to the end */
    assert_true(errline_covers(&el, 1000));
    assert_false(errline_covers(&el, 20));
    errline_free(&el);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_last_line_at_a_line_start),
        cmocka_unit_test(test_long_lines_arrive_whole),
        cmocka_unit_test(test_longer_lines_are_cut_with_a_marker),
        cmocka_unit_test(test_cuts_keep_characters_whole),
        cmocka_unit_test(test_a_nul_is_refused),
        cmocka_unit_test(test_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
