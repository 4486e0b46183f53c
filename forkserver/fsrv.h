/* fsrv: the fork-server — the one process that forks workers and the one
 * reaper of them (docs/ARCHITECTURE.md, "Fork-server rules"). It is its own small
 * program, arbor-forkserver (forkserver/fsrv_server.c): static, libc alone, no
 * ZeroMQ and no JSON library (payloads are read with jscan, payload.h), so
 * forking is cheap: few mappings to copy and tear down, nothing of the
 * supervisor's.
 *
 * The supervisor starts it first, before any thread or ZeroMQ context
 * exists, and talks to it over an inherited SOCK_SEQPACKET socketpair:
 *
 *   supervisor -> fsrv   SPAWN {req, payload JSON: the node's spec and names,
 *                        and "creds", its user and group as ids (supervisor/creds.h)}
 *                        ACK_EXIT {status = count}
 *   fsrv -> supervisor   SPAWNED {req, pid} + fds [pidfd, stdout, stderr, notify]
 *                        (an exec'd child's once it has exec'd), or
 *                        [pidfd, notify] for a builtin whose payload says
 *                        "output": false (no pipes: it writes nothing)
 *                        SPAWN_FAILED {req, errno, text}
 *                        EXITED {req, pid, wait status}
 *
 * An exec'd child reports a failure before its program runs (the step and
 * its errno) over a CLOEXEC pipe: EOF means execve succeeded. So a bad
 * program, format or rlimit is SPAWN_FAILED with the reason, not exit 127.
 *
 * Containment (contain.h): when a worker is reaped, whatever its node
 * started is killed too (cgroup.kill, or the subreaper's sweep), and the
 * count goes in EXITED as "escaped". If the supervisor goes away, the
 * fork-server sends SIGTERM to every worker, then after FSRV_TERM_GRACE_MS
 * freezes and kills every descendant at any depth, reaps them and exits. */
#ifndef ARBOR_FSRV_H
#define ARBOR_FSRV_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FSRV_MAX_PAYLOAD 65000
#define FSRV_MAX_FDS 4           /* passed with SPAWNED */
#define FSRV_TERM_GRACE_MS 300   /* on supervisor loss: SIGTERM -> SIGKILL */
#define FSRV_REAP_DEADLINE_MS 2000
#define FSRV_EXEC_DEADLINE_MS 5000 /* fork -> the child's execve: its failure or EOF */

enum {
    FSRV_SPAWN = 1, FSRV_ACK_EXIT = 2,
    FSRV_SPAWNED = 10, FSRV_SPAWN_FAILED = 11, FSRV_EXITED = 12,
    FSRV_READY = 13 /* first message: status = the FSRV_G_ guarantees in force */
};

/* Guarantees the fork-server checked it can keep (rule 6: report them). */
enum {
    FSRV_G_PIDFD = 1 << 0,       /* pidfd_open works: signals go through pidfds */
    FSRV_G_PDEATHSIG = 1 << 1,   /* it dies with the supervisor; workers die with it */
    FSRV_G_SUBREAPER = 1 << 2,   /* orphans of exec'd programs come back to it */
    FSRV_G_CLOSE_RANGE = 1 << 3, /* children close every inherited fd above 2 */
    FSRV_G_CGROUP = 1 << 4,      /* a cgroup v2 per exec'd node, ended by cgroup.kill */
    FSRV_G_LAST = FSRV_G_CGROUP, /* the highest bit, for loops over them all */
};

/* Names of the guarantees in flags, for logs and reports. */
const char *fsrv_guarantee_name(int bit);

typedef struct {
    uint32_t type;
    uint32_t len;    /* bytes of payload after the header */
    uint64_t req;    /* the supervisor's id for the node */
    int32_t pid;
    int32_t status;  /* wait status (EXITED) */
    int32_t err;     /* errno (SPAWN_FAILED) */
    int32_t escaped; /* EXITED: processes its node left that had to be killed (contain.h) */
    int64_t mono_ms; /* CLOCK_MONOTONIC when it forked (SPAWNED) or was reaped (EXITED) */
} fsrv_hdr_t;

typedef struct {
    fsrv_hdr_t hdr;
    int fds[FSRV_MAX_FDS]; /* SPAWNED: pidfd, stdout and stderr read ends, link;
                              a pipe not made is -1 (fsrv_recv) */
    int nfds;
    char text[512];  /* SPAWN_FAILED: what failed */
} fsrv_event_t;

/* What a forked child runs for a builtin behaviour (never returns). The
 * payload is the JSON the supervisor sent with SPAWN. */
typedef void (*fsrv_builtin_fn)(const char *payload, size_t len);

typedef struct {
    pid_t pid;       /* the fork-server process */
    int fd;          /* the supervisor's end of the socketpair */
    char program[PATH_MAX]; /* the executable it runs */
} fsrv_t;

#define FSRV_PROGRAM "arbor-forkserver" /* installed next to arbor-supervisor */
#define FSRV_EXEC_FD 3                   /* the channel, in the fork-server */

/* Start the fork-server: fork and at once exec FSRV_PROGRAM (found next
 * to this executable) with the channel as fd 3, so that whatever this
 * process holds (threads, ZeroMQ, memory) the fork-server is a fresh,
 * small, single-threaded process. Also how a dead one is replaced.
 * Returns 0, or -1 with errno (ENOENT: the program is missing). */
int fsrv_start(fsrv_t *out);

/* main() of arbor-forkserver (the channel is fd 3). */
void fsrv_server_main(fsrv_builtin_fn builtin) __attribute__((noreturn));

/* Framing over the channel, both sides: one header (+ payload, + fds). */
int fsrv_wire_send(int fd, const fsrv_hdr_t *hdr, const void *payload, const int *fds, int nfds);
/* 1 read, 0 nothing waiting, -1 peer gone or broken. */
int fsrv_wire_recv(int fd, fsrv_hdr_t *hdr, char *payload, size_t cap, int *fds, int *nfds);

/* Supervisor side: non-blocking; -1 with EAGAIN when the socket is full. */
int fsrv_send_spawn(fsrv_t *self, uint64_t req, const char *payload, size_t len);
/* Acknowledge count exit statuses at once (one message per batch read). */
int fsrv_send_ack(fsrv_t *self, uint32_t count);
/* 1: an event was read; 0: none waiting; -1: the fork-server is gone. */
int fsrv_recv(fsrv_t *self, fsrv_event_t *ev);

/* Number of threads of the calling process, from /proc (-1 if unknown). */
int fsrv_thread_count(void);

#endif
