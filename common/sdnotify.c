#include "sdnotify.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char s_path[sizeof ((struct sockaddr_un *) 0)->sun_path + 1];
static bool s_sent;

void sdnotify_init(void)
{
    const char *p = getenv("NOTIFY_SOCKET");
    if (p && strlen(p) < sizeof s_path)
        snprintf(s_path, sizeof s_path, "%s", p);
    unsetenv("NOTIFY_SOCKET");
}

int sdnotify_ready(const char *status)
{
    if (s_sent || !s_path[0])
        return 0;
    s_sent = true;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(s_path);
    if (len >= sizeof sa.sun_path || (s_path[0] != '/' && s_path[0] != '@')) {
        errno = EINVAL; /* not a path nor an abstract name */
        return -1;
    }
    memcpy(sa.sun_path, s_path, len);
    if (s_path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    socklen_t salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "READY=1\nSTATUS=%.400s\n", status ? status : "ready");
    ssize_t sent = sendto(fd, msg, (size_t) n, MSG_NOSIGNAL, (struct sockaddr *) &sa, salen);
    int e = errno;
    close(fd);
    errno = e;
    return sent == (ssize_t) n ? 0 : -1;
}
