#include "builtin.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arbor_worker.h"
#include "clock.h"
#include "link.h"
#include "payload.h"

typedef struct {
    arbor_worker_t *w; /* the notify fd (link.h), as any worker uses it */
    pl_t spec;         /* a span of the payload, in this child's copy of it */
    char run[16];
    char in[16];       /* "hang": the phase it hangs in */
    bool has_children;
    bool children_exited;
    char *path;
    const char *phase; /* the last phase reported: an error happens in it */
} s_node_t;

static int64_t s_num(const pl_t *spec, const char *key, int64_t fallback)
{
    double v;
    return pl_num(spec, key, &v) ? (int64_t) v : fallback;
}

static int s_signal_of(const pl_t *spec)
{
    pl_t v;
    char buf[16];
    if (!pl_get(spec, "signal", &v))
        return SIGSEGV;
    if (v.kind == JSCAN_NUMBER)
        return (int) jscan_number(&v);
    if (v.kind != JSCAN_STRING)
        return SIGSEGV;
    jscan_string(&v, buf, sizeof buf);
    const char *name = buf;
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (int s = 1; s < NSIG; s++)
        if (sigabbrev_np(s) && strcmp(sigabbrev_np(s), name) == 0)
            return s;
    return SIGSEGV;
}

/* Wait for messages until deadline (-1: none). Returns the event that ended
 * the wait, or ARBOR_EV_NONE at the deadline. children_exited is noted. */
static int s_wait(s_node_t *n, int64_t deadline, bool stop_on_cancel)
{
    for (;;) {
        int64_t now = clk_now_ms();
        if (deadline >= 0 && now >= deadline)
            return ARBOR_EV_NONE;
        int ev = arbor_worker_poll(n->w, deadline < 0 ? -1 : (int) (deadline - now));
        if (ev == ARBOR_EV_GONE || ev == ARBOR_EV_ERROR) {
            /* The supervisor is gone and its fork-server is stopping every
             * worker: nobody is left to report to. */
            if (strcmp(n->run, "hang") == 0)
                for (;;)
                    pause(); /* still the misbehaviour under test */
            _exit(0);
        }
        if (ev == ARBOR_EV_CHILDREN_EXITED) {
            n->children_exited = true;
            return ev;
        }
        if (ev == ARBOR_EV_CANCEL && stop_on_cancel)
            return ev;
    }
}

/* Phases with nothing between them, in one write (arbor_worker_phases). */
static void s_phases(s_node_t *n, const char *const *phases, size_t k)
{
    if (k == 0)
        return;
    n->phase = phases[k - 1];
    arbor_worker_phases(n->w, phases, k);
}

static void s_write_all(int fd, size_t bytes)
{
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (size_t i = 63; i < sizeof chunk; i += 64)
        chunk[i] = '\n';
    while (bytes > 0) {
        size_t n = bytes < sizeof chunk ? bytes : sizeof chunk;
        ssize_t w = write(fd, chunk, n);
        if (w <= 0)
            return;
        bytes -= (size_t) w;
    }
}

static void s_report_error(s_node_t *n, const char *default_type)
{
    pl_t e, type_v, msg_v;
    bool has_e = pl_get(&n->spec, "error", &e);
    char *type = has_e && pl_get(&e, "type", &type_v) ? pl_dup(&type_v) : NULL;
    char *msg = has_e && pl_get(&e, "message", &msg_v) ? pl_dup(&msg_v) : NULL;
    char fallback[200];
    snprintf(fallback, sizeof fallback, "%s failed as its spec says (run: %s)", n->path, n->run);
    arbor_worker_error(n->w, type ? type : default_type, msg ? msg : fallback, NULL);
    free(type);
    free(msg);
}

/* The node's teardown, in the contract's phase order. Parents exit only
 * after their children: the supervisor tells us when they have. */
static void __attribute__((noreturn)) s_teardown(s_node_t *n, bool cancelled, int code)
{
    /* What has nothing to wait for between goes in one datagram: a leaf's
     * whole cancel (cancel_requested, cleanup, exiting) is one write. */
    const char *burst[4];
    size_t k = 0;
    if (cancelled)
        burst[k++] = "cancel_requested";
    if (n->has_children) {
        if (!n->children_exited) {
            burst[k++] = "cancelling_children";
            s_phases(n, burst, k);
            k = 0;
            while (!n->children_exited)
                s_wait(n, -1, false);
        }
        burst[k++] = "children_exited";
    }
    burst[k++] = "cleanup";
    if (strcmp(n->run, "hang") == 0 && strcmp(n->in, "cleanup") == 0) {
        s_phases(n, burst, k);
        for (;;)
            pause(); /* stuck in cleanup: only SIGKILL ends it */
    }
    burst[k++] = "exiting";
    s_phases(n, burst, k);
    arbor_worker_close(&n->w);
    free(n->path);
    /* _exit, not exit: a fork of the fork-server must not run its atexit
     * handlers and library destructors, nor flush a second time what its
     * stdio held at the fork. No fflush either: builtins write only with
     * write(2) and to unbuffered stderr, so there is nothing of their own
     * to flush, and walking stdio's streams copied libc's data pages in
     * every worker (7 % of a cancelled builtin's CPU, all its page faults). */
    _exit(code);
}

void builtin_run(const char *payload_text, size_t len)
{
    s_node_t n = {0};
    pl_t payload, path_v;
    bool ok = pl_parse(payload_text, len, &payload) && pl_get(&payload, "spec", &n.spec) &&
              n.spec.kind == JSCAN_OBJECT && pl_get(&payload, "path", &path_v) &&
              (n.path = pl_dup(&path_v));
    if (!pl_str(&n.spec, "run", n.run, sizeof n.run))
        snprintf(n.run, sizeof n.run, "supervise");
    pl_str(&n.spec, "in", n.in, sizeof n.in);
    n.has_children = pl_is(&payload, "has_children", JSCAN_TRUE);
    n.w = ok ? arbor_worker_open_fd(LINK_FD) : NULL;
    n.phase = "spawned";
    if (!ok || !n.w) {
        fprintf(stderr, "arbor worker: unusable spawn payload\n");
        _exit(126);
    }
    bool hang_running = strcmp(n.run, "hang") == 0 && (!*n.in || strcmp(n.in, "running") == 0);
    if (strcmp(n.run, "hang") == 0)
        signal(SIGTERM, SIG_IGN); /* the misbehaviour under test: only SIGKILL ends it */
    /* Nothing comes between them: one datagram (a JSON text sequence). */
    s_phases(&n, (const char *const[]){"ready", "running"}, 2);

    int64_t start = clk_now_ms();
    int64_t after = s_num(&n.spec, "after_ms", 0);
    if (strcmp(n.run, "sleep") == 0) {
        int64_t ms = s_num(&n.spec, "ms", -1);
        int ev = s_wait(&n, ms < 0 ? -1 : start + ms, true);
        while (ev == ARBOR_EV_CHILDREN_EXITED)
            ev = s_wait(&n, ms < 0 ? -1 : start + ms, true);
        s_teardown(&n, ev == ARBOR_EV_CANCEL, 0);
    }
    if (strcmp(n.run, "fail") == 0 || strcmp(n.run, "exit") == 0 ||
        strcmp(n.run, "crash") == 0 || strcmp(n.run, "flood") == 0) {
        int ev = after > 0 ? s_wait(&n, start + after, true) : ARBOR_EV_NONE;
        while (ev == ARBOR_EV_CHILDREN_EXITED)
            ev = s_wait(&n, start + after, true);
        if (ev == ARBOR_EV_CANCEL)
            s_teardown(&n, true, 0);
        if (strcmp(n.run, "crash") == 0) {
            int sig = s_signal_of(&n.spec);
            signal(sig, SIG_DFL);
            raise(sig);
            abort(); /* a signal whose default is to continue: still a crash */
        }
        if (strcmp(n.run, "flood") == 0) {
            size_t bytes = (size_t) s_num(&n.spec, "bytes", 8 << 20);
            s_write_all(1, bytes);
            s_write_all(2, bytes);
        }
        if (strcmp(n.run, "exit") == 0)
            s_teardown(&n, false, (int) s_num(&n.spec, "code", 0));
        s_report_error(&n, strcmp(n.run, "flood") == 0 ? "FloodFailure" : "Failure");
        s_teardown(&n, false, 1);
    }
    if (hang_running)
        for (;;)
            s_wait(&n, -1, false); /* ignores cancel and SIGTERM */
    /* supervise, and hang in cleanup: hold until cancelled or the children
     * are all gone (a supervise node without children has nothing to hold:
     * it ends at once). */
    if (strcmp(n.run, "supervise") == 0 && !n.has_children)
        s_teardown(&n, false, 0);
    for (;;) {
        int ev = s_wait(&n, -1, true);
        if (ev == ARBOR_EV_CANCEL)
            s_teardown(&n, true, 0);
        if (ev == ARBOR_EV_CHILDREN_EXITED && strcmp(n.run, "supervise") == 0)
            s_teardown(&n, false, 0);
    }
}
