/* ep: arborctl's check of a broker endpoint before connecting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ep.h"
#include "exitcode.h"

static int s_check(const char *ep)
{
    char why[512] = "";
    int rc = ep_check(ep, why, sizeof why);
    assert_true(rc == 0 || why[0]); /* never a failure without a reason */
    return rc;
}

static void test_tcp(void **state)
{
    (void) state;
    assert_int_equal(s_check("tcp://broker:5555"), 0);
    assert_int_equal(s_check("tcp://127.0.0.1:1"), 0);
    assert_int_equal(s_check("tcp://[::1]:5555"), 0);
    assert_int_equal(s_check("tcp://eth0;broker:5555"), 0);
    assert_int_equal(s_check("tcp://broker"), EXIT_USAGE);       /* no port */
    assert_int_equal(s_check("tcp://broker:"), EXIT_USAGE);
    assert_int_equal(s_check("tcp://broker:0"), EXIT_USAGE);
    assert_int_equal(s_check("tcp://broker:65536"), EXIT_USAGE);
    assert_int_equal(s_check("tcp://broker:55x"), EXIT_USAGE);
    assert_int_equal(s_check("tcp://:5555"), EXIT_USAGE);        /* no host */
    assert_int_equal(s_check("tcp://*:5555"), EXIT_USAGE);       /* binds, does not connect */
    assert_int_equal(s_check("tcp://::1:5555"), EXIT_USAGE);     /* IPv6 needs brackets */
}

static void test_not_an_endpoint(void **state)
{
    (void) state;
    assert_int_equal(s_check("broker:5555"), EXIT_USAGE);
    assert_int_equal(s_check(""), EXIT_USAGE);
    assert_int_equal(s_check(NULL), EXIT_USAGE);
    assert_int_equal(s_check("udp://h:5"), EXIT_USAGE);
    assert_int_equal(s_check("inproc://x"), EXIT_USAGE);
    assert_int_equal(s_check("ipc://"), EXIT_USAGE);
}

static void test_ipc(void **state)
{
    (void) state;
    char dir[] = "/tmp/arbor-ep-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ep[256], path[200];
    /* missing: unreachable at once */
    snprintf(ep, sizeof ep, "ipc://%s/none.sock", dir);
    assert_int_equal(s_check(ep), EXIT_UNREACHABLE);
    snprintf(ep, sizeof ep, "ipc://%s/no/such/dir.sock", dir);
    assert_int_equal(s_check(ep), EXIT_UNREACHABLE);
    /* a directory or a plain file is not a socket: a local mistake */
    snprintf(ep, sizeof ep, "ipc://%s", dir);
    assert_int_equal(s_check(ep), EXIT_USAGE);
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(ep, sizeof ep, "ipc://%s", path);
    assert_int_equal(s_check(ep), EXIT_USAGE);
    /* a socket: fine */
    snprintf(path, sizeof path, "%s/b.sock", dir);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(s, (struct sockaddr *) &sa, sizeof sa), 0);
    snprintf(ep, sizeof ep, "ipc://%s", path);
    assert_int_equal(s_check(ep), 0);
    /* abstract: nothing to look at */
    assert_int_equal(s_check("ipc://@arbor-test"), 0);
    /* longer than sun_path */
    char longep[300] = "ipc:///tmp/";
    memset(longep + 11, 'x', 200);
    longep[211] = 0;
    assert_int_equal(s_check(longep), EXIT_USAGE);
    close(s);
    unlink(path);
    snprintf(path, sizeof path, "%s/file", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_not_an_endpoint),
        cmocka_unit_test(test_ipc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
