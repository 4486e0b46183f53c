#include "fsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* Framing over the channel, shared by the supervisor and the fork-server. */

int fsrv_wire_send(int fd, const fsrv_hdr_t *hdr, const void *payload, const int *fds, int nfds)
{
    struct iovec iov[2] = {{(void *) hdr, sizeof *hdr}, {(void *) payload, hdr->len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = hdr->len ? 2 : 1};
    char cbuf[CMSG_SPACE(FSRV_MAX_FDS * sizeof(int))];
    if (nfds > 0) {
        memset(cbuf, 0, sizeof cbuf);
        msg.msg_control = cbuf;
        msg.msg_controllen = CMSG_SPACE((size_t) nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((size_t) nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, (size_t) nfds * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

/* Read one message: 1 read, 0 nothing waiting, -1 peer gone or broken. */
int fsrv_wire_recv(int fd, fsrv_hdr_t *hdr, char *payload, size_t cap, int *fds, int *nfds)
{
    struct iovec iov[2] = {{hdr, sizeof *hdr}, {payload, cap}};
    char cbuf[CMSG_SPACE(FSRV_MAX_FDS * sizeof(int))];
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    if (n == 0)
        return -1; /* the other end closed */
    if (nfds)
        *nfds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int count = (int) ((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[FSRV_MAX_FDS];
        if (count > FSRV_MAX_FDS)
            count = FSRV_MAX_FDS; /* more cannot fit in cbuf: MSG_CTRUNC below */
        memcpy(got, CMSG_DATA(cm), (size_t) count * sizeof(int));
        for (int i = 0; i < count; i++) {
            if (fds && nfds && *nfds < FSRV_MAX_FDS)
                fds[(*nfds)++] = got[i];
            else
                close(got[i]);
        }
    }
    if ((size_t) n < sizeof *hdr || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        (size_t) n != sizeof *hdr + hdr->len) {
        log_error("fork-server channel: malformed message of %zd bytes", n);
        return -1;
    }
    return 1;
}

const char *fsrv_guarantee_name(int bit)
{
    switch (bit) {
    case FSRV_G_PIDFD: return "pidfd_signals";
    case FSRV_G_PDEATHSIG: return "pdeathsig";
    case FSRV_G_SUBREAPER: return "subreaper";
    case FSRV_G_CLOSE_RANGE: return "close_range";
    case FSRV_G_CGROUP: return "cgroup";
    default: return "unknown";
    }
}

int fsrv_thread_count(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    /* Field 20 (num_threads), counted after the ")" that ends the name. */
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 20; field++)
        p = strchr(p + 1, ' ');
    return p ? atoi(p + 1) : -1;
}

