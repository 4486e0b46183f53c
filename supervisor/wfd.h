/* wfd: the one owner of a worker's fds in the supervisor — its pidfd, the
 * read ends of its stdout and stderr pipes, and its notify fd.
 *
 * The pipes and the notify fd are watched by the drain (drain.h), which
 * closes one when it reaches its end; everything else is closed by
 * wfd_release, the one release path that every end of a node takes
 * (exit, spawn failure, lost, fork-server death). */
#ifndef ARBOR_WFD_H
#define ARBOR_WFD_H

#include <stdint.h>

#include "drain.h"

enum { WFD_OUT = 0, WFD_ERR = 1, WFD_NOTIFY = 2 };
/* The drain key of a worker's fd: its request id and which one. */
#define WFD_KEY(req, which) (((uint64_t) (req) << 2) | (uint64_t) (which))
#define WFD_KEY_REQ(key) ((key) >> 2)
#define WFD_KEY_WHICH(key) ((int) ((key) & 3))

#define WFD_OUTQ_MAX_BYTES (8u << 20) /* messages waiting for a worker that does not read */

typedef struct {
    char *text;
    size_t len;
} wfd_msg_t;

typedef struct {
    int pidfd;
    int pipe[3]; /* WFD_OUT, WFD_ERR, WFD_NOTIFY: -1 when absent or closed */
    /* Messages to the worker that its notify socket could not take yet, in
     * order (a burst of child_exited while it is busy): sent as it reads. */
    wfd_msg_t *outq;
    size_t outq_head, outq_n, outq_cap, outq_bytes;
} wfd_t;

void wfd_init(wfd_t *w);
/* Take the fds of a new worker: fds = [pidfd, stdout, stderr, notify?].
 * Its pipes and notify fd are watched under req. -1 (errno set) when one
 * cannot be watched: the fds are owned all the same. */
int wfd_adopt(wfd_t *w, drain_t *d, uint64_t req, const int *fds, int nfds);
/* The drain closed one at its end. */
void wfd_closed(wfd_t *w, int which);
/* Read what is left in its pipes and notify fd (its process is gone).
 * Returns which of them ended: bit 1 << WFD_OUT, WFD_ERR, WFD_NOTIFY.
 * What is read is handled on the way and may move w: re-fetch it after. */
unsigned wfd_drain_final(wfd_t *w, drain_t *d, uint64_t req);
/* Signal it through its pidfd (never a bare pid): 0, or -1 with errno. */
int wfd_signal(const wfd_t *w, int sig);
/* Send one message (a JSON text) to the worker over its notify fd without
 * blocking: what its socket cannot take now waits in order in its queue,
 * and the drain is asked to say when there is room (drain_want_writable).
 * 0 sent or queued; -1 with errno: EPIPE (no notify fd, or it is closed),
 * ENOBUFS (the queue holds WFD_OUTQ_MAX_BYTES: dropped), EMSGSIZE. */
int wfd_send(wfd_t *w, drain_t *d, const char *text, size_t len);
/* Send what waits in the queue, until the socket is full again; the drain
 * watches for room only while something waits. */
void wfd_flush(wfd_t *w, drain_t *d);
/* Messages waiting. */
size_t wfd_queued(const wfd_t *w);
/* Close everything it still holds; what waits to be sent is dropped. */
void wfd_release(wfd_t *w, drain_t *d);

#endif
