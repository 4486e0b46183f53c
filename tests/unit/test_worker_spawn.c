/* libarbor_worker's dynamic children (arbor_worker.h, "dynamic children"):
 * spawn, child ends, cancel and the nursery, against a socketpair standing
 * in for the supervisor. Its messages are queued before each call (the
 * call blocks, the test has one thread): answers and events interleave as
 * they do on a real notify fd. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "arbor_worker.h"

typedef struct {
    int sv[2];
    arbor_worker_t *w;
} s_pair_t;

static int s_setup(void **state)
{
    static s_pair_t p;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p.sv), 0);
    p.w = arbor_worker_open_fd(p.sv[1]);
    assert_non_null(p.w);
    *state = &p;
    return 0;
}

static int s_teardown(void **state)
{
    s_pair_t *p = *state;
    arbor_worker_close(&p->w);
    if (p->sv[0] >= 0)
        close(p->sv[0]);
    return 0;
}

static void s_say(s_pair_t *p, const char *msg)
{
    assert_int_equal(send(p->sv[0], msg, strlen(msg), 0), (ssize_t) strlen(msg));
}

/* The next datagram the worker sent, as a string. */
static const char *s_heard(s_pair_t *p)
{
    static char buf[70000];
    ssize_t n = recv(p->sv[0], buf, sizeof buf - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = 0;
    return buf;
}

static void test_spawn_keeps_what_comes_before_its_answer(void **state)
{
    s_pair_t *p = *state;
    s_say(p, "{\"event\":\"child_exited\",\"path\":\"root/old\",\"status\":\"failed\","
             "\"error\":{\"type\":\"ValueError\",\"message\":\"bad \\\"n/a\\\"\\n\\u00e9\\ud83d\\ude00\","
             "\"traceback\":\"tb\",\"phase\":\"running\"}}");
    s_say(p, "{\"event\":\"cancel\"}");
    s_say(p, "{\"re\":99,\"path\":\"root/stale\"}");  /* a request given up: skipped */
    s_say(p, "{\"re\":1,\"path\":\"root/job-0\",\"paths\":[\"root/job-0\"]}");
    char path[ARBOR_WORKER_PATH_MAX];
    assert_int_equal(arbor_worker_spawn(p->w, "{\"name\":\"job-0\",\"run\":\"sleep\"}", path,
                                        sizeof path, 1000), 0);
    assert_string_equal(path, "root/job-0");
    assert_string_equal(s_heard(p), "{\"spawn\":{\"name\":\"job-0\",\"run\":\"sleep\"},\"id\":1}");

    /* Read meanwhile, not lost: the cancel, then the child's end. */
    assert_true(arbor_worker_cancelled(p->w));
    assert_int_equal(arbor_worker_poll(p->w, 0), ARBOR_EV_CANCEL);
    assert_int_equal(arbor_worker_poll(p->w, 0), ARBOR_EV_CHILD_EXITED);
    assert_int_equal(arbor_worker_poll(p->w, 0), ARBOR_EV_NONE);
    arbor_child_exit_t end;
    assert_int_equal(arbor_worker_child_exited(p->w, &end, 0), 1);
    assert_string_equal(end.path, "root/old");
    assert_string_equal(end.status, "failed");
    assert_true(end.failed);
    assert_string_equal(end.type, "ValueError");
    assert_string_equal(end.message, "bad \"n/a\"\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_non_null(strstr(end.error_json, "\"traceback\":\"tb\""));
    assert_int_equal(arbor_worker_child_exited(p->w, &end, 0), 0);
}

static void test_spawn_refused_timed_out_gone(void **state)
{
    s_pair_t *p = *state;
    char msg[64];
    s_say(p, "{\"re\":1,\"error\":{\"type\":\"SpawnRefused\",\"message\":\"root already has a child "
             "named \\\"x\\\"\"}}");
    assert_int_equal(arbor_worker_spawn(p->w, "{\"name\":\"x\"}", msg, sizeof msg, 1000), -1);
    assert_int_equal(errno, EINVAL);
    assert_string_equal(msg, "root already has a child named \"x\"");
    /* Cut to fit, never inside a character. */
    s_say(p, "{\"re\":2,\"error\":{\"message\":\"\\u00e9\\u00e9\\u00e9\"}}");
    assert_int_equal(arbor_worker_spawn(p->w, "{\"name\":\"y\"}", msg, 6, 1000), -1);
    assert_string_equal(msg, "\xc3\xa9\xc3\xa9");

    assert_int_equal(arbor_worker_spawn(p->w, "{\"name\":\"z\"}", msg, sizeof msg, 20), -1);
    assert_int_equal(errno, ETIMEDOUT);
    s_say(p, "{\"re\":3,\"path\":\"root/z\"}"); /* too late: the next spawn skips it */
    s_say(p, "{\"re\":4,\"path\":\"root/w\"}");
    assert_int_equal(arbor_worker_spawn(p->w, "{\"name\":\"w\"}", msg, sizeof msg, 1000), 0);
    assert_string_equal(msg, "root/w");

    close(p->sv[0]);
    p->sv[0] = -1;
    assert_int_equal(arbor_worker_spawn(p->w, "{\"name\":\"v\"}", msg, sizeof msg, 1000), -1);
    assert_int_equal(errno, EPIPE);
    arbor_child_exit_t end;
    assert_int_equal(arbor_worker_child_exited(p->w, &end, 1000), -1);
    assert_int_equal(errno, EPIPE);
}

typedef struct {
    int n;
    char paths[4][ARBOR_WORKER_PATH_MAX + 160];
} s_ends_t;

static void s_on_end(void *arg, const arbor_child_exit_t *end)
{
    s_ends_t *e = arg;
    snprintf(e->paths[e->n++], sizeof e->paths[0], "%s %s %s", end->path, end->status, end->type);
}

static void test_nursery_waits_for_every_end(void **state)
{
    s_pair_t *p = *state;
    s_say(p, "{\"event\":\"child_exited\",\"path\":\"r/a\",\"status\":\"ok\",\"error\":null}");
    s_say(p, "{\"event\":\"children_exited\"}");
    s_say(p, "{\"event\":\"child_exited\",\"path\":\"r/b\",\"status\":\"failed\","
             "\"error\":{\"type\":\"E1\",\"message\":\"m\"}}");
    s_say(p, "{\"event\":\"later\",\"path\":\"r/x\"}"); /* unknown: skipped */
    s_say(p, "{\"event\":\"child_exited\",\"path\":\"r/c\",\"status\":\"lost\",\"error\":{\"type\":\"Lost\"}}");
    s_ends_t ends = {0};
    assert_int_equal(arbor_nursery_wait(p->w, 3, 1000, s_on_end, &ends), 2);
    assert_int_equal(ends.n, 3);
    assert_string_equal(ends.paths[0], "r/a ok ");
    assert_string_equal(ends.paths[1], "r/b failed E1");
    assert_string_equal(ends.paths[2], "r/c lost Lost");
    assert_int_equal(arbor_worker_poll(p->w, 0), ARBOR_EV_CHILDREN_EXITED);
    assert_int_equal(arbor_worker_poll(p->w, 0), ARBOR_EV_NONE); /* the ends were read */

    /* One end short: the deadline; a cancel while waiting: ECANCELED. */
    s_say(p, "{\"event\":\"child_exited\",\"path\":\"r/d\",\"status\":\"ok\",\"error\":null}");
    assert_int_equal(arbor_nursery_wait(p->w, 2, 30, NULL, NULL), -1);
    assert_int_equal(errno, ETIMEDOUT);
    s_say(p, "{\"event\":\"cancel\"}");
    assert_int_equal(arbor_nursery_wait(p->w, 1, -1, NULL, NULL), -1);
    assert_int_equal(errno, ECANCELED);
    assert_int_equal(arbor_worker_poll(p->w, 0), ARBOR_EV_CANCEL);

    assert_int_equal(arbor_worker_cancel(p->w, "r/b/\"q\""), 0);
    assert_string_equal(s_heard(p), "{\"cancel\":\"r/b/\\\"q\\\"\"}");
    assert_int_equal(arbor_worker_cancel(p->w, ""), -1);
}

static void test_null_handle_is_safe(void **state)
{
    (void) state;
    char msg[200] = "x";
    errno = 0;
    assert_int_equal(arbor_worker_spawn(NULL, "{\"name\":\"a\"}", msg, sizeof msg, 10), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_non_null(strstr(msg, "not running under arbor"));
    assert_int_equal(arbor_worker_spawn(NULL, "{}", NULL, 0, 10), -1);
    arbor_child_exit_t end;
    assert_int_equal(arbor_worker_child_exited(NULL, &end, 10), 0);
    assert_int_equal(arbor_worker_cancel(NULL, "root/a"), 0);
    assert_int_equal(arbor_nursery_wait(NULL, 5, -1, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spawn_keeps_what_comes_before_its_answer, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_spawn_refused_timed_out_gone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_nursery_waits_for_every_end, s_setup, s_teardown),
        cmocka_unit_test(test_null_handle_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
