/* endpoint: which strings are endpoints arbor can bind or connect to, and
 * whether an ipc socket file is served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "endpoint.h"

static void test_good_endpoints(void **state)
{
    (void) state;
    static const char *bind_ok[] = {"tcp://*:5555",     "tcp://127.0.0.1:1", "tcp://[::1]:65535",
                                    "tcp://eth0:7000",  "ipc:///tmp/a.sock", "ipc://@arbor",
                                    "ipc://*",          "inproc://x"};
    for (size_t i = 0; i < sizeof bind_ok / sizeof bind_ok[0]; i++) {
        char why[300] = "";
        if (endpoint_check(bind_ok[i], true, why, sizeof why) != 0)
            fail_msg("%s refused: %s", bind_ok[i], why);
    }
    assert_int_equal(endpoint_check("tcp://broker:5555", false, NULL, 0), 0);
    assert_int_equal(endpoint_check("tcp://eth0;broker:5555", false, NULL, 0), 0); /* source */
    assert_int_equal(endpoint_check("tcp://eth0;[::1]:5555", false, NULL, 0), 0);
}

static void test_bad_endpoints_say_why(void **state)
{
    (void) state;
    static const struct {
        const char *ep;
        bool bind;
        const char *word;
    } bad[] = {
        {"tcp://127.0.0.1:99999", true, "1 to 65535"}, /* libzmq binds another port */
        {"tcp://127.0.0.1:0", true, "1 to 65535"},
        {"tcp://127.0.0.1:", true, "1 to 65535"},
        {"tcp://127.0.0.1:55x", true, "1 to 65535"},
        {"tcp://127.0.0.1:*", true, "1 to 65535"},
        {"tcp://127.0.0.1:0005555", true, "1 to 65535"},
        {"tcp://127.0.0.1", true, "tcp://HOST:PORT"},
        {"tcp://:5555", true, "tcp://HOST:PORT"},
        {"tcp://*:5555", false, "to bind"},
        {"tcp://a b:5555", false, "space"},
        {"tcp://::1:5555", false, "brackets"},
        {"tcp://[]:5555", false, "brackets"},
        {"tcp://eth0;broker:5555", true, "not binding"},
        {"ipc://", true, "no path"},
        {"ipc://*", false, "to bind"},
        {"localhost:5555", false, "not an endpoint"},
        {"", false, "empty"},
        {"pgm://eth0;239.1.1.1:5555", true, "tcp:// and ipc://"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[300] = "";
        if (endpoint_check(bad[i].ep, bad[i].bind, why, sizeof why) == 0 ||
            !strstr(why, bad[i].word))
            fail_msg("%s: \"%s\"", bad[i].ep, why);
    }
    char longpath[200] = "ipc:///";
    memset(longpath + 7, 'a', 150);
    longpath[157] = 0;
    assert_int_equal(endpoint_check(longpath, true, NULL, 0), -1);
}

static void test_ipc_in_use(void **state)
{
    (void) state;
    char dir[] = "/tmp/arbor-endpoint-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], ep[80];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(ep, sizeof ep, "ipc://%s", path);
    /* No file: free. */
    assert_int_equal(endpoint_ipc_in_use(ep), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof addr), 0);
    /* Bound, not listening: connect is refused, as for a stale file. */
    assert_int_equal(endpoint_ipc_in_use(ep), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(endpoint_ipc_in_use(ep), 1);
    close(fd);
    /* Its server gone, the file is stale: free. */
    assert_int_equal(endpoint_ipc_in_use(ep), 0);
    unlink(path);
    rmdir(dir);
    assert_int_equal(endpoint_ipc_in_use("tcp://127.0.0.1:5555"), 0);
    assert_int_equal(endpoint_ipc_in_use("ipc://@abstract"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_endpoints),
        cmocka_unit_test(test_bad_endpoints_say_why),
        cmocka_unit_test(test_ipc_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
