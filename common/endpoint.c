#include "endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define S_SUN_PATH_MAX (sizeof(((struct sockaddr_un *) 0)->sun_path) - 1)

static int s_bad(char *why, size_t size, const char *fmt, const char *ep)
{
    if (why && size)
        snprintf(why, size, fmt, ep);
    return -1;
}

static int s_tcp(const char *ep, const char *rest, bool bind, char *why, size_t size)
{
    /* tcp://SRC;HOST:PORT: the source interface of a connect. */
    const char *semi = strchr(rest, ';');
    if (semi && bind)
        return s_bad(why, size, "\"%s\": a source address (SRC;) is for connecting, not binding",
                     ep);
    if (semi)
        rest = semi + 1;
    const char *colon = strrchr(rest, ':');
    if (!colon || colon == rest)
        return s_bad(why, size, "\"%s\" is not tcp://HOST:PORT", ep);
    size_t host_len = (size_t) (colon - rest);
    if (rest[0] == '[' ? host_len < 3 || rest[host_len - 1] != ']'
                       : memchr(rest, ':', host_len) != NULL)
        return s_bad(why, size, "\"%s\": an IPv6 host goes in brackets, [::1]:PORT", ep);
    for (const char *p = rest; p < colon; p++)
        if (*p <= ' ' || *p == '/')
            return s_bad(why, size, "\"%s\": the host holds a space or '/'", ep);
    if (!bind && host_len == 1 && rest[0] == '*')
        return s_bad(why, size, "\"%s\": \"*\" is a host to bind, not to connect to", ep);
    const char *port = colon + 1;
    long n = 0;
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || port[digits] != 0 || digits > 5)
        return s_bad(why, size, "\"%s\": the port must be a number from 1 to 65535", ep);
    for (size_t i = 0; i < digits; i++)
        n = n * 10 + (port[i] - '0');
    if (n < 1 || n > 65535)
        return s_bad(why, size, "\"%s\": the port must be a number from 1 to 65535", ep);
    return 0;
}

int endpoint_check(const char *ep, bool bind, char *why, size_t size)
{
    if (!ep || !*ep)
        return s_bad(why, size, "an empty endpoint%s (use tcp://HOST:PORT or ipc:///PATH)", "");
    if (strncmp(ep, "tcp://", 6) == 0)
        return s_tcp(ep, ep + 6, bind, why, size);
    if (strncmp(ep, "ipc://", 6) == 0) {
        const char *path = ep + 6;
        if (!*path || !strcmp(path, "@"))
            return s_bad(why, size, "\"%s\": no path after ipc://", ep);
        if (!bind && !strcmp(path, "*"))
            return s_bad(why, size, "\"%s\": \"*\" is a path to bind, not to connect to", ep);
        if (strlen(path) > S_SUN_PATH_MAX)
            return s_bad(why, size, "\"%s\": the path is longer than a socket address takes "
                                    "(107 bytes)", ep);
        return 0;
    }
    if (strncmp(ep, "inproc://", 9) == 0)
        return ep[9] ? 0 : s_bad(why, size, "\"%s\": no name after inproc://", ep);
    if (!strstr(ep, "://"))
        return s_bad(why, size, "\"%s\" is not an endpoint (tcp://HOST:PORT or ipc:///PATH)", ep);
    return s_bad(why, size, "\"%s\": arbor speaks tcp:// and ipc:// (and inproc:// in tests)",
                 ep);
}

int endpoint_ipc_in_use(const char *ep)
{
    if (!ep || strncmp(ep, "ipc://", 6) != 0 || ep[6] == '@' || !strcmp(ep + 6, "*"))
        return 0;
    const char *path = ep + 6;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc;
    do
        rc = connect(fd, (struct sockaddr *) &addr, sizeof addr);
    while (rc < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (rc == 0)
        return 1;
    if (e == ECONNREFUSED || e == ENOENT)
        return 0;
    /* EAGAIN: its backlog is full; someone listens. */
    if (e == EAGAIN)
        return 1;
    errno = e;
    return -1;
}
