/* drain: keeps every worker's stdout/stderr pipe empty (rule 8: output
 * volume can never block an exit), and reads builtins' links (link.h: one
 * datagram per read). One epoll set for all of them, polled by the
 * supervisor's loop through a single fd. */
#ifndef ARBOR_DRAIN_H
#define ARBOR_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct drain_t drain_t;
/* Called with what was read from the pipe registered under key; eof once. */
typedef void (drain_fn)(void *arg, uint64_t key, const char *data, size_t len, bool eof);

/* Called when an fd asked for with drain_want_writable can take more;
 * returns whether it still wants to be told (something still waits). */
typedef bool (drain_writable_fn)(void *arg, uint64_t key);

drain_t *drain_new(drain_fn *fn, void *arg);
/* Who is told of room to write (drain_want_writable). */
void drain_on_writable(drain_t *self, drain_writable_fn *fn);
/* Watch registered fd for room to write too (a queue waits for it), or no
 * longer. 0, or -1 with errno (not registered: EBADF). */
int drain_want_writable(drain_t *self, int fd, bool want);
void drain_destroy(drain_t **self);
int drain_fd(drain_t *self);
int drain_add(drain_t *self, int fd, uint64_t key);
/* Stop watching fd and close it (its owner gives up on it before its end). */
void drain_forget(drain_t *self, int fd);
/* Read every ready pipe, a bounded amount each, then return. */
void drain_ready(drain_t *self);
/* Read fd until it would block or ends (a final drain after an exit).
 * True when it ended; it stays registered (drain_ready reports its end). */
bool drain_now(drain_t *self, int fd, uint64_t key);

#endif
