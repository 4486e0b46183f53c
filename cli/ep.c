#include "ep.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "exitcode.h"

#define S_FORMS "tcp://HOST:PORT or ipc:///PATH"

/* PORT: 1..65535, digits only. */
static bool s_port(const char *p)
{
    if (!*p || strlen(p) > 5)
        return false;
    for (const char *c = p; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    long v = strtol(p, NULL, 10);
    return v >= 1 && v <= 65535;
}

/* [SRC;]HOST:PORT, HOST a name, an address or [IPv6]. */
static int s_tcp(const char *ep, const char *rest, char *why, size_t size)
{
    const char *semi = strchr(rest, ';');
    if (semi)
        rest = semi + 1;
    const char *colon = strrchr(rest, ':');
    bool ok = colon && colon > rest && s_port(colon + 1);
    if (ok && rest[0] == '[') /* [::1]:5555 */
        ok = colon[-1] == ']' && colon - rest > 2;
    else if (ok) /* a bare IPv6 address needs its brackets */
        ok = memchr(rest, ':', (size_t) (colon - rest)) == NULL;
    if (ok && strcspn(rest, " \t\n*") != strlen(rest))
        ok = false; /* "*" binds; it does not connect */
    if (!ok) {
        snprintf(why, size, "\"%s\" is not a broker endpoint: tcp://HOST:PORT with PORT in 1..65535",
                 ep);
        return EXIT_USAGE;
    }
    return 0;
}

static int s_ipc(const char *ep, const char *path, char *why, size_t size)
{
    if (!*path) {
        snprintf(why, size, "\"%s\" is not a broker endpoint: ipc:///PATH names the socket", ep);
        return EXIT_USAGE;
    }
    if (*path == '@') /* abstract: no file to look at */
        return 0;
    if (strlen(path) >= sizeof ((struct sockaddr_un *) 0)->sun_path) {
        snprintf(why, size, "%s: the socket path is longer than %zu bytes", ep,
                 sizeof ((struct sockaddr_un *) 0)->sun_path - 1);
        return EXIT_USAGE;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            snprintf(why, size, "cannot reach broker at %s: no socket %s (is arbor-broker "
                     "running with --bind %s?)", ep, path, ep);
        else
            snprintf(why, size, "cannot reach broker at %s: %s: %s", ep, path, strerror(errno));
        return EXIT_UNREACHABLE;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(why, size, "\"%s\" is not a broker endpoint: %s is a %s, not a socket", ep, path,
                 S_ISDIR(st.st_mode) ? "directory" : "file");
        return EXIT_USAGE;
    }
    if (access(path, W_OK) != 0) { /* connect(2) needs write permission */
        snprintf(why, size, "cannot reach broker at %s: %s (the socket's group may use it: "
                 "see ls -l %s)", ep, strerror(errno), path);
        return EXIT_UNREACHABLE;
    }
    return 0;
}

int ep_check(const char *endpoint, char *why, size_t size)
{
    const char *ep = endpoint ? endpoint : "";
    if (strncmp(ep, "tcp://", 6) == 0)
        return s_tcp(ep, ep + 6, why, size);
    if (strncmp(ep, "ipc://", 6) == 0)
        return s_ipc(ep, ep + 6, why, size);
    if (strstr(ep, "://"))
        snprintf(why, size, "\"%s\": arborctl reaches the broker over %s only", ep, S_FORMS);
    else
        snprintf(why, size, "\"%s\" is not an endpoint (%s)", ep, S_FORMS);
    return EXIT_USAGE;
}
