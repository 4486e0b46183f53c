#include "wfd.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

void wfd_init(wfd_t *w)
{
    w->pidfd = w->pipe[WFD_OUT] = w->pipe[WFD_ERR] = w->pipe[WFD_NOTIFY] = -1;
}

int wfd_adopt(wfd_t *w, drain_t *d, uint64_t req, const int *fds, int nfds)
{
    wfd_init(w);
    w->pidfd = nfds > 0 ? fds[0] : -1;
    int rc = 0;
    for (int which = 0; which < 3 && which + 1 < nfds; which++) {
        w->pipe[which] = fds[which + 1];
        if (drain_add(d, w->pipe[which], WFD_KEY(req, which)) != 0)
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
    /* The notify fd first: what it said comes before what its end means. */
    static const int order[] = {WFD_NOTIFY, WFD_ERR, WFD_OUT};
    for (int i = 0; i < 3; i++)
        if (w->pipe[order[i]] >= 0 && drain_now(d, w->pipe[order[i]], WFD_KEY(req, order[i])))
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
    wfd_init(w);
}
