#include "wfd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

void wfd_init(wfd_t *w)
{
    memset(w, 0, sizeof *w);
    w->pidfd = w->pipe[WFD_OUT] = w->pipe[WFD_ERR] = w->pipe[WFD_NOTIFY] = -1;
}

static void s_outq_clear(wfd_t *w)
{
    for (size_t i = 0; i < w->outq_n; i++)
        free(w->outq[(w->outq_head + i) % w->outq_cap].text);
    free(w->outq);
    w->outq = NULL;
    w->outq_head = w->outq_n = w->outq_cap = w->outq_bytes = 0;
}

/* One send: 1 it went, 0 the socket is full, -1 it cannot go (errno). */
static int s_send_one(int fd, const char *text, size_t len)
{
    if (send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
        return 1;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
}

void wfd_flush(wfd_t *w, drain_t *d)
{
    int fd = w->pipe[WFD_NOTIFY];
    while (w->outq_n > 0 && fd >= 0) {
        wfd_msg_t *m = &w->outq[w->outq_head];
        int rc = s_send_one(fd, m->text, m->len);
        if (rc == 0) {
            drain_want_writable(d, fd, true); /* still full: flushed again when it has room */
            return;
        }
        /* sent, or it cannot be (the worker is gone): either way done */
        w->outq_bytes -= m->len;
        free(m->text);
        w->outq_head = (w->outq_head + 1) % w->outq_cap;
        w->outq_n--;
    }
    if (fd >= 0)
        drain_want_writable(d, fd, false);
}

size_t wfd_queued(const wfd_t *w) { return w->outq_n; }

int wfd_send(wfd_t *w, drain_t *d, const char *text, size_t len)
{
    int fd = w->pipe[WFD_NOTIFY];
    if (fd < 0) {
        errno = EPIPE;
        return -1;
    }
    wfd_flush(w, d);
    if (w->outq_n == 0) { /* nothing ahead of it: try at once */
        int rc = s_send_one(fd, text, len);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
    }
    if (w->outq_bytes + len > WFD_OUTQ_MAX_BYTES) {
        errno = ENOBUFS;
        return -1;
    }
    if (w->outq_n == w->outq_cap) {
        size_t cap = w->outq_cap ? w->outq_cap * 2 : 16;
        wfd_msg_t *q = malloc(cap * sizeof *q);
        if (!q) {
            errno = ENOMEM;
            return -1;
        }
        for (size_t i = 0; i < w->outq_n; i++)
            q[i] = w->outq[(w->outq_head + i) % w->outq_cap];
        free(w->outq);
        w->outq = q;
        w->outq_cap = cap;
        w->outq_head = 0;
    }
    char *copy = malloc(len);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(copy, text, len);
    w->outq[(w->outq_head + w->outq_n++) % w->outq_cap] = (wfd_msg_t){copy, len};
    w->outq_bytes += len;
    drain_want_writable(d, fd, true); /* flushed when its socket has room */
    return 0;
}

int wfd_adopt(wfd_t *w, drain_t *d, uint64_t req, const int *fds, int nfds)
{
    s_outq_clear(w); /* an earlier incarnation's, if any were left */
    wfd_init(w);
    w->pidfd = nfds > 0 ? fds[0] : -1;
    int rc = 0;
    for (int which = 0; which < 3 && which + 1 < nfds; which++) {
        w->pipe[which] = fds[which + 1];
        if (w->pipe[which] >= 0 && drain_add(d, w->pipe[which], WFD_KEY(req, which)) != 0)
            rc = -1; /* still ours: released with the rest */
    }
    return rc;
}

void wfd_closed(wfd_t *w, int which)
{
    if (which >= 0 && which < 3)
        w->pipe[which] = -1;
}

unsigned wfd_drain_final(wfd_t *w, drain_t *d, uint64_t req)
{
    unsigned ended = 0;
    /* The notify fd first: what it said comes before what its end means.
     * The fd numbers are read first: what the worker said may move w (a
     * spawn it asked for grows its tree's node array). */
    static const int order[] = {WFD_NOTIFY, WFD_ERR, WFD_OUT};
    int fds[3] = {w->pipe[order[0]], w->pipe[order[1]], w->pipe[order[2]]};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0 && drain_now(d, fds[i], WFD_KEY(req, order[i])))
            ended |= 1u << order[i];
    return ended;
}

int wfd_signal(const wfd_t *w, int sig)
{
    if (w->pidfd < 0) {
        errno = ESRCH;
        return -1;
    }
    return (int) syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0);
}

void wfd_release(wfd_t *w, drain_t *d)
{
    for (int which = 0; which < 3; which++)
        if (w->pipe[which] >= 0)
            drain_forget(d, w->pipe[which]); /* closes it */
    if (w->pidfd >= 0)
        close(w->pidfd);
    s_outq_clear(w);
    wfd_init(w);
}
