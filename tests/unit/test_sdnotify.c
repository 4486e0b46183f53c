/* sdnotify: READY=1 to $NOTIFY_SOCKET, once; the variable is taken out of
 * the environment so that no child inherits it. One process-wide state:
 * the cases run in order, each on a fresh socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

/* A datagram socket bound at name ("@x": abstract), non-blocking. */
static int s_listener(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    assert_true(len < sizeof sa.sun_path);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = 0;
    assert_int_equal(bind(fd, (struct sockaddr *) &sa,
                          (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len)), 0);
    return fd;
}

static void test_ready_once_and_not_inherited(void **state)
{
    (void) state;
    char path[] = "/tmp/arbor-sdnotify-XXXXXX";
    assert_non_null(mkdtemp(path));
    char sock[64];
    snprintf(sock, sizeof sock, "%s/notify", path);
    int fd = s_listener(sock);
    setenv("NOTIFY_SOCKET", sock, 1);
    sdnotify_init();
    assert_null(getenv("NOTIFY_SOCKET")); /* children will not see it */
    assert_int_equal(sdnotify_ready("registered"), 0);
    char buf[256] = "";
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = 0;
    assert_string_equal(buf, "READY=1\nSTATUS=registered\n");
    assert_int_equal(sdnotify_ready("again"), 0); /* once only */
    assert_int_equal(recv(fd, buf, sizeof buf, 0), -1);
    assert_int_equal(errno, EAGAIN);
    close(fd);
    unlink(sock);
    rmdir(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_once_and_not_inherited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
