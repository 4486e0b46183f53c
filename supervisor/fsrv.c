#include "fsrv.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* The supervisor's side of the fork-server channel. */

int fsrv_send_spawn(fsrv_t *self, uint64_t req, const char *payload, size_t len)
{
    if (len > FSRV_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    fsrv_hdr_t hdr = {.type = FSRV_SPAWN, .len = (uint32_t) len, .req = req};
    return fsrv_wire_send(self->fd, &hdr, payload, NULL, 0);
}

int fsrv_send_ack(fsrv_t *self, uint32_t count)
{
    fsrv_hdr_t hdr = {.type = FSRV_ACK_EXIT, .status = (int32_t) count};
    return fsrv_wire_send(self->fd, &hdr, NULL, NULL, 0);
}

int fsrv_recv(fsrv_t *self, fsrv_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    int rc = fsrv_wire_recv(self->fd, &ev->hdr, ev->text, sizeof ev->text - 1, ev->fds, &ev->nfds);
    if (rc == 1)
        ev->text[ev->hdr.len < sizeof ev->text ? ev->hdr.len : sizeof ev->text - 1] = 0;
    if (rc == 1 && ev->hdr.type == FSRV_SPAWNED && ev->nfds == 2) { /* no output pipes */
        ev->fds[3] = ev->fds[1];
        ev->fds[1] = ev->fds[2] = -1;
        ev->nfds = 4;
    }
    return rc;
}

static int s_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    int bufsize = 4 << 20;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    }
    return 0;
}

/* The fork-server program: arbor-forkserver next to this executable. */
static int s_program(char *path, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    if ((size_t) snprintf(path, size, "%s/%s", slash ? self : ".", FSRV_PROGRAM) >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return access(path, X_OK);
}

int fsrv_start(fsrv_t *out)
{
    /* The second subreaper (sweep.h): if the fork-server dies, what its
     * workers started comes back to us, not to init. Idempotent. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        log_warn("not a subreaper (%s): if the fork-server dies, what its workers started "
                 "goes to init",
                 strerror(errno));
    if (s_program(out->program, sizeof out->program) != 0)
        return -1;
    const char *path = out->program;
    int sv[2];
    if (s_socketpair(sv) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        /* Between fork and exec (the caller may have threads): only
         * async-signal-safe calls. The channel becomes fd 3 of a fresh,
         * small, single-threaded process image. */
        if (dup2(sv[1], FSRV_EXEC_FD) < 0)
            _exit(127);
        char *argv[] = {FSRV_PROGRAM, NULL};
        execv(path, argv);
        _exit(127);
    }
    int e = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        errno = e;
        return -1;
    }
    out->pid = pid;
    out->fd = sv[0];
    return 0;
}
