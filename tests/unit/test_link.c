/* link and drain: a builtin's channel to its supervisor, as the two ends
 * use it — the worker reports phases and waits for cancel, the supervisor
 * reads every report through drain, even after the worker is gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drain.h"
#include "link.h"

typedef struct {
    char phases[8][32];
    int n;
    int eofs;
} s_seen_t;

static void s_collect(void *arg, uint64_t key, const char *data, size_t len, bool eof)
{
    s_seen_t *seen = arg;
    assert_int_equal(key, 42);
    if (eof) {
        seen->eofs++;
        return;
    }
    cJSON *body = cJSON_ParseWithLength(data, len);
    assert_non_null(body);
    const char *phase = cJSON_GetStringValue(cJSON_GetObjectItem(body, "phase"));
    assert_non_null(phase);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(body, "t_mono_ms")));
    snprintf(seen->phases[seen->n++], 32, "%s", phase);
    cJSON_Delete(body);
}

static void s_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    link_worker_init(sv[1]);
}

static void test_phases_and_events(void **state)
{
    (void) state;
    int sv[2];
    s_pair(sv);
    assert_int_equal(link_phase(sv[1], "ready", NULL, NULL), 0);
    assert_int_equal(link_phase(sv[1], "running", "ValueError", "row 17"), 0);

    char buf[LINK_MSG_MAX];
    ssize_t n = read(sv[0], buf, sizeof buf);
    assert_true(n > 0);
    assert_non_null(memmem(buf, (size_t) n, "\"ready\"", 7));
    n = read(sv[0], buf, sizeof buf);
    cJSON *body = cJSON_ParseWithLength(buf, (size_t) n);
    const cJSON *err = cJSON_GetObjectItem(body, "error");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(err, "type")), "ValueError");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(err, "phase")), "running");
    cJSON_Delete(body);

    assert_int_equal(link_wait(sv[1], 0), LINK_EV_NONE);
    assert_int_equal(link_tell(sv[0], LINK_EV_CHILDREN_EXITED), 0);
    assert_int_equal(link_tell(sv[0], LINK_EV_CANCEL), 0);
    assert_int_equal(link_wait(sv[1], 1000), LINK_EV_CHILDREN_EXITED);
    assert_int_equal(link_wait(sv[1], 1000), LINK_EV_CANCEL);
    assert_int_equal(link_tell(sv[0], 99), -1);

    close(sv[0]); /* the supervisor is gone */
    assert_int_equal(link_wait(sv[1], 1000), LINK_EV_GONE);
    close(sv[1]);
}

static void test_unknown_messages_are_ignored(void **state)
{
    (void) state;
    int sv[2];
    s_pair(sv);
    assert_int_equal(link_event_of("node_cancel", 11), LINK_EV_CANCEL);
    assert_int_equal(link_event_of("node_cancelled", 14), LINK_EV_NONE);
    assert_int_equal(link_event_of("node", 4), LINK_EV_NONE);
    assert_true(write(sv[0], "garbage", 7) == 7);
    assert_int_equal(link_tell(sv[0], LINK_EV_CANCEL), 0);
    assert_int_equal(link_wait(sv[1], 1000), LINK_EV_CANCEL);
    close(sv[0]);
    close(sv[1]);
}

/* Reproducer: a worker that exits with a message of ours unread makes the
 * kernel report ECONNRESET on our end once, ahead of the reports it sent
 * before exiting. Every one of them must still be read. */
static void test_reports_survive_an_unread_cancel(void **state)
{
    (void) state;
    int sv[2];
    s_pair(sv);
    s_seen_t seen = {0};
    drain_t *d = drain_new(s_collect, &seen);
    assert_non_null(d);
    assert_int_equal(drain_add(d, sv[0], 42), 0);

    assert_int_equal(link_phase(sv[1], "cleanup", NULL, NULL), 0);
    assert_int_equal(link_tell(sv[0], LINK_EV_CANCEL), 0); /* never read */
    assert_int_equal(link_phase(sv[1], "exiting", NULL, NULL), 0);
    close(sv[1]); /* the worker exits */

    drain_now(d, sv[0], 42);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.phases[0], "cleanup");
    assert_string_equal(seen.phases[1], "exiting");
    drain_ready(d); /* the end is noticed, once, and the fd closed */
    assert_int_equal(seen.eofs, 1);
    assert_int_equal(seen.n, 2);
    drain_destroy(&d);
    assert_null(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phases_and_events),
        cmocka_unit_test(test_unknown_messages_are_ignored),
        cmocka_unit_test(test_reports_survive_an_unread_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
