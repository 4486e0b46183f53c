#include "fsrv.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "link.h"
#include "log.h"

/* ---- the server ----------------------------------------------------------- */

typedef struct {
    pid_t pid;
    uint64_t req;
} s_child_t;

typedef struct s_out_t {
    fsrv_hdr_t hdr;
    char text[512];
    int fds[FSRV_MAX_FDS];
    int nfds;
    struct s_out_t *next;
} s_out_t;

typedef struct {
    int sock;
    int sigfd;
    pid_t supervisor;
    fsrv_builtin_fn builtin;
    s_child_t *children;
    size_t nchildren, cap;
    s_out_t *out_head, *out_tail; /* replies waiting for room in the socket */
    size_t unacked;                /* exit statuses sent but not acknowledged */
    int devnull;                   /* a child's stdin */
    int nhandled;                  /* signals whose disposition is not SIG_DFL here */
    int handled[NSIG];
    char payload[FSRV_MAX_PAYLOAD + 1];
} s_server_t;

static void s_queue(s_server_t *s, const fsrv_hdr_t *hdr, const char *text, const int *fds,
                    int nfds)
{
    s_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        /* Without memory the status cannot be kept; say so loudly. */
        log_error("fork-server: out of memory queueing a message for req %llu",
                  (unsigned long long) hdr->req);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return;
    }
    o->hdr = *hdr;
    if (text)
        snprintf(o->text, sizeof o->text, "%s", text);
    o->hdr.len = text ? (uint32_t) strlen(o->text) : 0;
    if (nfds > 0)
        memcpy(o->fds, fds, (size_t) nfds * sizeof(int));
    o->nfds = nfds;
    if (s->out_tail)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
}

/* Send queued replies in order until the socket is full. */
static int s_flush(s_server_t *s)
{
    while (s->out_head) {
        s_out_t *o = s->out_head;
        if (fsrv_wire_send(s->sock, &o->hdr, o->text, o->fds, o->nfds) != 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        for (int i = 0; i < o->nfds; i++)
            close(o->fds[i]);
        if (o->hdr.type == FSRV_EXITED)
            s->unacked++;
        s->out_head = o->next;
        if (!s->out_head)
            s->out_tail = NULL;
        free(o);
    }
    return 0;
}

static void s_reply_failed(s_server_t *s, uint64_t req, int err, const char *what)
{
    fsrv_hdr_t hdr = {.type = FSRV_SPAWN_FAILED, .req = req, .err = err};
    char text[512];
    snprintf(text, sizeof text, "%s: %s", what, strerror(err));
    s_queue(s, &hdr, text, NULL, 0);
}

/* In the child: everything it inherited is put back to a clean state.
 * Dispositions: the fork-server never changes its own after start, so the
 * ones that are not SIG_DFL are known (s_server_main) and only those are
 * reset, not all 64 one syscall each. */
static void s_child_reset(const s_server_t *s, pid_t parent, int out_w, int err_w)
{
    sigset_t none;
    sigemptyset(&none);
    for (int i = 0; i < s->nhandled; i++)
        signal(s->handled[i], SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* No orphans: die with the fork-server, and check it is still there now
     * that the death signal is armed (it may have died just before). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    setsid(); /* a terminal's ^C reaches the supervisor, never workers directly */
    prctl(PR_SET_NAME, "arbor-worker"); /* not "arbor-forksrv" in ps and top */
    if (dup2(s->devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
        _exit(127);
}

/* In the child: the spec's "rlimits" (checked by spec.c), soft = hard. */
static void s_child_rlimits(const cJSON *spec)
{
    static const struct {
        const char *name;
        int resource;
    } map[] = {{"as", RLIMIT_AS},         {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},
               {"data", RLIMIT_DATA},     {"fsize", RLIMIT_FSIZE},   {"memlock", RLIMIT_MEMLOCK},
               {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},   {"stack", RLIMIT_STACK}};
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(spec, "rlimits"))
    {
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            if (strcmp(r->string, map[i].name) != 0)
                continue;
            struct rlimit lim = {(rlim_t) r->valuedouble, (rlim_t) r->valuedouble};
            if (setrlimit(map[i].resource, &lim) != 0) {
                dprintf(2, "arbor: setrlimit %s=%.0f: %s\n", r->string, r->valuedouble,
                        strerror(errno));
                _exit(126);
            }
        }
    }
}

/* In the child: execvp the user's program; on failure the errno goes back
 * through status_fd (CLOEXEC, so a successful exec closes it silently). */
static void s_child_exec(const cJSON *payload, int status_fd)
{
    const cJSON *spec = cJSON_GetObjectItem(payload, "spec");
    const cJSON *argv_json = cJSON_GetObjectItem(spec, "argv");
    int argc = cJSON_GetArraySize(argv_json);
    char **argv = calloc((size_t) argc + 1, sizeof *argv);
    int err = ENOMEM;
    if (argv) {
        for (int i = 0; i < argc; i++)
            argv[i] = cJSON_GetArrayItem(argv_json, i)->valuestring;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(spec, "env")) setenv(e->string, e->valuestring, 1);
        static const char *vars[][2] = {{"ARBOR_BROKER", "broker"},   {"ARBOR_TREE", "tree"},
                                        {"ARBOR_NODE", "path"},       {"ARBOR_WORKER", "worker"},
                                        {"ARBOR_SUPERVISOR", "supervisor"}};
        for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
            const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(payload, vars[i][1]));
            if (v)
                setenv(vars[i][0], v, 1);
        }
        setenv(LINK_ENV, "3", 1); /* the notify fd (link.h) */
        execvp(argv[0], argv);
        err = errno;
    }
    ssize_t w = write(status_fd, &err, sizeof err);
    (void) w;
    _exit(127);
}

static void s_spawn(s_server_t *s, uint64_t req, size_t len)
{
    s->payload[len] = 0;
    int threads = fsrv_thread_count();
    if (threads != 1) {
        /* Rule 1: forking a multi-threaded process copies locks held by
         * threads that do not exist in the child. Refuse. */
        s_reply_failed(s, req, EDEADLK, "fork-server is not single-threaded");
        return;
    }
    cJSON *payload = cJSON_ParseWithLength(s->payload, len);
    const cJSON *spec = cJSON_GetObjectItem(payload, "spec");
    bool is_exec = cJSON_IsString(cJSON_GetObjectItem(spec, "run")) &&
                   strcmp(cJSON_GetObjectItem(spec, "run")->valuestring, "exec") == 0;
    if (!payload || !spec) {
        cJSON_Delete(payload);
        s_reply_failed(s, req, EINVAL, "malformed spawn payload");
        return;
    }
    char prog[256] = "";
    if (is_exec)
        snprintf(prog, sizeof prog, "%s",
                 cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "argv"), 0))
                     ?: "");
    int out[2] = {-1, -1}, err[2] = {-1, -1}, status[2] = {-1, -1}, link[2] = {-1, -1};
    if (s->nchildren == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        s_child_t *grown = realloc(s->children, cap * sizeof *grown);
        if (!grown) {
            cJSON_Delete(payload);
            s_reply_failed(s, req, ENOMEM, "fork-server child table");
            return;
        }
        s->children = grown;
        s->cap = cap;
    }
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || (is_exec && pipe2(status, O_CLOEXEC)) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, link)) {
        int e = errno;
        int all[] = {out[0], out[1], err[0], err[1], status[0], status[1], link[0], link[1]};
        for (int i = 0; i < 8; i++)
            if (all[i] >= 0)
                close(all[i]);
        cJSON_Delete(payload);
        s_reply_failed(s, req, e, "pipe2");
        return;
    }
    pid_t self_pid = getpid();
    int64_t forked_at = clk_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        s_child_reset(s, self_pid, out[1], err[1]);
        s_child_rlimits(spec);
        if (is_exec) {
            /* fd 3 is the notify fd, kept across the exec (ARBOR_NOTIFY_FD);
             * fd 4 carries exec failures; everything above it is closed.
             * No dup may overwrite the other fd before it has moved (and
             * none needs a free fd above 4: "rlimits" may allow only 5). */
            int nfd = link[1], sfd = status[1];
            if (sfd == LINK_FD && nfd == 4)
                sfd = fcntl(sfd, F_DUPFD_CLOEXEC, 5); /* crossed: one goes aside */
            if (sfd == LINK_FD)
                sfd = dup3(sfd, 4, O_CLOEXEC);
            if (sfd < 0 || (nfd == LINK_FD ? fcntl(nfd, F_SETFD, 0) : dup3(nfd, LINK_FD, 0)) < 0 ||
                (sfd != 4 && dup3(sfd, 4, O_CLOEXEC) < 0))
                _exit(127);
            close_range(5, ~0U, 0);
            s_child_exec(payload, 4);
        }
        /* A builtin reports over its link, as fd 3 (LINK_FD). */
        if (link[1] != LINK_FD && dup3(link[1], LINK_FD, O_CLOEXEC) < 0)
            _exit(127);
        close_range(LINK_FD + 1, ~0U, 0);
        s->builtin(s->payload, len);
        _exit(0);
    }
    int fork_errno = errno;
    cJSON_Delete(payload);
    close(out[1]);
    close(err[1]);
    if (link[1] >= 0)
        close(link[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        if (link[0] >= 0)
            close(link[0]);
        if (is_exec) {
            close(status[0]);
            close(status[1]);
        }
        s_reply_failed(s, req, fork_errno, "fork");
        return;
    }
    if (is_exec) {
        close(status[1]);
        int child_errno = 0;
        ssize_t n;
        do
            n = read(status[0], &child_errno, sizeof child_errno);
        while (n < 0 && errno == EINTR);
        close(status[0]);
        if (n == (ssize_t) sizeof child_errno) {
            /* exec failed: the child has _exited; reap it here, report once. */
            waitpid(pid, NULL, 0);
            close(out[0]);
            close(err[0]);
            close(link[0]);
            char what[300];
            snprintf(what, sizeof what, "cannot execute \"%s\"", prog);
            s_reply_failed(s, req, child_errno, what);
            return;
        }
    }
    int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        /* Rule 4 needs a pidfd: without one the worker is not supervisable. */
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(out[0]);
        close(err[0]);
        if (link[0] >= 0)
            close(link[0]);
        s_reply_failed(s, req, e, "pidfd_open");
        return;
    }
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    s->children[s->nchildren++] = (s_child_t){pid, req};
    fsrv_hdr_t hdr = {.type = FSRV_SPAWNED, .req = req, .pid = pid, .mono_ms = forked_at};
    int fds[FSRV_MAX_FDS] = {pidfd, out[0], err[0], link[0]};
    s_queue(s, &hdr, NULL, fds, link[0] >= 0 ? 4 : 3);
}

/* Reap every child that has exited; queue its status for the supervisor. */
static void s_reap(s_server_t *s)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < s->nchildren; i++) {
            if (s->children[i].pid != pid)
                continue;
            fsrv_hdr_t hdr = {.type = FSRV_EXITED, .req = s->children[i].req, .pid = pid,
                              .status = status, .mono_ms = clk_now_ms()};
            s_queue(s, &hdr, NULL, NULL, 0);
            s->children[i] = s->children[--s->nchildren];
            break;
        }
        /* Unknown pids are orphans of exec'd programs, reparented to us as
         * the subreaper: reaped here, never left as zombies. */
    }
}

static void s_signal_all(s_server_t *s, int sig)
{
    for (size_t i = 0; i < s->nchildren; i++)
        kill(s->children[i].pid, sig); /* our own unreaped children: no pid reuse */
    /* Descendants reparented to us (we are their subreaper) too. */
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t me = getpid();
    while (d && (e = readdir(d))) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == me)
            kill(atoi(e->d_name), sig);
    }
    if (d)
        closedir(d);
}

/* Wait (reaping) until no child is left or the deadline passes. */
static void s_reap_until(s_server_t *s, int64_t deadline)
{
    while (s->nchildren > 0) {
        int64_t left = deadline - clk_now_ms();
        if (left <= 0)
            return;
        struct pollfd p = {s->sigfd, POLLIN, 0};
        if (poll(&p, 1, (int) left) > 0) {
            struct signalfd_siginfo si;
            while (read(s->sigfd, &si, sizeof si) > 0) {
            }
        }
        s_reap(s);
    }
}

static void s_shutdown(s_server_t *s, const char *why)
{
    size_t n = s->nchildren;
    if (n)
        log_warn("fork-server: %s; stopping %zu workers (SIGTERM, SIGKILL after %d ms)", why, n,
                 FSRV_TERM_GRACE_MS);
    s_signal_all(s, SIGTERM);
    s_reap_until(s, clk_now_ms() + FSRV_TERM_GRACE_MS);
    if (s->nchildren)
        s_signal_all(s, SIGKILL);
    s_reap_until(s, clk_now_ms() + FSRV_REAP_DEADLINE_MS);
    s_flush(s);
    if (s->nchildren)
        log_error("fork-server: %zu workers did not die after SIGKILL", s->nchildren);
    _exit(s->nchildren ? 1 : 0);
}

static void s_serve(s_server_t *s)
{
    for (;;) {
        struct pollfd p[2] = {{s->sock, POLLIN | (s->out_head ? POLLOUT : 0), 0},
                              {s->sigfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            s_shutdown(s, "poll failed");
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(s->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
                /* Its parent's death (PDEATHSIG) ends it; a stop signal to
                 * the whole process group (killall, a terminal, a process
                 * manager) is the supervisor's to handle: it cancels the
                 * trees properly, then closes our channel. */
                if (si.ssi_signo != SIGCHLD && getppid() != s->supervisor)
                    s_shutdown(s, "its supervisor died");
            }
            s_reap(s);
        }
        if (p[0].revents & POLLIN) {
            for (int budget = 64; budget > 0; budget--) {
                fsrv_hdr_t hdr;
                int rc = fsrv_wire_recv(s->sock, &hdr, s->payload, FSRV_MAX_PAYLOAD, NULL, NULL);
                if (rc == 0)
                    break;
                if (rc < 0)
                    s_shutdown(s, "supervisor is gone");
                if (hdr.type == FSRV_SPAWN)
                    s_spawn(s, hdr.req, hdr.len);
                else if (hdr.type == FSRV_ACK_EXIT && s->unacked > 0)
                    s->unacked--;
            }
        } else if (p[0].revents & (POLLHUP | POLLERR)) {
            s_shutdown(s, "supervisor is gone");
        }
        if (s_flush(s) < 0)
            s_shutdown(s, "supervisor is gone");
    }
}

/* The fork-server's life: set up, say which guarantees hold, serve. */
static void __attribute__((noreturn)) s_server_main(int sock, pid_t supervisor,
                                                     fsrv_builtin_fn builtin)
{
    log_init("arbor-forkserver", ALOG_INFO);
    prctl(PR_SET_NAME, "arbor-forksrv");
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s_server_t *s = calloc(1, sizeof *s);
    if (!s)
        _exit(1);
    s->sock = sock;
    s->supervisor = supervisor;
    s->builtin = builtin;
    s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    /* Rule 6: if the supervisor dies we hear it as SIGTERM (and as EOF). */
    int guarantees = 0;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == 0)
        guarantees |= FSRV_G_PDEATHSIG;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) == 0)
        guarantees |= FSRV_G_SUBREAPER;
    if (getppid() != supervisor || s->sigfd < 0)
        _exit(1);
    /* Keep the fd table small and low-numbered: only 0-2, sock, sigfd,
     * and /dev/null for the children's stdin. */
    int keep_hi = s->sock > s->sigfd ? s->sock : s->sigfd;
    for (int fd = 3; fd < keep_hi; fd++)
        if (fd != s->sock && fd != s->sigfd)
            close(fd);
    if (close_range((unsigned) keep_hi + 1, ~0U, 0) == 0)
        guarantees |= FSRV_G_CLOSE_RANGE;
    s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (s->devnull < 0)
        _exit(1);
    /* What children must reset: every disposition that is not SIG_DFL now
     * (SIGPIPE, and whatever was ignored when this program was exec'd). */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 &&
            sa.sa_handler != SIG_DFL)
            s->handled[s->nhandled++] = sig;
    }
    int self_fd = (int) syscall(SYS_pidfd_open, getpid(), 0);
    if (self_fd >= 0) {
        guarantees |= FSRV_G_PIDFD;
        close(self_fd);
    }
    fsrv_hdr_t ready = {.type = FSRV_READY, .status = guarantees, .pid = getpid(),
                        .mono_ms = clk_now_ms()};
    s_queue(s, &ready, NULL, NULL, 0);
    s_serve(s);
    _exit(0);
}

void fsrv_server_main(fsrv_builtin_fn builtin)
{
    fcntl(FSRV_EXEC_FD, F_SETFD, FD_CLOEXEC);
    s_server_main(FSRV_EXEC_FD, getppid(), builtin);
}

