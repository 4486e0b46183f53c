#include "drain.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>

#define DRAIN_CHUNK 65536
#define DRAIN_EVENTS 128

typedef struct s_reg_t {
    int fd;
    uint64_t key;
    bool writable; /* EPOLLOUT asked for */
    struct s_reg_t *prev, *next; /* every open registration, to free them at the end */
} s_reg_t;

struct drain_t {
    int epfd;
    drain_fn *fn;
    drain_writable_fn *wfn;
    void *arg;
    s_reg_t *regs;
    s_reg_t **byfd;   /* registrations by fd number, for drain_forget */
    int cap;
    char buf[DRAIN_CHUNK + 1]; /* +1: a notify datagram longer than 64 KiB shows as such */
};

static void s_unlink(drain_t *self, s_reg_t *reg)
{
    if (reg->fd < self->cap && self->byfd[reg->fd] == reg)
        self->byfd[reg->fd] = NULL;
    if (reg->prev)
        reg->prev->next = reg->next;
    else
        self->regs = reg->next;
    if (reg->next)
        reg->next->prev = reg->prev;
}

drain_t *drain_new(drain_fn *fn, void *arg)
{
    drain_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fn = fn;
    self->arg = arg;
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        free(self);
        return NULL;
    }
    return self;
}

void drain_destroy(drain_t **self)
{
    if (!self || !*self)
        return;
    close((*self)->epfd);
    for (s_reg_t *reg = (*self)->regs, *next; reg; reg = next) {
        next = reg->next;
        close(reg->fd);
        free(reg);
    }
    free((*self)->byfd);
    free(*self);
    *self = NULL;
}

int drain_fd(drain_t *self) { return self->epfd; }

void drain_on_writable(drain_t *self, drain_writable_fn *fn) { self->wfn = fn; }

int drain_want_writable(drain_t *self, int fd, bool want)
{
    s_reg_t *reg = fd >= 0 && fd < self->cap ? self->byfd[fd] : NULL;
    if (!reg) {
        errno = EBADF;
        return -1;
    }
    if (reg->writable == want)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = reg};
    if (epoll_ctl(self->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
        return -1;
    reg->writable = want;
    return 0;
}

int drain_add(drain_t *self, int fd, uint64_t key)
{
    if (fd < 0)
        return -1;
    if (fd >= self->cap) {
        int cap = fd + 1 > self->cap * 2 ? fd + 1 : self->cap * 2;
        s_reg_t **grown = realloc(self->byfd, (size_t) cap * sizeof *grown);
        if (!grown)
            return -1;
        memset(grown + self->cap, 0, (size_t) (cap - self->cap) * sizeof *grown);
        self->byfd = grown;
        self->cap = cap;
    }
    s_reg_t *reg = malloc(sizeof *reg);
    if (!reg)
        return -1;
    *reg = (s_reg_t){.fd = fd, .key = key, .next = self->regs};
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = reg};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(reg);
        return -1;
    }
    if (self->regs)
        self->regs->prev = reg;
    self->regs = reg;
    self->byfd[fd] = reg;
    return 0;
}

/* Returns true when the pipe ended (and was closed). max: bytes budget. */
static bool s_read(drain_t *self, int fd, uint64_t key, size_t max)
{
    size_t total = 0;
    bool reset_seen = false;
    while (total < max) {
        ssize_t n = read(fd, self->buf, sizeof self->buf);
        if (n > 0) {
            self->fn(self->arg, key, self->buf, (size_t) n, false);
            total += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* A link (a socket) whose worker exited with our last message
         * unread reports ECONNRESET once, before what it sent us: read on. */
        if (n < 0 && errno == ECONNRESET && !reset_seen) {
            reset_seen = true;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        return true; /* EOF or a broken pipe: either way it is over */
    }
    return false;
}

void drain_ready(drain_t *self)
{
    struct epoll_event evs[DRAIN_EVENTS];
    int n = epoll_wait(self->epfd, evs, DRAIN_EVENTS, 0);
    for (int i = 0; i < n; i++) {
        s_reg_t *reg = evs[i].data.ptr;
        if ((evs[i].events & EPOLLOUT) && reg->writable &&
            !(self->wfn && self->wfn(self->arg, reg->key)))
            drain_want_writable(self, reg->fd, false); /* nothing waits any more */
        if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            continue;
        if (s_read(self, reg->fd, reg->key, 4 * DRAIN_CHUNK)) {
            epoll_ctl(self->epfd, EPOLL_CTL_DEL, reg->fd, NULL);
            close(reg->fd);
            self->fn(self->arg, reg->key, NULL, 0, true);
            s_unlink(self, reg);
            free(reg);
        }
    }
}

void drain_forget(drain_t *self, int fd)
{
    s_reg_t *reg = fd >= 0 && fd < self->cap ? self->byfd[fd] : NULL;
    if (reg) {
        epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, NULL);
        s_unlink(self, reg);
        free(reg);
    }
    if (fd >= 0)
        close(fd);
}

bool drain_now(drain_t *self, int fd, uint64_t key)
{
    return s_read(self, fd, key, SIZE_MAX);
}
