/* logbuf: a node's output kept line by line, bounded, read from a cursor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logbuf.h"

/* Every line the buffer holds for streams after the cursor, as
 * "seq:stream:t_ms:text" joined by '|' (stream as 'o' or 'e'). */
static const char *s_dump(const logbuf_t *b, uint64_t after, unsigned streams)
{
    static char out[4096];
    out[0] = 0;
    for (size_t i = logbuf_find(b, after, streams); i < logbuf_lines(b);
         i = logbuf_next(b, i + 1, streams)) {
        logbuf_line_t l;
        logbuf_at(b, i, &l);
        size_t used = strlen(out);
        snprintf(out + used, sizeof out - used, "%s%llu:%c:%lld:%s", used ? "|" : "",
                 (unsigned long long) l.seq, l.stream == LOGBUF_STDOUT ? 'o' : 'e',
                 (long long) l.t_ms, l.text);
    }
    return out;
}

static void test_lines_from_chunks(void **state)
{
    (void) state;
    uint64_t seq = 0; /* the tree's counter: every node's lines take from it */
    logbuf_t *b = logbuf_new(NULL);
    assert_non_null(b);
    /* A pipe delivers chunks, not lines: a line is complete at its newline
     * and is dated by its first byte. */
    logbuf_append(b, LOGBUF_STDOUT, "hel", 3, 10, &seq);
    assert_int_equal(logbuf_lines(b), 0);
    logbuf_append(b, LOGBUF_STDOUT, "lo\nwor", 6, 20, &seq);
    logbuf_append(b, LOGBUF_STDERR, "oops\n\n", 6, 25, &seq);
    logbuf_append(b, LOGBUF_STDOUT, "ld\n", 3, 30, &seq);
    assert_string_equal(s_dump(b, 0, LOGBUF_ALL), "1:o:10:hello|2:e:25:oops|3:e:25:|4:o:20:world");
    assert_int_equal(seq, 4);
    assert_int_equal(logbuf_bytes(b), strlen("hellooopsworld"));
    logbuf_destroy(&b);
    assert_null(b);
}

static void test_cursor_and_stream_filter(void **state)
{
    (void) state;
    uint64_t seq = 0;
    logbuf_t *b = logbuf_new(NULL);
    logbuf_append(b, LOGBUF_STDOUT, "a\nb\n", 4, 1, &seq);
    logbuf_append(b, LOGBUF_STDERR, "c\n", 2, 2, &seq);
    logbuf_append(b, LOGBUF_STDOUT, "d\n", 2, 3, &seq);
    /* A reader keeps the seq of the last line it saw and asks for more. */
    assert_string_equal(s_dump(b, 2, LOGBUF_ALL), "3:e:2:c|4:o:3:d");
    assert_string_equal(s_dump(b, 4, LOGBUF_ALL), "");
    assert_string_equal(s_dump(b, 0, LOGBUF_MASK(LOGBUF_STDERR)), "3:e:2:c");
    assert_string_equal(s_dump(b, 1, LOGBUF_MASK(LOGBUF_STDOUT)), "2:o:1:b|4:o:3:d");
    assert_int_equal(logbuf_find(b, 3, LOGBUF_MASK(LOGBUF_STDERR)), logbuf_lines(b));
    logbuf_destroy(&b);
}

static void test_partial_last_line_kept_at_close(void **state)
{
    (void) state;
    uint64_t seq = 0;
    logbuf_t *b = logbuf_new(NULL);
    logbuf_append(b, LOGBUF_STDERR, "done\nno newline", 15, 7, &seq);
    assert_string_equal(s_dump(b, 0, LOGBUF_ALL), "1:e:7:done");
    logbuf_close(b, LOGBUF_STDERR, &seq);
    assert_string_equal(s_dump(b, 0, LOGBUF_ALL), "1:e:7:done|2:e:7:no newline");
    logbuf_close(b, LOGBUF_STDERR, &seq); /* nothing pending: no empty line */
    logbuf_close(b, LOGBUF_STDOUT, &seq);
    assert_int_equal(logbuf_lines(b), 2);
    logbuf_destroy(&b);
}

static void test_oldest_lines_go_first(void **state)
{
    (void) state;
    uint64_t seq = 0;
    logbuf_limits_t lim = {.max_lines = 3, .max_bytes = 1000, .line_max = 100};
    logbuf_t *b = logbuf_new(&lim);
    for (int i = 0; i < 5; i++) {
        char line[8];
        int n = snprintf(line, sizeof line, "l%d\n", i);
        logbuf_append(b, LOGBUF_STDOUT, line, (size_t) n, i, &seq);
    }
    assert_string_equal(s_dump(b, 0, LOGBUF_ALL), "3:o:2:l2|4:o:3:l3|5:o:4:l4");
    assert_int_equal(logbuf_dropped(b), 2);
    /* A reader at cursor 1 missed line 2: the newest dropped seq says so. */
    assert_int_equal(logbuf_dropped_seq(b), 2);
    logbuf_destroy(&b);

    /* The byte budget: whichever limit comes first. */
    seq = 0;
    lim = (logbuf_limits_t){.max_lines = 100, .max_bytes = 10, .line_max = 10};
    b = logbuf_new(&lim);
    logbuf_append(b, LOGBUF_STDOUT, "aaaa\nbbbb\ncccc\n", 15, 0, &seq);
    assert_string_equal(s_dump(b, 0, LOGBUF_ALL), "2:o:0:bbbb|3:o:0:cccc");
    assert_int_equal(logbuf_bytes(b), 8);
    assert_int_equal(logbuf_dropped(b), 1);
    logbuf_destroy(&b);
}

static void test_long_lines_are_cut(void **state)
{
    (void) state;
    uint64_t seq = 0;
    logbuf_limits_t lim = {.max_lines = 10, .max_bytes = 100, .line_max = 4};
    logbuf_t *b = logbuf_new(&lim);
    logbuf_append(b, LOGBUF_STDOUT, "abcdefg", 7, 0, &seq);
    logbuf_append(b, LOGBUF_STDOUT, "hij\nok\n", 7, 5, &seq);
    logbuf_line_t l;
    logbuf_at(b, 0, &l);
    assert_string_equal(l.text, "abcd");
    assert_int_equal(l.len, 4);
    assert_int_equal(l.cut, 6); /* "efghij" */
    logbuf_at(b, 1, &l);
    assert_string_equal(l.text, "ok");
    assert_int_equal(l.cut, 0);
    logbuf_destroy(&b);
}

/* A line that arrives a few bytes at a time, longer than a short line's
 * first buffer, is kept whole. */
static void test_line_in_small_chunks(void **state)
{
    (void) state;
    uint64_t seq = 0;
    logbuf_t *b = logbuf_new(NULL);
    char want[1001];
    for (int i = 0; i < 1000; i++)
        want[i] = (char) ('a' + i % 26);
    want[1000] = 0;
    for (int i = 0; i < 1000; i += 7)
        logbuf_append(b, LOGBUF_STDERR, want + i, i + 7 <= 1000 ? 7 : (size_t) (1000 - i), i, &seq);
    logbuf_append(b, LOGBUF_STDERR, "\n", 1, 2000, &seq);
    logbuf_line_t l;
    assert_int_equal(logbuf_lines(b), 1);
    logbuf_at(b, 0, &l);
    assert_int_equal(l.len, 1000);
    assert_int_equal(l.cut, 0);
    assert_int_equal(l.t_ms, 0);
    assert_string_equal(l.text, want);
    logbuf_destroy(&b);
}

/* Flood: memory stays within the budget whatever the volume. */
static void test_flood_is_bounded(void **state)
{
    (void) state;
    uint64_t seq = 0;
    logbuf_limits_t lim = {.max_lines = 1000, .max_bytes = 256 * 1024, .line_max = 4096};
    logbuf_t *b = logbuf_new(&lim);
    char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (size_t i = 63; i < sizeof chunk; i += 64)
        chunk[i] = '\n';
    for (int i = 0; i < 128; i++) /* 8 MiB */
        logbuf_append(b, LOGBUF_STDOUT, chunk, sizeof chunk, i, &seq);
    assert_int_equal(seq, 131072);
    assert_int_equal(logbuf_lines(b), 1000);
    assert_int_equal(logbuf_dropped(b), 131072 - 1000);
    assert_true(logbuf_bytes(b) <= 256 * 1024);
    logbuf_line_t l;
    logbuf_at(b, 999, &l);
    assert_int_equal(l.seq, 131072);
    assert_int_equal(l.len, 63);
    logbuf_destroy(&b);
}

/* The sink sees every line, dropped or not (the log directory's feed). */
typedef struct {
    int lines;
    uint64_t last_seq;
    char last[64];
} s_seen_t;

static void s_sink(void *arg, const logbuf_line_t *line)
{
    s_seen_t *seen = arg;
    seen->lines++;
    seen->last_seq = line->seq;
    snprintf(seen->last, sizeof seen->last, "%s:%s", logbuf_stream_name(line->stream),
             line->text);
}

static void test_sink_sees_every_line(void **state)
{
    (void) state;
    uint64_t seq = 100; /* another node of the tree took 1..100 */
    logbuf_limits_t lim = {.max_lines = 1, .max_bytes = 100, .line_max = 100};
    logbuf_t *b = logbuf_new(&lim);
    s_seen_t seen = {0};
    logbuf_set_sink(b, s_sink, &seen);
    logbuf_append(b, LOGBUF_STDOUT, "one\ntwo\nthree\n", 14, 0, &seq);
    logbuf_append(b, LOGBUF_STDERR, "tail", 4, 1, &seq);
    logbuf_close(b, LOGBUF_STDERR, &seq);
    assert_int_equal(seen.lines, 4);
    assert_int_equal(seen.last_seq, 104);
    assert_string_equal(seen.last, "stderr:tail");
    assert_int_equal(logbuf_lines(b), 1);
    assert_int_equal(logbuf_dropped(b), 3);
    logbuf_destroy(&b);
}

static void test_stream_names(void **state)
{
    (void) state;
    assert_int_equal(logbuf_stream_parse("stdout"), LOGBUF_STDOUT);
    assert_int_equal(logbuf_stream_parse("stderr"), LOGBUF_STDERR);
    assert_int_equal(logbuf_stream_parse("both"), -1);
    assert_int_equal(logbuf_stream_parse(NULL), -1);
    assert_string_equal(logbuf_stream_name(LOGBUF_STDERR), "stderr");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_from_chunks),
        cmocka_unit_test(test_cursor_and_stream_filter),
        cmocka_unit_test(test_partial_last_line_kept_at_close),
        cmocka_unit_test(test_oldest_lines_go_first),
        cmocka_unit_test(test_long_lines_are_cut),
        cmocka_unit_test(test_line_in_small_chunks),
        cmocka_unit_test(test_flood_is_bounded),
        cmocka_unit_test(test_sink_sees_every_line),
        cmocka_unit_test(test_stream_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
