#include "ep.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint.h"
#include "exitcode.h"

#define S_FORMS "tcp://HOST:PORT or ipc:///PATH"

/* What the syntax cannot tell: whether PATH is a socket this user may
 * connect to. */
static int s_ipc(const char *ep, const char *path, char *why, size_t size)
{
    if (*path == '@') /* abstract: no file to look at */
        return 0;
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
    bool tcp = strncmp(ep, "tcp://", 6) == 0, ipc = strncmp(ep, "ipc://", 6) == 0;
    if (!tcp && !ipc && strstr(ep, "://")) { /* inproc:// too: not across processes */
        snprintf(why, size, "\"%s\": arborctl reaches the broker over %s only", ep, S_FORMS);
        return EXIT_USAGE;
    }
    char syntax[256];
    if (endpoint_check(ep, false, syntax, sizeof syntax) != 0) { /* the daemons' own rules */
        snprintf(why, size, "not a broker endpoint: %s", syntax);
        return EXIT_USAGE;
    }
    return ipc ? s_ipc(ep, ep + 6, why, size) : 0;
}
