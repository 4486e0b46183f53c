#include "sec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int sec_check_root(const char *prog, bool allow_root)
{
    if (geteuid() != 0)
        return 0;
    /* The contract's plain "arbor-broker --bind EP" must work for whoever
     * runs it, root included (CI does): root is refused only when
     * ARBOR_REFUSE_ROOT=1 asks for it, and otherwise said loudly. */
    const char *strict = getenv("ARBOR_REFUSE_ROOT");
    if (!allow_root && strict && strcmp(strict, "1") == 0) {
        fprintf(stderr,
                "%s: refusing to run as root (ARBOR_REFUSE_ROOT=1): run it as an unprivileged "
                "user, or pass --allow-root if you really mean it (see docs/SECURITY.md)\n",
                prog);
        return -1;
    }
    if (allow_root)
        log_warn("running as root (--allow-root): see docs/SECURITY.md");
    else
        log_warn("RUNNING AS ROOT: every worker it starts runs as root too; run it as an "
                 "unprivileged user, set ARBOR_REFUSE_ROOT=1 to refuse root, or pass "
                 "--allow-root to say you mean it (docs/SECURITY.md)");
    return 0;
}

bool sec_endpoint_local(const char *endpoint)
{
    /* ipc, inproc, and tcp on a loopback address: reachable from this host only */
    static const char *local[] = {"ipc://", "inproc://", "tcp://127.", "tcp://localhost:",
                                  "tcp://[::1]:", NULL};
    for (int i = 0; local[i]; i++)
        if (strncmp(endpoint, local[i], strlen(local[i])) == 0)
            return true;
    return false;
}

int sec_ipc_dir(const char *endpoint, bool allow_shared, char *err, size_t errsize)
{
    if (strncmp(endpoint, "ipc://", 6) != 0)
        return 0;
    const char *path = endpoint + 6;
    if (*path == '@') /* abstract: no file, no permissions */
        return 0;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t) (slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int) (slash - path), path);
    else {
        snprintf(err, errsize, "the path is too long");
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errsize, "directory %s: %s", dir, strerror(errno));
            return -1;
        }
        /* One level only: a typo in a parent is an error, not a new tree. */
        if (mkdir(dir, 0700) != 0) {
            snprintf(err, errsize, "cannot create directory %s: %s", dir, strerror(errno));
            return -1;
        }
        log_info("created %s (mode 0700) for %s", dir, endpoint);
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "%s is not a directory", dir);
        return -1;
    }
    if (allow_shared)
        return 0;
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errsize,
                 "directory %s is writable by %s (mode %04o): anyone who can write there can "
                 "replace the socket; use a private directory (mode 0700) or --allow-shared-dir",
                 dir, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
                 (unsigned) (st.st_mode & 07777));
        return -1;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, errsize,
                 "directory %s belongs to uid %u, not to this user (uid %u); use a directory of "
                 "your own or --allow-shared-dir",
                 dir, (unsigned) st.st_uid, (unsigned) geteuid());
        return -1;
    }
    return 0;
}
