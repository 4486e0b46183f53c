/* notify: what a worker's datagram means to its supervisor, and telling a
 * worker an event — used as the supervisor uses them, with the worker's
 * side (libarbor_worker) on the other end of a socketpair and drain
 * reading it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arbor_worker.h"
#include "drain.h"
#include "notify.h"

static notify_kind_t s_parse(const char *text, notify_msg_t *m)
{
    return notify_parse(text, strlen(text), m);
}

static void test_phase(void **state)
{
    (void) state;
    notify_msg_t m;
    assert_int_equal(s_parse("{\"phase\":\"ready\"}", &m), NOTIFY_PHASE);
    assert_string_equal(m.phase, "ready");
    assert_int_equal(m.t_mono_ms, -1); /* absent: the supervisor says "now" */
    notify_msg_clear(&m);
    /* Our libraries date it; a trailing newline (printf '...\n') is fine. */
    assert_int_equal(s_parse("{\"phase\":\"cleanup\",\"t_mono_ms\":1234}\n", &m), NOTIFY_PHASE);
    assert_string_equal(m.phase, "cleanup");
    assert_int_equal(m.t_mono_ms, 1234);
    notify_msg_clear(&m);
}

static void test_error(void **state)
{
    (void) state;
    notify_msg_t m;
    assert_int_equal(s_parse("{\"error\":{\"type\":\"ValueError\",\"message\":\"row 17\","
                             "\"traceback\":\"File x, line 3\",\"phase\":\"forged\"}}", &m),
                     NOTIFY_ERROR);
    assert_string_equal(cJSON_GetObjectItem(m.error, "type")->valuestring, "ValueError");
    assert_string_equal(cJSON_GetObjectItem(m.error, "message")->valuestring, "row 17");
    assert_string_equal(cJSON_GetObjectItem(m.error, "traceback")->valuestring, "File x, line 3");
    /* Only the contract's keys: the supervisor says which phase it was. */
    assert_null(cJSON_GetObjectItem(m.error, "phase"));
    assert_string_equal(m.phase, "");
    notify_msg_clear(&m);
    assert_int_equal(s_parse("{\"error\":{\"type\":\"Oops\"}}", &m), NOTIFY_ERROR);
    assert_string_equal(cJSON_GetObjectItem(m.error, "message")->valuestring, "");
    notify_msg_clear(&m);
}

static void test_spawn_and_cancel_are_recognised(void **state)
{
    (void) state;
    notify_msg_t m;
    assert_int_equal(s_parse("{\"spawn\":{\"name\":\"kid\",\"run\":\"sleep\"},\"id\":7}", &m),
                     NOTIFY_SPAWN);
    assert_int_equal(m.id, 7);
    assert_string_equal(cJSON_GetObjectItem(m.node, "name")->valuestring, "kid");
    notify_msg_clear(&m);
    assert_int_equal(s_parse("{\"cancel\":\"root/a/b\"}", &m), NOTIFY_CANCEL_REQ);
    assert_string_equal(m.path, "root/a/b");
    notify_msg_clear(&m);
}

static void test_bad_input_is_a_kind_not_a_crash(void **state)
{
    (void) state;
    static const struct {
        const char *text;
        notify_kind_t kind;
    } cases[] = {
        {"", NOTIFY_MALFORMED},
        {"garbage", NOTIFY_MALFORMED},
        {"[\"phase\",\"ready\"]", NOTIFY_MALFORMED},
        {"{\"phase\":\"ready\"}{\"phase\":\"running\"}", NOTIFY_MALFORMED}, /* one per datagram */
        {"{\"phase\":\"ready\"", NOTIFY_MALFORMED},
        {"{\"phase\":7}", NOTIFY_MALFORMED},
        {"{\"error\":\"boom\"}", NOTIFY_MALFORMED},
        {"{\"error\":{\"message\":\"no type\"}}", NOTIFY_MALFORMED},
        {"{\"error\":{\"type\":\"\"}}", NOTIFY_MALFORMED},
        {"{\"spawn\":{},\"id\":1.5}", NOTIFY_MALFORMED},
        {"{\"spawn\":{},\"id\":8888888888888888888888888888880}", NOTIFY_MALFORMED}, /* fuzz_notify */
        {"{\"cancel\":3}", NOTIFY_MALFORMED},
        {"{\"phase\":\"exited\"}", NOTIFY_UNKNOWN}, /* the supervisor's to say */
        {"{\"phase\":\"dancing\"}", NOTIFY_UNKNOWN},
        {"{\"status\":\"ok\"}", NOTIFY_UNKNOWN},
        {"{}", NOTIFY_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        notify_msg_t m;
        assert_int_equal(s_parse(cases[i].text, &m), cases[i].kind);
        assert_true(m.why[0] != 0);
        assert_null(m.error);
        notify_msg_clear(&m);
    }
    /* Longer than the maximum: it arrived cut (drain reads one byte more). */
    size_t big = NOTIFY_MSG_MAX + 1;
    char *text = malloc(big);
    memset(text, ' ', big);
    memcpy(text, "{\"phase\":\"ready\"}", 17);
    notify_msg_t m;
    assert_int_equal(notify_parse(text, big, &m), NOTIFY_TOOBIG);
    assert_int_equal(notify_parse(text, big - 1, &m), NOTIFY_PHASE); /* exactly 64 KiB: fine */
    notify_msg_clear(&m);
    free(text);
}

/* cJSON decodes \u0000 and then reads the string as a C string: a spawn
 * named "ab\u0000cd" became a child "ab", an error type "Bad\u0000Type"
 * became "Bad", a phase "ready\u0000x" became "ready". Any such string is
 * malformed, and the reason names where it is (issue 13, defect 5). */
static void test_nul_in_a_string_is_malformed(void **state)
{
    (void) state;
    static const struct {
        const char *text, *where;
    } cases[] = {
        {"{\"spawn\":{\"name\":\"ab\\u0000cd\",\"run\":\"sleep\"},\"id\":1}", "/spawn/name"},
        {"{\"spawn\":{\"name\":\"k\",\"children\":[{\"name\":\"x\\u0000\"}]},\"id\":2}",
         "/spawn/children/0/name"},
        {"{\"error\":{\"type\":\"Bad\\u0000Type\",\"message\":\"m\"}}", "/error/type"},
        {"{\"error\":{\"type\":\"T\",\"message\":\"m\\u0000hidden\"}}", "/error/message"},
        {"{\"phase\":\"ready\\u0000x\"}", "/phase"},
        {"{\"cancel\":\"root/a\\u0000b\"}", "/cancel"},
        {"{\"phase\":\"ready\",\"no\\u0000te\":1}", "/no\\u0000te"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        notify_msg_t m;
        assert_int_equal(s_parse(cases[i].text, &m), NOTIFY_MALFORMED);
        assert_non_null(strstr(m.why, "\\u0000"));
        assert_non_null(strstr(m.why, cases[i].where));
        assert_null(m.error);
        assert_null(m.node);
        assert_null(m.path);
        notify_msg_clear(&m);
    }
    /* A raw NUL byte, which cJSON takes inside a string and cuts there too;
     * NULs after the object (a C string's end) are allowed. */
    static const char raw[][48] = {"{\"phase\":\"ready\0x\"}", "{\"error\":{\"type\":\"Bad\0T\"}}",
                                   "{\"spawn\":{\"name\":\"ab\0cd\"},\"id\":1}"};
    static const size_t raw_len[] = {19, 26, 33};
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
        notify_msg_t m;
        assert_int_equal(notify_parse(raw[i], raw_len[i], &m), NOTIFY_MALFORMED);
        assert_null(m.error);
        assert_null(m.node);
        notify_msg_clear(&m);
    }
    notify_msg_t m;
    assert_int_equal(notify_parse("{\"phase\":\"ready\"}\0\0", 19, &m), NOTIFY_PHASE);
    notify_msg_clear(&m);
    /* An escaped backslash then "u0000" is text, not a NUL. */
    assert_int_equal(s_parse("{\"error\":{\"type\":\"T\",\"message\":\"C:\\\\u0000\"}}", &m),
                     NOTIFY_ERROR);
    assert_string_equal(cJSON_GetObjectItem(m.error, "message")->valuestring, "C:\\u0000");
    notify_msg_clear(&m);
}

/* ---- both ends ------------------------------------------------------------ */

typedef struct {
    notify_msg_t msgs[8];
    int n, eofs;
} s_seen_t;

static void s_collect(void *arg, uint64_t key, const char *data, size_t len, bool eof)
{
    s_seen_t *seen = arg;
    assert_int_equal(key, 42);
    if (eof)
        seen->eofs++;
    else
        notify_parse(data, len, &seen->msgs[seen->n++]);
}

static void test_worker_reports_supervisor_tells(void **state)
{
    (void) state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    char fd[16];
    snprintf(fd, sizeof fd, "%d", sv[1]);
    setenv(ARBOR_WORKER_ENV, fd, 1);
    arbor_worker_t *w = arbor_worker_from_env();
    assert_non_null(w);
    assert_int_equal(arbor_worker_fd(w), sv[1]);

    s_seen_t seen = {0};
    drain_t *drain = drain_new(s_collect, &seen);
    assert_int_equal(drain_add(drain, sv[0], 42), 0);
    assert_int_equal(arbor_worker_phase(w, "ready"), 0);
    assert_int_equal(arbor_worker_error(w, "ValueError", "bad \"row\"\n17", "line 1\nline 2"), 0);
    assert_int_equal(arbor_worker_phase(w, "bogus"), -1); /* not sent */
    drain_now(drain, sv[0], 42);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.msgs[0].kind, NOTIFY_PHASE);
    assert_true(seen.msgs[0].t_mono_ms > 0);
    assert_int_equal(seen.msgs[1].kind, NOTIFY_ERROR);
    assert_string_equal(cJSON_GetObjectItem(seen.msgs[1].error, "message")->valuestring,
                        "bad \"row\"\n17");
    assert_string_equal(cJSON_GetObjectItem(seen.msgs[1].error, "traceback")->valuestring,
                        "line 1\nline 2");

    /* The supervisor's events; the worker skips what it does not know. */
    assert_int_equal(arbor_worker_poll(w, 0), ARBOR_EV_NONE);
    assert_int_equal(notify_tell(sv[0], LINK_EV_CHILDREN_EXITED), 0);
    assert_int_equal(send(sv[0], "{\"event\":\"child_exited\",\"path\":\"r/a\",\"error\":{\"x\":[1,{}]}}",
                          58, 0), 58);
    assert_int_equal(send(sv[0], "{\"re\":3,\"path\":\"r/x\"}", 21, 0), 21);
    assert_int_equal(send(sv[0], "not json", 8, 0), 8);
    assert_int_equal(notify_tell(sv[0], LINK_EV_CANCEL), 0);
    assert_int_equal(notify_tell(sv[0], 99), -1);
    assert_int_equal(arbor_worker_poll(w, 1000), ARBOR_EV_CHILDREN_EXITED);
    assert_int_equal(arbor_worker_poll(w, 1000), ARBOR_EV_CHILD_EXITED); /* kept for child_exited() */
    assert_false(arbor_worker_cancelled(w));
    assert_int_equal(arbor_worker_poll(w, 1000), ARBOR_EV_CANCEL);
    assert_true(arbor_worker_cancelled(w));

    /* The supervisor gone: the worker learns it. */
    drain_destroy(&drain); /* closes sv[0] */
    assert_int_equal(arbor_worker_poll(w, 1000), ARBOR_EV_GONE);
    arbor_worker_close(&w);
    assert_null(w);
    for (int i = 0; i < seen.n; i++)
        notify_msg_clear(&seen.msgs[i]);
    unsetenv(ARBOR_WORKER_ENV);
}

/* Reproducer (kept from test_link.c): a worker that exits with a message of
 * ours unread makes the kernel report ECONNRESET on our end once, ahead of
 * the reports it sent before exiting. Every one of them must still be read. */
static void test_reports_survive_an_unread_cancel(void **state)
{
    (void) state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    s_seen_t seen = {0};
    drain_t *d = drain_new(s_collect, &seen);
    assert_int_equal(drain_add(d, sv[0], 42), 0);
    arbor_worker_t *w = arbor_worker_open_fd(sv[1]);

    assert_int_equal(arbor_worker_phase(w, "cleanup"), 0);
    assert_int_equal(notify_tell(sv[0], LINK_EV_CANCEL), 0); /* never read */
    assert_int_equal(arbor_worker_phase(w, "exiting"), 0);
    arbor_worker_close(&w); /* the worker exits */

    drain_now(d, sv[0], 42);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.msgs[0].phase, "cleanup");
    assert_string_equal(seen.msgs[1].phase, "exiting");
    drain_ready(d); /* the end is noticed, once, and the fd closed */
    assert_int_equal(seen.eofs, 1);
    assert_int_equal(seen.n, 2);
    drain_destroy(&d);
    for (int i = 0; i < seen.n; i++)
        notify_msg_clear(&seen.msgs[i]);
}

static void test_outside_arbor_every_call_is_a_no_op(void **state)
{
    (void) state;
    unsetenv(ARBOR_WORKER_ENV);
    arbor_worker_t *w = arbor_worker_from_env();
    assert_null(w);
    assert_int_equal(arbor_worker_phase(w, "ready"), 0);
    assert_int_equal(arbor_worker_error(w, "E", "m", NULL), 0);
    assert_int_equal(arbor_worker_poll(w, 0), ARBOR_EV_NONE);
    assert_int_equal(arbor_worker_fd(w), -1);
    assert_false(arbor_worker_cancelled(w));
    arbor_worker_note_cancel(w);
    arbor_worker_close(&w);
    /* A variable naming an fd that is not a notify socket (a program the
     * worker started inherited the variable, not the fd): refused. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    char fd[16];
    snprintf(fd, sizeof fd, "%d", p[1]);
    setenv(ARBOR_WORKER_ENV, fd, 1);
    assert_null(arbor_worker_from_env());
    setenv(ARBOR_WORKER_ENV, "3x", 1);
    assert_null(arbor_worker_from_env());
    unsetenv(ARBOR_WORKER_ENV);
    close(p[0]);
    close(p[1]);
}

/* Issue 13 defect 1: an error up to 64 KiB arrives whole; a longer one is
 * cut by the sender with a marker, never lost. */
static void test_long_errors_arrive_whole_or_marked(void **state)
{
    (void) state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    arbor_worker_t *w = arbor_worker_open_fd(sv[1]);
    char *buf = malloc(NOTIFY_MSG_MAX + 1);
    size_t msg_len = 60000;
    char *msg = malloc(msg_len + 1);
    memset(msg, 'm', msg_len);
    msg[msg_len] = 0;
    assert_int_equal(arbor_worker_error(w, "Big", msg, NULL), 0);
    ssize_t n = recv(sv[0], buf, NOTIFY_MSG_MAX + 1, 0);
    assert_true(n > 60000 && n <= NOTIFY_MSG_MAX);
    notify_msg_t m;
    assert_int_equal(notify_parse(buf, (size_t) n, &m), NOTIFY_ERROR);
    assert_string_equal(cJSON_GetObjectItem(m.error, "message")->valuestring, msg);
    notify_msg_clear(&m);

    /* 10 MB of traceback, 100 KB of message with quotes to escape, and
     * UTF-8 (3 bytes a character) to cut between characters, not in one. */
    size_t tb_len = 10 << 20;
    char *tb = malloc(tb_len + 1);
    for (size_t i = 0; i + 3 <= tb_len; i += 3)
        memcpy(tb + i, "\xe2\x82\xac", 3);
    tb[tb_len - 4] = 'E', tb[tb_len - 3] = 'N', tb[tb_len - 2] = 'D', tb[tb_len - 1] = '\n';
    tb[tb_len] = 0;
    char *big = realloc(msg, 100001);
    for (size_t i = 0; i < 100000; i++)
        big[i] = i % 10 ? 'x' : '"';
    big[100000] = 0;
    assert_int_equal(arbor_worker_error(w, "Huge", big, tb), 0);
    n = recv(sv[0], buf, NOTIFY_MSG_MAX + 1, 0);
    assert_true(n > 0 && n <= NOTIFY_MSG_MAX);
    assert_int_equal(notify_parse(buf, (size_t) n, &m), NOTIFY_ERROR);
    const char *got_msg = cJSON_GetObjectItem(m.error, "message")->valuestring;
    const char *got_tb = cJSON_GetObjectItem(m.error, "traceback")->valuestring;
    assert_string_equal(cJSON_GetObjectItem(m.error, "type")->valuestring, "Huge");
    assert_non_null(strstr(got_msg, "\xe2\x80\xa6[truncated "));      /* the start kept */
    assert_int_equal(strncmp(got_msg, big, 1000), 0);
    assert_int_equal(strncmp(got_tb, "\xe2\x80\xa6[truncated ", 14), 0); /* the end kept */
    assert_string_equal(got_tb + strlen(got_tb) - 4, "END\n");
    assert_true(strlen(got_tb) > 10000); /* the traceback keeps a real share */
    const char *rest = strstr(got_tb, "bytes]") + 6;
    assert_int_equal(strncmp(rest, "\xe2\x82\xac", 3), 0); /* whole characters */
    notify_msg_clear(&m);
    free(tb);
    free(big);
    free(buf);
    arbor_worker_close(&w);
    close(sv[0]);
}

/* A datagram's messages: itself, or the records of a JSON text sequence. */
static void test_next_splits_sequences_only(void **state)
{
    (void) state;
    const char *msg;
    size_t n;
    const char *plain = "{\"phase\":\"ready\"}\n";
    const char *data = plain;
    size_t len = strlen(plain);
    assert_true(notify_next(&data, &len, &msg, &n)); /* one message, newline and all */
    assert_ptr_equal(msg, plain);
    assert_int_equal(n, strlen(plain));
    assert_false(notify_next(&data, &len, &msg, &n));
    /* Two objects without RS stay one (malformed) message, as before. */
    const char *two = "{\"phase\":\"ready\"}\n{\"phase\":\"running\"}";
    data = two;
    len = strlen(two);
    assert_true(notify_next(&data, &len, &msg, &n));
    assert_int_equal(n, strlen(two));
    notify_msg_t m;
    assert_int_equal(notify_parse(msg, n, &m), NOTIFY_MALFORMED);
    notify_msg_clear(&m);
    assert_false(notify_next(&data, &len, &msg, &n));
    /* A sequence: each record, in order; an empty one is a (malformed) message. */
    const char *seq = "\x1e{\"phase\":\"cleanup\"}\n\x1e\x1e{\"phase\":\"exiting\"}";
    data = seq;
    len = strlen(seq);
    const char *want[] = {"{\"phase\":\"cleanup\"}\n", "", "{\"phase\":\"exiting\"}"};
    for (int i = 0; i < 3; i++) {
        assert_true(notify_next(&data, &len, &msg, &n));
        assert_int_equal(n, strlen(want[i]));
        assert_memory_equal(msg, want[i], n);
    }
    assert_false(notify_next(&data, &len, &msg, &n));
    assert_int_equal(len, 0);
    data = "\x1e";
    len = 1;
    assert_true(notify_next(&data, &len, &msg, &n)); /* RS alone: one empty message */
    assert_int_equal(n, 0);
    assert_false(notify_next(&data, &len, &msg, &n));
}

/* arbor_worker_phases: n phases in one datagram, read back as n messages in
 * order; nothing at all when one of them is not a phase. */
static void test_phases_in_one_datagram(void **state)
{
    (void) state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    arbor_worker_t *w = arbor_worker_open_fd(sv[1]);
    assert_non_null(w);
    const char *bad[] = {"cleanup", "bogus"};
    assert_int_equal(arbor_worker_phases(w, bad, 2), -1);
    const char *good[] = {"cancel_requested", "cleanup", "exiting"};
    assert_int_equal(arbor_worker_phases(w, good, 3), 0);
    char buf[1024];
    ssize_t got = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT); /* the bad call sent nothing */
    assert_true(got > 0);
    assert_int_equal(recv(sv[0], buf + got, sizeof buf - (size_t) got, MSG_DONTWAIT), -1);
    const char *data = buf, *msg;
    size_t len = (size_t) got, n;
    for (int i = 0; i < 3; i++) {
        assert_true(notify_next(&data, &len, &msg, &n));
        notify_msg_t m;
        assert_int_equal(notify_parse(msg, n, &m), NOTIFY_PHASE);
        assert_string_equal(m.phase, good[i]);
        assert_true(m.t_mono_ms > 0);
        notify_msg_clear(&m);
    }
    assert_false(notify_next(&data, &len, &msg, &n));
    arbor_worker_close(&w);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_spawn_and_cancel_are_recognised),
        cmocka_unit_test(test_bad_input_is_a_kind_not_a_crash),
        cmocka_unit_test(test_nul_in_a_string_is_malformed),
        cmocka_unit_test(test_worker_reports_supervisor_tells),
        cmocka_unit_test(test_reports_survive_an_unread_cancel),
        cmocka_unit_test(test_outside_arbor_every_call_is_a_no_op),
        cmocka_unit_test(test_long_errors_arrive_whole_or_marked),
        cmocka_unit_test(test_next_splits_sequences_only),
        cmocka_unit_test(test_phases_in_one_datagram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
