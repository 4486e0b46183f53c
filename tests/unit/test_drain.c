/* drain: reads workers' pipes and sockets; tells when a socket has room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drain.h"

typedef struct {
    int reads, eofs, writable;
    bool still_want;
} s_seen_t;

static void s_on_read(void *arg, uint64_t key, const char *data, size_t len, bool eof)
{
    (void) key, (void) data, (void) len;
    s_seen_t *seen = arg;
    seen->reads += !eof;
    seen->eofs += eof;
}

static bool s_on_writable(void *arg, uint64_t key)
{
    assert_int_equal(key, 42);
    s_seen_t *seen = arg;
    seen->writable++;
    return seen->still_want;
}

/* Wait (bounded) until the drain's epoll fd has something to report. */
static void s_wait(drain_t *d)
{
    struct pollfd p = {drain_fd(d), POLLIN, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
}

static void test_room_to_write_is_told_while_wanted(void **state)
{
    (void) state;
    s_seen_t seen = {0};
    drain_t *d = drain_new(s_on_read, &seen);
    assert_non_null(d);
    drain_on_writable(d, s_on_writable);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(drain_add(d, sv[0], 42), 0); /* makes it non-blocking */
    char msg[1024] = "x";
    int sent = 0;
    while (send(sv[0], msg, sizeof msg, MSG_DONTWAIT) > 0)
        sent++;
    assert_true(errno == EAGAIN && sent > 0);
    assert_int_equal(drain_want_writable(d, sv[0], true), 0);
    drain_ready(d); /* full: nothing to tell */
    assert_int_equal(seen.writable, 0);
    /* The peer reads everything: room, told once per drain_ready while wanted. */
    for (int i = 0; i < sent; i++)
        assert_true(recv(sv[1], msg, sizeof msg, 0) > 0);
    seen.still_want = true;
    s_wait(d);
    drain_ready(d);
    assert_int_equal(seen.writable, 1);
    seen.still_want = false; /* the queue is empty now: no longer told */
    drain_ready(d);
    assert_int_equal(seen.writable, 2);
    drain_ready(d);
    assert_int_equal(seen.writable, 2);
    assert_int_equal(seen.reads, 0);
    /* Not registered: refused, nothing changes. */
    assert_int_equal(drain_want_writable(d, sv[1], true), -1);
    assert_int_equal(errno, EBADF);
    /* What the peer sends is still read, and its end told once. */
    assert_int_equal(send(sv[1], "y", 1, 0), 1);
    close(sv[1]);
    s_wait(d);
    drain_ready(d);
    assert_int_equal(seen.reads, 1);
    assert_int_equal(seen.eofs, 1);
    drain_destroy(&d); /* sv[0] was closed at its end */
    assert_null(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_room_to_write_is_told_while_wanted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
